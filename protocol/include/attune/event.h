/* event.h - room events: the C form, their JSON form, and who may see them.
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
    ATT_EV__COUNT
} att_event_type;

typedef enum {
    ATT_CTL_ADVANCE,
    ATT_CTL_BACK,
    ATT_CTL_PAUSE,
    ATT_CTL_RESUME,
    ATT_CTL_SWAP,
    ATT_CTL_END,
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

#define ATT_MAX_EVIDENCE 8
#define ATT_MARKER_BYTES 48

/* What a rupture is when it opens (the part events carry). */
typedef struct {
    int id;
    att_rupture_kind kind;
    char marker[ATT_MARKER_BYTES];
    att_source source;
    att_role who;
    att_role with;
    int step; /* step index, -1 for none */
    int round;
    int64_t evidence[ATT_MAX_EVIDENCE];
    int n_evidence;
} att_rupture_open;

typedef struct {
    att_event_type type;
    int64_t seq;
    int64_t at; /* ms since the Unix epoch */
    att_role by;
    /* room_created */
    const char *exercise;
    att_role first_speaker;
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
    /* repair_accepted, rupture_repaired by attempt */
    int64_t attempt_seq;
} att_event;

const char *att_event_type_name(att_event_type t);
const char *att_control_name(att_control c);
int att_control_from_name(const char *name); /* -1 when unknown */
const char *att_rupture_kind_name(att_rupture_kind k);
int att_rupture_kind_from_name(const char *name); /* -1 when unknown */
const char *att_source_name(att_source s);
const char *att_repair_how_name(att_repair_how h);
const char *att_left_reason_name(att_left_reason r);

/* A rupture as events carry it; new reference or NULL. */
json_t *att_rupture_open_to_json(const att_rupture_open *r, const att_script *script);

/* 1 when a member with this role may see events of this type. */
int att_event_visible_to(att_event_type t, att_role viewer);

/* The event object ({"type":..,"at":..,"by":..,...}; no seq). The script
 * gives step ids. Returns a new reference or NULL on allocation failure. */
json_t *att_event_to_json(const att_event *ev, const att_script *script);

/* Decodes an event object (as produced by att_event_to_json) into ev,
 * borrowing strings and input from obj, which must outlive ev. The seq is
 * not part of the object: set ev->seq yourself. Returns 0 or a negative code
 * (bad_message) with err set. */
int att_event_from_json(json_t *obj, const att_script *script, att_event *ev, att_error *err);

#endif
