/* ws.h - a small blocking RFC 6455 client for `attune join`: connect and
 * upgrade (with a subprotocol), send masked text frames, and reassemble the
 * server's messages from what the caller reads when poll() says the socket
 * is readable. Answers pings and close frames itself. No TLS.
 *
 * Ownership: cli_ws owns its socket and buffers (cli_ws_free releases
 * them). A message returned by cli_ws_next stays valid until the next call. */
#ifndef CLI_WS_H
#define CLI_WS_H

#include <stddef.h>

#define CLI_WS_MAX_MESSAGE (8u << 20)

typedef struct {
    int fd; /* -1 when not connected */
    unsigned char *in;
    size_t in_len, in_cap; /* bytes read, not yet parsed */
    char *msg;             /* message being reassembled / last returned */
    size_t msg_len, msg_cap;
    int msg_open;    /* a fragmented message is in progress */
    int msg_ready;   /* msg holds a complete message for cli_ws_next */
    int peer_closed; /* a close frame arrived (or the stream ended) */
    int close_code;  /* from the close frame, 1005 when none, 1006 when the TCP stream ended */
    char close_reason[124];
} cli_ws;

/* Connects to ws://host:port/path offering subprotocol and checks the
 * server's 101 answer (accept key and subprotocol). Returns 0, or -1 with a
 * reason in why. */
int cli_ws_connect(cli_ws *ws, const char *host, int port, const char *path,
                   const char *subprotocol, char *why, size_t why_size);

/* Sends one text message (blocking). Returns 0 or -1. */
int cli_ws_send_text(cli_ws *ws, const char *data, size_t len);

/* Reads what the socket has (once; call when poll reports POLLIN).
 * Returns 0, or -1 when the connection failed or ended (see peer_closed). */
int cli_ws_read(cli_ws *ws);

/* The next complete text message already read: returns 1 and sets *data
 * and *len, 0 when none is complete yet, -1 on a protocol error. Replies to
 * pings and close frames on the way. */
int cli_ws_next(cli_ws *ws, const char **data, size_t *len);

/* Sends a close frame (best effort) and shuts the socket. */
void cli_ws_close(cli_ws *ws, int code);
void cli_ws_free(cli_ws *ws);

#endif
