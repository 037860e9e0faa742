/* log.h - structured logs: one JSON object per line on stderr.
 *
 * Owns nothing. Callers pass only metadata (ids, roles, codes, counts):
 * never what participants wrote and never tokens. Any thread may call these
 * (each line is one fputs on an unbuffered stream). */
#ifndef SRV_LOG_H
#define SRV_LOG_H

#include <stdarg.h>

/* Writes {"ts":..,"level":level,"event":event, ...fields}. `fields` is a
 * jansson json_pack format for an object ("{s:s,s:i}") or NULL for none. */
void srv_log(const char *level, const char *event, const char *fields, ...);
void srv_vlog(const char *level, const char *event, const char *fields, va_list ap);

#endif
