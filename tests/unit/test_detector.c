/* test_detector.c - every detector rule (disconnect after the grace, silence
 * per step with typing, reflection rejected twice, rating low and drop,
 * blaming language) raising only a suspicion the staff sees; each suspicion
 * confirmed into a rupture or dismissed by the therapist; what is never
 * scanned; automatic repairs of confirmed ruptures; therapist marks. */
#include "check.h"
#include "room_harness.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define STAFF ((1u << ATT_ROLE_THERAPIST) | (1u << ATT_ROLE_OBSERVER))
#define ALL (STAFF | (1u << ATT_ROLE_PARTNER_A) | (1u << ATT_ROLE_PARTNER_B))
#define BLAMING "You always ignore me, you never listen"

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

/* The audience of the stored event object, through att_event_audience. */
static unsigned audience_of(harness *h, json_t *obj)
{
    att_event ev;
    att_error err = {0};
    if (!obj || att_event_from_json(obj, h->room.script, &ev, &err) != 0)
        return 0;
    return att_event_audience(&ev);
}

static int count_last(harness *h, const char *type)
{
    int n = 0;
    size_t i;
    json_t *e;
    json_array_foreach(h->last_events, i, e)
    {
        n += strcmp(json_string_value(json_object_get(e, "type")), type) == 0;
    }
    return n;
}

/* The room-log seq of the last command's last event of `type`, or -1. */
static int64_t last_seq_of(harness *h, const char *type)
{
    size_t base = json_array_size(h->log) - json_array_size(h->last_events);
    int64_t seq = -1;
    size_t i;
    json_t *e;
    json_array_foreach(h->last_events, i, e)
    {
        if (strcmp(json_string_value(json_object_get(e, "type")), type) == 0)
            seq = json_integer_value(json_object_get(json_array_get(h->log, base + i), "seq"));
    }
    return seq;
}

static void check_refold(harness *h)
{
    char live[65], replayed[65];
    att_error err;
    CHECK_INT(att_state_hash(&h->room, live, &err), 0);
    CHECK_INT(harness_refold(h, replayed), 0);
    CHECK_STR(live, replayed);
}

static int rate(harness *h, int value)
{
    return harness_cmdf(h, att_room_actor(&h->room),
                        "{\"type\":\"turn\",\"step\":\"connection\",\"input\":{\"connection\":%d}}",
                        value);
}

/* --- one scenario per rule: each leaves the room right after the command
 * (or tick) that raised the suspicion --------------------------------- */

static void s_disconnect(harness *h)
{
    harness_start(h);
    harness_leave(h, ATT_ROLE_PARTNER_A);
    harness_tick(h, ATT_DEFAULT_DISCONNECT_GRACE_MS);
}

static void s_silence(harness *h)
{
    harness_start(h);
    harness_tick(h, 300000); /* what_happened: silence_ms 300000 */
}

static void s_reflection_rejected(harness *h)
{
    harness_start(h);
    goto_step(h, "reflect");
    harness_turn(h, 0);
    harness_turn(h, 1);
    harness_turn(h, 0);
    harness_turn(h, 1);
}

static void s_rating_low(harness *h)
{
    harness_start(h);
    goto_step(h, "connection");
    rate(h, 2);
}

static void s_rating_drop(harness *h)
{
    harness_start(h);
    goto_step(h, "connection");
    rate(h, 9);
    harness_cmd(h, ATT_ROLE_THERAPIST, "{\"type\":\"control\",\"action\":\"back\"}");
    rate(h, 5);
}

static void s_blaming_turn(harness *h)
{
    harness_start(h);
    harness_cmd(h, ATT_ROLE_PARTNER_A,
                "{\"type\":\"turn\",\"step\":\"what_happened\",\"input\":{\"what_happened\":"
                "\"" BLAMING "\"}}");
}

static void s_blaming_vocab_text(harness *h)
{
    harness_start(h);
    goto_step(h, "reactive");
    harness_cmd(h, ATT_ROLE_PARTNER_A,
                "{\"type\":\"turn\",\"step\":\"reactive\",\"input\":{\"reactive\":{\"id\":"
                "\"angry\",\"text\":\"" BLAMING "\"}}}");
}

static void s_blaming_respond(harness *h)
{
    harness_start(h);
    goto_step(h, "respond");
    harness_cmd(h, ATT_ROLE_PARTNER_B,
                "{\"type\":\"turn\",\"step\":\"respond\",\"input\":{\"response\":\"" BLAMING
                "\"}}");
}

static void s_blaming_attempt(harness *h)
{
    harness_start(h);
    harness_cmd(h, ATT_ROLE_PARTNER_B, "{\"type\":\"repair_attempt\",\"text\":\"" BLAMING "\"}");
}

typedef struct {
    const char *name;
    void (*raise)(harness *h);
    att_rupture_kind kind;
    const char *marker;
    att_role who, with;
    const char *step;
    int n_evidence;
} rule_case;

static const rule_case rules[] = {
    {"disconnect", s_disconnect, ATT_RK_WITHDRAWAL, "disconnect", ATT_ROLE_PARTNER_A,
     ATT_ROLE_PARTNER_B, "what_happened", 1},
    {"silence", s_silence, ATT_RK_WITHDRAWAL, "silence", ATT_ROLE_PARTNER_A, ATT_ROLE_PARTNER_B,
     "what_happened", 1},
    {"reflection rejected twice", s_reflection_rejected, ATT_RK_MISATTUNEMENT,
     "reflection_rejected", ATT_ROLE_PARTNER_B, ATT_ROLE_PARTNER_A, "check", 2},
    {"rating low", s_rating_low, ATT_RK_DISCONNECTION_FELT, "rating_low", ATT_ROLE_PARTNER_A,
     ATT_ROLE_PARTNER_B, "connection", 1},
    {"rating drop", s_rating_drop, ATT_RK_DISCONNECTION_FELT, "rating_drop", ATT_ROLE_PARTNER_A,
     ATT_ROLE_PARTNER_B, "connection", 1},
    {"blaming turn", s_blaming_turn, ATT_RK_CONFRONTATION, "blaming_language", ATT_ROLE_PARTNER_A,
     ATT_ROLE_PARTNER_B, "what_happened", 1},
    {"blaming vocab text", s_blaming_vocab_text, ATT_RK_CONFRONTATION, "blaming_language",
     ATT_ROLE_PARTNER_A, ATT_ROLE_PARTNER_B, "reactive", 1},
    {"blaming response", s_blaming_respond, ATT_RK_CONFRONTATION, "blaming_language",
     ATT_ROLE_PARTNER_B, ATT_ROLE_PARTNER_A, "respond", 1},
    {"blaming repair attempt", s_blaming_attempt, ATT_RK_CONFRONTATION, "blaming_language",
     ATT_ROLE_PARTNER_B, ATT_ROLE_PARTNER_A, "what_happened", 1},
};
#define N_RULES (sizeof rules / sizeof rules[0])

/* Raised: one rupture_suspected seen only by the staff, nothing opened. */
static void check_raised(harness *h, const rule_case *rc)
{
    CHECK_MSG(count_last(h, "rupture_suspected") == 1, "%s: not raised", rc->name);
    CHECK_MSG(count_last(h, "rupture_opened") == 0, "%s: opened a rupture", rc->name);
    CHECK_MSG(count_last(h, "rupture_confirmed") == 0, "%s", rc->name);
    CHECK_MSG(h->room.n_ruptures == 0, "%s: %d ruptures", rc->name, h->room.n_ruptures);
    CHECK_MSG(h->room.n_suspicions == 1, "%s: %d suspicions", rc->name, h->room.n_suspicions);
    json_t *ev = harness_last_event(h, "rupture_suspected");
    CHECK_MSG(audience_of(h, ev) == STAFF, "%s: audience %u", rc->name, audience_of(h, ev));
    CHECK_STR(json_string_value(json_object_get(ev, "by")), "system");
    json_t *r = json_object_get(ev, "rupture");
    CHECK_INT(json_integer_value(json_object_get(r, "id")), 1);
    CHECK_STR(json_string_value(json_object_get(r, "source")), "detector");
    CHECK_MSG(json_array_size(json_object_get(r, "evidence")) == (size_t)rc->n_evidence, "%s",
              rc->name);
    const att_suspicion *s = harness_suspicion(h, 1);
    CHECK(s != NULL);
    if (!s)
        return;
    CHECK_INT(s->status, ATT_SS_SUSPECTED);
    CHECK_MSG(s->open.kind == rc->kind, "%s: kind %d", rc->name, s->open.kind);
    CHECK_STR(s->open.marker, rc->marker);
    CHECK_INT(s->open.source, ATT_SRC_DETECTOR);
    CHECK_MSG(s->open.who == rc->who && s->open.with == rc->with, "%s: who %d with %d", rc->name,
              s->open.who, s->open.with);
    CHECK_MSG(s->open.step == step_index(h, rc->step), "%s: step %d", rc->name, s->open.step);
    CHECK_INT(s->open.n_evidence, rc->n_evidence);
    CHECK_INT(s->raised_seq, last_seq_of(h, "rupture_suspected"));
    CHECK_INT(s->raised_at, h->now);
    int blame = strcmp(rc->marker, "blaming_language") == 0;
    CHECK_MSG((s->open.blame_class != ATT_BLAME_NONE) == blame, "%s: class %d", rc->name,
              s->open.blame_class);
    CHECK_MSG((json_object_get(r, "class") != NULL) == blame, "%s: class in the event", rc->name);
    /* evidence names room-log events that exist */
    for (int i = 0; i < s->open.n_evidence; i++)
        CHECK(s->open.evidence[i] >= 1 && s->open.evidence[i] <= h->room.seq);
    /* the therapist's state lists it; partners' states know nothing of it */
    json_t *st = harness_state(&h->room, ATT_ROLE_THERAPIST, 1);
    json_t *js = json_array_get(json_object_get(st, "suspicions"), 0);
    CHECK_STR(json_string_value(json_object_get(js, "status")), "suspected");
    CHECK_STR(json_string_value(json_object_get(js, "marker")), rc->marker);
    CHECK(json_is_null(json_object_get(js, "rupture_id")));
    CHECK(json_is_null(json_object_get(js, "decided_at")));
    CHECK_INT(json_array_size(json_object_get(st, "ruptures")), 0);
    json_decref(st);
    for (int p = 0; p < 2; p++) {
        st = harness_state(&h->room, (att_role)p, 1);
        CHECK(json_object_get(st, "suspicions") == NULL);
        CHECK_INT(json_array_size(json_object_get(st, "ruptures")), 0);
        json_decref(st);
    }
}

static void test_rules_only_suggest(void)
{
    for (size_t i = 0; i < N_RULES; i++) {
        harness h;
        harness_init(&h, "enactment");
        rules[i].raise(&h);
        check_raised(&h, &rules[i]);
        check_refold(&h);
        harness_free(&h);
    }
}

static void test_confirm_every_rule(void)
{
    for (size_t i = 0; i < N_RULES; i++) {
        const rule_case *rc = &rules[i];
        harness h;
        harness_init(&h, "enactment");
        rc->raise(&h);
        /* a therapist mark first, so the confirmed one takes the next rupture id (2) */
        CHECK_INT(harness_cmd(&h, ATT_ROLE_THERAPIST,
                              "{\"type\":\"rupture_mark\",\"kind\":\"withdrawal\",\"marker\":"
                              "\"minimal_response\",\"who\":\"partner_b\",\"with\":"
                              "\"therapist\"}"),
                  0);
        CHECK_INT(h.room.next_rupture_id, 2);
        const att_suspicion s0 = *harness_suspicion(&h, 1);
        CHECK_INT(harness_cmd(&h, ATT_ROLE_THERAPIST,
                              "{\"type\":\"rupture_confirm\",\"suspicion_id\":1,\"note\":\"I saw "
                              "it too\"}"),
                  0);
        CHECK_MSG(h.last_n == 3, "%s: %d events", rc->name, h.last_n);
        json_t *conf = json_array_get(h.last_events, 0);
        json_t *op = json_array_get(h.last_events, 1);
        json_t *note = json_array_get(h.last_events, 2);
        CHECK_STR(json_string_value(json_object_get(conf, "type")), "rupture_confirmed");
        CHECK_INT(json_integer_value(json_object_get(conf, "suspicion_id")), 1);
        CHECK_INT(json_integer_value(json_object_get(conf, "rupture_id")), 2);
        CHECK(json_object_get(conf, "rupture") == NULL);
        CHECK_INT(audience_of(&h, conf), STAFF);
        CHECK_STR(json_string_value(json_object_get(op, "type")), "rupture_opened");
        CHECK_INT(audience_of(&h, op), ALL);
        CHECK_STR(json_string_value(json_object_get(op, "by")), "therapist");
        json_t *r = json_object_get(op, "rupture");
        CHECK_INT(json_integer_value(json_object_get(r, "id")), 2);
        CHECK_STR(json_string_value(json_object_get(r, "source")), "detector");
        CHECK_STR(json_string_value(json_object_get(r, "marker")), rc->marker);
        CHECK_MSG(json_object_get(r, "evidence") == NULL, "%s: evidence in rupture_opened",
                  rc->name);
        CHECK_MSG(json_object_get(r, "class") == NULL, "%s: class in rupture_opened", rc->name);
        CHECK_STR(json_string_value(json_object_get(note, "type")), "note");
        CHECK_INT(json_integer_value(json_object_get(note, "rupture_id")), 2);
        CHECK_INT(json_integer_value(json_object_get(note, "suspicion_id")), 1);
        CHECK_INT(audience_of(&h, note), STAFF);
        /* the fold: the suspicion is confirmed, the rupture keeps its origin */
        const att_suspicion *s = harness_suspicion(&h, 1);
        CHECK_INT(s->status, ATT_SS_CONFIRMED);
        CHECK_INT(s->rupture_id, 2);
        CHECK_INT(s->decided_at, h.now);
        const att_rupture *rup = harness_rupture(&h, 2);
        CHECK(rup != NULL);
        if (rup) {
            CHECK_INT(rup->status, ATT_RS_OPEN);
            CHECK_INT(rup->confirmed, 1);
            CHECK_INT(rup->suspicion_id, 1);
            CHECK_INT(rup->open.n_evidence, s0.open.n_evidence);
            CHECK(memcmp(rup->open.evidence, s0.open.evidence,
                         sizeof(int64_t) * (size_t)s0.open.n_evidence) == 0);
            CHECK(rup->open.who == rc->who && rup->open.with == rc->with);
            CHECK_INT(rup->opened_at, h.now);
        }
        CHECK_INT(h.room.next_rupture_id, 3);
        CHECK_INT(h.room.next_suspicion_id, 2);
        json_t *st = harness_state(&h.room, ATT_ROLE_THERAPIST, 1);
        json_t *jr = json_array_get(json_object_get(st, "ruptures"), 1);
        CHECK(json_is_true(json_object_get(jr, "confirmed")));
        CHECK_INT(json_integer_value(json_object_get(jr, "suspicion_id")), 1);
        CHECK_INT(json_array_size(json_object_get(jr, "evidence")), s0.open.n_evidence);
        CHECK_INT(json_integer_value(json_array_get(json_object_get(jr, "evidence"), 0)),
                  s0.open.evidence[0]);
        json_t *js = json_array_get(json_object_get(st, "suspicions"), 0);
        CHECK_STR(json_string_value(json_object_get(js, "status")), "confirmed");
        CHECK_INT(json_integer_value(json_object_get(js, "rupture_id")), 2);
        json_t *mark = json_array_get(json_object_get(st, "ruptures"), 0);
        CHECK(json_is_false(json_object_get(mark, "confirmed")));
        CHECK(json_is_null(json_object_get(mark, "suspicion_id")));
        json_decref(st);
        st = harness_state(&h.room, ATT_ROLE_PARTNER_A, 1);
        jr = json_array_get(json_object_get(st, "ruptures"), 1);
        CHECK_INT(json_integer_value(json_object_get(jr, "id")), 2);
        CHECK(json_object_get(jr, "confirmed") == NULL);
        CHECK(json_object_get(jr, "suspicion_id") == NULL);
        CHECK(json_object_get(jr, "evidence") == NULL);
        CHECK(json_object_get(jr, "opened_seq") == NULL);
        json_decref(st);
        /* twice, or dismissing what was confirmed: not_found */
        CHECK_INT(harness_cmd(&h, ATT_ROLE_THERAPIST,
                              "{\"type\":\"rupture_confirm\",\"suspicion_id\":1}"),
                  ATT_ERR_NOT_FOUND);
        CHECK_INT(harness_cmd(&h, ATT_ROLE_THERAPIST,
                              "{\"type\":\"rupture_dismiss\",\"suspicion_id\":1}"),
                  ATT_ERR_NOT_FOUND);
        /* the confirmed rupture is repaired like any other */
        CHECK_INT(harness_cmd(&h, ATT_ROLE_THERAPIST,
                              "{\"type\":\"rupture_repair\",\"rupture_id\":2,\"strategy\":"
                              "\"empathize\"}"),
                  0);
        CHECK_INT(harness_rupture(&h, 2)->status, ATT_RS_REPAIRED);
        check_refold(&h);
        harness_free(&h);
    }
}

static void test_dismiss_every_rule(void)
{
    for (size_t i = 0; i < N_RULES; i++) {
        const rule_case *rc = &rules[i];
        harness h;
        harness_init(&h, "enactment");
        rc->raise(&h);
        int64_t seq = h.room.seq;
        int64_t partner_seq = h.room.aud_seq[ATT_ROLE_PARTNER_A];
        CHECK_INT(harness_cmd(&h, ATT_ROLE_THERAPIST,
                              "{\"type\":\"rupture_dismiss\",\"suspicion_id\":1,\"note\":\"a "
                              "false alarm\"}"),
                  0);
        CHECK_INT(h.last_n, 1);
        json_t *d = harness_last_event(&h, "rupture_dismissed");
        CHECK(d != NULL);
        CHECK_INT(json_integer_value(json_object_get(d, "suspicion_id")), 1);
        CHECK_STR(json_string_value(json_object_get(d, "note")), "a false alarm");
        CHECK(json_object_get(d, "rupture_id") == NULL);
        CHECK_INT(audience_of(&h, d), STAFF);
        CHECK_INT(h.room.seq, seq + 1);
        CHECK_INT(h.room.aud_seq[ATT_ROLE_PARTNER_A], partner_seq);
        const att_suspicion *s = harness_suspicion(&h, 1);
        CHECK_INT(s->status, ATT_SS_DISMISSED);
        CHECK_INT(s->rupture_id, 0);
        CHECK_INT(s->decided_at, h.now);
        CHECK_INT(h.room.n_ruptures, 0);
        CHECK_INT(h.room.next_rupture_id, 1);
        json_t *st = harness_state(&h.room, ATT_ROLE_THERAPIST, 1);
        CHECK_STR(json_string_value(json_object_get(
                      json_array_get(json_object_get(st, "suspicions"), 0), "status")),
                  "dismissed");
        json_decref(st);
        CHECK_INT(harness_cmd(&h, ATT_ROLE_THERAPIST,
                              "{\"type\":\"rupture_dismiss\",\"suspicion_id\":1}"),
                  ATT_ERR_NOT_FOUND);
        CHECK_INT(harness_cmd(&h, ATT_ROLE_THERAPIST,
                              "{\"type\":\"rupture_confirm\",\"suspicion_id\":1}"),
                  ATT_ERR_NOT_FOUND);
        check_refold(&h);
        harness_free(&h);
    }
}

static void test_review_refusals(void)
{
    harness h;
    harness_init(&h, "enactment");
    s_blaming_turn(&h);
    /* no such suspicion; a dismiss without a note is fine */
    CHECK_INT(
        harness_cmd(&h, ATT_ROLE_THERAPIST, "{\"type\":\"rupture_confirm\",\"suspicion_id\":2}"),
        ATT_ERR_NOT_FOUND);
    CHECK_INT(
        harness_cmd(&h, ATT_ROLE_THERAPIST, "{\"type\":\"rupture_dismiss\",\"suspicion_id\":9}"),
        ATT_ERR_NOT_FOUND);
    /* only the therapist reviews */
    for (int r = 0; r < 4; r++) {
        if (r == ATT_ROLE_THERAPIST)
            continue;
        CHECK_INT(harness_cmd(&h, (att_role)r, "{\"type\":\"rupture_confirm\",\"suspicion_id\":1}"),
                  ATT_ERR_FORBIDDEN);
        CHECK_INT(harness_cmd(&h, (att_role)r, "{\"type\":\"rupture_dismiss\",\"suspicion_id\":1}"),
                  ATT_ERR_FORBIDDEN);
    }
    /* a suspicion is not a rupture: it cannot be repaired or named by a repair attempt */
    CHECK_INT(harness_cmd(&h, ATT_ROLE_THERAPIST,
                          "{\"type\":\"rupture_repair\",\"rupture_id\":1,\"strategy\":"
                          "\"empathize\"}"),
              ATT_ERR_NOT_FOUND);
    CHECK_INT(harness_cmd(&h, ATT_ROLE_PARTNER_B, "{\"type\":\"repair_attempt\",\"rupture_id\":1}"),
              ATT_ERR_NOT_FOUND);
    /* a note may name the suspicion */
    CHECK_INT(harness_cmd(&h, ATT_ROLE_THERAPIST,
                          "{\"type\":\"note\",\"text\":\"watch this\",\"suspicion_id\":1}"),
              0);
    CHECK_INT(json_integer_value(json_object_get(harness_last_event(&h, "note"), "suspicion_id")),
              1);
    CHECK_INT(harness_cmd(&h, ATT_ROLE_THERAPIST,
                          "{\"type\":\"note\",\"text\":\"watch this\",\"suspicion_id\":2}"),
              ATT_ERR_NOT_FOUND);
    CHECK_INT(
        harness_cmd(&h, ATT_ROLE_THERAPIST, "{\"type\":\"rupture_dismiss\",\"suspicion_id\":1}"),
        0);
    CHECK(json_object_get(harness_last_event(&h, "rupture_dismissed"), "note") == NULL);
    /* the review goes on after the end */
    CHECK_INT(harness_cmd(&h, ATT_ROLE_PARTNER_A,
                          "{\"type\":\"turn\",\"step\":\"reactive\",\"input\":{\"reactive\":{"
                          "\"id\":\"angry\",\"text\":\"" BLAMING "\"}}}"),
              0);
    CHECK_INT(h.room.n_suspicions, 2);
    CHECK_INT(harness_cmd(&h, ATT_ROLE_THERAPIST, "{\"type\":\"control\",\"action\":\"end\"}"), 0);
    CHECK_INT(
        harness_cmd(&h, ATT_ROLE_THERAPIST, "{\"type\":\"rupture_confirm\",\"suspicion_id\":2}"),
        0);
    CHECK_INT(harness_rupture(&h, 1)->open.step, harness_suspicion(&h, 2)->open.step);
    check_refold(&h);
    harness_free(&h);
}

/* --- disconnect ----------------------------------------------------------- */

static void test_disconnect(void)
{
    harness h;
    harness_init(&h, "enactment");
    harness_start(&h);
    /* a brief drop on one's own turn raises nothing, now or later */
    CHECK_INT(harness_leave(&h, ATT_ROLE_PARTNER_A), 0);
    CHECK_INT(h.last_n, 1);
    int64_t away = h.now;
    CHECK_INT(att_detector_next_deadline(&h.room, 0), away + ATT_DEFAULT_DISCONNECT_GRACE_MS);
    CHECK_INT(harness_tick(&h, ATT_DEFAULT_DISCONNECT_GRACE_MS - 2000), 0);
    CHECK_INT(harness_join(&h, ATT_ROLE_PARTNER_A), 0);
    CHECK_INT(h.last_n, 1);
    CHECK_INT(h.room.n_suspicions, 0);
    /* back: the silence clock restarts from the join */
    CHECK_INT(h.room.step_started_at, h.now);
    CHECK_INT(att_detector_next_deadline(&h.room, 0), h.now + 300000);
    CHECK_INT(harness_tick(&h, ATT_DEFAULT_DISCONNECT_GRACE_MS * 2), 0);
    CHECK_INT(h.room.n_suspicions, 0);

    /* a long absence raises one suspicion, once, with the `left` as evidence */
    CHECK_INT(harness_leave(&h, ATT_ROLE_PARTNER_A), 0);
    int64_t left_seq = h.room.seq;
    CHECK_INT(harness_tick(&h, ATT_DEFAULT_DISCONNECT_GRACE_MS - 1), 0);
    CHECK_INT(harness_tick(&h, 1), 1);
    const att_suspicion *s = harness_last_suspicion(&h);
    CHECK_STR(s->open.marker, "disconnect");
    CHECK_INT(s->open.evidence[0], left_seq);
    CHECK_INT(s->raised_at, h.now);
    CHECK_INT(att_detector_next_deadline(&h.room, 0), -1);
    CHECK_INT(harness_tick(&h, ATT_DEFAULT_DISCONNECT_GRACE_MS * 10), 0);
    CHECK_INT(h.room.n_suspicions, 1);
    /* coming back repairs nothing: the suspicion is the therapist's to review */
    CHECK_INT(harness_join(&h, ATT_ROLE_PARTNER_A), 0);
    CHECK_INT(h.last_n, 1);
    CHECK_INT(harness_suspicion(&h, 1)->status, ATT_SS_SUSPECTED);

    /* the other partner away on someone else's turn: nothing */
    CHECK_INT(harness_leave(&h, ATT_ROLE_PARTNER_B), 0);
    CHECK_INT(harness_tick(&h, ATT_DEFAULT_DISCONNECT_GRACE_MS * 2), 0);
    CHECK_INT(h.room.n_suspicions, 1);
    CHECK_INT(harness_join(&h, ATT_ROLE_PARTNER_B), 0);

    /* the server shutting down is not a withdrawal */
    CHECK_INT(harness_leave_reason(&h, ATT_ROLE_PARTNER_A, ATT_LEFT_SHUTDOWN), 0);
    CHECK_INT(h.last_n, 1);
    CHECK_INT(att_detector_next_deadline(&h.room, 0), -1);
    CHECK_INT(harness_tick(&h, ATT_DEFAULT_DISCONNECT_GRACE_MS * 2), 0);
    CHECK_INT(h.room.n_suspicions, 1);
    CHECK_INT(harness_join(&h, ATT_ROLE_PARTNER_A), 0);

    /* confirmed while away: the return repairs it (reconnect) */
    CHECK_INT(harness_leave_reason(&h, ATT_ROLE_PARTNER_A, ATT_LEFT_TIMEOUT), 0);
    CHECK_INT(harness_tick(&h, ATT_DEFAULT_DISCONNECT_GRACE_MS), 1);
    int sid = harness_last_suspicion(&h)->open.id;
    CHECK_INT(sid, 2);
    CHECK_INT(harness_cmdf(&h, ATT_ROLE_THERAPIST,
                           "{\"type\":\"rupture_confirm\",\"suspicion_id\":%d}", sid),
              0);
    const att_rupture *r = harness_last_rupture(&h);
    CHECK_INT(r->open.id, 1);
    CHECK_INT(r->status, ATT_RS_OPEN);
    CHECK_INT(harness_join(&h, ATT_ROLE_PARTNER_A), 0);
    CHECK_INT(h.last_n, 2);
    r = harness_rupture(&h, 1);
    CHECK_INT(r->status, ATT_RS_REPAIRED);
    CHECK_INT(r->repair_how, ATT_HOW_RECONNECT);
    CHECK_INT(r->repair_by, ATT_ROLE_PARTNER_A);

    /* a `left` recorded late (the server waits out its presence window)
     * counts the grace from when they went, not from when it was recorded */
    int64_t went = h.now + 1;
    CHECK_INT(harness_leave_at(&h, ATT_ROLE_PARTNER_A, went), 0);
    CHECK(h.now > went);
    CHECK_INT(h.room.away_since[ATT_ROLE_PARTNER_A], went);
    CHECK_INT(att_detector_next_deadline(&h.room, 0), went + ATT_DEFAULT_DISCONNECT_GRACE_MS);
    int n_before = h.room.n_suspicions;
    CHECK_INT(harness_tick(&h, went + ATT_DEFAULT_DISCONNECT_GRACE_MS - 1 - h.now), 0);
    CHECK_INT(harness_tick(&h, 1), 1);
    CHECK_INT(h.room.n_suspicions, n_before + 1);
    CHECK_STR(harness_last_suspicion(&h)->open.marker, "disconnect");
    /* a `reconnected` (drops that came back in the window) raises and
     * repairs nothing: the log still shows them as they were */
    CHECK_INT(harness_join(&h, ATT_ROLE_PARTNER_A), 0);
    n_before = h.room.n_suspicions;
    CHECK_INT(harness_reconnected(&h, ATT_ROLE_PARTNER_A, 3, 4200), 0);
    CHECK_INT(h.last_n, 1);
    CHECK_INT(h.room.n_suspicions, n_before);
    CHECK_INT(h.room.present[ATT_ROLE_PARTNER_A], 1);
    check_refold(&h);
    harness_free(&h);

    /* the grace comes from the room's config */
    att_room_config cfg = {.silence_ms = 0, .disconnect_grace_ms = 5000};
    harness_init_with(&h, harness_catalog(), "enactment", &cfg);
    harness_start(&h);
    CHECK_INT(h.room.config.disconnect_grace_ms, 5000);
    CHECK_INT(h.room.config.silence_ms, ATT_DEFAULT_SILENCE_MS);
    CHECK_INT(harness_leave(&h, ATT_ROLE_PARTNER_A), 0);
    CHECK_INT(att_detector_next_deadline(&h.room, 0), h.now + 5000);
    CHECK_INT(harness_tick(&h, 4999), 0);
    CHECK_INT(harness_tick(&h, 1), 1);
    harness_free(&h);
}

/* --- silence -------------------------------------------------------------- */

/* Every step of every exercise: the step's own silence_ms, 0 = never. */
static void test_silence_per_step(void)
{
    const att_catalog *cat = harness_catalog();
    int checked = 0, never = 0;
    for (size_t si = 0; si < att_catalog_script_count(cat); si++) {
        const att_script *sc = att_catalog_script_at(cat, si);
        for (size_t k = 0; k < sc->n_steps; k++) {
            harness h;
            harness_init(&h, sc->id);
            harness_start(&h);
            int guard = 0;
            while ((size_t)h.room.step != k && guard++ < 100)
                CHECK_INT(harness_turn(&h, 0), 0);
            att_role actor = att_room_actor(&h.room);
            long long ms = sc->steps[k].silence_ms;
            if (!att_role_is_partner(actor)) {
                /* the therapist's own steps are never timed */
                CHECK_INT(att_detector_next_deadline(&h.room, 0), -1);
                CHECK_INT(harness_tick(&h, 3600000), 0);
                harness_free(&h);
                continue;
            }
            int64_t expect = ms < 0 ? ATT_DEFAULT_SILENCE_MS : ms;
            if (expect == 0) {
                CHECK_MSG(att_detector_next_deadline(&h.room, 0) == -1, "%s/%s", sc->id,
                          sc->steps[k].id);
                CHECK_INT(harness_tick(&h, 10 * 3600000LL), 0);
                CHECK_INT(h.room.n_suspicions, 0);
                never++;
            } else {
                CHECK_MSG(att_detector_next_deadline(&h.room, 0) == h.room.step_started_at + expect,
                          "%s/%s", sc->id, sc->steps[k].id);
                CHECK_INT(harness_tick(&h, h.room.step_started_at + expect - 1 - h.now), 0);
                CHECK_INT(harness_tick(&h, 1), 1);
                const att_suspicion *s = harness_last_suspicion(&h);
                CHECK_STR(s->open.marker, "silence");
                CHECK_INT(s->open.who, actor);
                CHECK_INT(s->open.step, (int)k);
                CHECK_INT(s->open.evidence[0], h.room.step_started_seq);
                /* once per step */
                CHECK_INT(att_detector_next_deadline(&h.room, 0), -1);
                CHECK_INT(harness_tick(&h, expect * 3), 0);
            }
            checked++;
            harness_free(&h);
        }
    }
    CHECK(checked >= 20);
    CHECK(never >= 5);
}

static void test_silence_typing_and_pauses(void)
{
    harness h;
    harness_init(&h, "enactment");
    harness_start(&h);
    int64_t start = h.room.step_started_at;
    CHECK_INT(att_detector_next_deadline(&h.room, 0), start + 300000);
    /* typing is content-free: acknowledged, nothing recorded; only partners send it */
    CHECK_INT(harness_cmd(&h, ATT_ROLE_PARTNER_A, "{\"type\":\"typing\"}"), 0);
    CHECK_INT(h.last_n, 0);
    CHECK_INT(harness_cmd(&h, ATT_ROLE_PARTNER_B, "{\"type\":\"typing\"}"), 0);
    CHECK_INT(harness_cmd(&h, ATT_ROLE_THERAPIST, "{\"type\":\"typing\"}"), ATT_ERR_FORBIDDEN);
    CHECK_INT(harness_cmd(&h, ATT_ROLE_OBSERVER, "{\"type\":\"typing\"}"), ATT_ERR_FORBIDDEN);
    /* composing pushes the deadline; an old signal does not pull it in */
    int64_t typed = start + 200000;
    CHECK_INT(att_detector_next_deadline(&h.room, typed), typed + 300000);
    CHECK_INT(att_detector_next_deadline(&h.room, start - 50000), start + 300000);
    CHECK_INT(harness_tick_composing(&h, start + 300000 - h.now, typed), 0);
    CHECK_INT(harness_tick_composing(&h, 199999, typed), 0);
    CHECK_INT(h.now, typed + 299999);
    CHECK_INT(harness_tick_composing(&h, 1, typed), 1);
    CHECK_STR(harness_last_suspicion(&h)->open.marker, "silence");
    /* the turn moves on: the next step is timed from its start again */
    CHECK_INT(harness_turn(&h, 0), 0);
    CHECK_INT(att_detector_next_deadline(&h.room, typed), h.room.step_started_at + 300000);
    /* confirmed silence is repaired when the partner takes their turn (resumed) */
    CHECK_INT(harness_tick(&h, 300000), 1);
    int sid = harness_last_suspicion(&h)->open.id;
    CHECK_INT(harness_cmdf(&h, ATT_ROLE_THERAPIST,
                           "{\"type\":\"rupture_confirm\",\"suspicion_id\":%d}", sid),
              0);
    CHECK_INT(att_detector_next_deadline(&h.room, 0), -1);
    CHECK_INT(harness_turn(&h, 0), 0);
    const att_rupture *r = harness_rupture(&h, 1);
    CHECK_INT(r->status, ATT_RS_REPAIRED);
    CHECK_INT(r->repair_how, ATT_HOW_RESUMED);
    CHECK_INT(r->repair_by, ATT_ROLE_PARTNER_A);
    harness_free(&h);

    /* confirmed after the partner moved on: the new step is still timed */
    harness_init(&h, "enactment");
    harness_start(&h);
    CHECK_INT(harness_tick(&h, 300000), 1);
    CHECK_INT(harness_turn(&h, 0), 0);
    int64_t deadline = h.room.step_started_at + 300000;
    CHECK_INT(att_detector_next_deadline(&h.room, 0), deadline);
    CHECK_INT(
        harness_cmd(&h, ATT_ROLE_THERAPIST, "{\"type\":\"rupture_confirm\",\"suspicion_id\":1}"),
        0);
    CHECK_INT(att_detector_next_deadline(&h.room, 0), deadline);
    CHECK_INT(harness_tick(&h, deadline - h.now), 1);
    CHECK_INT(harness_last_suspicion(&h)->open.step, 1);
    check_refold(&h);
    harness_free(&h);

    /* an unconfirmed silence is left alone when the partner answers */

    harness_init(&h, "enactment");
    harness_start(&h);
    CHECK_INT(harness_tick(&h, 300000), 1);
    CHECK_INT(harness_turn(&h, 0), 0);
    CHECK_INT(count_last(&h, "rupture_repaired"), 0);
    CHECK_INT(harness_suspicion(&h, 1)->status, ATT_SS_SUSPECTED);
    /* paused, checking in, waiting for consent, ended: never silent */
    CHECK_INT(harness_cmd(&h, ATT_ROLE_THERAPIST, "{\"type\":\"control\",\"action\":\"pause\"}"),
              0);
    CHECK_INT(att_detector_next_deadline(&h.room, 0), -1);
    CHECK_INT(harness_tick(&h, 3600000), 0);
    CHECK_INT(harness_cmd(&h, ATT_ROLE_THERAPIST, "{\"type\":\"control\",\"action\":\"resume\"}"),
              0);
    CHECK_INT(att_detector_next_deadline(&h.room, 0),
              h.now + 300000); /* resume restarts the clock */
    CHECK_INT(harness_cmd(&h, ATT_ROLE_THERAPIST, "{\"type\":\"control\",\"action\":\"end\"}"), 0);
    CHECK_INT(att_detector_next_deadline(&h.room, 0), -1);
    CHECK_INT(harness_tick(&h, 3600000), 0);
    harness_free(&h);

    harness_init(&h, "enactment");
    harness_join(&h, ATT_ROLE_PARTNER_A);
    CHECK_INT(att_detector_next_deadline(&h.room, 0), -1);
    harness_start_consented(&h);
    CHECK_INT(h.room.status, ATT_STATUS_CHECKING_IN);
    CHECK_INT(att_detector_next_deadline(&h.room, 0), -1);
    CHECK_INT(harness_tick(&h, 3600000), 0);
    /* the session begins when the check-in completes: the clock starts there */
    CHECK_INT(harness_checkin(&h, ATT_ROLE_PARTNER_A, "yes"), 0);
    CHECK_INT(harness_checkin(&h, ATT_ROLE_PARTNER_B, "yes"), 0);
    CHECK_INT(att_detector_next_deadline(&h.room, 0), h.now + 300000);
    harness_free(&h);
}

/* A step without silence_ms takes the room's default: a copy of the
 * protocol directory whose what_happened step has none. */
static void test_silence_room_default(void)
{
    char dir[] = "/tmp/attune-detector-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "cp -R '%s/.' '%s/'", ATTUNE_PROTOCOL_DIR, dir);
    CHECK_INT(system(cmd), 0);
    char path[600];
    snprintf(path, sizeof path, "%s/exercises/enactment.json", dir);
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr);
    CHECK(root != NULL);
    json_object_del(json_array_get(json_object_get(root, "steps"), 0), "silence_ms");
    CHECK_INT(json_dump_file(root, path, JSON_INDENT(1)), 0);
    json_decref(root);
    att_catalog *cat = NULL;
    att_error err = {0};
    CHECK_MSG(att_catalog_load_dir(dir, &cat, &err) == 0, "%s", err.message);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK_INT(system(cmd), 0);
    if (!cat)
        return;
    const att_script *sc = att_catalog_script(cat, "enactment");
    CHECK_INT(sc->steps[0].silence_ms, -1);
    CHECK_INT(sc->steps[1].silence_ms, 300000);
    for (int c = 0; c < 2; c++) {
        att_room_config cfg = {.silence_ms = c ? 45000 : 0};
        int64_t expect = c ? 45000 : ATT_DEFAULT_SILENCE_MS;
        harness h;
        harness_init_with(&h, cat, "enactment", &cfg);
        harness_start(&h);
        CHECK_INT(att_detector_next_deadline(&h.room, 0), h.room.step_started_at + expect);
        CHECK_INT(harness_tick(&h, expect - 1), 0);
        CHECK_INT(harness_tick(&h, 1), 1);
        CHECK_STR(harness_last_suspicion(&h)->open.marker, "silence");
        /* the next step has its own threshold, whatever the room's */
        CHECK_INT(harness_turn(&h, 0), 0);
        CHECK_INT(att_detector_next_deadline(&h.room, 0), h.room.step_started_at + 300000);
        harness_free(&h);
    }
    att_catalog_free(cat);
}

/* --- the other rules in detail ---------------------------------------------- */

static void test_reflection_rejected(void)
{
    harness h;
    harness_init(&h, "enactment");
    harness_start(&h);
    goto_step(&h, "reflect");
    CHECK_INT(harness_turn(&h, 0), 0); /* reflection 1 */
    CHECK_INT(harness_turn(&h, 1), 0); /* rejected once */
    int64_t first = h.room.seq;
    CHECK_INT(h.room.n_suspicions, 0);
    CHECK_INT(harness_turn(&h, 0), 0); /* reflection 2 */
    CHECK_INT(harness_turn(&h, 1), 0); /* rejected twice */
    CHECK_INT(h.room.n_suspicions, 1);
    const att_suspicion *s = harness_last_suspicion(&h);
    CHECK_INT(s->open.evidence[0], first);
    CHECK_INT(s->open.evidence[1], h.room.seq - 1);
    CHECK_INT(harness_turn(&h, 0), 0); /* reflection 3 */
    CHECK_INT(harness_turn(&h, 1), 0); /* a third rejection: no second suspicion */
    CHECK_INT(h.room.n_suspicions, 1);
    /* the therapist confirms it; the next reflection that lands repairs it */
    CHECK_INT(
        harness_cmd(&h, ATT_ROLE_THERAPIST, "{\"type\":\"rupture_confirm\",\"suspicion_id\":1}"),
        0);
    CHECK_INT(harness_turn(&h, 0), 0);
    CHECK_INT(harness_turn(&h, 0), 0); /* "yes, that's it" */
    const att_rupture *r = harness_rupture(&h, 1);
    CHECK_INT(r->status, ATT_RS_REPAIRED);
    CHECK_INT(r->repair_how, ATT_HOW_REFLECTION_CONFIRMED);
    CHECK_INT(r->repair_by, ATT_ROLE_PARTNER_A);
    check_refold(&h);
    harness_free(&h);
    /* unconfirmed, a landed reflection repairs nothing */
    harness_init(&h, "enactment");
    s_reflection_rejected(&h);
    CHECK_INT(harness_turn(&h, 0), 0);
    CHECK_INT(harness_turn(&h, 0), 0);
    CHECK_INT(count_last(&h, "rupture_repaired"), 0);
    CHECK_INT(h.room.n_ruptures, 0);
    harness_free(&h);
}

static void test_ratings(void)
{
    harness h;
    harness_init(&h, "enactment");
    harness_start(&h);
    goto_step(&h, "connection");
    CHECK_INT(rate(&h, 4), 0); /* 4 is not low */
    CHECK_INT(h.room.n_suspicions, 0);
    CHECK_INT(h.room.last_rating[ATT_ROLE_PARTNER_A], 4);
    goto_step(&h, "connection");
    CHECK_INT(rate(&h, 3), 0); /* partner_b: 3 is low */
    CHECK_INT(h.room.n_suspicions, 1);
    CHECK_STR(harness_last_suspicion(&h)->open.marker, "rating_low");
    CHECK_INT(harness_last_suspicion(&h)->open.who, ATT_ROLE_PARTNER_B);
    CHECK_INT(harness_last_suspicion(&h)->open.evidence[0], h.room.seq - 1);
    harness_free(&h);

    harness_init(&h, "enactment");
    harness_start(&h);
    goto_step(&h, "connection");
    CHECK_INT(rate(&h, 9), 0);
    CHECK_INT(harness_cmd(&h, ATT_ROLE_THERAPIST, "{\"type\":\"control\",\"action\":\"back\"}"), 0);
    CHECK_INT(rate(&h, 7), 0); /* a drop of 2: fine */
    CHECK_INT(h.room.n_suspicions, 0);
    CHECK_INT(harness_cmd(&h, ATT_ROLE_THERAPIST, "{\"type\":\"control\",\"action\":\"back\"}"), 0);
    CHECK_INT(rate(&h, 4), 0); /* a drop of 3 */
    CHECK_INT(h.room.n_suspicions, 1);
    CHECK_STR(harness_last_suspicion(&h)->open.marker, "rating_drop");
    CHECK_INT(harness_cmd(&h, ATT_ROLE_THERAPIST, "{\"type\":\"control\",\"action\":\"back\"}"), 0);
    CHECK_INT(rate(&h, 0), 0); /* low wins over a drop: one suspicion */
    CHECK_INT(h.room.n_suspicions, 2);
    CHECK_STR(harness_last_suspicion(&h)->open.marker, "rating_low");
    CHECK_INT(count_last(&h, "rupture_suspected"), 1);
    harness_free(&h);
}

/* Text that is never scanned, however blaming. */
static void test_never_scanned(void)
{
    harness h;
    harness_init(&h, "enactment");
    harness_start(&h);
    /* the listener's reflection: the partner's words said back */
    goto_step(&h, "reflect");
    CHECK_INT(harness_cmd(&h, ATT_ROLE_PARTNER_B,
                          "{\"type\":\"turn\",\"step\":\"reflect\",\"input\":{\"reflection\":"
                          "\"" BLAMING "\"}}"),
              0);
    CHECK_INT(h.room.n_suspicions, 0);
    /* the speaker's correction on the check step is scanned (not a reflection) */
    CHECK_INT(harness_cmd(&h, ATT_ROLE_PARTNER_A,
                          "{\"type\":\"turn\",\"step\":\"check\",\"input\":{\"landed\":\"yes\","
                          "\"what_i_meant\":\"" BLAMING "\"}}"),
              0);
    CHECK_INT(h.room.n_suspicions, 1);
    /* the private line, both ways */
    CHECK_INT(harness_cmd(&h, ATT_ROLE_PARTNER_A,
                          "{\"type\":\"private_message\",\"text\":\"" BLAMING "\"}"),
              0);
    CHECK_INT(harness_cmd(&h, ATT_ROLE_THERAPIST,
                          "{\"type\":\"private_message\",\"to\":\"partner_a\",\"text\":\"" BLAMING
                          "\"}"),
              0);
    /* therapist notes and marks */
    CHECK_INT(harness_cmd(&h, ATT_ROLE_THERAPIST, "{\"type\":\"note\",\"text\":\"" BLAMING "\"}"),
              0);
    /* a pause note */
    CHECK_INT(harness_cmd(&h, ATT_ROLE_PARTNER_B,
                          "{\"type\":\"pause_request\",\"note\":\"" BLAMING "\"}"),
              0);
    CHECK_INT(h.room.n_suspicions, 1);
    CHECK_INT(h.last_n, 1);
    harness_free(&h);

    /* a check-in note */
    harness_init(&h, "enactment");
    harness_start_consented(&h);
    CHECK_INT(harness_cmd(&h, ATT_ROLE_PARTNER_A,
                          "{\"type\":\"checkin\",\"answers\":{\"safe_to_talk\":\"yes\"},\"note\":"
                          "\"" BLAMING "\"}"),
              0);
    CHECK_INT(h.last_n, 1);
    CHECK_INT(h.room.n_suspicions, 0);
    harness_free(&h);

    /* plain words raise nothing anywhere */
    harness_init(&h, "enactment");
    harness_start(&h);
    for (int i = 0; i < 8; i++)
        CHECK_INT(harness_turn(&h, 0), 0);
    CHECK_INT(harness_cmd(&h, ATT_ROLE_PARTNER_A,
                          "{\"type\":\"repair_attempt\",\"text\":\"I'm sorry, I was scared\"}"),
              0);
    CHECK_INT(h.room.n_suspicions, 0);
    harness_free(&h);
}

static void test_pause_request_is_not_a_rupture(void)
{
    harness h;
    harness_init(&h, "enactment");
    harness_start(&h);
    int64_t pseq = h.room.aud_seq[ATT_ROLE_PARTNER_A];
    CHECK_INT(harness_cmd(&h, ATT_ROLE_PARTNER_B,
                          "{\"type\":\"pause_request\",\"note\":\"I need a minute\"}"),
              0);
    CHECK_INT(h.last_n, 1);
    json_t *ev = harness_last_event(&h, "pause_requested");
    CHECK(ev != NULL);
    CHECK_STR(json_string_value(json_object_get(ev, "by")), "partner_b");
    CHECK_STR(json_string_value(json_object_get(ev, "note")), "I need a minute");
    CHECK_INT(audience_of(&h, ev), ALL);
    CHECK_INT(h.room.aud_seq[ATT_ROLE_PARTNER_A], pseq + 1);
    CHECK_INT(h.room.status, ATT_STATUS_PAUSED);
    CHECK_INT(h.room.paused_by, ATT_ROLE_PARTNER_B);
    CHECK_INT(h.room.n_ruptures, 0);
    CHECK_INT(h.room.n_suspicions, 0);
    /* a second request while paused is recorded and changes nothing */
    CHECK_INT(harness_cmd(&h, ATT_ROLE_PARTNER_A, "{\"type\":\"pause_request\"}"), 0);
    CHECK_INT(h.room.paused_by, ATT_ROLE_PARTNER_B);
    /* the therapist may judge it flooding and mark it */
    CHECK_INT(harness_cmd(&h, ATT_ROLE_THERAPIST,
                          "{\"type\":\"rupture_mark\",\"kind\":\"withdrawal\",\"marker\":"
                          "\"minimal_response\",\"who\":\"partner_b\",\"with\":\"partner_a\"}"),
              0);
    CHECK_INT(h.room.n_ruptures, 1);
    CHECK_INT(harness_cmd(&h, ATT_ROLE_THERAPIST, "{\"type\":\"control\",\"action\":\"resume\"}"),
              0);
    CHECK_INT(h.room.status, ATT_STATUS_ACTIVE);
    CHECK_INT(h.room.paused_by, ATT_ROLE_NONE);
    /* the therapist and observers do not ask for pauses */
    CHECK_INT(harness_cmd(&h, ATT_ROLE_THERAPIST, "{\"type\":\"pause_request\"}"),
              ATT_ERR_FORBIDDEN);
    CHECK_INT(harness_cmd(&h, ATT_ROLE_OBSERVER, "{\"type\":\"pause_request\"}"),
              ATT_ERR_FORBIDDEN);
    /* before consent a partner's pause request is refused (nothing enters
     * the record before the session begins); during the check-in a pause is
     * still a pause */
    harness_free(&h);
    harness_init(&h, "enactment");
    CHECK_INT(harness_cmd(&h, ATT_ROLE_PARTNER_A, "{\"type\":\"pause_request\"}"),
              ATT_ERR_CONSENT_REQUIRED);
    CHECK_INT(h.room.status, ATT_STATUS_WAITING_CONSENT);
    harness_free(&h);
    harness_init(&h, "enactment");
    harness_start_consented(&h);
    CHECK_INT(harness_cmd(&h, ATT_ROLE_PARTNER_A, "{\"type\":\"pause_request\"}"), 0);
    CHECK_INT(h.room.status, ATT_STATUS_PAUSED);
    CHECK_INT(harness_cmd(&h, ATT_ROLE_THERAPIST, "{\"type\":\"control\",\"action\":\"resume\"}"),
              0);
    CHECK_INT(h.room.status, ATT_STATUS_CHECKING_IN);
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
    /* a rupture at once, seen by everyone; no suspicion */
    CHECK_INT(h.last_n, 2);
    json_t *op = json_array_get(h.last_events, 0);
    CHECK_STR(json_string_value(json_object_get(op, "type")), "rupture_opened");
    CHECK_INT(audience_of(&h, op), ALL);
    CHECK(json_object_get(json_object_get(op, "rupture"), "evidence") == NULL);
    CHECK_INT(h.room.n_suspicions, 0);
    const att_rupture *r = harness_last_rupture(&h);
    CHECK_INT(r->open.id, 1);
    CHECK_INT(r->status, ATT_RS_OPEN);
    CHECK_INT(r->confirmed, 0);
    CHECK_INT(r->suspicion_id, 0);
    CHECK_INT(r->open.source, ATT_SRC_THERAPIST);
    CHECK_INT(r->open.who, ATT_ROLE_PARTNER_B);
    CHECK_INT(r->open.with, ATT_ROLE_THERAPIST);
    CHECK_STR(r->open.marker, "minimal_response");
    json_t *note = harness_last_event(&h, "note");
    CHECK(note != NULL);
    CHECK_INT(json_integer_value(json_object_get(note, "rupture_id")), 1);
    CHECK_INT(audience_of(&h, note), STAFF);
    /* a marker of the wrong kind, a detector marker; with itself (the codec refuses it) */
    CHECK_INT(harness_cmd(&h, ATT_ROLE_THERAPIST,
                          "{\"type\":\"rupture_mark\",\"kind\":\"confrontation\",\"marker\":"
                          "\"minimal_response\",\"who\":\"partner_b\",\"with\":\"partner_a\"}"),
              ATT_ERR_INVALID_INPUT);
    CHECK_INT(harness_cmd(&h, ATT_ROLE_THERAPIST,
                          "{\"type\":\"rupture_mark\",\"kind\":\"withdrawal\",\"marker\":"
                          "\"silence\",\"who\":\"partner_b\",\"with\":\"partner_a\"}"),
              ATT_ERR_INVALID_INPUT);
    CHECK_INT(harness_cmd(&h, ATT_ROLE_THERAPIST,
                          "{\"type\":\"rupture_mark\",\"kind\":\"withdrawal\",\"marker\":"
                          "\"denial\",\"who\":\"partner_b\",\"with\":\"partner_b\"}"),
              ATT_ERR_BAD_MESSAGE);
    CHECK_INT(harness_cmd(&h, ATT_ROLE_THERAPIST,
                          "{\"type\":\"rupture_repair\",\"rupture_id\":1,\"strategy\":"
                          "\"discuss_what_happened\",\"note\":\"talked it through\"}"),
              0);
    r = harness_rupture(&h, 1);
    CHECK_INT(r->status, ATT_RS_REPAIRED);
    CHECK_INT(r->repair_how, ATT_HOW_THERAPIST_STRATEGY);
    CHECK_STR(r->repair_strategy, "discuss_what_happened");
    CHECK_INT(harness_cmd(&h, ATT_ROLE_THERAPIST,
                          "{\"type\":\"rupture_repair\",\"rupture_id\":1,\"strategy\":"
                          "\"empathize\"}"),
              ATT_ERR_NOT_FOUND);
    CHECK_INT(harness_cmd(&h, ATT_ROLE_THERAPIST,
                          "{\"type\":\"rupture_repair\",\"rupture_id\":1,\"strategy\":"
                          "\"shrug\"}"),
              ATT_ERR_NOT_FOUND);
    CHECK_INT(harness_cmd(&h, ATT_ROLE_THERAPIST,
                          "{\"type\":\"rupture_mark\",\"kind\":\"confrontation\",\"marker\":"
                          "\"defending_self\",\"who\":\"partner_a\",\"with\":\"partner_b\"}"),
              0);
    CHECK_INT(harness_cmd(&h, ATT_ROLE_THERAPIST,
                          "{\"type\":\"rupture_repair\",\"rupture_id\":2,\"strategy\":"
                          "\"shrug\"}"),
              ATT_ERR_INVALID_INPUT);
    check_refold(&h);
    harness_free(&h);
}

/* One turn can give the detector several things to say, all in one outbox
 * after the turn: first the repair (the actor's confirmed silence, now that
 * they took their turn), then the suggestions in the order the turn is read
 * (a second rejection in a row, then the blame in the correction), numbered
 * on from the turn, with suspicion ids on from the room's. Confirming them
 * later hands out rupture ids in the order of the confirmations. */
static void test_one_turn_several_detector_events(void)
{
    harness h;
    harness_init(&h, "enactment");
    harness_start(&h);
    goto_step(&h, "need");
    CHECK_INT(harness_tick(&h, 300001), 1); /* partner_a silent on "need": suspicion 1 */
    CHECK_STR(harness_last_suspicion(&h)->open.marker, "silence");
    CHECK_INT(harness_turn(&h, 0), 0); /* need */
    CHECK_INT(harness_turn(&h, 0), 0); /* reflect (partner_b) */
    CHECK_INT(harness_turn(&h, 1), 0); /* check: not quite (once) */
    CHECK_INT(harness_turn(&h, 0), 0); /* reflect again */
    CHECK_INT(
        harness_cmd(&h, ATT_ROLE_THERAPIST, "{\"type\":\"rupture_confirm\",\"suspicion_id\":1}"),
        0);
    CHECK_INT(h.room.n_ruptures, 1);
    CHECK_INT(harness_rupture(&h, 1)->status, ATT_RS_OPEN);
    int64_t before = h.room.seq;
    CHECK_INT(harness_cmdf(&h, ATT_ROLE_PARTNER_A,
                           "{\"type\":\"turn\",\"step\":\"check\",\"input\":{\"landed\":\"no\","
                           "\"what_i_meant\":\"%s\"}}",
                           BLAMING),
              0);
    static const char *const want[] = {"turn", "rupture_repaired", "rupture_suspected",
                                       "rupture_suspected"};
    CHECK_INT(h.last_n, 4);
    size_t base = json_array_size(h.log) - 4;
    for (size_t i = 0; i < 4 && i < json_array_size(h.last_events); i++) {
        json_t *e = json_array_get(h.last_events, i);
        CHECK_STR(json_string_value(json_object_get(e, "type")), want[i]);
        CHECK_INT(json_integer_value(json_object_get(json_array_get(h.log, base + i), "seq")),
                  before + 1 + (int64_t)i);
    }
    CHECK_INT(harness_rupture(&h, 1)->status, ATT_RS_REPAIRED);
    CHECK_INT(harness_rupture(&h, 1)->repair_how, ATT_HOW_RESUMED);
    CHECK_STR(harness_suspicion(&h, 2)->open.marker, "reflection_rejected");
    CHECK_STR(harness_suspicion(&h, 3)->open.marker, "blaming_language");
    CHECK_INT(h.room.next_suspicion_id, 4);
    CHECK_INT(
        harness_cmd(&h, ATT_ROLE_THERAPIST, "{\"type\":\"rupture_confirm\",\"suspicion_id\":3}"),
        0);
    CHECK_INT(harness_suspicion(&h, 3)->rupture_id, 2);
    CHECK_INT(
        harness_cmd(&h, ATT_ROLE_THERAPIST, "{\"type\":\"rupture_confirm\",\"suspicion_id\":2}"),
        0);
    CHECK_INT(harness_suspicion(&h, 2)->rupture_id, 3);
    CHECK_STR(harness_rupture(&h, 3)->open.marker, "reflection_rejected");
    check_refold(&h);
    harness_free(&h);
}

int main(void)
{
    test_rules_only_suggest();
    test_confirm_every_rule();
    test_dismiss_every_rule();
    test_review_refusals();
    test_disconnect();
    test_silence_per_step();
    test_silence_typing_and_pauses();
    test_silence_room_default();
    test_reflection_rejected();
    test_ratings();
    test_never_scanned();
    test_pause_request_is_not_a_rupture();
    test_therapist_mark();
    test_one_turn_several_detector_events();
    harness_catalog_free();
    return check_done("detector");
}
