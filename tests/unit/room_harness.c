#include "room_harness.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static att_catalog *shared_catalog;

const att_catalog *harness_catalog(void)
{
    if (!shared_catalog) {
        att_error err = {0};
        if (att_catalog_load_dir(ATTUNE_PROTOCOL_DIR, &shared_catalog, &err) != 0) {
            fprintf(stderr, "cannot load catalog: %s\n", err.message);
            exit(2);
        }
    }
    return shared_catalog;
}

void harness_catalog_free(void)
{
    att_catalog_free(shared_catalog);
    shared_catalog = NULL;
}

static void record(harness *h, att_event *evs, int n)
{
    json_array_clear(h->last_events);
    for (int i = 0; i < n; i++) {
        /* Fold what the store would hold, as every stored log is folded
         * (att_room_apply_stored): the JSON text, not the struct. */
        char *text = att_event_encode_stored(&evs[i], h->room.script, NULL);
        if (!text) {
            fprintf(stderr, "encode failed\n");
            exit(2);
        }
        json_t *stored = NULL;
        att_error err = {0};
        if (!text ||
            att_room_apply_stored(&h->room, evs[i].seq, text, strlen(text), &stored, &err) != 0) {
            fprintf(stderr, "event %d does not fold: %s\n", i, err.message);
            exit(2);
        }
        free(text);
        json_array_append(h->last_events, stored);
        json_array_append_new(
            h->log, json_pack("{s:I, s:o}", "seq", (json_int_t)evs[i].seq, "event", stored));
    }
    h->last_n = n;
}

void harness_init(harness *h, const char *script_id)
{
    harness_init_with(h, harness_catalog(), script_id, NULL);
}

void harness_init_with(harness *h, const att_catalog *cat, const char *script_id,
                       const att_room_config *config)
{
    memset(h, 0, sizeof *h);
    h->cat = cat;
    const att_script *s = att_catalog_script(h->cat, script_id);
    if (!s) {
        fprintf(stderr, "no script %s\n", script_id);
        exit(2);
    }
    att_error err = {0};
    if (att_room_init(&h->room, h->cat, s, "room-test", config, &err) != 0) {
        fprintf(stderr, "init: %s\n", err.message);
        exit(2);
    }
    h->log = json_array();
    h->last_events = json_array();
    h->now = 1000000;
    att_event ev;
    att_room_created_event(&h->room, h->now, ATT_ROLE_PARTNER_A, &ev);
    record(h, &ev, 1);
}

void harness_free(harness *h)
{
    json_decref(h->log);
    json_decref(h->last_events);
}

int harness_cmd(harness *h, att_role role, const char *json_text)
{
    att_msg msg;
    memset(&h->last_err, 0, sizeof h->last_err);
    h->now += 1000;
    int rc = att_msg_decode(json_text, strlen(json_text), &msg, &h->last_err);
    if (rc == 0) {
        att_event evs[ATT_MAX_EVENTS_PER_COMMAND];
        int n = 0;
        rc = att_engine_decide(&h->room, role, &msg, h->now, evs, &n, &h->last_err);
        if (rc == 0)
            record(h, evs, n);
    }
    att_msg_release(&msg);
    if (rc != 0) {
        h->last_n = 0;
        json_array_clear(h->last_events);
    }
    return rc == 0 ? 0 : (int)h->last_err.code;
}

int harness_cmdf(harness *h, att_role role, const char *fmt, ...)
{
    char buf[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return harness_cmd(h, role, buf);
}

int harness_join(harness *h, att_role role)
{
    att_event evs[ATT_MAX_EVENTS_PER_COMMAND];
    int n = 0;
    h->now += 1000;
    if (att_engine_decide_join(&h->room, role, h->now, evs, &n) != 0)
        return -1;
    record(h, evs, n);
    return 0;
}

int harness_leave_reason(harness *h, att_role role, att_left_reason reason)
{
    att_event evs[ATT_MAX_EVENTS_PER_COMMAND];
    int n = 0;
    h->now += 1000;
    if (att_engine_decide_leave(&h->room, role, reason, h->now, evs, &n) != 0)
        return -1;
    record(h, evs, n);
    return 0;
}

int harness_leave_at(harness *h, att_role role, int64_t at)
{
    att_event evs[ATT_MAX_EVENTS_PER_COMMAND];
    int n = 0;
    h->now += 1000;
    if (att_engine_decide_leave(&h->room, role, ATT_LEFT_CLOSED, at, evs, &n) != 0)
        return -1;
    record(h, evs, n);
    return 0;
}

int harness_reconnected(harness *h, att_role role, int times, int64_t gap_ms)
{
    att_event evs[ATT_MAX_EVENTS_PER_COMMAND];
    int n = 0;
    h->now += 1000;
    if (att_engine_decide_reconnected(&h->room, role, h->now, times, gap_ms, evs, &n) != 0)
        return -1;
    record(h, evs, n);
    return 0;
}

int harness_leave(harness *h, att_role role)
{
    return harness_leave_reason(h, role, ATT_LEFT_CLOSED);
}

int harness_replaced(harness *h, att_role role)
{
    att_event evs[ATT_MAX_EVENTS_PER_COMMAND];
    int n = 0;
    h->now += 1000;
    if (att_engine_decide_replaced(&h->room, role, h->now, evs, &n) != 0)
        return -1;
    record(h, evs, n);
    return 0;
}

int harness_tick(harness *h, int64_t ms)
{
    return harness_tick_composing(h, ms, 0);
}

int harness_tick_composing(harness *h, int64_t ms, int64_t composing_at)
{
    att_event evs[ATT_MAX_EVENTS_PER_COMMAND];
    h->now += ms;
    int n = att_detector_tick(&h->room, h->now, composing_at, evs);
    if (n > 0)
        record(h, evs, n);
    else
        h->last_n = 0;
    return n;
}

void harness_start_consented(harness *h)
{
    harness_join(h, ATT_ROLE_THERAPIST);
    harness_join(h, ATT_ROLE_PARTNER_A);
    harness_join(h, ATT_ROLE_PARTNER_B);
    harness_cmd(h, ATT_ROLE_PARTNER_A, "{\"type\":\"consent\",\"accept\":true}");
    harness_cmd(h, ATT_ROLE_PARTNER_B, "{\"type\":\"consent\",\"accept\":true}");
}

int harness_checkin(harness *h, att_role role, const char *answer)
{
    return harness_cmdf(h, role, "{\"type\":\"checkin\",\"answers\":{\"safe_to_talk\":\"%s\"}}",
                        answer);
}

void harness_start(harness *h)
{
    harness_start_consented(h);
    harness_checkin(h, ATT_ROLE_PARTNER_A, "yes");
    harness_checkin(h, ATT_ROLE_PARTNER_B, "yes");
    if (h->room.status != ATT_STATUS_ACTIVE) {
        fprintf(stderr, "harness_start: the room is not active\n");
        exit(2);
    }
}

int64_t harness_visible_count(harness *h, att_role viewer)
{
    int64_t n = 0;
    size_t i;
    json_t *entry;
    json_array_foreach(h->log, i, entry)
    {
        att_event ev;
        att_error err = {0};
        if (att_event_from_json(json_object_get(entry, "event"), h->room.script, &ev, &err) != 0) {
            fprintf(stderr, "harness_visible_count: %s\n", err.message);
            exit(2);
        }
        n += att_event_visible_to(&ev, viewer);
    }
    return n;
}

char *harness_state_text(harness *h, att_role viewer)
{
    att_buf b = {0};
    if (att_state_write(&h->room, viewer, 1, &b) != 0) {
        fprintf(stderr, "harness_state_text: out of memory\n");
        exit(2);
    }
    return b.data;
}

json_t *harness_state(const att_room *room, att_role viewer, int with_type)
{
    att_buf b = {0};
    json_t *j = NULL;
    if (att_state_write(room, viewer, with_type, &b) == 0)
        j = json_loadb(b.data, b.len, JSON_REJECT_DUPLICATES, NULL);
    att_buf_free(&b);
    if (!j) {
        fprintf(stderr, "harness_state: the state writer's text does not parse\n");
        exit(2);
    }
    return j;
}

json_t *harness_last_event(harness *h, const char *type)
{
    json_t *found = NULL;
    size_t i;
    json_t *e;
    json_array_foreach(h->last_events, i, e)
    {
        const char *t = json_string_value(json_object_get(e, "type"));
        if (t && strcmp(t, type) == 0)
            found = e;
    }
    return found;
}

json_t *harness_valid_input(harness *h, int reject)
{
    const att_step *st = &h->room.script->steps[h->room.step];
    json_t *in = json_object();
    for (size_t i = 0; i < st->n_inputs; i++) {
        const att_input_desc *d = &st->inputs[i];
        switch (d->kind) {
        case ATT_INPUT_TEXT:
            json_object_set_new(in, d->name, json_string("I felt far away from you."));
            break;
        case ATT_INPUT_EMOTION_REACTIVE:
        case ATT_INPUT_EMOTION_PRIMARY:
        case ATT_INPUT_NEED:
            json_object_set_new(
                in, d->name,
                json_pack("{s:s, s:s}", "id", d->vocab->entries[0].id, "text", "in my own words"));
            break;
        case ATT_INPUT_RATING:
            json_object_set_new(in, d->name, json_integer(7));
            break;
        case ATT_INPUT_CHOICE: {
            const char *pick = d->options[0].id;
            if (st->branch_input && strcmp(st->branch_input, d->name) == 0) {
                for (size_t k = 0; k < d->n_options; k++) {
                    int is_branch = strcmp(d->options[k].id, st->branch_equals) == 0;
                    if (is_branch == reject) {
                        pick = d->options[k].id;
                        break;
                    }
                }
            }
            json_object_set_new(in, d->name, json_string(pick));
            break;
        }
        }
    }
    return in;
}

int harness_turn_input(harness *h, att_role role, json_t *input)
{
    const att_step *st = &h->room.script->steps[h->room.step];
    json_t *msg = json_pack("{s:s, s:s, s:o}", "type", "turn", "step", st->id, "input", input);
    char *text = json_dumps(msg, JSON_COMPACT);
    json_decref(msg);
    int rc = harness_cmd(h, role, text);
    free(text);
    return rc;
}

int harness_turn(harness *h, int reject)
{
    return harness_turn_input(h, att_room_actor(&h->room), harness_valid_input(h, reject));
}

int harness_refold(harness *h, char hash[65])
{
    att_room r;
    att_error err = {0};
    if (att_room_init(&r, h->cat, h->room.script, h->room.room_id, &h->room.config, &err))
        return -1;
    size_t i;
    json_t *entry;
    json_array_foreach(h->log, i, entry)
    {
        att_event ev;
        if (att_event_from_json(json_object_get(entry, "event"), r.script, &ev, &err))
            return -1;
        ev.seq = json_integer_value(json_object_get(entry, "seq"));
        if (att_room_apply(&r, &ev, &err))
            return -1;
    }
    return att_state_hash(&r, hash, &err);
}

const att_suspicion *harness_suspicion(harness *h, int id)
{
    for (int i = 0; i < h->room.n_suspicions; i++)
        if (h->room.suspicions[i].open.id == id)
            return &h->room.suspicions[i];
    return NULL;
}

const att_suspicion *harness_last_suspicion(harness *h)
{
    return h->room.n_suspicions ? &h->room.suspicions[h->room.n_suspicions - 1] : NULL;
}

const att_rupture *harness_last_rupture(harness *h)
{
    return h->room.n_ruptures ? &h->room.ruptures[h->room.n_ruptures - 1] : NULL;
}

const att_rupture *harness_rupture(harness *h, int id)
{
    for (int i = 0; i < h->room.n_ruptures; i++)
        if (h->room.ruptures[i].open.id == id)
            return &h->room.ruptures[i];
    return NULL;
}
