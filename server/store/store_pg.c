/* store_pg.c - the event store on PostgreSQL (store_pg.h).
 *
 * The store thread's writer is pipelined and non-blocking (see "the store
 * thread" below): groups of fenced appends (multinode.md 3.3), several in
 * flight, each committed by its pipeline's sync; a batch completes only
 * after that commit came back. Reads and room management run blocking on
 * the caller's connection (pg.h).
 *
 * Payloads are sealed (seal.h) under the room's key from the keyring and
 * chained (chain.h) exactly as store_sqlite.c does, so verify and walks
 * check the same things. Results are read in binary (int8 big-endian,
 * bytea raw). */
#include "store_pg.h"
#include "store_backend.h"
#include "pg.h"
#include "chain.h"
#include "clock.h"
#include "log.h"
#include "seal.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define ROOM_CREATED "room_created"

static const char SCHEMA[] =
    "CREATE TABLE IF NOT EXISTS nodes ("
    "  id text PRIMARY KEY, ws_url text NOT NULL, lease_until timestamptz NOT NULL,"
    "  started_at timestamptz NOT NULL DEFAULT now());"
    "CREATE TABLE IF NOT EXISTS rooms ("
    "  id text PRIMARY KEY, exercise text NOT NULL, created_at bigint NOT NULL,"
    "  last_seq bigint NOT NULL DEFAULT 0, owner text, epoch bigint NOT NULL DEFAULT 0,"
    "  wanted_by text) WITH (fillfactor = 70);"
    "CREATE TABLE IF NOT EXISTS events ("
    "  room text NOT NULL, seq bigint NOT NULL CHECK (seq >= 1), epoch bigint NOT NULL,"
    "  type text NOT NULL, chain bytea NOT NULL, payload bytea NOT NULL,"
    "  PRIMARY KEY (room, seq));"
    "ALTER TABLE events ALTER COLUMN payload SET STORAGE EXTERNAL;"
    "CREATE TABLE IF NOT EXISTS room_heads ("
    "  room text PRIMARY KEY, seq bigint NOT NULL, chain bytea NOT NULL, mac bytea NOT NULL);"
    "CREATE TABLE IF NOT EXISTS room_summaries ("
    "  room text PRIMARY KEY, last_seq bigint NOT NULL, summary text NOT NULL);"
    "CREATE TABLE IF NOT EXISTS settings (key text PRIMARY KEY, value text NOT NULL);";

#define READ_EVENTS_SQL                                                                            \
    "SELECT seq, type, payload, chain FROM events WHERE room = $1 AND seq >= $2 AND seq <= $3 "    \
    "ORDER BY seq LIMIT $4"
#define READ_HEAD_SQL "SELECT seq, chain, mac FROM room_heads WHERE room = $1"
#define PUT_HEAD_SQL                                                                               \
    "INSERT INTO room_heads (room, seq, chain, mac) VALUES ($1, $2, $3, $4) "                      \
    "ON CONFLICT (room) DO UPDATE SET seq = excluded.seq, chain = excluded.chain, "                \
    "mac = excluded.mac"

#define NODE_LOCK_SQL "SELECT pg_advisory_lock(hashtext('attune-node:' || $1))"

typedef struct {
    char room[SRV_STORE_ID_BYTES + 1];
    int64_t epoch;
    uint64_t gen;   /* new for every change of lease */
    int head_state; /* store thread: 0 unknown, 1 head_seq/head_link known, -1 read failed */
    int64_t head_seq;
    srv_chain_link head_link;
} room_epoch;

typedef struct segment segment; /* a pipeline in flight on the writer (below) */

struct srv_pg_store {
    char *uri;
    char node_id[SRV_STORE_NODE_BYTES + 1];
    char ws_url[256];
    int lease_ms;
    srv_keyring *keys; /* borrowed */
    srv_pg *reader;    /* the caller's thread */
    srv_pg *writer;    /* the store thread (before start: open only) */
    srv_chain_hasher *r_hasher, *w_hasher;
    srv_seal_buf open_scratch, seal_scratch;

    pthread_t thread;
    int started;
    int64_t window_ns;
    srv_store_notify_fn notify;
    srv_store_discard_fn discard;
    void *arg;

    int wake_fd; /* eventfd: append and close wake the store thread */
    /* The store thread's alone: the writer's pipelines in flight (a ring
     * of MAX_SEGMENTS), how many are groups, whether a lease renewal and a
     * head read are among them, whether the writer is usable. */
    segment *segs;
    int seg_head, n_segs, n_groups, lease_pending, heads_pending, up, cut_now;
    int64_t next_recover_ns;

    pthread_mutex_t lock; /* guards everything below */
    int stopping;
    srv_store_batch *queue_head, *queue_tail;
    srv_store_batch *done_head, *done_tail;
    int fail_nth;
    int cut_after;      /* test hook: groups to send before the socket is cut */
    room_epoch *epochs; /* the rooms this node acquired, with their epoch */
    size_t n_epochs, cap_epochs;
    uint32_t *slots; /* index into epochs (+1; 0 empty), n_slots a power of two */
    size_t n_slots;
    uint64_t next_gen;
    srv_pg_writer_stats rstats;
    int64_t renewed_ns; /* monotonic time of the last successful lease renewal */
    char (*wanted)[SRV_STORE_ID_BYTES + 1];
    size_t n_wanted;
};

/* ---- small helpers ---- */

static int64_t get_i64(const PGresult *r, int row, int col)
{
    const unsigned char *p = (const unsigned char *)PQgetvalue(r, row, col);
    if (PQgetlength(r, row, col) != 8)
        return 0;
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return (int64_t)v;
}

static void put_i64(char buf[8], int64_t v)
{
    uint64_t u = (uint64_t)v;
    for (int i = 7; i >= 0; i--) {
        buf[i] = (char)(u & 0xff);
        u >>= 8;
    }
}

/* Runs sql with params; binary for the params whose formats entry is 1 and
 * binary results. */
static int run(srv_pg *c, const char *sql, int n, const char *const *v, const int *len,
               const int *fmt, PGresult **out, att_error *err)
{
    if (out)
        *out = NULL;
    PGconn *conn = srv_pg_conn(c);
    if (!conn || PQstatus(conn) != CONNECTION_OK) {
        /* srv_pg_exec reconnects when nothing was sent yet; text results
         * there, so only for statements without results. */
        int rc = srv_pg_exec(c, "SELECT 1", 0, NULL, NULL, NULL, NULL, err);
        if (rc < 0)
            return rc;
        conn = srv_pg_conn(c);
    }
    PGresult *r = PQexecParams(conn, sql, n, NULL, v, len, fmt, 1);
    ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
        if (out)
            *out = r;
        else
            PQclear(r);
        return 0;
    }
    int rc;
    if (PQstatus(conn) != CONNECTION_OK)
        rc = att_fail(err, ATT_ERR_INTERNAL,
                      "postgresql: connection lost while a statement ran (its outcome is unknown)");
    else
        rc = srv_pg_fail(c, r, "statement failed", err);
    PQclear(r);
    return rc;
}

static int run_plain(srv_pg *c, const char *sql, att_error *err)
{
    return run(c, sql, 0, NULL, NULL, NULL, NULL, err);
}

/* ---- held rooms: epoch and, for the store thread, the head ----
 *
 * The service thread sets a room's epoch (acquire, create) and drops it
 * (release, erase); the store thread reads it for every batch and keeps
 * there the room's head as its own appends left it (seq + chain link), so
 * it can seal and chain the next batch without waiting for the previous
 * group's results. Every change of lease gives the entry a new gen: a head
 * read for an older one is not applied. An index (open addressing, rebuilt
 * on growth and removal) finds a room without scanning. Under s->lock. */

static uint32_t room_hash(const char *room)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)room; *p; p++)
        h = (h ^ *p) * 16777619u;
    return h;
}

static void index_rebuild(srv_pg_store *s)
{
    memset(s->slots, 0, s->n_slots * sizeof *s->slots);
    for (size_t i = 0; i < s->n_epochs; i++) {
        size_t k = room_hash(s->epochs[i].room) & (s->n_slots - 1);
        while (s->slots[k])
            k = (k + 1) & (s->n_slots - 1);
        s->slots[k] = (uint32_t)i + 1;
    }
}

static room_epoch *find_room(srv_pg_store *s, const char *room)
{
    if (!s->n_slots)
        return NULL;
    for (size_t k = room_hash(room) & (s->n_slots - 1); s->slots[k];
         k = (k + 1) & (s->n_slots - 1)) {
        room_epoch *e = &s->epochs[s->slots[k] - 1];
        if (strcmp(e->room, room) == 0)
            return e;
    }
    return NULL;
}

static size_t slot_of(srv_pg_store *s, size_t index)
{
    size_t mask = s->n_slots - 1;
    size_t k = room_hash(s->epochs[index].room) & mask;
    while (s->slots[k] != index + 1)
        k = (k + 1) & mask;
    return k;
}

/* Drops e: its slot goes by backward shift (the probe chains behind it
 * stay whole), the last entry moves into its place. O(1) on average, so
 * a sweep that lets many rooms go stays linear. */
static void remove_room(srv_pg_store *s, room_epoch *e)
{
    size_t mask = s->n_slots - 1, i = (size_t)(e - s->epochs), last = s->n_epochs - 1;
    size_t hole = slot_of(s, i);
    for (size_t j = (hole + 1) & mask; s->slots[j]; j = (j + 1) & mask) {
        size_t home = room_hash(s->epochs[s->slots[j] - 1].room) & mask;
        /* The entry at j may fill the hole unless its home lies cyclically
         * in (hole, j]. */
        int stays = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
        if (!stays) {
            s->slots[hole] = s->slots[j];
            hole = j;
        }
    }
    s->slots[hole] = 0;
    if (i != last) {
        s->slots[slot_of(s, last)] = (uint32_t)i + 1;
        s->epochs[i] = s->epochs[last];
    }
    s->n_epochs--;
}

static int64_t epoch_of(srv_pg_store *s, const char *room)
{
    pthread_mutex_lock(&s->lock);
    room_epoch *e = find_room(s, room);
    int64_t epoch = e ? e->epoch : 0;
    pthread_mutex_unlock(&s->lock);
    return epoch;
}

static int set_epoch(srv_pg_store *s, const char *room, int64_t epoch, att_error *err)
{
    int rc = 0;
    pthread_mutex_lock(&s->lock);
    room_epoch *e = find_room(s, room);
    if (epoch == 0) {
        if (e)
            remove_room(s, e);
    } else if (e) {
        if (e->epoch != epoch) {
            e->epoch = epoch;
            e->gen = ++s->next_gen;
            e->head_state = 0;
        }
    } else {
        if (s->n_epochs == s->cap_epochs) {
            size_t cap = s->cap_epochs ? 2 * s->cap_epochs : 64;
            room_epoch *p = realloc(s->epochs, cap * sizeof *p);
            uint32_t *slots = p ? calloc(2 * cap, sizeof *slots) : NULL;
            if (!slots) {
                if (p)
                    s->epochs = p;
                rc = att_fail(err, ATT_ERR_INTERNAL, "store: out of memory");
            } else {
                s->epochs = p;
                s->cap_epochs = cap;
                free(s->slots);
                s->slots = slots;
                s->n_slots = 2 * cap;
                index_rebuild(s);
            }
        }
        if (rc == 0) {
            e = &s->epochs[s->n_epochs];
            memset(e, 0, sizeof *e);
            snprintf(e->room, sizeof e->room, "%s", room);
            e->epoch = epoch;
            e->gen = ++s->next_gen;
            size_t k = room_hash(e->room) & (s->n_slots - 1);
            while (s->slots[k])
                k = (k + 1) & (s->n_slots - 1);
            s->slots[k] = (uint32_t)++s->n_epochs;
        }
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

/* What the store thread knows of a held room (epoch 0: not held). */
typedef struct {
    int64_t epoch;
    uint64_t gen;
    int head_state; /* 0 unknown (read it first), 1 known, -1 its last read failed */
    int64_t head_seq;
    srv_chain_link head_link;
} room_view;

static room_view view_locked(srv_pg_store *s, const char *room)
{
    room_view v = {0};
    room_epoch *e = find_room(s, room);
    if (e) {
        v.epoch = e->epoch;
        v.gen = e->gen;
        v.head_state = e->head_state;
        v.head_seq = e->head_seq;
        v.head_link = e->head_link;
    }
    return v;
}

/* Sets the head the store thread knows (state 1) or that its read failed
 * (-1), unless the lease changed since gen. */
static void note_head(srv_pg_store *s, const char *room, uint64_t gen, int state, int64_t seq,
                      const srv_chain_link *link)
{
    pthread_mutex_lock(&s->lock);
    room_epoch *e = find_room(s, room);
    if (e && e->gen == gen) {
        e->head_state = state;
        e->head_seq = seq;
        if (link)
            e->head_link = *link;
        else
            memset(&e->head_link, 0, sizeof e->head_link);
    }
    pthread_mutex_unlock(&s->lock);
}

/* After a batch of the room failed or was fenced: read the head again. */
static void forget_head(srv_pg_store *s, const char *room)
{
    pthread_mutex_lock(&s->lock);
    room_epoch *e = find_room(s, room);
    if (e)
        e->head_state = 0;
    pthread_mutex_unlock(&s->lock);
}

static void forget_heads(srv_pg_store *s)
{
    pthread_mutex_lock(&s->lock);
    for (size_t i = 0; i < s->n_epochs; i++)
        s->epochs[i].head_state = 0;
    pthread_mutex_unlock(&s->lock);
}

/* ---- open, close ---- */

static int renew_lease(srv_pg_store *s, srv_pg *c, att_error *err)
{
    char ms[32];
    snprintf(ms, sizeof ms, "%d", s->lease_ms);
    const char *p[3] = {s->node_id, s->ws_url, ms};
    int rc =
        run(c,
            "INSERT INTO nodes (id, ws_url, lease_until) VALUES ($1, $2, now() + $3::int * "
            "interval '1 ms') ON CONFLICT (id) DO UPDATE SET lease_until = excluded.lease_until",
            3, p, NULL, NULL, NULL, err);
    if (rc == 0) {
        pthread_mutex_lock(&s->lock);
        s->renewed_ns = srv_mono_ns();
        pthread_mutex_unlock(&s->lock);
    }
    return rc;
}

/* The advisory lock that says this node's session lives (held by the
 * writer connection for as long as it is open). */
static int take_node_lock(srv_pg_store *s, srv_pg *c, att_error *err)
{
    const char *p[1] = {s->node_id};
    return run(c, NODE_LOCK_SQL, 1, p, NULL, NULL, NULL, err);
}

int srv_pg_store_open(const srv_pg_store_options *opt, srv_keyring *keys, srv_pg_store **out,
                      att_error *err)
{
    *out = NULL;
    if (!keys)
        return att_fail(err, ATT_ERR_INTERNAL, "store: no keyring");
    srv_pg_store *s = calloc(1, sizeof *s);
    if (!s)
        return att_fail(err, ATT_ERR_INTERNAL, "store: out of memory");
    pthread_mutex_init(&s->lock, NULL);
    s->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    s->keys = keys;
    s->lease_ms = opt->lease_ms > 0 ? opt->lease_ms : SRV_PG_DEFAULT_LEASE_MS;
    unsigned char boot[8];
    if (RAND_bytes(boot, sizeof boot) != 1) {
        srv_pg_store_close(s);
        return att_fail(err, ATT_ERR_INTERNAL, "store: no random bytes for the boot id");
    }
    int n = snprintf(s->node_id, sizeof s->node_id,
                     "%.100s:", opt->node_name && *opt->node_name ? opt->node_name : "node");
    for (size_t i = 0; i < sizeof boot; i++)
        n += snprintf(s->node_id + n, sizeof s->node_id - (size_t)n, "%02x", boot[i]);
    snprintf(s->ws_url, sizeof s->ws_url, "%s", opt->ws_url ? opt->ws_url : "");
    char app[SRV_STORE_NODE_BYTES + 32];
    snprintf(app, sizeof app, "attune-writer-%s", s->node_id);
    if (s->wake_fd < 0) {
        srv_pg_store_close(s);
        return att_fail(err, ATT_ERR_INTERNAL, "store: no eventfd: %s", strerror(errno));
    }
    if (!(s->uri = strdup(opt->uri ? opt->uri : "")) ||
        srv_pg_connect(s->uri, "attune-reader", &s->reader, err) < 0 ||
        srv_pg_exec_script(s->reader, SCHEMA, err) < 0 ||
        srv_pg_connect(s->uri, app, &s->writer, err) < 0 || take_node_lock(s, s->writer, err) < 0 ||
        renew_lease(s, s->reader, err) < 0 || srv_chain_hasher_new(&s->r_hasher, err) < 0 ||
        srv_chain_hasher_new(&s->w_hasher, err) < 0) {
        if (!s->uri)
            att_fail(err, ATT_ERR_INTERNAL, "store: out of memory");
        srv_pg_store_close(s);
        return -ATT_ERR_INTERNAL;
    }
    *out = s;
    return 0;
}

const char *srv_pg_store_node_id(const srv_pg_store *s)
{
    return s->node_id;
}

/* ---- room heads (the walks read them; create_room writes the first) ---- */

/* Reads the room's head (seq, link) on c; a room without a head is at 0
 * with the zero link. */
static int read_head(srv_pg *c, const char *room, int64_t *seq, srv_chain_link *link,
                     srv_chain_link *mac, att_error *err)
{
    const char *p[1] = {room};
    PGresult *r = NULL;
    int rc = run(c, READ_HEAD_SQL, 1, p, NULL, NULL, &r, err);
    if (rc < 0)
        return rc;
    *seq = 0;
    memset(link, 0, sizeof *link);
    if (mac)
        memset(mac, 0, sizeof *mac);
    if (PQntuples(r) == 1) {
        if (PQgetlength(r, 0, 1) != SRV_CHAIN_BYTES || PQgetlength(r, 0, 2) != SRV_CHAIN_BYTES) {
            rc = att_fail(err, ATT_ERR_INTERNAL, "store: room %s: its head is malformed", room);
        } else {
            *seq = get_i64(r, 0, 0);
            memcpy(link->bytes, PQgetvalue(r, 0, 1), SRV_CHAIN_BYTES);
            if (mac)
                memcpy(mac->bytes, PQgetvalue(r, 0, 2), SRV_CHAIN_BYTES);
        }
    }
    PQclear(r);
    return rc;
}

static int put_head(srv_chain_hasher *h, srv_pg *c, const char *room, const srv_chain_key *head_key,
                    int64_t seq, const srv_chain_link *link, att_error *err)
{
    srv_chain_link mac;
    int rc = srv_chain_head_mac(h, head_key, room, seq, link, &mac, err);
    if (rc < 0)
        return rc;
    char seqb[8];
    put_i64(seqb, seq);
    const char *p[4] = {room, seqb, (const char *)link->bytes, (const char *)mac.bytes};
    int len[4] = {0, 8, SRV_CHAIN_BYTES, SRV_CHAIN_BYTES};
    int fmt[4] = {0, 1, 1, 1};
    return run(c, PUT_HEAD_SQL, 4, p, len, fmt, NULL, err);
}

/* ---- the store thread: a pipelined, non-blocking writer ----
 *
 * The writer connection runs in pipeline mode, non-blocking; the thread
 * waits in poll() on its socket and on wake_fd (an eventfd that append
 * and close write to). What it sends is a ring of pipelines ("segments"),
 * each ended by a sync, whose results come back in order:
 *  - a group: one fenced append per batch (APPEND_SQL), in the implicit
 *    transaction of the pipeline, which the sync commits. No explicit
 *    BEGIN/COMMIT: after an error inside BEGIN..COMMIT the session stays in
 *    an aborted transaction past the sync and the groups already sent
 *    behind it would abort too (libpq docs, 34.5.1.3); the implicit one is
 *    rolled back at its sync and the next group starts clean. A batch
 *    completes only when its group's sync result came back, i.e. after the
 *    commit is durable (synchronous_commit on);
 *  - a lease renewal plus the read of rooms other nodes want, every
 *    lease/3, between groups without waiting for them;
 *  - a read of room heads the thread does not know yet.
 * Up to MAX_GROUPS_IN_FLIGHT groups are in flight. Each held room's head
 * is kept in memory (room_epoch) and advanced as batches are sent, so the
 * next group is sealed and chained before the previous one committed. A
 * batch that fails or is fenced makes the room's head unknown; groups
 * already in flight with later batches of the room fail the head check
 * (0 rows, "out of sequence") and the head is read again, after them in
 * the pipeline.
 *
 * Connection lost (or a FATAL error: the session ends, and with a
 * synchronous standby a commit can be done locally when the FATAL comes)
 * with groups in flight: their batches' outcome is unknown. The thread
 * reconnects (for up to RECOVER_MS), retakes the node lock, reads back
 * (seq, epoch) of each: all there with our epoch -> stored; none and the
 * room's epoch still ours -> re-sent with the very bytes sent before (the
 * head check stores it at most once); else fenced. Completions keep the
 * order in which the batches were sent. */

#define MAX_GROUPS_IN_FLIGHT 4
#define MAX_SEGMENTS (MAX_GROUPS_IN_FLIGHT + 2) /* + one lease renewal + one head read */
#define MAX_GROUP_BATCHES 256
#define RECOVER_MS 10000

#define OID_BYTEA 17
#define OID_INT8 20
#define OID_TEXT 25
#define OID_BYTEA_ARRAY 1001
#define OID_TEXT_ARRAY 1009

/* $1 room, $2 epoch, $3 first seq, $4 types, $5 links, $6 sealed payloads,
 * $7 the head's link, $8 its MAC. The head row moves only when the epoch
 * is still ours and the log ends right before the batch; else nothing is
 * stored and the row says why (the room's epoch and last seq as this
 * statement's snapshot saw them). */
#define APPEND_SQL                                                                                 \
    "WITH head AS (UPDATE rooms SET last_seq = $3 + cardinality($6::bytea[]) - 1 "                 \
    "  WHERE id = $1 AND epoch = $2 AND last_seq = $3 - 1 RETURNING id), "                         \
    "ev AS (INSERT INTO events (room, seq, epoch, type, chain, payload) "                          \
    "  SELECT head.id, $3 + t.i - 1, $2, t.ty, t.ch, t.p FROM head, "                              \
    "  unnest($4::text[], $5::bytea[], $6::bytea[]) WITH ORDINALITY AS t(ty, ch, p, i) "           \
    "  RETURNING seq), "                                                                           \
    "hd AS (INSERT INTO room_heads (room, seq, chain, mac) "                                       \
    "  SELECT head.id, $3 + cardinality($6::bytea[]) - 1, $7, $8 FROM head "                       \
    "  ON CONFLICT (room) DO UPDATE SET seq = excluded.seq, chain = excluded.chain, "              \
    "  mac = excluded.mac RETURNING room) "                                                        \
    "SELECT (SELECT count(*) FROM ev)::int8, (SELECT count(*) FROM hd)::int8, r.epoch, "           \
    "r.last_seq FROM (VALUES (1)) AS one(x) LEFT JOIN rooms r ON r.id = $1"
#define HEADS_SQL "SELECT room, seq, chain FROM room_heads WHERE room = ANY($1::text[])"
#define RENEW_SQL                                                                                  \
    "INSERT INTO nodes (id, ws_url, lease_until) VALUES ($1, $2, now() + $3::int * "               \
    "interval '1 ms') ON CONFLICT (id) DO UPDATE SET lease_until = excluded.lease_until"
#define WANTED_SQL                                                                                 \
    "SELECT id FROM rooms WHERE owner = $1 AND wanted_by IS NOT NULL AND wanted_by <> $1"
#define READBACK_SQL                                                                               \
    "SELECT (count(*) FILTER (WHERE epoch = $4::int8))::int8, count(*)::int8, "                    \
    "(SELECT epoch FROM rooms WHERE id = $1) FROM events WHERE room = $1 AND seq BETWEEN "         \
    "$2::int8 AND $3::int8"
#define INJECT_SQL "DO $$BEGIN RAISE EXCEPTION 'injected commit failure'; END$$"

/* A growable byte buffer: binary parameters. */
typedef struct {
    char *data;
    size_t len, cap;
} bytes;

static int bytes_put(bytes *b, const void *p, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n)
            cap *= 2;
        char *d = realloc(b->data, cap);
        if (!d)
            return -1;
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

static int bytes_u32(bytes *b, uint32_t v)
{
    unsigned char x[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 8), (unsigned char)v};
    return bytes_put(b, x, 4);
}

/* PostgreSQL's binary array format: one dimension from 1, no NULLs. */
static int array_begin(bytes *b, uint32_t elem_oid, int n)
{
    b->len = 0;
    return bytes_u32(b, 1) < 0 || bytes_u32(b, 0) < 0 || bytes_u32(b, elem_oid) < 0 ||
                   bytes_u32(b, (uint32_t)n) < 0 || bytes_u32(b, 1) < 0
               ? -1
               : 0;
}

static int array_elem(bytes *b, const void *p, size_t n)
{
    return bytes_u32(b, (uint32_t)n) < 0 ? -1 : bytes_put(b, p, n);
}

static void bytes_free(bytes *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

enum {
    ITEM_SEND,    /* its append is (to be) sent in its group's pipeline */
    ITEM_DONE,    /* its result is known (result, fenced set) */
    ITEM_UNKNOWN, /* sent, the connection was lost before the group's sync came back */
};

/* One batch of a group, with its append's parameters as sent: kept until
 * the batch completes, so an unknown outcome is re-sent byte for byte. */
typedef struct {
    srv_store_batch *b;
    int state;
    int answered; /* its append stored the batch (pending the group's sync) */
    int64_t epoch;
    char epoch_b[8], first_b[8];
    bytes types, links, payloads;
    unsigned char head_link[SRV_CHAIN_BYTES], head_mac[SRV_CHAIN_BYTES];
} group_item;

typedef enum { SEG_GROUP, SEG_LEASE, SEG_HEADS } seg_kind;

struct segment {
    seg_kind kind;
    int idx;          /* the statement whose results come next */
    int pending_null; /* a result of statement idx came, the NULL after it not yet */
    int failed;       /* an ERROR came back: nothing of this pipeline committed */
    char error[256];
    int64_t sent_ns;
    /* SEG_GROUP */
    group_item *items;
    int n_items;
    int *sent; /* statement k is the append of items[sent[k]] */
    int n_sent;
    /* SEG_HEADS */
    char (*rooms)[SRV_STORE_ID_BYTES + 1];
    uint64_t *gens;
    int n_rooms, answered;
    bytes param;
};

static void item_free(group_item *it)
{
    bytes_free(&it->types);
    bytes_free(&it->links);
    bytes_free(&it->payloads);
}

static void seg_free(segment *seg)
{
    for (int i = 0; i < seg->n_items; i++)
        item_free(&seg->items[i]);
    free(seg->items);
    free(seg->sent);
    free(seg->rooms);
    free(seg->gens);
    bytes_free(&seg->param);
    memset(seg, 0, sizeof *seg);
}

static segment *seg_at(srv_pg_store *s, int k)
{
    return &s->segs[(s->seg_head + k) % MAX_SEGMENTS];
}

static segment *seg_push(srv_pg_store *s, seg_kind kind)
{
    segment *seg = seg_at(s, s->n_segs++);
    memset(seg, 0, sizeof *seg);
    seg->kind = kind;
    seg->sent_ns = srv_mono_ns();
    if (kind == SEG_GROUP)
        s->n_groups++;
    else if (kind == SEG_HEADS)
        s->heads_pending = 1;
    else
        s->lease_pending = 1;
    return seg;
}

static void seg_pop(srv_pg_store *s)
{
    segment *seg = seg_at(s, 0);
    if (seg->kind == SEG_GROUP)
        s->n_groups--;
    else if (seg->kind == SEG_HEADS)
        s->heads_pending = 0;
    else
        s->lease_pending = 0;
    seg_free(seg);
    s->seg_head = (s->seg_head + 1) % MAX_SEGMENTS;
    s->n_segs--;
}

static void wake(srv_pg_store *s)
{
    uint64_t one = 1;
    if (write(s->wake_fd, &one, sizeof one) < 0) {
        /* EAGAIN: the counter is already set, the thread wakes anyway. */
    }
}

/* Hands completed batches (linked by next) to the caller's thread. */
static void hand_over(srv_pg_store *s, srv_store_batch *head, srv_store_batch *tail)
{
    if (!head)
        return;
    pthread_mutex_lock(&s->lock);
    if (s->done_tail)
        s->done_tail->next = head;
    else
        s->done_head = head;
    s->done_tail = tail;
    pthread_mutex_unlock(&s->lock);
    if (s->notify)
        s->notify(s->arg);
}

/* Seals and chains the batch after the room's head as this thread knows
 * it, into the item's parameters, and advances that head. 0, or < 0 with
 * the batch's result set (then it is not sent). */
static int prepare_item(srv_pg_store *s, group_item *it)
{
    srv_store_batch *b = it->b;
    pthread_mutex_lock(&s->lock);
    room_view v = view_locked(s, b->room_id);
    pthread_mutex_unlock(&s->lock);
    if (v.epoch == 0) {
        b->fenced = 1;
        return b->result = att_fail(&b->error, ATT_ERR_INTERNAL,
                                    "store: room %s is not held by this node", b->room_id);
    }
    if (v.head_state != 1) {
        note_head(s, b->room_id, v.gen, 0, 0, NULL); /* read it again for the next one */
        return b->result = att_fail(&b->error, ATT_ERR_INTERNAL,
                                    "store: room %s: its head could not be read", b->room_id);
    }
    if (v.head_seq + 1 != b->first_seq)
        return b->result = att_fail(&b->error, ATT_ERR_INTERNAL,
                                    "store: batch starts at seq %lld but the log ends at %lld",
                                    (long long)b->first_seq, (long long)v.head_seq);
    srv_seal_key key;
    srv_chain_key head_key;
    int rc = srv_keyring_room_key(s->keys, b->room_id, &key, &b->error);
    if (rc < 0)
        return b->result = rc;
    if ((rc = srv_chain_head_key(s->w_hasher, &key, &head_key, &b->error)) < 0) {
        OPENSSL_cleanse(&key, sizeof key);
        return b->result = rc;
    }
    srv_chain_link prev = v.head_link;
    if (array_begin(&it->types, OID_TEXT, b->n) < 0 ||
        array_begin(&it->links, OID_BYTEA, b->n) < 0 ||
        array_begin(&it->payloads, OID_BYTEA, b->n) < 0)
        rc = att_fail(&b->error, ATT_ERR_INTERNAL, "store: out of memory");
    for (int i = 0; i < b->n && rc == 0; i++) {
        int64_t seq = b->first_seq + i;
        if ((rc = srv_seal(&key, b->room_id, seq, b->type[i], b->payload[i], b->payload_len[i],
                           &s->seal_scratch, &b->error)) < 0 ||
            (rc = srv_chain_next(s->w_hasher, &prev, b->room_id, seq, b->type[i],
                                 s->seal_scratch.data, s->seal_scratch.len, &prev, &b->error)) < 0)
            break;
        if (array_elem(&it->types, b->type[i], strlen(b->type[i])) < 0 ||
            array_elem(&it->links, prev.bytes, SRV_CHAIN_BYTES) < 0 ||
            array_elem(&it->payloads, s->seal_scratch.data, s->seal_scratch.len) < 0)
            rc = att_fail(&b->error, ATT_ERR_INTERNAL, "store: out of memory");
    }
    int64_t last = b->first_seq + b->n - 1;
    srv_chain_link mac;
    if (rc == 0)
        rc = srv_chain_head_mac(s->w_hasher, &head_key, b->room_id, last, &prev, &mac, &b->error);
    OPENSSL_cleanse(&key, sizeof key);
    srv_chain_wipe(&head_key, sizeof head_key);
    if (rc < 0)
        return b->result = rc;
    memcpy(it->head_link, prev.bytes, SRV_CHAIN_BYTES);
    memcpy(it->head_mac, mac.bytes, SRV_CHAIN_BYTES);
    it->epoch = v.epoch;
    put_i64(it->epoch_b, v.epoch);
    put_i64(it->first_b, b->first_seq);
    note_head(s, b->room_id, v.gen, 1, last, &prev);
    return 0;
}

static int send_item(PGconn *conn, const group_item *it)
{
    const srv_store_batch *b = it->b;
    const char *v[8] = {b->room_id,
                        it->epoch_b,
                        it->first_b,
                        it->types.data,
                        it->links.data,
                        it->payloads.data,
                        (const char *)it->head_link,
                        (const char *)it->head_mac};
    int l[8] = {(int)strlen(b->room_id),
                8,
                8,
                (int)it->types.len,
                (int)it->links.len,
                (int)it->payloads.len,
                SRV_CHAIN_BYTES,
                SRV_CHAIN_BYTES};
    int f[8] = {1, 1, 1, 1, 1, 1, 1, 1};
    return PQsendQueryPrepared(conn, "attune_append", 8, v, l, f, 1) ? 0 : -1;
}

/* Sends a group's appends (its items in state ITEM_SEND) and the sync.
 * -1: the connection failed. */
static int send_group(srv_pg_store *s, segment *seg, int inject)
{
    PGconn *conn = srv_pg_conn(s->writer);
    seg->n_sent = 0;
    seg->idx = seg->pending_null = seg->failed = 0;
    seg->error[0] = '\0';
    seg->sent_ns = srv_mono_ns();
    for (int i = 0; i < seg->n_items; i++) {
        group_item *it = &seg->items[i];
        it->answered = 0;
        if (it->state != ITEM_SEND)
            continue;
        seg->sent[seg->n_sent++] = i;
        if (send_item(conn, it) < 0)
            return -1;
    }
    if (inject && !PQsendQueryParams(conn, INJECT_SQL, 0, NULL, NULL, NULL, NULL, 1))
        return -1;
    return PQpipelineSync(conn) ? 0 : -1;
}

/* Sends the next group from the queue, or a read of the heads it needs
 * first. -1: the connection failed. */
static int send_next(srv_pg_store *s)
{
    pthread_mutex_lock(&s->lock);
    int n = 0;
    srv_store_batch *b = s->queue_head;
    for (; b && n < MAX_GROUP_BATCHES; b = b->next, n++) {
        room_view v = view_locked(s, b->room_id);
        if (v.epoch != 0 && v.head_state == 0)
            break;
    }
    if (n == 0) {
        /* The first batch's room head is unknown: read the heads of the
         * unknown rooms among the next batches (after the groups in
         * flight, so what it reads includes them). */
        segment *seg = seg_push(s, SEG_HEADS);
        seg->rooms = calloc(MAX_GROUP_BATCHES, sizeof *seg->rooms);
        seg->gens = calloc(MAX_GROUP_BATCHES, sizeof *seg->gens);
        int k = 0;
        for (b = s->queue_head; b && seg->rooms && seg->gens && k < MAX_GROUP_BATCHES;
             b = b->next, k++) {
            room_view v = view_locked(s, b->room_id);
            if (v.epoch == 0 || v.head_state != 0)
                continue;
            int dup = 0;
            for (int j = 0; j < seg->n_rooms && !dup; j++)
                dup = strcmp(seg->rooms[j], b->room_id) == 0;
            if (!dup) {
                memcpy(seg->rooms[seg->n_rooms], b->room_id, sizeof seg->rooms[0]);
                seg->gens[seg->n_rooms++] = v.gen;
            }
        }
        pthread_mutex_unlock(&s->lock);
        int ok = seg->rooms && seg->gens && array_begin(&seg->param, OID_TEXT, seg->n_rooms) == 0;
        for (int j = 0; ok && j < seg->n_rooms; j++)
            ok = array_elem(&seg->param, seg->rooms[j], strlen(seg->rooms[j])) == 0;
        if (!ok) {
            srv_log("error", "store_out_of_memory", "{s:s}", "what", "head read");
            /* Sent empty: the sync completes it and the read is retried. */
            seg->n_rooms = 0;
            return PQpipelineSync(srv_pg_conn(s->writer)) ? 0 : -1;
        }
        PGconn *conn = srv_pg_conn(s->writer);
        const char *v[1] = {seg->param.data};
        int l[1] = {(int)seg->param.len}, f[1] = {1};
        if (!PQsendQueryPrepared(conn, "attune_heads", 1, v, l, f, 1))
            return -1;
        return PQpipelineSync(conn) ? 0 : -1;
    }
    srv_store_batch *group = s->queue_head;
    s->queue_head = b;
    if (!b)
        s->queue_tail = NULL;
    int inject = 0;
    if (s->fail_nth > 0) {
        if (s->fail_nth <= n) {
            inject = 1;
            s->fail_nth = 0;
        } else {
            s->fail_nth -= n;
        }
    }
    int cut = s->cut_after > 0 && --s->cut_after == 0;
    if (s->n_groups + 1 > s->rstats.max_groups_in_flight)
        s->rstats.max_groups_in_flight = s->n_groups + 1;
    pthread_mutex_unlock(&s->lock);
    group_item *items = calloc((size_t)n, sizeof *items);
    int *sent = calloc((size_t)n, sizeof *sent);
    if (!items || !sent) {
        /* Out of memory: the batches fail at once (this may complete them
         * before groups in flight for the same rooms; rare enough). */
        free(items);
        free(sent);
        srv_store_batch *tail = NULL;
        for (srv_store_batch *x = group; x != b; x = x->next) {
            x->result = att_fail(&x->error, ATT_ERR_INTERNAL, "store: out of memory");
            forget_head(s, x->room_id);
            tail = x;
        }
        tail->next = NULL;
        hand_over(s, group, tail);
        return 0;
    }
    segment *seg = seg_push(s, SEG_GROUP);
    seg->items = items;
    seg->sent = sent;
    seg->n_items = n;
    b = group;
    for (int i = 0; i < n; i++, b = b->next) {
        group_item *it = &seg->items[i];
        it->b = b;
        it->state = prepare_item(s, it) == 0 ? ITEM_SEND : ITEM_DONE;
    }
    s->cut_now |= cut;
    return send_group(s, seg, inject);
}

static int send_lease(srv_pg_store *s)
{
    PGconn *conn = srv_pg_conn(s->writer);
    seg_push(s, SEG_LEASE);
    char ms[32];
    snprintf(ms, sizeof ms, "%d", s->lease_ms);
    const char *p[3] = {s->node_id, s->ws_url, ms};
    if (!PQsendQueryPrepared(conn, "attune_renew", 3, p, NULL, NULL, 1) ||
        !PQsendQueryPrepared(conn, "attune_wanted", 1, p, NULL, NULL, 1))
        return -1;
    return PQpipelineSync(conn) ? 0 : -1;
}

/* A group's sync came back: every batch completes, in the order sent. */
static void complete_group(srv_pg_store *s, segment *seg)
{
    int64_t t1 = srv_mono_ns();
    srv_store_batch *head = NULL, *tail = NULL;
    for (int i = 0; i < seg->n_items; i++) {
        group_item *it = &seg->items[i];
        srv_store_batch *b = it->b;
        if (it->state == ITEM_SEND && (seg->failed || !it->answered)) {
            b->result =
                att_fail(&b->error, ATT_ERR_INTERNAL, "store: the transaction did not commit: %s",
                         seg->failed ? seg->error : "no answer to its append");
            forget_head(s, b->room_id);
        } else if (it->state == ITEM_SEND) {
            b->result = 0;
        } else if (it->state == ITEM_UNKNOWN) {
            b->result = att_fail(&b->error, ATT_ERR_INTERNAL,
                                 "store: lost the database mid-commit and could not read back "
                                 "(outcome unknown)");
            forget_head(s, b->room_id);
        } else if (b->result < 0) {
            forget_head(s, b->room_id);
        }
        b->group_size = seg->n_items;
        b->committed_ns = t1;
        b->commit_ns = t1 - seg->sent_ns;
        b->next = NULL;
        if (tail)
            tail->next = b;
        else
            head = b;
        tail = b;
    }
    hand_over(s, head, tail);
}

/* An append's row: stored, or why not (fenced / out of sequence). */
static void on_append(srv_pg_store *s, group_item *it, const PGresult *r)
{
    srv_store_batch *b = it->b;
    int one = PQntuples(r) == 1 && PQnfields(r) == 4;
    if (one && get_i64(r, 0, 0) == b->n && get_i64(r, 0, 1) == 1) {
        it->answered = 1;
        return;
    }
    it->state = ITEM_DONE;
    forget_head(s, b->room_id);
    if (!one || PQgetisnull(r, 0, 2)) {
        b->fenced = 1;
        b->result = att_fail(&b->error, ATT_ERR_INTERNAL, "store: room %s is gone", b->room_id);
        return;
    }
    int64_t epoch = get_i64(r, 0, 2), last = get_i64(r, 0, 3);
    if (epoch != it->epoch) {
        b->fenced = 1;
        b->result = att_fail(&b->error, ATT_ERR_INTERNAL,
                             "store: room %s moved to another node (epoch %lld, ours %lld)",
                             b->room_id, (long long)epoch, (long long)it->epoch);
    } else if (last == b->first_seq - 1) {
        /* The snapshot says the append fits, yet it stored nothing: the
         * row changed while the append waited for its lock (a takeover). */
        b->fenced = 1;
        b->result = att_fail(&b->error, ATT_ERR_INTERNAL,
                             "store: room %s was taken over while its append waited", b->room_id);
    } else {
        b->result = att_fail(&b->error, ATT_ERR_INTERNAL,
                             "store: batch starts at seq %lld but the log ends at %lld",
                             (long long)b->first_seq, (long long)last);
    }
}

static void on_heads(srv_pg_store *s, segment *seg, const PGresult *r)
{
    seg->answered = 1;
    for (int j = 0; j < seg->n_rooms; j++) {
        int state = 1;
        int64_t seq = 0;
        srv_chain_link link = {{0}};
        for (int i = 0; i < PQntuples(r); i++) {
            if (strcmp(PQgetvalue(r, i, 0), seg->rooms[j]) != 0)
                continue;
            if (PQgetlength(r, i, 2) != SRV_CHAIN_BYTES) {
                state = -1;
                srv_log("error", "room_head_malformed", "{s:s}", "room", seg->rooms[j]);
            } else {
                seq = get_i64(r, i, 1);
                memcpy(link.bytes, PQgetvalue(r, i, 2), SRV_CHAIN_BYTES);
            }
        }
        note_head(s, seg->rooms[j], seg->gens[j], state, seq, &link);
    }
}

static void on_wanted(srv_pg_store *s, const PGresult *r)
{
    int n = PQntuples(r);
    pthread_mutex_lock(&s->lock);
    void *grown = n ? realloc(s->wanted, (size_t)n * sizeof *s->wanted) : NULL;
    if (grown || !n) {
        if (grown)
            s->wanted = grown;
        for (int i = 0; i < n; i++)
            snprintf(s->wanted[i], sizeof s->wanted[0], "%s", PQgetvalue(r, i, 0));
        s->n_wanted = (size_t)n;
    }
    pthread_mutex_unlock(&s->lock);
}

static void copy_error(segment *seg, const PGresult *r)
{
    const char *msg = PQresultErrorMessage(r);
    size_t len = strlen(msg);
    while (len && (msg[len - 1] == '\n' || msg[len - 1] == ' '))
        len--;
    snprintf(seg->error, sizeof seg->error, "%.*s", (int)len, msg);
}

static void on_result(srv_pg_store *s, segment *seg, const PGresult *r)
{
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_FATAL_ERROR && !seg->failed) {
        seg->failed = 1;
        copy_error(seg, r);
    }
    switch (seg->kind) {
    case SEG_GROUP:
        if (st == PGRES_TUPLES_OK && seg->idx < seg->n_sent)
            on_append(s, &seg->items[seg->sent[seg->idx]], r);
        break;
    case SEG_HEADS:
        if (st == PGRES_TUPLES_OK && seg->idx == 0)
            on_heads(s, seg, r);
        break;
    case SEG_LEASE:
        if (st == PGRES_COMMAND_OK && seg->idx == 0) {
            pthread_mutex_lock(&s->lock);
            s->renewed_ns = seg->sent_ns;
            pthread_mutex_unlock(&s->lock);
        } else if (st == PGRES_TUPLES_OK && seg->idx == 1) {
            on_wanted(s, r);
        }
        break;
    }
}

static void finish_segment(srv_pg_store *s, segment *seg)
{
    if (seg->kind == SEG_GROUP) {
        complete_group(s, seg);
    } else if (seg->kind == SEG_HEADS) {
        if (!seg->answered)
            for (int j = 0; j < seg->n_rooms; j++)
                note_head(s, seg->rooms[j], seg->gens[j], -1, 0, NULL);
        if (seg->failed)
            srv_log("error", "room_heads_not_read", "{s:s}", "error", seg->error);
    } else if (seg->failed) {
        srv_log("warn", "node_lease_not_renewed", "{s:s}", "error", seg->error);
    }
}

/* A FATAL (not ERROR) severity ends the session; the outcome of what was
 * in flight is then unknown. */
static int session_ended(PGconn *conn, const PGresult *r)
{
    if (PQstatus(conn) == CONNECTION_BAD)
        return 1;
    const char *sev = PQresultErrorField(r, PG_DIAG_SEVERITY_NONLOCALIZED);
    return sev && (strcmp(sev, "FATAL") == 0 || strcmp(sev, "PANIC") == 0);
}

/* Reads every result that arrived. -1: the connection is lost. */
static int process_results(srv_pg_store *s)
{
    PGconn *conn = srv_pg_conn(s->writer);
    while (s->n_segs > 0 && !PQisBusy(conn)) {
        segment *seg = seg_at(s, 0);
        PGresult *r = PQgetResult(conn);
        if (!r) {
            if (!seg->pending_null)
                break;
            seg->pending_null = 0;
            seg->idx++;
            continue;
        }
        ExecStatusType st = PQresultStatus(r);
        if (st == PGRES_PIPELINE_SYNC) {
            PQclear(r);
            finish_segment(s, seg);
            seg_pop(s);
            continue;
        }
        if (seg->pending_null) {
            seg->pending_null = 0;
            seg->idx++;
        }
        if (st == PGRES_FATAL_ERROR && session_ended(conn, r)) {
            PQclear(r);
            return -1;
        }
        on_result(s, seg, r);
        PQclear(r);
        seg->pending_null = 1;
    }
    return PQstatus(conn) == CONNECTION_BAD ? -1 : 0;
}

/* The connection is gone: what was in flight waits for recover(). Groups
 * that saw an ERROR did not commit; other sent appends are unknown; the
 * lease renewal and head reads are dropped (sent again later). */
static void lost(srv_pg_store *s)
{
    s->up = 0;
    pthread_mutex_lock(&s->lock);
    s->rstats.connections_lost++;
    pthread_mutex_unlock(&s->lock);
    segment keep[MAX_SEGMENTS];
    int n = 0;
    while (s->n_segs > 0) {
        segment *seg = seg_at(s, 0);
        if (seg->kind == SEG_GROUP) {
            for (int i = 0; i < seg->n_items; i++) {
                group_item *it = &seg->items[i];
                if (it->state != ITEM_SEND)
                    continue;
                if (seg->failed) {
                    it->state = ITEM_DONE;
                    it->b->result =
                        att_fail(&it->b->error, ATT_ERR_INTERNAL,
                                 "store: the transaction did not commit: %s", seg->error);
                } else {
                    it->state = ITEM_UNKNOWN;
                }
            }
            keep[n++] = *seg;
            memset(seg, 0, sizeof *seg); /* moved to keep */
            seg->kind = SEG_GROUP;
        }
        seg_pop(s);
    }
    for (int i = 0; i < n; i++) {
        *seg_at(s, s->n_segs++) = keep[i];
        s->n_groups++;
    }
}

/* run() on the writer without its silent reconnect: a new session would
 * lack the node lock, the settings and the prepared statements. */
static int run_on(srv_pg *c, const char *sql, int n, const char *const *v, const int *len,
                  const int *fmt, PGresult **out, att_error *err)
{
    PGconn *conn = srv_pg_conn(c);
    if (!conn || PQstatus(conn) != CONNECTION_OK)
        return att_fail(err, ATT_ERR_INTERNAL, "postgresql: the writer's connection is lost");
    return run(c, sql, n, v, len, fmt, out, err);
}

/* Session settings and prepared statements, before pipeline mode. */
static int writer_setup(srv_pg_store *s, att_error *err)
{
    char sql[128];
    snprintf(sql, sizeof sql, "SET idle_in_transaction_session_timeout = %d", s->lease_ms);
    int rc = run_on(s->writer, "SET synchronous_commit = on", 0, NULL, NULL, NULL, NULL, err);
    if (rc == 0)
        rc = run_on(s->writer, sql, 0, NULL, NULL, NULL, NULL, err);
    static const struct {
        const char *name, *sql;
        int n;
        Oid types[8];
    } stmts[] = {
        {"attune_append",
         APPEND_SQL,
         8,
         {OID_TEXT, OID_INT8, OID_INT8, OID_TEXT_ARRAY, OID_BYTEA_ARRAY, OID_BYTEA_ARRAY, OID_BYTEA,
          OID_BYTEA}},
        {"attune_heads", HEADS_SQL, 1, {OID_TEXT_ARRAY}},
        {"attune_renew", RENEW_SQL, 3, {0}},
        {"attune_wanted", WANTED_SQL, 1, {0}},
    };
    PGconn *conn = srv_pg_conn(s->writer);
    for (size_t i = 0; rc == 0 && i < sizeof stmts / sizeof stmts[0]; i++) {
        PGresult *r = PQprepare(conn, stmts[i].name, stmts[i].sql, stmts[i].n,
                                stmts[i].types[0] ? stmts[i].types : NULL);
        if (PQresultStatus(r) != PGRES_COMMAND_OK)
            rc = srv_pg_fail(s->writer, r, "prepare", err);
        PQclear(r);
    }
    return rc;
}

static int enter_pipeline(srv_pg_store *s, att_error *err)
{
    PGconn *conn = srv_pg_conn(s->writer);
    if (PQsetnonblocking(conn, 1) != 0 || PQenterPipelineMode(conn) != 1)
        return srv_pg_fail(s->writer, NULL, "pipeline mode", err);
    return 0;
}

/* A new writer session: connect, the node lock (waiting a bounded time for
 * a dying session of ours to let it go), settings, statements. */
static int writer_connect(srv_pg_store *s, att_error *err)
{
    srv_pg_close(s->writer);
    s->writer = NULL;
    char app[SRV_STORE_NODE_BYTES + 32];
    snprintf(app, sizeof app, "attune-writer-%s", s->node_id);
    int rc = srv_pg_connect(s->uri, app, &s->writer, err);
    const char *p[1] = {s->node_id};
    if (rc == 0)
        rc = run_on(s->writer, "SET lock_timeout = 3000", 0, NULL, NULL, NULL, NULL, err);
    if (rc == 0)
        rc = run_on(s->writer, NODE_LOCK_SQL, 1, p, NULL, NULL, NULL, err);
    if (rc == 0)
        rc = run_on(s->writer, "SET lock_timeout = 0", 0, NULL, NULL, NULL, NULL, err);
    if (rc == 0)
        rc = writer_setup(s, err);
    return rc;
}

/* Reads back each unknown append (blocking, before pipeline mode). */
static int resolve_unknown(srv_pg_store *s, att_error *err)
{
    for (int k = 0; k < s->n_segs; k++) {
        segment *seg = seg_at(s, k);
        for (int i = 0; i < seg->n_items; i++) {
            group_item *it = &seg->items[i];
            if (it->state != ITEM_UNKNOWN)
                continue;
            srv_store_batch *b = it->b;
            char lb[8];
            put_i64(lb, b->first_seq + b->n - 1);
            const char *p[4] = {b->room_id, it->first_b, lb, it->epoch_b};
            int l[4] = {0, 8, 8, 8}, f[4] = {0, 1, 1, 1};
            PGresult *r = NULL;
            int rc = run_on(s->writer, READBACK_SQL, 4, p, l, f, &r, err);
            if (rc < 0)
                return rc;
            int64_t ours = get_i64(r, 0, 0), rows = get_i64(r, 0, 1);
            int64_t epoch = PQgetisnull(r, 0, 2) ? 0 : get_i64(r, 0, 2);
            PQclear(r);
            pthread_mutex_lock(&s->lock);
            if (ours == b->n) {
                it->state = ITEM_DONE;
                b->result = 0;
                s->rstats.unknown_committed++;
            } else if (rows == 0 && epoch == it->epoch) {
                it->state = ITEM_SEND;
                s->rstats.unknown_resent++;
            } else {
                it->state = ITEM_DONE;
                b->fenced = 1;
                b->result = att_fail(&b->error, ATT_ERR_INTERNAL,
                                     "store: room %s: after a lost connection its seqs are "
                                     "another node's or its epoch moved",
                                     b->room_id);
                s->rstats.unknown_fenced++;
            }
            pthread_mutex_unlock(&s->lock);
        }
    }
    return 0;
}

/* After a lost connection: a new session, every unknown outcome resolved,
 * the groups that had been in flight sent again (their appends to re-send,
 * and a sync that completes all their batches in order). Gives up after
 * RECOVER_MS: the unknown batches then fail (never acked). 0 or -1. */
static int recover(srv_pg_store *s)
{
    int64_t deadline = srv_mono_ns() + (int64_t)RECOVER_MS * 1000000;
    att_error err = {0};
    for (int attempt = 0;; attempt++) {
        if (attempt > 0) {
            if (srv_mono_ns() >= deadline)
                break;
            struct timespec ts = {0, 50 * 1000000L};
            nanosleep(&ts, NULL);
        }
        if (writer_connect(s, &err) < 0 || resolve_unknown(s, &err) < 0 ||
            enter_pipeline(s, &err) < 0)
            continue;
        forget_heads(s);
        s->up = 1;
        for (int k = 0; k < s->n_segs; k++)
            if (send_group(s, seg_at(s, k), 0) < 0) {
                lost(s);
                break;
            }
        if (!s->up)
            continue;
        pthread_mutex_lock(&s->lock);
        s->rstats.reconnects++;
        pthread_mutex_unlock(&s->lock);
        srv_log("warn", "store_writer_reconnected", "{s:i,s:i,s:I,s:s}", "groups", s->n_segs,
                "attempts", attempt + 1, "ms",
                (json_int_t)((srv_mono_ns() - deadline) / 1000000 + RECOVER_MS), "last_error",
                attempt ? err.message : "");
        return 0;
    }
    srv_log("error", "store_writer_down", "{s:s}", "error", err.message);
    pthread_mutex_lock(&s->lock);
    for (int k = 0; k < s->n_segs; k++)
        for (int i = 0; i < seg_at(s, k)->n_items; i++)
            s->rstats.unknown_failed += seg_at(s, k)->items[i].state == ITEM_UNKNOWN;
    pthread_mutex_unlock(&s->lock);
    while (s->n_segs > 0) {
        segment *seg = seg_at(s, 0);
        for (int i = 0; i < seg->n_items; i++)
            if (seg->items[i].state == ITEM_SEND) {
                seg->items[i].state = ITEM_DONE;
                seg->items[i].b->result = att_fail(&seg->items[i].b->error, ATT_ERR_INTERNAL,
                                                   "store: not stored: no connection to the "
                                                   "database");
            }
        complete_group(s, seg);
        seg_pop(s);
    }
    forget_heads(s);
    return -1;
}

/* While the database is unreachable: queued batches fail at once. */
static void fail_queue(srv_pg_store *s, const char *why)
{
    pthread_mutex_lock(&s->lock);
    srv_store_batch *head = s->queue_head, *tail = s->queue_tail;
    s->queue_head = s->queue_tail = NULL;
    pthread_mutex_unlock(&s->lock);
    for (srv_store_batch *b = head; b; b = b->next) {
        b->result = att_fail(&b->error, ATT_ERR_INTERNAL, "%s", why);
        b->group_size = 1;
    }
    hand_over(s, head, tail);
}

static void drain_wake(srv_pg_store *s)
{
    uint64_t n;
    if (read(s->wake_fd, &n, sizeof n) < 0) {
        /* EAGAIN: nothing was written since the last read. */
    }
}

static void *store_thread(void *arg)
{
    srv_pg_store *s = arg;
    int64_t renew_every = (int64_t)s->lease_ms * 1000000 / 3;
    int64_t next_renew = srv_mono_ns() + renew_every;
    att_error err = {0};
    s->up = writer_setup(s, &err) == 0 && enter_pipeline(s, &err) == 0;
    if (!s->up)
        srv_log("warn", "store_writer_not_ready", "{s:s}", "error", err.message);
    for (;;) {
        pthread_mutex_lock(&s->lock);
        int stopping = s->stopping;
        int64_t oldest = s->queue_head ? s->queue_head->queued_ns : -1;
        pthread_mutex_unlock(&s->lock);
        int64_t now = srv_mono_ns();
        if (stopping && oldest < 0 && s->n_segs == 0)
            break;
        if (!s->up) {
            if (now >= s->next_recover_ns && (oldest >= 0 || s->n_segs > 0 || now >= next_renew)) {
                if (recover(s) < 0)
                    s->next_recover_ns = srv_mono_ns() + 1000000000LL;
                continue;
            }
            if (oldest >= 0) {
                fail_queue(s, "store: not stored: no connection to the database");
                continue;
            }
            if (stopping)
                break;
            struct pollfd pfd = {s->wake_fd, POLLIN, 0};
            int64_t ms = (s->next_recover_ns - now) / 1000000 + 1;
            if (poll(&pfd, 1, (int)(ms < 1000 ? ms : 1000)) > 0)
                drain_wake(s);
            continue;
        }
        /* Woken by results, appends or close; else at the next renewal
         * or window end. A renewal due while the previous one is still in
         * flight waits for results, not for time. */
        int64_t wait_ns = 1000000000LL;
        if (now < next_renew) {
            wait_ns = next_renew - now;
        } else if (!s->lease_pending && s->n_segs < MAX_SEGMENTS) {
            if (send_lease(s) < 0) {
                lost(s);
                continue;
            }
            next_renew = now + renew_every;
        }
        if (oldest >= 0 && !s->heads_pending && s->n_groups < MAX_GROUPS_IN_FLIGHT &&
            s->n_segs < MAX_SEGMENTS) {
            int64_t due = oldest + s->window_ns;
            if (stopping || now >= due) {
                if (send_next(s) < 0) {
                    lost(s);
                    continue;
                }
                wait_ns = 0;
            } else if (due - now < wait_ns) {
                wait_ns = due - now;
            }
        }
        PGconn *conn = srv_pg_conn(s->writer);
        int flushing = PQflush(conn);
        if (flushing < 0) {
            lost(s);
            continue;
        }
        if (flushing == 0 && s->cut_now) {
            /* The test hook: the group went out whole; the connection
             * breaks before its answer can come back, as a network cut
             * would. The server still reads and commits what it got. */
            s->cut_now = 0;
            shutdown(PQsocket(conn), SHUT_RDWR);
        }
        struct pollfd fds[2] = {{s->wake_fd, POLLIN, 0},
                                {PQsocket(conn), (short)(POLLIN | (flushing ? POLLOUT : 0)), 0}};
        int64_t ms = wait_ns <= 0 ? 0 : (wait_ns + 999999) / 1000000;
        if (poll(fds, 2, (int)(ms < 1000 ? ms : 1000)) < 0)
            continue;
        if (fds[0].revents & POLLIN)
            drain_wake(s);
        if ((fds[1].revents & (POLLIN | POLLERR | POLLHUP)) &&
            (!PQconsumeInput(conn) || process_results(s) < 0)) {
            lost(s);
            continue;
        }
        if (PQstatus(conn) == CONNECTION_BAD)
            lost(s);
    }
    return NULL;
}

int srv_pg_store_start(srv_pg_store *s, int window_us, srv_store_notify_fn notify,
                       srv_store_discard_fn discard, void *arg, att_error *err)
{
    s->window_ns = (int64_t)(window_us > 0 ? window_us : 0) * 1000;
    s->notify = notify;
    s->discard = discard;
    s->arg = arg;
    if (!s->segs && !(s->segs = calloc(MAX_SEGMENTS, sizeof *s->segs)))
        return att_fail(err, ATT_ERR_INTERNAL, "store: out of memory");
    if (pthread_create(&s->thread, NULL, store_thread, s) != 0)
        return att_fail(err, ATT_ERR_INTERNAL, "store: cannot start thread");
    s->started = 1;
    return 0;
}

void srv_pg_store_close(srv_pg_store *s)
{
    if (!s)
        return;
    if (s->started) {
        pthread_mutex_lock(&s->lock);
        s->stopping = 1;
        pthread_mutex_unlock(&s->lock);
        wake(s);
        pthread_join(s->thread, NULL);
        s->started = 0;
    }
    srv_store_batch *b = srv_pg_store_take_completed(s);
    while (b) {
        srv_store_batch *next = b->next;
        if (s->discard)
            s->discard(b, s->arg);
        b = next;
    }
    while (s->n_segs > 0)
        seg_pop(s);
    srv_pg_close(s->writer);
    srv_pg_close(s->reader);
    srv_chain_hasher_free(s->r_hasher);
    srv_chain_hasher_free(s->w_hasher);
    if (s->open_scratch.data)
        OPENSSL_cleanse(s->open_scratch.data, s->open_scratch.cap);
    srv_seal_buf_free(&s->open_scratch);
    if (s->seal_scratch.data)
        OPENSSL_cleanse(s->seal_scratch.data, s->seal_scratch.cap);
    srv_seal_buf_free(&s->seal_scratch);
    if (s->wake_fd >= 0)
        close(s->wake_fd);
    free(s->segs);
    free(s->epochs);
    free(s->slots);
    free(s->wanted);
    free(s->uri);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

int srv_pg_store_append(srv_pg_store *s, srv_store_batch *b, att_error *err)
{
    int rc = srv_store_batch_prepare(b, err);
    if (rc < 0)
        return rc;
    pthread_mutex_lock(&s->lock);
    if (s->stopping || !s->started) {
        pthread_mutex_unlock(&s->lock);
        return att_fail(err, ATT_ERR_INTERNAL, "store: not running");
    }
    if (s->queue_tail)
        s->queue_tail->next = b;
    else
        s->queue_head = b;
    s->queue_tail = b;
    pthread_mutex_unlock(&s->lock);
    wake(s);
    return 0;
}

srv_store_batch *srv_pg_store_take_completed(srv_pg_store *s)
{
    pthread_mutex_lock(&s->lock);
    srv_store_batch *list = s->done_head;
    s->done_head = s->done_tail = NULL;
    pthread_mutex_unlock(&s->lock);
    return list;
}

void srv_pg_store_get_stats(srv_pg_store *s, srv_store_stats *out)
{
    (void)s;
    out->checkpoints = 0;
    out->wal_pages = 0;
}

void srv_pg_store_get_writer_stats(srv_pg_store *s, srv_pg_writer_stats *out)
{
    pthread_mutex_lock(&s->lock);
    *out = s->rstats;
    pthread_mutex_unlock(&s->lock);
}

void srv_pg_store_cut_after_nth_group(srv_pg_store *s, int nth)
{
    pthread_mutex_lock(&s->lock);
    s->cut_after = nth;
    pthread_mutex_unlock(&s->lock);
}

void srv_pg_store_fail_nth_batch(srv_pg_store *s, int nth)
{
    pthread_mutex_lock(&s->lock);
    s->fail_nth = nth;
    pthread_mutex_unlock(&s->lock);
}

/* ---- rooms ---- */

int srv_pg_store_create_room(srv_pg_store *s, const srv_store_room *room, const char *first_event,
                             size_t len, att_error *err)
{
    srv_pg *c = s->reader;
    char created[8];
    put_i64(created, room->created_at);
    const char *p[4] = {room->id, room->exercise, created, s->node_id};
    int l[4] = {0, 0, 8, 0}, f[4] = {0, 0, 1, 0};
    PGresult *r = NULL;
    int rc = run_plain(c, "BEGIN", err);
    if (rc < 0)
        return rc;
    rc = run(c,
             "INSERT INTO rooms (id, exercise, created_at, last_seq, owner, epoch) VALUES ($1, "
             "$2, $3, 1, $4, 1) ON CONFLICT (id) DO NOTHING RETURNING id",
             4, p, l, f, &r, err);
    if (rc == 0 && PQntuples(r) != 1)
        rc = att_fail(err, ATT_ERR_BAD_MESSAGE, "store: room %s exists", room->id);
    PQclear(r);
    srv_seal_key key;
    int keyed = 0;
    if (rc == 0) {
        rc = srv_keyring_new_room_key(s->keys, room->id, &key, err);
        if (rc == -ATT_ERR_BAD_MESSAGE) {
            /* A key left over from a creation that did not commit. */
            att_error ignored = {0};
            if (srv_keyring_erase_room(s->keys, room->id, &ignored) == 0)
                rc = srv_keyring_new_room_key(s->keys, room->id, &key, err);
        }
        keyed = rc == 0;
    }
    srv_seal_buf sealed = {0};
    srv_chain_link first = {{0}};
    srv_chain_key head_key;
    int have_head_key = 0;
    if (rc == 0 &&
        (rc = srv_seal(&key, room->id, 1, ROOM_CREATED, first_event, len, &sealed, err)) == 0 &&
        (rc = srv_chain_next(s->r_hasher, &first, room->id, 1, ROOM_CREATED, sealed.data,
                             sealed.len, &first, err)) == 0 &&
        (rc = srv_chain_head_key(s->r_hasher, &key, &head_key, err)) == 0) {
        have_head_key = 1;
        char one[8];
        put_i64(one, 1);
        const char *ep[6] = {
            room->id, one, one, ROOM_CREATED, (const char *)first.bytes, (const char *)sealed.data};
        int el[6] = {0, 8, 8, 0, SRV_CHAIN_BYTES, (int)sealed.len};
        int ef[6] = {0, 1, 1, 0, 1, 1};
        rc = run(c,
                 "INSERT INTO events (room, seq, epoch, type, chain, payload) VALUES ($1, $2, "
                 "$3, $4, $5, $6)",
                 6, ep, el, ef, NULL, err);
        if (rc == 0)
            rc = put_head(s->r_hasher, c, room->id, &head_key, 1, &first, err);
    }
    srv_seal_buf_free(&sealed);
    if (have_head_key)
        srv_chain_wipe(&head_key, sizeof head_key);
    if (rc == 0)
        rc = run_plain(c, "COMMIT", err);
    else {
        att_error ignored;
        run_plain(c, "ROLLBACK", &ignored);
    }
    att_error ignored = {0};
    if (rc < 0 && keyed && srv_keyring_erase_room(s->keys, room->id, &ignored) < 0)
        srv_log("warn", "room_key_not_erased", "{s:s,s:s}", "room", room->id, "error",
                ignored.message);
    if (keyed)
        OPENSSL_cleanse(&key, sizeof key);
    /* The creator holds the room (epoch 1). */
    if (rc == 0)
        rc = set_epoch(s, room->id, 1, err);
    return rc;
}

static void room_from_row(const PGresult *r, int row, srv_store_room *out)
{
    snprintf(out->id, sizeof out->id, "%s", PQgetvalue(r, row, 0));
    snprintf(out->exercise, sizeof out->exercise, "%s", PQgetvalue(r, row, 1));
    out->created_at = get_i64(r, row, 2);
}

int srv_pg_store_get_room(srv_pg_store *s, const char *id, srv_store_room *out, att_error *err)
{
    const char *p[1] = {id};
    PGresult *r = NULL;
    int rc = run(s->reader, "SELECT id, exercise, created_at FROM rooms WHERE id = $1", 1, p, NULL,
                 NULL, &r, err);
    if (rc < 0)
        return rc;
    if (PQntuples(r) == 1)
        room_from_row(r, 0, out);
    else
        rc = att_fail(err, ATT_ERR_NOT_FOUND, "store: no such room");
    PQclear(r);
    return rc;
}

int srv_pg_store_list_rooms(srv_pg_store *s, int (*fn)(const srv_store_room *room, void *arg),
                            void *arg, att_error *err)
{
    PGresult *r = NULL;
    int rc = run(s->reader, "SELECT id, exercise, created_at FROM rooms ORDER BY created_at, id", 0,
                 NULL, NULL, NULL, &r, err);
    if (rc < 0)
        return rc;
    for (int i = 0; i < PQntuples(r) && rc == 0; i++) {
        srv_store_room room;
        room_from_row(r, i, &room);
        rc = fn(&room, arg);
    }
    PQclear(r);
    return rc;
}

/* ---- walks ---- */

typedef struct {
    srv_pg *c;
    srv_chain_hasher *hasher;
    srv_keyring *keys;
    srv_seal_buf *scratch;
} walk_conn;

static int walk_fail(att_error *err, const char *room, int64_t seq, const char *what)
{
    return att_fail(err, ATT_ERR_INTERNAL, "store: room %s, event %lld: %s", room, (long long)seq,
                    what);
}

/* As store_sqlite.c's walk: the head first, then the events from after_seq
 * (its row is the anchor whose stored link starts the check). */
static srv_walk walk_sealed(const walk_conn *c, const char *room, int64_t after_seq,
                            int64_t upto_seq, int limit, srv_stored_event_fn fn, void *arg,
                            att_error *err)
{
    int64_t head_seq = 0;
    srv_chain_link head_link, head_mac, prev = {{0}};
    if (read_head(c->c, room, &head_seq, &head_link, &head_mac, err) < 0)
        return SRV_WALK_FAILED;
    int have_head = head_seq > 0;
    int anchored = after_seq <= 0;
    char from[8], upto[8], lim[8];
    put_i64(from, anchored ? 1 : after_seq);
    put_i64(upto, upto_seq < 0 ? INT64_MAX : upto_seq);
    put_i64(lim, limit <= 0 ? INT64_MAX : (int64_t)limit + !anchored);
    const char *p[4] = {room, from, upto, lim};
    int l[4] = {0, 8, 8, 8}, f[4] = {0, 1, 1, 1};
    PGresult *r = NULL;
    if (run(c->c, READ_EVENTS_SQL, 4, p, l, f, &r, err) < 0)
        return SRV_WALK_FAILED;
    srv_walk how = SRV_WALK_CONTINUE;
    srv_seal_key key;
    int have_key = 0, delivered = 0, rc = 0;
    int64_t last_seq = 0;
    for (int i = 0; i < PQntuples(r); i++) {
        int64_t seq = get_i64(r, i, 0);
        const char *type = PQgetvalue(r, i, 1);
        const char *sealed = PQgetvalue(r, i, 2);
        size_t len = (size_t)PQgetlength(r, i, 2);
        const char *stored = PQgetvalue(r, i, 3);
        int link_ok = PQgetlength(r, i, 3) == SRV_CHAIN_BYTES;
        if (!have_key) {
            att_error why = {0};
            rc = srv_keyring_room_key(c->keys, room, &key, &why);
            if (rc == -ATT_ERR_NOT_FOUND)
                rc = att_fail(err, ATT_ERR_NOT_FOUND,
                              "store: room %s has events but no data key (erased): they cannot "
                              "be read",
                              room);
            else if (rc < 0)
                rc = att_fail(err, -rc, "%s", why.message);
            have_key = rc == 0;
        }
        srv_chain_link link;
        if (rc == 0 && !anchored) {
            if (seq != after_seq)
                rc = walk_fail(err, room, after_seq, "missing (dropped) where the walk resumes");
            else if (!link_ok)
                rc = walk_fail(err, room, seq, "no link stored (inserted, or its link erased)");
            else
                memcpy(link.bytes, stored, SRV_CHAIN_BYTES);
        } else if (rc == 0) {
            if (seq != last_seq + 1)
                rc = walk_fail(err, room, last_seq + 1, "missing (dropped): the log skips it");
            if (rc == 0)
                rc = srv_chain_next(c->hasher, &prev, room, seq, type, sealed, len, &link, err);
            if (rc == 0 && (!link_ok || !srv_chain_same(&link, stored, sizeof link)))
                rc = walk_fail(err, room, seq,
                               "does not follow the event before it in the room's chain (edited, "
                               "inserted or reordered)");
        }
        if (rc == 0 && have_head && seq == head_seq) {
            if (!srv_chain_same(&link, &head_link, sizeof link))
                rc = walk_fail(err, room, seq, "the room's head names another link here");
            else {
                srv_chain_key hk;
                srv_chain_link mac;
                rc = srv_chain_head_key(c->hasher, &key, &hk, err);
                if (rc == 0)
                    rc = srv_chain_head_mac(c->hasher, &hk, room, seq, &link, &mac, err);
                srv_chain_wipe(&hk, sizeof hk);
                if (rc == 0 && !srv_chain_same(&mac, &head_mac, sizeof mac))
                    rc = walk_fail(err, room, seq, "the room's head does not authenticate");
            }
        }
        if (rc == 0 && anchored)
            rc = srv_unseal(&key, room, seq, type, sealed, len, c->scratch, err);
        if (rc < 0) {
            how = SRV_WALK_FAILED;
            break;
        }
        prev = link;
        last_seq = seq;
        if (!anchored) {
            anchored = 1;
            continue;
        }
        delivered++;
        srv_stored_event ev = {.seq = seq,
                               .type = type,
                               .payload = (const char *)c->scratch->data,
                               .len = c->scratch->len};
        if ((how = fn(&ev, arg, err)) != SRV_WALK_CONTINUE)
            break;
    }
    PQclear(r);
    int to_end = (limit <= 0 || delivered < limit) && (upto_seq < 0 || upto_seq >= head_seq);
    if (how == SRV_WALK_CONTINUE && to_end) {
        if (!have_head && last_seq > 0) {
            walk_fail(err, room, last_seq, "the room has no authenticated head (removed)");
            how = SRV_WALK_FAILED;
        } else if (have_head && last_seq < head_seq && (last_seq > 0 || after_seq <= head_seq)) {
            walk_fail(err, room, last_seq + 1, "missing: the log ends before its head (truncated)");
            how = SRV_WALK_FAILED;
        }
    }
    if (have_key)
        OPENSSL_cleanse(&key, sizeof key);
    return how;
}

srv_walk srv_pg_store_walk_events(srv_pg_store *s, const char *room_id, int64_t after_seq,
                                  int64_t upto_seq, int limit, srv_stored_event_fn fn, void *arg,
                                  att_error *err)
{
    walk_conn c = {s->reader, s->r_hasher, s->keys, &s->open_scratch};
    return walk_sealed(&c, room_id, after_seq, upto_seq, limit, fn, arg, err);
}

struct srv_pg_store_reader {
    srv_pg *c;
    srv_chain_hasher *hasher;
    srv_keyring *keys;
    srv_seal_buf scratch;
};

int srv_pg_store_reader_open(srv_pg_store *s, srv_pg_store_reader **out, att_error *err)
{
    *out = NULL;
    srv_pg_store_reader *r = calloc(1, sizeof *r);
    if (!r)
        return att_fail(err, ATT_ERR_INTERNAL, "store: out of memory");
    r->keys = s->keys;
    if (srv_pg_connect(s->uri, "attune-reader", &r->c, err) < 0 ||
        srv_chain_hasher_new(&r->hasher, err) < 0) {
        srv_pg_store_reader_close(r);
        return -ATT_ERR_INTERNAL;
    }
    *out = r;
    return 0;
}

void srv_pg_store_reader_close(srv_pg_store_reader *r)
{
    if (!r)
        return;
    srv_pg_close(r->c);
    srv_chain_hasher_free(r->hasher);
    if (r->scratch.data)
        OPENSSL_cleanse(r->scratch.data, r->scratch.cap);
    srv_seal_buf_free(&r->scratch);
    free(r);
}

srv_walk srv_pg_store_reader_walk_events(srv_pg_store_reader *r, const char *room_id,
                                         int64_t after_seq, int64_t upto_seq, int limit,
                                         srv_stored_event_fn fn, void *arg, att_error *err)
{
    walk_conn c = {r->c, r->hasher, r->keys, &r->scratch};
    return walk_sealed(&c, room_id, after_seq, upto_seq, limit, fn, arg, err);
}

int srv_pg_store_last_seq(srv_pg_store *s, const char *room_id, int64_t *out, att_error *err)
{
    const char *p[1] = {room_id};
    PGresult *r = NULL;
    int rc = run(s->reader, "SELECT coalesce(max(seq), 0)::int8 FROM events WHERE room = $1", 1, p,
                 NULL, NULL, &r, err);
    if (rc == 0)
        *out = get_i64(r, 0, 0);
    PQclear(r);
    return rc;
}

/* ---- settings and summaries ---- */

int srv_pg_store_get_setting(srv_pg_store *s, const char *key, char *out, size_t out_size,
                             att_error *err)
{
    const char *p[1] = {key};
    PGresult *r = NULL;
    int rc = run(s->reader, "SELECT value FROM settings WHERE key = $1", 1, p, NULL, NULL, &r, err);
    if (rc < 0)
        return rc;
    if (PQntuples(r) != 1)
        rc = att_fail(err, ATT_ERR_NOT_FOUND, "store: no setting %s", key);
    else if ((size_t)snprintf(out, out_size, "%.*s", PQgetlength(r, 0, 0), PQgetvalue(r, 0, 0)) >=
             out_size)
        rc = att_fail(err, ATT_ERR_INTERNAL, "store: setting too long");
    PQclear(r);
    return rc;
}

int srv_pg_store_set_setting(srv_pg_store *s, const char *key, const char *value, att_error *err)
{
    const char *p[2] = {key, value};
    return run(s->reader,
               "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET "
               "value = excluded.value",
               2, p, NULL, NULL, NULL, err);
}

int srv_pg_store_get_summary(srv_pg_store *s, const char *room_id, char **out, att_error *err)
{
    *out = NULL;
    const char *p[1] = {room_id};
    PGresult *r = NULL;
    int rc = run(s->reader,
                 "SELECT summary FROM room_summaries WHERE room = $1 AND last_seq = "
                 "(SELECT coalesce(max(seq), 0) FROM events WHERE room = $1)",
                 1, p, NULL, NULL, &r, err);
    if (rc < 0)
        return rc;
    if (PQntuples(r) != 1)
        rc = att_fail(err, ATT_ERR_NOT_FOUND, "store: no current summary");
    else if (!(*out = strndup(PQgetvalue(r, 0, 0), (size_t)PQgetlength(r, 0, 0))))
        rc = att_fail(err, ATT_ERR_INTERNAL, "store: out of memory");
    PQclear(r);
    return rc;
}

int srv_pg_store_scan_stale_summaries(srv_pg_store *s, const char *after_id, int limit,
                                      char last_out[SRV_STORE_ID_BYTES + 1], int *n_out,
                                      int (*fn)(const char *room_id, int64_t last_seq, void *arg),
                                      void *arg, att_error *err)
{
    *n_out = 0;
    last_out[0] = '\0';
    char lim[16];
    snprintf(lim, sizeof lim, "%d", limit);
    const char *p[2] = {after_id, lim};
    PGresult *r = NULL;
    int rc = run(s->reader,
                 "SELECT r.id, (s.last_seq IS NOT NULL AND s.last_seq = r.last_seq)::int4, "
                 "r.last_seq FROM rooms r LEFT JOIN room_summaries s ON s.room = r.id "
                 "WHERE r.id > $1 ORDER BY r.id LIMIT $2::int",
                 2, p, NULL, NULL, &r, err);
    if (rc < 0)
        return rc;
    for (int i = 0; i < PQntuples(r) && rc == 0; i++) {
        snprintf(last_out, SRV_STORE_ID_BYTES + 1, "%s", PQgetvalue(r, i, 0));
        (*n_out)++;
        uint32_t fresh;
        memcpy(&fresh, PQgetvalue(r, i, 1), 4);
        if (!ntohl(fresh))
            rc = fn(last_out, get_i64(r, i, 2), arg);
    }
    PQclear(r);
    return rc;
}

int srv_pg_store_put_summaries(srv_pg_store *s, const srv_store_summary *items, size_t n,
                               att_error *err)
{
    if (n == 0)
        return 0;
    int rc = run_plain(s->reader, "BEGIN", err);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        char seq[8];
        put_i64(seq, items[i].last_seq);
        const char *p[3] = {items[i].room_id, seq, items[i].summary};
        int l[3] = {0, 8, 0}, f[3] = {0, 1, 0};
        rc = run(s->reader,
                 "INSERT INTO room_summaries (room, last_seq, summary) VALUES ($1, $2, $3) ON "
                 "CONFLICT (room) DO UPDATE SET last_seq = excluded.last_seq, summary = "
                 "excluded.summary",
                 3, p, l, f, NULL, err);
    }
    if (rc == 0)
        return run_plain(s->reader, "COMMIT", err);
    att_error ignored;
    run_plain(s->reader, "ROLLBACK", &ignored);
    return rc;
}

/* ---- verify, erase ---- */

static srv_walk count_event(const srv_stored_event *ev, void *arg, att_error *err)
{
    (void)ev;
    (void)err;
    (*(int64_t *)arg)++;
    return SRV_WALK_CONTINUE;
}

/* Checks the whole log with the walk's checks (seals, links, continuity,
 * head); names the first bad seq from the walk's message. Does not tell
 * apart a copy from a reorder as the SQLite store's verify does. */
int srv_pg_store_verify_room(srv_pg_store *s, const char *room, srv_chain_report *out,
                             att_error *err)
{
    memset(out, 0, sizeof *out);
    srv_store_room meta;
    int rc = srv_pg_store_get_room(s, room, &meta, err);
    if (rc < 0)
        return rc;
    srv_chain_link head_link;
    if ((rc = read_head(s->reader, room, &out->head_seq, &head_link, NULL, err)) < 0)
        return rc;
    if (out->head_seq > 0)
        srv_chain_hex(&head_link, out->head_hex);
    srv_seal_key key;
    att_error why = {0};
    rc = srv_keyring_room_key(s->keys, room, &key, &why);
    if (rc == -ATT_ERR_NOT_FOUND) {
        snprintf(out->problem, sizeof out->problem,
                 "the room's data key is gone (erased): its events cannot be opened or checked");
        return 1;
    }
    OPENSSL_cleanse(&key, sizeof key);
    if (rc < 0)
        return att_fail(err, -rc, "%s", why.message);
    walk_conn c = {s->reader, s->r_hasher, s->keys, &s->open_scratch};
    int64_t n = 0;
    att_error werr = {0};
    srv_walk how = walk_sealed(&c, room, 0, -1, 0, count_event, &n, &werr);
    out->events = n;
    if (how == SRV_WALK_CONTINUE)
        return 0;
    const char *at = strstr(werr.message, ", event ");
    out->bad_seq = at ? strtoll(at + 8, NULL, 10) : n + 1;
    const char *what = at ? strchr(at + 8, ':') : NULL;
    snprintf(out->problem, sizeof out->problem, "%s", what ? what + 2 : werr.message);
    return 1;
}

int srv_pg_store_erase_room(srv_pg_store *s, const char *room, att_error *err)
{
    int rc = srv_keyring_erase_room(s->keys, room, err);
    if (rc < 0)
        return rc;
    const char *p[1] = {room};
    PGresult *r = NULL;
    int n_rooms = 0;
    if ((rc = run_plain(s->reader, "BEGIN", err)) < 0)
        return rc;
    if ((rc = run(s->reader, "DELETE FROM events WHERE room = $1", 1, p, NULL, NULL, NULL, err)) ==
            0 &&
        (rc = run(s->reader, "DELETE FROM room_heads WHERE room = $1", 1, p, NULL, NULL, NULL,
                  err)) == 0 &&
        (rc = run(s->reader, "DELETE FROM room_summaries WHERE room = $1", 1, p, NULL, NULL, NULL,
                  err)) == 0 &&
        (rc = run(s->reader, "DELETE FROM rooms WHERE id = $1 RETURNING id", 1, p, NULL, NULL, &r,
                  err)) == 0) {
        n_rooms = PQntuples(r);
        PQclear(r);
    }
    if (rc == 0)
        rc = run_plain(s->reader, "COMMIT", err);
    else {
        att_error ignored;
        run_plain(s->reader, "ROLLBACK", &ignored);
    }
    if (rc < 0)
        return rc;
    set_epoch(s, room, 0, NULL);
    srv_log("info", "room_erased_from_store", "{s:s}", "room", room);
    if (!n_rooms)
        return att_fail(err, ATT_ERR_NOT_FOUND, "store: no room %s (its key is erased anyway)",
                        room);
    return 0;
}

/* ---- leases ---- */

int srv_pg_store_acquire_room(srv_pg_store *s, const char *room, srv_store_lease *out,
                              att_error *err)
{
    memset(out, 0, sizeof *out);
    const char *p[2] = {room, s->node_id};
    for (int attempt = 0; attempt < 2; attempt++) {
        PGresult *r = NULL;
        /* Ours already, free, or its owner's node lease expired: take it
         * (a new epoch unless it is ours already). */
        int rc = run(s->reader,
                     "UPDATE rooms r SET epoch = CASE WHEN r.owner = $2 THEN r.epoch ELSE r.epoch "
                     "+ 1 END, owner = $2, wanted_by = NULL WHERE r.id = $1 AND (r.owner IS NULL "
                     "OR r.owner = $2 OR NOT EXISTS (SELECT 1 FROM nodes n WHERE n.id = r.owner "
                     "AND n.lease_until > now())) RETURNING r.epoch, r.last_seq",
                     2, p, NULL, NULL, &r, err);
        if (rc < 0)
            return rc;
        if (PQntuples(r) == 1) {
            out->epoch = get_i64(r, 0, 0);
            out->last_seq = get_i64(r, 0, 1);
            PQclear(r);
            return set_epoch(s, room, out->epoch, err);
        }
        PQclear(r);
        if ((rc = run(s->reader,
                      "SELECT r.owner, coalesce(n.ws_url, ''), "
                      "pg_try_advisory_lock(hashtext('attune-node:' || r.owner))::int4 "
                      "FROM rooms r LEFT JOIN nodes n ON n.id = r.owner WHERE r.id = $1",
                      1, p, NULL, NULL, &r, err)) < 0)
            return rc;
        if (PQntuples(r) != 1) {
            PQclear(r);
            return att_fail(err, ATT_ERR_NOT_FOUND, "store: no such room");
        }
        snprintf(out->holder, sizeof out->holder, "%s", PQgetvalue(r, 0, 0));
        snprintf(out->holder_url, sizeof out->holder_url, "%s", PQgetvalue(r, 0, 1));
        uint32_t freed;
        memcpy(&freed, PQgetvalue(r, 0, 2), 4);
        PQclear(r);
        att_error ignored;
        if (ntohl(freed)) {
            /* Its session is gone (the process died): expire its lease and
             * try again. */
            const char *hp[1] = {out->holder};
            run(s->reader, "SELECT pg_advisory_unlock(hashtext('attune-node:' || $1))", 1, hp, NULL,
                NULL, NULL, &ignored);
            if ((rc = run(s->reader, "UPDATE nodes SET lease_until = now() WHERE id = $1", 1, hp,
                          NULL, NULL, NULL, err)) < 0)
                return rc;
            continue;
        }
        if ((rc = run(s->reader, "UPDATE rooms SET wanted_by = $2 WHERE id = $1", 2, p, NULL, NULL,
                      NULL, err)) < 0)
            return rc;
        return 1;
    }
    return 1;
}

int srv_pg_store_release_room(srv_pg_store *s, const char *room, att_error *err)
{
    int64_t epoch = epoch_of(s, room);
    set_epoch(s, room, 0, NULL);
    if (epoch == 0)
        return 0;
    char eb[8];
    put_i64(eb, epoch);
    const char *p[3] = {room, s->node_id, eb};
    int l[3] = {0, 0, 8}, f[3] = {0, 0, 1};
    return run(s->reader,
               "UPDATE rooms SET owner = NULL WHERE id = $1 AND owner = $2 AND epoch = $3", 3, p, l,
               f, NULL, err);
}

int srv_pg_store_take_wanted(srv_pg_store *s, char (*out)[SRV_STORE_ID_BYTES + 1], int max)
{
    pthread_mutex_lock(&s->lock);
    int n = 0;
    while (n < max && s->n_wanted > 0) {
        memcpy(out[n++], s->wanted[--s->n_wanted], sizeof out[0]);
    }
    pthread_mutex_unlock(&s->lock);
    return n;
}

int srv_pg_store_node_alive(srv_pg_store *s)
{
    pthread_mutex_lock(&s->lock);
    int alive = srv_mono_ns() - s->renewed_ns < (int64_t)s->lease_ms * 1000000;
    pthread_mutex_unlock(&s->lock);
    return alive;
}

/* ---- as a srv_store (store_backend.h) ---- */

static int op_start(void *i, int w, srv_store_notify_fn n, srv_store_discard_fn d, void *a,
                    att_error *e)
{
    return srv_pg_store_start(i, w, n, d, a, e);
}
static void op_close(void *i)
{
    srv_pg_store_close(i);
}
static int op_create_room(void *i, const srv_store_room *r, const char *f, size_t l, att_error *e)
{
    return srv_pg_store_create_room(i, r, f, l, e);
}
static int op_get_room(void *i, const char *id, srv_store_room *o, att_error *e)
{
    return srv_pg_store_get_room(i, id, o, e);
}
static int op_list_rooms(void *i, int (*fn)(const srv_store_room *, void *), void *a, att_error *e)
{
    return srv_pg_store_list_rooms(i, fn, a, e);
}
static srv_walk op_walk(void *i, const char *r, int64_t a, int64_t u, int l, srv_stored_event_fn fn,
                        void *arg, att_error *e)
{
    return srv_pg_store_walk_events(i, r, a, u, l, fn, arg, e);
}
static int op_reader_open(void *i, void **o, att_error *e)
{
    srv_pg_store_reader *r = NULL;
    int rc = srv_pg_store_reader_open(i, &r, e);
    *o = r;
    return rc;
}
static void op_reader_close(void *r)
{
    srv_pg_store_reader_close(r);
}
static srv_walk op_reader_walk(void *r, const char *room, int64_t a, int64_t u, int l,
                               srv_stored_event_fn fn, void *arg, att_error *e)
{
    return srv_pg_store_reader_walk_events(r, room, a, u, l, fn, arg, e);
}
static int op_last_seq(void *i, const char *r, int64_t *o, att_error *e)
{
    return srv_pg_store_last_seq(i, r, o, e);
}
static int op_append(void *i, srv_store_batch *b, att_error *e)
{
    return srv_pg_store_append(i, b, e);
}
static srv_store_batch *op_take_completed(void *i)
{
    return srv_pg_store_take_completed(i);
}
static int op_get_summary(void *i, const char *r, char **o, att_error *e)
{
    return srv_pg_store_get_summary(i, r, o, e);
}
static int op_scan(void *i, const char *a, int l, char lo[SRV_STORE_ID_BYTES + 1], int *n,
                   int (*fn)(const char *, int64_t, void *), void *arg, att_error *e)
{
    return srv_pg_store_scan_stale_summaries(i, a, l, lo, n, fn, arg, e);
}
static int op_put_summaries(void *i, const srv_store_summary *it, size_t n, att_error *e)
{
    return srv_pg_store_put_summaries(i, it, n, e);
}
static int op_get_setting(void *i, const char *k, char *o, size_t n, att_error *e)
{
    return srv_pg_store_get_setting(i, k, o, n, e);
}
static int op_set_setting(void *i, const char *k, const char *v, att_error *e)
{
    return srv_pg_store_set_setting(i, k, v, e);
}
static void op_get_stats(void *i, srv_store_stats *o)
{
    srv_pg_store_get_stats(i, o);
}
static int op_verify(void *i, const char *r, srv_chain_report *o, att_error *e)
{
    return srv_pg_store_verify_room(i, r, o, e);
}
static int op_erase(void *i, const char *r, att_error *e)
{
    return srv_pg_store_erase_room(i, r, e);
}
static void op_fail_nth(void *i, int n)
{
    srv_pg_store_fail_nth_batch(i, n);
}
static int op_acquire(void *i, const char *r, srv_store_lease *o, att_error *e)
{
    return srv_pg_store_acquire_room(i, r, o, e);
}
static int op_release(void *i, const char *r, att_error *e)
{
    return srv_pg_store_release_room(i, r, e);
}
static int op_take_wanted(void *i, char (*o)[SRV_STORE_ID_BYTES + 1], int m)
{
    return srv_pg_store_take_wanted(i, o, m);
}
static int op_node_alive(void *i)
{
    return srv_pg_store_node_alive(i);
}
static const char *op_node_id(const void *i)
{
    return srv_pg_store_node_id(i);
}

static const struct srv_store_ops pg_ops = {
    .kind = "postgresql",
    .start = op_start,
    .close = op_close,
    .create_room = op_create_room,
    .get_room = op_get_room,
    .list_rooms = op_list_rooms,
    .walk_events = op_walk,
    .reader_open = op_reader_open,
    .reader_close = op_reader_close,
    .reader_walk_events = op_reader_walk,
    .last_seq = op_last_seq,
    .append = op_append,
    .take_completed = op_take_completed,
    .get_summary = op_get_summary,
    .scan_stale_summaries = op_scan,
    .put_summaries = op_put_summaries,
    .get_setting = op_get_setting,
    .set_setting = op_set_setting,
    .get_stats = op_get_stats,
    .verify_room = op_verify,
    .erase_room = op_erase,
    .fail_nth_batch = op_fail_nth,
    .acquire_room = op_acquire,
    .release_room = op_release,
    .take_wanted = op_take_wanted,
    .node_alive = op_node_alive,
    .node_id = op_node_id,
};

int srv_store_open_pg(const srv_pg_store_options *opt, srv_keyring *keys, srv_store **out,
                      att_error *err)
{
    *out = NULL;
    srv_pg_store *s = NULL;
    int rc = srv_pg_store_open(opt, keys, &s, err);
    if (rc < 0)
        return rc;
    if ((rc = srv_store_wrap(&pg_ops, s, out, err)) < 0)
        srv_pg_store_close(s);
    return rc;
}
