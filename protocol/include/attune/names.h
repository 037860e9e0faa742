/* names.h - the wire name of every enum the core puts on the wire, in both
 * directions: `att_X_name` gives the name of a value, `att_X_from_name` the
 * value of a name. Each enum has exactly one table (names.c); every codec,
 * view and tool asks it instead of keeping its own strings or switch.
 *
 * Pure: constant tables, no allocation; any thread. A `_name` function
 * returns a static string (or NULL where the value has no name, as each
 * comment says); a `_from_name` returns the value, or -1 (ATT_ROLE_NONE for
 * roles) for an unknown or NULL name. */
#ifndef ATTUNE_NAMES_H
#define ATTUNE_NAMES_H

#include "attune/msg.h"
#include "attune/room.h"

/* roles and error codes (types.h) */
const char *att_role_name(att_role role); /* "none" for an unknown role */
/* ATT_ROLE_NONE for an unknown name. Accepts "system" too. */
att_role att_role_from_name(const char *name);
const char *att_code_name(att_code code); /* "internal" for an unknown code */
int att_code_from_name(const char *name);

/* events (event.h); "unknown" for a value out of range */
const char *att_event_type_name(att_event_type t);
int att_event_type_from_name(const char *name);
const char *att_control_name(att_control c);
int att_control_from_name(const char *name);
const char *att_rupture_kind_name(att_rupture_kind k);
int att_rupture_kind_from_name(const char *name);
const char *att_source_name(att_source s);
int att_source_from_name(const char *name);
const char *att_repair_how_name(att_repair_how h);
int att_repair_how_from_name(const char *name);
const char *att_left_reason_name(att_left_reason r);
int att_left_reason_from_name(const char *name);
const char *att_repair_reply_name(att_repair_reply r);
int att_repair_reply_from_name(const char *name);

/* client messages (msg.h); "unknown" for a value out of range */
const char *att_msg_type_name(att_msg_type t);
int att_msg_type_from_name(const char *name);

/* blame classes (blame.h): "criticism", "contempt"; NULL for ATT_BLAME_NONE
 * or an unknown value, and "none" is not a name. */
const char *att_blame_class_name(att_blame_class c);
int att_blame_class_from_name(const char *name);

/* the catalog's script words (catalog.h) */
const char *att_actor_name(att_actor a);           /* NULL for an unknown value */
int att_actor_from_name(const char *name);         /* speaker ... therapist */
const char *att_step_tag_name(att_step_tag t);     /* NULL for ATT_TAG_NONE */
int att_step_tag_from_name(const char *name);      /* never ATT_TAG_NONE */
const char *att_input_kind_name(att_input_kind k); /* NULL for an unknown value */
int att_input_kind_from_name(const char *name);

/* the room's state (room.h) */
const char *att_room_status_name(att_status s); /* "unknown" for a value out of range */
int att_room_status_from_name(const char *name);
const char *att_room_end_reason_name(att_end_reason r); /* NULL for ATT_END_NONE */
int att_room_end_reason_from_name(const char *name);
const char *att_rupture_status_name(att_rupture_status s); /* "open" unless repaired */
int att_rupture_status_from_name(const char *name);
const char *att_suspicion_status_name(att_suspicion_status s); /* "unknown" out of range */
int att_suspicion_status_from_name(const char *name);

#endif
