/* test_store_pg.c - the PostgreSQL event store (store_pg.h) on a real
 * PostgreSQL (ATTUNE_TEST_PG; pg_test.h gives each run a fresh database):
 * create/read/walk, group commit across rooms, fencing between two stores
 * on one database (two nodes), a stale-epoch append, a verify that finds an
 * edited payload, erase. */
#include "check.h"
#include "pg_test.h"
#include "store/store_pg.h"
#include "store/keyring.h"

#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static char uri[512];

typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t cv;
    int notified;
} waiter;

static void on_notify(void *arg)
{
    waiter *w = arg;
    pthread_mutex_lock(&w->lock);
    w->notified++;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->lock);
}

/* Takes completed batches until n came back (or 10 s passed). */
static int collect(srv_pg_store *s, waiter *w, srv_store_batch **out, int n)
{
    int got = 0;
    for (int tries = 0; got < n && tries < 1000; tries++) {
        for (srv_store_batch *b = srv_pg_store_take_completed(s); b; b = b->next)
            out[got++] = b;
        if (got < n) {
            pthread_mutex_lock(&w->lock);
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 10 * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&w->cv, &w->lock, &ts);
            pthread_mutex_unlock(&w->lock);
        }
    }
    return got;
}

static srv_walk collect_event(const srv_stored_event *ev, void *arg, att_error *err)
{
    (void)err;
    char *buf = arg;
    size_t used = strlen(buf);
    snprintf(buf + used, 4096 - used, "%lld:%s:%.*s;", (long long)ev->seq, ev->type, (int)ev->len,
             ev->payload);
    return SRV_WALK_CONTINUE;
}

static void make_room(srv_pg_store *s, const char *id)
{
    srv_store_room room = {.created_at = 1700000000000};
    snprintf(room.id, sizeof room.id, "%s", id);
    snprintf(room.exercise, sizeof room.exercise, "enactment");
    att_error err = {0};
    CHECK_MSG(srv_pg_store_create_room(s, &room, "{\"type\":\"room_created\"}", 23, &err) == 0,
              "%s", err.message);
}

static void fill(srv_store_batch *b, const char *room, int64_t first, int n, const char *text)
{
    memset(b, 0, sizeof *b);
    snprintf(b->room_id, sizeof b->room_id, "%.64s", room);
    b->first_seq = first;
    b->n = n;
    for (int i = 0; i < n; i++) {
        b->payload[i] = text;
        b->payload_len[i] = strlen(text);
        b->type[i] = "turn";
    }
}

static int64_t count_rows(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    int64_t n = PQresultStatus(r) == PGRES_TUPLES_OK ? strtoll(PQgetvalue(r, 0, 0), NULL, 10) : -1;
    PQclear(r);
    return n;
}

/* How many rows (room, seq) has, as another session sees it. */
static int64_t stored_once(PGconn *c, const char *room, int64_t seq)
{
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM events WHERE room = '%s' AND seq = %lld", room,
             (long long)seq);
    return count_rows(c, sql);
}

/* ---- pg_terminate_backend of the writer, again and again ---- */

typedef struct {
    char app[128];
    srv_pg_store *store;
    int kills_wanted;
    atomic_int kills;
    atomic_int done;
} killer;

static void *killer_main(void *arg)
{
    killer *k = arg;
    PGconn *c = PQconnectdb(uri);
    char sql[300];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
             "WHERE application_name = '%s'",
             k->app);
    unsigned seed = 12345;
    for (int waited = 0; PQstatus(c) == CONNECTION_OK && atomic_load(&k->kills) < k->kills_wanted &&
                         waited < 3000;) {
        /* Once the writer is back from the previous kill, 2-20 ms into its
         * appending: it is busy, so the kill lands with groups in flight,
         * now and then between a group's commit and its answer. */
        srv_pg_writer_stats ws;
        srv_pg_store_get_writer_stats(k->store, &ws);
        if (ws.reconnects < (uint64_t)atomic_load(&k->kills)) {
            usleep(5000);
            waited++;
            continue;
        }
        waited = 0;
        usleep((useconds_t)(2000 + rand_r(&seed) % 18000));
        PGresult *r = PQexec(c, sql);
        if (PQresultStatus(r) == PGRES_TUPLES_OK && strtol(PQgetvalue(r, 0, 0), NULL, 10) > 0)
            atomic_fetch_add(&k->kills, 1);
        PQclear(r);
    }
    PQfinish(c);
    atomic_store(&k->done, 1);
    return NULL;
}

enum { KILL_ROOMS = 8, KILL_DEPTH = 4, KILL_MAX = 20000 };

typedef struct {
    int room;
    int64_t seq;
    int outcome; /* 0 in flight, 1 stored, 2 failed */
} kill_record;

typedef struct {
    srv_store_batch b;
    char text[64];
    int record;
} kill_slot;

typedef struct {
    int64_t seq[KILL_MAX];
    int k[KILL_MAX];
    int n;
} walked;

static srv_walk walk_k(const srv_stored_event *ev, void *arg, att_error *err)
{
    (void)err;
    walked *w = arg;
    int k = -1;
    char text[128];
    snprintf(text, sizeof text, "%.*s", (int)(ev->len < 127 ? ev->len : 127), ev->payload);
    const char *at = strstr(text, "\"k\":");
    if (at)
        k = (int)strtol(at + 4, NULL, 10);
    if (w->n < KILL_MAX) {
        w->seq[w->n] = ev->seq;
        w->k[w->n++] = k;
    }
    return SRV_WALK_CONTINUE;
}

/* Appends across rooms while another session terminates the writer's
 * backend every few tens of ms. Afterwards: every batch reported stored is
 * in the log exactly once with its own payload, no batch reported failed
 * is, the log is gapless and its chain verifies, and the store goes on. */
static void kill_test(srv_keyring *keys)
{
    srv_pg_store_options opt = {.uri = uri, .node_name = "k:1", .ws_url = "", .lease_ms = 3000};
    srv_pg_store *st = NULL;
    att_error err = {0};
    CHECK_MSG(srv_pg_store_open(&opt, keys, &st, &err) == 0, "%s", err.message);
    if (!st)
        return;
    char ids[KILL_ROOMS][16];
    int64_t next[KILL_ROOMS];
    int out_of[KILL_ROOMS] = {0}, resync[KILL_ROOMS] = {0};
    for (int i = 0; i < KILL_ROOMS; i++) {
        snprintf(ids[i], sizeof ids[i], "k%d", i);
        make_room(st, ids[i]);
        next[i] = 2;
    }
    kill_record *rec = calloc(KILL_MAX, sizeof *rec);
    kill_slot *slots = calloc(KILL_ROOMS * KILL_DEPTH, sizeof *slots);
    walked *w = calloc(1, sizeof *w);
    if (!rec || !slots || !w) {
        CHECK(0);
        return;
    }
    waiter wt = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};
    CHECK(srv_pg_store_start(st, 0, on_notify, NULL, &wt, &err) == 0);
    killer k = {.store = st, .kills_wanted = 60};
    snprintf(k.app, sizeof k.app, "attune-writer-%s", srv_pg_store_node_id(st));
    pthread_t kt;
    CHECK(pthread_create(&kt, NULL, killer_main, &k) == 0);
    PGconn *admin = PQconnectdb(uri);
    int n_rec = 0, out = 0, stored = 0, failed = 0, acked_unseen = 0;
    int free_slots[KILL_ROOMS * KILL_DEPTH], n_free = 0;
    for (int i = 0; i < KILL_ROOMS * KILL_DEPTH; i++)
        free_slots[n_free++] = i;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int rounds = 0; rounds < 200000; rounds++) {
        int feeding = !atomic_load(&k.done) && n_rec < KILL_MAX - KILL_ROOMS * KILL_DEPTH;
        for (int i = 0; feeding && i < KILL_ROOMS; i++) {
            if (resync[i] && out_of[i] == 0) {
                /* After a failure the room's log is what the store says
                 * (the room service rebuilds from it the same way). */
                CHECK(srv_pg_store_last_seq(st, ids[i], &next[i], &err) == 0);
                next[i]++;
                resync[i] = 0;
            }
            while (!resync[i] && out_of[i] < KILL_DEPTH && n_free > 0) {
                kill_slot *sl = &slots[free_slots[--n_free]];
                sl->record = n_rec;
                rec[n_rec] = (kill_record){i, next[i], 0};
                snprintf(sl->text, sizeof sl->text, "{\"type\":\"turn\",\"k\":%d}", n_rec);
                fill(&sl->b, ids[i], next[i]++, 1, sl->text);
                sl->b.owner = sl;
                n_rec++;
                CHECK(srv_pg_store_append(st, &sl->b, &err) == 0);
                out_of[i]++;
                out++;
            }
        }
        if (!feeding && out == 0)
            break;
        srv_store_batch *got[64];
        int n = collect(st, &wt, got, 1);
        for (srv_store_batch *more = srv_pg_store_take_completed(st); more && n < 64;
             more = more->next)
            got[n++] = more;
        for (int j = 0; j < n; j++) {
            kill_slot *sl = got[j]->owner;
            kill_record *r = &rec[sl->record];
            out--;
            out_of[r->room]--;
            free_slots[n_free++] = (int)(sl - slots);
            if (got[j]->result == 0) {
                r->outcome = 1;
                stored++;
                /* Acked only after commit: visible to another session. */
                acked_unseen += stored_once(admin, ids[r->room], r->seq) != 1;
            } else {
                r->outcome = 2;
                failed++;
                resync[r->room] = 1;
            }
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    pthread_join(kt, NULL);
    CHECK_INT(out, 0);
    CHECK_INT(acked_unseen, 0);
    /* The log against what was reported. */
    int missing = 0, doubled = 0, wrong = 0, failed_there = 0, gaps = 0;
    for (int i = 0; i < KILL_ROOMS; i++) {
        w->n = 0;
        CHECK_MSG(srv_pg_store_walk_events(st, ids[i], 0, -1, 0, walk_k, w, &err) ==
                      SRV_WALK_CONTINUE,
                  "%s", err.message);
        for (int e = 0; e < w->n; e++)
            gaps += w->seq[e] != e + 1;
        for (int q = 0; q < n_rec; q++) {
            if (rec[q].room != i)
                continue;
            int copies = 0, at_seq = 0;
            for (int e = 0; e < w->n; e++)
                if (w->k[e] == q) {
                    copies++;
                    at_seq += w->seq[e] == rec[q].seq;
                }
            if (rec[q].outcome == 1) {
                missing += copies == 0;
                doubled += copies > 1;
                wrong += copies == 1 && at_seq != 1;
            } else {
                failed_there += copies > 0;
            }
        }
        srv_chain_report rep;
        CHECK_MSG(srv_pg_store_verify_room(st, ids[i], &rep, &err) == 0, "%s", err.message);
    }
    CHECK_INT(missing, 0);
    CHECK_INT(doubled, 0);
    CHECK_INT(wrong, 0);
    CHECK_INT(failed_there, 0);
    CHECK_INT(gaps, 0);
    CHECK_INT(count_rows(admin, "SELECT count(*) - count(DISTINCT (room, seq)) FROM events"), 0);
    srv_pg_writer_stats ws;
    srv_pg_store_get_writer_stats(st, &ws);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("store_pg kill: %d backends terminated in %.1f s; %d batches stored, %d failed; "
           "connections lost %llu, reconnects %llu; unknown outcomes: %llu committed, %llu "
           "re-sent, %llu fenced, %llu failed\n",
           atomic_load(&k.kills), secs, stored, failed, (unsigned long long)ws.connections_lost,
           (unsigned long long)ws.reconnects, (unsigned long long)ws.unknown_committed,
           (unsigned long long)ws.unknown_resent, (unsigned long long)ws.unknown_fenced,
           (unsigned long long)ws.unknown_failed);
    CHECK(atomic_load(&k.kills) >= 60);
    CHECK(ws.connections_lost > 0 && ws.reconnects > 0);
    CHECK(ws.unknown_committed + ws.unknown_resent > 0);
    CHECK(stored > 0);

    /* A cut after a group went out whole: the server commits it, the
     * writer never hears; read back, each batch is found committed and
     * completes as stored, once. */
    srv_pg_writer_stats before;
    srv_pg_store_get_writer_stats(st, &before);
    int cut_ok = 0, cut_once = 0;
    for (int round = 0; round < 10; round++) {
        srv_pg_store_cut_after_nth_group(st, 1);
        for (int i = 0; i < KILL_ROOMS; i++) {
            int64_t last = 0;
            CHECK(srv_pg_store_last_seq(st, ids[i], &last, &err) == 0);
            fill(&slots[i].b, ids[i], last + 1, 1, "{\"type\":\"turn\",\"cut\":1}");
            CHECK(srv_pg_store_append(st, &slots[i].b, &err) == 0);
        }
        srv_store_batch *back[KILL_ROOMS];
        CHECK_INT(collect(st, &wt, back, KILL_ROOMS), KILL_ROOMS);
        for (int i = 0; i < KILL_ROOMS; i++) {
            cut_ok += back[i]->result == 0;
            cut_once += stored_once(admin, back[i]->room_id, back[i]->first_seq) == 1;
        }
    }
    srv_pg_writer_stats cut_stats;
    srv_pg_store_get_writer_stats(st, &cut_stats);
    CHECK_INT(cut_ok, 10 * KILL_ROOMS);
    CHECK_INT(cut_once, 10 * KILL_ROOMS);
    CHECK(cut_stats.connections_lost >= before.connections_lost + 10);
    CHECK(cut_stats.unknown_committed > before.unknown_committed);
    printf("store_pg cut: 10 cuts after a group was sent: %llu unknown outcomes read back as "
           "committed, %llu re-sent\n",
           (unsigned long long)(cut_stats.unknown_committed - before.unknown_committed),
           (unsigned long long)(cut_stats.unknown_resent - before.unknown_resent));
    for (int i = 0; i < KILL_ROOMS; i++) {
        srv_chain_report rep;
        CHECK_MSG(srv_pg_store_verify_room(st, ids[i], &rep, &err) == 0, "%s", err.message);
    }

    /* It goes on. */
    for (int i = 0; i < KILL_ROOMS; i++) {
        int64_t last = 0;
        CHECK(srv_pg_store_last_seq(st, ids[i], &last, &err) == 0);
        fill(&slots[i].b, ids[i], last + 1, 1, "{\"type\":\"turn\",\"after\":1}");
        CHECK(srv_pg_store_append(st, &slots[i].b, &err) == 0);
    }
    srv_store_batch *after[KILL_ROOMS];
    CHECK_INT(collect(st, &wt, after, KILL_ROOMS), KILL_ROOMS);
    int after_ok = 0;
    for (int i = 0; i < KILL_ROOMS; i++)
        after_ok += after[i]->result == 0;
    CHECK_INT(after_ok, KILL_ROOMS);
    PQfinish(admin);
    srv_pg_store_close(st);
    free(rec);
    free(slots);
    free(w);
}

/* Throughput: n single-event batches over m rooms, each room keeping up to
 * depth batches queued (as a room with several commands in flight does),
 * commit window 0. Prints events/s; checks every batch stored, in order. */
static void timing(srv_keyring *keys, int n, int m, int depth)
{
    srv_pg_store_options opt = {.uri = uri, .node_name = "t:1", .ws_url = "", .lease_ms = 3000};
    srv_pg_store *t = NULL;
    att_error err = {0};
    CHECK_MSG(srv_pg_store_open(&opt, keys, &t, &err) == 0, "%s", err.message);
    if (!t)
        return;
    char(*ids)[16] = calloc((size_t)m, sizeof *ids);
    int64_t *next = calloc((size_t)m, sizeof *next);
    int *left = calloc((size_t)m, sizeof *left);
    srv_store_batch *pool = calloc((size_t)m * (size_t)depth, sizeof *pool);
    if (!ids || !next || !left || !pool) {
        CHECK(0);
        return;
    }
    for (int i = 0; i < m; i++) {
        snprintf(ids[i], sizeof ids[i], "t%d", i);
        make_room(t, ids[i]);
        next[i] = 2;
        left[i] = n / m;
    }
    waiter w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};
    CHECK(srv_pg_store_start(t, 0, on_notify, NULL, &w, &err) == 0);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int out = 0, stored = 0, failed = 0;
    for (int i = 0; i < m; i++)
        for (int d = 0; d < depth && left[i] > 0; d++, left[i]--) {
            srv_store_batch *b = &pool[i * depth + d];
            fill(b, ids[i], next[i]++, 1, "{\"type\":\"turn\",\"timing\":1}");
            b->owner = &ids[i];
            failed += srv_pg_store_append(t, b, &err) != 0;
            out++;
        }
    int64_t *seen = calloc((size_t)m, sizeof *seen);
    int ordered = 1, visible = 0, sampled = 0;
    PGconn *admin = PQconnectdb(uri);
    for (int rounds = 0; out > 0 && rounds < 100000; rounds++) {
        srv_store_batch *got[256];
        int k = collect(t, &w, got, 1);
        for (srv_store_batch *more = srv_pg_store_take_completed(t); more && k < 256;
             more = more->next)
            got[k++] = more;
        for (int j = 0; j < k; j++) {
            srv_store_batch *b = got[j];
            int i = (int)((char(*)[16])b->owner - ids);
            out--;
            if (b->result != 0) {
                failed++;
                continue;
            }
            stored++;
            if (stored % 16 == 0) {
                /* Completed means committed: another session sees it. */
                sampled++;
                visible += stored_once(admin, b->room_id, b->first_seq) == 1;
            }
            ordered &= seen[i] == 0 || b->first_seq == seen[i] + 1;
            seen[i] = b->first_seq;
            if (left[i] > 0) {
                left[i]--;
                fill(b, ids[i], next[i]++, 1, "{\"type\":\"turn\",\"timing\":1}");
                b->owner = &ids[i];
                failed += srv_pg_store_append(t, b, &err) != 0;
                out++;
            }
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("store_pg timing: %d single-event batches over %d rooms (%d queued per room): %.0f "
           "events/s (%.3f s)\n",
           stored, m, depth, stored / secs, secs);
    CHECK_INT(failed, 0);
    CHECK_INT(stored, (n / m) * m);
    CHECK(ordered);
    CHECK(sampled > 0);
    CHECK_INT(visible, sampled);
    srv_pg_writer_stats ws;
    srv_pg_store_get_writer_stats(t, &ws);
    printf("store_pg timing: at most %d groups in flight\n", ws.max_groups_in_flight);
    CHECK(ws.max_groups_in_flight > 1);
    PQfinish(admin);
    srv_chain_report rep;
    CHECK(srv_pg_store_verify_room(t, ids[0], &rep, &err) == 0);
    CHECK_INT(rep.events, n / m + 1);
    srv_pg_store_close(t);
    free(seen);
    free(ids);
    free(next);
    free(left);
    free(pool);
}

int main(void)
{
    pg_test_fresh_db("store", uri, sizeof uri);
    char dir[] = "/tmp/attune-store-pg-XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    char kek[600];
    snprintf(kek, sizeof kek, "%s.kek", dir);
    att_error err = {0};
    srv_keyring *keys = NULL;
    CHECK_MSG(srv_keyring_open(dir, kek, 1, &keys, &err) == 0, "%s", err.message);
    if (!keys)
        return check_done("store_pg");

    srv_pg_store_options opt = {
        .uri = uri, .node_name = "a:1", .ws_url = "ws://a", .lease_ms = 3000};
    srv_pg_store *a = NULL;
    CHECK_MSG(srv_pg_store_open(&opt, keys, &a, &err) == 0, "%s", err.message);
    if (!a)
        return check_done("store_pg");
    CHECK(strncmp(srv_pg_store_node_id(a), "a:1:", 4) == 0);
    CHECK(srv_pg_store_node_alive(a));

    /* Create, read, walk. */
    make_room(a, "r1");
    make_room(a, "r2");
    srv_store_room room = {0};
    CHECK(srv_pg_store_get_room(a, "r1", &room, &err) == 0);
    CHECK_STR(room.exercise, "enactment");
    CHECK_INT(room.created_at, 1700000000000);
    CHECK(srv_pg_store_get_room(a, "nope", &room, &err) == -ATT_ERR_NOT_FOUND);
    srv_store_room dup = {.created_at = 1};
    snprintf(dup.id, sizeof dup.id, "r1");
    snprintf(dup.exercise, sizeof dup.exercise, "x");
    CHECK(srv_pg_store_create_room(a, &dup, "{}", 2, &err) == -ATT_ERR_BAD_MESSAGE);
    int64_t last = -1;
    CHECK(srv_pg_store_last_seq(a, "r1", &last, &err) == 0);
    CHECK_INT(last, 1);

    /* Settings and summaries. */
    char value[64];
    CHECK(srv_pg_store_get_setting(a, "demo", value, sizeof value, &err) == -ATT_ERR_NOT_FOUND);
    CHECK(srv_pg_store_set_setting(a, "demo", "r1", &err) == 0);
    CHECK(srv_pg_store_set_setting(a, "demo", "r2", &err) == 0);
    CHECK(srv_pg_store_get_setting(a, "demo", value, sizeof value, &err) == 0);
    CHECK_STR(value, "r2");
    srv_store_summary sum = {"r1", 1, "{\"n\":1}"};
    CHECK(srv_pg_store_put_summaries(a, &sum, 1, &err) == 0);
    char *got = NULL;
    CHECK(srv_pg_store_get_summary(a, "r1", &got, &err) == 0);
    CHECK(got && strcmp(got, "{\"n\":1}") == 0);
    free(got);

    /* Group commit across rooms. */
    waiter w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};
    CHECK_MSG(srv_pg_store_start(a, 2000, on_notify, NULL, &w, &err) == 0, "%s", err.message);
    enum { N = 20 };
    srv_store_batch batches[N];
    for (int i = 0; i < N; i++) {
        fill(&batches[i], i % 2 ? "r2" : "r1", 2 + i / 2, 1, "{\"type\":\"turn\",\"x\":1}");
        CHECK(srv_pg_store_append(a, &batches[i], &err) == 0);
    }
    srv_store_batch *done[N + 8];
    CHECK_INT(collect(a, &w, done, N), N);
    int ok = 0, grouped = 0;
    for (int i = 0; i < N; i++) {
        ok += done[i]->result == 0;
        grouped += done[i]->group_size > 1;
        if (done[i]->result != 0)
            fprintf(stderr, "batch failed: %s\n", done[i]->error.message);
    }
    CHECK_INT(ok, N);
    CHECK(grouped > 0);
    CHECK(srv_pg_store_get_summary(a, "r1", &got, &err) == -ATT_ERR_NOT_FOUND); /* stale now */
    CHECK(srv_pg_store_last_seq(a, "r1", &last, &err) == 0);
    CHECK_INT(last, 11);
    char text[4096] = "";
    CHECK(srv_pg_store_walk_events(a, "r1", 0, 2, 0, collect_event, text, &err) ==
          SRV_WALK_CONTINUE);
    CHECK_STR(text,
              "1:room_created:{\"type\":\"room_created\"};2:turn:{\"type\":\"turn\",\"x\":1};");
    text[0] = '\0';
    CHECK_MSG(srv_pg_store_walk_events(a, "r1", 9, -1, 0, collect_event, text, &err) ==
                  SRV_WALK_CONTINUE,
              "%s", err.message);
    CHECK(strncmp(text, "10:turn:", 8) == 0 && strstr(text, "11:turn:"));
    srv_pg_store_reader *rd = NULL;
    CHECK(srv_pg_store_reader_open(a, &rd, &err) == 0);
    text[0] = '\0';
    CHECK(srv_pg_store_reader_walk_events(rd, "r2", 0, -1, 3, collect_event, text, &err) ==
          SRV_WALK_CONTINUE);
    CHECK(strstr(text, "3:turn:") && !strstr(text, "4:turn:"));
    srv_pg_store_reader_close(rd);
    srv_chain_report rep;
    CHECK(srv_pg_store_verify_room(a, "r1", &rep, &err) == 0);
    CHECK_INT(rep.events, 11);
    CHECK_INT(rep.head_seq, 11);

    /* A gap is refused, not fenced. */
    srv_store_batch gap;
    fill(&gap, "r1", 20, 1, "{\"type\":\"turn\"}");
    CHECK(srv_pg_store_append(a, &gap, &err) == 0);
    CHECK_INT(collect(a, &w, done, 1), 1);
    CHECK(done[0]->result < 0 && !done[0]->fenced);

    /* An injected commit failure: the group rolls back; a batch behind it
     * (same group, or a later one in flight) stores nothing either; the
     * same seq then goes in (the head is read again). */
    srv_pg_store_fail_nth_batch(a, 1);
    srv_store_batch inj[2];
    fill(&inj[0], "r2", 12, 1, "{\"type\":\"turn\",\"inj\":1}");
    fill(&inj[1], "r2", 13, 1, "{\"type\":\"turn\",\"inj\":2}");
    CHECK(srv_pg_store_append(a, &inj[0], &err) == 0);
    CHECK(srv_pg_store_append(a, &inj[1], &err) == 0);
    CHECK_INT(collect(a, &w, done, 2), 2);
    CHECK(done[0] == &inj[0] && done[1] == &inj[1]);
    CHECK(inj[0].result < 0 && !inj[0].fenced && strstr(inj[0].error.message, "injected"));
    CHECK(inj[1].result < 0 && !inj[1].fenced);
    CHECK(srv_pg_store_last_seq(a, "r2", &last, &err) == 0);
    CHECK_INT(last, 11);
    fill(&inj[0], "r2", 12, 2, "{\"type\":\"turn\",\"inj\":3}");
    CHECK(srv_pg_store_append(a, &inj[0], &err) == 0);
    CHECK_INT(collect(a, &w, done, 1), 1);
    CHECK_MSG(inj[0].result == 0, "%s", inj[0].error.message);
    CHECK(srv_pg_store_verify_room(a, "r2", &rep, &err) == 0);
    CHECK_INT(rep.events, 13);

    /* Fencing: node b takes r1 over (a's lease still valid: b is told a
     * holds it; once a's node lease has run out b takes it). */
    srv_pg_store_options optb = {
        .uri = uri, .node_name = "b:1", .ws_url = "ws://b", .lease_ms = 3000};
    srv_pg_store *b = NULL;
    CHECK_MSG(srv_pg_store_open(&optb, keys, &b, &err) == 0, "%s", err.message);
    srv_store_lease lease;
    CHECK_INT(srv_pg_store_acquire_room(b, "r1", &lease, &err), 1);
    CHECK_STR(lease.holder, srv_pg_store_node_id(a));
    CHECK_STR(lease.holder_url, "ws://a");
    PGconn *admin = PQconnectdb(uri);
    CHECK(PQstatus(admin) == CONNECTION_OK);
    /* a sees it is wanted at its next renewal (every lease/3 = 1 s) */
    char wanted[4][SRV_STORE_ID_BYTES + 1];
    int n_wanted = 0;
    for (int i = 0; i < 40 && n_wanted == 0; i++) {
        usleep(100000);
        n_wanted = srv_pg_store_take_wanted(a, wanted, 4);
    }
    CHECK_INT(n_wanted, 1);
    CHECK(n_wanted == 1 && strcmp(wanted[0], "r1") == 0);
    /* a's lease expires (as if hung): b takes it with a new epoch */
    PQclear(
        PQexec(admin, "UPDATE nodes SET lease_until = now() - interval '1 s' WHERE id LIKE 'a:%'"));
    CHECK_MSG(srv_pg_store_acquire_room(b, "r1", &lease, &err) == 0, "%s", err.message);
    CHECK_INT(lease.epoch, 2);
    CHECK_INT(lease.last_seq, 11);
    /* a's next append is fenced and stores nothing */
    srv_store_batch stale;
    fill(&stale, "r1", 12, 2, "{\"type\":\"turn\",\"stale\":1}");
    CHECK(srv_pg_store_append(a, &stale, &err) == 0);
    CHECK_INT(collect(a, &w, done, 1), 1);
    CHECK(done[0]->result < 0 && done[0]->fenced == 1);
    CHECK_INT(count_rows(admin, "SELECT count(*) FROM events WHERE room = 'r1'"), 11);
    /* the new owner goes on at 12, no gap */
    waiter wb = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};
    CHECK(srv_pg_store_start(b, 0, on_notify, NULL, &wb, &err) == 0);
    srv_store_batch next;
    fill(&next, "r1", 12, 1, "{\"type\":\"turn\",\"b\":1}");
    CHECK(srv_pg_store_append(b, &next, &err) == 0);
    CHECK_INT(collect(b, &wb, done, 1), 1);
    CHECK_MSG(done[0]->result == 0, "%s", done[0]->error.message);
    CHECK_INT(count_rows(admin, "SELECT count(*) FROM events WHERE room = 'r1' AND epoch = 2"), 1);
    CHECK_INT(count_rows(admin, "SELECT max(seq) - count(*) FROM events WHERE room = 'r1'"), 0);
    /* the stale owner's same append again: still 0 rows */
    fill(&stale, "r1", 13, 1, "{\"type\":\"turn\",\"stale\":2}");
    CHECK(srv_pg_store_append(a, &stale, &err) == 0);
    CHECK_INT(collect(a, &w, done, 1), 1);
    CHECK(done[0]->result < 0 && done[0]->fenced == 1);
    CHECK_INT(count_rows(admin, "SELECT count(*) FROM events WHERE room = 'r1'"), 12);
    CHECK(srv_pg_store_verify_room(b, "r1", &rep, &err) == 0);
    CHECK_INT(rep.events, 12);
    /* release: the room is free again */
    CHECK(srv_pg_store_release_room(b, "r1", &err) == 0);
    CHECK_INT(count_rows(admin, "SELECT count(*) FROM rooms WHERE id = 'r1' AND owner IS NULL"), 1);

    /* verify finds an edited payload; a walk refuses it */
    PQclear(PQexec(admin, "UPDATE events SET payload = set_byte(payload, 20, get_byte(payload, "
                          "20) # 1) WHERE room = 'r2' AND seq = 5"));
    CHECK(srv_pg_store_verify_room(a, "r2", &rep, &err) == 1);
    CHECK_INT(rep.bad_seq, 5);
    CHECK(rep.problem[0] != '\0');
    CHECK(srv_pg_store_walk_events(a, "r2", 0, -1, 0, collect_event, (text[0] = '\0', text),
                                   &err) == SRV_WALK_FAILED);

    /* erase: key and rows gone */
    CHECK(srv_pg_store_erase_room(a, "r2", &err) == 0);
    CHECK(srv_pg_store_get_room(a, "r2", &room, &err) == -ATT_ERR_NOT_FOUND);
    CHECK_INT(count_rows(admin, "SELECT count(*) FROM events WHERE room = 'r2'"), 0);
    CHECK(srv_pg_store_erase_room(a, "r2", &err) == -ATT_ERR_NOT_FOUND);

    /* The held rooms' index: 200 rooms, released in an interleaved order
     * (backward-shift deletes, the last entry moved into each hole), each
     * release still finds its room (it clears the owner only then). */
    for (int i = 0; i < 200; i++) {
        char id[16];
        snprintf(id, sizeof id, "h%d", i);
        make_room(a, id);
    }
    for (int pass = 0; pass < 3; pass++)
        for (int i = pass; i < 200; i += 3) {
            char id[16];
            snprintf(id, sizeof id, "h%d", i);
            CHECK(srv_pg_store_release_room(a, id, &err) == 0);
        }
    CHECK_INT(count_rows(admin, "SELECT count(*) FROM rooms WHERE id LIKE 'h%' AND owner IS NULL"),
              200);

    PQfinish(admin);
    srv_pg_store_close(b);
    timing(keys, 2000, 20, 4);
    kill_test(keys);
    srv_pg_store_close(a);
    srv_keyring_close(keys);
    char cmd[1300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s'", dir, kek);
    if (system(cmd) != 0)
        fprintf(stderr, "cleanup failed\n");
    return check_done("store_pg");
}
