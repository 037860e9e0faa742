/* metrics.h - the server's counters and latency histograms, rendered in the
 * Prometheus text format for GET /metrics.
 *
 * Owns its plain counters. Lives in the server struct (net/server.h); the
 * room service counts its rooms, members, commits and latencies into it
 * through a pointer, the shell its connections and refusals. Both run on
 * the service thread only (store latencies are measured by the store thread
 * into each batch and added here when the batch comes back). In rooms/
 * because the room service, the lower part, writes it; no lws. */
#ifndef SRV_METRICS_H
#define SRV_METRICS_H

#include <stddef.h>
#include <stdint.h>
#include "attune/types.h"
#include "store.h"

#define SRV_HIST_BUCKETS 14

typedef struct {
    uint64_t counts[SRV_HIST_BUCKETS + 1]; /* last: +Inf */
    double sum_s;
    uint64_t n;
} srv_histogram;

typedef struct {
    int64_t connections;    /* open WebSocket connections */
    int64_t members;        /* authenticated connections */
    int64_t rooms;          /* rooms in memory */
    uint64_t rooms_loaded;  /* rooms folded from the store (first need, or again after eviction) */
    uint64_t rooms_evicted; /* quiet rooms freed from memory */
    uint64_t connections_total;
    uint64_t messages_received;
    uint64_t events_appended;
    uint64_t batches_committed;
    uint64_t store_failures;
    uint64_t slow_reader_closes;
    uint64_t keepalive_closes; /* silent after a ping: reaped */
    uint64_t oversize_closes;
    uint64_t bad_token_closes;
    uint64_t origin_rejects;
    /* Refused for a Host not this server's; connections over
     * --max-conns-per-address and --max-conns; accept() failures (EMFILE,
     * ENFILE); request bodies cut at --body-timeout. */
    uint64_t host_rejects;
    uint64_t conn_refused_address;
    uint64_t conn_refused_total;
    uint64_t accept_failures;
    uint64_t body_timeouts;
    uint64_t rejected[ATT_ERR__COUNT]; /* error replies by code */
    srv_histogram commit;              /* one transaction incl. fsync, per batch */
    srv_histogram durable;             /* append to completion back on the loop, per batch */
    srv_histogram apply;               /* decide + fold + encode of one command */
    srv_histogram room_load;           /* folding one room's log when it is first needed */
} srv_metrics;

void srv_histogram_add(srv_histogram *h, double seconds);

/* Renders all metrics, with the store's checkpoint figures, into a malloc'd
 * string (caller frees); NULL on allocation failure. */
char *srv_metrics_render(const srv_metrics *m, const srv_store_stats *store, size_t *len_out);

#endif
