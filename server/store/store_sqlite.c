/* store_sqlite.c - the event log in SQLite (see store.h): one node's store,
 * behind store.c's dispatch as the "sqlite" srv_store_ops table
 * (store_backend.h); srv_store_open makes it. Its leases are trivial: a
 * room is always this node's (epoch 1), nothing is ever fenced.
 *
 * Payloads are sealed (AES-256-GCM, seal.h) under their room's own key
 * (keyring.h) on their way in and opened on their way out, so the database
 * file never holds what participants wrote in the clear, nor a key that
 * opens it; callers see plaintext JSON only. The store thread and the walks
 * take each room's key from the keyring's cache (no SQL per batch).
 *
 * Tamper evidence (store.h, chain.h): each append reads the room's head
 * (one primary-key lookup, in place of a max(seq)), links every event it
 * stores to the one before (events.chain) and moves the head, MAC'd under
 * the room's head key, in the same savepoint; walks check the links as
 * they read and the head when they reach it.
 *
 * Three connections: `writer`, used only by the store thread for appends;
 * `reader`, used by the caller's thread for reads, room creation and
 * settings; and `ckpt`, used only by the checkpoint thread. WAL lets reads
 * run while the store thread commits.
 *
 * Checkpoints (copying the WAL back into the database file, then fsyncing
 * it) are SQLite's slow part: with the default auto-checkpoint, the commit
 * that crosses 1,000 WAL pages pays for writing them all and an fsync of the
 * database, 5-9 ms here, and every batch queued behind it waits too. So no
 * connection auto-checkpoints; the checkpoint thread copies the WAL while
 * the store thread goes on committing (a PASSIVE checkpoint does not block
 * the writer), then holds the writer for one short second pass that copies
 * the few frames committed meanwhile, so the WAL is wholly copied and the
 * writer's next transaction starts it again from the beginning instead of
 * letting it grow. */
#include "store_backend.h"
#include "clock.h"
#include "schema.h"
#include "keyring.h"
#include "chain.h"
#include "log.h"
#include "seal.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

/* The WAL size (pages) at which the checkpoint thread starts a pass: big
 * enough that a room's page changed many times between checkpoints is copied
 * once, small enough that the WAL stays a few MiB. */
#define CKPT_WAL_PAGES 4000
/* The held pass starts once at most this many pages are left to copy (or
 * after CKPT_MAX_PASSES unheld ones), so it holds the writer ~1 ms. */
#define CKPT_HELD_PAGES 48
#define CKPT_MAX_PASSES 4
#define CKPT_NICE 10
#define WRITER_CACHE_KIB 8192 /* the writer's page cache: the busy rooms' pages */
#define READER_CACHE_KIB 2048
/* The first event of every room (its type is the protocol's wire name). */
#define ROOM_CREATED "room_created"
/* A room's events from ?2 through ?3, at most ?4 (both readers). A walk
 * after seq N reads from N itself: that row's stored link is where the
 * chain check starts (chain.h). */
#define READ_EVENTS_SQL                                                                            \
    "SELECT seq, type, payload, chain FROM events WHERE room = ?1 AND seq >= ?2 AND seq <= ?3 "    \
    "ORDER BY seq LIMIT ?4"
/* A room's authenticated head (one primary-key lookup). */
#define READ_HEAD_SQL "SELECT seq, chain, mac FROM room_heads WHERE room = ?1"
#define PUT_HEAD_SQL                                                                               \
    "INSERT INTO room_heads (room, seq, chain, mac) VALUES (?1, ?2, ?3, ?4) "                      \
    "ON CONFLICT (room) DO UPDATE SET seq = excluded.seq, chain = excluded.chain, "                \
    "mac = excluded.mac"

typedef struct sqlite_store sqlite_store;

struct sqlite_store {
    sqlite3 *reader;
    sqlite3 *writer;
    sqlite3 *ckpt;
    sqlite3_stmt *w_head;     /* the room's head: its last seq and link */
    sqlite3_stmt *w_put_head; /* the head after a batch */
    sqlite3_stmt *w_insert;
    /* Transaction control, prepared once instead of parsed per group. */
    sqlite3_stmt *w_begin, *w_commit, *w_rollback, *w_savepoint, *w_release, *w_rollback_to;
    sqlite3_stmt *r_read;
    sqlite3_stmt *r_last_seq;
    sqlite3_stmt *r_head;
    srv_chain_hasher *w_hasher; /* store thread only */
    srv_chain_hasher *r_hasher; /* reader side (the caller's thread) */
    srv_keyring *keys;          /* borrowed: the rooms' data keys */
    srv_seal_buf seal_scratch;  /* store thread only */
    srv_seal_buf open_scratch;  /* reader side (the caller's thread) */

    pthread_t thread;
    int started;
    pthread_t ckpt_thread;
    int ckpt_started;
    int64_t window_ns; /* group commit window */
    srv_store_notify_fn notify;
    srv_store_discard_fn discard;
    void *arg;

    pthread_mutex_t lock; /* guards everything below */
    pthread_cond_t wake;
    pthread_cond_t ckpt_wake; /* the checkpoint thread waits for WAL growth */
    pthread_cond_t hold_cv;   /* the writer hold handshake, both ways */
    int stopping;
    int ckpt_stopping;
    int wal_pages;        /* WAL size after the last commit (the wal hook) */
    int ckpt_active;      /* a pass is running or queued */
    int ckpt_tried_at;    /* wal_pages when the last attempt ended; 0 after a restart */
    int ckpt_hold;        /* the checkpoint thread wants the writer quiet */
    int writer_busy;      /* the store thread is inside a transaction */
    uint64_t checkpoints; /* passes that left the WAL wholly copied */
    int db_fd;            /* the database file, for the checkpoint thread's fdatasync */
    int idle;             /* the store thread waits on `wake` (appends signal only then) */
    srv_store_batch *queue_head, *queue_tail;
    srv_store_batch *done_head, *done_tail;
    int fail_nth; /* testing: 0 = off */
};

static int db_fail(att_error *err, sqlite3 *db, const char *what)
{
    return att_fail(err, ATT_ERR_INTERNAL, "store: %s: %s", what, sqlite3_errmsg(db));
}

static int exec_sql(sqlite3 *db, const char *sql, att_error *err)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        att_fail(err, ATT_ERR_INTERNAL, "store: %s", msg ? msg : "exec failed");
        sqlite3_free(msg);
        return -ATT_ERR_INTERNAL;
    }
    return 0;
}

/* An event's type as its payload says ("type" of the JSON object), into
 * out; 0, or -1 when the payload is not an event object with a type. For
 * rows whose type the seal does not authenticate (legacy plaintext) and for
 * the migration that fills the column. */
static int type_from_payload(const char *payload, size_t len, char out[SRV_SEAL_TYPE_MAX + 1])
{
    json_t *obj = json_loadb(payload, len, 0, NULL);
    const char *t = json_string_value(json_object_get(obj, "type"));
    int ok = t && t[0] && strlen(t) <= SRV_SEAL_TYPE_MAX;
    if (ok)
        memcpy(out, t, strlen(t) + 1);
    json_decref(obj);
    return ok ? 0 : -1;
}

/* Rows a migration pass rewrites at once (their payloads are held in
 * memory while the pass's SELECT is reset). */
#define FILL_CHUNK 128

/* What the store's migration steps share (schema.h's arg): the keyring
 * that holds the rooms' keys, the data directory (its data.key, the one
 * key of the formats before per-room keys, loaded when a row needs it),
 * and what the reseal step did, which srv_store_open reports and finishes
 * (deleting data.key) once the migration's transaction has committed. */
typedef struct {
    srv_keyring *keys;
    const char *dir;
    srv_seal_key legacy;
    int legacy_state; /* 0: not looked for, 1: loaded, -1: there is none */
    int resealed_now; /* the reseal step ran in this migration */
    int64_t rooms, events, unreadable;
} store_migration;

/* The data key of the older formats, loaded on first use; NULL when the
 * data directory has none (err not set then), -1 on a read failure. */
static int legacy_key(store_migration *m, const srv_seal_key **out, att_error *err)
{
    if (m->legacy_state == 0) {
        int rc = srv_legacy_key_load(m->dir, &m->legacy, err);
        if (rc < 0 && rc != -ATT_ERR_NOT_FOUND)
            return rc;
        m->legacy_state = rc == 0 ? 1 : -1;
    }
    *out = m->legacy_state == 1 ? &m->legacy : NULL;
    return 0;
}

typedef struct {
    char room[SRV_STORE_ID_BYTES + 1];
    int64_t seq;
    char type[SRV_SEAL_TYPE_MAX + 1];
    srv_seal_buf resealed; /* empty: the row stays as it is */
} fill_row;

/* Store migration step 1 (1 -> 2): the type column of the rows written
 * before it, from each payload (opened with the data key; legacy plaintext
 * as itself). A row that does not open or name its type keeps NULL. Until
 * issue 12 this step also resealed each row as version 0x02; step 2 now
 * reseals every row under its room's key in the same transaction, so this
 * one only fills the column. */
static int fill_event_types(sqlite3 *db, void *arg, att_error *err)
{
    store_migration *m = arg;
    sqlite3_stmt *sel = NULL, *upd = NULL;
    fill_row *rows = calloc(FILL_CHUNK, sizeof *rows);
    srv_seal_buf opened = {0};
    const srv_seal_key *key = NULL;
    int rc = 0;
    if (!rows)
        return att_fail(err, ATT_ERR_INTERNAL, "store: out of memory");
    if (sqlite3_prepare_v2(db,
                           "SELECT room, seq, payload FROM events WHERE type IS NULL AND "
                           "(room, seq) > (?1, ?2) ORDER BY room, seq LIMIT ?3",
                           -1, &sel, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, "UPDATE events SET type = ?3 WHERE room = ?1 AND seq = ?2", -1, &upd,
                           NULL) != SQLITE_OK) {
        rc = db_fail(err, db, "prepare the type migration");
        goto out;
    }
    char last_room[SRV_STORE_ID_BYTES + 1] = "";
    int64_t last_seq = 0;
    for (;;) {
        int n = 0, step = SQLITE_DONE;
        sqlite3_bind_text(sel, 1, last_room, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(sel, 2, last_seq);
        sqlite3_bind_int(sel, 3, FILL_CHUNK);
        while (rc == 0 && (step = sqlite3_step(sel)) == SQLITE_ROW) {
            fill_row *row = &rows[n++];
            const char *room = (const char *)sqlite3_column_text(sel, 0);
            const unsigned char *sealed = sqlite3_column_blob(sel, 2);
            size_t len = (size_t)sqlite3_column_bytes(sel, 2);
            snprintf(row->room, sizeof row->room, "%s", room ? room : "");
            row->seq = sqlite3_column_int64(sel, 1);
            row->type[0] = '\0';
            snprintf(last_room, sizeof last_room, "%s", row->room);
            last_seq = row->seq;
            if (len > 0 && sealed[0] != '{' && (rc = legacy_key(m, &key, err)) < 0)
                break;
            att_error ignored = {0};
            if (srv_unseal_legacy(key, row->room, row->seq, NULL,
                                  sealed ? sealed : (const void *)"", len, &opened, NULL,
                                  &ignored) < 0 ||
                type_from_payload((const char *)opened.data, opened.len, row->type) < 0)
                row->type[0] = '\0'; /* left NULL */
        }
        if (rc == 0 && step != SQLITE_DONE && step != SQLITE_ROW)
            rc = db_fail(err, db, "read events to migrate");
        sqlite3_reset(sel);
        for (int i = 0; rc == 0 && i < n; i++) {
            if (!rows[i].type[0])
                continue;
            sqlite3_bind_text(upd, 1, rows[i].room, -1, SQLITE_STATIC);
            sqlite3_bind_int64(upd, 2, rows[i].seq);
            sqlite3_bind_text(upd, 3, rows[i].type, -1, SQLITE_STATIC);
            if (sqlite3_step(upd) != SQLITE_DONE)
                rc = db_fail(err, db, "migrate an event's type");
            sqlite3_reset(upd);
        }
        if (rc < 0 || n < FILL_CHUNK)
            break;
    }
out:
    sqlite3_finalize(sel);
    sqlite3_finalize(upd);
    free(rows);
    if (opened.data)
        OPENSSL_cleanse(opened.data, opened.cap);
    srv_seal_buf_free(&opened);
    return rc;
}

/* Reseals one chunk of a room's rows (after seq *after, at most
 * FILL_CHUNK) under the room's key; *n_out: rows read. */
static int reseal_chunk(sqlite3 *db, sqlite3_stmt *sel, sqlite3_stmt *upd, store_migration *m,
                        const char *room, const srv_seal_key *room_key, int64_t *after,
                        fill_row *rows, srv_seal_buf *opened, int *n_out, att_error *err)
{
    int n = 0, rc = 0, step;
    sqlite3_bind_text(sel, 1, room, -1, SQLITE_STATIC);
    sqlite3_bind_int64(sel, 2, *after);
    sqlite3_bind_int(sel, 3, FILL_CHUNK);
    while (rc == 0 && (step = sqlite3_step(sel)) == SQLITE_ROW) {
        fill_row *row = &rows[n++];
        row->seq = *after = sqlite3_column_int64(sel, 0);
        row->resealed.len = 0;
        const char *column_type = (const char *)sqlite3_column_text(sel, 1);
        const unsigned char *sealed = sqlite3_column_blob(sel, 2);
        size_t len = (size_t)sqlite3_column_bytes(sel, 2);
        const srv_seal_key *data_key = NULL;
        if (len > 0 && sealed[0] != '{' && (rc = legacy_key(m, &data_key, err)) < 0)
            break;
        int type_checked = 0;
        att_error why = {0};
        int opened_rc =
            srv_unseal_legacy(data_key, room, row->seq, column_type,
                              sealed ? sealed : (const void *)"", len, opened, &type_checked, &why);
        if (opened_rc == -ATT_ERR_NOT_FOUND) {
            rc = att_fail(err, ATT_ERR_INTERNAL,
                          "store: room %s's events are sealed under %s/data.key, which is "
                          "missing; put it back (it is in any backup of the data directory "
                          "from before this version) and start again: without it they cannot "
                          "be read",
                          room, m->dir);
            break;
        }
        /* A type the old seal did not vouch for is the payload's, as reads
         * believed it; a row that does not open or name its type is left as
         * it was (reads refuse it, as they failed on it before). */
        int typed = 0;
        if (opened_rc == 0 && type_checked)
            typed = snprintf(row->type, sizeof row->type, "%s", column_type) > 0;
        else if (opened_rc == 0)
            typed = type_from_payload((const char *)opened->data, opened->len, row->type) == 0;
        if (!typed) {
            m->unreadable++;
            continue;
        }
        rc = srv_seal(room_key, room, row->seq, row->type, opened->data, opened->len,
                      &row->resealed, err);
    }
    if (rc == 0 && step != SQLITE_DONE && step != SQLITE_ROW)
        rc = db_fail(err, db, "read events to reseal");
    sqlite3_reset(sel);
    for (int i = 0; rc == 0 && i < n; i++) {
        if (!rows[i].resealed.len)
            continue;
        sqlite3_bind_text(upd, 1, room, -1, SQLITE_STATIC);
        sqlite3_bind_int64(upd, 2, rows[i].seq);
        sqlite3_bind_text(upd, 3, rows[i].type, -1, SQLITE_STATIC);
        sqlite3_bind_blob(upd, 4, rows[i].resealed.data, (int)rows[i].resealed.len, SQLITE_STATIC);
        if (sqlite3_step(upd) != SQLITE_DONE)
            rc = db_fail(err, db, "reseal an event");
        sqlite3_reset(upd);
        m->events++;
    }
    *n_out = n;
    return rc;
}

/* Every room id the database knows, from its rooms table and its events
 * (a room with events but no row is resealed too), in id order; *out is
 * malloc'd, the caller frees it. */
static int list_all_rooms(sqlite3 *db, char (**out)[SRV_STORE_ID_BYTES + 1], size_t *n_out,
                          att_error *err)
{
    sqlite3_stmt *st = NULL;
    char(*ids)[SRV_STORE_ID_BYTES + 1] = NULL;
    size_t n = 0, cap = 0;
    int rc = 0, step;
    *out = NULL;
    *n_out = 0;
    if (sqlite3_prepare_v2(db, "SELECT id FROM rooms UNION SELECT DISTINCT room FROM events", -1,
                           &st, NULL) != SQLITE_OK)
        return db_fail(err, db, "list rooms to reseal");
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        const char *id = (const char *)sqlite3_column_text(st, 0);
        if (n == cap) {
            size_t grown = cap ? 2 * cap : 64;
            void *p = realloc(ids, grown * sizeof *ids);
            if (!p) {
                rc = att_fail(err, ATT_ERR_INTERNAL, "store: out of memory");
                break;
            }
            ids = p;
            cap = grown;
        }
        if (!id || strlen(id) > SRV_STORE_ID_BYTES) {
            rc = att_fail(err, ATT_ERR_INTERNAL, "store: a stored room id is not valid");
            break;
        }
        snprintf(ids[n++], sizeof ids[0], "%s", id);
    }
    if (rc == 0 && step != SQLITE_DONE)
        rc = db_fail(err, db, "list rooms to reseal");
    sqlite3_finalize(st);
    if (rc < 0) {
        free(ids);
        return rc;
    }
    *out = ids;
    *n_out = n;
    return 0;
}

/* Store migration step 2 (2 -> 3, issue 12): every room gets its own data
 * key in the keyring, and every event (legacy plaintext, version 0x01 and
 * 0x02 under DATA/data.key) is resealed as version 0x03 (padded) under its
 * room's key, in the migration's transaction. The keys go to keys.db (its
 * own database) first, all in one transaction there that is durable
 * before a row is sealed under them: a crash before this transaction
 * commits leaves the events as they were and keys that the next run finds
 * and reuses (it makes only the missing ones). srv_store_open deletes
 * data.key after the commit. */
static int reseal_under_room_keys(sqlite3 *db, void *arg, att_error *err)
{
    store_migration *m = arg;
    sqlite3_stmt *sel = NULL, *upd = NULL;
    fill_row *rows = calloc(FILL_CHUNK, sizeof *rows);
    char(*rooms)[SRV_STORE_ID_BYTES + 1] = NULL;
    const char **names = NULL;
    size_t n_rooms = 0;
    srv_seal_buf opened = {0};
    srv_seal_key room_key;
    int rc = 0;
    m->resealed_now = 1;
    if (!rows)
        return att_fail(err, ATT_ERR_INTERNAL, "store: out of memory");
    if (!m->keys) {
        rc = att_fail(err, ATT_ERR_INTERNAL, "store: no keyring to migrate with");
        goto out;
    }
    if ((rc = list_all_rooms(db, &rooms, &n_rooms, err)) < 0)
        goto out;
    if (!(names = calloc(n_rooms ? n_rooms : 1, sizeof *names))) {
        rc = att_fail(err, ATT_ERR_INTERNAL, "store: out of memory");
        goto out;
    }
    for (size_t i = 0; i < n_rooms; i++)
        names[i] = rooms[i];
    if (n_rooms && (rc = srv_keyring_ensure_room_keys(m->keys, names, n_rooms, NULL, err)) < 0)
        goto out;
    if (sqlite3_prepare_v2(db,
                           "SELECT seq, type, payload FROM events WHERE room = ?1 AND seq > ?2 "
                           "ORDER BY seq LIMIT ?3",
                           -1, &sel, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db,
                           "UPDATE events SET type = ?3, payload = ?4 WHERE room = ?1 AND seq = ?2",
                           -1, &upd, NULL) != SQLITE_OK) {
        rc = db_fail(err, db, "prepare the reseal migration");
        goto out;
    }
    for (size_t i = 0; rc == 0 && i < n_rooms; i++) {
        if ((rc = srv_keyring_room_key(m->keys, rooms[i], &room_key, err)) < 0)
            break;
        m->rooms++;
        int64_t after = 0;
        int n = FILL_CHUNK;
        while (rc == 0 && n == FILL_CHUNK)
            rc = reseal_chunk(db, sel, upd, m, rooms[i], &room_key, &after, rows, &opened, &n, err);
        OPENSSL_cleanse(&room_key, sizeof room_key);
    }
out:
    sqlite3_finalize(sel);
    sqlite3_finalize(upd);
    for (int i = 0; i < FILL_CHUNK && rows; i++)
        srv_seal_buf_free(&rows[i].resealed);
    free(rows);
    free(names);
    free(rooms);
    if (opened.data)
        OPENSSL_cleanse(opened.data, opened.cap);
    srv_seal_buf_free(&opened);
    return rc;
}

/* Reads the room's head with st (READ_HEAD_SQL): its seq and link, and
 * its MAC when mac is not NULL. A room without a head ends at 0 with the
 * zero link (a room yet to be created). 0, or -1 when SQLite fails or the
 * row is malformed. */
static int read_head(sqlite3_stmt *st, const char *room, int64_t *seq, srv_chain_link *link,
                     srv_chain_link *mac)
{
    sqlite3_bind_text(st, 1, room, -1, SQLITE_STATIC);
    int step = sqlite3_step(st), rc = 0;
    memset(link, 0, sizeof *link);
    if (mac)
        memset(mac, 0, sizeof *mac);
    *seq = 0;
    if (step == SQLITE_ROW) {
        *seq = sqlite3_column_int64(st, 0);
        const void *c = sqlite3_column_blob(st, 1);
        const void *m = sqlite3_column_blob(st, 2);
        if (!c || sqlite3_column_bytes(st, 1) != SRV_CHAIN_BYTES || !m ||
            sqlite3_column_bytes(st, 2) != SRV_CHAIN_BYTES)
            rc = -1;
        else {
            memcpy(link->bytes, c, SRV_CHAIN_BYTES);
            if (mac)
                memcpy(mac->bytes, m, SRV_CHAIN_BYTES);
        }
    } else if (step != SQLITE_DONE) {
        rc = -1;
    }
    sqlite3_reset(st);
    return rc;
}

/* The room's head: (seq, link) MAC'd under the room's head key. */
static int put_head(srv_chain_hasher *h, sqlite3 *db, sqlite3_stmt *st, const char *room,
                    const srv_chain_key *head_key, int64_t seq, const srv_chain_link *link,
                    att_error *err)
{
    srv_chain_link mac;
    int rc = srv_chain_head_mac(h, head_key, room, seq, link, &mac, err);
    if (rc < 0)
        return rc;
    sqlite3_bind_text(st, 1, room, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, seq);
    sqlite3_bind_blob(st, 3, link->bytes, SRV_CHAIN_BYTES, SQLITE_STATIC);
    sqlite3_bind_blob(st, 4, mac.bytes, SRV_CHAIN_BYTES, SQLITE_STATIC);
    rc = sqlite3_step(st) == SQLITE_DONE ? 0 : db_fail(err, db, "write the room's head");
    sqlite3_reset(st);
    return rc;
}

/* The head key of a room from the keyring (wiped by the caller). */
static int room_head_key(srv_keyring *keys, srv_chain_hasher *h, const char *room,
                         srv_chain_key *out, att_error *err)
{
    srv_seal_key key;
    int rc = srv_keyring_room_key(keys, room, &key, err);
    if (rc == 0)
        rc = srv_chain_head_key(h, &key, out, err);
    srv_chain_wipe(&key, sizeof key);
    return rc;
}

/* Links one room's events in seq order (after the migration's reseal, so
 * over the stored 0x03 seals) and writes its head. Chunked like the other
 * steps: the links of a chunk are kept while its SELECT is reset. */
static int chain_room(sqlite3 *db, sqlite3_stmt *sel, sqlite3_stmt *upd, sqlite3_stmt *head,
                      srv_chain_hasher *h, srv_keyring *keys, const char *room, att_error *err)
{
    int64_t seqs[FILL_CHUNK];
    srv_chain_link links[FILL_CHUNK];
    srv_chain_link prev = {{0}};
    int64_t after = 0;
    int n = FILL_CHUNK, rc = 0;
    while (rc == 0 && n == FILL_CHUNK) {
        int step;
        n = 0;
        sqlite3_bind_text(sel, 1, room, -1, SQLITE_STATIC);
        sqlite3_bind_int64(sel, 2, after);
        sqlite3_bind_int(sel, 3, FILL_CHUNK);
        while (rc == 0 && (step = sqlite3_step(sel)) == SQLITE_ROW) {
            seqs[n] = after = sqlite3_column_int64(sel, 0);
            const char *type = (const char *)sqlite3_column_text(sel, 1);
            const void *sealed = sqlite3_column_blob(sel, 2);
            size_t len = (size_t)sqlite3_column_bytes(sel, 2);
            rc = srv_chain_next(h, &prev, room, seqs[n], type, sealed, len, &links[n], err);
            prev = links[n++];
        }
        if (rc == 0 && step != SQLITE_DONE)
            rc = db_fail(err, db, "read events to chain");
        sqlite3_reset(sel);
        for (int i = 0; rc == 0 && i < n; i++) {
            sqlite3_bind_blob(upd, 1, links[i].bytes, SRV_CHAIN_BYTES, SQLITE_STATIC);
            sqlite3_bind_text(upd, 2, room, -1, SQLITE_STATIC);
            sqlite3_bind_int64(upd, 3, seqs[i]);
            if (sqlite3_step(upd) != SQLITE_DONE)
                rc = db_fail(err, db, "store an event's link");
            sqlite3_reset(upd);
        }
    }
    if (rc < 0 || after == 0)
        return rc; /* a room without events has no head */
    srv_chain_key head_key;
    rc = room_head_key(keys, h, room, &head_key, err);
    if (rc == -ATT_ERR_NOT_FOUND)
        rc = att_fail(err, ATT_ERR_INTERNAL, "store: room %s has events but no key to chain them",
                      room);
    if (rc == 0)
        rc = put_head(h, db, head, room, &head_key, after, &prev, err);
    srv_chain_wipe(&head_key, sizeof head_key);
    return rc;
}

/* Store migration step 3 (3 -> 4, issue 12): every room's hash chain over
 * its stored events and its authenticated head, in the migration's
 * transaction. Rooms one at a time (an index seek each). */
static int fill_chains(sqlite3 *db, void *arg, att_error *err)
{
    store_migration *m = arg;
    sqlite3_stmt *next_room = NULL, *sel = NULL, *upd = NULL, *head = NULL;
    srv_chain_hasher *h = NULL;
    int rc = 0;
    if (!m->keys)
        return att_fail(err, ATT_ERR_INTERNAL, "store: no keyring to migrate with");
    if ((rc = srv_chain_hasher_new(&h, err)) < 0)
        return rc;
    if (sqlite3_prepare_v2(db, "SELECT min(room) FROM events WHERE room > ?1", -1, &next_room,
                           NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db,
                           "SELECT seq, type, payload FROM events WHERE room = ?1 AND seq > ?2 "
                           "ORDER BY seq LIMIT ?3",
                           -1, &sel, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, "UPDATE events SET chain = ?1 WHERE room = ?2 AND seq = ?3", -1,
                           &upd, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, PUT_HEAD_SQL, -1, &head, NULL) != SQLITE_OK) {
        rc = db_fail(err, db, "prepare the chain migration");
        goto out;
    }
    char room[SRV_STORE_ID_BYTES + 1] = "";
    for (;;) {
        sqlite3_bind_text(next_room, 1, room, -1, SQLITE_TRANSIENT);
        int step = sqlite3_step(next_room);
        const char *id =
            step == SQLITE_ROW ? (const char *)sqlite3_column_text(next_room, 0) : NULL;
        if (step == SQLITE_ROW && id && strlen(id) > SRV_STORE_ID_BYTES)
            rc = att_fail(err, ATT_ERR_INTERNAL, "store: a stored room id is not valid");
        else if (step != SQLITE_ROW)
            rc = db_fail(err, db, "list rooms to chain");
        if (rc == 0 && id)
            snprintf(room, sizeof room, "%s", id);
        sqlite3_reset(next_room);
        if (rc < 0 || !id)
            break;
        if ((rc = chain_room(db, sel, upd, head, h, m->keys, room, err)) < 0)
            break;
    }
out:
    sqlite3_finalize(next_room);
    sqlite3_finalize(sel);
    sqlite3_finalize(upd);
    sqlite3_finalize(head);
    srv_chain_hasher_free(h);
    return rc;
}

/* The store's migrations (schema.h): steps[i] takes version i to i + 1.
 * Never edit a step a release has run: append one. */
static const srv_schema_step schema_steps[] = {
    {"CREATE TABLE IF NOT EXISTS rooms ("
     "  id TEXT PRIMARY KEY,"
     "  exercise TEXT NOT NULL,"
     "  created_at INTEGER NOT NULL);"
     "CREATE TABLE IF NOT EXISTS events ("
     "  room TEXT NOT NULL,"
     "  seq INTEGER NOT NULL,"
     "  payload BLOB NOT NULL,"
     "  PRIMARY KEY (room, seq)) WITHOUT ROWID;"
     "CREATE TABLE IF NOT EXISTS settings ("
     "  key TEXT PRIMARY KEY,"
     "  value TEXT NOT NULL);",
     NULL},
    /* 1 -> 2 (issue 11): each event's type beside its payload, so walks
     * tell events apart without parsing them. */
    {"ALTER TABLE events ADD COLUMN type TEXT;", fill_event_types},
    /* 2 -> 3 (issue 12): every payload sealed (version 0x03, padded) under
     * its room's own key; no plaintext row survives it. */
    {NULL, reseal_under_room_keys},
    /* 3 -> 4 (issue 12): tamper evidence (chain.h): each event's link of
     * its room's hash chain, and each room's authenticated head. */
    {"ALTER TABLE events ADD COLUMN chain BLOB;"
     "CREATE TABLE IF NOT EXISTS room_heads ("
     "  room TEXT PRIMARY KEY,"
     "  seq INTEGER NOT NULL,"
     "  chain BLOB NOT NULL,"
     "  mac BLOB NOT NULL) WITHOUT ROWID;",
     fill_chains},
};

/* The room summaries cache (its own module): the HTTP.md summary of a room
 * that is not in memory, written when the server frees the room, valid while
 * last_seq is still the room's last stored seq. A cache: losing it costs a
 * fold, never an answer. Plain JSON: it holds no text a participant typed. */
static const char *const summary_steps[] = {
    "CREATE TABLE IF NOT EXISTS room_summaries ("
    "  room TEXT PRIMARY KEY,"
    "  last_seq INTEGER NOT NULL,"
    "  summary TEXT NOT NULL);",
};

static int open_conn(const char *path, int cache_kib, sqlite3 **out, att_error *err)
{
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(
        path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        att_fail(err, ATT_ERR_INTERNAL, "store: cannot open %s: %s", path,
                 db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
        sqlite3_close(db);
        return -ATT_ERR_INTERNAL;
    }
    sqlite3_busy_timeout(db, 10000);
    /* journal_size_limit: a WAL that a saturated burst grew past 64 MiB
     * is cut back when it starts again. */
    char pragmas[256];
    snprintf(pragmas, sizeof pragmas,
             "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;"
             "PRAGMA wal_autocheckpoint=0; PRAGMA cache_size=-%d;"
             "PRAGMA journal_size_limit=67108864;",
             cache_kib);
    if (exec_sql(db, pragmas, err) < 0) {
        sqlite3_close(db);
        return -ATT_ERR_INTERNAL;
    }
    *out = db;
    return 0;
}

static int prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st, att_error *err)
{
    if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL) != SQLITE_OK)
        return db_fail(err, db, "prepare");
    return 0;
}

/* Store thread, from inside each commit: SQLite reports the WAL's size. */
static int wal_grew(void *arg, sqlite3 *db, const char *name, int pages)
{
    (void)db;
    (void)name;
    sqlite_store *s = arg;
    pthread_mutex_lock(&s->lock);
    s->wal_pages = pages;
    /* A WAL smaller than at the last attempt has started again. One that
     * did not (a reader kept its old frames, or the attempt failed) gets the
     * next attempt a quarter threshold later, not at every commit. */
    if (pages < s->ckpt_tried_at)
        s->ckpt_tried_at = 0;
    int trigger = CKPT_WAL_PAGES;
    if (s->ckpt_tried_at + CKPT_WAL_PAGES / 4 > trigger)
        trigger = s->ckpt_tried_at + CKPT_WAL_PAGES / 4;
    if (pages >= trigger && !s->ckpt_active) {
        s->ckpt_active = 1;
        pthread_cond_signal(&s->ckpt_wake);
    }
    pthread_mutex_unlock(&s->lock);
    return SQLITE_OK;
}

/* After the migration committed: data.key, the one key of the older
 * formats, opens nothing any more (every row is sealed under its room's
 * key), so it goes; also when a crash came between the commit and its
 * deletion last time. */
static int destroy_legacy_key(const char *dir, const store_migration *m, att_error *err)
{
    char path[4096];
    if (snprintf(path, sizeof path, "%s/data.key", dir) >= (int)sizeof path)
        return att_fail(err, ATT_ERR_INTERNAL, "store: path too long");
    if (m->resealed_now && m->rooms > 0)
        srv_log("info", "store_resealed", "{s:I,s:I,s:I}", "rooms", (json_int_t)m->rooms, "events",
                (json_int_t)m->events, "unreadable_left", (json_int_t)m->unreadable);
    if (access(path, F_OK) != 0)
        return 0;
    if (srv_legacy_key_destroy(dir, err) < 0)
        return -ATT_ERR_INTERNAL;
    srv_log("info", "legacy_data_key_destroyed", "{s:s}", "path", path);
    return 0;
}

static void sq_close(void *impl);
static srv_store_batch *sq_take_completed(void *impl);

/* srv_store_open's work: the SQLite store itself (wrapped at the end of
 * this file). */
static int sq_open(const char *dir, srv_keyring *keys, sqlite_store **out, att_error *err)
{
    if (!keys)
        return att_fail(err, ATT_ERR_INTERNAL, "store: no keyring");
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return att_fail(err, ATT_ERR_INTERNAL, "store: cannot create %s: %s", dir, strerror(errno));
    char path[4096];
    if (snprintf(path, sizeof path, "%s/attune.db", dir) >= (int)sizeof path)
        return att_fail(err, ATT_ERR_INTERNAL, "store: path too long");
    sqlite_store *s = calloc(1, sizeof *s);
    if (!s)
        return att_fail(err, ATT_ERR_INTERNAL, "store: out of memory");
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->wake, NULL);
    pthread_cond_init(&s->ckpt_wake, NULL);
    pthread_cond_init(&s->hold_cv, NULL);
    s->db_fd = -1;
    s->keys = keys;
    store_migration migration = {.keys = keys, .dir = dir};
    int migrated = open_conn(path, READER_CACHE_KIB, &s->reader, err) == 0 &&
                   srv_schema_migrate_steps(s->reader, "store", schema_steps,
                                            (int)(sizeof schema_steps / sizeof schema_steps[0]),
                                            &migration, err) == 0;
    OPENSSL_cleanse(&migration.legacy, sizeof migration.legacy);
    if (!migrated || destroy_legacy_key(dir, &migration, err) < 0 ||
        srv_schema_migrate(s->reader, "room_summaries", summary_steps,
                           (int)(sizeof summary_steps / sizeof summary_steps[0]), err) < 0 ||
        open_conn(path, WRITER_CACHE_KIB, &s->writer, err) < 0 ||
        open_conn(path, 2048, &s->ckpt, err) < 0 ||
        prepare(s->writer, READ_HEAD_SQL, &s->w_head, err) < 0 ||
        prepare(s->writer, PUT_HEAD_SQL, &s->w_put_head, err) < 0 ||
        prepare(s->writer,
                "INSERT INTO events (room, seq, type, payload, chain) VALUES (?1, ?2, ?3, ?4, ?5)",
                &s->w_insert, err) < 0 ||
        prepare(s->writer, "BEGIN IMMEDIATE", &s->w_begin, err) < 0 ||
        prepare(s->writer, "COMMIT", &s->w_commit, err) < 0 ||
        prepare(s->writer, "ROLLBACK", &s->w_rollback, err) < 0 ||
        prepare(s->writer, "SAVEPOINT batch", &s->w_savepoint, err) < 0 ||
        prepare(s->writer, "RELEASE batch", &s->w_release, err) < 0 ||
        prepare(s->writer, "ROLLBACK TO batch", &s->w_rollback_to, err) < 0 ||
        prepare(s->reader, READ_EVENTS_SQL, &s->r_read, err) < 0 ||
        prepare(s->reader, "SELECT coalesce(max(seq), 0) FROM events WHERE room = ?1",
                &s->r_last_seq, err) < 0 ||
        prepare(s->reader, READ_HEAD_SQL, &s->r_head, err) < 0 ||
        srv_chain_hasher_new(&s->w_hasher, err) < 0 ||
        srv_chain_hasher_new(&s->r_hasher, err) < 0) {
        sq_close(s);
        return -ATT_ERR_INTERNAL;
    }
    if ((s->db_fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
        att_fail(err, ATT_ERR_INTERNAL, "store: cannot open %s: %s", path, strerror(errno));
        sq_close(s);
        return -ATT_ERR_INTERNAL;
    }
    sqlite3_wal_hook(s->writer, wal_grew, s);
    *out = s;
    return 0;
}

/* Runs one prepared statement that returns no rows. */
static int run_stmt(sqlite3 *db, sqlite3_stmt *st, const char *what, att_error *err)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return err ? db_fail(err, db, what) : -ATT_ERR_INTERNAL;
    return 0;
}

/* Store thread: commits one group of batches in one transaction. Each batch
 * runs inside a savepoint so that one bad batch (a seq gap) fails alone. */
static void commit_group(sqlite_store *s, srv_store_batch *group, int inject_failure)
{
    sqlite3 *db = s->writer;
    int64_t t0 = srv_mono_ns();
    int n_group = 0;
    for (srv_store_batch *b = group; b; b = b->next)
        n_group++;
    att_error txerr = {0};
    int tx_ok = run_stmt(db, s->w_begin, "begin", &txerr) == 0;
    for (srv_store_batch *b = group; b; b = b->next) {
        b->result = 0;
        b->fenced = 0; /* one node's store: no other writer can move a room */
        b->group_size = n_group;
        if (!tx_ok) {
            b->result = att_fail(&b->error, ATT_ERR_INTERNAL, "%s", txerr.message);
            continue;
        }
        if ((b->result = run_stmt(db, s->w_savepoint, "savepoint", &b->error)) < 0)
            continue;
        /* Where the log ends: the room's head (one primary-key lookup), whose
         * link the batch's first event chains to. */
        int64_t last = -1;
        srv_chain_link prev;
        if (read_head(s->w_head, b->room_id, &last, &prev, NULL) < 0) {
            b->result = db_fail(&b->error, db, "read the room's head");
        } else if (last + 1 != b->first_seq) {
            b->result = att_fail(&b->error, ATT_ERR_INTERNAL,
                                 "store: batch starts at seq %lld but the log ends at %lld",
                                 (long long)b->first_seq, (long long)last);
        } else {
            /* The room's key from the keyring's cache: a hash probe, no SQL.
             * A room whose key is gone (erased) stores nothing more. */
            srv_seal_key key;
            srv_chain_key head_key;
            b->result = srv_keyring_room_key(s->keys, b->room_id, &key, &b->error);
            if (b->result == 0)
                b->result = srv_chain_head_key(s->w_hasher, &key, &head_key, &b->error);
            for (int i = 0; i < b->n && b->result == 0; i++) {
                int64_t seq = b->first_seq + i;
                if ((b->result = srv_seal(&key, b->room_id, seq, b->type[i], b->payload[i],
                                          b->payload_len[i], &s->seal_scratch, &b->error)) < 0 ||
                    (b->result = srv_chain_next(s->w_hasher, &prev, b->room_id, seq, b->type[i],
                                                s->seal_scratch.data, s->seal_scratch.len, &prev,
                                                &b->error)) < 0)
                    break;
                sqlite3_bind_text(s->w_insert, 1, b->room_id, -1, SQLITE_STATIC);
                sqlite3_bind_int64(s->w_insert, 2, seq);
                sqlite3_bind_text(s->w_insert, 3, b->type[i], -1, SQLITE_STATIC);
                sqlite3_bind_blob(s->w_insert, 4, s->seal_scratch.data, (int)s->seal_scratch.len,
                                  SQLITE_STATIC);
                sqlite3_bind_blob(s->w_insert, 5, prev.bytes, SRV_CHAIN_BYTES, SQLITE_STATIC);
                if (sqlite3_step(s->w_insert) != SQLITE_DONE)
                    b->result = db_fail(&b->error, db, "insert");
                sqlite3_reset(s->w_insert);
            }
            /* The head moves with the events, in the same savepoint. */
            if (b->result == 0)
                b->result = put_head(s->w_hasher, db, s->w_put_head, b->room_id, &head_key,
                                     b->first_seq + b->n - 1, &prev, &b->error);
            OPENSSL_cleanse(&key, sizeof key);
            srv_chain_wipe(&head_key, sizeof head_key);
        }
        if (b->result < 0)
            run_stmt(db, s->w_rollback_to, "rollback to", NULL);
        run_stmt(db, s->w_release, "release", NULL);
    }
    if (tx_ok) {
        att_error cerr = {0};
        int ok;
        if (inject_failure) {
            ok = 0;
            att_fail(&cerr, ATT_ERR_INTERNAL, "store: injected commit failure");
        } else {
            ok = run_stmt(db, s->w_commit, "commit", &cerr) == 0;
        }
        if (!ok) {
            run_stmt(db, s->w_rollback, "rollback", NULL);
            for (srv_store_batch *b = group; b; b = b->next)
                if (b->result == 0)
                    b->result = att_fail(&b->error, ATT_ERR_INTERNAL, "%s", cerr.message);
        }
    }
    int64_t t1 = srv_mono_ns();
    for (srv_store_batch *b = group; b; b = b->next) {
        b->committed_ns = t1;
        b->commit_ns = t1 - t0;
    }
}

static void *store_thread(void *arg)
{
    sqlite_store *s = arg;
    (void)prctl(PR_SET_NAME, "attune-store"); /* for top -H and the benchmark */
    pthread_mutex_lock(&s->lock);
    for (;;) {
        s->idle = 1;
        while (!s->queue_head && !s->stopping)
            pthread_cond_wait(&s->wake, &s->lock);
        s->idle = 0;
        if (!s->queue_head && s->stopping)
            break;
        /* Group commit window: let batches gather until the oldest has
         * waited window_ns, so a steady trickle (one command a
         * second per person) shares transactions and fsyncs instead of
         * paying one each. Appends do not wake us meanwhile. */
        int64_t wait_ns = s->queue_head->queued_ns + s->window_ns - srv_mono_ns();
        if (wait_ns > 0 && !s->stopping) {
            pthread_mutex_unlock(&s->lock);
            struct timespec ts = {0, (long)wait_ns};
            nanosleep(&ts, NULL);
            pthread_mutex_lock(&s->lock);
        }
        /* The checkpoint thread's short second pass: wait for it. */
        while (s->ckpt_hold)
            pthread_cond_wait(&s->hold_cv, &s->lock);
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
        s->writer_busy = 1;
        pthread_mutex_unlock(&s->lock);

        commit_group(s, group, inject);

        pthread_mutex_lock(&s->lock);
        s->writer_busy = 0;
        if (s->ckpt_hold)
            pthread_cond_broadcast(&s->hold_cv);
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

/* Checkpoint thread: one pass over the WAL while the writer goes on, then a
 * second with the writer held between transactions. The second pass copies
 * only what was committed during the first, so the hold is short; after it
 * the WAL is wholly in the database and the writer's next transaction
 * starts the WAL again from its beginning. */
static void *ckpt_thread(void *arg)
{
    sqlite_store *s = arg;
    (void)prctl(PR_SET_NAME, "attune-ckpt");
    /* Its passes are bursts of CPU (thousands of page copies) on the core
     * the service and store threads share; at nice 0 a turn that arrives
     * during one waits for it (open-loop p99 5.2 -> 4.6 ms at nice 10).
     * Nice 10, not 19, so that it keeps up when the server is saturated.
     * Linux: a thread's own nice value, through its tid. Failing is
     * harmless (it just runs at the process's priority). */
    (void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), CKPT_NICE);
    pthread_mutex_lock(&s->lock);
    for (;;) {
        while (!s->ckpt_active && !s->ckpt_stopping)
            pthread_cond_wait(&s->ckpt_wake, &s->lock);
        if (s->ckpt_stopping)
            break;
        pthread_mutex_unlock(&s->lock);

        /* Unheld passes until few frames are left for the held one: each
         * copies what was committed during the one before. A pass that does
         * not reach the WAL's end leaves the database file unsynced (SQLite
         * syncs it only then), so sync it here, outside the hold. */
        int log = 0, copied = 0, rc = SQLITE_OK;
        for (int pass = 0; pass < CKPT_MAX_PASSES; pass++) {
            rc = sqlite3_wal_checkpoint_v2(s->ckpt, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &copied);
            if (rc != SQLITE_OK && rc != SQLITE_BUSY)
                break;
            if (s->db_fd >= 0 && fdatasync(s->db_fd) != 0) {
                rc = SQLITE_IOERR;
                break;
            }
            pthread_mutex_lock(&s->lock);
            int left = s->wal_pages - log;
            pthread_mutex_unlock(&s->lock);
            if (left <= CKPT_HELD_PAGES)
                break;
        }
        pthread_mutex_lock(&s->lock);
        s->ckpt_hold = 1;
        while (s->writer_busy)
            pthread_cond_wait(&s->hold_cv, &s->lock);
        pthread_mutex_unlock(&s->lock);
        if (rc == SQLITE_OK || rc == SQLITE_BUSY)
            rc = sqlite3_wal_checkpoint_v2(s->ckpt, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &copied);
        pthread_mutex_lock(&s->lock);
        s->ckpt_hold = 0;
        pthread_cond_broadcast(&s->hold_cv);
        if (rc == SQLITE_OK && log == copied)
            s->checkpoints++;
        else if (rc != SQLITE_OK && rc != SQLITE_BUSY)
            srv_log("error", "checkpoint_failed", "{s:s}", "error", sqlite3_errstr(rc));
        /* wal_grew starts the next attempt (see there). */
        s->ckpt_tried_at = s->wal_pages;
        s->ckpt_active = 0;
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

static int sq_start(void *impl, int window_us, srv_store_notify_fn notify,
                    srv_store_discard_fn discard, void *arg, att_error *err)
{
    sqlite_store *s = impl;
    s->window_ns = (int64_t)(window_us > 0 ? window_us : 0) * 1000;
    s->notify = notify;
    s->discard = discard;
    s->arg = arg;
    if (pthread_create(&s->thread, NULL, store_thread, s) != 0)
        return att_fail(err, ATT_ERR_INTERNAL, "store: cannot start thread");
    s->started = 1;
    if (pthread_create(&s->ckpt_thread, NULL, ckpt_thread, s) != 0)
        return att_fail(err, ATT_ERR_INTERNAL, "store: cannot start the checkpoint thread");
    s->ckpt_started = 1;
    return 0;
}

/* Sets a thread's stop flag under the lock, wakes it and joins it. */
static void stop_thread(sqlite_store *s, pthread_t thread, int *started, int *stop_flag,
                        pthread_cond_t *wake)
{
    if (!*started)
        return;
    pthread_mutex_lock(&s->lock);
    *stop_flag = 1;
    pthread_cond_signal(wake);
    pthread_mutex_unlock(&s->lock);
    pthread_join(thread, NULL);
    *started = 0;
}

static void sq_close(void *impl)
{
    sqlite_store *s = impl;
    if (!s)
        return;
    /* The checkpoint thread first: the store thread may be waiting on its
     * hold. */
    stop_thread(s, s->ckpt_thread, &s->ckpt_started, &s->ckpt_stopping, &s->ckpt_wake);
    stop_thread(s, s->thread, &s->started, &s->stopping, &s->wake);
    /* Batches appended but never committed cannot exist here (the thread
     * drains the queue before it exits); completed ones go back. */
    srv_store_batch *b = sq_take_completed(s);
    while (b) {
        srv_store_batch *next = b->next;
        if (s->discard)
            s->discard(b, s->arg);
        b = next;
    }
    sqlite3_stmt *stmts[] = {s->w_head,        s->w_put_head, s->w_insert,    s->w_begin,
                             s->w_commit,      s->w_rollback, s->w_savepoint, s->w_release,
                             s->w_rollback_to, s->r_read,     s->r_last_seq,  s->r_head};
    for (size_t i = 0; i < sizeof stmts / sizeof stmts[0]; i++)
        sqlite3_finalize(stmts[i]);
    srv_chain_hasher_free(s->w_hasher);
    srv_chain_hasher_free(s->r_hasher);
    if (s->db_fd >= 0)
        close(s->db_fd);
    sqlite3_close(s->ckpt);
    sqlite3_close(s->writer);
    sqlite3_close(s->reader);
    pthread_cond_destroy(&s->hold_cv);
    pthread_cond_destroy(&s->ckpt_wake);
    pthread_cond_destroy(&s->wake);
    pthread_mutex_destroy(&s->lock);
    /* the open scratch held what participants wrote */
    if (s->open_scratch.data)
        OPENSSL_cleanse(s->open_scratch.data, s->open_scratch.cap);
    srv_seal_buf_free(&s->seal_scratch);
    srv_seal_buf_free(&s->open_scratch);
    free(s);
}

static int sq_append(void *impl, srv_store_batch *b, att_error *err)
{
    sqlite_store *s = impl;
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
    if (s->idle)
        pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->lock);
    return 0;
}

static srv_store_batch *sq_take_completed(void *impl)
{
    sqlite_store *s = impl;
    pthread_mutex_lock(&s->lock);
    srv_store_batch *list = s->done_head;
    s->done_head = s->done_tail = NULL;
    pthread_mutex_unlock(&s->lock);
    return list;
}

static void sq_get_stats(void *impl, srv_store_stats *out)
{
    sqlite_store *s = impl;
    pthread_mutex_lock(&s->lock);
    out->checkpoints = s->checkpoints;
    out->wal_pages = s->wal_pages;
    pthread_mutex_unlock(&s->lock);
}

static void sq_fail_nth_batch(void *impl, int nth)
{
    sqlite_store *s = impl;
    pthread_mutex_lock(&s->lock);
    s->fail_nth = nth;
    pthread_mutex_unlock(&s->lock);
}

/* The new room's data key, made in keys.db (durable) while the store's
 * write lock is held and the room's row is inserted but not committed. A
 * key already there for a room that has no row is left over from a
 * creation that failed or crashed before its commit (every creator holds
 * the lock from its key to its commit): nothing was ever sealed under it
 * that was stored, so it is replaced. */
static int make_room_key(srv_keyring *keys, const char *room, srv_seal_key *out, att_error *err)
{
    int rc = srv_keyring_new_room_key(keys, room, out, err);
    if (rc != -ATT_ERR_BAD_MESSAGE)
        return rc;
    srv_log("warn", "room_key_replaced", "{s:s,s:s}", "room", room, "why",
            "a key left over from a creation that did not commit");
    if ((rc = srv_keyring_erase_room(keys, room, err)) < 0)
        return rc;
    return srv_keyring_new_room_key(keys, room, out, err);
}

static int sq_create_room(void *impl, const srv_store_room *room, const char *first_event,
                          size_t len, att_error *err)
{
    sqlite_store *s = impl;
    sqlite3 *db = s->reader;
    if (exec_sql(db, "BEGIN IMMEDIATE", err) < 0)
        return -ATT_ERR_INTERNAL;
    sqlite3_stmt *st = NULL;
    srv_seal_key key;
    int rc = 0, keyed = 0;
    if (sqlite3_prepare_v2(db, "INSERT INTO rooms (id, exercise, created_at) VALUES (?1, ?2, ?3)",
                           -1, &st, NULL) != SQLITE_OK) {
        rc = db_fail(err, db, "prepare");
        goto out;
    }
    sqlite3_bind_text(st, 1, room->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, room->exercise, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, room->created_at);
    int step = sqlite3_step(st);
    sqlite3_finalize(st);
    st = NULL;
    if (step == SQLITE_CONSTRAINT) {
        rc = att_fail(err, ATT_ERR_BAD_MESSAGE, "store: room %s exists", room->id);
        goto out;
    }
    if (step != SQLITE_DONE) {
        rc = db_fail(err, db, "insert room");
        goto out;
    }
    if ((rc = make_room_key(s->keys, room->id, &key, err)) < 0)
        goto out;
    keyed = 1;
    if (sqlite3_prepare_v2(db,
                           "INSERT INTO events (room, seq, type, payload, chain) "
                           "VALUES (?1, 1, ?2, ?3, ?4)",
                           -1, &st, NULL) != SQLITE_OK) {
        rc = db_fail(err, db, "prepare");
        goto out;
    }
    srv_seal_buf sealed = {0};
    /* The chain's first link (after 32 zero bytes) and the first head. */
    srv_chain_link first = {{0}};
    srv_chain_key head_key;
    if ((rc = srv_seal(&key, room->id, 1, ROOM_CREATED, first_event, len, &sealed, err)) < 0 ||
        (rc = srv_chain_next(s->r_hasher, &first, room->id, 1, ROOM_CREATED, sealed.data,
                             sealed.len, &first, err)) < 0 ||
        (rc = srv_chain_head_key(s->r_hasher, &key, &head_key, err)) < 0) {
        srv_seal_buf_free(&sealed);
        sqlite3_finalize(st);
        goto out;
    }
    sqlite3_bind_text(st, 1, room->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, ROOM_CREATED, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 3, sealed.data, (int)sealed.len, SQLITE_TRANSIENT);
    sqlite3_bind_blob(st, 4, first.bytes, SRV_CHAIN_BYTES, SQLITE_STATIC);
    srv_seal_buf_free(&sealed);
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = db_fail(err, db, "insert first event");
    sqlite3_finalize(st);
    st = NULL;
    if (rc == 0 && sqlite3_prepare_v2(db, PUT_HEAD_SQL, -1, &st, NULL) != SQLITE_OK)
        rc = db_fail(err, db, "prepare");
    if (rc == 0)
        rc = put_head(s->r_hasher, db, st, room->id, &head_key, 1, &first, err);
    sqlite3_finalize(st);
    srv_chain_wipe(&head_key, sizeof head_key);
out:
    if (rc == 0 && exec_sql(db, "COMMIT", err) < 0)
        rc = -ATT_ERR_INTERNAL;
    if (rc < 0)
        exec_sql(db, "ROLLBACK", NULL);
    /* A key for a room that was not stored is harmless (the next creation
     * of that id replaces it) but has no use: erase it. */
    att_error ignored = {0};
    if (rc < 0 && keyed && srv_keyring_erase_room(s->keys, room->id, &ignored) < 0)
        srv_log("warn", "room_key_not_erased", "{s:s,s:s}", "room", room->id, "error",
                ignored.message);
    OPENSSL_cleanse(&key, sizeof key);
    return rc;
}

static void room_from_row(sqlite3_stmt *st, srv_store_room *out)
{
    snprintf(out->id, sizeof out->id, "%s", (const char *)sqlite3_column_text(st, 0));
    snprintf(out->exercise, sizeof out->exercise, "%s", (const char *)sqlite3_column_text(st, 1));
    out->created_at = sqlite3_column_int64(st, 2);
}

static int sq_get_room(void *impl, const char *id, srv_store_room *out, att_error *err)
{
    sqlite_store *s = impl;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->reader, "SELECT id, exercise, created_at FROM rooms WHERE id = ?1",
                           -1, &st, NULL) != SQLITE_OK)
        return db_fail(err, s->reader, "prepare");
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    int step = sqlite3_step(st);
    int rc = 0;
    if (step == SQLITE_ROW)
        room_from_row(st, out);
    else if (step == SQLITE_DONE)
        rc = att_fail(err, ATT_ERR_NOT_FOUND, "store: no such room");
    else
        rc = db_fail(err, s->reader, "get room");
    sqlite3_finalize(st);
    return rc;
}

static int sq_list_rooms(void *impl, int (*fn)(const srv_store_room *room, void *arg), void *arg,
                         att_error *err)
{
    sqlite_store *s = impl;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->reader,
                           "SELECT id, exercise, created_at FROM rooms ORDER BY created_at, id", -1,
                           &st, NULL) != SQLITE_OK)
        return db_fail(err, s->reader, "prepare");
    int rc = 0, step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        srv_store_room room;
        room_from_row(st, &room);
        if ((rc = fn(&room, arg)) != 0)
            break;
    }
    if (rc == 0 && step != SQLITE_DONE)
        rc = db_fail(err, s->reader, "list rooms");
    sqlite3_finalize(st);
    return rc;
}

/* What a walk reads with: one connection's statements and buffers (the
 * store's reader, or a srv_store_reader of another thread). */
typedef struct {
    sqlite3 *db;
    sqlite3_stmt *read; /* READ_EVENTS_SQL */
    sqlite3_stmt *head; /* READ_HEAD_SQL */
    srv_chain_hasher *hasher;
    srv_keyring *keys;
    srv_seal_buf *scratch;
} walk_conn;

/* A walk's chain check: the head read before the events (so the events'
 * snapshot is as new as the head's or newer: a walk may see events a
 * commit added after the head was read, never miss the head's), the link
 * of the event before the next one, and the room's keys taken at the first
 * row (a walk of a room with no events needs none). */
typedef struct {
    const walk_conn *c;
    const char *room;
    int have_head;
    int64_t head_seq;
    srv_chain_link head_link, head_mac;
    srv_chain_link prev; /* the link of the event last read */
    int64_t last_seq;    /* the event last read (0: none; the anchor counts) */
    int have_key;
    srv_seal_key key;
} chain_check;

static int chain_fail(att_error *err, const chain_check *cc, int64_t seq, const char *what)
{
    return att_fail(err, ATT_ERR_INTERNAL, "store: room %s, event %lld: %s", cc->room,
                    (long long)seq, what);
}

static int check_take_key(chain_check *cc, att_error *err)
{
    if (cc->have_key)
        return 0;
    att_error why = {0};
    int rc = srv_keyring_room_key(cc->c->keys, cc->room, &cc->key, &why);
    if (rc == -ATT_ERR_NOT_FOUND)
        return att_fail(err, ATT_ERR_NOT_FOUND,
                        "store: room %s has events but no data key (erased, or DATA/keys.db "
                        "is not this data directory's): they cannot be read",
                        cc->room);
    if (rc < 0)
        return att_fail(err, -rc, "%s", why.message);
    cc->have_key = 1;
    return 0;
}

/* The event at the head's seq: its link must be the head's, and the head's
 * MAC must hold under the room's head key. */
static int check_head(chain_check *cc, int64_t seq, const srv_chain_link *link, att_error *err)
{
    if (!cc->have_head || seq != cc->head_seq)
        return 0;
    if (!srv_chain_same(link, &cc->head_link, sizeof *link))
        return chain_fail(err, cc, seq,
                          "the room's head names another link here (events were changed and "
                          "the chain recomputed)");
    srv_chain_key head_key;
    srv_chain_link mac;
    int rc = srv_chain_head_key(cc->c->hasher, &cc->key, &head_key, err);
    if (rc == 0)
        rc = srv_chain_head_mac(cc->c->hasher, &head_key, cc->room, seq, link, &mac, err);
    srv_chain_wipe(&head_key, sizeof head_key);
    if (rc < 0)
        return rc;
    if (!srv_chain_same(&mac, &cc->head_mac, sizeof mac))
        return chain_fail(err, cc, seq,
                          "the room's head does not authenticate (the head was edited, or the "
                          "key is not this room's)");
    return 0;
}

/* Runs c->read (READ_EVENTS_SQL) for the events of room_id in (after_seq,
 * upto_seq], at most limit (upto_seq < 0: no upper bound, limit <= 0: no
 * limit), checking each one's seq and link (store.h: tamper evidence),
 * opening it under the room's key into c->scratch and passing it to fn;
 * resets the statements after. */
static srv_walk walk_sealed_events(const walk_conn *c, const char *room_id, int64_t after_seq,
                                   int64_t upto_seq, int limit, srv_stored_event_fn fn, void *arg,
                                   att_error *err)
{
    chain_check cc = {.c = c, .room = room_id};
    int64_t head_seq = 0;
    if (read_head(c->head, room_id, &head_seq, &cc.head_link, &cc.head_mac) < 0) {
        db_fail(err, c->db, "read the room's head");
        return SRV_WALK_FAILED;
    }
    cc.head_seq = head_seq;
    /* read_head's zero link and seq 0 mean no head row */
    cc.have_head = head_seq > 0;
    /* after_seq > 0: the row at after_seq itself comes first (the anchor:
     * its stored link is where checking starts), so one more row. */
    int anchored = after_seq <= 0;
    sqlite3_stmt *st = c->read;
    sqlite3_bind_text(st, 1, room_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, anchored ? 1 : after_seq);
    sqlite3_bind_int64(st, 3, upto_seq < 0 ? INT64_MAX : upto_seq);
    sqlite3_bind_int64(st, 4, limit <= 0 ? -1 : (int64_t)limit + !anchored);
    srv_walk how = SRV_WALK_CONTINUE;
    int step, delivered = 0;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        srv_stored_event ev = {.seq = sqlite3_column_int64(st, 0)};
        const char *column_type = (const char *)sqlite3_column_text(st, 1);
        const char *sealed = sqlite3_column_blob(st, 2);
        size_t len = (size_t)sqlite3_column_bytes(st, 2);
        const void *stored_link = sqlite3_column_blob(st, 3);
        int link_ok = stored_link && sqlite3_column_bytes(st, 3) == SRV_CHAIN_BYTES;
        int rc = check_take_key(&cc, err);
        if (rc == 0 && !anchored) {
            /* The anchor: believed as stored (a walk from the start checks it). */
            if (ev.seq != after_seq)
                rc = chain_fail(err, &cc, after_seq, "missing (dropped) where the walk resumes");
            else if (!link_ok)
                rc = chain_fail(err, &cc, ev.seq, "no link stored (inserted, or its link erased)");
            else
                memcpy(cc.prev.bytes, stored_link, SRV_CHAIN_BYTES);
            if (rc == 0)
                rc = check_head(&cc, ev.seq, &cc.prev, err);
            if (rc < 0) {
                how = SRV_WALK_FAILED;
                break;
            }
            anchored = 1;
            cc.last_seq = ev.seq;
            continue;
        }
        srv_chain_link link;
        if (rc == 0 && ev.seq != cc.last_seq + 1)
            rc = chain_fail(err, &cc, cc.last_seq + 1, "missing (dropped): the log skips it");
        if (rc == 0)
            rc = srv_chain_next(c->hasher, &cc.prev, room_id, ev.seq, column_type,
                                sealed ? sealed : "", len, &link, err);
        if (rc == 0 && (!link_ok || !srv_chain_same(&link, stored_link, sizeof link)))
            rc = chain_fail(err, &cc, ev.seq,
                            "does not follow the event before it in the room's chain (edited, "
                            "inserted or reordered)");
        if (rc == 0)
            rc = check_head(&cc, ev.seq, &link, err);
        /* Only a version 0x03 seal under the room's key opens: it
         * authenticates the type column too. */
        if (rc == 0)
            rc = srv_unseal(&cc.key, room_id, ev.seq, column_type, sealed ? sealed : "", len,
                            c->scratch, err);
        if (rc < 0) {
            how = SRV_WALK_FAILED;
            break;
        }
        cc.prev = link;
        cc.last_seq = ev.seq;
        delivered++;
        ev.payload = (const char *)c->scratch->data;
        ev.len = c->scratch->len;
        ev.type = column_type;
        if ((how = fn(&ev, arg, err)) != SRV_WALK_CONTINUE)
            break;
    }
    if (how == SRV_WALK_CONTINUE && step != SQLITE_DONE) {
        db_fail(err, c->db, "read events");
        how = SRV_WALK_FAILED;
    }
    /* Read through to the end of the log: it must end at (or, with
     * commits since the head was read, past) the head. */
    int to_end = (limit <= 0 || delivered < limit) && (upto_seq < 0 || upto_seq >= cc.head_seq);
    if (how == SRV_WALK_CONTINUE && to_end) {
        if (!cc.have_head && cc.last_seq > 0) {
            chain_fail(err, &cc, cc.last_seq, "the room has no authenticated head (removed)");
            how = SRV_WALK_FAILED;
        } else if (cc.have_head && cc.last_seq < cc.head_seq &&
                   (cc.last_seq > 0 || after_seq <= cc.head_seq)) {
            char what[128];
            snprintf(what, sizeof what,
                     "missing: the log ends at event %lld but its head says %lld (truncated)",
                     (long long)cc.last_seq, (long long)cc.head_seq);
            chain_fail(err, &cc, cc.last_seq + 1, what);
            how = SRV_WALK_FAILED;
        }
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (cc.have_key)
        OPENSSL_cleanse(&cc.key, sizeof cc.key);
    return how;
}

static srv_walk sq_walk_events(void *impl, const char *room_id, int64_t after_seq, int64_t upto_seq,
                               int limit, srv_stored_event_fn fn, void *arg, att_error *err)
{
    sqlite_store *s = impl;
    walk_conn c = {s->reader, s->r_read, s->r_head, s->r_hasher, s->keys, &s->open_scratch};
    return walk_sealed_events(&c, room_id, after_seq, upto_seq, limit, fn, arg, err);
}

static int sq_last_seq(void *impl, const char *room_id, int64_t *out, att_error *err)
{
    sqlite_store *s = impl;
    sqlite3_stmt *st = s->r_last_seq;
    sqlite3_bind_text(st, 1, room_id, -1, SQLITE_STATIC);
    int rc = 0;
    if (sqlite3_step(st) == SQLITE_ROW)
        *out = sqlite3_column_int64(st, 0);
    else
        rc = db_fail(err, s->reader, "last seq");
    sqlite3_reset(st);
    return rc;
}

static int sq_get_setting(void *impl, const char *key, char *out, size_t out_size, att_error *err)
{
    sqlite_store *s = impl;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->reader, "SELECT value FROM settings WHERE key = ?1", -1, &st, NULL) !=
        SQLITE_OK)
        return db_fail(err, s->reader, "prepare");
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    int step = sqlite3_step(st);
    int rc = 0;
    if (step == SQLITE_ROW) {
        const char *v = (const char *)sqlite3_column_text(st, 0);
        if ((size_t)snprintf(out, out_size, "%s", v ? v : "") >= out_size)
            rc = att_fail(err, ATT_ERR_INTERNAL, "store: setting too long");
    } else if (step == SQLITE_DONE) {
        rc = att_fail(err, ATT_ERR_NOT_FOUND, "store: no setting %s", key);
    } else {
        rc = db_fail(err, s->reader, "get setting");
    }
    sqlite3_finalize(st);
    return rc;
}

static int sq_set_setting(void *impl, const char *key, const char *value, att_error *err)
{
    sqlite_store *s = impl;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->reader,
                           "INSERT INTO settings (key, value) VALUES (?1, ?2) "
                           "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                           -1, &st, NULL) != SQLITE_OK)
        return db_fail(err, s->reader, "prepare");
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, value, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : db_fail(err, s->reader, "set setting");
    sqlite3_finalize(st);
    return rc;
}

static int sq_get_summary(void *impl, const char *room_id, char **out, att_error *err)
{
    sqlite_store *s = impl;
    sqlite3_stmt *st = NULL;
    *out = NULL;
    if (sqlite3_prepare_v2(s->reader,
                           "SELECT summary FROM room_summaries WHERE room = ?1 AND last_seq = "
                           "(SELECT coalesce(max(seq), 0) FROM events WHERE room = ?1)",
                           -1, &st, NULL) != SQLITE_OK)
        return db_fail(err, s->reader, "prepare");
    sqlite3_bind_text(st, 1, room_id, -1, SQLITE_STATIC);
    int step = sqlite3_step(st);
    int rc = 0;
    if (step == SQLITE_ROW) {
        const char *v = (const char *)sqlite3_column_text(st, 0);
        if (!(*out = strdup(v ? v : "")))
            rc = att_fail(err, ATT_ERR_INTERNAL, "store: out of memory");
    } else if (step == SQLITE_DONE) {
        rc = att_fail(err, ATT_ERR_NOT_FOUND, "store: no current summary");
    } else {
        rc = db_fail(err, s->reader, "get summary");
    }
    sqlite3_finalize(st);
    return rc;
}

static int sq_scan_stale_summaries(void *impl, const char *after_id, int limit,
                                   char last_out[SRV_STORE_ID_BYTES + 1], int *n_out,
                                   int (*fn)(const char *room_id, int64_t last_seq, void *arg),
                                   void *arg, att_error *err)
{
    sqlite_store *s = impl;
    sqlite3_stmt *st = NULL;
    *n_out = 0;
    last_out[0] = '\0';
    if (sqlite3_prepare_v2(s->reader,
                           "SELECT id, cached IS NOT NULL AND cached = last, last FROM "
                           "(SELECT r.id AS id, s.last_seq AS cached, (SELECT coalesce(max(seq), "
                           "0) FROM events WHERE room = r.id) AS last FROM rooms r LEFT JOIN "
                           "room_summaries s ON s.room = r.id WHERE r.id > ?1 ORDER BY r.id "
                           "LIMIT ?2)",
                           -1, &st, NULL) != SQLITE_OK)
        return db_fail(err, s->reader, "prepare");
    sqlite3_bind_text(st, 1, after_id, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, limit);
    int rc = 0, step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        const char *id = (const char *)sqlite3_column_text(st, 0);
        snprintf(last_out, SRV_STORE_ID_BYTES + 1, "%s", id ? id : "");
        (*n_out)++;
        if (!sqlite3_column_int(st, 1) &&
            (rc = fn(last_out, sqlite3_column_int64(st, 2), arg)) != 0)
            break;
    }
    if (rc == 0 && step != SQLITE_DONE)
        rc = db_fail(err, s->reader, "scan summaries");
    sqlite3_finalize(st);
    return rc;
}

static int sq_put_summaries(void *impl, const srv_store_summary *items, size_t n, att_error *err)
{
    sqlite_store *s = impl;
    if (n == 0)
        return 0;
    sqlite3_stmt *st = NULL;
    if (exec_sql(s->reader, "BEGIN IMMEDIATE", err) < 0)
        return -ATT_ERR_INTERNAL;
    int rc = 0;
    if (sqlite3_prepare_v2(s->reader,
                           "INSERT INTO room_summaries (room, last_seq, summary) VALUES (?1, ?2, "
                           "?3) ON CONFLICT(room) DO UPDATE SET last_seq = excluded.last_seq, "
                           "summary = excluded.summary",
                           -1, &st, NULL) != SQLITE_OK)
        rc = db_fail(err, s->reader, "prepare");
    for (size_t i = 0; rc == 0 && i < n; i++) {
        sqlite3_bind_text(st, 1, items[i].room_id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, items[i].last_seq);
        sqlite3_bind_text(st, 3, items[i].summary, -1, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = db_fail(err, s->reader, "put summary");
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    att_error ignored = {0};
    if (rc == 0 && exec_sql(s->reader, "COMMIT", err) < 0)
        rc = -ATT_ERR_INTERNAL;
    if (rc < 0)
        exec_sql(s->reader, "ROLLBACK", &ignored);
    return rc;
}

/* ---- verify and erase (store.h) ---- */

/* What srv_store_verify_room reads with. */
typedef struct {
    sqlite_store *s;
    const char *room;
    srv_seal_key key;
    sqlite3_stmt *copy_of; /* another row with the same payload bytes */
    sqlite3_stmt *others;  /* the room's other rows (seq, type) */
    srv_chain_report *out;
} verifier;

static int verify_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st, att_error *err)
{
    return sqlite3_prepare_v2(db, sql, -1, st, NULL) == SQLITE_OK ? 0 : db_fail(err, db, "prepare");
}

/* Notes the first problem (seq 0: none named) and returns 1 (broken). */
__attribute__((format(printf, 3, 4))) static int report(srv_chain_report *out, int64_t seq,
                                                        const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    out->bad_seq = seq;
    vsnprintf(out->problem, sizeof out->problem, fmt, ap);
    va_end(ap);
    return 1;
}

/* The seq of another row of the room whose payload is byte for byte this
 * one (a copy inserted), 0 when none. */
static int64_t copy_of(verifier *v, int64_t seq, const void *sealed, size_t len)
{
    sqlite3_stmt *st = v->copy_of;
    sqlite3_bind_text(st, 1, v->room, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, seq);
    sqlite3_bind_blob(st, 3, sealed, (int)len, SQLITE_STATIC);
    int64_t found = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_reset(st);
    return found;
}

/* The seq of another row of the room this payload was sealed for (opens
 * with that row's seq and its type or this row's), 0 when none: a payload
 * moved there (reordered). Verify only: one unseal per row of the room. */
static int64_t sealed_for(verifier *v, int64_t seq, const char *type, const void *sealed,
                          size_t len, srv_seal_buf *scratch)
{
    sqlite3_stmt *st = v->others;
    sqlite3_bind_text(st, 1, v->room, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, seq);
    int64_t found = 0;
    while (!found && sqlite3_step(st) == SQLITE_ROW) {
        int64_t other = sqlite3_column_int64(st, 0);
        const char *other_type = (const char *)sqlite3_column_text(st, 1);
        att_error ignored = {0};
        if ((other_type && srv_unseal(&v->key, v->room, other, other_type, sealed, len, scratch,
                                      &ignored) == 0) ||
            (type &&
             srv_unseal(&v->key, v->room, other, type, sealed, len, scratch, &ignored) == 0))
            found = other;
    }
    sqlite3_reset(st);
    return found;
}

/* One row that does not check: what happened to it. */
static int classify(verifier *v, int64_t seq, const char *type, const void *sealed, size_t len,
                    int opens, srv_seal_buf *scratch)
{
    int64_t j = copy_of(v, seq, sealed, len);
    if (j)
        return report(v->out, seq, "inserted: a copy of event %lld", (long long)j);
    if (!opens) {
        int64_t m = sealed_for(v, seq, type, sealed, len, scratch);
        if (m)
            return report(v->out, seq, "reordered: it holds the payload sealed for event %lld",
                          (long long)m);
        return report(v->out, seq,
                      "edited: its payload or type was changed (its seal does not open)");
    }
    return report(v->out, seq, "edited: its stored link was changed");
}

static int sq_verify_room(void *impl, const char *room, srv_chain_report *out, att_error *err)
{
    sqlite_store *s = impl;
    memset(out, 0, sizeof *out);
    sqlite3 *db = s->reader;
    verifier v = {.s = s, .room = room, .out = out};
    sqlite3_stmt *rows = NULL;
    srv_seal_buf scratch = {0};
    srv_chain_key head_key;
    int have_key = 0, rc;
    int64_t head_seq = 0;
    srv_chain_link head_link, head_mac, mac;
    srv_store_room meta;
    if ((rc = sq_get_room(s, room, &meta, err)) < 0)
        return rc;
    if (read_head(s->r_head, room, &head_seq, &head_link, &head_mac) < 0)
        return db_fail(err, db, "read the room's head");
    out->head_seq = head_seq;
    if (head_seq > 0)
        srv_chain_hex(&head_link, out->head_hex);
    att_error why = {0};
    rc = srv_keyring_room_key(s->keys, room, &v.key, &why);
    if (rc == -ATT_ERR_NOT_FOUND)
        return report(out, 0,
                      "the room's data key is gone (erased): its events cannot be opened or "
                      "checked");
    if (rc < 0)
        return att_fail(err, -rc, "%s", why.message);
    have_key = 1;
    int head_ok = 0;
    if (head_seq > 0) {
        if ((rc = srv_chain_head_key(s->r_hasher, &v.key, &head_key, err)) < 0 ||
            (rc = srv_chain_head_mac(s->r_hasher, &head_key, room, head_seq, &head_link, &mac,
                                     err)) < 0)
            goto out;
        head_ok = srv_chain_same(&mac, &head_mac, sizeof mac);
    }
    if ((rc = verify_prepare(db,
                             "SELECT seq, type, payload, chain FROM events WHERE room = ?1 "
                             "ORDER BY seq",
                             &rows, err)) < 0 ||
        (rc = verify_prepare(db,
                             "SELECT seq FROM events WHERE room = ?1 AND seq <> ?2 AND "
                             "payload = ?3 ORDER BY seq LIMIT 1",
                             &v.copy_of, err)) < 0 ||
        (rc = verify_prepare(db, "SELECT seq, type FROM events WHERE room = ?1 AND seq <> ?2",
                             &v.others, err)) < 0)
        goto out;
    sqlite3_bind_text(rows, 1, room, -1, SQLITE_STATIC);
    srv_chain_link prev = {{0}};
    int64_t last = 0;
    int step;
    rc = 0;
    while (rc == 0 && (step = sqlite3_step(rows)) == SQLITE_ROW) {
        int64_t seq = sqlite3_column_int64(rows, 0);
        const char *type = (const char *)sqlite3_column_text(rows, 1);
        const void *sealed = sqlite3_column_blob(rows, 2);
        size_t len = (size_t)sqlite3_column_bytes(rows, 2);
        const void *stored = sqlite3_column_blob(rows, 3);
        int stored_ok = stored && sqlite3_column_bytes(rows, 3) == SRV_CHAIN_BYTES;
        if (!sealed)
            sealed = "";
        if (head_ok && seq > head_seq) {
            int64_t j = copy_of(&v, seq, sealed, len);
            if (j)
                snprintf(out->problem, sizeof out->problem,
                         "inserted: past the room's head (event %lld), a copy of event %lld",
                         (long long)head_seq, (long long)j);
            else
                snprintf(out->problem, sizeof out->problem,
                         "inserted: past the room's head (event %lld)", (long long)head_seq);
            out->bad_seq = seq;
            rc = 1;
            break;
        }
        if (seq != last + 1) {
            rc = report(out, last + 1, "dropped: missing from the log");
            break;
        }
        srv_chain_link link;
        if ((rc = srv_chain_next(s->r_hasher, &prev, room, seq, type, sealed, len, &link, err)) < 0)
            break;
        att_error ignored = {0};
        int opens =
            type && srv_unseal(&v.key, room, seq, type, sealed, len, &scratch, &ignored) == 0;
        int linked = stored_ok && srv_chain_same(&link, stored, sizeof link);
        if (!opens || !linked) {
            rc = classify(&v, seq, type, sealed, len, opens, &scratch);
            break;
        }
        prev = link;
        last = seq;
        out->events++;
    }
    if (rc == 0 && step != SQLITE_DONE)
        rc = db_fail(err, db, "read events");
    if (rc != 0)
        goto out;
    if (head_seq == 0 && last > 0)
        rc = report(out, 0, "the room has no authenticated head (removed)");
    else if (head_seq > 0 && !head_ok)
        rc = report(out, 0,
                    "the room's head does not authenticate (the head was edited, or the key is "
                    "not this room's)");
    else if (last < head_seq) {
        snprintf(out->problem, sizeof out->problem,
                 "truncated: the log ends at event %lld but its head says %lld", (long long)last,
                 (long long)head_seq);
        out->bad_seq = last + 1;
        rc = 1;
    } else if (head_seq > 0 && !srv_chain_same(&prev, &head_link, sizeof prev))
        rc = report(out, head_seq,
                    "edited: the chain was recomputed and no longer reaches the room's head "
                    "(event %lld)",
                    (long long)head_seq);
out:
    sqlite3_finalize(rows);
    sqlite3_finalize(v.copy_of);
    sqlite3_finalize(v.others);
    if (scratch.data)
        OPENSSL_cleanse(scratch.data, scratch.cap);
    srv_seal_buf_free(&scratch);
    if (have_key) {
        OPENSSL_cleanse(&v.key, sizeof v.key);
        srv_chain_wipe(&head_key, sizeof head_key);
    }
    return rc;
}

/* Runs one statement on the reader with the room bound as ?1; *changes:
 * rows it deleted. */
static int delete_rows(sqlite3 *db, const char *sql, const char *room, int *changes, att_error *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        return db_fail(err, db, "prepare the erase");
    sqlite3_bind_text(st, 1, room, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : db_fail(err, db, "erase");
    sqlite3_finalize(st);
    *changes = sqlite3_changes(db);
    return rc;
}

static int sq_erase_room(void *impl, const char *room, att_error *err)
{
    sqlite_store *s = impl;
    /* The key first and durable: from here on no copy of the room's events
     * opens, whatever happens to the rows. */
    int rc = srv_keyring_erase_room(s->keys, room, err);
    if (rc < 0)
        return rc;
    sqlite3 *db = s->reader;
    int n_events = 0, n_rooms = 0, n = 0;
    /* secure_delete zeroes the freed pages' contents in the database file. */
    if (exec_sql(db, "PRAGMA secure_delete=ON", err) < 0 ||
        exec_sql(db, "BEGIN IMMEDIATE", err) < 0) {
        exec_sql(db, "PRAGMA secure_delete=OFF", NULL);
        return -ATT_ERR_INTERNAL;
    }
    if ((rc = delete_rows(db, "DELETE FROM events WHERE room = ?1", room, &n_events, err)) == 0 &&
        (rc = delete_rows(db, "DELETE FROM room_heads WHERE room = ?1", room, &n, err)) == 0 &&
        (rc = delete_rows(db, "DELETE FROM room_summaries WHERE room = ?1", room, &n, err)) == 0)
        rc = delete_rows(db, "DELETE FROM rooms WHERE id = ?1", room, &n_rooms, err);
    if (rc == 0 && exec_sql(db, "COMMIT", err) < 0)
        rc = -ATT_ERR_INTERNAL;
    if (rc < 0)
        exec_sql(db, "ROLLBACK", NULL);
    att_error ignored = {0};
    exec_sql(db, "PRAGMA secure_delete=OFF", &ignored);
    if (rc < 0)
        return rc;
    /* Passive: copies what it can now without waiting on the store thread
     * (the checkpoint thread finishes the rest). */
    (void)sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    srv_log("info", "room_erased_from_store", "{s:s,s:I}", "room", room, "events",
            (json_int_t)n_events);
    if (!n_rooms && !n_events)
        return att_fail(err, ATT_ERR_NOT_FOUND, "store: no room %s (its key is erased anyway)",
                        room);
    return 0;
}

/* ---- a reader for another thread (store.h) ---- */

typedef struct sqlite_reader sqlite_reader;

struct sqlite_reader {
    sqlite3 *db;
    sqlite3_stmt *read;
    sqlite3_stmt *head;
    srv_chain_hasher *hasher;
    srv_keyring *keys; /* the store's (any thread may use it) */
    srv_seal_buf scratch;
};

static void sq_reader_close(void *reader)
{
    sqlite_reader *r = reader;
    if (!r)
        return;
    sqlite3_finalize(r->read);
    sqlite3_finalize(r->head);
    srv_chain_hasher_free(r->hasher);
    sqlite3_close(r->db);
    if (r->scratch.data)
        OPENSSL_cleanse(r->scratch.data, r->scratch.cap);
    srv_seal_buf_free(&r->scratch);
    free(r);
}

static int sq_reader_open(void *impl, void **out, att_error *err)
{
    sqlite_store *s = impl;
    const char *path = sqlite3_db_filename(s->reader, "main");
    sqlite_reader *r = calloc(1, sizeof *r);
    if (!r)
        return att_fail(err, ATT_ERR_INTERNAL, "store: out of memory");
    r->keys = s->keys;
    if (!path || open_conn(path, READER_CACHE_KIB, &r->db, err) < 0 ||
        prepare(r->db, READ_EVENTS_SQL, &r->read, err) < 0 ||
        prepare(r->db, READ_HEAD_SQL, &r->head, err) < 0 ||
        srv_chain_hasher_new(&r->hasher, err) < 0) {
        if (!path)
            att_fail(err, ATT_ERR_INTERNAL, "store: no database path for a reader");
        sq_reader_close(r);
        return -ATT_ERR_INTERNAL;
    }
    *out = r;
    return 0;
}

static srv_walk sq_reader_walk_events(void *reader, const char *room_id, int64_t after_seq,
                                      int64_t upto_seq, int limit, srv_stored_event_fn fn,
                                      void *arg, att_error *err)
{
    sqlite_reader *r = reader;
    walk_conn c = {r->db, r->read, r->head, r->hasher, r->keys, &r->scratch};
    return walk_sealed_events(&c, room_id, after_seq, upto_seq, limit, fn, arg, err);
}

/* ---- one node's store: the leases are trivially ours (store.h) ---- */

static int sq_acquire_room(void *impl, const char *room, srv_store_lease *out, att_error *err)
{
    memset(out, 0, sizeof *out);
    int rc = sq_get_room(impl, room, &(srv_store_room){0}, err);
    if (rc < 0)
        return rc;
    if ((rc = sq_last_seq(impl, room, &out->last_seq, err)) < 0)
        return rc;
    out->epoch = 1;
    return 0;
}

static int sq_release_room(void *impl, const char *room, att_error *err)
{
    (void)impl;
    (void)room;
    (void)err;
    return 0;
}

static int sq_take_wanted(void *impl, char (*out)[SRV_STORE_ID_BYTES + 1], int max)
{
    (void)impl;
    (void)out;
    (void)max;
    return 0;
}

static int sq_node_alive(void *impl)
{
    (void)impl;
    return 1;
}

static const struct srv_store_ops sqlite_ops = {
    .kind = "sqlite",
    .start = sq_start,
    .close = sq_close,
    .create_room = sq_create_room,
    .get_room = sq_get_room,
    .list_rooms = sq_list_rooms,
    .walk_events = sq_walk_events,
    .reader_open = sq_reader_open,
    .reader_close = sq_reader_close,
    .reader_walk_events = sq_reader_walk_events,
    .last_seq = sq_last_seq,
    .append = sq_append,
    .take_completed = sq_take_completed,
    .get_summary = sq_get_summary,
    .scan_stale_summaries = sq_scan_stale_summaries,
    .put_summaries = sq_put_summaries,
    .get_setting = sq_get_setting,
    .set_setting = sq_set_setting,
    .get_stats = sq_get_stats,
    .verify_room = sq_verify_room,
    .erase_room = sq_erase_room,
    .fail_nth_batch = sq_fail_nth_batch,
    .acquire_room = sq_acquire_room,
    .release_room = sq_release_room,
    .take_wanted = sq_take_wanted,
    .node_alive = sq_node_alive,
    .node_id = NULL,
};

int srv_store_open(const char *dir, srv_keyring *keys, srv_store **out, att_error *err)
{
    *out = NULL;
    sqlite_store *s = NULL;
    int rc = sq_open(dir, keys, &s, err);
    if (rc < 0)
        return rc;
    if ((rc = srv_store_wrap(&sqlite_ops, s, out, err)) < 0)
        sq_close(s);
    return rc;
}
