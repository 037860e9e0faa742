/* invites.h - the record of every invitation link issued: a table
 * `invites` in the data directory's database (schema module "invites")
 * holding, per link, the SHA-256 of its token's nonce (never the token),
 * room, role, issued_at, expires_at, who issued it (an account name, or
 * "operator" for the command line and --demo) and when it was revoked.
 *
 * A token is valid only while its MAC checks (token.h) and its record
 * exists, is not revoked and has not expired. Tokens minted before these
 * records existed have no record and are refused (the demo room re-mints
 * its links at start when the stored ones stop verifying).
 *
 * The same module keeps which supervisors (accounts.h, kind supervisor) a
 * room's therapist invited to observe it (table room_observers).
 *
 * Revocations are numbered (revoked_rev, increasing across processes: the
 * command line revokes in its own process), so the server learns of new
 * ones with one indexed query per sweep (srv_invites_revoked_since).
 *
 * Threads: a handle is used by one thread at a time (the lws service thread
 * in attune-server, main's thread before serving or in the `attune`
 * command); several processes may open the same database. Ownership:
 * srv_invites_open allocates the handle, srv_invites_close frees it;
 * results go to caller buffers. */
#ifndef SRV_INVITES_H
#define SRV_INVITES_H

#include <stddef.h>
#include <stdint.h>
#include "attune/types.h"
#include "token.h"

/* The longest an invitation may live (--token-ttl, `attune ... --ttl`): 30
 * days. A link is a bearer credential; a month covers a course of weekly
 * sessions booked ahead, and anything longer should be reissued. */
#define SRV_INVITE_TTL_MAX_S (30 * 24 * 3600)
#define SRV_INVITE_ISSUER_MAX 64
/* issued_by for links made outside a login (the CLI, --demo, --create-room). */
#define SRV_INVITE_OPERATOR "operator"

typedef struct srv_invites srv_invites;

typedef struct {
    int64_t id;
    char room[SRV_ROOM_ID_MAX + 1];
    att_role role;
    int64_t issued_at;  /* ms since the Unix epoch */
    int64_t expires_at; /* ms since the Unix epoch */
    char issued_by[SRV_INVITE_ISSUER_MAX + 1];
    int64_t revoked_at; /* ms, 0 while not revoked */
} srv_invite_record;

/* Opens DIR/attune.db (which must exist or be creatable) and brings the
 * invites tables to this build's version. */
int srv_invites_open(const char *dir, srv_invites **out, att_error *err);
/* Opens the same tables (invites, room_observers, and invite_revision, the
 * revocation counter; created when missing, under pg.h's schema lock) in a
 * PostgreSQL database (a libpq URI), so every node verifies every node's
 * links and sees every revocation at its next sweep. Revocation numbers
 * stay increasing across nodes, and a number is visible only after every
 * lower one (one counter row, locked by each revocation until it
 * commits). Every function then runs blocking statements on the caller's
 * thread: in attune-server that is the lws service thread for now (one
 * indexed row per hello; acceptable until the hello path goes
 * asynchronous). A statement cut off by a lost connection fails (pg.h:
 * outcome unknown; an issue that failed so hands out no token) and the next
 * call reconnects. */
int srv_invites_open_pg(const char *uri, srv_invites **out, att_error *err);
void srv_invites_close(srv_invites *inv);

/* bad_message (with a message naming the cap) unless 1 <= ttl_s <= cap. */
int srv_invites_check_ttl(int64_t ttl_s, att_error *err);

/* Mints a token for (room, role) valid for ttl_s seconds from now (ms) and
 * records it. token_out gets SRV_TOKEN_MAX bytes; id_out (may be NULL) the
 * record's id. */
int srv_invites_issue(srv_invites *inv, const srv_token_key *key, const char *room, att_role role,
                      int64_t ttl_s, const char *issued_by, int64_t now_ms, char *token_out,
                      size_t token_size, int64_t *id_out, att_error *err);

/* Checks the token's MAC and then its record at now (ms). On success fills
 * claims and *id_out. Any failure is bad_token with a message saying which
 * check failed (for logs). */
int srv_invites_verify(srv_invites *inv, const srv_token_key *key, const char *token,
                       int64_t now_ms, srv_token_claims *claims, int64_t *id_out, att_error *err);

/* Revokes every unrevoked link of (room, role). Returns how many (>= 0). */
int srv_invites_revoke_role(srv_invites *inv, const char *room, att_role role, int64_t now_ms,
                            att_error *err);
/* Revokes the link a token belongs to (its MAC must check; expiry does not
 * matter). Returns 1 when revoked now, 0 when it already was; not_found
 * when no record has it. Fills claims. */
int srv_invites_revoke_token(srv_invites *inv, const srv_token_key *key, const char *token,
                             int64_t now_ms, srv_token_claims *claims, att_error *err);

/* Calls fn for each of the room's records, oldest first. A nonzero return
 * from fn stops the walk and is returned. */
int srv_invites_list(srv_invites *inv, const char *room,
                     int (*fn)(const srv_invite_record *rec, void *arg), void *arg, att_error *err);

/* The highest revocation number so far (0 for none). */
int srv_invites_revision(srv_invites *inv, int64_t *rev_out, att_error *err);
/* Calls fn(id) for each record revoked with a number above after_rev and
 * writes the highest number seen to *rev_out (after_rev when none). */
int srv_invites_revoked_since(srv_invites *inv, int64_t after_rev, int (*fn)(int64_t id, void *arg),
                              void *arg, int64_t *rev_out, att_error *err);

/* Supervisors invited to observe a room (table room_observers), by account
 * id. add: 1 when added, 0 when already there; remove: 1 or 0; is: 1 or 0.
 * observers: fn for each of the room's, in the order added; observed_rooms:
 * fn for each room of the account's, newest first. Negative on failure; a
 * nonzero return from fn stops the walk and is returned. */
int srv_invites_add_observer(srv_invites *inv, const char *room, int64_t account_id, int64_t now_ms,
                             att_error *err);
int srv_invites_remove_observer(srv_invites *inv, const char *room, int64_t account_id,
                                att_error *err);
int srv_invites_is_observer(srv_invites *inv, const char *room, int64_t account_id, att_error *err);
int srv_invites_observers(srv_invites *inv, const char *room,
                          int (*fn)(int64_t account_id, void *arg), void *arg, att_error *err);
int srv_invites_observed_rooms(srv_invites *inv, int64_t account_id,
                               int (*fn)(const char *room, void *arg), void *arg, att_error *err);

#endif
