/* ws.c - the lws protocol "attune.v1" (ws.h): connection lifecycle,
 * reassembly of incoming messages, hello/authentication, dispatch to the
 * room service, the drain of its outbox into the send queues, and the
 * WRITEABLE callback (the only place that writes WebSocket frames). Runs on
 * the lws service thread. */
#include "ws.h"

#include <stdlib.h>
#include <string.h>
#include "api.h"
#include "attune/names.h"
#include "conn.h"
#include "invites.h"
#include "log.h"
#include "server.h"
#include "sessions.h"
#include "tickets.h"
#include "http.h"

static void reject_token(srv_conn *conn, const att_msg *m, const char *why)
{
    srv_server *srv = conn->srv;
    srv->metrics.bad_token_closes++;
    srv_log("info", "bad_token", "{s:I,s:s,s:s}", "conn", (json_int_t)conn->member.id, "why", why,
            "peer", srv_http_conn_addr(conn->wsi));
    /* Nothing else disclosed: the client learns only that it is refused. */
    srv_conn_send_error(conn, m->has_id ? m->id : NULL, ATT_ERR_BAD_TOKEN,
                        "this invitation is not valid");
    srv_conn_begin_close(conn, SRV_CLOSE_BAD_TOKEN, "bad_token", ATT_LEFT_CLOSED);
}

/* A staff ticket (tickets.h): single use, fresh, and its login session
 * still live. Fills claims (room and role) like a token would. */
static int take_ticket(srv_conn *conn, const char *ticket, int64_t now, srv_token_claims *claims,
                       srv_ticket_grant *grant, att_error *err)
{
    srv_server *srv = conn->srv;
    if (!srv_tickets_take(srv->tickets, ticket, now, grant))
        return att_fail(err, ATT_ERR_BAD_TOKEN, "ticket unknown, used or expired");
    if (!srv_sessions_get(srv_api_sessions(srv), grant->login_session, now, NULL))
        return att_fail(err, ATT_ERR_BAD_TOKEN, "ticket's login session has ended");
    /* A supervisor's invitation may have been taken back since. */
    if (grant->role == ATT_ROLE_OBSERVER &&
        srv_invites_is_observer(srv->invites, grant->room, grant->account_id, err) != 1)
        return att_fail(err, ATT_ERR_BAD_TOKEN, "ticket's observer is no longer invited");
    memset(claims, 0, sizeof *claims);
    snprintf(claims->room, sizeof claims->room, "%s", grant->room);
    claims->role = grant->role;
    return 0;
}

/* The send queue's room for catch-up: up to half the slow-reader bound. */
static size_t replay_budget(const srv_conn *conn)
{
    size_t half = conn->srv->cfg->max_queue_bytes / 2;
    return conn->q.bytes < half ? half - conn->q.bytes : 0;
}

static void replay_more(srv_conn *conn)
{
    srv_server *srv = conn->srv;
    srv_room_replay_step(srv->rooms, &conn->member, replay_budget(conn));
    srv_ws_drain(srv);
    lws_callback_on_writable(conn->wsi);
}

static void do_hello(srv_conn *conn, att_msg *m)
{
    srv_server *srv = conn->srv;
    srv_token_claims claims;
    srv_ticket_grant grant = {0};
    att_error err = {0};
    int64_t now = srv_now_ms();
    int64_t invite_id = 0;
    /* A link: the MAC, then its record (revoked, expired or unrecorded
     * links are refused alike). A ticket: the staff member's login. */
    int rc = m->ticket ? take_ticket(conn, m->ticket, now, &claims, &grant, &err)
                       : srv_invites_verify(srv->invites, &srv->key, m->token, now, &claims,
                                            &invite_id, &err);
    if (rc < 0 && !m->ticket && err.code != ATT_ERR_BAD_TOKEN) {
        /* The invitation's record could not be read (the shared database
         * is away, e.g. failing over): not the link's fault, so not 4401,
         * after which a client gives up; 4503, and it comes back after its
         * backoff (PROTOCOL.md, room_moved). */
        srv_log("warn", "hello_unverified", "{s:I,s:s}", "conn", (json_int_t)conn->member.id,
                "error", err.message);
        srv_conn_send_error(conn, m->has_id ? m->id : NULL, ATT_ERR_INTERNAL,
                            "cannot check the invitation right now; reconnect in a moment");
        srv_conn_begin_close(conn, SRV_CLOSE_ROOM_MOVED, SRV_BYE_ROOM_MOVED, ATT_LEFT_CLOSED);
        return;
    }
    if (rc < 0) {
        reject_token(conn, m, err.message);
        return;
    }
    if (conn->url_room[0] && strcmp(conn->url_room, claims.room) != 0) {
        /* Routed by the URL's room to a room the link does not open: never
         * joined, and final for the client (PROTOCOL.md, wrong_room). */
        srv->metrics.bad_token_closes++;
        srv_log("info", "wrong_room", "{s:I,s:s,s:s}", "conn", (json_int_t)conn->member.id,
                "url_room", conn->url_room, "peer", srv_http_conn_addr(conn->wsi));
        srv_conn_send_error(conn, m->has_id ? m->id : NULL, ATT_ERR_WRONG_ROOM,
                            "this invitation is for another room than the URL's room=");
        srv_conn_begin_close(conn, SRV_CLOSE_BAD_TOKEN, SRV_BYE_WRONG_ROOM, ATT_LEFT_CLOSED);
        return;
    }
    srv_room *r = srv_rooms_get(srv->rooms, claims.room, &err);
    if (!r && err.code == ATT_ERR_ROOM_BUSY) {
        /* Another node serves the room, or this one is letting it go: the
         * client reconnects after its backoff (PROTOCOL.md, room_moved). */
        srv_conn_begin_close(conn, SRV_CLOSE_ROOM_MOVED, SRV_BYE_ROOM_MOVED, ATT_LEFT_CLOSED);
        return;
    }
    if (!r) {
        reject_token(conn, m, err.code == ATT_ERR_NOT_FOUND ? "room not found" : err.message);
        return;
    }
    if (srv_rooms_partner_expired(srv->rooms, r, claims.role, now)) {
        reject_token(conn, m, "the link's session ended more than --link-grace ago");
        return;
    }
    srv_member *mb = &conn->member;
    mb->invite_id = invite_id;
    mb->login_session = m->ticket ? grant.login_session : 0;
    mb->account_id = m->ticket ? grant.account_id : 0;
    int64_t from = m->resume_from > 0 ? m->resume_from : 0;
    if (srv_room_join(srv->rooms, r, mb, claims.role, m->has_id ? m->id : NULL, from) < 0) {
        srv_conn_send_error(conn, m->has_id ? m->id : NULL, ATT_ERR_INTERNAL, "out of memory");
        return;
    }
    conn->state = CONN_MEMBER;
    srv_log("info", "hello", "{s:I,s:s,s:s,s:I,s:s}", "conn", (json_int_t)mb->id, "room",
            srv_room_id(r), "role", att_role_name(claims.role), "resume_from", (json_int_t)from,
            "peer", srv_http_conn_addr(conn->wsi));
    srv_ws_drain(srv); /* the hello ack before the catch-up */
    replay_more(conn);
}

/* An error to conn: behind its room's in-flight commits when it is in
 * one (the room service keeps the order), else at once. */
static void send_error(srv_conn *conn, const char *id, att_code code, const char *message)
{
    if (conn->member.room)
        srv_room_reply_error(conn->srv->rooms, &conn->member, id, code, message);
    else
        srv_conn_send_error(conn, id, code, message);
}

static void handle_message(srv_conn *conn, const char *buf, size_t len)
{
    srv_server *srv = conn->srv;
    srv->metrics.messages_received++;
    if (!srv_conn_rate_take(conn)) {
        send_error(conn, NULL, ATT_ERR_RATE_LIMITED, "too many messages; slow down");
        return;
    }
    if (conn->rx_binary) {
        send_error(conn, NULL, ATT_ERR_BAD_MESSAGE, "binary frames are not accepted");
        return;
    }
    att_msg m;
    att_error err = {0};
    if (att_msg_decode(buf, len, &m, &err) < 0) {
        send_error(conn, m.has_id ? m.id : NULL, err.code, err.message);
        att_msg_release(&m);
        return;
    }
    const char *id = m.has_id ? m.id : NULL;
    if (conn->state == CONN_AWAIT_HELLO) {
        if (m.type == ATT_MSG_HELLO)
            do_hello(conn, &m);
        else
            srv_conn_send_error(conn, id, ATT_ERR_NOT_AUTHENTICATED, "send hello first");
        att_msg_release(&m);
        return;
    }
    if (!conn->member.room) {
        /* It has left its room (the server is stopping: srv_rooms_leave_all
         * runs before the closes): what it still sends goes nowhere. */
        att_msg_release(&m);
        return;
    }
    if (m.type == ATT_MSG_HELLO) {
        send_error(conn, id, ATT_ERR_ALREADY_AUTHENTICATED, "already authenticated");
        att_msg_release(&m);
        return;
    }
    if (m.type == ATT_MSG_PING) {
        srv_room_reply_ack(srv->rooms, &conn->member, id);
        att_msg_release(&m);
        return;
    }
    /* A therapist's own actions keep their login alive (pings do not). */
    if (conn->member.login_session)
        srv_sessions_activity(srv_api_sessions(srv), conn->member.login_session, srv_now_ms());
    srv_room_command(srv->rooms, &conn->member, &m); /* consumes m */
}

/* Appends one RECEIVE chunk; returns -1 when the message passes the cap. */
static int rx_append(srv_conn *conn, const void *in, size_t len)
{
    if (conn->rx_len + len > ATT_MAX_MESSAGE_BYTES)
        return -1;
    if (len == 0)
        return 0; /* an empty frame: in may be NULL */
    if (conn->rx_len + len > conn->rx_cap) {
        size_t cap = conn->rx_cap ? conn->rx_cap : 512;
        while (cap < conn->rx_len + len)
            cap *= 2;
        char *nb = realloc(conn->rx, cap);
        if (!nb)
            return -1;
        conn->rx = nb;
        conn->rx_cap = cap;
    }
    memcpy(conn->rx + conn->rx_len, in, len);
    conn->rx_len += len;
    return 0;
}

/* The frame for outbox message i, made on first use (one frame per
 * message however many members it goes to). NULL when out of memory. */
static srv_frame *drain_frame(srv_server *srv, const srv_outbox *ob, uint32_t i)
{
    if (i >= srv->cap_drain_frames) {
        size_t cap = srv->cap_drain_frames ? srv->cap_drain_frames : 64;
        while (cap <= i)
            cap *= 2;
        srv_frame **p = realloc(srv->drain_frames, cap * sizeof *p);
        if (!p)
            return NULL;
        memset(p + srv->cap_drain_frames, 0, (cap - srv->cap_drain_frames) * sizeof *p);
        srv->drain_frames = p;
        srv->cap_drain_frames = cap;
    }
    if (!srv->drain_frames[i]) {
        const srv_out_msg *msg = &ob->msgs[i];
        const char *text = srv_outbox_text(ob, msg);
        srv->drain_frames[i] = msg->kind == SRV_OUT_EVENT
                                   ? srv_frame_event(msg->seq, text, msg->len)
                                   : srv_frame_new(text, msg->len);
    }
    return srv->drain_frames[i];
}

void srv_ws_drain(srv_server *srv)
{
    srv_outbox *ob = srv_rooms_outbox(srv->rooms);
    /* By index and by value: a send that cuts off a slow reader takes it
     * out of its room, which may add to the outbox (and move its arrays). */
    for (size_t i = 0; i < ob->n_items; i++) {
        srv_out_item it = ob->items[i];
        if (it.kind == SRV_OUT_ROOM_CHANGED) {
            char id[ATT_ROOM_ID_BYTES + 1];
            const srv_out_msg *msg = &ob->msgs[it.msg];
            size_t n = msg->len < sizeof id - 1 ? msg->len : sizeof id - 1;
            memcpy(id, srv_outbox_text(ob, msg), n);
            id[n] = '\0';
            srv_api_room_changed(srv, id);
            continue;
        }
        if (!it.to)
            continue; /* its connection went before the drain */
        srv_conn *c = srv_conn_of(it.to);
        if (it.kind == SRV_OUT_CLOSE) {
            srv_conn_begin_close(c, it.code, it.bye, it.leave);
            continue;
        }
        srv_frame *f = drain_frame(srv, ob, it.msg);
        if (f && srv_conn_send(c, f) < 0)
            srv_room_detach(srv->rooms, &c->member, ATT_LEFT_SLOW_READER, 1);
    }
    size_t made = ob->n_msgs < srv->cap_drain_frames ? ob->n_msgs : srv->cap_drain_frames;
    for (size_t i = 0; i < made; i++)
        if (srv->drain_frames[i]) {
            srv_frame_unref(srv->drain_frames[i]);
            srv->drain_frames[i] = NULL;
        }
    if (ob->dropped)
        srv_log("error", "outbox_dropped", "{s:I}", "messages", (json_int_t)ob->dropped);
    srv_outbox_reset(ob);
    srv_server_arm_rooms(srv);
}

static int on_writeable(srv_conn *conn)
{
    if (conn->ping_due && conn->state != CONN_CLOSING) {
        /* The keepalive ping takes this turn's one lws_write. It carries a
         * payload because lws 4.1.6 never reports an empty pong
         * (LWS_CALLBACK_RECEIVE_PONG is skipped for a zero-length one). */
        static const char tag[] = "attune";
        unsigned char ping[LWS_PRE + sizeof tag];
        memcpy(ping + LWS_PRE, tag, sizeof tag - 1);
        conn->ping_due = 0;
        if (lws_write(conn->wsi, ping + LWS_PRE, sizeof tag - 1, LWS_WRITE_PING) < 0)
            return -1;
        if (conn->q.count || conn->member.replaying)
            lws_callback_on_writable(conn->wsi);
        return 0;
    }
    srv_frame *f = srv_sendq_peek(&conn->q);
    if (!f && conn->member.replaying && conn->state == CONN_MEMBER) {
        replay_more(conn);
        f = srv_sendq_peek(&conn->q);
    }
    if (!f) {
        if (conn->state == CONN_CLOSING) {
            lws_close_reason(conn->wsi, (enum lws_close_status)conn->close_code, NULL, 0);
            return -1;
        }
        return 0; /* lws may call WRITEABLE with nothing to send */
    }
    /* Several queued frames (an ack, events, a state) leave together: packed
     * as finished WebSocket frames and written raw in this one lws_write.
     * lws sends them or keeps the unsent rest in its own buffer, and sends
     * its pings and closes only between our writes, so frames never
     * interleave. One frame goes as it is (no copy). */
    uint32_t packed = 0;
    size_t bytes = 0;
    if (conn->q.count > 1)
        bytes = srv_sendq_pack(&conn->q, conn->srv->tx_buf + LWS_PRE, SRV_TX_BATCH_BYTES, &packed);
    if (packed > 1) {
        int n = lws_write(conn->wsi, conn->srv->tx_buf + LWS_PRE, bytes, LWS_WRITE_RAW);
        if (n < (int)bytes)
            return -1;
        while (packed--)
            srv_sendq_pop(&conn->q);
    } else {
        int n = lws_write(conn->wsi, srv_frame_payload(f), f->len, LWS_WRITE_TEXT);
        if (n < (int)f->len)
            return -1;
        srv_sendq_pop(&conn->q);
    }
    if (conn->q.count || conn->member.replaying || conn->state == CONN_CLOSING)
        lws_callback_on_writable(conn->wsi);
    else if (conn->q.cap > 64)
        srv_sendq_clear(&conn->q, 1); /* give a burst's ring back */
    return 0;
}

int srv_ws_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    srv_conn *conn = user;
    srv_server *srv = lws_context_user(lws_get_context(wsi));

    switch (reason) {
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
        /* Not tied to any wsi: the store (or the signal thread) woke us. */
        srv_rooms_on_store_completions(srv->rooms);
        srv_ws_drain(srv);
        if (atomic_exchange(&srv->tls_reload_requested, 0))
            srv_server_reload_tls(srv);
        if (atomic_load(&srv->stop_requested) && !srv->stopping)
            srv_server_begin_stop(srv);
        return 0;

    case LWS_CALLBACK_CONFIRM_EXTENSION_OKAY:
        /* Refuse every extension the client offers (in: its name): queued
         * frames leave packed by hand with no extension bits (srv_sendq_pack,
         * ws_frame.h). The context lists none (srv_server_run), so lws only
         * asks if one is ever added there. */
        return 1;

    case LWS_CALLBACK_ESTABLISHED:
        memset(conn, 0, sizeof *conn);
        conn->wsi = wsi;
        conn->srv = srv;
        conn->member.id = ++srv->next_conn_id;
        conn->member.role = ATT_ROLE_NONE;
        conn->state = CONN_AWAIT_HELLO;
        /* The handshake's headers are still there (the upgrade checked the
         * argument already: confirm_upgrade, http.c). */
        if (srv_http_ws_room(wsi, conn->url_room) < 0)
            conn->url_room[0] = '\0';
        conn->tokens = srv->cfg->burst;
        conn->tokens_at = lws_now_usecs();
        conn->heard_at_ms = srv_mono_ms();
        conn->hello_deadline_ms = conn->heard_at_ms + (int64_t)srv->cfg->hello_timeout_s * 1000;
        lws_dll2_add_tail(&conn->all_link, &srv->conns);
        srv->metrics.connections++;
        srv->metrics.connections_total++;
        if (srv->stopping) {
            srv_conn_begin_close(conn, SRV_CLOSE_GOING_AWAY, "shutdown", ATT_LEFT_SHUTDOWN);
            return 0;
        }
        return 0;

    case LWS_CALLBACK_RECEIVE_PONG:
        if (conn && conn->srv)
            srv_conn_heard(conn);
        return 0;

    case LWS_CALLBACK_RECEIVE:
        if (!conn || conn->state == CONN_CLOSING)
            return 0; /* input after a close decision is ignored */
        srv_conn_heard(conn);
        if (conn->rx_len == 0)
            conn->rx_binary = lws_frame_is_binary(wsi);
        if (rx_append(conn, in, len) < 0) {
            srv->metrics.oversize_closes++;
            srv->metrics.rejected[ATT_ERR_TOO_LARGE]++;
            srv_log("info", "too_large", "{s:I}", "conn", (json_int_t)conn->member.id);
            static const char why[] = "message too large";
            lws_close_reason(wsi, (enum lws_close_status)SRV_CLOSE_TOO_BIG, (unsigned char *)why,
                             sizeof why - 1);
            conn->state = CONN_CLOSING;
            conn->leave_reason = ATT_LEFT_CLOSED;
            return -1;
        }
        if (!lws_is_final_fragment(wsi))
            return 0;
        handle_message(conn, conn->rx ? conn->rx : "", conn->rx_len);
        srv_ws_drain(srv);
        conn->rx_len = 0;
        if (conn->rx_cap > 4096) {
            free(conn->rx); /* keep idle connections small */
            conn->rx = NULL;
            conn->rx_cap = 0;
        }
        return 0;

    case LWS_CALLBACK_SERVER_WRITEABLE:
        if (!conn)
            return 0;
        return on_writeable(conn);

    case LWS_CALLBACK_CLOSED:
        if (!conn || !conn->srv)
            return 0;
        srv_rooms_forget_member(srv->rooms, &conn->member, conn->leave_reason, !srv->stopping);
        lws_dll2_remove(&conn->all_link);
        srv_sendq_clear(&conn->q, 1);
        free(conn->rx);
        conn->rx = NULL;
        srv->metrics.connections--;
        srv_server_arm_rooms(srv);
        return 0;

    default:
        return 0;
    }
}
