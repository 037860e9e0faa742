/* room_internal.h - inside the core only: the readers of a folded room that
 * room.c defines for the exercise engine (engine.c), the rupture detector
 * (detector.c) and the serializer (state.c), and the detector's pass that
 * the engine calls. Not a public API. */
#ifndef ATTUNE_ROOM_INTERNAL_H
#define ATTUNE_ROOM_INTERNAL_H

#include "attune/names.h"
#include "attune/room.h"
#include "outbox.h"

/* The role a script actor resolves to in this room right now. */
att_role att_room_resolve_actor(const att_room *room, att_actor actor);

/* The step `back` returns to (the previous round's last step from step 0),
 * or -1 at the very first step. */
int att_room_back_target(const att_room *room);

/* The rupture with this id, or NULL. */
const att_rupture *att_room_find_rupture(const att_room *room, int id);
/* The suspicion with this id, or NULL. */
const att_suspicion *att_room_find_suspicion(const att_room *room, int id);

/* The value of the step's first rating input in `input`, or -1. */
int att_step_rating_value(const att_step *step, json_t *input);

/* 1 when the turn's input takes the step's branch. */
int att_step_branch_taken(const att_step *step, json_t *input);

/* --- the detector's pass (detector.c) ------------------------------------ */

/* Reads the command's primary events (everything in the outbox when it is
 * called) and appends the rupture events they imply: suspicions, and repairs
 * of open ruptures. Called once by each att_engine_decide*, after the
 * engine. Returns 0, or -1 when the outbox is full. */
int att_detector_after(att_outbox *out);

#endif
