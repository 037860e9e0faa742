/* fuzz_room.c - libFuzzer target for the engine, detector and fold: the
 * input is a sequence of lines "<role byte><tick byte><json command>". The
 * role byte's low two bits pick the role (partner_a, partner_b, therapist,
 * observer); the tick byte advances the clock by tick seconds and, modulo 7,
 * picks what happens: 1 a join (a takeover, `replaced`, when the role byte's
 * high bit is set), 2 a leave (the reason from role bits 2-3), 3 a clock tick
 * (with a typing signal tick ms ago when tick / 7 is odd), anything else the
 * JSON command. Every command is decoded, decided and folded as the server
 * does. The fold's invariants, checked as it goes:
 *  - decided events always fold;
 *  - each audience's seq counts the events att_event_visible_to lets it see,
 *    and the therapist's is the room's seq;
 *  - a partner's state text is byte for byte unchanged by a command none of
 *    whose events that partner may see;
 *  - each event's stored text (att_event_encode_stored) cut back to its wire
 *    form (att_event_wire_cut) is exactly its wire JSON, and has a command
 *    tail exactly when the event carries a command id;
 *  - at the end, every viewer's state text parses with sorted keys (the
 *    sorted compact dump of the parse is the text), a partner's carries no
 *    staff key, and the log refolded from its stored JSON gives the live
 *    hash and the same command table. */
#include "attune/catalog.h"
#include "attune/msg.h"
#include "attune/room.h"
#include "attune/engine.h"
#include "attune/detector.h"
#include "attune/state.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static att_catalog *catalog;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    att_error err;
    if (att_catalog_load_dir(ATTUNE_PROTOCOL_DIR, &catalog, &err) != 0)
        abort();
    return 0;
}

static const att_role viewers[] = {ATT_ROLE_PARTNER_A, ATT_ROLE_PARTNER_B, ATT_ROLE_THERAPIST,
                                   ATT_ROLE_OBSERVER};

static const char *const staff_keys[] = {
    "\"suspicions\":",       "\"suspicions_dropped\":", "\"next_rupture_id\":",
    "\"step_started_seq\":", "\"evidence\":",           "\"opened_seq\":",
    "\"confirmed\":",        "\"suspicion_id\":",       "\"private_line\":"};

typedef struct {
    att_room *room;
    const att_script *script;
    json_t *log;
    int64_t counts[4];
    att_buf before[2], after[2];
} session;

/* Folds n decided events (they may borrow from a command still alive),
 * keeping the audience counts and checking that a partner who may see none
 * of them has the same state text as before. */
/* The event as the store keeps it, parsed; aborts when its wire cut is
 * not its wire JSON. */
static json_t *stored_event(const att_event *ev, const att_script *script)
{
    size_t len = 0, wire_len = 0;
    char *stored = att_event_encode_stored(ev, script, &len);
    json_t *w = att_event_to_json(ev, script);
    char *wire = att_json_dump(w, &wire_len);
    json_decref(w);
    if (!stored || !wire)
        abort();
    size_t cut = att_event_wire_cut(stored, len);
    if ((cut < len) != (ev->command_id != NULL))
        abort();
    if (cut == len ? wire_len != len || memcmp(stored, wire, len) != 0
                   : wire_len != cut + 1 || memcmp(stored, wire, cut) != 0 || wire[cut] != '}')
        abort();
    json_t *obj = json_loadb(stored, len, 0, NULL);
    free(stored);
    free(wire);
    if (!obj)
        abort();
    return obj;
}

static void fold(session *s, att_event *evs, int n)
{
    if (n <= 0)
        return;
    unsigned seen = 0;
    for (int p = 0; p < 2; p++) {
        s->before[p].len = 0;
        if (att_state_write(s->room, viewers[p], 1, &s->before[p]))
            abort();
    }
    att_error err;
    for (int i = 0; i < n; i++) {
        if (att_room_apply(s->room, &evs[i], &err))
            abort(); /* decided events must always fold */
        unsigned aud = att_event_audience(&evs[i]);
        seen |= aud;
        for (int v = 0; v < 4; v++)
            s->counts[v] += (aud >> v) & 1;
        json_array_append_new(s->log, stored_event(&evs[i], s->script));
    }
    for (int v = 0; v < 4; v++)
        if (s->room->aud_seq[v] != s->counts[v])
            abort();
    if (s->room->aud_seq[ATT_ROLE_THERAPIST] != s->room->seq)
        abort();
    for (int p = 0; p < 2; p++) {
        if (seen & (1u << p))
            continue;
        s->after[p].len = 0;
        if (att_state_write(s->room, viewers[p], 1, &s->after[p]))
            abort();
        if (s->after[p].len != s->before[p].len ||
            memcmp(s->after[p].data, s->before[p].data, s->after[p].len) != 0)
            abort(); /* a hidden event moved a partner's state */
    }
}

static void check_states(const att_room *room)
{
    for (int v = 0; v < 4; v++) {
        att_buf b = {0};
        if (att_state_write(room, viewers[v], 1, &b))
            abort();
        json_error_t jerr;
        json_t *j = json_loadb(b.data, b.len, JSON_REJECT_DUPLICATES, &jerr);
        char *sorted = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
        if (!sorted || strcmp(sorted, b.data) != 0)
            abort();
        if (v < 2)
            for (size_t k = 0; k < sizeof staff_keys / sizeof staff_keys[0]; k++)
                if (strstr(b.data, staff_keys[k]))
                    abort();
        free(sorted);
        json_decref(j);
        att_buf_free(&b);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static att_room room, replay;
    att_error err;
    const att_script *script = att_catalog_script_at(catalog, size ? data[0] % 3 : 0);
    if (att_room_init(&room, catalog, script, "fuzz", NULL, &err) ||
        att_room_init(&replay, catalog, script, "fuzz", NULL, &err))
        abort();
    session s = {.room = &room, .script = script, .log = json_array()};
    att_event evs[ATT_MAX_EVENTS_PER_COMMAND];
    int64_t now = 1000;
    att_room_created_event(&room, now, ATT_ROLE_PARTNER_A, &evs[0]);
    fold(&s, evs, 1);
    size_t pos = size ? 1 : 0;
    for (int guard = 0; guard < 200 && pos + 2 <= size; guard++) {
        uint8_t rb = data[pos];
        att_role role = (att_role)(rb % 4);
        int tick = data[pos + 1];
        pos += 2;
        const uint8_t *nl = memchr(data + pos, '\n', size - pos);
        size_t len = nl ? (size_t)(nl - (data + pos)) : size - pos;
        now += tick * 1000;
        int n = 0;
        if (tick % 7 == 1) {
            if (rb & 0x80)
                att_engine_decide_replaced(&room, role, now, evs, &n);
            else
                att_engine_decide_join(&room, role, now, evs, &n);
            fold(&s, evs, n);
        } else if (tick % 7 == 2) {
            att_engine_decide_leave(&room, role, (att_left_reason)((rb >> 2) % ATT_LEFT__COUNT),
                                    now, evs, &n);
            fold(&s, evs, n);
        } else if (tick % 7 == 3) {
            int64_t composing = (tick / 7) % 2 ? now - tick : 0;
            int64_t deadline = att_detector_next_deadline(&room, composing);
            n = att_detector_tick(&room, now, composing, evs);
            if (n > 0 && (deadline < 0 || deadline > now))
                abort(); /* the timer the server arms must not miss an event */
            fold(&s, evs, n);
        } else {
            att_msg msg;
            if (att_msg_decode((const char *)data + pos, len, &msg, &err) == 0 &&
                att_engine_decide(&room, role, &msg, now, evs, &n, &err) != 0)
                n = 0;
            fold(&s, evs, n); /* the events borrow from msg: fold them before releasing it */
            att_msg_release(&msg);
        }
        pos += len + (nl ? 1 : 0);
    }
    check_states(&room);
    size_t i;
    json_t *e;
    json_array_foreach(s.log, i, e)
    {
        att_event ev;
        if (att_event_from_json(e, script, &ev, &err))
            abort();
        ev.seq = (int64_t)i + 1;
        if (att_room_apply(&replay, &ev, &err))
            abort();
    }
    char a[65], b[65];
    if (att_state_hash(&room, a, &err) || att_state_hash(&replay, b, &err) || strcmp(a, b) != 0)
        abort();
    for (int v = 0; v < 4; v++)
        if (replay.aud_seq[v] != room.aud_seq[v])
            abort();
    if (replay.n_commands != room.n_commands || replay.newest_command != room.newest_command ||
        memcmp(replay.commands, room.commands, (size_t)room.n_commands * sizeof room.commands[0]))
        abort(); /* the refold knows the same commands */
    for (int p = 0; p < 2; p++) {
        att_buf_free(&s.before[p]);
        att_buf_free(&s.after[p]);
    }
    json_decref(s.log);
    return 0;
}
