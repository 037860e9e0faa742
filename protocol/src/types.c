/* types.c - wire names of roles and error codes. */
#include "attune/types.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

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
};

static const char *const role_names[] = {"partner_a", "partner_b", "therapist", "observer",
                                         "system"};

int att_fail(att_error *err, att_code code, const char *fmt, ...)
{
    if (err) {
        err->code = code;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
    }
    return -(int)code;
}

const char *att_code_name(att_code code)
{
    if ((int)code < 0 || code >= ATT_ERR__COUNT)
        return "internal";
    return code_names[code];
}

const char *att_role_name(att_role role)
{
    if ((int)role < 0 || (size_t)role >= sizeof role_names / sizeof role_names[0])
        return "none";
    return role_names[role];
}

att_role att_role_from_name(const char *name)
{
    if (!name)
        return ATT_ROLE_NONE;
    for (size_t i = 0; i < sizeof role_names / sizeof role_names[0]; i++)
        if (strcmp(name, role_names[i]) == 0)
            return (att_role)i;
    return ATT_ROLE_NONE;
}
