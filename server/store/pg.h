/* pg.h - one blocking PostgreSQL connection, for the modules that keep rows
 * several nodes share (accounts, login sessions, invitations, keys, the
 * audit log, and the event store's reader). The event store's writer does
 * not use this: it runs libpq non-blocking in pipeline mode on its own
 * thread (store_pg.c).
 *
 * URIs are libpq's (postgresql://USER@HOST:PORT/DB?...), multi-host ones
 * included; srv_pg_connect adds target_session_attrs=read-write and a
 * connect timeout unless the URI sets them, so after a failover of
 * PostgreSQL a reconnect finds the new primary.
 *
 * Threads: a srv_pg belongs to one thread at a time (libpq: no two threads
 * on one PGconn); callers that are called from several threads guard it
 * with their own mutex. Ownership: the srv_pg owns its PGconn; results
 * handed out are the caller's to PQclear. Errors never carry a parameter's
 * value (they may be health information): only PostgreSQL's message
 * about the statement, which names no value for the statements used here. */
#ifndef SRV_PG_H
#define SRV_PG_H

#include <libpq-fe.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include "attune/types.h"

typedef struct srv_pg srv_pg;

/* Every connection's session settings (libpq "options", unless the URI
 * sets its own): a lock is waited for at most SRV_PG_LOCK_WAIT_MS, and a
 * session idle inside a transaction for SRV_PG_IDLE_TX_MS is ended by
 * PostgreSQL, so a frozen node (SIGSTOP) cannot hold rows others need for
 * longer than that. Schema scripts wait for each other without a bound. */
#define SRV_PG_LOCK_WAIT_MS 2000
#define SRV_PG_IDLE_TX_MS 5000
#define SRV_PG_SESSION_OPTIONS "-c lock_timeout=2000 -c idle_in_transaction_session_timeout=5000"

/* 1 when location is a PostgreSQL URI (postgresql:// or postgres://). */
int srv_pg_is_uri(const char *location);

/* Connects (blocking, bounded by the connect timeout). application_name
 * shows in pg_stat_activity (tests find a node's connection by it). */
int srv_pg_connect(const char *uri, const char *application_name, srv_pg **out, att_error *err);
void srv_pg_close(srv_pg *c);
PGconn *srv_pg_conn(srv_pg *c);

/* Runs one statement with text parameters (NULL lengths/formats: all text;
 * a NULL param is SQL NULL). On success *out (when out is not NULL) gets the
 * result, which the caller PQclears; tuples or command ok are success. When
 * the connection is found broken BEFORE the statement was sent, it
 * reconnects once and sends it; a connection lost after sending fails with
 * ATT_ERR_INTERNAL and a message saying the outcome is unknown (callers
 * that write read back before they retry). */
int srv_pg_exec(srv_pg *c, const char *sql, int nparams, const char *const *params,
                const int *lengths, const int *formats, PGresult **out, att_error *err);

/* Runs a script of several statements (DDL) in one transaction under a
 * cluster-wide advisory lock (so nodes starting together do not race on
 * CREATE ... IF NOT EXISTS). */
int srv_pg_exec_script(srv_pg *c, const char *script, att_error *err);

/* Copies the libpq error of res (or of the connection when res is NULL)
 * into err with code ATT_ERR_INTERNAL, prefixed by what; returns the code. */
int srv_pg_fail(srv_pg *c, const PGresult *res, const char *what, att_error *err);

/* An integer as a text parameter, and a result's integer column. */
typedef struct {
    char text[24];
} srv_pg_int_text;

static inline srv_pg_int_text srv_pg_int_text_of(int64_t v)
{
    srv_pg_int_text t;
    snprintf(t.text, sizeof t.text, "%lld", (long long)v);
    return t;
}

static inline int64_t srv_pg_int_at(const PGresult *res, int row, int col)
{
    return strtoll(PQgetvalue(res, row, col), NULL, 10);
}

#endif
