/* conn.c - one WebSocket connection's outgoing side: the bounded send queue,
 * closes decided outside its callback, keepalive and the rate limiter
 * (conn.h). Never calls into the room service. Runs on the lws service
 * thread only. */
#include "conn.h"

#include <stdlib.h>
#include <string.h>
#include "log.h"
#include "server.h"

int srv_conn_send(srv_conn *conn, srv_frame *frame)
{
    if (!frame || conn->state == CONN_CLOSING)
        return 0;
    srv_server *srv = conn->srv;
    if (srv_sendq_push(&conn->q, frame) < 0) {
        srv_conn_begin_close(conn, SRV_CLOSE_INTERNAL, NULL, ATT_LEFT_CLOSED);
        return 0;
    }
    if (conn->q.bytes > srv->cfg->max_queue_bytes) {
        /* A reader this far behind gets cut off rather than hold the room's
         * memory; it resumes from its last seq when it reconnects. */
        srv->metrics.slow_reader_closes++;
        srv_log("warn", "slow_reader", "{s:I,s:s,s:I}", "conn", (json_int_t)conn->member.id, "room",
                conn->member.room ? srv_room_id(conn->member.room) : "", "queued",
                (json_int_t)conn->q.bytes);
        srv_conn_begin_close(conn, SRV_CLOSE_POLICY, "slow_reader", ATT_LEFT_SLOW_READER);
        return -1;
    }
    lws_callback_on_writable(conn->wsi);
    return 0;
}

void srv_conn_send_error(srv_conn *conn, const char *id, att_code code, const char *message)
{
    srv_server *srv = conn->srv;
    if ((int)code > 0 && code < ATT_ERR__COUNT)
        srv->metrics.rejected[code]++;
    srv_frame *f = srv_frame_from_json_consume(att_msg_error(id, code, message));
    srv_conn_send(conn, f);
    srv_frame_unref(f);
}

void srv_conn_begin_close(srv_conn *conn, int code, const char *bye_reason,
                          att_left_reason leave_reason)
{
    if (conn->state == CONN_CLOSING)
        return;
    conn->state = CONN_CLOSING;
    conn->close_code = code;
    conn->leave_reason = leave_reason;
    conn->ping_due = 0;
    /* Going away: the room service sends it no more live frames, no more
     * catch-up, and no second close (room_service.h, srv_member). */
    conn->member.closing = 1;
    conn->member.replaying = 0;
    /* A slow reader's backlog is dropped (it resumes from the log when it
     * comes back, and leaves its room at once: srv_conn_send's caller);
     * otherwise what is already queued still goes out before the bye. */
    if (leave_reason == ATT_LEFT_SLOW_READER)
        srv_sendq_clear(&conn->q, 0);
    if (bye_reason) {
        srv_frame *bye = srv_frame_from_json_consume(att_msg_bye(bye_reason));
        if (bye && srv_sendq_push(&conn->q, bye) < 0)
            srv_sendq_clear(&conn->q, 0);
        srv_frame_unref(bye);
    }
    lws_callback_on_writable(conn->wsi);
    /* Backstop for a peer that never reads: lws closes it after this. */
    lws_set_timeout(conn->wsi, PENDING_TIMEOUT_USER_OK, 5);
}

int srv_conn_rate_take(srv_conn *conn)
{
    const srv_config *cfg = conn->srv->cfg;
    lws_usec_t now = lws_now_usecs();
    conn->tokens += (double)(now - conn->tokens_at) * cfg->rate / 1e6;
    if (conn->tokens > cfg->burst)
        conn->tokens = cfg->burst;
    conn->tokens_at = now;
    if (conn->tokens < 1.0)
        return 0;
    conn->tokens -= 1.0;
    return 1;
}

void srv_conn_heard(srv_conn *conn)
{
    conn->heard_at_ms = srv_mono_ms();
    conn->ping_sent_ms = 0;
}

void srv_conns_sweep(srv_server *srv, int64_t now_ms)
{
    const int64_t ping_ms = (int64_t)srv->cfg->ping_s * 1000;
    const int64_t grace_ms = ping_ms / 2 < SRV_PONG_GRACE_MS ? ping_ms / 2 : SRV_PONG_GRACE_MS;
    /* _safe: nothing here unlinks a connection today (CLOSED does), but a
     * close decision must never be able to break the walk. */
    lws_start_foreach_dll_safe(struct lws_dll2 *, d, d1, lws_dll2_get_head(&srv->conns))
    {
        srv_conn *c = lws_container_of(d, srv_conn, all_link);
        int64_t quiet = now_ms - c->heard_at_ms;
        if (c->state == CONN_AWAIT_HELLO && now_ms >= c->hello_deadline_ms) {
            srv_conn_begin_close(c, SRV_CLOSE_HELLO_TIMEOUT, "hello_timeout", ATT_LEFT_TIMEOUT);
        } else if (c->state != CONN_CLOSING && c->ping_sent_ms &&
                   now_ms - c->ping_sent_ms >= grace_ms) {
            /* Half-open: nobody reads a close frame, so no handshake. */
            srv->metrics.keepalive_closes++;
            srv_log("info", "keepalive_timeout", "{s:I,s:I}", "conn", (json_int_t)c->member.id,
                    "quiet_ms", (json_int_t)quiet);
            srv_conn_begin_close(c, SRV_CLOSE_GOING_AWAY, NULL, ATT_LEFT_TIMEOUT);
            lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
        } else if (c->state != CONN_CLOSING && quiet >= ping_ms && !c->ping_sent_ms) {
            c->ping_sent_ms = now_ms;
            c->ping_due = 1;
            lws_callback_on_writable(c->wsi);
        }
    }
    lws_end_foreach_dll_safe(d, d1);
}
