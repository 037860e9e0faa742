/* engine.c - the exercise engine: checks a command against the room's state
 * and the script, and turns it into its primary events in an outbox; then
 * the detector, as a second pass over those events, appends its own (the
 * one call is in each att_engine_decide* below). Never modifies the room. */
#include "attune/engine.h"
#include "outbox.h"
#include "room_internal.h"

#include <assert.h>
#include <string.h>

static int full(att_error *err)
{
    return att_fail(err, ATT_ERR_INTERNAL, "too many events for one command");
}

/* --- input validation ----------------------------------------------------- */

static int text_ok(const char *s, size_t max)
{
    size_t n = s ? strlen(s) : 0;
    return n > 0 && n <= max;
}

static int check_vocab_value(const att_input_desc *d, json_t *v, att_error *err)
{
    if (!json_is_object(v) || json_object_size(v) == 0)
        return att_fail(err, ATT_ERR_INVALID_INPUT,
                        "input '%s' must be an object with an id and/or text", d->name);
    const char *key;
    json_t *m;
    json_object_foreach(v, key, m)
    {
        if (strcmp(key, "id") == 0) {
            const char *id = json_string_value(m);
            if (!id || !att_vocab_find(d->vocab, id))
                return att_fail(err, ATT_ERR_INVALID_INPUT,
                                "input '%s': not an entry of the '%s' vocabulary", d->name,
                                d->vocab ? d->vocab->id : "?");
        } else if (strcmp(key, "text") == 0) {
            if (!text_ok(json_string_value(m), d->max_length))
                return att_fail(err, ATT_ERR_INVALID_INPUT, "input '%s': text must be 1..%zu bytes",
                                d->name, d->max_length);
        } else {
            return att_fail(err, ATT_ERR_INVALID_INPUT, "input '%s': unknown member", d->name);
        }
    }
    return 0;
}

static int check_value(const att_input_desc *d, json_t *v, att_error *err)
{
    switch (d->kind) {
    case ATT_INPUT_TEXT:
        if (!text_ok(json_string_value(v), d->max_length))
            return att_fail(err, ATT_ERR_INVALID_INPUT, "input '%s' must be text of 1..%zu bytes",
                            d->name, d->max_length);
        return 0;
    case ATT_INPUT_EMOTION_REACTIVE:
    case ATT_INPUT_EMOTION_PRIMARY:
    case ATT_INPUT_NEED:
        return check_vocab_value(d, v, err);
    case ATT_INPUT_RATING:
        if (!json_is_integer(v) || json_integer_value(v) < d->min || json_integer_value(v) > d->max)
            return att_fail(err, ATT_ERR_INVALID_INPUT, "input '%s' must be an integer %d..%d",
                            d->name, d->min, d->max);
        return 0;
    case ATT_INPUT_CHOICE: {
        const char *s = json_string_value(v);
        for (size_t i = 0; s && i < d->n_options; i++)
            if (strcmp(s, d->options[i].id) == 0)
                return 0;
        return att_fail(err, ATT_ERR_INVALID_INPUT, "input '%s' must be one of its options",
                        d->name);
    }
    }
    return att_fail(err, ATT_ERR_INVALID_INPUT, "input '%s' has an unknown kind", d->name);
}

/* Checks a turn's input against the step's input descriptions. */
static int check_input(const att_step *step, json_t *input, att_error *err)
{
    if (!json_is_object(input))
        return att_fail(err, ATT_ERR_INVALID_INPUT, "input must be an object");
    const char *key;
    json_t *v;
    json_object_foreach(input, key, v)
    {
        size_t i = 0;
        while (i < step->n_inputs && strcmp(step->inputs[i].name, key) != 0)
            i++;
        if (i == step->n_inputs)
            /* The name is the participant's: never echoed (PROTOCOL.md 5). */
            return att_fail(err, ATT_ERR_INVALID_INPUT, "step '%s' takes no input of that name",
                            step->id);
    }
    for (size_t i = 0; i < step->n_inputs; i++) {
        const att_input_desc *d = &step->inputs[i];
        json_t *val = json_object_get(input, d->name);
        if (!val) {
            if (d->required)
                return att_fail(err, ATT_ERR_INVALID_INPUT, "input '%s' is required", d->name);
            continue;
        }
        int rc = check_value(d, val, err);
        if (rc)
            return rc;
    }
    return 0;
}

/* --- commands ------------------------------------------------------------- */

static int need_role(att_role role, int allowed, att_error *err, const char *what)
{
    if (!allowed)
        return att_fail(err, ATT_ERR_FORBIDDEN, "%s may not %s", att_role_name(role), what);
    return 0;
}

static int decide_turn(att_outbox *out, att_role role, const att_msg *cmd, att_error *err)
{
    const att_room *room = out->room;
    int rc;
    if (room->status == ATT_STATUS_WAITING_CONSENT)
        return att_fail(err, ATT_ERR_CONSENT_REQUIRED, "both partners must consent first");
    if (room->status == ATT_STATUS_PAUSED)
        return att_fail(err, ATT_ERR_SESSION_PAUSED, "the session is paused");
    if (room->status == ATT_STATUS_CHECKING_IN)
        return att_fail(err, ATT_ERR_NOT_YOUR_TURN, "the check-in comes first");
    /* att_engine_decide refused an ended room; the three others are refused above */
    assert(room->status == ATT_STATUS_ACTIVE);
    assert(room->step >= 0 && (size_t)room->step < room->script->n_steps);
    const att_step *step = &room->script->steps[room->step];
    if (att_room_actor(room) != role)
        return att_fail(err, ATT_ERR_NOT_YOUR_TURN, "it is %s's turn",
                        att_role_name(att_room_actor(room)));
    if (!cmd->step || strcmp(cmd->step, step->id) != 0)
        return att_fail(err, ATT_ERR_INVALID_STEP, "the current step is '%s'", step->id);
    rc = check_input(step, cmd->input, err);
    if (rc)
        return rc;
    att_event *ev = att_outbox_add(out, ATT_EV_TURN, role);
    ev->step = room->step;
    ev->round = room->round;
    ev->input = cmd->input;
    return 0;
}

static int decide_control(att_outbox *out, const att_msg *cmd, att_error *err)
{
    const att_room *room = out->room;
    int both = room->consent[ATT_ROLE_PARTNER_A] && room->consent[ATT_ROLE_PARTNER_B];
    att_control a = cmd->action;
    int steering = a == ATT_CTL_ADVANCE || a == ATT_CTL_BACK || a == ATT_CTL_SWAP;
    if (!both && a != ATT_CTL_PAUSE && a != ATT_CTL_RESUME && a != ATT_CTL_END)
        return att_fail(err, ATT_ERR_CONSENT_REQUIRED, "both partners must consent first");
    if (a == ATT_CTL_PROCEED && room->status != ATT_STATUS_CHECKING_IN)
        return att_fail(err, ATT_ERR_INVALID_STEP, "no check-in is waiting");
    if (steering && room->checkin && !room->checkin_done)
        return att_fail(err, ATT_ERR_INVALID_STEP, "the check-in comes first (proceed or end)");
    if (a == ATT_CTL_BACK && att_room_back_target(room) < 0)
        return att_fail(err, ATT_ERR_INVALID_STEP, "already at the first step");
    if (a == ATT_CTL_PAUSE && room->status == ATT_STATUS_PAUSED)
        return att_fail(err, ATT_ERR_INVALID_STEP, "the session is already paused");
    if (a == ATT_CTL_RESUME && room->status != ATT_STATUS_PAUSED)
        return att_fail(err, ATT_ERR_INVALID_STEP, "the session is not paused");
    att_event *ev = att_outbox_add(out, ATT_EV_CONTROL, ATT_ROLE_THERAPIST);
    ev->action = a;
    return 0;
}

static int decide_consent(att_outbox *out, att_role role, int withdraw, att_error *err)
{
    const att_room *room = out->room;
    assert(att_role_is_partner(role)); /* need_role: consent is a partner's */
    if (!withdraw) {
        if (!room->consent[role]) { /* a repeated consent records nothing */
            att_event *ev = att_outbox_add(out, ATT_EV_CONSENTED, role);
            ev->notice_version = att_catalog_consent_version(room->catalog);
            ev->notice_hash = att_catalog_consent_hash(room->catalog);
        }
        return 0;
    }
    if (!room->consent[role])
        return att_fail(err, ATT_ERR_CONSENT_REQUIRED, "you have not given consent");
    att_outbox_add(out, ATT_EV_CONSENT_WITHDRAWN, role);
    return 0;
}

static int decide_checkin(att_outbox *out, att_role role, const att_msg *cmd, att_error *err)
{
    const att_room *room = out->room;
    assert(att_role_is_partner(role)); /* need_role: the check-in is a partner's */
    int rc;
    if (!room->checkin || room->checkin_done || !room->consent[ATT_ROLE_PARTNER_A] ||
        !room->consent[ATT_ROLE_PARTNER_B])
        return att_fail(err, ATT_ERR_INVALID_STEP, "no check-in is waiting");
    if (room->checkin_seq[role])
        return att_fail(err, ATT_ERR_INVALID_STEP, "you have answered the check-in");
    int hold = 0;
    if ((rc = att_catalog_safety_check(room->catalog, cmd->answers, cmd->text, &hold, err)))
        return rc;
    att_event *ev = att_outbox_add(out, ATT_EV_CHECKIN_ANSWERED, role);
    ev->answers = cmd->answers;
    ev->text = cmd->text;
    ev->hold = hold;
    /* Both answered and nothing holds it: the joint work begins. Otherwise
     * the session waits for the therapist, and partners cannot tell why. */
    if (room->checkin_seq[att_other_partner(role)] && !hold && !room->checkin_hold)
        att_outbox_add(out, ATT_EV_CHECKIN_COMPLETED, ATT_ROLE_SYSTEM);
    return 0;
}

static int open_rupture_exists(const att_room *room, int id)
{
    const att_rupture *r = att_room_find_rupture(room, id);
    return r && r->status == ATT_RS_OPEN;
}

static int between_partners(const att_rupture *r)
{
    return att_role_is_partner(r->open.who) && att_role_is_partner(r->open.with);
}

/* The rupture an accepted attempt repairs: the one it named, if still open;
 * when it named none, the one open rupture between the two partners (none
 * when there are several). Never one that involves the therapist. */
static int attempt_target(const att_room *room, const att_attempt *a)
{
    if (a->rupture_id) {
        const att_rupture *r = att_room_find_rupture(room, a->rupture_id);
        return r && r->status == ATT_RS_OPEN && between_partners(r) ? a->rupture_id : 0;
    }
    int found = 0;
    for (int i = 0; i < room->n_ruptures; i++) {
        const att_rupture *r = &room->ruptures[i];
        if (r->status != ATT_RS_OPEN || !between_partners(r))
            continue;
        if (found)
            return 0;
        found = r->open.id;
    }
    return found;
}

static const att_attempt *find_attempt(const att_room *room, int id)
{
    for (int i = 0; i < room->n_attempts; i++)
        if (room->attempts[i].id == id)
            return &room->attempts[i];
    return NULL;
}

static int decide_repair_attempt(att_outbox *out, att_role role, const att_msg *cmd, att_error *err)
{
    const att_room *room = out->room;
    if (cmd->rupture_id) {
        const att_rupture *r = att_room_find_rupture(room, cmd->rupture_id);
        if (!r || r->status != ATT_RS_OPEN || !between_partners(r))
            return att_fail(err, ATT_ERR_NOT_FOUND, "no open rupture %d between you",
                            cmd->rupture_id);
    }
    att_event *ev = att_outbox_add(out, ATT_EV_REPAIR_ATTEMPT, role);
    ev->text = cmd->text;
    ev->rupture_id = cmd->rupture_id;
    ev->attempt_id = room->next_attempt_id;
    return 0;
}

static int decide_repair_accept(att_outbox *out, att_role role, const att_msg *cmd, att_error *err)
{
    const att_room *room = out->room;
    const att_attempt *a = find_attempt(room, cmd->attempt_id);
    if (!a || a->accepted)
        return att_fail(err, ATT_ERR_NOT_FOUND, "no open repair attempt %d", cmd->attempt_id);
    if ((att_role)a->by == role)
        return att_fail(err, ATT_ERR_FORBIDDEN, "a repair attempt is accepted by someone else");
    att_event *ev = att_outbox_add(out, ATT_EV_REPAIR_ACCEPTED, role);
    ev->attempt_id = a->id;
    int target = attempt_target(room, a);
    if (target) {
        att_event *rep = att_outbox_add(out, ATT_EV_RUPTURE_REPAIRED, role);
        rep->rupture_id = target;
        rep->how = ATT_HOW_REPAIR_ATTEMPT;
        rep->attempt_id = a->id;
    }
    return 0;
}

/* "Thank you, I need a moment" from the other partner, or the therapist's
 * acknowledgement; neither accepts the attempt in the partner's name. */
static int decide_repair_reply(att_outbox *out, att_role role, const att_msg *cmd, att_error *err)
{
    const att_room *room = out->room;
    int therapist = role == ATT_ROLE_THERAPIST;
    if (cmd->reply == ATT_REPLY_ACKNOWLEDGED && !therapist)
        return att_fail(err, ATT_ERR_FORBIDDEN, "the therapist acknowledges a repair attempt");
    if (cmd->reply == ATT_REPLY_NEED_A_MOMENT && therapist)
        return att_fail(err, ATT_ERR_FORBIDDEN, "the partner it was meant for answers it");
    const att_attempt *a = find_attempt(room, cmd->attempt_id);
    if (!a || a->accepted)
        return att_fail(err, ATT_ERR_NOT_FOUND, "no open repair attempt %d", cmd->attempt_id);
    if ((att_role)a->by == role)
        return att_fail(err, ATT_ERR_FORBIDDEN, "a repair attempt is answered by someone else");
    if (therapist ? a->acknowledged : a->moment)
        return 0; /* said already: nothing new to record */
    att_event *ev = att_outbox_add(out, ATT_EV_REPAIR_REPLIED, role);
    ev->attempt_id = a->id;
    ev->reply = cmd->reply;
    return 0;
}

static int add_note(att_outbox *out, const char *text, int rupture_id, int suspicion_id,
                    att_error *err)
{
    if (!text)
        return 0;
    att_event *n = att_outbox_add(out, ATT_EV_NOTE, ATT_ROLE_THERAPIST);
    if (!n)
        return full(err);
    n->text = text;
    n->rupture_id = rupture_id;
    n->suspicion_id = suspicion_id;
    return 0;
}

static int decide_mark(att_outbox *out, const att_msg *cmd, att_error *err)
{
    const att_room *room = out->room;
    const att_vocab *markers = att_catalog_vocab(room->catalog, "markers");
    const att_vocab_entry *m = markers ? att_vocab_find(markers, cmd->marker) : NULL;
    if (!m || !m->kind || strcmp(m->kind, att_rupture_kind_name(cmd->kind)) != 0)
        return att_fail(err, ATT_ERR_INVALID_INPUT, "marker is not a 3RS %s marker",
                        att_rupture_kind_name(cmd->kind));
    if (!att_role_is_partner(cmd->who) || cmd->with == cmd->who || cmd->with == ATT_ROLE_NONE ||
        cmd->with == ATT_ROLE_OBSERVER || cmd->with == ATT_ROLE_SYSTEM)
        return att_fail(err, ATT_ERR_INVALID_INPUT,
                        "a rupture is between a partner and someone else");
    att_event *ev = att_outbox_add(out, ATT_EV_RUPTURE_OPENED, ATT_ROLE_THERAPIST);
    att_rupture_open *r = &ev->rupture;
    r->id = att_outbox_take_rupture_id(out);
    r->kind = cmd->kind;
    strncpy(r->marker, m->id, sizeof r->marker - 1);
    r->source = ATT_SRC_THERAPIST;
    r->who = cmd->who;
    r->with = cmd->with;
    r->step = room->status == ATT_STATUS_ENDED ? -1 : room->step;
    r->round = room->round;
    return add_note(out, cmd->text, r->id, 0, err);
}

static int decide_rupture_repair(att_outbox *out, const att_msg *cmd, att_error *err)
{
    const att_room *room = out->room;
    if (!open_rupture_exists(room, cmd->rupture_id))
        return att_fail(err, ATT_ERR_NOT_FOUND, "no open rupture %d", cmd->rupture_id);
    const att_vocab *strategies = att_catalog_vocab(room->catalog, "strategies");
    const att_vocab_entry *s = strategies ? att_vocab_find(strategies, cmd->strategy) : NULL;
    if (!s)
        return att_fail(err, ATT_ERR_INVALID_INPUT, "not a resolution strategy");
    att_event *ev = att_outbox_add(out, ATT_EV_RUPTURE_REPAIRED, ATT_ROLE_THERAPIST);
    ev->rupture_id = cmd->rupture_id;
    ev->how = ATT_HOW_THERAPIST_STRATEGY;
    ev->strategy = s->id;
    return add_note(out, cmd->text, cmd->rupture_id, 0, err);
}

/* The therapist decides on a suggestion. Confirming it opens a rupture with
 * the next rupture id (so partners see ruptures numbered without gaps) and
 * without the evidence, which names room-log seqs. */
static int decide_suspicion(att_outbox *out, const att_msg *cmd, int confirm, att_error *err)
{
    const att_room *room = out->room;
    const att_suspicion *s = att_room_find_suspicion(room, cmd->suspicion_id);
    if (!s || s->status != ATT_SS_SUSPECTED)
        return att_fail(err, ATT_ERR_NOT_FOUND, "no suspected rupture %d", cmd->suspicion_id);
    att_event *ev = att_outbox_add(
        out, confirm ? ATT_EV_RUPTURE_CONFIRMED : ATT_EV_RUPTURE_DISMISSED, ATT_ROLE_THERAPIST);
    ev->suspicion_id = s->open.id;
    if (!confirm) {
        ev->text = cmd->text;
        return 0;
    }
    ev->rupture_id = att_outbox_take_rupture_id(out);
    att_event *op = att_outbox_add(out, ATT_EV_RUPTURE_OPENED, ATT_ROLE_THERAPIST);
    op->rupture = s->open;
    op->rupture.id = ev->rupture_id;
    op->rupture.n_evidence = 0;
    op->rupture.blame_class = ATT_BLAME_NONE;
    return add_note(out, cmd->text, op->rupture.id, s->open.id, err);
}

static int decide_private(att_outbox *out, att_role role, const att_msg *cmd, att_error *err)
{
    att_role to = cmd->to;
    if (att_role_is_partner(role)) {
        if (to != ATT_ROLE_NONE && to != ATT_ROLE_THERAPIST)
            return att_fail(err, ATT_ERR_INVALID_INPUT,
                            "a partner's private line goes to the therapist");
        to = ATT_ROLE_THERAPIST;
    } else if (!att_role_is_partner(to)) {
        return att_fail(err, ATT_ERR_INVALID_INPUT, "say which partner the private message is for");
    }
    att_event *ev = att_outbox_add(out, ATT_EV_PRIVATE_MESSAGE, role);
    ev->to = to;
    ev->text = cmd->text;
    return 0;
}

int att_engine_decide(const att_room *room, att_role role, const att_msg *cmd, int64_t now,
                      att_event out_events[ATT_MAX_EVENTS_PER_COMMAND], int *n_out, att_error *err)
{
    att_outbox out;
    att_outbox_init(&out, room, now, out_events);
    *n_out = 0;
    if (!room->created)
        return att_fail(err, ATT_ERR_INTERNAL, "room has no events yet");
    if (cmd->type == ATT_MSG_HELLO)
        return att_fail(err, ATT_ERR_ALREADY_AUTHENTICATED, "already authenticated");
    if (cmd->type == ATT_MSG_PING)
        return 0;
    if (role == ATT_ROLE_OBSERVER || role == ATT_ROLE_NONE || role == ATT_ROLE_SYSTEM)
        return att_fail(err, ATT_ERR_FORBIDDEN, "observers can only watch");
    int therapist = role == ATT_ROLE_THERAPIST;
    int partner = att_role_is_partner(role);
    /* After the end the therapist still reviews and may still write to a
     * partner; a partner's part is over (their link is about to end): the
     * log takes nothing more from them, not even the private line. */
    int after_end = cmd->type == ATT_MSG_NOTE || cmd->type == ATT_MSG_RUPTURE_MARK ||
                    cmd->type == ATT_MSG_RUPTURE_REPAIR || cmd->type == ATT_MSG_RUPTURE_CONFIRM ||
                    cmd->type == ATT_MSG_RUPTURE_DISMISS || cmd->type == ATT_MSG_PRIVATE_MESSAGE;
    /* (the therapist's own commands from a partner stay `forbidden`) */
    int staff_only = cmd->type == ATT_MSG_CONTROL || cmd->type == ATT_MSG_NOTE ||
                     cmd->type == ATT_MSG_RUPTURE_MARK || cmd->type == ATT_MSG_RUPTURE_REPAIR ||
                     cmd->type == ATT_MSG_RUPTURE_CONFIRM || cmd->type == ATT_MSG_RUPTURE_DISMISS;
    if (room->status == ATT_STATUS_ENDED && (partner ? !staff_only : !after_end))
        return att_fail(err, ATT_ERR_SESSION_ENDED, "the session has ended");
    /* Until both partners have consented a partner may consent (or take
     * back their own), use the private line and signal typing, nothing
     * else: nothing they write enters the shared record before the session
     * has begun. A partner who withdrew may still ask for a pause; their
     * partner, who still consents, is not held up by the withdrawal. */
    int withdrawn = partner && room->consent_withdrawn[role];
    int before_consent_ok = cmd->type == ATT_MSG_CONSENT || cmd->type == ATT_MSG_CONSENT_WITHDRAW ||
                            cmd->type == ATT_MSG_PRIVATE_MESSAGE ||
                            cmd->type == ATT_MSG_ASK_THERAPIST || cmd->type == ATT_MSG_TYPING ||
                            (cmd->type == ATT_MSG_PAUSE_REQUEST && withdrawn);
    int consented = partner && room->consent[role] &&
                    (room->consent[att_other_partner(role)] ||
                     room->consent_withdrawn[att_other_partner(role)]);
    if (partner && !staff_only && !consented && !before_consent_ok) {
        if (withdrawn)
            return att_fail(err, ATT_ERR_CONSENT_REQUIRED,
                            "you withdrew your consent; give it again to take part");
        return att_fail(err, ATT_ERR_CONSENT_REQUIRED, "both partners must consent first");
    }
    /* A partner who withdrew consent takes no further part until they give
     * it again; consent itself, a pause and the private line stay open. */
    int takes_part = cmd->type == ATT_MSG_TURN || cmd->type == ATT_MSG_CHECKIN ||
                     cmd->type == ATT_MSG_REPAIR_ATTEMPT || cmd->type == ATT_MSG_REPAIR_ACCEPT ||
                     cmd->type == ATT_MSG_REPAIR_REPLY;
    if (partner && takes_part && room->consent_withdrawn[role])
        return att_fail(err, ATT_ERR_CONSENT_REQUIRED,
                        "you withdrew your consent; give it again to take part");

    int rc = 0;
    switch (cmd->type) {
    case ATT_MSG_TYPING: /* content-free; the server notes when, nothing is recorded */
        return need_role(role, partner, err, "signal typing");
    case ATT_MSG_CONSENT:
    case ATT_MSG_CONSENT_WITHDRAW:
        if ((rc = need_role(role, partner, err, "consent for a partner")))
            return rc;
        rc = decide_consent(&out, role, cmd->type == ATT_MSG_CONSENT_WITHDRAW, err);
        break;
    case ATT_MSG_CHECKIN:
        if ((rc = need_role(role, partner, err, "answer a partner's check-in")))
            return rc;
        rc = decide_checkin(&out, role, cmd, err);
        break;
    case ATT_MSG_TURN:
        rc = decide_turn(&out, role, cmd, err);
        break;
    case ATT_MSG_CONTROL:
        if ((rc = need_role(role, therapist, err, "steer the session")))
            return rc;
        rc = decide_control(&out, cmd, err);
        break;
    case ATT_MSG_PAUSE_REQUEST: {
        /* A healthy time-out, not a rupture; the therapist may mark one. */
        if ((rc = need_role(role, partner, err, "ask for a pause (use control pause)")))
            return rc;
        att_event *ev = att_outbox_add(&out, ATT_EV_PAUSE_REQUESTED, role);
        ev->text = cmd->text;
        break;
    }
    case ATT_MSG_REPAIR_ATTEMPT:
        if ((rc = need_role(role, partner, err, "make a repair attempt")))
            return rc;
        rc = decide_repair_attempt(&out, role, cmd, err);
        break;
    case ATT_MSG_REPAIR_ACCEPT:
        if ((rc = need_role(role, partner, err,
                            "accept a repair attempt (acknowledge it with repair_reply)")))
            return rc;
        rc = decide_repair_accept(&out, role, cmd, err);
        break;
    case ATT_MSG_REPAIR_REPLY:
        rc = decide_repair_reply(&out, role, cmd, err);
        break;
    case ATT_MSG_RUPTURE_MARK:
        if ((rc = need_role(role, therapist, err, "mark a rupture")))
            return rc;
        rc = decide_mark(&out, cmd, err);
        break;
    case ATT_MSG_RUPTURE_REPAIR:
        if ((rc = need_role(role, therapist, err, "mark a repair")))
            return rc;
        rc = decide_rupture_repair(&out, cmd, err);
        break;
    case ATT_MSG_RUPTURE_CONFIRM:
    case ATT_MSG_RUPTURE_DISMISS:
        if ((rc = need_role(role, therapist, err, "review the detector's suspicions")))
            return rc;
        rc = decide_suspicion(&out, cmd, cmd->type == ATT_MSG_RUPTURE_CONFIRM, err);
        break;
    case ATT_MSG_NOTE:
        if ((rc = need_role(role, therapist, err, "write private notes")))
            return rc;
        if (cmd->rupture_id && !att_room_find_rupture(room, cmd->rupture_id))
            return att_fail(err, ATT_ERR_NOT_FOUND, "no rupture %d", cmd->rupture_id);
        if (cmd->suspicion_id && !att_room_find_suspicion(room, cmd->suspicion_id))
            return att_fail(err, ATT_ERR_NOT_FOUND, "no suspicion %d", cmd->suspicion_id);
        rc = add_note(&out, cmd->text, cmd->rupture_id, cmd->suspicion_id, err);
        break;
    case ATT_MSG_PRIVATE_MESSAGE:
        rc = decide_private(&out, role, cmd, err);
        break;
    case ATT_MSG_ASK_THERAPIST:
        if ((rc = need_role(role, partner, err, "ask for a private word with the therapist")))
            return rc;
        att_outbox_add(&out, ATT_EV_THERAPIST_REQUESTED, role);
        break;
    case ATT_MSG_HELLO:
    case ATT_MSG_PING:
    case ATT_MSG__COUNT:
        return att_fail(err, ATT_ERR_UNKNOWN_TYPE, "unknown message type");
    }
    if (rc)
        return rc;
    /* The second pass: what the detector reads in the primary events. */
    if (att_detector_after(&out))
        return full(err);
    /* The command id rides on the sender's own (first) event, with the
     * count of the command's events: the fold's command table (room.h). */
    for (int i = 0; cmd->command_id && i < out.n; i++) {
        if (out_events[i].by == role) {
            out_events[i].command_id = cmd->command_id;
            out_events[i].command_events = out.n - i;
            break;
        }
    }
    *n_out = out.n;
    return 0;
}

int att_engine_decide_join(const att_room *room, att_role role, int64_t now,
                           att_event out_events[ATT_MAX_EVENTS_PER_COMMAND], int *n_out)
{
    /* a member's role: the fold refuses a joined by anyone else */
    assert((int)role >= 0 && role <= ATT_ROLE_OBSERVER);
    att_outbox out;
    att_outbox_init(&out, room, now, out_events);
    att_outbox_add(&out, ATT_EV_JOINED, role);
    int rc = att_detector_after(&out);
    *n_out = out.n;
    return rc;
}

int att_engine_decide_leave(const att_room *room, att_role role, att_left_reason reason,
                            int64_t now, att_event out_events[ATT_MAX_EVENTS_PER_COMMAND],
                            int *n_out)
{
    assert((int)role >= 0 && role <= ATT_ROLE_OBSERVER);
    att_outbox out;
    att_outbox_init(&out, room, now, out_events);
    att_event *ev = att_outbox_add(&out, ATT_EV_LEFT, role);
    ev->left_reason = reason;
    int rc = att_detector_after(&out);
    *n_out = out.n;
    return rc;
}

int att_engine_decide_replaced(const att_room *room, att_role role, int64_t now,
                               att_event out_events[ATT_MAX_EVENTS_PER_COMMAND], int *n_out)
{
    att_outbox out;
    att_outbox_init(&out, room, now, out_events);
    *n_out = 0;
    /* Observers may watch from several windows: only a partner's or the
     * therapist's seat is taken over (the event decodes for no one else). */
    if (!att_role_is_partner(role) && role != ATT_ROLE_THERAPIST)
        return -1;
    att_outbox_add(&out, ATT_EV_REPLACED, role);
    *n_out = out.n;
    return 0;
}

int att_engine_decide_reconnected(const att_room *room, att_role role, int64_t now, int times,
                                  int64_t gap_ms, att_event out_events[ATT_MAX_EVENTS_PER_COMMAND],
                                  int *n_out)
{
    att_outbox out;
    att_outbox_init(&out, room, now, out_events);
    *n_out = 0;
    if ((int)role < 0 || role > ATT_ROLE_OBSERVER || times < 1 || gap_ms < 0)
        return -1;
    att_event *ev = att_outbox_add(&out, ATT_EV_RECONNECTED, role);
    ev->times = times;
    ev->gap_ms = gap_ms;
    *n_out = out.n;
    return 0;
}
