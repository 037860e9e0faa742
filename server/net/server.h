/* server.h - the network shell's top: the lws context on libev with its one
 * service thread, and srv_server, which wires the store, the room service
 * and the connections together.
 *
 * Thread map. Everything here runs on the lws service thread (one thread,
 * lws on its libev event loop; before srv_server_run, main's thread, which
 * becomes it) unless marked otherwise. The store thread (store_sqlite.c)
 * only commits batches and calls srv_server_wake (which calls
 * lws_cancel_service, the one lws function that is safe from another
 * thread). The signal thread (main.c) only sets `stop_requested` (SIGTERM)
 * or `tls_reload_requested` (SIGHUP) and calls srv_server_wake; the service
 * thread acts on them at WAIT_CANCELLED.
 *
 * Ownership. srv_server owns the catalog, the store, the room service
 * (room_service.h: the rooms, their jobs and its outbox), the API's state
 * and the list of connections (conn.h: lws owns each srv_conn's memory).
 *
 * One turn: lws RECEIVE (ws.c srv_ws_callback) -> att_msg_decode (ws.c
 * handle_message) -> srv_room_command (rooms.c: att_engine_decide, then
 * room_submit: fold into `live`, encode, srv_store_append) -> store thread
 * commits -> srv_server_wake -> WAIT_CANCELLED -> srv_rooms_on_store_
 * completions (rooms.c complete_job: fold into `durable`, ack and events
 * into the outbox; broadcast_state) -> srv_ws_drain (ws.c: outbox into the
 * send queues) -> WRITEABLE (ws.c on_writeable: lws_write). */
#ifndef SRV_SERVER_H
#define SRV_SERVER_H

#include <libwebsockets.h>
#include <stdatomic.h>
#include <stdint.h>
#include "attune/catalog.h"
#include "clock.h"
#include "config.h"
#include "frame.h"
#include "log.h"
#include "metrics.h"
#include "room_service.h"
#include "store.h"
#include "tls.h"
#include "token.h"

typedef struct srv_server srv_server;

struct srv_server {
    const srv_config *cfg;
    struct lws_context *ctx;
    struct lws_vhost *vhost;
    att_catalog *catalog;
    srv_keyring *keys; /* keyring.h: the rooms' data keys; the store borrows it */
    srv_store *store;
    srv_token_key key;
    struct srv_invites *invites; /* invites.h: the links' records */
    struct srv_tickets *tickets; /* tickets.h: staff tickets for the live views */
    struct srv_api *api;         /* api.c: accounts, login sessions, login limits */
    struct srv_review *review;   /* review.h: the session log's worker thread */
    srv_rooms *rooms;            /* room_service.h: the rooms and their commit cycle */
    srv_metrics metrics;
    lws_dll2_owner_t conns;
    /* srv_ws_drain's frames, one per outbox message (made on first use,
     * unreferenced at the end of the drain); kept for the next drain. */
    srv_frame **drain_frames;
    size_t cap_drain_frames;
    /* The room service's deadline timer (one sul for all rooms): armed for
     * rooms_armed_ms (wall), -1 when not armed. */
    lws_sorted_usec_list_t rooms_sul;
    int64_t rooms_armed_ms;
    /* Service thread's scratch for packing frames (LWS_PRE headroom, then
     * SRV_TX_BATCH_BYTES); lws sends or copies it before lws_write returns. */
    unsigned char *tx_buf;
    uint64_t next_conn_id;
    atomic_int stop_requested; /* any thread */
    int stopping;
    int clients_told;
    int loop_done;
    lws_sorted_usec_list_t stop_sul;
    lws_sorted_usec_list_t heartbeat_sul;
    int64_t next_sweep_ms; /* monotonic ms; the heartbeat sweeps from then */
    int64_t stop_deadline_ms;
    /* Connections and accepts (http.c, peer.h): open connections per
     * client address; the listen socket's wsi, to pause accepts after an
     * accept() failure, and the sul that resumes them; --max-conns fitted
     * to the open-file limit; connection refusals logged once a second. */
    struct srv_peer_counts *peers;
    struct lws *listen_wsi;
    int accepts_paused;
    lws_sorted_usec_list_t accept_sul;
    int max_conns;
    srv_log_limiter refusal_log;
    /* TLS (tls.h), when --tls-cert is given: the pair srv_server_open read
     * and checked, installed once lws has made the vhost's SSL_CTX (then
     * freed); that SSL_CTX (lws', borrowed; NULL when serving plain HTTP);
     * why installing failed, for srv_server_run's message; SIGHUP's reload
     * request (any thread). */
    srv_tls_pair tls_first;
    SSL_CTX *tls_ctx;
    att_error tls_error;
    atomic_int tls_reload_requested;
    /* Strict-Transport-Security in front of the API's security headers
     * (the vhost's header list) when served over TLS, here or at a proxy. */
    struct lws_protocol_vhost_options hsts_header;
};

/* Any thread: wakes the service loop (lws_cancel_service). */
void srv_server_wake(void *srv);
/* Prepares the server (catalog, key, store, room service) without serving. */
int srv_server_open(srv_server *srv, const srv_config *cfg, att_error *err);
/* Creates the lws context (libev), serves until a stop request has been
 * carried out. `ready` (may be NULL) runs once listening. */
int srv_server_run(srv_server *srv, void (*ready)(srv_server *srv, void *arg), void *arg,
                   att_error *err);
/* Frees everything srv_server_open created (flushes the store first). */
void srv_server_close(srv_server *srv);
/* Service thread: stop accepting, record `left`, wait for the store, close
 * every client with 1001 and leave the loop. */
void srv_server_begin_stop(srv_server *srv);
/* Any thread (main.c's signal thread on SIGHUP): asks the service thread
 * to load --tls-cert and --tls-key again (srv_server_reload_tls). */
void srv_server_request_tls_reload(srv_server *srv);
/* Service thread: loads the certificate pair again from the configured
 * paths and serves it to new handshakes; open connections keep theirs. A
 * pair that does not load or install leaves the served one in place; both
 * outcomes are logged (tls_reloaded, tls_reload_failed). */
void srv_server_reload_tls(srv_server *srv);
/* Arms the room service's one timer for its earliest deadline (after a
 * call into the service may have moved it; srv_ws_drain calls it). */
void srv_server_arm_rooms(srv_server *srv);

/* The API's ways into the links (rooms/links.c), with the outbox drained
 * after: closes an account's observer views of a room, and the members of
 * links revoked since the last look. */
void srv_links_close_observer(srv_server *srv, const char *room_id, int64_t account_id);
void srv_links_close_revoked(srv_server *srv);

#endif
