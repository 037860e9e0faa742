/* accounts.h - therapist accounts (name + scrypt password hash) and room
 * ownership (which therapist's dashboard a room belongs to), kept durably in
 * two tables of the data directory's database (DATA/attune.db: `therapists`
 * and `room_owners`) through a connection of this module's own, so the event
 * store's interface stays about events.
 *
 * Passwords: scrypt through OpenSSL (EVP_PBE_scrypt) with N=2^15, r=8, p=1,
 * a 16-byte random salt and a 32-byte hash; the parameters are stored with
 * each hash so they can be raised later. Verification compares in constant
 * time and, for an unknown name, still runs scrypt on a dummy salt so the
 * answer takes the same time.
 *
 * Threads: a srv_accounts handle is used by one thread at a time (the lws
 * service thread in attune-server, main's thread in the `attune` command);
 * several processes may open the same database (SQLite waits for the
 * writer). srv_password_matches touches no handle and may run anywhere (the
 * server runs it on its hasher thread, see hasher.h).
 *
 * Ownership: srv_accounts_open allocates the handle; srv_accounts_close
 * frees it. Results go to caller buffers. */
#ifndef SRV_ACCOUNTS_H
#define SRV_ACCOUNTS_H

#include <stddef.h>
#include <stdint.h>
#include "attune/types.h"

#define SRV_ACCOUNT_NAME_MAX 64
#define SRV_PASSWORD_MIN_CHARS 10
#define SRV_PASSWORD_MAX_BYTES 1024

typedef struct srv_accounts srv_accounts;

/* Opens (creating the tables when missing) DIR/attune.db. The directory is
 * created (0700) when create is set, else it must exist. */
int srv_accounts_open(const char *dir, int create, srv_accounts **out, att_error *err);
void srv_accounts_close(srv_accounts *a);

/* 1 when name is a valid account name: 1..64 bytes of A-Z a-z 0-9 . _ - @ */
int srv_account_name_valid(const char *name);
/* 0 when the password is acceptable (>= 10 characters, <= 1024 bytes, valid
 * UTF-8, no control characters), else bad_message with err set. */
int srv_password_check(const char *password, size_t len, att_error *err);

/* Adds an account. ATT_ERR_BAD_MESSAGE when the name is taken or invalid or
 * the password is not acceptable. */
int srv_accounts_add(srv_accounts *a, const char *name, const char *password, size_t len,
                     att_error *err);
/* Removes an account (its rooms keep their owner name). ATT_ERR_NOT_FOUND
 * when there is no such account. */
int srv_accounts_remove(srv_accounts *a, const char *name, att_error *err);
/* 1 when the account exists, 0 when not, negative on failure. */
int srv_accounts_exists(srv_accounts *a, const char *name, att_error *err);
/* Calls fn for every account in name order (created_at in ms). A nonzero
 * return from fn stops the walk and is returned. */
int srv_accounts_list(srv_accounts *a, int (*fn)(const char *name, int64_t created_at, void *arg),
                      void *arg, att_error *err);
/* What checking a password needs: the stored salt, hash and parameters, or
 * a dummy record (found = 0) for an unknown name, so that checking costs the
 * same either way. A plain value, usable on any thread. */
typedef struct {
    int found;
    int scrypt_log2_n, scrypt_r, scrypt_p;
    unsigned char salt[16];
    unsigned char hash[32];
} srv_password_record;

/* Reads name's record (or fills the dummy one). Returns 0 or negative. */
int srv_accounts_lookup(srv_accounts *a, const char *name, srv_password_record *out,
                        att_error *err);
/* Any thread, no database: 1 when the record is found and the password
 * matches (constant-time compare), 0 when not, negative on failure. Runs
 * scrypt: about 32 MiB and ~100 ms of CPU. */
int srv_password_matches(const srv_password_record *rec, const char *password, size_t len,
                         att_error *err);
/* lookup + matches on the caller's thread. */
int srv_accounts_verify(srv_accounts *a, const char *name, const char *password, size_t len,
                        att_error *err);

/* Room ownership. set: records (or replaces) the owner of a room. get:
 * writes the owner to out (SRV_ACCOUNT_NAME_MAX + 1) or returns
 * ATT_ERR_NOT_FOUND for a room without one. clear: forgets it. */
int srv_accounts_set_owner(srv_accounts *a, const char *room, const char *owner, att_error *err);
int srv_accounts_get_owner(srv_accounts *a, const char *room, char *out, att_error *err);
int srv_accounts_clear_owner(srv_accounts *a, const char *room, att_error *err);
/* Calls fn with the id of every room owned by `owner` that exists in the
 * event store, newest first (by the room's creation time). */
int srv_accounts_owned_rooms(srv_accounts *a, const char *owner,
                             int (*fn)(const char *room, void *arg), void *arg, att_error *err);

#endif
