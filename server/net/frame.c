/* frame.c - refcounted frames and the send queue ring (see frame.h). */
#include "frame.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "attune/msg.h"
#include "ws_frame.h"

srv_frame *srv_frame_new(const char *text, size_t len)
{
    if (len > UINT32_MAX)
        return NULL;
    srv_frame *f = malloc(sizeof *f + LWS_PRE + len);
    if (!f)
        return NULL;
    f->refs = 1;
    f->len = (uint32_t)len;
    memcpy(f->data + LWS_PRE, text, len);
    return f;
}

srv_frame *srv_frame_from_json(const json_t *j)
{
    size_t len = 0;
    char *text = att_json_dump(j, &len);
    if (!text)
        return NULL;
    srv_frame *f = srv_frame_new(text, len);
    free(text);
    return f;
}

srv_frame *srv_frame_from_json_consume(json_t *j)
{
    srv_frame *f = j ? srv_frame_from_json(j) : NULL;
    json_decref(j);
    return f;
}

srv_frame *srv_frame_event(int64_t seq, const char *payload, size_t len)
{
    char tail[48];
    int tn = snprintf(tail, sizeof tail, ",\"seq\":%" PRId64 ",\"type\":\"event\"}", seq);
    static const char head[] = "{\"event\":";
    size_t total = sizeof head - 1 + len + (size_t)tn;
    if (total > UINT32_MAX)
        return NULL;
    srv_frame *f = malloc(sizeof *f + LWS_PRE + total);
    if (!f)
        return NULL;
    f->refs = 1;
    f->len = (uint32_t)total;
    unsigned char *p = f->data + LWS_PRE;
    memcpy(p, head, sizeof head - 1);
    memcpy(p + sizeof head - 1, payload, len);
    memcpy(p + sizeof head - 1 + len, tail, (size_t)tn);
    return f;
}

void srv_frame_unref(srv_frame *f)
{
    if (f && --f->refs == 0)
        free(f);
}

int srv_sendq_push(srv_sendq *q, srv_frame *f)
{
    if (q->count == q->cap) {
        uint32_t cap = q->cap ? q->cap * 2 : 8;
        srv_frame **ring = malloc(cap * sizeof *ring);
        if (!ring)
            return -1;
        for (uint32_t i = 0; i < q->count; i++)
            ring[i] = q->ring[(q->head + i) % q->cap];
        free(q->ring);
        q->ring = ring;
        q->cap = cap;
        q->head = 0;
    }
    q->ring[(q->head + q->count) % q->cap] = srv_frame_ref(f);
    q->count++;
    q->bytes += f->len;
    return 0;
}

srv_frame *srv_sendq_peek(const srv_sendq *q)
{
    return q->count ? q->ring[q->head] : NULL;
}

void srv_sendq_pop(srv_sendq *q)
{
    if (!q->count)
        return;
    srv_frame *f = q->ring[q->head];
    q->head = (q->head + 1) % q->cap;
    q->count--;
    q->bytes -= f->len;
    srv_frame_unref(f);
}

void srv_sendq_clear(srv_sendq *q, int release)
{
    while (q->count)
        srv_sendq_pop(q);
    q->head = 0;
    if (release) {
        free(q->ring);
        q->ring = NULL;
        q->cap = 0;
    }
}

size_t srv_sendq_pack(const srv_sendq *q, unsigned char *out, size_t cap, uint32_t *n_frames)
{
    size_t used = 0;
    uint32_t i = 0;
    for (; i < q->count; i++) {
        const srv_frame *f = q->ring[(q->head + i) % q->cap];
        size_t need = srv_ws_frame_header_len(f->len, 0) + f->len;
        if (need > cap - used)
            break;
        used += srv_ws_frame_put(out + used, SRV_WS_OP_TEXT, f->data + LWS_PRE, f->len, NULL);
    }
    *n_frames = i;
    return used;
}
