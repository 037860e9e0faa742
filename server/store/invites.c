/* invites.c - invitation records in SQLite or PostgreSQL (see invites.h).
 * Every public function that touches rows dispatches to its pg_ twin when
 * the handle was opened on PostgreSQL. */
#include "invites.h"
#include "b64url.h"
#include "pg.h"
#include "random.h"
#include "schema.h"
#include "attune/names.h"

#include <openssl/evp.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct srv_invites {
    sqlite3 *db;        /* the SQLite backend, or NULL */
    sqlite3_stmt *find; /* by nonce hash: every hello, so prepared once */
    srv_pg *pg;         /* the PostgreSQL backend, or NULL */
};

/* The invites' migrations (schema.h): steps[i] takes version i to i + 1. */
static const char *const schema_steps[] = {
    "CREATE TABLE IF NOT EXISTS invites ("
    "  id INTEGER PRIMARY KEY,"
    "  nonce_hash BLOB NOT NULL UNIQUE," /* SHA-256 of the token's nonce */
    "  room TEXT NOT NULL,"
    "  role TEXT NOT NULL,"
    "  issued_at INTEGER NOT NULL,"  /* ms */
    "  expires_at INTEGER NOT NULL," /* ms */
    "  issued_by TEXT NOT NULL,"
    "  revoked_at INTEGER,"   /* ms; NULL while valid */
    "  revoked_rev INTEGER);" /* order of revocation, for the server's sweep */
    "CREATE INDEX IF NOT EXISTS invites_by_room ON invites (room, role);"
    "CREATE INDEX IF NOT EXISTS invites_by_revoked_rev ON invites (revoked_rev)"
    "  WHERE revoked_rev IS NOT NULL;",
    /* 1 -> 2: supervisors a room's therapist invited to observe it, by
     * their immutable account id (accounts.h), so a re-added name inherits
     * nothing. */
    "CREATE TABLE room_observers ("
    "  room TEXT NOT NULL,"
    "  account_id INTEGER NOT NULL,"
    "  added_at INTEGER NOT NULL," /* ms */
    "  PRIMARY KEY (room, account_id));"
    "CREATE INDEX room_observers_by_account ON room_observers (account_id);",
};

static int db_fail(att_error *err, sqlite3 *db, const char *what)
{
    return att_fail(err, ATT_ERR_INTERNAL, "invites: %s: %s", what, sqlite3_errmsg(db));
}

int srv_invites_open(const char *dir, srv_invites **out, att_error *err)
{
    char path[4096];
    if (snprintf(path, sizeof path, "%s/attune.db", dir) >= (int)sizeof path)
        return att_fail(err, ATT_ERR_INTERNAL, "invites: path too long");
    srv_invites *inv = calloc(1, sizeof *inv);
    if (!inv)
        return att_fail(err, ATT_ERR_INTERNAL, "invites: out of memory");
    int rc = sqlite3_open_v2(
        path, &inv->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        att_fail(err, ATT_ERR_INTERNAL, "invites: cannot open %s: %s", path,
                 inv->db ? sqlite3_errmsg(inv->db) : sqlite3_errstr(rc));
        srv_invites_close(inv);
        return -ATT_ERR_INTERNAL;
    }
    sqlite3_busy_timeout(inv->db, 10000);
    if (sqlite3_exec(inv->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;", NULL, NULL,
                     NULL) != SQLITE_OK) {
        db_fail(err, inv->db, "pragmas");
        srv_invites_close(inv);
        return -ATT_ERR_INTERNAL;
    }
    rc = srv_schema_migrate(inv->db, "invites", schema_steps,
                            (int)(sizeof schema_steps / sizeof schema_steps[0]), err);
    if (rc < 0) {
        srv_invites_close(inv);
        return rc;
    }
    *out = inv;
    return 0;
}

void srv_invites_close(srv_invites *inv)
{
    if (!inv)
        return;
    sqlite3_finalize(inv->find);
    sqlite3_close(inv->db);
    srv_pg_close(inv->pg);
    free(inv);
}

int srv_invites_check_ttl(int64_t ttl_s, att_error *err)
{
    if (ttl_s < 1 || ttl_s > SRV_INVITE_TTL_MAX_S)
        return att_fail(err, ATT_ERR_BAD_MESSAGE,
                        "an invitation lives 1..%d seconds (30 days) at most; %lld is out of range",
                        SRV_INVITE_TTL_MAX_S, (long long)ttl_s);
    return 0;
}

static int nonce_hash(const unsigned char nonce[SRV_TOKEN_NONCE_BYTES], unsigned char out[32],
                      att_error *err)
{
    unsigned int len = 0;
    if (EVP_Digest(nonce, SRV_TOKEN_NONCE_BYTES, out, &len, EVP_sha256(), NULL) != 1 || len != 32)
        return att_fail(err, ATT_ERR_INTERNAL, "invites: SHA-256 failed");
    return 0;
}

/* ---- PostgreSQL backend (srv_invites_open_pg). Blocking statements on
 * the caller's thread; every parameter is text, the nonce hash as hex. */

static const char pg_schema[] =
    /* No "already exists, skipping" notices on every start after the first. */
    "SET LOCAL client_min_messages = warning;"
    "CREATE TABLE IF NOT EXISTS invites ("
    "  id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
    "  nonce_hash BYTEA NOT NULL UNIQUE," /* SHA-256 of the token's nonce */
    "  room TEXT NOT NULL,"
    "  role TEXT NOT NULL,"
    "  issued_at BIGINT NOT NULL,"  /* ms */
    "  expires_at BIGINT NOT NULL," /* ms */
    "  issued_by TEXT NOT NULL,"
    "  revoked_at BIGINT,"   /* ms; NULL while valid */
    "  revoked_rev BIGINT);" /* order of revocation, for every node's sweep */
    "CREATE INDEX IF NOT EXISTS invites_by_room ON invites (room, role);"
    "CREATE INDEX IF NOT EXISTS invites_by_revoked_rev ON invites (revoked_rev)"
    "  WHERE revoked_rev IS NOT NULL;"
    /* The revocation counter: one row, whose lock orders revocations, so a
     * higher number always commits after a lower one (a sequence would
     * not: a sweep that saw 6 could miss a 5 committed later). */
    "CREATE TABLE IF NOT EXISTS invite_revision ("
    "  id INTEGER PRIMARY KEY CHECK (id = 1),"
    "  rev BIGINT NOT NULL);"
    "INSERT INTO invite_revision VALUES (1, 0) ON CONFLICT DO NOTHING;"
    "CREATE TABLE IF NOT EXISTS room_observers ("
    "  room TEXT NOT NULL,"
    "  account_id BIGINT NOT NULL,"
    "  added_at BIGINT NOT NULL,"                      /* ms */
    "  added_seq BIGINT GENERATED ALWAYS AS IDENTITY," /* the order added, within one ms */
    "  PRIMARY KEY (room, account_id));"
    "CREATE INDEX IF NOT EXISTS room_observers_by_account ON room_observers (account_id);";

int srv_invites_open_pg(const char *uri, srv_invites **out, att_error *err)
{
    *out = NULL;
    srv_invites *inv = calloc(1, sizeof *inv);
    if (!inv)
        return att_fail(err, ATT_ERR_INTERNAL, "invites: out of memory");
    int rc = srv_pg_connect(uri, "attune-invites", &inv->pg, err);
    if (rc == 0)
        rc = srv_pg_exec_script(inv->pg, pg_schema, err);
    if (rc < 0) {
        srv_invites_close(inv);
        return rc;
    }
    *out = inv;
    return 0;
}

static int pg_run(srv_invites *inv, const char *sql, int n, const char *const *params,
                  PGresult **out, att_error *err)
{
    return srv_pg_exec(inv->pg, sql, n, params, NULL, NULL, out, err);
}

/* A statement whose answer is how many rows it changed. */
static int pg_changes(srv_invites *inv, const char *sql, int n, const char *const *params,
                      att_error *err)
{
    PGresult *res = NULL;
    int rc = pg_run(inv, sql, n, params, &res, err);
    if (rc == 0)
        rc = (int)strtol(PQcmdTuples(res), NULL, 10);
    PQclear(res);
    return rc;
}

static int pg_insert(srv_invites *inv, const unsigned char hash[32], const char *room,
                     att_role role, int64_t now_ms, int64_t expires_ms, const char *issued_by,
                     int64_t *id_out, att_error *err)
{
    char hex[65];
    srv_hex_encode(hash, 32, hex);
    srv_pg_int_text issued = srv_pg_int_text_of(now_ms), expires = srv_pg_int_text_of(expires_ms);
    const char *params[6] = {hex, room, att_role_name(role), issued.text, expires.text, issued_by};
    PGresult *res = NULL;
    int rc = pg_run(inv,
                    "INSERT INTO invites (nonce_hash, room, role, issued_at, expires_at,"
                    " issued_by) VALUES (decode($1, 'hex'), $2, $3, $4, $5, $6) RETURNING id",
                    6, params, &res, err);
    if (rc == 0 && id_out)
        *id_out = srv_pg_int_at(res, 0, 0);
    PQclear(res);
    return rc;
}

static int pg_find(srv_invites *inv, const unsigned char hash[32], srv_invite_record *out,
                   att_error *err)
{
    char hex[65];
    srv_hex_encode(hash, 32, hex);
    const char *params[1] = {hex};
    PGresult *res = NULL;
    int rc = pg_run(inv,
                    "SELECT id, room, role, issued_at, expires_at, issued_by,"
                    " COALESCE(revoked_at, 0) FROM invites WHERE nonce_hash = decode($1, 'hex')",
                    1, params, &res, err);
    if (rc == 0 && PQntuples(res) == 0)
        rc = att_fail(err, ATT_ERR_NOT_FOUND, "no invitation record");
    else if (rc == 0) {
        memset(out, 0, sizeof *out);
        out->id = srv_pg_int_at(res, 0, 0);
        snprintf(out->room, sizeof out->room, "%s", PQgetvalue(res, 0, 1));
        out->role = att_role_from_name(PQgetvalue(res, 0, 2));
        out->issued_at = srv_pg_int_at(res, 0, 3);
        out->expires_at = srv_pg_int_at(res, 0, 4);
        snprintf(out->issued_by, sizeof out->issued_by, "%s", PQgetvalue(res, 0, 5));
        out->revoked_at = srv_pg_int_at(res, 0, 6);
    }
    PQclear(res);
    return rc;
}

/* Marks rows revoked with the next revocation number, in one statement:
 * the counter row's lock (taken before any invite row's) serializes
 * revokers on every node until their commit. */
#define PG_REVOKE_SET                                                                              \
    "WITH next AS (UPDATE invite_revision SET rev = rev + 1 WHERE id = 1 RETURNING rev) "          \
    "UPDATE invites SET revoked_at = $1, revoked_rev = (SELECT rev FROM next)"

static int pg_revoke_role(srv_invites *inv, const char *room, att_role role, int64_t now_ms,
                          att_error *err)
{
    srv_pg_int_text now = srv_pg_int_text_of(now_ms);
    const char *params[3] = {now.text, room, att_role_name(role)};
    return pg_changes(inv, PG_REVOKE_SET " WHERE room = $2 AND role = $3 AND revoked_at IS NULL", 3,
                      params, err);
}

static int pg_revoke_id(srv_invites *inv, int64_t id, int64_t now_ms, att_error *err)
{
    srv_pg_int_text now = srv_pg_int_text_of(now_ms), idt = srv_pg_int_text_of(id);
    const char *params[2] = {now.text, idt.text};
    int rc = pg_changes(inv, PG_REVOKE_SET " WHERE id = $2 AND revoked_at IS NULL", 2, params, err);
    return rc < 0 ? rc : rc > 0;
}

static int pg_list(srv_invites *inv, const char *room,
                   int (*fn)(const srv_invite_record *rec, void *arg), void *arg, att_error *err)
{
    const char *params[1] = {room};
    PGresult *res = NULL;
    int rc = pg_run(inv,
                    "SELECT id, role, issued_at, expires_at, issued_by,"
                    " COALESCE(revoked_at, 0) FROM invites WHERE room = $1 ORDER BY id",
                    1, params, &res, err);
    for (int i = 0; rc == 0 && i < PQntuples(res); i++) {
        srv_invite_record rec;
        memset(&rec, 0, sizeof rec);
        rec.id = srv_pg_int_at(res, i, 0);
        snprintf(rec.room, sizeof rec.room, "%s", room);
        rec.role = att_role_from_name(PQgetvalue(res, i, 1));
        rec.issued_at = srv_pg_int_at(res, i, 2);
        rec.expires_at = srv_pg_int_at(res, i, 3);
        snprintf(rec.issued_by, sizeof rec.issued_by, "%s", PQgetvalue(res, i, 4));
        rec.revoked_at = srv_pg_int_at(res, i, 5);
        rc = fn(&rec, arg);
    }
    PQclear(res);
    return rc;
}

static int pg_revision(srv_invites *inv, int64_t *rev_out, att_error *err)
{
    PGresult *res = NULL;
    int rc = pg_run(inv, "SELECT COALESCE(MAX(revoked_rev), 0) FROM invites", 0, NULL, &res, err);
    if (rc == 0)
        *rev_out = srv_pg_int_at(res, 0, 0);
    PQclear(res);
    return rc;
}

static int pg_revoked_since(srv_invites *inv, int64_t after_rev, int (*fn)(int64_t id, void *arg),
                            void *arg, int64_t *rev_out, att_error *err)
{
    srv_pg_int_text after = srv_pg_int_text_of(after_rev);
    const char *params[1] = {after.text};
    PGresult *res = NULL;
    int rc = pg_run(inv,
                    "SELECT id, revoked_rev FROM invites WHERE revoked_rev > $1"
                    " ORDER BY revoked_rev",
                    1, params, &res, err);
    int64_t rev = after_rev;
    for (int i = 0; rc == 0 && i < PQntuples(res); i++) {
        rev = srv_pg_int_at(res, i, 1);
        fn(srv_pg_int_at(res, i, 0), arg);
    }
    PQclear(res);
    if (rc == 0)
        *rev_out = rev;
    return rc;
}

/* The observers' statements: $1 room, $2 account id, $3 (when n is 3) now. */
static int pg_observer_change(srv_invites *inv, const char *sql, int n, const char *room,
                              int64_t account_id, int64_t now_ms, att_error *err)
{
    srv_pg_int_text id = srv_pg_int_text_of(account_id), now = srv_pg_int_text_of(now_ms);
    const char *params[3] = {room, id.text, now.text};
    return pg_changes(inv, sql, n, params, err);
}

static int pg_is_observer(srv_invites *inv, const char *room, int64_t account_id, att_error *err)
{
    srv_pg_int_text id = srv_pg_int_text_of(account_id);
    const char *params[2] = {room, id.text};
    PGresult *res = NULL;
    int rc = pg_run(inv, "SELECT 1 FROM room_observers WHERE room = $1 AND account_id = $2", 2,
                    params, &res, err);
    if (rc == 0)
        rc = PQntuples(res) > 0;
    PQclear(res);
    return rc;
}

static int pg_observers(srv_invites *inv, const char *room,
                        int (*fn)(int64_t account_id, void *arg), void *arg, att_error *err)
{
    const char *params[1] = {room};
    PGresult *res = NULL;
    int rc = pg_run(inv,
                    "SELECT account_id FROM room_observers WHERE room = $1"
                    " ORDER BY added_at, added_seq",
                    1, params, &res, err);
    for (int i = 0; rc == 0 && i < PQntuples(res); i++)
        rc = fn(srv_pg_int_at(res, i, 0), arg);
    PQclear(res);
    return rc;
}

static int pg_observed_rooms(srv_invites *inv, int64_t account_id,
                             int (*fn)(const char *room, void *arg), void *arg, att_error *err)
{
    srv_pg_int_text id = srv_pg_int_text_of(account_id);
    const char *params[1] = {id.text};
    PGresult *res = NULL;
    int rc = pg_run(inv,
                    "SELECT room FROM room_observers WHERE account_id = $1"
                    " ORDER BY added_at DESC, added_seq DESC",
                    1, params, &res, err);
    for (int i = 0; rc == 0 && i < PQntuples(res); i++)
        rc = fn(PQgetvalue(res, i, 0), arg);
    PQclear(res);
    return rc;
}

int srv_invites_issue(srv_invites *inv, const srv_token_key *key, const char *room, att_role role,
                      int64_t ttl_s, const char *issued_by, int64_t now_ms, char *token_out,
                      size_t token_size, int64_t *id_out, att_error *err)
{
    if (srv_invites_check_ttl(ttl_s, err) < 0)
        return -ATT_ERR_BAD_MESSAGE;
    if (strlen(issued_by) > SRV_INVITE_ISSUER_MAX)
        return att_fail(err, ATT_ERR_BAD_MESSAGE, "invites: issuer name too long");
    unsigned char nonce[SRV_TOKEN_NONCE_BYTES], hash[32];
    if (srv_random_bytes(nonce, sizeof nonce, err) < 0 || nonce_hash(nonce, hash, err) < 0)
        return -ATT_ERR_INTERNAL;
    int64_t expires_s = now_ms / 1000 + ttl_s;
    int rc = srv_token_issue(key, room, role, expires_s, nonce, token_out, token_size, err);
    if (rc < 0)
        return rc;
    if (inv->pg) {
        rc = pg_insert(inv, hash, room, role, now_ms, expires_s * 1000, issued_by, id_out, err);
        if (rc < 0)
            token_out[0] = '\0'; /* never hand out a token without its record */
        return rc;
    }
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(inv->db,
                           "INSERT INTO invites (nonce_hash, room, role, issued_at, expires_at,"
                           " issued_by) VALUES (?, ?, ?, ?, ?, ?)",
                           -1, &st, NULL) != SQLITE_OK)
        return db_fail(err, inv->db, "prepare");
    sqlite3_bind_blob(st, 1, hash, sizeof hash, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, room, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, att_role_name(role), -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, now_ms);
    sqlite3_bind_int64(st, 5, expires_s * 1000);
    sqlite3_bind_text(st, 6, issued_by, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        token_out[0] = '\0'; /* never hand out a token without its record */
        return db_fail(err, inv->db, "insert");
    }
    if (id_out)
        *id_out = sqlite3_last_insert_rowid(inv->db);
    return 0;
}

/* The record with this nonce, or not_found. */
static int find_by_nonce(srv_invites *inv, const unsigned char nonce[SRV_TOKEN_NONCE_BYTES],
                         srv_invite_record *out, att_error *err)
{
    unsigned char hash[32];
    if (nonce_hash(nonce, hash, err) < 0)
        return -ATT_ERR_INTERNAL;
    if (inv->pg)
        return pg_find(inv, hash, out, err);
    if (!inv->find &&
        sqlite3_prepare_v3(inv->db,
                           "SELECT id, room, role, issued_at, expires_at, issued_by,"
                           " COALESCE(revoked_at, 0) FROM invites WHERE nonce_hash = ?",
                           -1, SQLITE_PREPARE_PERSISTENT, &inv->find, NULL) != SQLITE_OK)
        return db_fail(err, inv->db, "prepare");
    sqlite3_stmt *st = inv->find;
    sqlite3_bind_blob(st, 1, hash, sizeof hash, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        memset(out, 0, sizeof *out);
        out->id = sqlite3_column_int64(st, 0);
        snprintf(out->room, sizeof out->room, "%s", (const char *)sqlite3_column_text(st, 1));
        out->role = att_role_from_name((const char *)sqlite3_column_text(st, 2));
        out->issued_at = sqlite3_column_int64(st, 3);
        out->expires_at = sqlite3_column_int64(st, 4);
        snprintf(out->issued_by, sizeof out->issued_by, "%s",
                 (const char *)sqlite3_column_text(st, 5));
        out->revoked_at = sqlite3_column_int64(st, 6);
    }
    sqlite3_reset(st); /* ends the read; the statement stays for the next hello */
    sqlite3_clear_bindings(st);
    if (rc == SQLITE_ROW)
        return 0;
    if (rc == SQLITE_DONE)
        return att_fail(err, ATT_ERR_NOT_FOUND, "no invitation record");
    return db_fail(err, inv->db, "select");
}

int srv_invites_verify(srv_invites *inv, const srv_token_key *key, const char *token,
                       int64_t now_ms, srv_token_claims *claims, int64_t *id_out, att_error *err)
{
    int rc = srv_token_verify(key, token, now_ms / 1000, claims, err);
    if (rc < 0)
        return rc;
    srv_invite_record rec;
    rc = find_by_nonce(inv, claims->nonce, &rec, err);
    if (rc == -ATT_ERR_NOT_FOUND)
        return att_fail(err, ATT_ERR_BAD_TOKEN, "token has no invitation record");
    if (rc < 0)
        return rc; /* the records could not be read: no verdict on the link */
    if (strcmp(rec.room, claims->room) != 0 || rec.role != claims->role)
        return att_fail(err, ATT_ERR_BAD_TOKEN, "token does not match its record");
    if (rec.revoked_at)
        return att_fail(err, ATT_ERR_BAD_TOKEN, "token revoked");
    if (rec.expires_at <= now_ms)
        return att_fail(err, ATT_ERR_BAD_TOKEN, "token expired");
    *id_out = rec.id;
    return 0;
}

/* Marks rows revoked with the next revocation number, all in one statement
 * (SQLite runs it under the write lock, so numbers never repeat across
 * processes). */
#define REVOKE_SET                                                                                 \
    "UPDATE invites SET revoked_at = ?1,"                                                          \
    " revoked_rev = (SELECT COALESCE(MAX(revoked_rev), 0) + 1 FROM invites)"

int srv_invites_revoke_role(srv_invites *inv, const char *room, att_role role, int64_t now_ms,
                            att_error *err)
{
    if (inv->pg)
        return pg_revoke_role(inv, room, role, now_ms, err);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(inv->db,
                           REVOKE_SET " WHERE room = ?2 AND role = ?3 AND revoked_at IS NULL", -1,
                           &st, NULL) != SQLITE_OK)
        return db_fail(err, inv->db, "prepare");
    sqlite3_bind_int64(st, 1, now_ms);
    sqlite3_bind_text(st, 2, room, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, att_role_name(role), -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return db_fail(err, inv->db, "revoke");
    return sqlite3_changes(inv->db);
}

int srv_invites_revoke_token(srv_invites *inv, const srv_token_key *key, const char *token,
                             int64_t now_ms, srv_token_claims *claims, att_error *err)
{
    /* Expiry does not matter here: revoking an expired link is harmless, so
     * the MAC is checked as of the epoch. */
    int rc = srv_token_verify(key, token, 0, claims, err);
    if (rc < 0)
        return rc;
    srv_invite_record rec;
    if ((rc = find_by_nonce(inv, claims->nonce, &rec, err)) < 0)
        return rc;
    if (rec.revoked_at)
        return 0;
    if (inv->pg)
        return pg_revoke_id(inv, rec.id, now_ms, err);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(inv->db, REVOKE_SET " WHERE id = ?2 AND revoked_at IS NULL", -1, &st,
                           NULL) != SQLITE_OK)
        return db_fail(err, inv->db, "prepare");
    sqlite3_bind_int64(st, 1, now_ms);
    sqlite3_bind_int64(st, 2, rec.id);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return db_fail(err, inv->db, "revoke");
    return sqlite3_changes(inv->db) > 0;
}

int srv_invites_list(srv_invites *inv, const char *room,
                     int (*fn)(const srv_invite_record *rec, void *arg), void *arg, att_error *err)
{
    if (inv->pg)
        return pg_list(inv, room, fn, arg, err);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(inv->db,
                           "SELECT id, role, issued_at, expires_at, issued_by,"
                           " COALESCE(revoked_at, 0) FROM invites WHERE room = ? ORDER BY id",
                           -1, &st, NULL) != SQLITE_OK)
        return db_fail(err, inv->db, "prepare");
    sqlite3_bind_text(st, 1, room, -1, SQLITE_STATIC);
    int rc, stop = 0;
    while (!stop && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        srv_invite_record rec;
        memset(&rec, 0, sizeof rec);
        rec.id = sqlite3_column_int64(st, 0);
        snprintf(rec.room, sizeof rec.room, "%s", room);
        rec.role = att_role_from_name((const char *)sqlite3_column_text(st, 1));
        rec.issued_at = sqlite3_column_int64(st, 2);
        rec.expires_at = sqlite3_column_int64(st, 3);
        snprintf(rec.issued_by, sizeof rec.issued_by, "%s",
                 (const char *)sqlite3_column_text(st, 4));
        rec.revoked_at = sqlite3_column_int64(st, 5);
        stop = fn(&rec, arg);
    }
    sqlite3_finalize(st);
    if (stop)
        return stop;
    return rc == SQLITE_DONE ? 0 : db_fail(err, inv->db, "list");
}

int srv_invites_revision(srv_invites *inv, int64_t *rev_out, att_error *err)
{
    if (inv->pg)
        return pg_revision(inv, rev_out, err);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(inv->db, "SELECT COALESCE(MAX(revoked_rev), 0) FROM invites", -1, &st,
                           NULL) != SQLITE_OK)
        return db_fail(err, inv->db, "prepare");
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *rev_out = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 0 : db_fail(err, inv->db, "revision");
}

int srv_invites_revoked_since(srv_invites *inv, int64_t after_rev, int (*fn)(int64_t id, void *arg),
                              void *arg, int64_t *rev_out, att_error *err)
{
    if (inv->pg)
        return pg_revoked_since(inv, after_rev, fn, arg, rev_out, err);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(inv->db,
                           "SELECT id, revoked_rev FROM invites WHERE revoked_rev > ?"
                           " ORDER BY revoked_rev",
                           -1, &st, NULL) != SQLITE_OK)
        return db_fail(err, inv->db, "prepare");
    sqlite3_bind_int64(st, 1, after_rev);
    int64_t rev = after_rev;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        rev = sqlite3_column_int64(st, 1);
        fn(sqlite3_column_int64(st, 0), arg);
    }
    sqlite3_finalize(st);
    *rev_out = rev;
    return rc == SQLITE_DONE ? 0 : db_fail(err, inv->db, "revoked since");
}

static int exec_bound(srv_invites *inv, const char *sql, const char *room, int64_t account_id,
                      int64_t now_ms, att_error *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(inv->db, sql, -1, &st, NULL) != SQLITE_OK)
        return db_fail(err, inv->db, "prepare");
    sqlite3_bind_text(st, 1, room, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, account_id);
    if (sqlite3_bind_parameter_count(st) >= 3)
        sqlite3_bind_int64(st, 3, now_ms);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return db_fail(err, inv->db, "observers");
    return sqlite3_changes(inv->db);
}

int srv_invites_add_observer(srv_invites *inv, const char *room, int64_t account_id, int64_t now_ms,
                             att_error *err)
{
    if (inv->pg)
        return pg_observer_change(inv,
                                  "INSERT INTO room_observers (room, account_id, added_at)"
                                  " VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                                  3, room, account_id, now_ms, err);
    return exec_bound(inv,
                      "INSERT INTO room_observers (room, account_id, added_at) VALUES (?1, ?2, ?3)"
                      " ON CONFLICT DO NOTHING",
                      room, account_id, now_ms, err);
}

int srv_invites_remove_observer(srv_invites *inv, const char *room, int64_t account_id,
                                att_error *err)
{
    if (inv->pg)
        return pg_observer_change(inv,
                                  "DELETE FROM room_observers WHERE room = $1 AND account_id = $2",
                                  2, room, account_id, 0, err);
    return exec_bound(inv, "DELETE FROM room_observers WHERE room = ?1 AND account_id = ?2", room,
                      account_id, 0, err);
}

int srv_invites_is_observer(srv_invites *inv, const char *room, int64_t account_id, att_error *err)
{
    if (inv->pg)
        return pg_is_observer(inv, room, account_id, err);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(inv->db,
                           "SELECT 1 FROM room_observers WHERE room = ? AND account_id = ?", -1,
                           &st, NULL) != SQLITE_OK)
        return db_fail(err, inv->db, "prepare");
    sqlite3_bind_text(st, 1, room, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, account_id);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc == SQLITE_ROW)
        return 1;
    return rc == SQLITE_DONE ? 0 : db_fail(err, inv->db, "observer");
}

int srv_invites_observers(srv_invites *inv, const char *room,
                          int (*fn)(int64_t account_id, void *arg), void *arg, att_error *err)
{
    if (inv->pg)
        return pg_observers(inv, room, fn, arg, err);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(inv->db,
                           "SELECT account_id FROM room_observers WHERE room = ? ORDER BY added_at",
                           -1, &st, NULL) != SQLITE_OK)
        return db_fail(err, inv->db, "prepare");
    sqlite3_bind_text(st, 1, room, -1, SQLITE_STATIC);
    int rc, stop = 0;
    while (!stop && (rc = sqlite3_step(st)) == SQLITE_ROW)
        stop = fn(sqlite3_column_int64(st, 0), arg);
    sqlite3_finalize(st);
    if (stop)
        return stop;
    return rc == SQLITE_DONE ? 0 : db_fail(err, inv->db, "observers");
}

int srv_invites_observed_rooms(srv_invites *inv, int64_t account_id,
                               int (*fn)(const char *room, void *arg), void *arg, att_error *err)
{
    if (inv->pg)
        return pg_observed_rooms(inv, account_id, fn, arg, err);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(inv->db,
                           "SELECT room FROM room_observers WHERE account_id = ?"
                           " ORDER BY added_at DESC",
                           -1, &st, NULL) != SQLITE_OK)
        return db_fail(err, inv->db, "prepare");
    sqlite3_bind_int64(st, 1, account_id);
    int rc, stop = 0;
    while (!stop && (rc = sqlite3_step(st)) == SQLITE_ROW)
        stop = fn((const char *)sqlite3_column_text(st, 0), arg);
    sqlite3_finalize(st);
    if (stop)
        return stop;
    return rc == SQLITE_DONE ? 0 : db_fail(err, inv->db, "observed rooms");
}
