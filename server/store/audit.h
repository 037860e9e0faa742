/* audit.h - the audit log: who opened, exported, revoked links of, shared,
 * backed up or erased which room, and when. Never what was in it: an entry
 * holds a time, an actor (a staff account's name and id, or "cli:<unix
 * user>" for the `attune` command), an action from the fixed list below, a
 * room id and an optional detail that is itself a fixed word or an account
 * name (a role, a supervisor's account); nothing a participant typed, no
 * note text, no exercise input.
 *
 * Storage: tables `audit_log` and `audit_head` in DATA/attune.db (schema
 * module "audit"), through a connection of this module's own. Entries are
 * numbered 1, 2, 3... without gaps and chained like the events: each
 * entry's hash is SHA-256 over ("attune.audit.v1", the previous entry's
 * hash (32 zero bytes before entry 1), id and time as 8 bytes big-endian,
 * actor id as 8 bytes big-endian, actor, NUL, action, NUL, room, NUL,
 * detail, NUL). The one head row holds the last id and hash and an
 * HMAC-SHA256 over ("attune.audit.head.v1", id, hash) under the keyring's
 * service key "audit" (keyring.h), a key kept outside the database. So
 * someone who can write attune.db but not read the KEK can edit, drop,
 * insert or reorder entries only detectably (srv_audit_verify names the
 * first); deleting the whole log together with its head row leaves an
 * empty log, which verifies (the head would have to live outside the
 * database to catch that; keys.db is not for events).
 *
 * With PostgreSQL (srv_audit_open_pg, attune-server --store) the same two
 * tables live in the shared database and every node appends to the one
 * log: an append takes a transaction-scoped advisory lock first, so
 * appends from all nodes and the `attune` command form one chain, ids
 * 1..n without a gap, never two entries chained onto one. The head is
 * MAC'd under the same service key, which every node unwraps from the
 * shared keyring (the same KEK on every node). A node that loses its
 * connection while an append commits gets an error saying the outcome is
 * unknown; the entry may be stored, and nothing retries it. An append
 * waits for another's lock at most pg.h's lock_timeout (2 s) and fails
 * then (a node stopped mid-append loses its session, and the lock, after
 * idle_in_transaction_session_timeout).
 *
 * Append-only: this interface has no update and no delete, and triggers
 * refuse UPDATE and DELETE on audit_log from any connection (and, on
 * PostgreSQL, TRUNCATE; a superuser or the table's owner can disable a
 * trigger, and the chain catches what is changed then). An erased
 * room's entries stay (they say that it was erased, not what it held).
 *
 * Threads: a handle is used by one thread at a time. In attune-server that
 * is the lws service thread, and srv_audit_record runs there synchronously:
 * one small write transaction with its fsync (WAL, synchronous=FULL; about
 * a millisecond on an SSD, more on a slow disk) per recorded action. The
 * actions are rare (a therapist opening or exporting a room, a revoke, an
 * erase), and srv_audit_record_once coalesces repeated opens, so this is
 * not on any participant's turn. The `attune` command uses it on main's
 * thread; several processes may append at once (BEGIN IMMEDIATE orders
 * them; on PostgreSQL, the advisory lock, across nodes too). On
 * PostgreSQL each call is a few blocking round trips to the database on
 * the caller's thread (about a millisecond on loopback).
 *
 * Ownership: srv_audit_open allocates the handle (it keeps a copy of the
 * head key, wiped by srv_audit_close); entries handed to callbacks are
 * valid only during the call. */
#ifndef SRV_AUDIT_H
#define SRV_AUDIT_H

#include <stddef.h>
#include <stdint.h>
#include "attune/types.h"
#include "seal.h"

struct srv_keyring;

/* The keyring's service key the head is MAC'd under. */
#define SRV_AUDIT_KEY_NAME "audit"
/* An actor: an account name (64) or "cli:" and a unix user name. */
#define SRV_AUDIT_ACTOR_MAX 80
#define SRV_AUDIT_ROOM_MAX 64
#define SRV_AUDIT_DETAIL_MAX 64
/* How long srv_audit_record_once folds repeats of one (actor, action,
 * room) into the first: a dashboard reopening a room, a live view
 * reconnecting. 10 minutes. */
#define SRV_AUDIT_COALESCE_MS (10 * 60 * 1000)

typedef enum {
    SRV_AUDIT_CREATED,          /* a room was created */
    SRV_AUDIT_OPENED,           /* a therapist opened a room: its page or its live view */
    SRV_AUDIT_OBSERVED,         /* a supervisor opened a room's live view */
    SRV_AUDIT_EXPORTED,         /* the session log was read: replay, report, review */
    SRV_AUDIT_LINKS_REVOKED,    /* a role's links revoked (detail: the role) */
    SRV_AUDIT_LINK_ISSUED,      /* a new partner link issued (detail: the role) */
    SRV_AUDIT_OBSERVER_ADDED,   /* a supervisor invited to observe (detail: their account) */
    SRV_AUDIT_OBSERVER_REMOVED, /* that invitation taken back (detail: their account) */
    SRV_AUDIT_ERASED,           /* the room's key destroyed and its rows deleted */
    SRV_AUDIT_KEYS_ROTATED,     /* every key rewrapped under a new KEK (no room) */
    SRV_AUDIT_BACKUP,           /* a backup written (detail: "events" or "keys") */
    SRV_AUDIT_RESTORED,         /* a data directory restored from a backup */
    SRV_AUDIT__COUNT
} srv_audit_action;

/* "opened", "links_revoked", ...; NULL for a value out of range. */
const char *srv_audit_action_name(srv_audit_action action);
/* The action named, or -1. */
int srv_audit_action_from_name(const char *name);

typedef struct srv_audit srv_audit;

/* One entry to record. room and detail may be NULL or "" (none). */
typedef struct {
    int64_t at;        /* ms since the epoch */
    const char *actor; /* 1..SRV_AUDIT_ACTOR_MAX bytes */
    int64_t actor_id;  /* the account's id, 0 for the command line */
    srv_audit_action action;
    const char *room;   /* a room id or NULL */
    const char *detail; /* a fixed word or an account name, or NULL */
} srv_audit_entry;

/* One stored entry, valid during a walk's callback. */
typedef struct {
    int64_t id;
    int64_t at;
    const char *actor;
    int64_t actor_id;
    const char *action; /* its stored name */
    const char *room;   /* "" for none */
    const char *detail; /* "" for none */
    unsigned char hash[32];
} srv_audit_row;

/* Opens DIR/attune.db (it must exist or be creatable), brings the audit
 * tables to this build's version, and takes the head key: from the
 * keyring's service key "audit" (srv_audit_open) or the caller's 32 bytes
 * (srv_audit_open_key: tests, and tools that hold the key already). */
int srv_audit_open(const char *dir, struct srv_keyring *keys, srv_audit **out, att_error *err);
int srv_audit_open_key(const char *dir, const srv_seal_key *head_key, srv_audit **out,
                       att_error *err);
/* The same log in a PostgreSQL database (a libpq URI), shared by every
 * node on it: tables audit_log and audit_head (and the triggers), created
 * when missing under pg.h's schema lock. */
int srv_audit_open_pg(const char *uri, struct srv_keyring *keys, srv_audit **out, att_error *err);
int srv_audit_open_pg_key(const char *uri, const srv_seal_key *head_key, srv_audit **out,
                          att_error *err);
/* 1 when the log is in PostgreSQL. */
int srv_audit_is_pg(const srv_audit *a);
void srv_audit_close(srv_audit *a);

/* Appends one entry and moves the head, in one transaction. Refuses (and
 * writes nothing) when the entry carries what an entry may not (an actor,
 * room or detail outside its character set or length: free text has no
 * place here), and when the stored head's MAC does not check or it does
 * not name the last entry: appending would re-sign an edited log.
 * *id_out (may be NULL) gets the new entry's id. */
int srv_audit_record(srv_audit *a, const srv_audit_entry *e, int64_t *id_out, att_error *err);
/* The same unless the actor's last entry of this action for this room was
 * recorded less than window_ms before e->at (then nothing is written and
 * *id_out is that entry's id). */
int srv_audit_record_once(srv_audit *a, const srv_audit_entry *e, int64_t window_ms,
                          int64_t *id_out, att_error *err);

/* Which entries a walk visits: all (zero values), one room's, one actor's
 * (by name or by account id > 0), one action's (by name), those with id <
 * before_id (> 0) and id > after_id, at most limit (> 0), newest first
 * when newest_first is set. */
typedef struct {
    const char *room;
    const char *actor;
    int64_t actor_id;
    const char *action;
    int64_t before_id;
    int64_t after_id;
    int limit;
    int newest_first;
} srv_audit_filter;

/* Calls fn for each entry the filter selects; a nonzero return from fn
 * stops the walk and is returned. */
int srv_audit_walk(srv_audit *a, const srv_audit_filter *f,
                   int (*fn)(const srv_audit_row *row, void *arg), void *arg, att_error *err);

/* What srv_audit_verify found. ok: every entry's hash recomputes, ids run
 * 1..n without a gap, and the head names entry n with its hash under a
 * good MAC. Otherwise first_bad is the first entry that fails (0 when the
 * entries are sound and only the head is wrong) and why says how, in
 * words (no content: the log holds none). */
typedef struct {
    int ok;
    int64_t entries;
    int64_t head_id;
    unsigned char head_hash[32];
    int64_t first_bad;
    char why[160];
} srv_audit_check;

/* Walks the whole log and checks it (see srv_audit_check). Returns 0 when
 * the check ran (look at out->ok), negative when it could not read. */
int srv_audit_verify(srv_audit *a, srv_audit_check *out, att_error *err);

/* The actor name of the `attune` command run by this process's user:
 * "cli:<name>" (or "cli:uid<N>" when the user has no name). */
void srv_audit_cli_actor(char out[SRV_AUDIT_ACTOR_MAX + 1]);

#endif
