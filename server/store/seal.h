/* seal.h - encryption at rest for event payloads: AES-256-GCM (OpenSSL)
 * under the room's own data key (keyring.h: made with the room, kept
 * wrapped by the key-encryption key in DATA/keys.db). Each payload gets a
 * fresh random 96-bit nonce; the version byte, the room id, the seq and the
 * event's type (stored in the clear beside it, so reads can tell events
 * apart without opening their JSON) are authenticated as associated data,
 * so a sealed payload cannot be moved to another room or position, nor its
 * type column changed, without failing to open.
 *
 * Sealed form (version 0x03): version (1) | nonce (12) | ciphertext | tag
 * (16). The ciphertext is the padded plaintext:
 *     length of the JSON (4 bytes, big-endian) | the JSON | zero bytes
 * up to a bucket size, so the stored length says only which bucket the
 * event fell into, not how many characters someone typed. Opening checks
 * the tag, that the ciphertext is a bucket size, that the length fits and
 * that every padding byte is zero.
 *
 * Buckets (the padded plaintext, prefix included): powers of two from 128
 * to 4,096 bytes, then multiples of 4,096. A stored length then says only
 * "up to 124 bytes of JSON", "125 to 252", ... (a factor of two) below
 * 4 KiB and the number of 4 KiB pages above, so a message's length is
 * hidden to within a factor of two (or 4 KiB). The cost, measured on the
 * store-v2 fixture's 21 events (tests/fixtures/store-v2: joins, consents,
 * check-ins, four turns, two private messages, a note; 53 to 658 bytes of
 * JSON, most under 200): 2,826 bytes of JSON become 4,736 of padded
 * plaintext (+68 %); stored with version, nonce and tag, 3,435 -> 5,345
 * bytes (+56 %), about 90 bytes an event, below doubling; the database
 * file grows by less, since each row also carries its room, seq, type and
 * chain and SQLite writes whole 4 KiB pages either way. Buckets of 64-byte
 * multiples would cost +29 % but tell a message's length to within 64
 * characters; a smaller first bucket would tell the short bookkeeping
 * events (joined, left) apart from short texts.
 *
 * There is no unencrypted form: a payload that is not a version 0x03 seal
 * under the room's key does not open (a plaintext JSON row written into
 * the database is refused). The older forms (legacy plaintext JSON, 0x01
 * and 0x02 under the one data key DATA/data.key) open only through
 * srv_unseal_legacy, which the store's format migration alone calls, once,
 * to reseal them as 0x03 (store_sqlite.c); after it data.key is deleted.
 *
 * Ownership: the caller's buffers; srv_seal_buf grows with realloc and is
 * owned by whoever holds it (one per thread). Pure functions otherwise,
 * callable from any thread. */
#ifndef SRV_SEAL_H
#define SRV_SEAL_H

#include <stddef.h>
#include <stdint.h>
#include "attune/types.h"

#define SRV_SEAL_KEY_BYTES 32
/* version, nonce and tag around the ciphertext */
#define SRV_SEAL_OVERHEAD (1 + 12 + 16)
/* the length prefix inside the ciphertext */
#define SRV_SEAL_PREFIX_BYTES 4
#define SRV_SEAL_MIN_BUCKET 128
#define SRV_SEAL_PAGE_BUCKET 4096
/* The longest JSON a seal takes (the stored form must stay below 2 GiB,
 * SQLite's and OpenSSL's int lengths). */
#define SRV_SEAL_MAX_PLAIN ((size_t)1 << 30)

typedef struct {
    unsigned char bytes[SRV_SEAL_KEY_BYTES];
} srv_seal_key;

typedef struct {
    unsigned char *data;
    size_t len, cap;
} srv_seal_buf;

/* The longest event type name a seal authenticates. */
#define SRV_SEAL_TYPE_MAX 48

/* The padded plaintext size (prefix included) for len bytes of JSON, and
 * so the stored length minus SRV_SEAL_OVERHEAD; 0 when len is over
 * SRV_SEAL_MAX_PLAIN. */
size_t srv_seal_bucket(size_t len);

/* Seals len bytes of JSON into buf (replacing its contents), version 0x03
 * under the room's key with `type` (1..SRV_SEAL_TYPE_MAX bytes)
 * authenticated. buf->len becomes srv_seal_bucket(len) +
 * SRV_SEAL_OVERHEAD. */
int srv_seal(const srv_seal_key *room_key, const char *room, int64_t seq, const char *type,
             const void *plain, size_t len, srv_seal_buf *buf, att_error *err);

/* Opens a version 0x03 payload into buf (the JSON, NUL-terminated;
 * buf->len excludes the NUL). `type` is the type stored beside it
 * (required). Fails with internal when the payload, its position or its
 * type was tampered with, the key is not the room's, or it is not a 0x03
 * seal at all (legacy plaintext, 0x01, 0x02: the migration's business).
 * Error messages never hold payload bytes. */
int srv_unseal(const srv_seal_key *room_key, const char *room, int64_t seq, const char *type,
               const void *sealed, size_t len, srv_seal_buf *buf, att_error *err);

/* ---- the store's format migration only (store_sqlite.c) ---- */

/* Reads DIR/data.key, the one data key of the formats before per-room
 * keys. ATT_ERR_NOT_FOUND when there is none; never creates it. */
int srv_legacy_key_load(const char *dir, srv_seal_key *key, att_error *err);

/* Opens a payload of an older format: legacy plaintext (first byte '{',
 * opens as itself), version 0x01 (room and seq authenticated) or 0x02
 * (room, seq and type) under the data key. *type_checked (when not NULL):
 * 1 when the seal authenticated `type` (0x02), 0 otherwise, whose type
 * only the payload itself tells. data_key NULL (no data.key): a sealed
 * payload fails with ATT_ERR_NOT_FOUND, plaintext still opens. Version 0x03
 * is refused here (srv_unseal opens it). */
int srv_unseal_legacy(const srv_seal_key *data_key, const char *room, int64_t seq, const char *type,
                      const void *sealed, size_t len, srv_seal_buf *buf, int *type_checked,
                      att_error *err);

/* Deletes DIR/data.key once nothing needs it: its bytes overwritten with
 * zeros and synced, then unlinked and the directory synced. 0 also when
 * there is none. */
int srv_legacy_key_destroy(const char *dir, att_error *err);

void srv_seal_buf_free(srv_seal_buf *buf);

#endif
