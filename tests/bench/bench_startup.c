/* bench_startup.c - start-up and memory with a long history (issue 10 item
 * 6). Prints figures; asserts nothing about speed.
 *
 * The data directory is built the way the server would have written it, but
 * straight through the store API (no network): every session is driven
 * through the pure core (joins, consent, the safety check-in, every turn of
 * the enactment exercise, therapist notes, the end, everyone leaving) and its
 * events are encoded exactly as the server encodes them, so --verify folds
 * them. Eight session shapes of 0 to 300 extra therapist notes give logs of a
 * few dozen to a few hundred events; room i takes shape i % 8. Each room is
 * created with srv_admin_create_room_as (its room_created event, seq 1), the
 * rest is appended through the store thread (group commit), and every room
 * is owned by the therapist account `bench`.
 *
 * Then, for each data directory (--sessions N, and --small M for the
 * comparison), it starts the real attune-server and prints:
 *   listen_ms       from fork to the server's `listening` log line
 *   rss_start       the server's VmRSS just after it listens
 *   walk            the data has no cached summaries (like an old
 *                   database): when the server's summaries walk after
 *                   listening has folded them all aside (none kept), rss
 *   list            GET /api/rooms for every room (from the cache), rss
 *   list again      the same, rss
 *   touched         GET /api/rooms/{id} for --touch rooms (each is loaded),
 *                   rss with them in memory, and rss once they have been
 *                   evicted again (--room-evict-s 1)
 *   restart         a second start on the same directory (the cache full)
 *
 * usage: bench_startup --server PATH [--sessions 10000] [--small 1000]
 *          [--touch 100] [--port 18590] [--keep DIR] [--server-arg ARG]...
 *          [--reuse DIR]  (use DIR/big and DIR/small already built)
 *          [--old]  (a server from before this change: no --room-evict-s)
 * --server-arg passes a flag to every server start (e.g. --allow-root when
 * running as root; the old server before this change has no such flag). */
#define _GNU_SOURCE
#include "accounts.h"
#include "admin.h"
#include "attune/catalog.h"
#include "attune/msg.h"
#include "attune/names.h"
#include "attune/room.h"
#include "attune/engine.h"
#include "bench_checkin.h"
#include "clock.h"
#include "store.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef ATTUNE_PROTOCOL_DIR
#define ATTUNE_PROTOCOL_DIR "protocol"
#endif

#define SHAPES 8
#define MAX_SESSION_EVENTS 1024
#define PASSWORD "bench-password-long"

static const int shape_notes[SHAPES] = {0, 10, 30, 60, 100, 150, 220, 300};

static double now_ms(void)
{
    return (double)srv_mono_ns() / 1e6;
}

static void die(const char *what, const att_error *err)
{
    fprintf(stderr, "bench_startup: %s: %s\n", what, err ? err->message : strerror(errno));
    exit(1);
}

/* ---- one session's log, driven through the core ---- */

typedef struct {
    char *payload[MAX_SESSION_EVENTS]; /* seq 2.. (seq 1 is room_created) */
    size_t len[MAX_SESSION_EVENTS];
    const char *type[MAX_SESSION_EVENTS]; /* static names (att_event_type_name) */
    int n;
} session_log;

typedef struct {
    att_room *room;
    const att_script *script;
    session_log *log;
    int64_t clock;
} driver;

static void keep_events(driver *d, att_event *ev, int n)
{
    att_error err = {0};
    for (int i = 0; i < n; i++) {
        if (att_room_apply(d->room, &ev[i], &err) < 0)
            die("apply", &err);
        json_t *obj = att_event_to_json(&ev[i], d->script);
        size_t len = 0;
        char *text = obj ? att_json_dump(obj, &len) : NULL;
        json_decref(obj);
        if (!text || d->log->n == MAX_SESSION_EVENTS)
            die("encode", NULL);
        d->log->payload[d->log->n] = text;
        d->log->type[d->log->n] = att_event_type_name(ev[i].type);
        d->log->len[d->log->n++] = len;
    }
}

static void command(driver *d, att_role role, const char *text)
{
    att_msg m;
    att_error err = {0};
    att_event ev[ATT_MAX_EVENTS_PER_COMMAND];
    int n = 0;
    d->clock += 15000; /* a command every 15 s */
    if (att_msg_decode(text, strlen(text), &m, &err) < 0 ||
        att_engine_decide(d->room, role, &m, d->clock, ev, &n, &err) < 0) {
        fprintf(stderr, "bench_startup: %s: %s\n", text, err.message);
        exit(1);
    }
    keep_events(d, ev, n);
    att_msg_release(&m);
}

static void presence(driver *d, att_role role, int join)
{
    att_event ev[ATT_MAX_EVENTS_PER_COMMAND];
    int n = 0;
    d->clock += 1000;
    int rc = join ? att_engine_decide_join(d->room, role, d->clock, ev, &n)
                  : att_engine_decide_leave(d->room, role, ATT_LEFT_CLOSED, d->clock, ev, &n);
    if (rc == 0)
        keep_events(d, ev, n);
}

/* The check-in answers that hold nothing (bench_checkin.h). */
static char *checkin_text(const att_catalog *cat)
{
    json_t *msg = bench_checkin_msg(cat);
    char *text = json_dumps(msg, JSON_COMPACT);
    json_decref(msg);
    return text;
}

static char *turn_text(const att_room *room, const att_script *s)
{
    const att_step *st = &s->steps[room->step];
    json_t *in = json_object();
    for (size_t i = 0; i < st->n_inputs; i++) {
        const att_input_desc *d = &st->inputs[i];
        if (d->kind == ATT_INPUT_TEXT)
            json_object_set_new(in, d->name,
                                json_string("When you went quiet I felt far away and I started "
                                            "pushing harder to reach you."));
        else if (d->kind == ATT_INPUT_RATING)
            json_object_set_new(in, d->name, json_integer(6));
        else if (d->kind == ATT_INPUT_CHOICE)
            json_object_set_new(in, d->name, json_string(d->options[0].id));
        else
            json_object_set_new(in, d->name,
                                json_pack("{s:s,s:s}", "id", d->vocab->entries[1].id, "text",
                                          "a tight knot in my chest"));
    }
    json_t *msg = json_pack("{s:s,s:s,s:o}", "type", "turn", "step", st->id, "input", in);
    char *text = json_dumps(msg, JSON_COMPACT);
    json_decref(msg);
    return text;
}

static void build_session(const att_catalog *cat, int notes, int64_t t0, session_log *log)
{
    const att_script *s = att_catalog_script(cat, "enactment");
    att_room *room = malloc(sizeof *room);
    att_error err = {0};
    if (!s || !room || att_room_init(room, cat, s, "bench", NULL, &err) < 0)
        die("room init", &err);
    att_event created;
    att_room_created_event(room, t0, ATT_ROLE_PARTNER_A, &created);
    if (att_room_apply(room, &created, &err) < 0)
        die("created", &err);
    driver d = {room, s, log, t0};
    memset(log, 0, sizeof *log);
    presence(&d, ATT_ROLE_THERAPIST, 1);
    presence(&d, ATT_ROLE_PARTNER_A, 1);
    presence(&d, ATT_ROLE_PARTNER_B, 1);
    command(&d, ATT_ROLE_PARTNER_A, "{\"type\":\"consent\",\"accept\":true}");
    command(&d, ATT_ROLE_PARTNER_B, "{\"type\":\"consent\",\"accept\":true}");
    if (room->status == ATT_STATUS_CHECKING_IN) {
        char *ci = checkin_text(cat);
        command(&d, ATT_ROLE_PARTNER_A, ci);
        command(&d, ATT_ROLE_PARTNER_B, ci);
        free(ci);
    }
    int left_notes = notes, guard = 0;
    while (room->status != ATT_STATUS_ENDED && guard++ < 400) {
        if (room->status == ATT_STATUS_PAUSED) {
            command(&d, ATT_ROLE_THERAPIST, "{\"type\":\"control\",\"action\":\"resume\"}");
            continue;
        }
        char *t = turn_text(room, s);
        command(&d, att_room_actor(room), t);
        free(t);
        /* the therapist's notes spread over the session */
        for (int k = 0; k < 1 + notes / 12 && left_notes > 0; k++, left_notes--)
            command(&d, ATT_ROLE_THERAPIST,
                    "{\"type\":\"note\",\"text\":\"A softened when B named the fear\"}");
    }
    while (left_notes-- > 0)
        command(&d, ATT_ROLE_THERAPIST, "{\"type\":\"note\",\"text\":\"after the session\"}");
    if (room->status != ATT_STATUS_ENDED)
        command(&d, ATT_ROLE_THERAPIST, "{\"type\":\"control\",\"action\":\"end\"}");
    presence(&d, ATT_ROLE_PARTNER_A, 0);
    presence(&d, ATT_ROLE_PARTNER_B, 0);
    presence(&d, ATT_ROLE_THERAPIST, 0);
    free(room);
}

/* ---- the data directory ---- */

typedef struct {
    srv_store_batch b;
    int in_use;
} slot;

static void build_dir(const char *dir, int sessions, const att_catalog *cat,
                      session_log shapes[SHAPES])
{
    att_error err = {0};
    srv_keyring *keys = NULL;
    srv_store *store = NULL;
    srv_accounts *acc = NULL;
    mkdir(dir, 0700);
    if (srv_keyring_open(dir, NULL, 1, &keys, &err) < 0 ||
        srv_store_open(dir, keys, &store, &err) < 0 ||
        srv_store_start(store, 2000, NULL, NULL, NULL, &err) < 0)
        die("store", &err);
    if (srv_accounts_open(dir, 1, &acc, &err) < 0 ||
        srv_accounts_add(acc, "bench", PASSWORD, strlen(PASSWORD), &err) < 0)
        die("accounts", &err);
    enum { SLOTS = 4096 };
    slot *slots = calloc(SLOTS, sizeof *slots);
    int free_hint = 0;
    long long events = 0;
    double t0 = now_ms();
    int64_t created_at = 1700000000000;
    for (int i = 0; i < sessions; i++) {
        char id[32];
        snprintf(id, sizeof id, "b-%06d", i);
        if (srv_admin_create_room_as(store, cat, "enactment", ATT_ROLE_PARTNER_A, id,
                                     created_at + (int64_t)i * 3600000, &err) < 0 ||
            srv_accounts_set_owner(acc, id, "bench", &err) < 0)
            die("create room", &err);
        const session_log *log = &shapes[i % SHAPES];
        events += 1 + log->n;
        for (int first = 0; first < log->n; first += SRV_STORE_MAX_BATCH) {
            slot *sl = NULL;
            while (!sl) {
                for (srv_store_batch *b = srv_store_take_completed(store); b;) {
                    srv_store_batch *next = b->next;
                    if (b->result < 0)
                        die("append", &b->error);
                    ((slot *)b->owner)->in_use = 0;
                    b = next;
                }
                for (int k = 0; k < SLOTS && !sl; k++) {
                    int j = (free_hint + k) % SLOTS;
                    if (!slots[j].in_use) {
                        sl = &slots[j];
                        free_hint = j + 1;
                    }
                }
                if (!sl)
                    usleep(1000);
            }
            memset(&sl->b, 0, sizeof sl->b);
            snprintf(sl->b.room_id, sizeof sl->b.room_id, "%s", id);
            sl->b.first_seq = 2 + first;
            sl->b.n = log->n - first < SRV_STORE_MAX_BATCH ? log->n - first : SRV_STORE_MAX_BATCH;
            for (int k = 0; k < sl->b.n; k++) {
                sl->b.payload[k] = log->payload[first + k];
                sl->b.payload_len[k] = log->len[first + k];
                sl->b.type[k] = log->type[first + k];
            }
            sl->b.owner = sl;
            sl->in_use = 1;
            if (srv_store_append(store, &sl->b, &err) < 0)
                die("append", &err);
        }
    }
    srv_store_close(store); /* commits what is queued */
    srv_keyring_close(keys);
    srv_accounts_close(acc);
    free(slots);
    printf("built %s: %d sessions, %lld events, in %.1f s\n", dir, sessions, events,
           (now_ms() - t0) / 1e3);
}

/* ---- the server ---- */

typedef struct {
    pid_t pid;
    int err_fd;
    int port;
    char tail[64];    /* the log's last bytes, for a marker split across reads */
    double t0;        /* when it was started (monotonic ms) */
    double walked_ms; /* when it logged summaries_warm, 0 before */
} server;

static const char *server_bin;
static const char *server_args[16];
static int n_server_args;

static double start_server(server *s, const char *dir, int port)
{
    int fds[2];
    if (pipe(fds) < 0)
        die("pipe", NULL);
    char port_text[16];
    snprintf(port_text, sizeof port_text, "%d", port);
    const char *argv[40] = {server_bin,  "--data", dir,      "--listen",
                            "127.0.0.1", "--port", port_text};
    int argc = 7;
    for (int i = 0; i < n_server_args; i++)
        argv[argc++] = server_args[i];
    argv[argc] = NULL;
    double t0 = now_ms();
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], 2);
        close(fds[0]);
        close(fds[1]);
        execv(server_bin, (char *const *)argv);
        _exit(127);
    }
    close(fds[1]);
    s->pid = pid;
    s->err_fd = fds[0];
    s->port = port;
    s->tail[0] = '\0';
    s->t0 = t0;
    s->walked_ms = 0;
    /* Read the log until `listening`. */
    char buf[65536];
    size_t have = 0;
    for (;;) {
        ssize_t n = read(s->err_fd, buf + have, sizeof buf - 1 - have);
        if (n <= 0) {
            fprintf(stderr, "bench_startup: the server exited before listening: %.*s\n", (int)have,
                    buf);
            exit(1);
        }
        have += (size_t)n;
        buf[have] = '\0';
        if (strstr(buf, "\"event\":\"listening\"") || strstr(buf, "\"event\": \"listening\""))
            break;
        char *nl = strrchr(buf, '\n');
        if (nl && have > sizeof buf / 2) { /* keep the last partial line */
            size_t rest = have - (size_t)(nl + 1 - buf);
            memmove(buf, nl + 1, rest);
            have = rest;
        }
    }
    double t = now_ms() - t0;
    /* Drain the log from now on so the server never blocks on stderr. */
    fcntl(s->err_fd, F_SETFL, O_NONBLOCK);
    return t;
}

/* Reads what the server logged; notes the end of its summaries walk. */
static void drain(server *s)
{
    char buf[65536 + sizeof s->tail];
    size_t keep = strlen(s->tail);
    memcpy(buf, s->tail, keep);
    ssize_t n;
    while ((n = read(s->err_fd, buf + keep, sizeof buf - keep - 1)) > 0) {
        buf[keep + (size_t)n] = '\0';
        if (!s->walked_ms && strstr(buf, "\"summaries_warm\""))
            s->walked_ms = now_ms() - s->t0;
        size_t len = keep + (size_t)n;
        keep = len < sizeof s->tail - 1 ? len : sizeof s->tail - 1;
        memmove(buf, buf + len - keep, keep);
    }
    memcpy(s->tail, buf, keep);
    s->tail[keep] = '\0';
}

static void stop_server(server *s)
{
    kill(s->pid, SIGTERM);
    for (;;) {
        drain(s);
        int st;
        if (waitpid(s->pid, &st, WNOHANG) == s->pid)
            break;
        usleep(10000);
    }
    close(s->err_fd);
}

static long rss_kib(const server *s)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)s->pid);
    FILE *f = fopen(path, "r");
    long kib = -1;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            kib = strtol(line + 6, NULL, 10);
    if (f)
        fclose(f);
    return kib;
}

/* One HTTP/1.1 request (Connection: close); the response body is malloc'd. */
static int http(server *s, const char *method, const char *path, const char *cookie,
                const char *body, char **resp_out)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)s->port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) < 0)
        die("connect", NULL);
    char req[2048];
    int n = snprintf(req, sizeof req,
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n%s%s%s"
                     "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                     method, path, s->port, cookie ? "Cookie: attune_session=" : "",
                     cookie ? cookie : "", cookie ? "\r\n" : "", body ? strlen(body) : 0,
                     body ? body : "");
    if (write(fd, req, (size_t)n) != n)
        die("write", NULL);
    size_t cap = 1 << 16, len = 0;
    char *resp = malloc(cap);
    for (;;) {
        drain(s);
        if (len + 1 >= cap)
            resp = realloc(resp, cap *= 2);
        ssize_t r = read(fd, resp + len, cap - len - 1);
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    close(fd);
    resp[len] = '\0';
    int status = 0;
    sscanf(resp, "HTTP/1.1 %d", &status);
    *resp_out = resp;
    return status;
}

static char *login(server *s)
{
    char *resp = NULL;
    int st = http(s, "POST", "/api/login", NULL,
                  "{\"username\":\"bench\",\"password\":\"" PASSWORD "\"}", &resp);
    char *c = strcasestr(resp, "set-cookie: attune_session=");
    if (st != 200 || !c) {
        fprintf(stderr, "bench_startup: login failed (%d): %.200s\n", st, resp);
        exit(1);
    }
    c += strlen("set-cookie: attune_session=");
    char *cookie = strndup(c, strcspn(c, ";\r\n"));
    free(resp);
    return cookie;
}

static long metric(server *s, const char *name)
{
    char *resp = NULL;
    long v = -1;
    if (http(s, "GET", "/metrics", NULL, NULL, &resp) == 200) {
        char key[128];
        snprintf(key, sizeof key, "\n%s ", name);
        char *p = strstr(resp, key);
        if (p)
            v = strtol(p + strlen(key), NULL, 10);
    }
    free(resp);
    return v;
}

/* Lists every room; returns how many the answer holds (by counting ids). */
static int list_rooms(server *s, const char *cookie, double *ms)
{
    char *resp = NULL;
    double t0 = now_ms();
    int st = http(s, "GET", "/api/rooms", cookie, NULL, &resp);
    *ms = now_ms() - t0;
    int n = 0;
    for (char *p = resp; (p = strstr(p, "\"id\":\"b-")); p++)
        n++;
    if (st != 200)
        fprintf(stderr, "bench_startup: GET /api/rooms: %d\n", st);
    free(resp);
    return n;
}

static void measure(const char *label, const char *dir, int sessions, int touch, int port)
{
    server s;
    double listen_ms = start_server(&s, dir, port);
    usleep(200000);
    long rss0 = rss_kib(&s);
    printf("%s: %d sessions: listen_ms %.0f  rss_start %ld KiB  rooms_in_memory %ld\n", label,
           sessions, listen_ms, rss0, metric(&s, "attune_rooms"));
    /* The summaries walk after listening (the data was written without
     * them, like an old database): wait for it, unless it is an old server. */
    for (int i = 0; i < 6000 && !s.walked_ms && metric(&s, "attune_rooms_evicted_total") >= 0;
         i++) {
        drain(&s);
        usleep(10000);
    }
    if (s.walked_ms)
        printf("%s:   summaries walk done %.0f ms after start: rss %ld KiB, rooms_in_memory "
               "%ld\n",
               label, s.walked_ms, rss_kib(&s), metric(&s, "attune_rooms"));
    char *cookie = login(&s);
    double ms;
    int n = list_rooms(&s, cookie, &ms);
    printf("%s:   list %d rooms in %.0f ms, rss %ld KiB, rooms_in_memory %ld\n", label, n, ms,
           rss_kib(&s), metric(&s, "attune_rooms"));
    n = list_rooms(&s, cookie, &ms);
    printf("%s:   list again %d rooms in %.0f ms, rss %ld KiB\n", label, n, ms, rss_kib(&s));
    double t0 = now_ms();
    for (int i = 0; i < touch; i++) {
        char path[64], *resp = NULL;
        snprintf(path, sizeof path, "/api/rooms/b-%06d", (i * 7919) % sessions);
        if (http(&s, "GET", path, cookie, NULL, &resp) != 200)
            fprintf(stderr, "bench_startup: GET %s failed\n", path);
        free(resp);
    }
    printf("%s:   touched %d rooms (GET /api/rooms/{id}) in %.0f ms: rss %ld KiB, "
           "rooms_in_memory %ld\n",
           label, touch, now_ms() - t0, rss_kib(&s), metric(&s, "attune_rooms"));
    for (int i = 0;
         i < 40 && metric(&s, "attune_rooms_evicted_total") >= 0 && metric(&s, "attune_rooms") > 0;
         i++)
        usleep(100000);
    printf("%s:   after eviction: rss %ld KiB, rooms_in_memory %ld, evicted %ld\n", label,
           rss_kib(&s), metric(&s, "attune_rooms"), metric(&s, "attune_rooms_evicted_total"));
    free(cookie);
    stop_server(&s);
    listen_ms = start_server(&s, dir, port);
    usleep(200000);
    cookie = login(&s);
    n = list_rooms(&s, cookie, &ms);
    printf("%s:   restart: listen_ms %.0f, list %d rooms in %.0f ms, rss %ld KiB\n", label,
           listen_ms, n, ms, rss_kib(&s));
    free(cookie);
    stop_server(&s);
}

int main(int argc, char **argv)
{
    int sessions = 10000, small = 1000, touch = 100, port = 18590;
    const char *keep = NULL, *reuse = NULL;
    int old = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--server") && v)
            server_bin = argv[++i];
        else if (!strcmp(a, "--sessions") && v)
            sessions = atoi(argv[++i]);
        else if (!strcmp(a, "--small") && v)
            small = atoi(argv[++i]);
        else if (!strcmp(a, "--touch") && v)
            touch = atoi(argv[++i]);
        else if (!strcmp(a, "--port") && v)
            port = atoi(argv[++i]);
        else if (!strcmp(a, "--keep") && v)
            keep = argv[++i];
        else if (!strcmp(a, "--reuse") && v)
            reuse = argv[++i];
        else if (!strcmp(a, "--old"))
            old = 1;
        else if (!strcmp(a, "--server-arg") && v && n_server_args < 15)
            server_args[n_server_args++] = argv[++i];
        else {
            fprintf(stderr, "usage: see the comment at the top of bench_startup.c\n");
            return 2;
        }
    }
    if (!server_bin || sessions <= 0 || small <= 0) {
        fprintf(stderr, "bench_startup: --server PATH is required\n");
        return 2;
    }
    if (!old) {
        server_args[n_server_args++] = "--room-evict-s";
        server_args[n_server_args++] = "1";
    }
    signal(SIGPIPE, SIG_IGN);
    char root[512], big[600], little[600];
    if (reuse)
        snprintf(root, sizeof root, "%s", reuse);
    else if (keep)
        snprintf(root, sizeof root, "%s", keep);
    else
        snprintf(root, sizeof root, "/tmp/attune-bench-startup.%d", (int)getpid());
    mkdir(root, 0700);
    snprintf(big, sizeof big, "%s/big", root);
    snprintf(little, sizeof little, "%s/small", root);
    if (!reuse) {
        att_catalog *cat = NULL;
        att_error err = {0};
        if (att_catalog_load_dir(ATTUNE_PROTOCOL_DIR, &cat, &err) < 0)
            die("catalog", &err);
        static session_log shapes[SHAPES];
        for (int k = 0; k < SHAPES; k++) {
            build_session(cat, shape_notes[k], 1700000000000, &shapes[k]);
            printf("session shape %d: %d events\n", k, 1 + shapes[k].n);
        }
        build_dir(little, small, cat, shapes);
        build_dir(big, sessions, cat, shapes);
        att_catalog_free(cat);
    }
    fflush(stdout);
    measure("small", little, small, touch < small ? touch : small, port);
    fflush(stdout);
    measure("big", big, sessions, touch, port + 1);
    if (!keep && !reuse) {
        char cmd[700];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
        if (system(cmd) != 0)
            fprintf(stderr, "bench_startup: could not remove %s\n", root);
    }
    return 0;
}
