/* cmd_verify.c - `attune verify`: checks rooms' logs against their hash
 * chains, seals and authenticated heads (srv_store_verify_room, store.h)
 * and names the first edited, dropped, inserted or reordered event of each
 * broken one. Also the report `attune restore` prints. Never prints what
 * an event says. */
#include "commands.h"

#include <stdlib.h>
#include <string.h>
#include "args.h"
#include "datadir.h"
#include "room_id.h"

static const cli_option options[] = {
    {"data", "DIR", "the server's data directory [required]"},
    {"room", "ID", "the room to check"},
    {"all", NULL, "check every room (the default without --room)"},
    CLI_KEK_FILE_OPTION,
    CLI_STORE_OPTION,
};
static const cli_command verify_cmd = {
    "attune verify --data DIR [--room ID | --all] [--kek-file FILE]",
    "Checks each room's stored log: every event's seal opens and its link of the\n"
    "room's hash chain follows from the one before, no seq is missing, and the log\n"
    "ends at the room's head, whose MAC (under a key kept outside the database)\n"
    "holds. Prints one line per room: \"ROOM verified, N events, head SEQ HASH\",\n"
    "or \"ROOM BROKEN at event SEQ: what\" naming the first edited, dropped,\n"
    "inserted or reordered event (or a truncated log). Exit 1 when any room is\n"
    "broken.",
    options,
    (int)(sizeof options / sizeof options[0]),
    0,
    0};

typedef struct {
    srv_store *store;
    FILE *out;
    int checked, broken;
    int failed; /* could not check (SQLite): the message was printed */
} verify_run;

static int verify_one(const char *room, verify_run *v)
{
    srv_chain_report rep;
    att_error e = {0};
    int rc = srv_store_verify_room(v->store, room, &rep, &e);
    if (rc < 0) {
        fprintf(stderr, "attune: room %s: %s\n", room, e.message);
        v->failed = 1;
        return rc;
    }
    v->checked++;
    if (rc == 0) {
        fprintf(v->out, "%s verified, %lld events, head %lld %s\n", room, (long long)rep.events,
                (long long)rep.head_seq, rep.head_hex);
    } else {
        v->broken++;
        if (rep.bad_seq > 0)
            fprintf(v->out, "%s BROKEN at event %lld: %s\n", room, (long long)rep.bad_seq,
                    rep.problem);
        else
            fprintf(v->out, "%s BROKEN: %s\n", room, rep.problem);
    }
    return 0;
}

static int verify_listed(const srv_store_room *room, void *arg)
{
    verify_run *v = arg;
    (void)verify_one(room->id, v); /* a room that cannot be checked is reported; go on */
    return 0;
}

int cli_verify_rooms(srv_store *store, const char *room, FILE *out)
{
    verify_run v = {.store = store, .out = out};
    if (room) {
        if (verify_one(room, &v) < 0)
            return CLI_EXIT_FAIL;
    } else {
        att_error e = {0};
        if (srv_store_list_rooms(store, verify_listed, &v, &e) < 0) {
            fprintf(stderr, "attune: %s\n", e.message);
            return CLI_EXIT_FAIL;
        }
    }
    fflush(out);
    return v.broken || v.failed ? CLI_EXIT_FAIL : CLI_EXIT_OK;
}

int cli_cmd_verify(int argc, char **argv)
{
    cli_args a;
    if (cli_parse(&verify_cmd, argc, argv, &a, stderr) < 0)
        return CLI_EXIT_USAGE;
    if (a.help) {
        cli_print_help(&verify_cmd, stdout);
        return CLI_EXIT_OK;
    }
    const char *data = cli_get(&verify_cmd, &a, "data");
    const char *room = cli_get(&verify_cmd, &a, "room");
    int all = cli_get(&verify_cmd, &a, "all") != NULL;
    if (!data) {
        fprintf(stderr, "attune: --data is required; usage: %s\n", verify_cmd.usage);
        return CLI_EXIT_USAGE;
    }
    if (room && all) {
        fprintf(stderr, "attune: --room and --all exclude each other\n");
        return CLI_EXIT_USAGE;
    }
    if (room && !srv_room_id_valid(room)) {
        fprintf(stderr, "attune: --room: 1..64 characters of A-Z a-z 0-9 _ -\n");
        return CLI_EXIT_USAGE;
    }
    cli_data_options opt = cli_data_options_of(&verify_cmd, &a);
    cli_data d;
    if (cli_data_open(&opt, &d, stderr) < 0)
        return CLI_EXIT_FAIL;
    int rc = cli_verify_rooms(d.store, room, stdout);
    cli_data_close(&d);
    return rc;
}
