/* room_log.h - a room's session for review (GET /api/rooms/{id}/log,
 * protocol/HTTP.md): its stored events folded by the one stored-log fold
 * (log_fold.h, the same code recovery and --verify run), written
 * out a page at a time as JSON text: each event as stored, and the
 * therapist's view of the state after it (the first event of a page carries
 * the whole state, each later one a patch: the top-level keys whose value
 * changed), within a count and a byte bound.
 *
 * Threads: the caller's, with the source it gives: the review worker
 * (review.h) runs them on its thread with its own store reader. Ownership:
 * the caller's att_room and att_buf; nothing is kept between calls. */
#ifndef SRV_ROOM_LOG_H
#define SRV_ROOM_LOG_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include "attune/catalog.h"
#include "attune/buf.h"
#include "attune/room.h"
#include "log_fold.h"
#include "store.h"

/* Folds `room` (already at room->seq) forward through upto_seq, writing
 * nothing. Returns 0 or a negative code with err set (internal for a log
 * that does not fold, a gap, or one that ends before upto_seq). */
int srv_room_log_fold(const srv_log_source *src, att_room *room, int64_t upto_seq, att_error *err);

typedef struct {
    int limit;        /* events at most (>= 1) */
    size_t max_bytes; /* the page ends after the event that takes it past this */
    int with_states;  /* 1: state / patch after each event; 0: events only */
} srv_log_page_opts;

/* Folds `room` forward from room->seq through at most upto_seq, appending
 * to out the JSON array of the events it folded:
 * [{"seq":N,"event":{...},"state":{...}}, {"seq":N+1,"event":{...},
 * "patch":{...}}, ...] (no state or patch without with_states). On return
 * room->seq is the last event written. Returns 0 or a negative code with err
 * set. */
int srv_room_log_page(const srv_log_source *src, att_room *room, int64_t upto_seq,
                      const srv_log_page_opts *opts, att_buf *out, att_error *err);

/* Appends len bytes to out (growing it). 0, or -1 out of memory. */
int srv_log_buf_put(att_buf *out, const char *text, size_t len);

#endif
