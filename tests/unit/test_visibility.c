/* test_visibility.c - who may see what: the visibility table event by event;
 * per-audience sequence numbers over a scripted session (notes, suspicions,
 * the private line both ways, check-in answers, a takeover); partner states
 * without staff keys, byte-identical across commits of events hidden from
 * them; the observer kept off the private line; protocol 1 logs folded as
 * they were recorded. */
#include "check.h"
#include "room_harness.h"

#include <stdlib.h>
#include <string.h>

#define AUD(r) (1u << (r))
#define PA AUD(ATT_ROLE_PARTNER_A)
#define PB AUD(ATT_ROLE_PARTNER_B)
#define TH AUD(ATT_ROLE_THERAPIST)
#define OB AUD(ATT_ROLE_OBSERVER)
#define STAFF (TH | OB)
#define ALL (PA | PB | STAFF)

static const att_role viewers[] = {ATT_ROLE_PARTNER_A, ATT_ROLE_PARTNER_B, ATT_ROLE_THERAPIST,
                                   ATT_ROLE_OBSERVER};

/* --- the table ------------------------------------------------------------ */

typedef struct {
    att_event_type type;
    att_role by;
    att_role to;
    int legacy;
    unsigned audience;
} vis_case;

static void test_table(void)
{
    static const vis_case cases[] = {
        {ATT_EV_ROOM_CREATED, ATT_ROLE_SYSTEM, ATT_ROLE_NONE, 0, ALL},
        {ATT_EV_JOINED, ATT_ROLE_PARTNER_A, ATT_ROLE_NONE, 0, ALL},
        {ATT_EV_JOINED, ATT_ROLE_OBSERVER, ATT_ROLE_NONE, 0, ALL},
        {ATT_EV_LEFT, ATT_ROLE_OBSERVER, ATT_ROLE_NONE, 0, ALL},
        {ATT_EV_LEFT, ATT_ROLE_THERAPIST, ATT_ROLE_NONE, 0, ALL},
        {ATT_EV_REPLACED, ATT_ROLE_PARTNER_A, ATT_ROLE_NONE, 0, PA | STAFF},
        {ATT_EV_REPLACED, ATT_ROLE_PARTNER_B, ATT_ROLE_NONE, 0, PB | STAFF},
        {ATT_EV_REPLACED, ATT_ROLE_THERAPIST, ATT_ROLE_NONE, 0, STAFF},
        {ATT_EV_CONSENTED, ATT_ROLE_PARTNER_B, ATT_ROLE_NONE, 0, ALL},
        {ATT_EV_CONSENT_WITHDRAWN, ATT_ROLE_PARTNER_A, ATT_ROLE_NONE, 0, ALL},
        {ATT_EV_CHECKIN_ANSWERED, ATT_ROLE_PARTNER_A, ATT_ROLE_NONE, 0, PA | TH},
        {ATT_EV_CHECKIN_ANSWERED, ATT_ROLE_PARTNER_B, ATT_ROLE_NONE, 0, PB | TH},
        {ATT_EV_CHECKIN_COMPLETED, ATT_ROLE_SYSTEM, ATT_ROLE_NONE, 0, ALL},
        {ATT_EV_TURN, ATT_ROLE_PARTNER_A, ATT_ROLE_NONE, 0, ALL},
        {ATT_EV_CONTROL, ATT_ROLE_THERAPIST, ATT_ROLE_NONE, 0, ALL},
        {ATT_EV_PAUSE_REQUESTED, ATT_ROLE_PARTNER_B, ATT_ROLE_NONE, 0, ALL},
        {ATT_EV_REPAIR_ATTEMPT, ATT_ROLE_PARTNER_A, ATT_ROLE_NONE, 0, ALL},
        {ATT_EV_REPAIR_ACCEPTED, ATT_ROLE_PARTNER_B, ATT_ROLE_NONE, 0, ALL},
        {ATT_EV_REPAIR_REPLIED, ATT_ROLE_THERAPIST, ATT_ROLE_NONE, 0, ALL},
        {ATT_EV_REPAIR_REPLIED, ATT_ROLE_PARTNER_B, ATT_ROLE_NONE, 0, ALL},
        {ATT_EV_RUPTURE_OPENED, ATT_ROLE_THERAPIST, ATT_ROLE_NONE, 0, ALL},
        {ATT_EV_RUPTURE_OPENED, ATT_ROLE_SYSTEM, ATT_ROLE_NONE, 0, ALL}, /* a legacy one */
        {ATT_EV_RUPTURE_SUSPECTED, ATT_ROLE_SYSTEM, ATT_ROLE_NONE, 0, STAFF},
        {ATT_EV_RUPTURE_CONFIRMED, ATT_ROLE_THERAPIST, ATT_ROLE_NONE, 0, STAFF},
        {ATT_EV_RUPTURE_CONFIRMED, ATT_ROLE_THERAPIST, ATT_ROLE_NONE, 1, ALL},
        {ATT_EV_RUPTURE_DISMISSED, ATT_ROLE_THERAPIST, ATT_ROLE_NONE, 0, STAFF},
        {ATT_EV_RUPTURE_DISMISSED, ATT_ROLE_THERAPIST, ATT_ROLE_NONE, 1, STAFF},
        {ATT_EV_RUPTURE_REPAIRED, ATT_ROLE_PARTNER_A, ATT_ROLE_NONE, 0, ALL},
        {ATT_EV_NOTE, ATT_ROLE_THERAPIST, ATT_ROLE_NONE, 0, STAFF},
        {ATT_EV_PRIVATE_MESSAGE, ATT_ROLE_PARTNER_A, ATT_ROLE_THERAPIST, 0, PA | TH},
        {ATT_EV_PRIVATE_MESSAGE, ATT_ROLE_PARTNER_B, ATT_ROLE_THERAPIST, 0, PB | TH},
        {ATT_EV_PRIVATE_MESSAGE, ATT_ROLE_THERAPIST, ATT_ROLE_PARTNER_A, 0, PA | TH},
        {ATT_EV_PRIVATE_MESSAGE, ATT_ROLE_THERAPIST, ATT_ROLE_PARTNER_B, 0, PB | TH},
        {ATT_EV_THERAPIST_REQUESTED, ATT_ROLE_PARTNER_A, ATT_ROLE_NONE, 0, PA | TH},
        {ATT_EV_THERAPIST_REQUESTED, ATT_ROLE_PARTNER_B, ATT_ROLE_NONE, 0, PB | TH},
        {ATT_EV_RECONNECTED, ATT_ROLE_PARTNER_A, ATT_ROLE_NONE, 0, STAFF},
        {ATT_EV_RECONNECTED, ATT_ROLE_PARTNER_B, ATT_ROLE_NONE, 0, STAFF},
        {ATT_EV_RECONNECTED, ATT_ROLE_THERAPIST, ATT_ROLE_NONE, 0, STAFF},
        {ATT_EV_RECONNECTED, ATT_ROLE_OBSERVER, ATT_ROLE_NONE, 0, STAFF},
    };
    int seen[ATT_EV__COUNT] = {0};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        att_event ev;
        memset(&ev, 0, sizeof ev);
        ev.type = cases[i].type;
        ev.by = cases[i].by;
        ev.to = cases[i].to;
        ev.legacy = cases[i].legacy;
        unsigned got = att_event_audience(&ev);
        CHECK_MSG(got == cases[i].audience, "%s by %s: %#x, want %#x", att_event_type_name(ev.type),
                  att_role_name(ev.by), got, cases[i].audience);
        for (int v = 0; v < 4; v++)
            CHECK(att_event_visible_to(&ev, viewers[v]) == !!(cases[i].audience & AUD(v)));
        CHECK(!att_event_visible_to(&ev, ATT_ROLE_NONE));
        CHECK(!att_event_visible_to(&ev, ATT_ROLE_SYSTEM));
        seen[ev.type]++;
    }
    for (int t = 0; t < ATT_EV__COUNT; t++)
        CHECK_MSG(seen[t] > 0, "no visibility case for %s", att_event_type_name((att_event_type)t));
}

/* --- a scripted session ----------------------------------------------------- */

/* Staff keys no partner state may carry anywhere in its text. */
static const char *const staff_keys[] = {
    "\"suspicions\":",
    "\"suspicions_dropped\":",
    "\"next_rupture_id\":",
    "\"step_started_seq\":",
    "\"evidence\":",
    "\"opened_seq\":",
    "\"confirmed\":",
    "\"suspicion_id\":",
    "\"private_line\":",
    "\"held\":",
    "\"hold\":",
};

static int checks_run;

/* After every command: each audience's seq counts what it may see, the
 * state says so, partners' states carry no staff key, the observer no
 * private-line event. */
static void check_audiences(harness *h, const char *when)
{
    checks_run++;
    for (int v = 0; v < 4; v++) {
        int64_t visible = harness_visible_count(h, viewers[v]);
        CHECK_MSG(h->room.aud_seq[v] == visible, "%s: %s aud_seq %lld, visible %lld", when,
                  att_role_name(viewers[v]), (long long)h->room.aud_seq[v], (long long)visible);
        json_t *st = harness_state(&h->room, viewers[v], 1);
        CHECK_MSG(json_integer_value(json_object_get(st, "seq")) == visible, "%s: %s state seq",
                  when, att_role_name(viewers[v]));
        json_decref(st);
        if (!att_role_is_partner(viewers[v]))
            continue;
        char *text = harness_state_text(h, viewers[v]);
        for (size_t k = 0; k < sizeof staff_keys / sizeof staff_keys[0]; k++)
            CHECK_MSG(strstr(text, staff_keys[k]) == NULL, "%s: %s state has %s", when,
                      att_role_name(viewers[v]), staff_keys[k]);
        free(text);
    }
    CHECK_INT(h->room.aud_seq[ATT_ROLE_THERAPIST], h->room.seq);
    size_t i;
    json_t *entry;
    json_array_foreach(h->log, i, entry)
    {
        att_event ev;
        att_error err;
        CHECK_INT(att_event_from_json(json_object_get(entry, "event"), h->room.script, &ev, &err),
                  0);
        if (ev.type == ATT_EV_PRIVATE_MESSAGE || ev.type == ATT_EV_THERAPIST_REQUESTED ||
            ev.type == ATT_EV_CHECKIN_ANSWERED)
            CHECK_MSG(!att_event_visible_to(&ev, ATT_ROLE_OBSERVER), "%s: observer sees %s", when,
                      att_event_type_name(ev.type));
        else
            CHECK(att_event_visible_to(&ev, ATT_ROLE_OBSERVER));
    }
}

/* Runs `step` (a command, a tick, a takeover) and checks that every event it
 * produced is hidden from each role in `hidden` and that their state text is
 * byte for byte what it was. */
typedef int (*step_fn)(harness *h, const void *arg);

static void hidden_commit(harness *h, const char *when, step_fn step, const void *arg,
                          unsigned hidden)
{
    char *before[4] = {0};
    for (int v = 0; v < 4; v++)
        if (hidden & AUD(v))
            before[v] = harness_state_text(h, viewers[v]);
    int64_t seq = h->room.seq;
    CHECK_MSG(step(h, arg) >= 0, "%s: %s", when, h->last_err.message);
    CHECK_MSG(h->room.seq > seq, "%s: nothing was recorded", when);
    size_t i;
    json_t *e;
    json_array_foreach(h->last_events, i, e)
    {
        att_event ev;
        att_error err;
        CHECK_INT(att_event_from_json(e, h->room.script, &ev, &err), 0);
        CHECK_MSG((att_event_audience(&ev) & hidden) == 0, "%s: %s visible to %#x", when,
                  att_event_type_name(ev.type), att_event_audience(&ev) & hidden);
    }
    for (int v = 0; v < 4; v++) {
        if (!before[v])
            continue;
        char *after = harness_state_text(h, viewers[v]);
        CHECK_MSG(strcmp(before[v], after) == 0, "%s: %s's state changed:\n  %s\n  %s", when,
                  att_role_name(viewers[v]), before[v], after);
        free(after);
        free(before[v]);
    }
    check_audiences(h, when);
}

typedef struct {
    att_role role;
    const char *json;
} cmd_arg;

static int run_cmd(harness *h, const void *arg)
{
    const cmd_arg *c = arg;
    int rc = harness_cmd(h, c->role, c->json);
    return rc ? -rc : 0;
}

static int run_tick(harness *h, const void *arg)
{
    return harness_tick(h, *(const int64_t *)arg) > 0 ? 0 : -1;
}

static int run_replaced(harness *h, const void *arg)
{
    return harness_replaced(h, *(const att_role *)arg);
}

static int run_reconnected(harness *h, const void *arg)
{
    return harness_reconnected(h, *(const att_role *)arg, 2, 3100);
}

static void cmd_ok(harness *h, att_role role, const char *json)
{
    CHECK_MSG(harness_cmd(h, role, json) == 0, "%s: %s", json, h->last_err.message);
    check_audiences(h, json);
}

static void test_scripted_session(void)
{
    harness h;
    harness_init(&h, "enactment");
    check_audiences(&h, "created");
    harness_join(&h, ATT_ROLE_THERAPIST);
    harness_join(&h, ATT_ROLE_OBSERVER);
    harness_join(&h, ATT_ROLE_PARTNER_A);
    harness_join(&h, ATT_ROLE_PARTNER_B);
    check_audiences(&h, "joined");
    /* the private line before consent */
    const cmd_arg pm_a = {ATT_ROLE_PARTNER_A,
                          "{\"type\":\"private_message\",\"text\":\"Can we talk first?\"}"};
    hidden_commit(&h, "A's private message", run_cmd, &pm_a, PB | OB);
    const cmd_arg pm_to_a = {ATT_ROLE_THERAPIST, "{\"type\":\"private_message\",\"to\":"
                                                 "\"partner_a\",\"text\":\"Of course.\"}"};
    hidden_commit(&h, "the therapist to A", run_cmd, &pm_to_a, PB | OB);
    cmd_ok(&h, ATT_ROLE_PARTNER_A, "{\"type\":\"consent\",\"accept\":true}");
    cmd_ok(&h, ATT_ROLE_PARTNER_B, "{\"type\":\"consent\",\"accept\":true}");
    /* check-in answers: each hidden from the other partner and the observer */
    const cmd_arg ci_a = {ATT_ROLE_PARTNER_A,
                          "{\"type\":\"checkin\",\"answers\":{"
                          "\"safe_to_talk\":\"not_sure\"},\"note\":\"scared\"}"};
    hidden_commit(&h, "A's check-in", run_cmd, &ci_a, PB | OB);
    const cmd_arg ci_b = {ATT_ROLE_PARTNER_B,
                          "{\"type\":\"checkin\",\"answers\":{\"safe_to_talk\":\"yes\"}}"};
    hidden_commit(&h, "B's check-in", run_cmd, &ci_b, PA | OB);
    CHECK_INT(h.room.status, ATT_STATUS_CHECKING_IN); /* held for the therapist */
    const cmd_arg ask_b = {ATT_ROLE_PARTNER_B, "{\"type\":\"ask_therapist\"}"};
    hidden_commit(&h, "B asks for the therapist", run_cmd, &ask_b, PA | OB);
    const cmd_arg pm_to_b = {ATT_ROLE_THERAPIST, "{\"type\":\"private_message\",\"to\":"
                                                 "\"partner_b\",\"text\":\"One moment.\"}"};
    hidden_commit(&h, "the therapist to B", run_cmd, &pm_to_b, PA | OB);
    const cmd_arg note = {ATT_ROLE_THERAPIST, "{\"type\":\"note\",\"text\":\"A unsure\"}"};
    hidden_commit(&h, "a note", run_cmd, &note, PA | PB);
    cmd_ok(&h, ATT_ROLE_THERAPIST, "{\"type\":\"control\",\"action\":\"proceed\"}");
    /* a takeover: only that partner (and the staff) see it */
    const att_role b = ATT_ROLE_PARTNER_B;
    hidden_commit(&h, "B replaced", run_replaced, &b, PA);
    /* a suspicion alone (silence) and its dismissal: hidden from both partners */
    const int64_t silence = 300000;
    hidden_commit(&h, "a silence suspicion", run_tick, &silence, PA | PB);
    const cmd_arg dismiss = {
        ATT_ROLE_THERAPIST,
        "{\"type\":\"rupture_dismiss\",\"suspicion_id\":1,\"note\":\"thinking\"}"};
    hidden_commit(&h, "dismissed", run_cmd, &dismiss, PA | PB);
    /* a blaming turn: the turn is seen, the suspicion is not */
    int64_t before_a = h.room.aud_seq[ATT_ROLE_PARTNER_A];
    int64_t before_b = h.room.aud_seq[ATT_ROLE_PARTNER_B];
    cmd_ok(&h, ATT_ROLE_PARTNER_A,
           "{\"type\":\"turn\",\"step\":\"what_happened\",\"input\":{\"what_happened\":\"You "
           "always ignore me, you never listen\"}}");
    CHECK_INT(h.last_n, 2);
    CHECK_INT(h.room.aud_seq[ATT_ROLE_PARTNER_A], before_a + 1);
    CHECK_INT(h.room.aud_seq[ATT_ROLE_PARTNER_B], before_b + 1);
    const cmd_arg snote = {ATT_ROLE_THERAPIST,
                           "{\"type\":\"note\",\"text\":\"criticism\",\"suspicion_id\":2}"};
    hidden_commit(&h, "a note on the suspicion", run_cmd, &snote, PA | PB);
    /* confirmed: the partners see a rupture_opened (numbered 1), not the confirmation */
    int64_t pa = h.room.aud_seq[ATT_ROLE_PARTNER_A];
    cmd_ok(&h, ATT_ROLE_THERAPIST, "{\"type\":\"rupture_confirm\",\"suspicion_id\":2}");
    CHECK_INT(h.room.aud_seq[ATT_ROLE_PARTNER_A], pa + 1);
    CHECK_INT(h.room.ruptures[0].open.id, 1);
    /* the partners' private lines and requests once more, while active */
    const cmd_arg pm_b = {ATT_ROLE_PARTNER_B, "{\"type\":\"private_message\",\"to\":"
                                              "\"therapist\",\"text\":\"It is fine now\"}"};
    hidden_commit(&h, "B's private message", run_cmd, &pm_b, PA | OB);
    const cmd_arg ask_a = {ATT_ROLE_PARTNER_A, "{\"type\":\"ask_therapist\"}"};
    hidden_commit(&h, "A asks for the therapist", run_cmd, &ask_a, PB | OB);
    const att_role a = ATT_ROLE_PARTNER_A;
    hidden_commit(&h, "A replaced", run_replaced, &a, PB);
    const att_role t = ATT_ROLE_THERAPIST;
    hidden_commit(&h, "the therapist replaced", run_replaced, &t, PA | PB);
    /* the rest of the session, seen by all */
    for (int i = 0; i < 6; i++) {
        CHECK_INT(harness_turn(&h, i == 5), 0);
        check_audiences(&h, "turn");
    }
    cmd_ok(&h, ATT_ROLE_PARTNER_B, "{\"type\":\"repair_attempt\",\"text\":\"I hear you\"}");
    cmd_ok(&h, ATT_ROLE_THERAPIST,
           "{\"type\":\"repair_reply\",\"attempt_id\":1,\"reply\":"
           "\"acknowledged\"}");
    cmd_ok(&h, ATT_ROLE_PARTNER_A,
           "{\"type\":\"repair_reply\",\"attempt_id\":1,\"reply\":"
           "\"need_a_moment\"}");
    cmd_ok(&h, ATT_ROLE_PARTNER_A, "{\"type\":\"repair_accept\",\"attempt_id\":1}");
    CHECK_INT(h.room.ruptures[0].status, ATT_RS_REPAIRED);
    cmd_ok(&h, ATT_ROLE_PARTNER_B, "{\"type\":\"pause_request\",\"note\":\"a minute\"}");
    cmd_ok(&h, ATT_ROLE_PARTNER_A, "{\"type\":\"consent_withdraw\"}");
    cmd_ok(&h, ATT_ROLE_PARTNER_A, "{\"type\":\"consent\",\"accept\":true}");
    cmd_ok(&h, ATT_ROLE_THERAPIST, "{\"type\":\"control\",\"action\":\"end\"}");
    /* after the end a partner records nothing; the therapist still writes */
    CHECK_INT(harness_cmd(&h, ATT_ROLE_PARTNER_A, pm_a.json), ATT_ERR_SESSION_ENDED);
    hidden_commit(&h, "the therapist to A after the end", run_cmd, &pm_to_a, PB | OB);
    /* how a connection fared is the staff's: partners learn nothing of it */
    static const att_role roles[] = {ATT_ROLE_PARTNER_A, ATT_ROLE_PARTNER_B, ATT_ROLE_THERAPIST,
                                     ATT_ROLE_OBSERVER};
    for (int r = 0; r < 4; r++)
        hidden_commit(&h, "reconnected", run_reconnected, &roles[r], PA | PB);
    harness_leave(&h, ATT_ROLE_OBSERVER);
    check_audiences(&h, "the observer left");
    /* all of it differs per audience, and the fold still replays */
    CHECK(h.room.aud_seq[ATT_ROLE_PARTNER_A] != h.room.aud_seq[ATT_ROLE_PARTNER_B]);
    CHECK(h.room.aud_seq[ATT_ROLE_OBSERVER] < h.room.seq);
    CHECK(h.room.aud_seq[ATT_ROLE_PARTNER_A] < h.room.aud_seq[ATT_ROLE_OBSERVER]);
    char live[65], replayed[65];
    att_error err;
    CHECK_INT(att_state_hash(&h.room, live, &err), 0);
    CHECK_INT(harness_refold(&h, replayed), 0);
    CHECK_STR(live, replayed);
    CHECK(checks_run > 30);
    harness_free(&h);
}

/* --- protocol 1 logs ------------------------------------------------------- */

static const char *const legacy_log[] = {
    /* 1 */ "{\"type\":\"room_created\",\"at\":1000,\"by\":\"system\",\"exercise\":\"enactment\","
            "\"first_speaker\":\"partner_a\"}",
    /* 2 */ "{\"type\":\"joined\",\"at\":1100,\"by\":\"partner_a\"}",
    /* 3 */ "{\"type\":\"joined\",\"at\":1200,\"by\":\"partner_b\"}",
    /* 4 */ "{\"type\":\"joined\",\"at\":1300,\"by\":\"therapist\"}",
    /* 5 */ "{\"type\":\"consented\",\"at\":1400,\"by\":\"partner_a\"}",
    /* 6 */ "{\"type\":\"consented\",\"at\":1500,\"by\":\"partner_b\"}",
    /* 7 */ "{\"type\":\"left\",\"at\":2000,\"by\":\"partner_a\",\"reason\":\"closed\"}",
    /* 8 */
    "{\"type\":\"rupture_opened\",\"at\":2000,\"by\":\"system\",\"rupture\":{\"id\":1,"
    "\"kind\":\"withdrawal\",\"marker\":\"disconnect\",\"source\":\"detector\",\"who\":"
    "\"partner_a\",\"with\":\"partner_b\",\"step\":\"what_happened\",\"round\":0,"
    "\"evidence\":[7]}}",
    /* 9 */ "{\"type\":\"joined\",\"at\":5000,\"by\":\"partner_a\"}",
    /* 10 */
    "{\"type\":\"rupture_repaired\",\"at\":5000,\"by\":\"partner_a\",\"rupture_id\":1,"
    "\"how\":\"reconnect\"}",
    /* 11 */
    "{\"type\":\"turn\",\"at\":6000,\"by\":\"partner_a\",\"step\":\"what_happened\","
    "\"round\":0,\"input\":{\"what_happened\":\"You never listen\"}}",
    /* 12 */
    "{\"type\":\"rupture_suspected\",\"at\":6000,\"by\":\"system\",\"rupture\":{\"id\":2,"
    "\"kind\":\"confrontation\",\"marker\":\"blaming_language\",\"source\":\"detector\","
    "\"who\":\"partner_a\",\"with\":\"partner_b\",\"step\":\"what_happened\",\"round\":0,"
    "\"evidence\":[11]}}",
    /* 13 */
    "{\"type\":\"rupture_confirmed\",\"at\":7000,\"by\":\"therapist\",\"rupture\":{"
    "\"id\":2,\"kind\":\"confrontation\",\"marker\":\"blaming_language\",\"source\":"
    "\"detector\",\"who\":\"partner_a\",\"with\":\"partner_b\",\"step\":"
    "\"what_happened\",\"round\":0,\"evidence\":[11]}}",
    /* 14 */
    "{\"type\":\"rupture_opened\",\"at\":100000,\"by\":\"system\",\"rupture\":{\"id\":3,"
    "\"kind\":\"withdrawal\",\"marker\":\"silence\",\"source\":\"detector\",\"who\":"
    "\"partner_a\",\"with\":\"partner_b\",\"step\":\"reactive\",\"round\":0,"
    "\"evidence\":[11]}}",
    /* 15 */
    "{\"type\":\"rupture_suspected\",\"at\":101000,\"by\":\"system\",\"rupture\":{"
    "\"id\":4,\"kind\":\"confrontation\",\"marker\":\"blaming_language\",\"source\":"
    "\"detector\",\"who\":\"partner_b\",\"with\":\"partner_a\",\"step\":\"reactive\","
    "\"round\":0,\"evidence\":[14]}}",
    /* 16 */
    "{\"type\":\"rupture_dismissed\",\"at\":102000,\"by\":\"therapist\",\"rupture_id\":4,"
    "\"note\":\"joking\"}",
    /* 17 */ "{\"type\":\"repair_attempt\",\"at\":103000,\"by\":\"partner_b\",\"text\":\"sorry\"}",
    /* 18 */ "{\"type\":\"repair_accepted\",\"at\":104000,\"by\":\"partner_a\",\"attempt_seq\":17}",
    /* 19 */
    "{\"type\":\"rupture_repaired\",\"at\":104000,\"by\":\"partner_a\",\"rupture_id\":3,"
    "\"how\":\"repair_attempt\",\"attempt_seq\":17}",
    /* 20 */
    "{\"type\":\"pause_requested\",\"at\":105000,\"by\":\"partner_b\",\"note\":\"too "
    "much\"}",
    /* 21 */
    "{\"type\":\"rupture_opened\",\"at\":105000,\"by\":\"system\",\"rupture\":{\"id\":5,"
    "\"kind\":\"flooding\",\"marker\":\"pause_requested\",\"source\":\"partner\","
    "\"who\":\"partner_b\",\"with\":\"partner_a\",\"step\":\"reactive\",\"round\":0,"
    "\"evidence\":[20]}}",
    /* 22 */
    "{\"type\":\"note\",\"at\":106000,\"by\":\"therapist\",\"text\":\"flooded\","
    "\"rupture_id\":5}",
    /* 23 */ "{\"type\":\"control\",\"at\":107000,\"by\":\"therapist\",\"action\":\"resume\"}",
};
#define LEGACY_N (sizeof legacy_log / sizeof legacy_log[0])

static int fold_legacy(att_room *room, size_t n, int64_t aud[4])
{
    att_error err = {0};
    if (att_room_init(room, harness_catalog(), att_catalog_script(harness_catalog(), "enactment"),
                      "legacy", NULL, &err))
        return -1;
    for (size_t i = 0; i < n; i++) {
        json_t *obj = NULL;
        int rc = att_room_apply_stored(room, (int64_t)i + 1, legacy_log[i], strlen(legacy_log[i]),
                                       &obj, &err);
        CHECK_MSG(rc == 0, "legacy event %zu: %s", i + 1, err.message);
        if (rc)
            return -1;
        att_event ev;
        CHECK_INT(att_event_from_json(obj, room->script, &ev, &err), 0);
        for (int v = 0; v < 4; v++)
            aud[v] += att_event_visible_to(&ev, viewers[v]);
        /* re-encoded as it was recorded */
        json_t *again = att_event_to_json(&ev, room->script);
        CHECK_MSG(json_equal(again, obj), "legacy event %zu re-encodes differently", i + 1);
        json_decref(again);
        json_decref(obj);
        if (i + 1 == 6)
            CHECK_INT(room->status, ATT_STATUS_ACTIVE); /* no check-in in a protocol 1 room */
    }
    return 0;
}

static void test_legacy_log(void)
{
    static att_room room;
    int64_t aud[4] = {0, 0, 0, 0};
    CHECK_INT(fold_legacy(&room, LEGACY_N, aud), 0);
    CHECK_INT(room.seq, (int64_t)LEGACY_N);
    CHECK_INT(room.checkin, 0);
    CHECK_STR(room.language, "en");
    CHECK_INT(room.status, ATT_STATUS_ACTIVE);
    for (int v = 0; v < 4; v++)
        CHECK_INT(room.aud_seq[v], aud[v]);
    /* partners saw everything but the suspicions, the dismissal and the note */
    CHECK_INT(aud[ATT_ROLE_PARTNER_A], (int64_t)LEGACY_N - 4);
    CHECK_INT(aud[ATT_ROLE_OBSERVER], (int64_t)LEGACY_N);
    /* ruptures 1, 2 (the confirmed suspicion, same id), 3, 5, in the order they opened */
    CHECK_INT(room.n_ruptures, 4);
    const int ids[] = {1, 2, 3, 5};
    for (int i = 0; i < 4; i++)
        CHECK_INT(room.ruptures[i].open.id, ids[i]);
    const att_rupture *r = &room.ruptures[0];
    CHECK_INT(r->status, ATT_RS_REPAIRED);
    CHECK_INT(r->repair_how, ATT_HOW_RECONNECT);
    CHECK_INT(r->open.n_evidence, 1);
    CHECK_INT(r->open.evidence[0], 7);
    CHECK_INT(r->confirmed, 0);
    r = &room.ruptures[2]; /* silence, repaired by the attempt named by its seq */
    CHECK_STR(r->open.marker, "silence");
    CHECK_INT(r->status, ATT_RS_REPAIRED);
    CHECK_INT(r->repair_how, ATT_HOW_REPAIR_ATTEMPT);
    CHECK_INT(r->repair_attempt_seq, 17);
    CHECK_INT(r->repair_attempt_id, 1);
    CHECK_INT(r->repair_by, ATT_ROLE_PARTNER_A);
    r = &room.ruptures[1]; /* the confirmed suspicion */
    CHECK_INT(r->open.id, 2);
    CHECK_STR(r->open.marker, "blaming_language");
    CHECK_INT(r->status, ATT_RS_OPEN);
    CHECK_INT(r->confirmed, 1);
    CHECK_INT(r->suspicion_id, 2);
    CHECK_INT(r->opened_seq, 12); /* when it was raised */
    CHECK_INT(r->opened_at, 6000);
    r = &room.ruptures[3]; /* the pause's flooding rupture, as it was recorded */
    CHECK_INT(r->open.kind, ATT_RK_FLOODING);
    CHECK_INT(r->open.source, ATT_SRC_PARTNER);
    CHECK_INT(r->open.who, ATT_ROLE_PARTNER_B);
    CHECK_INT(r->status, ATT_RS_OPEN);
    /* the suspicions: 2 confirmed as rupture 2, 4 dismissed */
    CHECK_INT(room.n_suspicions, 2);
    CHECK_INT(room.suspicions[0].open.id, 2);
    CHECK_INT(room.suspicions[0].status, ATT_SS_CONFIRMED);
    CHECK_INT(room.suspicions[0].rupture_id, 2);
    CHECK_INT(room.suspicions[0].decided_at, 7000);
    CHECK_INT(room.suspicions[1].open.id, 4);
    CHECK_INT(room.suspicions[1].status, ATT_SS_DISMISSED);
    CHECK_INT(room.next_rupture_id, 6);
    CHECK_INT(room.next_suspicion_id, 5);
    CHECK_INT(room.n_attempts, 1);
    CHECK_INT(room.attempts[0].id, 1);
    CHECK_INT(room.attempts[0].accepted, 1);
    CHECK_INT(room.next_attempt_id, 2);
    /* the partners' view of a legacy rupture has no staff keys either */
    att_buf b = {0};
    CHECK_INT(att_state_write(&room, ATT_ROLE_PARTNER_B, 1, &b), 0);
    CHECK(strstr(b.data, "\"evidence\"") == NULL && strstr(b.data, "\"suspicion_id\"") == NULL);
    CHECK(strstr(b.data, "\"checkin\":{\"answered\":false}") != NULL);
    att_buf_free(&b);
    json_t *st = harness_state(&room, ATT_ROLE_THERAPIST, 1);
    json_t *rs = json_object_get(st, "ruptures");
    CHECK_INT(json_array_size(rs), 4);
    CHECK_INT(
        json_integer_value(json_array_get(json_object_get(json_array_get(rs, 0), "evidence"), 0)),
        7);
    CHECK_INT(json_integer_value(
                  json_object_get(json_object_get(json_array_get(rs, 2), "repair"), "attempt_id")),
              1);
    json_decref(st);
    /* folding it again gives the same hash */
    static att_room again;
    int64_t aud2[4] = {0, 0, 0, 0};
    CHECK_INT(fold_legacy(&again, LEGACY_N, aud2), 0);
    char h1[65], h2[65];
    att_error err;
    CHECK_INT(att_state_hash(&room, h1, &err), 0);
    CHECK_INT(att_state_hash(&again, h2, &err), 0);
    CHECK_STR(h1, h2);

    /* protocol 2 commands on the old room: no check-in; ids continue after the old ones */
    att_msg m;
    att_event out[ATT_MAX_EVENTS_PER_COMMAND];
    int n = 0;
    const char *ci = "{\"type\":\"checkin\",\"answers\":{\"safe_to_talk\":\"yes\"}}";
    CHECK_INT(att_msg_decode(ci, strlen(ci), &m, &err), 0);
    CHECK_INT(att_engine_decide(&room, ATT_ROLE_PARTNER_A, &m, 200000, out, &n, &err),
              -ATT_ERR_INVALID_STEP);
    att_msg_release(&m);
    const char *mark = "{\"type\":\"rupture_mark\",\"kind\":\"withdrawal\",\"marker\":\"denial\","
                       "\"who\":\"partner_a\",\"with\":\"therapist\"}";
    CHECK_INT(att_msg_decode(mark, strlen(mark), &m, &err), 0);
    CHECK_INT(att_engine_decide(&room, ATT_ROLE_THERAPIST, &m, 200000, out, &n, &err), 0);
    CHECK_INT(n, 1);
    CHECK_INT(out[0].rupture.id, 6);
    CHECK_INT(att_room_apply(&room, &out[0], &err), 0);
    att_msg_release(&m);
    const char *acc = "{\"type\":\"repair_attempt\",\"rupture_id\":2}";
    CHECK_INT(att_msg_decode(acc, strlen(acc), &m, &err), 0);
    CHECK_INT(att_engine_decide(&room, ATT_ROLE_PARTNER_B, &m, 201000, out, &n, &err), 0);
    CHECK_INT(out[0].attempt_id, 2);
    att_msg_release(&m);
    /* a protocol 1 rupture_confirmed of an unknown suspicion folds (its rupture is the record) */
    static att_room partial;
    int64_t aud3[4] = {0, 0, 0, 0};
    CHECK_INT(fold_legacy(&partial, 11, aud3), 0);
    att_error e2 = {0};
    CHECK_INT(
        att_room_apply_stored(&partial, 12, legacy_log[12], strlen(legacy_log[12]), NULL, &e2), 0);
    CHECK_INT(partial.n_ruptures, 2);
    CHECK_INT(partial.ruptures[1].open.id, 2);
    CHECK_INT(partial.ruptures[1].confirmed, 1);
    CHECK_INT(partial.n_suspicions, 0);
    /* but a protocol 2 confirmation of an unknown suspicion is a corrupt log */
    const char *v2 = "{\"type\":\"rupture_confirmed\",\"at\":9,\"by\":\"therapist\","
                     "\"suspicion_id\":9,\"rupture_id\":3}";
    CHECK_INT(att_room_apply_stored(&partial, 13, v2, strlen(v2), NULL, &e2), -ATT_ERR_INTERNAL);
}

int main(void)
{
    test_table();
    test_scripted_session();
    test_legacy_log();
    harness_catalog_free();
    return check_done("visibility");
}
