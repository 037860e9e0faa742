/* review.c - the review worker (see review.h). */
#include "review.h"
#include "attune/msg.h"
#include "attune/state.h"
#include "clock.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <time.h>
#include "room_log.h"
#include "summary.h"

typedef struct {
    int used;
    uint64_t last_used;
    att_room *room; /* folded through room->seq */
} cached_room;

struct srv_review {
    pthread_t thread;
    srv_store_reader *reader; /* the worker thread's only */
    const att_catalog *cat;
    att_room_config room_config;
    size_t headroom;
    void (*notify)(void *arg);
    void *arg;
    /* The worker thread's only. */
    cached_room cache[SRV_REVIEW_CACHE];
    uint64_t uses;
    att_room *scratch;    /* the room being folded for a page */
    pthread_mutex_t lock; /* guards everything below */
    pthread_cond_t wake;
    int stopping;
    int pending; /* queued + running + done but not taken */
    srv_review_job *queue_head, *queue_tail;
    srv_review_job *done_head, *done_tail;
};

void srv_review_job_free(srv_review_job *job)
{
    if (!job)
        return;
    free(job->head);
    free(job->body);
    free(job);
}

/* Sets rv->scratch to the room folded through job->after_seq: from the
 * cached fold nearest below it, or from the start. */
static int room_at(srv_review *rv, const srv_review_job *job, cached_room **from, att_error *err)
{
    cached_room *best = NULL;
    for (int i = 0; i < SRV_REVIEW_CACHE; i++) {
        cached_room *e = &rv->cache[i];
        if (e->used && e->room->script == job->script &&
            strcmp(e->room->room_id, job->room_id) == 0 && e->room->seq <= job->after_seq &&
            (!best || e->room->seq > best->room->seq))
            best = e;
    }
    int rc;
    *from = best;
    if (best) {
        best->last_used = ++rv->uses;
        memcpy(rv->scratch, best->room, sizeof *rv->scratch);
    } else if ((rc = att_room_init(rv->scratch, rv->cat, job->script, job->room_id,
                                   &rv->room_config, err)) < 0) {
        return rc;
    }
    srv_log_source src = {.reader = rv->reader};
    return srv_room_log_fold(&src, rv->scratch, job->after_seq, err);
}

/* Keeps the fold at the end of this page for the next one, in place of the
 * fold this page started from (a reader going through a session in order
 * holds one entry), else a free entry, else the least recently used. */
static void remember(srv_review *rv, cached_room *started_from)
{
    cached_room *slot = started_from;
    for (int i = 0; i < SRV_REVIEW_CACHE && !slot; i++) {
        cached_room *e = &rv->cache[i];
        if (e->used && e->room->seq == rv->scratch->seq &&
            strcmp(e->room->room_id, rv->scratch->room_id) == 0)
            slot = e; /* the same fold again: refresh it */
    }
    for (int i = 0; i < SRV_REVIEW_CACHE && !slot; i++)
        if (!rv->cache[i].used)
            slot = &rv->cache[i];
    if (!slot) {
        slot = &rv->cache[0];
        for (int i = 1; i < SRV_REVIEW_CACHE; i++)
            if (rv->cache[i].last_used < slot->last_used)
                slot = &rv->cache[i];
    }
    if (!slot->room && !(slot->room = malloc(sizeof *slot->room)))
        return; /* only the cache is lost */
    memcpy(slot->room, rv->scratch, sizeof *slot->room);
    slot->used = 1;
    slot->last_used = ++rv->uses;
}

static int put(att_buf *b, const char *s)
{
    return srv_log_buf_put(b, s, strlen(s));
}

/* The summary of the room at job->upto_seq (a fold it keeps for later). */
static char *summary_text(srv_review *rv, srv_review_job *job, att_error *err)
{
    cached_room *from = NULL;
    srv_review_job at_end = *job;
    at_end.after_seq = job->upto_seq;
    if (room_at(rv, &at_end, &from, err) < 0)
        return NULL;
    remember(rv, from);
    json_t *s =
        srv_summary_json(rv->scratch, job->script, job->room_id, job->summary_created_at, err);
    char *text = s ? att_json_dump(s, NULL) : NULL;
    json_decref(s);
    if (s && !text)
        att_fail(err, ATT_ERR_INTERNAL, "review: out of memory");
    return text;
}

/* The page's body: {["room",] head..., "after", "upto", "limit", "states",
 * "events", "next_after", "more"[, "final_state", "state_hash"]}
 * (protocol/HTTP.md). */
static int build(srv_review *rv, srv_review_job *job, att_buf *b, att_error *err)
{
    char *summary = job->want_summary ? summary_text(rv, job, err) : NULL;
    if (job->want_summary && !summary)
        return -ATT_ERR_INTERNAL;
    cached_room *from = NULL;
    int rc = room_at(rv, job, &from, err);
    if (rc < 0) {
        free(summary);
        return rc;
    }
    char text[160];
    int fail = 0;
    for (size_t i = 0; i < rv->headroom && !fail; i++)
        fail = srv_log_buf_put(b, "", 1) != 0;
    fail = fail || put(b, "{");
    if (!fail && summary)
        fail = put(b, "\"room\":") || put(b, summary) || put(b, ",");
    free(summary);
    if (!fail && job->head && job->head[0])
        fail = put(b, job->head) || put(b, ",");
    snprintf(text, sizeof text,
             "\"after\":%" PRId64 ",\"upto\":%" PRId64 ",\"limit\":%d,\"states\":\"%s\","
             "\"events\":",
             job->after_seq, job->upto_seq, job->limit, job->with_states ? "each" : "none");
    if (fail || put(b, text))
        return att_fail(err, ATT_ERR_INTERNAL, "review: out of memory");
    srv_log_page_opts opts = {.limit = job->limit,
                              .max_bytes = SRV_REVIEW_PAGE_MAX_BYTES,
                              .with_states = job->with_states};
    srv_log_source src = {.reader = rv->reader};
    if ((rc = srv_room_log_page(&src, rv->scratch, job->upto_seq, &opts, b, err)) < 0)
        return rc;
    int more = rv->scratch->seq < job->upto_seq;
    snprintf(text, sizeof text, ",\"next_after\":%" PRId64 ",\"more\":%s", rv->scratch->seq,
             more ? "true" : "false");
    if (put(b, text))
        return att_fail(err, ATT_ERR_INTERNAL, "review: out of memory");
    if (!more) {
        char hash[65];
        if ((rc = att_state_hash(rv->scratch, hash, err)) < 0)
            return rc;
        if (put(b, ",\"final_state\":") ||
            att_state_write(rv->scratch, ATT_ROLE_THERAPIST, 0, b) < 0 ||
            put(b, ",\"state_hash\":\"") || put(b, hash) || put(b, "\""))
            return att_fail(err, ATT_ERR_INTERNAL, "review: out of memory");
    }
    if (put(b, "}"))
        return att_fail(err, ATT_ERR_INTERNAL, "review: out of memory");
    remember(rv, from);
    return 0;
}

static void run_job(srv_review *rv, srv_review_job *job)
{
    int64_t t0 = srv_mono_ns();
    att_buf b = {0};
    job->result = build(rv, job, &b, &job->error);
    if (job->result < 0) {
        att_buf_free(&b);
    } else {
        job->body = b.data;
        job->body_len = b.len - rv->headroom;
    }
    job->build_ns = srv_mono_ns() - t0;
}

static void *run(void *p)
{
    srv_review *rv = p;
    (void)prctl(PR_SET_NAME, "attune-review"); /* for top -H */
    /* Below the service thread: on a busy machine the rooms' messages win
     * the CPU and a review waits (Linux: a thread's own nice value, through
     * its tid; failing just leaves it at the process's priority). */
    (void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), SRV_REVIEW_NICE);
    pthread_mutex_lock(&rv->lock);
    for (;;) {
        while (!rv->stopping && !rv->queue_head)
            pthread_cond_wait(&rv->wake, &rv->lock);
        if (rv->stopping)
            break;
        srv_review_job *job = rv->queue_head;
        rv->queue_head = job->next;
        if (!rv->queue_head)
            rv->queue_tail = NULL;
        job->next = NULL;
        pthread_mutex_unlock(&rv->lock);
        run_job(rv, job);
        pthread_mutex_lock(&rv->lock);
        if (rv->done_tail)
            rv->done_tail->next = job;
        else
            rv->done_head = job;
        rv->done_tail = job;
        pthread_mutex_unlock(&rv->lock);
        if (rv->notify)
            rv->notify(rv->arg);
        pthread_mutex_lock(&rv->lock);
    }
    pthread_mutex_unlock(&rv->lock);
    return NULL;
}

static void free_list(srv_review_job *j)
{
    while (j) {
        srv_review_job *next = j->next;
        srv_review_job_free(j);
        j = next;
    }
}

static void free_review(srv_review *rv)
{
    for (int i = 0; i < SRV_REVIEW_CACHE; i++)
        free(rv->cache[i].room);
    free(rv->scratch);
    srv_store_reader_close(rv->reader);
    free_list(rv->queue_head);
    free_list(rv->done_head);
    pthread_mutex_destroy(&rv->lock);
    pthread_cond_destroy(&rv->wake);
    free(rv);
}

int srv_review_start(srv_store *store, const att_catalog *cat, const att_room_config *room_config,
                     size_t headroom, void (*notify)(void *arg), void *arg, srv_review **out,
                     att_error *err)
{
    srv_review *rv = calloc(1, sizeof *rv);
    if (!rv)
        return att_fail(err, ATT_ERR_INTERNAL, "review: out of memory");
    rv->cat = cat;
    rv->room_config = *room_config;
    rv->headroom = headroom;
    rv->notify = notify;
    rv->arg = arg;
    pthread_mutex_init(&rv->lock, NULL);
    pthread_cond_init(&rv->wake, NULL);
    int rc = srv_store_reader_open(store, &rv->reader, err);
    if (rc == 0 && !(rv->scratch = malloc(sizeof *rv->scratch)))
        rc = att_fail(err, ATT_ERR_INTERNAL, "review: out of memory");
    if (rc == 0 && pthread_create(&rv->thread, NULL, run, rv) != 0)
        rc = att_fail(err, ATT_ERR_INTERNAL, "review: cannot start its thread");
    if (rc < 0) {
        free_review(rv);
        return rc;
    }
    *out = rv;
    return 0;
}

void srv_review_stop(srv_review *rv)
{
    if (!rv)
        return;
    pthread_mutex_lock(&rv->lock);
    rv->stopping = 1;
    pthread_cond_signal(&rv->wake);
    pthread_mutex_unlock(&rv->lock);
    pthread_join(rv->thread, NULL);
    free_review(rv);
}

int srv_review_submit(srv_review *rv, srv_review_job *job, att_error *err)
{
    pthread_mutex_lock(&rv->lock);
    if (rv->stopping || rv->pending >= SRV_REVIEW_MAX_PENDING) {
        pthread_mutex_unlock(&rv->lock);
        return att_fail(err, ATT_ERR_RATE_LIMITED, "review: too many session logs at once");
    }
    rv->pending++;
    job->next = NULL;
    if (rv->queue_tail)
        rv->queue_tail->next = job;
    else
        rv->queue_head = job;
    rv->queue_tail = job;
    pthread_cond_signal(&rv->wake);
    pthread_mutex_unlock(&rv->lock);
    return 0;
}

srv_review_job *srv_review_take_done(srv_review *rv)
{
    pthread_mutex_lock(&rv->lock);
    srv_review_job *list = rv->done_head;
    for (srv_review_job *j = list; j; j = j->next)
        rv->pending--;
    rv->done_head = rv->done_tail = NULL;
    pthread_mutex_unlock(&rv->lock);
    return list;
}
