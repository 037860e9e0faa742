/* server.h - the live server: connections, rooms and their commit cycle.
 *
 * Thread map. Everything declared here runs on the lws service thread
 * (one thread, lws on its libev event loop) unless marked otherwise. The
 * store thread (store_sqlite.c) only commits batches and calls
 * srv_server_wake (which calls lws_cancel_service, the one lws function that
 * is safe from another thread). The signal thread (main.c) only sets
 * `stop_requested` and calls srv_server_wake.
 *
 * Ownership. srv_server owns the catalog, the store, the rooms (freed at
 * exit) and the list of connections. A srv_conn is lws' per-session data
 * (lws allocates and frees it); it is linked into its room while a member
 * and unlinked in LWS_CALLBACK_CLOSED. A srv_job owns the command message
 * its events borrow from and the encoded payloads; the store borrows the
 * job's batch until the completion comes back. Jobs and deferred replies
 * name their sender by connection id, never by pointer, so a connection
 * can close while its command is being committed.
 *
 * The room cycle (durable before visible): a command is decided against the
 * room's live state; its events are folded into `live` at once (so the next
 * command sees them), encoded and queued to the store. Nothing reaches a
 * socket until the store reports the commit; then the events are folded
 * into `durable`, the sender gets its ack and every member the events it may
 * see plus a fresh state (built from `durable`). */
#ifndef SRV_SERVER_H
#define SRV_SERVER_H

#include <libwebsockets.h>
#include <stdatomic.h>
#include <stdint.h>
#include "attune/catalog.h"
#include "attune/msg.h"
#include "attune/room.h"
#include "clock.h"
#include "config.h"
#include "frame.h"
#include "log.h"
#include "metrics.h"
#include "store.h"
#include "token.h"

#define SRV_SUBPROTOCOL "attune.v1"
#define SRV_WS_PATH "/ws"
/* Close codes (RFC 6455 and the application range). */
#define SRV_CLOSE_GOING_AWAY 1001
#define SRV_CLOSE_POLICY 1008
#define SRV_CLOSE_TOO_BIG 1009
#define SRV_CLOSE_INTERNAL 1011
#define SRV_CLOSE_BAD_TOKEN 4401
#define SRV_CLOSE_HELLO_TIMEOUT 4408
#define SRV_CLOSE_REPLACED 4409
/* Keepalive: a peer silent for --ping-interval seconds gets a ping; one
 * still silent half an interval after the ping (at most this much, and at
 * least one sweep) is reaped as half-open. */
#define SRV_PONG_GRACE_MS 15000
/* How often the sweep checks hello deadlines and keepalive. */
#define SRV_SWEEP_MS 1000
/* Events replayed per WRITEABLE turn while a member catches up. */
#define SRV_REPLAY_CHUNK 64
/* Most bytes one WRITEABLE sends (queued frames packed together, see
 * srv_sendq_pack); also lws' per-send() cap for the protocol, so a packed
 * batch leaves in one send() rather than rx_buffer_size pieces. */
#define SRV_TX_BATCH_BYTES 65536

typedef struct srv_server srv_server;
typedef struct srv_room srv_room;

/* Where one audience's numbering meets the room log: the room seqs of the
 * events hidden from it, ascending, so a partner's resume_from (which counts
 * only what it may see) finds its place in the log. Owned by its room. */
typedef struct {
    int64_t *seqs;
    size_t n, cap;
} srv_aud_index;

typedef enum { CONN_AWAIT_HELLO, CONN_MEMBER, CONN_CLOSING } srv_conn_state;

typedef struct srv_conn {
    struct lws *wsi;
    srv_server *srv;
    uint64_t id;
    srv_conn_state state;
    lws_dll2_t all_link;  /* srv->conns */
    srv_room *room;       /* set while a member */
    lws_dll2_t room_link; /* room->members */
    att_role role;
    /* Timers, checked by the server's once-a-second sweep (server.c) rather
     * than a sul each: lws keeps suls in a sorted list, an O(n) insert. All
     * in ms of lws_now_usecs' monotonic clock. */
    int64_t hello_deadline_ms; /* AWAIT_HELLO: closed 4408 from then on */
    int64_t heard_at_ms;       /* last frame (data or pong) from the peer */
    int ping_due;              /* the next WRITEABLE sends a ping */
    int64_t ping_sent_ms;      /* when the sweep pinged it since, or 0 */
    srv_sendq q;
    /* reassembly of one incoming message */
    char *rx;
    size_t rx_len, rx_cap;
    int rx_binary;
    /* token bucket */
    double tokens;
    lws_usec_t tokens_at;
    /* catching up from the store after hello: events with (room) seq >
     * replay_after are read from the log until it reaches the room's durable
     * seq; replay_aud is the last seq sent in this role's own numbering */
    int replaying;
    int64_t replay_after;
    int64_t replay_aud;
    /* a close decided outside this wsi's callback */
    int close_code;
    att_left_reason leave_reason;
    /* What let it in (invites.h, tickets.h): the invitation record of its
     * link (0 for none), or the login session of its staff ticket (0 for
     * none), so a revoke or a logout finds the connections to close. */
    int64_t invite_id;
    uint64_t login_session;
} srv_conn;

typedef struct srv_job {
    srv_store_batch batch; /* batch.owner == this job */
    lws_dll2_t link;       /* room->jobs, in submission order */
    srv_room *room;
    uint64_t sender; /* connection id, 0 for presence and clock events */
    int has_id;
    char id[ATT_MAX_ID_BYTES + 1];
    int generation;
    att_msg msg; /* owned; events borrow from it */
    int has_msg;
    att_event events[ATT_MAX_EVENTS_PER_COMMAND];
    int n;
    char *payload[ATT_MAX_EVENTS_PER_COMMAND]; /* owned, encoded event objects */
    struct srv_deferred *deferred, **deferred_tail;
} srv_job;

/* A reply that must not overtake the room's in-flight commits. */
typedef struct srv_deferred {
    struct srv_deferred *next;
    uint64_t conn_id;
    srv_frame *frame; /* owned reference */
} srv_deferred;

/* A token bucket of events (rooms.c: the rate limits). */
typedef struct {
    double tokens;
    int64_t at; /* ms of the last refill; 0: never used (full) */
} srv_bucket;

/* One seat's presence and rate (rooms.c): partner_a, partner_b, the
 * therapist, the observers together. */
typedef struct {
    int pending_lefts; /* gone, `left` not recorded yet (observers: several) */
    int64_t left_at;   /* when the first of them went (ms) */
    att_left_reason left_reason;
    int tally_times;      /* returns within the window, not recorded yet */
    int64_t tally_gap_ms; /* their time away, in all */
    int64_t tally_since;  /* the first of them (ms) */
    int64_t replaced_at;  /* the seat's last recorded `replaced` (ms), 0 for none */
    /* observers: joined recorded in the window since joins_since, and live
     * connections past that budget whose joined (and left) go unrecorded */
    int window_joins;
    int64_t joins_since;
    int unrecorded_live;
    srv_bucket bucket; /* --link-events-per-minute */
} srv_seat;

/* A room's seats and its own rate, allocated when first written (a leave,
 * an observer's join, a takeover, a command under a rate limit): a hello
 * writes nothing here, so the idle benchmark's 6,334 rooms do not carry
 * 432 bytes each (+144 bytes per idle connection). Owned by the room. */
typedef struct {
    srv_seat seat[ATT_AUDIENCES];
    srv_bucket room_bucket; /* --room-events-per-minute */
} srv_room_seats;

/* Events past --room-event-cap that the therapist and presence may still
 * add (a full room can still be ended and noted). */
#define SRV_LOG_RESERVE 1000
/* Observers' `joined` recorded per presence window; more connections in it
 * are counted in the seat's `reconnected` (parallel observer connections
 * are not replaced, so a loop of them would otherwise fill the log). */
#define SRV_OBSERVER_JOINS_PER_WINDOW 4

struct srv_room {
    srv_room *hash_next;
    srv_server *srv;
    char id[ATT_ROOM_ID_BYTES + 1];
    const att_script *script;
    att_room *live; /* durable + in-flight events; NULL when nothing is in flight */
    int generation; /* bumped when the room is rebuilt from the store */
    lws_dll2_owner_t members;
    srv_conn *slot[3]; /* partner_a, partner_b, therapist */
    lws_dll2_owner_t jobs;
    lws_sorted_usec_list_t deadline_sul;
    int64_t deadline_armed; /* ms, -1 when unarmed */
    int64_t deadline_spent; /* a deadline whose tick raised nothing, -1 */
    int state_dirty;
    unsigned state_audience; /* audiences that saw an event since the last state */
    lws_dll2_t dirty_link;
    int64_t composing_at; /* the actor's last `typing` (ms), 0 for none: not silence */
    srv_aud_index aud_index[ATT_AUDIENCES]; /* the therapist's stays empty: identity */
    /* Debounced presence and the rate limits, by seat (rooms.c). */
    srv_room_seats *seats;               /* NULL until first written (rooms.c) */
    lws_sorted_usec_list_t presence_sul; /* the next pending left or reconnected */
    int64_t presence_armed;              /* ms, 0 when unarmed */
    /* Monotonic ms since which the room has been evictable (srv_rooms_sweep),
     * 0 while it is not: nobody in it, nothing in flight, no timer pending. */
    int64_t quiet_since_ms;
    /* Last, so a new room clears only what comes before it and att_room_init
     * clears only the room's head: an idle room's rupture array stays
     * untouched and out of RSS. */
    att_room durable; /* fold of the committed log */
};

#define SRV_SPARE_LIVE 64
#define SRV_WARM_BATCH 64                /* rooms srv_rooms_warm checks per tick */
#define SRV_WARM_BUDGET_NS 2000000       /* and folds for at most (2 ms of 50), */
#define SRV_WARM_IDLE_BUDGET_NS 20000000 /* or 20 ms while nobody is connected; */
#define SRV_WARM_MAX_EVENTS 200          /* it folds logs this long at most (~2 ms), */
#define SRV_WARM_IDLE_MAX_EVENTS 2000    /* or this long while nobody is connected */

struct srv_server {
    const srv_config *cfg;
    struct lws_context *ctx;
    struct lws_vhost *vhost;
    att_catalog *catalog;
    srv_store *store;
    srv_token_key key;
    struct srv_invites *invites; /* invites.h: the links' records */
    int64_t invites_rev;         /* the last revocation the sweep acted on */
    struct srv_tickets *tickets; /* tickets.h: staff tickets for the live views */
    struct srv_api *api;         /* api.c: accounts, login sessions, login limits */
    struct srv_review *review;   /* review.h: the session log's worker thread */
    srv_metrics metrics;
    srv_room **room_table;
    size_t room_buckets;
    lws_dll2_owner_t conns;
    lws_dll2_owner_t dirty_rooms;
    /* Freed `live` copies kept for the next room that gets busy: a turn in
     * an idle room would otherwise malloc and free a whole att_room, and
     * glibc's free of a chunk that size consolidates the heap. */
    att_room *spare_live[SRV_SPARE_LIVE];
    int n_spare_live;
    /* Summaries waiting to be written to the store's cache (rooms.c). */
    struct srv_pending_summary *pending_summaries;
    size_t n_pending_summaries, cap_pending_summaries;
    int64_t warm_flushed_ns; /* srv_rooms_warm: when it last wrote the summaries cache */
    /* srv_rooms_warm: the last room id checked, done when it passed the end. */
    char warm_cursor[ATT_ROOM_ID_BYTES + 1];
    int warm_done;
    uint64_t warm_folded, warm_skipped;
    /* Service thread's scratch for packing frames (LWS_PRE headroom, then
     * SRV_TX_BATCH_BYTES); lws sends or copies it before lws_write returns. */
    unsigned char *tx_buf;
    att_buf state_scratch; /* service thread: srv_state_frame writes here */
    uint64_t next_conn_id;
    atomic_int stop_requested; /* any thread */
    int stopping;
    int clients_told;
    int loop_done;
    lws_sorted_usec_list_t stop_sul;
    lws_sorted_usec_list_t heartbeat_sul;
    int64_t next_sweep_ms;      /* monotonic ms; the heartbeat sweeps from then */
    int64_t next_link_sweep_ms; /* monotonic ms; links.c looks for ended links then */
    int64_t stop_deadline_ms;
    /* Connections and accepts (http.c, peer.h): open connections per
     * client address; the listen socket's wsi, to pause accepts after an
     * accept() failure, and the sul that resumes them; --max-conns fitted
     * to the open-file limit; connection refusals logged once a second. */
    struct srv_peer_counts *peers;
    struct lws *listen_wsi;
    int accepts_paused;
    lws_sorted_usec_list_t accept_sul;
    int max_conns;
    srv_log_limiter refusal_log;
};

/* ---- rooms.c ---- */
int srv_rooms_init(srv_server *srv, att_error *err);
void srv_rooms_free(srv_server *srv);
/* Finds a room in memory or loads it from the store (fold of its log).
 * NULL with err set (not_found) when it does not exist. Rooms are loaded
 * when first needed (a hello, an API request), never all at start-up; a
 * loaded room whose log still shows members present (the server that held
 * it crashed: nobody can be connected to a room that is not in memory)
 * gets their `left` (reason shutdown) at once. The pointer is valid until
 * the service thread returns to the loop: a room may be evicted by the next
 * sweep unless a member, a job or a timer holds it (srv_rooms_sweep). */
srv_room *srv_room_get(srv_server *srv, const char *id, att_error *err);
/* The room if it is in memory, else NULL (never loads). */
srv_room *srv_room_find(srv_server *srv, const char *id);
/* Service thread, once a second (the heartbeat's sweep, monotonic ms):
 * frees rooms that have been quiet (no members, no jobs in flight, no
 * pending deadline, nobody present in the log) for --room-evict-s (ended
 * sessions) or --room-idle-evict-s (others), storing each one's summary
 * first. Nothing keeps a srv_room * across a return to the loop but
 * members (conn->room), jobs (job->room) and the room's own timer, and all
 * of those keep the room from being quiet. */
void srv_rooms_sweep(srv_server *srv, int64_t now_ms);
/* The HTTP.md summary of a room (GET /api/rooms): from its state when it
 * is in memory, else from the store's summaries cache when that is current,
 * else folded aside (not kept in memory) and cached at the next
 * srv_rooms_flush_summaries. NULL with err set (not_found when no room). */
json_t *srv_room_summary_by_id(srv_server *srv, const char *id, att_error *err);
/* The same as JSON text (malloc'd, length in *len): a cached summary is
 * returned as stored, never parsed (the room list splices these). */
char *srv_room_summary_text_by_id(srv_server *srv, const char *id, size_t *len, att_error *err);
/* The summary of a room in memory, from its committed state. */
json_t *srv_room_summary(srv_server *srv, srv_room *room, att_error *err);
/* Writes the summaries waiting to be cached (one transaction). */
void srv_rooms_flush_summaries(srv_server *srv);
/* Heartbeat (every 50 ms) after start-up, until done: walks the stored rooms
 * SRV_WARM_BATCH at a time in id order and folds aside those whose cached
 * summary is missing or stale (an old database's rooms, a crash's rooms),
 * spending at most SRV_WARM_BUDGET_NS per tick (SRV_WARM_IDLE_BUDGET_NS
 * while no room has a member, as just after a restart), so the first list
 * after an upgrade does not fold them all at once. A fold is never cut
 * short, so it folds only logs of at most SRV_WARM_MAX_EVENTS
 * (SRV_WARM_IDLE_MAX_EVENTS while nobody is connected); longer ones wait
 * for their first need. A room found with members present (a crash) is
 * loaded, which records their `left`. */
void srv_rooms_warm(srv_server *srv);
/* Caches the summary of every room in memory (after the loop, at stop), so
 * the next start describes them without folding. */
void srv_rooms_save_summaries(srv_server *srv);
/* Folds a room's whole log into `out` (also used by --verify); when index is
 * not NULL (an array of ATT_AUDIENCES, emptied first) it also records where
 * each audience's numbering meets the log. */
int srv_room_fold_log(srv_store *store, const att_catalog *cat, const srv_config *cfg,
                      const char *room_id, att_room *out, const att_script **script_out,
                      srv_aud_index *index, att_error *err);
/* The room seq after which a member of `role` resuming from its own seq
 * `aud_seq` continues (the room seq of its event aud_seq; 0 for 0). */
int64_t srv_room_resume_point(const srv_room *room, att_role role, int64_t aud_seq);
/* The state commands are decided against. */
const att_room *srv_room_live(const srv_room *room);
/* A member's command (anything but hello and ping). Consumes *msg. */
void srv_room_command(srv_room *room, srv_conn *conn, att_msg *msg);
/* A reply to conn that keeps its place behind the room's in-flight commits.
 * Consumes the frame reference. */
void srv_room_reply(srv_room *room, srv_conn *conn, srv_frame *frame);
/* Membership: attach after a good hello (replaces an older connection of
 * the same role), detach on close (records `left` unless replaced). */
void srv_room_attach(srv_room *room, srv_conn *conn);
void srv_room_detach(srv_room *room, srv_conn *conn, int record_leave);
/* 1 when nothing holds the room in memory: no member, no job in flight, no
 * detector deadline and no presence pending (a `left` waiting out its window
 * or returns not yet recorded). A room that is not idle must not be freed. */
int srv_room_idle(const srv_room *room);
/* Records `left` (reason shutdown) for every member of every room. */
void srv_rooms_leave_all(srv_server *srv);
/* Handles every completed store batch (WAIT_CANCELLED). */
void srv_rooms_on_store_completions(srv_server *srv);
/* Jobs still waiting for the store. */
int srv_rooms_jobs_in_flight(const srv_server *srv);
/* The hello ack for conn (protocol, room, role, exercise, vocab, consent,
 * last_seq). NULL on allocation failure. */
srv_frame *srv_room_hello_ack(srv_room *room, att_role role, const char *id);

/* ---- conn.c ---- */
/* Queues a frame (takes a new reference); enforces the queue bound. */
void srv_conn_send(srv_conn *conn, srv_frame *frame);
/* Queues an error reply {"type":"error",...}; counts it by code. */
void srv_conn_send_error(srv_conn *conn, const char *id, att_code code, const char *message);
/* Starts a close from anywhere on the service thread: drops queued frames,
 * queues bye(reason) when reason is not NULL, closes with code once it is
 * written. The member's `left` event (if any) gets leave_reason. */
void srv_conn_begin_close(srv_conn *conn, int code, const char *bye_reason,
                          att_left_reason leave_reason);
/* Queues the next chunk of the catch-up replay (and the state at its end). */
void srv_conn_replay_step(srv_conn *conn);
/* Frame for a viewer's state (`you` = its role), written through
 * srv->state_scratch (service thread). NULL on failure. */
srv_frame *srv_state_frame(srv_server *srv, const att_room *room, att_role viewer);
/* 1 when the token bucket allows one more message now. */
int srv_conn_rate_take(srv_conn *conn);
/* The peer was heard from (any frame, pong included). */
void srv_conn_heard(srv_conn *conn);
/* One pass over every connection at now_ms (monotonic): closes those past
 * their hello deadline (4408), pings the quiet ones, reaps the ones that
 * stayed silent after a ping. */
void srv_conns_sweep(srv_server *srv, int64_t now_ms);

/* ---- links.c ---- */
/* Creates the staff tickets and hooks the login sessions' end (after
 * srv_api_open); srv_links_close frees them. */
int srv_links_open(srv_server *srv, att_error *err);
void srv_links_close(srv_server *srv);
/* 1 when a partner's link into room has ended: its session ended more than
 * --link-grace ago (now_ms: srv_now_ms). */
int srv_links_partner_expired(const srv_server *srv, const srv_room *room, att_role role,
                              int64_t now_ms);
/* Closes (4401, bye `revoked`) the connections of links revoked since the
 * last call, by this process or another (one indexed query when none). */
void srv_links_close_revoked(srv_server *srv);
/* Closes (4401, bye `logged_out`) the staff connections of a login session
 * that ended. */
void srv_links_close_session(srv_server *srv, uint64_t session_id);
/* Closes (4401, bye `revoked`) an account's observer views of a room (the
 * therapist took the supervisor's invitation back). */
void srv_links_close_observer(srv_server *srv, const char *room_id, int64_t account_id);
/* Heartbeat, every SRV_SWEEP_MS: revocations; every few seconds, partner
 * links past their grace (4401, bye `session_ended`). */
void srv_links_sweep(srv_server *srv, int64_t mono_ms);

/* ---- ws.c / http.c ---- */
int srv_ws_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len);
int srv_http_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                      size_t len);
/* 1 when the request's Origin may use this server (none sent, an --origin,
 * or the server's own host); the WebSocket upgrade and /api POSTs use it. */
int srv_http_origin_allowed(struct lws *wsi, const srv_config *cfg);
/* The request's (or upgraded connection's) client address (peer.h: the
 * TCP peer, or X-Forwarded-For's from a --trusted-proxy). */
void srv_http_client_addr(struct lws *wsi, const srv_config *cfg, char out[SRV_PEER_ADDR_MAX]);
/* 1 when the Host header names this server (--public-url's host, an
 * --allowed-host, or loopback when listening on loopback). */
int srv_http_host_allowed(struct lws *wsi, const srv_config *cfg);
/* The client address a connection is counted under (after the upgrade,
 * when the request's headers are gone), or "" when it is not counted. */
const char *srv_http_conn_addr(struct lws *wsi);

/* ---- server.c ---- */
/* Any thread: wakes the service loop (lws_cancel_service). */
void srv_server_wake(void *srv);
/* Prepares the server (catalog, key, store) without serving. */
int srv_server_open(srv_server *srv, const srv_config *cfg, att_error *err);
/* Creates the lws context (libev), recovers every room, serves until a stop
 * request has been carried out. `ready` (may be NULL) runs once listening. */
int srv_server_run(srv_server *srv, void (*ready)(srv_server *srv, void *arg), void *arg,
                   att_error *err);
/* Frees everything srv_server_open created (flushes the store first). */
void srv_server_close(srv_server *srv);
/* Service thread: stop accepting, record `left`, wait for the store, close
 * every client with 1001 and leave the loop. */
void srv_server_begin_stop(srv_server *srv);

#endif
