/* log_fold.h - the one fold of a stored log: a room's events read from the
 * store in seq order and applied by the core (att_room_apply_stored, the
 * code the live server runs), with hooks before and after each event.
 * Recovery (rooms), --verify (admin.h), the session log (room_log.h),
 * `attune replay` and nothing else fold stored events.
 *
 *   srv_log_fold_init   the room before its first event: exercise from the
 *                       store, the caller's room options
 *   srv_log_fold        forward from room->seq through upto_seq
 *   srv_log_fold_room   both, through the end of the log
 *
 * Threads: the caller's, with the store handle or the reader it passes (a
 * srv_store_reader belongs to one thread; see store.h). Ownership: the
 * caller's att_room; nothing is kept between calls. */
#ifndef SRV_LOG_FOLD_H
#define SRV_LOG_FOLD_H

#include <jansson.h>
#include <stdint.h>
#include "attune/catalog.h"
#include "attune/room.h"
#include "store.h"

/* Where a fold reads: exactly one of the two is set. */
typedef struct {
    srv_store *store;         /* the store's own read connection (its caller's thread) */
    srv_store_reader *reader; /* a reader of another thread (review.h) */
} srv_log_source;

/* The walk over stored events of either source (store.h's contract). */
srv_walk srv_log_walk(const srv_log_source *src, const char *room_id, int64_t after_seq,
                      int64_t upto_seq, int limit, srv_stored_event_fn fn, void *arg,
                      att_error *err);

/* What a fold calls around each event; any hook may be NULL. */
typedef struct {
    /* Before ev is folded (room is still at ev->seq - 1). STOP or PAUSE end
     * the fold without folding ev. */
    srv_walk (*before)(const srv_stored_event *ev, const att_room *room, void *arg, att_error *err);
    /* After ev was folded into room. object is the event as parsed
     * (borrowed for the call) when with_object is set, else NULL. */
    srv_walk (*after)(const srv_stored_event *ev, json_t *object, const att_room *room, void *arg,
                      att_error *err);
    void *arg;
    int with_object;
} srv_fold_hooks;

/* A stored room before its first event, initialised into `out` with its
 * exercise from the store and `options` (NULL: the core's defaults);
 * script_out (when not NULL) gets its script. Returns 0 or a negative code
 * with err set (not found, or an exercise the catalog lacks). */
int srv_log_fold_init(srv_store *store, const att_catalog *cat, const att_room_config *options,
                      const char *room_id, att_room *out, const att_script **script_out,
                      att_error *err);

/* Folds `room` forward from room->seq through upto_seq (< 0: the end of the
 * log), at most `limit` events (<= 0: no limit), calling hooks (NULL: none).
 * Returns CONTINUE when it read that far (room->seq says where the log
 * ended), STOP or PAUSE when a hook answered so (room->seq is the last event
 * folded), FAILED with err set: a gap, an event that does not fold (room is
 * then at the event before it), the store, or a hook. */
srv_walk srv_log_fold(const srv_log_source *src, att_room *room, int64_t upto_seq, int limit,
                      const srv_fold_hooks *hooks, att_error *err);

/* srv_log_fold_init, then the whole log from the store (recovery, --verify).
 * Returns 0 when every event folded (or a hook stopped it), or a negative
 * code with err set. */
int srv_log_fold_room(srv_store *store, const att_catalog *cat, const att_room_config *options,
                      const char *room_id, const srv_fold_hooks *hooks, att_room *out,
                      const att_script **script_out, att_error *err);

#endif
