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
    free(t->suspicions);
    t->suspicions = NULL;
    t->n_suspicions = t->cap_suspicions = 0;
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

static cli_rupture_seen *seen_find(cli_rupture_seen *list, size_t n, int id)
{
    for (size_t i = 0; i < n; i++)
        if (list[i].id == id)
            return &list[i];
    return NULL;
}

static cli_rupture_seen *rupture_find(cli_transcript *t, int id)
{
    return seen_find(t->ruptures, t->n_ruptures, id);
}

static cli_rupture_seen *suspicion_find(cli_transcript *t, int id)
{
    return seen_find(t->suspicions, t->n_suspicions, id);
}

/* Remembers a rupture or a suspicion (kind, marker, when it opened) for the
 * entries that refer to it later; returns its entry or NULL (out of memory:
 * those entries then lack kind and time, which is not fatal). */
static cli_rupture_seen *seen_remember(cli_rupture_seen **list, size_t *n, size_t *cap,
                                       const json_t *r, int64_t at)
{
    int id = (int)json_integer_value(json_object_get(r, "id"));
    cli_rupture_seen *seen = seen_find(*list, *n, id);
    if (!seen) {
        if (*n == *cap) {
            size_t grown_cap = *cap ? *cap * 2 : 16;
            cli_rupture_seen *grown = realloc(*list, grown_cap * sizeof *grown);
            if (!grown)
                return NULL;
            *list = grown;
            *cap = grown_cap;
        }
        seen = &(*list)[(*n)++];
        memset(seen, 0, sizeof *seen);
        seen->id = id;
        seen->opened_at = at;
    }
    snprintf(seen->kind, sizeof seen->kind, "%s", str(r, "kind") ? str(r, "kind") : "?");
    snprintf(seen->marker, sizeof seen->marker, "%s", str(r, "marker") ? str(r, "marker") : "?");
    return seen;
}

/* The body of a rupture or suspicion entry, after its id. */
static void put_rupture_body(const cli_transcript *t, FILE *out, const json_t *r)
{
    const char *marker = str(r, "marker");
    const char *label = str(cli_vocab_entry(t->vocab, "markers", marker), "label");
    fprintf(out, " %s / ", str(r, "kind") ? str(r, "kind") : "?");
    cli_put_clean(out, marker ? marker : "?");
    if (label) {
        fprintf(out, " (");
        cli_put_clean(out, label);
        fprintf(out, ")");
    }
    fprintf(out, "%s", CLI_RESET(t->color));
    if (str(r, "class"))
        fprintf(out, " [%s]", str(r, "class"));
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
}

static long long int_member(const json_t *o, const char *k)
{
    return (long long)json_integer_value(json_object_get(o, k));
}

static int viewer_is(const cli_transcript *t, const char *role)
{
    return t->viewer && strcmp(t->viewer, role) == 0;
}

static int viewer_is_partner(const cli_transcript *t)
{
    return viewer_is(t, "partner_a") || viewer_is(t, "partner_b");
}

static void put_note_text(FILE *out, const json_t *ev)
{
    if (str(ev, "note")) {
        fprintf(out, ": ");
        put_quoted(out, str(ev, "note"));
    }
}

/* The safety question with this id, or NULL. */
static const json_t *safety_question(const cli_transcript *t, const char *id)
{
    size_t i;
    const json_t *q;
    json_array_foreach(json_object_get(t->safety, "questions"), i, q)
    {
        if (id && str(q, "id") && strcmp(str(q, "id"), id) == 0)
            return q;
    }
    return NULL;
}

/* A check-in's answers, one line each: the question, the answer's label, and
 * whether it is one that holds the session for the therapist. */
static void put_checkin(const cli_transcript *t, FILE *out, const json_t *ev)
{
    int c = t->color;
    fprintf(out, "%s[private] safety check-in answered%s (only the therapist sees the answers)\n",
            CLI_BOLD(c), CLI_RESET(c));
    const char *qid;
    const json_t *v;
    json_object_foreach((json_t *)json_object_get(ev, "answers"), qid, v)
    {
        const json_t *q = safety_question(t, qid);
        const char *answer = json_string_value(v);
        const char *label = NULL;
        int holds = 0;
        size_t i;
        const json_t *o;
        json_array_foreach(json_object_get(q, "options"), i, o)
        {
            if (answer && str(o, "id") && strcmp(str(o, "id"), answer) == 0)
                label = str(o, "label");
        }
        json_array_foreach(json_object_get(q, "hold"), i, o)
        {
            if (answer && json_string_value(o) && strcmp(json_string_value(o), answer) == 0)
                holds = 1;
        }
        fprintf(out, "%22s", "");
        cli_put_clean(out, str(q, "prompt") ? str(q, "prompt") : qid);
        fprintf(out, ": ");
        cli_put_clean(out, label ? label : (answer ? answer : "?"));
        if (holds && !viewer_is_partner(t)) /* staff: why the session waits */
            fprintf(out, " %s(holds the session until the therapist goes on)%s", CLI_RED(c),
                    CLI_RESET(c));
        fputc('\n', out);
    }
    if (str(ev, "note")) {
        const char *label = str(json_object_get(t->safety, "note"), "label");
        fprintf(out, "%22s", "");
        cli_put_clean(out, label ? label : "Note");
        fprintf(out, ": ");
        put_quoted(out, str(ev, "note"));
        fputc('\n', out);
    }
}

/* rupture_suspected: a suggestion of the detector's (protocol 2: its own id
 * space, S<n>); a protocol 1 log kept it as a rupture that was suspected. */
static void put_suspected(cli_transcript *t, FILE *out, const json_t *ev, int64_t at)
{
    const json_t *r = json_object_get(ev, "rupture");
    int c = t->color;
    t->tally.suspicions++;
    if (t->legacy) {
        seen_remember(&t->ruptures, &t->n_ruptures, &t->cap_ruptures, r, at);
        fprintf(out, "%ssuspected (private) rupture #%lld", CLI_BOLD(c), int_member(r, "id"));
    } else {
        seen_remember(&t->suspicions, &t->n_suspicions, &t->cap_suspicions, r, at);
        fprintf(out, "%ssuspected (private) S%lld", CLI_BOLD(c), int_member(r, "id"));
    }
    put_rupture_body(t, out, r);
    if (viewer_is(t, "therapist"))
        fprintf(out, " (/confirm %lld or /dismiss %lld)", int_member(r, "id"), int_member(r, "id"));
    fputc('\n', out);
}

static void put_confirmed(cli_transcript *t, FILE *out, const json_t *ev, int64_t at)
{
    int c = t->color;
    t->tally.confirmed++;
    if (json_object_get(ev, "suspicion_id")) {
        int sid = (int)int_member(ev, "suspicion_id");
        const cli_rupture_seen *seen = suspicion_find(t, sid);
        fprintf(out, "%sconfirmed suspicion S%d", CLI_BOLD(c), sid);
        if (seen)
            fprintf(out, " %s / %s", seen->kind, seen->marker);
        fprintf(out, "%s as rupture #%lld\n", CLI_RESET(c), int_member(ev, "rupture_id"));
        return;
    }
    /* protocol 1: the whole rupture, now open and seen by all (a partner
     * never saw it suspected) */
    const json_t *r = json_object_get(ev, "rupture");
    if (!rupture_find(t, (int)int_member(r, "id")))
        t->tally.confirmed--;
    seen_remember(&t->ruptures, &t->n_ruptures, &t->cap_ruptures, r, at);
    t->tally.ruptures++;
    fprintf(out, "%sRUPTURE confirmed #%lld", CLI_RED(c), int_member(r, "id"));
    put_rupture_body(t, out, r);
    fputc('\n', out);
}

static void put_dismissed(cli_transcript *t, FILE *out, const json_t *ev)
{
    int c = t->color;
    t->tally.dismissed++;
    if (json_object_get(ev, "suspicion_id")) {
        int sid = (int)int_member(ev, "suspicion_id");
        const cli_rupture_seen *seen = suspicion_find(t, sid);
        fprintf(out, "%sdismissed suspicion S%d", CLI_DIM(c), sid);
        if (seen)
            fprintf(out, " %s / %s", seen->kind, seen->marker);
    } else {
        int id = (int)int_member(ev, "rupture_id");
        const cli_rupture_seen *seen = rupture_find(t, id);
        fprintf(out, "%sdismissed suspected rupture #%d", CLI_DIM(c), id);
        if (seen)
            fprintf(out, " %s / %s", seen->kind, seen->marker);
    }
    fprintf(out, " (private)");
    put_note_text(out, ev);
    fprintf(out, "%s\n", CLI_RESET(c));
}

static void put_opened(cli_transcript *t, FILE *out, const json_t *ev, int64_t at)
{
    const json_t *r = json_object_get(ev, "rupture");
    int c = t->color;
    seen_remember(&t->ruptures, &t->n_ruptures, &t->cap_ruptures, r, at);
    const char *marker = str(r, "marker");
    const char *source = str(r, "source");
    if (source && strcmp(source, "partner") == 0 && marker &&
        strcmp(marker, "pause_requested") == 0) {
        /* A protocol 1 log opened a flooding rupture for every pause request;
         * it is shown as what it was, the pause's bookkeeping. */
        fprintf(out, "%s(protocol 1 recorded the pause above as rupture #%lld %s / %s)%s\n",
                CLI_DIM(c), int_member(r, "id"), str(r, "kind") ? str(r, "kind") : "?", marker,
                CLI_RESET(c));
        return;
    }
    t->tally.ruptures++;
    fprintf(out, "%sRUPTURE opened #%lld", CLI_RED(c), int_member(r, "id"));
    put_rupture_body(t, out, r);
    fputc('\n', out);
}

static void put_repaired(cli_transcript *t, FILE *out, const json_t *ev, int64_t at)
{
    int c = t->color;
    int id = (int)int_member(ev, "rupture_id");
    const cli_rupture_seen *seen = rupture_find(t, id);
    const char *how = str(ev, "how");
    int pause_bookkeeping = seen && strcmp(seen->marker, "pause_requested") == 0;
    if (!pause_bookkeeping)
        t->tally.repaired++;
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
    if (json_object_get(ev, "attempt_id"))
        fprintf(out, " (attempt %lld)", int_member(ev, "attempt_id"));
    else if (json_object_get(ev, "attempt_seq"))
        fprintf(out, " (the attempt at seq %lld)", int_member(ev, "attempt_seq"));
    if (seen) {
        int64_t ms = at - seen->opened_at;
        fprintf(out, ", time to repair ");
        if (ms < 60000)
            fprintf(out, "%.1f s", (double)(ms < 0 ? 0 : ms) / 1000.0);
        else
            put_duration(out, ms);
    }
    fputc('\n', out);
}

static void put_attempt(cli_transcript *t, FILE *out, const json_t *ev, int64_t seq, const char *by)
{
    int c = t->color;
    t->tally.attempts++;
    fprintf(out, "%srepair attempt", CLI_GREEN(c));
    if (json_object_get(ev, "attempt_id")) {
        long long id = int_member(ev, "attempt_id");
        fprintf(out, " %lld%s", id, CLI_RESET(c));
        if (viewer_is(t, "therapist"))
            fprintf(out, " (acknowledge with /ack %lld)", id);
        else if (viewer_is_partner(t) && by && strcmp(by, t->viewer) != 0)
            fprintf(out,
                    " (accept with /accept %lld, or /moment %lld: \"Thank you, I need a "
                    "moment\")",
                    id, id);
    } else {
        /* protocol 1 named an attempt by its seq */
        fprintf(out, " at seq %lld%s", (long long)seq, CLI_RESET(c));
    }
    if (json_object_get(ev, "rupture_id"))
        fprintf(out, " for rupture #%lld", int_member(ev, "rupture_id"));
    if (str(ev, "text")) {
        fprintf(out, ": ");
        put_quoted(out, str(ev, "text"));
    }
    fputc('\n', out);
}

static void put_private(cli_transcript *t, FILE *out, const json_t *ev, const char *by)
{
    int c = t->color;
    const char *to = str(ev, "to");
    t->tally.private_messages++;
    if (!to)
        to = by && strcmp(by, "therapist") == 0 ? "?" : "therapist";
    if (strcmp(to, "therapist") == 0)
        fprintf(out, "%s[private] to the therapist (only the therapist sees this)%s: ", CLI_BOLD(c),
                CLI_RESET(c));
    else
        fprintf(out, "%s[private] to %s (only %s and the therapist see this)%s: ", CLI_BOLD(c), to,
                to, CLI_RESET(c));
    put_quoted(out, str(ev, "text") ? str(ev, "text") : "");
    if (viewer_is(t, "therapist") && by && strncmp(by, "partner_", 8) == 0)
        fprintf(out, " (answer with /private %s TEXT)", by + 8);
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
        /* protocol 2 rooms record whether they ask the check-in and their language */
        t->legacy = !json_object_get(ev, "checkin") && !json_object_get(ev, "language");
        fprintf(out, "room created: ");
        cli_put_clean(out, str(t->script, "title") ? str(t->script, "title") : "?");
        fprintf(out, " (%s), %s speaks first", str(ev, "exercise") ? str(ev, "exercise") : "?",
                str(ev, "first_speaker") ? str(ev, "first_speaker") : "?");
        if (json_is_true(json_object_get(ev, "checkin")))
            fprintf(out, ", safety check-in first");
        if (str(ev, "language") && str(ev, "language")[0]) {
            fprintf(out, ", language ");
            cli_put_clean(out, str(ev, "language"));
        }
        fputc('\n', out);
    } else if (strcmp(type, "joined") == 0) {
        if (by && strcmp(by, "observer") == 0)
            fprintf(out, "joined (an observer, e.g. a supervisor: sees the session, not the "
                         "private line to the therapist)\n");
        else
            fprintf(out, "joined\n");
    } else if (strcmp(type, "left") == 0) {
        fprintf(out, "left (%s)\n", str(ev, "reason") ? str(ev, "reason") : "?");
    } else if (strcmp(type, "replaced") == 0) {
        fprintf(out,
                "%sreconnected from another device or window%s (the earlier connection was "
                "closed)\n",
                CLI_BOLD(c), CLI_RESET(c));
    } else if (strcmp(type, "reconnected") == 0) {
        /* debounced presence: drops that came back within the server's window */
        long long times = int_member(ev, "times"), gap = int_member(ev, "gap_ms");
        fprintf(out, "connection dropped and came back %lld time%s", times, times == 1 ? "" : "s");
        if (gap > 0)
            fprintf(out, ", away %lld.%01lld s in all", gap / 1000, (gap % 1000) / 100);
        fputc('\n', out);
    } else if (strcmp(type, "consented") == 0) {
        fprintf(out, "consented");
        if (json_object_get(ev, "notice_version"))
            fprintf(out, " (notice version %lld)", int_member(ev, "notice_version"));
        fputc('\n', out);
    } else if (strcmp(type, "consent_withdrawn") == 0) {
        fprintf(out, "%swithdrew consent%s (the session pauses; their input is no longer taken)\n",
                CLI_BOLD(c), CLI_RESET(c));
    } else if (strcmp(type, "checkin_answered") == 0) {
        t->tally.checkins++;
        put_checkin(t, out, ev);
    } else if (strcmp(type, "checkin_completed") == 0) {
        fprintf(out, "safety check-in complete: the joint work begins\n");
    } else if (strcmp(type, "turn") == 0) {
        put_turn(t, out, ev);
    } else if (strcmp(type, "control") == 0) {
        const char *action = str(ev, "action");
        fprintf(out, "control: %s", action ? action : "?");
        if (action && strcmp(action, "proceed") == 0)
            fprintf(out, " (the joint work begins after the check-in)");
        fputc('\n', out);
    } else if (strcmp(type, "pause_requested") == 0) {
        t->tally.pauses++;
        fprintf(out, "asked for a pause");
        if (str(ev, "note")) {
            fprintf(out, ": ");
            put_quoted(out, str(ev, "note"));
        }
        fputc('\n', out);
    } else if (strcmp(type, "repair_attempt") == 0) {
        put_attempt(t, out, ev, seq, by);
    } else if (strcmp(type, "repair_accepted") == 0) {
        if (json_object_get(ev, "attempt_id"))
            fprintf(out, "%saccepted repair attempt %lld%s\n", CLI_GREEN(c),
                    int_member(ev, "attempt_id"), CLI_RESET(c));
        else
            fprintf(out, "%saccepted the repair attempt at seq %lld%s\n", CLI_GREEN(c),
                    int_member(ev, "attempt_seq"), CLI_RESET(c));
    } else if (strcmp(type, "repair_replied") == 0) {
        const char *reply = str(ev, "reply");
        long long id = int_member(ev, "attempt_id");
        if (reply && strcmp(reply, "need_a_moment") == 0)
            fprintf(out, "replied to repair attempt %lld: \"Thank you, I need a moment\"\n", id);
        else if (reply && strcmp(reply, "acknowledged") == 0)
            fprintf(out, "acknowledged repair attempt %lld\n", id);
        else
            fprintf(out, "replied to repair attempt %lld (%s)\n", id, reply ? reply : "?");
    } else if (strcmp(type, "rupture_suspected") == 0) {
        put_suspected(t, out, ev, at);
    } else if (strcmp(type, "rupture_confirmed") == 0) {
        put_confirmed(t, out, ev, at);
    } else if (strcmp(type, "rupture_dismissed") == 0) {
        put_dismissed(t, out, ev);
    } else if (strcmp(type, "rupture_opened") == 0) {
        put_opened(t, out, ev, at);
    } else if (strcmp(type, "rupture_repaired") == 0) {
        put_repaired(t, out, ev, at);
    } else if (strcmp(type, "note") == 0) {
        fprintf(out, "%snote (private)", CLI_DIM(c));
        int on_rupture = json_object_get(ev, "rupture_id") != NULL;
        if (on_rupture)
            fprintf(out, " on rupture #%lld", int_member(ev, "rupture_id"));
        if (json_object_get(ev, "suspicion_id"))
            fprintf(out, on_rupture ? " (suspicion S%lld)" : " on suspicion S%lld",
                    int_member(ev, "suspicion_id"));
        fprintf(out, ": ");
        put_quoted(out, str(ev, "text") ? str(ev, "text") : "");
        fprintf(out, "%s\n", CLI_RESET(c));
    } else if (strcmp(type, "private_message") == 0) {
        put_private(t, out, ev, by);
    } else if (strcmp(type, "therapist_requested") == 0) {
        t->tally.requests++;
        fprintf(out,
                "%s[private] asks for a private word with the therapist%s (only the therapist "
                "sees this)",
                CLI_BOLD(c), CLI_RESET(c));
        if (viewer_is(t, "therapist") && by && strncmp(by, "partner_", 8) == 0)
            fprintf(out, " (answer with /private %s TEXT)", by + 8);
        fputc('\n', out);
    } else {
        cli_put_clean(out, type);
        fputc('\n', out);
    }
    return ferror(out) ? -1 : 0;
}

int cli_transcript_summary(const cli_transcript *t, FILE *out)
{
    const cli_tally *n = &t->tally;
    /* every suspicion shown is confirmed, dismissed or still undecided */
    int undecided = n->suspicions - n->confirmed - n->dismissed;
    fprintf(out, "-- ruptures: %d opened, %d repaired", n->ruptures, n->repaired);
    if (n->suspicions || n->confirmed || n->dismissed)
        fprintf(out, "; suspicions (private): %d raised, %d confirmed, %d dismissed, %d undecided",
                n->suspicions, n->confirmed, n->dismissed, undecided < 0 ? 0 : undecided);
    fprintf(out, "; pauses: %d; repair attempts: %d", n->pauses, n->attempts);
    if (n->private_messages || n->requests)
        fprintf(out, "; private messages: %d, requests for a private word: %d", n->private_messages,
                n->requests);
    if (n->checkins)
        fprintf(out, "; check-ins answered (private): %d", n->checkins);
    fputc('\n', out);
    return ferror(out) ? -1 : 0;
}
