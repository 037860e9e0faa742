/* tickets.h - staff tickets: how the therapist's and an observer's live
 * view get in without a link. A logged-in page asks for a ticket (POST
 * /api/rooms/{id}/ticket) and sends it in its hello instead of a token; a
 * ticket names one room and one role, belongs to the login session and
 * account that asked for it, lives --ticket-ttl (60 s by default) and works
 * once.
 *
 * Only a SHA-256 of each ticket is kept, compared in constant time. Kept in
 * memory (a restart ends every login anyway), at most SRV_TICKETS_MAX at
 * once: past that the oldest goes.
 *
 * Threads: the lws service thread only. Ownership: srv_tickets_new
 * allocates the table, srv_tickets_free frees it. */
#ifndef SRV_TICKETS_H
#define SRV_TICKETS_H

#include <stdint.h>
#include "attune/types.h"
#include "token.h"

#define SRV_TICKETS_MAX 1024
/* base64url of 32 bytes, no padding, plus the NUL. */
#define SRV_TICKET_BYTES 44

typedef struct srv_tickets srv_tickets;

/* What a ticket let in. */
typedef struct {
    char room[SRV_ROOM_ID_MAX + 1];
    att_role role;          /* therapist or observer */
    uint64_t login_session; /* sessions.h's id */
    int64_t account_id;     /* accounts.h's immutable id */
} srv_ticket_grant;

/* ttl_ms > 0: how long a ticket stays usable. */
int srv_tickets_new(int64_t ttl_ms, srv_tickets **out, att_error *err);
/* The ttl given to srv_tickets_new. */
int64_t srv_tickets_ttl_ms(const srv_tickets *t);
void srv_tickets_free(srv_tickets *t);

/* Mints a ticket for grant at now (ms) into out. */
int srv_tickets_issue(srv_tickets *t, const srv_ticket_grant *grant, int64_t now,
                      char out[SRV_TICKET_BYTES], att_error *err);

/* Takes a ticket: 1 and the grant when it is known and fresh (it is used up
 * either way), 0 when unknown, used or expired. */
int srv_tickets_take(srv_tickets *t, const char *ticket, int64_t now, srv_ticket_grant *out);

/* Forgets every ticket of a login session (it ended). */
void srv_tickets_drop_session(srv_tickets *t, uint64_t login_session);

#endif
