/* event.h - room events: the C form, their JSON form, and who may see them.
 *
 * Who may see an event is decided here and nowhere else (att_event_audience):
 * the server's broadcast and replay, the per-audience sequence numbers of the
 * fold and the command-line replay all ask this one table.
 *
 * An att_event borrows its strings and its `input` object (from the command
 * that produced it, or from the JSON it was decoded from); it owns nothing.
 * Encoding returns a new json_t reference the caller owns. */
#ifndef ATTUNE_EVENT_H
#define ATTUNE_EVENT_H

#include <jansson.h>
#include "attune/types.h"
#include "attune/catalog.h"

typedef enum {
    ATT_EV_ROOM_CREATED,
    ATT_EV_JOINED,
    ATT_EV_LEFT,
    ATT_EV_CONSENTED,
    ATT_EV_TURN,
    ATT_EV_CONTROL,
    ATT_EV_PAUSE_REQUESTED,
    ATT_EV_REPAIR_ATTEMPT,
    ATT_EV_REPAIR_ACCEPTED,
    ATT_EV_RUPTURE_OPENED,
    ATT_EV_RUPTURE_SUSPECTED,
    ATT_EV_RUPTURE_CONFIRMED,
    ATT_EV_RUPTURE_DISMISSED,
    ATT_EV_RUPTURE_REPAIRED,
    ATT_EV_NOTE,
    /* protocol 2 */
    ATT_EV_REPLACED,
    ATT_EV_CONSENT_WITHDRAWN,
    ATT_EV_CHECKIN_ANSWERED,
    ATT_EV_CHECKIN_COMPLETED,
    ATT_EV_REPAIR_REPLIED,
    ATT_EV_PRIVATE_MESSAGE,
    ATT_EV_THERAPIST_REQUESTED,
    /* issue 10: connection drops that came back within the presence window,
     * one event for several (staff only) */
    ATT_EV_RECONNECTED,
    ATT_EV__COUNT
} att_event_type;

typedef enum {
    ATT_CTL_ADVANCE,
    ATT_CTL_BACK,
    ATT_CTL_PAUSE,
    ATT_CTL_RESUME,
    ATT_CTL_SWAP,
    ATT_CTL_END,
    ATT_CTL_PROCEED, /* after a held safety check-in: begin the joint work */
    ATT_CTL__COUNT
} att_control;

typedef enum {
    ATT_RK_WITHDRAWAL,
    ATT_RK_CONFRONTATION,
    ATT_RK_MISATTUNEMENT,
    ATT_RK_DISCONNECTION_FELT,
    ATT_RK_FLOODING,
    ATT_RK__COUNT
} att_rupture_kind;

typedef enum { ATT_SRC_DETECTOR, ATT_SRC_PARTNER, ATT_SRC_THERAPIST, ATT_SRC__COUNT } att_source;

typedef enum {
    ATT_HOW_THERAPIST_STRATEGY,
    ATT_HOW_REPAIR_ATTEMPT,
    ATT_HOW_RECONNECT,
    ATT_HOW_REFLECTION_CONFIRMED,
    ATT_HOW_RESUMED,
    ATT_HOW__COUNT
} att_repair_how;

typedef enum {
    ATT_LEFT_CLOSED,
    ATT_LEFT_TIMEOUT,
    ATT_LEFT_SLOW_READER,
    ATT_LEFT_SHUTDOWN,
    ATT_LEFT__COUNT
} att_left_reason;

typedef enum { ATT_REPLY_NEED_A_MOMENT, ATT_REPLY_ACKNOWLEDGED, ATT_REPLY__COUNT } att_repair_reply;

#define ATT_MAX_EVIDENCE 8
#define ATT_MARKER_BYTES 48

/* What a rupture (or a suspicion, in its own id space) is when it opens:
 * the part events carry. */
typedef struct {
    int id;
    att_rupture_kind kind;
    char marker[ATT_MARKER_BYTES];
    att_source source;
    att_role who;
    att_role with;
    int step; /* step index, -1 for none */
    int round;
    int64_t evidence[ATT_MAX_EVIDENCE]; /* room-log seqs: staff views only */
    int n_evidence;
    att_blame_class blame_class; /* suspicions of blaming language (blame.h) */
} att_rupture_open;

typedef struct {
    att_event_type type;
    int64_t seq;
    int64_t at; /* ms since the Unix epoch */
    att_role by;
    /* room_created */
    const char *exercise;
    att_role first_speaker;
    int checkin;          /* the room asks the safety check-in (protocol 2 rooms) */
    const char *language; /* borrowed; NULL: the script's */
    /* turn */
    int step; /* index into the script */
    int round;
    json_t *input; /* borrowed */
    /* control */
    att_control action;
    /* left */
    att_left_reason left_reason;
    /* text: pause note, repair attempt text, note text, dismiss/repair note (borrowed, may be NULL)
     */
    const char *text;
    /* rupture_opened / suspected / confirmed */
    att_rupture_open rupture;
    /* dismissed, repaired, note, repair_attempt (0 = none) */
    int rupture_id;
    /* rupture_repaired */
    att_repair_how how;
    const char *strategy; /* borrowed; NULL unless therapist_strategy */
    /* repair_accepted, rupture_repaired by attempt: legacy (protocol 1) logs
     * name the attempt by its seq, protocol 2 by its id */
    int64_t attempt_seq;
    int attempt_id; /* also repair_attempt, repair_replied */
    /* rupture_confirmed / dismissed, note (0 = none) */
    int suspicion_id;
    /* repair_replied */
    att_repair_reply reply;
    /* private_message: the other end of the private line */
    att_role to;
    /* checkin_answered: {question id: option id} (borrowed) */
    json_t *answers;
    int hold; /* an answer holds the session for the therapist */
    /* consented */
    int notice_version;
    const char *notice_hash; /* borrowed */
    /* reconnected: drops that came back soon, and the time away in all */
    int times;
    int64_t gap_ms;
    /* a protocol 1 rupture_confirmed (it carried the whole rupture, seen by all) */
    int legacy;
    /* The client's command id (borrowed; NULL for none) on the first event
     * of the command that produced it, with the command's event count: the
     * fold's table of recorded commands (room.h). Stored, never on a wire. */
    const char *command_id;
    int command_events;
} att_event;

/* A rupture as events carry it; new reference or NULL. */
json_t *att_rupture_open_to_json(const att_rupture_open *r, const att_script *script);

/* The audiences that may see ev: bit (1 << role) for partner_a, partner_b,
 * therapist and observer. The therapist sees everything. */
#define ATT_AUDIENCES 4
unsigned att_event_audience(const att_event *ev);
/* 1 when a member with this role may see ev. */
int att_event_visible_to(const att_event *ev, att_role viewer);

/* The event object ({"type":..,"at":..,"by":..,...}; no seq). The script
 * gives step ids. Returns a new reference or NULL on allocation failure. */
json_t *att_event_to_json(const att_event *ev, const att_script *script);

/* The stored form of an event: att_event_to_json's text, and when the
 * event carries a command id, that text with `,"command_id":"ID",
 * "command_events":N` put before its closing brace (keys sorted, compact,
 * no spaces). The wire form of a stored event is the stored text without
 * that tail, so a reader that forwards stored bytes (catch-up, the log
 * API) strips it without parsing: att_event_wire_cut. Returns a malloc'd
 * NUL-terminated text the caller frees, NULL on allocation failure. */
char *att_event_encode_stored(const att_event *ev, const att_script *script, size_t *len_out);

/* Where a stored event's command tail begins: the wire form is
 * stored[0..cut) followed by "}". Returns len when there is no tail (every
 * event stored before command ids, and every event without one). */
size_t att_event_wire_cut(const char *stored, size_t len);

/* Decodes an event object (as produced by att_event_to_json) into ev,
 * borrowing strings and input from obj, which must outlive ev. The seq is
 * not part of the object: set ev->seq yourself. Returns 0 or a negative code
 * (bad_message) with err set. */
int att_event_from_json(json_t *obj, const att_script *script, att_event *ev, att_error *err);

#endif
