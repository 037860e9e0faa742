/* ws_client.c - RFC 6455 client side for the load generator (see ws_client.h). */
#include "ws_client.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>

#include "ws_frame.h"

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
/* A 101 response from our server is a few hundred bytes; anything near this
 * is not a WebSocket server. */
#define WS_MAX_RESPONSE 8192
/* Buffers that grew past this are given back once empty, so 19,000 idle
 * connections do not each keep the hello ack's worth of memory. */
#define WS_KEEP_CAP 16384

static int fail(ws_client *c, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->error, sizeof c->error, fmt, ap);
    va_end(ap);
    return code;
}

static int buf_reserve(ws_buf *b, size_t extra)
{
    if (b->len + extra <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra)
        cap *= 2;
    unsigned char *p = realloc(b->data, cap);
    if (!p)
        return WS_E_NOMEM;
    b->data = p;
    b->cap = cap;
    return 0;
}

static int buf_append(ws_buf *b, const void *data, size_t len)
{
    if (buf_reserve(b, len) < 0)
        return WS_E_NOMEM;
    memcpy(b->data + b->len, data, len);
    b->len += len;
    return 0;
}

/* Empties b, giving its memory back when it had grown large. */
static void buf_clear(ws_buf *b)
{
    b->len = 0;
    if (b->cap > WS_KEEP_CAP) {
        free(b->data);
        b->data = NULL;
        b->cap = 0;
    }
}

static void buf_free(ws_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

/* xorshift64*: masks only need to be unpredictable to intermediaries, not
 * secret; a CSPRNG call per frame would show up in the generator's CPU. */
static uint32_t next_mask(ws_client *c)
{
    uint64_t x = c->mask_state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    c->mask_state = x;
    return (uint32_t)((x * 0x2545F4914F6CDD1DULL) >> 32);
}

int ws_accept_for_key(const char *key_b64, char *out, size_t out_size)
{
    char joined[128];
    int n = snprintf(joined, sizeof joined, "%s%s", key_b64, WS_GUID);
    if (n < 0 || (size_t)n >= sizeof joined || out_size < 29)
        return WS_E_NOMEM;
    unsigned char digest[SHA_DIGEST_LENGTH];
    SHA1((const unsigned char *)joined, (size_t)n, digest);
    EVP_EncodeBlock((unsigned char *)out, digest, SHA_DIGEST_LENGTH); /* 28 chars + NUL */
    return 0;
}

int ws_client_start_with_key(ws_client *c, int fd, const char *host, const char *path,
                             const char *protocol, const char *origin, uint64_t seed,
                             const unsigned char key[16])
{
    memset(c, 0, sizeof *c);
    c->fd = fd;
    c->state = WS_HANDSHAKE;
    c->close_code = -1;
    c->mask_state = seed ? seed : 0x9E3779B97F4A7C15ULL;
    if (strlen(protocol) >= sizeof c->protocol)
        return fail(c, WS_E_STATE, "subprotocol name too long");
    strcpy(c->protocol, protocol);

    char key_b64[32];
    EVP_EncodeBlock((unsigned char *)key_b64, key, 16);
    if (ws_accept_for_key(key_b64, c->accept_expected, sizeof c->accept_expected) < 0)
        return fail(c, WS_E_NOMEM, "accept computation failed");

    char req[1024];
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\n"
                     "Host: %s\r\n"
                     "Upgrade: websocket\r\n"
                     "Connection: Upgrade\r\n"
                     "Sec-WebSocket-Key: %s\r\n"
                     "Sec-WebSocket-Version: 13\r\n"
                     "Sec-WebSocket-Protocol: %s\r\n"
                     "%s%s%s"
                     "\r\n",
                     path, host, key_b64, protocol, origin ? "Origin: " : "", origin ? origin : "",
                     origin ? "\r\n" : "");
    if (n < 0 || (size_t)n >= sizeof req)
        return fail(c, WS_E_STATE, "handshake request too long");
    if (buf_append(&c->out, req, (size_t)n) < 0)
        return fail(c, WS_E_NOMEM, "out of memory");
    return 0;
}

int ws_client_start(ws_client *c, int fd, const char *host, const char *path, const char *protocol,
                    const char *origin, uint64_t seed)
{
    unsigned char key[16];
    if (RAND_bytes(key, sizeof key) != 1) {
        memset(c, 0, sizeof *c);
        c->fd = fd;
        return fail(c, WS_E_NOMEM, "RAND_bytes failed");
    }
    return ws_client_start_with_key(c, fd, host, path, protocol, origin, seed, key);
}

/* Finds header `name` in the response head and returns its value (trimmed)
 * in out. Returns 1 when found, 0 when not. */
static int header_value(const char *head, const char *name, char *out, size_t out_size)
{
    size_t name_len = strlen(name);
    const char *line = strstr(head, "\r\n");
    while (line && line[2] != '\0') {
        line += 2;
        const char *eol = strstr(line, "\r\n");
        if (!eol)
            return 0;
        if ((size_t)(eol - line) > name_len && line[name_len] == ':' &&
            strncasecmp(line, name, name_len) == 0) {
            const char *v = line + name_len + 1;
            while (v < eol && (*v == ' ' || *v == '\t'))
                v++;
            const char *e = eol;
            while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
                e--;
            size_t n = (size_t)(e - v);
            if (n >= out_size)
                n = out_size - 1;
            memcpy(out, v, n);
            out[n] = '\0';
            return 1;
        }
        line = eol;
    }
    return 0;
}

/* 1 when the comma-separated list contains token (case-insensitive). */
static int list_has_token(const char *list, const char *token)
{
    size_t tl = strlen(token);
    const char *p = list;
    while (*p) {
        while (*p == ' ' || *p == ',' || *p == '\t')
            p++;
        const char *s = p;
        while (*p && *p != ',')
            p++;
        const char *e = p;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        if ((size_t)(e - s) == tl && strncasecmp(s, token, tl) == 0)
            return 1;
    }
    return 0;
}

/* Checks the 101 response in head (NUL-terminated, ending with the blank line). */
static int check_response(ws_client *c, const char *head)
{
    if (strncmp(head, "HTTP/1.1 101", 12) != 0) {
        const char *eol = strstr(head, "\r\n");
        int n = eol ? (int)(eol - head) : 40;
        return fail(c, WS_E_HANDSHAKE, "server answered \"%.*s\"", n > 80 ? 80 : n, head);
    }
    char v[256];
    if (!header_value(head, "Upgrade", v, sizeof v) || strcasecmp(v, "websocket") != 0)
        return fail(c, WS_E_HANDSHAKE, "no Upgrade: websocket");
    if (!header_value(head, "Connection", v, sizeof v) || !list_has_token(v, "upgrade"))
        return fail(c, WS_E_HANDSHAKE, "no Connection: upgrade");
    if (!header_value(head, "Sec-WebSocket-Accept", v, sizeof v) ||
        strcmp(v, c->accept_expected) != 0)
        return fail(c, WS_E_HANDSHAKE, "Sec-WebSocket-Accept missing or wrong");
    if (!header_value(head, "Sec-WebSocket-Protocol", v, sizeof v) || strcmp(v, c->protocol) != 0)
        return fail(c, WS_E_HANDSHAKE, "server did not select subprotocol %s", c->protocol);
    if (header_value(head, "Sec-WebSocket-Extensions", v, sizeof v) && v[0])
        return fail(c, WS_E_HANDSHAKE, "server chose an extension we did not offer: %s", v);
    return 0;
}

/* Queues one masked frame, written by the project's one frame writer
 * (server/net/ws_frame.h). */
static int queue_frame(ws_client *c, int opcode, const void *payload, size_t len)
{
    uint32_t m = next_mask(c);
    unsigned char mask[4] = {(unsigned char)(m >> 24), (unsigned char)(m >> 16),
                             (unsigned char)(m >> 8), (unsigned char)m};
    size_t need = srv_ws_frame_header_len(len, 1) + len;
    if (buf_reserve(&c->out, need) < 0)
        return fail(c, WS_E_NOMEM, "out of memory");
    c->out.len += srv_ws_frame_put(c->out.data + c->out.len, (unsigned)opcode, payload, len, mask);
    return 0;
}

int ws_client_send_text(ws_client *c, const char *text, size_t len)
{
    if (c->state != WS_OPEN)
        return fail(c, WS_E_STATE, "send on a connection that is not open");
    return queue_frame(c, SRV_WS_OP_TEXT, text, len);
}

int ws_client_send_close(ws_client *c, uint16_t code)
{
    if (c->state != WS_OPEN)
        return fail(c, WS_E_STATE, "close on a connection that is not open");
    unsigned char body[2] = {(unsigned char)(code >> 8), (unsigned char)code};
    int rc = queue_frame(c, SRV_WS_OP_CLOSE, body, 2);
    if (rc == 0)
        c->state = WS_CLOSING;
    return rc;
}

/* Handles one complete control frame. */
static int on_control(ws_client *c, int opcode, const unsigned char *p, size_t len)
{
    switch (opcode) {
    case SRV_WS_OP_PING:
        if (c->state == WS_OPEN)
            return queue_frame(c, SRV_WS_OP_PONG, p, len);
        return 0;
    case SRV_WS_OP_PONG:
        return 0;
    case SRV_WS_OP_CLOSE:
        if (len == 1)
            return fail(c, WS_E_PROTOCOL, "close frame with a 1-byte body");
        c->close_code = len >= 2 ? (p[0] << 8 | p[1]) : 1005;
        if (c->state == WS_OPEN) {
            /* Echo the code (RFC 6455 5.5.1); the server then ends TCP. */
            int rc = len >= 2 ? queue_frame(c, SRV_WS_OP_CLOSE, p, 2)
                              : queue_frame(c, SRV_WS_OP_CLOSE, NULL, 0);
            if (rc < 0)
                return rc;
        }
        c->state = WS_CLOSED;
        return 0;
    default:
        return fail(c, WS_E_PROTOCOL, "unknown control opcode %d", opcode);
    }
}

/* Parses as many whole frames as buf holds. Sets *used to the bytes consumed. */
static int parse_frames(ws_client *c, const unsigned char *buf, size_t len, size_t *used,
                        ws_message_fn fn, void *arg)
{
    size_t pos = 0;
    *used = 0;
    while (c->state != WS_CLOSED) {
        if (len - pos < 2)
            break;
        const unsigned char *f = buf + pos;
        int fin = f[0] & 0x80;
        int opcode = f[0] & 0x0F;
        if (f[0] & 0x70)
            return fail(c, WS_E_PROTOCOL, "reserved bits set (no extension was negotiated)");
        if (f[1] & 0x80)
            return fail(c, WS_E_PROTOCOL, "server frame is masked");
        uint64_t plen = f[1] & 0x7F;
        size_t h = 2;
        if (plen == 126) {
            if (len - pos < 4)
                break;
            plen = (uint64_t)f[2] << 8 | f[3];
            h = 4;
        } else if (plen == 127) {
            if (len - pos < 10)
                break;
            plen = 0;
            for (int i = 0; i < 8; i++)
                plen = plen << 8 | f[2 + i];
            if (plen >> 63)
                return fail(c, WS_E_PROTOCOL, "64-bit length with the top bit set");
            h = 10;
        }
        if (opcode & 0x8) {
            if (!fin || plen > 125)
                return fail(c, WS_E_PROTOCOL, "fragmented or long control frame");
        } else if (plen > WS_MAX_MESSAGE || c->msg.len + plen > WS_MAX_MESSAGE) {
            return fail(c, WS_E_TOO_BIG, "message over %u bytes", WS_MAX_MESSAGE);
        }
        if (len - pos - h < plen)
            break;
        const unsigned char *payload = f + h;
        size_t n = (size_t)plen;
        pos += h + n;
        *used = pos;
        int rc = 0;
        if (opcode & 0x8) {
            rc = on_control(c, opcode, payload, n);
        } else if (opcode == SRV_WS_OP_TEXT) {
            if (c->msg_active)
                return fail(c, WS_E_PROTOCOL, "new message inside a fragmented one");
            if (fin) {
                rc = fn(arg, (const char *)payload, n);
            } else {
                c->msg_active = 1;
                rc = buf_append(&c->msg, payload, n);
            }
        } else if (opcode == SRV_WS_OP_CONTINUATION) {
            if (!c->msg_active)
                return fail(c, WS_E_PROTOCOL, "continuation without a message");
            rc = buf_append(&c->msg, payload, n);
            if (rc == 0 && fin) {
                c->msg_active = 0;
                rc = fn(arg, (const char *)c->msg.data, c->msg.len);
                buf_clear(&c->msg);
            }
        } else if (opcode == SRV_WS_OP_BINARY) {
            return fail(c, WS_E_PROTOCOL, "binary frame (the protocol uses text only)");
        } else {
            return fail(c, WS_E_PROTOCOL, "unknown opcode %d", opcode);
        }
        if (rc < 0) {
            if (rc == WS_E_NOMEM)
                return fail(c, rc, "out of memory");
            return rc;
        }
    }
    *used = pos;
    return 0;
}

/* In the handshake state: buffers bytes until the response head is complete
 * and checks it; whatever followed the head stays in c->in. *done is 1 once
 * the connection is open. */
static int feed_handshake(ws_client *c, const unsigned char *data, size_t len, int *done)
{
    *done = 0;
    if (buf_append(&c->in, data, len) < 0)
        return fail(c, WS_E_NOMEM, "out of memory");
    const unsigned char *end = NULL;
    for (size_t i = 3; i < c->in.len; i++) {
        if (c->in.data[i - 3] == '\r' && c->in.data[i - 2] == '\n' && c->in.data[i - 1] == '\r' &&
            c->in.data[i] == '\n') {
            end = c->in.data + i + 1;
            break;
        }
    }
    if (!end) {
        if (c->in.len > WS_MAX_RESPONSE)
            return fail(c, WS_E_HANDSHAKE, "response head over %d bytes", WS_MAX_RESPONSE);
        return 0;
    }
    size_t head_len = (size_t)(end - c->in.data);
    char *head = malloc(head_len + 1);
    if (!head)
        return fail(c, WS_E_NOMEM, "out of memory");
    memcpy(head, c->in.data, head_len);
    head[head_len] = '\0';
    int rc = check_response(c, head);
    free(head);
    if (rc < 0)
        return rc;
    memmove(c->in.data, c->in.data + head_len, c->in.len - head_len);
    c->in.len -= head_len;
    c->state = WS_OPEN;
    *done = 1;
    return 0;
}

int ws_client_feed(ws_client *c, const unsigned char *data, size_t len, ws_message_fn fn, void *arg)
{
    if (c->state == WS_CLOSED)
        return 0; /* anything after the close is ignored */
    if (c->state == WS_HANDSHAKE) {
        int done;
        int rc = feed_handshake(c, data, len, &done);
        if (rc < 0 || !done)
            return rc;
        data = NULL; /* the rest now sits in c->in */
        len = 0;
    }
    size_t used;
    int rc;
    if (c->in.len > 0) {
        if (len > 0 && buf_append(&c->in, data, len) < 0)
            return fail(c, WS_E_NOMEM, "out of memory");
        rc = parse_frames(c, c->in.data, c->in.len, &used, fn, arg);
        if (used == c->in.len) {
            buf_clear(&c->in);
        } else if (used > 0) {
            memmove(c->in.data, c->in.data + used, c->in.len - used);
            c->in.len -= used;
        }
        return rc;
    }
    /* Common case: parse straight from the caller's buffer, keep the tail. */
    rc = parse_frames(c, data, len, &used, fn, arg);
    if (rc == 0 && used < len && c->state != WS_CLOSED &&
        buf_append(&c->in, data + used, len - used) < 0)
        return fail(c, WS_E_NOMEM, "out of memory");
    return rc;
}

/* TLS: drives the handshake. 0 when done, 1 when it waits for the socket
 * (*want_write says which way), or a negative code. */
static int tls_handshake(ws_client *c, int *want_write)
{
    *want_write = 0;
    if (c->tls_ready)
        return 0;
    int r = SSL_do_handshake(c->ssl);
    if (r == 1) {
        c->tls_ready = 1;
        return 0;
    }
    int e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        *want_write = e == SSL_ERROR_WANT_WRITE;
        return 1;
    }
    return fail(c, WS_E_IO, "TLS handshake failed (SSL error %d)", e);
}

int ws_client_use_tls(ws_client *c, void *ssl_ctx)
{
    SSL *ssl = SSL_new(ssl_ctx);
    if (!ssl || SSL_set_fd(ssl, c->fd) != 1) {
        SSL_free(ssl);
        return fail(c, WS_E_NOMEM, "SSL_new failed");
    }
    /* The out buffer may be reallocated between a WANT_WRITE and the retry. */
    SSL_set_mode(ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_set_connect_state(ssl);
    c->ssl = ssl;
    return 0;
}

/* One read from the socket or the TLS connection: > 0 bytes, 0 at end of
 * stream, -1 with errno EAGAIN when nothing is there yet, or a WS_E code
 * (< -1) on failure. */
static ssize_t read_some(ws_client *c, unsigned char *buf, size_t cap)
{
    if (!c->ssl)
        return recv(c->fd, buf, cap, 0);
    int want_write, h = tls_handshake(c, &want_write);
    if (h != 0) {
        errno = EAGAIN;
        return h < 0 ? WS_E_IO : -1;
    }
    int n = SSL_read(c->ssl, buf, cap > INT32_MAX ? INT32_MAX : (int)cap);
    if (n > 0)
        return n;
    int e = SSL_get_error(c->ssl, n);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        errno = EAGAIN;
        return -1;
    }
    if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && errno == 0))
        return 0;
    return fail(c, WS_E_IO, "TLS read failed (SSL error %d)", e);
}

int ws_client_read(ws_client *c, unsigned char *scratch, size_t scratch_size, ws_message_fn fn,
                   void *arg)
{
    for (;;) {
        errno = 0;
        ssize_t n = read_some(c, scratch, scratch_size);
        if (n > 0) {
            int rc = ws_client_feed(c, scratch, (size_t)n, fn, arg);
            if (rc < 0)
                return rc;
            /* A short read means the socket is drained (epoll is
             * level-triggered, so a late byte wakes us again). Not over
             * TLS: OpenSSL may hold decrypted bytes the socket no longer
             * signals, so read until it would block. */
            if ((size_t)n < scratch_size && !c->ssl)
                return 0;
            continue;
        }
        if (n == 0) {
            if (c->state == WS_CLOSED)
                return 1;
            return fail(c, WS_E_IO, "server ended TCP without a close frame");
        }
        if (n < -1)
            return (int)n;
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return 0;
        return fail(c, WS_E_IO, "recv: %s", strerror(errno));
    }
}

/* One write to the socket or the TLS connection, like read_some. */
static ssize_t write_some(ws_client *c, const unsigned char *buf, size_t len, int *want_write)
{
    *want_write = 1;
    if (!c->ssl)
        return send(c->fd, buf, len, MSG_NOSIGNAL);
    int h = tls_handshake(c, want_write);
    if (h != 0) {
        errno = EAGAIN;
        return h < 0 ? WS_E_IO : -1;
    }
    int n = SSL_write(c->ssl, buf, len > INT32_MAX ? INT32_MAX : (int)len);
    if (n > 0)
        return n;
    int e = SSL_get_error(c->ssl, n);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        *want_write = e == SSL_ERROR_WANT_WRITE;
        errno = EAGAIN;
        return -1;
    }
    return fail(c, WS_E_IO, "TLS write failed (SSL error %d)", e);
}

int ws_client_flush(ws_client *c)
{
    int want_write = 0;
    if (c->ssl && !c->tls_ready) {
        int h = tls_handshake(c, &want_write);
        if (h != 0)
            return h < 0 ? h : want_write;
    }
    while (c->out_off < c->out.len) {
        ssize_t n = write_some(c, c->out.data + c->out_off, c->out.len - c->out_off, &want_write);
        if (n > 0) {
            c->out_off += (size_t)n;
            continue;
        }
        if (n < -1)
            return (int)n;
        if (n < 0 && errno == EINTR)
            continue;
        /* Waiting on readability (TLS) needs no write watch: reads are
         * always watched. */
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return want_write;
        return fail(c, WS_E_IO, "send: %s", n < 0 ? strerror(errno) : "wrote nothing");
    }
    c->out_off = 0;
    buf_clear(&c->out);
    return 0;
}

size_t ws_client_pending(const ws_client *c)
{
    return c->out.len - c->out_off;
}

void ws_client_free(ws_client *c)
{
    SSL_free(c->ssl);
    c->ssl = NULL;
    c->tls_ready = 0;
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    c->state = WS_CLOSED;
    buf_free(&c->out);
    buf_free(&c->in);
    buf_free(&c->msg);
    c->out_off = 0;
}
