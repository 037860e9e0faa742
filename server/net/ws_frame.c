/* ws_frame.c - RFC 6455 frame headers and whole frames (see ws_frame.h). */
#include "ws_frame.h"

#include <stdint.h>
#include <string.h>

size_t srv_ws_frame_header_len(size_t len, int masked)
{
    size_t h = len < 126 ? 2 : len < 65536 ? 4 : 10;
    return masked ? h + 4 : h;
}

size_t srv_ws_frame_header(unsigned char *out, unsigned opcode, size_t len,
                           const unsigned char *mask)
{
    const unsigned char mask_bit = mask ? 0x80 : 0;
    size_t h;
    out[0] = (unsigned char)(0x80 | (opcode & 0x0f)); /* FIN, no RSV bits */
    if (len < 126) {
        out[1] = (unsigned char)(mask_bit | len);
        h = 2;
    } else if (len < 65536) {
        out[1] = mask_bit | 126;
        out[2] = (unsigned char)(len >> 8);
        out[3] = (unsigned char)len;
        h = 4;
    } else {
        out[1] = mask_bit | 127;
        for (int i = 0; i < 8; i++)
            out[2 + i] = (unsigned char)((uint64_t)len >> (56 - 8 * i));
        h = 10;
    }
    if (mask) {
        memcpy(out + h, mask, 4);
        h += 4;
    }
    return h;
}

size_t srv_ws_frame_put(unsigned char *out, unsigned opcode, const void *payload, size_t len,
                        const unsigned char *mask)
{
    size_t h = srv_ws_frame_header(out, opcode, len, mask);
    unsigned char *dst = out + h;
    if (!mask) {
        if (len)
            memcpy(dst, payload, len);
        return h + len;
    }
    const unsigned char *src = payload;
    for (size_t i = 0; i < len; i++)
        dst[i] = src[i] ^ mask[i & 3];
    return h + len;
}
