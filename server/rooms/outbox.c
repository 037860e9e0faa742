/* outbox.c - the room service's requests to the connections (outbox.h). */
#include "outbox.h"
#include "attune/event.h"

#include <stdlib.h>
#include <string.h>

void srv_outbox_reset(srv_outbox *ob)
{
    ob->n_items = 0;
    ob->n_msgs = 0;
    ob->bytes.len = 0;
    ob->dropped = 0;
}

void srv_outbox_free(srv_outbox *ob)
{
    free(ob->items);
    free(ob->msgs);
    att_buf_free(&ob->bytes);
    memset(ob, 0, sizeof *ob);
}

static int grow(void **arr, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return 0;
    size_t want = *cap ? *cap * 2 : 64;
    void *p = realloc(*arr, want * size);
    if (!p)
        return -1;
    *arr = p;
    *cap = want;
    return 0;
}

static int put_bytes(att_buf *b, const char *s, size_t len)
{
    if (att_buf_reserve(b, len) < 0)
        return -1;
    memcpy(b->data + b->len, s, len);
    b->len += len;
    return 0;
}

static int add_msg(srv_outbox *ob, srv_out_msg_kind kind, int64_t seq, size_t off, size_t len)
{
    if (grow((void **)&ob->msgs, &ob->cap_msgs, ob->n_msgs, sizeof *ob->msgs) < 0) {
        ob->dropped++;
        return -1;
    }
    ob->msgs[ob->n_msgs] = (srv_out_msg){.kind = kind, .seq = seq, .off = off, .len = len};
    return (int)ob->n_msgs++;
}

int srv_outbox_add_text(srv_outbox *ob, const char *text, size_t len)
{
    size_t off = ob->bytes.len;
    if (!text || put_bytes(&ob->bytes, text, len) < 0) {
        ob->dropped++;
        return -1;
    }
    return add_msg(ob, SRV_OUT_TEXT, 0, off, len);
}

int srv_outbox_add_event(srv_outbox *ob, int64_t seq, const char *payload, size_t len)
{
    size_t off = ob->bytes.len;
    size_t cut = att_event_wire_cut(payload, len);
    if (put_bytes(&ob->bytes, payload, cut) < 0 ||
        (cut < len && put_bytes(&ob->bytes, "}", 1) < 0)) {
        ob->bytes.len = off;
        ob->dropped++;
        return -1;
    }
    return add_msg(ob, SRV_OUT_EVENT, seq, off, ob->bytes.len - off);
}

int srv_outbox_add_event_again(srv_outbox *ob, int same_bytes, int64_t seq)
{
    if (same_bytes < 0 || (size_t)same_bytes >= ob->n_msgs)
        return -1;
    srv_out_msg m = ob->msgs[same_bytes];
    return add_msg(ob, SRV_OUT_EVENT, seq, m.off, m.len);
}

size_t srv_outbox_begin_text(srv_outbox *ob)
{
    return ob->bytes.len;
}

int srv_outbox_end_text(srv_outbox *ob, size_t start)
{
    return add_msg(ob, SRV_OUT_TEXT, 0, start, ob->bytes.len - start);
}

static int add_item(srv_outbox *ob, srv_out_item item)
{
    if (grow((void **)&ob->items, &ob->cap_items, ob->n_items, sizeof *ob->items) < 0) {
        ob->dropped++;
        return -1;
    }
    ob->items[ob->n_items++] = item;
    return 0;
}

int srv_outbox_send(srv_outbox *ob, struct srv_member *to, int msg)
{
    if (msg < 0)
        return -1;
    return add_item(ob, (srv_out_item){.kind = SRV_OUT_SEND, .to = to, .msg = (uint32_t)msg});
}

int srv_outbox_close(srv_outbox *ob, struct srv_member *to, int code, const char *bye,
                     att_left_reason leave)
{
    return add_item(
        ob,
        (srv_out_item){.kind = SRV_OUT_CLOSE, .to = to, .code = code, .bye = bye, .leave = leave});
}

int srv_outbox_room_changed(srv_outbox *ob, const char *room_id)
{
    int msg = srv_outbox_add_text(ob, room_id, strlen(room_id));
    if (msg < 0)
        return -1;
    return add_item(ob, (srv_out_item){.kind = SRV_OUT_ROOM_CHANGED, .msg = (uint32_t)msg});
}

void srv_outbox_forget(srv_outbox *ob, const struct srv_member *m)
{
    for (size_t i = 0; i < ob->n_items; i++)
        if (ob->items[i].to == m)
            ob->items[i].to = NULL;
}
