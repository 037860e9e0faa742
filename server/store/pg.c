/* pg.c - see pg.h. */
#include "pg.h"

#include <stdlib.h>
#include <string.h>

struct srv_pg {
    PGconn *conn;
    char *uri;
    char *app;
};

int srv_pg_is_uri(const char *location)
{
    return location && (strncmp(location, "postgresql://", 13) == 0 ||
                        strncmp(location, "postgres://", 11) == 0);
}

/* NOTICEs ("relation already exists, skipping") would go to stderr, which
 * is the server's JSON log: drop them; errors reach callers as results. */
static void drop_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

/* libpq keywords we set unless the URI already does. */
static int open_conn(srv_pg *c, att_error *err)
{
    const char *keys[6] = {"dbname", "application_name", NULL, NULL, NULL, NULL};
    const char *vals[6] = {c->uri, c->app, NULL, NULL, NULL, NULL};
    int n = 2;
    if (!strstr(c->uri, "target_session_attrs")) {
        keys[n] = "target_session_attrs";
        vals[n++] = "read-write";
    }
    if (!strstr(c->uri, "connect_timeout")) {
        keys[n] = "connect_timeout";
        vals[n++] = "5";
    }
    /* Bounded waits. A node frozen inside a transaction (SIGSTOP, a long
     * pause) keeps its row locks until PostgreSQL ends its session: after
     * SRV_PG_IDLE_TX_MS idle in a transaction it does, and meanwhile no
     * statement of ours waits more than SRV_PG_LOCK_WAIT_MS for a lock (a
     * room's acquire on the service thread fails and the member retries). */
    if (!strstr(c->uri, "options")) {
        keys[n] = "options";
        vals[n++] = SRV_PG_SESSION_OPTIONS;
    }
    /* expand_dbname = 1: the URI in dbname is expanded, later keywords
     * override what it says. */
    c->conn = PQconnectdbParams(keys, vals, 1);
    if (!c->conn)
        return att_fail(err, ATT_ERR_INTERNAL, "postgresql: out of memory");
    PQsetNoticeProcessor(c->conn, drop_notice, NULL);
    if (PQstatus(c->conn) != CONNECTION_OK) {
        int rc = att_fail(err, ATT_ERR_INTERNAL, "postgresql: cannot connect: %s",
                          PQerrorMessage(c->conn));
        PQfinish(c->conn);
        c->conn = NULL;
        return rc;
    }
    return 0;
}

int srv_pg_connect(const char *uri, const char *application_name, srv_pg **out, att_error *err)
{
    *out = NULL;
    if (!srv_pg_is_uri(uri))
        return att_fail(err, ATT_ERR_INVALID_INPUT,
                        "not a PostgreSQL URI (postgresql://USER@HOST:PORT/DB)");
    srv_pg *c = calloc(1, sizeof *c);
    if (!c || !(c->uri = strdup(uri)) ||
        !(c->app = strdup(application_name ? application_name : "attune"))) {
        srv_pg_close(c);
        return att_fail(err, ATT_ERR_INTERNAL, "out of memory");
    }
    int rc = open_conn(c, err);
    if (rc < 0) {
        srv_pg_close(c);
        return rc;
    }
    *out = c;
    return 0;
}

void srv_pg_close(srv_pg *c)
{
    if (!c)
        return;
    if (c->conn)
        PQfinish(c->conn);
    free(c->uri);
    free(c->app);
    free(c);
}

PGconn *srv_pg_conn(srv_pg *c)
{
    return c->conn;
}

int srv_pg_fail(srv_pg *c, const PGresult *res, const char *what, att_error *err)
{
    const char *msg = res ? PQresultErrorMessage(res) : NULL;
    if (!msg || !*msg)
        msg = c && c->conn ? PQerrorMessage(c->conn) : "no connection";
    /* libpq messages end in a newline; the log lines are one line each. */
    size_t len = strlen(msg);
    while (len && (msg[len - 1] == '\n' || msg[len - 1] == ' '))
        len--;
    return att_fail(err, ATT_ERR_INTERNAL, "postgresql: %s: %.*s", what, (int)len, msg);
}

/* Reconnects when the connection is known to be gone (nothing was sent on
 * it yet for the statement at hand). */
static int ensure_conn(srv_pg *c, att_error *err)
{
    if (c->conn && PQstatus(c->conn) == CONNECTION_OK)
        return 0;
    if (c->conn) {
        PQreset(c->conn);
        PQsetNoticeProcessor(c->conn, drop_notice, NULL);
        if (PQstatus(c->conn) == CONNECTION_OK)
            return 0;
        PQfinish(c->conn);
        c->conn = NULL;
    }
    return open_conn(c, err);
}

int srv_pg_exec(srv_pg *c, const char *sql, int nparams, const char *const *params,
                const int *lengths, const int *formats, PGresult **out, att_error *err)
{
    if (out)
        *out = NULL;
    int rc = ensure_conn(c, err);
    if (rc < 0)
        return rc;
    PGresult *res = PQexecParams(c->conn, sql, nparams, NULL, params, lengths, formats, 0);
    ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
        if (out)
            *out = res;
        else
            PQclear(res);
        return 0;
    }
    if (PQstatus(c->conn) != CONNECTION_OK)
        rc = att_fail(err, ATT_ERR_INTERNAL,
                      "postgresql: connection lost while a statement ran (its outcome is unknown)");
    else
        rc = srv_pg_fail(c, res, "statement failed", err);
    PQclear(res);
    return rc;
}

int srv_pg_exec_script(srv_pg *c, const char *script, att_error *err)
{
    int rc = srv_pg_exec(c, "BEGIN", 0, NULL, NULL, NULL, NULL, err);
    if (rc < 0)
        return rc;
    /* Schema changes wait for each other as long as they take (nodes
     * starting together), not SRV_PG_LOCK_WAIT_MS. */
    rc = srv_pg_exec(c, "SET LOCAL lock_timeout = 0", 0, NULL, NULL, NULL, NULL, err);
    /* One constant key for every Attune schema change: 'attune' as bytes. */
    if (rc == 0)
        rc = srv_pg_exec(c, "SELECT pg_advisory_xact_lock(6384934101634410853)", 0, NULL, NULL,
                         NULL, NULL, err);
    if (rc == 0) {
        PGresult *res = PQexec(c->conn, script);
        ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
        if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
            rc = srv_pg_fail(c, res, "schema", err);
        PQclear(res);
    }
    if (rc == 0)
        return srv_pg_exec(c, "COMMIT", 0, NULL, NULL, NULL, NULL, err);
    att_error ignored;
    srv_pg_exec(c, "ROLLBACK", 0, NULL, NULL, NULL, NULL, &ignored);
    return rc;
}
