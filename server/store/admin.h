/* admin.h - work on the store outside the live loop: creating a room,
 * issuing invitations, the --demo room, and --verify (fold every log).
 *
 * Runs on main's thread before the server serves (or in a separate tool
 * such as the command-line client); never while the service thread uses the
 * same srv_store handle. Owns nothing; results go to caller buffers. */
#ifndef SRV_ADMIN_H
#define SRV_ADMIN_H

#include <stdio.h>
#include "attune/catalog.h"
#include "attune/room.h"
#include "invites.h"
#include "store.h"
#include "token.h"

/* A base URL (at most 512 bytes: `attune room create --base-url`) with
 * /?room=ROOM#token= and a token. */
#define SRV_URL_MAX 1024
/* "invite ROLE URL" */
#define SRV_INVITE_LINE_MAX (SRV_URL_MAX + 32)

/* Where invitation links point and how long they last. The server fills
 * it from its configuration (--public-url, --listen, --port, --token-ttl),
 * the `attune` command from its options; borrowed strings. */
typedef struct {
    const char *public_url; /* the base URL; NULL or "": http://HOST:PORT */
    const char *host;       /* the listen address (0.0.0.0 and :: mean localhost) */
    int port;
    int64_t token_ttl_s;
} srv_link_options;

/* Creates a room for `exercise` with its room_created event (seq 1) and
 * writes its id to id_out (ATT_ROOM_ID_BYTES + 1). */
int srv_admin_create_room(srv_store *store, const att_catalog *cat, const char *exercise,
                          att_role first_speaker, const char *id_prefix, char *id_out,
                          att_error *err);

/* The same with the caller's room id and creation time. */
int srv_admin_create_room_as(srv_store *store, const att_catalog *cat, const char *exercise,
                             att_role first_speaker, const char *id, int64_t now, att_error *err);

/* The base URL invitations point at (public_url without one trailing
 * slash, or http://HOST:PORT). */
void srv_admin_base_url(const srv_link_options *links, char *out, size_t size);

/* `base/?room=ROOM#token=TOKEN` for a new invitation to (room, role),
 * recorded (invites.h) as issued by `issued_by` at now_ms with the lifetime
 * links->token_ttl_s. The token rides in the fragment, so it never reaches
 * an access log; the room (no secret) in the query, so a proxy can route
 * the page's socket by it (PROTOCOL.md section 1). */
int srv_admin_invite_url(srv_invites *inv, const srv_token_key *key, const srv_link_options *links,
                         const char *room, att_role role, const char *issued_by, int64_t now_ms,
                         char *out, size_t size, att_error *err);

/* One new invitation per role in roles[0..n) (srv_admin_invite_url), as
 * the lines "invite ROLE URL" that --create-room, --demo and `attune room
 * create` print. */
int srv_admin_invite_lines(srv_invites *inv, const srv_token_key *key,
                           const srv_link_options *links, const char *room, const att_role *roles,
                           int n, const char *issued_by, int64_t now_ms,
                           char lines[][SRV_INVITE_LINE_MAX], att_error *err);

/* Creates the demo room on first use (remembered in the store's settings)
 * and writes the three invitation lines ("invite partner_a URL", ...) to
 * lines[0..2]. The same lines on every run while the invitations are valid
 * (they are stored in the settings and recorded in invites); ones that no
 * longer verify for another hour (expired, revoked, or minted before
 * invitation records existed) are reissued. */
int srv_admin_demo(srv_store *store, srv_invites *inv, const att_catalog *cat,
                   const srv_token_key *key, const srv_link_options *links, const char *exercise,
                   char lines[3][SRV_INVITE_LINE_MAX], att_error *err);

/* Folds every room's log in the store (log_fold.h, with the room options
 * `options`; NULL: the core's defaults) and prints one JSON line per room:
 * {"room","exercise","seq","hash","state"} (state: therapist view, as in the
 * canonical state). Returns 0 when every log folds cleanly. */
int srv_admin_verify(srv_store *store, const att_catalog *cat, const att_room_config *options,
                     FILE *out, att_error *err);

#endif
