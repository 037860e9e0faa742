/* lws_log.c - lws' log lines as JSON lines (see lws_log.h). */
#include "lws_log.h"

#include <jansson.h>
#include <libwebsockets.h>
#include <stdio.h>
#include <string.h>
#include "clock.h"
#include "log.h"

/* The lws hook's state: lws_set_log_level's emit function has no argument. */
static struct {
    void (*on_accept_failure)(void *arg);
    void *arg;
    srv_log_limiter accept_log;
} lws_hook;

void srv_log_lws_hook(void (*on_accept_failure)(void *arg), void *arg)
{
    lws_hook.on_accept_failure = on_accept_failure;
    lws_hook.arg = arg;
}

void srv_log_lws_emit(int level, const char *line)
{
    char text[512];
    snprintf(text, sizeof text, "%s", line);
    size_t n = strlen(text);
    while (n && (text[n - 1] == '\n' || text[n - 1] == '\r'))
        text[--n] = '\0';
    /* lib/roles/listen/ops-listen.c (lws 4.1): lwsl_err("accept: errno %d")
     * when accept() fails with anything but EAGAIN; the listen socket stays
     * readable, so without a pause it is retried (and logged) at once. */
    if (strncmp(text, "accept: errno", 13) == 0) {
        uint64_t held = 0;
        if (srv_log_limit(&lws_hook.accept_log, srv_mono_ms(), &held))
            srv_log("error", "accept_failed", "{s:s,s:I}", "message", text, "suppressed",
                    (json_int_t)held);
        if (lws_hook.on_accept_failure)
            lws_hook.on_accept_failure(lws_hook.arg);
        return;
    }
    srv_log(level == LLL_ERR ? "error" : "warn", "lws", "{s:s}", "message", text);
}
