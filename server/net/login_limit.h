/* login_limit.h - counts failed logins per key and answers how long the
 * key must wait before its next try: nothing for the first `free_failures`
 * failures, then a delay that doubles with each further failure
 * (SRV_LOGIN_FIRST_DELAY_MS, twice that, ... at most SRV_LOGIN_MAX_DELAY_MS)
 * counted from the latest failure. A key's count is forgotten after
 * SRV_LOGIN_FORGET_MS without a failure, and at a successful login.
 *
 * The server uses two keys per attempt (api.c): the account name together
 * with the client address, and the address alone with a higher free count.
 * So wrong passwords from one address slow down that address only: the
 * account's owner logs in from elsewhere undisturbed, and an address that
 * sprays many names is slowed as a whole. Nothing is a hard lock.
 *
 * Memory is bounded: at most SRV_LOGIN_MAX_KEYS keys; past that a key whose
 * count is forgotten goes first, else the one whose latest failure is
 * oldest. Threads: the lws service thread only. Ownership:
 * srv_login_limit_new allocates, _free frees.
 *
 * Several nodes (srv_login_limit_share): every node behind the proxy sees
 * only the attempts that reached it, so a guesser spreading attempts over
 * the nodes would get each node's free failures. Shared, the counts also
 * live in PostgreSQL (table login_failures: the SHA-256 of the key, never
 * the name or address; the failures; the latest failure's wall-clock ms),
 * and a key waits as long as the larger of its local and shared counts
 * says. When the database does not answer, the local count still applies
 * (the node limits alone, and logs it). */
#ifndef SRV_LOGIN_LIMIT_H
#define SRV_LOGIN_LIMIT_H

#include <stdint.h>
#include "attune/types.h"

/* Failures free of delay per (account, address), and per address. */
#define SRV_LOGIN_PAIR_FREE_FAILURES 5
#define SRV_LOGIN_ADDRESS_FREE_FAILURES 20
#define SRV_LOGIN_FIRST_DELAY_MS 5000
#define SRV_LOGIN_MAX_DELAY_MS (15 * 60 * 1000)
#define SRV_LOGIN_FORGET_MS (30 * 60 * 1000)
#define SRV_LOGIN_MAX_KEYS 8192
#define SRV_LOGIN_KEY_BYTES 160

typedef struct srv_login_limit srv_login_limit;

int srv_login_limit_new(srv_login_limit **out, att_error *err);
void srv_login_limit_free(srv_login_limit *l);
/* Counts in the shared PostgreSQL database at uri too (tables made if
 * missing). now is wall-clock ms in every call from then on. */
int srv_login_limit_share(srv_login_limit *l, const char *uri, att_error *err);

/* 0 when key may try now, else the seconds (>= 1) until it may. */
int64_t srv_login_limit_wait_s(srv_login_limit *l, const char *key, int free_failures, int64_t now);
/* Records a failed attempt for key at now. */
void srv_login_limit_fail(srv_login_limit *l, const char *key, int64_t now);
/* Takes back one failure (an attempt counted while its password was being
 * checked turned out right). */
void srv_login_limit_unfail(srv_login_limit *l, const char *key);
/* Forgets key's failures (after a successful login). */
void srv_login_limit_reset(srv_login_limit *l, const char *key);
/* Keys tracked (for tests and metrics). */
size_t srv_login_limit_keys(const srv_login_limit *l);

#endif
