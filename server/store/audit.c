/* audit.c - the audit log in SQLite or PostgreSQL: chained entries and a
 * MAC'd head (see audit.h). What an entry may hold, the hash chain, the
 * head's MAC, the append check and verify are one copy for both backends;
 * only the statements differ (the "backend" sections below). */
#include "audit.h"
#include "b64url.h"
#include "keyring.h"
#include "pg.h"
#include "room_id.h"
#include "schema.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pwd.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct srv_audit {
    sqlite3 *db; /* the SQLite backend, or NULL */
    srv_pg *pg;  /* the PostgreSQL backend, or NULL */
    unsigned char head_key[SRV_SEAL_KEY_BYTES];
};

static const char *const action_names[SRV_AUDIT__COUNT] = {
    [SRV_AUDIT_CREATED] = "created",
    [SRV_AUDIT_OPENED] = "opened",
    [SRV_AUDIT_OBSERVED] = "observed",
    [SRV_AUDIT_EXPORTED] = "exported",
    [SRV_AUDIT_LINKS_REVOKED] = "links_revoked",
    [SRV_AUDIT_LINK_ISSUED] = "link_issued",
    [SRV_AUDIT_OBSERVER_ADDED] = "observer_added",
    [SRV_AUDIT_OBSERVER_REMOVED] = "observer_removed",
    [SRV_AUDIT_ERASED] = "erased",
    [SRV_AUDIT_KEYS_ROTATED] = "keys_rotated",
    [SRV_AUDIT_BACKUP] = "backup",
    [SRV_AUDIT_RESTORED] = "restored",
};

/* The audit module's migrations (schema.h): steps[i] takes version i to
 * i + 1. The triggers make the table append-only for every connection,
 * this module's included; a tamperer who drops them is caught by the chain
 * instead. */
static const char *const schema_steps[] = {
    "CREATE TABLE audit_log ("
    "  id INTEGER PRIMARY KEY," /* 1, 2, 3 ... without gaps */
    "  at INTEGER NOT NULL,"    /* ms since the epoch */
    "  actor TEXT NOT NULL,"
    "  actor_id INTEGER NOT NULL," /* the account's id, 0 for the command line */
    "  action TEXT NOT NULL,"
    "  room TEXT NOT NULL,"   /* '' for none */
    "  detail TEXT NOT NULL," /* '' for none */
    "  hash BLOB NOT NULL);"  /* the chain (audit.h) */
    "CREATE INDEX audit_by_actor_id ON audit_log (actor_id, id);"
    "CREATE INDEX audit_by_room ON audit_log (room, id);"
    "CREATE TABLE audit_head ("
    "  one INTEGER PRIMARY KEY CHECK (one = 1),"
    "  id INTEGER NOT NULL,"
    "  hash BLOB NOT NULL,"
    "  mac BLOB NOT NULL);"
    "CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log"
    "  BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;"
    "CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log"
    "  BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;",
};

const char *srv_audit_action_name(srv_audit_action action)
{
    return (int)action >= 0 && action < SRV_AUDIT__COUNT ? action_names[action] : NULL;
}

int srv_audit_action_from_name(const char *name)
{
    for (int i = 0; name && i < SRV_AUDIT__COUNT; i++)
        if (strcmp(action_names[i], name) == 0)
            return i;
    return -1;
}

static int db_fail(att_error *err, sqlite3 *db, const char *what)
{
    return att_fail(err, ATT_ERR_INTERNAL, "audit: %s: %s", what, sqlite3_errmsg(db));
}

int srv_audit_open_key(const char *dir, const srv_seal_key *head_key, srv_audit **out,
                       att_error *err)
{
    *out = NULL;
    char path[4096];
    if (snprintf(path, sizeof path, "%s/attune.db", dir) >= (int)sizeof path)
        return att_fail(err, ATT_ERR_INTERNAL, "audit: path too long");
    srv_audit *a = calloc(1, sizeof *a);
    if (!a)
        return att_fail(err, ATT_ERR_INTERNAL, "audit: out of memory");
    memcpy(a->head_key, head_key->bytes, sizeof a->head_key);
    int rc = sqlite3_open_v2(
        path, &a->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        att_fail(err, ATT_ERR_INTERNAL, "audit: cannot open %s: %s", path,
                 a->db ? sqlite3_errmsg(a->db) : sqlite3_errstr(rc));
        srv_audit_close(a);
        return -ATT_ERR_INTERNAL;
    }
    sqlite3_busy_timeout(a->db, 10000);
    char *msg = NULL;
    if (sqlite3_exec(a->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;", NULL, NULL,
                     &msg) != SQLITE_OK) {
        att_fail(err, ATT_ERR_INTERNAL, "audit: %s", msg ? msg : "cannot set up the database");
        sqlite3_free(msg);
        srv_audit_close(a);
        return -ATT_ERR_INTERNAL;
    }
    rc = srv_schema_migrate(a->db, "audit", schema_steps,
                            (int)(sizeof schema_steps / sizeof schema_steps[0]), err);
    if (rc < 0) {
        srv_audit_close(a);
        return rc;
    }
    *out = a;
    return 0;
}

int srv_audit_open(const char *dir, struct srv_keyring *keys, srv_audit **out, att_error *err)
{
    srv_seal_key key;
    int rc = srv_keyring_service_key(keys, SRV_AUDIT_KEY_NAME, &key, err);
    if (rc == 0)
        rc = srv_audit_open_key(dir, &key, out, err);
    OPENSSL_cleanse(&key, sizeof key);
    return rc;
}

void srv_audit_close(srv_audit *a)
{
    if (!a)
        return;
    sqlite3_close(a->db);
    srv_pg_close(a->pg);
    OPENSSL_cleanse(a->head_key, sizeof a->head_key);
    free(a);
}

/* ---- PostgreSQL: the same two tables, shared by every node ----
 *
 * Appends from all nodes are serialised by a transaction-scoped advisory
 * lock (AUDIT_APPEND_LOCK): a row lock on the head would not do before
 * the first entry, when there is no head row to lock. Under READ
 * COMMITTED each statement after the lock sees every append committed
 * before it, so the next id is always the last one + 1 and no two nodes
 * chain onto the same entry. The triggers refuse UPDATE, DELETE and
 * TRUNCATE on audit_log for every role (a superuser or the table's owner
 * can disable them; the chain and the head's MAC catch what is done
 * then). */
static const char pg_schema[] =
    "CREATE TABLE IF NOT EXISTS audit_log ("
    "  id bigint PRIMARY KEY CHECK (id > 0)," /* 1, 2, 3 ... without gaps */
    "  at bigint NOT NULL,"
    "  actor text NOT NULL,"
    "  actor_id bigint NOT NULL,"
    "  action text NOT NULL,"
    "  room text NOT NULL,"
    "  detail text NOT NULL,"
    "  hash bytea NOT NULL);"
    "CREATE INDEX IF NOT EXISTS audit_by_actor_id ON audit_log (actor_id, id);"
    "CREATE INDEX IF NOT EXISTS audit_by_room ON audit_log (room, id);"
    "CREATE TABLE IF NOT EXISTS audit_head ("
    "  one integer PRIMARY KEY CHECK (one = 1),"
    "  id bigint NOT NULL,"
    "  hash bytea NOT NULL,"
    "  mac bytea NOT NULL);"
    "CREATE OR REPLACE FUNCTION audit_log_refuse() RETURNS trigger LANGUAGE plpgsql AS"
    "  $$BEGIN RAISE EXCEPTION 'the audit log is append-only'; END$$;"
    "CREATE OR REPLACE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log"
    "  FOR EACH ROW EXECUTE FUNCTION audit_log_refuse();"
    "CREATE OR REPLACE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log"
    "  FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse();";

/* 'auditlog' as bytes: the advisory lock every append takes. */
#define AUDIT_APPEND_LOCK "7022629598041763687"
/* Rows a PostgreSQL walk reads per statement (bounded memory on a long
 * log, one snapshot throughout when the caller holds one). */
#define PG_WALK_PAGE 500

int srv_audit_open_pg_key(const char *uri, const srv_seal_key *head_key, srv_audit **out,
                          att_error *err)
{
    *out = NULL;
    srv_audit *a = calloc(1, sizeof *a);
    if (!a)
        return att_fail(err, ATT_ERR_INTERNAL, "audit: out of memory");
    memcpy(a->head_key, head_key->bytes, sizeof a->head_key);
    int rc = srv_pg_connect(uri, "attune-audit", &a->pg, err);
    if (rc == 0)
        rc = srv_pg_exec_script(a->pg, pg_schema, err);
    if (rc < 0) {
        srv_audit_close(a);
        return rc;
    }
    *out = a;
    return 0;
}

int srv_audit_open_pg(const char *uri, struct srv_keyring *keys, srv_audit **out, att_error *err)
{
    srv_seal_key key;
    int rc = srv_keyring_service_key(keys, SRV_AUDIT_KEY_NAME, &key, err);
    if (rc == 0)
        rc = srv_audit_open_pg_key(uri, &key, out, err);
    OPENSSL_cleanse(&key, sizeof key);
    return rc;
}

int srv_audit_is_pg(const srv_audit *a)
{
    return a->pg != NULL;
}

static int pg_sql(srv_audit *a, const char *sql, int n, const char *const *params,
                  const int *lengths, const int *formats, PGresult **out, att_error *err)
{
    return srv_pg_exec(a->pg, sql, n, params, lengths, formats, out, err);
}

/* A bytea column selected as encode(col, 'hex'): its 32 bytes, or 0 when
 * it is not 32 bytes long. */
static int pg_hash_at(const PGresult *r, int row, int col, unsigned char out[32])
{
    const char *hex = PQgetvalue(r, row, col);
    return srv_hex_decode(hex, strlen(hex), out, 32) == 0;
}

/* ---- what an entry may hold ---- */

/* Account-name characters (accounts.h) and ':' (the "cli:" prefix): no
 * spaces, no punctuation that free text would need. */
static int word_valid(const char *s, size_t min, size_t max)
{
    size_t n = s ? strlen(s) : 0;
    if (n < min || n > max)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-' || c == '@' || c == ':'))
            return 0;
    }
    return 1;
}

static int entry_check(const srv_audit_entry *e, att_error *err)
{
    if (!srv_audit_action_name(e->action))
        return att_fail(err, ATT_ERR_BAD_MESSAGE, "audit: no such action");
    if (!word_valid(e->actor, 1, SRV_AUDIT_ACTOR_MAX))
        return att_fail(err, ATT_ERR_BAD_MESSAGE, "audit: an actor is an account name or cli:USER");
    if (e->room && e->room[0] && !srv_room_id_valid(e->room))
        return att_fail(err, ATT_ERR_BAD_MESSAGE, "audit: not a room id");
    if (e->detail && !word_valid(e->detail, 0, SRV_AUDIT_DETAIL_MAX))
        return att_fail(err, ATT_ERR_BAD_MESSAGE,
                        "audit: a detail is a role or an account name, never free text");
    if (e->actor_id < 0 || e->at < 0)
        return att_fail(err, ATT_ERR_BAD_MESSAGE, "audit: negative id or time");
    return 0;
}

/* ---- the chain ---- */

static void put_be64(unsigned char out[8], int64_t v)
{
    uint64_t u = (uint64_t)v;
    for (int i = 7; i >= 0; i--) {
        out[i] = (unsigned char)(u & 0xff);
        u >>= 8;
    }
}

/* The entry's hash over the previous one (audit.h says what is hashed). */
static int entry_hash(const unsigned char prev[32], int64_t id, int64_t at, int64_t actor_id,
                      const char *actor, const char *action, const char *room, const char *detail,
                      unsigned char out[32], att_error *err)
{
    static const char domain[] = "attune.audit.v1";
    unsigned char nums[24];
    put_be64(nums, id);
    put_be64(nums + 8, at);
    put_be64(nums + 16, actor_id);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned int n = 0;
    int ok = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) &&
             EVP_DigestUpdate(md, domain, sizeof domain - 1) && EVP_DigestUpdate(md, prev, 32) &&
             EVP_DigestUpdate(md, nums, sizeof nums) &&
             EVP_DigestUpdate(md, actor, strlen(actor) + 1) &&
             EVP_DigestUpdate(md, action, strlen(action) + 1) &&
             EVP_DigestUpdate(md, room, strlen(room) + 1) &&
             EVP_DigestUpdate(md, detail, strlen(detail) + 1) && EVP_DigestFinal_ex(md, out, &n) &&
             n == 32;
    EVP_MD_CTX_free(md);
    return ok ? 0 : att_fail(err, ATT_ERR_INTERNAL, "audit: SHA-256 failed");
}

static int head_mac(const srv_audit *a, int64_t id, const unsigned char hash[32],
                    unsigned char out[32], att_error *err)
{
    static const char domain[] = "attune.audit.head.v1";
    unsigned char msg[sizeof domain - 1 + 8 + 32];
    memcpy(msg, domain, sizeof domain - 1);
    put_be64(msg + sizeof domain - 1, id);
    memcpy(msg + sizeof domain - 1 + 8, hash, 32);
    unsigned int n = 0;
    if (!HMAC(EVP_sha256(), a->head_key, (int)sizeof a->head_key, msg, sizeof msg, out, &n) ||
        n != 32)
        return att_fail(err, ATT_ERR_INTERNAL, "audit: HMAC failed");
    return 0;
}

/* ---- backend: the head and the last entry ---- */

/* *mac_ok: whether mac is the head key's MAC over (id, hash). */
static int head_mac_check(const srv_audit *a, int64_t id, const unsigned char hash[32],
                          const unsigned char mac[32], int *mac_ok, att_error *err)
{
    unsigned char want[32];
    if (head_mac(a, id, hash, want, err) < 0)
        return -ATT_ERR_INTERNAL;
    *mac_ok = CRYPTO_memcmp(want, mac, 32) == 0;
    return 0;
}

static int pg_read_head(srv_audit *a, int64_t *id, unsigned char hash[32], int *mac_ok,
                        att_error *err)
{
    PGresult *r = NULL;
    if (pg_sql(a,
               "SELECT id, encode(hash, 'hex'), encode(mac, 'hex') FROM audit_head WHERE one = 1",
               0, NULL, NULL, NULL, &r, err) < 0)
        return -ATT_ERR_INTERNAL;
    int found = PQntuples(r) == 1;
    int rc = 0;
    unsigned char mac[32];
    if (found) {
        *id = srv_pg_int_at(r, 0, 0);
        if (pg_hash_at(r, 0, 1, hash) && pg_hash_at(r, 0, 2, mac))
            rc = head_mac_check(a, *id, hash, mac, mac_ok, err);
        else
            memset(hash, 0, 32);
    }
    PQclear(r);
    return rc < 0 ? rc : found;
}

/* The stored head: 1 with it, 0 when there is none, negative on failure.
 * *mac_ok says whether its MAC checks. */
static int read_head(srv_audit *a, int64_t *id, unsigned char hash[32], int *mac_ok, att_error *err)
{
    *mac_ok = 0;
    if (a->pg)
        return pg_read_head(a, id, hash, mac_ok, err);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(a->db, "SELECT id, hash, mac FROM audit_head WHERE one = 1", -1, &st,
                           NULL) != SQLITE_OK)
        return db_fail(err, a->db, "prepare");
    int rc = sqlite3_step(st);
    int found = 0;
    if (rc == SQLITE_ROW) {
        found = 1;
        *id = sqlite3_column_int64(st, 0);
        const void *h = sqlite3_column_blob(st, 1);
        const void *m = sqlite3_column_blob(st, 2);
        if (h && m && sqlite3_column_bytes(st, 1) == 32 && sqlite3_column_bytes(st, 2) == 32) {
            memcpy(hash, h, 32);
            if (head_mac_check(a, *id, hash, m, mac_ok, err) < 0) {
                sqlite3_finalize(st);
                return -ATT_ERR_INTERNAL;
            }
        } else {
            memset(hash, 0, 32);
        }
    } else if (rc != SQLITE_DONE) {
        sqlite3_finalize(st);
        return db_fail(err, a->db, "read the head");
    }
    sqlite3_finalize(st);
    return found;
}

/* The last stored entry's id and hash: 1, 0 when the log is empty. */
static int read_last(srv_audit *a, int64_t *id, unsigned char hash[32], att_error *err)
{
    if (a->pg) {
        PGresult *r = NULL;
        if (pg_sql(a, "SELECT id, encode(hash, 'hex') FROM audit_log ORDER BY id DESC LIMIT 1", 0,
                   NULL, NULL, NULL, &r, err) < 0)
            return -ATT_ERR_INTERNAL;
        int found = PQntuples(r) == 1;
        if (found) {
            *id = srv_pg_int_at(r, 0, 0);
            if (!pg_hash_at(r, 0, 1, hash))
                memset(hash, 0xff, 32); /* never a real hash: the head will not match */
        }
        PQclear(r);
        return found;
    }
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(a->db, "SELECT id, hash FROM audit_log ORDER BY id DESC LIMIT 1", -1,
                           &st, NULL) != SQLITE_OK)
        return db_fail(err, a->db, "prepare");
    int rc = sqlite3_step(st);
    int found = 0;
    if (rc == SQLITE_ROW) {
        found = 1;
        *id = sqlite3_column_int64(st, 0);
        const void *h = sqlite3_column_blob(st, 1);
        if (h && sqlite3_column_bytes(st, 1) == 32)
            memcpy(hash, h, 32);
        else
            memset(hash, 0xff, 32); /* never a real hash: the head will not match */
    } else if (rc != SQLITE_DONE) {
        sqlite3_finalize(st);
        return db_fail(err, a->db, "read the last entry");
    }
    sqlite3_finalize(st);
    return found;
}

/* ---- backend: transactions ---- */

static int exec(srv_audit *a, const char *sql, att_error *err)
{
    if (a->pg)
        return pg_sql(a, sql, 0, NULL, NULL, NULL, NULL, err);
    return sqlite3_exec(a->db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : db_fail(err, a->db, sql);
}

static void rollback(srv_audit *a)
{
    att_error ignored;
    exec(a, "ROLLBACK", &ignored);
}

/* A write transaction that no other appender (process or node) runs
 * beside: SQLite's write lock first (BEGIN IMMEDIATE), or PostgreSQL's
 * advisory lock (see pg_schema). */
static int begin_append(srv_audit *a, att_error *err)
{
    if (!a->pg)
        return exec(a, "BEGIN IMMEDIATE", err);
    if (exec(a, "BEGIN", err) < 0)
        return -ATT_ERR_INTERNAL;
    if (exec(a, "SELECT pg_advisory_xact_lock(" AUDIT_APPEND_LOCK ")", err) < 0) {
        rollback(a);
        return -ATT_ERR_INTERNAL;
    }
    return 0;
}

/* A read transaction with one snapshot for all its statements. */
static int begin_read(srv_audit *a, att_error *err)
{
    return exec(a, a->pg ? "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY" : "BEGIN", err);
}

/* ---- backend: writing an entry and its head ---- */

static int pg_store_entry(srv_audit *a, int64_t id, const srv_audit_entry *e, const char *action,
                          const char *room, const char *detail, const unsigned char hash[32],
                          const unsigned char mac[32], att_error *err)
{
    srv_pg_int_text id_t = srv_pg_int_text_of(id), at_t = srv_pg_int_text_of(e->at),
                    actor_id_t = srv_pg_int_text_of(e->actor_id);
    const char *row[8] = {id_t.text, at_t.text, e->actor, actor_id_t.text,
                          action,    room,      detail,   (const char *)hash};
    const int row_len[8] = {0, 0, 0, 0, 0, 0, 0, 32};
    const int row_fmt[8] = {0, 0, 0, 0, 0, 0, 0, 1};
    if (pg_sql(a,
               "INSERT INTO audit_log (id, at, actor, actor_id, action, room, detail, hash)"
               " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
               8, row, row_len, row_fmt, NULL, err) < 0)
        return -ATT_ERR_INTERNAL;
    const char *head[3] = {id_t.text, (const char *)hash, (const char *)mac};
    const int head_len[3] = {0, 32, 32};
    const int head_fmt[3] = {0, 1, 1};
    return pg_sql(a,
                  "INSERT INTO audit_head (one, id, hash, mac) VALUES (1, $1, $2, $3)"
                  " ON CONFLICT (one) DO UPDATE SET id = excluded.id,"
                  " hash = excluded.hash, mac = excluded.mac",
                  3, head, head_len, head_fmt, NULL, err);
}

static int store_entry(srv_audit *a, int64_t id, const srv_audit_entry *e, const char *action,
                       const char *room, const char *detail, const unsigned char hash[32],
                       const unsigned char mac[32], att_error *err)
{
    if (a->pg)
        return pg_store_entry(a, id, e, action, room, detail, hash, mac, err);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(a->db,
                           "INSERT INTO audit_log (id, at, actor, actor_id, action, room, detail, "
                           "hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                           -1, &st, NULL) != SQLITE_OK)
        return db_fail(err, a->db, "prepare");
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, e->at);
    sqlite3_bind_text(st, 3, e->actor, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, e->actor_id);
    sqlite3_bind_text(st, 5, action, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, room, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 7, detail, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 8, hash, 32, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return db_fail(err, a->db, "append");
    if (sqlite3_prepare_v2(a->db,
                           "INSERT INTO audit_head (one, id, hash, mac) VALUES (1, ?, ?, ?)"
                           " ON CONFLICT (one) DO UPDATE SET id = excluded.id,"
                           " hash = excluded.hash, mac = excluded.mac",
                           -1, &st, NULL) != SQLITE_OK)
        return db_fail(err, a->db, "prepare");
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_blob(st, 2, hash, 32, SQLITE_STATIC);
    sqlite3_bind_blob(st, 3, mac, 32, SQLITE_STATIC);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return db_fail(err, a->db, "move the head");
    return 0;
}

/* Inside the transaction: the new entry after the trusted head. */
static int append_locked(srv_audit *a, const srv_audit_entry *e, int64_t *id_out, att_error *err)
{
    int64_t head_id = 0, last_id = 0;
    unsigned char head_hash[32] = {0}, last_hash[32] = {0};
    int mac_ok = 0;
    int have_head = read_head(a, &head_id, head_hash, &mac_ok, err);
    if (have_head < 0)
        return have_head;
    int have_last = read_last(a, &last_id, last_hash, err);
    if (have_last < 0)
        return have_last;
    /* Appending signs a new head over the stored chain, so the stored
     * chain must be the one the old head signed: else an edit made since
     * would be laundered into a valid-looking log. */
    if (have_head != have_last || (have_head && !mac_ok) ||
        (have_head && (head_id != last_id || memcmp(head_hash, last_hash, 32) != 0)))
        return att_fail(err, ATT_ERR_INTERNAL,
                        "audit: the log's head does not match its entries (edited outside "
                        "attune?); nothing recorded; run attune audit");
    int64_t id = last_id + 1;
    const char *action = srv_audit_action_name(e->action);
    const char *room = e->room ? e->room : "";
    const char *detail = e->detail ? e->detail : "";
    unsigned char hash[32], mac[32];
    if (entry_hash(last_hash, id, e->at, e->actor_id, e->actor, action, room, detail, hash, err) <
            0 ||
        head_mac(a, id, hash, mac, err) < 0)
        return -ATT_ERR_INTERNAL;
    if (store_entry(a, id, e, action, room, detail, hash, mac, err) < 0)
        return -ATT_ERR_INTERNAL;
    if (id_out)
        *id_out = id;
    return 0;
}

/* The actor's latest entry of this action for this room at or after
 * since: 1 with its id, 0 for none. */
static int recent_entry(srv_audit *a, const srv_audit_entry *e, int64_t since, int64_t *id_out,
                        att_error *err)
{
    const char *room = e->room ? e->room : "";
    const char *action = srv_audit_action_name(e->action);
    if (a->pg) {
        srv_pg_int_text actor_id = srv_pg_int_text_of(e->actor_id), at = srv_pg_int_text_of(since);
        const char *params[5] = {room, e->actor, actor_id.text, action, at.text};
        PGresult *r = NULL;
        if (pg_sql(a,
                   "SELECT id FROM audit_log WHERE room = $1 AND actor = $2 AND actor_id = $3"
                   " AND action = $4 AND at >= $5 ORDER BY id DESC LIMIT 1",
                   5, params, NULL, NULL, &r, err) < 0)
            return -ATT_ERR_INTERNAL;
        int found = PQntuples(r) == 1;
        if (found && id_out)
            *id_out = srv_pg_int_at(r, 0, 0);
        PQclear(r);
        return found;
    }
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(a->db,
                           "SELECT id FROM audit_log WHERE room = ? AND actor = ? AND actor_id = ?"
                           " AND action = ? AND at >= ? ORDER BY id DESC LIMIT 1",
                           -1, &st, NULL) != SQLITE_OK)
        return db_fail(err, a->db, "prepare");
    sqlite3_bind_text(st, 1, room, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, e->actor, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, e->actor_id);
    sqlite3_bind_text(st, 4, action, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, since);
    int rc = sqlite3_step(st);
    int found = rc == SQLITE_ROW;
    if (found && id_out)
        *id_out = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return db_fail(err, a->db, "look for a recent entry");
    return found;
}

static int record(srv_audit *a, const srv_audit_entry *e, int64_t window_ms, int64_t *id_out,
                  att_error *err)
{
    int rc = entry_check(e, err);
    if (rc < 0)
        return rc;
    /* The appenders ordered first, so the server, other nodes and the
     * `attune` command appending at once cannot take the same next id. */
    if (begin_append(a, err) < 0)
        return -ATT_ERR_INTERNAL;
    int recent = window_ms > 0 ? recent_entry(a, e, e->at - window_ms, id_out, err) : 0;
    rc = recent < 0 ? recent : recent ? 0 : append_locked(a, e, id_out, err);
    /* A COMMIT lost with the connection (PostgreSQL) fails saying its
     * outcome is unknown: the entry may be stored; nothing retries it. */
    if (rc == 0 && exec(a, "COMMIT", err) == 0)
        return 0;
    rollback(a);
    return rc < 0 ? rc : -ATT_ERR_INTERNAL;
}

int srv_audit_record(srv_audit *a, const srv_audit_entry *e, int64_t *id_out, att_error *err)
{
    return record(a, e, 0, id_out, err);
}

int srv_audit_record_once(srv_audit *a, const srv_audit_entry *e, int64_t window_ms,
                          int64_t *id_out, att_error *err)
{
    return record(a, e, window_ms, id_out, err);
}

/* ---- backend: reading ---- */

static const char *text_col(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return t ? (const char *)t : "";
}

static void read_row(sqlite3_stmt *st, srv_audit_row *row)
{
    row->id = sqlite3_column_int64(st, 0);
    row->at = sqlite3_column_int64(st, 1);
    row->actor = text_col(st, 2);
    row->actor_id = sqlite3_column_int64(st, 3);
    row->action = text_col(st, 4);
    row->room = text_col(st, 5);
    row->detail = text_col(st, 6);
    const void *h = sqlite3_column_blob(st, 7);
    if (h && sqlite3_column_bytes(st, 7) == 32)
        memcpy(row->hash, h, 32);
    else
        memset(row->hash, 0, 32);
}

/* The walk in pages of PG_WALK_PAGE, each page starting past the last
 * row of the one before. */
static int pg_walk(srv_audit *a, const srv_audit_filter *f,
                   int (*fn)(const srv_audit_row *row, void *arg), void *arg, att_error *err)
{
    const srv_audit_filter none = {0};
    if (!f)
        f = &none;
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT id, at, actor, actor_id, action, room, detail, encode(hash, 'hex')"
             " FROM audit_log WHERE ($1::text IS NULL OR room = $1)"
             " AND ($2::text IS NULL OR actor = $2) AND ($3::bigint <= 0 OR actor_id = $3)"
             " AND ($4::bigint <= 0 OR id < $4) AND ($5::text IS NULL OR action = $5)"
             " AND id > $6::bigint ORDER BY id %s LIMIT $7::bigint",
             f->newest_first ? "DESC" : "ASC");
    int64_t before = f->before_id, after = f->after_id;
    int64_t left = f->limit > 0 ? f->limit : -1; /* -1: no limit */
    srv_pg_int_text actor_id = srv_pg_int_text_of(f->actor_id);
    for (;;) {
        int64_t page = left < 0 || left > PG_WALK_PAGE ? PG_WALK_PAGE : left;
        srv_pg_int_text before_t = srv_pg_int_text_of(before), after_t = srv_pg_int_text_of(after),
                        page_t = srv_pg_int_text_of(page);
        const char *params[7] = {f->room,   f->actor,     actor_id.text, before_t.text,
                                 f->action, after_t.text, page_t.text};
        PGresult *r = NULL;
        if (pg_sql(a, sql, 7, params, NULL, NULL, &r, err) < 0)
            return -ATT_ERR_INTERNAL;
        int n = PQntuples(r), stop = 0;
        for (int i = 0; !stop && i < n; i++) {
            srv_audit_row row;
            row.id = srv_pg_int_at(r, i, 0);
            row.at = srv_pg_int_at(r, i, 1);
            row.actor = PQgetvalue(r, i, 2);
            row.actor_id = srv_pg_int_at(r, i, 3);
            row.action = PQgetvalue(r, i, 4);
            row.room = PQgetvalue(r, i, 5);
            row.detail = PQgetvalue(r, i, 6);
            if (!pg_hash_at(r, i, 7, row.hash))
                memset(row.hash, 0, 32);
            stop = fn(&row, arg);
            if (f->newest_first)
                before = row.id;
            else
                after = row.id;
        }
        PQclear(r);
        if (stop)
            return stop;
        if (left > 0)
            left -= n;
        if (n < page || left == 0)
            return 0;
    }
}

int srv_audit_walk(srv_audit *a, const srv_audit_filter *f,
                   int (*fn)(const srv_audit_row *row, void *arg), void *arg, att_error *err)
{
    if (a->pg)
        return pg_walk(a, f, fn, arg, err);
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT id, at, actor, actor_id, action, room, detail, hash FROM audit_log"
             " WHERE (?1 IS NULL OR room = ?1) AND (?2 IS NULL OR actor = ?2)"
             " AND (?3 <= 0 OR actor_id = ?3) AND (?4 <= 0 OR id < ?4)"
             " AND (?6 IS NULL OR action = ?6) AND id > ?7"
             " ORDER BY id %s LIMIT ?5",
             f && f->newest_first ? "DESC" : "ASC");
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(a->db, sql, -1, &st, NULL) != SQLITE_OK)
        return db_fail(err, a->db, "prepare");
    if (f && f->room)
        sqlite3_bind_text(st, 1, f->room, -1, SQLITE_STATIC);
    if (f && f->actor)
        sqlite3_bind_text(st, 2, f->actor, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, f ? f->actor_id : 0);
    sqlite3_bind_int64(st, 4, f ? f->before_id : 0);
    sqlite3_bind_int64(st, 5, f && f->limit > 0 ? f->limit : -1);
    if (f && f->action)
        sqlite3_bind_text(st, 6, f->action, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 7, f ? f->after_id : 0);
    int rc, stop = 0;
    while (!stop && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        srv_audit_row row;
        read_row(st, &row);
        stop = fn(&row, arg);
    }
    if (!stop && rc != SQLITE_DONE) {
        db_fail(err, a->db, "walk");
        sqlite3_finalize(st);
        return -ATT_ERR_INTERNAL;
    }
    sqlite3_finalize(st);
    return stop;
}

typedef struct {
    srv_audit_check *out;
    unsigned char prev[32];
    int64_t expect_id;
    att_error *err;
    int failed;
} verify_ctx;

static void verify_bad(verify_ctx *v, int64_t id, const char *why)
{
    v->out->ok = 0;
    v->out->first_bad = id;
    snprintf(v->out->why, sizeof v->out->why, "%s", why);
}

static int verify_row(const srv_audit_row *row, void *arg)
{
    verify_ctx *v = arg;
    v->out->entries++;
    if (row->id != v->expect_id) {
        char why[160];
        if (row->id > v->expect_id)
            snprintf(why, sizeof why, "entry %lld is missing (the next one is %lld)",
                     (long long)v->expect_id, (long long)row->id);
        else
            snprintf(why, sizeof why, "entry %lld is out of order", (long long)row->id);
        verify_bad(v, v->expect_id, why);
        return 1;
    }
    unsigned char want[32];
    if (entry_hash(v->prev, row->id, row->at, row->actor_id, row->actor, row->action, row->room,
                   row->detail, want, v->err) < 0) {
        v->failed = 1;
        return 1;
    }
    if (memcmp(want, row->hash, 32) != 0) {
        char why[160];
        snprintf(why, sizeof why,
                 "entry %lld does not match its hash: it was edited, or one before it was",
                 (long long)row->id);
        verify_bad(v, row->id, why);
        return 1;
    }
    memcpy(v->prev, want, 32);
    v->expect_id++;
    return 0;
}

int srv_audit_verify(srv_audit *a, srv_audit_check *out, att_error *err)
{
    memset(out, 0, sizeof *out);
    out->ok = 1;
    verify_ctx v = {out, {0}, 1, err, 0};
    /* One read transaction, so a concurrent append cannot move the head
     * between the walk and the head's read. */
    if (begin_read(a, err) < 0)
        return -ATT_ERR_INTERNAL;
    int rc = srv_audit_walk(a, NULL, verify_row, &v, err);
    if (rc < 0 || v.failed) {
        rollback(a);
        return rc < 0 ? rc : -ATT_ERR_INTERNAL;
    }
    int mac_ok = 0;
    int have_head = read_head(a, &out->head_id, out->head_hash, &mac_ok, err);
    rollback(a);
    if (have_head < 0)
        return have_head;
    if (!out->ok)
        return 0;
    int64_t last = v.expect_id - 1;
    if (!have_head && last > 0)
        verify_bad(&v, 0, "the head is missing");
    else if (have_head && !mac_ok)
        verify_bad(&v, 0, "the head's MAC does not check: it was written without the audit key");
    else if (have_head && out->head_id > last)
        verify_bad(&v, last + 1, "entries at the end were deleted");
    else if (have_head && out->head_id < last)
        verify_bad(&v, out->head_id + 1, "entries were added after the head");
    else if (have_head && memcmp(out->head_hash, v.prev, 32) != 0)
        verify_bad(&v, 0, "the head's hash does not match the last entry");
    return 0;
}

void srv_audit_cli_actor(char out[SRV_AUDIT_ACTOR_MAX + 1])
{
    uid_t uid = geteuid();
    struct passwd pw, *found = NULL;
    char buf[1024];
    if (getpwuid_r(uid, &pw, buf, sizeof buf, &found) == 0 && found &&
        word_valid(found->pw_name, 1, SRV_AUDIT_ACTOR_MAX - 4))
        snprintf(out, SRV_AUDIT_ACTOR_MAX + 1, "cli:%s", found->pw_name);
    else
        snprintf(out, SRV_AUDIT_ACTOR_MAX + 1, "cli:uid%lu", (unsigned long)uid);
}
