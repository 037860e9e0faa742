/* cmd_room.c - `attune room create`, `attune room list` and `attune room
 * erase` (erase.h: the same erase as the dashboard's): rooms in the
 * server's store, created exactly as attune-server creates its demo room
 * (room_created as seq 1) and announced with one invitation line per
 * member. */
#include "commands.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "accounts.h"
#include "admin.h"
#include "args.h"
#include "attune/msg.h"
#include "attune/room.h"
#include "attune/names.h"
#include "b64url.h"
#include "datadir.h"
#include "erase.h"
#include "random.h"
#include "invite.h"

static const cli_option create_options[] = {
    {"data", "DIR", "the server's data directory (created when missing) [required]"},
    {"exercise", "ID", "enactment, demon_dialogue or rocky_moment [enactment]"},
    {"base-url", "URL", "the server's public URL in the invitations [" CLI_DEFAULT_BASE_URL "]"},
    {"ttl", "SECONDS", "lifetime of the invitations, at most 2592000 (30 days) [604800, 7 days]"},
    {"room", "ID", "room id: 1..64 of A-Z a-z 0-9 _ - [random r-<12 hex>]"},
    {"first-speaker", "ROLE", "partner_a or partner_b speaks first [partner_a]"},
    {"key-file", "FILE", "invitation signing key, created (0600) when missing [DATA/secret.key]"},
    {"protocol-dir", "DIR", "protocol data: exercises/ and vocab/ [built in]"},
    {"owner", "NAME", "the therapist account whose dashboard shows the room [none]"},
    CLI_KEK_FILE_OPTION,
    CLI_STORE_OPTION,
};
static const cli_command create_cmd = {
    "attune room create --data DIR [--exercise ID] [--owner NAME] [--base-url URL] "
    "[--ttl SECONDS]",
    "Creates a room in the store and prints one invitation per member:\n"
    "  invite partner_a URL\n  invite partner_b URL\n  invite therapist URL\n"
    "(the room id goes to stderr). Works while attune-server runs on the same directory.",
    create_options,
    (int)(sizeof create_options / sizeof create_options[0]),
    0,
    0};

static const cli_option list_options[] = {
    {"data", "DIR", "the server's data directory [required]"},
    CLI_KEK_FILE_OPTION,
    CLI_STORE_OPTION,
};
static const cli_command list_cmd = {
    "attune room list --data DIR",
    "Lists the rooms in the store: id, exercise, creation time (UTC) and last seq.",
    list_options,
    (int)(sizeof list_options / sizeof list_options[0]),
    0,
    0};

static const cli_option erase_options[] = {
    {"data", "DIR", "the server's data directory [required]"},
    {"yes", NULL, "erase without asking to type the room id again"},
    CLI_KEK_FILE_OPTION,
    CLI_STORE_OPTION,
};
static const cli_command erase_cmd = {
    "attune room erase ROOM --data DIR [--yes]",
    "Erases a room for good: revokes its invitation links, takes its observers\n"
    "off it, destroys its data key (DATA/keys.db), then deletes its events, its\n"
    "summary and its place on the dashboard; the audit log records that it was\n"
    "erased, by whom and when (never what it held). Backups of attune.db taken\n"
    "before cannot be read for this room any more; a backup of keys.db taken\n"
    "before still holds its key (see the README). Asks you to type the room id\n"
    "unless --yes. Works while attune-server runs: within about a second it\n"
    "closes the room's connections (bye room_erased) and forgets the room.",
    erase_options,
    (int)(sizeof erase_options / sizeof erase_options[0]),
    1,
    1};

static int random_room_id(char *out, size_t size, FILE *err)
{
    unsigned char bytes[6];
    att_error e = {0};
    if (srv_random_bytes(bytes, sizeof bytes, &e) < 0) {
        fprintf(err, "attune: %s\n", e.message);
        return -1;
    }
    char hex[2 * sizeof bytes + 1];
    srv_hex_encode(bytes, sizeof bytes, hex);
    snprintf(out, size, "r-%s", hex);
    return 0;
}

static int room_create(int argc, char **argv)
{
    cli_args a;
    if (cli_parse(&create_cmd, argc, argv, &a, stderr) < 0)
        return CLI_EXIT_USAGE;
    if (a.help) {
        cli_print_help(&create_cmd, stdout);
        return CLI_EXIT_OK;
    }
    const char *data = cli_get(&create_cmd, &a, "data");
    const char *exercise = cli_get(&create_cmd, &a, "exercise");
    const char *base = cli_get(&create_cmd, &a, "base-url");
    const char *ttl_text = cli_get(&create_cmd, &a, "ttl");
    const char *room_opt = cli_get(&create_cmd, &a, "room");
    const char *first = cli_get(&create_cmd, &a, "first-speaker");
    const char *owner = cli_get(&create_cmd, &a, "owner");
    if (!data) {
        fprintf(stderr, "attune: --data DIR is required\n");
        return CLI_EXIT_USAGE;
    }
    int64_t ttl = CLI_DEFAULT_TOKEN_TTL_S;
    if (ttl_text && cli_parse_int64("ttl", ttl_text, 1, SRV_INVITE_TTL_MAX_S, &ttl, stderr) < 0)
        return CLI_EXIT_USAGE;
    att_role first_speaker = first ? att_role_from_name(first) : ATT_ROLE_PARTNER_A;
    if (!att_role_is_partner(first_speaker)) {
        fprintf(stderr, "attune: --first-speaker must be partner_a or partner_b\n");
        return CLI_EXIT_USAGE;
    }
    if (room_opt && !srv_room_id_valid(room_opt)) {
        fprintf(stderr, "attune: --room: 1..64 characters of A-Z a-z 0-9 _ -\n");
        return CLI_EXIT_USAGE;
    }
    if (cli_invite_check_base(base ? base : CLI_DEFAULT_BASE_URL, stderr) < 0)
        return CLI_EXIT_USAGE;

    cli_data_options opt = cli_data_options_of(&create_cmd, &a);
    opt.create = 1;
    opt.want_key = 1;
    opt.want_catalog = 1;
    opt.want_accounts = owner != NULL;
    opt.want_invites = 1;
    cli_data d;
    if (cli_data_open(&opt, &d, stderr) < 0)
        return CLI_EXIT_FAIL;
    int rc = CLI_EXIT_FAIL;
    if (owner) {
        att_error oe = {0};
        int exists = srv_accounts_exists(d.accounts, owner, &oe);
        if (exists <= 0) {
            fprintf(stderr, "attune: --owner: %s\n",
                    exists < 0 ? oe.message : "no such therapist (see attune therapist add)");
            rc = exists < 0 ? CLI_EXIT_FAIL : CLI_EXIT_USAGE;
            goto out;
        }
    }
    const char *ex_id = exercise ? exercise : "enactment";
    const att_script *script = att_catalog_script(d.catalog, ex_id);
    if (!script) {
        fprintf(stderr, "attune: unknown exercise '%s'; known:", ex_id);
        for (size_t i = 0; i < att_catalog_script_count(d.catalog); i++)
            fprintf(stderr, " %s", att_catalog_script_at(d.catalog, i)->id);
        fprintf(stderr, "\n");
        rc = CLI_EXIT_USAGE;
        goto out;
    }
    srv_store_room meta = {0};
    if (room_opt)
        snprintf(meta.id, sizeof meta.id, "%s", room_opt);
    else if (random_room_id(meta.id, sizeof meta.id, stderr) < 0)
        goto out;
    meta.created_at = srv_now_ms();
    att_error e = {0};
    if (srv_admin_create_room_as(d.store, d.catalog, script->id, first_speaker, meta.id,
                                 meta.created_at, &e) < 0) {
        fprintf(stderr, "attune: %s\n", e.message);
        goto out;
    }
    if (owner && srv_accounts_set_owner(d.accounts, meta.id, owner, &e) < 0) {
        fprintf(stderr, "attune: room %s created without an owner: %s\n", meta.id, e.message);
        goto out;
    }
    static const att_role members[] = {ATT_ROLE_PARTNER_A, ATT_ROLE_PARTNER_B, ATT_ROLE_THERAPIST};
    char lines[3][SRV_INVITE_LINE_MAX];
    srv_link_options links = {.public_url = base ? base : CLI_DEFAULT_BASE_URL, .token_ttl_s = ttl};
    if (srv_admin_invite_lines(d.invites, &d.key, &links, meta.id, members, 3, SRV_INVITE_OPERATOR,
                               meta.created_at, lines, &e) < 0) {
        fprintf(stderr, "attune: %s\n", e.message);
        goto out;
    }
    fprintf(stderr, "attune: created room %s (%s)\n", meta.id, script->id);
    for (int i = 0; i < 3; i++)
        printf("%s\n", lines[i]);
    rc = fflush(stdout) == 0 ? CLI_EXIT_OK : CLI_EXIT_FAIL;
out:
    cli_data_close(&d);
    return rc;
}

typedef struct {
    srv_store *store;
    int count;
    int failed;
} list_ctx;

static int print_room(const srv_store_room *room, void *arg)
{
    list_ctx *ctx = arg;
    att_error e = {0};
    int64_t last = 0;
    if (srv_store_last_seq(ctx->store, room->id, &last, &e) < 0) {
        fprintf(stderr, "attune: %s\n", e.message);
        ctx->failed = 1;
        return 1;
    }
    time_t secs = (time_t)(room->created_at / 1000);
    struct tm tm;
    char when[32] = "?";
    if (gmtime_r(&secs, &tm))
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    printf("%-24s %-16s %s %8lld\n", room->id, room->exercise, when, (long long)last);
    ctx->count++;
    return 0;
}

static int room_list(int argc, char **argv)
{
    cli_args a;
    if (cli_parse(&list_cmd, argc, argv, &a, stderr) < 0)
        return CLI_EXIT_USAGE;
    if (a.help) {
        cli_print_help(&list_cmd, stdout);
        return CLI_EXIT_OK;
    }
    const char *data = cli_get(&list_cmd, &a, "data");
    if (!data) {
        fprintf(stderr, "attune: --data DIR is required\n");
        return CLI_EXIT_USAGE;
    }
    cli_data_options opt = cli_data_options_of(&list_cmd, &a);
    cli_data d;
    if (cli_data_open(&opt, &d, stderr) < 0)
        return CLI_EXIT_FAIL;
    list_ctx ctx = {d.store, 0, 0};
    att_error e = {0};
    printf("%-24s %-16s %-20s %8s\n", "ROOM", "EXERCISE", "CREATED (UTC)", "LAST SEQ");
    int rc = srv_store_list_rooms(d.store, print_room, &ctx, &e);
    if (rc < 0)
        fprintf(stderr, "attune: %s\n", e.message);
    cli_data_close(&d);
    return (rc != 0 || ctx.failed) ? CLI_EXIT_FAIL : CLI_EXIT_OK;
}

/* Reads one line from stdin: 1 when it is exactly `room`. */
static int confirmed_on_stdin(const char *room)
{
    fprintf(stderr,
            "attune: this destroys room %s's key and deletes its events for good; it cannot be\n"
            "        undone, and backups of its events taken before cannot be read for it either.\n"
            "        Type the room id to erase it: ",
            room);
    fflush(stderr);
    char line[256];
    if (!fgets(line, sizeof line, stdin))
        return 0;
    line[strcspn(line, "\r\n")] = '\0';
    return strcmp(line, room) == 0;
}

static int room_erase(int argc, char **argv)
{
    cli_args a;
    if (cli_parse(&erase_cmd, argc, argv, &a, stderr) < 0)
        return CLI_EXIT_USAGE;
    if (a.help) {
        cli_print_help(&erase_cmd, stdout);
        return CLI_EXIT_OK;
    }
    const char *data = cli_get(&erase_cmd, &a, "data");
    const char *room = a.positional[0];
    if (!data) {
        fprintf(stderr, "attune: --data DIR is required\n");
        return CLI_EXIT_USAGE;
    }
    if (!srv_room_id_valid(room)) {
        fprintf(stderr, "attune: ROOM: 1..64 characters of A-Z a-z 0-9 _ -\n");
        return CLI_EXIT_USAGE;
    }
    cli_data_options opt = cli_data_options_of(&erase_cmd, &a);
    opt.want_accounts = opt.want_invites = opt.want_audit = 1;
    cli_data d;
    if (cli_data_open(&opt, &d, stderr) < 0)
        return CLI_EXIT_FAIL;
    int rc = CLI_EXIT_FAIL;
    att_error e = {0};
    srv_store_room meta;
    int64_t owner = 0;
    if (srv_store_get_room(d.store, room, &meta, &e) == -ATT_ERR_NOT_FOUND &&
        srv_accounts_get_owner_id(d.accounts, room, &owner, &e) == -ATT_ERR_NOT_FOUND) {
        fprintf(stderr, "attune: no room %s in %s\n", room, cli_data_where(&d));
        rc = CLI_EXIT_USAGE;
        goto out;
    }
    if (!cli_get(&erase_cmd, &a, "yes") && !confirmed_on_stdin(room)) {
        fprintf(stderr, "attune: that is not the room id; nothing was erased\n");
        rc = CLI_EXIT_USAGE;
        goto out;
    }
    char actor[SRV_AUDIT_ACTOR_MAX + 1];
    srv_audit_cli_actor(actor);
    srv_erase_deps deps = {d.store, d.invites, d.accounts, d.audit};
    srv_erase_result done;
    if (srv_erase_room(&deps, room, actor, 0, srv_now_ms(), &done, &e) < 0) {
        fprintf(stderr, "attune: %s\n", e.message);
        goto out;
    }
    printf("erased %s: key destroyed, %s, %d link(s) revoked, audit entry %lld\n", room,
           done.store_had_room ? "events deleted" : "no events were left", done.links_revoked,
           (long long)done.audit_id);
    rc = fflush(stdout) == 0 ? CLI_EXIT_OK : CLI_EXIT_FAIL;
out:
    cli_data_close(&d);
    return rc;
}

int cli_cmd_room(int argc, char **argv)
{
    if (argc >= 1 && strcmp(argv[0], "create") == 0)
        return room_create(argc - 1, argv + 1);
    if (argc >= 1 && strcmp(argv[0], "list") == 0)
        return room_list(argc - 1, argv + 1);
    if (argc >= 1 && strcmp(argv[0], "erase") == 0)
        return room_erase(argc - 1, argv + 1);
    FILE *out = (argc >= 1 && (strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0))
                    ? stdout
                    : stderr;
    fprintf(out, "usage: attune room create --data DIR [options]  (see attune room create --help)\n"
                 "       attune room list --data DIR\n"
                 "       attune room erase ROOM --data DIR [--yes]\n");
    return out == stdout ? CLI_EXIT_OK : CLI_EXIT_USAGE;
}
