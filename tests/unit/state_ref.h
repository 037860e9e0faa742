/* state_ref.h - the room's state for a viewer built with jansson, field by
 * field from the room: the tests' reference view. The product has one
 * serializer (attune/state.h, hand-written for speed); test_fold checks its
 * text byte for byte against this view dumped with sorted keys, so two
 * independent writings of the same rules must agree. Test code only. */
#ifndef ATTUNE_STATE_REF_H
#define ATTUNE_STATE_REF_H

#include <jansson.h>
#include "attune/room.h"

/* New reference, NULL on allocation failure. */
json_t *state_ref_json(const att_room *room, att_role viewer, int with_type);

#endif
