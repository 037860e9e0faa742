/* test_sessions_pg.c - login sessions backed by PostgreSQL
 * (srv_sessions_attach_pg): two srv_sessions on one database as two nodes,
 * against a fresh database of ATTUNE_TEST_PG (pg_test.h; skipped without it
 * outside CI). A session started on one node is found on the other by its
 * cookie, with an id unique across both; only the cookie's SHA-256 is
 * stored; activity on one node counts on the other for the idle limit; the
 * lifetime holds however active; logout, end by account and revalidation
 * on one node end the session on the other (by cookie at once, by id and
 * through its end hooks at its next sweep); a restarted node still finds
 * its sessions; the sweep of any node deletes expired rows; and a logout
 * whose connection was cut (pg_terminate_backend) still ends the session. */
#include "check.h"
#include "pg_test.h"
#include "sessions.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <string.h>

typedef struct {
    uint64_t ids[16];
    int n;
} ended_list;

static void on_end(void *arg, uint64_t id, const char *account)
{
    (void)account;
    ended_list *l = arg;
    if (l->n < 16)
        l->ids[l->n++] = id;
}

static int ended(const ended_list *l, uint64_t id)
{
    for (int i = 0; i < l->n; i++)
        if (l->ids[i] == id)
            return 1;
    return 0;
}

/* One integer answer of a query with one text parameter. */
static long long sql_int(const char *uri, const char *sql, const char *param)
{
    PGconn *c = PQconnectdb(uri);
    long long v = -1;
    if (PQstatus(c) == CONNECTION_OK) {
        const char *params[1] = {param};
        PGresult *r =
            PQexecParams(c, sql, param ? 1 : 0, NULL, param ? params : NULL, NULL, NULL, 0);
        if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
            v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        else
            fprintf(stderr, "%s: %s", sql, PQerrorMessage(c));
        PQclear(r);
    }
    PQfinish(c);
    return v;
}

static srv_account account(int64_t id, const char *name, int64_t gen)
{
    srv_account a;
    memset(&a, 0, sizeof a);
    a.id = id;
    snprintf(a.name, sizeof a.name, "%s", name);
    a.kind = SRV_ACCOUNT_THERAPIST;
    a.password_gen = gen;
    return a;
}

static srv_session_account_state gen_one_changed(void *arg, int64_t account_id, int64_t gen)
{
    int64_t target = *(const int64_t *)arg;
    return account_id == target && gen == 1 ? SRV_SESSION_ACCOUNT_PASSWORD_CHANGED
                                            : SRV_SESSION_ACCOUNT_OK;
}

static void two_nodes(const char *uri)
{
    att_error err = {0};
    srv_sessions *n1 = NULL, *n2 = NULL;
    const int64_t idle = 2000, life = 10000;
    CHECK_INT(srv_sessions_new(idle, life, &n1, &err), 0);
    CHECK_INT(srv_sessions_new(idle, life, &n2, &err), 0);
    CHECK(srv_sessions_attach_pg(n1, "not-a-uri", &err) < 0);
    CHECK_INT(srv_sessions_attach_pg(n1, uri, &err), 0);
    CHECK(srv_sessions_attach_pg(n1, uri, &err) < 0); /* once */
    CHECK_INT(srv_sessions_attach_pg(n2, uri, &err), 0);
    ended_list e1 = {0}, e2 = {0};
    CHECK_INT(srv_sessions_set_end_hook(n1, on_end, &e1), 0);
    CHECK_INT(srv_sessions_set_end_hook(n2, on_end, &e2), 0);

    /* Started on node 1, found on node 2 by its cookie. */
    const int64_t t0 = 1000000;
    srv_account dana = account(11, "dana", 1);
    char c1[SRV_SESSION_COOKIE_BYTES];
    srv_session_info i1, seen;
    CHECK_INT(srv_sessions_start(n1, &dana, t0, c1, &i1, &err), 0);
    CHECK(i1.id != 0);
    CHECK_INT(srv_sessions_find(n2, c1, t0 + 10, &seen), 1);
    CHECK_INT(seen.id, i1.id);
    CHECK_INT(seen.account_id, 11);
    CHECK_INT(seen.password_gen, 1);
    CHECK_STR(seen.account, "dana");
    CHECK_INT(seen.started_at, t0);
    CHECK_INT(srv_sessions_get(n2, i1.id, t0 + 10, NULL), 1);
    CHECK_INT(srv_sessions_find(n2, "not-a-cookie", t0, &seen), 0);
    char forged[SRV_SESSION_COOKIE_BYTES];
    memcpy(forged, c1, sizeof forged);
    forged[0] = forged[0] == 'A' ? 'B' : 'A';
    CHECK_INT(srv_sessions_find(n2, forged, t0, &seen), 0);
    /* Only the cookie's SHA-256 is stored, nothing holds the cookie. */
    CHECK_INT(sql_int(uri,
                      "SELECT count(*) FROM login_sessions WHERE digest = sha256(convert_to($1, "
                      "'UTF8'))",
                      c1),
              1);
    CHECK_INT(
        sql_int(uri, "SELECT count(*) FROM login_sessions t WHERE strpos(t::text, $1) > 0", c1), 0);

    /* Ids are unique across nodes. */
    srv_account erin = account(12, "erin", 1);
    char c2[SRV_SESSION_COOKIE_BYTES];
    srv_session_info i2;
    CHECK_INT(srv_sessions_start(n2, &erin, t0, c2, &i2, &err), 0);
    CHECK(i2.id != 0 && i2.id != i1.id);

    /* Idle: activity on node 2 keeps it alive on node 1. */
    CHECK_INT(srv_sessions_touch(n2, c1, t0 + 1500, &seen), 1);
    CHECK_INT(srv_sessions_find(n1, c1, t0 + 3000, &seen), 1);
    CHECK_INT(seen.last_active, t0 + 1500);
    /* Past the idle limit: gone on node 1 (its hook called), and node 2's
     * sweep ends its copy too. */
    CHECK_INT(srv_sessions_find(n1, c1, t0 + 3600, &seen), 0);
    CHECK(ended(&e1, i1.id));
    srv_sessions_sweep(n2, t0 + 3400);
    CHECK(ended(&e2, i1.id));
    CHECK_INT(srv_sessions_get(n2, i1.id, t0 + 3400, NULL), 0);
    CHECK_INT(srv_sessions_find(n2, c1, t0 + 3400, &seen), 0);

    /* The lifetime holds however active, on either node. */
    const int64_t t1 = 2000000;
    char c3[SRV_SESSION_COOKIE_BYTES];
    srv_session_info i3;
    CHECK_INT(srv_sessions_start(n1, &dana, t1, c3, &i3, &err), 0);
    int alive = 1;
    for (int64_t t = t1 + 1500; t < t1 + life; t += 1500)
        alive &= srv_sessions_touch((t / 1500) % 2 ? n1 : n2, c3, t, &seen) == 1;
    CHECK(alive);
    CHECK_INT(srv_sessions_find(n2, c3, t1 + life, &seen), 0);
    CHECK_INT(srv_sessions_find(n1, c3, t1 + life - 1, &seen), 0); /* its row went */
    CHECK(ended(&e1, i3.id) && ended(&e2, i3.id));

    /* Logout on node 2 of a session node 1 started and serves: by cookie
     * at once, by id (a WebSocket on node 1) at node 1's next sweep. */
    const int64_t t2 = 3000000;
    char c4[SRV_SESSION_COOKIE_BYTES];
    srv_session_info i4;
    CHECK_INT(srv_sessions_start(n1, &dana, t2, c4, &i4, &err), 0);
    CHECK_INT(srv_sessions_touch(n2, c4, t2 + 5, &seen), 1);
    CHECK_INT(srv_sessions_activity(n1, i4.id, t2 + 10), 1);
    srv_sessions_end(n2, c4);
    CHECK(ended(&e2, i4.id));
    CHECK_INT(srv_sessions_find(n1, c4, t2 + 20, &seen), 0);
    CHECK(ended(&e1, i4.id));
    char c5[SRV_SESSION_COOKIE_BYTES];
    srv_session_info i5;
    CHECK_INT(srv_sessions_start(n1, &dana, t2, c5, &i5, &err), 0);
    CHECK_INT(srv_sessions_find(n2, c5, t2 + 5, &seen), 1);
    srv_sessions_end_id(n2, i5.id, "ended");
    CHECK_INT(srv_sessions_activity(n1, i5.id, t2 + 30), 1); /* until its sweep */
    srv_sessions_sweep(n1, t2 + 40);
    CHECK(ended(&e1, i5.id));
    CHECK_INT(srv_sessions_activity(n1, i5.id, t2 + 50), 0);
    CHECK_INT(srv_sessions_find(n1, c5, t2 + 50, &seen), 0);

    /* End by account on node 1 reaches a session only node 2 holds. */
    CHECK_INT(srv_sessions_start(n2, &erin, t2, c2, &i2, &err), 0);
    srv_sessions_end_account(n1, erin.id, "account_removed");
    CHECK_INT(srv_sessions_find(n2, c2, t2 + 60, &seen), 0);
    CHECK(ended(&e2, i2.id));

    /* Revalidation on node 1 (frank's password changed) ends frank's
     * generation-1 session that node 2 started; his new one stays. */
    srv_account frank = account(13, "frank", 1), frank2 = account(13, "frank", 2);
    char c6[SRV_SESSION_COOKIE_BYTES], c7[SRV_SESSION_COOKIE_BYTES];
    srv_session_info i6, i7;
    CHECK_INT(srv_sessions_start(n2, &frank, t2, c6, &i6, &err), 0);
    CHECK_INT(srv_sessions_start(n2, &frank2, t2, c7, &i7, &err), 0);
    int64_t who = 13;
    srv_sessions_revalidate(n1, gen_one_changed, &who);
    CHECK_INT(srv_sessions_find(n2, c6, t2 + 60, &seen), 0);
    CHECK(ended(&e2, i6.id));
    CHECK_INT(srv_sessions_find(n2, c7, t2 + 60, &seen), 1);

    /* A node restarted logs nobody out: node 1 goes, a new node 1 finds
     * frank's session by its cookie. */
    srv_sessions_free(n1);
    n1 = NULL;
    CHECK_INT(srv_sessions_new(idle, life, &n1, &err), 0);
    CHECK_INT(srv_sessions_attach_pg(n1, uri, &err), 0);
    CHECK_INT(srv_sessions_touch(n1, c7, t2 + 1500, &seen), 1);
    CHECK_INT(seen.id, i7.id);
    CHECK_INT(srv_sessions_count(n1), 1);

    /* Node 2 lost: node 1's sweep deletes its expired rows. */
    srv_sessions_free(n2);
    n2 = NULL;
    CHECK(sql_int(uri, "SELECT count(*) FROM login_sessions", NULL) >= 1);
    srv_sessions_sweep(n1, t2 + 1500 + idle);
    CHECK_INT(sql_int(uri, "SELECT count(*) FROM login_sessions", NULL), 0);
    CHECK_INT(srv_sessions_count(n1), 0);

    /* The connection lost under a logout: the logout still ends the
     * session in the table (the end is written again on a new
     * connection), and lookups go on. */
    const int64_t t3 = 4000000;
    char c8[SRV_SESSION_COOKIE_BYTES];
    srv_session_info i8;
    CHECK_INT(srv_sessions_start(n1, &dana, t3, c8, &i8, &err), 0);
    CHECK_INT(sql_int(uri,
                      "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM "
                      "pg_stat_activity WHERE application_name = $1) AS t",
                      "attune-sessions"),
              1);
    srv_sessions_end(n1, c8);
    CHECK_INT(sql_int(uri,
                      "SELECT count(*) FROM login_sessions WHERE digest = sha256(convert_to($1, "
                      "'UTF8'))",
                      c8),
              0);
    CHECK_INT(srv_sessions_find(n1, c8, t3 + 10, &seen), 0);
    CHECK_INT(srv_sessions_count(n1), 0);
    char c9[SRV_SESSION_COOKIE_BYTES];
    CHECK_INT(srv_sessions_start(n1, &dana, t3, c9, NULL, &err), 0);
    CHECK_INT(srv_sessions_find(n1, c9, t3 + 10, &seen), 1);
    srv_sessions_free(n1);
}

int main(void)
{
    char uri[512];
    pg_test_fresh_db("sessions", uri, sizeof uri);
    two_nodes(uri);
    return check_done("sessions_pg");
}
