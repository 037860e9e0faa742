/* sessions.h - therapists' login sessions: the `attune_session` cookie value
 * (32 random bytes, base64url) maps to an account name until the session
 * has been idle for `idle_ms` or is ended by logout.
 *
 * Only a SHA-256 of each cookie value is kept, and lookups compare those in
 * constant time, so neither memory nor timing gives a live cookie away.
 * Sessions live in memory: a restart logs everybody out.
 *
 * Threads: the lws service thread only. Ownership: srv_sessions_new
 * allocates the table; srv_sessions_free frees it. */
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

typedef struct srv_sessions srv_sessions;

int srv_sessions_new(int64_t idle_ms, srv_sessions **out, att_error *err);
void srv_sessions_free(srv_sessions *s);

/* Starts a session for name at now (ms); writes the cookie value to
 * cookie_out. */
int srv_sessions_start(srv_sessions *s, const char *name, int64_t now,
                       char cookie_out[SRV_SESSION_COOKIE_BYTES], att_error *err);

/* Finds the live session for a cookie value and renews it (last use = now);
 * writes its account name to name_out (SRV_ACCOUNT_NAME_MAX + 1). Returns 1
 * when found, 0 when unknown or expired (an expired one is dropped). */
int srv_sessions_touch(srv_sessions *s, const char *cookie, int64_t now, char *name_out);

/* Ends the session for a cookie value (no-op when unknown). */
void srv_sessions_end(srv_sessions *s, const char *cookie);

/* Ends every session of an account (it was removed). */
void srv_sessions_end_account(srv_sessions *s, const char *name);

/* Live sessions (for tests and metrics). */
size_t srv_sessions_count(const srv_sessions *s);

#endif
