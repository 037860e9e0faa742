/* config.c - defaults, flags and config file (see config.h). */
#include "config.h"
#include "crisis.h"
#include "store.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef ATTUNE_PROTOCOL_DIR
#define ATTUNE_PROTOCOL_DIR "protocol"
#endif
#ifndef ATTUNE_WEB_DIR
#define ATTUNE_WEB_DIR "client/web"
#endif

typedef enum { OPT_FLAG, OPT_STRING, OPT_INT, OPT_DOUBLE, OPT_SIZE, OPT_INT64 } opt_kind;

typedef struct {
    const char *name;
    opt_kind kind;
    const char *arg; /* argument name in --help */
    const char *def; /* default, as shown in --help */
    const char *help;
} opt_desc;

static const opt_desc options[] = {
    {"config", OPT_STRING, "FILE", "none",
     "read settings from FILE: `key = value` lines, keys are these option names"},
    {"listen", OPT_STRING, "ADDR", "127.0.0.1", "address to listen on (0.0.0.0 for all)"},
    {"port", OPT_INT, "N", "8080", "TCP port for HTTP and the WebSocket endpoint /ws"},
    {"data", OPT_STRING, "DIR", "./data", "data directory: the event log (attune.db) and the key"},
    {"key-file", OPT_STRING, "FILE", "DATA/secret.key",
     "invitation signing key; created (mode 0600) when missing"},
    {"web-dir", OPT_STRING, "DIR", ATTUNE_WEB_DIR, "static files served at /"},
    {"protocol-dir", OPT_STRING, "DIR", ATTUNE_PROTOCOL_DIR,
     "protocol data: exercises/ and vocab/"},
    {"public-url", OPT_STRING, "URL", "http://HOST:PORT", "base URL printed in invitations"},
    {"origin", OPT_STRING, "ORIGIN", "same origin only",
     "allow WebSocket connections from this browser Origin (repeatable); requests "
     "without an Origin header (non-browser clients) are always allowed"},
    {"rate", OPT_DOUBLE, "N", "20", "messages per second per connection (token bucket)"},
    {"burst", OPT_DOUBLE, "N", "40", "token bucket size: messages a client may send at once"},
    {"commit-window-us", OPT_INT, "US", "2000",
     "group commit window: the store commits once the oldest waiting event has waited this "
     "long, so events arriving meanwhile share one transaction and fsync (0: commit at once)"},
    {"max-queue-bytes", OPT_SIZE, "N", "1048576",
     "send queue bound per connection; a reader past it is closed (1008)"},
    {"hello-timeout", OPT_INT, "SECONDS", "10", "close connections that send no hello (4408)"},
    {"ping-interval", OPT_INT, "SECONDS", "30",
     "ping a connection quiet this long; hang up half as long (at most 15 s) later without a "
     "pong"},
    {"token-ttl", OPT_INT64, "SECONDS", "604800",
     "lifetime of new invitation links (7 days; at most 2592000, 30 days)"},
    {"link-grace", OPT_INT64, "SECONDS", "1800",
     "a partner's link stops working this long after its session ended (refused at hello, live "
     "connections closed 4401); review afterwards is through the therapist's login (30 min)"},
    {"ticket-ttl", OPT_INT, "SECONDS", "60",
     "how long a staff ticket (POST /api/rooms/{id}/ticket, single use) may wait for its hello"},
    {"silence-ms", OPT_INT64, "MS", "90000",
     "silence suggestion threshold for exercise steps that set none (steps' own silence_ms "
     "rule; 0 there turns it off)"},
    {"disconnect-grace-ms", OPT_INT64, "MS", "60000",
     "a partner away this long on their turn is suggested to the therapist as a withdrawal; a "
     "shorter drop raises nothing"},
    {"presence-debounce-ms", OPT_INT64, "MS", "5000",
     "a member who reconnects within this long of a drop records no left/joined pair: their "
     "`left` is recorded (at the time they went) only once they have stayed away this long, and "
     "drops that came back make one staff-only `reconnected` per seat per window (0: record "
     "every join and leave at once)"},
    {"link-events-per-minute", OPT_INT, "N", "120",
     "events one link (a room's partner_a, partner_b or therapist seat, or its observers "
     "together) may record per minute, in bursts of up to N; more are refused rate_limited "
     "(0: no limit)"},
    {"room-events-per-minute", OPT_INT, "N", "300",
     "events a room's partners may record per minute together; more are refused room_busy "
     "(the therapist's commands count but are never refused by it; 0: no limit)"},
    {"room-event-cap", OPT_INT64, "N", "50000",
     "events a room's log may hold: past it partners are refused log_full, and the therapist "
     "(ending the session, notes) and presence have 1000 more"},
    {"session-idle", OPT_INT, "SECONDS", "900",
     "a login session ends after this long without the therapist's own actions (requests that "
     "change something, WebSocket commands; not background reads) (15 min)"},
    {"session-lifetime", OPT_INT, "SECONDS", "43200",
     "a login session ends this long after the login, however active (12 h)"},
    {"crisis-file", OPT_STRING, "FILE", "none: the built-in directory only",
     "the practice's own crisis and domestic-abuse lines and the address \"Leave quickly\" "
     "opens (JSON, see deploy/crisis.example.json; default address " SRV_CRISIS_DEFAULT_NEUTRAL_URL
     "), served at GET /api/crisis and shown first on crisis.html; checked at start-up"},
    {"trusted-proxy", OPT_STRING, "ADDR[/BITS]", "none",
     "a reverse proxy (address or CIDR, repeatable): for connections from it the client address "
     "is the last X-Forwarded-For entry that is not itself a trusted proxy; from anyone else "
     "X-Forwarded-For is ignored. Every per-address limit and log line uses the client address"},
    {"max-conns-per-address", OPT_INT, "N", "256",
     "open connections (HTTP and WebSocket) one client address may hold; more are refused at "
     "accept (behind a trusted proxy: at the WebSocket upgrade, 429)"},
    {"max-conns", OPT_INT, "N", "20000",
     "open connections in total; more are refused at accept (lowered to the open-file limit "
     "less 64 at start-up, with a warning)"},
    {"body-timeout", OPT_INT, "SECONDS", "10",
     "a request body must arrive whole within this long of its headers, or the connection is "
     "closed (headers themselves are cut at 10 s)"},
    {"allowed-host", OPT_STRING, "HOST[:PORT]", "the --public-url host",
     "a Host header the server answers to besides --public-url's (repeatable; DNS rebinding "
     "defence); loopback names and addresses are allowed when listening on loopback"},
    {"metrics-token", OPT_STRING, "TOKEN", "none: direct loopback clients only",
     "GET /metrics needs `Authorization: Bearer TOKEN`; without it /metrics answers only "
     "connections from a loopback address that are not through a trusted proxy"},
    {"allow-root", OPT_FLAG, NULL, "off", "run even as root (refused otherwise)"},
    {"demo", OPT_FLAG, NULL, "off",
     "create (or reuse) a demo room, print its invitations, then serve"},
    {"demo-exercise", OPT_STRING, "ID", "enactment", "exercise of the demo room"},
    {"demo-owner", OPT_STRING, "NAME", "none",
     "with --demo: the therapist account (attune therapist add) that owns the demo room, so it "
     "is on NAME's dashboard with its replay and report"},
    {"room-evict-s", OPT_INT, "SECONDS", "60",
     "free an ended room from memory once it has had nobody in it, nothing being stored and no "
     "timer pending for this long (it is folded from the store again when needed)"},
    {"room-idle-evict-s", OPT_INT, "SECONDS", "1800",
     "the same for a room whose session has not ended (nobody present, no timer pending)"},
    {"shutdown-grace-ms", OPT_INT, "MS", "3000",
     "on SIGTERM, how long to wait for clients to close before exiting anyway"},
    {"verify", OPT_STRING, "DIR", "none",
     "do not serve: fold every room's log in DIR and print one JSON line per room "
     "(room, seq, state hash, state)"},
    {"create-room", OPT_STRING, "EXERCISE", "none",
     "do not serve: create a room for EXERCISE in --data, print `room ID` and one "
     "`invite ROLE URL` line per role (partners, therapist, observer), exit"},
    {"test-fail-store-batch", OPT_INT, "N", "0",
     "testing only: make the commit of the Nth stored batch fail"},
    {"help", OPT_FLAG, NULL, "", "print this help"},
};

#define N_OPTIONS (sizeof options / sizeof options[0])

void srv_config_usage(FILE *out)
{
    fprintf(out, "usage: attune-server [options]\n\n"
                 "Serves Attune rooms over WebSocket (/ws, subprotocol attune.v1), the web app\n"
                 "(static files), /healthz and /metrics. Logs are JSON lines on stderr.\n\n"
                 "options (default in brackets; none can be changed while running):\n");
    for (size_t i = 0; i < N_OPTIONS; i++) {
        char left[64];
        snprintf(left, sizeof left, "--%s%s%s", options[i].name, options[i].arg ? " " : "",
                 options[i].arg ? options[i].arg : "");
        fprintf(out, "  %-28s %s", left, options[i].help);
        if (options[i].def[0])
            fprintf(out, " [%s]", options[i].def);
        fputc('\n', out);
    }
    fprintf(out, "\nSignals: SIGTERM or SIGINT stops accepting, flushes the log, closes clients\n"
                 "with 1001 and exits 0.\n");
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

static const opt_desc *find_option(const char *name)
{
    for (size_t i = 0; i < N_OPTIONS; i++)
        if (strcmp(options[i].name, name) == 0)
            return &options[i];
    return NULL;
}

static int copy_str(char *dst, size_t size, const char *v, const char *name, att_error *err)
{
    if (strlen(v) >= size)
        return att_fail(err, ATT_ERR_BAD_MESSAGE, "--%s: value too long", name);
    memcpy(dst, v, strlen(v) + 1);
    return 0;
}

static int parse_number(const char *name, const char *v, long double min, long double max,
                        long double *out, att_error *err)
{
    char *end = NULL;
    errno = 0;
    long double x = strtold(v, &end);
    if (errno || !end || end == v || *end || x < min || x > max)
        return att_fail(err, ATT_ERR_BAD_MESSAGE, "--%s: expected a number in %.0Lf..%.0Lf", name,
                        min, max);
    *out = x;
    return 0;
}

static int apply(srv_config *c, const opt_desc *o, const char *v, att_error *err)
{
    const char *n = o->name;
    long double x = 0;
    if (strcmp(n, "help") == 0) {
        c->mode = SRV_MODE_HELP;
        return 0;
    }
    if (strcmp(n, "demo") == 0) {
        c->demo = 1;
        return 0;
    }
    if (strcmp(n, "config") == 0)
        return 0; /* handled first */
    if (strcmp(n, "allow-root") == 0) {
        c->allow_root = 1;
        return 0;
    }
    if (strcmp(n, "trusted-proxy") == 0) {
        if (c->n_trusted_proxies >= SRV_MAX_PROXIES)
            return att_fail(err, ATT_ERR_BAD_MESSAGE, "--trusted-proxy: at most %d",
                            SRV_MAX_PROXIES);
        return srv_cidr_parse(v, &c->trusted_proxies[c->n_trusted_proxies++], err);
    }
    if (strcmp(n, "allowed-host") == 0) {
        if (c->n_allowed_hosts >= SRV_MAX_HOSTS)
            return att_fail(err, ATT_ERR_BAD_MESSAGE, "--allowed-host: at most %d", SRV_MAX_HOSTS);
        return copy_str(c->allowed_hosts[c->n_allowed_hosts++], sizeof c->allowed_hosts[0], v, n,
                        err);
    }
    if (strcmp(n, "metrics-token") == 0)
        return copy_str(c->metrics_token, sizeof c->metrics_token, v, n, err);
    if (strcmp(n, "max-conns-per-address") == 0 || strcmp(n, "max-conns") == 0 ||
        strcmp(n, "body-timeout") == 0) {
        int per = strcmp(n, "max-conns-per-address") == 0, body = strcmp(n, "body-timeout") == 0;
        if (parse_number(n, v, 1, body ? 3600 : 10000000, &x, err) < 0)
            return -ATT_ERR_BAD_MESSAGE;
        *(per ? &c->max_conns_per_address : body ? &c->body_timeout_s : &c->max_conns) = (int)x;
        return 0;
    }
    if (strcmp(n, "listen") == 0)
        return copy_str(c->listen, sizeof c->listen, v, n, err);
    if (strcmp(n, "data") == 0)
        return copy_str(c->data_dir, sizeof c->data_dir, v, n, err);
    if (strcmp(n, "key-file") == 0)
        return copy_str(c->key_file, sizeof c->key_file, v, n, err);
    if (strcmp(n, "web-dir") == 0)
        return copy_str(c->web_dir, sizeof c->web_dir, v, n, err);
    if (strcmp(n, "protocol-dir") == 0)
        return copy_str(c->protocol_dir, sizeof c->protocol_dir, v, n, err);
    if (strcmp(n, "public-url") == 0)
        return copy_str(c->public_url, sizeof c->public_url, v, n, err);
    if (strcmp(n, "demo-exercise") == 0)
        return copy_str(c->demo_exercise, sizeof c->demo_exercise, v, n, err);
    if (strcmp(n, "demo-owner") == 0)
        return copy_str(c->demo_owner, sizeof c->demo_owner, v, n, err);
    if (strcmp(n, "crisis-file") == 0)
        return copy_str(c->crisis_file, sizeof c->crisis_file, v, n, err);
    if (strcmp(n, "verify") == 0) {
        c->mode = SRV_MODE_VERIFY;
        return copy_str(c->verify_dir, sizeof c->verify_dir, v, n, err);
    }
    if (strcmp(n, "create-room") == 0) {
        c->mode = SRV_MODE_CREATE_ROOM;
        return copy_str(c->create_exercise, sizeof c->create_exercise, v, n, err);
    }
    if (strcmp(n, "origin") == 0) {
        if (c->n_origins >= SRV_MAX_ORIGINS)
            return att_fail(err, ATT_ERR_BAD_MESSAGE, "--origin: at most %d", SRV_MAX_ORIGINS);
        return copy_str(c->origins[c->n_origins++], sizeof c->origins[0], v, n, err);
    }
    if (strcmp(n, "port") == 0) {
        if (parse_number(n, v, 0, 65535, &x, err) < 0)
            return -ATT_ERR_BAD_MESSAGE;
        c->port = (int)x;
    } else if (strcmp(n, "rate") == 0) {
        if (parse_number(n, v, 0.001, 1e6, &x, err) < 0)
            return -ATT_ERR_BAD_MESSAGE;
        c->rate = (double)x;
    } else if (strcmp(n, "burst") == 0) {
        if (parse_number(n, v, 1, 1e6, &x, err) < 0)
            return -ATT_ERR_BAD_MESSAGE;
        c->burst = (double)x;
    } else if (strcmp(n, "commit-window-us") == 0) {
        if (parse_number(n, v, 0, 100000, &x, err) < 0)
            return -ATT_ERR_BAD_MESSAGE;
        c->commit_window_us = (int)x;
    } else if (strcmp(n, "max-queue-bytes") == 0) {
        if (parse_number(n, v, 4096, 1e12, &x, err) < 0)
            return -ATT_ERR_BAD_MESSAGE;
        c->max_queue_bytes = (size_t)x;
    } else if (strcmp(n, "hello-timeout") == 0) {
        if (parse_number(n, v, 1, 3600, &x, err) < 0)
            return -ATT_ERR_BAD_MESSAGE;
        c->hello_timeout_s = (int)x;
    } else if (strcmp(n, "ping-interval") == 0) {
        if (parse_number(n, v, 1, 3600, &x, err) < 0)
            return -ATT_ERR_BAD_MESSAGE;
        c->ping_s = (int)x;
    } else if (strcmp(n, "token-ttl") == 0) {
        /* The cap is invites.h's SRV_INVITE_TTL_MAX_S: a link is a bearer
         * credential. */
        if (parse_number(n, v, 1, 1e12, &x, err) < 0)
            return -ATT_ERR_BAD_MESSAGE;
        if (x > 30 * 24 * 3600)
            return att_fail(err, ATT_ERR_BAD_MESSAGE,
                            "--token-ttl: at most 2592000 seconds (30 days): invitation links "
                            "are bearer credentials");
        c->token_ttl_s = (int64_t)x;
    } else if (strcmp(n, "ticket-ttl") == 0) {
        if (parse_number(n, v, 1, 600, &x, err) < 0)
            return -ATT_ERR_BAD_MESSAGE;
        c->ticket_ttl_s = (int)x;
    } else if (strcmp(n, "link-grace") == 0) {
        /* Up to ten years: a data directory of old sessions kept for their
         * partners' replays (the links themselves still expire). */
        if (parse_number(n, v, 0, 10.0 * 365 * 24 * 3600, &x, err) < 0)
            return -ATT_ERR_BAD_MESSAGE;
        c->link_grace_s = (int64_t)x;
    } else if (strcmp(n, "silence-ms") == 0) {
        if (parse_number(n, v, 1, 1e10, &x, err) < 0)
            return -ATT_ERR_BAD_MESSAGE;
        c->silence_ms = (int64_t)x;
    } else if (strcmp(n, "disconnect-grace-ms") == 0) {
        if (parse_number(n, v, 1, 86400000, &x, err) < 0)
            return -ATT_ERR_BAD_MESSAGE;
        c->disconnect_grace_ms = (int64_t)x;
    } else if (strcmp(n, "presence-debounce-ms") == 0) {
        if (parse_number(n, v, 0, 600000, &x, err) < 0)
            return -ATT_ERR_BAD_MESSAGE;
        c->presence_debounce_ms = (int64_t)x;
    } else if (strcmp(n, "link-events-per-minute") == 0) {
        if (parse_number(n, v, 0, 1000000, &x, err) < 0)
            return -ATT_ERR_BAD_MESSAGE;
        c->link_events_per_minute = (int)x;
    } else if (strcmp(n, "room-events-per-minute") == 0) {
        if (parse_number(n, v, 0, 1000000, &x, err) < 0)
            return -ATT_ERR_BAD_MESSAGE;
        c->room_events_per_minute = (int)x;
    } else if (strcmp(n, "room-event-cap") == 0) {
        if (parse_number(n, v, 10, 1e9, &x, err) < 0)
            return -ATT_ERR_BAD_MESSAGE;
        c->room_event_cap = (int64_t)x;
    } else if (strcmp(n, "shutdown-grace-ms") == 0) {
        if (parse_number(n, v, 0, 600000, &x, err) < 0)
            return -ATT_ERR_BAD_MESSAGE;
        c->shutdown_grace_ms = (int)x;
    } else if (strcmp(n, "session-idle") == 0) {
        if (parse_number(n, v, 1, 30 * 24 * 3600, &x, err) < 0)
            return -ATT_ERR_BAD_MESSAGE;
        c->session_idle_s = (int)x;
    } else if (strcmp(n, "session-lifetime") == 0) {
        if (parse_number(n, v, 1, 30 * 24 * 3600, &x, err) < 0)
            return -ATT_ERR_BAD_MESSAGE;
        c->session_lifetime_s = (int)x;
    } else if (strcmp(n, "room-evict-s") == 0) {
        if (parse_number(n, v, 0, 30 * 24 * 3600, &x, err) < 0)
            return -ATT_ERR_BAD_MESSAGE;
        c->room_evict_s = (int)x;
    } else if (strcmp(n, "room-idle-evict-s") == 0) {
        if (parse_number(n, v, 0, 30 * 24 * 3600, &x, err) < 0)
            return -ATT_ERR_BAD_MESSAGE;
        c->room_idle_evict_s = (int)x;
    } else if (strcmp(n, "test-fail-store-batch") == 0) {
        if (parse_number(n, v, 0, 1e9, &x, err) < 0)
            return -ATT_ERR_BAD_MESSAGE;
        c->test_fail_store_batch = (int)x;
    } else {
        return att_fail(err, ATT_ERR_BAD_MESSAGE, "--%s: not settable", n);
    }
    return 0;
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' || s[n - 1] == '\r'))
        s[--n] = '\0';
    return s;
}

static int load_file(srv_config *c, const char *path, att_error *err)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return att_fail(err, ATT_ERR_BAD_MESSAGE, "--config %s: %s", path, strerror(errno));
    char line[2048];
    int lineno = 0, rc = 0;
    while (rc == 0 && fgets(line, sizeof line, f)) {
        lineno++;
        char *hash = strchr(line, '#');
        if (hash)
            *hash = '\0';
        char *s = trim(line);
        if (!*s)
            continue;
        char *eq = strchr(s, '=');
        char *key = s, *value = NULL;
        if (eq) {
            *eq = '\0';
            value = trim(eq + 1);
        }
        key = trim(key);
        const opt_desc *o = find_option(key);
        if (!o || strcmp(key, "config") == 0 || strcmp(key, "help") == 0) {
            rc = att_fail(err, ATT_ERR_BAD_MESSAGE, "%s:%d: unknown setting '%s'", path, lineno,
                          key);
        } else if (o->kind == OPT_FLAG) {
            if (!value || strcmp(value, "true") == 0 || strcmp(value, "1") == 0 ||
                strcmp(value, "yes") == 0)
                rc = apply(c, o, NULL, err);
        } else if (!value) {
            rc = att_fail(err, ATT_ERR_BAD_MESSAGE, "%s:%d: '%s' needs a value", path, lineno, key);
        } else {
            rc = apply(c, o, value, err);
        }
    }
    fclose(f);
    return rc;
}

int srv_config_parse(int argc, char **argv, srv_config *c, att_error *err)
{
    set_defaults(c);
    /* First pass: the config file, so that flags override it. */
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0) {
            if (i + 1 >= argc)
                return att_fail(err, ATT_ERR_BAD_MESSAGE, "--config needs a file");
            if (load_file(c, argv[i + 1], err) < 0)
                return -ATT_ERR_BAD_MESSAGE;
            i++;
        } else if (strncmp(argv[i], "--config=", 9) == 0) {
            if (load_file(c, argv[i] + 9, err) < 0)
                return -ATT_ERR_BAD_MESSAGE;
        }
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) != 0)
            return att_fail(err, ATT_ERR_BAD_MESSAGE, "unexpected argument '%s'", a);
        char name[64];
        const char *value = NULL;
        const char *eq = strchr(a + 2, '=');
        size_t len = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
        if (len >= sizeof name)
            return att_fail(err, ATT_ERR_BAD_MESSAGE, "unknown option '%s'", a);
        memcpy(name, a + 2, len);
        name[len] = '\0';
        const opt_desc *o = find_option(name);
        if (!o)
            return att_fail(err, ATT_ERR_BAD_MESSAGE, "unknown option '--%s' (see --help)", name);
        if (o->kind == OPT_FLAG) {
            if (eq)
                return att_fail(err, ATT_ERR_BAD_MESSAGE, "--%s takes no value", name);
        } else if (eq) {
            value = eq + 1;
        } else {
            if (i + 1 >= argc)
                return att_fail(err, ATT_ERR_BAD_MESSAGE, "--%s needs a value", name);
            value = argv[++i];
        }
        if (apply(c, o, value, err) < 0)
            return -ATT_ERR_BAD_MESSAGE;
    }
    if (!c->key_file[0]) {
        if ((size_t)snprintf(c->key_file, sizeof c->key_file, "%s/secret.key", c->data_dir) >=
            sizeof c->key_file)
            return att_fail(err, ATT_ERR_BAD_MESSAGE, "--data: path too long");
    }
    return 0;
}
