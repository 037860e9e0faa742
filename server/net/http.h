/* http.h - the lws "http" protocol: connection caps at accept, the Host and
 * Origin checks, the /ws handshake gate, GET /healthz and GET /metrics.
 *
 * Threads: the lws service thread only. */
#ifndef SRV_HTTP_H
#define SRV_HTTP_H

#include <libwebsockets.h>
#include "config.h"
#include "peer.h"
#include "room_id.h"

int srv_http_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                      size_t len);
/* Its per-request data size (a request's answer, http_reply.h). */
size_t srv_http_pss_size(void);
/* 1 when the request's Origin may use this server (none sent, an --origin,
 * or the server's own host); the WebSocket upgrade and /api POSTs use it. */
int srv_http_origin_allowed(struct lws *wsi, const srv_config *cfg);
/* The request's (or upgraded connection's) client address (peer.h: the
 * TCP peer, or X-Forwarded-For's from a --trusted-proxy). */
void srv_http_client_addr(struct lws *wsi, const srv_config *cfg, char out[SRV_PEER_ADDR_MAX]);
/* 1 when the Host header names this server (--public-url's host, an
 * --allowed-host, or loopback when listening on loopback). */
int srv_http_host_allowed(struct lws *wsi, const srv_config *cfg);
/* The room a /ws upgrade names (`/ws?room=ID`, room_id.h) into out: 1
 * when it names one, 0 when it has no room= (out is ""), -1 when room= is
 * not a room id or is given twice (or an argument is over 1 KiB). The upgrade refuses -1 with 400;
 * ws.c keeps the room to check the hello against. */
int srv_http_ws_room(struct lws *wsi, char out[SRV_ROOM_ID_MAX + 1]);
/* The client address a connection is counted under (after the upgrade,
 * when the request's headers are gone), or "" when it is not counted. */
const char *srv_http_conn_addr(struct lws *wsi);

#endif
