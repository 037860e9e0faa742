/* invites.c - invitation records in SQLite (see invites.h). */
#include "invites.h"
#include "random.h"
#include "schema.h"
#include "attune/names.h"

#include <openssl/evp.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct srv_invites {
    sqlite3 *db;
    sqlite3_stmt *find; /* by nonce hash: every hello, so prepared once */
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
        return att_fail(err, ATT_ERR_BAD_TOKEN, "%s", err->message);
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
    return exec_bound(inv,
                      "INSERT INTO room_observers (room, account_id, added_at) VALUES (?1, ?2, ?3)"
                      " ON CONFLICT DO NOTHING",
                      room, account_id, now_ms, err);
}

int srv_invites_remove_observer(srv_invites *inv, const char *room, int64_t account_id,
                                att_error *err)
{
    return exec_bound(inv, "DELETE FROM room_observers WHERE room = ?1 AND account_id = ?2", room,
                      account_id, 0, err);
}

int srv_invites_is_observer(srv_invites *inv, const char *room, int64_t account_id, att_error *err)
{
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
