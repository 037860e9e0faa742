/* store_sqlite.c - the event log in SQLite (see store.h).
 *
 * Payloads are sealed (AES-256-GCM, seal.h) under their room's own key
 * (keyring.h) on their way in and opened on their way out, so the database
 * file never holds what participants wrote in the clear, nor a key that
 * opens it; callers see plaintext JSON only. The store thread and the walks
 * take each room's key from the keyring's cache (no SQL per batch).
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
#include "store.h"
#include "clock.h"
#include "schema.h"
#include "keyring.h"
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
/* A room's events after ?2 through ?3, at most ?4 (both readers). */
#define READ_EVENTS_SQL                                                                            \
    "SELECT seq, type, payload FROM events WHERE room = ?1 AND seq > ?2 AND seq <= ?3 "            \
    "ORDER BY seq LIMIT ?4"

struct srv_store {
    sqlite3 *reader;
    sqlite3 *writer;
    sqlite3 *ckpt;
    sqlite3_stmt *w_last_seq;
    sqlite3_stmt *w_insert;
    /* Transaction control, prepared once instead of parsed per group. */
    sqlite3_stmt *w_begin, *w_commit, *w_rollback, *w_savepoint, *w_release, *w_rollback_to;
    sqlite3_stmt *r_read;
    sqlite3_stmt *r_last_seq;
    srv_keyring *keys;         /* borrowed: the rooms' data keys */
    srv_seal_buf seal_scratch; /* store thread only */
    srv_seal_buf open_scratch; /* reader side (the caller's thread) */

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
    srv_store *s = arg;
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

int srv_store_open(const char *dir, srv_keyring *keys, srv_store **out, att_error *err)
{
    if (!keys)
        return att_fail(err, ATT_ERR_INTERNAL, "store: no keyring");
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return att_fail(err, ATT_ERR_INTERNAL, "store: cannot create %s: %s", dir, strerror(errno));
    char path[4096];
    if (snprintf(path, sizeof path, "%s/attune.db", dir) >= (int)sizeof path)
        return att_fail(err, ATT_ERR_INTERNAL, "store: path too long");
    srv_store *s = calloc(1, sizeof *s);
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
        prepare(s->writer, "SELECT coalesce(max(seq), 0) FROM events WHERE room = ?1",
                &s->w_last_seq, err) < 0 ||
        prepare(s->writer, "INSERT INTO events (room, seq, type, payload) VALUES (?1, ?2, ?3, ?4)",
                &s->w_insert, err) < 0 ||
        prepare(s->writer, "BEGIN IMMEDIATE", &s->w_begin, err) < 0 ||
        prepare(s->writer, "COMMIT", &s->w_commit, err) < 0 ||
        prepare(s->writer, "ROLLBACK", &s->w_rollback, err) < 0 ||
        prepare(s->writer, "SAVEPOINT batch", &s->w_savepoint, err) < 0 ||
        prepare(s->writer, "RELEASE batch", &s->w_release, err) < 0 ||
        prepare(s->writer, "ROLLBACK TO batch", &s->w_rollback_to, err) < 0 ||
        prepare(s->reader, READ_EVENTS_SQL, &s->r_read, err) < 0 ||
        prepare(s->reader, "SELECT coalesce(max(seq), 0) FROM events WHERE room = ?1",
                &s->r_last_seq, err) < 0) {
        srv_store_close(s);
        return -ATT_ERR_INTERNAL;
    }
    if ((s->db_fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
        att_fail(err, ATT_ERR_INTERNAL, "store: cannot open %s: %s", path, strerror(errno));
        srv_store_close(s);
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
static void commit_group(srv_store *s, srv_store_batch *group, int inject_failure)
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
        b->group_size = n_group;
        if (!tx_ok) {
            b->result = att_fail(&b->error, ATT_ERR_INTERNAL, "%s", txerr.message);
            continue;
        }
        if ((b->result = run_stmt(db, s->w_savepoint, "savepoint", &b->error)) < 0)
            continue;
        sqlite3_bind_text(s->w_last_seq, 1, b->room_id, -1, SQLITE_STATIC);
        int64_t last = -1;
        if (sqlite3_step(s->w_last_seq) == SQLITE_ROW)
            last = sqlite3_column_int64(s->w_last_seq, 0);
        sqlite3_reset(s->w_last_seq);
        if (last < 0) {
            b->result = db_fail(&b->error, db, "last seq");
        } else if (last + 1 != b->first_seq) {
            b->result = att_fail(&b->error, ATT_ERR_INTERNAL,
                                 "store: batch starts at seq %lld but the log ends at %lld",
                                 (long long)b->first_seq, (long long)last);
        } else {
            /* The room's key from the keyring's cache: a hash probe, no SQL.
             * A room whose key is gone (erased) stores nothing more. */
            srv_seal_key key;
            b->result = srv_keyring_room_key(s->keys, b->room_id, &key, &b->error);
            for (int i = 0; i < b->n && b->result == 0; i++) {
                if ((b->result =
                         srv_seal(&key, b->room_id, b->first_seq + i, b->type[i], b->payload[i],
                                  b->payload_len[i], &s->seal_scratch, &b->error)) < 0)
                    break;
                sqlite3_bind_text(s->w_insert, 1, b->room_id, -1, SQLITE_STATIC);
                sqlite3_bind_int64(s->w_insert, 2, b->first_seq + i);
                sqlite3_bind_text(s->w_insert, 3, b->type[i], -1, SQLITE_STATIC);
                sqlite3_bind_blob(s->w_insert, 4, s->seal_scratch.data, (int)s->seal_scratch.len,
                                  SQLITE_STATIC);
                if (sqlite3_step(s->w_insert) != SQLITE_DONE)
                    b->result = db_fail(&b->error, db, "insert");
                sqlite3_reset(s->w_insert);
            }
            OPENSSL_cleanse(&key, sizeof key);
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
    srv_store *s = arg;
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
    srv_store *s = arg;
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

int srv_store_start(srv_store *s, int window_us, srv_store_notify_fn notify,
                    srv_store_discard_fn discard, void *arg, att_error *err)
{
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
static void stop_thread(srv_store *s, pthread_t thread, int *started, int *stop_flag,
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

void srv_store_close(srv_store *s)
{
    if (!s)
        return;
    /* The checkpoint thread first: the store thread may be waiting on its
     * hold. */
    stop_thread(s, s->ckpt_thread, &s->ckpt_started, &s->ckpt_stopping, &s->ckpt_wake);
    stop_thread(s, s->thread, &s->started, &s->stopping, &s->wake);
    /* Batches appended but never committed cannot exist here (the thread
     * drains the queue before it exits); completed ones go back. */
    srv_store_batch *b = srv_store_take_completed(s);
    while (b) {
        srv_store_batch *next = b->next;
        if (s->discard)
            s->discard(b, s->arg);
        b = next;
    }
    sqlite3_stmt *stmts[] = {s->w_last_seq, s->w_insert,    s->w_begin,   s->w_commit,
                             s->w_rollback, s->w_savepoint, s->w_release, s->w_rollback_to,
                             s->r_read,     s->r_last_seq};
    for (size_t i = 0; i < sizeof stmts / sizeof stmts[0]; i++)
        sqlite3_finalize(stmts[i]);
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

int srv_store_append(srv_store *s, srv_store_batch *b, att_error *err)
{
    if (b->n < 1 || b->n > SRV_STORE_MAX_BATCH || b->first_seq < 1)
        return att_fail(err, ATT_ERR_INTERNAL, "store: malformed batch");
    for (int i = 0; i < b->n; i++)
        if (!b->type[i] || !b->type[i][0] || strlen(b->type[i]) > SRV_SEAL_TYPE_MAX)
            return att_fail(err, ATT_ERR_INTERNAL, "store: batch event %d has no type", i);
    b->next = NULL;
    b->result = 0;
    b->queued_ns = srv_mono_ns();
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

srv_store_batch *srv_store_take_completed(srv_store *s)
{
    pthread_mutex_lock(&s->lock);
    srv_store_batch *list = s->done_head;
    s->done_head = s->done_tail = NULL;
    pthread_mutex_unlock(&s->lock);
    return list;
}

void srv_store_get_stats(srv_store *s, srv_store_stats *out)
{
    pthread_mutex_lock(&s->lock);
    out->checkpoints = s->checkpoints;
    out->wal_pages = s->wal_pages;
    pthread_mutex_unlock(&s->lock);
}

void srv_store_fail_nth_batch(srv_store *s, int nth)
{
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

int srv_store_create_room(srv_store *s, const srv_store_room *room, const char *first_event,
                          size_t len, att_error *err)
{
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
                           "INSERT INTO events (room, seq, type, payload) VALUES (?1, 1, ?2, ?3)",
                           -1, &st, NULL) != SQLITE_OK) {
        rc = db_fail(err, db, "prepare");
        goto out;
    }
    srv_seal_buf sealed = {0};
    if ((rc = srv_seal(&key, room->id, 1, ROOM_CREATED, first_event, len, &sealed, err)) < 0) {
        sqlite3_finalize(st);
        goto out;
    }
    sqlite3_bind_text(st, 1, room->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, ROOM_CREATED, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 3, sealed.data, (int)sealed.len, SQLITE_TRANSIENT);
    srv_seal_buf_free(&sealed);
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = db_fail(err, db, "insert first event");
    sqlite3_finalize(st);
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

int srv_store_get_room(srv_store *s, const char *id, srv_store_room *out, att_error *err)
{
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

int srv_store_list_rooms(srv_store *s, int (*fn)(const srv_store_room *room, void *arg), void *arg,
                         att_error *err)
{
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

/* Runs st (READ_EVENTS_SQL: the events of room_id in (after_seq,
 * upto_seq], at most limit; upto_seq < 0: no upper bound, limit <= 0: no
 * limit) on db, opening each event under the room's key (from keys, taken
 * at the first row, so a walk of a room with no events needs none) into
 * scratch and passing it to fn; resets st after. */
static srv_walk walk_sealed_events(sqlite3 *db, sqlite3_stmt *st, srv_keyring *keys,
                                   srv_seal_buf *scratch, const char *room_id, int64_t after_seq,
                                   int64_t upto_seq, int limit, srv_stored_event_fn fn, void *arg,
                                   att_error *err)
{
    srv_seal_key key;
    int have_key = 0;
    sqlite3_bind_text(st, 1, room_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, after_seq);
    sqlite3_bind_int64(st, 3, upto_seq < 0 ? INT64_MAX : upto_seq);
    sqlite3_bind_int64(st, 4, limit <= 0 ? -1 : limit);
    srv_walk how = SRV_WALK_CONTINUE;
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        srv_stored_event ev = {.seq = sqlite3_column_int64(st, 0)};
        const char *column_type = (const char *)sqlite3_column_text(st, 1);
        const char *sealed = sqlite3_column_blob(st, 2);
        size_t len = (size_t)sqlite3_column_bytes(st, 2);
        if (!have_key) {
            att_error why = {0};
            int rc = srv_keyring_room_key(keys, room_id, &key, &why);
            if (rc == -ATT_ERR_NOT_FOUND)
                att_fail(err, ATT_ERR_NOT_FOUND,
                         "store: room %s has events but no data key (erased, or DATA/keys.db "
                         "is not this data directory's): they cannot be read",
                         room_id);
            else if (rc < 0)
                att_fail(err, -rc, "%s", why.message);
            if (rc < 0) {
                how = SRV_WALK_FAILED;
                break;
            }
            have_key = 1;
        }
        /* Only a version 0x03 seal under the room's key opens: it
         * authenticates the type column too. */
        if (srv_unseal(&key, room_id, ev.seq, column_type, sealed ? sealed : "", len, scratch,
                       err) < 0) {
            how = SRV_WALK_FAILED;
            break;
        }
        ev.payload = (const char *)scratch->data;
        ev.len = scratch->len;
        ev.type = column_type;
        if ((how = fn(&ev, arg, err)) != SRV_WALK_CONTINUE)
            break;
    }
    if (how == SRV_WALK_CONTINUE && step != SQLITE_DONE) {
        db_fail(err, db, "read events");
        how = SRV_WALK_FAILED;
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (have_key)
        OPENSSL_cleanse(&key, sizeof key);
    return how;
}

srv_walk srv_store_walk_events(srv_store *s, const char *room_id, int64_t after_seq,
                               int64_t upto_seq, int limit, srv_stored_event_fn fn, void *arg,
                               att_error *err)
{
    return walk_sealed_events(s->reader, s->r_read, s->keys, &s->open_scratch, room_id, after_seq,
                              upto_seq, limit, fn, arg, err);
}

int srv_store_last_seq(srv_store *s, const char *room_id, int64_t *out, att_error *err)
{
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

int srv_store_get_setting(srv_store *s, const char *key, char *out, size_t out_size, att_error *err)
{
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

int srv_store_set_setting(srv_store *s, const char *key, const char *value, att_error *err)
{
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

int srv_store_get_summary(srv_store *s, const char *room_id, char **out, att_error *err)
{
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

int srv_store_scan_stale_summaries(srv_store *s, const char *after_id, int limit,
                                   char last_out[SRV_STORE_ID_BYTES + 1], int *n_out,
                                   int (*fn)(const char *room_id, int64_t last_seq, void *arg),
                                   void *arg, att_error *err)
{
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

int srv_store_put_summaries(srv_store *s, const srv_store_summary *items, size_t n, att_error *err)
{
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

/* ---- a reader for another thread (store.h) ---- */

struct srv_store_reader {
    sqlite3 *db;
    sqlite3_stmt *read;
    srv_keyring *keys; /* the store's (any thread may use it) */
    srv_seal_buf scratch;
};

void srv_store_reader_close(srv_store_reader *r)
{
    if (!r)
        return;
    sqlite3_finalize(r->read);
    sqlite3_close(r->db);
    if (r->scratch.data)
        OPENSSL_cleanse(r->scratch.data, r->scratch.cap);
    srv_seal_buf_free(&r->scratch);
    free(r);
}

int srv_store_reader_open(srv_store *s, srv_store_reader **out, att_error *err)
{
    const char *path = sqlite3_db_filename(s->reader, "main");
    srv_store_reader *r = calloc(1, sizeof *r);
    if (!r)
        return att_fail(err, ATT_ERR_INTERNAL, "store: out of memory");
    r->keys = s->keys;
    if (!path || open_conn(path, READER_CACHE_KIB, &r->db, err) < 0 ||
        prepare(r->db, READ_EVENTS_SQL, &r->read, err) < 0) {
        if (!path)
            att_fail(err, ATT_ERR_INTERNAL, "store: no database path for a reader");
        srv_store_reader_close(r);
        return -ATT_ERR_INTERNAL;
    }
    *out = r;
    return 0;
}

srv_walk srv_store_reader_walk_events(srv_store_reader *r, const char *room_id, int64_t after_seq,
                                      int64_t upto_seq, int limit, srv_stored_event_fn fn,
                                      void *arg, att_error *err)
{
    return walk_sealed_events(r->db, r->read, r->keys, &r->scratch, room_id, after_seq, upto_seq,
                              limit, fn, arg, err);
}
