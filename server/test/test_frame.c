/* test_frame.c - the one RFC 6455 frame writer (ws_frame.h) and the send
 * queue's packing (srv_sendq_pack, frame.h): header bytes and lengths at
 * the 7/16/64-bit boundaries (0, 125, 126, 65535, 65536 bytes), masked and
 * unmasked; payload masking (RFC 6455 5.3); packed frames read back by an
 * independent decoder written here from the RFC's layout; and a pack that
 * stops at the first frame that does not fit. */
#include "check.h"
#include "frame.h"
#include "ws_frame.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* One decoded frame header (RFC 6455 5.2), from the bytes alone. */
typedef struct {
    int fin, rsv, opcode, masked;
    uint64_t len;
    unsigned char mask[4];
    size_t header_len;
} decoded;

/* Returns 0, or -1 when the bytes do not hold a whole header. */
static int decode_header(const unsigned char *p, size_t avail, decoded *d)
{
    if (avail < 2)
        return -1;
    memset(d, 0, sizeof *d);
    d->fin = p[0] >> 7;
    d->rsv = (p[0] >> 4) & 7;
    d->opcode = p[0] & 0x0f;
    d->masked = p[1] >> 7;
    uint64_t len7 = p[1] & 0x7f;
    size_t h = 2;
    if (len7 == 126) {
        if (avail < 4)
            return -1;
        d->len = (uint64_t)p[2] << 8 | p[3];
        h = 4;
    } else if (len7 == 127) {
        if (avail < 10)
            return -1;
        for (int i = 0; i < 8; i++)
            d->len = d->len << 8 | p[2 + i];
        h = 10;
    } else {
        d->len = len7;
    }
    if (d->masked) {
        if (avail < h + 4)
            return -1;
        memcpy(d->mask, p + h, 4);
        h += 4;
    }
    d->header_len = h;
    return 0;
}

/* The header for each boundary length, masked and not: its size, its
 * length field's exact bytes, and that it decodes back. */
static void test_headers(void)
{
    static const struct {
        size_t len;
        size_t header_len; /* unmasked */
        unsigned char len_bytes[9];
        size_t n_len_bytes;
    } cases[] = {
        {0, 2, {0x00}, 1},
        {125, 2, {0x7d}, 1},
        {126, 4, {0x7e, 0x00, 0x7e}, 3},
        {65535, 4, {0x7e, 0xff, 0xff}, 3},
        {65536, 10, {0x7f, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00}, 9},
    };
    static const unsigned char mask[4] = {0x37, 0xfa, 0x21, 0x3d};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        for (int masked = 0; masked <= 1; masked++) {
            unsigned char out[SRV_WS_FRAME_HEADER_MAX + 2];
            memset(out, 0xee, sizeof out);
            size_t want = cases[i].header_len + (masked ? 4 : 0);
            CHECK_INT(srv_ws_frame_header_len(cases[i].len, masked), want);
            size_t h = srv_ws_frame_header(out, SRV_WS_OP_TEXT, cases[i].len, masked ? mask : NULL);
            CHECK_MSG(h == want, "len %zu masked %d: header %zu bytes, want %zu", cases[i].len,
                      masked, h, want);
            CHECK_INT(out[0], 0x81); /* FIN, no RSV bits, text */
            unsigned char len_bytes[9];
            memcpy(len_bytes, cases[i].len_bytes, cases[i].n_len_bytes);
            if (masked)
                len_bytes[0] |= 0x80;
            CHECK_MSG(memcmp(out + 1, len_bytes, cases[i].n_len_bytes) == 0,
                      "len %zu masked %d: length bytes", cases[i].len, masked);
            if (masked)
                CHECK(memcmp(out + 1 + cases[i].n_len_bytes, mask, 4) == 0);
            CHECK_INT(out[h], 0xee); /* nothing written past the header */
            decoded d;
            CHECK(decode_header(out, h, &d) == 0);
            CHECK(d.fin == 1 && d.rsv == 0 && d.opcode == SRV_WS_OP_TEXT);
            CHECK_INT(d.masked, masked);
            CHECK_INT(d.len, cases[i].len);
            CHECK_INT(d.header_len, h);
        }
    }
    /* Other opcodes keep their value; the opcode cannot spill into RSV. */
    unsigned char out[SRV_WS_FRAME_HEADER_MAX];
    srv_ws_frame_header(out, SRV_WS_OP_CLOSE, 2, NULL);
    CHECK_INT(out[0], 0x88);
    srv_ws_frame_header(out, SRV_WS_OP_PONG, 0, mask);
    CHECK_INT(out[0], 0x8a);
    CHECK_INT(out[1], 0x80);
    srv_ws_frame_header(out, 0xf1, 0, NULL);
    CHECK_INT(out[0], 0x81);
}

/* Whole frames: the payload follows the header, XORed with the mask when
 * there is one (and XORing again gives it back), for every boundary. */
static void test_put(void)
{
    static const size_t lens[] = {0, 1, 3, 4, 5, 125, 126, 65535, 65536};
    static const unsigned char mask[4] = {0x01, 0x80, 0x7f, 0xff};
    unsigned char *payload = malloc(65536);
    unsigned char *out = malloc(SRV_WS_FRAME_HEADER_MAX + 65536);
    CHECK(payload && out);
    if (!payload || !out) {
        free(payload);
        free(out);
        return;
    }
    for (size_t i = 0; i < 65536; i++)
        payload[i] = (unsigned char)(i * 31 + 7);
    for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++) {
        for (int masked = 0; masked <= 1; masked++) {
            size_t len = lens[k];
            size_t n = srv_ws_frame_put(out, SRV_WS_OP_TEXT, payload, len, masked ? mask : NULL);
            decoded d;
            CHECK(decode_header(out, n, &d) == 0);
            CHECK_MSG(n == d.header_len + len, "len %zu masked %d: %zu bytes", len, masked, n);
            CHECK_INT(d.len, len);
            const unsigned char *body = out + d.header_len;
            int same = 1;
            for (size_t j = 0; j < len; j++) {
                unsigned char want =
                    masked ? (unsigned char)(payload[j] ^ mask[j & 3]) : payload[j];
                if (body[j] != want) {
                    same = 0;
                    break;
                }
            }
            CHECK_MSG(same, "len %zu masked %d: payload bytes", len, masked);
        }
    }
    /* A zero mask leaves the bytes as they are (and still sets the bit). */
    static const unsigned char zero[4] = {0, 0, 0, 0};
    size_t n = srv_ws_frame_put(out, SRV_WS_OP_TEXT, "hello", 5, zero);
    CHECK_INT(n, 2 + 4 + 5);
    CHECK_INT(out[1], 0x85);
    CHECK(memcmp(out + 6, "hello", 5) == 0);
    free(payload);
    free(out);
}

/* srv_sendq_pack: queued frames of 0, 125, 126, 65535 and 65536 bytes come
 * out back to back as unmasked text frames, each decoding to its payload;
 * the frames stay queued; a cap stops before the first frame that does not
 * fit, and a cap below the oldest frame packs none. */
static void test_pack(void)
{
    static const size_t lens[] = {0, 125, 126, 65535, 65536};
    enum { N = sizeof lens / sizeof lens[0] };
    srv_sendq q = {0};
    srv_frame *frames[N] = {0};
    char *text = malloc(65536);
    CHECK(text != NULL);
    if (!text)
        return;
    size_t total = 0;
    for (size_t i = 0; i < N; i++) {
        for (size_t j = 0; j < lens[i]; j++)
            text[j] = (char)('a' + (i + j) % 26);
        frames[i] = srv_frame_new(text, lens[i]);
        CHECK(frames[i] != NULL);
        if (!frames[i])
            goto out;
        CHECK(srv_sendq_push(&q, frames[i]) == 0);
        total += srv_ws_frame_header_len(lens[i], 0) + lens[i];
    }
    CHECK_INT(total, (2 + 0) + (2 + 125) + (4 + 126) + (4 + 65535) + (10 + 65536));

    unsigned char *buf = malloc(total + 16);
    CHECK(buf != NULL);
    if (!buf)
        goto out;
    uint32_t packed = 99;
    size_t bytes = srv_sendq_pack(&q, buf, total + 16, &packed);
    CHECK_INT(packed, N);
    CHECK_INT(bytes, total);
    CHECK_INT(q.count, N); /* packing does not pop */
    size_t at = 0;
    for (size_t i = 0; i < N; i++) {
        decoded d;
        CHECK(decode_header(buf + at, bytes - at, &d) == 0);
        CHECK(d.fin == 1 && d.rsv == 0 && d.opcode == SRV_WS_OP_TEXT && d.masked == 0);
        CHECK_INT(d.len, lens[i]);
        CHECK_INT(d.header_len, srv_ws_frame_header_len(lens[i], 0));
        CHECK(memcmp(buf + at + d.header_len, srv_frame_payload(frames[i]), lens[i]) == 0);
        at += d.header_len + (size_t)d.len;
    }
    CHECK_INT(at, bytes);

    /* Room for the first three and one byte short of the fourth. */
    size_t three = (2 + 0) + (2 + 125) + (4 + 126);
    bytes = srv_sendq_pack(&q, buf, three + 4 + 65535 - 1, &packed);
    CHECK_INT(packed, 3);
    CHECK_INT(bytes, three);
    /* Exactly the first one. */
    bytes = srv_sendq_pack(&q, buf, 2, &packed);
    CHECK_INT(packed, 1);
    CHECK_INT(bytes, 2);
    /* After popping the three small ones, a cap below the 65535-byte frame
     * packs nothing. */
    for (int i = 0; i < 3; i++)
        srv_sendq_pop(&q);
    bytes = srv_sendq_pack(&q, buf, 4 + 65535 - 1, &packed);
    CHECK_INT(packed, 0);
    CHECK_INT(bytes, 0);
    bytes = srv_sendq_pack(&q, buf, total, &packed);
    CHECK_INT(packed, 2);
    CHECK_INT(bytes, (4 + 65535) + (10 + 65536));
    free(buf);
out:
    srv_sendq_clear(&q, 1);
    for (size_t i = 0; i < N; i++)
        srv_frame_unref(frames[i]);
    free(text);
}

int main(void)
{
    test_headers();
    test_put();
    test_pack();
    return check_done("frame");
}
