/* options.c - the option parser of both programs (see options.h). */
#include "attune/options.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const att_option *find_named(const att_option_table *t, const char *name, size_t len)
{
    for (size_t i = 0; i < t->n_options; i++)
        if (strlen(t->options[i].name) == len && memcmp(t->options[i].name, name, len) == 0)
            return &t->options[i];
    return NULL;
}

const att_option *att_options_find(const att_option_table *t, const char *name)
{
    return find_named(t, name, strlen(name));
}

int att_option_number(const att_option *o, const char *text, double *out, att_error *err)
{
    char *end = NULL;
    errno = 0;
    double x = strtod(text, &end);
    if (errno || !end || end == text || *end || !isfinite(x) || x < o->min || x > o->max)
        return att_fail(err, ATT_ERR_BAD_MESSAGE,
                        "--%s: expected a number in %.15g..%.15g, got '%s'", o->name, o->min,
                        o->max, text);
    *out = x;
    return 0;
}

int att_option_int64(const char *name, const char *text, int64_t min, int64_t max, int64_t *out,
                     att_error *err)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno || !end || end == text || *end || v < min || v > max)
        return att_fail(err, ATT_ERR_BAD_MESSAGE,
                        "--%s: expected an integer in %lld..%lld, got '%s'", name, (long long)min,
                        (long long)max, text);
    *out = v;
    return 0;
}

/* A typed option's value into its field of target (with no target: only
 * checked). */
static int store(const att_option *o, const char *value, void *target, att_error *err)
{
    char *field = target ? (char *)target + o->offset : NULL;
    if (o->kind == ATT_OPT_FLAG) {
        if (field)
            *(int *)field = 1;
        return 0;
    }
    if (o->kind == ATT_OPT_TEXT) {
        size_t n = strlen(value);
        if (n >= o->size)
            return att_fail(err, ATT_ERR_BAD_MESSAGE, "--%s: value too long", o->name);
        if (field)
            memcpy(field, value, n + 1);
        return 0;
    }
    double x = 0;
    if (att_option_number(o, value, &x, err) < 0)
        return -ATT_ERR_BAD_MESSAGE;
    if (!field)
        return 0;
    switch (o->kind) {
    case ATT_OPT_INT:
        *(int *)field = (int)x;
        break;
    case ATT_OPT_INT64:
        *(int64_t *)field = (int64_t)x;
        break;
    case ATT_OPT_SIZE:
        *(size_t *)field = (size_t)x;
        break;
    default:
        *(double *)field = x;
        break;
    }
    return 0;
}

/* An option found with its value (NULL for a flag): stored, or handed on. */
static int found(const att_option_table *t, const att_option *o, const char *value, void *target,
                 att_option_fn fn, void *arg, att_error *err)
{
    if (o->kind != ATT_OPT_CALL)
        return store(o, value, target, err);
    return fn ? fn(arg, (int)(o - t->options), value, err) : 0;
}

int att_options_parse_argv(const att_option_table *t, int argc, char **argv, void *target,
                           att_option_fn fn, void *arg, att_error *err)
{
    int only_positional = 0, n_positional = 0;
    for (int i = 0; i < argc; i++) {
        const char *w = argv[i];
        const att_option *o = NULL;
        int rc;
        if (only_positional || w[0] != '-' || w[1] == '\0') {
            if (n_positional >= t->max_positional)
                return att_fail(err, ATT_ERR_BAD_MESSAGE, "unexpected argument '%s' (see --help)",
                                w);
            n_positional++;
            rc = fn ? fn(arg, -1, w, err) : 0;
        } else if (strcmp(w, "--") == 0) {
            only_positional = 1;
            continue;
        } else if (strcmp(w, "-h") == 0 && (o = att_options_find(t, "help")) != NULL) {
            rc = found(t, o, NULL, target, fn, arg, err);
        } else if (w[1] != '-') {
            return att_fail(err, ATT_ERR_BAD_MESSAGE, "unknown option %s (see --help)", w);
        } else {
            const char *name = w + 2, *eq = strchr(name, '='), *value = NULL;
            size_t len = eq ? (size_t)(eq - name) : strlen(name);
            o = find_named(t, name, len);
            if (!o)
                return att_fail(err, ATT_ERR_BAD_MESSAGE, "unknown option --%.*s (see --help)",
                                (int)len, name);
            if (!o->arg) {
                if (eq)
                    return att_fail(err, ATT_ERR_BAD_MESSAGE, "--%s takes no value", o->name);
            } else if (eq) {
                value = eq + 1;
            } else if (i + 1 < argc) {
                value = argv[++i];
            } else {
                return att_fail(err, ATT_ERR_BAD_MESSAGE, "--%s needs a value (%s)", o->name,
                                o->arg);
            }
            rc = found(t, o, value, target, fn, arg, err);
        }
        if (rc != 0)
            return rc;
    }
    return 0;
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
        s[--n] = '\0';
    return s;
}

int att_options_parse_text(const att_option_table *t, char *text, const char *source, void *target,
                           att_option_fn fn, void *arg, att_error *err)
{
    int lineno = 0;
    for (char *line = text; line;) {
        char *next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        lineno++;
        char *hash = strchr(line, '#');
        if (hash)
            *hash = '\0';
        char *key = trim(line), *eq = strchr(key, '='), *value = NULL;
        line = next;
        if (!*key)
            continue;
        if (eq) {
            *eq = '\0';
            value = trim(eq + 1);
            key = trim(key);
        }
        const att_option *o = att_options_find(t, key);
        if (!o || strcmp(key, "config") == 0 || strcmp(key, "help") == 0)
            return att_fail(err, ATT_ERR_BAD_MESSAGE, "%s:%d: unknown setting '%s'", source, lineno,
                            key);
        int rc = 0;
        if (!o->arg) {
            if (!value || strcmp(value, "true") == 0 || strcmp(value, "1") == 0 ||
                strcmp(value, "yes") == 0)
                rc = found(t, o, NULL, target, fn, arg, err);
        } else if (!value) {
            return att_fail(err, ATT_ERR_BAD_MESSAGE, "%s:%d: '%s' needs a value", source, lineno,
                            key);
        } else {
            rc = found(t, o, value, target, fn, arg, err);
        }
        if (rc != 0)
            return rc;
    }
    return 0;
}

void att_options_print_help(const att_option_table *t, int width, FILE *out)
{
    for (size_t i = 0; i < t->n_options; i++) {
        const att_option *o = &t->options[i];
        char left[64];
        snprintf(left, sizeof left, "--%s%s%s", o->name, o->arg ? " " : "", o->arg ? o->arg : "");
        fprintf(out, "  %-*s %s", width, left, o->help);
        if (o->def && o->def[0])
            fprintf(out, " [%s]", o->def);
        fputc('\n', out);
    }
}
