/* seal.h - encryption at rest for event payloads: AES-256-GCM (OpenSSL)
 * under the data key (DATA/data.key, 32 random bytes as hex, mode 0600,
 * created on first use). Each payload gets a fresh random 96-bit nonce; the
 * room id, the seq and the event's type (stored in the clear beside it, so
 * reads can tell events apart without opening their JSON) are authenticated
 * as associated data, so a sealed payload cannot be moved to another room or
 * position, nor its type column changed, without failing to open.
 *
 * Sealed form: version (1) | nonce (12) | ciphertext | tag (16). Version
 * 0x02 authenticates room, seq and type; 0x01 (written before the type
 * column existed; the store's migration reseals them) room and seq only.
 * Payloads that begin with '{' are legacy plaintext JSON from before
 * sealing and open as themselves.
 *
 * Ownership: the caller's buffers; srv_seal_buf grows with realloc and is
 * owned by whoever holds it (one per thread). Pure functions otherwise. */
#ifndef SRV_SEAL_H
#define SRV_SEAL_H

#include <stddef.h>
#include <stdint.h>
#include "attune/types.h"

#define SRV_SEAL_KEY_BYTES 32
#define SRV_SEAL_OVERHEAD (1 + 12 + 16)

typedef struct {
    unsigned char bytes[SRV_SEAL_KEY_BYTES];
} srv_seal_key;

typedef struct {
    unsigned char *data;
    size_t len, cap;
} srv_seal_buf;

/* Loads DIR/data.key, creating it (0600) when missing. */
int srv_seal_key_load(const char *dir, srv_seal_key *key, att_error *err);

/* The longest event type name a seal authenticates. */
#define SRV_SEAL_TYPE_MAX 48

/* Seals len bytes of plaintext into buf (replacing its contents), version
 * 0x02 with `type` (1..SRV_SEAL_TYPE_MAX bytes) authenticated. */
int srv_seal(const srv_seal_key *key, const char *room, int64_t seq, const char *type,
             const void *plain, size_t len, srv_seal_buf *buf, att_error *err);

/* Opens a sealed payload into buf (NUL-terminated; buf->len excludes the
 * NUL). `type` is the type stored beside it (NULL when none). Fails with
 * internal when the payload or its type was tampered with or the key is
 * wrong. *type_checked (when not NULL) is 1 when the seal authenticated
 * `type` (version 0x02), 0 for a version 0x01 seal or legacy plaintext,
 * whose type only the payload itself tells. */
int srv_unseal(const srv_seal_key *key, const char *room, int64_t seq, const char *type,
               const void *sealed, size_t len, srv_seal_buf *buf, int *type_checked,
               att_error *err);

void srv_seal_buf_free(srv_seal_buf *buf);

#endif
