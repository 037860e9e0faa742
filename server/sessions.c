/* sessions.c - in-memory login sessions (see sessions.h). */
#include "sessions.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>
#include "token.h"

#define COOKIE_RANDOM_BYTES 32

typedef struct {
    unsigned char digest[32]; /* SHA-256 of the cookie value */
    char name[SRV_ACCOUNT_NAME_MAX + 1];
    int64_t last_used;
} session;

struct srv_sessions {
    int64_t idle_ms;
    size_t n;
    session items[SRV_SESSIONS_MAX];
};

int srv_sessions_new(int64_t idle_ms, srv_sessions **out, att_error *err)
{
    srv_sessions *s = calloc(1, sizeof *s);
    if (!s)
        return att_fail(err, ATT_ERR_INTERNAL, "sessions: out of memory");
    s->idle_ms = idle_ms;
    *out = s;
    return 0;
}

void srv_sessions_free(srv_sessions *s)
{
    if (s)
        OPENSSL_cleanse(s, sizeof *s);
    free(s);
}

static int digest_of(const char *cookie, unsigned char out[32])
{
    unsigned int len = 0;
    return EVP_Digest(cookie, strlen(cookie), out, &len, EVP_sha256(), NULL) == 1 && len == 32 ? 0
                                                                                               : -1;
}

static void drop(srv_sessions *s, size_t i)
{
    s->items[i] = s->items[--s->n];
    OPENSSL_cleanse(&s->items[s->n], sizeof s->items[s->n]);
}

static void drop_expired(srv_sessions *s, int64_t now)
{
    for (size_t i = 0; i < s->n;) {
        if (now - s->items[i].last_used >= s->idle_ms)
            drop(s, i);
        else
            i++;
    }
}

int srv_sessions_start(srv_sessions *s, const char *name, int64_t now,
                       char cookie_out[SRV_SESSION_COOKIE_BYTES], att_error *err)
{
    if (strlen(name) > SRV_ACCOUNT_NAME_MAX)
        return att_fail(err, ATT_ERR_BAD_MESSAGE, "sessions: name too long");
    unsigned char raw[COOKIE_RANDOM_BYTES];
    if (RAND_bytes(raw, sizeof raw) != 1)
        return att_fail(err, ATT_ERR_INTERNAL, "sessions: no random bytes");
    int n = srv_b64url_encode(raw, sizeof raw, cookie_out, SRV_SESSION_COOKIE_BYTES);
    OPENSSL_cleanse(raw, sizeof raw);
    if (n < 0)
        return att_fail(err, ATT_ERR_INTERNAL, "sessions: encoding failed");
    drop_expired(s, now);
    if (s->n == SRV_SESSIONS_MAX) {
        size_t oldest = 0;
        for (size_t i = 1; i < s->n; i++)
            if (s->items[i].last_used < s->items[oldest].last_used)
                oldest = i;
        drop(s, oldest);
    }
    session *e = &s->items[s->n];
    if (digest_of(cookie_out, e->digest) < 0)
        return att_fail(err, ATT_ERR_INTERNAL, "sessions: digest failed");
    memcpy(e->name, name, strlen(name) + 1);
    e->last_used = now;
    s->n++;
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

int srv_sessions_touch(srv_sessions *s, const char *cookie, int64_t now, char *name_out)
{
    long i = find(s, cookie);
    if (i < 0)
        return 0;
    session *e = &s->items[i];
    if (now - e->last_used >= s->idle_ms) {
        drop(s, (size_t)i);
        return 0;
    }
    e->last_used = now;
    memcpy(name_out, e->name, strlen(e->name) + 1);
    return 1;
}

void srv_sessions_end(srv_sessions *s, const char *cookie)
{
    long i = find(s, cookie);
    if (i >= 0)
        drop(s, (size_t)i);
}

void srv_sessions_end_account(srv_sessions *s, const char *name)
{
    for (size_t i = 0; i < s->n;) {
        if (strcmp(s->items[i].name, name) == 0)
            drop(s, i);
        else
            i++;
    }
}

size_t srv_sessions_count(const srv_sessions *s)
{
    return s->n;
}
