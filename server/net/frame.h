/* frame.h - outgoing WebSocket text frames and the bounded per-connection
 * send queue.
 *
 * A srv_frame is one encoded server message with LWS_PRE bytes of headroom
 * for lws' frame header. Frames are reference counted so one event frame can
 * sit in many members' queues; the last srv_frame_unref frees it. A
 * srv_sendq holds references in FIFO order and counts their bytes, so the
 * caller can enforce the slow-reader bound. Everything here runs on the lws
 * service thread only (the counts are not atomic). */
#ifndef SRV_FRAME_H
#define SRV_FRAME_H

#include <jansson.h>
#include <libwebsockets.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint32_t refs;
    uint32_t len;
    unsigned char data[]; /* LWS_PRE headroom, then len bytes of payload */
} srv_frame;

static inline unsigned char *srv_frame_payload(srv_frame *f)
{
    return f->data + LWS_PRE;
}

/* New frame (refs = 1) holding a copy of text; NULL on allocation failure. */
srv_frame *srv_frame_new(const char *text, size_t len);
/* New frame holding json dumped with att_json_dump (sorted, compact); does
 * not consume j. NULL on failure. */
srv_frame *srv_frame_from_json(const json_t *j);
/* Same, and releases j (which may be NULL: then returns NULL). */
srv_frame *srv_frame_from_json_consume(json_t *j);
/* The frame {"event":<payload>,"seq":N,"type":"event"} exactly as
 * att_msg_event + att_json_dump would write it, without re-encoding the
 * stored event JSON. */
srv_frame *srv_frame_event(int64_t seq, const char *payload, size_t len);

static inline srv_frame *srv_frame_ref(srv_frame *f)
{
    f->refs++;
    return f;
}
void srv_frame_unref(srv_frame *f);

typedef struct {
    srv_frame **ring;
    uint32_t cap, head, count;
    size_t bytes;
} srv_sendq;

/* Takes a new reference to f. Returns 0 or -1 on allocation failure. */
int srv_sendq_push(srv_sendq *q, srv_frame *f);
/* The oldest frame (borrowed), or NULL. */
srv_frame *srv_sendq_peek(const srv_sendq *q);
/* Drops the oldest frame's reference. */
void srv_sendq_pop(srv_sendq *q);
/* Drops every reference; keeps the ring for reuse unless release is set. */
void srv_sendq_clear(srv_sendq *q, int release);

/* Writes the oldest queued frames into out as complete RFC 6455 text frames
 * (FIN, opcode 1, no mask, no extensions; written by srv_ws_frame_put,
 * ws_frame.h), as many as fit in cap bytes, and returns the bytes written;
 * *n_frames says how many frames (0 when even the oldest does not fit). The
 * frames stay queued: pop them once written. This lets one WRITEABLE send a
 * member's ack, events and state with one send() instead of one each; it
 * is correct only because no connection negotiates an extension (see
 * ws_frame.h). */
size_t srv_sendq_pack(const srv_sendq *q, unsigned char *out, size_t cap, uint32_t *n_frames);

#endif
