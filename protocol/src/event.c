/* event.c - visibility and the JSON form of room events (their names are
 * names.c's). */
#include "attune/event.h"
#include "attune/msg.h"
#include "attune/names.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AUD(role) (1u << (role))
#define AUD_ALL (AUD(ATT_ROLE_PARTNER_A) | AUD(ATT_ROLE_PARTNER_B) | AUD_STAFF)
#define AUD_STAFF (AUD(ATT_ROLE_THERAPIST) | AUD(ATT_ROLE_OBSERVER))

/* The one visibility table (PROTOCOL.md section 6). */
unsigned att_event_audience(const att_event *ev)
{
    switch (ev->type) {
    case ATT_EV_RUPTURE_SUSPECTED:
    case ATT_EV_RUPTURE_DISMISSED:
    case ATT_EV_NOTE:
    case ATT_EV_RECONNECTED: /* how someone's connection fares is for the staff */
        return AUD_STAFF;
    case ATT_EV_RUPTURE_CONFIRMED:
        /* A protocol 1 confirmation carried the rupture to everyone. */
        return ev->legacy ? AUD_ALL : AUD_STAFF;
    case ATT_EV_REPLACED:
        return att_role_is_partner(ev->by) ? AUD(ev->by) | AUD_STAFF : AUD_STAFF;
    case ATT_EV_CHECKIN_ANSWERED:
    case ATT_EV_THERAPIST_REQUESTED:
        /* The private line: the partner and the therapist, no supervisor. */
        return (att_role_is_partner(ev->by) ? AUD(ev->by) : 0) | AUD(ATT_ROLE_THERAPIST);
    case ATT_EV_PRIVATE_MESSAGE: {
        att_role partner = att_role_is_partner(ev->by) ? ev->by : ev->to;
        return (att_role_is_partner(partner) ? AUD(partner) : 0) | AUD(ATT_ROLE_THERAPIST);
    }
    default:
        return AUD_ALL;
    }
}

int att_event_visible_to(const att_event *ev, att_role viewer)
{
    if ((int)viewer < 0 || (int)viewer >= ATT_AUDIENCES)
        return 0;
    return (att_event_audience(ev) & AUD(viewer)) != 0;
}

static const char *step_id(const att_script *script, int step)
{
    if (step < 0 || !script || (size_t)step >= script->n_steps)
        return NULL;
    return script->steps[step].id;
}

json_t *att_rupture_open_to_json(const att_rupture_open *r, const att_script *script)
{
    const char *sid = step_id(script, r->step);
    json_t *o = json_pack("{s:i, s:s, s:s, s:s, s:s, s:s, s:o, s:i}", "id", r->id, "kind",
                          att_rupture_kind_name(r->kind), "marker", r->marker, "source",
                          att_source_name(r->source), "who", att_role_name(r->who), "with",
                          att_role_name(r->with), "step", sid ? json_string(sid) : json_null(),
                          "round", r->round);
    if (!o)
        return NULL;
    int rc = 0;
    /* Evidence names room-log seqs: only suspicions (staff) carry it now. */
    if (r->n_evidence > 0) {
        json_t *ev = json_array();
        for (int i = 0; ev && i < r->n_evidence; i++)
            rc |= json_array_append_new(ev, json_integer(r->evidence[i]));
        rc |= ev ? json_object_set_new(o, "evidence", ev) : -1;
    }
    if (r->blame_class != ATT_BLAME_NONE)
        rc |= json_object_set_new(o, "class", json_string(att_blame_class_name(r->blame_class)));
    if (rc) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* Sets key to a new value; returns -1 when either failed to allocate. */
static int set_new(json_t *obj, const char *key, json_t *value)
{
    return value ? json_object_set_new(obj, key, value) : -1;
}

json_t *att_event_to_json(const att_event *ev, const att_script *script)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    int rc = 0;
    rc |= set_new(o, "type", json_string(att_event_type_name(ev->type)));
    rc |= set_new(o, "at", json_integer(ev->at));
    rc |= set_new(o, "by", json_string(att_role_name(ev->by)));
    switch (ev->type) {
    case ATT_EV_ROOM_CREATED:
        rc |= set_new(o, "exercise", json_string(ev->exercise ? ev->exercise : ""));
        rc |= set_new(o, "first_speaker", json_string(att_role_name(ev->first_speaker)));
        if (ev->checkin)
            rc |= set_new(o, "checkin", json_true());
        if (ev->language)
            rc |= set_new(o, "language", json_string(ev->language));
        break;
    case ATT_EV_LEFT:
        rc |= set_new(o, "reason", json_string(att_left_reason_name(ev->left_reason)));
        break;
    case ATT_EV_CONSENTED:
        if (ev->notice_hash) {
            rc |= set_new(o, "notice_version", json_integer(ev->notice_version));
            rc |= set_new(o, "notice_hash", json_string(ev->notice_hash));
        }
        break;
    case ATT_EV_TURN: {
        const char *sid = step_id(script, ev->step);
        rc |= set_new(o, "step", json_string(sid ? sid : ""));
        rc |= set_new(o, "round", json_integer(ev->round));
        rc |= set_new(o, "input", ev->input ? json_incref(ev->input) : json_object());
        break;
    }
    case ATT_EV_CONTROL:
        rc |= set_new(o, "action", json_string(att_control_name(ev->action)));
        break;
    case ATT_EV_PAUSE_REQUESTED:
        if (ev->text)
            rc |= set_new(o, "note", json_string(ev->text));
        break;
    case ATT_EV_REPAIR_ATTEMPT:
        if (ev->attempt_id > 0)
            rc |= set_new(o, "attempt_id", json_integer(ev->attempt_id));
        if (ev->text)
            rc |= set_new(o, "text", json_string(ev->text));
        if (ev->rupture_id > 0)
            rc |= set_new(o, "rupture_id", json_integer(ev->rupture_id));
        break;
    case ATT_EV_REPAIR_ACCEPTED:
        if (ev->attempt_id > 0)
            rc |= set_new(o, "attempt_id", json_integer(ev->attempt_id));
        else
            rc |= set_new(o, "attempt_seq", json_integer(ev->attempt_seq));
        break;
    case ATT_EV_REPAIR_REPLIED:
        rc |= set_new(o, "attempt_id", json_integer(ev->attempt_id));
        rc |= set_new(o, "reply", json_string(att_repair_reply_name(ev->reply)));
        break;
    case ATT_EV_RUPTURE_OPENED:
    case ATT_EV_RUPTURE_SUSPECTED:
        rc |= set_new(o, "rupture", att_rupture_open_to_json(&ev->rupture, script));
        break;
    case ATT_EV_RUPTURE_CONFIRMED:
        if (ev->legacy) {
            rc |= set_new(o, "rupture", att_rupture_open_to_json(&ev->rupture, script));
        } else {
            rc |= set_new(o, "suspicion_id", json_integer(ev->suspicion_id));
            rc |= set_new(o, "rupture_id", json_integer(ev->rupture_id));
        }
        break;
    case ATT_EV_RUPTURE_DISMISSED:
        rc |=
            set_new(o, ev->legacy ? "rupture_id" : "suspicion_id", json_integer(ev->suspicion_id));
        if (ev->text)
            rc |= set_new(o, "note", json_string(ev->text));
        break;
    case ATT_EV_RUPTURE_REPAIRED:
        rc |= set_new(o, "rupture_id", json_integer(ev->rupture_id));
        rc |= set_new(o, "how", json_string(att_repair_how_name(ev->how)));
        if (ev->how == ATT_HOW_THERAPIST_STRATEGY && ev->strategy)
            rc |= set_new(o, "strategy", json_string(ev->strategy));
        if (ev->how == ATT_HOW_REPAIR_ATTEMPT && ev->attempt_id > 0)
            rc |= set_new(o, "attempt_id", json_integer(ev->attempt_id));
        else if (ev->how == ATT_HOW_REPAIR_ATTEMPT)
            rc |= set_new(o, "attempt_seq", json_integer(ev->attempt_seq));
        break;
    case ATT_EV_NOTE:
        rc |= set_new(o, "text", json_string(ev->text ? ev->text : ""));
        if (ev->rupture_id > 0)
            rc |= set_new(o, "rupture_id", json_integer(ev->rupture_id));
        if (ev->suspicion_id > 0)
            rc |= set_new(o, "suspicion_id", json_integer(ev->suspicion_id));
        break;
    case ATT_EV_CHECKIN_ANSWERED:
        rc |= set_new(o, "answers", ev->answers ? json_incref(ev->answers) : json_object());
        rc |= set_new(o, "hold", json_boolean(ev->hold));
        if (ev->text)
            rc |= set_new(o, "note", json_string(ev->text));
        break;
    case ATT_EV_PRIVATE_MESSAGE:
        rc |= set_new(o, "to", json_string(att_role_name(ev->to)));
        rc |= set_new(o, "text", json_string(ev->text ? ev->text : ""));
        break;
    case ATT_EV_RECONNECTED:
        rc |= set_new(o, "times", json_integer(ev->times));
        rc |= set_new(o, "gap_ms", json_integer(ev->gap_ms));
        break;
    case ATT_EV_JOINED:
    case ATT_EV_REPLACED:
    case ATT_EV_CONSENT_WITHDRAWN:
    case ATT_EV_CHECKIN_COMPLETED:
    case ATT_EV_THERAPIST_REQUESTED:
    case ATT_EV__COUNT:
        break;
    }
    if (rc != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* --- the stored form ---------------------------------------------------- */

#define COMMAND_KEY ",\"command_id\":\""
#define EVENTS_KEY "\",\"command_events\":"

char *att_event_encode_stored(const att_event *ev, const att_script *script, size_t *len_out)
{
    json_t *obj = att_event_to_json(ev, script);
    size_t len = 0;
    char *text = obj ? att_json_dump(obj, &len) : NULL;
    json_decref(obj);
    if (!text || !ev->command_id) {
        if (text && len_out)
            *len_out = len;
        return text;
    }
    size_t id_len = strlen(ev->command_id);
    /* Only well-formed ids (the codec's check): the cut below relies on the
     * tail holding no quote or backslash. */
    if (!att_command_id_ok(ev->command_id, id_len) || ev->command_events < 1 ||
        ev->command_events > 99 || len < 2 || text[len - 1] != '}') {
        free(text);
        return NULL;
    }
    size_t cap = len + sizeof COMMAND_KEY + id_len + sizeof EVENTS_KEY + 4;
    char *out = malloc(cap);
    if (!out) {
        free(text);
        return NULL;
    }
    int n = snprintf(out, cap, "%.*s%s%s%s%d}", (int)(len - 1), text, COMMAND_KEY, ev->command_id,
                     EVENTS_KEY, ev->command_events);
    free(text);
    if (n < 0 || (size_t)n >= cap) {
        free(out);
        return NULL;
    }
    if (len_out)
        *len_out = (size_t)n;
    return out;
}

size_t att_event_wire_cut(const char *stored, size_t len)
{
    /* The tail, read backwards: "}", 1-2 digits, the events key, the id
     * (16..64 of [A-Za-z0-9_-]), the command key. A sorted dump of an event
     * object ends with its "type" member, so a text without the tail never
     * matches. */
    if (!stored || len < 2 || stored[len - 1] != '}')
        return len;
    size_t i = len - 1;
    size_t digits = 0;
    while (i > 0 && digits < 3 && stored[i - 1] >= '0' && stored[i - 1] <= '9') {
        i--;
        digits++;
    }
    size_t klen = sizeof EVENTS_KEY - 1;
    if (digits < 1 || digits > 2 || i < klen || memcmp(stored + i - klen, EVENTS_KEY, klen) != 0)
        return len;
    i -= klen;
    size_t id_end = i;
    size_t id_start = id_end;
    while (id_start > 0 && id_end - id_start < ATT_COMMAND_ID_MAX_BYTES &&
           att_command_id_char(stored[id_start - 1]))
        id_start--;
    klen = sizeof COMMAND_KEY - 1;
    if (!att_command_id_ok(stored + id_start, id_end - id_start) || id_start < klen + 1 ||
        memcmp(stored + id_start - klen, COMMAND_KEY, klen) != 0)
        return len;
    return id_start - klen;
}

/* --- decoding ----------------------------------------------------------- */

static int bad(att_error *err, const char *what)
{
    return att_fail(err, ATT_ERR_BAD_MESSAGE, "event: %s", what);
}

static int get_int(json_t *o, const char *key, int64_t *out)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_integer(v))
        return -1;
    *out = json_integer_value(v);
    return 0;
}

static const char *get_str(json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static int find_step(const att_script *script, const char *id)
{
    if (!id || !script)
        return -1;
    for (size_t i = 0; i < script->n_steps; i++)
        if (strcmp(script->steps[i].id, id) == 0)
            return (int)i;
    return -1;
}

static int rupture_from_json(json_t *r, const att_script *script, att_rupture_open *out,
                             att_error *err)
{
    int64_t v;
    memset(out, 0, sizeof *out);
    if (!json_is_object(r))
        return bad(err, "rupture is not an object");
    if (get_int(r, "id", &v) || v < 1 || v > 1000000)
        return bad(err, "rupture id");
    out->id = (int)v;
    int k = att_rupture_kind_from_name(get_str(r, "kind"));
    if (k < 0)
        return bad(err, "rupture kind");
    out->kind = (att_rupture_kind)k;
    const char *marker = get_str(r, "marker");
    if (!marker || strlen(marker) >= sizeof out->marker)
        return bad(err, "rupture marker");
    strcpy(out->marker, marker);
    int s = att_source_from_name(get_str(r, "source"));
    if (s < 0)
        return bad(err, "rupture source");
    out->source = (att_source)s;
    out->who = att_role_from_name(get_str(r, "who"));
    out->with = att_role_from_name(get_str(r, "with"));
    if (!att_role_is_partner(out->who) || out->with == ATT_ROLE_NONE || out->with == out->who)
        return bad(err, "rupture who/with");
    json_t *step = json_object_get(r, "step");
    if (json_is_null(step) || !step) {
        out->step = -1;
    } else {
        out->step = find_step(script, json_string_value(step));
        if (out->step < 0)
            return bad(err, "rupture step");
    }
    if (get_int(r, "round", &v) || v < 0 || v > 1000)
        return bad(err, "rupture round");
    out->round = (int)v;
    if (json_object_get(r, "class")) {
        int cls = att_blame_class_from_name(get_str(r, "class"));
        if (cls < 0)
            return bad(err, "rupture class");
        out->blame_class = (att_blame_class)cls;
    }
    json_t *evidence = json_object_get(r, "evidence");
    if (!evidence)
        return 0; /* protocol 2 ruptures carry none */
    if (!json_is_array(evidence) || json_array_size(evidence) > ATT_MAX_EVIDENCE)
        return bad(err, "rupture evidence");
    size_t i;
    json_t *e;
    json_array_foreach(evidence, i, e)
    {
        if (!json_is_integer(e))
            return bad(err, "rupture evidence");
        out->evidence[out->n_evidence++] = json_integer_value(e);
    }
    return 0;
}

int att_event_from_json(json_t *obj, const att_script *script, att_event *ev, att_error *err)
{
    int64_t v;
    memset(ev, 0, sizeof *ev);
    if (!json_is_object(obj))
        return bad(err, "not an object");
    int t = att_event_type_from_name(get_str(obj, "type"));
    if (t < 0)
        return bad(err, "unknown type");
    ev->type = (att_event_type)t;
    if (get_int(obj, "at", &ev->at))
        return bad(err, "at");
    ev->by = att_role_from_name(get_str(obj, "by"));
    if (ev->by == ATT_ROLE_NONE)
        return bad(err, "by");
    ev->step = -1;
    json_t *command = json_object_get(obj, "command_id");
    if (command) {
        if (!json_is_string(command) ||
            !att_command_id_ok(json_string_value(command), json_string_length(command)) ||
            get_int(obj, "command_events", &v) || v < 1 || v > 99)
            return bad(err, "command_id");
        ev->command_id = json_string_value(command);
        ev->command_events = (int)v;
    }
    switch (ev->type) {
    case ATT_EV_ROOM_CREATED:
        ev->exercise = get_str(obj, "exercise");
        ev->first_speaker = att_role_from_name(get_str(obj, "first_speaker"));
        if (!ev->exercise || !att_role_is_partner(ev->first_speaker))
            return bad(err, "room_created fields");
        ev->checkin = json_is_true(json_object_get(obj, "checkin"));
        ev->language = get_str(obj, "language");
        break;
    case ATT_EV_LEFT: {
        int r = att_left_reason_from_name(get_str(obj, "reason"));
        if (r < 0)
            return bad(err, "left reason");
        ev->left_reason = (att_left_reason)r;
        break;
    }
    case ATT_EV_CONSENTED:
        ev->notice_hash = get_str(obj, "notice_hash");
        if (!get_int(obj, "notice_version", &v))
            ev->notice_version = (int)v;
        break;
    case ATT_EV_TURN:
        ev->step = find_step(script, get_str(obj, "step"));
        if (ev->step < 0)
            return bad(err, "turn step");
        if (get_int(obj, "round", &v) || v < 0 || v > 1000)
            return bad(err, "turn round");
        ev->round = (int)v;
        ev->input = json_object_get(obj, "input");
        if (!json_is_object(ev->input))
            return bad(err, "turn input");
        break;
    case ATT_EV_CONTROL: {
        int c = att_control_from_name(get_str(obj, "action"));
        if (c < 0)
            return bad(err, "control action");
        ev->action = (att_control)c;
        break;
    }
    case ATT_EV_PAUSE_REQUESTED:
        ev->text = get_str(obj, "note");
        break;
    case ATT_EV_REPAIR_ATTEMPT:
        ev->text = get_str(obj, "text");
        if (!get_int(obj, "rupture_id", &v))
            ev->rupture_id = (int)v;
        if (!get_int(obj, "attempt_id", &v))
            ev->attempt_id = (int)v;
        break;
    case ATT_EV_REPAIR_ACCEPTED:
        if (!get_int(obj, "attempt_id", &v) && v > 0 && v <= INT32_MAX)
            ev->attempt_id = (int)v;
        else if (get_int(obj, "attempt_seq", &ev->attempt_seq))
            return bad(err, "attempt_id");
        break;
    case ATT_EV_REPAIR_REPLIED: {
        int r = att_repair_reply_from_name(get_str(obj, "reply"));
        if (get_int(obj, "attempt_id", &v) || v < 1 || v > INT32_MAX || r < 0)
            return bad(err, "repair_replied fields");
        ev->attempt_id = (int)v;
        ev->reply = (att_repair_reply)r;
        break;
    }
    case ATT_EV_RUPTURE_OPENED:
    case ATT_EV_RUPTURE_SUSPECTED:
        return rupture_from_json(json_object_get(obj, "rupture"), script, &ev->rupture, err);
    case ATT_EV_RUPTURE_CONFIRMED:
        if (json_object_get(obj, "rupture")) {
            /* protocol 1: the suspicion became the rupture of the same id */
            ev->legacy = 1;
            int rc = rupture_from_json(json_object_get(obj, "rupture"), script, &ev->rupture, err);
            ev->suspicion_id = ev->rupture_id = ev->rupture.id;
            return rc;
        }
        if (get_int(obj, "suspicion_id", &v) || v < 1 || v > INT32_MAX)
            return bad(err, "suspicion_id");
        ev->suspicion_id = (int)v;
        if (get_int(obj, "rupture_id", &v) || v < 1 || v > INT32_MAX)
            return bad(err, "rupture_id");
        ev->rupture_id = (int)v;
        break;
    case ATT_EV_RUPTURE_DISMISSED:
        if (!get_int(obj, "suspicion_id", &v)) {
            ev->suspicion_id = (int)v;
        } else if (!get_int(obj, "rupture_id", &v)) {
            ev->legacy = 1; /* protocol 1 named the suspicion by the shared id */
            ev->suspicion_id = (int)v;
        } else {
            return bad(err, "suspicion_id");
        }
        ev->text = get_str(obj, "note");
        break;
    case ATT_EV_RUPTURE_REPAIRED: {
        if (get_int(obj, "rupture_id", &v))
            return bad(err, "rupture_id");
        ev->rupture_id = (int)v;
        int h = att_repair_how_from_name(get_str(obj, "how"));
        if (h < 0)
            return bad(err, "repair how");
        ev->how = (att_repair_how)h;
        ev->strategy = get_str(obj, "strategy");
        if (ev->how == ATT_HOW_THERAPIST_STRATEGY && !ev->strategy)
            return bad(err, "repair strategy");
        if (ev->how == ATT_HOW_REPAIR_ATTEMPT) {
            if (!get_int(obj, "attempt_id", &v) && v > 0 && v <= INT32_MAX)
                ev->attempt_id = (int)v;
            else if (get_int(obj, "attempt_seq", &ev->attempt_seq))
                return bad(err, "repair attempt_id");
        }
        break;
    }
    case ATT_EV_NOTE:
        ev->text = get_str(obj, "text");
        if (!ev->text)
            return bad(err, "note text");
        if (!get_int(obj, "rupture_id", &v))
            ev->rupture_id = (int)v;
        if (!get_int(obj, "suspicion_id", &v))
            ev->suspicion_id = (int)v;
        break;
    case ATT_EV_CHECKIN_ANSWERED:
        ev->answers = json_object_get(obj, "answers");
        ev->hold = json_is_true(json_object_get(obj, "hold"));
        ev->text = get_str(obj, "note");
        if (!json_is_object(ev->answers) || !att_role_is_partner(ev->by))
            return bad(err, "checkin_answered fields");
        break;
    case ATT_EV_PRIVATE_MESSAGE:
        ev->to = att_role_from_name(get_str(obj, "to"));
        ev->text = get_str(obj, "text");
        if (!ev->text || !(att_role_is_partner(ev->by)
                               ? ev->to == ATT_ROLE_THERAPIST
                               : ev->by == ATT_ROLE_THERAPIST && att_role_is_partner(ev->to)))
            return bad(err, "private_message fields");
        break;
    case ATT_EV_REPLACED:
    case ATT_EV_CONSENT_WITHDRAWN:
    case ATT_EV_THERAPIST_REQUESTED:
        if (!att_role_is_partner(ev->by) && ev->by != ATT_ROLE_THERAPIST)
            return bad(err, "by");
        break;
    case ATT_EV_RECONNECTED:
        if ((int)ev->by < 0 || ev->by > ATT_ROLE_OBSERVER)
            return bad(err, "by");
        if (get_int(obj, "times", &v) || v < 1 || v > INT32_MAX)
            return bad(err, "reconnected times");
        ev->times = (int)v;
        if (get_int(obj, "gap_ms", &ev->gap_ms) || ev->gap_ms < 0)
            return bad(err, "reconnected gap_ms");
        break;
    case ATT_EV_JOINED:
    case ATT_EV_CHECKIN_COMPLETED:
    case ATT_EV__COUNT:
        break;
    }
    return 0;
}
