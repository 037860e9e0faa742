/* bench_latency.h - latency samples and their percentiles for the load
 * generator: every sample is kept (a run records at most a few hundred
 * thousand) and sorted once at the end, so percentiles are exact. Owns its
 * sample array. Single-threaded. */
#ifndef ATTUNE_BENCH_LATENCY_H
#define ATTUNE_BENCH_LATENCY_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    int64_t *ns;
    size_t n, cap;
    int sorted;
} bench_latency;

/* Adds one sample (nanoseconds). 0, or -1 when out of memory. */
int bench_latency_add(bench_latency *l, int64_t ns);

/* The q-quantile (0 <= q <= 1) by the nearest-rank method: the smallest
 * sample with at least q of all samples at or below it. 0 with no samples. */
int64_t bench_latency_quantile(bench_latency *l, double q);

int64_t bench_latency_max(bench_latency *l);

void bench_latency_free(bench_latency *l);

#endif
