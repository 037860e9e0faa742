/* login_limit.c - failed-login counting (see login_limit.h). */
#include "login_limit.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    char key[SRV_LOGIN_KEY_BYTES];
    int n; /* failures kept, oldest first */
    int64_t at[SRV_LOGIN_MAX_FAILURES];
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

static entry *find(srv_login_limit *l, const char *key)
{
    for (size_t i = 0; i < l->n; i++)
        if (strncmp(l->items[i].key, key, SRV_LOGIN_KEY_BYTES - 1) == 0)
            return &l->items[i];
    return NULL;
}

/* Drops the failures that left the window; the entry goes when none remain. */
static void prune(entry *e, int64_t now)
{
    int keep = 0;
    for (int i = 0; i < e->n; i++)
        if (now - e->at[i] < SRV_LOGIN_WINDOW_MS)
            e->at[keep++] = e->at[i];
    e->n = keep;
}

int64_t srv_login_limit_wait_s(srv_login_limit *l, const char *key, int64_t now)
{
    entry *e = find(l, key);
    if (!e)
        return 0;
    prune(e, now);
    if (e->n < SRV_LOGIN_MAX_FAILURES)
        return 0;
    int64_t ms = e->at[0] + SRV_LOGIN_WINDOW_MS - now;
    return ms <= 0 ? 1 : (ms + 999) / 1000;
}

void srv_login_limit_fail(srv_login_limit *l, const char *key, int64_t now)
{
    entry *e = find(l, key);
    if (!e) {
        /* Make room: first anything whose window is over, then the stalest. */
        if (l->n == SRV_LOGIN_MAX_KEYS) {
            size_t victim = 0;
            for (size_t i = 0; i < l->n; i++) {
                prune(&l->items[i], now);
                if (l->items[i].n == 0) {
                    victim = i;
                    break;
                }
                if (l->items[i].at[l->items[i].n - 1] < l->items[victim].at[l->items[victim].n - 1])
                    victim = i;
            }
            l->items[victim] = l->items[--l->n];
        }
        e = &l->items[l->n++];
        memset(e, 0, sizeof *e);
        strncpy(e->key, key, sizeof e->key - 1);
    }
    prune(e, now);
    if (e->n == SRV_LOGIN_MAX_FAILURES) {
        memmove(e->at, e->at + 1, sizeof e->at[0] * (SRV_LOGIN_MAX_FAILURES - 1));
        e->n--;
    }
    e->at[e->n++] = now;
}

void srv_login_limit_unfail(srv_login_limit *l, const char *key, int64_t at)
{
    entry *e = find(l, key);
    if (!e)
        return;
    for (int i = e->n - 1; i >= 0; i--) {
        if (e->at[i] == at) {
            memmove(e->at + i, e->at + i + 1, sizeof e->at[0] * (size_t)(e->n - 1 - i));
            e->n--;
            return;
        }
    }
}

void srv_login_limit_reset(srv_login_limit *l, const char *key)
{
    entry *e = find(l, key);
    if (e)
        *e = l->items[--l->n];
}
