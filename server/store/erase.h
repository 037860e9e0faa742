/* erase.h - erasing a room for good, the one sequence both `attune room
 * erase` and POST /api/rooms/{id}/erase run (the server first frees the
 * live room: srv_rooms_erase, room_service.h):
 *
 *   1. its invitation links are revoked (a running server closes their
 *      connections; a partner's link says "not valid" from then on) and
 *      the supervisors invited to observe it are taken off it;
 *   2. the store destroys its data key (durable first), then deletes its
 *      events, its row, its head and its cached summary
 *      (srv_store_erase_room); from here nothing of it can be read, from
 *      this directory or from any backup of attune.db;
 *   3. its owner row goes, so it leaves the dashboard;
 *   4. the audit log records `erased` (who, when, which room id; audit.h).
 *
 * Each step can be run again: an erase that failed partway (a full disk)
 * is finished by asking again, which is why the owner row goes only after
 * the store has let go (the therapist can still see and erase the room)
 * and why a room the store no longer has still has steps 1, 3 and 4 done.
 *
 * Threads: the caller's (the lws service thread in attune-server; main's
 * thread in `attune`); every handle is used only there. Owns nothing. */
#ifndef SRV_ERASE_H
#define SRV_ERASE_H

#include <stdint.h>
#include "accounts.h"
#include "attune/types.h"
#include "audit.h"
#include "invites.h"
#include "store.h"

/* What an erase works on; borrowed. */
typedef struct {
    srv_store *store;
    srv_invites *invites;
    srv_accounts *accounts;
    srv_audit *audit;
} srv_erase_deps;

/* What it did, for the caller's answer. */
typedef struct {
    int links_revoked; /* invitation links revoked now */
    int observers_removed;
    int store_had_room; /* 0: the store had already let go (a retry) */
    int64_t audit_id;   /* the `erased` entry's id, 0 when not recorded */
} srv_erase_result;

/* Erases `room` as `actor` (an account's name and id, or the command
 * line's "cli:USER" and 0) at now_ms. ATT_ERR_NOT_FOUND when neither the
 * store nor the ownership table knows the room (nothing done, nothing
 * recorded). A failure after the key is gone says so in err; the audit
 * entry failing (a tampered audit log refuses appends) is such a failure:
 * the room is erased, the log could not say so. */
int srv_erase_room(const srv_erase_deps *d, const char *room, const char *actor, int64_t actor_id,
                   int64_t now_ms, srv_erase_result *out, att_error *err);

#endif
