/* outbox.c - the events one command produces: numbering and new ids. */
#include "outbox.h"

#include <assert.h>
#include <string.h>

void att_outbox_init(att_outbox *out, const att_room *room, int64_t now,
                     att_event ev[ATT_MAX_EVENTS_PER_COMMAND])
{
    memset(out, 0, sizeof *out);
    out->room = room;
    out->ev = ev;
    out->now = now;
}

att_event *att_outbox_add(att_outbox *out, att_event_type type, att_role by)
{
    assert(out->n >= 0 && out->n <= ATT_MAX_EVENTS_PER_COMMAND);
    if (out->n >= ATT_MAX_EVENTS_PER_COMMAND)
        return NULL;
    att_event *ev = &out->ev[out->n];
    memset(ev, 0, sizeof *ev);
    ev->type = type;
    ev->seq = out->room->seq + 1 + out->n;
    ev->at = out->now;
    ev->by = by;
    ev->step = -1;
    out->n++;
    return ev;
}

int att_outbox_take_rupture_id(att_outbox *out)
{
    return out->room->next_rupture_id + out->ruptures_taken++;
}

int att_outbox_take_suspicion_id(att_outbox *out)
{
    return out->room->next_suspicion_id + out->suspicions_taken++;
}
