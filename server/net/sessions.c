/* sessions.c - login sessions in memory, optionally backed by a
 * PostgreSQL table shared by every node (see sessions.h). */
#include "sessions.h"

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "log.h"
#include "pg.h"
#include "b64url.h"
#include "random.h"
#include "token.h"

#define COOKIE_RANDOM_BYTES 32
/* With PostgreSQL: a session's own actions are written back at most this
 * often (a WebSocket command is not a database write each), which can make
 * the idle limit, as other nodes see it, up to this much early. */
#define PG_RENEW_EVERY_MS 1000
/* Ends whose DELETE failed, retried at every sweep until it goes through. */
#define PG_PENDING_ENDS 256

typedef struct {
    unsigned char digest[32]; /* SHA-256 of the cookie value */
    uint64_t id;
    int64_t account_id, password_gen;
    srv_account_kind kind;
    char name[SRV_ACCOUNT_NAME_MAX + 1];
    int64_t started_at, last_active;
    int64_t stored_active; /* with PostgreSQL: the last_active written back */
} session;

typedef struct {
    srv_session_end_fn fn;
    void *arg;
} end_hook;

struct srv_sessions {
    int64_t idle_ms, lifetime_ms;
    uint64_t next_id;
    end_hook hooks[SRV_SESSIONS_MAX_HOOKS];
    int n_hooks;
    srv_pg *pg; /* NULL: memory only */
    uint64_t pending_ends[PG_PENDING_ENDS];
    size_t n_pending;
    size_t n;
    /* Without PostgreSQL, every session; with it, the sessions this node
     * has started or seen (a cache the sweep keeps in step with the
     * table), which is what its hooks and lookups by id work on. */
    session items[SRV_SESSIONS_MAX];
};

int srv_sessions_new(int64_t idle_ms, int64_t lifetime_ms, srv_sessions **out, att_error *err)
{
    if (idle_ms <= 0 || lifetime_ms <= 0)
        return att_fail(err, ATT_ERR_BAD_MESSAGE, "sessions: idle time and lifetime must be > 0");
    srv_sessions *s = calloc(1, sizeof *s);
    if (!s)
        return att_fail(err, ATT_ERR_INTERNAL, "sessions: out of memory");
    s->idle_ms = idle_ms;
    s->lifetime_ms = lifetime_ms;
    *out = s;
    return 0;
}

void srv_sessions_free(srv_sessions *s)
{
    if (!s)
        return;
    srv_pg_close(s->pg);
    OPENSSL_cleanse(s, sizeof *s);
    free(s);
}

int srv_sessions_set_end_hook(srv_sessions *s, srv_session_end_fn fn, void *arg)
{
    if (s->n_hooks == SRV_SESSIONS_MAX_HOOKS)
        return -ATT_ERR_INTERNAL;
    s->hooks[s->n_hooks].fn = fn;
    s->hooks[s->n_hooks].arg = arg;
    s->n_hooks++;
    return 0;
}

static int digest_of(const char *cookie, unsigned char out[32])
{
    unsigned int len = 0;
    return EVP_Digest(cookie, strlen(cookie), out, &len, EVP_sha256(), NULL) == 1 && len == 32 ? 0
                                                                                               : -1;
}

static int64_t expires_at(const srv_sessions *s, const session *e)
{
    int64_t idle_end = e->last_active + s->idle_ms;
    int64_t life_end = e->started_at + s->lifetime_ms;
    return idle_end < life_end ? idle_end : life_end;
}

static int expired(const srv_sessions *s, const session *e, int64_t now)
{
    return now >= expires_at(s, e);
}

static void fill(const srv_sessions *s, const session *e, srv_session_info *out)
{
    if (!out)
        return;
    memset(out, 0, sizeof *out);
    out->id = e->id;
    out->account_id = e->account_id;
    out->password_gen = e->password_gen;
    out->kind = e->kind;
    memcpy(out->account, e->name, sizeof out->account);
    out->started_at = e->started_at;
    out->last_active = e->last_active;
    out->expires_at = expires_at(s, e);
}

/* Removes entry i (the last one takes its place), logs why, then tells the
 * hooks. A loop over the table stays at i after a drop. */
static void drop(srv_sessions *s, size_t i, const char *why)
{
    uint64_t id = s->items[i].id;
    char name[SRV_ACCOUNT_NAME_MAX + 1];
    memcpy(name, s->items[i].name, sizeof name);
    s->items[i] = s->items[--s->n];
    OPENSSL_cleanse(&s->items[s->n], sizeof s->items[s->n]);
    srv_log("info", "session_ended", "{s:s,s:s,s:I}", "name", name, "why", why, "session",
            (json_int_t)id);
    for (int h = 0; h < s->n_hooks; h++)
        s->hooks[h].fn(s->hooks[h].arg, id, name);
}

/* Why an expired session ended. */
static const char *expiry_of(const srv_sessions *s, int64_t started_at, int64_t last_active)
{
    return started_at + s->lifetime_ms <= last_active + s->idle_ms ? "lifetime" : "idle";
}

static const char *expiry(const srv_sessions *s, const session *e)
{
    return expiry_of(s, e->started_at, e->last_active);
}

static long find_id(const srv_sessions *s, uint64_t id)
{
    if (id == 0)
        return -1;
    for (size_t i = 0; i < s->n; i++)
        if (s->items[i].id == id)
            return (long)i;
    return -1;
}

/* ---- The PostgreSQL table (srv_sessions_attach_pg). Statements are
 * blocking, on the service thread; a failure is logged
 * (session_store_failed, never a cookie or its digest) and answered as
 * "no session" by lookups, so a lost database fails closed. */

static const char pg_schema[] =
    "SET LOCAL client_min_messages = warning;"
    "CREATE TABLE IF NOT EXISTS login_sessions ("
    "  id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY," /* the session id, on every node */
    "  digest BYTEA NOT NULL UNIQUE," /* SHA-256 of the cookie value, never the value */
    "  account_id BIGINT NOT NULL,"
    "  password_gen BIGINT NOT NULL,"
    "  kind TEXT NOT NULL,"
    "  name TEXT NOT NULL,"
    "  started_at BIGINT NOT NULL,"   /* ms */
    "  last_active BIGINT NOT NULL);" /* ms */
    "CREATE INDEX IF NOT EXISTS login_sessions_by_account ON login_sessions (account_id);";

#define PG_SESSION_COLUMNS "id, account_id, password_gen, kind, name, started_at, last_active"

int srv_sessions_attach_pg(srv_sessions *s, const char *uri, att_error *err)
{
    if (s->pg)
        return att_fail(err, ATT_ERR_INTERNAL, "sessions: already attached");
    if (s->n)
        return att_fail(err, ATT_ERR_INTERNAL, "sessions: attach before the first login");
    srv_pg *pg = NULL;
    int rc = srv_pg_connect(uri, "attune-sessions", &pg, err);
    if (rc == 0)
        rc = srv_pg_exec_script(pg, pg_schema, err);
    if (rc < 0) {
        srv_pg_close(pg);
        return rc;
    }
    s->pg = pg;
    return 0;
}

static void pg_failed(const char *what, const att_error *err)
{
    srv_log("error", "session_store_failed", "{s:s,s:s}", "what", what, "error", err->message);
}

/* Runs a statement of up to 3 integer parameters (as decimal text). */
static int pg_run_ints(srv_sessions *s, const char *sql, int n, const int64_t *values,
                       PGresult **out, att_error *err)
{
    char text[3][24];
    const char *params[3] = {NULL, NULL, NULL};
    for (int i = 0; i < n && i < 3; i++) {
        snprintf(text[i], sizeof text[i], "%lld", (long long)values[i]);
        params[i] = text[i];
    }
    return srv_pg_exec(s->pg, sql, n, params, NULL, NULL, out, err);
}

/* Logs the end of a session this node does not hold (another node's hooks
 * are that node's business: its sweep sees the row gone). */
static void log_end(uint64_t id, const char *name, const char *why)
{
    srv_log("info", "session_ended", "{s:s,s:s,s:I}", "name", name, "why", why, "session",
            (json_int_t)id);
}

/* Ends rows a DELETE ... RETURNING id, name[, started_at, last_active]
 * removed: the cached ones through drop (hooks), the others logged. With
 * why NULL the reason is the row's expiry. */
static void ended_rows(srv_sessions *s, const PGresult *res, const char *why)
{
    for (int r = 0; r < PQntuples(res); r++) {
        uint64_t id = (uint64_t)srv_pg_int_at(res, r, 0);
        const char *reason =
            why ? why : expiry_of(s, srv_pg_int_at(res, r, 2), srv_pg_int_at(res, r, 3));
        long i = find_id(s, id);
        if (i >= 0)
            drop(s, (size_t)i, reason);
        else
            log_end(id, PQgetvalue(res, r, 1), reason);
    }
}

/* Deletes session id's row; on failure keeps it for the next sweep, so a
 * logout that could not be written now still ends the session everywhere
 * once the database answers. */
static void pg_delete(srv_sessions *s, uint64_t id)
{
    att_error err = {0};
    int64_t v = (int64_t)id;
    if (pg_run_ints(s, "DELETE FROM login_sessions WHERE id = $1", 1, &v, NULL, &err) == 0)
        return;
    pg_failed("end", &err);
    if (s->n_pending < PG_PENDING_ENDS)
        s->pending_ends[s->n_pending++] = id;
    else
        srv_log("error", "session_store_failed", "{s:s,s:I}", "what", "end not retried", "session",
                (json_int_t)id);
}

static void pg_retry_ends(srv_sessions *s)
{
    size_t kept = 0, n = s->n_pending;
    s->n_pending = 0;
    for (size_t i = 0; i < n; i++) {
        att_error err = {0};
        int64_t v = (int64_t)s->pending_ends[i];
        if (pg_run_ints(s, "DELETE FROM login_sessions WHERE id = $1", 1, &v, NULL, &err) < 0)
            s->pending_ends[kept++] = s->pending_ends[i];
    }
    s->n_pending = kept;
}

/* Ends cached entry i: its row first (with PostgreSQL), then here. */
static void end_entry(srv_sessions *s, size_t i, const char *why)
{
    if (s->pg)
        pg_delete(s, s->items[i].id);
    drop(s, i, why);
}

/* Writes a renewal back when the last one is PG_RENEW_EVERY_MS old. */
static void pg_renew(srv_sessions *s, session *e)
{
    if (!s->pg || e->last_active - e->stored_active < PG_RENEW_EVERY_MS)
        return;
    att_error err = {0};
    int64_t v[2] = {(int64_t)e->id, e->last_active};
    if (pg_run_ints(s,
                    "UPDATE login_sessions SET last_active = GREATEST(last_active, $2) "
                    "WHERE id = $1",
                    2, v, NULL, &err) == 0)
        e->stored_active = e->last_active;
    else
        pg_failed("renew", &err);
}

/* The sweep's part with PostgreSQL: retries failed ends, ends every
 * expired row (whichever node made it), and brings the cache in step:
 * a cached session whose row is gone (logout, removal on another node)
 * ends here too, and activity other nodes wrote counts here. */
static void pg_sweep(srv_sessions *s, int64_t now)
{
    if (s->n_pending)
        pg_retry_ends(s);
    att_error err = {0};
    PGresult *res = NULL;
    int64_t v[3] = {now, s->idle_ms, s->lifetime_ms};
    if (pg_run_ints(s,
                    "DELETE FROM login_sessions WHERE last_active + $2 <= $1 "
                    "OR started_at + $3 <= $1 RETURNING id, name, started_at, last_active",
                    3, v, &res, &err) < 0) {
        pg_failed("sweep", &err);
        return;
    }
    ended_rows(s, res, NULL);
    PQclear(res);
    if (s->n == 0)
        return;
    /* {id,id,...}: at most SRV_SESSIONS_MAX ids of up to 20 digits. */
    size_t cap = s->n * 21 + 3, len = 0;
    char *ids = malloc(cap);
    if (!ids) {
        srv_log("error", "session_store_failed", "{s:s}", "what", "out of memory");
        return;
    }
    ids[len++] = '{';
    for (size_t i = 0; i < s->n; i++)
        len += (size_t)snprintf(ids + len, cap - len, "%s%llu", i ? "," : "",
                                (unsigned long long)s->items[i].id);
    snprintf(ids + len, cap - len, "}");
    const char *params[1] = {ids};
    res = NULL;
    int rc = srv_pg_exec(s->pg,
                         "SELECT id, last_active FROM login_sessions WHERE id = ANY($1::bigint[])",
                         1, params, NULL, NULL, &res, &err);
    free(ids);
    if (rc < 0) {
        pg_failed("sweep", &err);
        return;
    }
    int rows = PQntuples(res);
    for (size_t i = 0; i < s->n;) {
        session *e = &s->items[i];
        int found = 0;
        for (int r = 0; r < rows && !found; r++) {
            if ((uint64_t)srv_pg_int_at(res, r, 0) != e->id)
                continue;
            found = 1;
            int64_t stored = srv_pg_int_at(res, r, 1);
            if (stored > e->last_active)
                e->last_active = stored;
            if (stored > e->stored_active)
                e->stored_active = stored;
        }
        if (found)
            i++;
        else
            drop(s, i, "ended_elsewhere");
    }
    PQclear(res);
}

/* Copies row r of a PG_SESSION_COLUMNS result into the cache (updating the
 * entry when it is there already) and returns its index, or -1. A full
 * cache ends its least recently active session, as a full table does. */
static long pg_cache(srv_sessions *s, const PGresult *res, int r, const unsigned char digest[32])
{
    uint64_t id = (uint64_t)srv_pg_int_at(res, r, 0);
    int64_t last_active = srv_pg_int_at(res, r, 6);
    long i = find_id(s, id);
    if (i >= 0) {
        session *e = &s->items[i];
        if (last_active > e->last_active)
            e->last_active = last_active;
        if (last_active > e->stored_active)
            e->stored_active = last_active;
        return i;
    }
    if (strlen(PQgetvalue(res, r, 4)) > SRV_ACCOUNT_NAME_MAX)
        return -1;
    if (s->n == SRV_SESSIONS_MAX) {
        size_t oldest = 0;
        for (size_t k = 1; k < s->n; k++)
            if (s->items[k].last_active < s->items[oldest].last_active)
                oldest = k;
        end_entry(s, oldest, "evicted");
    }
    session *e = &s->items[s->n];
    memset(e, 0, sizeof *e);
    memcpy(e->digest, digest, 32);
    e->id = id;
    e->account_id = srv_pg_int_at(res, r, 1);
    e->password_gen = srv_pg_int_at(res, r, 2);
    e->kind = strcmp(PQgetvalue(res, r, 3), "supervisor") == 0 ? SRV_ACCOUNT_SUPERVISOR
                                                               : SRV_ACCOUNT_THERAPIST;
    snprintf(e->name, sizeof e->name, "%s", PQgetvalue(res, r, 4));
    e->started_at = srv_pg_int_at(res, r, 5);
    e->last_active = last_active;
    e->stored_active = last_active;
    return (long)s->n++;
}

/* ---- Both backends. */

void srv_sessions_sweep(srv_sessions *s, int64_t now)
{
    if (s->pg)
        pg_sweep(s, now);
    for (size_t i = 0; i < s->n;) {
        if (expired(s, &s->items[i], now))
            end_entry(s, i, expiry(s, &s->items[i]));
        else
            i++;
    }
}

/* Stores a new session's row; its id is the row's. */
static int pg_start(srv_sessions *s, const unsigned char digest[32], const srv_account *acct,
                    int64_t now, uint64_t *id_out, att_error *err)
{
    char hex[65], account_id[24], gen[24], at[24];
    srv_hex_encode(digest, 32, hex);
    snprintf(account_id, sizeof account_id, "%lld", (long long)acct->id);
    snprintf(gen, sizeof gen, "%lld", (long long)acct->password_gen);
    snprintf(at, sizeof at, "%lld", (long long)now);
    const char *params[6] = {hex,        account_id, gen, srv_account_kind_name(acct->kind),
                             acct->name, at};
    PGresult *res = NULL;
    int rc = srv_pg_exec(s->pg,
                         "INSERT INTO login_sessions (digest, account_id, password_gen, kind, "
                         "name, started_at, last_active) VALUES (decode($1, 'hex'), $2, $3, $4, "
                         "$5, $6, $6) RETURNING id",
                         6, params, NULL, NULL, &res, err);
    if (rc == 0)
        *id_out = (uint64_t)srv_pg_int_at(res, 0, 0);
    PQclear(res);
    return rc;
}

int srv_sessions_start(srv_sessions *s, const srv_account *acct, int64_t now,
                       char cookie_out[SRV_SESSION_COOKIE_BYTES], srv_session_info *out,
                       att_error *err)
{
    if (strlen(acct->name) > SRV_ACCOUNT_NAME_MAX)
        return att_fail(err, ATT_ERR_BAD_MESSAGE, "sessions: name too long");
    unsigned char raw[COOKIE_RANDOM_BYTES];
    if (srv_random_bytes(raw, sizeof raw, err) < 0)
        return -ATT_ERR_INTERNAL;
    int n = srv_b64url_encode(raw, sizeof raw, cookie_out, SRV_SESSION_COOKIE_BYTES);
    OPENSSL_cleanse(raw, sizeof raw);
    if (n < 0)
        return att_fail(err, ATT_ERR_INTERNAL, "sessions: encoding failed");
    unsigned char digest[32];
    if (digest_of(cookie_out, digest) < 0)
        return att_fail(err, ATT_ERR_INTERNAL, "sessions: digest failed");
    srv_sessions_sweep(s, now);
    if (s->n == SRV_SESSIONS_MAX) {
        size_t oldest = 0;
        for (size_t i = 1; i < s->n; i++)
            if (s->items[i].last_active < s->items[oldest].last_active)
                oldest = i;
        end_entry(s, oldest, "evicted");
    }
    uint64_t id = 0;
    if (s->pg) {
        int rc = pg_start(s, digest, acct, now, &id, err);
        if (rc < 0) {
            cookie_out[0] = '\0'; /* no cookie without its session */
            return rc;
        }
    } else {
        id = ++s->next_id; /* 64 bits: never wraps in a process's life */
    }
    session *e = &s->items[s->n];
    memset(e, 0, sizeof *e);
    memcpy(e->digest, digest, sizeof digest);
    e->id = id;
    e->account_id = acct->id;
    e->password_gen = acct->password_gen;
    e->kind = acct->kind;
    memcpy(e->name, acct->name, strlen(acct->name) + 1);
    e->started_at = now;
    e->last_active = now;
    e->stored_active = now;
    s->n++;
    fill(s, e, out);
    return 0;
}

/* Index of the session for cookie or -1. Every entry is compared (in
 * constant time) so the time does not depend on where it sits. */
static long find(const srv_sessions *s, const unsigned char d[32])
{
    long found = -1;
    for (size_t i = 0; i < s->n; i++)
        if (CRYPTO_memcmp(d, s->items[i].digest, 32) == 0)
            found = (long)i;
    return found;
}

/* 0 and the digest when the cookie has the right shape. */
static int cookie_digest(const char *cookie, unsigned char d[32])
{
    if (strlen(cookie) != SRV_SESSION_COOKIE_BYTES - 1 || digest_of(cookie, d) < 0)
        return -1;
    return 0;
}

/* The live entry at i (renewed when `renew`), or 0 after ending an expired one. */
static int use(srv_sessions *s, long i, int64_t now, int renew, srv_session_info *out)
{
    if (i < 0)
        return 0;
    session *e = &s->items[i];
    if (expired(s, e, now)) {
        end_entry(s, (size_t)i, expiry(s, e));
        return 0;
    }
    if (renew && now > e->last_active) {
        e->last_active = now;
        pg_renew(s, e);
    }
    fill(s, e, out);
    return 1;
}

/* With PostgreSQL a cookie is looked up in the table (an index lookup by
 * the SHA-256 of the cookie, which gives no timing hint about any live
 * cookie), so a session made on another node is found here and one ended
 * on another node is not. The row's activity counts before the expiry
 * check. */
static long pg_find_cookie(srv_sessions *s, const unsigned char d[32])
{
    char hex[65];
    srv_hex_encode(d, 32, hex);
    const char *params[1] = {hex};
    PGresult *res = NULL;
    att_error err = {0};
    if (srv_pg_exec(s->pg,
                    "SELECT " PG_SESSION_COLUMNS
                    " FROM login_sessions WHERE digest = decode($1, 'hex')",
                    1, params, NULL, NULL, &res, &err) < 0) {
        pg_failed("find", &err);
        return -1;
    }
    long i = -1;
    if (PQntuples(res) == 1) {
        i = pg_cache(s, res, 0, d);
    } else {
        /* Gone from the table: ended elsewhere, so here too. */
        long cached = find(s, d);
        if (cached >= 0)
            drop(s, (size_t)cached, "ended_elsewhere");
    }
    PQclear(res);
    return i;
}

static long find_cookie(srv_sessions *s, const char *cookie)
{
    unsigned char d[32];
    if (cookie_digest(cookie, d) < 0)
        return -1;
    return s->pg ? pg_find_cookie(s, d) : find(s, d);
}

int srv_sessions_touch(srv_sessions *s, const char *cookie, int64_t now, srv_session_info *out)
{
    return use(s, find_cookie(s, cookie), now, 1, out);
}

int srv_sessions_find(srv_sessions *s, const char *cookie, int64_t now, srv_session_info *out)
{
    return use(s, find_cookie(s, cookie), now, 0, out);
}

int srv_sessions_get(srv_sessions *s, uint64_t session_id, int64_t now, srv_session_info *out)
{
    return use(s, find_id(s, session_id), now, 0, out);
}

int srv_sessions_activity(srv_sessions *s, uint64_t session_id, int64_t now)
{
    return use(s, find_id(s, session_id), now, 1, NULL);
}

void srv_sessions_end(srv_sessions *s, const char *cookie)
{
    unsigned char d[32];
    if (cookie_digest(cookie, d) < 0)
        return;
    if (!s->pg) {
        long i = find(s, d);
        if (i >= 0)
            drop(s, (size_t)i, "logout");
        return;
    }
    /* The row, whichever node made it; then the cached entry. */
    char hex[65];
    srv_hex_encode(d, 32, hex);
    const char *params[1] = {hex};
    PGresult *res = NULL;
    att_error err = {0};
    if (srv_pg_exec(
            s->pg, "DELETE FROM login_sessions WHERE digest = decode($1, 'hex') RETURNING id, name",
            1, params, NULL, NULL, &res, &err) == 0) {
        ended_rows(s, res, "logout");
        PQclear(res);
        long i = find(s, d); /* its row already gone (ended elsewhere) */
        if (i >= 0)
            drop(s, (size_t)i, "logout");
        return;
    }
    pg_failed("logout", &err);
    long i = find(s, d);
    if (i >= 0)
        end_entry(s, (size_t)i, "logout"); /* keeps the id for the next sweep */
}

void srv_sessions_end_id(srv_sessions *s, uint64_t session_id, const char *why)
{
    long i = find_id(s, session_id);
    if (i >= 0)
        end_entry(s, (size_t)i, why);
    else if (s->pg && session_id)
        pg_delete(s, session_id);
}

void srv_sessions_end_account(srv_sessions *s, int64_t account_id, const char *why)
{
    if (s->pg) {
        att_error err = {0};
        PGresult *res = NULL;
        if (pg_run_ints(s, "DELETE FROM login_sessions WHERE account_id = $1 RETURNING id, name", 1,
                        &account_id, &res, &err) == 0) {
            ended_rows(s, res, why);
            PQclear(res);
        } else {
            pg_failed("end account", &err);
        }
    }
    for (size_t i = 0; i < s->n;) {
        if (s->items[i].account_id == account_id)
            end_entry(s, i, why);
        else
            i++;
    }
}

/* Every row's (account, generation) checked, not only the cached ones, so
 * a removed account's sessions end even where no node holds them. */
static void pg_revalidate(srv_sessions *s,
                          srv_session_account_state (*check)(void *arg, int64_t account_id,
                                                             int64_t password_gen),
                          void *arg)
{
    att_error err = {0};
    PGresult *pairs = NULL;
    if (srv_pg_exec(s->pg, "SELECT DISTINCT account_id, password_gen FROM login_sessions", 0, NULL,
                    NULL, NULL, &pairs, &err) < 0) {
        pg_failed("revalidate", &err);
        return;
    }
    for (int r = 0; r < PQntuples(pairs); r++) {
        int64_t v[2] = {srv_pg_int_at(pairs, r, 0), srv_pg_int_at(pairs, r, 1)};
        srv_session_account_state st = check(arg, v[0], v[1]);
        if (st == SRV_SESSION_ACCOUNT_OK)
            continue;
        PGresult *res = NULL;
        if (pg_run_ints(s,
                        "DELETE FROM login_sessions WHERE account_id = $1 AND password_gen = $2 "
                        "RETURNING id, name",
                        2, v, &res, &err) < 0) {
            pg_failed("revalidate", &err);
            continue;
        }
        ended_rows(s, res,
                   st == SRV_SESSION_ACCOUNT_REMOVED ? "account_removed" : "password_changed");
        PQclear(res);
    }
    PQclear(pairs);
}

void srv_sessions_revalidate(srv_sessions *s,
                             srv_session_account_state (*check)(void *arg, int64_t account_id,
                                                                int64_t password_gen),
                             void *arg)
{
    if (s->pg)
        pg_revalidate(s, check, arg);
    for (size_t i = 0; i < s->n;) {
        srv_session_account_state st = check(arg, s->items[i].account_id, s->items[i].password_gen);
        if (st == SRV_SESSION_ACCOUNT_REMOVED)
            end_entry(s, i, "account_removed");
        else if (st == SRV_SESSION_ACCOUNT_PASSWORD_CHANGED)
            end_entry(s, i, "password_changed");
        else
            i++;
    }
}

size_t srv_sessions_count(const srv_sessions *s)
{
    return s->n;
}
