/* server.c - the server's life: open (catalog, key, store), the lws context
 * on libev with one service thread, recovery, and the orderly stop. Runs on
 * main's thread, which becomes the lws service thread in srv_server_run;
 * srv_server_wake may be called from any thread. */
#include "server.h"
#include "store_pg.h"

#include <arpa/inet.h>
#include <errno.h>
#include <sys/stat.h>
#include <assert.h>
#include <ev.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include "api.h"
#include "config_store.h"
#include "conn.h"
#include "http.h"
#include "invites.h"
#include "lws_log.h"
#include "log.h"
#include "review.h"
#include "sessions.h"
#include "tickets.h"
#include "tls.h"
#include "ws.h"

void srv_server_wake(void *arg)
{
    srv_server *srv = arg;
    if (srv->ctx)
        lws_cancel_service(srv->ctx);
}

/* sessions.h end hook: whatever ended the login (logout, idle, lifetime,
 * account removed, password changed) ends its live views and tickets. */
static void on_session_end(void *arg, uint64_t session_id, const char *account)
{
    (void)account;
    srv_server *srv = arg;
    srv_tickets_drop_session(srv->tickets, session_id);
    srv_rooms_close_login_session(srv->rooms, session_id);
    srv_ws_drain(srv);
}

void srv_links_close_observer(srv_server *srv, const char *room_id, int64_t account_id)
{
    srv_rooms_close_observer(srv->rooms, room_id, account_id);
    srv_ws_drain(srv);
}

void srv_links_close_revoked(srv_server *srv)
{
    srv_rooms_close_revoked(srv->rooms);
    srv_ws_drain(srv);
}

/* The room service's one timer is due: fire its deadlines. */
static void rooms_timer(lws_sorted_usec_list_t *sul)
{
    srv_server *srv = lws_container_of(sul, srv_server, rooms_sul);
    srv->rooms_armed_ms = -1;
    srv_rooms_tick(srv->rooms, srv_now_ms());
    srv_ws_drain(srv); /* re-arms for the next deadline */
}

void srv_server_arm_rooms(srv_server *srv)
{
    if (!srv->ctx || srv->loop_done)
        return; /* not serving: srv_server_run arms once it is */
    int64_t next = srv_rooms_next_deadline(srv->rooms);
    if (next == srv->rooms_armed_ms)
        return;
    srv->rooms_armed_ms = next;
    if (next < 0) {
        lws_sul_cancel(&srv->rooms_sul);
        return;
    }
    int64_t delay_ms = next - srv_now_ms();
    lws_sul_schedule(srv->ctx, 0, &srv->rooms_sul, rooms_timer,
                     (lws_usec_t)(delay_ms > 0 ? delay_ms : 0) * LWS_US_PER_MS);
}

static void discard_batch(srv_store_batch *b, void *arg)
{
    (void)arg;
    (void)b; /* jobs stay linked in their rooms and are freed with them */
}

/* A key file others may read is worth a line in the log, not a refusal:
 * the operator's certificate tooling decides its modes. */
static void warn_key_mode(const srv_config *cfg, const srv_tls_pair *pair)
{
    if (pair->key_mode & 077)
        srv_log("warn", "tls_key_readable", "{s:s,s:s}", "file", cfg->tls_key, "why",
                "the TLS private key file is open to group or others (chmod 600)");
}

int srv_server_open(srv_server *srv, const srv_config *cfg, att_error *err)
{
    memset(srv, 0, sizeof *srv);
    srv->cfg = cfg;
    srv->rooms_armed_ms = -1;
    int rc;
    /* The certificate first: a wrong path fails the start with its own
     * message before anything else is opened. */
    if (cfg->tls_cert[0]) {
        if ((rc = srv_tls_pair_load(cfg->tls_cert, cfg->tls_key, &srv->tls_first, err)) < 0)
            return rc;
        warn_key_mode(cfg, &srv->tls_first);
    }
    rc = att_catalog_load_dir(cfg->protocol_dir, &srv->catalog, err);
    if (rc < 0)
        return rc;
    /* The keys first (the KEK is created on a fresh data directory only):
     * the store borrows them for every seal. */
    if (cfg->store_uri[0]) {
        /* A cluster node: keys, events and invitations are the shared
         * database's (store_pg.h); the data directory keeps this node's
         * own files (secret.key: the same on every node). */
        char node_name[sizeof cfg->node_name + 16];
        if (cfg->node_name[0])
            snprintf(node_name, sizeof node_name, "%s", cfg->node_name);
        else
            snprintf(node_name, sizeof node_name, "%s:%d", cfg->listen, cfg->port);
        /* The SQLite store made the data directory; here it holds only
         * this node's own files. */
        if (mkdir(cfg->data_dir, 0700) < 0 && errno != EEXIST)
            return att_fail(err, ATT_ERR_INTERNAL, "cannot create the data directory %s: %s",
                            cfg->data_dir, strerror(errno));
        srv_pg_store_options opt = {.uri = cfg->store_uri,
                                    .node_name = node_name,
                                    .ws_url = cfg->public_url,
                                    .lease_ms = cfg->node_lease_ms};
        if ((rc = srv_keyring_open_pg(cfg->store_uri, srv_config_kek_file(cfg), 1, &srv->keys,
                                      err)) < 0)
            return rc;
        if ((rc = srv_store_open_pg(&opt, srv->keys, &srv->store, err)) < 0)
            return rc;
        if ((rc = srv_invites_open_pg(cfg->store_uri, &srv->invites, err)) < 0)
            return rc;
    } else {
        if ((rc = srv_keyring_open(cfg->data_dir, srv_config_kek_file(cfg), 1, &srv->keys, err)) <
            0)
            return rc;
        if ((rc = srv_store_open(cfg->data_dir, srv->keys, &srv->store, err)) < 0)
            return rc;
        if ((rc = srv_invites_open(cfg->data_dir, &srv->invites, err)) < 0)
            return rc;
    }
    if ((rc = srv_token_key_load(cfg->key_file, &srv->key, err)) < 0)
        return rc;
    srv_rooms_deps deps = {
        .store = srv->store,
        .catalog = srv->catalog,
        .invites = srv->invites,
        .metrics = &srv->metrics,
        .options = {.room = srv_config_room(cfg),
                    .room_event_cap = cfg->room_event_cap,
                    .link_events_per_minute = cfg->link_events_per_minute,
                    .room_events_per_minute = cfg->room_events_per_minute,
                    .presence_debounce_ms = cfg->presence_debounce_ms,
                    .room_evict_s = cfg->room_evict_s,
                    .room_idle_evict_s = cfg->room_idle_evict_s,
                    .link_grace_s = cfg->link_grace_s,
                    .max_queue_bytes = cfg->max_queue_bytes},
    };
    if ((rc = srv_rooms_open(&deps, &srv->rooms, err)) < 0)
        return rc;
    if ((rc = srv_peer_counts_open(&srv->peers, err)) < 0)
        return rc;
    if (!(srv->tx_buf = malloc(LWS_PRE + SRV_TX_BATCH_BYTES)))
        return att_fail(err, ATT_ERR_INTERNAL, "out of memory");
    if ((rc = srv_api_open(srv, err)) < 0)
        return rc;
    if ((rc = srv_tickets_new((int64_t)cfg->ticket_ttl_s * 1000, &srv->tickets, err)) < 0)
        return rc;
    if (srv_sessions_set_end_hook(srv_api_sessions(srv), on_session_end, srv) < 0)
        return att_fail(err, ATT_ERR_INTERNAL, "cannot hook the login sessions' end");
    att_room_config review_rooms = {.silence_ms = cfg->silence_ms,
                                    .disconnect_grace_ms = cfg->disconnect_grace_ms};
    if ((rc = srv_review_start(srv->store, srv->catalog, &review_rooms, LWS_PRE, srv_server_wake,
                               srv, &srv->review, err)) < 0)
        return rc;
    if (cfg->test_fail_store_batch > 0)
        srv_store_fail_nth_batch(srv->store, cfg->test_fail_store_batch);
    return 0;
}

void srv_server_close(srv_server *srv)
{
    /* The review worker reads through its own store connection: stop it
     * before the store closes. */
    srv_review_stop(srv->review);
    srv->review = NULL;
    /* The store first: it commits whatever is still queued. */
    srv_store_close(srv->store);
    srv->store = NULL;
    srv_rooms_free(srv->rooms);
    srv->rooms = NULL;
    srv_api_close(srv);
    srv_peer_counts_free(srv->peers);
    srv->peers = NULL;
    srv_tickets_free(srv->tickets);
    srv->tickets = NULL;
    srv_invites_close(srv->invites);
    srv->invites = NULL;
    att_catalog_free(srv->catalog);
    srv->catalog = NULL;
    /* Last: everything above that sealed or opened borrowed it. */
    srv_keyring_close(srv->keys);
    srv->keys = NULL;
    free(srv->tx_buf);
    srv->tx_buf = NULL;
    free(srv->drain_frames);
    srv->drain_frames = NULL;
    srv_tls_pair_free(&srv->tls_first);
}

/* accept() failed (EMFILE/ENFILE; srv_log_lws_emit calls this on the
 * service thread): lws would retry at once while the listen socket stays
 * readable, so stop polling it for a moment. lws re-enables it itself when
 * a connection closes (lws_accept_modulation), which frees an fd anyway. */
#define SRV_ACCEPT_PAUSE_MS 250

static void resume_accepts(lws_sorted_usec_list_t *sul)
{
    srv_server *srv = lws_container_of(sul, srv_server, accept_sul);
    srv->accepts_paused = 0;
    if (srv->listen_wsi)
        lws_rx_flow_control(srv->listen_wsi, 1 | LWS_RXFLOW_REASON_FLAG_PROCESS_NOW);
}

static void pause_accepts(void *arg)
{
    srv_server *srv = arg;
    srv->metrics.accept_failures++;
    if (!srv->listen_wsi || srv->accepts_paused || srv->loop_done)
        return;
    srv->accepts_paused = 1;
    lws_rx_flow_control(srv->listen_wsi, 0 | LWS_RXFLOW_REASON_FLAG_PROCESS_NOW);
    lws_sul_schedule(srv->ctx, 0, &srv->accept_sul, resume_accepts,
                     SRV_ACCEPT_PAUSE_MS * LWS_US_PER_MS);
}

/* The listen socket's wsi (lws 4.1 has no getter): the one listening
 * socket bound to our port among the low fds opened at start-up. */
static struct lws *find_listen_wsi(srv_server *srv)
{
    int port = lws_get_vhost_listen_port(lws_get_vhost_by_name(srv->ctx, "attune"));
    for (int fd = 0; fd < 1024; fd++) {
        int listening = 0;
        socklen_t len = sizeof listening;
        struct sockaddr_storage sa;
        socklen_t salen = sizeof sa;
        if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0 || !listening ||
            getsockname(fd, (struct sockaddr *)&sa, &salen) != 0)
            continue;
        int p = sa.ss_family == AF_INET    ? ntohs(((struct sockaddr_in *)&sa)->sin_port)
                : sa.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&sa)->sin6_port)
                                           : -1;
        if (p == port)
            return wsi_from_fd(srv->ctx, fd);
    }
    return NULL;
}

/* --max-conns must stay under the open-file limit (less room for the
 * store, the log and the static files), or accept() fails with EMFILE
 * before the cap refuses anything. */
#define SRV_SPARE_FDS 64

static int fit_max_conns(srv_server *srv)
{
    struct rlimit rl;
    int max = srv->cfg->max_conns;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return max;
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < (rlim_t)max + SRV_SPARE_FDS &&
        rl.rlim_cur < rl.rlim_max) {
        rlim_t want = (rlim_t)max + SRV_SPARE_FDS;
        rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want ? want : rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
        (void)getrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < (rlim_t)max + SRV_SPARE_FDS) {
        int fit = rl.rlim_cur > SRV_SPARE_FDS * 2 ? (int)rl.rlim_cur - SRV_SPARE_FDS
                                                  : (int)rl.rlim_cur / 2;
        srv_log("warn", "max_conns_lowered", "{s:i,s:i,s:I}", "max_conns", max, "now", fit,
                "open_file_limit", (json_int_t)rl.rlim_cur);
        return fit;
    }
    return max;
}

/* libev's SIGINT watcher (installed by lws; it unblocks SIGINT on the
 * service thread), so this runs on the service thread. The watcher's data
 * is the lws context. */
static void lws_signal(void *handle, int signum)
{
    struct ev_signal *watcher = handle;
    srv_server *srv = lws_context_user((struct lws_context *)watcher->data);
    srv_log("info", "signal", "{s:i}", "signal", signum);
    atomic_store(&srv->stop_requested, 1);
    srv_server_begin_stop(srv);
}

/* lws 4.1.6's libev plugin re-arms its one ev_timer with ev_timer_set on
 * the still-active watcher (lws_ev_idle_cb in lib/event-libs/libev/libev.c;
 * still so upstream), which libev ignores: a sul scheduled earlier than the
 * armed one waits for it (a 10 s hello timeout fired only when a 30 s ping
 * timer did). A short heartbeat sul keeps the armed timer near, so every
 * sul fires at most SRV_HEARTBEAT_MS late. */
#define SRV_HEARTBEAT_MS 50

static void heartbeat(lws_sorted_usec_list_t *sul)
{
    srv_server *srv = lws_container_of(sul, srv_server, heartbeat_sul);
    /* The connections' timers ride on it too: one sweep a second instead of
     * a sul per connection (and no lws validity suls, see srv_server_run). */
    int64_t now = srv_mono_ms();
    if (srv->next_sweep_ms) /* not in the first call, made before listening */
        srv_rooms_warm(srv->rooms);
    if (now >= srv->next_sweep_ms) {
        srv->next_sweep_ms = now + SRV_SWEEP_MS;
        srv_conns_sweep(srv, now);
        srv_rooms_sweep(srv->rooms, now);
        srv_api_sweep(srv);
        srv_rooms_links_sweep(srv->rooms, now);
    }
    srv_ws_drain(srv);      /* also arms the rooms' timer after an API request moved it */
    srv_api_tick(srv, now); /* the dashboards' event streams */
    if (!srv->loop_done)
        lws_sul_schedule(srv->ctx, 0, &srv->heartbeat_sul, heartbeat,
                         SRV_HEARTBEAT_MS * LWS_US_PER_MS);
}

static void stop_step(lws_sorted_usec_list_t *sul)
{
    srv_server *srv = lws_container_of(sul, srv_server, stop_sul);
    int64_t now = srv_now_ms();
    int late = now >= srv->stop_deadline_ms;
    int in_flight = srv_rooms_jobs_in_flight(srv->rooms);
    if (in_flight && !late) {
        lws_sul_schedule(srv->ctx, 0, &srv->stop_sul, stop_step, 10 * LWS_US_PER_MS);
        return;
    }
    if (!srv->clients_told) {
        srv->clients_told = 1;
        lws_start_foreach_dll_safe(struct lws_dll2 *, d, d1, lws_dll2_get_head(&srv->conns))
        {
            srv_conn *c = lws_container_of(d, srv_conn, all_link);
            srv_conn_begin_close(c, SRV_CLOSE_GOING_AWAY, "shutdown", ATT_LEFT_SHUTDOWN);
        }
        lws_end_foreach_dll_safe(d, d1);
    }
    if (srv->conns.count && !late) {
        lws_sul_schedule(srv->ctx, 0, &srv->stop_sul, stop_step, 10 * LWS_US_PER_MS);
        return;
    }
    srv_log("info", "stopped", "{s:i,s:i,s:b}", "jobs_in_flight", in_flight, "clients",
            (int)srv->conns.count, "late", late);
    srv->loop_done = 1;
    lws_sul_cancel(&srv->heartbeat_sul);
    lws_sul_cancel(&srv->accept_sul);
    lws_sul_cancel(&srv->rooms_sul);
    lws_context_destroy(srv->ctx); /* ends lws_service's ev_run */
}

void srv_server_begin_stop(srv_server *srv)
{
    if (srv->stopping)
        return;
    srv->stopping = 1;
    srv_log("info", "stopping", "{s:i,s:i}", "connections", (int)srv->conns.count, "rooms",
            (int)srv->metrics.rooms);
    srv_rooms_set_stopping(srv->rooms);
    /* New sessions are refused from here on (the upgrade gets 503,
     * /healthz reports stopping). lws_context_deprecate would close the
     * listen socket, but it crashes on lws 4.1.6 with the libev loop. */
    srv_rooms_leave_all(srv->rooms);
    srv_ws_drain(srv);
    srv->stop_deadline_ms = srv_now_ms() + srv->cfg->shutdown_grace_ms;
    lws_sul_schedule(srv->ctx, 0, &srv->stop_sul, stop_step, 1);
}

/* ---- TLS ---- */

/* LWS_CALLBACK_OPENSSL_LOAD_EXTRA_SERVER_VERIFY_CERTS (protocols[0], while
 * lws_create_context makes the vhost; user: its SSL_CTX): our settings and
 * the pair srv_server_open checked. lws loads no certificate itself (no
 * ssl_cert_filepath: tls.h says why). -1 fails the context. */
static int tls_vhost_ready(srv_server *srv, SSL_CTX *ctx)
{
    if (srv_tls_configure(ctx, &srv->tls_error) < 0 ||
        srv_tls_install(ctx, &srv->tls_first, &srv->tls_error) < 0)
        return -1;
    srv->tls_ctx = ctx;
    srv_log("info", "tls_serving", "{s:s,s:s,s:s}", "cert", srv->cfg->tls_cert, "serial",
            srv->tls_first.serial, "not_after", srv->tls_first.not_after);
    srv_tls_pair_free(&srv->tls_first); /* the SSL_CTX holds its own references */
    return 0;
}

/* The "http" protocol's callback with the vhost's TLS set-up in front. */
static int http_and_tls_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
                                 void *in, size_t len)
{
    if (reason == LWS_CALLBACK_OPENSSL_LOAD_EXTRA_SERVER_VERIFY_CERTS)
        return tls_vhost_ready(lws_context_user(lws_get_context(wsi)), user);
    return srv_http_callback(wsi, reason, user, in, len);
}

void srv_server_request_tls_reload(srv_server *srv)
{
    atomic_store(&srv->tls_reload_requested, 1);
    srv_server_wake(srv);
}

void srv_server_reload_tls(srv_server *srv)
{
    const srv_config *cfg = srv->cfg;
    if (!srv->tls_ctx) {
        srv_log("info", "tls_reload_skipped", "{s:s}", "why", "not serving TLS (no --tls-cert)");
        return;
    }
    att_error err = {0};
    srv_tls_pair pair;
    int rc = srv_tls_pair_load(cfg->tls_cert, cfg->tls_key, &pair, &err);
    if (rc == 0)
        rc = srv_tls_install(srv->tls_ctx, &pair, &err);
    if (rc < 0) {
        srv_log("error", "tls_reload_failed", "{s:s,s:s}", "error", err.message, "served",
                "the certificate loaded before, unchanged");
    } else {
        srv_log("info", "tls_reloaded", "{s:s,s:s,s:s}", "cert", cfg->tls_cert, "serial",
                pair.serial, "not_after", pair.not_after);
        warn_key_mode(cfg, &pair);
    }
    srv_tls_pair_free(&pair);
}

/* Loopback only: nobody else can read what crosses it. */
static int listens_on_loopback_only(const char *listen)
{
    struct in_addr a4;
    struct in6_addr a6;
    if (strcmp(listen, "localhost") == 0)
        return 1;
    if (inet_pton(AF_INET, listen, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, listen, &a6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&a6);
    return 0; /* an interface name, a host name, "" (every address) */
}

int srv_server_run(srv_server *srv, void (*ready)(srv_server *srv, void *arg), void *arg,
                   att_error *err)
{
    const srv_config *cfg = srv->cfg;
    srv_log_lws_hook(pause_accepts, srv);
    lws_set_log_level(LLL_ERR | LLL_WARN, srv_log_lws_emit);
    srv->max_conns = fit_max_conns(srv);

    const struct lws_protocols protocols[] = {
        {"http", http_and_tls_callback, srv_http_pss_size(), 0, 0, NULL, 0},
        {SRV_SUBPROTOCOL, srv_ws_callback, sizeof(srv_conn), 2048, 0, NULL, SRV_TX_BATCH_BYTES},
        {SRV_API_PROTOCOL, srv_api_callback, srv_api_pss_size(), 0, 0, NULL, 0},
        {NULL, NULL, 0, 0, 0, NULL, 0},
    };
    static const char *const mount_names[] = {"/healthz", "/metrics", SRV_API_MOUNT};
    static const char *const mount_protocols[] = {"http", "http", SRV_API_PROTOCOL};
    struct lws_http_mount mounts[4];
    memset(mounts, 0, sizeof mounts);
    for (int i = 0; i < 3; i++) {
        mounts[i].mount_next = &mounts[i + 1];
        mounts[i].mountpoint = mount_names[i];
        mounts[i].mountpoint_len = (unsigned char)strlen(mount_names[i]);
        mounts[i].origin = mount_protocols[i];
        mounts[i].origin_protocol = LWSMPRO_CALLBACK;
    }
    mounts[3].mountpoint = "/";
    mounts[3].mountpoint_len = 1;
    mounts[3].origin = cfg->web_dir;
    mounts[3].def = "index.html";
    mounts[3].origin_protocol = LWSMPRO_FILE;

    /* lws' own keepalive is off (zero validity times): it keeps a sul per
     * connection and re-inserts it, O(n) in its sorted timer list, on every
     * ping and pong: 40 % of the service thread with 19,000 idle
     * connections. The heartbeat's sweep pings quiet peers instead
     * (srv_conns_sweep, --ping-interval). */
    lws_retry_bo_t keepalive = {0};

    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = cfg->port;
    info.iface = cfg->listen;
    info.protocols = protocols;
    info.mounts = &mounts[0];
    info.user = srv;
    /* Our own security headers (HTTP.md) on every response, instead of lws'
     * built-in set (LWS_SERVER_OPTION_HTTP_HEADERS_SECURITY_BEST_PRACTICES_
     * ENFORCE), whose CSP differs. */
    info.options = LWS_SERVER_OPTION_LIBEV;
    info.headers = srv_api_security_headers();
    info.count_threads = 1;
    /* TLS on the same port for HTTPS and WSS, set up by tls_vhost_ready.
     * HTTP/1.1 only in ALPN: lws would offer h2, under which the API's
     * responses and the WebSocket upgrade (RFC 8441) take other paths. A
     * plain-HTTP request on the TLS port fails its handshake (no redirect:
     * the address it asked for would already have crossed in the clear). */
    const int tls = cfg->tls_cert[0] != '\0';
    if (tls) {
        info.options |=
            LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT | LWS_SERVER_OPTION_CREATE_VHOST_SSL_CTX;
        info.alpn = "http/1.1";
    }
    /* HSTS when the browser reaches us over https: here, or through a TLS
     * proxy that --public-url names (the same rule makes the login cookie
     * Secure, api.c). A browser ignores it over plain http, so a wrong
     * --public-url cannot lock anyone out of a plain-HTTP server. */
    if (tls || strncasecmp(cfg->public_url, "https://", 8) == 0) {
        srv->hsts_header = (struct lws_protocol_vhost_options){
            srv_api_security_headers(), NULL, "strict-transport-security:", "max-age=31536000"};
        info.headers = &srv->hsts_header;
    }
    /* An IPv4 literal must bind exactly that address: lws' dual-stack path
     * would otherwise listen on every interface. */
    if (strchr(cfg->listen, '.') && !strchr(cfg->listen, ':'))
        info.options |= LWS_SERVER_OPTION_DISABLE_IPV6;
    info.retry_and_idle_policy = &keepalive;
    info.signal_cb = lws_signal;
    info.vhost_name = "attune";
    /* No WebSocket extension, ever: srv_sendq_pack sends finished RFC 6455
     * frames written by hand (ws_frame.h), which a negotiated
     * permessage-deflate would break. The WebSocket callback also refuses
     * any extension lws asks it to confirm (srv_ws_callback). */
    assert(info.extensions == NULL);

    srv->ctx = lws_create_context(&info);
    if (!srv->ctx && srv->tls_error.message[0])
        return att_fail(err, srv->tls_error.code, "TLS: %s", srv->tls_error.message);
    if (srv->ctx && tls && !srv->tls_ctx) {
        lws_context_destroy(srv->ctx);
        srv->ctx = NULL;
        return att_fail(err, ATT_ERR_INTERNAL, "lws made no TLS context for the vhost");
    }
    if (!srv->ctx)
        return att_fail(err, ATT_ERR_INTERNAL,
                        "cannot create the lws context on libev (is libwebsockets-evlib-ev "
                        "installed, and is %s:%d free?)",
                        cfg->listen, cfg->port);
    srv->listen_wsi = find_listen_wsi(srv);
    if (!srv->listen_wsi)
        srv_log("warn", "listen_socket_unknown", "{s:s}", "why",
                "accept failures cannot pause accepting");
    int rc = srv_store_start(srv->store, cfg->commit_window_us, srv_server_wake, discard_batch, srv,
                             err);
    if (rc < 0) {
        lws_context_destroy(srv->ctx);
        srv->ctx = NULL;
        return rc;
    }
    /* No room is folded here: each is loaded when first needed (a hello,
     * an API request; srv_room_get), which also records the `left` a crash
     * left unrecorded, so start-up does not grow with history. */
    heartbeat(&srv->heartbeat_sul); /* also arms the rooms' timer */
    if (!tls && !listens_on_loopback_only(cfg->listen))
        srv_log("warn", "plaintext_listen", "{s:s,s:s}", "listen", cfg->listen, "why",
                "plain HTTP on a non-loopback address: passwords, invitation links and what "
                "participants write cross the network in the clear unless a TLS proxy is in "
                "front (--tls-cert/--tls-key, or deploy/nginx/attune.conf)");
    srv_log("info", "listening", "{s:s,s:i,s:I,s:s,s:b}", "listen", cfg->listen, "port", cfg->port,
            "rooms", (json_int_t)srv->metrics.rooms, "loop", "libev", "tls", tls);
    if (ready)
        ready(srv, arg);
    while (!srv->loop_done)
        if (lws_service(srv->ctx, 0) < 0)
            break;
    /* The rooms still in memory leave it with the process: their summaries
     * go to the store's cache so the next start lists them without folding. */
    srv_rooms_save_summaries(srv->rooms);
    lws_context_destroy(srv->ctx);
    srv->ctx = NULL;
    return 0;
}
