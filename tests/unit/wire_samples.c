/* wire_samples.c - prints, one JSON object per line, every server message the
 * C core produces in a scripted session that raises every event type:
 * {"schema":"server/event"|"event/<type>"|"server/state"|"server/ack"|
 * "server/error"|"server/bye","message":{...}}. tests/schema/wire.test.mjs
 * validates each against protocol/schema/, so the schemas describe exactly
 * what the code emits. */
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

static void emit_last(harness *h)
{
    size_t i;
    json_t *ev;
    size_t base = json_array_size(h->log) - json_array_size(h->last_events);
    json_array_foreach(h->last_events, i, ev)
    {
        char schema[64];
        snprintf(schema, sizeof schema, "event/%s", json_string_value(json_object_get(ev, "type")));
        emit(schema, json_incref(ev));
        json_t *entry = json_array_get(h->log, base + i);
        emit("server/event", att_msg_event(json_integer_value(json_object_get(entry, "seq")), ev));
    }
    static const att_role roles[] = {ATT_ROLE_PARTNER_A, ATT_ROLE_PARTNER_B, ATT_ROLE_THERAPIST,
                                     ATT_ROLE_OBSERVER};
    for (size_t r = 0; r < 4; r++)
        emit("server/state", att_room_state_json(&h->room, roles[r], 1));
}

static void cmd(harness *h, att_role role, const char *text)
{
    if (harness_cmd(h, role, text) != 0) {
        fprintf(stderr, "wire_samples: %s refused: %s\n", text, h->last_err.message);
        exit(1);
    }
    emit("server/ack", att_msg_ack("c1", h->room.seq));
    emit_last(h);
}

int main(void)
{
    harness h;
    harness_init(&h, "enactment");
    emit_last(&h);
    harness_join(&h, ATT_ROLE_THERAPIST);
    emit_last(&h);
    harness_join(&h, ATT_ROLE_OBSERVER);
    emit_last(&h);
    harness_join(&h, ATT_ROLE_PARTNER_A);
    emit_last(&h);
    harness_join(&h, ATT_ROLE_PARTNER_B);
    emit_last(&h);
    cmd(&h, ATT_ROLE_PARTNER_A, "{\"type\":\"consent\",\"accept\":true}");
    cmd(&h, ATT_ROLE_PARTNER_B, "{\"type\":\"consent\",\"accept\":true,\"id\":\"b-1\"}");
    cmd(&h, ATT_ROLE_PARTNER_A,
        "{\"type\":\"turn\",\"step\":\"what_happened\",\"input\":{\"what_happened\":\"You "
        "never listen when I talk about work.\"}}");
    cmd(&h, ATT_ROLE_THERAPIST, "{\"type\":\"rupture_confirm\",\"rupture_id\":1}");
    harness_leave(&h, ATT_ROLE_PARTNER_A);
    emit_last(&h);
    harness_join(&h, ATT_ROLE_PARTNER_A);
    emit_last(&h);
    harness_tick(&h, ATT_DEFAULT_SILENCE_MS);
    emit_last(&h);
    while (h.room.step != 4) { /* to the reflection */
        if (harness_turn(&h, 0)) {
            fprintf(stderr, "turn refused: %s\n", h.last_err.message);
            return 1;
        }
        emit_last(&h);
    }
    for (int i = 0; i < 2; i++) { /* two rejected reflections */
        harness_turn(&h, 0);
        emit_last(&h);
        harness_turn(&h, 1);
        emit_last(&h);
    }
    cmd(&h, ATT_ROLE_PARTNER_B, "{\"type\":\"pause_request\",\"note\":\"I need a minute\"}");
    cmd(&h, ATT_ROLE_PARTNER_A, "{\"type\":\"repair_attempt\",\"text\":\"Let me try again\"}");
    char buf[160];
    snprintf(buf, sizeof buf, "{\"type\":\"repair_accept\",\"attempt_seq\":%lld}",
             (long long)h.room.seq);
    cmd(&h, ATT_ROLE_PARTNER_B, buf);
    cmd(&h, ATT_ROLE_THERAPIST,
        "{\"type\":\"rupture_mark\",\"kind\":\"confrontation\",\"marker\":\"defending_self\","
        "\"who\":\"partner_a\",\"with\":\"therapist\",\"note\":\"defended at the reflection\"}");
    snprintf(buf, sizeof buf,
             "{\"type\":\"rupture_repair\",\"rupture_id\":%d,\"strategy\":\"empathize\"}",
             h.room.next_rupture_id - 1);
    cmd(&h, ATT_ROLE_THERAPIST, buf);
    cmd(&h, ATT_ROLE_THERAPIST, "{\"type\":\"control\",\"action\":\"resume\"}");
    harness_turn(&h, 0); /* a third reflection */
    emit_last(&h);
    harness_turn(&h, 0); /* confirmed: the misattunement is repaired */
    emit_last(&h);
    cmd(&h, ATT_ROLE_PARTNER_B,
        "{\"type\":\"repair_attempt\",\"text\":\"whatever, you always say that\"}");
    snprintf(buf, sizeof buf,
             "{\"type\":\"rupture_dismiss\",\"rupture_id\":%d,\"note\":\"joking\"}",
             h.room.next_rupture_id - 1);
    cmd(&h, ATT_ROLE_THERAPIST, buf);
    cmd(&h, ATT_ROLE_THERAPIST, "{\"type\":\"note\",\"text\":\"softening starts here\"}");
    static const char *const actions[] = {"pause",   "resume",  "swap", "swap", "advance",
                                          "advance", "advance", "back", "end"};
    for (size_t i = 0; i < sizeof actions / sizeof actions[0]; i++) {
        snprintf(buf, sizeof buf, "{\"type\":\"control\",\"action\":\"%s\"}", actions[i]);
        cmd(&h, ATT_ROLE_THERAPIST, buf);
    }
    att_event evs[ATT_MAX_EVENTS_PER_COMMAND];
    int n = 0;
    static const att_left_reason reasons[] = {ATT_LEFT_TIMEOUT, ATT_LEFT_SLOW_READER,
                                              ATT_LEFT_SHUTDOWN};
    for (size_t i = 0; i < 3; i++) {
        att_room_decide_leave(&h.room, ATT_ROLE_THERAPIST, reasons[i], h.now, evs, &n);
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
    static const char *const byes[] = {"replaced", "shutdown", "bad_token", "slow_reader",
                                       "hello_timeout"};
    for (size_t i = 0; i < 5; i++)
        emit("server/bye", att_msg_bye(byes[i]));
    harness_free(&h);
    harness_catalog_free();
    return 0;
}
