/* test_catalog.c - loads the real protocol directory and checks every script
 * (its language and per-step silence), vocabulary, marker, the consent
 * notice (what each role receives, its hash), the safety check-in and the
 * blame classifier's catalog API; then breaks copies of the
 * directory (temp dirs under /tmp) and checks that loading fails with an
 * error naming the file and the problem. */
#include "check.h"

#include "attune/catalog.h"
#include "attune/names.h"
#include "attune/event.h"

#include <openssl/sha.h>

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const data_files[] = {
    "consent.json",
    "safety.json",
    "vocab/reactive.json",
    "vocab/primary.json",
    "vocab/needs.json",
    "vocab/markers.json",
    "vocab/strategies.json",
    "vocab/blame/en.json",
    "vocab/blame/es.json",
    "vocab/blame/fr.json",
    "vocab/blame/de.json",
    "exercises/enactment.json",
    "exercises/demon-dialogue.json",
    "exercises/rocky-moment.json",
};

static const att_step *find_step(const att_script *sc, const char *id, int *index)
{
    for (size_t i = 0; i < sc->n_steps; i++)
        if (strcmp(sc->steps[i].id, id) == 0) {
            if (index)
                *index = (int)i;
            return &sc->steps[i];
        }
    return NULL;
}

static const att_input_desc *find_input(const att_step *st, const char *name)
{
    for (size_t i = 0; st && i < st->n_inputs; i++)
        if (strcmp(st->inputs[i].name, name) == 0)
            return &st->inputs[i];
    return NULL;
}

static int has_option(const att_input_desc *in, const char *id)
{
    for (size_t i = 0; in && i < in->n_options; i++)
        if (strcmp(in->options[i].id, id) == 0)
            return 1;
    return 0;
}

static const char *expected_vocab(att_input_kind k)
{
    switch (k) {
    case ATT_INPUT_EMOTION_REACTIVE:
        return "reactive";
    case ATT_INPUT_EMOTION_PRIMARY:
        return "primary";
    case ATT_INPUT_NEED:
        return "needs";
    default:
        return NULL;
    }
}

/* Structural rules every script must satisfy (the loader enforces them; this
 * checks the loaded structures say so too). */
static void check_script_generic(const att_catalog *cat, const att_script *sc)
{
    CHECK(sc->n_steps > 0);
    CHECK(sc->rounds >= 1);
    CHECK(json_is_object(sc->json));
    CHECK_STR(json_string_value(json_object_get(sc->json, "id")), sc->id);
    for (size_t i = 0; i < sc->n_steps; i++) {
        const att_step *st = &sc->steps[i];
        CHECK(json_is_object(st->json));
        CHECK_STR(json_string_value(json_object_get(st->json, "id")), st->id);
        json_t *inputs = json_object_get(st->json, "inputs");
        CHECK(json_is_array(inputs) && json_array_size(inputs) == st->n_inputs);
        CHECK(st->title && st->title[0] && st->prompt && st->prompt[0]);
        int has_vocab_input = 0, has_optional_text = 0, ratings = 0;
        for (size_t j = 0; j < st->n_inputs; j++) {
            const att_input_desc *in = &st->inputs[j];
            const char *want = expected_vocab(in->kind);
            json_t *jv = json_object_get(json_array_get(inputs, j), "vocab");
            if (want) {
                has_vocab_input = 1;
                CHECK_MSG(in->vocab == att_catalog_vocab(cat, want), "%s/%s/%s", sc->id, st->id,
                          in->name);
                /* on the wire the vocab stays an id string */
                CHECK_STR(json_string_value(jv), want);
                CHECK(in->max_length == ATT_MAX_TEXT_BYTES);
            } else {
                CHECK(in->vocab == NULL && jv == NULL);
            }
            if (in->kind == ATT_INPUT_CHOICE)
                CHECK(in->n_options > 0 && in->options != NULL);
            else
                CHECK(in->n_options == 0 && in->options == NULL);
            if (in->kind == ATT_INPUT_RATING) {
                ratings++;
                CHECK(in->min == 0 && in->max == 10);
            }
            if (in->kind == ATT_INPUT_TEXT) {
                CHECK(in->max_length > 0 && in->max_length <= ATT_MAX_TEXT_BYTES);
                if (!in->required)
                    has_optional_text = 1;
            }
        }
        /* free text is always possible beside a vocabulary choice */
        if (has_vocab_input)
            CHECK_MSG(has_optional_text, "%s/%s has no optional text", sc->id, st->id);
        if (st->branch_input) {
            CHECK(st->branch_goto >= 0 && (size_t)st->branch_goto < sc->n_steps);
            const att_input_desc *bi = find_input(st, st->branch_input);
            CHECK(bi != NULL && bi->kind == ATT_INPUT_CHOICE);
            CHECK(has_option(bi, st->branch_equals));
        } else {
            CHECK(st->branch_goto == -1);
        }
        if (st->tag == ATT_TAG_REFLECTION_CHECK)
            CHECK(st->branch_input != NULL && st->actor != ATT_ACTOR_THERAPIST);
        if (st->tag == ATT_TAG_CONNECTION_RATING)
            CHECK(ratings == 1 && st->actor != ATT_ACTOR_THERAPIST);
    }
}

static void test_enactment(const att_catalog *cat)
{
    const att_script *sc = att_catalog_script(cat, "enactment");
    CHECK(sc != NULL);
    if (!sc)
        return;
    CHECK_INT(sc->rounds, 2);
    CHECK_INT(sc->swap_each_round, 1);
    static const char *const ids[] = {"what_happened", "reactive", "primary", "need",
                                      "reflect",       "check",    "respond", "connection"};
    static const att_actor actors[] = {ATT_ACTOR_SPEAKER,  ATT_ACTOR_SPEAKER,  ATT_ACTOR_SPEAKER,
                                       ATT_ACTOR_SPEAKER,  ATT_ACTOR_LISTENER, ATT_ACTOR_SPEAKER,
                                       ATT_ACTOR_LISTENER, ATT_ACTOR_SPEAKER};
    CHECK_INT(sc->n_steps, 8);
    for (size_t i = 0; i < 8 && i < sc->n_steps; i++) {
        CHECK_STR(sc->steps[i].id, ids[i]);
        CHECK_INT(sc->steps[i].actor, actors[i]);
    }
    int reflect = -1, check = -1;
    const att_step *st = find_step(sc, "reflect", &reflect);
    CHECK(st && st->tag == ATT_TAG_REFLECTION);
    st = find_step(sc, "check", &check);
    CHECK(st && st->tag == ATT_TAG_REFLECTION_CHECK);
    if (st) {
        CHECK_STR(st->branch_input, "landed");
        CHECK_STR(st->branch_equals, "no");
        CHECK_INT(st->branch_goto, reflect);
        const att_input_desc *landed = find_input(st, "landed");
        CHECK(landed && landed->required && has_option(landed, "yes") && has_option(landed, "no"));
    }
    const att_input_desc *in = find_input(find_step(sc, "reactive", NULL), "reactive");
    CHECK(in && in->kind == ATT_INPUT_EMOTION_REACTIVE && in->required);
    in = find_input(find_step(sc, "reactive", NULL), "what_i_did");
    CHECK(in && in->kind == ATT_INPUT_TEXT && !in->required);
    in = find_input(find_step(sc, "primary", NULL), "intensity");
    CHECK(in && in->kind == ATT_INPUT_RATING && in->min == 0 && in->max == 10);
    in = find_input(find_step(sc, "need", NULL), "request");
    CHECK(in && in->kind == ATT_INPUT_TEXT);
    st = find_step(sc, "connection", NULL);
    CHECK(st && st->tag == ATT_TAG_CONNECTION_RATING);
    in = find_input(st, "connection");
    CHECK(in && in->kind == ATT_INPUT_RATING && in->required);
}

static void test_demon_dialogue(const att_catalog *cat)
{
    const att_script *sc = att_catalog_script(cat, "demon_dialogue");
    CHECK(sc != NULL);
    if (!sc)
        return;
    CHECK_INT(sc->rounds, 1);
    const att_step *a = find_step(sc, "a_moves", NULL), *b = find_step(sc, "b_moves", NULL);
    CHECK(a && a->actor == ATT_ACTOR_PARTNER_A);
    CHECK(b && b->actor == ATT_ACTOR_PARTNER_B);
    const att_input_desc *mine = find_input(a, "my_move"), *theirs = find_input(a, "partner_move");
    CHECK(mine && has_option(mine, "pursue") && has_option(mine, "withdraw") &&
          has_option(mine, "attack") && has_option(mine, "freeze"));
    CHECK(theirs && theirs->n_options == (mine ? mine->n_options : 0));
    int name_cycle = -1;
    const att_step *nc = find_step(sc, "name_cycle", &name_cycle);
    CHECK(nc && nc->actor == ATT_ACTOR_SPEAKER);
    const att_input_desc *d = find_input(nc, "dialogue");
    CHECK(d && d->n_options == 3 && has_option(d, "find_the_bad_guy") &&
          has_option(d, "protest_polka") && has_option(d, "freeze_and_flee"));
    const att_step *ck = find_step(sc, "check", NULL);
    CHECK(ck && ck->actor == ATT_ACTOR_LISTENER && ck->tag == ATT_TAG_REFLECTION_CHECK);
    CHECK(ck && ck->branch_goto == name_cycle);
    const att_step *ra = find_step(sc, "connection_a", NULL);
    const att_step *rb = find_step(sc, "connection_b", NULL);
    CHECK(ra && ra->actor == ATT_ACTOR_PARTNER_A && ra->tag == ATT_TAG_CONNECTION_RATING);
    CHECK(rb && rb->actor == ATT_ACTOR_PARTNER_B && rb->tag == ATT_TAG_CONNECTION_RATING);
}

static void test_rocky_moment(const att_catalog *cat)
{
    const att_script *sc = att_catalog_script(cat, "rocky_moment");
    CHECK(sc != NULL);
    if (!sc)
        return;
    CHECK_INT(sc->rounds, 1);
    CHECK_INT(sc->swap_each_round, 0);
    CHECK_INT(sc->n_steps, 12);
    CHECK_STR(sc->steps[0].id, "trigger");
    CHECK_INT(sc->steps[0].actor, ATT_ACTOR_PARTNER_A);
    static const char *const parts[] = {"reactive", "primary", "need", "differently"};
    static const att_input_kind kinds[] = {ATT_INPUT_EMOTION_REACTIVE, ATT_INPUT_EMOTION_PRIMARY,
                                           ATT_INPUT_NEED, ATT_INPUT_TEXT};
    for (int p = 0; p < 2; p++) {
        for (int k = 0; k < 4; k++) {
            char id[32];
            snprintf(id, sizeof id, "%c_%s", p ? 'b' : 'a', parts[k]);
            const att_step *st = find_step(sc, id, NULL);
            CHECK_MSG(st != NULL, "missing step %s", id);
            if (!st)
                continue;
            CHECK_INT(st->actor, p ? ATT_ACTOR_PARTNER_B : ATT_ACTOR_PARTNER_A);
            CHECK(st->n_inputs > 0 && st->inputs[0].kind == kinds[k]);
        }
    }
    const att_step *sum = find_step(sc, "summary", NULL);
    CHECK(sum && sum->actor == ATT_ACTOR_THERAPIST);
    const att_input_desc *in = find_input(sum, "summary");
    CHECK(in && in->kind == ATT_INPUT_TEXT && in->required);
    CHECK(sc->steps[10].tag == ATT_TAG_CONNECTION_RATING &&
          sc->steps[10].actor == ATT_ACTOR_PARTNER_A);
    CHECK(sc->steps[11].tag == ATT_TAG_CONNECTION_RATING &&
          sc->steps[11].actor == ATT_ACTOR_PARTNER_B);
}

static void test_vocab(const att_catalog *cat)
{
    static const char *const plain[] = {"reactive", "primary", "needs"};
    for (int i = 0; i < 3; i++) {
        const att_vocab *v = att_catalog_vocab(cat, plain[i]);
        CHECK(v != NULL);
        if (!v)
            continue;
        CHECK_STR(v->id, plain[i]);
        CHECK_MSG(v->n_entries >= 12 && v->n_entries <= 16, "%s has %zu", plain[i], v->n_entries);
        for (size_t j = 0; j < v->n_entries; j++) {
            CHECK(v->entries[j].kind == NULL);
            CHECK(v->entries[j].label[0] && v->entries[j].sentence[0]);
            CHECK(att_vocab_find(v, v->entries[j].id) == &v->entries[j]);
        }
        CHECK(json_array_size(v->json) == v->n_entries);
        CHECK(att_vocab_find(v, "no_such_entry") == NULL);
    }
    CHECK(att_vocab_find(att_catalog_vocab(cat, "reactive"), "angry") != NULL);
    CHECK(att_vocab_find(att_catalog_vocab(cat, "primary"), "afraid_of_losing_you") != NULL);
    CHECK(att_vocab_find(att_catalog_vocab(cat, "needs"), "to_matter") != NULL);
    CHECK(att_vocab_find(att_catalog_vocab(cat, "reactive"), "to_matter") == NULL);
    CHECK(att_catalog_vocab(cat, "blame") == NULL);
    CHECK(att_catalog_vocab(cat, "nope") == NULL);

    /* markers: every 3RS and detector marker with its kind */
    static const char *const withdrawal[] = {
        "denial",    "minimal_response",     "abstract_talk", "changing_subject",
        "appeasing", "content_affect_split", "hopelessness"};
    static const char *const confrontation[] = {
        "complaint_about_partner", "complaint_about_therapist", "rejecting_intervention",
        "defending_self", "trying_to_control"};
    static const char *const detector[] = {"disconnect",     "silence",    "reflection_rejected",
                                           "rating_drop",    "rating_low", "blaming_language",
                                           "pause_requested"};
    const att_vocab *m = att_catalog_vocab(cat, "markers");
    CHECK(m != NULL && m->n_entries == 7 + 5 + 7);
    for (size_t i = 0; i < 7; i++) {
        const att_vocab_entry *e = att_vocab_find(m, withdrawal[i]);
        CHECK_MSG(e && strcmp(e->kind, "withdrawal") == 0, "%s", withdrawal[i]);
        e = att_vocab_find(m, detector[i]);
        CHECK_MSG(e && strcmp(e->kind, "detector") == 0, "%s", detector[i]);
    }
    for (size_t i = 0; i < 5; i++) {
        const att_vocab_entry *e = att_vocab_find(m, confrontation[i]);
        CHECK_MSG(e && strcmp(e->kind, "confrontation") == 0, "%s", confrontation[i]);
    }
    const att_vocab *s = att_catalog_vocab(cat, "strategies");
    CHECK(s != NULL && s->n_entries == 6);
    static const char *const immediate[] = {"give_rationale", "change_task",
                                            "clarify_misunderstanding"};
    static const char *const exploratory[] = {"discuss_what_happened", "empathize", "own_part"};
    for (size_t i = 0; i < 3; i++) {
        const att_vocab_entry *e = att_vocab_find(s, immediate[i]);
        CHECK_MSG(e && strcmp(e->kind, "immediate") == 0, "%s", immediate[i]);
        e = att_vocab_find(s, exploratory[i]);
        CHECK_MSG(e && strcmp(e->kind, "exploratory") == 0, "%s", exploratory[i]);
    }

    /* hello-ack JSON: the five vocabularies, the same arrays the structs describe */
    json_t *vj = att_catalog_vocab_json(cat);
    CHECK(json_is_object(vj) && json_object_size(vj) == 5);
    for (int i = 0; i < 3; i++)
        CHECK(json_object_get(vj, plain[i]) == att_catalog_vocab(cat, plain[i])->json);
    CHECK(json_array_size(json_object_get(vj, "markers")) == m->n_entries);
    CHECK(json_object_get(vj, "blame") == NULL);

    json_t *c = att_catalog_consent_json(cat);
    CHECK(json_integer_value(json_object_get(c, "version")) == att_catalog_consent_version(cat));
    CHECK(att_catalog_consent_version(cat) >= 2); /* protocol 2's notice */
    CHECK(json_string_length(json_object_get(c, "text")) > 100);
    CHECK(json_array_size(json_object_get(c, "recorded")) > 0);
    json_t *vis = json_object_get(c, "visible_to");
    CHECK(json_is_string(json_object_get(vis, "partner_a")) &&
          json_is_string(json_object_get(vis, "partner_b")) &&
          json_is_string(json_object_get(vis, "therapist")) &&
          json_is_string(json_object_get(vis, "observer")));
}

/* The consent notice says what each role's wire receives, by event type:
 * exactly the types att_event_audience lets that role see (for some author),
 * and its hash is SHA-256 of its canonical JSON without "hash". */
static void test_consent(const att_catalog *cat)
{
    json_t *c = att_catalog_consent_json(cat);
    json_t *copy = json_deep_copy(c);
    json_object_del(copy, "hash");
    char *canon = json_dumps(copy, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(copy);
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)canon, strlen(canon), md);
    free(canon);
    char hex[65];
    for (int i = 0; i < SHA256_DIGEST_LENGTH; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    CHECK_STR(att_catalog_consent_hash(cat), hex);
    CHECK_STR(json_string_value(json_object_get(c, "hash")), hex);

    static const att_role roles[] = {ATT_ROLE_PARTNER_A, ATT_ROLE_PARTNER_B, ATT_ROLE_THERAPIST,
                                     ATT_ROLE_OBSERVER};
    static const att_role authors[] = {ATT_ROLE_PARTNER_A, ATT_ROLE_PARTNER_B, ATT_ROLE_THERAPIST,
                                       ATT_ROLE_OBSERVER, ATT_ROLE_SYSTEM};
    json_t *receives = json_object_get(c, "receives");
    CHECK_INT(json_object_size(receives), 4);
    for (int r = 0; r < 4; r++) {
        json_t *list = json_object_get(receives, att_role_name(roles[r]));
        CHECK_MSG(json_is_array(list), "receives.%s", att_role_name(roles[r]));
        for (int t = 0; t < ATT_EV__COUNT; t++) {
            int may = 0;
            for (size_t b = 0; b < sizeof authors / sizeof authors[0]; b++)
                for (int to = -1; to < 3; to++) {
                    att_event ev;
                    memset(&ev, 0, sizeof ev);
                    ev.type = (att_event_type)t;
                    ev.by = authors[b];
                    ev.to = (att_role)to;
                    may |= att_event_visible_to(&ev, roles[r]);
                }
            int listed = 0;
            size_t i;
            json_t *e;
            json_array_foreach(list, i, e)
            {
                listed += strcmp(json_string_value(e), att_event_type_name((att_event_type)t)) == 0;
            }
            CHECK_MSG(listed == may, "receives.%s: %s listed %d, visible %d",
                      att_role_name(roles[r]), att_event_type_name((att_event_type)t), listed, may);
        }
    }
    /* what partners never receive, spelled out */
    json_t *pa = json_object_get(receives, "partner_a");
    static const char *const staff_only[] = {"rupture_suspected", "rupture_confirmed",
                                             "rupture_dismissed", "note"};
    for (size_t k = 0; k < 4; k++) {
        size_t i;
        json_t *e;
        json_array_foreach(pa, i, e)
        {
            CHECK(strcmp(json_string_value(e), staff_only[k]) != 0);
        }
    }
}

/* protocol/safety.json: the questions, what holds the session, the note. */
static void test_safety(const att_catalog *cat)
{
    json_t *s = att_catalog_safety_json(cat);
    CHECK(json_is_object(s));
    CHECK_INT(json_integer_value(json_object_get(s, "version")), 1);
    CHECK(json_string_length(json_object_get(s, "title")) > 0);
    CHECK(json_string_length(json_object_get(s, "intro")) > 0);
    CHECK(json_string_length(json_object_get(s, "waiting")) > 0);
    json_t *qs = json_object_get(s, "questions");
    CHECK_INT(json_array_size(qs), 1);
    json_t *q = json_array_get(qs, 0);
    CHECK_STR(json_string_value(json_object_get(q, "id")), "safe_to_talk");
    CHECK_INT(json_array_size(json_object_get(q, "options")), 3);
    CHECK_INT(json_array_size(json_object_get(q, "hold")), 2);
    CHECK_INT(json_integer_value(json_object_get(json_object_get(s, "note"), "max_length")), 2000);
    static const struct {
        const char *answers;
        const char *note;
        int code, hold;
    } cases[] = {
        {"{\"safe_to_talk\":\"yes\"}", NULL, 0, 0},
        {"{\"safe_to_talk\":\"yes\"}", "fine", 0, 0},
        {"{\"safe_to_talk\":\"not_sure\"}", NULL, 0, 1},
        {"{\"safe_to_talk\":\"no\"}", "please call me", 0, 1},
        {"{\"safe_to_talk\":\"maybe\"}", NULL, ATT_ERR_INVALID_INPUT, 0},
        {"{\"safe_to_talk\":1}", NULL, ATT_ERR_INVALID_INPUT, 0},
        {"{\"other\":\"yes\"}", NULL, ATT_ERR_INVALID_INPUT, 0},
        {"{\"safe_to_talk\":\"yes\",\"other\":\"yes\"}", NULL, ATT_ERR_INVALID_INPUT, 0},
        {"{}", NULL, ATT_ERR_INVALID_INPUT, 0},
        {"[\"yes\"]", NULL, ATT_ERR_INVALID_INPUT, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *a = json_loads(cases[i].answers, 0, NULL);
        int hold = -1;
        att_error err = {0};
        int rc = att_catalog_safety_check(cat, a, cases[i].note, &hold, &err);
        CHECK_MSG(rc == -cases[i].code, "%s: %d (%s)", cases[i].answers, rc, err.message);
        if (rc == 0)
            CHECK_MSG(hold == cases[i].hold, "%s: hold %d", cases[i].answers, hold);
        json_decref(a);
    }
    char note[2002];
    memset(note, 'n', sizeof note - 1);
    note[sizeof note - 1] = '\0';
    json_t *yes = json_loads("{\"safe_to_talk\":\"yes\"}", 0, NULL);
    int hold;
    att_error err;
    CHECK_INT(att_catalog_safety_check(cat, yes, note, &hold, &err), -ATT_ERR_INVALID_INPUT);
    note[2000] = '\0';
    CHECK_INT(att_catalog_safety_check(cat, yes, note, &hold, &err), 0);
    json_decref(yes);
}

/* Each script's language and each step's silence threshold (-1: the room's). */
static void test_language_and_silence(const att_catalog *cat)
{
    for (size_t i = 0; i < att_catalog_script_count(cat); i++) {
        const att_script *sc = att_catalog_script_at(cat, i);
        CHECK_STR(sc->language, "en");
        for (size_t k = 0; k < sc->n_steps; k++) {
            const att_step *st = &sc->steps[k];
            json_t *v = json_object_get(st->json, "silence_ms");
            CHECK_INT(st->silence_ms, v ? json_integer_value(v) : -1);
            /* reflective steps are never timed */
            if (st->tag == ATT_TAG_REFLECTION || st->tag == ATT_TAG_REFLECTION_CHECK)
                CHECK_MSG(st->silence_ms == 0, "%s/%s", sc->id, st->id);
        }
    }
    static const long long enactment[] = {300000, 300000, 0, 300000, 0, 0, 0, 300000};
    const att_script *sc = att_catalog_script(cat, "enactment");
    CHECK_INT(sc->n_steps, 8);
    for (size_t k = 0; k < 8 && k < sc->n_steps; k++)
        CHECK_INT(sc->steps[k].silence_ms, enactment[k]);
    int index = -1;
    const att_step *summary = find_step(att_catalog_script(cat, "rocky_moment"), "summary", &index);
    CHECK(summary && summary->silence_ms == -1);
}

/* The catalog's side of the blame classifier (the rules themselves are
 * tested in test_blame.c): languages, fallbacks, the legacy wrapper. */
static void test_blame(const att_catalog *cat)
{
    static const char *const yes[] = {
        "you never listen",
        "You Never listen to me",
        "YOU ALWAYS do this",
        "you  always\ndo this",      /* any whitespace run between words */
        "you\xe2\x80\x99re so cold", /* typographic apostrophe */
        "stop being lazy!",
        "(idiot)",
        "ok *rolls eyes* fine",
        "just grow up",
        "\xe2\x80\x9cpathetic\xe2\x80\x9d", /* curly quotes are boundaries */
        "you are being selfish-ish",
    };
    static const char *const no[] = {
        "I never said that",
        "I always feel alone",
        "selfishness", /* whole words only */
        "laziness",
        "hugh came over",
        "I felt stupid",
        "It's not your fault",
        "You always make me laugh",
        "I'm sorry I was so selfish",
        "you nevertheless came",
        "",
        "you",
        "you alway",
    };
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
        CHECK_MSG(att_catalog_blame_classify(cat, "en", yes[i]) != ATT_BLAME_NONE,
                  "should match: '%s'", yes[i]);
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
        CHECK_MSG(att_catalog_blame_classify(cat, "en", no[i]) == ATT_BLAME_NONE,
                  "should not match: '%s'", no[i]);
    CHECK(att_catalog_blame_classify(cat, "en", NULL) == ATT_BLAME_NONE);
    CHECK(att_catalog_blame_classify(NULL, "en", "you never") == ATT_BLAME_NONE);

    static const char *const langs[] = {"en", "es", "fr", "de", "en-GB", "EN", "es_MX", "de-AT"};
    for (size_t i = 0; i < sizeof langs / sizeof langs[0]; i++)
        CHECK_MSG(att_catalog_blame_has_language(cat, langs[i]) == 1, "no rules for %s", langs[i]);
    CHECK(att_catalog_blame_has_language(cat, "pt") == 0);
    CHECK(att_catalog_blame_has_language(cat, "") == 0);
    CHECK(att_catalog_blame_has_language(cat, "english") == 0);
    CHECK(att_catalog_blame_has_language(cat, NULL) == 0);
    CHECK(att_catalog_blame_has_language(NULL, "en") == 0);
    CHECK(att_catalog_blame_lang(cat, "fr-CA") == att_catalog_blame_lang(cat, "fr"));

    CHECK_INT(att_catalog_blame_classify(cat, "en", "You never listen to me."),
              ATT_BLAME_CRITICISM);
    CHECK_INT(att_catalog_blame_classify(cat, "en-US", "You're such an idiot."),
              ATT_BLAME_CONTEMPT);
    CHECK_INT(att_catalog_blame_classify(cat, "en", "I'm such an idiot."), ATT_BLAME_NONE);
    CHECK_INT(att_catalog_blame_classify(cat, "es", "Nunca me escuchas."), ATT_BLAME_CRITICISM);
    CHECK_INT(att_catalog_blame_classify(cat, "fr", "Tu es ridicule."), ATT_BLAME_CONTEMPT);
    CHECK_INT(att_catalog_blame_classify(cat, "de", "Du hörst mir nie zu."), ATT_BLAME_CRITICISM);
    /* an unknown language, or rules of another language, never match */
    CHECK_INT(att_catalog_blame_classify(cat, "pt", "You never listen to me."), ATT_BLAME_NONE);
    CHECK_INT(att_catalog_blame_classify(cat, "de", "You never listen to me."), ATT_BLAME_NONE);
    CHECK_INT(att_catalog_blame_classify(cat, NULL, "You never listen"), ATT_BLAME_NONE);
    CHECK_INT(att_catalog_blame_classify(cat, "en", NULL), ATT_BLAME_NONE);
    CHECK_INT(att_catalog_blame_classify(NULL, "en", "You never listen"), ATT_BLAME_NONE);
    CHECK_STR(att_blame_class_name(ATT_BLAME_CRITICISM), "criticism");
    CHECK_STR(att_blame_class_name(ATT_BLAME_CONTEMPT), "contempt");
    CHECK(att_blame_class_name(ATT_BLAME_NONE) == NULL);
}

/* ---- broken catalogs ---------------------------------------------------- */

static int write_file(const char *dir, const char *rel, const char *text)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    size_t n = strlen(text);
    int ok = fwrite(text, 1, n, f) == n;
    return fclose(f) == 0 && ok ? 0 : -1;
}

/* Copies the real data files into a fresh temp dir; returns 0 on success. */
static int make_copy(char *dir, size_t cap)
{
    snprintf(dir, cap, "/tmp/attune-catalog-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    char sub[512];
    snprintf(sub, sizeof sub, "%s/vocab", dir);
    if (mkdir(sub, 0700) != 0)
        return -1;
    snprintf(sub, sizeof sub, "%s/vocab/blame", dir);
    if (mkdir(sub, 0700) != 0)
        return -1;
    snprintf(sub, sizeof sub, "%s/exercises", dir);
    if (mkdir(sub, 0700) != 0)
        return -1;
    for (size_t i = 0; i < sizeof data_files / sizeof data_files[0]; i++) {
        char src[512];
        snprintf(src, sizeof src, "%s/%s", ATTUNE_PROTOCOL_DIR, data_files[i]);
        char *text = check_read_file(src, NULL);
        int rc = text ? write_file(dir, data_files[i], text) : -1;
        free(text);
        if (rc)
            return -1;
    }
    return 0;
}

static void remove_dir(const char *dir)
{
    static const char *const subs[] = {"vocab/blame", "vocab", "exercises", ""};
    for (size_t i = 0; i < 4; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s", dir, subs[i]);
        DIR *d = opendir(path);
        if (!d)
            continue;
        struct dirent *de;
        while ((de = readdir(d)) != NULL) {
            char file[1024];
            snprintf(file, sizeof file, "%s/%s", path, de->d_name);
            struct stat sb;
            if (de->d_name[0] != '.' && stat(file, &sb) == 0 && S_ISREG(sb.st_mode))
                unlink(file);
        }
        closedir(d);
        if (subs[i][0])
            rmdir(path);
    }
    rmdir(dir);
}

typedef void (*mutation)(json_t *root);

/* Applies `mutate` to file `rel` of a fresh copy (or writes `raw` instead),
 * loads the copy, and checks the error's code and that its message names the
 * file and contains `problem`. */
static void expect_failure(const char *rel, mutation mutate, const char *raw, att_code code,
                           const char *problem)
{
    char dir[64];
    if (make_copy(dir, sizeof dir) != 0) {
        CHECK_MSG(0, "cannot make a temp copy for %s", rel);
        return;
    }
    if (mutate) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s", dir, rel);
        json_error_t jerr;
        json_t *root = json_load_file(path, 0, &jerr);
        CHECK(root != NULL);
        if (root) {
            mutate(root);
            CHECK(json_dump_file(root, path, JSON_INDENT(1)) == 0);
            json_decref(root);
        }
    } else if (raw) {
        CHECK(write_file(dir, rel, raw) == 0);
    } else {
        char path[512];
        snprintf(path, sizeof path, "%s/%s", dir, rel);
        CHECK(unlink(path) == 0);
    }
    att_catalog *cat = (att_catalog *)1;
    att_error err = {0};
    int rc = att_catalog_load_dir(dir, &cat, &err);
    CHECK_MSG(rc == -(int)code, "%s/%s: rc %d, want %d (%s)", rel, problem, rc, -(int)code,
              err.message);
    CHECK(cat == NULL);
    CHECK_INT(err.code, code);
    CHECK_MSG(strncmp(err.message, rel, strlen(rel)) == 0, "message '%s' does not start with %s",
              err.message, rel);
    CHECK_MSG(strstr(err.message, problem) != NULL, "message '%s' lacks '%s'", err.message,
              problem);
    remove_dir(dir);
}

static json_t *step_of(json_t *root, size_t i)
{
    return json_array_get(json_object_get(root, "steps"), i);
}

static json_t *input_of(json_t *root, size_t step, size_t input)
{
    return json_array_get(json_object_get(step_of(root, step), "inputs"), input);
}

static json_t *entry_of(json_t *root, size_t i)
{
    return json_array_get(json_object_get(root, "entries"), i);
}

/* enactment.json: step 1 = reactive, step 2 = primary, step 5 = check, step 7 = connection */
static void m_goto_unknown(json_t *r)
{
    json_object_set_new(json_object_get(step_of(r, 5), "branch"), "goto", json_string("nowhere"));
}
static void m_dup_step(json_t *r)
{
    json_object_set_new(step_of(r, 1), "id", json_string("what_happened"));
}
static void m_no_vocab(json_t *r)
{
    json_object_del(input_of(r, 1, 0), "vocab");
}
static void m_unknown_vocab(json_t *r)
{
    json_object_set_new(input_of(r, 1, 0), "vocab", json_string("feelings"));
}
static void m_wrong_vocab(json_t *r)
{
    json_object_set_new(input_of(r, 1, 0), "vocab", json_string("needs"));
}
static void m_vocab_on_text(json_t *r)
{
    json_object_set_new(input_of(r, 0, 0), "vocab", json_string("reactive"));
}
static void m_no_options(json_t *r)
{
    json_object_del(input_of(r, 5, 0), "options");
}
static void m_empty_options(json_t *r)
{
    json_object_set_new(input_of(r, 5, 0), "options", json_array());
}
static void m_bad_actor(json_t *r)
{
    json_object_set_new(step_of(r, 0), "actor", json_string("observer"));
}
static void m_extra_member(json_t *r)
{
    json_object_set_new(step_of(r, 0), "colour", json_string("blue"));
}
static void m_branch_input_missing(json_t *r)
{
    json_object_set_new(json_object_get(step_of(r, 5), "branch"), "input", json_string("nope"));
}
static void m_branch_equals_not_option(json_t *r)
{
    json_object_set_new(json_object_get(step_of(r, 5), "branch"), "equals", json_string("maybe"));
}
static void m_min_over_max(json_t *r)
{
    json_object_set_new(input_of(r, 7, 0), "min", json_integer(11));
}
static void m_unknown_tag(json_t *r)
{
    json_object_set_new(step_of(r, 0), "tag", json_string("vibes"));
}
static void m_check_without_branch(json_t *r)
{
    json_object_del(step_of(r, 5), "branch");
}
static void m_rating_step_without_rating(json_t *r)
{
    json_object_set_new(step_of(r, 0), "tag", json_string("connection_rating"));
}
static void m_version(json_t *r)
{
    json_object_set_new(r, "version", json_integer(2));
}
static void m_unknown_kind(json_t *r)
{
    json_object_set_new(input_of(r, 0, 0), "kind", json_string("essay"));
}
static void m_dup_input(json_t *r)
{
    json_object_set_new(input_of(r, 1, 1), "name", json_string("reactive"));
}
static void m_no_steps(json_t *r)
{
    json_object_set_new(r, "steps", json_array());
}
static void m_rounds_zero(json_t *r)
{
    json_object_set_new(r, "rounds", json_integer(0));
}
static void m_max_length_big(json_t *r)
{
    json_object_set_new(input_of(r, 0, 0), "max_length", json_integer(5000));
}
static void m_marker_kind(json_t *r)
{
    json_object_set_new(entry_of(r, 0), "kind", json_string("sulking"));
}
static void m_marker_missing_detector(json_t *r)
{
    json_t *entries = json_object_get(r, "entries");
    json_array_remove(entries, json_array_size(entries) - 1); /* pause_requested */
}
static void m_dup_entry(json_t *r)
{
    json_object_set_new(entry_of(r, 1), "id", json_string("to_matter"));
}
static void m_kind_in_reactive(json_t *r)
{
    json_object_set_new(entry_of(r, 0), "kind", json_string("withdrawal"));
}
static void m_entry_id_case(json_t *r)
{
    json_object_set_new(entry_of(r, 0), "id", json_string("Angry"));
}
static void m_vocab_id(json_t *r)
{
    json_object_set_new(r, "id", json_string("reactive"));
}
static void m_blame_upper(json_t *r)
{
    json_array_append_new(json_object_get(json_object_get(r, "lexicons"), "absolutes"),
                          json_string("Always"));
}
static void m_blame_dup(json_t *r)
{
    /* "nunca" is already there; "núnca" folds to the same word */
    json_array_append_new(json_object_get(json_object_get(r, "lexicons"), "absolutes"),
                          json_string("n\xc3\xbanca"));
}
static void m_blame_lang(json_t *r)
{
    json_object_set_new(r, "lang", json_string("it"));
}
static void m_blame_unknown_lexicon(json_t *r)
{
    json_t *rule = json_pack("{s:s, s:s}", "class", "criticism", "pattern", "@second_person @nope");
    json_array_append_new(json_object_get(r, "rules"), rule);
}
static void m_consent_no_receives(json_t *r)
{
    json_object_del(r, "receives");
}
static void m_consent_receives_type(json_t *r)
{
    json_array_append_new(json_object_get(json_object_get(r, "receives"), "observer"),
                          json_string("secrets"));
}
static void m_consent_receives_role(json_t *r)
{
    json_object_del(json_object_get(r, "receives"), "observer");
}
static void m_safety_dup_question(json_t *r)
{
    json_t *qs = json_object_get(r, "questions");
    json_array_append_new(qs, json_deep_copy(json_array_get(qs, 0)));
}
static void m_safety_hold(json_t *r)
{
    json_array_append_new(
        json_object_get(json_array_get(json_object_get(r, "questions"), 0), "hold"),
        json_string("perhaps"));
}
static void m_safety_one_option(json_t *r)
{
    json_t *o = json_object_get(json_array_get(json_object_get(r, "questions"), 0), "options");
    while (json_array_size(o) > 1)
        json_array_remove(o, 1);
}
static void m_safety_note_length(json_t *r)
{
    json_object_set_new(json_object_get(r, "note"), "max_length", json_integer(5000));
}
static void m_safety_member(json_t *r)
{
    json_object_set_new(r, "colour", json_string("blue"));
}
static void m_language(json_t *r)
{
    json_object_set_new(r, "language", json_string("EN"));
}
static void m_silence_negative(json_t *r)
{
    json_object_set_new(step_of(r, 0), "silence_ms", json_integer(-5));
}
static void m_silence_string(json_t *r)
{
    json_object_set_new(step_of(r, 0), "silence_ms", json_string("5 minutes"));
}
static void m_consent_role(json_t *r)
{
    json_object_del(json_object_get(r, "visible_to"), "therapist");
}
static void m_strategy_kind(json_t *r)
{
    json_object_del(entry_of(r, 0), "kind");
}

static void test_broken(void)
{
    const char *en = "exercises/enactment.json";
    const att_code bad = ATT_ERR_BAD_MESSAGE;
    expect_failure(en, m_goto_unknown, NULL, bad, "branch goto 'nowhere' is not a step");
    expect_failure(en, m_dup_step, NULL, bad, "duplicate step id 'what_happened'");
    expect_failure(en, m_no_vocab, NULL, bad, "emotion_reactive input without 'vocab'");
    expect_failure(en, m_unknown_vocab, NULL, bad, "unknown vocab");
    expect_failure(en, m_wrong_vocab, NULL, bad, "takes vocab 'reactive', not 'needs'");
    expect_failure(en, m_vocab_on_text, NULL, bad, "'vocab' is only for");
    expect_failure(en, m_no_options, NULL, bad, "choice without 'options'");
    expect_failure(en, m_empty_options, NULL, bad, "'options' must be an array of 1..");
    expect_failure(en, m_bad_actor, NULL, bad, "bad actor 'observer'");
    expect_failure(en, m_extra_member, NULL, bad, "unknown member 'colour'");
    expect_failure(en, m_branch_input_missing, NULL, bad, "'nope' is not an input of this step");
    expect_failure(en, m_branch_equals_not_option, NULL, bad, "'maybe' is not an option");
    expect_failure(en, m_min_over_max, NULL, bad, "min 11 is greater than max 10");
    expect_failure(en, m_unknown_tag, NULL, bad, "unknown tag 'vibes'");
    expect_failure(en, m_check_without_branch, NULL, bad, "reflection_check step needs a branch");
    expect_failure(en, m_rating_step_without_rating, NULL, bad, "exactly one rating input");
    expect_failure(en, m_version, NULL, bad, "'version' must be an integer in 1..1");
    expect_failure(en, m_unknown_kind, NULL, bad, "unknown kind 'essay'");
    expect_failure(en, m_dup_input, NULL, bad, "duplicate input name 'reactive'");
    expect_failure(en, m_no_steps, NULL, bad, "'steps' must be an array");
    expect_failure(en, m_rounds_zero, NULL, bad, "'rounds' must be an integer in 1..100");
    expect_failure(en, m_max_length_big, NULL, bad, "'max_length' must be an integer in 1..4000");
    expect_failure(en, NULL, "{\"id\": \"enactment\",", ATT_ERR_BAD_JSON, "line");
    expect_failure(en, NULL, "{\"id\": \"a\", \"id\": \"b\"}", ATT_ERR_BAD_JSON, "duplicate");
    expect_failure(en, NULL, "[1, 2]", bad, "top level must be an object");
    /* a second file with the same script id */
    expect_failure("exercises/zz-copy.json", NULL,
                   "{\"id\":\"enactment\",\"version\":1,\"title\":\"t\",\"summary\":\"s\","
                   "\"rounds\":1,\"swap_each_round\":false,\"steps\":[{\"id\":\"a\",\"actor\":"
                   "\"speaker\",\"title\":\"t\",\"prompt\":\"p\",\"inputs\":[]}]}",
                   bad, "duplicate script id 'enactment'");

    expect_failure("vocab/markers.json", m_marker_kind, NULL, bad, "unknown kind");
    expect_failure("vocab/markers.json", m_marker_missing_detector, NULL, bad,
                   "missing detector marker 'pause_requested'");
    expect_failure("vocab/strategies.json", m_strategy_kind, NULL, bad, "missing 'kind'");
    expect_failure("vocab/needs.json", m_dup_entry, NULL, bad, "duplicate entry id 'to_matter'");
    expect_failure("vocab/reactive.json", m_kind_in_reactive, NULL, bad,
                   "'kind' is only for markers and strategies");
    expect_failure("vocab/reactive.json", m_entry_id_case, NULL, bad, "snake_case");
    expect_failure("vocab/primary.json", m_vocab_id, NULL, bad, "does not match the file name");
    expect_failure("vocab/blame/en.json", m_blame_upper, NULL, bad,
                   "lexicons.absolutes[9]: 'Always': must be lowercase");
    expect_failure("vocab/blame/es.json", m_blame_dup, NULL, bad, "already in the lexicon");
    expect_failure("vocab/blame/fr.json", m_blame_lang, NULL, bad,
                   "'lang' is 'it' but the file is named fr.json");
    expect_failure("vocab/blame/de.json", m_blame_unknown_lexicon, NULL, bad,
                   "unknown lexicon '@nope'");
    expect_failure("vocab/blame/en.json", NULL, "{\"lang\": \"en\",", ATT_ERR_BAD_JSON, "line");
    expect_failure("consent.json", m_consent_role, NULL, bad, "missing 'therapist'");
    expect_failure("consent.json", m_consent_no_receives, NULL, bad,
                   "'receives' must be an object");
    expect_failure("consent.json", m_consent_receives_type, NULL, bad,
                   "receives.observer[20]: not an event type");
    expect_failure("consent.json", m_consent_receives_role, NULL, bad, "missing 'observer'");
    expect_failure("safety.json", m_safety_dup_question, NULL, bad,
                   "duplicate question id 'safe_to_talk'");
    expect_failure("safety.json", m_safety_hold, NULL, bad,
                   "questions[0].hold[2]: not one of the question's options");
    expect_failure("safety.json", m_safety_one_option, NULL, bad, "'options' must be an array");
    expect_failure("safety.json", m_safety_note_length, NULL, bad,
                   "'max_length' must be an integer");
    expect_failure("safety.json", m_safety_member, NULL, bad, "unknown member 'colour'");
    expect_failure("safety.json", NULL, NULL, ATT_ERR_INTERNAL, "cannot read");
    expect_failure(en, m_language, NULL, bad, "'language' must be a language tag");
    expect_failure(en, m_silence_negative, NULL, bad, "'silence_ms' must be an integer in 0..");
    expect_failure(en, m_silence_string, NULL, bad, "'silence_ms' must be an integer in 0..");
    expect_failure("vocab/needs.json", NULL, NULL, ATT_ERR_INTERNAL, "cannot read");

    /* no scripts at all */
    char dir[64];
    if (make_copy(dir, sizeof dir) == 0) {
        for (size_t i = 0; i < sizeof data_files / sizeof data_files[0]; i++) {
            if (strncmp(data_files[i], "exercises/", 10) != 0)
                continue;
            char path[512];
            snprintf(path, sizeof path, "%s/%s", dir, data_files[i]);
            unlink(path);
        }
        att_catalog *cat = NULL;
        att_error err = {0};
        CHECK(att_catalog_load_dir(dir, &cat, &err) == -(int)ATT_ERR_BAD_MESSAGE);
        CHECK(cat == NULL && strstr(err.message, "no exercise scripts") != NULL);
        remove_dir(dir);
    } else {
        CHECK_MSG(0, "cannot make a temp copy");
    }

    /* an untouched copy loads, so the failures above are the mutations' doing */
    if (make_copy(dir, sizeof dir) == 0) {
        att_catalog *cat = NULL;
        att_error err = {0};
        CHECK_MSG(att_catalog_load_dir(dir, &cat, &err) == 0, "%s", err.message);
        CHECK(att_catalog_script_count(cat) == 3);
        att_catalog_free(cat);
        remove_dir(dir);
    }
}

int main(void)
{
    att_catalog *cat = NULL;
    att_error err = {0};
    int rc = att_catalog_load_dir(ATTUNE_PROTOCOL_DIR, &cat, &err);
    CHECK_MSG(rc == 0, "load %s: %s", ATTUNE_PROTOCOL_DIR, err.message);
    if (rc == 0) {
        CHECK_INT(att_catalog_script_count(cat), 3);
        /* scripts are listed in file-name order */
        CHECK_STR(att_catalog_script_at(cat, 0)->id, "demon_dialogue");
        CHECK_STR(att_catalog_script_at(cat, 1)->id, "enactment");
        CHECK_STR(att_catalog_script_at(cat, 2)->id, "rocky_moment");
        CHECK(att_catalog_script_at(cat, 3) == NULL);
        CHECK(att_catalog_script(cat, "nope") == NULL);
        for (size_t i = 0; i < att_catalog_script_count(cat); i++)
            check_script_generic(cat, att_catalog_script_at(cat, i));
        test_enactment(cat);
        test_demon_dialogue(cat);
        test_rocky_moment(cat);
        test_vocab(cat);
        test_consent(cat);
        test_safety(cat);
        test_language_and_silence(cat);
        test_blame(cat);
        att_catalog_free(cat);
    }
    att_catalog_free(NULL);
    test_broken();
    return check_done("catalog");
}
