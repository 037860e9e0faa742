/* rooms.c - live rooms: the registry, recovery by folding the log, the
 * decide -> fold -> store -> ack/broadcast cycle, presence and the
 * detector's clock (see room_service.h for the threads, ownership and the
 * state diagrams). Every function here runs on the service thread. */
#include "rooms_impl.h"

#include <malloc.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include "clock.h"
#include "invites.h"
#include "log.h"
#include "attune/detector.h"
#include "attune/engine.h"
#include "attune/names.h"
#include "attune/state.h"
#include "log_fold.h"
#include "summary.h"
#include "attune/detector.h"
#include "attune/engine.h"
#include "attune/names.h"
#include "attune/state.h"

/* A summary waiting to be written to the store's cache (owned strings). */
struct srv_pending_summary {
    char room_id[ATT_ROOM_ID_BYTES + 1];
    int64_t last_seq;
    char *summary;
};

#define ROOM_BUCKETS 8192
/* srv_deadline.kind of a room's two timers. */
enum { ROOM_DEADLINE_DETECTOR, ROOM_DEADLINE_PRESENCE };
#define SRV_EVICT_TRIM 16 /* rooms evicted in one sweep before malloc_trim */

static size_t hash_id(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return (size_t)h;
}

/* --- per-audience numbering ------------------------------------------------ */

static void index_clear(srv_aud_index *index)
{
    for (int a = 0; a < ATT_AUDIENCES; a++) {
        free(index[a].seqs);
        memset(&index[a], 0, sizeof index[a]);
    }
}

/* Records the room seq just folded as hidden from each audience whose
 * counter did not move. Most events are seen by all, so the lists stay short
 * (an idle room's are empty and allocate nothing). The therapist sees all:
 * its numbering is the log's. */
static int index_note(srv_aud_index *index, const int64_t before[ATT_AUDIENCES],
                      const att_room *after)
{
    for (int a = 0; a < ATT_AUDIENCES; a++) {
        if (a == ATT_ROLE_THERAPIST || after->aud_seq[a] != before[a])
            continue;
        srv_aud_index *ix = &index[a];
        if (ix->n == ix->cap) {
            size_t cap = ix->cap ? ix->cap * 2 : 8;
            int64_t *p = realloc(ix->seqs, cap * sizeof *p);
            if (!p)
                return -1;
            ix->seqs = p;
            ix->cap = cap;
        }
        ix->seqs[ix->n++] = after->seq;
    }
    return 0;
}

int64_t srv_room_resume_point(const srv_room *r, att_role role, int64_t aud_seq)
{
    if (aud_seq <= 0)
        return 0;
    if (role == ATT_ROLE_THERAPIST || (int)role < 0 || (int)role >= ATT_AUDIENCES)
        return aud_seq;
    if (aud_seq >= r->durable.aud_seq[role])
        return r->durable.seq; /* all it could have seen: nothing to replay */
    /* The room seq of its event aud_seq: one further on for every hidden
     * event at or before it. */
    const srv_aud_index *ix = &r->aud_index[role];
    int64_t seq = aud_seq;
    for (size_t i = 0; i < ix->n && ix->seqs[i] <= seq; i++)
        seq++;
    return seq;
}

/* A room's `live` copy, from the spares when there is one. */
static att_room *live_take(srv_rooms *svc)
{
    if (svc->n_spare_live)
        return svc->spare_live[--svc->n_spare_live];
    return malloc(sizeof(att_room));
}

static void live_give_back(srv_rooms *svc, att_room *live)
{
    if (!live)
        return;
    if (svc->n_spare_live < SRV_SPARE_LIVE)
        svc->spare_live[svc->n_spare_live++] = live;
    else
        free(live);
}

int srv_rooms_open(const srv_rooms_deps *deps, srv_rooms **out, att_error *err)
{
    *out = NULL;
    srv_rooms *svc = calloc(1, sizeof *svc);
    if (!svc)
        return att_fail(err, ATT_ERR_INTERNAL, "out of memory");
    svc->thread = pthread_self();
    svc->store = deps->store;
    svc->catalog = deps->catalog;
    svc->invites = deps->invites;
    svc->metrics = deps->metrics;
    svc->opt = deps->options;
    svc->room_buckets = ROOM_BUCKETS;
    svc->room_table = calloc(svc->room_buckets, sizeof *svc->room_table);
    if (!svc->room_table) {
        free(svc);
        return att_fail(err, ATT_ERR_INTERNAL, "out of memory");
    }
    int rc = svc->invites ? srv_invites_revision(svc->invites, &svc->invites_rev, err) : 0;
    if (rc < 0) {
        srv_rooms_free(svc);
        return rc;
    }
    *out = svc;
    return 0;
}

srv_outbox *srv_rooms_outbox(srv_rooms *svc)
{
    return &svc->outbox;
}

void srv_rooms_set_stopping(srv_rooms *svc)
{
    svc->stopping = 1;
}

const char *srv_room_id(const srv_room *room)
{
    return room->id;
}

const att_script *srv_room_script(const srv_room *room)
{
    return room->script;
}

const att_room *srv_room_committed(const srv_room *room)
{
    return &room->durable;
}

static void job_free(srv_job *job)
{
    for (int i = 0; i < job->n; i++)
        free(job->payload[i]);
    if (job->has_msg)
        att_msg_release(&job->msg);
    srv_deferred *d = job->deferred;
    while (d) {
        srv_deferred *next = d->next;
        free(d);
        d = next;
    }
    srv_resend *w = job->resends;
    while (w) {
        srv_resend *next = w->next;
        free(w);
        w = next;
    }
    free(job);
}

/* Frees a room already unlinked from the table. */
static void room_free(srv_room *r)
{
    /* Jobs left here were never handed back by the store (it is closed
     * before srv_rooms_free runs; an evicted room has none); they only hold
     * memory. */
    SRV_LIST_FOR_EACH_SAFE(&r->jobs, k, k_next)
    {
        srv_job *job = SRV_CONTAINER_OF(k, srv_job, link);
        srv_list_remove(&r->jobs, k);
        job_free(job);
    }
    srv_deadlines_cancel(&r->svc->deadlines, &r->deadline);
    srv_deadlines_cancel(&r->svc->deadlines, &r->presence);
    free(r->live);
    index_clear(r->aud_index);
    free(r->seats);
    free(r);
}

/* A seat's presence and rate for reading: an unwritten one is all zero. */
static const srv_seat *seat_peek(const srv_room *r, int seat)
{
    static const srv_seat unwritten;
    return r->seats ? &r->seats->seat[seat] : &unwritten;
}

/* The room's seats for writing, allocated on first need; NULL when out of
 * memory (callers then fall back to recording at once). */
static srv_room_seats *seats_for_write(srv_room *r)
{
    if (!r->seats)
        r->seats = calloc(1, sizeof *r->seats);
    return r->seats;
}

static void pending_clear(srv_rooms *svc)
{
    for (size_t i = 0; i < svc->n_pending_summaries; i++)
        free(svc->pending_summaries[i].summary);
    svc->n_pending_summaries = 0;
}

void srv_rooms_free(srv_rooms *svc)
{
    if (!svc)
        return;
    SRV_ASSERT_SERVICE_THREAD(svc);
    pending_clear(svc);
    free(svc->pending_summaries);
    svc->pending_summaries = NULL;
    svc->cap_pending_summaries = 0;
    if (!svc->room_table)
        return;
    for (size_t i = 0; i < svc->room_buckets; i++) {
        srv_room *r = svc->room_table[i];
        while (r) {
            srv_room *next = r->hash_next;
            room_free(r);
            r = next;
        }
    }
    free(svc->room_table);
    svc->room_table = NULL;
    while (svc->n_spare_live)
        free(svc->spare_live[--svc->n_spare_live]);
    srv_deadlines_free(&svc->deadlines);
    srv_outbox_free(&svc->outbox);
    free(svc);
}

/* The room in the table, also one that is going (see srv_room_tenure). */
static srv_room *table_find(srv_rooms *svc, const char *id)
{
    for (srv_room *r = svc->room_table[hash_id(id) % svc->room_buckets]; r; r = r->hash_next)
        if (strcmp(r->id, id) == 0)
            return r;
    return NULL;
}

srv_room *srv_rooms_find(srv_rooms *svc, const char *id)
{
    SRV_ASSERT_SERVICE_THREAD(svc);
    srv_room *r = table_find(svc, id);
    return r && r->tenure == SRV_ROOM_SERVING ? r : NULL;
}

static void unlink_room(srv_rooms *svc, srv_room *r)
{
    for (srv_room **link = &svc->room_table[hash_id(r->id) % svc->room_buckets]; *link;
         link = &(*link)->hash_next)
        if (*link == r) {
            *link = r->hash_next;
            return;
        }
}

/* Gives the room's lease back (a room this node stops serving while it
 * still holds it); a failure only delays another node's takeover until
 * the lease expires. */
static void release_lease(srv_rooms *svc, const char *id)
{
    att_error err = {0};
    if (srv_store_release_room(svc->store, id, &err) < 0)
        srv_log("warn", "room_release_failed", "{s:s,s:s}", "room", id, "error", err.message);
}

static int refuse_moved(att_error *err)
{
    return att_fail(err, ATT_ERR_ROOM_BUSY, "the room is served by another node");
}

/* Notes where each audience's numbering meets the log while a room folds
 * (srv_log_fold's hooks: the counters before each event, then after). */
typedef struct {
    srv_aud_index *index;
    int64_t before[ATT_AUDIENCES];
} fold_ctx;

static srv_walk fold_before(const srv_stored_event *ev, const att_room *room, void *arg,
                            att_error *err)
{
    (void)ev;
    (void)err;
    fold_ctx *fc = arg;
    memcpy(fc->before, room->aud_seq, sizeof fc->before);
    return SRV_WALK_CONTINUE;
}

static srv_walk fold_after(const srv_stored_event *ev, json_t *object, const att_room *room,
                           void *arg, att_error *err)
{
    (void)ev;
    (void)object;
    fold_ctx *fc = arg;
    if (index_note(fc->index, fc->before, room) < 0) {
        att_fail(err, ATT_ERR_INTERNAL, "out of memory");
        return SRV_WALK_FAILED;
    }
    return SRV_WALK_CONTINUE;
}

/* Folds a room's whole log into `out`; when index is not NULL (an array
 * of ATT_AUDIENCES, emptied first) it also records where each audience's
 * numbering meets the log. */
static int fold_log(srv_store *store, const att_catalog *cat, const att_room_config *rcfg,
                    const char *room_id, att_room *out, const att_script **script_out,
                    srv_aud_index *index, att_error *err)
{
    if (index)
        index_clear(index);
    fold_ctx fc = {.index = index};
    srv_fold_hooks hooks = {.before = fold_before, .after = fold_after, .arg = &fc};
    return srv_log_fold_room(store, cat, rcfg, room_id, index ? &hooks : NULL, out, script_out,
                             err);
}

static void room_arm_deadline(srv_room *r);
static void clear_stale_presence(srv_room *r);

srv_room *srv_rooms_get(srv_rooms *svc, const char *id, att_error *err)
{
    SRV_ASSERT_SERVICE_THREAD(svc);
    srv_room *r = table_find(svc, id);
    if (r && r->tenure == SRV_ROOM_SERVING)
        return r;
    if (r || !srv_store_node_alive(svc->store)) {
        /* Going to another node (or this node's own lease has lapsed):
         * its members reconnect there. */
        refuse_moved(err);
        return NULL;
    }
    int64_t t0 = srv_mono_ns();
    /* One writer per room: fold and serve only under the room's lease. A
     * room another live node holds is refused (the store has recorded
     * that this node wants it, so the holder hands it off and the
     * member's reconnect lands here again once it has). */
    srv_store_lease lease;
    int held = srv_store_acquire_room(svc->store, id, &lease, err);
    if (held < 0) {
        if (err->code != ATT_ERR_NOT_FOUND) {
            /* The database did not answer in time (a lock held by a frozen
             * node, a failover): the member retries, as for a moved room. */
            srv_log("error", "room_lease_failed", "{s:s,s:s}", "room", id, "error", err->message);
            refuse_moved(err);
        }
        return NULL;
    }
    if (held == 1) {
        srv_log("info", "room_held_elsewhere", "{s:s,s:s}", "room", id, "holder", lease.holder);
        refuse_moved(err);
        return NULL;
    }
    r = malloc(sizeof *r);
    if (r)
        memset(r, 0, offsetof(srv_room, durable));
    if (!r) {
        release_lease(svc, id);
        att_fail(err, ATT_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    if (fold_log(svc->store, svc->catalog, &svc->opt.room, id, &r->durable, &r->script,
                 r->aud_index, err) < 0) {
        /* A log that does not check (store.h: a broken chain, a seal that
         * does not open, a missing key) is not served: the caller answers
         * with an error, and the log says why (seqs, never content). */
        srv_store_room meta;
        att_error ignored = {0};
        if (err->code != ATT_ERR_NOT_FOUND ||
            srv_store_get_room(svc->store, id, &meta, &ignored) == 0)
            srv_log("error", "room_refused", "{s:s,s:s}", "room", id, "reason", err->message);
        index_clear(r->aud_index);
        free(r);
        release_lease(svc, id);
        return NULL;
    }
    snprintf(r->id, sizeof r->id, "%s", id);
    r->svc = svc;
    r->deadline_armed = -1;
    r->deadline_spent = -1;
    r->deadline.kind = ROOM_DEADLINE_DETECTOR;
    r->presence.kind = ROOM_DEADLINE_PRESENCE;
    size_t b = hash_id(id) % svc->room_buckets;
    r->hash_next = svc->room_table[b];
    svc->room_table[b] = r;
    svc->metrics->rooms++;
    svc->metrics->rooms_loaded++;
    srv_histogram_add(&svc->metrics->room_load, (double)(srv_mono_ns() - t0) / 1e9);
    /* Lazily, not at start-up: start-up no longer grows with history, and
     * a room nobody needs costs no memory. Crash recovery keeps its meaning
     * because a room out of memory has nobody connected: members its log
     * still shows present were left there by a server that stopped without
     * recording their `left` (a crash), and get it now, before any hello
     * can attach. (Its timers wait until now too: see DESIGN.md.) */
    clear_stale_presence(r);
    room_arm_deadline(r);
    return r;
}

const att_room *srv_room_live(const srv_room *room)
{
    return room->live ? room->live : &room->durable;
}

static srv_member *room_member(srv_room *r, uint64_t member_id)
{
    if (!member_id)
        return NULL;
    SRV_LIST_FOR_EACH_SAFE(&r->members, k, k_next)
    {
        srv_member *m = SRV_CONTAINER_OF(k, srv_member, link);
        if (m->id == member_id)
            return m;
    }
    return NULL;
}

static srv_job *room_tail_job(srv_room *r)
{
    return r->jobs.tail ? SRV_CONTAINER_OF(r->jobs.tail, srv_job, link) : NULL;
}

/* Queues text for m in the outbox now. */
static void send_text(srv_rooms *svc, srv_member *m, const char *text, size_t len)
{
    srv_outbox_send(&svc->outbox, m, srv_outbox_add_text(&svc->outbox, text, len));
}

/* A reply to m that keeps its place behind the room's in-flight commits
 * (kept with the last job, sent when it completes). Takes the text. */
static void room_reply(srv_rooms *svc, srv_member *m, char *text, size_t len)
{
    if (!text)
        return;
    srv_job *tail = m->room ? room_tail_job(m->room) : NULL;
    srv_deferred *d = tail ? malloc(sizeof *d + len) : NULL;
    if (d) {
        d->next = NULL;
        d->member_id = m->id;
        d->len = len;
        memcpy(d->text, text, len);
        *tail->deferred_tail = d;
        tail->deferred_tail = &d->next;
    } else {
        send_text(svc, m, text, len);
    }
    free(text);
}

void srv_room_reply_ack(srv_rooms *svc, srv_member *m, const char *id)
{
    SRV_ASSERT_SERVICE_THREAD(svc);
    size_t len = 0;
    json_t *ack = att_msg_ack(id, 0);
    char *text = ack ? att_json_dump(ack, &len) : NULL;
    json_decref(ack);
    room_reply(svc, m, text, len);
}

void srv_room_reply_error(srv_rooms *svc, srv_member *m, const char *id, att_code code,
                          const char *message)
{
    SRV_ASSERT_SERVICE_THREAD(svc);
    if ((int)code > 0 && code < ATT_ERR__COUNT)
        svc->metrics->rejected[code]++;
    size_t len = 0;
    json_t *e = att_msg_error(id, code, message);
    char *text = e ? att_json_dump(e, &len) : NULL;
    json_decref(e);
    room_reply(svc, m, text, len);
}

void srv_rooms_close_member(srv_rooms *svc, srv_member *m, int code, const char *bye,
                            att_left_reason leave)
{
    if (m->closing)
        return;
    m->closing = 1;
    m->replaying = 0;
    srv_outbox_close(&svc->outbox, m, code, bye, leave);
}

/* Rebuilds durable from the store (after a failed commit: memory must never
 * claim what the disk does not have). In-flight jobs become stale. */
static void room_rebuild(srv_room *r, const char *why)
{
    srv_rooms *svc = r->svc;
    att_room *fresh = malloc(sizeof *fresh);
    att_error err = {0};
    const att_script *script = NULL;
    /* Folded aside and swapped in whole, so a failed rebuild leaves the
     * index matching the durable state it keeps. */
    srv_aud_index index[ATT_AUDIENCES] = {{0}};
    if (!fresh || fold_log(svc->store, svc->catalog, &svc->opt.room, r->id, fresh, &script, index,
                           &err) < 0) {
        srv_log("error", "room_rebuild_failed", "{s:s,s:s,s:s}", "room", r->id, "why", why, "error",
                fresh ? err.message : "out of memory");
        index_clear(index);
    } else {
        index_clear(r->aud_index);
        memcpy(r->aud_index, index, sizeof index);
        att_room_copy(&r->durable, fresh);
        srv_log("warn", "room_rebuilt", "{s:s,s:s,s:I}", "room", r->id, "why", why, "seq",
                (json_int_t)r->durable.seq);
    }
    free(fresh);
    live_give_back(r->svc, r->live);
    r->live = NULL;
    r->generation++;
}

/* Recomputes live = durable + the events of current in-flight jobs (after a
 * failure on the service thread, before anything reached the store). */
static void room_reset_live(srv_room *r)
{
    live_give_back(r->svc, r->live);
    r->live = NULL;
    if (!r->jobs.count)
        return;
    r->live = live_take(r->svc);
    if (!r->live) {
        room_rebuild(r, "out of memory");
        return;
    }
    att_room_copy(r->live, &r->durable);
    SRV_LIST_FOR_EACH_SAFE(&r->jobs, k, k_next)
    {
        srv_job *job = SRV_CONTAINER_OF(k, srv_job, link);
        for (int i = 0; job->generation == r->generation && i < job->n; i++) {
            att_error err = {0};
            if (att_room_apply(r->live, &job->events[i], &err) < 0) {
                room_rebuild(r, "reapply failed");
                return;
            }
        }
    }
}

static void send_internal(srv_room *r, uint64_t member_id, const char *id)
{
    srv_member *m = room_member(r, member_id);
    if (m)
        srv_room_reply_error(r->svc, m, id, ATT_ERR_INTERNAL, "the server could not record this");
}

/* Takes ownership of job: folds its events into live, encodes them and
 * queues them for the store. */
static void room_submit(srv_room *r, srv_job *job)
{
    srv_rooms *svc = r->svc;
    att_error err = {0};
    const char *why = NULL;
    job->room = r;
    job->generation = r->generation;
    job->deferred_tail = &job->deferred;
    if (!r->live) {
        r->live = live_take(svc);
        if (!r->live) {
            why = "out of memory";
            goto fail;
        }
        att_room_copy(r->live, &r->durable);
    }
    /* The core numbers a command's events from the live state it was
     * decided against: the first is the live seq + 1. */
    assert(job->n > 0 && job->events[0].seq == r->live->seq + 1);
    int applied = 0;
    for (; applied < job->n; applied++)
        if (att_room_apply(r->live, &job->events[applied], &err) < 0)
            break;
    if (applied < job->n) {
        why = err.message;
        goto fail_live;
    }
    srv_store_batch *b = &job->batch;
    memset(b, 0, sizeof *b);
    snprintf(b->room_id, sizeof b->room_id, "%s", r->id);
    b->first_seq = job->events[0].seq;
    b->n = job->n;
    b->owner = job;
    for (int i = 0; i < job->n; i++) {
        size_t len = 0;
        job->payload[i] = att_event_encode_stored(&job->events[i], r->script, &len);
        if (!job->payload[i]) {
            why = "cannot encode event";
            goto fail_live;
        }
        b->payload[i] = job->payload[i];
        b->payload_len[i] = len;
        b->type[i] = att_event_type_name(job->events[i].type);
    }
    if (srv_store_append(svc->store, b, &err) < 0) {
        why = err.message;
        goto fail_live;
    }
    srv_list_add_tail(&r->jobs, &job->link);
    room_arm_deadline(r);
    return;

fail_live:
    room_reset_live(r);
fail:
    srv_log("error", "submit_failed", "{s:s,s:s}", "room", r->id, "error", why);
    send_internal(r, job->sender, job->has_id ? job->id : NULL);
    job_free(job);
}

/* partner_a, partner_b, the therapist or an observer. */
static int role_is_seat(att_role role)
{
    return (int)role >= 0 && (int)role < ATT_AUDIENCES;
}

static srv_job *job_new(uint64_t sender)
{
    srv_job *job = calloc(1, sizeof *job);
    if (job)
        job->sender = sender;
    return job;
}

/* The seat a role's presence is kept in: partner_a, partner_b, therapist,
 * the observers together; -1 for none. */
static int seat_of(att_role role)
{
    return (int)role >= 0 && (int)role < ATT_AUDIENCES ? (int)role : -1;
}

/* Refills a token bucket of `per_minute` tokens a minute, holding at most
 * that many (a fresh one is full). */
static void bucket_refill(srv_bucket *b, int per_minute, int64_t now)
{
    if (!b->at) {
        b->tokens = per_minute;
    } else if (now > b->at) {
        b->tokens += (double)(now - b->at) * per_minute / 60000.0;
        if (b->tokens > per_minute)
            b->tokens = per_minute;
    }
    b->at = now;
}

/* Whether a command's n events may enter the log: the room's cap (the
 * therapist and presence keep a reserve past it, so a full room can still
 * be ended and noted), the link's rate (every seat's, the therapist's too)
 * and the room's rate (refuses partners only: the therapist's events count
 * but are never held up by it). Charges the buckets when it may. */
static int room_admit(srv_room *r, att_role role, int n, int64_t now, att_error *err)
{
    const srv_room_options *cfg = &r->svc->opt;
    int staff = role == ATT_ROLE_THERAPIST;
    int64_t seq = srv_room_live(r)->seq;
    if (seq + n > cfg->room_event_cap + (staff ? SRV_LOG_RESERVE : 0))
        return att_fail(err, ATT_ERR_LOG_FULL,
                        staff ? "this session's log is full"
                              : "this session's log is full; only the therapist can add to it");
    int seat = seat_of(role);
    int limited = cfg->link_events_per_minute > 0 || cfg->room_events_per_minute > 0;
    srv_room_seats *seats = limited ? seats_for_write(r) : NULL;
    if (limited && !seats)
        return att_fail(err, ATT_ERR_INTERNAL, "out of memory");
    srv_bucket *link = seats && seat >= 0 ? &seats->seat[seat].bucket : NULL;
    if (link && cfg->link_events_per_minute > 0) {
        bucket_refill(link, cfg->link_events_per_minute, now);
        if (link->tokens < 1)
            return att_fail(err, ATT_ERR_RATE_LIMITED,
                            "too many events from this link; wait a moment and try again");
    }
    if (cfg->room_events_per_minute > 0) {
        bucket_refill(&seats->room_bucket, cfg->room_events_per_minute, now);
        if (!staff && seats->room_bucket.tokens < 1)
            return att_fail(err, ATT_ERR_ROOM_BUSY,
                            "this room is recording too much at once; wait a moment and try again");
        seats->room_bucket.tokens -= n;
        if (staff && seats->room_bucket.tokens < 0)
            seats->room_bucket.tokens = 0;
    }
    if (link && cfg->link_events_per_minute > 0)
        link->tokens -= n;
    return 0;
}

/* Sends m the ack of a resent command: the original's seq, "duplicate". */
static void reply_duplicate(srv_rooms *svc, srv_member *m, const char *id, int64_t seq)
{
    size_t len = 0;
    json_t *ack = att_msg_ack_duplicate(id, seq);
    char *text = ack ? att_json_dump(ack, &len) : NULL;
    json_decref(ack);
    room_reply(svc, m, text, len);
}

/* A command whose id the room has recorded for this role (the client
 * resent it, not knowing whether it got in): nothing is appended or
 * broadcast. Recorded: the original's ack now. Still on its way to the
 * store: the original's outcome when it commits. 1 when it was one. */
static int resent_command(srv_room *r, srv_member *m, const att_msg *msg)
{
    const att_command *c = att_room_find_command(srv_room_live(r), m->role, msg->command_id);
    if (!c)
        return 0;
    const char *id = msg->has_id ? msg->id : NULL;
    if (c->last_seq <= r->durable.seq) {
        reply_duplicate(r->svc, m, id, c->ack_seq);
        return 1;
    }
    SRV_LIST_FOR_EACH_SAFE(&r->jobs, k, k_next)
    {
        srv_job *job = SRV_CONTAINER_OF(k, srv_job, link);
        if (job->generation != r->generation || c->seq < job->batch.first_seq ||
            c->seq >= job->batch.first_seq + job->n)
            continue;
        srv_resend *w = calloc(1, sizeof *w);
        if (!w) {
            srv_room_reply_error(r->svc, m, id, ATT_ERR_INTERNAL, "out of memory");
            return 1;
        }
        w->member_id = m->id;
        if (id) {
            w->has_id = 1;
            snprintf(w->id, sizeof w->id, "%s", id);
        }
        w->next = job->resends;
        job->resends = w;
        return 1;
    }
    /* In live but in no current job: cannot happen (live is durable plus
     * the current jobs); answered as the store's failure would be. */
    srv_room_reply_error(r->svc, m, id, ATT_ERR_INTERNAL, "the server could not record this");
    return 1;
}

void srv_room_command(srv_rooms *svc, srv_member *m, att_msg *msg)
{
    SRV_ASSERT_SERVICE_THREAD(svc);
    srv_room *r = m->room;
    assert(r && role_is_seat(m->role));
    int64_t t0 = srv_mono_ns();
    if (msg->command_id && resent_command(r, m, msg)) {
        att_msg_release(msg);
        return;
    }
    srv_job *job = job_new(m->id);
    if (!job) {
        srv_room_reply_error(svc, m, msg->has_id ? msg->id : NULL, ATT_ERR_INTERNAL,
                             "out of memory");
        att_msg_release(msg);
        return;
    }
    att_error err = {0};
    int64_t now = srv_now_ms();
    int rc = att_engine_decide(srv_room_live(r), m->role, msg, now, job->events, &job->n, &err);
    if (rc == 0 && msg->type == ATT_MSG_TYPING && m->role == att_room_actor(srv_room_live(r))) {
        /* Composing is not silence: the detector's clock runs from here. */
        r->composing_at = now;
        r->deadline_spent = -1;
        room_arm_deadline(r);
    }
    if (rc == 0 && job->n > 0)
        rc = room_admit(r, m->role, job->n, now, &err);
    if (rc < 0 || job->n == 0) {
        if (rc < 0)
            srv_room_reply_error(svc, m, msg->has_id ? msg->id : NULL, err.code, err.message);
        else
            srv_room_reply_ack(svc, m, msg->has_id ? msg->id : NULL);
        att_msg_release(msg);
        free(job);
        return;
    }
    job->msg = *msg; /* the events borrow from it */
    job->has_msg = 1;
    memset(msg, 0, sizeof *msg);
    if (job->msg.has_id) {
        job->has_id = 1;
        snprintf(job->id, sizeof job->id, "%s", job->msg.id);
    }
    room_submit(r, job);
    srv_histogram_add(&svc->metrics->apply, (double)(srv_mono_ns() - t0) / 1e9);
}

static void submit_presence(srv_room *r, int n, att_event *events)
{
    if (n <= 0)
        return;
    if (srv_room_live(r)->seq + n > r->svc->opt.room_event_cap + SRV_LOG_RESERVE) {
        /* Past even the reserve: the log takes nothing more (a `left` lost
         * here leaves the member shown present until the room is reloaded). */
        srv_log("warn", "presence_dropped_log_full", "{s:s}", "room", r->id);
        return;
    }
    srv_job *job = job_new(0);
    if (!job) {
        srv_log("error", "presence_lost", "{s:s}", "room", r->id);
        return;
    }
    memcpy(job->events, events, (size_t)n * sizeof *events);
    job->n = n;
    room_submit(r, job);
}

/* --- debounced presence ---------------------------------------------------
 * A member whose connection drops is not recorded as gone at once: their
 * `left` waits (a timer on the room, presence_sul) until they have stayed
 * away --presence-debounce-ms, and is then recorded with the time they went.
 * Coming back within it records no joined; such returns, and takeovers of a
 * seat after its first `replaced` in a window, are counted per seat and
 * recorded as one staff-only `reconnected` per window. So a reconnect loop
 * adds a few events per window, not two per reconnect. */

static void presence_arm(srv_room *r);

/* How long a seat's `left` waits: the window, or a partner's disconnect
 * grace when that is shorter (the detector's suggestion is never late). */
static int64_t left_wait(const srv_room *r, int seat)
{
    const srv_room_options *cfg = &r->svc->opt;
    int64_t wait = cfg->presence_debounce_ms;
    if (att_role_is_partner((att_role)seat) && cfg->room.disconnect_grace_ms < wait)
        wait = cfg->room.disconnect_grace_ms;
    return wait;
}

static void seat_count_return(srv_seat *s, int64_t now, int64_t gap_ms)
{
    if (!s->tally_times)
        s->tally_since = now;
    s->tally_times++;
    s->tally_gap_ms += gap_ms;
}

static void seat_record_returns(srv_room *r, int seat, int64_t now)
{
    srv_seat *s = &r->seats->seat[seat];
    if (!s->tally_times)
        return;
    att_event events[ATT_MAX_EVENTS_PER_COMMAND];
    int n = 0;
    if (att_engine_decide_reconnected(srv_room_live(r), (att_role)seat, now, s->tally_times,
                                      s->tally_gap_ms, events, &n) == 0)
        submit_presence(r, n, events);
    s->tally_times = 0;
    s->tally_gap_ms = 0;
    s->tally_since = 0;
}

static void seat_record_lefts(srv_room *r, int seat)
{
    srv_seat *s = &r->seats->seat[seat];
    for (; s->pending_lefts > 0; s->pending_lefts--) {
        att_event events[ATT_MAX_EVENTS_PER_COMMAND];
        int n = 0;
        /* `at` is when they went: the detector's grace counts from there. */
        if (att_engine_decide_leave(srv_room_live(r), (att_role)seat, s->left_reason, s->left_at,
                                    events, &n) == 0)
            submit_presence(r, n, events);
    }
    s->left_at = 0;
}

/* Records what is due at `now` (everything when `all`): a seat's returns
 * before its `left`, so the therapist reads them in the order they were. */
static void presence_flush(srv_room *r, int64_t now, int all)
{
    int64_t window = r->svc->opt.presence_debounce_ms;
    for (int seat = 0; r->seats && seat < ATT_AUDIENCES; seat++) {
        srv_seat *s = &r->seats->seat[seat];
        int left_due = s->pending_lefts > 0 && (all || now >= s->left_at + left_wait(r, seat));
        if (s->tally_times && (all || left_due || now >= s->tally_since + window))
            seat_record_returns(r, seat, now);
        if (left_due)
            seat_record_lefts(r, seat);
    }
}

/* When presence_flush next has something to record (ms), -1 for never. */
static int64_t presence_due(const srv_room *r)
{
    int64_t due = -1;
    for (int seat = 0; seat < ATT_AUDIENCES; seat++) {
        const srv_seat *s = seat_peek(r, seat);
        int64_t t = -1;
        if (s->pending_lefts > 0)
            t = s->left_at + left_wait(r, seat);
        if (s->tally_times) {
            int64_t u = s->tally_since + r->svc->opt.presence_debounce_ms;
            t = t < 0 || u < t ? u : t;
        }
        if (t >= 0 && (due < 0 || t < due))
            due = t;
    }
    return due;
}

/* The presence deadline is due (srv_rooms_tick). */
static void presence_fire(srv_room *r, int64_t now)
{
    r->presence_armed = 0;
    if (r->svc->stopping)
        return; /* srv_rooms_leave_all records it all */
    presence_flush(r, now, 0);
    presence_arm(r);
}

static void presence_arm(srv_room *r)
{
    int64_t due = presence_due(r);
    if (due < 0) {
        srv_deadlines_cancel(&r->svc->deadlines, &r->presence);
        r->presence_armed = 0;
        return;
    }
    if (due == r->presence_armed)
        return;
    if (srv_deadlines_arm(&r->svc->deadlines, &r->presence, due) < 0) {
        srv_log("error", "presence_timer_lost", "{s:s}", "room", r->id);
        return;
    }
    r->presence_armed = due;
}

int srv_room_idle(const srv_room *r)
{
    if (r->members.count || r->jobs.count || r->deadline_armed >= 0 || r->presence_armed)
        return 0;
    for (int seat = 0; seat < ATT_AUDIENCES; seat++)
        if (seat_peek(r, seat)->pending_lefts || seat_peek(r, seat)->tally_times)
            return 0;
    return 1;
}

static void room_attach(srv_room *r, srv_member *m)
{
    srv_rooms *svc = r->svc;
    m->room = r;
    srv_list_add_tail(&r->members, &m->link);
    svc->metrics->members++;
    int replaced = 0;
    if (m->role != ATT_ROLE_OBSERVER) {
        srv_member *old = r->slot[m->role];
        r->slot[m->role] = m;
        replaced = old && old != m;
        if (old && old != m) {
            /* A reopened tab, or someone else holding the link: either way
             * the therapist is told (`replaced`), and the old window too. */
            srv_list_remove(&r->members, &old->link);
            old->room = NULL;
            svc->metrics->members--;
            srv_log("info", "replaced", "{s:s,s:s,s:I,s:I}", "room", r->id, "role",
                    att_role_name(m->role), "old", (json_int_t)old->id, "new", (json_int_t)m->id);
            srv_rooms_close_member(svc, old, SRV_CLOSE_REPLACED, "replaced", ATT_LEFT_CLOSED);
        }
    }
    att_event events[ATT_MAX_EVENTS_PER_COMMAND];
    int n = 0;
    int64_t now = srv_now_ms();
    int seat = seat_of(m->role);
    int64_t window = svc->opt.presence_debounce_ms;
    /* Only what writes a seat allocates one (see srv_room_seats): a
     * partner's or the therapist's plain first join writes nothing. Without
     * memory the join is simply recorded. */
    srv_room_seats *seats = seat >= 0 && (r->seats || replaced || seat == ATT_ROLE_OBSERVER)
                                ? seats_for_write(r)
                                : NULL;
    srv_seat *s = seats ? &seats->seat[seat] : NULL;
    int observer_over = 0;
    if (s && !replaced && !s->pending_lefts && seat == ATT_ROLE_OBSERVER && window > 0) {
        if (!s->joins_since || now - s->joins_since >= window) {
            s->joins_since = now;
            s->window_joins = 0;
        }
        observer_over = s->window_joins >= SRV_OBSERVER_JOINS_PER_WINDOW;
        if (!observer_over)
            s->window_joins++;
    }
    if (s && !replaced && s->pending_lefts > 0) {
        /* Back within the window: the log never showed them gone. */
        seat_count_return(s, now, now - s->left_at);
        if (--s->pending_lefts == 0)
            s->left_at = 0;
    } else if (observer_over) {
        /* Past the window's budget of observer joins: this connection
         * comes and goes unrecorded (the log still shows the observers
         * recorded, at least one while any is connected). */
        s->unrecorded_live++;
        seat_count_return(s, now, 0);
    } else if (s && replaced && window > 0 && s->replaced_at && now - s->replaced_at < window) {
        seat_count_return(s, now, 0); /* the window's `replaced` is recorded already */
    } else {
        int rc = replaced ? att_engine_decide_replaced(srv_room_live(r), m->role, now, events, &n)
                          : att_engine_decide_join(srv_room_live(r), m->role, now, events, &n);
        if (rc == 0)
            submit_presence(r, n, events);
        if (s && replaced)
            s->replaced_at = now;
    }
    presence_arm(r);
}

void srv_room_detach(srv_rooms *svc, srv_member *m, att_left_reason why, int record_leave)
{
    SRV_ASSERT_SERVICE_THREAD(svc);
    srv_room *r = m->room;
    if (!r)
        return;
    srv_list_remove(&r->members, &m->link);
    if (m->role != ATT_ROLE_OBSERVER && r->slot[m->role] == m)
        r->slot[m->role] = NULL;
    m->room = NULL;
    m->replaying = 0;
    r->svc->metrics->members--;
    int seat = seat_of(m->role);
    if (seat == ATT_ROLE_OBSERVER && seat_peek(r, seat)->unrecorded_live > 0) {
        /* One of the unrecorded observer connections goes (which one does
         * not matter: the fold only counts them). */
        r->seats->seat[seat].unrecorded_live--;
        return;
    }
    if (!record_leave)
        return;
    if (seat >= 0 && r->svc->opt.presence_debounce_ms > 0 && why != ATT_LEFT_SHUTDOWN &&
        !r->svc->stopping && seats_for_write(r)) {
        srv_seat *s = &r->seats->seat[seat];
        if (!s->pending_lefts) {
            s->left_at = srv_now_ms();
            s->left_reason = why;
        }
        s->pending_lefts++;
        presence_arm(r);
        return;
    }
    att_event events[ATT_MAX_EVENTS_PER_COMMAND];
    int n = 0;
    if (att_engine_decide_leave(srv_room_live(r), m->role, why, srv_now_ms(), events, &n) == 0)
        submit_presence(r, n, events);
}

void srv_rooms_forget_member(srv_rooms *svc, srv_member *m, att_left_reason why, int record_leave)
{
    SRV_ASSERT_SERVICE_THREAD(svc);
    if (m->room)
        srv_room_detach(svc, m, why, record_leave);
    srv_outbox_forget(&svc->outbox, m);
}

int srv_room_join(srv_rooms *svc, srv_room *r, srv_member *m, att_role role, const char *id,
                  int64_t resume_from)
{
    SRV_ASSERT_SERVICE_THREAD(svc);
    assert(role_is_seat(role) && !m->room && m->id != 0);
    json_t *ack = att_msg_ack(id, 0);
    if (!ack)
        return -1;
    const att_catalog *cat = svc->catalog;
    int rc = json_object_set_new(ack, "protocol", json_integer(ATT_PROTOCOL_VERSION));
    rc |= json_object_set_new(ack, "room", json_string(r->id));
    rc |= json_object_set_new(ack, "role", json_string(att_role_name(role)));
    rc |= json_object_set(ack, "exercise", r->script->json);
    rc |= json_object_set(ack, "vocab", att_catalog_vocab_json(cat));
    rc |= json_object_set(ack, "consent", att_catalog_consent_json(cat));
    rc |= json_object_set(ack, "safety", att_catalog_safety_json(cat));
    rc |= json_object_set_new(ack, "last_seq", json_integer(r->durable.aud_seq[role]));
    size_t len = 0;
    char *text = rc ? NULL : att_json_dump(ack, &len);
    json_decref(ack);
    if (!text)
        return -1;
    int msg = srv_outbox_add_text(&svc->outbox, text, len);
    free(text);
    if (msg < 0 || srv_outbox_send(&svc->outbox, m, msg) < 0)
        return -1;
    /* resume_from counts in the role's own numbering (what it may see). */
    int64_t from = resume_from > 0 ? resume_from : 0;
    m->role = role;
    m->closing = 0;
    m->replaying = 1;
    m->replay_after = srv_room_resume_point(r, role, from);
    m->replay_aud = role == ATT_ROLE_THERAPIST        ? m->replay_after
                    : from < r->durable.aud_seq[role] ? from
                                                      : r->durable.aud_seq[role];
    room_attach(r, m);
    return 0;
}

void srv_rooms_leave_all(srv_rooms *svc)
{
    SRV_ASSERT_SERVICE_THREAD(svc);
    for (size_t i = 0; i < svc->room_buckets; i++)
        for (srv_room *r = svc->room_table[i]; r; r = r->hash_next) {
            /* What the presence window still held is recorded now. */
            presence_flush(r, srv_now_ms(), 1);
            presence_arm(r);
            while (r->members.count) {
                srv_member *m = SRV_CONTAINER_OF(r->members.head, srv_member, link);
                srv_room_detach(svc, m, ATT_LEFT_SHUTDOWN, 1);
            }
        }
}

/* 1 when the log shows anyone present. */
static int anyone_present(const att_room *s)
{
    return s->present[0] || s->present[1] || s->present[2] || s->observers > 0;
}

/* Records `left` for members the log still shows present while nobody is
 * connected (a room just loaded: see srv_rooms_get). */
static void clear_stale_presence(srv_room *r)
{
    const att_room *s = &r->durable;
    att_role roles[3 + 64];
    int n_roles = 0;
    for (int role = 0; role < 3; role++)
        if (s->present[role])
            roles[n_roles++] = (att_role)role;
    for (int k = 0; k < s->observers && n_roles < (int)(sizeof roles / sizeof *roles); k++)
        roles[n_roles++] = ATT_ROLE_OBSERVER;
    for (int k = 0; k < n_roles; k++) {
        att_event events[ATT_MAX_EVENTS_PER_COMMAND];
        int n = 0;
        if (att_engine_decide_leave(srv_room_live(r), roles[k], ATT_LEFT_SHUTDOWN, srv_now_ms(),
                                    events, &n) == 0)
            submit_presence(r, n, events);
    }
    if (n_roles)
        srv_log("info", "stale_presence_cleared", "{s:s,s:i}", "room", r->id, "members", n_roles);
}

void srv_rooms_fence_nth_completion(srv_rooms *svc, int nth)
{
    SRV_ASSERT_SERVICE_THREAD(svc);
    svc->fence_nth = nth > 0 ? nth : 0;
}

int srv_rooms_jobs_in_flight(const srv_rooms *svc)
{
    SRV_ASSERT_SERVICE_THREAD(svc);
    int n = 0;
    for (size_t i = 0; i < svc->room_buckets; i++)
        for (srv_room *r = svc->room_table[i]; r; r = r->hash_next)
            n += (int)r->jobs.count;
    return n;
}

static void mark_dirty(srv_room *r)
{
    if (!r->state_dirty) {
        r->state_dirty = 1;
        srv_list_add_tail(&r->svc->dirty_rooms, &r->dirty_link);
    }
}

/* After a divergence nobody can patch up in place: every member reconnects
 * and resumes from its last seq. */
static void resync_members(srv_room *r)
{
    SRV_LIST_FOR_EACH_SAFE(&r->members, k, k_next)
    {
        srv_member *m = SRV_CONTAINER_OF(k, srv_member, link);
        srv_rooms_close_member(r->svc, m, SRV_CLOSE_INTERNAL, NULL, ATT_LEFT_CLOSED);
    }
}

/* This node stops serving the room (another node asked for it, took it
 * over, or this node's own lease lapsed): every member is closed with
 * bye room_moved (SRV_CLOSE_ROOM_MOVED) to reconnect to the node that
 * serves it, recording nothing (the room is not ours to write any more,
 * or will not be in a moment: the next owner's fold records the `left` of
 * whoever it finds present, clear_stale_presence), and no timer of the
 * room fires again. Its jobs in flight still come back from the store and
 * are dropped (complete_job); srv_rooms_sweep forgets the room after. */
static void room_let_go(srv_room *r, srv_room_tenure tenure)
{
    srv_rooms *svc = r->svc;
    if (r->tenure != SRV_ROOM_SERVING)
        return;
    r->tenure = tenure;
    SRV_LIST_FOR_EACH_SAFE(&r->members, k, k_next)
    {
        srv_member *m = SRV_CONTAINER_OF(k, srv_member, link);
        srv_rooms_close_member(svc, m, SRV_CLOSE_ROOM_MOVED, SRV_BYE_ROOM_MOVED, ATT_LEFT_CLOSED);
        srv_room_detach(svc, m, ATT_LEFT_CLOSED, 0);
    }
    srv_deadlines_cancel(&svc->deadlines, &r->deadline);
    srv_deadlines_cancel(&svc->deadlines, &r->presence);
    r->deadline_armed = -1;
    r->presence_armed = 0;
    free(r->seats); /* pending lefts and tallies: the next owner's to record */
    r->seats = NULL;
    srv_log("info", "room_moving", "{s:s,s:s,s:I,s:i}", "room", r->id, "why",
            tenure == SRV_ROOM_HANDING_OFF ? "wanted" : "lost", "seq", (json_int_t)r->durable.seq,
            "jobs", (int)r->jobs.count);
}

/* A member that gets live frames: in a room, caught up, not being closed. */
static int member_live(const srv_member *m)
{
    return !m->replaying && !m->closing && role_is_seat(m->role);
}

/* A viewer's state as an outbox message: the core's direct writer (the
 * same bytes as jansson's sorted dump, without building a tree)
 * straight into the outbox's buffer. -1 on failure. */
static int state_msg(srv_rooms *svc, const att_room *room, att_role viewer)
{
    size_t start = srv_outbox_begin_text(&svc->outbox);
    if (att_state_write(room, viewer, 1, &svc->outbox.bytes) < 0) {
        svc->outbox.bytes.len = start;
        svc->outbox.dropped++;
        return -1;
    }
    return srv_outbox_end_text(&svc->outbox, start);
}

/* Each event goes to the audiences that may see it, numbered in each
 * audience's own sequence (aud[i][role], from the durable fold). */
static void broadcast_events(srv_room *r, srv_job *job,
                             const int64_t aud[ATT_MAX_EVENTS_PER_COMMAND][ATT_AUDIENCES])
{
    srv_outbox *ob = &r->svc->outbox;
    /* One outbox message per (event, audience), made on first need; an
     * event's bytes are copied into the outbox once for all audiences. */
    int msgs[ATT_MAX_EVENTS_PER_COMMAND][ATT_AUDIENCES];
    int bytes_of[ATT_MAX_EVENTS_PER_COMMAND];
    for (int i = 0; i < job->n; i++) {
        bytes_of[i] = -1;
        for (int a = 0; a < ATT_AUDIENCES; a++)
            msgs[i][a] = -1;
    }
    SRV_LIST_FOR_EACH_SAFE(&r->members, k, k_next)
    {
        srv_member *m = SRV_CONTAINER_OF(k, srv_member, link);
        /* A catching-up member reads these from the log. */
        int live = member_live(m);
        for (int i = 0; live && i < job->n; i++) {
            if (!att_event_visible_to(&job->events[i], m->role))
                continue;
            int *msg = &msgs[i][m->role];
            if (*msg < 0) {
                *msg = bytes_of[i] < 0
                           ? srv_outbox_add_event(ob, aud[i][m->role], job->payload[i],
                                                  job->batch.payload_len[i])
                           : srv_outbox_add_event_again(ob, bytes_of[i], aud[i][m->role]);
                if (bytes_of[i] < 0)
                    bytes_of[i] = *msg;
            }
            srv_outbox_send(ob, m, *msg);
        }
    }
}

/* The seq of the last of the job's events `role` may see, in its own
 * numbering; 0 when it saw none (an ack says nothing of hidden events). */
static int64_t ack_seq_of(const srv_job *job,
                          const int64_t aud[ATT_MAX_EVENTS_PER_COMMAND][ATT_AUDIENCES],
                          att_role role)
{
    int64_t seq = 0;
    for (int k = 0; k < job->n; k++)
        if (att_event_visible_to(&job->events[k], role))
            seq = aud[k][role];
    return seq;
}

static void complete_job(srv_rooms *svc, srv_job *job)
{
    srv_room *r = job->room;
    srv_store_batch *b = &job->batch;
    srv_list_remove(&r->jobs, &job->link);
    srv_histogram_add(&svc->metrics->commit, (double)b->commit_ns / 1e9);
    srv_histogram_add(&svc->metrics->durable, (double)(srv_mono_ns() - b->queued_ns) / 1e9);
    const char *id = job->has_id ? job->id : NULL;
    if (r->tenure != SRV_ROOM_SERVING || (b->result < 0 && b->fenced)) {
        /* Not ours any more. A fenced batch stored nothing (another node
         * took the room over); nothing is rebuilt (that would read a log
         * another node writes), nobody is acked or told: the sender's
         * client resends on the node that serves the room now. */
        if (b->result < 0 && b->fenced) {
            svc->metrics->store_failures++;
            srv_log("warn", "room_fenced", "{s:s,s:I,s:i}", "room", r->id, "seq",
                    (json_int_t)b->first_seq, "events", b->n);
            room_let_go(r, SRV_ROOM_LOST);
        }
        if (!r->jobs.count) {
            live_give_back(svc, r->live);
            r->live = NULL;
        }
        job_free(job);
        return;
    }
    if (b->result < 0) {
        svc->metrics->store_failures++;
        srv_log("error", "store_commit_failed", "{s:s,s:I,s:i,s:s}", "room", r->id, "seq",
                (json_int_t)b->first_seq, "events", b->n, "error", b->error.message);
        send_internal(r, job->sender, id);
        for (srv_resend *w = job->resends; w; w = w->next)
            send_internal(r, w->member_id, w->has_id ? w->id : NULL);
        if (job->generation == r->generation)
            room_rebuild(r, "store commit failed");
    } else if (b->first_seq != r->durable.seq + 1) {
        srv_log("error", "log_diverged", "{s:s,s:I,s:I}", "room", r->id, "stored",
                (json_int_t)b->first_seq, "expected", (json_int_t)(r->durable.seq + 1));
        room_rebuild(r, "log diverged");
        resync_members(r);
    } else {
        att_error err = {0};
        int64_t aud[ATT_MAX_EVENTS_PER_COMMAND][ATT_AUDIENCES];
        unsigned seen = 0;
        int i = 0;
        for (; i < job->n; i++) {
            int64_t before[ATT_AUDIENCES];
            memcpy(before, r->durable.aud_seq, sizeof before);
            if (att_room_apply(&r->durable, &job->events[i], &err) < 0)
                break;
            memcpy(aud[i], r->durable.aud_seq, sizeof aud[i]);
            seen |= att_event_audience(&job->events[i]);
            if (index_note(r->aud_index, before, &r->durable) < 0) {
                att_fail(&err, ATT_ERR_INTERNAL, "out of memory");
                i = -1;
                break;
            }
        }
        if (i < 0)
            i = 0;
        if (i < job->n) {
            srv_log("error", "durable_fold_failed", "{s:s,s:s}", "room", r->id, "error",
                    err.message);
            room_rebuild(r, "durable fold failed");
            resync_members(r);
        } else {
            svc->metrics->events_appended += (uint64_t)job->n;
            svc->metrics->batches_committed++;
            srv_member *sender = room_member(r, job->sender);
            if (sender) {
                size_t len = 0;
                json_t *ack = att_msg_ack(id, ack_seq_of(job, aud, sender->role));
                char *text = ack ? att_json_dump(ack, &len) : NULL;
                json_decref(ack);
                if (text)
                    send_text(svc, sender, text, len);
                free(text);
            }
            /* resends of it (a reconnected sender), the same seq */
            for (srv_resend *w = job->resends; w; w = w->next) {
                srv_member *again = room_member(r, w->member_id);
                if (!again)
                    continue;
                size_t len = 0;
                json_t *ack = att_msg_ack_duplicate(w->has_id ? w->id : NULL,
                                                    ack_seq_of(job, aud, again->role));
                char *text = ack ? att_json_dump(ack, &len) : NULL;
                json_decref(ack);
                if (text)
                    send_text(svc, again, text, len);
                free(text);
            }
            broadcast_events(r, job, (const int64_t(*)[ATT_AUDIENCES])aud);
            r->state_audience |= seen;
            mark_dirty(r);
            srv_outbox_room_changed(&svc->outbox, r->id); /* the dashboards' pushed lists */
            r->summary_unshared = 1;
        }
    }
    for (srv_deferred *d = job->deferred; d; d = d->next) {
        srv_member *m = room_member(r, d->member_id);
        if (m)
            send_text(svc, m, d->text, d->len);
    }
    if (!r->jobs.count) {
        live_give_back(svc, r->live);
        r->live = NULL;
    }
    job_free(job);
}

/* A state goes only to the audiences that saw an event since the last one:
 * a commit of hidden events sends a partner nothing at all. */
static void broadcast_state(srv_room *r)
{
    int by_role[ATT_AUDIENCES] = {-1, -1, -1, -1};
    unsigned audience = r->state_audience;
    r->state_audience = 0;
    SRV_LIST_FOR_EACH_SAFE(&r->members, k, k_next)
    {
        srv_member *m = SRV_CONTAINER_OF(k, srv_member, link);
        if (member_live(m) && (audience & (1u << m->role))) {
            if (by_role[m->role] < 0)
                by_role[m->role] = state_msg(r->svc, &r->durable, m->role);
            srv_outbox_send(&r->svc->outbox, m, by_role[m->role]);
        }
    }
}

void srv_rooms_on_store_completions(srv_rooms *svc)
{
    SRV_ASSERT_SERVICE_THREAD(svc);
    srv_store_batch *b = srv_store_take_completed(svc->store);
    while (b) {
        srv_store_batch *next = b->next;
        if (svc->fence_nth > 0 && --svc->fence_nth == 0) {
            b->result = -ATT_ERR_INTERNAL;
            b->fenced = 1; /* as a store shared by nodes reports a takeover */
        }
        complete_job(svc, b->owner);
        b = next;
    }
    while (svc->dirty_rooms.count) {
        srv_room *r = SRV_CONTAINER_OF(svc->dirty_rooms.head, srv_room, dirty_link);
        srv_list_remove(&svc->dirty_rooms, &r->dirty_link);
        r->state_dirty = 0;
        broadcast_state(r);
        room_arm_deadline(r);
    }
}

/* --- catch-up from the log ----------------------------------------------- */

/* Whether the event at room seq `seq` is hidden from `role`: the room's
 * audience index (kept by every fold of the log and every commit, from the
 * core's per-audience counters) lists exactly those, so catch-up never
 * parses a stored payload to learn who may see it. */
static int hidden_from(const srv_room *r, att_role role, int64_t seq)
{
    if (role == ATT_ROLE_THERAPIST)
        return 0; /* sees everything: its numbering is the log's */
    const srv_aud_index *ix = &r->aud_index[role];
    size_t lo = 0, hi = ix->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ix->seqs[mid] < seq)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < ix->n && ix->seqs[lo] == seq;
}

/* Bytes an event frame adds to a send queue beyond its payload (the
 * {"event":..,"seq":N,"type":"event"} envelope, rounded up). */
#define REPLAY_FRAME_OVERHEAD 48

typedef struct {
    srv_rooms *svc;
    srv_member *m;
    size_t budget, spent;
} replay_ctx;

static srv_walk replay_one(const srv_stored_event *ev, void *arg, att_error *err)
{
    replay_ctx *rc = arg;
    srv_member *m = rc->m;
    if (!m->room) {
        att_fail(err, ATT_ERR_INTERNAL, "catch-up without a room");
        return SRV_WALK_FAILED;
    }
    m->replay_after = ev->seq;
    if (!hidden_from(m->room, m->role, ev->seq)) {
        /* Numbered in the role's own sequence: no gaps where it saw nothing. */
        int msg = srv_outbox_add_event(&rc->svc->outbox, ++m->replay_aud, ev->payload, ev->len);
        if (msg < 0 || srv_outbox_send(&rc->svc->outbox, m, msg) < 0) {
            att_fail(err, ATT_ERR_INTERNAL, "out of memory");
            return SRV_WALK_FAILED;
        }
        rc->spent += ev->len + REPLAY_FRAME_OVERHEAD;
    }
    /* Pause before the catch-up itself could trip the slow-reader bound;
     * the shell calls again once the member's queue has drained. */
    return rc->spent >= rc->budget ? SRV_WALK_PAUSE : SRV_WALK_CONTINUE;
}

int srv_room_replay_step(srv_rooms *svc, srv_member *m, size_t budget)
{
    SRV_ASSERT_SERVICE_THREAD(svc);
    srv_room *r = m->room;
    if (!m->replaying || m->closing || !r) {
        m->replaying = 0;
        return 0;
    }
    int64_t upto = r->durable.seq;
    if (m->replay_after < upto && budget > 0) {
        att_error err = {0};
        replay_ctx ctx = {svc, m, budget, 0};
        srv_walk rc = srv_store_walk_events(svc->store, r->id, m->replay_after, upto,
                                            SRV_REPLAY_CHUNK, replay_one, &ctx, &err);
        if (rc == SRV_WALK_FAILED) {
            srv_log("error", "replay_failed", "{s:s,s:I,s:s}", "room", r->id, "after",
                    (json_int_t)m->replay_after, "error", err.message);
            srv_rooms_close_member(svc, m, SRV_CLOSE_INTERNAL, NULL, ATT_LEFT_CLOSED);
            return 0;
        }
    }
    if (m->replay_after >= upto) {
        m->replaying = 0;
        srv_outbox_send(&svc->outbox, m, state_msg(svc, &r->durable, m->role));
    }
    return m->replaying;
}

/* --- summaries and eviction ------------------------------------------------ */

json_t *srv_room_summary(srv_rooms *svc, srv_room *r, att_error *err)
{
    SRV_ASSERT_SERVICE_THREAD(svc);
    srv_store_room meta;
    if (srv_store_get_room(svc->store, r->id, &meta, err) < 0)
        return NULL;
    return srv_summary_json(&r->durable, r->script, r->id, meta.created_at, err);
}

/* Queues a summary for the store's cache; a failure only costs a later fold. */
static void pending_add(srv_rooms *svc, const char *id, int64_t last_seq, const json_t *summary)
{
    if (svc->n_pending_summaries == svc->cap_pending_summaries) {
        size_t cap = svc->cap_pending_summaries ? svc->cap_pending_summaries * 2 : 16;
        struct srv_pending_summary *p = realloc(svc->pending_summaries, cap * sizeof *p);
        if (!p)
            return;
        svc->pending_summaries = p;
        svc->cap_pending_summaries = cap;
    }
    struct srv_pending_summary *p = &svc->pending_summaries[svc->n_pending_summaries];
    if (!(p->summary = att_json_dump(summary, NULL)))
        return;
    snprintf(p->room_id, sizeof p->room_id, "%s", id);
    p->last_seq = last_seq;
    svc->n_pending_summaries++;
}

/* Queues a room in memory's summary for the next flush (an unreadable one
 * is simply not cached: the next reader folds). */
static void pend_summary(srv_rooms *svc, srv_room *r)
{
    att_error err = {0};
    json_t *summary = srv_room_summary(svc, r, &err);
    if (summary)
        pending_add(svc, r->id, r->durable.seq, summary);
    json_decref(summary);
}

void srv_rooms_flush_summaries(srv_rooms *svc)
{
    SRV_ASSERT_SERVICE_THREAD(svc);
    size_t n = svc->n_pending_summaries;
    if (!n)
        return;
    srv_store_summary *items = malloc(n * sizeof *items);
    att_error err = {0};
    int rc = -ATT_ERR_INTERNAL;
    if (items) {
        for (size_t i = 0; i < n; i++) {
            items[i].room_id = svc->pending_summaries[i].room_id;
            items[i].last_seq = svc->pending_summaries[i].last_seq;
            items[i].summary = svc->pending_summaries[i].summary;
        }
        rc = srv_store_put_summaries(svc->store, items, n, &err);
    }
    if (rc < 0)
        srv_log("warn", "summaries_not_cached", "{s:I,s:s}", "rooms", (json_int_t)n, "error",
                items ? err.message : "out of memory");
    free(items);
    pending_clear(svc);
}

static json_t *summary_cold(srv_rooms *svc, const char *id, att_error *err);

json_t *srv_rooms_summary_by_id(srv_rooms *svc, const char *id, att_error *err)
{
    SRV_ASSERT_SERVICE_THREAD(svc);
    srv_room *r = srv_rooms_find(svc, id);
    if (r)
        return srv_room_summary(svc, r, err);
    char *text = NULL;
    int rc = srv_store_get_summary(svc->store, id, &text, err);
    if (rc == 0) {
        json_error_t jerr;
        json_t *cached = json_loads(text, 0, &jerr);
        free(text);
        if (json_is_object(cached))
            return cached;
        json_decref(cached); /* a damaged entry: fold instead */
    } else if (rc != -ATT_ERR_NOT_FOUND) {
        return NULL;
    }
    return summary_cold(svc, id, err);
}

char *srv_rooms_summary_text_by_id(srv_rooms *svc, const char *id, size_t *len, att_error *err)
{
    char *text = NULL;
    if (!srv_rooms_find(svc, id)) {
        /* The cached text as it is: no parse, no json_t per room. */
        int rc = srv_store_get_summary(svc->store, id, &text, err);
        if (rc == 0 && text[0] == '{') {
            *len = strlen(text);
            return text;
        }
        free(text);
        text = NULL;
        if (rc < 0 && rc != -ATT_ERR_NOT_FOUND)
            return NULL;
    }
    json_t *summary = srv_rooms_summary_by_id(svc, id, err);
    text = summary ? att_json_dump(summary, len) : NULL;
    if (summary && !text)
        att_fail(err, ATT_ERR_INTERNAL, "out of memory");
    json_decref(summary);
    return text;
}

/* A room out of memory without a current cached summary (one never
 * evicted since this cache exists, or one that changed since: a crash):
 * folded aside, in a spare `live` copy, keeping only the summary (cached at
 * the next flush). */
static json_t *summary_cold(srv_rooms *svc, const char *id, att_error *err)
{
    srv_room *r = NULL;
    int rc;
    srv_store_room meta;
    att_room *scratch = NULL;
    const att_script *script = NULL;
    json_t *summary = NULL;
    if ((rc = srv_store_get_room(svc->store, id, &meta, err)) < 0)
        return NULL;
    if (!(scratch = live_take(svc))) {
        att_fail(err, ATT_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    rc = fold_log(svc->store, svc->catalog, &svc->opt.room, id, scratch, &script, NULL, err);
    /* On a store several nodes share, members the log shows present may
     * well be connected to the node serving the room: loading it here
     * would ask that node for it (srv_store_acquire_room), so the summary
     * shows them as the log does. */
    int one_node = strcmp(srv_store_kind(svc->store), "sqlite") == 0;
    if (rc == 0 && one_node && anyone_present(scratch)) {
        /* Members left present by a crash: load the room for real, which
         * records their `left`, rather than show them present. */
        live_give_back(svc, scratch);
        r = srv_rooms_get(svc, id, err);
        return r ? srv_room_summary(svc, r, err) : NULL;
    }
    if (rc == 0 && (summary = srv_summary_json(scratch, script, id, meta.created_at, err)))
        pending_add(svc, id, scratch->seq, summary);
    live_give_back(svc, scratch);
    return summary;
}

typedef struct {
    char ids[SRV_WARM_BATCH][ATT_ROOM_ID_BYTES + 1];
    int n;
    int64_t max_events; /* longer logs are left for their first need */
    uint64_t skipped;
} stale_ids;

static int note_stale(const char *id, int64_t last_seq, void *arg)
{
    stale_ids *st = arg;
    if (last_seq > st->max_events)
        st->skipped++;
    else if (st->n < SRV_WARM_BATCH)
        snprintf(st->ids[st->n++], sizeof st->ids[0], "%s", id);
    return 0;
}

void srv_rooms_warm(srv_rooms *svc)
{
    SRV_ASSERT_SERVICE_THREAD(svc);
    if (svc->warm_done || svc->stopping)
        return;
    int64_t t0 = srv_mono_ns();
    /* Nobody to keep waiting (a restart, before anyone is back): faster. */
    int64_t budget_ns = svc->metrics->members ? SRV_WARM_BUDGET_NS : SRV_WARM_IDLE_BUDGET_NS;
    /* One fold is never cut short, so only short logs are folded here (a
     * 20,000-event one would hold every room for a good part of a second):
     * longer ones wait for their first need. */
    stale_ids stale = {.n = 0,
                       .max_events =
                           svc->metrics->members ? SRV_WARM_MAX_EVENTS : SRV_WARM_IDLE_MAX_EVENTS};
    char last[SRV_STORE_ID_BYTES + 1] = "";
    int scanned = 0;
    att_error err = {0};
    if (srv_store_scan_stale_summaries(svc->store, svc->warm_cursor, SRV_WARM_BATCH, last, &scanned,
                                       note_stale, &stale, &err) < 0) {
        srv_log("warn", "summaries_warm_failed", "{s:s}", "error", err.message);
        svc->warm_done = 1;
        return;
    }
    svc->warm_skipped += stale.skipped;
    int i = 0;
    for (; i < stale.n; i++) {
        if (i > 0 && srv_mono_ns() - t0 > budget_ns)
            break; /* the rest next tick: the cursor stops before them */
        if (srv_rooms_find(svc, stale.ids[i]))
            continue; /* in memory: summarised from its state, saved when evicted */
        att_error fold_err = {0};
        json_t *summary = summary_cold(svc, stale.ids[i], &fold_err);
        if (!summary)
            srv_log("warn", "summary_warm_failed", "{s:s,s:s}", "room", stale.ids[i], "error",
                    fold_err.message);
        json_decref(summary);
        svc->warm_folded++;
    }
    if (i < stale.n) {
        /* Out of time (i >= 1): the next tick scans on from the last one done. */
        snprintf(svc->warm_cursor, sizeof svc->warm_cursor, "%s", stale.ids[i - 1]);
    } else if (scanned < SRV_WARM_BATCH) {
        svc->warm_done = 1;
        srv_log("info", "summaries_warm", "{s:I,s:I}", "folded", (json_int_t)svc->warm_folded,
                "left_for_need", (json_int_t)svc->warm_skipped);
    } else {
        snprintf(svc->warm_cursor, sizeof svc->warm_cursor, "%s", last);
    }
    /* Writing the cache is a transaction (and an fsync) on this thread: while
     * anyone is connected, at most once a second (every tick, it doubled the
     * open-loop benchmark's p99), at once when the walk is done or nobody
     * waits. */
    int64_t now = srv_mono_ns();
    if (svc->warm_done || !svc->metrics->members ||
        now - svc->warm_flushed_ns >= (int64_t)SRV_SWEEP_MS * 1000000) {
        svc->warm_flushed_ns = now;
        srv_rooms_flush_summaries(svc);
    }
}

void srv_rooms_save_summaries(srv_rooms *svc)
{
    SRV_ASSERT_SERVICE_THREAD(svc);
    for (size_t i = 0; svc->room_table && i < svc->room_buckets; i++)
        for (srv_room *r = svc->room_table[i]; r; r = r->hash_next) {
            if (r->tenure != SRV_ROOM_SERVING)
                continue; /* the node serving it now keeps its summary */
            pend_summary(svc, r);
        }
    srv_rooms_flush_summaries(svc);
}

/* 1 when nothing but the room table holds the room and nothing would be
 * lost by folding it again later: srv_room_idle (no members, so no
 * member->room; no jobs, so no job->room and no deferred replies; no detector
 * deadline armed, a spent one is not; no presence change waiting out its
 * debounce), no state broadcast pending and nobody the log shows present. */
static int room_quiet(const srv_room *r)
{
    return srv_room_idle(r) && !r->live && !r->state_dirty && !anyone_present(&r->durable);
}

/* Rooms this node holds that another node has asked for: their members
 * go there (the handoff); rooms this node holds but has not in memory are
 * simply released. */
static void hand_off_wanted(srv_rooms *svc)
{
    enum { WANTED_BATCH = 64 };
    char wanted[WANTED_BATCH][SRV_STORE_ID_BYTES + 1];
    int n;
    do {
        n = srv_store_take_wanted(svc->store, wanted, WANTED_BATCH);
        for (int i = 0; i < n; i++) {
            srv_room *r = table_find(svc, wanted[i]);
            if (r)
                room_let_go(r, SRV_ROOM_HANDING_OFF);
            else
                release_lease(svc, wanted[i]);
        }
    } while (n == WANTED_BATCH);
}

/* This node could not renew its own lease in time: another node may take
 * any of its rooms at any moment, so it serves none of them. */
static void let_go_of_all(srv_rooms *svc)
{
    int rooms = 0;
    for (size_t b = 0; b < svc->room_buckets; b++)
        for (srv_room *r = svc->room_table[b]; r; r = r->hash_next)
            if (r->tenure == SRV_ROOM_SERVING) {
                room_let_go(r, SRV_ROOM_LOST);
                rooms++;
            }
    if (rooms)
        srv_log("warn", "node_lease_lost", "{s:i}", "rooms", rooms);
}

/* A room that is going, once the store has handed back all its jobs. */
static void forget_gone_room(srv_rooms *svc, srv_room *r)
{
    if (r->state_dirty) {
        srv_list_remove(&svc->dirty_rooms, &r->dirty_link);
        r->state_dirty = 0;
    }
    unlink_room(svc, r);
    svc->metrics->rooms--;
    srv_log("info", "room_forgotten", "{s:s,s:I,s:b}", "room", r->id, "seq",
            (json_int_t)r->durable.seq, "released", r->tenure == SRV_ROOM_HANDING_OFF);
    if (r->tenure == SRV_ROOM_HANDING_OFF)
        release_lease(svc, r->id);
    room_free(r);
}

void srv_rooms_sweep(srv_rooms *svc, int64_t now_ms)
{
    SRV_ASSERT_SERVICE_THREAD(svc);
    if (svc->stopping)
        return; /* rooms in memory at stop have their summaries saved at exit */
    if (!srv_store_node_alive(svc->store))
        let_go_of_all(svc);
    else
        hand_off_wanted(svc);
    const srv_room_options *cfg = &svc->opt;
    int evicted = 0;
    int one_node = strcmp(srv_store_kind(svc->store), "sqlite") == 0;
    for (size_t b = 0; b < svc->room_buckets; b++) {
        srv_room **link = &svc->room_table[b];
        while (*link) {
            srv_room *r = *link;
            if (r->tenure != SRV_ROOM_SERVING) {
                if (r->jobs.count) {
                    link = &r->hash_next; /* the store still borrows its jobs */
                    continue;
                }
                forget_gone_room(svc, r); /* unlinks it: *link is the next */
                continue;
            }
            if (r->summary_unshared && !one_node) {
                /* Other nodes' dashboards list this room from the shared
                 * store: at most a sweep behind. */
                pend_summary(svc, r);
                r->summary_unshared = 0;
            }
            if (!room_quiet(r)) {
                r->quiet_since_ms = 0;
                link = &r->hash_next;
                continue;
            }
            if (!r->quiet_since_ms)
                r->quiet_since_ms = now_ms;
            int ended = r->durable.status == ATT_STATUS_ENDED;
            int64_t wait_ms = (int64_t)(ended ? cfg->room_evict_s : cfg->room_idle_evict_s) * 1000;
            if (now_ms - r->quiet_since_ms < wait_ms) {
                link = &r->hash_next;
                continue;
            }
            pend_summary(svc, r);
            *link = r->hash_next;
            svc->metrics->rooms--;
            svc->metrics->rooms_evicted++;
            srv_log("info", "room_evicted", "{s:s,s:I,s:b}", "room", r->id, "seq",
                    (json_int_t)r->durable.seq, "ended", ended);
            release_lease(svc, r->id);
            room_free(r);
            evicted++;
        }
    }
    srv_rooms_flush_summaries(svc);
    /* Many rooms freed at once (a busy evening's sessions ending): give
     * glibc's freed pages back, so RSS follows the rooms in memory. */
    if (evicted >= SRV_EVICT_TRIM)
        malloc_trim(0);
}

/* --- erasing a room in memory (room_service.h, srv_rooms_erase) ----------- */

/* A summary still waiting for the cache must not be written back after
 * the store deleted the room's rows. */
static void pending_drop(srv_rooms *svc, const char *id)
{
    size_t kept = 0;
    for (size_t i = 0; i < svc->n_pending_summaries; i++) {
        struct srv_pending_summary *p = &svc->pending_summaries[i];
        if (strcmp(p->room_id, id) == 0)
            free(p->summary);
        else
            svc->pending_summaries[kept++] = *p;
    }
    svc->n_pending_summaries = kept;
}

int srv_rooms_erase(srv_rooms *svc, const char *id, att_error *err)
{
    SRV_ASSERT_SERVICE_THREAD(svc);
    pending_drop(svc, id);
    srv_room *r = table_find(svc, id);
    if (!r)
        return 0;
    /* Everyone goes at once, and records nothing: the room's log is about
     * to be destroyed, so a `left` would only be one more event to erase. */
    SRV_LIST_FOR_EACH_SAFE(&r->members, k, k_next)
    {
        srv_member *m = SRV_CONTAINER_OF(k, srv_member, link);
        srv_rooms_close_member(svc, m, SRV_CLOSE_BAD_TOKEN, "room_erased", ATT_LEFT_CLOSED);
        srv_room_detach(svc, m, ATT_LEFT_CLOSED, 0);
    }
    /* No timer may record anything more (the detector's silence, presence). */
    srv_deadlines_cancel(&svc->deadlines, &r->deadline);
    srv_deadlines_cancel(&svc->deadlines, &r->presence);
    r->deadline_armed = -1;
    r->presence_armed = 0;
    /* A commit the store still holds borrows the room's job; its state
     * broadcast is still to come. Both take milliseconds, and with its
     * members gone and its timers off nothing new starts, so the caller
     * asks again shortly (the API answers 503 with Retry-After). */
    if (r->jobs.count || r->state_dirty)
        return att_fail(err, ATT_ERR_ROOM_BUSY,
                        "the room has a commit in flight; try again in a moment");
    unlink_room(svc, r);
    svc->metrics->rooms--;
    srv_log("info", "room_unloaded_for_erase", "{s:s}", "room", id);
    if (r->tenure != SRV_ROOM_LOST)
        release_lease(svc, r->id);
    room_free(r);
    return 0;
}

/* The detector's clock: one deadline per room in the service's heap,
 * armed at the live state's next deadline. Lazily: a silence deadline
 * moves later with every turn, so one already armed at or before the new
 * deadline is left alone; when it fires early it re-arms once. Only a
 * deadline that moves earlier is rescheduled. */
static void room_deadline_fire(srv_room *r, int64_t now)
{
    r->deadline_armed = -1;
    if (r->svc->stopping)
        return;
    att_event events[ATT_MAX_EVENTS_PER_COMMAND];
    int64_t deadline = att_detector_next_deadline(srv_room_live(r), r->composing_at);
    if (deadline < 0 || now < deadline) {
        /* Armed for a deadline that has since moved later (or gone): no
         * tick can raise anything yet, so just re-arm for the new one. */
        room_arm_deadline(r);
        return;
    }
    int n = att_detector_tick(srv_room_live(r), now, r->composing_at, events);
    if (n > 0)
        submit_presence(r, n, events);
    else
        r->deadline_spent = deadline; /* nothing to raise: wait for a state change */
    room_arm_deadline(r);
}

static void room_arm_deadline(srv_room *r)
{
    srv_rooms *svc = r->svc;
    int64_t deadline = att_detector_next_deadline(srv_room_live(r), r->composing_at);
    if (deadline == r->deadline_armed)
        return;
    if (deadline >= 0 && deadline == r->deadline_spent)
        deadline = -1;
    if (deadline < 0) {
        /* An armed deadline would only fire to find nothing. */
        r->deadline_armed = -1;
        srv_deadlines_cancel(&svc->deadlines, &r->deadline);
        return;
    }
    if (r->deadline_armed >= 0 && r->deadline_armed <= deadline)
        return; /* fires at or before it and re-arms then */
    if (srv_deadlines_arm(&svc->deadlines, &r->deadline, deadline) < 0) {
        srv_log("error", "room_timer_lost", "{s:s}", "room", r->id);
        return;
    }
    r->deadline_armed = deadline;
}

int64_t srv_rooms_next_deadline(const srv_rooms *svc)
{
    const srv_deadline *d = srv_deadlines_first(&svc->deadlines);
    return d ? d->at : -1;
}

void srv_rooms_tick(srv_rooms *svc, int64_t now_ms)
{
    SRV_ASSERT_SERVICE_THREAD(svc);
    srv_deadline *d;
    /* Each fire disarms its deadline first (it may re-arm it, never at or
     * before now for the same cause), so the loop ends. */
    while ((d = srv_deadlines_first(&svc->deadlines)) && d->at <= now_ms) {
        srv_deadlines_cancel(&svc->deadlines, d);
        if (d->kind == ROOM_DEADLINE_DETECTOR)
            room_deadline_fire(SRV_CONTAINER_OF(d, srv_room, deadline), now_ms);
        else
            presence_fire(SRV_CONTAINER_OF(d, srv_room, presence), now_ms);
    }
}
