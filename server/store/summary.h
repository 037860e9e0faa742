/* summary.h - the room summary of protocol/HTTP.md (GET /api/rooms and the
 * `room` object of /api/rooms/{id}) built from a room's folded state.
 *
 * The same JSON is kept in the store's room_summaries table for rooms that
 * are not in memory (rooms.c writes it when a room is evicted), so the
 * dashboard's list never has to fold a room it could describe from there.
 * It holds no text a participant typed (ids, titles, counts, statuses).
 *
 * Owns nothing; pure (no I/O); any thread. */
#ifndef SRV_SUMMARY_H
#define SRV_SUMMARY_H

#include <jansson.h>
#include <stdint.h>
#include "attune/catalog.h"
#include "attune/room.h"

/* The summary of room `room_id` (exercise `script`, created at created_at ms)
 * in the therapist's view of `state`. NULL with err set on failure. */
json_t *srv_summary_json(const att_room *state, const att_script *script, const char *room_id,
                         int64_t created_at, att_error *err);

/* The therapist's view of the room's state as a JSON value: the core's
 * serializer's text (attune/state.h), parsed (the summary picks fields out
 * of it; --verify prints it whole). A new reference, NULL out of memory. */
json_t *srv_therapist_state_json(const att_room *room);

#endif
