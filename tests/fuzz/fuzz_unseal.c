/* fuzz_unseal.c - libFuzzer target for encryption at rest
 * (server/store/seal.h) under a fixed test key. Each input is used two ways:
 *  - as a stored payload: srv_unseal must not crash or read out of bounds,
 *    with or without a stored type, and opens it only when it is legacy
 *    plaintext (first byte '{'), as exactly those bytes and with no type
 *    authenticated; anything else would be a forged AES-GCM tag;
 *  - as the plaintext of an event sealed here (room, seq and type picked by
 *    its first bytes): it opens to the same bytes with its type
 *    authenticated, does not open under another room, seq, type or key,
 *    and with one byte changed never opens, except that a first byte
 *    turned into '{' reads, as legacy plaintext, the changed bytes
 *    themselves (never the sealed plaintext). */
#include "seal.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static srv_seal_key test_key(unsigned char salt)
{
    srv_seal_key key;
    for (size_t i = 0; i < sizeof key.bytes; i++)
        key.bytes[i] = (unsigned char)(i * 13 + 5 + salt);
    return key;
}

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_unseal: %s\n", what);
    abort();
}

/* Rooms and types the store really writes, and the longest allowed. */
static const char *const rooms[] = {"r-fuzz", "demo", "r-0123456789abcdef0123456789abcdef"};
static const char *const types[] = {"message", "joined", "step_started", "rupture_marked",
                                    "tttttttttttttttttttttttttttttttttttttttttttttttt"};
#define COUNT(a) (sizeof(a) / sizeof(a)[0])

/* The input as a stored payload, with the stored type (or none). */
static void open_stored(const srv_seal_key *key, const uint8_t *data, size_t size, const char *type,
                        srv_seal_buf *buf)
{
    att_error err = {0};
    int checked = -1;
    if (srv_unseal(key, rooms[0], 7, type, data, size, buf, &checked, &err) == 0) {
        if (size == 0 || data[0] != '{')
            fail("a payload it did not seal opened");
        if (checked != 0 || buf->len != size || memcmp(buf->data, data, size) != 0 ||
            buf->data[size] != 0)
            fail("legacy plaintext did not open as itself");
    }
}

static int opens(const srv_seal_key *key, const char *room, int64_t seq, const char *type,
                 const srv_seal_buf *sealed, srv_seal_buf *out, int *checked)
{
    att_error err = {0};
    return srv_unseal(key, room, seq, type, sealed->data, sealed->len, out, checked, &err) == 0;
}

static void round_trip(const srv_seal_key *key, const uint8_t *data, size_t size,
                       srv_seal_buf *sealed, srv_seal_buf *out)
{
    uint8_t pick[8] = {0};
    memcpy(pick, data, size < sizeof pick ? size : sizeof pick);
    const char *room = rooms[pick[0] % COUNT(rooms)];
    const char *type = types[pick[1] % COUNT(types)];
    int64_t seq = (int64_t)pick[2] << 16 | pick[3] << 8 | pick[4];
    att_error err = {0};
    if (srv_seal(key, room, seq, type, data, size, sealed, &err) < 0)
        fail("could not seal");
    if (sealed->len != size + SRV_SEAL_OVERHEAD)
        fail("a sealed payload has the wrong length");
    int checked = -1;
    if (!opens(key, room, seq, type, sealed, out, &checked))
        fail("a sealed payload does not open");
    if (checked != 1 || out->len != size || memcmp(out->data, data, size) != 0 ||
        out->data[size] != 0)
        fail("a sealed payload opens to other bytes");

    srv_seal_key other = test_key(1);
    if (opens(&other, room, seq, type, sealed, out, &checked) ||
        opens(key, room, seq + 1, type, sealed, out, &checked) ||
        opens(key, room == rooms[0] ? rooms[1] : rooms[0], seq, type, sealed, out, &checked) ||
        opens(key, room, seq, type == types[0] ? types[1] : types[0], sealed, out, &checked) ||
        opens(key, room, seq, NULL, sealed, out, &checked))
        fail("a sealed payload opened under another key, room, seq or type");

    size_t at = ((size_t)pick[5] << 8 | pick[6]) % sealed->len;
    uint8_t mask = pick[7] ? pick[7] : 0x80;
    sealed->data[at] ^= mask;
    if (opens(key, room, seq, type, sealed, out, &checked)) {
        if (at != 0 || sealed->data[0] != '{' || checked != 0 || out->len != sealed->len ||
            memcmp(out->data, sealed->data, sealed->len) != 0)
            fail("a sealed payload with one byte changed opened");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const srv_seal_key key = test_key(0);
    srv_seal_buf a = {0}, b = {0};
    open_stored(&key, data, size, types[0], &a);
    open_stored(&key, data, size, NULL, &a);
    round_trip(&key, data, size, &a, &b);
    srv_seal_buf_free(&a);
    srv_seal_buf_free(&b);
    return 0;
}
