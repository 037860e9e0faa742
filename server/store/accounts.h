/* accounts.h - staff accounts (therapists and supervisors: name, kind,
 * scrypt password hash) and room ownership (which therapist's dashboard a
 * room belongs to), kept durably in two tables of the data directory's
 * database (DATA/attune.db: `accounts` and `room_owners`) through a
 * connection of this module's own, so the event store's interface stays
 * about events.
 *
 * Identity: every account has an immutable id (SQLite AUTOINCREMENT, never
 * reused, even after the newest account is removed) and a password
 * generation, bumped by every password change. Rooms are owned by account
 * id, so a removed account's rooms stay unowned and a new account of the
 * same name starts with none. Login sessions (sessions.h) remember the id
 * and generation they were made with and end when either stops matching.
 *
 * Passwords: scrypt through OpenSSL (EVP_PBE_scrypt) with N=2^15, r=8, p=1,
 * a 16-byte random salt and a 32-byte hash; the parameters are stored with
 * each hash so they can be raised later. Verification compares in constant
 * time and, for an unknown name, still runs scrypt on a dummy salt so the
 * answer takes the same time.
 *
 * srv_accounts_open_pg keeps the same tables in PostgreSQL instead, for
 * several nodes on one database (issue 13).
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

/* What an account is for. A therapist owns rooms; a supervisor is a named
 * observer a therapist invites to a room (stored as "therapist" and
 * "supervisor"). */
typedef enum { SRV_ACCOUNT_THERAPIST = 0, SRV_ACCOUNT_SUPERVISOR = 1 } srv_account_kind;

/* One account as stored (no password material). */
typedef struct {
    int64_t id; /* immutable, > 0, never reused */
    char name[SRV_ACCOUNT_NAME_MAX + 1];
    srv_account_kind kind;
    int64_t password_gen; /* >= 1; +1 on every password change */
    int64_t created_at;   /* ms since the epoch */
} srv_account;

/* "therapist" or "supervisor". */
const char *srv_account_kind_name(srv_account_kind kind);

/* Opens (creating the tables when missing) DIR/attune.db. The directory is
 * created (0700) when create is set, else it must exist. */
int srv_accounts_open(const char *dir, int create, srv_accounts **out, att_error *err);
/* Opens the same tables (accounts, room_owners; created when missing,
 * under pg.h's schema lock) in a PostgreSQL database (a libpq URI), so
 * several nodes share accounts and room ownership: a write through one
 * handle is seen by every other at its next read. create is accepted for
 * symmetry (the database must exist). Every function below then runs
 * blocking statements on the caller's thread: in attune-server that is the
 * lws service thread for now (acceptable while these are one indexed row
 * each; a login's scrypt stays on the hasher thread). A statement cut off
 * by a lost connection fails (pg.h: outcome unknown) and the next call
 * reconnects. Owned-room listings join the PostgreSQL event store's
 * `rooms` table (store_pg.h) in the same database. */
int srv_accounts_open_pg(const char *uri, int create, srv_accounts **out, att_error *err);
/* 1 when a was opened on PostgreSQL. */
int srv_accounts_is_pg(const srv_accounts *a);
void srv_accounts_close(srv_accounts *a);

/* 1 when name is a valid account name: 1..64 bytes of A-Z a-z 0-9 . _ - @ */
int srv_account_name_valid(const char *name);
/* 0 when the password is acceptable (>= 10 characters, <= 1024 bytes, valid
 * UTF-8, no control characters), else bad_message with err set. */
int srv_password_check(const char *password, size_t len, att_error *err);

/* Adds a therapist account. ATT_ERR_BAD_MESSAGE when the name is taken or
 * invalid or the password is not acceptable. */
int srv_accounts_add(srv_accounts *a, const char *name, const char *password, size_t len,
                     att_error *err);
/* Adds an account of the given kind; writes its id to id_out (may be NULL). */
int srv_accounts_add_kind(srv_accounts *a, const char *name, srv_account_kind kind,
                          const char *password, size_t len, int64_t *id_out, att_error *err);
/* Sets a new password (checked like add's) and bumps the generation, which
 * ends the account's sessions (in a running server at its next sweep).
 * ATT_ERR_NOT_FOUND when there is no such account. */
int srv_accounts_set_password(srv_accounts *a, const char *name, const char *password, size_t len,
                              att_error *err);
/* Removes an account. Its rooms stay unowned (the id is never reused, so a
 * new account of the same name does not get them). ATT_ERR_NOT_FOUND when
 * there is no such account. */
int srv_accounts_remove(srv_accounts *a, const char *name, att_error *err);
/* 1 when the account exists, 0 when not, negative on failure. */
int srv_accounts_exists(srv_accounts *a, const char *name, att_error *err);
/* 1 and *out filled when found (by name or by id), 0 when not, negative on
 * failure. */
int srv_accounts_get(srv_accounts *a, const char *name, srv_account *out, att_error *err);
int srv_accounts_get_by_id(srv_accounts *a, int64_t id, srv_account *out, att_error *err);
/* Calls fn for every account in name order. A nonzero return from fn stops
 * the walk and is returned. */
int srv_accounts_list(srv_accounts *a, int (*fn)(const srv_account *acct, void *arg), void *arg,
                      att_error *err);
/* What checking a password needs: the stored salt, hash and parameters, or
 * a dummy record (found = 0) for an unknown name, so that checking costs the
 * same either way. A plain value, usable on any thread. */
typedef struct {
    int found;
    int64_t account_id, password_gen, kind; /* of the record read (0 when not found) */
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
/* Any thread, no database: a fresh salt and the hash of an acceptable
 * password (srv_password_check) into out, for srv_accounts_store_password.
 * Runs scrypt. */
int srv_password_hash_new(const char *password, size_t len, srv_password_record *out,
                          att_error *err);
/* Stores a record made by srv_password_hash_new as the account's password
 * and bumps its generation, only while the generation is still
 * expected_gen. ATT_ERR_NOT_FOUND when the account is gone or its password
 * was changed meanwhile (that change wins). Writes the new generation to
 * gen_out (may be NULL). */
int srv_accounts_store_password(srv_accounts *a, int64_t account_id, int64_t expected_gen,
                                const srv_password_record *rec, int64_t *gen_out, att_error *err);
/* lookup + matches on the caller's thread. */
int srv_accounts_verify(srv_accounts *a, const char *name, const char *password, size_t len,
                        att_error *err);

/* Room ownership, by account id. set: records (or replaces) the owner of a
 * room; set_owner takes an existing account's name (ATT_ERR_NOT_FOUND when
 * there is none). get: writes the owner's current name to out
 * (SRV_ACCOUNT_NAME_MAX + 1) and, when id_out is not NULL, its id; returns
 * ATT_ERR_NOT_FOUND for a room without one or whose owner was removed.
 * clear: forgets it. */
int srv_accounts_set_owner(srv_accounts *a, const char *room, const char *owner, att_error *err);
int srv_accounts_set_owner_id(srv_accounts *a, const char *room, int64_t account_id,
                              att_error *err);
int srv_accounts_get_owner(srv_accounts *a, const char *room, char *out, att_error *err);
int srv_accounts_get_owner_id(srv_accounts *a, const char *room, int64_t *id_out, att_error *err);
int srv_accounts_clear_owner(srv_accounts *a, const char *room, att_error *err);
/* Calls fn with the id of every room owned by the account (by name: the
 * account that has that name now; by id) that exists in the event store,
 * newest first (by the room's creation time). */
int srv_accounts_owned_rooms(srv_accounts *a, const char *owner,
                             int (*fn)(const char *room, void *arg), void *arg, att_error *err);
int srv_accounts_owned_rooms_id(srv_accounts *a, int64_t account_id,
                                int (*fn)(const char *room, void *arg), void *arg, att_error *err);

#endif
