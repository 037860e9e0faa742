/* room_events.c - the dashboard's pushed room updates (see room_events.h). */
#include "room_events.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "http_reply.h"
#include "log.h"

/* Rooms whose owner is remembered (direct-mapped by a hash of the id). */
#define OWNER_CACHE 512
#define OWNER_CACHE_ROOM_BYTES 80

typedef struct {
    char room[OWNER_CACHE_ROOM_BYTES]; /* "" when empty */
    int64_t owner;                     /* 0: none */
} owner_entry;

struct srv_events_stream {
    lws_dll2_t link; /* in srv_room_events.streams */
    struct lws *wsi;
    uint64_t session_id;
    int64_t account_id;
    srv_account_kind kind;
    int headers_sent;
    int due;    /* a new list is owed: DUE_CHANGED, or DUE_POLL (only if it differs) */
    int ending; /* the session ended: close at the next WRITEABLE */
    int64_t last_list, last_write;
    uint64_t sent_hash; /* FNV-1a of the last list sent */
    char *out;          /* LWS_PRE headroom, then out_len bytes being written */
    size_t out_len, out_sent;
};

struct srv_room_events {
    srv_accounts *accounts;
    srv_events_list_fn list;
    void *list_arg;
    lws_dll2_owner_t streams;
    owner_entry owners[OWNER_CACHE];
    int64_t poll_ms; /* 0: this node sees every change (one node) */
};

enum { DUE_CHANGED = 1, DUE_POLL = 2 };

static uint64_t text_hash(const char *text, size_t len)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a 64 */
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)text[i]) * 1099511628211ull;
    return h;
}

void srv_room_events_poll_shared(srv_room_events *e, int64_t every_ms)
{
    e->poll_ms = every_ms > 0 ? every_ms : 0;
}

int srv_room_events_new(srv_accounts *accounts, srv_events_list_fn list, void *list_arg,
                        srv_room_events **out, att_error *err)
{
    srv_room_events *e = calloc(1, sizeof *e);
    if (!e)
        return att_fail(err, ATT_ERR_INTERNAL, "room events: out of memory");
    e->accounts = accounts;
    e->list = list;
    e->list_arg = list_arg;
    *out = e;
    return 0;
}

static void stream_free(srv_events_stream *s)
{
    free(s->out);
    free(s);
}

void srv_room_events_free(srv_room_events *e)
{
    if (!e)
        return;
    lws_start_foreach_dll_safe(struct lws_dll2 *, d, d1, lws_dll2_get_head(&e->streams))
    {
        srv_events_stream *s = lws_container_of(d, srv_events_stream, link);
        lws_dll2_remove(&s->link);
        stream_free(s);
    }
    lws_end_foreach_dll_safe(d, d1);
    free(e);
}

int srv_room_events_open(srv_room_events *e, struct lws *wsi, const srv_session_info *sess,
                         int64_t now_mono, srv_events_stream **out, att_error *err)
{
    srv_events_stream *s = calloc(1, sizeof *s);
    if (!s)
        return att_fail(err, ATT_ERR_INTERNAL, "room events: out of memory");
    s->wsi = wsi;
    s->session_id = sess->id;
    s->account_id = sess->account_id;
    s->kind = sess->kind;
    s->due = DUE_CHANGED;
    s->last_write = now_mono;
    lws_dll2_add_tail(&s->link, &e->streams);
    lws_callback_on_writable(wsi);
    *out = s;
    return 0;
}

void srv_room_events_close(srv_room_events *e, srv_events_stream *s)
{
    (void)e;
    if (!s)
        return;
    lws_dll2_remove(&s->link);
    stream_free(s);
}

static int write_headers(srv_events_stream *s)
{
    if (srv_http_write_headers(s->wsi, HTTP_STATUS_OK, "text/event-stream",
                               LWS_ILLEGAL_HTTP_CONTENT_LEN, NULL) < 0)
        return -1;
    /* A stream has no end of its own: no request deadline applies. */
    lws_set_timeout(s->wsi, NO_PENDING_TIMEOUT, 0);
    return 0;
}

/* Puts text (with LWS_PRE headroom) as the bytes to write. */
static int queue_text(srv_events_stream *s, const char *prefix, const char *body, size_t body_len,
                      const char *suffix)
{
    size_t a = strlen(prefix), c = strlen(suffix);
    char *out = malloc(LWS_PRE + a + body_len + c);
    if (!out)
        return -1;
    memcpy(out + LWS_PRE, prefix, a);
    if (body_len)
        memcpy(out + LWS_PRE + a, body, body_len);
    memcpy(out + LWS_PRE + a + body_len, suffix, c);
    free(s->out);
    s->out = out;
    s->out_len = a + body_len + c;
    s->out_sent = 0;
    return 0;
}

int srv_room_events_writeable(srv_room_events *e, srv_events_stream *s, int64_t now_mono)
{
    if (s->ending)
        return -1;
    if (!s->headers_sent) {
        if (write_headers(s) < 0)
            return -1;
        s->headers_sent = 1;
        lws_callback_on_writable(s->wsi);
        return 0;
    }
    if (!s->out) {
        if (s->due && now_mono - s->last_list >= SRV_EVENTS_MIN_INTERVAL_MS) {
            att_error err = {0};
            size_t len = 0;
            char *list = e->list(e->list_arg, s->account_id, s->kind, &len, &err);
            if (!list) {
                srv_log("error", "room_events_failed", "{s:s}", "error", err.message);
                return -1;
            }
            uint64_t hash = text_hash(list, len);
            int same = s->due == DUE_POLL && hash == s->sent_hash;
            /* Compact JSON has no raw newline, so the list is one data line. */
            int rc = same ? 0 : queue_text(s, "event: rooms\ndata: ", list, len, "\n\n");
            free(list);
            if (rc < 0)
                return -1;
            s->due = 0;
            s->last_list = now_mono;
            if (same)
                return 0;
            s->sent_hash = hash;
        } else if (now_mono - s->last_write >= SRV_EVENTS_KEEPALIVE_MS) {
            if (queue_text(s, ": keepalive\n\n", "", 0, "") < 0)
                return -1;
        } else {
            return 0;
        }
    }
    /* The stream's body never ends: no piece is the final one. */
    int rc = srv_http_write_piece(s->wsi, s->out, s->out_len, &s->out_sent, 0);
    if (rc < 0)
        return -1;
    s->last_write = now_mono;
    if (rc == 1) {
        free(s->out);
        s->out = NULL;
    }
    return 0;
}

static unsigned owner_slot(const char *room)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)room; *p; p++)
        h = (h ^ *p) * 16777619u;
    return h % OWNER_CACHE;
}

/* The room's owner id (0 for none), from the cache or the database. */
static int64_t owner_of(srv_room_events *e, const char *room)
{
    owner_entry *o = &e->owners[owner_slot(room)];
    if (o->room[0] && strcmp(o->room, room) == 0)
        return o->owner;
    int64_t owner = 0;
    att_error err = {0};
    int rc = srv_accounts_get_owner_id(e->accounts, room, &owner, &err);
    if (rc < 0 && rc != -ATT_ERR_NOT_FOUND)
        return -1; /* unknown: every therapist's stream refreshes */
    if (rc < 0)
        owner = 0;
    if (strlen(room) < sizeof o->room) {
        snprintf(o->room, sizeof o->room, "%s", room);
        o->owner = owner;
    }
    return owner;
}

void srv_room_events_room_changed(srv_room_events *e, const char *room_id)
{
    if (!e || !e->streams.count)
        return;
    int64_t owner = owner_of(e, room_id);
    lws_start_foreach_dll(struct lws_dll2 *, d, lws_dll2_get_head(&e->streams))
    {
        srv_events_stream *s = lws_container_of(d, srv_events_stream, link);
        if (s->kind == SRV_ACCOUNT_SUPERVISOR || owner < 0 || s->account_id == owner)
            s->due = DUE_CHANGED;
    }
    lws_end_foreach_dll(d);
}

void srv_room_events_account_changed(srv_room_events *e, int64_t account_id)
{
    if (!e)
        return;
    lws_start_foreach_dll(struct lws_dll2 *, d, lws_dll2_get_head(&e->streams))
    {
        srv_events_stream *s = lws_container_of(d, srv_events_stream, link);
        if (s->account_id == account_id)
            s->due = DUE_CHANGED;
    }
    lws_end_foreach_dll(d);
}

void srv_room_events_session_ended(srv_room_events *e, uint64_t session_id)
{
    if (!e)
        return;
    lws_start_foreach_dll(struct lws_dll2 *, d, lws_dll2_get_head(&e->streams))
    {
        srv_events_stream *s = lws_container_of(d, srv_events_stream, link);
        if (s->session_id == session_id) {
            s->ending = 1;
            lws_callback_on_writable(s->wsi);
        }
    }
    lws_end_foreach_dll(d);
}

void srv_room_events_tick(srv_room_events *e, int64_t now_mono)
{
    if (!e || !e->streams.count)
        return;
    lws_start_foreach_dll(struct lws_dll2 *, d, lws_dll2_get_head(&e->streams))
    {
        srv_events_stream *s = lws_container_of(d, srv_events_stream, link);
        /* Rooms other nodes serve change without telling this one: their
         * summaries in the shared store are read again every poll_ms. */
        if (e->poll_ms && !s->due && now_mono - s->last_list >= e->poll_ms)
            s->due = DUE_POLL;
        if (s->headers_sent && !s->out &&
            ((s->due && now_mono - s->last_list >= SRV_EVENTS_MIN_INTERVAL_MS) ||
             now_mono - s->last_write >= SRV_EVENTS_KEEPALIVE_MS))
            lws_callback_on_writable(s->wsi);
    }
    lws_end_foreach_dll(d);
}

size_t srv_room_events_count(const srv_room_events *e)
{
    return e ? e->streams.count : 0;
}
