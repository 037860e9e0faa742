/* wire_samples.c - prints, one JSON object per line, every server message the
 * C core produces in a scripted session that raises every event type:
 * {"schema":"server/event"|"event/<type>"|"server/state"|"server/ack"|
 * "server/error"|"server/bye","message":{...}} (states only for the roles
 * that may see one of the command's events, acks in the sender's own seq).
 * tests/schema/wire.test.mjs validates each against protocol/schema/, so the schemas describe
 * exactly what the code emits. */
#include "room_harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void emit(const char *schema, json_t *message /* stolen */)
{
    json_t *line = json_pack("{s:s, s:o}", "schema", schema, "message", message);
    char *text = json_dumps(line, JSON_COMPACT | JSON_SORT_KEYS);
    puts(text);
    free(text);
    json_decref(line);
}

/* Each event of the last command as an event object and as the frame the
 * therapist receives (the room-log seq); then the state of every role that
 * may see one of them, as the server sends it. */
static void emit_last(harness *h)
{
    size_t i;
    json_t *ev;
    size_t base = json_array_size(h->log) - json_array_size(h->last_events);
    unsigned seen = 0;
    json_array_foreach(h->last_events, i, ev)
    {
        char schema[64];
        snprintf(schema, sizeof schema, "event/%s", json_string_value(json_object_get(ev, "type")));
        emit(schema, json_incref(ev));
        json_t *entry = json_array_get(h->log, base + i);
        emit("server/event", att_msg_event(json_integer_value(json_object_get(entry, "seq")), ev));
        att_event decoded;
        att_error err;
        if (att_event_from_json(ev, h->room.script, &decoded, &err) == 0)
            seen |= att_event_audience(&decoded);
    }
    static const att_role roles[] = {ATT_ROLE_PARTNER_A, ATT_ROLE_PARTNER_B, ATT_ROLE_THERAPIST,
                                     ATT_ROLE_OBSERVER};
    for (size_t r = 0; r < 4; r++)
        if (seen & (1u << roles[r]))
            emit("server/state", harness_state(&h->room, roles[r], 1));
}

static void cmd(harness *h, att_role role, const char *text)
{
    if (harness_cmd(h, role, text) != 0) {
        fprintf(stderr, "wire_samples: %s refused: %s\n", text, h->last_err.message);
        exit(1);
    }
    /* the ack names the sender's own seq, or none when it saw nothing */
    int sees = 0;
    size_t i;
    json_t *ev;
    json_array_foreach(h->last_events, i, ev)
    {
        att_event decoded;
        att_error err;
        if (att_event_from_json(ev, h->room.script, &decoded, &err) == 0)
            sees |= att_event_visible_to(&decoded, role);
    }
    emit("server/ack", att_msg_ack("c1", sees ? h->room.aud_seq[role] : 0));
    emit_last(h);
}

static void turn(harness *h, int reject)
{
    if (harness_turn(h, reject)) {
        fprintf(stderr, "turn refused: %s\n", h->last_err.message);
        exit(1);
    }
    emit_last(h);
}

int main(void)
{
    harness h;
    harness_init(&h, "enactment");
    emit_last(&h);
    static const att_role joining[] = {ATT_ROLE_THERAPIST, ATT_ROLE_OBSERVER, ATT_ROLE_PARTNER_A,
                                       ATT_ROLE_PARTNER_B};
    for (size_t i = 0; i < 4; i++) {
        harness_join(&h, joining[i]);
        emit_last(&h);
    }
    /* the private line, open before consent */
    cmd(&h, ATT_ROLE_PARTNER_A,
        "{\"type\":\"private_message\",\"text\":\"Can I talk to you first?\"}");
    cmd(&h, ATT_ROLE_THERAPIST,
        "{\"type\":\"private_message\",\"to\":\"partner_a\",\"text\":\"Of course.\"}");
    cmd(&h, ATT_ROLE_PARTNER_B, "{\"type\":\"ask_therapist\"}");
    cmd(&h, ATT_ROLE_PARTNER_A, "{\"type\":\"consent\",\"accept\":true}");
    cmd(&h, ATT_ROLE_PARTNER_B, "{\"type\":\"consent\",\"accept\":true,\"id\":\"b-1\"}");
    cmd(&h, ATT_ROLE_PARTNER_A,
        "{\"type\":\"checkin\",\"answers\":{\"safe_to_talk\":\"yes\"},\"note\":\"a bit tired\"}");
    cmd(&h, ATT_ROLE_PARTNER_B, "{\"type\":\"checkin\",\"answers\":{\"safe_to_talk\":\"yes\"}}");
    harness_replaced(&h, ATT_ROLE_PARTNER_A);
    emit_last(&h);
    harness_replaced(&h, ATT_ROLE_THERAPIST);
    emit_last(&h);
    harness_reconnected(&h, ATT_ROLE_PARTNER_B, 2, 3100);
    emit_last(&h);
    harness_reconnected(&h, ATT_ROLE_OBSERVER, 1, 0);
    emit_last(&h);
    cmd(&h, ATT_ROLE_PARTNER_A,
        "{\"type\":\"turn\",\"step\":\"what_happened\",\"input\":{\"what_happened\":\"You "
        "always ignore me, you never listen when I talk about work.\"}}");
    cmd(&h, ATT_ROLE_THERAPIST,
        "{\"type\":\"rupture_confirm\",\"suspicion_id\":1,\"note\":\"criticism, as I heard it\"}");
    /* a brief drop raises nothing; a long one a suggestion, dismissed */
    harness_leave(&h, ATT_ROLE_PARTNER_B);
    emit_last(&h);
    harness_join(&h, ATT_ROLE_PARTNER_B);
    emit_last(&h);
    harness_leave(&h, ATT_ROLE_PARTNER_A);
    emit_last(&h);
    harness_tick(&h, ATT_DEFAULT_DISCONNECT_GRACE_MS);
    emit_last(&h);
    harness_join(&h, ATT_ROLE_PARTNER_A);
    emit_last(&h);
    cmd(&h, ATT_ROLE_THERAPIST,
        "{\"type\":\"rupture_dismiss\",\"suspicion_id\":2,\"note\":\"the network\"}");
    while (h.room.step != 4) /* to the reflection */
        turn(&h, 0);
    for (int i = 0; i < 2; i++) { /* two rejected reflections */
        turn(&h, 0);
        turn(&h, 1);
    }
    cmd(&h, ATT_ROLE_THERAPIST, "{\"type\":\"note\",\"text\":\"misattuned\",\"suspicion_id\":3}");
    cmd(&h, ATT_ROLE_PARTNER_B, "{\"type\":\"pause_request\",\"note\":\"I need a minute\"}");
    cmd(&h, ATT_ROLE_PARTNER_A,
        "{\"type\":\"repair_attempt\",\"text\":\"Let me try again\",\"rupture_id\":1}");
    cmd(&h, ATT_ROLE_THERAPIST,
        "{\"type\":\"repair_reply\",\"attempt_id\":1,\"reply\":\"acknowledged\"}");
    cmd(&h, ATT_ROLE_PARTNER_B,
        "{\"type\":\"repair_reply\",\"attempt_id\":1,\"reply\":\"need_a_moment\"}");
    cmd(&h, ATT_ROLE_PARTNER_B, "{\"type\":\"repair_accept\",\"attempt_id\":1}");
    cmd(&h, ATT_ROLE_THERAPIST,
        "{\"type\":\"rupture_mark\",\"kind\":\"confrontation\",\"marker\":\"defending_self\","
        "\"who\":\"partner_a\",\"with\":\"therapist\",\"note\":\"defended at the reflection\"}");
    cmd(&h, ATT_ROLE_THERAPIST,
        "{\"type\":\"rupture_repair\",\"rupture_id\":2,\"strategy\":\"empathize\"}");
    cmd(&h, ATT_ROLE_THERAPIST, "{\"type\":\"rupture_confirm\",\"suspicion_id\":3}");
    cmd(&h, ATT_ROLE_THERAPIST, "{\"type\":\"control\",\"action\":\"resume\"}");
    turn(&h, 0); /* a third reflection */
    turn(&h, 0); /* it landed: the confirmed misattunement is repaired */
    cmd(&h, ATT_ROLE_PARTNER_B, "{\"type\":\"consent_withdraw\"}");
    cmd(&h, ATT_ROLE_PARTNER_B, "{\"type\":\"private_message\",\"text\":\"I am scared\"}");
    cmd(&h, ATT_ROLE_THERAPIST,
        "{\"type\":\"private_message\",\"to\":\"partner_b\",\"text\":\"You are safe here.\"}");
    cmd(&h, ATT_ROLE_PARTNER_B, "{\"type\":\"consent\",\"accept\":true}");
    cmd(&h, ATT_ROLE_THERAPIST, "{\"type\":\"note\",\"text\":\"softening starts here\"}");
    static const char *const actions[] = {"resume",  "pause",   "resume", "swap", "swap",
                                          "advance", "advance", "back",   "end"};
    char buf[160];
    for (size_t i = 0; i < sizeof actions / sizeof actions[0]; i++) {
        snprintf(buf, sizeof buf, "{\"type\":\"control\",\"action\":\"%s\"}", actions[i]);
        cmd(&h, ATT_ROLE_THERAPIST, buf);
    }
    /* after the end only the therapist writes on the private line */
    cmd(&h, ATT_ROLE_THERAPIST,
        "{\"type\":\"private_message\",\"to\":\"partner_a\",\"text\":\"Thank you\"}");
    /* a held check-in the therapist goes on from */
    harness held;
    harness_init(&held, "demon_dialogue");
    harness_start_consented(&held);
    cmd(&held, ATT_ROLE_PARTNER_A,
        "{\"type\":\"checkin\",\"answers\":{\"safe_to_talk\":\"not_sure\"},\"note\":\"later\"}");
    cmd(&held, ATT_ROLE_PARTNER_B, "{\"type\":\"checkin\",\"answers\":{\"safe_to_talk\":\"no\"}}");
    cmd(&held, ATT_ROLE_THERAPIST, "{\"type\":\"control\",\"action\":\"proceed\"}");
    harness_free(&held);
    att_event evs[ATT_MAX_EVENTS_PER_COMMAND];
    int n = 0;
    static const att_left_reason reasons[] = {ATT_LEFT_TIMEOUT, ATT_LEFT_SLOW_READER,
                                              ATT_LEFT_SHUTDOWN};
    for (size_t i = 0; i < 3; i++) {
        att_engine_decide_leave(&h.room, ATT_ROLE_THERAPIST, reasons[i], h.now, evs, &n);
        json_t *ev = att_event_to_json(&evs[0], h.room.script);
        emit("event/left", json_incref(ev));
        emit("server/event", att_msg_event(h.room.seq + 1, ev));
        json_decref(ev);
    }
    for (int code = ATT_ERR_BAD_JSON; code < ATT_ERR__COUNT; code++) {
        emit("server/error", att_msg_error("c7", (att_code)code, "explained in words"));
        emit("server/error", att_msg_error(NULL, (att_code)code, "explained in words"));
    }
    emit("server/ack", att_msg_ack(NULL, 0));
    emit("server/ack", att_msg_ack_duplicate("c8", 12));
    static const char *const byes[] = {"replaced", "shutdown", "bad_token", "slow_reader",
                                       "hello_timeout"};
    for (size_t i = 0; i < 5; i++)
        emit("server/bye", att_msg_bye(byes[i]));
    harness_free(&h);
    harness_catalog_free();
    return 0;
}
