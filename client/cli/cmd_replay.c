/* cmd_replay.c - `attune replay`: a room's log from the store as a
 * transcript in seq (= time) order, optionally paced like the original or
 * following a live session. Every event is folded by the stored-log fold
 * the server recovers with (log_fold.h), so --verify can print the state
 * hash the server would compute for the same log. --as ROLE shows only the
 * events that role's wire carries (the fold's per-audience counters, from
 * the core's att_event_audience), numbered as that role saw them (protocol 2: each audience counts
 * 1, 2, 3...). Protocol 1 logs fold and print as they were recorded. */
#include "commands.h"

#include <stdlib.h>
#include <string.h>
#include "args.h"
#include "attune/room.h"
#include "attune/names.h"
#include "attune/state.h"
#include "datadir.h"
#include "log_fold.h"
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
    CLI_KEK_FILE_OPTION,
    CLI_STORE_OPTION,
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

/* Events folded per read: with --follow or --speed the walk pauses between
 * reads, so the store's read transaction is never held across a wait. */
#define READ_CHUNK 256

typedef struct {
    att_room room;
    cli_transcript tr;
    att_role viewer;
    double speed;
    int64_t prev_at;     /* -1 before the first event */
    int64_t waited_seq;  /* the event whose pacing wait is done (0: none) */
    int64_t wait_ms;     /* the wait the walk paused for */
    int64_t viewer_seen; /* room.aud_seq[viewer] before the event */
    int paced;           /* signals are blocked; waits can be interrupted */
    sigset_t signals;
    int stop;
    int failed; /* a message was printed */
} replay;

/* The event's time, for pacing ("at" of the stored object). */
static int64_t event_at(const srv_stored_event *ev)
{
    json_t *obj = json_loadb(ev->payload, ev->len, 0, NULL);
    int64_t at = (int64_t)json_integer_value(json_object_get(obj, "at"));
    json_decref(obj);
    return at;
}

/* Before an event is folded: --speed waits out the gap since the previous
 * one, outside the walk (PAUSE, then the same event again). */
static srv_walk replay_before(const srv_stored_event *ev, const att_room *room, void *arg,
                              att_error *err)
{
    (void)err;
    replay *r = arg;
    r->viewer_seen = room->aud_seq[r->viewer];
    if (r->speed <= 0 || r->waited_seq == ev->seq)
        return SRV_WALK_CONTINUE;
    int64_t at = event_at(ev);
    if (r->prev_at >= 0 && at > r->prev_at) {
        r->wait_ms = (int64_t)((double)(at - r->prev_at) / r->speed);
        r->waited_seq = ev->seq;
        return SRV_WALK_PAUSE;
    }
    return SRV_WALK_CONTINUE;
}

/* After it was folded: print it when the viewer's wire carried it. */
static srv_walk replay_after(const srv_stored_event *ev, json_t *object, const att_room *room,
                             void *arg, att_error *err)
{
    (void)err;
    replay *r = arg;
    r->prev_at = (int64_t)json_integer_value(json_object_get(object, "at"));
    /* The fold counts each audience's events (att_event_audience): the
     * viewer's counter moved exactly when the viewer may see this one. */
    if (room->aud_seq[r->viewer] == r->viewer_seen)
        return SRV_WALK_CONTINUE;
    /* the seq this viewer's wire carried: the fold numbers each audience;
     * protocol 1 sent everyone the room's seqs (with gaps for partners) */
    int created = ev->type && strcmp(ev->type, "room_created") == 0;
    int64_t shown = r->tr.legacy || created ? ev->seq : room->aud_seq[r->viewer];
    if (cli_transcript_event(&r->tr, shown, object, stdout) < 0) {
        fprintf(stderr, "attune: cannot write the transcript\n");
        r->failed = 1;
        return SRV_WALK_STOP;
    }
    return SRV_WALK_CONTINUE;
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

    cli_data_options opt = cli_data_options_of(&replay_cmd, &a);
    opt.want_catalog = 1;
    cli_data d;
    if (cli_data_open(&opt, &d, stderr) < 0)
        return CLI_EXIT_FAIL;
    int rc = CLI_EXIT_FAIL;
    att_error e = {0};
    srv_store_room meta;
    replay *rp = calloc(1, sizeof *rp); /* att_room is large: keep it off the stack */
    if (!rp) {
        fprintf(stderr, "attune: out of memory\n");
        goto out;
    }
    if (srv_store_get_room(d.store, room_id, &meta, &e) < 0) {
        if (e.code == ATT_ERR_NOT_FOUND)
            fprintf(stderr, "attune: no room '%s' in %s\n", room_id, cli_data_where(&d));
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

    srv_log_source src = {.store = d.store};
    srv_fold_hooks hooks = {
        .before = replay_before, .after = replay_after, .arg = rp, .with_object = 1};
    int failed = 0;
    while (!rp->stop && !failed) {
        int64_t from = rp->room.seq;
        srv_walk how = srv_log_fold(&src, &rp->room, -1, READ_CHUNK, &hooks, &e);
        fflush(stdout);
        if (how == SRV_WALK_FAILED) {
            fprintf(stderr, "attune: the log does not fold at seq %lld: %s\n",
                    (long long)rp->room.seq + 1, e.message);
            failed = 1;
        } else if (rp->failed) {
            failed = 1;
        } else if (how == SRV_WALK_PAUSE) {
            if (cli_wait_signal(&rp->signals, rp->wait_ms))
                rp->stop = 1;
        } else if (rp->room.seq - from < READ_CHUNK) {
            if (!follow || rp->room.status == ATT_STATUS_ENDED)
                break;
            if (cli_wait_signal(&rp->signals, poll_ms))
                rp->stop = 1;
        }
    }
    if (!failed) {
        if (cli_transcript_summary(&rp->tr, stdout) < 0)
            failed = 1;
        printf("-- %lld events, %s\n", (long long)rp->room.aud_seq[viewer], status_name(&rp->room));
        if (verify) {
            char hex[65];
            if (att_state_hash(&rp->room, hex, &e) < 0) {
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
    cli_data_close(&d);
    return rc;
}
