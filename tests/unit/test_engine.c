/* test_engine.c - the exercise engine: every exercise walked to its end,
 * every step refusing the wrong actor and a wrong step, every control. */
#include "check.h"
#include "room_harness.h"

#include <stdlib.h>
#include <string.h>

static const att_role everyone[] = {ATT_ROLE_PARTNER_A, ATT_ROLE_PARTNER_B, ATT_ROLE_THERAPIST};

/* At the current step: every other role gets not_your_turn, the observer
 * forbidden, the actor with another step id invalid_step and with a broken
 * input invalid_input. Nothing is recorded by any of these. */
static void check_step_refusals(harness *h)
{
    att_role actor = att_room_actor(&h->room);
    int64_t seq = h->room.seq;
    for (size_t i = 0; i < 3; i++) {
        if (everyone[i] == actor)
            continue;
        CHECK_INT(harness_turn_input(h, everyone[i], harness_valid_input(h, 0)),
                  ATT_ERR_NOT_YOUR_TURN);
    }
    CHECK_INT(harness_turn_input(h, ATT_ROLE_OBSERVER, harness_valid_input(h, 0)),
              ATT_ERR_FORBIDDEN);
    CHECK_INT(harness_cmd(h, actor, "{\"type\":\"turn\",\"step\":\"no_such_step\",\"input\":{}}"),
              ATT_ERR_INVALID_STEP);
    json_t *bad = harness_valid_input(h, 0);
    json_object_set_new(bad, "not_an_input", json_string("x"));
    CHECK_INT(harness_turn_input(h, actor, bad), ATT_ERR_INVALID_INPUT);
    CHECK_INT(h->room.seq, seq);
}

static void walk_exercise(const char *id)
{
    harness h;
    harness_init(&h, id);
    /* Before consent turns are refused. */
    harness_join(&h, ATT_ROLE_PARTNER_A);
    harness_join(&h, ATT_ROLE_PARTNER_B);
    harness_join(&h, ATT_ROLE_THERAPIST);
    CHECK_INT(harness_turn_input(&h, ATT_ROLE_PARTNER_A, harness_valid_input(&h, 0)),
              ATT_ERR_CONSENT_REQUIRED);
    CHECK_INT(harness_cmd(&h, ATT_ROLE_THERAPIST, "{\"type\":\"consent\",\"accept\":true}"),
              ATT_ERR_FORBIDDEN);
    CHECK_INT(harness_cmd(&h, ATT_ROLE_PARTNER_A, "{\"type\":\"consent\",\"accept\":true}"), 0);
    CHECK_INT(h.room.status, ATT_STATUS_WAITING_CONSENT);
    CHECK_INT(harness_cmd(&h, ATT_ROLE_PARTNER_A, "{\"type\":\"consent\",\"accept\":true}"), 0);
    CHECK_INT(h.last_n, 0); /* consenting twice records nothing */
    CHECK_INT(harness_cmd(&h, ATT_ROLE_PARTNER_B, "{\"type\":\"consent\",\"accept\":true}"), 0);
    /* then the safety check-in; turns wait for it */
    CHECK_INT(h.room.status, ATT_STATUS_CHECKING_IN);
    CHECK_INT(att_room_actor(&h.room), ATT_ROLE_NONE);
    CHECK_INT(harness_turn_input(&h, ATT_ROLE_PARTNER_A, harness_valid_input(&h, 0)),
              ATT_ERR_NOT_YOUR_TURN);
    CHECK_INT(harness_checkin(&h, ATT_ROLE_PARTNER_A, "yes"), 0);
    CHECK_INT(h.room.status, ATT_STATUS_CHECKING_IN);
    CHECK_INT(harness_checkin(&h, ATT_ROLE_PARTNER_B, "yes"), 0);
    CHECK_INT(h.room.status, ATT_STATUS_ACTIVE);

    const att_script *s = h.room.script;
    int turns = 0, speakers_seen[2] = {0, 0};
    while (h.room.status == ATT_STATUS_ACTIVE && turns < 1000) {
        check_step_refusals(&h);
        speakers_seen[h.room.speaker]++;
        int rc = harness_turn(&h, 0);
        CHECK_MSG(rc == 0, "%s step %s: %s", id, s->steps[h.room.step].id, h.last_err.message);
        if (rc)
            break;
        turns++;
    }
    CHECK_INT(h.room.status, ATT_STATUS_ENDED);
    CHECK_INT(h.room.end_reason, ATT_END_COMPLETED);
    CHECK_INT(turns, (int)s->n_steps * s->rounds);
    if (s->rounds > 1 && s->swap_each_round)
        CHECK(speakers_seen[0] > 0 && speakers_seen[1] > 0);
    /* After the end: turns and controls are refused, notes are not. */
    CHECK_INT(harness_cmd(&h, ATT_ROLE_THERAPIST, "{\"type\":\"control\",\"action\":\"advance\"}"),
              ATT_ERR_SESSION_ENDED);
    CHECK_INT(harness_cmd(&h, ATT_ROLE_PARTNER_A, "{\"type\":\"pause_request\"}"),
              ATT_ERR_SESSION_ENDED);
    CHECK_INT(harness_cmd(&h, ATT_ROLE_THERAPIST, "{\"type\":\"note\",\"text\":\"went well\"}"), 0);
    json_t *state = harness_state(&h.room, ATT_ROLE_PARTNER_A, 1);
    CHECK(json_is_null(json_object_get(state, "step")));
    CHECK_STR(json_string_value(json_object_get(state, "status")), "ended");
    json_decref(state);
    char live[65], replayed[65];
    att_error err;
    CHECK_INT(att_state_hash(&h.room, live, &err), 0);
    CHECK_INT(harness_refold(&h, replayed), 0);
    CHECK_STR(live, replayed);
    harness_free(&h);
}

static void test_all_exercises_walk_to_the_end(void)
{
    const att_catalog *cat = harness_catalog();
    CHECK(att_catalog_script_count(cat) >= 3);
    CHECK(att_catalog_script(cat, "enactment") != NULL);
    CHECK(att_catalog_script(cat, "demon_dialogue") != NULL);
    CHECK(att_catalog_script(cat, "rocky_moment") != NULL);
    for (size_t i = 0; i < att_catalog_script_count(cat); i++)
        walk_exercise(att_catalog_script_at(cat, i)->id);
}

static int step_index(harness *h, const char *id)
{
    for (size_t i = 0; i < h->room.script->n_steps; i++)
        if (strcmp(h->room.script->steps[i].id, id) == 0)
            return (int)i;
    return -1;
}

static void test_enactment_roles_and_reflection_loop(void)
{
    harness h;
    harness_init(&h, "enactment");
    harness_start(&h);
    CHECK_INT(h.room.speaker, ATT_ROLE_PARTNER_A);
    CHECK_INT(att_room_actor(&h.room), ATT_ROLE_PARTNER_A);
    while (h.room.step != step_index(&h, "reflect"))
        CHECK_INT(harness_turn(&h, 0), 0);
    CHECK_INT(att_room_actor(&h.room), ATT_ROLE_PARTNER_B); /* the listener reflects */
    CHECK_INT(harness_turn(&h, 0), 0);
    CHECK_INT(h.room.step, step_index(&h, "check"));
    CHECK_INT(harness_turn(&h, 1), 0); /* "not quite": back to the reflection */
    CHECK_INT(h.room.step, step_index(&h, "reflect"));
    CHECK_INT(h.room.rejections_in_row, 1);
    CHECK_INT(harness_turn(&h, 0), 0);
    CHECK_INT(harness_turn(&h, 0), 0); /* "yes": on to the response */
    CHECK_INT(h.room.step, step_index(&h, "respond"));
    CHECK_INT(h.room.rejections_in_row, 0);
    CHECK_INT(harness_turn(&h, 0), 0);
    CHECK_INT(harness_turn(&h, 0), 0); /* connection rating ends round 1 */
    CHECK_INT(h.room.round, 1);
    CHECK_INT(h.room.step, 0);
    CHECK_INT(h.room.speaker, ATT_ROLE_PARTNER_B); /* swapped */
    CHECK_INT(att_room_actor(&h.room), ATT_ROLE_PARTNER_B);
    /* The state tells a client everything it needs to render the step. */
    json_t *st = harness_state(&h.room, ATT_ROLE_PARTNER_A, 1);
    json_t *step = json_object_get(st, "step");
    CHECK_STR(json_string_value(json_object_get(step, "actor")), "partner_b");
    CHECK_STR(json_string_value(json_object_get(step, "as")), "speaker");
    CHECK(json_array_size(json_object_get(step, "inputs")) >= 1);
    json_t *in0 = json_array_get(json_object_get(step, "inputs"), 0);
    CHECK(json_is_string(json_object_get(in0, "name")));
    CHECK(json_is_string(json_object_get(in0, "kind")));
    CHECK(json_is_boolean(json_object_get(in0, "required")));
    CHECK_STR(json_string_value(json_object_get(st, "you")), "partner_a");
    json_decref(st);
    harness_free(&h);
}

static void test_input_validation(void)
{
    harness h;
    harness_init(&h, "enactment");
    harness_start(&h);
    CHECK_INT(harness_turn(&h, 0), 0); /* what happened */
    CHECK_INT(h.room.step, step_index(&h, "reactive"));
    const char *step = "{\"type\":\"turn\",\"step\":\"reactive\",\"input\":";
    char buf[512];
    const struct {
        const char *input;
        int code;
    } cases[] = {
        {"{}", ATT_ERR_INVALID_INPUT},
        {"{\"reactive\":\"angry\"}", ATT_ERR_INVALID_INPUT},
        {"{\"reactive\":{}}", ATT_ERR_INVALID_INPUT},
        {"{\"reactive\":{\"id\":\"not_in_vocab\"}}", ATT_ERR_INVALID_INPUT},
        {"{\"reactive\":{\"id\":\"angry\",\"extra\":1}}", ATT_ERR_INVALID_INPUT},
        {"{\"reactive\":{\"text\":\"\"}}", ATT_ERR_INVALID_INPUT},
        {"{\"reactive\":{\"text\":\"prickly, like a cactus\"}}", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(buf, sizeof buf, "%s%s}", step, cases[i].input);
        int rc = harness_cmd(&h, ATT_ROLE_PARTNER_A, buf);
        CHECK_MSG(rc == cases[i].code, "input %s: got %d (%s)", cases[i].input, rc,
                  h.last_err.message);
    }
    /* primary: a rating out of range, then a vocabulary id. */
    CHECK_INT(h.room.step, step_index(&h, "primary"));
    const att_vocab *primary = att_catalog_vocab(h.cat, "primary");
    snprintf(buf, sizeof buf,
             "{\"type\":\"turn\",\"step\":\"primary\",\"input\":{\"primary\":{\"id\":\"%s\"},"
             "\"intensity\":11}}",
             primary->entries[0].id);
    CHECK_INT(harness_cmd(&h, ATT_ROLE_PARTNER_A, buf), ATT_ERR_INVALID_INPUT);
    snprintf(buf, sizeof buf,
             "{\"type\":\"turn\",\"step\":\"primary\",\"input\":{\"primary\":{\"id\":\"%s\"},"
             "\"intensity\":\"8\"}}",
             primary->entries[0].id);
    CHECK_INT(harness_cmd(&h, ATT_ROLE_PARTNER_A, buf), ATT_ERR_INVALID_INPUT);
    snprintf(buf, sizeof buf,
             "{\"type\":\"turn\",\"step\":\"primary\",\"input\":{\"primary\":{\"id\":\"%s\"},"
             "\"intensity\":8}}",
             primary->entries[0].id);
    CHECK_INT(harness_cmd(&h, ATT_ROLE_PARTNER_A, buf), 0);
    harness_free(&h);
}

static int control(harness *h, att_role role, const char *action)
{
    char buf[128];
    snprintf(buf, sizeof buf, "{\"type\":\"control\",\"action\":\"%s\"}", action);
    return harness_cmd(h, role, buf);
}

static void test_controls(void)
{
    harness h;
    harness_init(&h, "enactment");
    harness_join(&h, ATT_ROLE_THERAPIST);
    /* Before consent only pause, resume and end. */
    CHECK_INT(control(&h, ATT_ROLE_THERAPIST, "advance"), ATT_ERR_CONSENT_REQUIRED);
    CHECK_INT(control(&h, ATT_ROLE_THERAPIST, "swap"), ATT_ERR_CONSENT_REQUIRED);
    CHECK_INT(control(&h, ATT_ROLE_THERAPIST, "pause"), 0);
    CHECK_INT(h.room.status, ATT_STATUS_PAUSED);
    CHECK_INT(control(&h, ATT_ROLE_THERAPIST, "resume"), 0);
    CHECK_INT(h.room.status, ATT_STATUS_WAITING_CONSENT);
    harness_start(&h);
    /* Partners and observers may not steer. */
    CHECK_INT(control(&h, ATT_ROLE_PARTNER_A, "advance"), ATT_ERR_FORBIDDEN);
    CHECK_INT(control(&h, ATT_ROLE_OBSERVER, "advance"), ATT_ERR_FORBIDDEN);
    CHECK_INT(harness_cmd(&h, ATT_ROLE_THERAPIST, "{\"type\":\"control\",\"action\":\"jump\"}"),
              ATT_ERR_BAD_MESSAGE);
    /* back at the very first step */
    CHECK_INT(control(&h, ATT_ROLE_THERAPIST, "back"), ATT_ERR_INVALID_STEP);
    /* advance skips a step without input */
    CHECK_INT(control(&h, ATT_ROLE_THERAPIST, "advance"), 0);
    CHECK_INT(h.room.step, 1);
    CHECK_INT(control(&h, ATT_ROLE_THERAPIST, "back"), 0);
    CHECK_INT(h.room.step, 0);
    /* swap */
    CHECK_INT(control(&h, ATT_ROLE_THERAPIST, "swap"), 0);
    CHECK_INT(h.room.speaker, ATT_ROLE_PARTNER_B);
    CHECK_INT(att_room_actor(&h.room), ATT_ROLE_PARTNER_B);
    CHECK_INT(control(&h, ATT_ROLE_THERAPIST, "swap"), 0);
    CHECK_INT(h.room.speaker, ATT_ROLE_PARTNER_A);
    /* pause refuses turns; resume twice is an error */
    CHECK_INT(control(&h, ATT_ROLE_THERAPIST, "pause"), 0);
    CHECK_INT(control(&h, ATT_ROLE_THERAPIST, "pause"), ATT_ERR_INVALID_STEP);
    CHECK_INT(harness_turn_input(&h, ATT_ROLE_PARTNER_A, harness_valid_input(&h, 0)),
              ATT_ERR_SESSION_PAUSED);
    CHECK_INT(control(&h, ATT_ROLE_THERAPIST, "resume"), 0);
    CHECK_INT(control(&h, ATT_ROLE_THERAPIST, "resume"), ATT_ERR_INVALID_STEP);
    CHECK_INT(h.room.status, ATT_STATUS_ACTIVE);
    /* advance across the round boundary swaps; back across it swaps back */
    int n = (int)h.room.script->n_steps;
    for (int i = 0; i < n; i++)
        CHECK_INT(control(&h, ATT_ROLE_THERAPIST, "advance"), 0);
    CHECK_INT(h.room.round, 1);
    CHECK_INT(h.room.step, 0);
    CHECK_INT(h.room.speaker, ATT_ROLE_PARTNER_B);
    CHECK_INT(control(&h, ATT_ROLE_THERAPIST, "back"), 0);
    CHECK_INT(h.room.round, 0);
    CHECK_INT(h.room.step, n - 1);
    CHECK_INT(h.room.speaker, ATT_ROLE_PARTNER_A);
    /* end */
    CHECK_INT(control(&h, ATT_ROLE_THERAPIST, "end"), 0);
    CHECK_INT(h.room.status, ATT_STATUS_ENDED);
    CHECK_INT(h.room.end_reason, ATT_END_THERAPIST);
    CHECK_INT(control(&h, ATT_ROLE_THERAPIST, "resume"), ATT_ERR_SESSION_ENDED);
    char live[65], replayed[65];
    att_error err;
    att_state_hash(&h.room, live, &err);
    CHECK_INT(harness_refold(&h, replayed), 0);
    CHECK_STR(live, replayed);
    harness_free(&h);
}

static void test_advance_past_the_end_completes(void)
{
    harness h;
    harness_init(&h, "demon_dialogue");
    harness_start(&h);
    for (size_t i = 0; i < h.room.script->n_steps * (size_t)h.room.script->rounds; i++)
        CHECK_INT(control(&h, ATT_ROLE_THERAPIST, "advance"), 0);
    CHECK_INT(h.room.status, ATT_STATUS_ENDED);
    CHECK_INT(h.room.end_reason, ATT_END_COMPLETED);
    harness_free(&h);
}

static void test_permissions(void)
{
    harness h;
    harness_init(&h, "enactment");
    harness_start(&h);
    CHECK_INT(harness_cmd(&h, ATT_ROLE_PARTNER_A, "{\"type\":\"note\",\"text\":\"x\"}"),
              ATT_ERR_FORBIDDEN);
    CHECK_INT(harness_cmd(&h, ATT_ROLE_THERAPIST, "{\"type\":\"pause_request\"}"),
              ATT_ERR_FORBIDDEN);
    CHECK_INT(harness_cmd(&h, ATT_ROLE_OBSERVER, "{\"type\":\"ping\"}"), 0);
    CHECK_INT(harness_cmd(&h, ATT_ROLE_OBSERVER, "{\"type\":\"note\",\"text\":\"x\"}"),
              ATT_ERR_FORBIDDEN);
    CHECK_INT(harness_cmd(&h, ATT_ROLE_PARTNER_B,
                          "{\"type\":\"rupture_mark\",\"kind\":\"withdrawal\",\"marker\":"
                          "\"minimal_response\",\"who\":\"partner_a\",\"with\":\"partner_b\"}"),
              ATT_ERR_FORBIDDEN);
    CHECK_INT(harness_cmd(&h, ATT_ROLE_PARTNER_A, "{\"type\":\"hello\",\"token\":\"abc\"}"),
              ATT_ERR_ALREADY_AUTHENTICATED);
    harness_free(&h);
}

/* --- protocol 2: audiences of the last command's events ------------------ */

#define AUD(r) (1u << (r))
#define STAFF (AUD(ATT_ROLE_THERAPIST) | AUD(ATT_ROLE_OBSERVER))
#define ALL (STAFF | AUD(ATT_ROLE_PARTNER_A) | AUD(ATT_ROLE_PARTNER_B))

static unsigned audience_of(harness *h, json_t *obj)
{
    att_event ev;
    att_error err = {0};
    if (!obj || att_event_from_json(obj, h->room.script, &ev, &err) != 0)
        return 0;
    return att_event_audience(&ev);
}

static const char *type_of(json_t *ev)
{
    return json_string_value(json_object_get(ev, "type"));
}

static void check_refold(harness *h)
{
    char live[65], replayed[65];
    att_error err;
    CHECK_INT(att_state_hash(&h->room, live, &err), 0);
    CHECK_INT(harness_refold(h, replayed), 0);
    CHECK_STR(live, replayed);
}

/* The JSON state text of `viewer`, without `you`, `seq` and the keys given. */
static char *state_without(harness *h, att_role viewer, const char *drop)
{
    json_t *st = harness_state(&h->room, viewer, 1);
    json_object_del(st, "you");
    if (drop)
        json_object_del(st, drop);
    char *text = json_dumps(st, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(st);
    return text;
}

/* --- the safety check-in -------------------------------------------------- */

static void test_checkin_clear(void)
{
    harness h;
    harness_init(&h, "enactment");
    json_t *created = json_object_get(json_array_get(h.log, 0), "event");
    CHECK(json_is_true(json_object_get(created, "checkin")));
    CHECK_STR(json_string_value(json_object_get(created, "language")), "en");
    CHECK_INT(h.room.checkin, 1);
    harness_join(&h, ATT_ROLE_PARTNER_A);
    harness_join(&h, ATT_ROLE_PARTNER_B);
    /* not before both consent */
    CHECK_INT(harness_checkin(&h, ATT_ROLE_PARTNER_A, "yes"), ATT_ERR_CONSENT_REQUIRED);
    CHECK_INT(harness_cmd(&h, ATT_ROLE_PARTNER_A, "{\"type\":\"consent\",\"accept\":true}"), 0);
    CHECK_INT(harness_checkin(&h, ATT_ROLE_PARTNER_A, "yes"), ATT_ERR_CONSENT_REQUIRED);
    CHECK_INT(harness_cmd(&h, ATT_ROLE_PARTNER_B, "{\"type\":\"consent\",\"accept\":true}"), 0);
    CHECK_INT(h.room.status, ATT_STATUS_CHECKING_IN);
    /* only partners answer */
    CHECK_INT(harness_checkin(&h, ATT_ROLE_THERAPIST, "yes"), ATT_ERR_FORBIDDEN);
    CHECK_INT(harness_checkin(&h, ATT_ROLE_OBSERVER, "yes"), ATT_ERR_FORBIDDEN);
    /* answers must be every question of safety.json, with one of its options */
    static const char *const bad[] = {
        "{\"safe_to_talk\":\"maybe\"}",
        "{\"safe_to_talk\":\"YES\"}",
        "{\"is_it_safe\":\"yes\"}",
        "{\"safe_to_talk\":\"yes\",\"extra\":\"yes\"}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK_MSG(harness_cmdf(&h, ATT_ROLE_PARTNER_A, "{\"type\":\"checkin\",\"answers\":%s}",
                               bad[i]) == ATT_ERR_INVALID_INPUT,
                  "%s", bad[i]);
    char longnote[2100];
    memset(longnote, 'n', 2001);
    longnote[2001] = '\0';
    CHECK_INT(harness_cmdf(&h, ATT_ROLE_PARTNER_A,
                           "{\"type\":\"checkin\",\"answers\":{\"safe_to_talk\":\"yes\"},"
                           "\"note\":\"%s\"}",
                           longnote),
              ATT_ERR_INVALID_INPUT);
    longnote[2000] = '\0';
    CHECK_INT(h.room.seq, json_array_size(h.log));
    CHECK_INT(harness_cmdf(&h, ATT_ROLE_PARTNER_A,
                           "{\"type\":\"checkin\",\"answers\":{\"safe_to_talk\":\"yes\"},"
                           "\"note\":\"%s\"}",
                           longnote),
              0);
    CHECK_INT(h.last_n, 1);
    json_t *ev = harness_last_event(&h, "checkin_answered");
    CHECK_STR(json_string_value(json_object_get(json_object_get(ev, "answers"), "safe_to_talk")),
              "yes");
    CHECK_INT(json_string_length(json_object_get(ev, "note")), 2000);
    CHECK(json_is_false(json_object_get(ev, "hold")));
    CHECK_INT(audience_of(&h, ev), AUD(ATT_ROLE_PARTNER_A) | AUD(ATT_ROLE_THERAPIST));
    CHECK_INT(h.room.status, ATT_STATUS_CHECKING_IN);
    /* once */
    CHECK_INT(harness_checkin(&h, ATT_ROLE_PARTNER_A, "yes"), ATT_ERR_INVALID_STEP);
    CHECK_INT(harness_checkin(&h, ATT_ROLE_PARTNER_A, "no"), ATT_ERR_INVALID_STEP);
    /* steering waits; pause and end do not */
    static const char *const steering[] = {"advance", "back", "swap"};
    for (int i = 0; i < 3; i++)
        CHECK_MSG(harness_cmdf(&h, ATT_ROLE_THERAPIST, "{\"type\":\"control\",\"action\":\"%s\"}",
                               steering[i]) == ATT_ERR_INVALID_STEP,
                  "%s", steering[i]);
    /* both clear: checkin_completed by the system, the session begins */
    CHECK_INT(harness_checkin(&h, ATT_ROLE_PARTNER_B, "yes"), 0);
    CHECK_INT(h.last_n, 2);
    json_t *done = json_array_get(h.last_events, 1);
    CHECK_STR(type_of(done), "checkin_completed");
    CHECK_STR(json_string_value(json_object_get(done, "by")), "system");
    CHECK_INT(audience_of(&h, done), ALL);
    CHECK_INT(audience_of(&h, json_array_get(h.last_events, 0)),
              AUD(ATT_ROLE_PARTNER_B) | AUD(ATT_ROLE_THERAPIST));
    CHECK_INT(h.room.status, ATT_STATUS_ACTIVE);
    CHECK_INT(h.room.step_started_at, h.now);
    CHECK_INT(att_room_actor(&h.room), ATT_ROLE_PARTNER_A);
    CHECK_INT(harness_checkin(&h, ATT_ROLE_PARTNER_B, "yes"), ATT_ERR_INVALID_STEP);
    CHECK_INT(harness_cmd(&h, ATT_ROLE_THERAPIST, "{\"type\":\"control\",\"action\":\"proceed\"}"),
              ATT_ERR_INVALID_STEP);
    /* the states: the therapist sees who answered and what held, at which seq */
    json_t *st = harness_state(&h.room, ATT_ROLE_THERAPIST, 1);
    json_t *ci = json_object_get(st, "checkin");
    CHECK(json_is_false(json_object_get(ci, "held")));
    json_t *pa = json_object_get(ci, "partner_a");
    CHECK(json_is_true(json_object_get(pa, "answered")));
    CHECK(json_is_false(json_object_get(pa, "hold")));
    int64_t seq_a = json_integer_value(json_object_get(pa, "seq"));
    json_t *logged = json_object_get(json_array_get(h.log, (size_t)seq_a - 1), "event");
    CHECK_STR(type_of(logged), "checkin_answered");
    CHECK_STR(json_string_value(json_object_get(logged, "by")), "partner_a");
    json_decref(st);
    for (int p = 0; p < 2; p++) {
        st = harness_state(&h.room, (att_role)p, 1);
        ci = json_object_get(st, "checkin");
        CHECK_INT(json_object_size(ci), 1);
        CHECK(json_is_true(json_object_get(ci, "answered")));
        json_decref(st);
    }
    st = harness_state(&h.room, ATT_ROLE_OBSERVER, 1);
    CHECK_INT(json_object_size(json_object_get(st, "checkin")), 0);
    json_decref(st);
    check_refold(&h);
    harness_free(&h);
}

/* A hold: the other partner cannot tell it from waiting for them. */
static void test_checkin_held(void)
{
    static const char *const holding[] = {"not_sure", "no"};
    for (int k = 0; k < 2; k++) {
        harness held, clear;
        harness_init(&held, "enactment");
        harness_init(&clear, "enactment");
        harness_start_consented(&held);
        harness_start_consented(&clear);
        CHECK_INT(harness_checkin(&held, ATT_ROLE_PARTNER_A, holding[k]), 0);
        CHECK_INT(harness_checkin(&clear, ATT_ROLE_PARTNER_A, "yes"), 0);
        CHECK(json_is_true(json_object_get(harness_last_event(&held, "checkin_answered"), "hold")));
        /* both partners' (and the observer's) states are byte for byte those of a clear answer */
        for (int r = 0; r < 4; r++) {
            if (r == ATT_ROLE_THERAPIST)
                continue;
            char *a = harness_state_text(&held, (att_role)r);
            char *b = harness_state_text(&clear, (att_role)r);
            CHECK_MSG(strcmp(a, b) == 0, "%s: %s\n vs %s", att_role_name((att_role)r), a, b);
            free(a);
            free(b);
        }
        CHECK_INT(harness_checkin(&held, ATT_ROLE_PARTNER_B, "yes"), 0);
        CHECK_INT(held.last_n, 1); /* no checkin_completed */
        CHECK_INT(held.room.status, ATT_STATUS_CHECKING_IN);
        CHECK_INT(att_room_actor(&held.room), ATT_ROLE_NONE);
        CHECK_INT(harness_turn_input(&held, ATT_ROLE_PARTNER_A, harness_valid_input(&held, 0)),
                  ATT_ERR_NOT_YOUR_TURN);
        /* partners' states are identical apart from `you` (both answered) */
        char *sa = state_without(&held, ATT_ROLE_PARTNER_A, NULL);
        char *sb = state_without(&held, ATT_ROLE_PARTNER_B, NULL);
        CHECK_MSG(strcmp(sa, sb) == 0, "%s\n vs %s", sa, sb);
        CHECK(strstr(sa, "\"checkin\":{\"answered\":true}") != NULL);
        CHECK(strstr(sa, "held") == NULL && strstr(sa, "hold") == NULL);
        CHECK(strstr(sa, "not_sure") == NULL);
        free(sa);
        free(sb);
        json_t *st = harness_state(&held.room, ATT_ROLE_THERAPIST, 1);
        json_t *ci = json_object_get(st, "checkin");
        CHECK(json_is_true(json_object_get(ci, "held")));
        CHECK(json_is_true(json_object_get(json_object_get(ci, "partner_a"), "hold")));
        CHECK(json_is_false(json_object_get(json_object_get(ci, "partner_b"), "hold")));
        json_decref(st);
        /* pause and resume keep the hold */
        CHECK_INT(
            harness_cmd(&held, ATT_ROLE_THERAPIST, "{\"type\":\"control\",\"action\":\"pause\"}"),
            0);
        CHECK_INT(
            harness_cmd(&held, ATT_ROLE_THERAPIST, "{\"type\":\"control\",\"action\":\"proceed\"}"),
            ATT_ERR_INVALID_STEP);
        CHECK_INT(
            harness_cmd(&held, ATT_ROLE_THERAPIST, "{\"type\":\"control\",\"action\":\"resume\"}"),
            0);
        CHECK_INT(held.room.status, ATT_STATUS_CHECKING_IN);
        /* the therapist goes on */
        CHECK_INT(
            harness_cmd(&held, ATT_ROLE_THERAPIST, "{\"type\":\"control\",\"action\":\"proceed\"}"),
            0);
        CHECK_INT(held.last_n, 1);
        CHECK_STR(
            json_string_value(json_object_get(harness_last_event(&held, "control"), "action")),
            "proceed");
        CHECK_INT(audience_of(&held, harness_last_event(&held, "control")), ALL);
        CHECK_INT(held.room.status, ATT_STATUS_ACTIVE);
        CHECK_INT(held.room.step_started_at, held.now);
        CHECK_INT(att_room_actor(&held.room), ATT_ROLE_PARTNER_A);
        st = harness_state(&held.room, ATT_ROLE_THERAPIST, 1);
        CHECK(json_is_false(json_object_get(json_object_get(st, "checkin"), "held")));
        json_decref(st);
        CHECK_INT(
            harness_cmd(&held, ATT_ROLE_THERAPIST, "{\"type\":\"control\",\"action\":\"proceed\"}"),
            ATT_ERR_INVALID_STEP);
        CHECK_INT(harness_turn(&held, 0), 0);
        check_refold(&held);
        harness_free(&held);
        harness_free(&clear);
    }

    /* proceed before both answered; the late answer is then refused */
    harness h;
    harness_init(&h, "enactment");
    harness_start_consented(&h);
    CHECK_INT(harness_cmd(&h, ATT_ROLE_THERAPIST, "{\"type\":\"control\",\"action\":\"proceed\"}"),
              0);
    CHECK_INT(h.room.status, ATT_STATUS_ACTIVE);
    CHECK_INT(harness_checkin(&h, ATT_ROLE_PARTNER_A, "yes"), ATT_ERR_INVALID_STEP);
    /* and proceed elsewhere: active, paused (invalid_step), ended */
    CHECK_INT(harness_cmd(&h, ATT_ROLE_THERAPIST, "{\"type\":\"control\",\"action\":\"pause\"}"),
              0);
    CHECK_INT(harness_cmd(&h, ATT_ROLE_THERAPIST, "{\"type\":\"control\",\"action\":\"proceed\"}"),
              ATT_ERR_INVALID_STEP);
    CHECK_INT(harness_cmd(&h, ATT_ROLE_THERAPIST, "{\"type\":\"control\",\"action\":\"end\"}"), 0);
    CHECK_INT(harness_cmd(&h, ATT_ROLE_THERAPIST, "{\"type\":\"control\",\"action\":\"proceed\"}"),
              ATT_ERR_SESSION_ENDED);
    check_refold(&h);
    harness_free(&h);

    /* the therapist may end the joint session instead */
    harness_init(&h, "enactment");
    harness_start_consented(&h);
    CHECK_INT(harness_checkin(&h, ATT_ROLE_PARTNER_B, "no"), 0);
    CHECK_INT(harness_checkin(&h, ATT_ROLE_PARTNER_A, "yes"), 0);
    CHECK_INT(h.room.status, ATT_STATUS_CHECKING_IN);
    CHECK_INT(harness_cmd(&h, ATT_ROLE_THERAPIST, "{\"type\":\"control\",\"action\":\"end\"}"), 0);
    CHECK_INT(h.room.status, ATT_STATUS_ENDED);
    CHECK_INT(h.room.end_reason, ATT_END_THERAPIST);
    CHECK_INT(harness_checkin(&h, ATT_ROLE_PARTNER_A, "yes"), ATT_ERR_SESSION_ENDED);
    harness_free(&h);

    /* before consent proceed is refused too (consent first) */
    harness_init(&h, "enactment");
    CHECK_INT(harness_cmd(&h, ATT_ROLE_THERAPIST, "{\"type\":\"control\",\"action\":\"proceed\"}"),
              ATT_ERR_CONSENT_REQUIRED);
    harness_free(&h);
}

/* --- consent ---------------------------------------------------------------- */

/* Before both partners consent: the private line, consent and typing only;
 * nothing a partner writes enters the shared record. */
static void test_before_consent(void)
{
    harness h;
    harness_init(&h, "enactment");
    harness_join(&h, ATT_ROLE_PARTNER_A);
    harness_join(&h, ATT_ROLE_PARTNER_B);
    harness_join(&h, ATT_ROLE_THERAPIST);
    static const char *const refused[] = {
        "{\"type\":\"repair_attempt\",\"text\":\"sorry\"}",
        "{\"type\":\"pause_request\",\"note\":\"a long note\"}",
        "{\"type\":\"pause_request\"}",
        "{\"type\":\"repair_accept\",\"attempt_id\":1}",
        "{\"type\":\"repair_reply\",\"attempt_id\":1,\"reply\":\"need_a_moment\"}",
        "{\"type\":\"checkin\",\"answers\":{\"safe_to_talk\":\"yes\"}}",
    };
    for (int round = 0; round < 2; round++) {
        /* round 1: A has consented, B not yet; A is still held */
        int64_t seq = h.room.seq;
        for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
            for (int p = 0; p < 2; p++)
                CHECK_MSG(harness_cmd(&h, (att_role)p, refused[i]) == ATT_ERR_CONSENT_REQUIRED,
                          "round %d %s: %s", round, refused[i], h.last_err.message);
        CHECK_INT(harness_turn_input(&h, ATT_ROLE_PARTNER_A, harness_valid_input(&h, 0)),
                  ATT_ERR_CONSENT_REQUIRED);
        CHECK_INT(harness_cmd(&h, ATT_ROLE_PARTNER_A, "{\"type\":\"typing\"}"), 0);
        CHECK_INT(h.last_n, 0);
        CHECK_INT(h.room.seq, seq);
        /* the private line is open */
        CHECK_INT(harness_cmd(&h, ATT_ROLE_PARTNER_B,
                              "{\"type\":\"private_message\",\"text\":\"can we talk first\"}"),
                  0);
        CHECK_INT(h.last_n, 1);
        CHECK_INT(harness_cmd(&h, ATT_ROLE_PARTNER_A, "{\"type\":\"ask_therapist\"}"), 0);
        CHECK_INT(h.last_n, 1);
        if (round == 0)
            CHECK_INT(harness_cmd(&h, ATT_ROLE_PARTNER_A, "{\"type\":\"consent\",\"accept\":true}"),
                      0);
    }
    /* the therapist's commands stay forbidden to a partner */
    CHECK_INT(harness_cmd(&h, ATT_ROLE_PARTNER_A, "{\"type\":\"note\",\"text\":\"x\"}"),
              ATT_ERR_FORBIDDEN);
    CHECK_INT(harness_cmd(&h, ATT_ROLE_PARTNER_B, "{\"type\":\"control\",\"action\":\"end\"}"),
              ATT_ERR_FORBIDDEN);
    /* the therapist may still pause, and partners are still held */
    CHECK_INT(harness_cmd(&h, ATT_ROLE_THERAPIST, "{\"type\":\"control\",\"action\":\"pause\"}"),
              0);
    CHECK_INT(harness_cmd(&h, ATT_ROLE_PARTNER_A, refused[0]), ATT_ERR_CONSENT_REQUIRED);
    CHECK_INT(harness_cmd(&h, ATT_ROLE_THERAPIST, "{\"type\":\"control\",\"action\":\"resume\"}"),
              0);
    CHECK_INT(harness_cmd(&h, ATT_ROLE_PARTNER_B, "{\"type\":\"consent\",\"accept\":true}"), 0);
    /* both consented: a repair attempt is a repair attempt */
    CHECK_INT(harness_cmd(&h, ATT_ROLE_PARTNER_A, refused[0]), 0);
    CHECK_INT(harness_cmd(&h, ATT_ROLE_PARTNER_B, refused[1]), 0);
    check_refold(&h);
    harness_free(&h);
}

/* The staff-only `reconnected`: its JSON form, what decodes, and that the
 * fold changes nothing but the staff's numbering. */
static void test_reconnected_event(void)
{
    harness h;
    harness_init(&h, "enactment");
    harness_join(&h, ATT_ROLE_PARTNER_A);
    att_room before = h.room;
    CHECK_INT(harness_reconnected(&h, ATT_ROLE_PARTNER_A, 3, 4200), 0);
    json_t *ev = harness_last_event(&h, "reconnected");
    CHECK(ev != NULL);
    CHECK_STR(json_string_value(json_object_get(ev, "by")), "partner_a");
    CHECK_INT(json_integer_value(json_object_get(ev, "times")), 3);
    CHECK_INT(json_integer_value(json_object_get(ev, "gap_ms")), 4200);
    CHECK_INT(audience_of(&h, ev), AUD(ATT_ROLE_THERAPIST) | AUD(ATT_ROLE_OBSERVER));
    CHECK_INT(h.room.seq, before.seq + 1);
    CHECK_INT(h.room.aud_seq[ATT_ROLE_PARTNER_A], before.aud_seq[ATT_ROLE_PARTNER_A]);
    CHECK_INT(h.room.aud_seq[ATT_ROLE_PARTNER_B], before.aud_seq[ATT_ROLE_PARTNER_B]);
    CHECK_INT(h.room.aud_seq[ATT_ROLE_OBSERVER], before.aud_seq[ATT_ROLE_OBSERVER] + 1);
    CHECK_INT(h.room.present[ATT_ROLE_PARTNER_A], 1);
    CHECK_INT(harness_reconnected(&h, ATT_ROLE_OBSERVER, 1, 0), 0);
    /* no such event for the system, for no drop, or a negative gap */
    att_event out[ATT_MAX_EVENTS_PER_COMMAND];
    int n = 9;
    CHECK_INT(att_engine_decide_reconnected(&h.room, ATT_ROLE_SYSTEM, h.now, 1, 0, out, &n), -1);
    CHECK_INT(n, 0);
    CHECK_INT(att_engine_decide_reconnected(&h.room, ATT_ROLE_PARTNER_B, h.now, 0, 0, out, &n), -1);
    CHECK_INT(att_engine_decide_reconnected(&h.room, ATT_ROLE_PARTNER_B, h.now, 1, -1, out, &n),
              -1);
    static const char *const bad[] = {
        "{\"type\":\"reconnected\",\"at\":1,\"by\":\"partner_a\",\"gap_ms\":5}",
        "{\"type\":\"reconnected\",\"at\":1,\"by\":\"partner_a\",\"times\":0,\"gap_ms\":5}",
        "{\"type\":\"reconnected\",\"at\":1,\"by\":\"partner_a\",\"times\":1}",
        "{\"type\":\"reconnected\",\"at\":1,\"by\":\"partner_a\",\"times\":1,\"gap_ms\":-1}",
        "{\"type\":\"reconnected\",\"at\":1,\"by\":\"system\",\"times\":1,\"gap_ms\":5}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_error_t jerr;
        json_t *obj = json_loads(bad[i], 0, &jerr);
        att_event e;
        att_error err = {0};
        CHECK_MSG(att_event_from_json(obj, h.room.script, &e, &err) == -ATT_ERR_BAD_MESSAGE, "%s",
                  bad[i]);
        json_decref(obj);
    }
    check_refold(&h);
    harness_free(&h);
}

static void test_consent_and_withdrawal(void)
{
    harness h;
    harness_init(&h, "enactment");
    harness_join(&h, ATT_ROLE_PARTNER_A);
    CHECK_INT(harness_cmd(&h, ATT_ROLE_PARTNER_A, "{\"type\":\"consent_withdraw\"}"),
              ATT_ERR_CONSENT_REQUIRED); /* nothing to withdraw yet */
    CHECK_INT(harness_cmd(&h, ATT_ROLE_PARTNER_A, "{\"type\":\"consent\",\"accept\":true}"), 0);
    json_t *ev = harness_last_event(&h, "consented");
    CHECK_INT(json_integer_value(json_object_get(ev, "notice_version")),
              att_catalog_consent_version(h.cat));
    CHECK(att_catalog_consent_version(h.cat) >= 1);
    CHECK_STR(json_string_value(json_object_get(ev, "notice_hash")),
              att_catalog_consent_hash(h.cat));
    CHECK_INT(strlen(att_catalog_consent_hash(h.cat)), 64);
    CHECK_STR(att_catalog_consent_hash(h.cat),
              json_string_value(json_object_get(att_catalog_consent_json(h.cat), "hash")));
    CHECK_INT(audience_of(&h, ev), ALL);
    CHECK_INT(harness_cmd(&h, ATT_ROLE_THERAPIST, "{\"type\":\"consent_withdraw\"}"),
              ATT_ERR_FORBIDDEN);
    CHECK_INT(harness_cmd(&h, ATT_ROLE_OBSERVER, "{\"type\":\"consent_withdraw\"}"),
              ATT_ERR_FORBIDDEN);
    harness_free(&h);

    harness_init(&h, "enactment");
    harness_start(&h);
    CHECK_INT(harness_cmd(&h, ATT_ROLE_PARTNER_A,
                          "{\"type\":\"repair_attempt\",\"text\":\"I want to try again\"}"),
              0);
    CHECK_INT(
        harness_cmd(&h, ATT_ROLE_PARTNER_B, "{\"type\":\"repair_attempt\",\"text\":\"me too\"}"),
        0);
    /* partner_a withdraws: recorded for all, the room pauses, paused_by partner_a */
    CHECK_INT(harness_cmd(&h, ATT_ROLE_PARTNER_A, "{\"type\":\"consent_withdraw\"}"), 0);
    CHECK_INT(h.last_n, 1);
    ev = harness_last_event(&h, "consent_withdrawn");
    CHECK_STR(json_string_value(json_object_get(ev, "by")), "partner_a");
    CHECK_INT(audience_of(&h, ev), ALL);
    CHECK_INT(h.room.status, ATT_STATUS_PAUSED);
    CHECK_INT(h.room.paused_by, ATT_ROLE_PARTNER_A);
    CHECK_INT(h.room.consent[ATT_ROLE_PARTNER_A], 0);
    json_t *st = harness_state(&h.room, ATT_ROLE_PARTNER_B, 1);
    CHECK(json_is_false(json_object_get(json_object_get(st, "consent"), "partner_a")));
    CHECK_STR(json_string_value(json_object_get(st, "paused_by")), "partner_a");
    json_decref(st);
    CHECK_INT(harness_cmd(&h, ATT_ROLE_PARTNER_A, "{\"type\":\"consent_withdraw\"}"),
              ATT_ERR_CONSENT_REQUIRED);
    /* their further part is refused with consent_required */
    static const char *const refused[] = {
        "{\"type\":\"turn\",\"step\":\"what_happened\",\"input\":{\"what_happened\":\"x\"}}",
        "{\"type\":\"checkin\",\"answers\":{\"safe_to_talk\":\"yes\"}}",
        "{\"type\":\"repair_attempt\",\"text\":\"sorry\"}",
        "{\"type\":\"repair_accept\",\"attempt_id\":2}",
        "{\"type\":\"repair_reply\",\"attempt_id\":2,\"reply\":\"need_a_moment\"}",
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
        CHECK_MSG(harness_cmd(&h, ATT_ROLE_PARTNER_A, refused[i]) == ATT_ERR_CONSENT_REQUIRED,
                  "%s: %s", refused[i], h.last_err.message);
    /* the private line and a pause stay open to them */
    CHECK_INT(harness_cmd(&h, ATT_ROLE_PARTNER_A,
                          "{\"type\":\"private_message\",\"text\":\"I am not ready\"}"),
              0);
    CHECK_INT(harness_cmd(&h, ATT_ROLE_PARTNER_A, "{\"type\":\"ask_therapist\"}"), 0);
    CHECK_INT(harness_cmd(&h, ATT_ROLE_PARTNER_A, "{\"type\":\"pause_request\"}"), 0);
    CHECK_INT(harness_cmd(&h, ATT_ROLE_PARTNER_A, "{\"type\":\"typing\"}"), 0);
    /* the other partner is not refused for consent, only for the pause */
    CHECK_INT(harness_cmd(&h, ATT_ROLE_PARTNER_B, "{\"type\":\"repair_accept\",\"attempt_id\":1}"),
              0);
    /* resume with a consent missing: back to waiting for consent */
    CHECK_INT(harness_cmd(&h, ATT_ROLE_THERAPIST, "{\"type\":\"control\",\"action\":\"resume\"}"),
              0);
    CHECK_INT(h.room.status, ATT_STATUS_WAITING_CONSENT);
    CHECK_INT(h.room.paused_by, ATT_ROLE_NONE);
    CHECK_INT(harness_turn_input(&h, ATT_ROLE_PARTNER_A, harness_valid_input(&h, 0)),
              ATT_ERR_CONSENT_REQUIRED);
    /* consenting again gives it back: the session goes on where it was */
    int step = h.room.step;
    CHECK_INT(harness_cmd(&h, ATT_ROLE_PARTNER_A, "{\"type\":\"consent\",\"accept\":true}"), 0);
    CHECK_INT(h.last_n, 1);
    CHECK_INT(h.room.consent_withdrawn[ATT_ROLE_PARTNER_A], 0);
    CHECK_INT(h.room.status, ATT_STATUS_ACTIVE); /* the check-in was done */
    CHECK_INT(h.room.step, step);
    CHECK_INT(harness_turn(&h, 0), 0);
    check_refold(&h);

    /* withdrawn and consenting again while paused: it stays paused until the therapist resumes */
    CHECK_INT(harness_cmd(&h, ATT_ROLE_PARTNER_B, "{\"type\":\"consent_withdraw\"}"), 0);
    CHECK_INT(h.room.paused_by, ATT_ROLE_PARTNER_B);
    CHECK_INT(harness_cmd(&h, ATT_ROLE_PARTNER_B, "{\"type\":\"consent\",\"accept\":true}"), 0);
    CHECK_INT(h.room.status, ATT_STATUS_PAUSED);
    CHECK_INT(h.room.paused_by, ATT_ROLE_PARTNER_B);
    CHECK_INT(harness_cmd(&h, ATT_ROLE_PARTNER_B, "{\"type\":\"repair_attempt\"}"), 0);
    CHECK_INT(harness_cmd(&h, ATT_ROLE_THERAPIST, "{\"type\":\"control\",\"action\":\"resume\"}"),
              0);
    CHECK_INT(h.room.status, ATT_STATUS_ACTIVE);
    /* withdrawing while the therapist has paused: paused_by stays the therapist */
    CHECK_INT(harness_cmd(&h, ATT_ROLE_THERAPIST, "{\"type\":\"control\",\"action\":\"pause\"}"),
              0);
    CHECK_INT(harness_cmd(&h, ATT_ROLE_PARTNER_A, "{\"type\":\"consent_withdraw\"}"), 0);
    CHECK_INT(h.room.paused_by, ATT_ROLE_THERAPIST);
    CHECK_INT(h.room.consent[ATT_ROLE_PARTNER_A], 0);
    check_refold(&h);
    harness_free(&h);

    /* withdrawn during the check-in: back to the check-in after consent and resume */
    harness_init(&h, "enactment");
    harness_start_consented(&h);
    CHECK_INT(harness_cmd(&h, ATT_ROLE_PARTNER_B, "{\"type\":\"consent_withdraw\"}"), 0);
    CHECK_INT(h.room.status, ATT_STATUS_PAUSED);
    CHECK_INT(harness_checkin(&h, ATT_ROLE_PARTNER_B, "yes"), ATT_ERR_CONSENT_REQUIRED);
    CHECK_INT(harness_cmd(&h, ATT_ROLE_PARTNER_B, "{\"type\":\"consent\",\"accept\":true}"), 0);
    CHECK_INT(harness_cmd(&h, ATT_ROLE_THERAPIST, "{\"type\":\"control\",\"action\":\"resume\"}"),
              0);
    CHECK_INT(h.room.status, ATT_STATUS_CHECKING_IN);
    CHECK_INT(harness_checkin(&h, ATT_ROLE_PARTNER_B, "yes"), 0);
    CHECK_INT(harness_checkin(&h, ATT_ROLE_PARTNER_A, "yes"), 0);
    CHECK_INT(h.room.status, ATT_STATUS_ACTIVE);
    /* after the end there is nothing to withdraw from */
    CHECK_INT(harness_cmd(&h, ATT_ROLE_THERAPIST, "{\"type\":\"control\",\"action\":\"end\"}"), 0);
    CHECK_INT(harness_cmd(&h, ATT_ROLE_PARTNER_A, "{\"type\":\"consent_withdraw\"}"),
              ATT_ERR_SESSION_ENDED);
    check_refold(&h);
    harness_free(&h);
}

/* --- the private line ----------------------------------------------------- */

static void check_private(harness *h, att_role from, const char *json, att_role partner,
                          const char *to)
{
    CHECK_MSG(harness_cmd(h, from, json) == 0, "%s: %s", json, h->last_err.message);
    CHECK_INT(h->last_n, 1);
    json_t *ev = harness_last_event(h, "private_message");
    CHECK(ev != NULL);
    CHECK_STR(json_string_value(json_object_get(ev, "by")), att_role_name(from));
    CHECK_STR(json_string_value(json_object_get(ev, "to")), to);
    CHECK_INT(audience_of(h, ev), AUD(partner) | AUD(ATT_ROLE_THERAPIST));
}

static void private_line_round(harness *h, const char *when)
{
    int before = h->room.private_from_partners;
    check_private(h, ATT_ROLE_PARTNER_A, "{\"type\":\"private_message\",\"text\":\"help\"}",
                  ATT_ROLE_PARTNER_A, "therapist");
    check_private(h, ATT_ROLE_PARTNER_B,
                  "{\"type\":\"private_message\",\"text\":\"help\",\"to\":\"therapist\"}",
                  ATT_ROLE_PARTNER_B, "therapist");
    check_private(h, ATT_ROLE_THERAPIST,
                  "{\"type\":\"private_message\",\"text\":\"I hear you\",\"to\":\"partner_b\"}",
                  ATT_ROLE_PARTNER_B, "partner_b");
    check_private(h, ATT_ROLE_THERAPIST,
                  "{\"type\":\"private_message\",\"text\":\"I hear you\",\"to\":\"partner_a\"}",
                  ATT_ROLE_PARTNER_A, "partner_a");
    for (int p = 0; p < 2; p++) {
        CHECK_MSG(harness_cmd(h, (att_role)p, "{\"type\":\"ask_therapist\"}") == 0, "%s: %s", when,
                  h->last_err.message);
        CHECK_INT(h->last_n, 1);
        json_t *ev = harness_last_event(h, "therapist_requested");
        CHECK_STR(json_string_value(json_object_get(ev, "by")), att_role_name((att_role)p));
        CHECK_INT(audience_of(h, ev), AUD(p) | AUD(ATT_ROLE_THERAPIST));
    }
    /* the therapist's alert counts the partners' messages and requests */
    CHECK_MSG(h->room.private_from_partners == before + 4, "%s", when);
    CHECK_INT(h->room.private_last_seq, h->room.seq);
}

/* Where the private line may not go: partners only to the therapist, the
 * therapist only to a partner, observers nowhere. Records nothing. */
static void check_private_refusals(harness *h)
{
    int64_t seq = h->room.seq;
    CHECK_INT(harness_cmd(h, ATT_ROLE_PARTNER_A,
                          "{\"type\":\"private_message\",\"text\":\"x\",\"to\":\"partner_b\"}"),
              ATT_ERR_INVALID_INPUT);
    CHECK_INT(harness_cmd(h, ATT_ROLE_PARTNER_A,
                          "{\"type\":\"private_message\",\"text\":\"x\",\"to\":\"partner_a\"}"),
              ATT_ERR_INVALID_INPUT);
    CHECK_INT(harness_cmd(h, ATT_ROLE_PARTNER_B,
                          "{\"type\":\"private_message\",\"text\":\"x\",\"to\":\"partner_a\"}"),
              ATT_ERR_INVALID_INPUT);
    CHECK_INT(harness_cmd(h, ATT_ROLE_THERAPIST, "{\"type\":\"private_message\",\"text\":\"x\"}"),
              ATT_ERR_INVALID_INPUT);
    CHECK_INT(harness_cmd(h, ATT_ROLE_THERAPIST,
                          "{\"type\":\"private_message\",\"text\":\"x\",\"to\":\"therapist\"}"),
              ATT_ERR_INVALID_INPUT);
    CHECK_INT(harness_cmd(h, ATT_ROLE_THERAPIST, "{\"type\":\"ask_therapist\"}"),
              ATT_ERR_FORBIDDEN);
    CHECK_INT(harness_cmd(h, ATT_ROLE_OBSERVER, "{\"type\":\"private_message\",\"text\":\"x\"}"),
              ATT_ERR_FORBIDDEN);
    CHECK_INT(harness_cmd(h, ATT_ROLE_OBSERVER,
                          "{\"type\":\"private_message\",\"text\":\"x\",\"to\":\"partner_a\"}"),
              ATT_ERR_FORBIDDEN);
    CHECK_INT(harness_cmd(h, ATT_ROLE_OBSERVER, "{\"type\":\"ask_therapist\"}"), ATT_ERR_FORBIDDEN);
    CHECK_INT(h->room.seq, seq);
}

static void test_private_line(void)
{
    harness h;
    harness_init(&h, "enactment");
    private_line_round(&h, "before anyone joined");
    harness_join(&h, ATT_ROLE_PARTNER_A);
    harness_join(&h, ATT_ROLE_PARTNER_B);
    private_line_round(&h, "before consent");
    harness_start_consented(&h);
    private_line_round(&h, "checking in");
    harness_checkin(&h, ATT_ROLE_PARTNER_A, "yes");
    harness_checkin(&h, ATT_ROLE_PARTNER_B, "yes");
    private_line_round(&h, "active");
    CHECK_INT(harness_cmd(&h, ATT_ROLE_THERAPIST, "{\"type\":\"control\",\"action\":\"pause\"}"),
              0);
    private_line_round(&h, "paused");
    CHECK_INT(harness_cmd(&h, ATT_ROLE_THERAPIST, "{\"type\":\"control\",\"action\":\"resume\"}"),
              0);
    CHECK_INT(harness_cmd(&h, ATT_ROLE_PARTNER_A, "{\"type\":\"consent_withdraw\"}"), 0);
    private_line_round(&h, "withdrawn");
    /* where it may go (the checks below record nothing) */
    check_private_refusals(&h);
    CHECK_INT(harness_cmd(&h, ATT_ROLE_THERAPIST, "{\"type\":\"control\",\"action\":\"end\"}"), 0);
    /* after the end the therapist may still write to a partner; a partner
     * records nothing more, not even on the private line */
    check_private(&h, ATT_ROLE_THERAPIST,
                  "{\"type\":\"private_message\",\"text\":\"take care\",\"to\":\"partner_a\"}",
                  ATT_ROLE_PARTNER_A, "partner_a");
    int64_t ended_seq = h.room.seq;
    for (int p = 0; p < 2; p++) {
        CHECK_INT(harness_cmd(&h, (att_role)p, "{\"type\":\"private_message\",\"text\":\"help\"}"),
                  ATT_ERR_SESSION_ENDED);
        CHECK_INT(harness_cmd(&h, (att_role)p, "{\"type\":\"ask_therapist\"}"),
                  ATT_ERR_SESSION_ENDED);
        CHECK_INT(harness_cmd(&h, (att_role)p, "{\"type\":\"typing\"}"), ATT_ERR_SESSION_ENDED);
        CHECK_INT(harness_cmd(&h, (att_role)p, "{\"type\":\"note\",\"text\":\"x\"}"),
                  ATT_ERR_FORBIDDEN);
    }
    CHECK_INT(h.room.seq, ended_seq);
    /* the therapist's state carries the alert; partners' states do not */
    json_t *st = harness_state(&h.room, ATT_ROLE_THERAPIST, 1);
    json_t *pl = json_object_get(st, "private_line");
    CHECK_INT(json_integer_value(json_object_get(pl, "from_partners")),
              h.room.private_from_partners);
    CHECK_INT(json_integer_value(json_object_get(pl, "last_seq")), h.room.private_last_seq);
    json_decref(st);
    for (int r = 0; r < 4; r++) {
        if (r == ATT_ROLE_THERAPIST)
            continue;
        st = harness_state(&h.room, (att_role)r, 1);
        CHECK(json_object_get(st, "private_line") == NULL);
        json_decref(st);
    }
    check_refold(&h);
    harness_free(&h);
}

/* --- takeover -------------------------------------------------------------- */

static void test_replaced(void)
{
    harness h;
    harness_init(&h, "enactment");
    harness_start(&h);
    static const att_role roles[] = {ATT_ROLE_PARTNER_A, ATT_ROLE_PARTNER_B, ATT_ROLE_THERAPIST};
    for (int i = 0; i < 3; i++) {
        CHECK_INT(harness_replaced(&h, roles[i]), 0);
        CHECK_INT(h.last_n, 1);
        json_t *ev = harness_last_event(&h, "replaced");
        CHECK_STR(json_string_value(json_object_get(ev, "by")), att_role_name(roles[i]));
        CHECK_INT(audience_of(&h, ev),
                  att_role_is_partner(roles[i]) ? AUD(roles[i]) | STAFF : STAFF);
        CHECK_INT(h.room.present[roles[i]], 1); /* still there: the newer connection */
    }
    CHECK_INT(att_room_actor(&h.room), ATT_ROLE_PARTNER_A);
    /* observers have no seat to take over (found by fuzz_room: the event did not decode) */
    att_event evs[ATT_MAX_EVENTS_PER_COMMAND];
    int n = 7;
    CHECK_INT(att_engine_decide_replaced(&h.room, ATT_ROLE_OBSERVER, h.now, evs, &n), -1);
    CHECK_INT(n, 0);
    CHECK_INT(att_engine_decide_replaced(&h.room, ATT_ROLE_SYSTEM, h.now, evs, &n), -1);
    CHECK_INT(harness_turn(&h, 0), 0);
    check_refold(&h);
    harness_free(&h);
}

/* --- repairs land on the right rupture -------------------------------------- */

static const char *pname(att_role r)
{
    return att_role_name(r);
}

/* Opens a rupture who -> with from `source` (0: a therapist mark, 1: a
 * confirmed suspicion of blaming language in `who`'s repair attempt); returns its id. */
static int open_rupture(harness *h, att_role who, att_role with, int source)
{
    if (source == 0) {
        CHECK_INT(harness_cmdf(h, ATT_ROLE_THERAPIST,
                               "{\"type\":\"rupture_mark\",\"kind\":\"withdrawal\",\"marker\":"
                               "\"minimal_response\",\"who\":\"%s\",\"with\":\"%s\"}",
                               pname(who), pname(with)),
                  0);
    } else {
        CHECK(with == att_other_partner(who)); /* the detector's are between the partners */
        CHECK_INT(harness_cmd(h, who,
                              "{\"type\":\"repair_attempt\",\"text\":\"You always ignore me, you "
                              "never listen\"}"),
                  0);
        int sid = h->room.suspicions[h->room.n_suspicions - 1].open.id;
        CHECK_INT(harness_cmdf(h, ATT_ROLE_THERAPIST,
                               "{\"type\":\"rupture_confirm\",\"suspicion_id\":%d}", sid),
                  0);
    }
    const att_rupture *r = harness_last_rupture(h);
    CHECK(r && r->status == ATT_RS_OPEN && r->open.who == who && r->open.with == with);
    CHECK_INT(r->confirmed, source);
    return r ? r->open.id : 0;
}

/* A repair attempt by `author` naming rupture `named` (0: none); returns its attempt id. */
static int attempt(harness *h, att_role author, int named)
{
    int rc = named ? harness_cmdf(h, author,
                                  "{\"type\":\"repair_attempt\",\"text\":\"I'm sorry\","
                                  "\"rupture_id\":%d}",
                                  named)
                   : harness_cmd(h, author, "{\"type\":\"repair_attempt\",\"text\":\"I'm sorry\"}");
    if (rc)
        return -rc;
    json_t *ev = harness_last_event(h, "repair_attempt");
    CHECK_INT(audience_of(h, ev), ALL);
    CHECK_INT(json_integer_value(json_object_get(ev, "rupture_id")), named);
    CHECK(json_object_get(ev, "seq") == NULL && json_object_get(ev, "attempt_seq") == NULL);
    return (int)json_integer_value(json_object_get(ev, "attempt_id"));
}

/* Accepts attempt `id` as `by`; returns the rupture it repaired (0: none). */
static int accept(harness *h, att_role by, int id)
{
    CHECK_INT(harness_cmdf(h, by, "{\"type\":\"repair_accept\",\"attempt_id\":%d}", id), 0);
    json_t *acc = harness_last_event(h, "repair_accepted");
    CHECK_INT(json_integer_value(json_object_get(acc, "attempt_id")), id);
    CHECK(json_object_get(acc, "attempt_seq") == NULL);
    CHECK_INT(audience_of(h, acc), ALL);
    json_t *rep = harness_last_event(h, "rupture_repaired");
    if (!rep) {
        CHECK_INT(h->last_n, 1);
        return 0;
    }
    CHECK_INT(h->last_n, 2);
    CHECK_STR(json_string_value(json_object_get(rep, "how")), "repair_attempt");
    CHECK_INT(json_integer_value(json_object_get(rep, "attempt_id")), id);
    CHECK_STR(json_string_value(json_object_get(rep, "by")), pname(by));
    CHECK_INT(audience_of(h, rep), ALL);
    int rid = (int)json_integer_value(json_object_get(rep, "rupture_id"));
    const att_rupture *r = harness_rupture(h, rid);
    CHECK(r && r->status == ATT_RS_REPAIRED && r->repair_how == ATT_HOW_REPAIR_ATTEMPT);
    if (r) {
        CHECK_INT(r->repair_attempt_id, id);
        CHECK_INT(r->repair_by, by);
    }
    return rid;
}

static void test_repair_matrix(void)
{
    int cases = 0;
    static const att_role partners[] = {ATT_ROLE_PARTNER_A, ATT_ROLE_PARTNER_B};
    for (int wi = 0; wi < 2; wi++)
        for (int with_therapist = 0; with_therapist < 2; with_therapist++)
            for (int source = 0; source < 2; source++)
                for (int ai = 0; ai < 2; ai++)
                    for (int named = 0; named < 2; named++) {
                        /* the detector never suspects a rupture with the therapist */
                        if (source == 1 && with_therapist)
                            continue;
                        att_role who = partners[wi];
                        att_role with =
                            with_therapist ? ATT_ROLE_THERAPIST : att_other_partner(who);
                        att_role author = partners[ai];
                        harness h;
                        harness_init(&h, "enactment");
                        harness_start(&h);
                        int rid = open_rupture(&h, who, with, source);
                        int id = attempt(&h, author, named ? rid : 0);
                        const char *what = with_therapist ? "with the therapist" : "between them";
                        if (named && with_therapist) {
                            /* naming a rupture with the therapist: not_found */
                            CHECK_MSG(id == -ATT_ERR_NOT_FOUND, "%s %s: %d", pname(who), what, id);
                            id = attempt(&h, author, 0);
                        }
                        CHECK(id > 0);
                        /* only the other partner accepts */
                        CHECK_INT(harness_cmdf(&h, author,
                                               "{\"type\":\"repair_accept\",\"attempt_id\":%d}",
                                               id),
                                  ATT_ERR_FORBIDDEN);
                        CHECK_INT(harness_cmdf(&h, ATT_ROLE_THERAPIST,
                                               "{\"type\":\"repair_accept\",\"attempt_id\":%d}",
                                               id),
                                  ATT_ERR_FORBIDDEN);
                        int repaired = accept(&h, att_other_partner(author), id);
                        CHECK_MSG(repaired == (with_therapist ? 0 : rid),
                                  "who %s with %s source %d author %s named %d: repaired %d",
                                  pname(who), pname(with), source, pname(author), named, repaired);
                        CHECK_INT(harness_rupture(&h, rid)->status,
                                  with_therapist ? ATT_RS_OPEN : ATT_RS_REPAIRED);
                        /* accepted once */
                        CHECK_INT(harness_cmdf(&h, att_other_partner(author),
                                               "{\"type\":\"repair_accept\",\"attempt_id\":%d}",
                                               id),
                                  ATT_ERR_NOT_FOUND);
                        check_refold(&h);
                        harness_free(&h);
                        cases++;
                    }
    CHECK_INT(cases, 24);
}

static void test_repair_two_ruptures(void)
{
    harness h;
    harness_init(&h, "enactment");
    harness_start(&h);
    int r1 = open_rupture(&h, ATT_ROLE_PARTNER_A, ATT_ROLE_PARTNER_B, 0);
    int r2 = open_rupture(&h, ATT_ROLE_PARTNER_B, ATT_ROLE_PARTNER_A, 1);
    int rt = open_rupture(&h, ATT_ROLE_PARTNER_A, ATT_ROLE_THERAPIST, 0);
    CHECK_INT(r1, 1);
    CHECK_INT(r2, 2);
    CHECK_INT(rt, 3);
    /* two open between the partners: an attempt naming none closes nothing */
    int id = attempt(&h, ATT_ROLE_PARTNER_A, 0);
    CHECK_INT(accept(&h, ATT_ROLE_PARTNER_B, id), 0);
    /* naming one closes that one only */
    id = attempt(&h, ATT_ROLE_PARTNER_B, r2);
    CHECK_INT(accept(&h, ATT_ROLE_PARTNER_A, id), r2);
    CHECK_INT(harness_rupture(&h, r1)->status, ATT_RS_OPEN);
    CHECK_INT(harness_rupture(&h, rt)->status, ATT_RS_OPEN);
    /* a repaired rupture cannot be named again */
    CHECK_INT(attempt(&h, ATT_ROLE_PARTNER_B, r2), -ATT_ERR_NOT_FOUND);
    CHECK_INT(attempt(&h, ATT_ROLE_PARTNER_B, 99), -ATT_ERR_NOT_FOUND);
    /* now one is open between them: naming none closes it, never the therapist's */
    id = attempt(&h, ATT_ROLE_PARTNER_B, 0);
    int closed_r1 = id;
    CHECK_INT(accept(&h, ATT_ROLE_PARTNER_A, id), r1);
    CHECK_INT(harness_rupture(&h, rt)->status, ATT_RS_OPEN);
    id = attempt(&h, ATT_ROLE_PARTNER_A, 0);
    CHECK_INT(accept(&h, ATT_ROLE_PARTNER_B, id), 0);
    CHECK_INT(harness_rupture(&h, rt)->status, ATT_RS_OPEN);
    /* the named rupture was repaired by the therapist before the accept: nothing else closes */
    int r4 = open_rupture(&h, ATT_ROLE_PARTNER_A, ATT_ROLE_PARTNER_B, 0);
    int r5 = open_rupture(&h, ATT_ROLE_PARTNER_B, ATT_ROLE_PARTNER_A, 0);
    id = attempt(&h, ATT_ROLE_PARTNER_A, r4);
    CHECK_INT(harness_cmdf(&h, ATT_ROLE_THERAPIST,
                           "{\"type\":\"rupture_repair\",\"rupture_id\":%d,\"strategy\":"
                           "\"own_part\"}",
                           r4),
              0);
    /* r5 is the only one open between them now, but the attempt named r4 */
    CHECK_INT(accept(&h, ATT_ROLE_PARTNER_B, id), 0);
    CHECK_INT(harness_rupture(&h, r5)->status, ATT_RS_OPEN);
    /* accepted once */
    CHECK_INT(
        harness_cmdf(&h, ATT_ROLE_PARTNER_B, "{\"type\":\"repair_accept\",\"attempt_id\":%d}", id),
        ATT_ERR_NOT_FOUND);
    /* the state lists attempts by id with the rupture they named */
    json_t *st = harness_state(&h.room, ATT_ROLE_PARTNER_A, 1);
    json_t *atts = json_object_get(st, "repair_attempts");
    json_t *last = json_array_get(atts, json_array_size(atts) - 1);
    CHECK_INT(json_integer_value(json_object_get(last, "id")), id);
    CHECK_INT(json_integer_value(json_object_get(last, "rupture_id")), r4);
    CHECK(json_is_true(json_object_get(last, "accepted")));
    CHECK_STR(json_string_value(json_object_get(last, "by")), "partner_a");
    json_t *rep =
        json_object_get(json_array_get(json_object_get(st, "ruptures"), r1 - 1), "repair");
    CHECK_INT(json_integer_value(json_object_get(rep, "attempt_id")), closed_r1);
    CHECK(json_object_get(rep, "seq") == NULL);
    CHECK(json_is_integer(json_object_get(rep, "time_to_repair_ms")));
    json_decref(st);
    check_refold(&h);
    harness_free(&h);
}

static void test_repair_replies(void)
{
    harness h;
    harness_init(&h, "enactment");
    harness_start(&h);
    int rid = open_rupture(&h, ATT_ROLE_PARTNER_A, ATT_ROLE_PARTNER_B, 0);
    int id = attempt(&h, ATT_ROLE_PARTNER_A, rid);
    CHECK_INT(id, 1);
    char buf[160];
#define REPLY(role, reply)                                                                         \
    (snprintf(buf, sizeof buf, "{\"type\":\"repair_reply\",\"attempt_id\":%d,\"reply\":\"%s\"}",   \
              id, reply),                                                                          \
     harness_cmd(&h, role, buf))
    /* the author answers nothing; the observer nothing; each reply to its own role */
    CHECK_INT(REPLY(ATT_ROLE_PARTNER_A, "need_a_moment"), ATT_ERR_FORBIDDEN);
    CHECK_INT(REPLY(ATT_ROLE_PARTNER_A, "acknowledged"), ATT_ERR_FORBIDDEN);
    CHECK_INT(REPLY(ATT_ROLE_OBSERVER, "acknowledged"), ATT_ERR_FORBIDDEN);
    CHECK_INT(REPLY(ATT_ROLE_THERAPIST, "need_a_moment"), ATT_ERR_FORBIDDEN);
    CHECK_INT(REPLY(ATT_ROLE_PARTNER_B, "acknowledged"), ATT_ERR_FORBIDDEN);
    /* the therapist acknowledges, never accepts */
    CHECK_INT(
        harness_cmdf(&h, ATT_ROLE_THERAPIST, "{\"type\":\"repair_accept\",\"attempt_id\":%d}", id),
        ATT_ERR_FORBIDDEN);
    CHECK_INT(REPLY(ATT_ROLE_THERAPIST, "acknowledged"), 0);
    CHECK_INT(h.last_n, 1);
    json_t *ev = harness_last_event(&h, "repair_replied");
    CHECK_INT(json_integer_value(json_object_get(ev, "attempt_id")), id);
    CHECK_STR(json_string_value(json_object_get(ev, "reply")), "acknowledged");
    CHECK_STR(json_string_value(json_object_get(ev, "by")), "therapist");
    CHECK_INT(audience_of(&h, ev), ALL);
    CHECK_INT(REPLY(ATT_ROLE_THERAPIST, "acknowledged"), 0);
    CHECK_INT(h.last_n, 0); /* said already */
    CHECK_INT(harness_rupture(&h, rid)->status, ATT_RS_OPEN);
    /* the other partner needs a moment: the attempt stays open */
    CHECK_INT(REPLY(ATT_ROLE_PARTNER_B, "need_a_moment"), 0);
    CHECK_INT(h.last_n, 1);
    ev = harness_last_event(&h, "repair_replied");
    CHECK_STR(json_string_value(json_object_get(ev, "reply")), "need_a_moment");
    CHECK_STR(json_string_value(json_object_get(ev, "by")), "partner_b");
    CHECK_INT(REPLY(ATT_ROLE_PARTNER_B, "need_a_moment"), 0);
    CHECK_INT(h.last_n, 0);
    CHECK_INT(harness_rupture(&h, rid)->status, ATT_RS_OPEN);
    json_t *st = harness_state(&h.room, ATT_ROLE_PARTNER_B, 1);
    json_t *a = json_array_get(json_object_get(st, "repair_attempts"), 0);
    CHECK_STR(json_string_value(json_object_get(a, "reply")), "need_a_moment");
    CHECK(json_is_true(json_object_get(a, "acknowledged")));
    CHECK(json_is_false(json_object_get(a, "accepted")));
    CHECK(json_object_get(a, "moment") == NULL);
    json_decref(st);
    /* and still accepts later */
    CHECK_INT(accept(&h, ATT_ROLE_PARTNER_B, id), rid);
    CHECK_INT(REPLY(ATT_ROLE_PARTNER_B, "need_a_moment"), ATT_ERR_NOT_FOUND);
    CHECK_INT(REPLY(ATT_ROLE_THERAPIST, "acknowledged"), ATT_ERR_NOT_FOUND);
    /* unknown attempts */
    id = 77;
    CHECK_INT(REPLY(ATT_ROLE_THERAPIST, "acknowledged"), ATT_ERR_NOT_FOUND);
    CHECK_INT(harness_cmd(&h, ATT_ROLE_PARTNER_B, "{\"type\":\"repair_accept\",\"attempt_id\":77}"),
              ATT_ERR_NOT_FOUND);
    /* a fresh attempt: null reply in the state */
    id = attempt(&h, ATT_ROLE_PARTNER_B, 0);
    st = harness_state(&h.room, ATT_ROLE_THERAPIST, 1);
    a = json_array_get(json_object_get(st, "repair_attempts"), 1);
    CHECK_INT(json_integer_value(json_object_get(a, "id")), id);
    CHECK(json_is_null(json_object_get(a, "reply")));
    CHECK(json_is_false(json_object_get(a, "acknowledged")));
    CHECK(json_is_null(json_object_get(a, "rupture_id")));
    json_decref(st);
    /* repairs are for partners only */
    CHECK_INT(harness_cmd(&h, ATT_ROLE_THERAPIST, "{\"type\":\"repair_attempt\"}"),
              ATT_ERR_FORBIDDEN);
    CHECK_INT(harness_cmd(&h, ATT_ROLE_OBSERVER, "{\"type\":\"repair_attempt\"}"),
              ATT_ERR_FORBIDDEN);
#undef REPLY
    check_refold(&h);
    harness_free(&h);

    /* the 16 most recent attempts are kept; attempt ids keep counting */
    harness_init(&h, "enactment");
    harness_start(&h);
    for (int i = 0; i < 20; i++)
        CHECK_INT(attempt(&h, i % 2 ? ATT_ROLE_PARTNER_B : ATT_ROLE_PARTNER_A, 0), i + 1);
    CHECK_INT(h.room.n_attempts, ATT_MAX_ATTEMPTS);
    CHECK_INT(h.room.attempts[0].id, 5);
    CHECK_INT(harness_cmd(&h, ATT_ROLE_PARTNER_B, "{\"type\":\"repair_accept\",\"attempt_id\":1}"),
              ATT_ERR_NOT_FOUND);
    CHECK_INT(accept(&h, ATT_ROLE_PARTNER_B, 5), 0);
    check_refold(&h);
    harness_free(&h);
}

int main(void)
{
    test_all_exercises_walk_to_the_end();
    test_enactment_roles_and_reflection_loop();
    test_input_validation();
    test_controls();
    test_advance_past_the_end_completes();
    test_permissions();
    test_checkin_clear();
    test_checkin_held();
    test_consent_and_withdrawal();
    test_before_consent();
    test_reconnected_event();
    test_private_line();
    test_replaced();
    test_repair_matrix();
    test_repair_two_ruptures();
    test_repair_replies();
    harness_catalog_free();
    return check_done("engine");
}
