/* ws.c - the RFC 6455 client (see ws.h). */
#include "ws.h"

#include <errno.h>
#include <netdb.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define HANDSHAKE_MAX 8192

static int send_all(int fd, const void *buf, size_t len)
{
    const unsigned char *p = buf;
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int tcp_connect(const char *host, int port, char *why, size_t why_size)
{
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%d", port);
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int gai = getaddrinfo(host, portstr, &hints, &res);
    if (gai != 0) {
        snprintf(why, why_size, "cannot resolve %s: %s", host, gai_strerror(gai));
        return -1;
    }
    int fd = -1, saved = 0;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0)
            continue;
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        saved = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0)
        snprintf(why, why_size, "cannot connect to %s:%d: %s", host, port,
                 saved ? strerror(saved) : "no address");
    return fd;
}

/* Value of header `name` in the response head (NUL-terminated), copied to out. */
static int header_value(const char *head, const char *name, char *out, size_t out_size)
{
    size_t nlen = strlen(name);
    for (const char *line = strstr(head, "\r\n"); line; line = strstr(line, "\r\n")) {
        line += 2;
        if (strncasecmp(line, name, nlen) == 0 && line[nlen] == ':') {
            const char *v = line + nlen + 1;
            while (*v == ' ' || *v == '\t')
                v++;
            size_t vlen = strcspn(v, "\r\n");
            while (vlen > 0 && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
                vlen--;
            if (vlen >= out_size)
                return -1;
            memcpy(out, v, vlen);
            out[vlen] = 0;
            return 0;
        }
    }
    return -1;
}

static int reserve(unsigned char **buf, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    size_t cap2 = *cap ? *cap : 4096;
    while (cap2 < need)
        cap2 *= 2;
    unsigned char *b = realloc(*buf, cap2);
    if (!b)
        return -1;
    *buf = b;
    *cap = cap2;
    return 0;
}

int cli_ws_connect(cli_ws *ws, const char *host, int port, const char *path,
                   const char *subprotocol, char *why, size_t why_size)
{
    memset(ws, 0, sizeof *ws);
    ws->fd = -1;
    unsigned char nonce[16];
    char key[32], expect[64], digest_in[128];
    if (RAND_bytes(nonce, sizeof nonce) != 1) {
        snprintf(why, why_size, "no randomness for the handshake key");
        return -1;
    }
    EVP_EncodeBlock((unsigned char *)key, nonce, sizeof nonce);
    snprintf(digest_in, sizeof digest_in, "%s%s", key, WS_GUID);
    unsigned char sha[EVP_MAX_MD_SIZE];
    unsigned int sha_len = 0;
    if (EVP_Digest(digest_in, strlen(digest_in), sha, &sha_len, EVP_sha1(), NULL) != 1) {
        snprintf(why, why_size, "SHA-1 unavailable");
        return -1;
    }
    EVP_EncodeBlock((unsigned char *)expect, sha, (int)sha_len);

    int fd = tcp_connect(host, port, why, why_size);
    if (fd < 0)
        return -1;
    char req[1024];
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: %s%s%s:%d\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                     "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: %s\r\n"
                     "User-Agent: attune-cli\r\n\r\n",
                     path, strchr(host, ':') ? "[" : "", host, strchr(host, ':') ? "]" : "", port,
                     key, subprotocol);
    if (n < 0 || n >= (int)sizeof req || send_all(fd, req, (size_t)n) < 0) {
        snprintf(why, why_size, "cannot send the upgrade request");
        close(fd);
        return -1;
    }
    /* Read the response head; bytes after it already belong to frames. */
    char head[HANDSHAKE_MAX + 1];
    size_t got = 0;
    char *end = NULL;
    while (!end) {
        if (got == HANDSHAKE_MAX) {
            snprintf(why, why_size, "the upgrade response is too long");
            close(fd);
            return -1;
        }
        ssize_t r = recv(fd, head + got, HANDSHAKE_MAX - got, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            snprintf(why, why_size, "the server closed the connection during the upgrade");
            close(fd);
            return -1;
        }
        got += (size_t)r;
        head[got] = 0;
        end = strstr(head, "\r\n\r\n");
    }
    size_t head_len = (size_t)(end - head) + 4;
    char status_line[128];
    snprintf(status_line, sizeof status_line, "%.*s", (int)strcspn(head, "\r\n"), head);
    char accept[128], proto[128];
    *end = 0; /* header_value reads up to here */
    if (strncmp(head, "HTTP/1.1 101", 12) != 0) {
        snprintf(why, why_size, "the server refused the upgrade: %s", status_line);
        close(fd);
        return -1;
    }
    if (header_value(head, "Sec-WebSocket-Accept", accept, sizeof accept) < 0 ||
        strcmp(accept, expect) != 0) {
        snprintf(why, why_size, "bad Sec-WebSocket-Accept in the upgrade response");
        close(fd);
        return -1;
    }
    if (header_value(head, "Sec-WebSocket-Protocol", proto, sizeof proto) < 0 ||
        strcmp(proto, subprotocol) != 0) {
        snprintf(why, why_size, "the server did not select subprotocol %s", subprotocol);
        close(fd);
        return -1;
    }
    ws->fd = fd;
    size_t extra = got - head_len;
    if (extra > 0) {
        if (reserve(&ws->in, &ws->in_cap, extra) < 0) {
            snprintf(why, why_size, "out of memory");
            close(fd);
            ws->fd = -1;
            return -1;
        }
        memcpy(ws->in, head + head_len, extra);
        ws->in_len = extra;
    }
    return 0;
}

static int send_frame(cli_ws *ws, int opcode, const void *data, size_t len)
{
    if (ws->fd < 0)
        return -1;
    unsigned char hdr[14];
    size_t h = 0;
    hdr[h++] = (unsigned char)(0x80 | opcode);
    if (len < 126) {
        hdr[h++] = (unsigned char)(0x80 | len);
    } else if (len <= 0xffff) {
        hdr[h++] = 0x80 | 126;
        hdr[h++] = (unsigned char)(len >> 8);
        hdr[h++] = (unsigned char)len;
    } else {
        hdr[h++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--)
            hdr[h++] = (unsigned char)((uint64_t)len >> (8 * i));
    }
    unsigned char mask[4];
    if (RAND_bytes(mask, sizeof mask) != 1)
        return -1;
    memcpy(hdr + h, mask, 4);
    h += 4;
    unsigned char *frame = malloc(h + len);
    if (!frame)
        return -1;
    memcpy(frame, hdr, h);
    const unsigned char *src = data;
    for (size_t i = 0; i < len; i++)
        frame[h + i] = src[i] ^ mask[i & 3];
    int rc = send_all(ws->fd, frame, h + len);
    free(frame);
    return rc;
}

int cli_ws_send_text(cli_ws *ws, const char *data, size_t len)
{
    return send_frame(ws, 0x1, data, len);
}

int cli_ws_read(cli_ws *ws)
{
    if (ws->fd < 0)
        return -1;
    if (reserve(&ws->in, &ws->in_cap, ws->in_len + 65536) < 0)
        return -1;
    ssize_t r;
    do
        r = recv(ws->fd, ws->in + ws->in_len, ws->in_cap - ws->in_len, 0);
    while (r < 0 && errno == EINTR);
    if (r <= 0) {
        if (!ws->peer_closed) {
            ws->peer_closed = 1;
            ws->close_code = 1006;
        }
        return -1;
    }
    ws->in_len += (size_t)r;
    return 0;
}

int cli_ws_next(cli_ws *ws, const char **data, size_t *len)
{
    if (ws->msg_ready) { /* the previous message was handed out: drop it */
        ws->msg_ready = 0;
        ws->msg_len = 0;
    }
    for (;;) {
        if (ws->in_len < 2)
            return 0;
        const unsigned char *p = ws->in;
        int fin = p[0] & 0x80, opcode = p[0] & 0x0f, masked = p[1] & 0x80;
        uint64_t plen = p[1] & 0x7f;
        size_t h = 2;
        if (plen == 126) {
            if (ws->in_len < 4)
                return 0;
            plen = ((uint64_t)p[2] << 8) | p[3];
            h = 4;
        } else if (plen == 127) {
            if (ws->in_len < 10)
                return 0;
            plen = 0;
            for (int i = 0; i < 8; i++)
                plen = (plen << 8) | p[2 + i];
            h = 10;
        }
        if (plen > CLI_WS_MAX_MESSAGE)
            return -1;
        size_t mask_at = h;
        if (masked)
            h += 4;
        if (ws->in_len < h + plen)
            return 0;
        unsigned char *payload = ws->in + h;
        if (masked)
            for (uint64_t i = 0; i < plen; i++)
                payload[i] ^= ws->in[mask_at + (i & 3)];
        size_t frame_len = h + (size_t)plen;
        int rc = 0, ready = 0;
        if (opcode == 0x9) { /* ping */
            rc = send_frame(ws, 0xA, payload, (size_t)plen);
        } else if (opcode == 0xA) { /* pong */
        } else if (opcode == 0x8) { /* close: echo it */
            ws->peer_closed = 1;
            ws->close_code = plen >= 2 ? (payload[0] << 8 | payload[1]) : 1005;
            if (plen > 2)
                snprintf(ws->close_reason, sizeof ws->close_reason, "%.*s", (int)(plen - 2),
                         (const char *)payload + 2);
            unsigned char echo[2] = {(unsigned char)(ws->close_code >> 8),
                                     (unsigned char)ws->close_code};
            send_frame(ws, 0x8, echo, plen >= 2 ? 2 : 0);
        } else if (opcode == 0x1 || opcode == 0x2 || opcode == 0x0) {
            if ((opcode == 0x0) != (ws->msg_open != 0))
                return -1; /* continuation without a start, or a start inside a message */
            if (ws->msg_len + plen + 1 > CLI_WS_MAX_MESSAGE ||
                reserve((unsigned char **)&ws->msg, &ws->msg_cap, ws->msg_len + plen + 1) < 0)
                return -1;
            memcpy(ws->msg + ws->msg_len, payload, (size_t)plen);
            ws->msg_len += (size_t)plen;
            ws->msg[ws->msg_len] = 0;
            ws->msg_open = !fin;
            ready = fin != 0;
        } else {
            return -1;
        }
        memmove(ws->in, ws->in + frame_len, ws->in_len - frame_len);
        ws->in_len -= frame_len;
        if (rc < 0)
            return -1;
        if (ready) {
            ws->msg_ready = 1;
            *data = ws->msg;
            *len = ws->msg_len;
            return 1;
        }
    }
}

void cli_ws_close(cli_ws *ws, int code)
{
    if (ws->fd < 0)
        return;
    if (!ws->peer_closed) {
        unsigned char body[2] = {(unsigned char)(code >> 8), (unsigned char)code};
        send_frame(ws, 0x8, body, 2);
    }
    shutdown(ws->fd, SHUT_WR);
}

void cli_ws_free(cli_ws *ws)
{
    if (ws->fd >= 0)
        close(ws->fd);
    free(ws->in);
    free(ws->msg);
    memset(ws, 0, sizeof *ws);
    ws->fd = -1;
}
