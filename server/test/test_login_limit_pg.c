/* test_login_limit_pg.c - failed-login delays shared by several nodes
 * (srv_login_limit_share), against a fresh database of ATTUNE_TEST_PG
 * (pg_test.h; skipped without it outside CI). Two limiters on one database
 * are two nodes: failures spread over both add up, a success on one takes
 * them back on the other, only hashes of the keys are stored, forgotten
 * counts start again, and a limiter whose database went away still limits
 * by its own count. */
#include "check.h"
#include "login_limit.h"
#include "pg_test.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <string.h>

static const char KEY[] = "p:192.0.2.7\x1f"
                          "dana";

static long long scalar(const char *uri, const char *sql)
{
    PGconn *c = PQconnectdb(uri);
    PGresult *r = PQexec(c, sql);
    long long v = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1
                      ? strtoll(PQgetvalue(r, 0, 0), NULL, 10)
                      : -1;
    PQclear(r);
    PQfinish(c);
    return v;
}

static void two_nodes(const char *uri)
{
    srv_login_limit *one = NULL, *two = NULL;
    att_error err = {0};
    CHECK(srv_login_limit_new(&one, &err) == 0);
    CHECK(srv_login_limit_new(&two, &err) == 0);
    CHECK(srv_login_limit_share(one, uri, &err) == 0);
    CHECK(srv_login_limit_share(two, uri, &err) == 0);
    int64_t t = 1700000000000;
    /* Five failures, alternating nodes: each node alone saw 2 or 3 (free),
     * together they reach the first delay on both. */
    for (int i = 0; i < 5; i++) {
        srv_login_limit *node = i % 2 ? two : one;
        CHECK_INT(srv_login_limit_wait_s(node, KEY, 5, t), 0);
        srv_login_limit_fail(node, KEY, t);
    }
    CHECK_INT(srv_login_limit_wait_s(one, KEY, 5, t), 5);
    CHECK_INT(srv_login_limit_wait_s(two, KEY, 5, t), 5);
    srv_login_limit_fail(two, KEY, t + 5000);
    CHECK_INT(srv_login_limit_wait_s(one, KEY, 5, t + 5000), 10);
    /* Only the SHA-256 of the key is stored. */
    CHECK_INT(scalar(uri, "SELECT count(*) FROM login_failures WHERE length(key) = 32"), 1);
    CHECK_INT(scalar(uri, "SELECT count(*) FROM login_failures WHERE position('dana'::bytea in "
                          "key) > 0 OR position('192.0.2.7'::bytea in key) > 0"),
              0);
    CHECK_INT(scalar(uri, "SELECT failures FROM login_failures"), 6);
    /* A success on one node takes it back on the other. */
    srv_login_limit_reset(one, KEY);
    /* (two's own count, 3, is below the free failures) */
    CHECK_INT(srv_login_limit_wait_s(two, KEY, 5, t + 5000), 0);
    CHECK_INT(scalar(uri, "SELECT count(*) FROM login_failures"), 0);
    /* Take-back of a counted attempt whose password was right. */
    for (int i = 0; i < 6; i++)
        srv_login_limit_fail(i % 2 ? one : two, KEY, t + 10000);
    CHECK_INT(srv_login_limit_wait_s(one, KEY, 5, t + 10000), 10);
    srv_login_limit_unfail(two, KEY);
    CHECK_INT(scalar(uri, "SELECT failures FROM login_failures"), 5);
    /* Forgotten after a quiet while: the next failure starts at 1. */
    int64_t later = t + 10000 + SRV_LOGIN_FORGET_MS;
    CHECK_INT(srv_login_limit_wait_s(one, KEY, 5, later), 0);
    srv_login_limit_fail(one, KEY, later);
    CHECK_INT(scalar(uri, "SELECT failures FROM login_failures"), 1);
    srv_login_limit_free(one);
    srv_login_limit_free(two);
}

/* The database gone (the URI of a closed port): a node limits alone. */
static void database_away(void)
{
    srv_login_limit *l = NULL;
    att_error err = {0};
    CHECK(srv_login_limit_new(&l, &err) == 0);
    CHECK(srv_login_limit_share(l, "postgresql://attune@127.0.0.1:9/none?connect_timeout=1", &err) <
          0);
    CHECK(err.message[0] != '\0');
    int64_t t = 1700000000000;
    for (int i = 0; i < 5; i++)
        srv_login_limit_fail(l, KEY, t);
    CHECK_INT(srv_login_limit_wait_s(l, KEY, 5, t), 5);
    srv_login_limit_free(l);
}

int main(void)
{
    char uri[512];
    pg_test_fresh_db("login_limit", uri, sizeof uri);
    two_nodes(uri);
    database_away();
    return check_done("login_limit_pg");
}
