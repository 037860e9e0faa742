/* chain.h - tamper evidence for a room's stored log: a hash chain over its
 * sealed events and an authenticated head. Pure functions (OpenSSL), no
 * SQL: the store (store_sqlite.c) keeps the values and checks them.
 *
 *   link(n)  = SHA-256("attune.chain.v1" || link(n-1) || room || NUL ||
 *                      seq as 8 bytes big-endian || type || NUL ||
 *                      sealed payload bytes)
 *              with link(0) = 32 zero bytes; stored in events.chain.
 *   head key = HMAC-SHA256(the room's data key, "attune head key v1")
 *   head mac = HMAC-SHA256(head key, "attune.head.v1" || room || NUL ||
 *                          seq as 8 bytes big-endian || link(seq))
 *              stored with (seq, link) in room_heads.
 *
 * The chain itself needs no key (anyone can recompute it); what makes it
 * evidence is the head: its MAC is keyed by the room's data key, which
 * lives wrapped under the KEK outside the database (keyring.h), so whoever
 * can write attune.db but lacks the KEK can drop, reorder or append events
 * (or cut the log short) only by leaving a chain that no longer reaches an
 * authentic head. Edits of a payload are caught by its seal too (seal.h).
 *
 * Threads: any; a srv_chain_hasher belongs to one thread at a time.
 * Ownership: the hasher owns its OpenSSL digest context; callers' buffers
 * otherwise. Head keys are the caller's to wipe (srv_chain_wipe). */
#ifndef SRV_CHAIN_H
#define SRV_CHAIN_H

#include <stddef.h>
#include <stdint.h>
#include "attune/types.h"
#include "seal.h"

#define SRV_CHAIN_BYTES 32
#define SRV_CHAIN_HEX (2 * SRV_CHAIN_BYTES)

typedef struct {
    unsigned char bytes[SRV_CHAIN_BYTES];
} srv_chain_link;

typedef struct {
    unsigned char bytes[SRV_CHAIN_BYTES];
} srv_chain_key;

/* Reusable SHA-256 and HMAC-SHA256 contexts (fetched once, not per event:
 * the append path links every event it commits and MACs every head). */
typedef struct srv_chain_hasher srv_chain_hasher;
int srv_chain_hasher_new(srv_chain_hasher **out, att_error *err);
void srv_chain_hasher_free(srv_chain_hasher *h);

/* out = link(prev, room, seq, type, sealed[0..len)). type NULL hashes as
 * "" (rows a migration could not type). */
int srv_chain_next(srv_chain_hasher *h, const srv_chain_link *prev, const char *room, int64_t seq,
                   const char *type, const void *sealed, size_t len, srv_chain_link *out,
                   att_error *err);

/* The head key of a room from its data key. */
int srv_chain_head_key(srv_chain_hasher *h, const srv_seal_key *room_key, srv_chain_key *out,
                       att_error *err);

/* The head's MAC over (room, seq, link). */
int srv_chain_head_mac(srv_chain_hasher *h, const srv_chain_key *head_key, const char *room,
                       int64_t seq, const srv_chain_link *link, srv_chain_link *mac_out,
                       att_error *err);

/* 1 when a and b hold the same n bytes; constant time in the bytes. */
int srv_chain_same(const void *a, const void *b, size_t n);

/* Lower-case hex of a link, NUL-terminated. */
void srv_chain_hex(const srv_chain_link *link, char out[SRV_CHAIN_HEX + 1]);

/* Wipes a key or link (OPENSSL_cleanse: not optimised away). */
void srv_chain_wipe(void *p, size_t n);

#endif
