/* config.c - defaults, flags and config file (see config.h). The table
 * says each option's help, default and range; the core's option parser
 * (attune/options.h) reads both the command line and the file with it. */
#include "config.h"
#include "crisis.h"
#include "pg.h"
#include "store.h"
#include "store_pg.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "attune/options.h"

#ifndef ATTUNE_PROTOCOL_DIR
#define ATTUNE_PROTOCOL_DIR "protocol"
#endif
#ifndef ATTUNE_WEB_DIR
#define ATTUNE_WEB_DIR "client/web"
#endif

#define THIRTY_DAYS_S (30.0 * 24 * 3600)
/* --link-grace: a data directory of old sessions kept for their partners'
 * replays (the links themselves still expire). */
#define TEN_YEARS_S (10.0 * 365 * 24 * 3600)
/* --token-ttl's cap is invites.h's SRV_INVITE_TTL_MAX_S: a link is a bearer
 * credential. */
#define TOKEN_TTL_MAX_S (30 * 24 * 3600)
/* A config file is a page of settings; anything this big is not one. */
#define CONFIG_FILE_MAX (1 << 20)

/* The typed kinds' fields of srv_config; CALL options are apply()'s. */
#define TEXT(field)                                                                                \
    ATT_OPT_TEXT, offsetof(srv_config, field), sizeof(((srv_config *)0)->field), 0, 0
#define FLAG(field) ATT_OPT_FLAG, offsetof(srv_config, field), 0, 0, 0
#define NUMBER(kind, field, lo, hi) ATT_OPT_##kind, offsetof(srv_config, field), 0, lo, hi
#define CALL ATT_OPT_CALL, 0, 0, 0, 0
#define CALL_NUMBER(lo, hi) ATT_OPT_CALL, 0, 0, lo, hi

/* name, value name, help, default as --help shows it, where it goes. */
static const att_option options[] = {
    {"config", "FILE", "read settings from FILE: `key = value` lines, keys are these option names",
     "none", CALL},
    {"listen", "ADDR", "address to listen on (0.0.0.0 for all)", "127.0.0.1", TEXT(listen)},
    {"port", "N", "TCP port for HTTP and the WebSocket endpoint /ws", "8080",
     NUMBER(INT, port, 0, 65535)},
    {"data", "DIR", "data directory: the event log (attune.db), the wrapped room keys (keys.db)",
     "./data", TEXT(data_dir)},
    {"store", "URI",
     "keep the event log, room keys, accounts, invitations and login sessions in PostgreSQL "
     "(a libpq URI, postgresql://USER@HOST:PORT/DB; several hosts for a standby), shared by "
     "every node of a cluster; needs --kek-file (the same on every node)",
     "none: SQLite in the data directory", TEXT(store_uri)},
    {"node-name", "NAME", "this node's name in a cluster (a boot id is added to it)", "HOST:PORT",
     TEXT(node_name)},
    {"node-lease-ms", "N",
     "a cluster node's lease: another node takes its rooms when it has not renewed it for this "
     "long (a node whose process died loses them at once)",
     "6000", NUMBER(INT, node_lease_ms, 1000, 60000)},
    {"key-file", "FILE", "invitation signing key; created (mode 0600) when missing",
     "DATA/secret.key", TEXT(key_file)},
    {"kek-file", "FILE",
     "the key-encryption key (64 hex digits, mode 0600, outside the data directory) that "
     "wraps every room's key in DATA/keys.db; created only while keys.db holds no key. "
     "Without it nothing in the data directory can be read: keep it, and apart from backups",
     "$CREDENTIALS_DIRECTORY/attune-kek when set, else DATA.kek beside the data directory",
     TEXT(kek_file)},
    {"web-dir", "DIR", "static files served at /", ATTUNE_WEB_DIR, TEXT(web_dir)},
    {"protocol-dir", "DIR", "protocol data: exercises/ and vocab/", ATTUNE_PROTOCOL_DIR,
     TEXT(protocol_dir)},
    {"public-url", "URL",
     "base URL printed in invitations; an https:// one (a TLS proxy in front) also makes the "
     "login cookie Secure and adds Strict-Transport-Security",
     "http://HOST:PORT (https:// with --tls-cert)", TEXT(public_url)},
    {"tls-cert", "FILE",
     "serve HTTPS and WSS on --port with this certificate (PEM, the leaf first, then its "
     "intermediates); needs --tls-key. TLS 1.2 and 1.3 only; SIGHUP loads both files again",
     "none: plain HTTP", TEXT(tls_cert)},
    {"tls-key", "FILE", "the private key of --tls-cert (PEM, not encrypted)", "none",
     TEXT(tls_key)},
    {"origin", "ORIGIN",
     "allow WebSocket connections from this browser Origin (repeatable); requests "
     "without an Origin header (non-browser clients) are always allowed",
     "same origin only", CALL},
    {"rate", "N", "messages per second per connection (token bucket)", "20",
     NUMBER(DOUBLE, rate, 0.001, 1e6)},
    {"burst", "N", "token bucket size: messages a client may send at once", "40",
     NUMBER(DOUBLE, burst, 1, 1e6)},
    {"commit-window-us", "US",
     "group commit window: the store commits once the oldest waiting event has waited this "
     "long, so events arriving meanwhile share one transaction and fsync (0: commit at once)",
     "2000", NUMBER(INT, commit_window_us, 0, 100000)},
    {"max-queue-bytes", "N", "send queue bound per connection; a reader past it is closed (1008)",
     "1048576", NUMBER(SIZE, max_queue_bytes, 4096, 1e12)},
    {"hello-timeout", "SECONDS", "close connections that send no hello (4408)", "10",
     NUMBER(INT, hello_timeout_s, 1, 3600)},
    {"ping-interval", "SECONDS",
     "ping a connection quiet this long; hang up half as long (at most 15 s) later without a "
     "pong",
     "30", NUMBER(INT, ping_s, 1, 3600)},
    {"token-ttl", "SECONDS", "lifetime of new invitation links (7 days; at most 2592000, 30 days)",
     "604800", CALL_NUMBER(1, 1e12)},
    {"link-grace", "SECONDS",
     "a partner's link stops working this long after its session ended (refused at hello, live "
     "connections closed 4401); review afterwards is through the therapist's login (30 min)",
     "1800", NUMBER(INT64, link_grace_s, 0, TEN_YEARS_S)},
    {"ticket-ttl", "SECONDS",
     "how long a staff ticket (POST /api/rooms/{id}/ticket, single use) may wait for its hello",
     "60", NUMBER(INT, ticket_ttl_s, 1, 600)},
    {"silence-ms", "MS",
     "silence suggestion threshold for exercise steps that set none (steps' own silence_ms "
     "rule; 0 there turns it off)",
     "90000", NUMBER(INT64, silence_ms, 1, 1e10)},
    {"disconnect-grace-ms", "MS",
     "a partner away this long on their turn is suggested to the therapist as a withdrawal; a "
     "shorter drop raises nothing",
     "60000", NUMBER(INT64, disconnect_grace_ms, 1, 86400000)},
    {"presence-debounce-ms", "MS",
     "a member who reconnects within this long of a drop records no left/joined pair: their "
     "`left` is recorded (at the time they went) only once they have stayed away this long, and "
     "drops that came back make one staff-only `reconnected` per seat per window (0: record "
     "every join and leave at once)",
     "5000", NUMBER(INT64, presence_debounce_ms, 0, 600000)},
    {"link-events-per-minute", "N",
     "events one link (a room's partner_a, partner_b or therapist seat, or its observers "
     "together) may record per minute, in bursts of up to N; more are refused rate_limited "
     "(0: no limit)",
     "120", NUMBER(INT, link_events_per_minute, 0, 1000000)},
    {"room-events-per-minute", "N",
     "events a room's partners may record per minute together; more are refused room_busy "
     "(the therapist's commands count but are never refused by it; 0: no limit)",
     "300", NUMBER(INT, room_events_per_minute, 0, 1000000)},
    {"room-event-cap", "N",
     "events a room's log may hold: past it partners are refused log_full, and the therapist "
     "(ending the session, notes) and presence have 1000 more",
     "50000", NUMBER(INT64, room_event_cap, 10, 1e9)},
    {"session-idle", "SECONDS",
     "a login session ends after this long without the therapist's own actions (requests that "
     "change something, WebSocket commands; not background reads) (15 min)",
     "900", NUMBER(INT, session_idle_s, 1, THIRTY_DAYS_S)},
    {"session-lifetime", "SECONDS",
     "a login session ends this long after the login, however active (12 h)", "43200",
     NUMBER(INT, session_lifetime_s, 1, THIRTY_DAYS_S)},
    {"crisis-file", "FILE",
     "the practice's own crisis and domestic-abuse lines and the address \"Leave quickly\" "
     "opens (JSON, see deploy/crisis.example.json; default address " SRV_CRISIS_DEFAULT_NEUTRAL_URL
     "), served at GET /api/crisis and shown first on crisis.html; checked at start-up",
     "none: the built-in directory only", TEXT(crisis_file)},
    {"trusted-proxy", "ADDR[/BITS]",
     "a reverse proxy (address or CIDR, repeatable): for connections from it the client address "
     "is the last X-Forwarded-For entry that is not itself a trusted proxy; from anyone else "
     "X-Forwarded-For is ignored. Every per-address limit and log line uses the client address",
     "none", CALL},
    {"max-conns-per-address", "N",
     "open connections (HTTP and WebSocket) one client address may hold; more are refused at "
     "accept (behind a trusted proxy: at the WebSocket upgrade, 429)",
     "256", NUMBER(INT, max_conns_per_address, 1, 10000000)},
    {"max-conns", "N",
     "open connections in total; more are refused at accept (lowered to the open-file limit "
     "less 64 at start-up, with a warning)",
     "20000", NUMBER(INT, max_conns, 1, 10000000)},
    {"body-timeout", "SECONDS",
     "a request body must arrive whole within this long of its headers, or the connection is "
     "closed (headers themselves are cut at 10 s)",
     "10", NUMBER(INT, body_timeout_s, 1, 3600)},
    {"allowed-host", "HOST[:PORT]",
     "a Host header the server answers to besides --public-url's (repeatable; DNS rebinding "
     "defence); loopback names and addresses are allowed when listening on loopback",
     "the --public-url host", CALL},
    {"metrics-token", "TOKEN",
     "GET /metrics needs `Authorization: Bearer TOKEN`; without it /metrics answers only "
     "connections from a loopback address that are not through a trusted proxy",
     "none: direct loopback clients only", TEXT(metrics_token)},
    {"allow-root", NULL, "run even as root (refused otherwise)", "off", FLAG(allow_root)},
    {"demo", NULL, "create (or reuse) a demo room, print its invitations, then serve", "off",
     FLAG(demo)},
    {"demo-exercise", "ID", "exercise of the demo room", "enactment", TEXT(demo_exercise)},
    {"demo-owner", "NAME",
     "with --demo: the therapist account (attune therapist add) that owns the demo room, so it "
     "is on NAME's dashboard with its replay and report",
     "none", TEXT(demo_owner)},
    {"room-evict-s", "SECONDS",
     "free an ended room from memory once it has had nobody in it, nothing being stored and no "
     "timer pending for this long (it is folded from the store again when needed)",
     "60", NUMBER(INT, room_evict_s, 0, THIRTY_DAYS_S)},
    {"room-idle-evict-s", "SECONDS",
     "the same for a room whose session has not ended (nobody present, no timer pending)", "1800",
     NUMBER(INT, room_idle_evict_s, 0, THIRTY_DAYS_S)},
    {"shutdown-grace-ms", "MS",
     "on SIGTERM, how long to wait for clients to close before exiting anyway", "3000",
     NUMBER(INT, shutdown_grace_ms, 0, 600000)},
    {"verify", "DIR",
     "do not serve: fold every room's log in DIR and print one JSON line per room "
     "(room, seq, state hash, state)",
     "none", CALL},
    {"create-room", "EXERCISE",
     "do not serve: create a room for EXERCISE in --data, print `room ID` and one "
     "`invite ROLE URL` line per role (partners, therapist, observer), exit",
     "none", CALL},
    {"test-fail-store-batch", "N", "testing only: make the commit of the Nth stored batch fail",
     "0", NUMBER(INT, test_fail_store_batch, 0, 1e9)},
    {"help", NULL, "print this help", "", CALL},
};

static const att_option_table option_table = {options, sizeof options / sizeof options[0], 0};

void srv_config_usage(FILE *out)
{
    fprintf(out, "usage: attune-server [options]\n\n"
                 "Serves Attune rooms over WebSocket (/ws, subprotocol attune.v1), the web app\n"
                 "(static files), /healthz and /metrics. Logs are JSON lines on stderr.\n\n"
                 "options (default in brackets; none can be changed while running):\n");
    att_options_print_help(&option_table, 28, out);
    fprintf(out, "\nSignals: SIGTERM or SIGINT stops accepting, flushes the log, closes clients\n"
                 "with 1001 and exits 0. SIGHUP loads --tls-cert and --tls-key again (new\n"
                 "handshakes get the new certificate, open connections stay; a file that does\n"
                 "not load leaves the old certificate in place and is logged).\n");
}

static void set_defaults(srv_config *c)
{
    memset(c, 0, sizeof *c);
    c->mode = SRV_MODE_SERVE;
    snprintf(c->listen, sizeof c->listen, "127.0.0.1");
    c->port = 8080;
    snprintf(c->data_dir, sizeof c->data_dir, "./data");
    snprintf(c->web_dir, sizeof c->web_dir, "%s", ATTUNE_WEB_DIR);
    snprintf(c->protocol_dir, sizeof c->protocol_dir, "%s", ATTUNE_PROTOCOL_DIR);
    c->rate = 20;
    c->burst = 40;
    c->max_queue_bytes = 1 << 20;
    c->commit_window_us = SRV_STORE_DEFAULT_WINDOW_US;
    c->node_lease_ms = SRV_PG_DEFAULT_LEASE_MS;
    c->hello_timeout_s = 10;
    c->ping_s = 30;
    c->token_ttl_s = 7 * 24 * 3600;
    c->link_grace_s = 1800;
    c->ticket_ttl_s = 60;
    c->session_lifetime_s = 12 * 3600;
    c->silence_ms = ATT_DEFAULT_SILENCE_MS;
    c->disconnect_grace_ms = ATT_DEFAULT_DISCONNECT_GRACE_MS;
    c->presence_debounce_ms = ATT_DEFAULT_PRESENCE_DEBOUNCE_MS;
    c->link_events_per_minute = 120;
    c->room_events_per_minute = 300;
    c->room_event_cap = 50000;
    snprintf(c->demo_exercise, sizeof c->demo_exercise, "enactment");
    c->shutdown_grace_ms = 3000;
    c->session_idle_s = 900;
    c->max_conns_per_address = 256;
    c->max_conns = 20000;
    c->body_timeout_s = 10;
    c->room_evict_s = 60;
    c->room_idle_evict_s = 1800;
}

static int copy_text(char *dst, size_t size, const att_option *o, const char *v, att_error *err)
{
    if (strlen(v) >= size)
        return att_fail(err, ATT_ERR_BAD_MESSAGE, "--%s: value too long", o->name);
    memcpy(dst, v, strlen(v) + 1);
    return 0;
}

/* One more value of a repeatable option (--origin, --allowed-host): the
 * next row of a char[max][size] array holding *n. */
static int append_text(char *rows, int *n, int max, size_t size, const att_option *o, const char *v,
                       att_error *err)
{
    if (*n >= max)
        return att_fail(err, ATT_ERR_BAD_MESSAGE, "--%s: at most %d", o->name, max);
    int rc = copy_text(rows + (size_t)*n * size, size, o, v, err);
    if (rc == 0)
        (*n)++;
    return rc;
}

/* The options the table cannot store by itself (ATT_OPT_CALL). */
static int apply(void *arg, int index, const char *v, att_error *err)
{
    srv_config *c = arg;
    const att_option *o = &options[index];
    const char *n = o->name;
    if (strcmp(n, "config") == 0)
        return 0; /* read before the flags (srv_config_parse) */
    if (strcmp(n, "help") == 0) {
        c->mode = SRV_MODE_HELP;
        return 0;
    }
    if (strcmp(n, "origin") == 0)
        return append_text(&c->origins[0][0], &c->n_origins, SRV_MAX_ORIGINS, sizeof c->origins[0],
                           o, v, err);
    if (strcmp(n, "allowed-host") == 0)
        return append_text(&c->allowed_hosts[0][0], &c->n_allowed_hosts, SRV_MAX_HOSTS,
                           sizeof c->allowed_hosts[0], o, v, err);
    if (strcmp(n, "trusted-proxy") == 0) {
        if (c->n_trusted_proxies >= SRV_MAX_PROXIES)
            return att_fail(err, ATT_ERR_BAD_MESSAGE, "--trusted-proxy: at most %d",
                            SRV_MAX_PROXIES);
        return srv_cidr_parse(v, &c->trusted_proxies[c->n_trusted_proxies++], err);
    }
    if (strcmp(n, "verify") == 0) {
        c->mode = SRV_MODE_VERIFY;
        return copy_text(c->verify_dir, sizeof c->verify_dir, o, v, err);
    }
    if (strcmp(n, "create-room") == 0) {
        c->mode = SRV_MODE_CREATE_ROOM;
        return copy_text(c->create_exercise, sizeof c->create_exercise, o, v, err);
    }
    if (strcmp(n, "token-ttl") == 0) {
        double x = 0;
        if (att_option_number(o, v, &x, err) < 0)
            return -ATT_ERR_BAD_MESSAGE;
        if (x > TOKEN_TTL_MAX_S)
            return att_fail(err, ATT_ERR_BAD_MESSAGE,
                            "--token-ttl: at most 2592000 seconds (30 days): invitation links "
                            "are bearer credentials");
        c->token_ttl_s = (int64_t)x;
        return 0;
    }
    return att_fail(err, ATT_ERR_INTERNAL, "--%s: not settable", n);
}

/* Reads the file named by --config and applies its settings. */
static int load_file(srv_config *c, const char *path, att_error *err)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return att_fail(err, ATT_ERR_BAD_MESSAGE, "--config %s: %s", path, strerror(errno));
    char *text = malloc(CONFIG_FILE_MAX + 1);
    size_t len = text ? fread(text, 1, CONFIG_FILE_MAX + 1, f) : 0;
    int read_errno = ferror(f) ? errno : 0, rc;
    fclose(f);
    if (!text)
        rc = att_fail(err, ATT_ERR_INTERNAL, "--config %s: out of memory", path);
    else if (read_errno)
        rc = att_fail(err, ATT_ERR_BAD_MESSAGE, "--config %s: %s", path, strerror(read_errno));
    else if (len > CONFIG_FILE_MAX)
        rc =
            att_fail(err, ATT_ERR_BAD_MESSAGE, "--config %s: over %d bytes", path, CONFIG_FILE_MAX);
    else if (memchr(text, '\0', len))
        rc = att_fail(err, ATT_ERR_BAD_MESSAGE, "--config %s: not a text file", path);
    else {
        text[len] = '\0';
        rc = att_options_parse_text(&option_table, text, path, c, apply, c, err);
    }
    free(text);
    return rc < 0 ? rc : 0;
}

/* The first pass: each --config file, in order, before any flag. */
static int load_config_files(void *arg, int index, const char *v, att_error *err)
{
    return strcmp(options[index].name, "config") == 0 ? load_file(arg, v, err) : 0;
}

int srv_config_parse(int argc, char **argv, srv_config *c, att_error *err)
{
    set_defaults(c);
    /* The files first, so that flags override them; the first pass only
     * checks the other flags, the second applies them. */
    int rc =
        att_options_parse_argv(&option_table, argc - 1, argv + 1, NULL, load_config_files, c, err);
    if (rc == 0)
        rc = att_options_parse_argv(&option_table, argc - 1, argv + 1, c, apply, c, err);
    if (rc < 0)
        return rc;
    if (c->store_uri[0] && !srv_pg_is_uri(c->store_uri))
        return att_fail(err, ATT_ERR_BAD_MESSAGE,
                        "--store: not a PostgreSQL URI (postgresql://USER@HOST:PORT/DB)");
    if (c->store_uri[0] && !c->kek_file[0])
        return att_fail(err, ATT_ERR_BAD_MESSAGE,
                        "--store needs --kek-file: every node of a cluster is given the same "
                        "key-encryption key");
    if (!c->tls_cert[0] != !c->tls_key[0])
        return att_fail(err, ATT_ERR_BAD_MESSAGE,
                        c->tls_cert[0]
                            ? "--tls-cert needs --tls-key (the certificate's private key)"
                            : "--tls-key needs --tls-cert (the certificate it belongs to)");
    if (c->tls_cert[0] && !c->public_url[0]) {
        /* Invitations and the Host check name the https:// origin. */
        const char *host = c->listen;
        if (!host[0] || strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0)
            host = "localhost";
        int v6 = strchr(host, ':') != NULL;
        if ((size_t)snprintf(c->public_url, sizeof c->public_url, "https://%s%s%s:%d",
                             v6 ? "[" : "", host, v6 ? "]" : "", c->port) >= sizeof c->public_url)
            return att_fail(err, ATT_ERR_BAD_MESSAGE, "--listen: address too long");
    }
    if (!c->key_file[0]) {
        if ((size_t)snprintf(c->key_file, sizeof c->key_file, "%s/secret.key", c->data_dir) >=
            sizeof c->key_file)
            return att_fail(err, ATT_ERR_BAD_MESSAGE, "--data: path too long");
    }
    return 0;
}
