/* http.c - the lws "http" protocol: the handshake gate for /ws (path,
 * subprotocol, Origin allow-list) and the small dynamic endpoints GET
 * /healthz and GET /metrics. Static files are served by an lws file mount.
 * Runs on the lws service thread. */
#include "server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "log.h"

typedef struct {
    unsigned char *body; /* LWS_PRE headroom, then len bytes */
    size_t len;
    int status;
    const char *content_type;
    int headers_sent;
} http_pss;

int srv_http_origin_allowed(struct lws *wsi, const srv_config *cfg)
{
    char origin[256], host[256];
    int n = lws_hdr_copy(wsi, origin, sizeof origin, WSI_TOKEN_ORIGIN);
    if (n <= 0)
        return lws_hdr_total_length(wsi, WSI_TOKEN_ORIGIN) == 0; /* no Origin: not a browser */
    for (int i = 0; i < cfg->n_origins; i++)
        if (strcmp(origin, cfg->origins[i]) == 0)
            return 1;
    /* Same origin: the page this server served is talking back to it. */
    if (lws_hdr_copy(wsi, host, sizeof host, WSI_TOKEN_HOST) > 0) {
        const char *rest = NULL;
        if (strncmp(origin, "http://", 7) == 0)
            rest = origin + 7;
        else if (strncmp(origin, "https://", 8) == 0)
            rest = origin + 8;
        if (rest && strcmp(rest, host) == 0)
            return 1;
    }
    return 0;
}

static int confirm_upgrade(struct lws *wsi, srv_server *srv, const char *upgrade)
{
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
    } else if (!srv_http_origin_allowed(wsi, srv->cfg)) {
        status = HTTP_STATUS_FORBIDDEN;
        why = "origin not allowed";
        srv->metrics.origin_rejects++;
    } else if (srv->stopping) {
        status = HTTP_STATUS_SERVICE_UNAVAILABLE;
        why = "shutting down";
    }
    if (!status)
        return 0;
    srv_log("info", "upgrade_refused", "{s:i,s:s}", "status", status, "why", why);
    if (lws_return_http_status(wsi, (unsigned int)status, NULL))
        return -1;
    return 1; /* headers sent: lws completes the transaction */
}

static int prepare_body(http_pss *p, int status, const char *type, const char *text, size_t len)
{
    p->body = malloc(LWS_PRE + len + 1);
    if (!p->body)
        return -1;
    memcpy(p->body + LWS_PRE, text, len);
    p->len = len;
    p->status = status;
    p->content_type = type;
    p->headers_sent = 0;
    return 0;
}

static int handle_get(struct lws *wsi, srv_server *srv, http_pss *p)
{
    char uri[64];
    if (lws_hdr_copy(wsi, uri, sizeof uri, WSI_TOKEN_GET_URI) <= 0) {
        lws_return_http_status(wsi, HTTP_STATUS_METHOD_NOT_ALLOWED, NULL);
        return lws_http_transaction_completed(wsi) ? -1 : 0;
    }
    int rc;
    if (strcmp(uri, "/healthz") == 0) {
        char text[160];
        int n =
            snprintf(text, sizeof text, "{\"status\":\"%s\",\"rooms\":%lld,\"connections\":%lld}\n",
                     srv->stopping ? "stopping" : "ok", (long long)srv->metrics.rooms,
                     (long long)srv->metrics.connections);
        rc = prepare_body(p, srv->stopping ? 503 : 200, "application/json", text, (size_t)n);
    } else if (strcmp(uri, "/metrics") == 0) {
        size_t len = 0;
        srv_store_stats stats;
        srv_store_get_stats(srv->store, &stats);
        char *text = srv_metrics_render(&srv->metrics, &stats, &len);
        rc = text ? prepare_body(p, 200, "text/plain; version=0.0.4", text, len) : -1;
        free(text);
    } else {
        lws_return_http_status(wsi, HTTP_STATUS_NOT_FOUND, NULL);
        return lws_http_transaction_completed(wsi) ? -1 : 0;
    }
    if (rc < 0)
        return -1;
    lws_callback_on_writable(wsi);
    return 0;
}

static int on_http_writeable(struct lws *wsi, http_pss *p)
{
    if (!p->body)
        return 0;
    if (!p->headers_sent) {
        unsigned char buf[LWS_PRE + 512], *start = buf + LWS_PRE, *pos = start,
                                          *end = buf + sizeof buf - 1;
        if (lws_add_http_common_headers(wsi, (unsigned int)p->status, p->content_type,
                                        (lws_filepos_t)p->len, &pos, end) ||
            lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CACHE_CONTROL,
                                         (const unsigned char *)"no-store", 8, &pos, end) ||
            lws_finalize_write_http_header(wsi, start, &pos, end))
            return -1;
        p->headers_sent = 1;
        lws_callback_on_writable(wsi);
        return 0;
    }
    int n = lws_write(wsi, p->body + LWS_PRE, p->len, LWS_WRITE_HTTP_FINAL);
    free(p->body);
    p->body = NULL;
    if (n < (int)p->len)
        return -1;
    return lws_http_transaction_completed(wsi) ? -1 : 0;
}

int srv_http_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                      size_t len)
{
    http_pss *p = user;
    srv_server *srv = lws_context_user(lws_get_context(wsi));
    switch (reason) {
    case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
        return confirm_upgrade(wsi, srv, in);
    case LWS_CALLBACK_HTTP:
        return handle_get(wsi, srv, p);
    case LWS_CALLBACK_HTTP_WRITEABLE:
        return p ? on_http_writeable(wsi, p) : 0;
    case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
    case LWS_CALLBACK_CLOSED_HTTP:
        if (p) {
            free(p->body);
            p->body = NULL;
        }
        break;
    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}
