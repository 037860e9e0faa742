/* store_backend.h - how a store implementation plugs in behind store.h
 * (issue 13). A backend (store_sqlite.c, store_pg.c) fills one static
 * srv_store_ops table with its own functions, each taking the backend's
 * object as `void *impl` (and a reader's as `void *reader`), and makes its
 * srv_store with srv_store_wrap; store.c implements every store.h function
 * by calling through the table. Each op does exactly what store.h says of
 * the function of the same name.
 *
 * Every op is required except node_id (NULL: the store has no node id, "").
 *
 * Ownership: the srv_store owns impl from a successful srv_store_wrap on;
 * srv_store_close calls ops->close(impl) and frees the wrapper. A
 * srv_store_reader (store.c's wrapper) owns the backend reader it holds. */
#ifndef SRV_STORE_BACKEND_H
#define SRV_STORE_BACKEND_H

#include "store.h"

struct srv_store_ops {
    const char *kind; /* "sqlite", "postgresql": srv_store_kind */

    int (*start)(void *impl, int window_us, srv_store_notify_fn notify,
                 srv_store_discard_fn discard, void *arg, att_error *err);
    void (*close)(void *impl);
    int (*create_room)(void *impl, const srv_store_room *room, const char *first_event, size_t len,
                       att_error *err);
    int (*get_room)(void *impl, const char *id, srv_store_room *out, att_error *err);
    int (*list_rooms)(void *impl, int (*fn)(const srv_store_room *room, void *arg), void *arg,
                      att_error *err);
    srv_walk (*walk_events)(void *impl, const char *room_id, int64_t after_seq, int64_t upto_seq,
                            int limit, srv_stored_event_fn fn, void *arg, att_error *err);

    /* The backend's reader for one other thread (store.h's srv_store_reader). */
    int (*reader_open)(void *impl, void **reader_out, att_error *err);
    void (*reader_close)(void *reader);
    srv_walk (*reader_walk_events)(void *reader, const char *room_id, int64_t after_seq,
                                   int64_t upto_seq, int limit, srv_stored_event_fn fn, void *arg,
                                   att_error *err);

    int (*last_seq)(void *impl, const char *room_id, int64_t *out, att_error *err);
    int (*append)(void *impl, srv_store_batch *batch, att_error *err);
    srv_store_batch *(*take_completed)(void *impl);
    int (*get_summary)(void *impl, const char *room_id, char **out, att_error *err);
    int (*scan_stale_summaries)(void *impl, const char *after_id, int limit,
                                char last_out[SRV_STORE_ID_BYTES + 1], int *n_out,
                                int (*fn)(const char *room_id, int64_t last_seq, void *arg),
                                void *arg, att_error *err);
    int (*put_summaries)(void *impl, const srv_store_summary *items, size_t n, att_error *err);
    int (*get_setting)(void *impl, const char *key, char *out, size_t out_size, att_error *err);
    int (*set_setting)(void *impl, const char *key, const char *value, att_error *err);
    void (*get_stats)(void *impl, srv_store_stats *out);
    int (*verify_room)(void *impl, const char *room, srv_chain_report *out, att_error *err);
    int (*erase_room)(void *impl, const char *room, att_error *err);
    void (*fail_nth_batch)(void *impl, int nth);

    int (*acquire_room)(void *impl, const char *room, srv_store_lease *out, att_error *err);
    int (*release_room)(void *impl, const char *room, att_error *err);
    int (*take_wanted)(void *impl, char (*out)[SRV_STORE_ID_BYTES + 1], int max);
    int (*node_alive)(void *impl);
    const char *(*node_id)(const void *impl); /* optional */
};

struct srv_store {
    const struct srv_store_ops *ops; /* static, the backend's */
    void *impl;                      /* the backend's store, owned */
};

/* Makes *out a srv_store over impl with ops (both required). On failure
 * (out of memory) impl stays the caller's to close. Returns 0 or a
 * negative code with err set. */
int srv_store_wrap(const struct srv_store_ops *ops, void *impl, srv_store **out, att_error *err);

/* What every backend's append does first: refuses a malformed batch (no
 * events, too many, no seq, an event without a type) and resets what the
 * store thread writes back (next, result, fenced, queued_ns). */
int srv_store_batch_prepare(srv_store_batch *b, att_error *err);

/* The backend object behind s (for a backend's own tests), or NULL when s
 * is not of the backend whose table ops is. */
void *srv_store_impl(srv_store *s, const struct srv_store_ops *ops);

#endif
