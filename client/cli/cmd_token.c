/* cmd_token.c - `attune token`: one invitation token for a role in an
 * existing room, signed with the data directory's key and recorded as an
 * operator's link (invites.h); `attune token revoke`: ends links, by room
 * and role or by the token itself. A running server closes the revoked
 * links' connections within a couple of seconds (its sweep reads the
 * revocations this writes). */
#include "commands.h"

#include <stdio.h>
#include <string.h>
#include "args.h"
#include "datadir.h"
#include "invites.h"
#include "attune/names.h"

static const cli_option options[] = {
    {"data", "DIR", "the server's data directory [required]"},
    {"room", "ID", "an existing room [required]"},
    {"role", "ROLE", "partner_a, partner_b, therapist or observer [required]"},
    {"ttl", "SECONDS", "lifetime of the token, at most 2592000 (30 days) [604800, 7 days]"},
    {"key-file", "FILE", "invitation signing key [DATA/secret.key]"},
    CLI_KEK_FILE_OPTION,
    CLI_STORE_OPTION,
};
static const cli_command token_cmd = {
    "attune token --data DIR --room ID --role ROLE [--ttl SECONDS]\n"
    "       attune token revoke --data DIR (--room ID --role ROLE | --stdin)",
    "Prints one invitation token (one line) for ROLE in room ID, recorded as issued\n"
    "by \"operator\". An observer (a supervisor) sees what the therapist sees but\n"
    "cannot act. `attune token revoke --help` ends links.",
    options,
    (int)(sizeof options / sizeof options[0]),
    0,
    0};

static const cli_option revoke_options[] = {
    {"data", "DIR", "the server's data directory [required]"},
    {"room", "ID", "revoke every live link of ROLE in room ID"},
    {"role", "ROLE", "partner_a, partner_b, therapist or observer (with --room)"},
    {"stdin", NULL, "revoke the one link whose token (or invitation URL) is read from stdin"},
    {"key-file", "FILE", "invitation signing key [DATA/secret.key]"},
    CLI_KEK_FILE_OPTION,
    CLI_STORE_OPTION,
};
static const cli_command revoke_cmd = {
    "attune token revoke --data DIR (--room ID --role ROLE | --stdin)",
    "Revokes invitation links: every unrevoked link of ROLE in room ID, or the one\n"
    "whose token or URL is given on stdin (kept out of argv, so out of ps and shell\n"
    "history). A running server closes their live connections (4401, bye revoked)\n"
    "within a couple of seconds. Prints how many links were revoked.",
    revoke_options,
    (int)(sizeof revoke_options / sizeof revoke_options[0]),
    0,
    0};

static int role_from_arg(const char *name, att_role *out)
{
    att_role role = att_role_from_name(name);
    if (role != ATT_ROLE_PARTNER_A && role != ATT_ROLE_PARTNER_B && role != ATT_ROLE_THERAPIST &&
        role != ATT_ROLE_OBSERVER) {
        fprintf(stderr, "attune: --role must be partner_a, partner_b, therapist or observer\n");
        return -1;
    }
    *out = role;
    return 0;
}

/* Reads one line from stdin and keeps the token (after #token= in a URL). */
static int read_token(char *out, size_t size)
{
    char line[4096];
    if (!fgets(line, sizeof line, stdin)) {
        fprintf(stderr, "attune: --stdin: no token on stdin\n");
        return -1;
    }
    char *tok = strstr(line, "#token=");
    tok = tok ? tok + 7 : line;
    while (*tok == ' ' || *tok == '\t')
        tok++;
    size_t n = strcspn(tok, " \t\r\n&");
    if (n == 0 || n >= size) {
        fprintf(stderr, "attune: --stdin: expected a token or an invitation URL\n");
        return -1;
    }
    memcpy(out, tok, n);
    out[n] = '\0';
    return 0;
}

static int token_revoke(int argc, char **argv)
{
    cli_args a;
    if (cli_parse(&revoke_cmd, argc, argv, &a, stderr) < 0)
        return CLI_EXIT_USAGE;
    if (a.help) {
        cli_print_help(&revoke_cmd, stdout);
        return CLI_EXIT_OK;
    }
    const char *data = cli_get(&revoke_cmd, &a, "data");
    const char *room = cli_get(&revoke_cmd, &a, "room");
    const char *role_name = cli_get(&revoke_cmd, &a, "role");
    int from_stdin = cli_get(&revoke_cmd, &a, "stdin") != NULL;
    if (!data || (from_stdin == (room || role_name)) || (!from_stdin && !(room && role_name))) {
        fprintf(stderr,
                "attune: give --data and either --room with --role, or --stdin; usage: %s\n",
                revoke_cmd.usage);
        return CLI_EXIT_USAGE;
    }
    att_role role = ATT_ROLE_NONE;
    if (!from_stdin && role_from_arg(role_name, &role) < 0)
        return CLI_EXIT_USAGE;
    if (room && !srv_room_id_valid(room)) {
        fprintf(stderr, "attune: --room: 1..64 characters of A-Z a-z 0-9 _ -\n");
        return CLI_EXIT_USAGE;
    }
    char token[ATT_MAX_TOKEN_BYTES + 1];
    if (from_stdin && read_token(token, sizeof token) < 0)
        return CLI_EXIT_USAGE;
    cli_data_options opt = cli_data_options_of(&revoke_cmd, &a);
    opt.want_key = opt.want_invites = 1;
    cli_data d;
    if (cli_data_open(&opt, &d, stderr) < 0)
        return CLI_EXIT_FAIL;
    srv_invites *inv = d.invites;
    att_error e = {0};
    int rc = CLI_EXIT_FAIL, n = -1;
    if (from_stdin) {
        srv_token_claims claims;
        n = srv_invites_revoke_token(inv, &d.key, token, srv_now_ms(), &claims, &e);
        if (n < 0 && (e.code == ATT_ERR_BAD_TOKEN || e.code == ATT_ERR_NOT_FOUND)) {
            fprintf(stderr, "attune: not a link of this data directory (%s)\n", e.message);
            rc = CLI_EXIT_USAGE;
        } else if (n < 0) {
            fprintf(stderr, "attune: %s\n", e.message);
        } else {
            printf("revoked %d %s %s\n", n, claims.room, att_role_name(claims.role));
            if (n == 0)
                fprintf(stderr, "attune: that link was already revoked\n");
            else
                cli_audit_note(&d, SRV_AUDIT_LINKS_REVOKED, claims.room, att_role_name(claims.role),
                               stderr);
        }
    } else {
        srv_store_room meta;
        if (srv_store_get_room(d.store, room, &meta, &e) < 0) {
            fprintf(stderr, "attune: %s\n",
                    e.code == ATT_ERR_NOT_FOUND ? "no such room in this store" : e.message);
            rc = e.code == ATT_ERR_NOT_FOUND ? CLI_EXIT_USAGE : CLI_EXIT_FAIL;
        } else if ((n = srv_invites_revoke_role(inv, room, role, srv_now_ms(), &e)) < 0) {
            fprintf(stderr, "attune: %s\n", e.message);
        } else {
            printf("revoked %d %s %s\n", n, room, att_role_name(role));
            cli_audit_note(&d, SRV_AUDIT_LINKS_REVOKED, room, att_role_name(role), stderr);
        }
    }
    if (n >= 0)
        rc = fflush(stdout) == 0 ? CLI_EXIT_OK : CLI_EXIT_FAIL;
    cli_data_close(&d);
    return rc;
}

int cli_cmd_token(int argc, char **argv)
{
    if (argc >= 1 && strcmp(argv[0], "revoke") == 0)
        return token_revoke(argc - 1, argv + 1);
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
    att_role role;
    if (role_from_arg(role_name, &role) < 0)
        return CLI_EXIT_USAGE;
    int64_t ttl = CLI_DEFAULT_TOKEN_TTL_S;
    if (ttl_text && cli_parse_int64("ttl", ttl_text, 1, SRV_INVITE_TTL_MAX_S, &ttl, stderr) < 0)
        return CLI_EXIT_USAGE;
    if (!srv_room_id_valid(room)) {
        fprintf(stderr, "attune: --room: 1..64 characters of A-Z a-z 0-9 _ -\n");
        return CLI_EXIT_USAGE;
    }
    cli_data_options opt = cli_data_options_of(&token_cmd, &a);
    opt.want_key = opt.want_invites = 1;
    cli_data d;
    if (cli_data_open(&opt, &d, stderr) < 0)
        return CLI_EXIT_FAIL;
    int rc = CLI_EXIT_FAIL;
    att_error e = {0};
    srv_store_room meta;
    char token[SRV_TOKEN_MAX];
    if (srv_store_get_room(d.store, room, &meta, &e) < 0) {
        if (e.code == ATT_ERR_NOT_FOUND)
            fprintf(stderr, "attune: no room '%s' in %s\n", room, cli_data_where(&d));
        else
            fprintf(stderr, "attune: %s\n", e.message);
    } else if (srv_invites_issue(d.invites, &d.key, room, role, ttl, SRV_INVITE_OPERATOR,
                                 srv_now_ms(), token, sizeof token, NULL, &e) < 0) {
        fprintf(stderr, "attune: %s\n", e.message);
    } else {
        printf("%s\n", token);
        rc = fflush(stdout) == 0 ? CLI_EXIT_OK : CLI_EXIT_FAIL;
    }
    cli_data_close(&d);
    return rc;
}
