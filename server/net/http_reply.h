/* http_reply.h - the one writer of the server's HTTP responses: a status, the
 * headers every answer carries (Content-Type and Content-Length, Cache-Control:
 * no-store, and the vhost's security headers: api.c's, behind
 * Strict-Transport-Security when the browser reaches us over https, see
 * srv_server_run), the few that some carry
 * (Set-Cookie, Retry-After, Connection: close), and the body, written from
 * WRITEABLE one lws_write at a time in pieces of at most 16 KiB.
 *
 * Used by the "http" protocol (GET /healthz, /metrics), the API (every /api
 * answer) and the dashboard's event stream (room_events.c, whose body never
 * ends: it uses the header and piece writers on its own buffer).
 *
 * Ownership: an srv_http_reply lives in a request's per-session data and
 * owns its body until the body is written or srv_http_reply_clear.
 * Threads: the lws service thread only. */
#ifndef SRV_HTTP_REPLY_H
#define SRV_HTTP_REPLY_H

#include <libwebsockets.h>
#include <stddef.h>
#include <stdint.h>

/* The largest body piece one WRITEABLE sends. */
#define SRV_HTTP_PIECE_BYTES 16384

typedef struct {
    int status;
    const char *content_type; /* static text; sent only with a body */
    char *body;               /* LWS_PRE headroom, then len bytes; NULL: nothing to write */
    size_t len, sent;
    int headers_sent;
} srv_http_reply;

/* The headers only some answers carry (the API's). */
typedef struct {
    char set_cookie[160];  /* "" for none */
    int64_t retry_after_s; /* 0 for none */
    int close_after;       /* Connection: close, and close once the body is out */
} srv_http_extra;

/* Answers with a copy of text[0..len) (type NULL: no body type), to be
 * written from the next WRITEABLE, which this asks for. 0, or -1 out of
 * memory. */
int srv_http_reply_copy(struct lws *wsi, srv_http_reply *r, int status, const char *type,
                        const char *text, size_t len);

/* The same, taking body: malloc'd, LWS_PRE bytes of headroom before its
 * len bytes (made that way by whoever built it, so it is not copied). */
void srv_http_reply_take(struct lws *wsi, srv_http_reply *r, int status, const char *type,
                         char *body, size_t len);

/* WRITEABLE: writes the headers (with `extra`'s, NULL for none) or the
 * next piece and asks for WRITEABLE again while more remains. After the
 * last piece the body is freed and the HTTP transaction completed (kept
 * alive), or, with extra->close_after, the connection closed. Returns 0,
 * or -1 when lws must close the connection. With nothing to write it does
 * nothing (lws may call WRITEABLE anyway). */
int srv_http_reply_write(struct lws *wsi, srv_http_reply *r, const srv_http_extra *extra);

/* Frees the body and forgets the reply (a new request on a kept-alive
 * connection, or the connection closing). */
void srv_http_reply_clear(srv_http_reply *r);

/* The status line and headers; content_len LWS_ILLEGAL_HTTP_CONTENT_LEN for
 * a body without a length (a stream). `extra` gives the optional headers
 * (NULL: none). 0, or -1 when they do not fit or cannot be written. */
int srv_http_write_headers(struct lws *wsi, int status, const char *type, lws_filepos_t content_len,
                           const srv_http_extra *extra);

/* The next piece of buf[*sent..len) (buf has LWS_PRE headroom; the bytes
 * before a later piece are already-sent body, free to reuse as lws'
 * headroom). `final`: the body ends with buf. Returns 1 when all of buf is
 * out, 0 when more remains (WRITEABLE asked for), -1 on a failed write. */
int srv_http_write_piece(struct lws *wsi, char *buf, size_t len, size_t *sent, int final);

#endif
