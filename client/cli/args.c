/* args.c - option parsing and --help for the subcommands (see args.h). */
#include "args.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static int find(const cli_command *cmd, const char *name, size_t len)
{
    for (int i = 0; i < cmd->n_options; i++)
        if (strlen(cmd->options[i].name) == len && strncmp(cmd->options[i].name, name, len) == 0)
            return i;
    return -1;
}

int cli_parse(const cli_command *cmd, int argc, char **argv, cli_args *out, FILE *err)
{
    memset(out, 0, sizeof *out);
    int only_positional = 0;
    for (int i = 0; i < argc; i++) {
        const char *w = argv[i];
        if (!only_positional && (strcmp(w, "--help") == 0 || strcmp(w, "-h") == 0)) {
            out->help = 1;
            return 0;
        }
        if (!only_positional && strcmp(w, "--") == 0) {
            only_positional = 1;
            continue;
        }
        if (!only_positional && strncmp(w, "--", 2) == 0) {
            const char *name = w + 2;
            const char *eq = strchr(name, '=');
            size_t len = eq ? (size_t)(eq - name) : strlen(name);
            int k = find(cmd, name, len);
            if (k < 0) {
                fprintf(err, "attune: unknown option --%.*s (see --help)\n", (int)len, name);
                return -1;
            }
            const cli_option *o = &cmd->options[k];
            if (!o->arg) {
                if (eq) {
                    fprintf(err, "attune: --%s takes no value\n", o->name);
                    return -1;
                }
                out->value[k] = "";
            } else if (eq) {
                out->value[k] = eq + 1;
            } else if (i + 1 < argc) {
                out->value[k] = argv[++i];
            } else {
                fprintf(err, "attune: --%s needs a value (%s)\n", o->name, o->arg);
                return -1;
            }
            continue;
        }
        if (w[0] == '-' && w[1] && !only_positional) {
            fprintf(err, "attune: unknown option %s (see --help)\n", w);
            return -1;
        }
        if (out->n_positional >= cmd->max_positional || out->n_positional >= CLI_MAX_POSITIONAL) {
            fprintf(err, "attune: unexpected argument '%s' (see --help)\n", w);
            return -1;
        }
        out->positional[out->n_positional++] = w;
    }
    if (out->n_positional < cmd->min_positional) {
        fprintf(err, "attune: missing argument; usage: %s\n", cmd->usage);
        return -1;
    }
    return 0;
}

const char *cli_get(const cli_command *cmd, const cli_args *a, const char *name)
{
    int k = find(cmd, name, strlen(name));
    return k < 0 ? NULL : a->value[k];
}

void cli_print_help(const cli_command *cmd, FILE *out)
{
    fprintf(out, "usage: %s\n\n%s\n", cmd->usage, cmd->summary);
    if (cmd->n_options > 0)
        fprintf(out, "\noptions:\n");
    for (int i = 0; i < cmd->n_options; i++) {
        char left[64];
        snprintf(left, sizeof left, "--%s%s%s", cmd->options[i].name,
                 cmd->options[i].arg ? " " : "", cmd->options[i].arg ? cmd->options[i].arg : "");
        fprintf(out, "  %-24s %s\n", left, cmd->options[i].help);
    }
    fprintf(out, "  %-24s %s\n", "--help", "print this help");
    fprintf(out, "\nexit codes: 0 success, 1 failure (store, network or server), 2 bad usage or "
                 "input\n");
}

int cli_parse_int64(const char *opt, const char *text, int64_t min, int64_t max, int64_t *out,
                    FILE *err)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno || !end || end == text || *end || v < min || v > max) {
        fprintf(err, "attune: --%s: expected an integer in %lld..%lld, got '%s'\n", opt,
                (long long)min, (long long)max, text);
        return -1;
    }
    *out = v;
    return 0;
}

int cli_parse_double(const char *opt, const char *text, double min, double max, double *out,
                     FILE *err)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(text, &end);
    if (errno || !end || end == text || *end || !isfinite(v) || v < min || v > max) {
        fprintf(err, "attune: --%s: expected a number in %g..%g, got '%s'\n", opt, min, max, text);
        return -1;
    }
    *out = v;
    return 0;
}
