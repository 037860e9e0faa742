/* login_limit.h - counts failed logins per key (the server uses one key per
 * username and one per client address) in a sliding window: after
 * SRV_LOGIN_MAX_FAILURES failures within SRV_LOGIN_WINDOW_MS the key is
 * refused until the oldest of them leaves the window.
 *
 * Memory is bounded: at most SRV_LOGIN_MAX_KEYS keys; past that, the key
 * whose latest failure is oldest is forgotten. Threads: the lws service
 * thread only. Ownership: srv_login_limit_new allocates, _free frees. */
#ifndef SRV_LOGIN_LIMIT_H
#define SRV_LOGIN_LIMIT_H

#include <stdint.h>
#include "attune/types.h"

#define SRV_LOGIN_MAX_FAILURES 5
#define SRV_LOGIN_WINDOW_MS (5 * 60 * 1000)
#define SRV_LOGIN_MAX_KEYS 8192
#define SRV_LOGIN_KEY_BYTES 96

typedef struct srv_login_limit srv_login_limit;

int srv_login_limit_new(srv_login_limit **out, att_error *err);
void srv_login_limit_free(srv_login_limit *l);

/* 0 when key may try now, else the seconds (>= 1) until it may. */
int64_t srv_login_limit_wait_s(srv_login_limit *l, const char *key, int64_t now);
/* Records a failed attempt for key at now. */
void srv_login_limit_fail(srv_login_limit *l, const char *key, int64_t now);
/* Takes back the failure recorded at `at` (an attempt counted while its
 * password was being checked turned out right). */
void srv_login_limit_unfail(srv_login_limit *l, const char *key, int64_t at);
/* Forgets key's failures (after a successful login). */
void srv_login_limit_reset(srv_login_limit *l, const char *key);

#endif
