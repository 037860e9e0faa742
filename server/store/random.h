/* random.h - cryptographically random bytes (OpenSSL's RAND_bytes) for
 * keys, nonces, tokens, session cookies and room ids. Any thread. */
#ifndef SRV_RANDOM_H
#define SRV_RANDOM_H

#include <stddef.h>
#include "attune/types.h"

/* Fills buf with n random bytes. Returns 0 or a negative code with err
 * set. */
int srv_random_bytes(unsigned char *buf, size_t n, att_error *err);

#endif
