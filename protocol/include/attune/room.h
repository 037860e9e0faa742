/* room.h - a room's state as a fold over its events, and the exercise engine
 * and rupture detector that turn commands (and clock ticks) into events.
 *
 * Pure: no I/O, no clock (callers pass `now`), no allocation. att_room is a
 * plain value (copyable with memcpy); it borrows the catalog and script, which
 * must outlive it. Events produced by att_room_decide borrow strings and the
 * input object from the command; the caller keeps the command alive until
 * the events are encoded.
 *
 * The server's cycle: decide (const) -> store + fold each event with
 * att_room_apply -> ack and broadcast. Replay and recovery call only
 * att_room_init + att_room_apply, so live, recovered and replayed rooms run
 * the very same code. */
#ifndef ATTUNE_ROOM_H
#define ATTUNE_ROOM_H

#include <jansson.h>
#include "attune/catalog.h"
#include "attune/event.h"
#include "attune/msg.h"

#define ATT_MAX_RUPTURES 128
#define ATT_ROOM_ID_BYTES 64
/* The most events one command or tick can produce. */
#define ATT_MAX_EVENTS_PER_COMMAND 8

typedef enum {
    ATT_STATUS_WAITING_CONSENT,
    ATT_STATUS_CHECKING_IN, /* the safety check-in (partners answer privately) */
    ATT_STATUS_ACTIVE,
    ATT_STATUS_PAUSED,
    ATT_STATUS_ENDED,
} att_status;

typedef enum { ATT_END_NONE, ATT_END_COMPLETED, ATT_END_THERAPIST } att_end_reason;

/* A rupture's status. Protocol 1 logs kept suspicions in the same array;
 * they fold into the suspicions now, so a rupture is open or repaired. */
typedef enum {
    ATT_RS_OPEN,
    ATT_RS_REPAIRED,
} att_rupture_status;

/* A suggestion of the detector's, seen only by the therapist (and an
 * observer) until the therapist confirms it into a rupture or dismisses it. */
typedef enum { ATT_SS_SUSPECTED, ATT_SS_CONFIRMED, ATT_SS_DISMISSED } att_suspicion_status;

typedef struct {
    att_rupture_open open; /* open.id is the suspicion's id */
    att_suspicion_status status;
    int64_t raised_seq;
    int64_t raised_at;
    int rupture_id; /* once confirmed */
    int64_t decided_at;
} att_suspicion;

typedef struct {
    att_rupture_open open;
    att_rupture_status status;
    int confirmed;    /* a suspicion the therapist confirmed */
    int suspicion_id; /* which one (0: a therapist mark or a legacy log) */
    int64_t opened_seq;
    int64_t opened_at;
    /* repair, when status == ATT_RS_REPAIRED */
    int64_t repair_seq;
    int64_t repair_at;
    att_role repair_by;
    att_repair_how repair_how;
    char repair_strategy[ATT_MARKER_BYTES];
    int64_t repair_attempt_seq; /* legacy logs */
    int repair_attempt_id;
} att_rupture;

typedef struct {
    int64_t silence_ms;          /* steps without their own; ATT_DEFAULT_SILENCE_MS */
    int64_t disconnect_grace_ms; /* ATT_DEFAULT_DISCONNECT_GRACE_MS */
} att_room_config;

#define ATT_MAX_ATTEMPTS 16

/* A partner's repair attempt, kept so another member can accept it. */
typedef struct {
    int64_t seq;
    int id;         /* 1, 2, 3... in the room: what partners name it by */
    int rupture_id; /* 0 = none named */
    /* chars: the room keeps 16 of these in its head, which every idle room
     * touches */
    signed char by; /* att_role */
    unsigned char accepted;
    unsigned char moment;       /* the other partner: "thank you, I need a moment" */
    unsigned char acknowledged; /* the therapist acknowledged it */
} att_attempt;

#define ATT_MAX_SUSPICIONS 128
#define ATT_LANGUAGE_BYTES 16

typedef struct {
    const att_catalog *catalog;
    const att_script *script;
    att_room_config config;
    char room_id[ATT_ROOM_ID_BYTES + 1];
    char language[ATT_LANGUAGE_BYTES]; /* what partners write in: the detector's rules */
    int64_t seq;                       /* last applied */
    /* Each audience (partner_a, partner_b, therapist, observer) numbers the
     * events it may see 1, 2, 3...: the seq on its wire. aud_seq[therapist]
     * == seq. */
    int64_t aud_seq[ATT_AUDIENCES];
    int created;
    att_status status;
    att_end_reason end_reason;
    int64_t ended_at; /* ms: the event that ended the session; 0 while not ended */
    int round;
    int step; /* index; meaningful unless ended */
    att_role speaker;
    att_role paused_by; /* ATT_ROLE_NONE when not paused */
    int64_t step_started_at;
    int64_t step_started_seq; /* the event that began (or resumed) the current turn */
    int consent[2];
    int consent_withdrawn[2]; /* withdrew and has not consented again */
    /* safety check-in (rooms created with it) */
    int checkin;            /* the room asks it */
    int checkin_done;       /* completed clear, or the therapist went on */
    int checkin_hold;       /* an answer holds the session for the therapist */
    int64_t checkin_seq[2]; /* each partner's checkin_answered, 0 = not yet */
    int checkin_held[2];
    int present[3];
    /* the private line, for the therapist's alerts: messages and requests
     * from the partners, and the seq of the latest */
    int private_from_partners;
    int64_t private_last_seq;
    int64_t away_since[2]; /* a partner's last `left` (ms), while away */
    int64_t away_seq[2];
    int away_raised[2]; /* a disconnect suspicion was raised for this absence */
    int observers;
    int last_rating[2]; /* -1 when none */
    int rejections_in_row;
    int64_t last_rejection_seq;
    int silence_open_step; /* step index with an open silence rupture in this round, -1 */
    int next_rupture_id;
    int next_suspicion_id;
    int next_attempt_id;
    int n_attempts; /* the most recent ATT_MAX_ATTEMPTS, oldest first */
    att_attempt attempts[ATT_MAX_ATTEMPTS];
    int n_ruptures;
    int ruptures_dropped; /* ruptures beyond ATT_MAX_RUPTURES (counted, not kept) */
    int n_suspicions;
    int suspicions_dropped;
    /* The two arrays last: an idle room never touches (and the OS never
     * backs) them; see att_room_init. */
    att_rupture ruptures[ATT_MAX_RUPTURES];
    att_suspicion suspicions[ATT_MAX_SUSPICIONS];
} att_room;

/* Prepares an empty room (seq 0) for a script. Its first event must be
 * room_created. Returns 0 or a negative code. */
int att_room_init(att_room *room, const att_catalog *cat, const att_script *script,
                  const char *room_id, const att_room_config *config, att_error *err);

/* Folds one event (ev->seq must be room->seq + 1). Returns 0, or a negative
 * code with err set when the event cannot follow the state (corrupt log); the
 * room is then unchanged. */
int att_room_apply(att_room *room, const att_event *ev, att_error *err);

/* Folds one stored event: the event object's JSON text (as produced by
 * att_event_to_json) with its seq. When object_out is not NULL it receives
 * the parsed object (a new reference the caller owns; the event borrowed
 * from it). Recovery, the session log and replay all read the log this way. */
int att_room_apply_stored(att_room *room, int64_t seq, const char *payload, size_t len,
                          json_t **object_out, att_error *err);

/* The first event of a room. */
void att_room_created_event(const att_room *room, int64_t now, att_role first_speaker,
                            att_event *out);

/* Checks a command from `role` against the state and turns it into events
 * (seqs room->seq+1, +2, ...; time `now`) in out[0..*n_out). Does not modify
 * the room: fold the events with att_room_apply once stored. Hello and ping
 * produce no events. Returns 0 or a negative code with err set. */
int att_room_decide(const att_room *room, att_role role, const att_msg *cmd, int64_t now,
                    att_event out[ATT_MAX_EVENTS_PER_COMMAND], int *n_out, att_error *err);

/* Presence: a member connected or disconnected (the server calls these; they
 * return the joined/left event and any rupture events, like decide). */
int att_room_decide_join(const att_room *room, att_role role, int64_t now,
                         att_event out[ATT_MAX_EVENTS_PER_COMMAND], int *n_out);
int att_room_decide_leave(const att_room *room, att_role role, att_left_reason reason, int64_t now,
                          att_event out[ATT_MAX_EVENTS_PER_COMMAND], int *n_out);
/* A newer connection took this role's seat (the older one is closed): the
 * `replaced` event the therapist sees. Only a partner's or the therapist's
 * seat: -1 and no event for any other role. */
int att_room_decide_replaced(const att_room *room, att_role role, int64_t now,
                             att_event out[ATT_MAX_EVENTS_PER_COMMAND], int *n_out);

/* A seat's connection dropped and came back within the presence window
 * `times` times (away gap_ms in all): the one staff-only `reconnected` event
 * the server records for them instead of a joined/left pair each. Any role
 * but system; -1 and no event otherwise. */
int att_room_decide_reconnected(const att_room *room, att_role role, int64_t now, int times,
                                int64_t gap_ms, att_event out[ATT_MAX_EVENTS_PER_COMMAND],
                                int *n_out);

/* Clock tick: suggestions the detector raises because time passed (silence,
 * a partner still away on their turn). `composing_at` is when the actor last
 * signalled that they are typing (0 for never): composing is not silence.
 * Returns the number of events written to out (0 most of the time). */
int att_room_tick(const att_room *room, int64_t now, int64_t composing_at,
                  att_event out[ATT_MAX_EVENTS_PER_COMMAND]);

/* When the next tick could produce an event (ms since epoch), or -1 when no
 * timer is needed; lets the server arm one timer per room. */
int64_t att_room_next_deadline(const att_room *room, int64_t composing_at);

/* The role that must act now, or ATT_ROLE_NONE (waiting, paused, ended). */
att_role att_room_actor(const att_room *room);

/* The state object for `viewer` ({"type":"state",...} when with_type):
 * att_room_state_write's text, parsed. Partners' states carry nothing of
 * what they may not see (no suspicions, no room-log seqs, seq counted in
 * their own audience). New reference, NULL on allocation failure. */
json_t *att_room_state_json(const att_room *room, att_role viewer, int with_type);

/* A growable output buffer; the caller owns data (free it with att_buf_free). */
typedef struct {
    char *data;
    size_t len, cap;
} att_buf;
void att_buf_free(att_buf *b);

/* Appends the state object for `viewer` to buf as compact JSON text with
 * sorted keys, as json_dumps(..., JSON_COMPACT|JSON_SORT_KEYS) would write
 * it, an order of magnitude faster than building it with jansson (the server
 * sends one after every change). Returns 0, or -1 when the buffer cannot
 * grow. */
int att_room_state_write(const att_room *room, att_role viewer, int with_type, att_buf *buf);

/* Canonical state (therapist view, sorted keys, compact) and its SHA-256 as
 * 64 hex chars + NUL. Returns 0 or a negative code. */
int att_room_state_hash(const att_room *room, char hex_out[65], att_error *err);

#endif
