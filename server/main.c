/* main.c - attune-server's entry: parse the configuration, then serve (with
 * --demo: create or reuse the demo room and print its invitations first) or
 * --verify a data directory. Owns the server value and the signal thread,
 * which waits for SIGTERM/SIGINT/SIGHUP (through a self-pipe) and only sets
 * the stop flag (or, for SIGHUP, the TLS reload flag) and wakes the service
 * loop. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "accounts.h"
#include "admin.h"
#include "clock.h"
#include "api.h"
#include "config.h"
#include "config_store.h"
#include "log.h"
#include "secure_start.h"
#include "server.h"
#include "store_pg.h"
#include "attune/names.h"

/* The write end of the self-pipe. The one piece of global state: a POSIX
 * signal handler has no other way to reach anything. Set once in main()
 * before the handlers are installed. */
static int signal_pipe_write = -1;

static void on_signal(int sig)
{
    unsigned char b = (unsigned char)sig;
    int saved = errno;
    if (write(signal_pipe_write, &b, 1) < 0) {
        /* nothing to do in a handler */
    }
    errno = saved;
}

typedef struct {
    srv_server *srv;
    int read_fd;
} signal_thread_arg;

static void *signal_thread(void *p)
{
    signal_thread_arg *a = p;
    (void)prctl(PR_SET_NAME, "attune-signal"); /* for top -H */
    for (;;) {
        unsigned char sig;
        ssize_t n = read(a->read_fd, &sig, 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return NULL;
        srv_log("info", "signal", "{s:i}", "signal", sig);
        if (sig == SIGHUP) { /* the certificate's files again, on the service thread */
            srv_server_request_tls_reload(a->srv);
            continue;
        }
        atomic_store(&a->srv->stop_requested, 1);
        srv_server_wake(a->srv);
    }
    return NULL;
}

typedef struct {
    char lines[3][SRV_INVITE_LINE_MAX];
    int n;
} demo_lines;

static void print_invitations(srv_server *srv, void *arg)
{
    (void)srv;
    demo_lines *d = arg;
    for (int i = 0; i < d->n; i++)
        printf("%s\n", d->lines[i]);
    fflush(stdout);
}

/* The keyring and the event store --verify works on: DIR's SQLite files,
 * or with --store the shared database as a node opens it (server/net/
 * server.c), registered under the node name with "-admin" so it is never
 * mistaken for the serving node. */
static int open_keys_and_store(const srv_config *cfg, const char *dir, srv_keyring **keys,
                               srv_store **store, att_error *err)
{
    if (!cfg->store_uri[0]) {
        int rc = srv_keyring_open(dir, srv_config_kek_file(cfg), 1, keys, err);
        return rc < 0 ? rc : srv_store_open(dir, *keys, store, err);
    }
    char node_name[sizeof cfg->node_name + 16];
    snprintf(node_name, sizeof node_name, "%s-admin", cfg->node_name[0] ? cfg->node_name : "node");
    srv_pg_store_options opt = {.uri = cfg->store_uri, .node_name = node_name, .ws_url = ""};
    int rc = srv_keyring_open_pg(cfg->store_uri, srv_config_kek_file(cfg), 1, keys, err);
    return rc < 0 ? rc : srv_store_open_pg(&opt, *keys, store, err);
}

static int verify(const srv_config *cfg)
{
    att_error err = {0};
    att_catalog *cat = NULL;
    srv_keyring *keys = NULL;
    srv_store *store = NULL;
    int rc = att_catalog_load_dir(cfg->protocol_dir, &cat, &err);
    /* An old data directory migrates here, so its KEK may be made (only
     * while keys.db holds no key). */
    if (rc == 0)
        rc = open_keys_and_store(cfg, cfg->verify_dir, &keys, &store, &err);
    att_room_config rooms = srv_config_room(cfg);
    if (rc == 0)
        rc = srv_admin_verify(store, cat, &rooms, stdout, &err);
    srv_store_close(store);
    srv_keyring_close(keys);
    att_catalog_free(cat);
    if (rc < 0) {
        srv_log("error", "verify_failed", "{s:s}", "error", err.message);
        return 1;
    }
    return 0;
}

/* --create-room: works beside a running server (SQLite waits for the
 * writer; the server loads the new room on its first hello). */
static int create_room(const srv_config *cfg)
{
    att_error err = {0};
    att_catalog *cat = NULL;
    srv_keyring *keys = NULL;
    srv_store *store = NULL;
    srv_invites *invites = NULL;
    srv_token_key key;
    char id[ATT_ROOM_ID_BYTES + 1];
    int rc = att_catalog_load_dir(cfg->protocol_dir, &cat, &err);
    /* On PostgreSQL the data directory holds only secret.key (the SQLite
     * store makes it otherwise). */
    if (rc == 0 && cfg->store_uri[0] && mkdir(cfg->data_dir, 0700) < 0 && errno != EEXIST)
        rc = att_fail(&err, ATT_ERR_INTERNAL, "cannot create the data directory %s: %s",
                      cfg->data_dir, strerror(errno));
    if (rc == 0 && cfg->store_uri[0]) {
        /* A cluster's room: created in the shared database, owned (epoch 1)
         * by this short-lived process's node row; the first node a member
         * reaches takes it over once this process has exited. */
        srv_pg_store_options opt = {.uri = cfg->store_uri,
                                    .node_name = cfg->node_name[0] ? cfg->node_name : "create-room",
                                    .ws_url = cfg->public_url,
                                    .lease_ms = cfg->node_lease_ms};
        rc = srv_keyring_open_pg(cfg->store_uri, srv_config_kek_file(cfg), 1, &keys, &err);
        if (rc == 0)
            rc = srv_store_open_pg(&opt, keys, &store, &err);
        if (rc == 0)
            rc = srv_invites_open_pg(cfg->store_uri, &invites, &err);
    } else if (rc == 0) {
        rc = srv_keyring_open(cfg->data_dir, srv_config_kek_file(cfg), 1, &keys, &err);
        if (rc == 0)
            rc = srv_store_open(cfg->data_dir, keys, &store, &err);
        if (rc == 0)
            rc = srv_invites_open(cfg->data_dir, &invites, &err);
    }
    if (rc == 0)
        rc = srv_token_key_load(cfg->key_file, &key, &err);
    if (rc == 0)
        rc = srv_admin_create_room(store, cat, cfg->create_exercise, ATT_ROLE_PARTNER_A, NULL, id,
                                   &err);
    if (rc == 0) {
        printf("room %s\n", id);
        static const att_role roles[] = {ATT_ROLE_PARTNER_A, ATT_ROLE_PARTNER_B, ATT_ROLE_THERAPIST,
                                         ATT_ROLE_OBSERVER};
        char lines[4][SRV_INVITE_LINE_MAX];
        srv_link_options links = srv_config_links(cfg);
        rc = srv_admin_invite_lines(invites, &key, &links, id, roles, 4, SRV_INVITE_OPERATOR,
                                    srv_now_ms(), lines, &err);
        for (int i = 0; rc == 0 && i < 4; i++)
            printf("%s\n", lines[i]);
        fflush(stdout);
    }
    srv_invites_close(invites);
    srv_store_close(store);
    srv_keyring_close(keys);
    att_catalog_free(cat);
    if (rc < 0) {
        srv_log("error", "create_room_failed", "{s:s}", "error", err.message);
        return 1;
    }
    return 0;
}

/* Puts the demo room on a therapist's dashboard (--demo-owner). */
static int give_demo_room(srv_server *srv, const char *owner, att_error *err)
{
    char room[ATT_ROOM_ID_BYTES + 1];
    int rc = srv_store_get_setting(srv->store, "demo.room", room, sizeof room, err);
    if (rc < 0)
        return rc;
    rc = srv_accounts_exists(srv_api_accounts(srv), owner, err);
    if (rc < 0)
        return rc;
    if (rc == 0)
        return att_fail(err, ATT_ERR_NOT_FOUND,
                        "--demo-owner: no therapist account '%s' (attune therapist add)", owner);
    return srv_accounts_set_owner(srv_api_accounts(srv), room, owner, err);
}

int main(int argc, char **argv)
{
    /* First of all, before any key is loaded: no core dump (a core would
     * hold the KEK, the room keys and decrypted sessions). */
    att_error dump_err = {0};
    if (srv_secure_no_core_dumps(&dump_err) < 0) {
        fprintf(stderr, "attune-server: %s\n", dump_err.message);
        return 1;
    }
    /* SIGTERM/SIGINT/SIGHUP only write a byte to a pipe; the signal thread
     * turns it into a stop request (SIGHUP: a TLS reload request). (libev's
     * own SIGINT watcher, installed by lws, calls the same stop path on the
     * service thread.) */
    signal_thread_arg sig = {0};
    int fds[2];
    if (pipe(fds) != 0 || fcntl(fds[0], F_SETFD, FD_CLOEXEC) != 0 ||
        fcntl(fds[1], F_SETFD, FD_CLOEXEC) != 0) {
        perror("attune-server: pipe");
        return 1;
    }
    sig.read_fd = fds[0];
    signal_pipe_write = fds[1];
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    srv_config cfg;
    att_error err = {0};
    if (srv_config_parse(argc, argv, &cfg, &err) < 0) {
        fprintf(stderr, "attune-server: %s\n", err.message);
        return 2;
    }
    if (cfg.mode == SRV_MODE_HELP) {
        srv_config_usage(stdout);
        return 0;
    }
    /* Before anything is opened: every file created from here is 0600. */
    srv_secure_umask();
    if (srv_secure_refuse_root(cfg.allow_root, &err) < 0 ||
        srv_secure_data_dir(cfg.mode == SRV_MODE_VERIFY ? cfg.verify_dir : cfg.data_dir, &err) <
            0) {
        srv_log("error", "startup_refused", "{s:s}", "error", err.message);
        fprintf(stderr, "attune-server: %s\n", err.message);
        return 1;
    }
    if (cfg.mode == SRV_MODE_VERIFY)
        return verify(&cfg);
    if (cfg.mode == SRV_MODE_CREATE_ROOM)
        return create_room(&cfg);

    srv_server srv;
    if (srv_server_open(&srv, &cfg, &err) < 0) {
        srv_log("error", "startup_failed", "{s:s}", "error", err.message);
        srv_server_close(&srv);
        return 1;
    }
    demo_lines demo = {0};
    if (cfg.demo) {
        srv_link_options links = srv_config_links(&cfg);
        if (srv_admin_demo(srv.store, srv.invites, srv.catalog, &srv.key, &links, cfg.demo_exercise,
                           demo.lines, &err) < 0) {
            srv_log("error", "demo_failed", "{s:s}", "error", err.message);
            srv_server_close(&srv);
            return 1;
        }
        demo.n = 3;
        if (cfg.demo_owner[0] && give_demo_room(&srv, cfg.demo_owner, &err) < 0) {
            srv_log("error", "demo_failed", "{s:s}", "error", err.message);
            srv_server_close(&srv);
            return 1;
        }
    }
    sig.srv = &srv;
    pthread_t tid;
    if (pthread_create(&tid, NULL, signal_thread, &sig) != 0) {
        srv_log("error", "startup_failed", "{s:s}", "error", "cannot start the signal thread");
        srv_server_close(&srv);
        return 1;
    }
    pthread_detach(tid);
    int rc = srv_server_run(&srv, print_invitations, &demo, &err);
    if (rc < 0)
        srv_log("error", "startup_failed", "{s:s}", "error", err.message);
    srv_server_close(&srv);
    srv_log("info", "exit", "{s:i}", "code", rc < 0 ? 1 : 0);
    return rc < 0 ? 1 : 0;
}
