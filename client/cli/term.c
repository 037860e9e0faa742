/* term.c - colour decision and signal waits (see term.h). */
#include "term.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int cli_use_color(int forced)
{
    if (forced >= 0)
        return forced;
    const char *no = getenv("NO_COLOR");
    const char *term = getenv("TERM");
    if (no && no[0])
        return 0;
    if (term && strcmp(term, "dumb") == 0)
        return 0;
    return isatty(STDOUT_FILENO);
}

int cli_block_stop_signals(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGTERM);
    return sigprocmask(SIG_BLOCK, set, NULL);
}

int cli_wait_signal(const sigset_t *set, int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    for (;;) {
        int sig = sigtimedwait(set, NULL, &ts);
        if (sig > 0)
            return 1;
        if (errno == EINTR)
            continue; /* the remaining time is lost; close enough for a pacing delay */
        return 0;
    }
}
