/* log.h - structured logs: one JSON object per line on stderr.
 *
 * Owns nothing (lws' log lines come here through net/lws_log.c). Callers
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

#endif
