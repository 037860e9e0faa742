/* term.h - small terminal and signal helpers for the subcommands that run
 * for a while (replay --follow/--speed, join). Owns nothing. */
#ifndef CLI_TERM_H
#define CLI_TERM_H

#include <signal.h>
#include <stdint.h>

/* Whether to colour stdout: forced by --color / --no-color (pass 1 / 0),
 * else (pass -1) only when stdout is a terminal and NO_COLOR is unset. */
int cli_use_color(int forced);

/* Blocks SIGINT, SIGTERM (and SIGPIPE when ignore_pipe) for this thread so
 * they can be waited for with cli_wait_signal. Fills set. */
int cli_block_stop_signals(sigset_t *set);

/* Waits up to ms for a stop signal; returns 1 when one arrived, else 0. */
int cli_wait_signal(const sigset_t *set, int64_t ms);

#endif
