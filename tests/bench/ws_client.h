/* ws_client.h - a small RFC 6455 client connection for the load generator.
 *
 * Owns: one non-blocking socket fd, its pending output bytes, the bytes of a
 * partial frame (or partial handshake response) received so far and the
 * fragments of a message being reassembled. Does: the client opening
 * handshake (random Sec-WebSocket-Key, Sec-WebSocket-Accept checked with
 * OpenSSL SHA-1 + base64, one offered subprotocol that the server must
 * select), masked text frames out (written by the project's one frame writer,
 * server/net/ws_frame.h), unmasked server frames in with 7/16/64-bit
 * lengths and fragmentation, ping answered with pong, close answered with
 * close. It does not watch readiness: the caller's epoll loop calls
 * ws_client_read when the fd is readable and ws_client_flush when it is
 * writable (or after queueing).
 *
 * TLS (ws_client_use_tls): the same calls run over an OpenSSL client
 * connection instead of the bare socket; the TLS handshake is driven from
 * ws_client_flush and ws_client_read as the socket allows (WANT_READ waits
 * for readability, which the caller always watches; WANT_WRITE answers 1 so
 * the caller watches writability). The benchmark does not check the
 * server's certificate (loopback, a throwaway self-signed one).
 *
 * Threads: single-threaded; all calls come from the generator's loop thread.
 * Errors: functions return 0 (or a documented positive value) on success and
 * a negative WS_E* code on failure, with a reason in c->error. */
#ifndef ATTUNE_BENCH_WS_CLIENT_H
#define ATTUNE_BENCH_WS_CLIENT_H

#include <stddef.h>
#include <stdint.h>

/* Largest reassembled message accepted from the server (the hello ack carries
 * a whole exercise and the vocabularies, tens of KiB). */
#define WS_MAX_MESSAGE (4u << 20)

enum {
    WS_E_IO = -1,        /* socket error or peer closed the TCP connection */
    WS_E_HANDSHAKE = -2, /* the server's 101 response was wrong */
    WS_E_PROTOCOL = -3,  /* a frame that breaks RFC 6455 (masked, bad opcode...) */
    WS_E_TOO_BIG = -4,   /* a message over WS_MAX_MESSAGE */
    WS_E_NOMEM = -5,
    WS_E_STATE = -6, /* call not valid in the connection's state */
};

typedef enum {
    WS_HANDSHAKE, /* request queued or sent, waiting for the 101 */
    WS_OPEN,      /* frames flow both ways */
    WS_CLOSING,   /* we sent a close and wait for the server's */
    WS_CLOSED,    /* close handshake done (or TCP gone); only ws_client_free remains */
} ws_state;

typedef struct {
    unsigned char *data;
    size_t len, cap;
} ws_buf;

/* Called once per complete text message. text is not NUL-terminated and is
 * valid only during the call. A negative return stops reading and is
 * returned by ws_client_feed/ws_client_read. */
typedef int (*ws_message_fn)(void *arg, const char *text, size_t len);

typedef struct {
    int fd;
    ws_state state;
    char protocol[32];        /* the subprotocol we offered */
    char accept_expected[32]; /* base64(SHA-1(key + GUID)) */
    ws_buf out;               /* bytes queued for the socket */
    size_t out_off;           /* how much of out was written */
    ws_buf in;                /* an incomplete frame or response */
    ws_buf msg;               /* fragments of the message being reassembled */
    int msg_active;           /* a fragmented text message is in progress */
    uint64_t mask_state;      /* xorshift state for frame masks */
    int close_code;           /* the server's close code, or -1 */
    void *ssl;                /* SSL *, owned; NULL: plain TCP */
    int tls_ready;            /* the TLS handshake is done */
    char error[160];
} ws_client;

/* Computes Sec-WebSocket-Accept for a Sec-WebSocket-Key (RFC 6455 4.2.2).
 * out needs 29 bytes. Returns 0 or WS_E_NOMEM. */
int ws_accept_for_key(const char *key_b64, char *out, size_t out_size);

/* Takes ownership of fd (connected or connecting, non-blocking) and queues the
 * opening handshake for GET path on host with the given subprotocol. origin
 * may be NULL. seed feeds the frame-mask generator (the handshake key comes
 * from OpenSSL's RAND_bytes). Call ws_client_flush to start sending. */
int ws_client_start(ws_client *c, int fd, const char *host, const char *path, const char *protocol,
                    const char *origin, uint64_t seed);

/* Same as ws_client_start with a caller-chosen 16-byte key (for tests). */
int ws_client_start_with_key(ws_client *c, int fd, const char *host, const char *path,
                             const char *protocol, const char *origin, uint64_t seed,
                             const unsigned char key[16]);

/* Runs the connection over TLS (after ws_client_start, before any I/O):
 * ssl_ctx is an SSL_CTX * the caller keeps for the connection's life.
 * Returns 0 or WS_E_NOMEM. */
int ws_client_use_tls(ws_client *c, void *ssl_ctx);

/* Parses bytes received from the server: the handshake response, then
 * frames. Complete text messages go to fn; pings queue a pong, a close
 * queues the answering close. Returns 0, or a negative code (including fn's). */
int ws_client_feed(ws_client *c, const unsigned char *data, size_t len, ws_message_fn fn,
                   void *arg);

/* Reads the socket until it would block, feeding everything read (scratch is
 * the caller's read buffer, shared between connections). Returns 0 while the
 * connection lives, 1 when the TCP connection ended after a close handshake,
 * or a negative code. Queued replies (pong, close) still need a flush. */
int ws_client_read(ws_client *c, unsigned char *scratch, size_t scratch_size, ws_message_fn fn,
                   void *arg);

/* Writes queued bytes until done or the socket would block. Returns 0 when
 * nothing is left, 1 when bytes remain (watch for writability), or a negative
 * code. */
int ws_client_flush(ws_client *c);

/* Bytes still queued for the socket. */
size_t ws_client_pending(const ws_client *c);

/* Queues one masked text frame (FIN set). Only while WS_OPEN. */
int ws_client_send_text(ws_client *c, const char *text, size_t len);

/* Queues a close frame with code (and no reason) and enters WS_CLOSING. */
int ws_client_send_close(ws_client *c, uint16_t code);

/* Closes the fd (when >= 0) and frees the buffers. Safe to call twice. */
void ws_client_free(ws_client *c);

#endif
