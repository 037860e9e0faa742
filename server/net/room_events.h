/* room_events.h - the dashboard's pushed room updates: GET /api/rooms/events
 * (protocol/HTTP.md), a server-sent-events stream per open dashboard.
 *
 * A stream belongs to one login session. It gets the account's room list
 * (the same JSON as GET /api/rooms) when it opens, again when one of its
 * rooms' committed state changes (srv_room_events_room_changed, from
 * rooms.c) or a room is added to the account, at most once every
 * SRV_EVENTS_MIN_INTERVAL_MS, and a comment line every
 * SRV_EVENTS_KEEPALIVE_MS so proxies keep it open. It closes when its
 * session ends (srv_room_events_session_ended, a sessions.h end hook). It
 * renews nothing.
 *
 * Which streams a change concerns: the room's owner (accounts.h) is looked
 * up once and kept in a small direct-mapped cache (a room's owner does not
 * change while it runs); supervisors' streams (rooms they observe) are
 * refreshed on any change. With no stream open, a change costs a compare.
 *
 * The HTTP response: status 200, `text/event-stream`, no length (lws closes
 * the connection at the end), written with LWS_WRITE_HTTP chunks on
 * WRITEABLE, never with the FINAL flag.
 *
 * Threads: the lws service thread only. Ownership: srv_room_events_new
 * allocates the registry, _free frees it and every stream still in it;
 * srv_room_events_open allocates a stream, which the registry owns until
 * srv_room_events_close (the request's CLOSED_HTTP) frees it. */
#ifndef SRV_ROOM_EVENTS_H
#define SRV_ROOM_EVENTS_H

#include <libwebsockets.h>
#include <stddef.h>
#include <stdint.h>
#include "accounts.h"
#include "attune/types.h"
#include "sessions.h"

#define SRV_EVENTS_MIN_INTERVAL_MS 750
#define SRV_EVENTS_KEEPALIVE_MS 25000

typedef struct srv_room_events srv_room_events;
typedef struct srv_events_stream srv_events_stream;

/* What a stream sends: the room list text (malloc'd, len bytes) of an
 * account, or NULL with err set. */
typedef char *(*srv_events_list_fn)(void *arg, int64_t account_id, srv_account_kind kind,
                                    size_t *len, att_error *err);

int srv_room_events_new(srv_accounts *accounts, srv_events_list_fn list, void *list_arg,
                        srv_room_events **out, att_error *err);
void srv_room_events_free(srv_room_events *e);

/* Several nodes on one shared store: changes of rooms another node serves
 * are not seen here, so every stream reads its list again every_ms (a
 * sweep's worth of delay on the serving node, which writes its rooms'
 * summaries to the shared store once a sweep: rooms.c) and sends it when
 * it differs from the last one sent. 0 (the default): off. */
#define SRV_EVENTS_SHARED_POLL_MS 2000
void srv_room_events_poll_shared(srv_room_events *e, int64_t every_ms);

/* Opens a stream on wsi for the session (asks for WRITEABLE: the headers
 * and the first list go out there). */
int srv_room_events_open(srv_room_events *e, struct lws *wsi, const srv_session_info *sess,
                         int64_t now_mono, srv_events_stream **out, att_error *err);
/* The request's connection closed: forgets and frees the stream. */
void srv_room_events_close(srv_room_events *e, srv_events_stream *s);
/* WRITEABLE for a stream's wsi: writes what is due. Returns -1 when the
 * connection should close (the session ended, or a write failed). */
int srv_room_events_writeable(srv_room_events *e, srv_events_stream *s, int64_t now_mono);

/* A room's committed state changed (cheap when no stream is open). */
void srv_room_events_room_changed(srv_room_events *e, const char *room_id);
/* The account's room list changed otherwise (a room created for it). */
void srv_room_events_account_changed(srv_room_events *e, int64_t account_id);
/* The session ended: its streams close. */
void srv_room_events_session_ended(srv_room_events *e, uint64_t session_id);
/* Often (the server's heartbeat): asks WRITEABLE for the streams whose
 * update or keepalive is due. */
void srv_room_events_tick(srv_room_events *e, int64_t now_mono);

/* Open streams (for tests and metrics). */
size_t srv_room_events_count(const srv_room_events *e);

#endif
