/* outbox.h - the events one command (or clock tick) produces, before the
 * caller stores them: the one owner of their numbering and of the ids they
 * give new ruptures and suspicions. Not a public API: the exercise engine
 * (engine.c) fills an outbox with a command's primary events, then the
 * rupture detector (detector.c) appends its own to the same outbox.
 *
 * Pure: the outbox writes into the caller's array (ATT_MAX_EVENTS_PER_COMMAND
 * entries) and allocates nothing; it reads the room only for the numbers the
 * fold has reached, never modifies it. */
#ifndef ATTUNE_OUTBOX_H
#define ATTUNE_OUTBOX_H

#include "attune/room.h"

typedef struct {
    const att_room *room;
    att_event *ev; /* the caller's array of ATT_MAX_EVENTS_PER_COMMAND */
    int n;
    int64_t now;
    /* Ids handed out so far: events in the outbox are not folded yet, so
     * each new id continues from the room's next one plus those taken. */
    int ruptures_taken;
    int suspicions_taken;
} att_outbox;

/* An empty outbox for events that follow `room` at time `now`. */
void att_outbox_init(att_outbox *out, const att_room *room, int64_t now,
                     att_event ev[ATT_MAX_EVENTS_PER_COMMAND]);

/* Appends a zeroed event of `type` by `by`, numbered room->seq + 1 + its
 * index and dated `now`; NULL when the outbox is full. */
att_event *att_outbox_add(att_outbox *out, att_event_type type, att_role by);

/* The id for the next rupture this outbox opens (a therapist's mark, a
 * confirmed suspicion): the room's next_rupture_id, then one more for each
 * taken. The fold sets next_rupture_id past every opened id, so the ids
 * agree once the events are folded. */
int att_outbox_take_rupture_id(att_outbox *out);

/* The same for a suspicion the detector raises. */
int att_outbox_take_suspicion_id(att_outbox *out);

#endif
