/* schema.h - versioned table migrations for the modules that share the data
 * directory's database (the event store, accounts, invitations, ...).
 *
 * Each module names itself and lists its steps: steps[i] is the SQL that
 * takes its tables from version i to i + 1. Step 0 creates the tables as
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

/* The module's stored version (0 when it has none); negative on failure. */
int srv_schema_version(sqlite3 *db, const char *module, att_error *err);

#endif
