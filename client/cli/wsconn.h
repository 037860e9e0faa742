/* wsconn.h - `attune join`'s connection: libwebsockets' client side on its
 * default (poll) loop, one WebSocket to the server (ws:// or wss://, one
 * offered subprotocol), and the terminal's input watched by the same loop.
 *
 * lws does the handshake, TLS (certificates checked against the system's
 * trust store unless the caller asks for insecure), masking, fragments,
 * ping/pong and the close handshake. This module queues outgoing text
 * messages and writes one per WRITEABLE, reassembles incoming messages
 * (capped at CLI_WSCONN_MAX_MESSAGE) and hands each whole one to the
 * caller, and reads nothing itself from the input: it tells the caller
 * when the descriptor is readable.
 *
 * The input is watched through a descriptor of its own (a fresh open of
 * /proc/self/fd/N for a terminal or a pipe), because lws makes what it
 * watches non-blocking and the shell shares the original descriptor;
 * where that cannot be done, a duplicate is watched and the original's
 * flags are restored by cli_wsconn_free.
 *
 * Ownership: a cli_wsconn owns its lws context, the connection, the
 * watched descriptor and every queued or partial message; cli_wsconn_free
 * releases them. Threads: one; every call and every handler runs on the
 * caller's thread, handlers only from inside cli_wsconn_open or
 * cli_wsconn_service. */
#ifndef CLI_WSCONN_H
#define CLI_WSCONN_H

#include <stddef.h>
#include <stdint.h>

#define CLI_WSCONN_MAX_MESSAGE (8u << 20)

typedef struct cli_wsconn cli_wsconn;

typedef struct {
    const char *host; /* a name or an address, IPv6 without brackets */
    int port;
    const char *path;        /* e.g. "/ws" */
    const char *subprotocol; /* offered; the server must select it */
    int tls;                 /* wss:// */
    int insecure;            /* wss:// without certificate checks (test servers) */
} cli_wsconn_config;

typedef struct {
    /* One whole text message from the server (not NUL-terminated, valid
     * during the call). */
    void (*message)(void *arg, const char *data, size_t len);
    /* The watched input is readable: read fd once (it is non-blocking).
     * fd is -1 when the input hung up without anything left to read.
     * Return 1 once the input has ended (it is no longer watched), else 0. */
    int (*input)(void *arg, int fd);
} cli_wsconn_handlers;

/* Creates the loop and connects, waiting until the WebSocket is open.
 * Returns the connection, or NULL with a one-line reason in why (cannot
 * connect, a refused certificate, a refused upgrade...). */
cli_wsconn *cli_wsconn_open(const cli_wsconn_config *cfg, const cli_wsconn_handlers *h, void *arg,
                            char *why, size_t why_size);

/* Watches fd (standard input) with the loop; readiness goes to h->input.
 * Returns 0, or -1 when it cannot be watched. */
int cli_wsconn_watch_input(cli_wsconn *c, int fd);

/* Queues one text message (copied) and asks for a write. Returns 0, or -1
 * when the connection is closing or closed, or out of memory. */
int cli_wsconn_send_text(cli_wsconn *c, const char *data, size_t len);

/* Runs one pass of the loop: waits for the socket, the input or the time
 * wake_at_ms (monotonic, srv_mono_ms; 0: no time limit), and runs the
 * handlers for what happened. Returns 0, or -1 when the loop failed. */
int cli_wsconn_service(cli_wsconn *c, int64_t wake_at_ms);

/* 1 once the WebSocket has ended: *code is the server's close code (1005
 * when its close frame had none, 1006 when the connection ended without
 * one) and *reason its reason text (may be ""). 0 while it is open. */
int cli_wsconn_closed(const cli_wsconn *c, int *code, const char **reason);

/* 1 when the server sent a message over CLI_WSCONN_MAX_MESSAGE, which this
 * side refuses (it closed the connection with 1009). */
int cli_wsconn_broken(const cli_wsconn *c);

/* Sends the queued messages and a close frame with code, and waits at most
 * wait_ms for the server's answering close. */
void cli_wsconn_close(cli_wsconn *c, int code, int wait_ms);

/* Releases everything (closing what is still open); NULL is allowed. */
void cli_wsconn_free(cli_wsconn *c);

#endif
