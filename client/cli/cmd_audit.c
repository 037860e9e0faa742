/* cmd_audit.c - `attune audit`: prints the audit log (the data directory's, or with --store the
 * shared database's; who opened, exported, revoked links of, erased which room, when; never what
 * was in it: audit.h), checks its chain and its head's MAC, and exits 1
 * when they do not hold. Also cli_audit_note, with which the other
 * subcommands record what they did as "cli:<unix user>". */
#include "commands.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include "args.h"
#include "audit.h"
#include "b64url.h"
#include "clock.h"
#include "datadir.h"

static const cli_option options[] = {
    {"data", "DIR", "the server's data directory [required]"},
    {"room", "ID", "only this room's entries [all]"},
    {"actor", "NAME", "only this actor's entries: an account name, or cli:USER [all]"},
    CLI_KEK_FILE_OPTION,
    CLI_STORE_OPTION,
};
static const cli_command audit_cmd = {
    "attune audit --data DIR [--room ID] [--actor NAME]",
    "Prints the audit log, oldest first: id, time (UTC), actor, action, room and\n"
    "detail (a role or a supervisor's account). Then checks the whole log: every\n"
    "entry's chained hash and the head's MAC under the audit key (kept wrapped\n"
    "by the key-encryption key). Exits 1 and names the first bad entry when an\n"
    "entry was edited, dropped, inserted or reordered outside attune. With --store,\n"
    "the shared database's log (every node's and every attune command's).",
    options,
    (int)(sizeof options / sizeof options[0]),
    0,
    0};

static void utc(int64_t ms, char out[32])
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    snprintf(out, 32, "?");
    if (gmtime_r(&secs, &tm))
        strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int print_entry(const srv_audit_row *row, void *arg)
{
    int *count = arg;
    char when[32];
    utc(row->at, when);
    printf("%6lld  %s  %-20s %-16s %-24s %s\n", (long long)row->id, when, row->actor, row->action,
           row->room[0] ? row->room : "-", row->detail[0] ? row->detail : "-");
    (*count)++;
    return 0;
}

/* Records entry in an open audit log. */
static int note(srv_audit *audit, srv_audit_action action, const char *room, const char *detail,
                att_error *e)
{
    char actor[SRV_AUDIT_ACTOR_MAX + 1];
    srv_audit_cli_actor(actor);
    srv_audit_entry entry = {.at = srv_now_ms(),
                             .actor = actor,
                             .actor_id = 0,
                             .action = action,
                             .room = room,
                             .detail = detail};
    return srv_audit_record(audit, &entry, NULL, e);
}

int cli_audit_note(cli_data *d, srv_audit_action action, const char *room, const char *detail,
                   FILE *err)
{
    if (cli_data_open_audit(d, err) < 0) {
        fprintf(err, "attune: the audit log could not record this\n");
        return -1;
    }
    att_error e = {0};
    if (note(d->audit, action, room, detail, &e) < 0) {
        fprintf(err, "attune: the audit log could not record this: %s\n", e.message);
        return -1;
    }
    return 0;
}

int cli_audit_note_kek(const char *data_dir, const char *kek_file, srv_audit_action action,
                       const char *room, const char *detail, FILE *err)
{
    srv_keyring *keys = NULL;
    att_error e = {0};
    if (srv_keyring_open(data_dir, kek_file, 0, &keys, &e) < 0) {
        fprintf(err, "attune: the audit log could not record this: %s\n", e.message);
        return -1;
    }
    srv_audit *audit = NULL;
    int rc = srv_audit_open(data_dir, keys, &audit, &e);
    if (rc == 0)
        rc = note(audit, action, room, detail, &e);
    srv_audit_close(audit);
    srv_keyring_close(keys);
    if (rc < 0)
        fprintf(err, "attune: the audit log could not record this: %s\n", e.message);
    return rc < 0 ? -1 : 0;
}

int cli_cmd_audit(int argc, char **argv)
{
    cli_args a;
    if (cli_parse(&audit_cmd, argc, argv, &a, stderr) < 0)
        return CLI_EXIT_USAGE;
    if (a.help) {
        cli_print_help(&audit_cmd, stdout);
        return CLI_EXIT_OK;
    }
    const char *data = cli_get(&audit_cmd, &a, "data");
    if (!data) {
        fprintf(stderr, "attune: --data DIR is required\n");
        return CLI_EXIT_USAGE;
    }
    cli_data_options opt = cli_data_options_of(&audit_cmd, &a);
    opt.want_audit = 1;
    cli_data d;
    if (cli_data_open(&opt, &d, stderr) < 0)
        return CLI_EXIT_FAIL;
    srv_audit *audit = d.audit;
    att_error e = {0};
    int rc = CLI_EXIT_FAIL;
    srv_audit_filter f = {.room = cli_get(&audit_cmd, &a, "room"),
                          .actor = cli_get(&audit_cmd, &a, "actor")};
    int count = 0;
    printf("%6s  %-20s  %-20s %-16s %-24s %s\n", "ID", "AT (UTC)", "ACTOR", "ACTION", "ROOM",
           "DETAIL");
    if (srv_audit_walk(audit, &f, print_entry, &count, &e) < 0) {
        fprintf(stderr, "attune: %s\n", e.message);
        goto out;
    }
    srv_audit_check check;
    if (srv_audit_verify(audit, &check, &e) < 0) {
        fprintf(stderr, "attune: %s\n", e.message);
        goto out;
    }
    if (check.ok) {
        char hex[65];
        srv_hex_encode(check.head_hash, sizeof check.head_hash, hex);
        printf("audit log verified: %lld %s, head #%lld %.16s\n", (long long)check.entries,
               check.entries == 1 ? "entry" : "entries", (long long)check.head_id,
               check.entries ? hex : "(empty)");
        rc = CLI_EXIT_OK;
    } else {
        printf("audit log NOT verified: %s\n", check.why);
        fprintf(stderr, "attune: the audit log does not verify");
        if (check.first_bad > 0)
            fprintf(stderr, " from entry %lld", (long long)check.first_bad);
        fprintf(stderr, ": %s\n", check.why);
    }
    if (fflush(stdout) != 0)
        rc = CLI_EXIT_FAIL;
out:
    cli_data_close(&d);
    return rc;
}
