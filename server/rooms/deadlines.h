/* deadlines.h - the room service's timers: a binary min-heap of deadlines
 * (wall ms), so the service can say when it next needs a tick in O(1) and
 * move one deadline in O(log n) (lws keeps its timers in a sorted list, an
 * O(n) insert; the service arms one timer per room and moves it often).
 *
 * Owns the heap array; each srv_deadline is embedded in its owner (a room)
 * and must be cancelled before the owner is freed. Service thread only. */
#ifndef SRV_DEADLINES_H
#define SRV_DEADLINES_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    int64_t at;  /* wall ms it is due */
    size_t slot; /* its index in the heap + 1; 0 while not armed */
    int kind;    /* the owner's tag: which of its deadlines this is */
} srv_deadline;

typedef struct {
    srv_deadline **heap;
    size_t n, cap;
} srv_deadlines;

/* Arms d for `at` (or moves it there). 0, or -1 when out of memory. */
int srv_deadlines_arm(srv_deadlines *h, srv_deadline *d, int64_t at);
void srv_deadlines_cancel(srv_deadlines *h, srv_deadline *d);
/* The earliest armed deadline, or NULL. */
static inline srv_deadline *srv_deadlines_first(const srv_deadlines *h)
{
    return h->n ? h->heap[0] : NULL;
}
static inline int srv_deadline_armed(const srv_deadline *d)
{
    return d->slot != 0;
}
void srv_deadlines_free(srv_deadlines *h);

#endif
