/* room_log.c - a room's events with the folded state after each, a page at
 * a time (see room_log.h). */
#include "room_log.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "attune/room.h"
#include "attune/state.h"

/* The therapist's state object has ~25 top-level keys; more means a writer
 * this file does not know, and the event then carries the whole state. */
#define MAX_TOP_KEYS 48

int srv_log_buf_put(att_buf *out, const char *text, size_t len)
{
    if (out->len + len + 1 > out->cap) {
        size_t cap = out->cap ? out->cap : 4096;
        while (cap < out->len + len + 1)
            cap *= 2;
        char *grown = realloc(out->data, cap);
        if (!grown)
            return -1;
        out->data = grown;
        out->cap = cap;
    }
    memcpy(out->data + out->len, text, len);
    out->len += len;
    out->data[out->len] = '\0';
    return 0;
}

static int put_str(att_buf *out, const char *text)
{
    return srv_log_buf_put(out, text, strlen(text));
}

/* One top-level member of a compact JSON object: the key with its quotes
 * and the value, as spans of the text. */
typedef struct {
    size_t key_at, key_len;     /* "key" */
    size_t value_at, value_len; /* value */
} member;

/* Splits the compact object text (the state writer's: no spaces, keys
 * without escapes) into its top-level members. Returns their count, or -1
 * when the text is not such an object or has too many. */
static int split_members(const char *t, size_t len, member out[MAX_TOP_KEYS])
{
    if (len < 2 || t[0] != '{' || t[len - 1] != '}')
        return -1;
    size_t i = 1;
    int n = 0;
    if (t[i] == '}')
        return 0;
    for (;;) {
        if (n == MAX_TOP_KEYS || t[i] != '"')
            return -1;
        size_t k = i++;
        while (i < len && t[i] != '"')
            i++;
        if (i + 1 >= len || t[i + 1] != ':')
            return -1;
        out[n].key_at = k;
        out[n].key_len = i + 1 - k;
        i += 2;
        size_t v = i;
        int depth = 0, in_string = 0;
        for (; i < len - 1; i++) {
            char c = t[i];
            if (in_string) {
                if (c == '\\')
                    i++;
                else if (c == '"')
                    in_string = 0;
            } else if (c == '"') {
                in_string = 1;
            } else if (c == '{' || c == '[') {
                depth++;
            } else if (c == '}' || c == ']') {
                depth--;
            } else if (c == ',' && depth == 0) {
                break;
            }
        }
        if (depth != 0 || in_string || i == v)
            return -1;
        out[n].value_at = v;
        out[n].value_len = i - v;
        n++;
        if (i >= len - 1)
            return n;
        i++; /* the comma */
    }
}

typedef struct {
    att_room *room;
    const srv_log_page_opts *opts;
    att_buf *out;
    size_t page_start;
    int written;
    att_buf prev, cur; /* the state texts after the previous and this event */
    member prev_m[MAX_TOP_KEYS], cur_m[MAX_TOP_KEYS];
    int prev_n;
} page_ctx;

/* Appends the state after this event: whole for the page's first event (or
 * a state this file cannot split), else the members that changed. */
static int put_state(page_ctx *c)
{
    c->cur.len = 0;
    if (att_state_write(c->room, ATT_ROLE_THERAPIST, 0, &c->cur) < 0)
        return -1;
    int n = split_members(c->cur.data, c->cur.len, c->cur_m);
    int same_keys = n >= 0 && n == c->prev_n;
    for (int k = 0; same_keys && k < n; k++)
        same_keys = c->cur_m[k].key_len == c->prev_m[k].key_len &&
                    memcmp(c->cur.data + c->cur_m[k].key_at, c->prev.data + c->prev_m[k].key_at,
                           c->cur_m[k].key_len) == 0;
    int rc;
    if (!c->written || !same_keys) {
        rc = put_str(c->out, ",\"state\":") || srv_log_buf_put(c->out, c->cur.data, c->cur.len);
    } else {
        rc = put_str(c->out, ",\"patch\":{");
        int first = 1;
        for (int k = 0; rc == 0 && k < n; k++) {
            const member *a = &c->cur_m[k], *b = &c->prev_m[k];
            if (a->value_len == b->value_len &&
                memcmp(c->cur.data + a->value_at, c->prev.data + b->value_at, a->value_len) == 0)
                continue;
            rc = (first ? 0 : put_str(c->out, ",")) ||
                 srv_log_buf_put(c->out, c->cur.data + a->key_at,
                                 a->value_at - a->key_at + a->value_len);
            first = 0;
        }
        rc = rc || put_str(c->out, "}");
    }
    att_buf t = c->prev;
    c->prev = c->cur;
    c->cur = t;
    memcpy(c->prev_m, c->cur_m, sizeof c->prev_m);
    c->prev_n = n;
    return rc ? -1 : 0;
}

/* After the fold took the event: the event as stored, then its state. */
static srv_walk on_page_event(const srv_stored_event *ev, json_t *object, const att_room *room,
                              void *arg, att_error *err)
{
    (void)object;
    (void)room;
    page_ctx *c = arg;
    char head[48];
    int hn = snprintf(head, sizeof head, "%s{\"seq\":%" PRId64 ",\"event\":", c->written ? "," : "",
                      ev->seq);
    /* The payload parsed as an event object (the fold read it), so it goes
     * out as stored, less the command id (its sender's alone; event.h). */
    size_t cut = att_event_wire_cut(ev->payload, ev->len);
    if (srv_log_buf_put(c->out, head, (size_t)hn) || srv_log_buf_put(c->out, ev->payload, cut) ||
        (cut < ev->len && put_str(c->out, "}")) || (c->opts->with_states && put_state(c) < 0) ||
        put_str(c->out, "}")) {
        att_fail(err, ATT_ERR_INTERNAL, "room log: out of memory");
        return SRV_WALK_FAILED;
    }
    c->written++;
    /* Past the byte bound: the page ends after this event. */
    return c->out->len - c->page_start >= c->opts->max_bytes ? SRV_WALK_STOP : SRV_WALK_CONTINUE;
}

int srv_room_log_fold(const srv_log_source *src, att_room *room, int64_t upto_seq, att_error *err)
{
    if (upto_seq <= room->seq)
        return 0;
    if (srv_log_fold(src, room, upto_seq, 0, NULL, err) == SRV_WALK_FAILED)
        return err->code > 0 ? -(int)err->code : -ATT_ERR_INTERNAL;
    if (room->seq != upto_seq)
        return att_fail(err, ATT_ERR_INTERNAL, "room log: %s has %" PRId64 " events, not %" PRId64,
                        room->room_id, room->seq, upto_seq);
    return 0;
}

int srv_room_log_page(const srv_log_source *src, att_room *room, int64_t upto_seq,
                      const srv_log_page_opts *opts, att_buf *out, att_error *err)
{
    page_ctx c = {.room = room, .opts = opts, .out = out, .page_start = out->len};
    int rc = put_str(out, "[") ? -ATT_ERR_INTERNAL : 0;
    if (rc == 0 && upto_seq > room->seq) {
        srv_fold_hooks hooks = {.after = on_page_event, .arg = &c};
        if (srv_log_fold(src, room, upto_seq, opts->limit, &hooks, err) == SRV_WALK_FAILED)
            rc = err->code > 0 ? -(int)err->code : -ATT_ERR_INTERNAL;
    }
    att_buf_free(&c.prev);
    att_buf_free(&c.cur);
    if (rc == 0 && put_str(out, "]"))
        rc = -ATT_ERR_INTERNAL;
    if (rc == -ATT_ERR_INTERNAL && !err->message[0])
        att_fail(err, ATT_ERR_INTERNAL, "room log: out of memory");
    return rc;
}
