/* names.c - every wire-name table of the core, one per enum, each read in
 * both directions by the same two helpers. A table is indexed by the enum's
 * value (designated initialisers, so reordering an enum cannot shift a
 * name); a NULL entry is a value with no name (ATT_TAG_NONE, ATT_END_NONE,
 * ATT_BLAME_NONE). */
#include "attune/names.h"

#include <string.h>

#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* The name of value i, or `unknown` when it is out of range or has none. */
static const char *name_at(const char *const *names, int count, int i, const char *unknown)
{
    return i >= 0 && i < count && names[i] ? names[i] : unknown;
}

/* The value named `name`, or -1. */
static int index_of(const char *const *names, int count, const char *name)
{
    if (!name)
        return -1;
    for (int i = 0; i < count; i++)
        if (names[i] && strcmp(names[i], name) == 0)
            return i;
    return -1;
}

/* --- types.h -------------------------------------------------------------- */

static const char *const role_names[] = {
    [ATT_ROLE_PARTNER_A] = "partner_a", [ATT_ROLE_PARTNER_B] = "partner_b",
    [ATT_ROLE_THERAPIST] = "therapist", [ATT_ROLE_OBSERVER] = "observer",
    [ATT_ROLE_SYSTEM] = "system",
};

static const char *const code_names[ATT_ERR__COUNT] = {
    [ATT_OK] = "ok",
    [ATT_ERR_BAD_JSON] = "bad_json",
    [ATT_ERR_BAD_MESSAGE] = "bad_message",
    [ATT_ERR_UNKNOWN_TYPE] = "unknown_type",
    [ATT_ERR_NOT_AUTHENTICATED] = "not_authenticated",
    [ATT_ERR_BAD_TOKEN] = "bad_token",
    [ATT_ERR_FORBIDDEN] = "forbidden",
    [ATT_ERR_NOT_YOUR_TURN] = "not_your_turn",
    [ATT_ERR_INVALID_STEP] = "invalid_step",
    [ATT_ERR_CONSENT_REQUIRED] = "consent_required",
    [ATT_ERR_RATE_LIMITED] = "rate_limited",
    [ATT_ERR_TOO_LARGE] = "too_large",
    [ATT_ERR_INVALID_INPUT] = "invalid_input",
    [ATT_ERR_SESSION_PAUSED] = "session_paused",
    [ATT_ERR_SESSION_ENDED] = "session_ended",
    [ATT_ERR_NOT_FOUND] = "not_found",
    [ATT_ERR_ALREADY_AUTHENTICATED] = "already_authenticated",
    [ATT_ERR_INTERNAL] = "internal",
    [ATT_ERR_ROOM_BUSY] = "room_busy",
    [ATT_ERR_LOG_FULL] = "log_full",
    [ATT_ERR_WRONG_ROOM] = "wrong_room",
};

const char *att_role_name(att_role role)
{
    return name_at(role_names, COUNT(role_names), (int)role, "none");
}
att_role att_role_from_name(const char *name)
{
    int r = index_of(role_names, COUNT(role_names), name);
    return r < 0 ? ATT_ROLE_NONE : (att_role)r;
}
const char *att_code_name(att_code code)
{
    return name_at(code_names, ATT_ERR__COUNT, (int)code, "internal");
}
int att_code_from_name(const char *name)
{
    return index_of(code_names, ATT_ERR__COUNT, name);
}

/* --- event.h -------------------------------------------------------------- */

static const char *const event_names[ATT_EV__COUNT] = {
    [ATT_EV_ROOM_CREATED] = "room_created",
    [ATT_EV_JOINED] = "joined",
    [ATT_EV_LEFT] = "left",
    [ATT_EV_CONSENTED] = "consented",
    [ATT_EV_TURN] = "turn",
    [ATT_EV_CONTROL] = "control",
    [ATT_EV_PAUSE_REQUESTED] = "pause_requested",
    [ATT_EV_REPAIR_ATTEMPT] = "repair_attempt",
    [ATT_EV_REPAIR_ACCEPTED] = "repair_accepted",
    [ATT_EV_RUPTURE_OPENED] = "rupture_opened",
    [ATT_EV_RUPTURE_SUSPECTED] = "rupture_suspected",
    [ATT_EV_RUPTURE_CONFIRMED] = "rupture_confirmed",
    [ATT_EV_RUPTURE_DISMISSED] = "rupture_dismissed",
    [ATT_EV_RUPTURE_REPAIRED] = "rupture_repaired",
    [ATT_EV_NOTE] = "note",
    [ATT_EV_REPLACED] = "replaced",
    [ATT_EV_CONSENT_WITHDRAWN] = "consent_withdrawn",
    [ATT_EV_CHECKIN_ANSWERED] = "checkin_answered",
    [ATT_EV_CHECKIN_COMPLETED] = "checkin_completed",
    [ATT_EV_REPAIR_REPLIED] = "repair_replied",
    [ATT_EV_PRIVATE_MESSAGE] = "private_message",
    [ATT_EV_THERAPIST_REQUESTED] = "therapist_requested",
    [ATT_EV_RECONNECTED] = "reconnected",
};

static const char *const control_names[ATT_CTL__COUNT] = {
    [ATT_CTL_ADVANCE] = "advance", [ATT_CTL_BACK] = "back", [ATT_CTL_PAUSE] = "pause",
    [ATT_CTL_RESUME] = "resume",   [ATT_CTL_SWAP] = "swap", [ATT_CTL_END] = "end",
    [ATT_CTL_PROCEED] = "proceed",
};

static const char *const kind_names[ATT_RK__COUNT] = {
    [ATT_RK_WITHDRAWAL] = "withdrawal",       [ATT_RK_CONFRONTATION] = "confrontation",
    [ATT_RK_MISATTUNEMENT] = "misattunement", [ATT_RK_DISCONNECTION_FELT] = "disconnection_felt",
    [ATT_RK_FLOODING] = "flooding",
};

static const char *const source_names[ATT_SRC__COUNT] = {
    [ATT_SRC_DETECTOR] = "detector",
    [ATT_SRC_PARTNER] = "partner",
    [ATT_SRC_THERAPIST] = "therapist",
};

static const char *const how_names[ATT_HOW__COUNT] = {
    [ATT_HOW_THERAPIST_STRATEGY] = "therapist_strategy",
    [ATT_HOW_REPAIR_ATTEMPT] = "repair_attempt",
    [ATT_HOW_RECONNECT] = "reconnect",
    [ATT_HOW_REFLECTION_CONFIRMED] = "reflection_confirmed",
    [ATT_HOW_RESUMED] = "resumed",
};

static const char *const left_names[ATT_LEFT__COUNT] = {
    [ATT_LEFT_CLOSED] = "closed",
    [ATT_LEFT_TIMEOUT] = "timeout",
    [ATT_LEFT_SLOW_READER] = "slow_reader",
    [ATT_LEFT_SHUTDOWN] = "shutdown",
};

static const char *const reply_names[ATT_REPLY__COUNT] = {
    [ATT_REPLY_NEED_A_MOMENT] = "need_a_moment",
    [ATT_REPLY_ACKNOWLEDGED] = "acknowledged",
};

const char *att_event_type_name(att_event_type t)
{
    return name_at(event_names, ATT_EV__COUNT, (int)t, "unknown");
}
int att_event_type_from_name(const char *name)
{
    return index_of(event_names, ATT_EV__COUNT, name);
}
const char *att_control_name(att_control c)
{
    return name_at(control_names, ATT_CTL__COUNT, (int)c, "unknown");
}
int att_control_from_name(const char *name)
{
    return index_of(control_names, ATT_CTL__COUNT, name);
}
const char *att_rupture_kind_name(att_rupture_kind k)
{
    return name_at(kind_names, ATT_RK__COUNT, (int)k, "unknown");
}
int att_rupture_kind_from_name(const char *name)
{
    return index_of(kind_names, ATT_RK__COUNT, name);
}
const char *att_source_name(att_source s)
{
    return name_at(source_names, ATT_SRC__COUNT, (int)s, "unknown");
}
int att_source_from_name(const char *name)
{
    return index_of(source_names, ATT_SRC__COUNT, name);
}
const char *att_repair_how_name(att_repair_how h)
{
    return name_at(how_names, ATT_HOW__COUNT, (int)h, "unknown");
}
int att_repair_how_from_name(const char *name)
{
    return index_of(how_names, ATT_HOW__COUNT, name);
}
const char *att_left_reason_name(att_left_reason r)
{
    return name_at(left_names, ATT_LEFT__COUNT, (int)r, "unknown");
}
int att_left_reason_from_name(const char *name)
{
    return index_of(left_names, ATT_LEFT__COUNT, name);
}
const char *att_repair_reply_name(att_repair_reply r)
{
    return name_at(reply_names, ATT_REPLY__COUNT, (int)r, "unknown");
}
int att_repair_reply_from_name(const char *name)
{
    return index_of(reply_names, ATT_REPLY__COUNT, name);
}

/* --- msg.h ---------------------------------------------------------------- */

static const char *const msg_type_names[ATT_MSG__COUNT] = {
    [ATT_MSG_HELLO] = "hello",
    [ATT_MSG_PING] = "ping",
    [ATT_MSG_CONSENT] = "consent",
    [ATT_MSG_TURN] = "turn",
    [ATT_MSG_CONTROL] = "control",
    [ATT_MSG_PAUSE_REQUEST] = "pause_request",
    [ATT_MSG_REPAIR_ATTEMPT] = "repair_attempt",
    [ATT_MSG_REPAIR_ACCEPT] = "repair_accept",
    [ATT_MSG_RUPTURE_MARK] = "rupture_mark",
    [ATT_MSG_RUPTURE_REPAIR] = "rupture_repair",
    [ATT_MSG_RUPTURE_CONFIRM] = "rupture_confirm",
    [ATT_MSG_RUPTURE_DISMISS] = "rupture_dismiss",
    [ATT_MSG_NOTE] = "note",
    [ATT_MSG_TYPING] = "typing",
    [ATT_MSG_CONSENT_WITHDRAW] = "consent_withdraw",
    [ATT_MSG_CHECKIN] = "checkin",
    [ATT_MSG_REPAIR_REPLY] = "repair_reply",
    [ATT_MSG_PRIVATE_MESSAGE] = "private_message",
    [ATT_MSG_ASK_THERAPIST] = "ask_therapist",
};

const char *att_msg_type_name(att_msg_type t)
{
    return name_at(msg_type_names, ATT_MSG__COUNT, (int)t, "unknown");
}
int att_msg_type_from_name(const char *name)
{
    return index_of(msg_type_names, ATT_MSG__COUNT, name);
}

/* --- blame.h -------------------------------------------------------------- */

static const char *const blame_class_names[] = {
    [ATT_BLAME_NONE] = NULL,
    [ATT_BLAME_CRITICISM] = "criticism",
    [ATT_BLAME_CONTEMPT] = "contempt",
};

const char *att_blame_class_name(att_blame_class c)
{
    return name_at(blame_class_names, COUNT(blame_class_names), (int)c, NULL);
}
int att_blame_class_from_name(const char *name)
{
    return index_of(blame_class_names, COUNT(blame_class_names), name);
}

/* --- catalog.h ------------------------------------------------------------ */

static const char *const actor_names[] = {
    [ATT_ACTOR_SPEAKER] = "speaker",     [ATT_ACTOR_LISTENER] = "listener",
    [ATT_ACTOR_PARTNER_A] = "partner_a", [ATT_ACTOR_PARTNER_B] = "partner_b",
    [ATT_ACTOR_THERAPIST] = "therapist",
};

static const char *const tag_names[] = {
    [ATT_TAG_NONE] = NULL,
    [ATT_TAG_REFLECTION] = "reflection",
    [ATT_TAG_REFLECTION_CHECK] = "reflection_check",
    [ATT_TAG_CONNECTION_RATING] = "connection_rating",
};

static const char *const input_kind_names[] = {
    [ATT_INPUT_TEXT] = "text",
    [ATT_INPUT_EMOTION_REACTIVE] = "emotion_reactive",
    [ATT_INPUT_EMOTION_PRIMARY] = "emotion_primary",
    [ATT_INPUT_NEED] = "need",
    [ATT_INPUT_RATING] = "rating",
    [ATT_INPUT_CHOICE] = "choice",
};

const char *att_actor_name(att_actor a)
{
    return name_at(actor_names, COUNT(actor_names), (int)a, NULL);
}
int att_actor_from_name(const char *name)
{
    return index_of(actor_names, COUNT(actor_names), name);
}
const char *att_step_tag_name(att_step_tag t)
{
    return name_at(tag_names, COUNT(tag_names), (int)t, NULL);
}
int att_step_tag_from_name(const char *name)
{
    return index_of(tag_names, COUNT(tag_names), name);
}
const char *att_input_kind_name(att_input_kind k)
{
    return name_at(input_kind_names, COUNT(input_kind_names), (int)k, NULL);
}
int att_input_kind_from_name(const char *name)
{
    return index_of(input_kind_names, COUNT(input_kind_names), name);
}

/* --- room.h --------------------------------------------------------------- */

static const char *const status_names[] = {
    [ATT_STATUS_WAITING_CONSENT] = "waiting_consent",
    [ATT_STATUS_CHECKING_IN] = "checking_in",
    [ATT_STATUS_ACTIVE] = "active",
    [ATT_STATUS_PAUSED] = "paused",
    [ATT_STATUS_ENDED] = "ended",
};

static const char *const end_reason_names[] = {
    [ATT_END_NONE] = NULL,
    [ATT_END_COMPLETED] = "completed",
    [ATT_END_THERAPIST] = "therapist",
};

static const char *const rupture_status_names[] = {
    [ATT_RS_OPEN] = "open",
    [ATT_RS_REPAIRED] = "repaired",
};

static const char *const suspicion_status_names[] = {
    [ATT_SS_SUSPECTED] = "suspected",
    [ATT_SS_CONFIRMED] = "confirmed",
    [ATT_SS_DISMISSED] = "dismissed",
};

const char *att_room_status_name(att_status s)
{
    return name_at(status_names, COUNT(status_names), (int)s, "unknown");
}
int att_room_status_from_name(const char *name)
{
    return index_of(status_names, COUNT(status_names), name);
}
const char *att_room_end_reason_name(att_end_reason r)
{
    return name_at(end_reason_names, COUNT(end_reason_names), (int)r, NULL);
}
int att_room_end_reason_from_name(const char *name)
{
    return index_of(end_reason_names, COUNT(end_reason_names), name);
}
const char *att_rupture_status_name(att_rupture_status s)
{
    /* a rupture is open until it is repaired (room.h) */
    return s == ATT_RS_REPAIRED ? rupture_status_names[ATT_RS_REPAIRED]
                                : rupture_status_names[ATT_RS_OPEN];
}
int att_rupture_status_from_name(const char *name)
{
    return index_of(rupture_status_names, COUNT(rupture_status_names), name);
}
const char *att_suspicion_status_name(att_suspicion_status s)
{
    return name_at(suspicion_status_names, COUNT(suspicion_status_names), (int)s, "unknown");
}
int att_suspicion_status_from_name(const char *name)
{
    return index_of(suspicion_status_names, COUNT(suspicion_status_names), name);
}
