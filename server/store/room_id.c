/* room_id.c - room ids (see room_id.h). */
#include "room_id.h"

#include <stddef.h>

int srv_room_id_valid(const char *id)
{
    size_t n = 0;
    for (; id[n]; n++) {
        char c = id[n];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_'))
            return 0;
        if (n >= SRV_ROOM_ID_MAX)
            return 0;
    }
    return n > 0;
}
