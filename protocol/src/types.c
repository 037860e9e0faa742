/* types.c - the error idiom (att_fail); the wire names are in names.c. */
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
