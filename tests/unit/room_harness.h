/* room_harness.h - helpers for the engine, detector and fold tests: a room
 * driven by JSON commands exactly as the server drives it (decode, decide,
 * encode each event to JSON, fold), keeping the JSON log for replay checks. */
#ifndef ATTUNE_ROOM_HARNESS_H
#define ATTUNE_ROOM_HARNESS_H

#include "attune/catalog.h"
#include "attune/detector.h"
#include "attune/engine.h"
#include "attune/msg.h"
#include "attune/names.h"
#include "attune/room.h"
#include "attune/state.h"

#define HARNESS_MAX_LOG 20000

typedef struct {
    const att_catalog *cat;
    att_room room;
    int64_t now;
    json_t *log; /* array of {"seq":N,"event":{...}} */
    att_error last_err;
    int last_n;          /* events produced by the last command */
    json_t *last_events; /* array of the last command's event objects */
} harness;

/* Loads the real catalog once per process (ATTUNE_PROTOCOL_DIR). */
const att_catalog *harness_catalog(void);
void harness_catalog_free(void);

/* A room for the script, created at time 1,000,000 with partner_a speaking first. */
void harness_init(harness *h, const char *script_id);
/* The same with another catalog (which must outlive h) and a room config (NULL: defaults). */
void harness_init_with(harness *h, const att_catalog *cat, const char *script_id,
                       const att_room_config *config);
void harness_free(harness *h);

/* Sends a command as `role`; returns 0 or the att_code of the error. */
int harness_cmd(harness *h, att_role role, const char *json_text);
/* printf-style harness_cmd. */
int harness_cmdf(harness *h, att_role role, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int harness_join(harness *h, att_role role);
int harness_leave(harness *h, att_role role);
int harness_leave_reason(harness *h, att_role role, att_left_reason reason);
/* A newer connection took the role's seat: the `replaced` event. */
int harness_replaced(harness *h, att_role role);
/* A `left` recorded now (the clock moves on) for a departure at `at`, as the
 * server's debounced presence records it. */
int harness_leave_at(harness *h, att_role role, int64_t at);
/* The server's `reconnected` for drops that came back within its window. */
int harness_reconnected(harness *h, att_role role, int times, int64_t gap_ms);
/* Advances the clock by ms and runs the detector's tick; returns events raised. */
int harness_tick(harness *h, int64_t ms);
/* The same, with the actor's last typing signal at `composing_at` (0: never). */
int harness_tick_composing(harness *h, int64_t ms, int64_t composing_at);

/* Both partners (and the therapist) join, both partners consent and both
 * answer the safety check-in "yes": the room is active. */
void harness_start(harness *h);
/* The same up to the consents: the room is checking_in. */
void harness_start_consented(harness *h);
/* The partner answers the check-in (safe_to_talk = answer). */
int harness_checkin(harness *h, att_role role, const char *answer);

/* The number of events in the log that `viewer` may see (att_event_visible_to). */
int64_t harness_visible_count(harness *h, att_role viewer);
/* The state `viewer` receives, as the writer's text (caller frees). */
char *harness_state_text(harness *h, att_role viewer);
/* The same parsed: the state object a member's client reads (new
 * reference). Exits the test on failure. */
json_t *harness_state(const att_room *room, att_role viewer, int with_type);

/* The last event of `type` produced by the last command, or NULL. */
json_t *harness_last_event(harness *h, const char *type);

/* A valid input object for the current step; reject=1 takes the branch. */
json_t *harness_valid_input(harness *h, int reject);
/* Sends a valid turn for the current step as its actor ("turn" JSON built for you). */
int harness_turn(harness *h, int reject);
int harness_turn_input(harness *h, att_role role, json_t *input /* stolen */);

/* Folds the JSON log from scratch into a new room; returns 0 and the hash. */
int harness_refold(harness *h, char hash[65]);
const att_rupture *harness_rupture(harness *h, int id);
const att_suspicion *harness_suspicion(harness *h, int id);
/* The most recent suspicion / rupture, or NULL. */
const att_suspicion *harness_last_suspicion(harness *h);
const att_rupture *harness_last_rupture(harness *h);

#endif
