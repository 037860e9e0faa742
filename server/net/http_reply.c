/* http_reply.c - HTTP responses: headers and body pieces (see http_reply.h). */
#include "http_reply.h"

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A body this big leaves glibc's heap grown by its copies (a long room list,
 * a log page); after it, the pages go back so RSS follows what is kept. */
#define TRIM_AFTER_BYTES (1 << 20)

void srv_http_reply_take(struct lws *wsi, srv_http_reply *r, int status, const char *type,
                         char *body, size_t len)
{
    free(r->body);
    r->status = status;
    r->content_type = type;
    r->body = body;
    r->len = len;
    r->sent = 0;
    r->headers_sent = 0;
    lws_callback_on_writable(wsi);
}

int srv_http_reply_copy(struct lws *wsi, srv_http_reply *r, int status, const char *type,
                        const char *text, size_t len)
{
    char *body = malloc(LWS_PRE + len + 1);
    if (!body)
        return -1;
    if (len)
        memcpy(body + LWS_PRE, text, len);
    srv_http_reply_take(wsi, r, status, type, body, len);
    return 0;
}

void srv_http_reply_clear(srv_http_reply *r)
{
    free(r->body);
    memset(r, 0, sizeof *r);
}

int srv_http_write_headers(struct lws *wsi, int status, const char *type, lws_filepos_t content_len,
                           const srv_http_extra *extra)
{
    unsigned char buf[LWS_PRE + 1024], *start = buf + LWS_PRE, *p = start,
                                       *end = buf + sizeof buf - 1;
    if (lws_add_http_common_headers(wsi, (unsigned int)status, type, content_len, &p, end) ||
        lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CACHE_CONTROL,
                                     (const unsigned char *)"no-store", 8, &p, end))
        return -1;
    if (extra && extra->set_cookie[0] &&
        lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_SET_COOKIE,
                                     (const unsigned char *)extra->set_cookie,
                                     (int)strlen(extra->set_cookie), &p, end))
        return -1;
    if (extra && extra->retry_after_s > 0) {
        char v[24];
        int n = snprintf(v, sizeof v, "%lld", (long long)extra->retry_after_s);
        if (lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_RETRY_AFTER, (const unsigned char *)v,
                                         n, &p, end))
            return -1;
    }
    if (extra && extra->close_after &&
        lws_add_http_header_by_token(wsi, WSI_TOKEN_CONNECTION, (const unsigned char *)"close", 5,
                                     &p, end))
        return -1;
    return lws_finalize_write_http_header(wsi, start, &p, end) ? -1 : 0;
}

int srv_http_write_piece(struct lws *wsi, char *buf, size_t len, size_t *sent, int final)
{
    size_t n = len - *sent;
    int last = n <= SRV_HTTP_PIECE_BYTES;
    if (!last)
        n = SRV_HTTP_PIECE_BYTES;
    /* lws_write needs LWS_PRE writable bytes before what it sends. */
    int w = lws_write(wsi, (unsigned char *)buf + LWS_PRE + *sent, n,
                      last && final ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP);
    if (w < (int)n)
        return -1;
    *sent += n;
    if (last)
        return 1;
    lws_callback_on_writable(wsi);
    return 0;
}

int srv_http_reply_write(struct lws *wsi, srv_http_reply *r, const srv_http_extra *extra)
{
    if (!r->body)
        return 0;
    if (!r->headers_sent) {
        if (srv_http_write_headers(wsi, r->status, r->len ? r->content_type : NULL,
                                   (lws_filepos_t)r->len, extra) < 0)
            return -1;
        r->headers_sent = 1;
        if (r->len) {
            lws_callback_on_writable(wsi); /* one lws_write per WRITEABLE */
            return 0;
        }
    } else {
        int rc = srv_http_write_piece(wsi, r->body, r->len, &r->sent, 1);
        if (rc <= 0)
            return rc;
    }
    size_t len = r->len;
    free(r->body);
    r->body = NULL;
    if (len >= TRIM_AFTER_BYTES)
        malloc_trim(0);
    if (extra && extra->close_after)
        return -1;
    return lws_http_transaction_completed(wsi) ? -1 : 0;
}
