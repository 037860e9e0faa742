/* test_ws_client.c - unit checks of the load generator's RFC 6455 client:
 * the accept-key computation (RFC 6455 section 1.3 example), the handshake
 * checks, frame lengths (7/16/64-bit), fragmentation with an interleaved
 * ping, close echo, protocol violations, masking of outgoing frames, and the
 * socket path (read/flush) over a socketpair with tiny reads. */
#include "check.h"
#include "ws_client.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* The RFC's sample key is base64("the sample nonce"). */
static const unsigned char SAMPLE_KEY[16] = "the sample nonce";
static const char *SAMPLE_ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

typedef struct {
    int count;
    size_t total;
    char last[128];
    size_t last_len;
} received;

static int on_message(void *arg, const char *text, size_t len)
{
    received *r = arg;
    r->count++;
    r->total += len;
    r->last_len = len;
    size_t n = len < sizeof r->last - 1 ? len : sizeof r->last - 1;
    memcpy(r->last, text, n);
    r->last[n] = '\0';
    return 0;
}

/* Appends an unmasked server frame to buf at *pos. */
static size_t server_frame(unsigned char *buf, int fin, int opcode, const void *payload, size_t len)
{
    size_t h = 0;
    buf[h++] = (unsigned char)((fin ? 0x80 : 0) | opcode);
    if (len < 126) {
        buf[h++] = (unsigned char)len;
    } else if (len <= 0xFFFF) {
        buf[h++] = 126;
        buf[h++] = (unsigned char)(len >> 8);
        buf[h++] = (unsigned char)len;
    } else {
        buf[h++] = 127;
        for (int i = 7; i >= 0; i--)
            buf[h++] = (unsigned char)((uint64_t)len >> (8 * i));
    }
    memcpy(buf + h, payload, len);
    return h + len;
}

static const char *response(const char *accept, const char *protocol)
{
    static char text[512];
    snprintf(text, sizeof text,
             "HTTP/1.1 101 Switching Protocols\r\n"
             "upgrade: WebSocket\r\n"
             "connection: keep-alive, Upgrade\r\n"
             "sec-websocket-accept: %s\r\n"
             "%s%s%s"
             "\r\n",
             accept, protocol ? "Sec-WebSocket-Protocol: " : "", protocol ? protocol : "",
             protocol ? "\r\n" : "");
    return text;
}

static void start(ws_client *c)
{
    CHECK_INT(
        ws_client_start_with_key(c, -1, "127.0.0.1:8080", "/ws", "attune.v1", NULL, 42, SAMPLE_KEY),
        0);
}

/* Decodes the client frame at out[*pos]: checks the mask bit, unmasks into
 * payload; returns the opcode or -1. */
static int client_frame(const ws_buf *out, size_t *pos, unsigned char *payload, size_t *len)
{
    const unsigned char *f = out->data + *pos;
    if (out->len - *pos < 6 || !(f[1] & 0x80))
        return -1;
    size_t n = f[1] & 0x7F, h = 2;
    if (n == 126) {
        n = (size_t)f[2] << 8 | f[3];
        h = 4;
    } else if (n == 127) {
        n = 0;
        for (int i = 0; i < 8; i++)
            n = n << 8 | f[2 + i];
        h = 10;
    }
    const unsigned char *mask = f + h;
    for (size_t i = 0; i < n; i++)
        payload[i] = f[h + 4 + i] ^ mask[i & 3];
    *len = n;
    *pos += h + 4 + n;
    return f[0] & 0x0F;
}

static void test_accept_key(void)
{
    char out[32];
    CHECK_INT(ws_accept_for_key("dGhlIHNhbXBsZSBub25jZQ==", out, sizeof out), 0);
    CHECK_STR(out, SAMPLE_ACCEPT);
}

static void test_request(void)
{
    ws_client c;
    start(&c);
    char *req = strndup((const char *)c.out.data, c.out.len);
    CHECK(strncmp(req, "GET /ws HTTP/1.1\r\n", 18) == 0);
    CHECK(strstr(req, "\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n") != NULL);
    CHECK(strstr(req, "\r\nSec-WebSocket-Version: 13\r\n") != NULL);
    CHECK(strstr(req, "\r\nSec-WebSocket-Protocol: attune.v1\r\n") != NULL);
    CHECK(strstr(req, "\r\nHost: 127.0.0.1:8080\r\n") != NULL);
    CHECK(strstr(req, "Origin") == NULL);
    CHECK(c.out.len >= 4 && memcmp(c.out.data + c.out.len - 4, "\r\n\r\n", 4) == 0);
    free(req);
    ws_client_free(&c);
}

static void test_frames_byte_by_byte(void)
{
    ws_client c;
    start(&c);
    size_t req_len = c.out.len;
    static unsigned char stream[200000];
    size_t n = 0;
    const char *resp = response(SAMPLE_ACCEPT, "attune.v1");
    memcpy(stream, resp, strlen(resp));
    n += strlen(resp);
    n += server_frame(stream + n, 1, 0x1, "hello", 5);
    static char mid[300], big[70000];
    memset(mid, 'm', sizeof mid);
    memset(big, 'b', sizeof big);
    n += server_frame(stream + n, 1, 0x1, mid, sizeof mid); /* 16-bit length */
    n += server_frame(stream + n, 1, 0x1, big, sizeof big); /* 64-bit length */
    n += server_frame(stream + n, 0, 0x1, "frag", 4);
    n += server_frame(stream + n, 1, 0x9, "pp", 2); /* ping between fragments */
    n += server_frame(stream + n, 0, 0x0, "men", 3);
    n += server_frame(stream + n, 1, 0x0, "ted", 3);
    n += server_frame(stream + n, 1, 0xA, "", 0); /* unsolicited pong: ignored */
    unsigned char close_body[] = {0x03, 0xE9};    /* 1001 */
    n += server_frame(stream + n, 1, 0x8, close_body, 2);
    n += server_frame(stream + n, 1, 0x1, "after", 5); /* ignored after close */

    received r = {0};
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = ws_client_feed(&c, stream + i, 1, on_message, &r);
    CHECK_INT(rc, 0);
    CHECK_INT(r.count, 4);
    CHECK_INT(r.total, 5 + sizeof mid + sizeof big + 10);
    CHECK_STR(r.last, "fragmented");
    CHECK_INT(c.state, WS_CLOSED);
    CHECK_INT(c.close_code, 1001);

    /* Our replies: a pong with the ping's payload, then the close echo. */
    unsigned char payload[200];
    size_t len, pos = req_len;
    CHECK_INT(client_frame(&c.out, &pos, payload, &len), 0xA);
    CHECK(len == 2 && memcmp(payload, "pp", 2) == 0);
    CHECK_INT(client_frame(&c.out, &pos, payload, &len), 0x8);
    CHECK(len == 2 && payload[0] == 0x03 && payload[1] == 0xE9);
    CHECK_INT(pos, c.out.len);
    ws_client_free(&c);
}

static void test_whole_stream_at_once(void)
{
    ws_client c;
    start(&c);
    unsigned char stream[1024];
    const char *resp = response(SAMPLE_ACCEPT, "attune.v1");
    size_t n = strlen(resp);
    memcpy(stream, resp, n);
    for (int i = 0; i < 10; i++)
        n += server_frame(stream + n, 1, 0x1, "{\"type\":\"ack\"}", 14);
    received r = {0};
    CHECK_INT(ws_client_feed(&c, stream, n - 3, on_message, &r), 0);
    CHECK_INT(r.count, 9);
    CHECK_INT(c.in.len, 13); /* the partial tenth frame is kept */
    CHECK_INT(ws_client_feed(&c, stream + n - 3, 3, on_message, &r), 0);
    CHECK_INT(r.count, 10);
    CHECK_STR(r.last, "{\"type\":\"ack\"}");
    CHECK_INT(c.in.len, 0);
    ws_client_free(&c);
}

static int feed_response(const char *resp)
{
    ws_client c;
    start(&c);
    received r = {0};
    int rc = ws_client_feed(&c, (const unsigned char *)resp, strlen(resp), on_message, &r);
    ws_client_free(&c);
    return rc;
}

static void test_bad_handshakes(void)
{
    CHECK_INT(feed_response(response(SAMPLE_ACCEPT, "attune.v1")), 0);
    CHECK_INT(feed_response(response("AAAAAAAAAAAAAAAAAAAAAAAAAAA=", "attune.v1")), WS_E_HANDSHAKE);
    CHECK_INT(feed_response(response(SAMPLE_ACCEPT, NULL)), WS_E_HANDSHAKE);
    CHECK_INT(feed_response(response(SAMPLE_ACCEPT, "other.v1")), WS_E_HANDSHAKE);
    CHECK_INT(feed_response("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n"), WS_E_HANDSHAKE);
    CHECK_INT(feed_response("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
                            "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
                            "Sec-WebSocket-Protocol: attune.v1\r\n\r\n"),
              WS_E_HANDSHAKE); /* no Upgrade header */
    /* A head that never ends is refused once it passes the cap. */
    ws_client c;
    start(&c);
    static char junk[9000];
    memset(junk, 'x', sizeof junk);
    received r = {0};
    CHECK_INT(ws_client_feed(&c, (const unsigned char *)junk, sizeof junk, on_message, &r),
              WS_E_HANDSHAKE);
    ws_client_free(&c);
}

/* Feeds the handshake then one raw frame; returns the feed's result. */
static int feed_raw(const unsigned char *frame, size_t len)
{
    ws_client c;
    start(&c);
    const char *resp = response(SAMPLE_ACCEPT, "attune.v1");
    received r = {0};
    int rc = ws_client_feed(&c, (const unsigned char *)resp, strlen(resp), on_message, &r);
    if (rc == 0)
        rc = ws_client_feed(&c, frame, len, on_message, &r);
    ws_client_free(&c);
    return rc;
}

static void test_protocol_violations(void)
{
    unsigned char masked[] = {0x81, 0x82, 1, 2, 3, 4, 'a' ^ 1, 'b' ^ 2};
    CHECK_INT(feed_raw(masked, sizeof masked), WS_E_PROTOCOL);
    unsigned char rsv[] = {0xC1, 0x01, 'a'};
    CHECK_INT(feed_raw(rsv, sizeof rsv), WS_E_PROTOCOL);
    unsigned char binary[] = {0x82, 0x01, 0};
    CHECK_INT(feed_raw(binary, sizeof binary), WS_E_PROTOCOL);
    unsigned char frag_ping[] = {0x09, 0x00};
    CHECK_INT(feed_raw(frag_ping, sizeof frag_ping), WS_E_PROTOCOL);
    unsigned char lone_cont[] = {0x80, 0x01, 'a'};
    CHECK_INT(feed_raw(lone_cont, sizeof lone_cont), WS_E_PROTOCOL);
    unsigned char text_in_frag[] = {0x01, 0x01, 'a', 0x81, 0x01, 'b'};
    CHECK_INT(feed_raw(text_in_frag, sizeof text_in_frag), WS_E_PROTOCOL);
    unsigned char opcode3[] = {0x83, 0x00};
    CHECK_INT(feed_raw(opcode3, sizeof opcode3), WS_E_PROTOCOL);
    unsigned char close1[] = {0x88, 0x01, 0x03};
    CHECK_INT(feed_raw(close1, sizeof close1), WS_E_PROTOCOL);
    unsigned char huge[] = {0x81, 127, 0, 0, 0, 0, 0x10, 0, 0, 0}; /* 256 MiB */
    CHECK_INT(feed_raw(huge, sizeof huge), WS_E_TOO_BIG);
    unsigned char top_bit[] = {0x81, 127, 0x80, 0, 0, 0, 0, 0, 0, 1};
    CHECK_INT(feed_raw(top_bit, sizeof top_bit), WS_E_PROTOCOL);
}

static void test_outgoing_masking(void)
{
    ws_client c;
    start(&c);
    const char *resp = response(SAMPLE_ACCEPT, "attune.v1");
    received r = {0};
    CHECK_INT(ws_client_send_text(&c, "x", 1), WS_E_STATE); /* not open yet */
    CHECK_INT(ws_client_feed(&c, (const unsigned char *)resp, strlen(resp), on_message, &r), 0);
    size_t pos = c.out.len;
    static char big[70000];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (char)('a' + i % 26);
    CHECK_INT(ws_client_send_text(&c, "{\"type\":\"ping\"}", 15), 0);
    CHECK_INT(ws_client_send_text(&c, big, 300), 0);
    CHECK_INT(ws_client_send_text(&c, big, sizeof big), 0);
    static unsigned char payload[70000];
    size_t len;
    CHECK_INT(c.out.data[pos] & 0x80, 0x80); /* FIN */
    CHECK_INT(client_frame(&c.out, &pos, payload, &len), 0x1);
    CHECK(len == 15 && memcmp(payload, "{\"type\":\"ping\"}", 15) == 0);
    CHECK_INT(client_frame(&c.out, &pos, payload, &len), 0x1);
    CHECK(len == 300 && memcmp(payload, big, 300) == 0);
    CHECK_INT(client_frame(&c.out, &pos, payload, &len), 0x1);
    CHECK(len == sizeof big && memcmp(payload, big, sizeof big) == 0);
    CHECK_INT(pos, c.out.len);
    CHECK_INT(ws_client_send_close(&c, 1000), 0);
    CHECK_INT(c.state, WS_CLOSING);
    CHECK_INT(ws_client_send_text(&c, "x", 1), WS_E_STATE);
    /* The server's close answer completes the handshake. */
    unsigned char close_frame[4] = {0x88, 0x02, 0x03, 0xE8};
    CHECK_INT(ws_client_feed(&c, close_frame, 4, on_message, &r), 0);
    CHECK_INT(c.state, WS_CLOSED);
    CHECK_INT(c.close_code, 1000);
    ws_client_free(&c);
}

/* Reads everything the client sent into buf; returns the byte count. */
static size_t drain(int fd, unsigned char *buf, size_t size)
{
    size_t n = 0;
    for (;;) {
        ssize_t k = recv(fd, buf + n, size - n, MSG_DONTWAIT);
        if (k <= 0)
            return n;
        n += (size_t)k;
    }
}

static void test_socketpair(void)
{
    int sv[2];
    CHECK_INT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    fcntl(sv[0], F_SETFL, O_NONBLOCK);
    ws_client c;
    CHECK_INT(
        ws_client_start_with_key(&c, sv[0], "h", "/ws", "attune.v1", "http://h", 7, SAMPLE_KEY), 0);
    CHECK_INT(ws_client_flush(&c), 0);
    CHECK_INT(ws_client_pending(&c), 0);
    static unsigned char got[100000];
    size_t n = drain(sv[1], got, sizeof got);
    got[n] = 0;
    CHECK(strstr((char *)got, "\r\nOrigin: http://h\r\n") != NULL);

    unsigned char stream[4096];
    const char *resp = response(SAMPLE_ACCEPT, "attune.v1");
    size_t len = strlen(resp);
    memcpy(stream, resp, len);
    len += server_frame(stream + len, 1, 0x1, "{\"type\":\"state\"}", 16);
    len += server_frame(stream + len, 1, 0x9, "k", 1);
    CHECK_INT(write(sv[1], stream, len), (ssize_t)len);
    received r = {0};
    unsigned char scratch[7]; /* tiny reads split every frame */
    CHECK_INT(ws_client_read(&c, scratch, sizeof scratch, on_message, &r), 0);
    CHECK_INT(r.count, 1);
    CHECK_STR(r.last, "{\"type\":\"state\"}");
    CHECK_INT(ws_client_flush(&c), 0);
    n = drain(sv[1], got, sizeof got);
    ws_buf pong = {got, n, sizeof got};
    size_t pos = 0, plen;
    unsigned char payload[16];
    CHECK_INT(client_frame(&pong, &pos, payload, &plen), 0xA);
    CHECK(plen == 1 && payload[0] == 'k');

    /* The server closes: we echo, then TCP ends and read reports 1. */
    unsigned char close_frame[4] = {0x88, 0x02, 0x03, 0xE9};
    CHECK_INT(write(sv[1], close_frame, 4), 4);
    CHECK_INT(ws_client_read(&c, scratch, sizeof scratch, on_message, &r), 0);
    CHECK_INT(c.state, WS_CLOSED);
    CHECK_INT(ws_client_flush(&c), 0);
    n = drain(sv[1], got, sizeof got); /* unread bytes would turn the close into a reset */
    CHECK_INT(n, 8);                   /* the masked close echo */
    close(sv[1]);
    int rc = ws_client_read(&c, scratch, sizeof scratch, on_message, &r);
    CHECK_INT(rc, 1);
    ws_client_free(&c);

    /* TCP ending without a close frame is an error. */
    CHECK_INT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    fcntl(sv[0], F_SETFL, O_NONBLOCK);
    CHECK_INT(ws_client_start_with_key(&c, sv[0], "h", "/ws", "attune.v1", NULL, 7, SAMPLE_KEY), 0);
    CHECK_INT(write(sv[1], resp, strlen(resp)), (ssize_t)strlen(resp));
    close(sv[1]);
    /* The first call stops after a short read (the handshake); the next sees EOF. */
    rc = ws_client_read(&c, scratch, sizeof scratch, on_message, &r);
    CHECK_INT(rc, 0);
    CHECK_INT(c.state, WS_OPEN);
    rc = ws_client_read(&c, scratch, sizeof scratch, on_message, &r);
    CHECK_INT(rc, WS_E_IO);
    ws_client_free(&c);
}

int main(void)
{
    test_accept_key();
    test_request();
    test_frames_byte_by_byte();
    test_whole_stream_at_once();
    test_bad_handshakes();
    test_protocol_violations();
    test_outgoing_masking();
    test_socketpair();
    return check_done("test_ws_client");
}
