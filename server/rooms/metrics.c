/* metrics.c - Prometheus text rendering (see metrics.h). */
#include "metrics.h"
#include "attune/names.h"

#include <stdarg.h>
#include <stddef.h>
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

/* Where a plain series' value is: a field of srv_metrics (a gauge's
 * int64_t, a counter's uint64_t) or of the store's srv_store_stats. */
typedef enum { FROM_GAUGE, FROM_COUNTER, FROM_STORE_COUNT, FROM_STORE_INT } series_source;

typedef struct {
    const char *name;
    const char *label; /* NULL, or `cap="total"`: one of several series of name */
    const char *type;  /* NULL: a further series of the name above (no HELP, TYPE) */
    const char *help;
    series_source source;
    size_t offset;
} series;

#define GAUGE(field) FROM_GAUGE, offsetof(srv_metrics, field)
#define COUNTER(field) FROM_COUNTER, offsetof(srv_metrics, field)
#define STORE(source, field) source, offsetof(srv_store_stats, field)

/* The plain series, in the order /metrics shows them. */
static const series plain[] = {
    {"attune_connections", NULL, "gauge", "Open WebSocket connections.", GAUGE(connections)},
    {"attune_members", NULL, "gauge", "Authenticated connections (room members).", GAUGE(members)},
    {"attune_rooms", NULL, "gauge", "Rooms in memory (loaded when first needed, freed when quiet).",
     GAUGE(rooms)},
    {"attune_rooms_loaded_total", NULL, "counter",
     "Rooms folded from the store into memory (first need, or again after eviction).",
     COUNTER(rooms_loaded)},
    {"attune_rooms_evicted_total", NULL, "counter",
     "Quiet rooms freed from memory (their summary kept in the store).", COUNTER(rooms_evicted)},
    {"attune_connections_total", NULL, "counter", "WebSocket connections accepted.",
     COUNTER(connections_total)},
    {"attune_messages_received_total", NULL, "counter", "Client messages received.",
     COUNTER(messages_received)},
    {"attune_events_appended_total", NULL, "counter", "Events durably committed.",
     COUNTER(events_appended)},
    {"attune_store_batches_total", NULL, "counter", "Batches committed by the store.",
     COUNTER(batches_committed)},
    {"attune_store_failures_total", NULL, "counter", "Batches the store failed to commit.",
     COUNTER(store_failures)},
    {"attune_store_checkpoints_total", NULL, "counter",
     "Checkpoints that copied the whole WAL back into the database.",
     STORE(FROM_STORE_COUNT, checkpoints)},
    {"attune_store_wal_pages", NULL, "gauge", "WAL size in pages after the last commit.",
     STORE(FROM_STORE_INT, wal_pages)},
    {"attune_slow_reader_closes_total", NULL, "counter",
     "Connections closed because their send queue passed its bound.", COUNTER(slow_reader_closes)},
    {"attune_keepalive_closes_total", NULL, "counter",
     "Connections reaped because they stayed silent after a ping.", COUNTER(keepalive_closes)},
    {"attune_oversize_closes_total", NULL, "counter",
     "Connections closed for a message over 64 KiB.", COUNTER(oversize_closes)},
    {"attune_bad_token_closes_total", NULL, "counter",
     "Connections closed for a bad, expired or foreign token.", COUNTER(bad_token_closes)},
    {"attune_origin_rejects_total", NULL, "counter",
     "WebSocket handshakes refused for their Origin.", COUNTER(origin_rejects)},
    {"attune_host_rejects_total", NULL, "counter",
     "Requests and handshakes refused for a Host header not this server's.", COUNTER(host_rejects)},
    {"attune_connections_refused_total", "cap=\"per_address\"", "counter",
     "Connections refused at accept or upgrade by cap.", COUNTER(conn_refused_address)},
    {"attune_connections_refused_total", "cap=\"total\"", NULL, NULL, COUNTER(conn_refused_total)},
    {"attune_accept_failures_total", NULL, "counter",
     "accept() failures (EMFILE, ENFILE); accepting pauses briefly after each.",
     COUNTER(accept_failures)},
    {"attune_body_timeouts_total", NULL, "counter",
     "Requests closed because their body did not arrive within --body-timeout.",
     COUNTER(body_timeouts)},
};

static double series_value(const series *s, const srv_metrics *m, const srv_store_stats *store)
{
    const char *base = s->source == FROM_GAUGE || s->source == FROM_COUNTER ? (const char *)m
                                                                            : (const char *)store;
    switch (s->source) {
    case FROM_GAUGE:
        return (double)*(const int64_t *)(base + s->offset);
    case FROM_STORE_INT:
        return (double)*(const int *)(base + s->offset);
    default:
        return (double)*(const uint64_t *)(base + s->offset);
    }
}

char *srv_metrics_render(const srv_metrics *m, const srv_store_stats *store, size_t *len_out)
{
    text_buf t = {malloc(4096), 0, 4096, 0};
    if (!t.buf)
        return NULL;
    for (size_t i = 0; i < sizeof plain / sizeof plain[0]; i++) {
        const series *s = &plain[i];
        if (s->type)
            put(&t, "# HELP %s %s\n# TYPE %s %s\n", s->name, s->help, s->name, s->type);
        put(&t, "%s%s%s%s %.17g\n", s->name, s->label ? "{" : "", s->label ? s->label : "",
            s->label ? "}" : "", series_value(s, m, store));
    }
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
