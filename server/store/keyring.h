/* keyring.h - the key hierarchy of the data directory.
 *
 * A key-encryption key (KEK, 32 random bytes as 64 hex digits, mode 0600)
 * lives OUTSIDE the data directory: --kek-file FILE, or systemd's
 * credentials directory ($CREDENTIALS_DIRECTORY/attune-kek). It encrypts
 * nothing but keys. Each room has its own data key (32 random bytes),
 * created with the room, kept only wrapped by the KEK (AES-256-GCM, the
 * room id and the KEK's id authenticated) in DATA/keys.db, a database of
 * its own, apart from the events in DATA/attune.db, so a copy of the events
 * taken before a room was erased cannot be read once its key is gone, and
 * the data directory without the KEK opens nothing. Named service keys
 * (the audit log's MAC key: "audit") are kept the same way.
 *
 * keys.db runs in rollback-journal mode with secure_delete, so an erased
 * key's bytes are overwritten in the file, not left in a WAL.
 *
 * Rotation rewraps every stored key under a new KEK without touching an
 * event. A running server notices a rotation (keys.db names the KEK that
 * wrapped its keys) before it wraps a new room key and reloads its KEK
 * file then.
 *
 * Threads: every function may be called from any thread (one internal
 * mutex guards the connection and the cache of unwrapped keys).
 *
 * Ownership: the keyring owns its connection, the KEK and the cache; keys
 * handed out are copies the caller wipes. srv_keyring_close wipes them. */
#ifndef SRV_KEYRING_H
#define SRV_KEYRING_H

#include <stddef.h>
#include "attune/types.h"
#include "seal.h"

/* The credential name looked for in $CREDENTIALS_DIRECTORY. */
#define SRV_KEK_CREDENTIAL "attune-kek"
/* A KEK's id: hex of the first 8 bytes of a hash of it (never the key). */
#define SRV_KEK_ID_CHARS 16

typedef struct srv_keyring srv_keyring;

/* Where the KEK is when --kek-file is not given: the credentials directory
 * when $CREDENTIALS_DIRECTORY is set, else DIR.kek beside the data
 * directory ("var/data/" -> "var/data.kek"). */
int srv_kek_default_path(const char *data_dir, char *out, size_t out_size, att_error *err);

/* Opens DATA/keys.db (creating it) and loads the KEK from kek_file (NULL:
 * the default path). A missing KEK file is created (0600) only when
 * allow_create is set and keys.db holds no wrapped key yet; otherwise the
 * error names the file. A KEK file inside the data directory, or readable
 * by group or others, is refused. A KEK that did not wrap the stored keys
 * fails with the ids of both. One stored key that does not open under the
 * right KEK (damaged, tampered with) is logged and only that room's
 * lookups fail. */
int srv_keyring_open(const char *data_dir, const char *kek_file, int allow_create,
                     srv_keyring **out, att_error *err);
/* The same keyring in a PostgreSQL database (a libpq URI), shared by
 * every node on it: tables keyring_room_keys, keyring_service_keys and
 * keyring_meta, created when missing, holding what keys.db holds.
 * kek_file is required (there is no data directory to default beside);
 * every node is given the same KEK. Concurrent creation of one room's key
 * on two nodes stores one key (ON CONFLICT DO NOTHING, then read back).
 * Erase is a DELETE then a VACUUM of the table: PostgreSQL has no
 * secure_delete, so the wrapped (never the plain) key's bytes may stay in
 * the table's file until overwritten, and in WAL, base backups and
 * standbys until recycled; an erased key is unrecoverable from those only
 * once the KEK is rotated and the old KEK destroyed
 * (srv_keyring_rotate_pg). */
int srv_keyring_open_pg(const char *uri, const char *kek_file, int allow_create, srv_keyring **out,
                        att_error *err);
void srv_keyring_close(srv_keyring *k);

/* The room's data key. ATT_ERR_NOT_FOUND when the room has none (never
 * made, or erased). */
int srv_keyring_room_key(srv_keyring *k, const char *room, srv_seal_key *out, att_error *err);

/* Makes, wraps and stores a new random data key for the room (durable
 * before it returns). ATT_ERR_BAD_MESSAGE when the room already has one. */
int srv_keyring_new_room_key(srv_keyring *k, const char *room, srv_seal_key *out, att_error *err);

/* Makes a key for each of the n rooms that has none yet, all in one
 * transaction (one sync, not n: the store's migration gives every old room
 * its key this way); rooms that have one keep it, so a rerun after a crash
 * makes only the missing ones. *n_made (may be NULL): how many were made.
 * Afterwards srv_keyring_room_key answers for every one of them. */
int srv_keyring_ensure_room_keys(srv_keyring *k, const char *const *rooms, size_t n, int *n_made,
                                 att_error *err);

/* Destroys the room's key (the stored wrapped key and the cached copy);
 * durable before it returns. 0 also when it had none. */
int srv_keyring_erase_room(srv_keyring *k, const char *room, att_error *err);

/* A named service key ("audit"), created on first use. */
int srv_keyring_service_key(srv_keyring *k, const char *name, srv_seal_key *out, att_error *err);

/* The loaded KEK's id (SRV_KEK_ID_CHARS hex digits and a NUL). */
void srv_keyring_kek_id(const srv_keyring *k, char out[SRV_KEK_ID_CHARS + 1]);

/* Rewraps every stored key of DATA/keys.db, in one transaction, from the
 * KEK in kek_file (NULL: the default path) to the one in new_kek_file
 * (NULL: a new random KEK written in place of kek_file, the old one kept
 * until the transaction is durable, so a crash at any point leaves a KEK
 * file that opens keys.db). *n_rewrapped: how many keys. Events are not
 * touched. */
int srv_keyring_rotate(const char *data_dir, const char *kek_file, const char *new_kek_file,
                       int *n_rewrapped, att_error *err);

/* What a rotation did, for the operator: never key bytes. */
typedef struct {
    int n_rewrapped; /* room and service keys */
    char old_kek_id[SRV_KEK_ID_CHARS + 1];
    char new_kek_id[SRV_KEK_ID_CHARS + 1];
    char kek_path[4096]; /* the file that now holds the KEK to start with */
} srv_keyring_rotation;

/* Where srv_keyring_rotate_ex stops: at the end, or (for the tests) where
 * a crash could stop it, leaving the files as that crash would. */
typedef enum {
    SRV_ROTATE_COMPLETE,
    SRV_ROTATE_STOP_BEFORE_COMMIT, /* KEK.new written, the rewrap not committed */
    SRV_ROTATE_STOP_BEFORE_RENAME, /* the rewrap committed, KEK.new not renamed */
} srv_rotate_stop;

/* srv_keyring_rotate with the ids and the file reported. The order, so a
 * crash at any point leaves a KEK that opens keys.db: (1) a new KEK is
 * written to KEK.new and fsynced (or new_kek_file is read); (2) one
 * transaction rewraps every key and records the new KEK's id; (3)
 * KEK.new is renamed over KEK (not with new_kek_file: the operator's file
 * is the new KEK and kek_file is left as it was, e.g. a read-only systemd
 * credential the operator replaces). srv_keyring_open finishes (3) when it
 * finds keys.db naming KEK.new's id. */
int srv_keyring_rotate_ex(const char *data_dir, const char *kek_file, const char *new_kek_file,
                          srv_rotate_stop stop, srv_keyring_rotation *out, att_error *err);

/* The same rotation of the keyring in a PostgreSQL database (a libpq URI;
 * srv_keyring_open_pg), with the same steps and the same promise: (1) the
 * new KEK is written to KEK.new and fsynced (or new_kek_file is read);
 * (2) one transaction rewraps every row of keyring_room_keys and
 * keyring_service_keys and records the new KEK's id in keyring_meta; (3)
 * KEK.new is renamed over KEK (not with new_kek_file). Until (2) commits
 * the old KEK opens everything and KEK.new is unused; from then the
 * database names the new KEK's id and srv_keyring_open_pg takes KEK.new
 * when KEK no longer matches (and finishes the rename). A COMMIT whose
 * outcome is lost with the connection is read back on a new connection
 * before anything is removed: committed, the rotation goes on to (3); not
 * committed, KEK.new is removed; unreadable, both files are kept and the
 * error says so. kek_file is required (no data directory to default
 * beside).
 *
 * Several nodes: each node holds its own copy of the KEK file, and the
 * rotation renames only the copy on the machine it runs on. Nodes keep
 * serving the rooms whose keys they hold; a node that must wrap or unwrap
 * a key after the rotation (a new room, a room it has not opened yet)
 * reloads its KEK file and, finding the old KEK, looks in KEK.new beside
 * it. So: put the new KEK on every node as KEK.new (the path each node's
 * --kek-file names, plus ".new"), run the rotation with --new-kek-file
 * pointing at it, and each node's next open renames KEK.new over KEK. A
 * key insert holds the keyring_meta row FOR SHARE and the rotation FOR
 * UPDATE, so a key is never stored wrapped under the KEK a committed
 * rotation replaced; a node making a room while the rotation's transaction
 * runs waits for it, at most pg.h's lock_timeout (2 s), and fails then (the
 * room is not made; a retry works). 20,000 rooms' keys rewrap in about 3 s
 * here (open and unwrap included), so rotate when few rooms are made. */
int srv_keyring_rotate_pg_ex(const char *uri, const char *kek_file, const char *new_kek_file,
                             srv_rotate_stop stop, srv_keyring_rotation *out, att_error *err);
int srv_keyring_rotate_pg(const char *uri, const char *kek_file, const char *new_kek_file,
                          int *n_rewrapped, att_error *err);

#endif
