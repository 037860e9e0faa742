/* args.h - the command-line options of one `attune` subcommand: a table of
 * long options (`--name VALUE`, `--name=VALUE` or a flag), positional
 * arguments, and the generated --help text. The words are read by the core's
 * option parser (attune/options.h), so `attune` and `attune-server` follow
 * the same rules and say the same errors; --help and -h are added to every
 * table.
 *
 * Owns nothing: parsed values point into argv. Main's thread. */
#ifndef CLI_ARGS_H
#define CLI_ARGS_H

#include <stdint.h>
#include <stdio.h>

#define CLI_MAX_OPTIONS 16
#define CLI_MAX_POSITIONAL 4

typedef struct {
    const char *name; /* without the dashes */
    const char *arg;  /* the value's name in --help, NULL for a flag */
    const char *help; /* one line; the default in brackets when there is one */
} cli_option;

typedef struct {
    const char *usage;   /* "attune token --data DIR --room ID --role ROLE [--ttl S]" */
    const char *summary; /* what the command does, a few lines */
    const cli_option *options;
    int n_options;
    int min_positional, max_positional;
} cli_command;

typedef struct {
    const char *value[CLI_MAX_OPTIONS]; /* NULL when absent; "" for a given flag */
    const char *positional[CLI_MAX_POSITIONAL];
    int n_positional;
    int help; /* --help or -h was given */
} cli_args;

/* Parses argv[0..argc) (the words after the subcommand). Returns 0, or -1
 * after writing a one-line error to err (usage mistakes: exit code 2). */
int cli_parse(const cli_command *cmd, int argc, char **argv, cli_args *out, FILE *err);

/* The value of option `name` or NULL (name must be in the table). */
const char *cli_get(const cli_command *cmd, const cli_args *a, const char *name);

void cli_print_help(const cli_command *cmd, FILE *out);

/* Parses a decimal integer in min..max; returns 0 or -1 with a message on err. */
int cli_parse_int64(const char *opt, const char *text, int64_t min, int64_t max, int64_t *out,
                    FILE *err);
/* Parses a finite decimal number in min..max; returns 0 or -1. */
int cli_parse_double(const char *opt, const char *text, double min, double max, double *out,
                     FILE *err);

/* Exit codes shared by every subcommand. */
#define CLI_EXIT_OK 0
#define CLI_EXIT_FAIL 1  /* the store, the network or the server failed or refused */
#define CLI_EXIT_USAGE 2 /* bad command line or bad input */

#endif
