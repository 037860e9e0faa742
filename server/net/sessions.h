/* sessions.h - staff login sessions: the `attune_session` cookie value (32
 * random bytes, base64url) maps to a session, which has an id of its own
 * (nonzero, unique in the process, never reused while it runs; with
 * PostgreSQL, unique across nodes and never reused) and belongs
 * to one account (accounts.h: its immutable id, name, kind and the password
 * generation the login checked).
 *
 * A session ends, whichever comes first:
 * - after `idle_ms` without the therapist's own actions (srv_sessions_touch
 *   and srv_sessions_activity count; srv_sessions_find and
 *   srv_sessions_get, used for background reads, do not),
 * - `lifetime_ms` after it started, however active,
 * - at logout, or when its account is removed or its password changes
 *   (srv_sessions_revalidate, which the server runs on every sweep, so even
 *   a change made by the `attune` command in another process is seen
 *   within a second),
 * - when the table is full and it is the least recently active.
 * Every end, whatever the reason, calls the end hooks (after the session is
 * gone), so what was opened with the session (WebSockets, event streams)
 * can close, and is logged (`session_ended` with the account and why:
 * logout, idle, lifetime, account_removed, password_changed, evicted,
 * ended, and with PostgreSQL ended_elsewhere: its row went on another
 * node).
 *
 * Only a SHA-256 of each cookie value is kept, and lookups compare those in
 * constant time, so neither memory nor timing gives a live cookie away.
 * Without PostgreSQL, sessions live in memory: a restart logs everybody
 * out.
 *
 * With PostgreSQL (srv_sessions_attach_pg), a table login_sessions shared
 * by every node holds each session (the SHA-256 of its cookie, never the
 * cookie; account id, name, kind, generation, started_at, last_active), so
 * a session started on one node is found on every other by its cookie, and
 * a node restarted or lost logs nobody out. The table decides:
 * - touch/find by cookie read the row (index lookup by digest), so a
 *   session ended anywhere is not found, and one started elsewhere is
 *   cached here for lookups by id and for the end hooks;
 * - get/activity by id answer from this node's cache, which every sweep
 *   brings in step with the table (a cached session whose row is gone ends
 *   here as ended_elsewhere, activity written by other nodes counts here),
 *   so an end elsewhere reaches a WebSocket here within one sweep;
 * - renewals are written back at most once a second per session;
 * - logout, end_id, end_account, revalidation and expiry delete the rows
 *   (the sweep deletes every expired row, whichever node made it; an end
 *   that could not be written is retried at each sweep), so they end the
 *   session on every node.
 * Every node must run with the same idle_ms and lifetime_ms and clocks
 * kept in step (ntp): each judges expiry with its own. A database error
 * makes lookups answer "no session" (fail closed) and is logged
 * (session_store_failed, no cookie or digest). Statements are blocking on
 * the service thread for now (one indexed row per request; acceptable
 * until the API goes asynchronous). srv_sessions_count counts this node's
 * cache.
 *
 * Times are srv_now_ms() values (ms since the epoch).
 *
 * Threads: the lws service thread only. Ownership: srv_sessions_new
 * allocates the table; srv_sessions_free frees it (without calling the
 * hooks). */
#ifndef SRV_SESSIONS_H
#define SRV_SESSIONS_H

#include <stddef.h>
#include <stdint.h>
#include "accounts.h"
#include "attune/types.h"

/* base64url of 32 bytes, no padding, plus the NUL. */
#define SRV_SESSION_COOKIE_BYTES 44
/* At most this many sessions at once; past it the least recently used goes. */
#define SRV_SESSIONS_MAX 4096
/* At most this many end hooks. */
#define SRV_SESSIONS_MAX_HOOKS 4

typedef struct srv_sessions srv_sessions;

/* A session as seen from outside (a copy). */
typedef struct {
    uint64_t id;          /* nonzero, unique in this process */
    int64_t account_id;   /* accounts.h's immutable id */
    int64_t password_gen; /* the account's generation when it logged in */
    srv_account_kind kind;
    char account[SRV_ACCOUNT_NAME_MAX + 1];
    int64_t started_at;  /* ms */
    int64_t last_active; /* ms: the last of the therapist's own actions */
    int64_t expires_at;  /* ms: when it ends unless renewed (idle or lifetime) */
} srv_session_info;

/* Called after a session ended (id and account name of the ended one). A
 * hook may look sessions up but must not start or end any. */
typedef void (*srv_session_end_fn)(void *arg, uint64_t session_id, const char *account);

/* idle_ms and lifetime_ms > 0. */
int srv_sessions_new(int64_t idle_ms, int64_t lifetime_ms, srv_sessions **out, att_error *err);
void srv_sessions_free(srv_sessions *s);

/* Backs the table with PostgreSQL (a libpq URI; the login_sessions table
 * is created when missing). Call before the first srv_sessions_start; the
 * connection is the table's and is closed by srv_sessions_free. */
int srv_sessions_attach_pg(srv_sessions *s, const char *uri, att_error *err);

/* Adds an end hook (called in the order added). Fails when
 * SRV_SESSIONS_MAX_HOOKS are set. */
int srv_sessions_set_end_hook(srv_sessions *s, srv_session_end_fn fn, void *arg);

/* Starts a session for the account at now (ms); writes the cookie value to
 * cookie_out and, when out is not NULL, the session. */
int srv_sessions_start(srv_sessions *s, const srv_account *acct, int64_t now,
                       char cookie_out[SRV_SESSION_COOKIE_BYTES], srv_session_info *out,
                       att_error *err);

/* Finds the live session for a cookie value and counts an action of its
 * therapist (last active = now); fills out. Returns 1 when found, 0 when
 * unknown or expired (an expired one is ended). */
int srv_sessions_touch(srv_sessions *s, const char *cookie, int64_t now, srv_session_info *out);
/* The same without renewing: for background reads (polls, pushed updates). */
int srv_sessions_find(srv_sessions *s, const char *cookie, int64_t now, srv_session_info *out);
/* By id, without renewing; out may be NULL. 1 when live, 0 when not. */
int srv_sessions_get(srv_sessions *s, uint64_t session_id, int64_t now, srv_session_info *out);
/* Counts an action of the therapist of session_id (a WebSocket command, for
 * instance). 1 when the session is live, 0 when not (an expired one ends). */
int srv_sessions_activity(srv_sessions *s, uint64_t session_id, int64_t now);

/* Ends the session for a cookie value (no-op when unknown). */
void srv_sessions_end(srv_sessions *s, const char *cookie);
/* Ends a session by id (no-op when unknown); `why` is logged. */
void srv_sessions_end_id(srv_sessions *s, uint64_t session_id, const char *why);
/* Ends every session of an account; `why` is logged. */
void srv_sessions_end_account(srv_sessions *s, int64_t account_id, const char *why);
/* Ends the sessions whose idle time or lifetime is over. */
void srv_sessions_sweep(srv_sessions *s, int64_t now);
/* What srv_sessions_revalidate's check answers for a session's account. */
typedef enum {
    SRV_SESSION_ACCOUNT_OK,
    SRV_SESSION_ACCOUNT_REMOVED,
    SRV_SESSION_ACCOUNT_PASSWORD_CHANGED,
} srv_session_account_state;
/* Ends the sessions for which check(arg, account_id, password_gen) is not
 * SRV_SESSION_ACCOUNT_OK. */
void srv_sessions_revalidate(srv_sessions *s,
                             srv_session_account_state (*check)(void *arg, int64_t account_id,
                                                                int64_t password_gen),
                             void *arg);

/* Live sessions (for tests and metrics). */
size_t srv_sessions_count(const srv_sessions *s);

#endif
