/* bench_latency.c - exact percentiles over kept samples (see bench_latency.h). */
#include "bench_latency.h"

#include <math.h>
#include <stdlib.h>

int bench_latency_add(bench_latency *l, int64_t ns)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 4096;
        int64_t *p = realloc(l->ns, cap * sizeof *p);
        if (!p)
            return -1;
        l->ns = p;
        l->cap = cap;
    }
    l->ns[l->n++] = ns;
    l->sorted = 0;
    return 0;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static void sort(bench_latency *l)
{
    if (!l->sorted) {
        qsort(l->ns, l->n, sizeof *l->ns, cmp_i64);
        l->sorted = 1;
    }
}

int64_t bench_latency_quantile(bench_latency *l, double q)
{
    if (l->n == 0)
        return 0;
    sort(l);
    size_t rank = (size_t)ceil(q * (double)l->n);
    if (rank < 1)
        rank = 1;
    if (rank > l->n)
        rank = l->n;
    return l->ns[rank - 1];
}

int64_t bench_latency_max(bench_latency *l)
{
    if (l->n == 0)
        return 0;
    sort(l);
    return l->ns[l->n - 1];
}

void bench_latency_free(bench_latency *l)
{
    free(l->ns);
    l->ns = NULL;
    l->n = l->cap = 0;
}
