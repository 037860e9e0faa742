/* cmd_token.c - `attune token`: one invitation token for a role in an
 * existing room, signed with the data directory's key. */
#include "commands.h"

#include <stdio.h>
#include <string.h>
#include "args.h"
#include "datadir.h"

static const cli_option options[] = {
    {"data", "DIR", "the server's data directory [required]"},
    {"room", "ID", "an existing room [required]"},
    {"role", "ROLE", "partner_a, partner_b, therapist or observer [required]"},
    {"ttl", "SECONDS", "lifetime of the token [604800, 7 days]"},
    {"key-file", "FILE", "invitation signing key [DATA/secret.key]"},
};
static const cli_command token_cmd = {
    "attune token --data DIR --room ID --role ROLE [--ttl SECONDS]",
    "Prints one invitation token (one line) for ROLE in room ID. An observer (a\n"
    "supervisor) sees what the therapist sees but cannot act.",
    options,
    (int)(sizeof options / sizeof options[0]),
    0,
    0};

int cli_cmd_token(int argc, char **argv)
{
    cli_args a;
    if (cli_parse(&token_cmd, argc, argv, &a, stderr) < 0)
        return CLI_EXIT_USAGE;
    if (a.help) {
        cli_print_help(&token_cmd, stdout);
        return CLI_EXIT_OK;
    }
    const char *data = cli_get(&token_cmd, &a, "data");
    const char *room = cli_get(&token_cmd, &a, "room");
    const char *role_name = cli_get(&token_cmd, &a, "role");
    const char *ttl_text = cli_get(&token_cmd, &a, "ttl");
    if (!data || !room || !role_name) {
        fprintf(stderr, "attune: --data, --room and --role are required; usage: %s\n",
                token_cmd.usage);
        return CLI_EXIT_USAGE;
    }
    att_role role = att_role_from_name(role_name);
    if (role != ATT_ROLE_PARTNER_A && role != ATT_ROLE_PARTNER_B && role != ATT_ROLE_THERAPIST &&
        role != ATT_ROLE_OBSERVER) {
        fprintf(stderr, "attune: --role must be partner_a, partner_b, therapist or observer\n");
        return CLI_EXIT_USAGE;
    }
    int64_t ttl = CLI_DEFAULT_TOKEN_TTL_S;
    if (ttl_text &&
        cli_parse_int64("ttl", ttl_text, 1, INT64_C(10) * 365 * 24 * 3600, &ttl, stderr) < 0)
        return CLI_EXIT_USAGE;
    if (!srv_room_id_valid(room)) {
        fprintf(stderr, "attune: --room: 1..64 characters of A-Z a-z 0-9 _ -\n");
        return CLI_EXIT_USAGE;
    }
    cli_data d;
    if (cli_data_open(data, 0, 1, cli_get(&token_cmd, &a, "key-file"), 0, NULL, &d, stderr) < 0)
        return CLI_EXIT_FAIL;
    int rc = CLI_EXIT_FAIL;
    att_error e = {0};
    srv_store_room meta;
    char token[SRV_TOKEN_MAX];
    if (srv_store_get_room(d.store, room, &meta, &e) < 0) {
        if (e.code == ATT_ERR_NOT_FOUND)
            fprintf(stderr, "attune: no room '%s' in %s\n", room, data);
        else
            fprintf(stderr, "attune: %s\n", e.message);
    } else if (srv_token_issue(&d.key, room, role, cli_now_ms() / 1000 + ttl, NULL, token,
                               sizeof token, &e) < 0) {
        fprintf(stderr, "attune: %s\n", e.message);
    } else {
        printf("%s\n", token);
        rc = fflush(stdout) == 0 ? CLI_EXIT_OK : CLI_EXIT_FAIL;
    }
    cli_data_close(&d);
    return rc;
}
