/* bench_review.c - the session review benchmark (issue 10 item 5) and the
 * generator of long sessions the review tests read.
 *
 *   bench_review make --data DIR --events N [--rooms K] [--owner NAME]
 *     writes K sessions of N events each into DIR with the store API, the
 *     way the server would: the core decides every event (att_engine_decide,
 *     _join, _leave) from real commands and folds it (att_room_apply), and
 *     the store thread commits them in batches of 16. A session: both
 *     partners and the therapist join, consent, answer the safety check-in,
 *     then take turns with the inputs loadgen uses (bench_script.h), the
 *     therapist writes a note every 13th step, the exercise's turns are
 *     spread evenly over the session and partner B's connection drops and
 *     comes back in between (presence). The exercise's last turn is never
 *     taken (it would end the session early); at the end the
 *     therapist ends the session and everyone leaves (N events, or a few
 *     more). Events are 4 s apart. Prints "room ID EVENTS" for each.
 *
 *   bench_review run --server BIN [--events N] [--reviews R] [--live L]
 *     makes R sessions of N events (default 20,000 and 10) owned by a
 *     therapist added with `attune therapist add`, starts the server on them
 *     plus L live rooms (default 50, each with a therapist connection pinged
 *     10 times a second, one room after the other), and prints:
 *     the time to load one session's whole replay (every page in order,
 *     GET /api/rooms/{id}/log?after=..&limit=1000, each page parsed with
 *     jansson as the browser parses it), the ping round trips of the live
 *     rooms while idle and while R such reviews load at once (p50/p99/max).
 *
 * Single process; run mode uses one thread per review plus the main thread
 * for the pings. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "accounts.h"
#include "admin.h"
#include "attune/catalog.h"
#include "attune/msg.h"
#include "attune/names.h"
#include "attune/room.h"
#include "attune/engine.h"
#include "bench_checkin.h"
#include "bench_latency.h"
#include "bench_proc.h"
#include "bench_script.h"
#include "store.h"
#include "ws_client.h"

#define MAX_ROOMS 64
#define BATCH SRV_STORE_MAX_BATCH

/* ---------------------------------------------------------------- make -- */

typedef struct {
    srv_store *store;
    const att_script *script;
    const bench_script *bs;
    att_room room;
    int64_t now;
    char *pending[BATCH];
    size_t pending_len[BATCH];
    const char *pending_type[BATCH]; /* static names (att_event_type_name) */
    int n_pending;
    int64_t pending_first;
    srv_store_batch **batches; /* every batch appended, freed at the end */
    int n_batches, cap_batches;
    att_error err;
} gen;

static int flush_batch(gen *g)
{
    if (!g->n_pending)
        return 0;
    srv_store_batch *b = calloc(1, sizeof *b);
    if (!b)
        return -1;
    snprintf(b->room_id, sizeof b->room_id, "%s", g->room.room_id);
    b->first_seq = g->pending_first;
    b->n = g->n_pending;
    for (int i = 0; i < g->n_pending; i++) {
        b->payload[i] = g->pending[i];
        b->payload_len[i] = g->pending_len[i];
        b->type[i] = g->pending_type[i];
    }
    if (g->n_batches == g->cap_batches) {
        g->cap_batches = g->cap_batches ? g->cap_batches * 2 : 256;
        g->batches = realloc(g->batches, (size_t)g->cap_batches * sizeof *g->batches);
        if (!g->batches)
            return -1;
    }
    if (srv_store_append(g->store, b, &g->err) < 0) {
        free(b);
        return -1;
    }
    g->batches[g->n_batches++] = b;
    g->n_pending = 0;
    return 0;
}

/* Encodes and folds the events one decision produced. */
static int emit(gen *g, att_event *ev, int n)
{
    for (int i = 0; i < n; i++) {
        json_t *obj = att_event_to_json(&ev[i], g->script);
        size_t len = 0;
        char *text = obj ? att_json_dump(obj, &len) : NULL;
        json_decref(obj);
        if (!text || att_room_apply(&g->room, &ev[i], &g->err) < 0) {
            free(text);
            return -1;
        }
        if (!g->n_pending)
            g->pending_first = ev[i].seq;
        g->pending[g->n_pending] = text;
        g->pending_type[g->n_pending] = att_event_type_name(ev[i].type);
        g->pending_len[g->n_pending++] = len;
        if (g->n_pending == BATCH && flush_batch(g) < 0)
            return -1;
    }
    return 0;
}

/* A command from role as its JSON text: 0 done, 1 refused by the core. */
static int command(gen *g, att_role role, const char *text)
{
    att_msg m;
    att_event ev[ATT_MAX_EVENTS_PER_COMMAND];
    int n = 0;
    att_error err = {0};
    int rc = att_msg_decode(text, strlen(text), &m, &err);
    if (rc == 0)
        rc = att_engine_decide(&g->room, role, &m, g->now, ev, &n, &err);
    if (rc == 0)
        rc = emit(g, ev, n) < 0 ? -2 : 0;
    att_msg_release(&m);
    if (rc == -2)
        return -1;
    return rc < 0 ? 1 : 0;
}

static int presence(gen *g, att_role role, int join)
{
    att_event ev[ATT_MAX_EVENTS_PER_COMMAND];
    int n = 0;
    if (join)
        att_engine_decide_join(&g->room, role, g->now, ev, &n);
    else
        att_engine_decide_leave(&g->room, role, ATT_LEFT_CLOSED, g->now, ev, &n);
    return emit(g, ev, n);
}

/* {"type":"checkin","answers":{question: first clear option}} */
static char *checkin_text(const att_catalog *cat)
{
    json_t *cmd = bench_checkin_msg(cat);
    char *text = cmd ? att_json_dump(cmd, NULL) : NULL;
    json_decref(cmd);
    return text;
}

static int make_session(gen *g, const att_catalog *cat, const char *checkin, int64_t events)
{
    const att_role partners[2] = {ATT_ROLE_PARTNER_A, ATT_ROLE_PARTNER_B};
    att_role all[3] = {ATT_ROLE_PARTNER_A, ATT_ROLE_PARTNER_B, ATT_ROLE_THERAPIST};
    for (int i = 0; i < 3; i++)
        if (presence(g, all[i], 1) < 0)
            return -1;
    for (int i = 0; i < 2; i++)
        if (command(g, partners[i], "{\"type\":\"consent\",\"accept\":true}") < 0)
            return -1;
    for (int i = 0; i < 2 && g->room.status == ATT_STATUS_CHECKING_IN; i++)
        if (command(g, partners[i], checkin) < 0)
            return -1;
    int turns_done = 0, refused = 0;
    /* The exercise's turns spread over the whole session, as a long one
     * would have them between its notes and reconnects. */
    int64_t turn_every = events / (int64_t)(g->script->rounds * (int)g->script->n_steps + 2);
    if (turn_every < 1)
        turn_every = 1;
    /* Room for everyone present to leave at the end, as a session ends. */
    for (int64_t k = 1;
         g->room.seq + 1 + g->room.present[0] + g->room.present[1] + g->room.present[2] < events;
         k++) {
        g->now += 4000;
        int rc = 0;
        if (k % 13 == 0) {
            char note[160];
            snprintf(note, sizeof note,
                     "{\"type\":\"note\",\"text\":\"Note %lld: B softened when A named the "
                     "fear; come back to it next time.\"}",
                     (long long)k);
            rc = command(g, ATT_ROLE_THERAPIST, note);
        } else if (k % turn_every != 0 && (k % 5 == 0 || turn_every > 1)) {
            rc = presence(g, ATT_ROLE_PARTNER_B, !g->room.present[1]);
        } else if (!turns_done && g->room.status == ATT_STATUS_ACTIVE) {
            att_role actor = att_room_actor(&g->room);
            if (g->room.round == g->script->rounds - 1 &&
                (size_t)g->room.step == g->script->n_steps - 1) {
                turns_done = 1; /* the next turn would end the session */
                continue;
            }
            if (actor == ATT_ROLE_NONE || (actor == ATT_ROLE_PARTNER_B && !g->room.present[1])) {
                rc = presence(g, ATT_ROLE_PARTNER_B, 1); /* B comes back for the turn */
                if (rc < 0)
                    return -1;
                actor = att_room_actor(&g->room);
                if (actor == ATT_ROLE_NONE)
                    continue;
            }
            const bench_step *st = &g->bs->steps[g->room.step];
            char *text = NULL;
            if (asprintf(&text, "{\"type\":\"turn\",\"step\":\"%s\",\"input\":%s}", st->id,
                         st->input) < 0)
                return -1;
            rc = command(g, actor, text);
            free(text);
        } else if (!g->room.present[1]) {
            rc = presence(g, ATT_ROLE_PARTNER_B, 1);
        } else {
            rc = presence(g, ATT_ROLE_PARTNER_B, 0);
        }
        if (rc < 0)
            return -1;
        if (rc > 0 && ++refused > 1000) {
            fprintf(stderr, "make: the core refused 1000 commands\n");
            return -1;
        }
    }
    (void)cat;
    /* The therapist ends the session (an ended room raises nothing more when
     * the server loads it), then everyone leaves. */
    g->now += 4000;
    if (command(g, ATT_ROLE_THERAPIST, "{\"type\":\"control\",\"action\":\"end\"}") != 0)
        return -1;
    for (int i = 0; i < 3; i++) {
        g->now += 4000;
        if (g->room.present[i] && presence(g, all[i], 0) < 0)
            return -1;
    }
    return flush_batch(g);
}

static int wait_batches(gen *g)
{
    int done = 0, failed = 0;
    while (done < g->n_batches) {
        srv_store_batch *b = srv_store_take_completed(g->store);
        if (!b) {
            usleep(1000);
            continue;
        }
        while (b) {
            srv_store_batch *next = b->next;
            if (b->result < 0 && !failed++)
                fprintf(stderr, "make: a batch failed: %s\n", b->error.message);
            for (int i = 0; i < b->n; i++)
                free((char *)b->payload[i]);
            free(b);
            done++;
            b = next;
        }
    }
    free(g->batches);
    g->batches = NULL;
    g->n_batches = g->cap_batches = 0;
    return failed ? -1 : 0;
}

/* Writes n_rooms sessions of `events` events into dir; ids_out gets their ids. */
static int make_sessions(const char *dir, int n_rooms, int64_t events, const char *owner,
                         char ids_out[][ATT_ROOM_ID_BYTES + 1], int64_t *seqs_out)
{
    att_error err = {0};
    att_catalog *cat = NULL;
    srv_keyring *keys = NULL;
    srv_store *store = NULL;
    srv_accounts *accounts = NULL;
    bench_scripts scripts = {0};
    gen *g = calloc(1, sizeof *g);
    char *checkin = NULL;
    int rc = g ? 0 : -1;
    if (rc == 0 && (att_catalog_load_dir(ATTUNE_PROTOCOL_DIR, &cat, &err) < 0 ||
                    srv_keyring_open(dir, NULL, 1, &keys, &err) < 0 ||
                    srv_store_open(dir, keys, &store, &err) < 0 ||
                    srv_store_start(store, 0, NULL, NULL, NULL, &err) < 0 ||
                    (owner && srv_accounts_open(dir, 1, &accounts, &err) < 0)))
        rc = -1;
    const att_script *script = rc == 0 ? att_catalog_script(cat, "enactment") : NULL;
    if (rc == 0 && !script) {
        att_fail(&err, ATT_ERR_INTERNAL, "no enactment exercise");
        rc = -1;
    }
    if (rc == 0) {
        char *ex = att_json_dump(script->json, NULL);
        json_t *vj = att_catalog_vocab_json(cat);
        char *vocab = att_json_dump(vj, NULL);
        char why[160] = "";
        if (!ex || !vocab ||
            bench_script_add(&scripts, ex, strlen(ex), vocab, strlen(vocab), &g->bs, why,
                             sizeof why) < 0) {
            att_fail(&err, ATT_ERR_INTERNAL, "bench script: %s", why);
            rc = -1;
        }
        free(ex);
        free(vocab);
        checkin = rc == 0 ? checkin_text(cat) : NULL;
        if (rc == 0 && !checkin)
            rc = -1;
    }
    for (int r = 0; rc == 0 && r < n_rooms; r++) {
        char *id = ids_out[r];
        att_room_config rcfg = {.silence_ms = ATT_DEFAULT_SILENCE_MS,
                                .disconnect_grace_ms = ATT_DEFAULT_DISCONNECT_GRACE_MS};
        g->store = store;
        g->script = script;
        g->now = 1767225600000LL + (int64_t)r * 86400000LL; /* 2026-01-01, a day apart */
        snprintf(id, ATT_ROOM_ID_BYTES + 1, "r-long%02d-%06x", r,
                 (unsigned)(srv_mono_ns() / 1000) & 0xffffffu);
        if (srv_admin_create_room_as(store, cat, "enactment", ATT_ROLE_PARTNER_A, id, g->now,
                                     &err) < 0 ||
            att_room_init(&g->room, cat, script, id, &rcfg, &err) < 0) {
            rc = -1;
            break;
        }
        /* The room_created event the store holds, folded like recovery. */
        att_event created;
        att_room_created_event(&g->room, g->now, ATT_ROLE_PARTNER_A, &created);
        created.seq = 1;
        if (att_room_apply(&g->room, &created, &err) < 0 ||
            make_session(g, cat, checkin, events) < 0 || wait_batches(g) < 0 ||
            (accounts && srv_accounts_set_owner(accounts, id, owner, &err) < 0)) {
            if (!err.message[0])
                snprintf(err.message, sizeof err.message, "%s", g->err.message);
            rc = -1;
            break;
        }
        seqs_out[r] = g->room.seq;
    }
    if (rc < 0)
        fprintf(stderr, "make: %s\n", err.message[0] ? err.message : "out of memory");
    free(checkin);
    bench_scripts_free(&scripts);
    srv_accounts_close(accounts);
    srv_store_close(store);
    srv_keyring_close(keys);
    att_catalog_free(cat);
    free(g);
    return rc;
}

/* ----------------------------------------------------------------- http -- */

static int tcp_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

typedef struct {
    int status;
    char cookie[160];
    int retry_after;
    char *body;
    size_t body_len;
} http_res;

/* One request on a kept-alive connection (*fd, reconnected when -1). */
static int http_do(int port, int *fd, const char *method, const char *path, const char *cookie,
                   const char *json, http_res *res)
{
    memset(res, 0, sizeof *res);
    if (*fd < 0 && (*fd = tcp_connect(port)) < 0)
        return -1;
    char head[1024];
    int n =
        snprintf(head, sizeof head, "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n%s%s%s%s%s\r\n",
                 method, path, port, cookie ? "Cookie: attune_session=" : "", cookie ? cookie : "",
                 cookie ? "\r\n" : "", json ? "Content-Type: application/json\r\n" : "", "");
    if (json)
        n += snprintf(head + n - 2, sizeof head - (size_t)n + 2, "Content-Length: %zu\r\n\r\n%s",
                      strlen(json), json) -
             2;
    if (write(*fd, head, (size_t)n) != n)
        return -1;
    size_t cap = 65536, len = 0;
    char *buf = malloc(cap);
    char *hend = NULL;
    while (buf && !(hend = memmem(buf, len, "\r\n\r\n", 4))) {
        if (len == cap && !(buf = realloc(buf, cap *= 2)))
            return -1;
        ssize_t r = read(*fd, buf + len, cap - len);
        if (r <= 0) {
            free(buf);
            return -1;
        }
        len += (size_t)r;
    }
    if (!buf)
        return -1;
    *hend = '\0';
    res->status = atoi(buf + 9);
    size_t clen = 0;
    for (char *line = strstr(buf, "\r\n"); line; line = strstr(line + 2, "\r\n")) {
        char *l = line + 2;
        if (strncasecmp(l, "content-length:", 15) == 0)
            clen = (size_t)strtoull(l + 15, NULL, 10);
        else if (strncasecmp(l, "retry-after:", 12) == 0)
            res->retry_after = atoi(l + 12);
        else if (strncasecmp(l, "set-cookie: attune_session=", 27) == 0) {
            size_t k = strcspn(l + 27, ";\r");
            if (k < sizeof res->cookie) {
                memcpy(res->cookie, l + 27, k);
                res->cookie[k] = '\0';
            }
        }
    }
    size_t have = len - (size_t)(hend + 4 - buf);
    char *body = malloc(clen + 1);
    if (!body) {
        free(buf);
        return -1;
    }
    memcpy(body, hend + 4, have < clen ? have : clen);
    while (have < clen) {
        ssize_t r = read(*fd, body + have, clen - have);
        if (r <= 0) {
            free(buf);
            free(body);
            return -1;
        }
        have += (size_t)r;
    }
    body[clen] = '\0';
    free(buf);
    res->body = body;
    res->body_len = clen;
    return 0;
}

/* Loads every page of a room's log in order as the browser does; returns the
 * events seen, or -1. */
static int64_t load_replay(int port, const char *cookie, const char *room, int *pages_out)
{
    int fd = -1;
    int64_t after = 0, upto = -1, events = 0;
    int pages = 0;
    for (;;) {
        char path[256];
        if (upto < 0)
            snprintf(path, sizeof path, "/api/rooms/%s/log?after=0&limit=1000", room);
        else
            snprintf(path, sizeof path, "/api/rooms/%s/log?after=%lld&upto=%lld&limit=1000", room,
                     (long long)after, (long long)upto);
        http_res res;
        if (http_do(port, &fd, "GET", path, cookie, NULL, &res) < 0) {
            fprintf(stderr, "review: request failed\n");
            return -1;
        }
        if (res.status == 503) { /* the worker's queue is full: as the page would, wait */
            free(res.body);
            usleep(20000);
            continue;
        }
        json_error_t jerr;
        json_t *page = res.status == 200 ? json_loadb(res.body, res.body_len, 0, &jerr) : NULL;
        if (!page) {
            fprintf(stderr, "review: page status %d: %.200s\n", res.status,
                    res.body ? res.body : "");
            free(res.body);
            return -1;
        }
        free(res.body);
        pages++;
        events += (int64_t)json_array_size(json_object_get(page, "events"));
        after = json_integer_value(json_object_get(page, "next_after"));
        upto = json_integer_value(json_object_get(page, "upto"));
        int more = json_is_true(json_object_get(page, "more"));
        int hashed = json_is_string(json_object_get(page, "state_hash"));
        json_decref(page);
        if (!more) {
            if (!hashed)
                return -1;
            break;
        }
    }
    close(fd);
    if (pages_out)
        *pages_out = pages;
    return events;
}

/* ------------------------------------------------------------------ run -- */

typedef struct {
    int port;
    const char *cookie;
    const char *room;
    int64_t events;
    int64_t ns;
} review_arg;

static void *review_thread(void *p)
{
    review_arg *a = p;
    /* The browsers are not on the server's machine: here their parsing
     * yields to the server and to the pings being measured. */
    (void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 15);
    int64_t t0 = srv_mono_ns();
    a->events = load_replay(a->port, a->cookie, a->room, NULL);
    a->ns = srv_mono_ns() - t0;
    return NULL;
}

typedef struct {
    ws_client ws;
    char want[32];
    int got;
} pinger;

static int on_msg(void *arg, const char *text, size_t len)
{
    pinger *p = arg;
    if (p->want[0] && memmem(text, len, p->want, strlen(p->want))) {
        if (memmem(text, len, "\"type\":\"ack\"", 12))
            p->got = 1;
        else if (memmem(text, len, "\"type\":\"error\"", 14))
            fprintf(stderr, "ping: error reply: %.*s\n", (int)(len > 300 ? 300 : len), text);
    }
    return 0;
}

/* Sends text and waits (up to 5 s) for an ack carrying `"id":"ID"`. */
static int request_ack(pinger *p, const char *text, const char *id)
{
    snprintf(p->want, sizeof p->want, "\"id\":\"%s\"", id);
    p->got = 0;
    if (text &&
        (ws_client_send_text(&p->ws, text, strlen(text)) < 0 || ws_client_flush(&p->ws) < 0))
        return -1;
    static unsigned char scratch[1 << 16];
    int64_t deadline = srv_mono_ns() + 5000000000LL;
    while (!p->got) {
        struct pollfd pf = {.fd = p->ws.fd, .events = POLLIN};
        if (srv_mono_ns() > deadline || poll(&pf, 1, 100) < 0)
            return -1;
        if ((pf.revents & POLLIN) &&
            ws_client_read(&p->ws, scratch, sizeof scratch, on_msg, p) != 0)
            return -1;
        if (ws_client_flush(&p->ws) < 0)
            return -1;
    }
    return 0;
}

static int pinger_open(pinger *p, int port, const char *token)
{
    int fd = tcp_connect(port);
    if (fd < 0)
        return -1;
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    char host[32];
    snprintf(host, sizeof host, "127.0.0.1:%d", port);
    if (ws_client_start(&p->ws, fd, host, "/ws", "attune.v1", NULL, (uint64_t)fd * 7919u) < 0 ||
        ws_client_flush(&p->ws) < 0)
        return -1;
    char hello[1024];
    snprintf(hello, sizeof hello, "{\"type\":\"hello\",\"id\":\"h\",\"token\":\"%s\"}", token);
    /* The handshake first: read until open, then hello. */
    static unsigned char scratch[1 << 16];
    int64_t deadline = srv_mono_ns() + 5000000000LL;
    while (p->ws.state == WS_HANDSHAKE) {
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        if (srv_mono_ns() > deadline || poll(&pf, 1, 100) < 0)
            return -1;
        if ((pf.revents & POLLIN) &&
            ws_client_read(&p->ws, scratch, sizeof scratch, on_msg, p) != 0)
            return -1;
    }
    return request_ack(p, hello, "h");
}

/* Pings every live room in turn for `ms` milliseconds (or until *stop). */
static int ping_for(pinger *ps, int n, int64_t ms, volatile int *stop, bench_latency *lat)
{
    static uint64_t next_id;
    int64_t end = srv_mono_ns() + ms * 1000000LL;
    while (srv_mono_ns() < end && !(stop && *stop)) {
        for (int i = 0; i < n; i++) {
            char id[24], text[64];
            snprintf(id, sizeof id, "p%llu", (unsigned long long)++next_id);
            snprintf(text, sizeof text, "{\"type\":\"ping\",\"id\":\"%s\"}", id);
            int64_t t0 = srv_mono_ns();
            if (request_ack(&ps[i], text, id) < 0) {
                fprintf(stderr, "ping: live room %d: no ack (%s)\n", i,
                        ps[i].ws.error[0] ? ps[i].ws.error : "timeout");
                return -1;
            }
            bench_latency_add(lat, srv_mono_ns() - t0);
            /* Each room pinged 10 times a second, spread evenly: half the
             * server's per-connection message rate (--rate 20). */
            usleep((useconds_t)(100000 / n));
        }
    }
    return 0;
}

static void print_lat(const char *what, bench_latency *l)
{
    printf("%s: %zu pings, p50 %.2f ms, p99 %.2f ms, max %.2f ms\n", what, l->n,
           (double)bench_latency_quantile(l, 0.5) / 1e6,
           (double)bench_latency_quantile(l, 0.99) / 1e6, (double)bench_latency_max(l) / 1e6);
}

static int run_cmd(char *const argv[], const char *input, char *out, size_t out_size)
{
    int in[2], outp[2];
    if (pipe(in) < 0 || pipe(outp) < 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(in[0], 0);
        if (out)
            dup2(outp[1], 1);
        else
            dup2(open("/dev/null", O_WRONLY), 1);
        close(in[1]);
        close(outp[0]);
        execv(argv[0], argv);
        _exit(127);
    }
    close(in[0]);
    close(outp[1]);
    if (input && write(in[1], input, strlen(input)) < 0) {
        /* the child reads what it needs */
    }
    close(in[1]);
    size_t len = 0;
    ssize_t r;
    while (out && len + 1 < out_size && (r = read(outp[0], out + len, out_size - len - 1)) > 0)
        len += (size_t)r;
    if (out)
        out[len] = '\0';
    close(outp[0]);
    int st;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

static int run(const char *server, const char *cli, int64_t events, int reviews, int live)
{
    char dir[] = "/tmp/attune-bench-review-XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    printf("data directory %s (removed at the end unless KEEP_DATA=1)\n", dir);
    char *add[] = {(char *)cli, "therapist", "add", "bench", "--data", dir, NULL};
    if (run_cmd(add, "bench-review-password\n", NULL, 0) < 0) {
        fprintf(stderr, "run: attune therapist add failed (%s)\n", cli);
        return 1;
    }
    static char ids[MAX_ROOMS][ATT_ROOM_ID_BYTES + 1];
    static int64_t seqs[MAX_ROOMS];
    int64_t t0 = srv_mono_ns();
    if (make_sessions(dir, reviews, events, "bench", ids, seqs) < 0)
        return 1;
    events = seqs[0]; /* the sessions end with everyone leaving: a few more */
    printf("made %d sessions of %lld events in %.1f s\n", reviews, (long long)events,
           (double)(srv_mono_ns() - t0) / 1e9);
    static char tokens[MAX_ROOMS][512];
    for (int i = 0; i < live; i++) {
        char out[4096];
        char *create[] = {(char *)server, "--create-room", "enactment", "--data", dir, NULL};
        if (run_cmd(create, NULL, out, sizeof out) < 0)
            return 1;
        char *t = strstr(out, "invite therapist ");
        char *tok = t ? strstr(t, "#token=") : NULL;
        if (!tok)
            return 1;
        size_t k = strcspn(tok + 7, "\n");
        memcpy(tokens[i], tok + 7, k);
        tokens[i][k] = '\0';
    }
    int port = 20000 + (int)(getpid() % 20000);
    char port_s[16];
    snprintf(port_s, sizeof port_s, "%d", port);
    pid_t pid = fork();
    if (pid == 0) {
        char log_path[4096];
        snprintf(log_path, sizeof log_path, "%s.server.log", dir);
        int log_fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        dup2(log_fd, 1);
        dup2(log_fd, 2);
        execl(server, server, "--data", dir, "--listen", "127.0.0.1", "--port", port_s,
              (char *)NULL);
        _exit(127);
    }
    int fd = -1;
    for (int i = 0; i < 300 && (fd = tcp_connect(port)) < 0; i++)
        usleep(20000);
    if (fd < 0) {
        fprintf(stderr, "run: the server did not start\n");
        kill(pid, SIGTERM);
        return 1;
    }
    http_res res;
    if (http_do(port, &fd, "POST", "/api/login", NULL,
                "{\"username\":\"bench\",\"password\":\"bench-review-password\"}", &res) < 0 ||
        res.status != 200) {
        fprintf(stderr, "run: login failed (%d; see %s.server.log)\n", res.status, dir);
        kill(pid, SIGTERM);
        return 1;
    }
    free(res.body);
    close(fd);
    char cookie[160];
    snprintf(cookie, sizeof cookie, "%s", res.cookie);

    int rc = 0;
    /* 1. One session's whole replay, cold (nothing cached), then again. */
    for (int pass = 0; pass < 2; pass++) {
        int pages = 0;
        int64_t s0 = srv_mono_ns();
        int64_t got = load_replay(port, cookie, ids[pass], &pages);
        double s = (double)(srv_mono_ns() - s0) / 1e9;
        printf("replay load of a %lld-event session (%d pages of <= 1000, parsed): %.3f s%s\n",
               (long long)got, pages, s, got == events ? "" : "  (EVENT COUNT WRONG)");
        if (got != events)
            rc = 1;
    }
    /* 2. Other rooms' pings, idle and under R reviews at once. */
    pinger *ps = calloc((size_t)live, sizeof *ps);
    for (int i = 0; i < live; i++)
        if (!ps || pinger_open(&ps[i], port, tokens[i]) < 0) {
            fprintf(stderr, "run: live room %d did not open\n", i);
            kill(pid, SIGTERM);
            return 1;
        }
    bench_latency idle = {0}, busy = {0};
    if (ping_for(ps, live, 2000, NULL, &idle) < 0)
        rc = 1;
    print_lat("live rooms, no review loading", &idle);
    review_arg args[MAX_ROOMS];
    pthread_t th[MAX_ROOMS];
    int64_t cpu0 = 0;
    bench_proc_cpu_ns(pid, &cpu0);
    int64_t w0 = srv_mono_ns();
    for (int i = 0; i < reviews; i++) {
        args[i] = (review_arg){.port = port, .cookie = cookie, .room = ids[i]};
        pthread_create(&th[i], NULL, review_thread, &args[i]);
    }
    /* Ping until every review has loaded. */
    for (int done = 0; !done && rc == 0;) {
        if (ping_for(ps, live, 100, NULL, &busy) < 0)
            rc = 1;
        done = 1;
        for (int i = 0; i < reviews; i++)
            done &= args[i].ns != 0;
    }
    for (int i = 0; i < reviews; i++)
        pthread_join(th[i], NULL);
    double wall = (double)(srv_mono_ns() - w0) / 1e9;
    int64_t cpu1 = 0;
    bench_proc_cpu_ns(pid, &cpu1);
    double slowest = 0;
    for (int i = 0; i < reviews; i++) {
        if (args[i].events != seqs[i])
            rc = 1;
        if ((double)args[i].ns / 1e9 > slowest)
            slowest = (double)args[i].ns / 1e9;
    }
    printf("%d replays loading at once: all loaded in %.2f s (slowest %.2f s), server CPU %.2f s\n",
           reviews, wall, slowest, (double)(cpu1 - cpu0) / 1e9);
    print_lat("live rooms while they load", &busy);
    int64_t rss = 0;
    bench_proc_rss_kib(pid, &rss);
    printf("server RSS after the reviews: %lld MiB\n", (long long)rss / 1024);
    for (int i = 0; i < live; i++)
        ws_client_free(&ps[i].ws);
    free(ps);
    bench_latency_free(&idle);
    bench_latency_free(&busy);
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    /* KEEP_DATA=1 (run-bench.sh's switch) keeps the data directory. */
    if (!getenv("KEEP_DATA") || strcmp(getenv("KEEP_DATA"), "1") != 0) {
        char log_path[4096];
        snprintf(log_path, sizeof log_path, "%s.server.log", dir);
        char *rm[] = {"/bin/rm", "-rf", dir, log_path, NULL};
        (void)run_cmd(rm, NULL, NULL, 0);
    }
    return rc;
}

static void usage(void)
{
    fprintf(stderr, "usage: bench_review make --data DIR --events N [--rooms K] [--owner NAME]\n"
                    "       bench_review run --server BIN [--cli BIN] [--events N] [--reviews R] "
                    "[--live L]\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage();
        return 2;
    }
    const char *dir = NULL, *owner = NULL, *server = NULL, *cli = NULL;
    int64_t events = 20000;
    int rooms = 1, reviews = 10, live = 50;
    for (int i = 2; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (!strcmp(k, "--data"))
            dir = v;
        else if (!strcmp(k, "--owner"))
            owner = v;
        else if (!strcmp(k, "--events"))
            events = atoll(v);
        else if (!strcmp(k, "--rooms"))
            rooms = atoi(v);
        else if (!strcmp(k, "--server"))
            server = v;
        else if (!strcmp(k, "--cli"))
            cli = v;
        else if (!strcmp(k, "--reviews"))
            reviews = atoi(v);
        else if (!strcmp(k, "--live"))
            live = atoi(v);
        else {
            usage();
            return 2;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    /* attune-server and attune refuse root unless told (CI runs as root). */
    if (getuid() == 0)
        setenv("ATTUNE_ALLOW_ROOT", "1", 0);
    if (rooms < 1 || rooms > MAX_ROOMS || reviews < 1 || reviews > MAX_ROOMS || live < 1 ||
        live > MAX_ROOMS || events < 20) {
        usage();
        return 2;
    }
    if (!strcmp(argv[1], "make") && dir) {
        static char ids[MAX_ROOMS][ATT_ROOM_ID_BYTES + 1];
        static int64_t seqs[MAX_ROOMS];
        if (make_sessions(dir, rooms, events, owner, ids, seqs) < 0)
            return 1;
        for (int i = 0; i < rooms; i++)
            printf("room %s %lld\n", ids[i], (long long)seqs[i]);
        fflush(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "run") && server) {
        char cli_buf[4096];
        if (!cli) {
            snprintf(cli_buf, sizeof cli_buf, "%s", server);
            char *slash = strrchr(cli_buf, '/');
            if (slash)
                snprintf(slash, sizeof cli_buf - (size_t)(slash - cli_buf), "/../client/attune");
            cli = cli_buf;
        }
        return run(server, cli, events, reviews, live);
    }
    usage();
    return 2;
}
