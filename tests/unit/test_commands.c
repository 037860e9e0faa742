/* test_commands.c - client command ids (PROTOCOL.md section 4): the codec's
 * syntax, the stored form and its wire cut, and the room's command table
 * (recorded by the fold, rebuilt by a refold, bounded). */
#include "check.h"
#include "room_harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ID_A "cmd-AAAAAAAAAAAAAAAA"
#define ID_B "cmd_BBBBBBBBBBBBBBBB"

static int decode_code(const char *text)
{
    att_msg m;
    att_error err = {0};
    int rc = att_msg_decode(text, strlen(text), &m, &err);
    att_msg_release(&m);
    return rc == 0 ? 0 : (int)err.code;
}

static void test_codec(void)
{
    att_msg m;
    att_error err = {0};
    const char *note =
        "{\"type\":\"note\",\"id\":\"7\",\"text\":\"x\",\"command_id\":\"" ID_A "\"}";
    CHECK_INT(att_msg_decode(note, strlen(note), &m, &err), 0);
    CHECK(m.command_id && strcmp(m.command_id, ID_A) == 0);
    CHECK_STR(m.id, "7");
    att_msg_release(&m);
    /* absent: NULL, as before */
    const char *plain = "{\"type\":\"note\",\"text\":\"x\"}";
    CHECK_INT(att_msg_decode(plain, strlen(plain), &m, &err), 0);
    CHECK(m.command_id == NULL);
    att_msg_release(&m);
    /* every type that appends may carry one */
    CHECK_INT(decode_code("{\"type\":\"consent\",\"accept\":true,\"command_id\":\"" ID_A "\"}"), 0);
    CHECK_INT(decode_code("{\"type\":\"ask_therapist\",\"command_id\":\"" ID_A "\"}"), 0);
    CHECK_INT(decode_code("{\"type\":\"consent_withdraw\",\"command_id\":\"" ID_A "\"}"), 0);
    CHECK_INT(decode_code("{\"type\":\"pause_request\",\"command_id\":\"" ID_A "\"}"), 0);
    CHECK_INT(
        decode_code("{\"type\":\"turn\",\"step\":\"s\",\"input\":{},\"command_id\":\"" ID_A "\"}"),
        0);
    /* exactly 16 and 64 bytes */
    CHECK_INT(decode_code("{\"type\":\"ask_therapist\",\"command_id\":\"0123456789abcdef\"}"), 0);
    CHECK_INT(decode_code("{\"type\":\"ask_therapist\",\"command_id\":\"0123456789abcdef0123456789"
                          "abcdef0123456789abcdef0123456789abcdef\"}"),
              0);
    /* malformed: bad_message */
    CHECK_INT(decode_code("{\"type\":\"ask_therapist\",\"command_id\":\"0123456789abcde\"}"),
              ATT_ERR_BAD_MESSAGE);
    CHECK_INT(decode_code("{\"type\":\"ask_therapist\",\"command_id\":\"0123456789abcdef0123456789"
                          "abcdef0123456789abcdef0123456789abcdef0\"}"),
              ATT_ERR_BAD_MESSAGE);
    CHECK_INT(decode_code("{\"type\":\"ask_therapist\",\"command_id\":\"0123456789abcdef+\"}"),
              ATT_ERR_BAD_MESSAGE);
    CHECK_INT(decode_code("{\"type\":\"ask_therapist\",\"command_id\":\"0123456789abcd\\\"ef\"}"),
              ATT_ERR_BAD_MESSAGE);
    CHECK_INT(decode_code("{\"type\":\"ask_therapist\",\"command_id\":12345678901234567}"),
              ATT_ERR_BAD_MESSAGE);
    CHECK_INT(decode_code("{\"type\":\"ask_therapist\",\"command_id\":null}"), ATT_ERR_BAD_MESSAGE);
    /* types that append nothing take none */
    CHECK_INT(decode_code("{\"type\":\"ping\",\"command_id\":\"" ID_A "\"}"), ATT_ERR_BAD_MESSAGE);
    CHECK_INT(decode_code("{\"type\":\"typing\",\"command_id\":\"" ID_A "\"}"),
              ATT_ERR_BAD_MESSAGE);
    CHECK_INT(decode_code("{\"type\":\"hello\",\"token\":\"t\",\"command_id\":\"" ID_A "\"}"),
              ATT_ERR_BAD_MESSAGE);
    /* the duplicate's ack */
    json_t *ack = att_msg_ack_duplicate("7", 12);
    char *text = att_json_dump(ack, NULL);
    CHECK_STR(text, "{\"duplicate\":true,\"id\":\"7\",\"seq\":12,\"type\":\"ack\"}");
    free(text);
    json_decref(ack);
}

/* The stored text of an event cuts back to exactly its wire text. */
static void check_cut(const att_event *ev, const att_script *script)
{
    size_t len = 0;
    char *stored = att_event_encode_stored(ev, script, &len);
    CHECK(stored != NULL);
    if (!stored)
        return;
    json_t *obj = att_event_to_json(ev, script);
    char *wire = att_json_dump(obj, NULL);
    json_decref(obj);
    size_t cut = att_event_wire_cut(stored, len);
    if (ev->command_id) {
        CHECK(cut < len);
        CHECK(strstr(stored, ev->command_id) != NULL);
        CHECK(cut + 1 == strlen(wire) && memcmp(stored, wire, cut) == 0);
        /* and it parses back with the id */
        json_t *back = json_loads(stored, 0, NULL);
        att_event dec;
        att_error err = {0};
        CHECK_INT(att_event_from_json(back, script, &dec, &err), 0);
        CHECK(dec.command_id && strcmp(dec.command_id, ev->command_id) == 0);
        CHECK_INT(dec.command_events, ev->command_events);
        json_decref(back);
    } else {
        CHECK(cut == len);
        CHECK_STR(stored, wire);
    }
    free(wire);
    free(stored);
}

static void test_stored_form(void)
{
    const att_catalog *cat = harness_catalog();
    const att_script *script = att_catalog_script(cat, "enactment");
    att_event ev;
    memset(&ev, 0, sizeof ev);
    ev.type = ATT_EV_NOTE;
    ev.at = 5;
    ev.by = ATT_ROLE_THERAPIST;
    ev.step = -1;
    ev.text = "plain";
    check_cut(&ev, script);
    ev.command_id = ID_A;
    ev.command_events = 1;
    check_cut(&ev, script);
    ev.command_events = 3;
    check_cut(&ev, script);
    /* A text that looks like the tail is inside a string: never cut. */
    ev.command_id = NULL;
    ev.command_events = 0;
    ev.text = ",\"command_id\":\"" ID_A "\",\"command_events\":1}";
    check_cut(&ev, script);
    /* nor a tail without the rest */
    const char *fake[] = {
        "{\"at\":1,\"command_id\":\"" ID_A "\",\"command_events\":1}",
        "{\"at\":1,\"by\":\"therapist\",\"type\":\"note\"}",
        "}",
        "",
        "{\"a\":\"x\",\"command_events\":1}",
        "{\"a\":1,\"command_id\":\"short\",\"command_events\":1}",
        "{\"a\":1,\"command_id\":\"" ID_A "\",\"command_events\":123}",
    };
    CHECK(att_event_wire_cut(fake[0], strlen(fake[0])) == 7); /* a real tail: {"at":1 + } */
    for (size_t i = 1; i < sizeof fake / sizeof fake[0]; i++)
        CHECK_MSG(att_event_wire_cut(fake[i], strlen(fake[i])) == strlen(fake[i]), "fake %zu", i);
    /* an id the codec would refuse is never stored */
    ev.text = "x";
    ev.command_id = "bad id with spaces";
    ev.command_events = 1;
    CHECK(att_event_encode_stored(&ev, script, NULL) == NULL);
}

static const att_command *find_in_refold(harness *h, att_room *r, att_role role, const char *id)
{
    att_error err = {0};
    att_room_init(r, h->cat, h->room.script, h->room.room_id, &h->room.config, &err);
    size_t i;
    json_t *entry;
    json_array_foreach(h->log, i, entry)
    {
        /* as the store gives it back: the stored text */
        char *text = att_json_dump(json_object_get(entry, "event"), NULL);
        int64_t seq = json_integer_value(json_object_get(entry, "seq"));
        int rc = att_room_apply_stored(r, seq, text, strlen(text), NULL, &err);
        free(text);
        if (rc != 0) {
            fprintf(stderr, "refold: %s\n", err.message);
            return NULL;
        }
    }
    return att_room_find_command(r, role, id);
}

static void test_table(void)
{
    harness h;
    harness_init(&h, "enactment");
    harness_start(&h);
    CHECK_INT(h.room.n_commands, 0);
    CHECK(att_room_find_command(&h.room, ATT_ROLE_THERAPIST, ID_A) == NULL);
    CHECK_INT(harness_cmd(&h, ATT_ROLE_THERAPIST,
                          "{\"type\":\"note\",\"text\":\"n\",\"command_id\":\"" ID_A "\"}"),
              0);
    const att_command *c = att_room_find_command(&h.room, ATT_ROLE_THERAPIST, ID_A);
    CHECK(c != NULL);
    if (c) {
        CHECK(c->seq == h.room.seq);
        CHECK(c->last_seq == h.room.seq);
        CHECK(c->ack_seq == h.room.aud_seq[ATT_ROLE_THERAPIST]);
    }
    /* another role's id space */
    CHECK(att_room_find_command(&h.room, ATT_ROLE_PARTNER_A, ID_A) == NULL);
    /* a partner's command: its ack numbers the partner's own events */
    CHECK_INT(harness_cmd(&h, ATT_ROLE_PARTNER_B,
                          "{\"type\":\"pause_request\",\"command_id\":\"" ID_A "\"}"),
              0);
    const att_command *p = att_room_find_command(&h.room, ATT_ROLE_PARTNER_B, ID_A);
    CHECK(p != NULL);
    if (p) {
        CHECK(p->ack_seq == h.room.aud_seq[ATT_ROLE_PARTNER_B]);
        CHECK(p->ack_seq < p->seq); /* the therapist's note is hidden from partners */
    }
    /* the fold rebuilds it from the stored log */
    att_room *r = malloc(sizeof *r);
    const att_command *again = find_in_refold(&h, r, ATT_ROLE_PARTNER_B, ID_A);
    CHECK(again != NULL && p != NULL);
    if (again && p) {
        CHECK(again->seq == p->seq && again->last_seq == p->last_seq &&
              again->ack_seq == p->ack_seq);
    }
    CHECK(find_in_refold(&h, r, ATT_ROLE_THERAPIST, ID_A) != NULL);
    CHECK_INT(r->n_commands, 2);
    /* the copy keeps it */
    att_room *copy = malloc(sizeof *copy);
    att_room_copy(copy, &h.room);
    CHECK(att_room_find_command(copy, ATT_ROLE_PARTNER_B, ID_A) != NULL);
    free(copy);
    /* bounded: the last ATT_MAX_COMMANDS, the oldest go first */
    int total = ATT_MAX_COMMANDS + 70;
    for (int i = 0; i < total; i++)
        CHECK_INT(harness_cmdf(&h, ATT_ROLE_THERAPIST,
                               "{\"type\":\"note\",\"text\":\"n\",\"command_id\":\"note-%012d\"}",
                               i),
                  0);
    CHECK_INT(h.room.n_commands, ATT_MAX_COMMANDS);
    char id[32];
    int found = 0;
    for (int i = 0; i < total; i++) {
        snprintf(id, sizeof id, "note-%012d", i);
        const att_command *k = att_room_find_command(&h.room, ATT_ROLE_THERAPIST, id);
        CHECK_MSG((k != NULL) == (i >= total - ATT_MAX_COMMANDS), "command %d", i);
        found += k != NULL;
    }
    CHECK_INT(found, ATT_MAX_COMMANDS);
    CHECK(att_room_find_command(&h.room, ATT_ROLE_PARTNER_B, ID_A) == NULL);
    /* and the refold keeps the same ones */
    snprintf(id, sizeof id, "note-%012d", total - 1);
    CHECK(find_in_refold(&h, r, ATT_ROLE_THERAPIST, id) != NULL);
    snprintf(id, sizeof id, "note-%012d", total - ATT_MAX_COMMANDS - 1);
    CHECK(att_room_find_command(r, ATT_ROLE_THERAPIST, id) == NULL);
    char live[65], folded[65];
    att_error err = {0};
    att_state_hash(&h.room, live, &err);
    att_state_hash(r, folded, &err);
    CHECK_STR(live, folded);
    free(r);
    harness_free(&h);
}

/* A command whose events the detector extends: the ack names the last the
 * sender may see, the table the same. */
static void test_turn_ack(void)
{
    harness h;
    harness_init(&h, "enactment");
    harness_start(&h);
    att_role actor = att_room_actor(&h.room);
    json_t *input = harness_valid_input(&h, 0);
    char *in = att_json_dump(input, NULL);
    json_decref(input);
    const char *step = h.room.script->steps[h.room.step].id;
    CHECK_INT(harness_cmdf(&h, actor,
                           "{\"type\":\"turn\",\"step\":\"%s\",\"input\":%s,\"command_id\":\"%s\"}",
                           step, in, ID_B),
              0);
    free(in);
    const att_command *c = att_room_find_command(&h.room, actor, ID_B);
    CHECK(c != NULL);
    if (c) {
        CHECK(c->last_seq == h.room.seq);
        CHECK(c->seq == h.room.seq - h.last_n + 1);
        CHECK(c->ack_seq == h.room.aud_seq[actor]);
    }
    /* the stored event carries it, first of the command's events */
    json_t *first = json_array_get(h.last_events, 0);
    CHECK_STR(json_string_value(json_object_get(first, "command_id")), ID_B);
    CHECK_INT((int)json_integer_value(json_object_get(first, "command_events")), h.last_n);
    harness_free(&h);
}

int main(void)
{
    test_codec();
    test_stored_form();
    test_table();
    test_turn_ack();
    harness_catalog_free();
    return check_done("commands");
}
