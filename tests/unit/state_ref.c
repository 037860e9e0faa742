/* state_ref.c - the jansson reference view of a room's state (state_ref.h).
 * It follows PROTOCOL.md's state object and the visibility rules of
 * attune/state.h, and shares no code with protocol/src/state.c. */
#include "state_ref.h"
#include "attune/names.h"

/* Every json_t built here goes through put(): the first failure sticks. */
typedef struct {
    int failed;
} ref;

static void put(ref *r, json_t *obj, const char *key, json_t *value)
{
    if (!value || json_object_set_new(obj, key, value) != 0)
        r->failed = 1;
}

static void push(ref *r, json_t *arr, json_t *value)
{
    if (!value || json_array_append_new(arr, value) != 0)
        r->failed = 1;
}

static json_t *str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

static json_t *int_or_null(long long v)
{
    return v ? json_integer(v) : json_null();
}

static json_t *step_id(const att_room *room, int index)
{
    if (index >= 0 && (size_t)index < room->script->n_steps)
        return json_string(room->script->steps[index].id);
    return json_null();
}

static json_t *evidence(ref *r, const att_rupture_open *o)
{
    json_t *a = json_array();
    for (int i = 0; a && i < o->n_evidence; i++)
        push(r, a, json_integer(o->evidence[i]));
    return a;
}

static int is_staff(att_role viewer)
{
    return viewer == ATT_ROLE_THERAPIST || viewer == ATT_ROLE_OBSERVER;
}

static json_t *rupture(ref *r, const att_room *room, const att_rupture *rp, int staff)
{
    const att_rupture_open *o = &rp->open;
    json_t *j = json_object();
    if (!j)
        return NULL;
    if (staff) {
        put(r, j, "confirmed", json_boolean(rp->confirmed));
        put(r, j, "evidence", evidence(r, o));
        put(r, j, "opened_seq", json_integer(rp->opened_seq));
        put(r, j, "suspicion_id", int_or_null(rp->suspicion_id));
    }
    put(r, j, "id", json_integer(o->id));
    put(r, j, "kind", json_string(att_rupture_kind_name(o->kind)));
    put(r, j, "marker", json_string(o->marker));
    put(r, j, "opened_at", json_integer(rp->opened_at));
    if (rp->status == ATT_RS_REPAIRED) {
        json_t *rep = json_object();
        if (rep) {
            put(r, rep, "at", json_integer(rp->repair_at));
            put(r, rep, "attempt_id", int_or_null(rp->repair_attempt_id));
            put(r, rep, "by", json_string(att_role_name(rp->repair_by)));
            put(r, rep, "how", json_string(att_repair_how_name(rp->repair_how)));
            if (staff)
                put(r, rep, "seq", json_integer(rp->repair_seq));
            put(r, rep, "strategy",
                str_or_null(rp->repair_strategy[0] ? rp->repair_strategy : NULL));
            put(r, rep, "time_to_repair_ms", json_integer(rp->repair_at - rp->opened_at));
        }
        put(r, j, "repair", rep);
    } else {
        put(r, j, "repair", json_null());
    }
    put(r, j, "round", json_integer(o->round));
    put(r, j, "source", json_string(att_source_name(o->source)));
    put(r, j, "status", json_string(rp->status == ATT_RS_REPAIRED ? "repaired" : "open"));
    put(r, j, "step", step_id(room, o->step));
    put(r, j, "who", json_string(att_role_name(o->who)));
    put(r, j, "with", json_string(att_role_name(o->with)));
    return j;
}

static json_t *suspicion(ref *r, const att_room *room, const att_suspicion *s)
{
    const att_rupture_open *o = &s->open;
    json_t *j = json_object();
    if (!j)
        return NULL;
    put(r, j, "class", str_or_null(att_blame_class_name(o->blame_class)));
    put(r, j, "decided_at", int_or_null(s->decided_at));
    put(r, j, "evidence", evidence(r, o));
    put(r, j, "id", json_integer(o->id));
    put(r, j, "kind", json_string(att_rupture_kind_name(o->kind)));
    put(r, j, "marker", json_string(o->marker));
    put(r, j, "raised_at", json_integer(s->raised_at));
    put(r, j, "raised_seq", json_integer(s->raised_seq));
    put(r, j, "round", json_integer(o->round));
    put(r, j, "rupture_id", int_or_null(s->rupture_id));
    put(r, j, "status", json_string(att_suspicion_status_name(s->status)));
    put(r, j, "step", step_id(room, o->step));
    put(r, j, "who", json_string(att_role_name(o->who)));
    put(r, j, "with", json_string(att_role_name(o->with)));
    return j;
}

/* A partner knows whether they answered; an observer nothing; the therapist
 * everything (PROTOCOL.md: the check-in is the private line's). */
static json_t *checkin(ref *r, const att_room *room, att_role viewer)
{
    json_t *j = json_object();
    if (!j)
        return NULL;
    if (att_role_is_partner(viewer)) {
        put(r, j, "answered", json_boolean(room->checkin_seq[viewer] != 0));
        return j;
    }
    if (viewer != ATT_ROLE_THERAPIST)
        return j;
    put(r, j, "held", json_boolean(room->checkin_hold && !room->checkin_done));
    static const char *const keys[ATT_N_PARTNERS] = {"partner_a", "partner_b"};
    for (int p = 0; p < ATT_N_PARTNERS; p++) {
        json_t *one = json_object();
        if (one) {
            put(r, one, "answered", json_boolean(room->checkin_seq[p] != 0));
            put(r, one, "hold", json_boolean(room->checkin_held[p]));
            put(r, one, "seq", int_or_null(room->checkin_seq[p]));
        }
        put(r, j, keys[p], one);
    }
    return j;
}

static json_t *step(ref *r, const att_room *room)
{
    if (room->status == ATT_STATUS_ENDED)
        return json_null();
    const att_step *st = &room->script->steps[room->step];
    att_role actor = ATT_ROLE_NONE;
    switch (st->actor) {
    case ATT_ACTOR_SPEAKER:
        actor = room->speaker;
        break;
    case ATT_ACTOR_LISTENER:
        actor = att_other_partner(room->speaker);
        break;
    case ATT_ACTOR_PARTNER_A:
        actor = ATT_ROLE_PARTNER_A;
        break;
    case ATT_ACTOR_PARTNER_B:
        actor = ATT_ROLE_PARTNER_B;
        break;
    case ATT_ACTOR_THERAPIST:
        actor = ATT_ROLE_THERAPIST;
        break;
    }
    json_t *j = json_object();
    if (!j)
        return NULL;
    put(r, j, "actor", json_string(att_role_name(actor)));
    put(r, j, "as",
        st->actor == ATT_ACTOR_SPEAKER    ? json_string("speaker")
        : st->actor == ATT_ACTOR_LISTENER ? json_string("listener")
                                          : json_null());
    put(r, j, "id", json_string(st->id));
    put(r, j, "index", json_integer(room->step));
    json_t *inputs = json_object_get(st->json, "inputs");
    put(r, j, "inputs", inputs ? json_incref(inputs) : json_array());
    put(r, j, "prompt", json_string(st->prompt ? st->prompt : ""));
    put(r, j, "tag", str_or_null(att_step_tag_name(st->tag)));
    put(r, j, "title", json_string(st->title ? st->title : ""));
    return j;
}

static json_t *pair_bool(ref *r, const int v[ATT_N_PARTNERS])
{
    json_t *j = json_object();
    if (j) {
        put(r, j, "partner_a", json_boolean(v[ATT_ROLE_PARTNER_A]));
        put(r, j, "partner_b", json_boolean(v[ATT_ROLE_PARTNER_B]));
    }
    return j;
}

json_t *state_ref_json(const att_room *room, att_role viewer, int with_type)
{
    ref r = {0};
    int staff = is_staff(viewer);
    int aud = (int)viewer >= 0 && (int)viewer < ATT_AUDIENCES ? (int)viewer : ATT_ROLE_THERAPIST;
    json_t *j = json_object();
    if (!j)
        return NULL;
    put(&r, j, "checkin", checkin(&r, room, viewer));
    put(&r, j, "consent", pair_bool(&r, room->consent));
    put(&r, j, "ended_reason", str_or_null(att_room_end_reason_name(room->end_reason)));
    put(&r, j, "exercise", json_string(room->script->id));
    put(&r, j, "language", json_string(room->language));
    json_t *last = json_object();
    if (last)
        for (int p = 0; p < ATT_N_PARTNERS; p++)
            put(&r, last, p ? "partner_b" : "partner_a",
                room->last_rating[p] >= 0 ? json_integer(room->last_rating[p]) : json_null());
    put(&r, j, "last_rating", last);
    put(&r, j, "listener", json_string(att_role_name(att_other_partner(room->speaker))));
    if (staff)
        put(&r, j, "next_rupture_id", json_integer(room->next_rupture_id));
    put(&r, j, "paused_by",
        room->paused_by == ATT_ROLE_NONE ? json_null()
                                         : json_string(att_role_name(room->paused_by)));
    json_t *present = json_object();
    if (present) {
        put(&r, present, "observers", json_integer(room->observers));
        put(&r, present, "partner_a", json_boolean(room->present[ATT_ROLE_PARTNER_A]));
        put(&r, present, "partner_b", json_boolean(room->present[ATT_ROLE_PARTNER_B]));
        put(&r, present, "therapist", json_boolean(room->present[ATT_ROLE_THERAPIST]));
    }
    put(&r, j, "present", present);
    if (viewer == ATT_ROLE_THERAPIST) {
        json_t *line = json_object();
        if (line) {
            put(&r, line, "from_partners", json_integer(room->private_from_partners));
            put(&r, line, "last_seq", int_or_null(room->private_last_seq));
        }
        put(&r, j, "private_line", line);
    }
    put(&r, j, "rejections_in_row", json_integer(room->rejections_in_row));
    json_t *attempts = json_array();
    for (int i = 0; attempts && i < room->n_attempts; i++) {
        const att_attempt *a = &room->attempts[i];
        json_t *one = json_object();
        if (one) {
            put(&r, one, "accepted", json_boolean(a->accepted));
            put(&r, one, "acknowledged", json_boolean(a->acknowledged));
            put(&r, one, "by", json_string(att_role_name((att_role)a->by)));
            put(&r, one, "id", json_integer(a->id));
            put(&r, one, "reply", a->moment ? json_string("need_a_moment") : json_null());
            put(&r, one, "rupture_id", int_or_null(a->rupture_id));
        }
        push(&r, attempts, one);
    }
    put(&r, j, "repair_attempts", attempts);
    put(&r, j, "room", json_string(room->room_id));
    put(&r, j, "round", json_integer(room->round));
    put(&r, j, "rounds", json_integer(room->script->rounds));
    json_t *ruptures = json_array();
    for (int i = 0; ruptures && i < room->n_ruptures; i++)
        push(&r, ruptures, rupture(&r, room, &room->ruptures[i], staff));
    put(&r, j, "ruptures", ruptures);
    put(&r, j, "ruptures_dropped", json_integer(room->ruptures_dropped));
    put(&r, j, "seq", json_integer(room->aud_seq[aud]));
    put(&r, j, "speaker", json_string(att_role_name(room->speaker)));
    put(&r, j, "status", json_string(att_room_status_name(room->status)));
    put(&r, j, "step", step(&r, room));
    put(&r, j, "step_started_at", json_integer(room->step_started_at));
    if (staff) {
        put(&r, j, "step_started_seq", json_integer(room->step_started_seq));
        json_t *sus = json_array();
        for (int i = 0; sus && i < room->n_suspicions; i++)
            push(&r, sus, suspicion(&r, room, &room->suspicions[i]));
        put(&r, j, "suspicions", sus);
        put(&r, j, "suspicions_dropped", json_integer(room->suspicions_dropped));
    }
    if (with_type) {
        put(&r, j, "type", json_string("state"));
        put(&r, j, "you", json_string(att_role_name(viewer)));
    }
    if (r.failed) {
        json_decref(j);
        return NULL;
    }
    return j;
}
