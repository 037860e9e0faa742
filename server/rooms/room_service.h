/* room_service.h - the room service: live rooms, the commit cycle (decide,
 * store, fold, broadcast), visibility, the detector's and presence's
 * timers, recovery by folding the log, summaries and eviction. No
 * libwebsockets and no sockets: it reads and writes the store, and talks to
 * connections only through its outbox (outbox.h), which the network shell
 * drains after every call.
 *
 * Threads. Everything here runs on ONE thread, the service thread (in the
 * server, lws' service thread; in the unit tests, the test's), recorded by
 * srv_rooms_open and asserted on entry. The store thread commits batches
 * and wakes the shell, which calls srv_rooms_on_store_completions here.
 *
 * Ownership. srv_rooms owns the rooms (freed with it, or when evicted), the
 * jobs in flight (each owns its command message and encoded payloads; the
 * store borrows a job's batch until it comes back), the deferred replies,
 * the outbox and the deadline heap. A srv_member belongs to the shell (it
 * is embedded in its connection) but its fields are the service's: the
 * shell fills `id` once, sets `closing` (and clears `replaying`) when it
 * starts closing the connection itself, and otherwise only passes it in. Jobs and deferred
 * replies name their sender by member id, never by pointer, so a member can
 * go while its command is being committed. A srv_room * is valid until the
 * service thread returns to its loop: a quiet room may be evicted by the
 * next srv_rooms_sweep unless a member, a job or a timer holds it.
 *
 * A room's life (struct srv_room, rooms.c):
 *
 *   +----------+  srv_rooms_get: fold_log   +---------+
 *   | unloaded |--------------------------->| folding |
 *   +----------+                            +---------+
 *        ^                                       |  clear_stale_presence
 *        |                                       v  (a crash's `left`)
 *        |                                  +---------+  complete_job: the  +------------+
 *        |                                  |  live   |  commit failed      | rebuilding |
 *        |                                  |         |-------------------->|            |
 *        |                                  |         |<--------------------|            |
 *        |                                  +---------+  room_rebuild:      +------------+
 *        |             room_quiet, seen by    |     ^    fold_log again,
 *        |             srv_rooms_sweep        v     |    generation++
 *        |                                  +---------+
 *        +----------------------------------|  quiet  |  a member, a job or a timer
 *          srv_rooms_sweep after            +---------+  (srv_room_join, room_submit,
 *          --room-evict-s (ended) or                      room_arm_deadline, presence_arm)
 *          --room-idle-evict-s: summary
 *          cached (pending_add), room_free
 *
 * A command's life (durable before visible; srv_job, rooms.c):
 *
 *   decided (srv_room_command: att_engine_decide, room_admit)
 *      |  refused or nothing to record: error or ack through room_reply,
 *      |  kept behind the room's in-flight jobs ------------------> replied
 *      v  room_submit: folded into `live`, encoded, srv_store_append
 *   stored (on room->jobs; nothing of it has reached anyone)
 *      |  the store thread commits; srv_rooms_on_store_completions
 *      v  -> complete_job: folded into `durable`, audience seqs known
 *   durable
 *      |  complete_job: ack to the sender, broadcast_events (each event
 *      v  to the audiences that may see it), deferred replies, mark_dirty
 *   broadcast
 *      |  srv_rooms_on_store_completions -> broadcast_state (one state
 *      v  per audience that saw an event since the last)
 *   stated
 *
 *   stored --complete_job: the batch failed--> failed (`internal` to the
 *      sender) --room_rebuild: durable folded again from the store,
 *      generation++ (jobs of the old generation are not re-folded)--> rebuilt
 *
 * One writer per room (issue 13; store.h's leases, always granted by the
 * SQLite store). srv_rooms_get folds a room only once this node holds its
 * lease (srv_store_acquire_room). A serving room stops being served (its
 * members closed with bye room_moved, SRV_CLOSE_ROOM_MOVED, recording
 * nothing; its timers stopped; srv_rooms_find no longer sees it) when a
 * batch of it comes back fenced (another node took it over), when another
 * node asks for it (srv_store_take_wanted, looked at by srv_rooms_sweep),
 * or when this node's own lease lapses (srv_store_node_alive); once the
 * store has handed back its jobs in flight (dropped: no ack, no broadcast,
 * no rebuild) srv_rooms_sweep forgets it, releasing its lease unless it
 * was lost. Eviction and erasing release the lease too.
 *
 * Invariants (asserted, in every build type: rooms/CMakeLists.txt): every
 * entry point runs on the service thread (SRV_ASSERT_SERVICE_THREAD); a
 * command's first event is the live seq + 1 (room_submit); a member joins
 * and commands as a seat (partner_a, partner_b, therapist, observer). A
 * commit whose first seq is not the durable seq + 1 is not an assert but a
 * diverged log: complete_job rebuilds and makes every member resync. */
#ifndef SRV_ROOM_SERVICE_H
#define SRV_ROOM_SERVICE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include "attune/catalog.h"
#include "attune/msg.h"
#include "attune/room.h"
#include "list.h"
#include "metrics.h"
#include "outbox.h"
#include "store.h"

/* Close codes (RFC 6455 and the application range). */
#define SRV_CLOSE_GOING_AWAY 1001
#define SRV_CLOSE_POLICY 1008
#define SRV_CLOSE_TOO_BIG 1009
#define SRV_CLOSE_INTERNAL 1011
#define SRV_CLOSE_BAD_TOKEN 4401
#define SRV_CLOSE_HELLO_TIMEOUT 4408
#define SRV_CLOSE_REPLACED 4409
/* The room is served by another node now, or is moving there (a takeover
 * fenced this node's appends, another node asked for it, this node lost
 * its own lease, or it is held elsewhere and was asked for): reconnect with
 * the same link after the usual backoff (PROTOCOL.md, bye room_moved). */
#define SRV_CLOSE_ROOM_MOVED 4503
/* The bye reason sent with SRV_CLOSE_ROOM_MOVED. */
#define SRV_BYE_ROOM_MOVED "room_moved"
/* A hello whose link or ticket is for another room than the URL's
 * /ws?room=: closed SRV_CLOSE_BAD_TOKEN with this bye (final, as a bad
 * link is: a wrong route must never join a room). */
#define SRV_BYE_WRONG_ROOM "wrong_room"

/* Events replayed per catch-up step while a member catches up. */
#define SRV_REPLAY_CHUNK 64
/* How often the shell calls srv_rooms_sweep and srv_rooms_links_sweep. */
#define SRV_SWEEP_MS 1000

typedef struct srv_rooms srv_rooms;
typedef struct srv_room srv_room;
struct srv_invites;

/* One connection as the room service knows it (see Ownership above). */
typedef struct srv_member {
    uint64_t id;        /* the shell's connection id, never 0 */
    att_role role;      /* a seat while in a room */
    srv_room *room;     /* set while a member */
    srv_list_link link; /* room->members */
    int closing;        /* going away: a close was asked for or begun */
    /* Catching up from the store after hello: events with (room) seq >
     * replay_after are read from the log until it reaches the room's
     * durable seq; replay_aud is the last seq sent in the role's numbering. */
    int replaying;
    int64_t replay_after;
    int64_t replay_aud;
    /* What let it in (invites.h, tickets.h): its link's invitation record
     * (0 for none), or its staff ticket's login session and account (0 for
     * none), so a revoke, a logout or an observer taken back finds it. */
    int64_t invite_id;
    uint64_t login_session;
    int64_t account_id;
} srv_member;

/* The server's settings the rooms follow (filled from srv_config by the
 * shell). */
typedef struct {
    att_room_config room; /* the detector's clocks (silence, disconnect grace) */
    int room_event_cap;
    int link_events_per_minute;
    int room_events_per_minute;
    int presence_debounce_ms;
    int room_evict_s;
    int room_idle_evict_s;
    int link_grace_s;
    size_t max_queue_bytes; /* a member's send-queue bound (catch-up pauses at half) */
} srv_room_options;

/* What the service works with; borrowed, outliving the service. */
typedef struct {
    srv_store *store;
    const att_catalog *catalog;
    struct srv_invites *invites; /* the links' records (revocations) */
    srv_metrics *metrics;        /* the counters it keeps */
    srv_room_options options;
} srv_rooms_deps;

/* ---- the service ---- */
/* Records the calling thread as the service thread. */
int srv_rooms_open(const srv_rooms_deps *deps, srv_rooms **out, att_error *err);
void srv_rooms_free(srv_rooms *svc);
/* What the calls since the last drain asked of the connections. */
srv_outbox *srv_rooms_outbox(srv_rooms *svc);
/* From here on nothing new is recorded for presence (the shell is
 * stopping: srv_rooms_leave_all records what is left). */
void srv_rooms_set_stopping(srv_rooms *svc);
/* Wall ms of the earliest deadline (detector or presence), -1 for none:
 * the shell arms one timer for it and calls srv_rooms_tick then. */
int64_t srv_rooms_next_deadline(const srv_rooms *svc);
/* Fires every deadline due at now_ms (wall). */
void srv_rooms_tick(srv_rooms *svc, int64_t now_ms);
/* Handles every completed store batch (the store woke the shell). */
void srv_rooms_on_store_completions(srv_rooms *svc);
/* Jobs still waiting for the store. */
int srv_rooms_jobs_in_flight(const srv_rooms *svc);
/* Testing: the nth store completion from now (1 = the next) is taken as
 * fenced (result < 0, fenced = 1), as a store several nodes share reports a
 * takeover; 0 disables. */
void srv_rooms_fence_nth_completion(srv_rooms *svc, int nth);
/* Records `left` (reason shutdown) for every member of every room. */
void srv_rooms_leave_all(srv_rooms *svc);

/* ---- rooms ---- */
/* Finds a room in memory or loads it from the store (fold of its log,
 * under the room's lease). NULL with err set: not_found when it does not
 * exist; ATT_ERR_ROOM_BUSY when another live node holds it or this node is
 * letting it go (the shell closes a hello's connection with bye
 * SRV_BYE_ROOM_MOVED and SRV_CLOSE_ROOM_MOVED: it reconnects after its
 * backoff, by when the room has moved). Rooms are loaded
 * when first needed (a hello, an API request), never all at start-up; a
 * loaded room whose log still shows members present (the server that held
 * it crashed) gets their `left` (reason shutdown) at once. */
srv_room *srv_rooms_get(srv_rooms *svc, const char *id, att_error *err);
/* The room if it is in memory, else NULL (never loads). */
srv_room *srv_rooms_find(srv_rooms *svc, const char *id);
const char *srv_room_id(const srv_room *room);
const att_script *srv_room_script(const srv_room *room);
/* The fold of the committed log (what members have been told). */
const att_room *srv_room_committed(const srv_room *room);
/* The state commands are decided against (committed + in flight). */
const att_room *srv_room_live(const srv_room *room);
/* 1 when nothing holds the room in memory: no member, no job in flight, no
 * detector deadline and no presence pending. */
int srv_room_idle(const srv_room *room);
/* The room seq after which a member of `role` resuming from its own seq
 * `aud_seq` continues (the room seq of its event aud_seq; 0 for 0). */
int64_t srv_room_resume_point(const srv_room *room, att_role role, int64_t aud_seq);
/* Once a second (monotonic ms): lets go of the rooms another node asked
 * for, or of every room when this node's lease lapsed (see One writer per
 * room above), forgets the rooms let go of whose jobs are back, and frees
 * rooms that have been quiet for --room-evict-s (ended sessions) or
 * --room-idle-evict-s (others), caching each one's summary first and
 * releasing their leases. */
void srv_rooms_sweep(srv_rooms *svc, int64_t now_ms);

/* Erasing a room (store/erase.h does the whole erase; this is the live
 * part, called first): closes every member (4401, bye `room_erased`,
 * recording nothing), stops the room's timers, drops its summary waiting
 * for the cache, and frees it from memory. 0 also when the room is not in
 * memory. ATT_ERR_ROOM_BUSY (nothing freed yet, members already closed)
 * while a commit of the room is still with the store: call again a moment
 * later. */
int srv_rooms_erase(srv_rooms *svc, const char *id, att_error *err);

/* ---- members ---- */
/* A good hello: queues the hello ack (id: the hello's), attaches m as
 * `role` (replacing an older connection of the same seat: closed 4409) and
 * starts its catch-up from its own seq resume_from. 0, or -1 when out of
 * memory (nothing attached; the shell answers `internal`). */
int srv_room_join(srv_rooms *svc, srv_room *room, srv_member *m, att_role role, const char *id,
                  int64_t resume_from);
/* The next chunk of m's catch-up (at most SRV_REPLAY_CHUNK events, and no
 * more than `budget` bytes: what its send queue may still take), then its
 * state. 1 while it is still catching up. */
int srv_room_replay_step(srv_rooms *svc, srv_member *m, size_t budget);
/* A member's command (anything but hello and ping). Consumes *msg. */
void srv_room_command(srv_rooms *svc, srv_member *m, att_msg *msg);
/* An ack (ping) or an error to a member, kept behind the room's in-flight
 * commits so it never overtakes them; errors are counted by code. */
void srv_room_reply_ack(srv_rooms *svc, srv_member *m, const char *id);
void srv_room_reply_error(srv_rooms *svc, srv_member *m, const char *id, att_code code,
                          const char *message);
/* m leaves its room (records `left` with `why` unless !record_leave or it
 * was replaced). */
void srv_room_detach(srv_rooms *svc, srv_member *m, att_left_reason why, int record_leave);
/* m's connection is going away: detaches it if it still is in a room and
 * drops whatever the outbox still holds for it. */
void srv_rooms_forget_member(srv_rooms *svc, srv_member *m, att_left_reason why, int record_leave);

/* ---- summaries ---- */
/* The HTTP.md summary of a room (GET /api/rooms): from its state when it
 * is in memory, else from the store's summaries cache when that is current,
 * else folded aside (not kept) and cached at the next flush. NULL with err
 * set (not_found when no room). */
json_t *srv_rooms_summary_by_id(srv_rooms *svc, const char *id, att_error *err);
/* The same as JSON text (malloc'd, length in *len): a cached summary is
 * returned as stored, never parsed. */
char *srv_rooms_summary_text_by_id(srv_rooms *svc, const char *id, size_t *len, att_error *err);
/* The summary of a room in memory, from its committed state. */
json_t *srv_room_summary(srv_rooms *svc, srv_room *room, att_error *err);
/* Writes the summaries waiting to be cached (one transaction). */
void srv_rooms_flush_summaries(srv_rooms *svc);
/* Every 50 ms after start-up until done: folds aside a few stored rooms
 * whose cached summary is missing or stale, within a time budget (see
 * SRV_WARM_* in rooms.c). */
void srv_rooms_warm(srv_rooms *svc);
/* Caches the summary of every room in memory (at stop). */
void srv_rooms_save_summaries(srv_rooms *svc);
/* ---- links (links.c): closing members whose way in has ended ---- */
/* 1 when a partner's link into room has ended: its session ended more than
 * --link-grace ago (now_ms: wall). */
int srv_rooms_partner_expired(const srv_rooms *svc, const srv_room *room, att_role role,
                              int64_t now_ms);
/* Closes (4401, bye `revoked`) the members of links revoked since the last
 * call, by this process or another (one indexed query when none). */
void srv_rooms_close_revoked(srv_rooms *svc);
/* Closes (4401, bye `logged_out`) the staff members of a login session. */
void srv_rooms_close_login_session(srv_rooms *svc, uint64_t session_id);
/* Closes (4401, bye `revoked`) an account's observer views of a room. */
void srv_rooms_close_observer(srv_rooms *svc, const char *room_id, int64_t account_id);
/* Every SRV_SWEEP_MS (monotonic ms): revocations; every few seconds,
 * partner links past their grace (4401, bye `session_ended`). */
void srv_rooms_links_sweep(srv_rooms *svc, int64_t mono_ms);

#endif
