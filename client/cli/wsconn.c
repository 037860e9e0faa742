/* wsconn.c - the join command's lws client and its input (see wsconn.h). */
#include "wsconn.h"

#include <fcntl.h>
#include <libwebsockets.h>
#include <netdb.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "attune/buf.h"
#include "clock.h"

#define WS_PROTOCOL "attune-cli-ws"
#define INPUT_PROTOCOL "attune-cli-input"

typedef enum { WSCONN_CONNECTING, WSCONN_OPEN, WSCONN_CLOSED, WSCONN_FAILED } wsconn_state;

/* One queued text message, with the LWS_PRE headroom lws_write needs. */
typedef struct out_msg {
    struct out_msg *next;
    size_t len;
    unsigned char data[]; /* LWS_PRE, then len bytes */
} out_msg;

struct cli_wsconn {
    struct lws_context *ctx;
    struct lws *wsi;       /* the WebSocket; NULL once it failed or closed */
    struct lws *input_wsi; /* the watched input; NULL when not watched */
    const cli_wsconn_handlers *h;
    void *arg;
    wsconn_state state;
    int freeing;     /* in cli_wsconn_free: handlers are not called */
    int closing;     /* cli_wsconn_close asked for a close frame */
    int close_out;   /* its code */
    int broken;      /* the server sent a message over the size cap */
    int peer_code;   /* the server's close code (1005: none in its frame) */
    int peer_closed; /* its close frame arrived */
    char peer_reason[124];
    out_msg *out_head, *out_tail;
    att_buf msg;                 /* the message being reassembled */
    int input_fd;                /* the descriptor lws watches, -1 when none */
    int input_done;              /* the caller was told the input ended */
    int restore_fd;              /* the original input, when its flags must come back */
    int restore_flags;           /* its F_GETFL flags before lws set O_NONBLOCK */
    char fail_reason[160];       /* lws' reason when the connection failed */
    char cert_error[128];        /* OpenSSL's, when it refused the certificate */
    lws_sorted_usec_list_t wake; /* ends a cli_wsconn_service wait at its deadline */
};

static cli_wsconn *of(struct lws *wsi)
{
    return lws_context_user(lws_get_context(wsi));
}

static void free_queue(cli_wsconn *c)
{
    while (c->out_head) {
        out_msg *m = c->out_head;
        c->out_head = m->next;
        free(m);
    }
    c->out_tail = NULL;
}

/* Appends a received piece to the message; delivers it once whole. Returns
 * 0, or -1 to close the connection. */
static int on_receive(cli_wsconn *c, struct lws *wsi, const void *in, size_t len)
{
    att_buf *b = &c->msg;
    if (lws_is_first_fragment(wsi))
        b->len = 0;
    if (len > CLI_WSCONN_MAX_MESSAGE - b->len) {
        c->broken = 1;
        lws_close_reason(wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, NULL, 0);
        return -1;
    }
    if (att_buf_reserve(b, len) < 0)
        return -1;
    if (len)
        memcpy(b->data + b->len, in, len);
    b->len += len;
    b->data[b->len] = '\0';
    if (lws_is_final_fragment(wsi) && lws_remaining_packet_payload(wsi) == 0) {
        size_t n = b->len;
        b->len = 0;
        if (!c->freeing)
            c->h->message(c->arg, b->data, n);
    }
    return 0;
}

/* One lws_write per WRITEABLE: the oldest queued message, or (when asked
 * and nothing is queued) the close frame. */
static int on_writeable(cli_wsconn *c, struct lws *wsi)
{
    out_msg *m = c->out_head;
    if (!m) {
        if (c->closing) {
            lws_close_reason(wsi, (enum lws_close_status)c->close_out, NULL, 0);
            return -1;
        }
        return 0; /* lws may call WRITEABLE with nothing to send */
    }
    c->out_head = m->next;
    if (!c->out_head)
        c->out_tail = NULL;
    int n = lws_write(wsi, m->data + LWS_PRE, m->len, LWS_WRITE_TEXT);
    int short_write = n < (int)m->len;
    free(m);
    if (short_write)
        return -1;
    if (c->out_head || c->closing)
        lws_callback_on_writable(wsi);
    return 0;
}

static int ws_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                       size_t len)
{
    cli_wsconn *c = of(wsi);
    switch (reason) {
    case LWS_CALLBACK_OPENSSL_PERFORM_SERVER_CERT_VERIFICATION:
        /* user: the X509_STORE_CTX; len: OpenSSL's preverify_ok. Only
         * noted, for a clear message: lws refuses the certificate. */
        if (!len && c && !c->cert_error[0]) {
            int e = X509_STORE_CTX_get_error((X509_STORE_CTX *)user);
            snprintf(c->cert_error, sizeof c->cert_error, "%s", X509_verify_cert_error_string(e));
        }
        return 0;

    case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER: {
        unsigned char **p = in, *end = *p + len;
        static const char agent[] = "attune-cli";
        if (lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_USER_AGENT,
                                         (const unsigned char *)agent, (int)sizeof agent - 1, p,
                                         end))
            return -1;
        return 0;
    }

    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        /* in: lws' reason, for cli_wsconn_open's message */
        if (c->state == WSCONN_CONNECTING) {
            c->state = WSCONN_FAILED;
            snprintf(c->fail_reason, sizeof c->fail_reason, "%s",
                     in ? (const char *)in : "unknown error");
        }
        c->wsi = NULL;
        return 0;

    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        c->state = WSCONN_OPEN;
        if (c->out_head)
            lws_callback_on_writable(wsi);
        return 0;

    case LWS_CALLBACK_CLIENT_RECEIVE:
        return on_receive(c, wsi, in, len);

    case LWS_CALLBACK_CLIENT_WRITEABLE:
        return on_writeable(c, wsi);

    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE: {
        /* in: the close frame's body, a 2-byte code then the reason; lws
         * answers it and then closes (CLIENT_CLOSED) */
        const unsigned char *b = in;
        c->peer_closed = 1;
        c->peer_code = len >= 2 ? (b[0] << 8 | b[1]) : 1005;
        if (len > 2)
            snprintf(c->peer_reason, sizeof c->peer_reason, "%.*s", (int)(len - 2),
                     (const char *)b + 2);
        return 0;
    }

    case LWS_CALLBACK_CLIENT_CLOSED:
        if (c->state != WSCONN_FAILED)
            c->state = WSCONN_CLOSED;
        c->wsi = NULL;
        return 0;

    default:
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    }
}

static int input_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                          size_t len)
{
    cli_wsconn *c = of(wsi);
    switch (reason) {
    case LWS_CALLBACK_RAW_RX_FILE:
        if (c->freeing || c->input_done)
            return -1;
        if (c->h->input(c->arg, c->input_fd) == 1) {
            c->input_done = 1;
            return -1; /* lws closes the descriptor (RAW_CLOSE_FILE) */
        }
        return 0;

    case LWS_CALLBACK_RAW_CLOSE_FILE:
        /* after the input's end, or a hang-up with nothing left to read */
        c->input_wsi = NULL;
        c->input_fd = -1;
        if (!c->input_done && !c->freeing) {
            c->input_done = 1;
            c->h->input(c->arg, -1);
        }
        return 0;

    default:
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    }
}

static const struct lws_protocols protocols[] = {
    /* first: lws asks protocol 0 about server certificates */
    {WS_PROTOCOL, ws_callback, 0, 0, 0, NULL, 0},
    {INPUT_PROTOCOL, input_callback, 0, 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static void on_wake(lws_sorted_usec_list_t *sul)
{
    (void)sul; /* only ends lws_service's wait */
}

/* A descriptor of our own for the input, so that O_NONBLOCK (which lws
 * sets on what it watches) does not reach the shell's: a terminal or a
 * pipe opened again through /proc is a new open file description. Else a
 * duplicate, whose shared flags cli_wsconn_free puts back. */
static int input_descriptor(cli_wsconn *c, int fd)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        return -1;
    if (S_ISCHR(st.st_mode) || S_ISFIFO(st.st_mode)) {
        char path[32];
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        /* O_NONBLOCK also keeps the open of a pipe from waiting for a writer */
        int own = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
        if (own >= 0)
            return own;
    }
    int flags = fcntl(fd, F_GETFL);
    int dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (flags < 0 || dup_fd < 0) {
        if (dup_fd >= 0)
            close(dup_fd);
        return -1;
    }
    c->restore_fd = fd;
    c->restore_flags = flags;
    return dup_fd;
}

cli_wsconn *cli_wsconn_open(const cli_wsconn_config *cfg, const cli_wsconn_handlers *h, void *arg,
                            char *why, size_t why_size)
{
    cli_wsconn *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(why, why_size, "out of memory");
        return NULL;
    }
    c->h = h;
    c->arg = arg;
    c->input_fd = -1;
    c->restore_fd = -1;
    c->state = WSCONN_CONNECTING;

    /* lws' own log lines would mix with the transcript; every failure
     * that matters reaches the caller as why or as a close code. */
    lws_set_log_level(0, NULL);
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = protocols;
    info.user = c;
    info.options = cfg->tls ? LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT : 0;
    /* lws' wake pipe, the socket, the input, and a spare: a small table
     * searched by descriptor instead of one sized by the open-file limit */
    info.fd_limit_per_thread = 1 + 1 + 1 + 1;
    c->ctx = lws_create_context(&info);
    if (!c->ctx) {
        snprintf(why, why_size, "cannot start the connection loop (libwebsockets)");
        free(c);
        return NULL;
    }

    /* Host: as a browser sends it (the server answers only to names it
     * serves); an IPv6 address goes in brackets. */
    char host_header[300];
    int v6 = strchr(cfg->host, ':') != NULL;
    snprintf(host_header, sizeof host_header, "%s%s%s:%d", v6 ? "[" : "", cfg->host, v6 ? "]" : "",
             cfg->port);
    struct lws_client_connect_info ci;
    memset(&ci, 0, sizeof ci);
    ci.context = c->ctx;
    ci.address = cfg->host;
    ci.port = cfg->port;
    ci.path = cfg->path;
    ci.host = host_header;
    ci.protocol = cfg->subprotocol;
    ci.local_protocol_name = WS_PROTOCOL;
    /* HTTP/1.1 only: a proxy that speaks h2 would otherwise take the
     * WebSocket to an RFC 8441 stream, which our server does not serve */
    ci.alpn = "http/1.1";
    if (cfg->tls) {
        ci.ssl_connection = LCCSCF_USE_SSL;
        if (cfg->insecure)
            ci.ssl_connection |= LCCSCF_ALLOW_SELFSIGNED | LCCSCF_ALLOW_INSECURE |
                                 LCCSCF_ALLOW_EXPIRED | LCCSCF_SKIP_SERVER_CERT_HOSTNAME_CHECK;
    }
    ci.pwsi = &c->wsi;
    if (!lws_client_connect_via_info(&ci) && c->state == WSCONN_CONNECTING) {
        /* lws gives up at once, without a reason, when the name does not
         * resolve: ask the resolver for one */
        c->state = WSCONN_FAILED;
        struct addrinfo hints = {0}, *res = NULL;
        hints.ai_socktype = SOCK_STREAM;
        int gai = getaddrinfo(cfg->host, NULL, &hints, &res);
        if (gai != 0)
            snprintf(c->fail_reason, sizeof c->fail_reason, "cannot resolve %s: %s", cfg->host,
                     gai_strerror(gai));
        else
            snprintf(c->fail_reason, sizeof c->fail_reason, "the connection could not be started");
        freeaddrinfo(res);
    }
    while (c->state == WSCONN_CONNECTING)
        if (lws_service(c->ctx, 0) < 0)
            break;
    if (c->state == WSCONN_OPEN)
        return c;
    if (c->cert_error[0])
        snprintf(why, why_size,
                 "cannot connect to %s:%d: the server's TLS certificate was refused (%s); "
                 "--insecure skips the check, for a test server only",
                 cfg->host, cfg->port, c->cert_error);
    else
        snprintf(why, why_size, "cannot connect to %s:%d: %s", cfg->host, cfg->port,
                 c->state == WSCONN_FAILED ? c->fail_reason : "the connection loop failed");
    cli_wsconn_free(c);
    return NULL;
}

int cli_wsconn_watch_input(cli_wsconn *c, int fd)
{
    if (!c->wsi || c->input_wsi)
        return -1;
    int own = input_descriptor(c, fd);
    if (own < 0)
        return -1;
    lws_sock_file_fd_type desc;
    desc.filefd = own;
    c->input_fd = own;
    c->input_done = 0;
    c->input_wsi = lws_adopt_descriptor_vhost(lws_get_vhost(c->wsi), LWS_ADOPT_RAW_FILE_DESC, desc,
                                              INPUT_PROTOCOL, NULL);
    if (!c->input_wsi) {
        close(own);
        c->input_fd = -1;
        return -1;
    }
    return 0;
}

int cli_wsconn_send_text(cli_wsconn *c, const char *data, size_t len)
{
    if (!c->wsi || c->closing || c->peer_closed)
        return -1;
    out_msg *m = malloc(sizeof *m + LWS_PRE + len);
    if (!m)
        return -1;
    m->next = NULL;
    m->len = len;
    memcpy(m->data + LWS_PRE, data, len);
    if (c->out_tail)
        c->out_tail->next = m;
    else
        c->out_head = m;
    c->out_tail = m;
    if (c->state == WSCONN_OPEN)
        lws_callback_on_writable(c->wsi);
    return 0;
}

int cli_wsconn_service(cli_wsconn *c, int64_t wake_at_ms)
{
    if (wake_at_ms) {
        int64_t wait = wake_at_ms - srv_mono_ms();
        lws_sul_schedule(c->ctx, 0, &c->wake, on_wake, (lws_usec_t)(wait > 0 ? wait : 0) * 1000);
    } else {
        lws_sul_cancel(&c->wake);
    }
    return lws_service(c->ctx, 0) < 0 ? -1 : 0;
}

int cli_wsconn_closed(const cli_wsconn *c, int *code, const char **reason)
{
    if (c->wsi && !c->peer_closed)
        return 0;
    *code = c->peer_closed ? c->peer_code : 1006;
    *reason = c->peer_closed ? c->peer_reason : "";
    return 1;
}

int cli_wsconn_broken(const cli_wsconn *c)
{
    return c->broken;
}

void cli_wsconn_close(cli_wsconn *c, int code, int wait_ms)
{
    if (!c->wsi)
        return;
    if (!c->closing && !c->peer_closed) {
        c->closing = 1;
        c->close_out = code;
        lws_callback_on_writable(c->wsi);
    }
    int64_t until = srv_mono_ms() + wait_ms;
    while (c->wsi && srv_mono_ms() < until)
        if (cli_wsconn_service(c, until) < 0)
            break;
}

void cli_wsconn_free(cli_wsconn *c)
{
    if (!c)
        return;
    c->freeing = 1;
    if (c->ctx) {
        lws_sul_cancel(&c->wake);
        lws_context_destroy(c->ctx); /* closes the socket and the watched input */
    }
    if (c->restore_fd >= 0)
        fcntl(c->restore_fd, F_SETFL, c->restore_flags);
    free_queue(c);
    att_buf_free(&c->msg);
    free(c);
}
