/* http.c - the lws "http" protocol (protocols[0]): who may connect (the
 * connection caps at accept, per client address and in total, counted until
 * the wsi is destroyed), which Host names the server answers to (DNS
 * rebinding), the handshake gate for /ws (path, subprotocol, Origin
 * allow-list), and the small dynamic endpoints GET /healthz and GET
 * /metrics. Static files are served by an lws file mount. Runs on the lws
 * service thread. */
#include "server.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <openssl/crypto.h>
#include "admin.h"
#include "config_store.h"
#include "api.h"
#include "http.h"
#include "http_reply.h"
#include "log.h"
#include "peer.h"
#include "room_id.h"
#include "ws.h"

/* A request's per-session data is its answer. */
size_t srv_http_pss_size(void)
{
    return sizeof(srv_http_reply);
}

void srv_http_client_addr(struct lws *wsi, const srv_config *cfg, char out[SRV_PEER_ADDR_MAX])
{
    char tcp[SRV_PEER_ADDR_MAX] = "";
    char xff[512] = "";
    lws_get_peer_simple(wsi, tcp, sizeof tcp);
    if (cfg->n_trusted_proxies && lws_hdr_copy(wsi, xff, sizeof xff, WSI_TOKEN_X_FORWARDED_FOR) < 0)
        xff[0] = '\0'; /* too long to be from our proxy chain: ignored */
    srv_peer_client(cfg->trusted_proxies, cfg->n_trusted_proxies, tcp, xff, out);
}

/* Splits "host[:port]" / "[v6]:port" into a lowercase host and a port
 * (default_port when none). Returns -1 when malformed. */
static int split_authority(const char *text, int default_port, char host[256], int *port)
{
    const char *colon = NULL, *h = text, *hend;
    if (text[0] == '[') {
        const char *close = strchr(text, ']');
        if (!close)
            return -1;
        h = text + 1;
        hend = close;
        if (close[1] == ':')
            colon = close + 1;
        else if (close[1])
            return -1;
    } else {
        colon = strrchr(text, ':');
        hend = colon ? colon : text + strlen(text);
    }
    size_t n = (size_t)(hend - h);
    if (n == 0 || n >= 256)
        return -1;
    for (size_t i = 0; i < n; i++)
        host[i] = (char)((h[i] >= 'A' && h[i] <= 'Z') ? h[i] + 32 : h[i]);
    host[n] = '\0';
    if (n && host[n - 1] == '.')
        host[n - 1] = '\0'; /* "example.org." names example.org */
    *port = default_port;
    if (colon) {
        char *end = NULL;
        long p = strtol(colon + 1, &end, 10);
        if (!colon[1] || !end || *end || p < 1 || p > 65535)
            return -1;
        *port = (int)p;
    }
    return 0;
}

static int is_loopback_name(const char *host)
{
    if (strcmp(host, "localhost") == 0)
        return 1;
    size_t n = strlen(host);
    if (n > 10 && strcmp(host + n - 10, ".localhost") == 0)
        return 1;
    unsigned char a[16];
    if (inet_pton(AF_INET, host, a) == 1)
        return a[0] == 127;
    if (inet_pton(AF_INET6, host, a) == 1) {
        static const unsigned char one[16] = {[15] = 1};
        return memcmp(a, one, 16) == 0;
    }
    return 0;
}

/* Listening where loopback clients reach us: a loopback or wildcard bind. */
static int listens_on_loopback(const srv_config *cfg)
{
    return !cfg->listen[0] || strcmp(cfg->listen, "0.0.0.0") == 0 ||
           strcmp(cfg->listen, "::") == 0 || is_loopback_name(cfg->listen);
}

int srv_http_host_allowed(struct lws *wsi, const srv_config *cfg)
{
    char value[300], host[256], want[256];
    int n = lws_hdr_copy(wsi, value, sizeof value, WSI_TOKEN_HOST);
    if (n == 0 && lws_hdr_total_length(wsi, WSI_TOKEN_HOST) == 0)
        return 1; /* no Host: HTTP/1.0 or a script, never a browser */
    int port, want_port;
    if (n < 0 || split_authority(value, -1, host, &port) < 0)
        return 0;
    if (is_loopback_name(host) && listens_on_loopback(cfg))
        return 1;
    /* --public-url's (or the invitations' default) authority. */
    char base[SRV_URL_MAX];
    srv_link_options links = srv_config_links(cfg);
    srv_admin_base_url(&links, base, sizeof base);
    const char *rest = strstr(base, "://");
    if (rest) {
        int https = strncasecmp(base, "https:", 6) == 0;
        char authority[300];
        rest += 3;
        size_t len = strcspn(rest, "/?#");
        if (len < sizeof authority) {
            memcpy(authority, rest, len);
            authority[len] = '\0';
            if (split_authority(authority, https ? 443 : 80, want, &want_port) == 0 &&
                strcmp(want, host) == 0 && (port == -1 || port == want_port))
                return 1;
        }
    }
    for (int i = 0; i < cfg->n_allowed_hosts; i++) {
        if (split_authority(cfg->allowed_hosts[i], -1, want, &want_port) == 0 &&
            strcmp(want, host) == 0 && (want_port == -1 || want_port == port))
            return 1;
    }
    return 0;
}

int srv_http_origin_allowed(struct lws *wsi, const srv_config *cfg)
{
    char origin[256], host[256];
    int n = lws_hdr_copy(wsi, origin, sizeof origin, WSI_TOKEN_ORIGIN);
    if (n <= 0)
        return lws_hdr_total_length(wsi, WSI_TOKEN_ORIGIN) == 0; /* no Origin: not a browser */
    for (int i = 0; i < cfg->n_origins; i++)
        if (strcmp(origin, cfg->origins[i]) == 0)
            return 1;
    /* Same origin: the page this server served is talking back to it (the
     * Host itself checked against the allow-list, so a rebound name that
     * sends Host and Origin alike is not "same origin"). */
    if (lws_hdr_copy(wsi, host, sizeof host, WSI_TOKEN_HOST) > 0 &&
        srv_http_host_allowed(wsi, cfg)) {
        const char *rest = NULL;
        if (strncmp(origin, "http://", 7) == 0)
            rest = origin + 7;
        else if (strncmp(origin, "https://", 8) == 0)
            rest = origin + 8;
        if (rest && strcasecmp(rest, host) == 0)
            return 1;
    }
    return 0;
}

static void log_refusal(srv_server *srv, const char *cap, const char *addr)
{
    uint64_t held = 0;
    if (srv_log_limit(&srv->refusal_log, srv_mono_ms(), &held))
        srv_log("warn", "connection_refused", "{s:s,s:s,s:I,s:I}", "cap", cap, "peer", addr, "open",
                (json_int_t)srv_peer_total(srv->peers), "suppressed", (json_int_t)held);
}

/* At accept, before lws allocates anything for the connection: the caps by
 * TCP peer. A trusted proxy is capped only in total here; its clients are
 * counted by X-Forwarded-For at the upgrade (confirm_upgrade). */
static int filter_connection(struct lws *wsi, srv_server *srv,
                             const struct lws_filter_network_conn_args *filt)
{
    char addr[SRV_PEER_ADDR_MAX];
    if (!srv->listen_wsi)
        srv->listen_wsi = wsi; /* the listen socket's wsi */
    if (srv_peer_from_sockaddr((const struct sockaddr *)&filt->cli_addr, addr) < 0)
        return 0; /* not IP (no such listener): nothing to count by */
    if (srv_peer_total(srv->peers) >= srv->max_conns) {
        srv->metrics.conn_refused_total++;
        log_refusal(srv, "total", addr);
        return 1;
    }
    const srv_config *cfg = srv->cfg;
    if (!srv_cidr_list_contains(cfg->trusted_proxies, cfg->n_trusted_proxies, addr) &&
        srv_peer_count(srv->peers, addr) >= cfg->max_conns_per_address) {
        srv->metrics.conn_refused_address++;
        log_refusal(srv, "per_address", addr);
        return 1;
    }
    return 0;
}

/* The accepted wsi exists: count it under its TCP peer until destroyed. */
static int hold_connection(struct lws *wsi, srv_server *srv)
{
    char tcp[SRV_PEER_ADDR_MAX] = "", addr[SRV_PEER_ADDR_MAX];
    lws_get_peer_simple(wsi, tcp, sizeof tcp);
    if (srv_peer_normalise(tcp, addr) < 0)
        return 0;
    srv_peer_entry *e = srv_peer_hold(srv->peers, addr);
    if (!e)
        return -1;
    lws_set_opaque_user_data(wsi, e);
    return 0;
}

const char *srv_http_conn_addr(struct lws *wsi)
{
    const srv_peer_entry *e = lws_get_opaque_user_data(wsi);
    return e ? srv_peer_entry_addr(e) : "";
}

static void release_connection(struct lws *wsi, srv_server *srv)
{
    srv_peer_entry *e = lws_get_opaque_user_data(wsi);
    if (!e || !srv || !srv->peers)
        return;
    lws_set_opaque_user_data(wsi, NULL);
    srv_peer_release(srv->peers, e);
}

/* Behind a trusted proxy the connection is re-counted under the client
 * address X-Forwarded-For gives. Returns 1 when that address is at its cap. */
static int recount_behind_proxy(struct lws *wsi, srv_server *srv)
{
    const srv_config *cfg = srv->cfg;
    srv_peer_entry *e = lws_get_opaque_user_data(wsi);
    if (!cfg->n_trusted_proxies || !e ||
        !srv_cidr_list_contains(cfg->trusted_proxies, cfg->n_trusted_proxies,
                                srv_peer_entry_addr(e)))
        return 0;
    char client[SRV_PEER_ADDR_MAX];
    srv_http_client_addr(wsi, cfg, client);
    if (strcmp(client, srv_peer_entry_addr(e)) == 0)
        return 0;
    if (srv_peer_count(srv->peers, client) >= cfg->max_conns_per_address) {
        srv->metrics.conn_refused_address++;
        log_refusal(srv, "per_address", client);
        return 1;
    }
    srv_peer_entry *moved = srv_peer_hold(srv->peers, client);
    if (!moved)
        return 0; /* out of memory: it stays counted under the proxy */
    srv_peer_release(srv->peers, e);
    lws_set_opaque_user_data(wsi, moved);
    return 0;
}

/* Only a POST under /api may carry a body, and only with Content-Length:
 * lws restarts its own content timeout with every piece of a body, so a
 * body dripped to a file mount or /healthz (or sent chunked) would hold the
 * connection for ever; the API's bodies have --body-timeout (api.c). */
static const char *body_refused(struct lws *wsi)
{
    char len_text[32];
    if (lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING) > 0)
        return "send the body with Content-Length";
    long long n = 0;
    if (lws_hdr_copy(wsi, len_text, sizeof len_text, WSI_TOKEN_HTTP_CONTENT_LENGTH) > 0)
        n = strtoll(len_text, NULL, 10);
    if (n == 0)
        return NULL;
    char uri[160];
    if (lws_hdr_copy(wsi, uri, sizeof uri, WSI_TOKEN_POST_URI) > 0 &&
        strncmp(uri, SRV_API_MOUNT "/", strlen(SRV_API_MOUNT) + 1) == 0)
        return NULL;
    return "no request body is accepted here";
}

int srv_http_ws_room(struct lws *wsi, char out[SRV_ROOM_ID_MAX + 1])
{
    /* lws keeps each urldecoded argument as a fragment of the URI_ARGS
     * token. Every one is looked at: a second room= is as wrong as a bad
     * one (the proxy hashes the first, the server would check another). */
    int found = 0;
    out[0] = '\0';
    for (int i = 0; lws_hdr_fragment_length(wsi, WSI_TOKEN_HTTP_URI_ARGS, i) > 0; i++) {
        /* No argument of /ws is this long: refused rather than skipped
         * unread (it could be a room= the proxy routed by). */
        char arg[1024];
        if (lws_hdr_copy_fragment(wsi, arg, sizeof arg, WSI_TOKEN_HTTP_URI_ARGS, i) < 0)
            return -1;
        if (strcmp(arg, "room") == 0)
            return -1; /* "?room" with no value */
        if (strncmp(arg, "room=", 5) != 0)
            continue;
        if (found || !srv_room_id_valid(arg + 5))
            return -1;
        memcpy(out, arg + 5, strlen(arg + 5) + 1); /* valid: at most SRV_ROOM_ID_MAX */
        found = 1;
    }
    return found;
}

static int confirm_upgrade(struct lws *wsi, srv_server *srv, const char *upgrade)
{
    char room[SRV_ROOM_ID_MAX + 1];
    char uri[64], proto[128];
    int status = 0;
    const char *why = NULL;
    if (!upgrade || strcasecmp(upgrade, "websocket") != 0) {
        status = HTTP_STATUS_FORBIDDEN;
        why = "not a websocket upgrade";
    } else if (lws_hdr_copy(wsi, uri, sizeof uri, WSI_TOKEN_GET_URI) <= 0 ||
               strcmp(uri, SRV_WS_PATH) != 0) {
        status = HTTP_STATUS_NOT_FOUND;
        why = "wrong path";
    } else if (lws_hdr_copy(wsi, proto, sizeof proto, WSI_TOKEN_PROTOCOL) <= 0 ||
               !strstr(proto, SRV_SUBPROTOCOL)) {
        status = HTTP_STATUS_BAD_REQUEST;
        why = "subprotocol attune.v1 required";
    } else if (srv_http_ws_room(wsi, room) < 0) {
        status = HTTP_STATUS_BAD_REQUEST;
        why = "room= is not a room id";
    } else if (!srv_http_host_allowed(wsi, srv->cfg)) {
        status = HTTP_STATUS_FORBIDDEN;
        why = "host not allowed";
        srv->metrics.host_rejects++;
    } else if (!srv_http_origin_allowed(wsi, srv->cfg)) {
        status = HTTP_STATUS_FORBIDDEN;
        why = "origin not allowed";
        srv->metrics.origin_rejects++;
    } else if (srv->stopping) {
        status = HTTP_STATUS_SERVICE_UNAVAILABLE;
        why = "shutting down";
    } else if (recount_behind_proxy(wsi, srv)) {
        status = 429;
        why = "too many connections from this address";
    }
    if (!status)
        return 0;
    char peer[SRV_PEER_ADDR_MAX];
    srv_http_client_addr(wsi, srv->cfg, peer);
    srv_log("info", "upgrade_refused", "{s:i,s:s,s:s}", "status", status, "why", why, "peer", peer);
    if (lws_return_http_status(wsi, (unsigned int)status, NULL))
        return -1;
    return 1; /* headers sent: lws completes the transaction */
}

/* /metrics: with --metrics-token, whoever sends it; without, only a direct
 * connection from a loopback address (not a proxy's, which would relay
 * anyone). */
static int metrics_allowed(struct lws *wsi, const srv_config *cfg)
{
    if (cfg->metrics_token[0]) {
        char auth[256];
        if (lws_hdr_copy(wsi, auth, sizeof auth, WSI_TOKEN_HTTP_AUTHORIZATION) <= 0 ||
            strncasecmp(auth, "Bearer ", 7) != 0)
            return 0;
        size_t n = strlen(auth + 7), want = strlen(cfg->metrics_token);
        return n == want && CRYPTO_memcmp(auth + 7, cfg->metrics_token, n) == 0;
    }
    char tcp[SRV_PEER_ADDR_MAX] = "", addr[SRV_PEER_ADDR_MAX];
    lws_get_peer_simple(wsi, tcp, sizeof tcp);
    if (srv_peer_normalise(tcp, addr) < 0 || !is_loopback_name(addr) ||
        lws_hdr_total_length(wsi, WSI_TOKEN_X_FORWARDED_FOR) > 0)
        return 0;
    return !srv_cidr_list_contains(cfg->trusted_proxies, cfg->n_trusted_proxies, addr);
}

static int handle_get(struct lws *wsi, srv_server *srv, srv_http_reply *reply)
{
    char uri[64];
    if (lws_hdr_copy(wsi, uri, sizeof uri, WSI_TOKEN_GET_URI) <= 0) {
        lws_return_http_status(wsi, HTTP_STATUS_METHOD_NOT_ALLOWED, NULL);
        return lws_http_transaction_completed(wsi) ? -1 : 0;
    }
    int rc;
    if (strcmp(uri, "/healthz") == 0) {
        /* Public: it says whether the server serves, nothing about use. */
        char text[64];
        int n =
            snprintf(text, sizeof text, "{\"status\":\"%s\"}\n", srv->stopping ? "stopping" : "ok");
        rc = srv_http_reply_copy(wsi, reply, srv->stopping ? 503 : 200, "application/json", text,
                                 (size_t)n);
    } else if (strcmp(uri, "/metrics") == 0 && !metrics_allowed(wsi, srv->cfg)) {
        static const char text[] = "{\"error\":\"forbidden\",\"message\":\"/metrics needs the "
                                   "metrics token (Authorization: Bearer)\"}\n";
        rc = srv_http_reply_copy(wsi, reply, 403, "application/json", text, sizeof text - 1);
    } else if (strcmp(uri, "/metrics") == 0) {
        size_t len = 0;
        srv_store_stats stats;
        srv_store_get_stats(srv->store, &stats);
        char *text = srv_metrics_render(&srv->metrics, &stats, &len);
        rc = text ? srv_http_reply_copy(wsi, reply, 200, "text/plain; version=0.0.4", text, len)
                  : -1;
        free(text);
    } else {
        lws_return_http_status(wsi, HTTP_STATUS_NOT_FOUND, NULL);
        return lws_http_transaction_completed(wsi) ? -1 : 0;
    }
    return rc < 0 ? -1 : 0;
}

int srv_http_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                      size_t len)
{
    srv_http_reply *reply = user;
    srv_server *srv = lws_context_user(lws_get_context(wsi));
    switch (reason) {
    case LWS_CALLBACK_FILTER_NETWORK_CONNECTION:
        /* wsi is the listen socket's; user points at the accept args */
        return srv ? filter_connection(wsi, srv, user) : 0;
    case LWS_CALLBACK_SERVER_NEW_CLIENT_INSTANTIATED:
        return srv ? hold_connection(wsi, srv) : 0;
    case LWS_CALLBACK_WSI_DESTROY:
        /* any wsi, with its protocol's user space: reply is not ours here */
        release_connection(wsi, srv);
        return 0;
    case LWS_CALLBACK_FILTER_HTTP_CONNECTION:
        if (srv && !srv_http_host_allowed(wsi, srv->cfg)) {
            char peer[SRV_PEER_ADDR_MAX];
            srv_http_client_addr(wsi, srv->cfg, peer);
            srv->metrics.host_rejects++;
            srv_log("info", "host_refused", "{s:s}", "peer", peer);
            lws_return_http_status(wsi, 421, "this server does not answer to that Host name");
            return 1; /* closes the connection */
        }
        if (srv) {
            const char *why = body_refused(wsi);
            if (why) {
                char peer[SRV_PEER_ADDR_MAX];
                srv_http_client_addr(wsi, srv->cfg, peer);
                srv_log("info", "body_refused", "{s:s,s:s}", "why", why, "peer", peer);
                lws_return_http_status(wsi, HTTP_STATUS_BAD_REQUEST, why);
                return 1;
            }
        }
        break;
    case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
        return confirm_upgrade(wsi, srv, in);
    case LWS_CALLBACK_HTTP:
        return handle_get(wsi, srv, reply);
    case LWS_CALLBACK_HTTP_WRITEABLE:
        return reply ? srv_http_reply_write(wsi, reply, NULL) : 0;
    case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
    case LWS_CALLBACK_CLOSED_HTTP:
        if (reply)
            srv_http_reply_clear(reply);
        break;
    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}
