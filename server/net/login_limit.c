/* login_limit.c - failed-login counting with growing delays (see
 * login_limit.h). */
#include "login_limit.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include "log.h"
#include "pg.h"

typedef struct {
    char key[SRV_LOGIN_KEY_BYTES];
    int failures;
    int64_t last_failure;
} entry;

struct srv_login_limit {
    srv_pg *shared; /* NULL: this node only */
    unsigned shared_writes;
    size_t n;
    entry items[SRV_LOGIN_MAX_KEYS];
};

static const char SHARED_SCHEMA[] =
    "CREATE TABLE IF NOT EXISTS login_failures (key bytea PRIMARY KEY, failures int4 NOT NULL, "
    "last_ms int8 NOT NULL);";

int srv_login_limit_share(srv_login_limit *l, const char *uri, att_error *err)
{
    int rc = srv_pg_connect(uri, "attune-login-limit", &l->shared, err);
    if (rc == 0 && (rc = srv_pg_exec_script(l->shared, SHARED_SCHEMA, err)) < 0) {
        srv_pg_close(l->shared);
        l->shared = NULL;
    }
    return rc;
}

/* The shared row's key: SHA-256 of the key text (which names an address
 * and an account). */
static int shared_key(const char *key, unsigned char out[32])
{
    unsigned len = 0;
    return EVP_Digest(key, strnlen(key, SRV_LOGIN_KEY_BYTES - 1), out, &len, EVP_sha256(), NULL) ==
                       1 &&
                   len == 32
               ? 0
               : -1;
}

/* Runs one statement on the shared table with $1 = the key's hash and, when
 * arg is not NULL, $2 = *arg; failures are logged and leave the local
 * count to do the work. */
static PGresult *shared_run(srv_login_limit *l, const char *sql, const char *key,
                            const int64_t *arg)
{
    unsigned char k[32];
    if (!l->shared || shared_key(key, k) < 0)
        return NULL;
    srv_pg_int_text a = srv_pg_int_text_of(arg ? *arg : 0);
    const char *p[2] = {(const char *)k, a.text};
    int len[2] = {32, 0}, fmt[2] = {1, 0};
    PGresult *r = NULL;
    att_error err = {0};
    if (srv_pg_exec(l->shared, sql, arg ? 2 : 1, p, len, fmt, &r, &err) < 0) {
        srv_log("warn", "login_limit_unshared", "{s:s}", "error", err.message);
        return NULL;
    }
    return r;
}

int srv_login_limit_new(srv_login_limit **out, att_error *err)
{
    *out = calloc(1, sizeof **out);
    if (!*out)
        return att_fail(err, ATT_ERR_INTERNAL, "login limit: out of memory");
    return 0;
}

void srv_login_limit_free(srv_login_limit *l)
{
    if (l)
        srv_pg_close(l->shared);
    free(l);
}

static long find(const srv_login_limit *l, const char *key)
{
    for (size_t i = 0; i < l->n; i++)
        if (strncmp(l->items[i].key, key, SRV_LOGIN_KEY_BYTES - 1) == 0)
            return (long)i;
    return -1;
}

static void drop(srv_login_limit *l, size_t i)
{
    l->items[i] = l->items[--l->n];
}

static int forgotten(const entry *e, int64_t now)
{
    return now - e->last_failure >= SRV_LOGIN_FORGET_MS;
}

/* The delay after `failures` failures: 0 up to free_failures, then the
 * first delay doubling, capped. */
static int64_t delay_ms(int failures, int free_failures)
{
    if (failures < free_failures)
        return 0;
    int64_t d = SRV_LOGIN_FIRST_DELAY_MS;
    for (int k = free_failures; k < failures && d < SRV_LOGIN_MAX_DELAY_MS; k++)
        d *= 2;
    return d < SRV_LOGIN_MAX_DELAY_MS ? d : SRV_LOGIN_MAX_DELAY_MS;
}

static int64_t wait_of(const entry *e, int free_failures, int64_t now)
{
    int64_t ms = e->last_failure + delay_ms(e->failures, free_failures) - now;
    return ms <= 0 ? 0 : (ms + 999) / 1000;
}

/* The shared count's wait (0 when there is none, or no answer). */
static int64_t shared_wait_s(srv_login_limit *l, const char *key, int free_failures, int64_t now)
{
    int64_t since = now - SRV_LOGIN_FORGET_MS;
    PGresult *r = shared_run(
        l, "SELECT failures, last_ms FROM login_failures WHERE key = $1 AND last_ms > $2::int8",
        key, &since);
    int64_t wait = 0;
    if (r && PQntuples(r) == 1) {
        entry e = {.failures = (int)srv_pg_int_at(r, 0, 0), .last_failure = srv_pg_int_at(r, 0, 1)};
        wait = wait_of(&e, free_failures, now);
    }
    PQclear(r);
    return wait;
}

int64_t srv_login_limit_wait_s(srv_login_limit *l, const char *key, int free_failures, int64_t now)
{
    int64_t shared = shared_wait_s(l, key, free_failures, now);
    long i = find(l, key);
    if (i < 0)
        return shared;
    entry *e = &l->items[i];
    if (forgotten(e, now)) {
        drop(l, (size_t)i);
        return shared;
    }
    int64_t local = wait_of(e, free_failures, now);
    return local > shared ? local : shared;
}

static void shared_fail(srv_login_limit *l, const char *key, int64_t now)
{
    char sql[400];
    /* A count older than SRV_LOGIN_FORGET_MS starts again at 1. */
    snprintf(sql, sizeof sql,
             "INSERT INTO login_failures AS f VALUES ($1, 1, $2::int8) ON CONFLICT (key) DO UPDATE "
             "SET failures = CASE WHEN $2::int8 - f.last_ms >= %d THEN 1 ELSE "
             "least(f.failures + 1, 1000000) END, last_ms = $2::int8",
             SRV_LOGIN_FORGET_MS);
    PQclear(shared_run(l, sql, key, &now));
    /* Forgotten rows go now and then, so the table holds about
     * SRV_LOGIN_FORGET_MS of failures. */
    int64_t since = now - SRV_LOGIN_FORGET_MS;
    if (l->shared && ++l->shared_writes % 256 == 0)
        PQclear(shared_run(l, "DELETE FROM login_failures WHERE key <> $1 AND last_ms < $2::int8",
                           key, &since));
}

void srv_login_limit_fail(srv_login_limit *l, const char *key, int64_t now)
{
    shared_fail(l, key, now);
    long i = find(l, key);
    if (i < 0) {
        /* Make room: first a forgotten key, then the stalest. */
        if (l->n == SRV_LOGIN_MAX_KEYS) {
            size_t victim = 0;
            for (size_t k = 0; k < l->n; k++) {
                if (forgotten(&l->items[k], now)) {
                    victim = k;
                    break;
                }
                if (l->items[k].last_failure < l->items[victim].last_failure)
                    victim = k;
            }
            drop(l, victim);
        }
        i = (long)l->n++;
        memset(&l->items[i], 0, sizeof l->items[i]);
        strncpy(l->items[i].key, key, sizeof l->items[i].key - 1);
    } else if (forgotten(&l->items[i], now)) {
        l->items[i].failures = 0;
    }
    entry *e = &l->items[i];
    if (e->failures < 1000000)
        e->failures++;
    e->last_failure = now;
}

void srv_login_limit_unfail(srv_login_limit *l, const char *key)
{
    PQclear(shared_run(l, "UPDATE login_failures SET failures = failures - 1 WHERE key = $1", key,
                       NULL));
    long i = find(l, key);
    if (i >= 0 && --l->items[i].failures <= 0)
        drop(l, (size_t)i);
}

void srv_login_limit_reset(srv_login_limit *l, const char *key)
{
    PQclear(shared_run(l, "DELETE FROM login_failures WHERE key = $1", key, NULL));
    long i = find(l, key);
    if (i >= 0)
        drop(l, (size_t)i);
}

size_t srv_login_limit_keys(const srv_login_limit *l)
{
    return l->n;
}
