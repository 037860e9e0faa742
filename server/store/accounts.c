/* accounts.c - staff accounts and room ownership in SQLite or PostgreSQL
 * (see accounts.h). Every public function that touches rows dispatches to
 * its pg_ twin when the handle was opened on PostgreSQL. */
#include "accounts.h"
#include "clock.h"
#include "b64url.h"
#include "pg.h"
#include "random.h"
#include "schema.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define SCRYPT_LOG2_N 15
#define SCRYPT_R 8
#define SCRYPT_P 1
#define SALT_BYTES 16
#define HASH_BYTES 32
/* scrypt needs 128 * N * r * p bytes (32 MiB here) plus a little; OpenSSL's
 * default cap (32 MB) is just too small for these parameters. */
#define SCRYPT_MAXMEM (64u * 1024 * 1024)

struct srv_accounts {
    sqlite3 *db; /* the SQLite backend, or NULL */
    srv_pg *pg;  /* the PostgreSQL backend, or NULL */
};

/* The accounts' migrations (schema.h): steps[i] takes version i to i + 1. */
static const char *const schema_steps[] = {
    "CREATE TABLE IF NOT EXISTS therapists ("
    "  name TEXT PRIMARY KEY,"
    "  salt BLOB NOT NULL,"
    "  hash BLOB NOT NULL,"
    "  scrypt_log2_n INTEGER NOT NULL,"
    "  scrypt_r INTEGER NOT NULL,"
    "  scrypt_p INTEGER NOT NULL,"
    "  created_at INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS room_owners ("
    "  room TEXT PRIMARY KEY,"
    "  owner TEXT NOT NULL);"
    "CREATE INDEX IF NOT EXISTS room_owners_by_owner"
    "  ON room_owners (owner);",
    /* 1 -> 2: immutable ids (AUTOINCREMENT: never reused), a kind and a
     * password generation; rooms owned by id. A name-keyed owner row whose
     * name has no account stays unowned, its old name kept in
     * former_owner. */
    "CREATE TABLE accounts ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  name TEXT NOT NULL UNIQUE,"
    "  kind TEXT NOT NULL DEFAULT 'therapist' CHECK (kind IN ('therapist', 'supervisor')),"
    "  salt BLOB NOT NULL,"
    "  hash BLOB NOT NULL,"
    "  scrypt_log2_n INTEGER NOT NULL,"
    "  scrypt_r INTEGER NOT NULL,"
    "  scrypt_p INTEGER NOT NULL,"
    "  password_gen INTEGER NOT NULL DEFAULT 1,"
    "  created_at INTEGER NOT NULL);"
    "INSERT INTO accounts (name, salt, hash, scrypt_log2_n, scrypt_r, scrypt_p, created_at)"
    "  SELECT name, salt, hash, scrypt_log2_n, scrypt_r, scrypt_p, created_at"
    "  FROM therapists ORDER BY created_at, name;"
    "DROP TABLE therapists;"
    "CREATE TABLE room_owners_v2 ("
    "  room TEXT PRIMARY KEY,"
    "  account_id INTEGER,"
    "  former_owner TEXT);"
    "INSERT INTO room_owners_v2 (room, account_id, former_owner)"
    "  SELECT o.room, a.id, CASE WHEN a.id IS NULL THEN o.owner END"
    "  FROM room_owners o LEFT JOIN accounts a ON a.name = o.owner;"
    "DROP TABLE room_owners;"
    "ALTER TABLE room_owners_v2 RENAME TO room_owners;"
    "CREATE INDEX room_owners_by_account ON room_owners (account_id);",
};

static int db_fail(att_error *err, sqlite3 *db, const char *what)
{
    return att_fail(err, ATT_ERR_INTERNAL, "accounts: %s: %s", what, sqlite3_errmsg(db));
}

int srv_accounts_open(const char *dir, int create, srv_accounts **out, att_error *err)
{
    struct stat st;
    if (create) {
        if (mkdir(dir, 0700) != 0 && errno != EEXIST)
            return att_fail(err, ATT_ERR_INTERNAL, "accounts: cannot create %s: %s", dir,
                            strerror(errno));
    } else if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        return att_fail(err, ATT_ERR_NOT_FOUND, "accounts: no data directory %s", dir);
    }
    char path[4096];
    if (snprintf(path, sizeof path, "%s/attune.db", dir) >= (int)sizeof path)
        return att_fail(err, ATT_ERR_INTERNAL, "accounts: path too long");
    srv_accounts *a = calloc(1, sizeof *a);
    if (!a)
        return att_fail(err, ATT_ERR_INTERNAL, "accounts: out of memory");
    int rc = sqlite3_open_v2(
        path, &a->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        att_fail(err, ATT_ERR_INTERNAL, "accounts: cannot open %s: %s", path,
                 a->db ? sqlite3_errmsg(a->db) : sqlite3_errstr(rc));
        srv_accounts_close(a);
        return -ATT_ERR_INTERNAL;
    }
    sqlite3_busy_timeout(a->db, 10000);
    char *msg = NULL;
    if (sqlite3_exec(a->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;", NULL, NULL,
                     &msg) != SQLITE_OK) {
        att_fail(err, ATT_ERR_INTERNAL, "accounts: %s", msg ? msg : "schema failed");
        sqlite3_free(msg);
        srv_accounts_close(a);
        return -ATT_ERR_INTERNAL;
    }
    rc = srv_schema_migrate(a->db, "accounts", schema_steps,
                            (int)(sizeof schema_steps / sizeof schema_steps[0]), err);
    if (rc < 0) {
        srv_accounts_close(a);
        return rc;
    }
    *out = a;
    return 0;
}

void srv_accounts_close(srv_accounts *a)
{
    if (!a)
        return;
    sqlite3_close(a->db);
    srv_pg_close(a->pg);
    free(a);
}

int srv_account_name_valid(const char *name)
{
    size_t n = strlen(name);
    if (n < 1 || n > SRV_ACCOUNT_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-' || c == '@'))
            return 0;
    }
    return 1;
}

/* Counts UTF-8 characters; -1 for malformed UTF-8 or a control character. */
static long utf8_chars(const unsigned char *s, size_t len)
{
    long chars = 0;
    for (size_t i = 0; i < len;) {
        unsigned char c = s[i];
        size_t extra;
        uint32_t cp;
        if (c < 0x80) {
            if (c < 0x20 || c == 0x7f)
                return -1;
            extra = 0;
            cp = c;
        } else if ((c & 0xe0) == 0xc0) {
            extra = 1;
            cp = c & 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            extra = 2;
            cp = c & 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            extra = 3;
            cp = c & 0x07;
        } else {
            return -1;
        }
        for (size_t k = 1; k <= extra; k++) {
            if (i + k >= len || (s[i + k] & 0xc0) != 0x80)
                return -1;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        static const uint32_t min_cp[4] = {0, 0x80, 0x800, 0x10000};
        if (cp < min_cp[extra] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return -1;
        i += extra + 1;
        chars++;
    }
    return chars;
}

int srv_password_check(const char *password, size_t len, att_error *err)
{
    if (len > SRV_PASSWORD_MAX_BYTES)
        return att_fail(err, ATT_ERR_BAD_MESSAGE, "the password is longer than %d bytes",
                        SRV_PASSWORD_MAX_BYTES);
    long chars = utf8_chars((const unsigned char *)password, len);
    if (chars < 0)
        return att_fail(err, ATT_ERR_BAD_MESSAGE,
                        "the password must be UTF-8 text without control characters");
    if (chars < SRV_PASSWORD_MIN_CHARS)
        return att_fail(err, ATT_ERR_BAD_MESSAGE, "the password needs at least %d characters",
                        SRV_PASSWORD_MIN_CHARS);
    return 0;
}

static int scrypt_hash(const char *password, size_t len, const unsigned char *salt, size_t salt_len,
                       int log2_n, int r, int p, unsigned char out[HASH_BYTES], att_error *err)
{
    if (log2_n < 1 || log2_n > 24 || r < 1 || r > 64 || p < 1 || p > 16)
        return att_fail(err, ATT_ERR_INTERNAL, "accounts: stored scrypt parameters out of range");
    if (EVP_PBE_scrypt(password, len, salt, salt_len, (uint64_t)1 << log2_n, (uint64_t)r,
                       (uint64_t)p, SCRYPT_MAXMEM, out, HASH_BYTES) != 1)
        return att_fail(err, ATT_ERR_INTERNAL, "accounts: scrypt failed");
    return 0;
}

static int prepare(srv_accounts *a, const char *sql, sqlite3_stmt **st, att_error *err)
{
    if (sqlite3_prepare_v2(a->db, sql, -1, st, NULL) != SQLITE_OK)
        return db_fail(err, a->db, "prepare");
    return 0;
}

const char *srv_account_kind_name(srv_account_kind kind)
{
    return kind == SRV_ACCOUNT_SUPERVISOR ? "supervisor" : "therapist";
}

static srv_account_kind kind_from_text(const unsigned char *text)
{
    return text && strcmp((const char *)text, "supervisor") == 0 ? SRV_ACCOUNT_SUPERVISOR
                                                                 : SRV_ACCOUNT_THERAPIST;
}

/* A fresh salt and the hash of password with it. */
static int new_hash(const char *password, size_t len, unsigned char salt[SALT_BYTES],
                    unsigned char hash[HASH_BYTES], att_error *err)
{
    int rc = srv_password_check(password, len, err);
    if (rc < 0)
        return rc;
    if (srv_random_bytes(salt, SALT_BYTES, err) < 0)
        return -ATT_ERR_INTERNAL;
    return scrypt_hash(password, len, salt, SALT_BYTES, SCRYPT_LOG2_N, SCRYPT_R, SCRYPT_P, hash,
                       err);
}

int srv_password_hash_new(const char *password, size_t len, srv_password_record *out,
                          att_error *err)
{
    memset(out, 0, sizeof *out);
    int rc = new_hash(password, len, out->salt, out->hash, err);
    if (rc < 0)
        return rc;
    out->found = 1;
    out->scrypt_log2_n = SCRYPT_LOG2_N;
    out->scrypt_r = SCRYPT_R;
    out->scrypt_p = SCRYPT_P;
    return 0;
}

/* Binds rec's salt, hash and scrypt parameters to st's parameters first ..
 * first + 4 (the columns salt, hash, scrypt_log2_n, scrypt_r, scrypt_p). */
static void bind_password(sqlite3_stmt *st, int first, const srv_password_record *rec)
{
    sqlite3_bind_blob(st, first, rec->salt, SALT_BYTES, SQLITE_STATIC);
    sqlite3_bind_blob(st, first + 1, rec->hash, HASH_BYTES, SQLITE_STATIC);
    sqlite3_bind_int(st, first + 2, rec->scrypt_log2_n);
    sqlite3_bind_int(st, first + 3, rec->scrypt_r);
    sqlite3_bind_int(st, first + 4, rec->scrypt_p);
}

/* A new record for password (into rec) and sql prepared into st with name
 * bound to ?1 and the record to ?2 .. ?6. On failure rec is wiped and no
 * statement is left. */
static int prepare_with_password(srv_accounts *a, const char *sql, const char *name,
                                 const char *password, size_t len, srv_password_record *rec,
                                 sqlite3_stmt **st, att_error *err)
{
    int rc = srv_password_hash_new(password, len, rec, err);
    if (rc < 0)
        return rc;
    if ((rc = prepare(a, sql, st, err)) < 0) {
        OPENSSL_cleanse(rec, sizeof *rec);
        return rc;
    }
    sqlite3_bind_text(*st, 1, name, -1, SQLITE_STATIC);
    bind_password(*st, 2, rec);
    return 0;
}

/* ---- PostgreSQL backend. Blocking statements on the caller's thread (the
 * lws service thread in attune-server, for now: see accounts.h). Every
 * parameter is text; salts and hashes travel as hex (decode/encode), ids
 * and times as decimal. */

static const char pg_schema[] =
    /* No "already exists, skipping" notices on every start after the first. */
    "SET LOCAL client_min_messages = warning;"
    "CREATE TABLE IF NOT EXISTS accounts ("
    "  id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY," /* a sequence: never reused */
    "  name TEXT NOT NULL UNIQUE,"
    "  kind TEXT NOT NULL DEFAULT 'therapist' CHECK (kind IN ('therapist', 'supervisor')),"
    "  salt BYTEA NOT NULL,"
    "  hash BYTEA NOT NULL,"
    "  scrypt_log2_n INTEGER NOT NULL,"
    "  scrypt_r INTEGER NOT NULL,"
    "  scrypt_p INTEGER NOT NULL,"
    "  password_gen BIGINT NOT NULL DEFAULT 1,"
    "  created_at BIGINT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS room_owners ("
    "  room TEXT PRIMARY KEY,"
    "  account_id BIGINT,"
    "  former_owner TEXT);"
    "CREATE INDEX IF NOT EXISTS room_owners_by_account ON room_owners (account_id);";

int srv_accounts_open_pg(const char *uri, int create, srv_accounts **out, att_error *err)
{
    (void)create; /* the tables are created when missing either way */
    *out = NULL;
    srv_accounts *a = calloc(1, sizeof *a);
    if (!a)
        return att_fail(err, ATT_ERR_INTERNAL, "accounts: out of memory");
    int rc = srv_pg_connect(uri, "attune-accounts", &a->pg, err);
    if (rc == 0)
        rc = srv_pg_exec_script(a->pg, pg_schema, err);
    if (rc < 0) {
        srv_accounts_close(a);
        return rc;
    }
    *out = a;
    return 0;
}

int srv_accounts_is_pg(const srv_accounts *a)
{
    return a->pg != NULL;
}

static int pg_run(srv_accounts *a, const char *sql, int n, const char *const *params,
                  PGresult **out, att_error *err)
{
    return srv_pg_exec(a->pg, sql, n, params, NULL, NULL, out, err);
}

/* Rows a command changed (its PQcmdTuples). */
static long changed(const PGresult *res)
{
    return strtol(PQcmdTuples((PGresult *)res), NULL, 10);
}

/* The hex texts of a record's salt and hash and its parameters as text, in
 * the order of the password columns. */
typedef struct {
    char salt[2 * SALT_BYTES + 1], hash[2 * HASH_BYTES + 1];
    srv_pg_int_text log2_n, r, p;
} pg_password_text;

static void password_text(const srv_password_record *rec, pg_password_text *t)
{
    srv_hex_encode(rec->salt, SALT_BYTES, t->salt);
    srv_hex_encode(rec->hash, HASH_BYTES, t->hash);
    t->log2_n = srv_pg_int_text_of(rec->scrypt_log2_n);
    t->r = srv_pg_int_text_of(rec->scrypt_r);
    t->p = srv_pg_int_text_of(rec->scrypt_p);
}

static int pg_add_kind(srv_accounts *a, const char *name, srv_account_kind kind,
                       const char *password, size_t len, int64_t *id_out, att_error *err)
{
    srv_password_record rec;
    int rc = srv_password_hash_new(password, len, &rec, err);
    if (rc < 0)
        return rc;
    pg_password_text t;
    password_text(&rec, &t);
    srv_pg_int_text now = srv_pg_int_text_of(srv_now_ms());
    const char *params[8] = {name,     t.salt,   t.hash,   t.log2_n.text,
                             t.r.text, t.p.text, now.text, srv_account_kind_name(kind)};
    PGresult *res = NULL;
    /* ON CONFLICT: a taken name is an answer, not a failed statement. */
    rc = pg_run(a,
                "INSERT INTO accounts (name, salt, hash, scrypt_log2_n, scrypt_r, scrypt_p, "
                "created_at, kind) VALUES ($1, decode($2, 'hex'), decode($3, 'hex'), $4, $5, $6, "
                "$7, $8) ON CONFLICT (name) DO NOTHING RETURNING id",
                8, params, &res, err);
    if (rc == 0) {
        if (PQntuples(res) == 0)
            rc = att_fail(err, ATT_ERR_BAD_MESSAGE, "there is already an account named %s", name);
        else if (id_out)
            *id_out = srv_pg_int_at(res, 0, 0);
    }
    PQclear(res);
    OPENSSL_cleanse(&rec, sizeof rec);
    OPENSSL_cleanse(&t, sizeof t);
    return rc;
}

static int pg_store_password(srv_accounts *a, int64_t account_id, int64_t expected_gen,
                             const srv_password_record *rec, int64_t *gen_out, att_error *err)
{
    pg_password_text t;
    password_text(rec, &t);
    srv_pg_int_text id = srv_pg_int_text_of(account_id), gen = srv_pg_int_text_of(expected_gen);
    const char *params[7] = {id.text, gen.text, t.salt, t.hash, t.log2_n.text, t.r.text, t.p.text};
    PGresult *res = NULL;
    int rc = pg_run(a,
                    "UPDATE accounts SET salt = decode($3, 'hex'), hash = decode($4, 'hex'), "
                    "scrypt_log2_n = $5, scrypt_r = $6, scrypt_p = $7, "
                    "password_gen = password_gen + 1 WHERE id = $1 AND password_gen = $2",
                    7, params, &res, err);
    if (rc == 0) {
        if (changed(res) == 0)
            rc = att_fail(err, ATT_ERR_NOT_FOUND, "the account is gone or its password changed");
        else if (gen_out)
            *gen_out = expected_gen + 1;
    }
    PQclear(res);
    OPENSSL_cleanse(&t, sizeof t);
    return rc;
}

static int pg_set_password(srv_accounts *a, const char *name, const char *password, size_t len,
                           att_error *err)
{
    srv_password_record rec;
    int rc = srv_password_hash_new(password, len, &rec, err);
    if (rc < 0)
        return rc;
    pg_password_text t;
    password_text(&rec, &t);
    const char *params[6] = {name, t.salt, t.hash, t.log2_n.text, t.r.text, t.p.text};
    PGresult *res = NULL;
    rc = pg_run(a,
                "UPDATE accounts SET salt = decode($2, 'hex'), hash = decode($3, 'hex'), "
                "scrypt_log2_n = $4, scrypt_r = $5, scrypt_p = $6, "
                "password_gen = password_gen + 1 WHERE name = $1",
                6, params, &res, err);
    if (rc == 0 && changed(res) == 0)
        rc = att_fail(err, ATT_ERR_NOT_FOUND, "no account named %s", name);
    PQclear(res);
    OPENSSL_cleanse(&rec, sizeof rec);
    OPENSSL_cleanse(&t, sizeof t);
    return rc;
}

/* A statement with one parameter whose changed-row count of 0 means
 * not_found (naming what). */
static int pg_change_one(srv_accounts *a, const char *sql, int n, const char *const *params,
                         const char *not_found, att_error *err)
{
    PGresult *res = NULL;
    int rc = pg_run(a, sql, n, params, &res, err);
    if (rc == 0 && not_found && changed(res) == 0)
        rc = att_fail(err, ATT_ERR_NOT_FOUND, "%s", not_found);
    PQclear(res);
    return rc;
}

static int pg_remove(srv_accounts *a, const char *name, att_error *err)
{
    char what[SRV_ACCOUNT_NAME_MAX + 32];
    snprintf(what, sizeof what, "no account named %.*s", SRV_ACCOUNT_NAME_MAX, name);
    const char *params[1] = {name};
    return pg_change_one(a, "DELETE FROM accounts WHERE name = $1", 1, params, what, err);
}

static void pg_read_account(const PGresult *res, int row, srv_account *out)
{
    memset(out, 0, sizeof *out);
    out->id = srv_pg_int_at(res, row, 0);
    snprintf(out->name, sizeof out->name, "%s", PQgetvalue(res, row, 1));
    out->kind = kind_from_text((const unsigned char *)PQgetvalue(res, row, 2));
    out->password_gen = srv_pg_int_at(res, row, 3);
    out->created_at = srv_pg_int_at(res, row, 4);
}

/* sql selects ACCOUNT_COLUMNS by its one parameter: 1 found, 0 not. */
static int pg_get_one(srv_accounts *a, const char *sql, const char *param, srv_account *out,
                      att_error *err)
{
    const char *params[1] = {param};
    PGresult *res = NULL;
    int rc = pg_run(a, sql, 1, params, &res, err);
    if (rc == 0 && PQntuples(res) > 0) {
        if (out)
            pg_read_account(res, 0, out);
        rc = 1;
    }
    PQclear(res);
    return rc;
}

#define PG_ACCOUNT_COLUMNS "id, name, kind, password_gen, created_at"

static int pg_list(srv_accounts *a, int (*fn)(const srv_account *acct, void *arg), void *arg,
                   att_error *err)
{
    PGresult *res = NULL;
    /* COLLATE "C": byte order, as SQLite's BINARY collation lists them. */
    int rc = pg_run(a, "SELECT " PG_ACCOUNT_COLUMNS " FROM accounts ORDER BY name COLLATE \"C\"", 0,
                    NULL, &res, err);
    for (int i = 0; rc == 0 && i < PQntuples(res); i++) {
        srv_account acct;
        pg_read_account(res, i, &acct);
        rc = fn(&acct, arg);
    }
    PQclear(res);
    return rc;
}

/* out already holds the dummy record; filled from the row when found. */
static int pg_lookup(srv_accounts *a, const char *name, srv_password_record *out, att_error *err)
{
    const char *params[1] = {name};
    PGresult *res = NULL;
    int rc = pg_run(a,
                    "SELECT encode(salt, 'hex'), encode(hash, 'hex'), scrypt_log2_n, scrypt_r, "
                    "scrypt_p, id, password_gen, kind FROM accounts WHERE name = $1",
                    1, params, &res, err);
    if (rc == 0 && PQntuples(res) > 0) {
        unsigned char salt[SALT_BYTES], hash[HASH_BYTES];
        const char *salt_hex = PQgetvalue(res, 0, 0), *hash_hex = PQgetvalue(res, 0, 1);
        if (srv_hex_decode(salt_hex, strlen(salt_hex), salt, SALT_BYTES) == 0 &&
            srv_hex_decode(hash_hex, strlen(hash_hex), hash, HASH_BYTES) == 0) {
            memcpy(out->salt, salt, SALT_BYTES);
            memcpy(out->hash, hash, HASH_BYTES);
            out->scrypt_log2_n = (int)srv_pg_int_at(res, 0, 2);
            out->scrypt_r = (int)srv_pg_int_at(res, 0, 3);
            out->scrypt_p = (int)srv_pg_int_at(res, 0, 4);
            out->account_id = srv_pg_int_at(res, 0, 5);
            out->password_gen = srv_pg_int_at(res, 0, 6);
            out->kind = kind_from_text((const unsigned char *)PQgetvalue(res, 0, 7));
            out->found = 1;
        } else {
            rc = att_fail(err, ATT_ERR_INTERNAL, "accounts: malformed hash for %s", name);
        }
        OPENSSL_cleanse(salt, sizeof salt);
        OPENSSL_cleanse(hash, sizeof hash);
    }
    PQclear(res);
    return rc;
}

/* Records the owner; the account is found by name (by_name) or id. Like
 * SQLite's INSERT OR REPLACE, a replaced row forgets its former_owner. */
static int pg_set_owner(srv_accounts *a, const char *room, const char *account, int by_name,
                        att_error *err)
{
    char what[SRV_ACCOUNT_NAME_MAX + 40];
    snprintf(what, sizeof what, by_name ? "no account named %.*s" : "no account with id %.*s",
             SRV_ACCOUNT_NAME_MAX, account);
    const char *params[2] = {room, account};
    return pg_change_one(a,
                         by_name ? "INSERT INTO room_owners (room, account_id) "
                                   "SELECT $1, id FROM accounts WHERE name = $2 "
                                   "ON CONFLICT (room) DO UPDATE SET account_id = "
                                   "EXCLUDED.account_id, former_owner = NULL"
                                 : "INSERT INTO room_owners (room, account_id) "
                                   "SELECT $1, id FROM accounts WHERE id = $2 "
                                   "ON CONFLICT (room) DO UPDATE SET account_id = "
                                   "EXCLUDED.account_id, former_owner = NULL",
                         2, params, what, err);
}

static int pg_owner_of(srv_accounts *a, const char *room, char *name_out, int64_t *id_out,
                       att_error *err)
{
    const char *params[1] = {room};
    PGresult *res = NULL;
    int rc = pg_run(a,
                    "SELECT a.name, a.id FROM room_owners o JOIN accounts a "
                    "ON a.id = o.account_id WHERE o.room = $1",
                    1, params, &res, err);
    if (rc == 0 && PQntuples(res) == 0)
        rc = att_fail(err, ATT_ERR_NOT_FOUND, "room %s has no owner", room);
    else if (rc == 0) {
        if (name_out)
            snprintf(name_out, SRV_ACCOUNT_NAME_MAX + 1, "%s", PQgetvalue(res, 0, 0));
        if (id_out)
            *id_out = srv_pg_int_at(res, 0, 1);
    }
    PQclear(res);
    return rc;
}

/* Owned rooms that exist in the event store: its `rooms` table (id,
 * created_at, as store_pg.c keeps them) in the same database. Before the
 * store has made that table no room exists, so none is listed. */
static int pg_owned_rooms(srv_accounts *a, const char *account, int by_name,
                          int (*fn)(const char *room, void *arg), void *arg, att_error *err)
{
    PGresult *res = NULL;
    int rc = pg_run(a, "SELECT to_regclass('rooms') IS NOT NULL", 0, NULL, &res, err);
    int have_rooms = rc == 0 && PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    if (rc < 0 || !have_rooms)
        return rc;
    const char *params[1] = {account};
    res = NULL;
    rc = pg_run(a,
                by_name ? "SELECT o.room FROM room_owners o JOIN accounts a ON a.id = o.account_id "
                          "JOIN rooms r ON r.id = o.room WHERE a.name = $1 "
                          "ORDER BY r.created_at DESC, r.id COLLATE \"C\" DESC"
                        : "SELECT o.room FROM room_owners o JOIN rooms r ON r.id = o.room "
                          "WHERE o.account_id = $1 "
                          "ORDER BY r.created_at DESC, r.id COLLATE \"C\" DESC",
                1, params, &res, err);
    for (int i = 0; rc == 0 && i < PQntuples(res); i++)
        rc = fn(PQgetvalue(res, i, 0), arg);
    PQclear(res);
    return rc;
}

int srv_accounts_add(srv_accounts *a, const char *name, const char *password, size_t len,
                     att_error *err)
{
    return srv_accounts_add_kind(a, name, SRV_ACCOUNT_THERAPIST, password, len, NULL, err);
}

int srv_accounts_add_kind(srv_accounts *a, const char *name, srv_account_kind kind,
                          const char *password, size_t len, int64_t *id_out, att_error *err)
{
    if (!srv_account_name_valid(name))
        return att_fail(err, ATT_ERR_BAD_MESSAGE,
                        "a name is 1..64 characters of A-Z a-z 0-9 . _ - @");
    if (a->pg)
        return pg_add_kind(a, name, kind, password, len, id_out, err);
    srv_password_record rec;
    sqlite3_stmt *st = NULL;
    int rc = prepare_with_password(
        a,
        "INSERT INTO accounts (name, salt, hash, scrypt_log2_n, scrypt_r, scrypt_p, created_at, "
        "kind) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        name, password, len, &rec, &st, err);
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(st, 7, srv_now_ms());
    sqlite3_bind_text(st, 8, srv_account_kind_name(kind), -1, SQLITE_STATIC);
    int step = sqlite3_step(st);
    if (step == SQLITE_CONSTRAINT)
        rc = att_fail(err, ATT_ERR_BAD_MESSAGE, "there is already an account named %s", name);
    else if (step != SQLITE_DONE)
        rc = db_fail(err, a->db, "insert");
    else if (id_out)
        *id_out = sqlite3_last_insert_rowid(a->db);
    sqlite3_finalize(st);
    OPENSSL_cleanse(&rec, sizeof rec);
    return rc;
}

int srv_accounts_store_password(srv_accounts *a, int64_t account_id, int64_t expected_gen,
                                const srv_password_record *rec, int64_t *gen_out, att_error *err)
{
    if (a->pg)
        return pg_store_password(a, account_id, expected_gen, rec, gen_out, err);
    sqlite3_stmt *st = NULL;
    int rc = prepare(a,
                     "UPDATE accounts SET salt = ?3, hash = ?4, scrypt_log2_n = ?5, "
                     "scrypt_r = ?6, scrypt_p = ?7, password_gen = password_gen + 1 "
                     "WHERE id = ?1 AND password_gen = ?2",
                     &st, err);
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(st, 1, account_id);
    sqlite3_bind_int64(st, 2, expected_gen);
    bind_password(st, 3, rec);
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = db_fail(err, a->db, "store password");
    else if (sqlite3_changes(a->db) == 0)
        rc = att_fail(err, ATT_ERR_NOT_FOUND, "the account is gone or its password changed");
    else if (gen_out)
        *gen_out = expected_gen + 1;
    sqlite3_finalize(st);
    return rc;
}

int srv_accounts_set_password(srv_accounts *a, const char *name, const char *password, size_t len,
                              att_error *err)
{
    if (a->pg)
        return pg_set_password(a, name, password, len, err);
    srv_password_record rec;
    sqlite3_stmt *st = NULL;
    int rc = prepare_with_password(a,
                                   "UPDATE accounts SET salt = ?2, hash = ?3, scrypt_log2_n = ?4, "
                                   "scrypt_r = ?5, scrypt_p = ?6, password_gen = password_gen + 1 "
                                   "WHERE name = ?1",
                                   name, password, len, &rec, &st, err);
    if (rc < 0)
        return rc;
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = db_fail(err, a->db, "update password");
    else if (sqlite3_changes(a->db) == 0)
        rc = att_fail(err, ATT_ERR_NOT_FOUND, "no account named %s", name);
    sqlite3_finalize(st);
    OPENSSL_cleanse(&rec, sizeof rec);
    return rc;
}

int srv_accounts_remove(srv_accounts *a, const char *name, att_error *err)
{
    if (a->pg)
        return pg_remove(a, name, err);
    sqlite3_stmt *st = NULL;
    int rc = prepare(a, "DELETE FROM accounts WHERE name = ?1", &st, err);
    if (rc < 0)
        return rc;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = db_fail(err, a->db, "delete");
    else if (sqlite3_changes(a->db) == 0)
        rc = att_fail(err, ATT_ERR_NOT_FOUND, "no account named %s", name);
    sqlite3_finalize(st);
    return rc;
}

int srv_accounts_exists(srv_accounts *a, const char *name, att_error *err)
{
    if (a->pg)
        return pg_get_one(a, "SELECT " PG_ACCOUNT_COLUMNS " FROM accounts WHERE name = $1", name,
                          NULL, err);
    sqlite3_stmt *st = NULL;
    int rc = prepare(a, "SELECT 1 FROM accounts WHERE name = ?1", &st, err);
    if (rc < 0)
        return rc;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW)
        rc = 1;
    else if (step == SQLITE_DONE)
        rc = 0;
    else
        rc = db_fail(err, a->db, "select");
    sqlite3_finalize(st);
    return rc;
}

#define ACCOUNT_COLUMNS "id, name, kind, password_gen, created_at"

static void read_account(sqlite3_stmt *st, srv_account *out)
{
    memset(out, 0, sizeof *out);
    out->id = sqlite3_column_int64(st, 0);
    snprintf(out->name, sizeof out->name, "%s", (const char *)sqlite3_column_text(st, 1));
    out->kind = kind_from_text(sqlite3_column_text(st, 2));
    out->password_gen = sqlite3_column_int64(st, 3);
    out->created_at = sqlite3_column_int64(st, 4);
}

/* st selects ACCOUNT_COLUMNS with its parameter bound: 1 found, 0 not. */
static int get_one(srv_accounts *a, sqlite3_stmt *st, srv_account *out, att_error *err)
{
    int step = sqlite3_step(st);
    int rc = 0;
    if (step == SQLITE_ROW) {
        read_account(st, out);
        rc = 1;
    } else if (step != SQLITE_DONE) {
        rc = db_fail(err, a->db, "select account");
    }
    sqlite3_finalize(st);
    return rc;
}

int srv_accounts_get(srv_accounts *a, const char *name, srv_account *out, att_error *err)
{
    if (a->pg)
        return pg_get_one(a, "SELECT " PG_ACCOUNT_COLUMNS " FROM accounts WHERE name = $1", name,
                          out, err);
    sqlite3_stmt *st = NULL;
    int rc = prepare(a, "SELECT " ACCOUNT_COLUMNS " FROM accounts WHERE name = ?1", &st, err);
    if (rc < 0)
        return rc;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    return get_one(a, st, out, err);
}

int srv_accounts_get_by_id(srv_accounts *a, int64_t id, srv_account *out, att_error *err)
{
    if (a->pg)
        return pg_get_one(a, "SELECT " PG_ACCOUNT_COLUMNS " FROM accounts WHERE id = $1",
                          srv_pg_int_text_of(id).text, out, err);
    sqlite3_stmt *st = NULL;
    int rc = prepare(a, "SELECT " ACCOUNT_COLUMNS " FROM accounts WHERE id = ?1", &st, err);
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(st, 1, id);
    return get_one(a, st, out, err);
}

int srv_accounts_list(srv_accounts *a, int (*fn)(const srv_account *acct, void *arg), void *arg,
                      att_error *err)
{
    if (a->pg)
        return pg_list(a, fn, arg, err);
    sqlite3_stmt *st = NULL;
    int rc = prepare(a, "SELECT " ACCOUNT_COLUMNS " FROM accounts ORDER BY name", &st, err);
    if (rc < 0)
        return rc;
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        srv_account acct;
        read_account(st, &acct);
        rc = fn(&acct, arg);
        if (rc)
            break;
    }
    if (!rc && step != SQLITE_DONE)
        rc = db_fail(err, a->db, "list");
    sqlite3_finalize(st);
    return rc;
}

int srv_accounts_lookup(srv_accounts *a, const char *name, srv_password_record *out, att_error *err)
{
    /* An unknown name gets this dummy salt, so a wrong name and a wrong
     * password cost the same scrypt run. */
    static const unsigned char dummy_salt[SALT_BYTES] = "attune-no-user!";
    memset(out, 0, sizeof *out);
    memcpy(out->salt, dummy_salt, SALT_BYTES);
    out->scrypt_log2_n = SCRYPT_LOG2_N;
    out->scrypt_r = SCRYPT_R;
    out->scrypt_p = SCRYPT_P;
    sqlite3_stmt *st = NULL;
    if (a->pg)
        return pg_lookup(a, name, out, err);
    int rc = prepare(a,
                     "SELECT salt, hash, scrypt_log2_n, scrypt_r, scrypt_p, id, password_gen, "
                     "kind FROM accounts WHERE name = ?1",
                     &st, err);
    if (rc < 0)
        return rc;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        if (sqlite3_column_bytes(st, 0) == SALT_BYTES &&
            sqlite3_column_bytes(st, 1) == HASH_BYTES) {
            memcpy(out->salt, sqlite3_column_blob(st, 0), SALT_BYTES);
            memcpy(out->hash, sqlite3_column_blob(st, 1), HASH_BYTES);
            out->scrypt_log2_n = sqlite3_column_int(st, 2);
            out->scrypt_r = sqlite3_column_int(st, 3);
            out->scrypt_p = sqlite3_column_int(st, 4);
            out->account_id = sqlite3_column_int64(st, 5);
            out->password_gen = sqlite3_column_int64(st, 6);
            out->kind = kind_from_text(sqlite3_column_text(st, 7));
            out->found = 1;
        } else {
            rc = att_fail(err, ATT_ERR_INTERNAL, "accounts: malformed hash for %s", name);
        }
    } else if (step != SQLITE_DONE) {
        rc = db_fail(err, a->db, "select");
    }
    sqlite3_finalize(st);
    return rc;
}

int srv_password_matches(const srv_password_record *rec, const char *password, size_t len,
                         att_error *err)
{
    unsigned char computed[HASH_BYTES];
    if (len > SRV_PASSWORD_MAX_BYTES)
        len = SRV_PASSWORD_MAX_BYTES; /* still hashed: no shortcut for long guesses */
    int rc = scrypt_hash(password, len, rec->salt, SALT_BYTES, rec->scrypt_log2_n, rec->scrypt_r,
                         rec->scrypt_p, computed, err);
    if (rc < 0)
        return rc;
    int same = CRYPTO_memcmp(rec->hash, computed, HASH_BYTES) == 0;
    OPENSSL_cleanse(computed, sizeof computed);
    return rec->found && same ? 1 : 0;
}

int srv_accounts_verify(srv_accounts *a, const char *name, const char *password, size_t len,
                        att_error *err)
{
    srv_password_record rec;
    int rc = srv_accounts_lookup(a, name, &rec, err);
    if (rc == 0)
        rc = srv_password_matches(&rec, password, len, err);
    OPENSSL_cleanse(&rec, sizeof rec);
    return rc;
}

int srv_accounts_set_owner(srv_accounts *a, const char *room, const char *owner, att_error *err)
{
    if (a->pg)
        return pg_set_owner(a, room, owner, 1, err);
    sqlite3_stmt *st = NULL;
    int rc = prepare(a,
                     "INSERT OR REPLACE INTO room_owners (room, account_id) "
                     "SELECT ?1, id FROM accounts WHERE name = ?2",
                     &st, err);
    if (rc < 0)
        return rc;
    sqlite3_bind_text(st, 1, room, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, owner, -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = db_fail(err, a->db, "set owner");
    else if (sqlite3_changes(a->db) == 0)
        rc = att_fail(err, ATT_ERR_NOT_FOUND, "no account named %s", owner);
    sqlite3_finalize(st);
    return rc;
}

int srv_accounts_set_owner_id(srv_accounts *a, const char *room, int64_t account_id, att_error *err)
{
    if (a->pg)
        return pg_set_owner(a, room, srv_pg_int_text_of(account_id).text, 0, err);
    sqlite3_stmt *st = NULL;
    int rc = prepare(a,
                     "INSERT OR REPLACE INTO room_owners (room, account_id) "
                     "SELECT ?1, id FROM accounts WHERE id = ?2",
                     &st, err);
    if (rc < 0)
        return rc;
    sqlite3_bind_text(st, 1, room, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, account_id);
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = db_fail(err, a->db, "set owner");
    else if (sqlite3_changes(a->db) == 0)
        rc = att_fail(err, ATT_ERR_NOT_FOUND, "no account with id %lld", (long long)account_id);
    sqlite3_finalize(st);
    return rc;
}

/* The owner of room that still exists: name (may be NULL) and id. */
static int owner_of(srv_accounts *a, const char *room, char *name_out, int64_t *id_out,
                    att_error *err)
{
    if (a->pg)
        return pg_owner_of(a, room, name_out, id_out, err);
    sqlite3_stmt *st = NULL;
    int rc = prepare(a,
                     "SELECT a.name, a.id FROM room_owners o JOIN accounts a "
                     "ON a.id = o.account_id WHERE o.room = ?1",
                     &st, err);
    if (rc < 0)
        return rc;
    sqlite3_bind_text(st, 1, room, -1, SQLITE_STATIC);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        if (name_out)
            snprintf(name_out, SRV_ACCOUNT_NAME_MAX + 1, "%s",
                     (const char *)sqlite3_column_text(st, 0));
        if (id_out)
            *id_out = sqlite3_column_int64(st, 1);
    } else if (step == SQLITE_DONE) {
        rc = att_fail(err, ATT_ERR_NOT_FOUND, "room %s has no owner", room);
    } else {
        rc = db_fail(err, a->db, "get owner");
    }
    sqlite3_finalize(st);
    return rc;
}

int srv_accounts_get_owner(srv_accounts *a, const char *room, char *out, att_error *err)
{
    return owner_of(a, room, out, NULL, err);
}

int srv_accounts_get_owner_id(srv_accounts *a, const char *room, int64_t *id_out, att_error *err)
{
    return owner_of(a, room, NULL, id_out, err);
}

int srv_accounts_clear_owner(srv_accounts *a, const char *room, att_error *err)
{
    if (a->pg) {
        const char *params[1] = {room};
        return pg_change_one(a, "DELETE FROM room_owners WHERE room = $1", 1, params, NULL, err);
    }
    sqlite3_stmt *st = NULL;
    int rc = prepare(a, "DELETE FROM room_owners WHERE room = ?1", &st, err);
    if (rc < 0)
        return rc;
    sqlite3_bind_text(st, 1, room, -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = db_fail(err, a->db, "clear owner");
    sqlite3_finalize(st);
    return rc;
}

/* st selects room ids with its parameter bound; calls fn for each. */
static int each_room(srv_accounts *a, sqlite3_stmt *st, int (*fn)(const char *room, void *arg),
                     void *arg, att_error *err)
{
    int rc = 0, step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        rc = fn((const char *)sqlite3_column_text(st, 0), arg);
        if (rc)
            break;
    }
    if (!rc && step != SQLITE_DONE)
        rc = db_fail(err, a->db, "owned rooms");
    sqlite3_finalize(st);
    return rc;
}

/* `rooms` is the event store's table (store_sqlite.c) in the same file:
 * only rooms that exist, in the order they were created. */
int srv_accounts_owned_rooms(srv_accounts *a, const char *owner,
                             int (*fn)(const char *room, void *arg), void *arg, att_error *err)
{
    if (a->pg)
        return pg_owned_rooms(a, owner, 1, fn, arg, err);
    sqlite3_stmt *st = NULL;
    int rc = prepare(a,
                     "SELECT o.room FROM room_owners o JOIN accounts a ON a.id = o.account_id "
                     "JOIN rooms r ON r.id = o.room "
                     "WHERE a.name = ?1 ORDER BY r.created_at DESC, r.id DESC",
                     &st, err);
    if (rc < 0)
        return rc;
    sqlite3_bind_text(st, 1, owner, -1, SQLITE_STATIC);
    return each_room(a, st, fn, arg, err);
}

int srv_accounts_owned_rooms_id(srv_accounts *a, int64_t account_id,
                                int (*fn)(const char *room, void *arg), void *arg, att_error *err)
{
    if (a->pg)
        return pg_owned_rooms(a, srv_pg_int_text_of(account_id).text, 0, fn, arg, err);
    sqlite3_stmt *st = NULL;
    int rc = prepare(a,
                     "SELECT o.room FROM room_owners o JOIN rooms r ON r.id = o.room "
                     "WHERE o.account_id = ?1 ORDER BY r.created_at DESC, r.id DESC",
                     &st, err);
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(st, 1, account_id);
    return each_room(a, st, fn, arg, err);
}
