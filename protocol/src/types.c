/* types.c - the error idiom (att_fail) and the command id syntax; the wire
 * names are in names.c. */
#include "attune/types.h"

#include <stdarg.h>
#include <stdio.h>

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

int att_command_id_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
}

int att_command_id_ok(const char *s, size_t n)
{
    if (!s || n < ATT_COMMAND_ID_MIN_BYTES || n > ATT_COMMAND_ID_MAX_BYTES)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!att_command_id_char(s[i]))
            return 0;
    return 1;
}
