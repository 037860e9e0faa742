/* log_fold.c - the one fold of a stored log (see log_fold.h). */
#include "log_fold.h"

#include <inttypes.h>
#include <stdio.h>

srv_walk srv_log_walk(const srv_log_source *src, const char *room_id, int64_t after_seq,
                      int64_t upto_seq, int limit, srv_stored_event_fn fn, void *arg,
                      att_error *err)
{
    if (src->reader)
        return srv_store_reader_walk_events(src->reader, room_id, after_seq, upto_seq, limit, fn,
                                            arg, err);
    return srv_store_walk_events(src->store, room_id, after_seq, upto_seq, limit, fn, arg, err);
}

int srv_log_fold_init(srv_store *store, const att_catalog *cat, const att_room_config *options,
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
    if ((rc = att_room_init(out, cat, script, room_id, options, err)) < 0)
        return rc;
    if (script_out)
        *script_out = script;
    return 0;
}

typedef struct {
    att_room *room;
    const srv_fold_hooks *hooks;
} fold_ctx;

static srv_walk fold_one(const srv_stored_event *ev, void *arg, att_error *err)
{
    fold_ctx *c = arg;
    const srv_fold_hooks *h = c->hooks;
    if (ev->seq != c->room->seq + 1) {
        att_fail(err, ATT_ERR_INTERNAL, "room log: event %" PRId64 " follows %" PRId64, ev->seq,
                 c->room->seq);
        return SRV_WALK_FAILED;
    }
    srv_walk how;
    if (h && h->before && (how = h->before(ev, c->room, h->arg, err)) != SRV_WALK_CONTINUE)
        return how;
    json_t *object = NULL;
    if (att_room_apply_stored(c->room, ev->seq, ev->payload, ev->len,
                              h && h->with_object ? &object : NULL, err) < 0)
        return SRV_WALK_FAILED;
    how = h && h->after ? h->after(ev, object, c->room, h->arg, err) : SRV_WALK_CONTINUE;
    json_decref(object);
    return how;
}

srv_walk srv_log_fold(const srv_log_source *src, att_room *room, int64_t upto_seq, int limit,
                      const srv_fold_hooks *hooks, att_error *err)
{
    if (upto_seq >= 0 && upto_seq <= room->seq)
        return SRV_WALK_CONTINUE;
    fold_ctx c = {room, hooks};
    return srv_log_walk(src, room->room_id, room->seq, upto_seq, limit, fold_one, &c, err);
}

int srv_log_fold_room(srv_store *store, const att_catalog *cat, const att_room_config *options,
                      const char *room_id, const srv_fold_hooks *hooks, att_room *out,
                      const att_script **script_out, att_error *err)
{
    int rc = srv_log_fold_init(store, cat, options, room_id, out, script_out, err);
    if (rc < 0)
        return rc;
    srv_log_source src = {.store = store};
    if (srv_log_fold(&src, out, -1, 0, hooks, err) == SRV_WALK_FAILED)
        return err->code > 0 ? -(int)err->code : -ATT_ERR_INTERNAL;
    return 0;
}
