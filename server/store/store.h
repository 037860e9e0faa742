/* store.h - the durable event log behind a small interface: rooms (id,
 * exercise, creation time), each room's events as payloads keyed by (room,
 * seq) with their event type beside them, and a few named settings. The
 * SQLite implementation lives in store_sqlite.c; payloads are encrypted at
 * rest there (seal.h: AES-256-GCM under the room's own data key, padded to
 * a bucket, the type authenticated with them). The keys are the keyring's
 * (keyring.h: DATA/keys.db, wrapped by a key-encryption key kept outside
 * the data directory); the store borrows it.
 *
 * What DATA/attune.db holds in the clear, because the store must see it:
 * each room's id, exercise and creation time; each event's room, seq and
 * type name; the sealed payload's bucket size (not its length); settings
 * and the room summaries cache (counts and statuses, no text anyone
 * wrote). Everything a participant or therapist wrote is inside a sealed
 * payload. Another database can come later behind this same interface.
 *
 * Threads: one store thread (started by srv_store_start) commits appended
 * batches in groups: everything queued when it wakes goes into one
 * transaction (group commit), so the service thread never waits on fsync.
 * A checkpoint thread (started with it) copies the WAL back into the
 * database file off the commit path (store_sqlite.c says how).
 * Every other function runs on the caller's thread (the lws service thread,
 * or main before serving) and uses its own read connection.
 *
 * Ownership: the caller allocates each srv_store_batch and its payloads; the
 * store borrows the batch from srv_store_append until the caller takes it
 * back with srv_store_take_completed. The store owns its connections and the
 * thread; srv_store_close flushes every queued batch, joins the thread and
 * hands batches never taken back to the discard callback. */
#ifndef SRV_STORE_H
#define SRV_STORE_H

#include <stdint.h>
#include <stddef.h>
#include "attune/types.h"
#include "keyring.h"

#define SRV_STORE_ID_BYTES 64
#define SRV_STORE_EXERCISE_BYTES 64
#define SRV_STORE_MAX_BATCH 16
/* Group commit window (--commit-window-us): the store thread commits once
 * the oldest queued batch has waited this long (or at once if it already
 * has), so batches arriving meanwhile share the transaction and its fsync.
 * 2 ms: at 3,000 turns/s it halves the fsyncs of a 1 ms window (server CPU
 * 31 % -> 28 % in the open-loop benchmark) for 0.7 ms more median latency. */
#define SRV_STORE_DEFAULT_WINDOW_US 2000

typedef struct srv_store srv_store;

typedef struct {
    char id[SRV_STORE_ID_BYTES + 1];
    char exercise[SRV_STORE_EXERCISE_BYTES + 1];
    int64_t created_at; /* ms since the Unix epoch */
} srv_store_room;

typedef struct srv_store_batch srv_store_batch;
struct srv_store_batch {
    srv_store_batch *next; /* the store's link while queued or completed */
    char room_id[SRV_STORE_ID_BYTES + 1];
    int64_t first_seq; /* must be the room's last stored seq + 1 */
    int n;
    const char *payload[SRV_STORE_MAX_BATCH]; /* borrowed from the caller */
    size_t payload_len[SRV_STORE_MAX_BATCH];
    /* Each event's type name ("turn": att_event_type_name), stored beside
     * its payload; borrowed, required. */
    const char *type[SRV_STORE_MAX_BATCH];
    void *owner; /* the caller's; the store never touches it */
    /* Written by the store thread before the batch completes. */
    int result; /* 0, or a negative att_code (the batch was not stored) */
    att_error error;
    int64_t queued_ns;    /* monotonic clock at append */
    int64_t committed_ns; /* monotonic clock when its transaction ended */
    int64_t commit_ns;    /* how long its transaction (incl. fsync) took */
    int group_size;       /* batches committed in the same transaction */
    /* 1 when the store refused it because the room's lease moved to
     * another node (its epoch is no longer ours); result < 0 then. */
    int fenced;
};

/* Store thread: called after completed batches were added to the completion
 * list (the server passes a function that calls lws_cancel_service). */
typedef void (*srv_store_notify_fn)(void *arg);
/* Caller's thread, from srv_store_close: a batch that was never taken back. */
typedef void (*srv_store_discard_fn)(srv_store_batch *batch, void *arg);

/* Opens (creating when missing) DIR/attune.db with WAL and synchronous=FULL,
 * migrating an older format. The store borrows keys (the data directory's
 * keyring, open until after srv_store_close) for every room's key.
 *
 * The migration to store format 3 (issue 12) makes each room's key in the
 * keyring and reseals every event of the older formats (legacy plaintext,
 * and seals under the one key DATA/data.key) under it, in one transaction;
 * once that has committed, DATA/data.key is overwritten and deleted. It
 * fails, changing nothing, when sealed events exist and data.key does not.
 * Returns 0 or a negative code with err set. */
int srv_store_open(const char *dir, srv_keyring *keys, srv_store **out, att_error *err);

/* Starts the store thread with a group commit window of window_us
 * microseconds (0: commit whatever is queued at once). notify and discard
 * may be NULL. */
int srv_store_start(srv_store *s, int window_us, srv_store_notify_fn notify,
                    srv_store_discard_fn discard, void *arg, att_error *err);

/* Commits everything queued, stops the thread, closes the database and frees
 * the store. Safe on a store that was never started; NULL is a no-op. */
void srv_store_close(srv_store *s);

/* Creates a room, its data key (in the keyring, durable first) and its
 * first event (seq 1, of type room_created) in one transaction,
 * synchronously (room creation is rare; the live path uses append; the
 * store's write lock is held while keys.db syncs the key). Fails with
 * ATT_ERR_BAD_MESSAGE when the id exists; the key is erased again when the
 * room was not stored. */
int srv_store_create_room(srv_store *s, const srv_store_room *room, const char *first_event,
                          size_t len, att_error *err);

/* Room metadata; ATT_ERR_NOT_FOUND when there is no such room. */
int srv_store_get_room(srv_store *s, const char *id, srv_store_room *out, att_error *err);

/* Calls fn for every room in creation order; a nonzero return from fn stops
 * the walk and is returned. */
int srv_store_list_rooms(srv_store *s, int (*fn)(const srv_store_room *room, void *arg), void *arg,
                         att_error *err);

/* What a walk over stored events does after each one (the callback's
 * answer, and how the walk ended). */
typedef enum {
    SRV_WALK_CONTINUE, /* on to the next event; as a result: the walk read its range through */
    SRV_WALK_STOP,     /* end here, done (e.g. a page is full) */
    SRV_WALK_PAUSE,    /* end here for now; the caller resumes after the last event taken */
    SRV_WALK_FAILED,   /* end here with err set */
} srv_walk;

/* One stored event, valid only during the callback. */
typedef struct {
    int64_t seq;
    /* Its type name ("turn"): the type column, authenticated by the seal. */
    const char *type;
    const char *payload; /* the event object's JSON text, NUL-terminated */
    size_t len;
} srv_stored_event;

typedef srv_walk (*srv_stored_event_fn)(const srv_stored_event *ev, void *arg, att_error *err);

/* Calls fn for each stored event of the room with after_seq < seq <= upto_seq
 * (upto_seq < 0: no upper bound), in seq order, at most `limit` events
 * (limit <= 0: no limit). Returns CONTINUE when the range (or limit) was
 * read through, STOP or PAUSE when fn answered so, FAILED with err set when
 * fn failed or the store did: a payload that does not open under the room's
 * key (tampered, or not a version 0x03 seal: a plaintext row written into
 * the database is refused), a room whose key is gone (erased; err's code
 * ATT_ERR_NOT_FOUND), SQLite. A room with no events in the range needs no
 * key. */
srv_walk srv_store_walk_events(srv_store *s, const char *room_id, int64_t after_seq,
                               int64_t upto_seq, int limit, srv_stored_event_fn fn, void *arg,
                               att_error *err);

/* A read connection of its own for ONE other thread (the review worker,
 * review.h): opened on the caller's thread from an open store, then used
 * only by the thread that owns it (SQLite connections are not shared). It
 * reads committed events like srv_store_walk_events, with its own unsealing
 * buffer. Close it on its own thread or after that thread has stopped, and
 * before srv_store_close. */
typedef struct srv_store_reader srv_store_reader;
int srv_store_reader_open(srv_store *s, srv_store_reader **out, att_error *err);
void srv_store_reader_close(srv_store_reader *r);
srv_walk srv_store_reader_walk_events(srv_store_reader *r, const char *room_id, int64_t after_seq,
                                      int64_t upto_seq, int limit, srv_stored_event_fn fn,
                                      void *arg, att_error *err);

/* The room's last stored seq (0 when it has none). */
int srv_store_last_seq(srv_store *s, const char *room_id, int64_t *out, att_error *err);

/* Queues a batch for the store thread. Fails (and does not take the batch)
 * when the store is stopping or the batch is malformed. */
int srv_store_append(srv_store *s, srv_store_batch *batch, att_error *err);

/* Takes every completed batch, in completion order (a NULL-terminated list
 * linked by next); the caller owns them again. */
srv_store_batch *srv_store_take_completed(srv_store *s);

/* The room summaries cache (GET /api/rooms for rooms not in memory): the
 * summary JSON stored for the room, only while it was written at the room's
 * current last seq; ATT_ERR_NOT_FOUND when there is none or it is stale.
 * *out is malloc'd (caller frees). */
int srv_store_get_summary(srv_store *s, const char *room_id, char **out, att_error *err);
typedef struct {
    const char *room_id;
    int64_t last_seq; /* the seq the summary describes */
    const char *summary;
} srv_store_summary;
/* Walks the next `limit` rooms with id > after_id (id order) and calls fn
 * for each whose summary is missing or stale; writes the last id walked to
 * last_out and how many were walked to *n_out (< limit: the walk reached the
 * end); fn gets the room's last stored seq. One indexed lookup per room. */
int srv_store_scan_stale_summaries(srv_store *s, const char *after_id, int limit,
                                   char last_out[SRV_STORE_ID_BYTES + 1], int *n_out,
                                   int (*fn)(const char *room_id, int64_t last_seq, void *arg),
                                   void *arg, att_error *err);
/* Writes (replaces) summaries, all in one transaction. */
int srv_store_put_summaries(srv_store *s, const srv_store_summary *items, size_t n, att_error *err);

/* Small named values (e.g. the demo room and its invitations). get returns
 * ATT_ERR_NOT_FOUND when unset. */
int srv_store_get_setting(srv_store *s, const char *key, char *out, size_t out_size,
                          att_error *err);
int srv_store_set_setting(srv_store *s, const char *key, const char *value, att_error *err);

/* The checkpoint thread's work so far: passes that copied the whole WAL
 * back into the database (after which the WAL starts again), and the WAL's
 * size in pages after the last commit. Any thread. */
typedef struct {
    uint64_t checkpoints;
    int wal_pages;
} srv_store_stats;
void srv_store_get_stats(srv_store *s, srv_store_stats *out);

/* ---- tamper evidence (chain.h) ----
 *
 * Every stored event carries its link of the room's hash chain (the column
 * events.chain) and each room has one authenticated head (room_heads: the
 * last seq, its link, and a MAC under the room's head key), written in the
 * same transaction as the events. Walks (srv_store_walk_events, the
 * reader's) check each link as they read, starting from the stored link
 * of after_seq; a walk that reaches the head checks the head's MAC, and one
 * that reads to the end of the log checks that it ended at the head. A
 * mismatch fails the walk (FAILED, ATT_ERR_INTERNAL) with a message that
 * names the first bad seq and what is wrong, never what an event says. */

/* What srv_store_verify_room found. */
typedef struct {
    int64_t events;        /* events read and checked */
    int64_t head_seq;      /* the stored head's seq (0: no head) */
    char head_hex[64 + 1]; /* the head's link, hex ("" without a head) */
    int64_t bad_seq;       /* the first bad event's seq; 0 when none is named */
    char problem[256];     /* "" when verified; else what is wrong, one line */
} srv_chain_report;

/* Checks the whole of a room's log against its chain, its seals and its
 * head, and names the FIRST problem: an event edited (its payload, type
 * or link changed: its seal does not open or its link does not follow), dropped
 * (a seq missing), inserted (past the head, or a copy of another event),
 * reordered (a payload sealed for another seq), the log truncated (the head
 * says more), or the head itself forged or missing. Returns 0 when the room
 * verifies, 1 when it does not (out says why), or a negative code with err
 * set when it could not check (no such room: ATT_ERR_NOT_FOUND; SQLite).
 * The caller's thread (the reader connection), like the walks. */
int srv_store_verify_room(srv_store *s, const char *room, srv_chain_report *out, att_error *err);

/* Erases a room from the store: its data key first (srv_keyring_erase_room,
 * durable before any row goes, so a crash midway leaves rows nobody can
 * open), then its rows in events, rooms, room_heads and room_summaries in
 * one transaction (with secure_delete, so freed pages are zeroed), then a
 * passive WAL checkpoint so the database file drops them soon. Copies of the
 * events taken before (backups) cannot be opened for this room any more;
 * the WAL may hold the old pages until it starts again. The caller makes
 * sure nothing appends to the room meanwhile (the whole erase closes its
 * members and frees it in the room service first). ATT_ERR_NOT_FOUND
 * when the store has no such room (its key is erased anyway). Caller's
 * thread. */
int srv_store_erase_room(srv_store *s, const char *room, att_error *err);

/* Testing: make the transaction that commits the nth batch from now fail
 * (1 = the next one); 0 disables. Caller's thread. */
void srv_store_fail_nth_batch(srv_store *s, int nth);

/* ---- one writer per room across nodes (issue 13) ----
 *
 * A store several nodes share (PostgreSQL, store_pg.h) lets a node append to
 * a room only while it holds the room's lease. Every append carries the
 * room's epoch (the fencing token the store remembers from the acquisition)
 * and its expected first seq, and stores nothing when either has moved: an
 * old owner that wakes after a takeover can never append; its batch comes
 * back with result < 0 and `fenced` = 1, and the room service closes the
 * room's members with SRV_CLOSE_ROOM_MOVED so they reconnect to the node
 * that holds it now. The SQLite store belongs to one node: acquire always
 * succeeds (epoch 1), release and wanted do nothing, nothing is fenced. */
#define SRV_STORE_NODE_BYTES 127

typedef struct {
    int64_t epoch;    /* this node's term for the room (0 when not ours) */
    int64_t last_seq; /* the room's stored head at acquisition */
    /* When another live node holds it: that node's id and its public
     * WebSocket base URL ("" when unknown). */
    char holder[SRV_STORE_NODE_BYTES + 1];
    char holder_url[256];
} srv_store_lease;

/* Takes the room's lease for this node (service thread). Returns 0 when
 * this node holds it now (it was free, its owner's node lease had expired
 * or the owner's session is gone, or it was ours already); 1 when another
 * live node holds it (out->holder says which; the store records that this
 * node wants it, so the holder hands it off: srv_store_take_wanted); a
 * negative code with err set on failure (no such room: ATT_ERR_NOT_FOUND). */
int srv_store_acquire_room(srv_store *s, const char *room, srv_store_lease *out, att_error *err);

/* Gives up the room's lease (when the room service forgets the room; also
 * on a clean stop). A lease already lost is not an error. */
int srv_store_release_room(srv_store *s, const char *room, att_error *err);

/* Rooms this node holds that another node has asked for since the last
 * call (the store thread looks every lease renewal, ~2 s). Writes up to max
 * ids into out and returns how many (0 for SQLite). Service thread. */
int srv_store_take_wanted(srv_store *s, char (*out)[SRV_STORE_ID_BYTES + 1], int max);

/* 1 while this node's own lease is current (it could renew it within the
 * lease time by its monotonic clock); 0 when it could not: the room service
 * then closes every member with SRV_CLOSE_ROOM_MOVED. Always 1 for SQLite.
 * Any thread. */
int srv_store_node_alive(srv_store *s);

/* Which kind of store this is ("sqlite" or "postgresql"), for /healthz and
 * the logs. */
const char *srv_store_kind(const srv_store *s);

/* This node's id in a shared store (PostgreSQL: NAME:boot-id), for
 * /healthz and the logs; "" for SQLite. */
const char *srv_store_node_id(const srv_store *s);

#endif
