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
    json_t *state = att_room_state_json(&h.room, ATT_ROLE_PARTNER_A, 1);
    CHECK(json_is_null(json_object_get(state, "step")));
    CHECK_STR(json_string_value(json_object_get(state, "status")), "ended");
    json_decref(state);
    char live[65], replayed[65];
    att_error err;
    CHECK_INT(att_room_state_hash(&h.room, live, &err), 0);
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
    json_t *st = att_room_state_json(&h.room, ATT_ROLE_PARTNER_A, 1);
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
    att_room_state_hash(&h.room, live, &err);
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

int main(void)
{
    test_all_exercises_walk_to_the_end();
    test_enactment_roles_and_reflection_loop();
    test_input_validation();
    test_controls();
    test_advance_past_the_end_completes();
    test_permissions();
    harness_catalog_free();
    return check_done("engine");
}
