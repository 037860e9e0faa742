/* bench_checkin.h - the safety check-in a benchmark's generated session
 * sends: for each question of the catalog's safety check, its first option
 * that is not in the question's hold list (so the check-in holds nothing).
 * Shared by bench_review and bench_startup. */
#ifndef ATTUNE_BENCH_CHECKIN_H
#define ATTUNE_BENCH_CHECKIN_H

#include <jansson.h>

#include "attune/catalog.h"

/* {"type":"checkin","answers":{question id: option id}}: a new reference
 * (the caller decrefs it), NULL when out of memory. */
json_t *bench_checkin_msg(const att_catalog *cat);

#endif
