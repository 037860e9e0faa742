/* b64url.h - the text encodings of bytes the data directory uses: base64url
 * without padding (tokens, session cookies, tickets, room ids) and lowercase
 * hex (key files, token nonces). The one copy of each: the server, the
 * `attune` command and the load generator all use these.
 *
 * Pure functions over caller buffers; any thread. */
#ifndef SRV_B64URL_H
#define SRV_B64URL_H

#include <stddef.h>

/* base64url without padding. Returns the length written (excluding the NUL)
 * or -1 when out is too small. */
int srv_b64url_encode(const unsigned char *in, size_t len, char *out, size_t out_size);
/* Returns the decoded length, or -1 on bad input (a character outside the
 * alphabet, an impossible length, nonzero leftover bits: each byte string
 * has exactly one spelling) or a small buffer. */
int srv_b64url_decode(const char *in, size_t len, unsigned char *out, size_t out_size);

/* Lowercase hex of len bytes into out (2 * len + 1 bytes, NUL-terminated). */
void srv_hex_encode(const unsigned char *in, size_t len, char *out);
/* Exactly 2 * n hex digits (either case) into n bytes: 0, or -1. */
int srv_hex_decode(const char *in, size_t len, unsigned char *out, size_t n);

#endif
