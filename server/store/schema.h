/* schema.h - versioned table migrations for the modules that share the data
 * directory's database (the event store, accounts, invitations, ...).
 *
 * Each module names itself and lists its steps: steps[i] is the SQL that
 * takes its tables from version i to i + 1 (and, for a step that computes
 * new columns from old values, a C function run after that SQL in the same
 * transaction: srv_schema_step). Step 0 creates the tables as
 * they were before versions were kept (with IF NOT EXISTS, so a database
 * made by an older build passes through it unchanged), later steps change
 * them. The versions live in the table `schema_versions(module, version)`;
 * a module absent from it is at version 0. Migrating runs every missing
 * step in one write transaction (BEGIN IMMEDIATE), so the server and the
 * `attune` command opening the same database at once migrate it once.
 *
 * Owns nothing; runs on the caller's thread with the caller's connection. */
#ifndef SRV_SCHEMA_H
#define SRV_SCHEMA_H

#include <sqlite3.h>
#include "attune/types.h"

/* Brings `module`'s tables to version n_steps. A database written by a
 * newer build (a higher version than n_steps) is refused, so an older
 * binary never writes tables it does not understand. Returns 0 or a
 * negative code with err set. */
int srv_schema_migrate(sqlite3 *db, const char *module, const char *const *steps, int n_steps,
                       att_error *err);

/* A step with code: `sql` (may be NULL), then fill(db, arg, err) when not
 * NULL, e.g. the event store's type column, read from sealed payloads that
 * SQL cannot open. fill returns 0 or a negative code with err set (the
 * whole migration then rolls back). */
typedef struct {
    const char *sql;
    int (*fill)(sqlite3 *db, void *arg, att_error *err);
} srv_schema_step;

/* srv_schema_migrate with steps that may run code; arg goes to each fill. */
int srv_schema_migrate_steps(sqlite3 *db, const char *module, const srv_schema_step *steps,
                             int n_steps, void *arg, att_error *err);

/* The module's stored version (0 when it has none); negative on failure. */
int srv_schema_version(sqlite3 *db, const char *module, att_error *err);

#endif
