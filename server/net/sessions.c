/* sessions.c - in-memory login sessions (see sessions.h). */
#include "sessions.h"

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include "log.h"
#include "b64url.h"
#include "random.h"
#include "token.h"

#define COOKIE_RANDOM_BYTES 32

typedef struct {
    unsigned char digest[32]; /* SHA-256 of the cookie value */
    uint64_t id;
    int64_t account_id, password_gen;
    srv_account_kind kind;
    char name[SRV_ACCOUNT_NAME_MAX + 1];
    int64_t started_at, last_active;
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
    size_t n;
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
    if (s)
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
static const char *expiry(const srv_sessions *s, const session *e)
{
    return e->started_at + s->lifetime_ms <= e->last_active + s->idle_ms ? "lifetime" : "idle";
}

void srv_sessions_sweep(srv_sessions *s, int64_t now)
{
    for (size_t i = 0; i < s->n;) {
        if (expired(s, &s->items[i], now))
            drop(s, i, expiry(s, &s->items[i]));
        else
            i++;
    }
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
        drop(s, oldest, "evicted");
    }
    session *e = &s->items[s->n];
    memset(e, 0, sizeof *e);
    memcpy(e->digest, digest, sizeof digest);
    e->id = ++s->next_id; /* 64 bits: never wraps in a process's life */
    e->account_id = acct->id;
    e->password_gen = acct->password_gen;
    e->kind = acct->kind;
    memcpy(e->name, acct->name, strlen(acct->name) + 1);
    e->started_at = now;
    e->last_active = now;
    s->n++;
    fill(s, e, out);
    return 0;
}

/* Index of the session for cookie or -1. Every entry is compared (in
 * constant time) so the time does not depend on where it sits. */
static long find(const srv_sessions *s, const char *cookie)
{
    unsigned char d[32];
    if (strlen(cookie) != SRV_SESSION_COOKIE_BYTES - 1 || digest_of(cookie, d) < 0)
        return -1;
    long found = -1;
    for (size_t i = 0; i < s->n; i++)
        if (CRYPTO_memcmp(d, s->items[i].digest, sizeof d) == 0)
            found = (long)i;
    return found;
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

/* The live entry at i (renewed when `renew`), or 0 after ending an expired one. */
static int use(srv_sessions *s, long i, int64_t now, int renew, srv_session_info *out)
{
    if (i < 0)
        return 0;
    session *e = &s->items[i];
    if (expired(s, e, now)) {
        drop(s, (size_t)i, expiry(s, e));
        return 0;
    }
    if (renew && now > e->last_active)
        e->last_active = now;
    fill(s, e, out);
    return 1;
}

int srv_sessions_touch(srv_sessions *s, const char *cookie, int64_t now, srv_session_info *out)
{
    return use(s, find(s, cookie), now, 1, out);
}

int srv_sessions_find(srv_sessions *s, const char *cookie, int64_t now, srv_session_info *out)
{
    return use(s, find(s, cookie), now, 0, out);
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
    long i = find(s, cookie);
    if (i >= 0)
        drop(s, (size_t)i, "logout");
}

void srv_sessions_end_id(srv_sessions *s, uint64_t session_id, const char *why)
{
    long i = find_id(s, session_id);
    if (i >= 0)
        drop(s, (size_t)i, why);
}

void srv_sessions_end_account(srv_sessions *s, int64_t account_id, const char *why)
{
    for (size_t i = 0; i < s->n;) {
        if (s->items[i].account_id == account_id)
            drop(s, i, why);
        else
            i++;
    }
}

void srv_sessions_revalidate(srv_sessions *s,
                             srv_session_account_state (*check)(void *arg, int64_t account_id,
                                                                int64_t password_gen),
                             void *arg)
{
    for (size_t i = 0; i < s->n;) {
        srv_session_account_state st = check(arg, s->items[i].account_id, s->items[i].password_gen);
        if (st == SRV_SESSION_ACCOUNT_REMOVED)
            drop(s, i, "account_removed");
        else if (st == SRV_SESSION_ACCOUNT_PASSWORD_CHANGED)
            drop(s, i, "password_changed");
        else
            i++;
    }
}

size_t srv_sessions_count(const srv_sessions *s)
{
    return s->n;
}
