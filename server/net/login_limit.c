/* login_limit.c - failed-login counting with growing delays (see
 * login_limit.h). */
#include "login_limit.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    char key[SRV_LOGIN_KEY_BYTES];
    int failures;
    int64_t last_failure;
} entry;

struct srv_login_limit {
    size_t n;
    entry items[SRV_LOGIN_MAX_KEYS];
};

int srv_login_limit_new(srv_login_limit **out, att_error *err)
{
    *out = calloc(1, sizeof **out);
    if (!*out)
        return att_fail(err, ATT_ERR_INTERNAL, "login limit: out of memory");
    return 0;
}

void srv_login_limit_free(srv_login_limit *l)
{
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

int64_t srv_login_limit_wait_s(srv_login_limit *l, const char *key, int free_failures, int64_t now)
{
    long i = find(l, key);
    if (i < 0)
        return 0;
    entry *e = &l->items[i];
    if (forgotten(e, now)) {
        drop(l, (size_t)i);
        return 0;
    }
    int64_t ms = e->last_failure + delay_ms(e->failures, free_failures) - now;
    return ms <= 0 ? 0 : (ms + 999) / 1000;
}

void srv_login_limit_fail(srv_login_limit *l, const char *key, int64_t now)
{
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
    long i = find(l, key);
    if (i >= 0 && --l->items[i].failures <= 0)
        drop(l, (size_t)i);
}

void srv_login_limit_reset(srv_login_limit *l, const char *key)
{
    long i = find(l, key);
    if (i >= 0)
        drop(l, (size_t)i);
}

size_t srv_login_limit_keys(const srv_login_limit *l)
{
    return l->n;
}
