/* engine.h - the exercise engine: checks a command (or a presence change)
 * against the room's state and the script, and turns it into events, with
 * the rupture detector's events after them (detector.h).
 *
 * A command's life, and the function that moves it on:
 *
 *     frame   --att_msg_decode-------------------> att_msg
 *     att_msg --att_engine_decide (room, const)--> events, numbered
 *                                                  room->seq+1, +2, ...
 *     events  --att_room_apply, each in order----> a room that has them
 *
 * A server folds a command's events twice: into its live room at once, so
 * the next command is decided against them, and into its durable room once
 * the store has committed them; only then are they acked and broadcast
 * (server/rooms/room_service.h draws that cycle). Replay and recovery fold
 * stored events only (att_room_apply_stored).
 *
 * A decide never modifies the room and may be retried; only the fold moves
 * it. Events borrow strings and the input object from the command: keep the
 * command alive until they are encoded. Pure: no I/O, no clock (callers pass
 * `now`), no allocation; any thread that owns the room. */
#ifndef ATTUNE_ENGINE_H
#define ATTUNE_ENGINE_H

#include "attune/msg.h"
#include "attune/room.h"

/* Checks a command from `role` and turns it into events in out[0..*n_out).
 * Hello and ping produce no events. Returns 0 or a negative code with err
 * set (and *n_out 0). */
int att_engine_decide(const att_room *room, att_role role, const att_msg *cmd, int64_t now,
                      att_event out[ATT_MAX_EVENTS_PER_COMMAND], int *n_out, att_error *err);

/* Presence: a member connected or disconnected (the server calls these; they
 * return the joined/left event and any rupture events, like decide). -1 only
 * when the events do not fit (never with ATT_MAX_EVENTS_PER_COMMAND). */
int att_engine_decide_join(const att_room *room, att_role role, int64_t now,
                           att_event out[ATT_MAX_EVENTS_PER_COMMAND], int *n_out);
int att_engine_decide_leave(const att_room *room, att_role role, att_left_reason reason,
                            int64_t now, att_event out[ATT_MAX_EVENTS_PER_COMMAND], int *n_out);

/* A newer connection took this role's seat (the older one is closed): the
 * `replaced` event the therapist sees. Only a partner's or the therapist's
 * seat: -1 and no event for any other role. */
int att_engine_decide_replaced(const att_room *room, att_role role, int64_t now,
                               att_event out[ATT_MAX_EVENTS_PER_COMMAND], int *n_out);

/* A seat's connection dropped and came back within the presence window
 * `times` times (away gap_ms in all): the one staff-only `reconnected` event
 * the server records for them instead of a joined/left pair each. Any role
 * but system; -1 and no event otherwise. */
int att_engine_decide_reconnected(const att_room *room, att_role role, int64_t now, int times,
                                  int64_t gap_ms, att_event out[ATT_MAX_EVENTS_PER_COMMAND],
                                  int *n_out);

#endif
