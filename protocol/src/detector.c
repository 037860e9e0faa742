/* detector.c - the rupture detector: a second pass over a command's
 * primary events. It reads the room's state before the command, the events
 * the engine put in the outbox and the time it is given, and appends its own
 * events to the same outbox (att_detector_after, called once by each
 * att_engine_decide*), or raises suggestions from the clock alone
 * (att_detector_tick). It calls nothing of the engine's and keeps no state of its
 * own: everything it needs (rejections in a row, last ratings, when the turn
 * began, who is away) is in the fold.
 *
 * What it finds are suggestions, never verdicts: every rule raises a
 * `rupture_suspected` that only the therapist (and an observer) sees, until
 * the therapist confirms or dismisses it. It repairs only ruptures that are
 * open, that is, confirmed by the therapist. */
#include "attune/detector.h"
#include "outbox.h"
#include "room_internal.h"

#include <assert.h>
#include <string.h>

static att_rupture_open *suspect(att_outbox *out, att_rupture_kind kind, const char *marker,
                                 att_role who, att_role with, int step)
{
    int id = att_outbox_take_suspicion_id(out);
    att_event *ev = att_outbox_add(out, ATT_EV_RUPTURE_SUSPECTED, ATT_ROLE_SYSTEM);
    if (!ev)
        return NULL;
    att_rupture_open *r = &ev->rupture;
    r->id = id;
    r->kind = kind;
    strncpy(r->marker, marker, sizeof r->marker - 1);
    r->source = ATT_SRC_DETECTOR;
    r->who = who;
    r->with = with;
    r->step = out->room->status == ATT_STATUS_ENDED ? -1 : step;
    r->round = out->room->round;
    return r;
}

static int add_evidence(att_rupture_open *r, int64_t seq)
{
    if (!r)
        return -1;
    if (r->n_evidence < ATT_MAX_EVIDENCE)
        r->evidence[r->n_evidence++] = seq;
    return 0;
}

/* Repairs every open rupture with this marker whose `who` is `who`. */
static int repair_matching(att_outbox *out, const char *marker, att_role who, att_repair_how how,
                           att_role by)
{
    const att_room *room = out->room;
    for (int i = 0; i < room->n_ruptures; i++) {
        const att_rupture *r = &room->ruptures[i];
        if (r->status != ATT_RS_OPEN || strcmp(r->open.marker, marker) != 0 ||
            (who != ATT_ROLE_NONE && r->open.who != who))
            continue;
        att_event *ev = att_outbox_add(out, ATT_EV_RUPTURE_REPAIRED, by);
        if (!ev)
            return -1;
        ev->rupture_id = r->open.id;
        ev->how = how;
    }
    return 0;
}

/* The blame classifier's verdict on text, in the room's language. */
static att_blame_class blame_of(const att_room *room, const char *text)
{
    return att_catalog_blame_classify(room->catalog, room->language, text);
}

/* Text a partner wrote to the other (a turn, a repair attempt); never pause
 * notes, the private line or the check-in. */
static int detect_text(att_outbox *out, att_role writer, const char *text, int64_t evidence_seq)
{
    if (!text || !att_role_is_partner(writer))
        return 0;
    att_blame_class k = blame_of(out->room, text);
    if (k == ATT_BLAME_NONE)
        return 0;
    att_rupture_open *r = suspect(out, ATT_RK_CONFRONTATION, "blaming_language", writer,
                                  att_other_partner(writer), out->room->step);
    if (r)
        r->blame_class = k;
    return add_evidence(r, evidence_seq);
}

/* The first free text in a turn's input that reads as blame, or NULL. A
 * listener's reflection is the partner's words said back: never scanned. */
static const char *blaming_text_in(const att_room *room, const att_step *step, json_t *input)
{
    if (step->tag == ATT_TAG_REFLECTION)
        return NULL;
    for (size_t i = 0; i < step->n_inputs; i++) {
        json_t *v = json_object_get(input, step->inputs[i].name);
        const char *text = NULL;
        switch (step->inputs[i].kind) {
        case ATT_INPUT_TEXT:
            text = json_string_value(v);
            break;
        case ATT_INPUT_EMOTION_REACTIVE:
        case ATT_INPUT_EMOTION_PRIMARY:
        case ATT_INPUT_NEED:
            text = json_string_value(json_object_get(v, "text"));
            break;
        case ATT_INPUT_RATING:
        case ATT_INPUT_CHOICE:
            break;
        }
        if (text && blame_of(room, text) != ATT_BLAME_NONE)
            return text;
    }
    return NULL;
}

static int detect_turn(att_outbox *out, const att_event *turn)
{
    const att_room *room = out->room;
    const att_step *step = &room->script->steps[turn->step];
    att_role who = turn->by;
    if (!att_role_is_partner(who))
        return 0;
    if (repair_matching(out, "silence", who, ATT_HOW_RESUMED, who))
        return -1;
    if (step->tag == ATT_TAG_REFLECTION_CHECK) {
        if (att_step_branch_taken(step, turn->input)) {
            if (room->rejections_in_row + 1 == 2) {
                att_rupture_open *r = suspect(out, ATT_RK_MISATTUNEMENT, "reflection_rejected",
                                              att_other_partner(who), who, turn->step);
                if (add_evidence(r, room->last_rejection_seq) || add_evidence(r, turn->seq))
                    return -1;
            }
        } else if (repair_matching(out, "reflection_rejected", ATT_ROLE_NONE,
                                   ATT_HOW_REFLECTION_CONFIRMED, who)) {
            return -1;
        }
    }
    if (step->tag == ATT_TAG_CONNECTION_RATING) {
        int r = att_step_rating_value(step, turn->input);
        int last = room->last_rating[who];
        const char *marker = NULL;
        if (r >= 0 && r <= 3)
            marker = "rating_low";
        else if (r >= 0 && last >= 0 && last - r >= 3)
            marker = "rating_drop";
        if (marker && add_evidence(suspect(out, ATT_RK_DISCONNECTION_FELT, marker, who,
                                           att_other_partner(who), turn->step),
                                   turn->seq))
            return -1;
    }
    return detect_text(out, who, blaming_text_in(room, step, turn->input), turn->seq);
}

static int detect_one(att_outbox *out, const att_event *ev)
{
    switch (ev->type) {
    case ATT_EV_TURN:
        return detect_turn(out, ev);
    case ATT_EV_REPAIR_ATTEMPT:
        return detect_text(out, ev->by, ev->text, ev->seq);
    case ATT_EV_JOINED:
        if (!att_role_is_partner(ev->by))
            return 0;
        return repair_matching(out, "disconnect", ev->by, ATT_HOW_RECONNECT, ev->by);
    default:
        /* A `left` raises nothing at once: a brief drop is the network, not
         * a withdrawal (att_detector_tick suggests one after the grace). */
        return 0;
    }
}

int att_detector_after(att_outbox *out)
{
    /* Only the engine's events: what the detector appends is not read again. */
    int n_primary = out->n;
    for (int i = 0; i < n_primary; i++) {
        const att_event ev = out->ev[i]; /* a copy: the outbox is written meanwhile */
        if (detect_one(out, &ev))
            return -1;
    }
    return 0;
}

/* How long the actor may be quiet on this step: 0 = never flagged. */
static int64_t silence_threshold(const att_room *room)
{
    long long step_ms = room->script->steps[room->step].silence_ms;
    return step_ms >= 0 ? step_ms : room->config.silence_ms;
}

int64_t att_detector_next_deadline(const att_room *room, int64_t composing_at)
{
    att_role actor = att_room_actor(room);
    if (!att_role_is_partner(actor))
        return -1;
    if (!room->present[actor]) {
        if (room->away_raised[actor] || room->away_since[actor] <= 0)
            return -1;
        return room->away_since[actor] + room->config.disconnect_grace_ms;
    }
    int64_t threshold = silence_threshold(room);
    if (threshold <= 0 || room->silence_open_step == room->step)
        return -1;
    int64_t from = room->step_started_at > composing_at ? room->step_started_at : composing_at;
    return from + threshold;
}

int att_detector_tick(const att_room *room, int64_t now, int64_t composing_at,
                      att_event out_events[ATT_MAX_EVENTS_PER_COMMAND])
{
    int64_t deadline = att_detector_next_deadline(room, composing_at);
    if (deadline < 0 || now < deadline)
        return 0;
    att_outbox out;
    att_outbox_init(&out, room, now, out_events);
    att_role who = att_room_actor(room);
    assert(att_role_is_partner(who)); /* a deadline is only armed for a partner's turn */
    int away = !room->present[who];
    att_rupture_open *r = suspect(&out, ATT_RK_WITHDRAWAL, away ? "disconnect" : "silence", who,
                                  att_other_partner(who), room->step);
    if (add_evidence(r, away ? room->away_seq[who] : room->step_started_seq))
        return 0;
    return out.n;
}
