/* ws_frame.h - the project's one writer of RFC 6455 frames by hand.
 *
 * lws frames everything else we send. Two callers need finished frames as
 * bytes: the server's send-queue packing (srv_sendq_pack, frame.h), which
 * lets one lws_write(LWS_WRITE_RAW) carry several queued messages, and the
 * load generator's low-overhead client (tests/bench/ws_client.c), which
 * masks its frames as a client must. Both call these functions, so the
 * header layout (RFC 6455 5.2) is written once.
 *
 * Frames written here carry no extension bits (RSV1-3 are zero): that is
 * only correct while no extension (permessage-deflate) is negotiated. The
 * server guarantees it twice: its lws context lists no extensions
 * (net/server.c) and its WebSocket callback refuses any that lws would
 * confirm (LWS_CALLBACK_CONFIRM_EXTENSION_OKAY, net/ws.c).
 *
 * Pure functions over caller buffers: no allocation, no lws, no state; any
 * thread may call them. */
#ifndef SRV_WS_FRAME_H
#define SRV_WS_FRAME_H

#include <stddef.h>

/* The longest header: 2 bytes, an 8-byte length, a 4-byte mask. */
#define SRV_WS_FRAME_HEADER_MAX 14

/* Opcodes (RFC 6455 5.2). */
enum {
    SRV_WS_OP_CONTINUATION = 0x0,
    SRV_WS_OP_TEXT = 0x1,
    SRV_WS_OP_BINARY = 0x2,
    SRV_WS_OP_CLOSE = 0x8,
    SRV_WS_OP_PING = 0x9,
    SRV_WS_OP_PONG = 0xA,
};

/* Bytes of the header of a frame carrying len payload bytes: 2, 4 or 10,
 * plus 4 when masked (a client's frames). */
size_t srv_ws_frame_header_len(size_t len, int masked);

/* Writes the header of one final (FIN) frame with this opcode and payload
 * length into out (room for SRV_WS_FRAME_HEADER_MAX bytes), masked with the
 * 4 bytes at mask, or unmasked when mask is NULL. Returns the bytes written
 * (srv_ws_frame_header_len). */
size_t srv_ws_frame_header(unsigned char *out, unsigned opcode, size_t len,
                           const unsigned char *mask);

/* Writes one whole final frame: its header, then len bytes of payload,
 * XORed with mask when mask is not NULL (RFC 6455 5.3). out needs
 * srv_ws_frame_header_len(len, mask != NULL) + len bytes and must not
 * overlap payload. Returns the bytes written. */
size_t srv_ws_frame_put(unsigned char *out, unsigned opcode, const void *payload, size_t len,
                        const unsigned char *mask);

#endif
