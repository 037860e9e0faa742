/* store.c - store.h's functions, dispatched to the store behind them (the
 * SQLite or the PostgreSQL one) through its srv_store_ops table
 * (store_backend.h). No state of its own beyond the two small wrappers. */
#include "store_backend.h"

#include <stdlib.h>
#include <string.h>
#include "clock.h"
#include "seal.h"

struct srv_store_reader {
    const struct srv_store_ops *ops;
    void *impl; /* the backend's reader, owned */
};

int srv_store_wrap(const struct srv_store_ops *ops, void *impl, srv_store **out, att_error *err)
{
    *out = NULL;
    if (!ops || !impl)
        return att_fail(err, ATT_ERR_INTERNAL, "store: no backend to wrap");
    srv_store *s = calloc(1, sizeof *s);
    if (!s)
        return att_fail(err, ATT_ERR_INTERNAL, "store: out of memory");
    s->ops = ops;
    s->impl = impl;
    *out = s;
    return 0;
}

void *srv_store_impl(srv_store *s, const struct srv_store_ops *ops)
{
    return s && s->ops == ops ? s->impl : NULL;
}

int srv_store_start(srv_store *s, int window_us, srv_store_notify_fn notify,
                    srv_store_discard_fn discard, void *arg, att_error *err)
{
    return s->ops->start(s->impl, window_us, notify, discard, arg, err);
}

void srv_store_close(srv_store *s)
{
    if (!s)
        return;
    s->ops->close(s->impl);
    free(s);
}

int srv_store_create_room(srv_store *s, const srv_store_room *room, const char *first_event,
                          size_t len, att_error *err)
{
    return s->ops->create_room(s->impl, room, first_event, len, err);
}

int srv_store_get_room(srv_store *s, const char *id, srv_store_room *out, att_error *err)
{
    return s->ops->get_room(s->impl, id, out, err);
}

int srv_store_list_rooms(srv_store *s, int (*fn)(const srv_store_room *room, void *arg), void *arg,
                         att_error *err)
{
    return s->ops->list_rooms(s->impl, fn, arg, err);
}

srv_walk srv_store_walk_events(srv_store *s, const char *room_id, int64_t after_seq,
                               int64_t upto_seq, int limit, srv_stored_event_fn fn, void *arg,
                               att_error *err)
{
    return s->ops->walk_events(s->impl, room_id, after_seq, upto_seq, limit, fn, arg, err);
}

int srv_store_reader_open(srv_store *s, srv_store_reader **out, att_error *err)
{
    *out = NULL;
    srv_store_reader *r = calloc(1, sizeof *r);
    if (!r)
        return att_fail(err, ATT_ERR_INTERNAL, "store: out of memory");
    r->ops = s->ops;
    int rc = s->ops->reader_open(s->impl, &r->impl, err);
    if (rc < 0) {
        free(r);
        return rc;
    }
    *out = r;
    return 0;
}

void srv_store_reader_close(srv_store_reader *r)
{
    if (!r)
        return;
    r->ops->reader_close(r->impl);
    free(r);
}

srv_walk srv_store_reader_walk_events(srv_store_reader *r, const char *room_id, int64_t after_seq,
                                      int64_t upto_seq, int limit, srv_stored_event_fn fn,
                                      void *arg, att_error *err)
{
    return r->ops->reader_walk_events(r->impl, room_id, after_seq, upto_seq, limit, fn, arg, err);
}

int srv_store_last_seq(srv_store *s, const char *room_id, int64_t *out, att_error *err)
{
    return s->ops->last_seq(s->impl, room_id, out, err);
}

int srv_store_batch_prepare(srv_store_batch *b, att_error *err)
{
    if (b->n < 1 || b->n > SRV_STORE_MAX_BATCH || b->first_seq < 1)
        return att_fail(err, ATT_ERR_INTERNAL, "store: malformed batch");
    for (int i = 0; i < b->n; i++)
        if (!b->type[i] || !b->type[i][0] || strlen(b->type[i]) > SRV_SEAL_TYPE_MAX)
            return att_fail(err, ATT_ERR_INTERNAL, "store: batch event %d has no type", i);
    b->next = NULL;
    b->result = 0;
    b->fenced = 0;
    b->queued_ns = srv_mono_ns();
    return 0;
}

int srv_store_append(srv_store *s, srv_store_batch *batch, att_error *err)
{
    return s->ops->append(s->impl, batch, err);
}

srv_store_batch *srv_store_take_completed(srv_store *s)
{
    return s->ops->take_completed(s->impl);
}

int srv_store_get_summary(srv_store *s, const char *room_id, char **out, att_error *err)
{
    return s->ops->get_summary(s->impl, room_id, out, err);
}

int srv_store_scan_stale_summaries(srv_store *s, const char *after_id, int limit,
                                   char last_out[SRV_STORE_ID_BYTES + 1], int *n_out,
                                   int (*fn)(const char *room_id, int64_t last_seq, void *arg),
                                   void *arg, att_error *err)
{
    return s->ops->scan_stale_summaries(s->impl, after_id, limit, last_out, n_out, fn, arg, err);
}

int srv_store_put_summaries(srv_store *s, const srv_store_summary *items, size_t n, att_error *err)
{
    return s->ops->put_summaries(s->impl, items, n, err);
}

int srv_store_get_setting(srv_store *s, const char *key, char *out, size_t out_size, att_error *err)
{
    return s->ops->get_setting(s->impl, key, out, out_size, err);
}

int srv_store_set_setting(srv_store *s, const char *key, const char *value, att_error *err)
{
    return s->ops->set_setting(s->impl, key, value, err);
}

void srv_store_get_stats(srv_store *s, srv_store_stats *out)
{
    s->ops->get_stats(s->impl, out);
}

int srv_store_verify_room(srv_store *s, const char *room, srv_chain_report *out, att_error *err)
{
    return s->ops->verify_room(s->impl, room, out, err);
}

int srv_store_erase_room(srv_store *s, const char *room, att_error *err)
{
    return s->ops->erase_room(s->impl, room, err);
}

void srv_store_fail_nth_batch(srv_store *s, int nth)
{
    s->ops->fail_nth_batch(s->impl, nth);
}

int srv_store_acquire_room(srv_store *s, const char *room, srv_store_lease *out, att_error *err)
{
    return s->ops->acquire_room(s->impl, room, out, err);
}

int srv_store_release_room(srv_store *s, const char *room, att_error *err)
{
    return s->ops->release_room(s->impl, room, err);
}

int srv_store_take_wanted(srv_store *s, char (*out)[SRV_STORE_ID_BYTES + 1], int max)
{
    return s->ops->take_wanted(s->impl, out, max);
}

int srv_store_node_alive(srv_store *s)
{
    return s->ops->node_alive(s->impl);
}

const char *srv_store_kind(const srv_store *s)
{
    return s->ops->kind;
}

const char *srv_store_node_id(const srv_store *s)
{
    if (!s->ops->node_id)
        return "";
    const char *id = s->ops->node_id(s->impl);
    return id ? id : "";
}
