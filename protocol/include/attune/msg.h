/* msg.h - client messages: decode and validate (envelope + schema), and the
 * server's envelope messages (ack, error, event, bye) as JSON.
 *
 * att_msg_decode parses a frame into an att_msg that owns its JSON root;
 * release it with att_msg_release (also after a failed decode). Strings in an
 * att_msg borrow from that root. Semantic checks that need the room or the
 * catalog (is it your turn, is the marker a 3RS marker) are the room's. */
#ifndef ATTUNE_MSG_H
#define ATTUNE_MSG_H

#include <jansson.h>
#include "attune/types.h"
#include "attune/event.h"

typedef enum {
    ATT_MSG_HELLO,
    ATT_MSG_PING,
    ATT_MSG_CONSENT,
    ATT_MSG_TURN,
    ATT_MSG_CONTROL,
    ATT_MSG_PAUSE_REQUEST,
    ATT_MSG_REPAIR_ATTEMPT,
    ATT_MSG_REPAIR_ACCEPT,
    ATT_MSG_RUPTURE_MARK,
    ATT_MSG_RUPTURE_REPAIR,
    ATT_MSG_RUPTURE_CONFIRM,
    ATT_MSG_RUPTURE_DISMISS,
    ATT_MSG_NOTE,
    /* protocol 2 */
    ATT_MSG_TYPING,
    ATT_MSG_CONSENT_WITHDRAW,
    ATT_MSG_CHECKIN,
    ATT_MSG_REPAIR_REPLY,
    ATT_MSG_PRIVATE_MESSAGE,
    ATT_MSG_ASK_THERAPIST,
    ATT_MSG__COUNT
} att_msg_type;

typedef struct {
    json_t *root; /* owned */
    att_msg_type type;
    int has_id;
    char id[ATT_MAX_ID_BYTES + 1];
    /* the client's command id (every type that appends an event may carry
     * one; NULL when absent): a resend of a command already recorded is
     * acked, not recorded twice */
    const char *command_id;
    /* hello */
    const char *token;
    const char *ticket;  /* a staff ticket (POST /api/rooms/{id}/ticket) instead of a token */
    int64_t resume_from; /* -1 when absent */
    /* turn */
    const char *step;
    json_t *input; /* borrowed from root */
    /* control */
    att_control action;
    /* free text: pause_request note, repair_attempt text, note text,
     * rupture_mark / rupture_repair / rupture_confirm / rupture_dismiss
     * note, private_message text, checkin note; NULL if absent */
    const char *text;
    /* rupture_* and note and repair_attempt (0 = absent) */
    int rupture_id;
    /* rupture_confirm, rupture_dismiss, note (0 = absent) */
    int suspicion_id;
    /* repair_accept, repair_reply */
    int attempt_id;
    att_repair_reply reply;
    /* private_message (ATT_ROLE_NONE when absent) */
    att_role to;
    /* checkin: {question id: option id} (borrowed from root) */
    json_t *answers;
    /* rupture_mark */
    att_rupture_kind kind;
    const char *marker;
    att_role who;
    att_role with;
    /* rupture_repair */
    const char *strategy;
} att_msg;

/* Decodes one text frame. Returns 0, or a negative code with err set (and
 * out->has_id/out->id set when the frame carried a valid id, for the error
 * reply). Always call att_msg_release(out) afterwards. */
int att_msg_decode(const char *buf, size_t len, att_msg *out, att_error *err);
void att_msg_release(att_msg *m);

/* Server envelopes; each returns a new reference (NULL on allocation failure).
 * id may be NULL; seq <= 0 omits "seq" from the ack. */
json_t *att_msg_ack(const char *id, int64_t seq);
/* The ack of a resent command (its command_id already recorded): the
 * original's seq and "duplicate":true. */
json_t *att_msg_ack_duplicate(const char *id, int64_t seq);
/* 1 when messages of this type may carry a command_id (they append events). */
int att_msg_takes_command_id(att_msg_type type);
json_t *att_msg_error(const char *id, att_code code, const char *message);
json_t *att_msg_event(int64_t seq, json_t *event /* borrowed */);
json_t *att_msg_bye(const char *reason);

/* Serialises compactly into a malloc'd NUL-terminated string the caller
 * frees; NULL on failure. Deterministic (sorted keys). */
char *att_json_dump(const json_t *j, size_t *len_out);

#endif
