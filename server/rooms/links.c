/* links.c - closing live connections whose way in has ended: a revoked
 * invitation link (revoked here or by the `attune` command in another
 * process), a partner's link past its session's end plus --link-grace, and
 * a staff connection whose login session ended. Runs on the lws service
 * thread. */
#include "server.h"

#include <stdlib.h>
#include <string.h>
#include "api.h"
#include "invites.h"
#include "sessions.h"
#include "tickets.h"
#include "log.h"
#include "attune/names.h"

/* How often the sweep looks for partner links past their grace. */
#define LINK_GRACE_SWEEP_MS 5000

typedef struct {
    int64_t *ids;
    size_t n, cap;
    int failed;
} id_set;

static int collect_id(int64_t id, void *arg)
{
    id_set *s = arg;
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        int64_t *grown = realloc(s->ids, cap * sizeof *grown);
        if (!grown) {
            s->failed = 1;
            return 0;
        }
        s->ids = grown;
        s->cap = cap;
    }
    s->ids[s->n++] = id;
    return 0;
}

static int cmp_id(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

int srv_links_partner_expired(const srv_server *srv, const srv_room *room, att_role role,
                              int64_t now_ms)
{
    return att_role_is_partner(role) && room->durable.status == ATT_STATUS_ENDED &&
           room->durable.ended_at > 0 &&
           now_ms >= room->durable.ended_at + (int64_t)srv->cfg->link_grace_s * 1000;
}

void srv_links_close_revoked(srv_server *srv)
{
    id_set set = {0};
    att_error err = {0};
    int64_t rev = srv->invites_rev;
    if (srv_invites_revoked_since(srv->invites, srv->invites_rev, collect_id, &set, &rev, &err) <
        0) {
        srv_log("error", "revocations_unreadable", "{s:s}", "error", err.message);
        free(set.ids);
        return;
    }
    if (set.failed) {
        /* Try again next sweep rather than miss one. */
        free(set.ids);
        return;
    }
    srv->invites_rev = rev;
    if (!set.n)
        return;
    qsort(set.ids, set.n, sizeof set.ids[0], cmp_id);
    lws_start_foreach_dll_safe(struct lws_dll2 *, d, d1, lws_dll2_get_head(&srv->conns))
    {
        srv_conn *c = lws_container_of(d, srv_conn, all_link);
        if (c->invite_id && c->state != CONN_CLOSING &&
            bsearch(&c->invite_id, set.ids, set.n, sizeof set.ids[0], cmp_id)) {
            srv_log("info", "link_revoked", "{s:I,s:s,s:s}", "conn", (json_int_t)c->id, "room",
                    c->room ? c->room->id : "", "role", att_role_name(c->role));
            srv_conn_begin_close(c, SRV_CLOSE_BAD_TOKEN, "revoked", ATT_LEFT_CLOSED);
        }
    }
    lws_end_foreach_dll_safe(d, d1);
    free(set.ids);
}

void srv_links_close_session(srv_server *srv, uint64_t session_id)
{
    lws_start_foreach_dll_safe(struct lws_dll2 *, d, d1, lws_dll2_get_head(&srv->conns))
    {
        srv_conn *c = lws_container_of(d, srv_conn, all_link);
        if (c->login_session == session_id && c->state != CONN_CLOSING) {
            srv_log("info", "login_ended", "{s:I,s:s,s:s}", "conn", (json_int_t)c->id, "room",
                    c->room ? c->room->id : "", "role", att_role_name(c->role));
            srv_conn_begin_close(c, SRV_CLOSE_BAD_TOKEN, "logged_out", ATT_LEFT_CLOSED);
        }
    }
    lws_end_foreach_dll_safe(d, d1);
}

/* sessions.h end hook: whatever ended the login (logout, idle, lifetime,
 * account removed, password changed) ends its live views and tickets. */
static void on_session_end(void *arg, uint64_t session_id, const char *account)
{
    (void)account;
    srv_server *srv = arg;
    srv_tickets_drop_session(srv->tickets, session_id);
    srv_links_close_session(srv, session_id);
}

int srv_links_open(srv_server *srv, att_error *err)
{
    int rc = srv_tickets_new((int64_t)srv->cfg->ticket_ttl_s * 1000, &srv->tickets, err);
    if (rc < 0)
        return rc;
    if (srv_sessions_set_end_hook(srv_api_sessions(srv), on_session_end, srv) < 0)
        return att_fail(err, ATT_ERR_INTERNAL, "cannot hook the login sessions' end");
    return 0;
}

void srv_links_close(srv_server *srv)
{
    srv_tickets_free(srv->tickets);
    srv->tickets = NULL;
}

void srv_links_close_observer(srv_server *srv, const char *room_id, int64_t account_id)
{
    int64_t now = srv_now_ms();
    lws_start_foreach_dll_safe(struct lws_dll2 *, d, d1, lws_dll2_get_head(&srv->conns))
    {
        srv_conn *c = lws_container_of(d, srv_conn, all_link);
        srv_session_info info;
        if (c->login_session && c->role == ATT_ROLE_OBSERVER && c->room &&
            c->state != CONN_CLOSING && strcmp(c->room->id, room_id) == 0 &&
            srv_sessions_get(srv_api_sessions(srv), c->login_session, now, &info) &&
            info.account_id == account_id)
            srv_conn_begin_close(c, SRV_CLOSE_BAD_TOKEN, "revoked", ATT_LEFT_CLOSED);
    }
    lws_end_foreach_dll_safe(d, d1);
}

void srv_links_sweep(srv_server *srv, int64_t mono_ms)
{
    srv_links_close_revoked(srv);
    if (mono_ms < srv->next_link_sweep_ms)
        return;
    /* A short --link-grace (tests) is looked at every sweep. */
    srv->next_link_sweep_ms =
        mono_ms + (srv->cfg->link_grace_s * 1000 < LINK_GRACE_SWEEP_MS ? 0 : LINK_GRACE_SWEEP_MS);
    int64_t now = srv_now_ms();
    lws_start_foreach_dll_safe(struct lws_dll2 *, d, d1, lws_dll2_get_head(&srv->conns))
    {
        srv_conn *c = lws_container_of(d, srv_conn, all_link);
        if (c->room && c->state == CONN_MEMBER && c->invite_id &&
            srv_links_partner_expired(srv, c->room, c->role, now)) {
            srv_log("info", "link_ended", "{s:I,s:s,s:s}", "conn", (json_int_t)c->id, "room",
                    c->room->id, "role", att_role_name(c->role));
            srv_conn_begin_close(c, SRV_CLOSE_BAD_TOKEN, "session_ended", ATT_LEFT_CLOSED);
        }
    }
    lws_end_foreach_dll_safe(d, d1);
}
