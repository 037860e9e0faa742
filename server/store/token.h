/* token.h - invitation tokens: HMAC-SHA256 (OpenSSL) over room id, role,
 * expiry and a nonce, base64url-encoded, plus the server's secret key file.
 *
 * Token text: base64url(payload) "." base64url(mac), where payload is
 * "v1|<room>|<role>|<expires unix s>|<nonce hex>" and mac is HMAC-SHA256 of
 * the payload under the key. Base64url and hex are b64url.h's, the random
 * bytes random.h's, what a room id is room_id.h's. Owns nothing beyond the
 * caller's buffers; pure functions of their arguments (plus the key file's
 * I/O in srv_token_key_load), callable from any thread. */
#ifndef SRV_TOKEN_H
#define SRV_TOKEN_H

#include <stdint.h>
#include <stddef.h>
#include "attune/types.h"
#include "room_id.h"

#define SRV_TOKEN_KEY_BYTES 32
#define SRV_TOKEN_NONCE_BYTES 12
/* Enough for any token we issue (room ids are at most 64 bytes). */
#define SRV_TOKEN_MAX 256

typedef struct {
    unsigned char bytes[SRV_TOKEN_KEY_BYTES];
} srv_token_key;

typedef struct {
    char room[SRV_ROOM_ID_MAX + 1];
    att_role role;
    int64_t expires; /* unix seconds */
    /* The token's nonce: what its invitation record (invites.h) is found by,
     * through a SHA-256 of it. */
    unsigned char nonce[SRV_TOKEN_NONCE_BYTES];
} srv_token_claims;

/* Key files (the invitation key here, the key-encryption key of
 * keyring.h): 32 bytes as 64 hex digits and a newline, mode 0600. */
#define SRV_KEY_FILE_BYTES 32

/* Reads a key file into key. ATT_ERR_NOT_FOUND when it does not exist; a
 * file readable by group or others, or not holding 64 hex digits, is
 * refused (internal). The messages name the path. */
int srv_key_file_read(const char *path, unsigned char key[SRV_KEY_FILE_BYTES], att_error *err);

/* Creates path (0600) holding key: written whole to a temporary file and
 * fsynced, linked into place (never replacing a file already there), then
 * the directory fsynced. 0 when created, 1 when the file already existed
 * (left as it was), or a negative code with err set. */
int srv_key_file_create(const char *path, const unsigned char key[SRV_KEY_FILE_BYTES],
                        att_error *err);

/* fsyncs the directory that holds path (after a link or rename into it). */
int srv_key_file_sync_dir(const char *path, att_error *err);

/* Reads the key (64 hex chars) from path; when the file does not exist,
 * creates it with mode 0600 holding a fresh random key. Returns 0 or a
 * negative code (internal) with err set. */
int srv_token_key_load(const char *path, srv_token_key *key, att_error *err);

/* Writes a token for (room, role, expires) into out. nonce may be NULL for a
 * fresh random one. role must be partner_a, partner_b, therapist or observer.
 * Returns 0 or a negative code with err set. */
int srv_token_issue(const srv_token_key *key, const char *room, att_role role, int64_t expires,
                    const unsigned char *nonce, char *out, size_t out_size, att_error *err);

/* Checks the token's form, MAC (constant time) and expiry against now (unix
 * seconds) and fills claims. Any failure is bad_token with a message that
 * says which check failed (for logs; clients only see "bad_token"). */
int srv_token_verify(const srv_token_key *key, const char *token, int64_t now,
                     srv_token_claims *claims, att_error *err);

/* The claims a token's payload states, read WITHOUT checking its MAC or
 * expiry: for a tool that holds tokens but not the key (the load generator
 * sorting its tokens into rooms and roles). Never a reason to let anyone
 * in; that is srv_token_verify. 0, or bad_token with err set when the token
 * is not of the form srv_token_issue writes. */
int srv_token_read_claims(const char *token, srv_token_claims *claims, att_error *err);

#endif
