/* log.c - JSON-lines logger on stderr (see log.h). */
#include "log.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void srv_vlog(const char *level, const char *event, const char *fields, va_list ap)
{
    json_t *line = json_object();
    if (!line)
        return;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    char stamp[40];
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(stamp + n, sizeof stamp - n, ".%03ldZ", ts.tv_nsec / 1000000);
    json_object_set_new(line, "ts", json_string(stamp));
    json_object_set_new(line, "level", json_string(level));
    json_object_set_new(line, "event", json_string(event));
    if (fields) {
        json_error_t jerr;
        json_t *extra = json_vpack_ex(&jerr, 0, fields, ap);
        if (extra)
            json_object_update(line, extra);
        json_decref(extra);
    }
    char *text = json_dumps(line, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(line);
    if (!text)
        return;
    /* One write per line so lines from two threads never interleave. */
    fprintf(stderr, "%s\n", text);
    free(text);
}

void srv_log(const char *level, const char *event, const char *fields, ...)
{
    va_list ap;
    va_start(ap, fields);
    srv_vlog(level, event, fields, ap);
    va_end(ap);
}

int srv_log_limit(srv_log_limiter *l, int64_t now_ms, uint64_t *suppressed_out)
{
    if (now_ms < l->next_ms) {
        l->suppressed++;
        return 0;
    }
    if (suppressed_out)
        *suppressed_out = l->suppressed;
    l->suppressed = 0;
    l->next_ms = now_ms + 1000;
    return 1;
}
