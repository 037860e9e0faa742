/* backup.h - copies of a data directory that restore: the events database
 * (DATA/attune.db: events, rooms, heads, accounts, invitations, the audit
 * log) and, apart from it, the wrapped room keys (DATA/keys.db). Never the
 * key-encryption key: it lives outside the data directory (keyring.h) and
 * is backed up by the operator, elsewhere, or not at all.
 *
 * Each copy goes through SQLite's online backup API in one pass: one read
 * transaction, so the copy is a consistent snapshot even while the server
 * commits (WAL readers do not block the writer, nor it them). The copy is a
 * single file in rollback-journal mode (no WAL beside it), created 0600 in
 * a destination directory created 0700; an existing file is never
 * overwritten.
 *
 * Why two files: a room's key and its events must never travel together
 * in one backup, so that erasing a room (its key) also makes every older
 * copy of its events unreadable.
 *
 * Owns nothing between calls; main's thread of `attune` (any thread: each
 * call opens and closes its own connections). */
#ifndef SRV_BACKUP_H
#define SRV_BACKUP_H

#include "attune/types.h"

#define SRV_BACKUP_EVENTS_FILE "attune.db"
#define SRV_BACKUP_KEYS_FILE "keys.db"

/* Copies the SQLite database at src_path into a new file dest_path
 * (fails with ATT_ERR_BAD_MESSAGE when it exists). */
int srv_backup_copy_db(const char *src_path, const char *dest_path, att_error *err);

/* DATA/attune.db -> DEST/attune.db (keys 0: the events) or DATA/keys.db ->
 * DEST/keys.db (keys 1: the wrapped keys), creating DEST (0700) when
 * missing. A DEST that group or others may enter is refused. */
int srv_backup_take(const char *data_dir, const char *dest_dir, int keys, att_error *err);

/* Puts a backup into a new data directory: new_dir must be missing or
 * empty (it is created 0700); SRC/attune.db is copied in, and keys.db from
 * keys_db (NULL: SRC/keys.db, which must then exist). Opening and
 * verifying the rooms is the caller's (it needs the KEK). */
int srv_backup_restore(const char *new_dir, const char *src_dir, const char *keys_db,
                       att_error *err);

#endif
