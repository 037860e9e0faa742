/* options.h - the one option parser of attune-server and attune: a table of
 * long options (`--name VALUE`, `--name=VALUE`, or a flag `--name`), the
 * positional words between them, `key = value` config text (keys are the
 * long names without the dashes, `#` starts a comment), and the help lines
 * made from the table.
 *
 * An option either goes straight into the caller's struct (a typed kind: a
 * string copied into a char array, a flag, a number checked against its
 * range, at an offset of that struct) or is handed to the caller's callback
 * as text (ATT_OPT_CALL, the zero kind, for anything the table cannot say:
 * repeatable values, a mode, a check of its own).
 *
 * Pure: it is given words and text, never files (the caller reads a config
 * file and passes its text). Owns nothing; a value handed to the callback
 * points into argv or into the caller's text. Any thread.
 *
 * The rules, the same for both programs:
 *   `--` ends the options (every later word is positional); `-h` is `--help`
 *   when the table has a `help` option; any other word starting with `-`
 *   (but `-` itself, a positional) is an unknown option; a flag takes no
 *   `=value`; an option with a value takes the next word when it has no
 *   `=`. In config text a flag is set by a bare key or by `true`, `yes` or
 *   `1` (any other value leaves it unset), and `help` and `config` are not
 *   settings (a file cannot name another file). */
#ifndef ATTUNE_OPTIONS_H
#define ATTUNE_OPTIONS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "attune/types.h"

typedef enum {
    ATT_OPT_CALL = 0, /* the callback gets the value as text (NULL for a flag) */
    ATT_OPT_TEXT,     /* copied into char[size] at offset; longer: an error */
    ATT_OPT_FLAG,     /* int at offset set to 1 */
    ATT_OPT_INT,      /* a number in [min, max], its whole part into an int */
    ATT_OPT_INT64,    /* ... into an int64_t */
    ATT_OPT_SIZE,     /* ... into a size_t */
    ATT_OPT_DOUBLE,   /* a number in [min, max] into a double */
} att_option_kind;

typedef struct {
    const char *name; /* without the dashes */
    const char *arg;  /* the value's name in help; NULL for a flag */
    const char *help; /* one paragraph */
    const char *def;  /* the default as help shows it, in brackets; NULL or "": none */
    att_option_kind kind;
    size_t offset; /* typed kinds: where in the caller's struct */
    size_t size;   /* ATT_OPT_TEXT: the char array's size */
    double min, max;
} att_option;

typedef struct {
    const att_option *options;
    size_t n_options;
    /* Positional words allowed; one more is "unexpected argument". */
    int max_positional;
} att_option_table;

/* What the parser found, in order: option `index` of the table with its
 * value (NULL for a flag), or a positional word (index -1). Called for
 * ATT_OPT_CALL options and positional words only. Returns 0 to go on, 1 to
 * stop parsing at once (e.g. --help), or a negative code with err set. */
typedef int (*att_option_fn)(void *arg, int index, const char *value, att_error *err);

/* Parses argv[0..argc). Typed options are stored into `target` (NULL: only
 * checked, for a first pass that looks for one option). Returns 0
 * (all words read), 1 (the callback stopped), or a negative code with err
 * set: "unknown option --NAME (see --help)", "--NAME takes no value",
 * "--NAME needs a value (ARG)", "unexpected argument 'WORD' (see --help)",
 * or the option's own error. */
int att_options_parse_argv(const att_option_table *t, int argc, char **argv, void *target,
                           att_option_fn fn, void *arg, att_error *err);

/* Parses config text in place (comments and line ends become NULs, so the
 * values handed to the callback live as long as text). `source` names it
 * in errors: "SOURCE:LINE: unknown setting 'KEY'", "SOURCE:LINE: 'KEY'
 * needs a value". Positional words do not exist here. Same returns as
 * att_options_parse_argv. */
int att_options_parse_text(const att_option_table *t, char *text, const char *source, void *target,
                           att_option_fn fn, void *arg, att_error *err);

/* The table entry named `name`, or NULL. */
const att_option *att_options_find(const att_option_table *t, const char *name);

/* `text` as a number in [o->min, o->max]: 0, or a negative code with err
 * set ("--NAME: expected a number in MIN..MAX, got 'TEXT'"). */
int att_option_number(const att_option *o, const char *text, double *out, att_error *err);

/* `text` as a decimal integer in [min, max] (no fraction, no exponent):
 * 0, or a negative code ("--NAME: expected an integer in MIN..MAX, got
 * 'TEXT'"). For options a command reads as text and checks itself. */
int att_option_int64(const char *name, const char *text, int64_t min, int64_t max, int64_t *out,
                     att_error *err);

/* One line per option: `  --name ARG` padded to `width`, the help, and
 * ` [default]` when the table gives one. */
void att_options_print_help(const att_option_table *t, int width, FILE *out);

#endif
