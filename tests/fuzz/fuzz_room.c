/* fuzz_room.c - libFuzzer target for the engine, detector and fold: the
 * input is a sequence of lines "<role digit><tick digit><json command>". Every
 * command is decoded, decided and folded as the server does; at the end the
 * log refolded from its JSON must give the live state's hash. */
#include "attune/catalog.h"
#include "attune/msg.h"
#include "attune/room.h"

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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static att_room room, replay;
    att_error err;
    const att_script *s = att_catalog_script_at(catalog, size ? data[0] % 3 : 0);
    if (att_room_init(&room, catalog, s, "fuzz", NULL, &err) ||
        att_room_init(&replay, catalog, s, "fuzz", NULL, &err))
        abort();
    json_t *log = json_array();
    att_event evs[ATT_MAX_EVENTS_PER_COMMAND];
    int64_t now = 1000;
    att_room_created_event(&room, now, ATT_ROLE_PARTNER_A, &evs[0]);
    int n = 1;
    size_t pos = size ? 1 : 0;
    for (int guard = 0; guard < 200; guard++) {
        for (int i = 0; i < n; i++) {
            if (att_room_apply(&room, &evs[i], &err))
                abort(); /* decided events must always fold */
            json_array_append_new(log, att_event_to_json(&evs[i], s));
        }
        n = 0;
        if (pos + 2 > size)
            break;
        att_role role = (att_role)(data[pos] % 4);
        int tick = data[pos + 1];
        pos += 2;
        const uint8_t *nl = memchr(data + pos, '\n', size - pos);
        size_t len = nl ? (size_t)(nl - (data + pos)) : size - pos;
        now += tick * 1000;
        if (tick % 7 == 1) {
            att_room_decide_join(&room, role, now, evs, &n);
        } else if (tick % 7 == 2) {
            att_room_decide_leave(&room, role, ATT_LEFT_CLOSED, now, evs, &n);
        } else if (tick % 7 == 3) {
            n = att_room_tick(&room, now, evs);
        } else {
            att_msg msg;
            if (att_msg_decode((const char *)data + pos, len, &msg, &err) == 0)
                att_room_decide(&room, role, &msg, now, evs, &n, &err);
            /* the events borrow from msg: fold them before releasing it */
            for (int i = 0; i < n; i++) {
                if (att_room_apply(&room, &evs[i], &err))
                    abort();
                json_array_append_new(log, att_event_to_json(&evs[i], s));
            }
            n = 0;
            att_msg_release(&msg);
        }
        pos += len + (nl ? 1 : 0);
    }
    size_t i;
    json_t *e;
    json_array_foreach(log, i, e)
    {
        att_event ev;
        if (att_event_from_json(e, s, &ev, &err))
            abort();
        ev.seq = (int64_t)i + 1;
        if (att_room_apply(&replay, &ev, &err))
            abort();
    }
    char a[65], b[65];
    if (att_room_state_hash(&room, a, &err) || att_room_state_hash(&replay, b, &err) ||
        strcmp(a, b) != 0)
        abort();
    json_decref(log);
    return 0;
}
