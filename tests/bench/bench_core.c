/* bench_core.c - how fast the pure core folds events and applies commands,
 * on one core. Prints figures; asserts nothing about speed.
 *
 * A realistic enactment session (consent, the safety check-in, both rounds
 * with a rejected reflection, a pause request, the private line both ways, a
 * therapist mark repaired by an accepted repair attempt, therapist notes) is
 * scripted once as JSON commands, then:
 *   fold:      its event log, decoded to att_event once, folded into fresh
 *              rooms again and again (the fold alone);
 *   recovery:  the same log as stored JSON text: parse, decode, fold (what
 *              a restart and the terminal replay do);
 *   apply:     its commands, decoded once, decided and folded into fresh
 *              rooms again and again (what the server does per message,
 *              minus the network and the store);
 *   full path: decode the frame + decide + fold + encode every event to JSON
 *              text (everything the server does on the service thread). */
#define _GNU_SOURCE
#include "attune/catalog.h"
#include "clock.h"
#include "attune/msg.h"
#include "attune/room.h"
#include "attune/state.h"
#include "attune/engine.h"

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void)
{
    return (double)srv_mono_ns() / 1e9;
}

typedef struct {
    att_role role;
    char *text;
} scripted_cmd;

#define MAX_CMDS 256

/* Builds the session's commands by driving a room, so every command is valid. */
static int build_session(const att_catalog *cat, scripted_cmd *cmds, int *n_cmds)
{
    const att_script *s = att_catalog_script(cat, "enactment");
    att_room room;
    att_error err;
    if (!s || att_room_init(&room, cat, s, "bench", NULL, &err))
        return -1;
    att_event ev;
    att_room_created_event(&room, 1, ATT_ROLE_PARTNER_A, &ev);
    att_room_apply(&room, &ev, &err);
    int n = 0;
#define ADD(r, t) (cmds[n].role = (r), cmds[n].text = strdup(t), n++)
    ADD(ATT_ROLE_PARTNER_A, "{\"type\":\"consent\",\"accept\":true}");
    ADD(ATT_ROLE_PARTNER_B, "{\"type\":\"consent\",\"accept\":true}");
    ADD(ATT_ROLE_PARTNER_A, "{\"type\":\"checkin\",\"answers\":{\"safe_to_talk\":\"yes\"}}");
    ADD(ATT_ROLE_PARTNER_B, "{\"type\":\"checkin\",\"answers\":{\"safe_to_talk\":\"yes\"}}");
    int rejected = 0, step_guard = 0;
    while (n < MAX_CMDS - 8 && step_guard++ < 200) {
        /* apply what we have so far to learn the next step */
        att_room_init(&room, cat, s, "bench", NULL, &err);
        att_room_created_event(&room, 1, ATT_ROLE_PARTNER_A, &ev);
        att_room_apply(&room, &ev, &err);
        for (int i = 0; i < n; i++) {
            att_msg m;
            att_event out[ATT_MAX_EVENTS_PER_COMMAND];
            int k = 0;
            if (att_msg_decode(cmds[i].text, strlen(cmds[i].text), &m, &err) == 0 &&
                att_engine_decide(&room, cmds[i].role, &m, 2 + i, out, &k, &err) == 0)
                for (int j = 0; j < k; j++)
                    att_room_apply(&room, &out[j], &err);
            att_msg_release(&m);
        }
        if (room.status == ATT_STATUS_ENDED)
            break;
        if (room.status == ATT_STATUS_PAUSED) {
            ADD(ATT_ROLE_THERAPIST, "{\"type\":\"control\",\"action\":\"resume\"}");
            continue;
        }
        const att_step *st = &s->steps[room.step];
        json_t *in = json_object();
        for (size_t i = 0; i < st->n_inputs; i++) {
            const att_input_desc *d = &st->inputs[i];
            if (d->kind == ATT_INPUT_TEXT)
                json_object_set_new(in, d->name,
                                    json_string("When you went quiet I felt far away and I "
                                                "started pushing harder to reach you."));
            else if (d->kind == ATT_INPUT_RATING)
                json_object_set_new(in, d->name, json_integer(6));
            else if (d->kind == ATT_INPUT_CHOICE)
                json_object_set_new(in, d->name,
                                    json_string(st->branch_input && rejected < 2
                                                    ? st->branch_equals
                                                    : d->options[0].id));
            else
                json_object_set_new(in, d->name,
                                    json_pack("{s:s, s:s}", "id", d->vocab->entries[1].id, "text",
                                              "a tight knot in my chest"));
        }
        if (st->branch_input) {
            rejected++;
            if (rejected > 2)
                rejected = 0;
        }
        json_t *msg = json_pack("{s:s, s:s, s:o}", "type", "turn", "step", st->id, "input", in);
        char *text = json_dumps(msg, JSON_COMPACT);
        json_decref(msg);
        cmds[n].role = att_room_actor(&room);
        cmds[n].text = text;
        n++;
        if (room.step == 2 && room.round == 0 && n < 24) {
            ADD(ATT_ROLE_PARTNER_B, "{\"type\":\"pause_request\",\"note\":\"I need a minute\"}");
            ADD(ATT_ROLE_PARTNER_B, "{\"type\":\"private_message\",\"text\":\"This is hard "
                                    "for me to say in front of them\"}");
            ADD(ATT_ROLE_THERAPIST, "{\"type\":\"private_message\",\"to\":\"partner_b\","
                                    "\"text\":\"Thank you for telling me.\"}");
            ADD(ATT_ROLE_THERAPIST, "{\"type\":\"rupture_mark\",\"kind\":\"withdrawal\","
                                    "\"marker\":\"minimal_response\",\"who\":\"partner_b\","
                                    "\"with\":\"partner_a\"}");
            ADD(ATT_ROLE_PARTNER_A, "{\"type\":\"repair_attempt\",\"text\":\"Let me try again\"}");
            ADD(ATT_ROLE_PARTNER_B, "{\"type\":\"repair_accept\",\"attempt_id\":1}");
            ADD(ATT_ROLE_THERAPIST, "{\"type\":\"note\",\"text\":\"B flooded at the primary "
                                    "emotion; A reached out\"}");
        }
    }
#undef ADD
    *n_cmds = n;
    return room.status == ATT_STATUS_ENDED ? 0 : -1;
}

int main(int argc, char **argv)
{
    double seconds = argc > 1 ? atof(argv[1]) : 2.0;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(0, &set);
    int pinned = sched_setaffinity(0, sizeof set, &set) == 0;

    att_catalog *cat;
    att_error err;
    if (att_catalog_load_dir(ATTUNE_PROTOCOL_DIR, &cat, &err)) {
        fprintf(stderr, "catalog: %s\n", err.message);
        return 1;
    }
    const att_script *s = att_catalog_script(cat, "enactment");
    scripted_cmd cmds[MAX_CMDS];
    int n_cmds = 0;
    if (build_session(cat, cmds, &n_cmds)) {
        fprintf(stderr, "could not script a session\n");
        return 1;
    }
    att_msg *msgs = calloc((size_t)n_cmds, sizeof *msgs);
    for (int i = 0; i < n_cmds; i++)
        if (att_msg_decode(cmds[i].text, strlen(cmds[i].text), &msgs[i], &err)) {
            fprintf(stderr, "decode: %s\n", err.message);
            return 1;
        }

    /* One run to produce the event log, kept as decoded structs. */
    static att_room room;
    att_event *log = calloc(4096, sizeof *log);
    int n_log = 0;
    att_room_init(&room, cat, s, "bench", NULL, &err);
    att_room_created_event(&room, 1, ATT_ROLE_PARTNER_A, &log[n_log]);
    att_room_apply(&room, &log[n_log++], &err);
    for (int i = 0; i < n_cmds; i++) {
        int k = 0;
        if (att_engine_decide(&room, cmds[i].role, &msgs[i], 2 + i, &log[n_log], &k, &err)) {
            fprintf(stderr, "command %d refused: %s\n", i, err.message);
            return 1;
        }
        for (int j = 0; j < k; j++)
            att_room_apply(&room, &log[n_log + j], &err);
        n_log += k;
    }
    printf("session: %d commands -> %d events (partner_a sees %lld), %d ruptures, %d "
           "suspicions, status %s\n",
           n_cmds, n_log, (long long)room.aud_seq[ATT_ROLE_PARTNER_A], room.n_ruptures,
           room.n_suspicions, room.status == ATT_STATUS_ENDED ? "ended" : "not ended");

    /* fold */
    long folded = 0;
    double t0 = now_s(), t;
    do {
        for (int rep = 0; rep < 100; rep++) {
            att_room_init(&room, cat, s, "bench", NULL, &err);
            for (int i = 0; i < n_log; i++)
                if (att_room_apply(&room, &log[i], &err)) {
                    fprintf(stderr, "fold: %s\n", err.message);
                    return 1;
                }
            folded += n_log;
        }
        t = now_s() - t0;
    } while (t < seconds);
    printf("fold:      %.0f events/s (%ld events in %.2f s)\n", folded / t, folded, t);

    /* recovery: parse the stored JSON text of each event, decode, fold */
    char **texts = calloc((size_t)n_log, sizeof *texts);
    for (int i = 0; i < n_log; i++) {
        json_t *ej = att_event_to_json(&log[i], s);
        texts[i] = att_json_dump(ej, NULL);
        json_decref(ej);
    }
    long recovered = 0;
    t0 = now_s();
    do {
        for (int rep = 0; rep < 20; rep++) {
            att_room_init(&room, cat, s, "bench", NULL, &err);
            for (int i = 0; i < n_log; i++) {
                json_error_t jerr;
                json_t *ej = json_loads(texts[i], 0, &jerr);
                att_event ev;
                if (!ej || att_event_from_json(ej, s, &ev, &err)) {
                    fprintf(stderr, "recovery decode failed\n");
                    return 1;
                }
                ev.seq = i + 1;
                if (att_room_apply(&room, &ev, &err)) {
                    fprintf(stderr, "recovery: %s\n", err.message);
                    return 1;
                }
                json_decref(ej);
            }
            recovered += n_log;
        }
        t = now_s() - t0;
    } while (t < seconds);
    printf("recovery:  %.0f events/s (parse stored JSON + decode + fold)\n", recovered / t);
    for (int i = 0; i < n_log; i++)
        free(texts[i]);
    free(texts);

    /* the state a member receives after every change: the writer, and its
     * parsed jansson view re-dumped (what a caller that needs a json_t pays) */
    long states = 0;
    t0 = now_s();
    do {
        for (int rep = 0; rep < 1000; rep++) {
            att_buf fresh = {0};
            att_state_write(&room, ATT_ROLE_PARTNER_A, 1, &fresh);
            json_t *j = json_loadb(fresh.data, fresh.len, 0, NULL);
            att_buf_free(&fresh);
            char *text = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
            free(text);
            json_decref(j);
            states++;
        }
        t = now_s() - t0;
    } while (t < seconds / 2);
    double jansson_rate = states / t;
    att_buf sbuf = {0};
    states = 0;
    t0 = now_s();
    do {
        for (int rep = 0; rep < 1000; rep++) {
            sbuf.len = 0;
            att_state_write(&room, ATT_ROLE_PARTNER_A, 1, &sbuf);
            states++;
        }
        t = now_s() - t0;
    } while (t < seconds / 2);
    printf("state:     %.0f states/s written (%zu bytes each), %.0f/s parsed and re-dumped\n",
           states / t, sbuf.len, jansson_rate);
    att_buf_free(&sbuf);

    /* decide + fold */
    long applied = 0;
    att_event out[ATT_MAX_EVENTS_PER_COMMAND];
    t0 = now_s();
    do {
        for (int rep = 0; rep < 100; rep++) {
            att_room_init(&room, cat, s, "bench", NULL, &err);
            att_room_created_event(&room, 1, ATT_ROLE_PARTNER_A, &out[0]);
            att_room_apply(&room, &out[0], &err);
            for (int i = 0; i < n_cmds; i++) {
                int k = 0;
                if (att_engine_decide(&room, cmds[i].role, &msgs[i], 2 + i, out, &k, &err)) {
                    fprintf(stderr, "apply: %s\n", err.message);
                    return 1;
                }
                for (int j = 0; j < k; j++)
                    att_room_apply(&room, &out[j], &err);
            }
            applied += n_cmds;
        }
        t = now_s() - t0;
    } while (t < seconds);
    printf("apply:     %.0f commands/s (decide + fold; %ld commands in %.2f s)\n", applied / t,
           applied, t);

    /* decode + decide + fold + encode */
    long full = 0;
    size_t bytes = 0;
    t0 = now_s();
    do {
        for (int rep = 0; rep < 20; rep++) {
            att_room_init(&room, cat, s, "bench", NULL, &err);
            att_room_created_event(&room, 1, ATT_ROLE_PARTNER_A, &out[0]);
            att_room_apply(&room, &out[0], &err);
            for (int i = 0; i < n_cmds; i++) {
                att_msg m;
                int k = 0;
                if (att_msg_decode(cmds[i].text, strlen(cmds[i].text), &m, &err) ||
                    att_engine_decide(&room, cmds[i].role, &m, 2 + i, out, &k, &err)) {
                    fprintf(stderr, "full: %s\n", err.message);
                    return 1;
                }
                for (int j = 0; j < k; j++) {
                    att_room_apply(&room, &out[j], &err);
                    json_t *ej = att_event_to_json(&out[j], s);
                    json_t *frame = att_msg_event(out[j].seq, ej);
                    size_t len = 0;
                    char *text = att_json_dump(frame, &len);
                    bytes += len;
                    free(text);
                    json_decref(frame);
                    json_decref(ej);
                }
                att_msg_release(&m);
            }
            full += n_cmds;
        }
        t = now_s() - t0;
    } while (t < seconds);
    printf("full path: %.0f commands/s (decode + decide + fold + encode; %.1f MB of frames)\n",
           full / t, bytes / 1e6);
    printf("targets:   fold >= 2,000,000 events/s, apply >= 500,000 commands/s; %s\n",
           pinned ? "pinned to CPU 0" : "not pinned");

    for (int i = 0; i < n_cmds; i++) {
        att_msg_release(&msgs[i]);
        free(cmds[i].text);
    }
    free(msgs);
    free(log);
    att_catalog_free(cat);
    return 0;
}
