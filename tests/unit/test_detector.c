/* test_detector.c - every rupture rule opening a rupture and being repaired,
 * with the rupture's record (who, kind, marker, source, evidence, repair). */
#include "check.h"
#include "room_harness.h"

#include <string.h>

static int step_index(harness *h, const char *id)
{
    for (size_t i = 0; i < h->room.script->n_steps; i++)
        if (strcmp(h->room.script->steps[i].id, id) == 0)
            return (int)i;
    return -1;
}

static void goto_step(harness *h, const char *id)
{
    int target = step_index(h, id);
    int guard = 0;
    while (h->room.step != target && guard++ < 100)
        CHECK_INT(harness_turn(h, 0), 0);
}

static const att_rupture *last_rupture(harness *h)
{
    return h->room.n_ruptures ? &h->room.ruptures[h->room.n_ruptures - 1] : NULL;
}

static void test_disconnect_during_own_turn(void)
{
    harness h;
    harness_init(&h, "enactment");
    harness_start(&h);
    /* partner_b leaving on partner_a's turn is not a rupture */
    CHECK_INT(harness_leave(&h, ATT_ROLE_PARTNER_B), 0);
    CHECK_INT(h.room.n_ruptures, 0);
    CHECK_INT(harness_join(&h, ATT_ROLE_PARTNER_B), 0);
    CHECK_INT(harness_leave(&h, ATT_ROLE_PARTNER_A), 0);
    int64_t left_seq = h.room.seq - 1;
    CHECK_INT(h.room.n_ruptures, 1);
    const att_rupture *r = last_rupture(&h);
    CHECK_INT(r->open.kind, ATT_RK_WITHDRAWAL);
    CHECK_STR(r->open.marker, "disconnect");
    CHECK_INT(r->open.source, ATT_SRC_DETECTOR);
    CHECK_INT(r->open.who, ATT_ROLE_PARTNER_A);
    CHECK_INT(r->open.with, ATT_ROLE_PARTNER_B);
    CHECK_INT(r->open.step, 0);
    CHECK_INT(r->open.n_evidence, 1);
    CHECK_INT(r->open.evidence[0], left_seq);
    CHECK_INT(r->status, ATT_RS_OPEN);
    int64_t opened = r->opened_at;
    CHECK_INT(att_room_next_deadline(&h.room), -1); /* no silence while away */
    CHECK_INT(harness_join(&h, ATT_ROLE_PARTNER_A), 0);
    r = harness_rupture(&h, 1);
    CHECK_INT(r->status, ATT_RS_REPAIRED);
    CHECK_INT(r->repair_how, ATT_HOW_RECONNECT);
    CHECK_INT(r->repair_by, ATT_ROLE_PARTNER_A);
    CHECK_INT(r->repair_at - opened, 1000);
    CHECK(harness_last_event(&h, "rupture_repaired") != NULL);
    /* the server shutting down is not a withdrawal */
    att_event evs[ATT_MAX_EVENTS_PER_COMMAND];
    int n = 0;
    CHECK_INT(att_room_decide_leave(&h.room, ATT_ROLE_PARTNER_A, ATT_LEFT_SHUTDOWN, h.now, evs, &n),
              0);
    CHECK_INT(n, 1);
    CHECK_INT(evs[0].type, ATT_EV_LEFT);
    harness_free(&h);
}

static void test_silence_on_own_turn(void)
{
    harness h;
    harness_init(&h, "enactment");
    harness_start(&h);
    int64_t deadline = att_room_next_deadline(&h.room);
    CHECK_INT(deadline, h.room.step_started_at + ATT_DEFAULT_SILENCE_MS);
    CHECK_INT(harness_tick(&h, ATT_DEFAULT_SILENCE_MS - 1), 0);
    CHECK_INT(harness_tick(&h, 1), 1);
    const att_rupture *r = last_rupture(&h);
    CHECK(r != NULL);
    CHECK_STR(r->open.marker, "silence");
    CHECK_INT(r->open.kind, ATT_RK_WITHDRAWAL);
    CHECK_INT(r->open.who, ATT_ROLE_PARTNER_A);
    CHECK_INT(r->open.evidence[0], h.room.step_started_seq);
    /* only once per turn */
    CHECK_INT(harness_tick(&h, ATT_DEFAULT_SILENCE_MS * 2), 0);
    CHECK_INT(att_room_next_deadline(&h.room), -1);
    /* the partner answers: repaired, resumed */
    CHECK_INT(harness_turn(&h, 0), 0);
    r = harness_rupture(&h, 1);
    CHECK_INT(r->status, ATT_RS_REPAIRED);
    CHECK_INT(r->repair_how, ATT_HOW_RESUMED);
    CHECK(r->repair_at - r->opened_at > 0);
    /* next step's silence clock is armed again */
    CHECK(att_room_next_deadline(&h.room) > 0);
    /* a paused session is never silent */
    CHECK_INT(harness_cmd(&h, ATT_ROLE_THERAPIST, "{\"type\":\"control\",\"action\":\"pause\"}"),
              0);
    CHECK_INT(harness_tick(&h, ATT_DEFAULT_SILENCE_MS * 3), 0);
    harness_free(&h);
}

static void test_reflection_rejected_twice(void)
{
    harness h;
    harness_init(&h, "enactment");
    harness_start(&h);
    goto_step(&h, "reflect");
    CHECK_INT(harness_turn(&h, 0), 0); /* reflection 1 */
    CHECK_INT(harness_turn(&h, 1), 0); /* rejected once */
    int64_t first = h.room.seq;
    CHECK_INT(h.room.n_ruptures, 0);
    CHECK_INT(harness_turn(&h, 0), 0); /* reflection 2 */
    CHECK_INT(harness_turn(&h, 1), 0); /* rejected twice */
    CHECK_INT(h.room.n_ruptures, 1);
    const att_rupture *r = last_rupture(&h);
    CHECK_INT(r->open.kind, ATT_RK_MISATTUNEMENT);
    CHECK_STR(r->open.marker, "reflection_rejected");
    CHECK_INT(r->open.who, ATT_ROLE_PARTNER_B); /* the listener */
    CHECK_INT(r->open.with, ATT_ROLE_PARTNER_A);
    CHECK_INT(r->open.n_evidence, 2);
    CHECK_INT(r->open.evidence[0], first);
    CHECK_INT(r->open.evidence[1], h.room.seq - 1);
    CHECK_INT(harness_turn(&h, 0), 0); /* reflection 3 */
    CHECK_INT(harness_turn(&h, 1), 0); /* third rejection: no second rupture */
    CHECK_INT(h.room.n_ruptures, 1);
    CHECK_INT(harness_turn(&h, 0), 0);
    CHECK_INT(harness_turn(&h, 0), 0); /* confirmed */
    r = harness_rupture(&h, 1);
    CHECK_INT(r->status, ATT_RS_REPAIRED);
    CHECK_INT(r->repair_how, ATT_HOW_REFLECTION_CONFIRMED);
    CHECK_INT(r->repair_by, ATT_ROLE_PARTNER_A);
    harness_free(&h);
}

static int rate(harness *h, int value)
{
    char buf[160];
    snprintf(buf, sizeof buf,
             "{\"type\":\"turn\",\"step\":\"connection\",\"input\":{\"connection\":%d}}", value);
    return harness_cmd(h, att_room_actor(&h->room), buf);
}

static void test_connection_rating(void)
{
    harness h;
    harness_init(&h, "enactment");
    harness_start(&h);
    goto_step(&h, "connection");
    CHECK_INT(rate(&h, 8), 0); /* partner_a: 8, fine */
    CHECK_INT(h.room.n_ruptures, 0);
    CHECK_INT(h.room.last_rating[ATT_ROLE_PARTNER_A], 8);
    goto_step(&h, "connection");
    CHECK_INT(rate(&h, 2), 0); /* partner_b: 2, low */
    CHECK_INT(h.room.n_ruptures, 1);
    CHECK_STR(last_rupture(&h)->open.marker, "rating_low");
    CHECK_INT(last_rupture(&h)->open.kind, ATT_RK_DISCONNECTION_FELT);
    CHECK_INT(last_rupture(&h)->open.who, ATT_ROLE_PARTNER_B);
    /* a therapist strategy repairs it */
    CHECK_INT(
        harness_cmd(&h, ATT_ROLE_THERAPIST,
                    "{\"type\":\"rupture_repair\",\"rupture_id\":1,\"strategy\":\"empathize\","
                    "\"note\":\"slowed down\"}"),
        0);
    CHECK_INT(harness_rupture(&h, 1)->status, ATT_RS_REPAIRED);
    CHECK_INT(harness_rupture(&h, 1)->repair_how, ATT_HOW_THERAPIST_STRATEGY);
    CHECK_STR(harness_rupture(&h, 1)->repair_strategy, "empathize");
    CHECK(harness_last_event(&h, "note") != NULL);
    /* repairing twice, or an unknown strategy */
    CHECK_INT(
        harness_cmd(&h, ATT_ROLE_THERAPIST,
                    "{\"type\":\"rupture_repair\",\"rupture_id\":1,\"strategy\":\"empathize\"}"),
        ATT_ERR_NOT_FOUND);
    harness_free(&h);

    /* a drop of 3 from the partner's previous rating (the second round of a
     * second session's worth: walk partner_a's rating again via back/advance) */
    harness_init(&h, "enactment");
    harness_start(&h);
    goto_step(&h, "connection");
    CHECK_INT(rate(&h, 9), 0);
    /* go back to partner_a's rating step and rate again */
    CHECK_INT(harness_cmd(&h, ATT_ROLE_THERAPIST, "{\"type\":\"control\",\"action\":\"back\"}"), 0);
    CHECK_INT(rate(&h, 7), 0); /* drop of 2: fine */
    CHECK_INT(h.room.n_ruptures, 0);
    CHECK_INT(harness_cmd(&h, ATT_ROLE_THERAPIST, "{\"type\":\"control\",\"action\":\"back\"}"), 0);
    CHECK_INT(rate(&h, 4), 0); /* drop of 3 */
    CHECK_INT(h.room.n_ruptures, 1);
    CHECK_STR(last_rupture(&h)->open.marker, "rating_drop");
    CHECK_INT(last_rupture(&h)->open.who, ATT_ROLE_PARTNER_A);
    harness_free(&h);
}

static void test_blaming_language(void)
{
    harness h;
    harness_init(&h, "enactment");
    harness_start(&h);
    CHECK_INT(harness_cmd(&h, ATT_ROLE_PARTNER_A,
                          "{\"type\":\"turn\",\"step\":\"what_happened\",\"input\":{"
                          "\"what_happened\":\"You NEVER listen to me, whatever.\"}}"),
              0);
    CHECK_INT(h.room.n_ruptures, 1);
    const att_rupture *r = last_rupture(&h);
    CHECK_INT(r->status, ATT_RS_SUSPECTED);
    CHECK_INT(r->open.kind, ATT_RK_CONFRONTATION);
    CHECK_STR(r->open.marker, "blaming_language");
    CHECK_INT(r->open.evidence[0], h.room.seq - 1);
    /* the suspicion is private: partners see neither the event nor the rupture */
    json_t *ev = harness_last_event(&h, "rupture_suspected");
    CHECK(ev != NULL);
    CHECK(!att_event_visible_to(ATT_EV_RUPTURE_SUSPECTED, ATT_ROLE_PARTNER_A));
    CHECK(att_event_visible_to(ATT_EV_RUPTURE_SUSPECTED, ATT_ROLE_OBSERVER));
    json_t *st = att_room_state_json(&h.room, ATT_ROLE_PARTNER_B, 1);
    CHECK_INT(json_array_size(json_object_get(st, "ruptures")), 0);
    json_decref(st);
    st = att_room_state_json(&h.room, ATT_ROLE_THERAPIST, 1);
    CHECK_INT(json_array_size(json_object_get(st, "ruptures")), 1);
    json_decref(st);
    /* repair before confirmation is refused; confirm opens it for everyone */
    CHECK_INT(
        harness_cmd(&h, ATT_ROLE_THERAPIST,
                    "{\"type\":\"rupture_repair\",\"rupture_id\":1,\"strategy\":\"empathize\"}"),
        ATT_ERR_NOT_FOUND);
    CHECK_INT(
        harness_cmd(&h, ATT_ROLE_THERAPIST, "{\"type\":\"rupture_confirm\",\"rupture_id\":1}"), 0);
    CHECK_INT(harness_rupture(&h, 1)->status, ATT_RS_OPEN);
    st = att_room_state_json(&h.room, ATT_ROLE_PARTNER_B, 1);
    CHECK_INT(json_array_size(json_object_get(st, "ruptures")), 1);
    json_decref(st);
    CHECK_INT(
        harness_cmd(&h, ATT_ROLE_THERAPIST, "{\"type\":\"rupture_confirm\",\"rupture_id\":1}"),
        ATT_ERR_NOT_FOUND);
    /* the confirmed confrontation is repaired with an exploratory strategy */
    CHECK_INT(harness_cmd(&h, ATT_ROLE_THERAPIST,
                          "{\"type\":\"rupture_repair\",\"rupture_id\":1,\"strategy\":"
                          "\"discuss_what_happened\"}"),
              0);
    CHECK_INT(harness_rupture(&h, 1)->status, ATT_RS_REPAIRED);
    CHECK_INT(harness_rupture(&h, 1)->repair_how, ATT_HOW_THERAPIST_STRATEGY);
    /* a second suspicion, dismissed */
    CHECK_INT(harness_cmd(&h, ATT_ROLE_PARTNER_A,
                          "{\"type\":\"turn\",\"step\":\"reactive\",\"input\":{\"reactive\":"
                          "{\"id\":\"angry\",\"text\":\"ugh, you always do this\"}}}"),
              0);
    CHECK_INT(h.room.n_ruptures, 2);
    CHECK_INT(harness_cmd(&h, ATT_ROLE_THERAPIST,
                          "{\"type\":\"rupture_dismiss\",\"rupture_id\":2,\"note\":\"said with a "
                          "smile\"}"),
              0);
    CHECK_INT(harness_rupture(&h, 2)->status, ATT_RS_DISMISSED);
    /* plain words raise nothing */
    CHECK_INT(harness_turn(&h, 0), 0);
    CHECK_INT(h.room.n_ruptures, 2);
    harness_free(&h);
}

static void test_pause_request_and_repair_attempt(void)
{
    harness h;
    harness_init(&h, "enactment");
    harness_start(&h);
    CHECK_INT(harness_cmd(&h, ATT_ROLE_PARTNER_B, "{\"type\":\"pause_request\"}"), 0);
    CHECK_INT(h.room.status, ATT_STATUS_PAUSED);
    CHECK_INT(h.room.paused_by, ATT_ROLE_PARTNER_B);
    const att_rupture *r = last_rupture(&h);
    CHECK_INT(r->open.kind, ATT_RK_FLOODING);
    CHECK_INT(r->open.source, ATT_SRC_PARTNER);
    CHECK_INT(r->open.who, ATT_ROLE_PARTNER_B);
    CHECK_STR(r->open.marker, "pause_requested");
    /* partner_a tries to repair; only someone else can accept */
    CHECK_INT(harness_cmd(&h, ATT_ROLE_PARTNER_A,
                          "{\"type\":\"repair_attempt\",\"text\":\"I'm sorry, let me slow down\"}"),
              0);
    int64_t attempt = h.room.seq;
    char buf[128];
    snprintf(buf, sizeof buf, "{\"type\":\"repair_accept\",\"attempt_seq\":%lld}",
             (long long)attempt);
    CHECK_INT(harness_cmd(&h, ATT_ROLE_PARTNER_A, buf), ATT_ERR_FORBIDDEN);
    CHECK_INT(harness_cmd(&h, ATT_ROLE_PARTNER_B, buf), 0);
    r = harness_rupture(&h, 1);
    CHECK_INT(r->status, ATT_RS_REPAIRED);
    CHECK_INT(r->repair_how, ATT_HOW_REPAIR_ATTEMPT);
    CHECK_INT(r->repair_attempt_seq, attempt);
    CHECK_INT(r->repair_by, ATT_ROLE_PARTNER_B);
    CHECK_INT(harness_cmd(&h, ATT_ROLE_PARTNER_B, buf), ATT_ERR_NOT_FOUND);
    CHECK_INT(
        harness_cmd(&h, ATT_ROLE_PARTNER_A, "{\"type\":\"repair_attempt\",\"rupture_id\":99}"),
        ATT_ERR_NOT_FOUND);
    /* the therapist resumes */
    CHECK_INT(harness_cmd(&h, ATT_ROLE_THERAPIST, "{\"type\":\"control\",\"action\":\"resume\"}"),
              0);
    CHECK_INT(h.room.status, ATT_STATUS_ACTIVE);
    harness_free(&h);
}

static void test_therapist_mark(void)
{
    harness h;
    harness_init(&h, "enactment");
    harness_start(&h);
    CHECK_INT(harness_cmd(&h, ATT_ROLE_THERAPIST,
                          "{\"type\":\"rupture_mark\",\"kind\":\"withdrawal\",\"marker\":"
                          "\"minimal_response\",\"who\":\"partner_b\",\"with\":\"therapist\","
                          "\"note\":\"went quiet when I asked\"}"),
              0);
    const att_rupture *r = last_rupture(&h);
    CHECK_INT(r->open.source, ATT_SRC_THERAPIST);
    CHECK_INT(r->open.who, ATT_ROLE_PARTNER_B);
    CHECK_INT(r->open.with, ATT_ROLE_THERAPIST);
    CHECK_STR(r->open.marker, "minimal_response");
    json_t *note = harness_last_event(&h, "note");
    CHECK(note != NULL);
    CHECK_INT(json_integer_value(json_object_get(note, "rupture_id")), 1);
    CHECK(!att_event_visible_to(ATT_EV_NOTE, ATT_ROLE_PARTNER_B));
    /* a marker of the wrong kind, or a detector marker */
    CHECK_INT(harness_cmd(&h, ATT_ROLE_THERAPIST,
                          "{\"type\":\"rupture_mark\",\"kind\":\"confrontation\",\"marker\":"
                          "\"minimal_response\",\"who\":\"partner_b\",\"with\":\"partner_a\"}"),
              ATT_ERR_INVALID_INPUT);
    CHECK_INT(harness_cmd(&h, ATT_ROLE_THERAPIST,
                          "{\"type\":\"rupture_mark\",\"kind\":\"withdrawal\",\"marker\":"
                          "\"silence\",\"who\":\"partner_b\",\"with\":\"partner_a\"}"),
              ATT_ERR_INVALID_INPUT);
    CHECK_INT(harness_cmd(&h, ATT_ROLE_THERAPIST,
                          "{\"type\":\"rupture_repair\",\"rupture_id\":1,\"strategy\":"
                          "\"discuss_what_happened\"}"),
              0);
    CHECK_INT(harness_rupture(&h, 1)->status, ATT_RS_REPAIRED);
    char live[65], replayed[65];
    att_error err;
    att_room_state_hash(&h.room, live, &err);
    CHECK_INT(harness_refold(&h, replayed), 0);
    CHECK_STR(live, replayed);
    harness_free(&h);
}

int main(void)
{
    test_disconnect_during_own_turn();
    test_silence_on_own_turn();
    test_reflection_rejected_twice();
    test_connection_rating();
    test_blaming_language();
    test_pause_request_and_repair_attempt();
    test_therapist_mark();
    harness_catalog_free();
    return check_done("detector");
}
