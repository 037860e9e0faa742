/* random.c - random bytes from OpenSSL (see random.h). */
#include "random.h"

#include <limits.h>
#include <openssl/rand.h>

int srv_random_bytes(unsigned char *buf, size_t n, att_error *err)
{
    if (n > INT_MAX || RAND_bytes(buf, (int)n) != 1)
        return att_fail(err, ATT_ERR_INTERNAL, "no random bytes from OpenSSL");
    return 0;
}
