/* clock.h - the server's and the command's clocks, in one place.
 *
 * Owns nothing; any thread may call these. Wall time (srv_now_ms) is what
 * is stored and shown (event ts, invitation expiry, session times); the
 * monotonic clocks measure durations and deadlines, which must not jump
 * when the wall clock is set. srv_mono_ms is CLOCK_MONOTONIC, the clock
 * lws_now_usecs() reads on Linux, so the two may be compared. */
#ifndef SRV_CLOCK_H
#define SRV_CLOCK_H

#include <stdint.h>

/* Wall clock: ms since the Unix epoch (CLOCK_REALTIME). */
int64_t srv_now_ms(void);

/* Monotonic clock (CLOCK_MONOTONIC): ms and ns since an arbitrary start. */
int64_t srv_mono_ms(void);
int64_t srv_mono_ns(void);

#endif
