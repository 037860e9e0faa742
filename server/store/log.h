/* log.h - structured logs: one JSON object per line on stderr.
 *
 * Owns nothing but the lws log hook's state (see srv_log_lws_emit). Callers
 * pass only metadata (ids, roles, codes, counts): never what participants
 * wrote and never tokens. Any thread may call srv_log/srv_vlog (each line is
 * one fputs on an unbuffered stream); a srv_log_limiter belongs to one
 * thread. */
#ifndef SRV_LOG_H
#define SRV_LOG_H

#include <stdarg.h>
#include <stdint.h>

/* Writes {"ts":..,"level":level,"event":event, ...fields}. `fields` is a
 * jansson json_pack format for an object ("{s:s,s:i}") or NULL for none. */
void srv_log(const char *level, const char *event, const char *fields, ...);
void srv_vlog(const char *level, const char *event, const char *fields, va_list ap);

/* At most one line a second for a class of messages that an attacker (or
 * an exhausted resource) can repeat at will. */
typedef struct {
    int64_t next_ms;     /* monotonic ms from which the next line may go */
    uint64_t suppressed; /* lines held back since the last one written */
} srv_log_limiter;

/* 1 when a line may be written now (then *suppressed_out is how many were
 * held back before it, and the count restarts); 0 to hold this one back. */
int srv_log_limit(srv_log_limiter *l, int64_t now_ms, uint64_t *suppressed_out);

/* lws' log emit function (lws_set_log_level). lws gives it no argument, so
 * its state is the one static here, set on main's thread before lws starts:
 * `accept: errno N` (EMFILE/ENFILE: lws retries at once, in a busy loop) is
 * written at most once a second and calls on_accept_failure(arg) each time,
 * on the lws service thread, so the server can pause accepting. */
void srv_log_lws_emit(int level, const char *line);
void srv_log_lws_hook(void (*on_accept_failure)(void *arg), void *arg);

#endif
