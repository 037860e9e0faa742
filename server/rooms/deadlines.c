/* deadlines.c - a binary min-heap of deadlines (deadlines.h). */
#include "deadlines.h"

#include <assert.h>
#include <stdlib.h>

static void place(srv_deadlines *h, size_t i, srv_deadline *d)
{
    h->heap[i] = d;
    d->slot = i + 1;
}

static void sift_up(srv_deadlines *h, size_t i)
{
    srv_deadline *d = h->heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (h->heap[parent]->at <= d->at)
            break;
        place(h, i, h->heap[parent]);
        i = parent;
    }
    place(h, i, d);
}

static void sift_down(srv_deadlines *h, size_t i)
{
    srv_deadline *d = h->heap[i];
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= h->n)
            break;
        if (child + 1 < h->n && h->heap[child + 1]->at < h->heap[child]->at)
            child++;
        if (h->heap[child]->at >= d->at)
            break;
        place(h, i, h->heap[child]);
        i = child;
    }
    place(h, i, d);
}

int srv_deadlines_arm(srv_deadlines *h, srv_deadline *d, int64_t at)
{
    if (d->slot) {
        assert(h->heap[d->slot - 1] == d);
        int64_t was = d->at;
        d->at = at;
        if (at < was)
            sift_up(h, d->slot - 1);
        else
            sift_down(h, d->slot - 1);
        return 0;
    }
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 64;
        srv_deadline **p = realloc(h->heap, cap * sizeof *p);
        if (!p)
            return -1;
        h->heap = p;
        h->cap = cap;
    }
    d->at = at;
    place(h, h->n++, d);
    sift_up(h, h->n - 1);
    return 0;
}

void srv_deadlines_cancel(srv_deadlines *h, srv_deadline *d)
{
    if (!d->slot)
        return;
    size_t i = d->slot - 1;
    assert(i < h->n && h->heap[i] == d);
    d->slot = 0;
    srv_deadline *last = h->heap[--h->n];
    if (i == h->n)
        return;
    place(h, i, last);
    if (i > 0 && h->heap[(i - 1) / 2]->at > last->at)
        sift_up(h, i);
    else
        sift_down(h, i);
}

void srv_deadlines_free(srv_deadlines *h)
{
    for (size_t i = 0; i < h->n; i++)
        h->heap[i]->slot = 0;
    free(h->heap);
    h->heap = NULL;
    h->n = h->cap = 0;
}
