/* config.h - attune-server's settings: defaults, command-line flags and an
 * optional config file of `key = value` lines (keys are the long option
 * names without the dashes; `#` starts a comment). Flags win over the file.
 *
 * Owns nothing but the srv_config value (strings are copied into it). Runs
 * on main's thread before anything else starts; none of these settings can
 * be reloaded while the server runs (restart to change them). The one thing
 * re-read while running is what --tls-cert and --tls-key name: SIGHUP loads
 * those same paths again (server.c). */
#ifndef SRV_CONFIG_H
#define SRV_CONFIG_H

#include <stddef.h>
#include <stdio.h>
#include <stdint.h>
#include "attune/types.h"
#include "peer.h"

#define SRV_MAX_ORIGINS 16
#define SRV_PATH_MAX 1024
#define SRV_MAX_PROXIES 16
#define SRV_MAX_HOSTS 16

typedef enum { SRV_MODE_SERVE, SRV_MODE_VERIFY, SRV_MODE_CREATE_ROOM, SRV_MODE_HELP } srv_mode;

typedef struct {
    srv_mode mode;
    int demo;                    /* --demo */
    char listen[64];             /* --listen */
    int port;                    /* --port */
    char data_dir[SRV_PATH_MAX]; /* --data */
    /* --store: a PostgreSQL URI (store_pg.h); empty: the SQLite store in
     * the data directory. */
    char store_uri[1024];
    char node_name[128];                /* --node-name; empty: HOST:PORT */
    int node_lease_ms;                  /* --node-lease-ms */
    char key_file[SRV_PATH_MAX];        /* --key-file; empty: DATA/secret.key */
    char kek_file[SRV_PATH_MAX];        /* --kek-file; empty: srv_kek_default_path */
    char web_dir[SRV_PATH_MAX];         /* --web-dir */
    char protocol_dir[SRV_PATH_MAX];    /* --protocol-dir */
    char public_url[256];               /* --public-url; empty: http(s)://HOST:PORT */
    char origins[SRV_MAX_ORIGINS][256]; /* --origin (repeatable) */
    int n_origins;
    double rate;                   /* --rate: messages per second per connection */
    double burst;                  /* --burst */
    size_t max_queue_bytes;        /* --max-queue-bytes */
    int commit_window_us;          /* --commit-window-us */
    int hello_timeout_s;           /* --hello-timeout */
    int ping_s;                    /* --ping-interval */
    int64_t token_ttl_s;           /* --token-ttl */
    int64_t link_grace_s;          /* --link-grace: partner links after the session ended */
    int ticket_ttl_s;              /* --ticket-ttl: staff tickets (tickets.h) */
    int64_t silence_ms;            /* --silence-ms */
    int64_t disconnect_grace_ms;   /* --disconnect-grace-ms */
    int64_t presence_debounce_ms;  /* --presence-debounce-ms (0: off) */
    int link_events_per_minute;    /* --link-events-per-minute (0: no limit) */
    int room_events_per_minute;    /* --room-events-per-minute (0: no limit) */
    int64_t room_event_cap;        /* --room-event-cap */
    char demo_exercise[65];        /* --demo-exercise */
    char demo_owner[65];           /* --demo-owner; "" for none */
    int shutdown_grace_ms;         /* --shutdown-grace-ms */
    char verify_dir[SRV_PATH_MAX]; /* --verify DIR */
    char create_exercise[65];      /* --create-room EXERCISE */
    int test_fail_store_batch;     /* --test-fail-store-batch N (testing only) */
    int session_idle_s;            /* --session-idle (therapists' login sessions) */
    int session_lifetime_s;        /* --session-lifetime (absolute, from the login) */
    int room_evict_s;              /* --room-evict-s: an ended, quiet room leaves memory */
    int room_idle_evict_s;         /* --room-idle-evict-s: any other quiet room */
    /* --crisis-file; "" for the built-in directory only */
    char crisis_file[SRV_PATH_MAX];
    /* --tls-cert (PEM chain, leaf first) and --tls-key (PEM, unencrypted):
     * both or neither; "" for plain HTTP. */
    char tls_cert[SRV_PATH_MAX];
    char tls_key[SRV_PATH_MAX];
    /* Connections and requests (peer.h, http.c): --trusted-proxy and
     * --allowed-host (repeatable), --max-conns-per-address, --max-conns
     * (HTTP and WebSocket together), --body-timeout (a request body's whole
     * deadline), --metrics-token ("" for direct loopback only), --allow-root. */
    srv_cidr trusted_proxies[SRV_MAX_PROXIES];
    int n_trusted_proxies;
    char allowed_hosts[SRV_MAX_HOSTS][256];
    int n_allowed_hosts;
    int max_conns_per_address;
    int max_conns;
    int body_timeout_s;
    char metrics_token[128];
    int allow_root;
} srv_config;

/* Fills defaults, then the file named by --config (if any), then the flags.
 * Returns 0, or a negative code with err set (unknown option, bad value). */
int srv_config_parse(int argc, char **argv, srv_config *cfg, att_error *err);

/* Prints every option with its default. */
void srv_config_usage(FILE *out);

/* The KEK file to open the keyring with: --kek-file, or NULL for the
 * keyring's default (srv_kek_default_path). */
static inline const char *srv_config_kek_file(const srv_config *c)
{
    return c->kek_file[0] ? c->kek_file : NULL;
}

#endif
