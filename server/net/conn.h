/* conn.h - one WebSocket connection of the "attune.v1" protocol: its send
 * queue (bounded: a reader too far behind is cut off), closes decided
 * outside its callback, its keepalive and its message rate.
 *
 * Ownership. A srv_conn is lws' per-session data (lws allocates and frees
 * it); it is linked into srv_server.conns from ESTABLISHED to CLOSED. It
 * embeds the srv_member the room service knows it by (room_service.h): the
 * shell sets its id, the room service everything else. conn.c never calls
 * into the room service: ws.c carries the outbox's requests here and tells
 * the room service when a member goes.
 *
 * Threads: the lws service thread only. */
#ifndef SRV_CONN_H
#define SRV_CONN_H

#include <libwebsockets.h>
#include <stdint.h>
#include "frame.h"
#include "room_id.h"
#include "room_service.h"

struct srv_server;

/* Keepalive: a peer silent for --ping-interval seconds gets a ping; one
 * still silent half an interval after the ping (at most this much, and at
 * least one sweep) is reaped as half-open. */
#define SRV_PONG_GRACE_MS 15000

typedef enum { CONN_AWAIT_HELLO, CONN_MEMBER, CONN_CLOSING } srv_conn_state;

typedef struct srv_conn {
    struct lws *wsi;
    struct srv_server *srv;
    srv_conn_state state;
    /* The room the upgrade URL named (/ws?room=ID), or "": a hello for
     * another room is refused (ws.c). */
    char url_room[SRV_ROOM_ID_MAX + 1];
    srv_member member;   /* member.id is the connection's id */
    lws_dll2_t all_link; /* srv->conns */
    /* Timers, checked by the server's once-a-second sweep (server.c) rather
     * than a sul each: lws keeps suls in a sorted list, an O(n) insert. All
     * in ms of the monotonic clock (srv_mono_ms). */
    int64_t hello_deadline_ms; /* AWAIT_HELLO: closed 4408 from then on */
    int64_t heard_at_ms;       /* last frame (data or pong) from the peer */
    int ping_due;              /* the next WRITEABLE sends a ping */
    int64_t ping_sent_ms;      /* when the sweep pinged it since, or 0 */
    srv_sendq q;
    /* reassembly of one incoming message */
    char *rx;
    size_t rx_len, rx_cap;
    int rx_binary;
    /* token bucket */
    double tokens;
    lws_usec_t tokens_at;
    /* a close decided outside this wsi's callback */
    int close_code;
    att_left_reason leave_reason;
} srv_conn;

static inline srv_conn *srv_conn_of(srv_member *m)
{
    return SRV_CONTAINER_OF(m, srv_conn, member);
}

/* Queues a frame (takes a new reference); enforces the queue bound. 0, or
 * -1 when the connection was cut off as a slow reader by this send (the
 * caller takes it out of its room: srv_room_detach). */
int srv_conn_send(srv_conn *conn, srv_frame *frame);
/* Queues an error reply {"type":"error",...} at once (a connection not in
 * a room: in a room, the room service's srv_room_reply_error keeps it
 * behind the room's commits); counts it by code. */
void srv_conn_send_error(srv_conn *conn, const char *id, att_code code, const char *message);
/* Starts a close: drops queued frames for a slow reader, queues bye(reason)
 * when reason is not NULL, closes with code once it is written. The
 * member's `left` event (if any) gets leave_reason (ws.c passes it on). */
void srv_conn_begin_close(srv_conn *conn, int code, const char *bye_reason,
                          att_left_reason leave_reason);
/* 1 when the token bucket allows one more message now. */
int srv_conn_rate_take(srv_conn *conn);
/* The peer was heard from (any frame, pong included). */
void srv_conn_heard(srv_conn *conn);
/* One pass over every connection at now_ms (monotonic): closes those past
 * their hello deadline (4408), pings the quiet ones, reaps the ones that
 * stayed silent after a ping. */
void srv_conns_sweep(struct srv_server *srv, int64_t now_ms);

#endif
