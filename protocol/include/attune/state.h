/* state.h - the room's state as JSON text for one viewer: the core's one
 * state serializer, and the room hash computed from its text.
 *
 * What a viewer may see of the state is decided here: a partner's state
 * carries no room-log seq (its `seq` counts its own audience), no
 * suspicion, no evidence and no counter that moves for events hidden from
 * it. The text is what json_dumps(JSON_COMPACT | JSON_SORT_KEYS) would
 * write for the same object (tests/unit/test_fold.c checks it byte for byte
 * against a jansson reference view, state_ref.c, over thousands of random
 * sessions); a caller that needs a json_t parses it with json_loadb.
 *
 * Pure: reads the room, writes into the caller's buffer (which may grow:
 * the only allocation, and the caller owns it). Any thread, one buffer per
 * writer. */
#ifndef ATTUNE_STATE_H
#define ATTUNE_STATE_H

#include "attune/buf.h"
#include "attune/room.h"

/* Appends the state object for `viewer` ({"type":"state",...,"you":...}
 * when with_type) to buf. Returns 0, or -1 when the buffer cannot grow. */
int att_state_write(const att_room *room, att_role viewer, int with_type, att_buf *buf);

/* The canonical state (the therapist's view without type, as written by
 * att_state_write) and its SHA-256 as 64 hex chars + NUL: what recovery,
 * --verify and replays compare. Returns 0 or a negative code. */
int att_state_hash(const att_room *room, char hex_out[65], att_error *err);

#endif
