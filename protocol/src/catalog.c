/* catalog.c - loads and strictly validates the protocol directory (exercise
 * scripts, vocabularies, rupture markers, resolution strategies, the blame
 * rules, the consent notice) into the read-only structures of catalog.h.
 *
 * Ownership: the catalog owns every parsed json_t tree and every malloc'd
 * array below; all C strings point into those trees, which are never modified
 * after loading. A vocabulary's `json` is its `entries` array; a script's
 * `json` is the file's root object; a step's `json` is that step's object
 * inside it (vocab references stay as vocab id strings, as on the wire).
 *
 * Error codes: a file that cannot be opened or read is ATT_ERR_INTERNAL, one
 * that is not valid JSON is ATT_ERR_BAD_JSON, one that breaks the format
 * (see protocol/schema/ and DESIGN.md) is ATT_ERR_BAD_MESSAGE. The message
 * always starts with the file, relative to the protocol directory. */
#include "attune/catalog.h"
#include "attune/event.h"
#include "attune/names.h"

#include <dirent.h>
#include <limits.h>
#include <stdarg.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SCRIPTS 64
#define MAX_STEPS 256
#define MAX_ENTRIES 256
#define MAX_OPTIONS 64
#define MAX_BLAME_LANGS 32
#define MAX_WORDS_BYTES 4000
#define RATING_LIMIT 1000000

enum { VOCAB_REACTIVE, VOCAB_PRIMARY, VOCAB_NEEDS, VOCAB_MARKERS, VOCAB_STRATEGIES, N_VOCABS };
static const char *const vocab_ids[N_VOCABS] = {"reactive", "primary", "needs", "markers",
                                                "strategies"};

/* Markers the core's rupture detector emits; markers.json must define them. */
static const char *const detector_markers[] = {
    "disconnect", "silence",          "reflection_rejected", "rating_drop",
    "rating_low", "blaming_language", "pause_requested",
};

struct att_catalog {
    att_vocab vocabs[N_VOCABS];
    att_vocab_entry *entries[N_VOCABS]; /* the arrays behind vocabs[i].entries */
    json_t *vocab_roots[N_VOCABS];
    json_t *vocab_json;                     /* {"reactive": entries array, ...} for the hello ack */
    att_blame_lang *blame[MAX_BLAME_LANGS]; /* one per vocab/blame/<lang>.json, in name order */
    size_t n_blame;
    json_t *consent;
    char consent_hash[65];
    int consent_version;
    size_t safety_note_max;
    json_t *safety;      /* protocol/safety.json, validated */
    att_script *scripts; /* each script->json is the root of its file */
    size_t n_scripts;
};

/* Where a validation problem is reported: the file (relative to the
 * protocol directory) and the caller's error. */
typedef struct {
    const char *file;
    att_error *err;
} loc;

__attribute__((format(printf, 3, 4))) static int fail_at(const loc *at, att_code code,
                                                         const char *fmt, ...)
{
    char detail[sizeof at->err->message];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    return att_fail(at->err, code, "%s: %s", at->file, detail);
}

#define INVALID(at, ...) fail_at((at), ATT_ERR_BAD_MESSAGE, __VA_ARGS__)

/* ---- small JSON validators -------------------------------------------- */

static int check_members(const loc *at, json_t *obj, const char *what, const char *const *allowed)
{
    const char *key;
    json_t *value;
    json_object_foreach(obj, key, value)
    {
        (void)value;
        int known = 0;
        for (const char *const *a = allowed; *a; a++)
            if (strcmp(key, *a) == 0)
                known = 1;
        if (!known)
            return INVALID(at, "%s: unknown member '%.40s'", what, key);
    }
    return 0;
}

static int is_ident(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > ATT_MAX_ID_BYTES || s[0] < 'a' || s[0] > 'z')
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
            return 0;
    return 1;
}

/* A lowercase snake_case id; *out is NULL when optional and absent. */
static int get_ident(const loc *at, json_t *obj, const char *key, int required, const char *what,
                     const char **out)
{
    json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (!v)
        return required ? INVALID(at, "%s: missing '%s'", what, key) : 0;
    if (!json_is_string(v) || !is_ident(json_string_value(v)))
        return INVALID(at, "%s: '%s' must be a lowercase snake_case id (1..64 bytes)", what, key);
    *out = json_string_value(v);
    return 0;
}

/* Human-readable text: a non-empty string of at most 4000 bytes. */
static int get_words(const loc *at, json_t *obj, const char *key, const char *what,
                     const char **out)
{
    json_t *v = json_object_get(obj, key);
    if (!v)
        return INVALID(at, "%s: missing '%s'", what, key);
    if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > MAX_WORDS_BYTES)
        return INVALID(at, "%s: '%s' must be a non-empty string of at most 4000 bytes", what, key);
    *out = json_string_value(v);
    return 0;
}

/* An integer in lo..hi; *out keeps its value when optional and absent. */
static int get_int(const loc *at, json_t *obj, const char *key, int required, long long lo,
                   long long hi, const char *what, long long *out)
{
    json_t *v = json_object_get(obj, key);
    if (!v)
        return required ? INVALID(at, "%s: missing '%s'", what, key) : 0;
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
        return INVALID(at, "%s: '%s' must be an integer in %lld..%lld", what, key, lo, hi);
    *out = json_integer_value(v);
    return 0;
}

static int get_bool(const loc *at, json_t *obj, const char *key, const char *what, int *out)
{
    json_t *v = json_object_get(obj, key);
    if (!v)
        return INVALID(at, "%s: missing '%s'", what, key);
    if (!json_is_boolean(v))
        return INVALID(at, "%s: '%s' must be true or false", what, key);
    *out = json_is_true(v);
    return 0;
}

static int get_array(const loc *at, json_t *obj, const char *key, size_t min_items,
                     size_t max_items, const char *what, json_t **out)
{
    json_t *v = json_object_get(obj, key);
    if (!v)
        return INVALID(at, "%s: missing '%s'", what, key);
    if (!json_is_array(v) || json_array_size(v) < min_items || json_array_size(v) > max_items)
        return INVALID(at, "%s: '%s' must be an array of %zu..%zu items", what, key, min_items,
                       max_items);
    *out = v;
    return 0;
}

/* A language tag ("en", "es", "pt_br" style: 2..8 lowercase letters, '_' or
 * '-'); "en" when absent. */
static int get_language(const loc *at, json_t *obj, const char *what, const char **out)
{
    json_t *v = json_object_get(obj, "language");
    *out = "en";
    if (!v)
        return 0;
    const char *s = json_string_value(v);
    size_t n = s ? strlen(s) : 0;
    int ok = n >= 2 && n <= 8;
    for (size_t i = 0; ok && i < n; i++)
        ok = (s[i] >= 'a' && s[i] <= 'z') || (i >= 2 && (s[i] == '_' || s[i] == '-'));
    if (!ok)
        return INVALID(at, "%s: 'language' must be a language tag such as \"en\" or \"es\"", what);
    *out = s;
    return 0;
}

static int load_json(const char *dir, const char *rel, att_error *err, json_t **out)
{
    char path[PATH_MAX];
    loc at = {rel, err};
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, rel) >= sizeof path)
        return fail_at(&at, ATT_ERR_INTERNAL, "path too long");
    json_error_t jerr;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        if (jerr.line < 0 || json_error_code(&jerr) == json_error_cannot_open_file)
            return fail_at(&at, ATT_ERR_INTERNAL, "cannot read: %s", jerr.text);
        return fail_at(&at, ATT_ERR_BAD_JSON, "line %d: %s", jerr.line, jerr.text);
    }
    if (!json_is_object(root)) {
        json_decref(root);
        return INVALID(&at, "the top level must be an object");
    }
    *out = root;
    return 0;
}

/* ---- vocabularies ------------------------------------------------------- */

static int entry_kind_ok(int vocab, const char *kind)
{
    if (vocab == VOCAB_MARKERS)
        return strcmp(kind, "withdrawal") == 0 || strcmp(kind, "confrontation") == 0 ||
               strcmp(kind, "detector") == 0;
    if (vocab == VOCAB_STRATEGIES)
        return strcmp(kind, "immediate") == 0 || strcmp(kind, "exploratory") == 0;
    return 0;
}

static int load_vocab(att_catalog *cat, const char *dir, int which, att_error *err)
{
    char rel[64];
    snprintf(rel, sizeof rel, "vocab/%s.json", vocab_ids[which]);
    loc at = {rel, err};
    int rc = load_json(dir, rel, err, &cat->vocab_roots[which]);
    if (rc)
        return rc;
    json_t *root = cat->vocab_roots[which];
    static const char *const root_members[] = {"id", "title", "entries", NULL};
    static const char *const entry_members[] = {"id", "label", "sentence", "kind", NULL};
    const char *id, *title;
    json_t *entries = NULL;
    if ((rc = check_members(&at, root, "vocabulary", root_members)) ||
        (rc = get_ident(&at, root, "id", 1, "vocabulary", &id)) ||
        (rc = get_words(&at, root, "title", "vocabulary", &title)) ||
        (rc = get_array(&at, root, "entries", 1, MAX_ENTRIES, "vocabulary", &entries)))
        return rc;
    if (strcmp(id, vocab_ids[which]) != 0)
        return INVALID(&at, "id '%s' does not match the file name (expected '%s')", id,
                       vocab_ids[which]);
    size_t n = json_array_size(entries);
    att_vocab_entry *list = calloc(n, sizeof *list);
    if (!list)
        return fail_at(&at, ATT_ERR_INTERNAL, "out of memory");
    cat->entries[which] = list;
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(entries, i);
        char what[48];
        snprintf(what, sizeof what, "entry %zu", i);
        if (!json_is_object(e))
            return INVALID(&at, "%s: must be an object", what);
        att_vocab_entry *out = &list[i];
        if ((rc = check_members(&at, e, what, entry_members)) ||
            (rc = get_ident(&at, e, "id", 1, what, &out->id)) ||
            (rc = get_words(&at, e, "label", what, &out->label)) ||
            (rc = get_words(&at, e, "sentence", what, &out->sentence)))
            return rc;
        for (size_t j = 0; j < i; j++)
            if (strcmp(list[j].id, out->id) == 0)
                return INVALID(&at, "duplicate entry id '%s'", out->id);
        json_t *kind = json_object_get(e, "kind");
        int wants_kind = which == VOCAB_MARKERS || which == VOCAB_STRATEGIES;
        if (!kind && wants_kind)
            return INVALID(&at, "entry '%s': missing 'kind'", out->id);
        if (kind && !wants_kind)
            return INVALID(&at, "entry '%s': 'kind' is only for markers and strategies", out->id);
        if (kind) {
            if (!json_is_string(kind) || !entry_kind_ok(which, json_string_value(kind)))
                return INVALID(&at, "entry '%s': unknown kind", out->id);
            out->kind = json_string_value(kind);
        }
    }
    cat->vocabs[which] = (att_vocab){vocab_ids[which], list, n, entries};
    if (which == VOCAB_MARKERS) {
        for (size_t i = 0; i < sizeof detector_markers / sizeof detector_markers[0]; i++) {
            const att_vocab_entry *m = att_vocab_find(&cat->vocabs[which], detector_markers[i]);
            if (!m || strcmp(m->kind, "detector") != 0)
                return INVALID(&at, "missing detector marker '%s' (kind detector)",
                               detector_markers[i]);
        }
    }
    if (json_object_set(cat->vocab_json, vocab_ids[which], entries) != 0)
        return fail_at(&at, ATT_ERR_INTERNAL, "out of memory");
    return 0;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

static int has_json_suffix(const char *name)
{
    size_t n = strlen(name);
    return n > 5 && name[0] != '.' && strcmp(name + n - 5, ".json") == 0;
}

/* Lists <dir>/<sub>/ *.json (at most max, else "more than max <many>"; none
 * is `none`) in name order, so what is loaded from them is deterministic. */
static int list_json_files(const char *dir, const char *sub, char names[][NAME_MAX + 1], size_t max,
                           const char *many, const char *none, size_t *count, att_error *err)
{
    char path[PATH_MAX], label[64];
    snprintf(label, sizeof label, "%s/", sub);
    loc at = {label, err};
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, sub) >= sizeof path)
        return fail_at(&at, ATT_ERR_INTERNAL, "path too long");
    DIR *d = opendir(path);
    if (!d)
        return fail_at(&at, ATT_ERR_INTERNAL, "cannot open the directory");
    size_t n = 0;
    struct dirent *de;
    int rc = 0;
    while ((de = readdir(d)) != NULL) {
        if (!has_json_suffix(de->d_name))
            continue;
        if (n == max) {
            rc = INVALID(&at, "more than %zu %s", max, many);
            break;
        }
        snprintf(names[n++], NAME_MAX + 1, "%s", de->d_name);
    }
    closedir(d);
    if (rc)
        return rc;
    if (n == 0)
        return INVALID(&at, "%s", none);
    qsort(names, n, sizeof names[0], cmp_names);
    *count = n;
    return 0;
}

/* ---- blame rules ------------------------------------------------------- */

/* Loads vocab/blame/<lang>.json, one language each (blame.c validates and
 * compiles them; the file name must be the file's "lang" plus ".json"). */
static int load_blame(att_catalog *cat, const char *dir, att_error *err)
{
    char names[MAX_BLAME_LANGS][NAME_MAX + 1];
    size_t n = 0;
    int rc = list_json_files(dir, "vocab/blame", names, MAX_BLAME_LANGS, "languages",
                             "no language files (<lang>.json)", &n, err);
    if (rc)
        return rc;
    for (size_t i = 0; i < n; i++) {
        char rel[NAME_MAX + 16];
        snprintf(rel, sizeof rel, "vocab/blame/%s", names[i]);
        loc fat = {rel, err};
        json_t *root;
        if ((rc = load_json(dir, rel, err, &root)))
            return rc;
        att_blame_lang *lang = NULL;
        rc = att_blame_lang_compile(root, rel, &lang, err);
        json_decref(root);
        if (rc)
            return rc;
        cat->blame[cat->n_blame++] = lang;
        const char *tag = att_blame_lang_tag(lang);
        if (strlen(names[i]) != strlen(tag) + 5 || strncmp(names[i], tag, strlen(tag)) != 0)
            return INVALID(&fat, "'lang' is '%s' but the file is named %s", tag, names[i]);
    }
    return 0;
}

/* ---- consent notice ----------------------------------------------------- */

static int load_consent(att_catalog *cat, const char *dir, att_error *err)
{
    const char *rel = "consent.json";
    loc at = {rel, err};
    int rc = load_json(dir, rel, err, &cat->consent);
    if (rc)
        return rc;
    json_t *c = cat->consent;
    static const char *const members[] = {"version",    "text",     "recorded",
                                          "visible_to", "receives", NULL};
    static const char *const audiences[] = {"partner_a", "partner_b", "therapist", "observer",
                                            NULL};
    long long version = 0;
    const char *text;
    json_t *recorded = NULL;
    if ((rc = check_members(&at, c, "consent", members)) ||
        (rc = get_int(&at, c, "version", 1, 1, INT_MAX, "consent", &version)) ||
        (rc = get_words(&at, c, "text", "consent", &text)) ||
        (rc = get_array(&at, c, "recorded", 1, 64, "consent", &recorded)))
        return rc;
    for (size_t i = 0; i < json_array_size(recorded); i++) {
        json_t *r = json_array_get(recorded, i);
        if (!json_is_string(r) || json_string_length(r) == 0 ||
            json_string_length(r) > MAX_WORDS_BYTES)
            return INVALID(&at, "recorded[%zu]: must be a non-empty string", i);
    }
    json_t *visible = json_object_get(c, "visible_to");
    if (!json_is_object(visible))
        return INVALID(&at, "consent: 'visible_to' must be an object");
    if ((rc = check_members(&at, visible, "visible_to", audiences)))
        return rc;
    for (const char *const *r = audiences; *r; r++) {
        const char *words;
        if ((rc = get_words(&at, visible, *r, "visible_to", &words)))
            return rc;
    }
    /* What each role's wire carries, by event type: the claim a test holds
     * the wire to. */
    json_t *receives = json_object_get(c, "receives");
    if (!json_is_object(receives))
        return INVALID(&at, "consent: 'receives' must be an object");
    if ((rc = check_members(&at, receives, "receives", audiences)))
        return rc;
    for (const char *const *r = audiences; *r; r++) {
        json_t *types;
        if ((rc = get_array(&at, receives, *r, 1, ATT_EV__COUNT, "receives", &types)))
            return rc;
        for (size_t i = 0; i < json_array_size(types); i++) {
            const char *t = json_string_value(json_array_get(types, i));
            if (att_event_type_from_name(t) < 0)
                return INVALID(&at, "receives.%s[%zu]: not an event type", *r, i);
        }
    }
    /* The notice's hash, recorded with each consent: SHA-256 of its
     * canonical JSON (sorted keys, compact) before "hash" is added. */
    char *canon = json_dumps(c, JSON_COMPACT | JSON_SORT_KEYS);
    if (!canon)
        return fail_at(&at, ATT_ERR_INTERNAL, "out of memory");
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)canon, strlen(canon), md);
    free(canon);
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < SHA256_DIGEST_LENGTH; i++) {
        cat->consent_hash[2 * i] = hex[md[i] >> 4];
        cat->consent_hash[2 * i + 1] = hex[md[i] & 15];
    }
    cat->consent_hash[64] = '\0';
    cat->consent_version = (int)version;
    if (json_object_set_new(c, "hash", json_string(cat->consent_hash)))
        return fail_at(&at, ATT_ERR_INTERNAL, "out of memory");
    return 0;
}

/* ---- safety check-in ---------------------------------------------------- */

/* 1 when `id` names one of question q's options. */
static int safety_option(json_t *q, const char *id)
{
    json_t *options = json_object_get(q, "options");
    for (size_t j = 0; id && j < json_array_size(options); j++)
        if (strcmp(id, json_string_value(json_object_get(json_array_get(options, j), "id"))) == 0)
            return 1;
    return 0;
}

static int load_safety(att_catalog *cat, const char *dir, att_error *err)
{
    const char *rel = "safety.json";
    loc at = {rel, err};
    int rc = load_json(dir, rel, err, &cat->safety);
    if (rc)
        return rc;
    json_t *s = cat->safety;
    static const char *const members[] = {"version", "title",   "intro", "questions",
                                          "note",    "waiting", NULL};
    static const char *const q_members[] = {"id", "prompt", "options", "hold", NULL};
    static const char *const o_members[] = {"id", "label", NULL};
    static const char *const n_members[] = {"label", "max_length", NULL};
    long long version = 0, max_length = ATT_MAX_TEXT_BYTES;
    const char *words;
    json_t *questions = NULL, *note;
    if ((rc = check_members(&at, s, "safety", members)) ||
        (rc = get_int(&at, s, "version", 1, 1, INT_MAX, "safety", &version)) ||
        (rc = get_words(&at, s, "title", "safety", &words)) ||
        (rc = get_words(&at, s, "intro", "safety", &words)) ||
        (rc = get_words(&at, s, "waiting", "safety", &words)) ||
        (rc = get_array(&at, s, "questions", 1, ATT_MAX_INPUT_MEMBERS, "safety", &questions)))
        return rc;
    note = json_object_get(s, "note");
    if (!json_is_object(note))
        return INVALID(&at, "safety: 'note' must be an object");
    if ((rc = check_members(&at, note, "note", n_members)) ||
        (rc = get_words(&at, note, "label", "note", &words)) ||
        (rc = get_int(&at, note, "max_length", 0, 1, ATT_MAX_TEXT_BYTES, "note", &max_length)))
        return rc;
    cat->safety_note_max = (size_t)max_length;
    for (size_t i = 0; i < json_array_size(questions); i++) {
        char what[48];
        snprintf(what, sizeof what, "questions[%zu]", i);
        json_t *q = json_array_get(questions, i), *options, *hold;
        const char *id;
        if (!json_is_object(q))
            return INVALID(&at, "%s: must be an object", what);
        if ((rc = check_members(&at, q, what, q_members)) ||
            (rc = get_ident(&at, q, "id", 1, what, &id)) ||
            (rc = get_words(&at, q, "prompt", what, &words)) ||
            (rc = get_array(&at, q, "options", 2, MAX_OPTIONS, what, &options)) ||
            (rc = get_array(&at, q, "hold", 0, MAX_OPTIONS, what, &hold)))
            return rc;
        for (size_t j = 0; j < i; j++)
            if (strcmp(id,
                       json_string_value(json_object_get(json_array_get(questions, j), "id"))) == 0)
                return INVALID(&at, "%s: duplicate question id '%s'", what, id);
        for (size_t j = 0; j < json_array_size(options); j++) {
            json_t *o = json_array_get(options, j);
            const char *oid;
            if (!json_is_object(o))
                return INVALID(&at, "%s.options[%zu]: must be an object", what, j);
            if ((rc = check_members(&at, o, what, o_members)) ||
                (rc = get_ident(&at, o, "id", 1, what, &oid)) ||
                (rc = get_words(&at, o, "label", what, &words)))
                return rc;
        }
        for (size_t j = 0; j < json_array_size(hold); j++)
            if (!safety_option(q, json_string_value(json_array_get(hold, j))))
                return INVALID(&at, "%s.hold[%zu]: not one of the question's options", what, j);
    }
    return 0;
}

/* ---- exercise scripts --------------------------------------------------- */

/* The vocabulary each input kind takes (an index into vocab_ids), or -1. */
static const int input_vocab[] = {
    [ATT_INPUT_TEXT] = -1,
    [ATT_INPUT_EMOTION_REACTIVE] = VOCAB_REACTIVE,
    [ATT_INPUT_EMOTION_PRIMARY] = VOCAB_PRIMARY,
    [ATT_INPUT_NEED] = VOCAB_NEEDS,
    [ATT_INPUT_RATING] = -1,
    [ATT_INPUT_CHOICE] = -1,
};

static void free_steps(att_step *steps, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < steps[i].n_inputs; j++)
            free((void *)steps[i].inputs[j].options);
        free((void *)steps[i].inputs);
        free(steps[i].id_json);
        free(steps[i].title_json);
        free(steps[i].prompt_json);
        free(steps[i].inputs_json);
    }
    free(steps);
}

static int parse_options(const loc *at, json_t *in, const char *what, att_input_desc *out)
{
    static const char *const members[] = {"id", "label", NULL};
    json_t *opts = json_object_get(in, "options");
    if (out->kind != ATT_INPUT_CHOICE)
        return opts ? INVALID(at, "%s: 'options' is only for choice inputs", what) : 0;
    if (!opts)
        return INVALID(at, "%s: choice without 'options'", what);
    int rc = get_array(at, in, "options", 1, MAX_OPTIONS, what, &opts);
    if (rc)
        return rc;
    size_t n = json_array_size(opts);
    att_option *list = calloc(n, sizeof *list);
    if (!list)
        return fail_at(at, ATT_ERR_INTERNAL, "out of memory");
    out->options = list; /* owned by the step from here on */
    out->n_options = n;
    for (size_t i = 0; i < n; i++) {
        json_t *o = json_array_get(opts, i);
        if (!json_is_object(o))
            return INVALID(at, "%s: option %zu must be an object", what, i);
        if ((rc = check_members(at, o, what, members)) ||
            (rc = get_ident(at, o, "id", 1, what, &list[i].id)) ||
            (rc = get_words(at, o, "label", what, &list[i].label)))
            return rc;
        for (size_t j = 0; j < i; j++)
            if (strcmp(list[j].id, list[i].id) == 0)
                return INVALID(at, "%s: duplicate option '%s'", what, list[i].id);
    }
    return 0;
}

static int parse_input(const loc *at, const att_catalog *cat, json_t *in, const char *step_id,
                       size_t index, att_input_desc *out)
{
    static const char *const members[] = {"name",    "kind", "label", "required",   "vocab",
                                          "options", "min",  "max",   "max_length", NULL};
    char what[128];
    snprintf(what, sizeof what, "step '%s' input %zu", step_id, index);
    if (!json_is_object(in))
        return INVALID(at, "%s: must be an object", what);
    const char *kind_name, *label;
    int rc;
    if ((rc = check_members(at, in, what, members)) ||
        (rc = get_ident(at, in, "name", 1, what, &out->name)))
        return rc;
    snprintf(what, sizeof what, "step '%s' input '%s'", step_id, out->name);
    if ((rc = get_ident(at, in, "kind", 1, what, &kind_name)) ||
        (rc = get_words(at, in, "label", what, &label)) ||
        (rc = get_bool(at, in, "required", what, &out->required)))
        return rc;
    int kind = att_input_kind_from_name(kind_name);
    if (kind < 0)
        return INVALID(at, "%s: unknown kind '%s'", what, kind_name);
    out->kind = (att_input_kind)kind;
    int vocab = input_vocab[kind];

    json_t *v = json_object_get(in, "vocab");
    if (vocab < 0 && v)
        return INVALID(at, "%s: 'vocab' is only for emotion and need inputs", what);
    if (vocab >= 0) {
        if (!v)
            return INVALID(at, "%s: %s input without 'vocab'", what, kind_name);
        const char *vid = json_string_value(v);
        if (!vid || (strcmp(vid, "reactive") && strcmp(vid, "primary") && strcmp(vid, "needs")))
            return INVALID(at, "%s: unknown vocab (use reactive, primary or needs)", what);
        if (strcmp(vid, vocab_ids[vocab]) != 0)
            return INVALID(at, "%s: a %s input takes vocab '%s', not '%s'", what, kind_name,
                           vocab_ids[vocab], vid);
        out->vocab = &cat->vocabs[vocab];
    }

    if ((rc = parse_options(at, in, what, out)))
        return rc;

    long long lo = 0, hi = 10;
    int has_range = json_object_get(in, "min") || json_object_get(in, "max");
    if (has_range && out->kind != ATT_INPUT_RATING)
        return INVALID(at, "%s: 'min'/'max' are only for rating inputs", what);
    if ((rc = get_int(at, in, "min", 0, -RATING_LIMIT, RATING_LIMIT, what, &lo)) ||
        (rc = get_int(at, in, "max", 0, -RATING_LIMIT, RATING_LIMIT, what, &hi)))
        return rc;
    if (lo > hi)
        return INVALID(at, "%s: min %lld is greater than max %lld", what, lo, hi);
    out->min = (int)lo;
    out->max = (int)hi;

    long long max_length = ATT_MAX_TEXT_BYTES;
    json_t *ml = json_object_get(in, "max_length");
    if (ml && (out->kind == ATT_INPUT_RATING || out->kind == ATT_INPUT_CHOICE))
        return INVALID(at, "%s: 'max_length' is only for inputs that take text", what);
    if ((rc = get_int(at, in, "max_length", 0, 1, ATT_MAX_TEXT_BYTES, what, &max_length)))
        return rc;
    out->max_length = (size_t)max_length;
    return 0;
}

static const att_input_desc *find_input(const att_step *st, const char *name)
{
    for (size_t i = 0; i < st->n_inputs; i++)
        if (strcmp(st->inputs[i].name, name) == 0)
            return &st->inputs[i];
    return NULL;
}

static int parse_branch(const loc *at, json_t *branch, att_step *st, const char **goto_id)
{
    static const char *const members[] = {"input", "equals", "goto", NULL};
    char what[96];
    snprintf(what, sizeof what, "step '%s' branch", st->id);
    if (!json_is_object(branch))
        return INVALID(at, "%s: must be an object", what);
    int rc;
    if ((rc = check_members(at, branch, what, members)) ||
        (rc = get_ident(at, branch, "input", 1, what, &st->branch_input)) ||
        (rc = get_words(at, branch, "equals", what, &st->branch_equals)) ||
        (rc = get_ident(at, branch, "goto", 1, what, goto_id)))
        return rc;
    const att_input_desc *in = find_input(st, st->branch_input);
    if (!in)
        return INVALID(at, "%s: input '%s' is not an input of this step", what, st->branch_input);
    /* The engine compares the turn's value with `equals` as strings, so only
     * choice and text values can ever match. */
    if (in->kind != ATT_INPUT_CHOICE && in->kind != ATT_INPUT_TEXT)
        return INVALID(at, "%s: input '%s' must be a choice or text input", what, in->name);
    if (in->kind == ATT_INPUT_CHOICE) {
        int found = 0;
        for (size_t i = 0; i < in->n_options; i++)
            if (strcmp(in->options[i].id, st->branch_equals) == 0)
                found = 1;
        if (!found)
            return INVALID(at, "%s: equals '%.40s' is not an option of '%s'", what,
                           st->branch_equals, in->name);
    }
    return 0;
}

static int check_tag(const loc *at, const att_step *st)
{
    if (st->tag == ATT_TAG_NONE || st->tag == ATT_TAG_REFLECTION)
        return 0;
    /* The detector attributes these to a partner (who = the rater/checker). */
    if (st->actor == ATT_ACTOR_THERAPIST)
        return INVALID(at, "step '%s': a %s step must be taken by a partner", st->id,
                       att_step_tag_name(st->tag));
    if (st->tag == ATT_TAG_REFLECTION_CHECK && !st->branch_input)
        return INVALID(at,
                       "step '%s': a reflection_check step needs a branch (taken when the "
                       "reflection did not land)",
                       st->id);
    if (st->tag == ATT_TAG_CONNECTION_RATING) {
        size_t ratings = 0;
        for (size_t i = 0; i < st->n_inputs; i++)
            ratings += st->inputs[i].kind == ATT_INPUT_RATING;
        if (ratings != 1)
            return INVALID(at,
                           "step '%s': a connection_rating step needs exactly one rating "
                           "input",
                           st->id);
    }
    return 0;
}

static int encode_step_parts(const loc *at, att_step *st);

static int parse_step(const loc *at, const att_catalog *cat, json_t *js, size_t index, att_step *st,
                      const char **goto_id)
{
    static const char *const members[] = {"id",  "actor",  "title",      "prompt", "inputs",
                                          "tag", "branch", "silence_ms", NULL};
    char what[96];
    snprintf(what, sizeof what, "step %zu", index);
    if (!json_is_object(js))
        return INVALID(at, "%s: must be an object", what);
    st->json = js;
    st->branch_goto = -1;
    const char *actor, *tag;
    json_t *inputs = NULL;
    int rc;
    if ((rc = check_members(at, js, what, members)) ||
        (rc = get_ident(at, js, "id", 1, what, &st->id)))
        return rc;
    snprintf(what, sizeof what, "step '%s'", st->id);
    if ((rc = get_words(at, js, "title", what, &st->title)) ||
        (rc = get_words(at, js, "prompt", what, &st->prompt)) ||
        (rc = get_ident(at, js, "actor", 1, what, &actor)) ||
        (rc = get_ident(at, js, "tag", 0, what, &tag)) ||
        (rc = get_array(at, js, "inputs", 0, ATT_MAX_INPUT_MEMBERS, what, &inputs)))
        return rc;
    /* Silence is judged per step: reflective steps switch it off (0). */
    long long silence = -1;
    if ((rc = get_int(at, js, "silence_ms", 0, 0, 86400000, what, &silence)))
        return rc;
    st->silence_ms = silence;
    int a = att_actor_from_name(actor);
    if (a < 0)
        return INVALID(at,
                       "%s: bad actor '%s' (speaker, listener, partner_a, partner_b or "
                       "therapist)",
                       what, actor);
    st->actor = (att_actor)a;
    st->tag = ATT_TAG_NONE;
    if (tag) {
        int t = att_step_tag_from_name(tag);
        if (t < 0)
            return INVALID(at, "%s: unknown tag '%s'", what, tag);
        st->tag = (att_step_tag)t;
    }

    size_t n = json_array_size(inputs);
    att_input_desc *list = calloc(n ? n : 1, sizeof *list);
    if (!list)
        return fail_at(at, ATT_ERR_INTERNAL, "out of memory");
    st->inputs = list; /* owned by the script from here on */
    for (size_t i = 0; i < n; i++) {
        st->n_inputs = i + 1; /* so a failed input's options are freed too */
        if ((rc = parse_input(at, cat, json_array_get(inputs, i), st->id, i, &list[i])))
            return rc;
        for (size_t j = 0; j < i; j++)
            if (strcmp(list[j].name, list[i].name) == 0)
                return INVALID(at, "%s: duplicate input name '%s'", what, list[i].name);
    }
    json_t *branch = json_object_get(js, "branch");
    if (branch && (rc = parse_branch(at, branch, st, goto_id)))
        return rc;
    return check_tag(at, st);
}

/* sc->json is already root (owned by the catalog); fills in the rest. */
static int parse_script(att_catalog *cat, const loc *at, json_t *root, att_script *sc)
{
    static const char *const members[] = {"id",      "version",  "title",
                                          "summary", "rounds",   "swap_each_round",
                                          "steps",   "language", NULL};
    long long version = 0, rounds = 0;
    const char *summary;
    json_t *steps = NULL;
    int rc;
    if ((rc = check_members(at, root, "script", members)) ||
        (rc = get_ident(at, root, "id", 1, "script", &sc->id)) ||
        (rc = get_int(at, root, "version", 1, 1, 1, "script", &version)) ||
        (rc = get_words(at, root, "title", "script", &sc->title)) ||
        (rc = get_words(at, root, "summary", "script", &summary)) ||
        (rc = get_int(at, root, "rounds", 1, 1, 100, "script", &rounds)) ||
        (rc = get_bool(at, root, "swap_each_round", "script", &sc->swap_each_round)) ||
        (rc = get_array(at, root, "steps", 1, MAX_STEPS, "script", &steps)) ||
        (rc = get_language(at, root, "script", &sc->language)))
        return rc;
    sc->rounds = (int)rounds;
    for (size_t i = 0; &cat->scripts[i] != sc; i++)
        if (strcmp(cat->scripts[i].id, sc->id) == 0)
            return INVALID(at, "duplicate script id '%s' (also in another file)", sc->id);

    size_t n = json_array_size(steps);
    const char *gotos[MAX_STEPS] = {0};
    att_step *list = calloc(n, sizeof *list);
    if (!list)
        return fail_at(at, ATT_ERR_INTERNAL, "out of memory");
    sc->steps = list; /* owned by the script from here on */
    for (size_t i = 0; i < n; i++) {
        rc = parse_step(at, cat, json_array_get(steps, i), i, &list[i], &gotos[i]);
        sc->n_steps = i + 1;
        if (rc)
            return rc;
        for (size_t j = 0; j < i; j++)
            if (strcmp(list[j].id, list[i].id) == 0)
                return INVALID(at, "duplicate step id '%s'", list[i].id);
    }
    for (size_t i = 0; i < n; i++) {
        if (!gotos[i])
            continue;
        for (size_t j = 0; j < n; j++)
            if (strcmp(list[j].id, gotos[i]) == 0)
                list[i].branch_goto = (int)j;
        if (list[i].branch_goto < 0)
            return INVALID(at, "step '%s': branch goto '%s' is not a step of this script",
                           list[i].id, gotos[i]);
    }
    for (size_t i = 0; i < n; i++)
        if ((rc = encode_step_parts(at, &list[i])))
            return rc;
    return 0;
}

static char *dump_fragment(json_t *j /* stolen */)
{
    char *text = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY) : NULL;
    json_decref(j);
    return text;
}

/* The constant JSON text of a step, encoded by jansson itself so that the
 * state writer's output is byte-identical to jansson's. */
static int encode_step_parts(const loc *at, att_step *st)
{
    json_t *inputs = json_object_get(st->json, "inputs");
    st->id_json = dump_fragment(json_string(st->id));
    st->title_json = dump_fragment(json_string(st->title ? st->title : ""));
    st->prompt_json = dump_fragment(json_string(st->prompt ? st->prompt : ""));
    st->inputs_json = dump_fragment(inputs ? json_incref(inputs) : json_array());
    if (!st->id_json || !st->title_json || !st->prompt_json || !st->inputs_json)
        return fail_at(at, ATT_ERR_INTERNAL, "out of memory");
    return 0;
}

static int load_exercises(att_catalog *cat, const char *dir, att_error *err)
{
    size_t n = 0;
    char(*names)[NAME_MAX + 1] = malloc(MAX_SCRIPTS * sizeof *names);
    if (!names)
        return att_fail(err, ATT_ERR_INTERNAL, "exercises/: out of memory");
    int rc = list_json_files(dir, "exercises", names, MAX_SCRIPTS, "scripts",
                             "no exercise scripts (*.json)", &n, err);
    if (rc == 0) {
        cat->scripts = calloc(n, sizeof *cat->scripts);
        if (!cat->scripts)
            rc = att_fail(err, ATT_ERR_INTERNAL, "exercises/: out of memory");
    }
    for (size_t i = 0; rc == 0 && i < n; i++) {
        char rel[NAME_MAX + 16];
        snprintf(rel, sizeof rel, "exercises/%s", names[i]);
        loc at = {rel, err};
        json_t *root;
        if ((rc = load_json(dir, rel, err, &root)))
            break;
        att_script *sc = &cat->scripts[cat->n_scripts];
        sc->json = root;
        /* Counted before parsing so att_catalog_free releases it on failure. */
        cat->n_scripts++;
        rc = parse_script(cat, &at, root, sc);
    }
    free(names);
    return rc;
}

/* ---- public API --------------------------------------------------------- */

int att_catalog_load_dir(const char *protocol_dir, att_catalog **out, att_error *err)
{
    *out = NULL;
    if (!protocol_dir)
        return att_fail(err, ATT_ERR_INTERNAL, "catalog: no protocol directory");
    att_catalog *cat = calloc(1, sizeof *cat);
    if (!cat || !(cat->vocab_json = json_object())) {
        free(cat);
        return att_fail(err, ATT_ERR_INTERNAL, "catalog: out of memory");
    }
    int rc = 0;
    for (int v = 0; rc == 0 && v < N_VOCABS; v++)
        rc = load_vocab(cat, protocol_dir, v, err);
    if (rc == 0)
        rc = load_blame(cat, protocol_dir, err);
    if (rc == 0)
        rc = load_consent(cat, protocol_dir, err);
    if (rc == 0)
        rc = load_safety(cat, protocol_dir, err);
    if (rc == 0)
        rc = load_exercises(cat, protocol_dir, err);
    if (rc) {
        att_catalog_free(cat);
        return rc;
    }
    *out = cat;
    return 0;
}

void att_catalog_free(att_catalog *cat)
{
    if (!cat)
        return;
    for (size_t i = 0; i < cat->n_scripts; i++) {
        free_steps((att_step *)cat->scripts[i].steps, cat->scripts[i].n_steps);
        json_decref(cat->scripts[i].json);
    }
    free(cat->scripts);
    for (int v = 0; v < N_VOCABS; v++) {
        free(cat->entries[v]);
        json_decref(cat->vocab_roots[v]);
    }
    json_decref(cat->vocab_json);
    for (size_t i = 0; i < cat->n_blame; i++)
        att_blame_lang_free(cat->blame[i]);
    json_decref(cat->consent);
    json_decref(cat->safety);
    free(cat);
}

const att_script *att_catalog_script(const att_catalog *cat, const char *id)
{
    if (!cat || !id)
        return NULL;
    for (size_t i = 0; i < cat->n_scripts; i++)
        if (strcmp(cat->scripts[i].id, id) == 0)
            return &cat->scripts[i];
    return NULL;
}

size_t att_catalog_script_count(const att_catalog *cat)
{
    return cat ? cat->n_scripts : 0;
}

const att_script *att_catalog_script_at(const att_catalog *cat, size_t i)
{
    return cat && i < cat->n_scripts ? &cat->scripts[i] : NULL;
}

const att_vocab *att_catalog_vocab(const att_catalog *cat, const char *id)
{
    if (!cat || !id)
        return NULL;
    for (int v = 0; v < N_VOCABS; v++)
        if (strcmp(vocab_ids[v], id) == 0)
            return &cat->vocabs[v];
    return NULL;
}

const att_vocab_entry *att_vocab_find(const att_vocab *v, const char *id)
{
    if (!v || !id)
        return NULL;
    for (size_t i = 0; i < v->n_entries; i++)
        if (strcmp(v->entries[i].id, id) == 0)
            return &v->entries[i];
    return NULL;
}

json_t *att_catalog_vocab_json(const att_catalog *cat)
{
    return cat ? cat->vocab_json : NULL;
}

json_t *att_catalog_consent_json(const att_catalog *cat)
{
    return cat ? cat->consent : NULL;
}

const char *att_catalog_consent_hash(const att_catalog *cat)
{
    return cat->consent_hash;
}

int att_catalog_consent_version(const att_catalog *cat)
{
    return cat->consent_version;
}

json_t *att_catalog_safety_json(const att_catalog *cat)
{
    return cat ? cat->safety : NULL;
}

int att_catalog_safety_check(const att_catalog *cat, json_t *answers, const char *note, int *hold,
                             att_error *err)
{
    json_t *questions = json_object_get(cat->safety, "questions");
    *hold = 0;
    if (!json_is_object(answers) || json_object_size(answers) != json_array_size(questions))
        return att_fail(err, ATT_ERR_INVALID_INPUT, "answer every check-in question, once");
    for (size_t i = 0; i < json_array_size(questions); i++) {
        json_t *q = json_array_get(questions, i);
        const char *qid = json_string_value(json_object_get(q, "id"));
        const char *a = json_string_value(json_object_get(answers, qid));
        if (!a || !safety_option(q, a))
            return att_fail(err, ATT_ERR_INVALID_INPUT,
                            "check-in question '%s' needs one of its options", qid);
        json_t *held = json_object_get(q, "hold");
        for (size_t j = 0; j < json_array_size(held); j++)
            if (strcmp(a, json_string_value(json_array_get(held, j))) == 0)
                *hold = 1;
    }
    if (note && strlen(note) > cat->safety_note_max)
        return att_fail(err, ATT_ERR_INVALID_INPUT, "the check-in note is at most %zu bytes",
                        cat->safety_note_max);
    return 0;
}

/* ---- blame classifier ------------------------------------------------- */

const att_blame_lang *att_catalog_blame_lang(const att_catalog *cat, const char *lang)
{
    if (!cat || !lang)
        return NULL;
    /* "en", "EN", "en-GB", "en_GB" -> "en" */
    char base[8];
    size_t n = 0;
    while (lang[n] && lang[n] != '-' && lang[n] != '_') {
        if (n + 1 == sizeof base)
            return NULL;
        char c = lang[n];
        base[n++] = c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
    }
    base[n] = 0;
    for (size_t i = 0; i < cat->n_blame; i++)
        if (strcmp(att_blame_lang_tag(cat->blame[i]), base) == 0)
            return cat->blame[i];
    return NULL;
}

att_blame_class att_catalog_blame_classify(const att_catalog *cat, const char *lang,
                                           const char *text)
{
    const att_blame_lang *l = att_catalog_blame_lang(cat, lang);
    return l && text ? att_blame_classify(l, text, strlen(text), NULL) : ATT_BLAME_NONE;
}

int att_catalog_blame_has_language(const att_catalog *cat, const char *lang)
{
    return att_catalog_blame_lang(cat, lang) != NULL;
}
