/* join_form.c - asking a step's inputs line by line (see join_form.h). */
#include "join_form.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "transcript.h"

int cli_form_start(cli_form *f, json_t *step)
{
    cli_form_clear(f);
    f->input = json_object();
    if (!f->input)
        return -1;
    f->step = json_incref(step);
    f->next = 0;
    return 0;
}

void cli_form_clear(cli_form *f)
{
    json_decref(f->step);
    json_decref(f->input);
    memset(f, 0, sizeof *f);
}

int cli_form_active(const cli_form *f)
{
    return f->step != NULL;
}

static const json_t *current(const cli_form *f)
{
    return json_array_get(json_object_get(f->step, "inputs"), f->next);
}

static const char *str(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static int is_required(const json_t *d)
{
    return json_is_true(json_object_get(d, "required"));
}

static json_int_t int_or(const json_t *d, const char *k, json_int_t def)
{
    const json_t *v = json_object_get(d, k);
    return json_is_integer(v) ? json_integer_value(v) : def;
}

static const json_t *vocab_list(const json_t *d, const json_t *vocab)
{
    const char *which = str(d, "vocab");
    if (!which) { /* the kind implies the list when the script leaves it out */
        const char *kind = str(d, "kind");
        which = !kind                                   ? ""
                : strcmp(kind, "emotion_reactive") == 0 ? "reactive"
                : strcmp(kind, "emotion_primary") == 0  ? "primary"
                : strcmp(kind, "need") == 0             ? "needs"
                                                        : "";
    }
    return json_object_get(vocab, which);
}

static int is_vocab_kind(const char *kind)
{
    return kind && (strcmp(kind, "emotion_reactive") == 0 || strcmp(kind, "emotion_primary") == 0 ||
                    strcmp(kind, "need") == 0);
}

void cli_form_ask(const cli_form *f, const json_t *vocab, int color, FILE *out)
{
    const json_t *d = current(f);
    if (!d)
        return;
    const char *kind = str(d, "kind");
    const char *label = str(d, "label");
    fprintf(out, "%s? ", CLI_BOLD(color));
    cli_put_clean(out, label ? label : (str(d, "name") ? str(d, "name") : "?"));
    fprintf(out, "%s", CLI_RESET(color));
    if (kind && strcmp(kind, "rating") == 0) {
        fprintf(out, " (a number from %lld to %lld", (long long)int_or(d, "min", 0),
                (long long)int_or(d, "max", 10));
    } else if (kind && strcmp(kind, "choice") == 0) {
        fprintf(out, " (a number or an id");
    } else if (is_vocab_kind(kind)) {
        fprintf(out, " (a number, a number then your own words, or just your words");
    } else {
        fprintf(out, " (one line of text");
    }
    fprintf(out, "%s)\n", is_required(d) ? "" : "; empty line to skip");
    if (kind && strcmp(kind, "choice") == 0) {
        size_t i;
        const json_t *o;
        json_array_foreach(json_object_get(d, "options"), i, o)
        {
            fprintf(out, "  %2zu) ", i + 1);
            cli_put_clean(out, str(o, "label") ? str(o, "label") : "?");
            fprintf(out, " [%s]\n", str(o, "id") ? str(o, "id") : "?");
        }
    } else if (is_vocab_kind(kind)) {
        size_t i;
        const json_t *e;
        json_array_foreach(vocab_list(d, vocab), i, e)
        {
            fprintf(out, "  %2zu) ", i + 1);
            cli_put_clean(out, str(e, "label") ? str(e, "label") : "?");
            if (str(e, "sentence")) {
                fprintf(out, "%s - ", CLI_DIM(color));
                cli_put_clean(out, str(e, "sentence"));
                fprintf(out, "%s", CLI_RESET(color));
            }
            fputc('\n', out);
        }
    }
    fprintf(out, "> ");
    fflush(out);
}

/* Parses a leading decimal number; returns its end or NULL. */
static const char *leading_number(const char *s, long long *out)
{
    if (!isdigit((unsigned char)*s))
        return NULL;
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno)
        return NULL;
    *out = v;
    return end;
}

static void trim(char *s)
{
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        s[--n] = 0;
    size_t lead = strspn(s, " \t");
    memmove(s, s + lead, n - lead + 1);
}

static json_t *parse_answer(const json_t *d, const json_t *vocab, const char *text, FILE *out)
{
    const char *kind = str(d, "kind");
    size_t max_len = (size_t)int_or(d, "max_length", 4000);
    if (kind && strcmp(kind, "rating") == 0) {
        long long v;
        const char *end = leading_number(text, &v);
        json_int_t lo = int_or(d, "min", 0), hi = int_or(d, "max", 10);
        if (!end || *end || v < lo || v > hi) {
            fprintf(out, "  please give a whole number from %lld to %lld\n", (long long)lo,
                    (long long)hi);
            return NULL;
        }
        return json_integer(v);
    }
    if (kind && strcmp(kind, "choice") == 0) {
        const json_t *opts = json_object_get(d, "options");
        long long v;
        const char *end = leading_number(text, &v);
        if (end && !*end && v >= 1 && (size_t)v <= json_array_size(opts))
            return json_string(str(json_array_get(opts, (size_t)v - 1), "id"));
        size_t i;
        const json_t *o;
        json_array_foreach(opts, i, o)
        {
            const char *id = str(o, "id"), *label = str(o, "label");
            if ((id && strcmp(id, text) == 0) || (label && strcasecmp(label, text) == 0))
                return json_string(id);
        }
        fprintf(out, "  please pick one of the numbers above\n");
        return NULL;
    }
    if (is_vocab_kind(kind)) {
        const json_t *list = vocab_list(d, vocab);
        long long v;
        const char *end = leading_number(text, &v);
        const char *id = NULL;
        const char *words = text;
        if (end && (*end == 0 || *end == ' ' || *end == ':' || *end == ',' || *end == '-')) {
            if (v < 1 || (size_t)v > json_array_size(list)) {
                fprintf(out, "  there is no entry %lld; pick 1..%zu or write your own words\n", v,
                        json_array_size(list));
                return NULL;
            }
            id = str(json_array_get(list, (size_t)v - 1), "id");
            words = end + strspn(end, " :,-\t");
        }
        if (strlen(words) > max_len) {
            fprintf(out, "  that is longer than %zu bytes\n", max_len);
            return NULL;
        }
        json_t *obj = json_object();
        if (!obj)
            return NULL;
        if (id)
            json_object_set_new(obj, "id", json_string(id));
        if (*words)
            json_object_set_new(obj, "text", json_string(words));
        return obj;
    }
    if (strlen(text) > max_len) {
        fprintf(out, "  that is longer than %zu bytes\n", max_len);
        return NULL;
    }
    return json_string(text);
}

int cli_form_answer(cli_form *f, const json_t *vocab, const char *line, FILE *out)
{
    const json_t *d = current(f);
    if (!d)
        return 1;
    char *text = strdup(line);
    if (!text)
        return -1;
    trim(text);
    const char *name = str(d, "name");
    int rc;
    if (!*text) {
        if (is_required(d)) {
            fprintf(out, "  this one is needed\n");
            rc = -1;
        } else {
            rc = 0; /* skipped */
        }
    } else {
        json_t *v = parse_answer(d, vocab, text, out);
        rc = v ? 0 : -1;
        if (v && name && json_object_set_new(f->input, name, v) < 0)
            rc = -1;
        else if (v && !name)
            json_decref(v);
    }
    free(text);
    if (rc < 0)
        return -1;
    f->next++;
    return f->next >= json_array_size(json_object_get(f->step, "inputs")) ? 1 : 0;
}
