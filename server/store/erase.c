/* erase.c - erasing a room for good (see erase.h). */
#include "erase.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "log.h"

typedef struct {
    int64_t ids[64];
    size_t n;
    int more; /* more than fit: the walk is run again */
} observer_ids;

static int collect_observer(int64_t account_id, void *arg)
{
    observer_ids *o = arg;
    if (o->n == sizeof o->ids / sizeof o->ids[0]) {
        o->more = 1;
        return 1;
    }
    o->ids[o->n++] = account_id;
    return 0;
}

/* Takes every supervisor off the room; returns how many or negative. */
static int remove_observers(srv_invites *inv, const char *room, att_error *err)
{
    int removed = 0;
    observer_ids o;
    do {
        memset(&o, 0, sizeof o);
        int rc = srv_invites_observers(inv, room, collect_observer, &o, err);
        if (rc < 0)
            return rc;
        for (size_t i = 0; i < o.n; i++) {
            rc = srv_invites_remove_observer(inv, room, o.ids[i], err);
            if (rc < 0)
                return rc;
            removed += rc;
        }
    } while (o.more);
    return removed;
}

/* A failure after the key is gone: the room cannot be read any more, and
 * the message must say so (err's text is copied first: att_fail writes
 * into the buffer it would read). */
static int failed_after_key(att_error *err, const char *room, const char *what)
{
    char why[sizeof err->message];
    snprintf(why, sizeof why, "%s", err->message);
    return att_fail(err, ATT_ERR_INTERNAL, "room %s is erased, but %s: %s", room, what, why);
}

int srv_erase_room(const srv_erase_deps *d, const char *room, const char *actor, int64_t actor_id,
                   int64_t now_ms, srv_erase_result *out, att_error *err)
{
    memset(out, 0, sizeof *out);
    srv_store_room meta;
    int64_t owner = 0;
    int in_store = srv_store_get_room(d->store, room, &meta, err);
    if (in_store < 0 && in_store != -ATT_ERR_NOT_FOUND)
        return in_store;
    int owned = srv_accounts_get_owner_id(d->accounts, room, &owner, err);
    if (owned < 0 && owned != -ATT_ERR_NOT_FOUND)
        return owned;
    if (in_store < 0 && owned < 0)
        return att_fail(err, ATT_ERR_NOT_FOUND, "no room %s", room);

    /* 1. Nobody gets in any more: links and observers first, so a failure
     * further on leaves a room that is closed to everyone but its owner. */
    static const att_role roles[] = {ATT_ROLE_PARTNER_A, ATT_ROLE_PARTNER_B, ATT_ROLE_THERAPIST,
                                     ATT_ROLE_OBSERVER};
    for (size_t i = 0; i < sizeof roles / sizeof roles[0]; i++) {
        int n = srv_invites_revoke_role(d->invites, room, roles[i], now_ms, err);
        if (n < 0)
            return n;
        out->links_revoked += n;
    }
    int removed = remove_observers(d->invites, room, err);
    if (removed < 0)
        return removed;
    out->observers_removed = removed;

    /* 2. The key, then the rows (the store's order). A room the store has
     * already let go (an earlier attempt) answers not_found: go on. */
    int rc = srv_store_erase_room(d->store, room, err);
    if (rc < 0 && rc != -ATT_ERR_NOT_FOUND)
        return rc;
    out->store_had_room = rc == 0;

    /* 3. Off the dashboard, now that there is nothing left to show. */
    if (owned == 0 && (rc = srv_accounts_clear_owner(d->accounts, room, err)) < 0)
        return failed_after_key(err, room, "its owner row stays");

    /* 4. That it happened, never what it held. */
    srv_audit_entry entry = {.at = now_ms,
                             .actor = actor,
                             .actor_id = actor_id,
                             .action = SRV_AUDIT_ERASED,
                             .room = room};
    if ((rc = srv_audit_record(d->audit, &entry, &out->audit_id, err)) < 0)
        return failed_after_key(err, room, "the audit log could not record it");
    srv_log("info", "room_erased", "{s:s,s:s,s:i,s:b}", "room", room, "by", actor, "links_revoked",
            out->links_revoked, "had_events", out->store_had_room);
    return 0;
}
