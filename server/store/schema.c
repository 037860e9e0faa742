/* schema.c - versioned table migrations (see schema.h). */
#include "schema.h"

#include <stdio.h>

static int schema_fail(att_error *err, sqlite3 *db, const char *module, const char *what)
{
    return att_fail(err, ATT_ERR_INTERNAL, "schema %s: %s: %s", module, what, sqlite3_errmsg(db));
}

static int exec_sql(sqlite3 *db, const char *module, const char *sql, att_error *err)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        att_fail(err, ATT_ERR_INTERNAL, "schema %s: %s", module, msg ? msg : "exec failed");
        sqlite3_free(msg);
        return -ATT_ERR_INTERNAL;
    }
    return 0;
}

int srv_schema_version(sqlite3 *db, const char *module, att_error *err)
{
    if (exec_sql(db, module,
                 "CREATE TABLE IF NOT EXISTS schema_versions ("
                 "  module TEXT PRIMARY KEY,"
                 "  version INTEGER NOT NULL)",
                 err) < 0)
        return -ATT_ERR_INTERNAL;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, "SELECT version FROM schema_versions WHERE module = ?", -1, &st,
                           NULL) != SQLITE_OK)
        return schema_fail(err, db, module, "prepare");
    sqlite3_bind_text(st, 1, module, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    int version = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return schema_fail(err, db, module, "read version");
    return version;
}

static int set_version(sqlite3 *db, const char *module, int version, att_error *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db,
                           "INSERT INTO schema_versions (module, version) VALUES (?, ?)"
                           " ON CONFLICT (module) DO UPDATE SET version = excluded.version",
                           -1, &st, NULL) != SQLITE_OK)
        return schema_fail(err, db, module, "prepare");
    sqlite3_bind_text(st, 1, module, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, version);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : schema_fail(err, db, module, "write version");
}

/* Either SQL-only steps (sql) or steps with code (steps); one is NULL. */
static int migrate(sqlite3 *db, const char *module, const char *const *sql,
                   const srv_schema_step *steps, int n_steps, void *arg, att_error *err)
{
    /* IMMEDIATE: the write lock first, so two processes opening an old
     * database do not both read version N and both run step N. */
    if (exec_sql(db, module, "BEGIN IMMEDIATE", err) < 0)
        return -ATT_ERR_INTERNAL;
    int version = srv_schema_version(db, module, err);
    int rc = version < 0 ? version : 0;
    if (rc == 0 && version > n_steps)
        rc = att_fail(err, ATT_ERR_INTERNAL,
                      "schema %s: the database is at version %d, newer than this build "
                      "knows (%d); use the newer attune-server",
                      module, version, n_steps);
    for (int v = version; rc == 0 && v < n_steps; v++) {
        const char *step_sql = sql ? sql[v] : steps[v].sql;
        if (step_sql)
            rc = exec_sql(db, module, step_sql, err);
        if (rc == 0 && steps && steps[v].fill)
            rc = steps[v].fill(db, arg, err);
        if (rc == 0)
            rc = set_version(db, module, v + 1, err);
    }
    if (rc == 0)
        rc = exec_sql(db, module, "COMMIT", err);
    if (rc < 0)
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

int srv_schema_migrate(sqlite3 *db, const char *module, const char *const *steps, int n_steps,
                       att_error *err)
{
    return migrate(db, module, steps, NULL, n_steps, NULL, err);
}

int srv_schema_migrate_steps(sqlite3 *db, const char *module, const srv_schema_step *steps,
                             int n_steps, void *arg, att_error *err)
{
    return migrate(db, module, NULL, steps, n_steps, arg, err);
}
