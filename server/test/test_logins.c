/* test_logins.c - failed-login delays (login_limit.h) and login sessions
 * (sessions.h) on their own: free failures then doubling delays up to the
 * cap, forgetting after a quiet while, take-back and reset, the key table
 * staying bounded; session ids, renewing versus background lookups, the
 * idle limit and the absolute lifetime, the sweep, ends by account and by
 * revalidation, end hooks on every end, and eviction of the least recently
 * active when the table is full; the accounts' migration from name-keyed
 * tables (version 1) to ids, and ids never reused. */
#include "accounts.h"
#include "check.h"
#include "login_limit.h"
#include "sessions.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

/* A version-1 accounts database (name-keyed, as builds before ids wrote
 * it): dana with a room, and a room whose owner name has no account. */
static void migration(void)
{
    char dir[] = "/tmp/attune-test-logins-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    srv_accounts *a = NULL;
    att_error err = {0};
    /* Make dana through the current code, then rewrite the tables as
     * version 1 had them, keeping her salt and hash. */
    CHECK(srv_accounts_open(dir, 0, &a, &err) == 0);
    CHECK(srv_accounts_add(a, "dana", "dana-long-password", 18, &err) == 0);
    srv_accounts_close(a);
    char path[256];
    snprintf(path, sizeof path, "%s/attune.db", dir);
    sqlite3 *db = NULL;
    CHECK(sqlite3_open(path, &db) == SQLITE_OK);
    const char *v1 =
        "BEGIN;"
        "CREATE TABLE therapists (name TEXT PRIMARY KEY, salt BLOB NOT NULL, hash BLOB NOT NULL,"
        "  scrypt_log2_n INTEGER NOT NULL, scrypt_r INTEGER NOT NULL, scrypt_p INTEGER NOT NULL,"
        "  created_at INTEGER NOT NULL);"
        "INSERT INTO therapists SELECT name, salt, hash, scrypt_log2_n, scrypt_r, scrypt_p,"
        "  created_at FROM accounts;"
        "DROP TABLE accounts; DROP TABLE room_owners;"
        "CREATE TABLE room_owners (room TEXT PRIMARY KEY, owner TEXT NOT NULL);"
        "CREATE INDEX room_owners_by_owner ON room_owners (owner);"
        "INSERT INTO room_owners VALUES ('r-dana', 'dana'), ('r-ghost', 'ghost');"
        "UPDATE schema_versions SET version = 1 WHERE module = 'accounts';"
        "COMMIT;";
    char *msg = NULL;
    CHECK_MSG(sqlite3_exec(db, v1, NULL, NULL, &msg) == SQLITE_OK, "%s", msg ? msg : "");
    sqlite3_free(msg);
    sqlite3_close(db);

    CHECK(srv_accounts_open(dir, 0, &a, &err) == 0);
    srv_account dana;
    CHECK_INT(srv_accounts_get(a, "dana", &dana, &err), 1);
    CHECK(dana.id > 0 && dana.password_gen == 1 && dana.kind == SRV_ACCOUNT_THERAPIST);
    CHECK_INT(srv_accounts_verify(a, "dana", "dana-long-password", 18, &err), 1);
    int64_t owner = 0;
    CHECK_INT(srv_accounts_get_owner_id(a, "r-dana", &owner, &err), 0);
    CHECK_INT(owner, dana.id);
    CHECK_INT(srv_accounts_get_owner_id(a, "r-ghost", &owner, &err), -ATT_ERR_NOT_FOUND);
    /* A new "ghost" does not get the old ghost's room; nor a re-added dana hers. */
    CHECK(srv_accounts_add(a, "ghost", "ghost-long-password", 19, &err) == 0);
    CHECK_INT(srv_accounts_get_owner_id(a, "r-ghost", &owner, &err), -ATT_ERR_NOT_FOUND);
    CHECK(srv_accounts_remove(a, "dana", &err) == 0);
    CHECK(srv_accounts_add(a, "dana", "dana-other-password", 19, &err) == 0);
    srv_account again;
    CHECK_INT(srv_accounts_get(a, "dana", &again, &err), 1);
    CHECK(again.id != dana.id);
    CHECK_INT(srv_accounts_get_owner_id(a, "r-dana", &owner, &err), -ATT_ERR_NOT_FOUND);
    /* The newest account removed: its id is still never reused. */
    int64_t id = 0;
    CHECK(srv_accounts_add_kind(a, "sup", SRV_ACCOUNT_SUPERVISOR, "sup-long-password", 17, &id,
                                &err) == 0);
    CHECK(srv_accounts_remove(a, "sup", &err) == 0);
    int64_t id2 = 0;
    CHECK(srv_accounts_add_kind(a, "sup", SRV_ACCOUNT_SUPERVISOR, "sup-long-password", 17, &id2,
                                &err) == 0);
    CHECK(id2 > id);
    srv_account sup;
    CHECK_INT(srv_accounts_get_by_id(a, id2, &sup, &err), 1);
    CHECK(sup.kind == SRV_ACCOUNT_SUPERVISOR);
    /* A password change bumps the generation. */
    CHECK(srv_accounts_set_password(a, "sup", "sup-newer-password", 18, &err) == 0);
    CHECK_INT(srv_accounts_get_by_id(a, id2, &sup, &err), 1);
    CHECK_INT(sup.password_gen, 2);
    CHECK_INT(srv_accounts_set_password(a, "nobody", "whatever-password", 17, &err),
              -ATT_ERR_NOT_FOUND);
    srv_accounts_close(a);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
}

int main(void)
{
    delays();
    sessions();
    migration();
    return check_done("logins");
}
