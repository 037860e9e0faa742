/* loadgen.c - Attune's own WebSocket load generator.
 *
 * Opens rooms of three real WebSocket clients (partner_a, partner_b,
 * therapist) against a running attune-server, each client speaking RFC 6455
 * through ws_client and the Attune protocol through this file, all on one
 * thread and one epoll set, and prints figures:
 *   idle    N connections in N/3 rooms, authenticated and idle: server RSS
 *           before and after, and per connection;
 *   closed  every client keeps W commands in flight: durably committed
 *           commands (acks that carry a seq) and events per second;
 *   open    a fixed total rate of commands spread over every client, each
 *           scheduled at an intended send time; latency from that intended
 *           time to its delivery at both other members of the room (so a late
 *           sender shows up as latency): p50, p99, p99.9, max.
 * Every mode prints the server's CPU (from /proc/PID/stat, with --server-pid)
 * and the generator's own CPU (getrusage), so a saturated generator shows.
 *
 * Several nodes (issue 13): --ports P1,P2,... connects room i's members to
 * the i mod N-th port (all three to the same node, so the room's first
 * hello makes that node its holder); --room-in-url puts ?room=ID in the
 * WebSocket URL (a proxy routing by room, deploy/nginx/attune-cluster.conf);
 * --server-pid may be given once per node (CPU summed) and --db-pid once per
 * database process (PostgreSQL's backends, shown apart).
 *
 * Protocol 2: every member's wire numbers the events it may see 1, 2, 3...
 * (its own audience), so the three members of a room see the same event
 * under different seqs. What they all see alike is the order of the events
 * every audience receives (turns, controls, repair attempts, presence...):
 * each member counts those ("common" events), and the n-th common event is
 * the same event on all three wires. Delivery latency matches a command to
 * its event by that count, and the freshest state is the one that has seen
 * the most common events. The therapist's seq is the room's log seq. A
 * room created for protocol 2 asks the safety check-in after both consents:
 * each partner answers it (the first option no question holds the session
 * on) before the room is active.
 *
 * Invitation tokens come from a file (--tokens): any lines holding tokens,
 * bare or in invitation URLs after "#token=", e.g. the `invite ROLE URL`
 * lines that attune-server --demo and `attune room create` print. Each
 * token's room and role are read from its (signed, not secret) payload.
 *
 * Ownership: main owns the generator (gen), which owns the rooms, their
 * members (each owning its ws_client and fd), the script cache and the
 * latency samples. Single-threaded. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <openssl/ssl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bench_latency.h"
#include "bench_proc.h"
#include "bench_script.h"
#include "json_scan.h"
#include "token.h"
#include "attune/names.h"
#include "ws_client.h"

#define NS_PER_S 1000000000LL
#define NS_PER_MS 1000000LL
#define ROLES ATT_N_SEATS /* the members it connects: the three seats */
#define MAX_ERROR_CODES 32
#define MAX_FAILURE_KINDS 8
/* Arrival times kept per member for the open loop (common events back from
 * the newest); a room records a few events a second, so this spans seconds. */
#define ARRIVAL_RING 128
#define PENDING_PER_ROOM 32
#define READ_SCRATCH (256 * 1024)
#define MAX_NODES 16
#define MAX_DB_PIDS 64

typedef enum { MODE_IDLE, MODE_CLOSED, MODE_OPEN } run_mode;

typedef enum {
    CMD_HELLO,
    CMD_CONSENT,
    CMD_CHECKIN,
    CMD_TURN,
    CMD_REPAIR,
    CMD_NOTE,
    CMD_BACK,
    CMD_SWAP,
    CMD_KINDS
} cmd_kind;

static const char *const CMD_NAMES[CMD_KINDS] = {"hello",          "consent", "checkin", "turn",
                                                 "repair_attempt", "note",    "back",    "swap"};

typedef enum {
    M_UNSTARTED,
    M_CONNECTING,
    M_HANDSHAKE,
    M_HELLO,
    M_READY,
    M_CLOSING,
    M_DONE
} m_state;

typedef enum { ST_UNKNOWN, ST_WAITING, ST_CHECKING_IN, ST_ACTIVE, ST_PAUSED, ST_ENDED } room_status;

typedef struct {
    uint64_t id;
    cmd_kind kind;
    int64_t intended_ns; /* open loop: when it should have been sent */
    int64_t sent_ns;
} pending_cmd;

typedef struct room room;
typedef struct gen gen;

typedef struct {
    ws_client ws;
    gen *gen; /* the generator, for the message callback */
    room *room;
    int role; /* an att_role, one of the seats */
    m_state state;
    int watching_out; /* EPOLLOUT is in the interest set */
    uint64_t next_id;
    pending_cmd *fifo; /* replies come in send order, so a ring suffices */
    int fifo_head, fifo_count, fifo_cap;
    int64_t seen_seq; /* highest seq this member has learned of (its own audience's) */
    int64_t common;   /* common events received (see the top of the file) */
    int checkin_sent; /* a partner's safety check-in answers */
    /* why the message callback stopped the connection (the callback must
     * not free the ws_client it is being called from) */
    char doom[96];
    char bye[24]; /* the server's bye reason, if any */
} member;

typedef struct {
    int64_t common, at_ns; /* when a member received its common-th common event */
} arrival;

typedef struct {
    int64_t seq, common; /* a member's seq and its count of common events then */
} seq_common;

typedef struct {
    int64_t sender_seq; /* the ack's seq, in the sender's audience */
    int64_t common;     /* the event as a common count; 0 until the sender has seen it */
    int64_t intended_ns;
    int sender;
} pending_delivery;

struct room {
    char id[65];
    char *token[ROLES];
    member m[ROLES];
    const bench_script *script;
    /* the freshest state any member has received: the one after the most
     * common events (states after the same number differ only in what some
     * member may not see) */
    int64_t view_common;
    room_status status;
    int round, step_index, actor; /* actor: role index or -1 */
    /* one step-changing command (turn, back) at a time per room, and none
     * until the sender has the state after it (its ack's seq, in the
     * sender's audience) */
    int steer_busy;
    int steer_member;
    int64_t steer_after_seq, steer_after_common; /* INT64_MAX: not yet seen */
    /* open loop: when each member received each common event, each
     * member's seqs as common counts, and commands whose delivery to both
     * other members is still awaited */
    arrival *arrivals; /* [ROLES][ARRIVAL_RING] */
    seq_common *own;   /* [ROLES][ARRIVAL_RING] */
    pending_delivery pend[PENDING_PER_ROOM];
    int n_pend;
    int64_t seq_at_start; /* the therapist's seq (the room log's) */
};

typedef struct {
    uint64_t sent[CMD_KINDS], committed[CMD_KINDS];
    uint64_t acks_with_seq, acks_without_seq, errors, events_in, states_in, byes;
    uint64_t messages_in, bytes_in;
    uint64_t fifo_mismatch, open_skipped, lost_deliveries;
} counters;

typedef struct {
    char code[32];
    uint64_t count;
} code_count;

struct gen {
    /* options */
    run_mode mode;
    const char *host;
    int port;
    int ports[MAX_NODES]; /* --ports: room i on ports[i % n_ports]; else {port} */
    int n_ports;
    int room_in_url; /* /ws?room=ID */
    const char *bind_ip;
    int per_source;      /* connections per source address, then the next (0: one) */
    int sources_used;    /* source addresses bound so far */
    int bound_on_source; /* connections on the current one */
    struct in_addr next_source;
    const char *origin;
    SSL_CTX *tls; /* --tls: every connection over TLS; NULL: plain */
    const char *tokens_path;
    int rooms_wanted, room_offset, connections_wanted;
    int window;
    double rate, duration_s, warmup_s, settle_s, setup_timeout_s;
    int connect_parallel;
    pid_t server_pid[MAX_NODES]; /* CPU summed over them; threads shown for one */
    int n_server_pids;
    pid_t db_pid[MAX_DB_PIDS];
    int n_db_pids;
    int verbose;
    struct sockaddr_in server_addr[MAX_NODES]; /* one per port */
    char host_header[MAX_NODES][96];

    /* state */
    room *rooms;
    int n_rooms;
    int n_members; /* members this run uses */
    int epfd;
    unsigned char *scratch;
    bench_scripts scripts;
    char *checkin_answers; /* the `answers` object for the safety check-in, NULL: none asked */
    int running;           /* closed/open: commands may be sent */
    int measuring;
    int64_t window_start_ns, window_end_ns;
    int setup_inflight, setup_done, ready, failed, closed;
    counters c, c_at_start;
    code_count errors[MAX_ERROR_CODES];
    int n_error_codes;
    char failure[MAX_FAILURE_KINDS][96];
    int failure_count[MAX_FAILURE_KINDS], n_failures;
    bench_latency delivery;      /* open loop */
    bench_latency ack_latency;   /* closed loop: send to ack */
    bench_latency send_lateness; /* open loop: actual - intended send */
    uint64_t rng;
};

/* ---------- small helpers ---------- */

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "loadgen: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(2);
}

static uint64_t rng_next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static void note_failure(gen *g, const char *what)
{
    for (int i = 0; i < g->n_failures; i++) {
        if (strcmp(g->failure[i], what) == 0) {
            g->failure_count[i]++;
            return;
        }
    }
    if (g->n_failures < MAX_FAILURE_KINDS) {
        snprintf(g->failure[g->n_failures], sizeof g->failure[0], "%s", what);
        g->failure_count[g->n_failures++] = 1;
    }
}

static void count_error_code(gen *g, js_span code)
{
    char text[32];
    if (!code.p || js_str_copy(code, text, sizeof text) < 0)
        snprintf(text, sizeof text, "?");
    for (int i = 0; i < g->n_error_codes; i++) {
        if (strcmp(g->errors[i].code, text) == 0) {
            g->errors[i].count++;
            return;
        }
    }
    if (g->n_error_codes < MAX_ERROR_CODES) {
        snprintf(g->errors[g->n_error_codes].code, sizeof g->errors[0].code, "%s", text);
        g->errors[g->n_error_codes++].count = 1;
    }
}

static int role_index(js_span v)
{
    for (int r = 0; r < ROLES; r++)
        if (js_str_eq(v, att_role_name((att_role)r)))
            return r;
    return -1;
}

/* ---------- tokens ---------- */

/* Reads room and role from a token with the token module's own reader
 * (its payload is signed, not secret; the server checks the MAC). Returns
 * the role index, or -1 for a token that is not one or an observer's. */
static int token_claims(const char *token, char *room_id, size_t room_size)
{
    srv_token_claims claims;
    att_error err = {0};
    if (srv_token_read_claims(token, &claims, &err) < 0 || strlen(claims.room) >= room_size ||
        (int)claims.role < 0 || (int)claims.role >= ROLES)
        return -1;
    memcpy(room_id, claims.room, strlen(claims.room) + 1);
    return (int)claims.role;
}

static room *find_or_add_room(gen *g, const char *id, int *cap)
{
    if (g->n_rooms > 0 && strcmp(g->rooms[g->n_rooms - 1].id, id) == 0)
        return &g->rooms[g->n_rooms - 1];
    for (int i = g->n_rooms - 2; i >= 0 && i >= g->n_rooms - 64; i--)
        if (strcmp(g->rooms[i].id, id) == 0)
            return &g->rooms[i];
    if (g->n_rooms == *cap) {
        *cap = *cap ? *cap * 2 : 1024;
        g->rooms = realloc(g->rooms, (size_t)*cap * sizeof *g->rooms);
        if (!g->rooms)
            die("out of memory");
    }
    room *r = &g->rooms[g->n_rooms++];
    memset(r, 0, sizeof *r);
    snprintf(r->id, sizeof r->id, "%s", id);
    return r;
}

/* Loads every complete room (all three roles) from the tokens file, keeping
 * the file's order, then selects the ones this run uses. */
static void load_tokens(gen *g)
{
    FILE *f = fopen(g->tokens_path, "r");
    if (!f)
        die("cannot open %s: %s", g->tokens_path, strerror(errno));
    char line[2048];
    int cap = 0, lines = 0, unusable = 0;
    while (fgets(line, sizeof line, f)) {
        char *tok = strstr(line, "#token=");
        if (tok) {
            tok += 7;
        } else {
            char *last = NULL, *save = NULL;
            for (char *w = strtok_r(line, " \t\r\n", &save); w;
                 w = strtok_r(NULL, " \t\r\n", &save))
                last = w;
            if (!last || last[0] == '#')
                continue;
            tok = last;
        }
        tok[strcspn(tok, " \t\r\n&")] = '\0';
        lines++;
        char room_id[65];
        int role = token_claims(tok, room_id, sizeof room_id);
        if (role < 0) {
            unusable++;
            continue;
        }
        room *r = find_or_add_room(g, room_id, &cap);
        free(r->token[role]);
        r->token[role] = strdup(tok);
        if (!r->token[role])
            die("out of memory");
    }
    fclose(f);
    /* keep complete rooms only, in order */
    int kept = 0;
    for (int i = 0; i < g->n_rooms; i++) {
        room *r = &g->rooms[i];
        if (r->token[0] && r->token[1] && r->token[2]) {
            g->rooms[kept++] = *r;
        } else {
            for (int k = 0; k < ROLES; k++)
                free(r->token[k]);
        }
    }
    g->n_rooms = kept;
    int need = g->mode == MODE_IDLE ? (g->connections_wanted + ROLES - 1) / ROLES : g->rooms_wanted;
    if (g->room_offset + need > g->n_rooms)
        die("%s holds %d complete rooms (%d token lines, %d unusable); this run needs %d from "
            "offset %d",
            g->tokens_path, g->n_rooms, lines, unusable, need, g->room_offset);
    for (int i = 0; i < g->room_offset; i++)
        for (int k = 0; k < ROLES; k++)
            free(g->rooms[i].token[k]);
    for (int i = g->room_offset + need; i < g->n_rooms; i++)
        for (int k = 0; k < ROLES; k++)
            free(g->rooms[i].token[k]);
    memmove(g->rooms, g->rooms + g->room_offset, (size_t)need * sizeof *g->rooms);
    g->n_rooms = need;
    g->n_members = g->mode == MODE_IDLE ? g->connections_wanted : need * ROLES;
}

/* ---------- epoll plumbing ---------- */

static void watch(gen *g, member *m, int want_out)
{
    if (m->watching_out == want_out)
        return;
    struct epoll_event ev = {.events = EPOLLIN | (want_out ? EPOLLOUT : 0), .data.ptr = m};
    if (epoll_ctl(g->epfd, EPOLL_CTL_MOD, m->ws.fd, &ev) == 0)
        m->watching_out = want_out;
}

/* Ends a member's connection (a failure when reason is not NULL). */
static void finish(gen *g, member *m, const char *reason)
{
    if (m->state == M_DONE || m->state == M_UNSTARTED)
        return;
    if (m->state < M_READY) {
        g->setup_inflight--;
        g->setup_done++;
    }
    if (reason) {
        g->failed++;
        char what[96];
        snprintf(what, sizeof what, "%s: %s", att_role_name((att_role)m->role), reason);
        note_failure(g, what);
    } else {
        g->closed++;
    }
    if (m->ws.fd >= 0)
        epoll_ctl(g->epfd, EPOLL_CTL_DEL, m->ws.fd, NULL);
    ws_client_free(&m->ws);
    m->state = M_DONE;
    m->fifo_count = 0;
}

static void flush(gen *g, member *m)
{
    int rc = ws_client_flush(&m->ws);
    if (rc < 0) {
        finish(g, m, m->ws.error);
        return;
    }
    watch(g, m, rc == 1 || m->state == M_CONNECTING);
}

/* ---------- sending ---------- */

static int send_cmd(gen *g, member *m, cmd_kind kind, int64_t intended_ns)
{
    if (m->state != M_READY && !(m->state == M_HELLO && kind == CMD_HELLO))
        return -1;
    if (m->fifo_count == m->fifo_cap)
        return -1;
    room *r = m->room;
    char buf[2048];
    uint64_t id = ++m->next_id;
    int n;
    switch (kind) {
    case CMD_HELLO:
        n = snprintf(buf, sizeof buf, "{\"type\":\"hello\",\"id\":\"%llu\",\"token\":\"%s\"}",
                     (unsigned long long)id, r->token[m->role]);
        break;
    case CMD_CONSENT:
        n = snprintf(buf, sizeof buf, "{\"type\":\"consent\",\"id\":\"%llu\",\"accept\":true}",
                     (unsigned long long)id);
        break;
    case CMD_CHECKIN:
        if (!g->checkin_answers)
            return -1;
        n = snprintf(buf, sizeof buf, "{\"type\":\"checkin\",\"id\":\"%llu\",\"answers\":%s}",
                     (unsigned long long)id, g->checkin_answers);
        break;
    case CMD_TURN: {
        const bench_step *s = &r->script->steps[r->step_index];
        n = snprintf(buf, sizeof buf,
                     "{\"type\":\"turn\",\"id\":\"%llu\",\"step\":\"%s\",\"input\":%s}",
                     (unsigned long long)id, s->id, s->input);
        break;
    }
    case CMD_REPAIR:
        n = snprintf(buf, sizeof buf, "{\"type\":\"repair_attempt\",\"id\":\"%llu\"}",
                     (unsigned long long)id);
        break;
    case CMD_NOTE:
        n = snprintf(buf, sizeof buf,
                     "{\"type\":\"note\",\"id\":\"%llu\",\"text\":\"Both stayed engaged and "
                     "calm.\"}",
                     (unsigned long long)id);
        break;
    case CMD_BACK:
    case CMD_SWAP:
        n = snprintf(buf, sizeof buf, "{\"type\":\"control\",\"id\":\"%llu\",\"action\":\"%s\"}",
                     (unsigned long long)id, kind == CMD_BACK ? "back" : "swap");
        break;
    default:
        return -1;
    }
    if (n < 0 || (size_t)n >= sizeof buf)
        return -1;
    if (ws_client_send_text(&m->ws, buf, (size_t)n) < 0)
        return -1; /* closing or out of memory; the read path ends it */
    int slot = (m->fifo_head + m->fifo_count) % m->fifo_cap;
    m->fifo[slot] =
        (pending_cmd){.id = id, .kind = kind, .intended_ns = intended_ns, .sent_ns = srv_mono_ns()};
    m->fifo_count++;
    g->c.sent[kind]++;
    if (kind == CMD_TURN || kind == CMD_BACK)
        r->steer_busy = 1;
    return 0;
}

static int at_final_step(const room *r)
{
    return r->script && r->round == r->script->rounds - 1 &&
           r->step_index == r->script->n_steps - 1;
}

static int may_steer(const room *r)
{
    return r->status == ST_ACTIVE && r->script && !r->steer_busy &&
           r->view_common >= r->steer_after_common && r->step_index >= 0 &&
           r->step_index < r->script->n_steps;
}

/* What a member sends next. Partners take their turn when the room is at
 * their step (except the last step of the last round, which would end the
 * session); otherwise they record a repair attempt. The therapist steps back
 * from that last step (so the session never ends), and otherwise writes a
 * note (closed loop) or swaps speaker and listener (open loop: an event both
 * partners see, so its delivery can be timed). */
static cmd_kind choose(const gen *g, const member *m)
{
    const room *r = m->room;
    if (m->role == 2) {
        if (at_final_step(r) && may_steer(r))
            return CMD_BACK;
        if (r->actor == 2 && may_steer(r) && !at_final_step(r))
            return CMD_TURN;
        return g->mode == MODE_OPEN ? CMD_SWAP : CMD_NOTE;
    }
    if (r->actor == m->role && may_steer(r) && !at_final_step(r))
        return CMD_TURN;
    return CMD_REPAIR;
}

static void refill(gen *g, member *m)
{
    if (!g->running || g->mode != MODE_CLOSED || m->state != M_READY)
        return;
    while (m->fifo_count < g->window && m->state == M_READY) {
        if (m->room->status == ST_ENDED && m->role != 2)
            return; /* nothing a partner sends is recorded after the end */
        if (send_cmd(g, m, choose(g, m), 0) < 0)
            return;
    }
}

/* ---------- open-loop delivery tracking ---------- */

static arrival *arrival_slot(room *r, int role, int64_t common)
{
    return &r->arrivals[role * ARRIVAL_RING + (int)(common % ARRIVAL_RING)];
}

/* When member `role` received the common-th common event, or -1 if not (or
 * no longer) known. */
static int64_t arrival_of(room *r, int role, int64_t common)
{
    const arrival *a = arrival_slot(r, role, common);
    return a->common == common ? a->at_ns : -1;
}

static seq_common *own_slot(room *r, int role, int64_t seq)
{
    return &r->own[role * ARRIVAL_RING + (int)(seq % ARRIVAL_RING)];
}

/* Names a pending delivery by its common count once its sender has seen the
 * event its ack named (the last one of the command that the sender sees;
 * the count then includes the command's common event). Returns 1 when
 * resolved. */
static int resolve(room *r, pending_delivery *p)
{
    if (p->common > 0)
        return 1;
    const seq_common *o = own_slot(r, p->sender, p->sender_seq);
    if (o->seq != p->sender_seq)
        return 0;
    p->common = o->common;
    return 1;
}

/* Records a latency sample when both other members have the event. Returns
 * 1 when done. */
static int try_complete(gen *g, room *r, pending_delivery *p)
{
    if (!resolve(r, p))
        return 0;
    int64_t latest = 0;
    for (int k = 0; k < ROLES; k++) {
        if (k == p->sender)
            continue;
        if (r->m[k].state != M_READY)
            return 0; /* dropped out: resolved at the end as lost */
        int64_t t = arrival_of(r, k, p->common);
        if (t < 0)
            return 0;
        if (t > latest)
            latest = t;
    }
    if (bench_latency_add(&g->delivery, latest - p->intended_ns) < 0)
        die("out of memory");
    return 1;
}

static void check_pending(gen *g, room *r)
{
    int kept = 0;
    for (int i = 0; i < r->n_pend; i++)
        if (!try_complete(g, r, &r->pend[i]))
            r->pend[kept++] = r->pend[i];
    r->n_pend = kept;
}

/* Whether every audience sees events of this type (so the n-th of them is
 * the same event on every member's wire). Types some audience does not see
 * (notes, suspicions and their decisions, the private line, check-in
 * answers, takeovers) and any type this list does not know are not counted:
 * a type that no member counts keeps the counts equal just as well. */
static int common_type(js_span type)
{
    static const char *const all[] = {
        "turn",           "repair_attempt",   "control",           "joined",
        "left",           "consented",        "checkin_completed", "repair_accepted",
        "repair_replied", "rupture_opened",   "rupture_repaired",  "pause_requested",
        "room_created",   "consent_withdrawn"};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (js_str_eq(type, all[i]))
            return 1;
    return 0;
}

/* An event reached member m: its seq (in m's audience) and the event object. */
static void member_event(gen *g, member *m, int64_t seq, js_span event)
{
    room *r = m->room;
    js_span type;
    if (seq > m->seen_seq)
        m->seen_seq = seq;
    int common = event.p && js_member(event.p, event.len, "type", &type) == 1 && common_type(type);
    if (common)
        m->common++;
    if (!r->arrivals)
        return;
    if (common)
        *arrival_slot(r, m->role, m->common) = (arrival){m->common, srv_mono_ns()};
    *own_slot(r, m->role, seq) = (seq_common){seq, m->common};
    if (r->n_pend)
        check_pending(g, r);
}

/* ---------- receiving ---------- */

/* The safety check-in's answers, from a hello ack's `safety` member: for
 * each question the first option that does not hold the session. Returns
 * the `answers` object as JSON text (malloc'd), or NULL with err set. */
static char *checkin_answers(const char *safety, size_t len, char *err, size_t err_size)
{
    json_error_t jerr;
    json_t *sf = json_loadb(safety, len, 0, &jerr);
    json_t *answers = json_object();
    char *text = NULL;
    size_t i, j, k;
    json_t *q, *opt, *hold;
    if (!sf || !answers) {
        snprintf(err, err_size, "safety is not JSON: %.100s", jerr.text);
        goto done;
    }
    json_array_foreach(json_object_get(sf, "questions"), i, q)
    {
        const char *qid = json_string_value(json_object_get(q, "id"));
        const char *pick = NULL;
        json_array_foreach(json_object_get(q, "options"), j, opt)
        {
            const char *oid = json_string_value(json_object_get(opt, "id"));
            int held = 0;
            json_array_foreach(json_object_get(q, "hold"), k, hold)
            {
                if (oid && json_string_value(hold) && strcmp(json_string_value(hold), oid) == 0)
                    held = 1;
            }
            if (oid && !held && !pick)
                pick = oid;
        }
        if (!qid || !pick) {
            snprintf(err, err_size,
                     "a safety question without an answer that lets the session go on");
            goto done;
        }
        json_object_set_new(answers, qid, json_string(pick));
    }
    text = json_dumps(answers, JSON_COMPACT | JSON_SORT_KEYS);
    if (!text)
        snprintf(err, err_size, "out of memory");
done:
    json_decref(answers);
    json_decref(sf);
    return text;
}

/* Returns 0, or -1 with m->doom set. */
static int on_hello_ack(gen *g, member *m, const char *text, size_t len)
{
    static const char *const keys[] = {"exercise", "vocab", "last_seq", "safety"};
    js_span v[4];
    room *r = m->room;
    if (js_members(text, len, keys, 4, v) < 0 || !v[0].p || !v[1].p) {
        snprintf(m->doom, sizeof m->doom, "hello ack without exercise or vocab");
        return -1;
    }
    if (!r->script) {
        char err[160];
        if (bench_script_add(&g->scripts, v[0].p, v[0].len, v[1].p, v[1].len, &r->script, err,
                             sizeof err) < 0) {
            snprintf(m->doom, sizeof m->doom, "%.90s", err);
            return -1;
        }
    }
    if (v[3].p && !g->checkin_answers) {
        char err[160];
        g->checkin_answers = checkin_answers(v[3].p, v[3].len, err, sizeof err);
        if (!g->checkin_answers) {
            snprintf(m->doom, sizeof m->doom, "%.90s", err);
            return -1;
        }
    }
    /* the hello replay (no resume_from: every event from the first) follows,
     * and is counted like any event */
    int64_t last = 0;
    if (v[2].p && js_int(v[2], &last) == 0 && last > m->seen_seq)
        m->seen_seq = last;
    m->state = M_READY;
    g->ready++;
    g->setup_inflight--;
    g->setup_done++;
    if (g->mode != MODE_IDLE && m->role != 2)
        send_cmd(g, m, CMD_CONSENT, 0);
    return 0;
}

/* A state reached member m (seq in m's audience). */
static void on_state(gen *g, member *m, js_span status, js_span round, js_span step, int64_t seq)
{
    room *r = m->room;
    if (seq > m->seen_seq)
        m->seen_seq = seq;
    if (r->steer_after_common == INT64_MAX && m->role == r->steer_member &&
        seq >= r->steer_after_seq)
        r->steer_after_common = m->common; /* the sender has the state after its step change */
    if (m->role != 2 && !m->checkin_sent && js_str_eq(status, "checking_in") &&
        g->checkin_answers && send_cmd(g, m, CMD_CHECKIN, 0) == 0)
        m->checkin_sent = 1;
    if (m->common <= r->view_common)
        return;
    r->view_common = m->common;
    if (js_str_eq(status, "active"))
        r->status = ST_ACTIVE;
    else if (js_str_eq(status, "waiting_consent"))
        r->status = ST_WAITING;
    else if (js_str_eq(status, "checking_in"))
        r->status = ST_CHECKING_IN;
    else if (js_str_eq(status, "paused"))
        r->status = ST_PAUSED;
    else if (js_str_eq(status, "ended"))
        r->status = ST_ENDED;
    int64_t x;
    r->round = round.p && js_int(round, &x) == 0 ? (int)x : 0;
    r->step_index = -1;
    r->actor = -1;
    if (step.p && step.p[0] == '{') {
        static const char *const keys[] = {"index", "actor"};
        js_span v[2];
        if (js_members(step.p, step.len, keys, 2, v) >= 0) {
            if (v[0].p && js_int(v[0], &x) == 0)
                r->step_index = (int)x;
            if (v[1].p)
                r->actor = role_index(v[1]);
        }
    }
}

/* Handles an ack or an error: the reply to the oldest command in flight. */
static int on_reply(gen *g, member *m, int is_ack, const char *text, size_t len, js_span id_v,
                    js_span seq_v, js_span code_v)
{
    room *r = m->room;
    if (m->fifo_count == 0) {
        g->c.fifo_mismatch++;
        return 0;
    }
    pending_cmd p = m->fifo[m->fifo_head];
    m->fifo_head = (m->fifo_head + 1) % m->fifo_cap;
    m->fifo_count--;
    char id_text[24];
    if (!id_v.p || js_str_copy(id_v, id_text, sizeof id_text) <= 0 ||
        strtoull(id_text, NULL, 10) != p.id)
        g->c.fifo_mismatch++;
    if (p.kind == CMD_TURN || p.kind == CMD_BACK)
        r->steer_busy = 0;
    int64_t now = srv_mono_ns();
    if (!is_ack) {
        g->c.errors++;
        count_error_code(g, code_v);
        if (p.kind == CMD_HELLO) {
            char code[32] = "?";
            if (code_v.p)
                js_str_copy(code_v, code, sizeof code);
            snprintf(m->doom, sizeof m->doom, "hello refused: %s", code);
            return -1;
        }
    } else if (p.kind == CMD_HELLO) {
        return on_hello_ack(g, m, text, len);
    } else {
        int64_t seq;
        if (seq_v.p && js_int(seq_v, &seq) == 0) {
            g->c.acks_with_seq++;
            g->c.committed[p.kind]++;
            if (p.kind == CMD_TURN || p.kind == CMD_BACK) {
                r->steer_member = m->role;
                r->steer_after_seq = seq;
                r->steer_after_common = INT64_MAX;
            }
            if (g->mode == MODE_OPEN && p.intended_ns >= g->window_start_ns &&
                p.intended_ns < g->window_end_ns) {
                pending_delivery d = {seq, 0, p.intended_ns, m->role};
                if (!try_complete(g, r, &d)) {
                    if (r->n_pend < PENDING_PER_ROOM)
                        r->pend[r->n_pend++] = d;
                    else
                        g->c.lost_deliveries++;
                }
            }
        } else {
            g->c.acks_without_seq++;
        }
    }
    if (g->mode == MODE_CLOSED && g->measuring && p.kind != CMD_CONSENT && p.kind != CMD_CHECKIN &&
        bench_latency_add(&g->ack_latency, now - p.sent_ns) < 0)
        die("out of memory");
    refill(g, m);
    return 0;
}

static int on_message(void *arg, const char *text, size_t len)
{
    member *m = arg;
    gen *g = m->gen;
    static const char *const keys[] = {"type",   "id",    "seq",  "code", "reason",
                                       "status", "round", "step", "event"};
    js_span v[9];
    g->c.messages_in++;
    g->c.bytes_in += len;
    if (js_members(text, len, keys, 9, v) < 0 || !v[0].p) {
        snprintf(m->doom, sizeof m->doom, "server message is not an object with a type");
        return -1;
    }
    int64_t seq = -1;
    if (v[2].p && js_int(v[2], &seq) < 0)
        seq = -1;
    if (js_str_eq(v[0], "ack"))
        return on_reply(g, m, 1, text, len, v[1], v[2], v[3]);
    if (js_str_eq(v[0], "error"))
        return on_reply(g, m, 0, text, len, v[1], v[2], v[3]);
    if (js_str_eq(v[0], "event")) {
        g->c.events_in++;
        if (seq > 0)
            member_event(g, m, seq, v[8]);
        return 0;
    }
    if (js_str_eq(v[0], "state")) {
        g->c.states_in++;
        if (seq >= 0)
            on_state(g, m, v[5], v[6], v[7], seq);
        return 0;
    }
    if (js_str_eq(v[0], "bye")) {
        g->c.byes++;
        if (v[4].p)
            js_str_copy(v[4], m->bye, sizeof m->bye);
        return 0;
    }
    return 0; /* a type this generator does not use */
}

/* ---------- connections ---------- */

static member *member_at(gen *g, int i)
{
    return &g->rooms[i / ROLES].m[i % ROLES];
}

static void start_failed(gen *g, member *m, const char *what, int fd)
{
    char text[96];
    snprintf(text, sizeof text, "%s: %s", what, strerror(errno));
    if (fd >= 0)
        close(fd);
    m->state = M_DONE;
    g->failed++;
    g->setup_done++;
    note_failure(g, text);
}

static void start_member(gen *g, member *m)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return start_failed(g, m, "socket", -1);
    int one = 1;
    /* commands are small and latency is measured: no Nagle delay */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (g->bind_ip) {
        /* The server caps connections per client address (256 by default):
         * spread them over consecutive source addresses from --bind-ip. */
        if (g->per_source && g->bound_on_source == g->per_source) {
            g->next_source.s_addr = htonl(ntohl(g->next_source.s_addr) + 1);
            g->bound_on_source = 0;
        }
        if (g->bound_on_source++ == 0)
            g->sources_used++;
        struct sockaddr_in src = {.sin_family = AF_INET, .sin_addr = g->next_source};
        if (bind(fd, (struct sockaddr *)&src, sizeof src) < 0)
            return start_failed(g, m, "bind", fd);
    }
    int node = (int)(m->room - g->rooms) % g->n_ports;
    if (connect(fd, (struct sockaddr *)&g->server_addr[node], sizeof g->server_addr[node]) < 0 &&
        errno != EINPROGRESS)
        return start_failed(g, m, "connect", fd);
    char path[96] = "/ws";
    if (g->room_in_url)
        snprintf(path, sizeof path, "/ws?room=%s", m->room->id);
    if (ws_client_start(&m->ws, fd, g->host_header[node], path, "attune.v1", g->origin,
                        rng_next(&g->rng)) < 0) {
        errno = ENOMEM;
        return start_failed(g, m, "ws_client_start", fd);
    }
    if (g->tls && ws_client_use_tls(&m->ws, g->tls) < 0) {
        ws_client_free(&m->ws); /* closes fd */
        errno = ENOMEM;
        return start_failed(g, m, "ws_client_use_tls", -1);
    }
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = m};
    if (epoll_ctl(g->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
        ws_client_free(&m->ws);
        return start_failed(g, m, "epoll_ctl", -1);
    }
    m->watching_out = 1;
    m->state = M_CONNECTING;
    g->setup_inflight++;
}

static void on_io(gen *g, member *m, uint32_t events)
{
    if (m->state == M_DONE || m->state == M_UNSTARTED)
        return;
    if (m->state == M_CONNECTING) {
        if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
            return;
        int err = 0;
        socklen_t l = sizeof err;
        if (getsockopt(m->ws.fd, SOL_SOCKET, SO_ERROR, &err, &l) < 0)
            err = errno;
        if (err) {
            char text[96];
            snprintf(text, sizeof text, "connect: %s", strerror(err));
            finish(g, m, text);
            return;
        }
        m->state = M_HANDSHAKE;
        flush(g, m);
        return;
    }
    if (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
        int rc = ws_client_read(&m->ws, g->scratch, READ_SCRATCH, on_message, m);
        if (rc < 0) {
            finish(g, m, m->doom[0] ? m->doom : m->ws.error);
            return;
        }
        if (m->state == M_HANDSHAKE && m->ws.state == WS_OPEN) {
            m->state = M_HELLO;
            send_cmd(g, m, CMD_HELLO, 0);
        }
        if (m->ws.state == WS_CLOSED)
            ws_client_flush(&m->ws); /* the close echo, best effort */
        if (rc == 1) {
            if (m->state == M_CLOSING) {
                finish(g, m, NULL);
            } else {
                char text[96];
                snprintf(text, sizeof text, "server closed the connection (code %d%s%s)",
                         m->ws.close_code, m->bye[0] ? ", bye " : "", m->bye);
                finish(g, m, text);
            }
            return;
        }
    }
    if (m->state != M_DONE)
        flush(g, m);
}

/* Waits up to timeout_ns for socket events and handles them. */
static void poll_once(gen *g, int64_t timeout_ns)
{
    struct epoll_event evs[512];
    if (timeout_ns < 0)
        timeout_ns = 0;
    struct timespec ts = {.tv_sec = timeout_ns / NS_PER_S, .tv_nsec = timeout_ns % NS_PER_S};
    int n = epoll_pwait2(g->epfd, evs, 512, &ts, NULL);
    if (n < 0 && errno != EINTR)
        die("epoll_pwait2: %s", strerror(errno));
    for (int i = 0; i < n; i++)
        on_io(g, evs[i].data.ptr, evs[i].events);
}

static void run_until(gen *g, int64_t until_ns)
{
    for (int64_t now = srv_mono_ns(); now < until_ns; now = srv_mono_ns())
        poll_once(g, until_ns - now);
}

static int rooms_active(gen *g)
{
    int active = 0;
    for (int i = 0; i < g->n_rooms; i++)
        if (g->rooms[i].status == ST_ACTIVE)
            active++;
    return active;
}

static int complete_rooms(gen *g)
{
    int n = 0;
    for (int i = 0; i < g->n_rooms; i++) {
        room *r = &g->rooms[i];
        n += r->m[0].state == M_READY && r->m[1].state == M_READY && r->m[2].state == M_READY;
    }
    return n;
}

/* Opens every connection (at most connect_parallel still handshaking at a
 * time) and authenticates it; closed/open modes also wait for both consents
 * (and the safety check-ins, where the server asks them) in every complete
 * room. */
static void setup(gen *g)
{
    int64_t start = srv_mono_ns(), report = start;
    int64_t deadline = start + (int64_t)(g->setup_timeout_s * NS_PER_S);
    int next = 0;
    while (g->setup_done < g->n_members && srv_mono_ns() < deadline) {
        while (g->setup_inflight < g->connect_parallel && next < g->n_members)
            start_member(g, member_at(g, next++));
        poll_once(g, 5 * NS_PER_MS);
        if (g->verbose && srv_mono_ns() - report > 2 * NS_PER_S) {
            report = srv_mono_ns();
            fprintf(stderr, "loadgen: %d/%d authenticated, %d failed\n", g->ready, g->n_members,
                    g->failed);
        }
    }
    if (g->mode != MODE_IDLE) {
        int want = complete_rooms(g);
        int64_t until = srv_mono_ns() + 60 * NS_PER_S;
        while (rooms_active(g) < want && srv_mono_ns() < until)
            poll_once(g, 5 * NS_PER_MS);
    }
    printf("setup: %d of %d connections authenticated in %.1f s (%d failed, %d still pending)",
           g->ready, g->n_members, (double)(srv_mono_ns() - start) / NS_PER_S, g->failed,
           g->setup_inflight + (g->n_members - next));
    if (g->mode != MODE_IDLE)
        printf("; %d of %d rooms active (both consents%s)", rooms_active(g), g->n_rooms,
               g->checkin_answers ? " and safety check-ins" : "");
    printf("\n");
    fflush(stdout); /* a script may wait for this line (run-bench.sh's failover) */
}

/* Closes every connection with 1000 and waits for the close handshakes. */
static void teardown(gen *g)
{
    g->running = 0;
    int total = g->n_members;
    for (int i = 0; i < total; i++) {
        member *m = member_at(g, i);
        if (m->state == M_DONE || m->state == M_UNSTARTED)
            continue;
        if (m->ws.state == WS_OPEN && ws_client_send_close(&m->ws, 1000) == 0) {
            m->state = M_CLOSING;
            flush(g, m);
        } else {
            finish(g, m, NULL);
        }
    }
    int64_t until = srv_mono_ns() + 10 * NS_PER_S;
    for (;;) {
        int open = 0;
        for (int i = 0; i < total; i++)
            open += member_at(g, i)->state == M_CLOSING;
        if (open == 0 || srv_mono_ns() >= until)
            break;
        poll_once(g, 10 * NS_PER_MS);
    }
    for (int i = 0; i < total; i++) {
        member *m = member_at(g, i);
        if (m->state != M_DONE && m->state != M_UNSTARTED)
            finish(g, m, "close handshake not finished within 10 s");
    }
}

/* ---------- measurement ---------- */

#define MAX_SERVER_THREADS 16

typedef struct {
    int64_t wall_ns, self_cpu_ns, server_cpu_ns, db_cpu_ns;
    int server_ok, db_ok, n_nodes;
    bench_thread_cpu threads[MAX_SERVER_THREADS];
    int n_threads;
} snapshot;

static snapshot take_snapshot(const gen *g)
{
    snapshot s = {.wall_ns = srv_mono_ns(), .self_cpu_ns = bench_self_cpu_ns()};
    s.server_ok = g->n_server_pids > 0;
    s.n_nodes = g->n_server_pids;
    for (int i = 0; i < g->n_server_pids; i++) {
        int64_t ns = 0;
        if (bench_proc_cpu_ns(g->server_pid[i], &ns) < 0)
            s.server_ok = 0;
        s.server_cpu_ns += ns;
    }
    if (s.server_ok && g->n_server_pids == 1)
        s.n_threads = bench_proc_threads(g->server_pid[0], s.threads, MAX_SERVER_THREADS);
    /* A backend gone by the end counts as 0 there: only those alive at
     * both ends are summed (the nodes' connections live the whole run). */
    s.db_ok = g->n_db_pids > 0;
    for (int i = 0; i < g->n_db_pids; i++) {
        int64_t ns = 0;
        if (bench_proc_cpu_ns(g->db_pid[i], &ns) == 0)
            s.db_cpu_ns += ns;
    }
    return s;
}

/* The server's CPU split by thread (the service thread carries the
 * process's name; the server names the others), threads that used any. */
static void print_thread_cpu(const snapshot *a, const snapshot *b, double wall)
{
    int shown = 0;
    for (int i = 0; i < b->n_threads; i++) {
        int64_t before = 0;
        for (int j = 0; j < a->n_threads; j++)
            if (a->threads[j].tid == b->threads[i].tid)
                before = a->threads[j].cpu_ns;
        double pct = 100.0 * (double)(b->threads[i].cpu_ns - before) / wall;
        if (pct < 0.05)
            continue;
        printf("%s%s %.1f %%", shown++ ? ", " : "  server CPU by thread: ", b->threads[i].name,
               pct);
    }
    if (shown)
        printf("\n");
}

static void print_cpu(const snapshot *a, const snapshot *b)
{
    double wall = (double)(b->wall_ns - a->wall_ns);
    if (a->server_ok && b->server_ok)
        printf("  server CPU: %.1f %% of a core%s",
               100.0 * (double)(b->server_cpu_ns - a->server_cpu_ns) / wall,
               a->n_nodes > 1 ? " (all nodes)" : "");
    else
        printf("  server CPU: unknown (no --server-pid)");
    if (a->db_ok && b->db_ok)
        printf("; database CPU: %.1f %% of a core",
               100.0 * (double)(b->db_cpu_ns - a->db_cpu_ns) / wall);
    printf("; generator CPU: %.1f %% of a core (getrusage; 100 %% = generator saturated)\n",
           100.0 * (double)(b->self_cpu_ns - a->self_cpu_ns) / wall);
    if (a->server_ok && b->server_ok)
        print_thread_cpu(a, b, wall);
}

static void print_errors(const gen *g)
{
    printf("  errors from the server (whole run): ");
    if (g->n_error_codes == 0)
        printf("none");
    for (int i = 0; i < g->n_error_codes; i++)
        printf("%s%s=%llu", i ? ", " : "", g->errors[i].code,
               (unsigned long long)g->errors[i].count);
    printf("\n");
    if (g->n_failures) {
        printf("  connection failures:");
        for (int i = 0; i < g->n_failures; i++)
            printf(" [%d x %s]", g->failure_count[i], g->failure[i]);
        printf("\n");
    }
    if (g->c.fifo_mismatch)
        printf("  replies that did not match the oldest command in flight: %llu\n",
               (unsigned long long)g->c.fifo_mismatch);
}

static double ms(int64_t ns)
{
    return (double)ns / NS_PER_MS;
}

static void print_latency(const char *what, bench_latency *l)
{
    printf("  %s: %zu samples, p50 %.3f ms, p99 %.3f ms, p99.9 %.3f ms, max %.3f ms\n", what, l->n,
           ms(bench_latency_quantile(l, 0.50)), ms(bench_latency_quantile(l, 0.99)),
           ms(bench_latency_quantile(l, 0.999)), ms(bench_latency_max(l)));
}

static int outstanding(gen *g)
{
    int n = 0;
    for (int i = 0; i < g->n_members; i++)
        n += member_at(g, i)->fifo_count;
    return n;
}

static int pending_deliveries(gen *g)
{
    int n = 0;
    for (int i = 0; i < g->n_rooms; i++)
        n += g->rooms[i].n_pend;
    return n;
}

/* Runs the loop until cond(g) or the deadline. */
static void drain(gen *g, int (*cond)(gen *), int64_t max_ns)
{
    int64_t until = srv_mono_ns() + max_ns;
    while (cond(g) > 0 && srv_mono_ns() < until)
        poll_once(g, 5 * NS_PER_MS);
}

/* ---------- modes ---------- */

static void run_idle(gen *g)
{
    int64_t rss_before = -1, rss_after = -1;
    if (g->n_server_pids > 0 && bench_proc_rss_kib(g->server_pid[0], &rss_before) < 0)
        rss_before = -1;
    setup(g);
    /* let the server settle (joined events committed, buffers trimmed),
     * then hold the connections idle and watch the server's CPU */
    run_until(g, srv_mono_ns() + (int64_t)(g->settle_s * NS_PER_S));
    snapshot a = take_snapshot(g);
    run_until(g, a.wall_ns + (int64_t)(g->duration_s * NS_PER_S));
    snapshot b = take_snapshot(g);
    if (g->n_server_pids > 0 && bench_proc_rss_kib(g->server_pid[0], &rss_after) < 0)
        rss_after = -1;
    printf("idle: %d connections in %d rooms, authenticated (hello acked) and idle\n", g->ready,
           g->n_rooms);
    if (rss_before >= 0 && rss_after >= 0 && g->ready > 0) {
        printf("  server RSS before: %lld KiB, after: %lld KiB, growth %lld KiB\n",
               (long long)rss_before, (long long)rss_after, (long long)(rss_after - rss_before));
        printf("  server RSS per connection: %.0f bytes (growth / connections; target <= 8192), "
               "%.0f bytes counting the whole RSS\n",
               (double)(rss_after - rss_before) * 1024.0 / g->ready,
               (double)rss_after * 1024.0 / g->ready);
    } else {
        printf("  server RSS: unknown (%s)\n",
               g->n_server_pids <= 0 ? "no --server-pid" : "unreadable, or no connection");
    }
    printf("  held idle for %.1f s after a %.1f s settle\n", g->duration_s, g->settle_s);
    print_cpu(&a, &b);
    print_errors(g);
}

static void run_closed(gen *g)
{
    setup(g);
    g->running = 1;
    for (int i = 0; i < g->n_members; i++) {
        member *m = member_at(g, i);
        refill(g, m);
        if (m->state == M_READY)
            flush(g, m);
    }
    run_until(g, srv_mono_ns() + (int64_t)(g->warmup_s * NS_PER_S));
    snapshot a = take_snapshot(g);
    g->c_at_start = g->c;
    for (int i = 0; i < g->n_rooms; i++)
        g->rooms[i].seq_at_start = g->rooms[i].m[2].seen_seq;
    g->measuring = 1;
    run_until(g, a.wall_ns + (int64_t)(g->duration_s * NS_PER_S));
    snapshot b = take_snapshot(g);
    counters end = g->c;
    int64_t events = 0;
    for (int i = 0; i < g->n_rooms; i++)
        events += g->rooms[i].m[2].seen_seq - g->rooms[i].seq_at_start;
    g->measuring = 0;
    g->running = 0;
    drain(g, outstanding, 10 * NS_PER_S);

    double secs = (double)(b.wall_ns - a.wall_ns) / NS_PER_S;
    const counters *s = &g->c_at_start;
    printf("closed loop: %d rooms (%d active), %d connections, %d commands in flight per "
           "connection, %.1f s measured after %.1f s warm-up\n",
           g->n_rooms, rooms_active(g), g->ready, g->window, secs, g->warmup_s);
    printf("  one event = one command the server committed durably before acking it with a seq: "
           "a partner's turn at its own step, else a partner's repair_attempt; the therapist's "
           "note, or control back at the session's last step (so sessions never end)\n");
    uint64_t acked = end.acks_with_seq - s->acks_with_seq;
    printf("  durably committed events/s: %.0f (acks with seq:", (double)acked / secs);
    for (int k = CMD_CONSENT; k < CMD_KINDS; k++)
        if (end.committed[k] - s->committed[k])
            printf(" %s %llu", CMD_NAMES[k],
                   (unsigned long long)(end.committed[k] - s->committed[k]));
    printf(")\n");
    printf(
        "  events appended/s by the rooms' log seq (the therapist's; incl. presence and detector "
        "events): %.0f\n",
        (double)events / secs);
    printf("  server messages received/s: %.0f, %.1f MB/s of JSON (events %.0f/s, states %.0f/s)\n",
           (double)(end.messages_in - s->messages_in) / secs,
           (double)(end.bytes_in - s->bytes_in) / secs / 1e6,
           (double)(end.events_in - s->events_in) / secs,
           (double)(end.states_in - s->states_in) / secs);
    print_latency("send to ack", &g->ack_latency);
    print_cpu(&a, &b);
    print_errors(g);
}

typedef struct {
    member *m;
    int64_t phase_ns;
} scheduled;

static int cmp_phase(const void *a, const void *b)
{
    int64_t x = ((const scheduled *)a)->phase_ns, y = ((const scheduled *)b)->phase_ns;
    return (x > y) - (x < y);
}

static void run_open(gen *g)
{
    setup(g);
    /* every client of every active room sends at the same period, each at
     * its own random phase: the schedule is the phases in order, repeated */
    scheduled *order = calloc((size_t)g->n_members, sizeof *order);
    if (!order)
        die("out of memory");
    int n = 0;
    for (int i = 0; i < g->n_rooms; i++) {
        room *r = &g->rooms[i];
        if (r->status != ST_ACTIVE)
            continue;
        for (int k = 0; k < ROLES; k++)
            if (r->m[k].state == M_READY)
                order[n++].m = &r->m[k];
    }
    if (n == 0)
        die("no active room to drive");
    int64_t period = (int64_t)((double)n / g->rate * NS_PER_S);
    for (int i = 0; i < n; i++)
        order[i].phase_ns = (int64_t)(rng_next(&g->rng) % (uint64_t)period);
    qsort(order, (size_t)n, sizeof *order, cmp_phase);

    g->running = 1;
    int64_t t0 = srv_mono_ns() + 100 * NS_PER_MS;
    g->window_start_ns = t0 + (int64_t)(g->warmup_s * NS_PER_S);
    g->window_end_ns = g->window_start_ns + (int64_t)(g->duration_s * NS_PER_S);
    snapshot a = {0}, b = {0};
    uint64_t sent_in_window = 0;
    int64_t j = 0, next = t0 + order[0].phase_ns;
    for (;;) {
        int64_t now = srv_mono_ns();
        if (!g->measuring && now >= g->window_start_ns && !a.wall_ns) {
            a = take_snapshot(g);
            g->c_at_start = g->c;
            g->measuring = 1;
        }
        if (now >= g->window_end_ns) {
            b = take_snapshot(g);
            g->measuring = 0;
            break;
        }
        while (next <= now && next < g->window_end_ns) {
            member *m = order[j % n].m;
            if (m->state == M_READY && send_cmd(g, m, choose(g, m), next) == 0) {
                flush(g, m);
                if (next >= g->window_start_ns) {
                    sent_in_window++;
                    if (bench_latency_add(&g->send_lateness, srv_mono_ns() - next) < 0)
                        die("out of memory");
                }
            } else if (next >= g->window_start_ns) {
                g->c.open_skipped++;
            }
            j++;
            next = t0 + (j / n) * period + order[j % n].phase_ns;
        }
        int64_t wake = next < g->window_end_ns ? next : g->window_end_ns;
        if (!g->measuring && g->window_start_ns < wake)
            wake = g->window_start_ns;
        poll_once(g, wake - srv_mono_ns());
    }
    g->running = 0;
    counters end = g->c;
    drain(g, pending_deliveries, 2 * NS_PER_S);
    int lost = pending_deliveries(g);
    drain(g, outstanding, 5 * NS_PER_S);

    double secs = (double)(b.wall_ns - a.wall_ns) / NS_PER_S;
    printf("open loop: %.0f commands/s in total over %d active rooms (%d clients, each one every "
           "%.3f s), %.1f s measured after %.1f s warm-up\n",
           g->rate, rooms_active(g), n, (double)period / NS_PER_S, secs, g->warmup_s);
    printf("  one turn = one command at its scheduled time: a partner's turn at its own step, else "
           "a partner's repair_attempt; the therapist's control swap, or control back at the "
           "session's last step (so sessions never end). All are events both other members "
           "see.\n");
    printf("  sent in the window: %llu (%.0f/s); not sent (client gone or too far behind): %llu\n",
           (unsigned long long)sent_in_window, (double)sent_in_window / secs,
           (unsigned long long)(end.open_skipped - g->c_at_start.open_skipped));
    print_latency("latency, intended send time to delivery at both other members", &g->delivery);
    printf("  committed but not delivered to both others within 2 s: %d (plus %llu not tracked)\n",
           lost, (unsigned long long)end.lost_deliveries);
    print_latency("generator send lateness (actual - intended send time)", &g->send_lateness);
    print_cpu(&a, &b);
    print_errors(g);
    free(order);
}

/* ---------- main ---------- */

static void usage(FILE *out)
{
    fprintf(out,
            "usage: loadgen --mode idle|closed|open --tokens FILE [options]\n"
            "  --tokens FILE         invitation tokens or URLs (#token=...), any order; rooms\n"
            "                        are read from the tokens; only complete rooms are used\n"
            "  --host ADDR           server IPv4 address (127.0.0.1)\n"
            "  --port N              server port (8080)\n"
            "  --ports P1,P2,...     several nodes: room i's members connect to port i mod N\n"
            "  --room-in-url         connect to /ws?room=ID (a proxy routing by room)\n"
            "  --bind-ip ADDR        first source address for the connections (e.g. 127.1.0.1,\n"
            "                        to keep each run's ephemeral ports apart); default\n"
            "                        127.0.0.1 when the server is on loopback\n"
            "  --per-source N        connections per source address before the next one\n"
            "                        (ADDR+1, ...), under the server's per-address cap\n"
            "                        (--max-conns-per-address, 256) [200; 0: all from ADDR]\n"
            "  --origin URL          Origin header to send (none by default)\n"
            "  --tls                 connect with TLS (wss; the server's certificate is not\n"
            "                        checked: a loopback benchmark)\n"
            "  --server-pid PID      read the server's CPU and RSS from /proc (repeatable: one\n"
            "                        per node, CPU summed, RSS and threads of the first)\n"
            "  --db-pid PID          a database process whose CPU to show (repeatable)\n"
            "  --rooms R             closed/open: rooms to drive (1000)\n"
            "  --room-offset K       skip the first K complete rooms of the file (0)\n"
            "  --connections N       idle: connections, in ceil(N/3) rooms (19000)\n"
            "  --window W            closed: commands in flight per connection (4)\n"
            "  --rate T              open: commands per second in total (3000)\n"
            "  --duration S          seconds measured (10; idle: seconds held idle)\n"
            "  --warmup S            seconds before measuring (3)\n"
            "  --settle S            idle: seconds between setup and measuring (2)\n"
            "  --connect-parallel K  connections handshaking at once (256)\n"
            "  --setup-timeout S     give up on connections not authenticated by then (120)\n"
            "  --verbose             progress on stderr\n");
}

int main(int argc, char **argv)
{
    gen *g = calloc(1, sizeof *g);
    if (!g)
        die("out of memory");
    g->mode = -1;
    g->host = "127.0.0.1";
    g->port = 8080;
    g->per_source = 200;
    g->rooms_wanted = 1000;
    g->connections_wanted = 19000;
    g->window = 4;
    g->rate = 3000;
    g->duration_s = 10;
    g->warmup_s = 3;
    g->settle_s = 2;
    g->connect_parallel = 256;
    g->setup_timeout_s = 120;
    static const struct option opts[] = {{"mode", required_argument, 0, 'm'},
                                         {"tokens", required_argument, 0, 't'},
                                         {"host", required_argument, 0, 'H'},
                                         {"port", required_argument, 0, 'p'},
                                         {"ports", required_argument, 0, 'P'},
                                         {"room-in-url", no_argument, 0, 'U'},
                                         {"db-pid", required_argument, 0, 'D'},
                                         {"bind-ip", required_argument, 0, 'b'},
                                         {"per-source", required_argument, 0, 'A'},
                                         {"origin", required_argument, 0, 'o'},
                                         {"server-pid", required_argument, 0, 's'},
                                         {"rooms", required_argument, 0, 'r'},
                                         {"room-offset", required_argument, 0, 'O'},
                                         {"connections", required_argument, 0, 'n'},
                                         {"window", required_argument, 0, 'w'},
                                         {"rate", required_argument, 0, 'R'},
                                         {"duration", required_argument, 0, 'd'},
                                         {"warmup", required_argument, 0, 'W'},
                                         {"settle", required_argument, 0, 'S'},
                                         {"connect-parallel", required_argument, 0, 'c'},
                                         {"setup-timeout", required_argument, 0, 'T'},
                                         {"tls", no_argument, 0, 'L'},
                                         {"verbose", no_argument, 0, 'v'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    int opt;
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 'm':
            g->mode = strcmp(optarg, "idle") == 0     ? MODE_IDLE
                      : strcmp(optarg, "closed") == 0 ? MODE_CLOSED
                      : strcmp(optarg, "open") == 0   ? MODE_OPEN
                                                      : (run_mode)-1;
            break;
        case 't':
            g->tokens_path = optarg;
            break;
        case 'H':
            g->host = optarg;
            break;
        case 'p':
            g->port = atoi(optarg);
            break;
        case 'b':
            g->bind_ip = optarg;
            break;
        case 'A':
            g->per_source = atoi(optarg);
            if (g->per_source < 0)
                die("--per-source must be >= 0");
            break;
        case 'o':
            g->origin = optarg;
            break;
        case 's':
            if (g->n_server_pids == MAX_NODES)
                die("at most %d --server-pid", MAX_NODES);
            g->server_pid[g->n_server_pids++] = (pid_t)atoi(optarg);
            break;
        case 'D':
            if (g->n_db_pids == MAX_DB_PIDS)
                die("at most %d --db-pid", MAX_DB_PIDS);
            g->db_pid[g->n_db_pids++] = (pid_t)atoi(optarg);
            break;
        case 'P':
            for (char *p = optarg, *end; *p; p = *end ? end + 1 : end) {
                long v = strtol(p, &end, 10);
                if (end == p || (*end && *end != ',') || v < 1 || v > 65535)
                    die("--ports %s: a comma-separated list of ports", optarg);
                if (g->n_ports == MAX_NODES)
                    die("--ports: at most %d", MAX_NODES);
                g->ports[g->n_ports++] = (int)v;
            }
            break;
        case 'U':
            g->room_in_url = 1;
            break;
        case 'r':
            g->rooms_wanted = atoi(optarg);
            break;
        case 'O':
            g->room_offset = atoi(optarg);
            break;
        case 'n':
            g->connections_wanted = atoi(optarg);
            break;
        case 'w':
            g->window = atoi(optarg);
            break;
        case 'R':
            g->rate = atof(optarg);
            break;
        case 'd':
            g->duration_s = atof(optarg);
            break;
        case 'W':
            g->warmup_s = atof(optarg);
            break;
        case 'S':
            g->settle_s = atof(optarg);
            break;
        case 'c':
            g->connect_parallel = atoi(optarg);
            break;
        case 'T':
            g->setup_timeout_s = atof(optarg);
            break;
        case 'L':
            if (!(g->tls = SSL_CTX_new(TLS_client_method())) ||
                SSL_CTX_set_min_proto_version(g->tls, TLS1_2_VERSION) != 1)
                die("cannot set up TLS");
            SSL_CTX_set_verify(g->tls, SSL_VERIFY_NONE, NULL);
            break;
        case 'v':
            g->verbose = 1;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if ((int)g->mode < 0 || !g->tokens_path) {
        usage(stderr);
        return 2;
    }
    if (g->rooms_wanted < 1 || g->connections_wanted < 1 || g->window < 1 || g->rate <= 0 ||
        g->duration_s <= 0 || g->warmup_s < 0 || g->connect_parallel < 1 || g->room_offset < 0)
        die("an option is out of range (see --help)");
    if (g->n_ports == 0)
        g->ports[g->n_ports++] = g->port;
    for (int i = 0; i < g->n_ports; i++) {
        g->server_addr[i].sin_family = AF_INET;
        g->server_addr[i].sin_port = htons((uint16_t)g->ports[i]);
        if (inet_pton(AF_INET, g->host, &g->server_addr[i].sin_addr) != 1)
            die("--host %s is not an IPv4 address", g->host);
        snprintf(g->host_header[i], sizeof g->host_header[i], "%s:%d", g->host, g->ports[i]);
    }
    if (!g->bind_ip && (ntohl(g->server_addr[0].sin_addr.s_addr) >> 24) == 127)
        g->bind_ip = "127.0.0.1";
    if (g->bind_ip && inet_pton(AF_INET, g->bind_ip, &g->next_source) != 1)
        die("--bind-ip %s is not an IPv4 address", g->bind_ip);
    g->rng = (uint64_t)srv_mono_ns() | 1;

    load_tokens(g);

    /* one fd per connection: take the hard limit */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
            fprintf(stderr, "loadgen: cannot raise RLIMIT_NOFILE: %s\n", strerror(errno));
        if (rl.rlim_cur != RLIM_INFINITY && (rlim_t)g->n_members + 16 > rl.rlim_cur)
            fprintf(stderr, "loadgen: warning: %d connections but only %llu file descriptors\n",
                    g->n_members, (unsigned long long)rl.rlim_cur);
    }

    int fifo_cap = g->mode == MODE_IDLE ? 2 : g->mode == MODE_CLOSED ? g->window + 2 : 64;
    for (int i = 0; i < g->n_rooms; i++) {
        room *r = &g->rooms[i];
        r->view_common = -1;
        r->step_index = -1;
        r->actor = -1;
        if (g->mode == MODE_OPEN) {
            r->arrivals = calloc(ROLES * ARRIVAL_RING, sizeof *r->arrivals);
            r->own = calloc(ROLES * ARRIVAL_RING, sizeof *r->own);
            if (!r->arrivals || !r->own)
                die("out of memory");
        }
        for (int k = 0; k < ROLES; k++) {
            member *m = &r->m[k];
            m->gen = g;
            m->room = r;
            m->role = k;
            m->ws.fd = -1;
            m->state = M_UNSTARTED;
            m->fifo_cap = fifo_cap;
            m->fifo = calloc((size_t)fifo_cap, sizeof *m->fifo);
            if (!m->fifo)
                die("out of memory");
        }
    }
    g->epfd = epoll_create1(EPOLL_CLOEXEC);
    g->scratch = malloc(READ_SCRATCH);
    if (g->epfd < 0 || !g->scratch)
        die("epoll_create1 or malloc failed");

    printf("loadgen: mode %s, server %s:%d%s%s%s\n",
           g->mode == MODE_IDLE     ? "idle"
           : g->mode == MODE_CLOSED ? "closed"
                                    : "open",
           g->host, g->ports[0], g->n_ports > 1 ? " and more (rooms spread over the ports)" : "",
           g->bind_ip ? ", from " : "", g->bind_ip ? g->bind_ip : "");
    if (g->bind_ip && g->per_source)
        printf("loadgen: %d connections per source address from %s on\n", g->per_source,
               g->bind_ip);
    fflush(stdout);
    switch (g->mode) {
    case MODE_IDLE:
        run_idle(g);
        break;
    case MODE_CLOSED:
        run_closed(g);
        break;
    case MODE_OPEN:
        run_open(g);
        break;
    }
    fflush(stdout);
    teardown(g);

    int ok = g->ready > 0;
    for (int i = 0; i < g->n_rooms; i++) {
        for (int k = 0; k < ROLES; k++) {
            free(g->rooms[i].token[k]);
            free(g->rooms[i].m[k].fifo);
        }
        free(g->rooms[i].arrivals);
        free(g->rooms[i].own);
    }
    free(g->rooms);
    free(g->scratch);
    free(g->checkin_answers);
    close(g->epfd);
    bench_scripts_free(&g->scripts);
    bench_latency_free(&g->delivery);
    bench_latency_free(&g->ack_latency);
    bench_latency_free(&g->send_lateness);
    SSL_CTX_free(g->tls);
    free(g);
    return ok ? 0 : 1;
}
