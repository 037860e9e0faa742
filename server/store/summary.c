/* summary.c - the room summary (see summary.h). */
#include "summary.h"

#include <string.h>
#include "attune/state.h"

/* How many of a state's ruptures or suspicions have this status. */
static int count_status(json_t *items, const char *status)
{
    int n = 0;
    size_t i;
    json_t *r;
    json_array_foreach(items, i, r)
    {
        const char *st = json_string_value(json_object_get(r, "status"));
        if (st && strcmp(st, status) == 0)
            n++;
    }
    return n;
}

json_t *srv_therapist_state_json(const att_room *room)
{
    att_buf text = {0};
    json_t *state = NULL;
    if (att_state_write(room, ATT_ROLE_THERAPIST, 0, &text) == 0)
        state = json_loadb(text.data, text.len, 0, NULL);
    att_buf_free(&text);
    return state;
}

json_t *srv_summary_json(const att_room *room, const att_script *script, const char *room_id,
                         int64_t created_at, att_error *err)
{
    json_t *state = srv_therapist_state_json(room);
    if (!state) {
        att_fail(err, ATT_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    json_t *step = json_object_get(state, "step");
    json_t *step_summary = json_is_object(step)
                               ? json_pack("{s:O,s:O}", "id", json_object_get(step, "id"), "title",
                                           json_object_get(step, "title"))
                               : json_null();
    json_t *ruptures = json_object_get(state, "ruptures");
    json_t *suspicions = json_object_get(state, "suspicions");
    json_t *private_line = json_object_get(state, "private_line");
    json_t *s =
        step_summary
            ? json_pack("{s:s,s:s,s:s,s:I,s:O,s:O,s:o,s:O,s:O,s:O,s:O,s:i,s:i,"
                        "s:O,s:{s:i,s:i,s:i},s:b,s:O,s:O}",
                        "id", room_id, "exercise", script->id, "title", script->title, "created_at",
                        (json_int_t)created_at, "last_seq", json_object_get(state, "seq"), "status",
                        json_object_get(state, "status"), "step", step_summary, "round",
                        json_object_get(state, "round"), "rounds", json_object_get(state, "rounds"),
                        "speaker", json_object_get(state, "speaker"), "present",
                        json_object_get(state, "present"), "open_ruptures",
                        count_status(ruptures, "open"), "suspected_ruptures",
                        count_status(suspicions, "suspected"), "ended_reason",
                        json_object_get(state, "ended_reason"), "suspicions", "suspected",
                        count_status(suspicions, "suspected"), "confirmed",
                        count_status(suspicions, "confirmed"), "dismissed",
                        count_status(suspicions, "dismissed"), "checkin_held",
                        json_is_true(json_object_get(json_object_get(state, "checkin"), "held")),
                        "private_messages", json_object_get(private_line, "from_partners"),
                        "private_last_seq", json_object_get(private_line, "last_seq"))
            : NULL;
    json_decref(state);
    if (!s)
        att_fail(err, ATT_ERR_INTERNAL, "cannot build the room summary");
    return s;
}
