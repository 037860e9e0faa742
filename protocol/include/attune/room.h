/* room.h - a room's state as a fold over its events: att_room_apply is the
 * only function that moves a room. Deciding what a command does is the
 * engine's (engine.h), the clock's suggestions the detector's (detector.h),
 * the state as JSON the serializer's (state.h).
 *
 * Pure: no I/O, no clock (events carry their time), no allocation except
 * the parsed object att_room_apply_stored hands back when asked. att_room is
 * a plain value (copy it with att_room_copy); it borrows the catalog and
 * script, which must outlive it.
 *
 * Replay, recovery and the live room all call only att_room_init and
 * att_room_apply (directly or through att_room_apply_stored), so live,
 * recovered and replayed rooms run the very same code. A command's life
 * (decide -> store -> fold -> broadcast) is drawn in engine.h.
 *
 * The room's status, and the event that moves it (room.c, att_room_apply):
 *
 *                    room_created
 *                         |
 *                         v
 *                 WAITING_CONSENT
 *                  |           |
 *    consented (the second     consented (the second
 *    partner), the room asks   partner), no check-in
 *    the safety check-in       |
 *                  v           |
 *             CHECKING_IN      |
 *                  |           |
 *    checkin_completed (both   |
 *    answered, none holds) or  |
 *    control proceed (held)    |
 *                  v           v
 *                     ACTIVE <------------------------------+
 *                       |  turn, control advance/back/swap:  |
 *                       |  the next step, status unchanged   |
 *                       |                                    |
 *     pause_requested, control pause, consent_withdrawn      |
 *     (from ACTIVE, and also from WAITING_CONSENT and        |
 *      CHECKING_IN)                                          |
 *                       v                                    |
 *                    PAUSED --control resume------------------+
 *                             (to whichever of WAITING_CONSENT,
 *                              CHECKING_IN, ACTIVE the consents
 *                              and the check-in call for now)
 *
 *     any status but ENDED --control end, or a turn / control advance
 *     past the last step of the last round--> ENDED
 *
 * ENDED is final: the fold refuses turn, control, consent and check-in
 * events after it (a corrupt log); notes, rupture work and the therapist's
 * private line still fold. */
#ifndef ATTUNE_ROOM_H
#define ATTUNE_ROOM_H

#include <jansson.h>
#include "attune/catalog.h"
#include "attune/event.h"

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

/* The commands the room remembers by their client command id, so that a
 * client resending a command after a reconnect (not knowing whether it was
 * recorded before the connection, or the node, went) gets the original's
 * ack instead of a second record. The most recent ATT_MAX_COMMANDS: a
 * resend comes within seconds of the reconnect, while a room records a few
 * commands a minute, so 128 is hours of a session. Rebuilt by the fold, so
 * a node that takes a room over knows what the previous one recorded. */
#define ATT_MAX_COMMANDS 128

typedef struct {
    int64_t seq;      /* the event that carries the id: the command's first */
    int64_t last_seq; /* the command's last event */
    int64_t ack_seq;  /* the sender's numbering of the last of them it may see: the ack's seq */
    signed char role; /* att_role of the sender */
    char id[ATT_COMMAND_ID_MAX_BYTES + 1];
} att_command;

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
    int consent[ATT_N_PARTNERS];
    int consent_withdrawn[ATT_N_PARTNERS]; /* withdrew and has not consented again */
    /* safety check-in (rooms created with it) */
    int checkin;                         /* the room asks it */
    int checkin_done;                    /* completed clear, or the therapist went on */
    int checkin_hold;                    /* an answer holds the session for the therapist */
    int64_t checkin_seq[ATT_N_PARTNERS]; /* each partner's checkin_answered, 0 = not yet */
    int checkin_held[ATT_N_PARTNERS];
    int present[ATT_N_SEATS]; /* partner_a, partner_b, therapist (observers: a count) */
    /* the private line, for the therapist's alerts: messages and requests
     * from the partners, and the seq of the latest */
    int private_from_partners;
    int64_t private_last_seq;
    int64_t away_since[ATT_N_PARTNERS]; /* a partner's last `left` (ms), while away */
    int64_t away_seq[ATT_N_PARTNERS];
    int away_raised[ATT_N_PARTNERS]; /* a disconnect suspicion was raised for this absence */
    int observers;
    int last_rating[ATT_N_PARTNERS]; /* -1 when none */
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
    /* the command table: n_commands in use (slots 0..n-1; a ring once
     * full, newest_command the latest, -1 for none) */
    int n_commands;
    int newest_command;
    /* The three arrays last: an idle room never touches (and the OS never
     * backs) them; see att_room_init. */
    att_rupture ruptures[ATT_MAX_RUPTURES];
    att_suspicion suspicions[ATT_MAX_SUSPICIONS];
    att_command commands[ATT_MAX_COMMANDS];
} att_room;

/* The layout att_room_init and att_room_copy (and a server that clears
 * only what comes before a room) rely on: the three arrays are the last
 * members, rupture slots, suspicion slots, command slots, nothing after
 * them. */
_Static_assert(offsetof(att_room, suspicions) ==
                   offsetof(att_room, ruptures) + sizeof(att_rupture) * ATT_MAX_RUPTURES,
               "att_room: the suspicion slots follow the rupture slots");
_Static_assert(offsetof(att_room, commands) ==
                   offsetof(att_room, suspicions) + sizeof(att_suspicion) * ATT_MAX_SUSPICIONS,
               "att_room: the command slots follow the suspicion slots");
_Static_assert(offsetof(att_room, commands) + sizeof(att_command) * ATT_MAX_COMMANDS ==
                   sizeof(att_room),
               "att_room: the three arrays are its last members");

/* Prepares an empty room (seq 0) for a script. Its first event must be
 * room_created. Returns 0 or a negative code. */
int att_room_init(att_room *room, const att_catalog *cat, const att_script *script,
                  const char *room_id, const att_room_config *config, att_error *err);

/* Copies a room: the head, and of the three arrays only the entries in use
 * (an idle room's ~70 KB of rupture, suspicion and command slots are never
 * read, so they are never touched either). */
void att_room_copy(att_room *dst, const att_room *src);

/* Folds one event. ev->seq must be room->seq + 1 (a gap or a repeat is a
 * corrupt log, like an event that cannot follow the state): returns 0, or a
 * negative code with err set, the room then unchanged. */
int att_room_apply(att_room *room, const att_event *ev, att_error *err);

/* Folds one stored event: the event object's JSON text (as produced by
 * att_event_to_json) with its seq. When object_out is not NULL it receives
 * the parsed object (a new reference the caller owns; the event borrowed
 * from it). Recovery, the session log and replay all read the log this way. */
int att_room_apply_stored(att_room *room, int64_t seq, const char *payload, size_t len,
                          json_t **object_out, att_error *err);

/* The command `role` recorded with this command id (among the last
 * ATT_MAX_COMMANDS), or NULL. */
const att_command *att_room_find_command(const att_room *room, att_role role, const char *id);

/* The first event of a room. */
void att_room_created_event(const att_room *room, int64_t now, att_role first_speaker,
                            att_event *out);

/* The role that must act now, or ATT_ROLE_NONE (waiting, paused, ended). */
att_role att_room_actor(const att_room *room);

#endif
