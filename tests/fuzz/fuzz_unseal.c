/* fuzz_unseal.c - libFuzzer target for encryption at rest
 * (server/store/seal.h) under a fixed test room key. Each input is used
 * three ways:
 *  - as a stored payload: srv_unseal must not crash or read out of bounds,
 *    with or without a stored type, and never opens it: there is no
 *    plaintext path (a '{' payload is refused like any other), and opening
 *    anything else would be a forged AES-GCM tag;
 *  - the same bytes through the migration's srv_unseal_legacy: legacy
 *    plaintext opens as exactly those bytes with no type authenticated,
 *    nothing else opens (no data key matches), and without a data key a
 *    sealed-looking payload says the key is missing;
 *  - as the JSON of an event sealed here (room, seq and type picked by its
 *    first bytes): the stored length is its bucket's (srv_seal_bucket) plus
 *    the overhead, whatever its length inside the bucket; it opens to the
 *    same bytes; it does not open under another room, seq, type or key;
 *    with one byte changed, or cut one byte short, it never opens. */
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
    if (srv_unseal(key, rooms[0], 7, type, data, size, buf, &err) == 0)
        fail("a payload it did not seal opened");
    int checked = -1;
    int rc = srv_unseal_legacy(key, rooms[0], 7, type, data, size, buf, &checked, &err);
    if (rc == 0) {
        if (size == 0 || data[0] != '{')
            fail("a legacy payload it did not seal opened");
        if (checked != 0 || buf->len != size || memcmp(buf->data, data, size) != 0 ||
            buf->data[size] != 0)
            fail("legacy plaintext did not open as itself");
    }
    rc = srv_unseal_legacy(NULL, rooms[0], 7, type, data, size, buf, &checked, &err);
    if (rc == 0 && (size == 0 || data[0] != '{'))
        fail("a sealed legacy payload opened without a data key");
}

static int opens(const srv_seal_key *key, const char *room, int64_t seq, const char *type,
                 const srv_seal_buf *sealed, size_t len, srv_seal_buf *out)
{
    att_error err = {0};
    return srv_unseal(key, room, seq, type, sealed->data, len, out, &err) == 0;
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
    size_t bucket = srv_seal_bucket(size);
    if (bucket < size + SRV_SEAL_PREFIX_BYTES || sealed->len != bucket + SRV_SEAL_OVERHEAD)
        fail("a sealed payload is not its bucket's length");
    if (!opens(key, room, seq, type, sealed, sealed->len, out))
        fail("a sealed payload does not open");
    if (out->len != size || memcmp(out->data, data, size) != 0 || out->data[size] != 0)
        fail("a sealed payload opens to other bytes");

    srv_seal_key other = test_key(1);
    if (opens(&other, room, seq, type, sealed, sealed->len, out) ||
        opens(key, room, seq + 1, type, sealed, sealed->len, out) ||
        opens(key, room == rooms[0] ? rooms[1] : rooms[0], seq, type, sealed, sealed->len, out) ||
        opens(key, room, seq, type == types[0] ? types[1] : types[0], sealed, sealed->len, out) ||
        opens(key, room, seq, NULL, sealed, sealed->len, out))
        fail("a sealed payload opened under another key, room, seq or type");
    if (opens(key, room, seq, type, sealed, sealed->len - 1, out))
        fail("a sealed payload cut short opened");

    size_t at = ((size_t)pick[5] << 8 | pick[6]) % sealed->len;
    uint8_t mask = pick[7] ? pick[7] : 0x80;
    sealed->data[at] ^= mask;
    if (opens(key, room, seq, type, sealed, sealed->len, out))
        fail("a sealed payload with one byte changed opened");
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
