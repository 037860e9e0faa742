/* ws.h - the lws protocol "attune.v1": a connection's life (ESTABLISHED ..
 * CLOSED), reassembly of incoming messages, hello and authentication,
 * dispatch to the room service, WRITEABLE (the only place that writes
 * WebSocket frames), and the drain of the room service's outbox into the
 * connections' send queues.
 *
 * Threads: the lws service thread only. */
#ifndef SRV_WS_H
#define SRV_WS_H

#include <libwebsockets.h>

struct srv_server;

#define SRV_SUBPROTOCOL "attune.v1"
#define SRV_WS_PATH "/ws"
/* Most bytes one WRITEABLE sends (queued frames packed together, see
 * srv_sendq_pack); also lws' per-send() cap for the protocol, so a packed
 * batch leaves in one send() rather than rx_buffer_size pieces. */
#define SRV_TX_BATCH_BYTES 65536

int srv_ws_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len);
/* Carries out what the room service's outbox holds (sends, closes, room
 * changes) and re-arms the service's deadline timer; called after every
 * call into the room service. */
void srv_ws_drain(struct srv_server *srv);

#endif
