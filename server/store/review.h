/* review.h - the review worker: one thread that builds the pages of the
 * session log (GET /api/rooms/{id}/log, room_log.h) so a long session's
 * review never holds the lws service thread. The service thread checks the
 * request (the therapist, the room, the page asked for), queues a job and
 * goes on serving; the worker folds the room's stored events through its
 * own store reader (store.h), writes the page's JSON body, puts the job on a
 * completion list and calls the notify function (the server's
 * srv_server_wake, i.e. lws_cancel_service). The service thread takes the
 * finished jobs in LWS_CALLBACK_EVENT_WAIT_CANCELLED and writes them out,
 * the hasher's hand-off (hasher.h).
 *
 * A session's pages are loaded in order, so the worker keeps the folded room
 * at the end of each page it built (a few, least recently used go first):
 * the next page starts from there, and loading a whole session folds each
 * event once.
 *
 * Threads: submit and take_done on the service thread; start/stop on
 * main's thread; jobs run on the worker's thread. Ownership: a submitted job
 * belongs to the worker until take_done hands it back (the caller frees it
 * with srv_review_job_free, or takes its body first); stop frees jobs never
 * taken back. */
#ifndef SRV_REVIEW_H
#define SRV_REVIEW_H

#include <stddef.h>
#include <stdint.h>
#include "attune/catalog.h"
#include "attune/room.h"
#include "attune/types.h"
#include "store.h"

/* Jobs queued, running or done but not yet written at once; more are
 * refused (the request gets 503 with Retry-After). */
#define SRV_REVIEW_MAX_PENDING 16
/* Events per page: the default and the most a request may ask for. */
#define SRV_REVIEW_DEFAULT_LIMIT 500
#define SRV_REVIEW_MAX_LIMIT 1000
/* A page ends after the event that takes its events past this many bytes
 * (a page always holds at least one event). */
#define SRV_REVIEW_PAGE_MAX_BYTES (4u << 20)
/* The worker thread's nice value: rooms first, reviews with what is left. */
#define SRV_REVIEW_NICE 10
/* Folded rooms kept for the next page: one per session being read in
 * order, so more than the requests that can be pending at once. */
#define SRV_REVIEW_CACHE 32

typedef struct srv_review_job srv_review_job;
struct srv_review_job {
    srv_review_job *next;
    uint64_t request_id; /* the caller's; names the waiting request */
    /* The request, filled by the service thread. */
    char room_id[ATT_ROOM_ID_BYTES + 1];
    const att_script *script; /* the catalog's */
    int64_t after_seq;        /* the page starts after this seq */
    int64_t upto_seq;         /* and covers at most this one (the room's committed seq) */
    int limit;
    int with_states;
    char *head; /* malloc'd members written first, without braces ("" or NULL: none) */
    /* The first page of a room whose summary the service thread could not
     * give (not in memory, none cached): the worker folds it at upto_seq and
     * writes it as "room" (summary.h). */
    int want_summary;
    int64_t summary_created_at;
    /* Written by the worker: 0 or a negative code with error set; the body
     * (body_headroom bytes, then body_len bytes of JSON and a NUL). */
    int result;
    att_error error;
    char *body;
    size_t body_len;
    int64_t build_ns; /* how long the worker took */
};

typedef struct srv_review srv_review;

/* Opens the worker's store reader and starts its thread. Every body gets
 * `headroom` free bytes before it (the server passes LWS_PRE). */
int srv_review_start(srv_store *store, const att_catalog *cat, const att_room_config *room_config,
                     size_t headroom, void (*notify)(void *arg), void *arg, srv_review **out,
                     att_error *err);
/* Stops the thread after the running job, frees every job it holds and
 * closes its reader. NULL is a no-op. */
void srv_review_stop(srv_review *rv);
/* Queues job (taken over). Fails (job not taken) with ATT_ERR_RATE_LIMITED
 * when SRV_REVIEW_MAX_PENDING are pending. */
int srv_review_submit(srv_review *rv, srv_review_job *job, att_error *err);
/* Every finished job, oldest first (a NULL-terminated list by next). */
srv_review_job *srv_review_take_done(srv_review *rv);
void srv_review_job_free(srv_review_job *job);

#endif
