/* transcript.c - rendering events as transcript entries (see transcript.h). */
#include "transcript.h"

#include <stdlib.h>
#include <string.h>

void cli_transcript_init(cli_transcript *t, const json_t *script, const json_t *vocab, int color)
{
    memset(t, 0, sizeof *t);
    t->script = script;
    t->vocab = vocab;
    t->color = color;
    t->t0 = -1;
}

void cli_transcript_free(cli_transcript *t)
{
    free(t->ruptures);
    t->ruptures = NULL;
    t->n_ruptures = t->cap_ruptures = 0;
}

void cli_put_clean(FILE *out, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        fputc((*p < 0x20 || *p == 0x7f) ? ' ' : *p, out);
}

const char *cli_role_color(int color, const char *role)
{
    if (!color || !role)
        return "";
    if (strcmp(role, "partner_a") == 0)
        return "\033[36m";
    if (strcmp(role, "partner_b") == 0)
        return "\033[35m";
    if (strcmp(role, "therapist") == 0)
        return "\033[33m";
    if (strcmp(role, "observer") == 0)
        return "\033[34m";
    return "\033[90m";
}

static const char *str(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

const json_t *cli_vocab_entry(const json_t *vocab, const char *kind, const char *id)
{
    const json_t *arr = json_object_get(vocab, kind);
    size_t i;
    const json_t *e;
    if (!id)
        return NULL;
    json_array_foreach(arr, i, e)
    {
        const char *eid = str(e, "id");
        if (eid && strcmp(eid, id) == 0)
            return e;
    }
    return NULL;
}

const json_t *cli_script_step(const json_t *script, const char *step_id)
{
    const json_t *steps = json_object_get(script, "steps");
    size_t i;
    const json_t *s;
    if (!step_id)
        return NULL;
    json_array_foreach(steps, i, s)
    {
        const char *sid = str(s, "id");
        if (sid && strcmp(sid, step_id) == 0)
            return s;
    }
    return NULL;
}

/* The label of a vocabulary entry, or its id when unknown. */
static const char *vocab_label(const cli_transcript *t, const char *kind, const char *id)
{
    const char *label = str(cli_vocab_entry(t->vocab, kind, id), "label");
    return label ? label : (id ? id : "?");
}

static void put_duration(FILE *out, int64_t ms)
{
    if (ms < 0)
        ms = 0;
    int64_t s = ms / 1000;
    if (s >= 3600)
        fprintf(out, "%lld:%02lld:%02lld", (long long)(s / 3600), (long long)(s / 60 % 60),
                (long long)(s % 60));
    else
        fprintf(out, "%lld:%02lld", (long long)(s / 60), (long long)(s % 60));
}

static void put_quoted(FILE *out, const char *text)
{
    fputc('"', out);
    cli_put_clean(out, text);
    fputc('"', out);
}

/* One input value, labelled from its description. */
static void put_value(const cli_transcript *t, FILE *out, const json_t *desc, const json_t *v)
{
    const char *kind = str(desc, "kind");
    if (json_is_string(v) && kind && strcmp(kind, "choice") == 0) {
        const json_t *opts = json_object_get(desc, "options");
        size_t i;
        const json_t *o;
        json_array_foreach(opts, i, o)
        {
            const char *oid = str(o, "id");
            if (oid && strcmp(oid, json_string_value(v)) == 0) {
                cli_put_clean(out, str(o, "label") ? str(o, "label") : oid);
                return;
            }
        }
        cli_put_clean(out, json_string_value(v));
    } else if (json_is_string(v)) {
        put_quoted(out, json_string_value(v));
    } else if (json_is_integer(v)) {
        json_int_t max = json_is_integer(json_object_get(desc, "max"))
                             ? json_integer_value(json_object_get(desc, "max"))
                             : 10;
        fprintf(out, "%lld/%lld", (long long)json_integer_value(v), (long long)max);
    } else if (json_is_object(v)) {
        const char *id = str(v, "id");
        const char *text = str(v, "text");
        const char *vk = str(desc, "vocab");
        if (id) {
            fprintf(out, "%s", CLI_BOLD(t->color));
            cli_put_clean(out, vocab_label(t, vk ? vk : "", id));
            fprintf(out, "%s", CLI_RESET(t->color));
        }
        if (id && text)
            fprintf(out, " - ");
        if (text)
            put_quoted(out, text);
    } else {
        char *dump = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        cli_put_clean(out, dump ? dump : "?");
        free(dump);
    }
}

static void put_turn(const cli_transcript *t, FILE *out, const json_t *ev)
{
    const char *step_id = str(ev, "step");
    const json_t *step = cli_script_step(t->script, step_id);
    const json_t *input = json_object_get(ev, "input");
    fprintf(out,
            "turn, round %lld: ", (long long)json_integer_value(json_object_get(ev, "round")) + 1);
    fprintf(out, "%s", CLI_BOLD(t->color));
    cli_put_clean(out, str(step, "title") ? str(step, "title") : (step_id ? step_id : "?"));
    fprintf(out, "%s\n", CLI_RESET(t->color));
    /* Inputs in the script's order, then any the script does not describe. */
    const json_t *descs = json_object_get(step, "inputs");
    size_t i;
    const json_t *d;
    json_array_foreach(descs, i, d)
    {
        const char *name = str(d, "name");
        const json_t *v = name ? json_object_get(input, name) : NULL;
        if (!v)
            continue;
        fprintf(out, "%22s", "");
        cli_put_clean(out, str(d, "label") ? str(d, "label") : name);
        fprintf(out, ": ");
        put_value(t, out, d, v);
        fputc('\n', out);
    }
    const char *name;
    const json_t *v;
    json_object_foreach((json_t *)input, name, v)
    {
        int described = 0;
        json_array_foreach(descs, i, d)
        {
            if (str(d, "name") && strcmp(str(d, "name"), name) == 0)
                described = 1;
        }
        if (described)
            continue;
        fprintf(out, "%22s", "");
        cli_put_clean(out, name);
        fprintf(out, ": ");
        put_value(t, out, NULL, v);
        fputc('\n', out);
    }
}

static cli_rupture_seen *rupture_find(cli_transcript *t, int id)
{
    for (size_t i = 0; i < t->n_ruptures; i++)
        if (t->ruptures[i].id == id)
            return &t->ruptures[i];
    return NULL;
}

/* Remembers a rupture (kind, marker, when it opened) for its repair entry. */
static void rupture_remember(cli_transcript *t, const json_t *r, int64_t at)
{
    int id = (int)json_integer_value(json_object_get(r, "id"));
    cli_rupture_seen *seen = rupture_find(t, id);
    if (!seen) {
        if (t->n_ruptures == t->cap_ruptures) {
            size_t cap = t->cap_ruptures ? t->cap_ruptures * 2 : 16;
            cli_rupture_seen *grown = realloc(t->ruptures, cap * sizeof *grown);
            if (!grown)
                return; /* the repair entry then lacks kind and time; not fatal */
            t->ruptures = grown;
            t->cap_ruptures = cap;
        }
        seen = &t->ruptures[t->n_ruptures++];
        memset(seen, 0, sizeof *seen);
        seen->id = id;
        seen->opened_at = at;
    }
    snprintf(seen->kind, sizeof seen->kind, "%s", str(r, "kind") ? str(r, "kind") : "?");
    snprintf(seen->marker, sizeof seen->marker, "%s", str(r, "marker") ? str(r, "marker") : "?");
}

static void put_rupture(const cli_transcript *t, FILE *out, const json_t *r)
{
    const char *marker = str(r, "marker");
    const char *label = str(cli_vocab_entry(t->vocab, "markers", marker), "label");
    fprintf(out, "#%lld %s / ", (long long)json_integer_value(json_object_get(r, "id")),
            str(r, "kind") ? str(r, "kind") : "?");
    cli_put_clean(out, marker ? marker : "?");
    if (label) {
        fprintf(out, " (");
        cli_put_clean(out, label);
        fprintf(out, ")");
    }
    fprintf(out, "%s", CLI_RESET(t->color));
    fprintf(out, ", %s with %s, by %s", str(r, "who") ? str(r, "who") : "?",
            str(r, "with") ? str(r, "with") : "?", str(r, "source") ? str(r, "source") : "?");
    const json_t *step = cli_script_step(t->script, str(r, "step"));
    if (step) {
        fprintf(out, ", at ");
        cli_put_clean(out, str(step, "title") ? str(step, "title") : "?");
        fprintf(out, " (round %lld)",
                (long long)json_integer_value(json_object_get(r, "round")) + 1);
    }
    const json_t *ev = json_object_get(r, "evidence");
    if (json_array_size(ev) > 0) {
        fprintf(out, ", evidence seq");
        size_t i;
        const json_t *e;
        json_array_foreach(ev, i, e)
        {
            fprintf(out, "%s%lld", i ? "," : " ", (long long)json_integer_value(e));
        }
    }
    fputc('\n', out);
}

int cli_transcript_event(cli_transcript *t, int64_t seq, const json_t *ev, FILE *out)
{
    const char *type = str(ev, "type");
    const char *by = str(ev, "by");
    int64_t at = json_integer_value(json_object_get(ev, "at"));
    int c = t->color;
    if (t->t0 < 0)
        t->t0 = at;
    if (!type)
        type = "?";
    fprintf(out, "%s%5lld +", CLI_DIM(c), (long long)seq);
    put_duration(out, at - t->t0);
    fprintf(out, "%s  %s%-10s%s ", CLI_RESET(c), cli_role_color(c, by), by ? by : "?",
            CLI_RESET(c));

    if (strcmp(type, "room_created") == 0) {
        fprintf(out, "room created: ");
        cli_put_clean(out, str(t->script, "title") ? str(t->script, "title") : "?");
        fprintf(out, " (%s), %s speaks first\n", str(ev, "exercise") ? str(ev, "exercise") : "?",
                str(ev, "first_speaker") ? str(ev, "first_speaker") : "?");
    } else if (strcmp(type, "joined") == 0) {
        fprintf(out, "joined\n");
    } else if (strcmp(type, "left") == 0) {
        fprintf(out, "left (%s)\n", str(ev, "reason") ? str(ev, "reason") : "?");
    } else if (strcmp(type, "consented") == 0) {
        fprintf(out, "consented\n");
    } else if (strcmp(type, "turn") == 0) {
        put_turn(t, out, ev);
    } else if (strcmp(type, "control") == 0) {
        fprintf(out, "control: %s\n", str(ev, "action") ? str(ev, "action") : "?");
    } else if (strcmp(type, "pause_requested") == 0) {
        fprintf(out, "asked for a pause");
        if (str(ev, "note")) {
            fprintf(out, ": ");
            put_quoted(out, str(ev, "note"));
        }
        fputc('\n', out);
    } else if (strcmp(type, "repair_attempt") == 0) {
        fprintf(out, "%srepair attempt%s (accept with /accept %lld)", CLI_GREEN(c), CLI_RESET(c),
                (long long)seq);
        if (json_object_get(ev, "rupture_id"))
            fprintf(out, " for rupture #%lld",
                    (long long)json_integer_value(json_object_get(ev, "rupture_id")));
        if (str(ev, "text")) {
            fprintf(out, ": ");
            put_quoted(out, str(ev, "text"));
        }
        fputc('\n', out);
    } else if (strcmp(type, "repair_accepted") == 0) {
        fprintf(out, "%saccepted repair attempt %lld%s\n", CLI_GREEN(c),
                (long long)json_integer_value(json_object_get(ev, "attempt_seq")), CLI_RESET(c));
    } else if (strcmp(type, "rupture_opened") == 0 || strcmp(type, "rupture_suspected") == 0 ||
               strcmp(type, "rupture_confirmed") == 0) {
        const json_t *r = json_object_get(ev, "rupture");
        rupture_remember(t, r, at);
        const char *what = strcmp(type, "rupture_opened") == 0      ? "RUPTURE opened"
                           : strcmp(type, "rupture_suspected") == 0 ? "rupture suspected (private)"
                                                                    : "RUPTURE confirmed";
        fprintf(out, "%s%s ", CLI_RED(c), what);
        put_rupture(t, out, r);
    } else if (strcmp(type, "rupture_dismissed") == 0) {
        fprintf(out, "%srupture #%lld dismissed (private)", CLI_DIM(c),
                (long long)json_integer_value(json_object_get(ev, "rupture_id")));
        if (str(ev, "note")) {
            fprintf(out, ": ");
            put_quoted(out, str(ev, "note"));
        }
        fprintf(out, "%s\n", CLI_RESET(c));
    } else if (strcmp(type, "rupture_repaired") == 0) {
        int id = (int)json_integer_value(json_object_get(ev, "rupture_id"));
        const cli_rupture_seen *seen = rupture_find(t, id);
        const char *how = str(ev, "how");
        fprintf(out, "%sREPAIRED rupture #%d", CLI_GREEN(c), id);
        if (seen)
            fprintf(out, " %s / %s", seen->kind, seen->marker);
        fprintf(out, "%s by %s", CLI_RESET(c), how ? how : "?");
        if (str(ev, "strategy")) {
            const char *label =
                str(cli_vocab_entry(t->vocab, "strategies", str(ev, "strategy")), "label");
            fprintf(out, " (");
            cli_put_clean(out, label ? label : str(ev, "strategy"));
            fprintf(out, ")");
        }
        if (json_object_get(ev, "attempt_seq"))
            fprintf(out, " (attempt %lld)",
                    (long long)json_integer_value(json_object_get(ev, "attempt_seq")));
        if (seen) {
            int64_t ms = at - seen->opened_at;
            fprintf(out, ", time to repair ");
            if (ms < 60000)
                fprintf(out, "%.1f s", (double)(ms < 0 ? 0 : ms) / 1000.0);
            else
                put_duration(out, ms);
        }
        fputc('\n', out);
    } else if (strcmp(type, "note") == 0) {
        fprintf(out, "%snote (private)", CLI_DIM(c));
        if (json_object_get(ev, "rupture_id"))
            fprintf(out, " on rupture #%lld",
                    (long long)json_integer_value(json_object_get(ev, "rupture_id")));
        fprintf(out, ": ");
        put_quoted(out, str(ev, "text") ? str(ev, "text") : "");
        fprintf(out, "%s\n", CLI_RESET(c));
    } else {
        cli_put_clean(out, type);
        fputc('\n', out);
    }
    return ferror(out) ? -1 : 0;
}
