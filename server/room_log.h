/* room_log.h - a room's whole session for review: every stored event with
 * the room's state right after it, folded by the core (att_room_init +
 * att_room_apply, the same code the live server and --verify run), and the
 * final state's hash. Serves GET /api/rooms/{id}/log.
 *
 * Threads: the caller's (the lws service thread); reads through the store's
 * read connection. Ownership: returns new jansson references the caller
 * owns. */
#ifndef SRV_ROOM_LOG_H
#define SRV_ROOM_LOG_H

#include <jansson.h>
#include <stdint.h>
#include "attune/catalog.h"
#include "attune/room.h"
#include "config.h"
#include "store.h"

/* A stored room before its first event: its exercise from the store and the
 * server's room configuration, initialised into `out` (script_out, if not
 * NULL, gets its script). Every fold of a stored log starts here: recovery,
 * --verify and the session log. Returns 0 or a negative code with err set. */
int srv_room_init_stored(srv_store *store, const att_catalog *cat, const srv_config *cfg,
                         const char *room_id, att_room *out, const att_script **script_out,
                         att_error *err);

/* Folds the room's events with seq <= upto_seq (upto_seq < 0: all) and
 * writes to *events_out an array of {"seq","event","state"} (state: the
 * therapist's view after that event) and to hash_out the state hash after
 * the last one. Returns 0 or a negative code with err set (not_found for an
 * unknown room, internal for a log that does not fold). */
int srv_room_log_build(srv_store *store, const att_catalog *cat, const srv_config *cfg,
                       const char *room_id, int64_t upto_seq, json_t **events_out,
                       char hash_out[65], att_error *err);

#endif
