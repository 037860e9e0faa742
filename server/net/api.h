/* api.h - the therapists' JSON API under /api (protocol/HTTP.md): login,
 * logout and the session cookie, login rate limits, the room list and room
 * creation (with ownership), invitations, and the session log for replay.
 * Also the security headers every HTTP response of the server carries.
 *
 * Threads: everything here runs on the lws service thread, except
 * srv_api_open/srv_api_close (main's thread, before and after serving).
 *
 * Ownership: srv_api_open creates srv->api (the accounts database handle,
 * the session table and the login limits); srv_api_close frees it. Each
 * request's state is lws' per-session data for the "attune-api" protocol;
 * its body buffers are freed when the response is written or the connection
 * closes. */
#ifndef SRV_API_H
#define SRV_API_H

#include <libwebsockets.h>
#include <stddef.h>
#include "attune/types.h"

#define SRV_API_PROTOCOL "attune-api"
#define SRV_API_MOUNT "/api"
#define SRV_API_MAX_BODY 16384
#define SRV_SESSION_COOKIE_NAME "attune_session"

typedef struct srv_server srv_server;
typedef struct srv_api srv_api;

int srv_api_open(srv_server *srv, att_error *err);
void srv_api_close(srv_server *srv);
/* The accounts handle (main's thread, before serving; or the service thread). */
struct srv_accounts *srv_api_accounts(srv_server *srv);
/* The login sessions (sessions.h), for the end hooks and
 * srv_sessions_activity of other modules. */
struct srv_sessions *srv_api_sessions(srv_server *srv);
/* Once a second from the heartbeat: ends expired sessions and those whose
 * account was removed or whose password changed (also by another process). */
void srv_api_sweep(srv_server *srv);
/* A room's committed state changed (rooms.c): the dashboards' event
 * streams (room_events.h) that show it get the new list. */
void srv_api_room_changed(srv_server *srv, const char *room_id);
/* Every heartbeat (50 ms): event streams whose update or keepalive is due. */
void srv_api_tick(srv_server *srv, int64_t now_mono);

/* The lws protocol callback for /api and its per-request data size. */
int srv_api_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                     size_t len);
size_t srv_api_pss_size(void);

/* Headers added to every HTTP response of the vhost (static files, /api,
 * /healthz, errors): Content-Security-Policy, X-Content-Type-Options,
 * Referrer-Policy. Static storage; pass as lws_context_creation_info.headers. */
const struct lws_protocol_vhost_options *srv_api_security_headers(void);

#endif
