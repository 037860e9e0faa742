/* cmd_replay.c - `attune replay`: a room's log from the store as a
 * transcript in seq (= time) order, optionally paced like the original or
 * following a live session. Every event is folded with att_room_apply (the
 * server's own fold), so --verify can print the state hash the server
 * would compute for the same log. --as ROLE shows only the events that
 * role's wire carries (the core's att_event_visible_to), numbered as that
 * role saw them (protocol 2: each audience counts 1, 2, 3...). Protocol 1
 * logs fold and print as they were recorded. */
#include "commands.h"

#include <stdlib.h>
#include <string.h>
#include "args.h"
#include "attune/room.h"
#include "attune/names.h"
#include "datadir.h"
#include "term.h"
#include "transcript.h"

static const cli_option options[] = {
    {"data", "DIR", "the server's data directory [required]"},
    {"room", "ID", "the room to replay [required]"},
    {"speed", "X", "replay with the original timing divided by X; 0 = no delay [0]"},
    {"follow", NULL, "keep polling the store for new events until the session ends (or Ctrl-C)"},
    {"verify", NULL, "print the final state hash (SHA-256 of the canonical state)"},
    {"as", "ROLE",
     "show only what ROLE may see, numbered as ROLE saw it (partners do not see the other's "
     "private line, suspicions or notes) [therapist]"},
    {"color", NULL, "always use ANSI colours"},
    {"no-color", NULL, "never use ANSI colours (default: only when stdout is a terminal)"},
    {"poll-ms", "MS", "--follow: how often to look for new events [250]"},
    {"protocol-dir", "DIR", "protocol data: exercises/ and vocab/ [built in]"},
};
static const cli_command replay_cmd = {
    "attune replay --data DIR --room ID [--speed X] [--follow] [--no-color] [--verify]",
    "Prints a session from the store as a transcript in time order: seq, time since\n"
    "the room was created, who, and what (joins, consents, the safety check-in, turns\n"
    "with their inputs, controls, pauses, repair attempts and replies, the detector's\n"
    "suspicions and how they were decided, ruptures and their repairs; private\n"
    "messages, check-in answers and notes marked private), then a summary line.\n"
    "Each event is folded with the server's own code; a log that does not fold is\n"
    "reported (exit 1).",
    options,
    (int)(sizeof options / sizeof options[0]),
    0,
    0};

#define READ_CHUNK 256

typedef struct {
    json_t *items[READ_CHUNK]; /* owned parsed payloads */
    int64_t seqs[READ_CHUNK];
    int n;
    int bad; /* a payload was not JSON */
    int64_t bad_seq;
} chunk;

static int collect(int64_t seq, const char *payload, size_t len, void *arg)
{
    chunk *c = arg;
    json_t *obj = json_loadb(payload, len, JSON_REJECT_DUPLICATES, NULL);
    if (!obj) {
        c->bad = 1;
        c->bad_seq = seq;
        return 1;
    }
    c->items[c->n] = obj;
    c->seqs[c->n] = seq;
    c->n++;
    return 0;
}

static void chunk_clear(chunk *c)
{
    for (int i = 0; i < c->n; i++)
        json_decref(c->items[i]);
    c->n = 0;
}

typedef struct {
    att_room room;
    cli_transcript tr;
    att_role viewer;
    double speed;
    int64_t prev_at; /* -1 before the first event */
    int paced;       /* signals are blocked; waits can be interrupted */
    sigset_t signals;
    int stop;
} replay;

/* Folds and prints one event. Returns 0, or -1 on a corrupt log or output failure. */
static int replay_one(replay *r, int64_t seq, json_t *obj)
{
    att_event ev;
    att_error e = {0};
    if (att_event_from_json(obj, r->room.script, &ev, &e) < 0) {
        fprintf(stderr, "attune: seq %lld is not a valid event: %s\n", (long long)seq, e.message);
        return -1;
    }
    ev.seq = seq;
    if (r->speed > 0 && r->prev_at >= 0 && ev.at > r->prev_at) {
        double delay = (double)(ev.at - r->prev_at) / r->speed;
        if (cli_wait_signal(&r->signals, (int64_t)delay)) {
            r->stop = 1;
            return 0;
        }
    }
    r->prev_at = ev.at;
    if (att_room_apply(&r->room, &ev, &e) < 0) {
        fprintf(stderr, "attune: the log does not fold at seq %lld: %s\n", (long long)seq,
                e.message);
        return -1;
    }
    /* the seq this viewer's wire carried: the fold numbers each audience;
     * protocol 1 sent everyone the room's seqs (with gaps for partners) */
    int64_t shown =
        r->tr.legacy || ev.type == ATT_EV_ROOM_CREATED ? seq : r->room.aud_seq[r->viewer];
    if (att_event_visible_to(&ev, r->viewer) &&
        cli_transcript_event(&r->tr, shown, obj, stdout) < 0) {
        fprintf(stderr, "attune: cannot write the transcript\n");
        return -1;
    }
    return 0;
}

static const char *status_name(const att_room *room)
{
    switch (room->status) {
    case ATT_STATUS_WAITING_CONSENT:
        return "waiting for consent";
    case ATT_STATUS_CHECKING_IN:
        return room->checkin_hold ? "checking in (held for the therapist)" : "checking in";
    case ATT_STATUS_ACTIVE:
        return "active";
    case ATT_STATUS_PAUSED:
        return "paused";
    case ATT_STATUS_ENDED:
        return room->end_reason == ATT_END_THERAPIST ? "ended by the therapist"
                                                     : "ended (completed)";
    }
    return "?";
}

int cli_cmd_replay(int argc, char **argv)
{
    cli_args a;
    if (cli_parse(&replay_cmd, argc, argv, &a, stderr) < 0)
        return CLI_EXIT_USAGE;
    if (a.help) {
        cli_print_help(&replay_cmd, stdout);
        return CLI_EXIT_OK;
    }
    const char *data = cli_get(&replay_cmd, &a, "data");
    const char *room_id = cli_get(&replay_cmd, &a, "room");
    const char *speed_text = cli_get(&replay_cmd, &a, "speed");
    const char *as = cli_get(&replay_cmd, &a, "as");
    const char *poll_text = cli_get(&replay_cmd, &a, "poll-ms");
    int follow = cli_get(&replay_cmd, &a, "follow") != NULL;
    int verify = cli_get(&replay_cmd, &a, "verify") != NULL;
    int force_on = cli_get(&replay_cmd, &a, "color") != NULL;
    int force_off = cli_get(&replay_cmd, &a, "no-color") != NULL;
    if (!data || !room_id) {
        fprintf(stderr, "attune: --data and --room are required; usage: %s\n", replay_cmd.usage);
        return CLI_EXIT_USAGE;
    }
    if (force_on && force_off) {
        fprintf(stderr, "attune: --color and --no-color exclude each other\n");
        return CLI_EXIT_USAGE;
    }
    double speed = 0;
    if (speed_text && cli_parse_double("speed", speed_text, 0, 1e6, &speed, stderr) < 0)
        return CLI_EXIT_USAGE;
    int64_t poll_ms = 250;
    if (poll_text && cli_parse_int64("poll-ms", poll_text, 10, 60000, &poll_ms, stderr) < 0)
        return CLI_EXIT_USAGE;
    att_role viewer = ATT_ROLE_THERAPIST;
    if (as) {
        viewer = att_role_from_name(as);
        if (viewer < ATT_ROLE_PARTNER_A || viewer > ATT_ROLE_OBSERVER) {
            fprintf(stderr, "attune: --as must be partner_a, partner_b, therapist or observer\n");
            return CLI_EXIT_USAGE;
        }
    }
    if (!srv_room_id_valid(room_id)) {
        fprintf(stderr, "attune: --room: 1..64 characters of A-Z a-z 0-9 _ -\n");
        return CLI_EXIT_USAGE;
    }

    cli_data d;
    if (cli_data_open(data, 0, 0, NULL, 1, cli_get(&replay_cmd, &a, "protocol-dir"), &d, stderr) <
        0)
        return CLI_EXIT_FAIL;
    int rc = CLI_EXIT_FAIL;
    att_error e = {0};
    srv_store_room meta;
    chunk *c = calloc(1, sizeof *c);
    replay *rp = calloc(1, sizeof *rp); /* att_room is large: keep it off the stack */
    if (!c || !rp) {
        fprintf(stderr, "attune: out of memory\n");
        goto out;
    }
    if (srv_store_get_room(d.store, room_id, &meta, &e) < 0) {
        if (e.code == ATT_ERR_NOT_FOUND)
            fprintf(stderr, "attune: no room '%s' in %s\n", room_id, data);
        else
            fprintf(stderr, "attune: %s\n", e.message);
        goto out;
    }
    rp->prev_at = -1;
    rp->viewer = viewer;
    rp->speed = speed;
    const att_script *script = att_catalog_script(d.catalog, meta.exercise);
    if (!script) {
        fprintf(stderr, "attune: room %s uses exercise '%s', which the catalog does not have\n",
                room_id, meta.exercise);
        goto out;
    }
    if (att_room_init(&rp->room, d.catalog, script, room_id, NULL, &e) < 0) {
        fprintf(stderr, "attune: %s\n", e.message);
        goto out;
    }
    cli_transcript_init(&rp->tr, script->json, att_catalog_vocab_json(d.catalog),
                        cli_use_color(force_on    ? 1
                                      : force_off ? 0
                                                  : -1));
    rp->tr.safety = att_catalog_safety_json(d.catalog);
    if (follow || rp->speed > 0) {
        cli_block_stop_signals(&rp->signals);
        rp->paced = 1;
    }

    int failed = 0;
    while (!rp->stop && !failed) {
        c->n = 0;
        c->bad = 0;
        int got =
            srv_store_read_events(d.store, room_id, rp->room.seq, -1, READ_CHUNK, collect, c, &e);
        if (got < 0) {
            fprintf(stderr, "attune: %s\n", e.message);
            failed = 1;
        }
        for (int i = 0; i < c->n && !failed && !rp->stop; i++)
            if (replay_one(rp, c->seqs[i], c->items[i]) < 0)
                failed = 1;
        int n = c->n;
        chunk_clear(c);
        if (c->bad && !failed) {
            fprintf(stderr, "attune: seq %lld is not JSON\n", (long long)c->bad_seq);
            failed = 1;
        }
        fflush(stdout);
        if (failed || n == READ_CHUNK)
            continue;
        if (!follow || rp->room.status == ATT_STATUS_ENDED)
            break;
        if (cli_wait_signal(&rp->signals, poll_ms))
            rp->stop = 1;
    }
    if (!failed) {
        if (cli_transcript_summary(&rp->tr, stdout) < 0)
            failed = 1;
        printf("-- %lld events, %s\n", (long long)rp->room.aud_seq[viewer], status_name(&rp->room));
        if (verify) {
            char hex[65];
            if (att_room_state_hash(&rp->room, hex, &e) < 0) {
                fprintf(stderr, "attune: %s\n", e.message);
                failed = 1;
            } else {
                printf("state hash %s seq %lld\n", hex, (long long)rp->room.seq);
            }
        }
        if (fflush(stdout) != 0)
            failed = 1;
    }
    rc = failed ? CLI_EXIT_FAIL : CLI_EXIT_OK;
out:
    if (rp)
        cli_transcript_free(&rp->tr);
    free(rp);
    free(c);
    cli_data_close(&d);
    return rc;
}
