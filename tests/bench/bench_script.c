/* bench_script.c - valid, detector-neutral turn inputs per exercise step
 * (see bench_script.h). */
#include "bench_script.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Free text with no word from the blame lexicon. */
#define NEUTRAL_TEXT "We talked about the plans for the weekend."
/* A rating this high never opens rating_low, and a constant one never
 * opens rating_drop. */
#define NEUTRAL_RATING 7

const bench_script *bench_script_find(const bench_scripts *t, const char *exercise_id)
{
    for (int i = 0; i < t->n; i++)
        if (strcmp(t->scripts[i].id, exercise_id) == 0)
            return &t->scripts[i];
    return NULL;
}

static void script_free(bench_script *s)
{
    for (int i = 0; i < s->n_steps; i++) {
        free(s->steps[i].id);
        free(s->steps[i].input);
    }
    free(s->steps);
    free(s->id);
    memset(s, 0, sizeof *s);
}

/* Value for one input description, or NULL with err set. New reference. */
static json_t *input_value(json_t *desc, json_t *branch, json_t *vocab, char *err, size_t err_size)
{
    const char *name = json_string_value(json_object_get(desc, "name"));
    const char *kind = json_string_value(json_object_get(desc, "kind"));
    if (!name || !kind) {
        snprintf(err, err_size, "input without name or kind");
        return NULL;
    }
    if (strcmp(kind, "text") == 0)
        return json_string(NEUTRAL_TEXT);
    if (strcmp(kind, "rating") == 0) {
        json_t *mn = json_object_get(desc, "min"), *mx = json_object_get(desc, "max");
        json_int_t lo = json_is_integer(mn) ? json_integer_value(mn) : 0;
        json_int_t hi = json_is_integer(mx) ? json_integer_value(mx) : 10;
        json_int_t r = NEUTRAL_RATING;
        if (r > hi)
            r = hi;
        if (r < lo)
            r = lo;
        return json_integer(r);
    }
    if (strcmp(kind, "choice") == 0) {
        /* The option that does not take the branch (a rejected reflection
         * would count toward a misattunement rupture). */
        const char *avoid = NULL;
        const char *branch_input = json_string_value(json_object_get(branch, "input"));
        if (branch_input && strcmp(branch_input, name) == 0)
            avoid = json_string_value(json_object_get(branch, "equals"));
        json_t *options = json_object_get(desc, "options");
        size_t i;
        json_t *opt;
        json_array_foreach(options, i, opt)
        {
            const char *id = json_string_value(json_object_get(opt, "id"));
            if (id && (!avoid || strcmp(id, avoid) != 0))
                return json_string(id);
        }
        snprintf(err, err_size, "choice input %s has no usable option", name);
        return NULL;
    }
    const char *list = json_string_value(json_object_get(desc, "vocab"));
    if (!list) {
        if (strcmp(kind, "emotion_reactive") == 0)
            list = "reactive";
        else if (strcmp(kind, "emotion_primary") == 0)
            list = "primary";
        else if (strcmp(kind, "need") == 0)
            list = "needs";
    }
    if (list) {
        json_t *first = json_array_get(json_object_get(vocab, list), 0);
        const char *id = json_string_value(json_object_get(first, "id"));
        if (!id) {
            snprintf(err, err_size, "vocabulary %s is empty", list);
            return NULL;
        }
        return json_pack("{s:s}", "id", id);
    }
    snprintf(err, err_size, "input kind %s unknown to the generator", kind);
    return NULL;
}

static int build_step(json_t *step, json_t *vocab, bench_step *out, char *err, size_t err_size)
{
    const char *id = json_string_value(json_object_get(step, "id"));
    json_t *inputs = json_object_get(step, "inputs");
    if (!id || !json_is_array(inputs)) {
        snprintf(err, err_size, "step without id or inputs");
        return -1;
    }
    json_t *branch = json_object_get(step, "branch");
    json_t *input = json_object();
    size_t i;
    json_t *desc;
    json_array_foreach(inputs, i, desc)
    {
        if (!json_is_true(json_object_get(desc, "required")))
            continue;
        json_t *v = input_value(desc, branch, vocab, err, err_size);
        if (!v) {
            json_decref(input);
            return -1;
        }
        json_object_set_new(input, json_string_value(json_object_get(desc, "name")), v);
    }
    out->input = json_dumps(input, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(input);
    out->id = strdup(id);
    if (!out->input || !out->id) {
        snprintf(err, err_size, "out of memory");
        return -1;
    }
    return 0;
}

int bench_script_add(bench_scripts *t, const char *exercise_json, size_t exercise_len,
                     const char *vocab_json, size_t vocab_len, const bench_script **out, char *err,
                     size_t err_size)
{
    json_error_t jerr;
    json_t *ex = json_loadb(exercise_json, exercise_len, 0, &jerr);
    json_t *vocab = json_loadb(vocab_json, vocab_len, 0, &jerr);
    int rc = -1;
    bench_script s = {0};
    if (!ex || !vocab) {
        snprintf(err, err_size, "exercise or vocab is not JSON: %s", jerr.text);
        goto done;
    }
    const char *id = json_string_value(json_object_get(ex, "id"));
    json_t *steps = json_object_get(ex, "steps");
    json_t *rounds = json_object_get(ex, "rounds");
    if (!id || !json_is_array(steps) || json_array_size(steps) == 0 || !json_is_integer(rounds)) {
        snprintf(err, err_size, "exercise without id, steps or rounds");
        goto done;
    }
    const bench_script *cached = bench_script_find(t, id);
    if (cached) {
        *out = cached;
        rc = 0;
        goto done;
    }
    if (t->n == BENCH_MAX_SCRIPTS) {
        snprintf(err, err_size, "more than %d exercises", BENCH_MAX_SCRIPTS);
        goto done;
    }
    s.id = strdup(id);
    s.rounds = (int)json_integer_value(rounds);
    s.steps = calloc(json_array_size(steps), sizeof *s.steps);
    if (!s.id || !s.steps) {
        snprintf(err, err_size, "out of memory");
        goto done;
    }
    size_t i;
    json_t *step;
    json_array_foreach(steps, i, step)
    {
        if (build_step(step, vocab, &s.steps[i], err, err_size) < 0) {
            s.n_steps = (int)i + 1; /* free what this step allocated too */
            goto done;
        }
    }
    s.n_steps = (int)json_array_size(steps);
    t->scripts[t->n] = s;
    *out = &t->scripts[t->n];
    t->n++;
    memset(&s, 0, sizeof s);
    rc = 0;
done:
    script_free(&s);
    json_decref(ex);
    json_decref(vocab);
    return rc;
}

void bench_scripts_free(bench_scripts *t)
{
    for (int i = 0; i < t->n; i++)
        script_free(&t->scripts[i]);
    t->n = 0;
}
