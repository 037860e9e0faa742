/* main.c - `attune`: the command-line client. Dispatches to a subcommand;
 * everything it prints is for people or scripts (stdout), errors go to
 * stderr; it never writes logs. */
#include <stdio.h>
#include <string.h>
#include "args.h"
#include "commands.h"
#include "secure_start.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: attune COMMAND [options]\n\n"
            "commands:\n"
            "  room create   create a room in the store and print its three invitations\n"
            "  room list     list the rooms in the store\n"
            "  token         print one invitation token (partners, therapist, observer)\n"
            "  replay        print a session from the store as a transcript (--follow, --speed)\n"
            "  join URL      take part in a session from the terminal\n"
            "  therapist     add, list or remove therapist accounts (dashboard logins)\n"
            "  keys rotate   rewrap every room key under a new key-encryption key\n"
            "  verify        check rooms' logs against their hash chains and heads\n"
            "  backup        copy the events (or, --keys, the wrapped keys) while the server runs\n"
            "  restore       put a backup into a new data directory and check every room\n"
            "  room erase    destroy a room's key and delete its rows, for good\n"
            "  audit         print and check the audit log (who did what to which room)\n\n"
            "`attune COMMAND --help` describes each one. attune refuses to run as root\n"
            "unless given --allow-root (anywhere on the line) or ATTUNE_ALLOW_ROOT=1.\n"
            "exit codes: 0 success, 1 failure (store, network or server), 2 bad usage or input\n");
}

int main(int argc, char **argv)
{
    /* First of all, before any key is loaded: no core dump (a core would
     * hold the KEK, the room keys and decrypted sessions). */
    att_error dump_err = {0};
    if (srv_secure_no_core_dumps(&dump_err) < 0) {
        fprintf(stderr, "attune: %s\n", dump_err.message);
        return CLI_EXIT_FAIL;
    }
    /* --allow-root may come anywhere; it is taken out before the
     * subcommand parses its own options. */
    int allow_root = 0, n = 1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--allow-root") == 0)
            allow_root = 1;
        else
            argv[n++] = argv[i];
    }
    argc = n;
    argv[argc] = NULL;
    if (argc < 2) {
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return CLI_EXIT_OK;
    }
    /* Every file it creates in a data directory (the store, keys) is 0600. */
    srv_secure_umask();
    int help = 0;
    for (int i = 2; i < argc; i++)
        help |= strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0;
    att_error err = {0};
    if (!help && srv_secure_refuse_root(allow_root, &err) < 0) {
        fprintf(stderr, "attune: %s\n", err.message);
        return CLI_EXIT_FAIL;
    }
    if (strcmp(cmd, "room") == 0)
        return cli_cmd_room(argc - 2, argv + 2);
    if (strcmp(cmd, "token") == 0)
        return cli_cmd_token(argc - 2, argv + 2);
    if (strcmp(cmd, "replay") == 0)
        return cli_cmd_replay(argc - 2, argv + 2);
    if (strcmp(cmd, "therapist") == 0)
        return cli_cmd_therapist(argc - 2, argv + 2);
    if (strcmp(cmd, "join") == 0)
        return cli_cmd_join(argc - 2, argv + 2);
    if (strcmp(cmd, "keys") == 0)
        return cli_cmd_keys(argc - 2, argv + 2);
    if (strcmp(cmd, "verify") == 0)
        return cli_cmd_verify(argc - 2, argv + 2);
    if (strcmp(cmd, "backup") == 0)
        return cli_cmd_backup(argc - 2, argv + 2);
    if (strcmp(cmd, "restore") == 0)
        return cli_cmd_restore(argc - 2, argv + 2);
    if (strcmp(cmd, "audit") == 0)
        return cli_cmd_audit(argc - 2, argv + 2);
    fprintf(stderr, "attune: unknown command '%s'\n", cmd);
    usage(stderr);
    return CLI_EXIT_USAGE;
}
