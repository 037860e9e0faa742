/* rooms_impl.h - the room service's own structs, shared by rooms.c and
 * links.c; nothing outside server/rooms/ includes this (room_service.h is
 * the public face). Service thread only. */
#ifndef SRV_ROOMS_IMPL_H
#define SRV_ROOMS_IMPL_H

#include <assert.h>
#include <pthread.h>
#include "deadlines.h"
#include "room_service.h"

/* Every entry point asserts it runs on the thread srv_rooms_open recorded. */
#define SRV_ASSERT_SERVICE_THREAD(svc) assert(pthread_equal(pthread_self(), (svc)->thread))

/* Where one audience's numbering meets the room log: the room seqs of the
 * events hidden from it, ascending, so a partner's resume_from (which counts
 * only what it may see) finds its place in the log. Owned by its room. */
typedef struct {
    int64_t *seqs;
    size_t n, cap;
} srv_aud_index;

typedef struct srv_job {
    srv_store_batch batch; /* batch.owner == this job */
    srv_list_link link;    /* room->jobs, in submission order */
    srv_room *room;
    uint64_t sender; /* member id, 0 for presence and clock events */
    int has_id;
    char id[ATT_MAX_ID_BYTES + 1];
    int generation;
    att_msg msg; /* owned; events borrow from it */
    int has_msg;
    att_event events[ATT_MAX_EVENTS_PER_COMMAND];
    int n;
    char *payload[ATT_MAX_EVENTS_PER_COMMAND]; /* owned, encoded event objects */
    struct srv_deferred *deferred, **deferred_tail;
    /* resends of this job's command (same command id) that came while it
     * waited for its commit: each gets its outcome (rooms.c) */
    struct srv_resend *resends;
} srv_job;

/* A resent command waiting for the original's commit: who, and the id its
 * ack or error echoes. */
typedef struct srv_resend {
    struct srv_resend *next;
    uint64_t member_id;
    int has_id;
    char id[ATT_MAX_ID_BYTES + 1];
} srv_resend;

/* A reply that must not overtake the room's in-flight commits: its text,
 * kept until the job ahead of it completes. */
typedef struct srv_deferred {
    struct srv_deferred *next;
    uint64_t member_id;
    size_t len;
    char text[];
} srv_deferred;

/* A token bucket of events (rooms.c: the rate limits). */
typedef struct {
    double tokens;
    int64_t at; /* ms of the last refill; 0: never used (full) */
} srv_bucket;

/* One seat's presence and rate: partner_a, partner_b, the therapist, the
 * observers together. */
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
 * are counted in the seat's `reconnected`. */
#define SRV_OBSERVER_JOINS_PER_WINDOW 4

/* Whether this node still serves a room (issue 13, one writer per room).
 * A room that is going has no members (closed with SRV_CLOSE_ROOM_MOVED),
 * no timers, and is not handed to anyone (srv_rooms_get refuses it,
 * srv_rooms_find does not see it); it stays in the table only until the
 * store has handed back its jobs in flight (they borrow it), then
 * srv_rooms_sweep forgets it. */
typedef enum {
    SRV_ROOM_SERVING = 0,
    SRV_ROOM_HANDING_OFF, /* another node asked for it: released once forgotten */
    SRV_ROOM_LOST,        /* fenced, or this node's lease lapsed: not ours to release */
} srv_room_tenure;

struct srv_room {
    srv_room *hash_next;
    srv_rooms *svc;
    char id[ATT_ROOM_ID_BYTES + 1];
    const att_script *script;
    att_room *live; /* durable + in-flight events; NULL when nothing is in flight */
    int generation; /* bumped when the room is rebuilt from the store */
    srv_list members;
    srv_member *slot[3]; /* partner_a, partner_b, therapist */
    srv_list jobs;
    /* The detector's clock, armed lazily (see room_arm_deadline). */
    srv_deadline deadline;
    int64_t deadline_armed; /* ms, -1 when unarmed */
    int64_t deadline_spent; /* a deadline whose tick raised nothing, -1 */
    int state_dirty;
    unsigned state_audience; /* audiences that saw an event since the last state */
    srv_list_link dirty_link;
    int64_t composing_at; /* the actor's last `typing` (ms), 0 for none: not silence */
    srv_aud_index aud_index[ATT_AUDIENCES]; /* the therapist's stays empty: identity */
    srv_room_seats *seats;                  /* NULL until first written */
    srv_deadline presence;                  /* the next pending left or reconnected */
    int64_t presence_armed;                 /* ms, 0 when unarmed */
    /* Monotonic ms since which the room has been evictable, 0 while not. */
    int64_t quiet_since_ms;
    /* Several nodes: the committed state changed since this node last wrote
     * the room's summary to the shared store, where other nodes' dashboards
     * read it (srv_rooms_sweep writes it, at most once a sweep). */
    int summary_unshared;
    srv_room_tenure tenure;
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

struct srv_rooms {
    pthread_t thread; /* the service thread */
    srv_store *store;
    const att_catalog *catalog;
    struct srv_invites *invites;
    int64_t invites_rev; /* the last revocation the links sweep acted on */
    srv_metrics *metrics;
    srv_room_options opt;
    srv_room **room_table;
    size_t room_buckets;
    srv_list dirty_rooms;
    srv_deadlines deadlines;
    srv_outbox outbox;
    int stopping;
    /* Freed `live` copies kept for the next room that gets busy: a turn in
     * an idle room would otherwise malloc and free a whole att_room, and
     * glibc's free of a chunk that size consolidates the heap. */
    att_room *spare_live[SRV_SPARE_LIVE];
    int n_spare_live;
    /* Summaries waiting to be written to the store's cache. */
    struct srv_pending_summary *pending_summaries;
    size_t n_pending_summaries, cap_pending_summaries;
    int64_t warm_flushed_ns; /* srv_rooms_warm: when it last wrote the summaries cache */
    char warm_cursor[ATT_ROOM_ID_BYTES + 1];
    int warm_done;
    uint64_t warm_folded, warm_skipped;
    int64_t next_link_sweep_ms; /* monotonic ms; links.c looks for ended links then */
    int fence_nth;              /* testing: srv_rooms_fence_nth_completion */
};

/* Asks the shell to close m (links.c, rooms.c). */
void srv_rooms_close_member(srv_rooms *svc, srv_member *m, int code, const char *bye,
                            att_left_reason leave);

#endif
