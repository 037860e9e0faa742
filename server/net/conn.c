/* conn.c - one WebSocket connection's outgoing side: the bounded send queue,
 * closes decided outside its callback, the catch-up replay from the log,
 * and the rate limiter. Runs on the lws service thread only. */
#include "server.h"

#include <stdlib.h>
#include <string.h>
#include "log.h"

void srv_conn_send(srv_conn *conn, srv_frame *frame)
{
    if (!frame || conn->state == CONN_CLOSING)
        return;
    srv_server *srv = conn->srv;
    if (srv_sendq_push(&conn->q, frame) < 0) {
        srv_conn_begin_close(conn, SRV_CLOSE_INTERNAL, NULL, ATT_LEFT_CLOSED);
        return;
    }
    if (conn->q.bytes > srv->cfg->max_queue_bytes) {
        /* A reader this far behind gets cut off rather than hold the room's
         * memory; it resumes from its last seq when it reconnects. */
        srv->metrics.slow_reader_closes++;
        srv_log("warn", "slow_reader", "{s:I,s:s,s:I}", "conn", (json_int_t)conn->id, "room",
                conn->room ? conn->room->id : "", "queued", (json_int_t)conn->q.bytes);
        srv_conn_begin_close(conn, SRV_CLOSE_POLICY, "slow_reader", ATT_LEFT_SLOW_READER);
        return;
    }
    lws_callback_on_writable(conn->wsi);
}

void srv_conn_send_error(srv_conn *conn, const char *id, att_code code, const char *message)
{
    srv_server *srv = conn->srv;
    if ((int)code > 0 && code < ATT_ERR__COUNT)
        srv->metrics.rejected[code]++;
    srv_frame *f = srv_frame_from_json_consume(att_msg_error(id, code, message));
    if (conn->room)
        srv_room_reply(conn->room, conn, f); /* consumes f */
    else {
        srv_conn_send(conn, f);
        srv_frame_unref(f);
    }
}

void srv_conn_begin_close(srv_conn *conn, int code, const char *bye_reason,
                          att_left_reason leave_reason)
{
    if (conn->state == CONN_CLOSING)
        return;
    conn->state = CONN_CLOSING;
    conn->close_code = code;
    conn->leave_reason = leave_reason;
    conn->replaying = 0;
    conn->ping_due = 0;
    /* A slow reader's backlog is dropped and it leaves the room at once
     * (it resumes from the log when it comes back); otherwise what is
     * already queued still goes out before the bye. */
    if (leave_reason == ATT_LEFT_SLOW_READER) {
        srv_sendq_clear(&conn->q, 0);
        if (conn->room)
            srv_room_detach(conn->room, conn, 1);
    }
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

srv_frame *srv_state_frame(srv_server *srv, const att_room *room, att_role viewer)
{
    /* The core's direct writer: the same bytes as dumping att_room_state_json,
     * without building a tree (states go out after every change), into the
     * service thread's scratch buffer, which keeps its size between states. */
    att_buf *text = &srv->state_scratch;
    text->len = 0;
    if (att_room_state_write(room, viewer, 1, text) < 0)
        return NULL;
    return srv_frame_new(text->data, text->len);
}

/* Who may see a stored event: decoded, since the private line's
 * visibility depends on who wrote it and to whom. -1 when it is not one. */
static int stored_audience(const att_script *script, const char *payload, size_t len, unsigned *out)
{
    json_t *obj = json_loadb(payload, len, 0, NULL);
    att_event ev;
    att_error err = {0};
    int rc = obj ? att_event_from_json(obj, script, &ev, &err) : -1;
    if (rc == 0)
        *out = att_event_audience(&ev);
    json_decref(obj);
    return rc < 0 ? -1 : 0;
}

static srv_walk replay_one(const srv_stored_event *ev, void *arg, att_error *err)
{
    srv_conn *conn = arg;
    unsigned audience;
    if (!conn->room || stored_audience(conn->room->script, ev->payload, ev->len, &audience) < 0) {
        att_fail(err, ATT_ERR_INTERNAL, "bad event at seq %lld", (long long)ev->seq);
        return SRV_WALK_FAILED;
    }
    conn->replay_after = ev->seq;
    if (audience & (1u << conn->role)) {
        /* Numbered in the role's own sequence: no gaps where it saw nothing. */
        srv_frame *f = srv_frame_event(++conn->replay_aud, ev->payload, ev->len);
        if (!f) {
            att_fail(err, ATT_ERR_INTERNAL, "out of memory");
            return SRV_WALK_FAILED;
        }
        srv_conn_send(conn, f);
        srv_frame_unref(f);
    }
    if (conn->state == CONN_CLOSING)
        return SRV_WALK_STOP;
    /* Pause before the catch-up itself could trip the slow-reader bound;
     * the next WRITEABLE with an empty queue continues. */
    return conn->q.bytes >= conn->srv->cfg->max_queue_bytes / 2 ? SRV_WALK_PAUSE
                                                                 : SRV_WALK_CONTINUE;
}

void srv_conn_replay_step(srv_conn *conn)
{
    srv_room *r = conn->room;
    if (!conn->replaying || conn->state != CONN_MEMBER || !r) {
        conn->replaying = 0;
        return;
    }
    int64_t upto = r->durable.seq;
    if (conn->replay_after < upto) {
        att_error err = {0};
        srv_walk rc = srv_store_walk_events(conn->srv->store, r->id, conn->replay_after, upto,
                                            SRV_REPLAY_CHUNK, replay_one, conn, &err);
        if (conn->state != CONN_MEMBER)
            return;
        if (rc == SRV_WALK_FAILED) {
            srv_log("error", "replay_failed", "{s:s,s:I,s:s}", "room", r->id, "after",
                    (json_int_t)conn->replay_after, "error", err.message);
            srv_conn_begin_close(conn, SRV_CLOSE_INTERNAL, NULL, ATT_LEFT_CLOSED);
            return;
        }
    }
    if (conn->replay_after >= upto) {
        conn->replaying = 0;
        srv_frame *f = srv_state_frame(r->srv, &r->durable, conn->role);
        srv_conn_send(conn, f);
        srv_frame_unref(f);
    }
    lws_callback_on_writable(conn->wsi);
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
            srv_log("info", "keepalive_timeout", "{s:I,s:I}", "conn", (json_int_t)c->id, "quiet_ms",
                    (json_int_t)quiet);
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
