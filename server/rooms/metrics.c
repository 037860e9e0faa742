/* metrics.c - Prometheus text rendering (see metrics.h). */
#include "metrics.h"
#include "attune/names.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const double bucket_bounds[SRV_HIST_BUCKETS] = {
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0};

void srv_histogram_add(srv_histogram *h, double seconds)
{
    int i = 0;
    while (i < SRV_HIST_BUCKETS && seconds > bucket_bounds[i])
        i++;
    h->counts[i]++;
    h->sum_s += seconds;
    h->n++;
}

typedef struct {
    char *buf;
    size_t len, cap;
    int failed;
} text_buf;

static void put(text_buf *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(text_buf *t, const char *fmt, ...)
{
    if (t->failed)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            t->failed = 1;
            return;
        }
        if ((size_t)n < t->cap - t->len) {
            t->len += (size_t)n;
            return;
        }
        size_t cap = t->cap * 2 + (size_t)n;
        char *nb = realloc(t->buf, cap);
        if (!nb) {
            t->failed = 1;
            return;
        }
        t->buf = nb;
        t->cap = cap;
    }
}

static void metric(text_buf *t, const char *name, const char *type, const char *help, double v)
{
    put(t, "# HELP %s %s\n# TYPE %s %s\n%s %.17g\n", name, help, name, type, name, v);
}

static void histogram(text_buf *t, const char *name, const char *help, const srv_histogram *h)
{
    put(t, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    uint64_t cum = 0;
    for (int i = 0; i < SRV_HIST_BUCKETS; i++) {
        cum += h->counts[i];
        put(t, "%s_bucket{le=\"%g\"} %llu\n", name, bucket_bounds[i], (unsigned long long)cum);
    }
    cum += h->counts[SRV_HIST_BUCKETS];
    put(t, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)cum);
    put(t, "%s_sum %.9f\n%s_count %llu\n", name, h->sum_s, name, (unsigned long long)h->n);
}

char *srv_metrics_render(const srv_metrics *m, const srv_store_stats *store, size_t *len_out)
{
    text_buf t = {malloc(4096), 0, 4096, 0};
    if (!t.buf)
        return NULL;
    metric(&t, "attune_connections", "gauge", "Open WebSocket connections.",
           (double)m->connections);
    metric(&t, "attune_members", "gauge", "Authenticated connections (room members).",
           (double)m->members);
    metric(&t, "attune_rooms", "gauge",
           "Rooms in memory (loaded when first needed, freed when quiet).", (double)m->rooms);
    metric(&t, "attune_rooms_loaded_total", "counter",
           "Rooms folded from the store into memory (first need, or again after eviction).",
           (double)m->rooms_loaded);
    metric(&t, "attune_rooms_evicted_total", "counter",
           "Quiet rooms freed from memory (their summary kept in the store).",
           (double)m->rooms_evicted);
    metric(&t, "attune_connections_total", "counter", "WebSocket connections accepted.",
           (double)m->connections_total);
    metric(&t, "attune_messages_received_total", "counter", "Client messages received.",
           (double)m->messages_received);
    metric(&t, "attune_events_appended_total", "counter", "Events durably committed.",
           (double)m->events_appended);
    metric(&t, "attune_store_batches_total", "counter", "Batches committed by the store.",
           (double)m->batches_committed);
    metric(&t, "attune_store_failures_total", "counter", "Batches the store failed to commit.",
           (double)m->store_failures);
    metric(&t, "attune_store_checkpoints_total", "counter",
           "Checkpoints that copied the whole WAL back into the database.",
           (double)store->checkpoints);
    metric(&t, "attune_store_wal_pages", "gauge", "WAL size in pages after the last commit.",
           (double)store->wal_pages);
    metric(&t, "attune_slow_reader_closes_total", "counter",
           "Connections closed because their send queue passed its bound.",
           (double)m->slow_reader_closes);
    metric(&t, "attune_keepalive_closes_total", "counter",
           "Connections reaped because they stayed silent after a ping.",
           (double)m->keepalive_closes);
    metric(&t, "attune_oversize_closes_total", "counter",
           "Connections closed for a message over 64 KiB.", (double)m->oversize_closes);
    metric(&t, "attune_bad_token_closes_total", "counter",
           "Connections closed for a bad, expired or foreign token.", (double)m->bad_token_closes);
    metric(&t, "attune_origin_rejects_total", "counter",
           "WebSocket handshakes refused for their Origin.", (double)m->origin_rejects);
    metric(&t, "attune_host_rejects_total", "counter",
           "Requests and handshakes refused for a Host header not this server's.",
           (double)m->host_rejects);
    put(&t,
        "# HELP attune_connections_refused_total Connections refused at accept or upgrade "
        "by cap.\n"
        "# TYPE attune_connections_refused_total counter\n"
        "attune_connections_refused_total{cap=\"per_address\"} %llu\n"
        "attune_connections_refused_total{cap=\"total\"} %llu\n",
        (unsigned long long)m->conn_refused_address, (unsigned long long)m->conn_refused_total);
    metric(&t, "attune_accept_failures_total", "counter",
           "accept() failures (EMFILE, ENFILE); accepting pauses briefly after each.",
           (double)m->accept_failures);
    metric(&t, "attune_body_timeouts_total", "counter",
           "Requests closed because their body did not arrive within --body-timeout.",
           (double)m->body_timeouts);
    put(&t, "# HELP attune_rejected_messages_total Error replies by protocol code.\n"
            "# TYPE attune_rejected_messages_total counter\n");
    for (int c = 1; c < ATT_ERR__COUNT; c++)
        put(&t, "attune_rejected_messages_total{code=\"%s\"} %llu\n", att_code_name((att_code)c),
            (unsigned long long)m->rejected[c]);
    histogram(&t, "attune_store_commit_seconds",
              "Store transaction time (incl. fsync) per committed batch.", &m->commit);
    histogram(&t, "attune_durable_seconds",
              "From queueing a batch to its completion being handled on the service thread.",
              &m->durable);
    histogram(&t, "attune_apply_seconds",
              "Decide, fold and encode time of one command on the service thread.", &m->apply);
    histogram(&t, "attune_room_load_seconds",
              "Time to fold one room's log when it is loaded into memory.", &m->room_load);
    if (t.failed) {
        free(t.buf);
        return NULL;
    }
    if (len_out)
        *len_out = t.len;
    return t.buf;
}
