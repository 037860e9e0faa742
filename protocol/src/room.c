/* room.c - the fold: the room's state as a fold over its events (room.h),
 * and the small readers of that state the engine and the detector share.
 * Everything here is deterministic: the same events give the same state. */
#include "room_internal.h"

#include <assert.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int att_room_init(att_room *room, const att_catalog *cat, const att_script *script,
                  const char *room_id, const att_room_config *config, att_error *err)
{
    if (!cat || !script || !room_id)
        return att_fail(err, ATT_ERR_INTERNAL, "room: missing catalog, script or id");
    if (strlen(room_id) == 0 || strlen(room_id) > ATT_ROOM_ID_BYTES)
        return att_fail(err, ATT_ERR_BAD_MESSAGE, "room: id must be 1..%d bytes",
                        ATT_ROOM_ID_BYTES);
    /* Only the head: the rupture and suspicion arrays are read up to their
     * counts and each entry is cleared when it is added, so an idle room
     * never touches (and the OS never backs) the ~58 KB tail. */
    memset(room, 0, offsetof(att_room, ruptures));
    room->catalog = cat;
    room->script = script;
    room->config.silence_ms = ATT_DEFAULT_SILENCE_MS;
    room->config.disconnect_grace_ms = ATT_DEFAULT_DISCONNECT_GRACE_MS;
    if (config && config->silence_ms > 0)
        room->config.silence_ms = config->silence_ms;
    if (config && config->disconnect_grace_ms > 0)
        room->config.disconnect_grace_ms = config->disconnect_grace_ms;
    strcpy(room->room_id, room_id);
    snprintf(room->language, sizeof room->language, "%s",
             script->language ? script->language : "en");
    room->status = ATT_STATUS_WAITING_CONSENT;
    room->speaker = ATT_ROLE_PARTNER_A;
    room->paused_by = ATT_ROLE_NONE;
    room->last_rating[ATT_ROLE_PARTNER_A] = room->last_rating[ATT_ROLE_PARTNER_B] = -1;
    room->silence_open_step = -1;
    room->next_rupture_id = 1;
    room->next_suspicion_id = 1;
    room->next_attempt_id = 1;
    room->newest_command = -1;
    return 0;
}

void att_room_created_event(const att_room *room, int64_t now, att_role first_speaker,
                            att_event *out)
{
    memset(out, 0, sizeof *out);
    out->type = ATT_EV_ROOM_CREATED;
    out->seq = room->seq + 1;
    out->at = now;
    out->by = ATT_ROLE_SYSTEM;
    out->exercise = room->script->id;
    out->first_speaker = att_role_is_partner(first_speaker) ? first_speaker : ATT_ROLE_PARTNER_A;
    out->step = -1;
    out->checkin = 1; /* every protocol 2 session opens with the safety check-in */
    out->language = room->script->language; /* catalog-owned: outlives the event */
}

void att_room_copy(att_room *dst, const att_room *src)
{
    assert(src->n_ruptures >= 0 && src->n_ruptures <= ATT_MAX_RUPTURES);
    assert(src->n_suspicions >= 0 && src->n_suspicions <= ATT_MAX_SUSPICIONS);
    size_t used = offsetof(att_room, ruptures) + (size_t)src->n_ruptures * sizeof(att_rupture);
    memcpy(dst, src, used);
    memcpy(dst->suspicions, src->suspicions, (size_t)src->n_suspicions * sizeof(att_suspicion));
    assert(src->n_commands >= 0 && src->n_commands <= ATT_MAX_COMMANDS);
    memcpy(dst->commands, src->commands, (size_t)src->n_commands * sizeof(att_command));
}

const att_command *att_room_find_command(const att_room *room, att_role role, const char *id)
{
    if (!id)
        return NULL;
    for (int i = 0; i < room->n_commands; i++) {
        const att_command *c = &room->commands[i];
        if (c->role == (signed char)role && strcmp(c->id, id) == 0)
            return c;
    }
    return NULL;
}

/* After an event is folded: a command id enters the table (the oldest
 * leaves once it is full), and the events that follow it within its
 * command move the seq its sender's ack names. */
static void note_command(att_room *room, const att_event *ev)
{
    if (ev->command_id && (int)ev->by >= 0 && (int)ev->by < ATT_AUDIENCES) {
        int slot = room->n_commands < ATT_MAX_COMMANDS
                       ? room->n_commands++
                       : (room->newest_command + 1) % ATT_MAX_COMMANDS;
        att_command *c = &room->commands[slot];
        memset(c, 0, sizeof *c);
        c->seq = ev->seq;
        c->last_seq = ev->seq + (ev->command_events > 1 ? ev->command_events - 1 : 0);
        c->ack_seq = room->aud_seq[ev->by];
        c->role = (signed char)ev->by;
        snprintf(c->id, sizeof c->id, "%s", ev->command_id);
        room->newest_command = slot;
        return;
    }
    if (room->newest_command < 0)
        return;
    att_command *c = &room->commands[room->newest_command];
    if (ev->seq <= c->last_seq && att_event_visible_to(ev, (att_role)c->role))
        c->ack_seq = room->aud_seq[c->role];
}

att_role att_room_resolve_actor(const att_room *room, att_actor actor)
{
    switch (actor) {
    case ATT_ACTOR_SPEAKER:
        return room->speaker;
    case ATT_ACTOR_LISTENER:
        return att_other_partner(room->speaker);
    case ATT_ACTOR_PARTNER_A:
        return ATT_ROLE_PARTNER_A;
    case ATT_ACTOR_PARTNER_B:
        return ATT_ROLE_PARTNER_B;
    case ATT_ACTOR_THERAPIST:
        return ATT_ROLE_THERAPIST;
    }
    return ATT_ROLE_NONE;
}

att_role att_room_actor(const att_room *room)
{
    if (room->status != ATT_STATUS_ACTIVE)
        return ATT_ROLE_NONE;
    /* the fold keeps step an index of the script's while the room is not ended */
    assert(room->step >= 0 && (size_t)room->step < room->script->n_steps);
    return att_room_resolve_actor(room, room->script->steps[room->step].actor);
}

const att_rupture *att_room_find_rupture(const att_room *room, int id)
{
    for (int i = 0; i < room->n_ruptures; i++)
        if (room->ruptures[i].open.id == id)
            return &room->ruptures[i];
    return NULL;
}

const att_suspicion *att_room_find_suspicion(const att_room *room, int id)
{
    for (int i = 0; i < room->n_suspicions; i++)
        if (room->suspicions[i].open.id == id)
            return &room->suspicions[i];
    return NULL;
}

int att_step_rating_value(const att_step *step, json_t *input)
{
    for (size_t i = 0; i < step->n_inputs; i++) {
        if (step->inputs[i].kind != ATT_INPUT_RATING)
            continue;
        json_t *v = json_object_get(input, step->inputs[i].name);
        return json_is_integer(v) ? (int)json_integer_value(v) : -1;
    }
    return -1;
}

int att_step_branch_taken(const att_step *step, json_t *input)
{
    if (!step->branch_input)
        return 0;
    const char *v = json_string_value(json_object_get(input, step->branch_input));
    return v && strcmp(v, step->branch_equals) == 0;
}

/* --- the fold ----------------------------------------------------------- */

static void begin_turn(att_room *room, const att_event *ev)
{
    room->step_started_at = ev->at;
    room->step_started_seq = ev->seq;
}

static void enter_step(att_room *room, const att_event *ev, int step)
{
    room->step = step;
    room->silence_open_step = -1;
    begin_turn(room, ev);
}

static void next_round_or_end(att_room *room, const att_event *ev)
{
    if (room->round + 1 < room->script->rounds) {
        room->round++;
        if (room->script->swap_each_round)
            room->speaker = att_other_partner(room->speaker);
        room->rejections_in_row = 0;
        enter_step(room, ev, 0);
    } else {
        room->status = ATT_STATUS_ENDED;
        room->end_reason = ATT_END_COMPLETED;
        room->ended_at = ev->at;
        room->paused_by = ATT_ROLE_NONE;
        room->silence_open_step = -1;
    }
}

/* Moves past the current step: to `target` (a branch) or the next step. */
static void move_forward(att_room *room, const att_event *ev, int target)
{
    if (target >= 0)
        enter_step(room, ev, target);
    else if ((size_t)room->step + 1 < room->script->n_steps)
        enter_step(room, ev, room->step + 1);
    else
        next_round_or_end(room, ev);
}

/* The step to go back to, with its round; -1 at the very first step. */
int att_room_back_target(const att_room *room)
{
    if (room->step > 0)
        return room->step - 1;
    if (room->round > 0)
        return (int)room->script->n_steps - 1;
    return -1;
}

static int corrupt(att_error *err, const att_event *ev, const char *why)
{
    return att_fail(err, ATT_ERR_INTERNAL, "fold: event %lld (%s) %s", (long long)ev->seq,
                    att_event_type_name(ev->type), why);
}

static att_rupture *add_rupture(att_room *room, const att_event *ev, const att_rupture_open *open)
{
    if (open->id >= room->next_rupture_id)
        room->next_rupture_id = open->id + 1;
    if (room->n_ruptures >= ATT_MAX_RUPTURES) {
        room->ruptures_dropped++;
        return NULL;
    }
    att_rupture *r = &room->ruptures[room->n_ruptures++];
    memset(r, 0, sizeof *r);
    r->open = *open;
    r->status = ATT_RS_OPEN;
    r->opened_seq = ev->seq;
    r->opened_at = ev->at;
    r->repair_by = ATT_ROLE_NONE;
    return r;
}

static att_suspicion *add_suspicion(att_room *room, const att_event *ev)
{
    if (ev->rupture.id >= room->next_suspicion_id)
        room->next_suspicion_id = ev->rupture.id + 1;
    if (room->n_suspicions >= ATT_MAX_SUSPICIONS) {
        room->suspicions_dropped++;
        return NULL;
    }
    att_suspicion *s = &room->suspicions[room->n_suspicions++];
    memset(s, 0, sizeof *s);
    s->open = ev->rupture;
    s->status = ATT_SS_SUSPECTED;
    s->raised_seq = ev->seq;
    s->raised_at = ev->at;
    return s;
}

/* The suspicion a confirmed rupture came from (its rupture_id), or NULL. */
static att_suspicion *suspicion_confirmed_as(att_room *room, int rupture_id)
{
    for (int i = 0; i < room->n_suspicions; i++)
        if (room->suspicions[i].status == ATT_SS_CONFIRMED &&
            room->suspicions[i].rupture_id == rupture_id)
            return &room->suspicions[i];
    return NULL;
}

static void record_attempt(att_room *room, const att_event *ev)
{
    if (room->n_attempts == ATT_MAX_ATTEMPTS) {
        memmove(&room->attempts[0], &room->attempts[1],
                sizeof room->attempts[0] * (ATT_MAX_ATTEMPTS - 1));
        room->n_attempts--;
    }
    att_attempt *a = &room->attempts[room->n_attempts++];
    memset(a, 0, sizeof *a);
    a->id = room->next_attempt_id++;
    a->seq = ev->seq;
    a->by = (signed char)ev->by;
    a->rupture_id = ev->rupture_id;
}

/* An attempt by its id (protocol 2) or, in a legacy log, its seq. */
static att_attempt *attempt_of(att_room *room, const att_event *ev)
{
    for (int i = 0; i < room->n_attempts; i++) {
        att_attempt *a = &room->attempts[i];
        if (ev->attempt_id > 0 ? a->id == ev->attempt_id : a->seq == ev->attempt_seq)
            return a;
    }
    return NULL;
}

/* Where the session goes when nothing holds it: the check-in until it is
 * done, then the exercise. */
static att_status running_status(const att_room *room)
{
    if (!room->consent[ATT_ROLE_PARTNER_A] || !room->consent[ATT_ROLE_PARTNER_B])
        return ATT_STATUS_WAITING_CONSENT;
    return room->checkin && !room->checkin_done ? ATT_STATUS_CHECKING_IN : ATT_STATUS_ACTIVE;
}

static int apply_turn(att_room *room, const att_event *ev, att_error *err)
{
    if (room->status != ATT_STATUS_ACTIVE)
        return corrupt(err, ev, "turn while not active");
    if (ev->step != room->step || ev->round != room->round)
        return corrupt(err, ev, "turn for another step");
    assert(room->step >= 0 && (size_t)room->step < room->script->n_steps);
    const att_step *step = &room->script->steps[room->step];
    int taken = att_step_branch_taken(step, ev->input);
    if (step->tag == ATT_TAG_REFLECTION_CHECK) {
        if (taken) {
            room->rejections_in_row++;
            room->last_rejection_seq = ev->seq;
        } else {
            room->rejections_in_row = 0;
        }
    }
    if (step->tag == ATT_TAG_CONNECTION_RATING && att_role_is_partner(ev->by)) {
        int r = att_step_rating_value(step, ev->input);
        if (r >= 0)
            room->last_rating[ev->by] = r;
    }
    move_forward(room, ev, taken ? step->branch_goto : -1);
    return 0;
}

static int apply_control(att_room *room, const att_event *ev, att_error *err)
{
    switch (ev->action) {
    case ATT_CTL_ADVANCE:
        move_forward(room, ev, -1);
        break;
    case ATT_CTL_BACK: {
        int target = att_room_back_target(room);
        if (target < 0)
            return corrupt(err, ev, "back at the first step");
        if (room->step == 0) {
            room->round--;
            if (room->script->swap_each_round)
                room->speaker = att_other_partner(room->speaker);
        }
        room->rejections_in_row = 0;
        enter_step(room, ev, target);
        break;
    }
    case ATT_CTL_PAUSE:
        room->status = ATT_STATUS_PAUSED;
        room->paused_by = ATT_ROLE_THERAPIST;
        break;
    case ATT_CTL_RESUME:
        room->status = running_status(room);
        room->paused_by = ATT_ROLE_NONE;
        begin_turn(room, ev);
        break;
    case ATT_CTL_PROCEED:
        if (room->status != ATT_STATUS_CHECKING_IN)
            return corrupt(err, ev, "proceed without a check-in");
        room->checkin_done = 1;
        room->status = ATT_STATUS_ACTIVE;
        begin_turn(room, ev);
        break;
    case ATT_CTL_SWAP:
        room->speaker = att_other_partner(room->speaker);
        begin_turn(room, ev);
        break;
    case ATT_CTL_END:
        room->status = ATT_STATUS_ENDED;
        room->end_reason = ATT_END_THERAPIST;
        room->ended_at = ev->at;
        room->paused_by = ATT_ROLE_NONE;
        break;
    case ATT_CTL__COUNT:
        return corrupt(err, ev, "unknown action");
    }
    return 0;
}

static int apply_repair(att_room *room, const att_event *ev, att_error *err)
{
    att_rupture *r = (att_rupture *)att_room_find_rupture(room, ev->rupture_id);
    if (!r)
        return room->ruptures_dropped ? 0 : corrupt(err, ev, "repairs an unknown rupture");
    if (r->status != ATT_RS_OPEN)
        return corrupt(err, ev, "repairs a rupture that is not open");
    r->status = ATT_RS_REPAIRED;
    r->repair_seq = ev->seq;
    r->repair_at = ev->at;
    r->repair_by = ev->by;
    r->repair_how = ev->how;
    r->repair_attempt_seq = ev->attempt_seq;
    r->repair_attempt_id = ev->attempt_id;
    if (!r->repair_attempt_id && ev->attempt_seq) {
        const att_attempt *a = attempt_of(room, ev);
        r->repair_attempt_id = a ? a->id : 0;
    }
    r->repair_strategy[0] = '\0';
    if (ev->strategy) {
        strncpy(r->repair_strategy, ev->strategy, sizeof r->repair_strategy - 1);
        r->repair_strategy[sizeof r->repair_strategy - 1] = '\0';
    }
    return 0;
}

int att_room_apply(att_room *room, const att_event *ev, att_error *err)
{
    if (ev->seq != room->seq + 1)
        return att_fail(err, ATT_ERR_INTERNAL, "fold: expected seq %lld, got %lld",
                        (long long)room->seq + 1, (long long)ev->seq);
    if (!room->created && ev->type != ATT_EV_ROOM_CREATED)
        return corrupt(err, ev, "before room_created");
    if (room->status == ATT_STATUS_ENDED &&
        (ev->type == ATT_EV_TURN || ev->type == ATT_EV_CONTROL || ev->type == ATT_EV_CONSENTED ||
         ev->type == ATT_EV_CONSENT_WITHDRAWN || ev->type == ATT_EV_CHECKIN_ANSWERED ||
         ev->type == ATT_EV_CHECKIN_COMPLETED))
        return corrupt(err, ev, "after the end");
    att_role by = ev->by;
    switch (ev->type) {
    case ATT_EV_ROOM_CREATED:
        if (room->created)
            return corrupt(err, ev, "room created twice");
        if (!ev->exercise || strcmp(ev->exercise, room->script->id) != 0)
            return corrupt(err, ev, "names another exercise");
        room->created = 1;
        room->speaker = ev->first_speaker;
        room->checkin = ev->checkin;
        if (ev->language && ev->language != room->language)
            snprintf(room->language, sizeof room->language, "%s", ev->language);
        begin_turn(room, ev);
        break;
    case ATT_EV_JOINED:
        if (by == ATT_ROLE_OBSERVER)
            room->observers++;
        else if ((int)by >= 0 && by <= ATT_ROLE_THERAPIST)
            room->present[by] = 1;
        else
            return corrupt(err, ev, "joined by an unknown role");
        if (att_role_is_partner(by))
            room->away_since[by] = room->away_seq[by] = room->away_raised[by] = 0;
        if (by == att_room_actor(room))
            begin_turn(room, ev); /* the turn resumes: the silence clock restarts */
        break;
    case ATT_EV_LEFT:
        if (by == ATT_ROLE_OBSERVER) {
            if (room->observers > 0)
                room->observers--;
        } else if ((int)by >= 0 && by <= ATT_ROLE_THERAPIST) {
            room->present[by] = 0;
            if (att_role_is_partner(by) && ev->left_reason != ATT_LEFT_SHUTDOWN) {
                room->away_since[by] = ev->at;
                room->away_seq[by] = ev->seq;
                room->away_raised[by] = 0;
            }
        } else {
            return corrupt(err, ev, "left by an unknown role");
        }
        break;
    case ATT_EV_CONSENTED:
        if (!att_role_is_partner(by))
            return corrupt(err, ev, "consent by a non-partner");
        room->consent[by] = 1;
        room->consent_withdrawn[by] = 0;
        if (room->status == ATT_STATUS_WAITING_CONSENT && room->consent[ATT_ROLE_PARTNER_A] &&
            room->consent[ATT_ROLE_PARTNER_B]) {
            room->status = running_status(room);
            begin_turn(room, ev);
        }
        break;
    case ATT_EV_CONSENT_WITHDRAWN:
        if (!att_role_is_partner(by))
            return corrupt(err, ev, "consent withdrawn by a non-partner");
        room->consent[by] = 0;
        room->consent_withdrawn[by] = 1;
        if (room->status != ATT_STATUS_PAUSED) {
            room->status = ATT_STATUS_PAUSED;
            room->paused_by = by;
        }
        break;
    case ATT_EV_CHECKIN_ANSWERED:
        if (!att_role_is_partner(by) || !room->checkin || room->checkin_seq[by])
            return corrupt(err, ev, "a check-in answer that cannot follow");
        room->checkin_seq[by] = ev->seq;
        room->checkin_held[by] = ev->hold;
        room->checkin_hold |= ev->hold;
        break;
    case ATT_EV_CHECKIN_COMPLETED:
        room->checkin_done = 1;
        if (room->status == ATT_STATUS_CHECKING_IN) {
            room->status = ATT_STATUS_ACTIVE;
            begin_turn(room, ev);
        }
        break;
    case ATT_EV_TURN: {
        int rc = apply_turn(room, ev, err);
        if (rc)
            return rc;
        break;
    }
    case ATT_EV_CONTROL: {
        int rc = apply_control(room, ev, err);
        if (rc)
            return rc;
        break;
    }
    case ATT_EV_PAUSE_REQUESTED:
        if (room->status == ATT_STATUS_ACTIVE || room->status == ATT_STATUS_WAITING_CONSENT ||
            room->status == ATT_STATUS_CHECKING_IN) {
            room->status = ATT_STATUS_PAUSED;
            room->paused_by = by;
        }
        break;
    case ATT_EV_REPAIR_ATTEMPT:
        record_attempt(room, ev);
        break;
    case ATT_EV_REPAIR_ACCEPTED: {
        att_attempt *a = attempt_of(room, ev);
        if (a)
            a->accepted = 1;
        break;
    }
    case ATT_EV_REPAIR_REPLIED: {
        att_attempt *a = attempt_of(room, ev);
        if (a && ev->reply == ATT_REPLY_ACKNOWLEDGED)
            a->acknowledged = 1;
        else if (a)
            a->moment = 1;
        break;
    }
    case ATT_EV_RUPTURE_OPENED: {
        if (att_room_find_rupture(room, ev->rupture.id))
            return corrupt(err, ev, "reuses a rupture id");
        att_rupture *r = add_rupture(room, ev, &ev->rupture);
        att_suspicion *s = r ? suspicion_confirmed_as(room, r->open.id) : NULL;
        if (s) { /* the staff's view keeps where it came from */
            r->confirmed = 1;
            r->suspicion_id = s->open.id;
            memcpy(r->open.evidence, s->open.evidence, sizeof r->open.evidence);
            r->open.n_evidence = s->open.n_evidence;
            r->open.blame_class = s->open.blame_class;
        }
        /* A protocol 1 detector rupture stops the silence clock for this
         * step; a confirmed suspicion did when it was raised, and may be
         * confirmed after the partner moved on to a step of its own. */
        if (r && !s && strcmp(r->open.marker, "silence") == 0)
            room->silence_open_step = room->step;
        break;
    }
    case ATT_EV_RUPTURE_SUSPECTED: {
        if (att_room_find_suspicion(room, ev->rupture.id))
            return corrupt(err, ev, "reuses a suspicion id");
        att_suspicion *s = add_suspicion(room, ev);
        if (s && strcmp(s->open.marker, "silence") == 0)
            room->silence_open_step = room->step;
        if (strcmp(ev->rupture.marker, "disconnect") == 0 && att_role_is_partner(ev->rupture.who))
            room->away_raised[ev->rupture.who] = 1;
        break;
    }
    case ATT_EV_RUPTURE_CONFIRMED: {
        att_suspicion *s = (att_suspicion *)att_room_find_suspicion(room, ev->suspicion_id);
        if (s && s->status != ATT_SS_SUSPECTED)
            return corrupt(err, ev, "confirms a suspicion that is not suspected");
        if (!s && !room->suspicions_dropped && !ev->legacy)
            return corrupt(err, ev, "confirms an unknown suspicion");
        if (s) {
            s->status = ATT_SS_CONFIRMED;
            s->rupture_id = ev->rupture_id;
            s->decided_at = ev->at;
        }
        if (ev->legacy) { /* protocol 1: the suspicion became the rupture, same id */
            if (att_room_find_rupture(room, ev->rupture.id))
                return corrupt(err, ev, "reuses a rupture id");
            att_rupture *r = add_rupture(room, ev, &ev->rupture);
            if (r) {
                r->confirmed = 1;
                r->suspicion_id = ev->suspicion_id;
                if (s)
                    r->opened_seq = s->raised_seq, r->opened_at = s->raised_at;
            }
        }
        break;
    }
    case ATT_EV_RUPTURE_DISMISSED: {
        att_suspicion *s = (att_suspicion *)att_room_find_suspicion(room, ev->suspicion_id);
        if (s && s->status != ATT_SS_SUSPECTED)
            return corrupt(err, ev, "dismisses a suspicion that is not suspected");
        if (s) {
            s->status = ATT_SS_DISMISSED;
            s->decided_at = ev->at;
        }
        break;
    }
    case ATT_EV_RUPTURE_REPAIRED: {
        int rc = apply_repair(room, ev, err);
        if (rc)
            return rc;
        break;
    }
    case ATT_EV_PRIVATE_MESSAGE:
    case ATT_EV_THERAPIST_REQUESTED:
        if (att_role_is_partner(by)) {
            room->private_from_partners++;
            room->private_last_seq = ev->seq;
        }
        break;
    case ATT_EV_NOTE:
    case ATT_EV_REPLACED:
    case ATT_EV_RECONNECTED: /* the log still shows them present: nothing changes */
        break;
    case ATT_EV__COUNT:
        return corrupt(err, ev, "unknown type");
    }
    room->seq = ev->seq;
    unsigned audience = att_event_audience(ev);
    for (int a = 0; a < ATT_AUDIENCES; a++)
        if (audience & (1u << a))
            room->aud_seq[a]++;
    /* The therapist sees every event (event.h), so their numbering is the
     * room's; the fold's slots never run past their arrays. */
    assert(room->aud_seq[ATT_ROLE_THERAPIST] == room->seq);
    assert(room->n_ruptures <= ATT_MAX_RUPTURES && room->n_suspicions <= ATT_MAX_SUSPICIONS);
    assert(room->n_attempts <= ATT_MAX_ATTEMPTS);
    note_command(room, ev);
    return 0;
}

int att_room_apply_stored(att_room *room, int64_t seq, const char *payload, size_t len,
                          json_t **object_out, att_error *err)
{
    json_error_t jerr;
    json_t *obj = json_loadb(payload, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!obj)
        return att_fail(err, ATT_ERR_INTERNAL, "event %lld is not JSON", (long long)seq);
    att_event ev;
    int rc = att_event_from_json(obj, room->script, &ev, err);
    if (rc == 0) {
        ev.seq = seq;
        rc = att_room_apply(room, &ev, err);
    }
    if (rc == 0 && object_out)
        *object_out = obj;
    else
        json_decref(obj);
    return rc;
}
