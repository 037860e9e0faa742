/* types.h - roles, error codes, limits and small enums shared by the whole
 * Attune core (their wire names are names.h's). Owns nothing; pure data. */
#ifndef ATTUNE_TYPES_H
#define ATTUNE_TYPES_H

#include <stddef.h>
#include <stdint.h>

#define ATT_PROTOCOL_VERSION 2
#define ATT_MAX_MESSAGE_BYTES 65536
#define ATT_MAX_DEPTH 8
#define ATT_MAX_ID_BYTES 64
#define ATT_MAX_TOKEN_BYTES 1024
#define ATT_MAX_TEXT_BYTES 4000
#define ATT_MAX_INPUT_MEMBERS 16
/* A client's command id (PROTOCOL.md section 4): 16..64 of [A-Za-z0-9_-],
 * chosen by the client, unique for its role in the room. */
#define ATT_COMMAND_ID_MIN_BYTES 16
#define ATT_COMMAND_ID_MAX_BYTES 64
#define ATT_DEFAULT_SILENCE_MS 90000
/* A partner away this long on their turn is suggested as a withdrawal; a
 * shorter drop is the network, not the person. */
#define ATT_DEFAULT_DISCONNECT_GRACE_MS 60000
/* A reconnect this soon after a drop records no joined/left pair (the web
 * client's backoff retries after 0.5, 1.5 and 3.5 s: a blip fits in it). */
#define ATT_DEFAULT_PRESENCE_DEBOUNCE_MS 5000

typedef enum {
    ATT_ROLE_NONE = -1,
    ATT_ROLE_PARTNER_A = 0,
    ATT_ROLE_PARTNER_B = 1,
    ATT_ROLE_THERAPIST = 2,
    ATT_ROLE_OBSERVER = 3,
    ATT_ROLE_SYSTEM = 4, /* only as an event's `by` */
} att_role;

/* The role counts the room's arrays are sized by: the two partners (indexed
 * by their role), the three seats (the partners and the therapist; any
 * number may observe), and the four roles a member connects as (event.h's
 * ATT_AUDIENCES, one seq numbering each). */
#define ATT_N_PARTNERS 2
#define ATT_N_SEATS 3

typedef enum {
    ATT_OK = 0,
    ATT_ERR_BAD_JSON,
    ATT_ERR_BAD_MESSAGE,
    ATT_ERR_UNKNOWN_TYPE,
    ATT_ERR_NOT_AUTHENTICATED,
    ATT_ERR_BAD_TOKEN,
    ATT_ERR_FORBIDDEN,
    ATT_ERR_NOT_YOUR_TURN,
    ATT_ERR_INVALID_STEP,
    ATT_ERR_CONSENT_REQUIRED,
    ATT_ERR_RATE_LIMITED,
    ATT_ERR_TOO_LARGE,
    ATT_ERR_INVALID_INPUT,
    ATT_ERR_SESSION_PAUSED,
    ATT_ERR_SESSION_ENDED,
    ATT_ERR_NOT_FOUND,
    ATT_ERR_ALREADY_AUTHENTICATED,
    ATT_ERR_INTERNAL,
    /* bounded logs (issue 10) */
    ATT_ERR_ROOM_BUSY, /* the room as a whole records events faster than its limit */
    ATT_ERR_LOG_FULL,  /* the room's log has reached its cap */
    /* routing by room (issue 13) */
    ATT_ERR_WRONG_ROOM, /* the link or ticket is for another room than /ws?room= names */
    ATT_ERR__COUNT
} att_code;

/* An error: a code plus a human-readable message (never containing what a
 * participant wrote). Filled by the callee, owned by the caller. */
typedef struct {
    att_code code;
    char message[160];
} att_error;

/* Sets err (when not NULL) and returns -(int)code, so callers can write
 * `return att_fail(err, ATT_ERR_X, "...")`. */
int att_fail(att_error *err, att_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* 1 when s[0..n) is a well-formed command id; 1 when c may be in one. */
int att_command_id_ok(const char *s, size_t n);
int att_command_id_char(char c);

static inline int att_role_is_partner(att_role r)
{
    return r == ATT_ROLE_PARTNER_A || r == ATT_ROLE_PARTNER_B;
}
static inline att_role att_other_partner(att_role r)
{
    return r == ATT_ROLE_PARTNER_A ? ATT_ROLE_PARTNER_B : ATT_ROLE_PARTNER_A;
}

#endif
