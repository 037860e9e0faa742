/* outbox.h - what the room service asks of the connections: "send this
 * message to this member", "close this member with this code", "this room's
 * summary changed". The room service is the only writer; the network shell
 * (net/ws.c, srv_ws_drain) is the only reader, and drains it after every
 * call into the service, in order, into the members' send queues.
 *
 * Ownership. The outbox owns its three arrays and keeps them between
 * drains (srv_outbox_reset empties them without freeing), so a steady turn
 * allocates nothing here: the bytes of every message (an ack, a state, an
 * event's stored payload) are copied into `bytes`; a message is written
 * once and may be sent to many members (one event frame per audience, as
 * the shell builds one srv_frame per message). A member is named by the
 * srv_member the shell embedded in its connection (room_service.h); an
 * item whose member went away before the drain (srv_rooms_forget_member)
 * has `to` set to NULL and is skipped.
 *
 * Threads: the service thread only (the room service asserts it). */
#ifndef SRV_OUTBOX_H
#define SRV_OUTBOX_H

#include <stddef.h>
#include <stdint.h>
#include "attune/buf.h"
#include "attune/room.h"
#include "attune/types.h"

struct srv_member;

typedef enum {
    SRV_OUT_TEXT,  /* bytes are the whole message */
    SRV_OUT_EVENT, /* bytes are a stored event; the frame is {"event":..,"seq":seq,...} */
} srv_out_msg_kind;

typedef struct {
    srv_out_msg_kind kind;
    int64_t seq; /* SRV_OUT_EVENT: in the recipients' own numbering */
    size_t off, len;
} srv_out_msg;

typedef enum {
    SRV_OUT_SEND,         /* msg to `to` */
    SRV_OUT_CLOSE,        /* close `to`: code, bye reason (may be NULL), its `left` reason */
    SRV_OUT_ROOM_CHANGED, /* msg holds a room id whose summary changed (the dashboards) */
} srv_out_kind;

typedef struct {
    srv_out_kind kind;
    struct srv_member *to;
    uint32_t msg;
    int code;
    const char *bye; /* a static string */
    att_left_reason leave;
} srv_out_item;

typedef struct {
    srv_out_item *items;
    size_t n_items, cap_items;
    srv_out_msg *msgs;
    size_t n_msgs, cap_msgs;
    att_buf bytes;
    /* Messages lost since the last drain for want of memory; the shell
     * closes nobody for them (the member resumes from the log next time). */
    uint64_t dropped;
} srv_outbox;

/* A message's bytes (valid until the next append to the outbox). */
static inline const char *srv_outbox_text(const srv_outbox *ob, const srv_out_msg *m)
{
    return ob->bytes.data + m->off;
}

/* Empties the outbox for the next turn, keeping its memory. */
void srv_outbox_reset(srv_outbox *ob);
void srv_outbox_free(srv_outbox *ob);

/* Writers (the room service). Each returns the new message's index, or -1
 * when out of memory (counted in `dropped`). */
int srv_outbox_add_text(srv_outbox *ob, const char *text, size_t len);
/* payload is a stored event (att_event_encode_stored): what goes out is
 * its wire form, without the command id only its sender's table keeps. */
int srv_outbox_add_event(srv_outbox *ob, int64_t seq, const char *payload, size_t len);
/* A message of the same bytes as message `same_bytes` (an event seen by
 * several audiences, each in its own numbering): the bytes are not copied
 * again. */
int srv_outbox_add_event_again(srv_outbox *ob, int same_bytes, int64_t seq);
/* Starts a text message whose bytes the caller appends to ob->bytes (for
 * att_state_write); srv_outbox_end_text closes it. */
size_t srv_outbox_begin_text(srv_outbox *ob);
int srv_outbox_end_text(srv_outbox *ob, size_t start);
/* 0, or -1 when out of memory. */
int srv_outbox_send(srv_outbox *ob, struct srv_member *to, int msg);
int srv_outbox_close(srv_outbox *ob, struct srv_member *to, int code, const char *bye,
                     att_left_reason leave);
int srv_outbox_room_changed(srv_outbox *ob, const char *room_id);
/* Every item addressed to m is skipped from now on (its connection is
 * going away before the next drain). */
void srv_outbox_forget(srv_outbox *ob, const struct srv_member *m);

#endif
