/* pg_test.h - a fresh PostgreSQL database for one C test.
 *
 * ATTUNE_TEST_PG is a libpq URI of a throwaway cluster's maintenance
 * database with a superuser (tests/pg/cluster.sh start prints one, e.g.
 * postgresql://attune@127.0.0.1:55432/postgres). pg_test_fresh_db creates
 * a database of its own for the calling test (dropped first if a previous
 * run left it) and writes its URI to uri. Without ATTUNE_TEST_PG the test
 * is skipped (exit 77, ctest's SKIP_RETURN_CODE), except under CI=true,
 * where a missing cluster is a failure: the README's test command starts
 * one. */
#ifndef ATTUNE_PG_TEST_H
#define ATTUNE_PG_TEST_H

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static inline void pg_test_fresh_db(const char *name, char *uri, size_t n)
{
    const char *admin = getenv("ATTUNE_TEST_PG");
    if (!admin || !*admin) {
        const char *ci = getenv("CI");
        if (ci && strcmp(ci, "true") == 0) {
            fprintf(stderr, "ATTUNE_TEST_PG is not set (tests/run.sh starts a cluster)\n");
            exit(1);
        }
        printf("skipped: ATTUNE_TEST_PG is not set (tests/pg/cluster.sh start)\n");
        exit(77);
    }
    PGconn *c = PQconnectdb(admin);
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "cannot connect to ATTUNE_TEST_PG: %s", PQerrorMessage(c));
        exit(1);
    }
    char db[64], sql[160];
    snprintf(db, sizeof db, "attune_t_%s_%ld", name, (long)getpid());
    const char *steps[2] = {"DROP DATABASE IF EXISTS %s WITH (FORCE)", "CREATE DATABASE %s"};
    for (int i = 0; i < 2; i++) {
        snprintf(sql, sizeof sql, steps[i], db);
        PGresult *r = PQexec(c, sql);
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
            fprintf(stderr, "%s: %s", sql, PQerrorMessage(c));
            exit(1);
        }
        PQclear(r);
    }
    PQfinish(c);
    /* Same server and user, the new database: replace the path after the
     * authority (postgresql://user@host:port/DB[?query]). */
    const char *auth = strstr(admin, "://");
    const char *slash = auth ? strchr(auth + 3, '/') : NULL;
    size_t head = slash ? (size_t)(slash - admin) : strlen(admin);
    const char *query = slash ? strchr(slash, '?') : NULL;
    snprintf(uri, n, "%.*s/%s%s", (int)head, admin, db, query ? query : "");
}

#endif
