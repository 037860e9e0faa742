/* detector.h - the rupture detector's clock: the suggestions it raises
 * because time passed (a partner silent on their turn, or still away after
 * the disconnect grace). What it reads in a command's events is the second
 * pass of every att_engine_decide* (engine.h); this is the part a caller
 * drives with a timer.
 *
 * Everything it raises is a `rupture_suspected` only the therapist (and an
 * observer) sees. Pure: no I/O, no clock (callers pass `now`), no
 * allocation, no state of its own (the fold holds what it needs). */
#ifndef ATTUNE_DETECTOR_H
#define ATTUNE_DETECTOR_H

#include "attune/room.h"

/* Clock tick: `composing_at` is when the actor last signalled that they are
 * typing (0 for never): composing is not silence. Returns the number of
 * events written to out (0 most of the time), numbered like a decide's. */
int att_detector_tick(const att_room *room, int64_t now, int64_t composing_at,
                      att_event out[ATT_MAX_EVENTS_PER_COMMAND]);

/* When the next tick could produce an event (ms since epoch), or -1 when no
 * timer is needed; lets the server arm one timer per room. */
int64_t att_detector_next_deadline(const att_room *room, int64_t composing_at);

#endif
