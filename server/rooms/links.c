/* links.c - closing members whose way in has ended: a revoked invitation
 * link (revoked here or by the `attune` command in another process), a
 * partner's link past its session's end plus --link-grace, a staff member
 * whose login session ended, and an observer whose invitation was taken
 * back. The closes go through the outbox (the shell carries them out).
 * Service thread only. */
#include "rooms_impl.h"

#include <stdlib.h>
#include <string.h>
#include "clock.h"
#include "invites.h"
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

/* Calls fn for every member of every room in memory (a member is always in
 * a room in memory: it holds the room there). fn may close the member. */
static void for_each_member(srv_rooms *svc, void (*fn)(srv_rooms *svc, srv_member *m, void *arg),
                            void *arg)
{
    for (size_t b = 0; b < svc->room_buckets; b++)
        for (srv_room *r = svc->room_table[b]; r; r = r->hash_next)
            SRV_LIST_FOR_EACH_SAFE(&r->members, k, k_next)
    fn(svc, SRV_CONTAINER_OF(k, srv_member, link), arg);
}

int srv_rooms_partner_expired(const srv_rooms *svc, const srv_room *room, att_role role,
                              int64_t now_ms)
{
    return att_role_is_partner(role) && room->durable.status == ATT_STATUS_ENDED &&
           room->durable.ended_at > 0 &&
           now_ms >= room->durable.ended_at + (int64_t)svc->opt.link_grace_s * 1000;
}

static void close_if_revoked(srv_rooms *svc, srv_member *m, void *arg)
{
    const id_set *set = arg;
    if (m->invite_id && !m->closing &&
        bsearch(&m->invite_id, set->ids, set->n, sizeof set->ids[0], cmp_id)) {
        srv_log("info", "link_revoked", "{s:I,s:s,s:s}", "conn", (json_int_t)m->id, "room",
                m->room->id, "role", att_role_name(m->role));
        srv_rooms_close_member(svc, m, SRV_CLOSE_BAD_TOKEN, "revoked", ATT_LEFT_CLOSED);
    }
}

void srv_rooms_close_revoked(srv_rooms *svc)
{
    SRV_ASSERT_SERVICE_THREAD(svc);
    id_set set = {0};
    att_error err = {0};
    int64_t rev = svc->invites_rev;
    if (srv_invites_revoked_since(svc->invites, svc->invites_rev, collect_id, &set, &rev, &err) <
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
    svc->invites_rev = rev;
    if (!set.n)
        return;
    qsort(set.ids, set.n, sizeof set.ids[0], cmp_id);
    for_each_member(svc, close_if_revoked, &set);
    free(set.ids);
}

static void close_if_session(srv_rooms *svc, srv_member *m, void *arg)
{
    uint64_t session_id = *(const uint64_t *)arg;
    if (m->login_session == session_id && !m->closing) {
        srv_log("info", "login_ended", "{s:I,s:s,s:s}", "conn", (json_int_t)m->id, "room",
                m->room->id, "role", att_role_name(m->role));
        srv_rooms_close_member(svc, m, SRV_CLOSE_BAD_TOKEN, "logged_out", ATT_LEFT_CLOSED);
    }
}

void srv_rooms_close_login_session(srv_rooms *svc, uint64_t session_id)
{
    SRV_ASSERT_SERVICE_THREAD(svc);
    for_each_member(svc, close_if_session, &session_id);
}

void srv_rooms_close_observer(srv_rooms *svc, const char *room_id, int64_t account_id)
{
    SRV_ASSERT_SERVICE_THREAD(svc);
    srv_room *r = srv_rooms_find(svc, room_id);
    if (!r)
        return; /* nobody is connected to a room out of memory */
    SRV_LIST_FOR_EACH_SAFE(&r->members, k, k_next)
    {
        srv_member *m = SRV_CONTAINER_OF(k, srv_member, link);
        if (m->login_session && m->role == ATT_ROLE_OBSERVER && !m->closing &&
            m->account_id == account_id)
            srv_rooms_close_member(svc, m, SRV_CLOSE_BAD_TOKEN, "revoked", ATT_LEFT_CLOSED);
    }
}

static void close_if_expired(srv_rooms *svc, srv_member *m, void *arg)
{
    int64_t now = *(const int64_t *)arg;
    if (!m->closing && m->invite_id && srv_rooms_partner_expired(svc, m->room, m->role, now)) {
        srv_log("info", "link_ended", "{s:I,s:s,s:s}", "conn", (json_int_t)m->id, "room",
                m->room->id, "role", att_role_name(m->role));
        srv_rooms_close_member(svc, m, SRV_CLOSE_BAD_TOKEN, "session_ended", ATT_LEFT_CLOSED);
    }
}

void srv_rooms_links_sweep(srv_rooms *svc, int64_t mono_ms)
{
    SRV_ASSERT_SERVICE_THREAD(svc);
    srv_rooms_close_revoked(svc);
    if (mono_ms < svc->next_link_sweep_ms)
        return;
    /* A short --link-grace (tests) is looked at every sweep. */
    svc->next_link_sweep_ms =
        mono_ms +
        ((int64_t)svc->opt.link_grace_s * 1000 < LINK_GRACE_SWEEP_MS ? 0 : LINK_GRACE_SWEEP_MS);
    int64_t now = srv_now_ms();
    for_each_member(svc, close_if_expired, &now);
}
