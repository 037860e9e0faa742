/* test_logins.c - failed-login delays (login_limit.h) and login sessions
 * (sessions.h) on their own: free failures then doubling delays up to the
 * cap, forgetting after a quiet while, take-back and reset, the key table
 * staying bounded; session ids, renewing versus background lookups, the
 * idle limit and the absolute lifetime, the sweep, ends by account and by
 * revalidation, end hooks on every end, and eviction of the least recently
 * active when the table is full. */
#include "check.h"
#include "login_limit.h"
#include "sessions.h"

#include <stdio.h>
#include <string.h>

static void delays(void)
{
    srv_login_limit *l = NULL;
    att_error err = {0};
    CHECK(srv_login_limit_new(&l, &err) == 0);
    int64_t t = 1000000;
    const char *k = "p:127.0.0.2\x1f"
                    "dana";
    for (int i = 0; i < 5; i++) {
        CHECK_INT(srv_login_limit_wait_s(l, k, 5, t), 0);
        srv_login_limit_fail(l, k, t);
    }
    /* After 5: 5 s from the latest failure, then 10, 20, ... */
    CHECK_INT(srv_login_limit_wait_s(l, k, 5, t), 5);
    CHECK_INT(srv_login_limit_wait_s(l, k, 5, t + 4001), 1);
    CHECK_INT(srv_login_limit_wait_s(l, k, 5, t + 5000), 0);
    srv_login_limit_fail(l, k, t + 5000);
    CHECK_INT(srv_login_limit_wait_s(l, k, 5, t + 5000), 10);
    srv_login_limit_fail(l, k, t + 15000);
    CHECK_INT(srv_login_limit_wait_s(l, k, 5, t + 15000), 20);
    /* Another key, and the same key with more free failures, are free. */
    CHECK_INT(srv_login_limit_wait_s(l,
                                     "p:127.0.0.3\x1f"
                                     "dana",
                                     5, t + 15000),
              0);
    CHECK_INT(srv_login_limit_wait_s(l, k, 20, t + 15000), 0);
    /* Capped. */
    for (int i = 0; i < 40; i++)
        srv_login_limit_fail(l, k, t + 20000);
    CHECK_INT(srv_login_limit_wait_s(l, k, 5, t + 20000), SRV_LOGIN_MAX_DELAY_MS / 1000);
    /* Forgotten after a quiet while. */
    CHECK_INT(srv_login_limit_wait_s(l, k, 5, t + 20000 + SRV_LOGIN_FORGET_MS), 0);
    CHECK_INT(srv_login_limit_keys(l), 0);
    /* Take-back and reset. */
    for (int i = 0; i < 6; i++)
        srv_login_limit_fail(l, k, t);
    CHECK(srv_login_limit_wait_s(l, k, 5, t) > 0);
    srv_login_limit_unfail(l, k);
    CHECK_INT(srv_login_limit_wait_s(l, k, 5, t), 5); /* 5 left: the first delay */
    srv_login_limit_unfail(l, k);
    CHECK_INT(srv_login_limit_wait_s(l, k, 5, t), 0);
    srv_login_limit_reset(l, k);
    CHECK_INT(srv_login_limit_keys(l), 0);
    /* Bounded: a flood of names keeps at most SRV_LOGIN_MAX_KEYS, and the
     * stalest goes first. */
    srv_login_limit_fail(l, "a:old", t);
    char key[64];
    for (int i = 0; i < SRV_LOGIN_MAX_KEYS + 100; i++) {
        snprintf(key, sizeof key, "a:10.0.%d.%d", i / 256, i % 256);
        srv_login_limit_fail(l, key, t + 1 + i);
    }
    CHECK_INT(srv_login_limit_keys(l), SRV_LOGIN_MAX_KEYS);
    CHECK_INT(srv_login_limit_wait_s(l, "a:old", 1, t + 1), 0);
    CHECK(srv_login_limit_wait_s(l, key, 1, t + SRV_LOGIN_MAX_KEYS + 100) > 0);
    srv_login_limit_free(l);
}

typedef struct {
    int n;
    uint64_t ids[8];
    char names[8][SRV_ACCOUNT_NAME_MAX + 1];
} ended_log;

static void on_end(void *arg, uint64_t id, const char *account)
{
    ended_log *e = arg;
    if (e->n < 8) {
        e->ids[e->n] = id;
        snprintf(e->names[e->n], sizeof e->names[e->n], "%s", account);
    }
    e->n++;
}

static srv_session_account_state gen_two_ok(void *arg, int64_t account_id, int64_t gen)
{
    (void)arg;
    if (account_id == 2)
        return gen == 2 ? SRV_SESSION_ACCOUNT_OK : SRV_SESSION_ACCOUNT_PASSWORD_CHANGED;
    return account_id == 3 ? SRV_SESSION_ACCOUNT_REMOVED : SRV_SESSION_ACCOUNT_OK;
}

static void sessions(void)
{
    srv_sessions *s = NULL;
    att_error err = {0};
    CHECK(srv_sessions_new(0, 1000, &s, &err) < 0);
    CHECK(srv_sessions_new(2000, 10000, &s, &err) == 0);
    ended_log ended = {0};
    CHECK(srv_sessions_set_end_hook(s, on_end, &ended) == 0);
    srv_account dana = {.id = 1, .name = "dana", .password_gen = 1};
    srv_account eve = {.id = 2, .name = "eve", .password_gen = 1};
    char c1[SRV_SESSION_COOKIE_BYTES], c2[SRV_SESSION_COOKIE_BYTES];
    srv_session_info i1, i2, got;
    int64_t t = 5000000;
    CHECK(srv_sessions_start(s, &dana, t, c1, &i1, &err) == 0);
    CHECK(srv_sessions_start(s, &eve, t, c2, &i2, &err) == 0);
    CHECK(i1.id != 0 && i2.id != 0 && i1.id != i2.id);
    CHECK_INT(i1.account_id, 1);
    CHECK_INT(i1.expires_at, t + 2000);
    CHECK_INT(strlen(c1), SRV_SESSION_COOKIE_BYTES - 1);
    /* Background lookups do not renew; touch and activity do. */
    CHECK(srv_sessions_find(s, c1, t + 1500, &got) == 1 && got.id == i1.id);
    CHECK(srv_sessions_get(s, i1.id, t + 1900, &got) == 1);
    CHECK_INT(got.last_active, t);
    CHECK(srv_sessions_find(s, c1, t + 2000, &got) == 0); /* idle: ended */
    CHECK_INT(ended.n, 1);
    CHECK(ended.ids[0] == i1.id && strcmp(ended.names[0], "dana") == 0);
    CHECK(srv_sessions_touch(s, c2, t + 1500, &got) == 1);
    CHECK(srv_sessions_activity(s, i2.id, t + 3000) == 1);
    CHECK_INT(srv_sessions_get(s, i2.id, t + 3000, &got), 1);
    CHECK_INT(got.expires_at, t + 5000);
    /* The lifetime wins however active. */
    for (int64_t at = t + 4000; at < t + 10000; at += 1000)
        CHECK(srv_sessions_activity(s, i2.id, at) == 1);
    CHECK_INT(srv_sessions_get(s, i2.id, t + 9999, &got), 1);
    CHECK_INT(got.expires_at, t + 10000);
    srv_sessions_sweep(s, t + 10000);
    CHECK_INT(srv_sessions_count(s), 0);
    CHECK_INT(ended.n, 2);
    CHECK(srv_sessions_activity(s, i2.id, t + 10000) == 0);
    /* Ends by account and by revalidation (eve's generation moved; account
     * 3 removed); unknown cookies and ids are no-ops. */
    srv_account eve2 = {.id = 2, .name = "eve", .password_gen = 2};
    srv_account gone = {.id = 3, .name = "finn", .password_gen = 1};
    char c3[SRV_SESSION_COOKIE_BYTES], c4[SRV_SESSION_COOKIE_BYTES], c5[SRV_SESSION_COOKIE_BYTES];
    int64_t u = t + 20000;
    CHECK(srv_sessions_start(s, &eve, u, c3, NULL, &err) == 0);
    CHECK(srv_sessions_start(s, &eve2, u, c4, &i2, &err) == 0);
    CHECK(srv_sessions_start(s, &gone, u, c5, NULL, &err) == 0);
    CHECK(srv_sessions_start(s, &dana, u, c1, &i1, &err) == 0);
    ended.n = 0;
    srv_sessions_revalidate(s, gen_two_ok, NULL);
    CHECK_INT(ended.n, 2);
    CHECK(srv_sessions_find(s, c3, u, NULL) == 0 && srv_sessions_find(s, c5, u, NULL) == 0);
    CHECK(srv_sessions_find(s, c4, u, NULL) == 1);
    srv_sessions_end(s, "not-a-cookie");
    srv_sessions_end_id(s, 999999, "ended");
    CHECK_INT(ended.n, 2);
    srv_sessions_end_account(s, 2, "password_changed");
    CHECK_INT(ended.n, 3);
    CHECK(ended.ids[2] == i2.id);
    srv_sessions_end(s, c1);
    CHECK_INT(ended.n, 4);
    CHECK_INT(srv_sessions_count(s), 0);
    srv_sessions_free(s);

    /* Full: the least recently active goes, with its hook. */
    CHECK(srv_sessions_new(1000000, 10000000, &s, &err) == 0);
    ended_log full = {0};
    CHECK(srv_sessions_set_end_hook(s, on_end, &full) == 0);
    char c[SRV_SESSION_COOKIE_BYTES], first[SRV_SESSION_COOKIE_BYTES];
    srv_session_info fi;
    CHECK(srv_sessions_start(s, &dana, u, first, &fi, &err) == 0);
    for (int i = 1; i < SRV_SESSIONS_MAX; i++)
        CHECK(srv_sessions_start(s, &eve, u + i, c, NULL, &err) == 0);
    CHECK(srv_sessions_touch(s, first, u + SRV_SESSIONS_MAX, NULL) == 1);
    CHECK_INT(full.n, 0);
    CHECK(srv_sessions_start(s, &eve, u + SRV_SESSIONS_MAX + 1, c, NULL, &err) == 0);
    CHECK_INT(srv_sessions_count(s), SRV_SESSIONS_MAX);
    CHECK_INT(full.n, 1);
    CHECK(srv_sessions_find(s, first, u + SRV_SESSIONS_MAX + 1, NULL) == 1); /* renewed: kept */
    srv_sessions_free(s);
}

int main(void)
{
    delays();
    sessions();
    return check_done("logins");
}
