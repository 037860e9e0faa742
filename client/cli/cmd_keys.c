/* cmd_keys.c - `attune keys rotate`: every wrapped key of DATA/keys.db
 * (with --store: of the shared database's keyring tables) rewrapped under
 * a new key-encryption key (keyring.h's srv_keyring_rotate_ex /
 * srv_keyring_rotate_pg_ex), events untouched. Prints counts and KEK ids,
 * never key bytes. */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include "args.h"
#include "commands.h"
#include "datadir.h"
#include "keyring.h"
#include "secure_start.h"

static const cli_option rotate_options[] = {
    {"data", "DIR", "the server's data directory [required]"},
    CLI_KEK_FILE_OPTION,
    {"new-kek-file", "FILE",
     "the new key-encryption key, made by you (64 hex digits, mode 0600); --kek-file is then "
     "left as it is [a new random KEK written in place of --kek-file]"},
    CLI_STORE_OPTION,
};
static const cli_command rotate_cmd = {
    "attune keys rotate --data DIR [--kek-file FILE] [--new-kek-file FILE]",
    "Rewraps every room key and service key of DIR/keys.db (with --store: of the\n"
    "shared database) under a new key-encryption key, in one transaction; no event\n"
    "is rewritten. Without --new-kek-file a new random\n"
    "KEK replaces the one in --kek-file (written to FILE.new first; a crash at any point\n"
    "leaves a KEK that opens the keys, and the next open finishes the swap). Safe while\n"
    "attune-server runs: it keeps the keys it holds and reloads its KEK file when it next\n"
    "makes a room (with --store, put the new KEK beside every other node's KEK file\n"
    "as FILE.new first: README). Prints how many keys were rewrapped and the old and\n"
    "new KEK ids.",
    rotate_options,
    (int)(sizeof rotate_options / sizeof rotate_options[0]),
    0,
    0};

static void usage(FILE *out)
{
    fprintf(out, "usage: attune keys rotate --data DIR [--kek-file FILE] [--new-kek-file FILE]\n"
                 "`attune keys rotate --help` describes it.\n");
}

static int keys_rotate(int argc, char **argv)
{
    cli_args a;
    if (cli_parse(&rotate_cmd, argc, argv, &a, stderr) < 0)
        return CLI_EXIT_USAGE;
    if (a.help) {
        cli_print_help(&rotate_cmd, stdout);
        return CLI_EXIT_OK;
    }
    const char *data = cli_get(&rotate_cmd, &a, "data");
    if (!data) {
        fprintf(stderr, "attune: --data DIR is required\n");
        return CLI_EXIT_USAGE;
    }
    const char *store = cli_get(&rotate_cmd, &a, "store");
    const char *kek_file = cli_get(&rotate_cmd, &a, "kek-file");
    const char *new_kek_file = cli_get(&rotate_cmd, &a, "new-kek-file");
    att_error e = {0};
    if (store && !kek_file) {
        fprintf(stderr, "attune: --store needs --kek-file: the key-encryption key every node of "
                        "the cluster is given\n");
        return CLI_EXIT_USAGE;
    }
    if (!store) {
        char keys_db[4096];
        struct stat st;
        if (snprintf(keys_db, sizeof keys_db, "%s/keys.db", data) >= (int)sizeof keys_db ||
            stat(keys_db, &st) != 0) {
            fprintf(stderr, "attune: no keys at %s/keys.db (check --data)\n", data);
            return CLI_EXIT_FAIL;
        }
        if (srv_secure_data_dir(data, &e) < 0) {
            fprintf(stderr, "attune: %s\n", e.message);
            return CLI_EXIT_FAIL;
        }
    }
    srv_keyring_rotation r;
    int rc =
        store ? srv_keyring_rotate_pg_ex(store, kek_file, new_kek_file, SRV_ROTATE_COMPLETE, &r, &e)
              : srv_keyring_rotate_ex(data, kek_file, new_kek_file, SRV_ROTATE_COMPLETE, &r, &e);
    if (rc < 0) {
        fprintf(stderr, "attune: %s\n", e.message);
        return e.code == ATT_ERR_BAD_MESSAGE ? CLI_EXIT_USAGE : CLI_EXIT_FAIL;
    }
    printf("rewrapped %d keys\nold KEK id %s\nnew KEK id %s\n", r.n_rewrapped, r.old_kek_id,
           r.new_kek_id);
    if (new_kek_file) {
        char old_path[4096];
        if (kek_file)
            snprintf(old_path, sizeof old_path, "%s", kek_file);
        else if (srv_kek_default_path(data, old_path, sizeof old_path, &e) < 0)
            snprintf(old_path, sizeof old_path, "the default KEK file");
        printf("the new KEK is %s; %s was not rewritten and no longer opens the keys:\n"
               "start attune-server (and attune) with --kek-file %s, or put its contents where\n"
               "%s is (a systemd credential: replace the file LoadCredential names)\n",
               r.kek_path, old_path, r.kek_path, old_path);
    } else {
        printf("the new KEK is in %s (the old one is gone)\n", r.kek_path);
    }
    /* Recorded under the new KEK's keys (the audit key was rewrapped too). */
    if (store) {
        cli_data_options opt = cli_data_options_of(&rotate_cmd, &a);
        opt.kek_file = r.kek_path;
        cli_data d;
        if (cli_data_open(&opt, &d, stderr) == 0) {
            (void)cli_audit_note(&d, SRV_AUDIT_KEYS_ROTATED, NULL, NULL, stderr);
            cli_data_close(&d);
        }
    } else {
        cli_audit_note_kek(data, r.kek_path, SRV_AUDIT_KEYS_ROTATED, NULL, NULL, stderr);
    }
    return CLI_EXIT_OK;
}

int cli_cmd_keys(int argc, char **argv)
{
    if (argc < 1 || strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0) {
        usage(argc < 1 ? stderr : stdout);
        return argc < 1 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
    }
    if (strcmp(argv[0], "rotate") == 0)
        return keys_rotate(argc - 1, argv + 1);
    fprintf(stderr, "attune: unknown keys command '%s'\n", argv[0]);
    usage(stderr);
    return CLI_EXIT_USAGE;
}
