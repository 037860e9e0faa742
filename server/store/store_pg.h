/* store_pg.h - the event store on PostgreSQL, for one node or several
 * sharing one database (issue 13). Same contract as store.h, function for
 * function (srv_pg_store_X does what srv_store_X says there), plus the
 * leases; store.c dispatches to it when the server is given
 * --store postgresql://USER@HOST:PORT/DB.
 *
 * Writer: the store thread owns one connection, non-blocking, in pipeline
 * mode; a group commit is one pipelined transaction (one fenced append per
 * batch, committed by the pipeline's sync), up to 4 groups are in flight,
 * and the node lease renewal goes between them. A batch completes only once its
 * group's COMMIT result has come back (synchronous_commit on). A fenced
 * append (the room's epoch or head moved) stores nothing and returns no
 * row, so other rooms' batches in the group still commit. When the
 * connection is lost with a COMMIT sent and no answer, the outcome is
 * unknown: the store reconnects (multi-host URIs with
 * target_session_attrs=read-write find a promoted standby), reads back
 * (room, seq, epoch) of each such batch and completes it as stored, re-sends
 * it, or fails it as fenced; it never acks a batch twice or one that did
 * not commit.
 *
 * Liveness: a nodes row (id = NAME:boot-id, new per start, and the node's
 * public WebSocket URL) whose lease_until the writer renews every ~2 s to
 * now() + lease, and a session advisory lock held on the writer connection;
 * a node whose lock is free (its process died) loses its rooms at once, a
 * hung one when its lease expires.
 *
 * Reads run on the caller's thread over a connection of their own
 * (blocking; srv_store_reader is another connection for another thread).
 *
 * Tables (created when missing, under an advisory lock): nodes, rooms
 * (with last_seq, owner, epoch, wanted_by), events (room, seq, epoch, type,
 * chain, payload; PRIMARY KEY (room, seq)), room_heads, room_summaries,
 * settings. Payloads are sealed exactly as in the SQLite store (seal.h,
 * the room keys of the keyring the store borrows). */
#ifndef SRV_STORE_PG_H
#define SRV_STORE_PG_H

#include "store.h"

/* Node lease (--node-lease-ms): how long a node's rooms stay its own
 * without a renewal; renewed every third of it. */
#define SRV_PG_DEFAULT_LEASE_MS 6000

typedef struct srv_pg_store srv_pg_store;

typedef struct {
    const char *uri;       /* libpq URI, multi-host allowed */
    const char *node_name; /* "HOST:PORT" or --node-name; a boot id is appended */
    const char *ws_url;    /* this node's public base URL for handoffs ("" if none) */
    int lease_ms;          /* 0: SRV_PG_DEFAULT_LEASE_MS */
} srv_pg_store_options;

/* The PostgreSQL store as a srv_store (store.h's functions dispatch to the
 * srv_pg_store_* ones through store_backend.h's table); defined in
 * store_pg.c. */
int srv_store_open_pg(const srv_pg_store_options *opt, srv_keyring *keys, srv_store **out,
                      att_error *err);

int srv_pg_store_open(const srv_pg_store_options *opt, srv_keyring *keys, srv_pg_store **out,
                      att_error *err);
/* This node's id (NAME:boot-id). */
const char *srv_pg_store_node_id(const srv_pg_store *s);

int srv_pg_store_start(srv_pg_store *s, int window_us, srv_store_notify_fn notify,
                       srv_store_discard_fn discard, void *arg, att_error *err);
void srv_pg_store_close(srv_pg_store *s);
int srv_pg_store_create_room(srv_pg_store *s, const srv_store_room *room, const char *first_event,
                             size_t len, att_error *err);
int srv_pg_store_get_room(srv_pg_store *s, const char *id, srv_store_room *out, att_error *err);
int srv_pg_store_list_rooms(srv_pg_store *s, int (*fn)(const srv_store_room *room, void *arg),
                            void *arg, att_error *err);
srv_walk srv_pg_store_walk_events(srv_pg_store *s, const char *room_id, int64_t after_seq,
                                  int64_t upto_seq, int limit, srv_stored_event_fn fn, void *arg,
                                  att_error *err);
typedef struct srv_pg_store_reader srv_pg_store_reader;
int srv_pg_store_reader_open(srv_pg_store *s, srv_pg_store_reader **out, att_error *err);
void srv_pg_store_reader_close(srv_pg_store_reader *r);
srv_walk srv_pg_store_reader_walk_events(srv_pg_store_reader *r, const char *room_id,
                                         int64_t after_seq, int64_t upto_seq, int limit,
                                         srv_stored_event_fn fn, void *arg, att_error *err);
int srv_pg_store_last_seq(srv_pg_store *s, const char *room_id, int64_t *out, att_error *err);
int srv_pg_store_append(srv_pg_store *s, srv_store_batch *batch, att_error *err);
srv_store_batch *srv_pg_store_take_completed(srv_pg_store *s);
int srv_pg_store_get_summary(srv_pg_store *s, const char *room_id, char **out, att_error *err);
int srv_pg_store_scan_stale_summaries(srv_pg_store *s, const char *after_id, int limit,
                                      char last_out[SRV_STORE_ID_BYTES + 1], int *n_out,
                                      int (*fn)(const char *room_id, int64_t last_seq, void *arg),
                                      void *arg, att_error *err);
int srv_pg_store_put_summaries(srv_pg_store *s, const srv_store_summary *items, size_t n,
                               att_error *err);
int srv_pg_store_get_setting(srv_pg_store *s, const char *key, char *out, size_t out_size,
                             att_error *err);
int srv_pg_store_set_setting(srv_pg_store *s, const char *key, const char *value, att_error *err);
void srv_pg_store_get_stats(srv_pg_store *s, srv_store_stats *out);
int srv_pg_store_verify_room(srv_pg_store *s, const char *room, srv_chain_report *out,
                             att_error *err);
int srv_pg_store_erase_room(srv_pg_store *s, const char *room, att_error *err);
void srv_pg_store_fail_nth_batch(srv_pg_store *s, int nth);
/* Test hook: once the nth group from now has been sent whole, the writer
 * shuts its socket down (a network cut): the server commits what it got,
 * the writer sees the connection lost with no answer. 0: off. */
void srv_pg_store_cut_after_nth_group(srv_pg_store *s, int nth);

/* What the writer went through since open (any thread): connections lost
 * and new sessions made, and how each append whose outcome a lost
 * connection left unknown was resolved by reading back: committed
 * (completed as stored), re-sent (nothing stored, the room still ours),
 * fenced (its seqs are another epoch's), failed (no session within the
 * bound: not acked). max_groups_in_flight: the most groups sent and not
 * yet answered at once. */
typedef struct {
    uint64_t connections_lost, reconnects;
    uint64_t unknown_committed, unknown_resent, unknown_fenced, unknown_failed;
    int max_groups_in_flight;
} srv_pg_writer_stats;
void srv_pg_store_get_writer_stats(srv_pg_store *s, srv_pg_writer_stats *out);

int srv_pg_store_acquire_room(srv_pg_store *s, const char *room, srv_store_lease *out,
                              att_error *err);
int srv_pg_store_release_room(srv_pg_store *s, const char *room, att_error *err);
int srv_pg_store_take_wanted(srv_pg_store *s, char (*out)[SRV_STORE_ID_BYTES + 1], int max);
int srv_pg_store_node_alive(srv_pg_store *s);

#endif
