/* room_log.c - a room's events with the folded state after each (see
 * room_log.h). */
#include "room_log.h"

#include <stdlib.h>
#include "attune/room.h"

typedef struct {
    att_room *room;
    json_t *events;
    att_error *err;
} log_ctx;

static int add_event(int64_t seq, const char *payload, size_t len, void *arg)
{
    log_ctx *c = arg;
    json_t *obj = NULL;
    int rc = att_room_apply_stored(c->room, seq, payload, len, &obj, c->err);
    if (rc < 0)
        return -1;
    json_t *state = rc == 0 ? att_room_state_json(c->room, ATT_ROLE_THERAPIST, 0) : NULL;
    json_t *item = state ? json_object() : NULL;
    if (rc == 0 &&
        (!item || json_object_set_new(item, "seq", json_integer(seq)) ||
         json_object_set(item, "event", obj) || json_object_set_new(item, "state", state) ||
         json_array_append_new(c->events, item))) {
        rc = att_fail(c->err, ATT_ERR_INTERNAL, "out of memory");
        if (!item)
            json_decref(state);
    }
    json_decref(obj);
    return rc < 0 ? -1 : 0;
}

int srv_room_init_stored(srv_store *store, const att_catalog *cat, const srv_config *cfg,
                         const char *room_id, att_room *out, const att_script **script_out,
                         att_error *err)
{
    srv_store_room meta;
    int rc = srv_store_get_room(store, room_id, &meta, err);
    if (rc < 0)
        return rc;
    const att_script *script = att_catalog_script(cat, meta.exercise);
    if (!script)
        return att_fail(err, ATT_ERR_INTERNAL, "room %s uses unknown exercise %s", room_id,
                        meta.exercise);
    att_room_config rcfg = {.silence_ms = cfg->silence_ms,
                            .disconnect_grace_ms = cfg->disconnect_grace_ms};
    if ((rc = att_room_init(out, cat, script, room_id, &rcfg, err)) < 0)
        return rc;
    if (script_out)
        *script_out = script;
    return 0;
}

int srv_room_log_build(srv_store *store, const att_catalog *cat, const srv_config *cfg,
                       const char *room_id, int64_t upto_seq, json_t **events_out,
                       char hash_out[65], att_error *err)
{
    att_room *room = malloc(sizeof *room);
    json_t *events = json_array();
    if (!room || !events) {
        free(room);
        json_decref(events);
        return att_fail(err, ATT_ERR_INTERNAL, "out of memory");
    }
    int rc = srv_room_init_stored(store, cat, cfg, room_id, room, NULL, err);
    if (rc == 0) {
        log_ctx c = {room, events, err};
        att_error store_err = {0};
        rc = srv_store_read_events(store, room_id, 0, upto_seq, 0, add_event, &c, &store_err);
        if (rc == -1)
            rc = -ATT_ERR_INTERNAL; /* add_event set err */
        else if (rc < 0)
            *err = store_err;
    }
    if (rc == 0)
        rc = att_room_state_hash(room, hash_out, err);
    free(room);
    if (rc < 0) {
        json_decref(events);
        return rc;
    }
    *events_out = events;
    return 0;
}
