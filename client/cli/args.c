/* args.c - the subcommands' options and --help, on the one option parser
 * the server uses too (attune/options.h); see args.h. */
#include "args.h"

#include <string.h>
#include "attune/options.h"

/* The command's table as the parser sees it: its options, then --help. */
static att_option_table parser_table(const cli_command *cmd, att_option rows[CLI_MAX_OPTIONS + 1])
{
    int n = cmd->n_options < CLI_MAX_OPTIONS ? cmd->n_options : CLI_MAX_OPTIONS;
    for (int i = 0; i < n; i++)
        rows[i] = (att_option){
            .name = cmd->options[i].name, .arg = cmd->options[i].arg, .help = cmd->options[i].help};
    rows[n] = (att_option){.name = "help", .help = "print this help"};
    int max_positional =
        cmd->max_positional < CLI_MAX_POSITIONAL ? cmd->max_positional : CLI_MAX_POSITIONAL;
    return (att_option_table){rows, (size_t)n + 1, max_positional};
}

typedef struct {
    cli_args *out;
    int help_index;
} parse_ctx;

/* Each option's text (a flag's: "") and each positional word, in order. */
static int take(void *arg, int index, const char *value, att_error *err)
{
    parse_ctx *c = arg;
    (void)err;
    if (index < 0) {
        c->out->positional[c->out->n_positional++] = value;
        return 0;
    }
    if (index == c->help_index) {
        c->out->help = 1;
        return 1; /* the rest of the line does not matter */
    }
    c->out->value[index] = value ? value : "";
    return 0;
}

int cli_parse(const cli_command *cmd, int argc, char **argv, cli_args *out, FILE *err)
{
    memset(out, 0, sizeof *out);
    att_option rows[CLI_MAX_OPTIONS + 1];
    att_option_table table = parser_table(cmd, rows);
    parse_ctx c = {out, (int)table.n_options - 1};
    att_error e = {0};
    int rc = att_options_parse_argv(&table, argc, argv, NULL, take, &c, &e);
    if (rc < 0) {
        fprintf(err, "attune: %s\n", e.message);
        return -1;
    }
    if (rc == 0 && out->n_positional < cmd->min_positional) {
        fprintf(err, "attune: missing argument; usage: %s\n", cmd->usage);
        return -1;
    }
    return 0;
}

const char *cli_get(const cli_command *cmd, const cli_args *a, const char *name)
{
    for (int i = 0; i < cmd->n_options && i < CLI_MAX_OPTIONS; i++)
        if (strcmp(cmd->options[i].name, name) == 0)
            return a->value[i];
    return NULL;
}

void cli_print_help(const cli_command *cmd, FILE *out)
{
    att_option rows[CLI_MAX_OPTIONS + 1];
    att_option_table table = parser_table(cmd, rows);
    fprintf(out, "usage: %s\n\n%s\n", cmd->usage, cmd->summary);
    if (cmd->n_options > 0)
        fprintf(out, "\noptions:\n");
    att_options_print_help(&table, 24, out);
    fprintf(out, "\nexit codes: 0 success, 1 failure (store, network or server), 2 bad usage or "
                 "input\n");
}

int cli_parse_int64(const char *opt, const char *text, int64_t min, int64_t max, int64_t *out,
                    FILE *err)
{
    att_error e = {0};
    if (att_option_int64(opt, text, min, max, out, &e) < 0) {
        fprintf(err, "attune: %s\n", e.message);
        return -1;
    }
    return 0;
}

int cli_parse_double(const char *opt, const char *text, double min, double max, double *out,
                     FILE *err)
{
    att_option o = {.name = opt, .min = min, .max = max};
    att_error e = {0};
    if (att_option_number(&o, text, out, &e) < 0) {
        fprintf(err, "attune: %s\n", e.message);
        return -1;
    }
    return 0;
}
