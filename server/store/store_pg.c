/* store_pg.c - the event store on PostgreSQL (store_pg.h).
 *
 * This first version keeps store.h's contract with a BLOCKING writer on
 * the store thread: a group is BEGIN, per batch a savepoint, the fenced
 * head update of multinode.md §3.3 (rooms.last_seq and rooms.epoch must
 * be what this node expects, else 0 rows and nothing stored), the events
 * with their links, the MAC'd head row, then COMMIT. A batch completes only
 * after its COMMIT result came back (synchronous_commit on). Pipelining
 * (several groups in flight) is not built yet; a connection lost with a
 * COMMIT sent fails the group's batches as "outcome unknown" after reading
 * back whether they landed (see resolve_unknown).
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
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

typedef struct {
    char room[SRV_STORE_ID_BYTES + 1];
    int64_t epoch;
} room_epoch;

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

    pthread_mutex_t lock; /* guards everything below */
    pthread_cond_t wake;
    int stopping;
    srv_store_batch *queue_head, *queue_tail;
    srv_store_batch *done_head, *done_tail;
    int fail_nth;
    room_epoch *epochs; /* the rooms this node acquired, with their epoch */
    size_t n_epochs, cap_epochs;
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

/* ---- epochs (service thread writes, store thread reads) ---- */

static int64_t epoch_of(srv_pg_store *s, const char *room)
{
    int64_t e = 0;
    pthread_mutex_lock(&s->lock);
    for (size_t i = 0; i < s->n_epochs; i++)
        if (strcmp(s->epochs[i].room, room) == 0) {
            e = s->epochs[i].epoch;
            break;
        }
    pthread_mutex_unlock(&s->lock);
    return e;
}

static int set_epoch(srv_pg_store *s, const char *room, int64_t epoch, att_error *err)
{
    int rc = 0;
    pthread_mutex_lock(&s->lock);
    size_t i = 0;
    while (i < s->n_epochs && strcmp(s->epochs[i].room, room) != 0)
        i++;
    if (epoch == 0) {
        if (i < s->n_epochs)
            s->epochs[i] = s->epochs[--s->n_epochs];
    } else if (i < s->n_epochs) {
        s->epochs[i].epoch = epoch;
    } else {
        if (s->n_epochs == s->cap_epochs) {
            size_t cap = s->cap_epochs ? 2 * s->cap_epochs : 64;
            room_epoch *p = realloc(s->epochs, cap * sizeof *p);
            if (!p)
                rc = att_fail(err, ATT_ERR_INTERNAL, "store: out of memory");
            else {
                s->epochs = p;
                s->cap_epochs = cap;
            }
        }
        if (rc == 0) {
            snprintf(s->epochs[s->n_epochs].room, sizeof s->epochs[0].room, "%s", room);
            s->epochs[s->n_epochs++].epoch = epoch;
        }
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
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
    return run(c, "SELECT pg_advisory_lock(hashtext('attune-node:' || $1))", 1, p, NULL, NULL, NULL,
               err);
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
    pthread_cond_init(&s->wake, NULL);
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

/* ---- the store thread ---- */

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

/* One batch inside the group's transaction (in a savepoint of its own).
 * Returns 0 (stored), 1 (fenced or out of sequence: nothing stored, result
 * set), or a negative code when the connection failed. */
static int append_batch(srv_pg_store *s, srv_store_batch *b, att_error *conn_err)
{
    srv_pg *c = s->writer;
    int64_t epoch = epoch_of(s, b->room_id);
    if (epoch == 0) {
        b->fenced = 1;
        b->result = att_fail(&b->error, ATT_ERR_INTERNAL, "store: room %s is not held by this node",
                             b->room_id);
        return 1;
    }
    char eb[8], fb[8], lb[8];
    put_i64(eb, epoch);
    put_i64(fb, b->first_seq);
    put_i64(lb, b->first_seq + b->n - 1);
    const char *hp[4] = {b->room_id, eb, fb, lb};
    int hl[4] = {0, 8, 8, 8}, hf[4] = {0, 1, 1, 1};
    PGresult *r = NULL;
    int rc;
    if ((rc = run_plain(c, "SAVEPOINT batch", conn_err)) < 0)
        return rc;
    /* The fence: the head row moves only when the epoch is still ours and
     * the log ends right before this batch. */
    rc = run(c,
             "UPDATE rooms SET last_seq = $4::int8 WHERE id = $1 AND epoch = $2::int8 AND "
             "last_seq = $3::int8 - 1 "
             "RETURNING id",
             4, hp, hl, hf, &r, conn_err);
    if (rc < 0)
        return rc;
    int moved = PQntuples(r) == 1;
    PQclear(r);
    if (!moved) {
        /* Why: the epoch moved (fenced) or the seq did. */
        const char *p[1] = {b->room_id};
        if ((rc = run(c, "SELECT epoch, last_seq FROM rooms WHERE id = $1", 1, p, NULL, NULL, &r,
                      conn_err)) < 0)
            return rc;
        int64_t now_epoch = PQntuples(r) == 1 ? get_i64(r, 0, 0) : 0;
        int64_t last = PQntuples(r) == 1 ? get_i64(r, 0, 1) : 0;
        PQclear(r);
        if (now_epoch != epoch) {
            b->fenced = 1;
            b->result = att_fail(&b->error, ATT_ERR_INTERNAL,
                                 "store: room %s moved to another node (epoch %lld, ours %lld)",
                                 b->room_id, (long long)now_epoch, (long long)epoch);
        } else {
            b->result = att_fail(&b->error, ATT_ERR_INTERNAL,
                                 "store: batch starts at seq %lld but the log ends at %lld",
                                 (long long)b->first_seq, (long long)last);
        }
        return run_plain(c, "RELEASE batch", conn_err) < 0 ? -ATT_ERR_INTERNAL : 1;
    }
    int64_t head_seq;
    srv_chain_link prev;
    att_error why = {0};
    if ((rc = read_head(c, b->room_id, &head_seq, &prev, NULL, &why)) < 0) {
        *conn_err = why;
        return rc;
    }
    srv_seal_key key;
    srv_chain_key head_key;
    int brc = 0;
    if (head_seq + 1 != b->first_seq)
        brc = att_fail(&b->error, ATT_ERR_INTERNAL,
                       "store: room %s: its head is at %lld, not before %lld", b->room_id,
                       (long long)head_seq, (long long)b->first_seq);
    if (brc == 0)
        brc = srv_keyring_room_key(s->keys, b->room_id, &key, &b->error);
    if (brc == 0 && (brc = srv_chain_head_key(s->w_hasher, &key, &head_key, &b->error)) < 0)
        OPENSSL_cleanse(&key, sizeof key);
    int have_key = brc == 0;
    for (int i = 0; i < b->n && brc == 0 && rc == 0; i++) {
        int64_t seq = b->first_seq + i;
        if ((brc = srv_seal(&key, b->room_id, seq, b->type[i], b->payload[i], b->payload_len[i],
                            &s->seal_scratch, &b->error)) < 0 ||
            (brc = srv_chain_next(s->w_hasher, &prev, b->room_id, seq, b->type[i],
                                  s->seal_scratch.data, s->seal_scratch.len, &prev, &b->error)) < 0)
            break;
        char sb[8];
        put_i64(sb, seq);
        const char *p[6] = {b->room_id,
                            sb,
                            eb,
                            b->type[i],
                            (const char *)prev.bytes,
                            (const char *)s->seal_scratch.data};
        int l[6] = {0, 8, 8, 0, SRV_CHAIN_BYTES, (int)s->seal_scratch.len};
        int f[6] = {0, 1, 1, 0, 1, 1};
        rc = run(c,
                 "INSERT INTO events (room, seq, epoch, type, chain, payload) VALUES ($1, $2, "
                 "$3, $4, $5, $6)",
                 6, p, l, f, NULL, conn_err);
    }
    if (brc == 0 && rc == 0)
        rc = put_head(s->w_hasher, c, b->room_id, &head_key, b->first_seq + b->n - 1, &prev,
                      conn_err);
    if (have_key) {
        OPENSSL_cleanse(&key, sizeof key);
        srv_chain_wipe(&head_key, sizeof head_key);
    }
    if (rc < 0)
        return rc;
    if (brc < 0) {
        b->result = brc;
        if (run_plain(c, "ROLLBACK TO batch", conn_err) < 0)
            return -ATT_ERR_INTERNAL;
        return run_plain(c, "RELEASE batch", conn_err) < 0 ? -ATT_ERR_INTERNAL : 1;
    }
    return run_plain(c, "RELEASE batch", conn_err) < 0 ? -ATT_ERR_INTERNAL : 0;
}

/* After a connection lost with COMMIT sent: did each batch land? Reads back
 * (seq, epoch) on a fresh connection; all there with our epoch: stored;
 * none: not stored (failed, the caller's retry path applies; the head
 * check makes a resend harmless). */
static void resolve_unknown(srv_pg_store *s, srv_store_batch *group)
{
    att_error err = {0};
    srv_pg_close(s->writer);
    s->writer = NULL;
    char app[SRV_STORE_NODE_BYTES + 32];
    snprintf(app, sizeof app, "attune-writer-%s", s->node_id);
    int ok = srv_pg_connect(s->uri, app, &s->writer, &err) == 0 &&
             take_node_lock(s, s->writer, &err) == 0;
    for (srv_store_batch *b = group; b; b = b->next) {
        if (b->result != 0 || b->fenced)
            continue;
        if (!ok) {
            b->result = att_fail(&b->error, ATT_ERR_INTERNAL,
                                 "store: lost the database mid-commit and could not read back "
                                 "(outcome unknown): %s",
                                 err.message);
            continue;
        }
        int64_t epoch = epoch_of(s, b->room_id);
        char fb[8], lb[8];
        put_i64(fb, b->first_seq);
        put_i64(lb, b->first_seq + b->n - 1);
        const char *p[3] = {b->room_id, fb, lb};
        int l[3] = {0, 8, 8}, f[3] = {0, 1, 1};
        PGresult *r = NULL;
        if (run(s->writer,
                "SELECT seq, epoch FROM events WHERE room = $1 AND seq BETWEEN $2 AND $3", 3, p, l,
                f, &r, &b->error) < 0) {
            b->result = -ATT_ERR_INTERNAL;
            continue;
        }
        int rows = PQntuples(r), ours = 0;
        for (int i = 0; i < rows; i++)
            ours += get_i64(r, i, 1) == epoch;
        PQclear(r);
        if (rows == b->n && ours == b->n)
            b->result = 0; /* committed */
        else if (rows == 0)
            b->result = att_fail(&b->error, ATT_ERR_INTERNAL,
                                 "store: the transaction did not commit (connection lost)");
        else {
            b->fenced = 1;
            b->result = att_fail(&b->error, ATT_ERR_INTERNAL,
                                 "store: room %s: another node wrote these seqs", b->room_id);
        }
    }
}

static void commit_group(srv_pg_store *s, srv_store_batch *group, int inject)
{
    int64_t t0 = srv_mono_ns();
    int n_group = 0;
    for (srv_store_batch *b = group; b; b = b->next)
        n_group++;
    att_error cerr = {0};
    int rc = run_plain(s->writer, "BEGIN", &cerr);
    for (srv_store_batch *b = group; b; b = b->next) {
        b->result = 0;
        b->fenced = 0;
        b->group_size = n_group;
        if (rc < 0) {
            b->result = att_fail(&b->error, ATT_ERR_INTERNAL, "%s", cerr.message);
            continue;
        }
        int brc = append_batch(s, b, &cerr);
        if (brc < 0) {
            rc = brc;
            b->result = att_fail(&b->error, ATT_ERR_INTERNAL, "%s", cerr.message);
        }
    }
    if (rc == 0) {
        if (inject) {
            att_error ignored;
            run_plain(s->writer, "ROLLBACK", &ignored);
            for (srv_store_batch *b = group; b; b = b->next)
                if (b->result == 0)
                    b->result =
                        att_fail(&b->error, ATT_ERR_INTERNAL, "store: injected commit failure");
        } else if (run_plain(s->writer, "COMMIT", &cerr) < 0) {
            if (PQstatus(srv_pg_conn(s->writer)) != CONNECTION_OK)
                resolve_unknown(s, group);
            else
                for (srv_store_batch *b = group; b; b = b->next)
                    if (b->result == 0)
                        b->result = att_fail(&b->error, ATT_ERR_INTERNAL, "%s", cerr.message);
        }
    } else {
        att_error ignored;
        if (PQstatus(srv_pg_conn(s->writer)) == CONNECTION_OK)
            run_plain(s->writer, "ROLLBACK", &ignored);
        else if (srv_pg_exec(s->writer, "SELECT 1", 0, NULL, NULL, NULL, NULL, &ignored) == 0)
            (void)take_node_lock(s, s->writer, &ignored); /* reconnected: our lock again */
    }
    int64_t t1 = srv_mono_ns();
    for (srv_store_batch *b = group; b; b = b->next) {
        b->committed_ns = t1;
        b->commit_ns = t1 - t0;
    }
}

/* Renews the node lease and notes the rooms others want, between groups. */
static void housekeeping(srv_pg_store *s)
{
    att_error err = {0};
    if (renew_lease(s, s->writer, &err) < 0) {
        srv_log("warn", "node_lease_not_renewed", "{s:s}", "error", err.message);
        return;
    }
    const char *p[1] = {s->node_id};
    PGresult *r = NULL;
    if (run(s->writer,
            "SELECT id FROM rooms WHERE owner = $1 AND wanted_by IS NOT NULL AND wanted_by <> $1",
            1, p, NULL, NULL, &r, &err) < 0)
        return;
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
    PQclear(r);
}

static void *store_thread(void *arg)
{
    srv_pg_store *s = arg;
    int64_t renew_every = (int64_t)s->lease_ms * 1000000 / 3;
    int64_t next_renew = srv_mono_ns() + renew_every;
    pthread_mutex_lock(&s->lock);
    for (;;) {
        while (!s->queue_head && !s->stopping && srv_mono_ns() < next_renew) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 100 * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&s->wake, &s->lock, &ts);
        }
        if (srv_mono_ns() >= next_renew) {
            pthread_mutex_unlock(&s->lock);
            housekeeping(s);
            next_renew = srv_mono_ns() + renew_every;
            pthread_mutex_lock(&s->lock);
            continue;
        }
        if (!s->queue_head && s->stopping)
            break;
        int64_t wait_ns = s->queue_head->queued_ns + s->window_ns - srv_mono_ns();
        if (wait_ns > 0 && !s->stopping) {
            pthread_mutex_unlock(&s->lock);
            struct timespec ts = {0, (long)wait_ns};
            nanosleep(&ts, NULL);
            pthread_mutex_lock(&s->lock);
        }
        srv_store_batch *group = s->queue_head, *tail = s->queue_tail;
        s->queue_head = s->queue_tail = NULL;
        int inject = 0;
        if (s->fail_nth > 0) {
            int n = 0;
            for (srv_store_batch *b = group; b; b = b->next)
                n++;
            if (s->fail_nth <= n) {
                inject = 1;
                s->fail_nth = 0;
            } else {
                s->fail_nth -= n;
            }
        }
        pthread_mutex_unlock(&s->lock);
        commit_group(s, group, inject);
        pthread_mutex_lock(&s->lock);
        if (s->done_tail)
            s->done_tail->next = group;
        else
            s->done_head = group;
        s->done_tail = tail;
        pthread_mutex_unlock(&s->lock);
        if (s->notify)
            s->notify(s->arg);
        pthread_mutex_lock(&s->lock);
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

int srv_pg_store_start(srv_pg_store *s, int window_us, srv_store_notify_fn notify,
                       srv_store_discard_fn discard, void *arg, att_error *err)
{
    s->window_ns = (int64_t)(window_us > 0 ? window_us : 0) * 1000;
    s->notify = notify;
    s->discard = discard;
    s->arg = arg;
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
        pthread_cond_signal(&s->wake);
        pthread_mutex_unlock(&s->lock);
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
    srv_pg_close(s->writer);
    srv_pg_close(s->reader);
    srv_chain_hasher_free(s->r_hasher);
    srv_chain_hasher_free(s->w_hasher);
    if (s->open_scratch.data)
        OPENSSL_cleanse(s->open_scratch.data, s->open_scratch.cap);
    srv_seal_buf_free(&s->open_scratch);
    srv_seal_buf_free(&s->seal_scratch);
    free(s->epochs);
    free(s->wanted);
    free(s->uri);
    pthread_cond_destroy(&s->wake);
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
    pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->lock);
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
