/* cmd_backup.c - `attune backup` and `attune restore`: consistent copies of
 * a data directory's databases (backup.h) taken while the server runs, and
 * putting one into a new data directory, then checking every room there
 * (cmd_verify.c). The events and the wrapped keys are copied apart
 * (--keys), never the key-encryption key. */
#include "commands.h"

#include <stdio.h>
#include <string.h>
#include "args.h"
#include "backup.h"
#include "datadir.h"

static const cli_option backup_options[] = {
    {"data", "DIR", "the server's data directory [required]"},
    {"keys", NULL, "copy the wrapped room keys (DIR/keys.db) instead of the events"},
    CLI_KEK_FILE_OPTION,
    CLI_STORE_OPTION,
};
static const cli_command backup_cmd = {
    "attune backup --data DIR [--keys] [--kek-file FILE] DEST",
    "Copies the data directory's events database (DIR/attune.db: events, rooms,\n"
    "accounts, invitations, the audit log) into DEST/attune.db, or with --keys its\n"
    "wrapped room keys (DIR/keys.db) into DEST/keys.db, through SQLite's online\n"
    "backup API: a consistent copy while the server runs. DEST is created 0700,\n"
    "the copy 0600; an existing copy is never overwritten. Neither copy holds the\n"
    "key-encryption key (it lives outside the data directory: keep it apart).\n"
    "Keep the keys apart from the events: a room erased since the events were\n"
    "copied stays unreadable in them only while no older keys.db survives.\n"
    "The backup is recorded in DIR's audit log (which needs the KEK: --kek-file).",
    backup_options,
    (int)(sizeof backup_options / sizeof backup_options[0]),
    1,
    1};

static const cli_option restore_options[] = {
    {"data", "NEWDIR", "the data directory to make (missing or empty) [required]"},
    {"keys", "FILE", "the keys.db to restore with [SRC/keys.db]"},
    CLI_KEK_FILE_OPTION,
    CLI_STORE_OPTION,
};
static const cli_command restore_cmd = {
    "attune restore --data NEWDIR [--keys FILE] [--kek-file FILE] SRC",
    "Puts a backup (SRC/attune.db, and SRC/keys.db or --keys FILE) into a new data\n"
    "directory, opens it with the key-encryption key and checks every room as\n"
    "`attune verify` does, one line per room. Exit 1 when a room does not verify\n"
    "(an erased room's events do not open: its key is gone).",
    restore_options,
    (int)(sizeof restore_options / sizeof restore_options[0]),
    1,
    1};

int cli_cmd_backup(int argc, char **argv)
{
    cli_args a;
    if (cli_parse(&backup_cmd, argc, argv, &a, stderr) < 0)
        return CLI_EXIT_USAGE;
    if (a.help) {
        cli_print_help(&backup_cmd, stdout);
        return CLI_EXIT_OK;
    }
    const char *data = cli_get(&backup_cmd, &a, "data");
    int keys = cli_get(&backup_cmd, &a, "keys") != NULL;
    if (!data || a.n_positional != 1) {
        fprintf(stderr, "attune: --data and DEST are required; usage: %s\n", backup_cmd.usage);
        return CLI_EXIT_USAGE;
    }
    if (cli_get(&backup_cmd, &a, "store")) {
        fprintf(stderr,
                "attune: backup: with --store the events, accounts, invitations and wrapped keys "
                "are in PostgreSQL, which attune does not copy: use pg_dump (a logical copy, "
                "e.g. pg_dump -Fc -d URI -f FILE; --table 'keyring_*' for the keys alone) or "
                "pg_basebackup (the whole cluster) instead, and keep the KEK file apart\n");
        return CLI_EXIT_USAGE;
    }
    const char *dest = a.positional[0];
    att_error e = {0};
    if (srv_backup_take(data, dest, keys, &e) < 0) {
        fprintf(stderr, "attune: %s\n", e.message);
        return e.code == ATT_ERR_BAD_MESSAGE ? CLI_EXIT_USAGE : CLI_EXIT_FAIL;
    }
    printf("backed up %s/%s to %s/%s\n", data, keys ? SRV_BACKUP_KEYS_FILE : SRV_BACKUP_EVENTS_FILE,
           dest, keys ? SRV_BACKUP_KEYS_FILE : SRV_BACKUP_EVENTS_FILE);
    /* After the copy, so the copy never holds its own entry; a log that
     * cannot record it leaves the backup made (said on stderr). */
    (void)cli_audit_note_kek(data, cli_get(&backup_cmd, &a, "kek-file"), SRV_AUDIT_BACKUP, NULL,
                             keys ? "keys" : "events", stderr);
    return CLI_EXIT_OK;
}

int cli_cmd_restore(int argc, char **argv)
{
    cli_args a;
    if (cli_parse(&restore_cmd, argc, argv, &a, stderr) < 0)
        return CLI_EXIT_USAGE;
    if (a.help) {
        cli_print_help(&restore_cmd, stdout);
        return CLI_EXIT_OK;
    }
    const char *data = cli_get(&restore_cmd, &a, "data");
    const char *keys = cli_get(&restore_cmd, &a, "keys");
    if (!data || a.n_positional != 1) {
        fprintf(stderr, "attune: --data and SRC are required; usage: %s\n", restore_cmd.usage);
        return CLI_EXIT_USAGE;
    }
    if (cli_get(&restore_cmd, &a, "store")) {
        fprintf(stderr, "attune: restore: a backup of a PostgreSQL store is a pg_dump or "
                        "pg_basebackup copy: restore it with pg_restore (into a new database) or "
                        "by starting a cluster from the base backup, then run attune verify "
                        "--store URI --data DIR --kek-file FILE\n");
        return CLI_EXIT_USAGE;
    }
    att_error e = {0};
    if (srv_backup_restore(data, a.positional[0], keys, &e) < 0) {
        fprintf(stderr, "attune: %s\n", e.message);
        return e.code == ATT_ERR_BAD_MESSAGE || e.code == ATT_ERR_NOT_FOUND ? CLI_EXIT_USAGE
                                                                            : CLI_EXIT_FAIL;
    }
    printf("restored %s into %s\n", a.positional[0], data);
    cli_data_options opt = cli_data_options_of(&restore_cmd, &a);
    cli_data d;
    if (cli_data_open(&opt, &d, stderr) < 0)
        return CLI_EXIT_FAIL;
    int rc = cli_verify_rooms(d.store, NULL, stdout);
    (void)cli_audit_note(&d, SRV_AUDIT_RESTORED, NULL, NULL, stderr);
    cli_data_close(&d);
    return rc;
}
