/* test_audit_pg.c - the audit log on PostgreSQL (srv_audit_open_pg_key),
 * against a fresh database of ATTUNE_TEST_PG (pg_test.h; skipped without
 * it outside CI), with two handles as two nodes: entries recorded from
 * both, interleaved, form one chain with ids 1..n; the same from two
 * threads appending at once (one handle each), past a walk's page; walks
 * and filters as on SQLite; repeats coalesce across nodes; UPDATE, DELETE
 * and TRUNCATE are refused; a row edited with the triggers off (as a
 * superuser can) is named by verify and blocks new entries, a row deleted
 * at the end too; the head needs the audit key. */
#include "audit.h"
#include "check.h"
#include "clock.h"
#include "pg_test.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static srv_seal_key key_of(unsigned char fill)
{
    srv_seal_key k;
    memset(k.bytes, fill, sizeof k.bytes);
    return k;
}

static int rec(srv_audit *a, int64_t at, const char *actor, int64_t actor_id,
               srv_audit_action action, const char *room, const char *detail)
{
    srv_audit_entry e = {at, actor, actor_id, action, room, detail};
    att_error err = {0};
    int64_t id = 0;
    int rc = srv_audit_record(a, &e, &id, &err);
    return rc < 0 ? rc : (int)id;
}

static void check_ok(srv_audit *a, int64_t entries)
{
    srv_audit_check c;
    att_error err = {0};
    CHECK_INT(srv_audit_verify(a, &c, &err), 0);
    CHECK_MSG(c.ok, "%s", c.why);
    CHECK_INT(c.entries, entries);
    CHECK_INT(c.head_id, entries);
}

static void check_bad(srv_audit *a, int64_t first_bad, const char *why_has)
{
    srv_audit_check c;
    att_error err = {0};
    CHECK_INT(srv_audit_verify(a, &c, &err), 0);
    CHECK(!c.ok);
    CHECK_INT(c.first_bad, first_bad);
    CHECK_MSG(strstr(c.why, why_has) != NULL, "why: %s", c.why);
}

/* Runs SQL on a connection of the test's own (a superuser's): 1 when it
 * succeeded, 0 when it failed with an error containing want. */
static int raw_sql(const char *uri, const char *text, const char *want)
{
    PGconn *c = PQconnectdb(uri);
    CHECK(PQstatus(c) == CONNECTION_OK);
    PGresult *r = PQexec(c, text);
    ExecStatusType st = PQresultStatus(r);
    int ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
    int refused = !ok && want && strstr(PQresultErrorMessage(r), want) != NULL;
    CHECK_MSG(ok || refused, "%s: %s", text, PQresultErrorMessage(r));
    PQclear(r);
    PQfinish(c);
    return ok;
}

static int collect(const srv_audit_row *row, void *arg)
{
    char *out = arg;
    char one[64];
    snprintf(one, sizeof one, "%lld:%s ", (long long)row->id, row->action);
    strncat(out, one, 511 - strlen(out));
    return 0;
}

static int count_rows(const srv_audit_row *row, void *arg)
{
    (void)row;
    (*(int64_t *)arg)++;
    return 0;
}

static void test_two_nodes(const char *uri)
{
    srv_seal_key key = key_of(7);
    srv_audit *a = NULL, *b = NULL;
    att_error err = {0};
    CHECK_INT(srv_audit_open_pg_key("not-a-uri", &key, &a, &err), -ATT_ERR_INVALID_INPUT);
    CHECK(a == NULL);
    CHECK_INT(srv_audit_open_pg_key(uri, &key, &a, &err), 0);
    CHECK_INT(srv_audit_open_pg_key(uri, &key, &b, &err), 0); /* another node */
    CHECK(srv_audit_is_pg(a));
    check_ok(a, 0);
    /* interleaved: one chain, numbered across both */
    CHECK_INT(rec(a, 1000, "dana", 1, SRV_AUDIT_CREATED, "r-one", NULL), 1);
    CHECK_INT(rec(b, 2000, "dana", 1, SRV_AUDIT_OPENED, "r-one", NULL), 2);
    CHECK_INT(rec(a, 3000, "sam", 2, SRV_AUDIT_EXPORTED, "r-two", NULL), 3);
    CHECK_INT(rec(b, 4000, "dana", 1, SRV_AUDIT_LINKS_REVOKED, "r-one", "partner_a"), 4);
    CHECK_INT(rec(a, 5000, "cli:root", 0, SRV_AUDIT_KEYS_ROTATED, NULL, NULL), 5);
    check_ok(a, 5);
    check_ok(b, 5);

    char got[512] = "";
    srv_audit_filter all = {0};
    CHECK_INT(srv_audit_walk(b, &all, collect, got, &err), 0);
    CHECK_STR(got, "1:created 2:opened 3:exported 4:links_revoked 5:keys_rotated ");
    got[0] = '\0';
    srv_audit_filter mine = {.actor_id = 1, .newest_first = 1, .limit = 2};
    CHECK_INT(srv_audit_walk(a, &mine, collect, got, &err), 0);
    CHECK_STR(got, "4:links_revoked 2:opened ");
    got[0] = '\0';
    mine.before_id = 2;
    CHECK_INT(srv_audit_walk(a, &mine, collect, got, &err), 0);
    CHECK_STR(got, "1:created ");
    got[0] = '\0';
    srv_audit_filter room = {.room = "r-two"};
    CHECK_INT(srv_audit_walk(a, &room, collect, got, &err), 0);
    CHECK_STR(got, "3:exported ");
    got[0] = '\0';
    srv_audit_filter since = {.action = "links_revoked", .after_id = 1};
    CHECK_INT(srv_audit_walk(a, &since, collect, got, &err), 0);
    CHECK_STR(got, "4:links_revoked ");
    got[0] = '\0';
    srv_audit_filter actor = {.actor = "cli:root"};
    CHECK_INT(srv_audit_walk(a, &actor, collect, got, &err), 0);
    CHECK_STR(got, "5:keys_rotated ");

    /* a repeat on the other node coalesces into the first node's entry */
    srv_audit_entry open = {10000, "dana", 1, SRV_AUDIT_OPENED, "r-one", NULL};
    int64_t id = 0;
    CHECK_INT(srv_audit_record_once(a, &open, SRV_AUDIT_COALESCE_MS, &id, &err), 0);
    CHECK_INT(id, 2);
    open.at = 2000 + SRV_AUDIT_COALESCE_MS + 1;
    CHECK_INT(srv_audit_record_once(b, &open, SRV_AUDIT_COALESCE_MS, &id, &err), 0);
    CHECK_INT(id, 6);
    check_ok(a, 6);

    /* free text is refused before anything is written */
    CHECK_INT(rec(a, 7000, "dana", 1, SRV_AUDIT_OPENED, "r-one", "I felt abandoned"),
              -ATT_ERR_BAD_MESSAGE);
    CHECK_INT(rec(a, 7000, "dana smith", 1, SRV_AUDIT_OPENED, "r-one", NULL), -ATT_ERR_BAD_MESSAGE);
    check_ok(b, 6);
    srv_audit_close(b);
    srv_audit_close(a);
}

typedef struct {
    const char *uri;
    const char *actor;
    int n;
    int failed;
    int64_t max_id;
} appender;

static void *append_many(void *arg)
{
    appender *ap = arg;
    srv_seal_key key = key_of(7);
    srv_audit *a = NULL;
    att_error err = {0};
    if (srv_audit_open_pg_key(ap->uri, &key, &a, &err) < 0) {
        ap->failed = ap->n;
        return NULL;
    }
    for (int i = 0; i < ap->n; i++) {
        srv_audit_entry e = {20000 + i, ap->actor, 3, SRV_AUDIT_OPENED, "r-busy", NULL};
        int64_t id = 0;
        if (srv_audit_record(a, &e, &id, &err) < 0)
            ap->failed++;
        else if (id > ap->max_id)
            ap->max_id = id;
    }
    srv_audit_close(a);
    return NULL;
}

/* Two nodes appending at once: no append fails, none forks the chain. */
static void test_concurrent(const char *uri)
{
    const int per_thread = 300; /* 606 entries in all: more than one walk page */
    appender ap[2] = {{uri, "node-a", per_thread, 0, 0}, {uri, "node-b", per_thread, 0, 0}};
    pthread_t th[2];
    int64_t t0 = srv_mono_ms();
    for (int i = 0; i < 2; i++)
        CHECK_INT(pthread_create(&th[i], NULL, append_many, &ap[i]), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    int64_t took = srv_mono_ms() - t0;
    printf("audit on PostgreSQL: %d appends from 2 threads in %lld ms (%.0f/s)\n", 2 * per_thread,
           (long long)took, took > 0 ? 2000.0 * per_thread / (double)took : 0.0);
    CHECK_INT(ap[0].failed, 0);
    CHECK_INT(ap[1].failed, 0);
    const int64_t total = 6 + 2 * per_thread;
    CHECK(ap[0].max_id == total || ap[1].max_id == total);

    srv_seal_key key = key_of(7);
    srv_audit *a = NULL;
    att_error err = {0};
    CHECK_INT(srv_audit_open_pg_key(uri, &key, &a, &err), 0);
    check_ok(a, total); /* every hash chains onto the one before, ids 1..total */
    int64_t n = 0;
    srv_audit_filter busy = {.room = "r-busy"};
    CHECK_INT(srv_audit_walk(a, &busy, count_rows, &n, &err), 0);
    CHECK_INT(n, 2 * per_thread);
    n = 0;
    srv_audit_filter node_b = {.actor = "node-b", .newest_first = 1};
    CHECK_INT(srv_audit_walk(a, &node_b, count_rows, &n, &err), 0);
    CHECK_INT(n, per_thread);
    n = 0;
    srv_audit_filter capped = {.limit = 501, .after_id = 3};
    CHECK_INT(srv_audit_walk(a, &capped, count_rows, &n, &err), 0);
    CHECK_INT(n, 501);
    srv_audit_close(a);
}

/* What a superuser with the triggers off can do, verify names. */
static void test_tampering(const char *uri)
{
    srv_seal_key key = key_of(7);
    srv_audit *a = NULL;
    att_error err = {0};
    CHECK_INT(srv_audit_open_pg_key(uri, &key, &a, &err), 0);
    int64_t total = 0;
    CHECK_INT(srv_audit_walk(a, NULL, count_rows, &total, &err), 0);
    CHECK(total > 6);

    /* append-only for everyone while the triggers stand */
    CHECK(!raw_sql(uri, "UPDATE audit_log SET room = 'r-x' WHERE id = 2", "append-only"));
    CHECK(!raw_sql(uri, "DELETE FROM audit_log WHERE id = 2", "append-only"));
    CHECK(!raw_sql(uri, "TRUNCATE audit_log", "append-only"));
    check_ok(a, total);

    /* an edited entry is named */
    CHECK(raw_sql(uri,
                  "SET session_replication_role = replica;"
                  "UPDATE audit_log SET room = 'r-two' WHERE id = 2",
                  NULL));
    check_bad(a, 2, "edited");
    /* put back, the log verifies again */
    CHECK(raw_sql(uri,
                  "SET session_replication_role = replica;"
                  "UPDATE audit_log SET room = 'r-one' WHERE id = 2",
                  NULL));
    check_ok(a, total);

    /* the last entry's hash recomputed by someone without the audit key:
     * the head no longer matches, and no new entry re-signs the edit */
    char upd[160];
    snprintf(upd, sizeof upd,
             "SET session_replication_role = replica;"
             " UPDATE audit_log SET hash = '\\x%064d' WHERE id = %lld",
             0, (long long)total);
    CHECK(raw_sql(uri, upd, NULL));
    check_bad(a, total, "edited");
    CHECK(rec(a, 90000, "dana", 1, SRV_AUDIT_OPENED, "r-one", NULL) < 0);

    /* the last entry deleted */
    char del[128];
    snprintf(del, sizeof del,
             "SET session_replication_role = replica; DELETE FROM audit_log WHERE id = %lld",
             (long long)total);
    CHECK(raw_sql(uri, del, NULL));
    check_bad(a, total, "deleted");
    CHECK(rec(a, 90000, "dana", 1, SRV_AUDIT_OPENED, "r-one", NULL) < 0);

    /* the head needs the audit key */
    srv_seal_key other = key_of(9);
    srv_audit *wrong = NULL;
    CHECK_INT(srv_audit_open_pg_key(uri, &other, &wrong, &err), 0);
    check_bad(wrong, 0, "MAC");
    srv_audit_close(wrong);
    srv_audit_close(a);
}

int main(void)
{
    char uri[512];
    pg_test_fresh_db("audit", uri, sizeof uri);
    test_two_nodes(uri);
    test_concurrent(uri);
    test_tampering(uri);
    return check_done("test_audit_pg");
}
