/* rooms.c - live rooms: the registry, recovery by folding the log, the
 * decide -> fold -> store -> ack/broadcast cycle, presence and the
 * detector's clock (see server.h for the threads and ownership). Every
 * function here runs on the lws service thread (or on main before the loop
 * starts). */
#include "server.h"

#include <malloc.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "api.h"
#include "clock.h"
#include "log.h"
#include "attune/names.h"
#include "attune/names.h"
#include "log_fold.h"
#include "room_log.h"
#include "summary.h"

/* A summary waiting to be written to the store's cache (owned strings). */
struct srv_pending_summary {
    char room_id[ATT_ROOM_ID_BYTES + 1];
    int64_t last_seq;
    char *summary;
};

#define ROOM_BUCKETS 8192
#define SRV_EVICT_TRIM 16 /* rooms evicted in one sweep before malloc_trim */

static size_t hash_id(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return (size_t)h;
}

/* Copies a room value without touching the unused tails of the rupture and
 * suspicion arrays, so idle rooms keep their untouched pages out of RSS. */
static void room_copy(att_room *dst, const att_room *src)
{
    size_t used = offsetof(att_room, ruptures) + (size_t)src->n_ruptures * sizeof(att_rupture);
    memcpy(dst, src, used);
    memcpy(dst->suspicions, src->suspicions, (size_t)src->n_suspicions * sizeof(att_suspicion));
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
static att_room *live_take(srv_server *srv)
{
    if (srv->n_spare_live)
        return srv->spare_live[--srv->n_spare_live];
    return malloc(sizeof(att_room));
}

static void live_give_back(srv_server *srv, att_room *live)
{
    if (!live)
        return;
    if (srv->n_spare_live < SRV_SPARE_LIVE)
        srv->spare_live[srv->n_spare_live++] = live;
    else
        free(live);
}

int srv_rooms_init(srv_server *srv, att_error *err)
{
    srv->room_buckets = ROOM_BUCKETS;
    srv->room_table = calloc(srv->room_buckets, sizeof *srv->room_table);
    if (!srv->room_table)
        return att_fail(err, ATT_ERR_INTERNAL, "out of memory");
    return 0;
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
        srv_frame_unref(d->frame);
        free(d);
        d = next;
    }
    free(job);
}

/* Frees a room already unlinked from the table. */
static void room_free(srv_room *r)
{
    /* Jobs left here were never handed back by the store (it is closed
     * before srv_rooms_free runs; an evicted room has none); they only hold
     * memory. */
    lws_start_foreach_dll_safe(struct lws_dll2 *, d, d1, lws_dll2_get_head(&r->jobs))
    {
        srv_job *job = lws_container_of(d, srv_job, link);
        lws_dll2_remove(d);
        job_free(job);
    }
    lws_end_foreach_dll_safe(d, d1);
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

static void pending_clear(srv_server *srv)
{
    for (size_t i = 0; i < srv->n_pending_summaries; i++)
        free(srv->pending_summaries[i].summary);
    srv->n_pending_summaries = 0;
}

void srv_rooms_free(srv_server *srv)
{
    pending_clear(srv);
    free(srv->pending_summaries);
    srv->pending_summaries = NULL;
    srv->cap_pending_summaries = 0;
    if (!srv->room_table)
        return;
    for (size_t i = 0; i < srv->room_buckets; i++) {
        srv_room *r = srv->room_table[i];
        while (r) {
            srv_room *next = r->hash_next;
            room_free(r);
            r = next;
        }
    }
    free(srv->room_table);
    srv->room_table = NULL;
    while (srv->n_spare_live)
        free(srv->spare_live[--srv->n_spare_live]);
}

srv_room *srv_room_find(srv_server *srv, const char *id)
{
    for (srv_room *r = srv->room_table[hash_id(id) % srv->room_buckets]; r; r = r->hash_next)
        if (strcmp(r->id, id) == 0)
            return r;
    return NULL;
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

int srv_room_fold_log(srv_store *store, const att_catalog *cat, const srv_config *cfg,
                      const char *room_id, att_room *out, const att_script **script_out,
                      srv_aud_index *index, att_error *err)
{
    if (index)
        index_clear(index);
    att_room_config rcfg = {.silence_ms = cfg->silence_ms,
                            .disconnect_grace_ms = cfg->disconnect_grace_ms};
    fold_ctx fc = {.index = index};
    srv_fold_hooks hooks = {.before = fold_before, .after = fold_after, .arg = &fc};
    return srv_log_fold_room(store, cat, &rcfg, room_id, index ? &hooks : NULL, out, script_out,
                             err);
}

static void room_arm_deadline(srv_room *r);
static void clear_stale_presence(srv_room *r);

srv_room *srv_room_get(srv_server *srv, const char *id, att_error *err)
{
    srv_room *r = srv_room_find(srv, id);
    if (r)
        return r;
    int64_t t0 = srv_mono_ns();
    r = malloc(sizeof *r);
    if (r)
        memset(r, 0, offsetof(srv_room, durable));
    if (!r) {
        att_fail(err, ATT_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    if (srv_room_fold_log(srv->store, srv->catalog, srv->cfg, id, &r->durable, &r->script,
                          r->aud_index, err) < 0) {
        index_clear(r->aud_index);
        free(r);
        return NULL;
    }
    snprintf(r->id, sizeof r->id, "%s", id);
    r->srv = srv;
    r->deadline_armed = -1;
    r->deadline_spent = -1;
    size_t b = hash_id(id) % srv->room_buckets;
    r->hash_next = srv->room_table[b];
    srv->room_table[b] = r;
    srv->metrics.rooms++;
    srv->metrics.rooms_loaded++;
    srv_histogram_add(&srv->metrics.room_load, (double)(srv_mono_ns() - t0) / 1e9);
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

static srv_conn *room_member(srv_room *r, uint64_t conn_id)
{
    if (!conn_id)
        return NULL;
    lws_start_foreach_dll(struct lws_dll2 *, d, lws_dll2_get_head(&r->members))
    {
        srv_conn *c = lws_container_of(d, srv_conn, room_link);
        if (c->id == conn_id)
            return c;
    }
    lws_end_foreach_dll(d);
    return NULL;
}

static srv_job *room_tail_job(srv_room *r)
{
    struct lws_dll2 *t = lws_dll2_get_tail(&r->jobs);
    return t ? lws_container_of(t, srv_job, link) : NULL;
}

void srv_room_reply(srv_room *r, srv_conn *conn, srv_frame *frame)
{
    if (!frame)
        return;
    srv_job *tail = r ? room_tail_job(r) : NULL;
    if (tail) {
        srv_deferred *d = malloc(sizeof *d);
        if (d) {
            d->next = NULL;
            d->conn_id = conn->id;
            d->frame = frame;
            *tail->deferred_tail = d;
            tail->deferred_tail = &d->next;
            return;
        }
    }
    srv_conn_send(conn, frame);
    srv_frame_unref(frame);
}

/* Rebuilds durable from the store (after a failed commit: memory must never
 * claim what the disk does not have). In-flight jobs become stale. */
static void room_rebuild(srv_room *r, const char *why)
{
    srv_server *srv = r->srv;
    att_room *fresh = malloc(sizeof *fresh);
    att_error err = {0};
    const att_script *script = NULL;
    /* Folded aside and swapped in whole, so a failed rebuild leaves the
     * index matching the durable state it keeps. */
    srv_aud_index index[ATT_AUDIENCES] = {{0}};
    if (!fresh || srv_room_fold_log(srv->store, srv->catalog, srv->cfg, r->id, fresh, &script,
                                    index, &err) < 0) {
        srv_log("error", "room_rebuild_failed", "{s:s,s:s,s:s}", "room", r->id, "why", why, "error",
                fresh ? err.message : "out of memory");
        index_clear(index);
    } else {
        index_clear(r->aud_index);
        memcpy(r->aud_index, index, sizeof index);
        room_copy(&r->durable, fresh);
        srv_log("warn", "room_rebuilt", "{s:s,s:s,s:I}", "room", r->id, "why", why, "seq",
                (json_int_t)r->durable.seq);
    }
    free(fresh);
    live_give_back(r->srv, r->live);
    r->live = NULL;
    r->generation++;
}

/* Recomputes live = durable + the events of current in-flight jobs (after a
 * failure on the service thread, before anything reached the store). */
static void room_reset_live(srv_room *r)
{
    live_give_back(r->srv, r->live);
    r->live = NULL;
    if (!r->jobs.count)
        return;
    r->live = live_take(r->srv);
    if (!r->live) {
        room_rebuild(r, "out of memory");
        return;
    }
    room_copy(r->live, &r->durable);
    lws_start_foreach_dll(struct lws_dll2 *, d, lws_dll2_get_head(&r->jobs))
    {
        srv_job *job = lws_container_of(d, srv_job, link);
        /* (no `continue` inside lws_start_foreach_dll: it skips the advance) */
        for (int i = 0; job->generation == r->generation && i < job->n; i++) {
            att_error err = {0};
            if (att_room_apply(r->live, &job->events[i], &err) < 0) {
                room_rebuild(r, "reapply failed");
                return;
            }
        }
    }
    lws_end_foreach_dll(d);
}

static void send_internal(srv_room *r, uint64_t conn_id, const char *id)
{
    srv_conn *c = room_member(r, conn_id);
    if (c)
        srv_conn_send_error(c, id, ATT_ERR_INTERNAL, "the server could not record this");
}

/* Takes ownership of job: folds its events into live, encodes them and
 * queues them for the store. */
static void room_submit(srv_room *r, srv_job *job)
{
    srv_server *srv = r->srv;
    att_error err = {0};
    const char *why = NULL;
    job->room = r;
    job->generation = r->generation;
    job->deferred_tail = &job->deferred;
    if (!r->live) {
        r->live = live_take(srv);
        if (!r->live) {
            why = "out of memory";
            goto fail;
        }
        room_copy(r->live, &r->durable);
    }
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
        json_t *obj = att_event_to_json(&job->events[i], r->script);
        size_t len = 0;
        job->payload[i] = obj ? att_json_dump(obj, &len) : NULL;
        json_decref(obj);
        if (!job->payload[i]) {
            why = "cannot encode event";
            goto fail_live;
        }
        b->payload[i] = job->payload[i];
        b->payload_len[i] = len;
        b->type[i] = att_event_type_name(job->events[i].type);
    }
    if (srv_store_append(srv->store, b, &err) < 0) {
        why = err.message;
        goto fail_live;
    }
    lws_dll2_add_tail(&job->link, &r->jobs);
    room_arm_deadline(r);
    return;

fail_live:
    room_reset_live(r);
fail:
    srv_log("error", "submit_failed", "{s:s,s:s}", "room", r->id, "error", why);
    send_internal(r, job->sender, job->has_id ? job->id : NULL);
    job_free(job);
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
    const srv_config *cfg = r->srv->cfg;
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

void srv_room_command(srv_room *r, srv_conn *conn, att_msg *msg)
{
    srv_server *srv = r->srv;
    int64_t t0 = srv_mono_ns();
    srv_job *job = job_new(conn->id);
    if (!job) {
        srv_conn_send_error(conn, msg->has_id ? msg->id : NULL, ATT_ERR_INTERNAL, "out of memory");
        att_msg_release(msg);
        return;
    }
    att_error err = {0};
    int64_t now = srv_now_ms();
    int rc = att_room_decide(srv_room_live(r), conn->role, msg, now, job->events, &job->n, &err);
    if (rc == 0 && msg->type == ATT_MSG_TYPING && conn->role == att_room_actor(srv_room_live(r))) {
        /* Composing is not silence: the detector's clock runs from here. */
        r->composing_at = now;
        r->deadline_spent = -1;
        room_arm_deadline(r);
    }
    if (rc == 0 && job->n > 0)
        rc = room_admit(r, conn->role, job->n, now, &err);
    if (rc < 0 || job->n == 0) {
        if (rc < 0)
            srv_conn_send_error(conn, msg->has_id ? msg->id : NULL, err.code, err.message);
        else
            srv_room_reply(
                r, conn, srv_frame_from_json_consume(att_msg_ack(msg->has_id ? msg->id : NULL, 0)));
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
    srv_histogram_add(&srv->metrics.apply, (double)(srv_mono_ns() - t0) / 1e9);
}

static void submit_presence(srv_room *r, int n, att_event *events)
{
    if (n <= 0)
        return;
    if (srv_room_live(r)->seq + n > r->srv->cfg->room_event_cap + SRV_LOG_RESERVE) {
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
    const srv_config *cfg = r->srv->cfg;
    int64_t wait = cfg->presence_debounce_ms;
    if (att_role_is_partner((att_role)seat) && cfg->disconnect_grace_ms < wait)
        wait = cfg->disconnect_grace_ms;
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
    if (att_room_decide_reconnected(srv_room_live(r), (att_role)seat, now, s->tally_times,
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
        if (att_room_decide_leave(srv_room_live(r), (att_role)seat, s->left_reason, s->left_at,
                                  events, &n) == 0)
            submit_presence(r, n, events);
    }
    s->left_at = 0;
}

/* Records what is due at `now` (everything when `all`): a seat's returns
 * before its `left`, so the therapist reads them in the order they were. */
static void presence_flush(srv_room *r, int64_t now, int all)
{
    int64_t window = r->srv->cfg->presence_debounce_ms;
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
            int64_t u = s->tally_since + r->srv->cfg->presence_debounce_ms;
            t = t < 0 || u < t ? u : t;
        }
        if (t >= 0 && (due < 0 || t < due))
            due = t;
    }
    return due;
}

static void presence_cb(lws_sorted_usec_list_t *sul)
{
    srv_room *r = lws_container_of(sul, srv_room, presence_sul);
    r->presence_armed = 0;
    if (r->srv->stopping)
        return; /* srv_rooms_leave_all records it all */
    presence_flush(r, srv_now_ms(), 0);
    presence_arm(r);
}

static void presence_arm(srv_room *r)
{
    int64_t due = presence_due(r);
    if (due < 0) {
        if (r->presence_armed)
            lws_sul_cancel(&r->presence_sul);
        r->presence_armed = 0;
        return;
    }
    if (!r->srv->ctx || due == r->presence_armed)
        return;
    r->presence_armed = due;
    int64_t now = srv_now_ms();
    int64_t delay_ms = due > now ? due - now : 0;
    lws_sul_schedule(r->srv->ctx, 0, &r->presence_sul, presence_cb,
                     (lws_usec_t)delay_ms * LWS_US_PER_MS);
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

void srv_room_attach(srv_room *r, srv_conn *conn)
{
    srv_server *srv = r->srv;
    conn->room = r;
    conn->state = CONN_MEMBER;
    lws_dll2_add_tail(&conn->room_link, &r->members);
    srv->metrics.members++;
    int replaced = 0;
    if (conn->role != ATT_ROLE_OBSERVER) {
        srv_conn *old = r->slot[conn->role];
        r->slot[conn->role] = conn;
        replaced = old && old != conn;
        if (old && old != conn) {
            /* A reopened tab, or someone else holding the link: either way
             * the therapist is told (`replaced`), and the old window too. */
            lws_dll2_remove(&old->room_link);
            old->room = NULL;
            srv->metrics.members--;
            srv_log("info", "replaced", "{s:s,s:s,s:I,s:I}", "room", r->id, "role",
                    att_role_name(conn->role), "old", (json_int_t)old->id, "new",
                    (json_int_t)conn->id);
            srv_conn_begin_close(old, SRV_CLOSE_REPLACED, "replaced", ATT_LEFT_CLOSED);
        }
    }
    att_event events[ATT_MAX_EVENTS_PER_COMMAND];
    int n = 0;
    int64_t now = srv_now_ms();
    int seat = seat_of(conn->role);
    int64_t window = srv->cfg->presence_debounce_ms;
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
        int rc = replaced ? att_room_decide_replaced(srv_room_live(r), conn->role, now, events, &n)
                          : att_room_decide_join(srv_room_live(r), conn->role, now, events, &n);
        if (rc == 0)
            submit_presence(r, n, events);
        if (s && replaced)
            s->replaced_at = now;
    }
    presence_arm(r);
}

void srv_room_detach(srv_room *r, srv_conn *conn, int record_leave)
{
    lws_dll2_remove(&conn->room_link);
    if (conn->role != ATT_ROLE_OBSERVER && r->slot[conn->role] == conn)
        r->slot[conn->role] = NULL;
    conn->room = NULL;
    r->srv->metrics.members--;
    int seat = seat_of(conn->role);
    if (seat == ATT_ROLE_OBSERVER && seat_peek(r, seat)->unrecorded_live > 0) {
        /* One of the unrecorded observer connections goes (which one does
         * not matter: the fold only counts them). */
        r->seats->seat[seat].unrecorded_live--;
        return;
    }
    if (!record_leave)
        return;
    if (seat >= 0 && r->srv->cfg->presence_debounce_ms > 0 &&
        conn->leave_reason != ATT_LEFT_SHUTDOWN && !r->srv->stopping && seats_for_write(r)) {
        srv_seat *s = &r->seats->seat[seat];
        if (!s->pending_lefts) {
            s->left_at = srv_now_ms();
            s->left_reason = conn->leave_reason;
        }
        s->pending_lefts++;
        presence_arm(r);
        return;
    }
    att_event events[ATT_MAX_EVENTS_PER_COMMAND];
    int n = 0;
    if (att_room_decide_leave(srv_room_live(r), conn->role, conn->leave_reason, srv_now_ms(),
                              events, &n) == 0)
        submit_presence(r, n, events);
}

void srv_rooms_leave_all(srv_server *srv)
{
    for (size_t i = 0; i < srv->room_buckets; i++)
        for (srv_room *r = srv->room_table[i]; r; r = r->hash_next) {
            /* What the presence window still held is recorded now. */
            presence_flush(r, srv_now_ms(), 1);
            presence_arm(r);
            while (r->members.count) {
                srv_conn *c = lws_container_of(lws_dll2_get_head(&r->members), srv_conn, room_link);
                c->leave_reason = ATT_LEFT_SHUTDOWN;
                srv_room_detach(r, c, 1);
            }
        }
}

/* 1 when the log shows anyone present. */
static int anyone_present(const att_room *s)
{
    return s->present[0] || s->present[1] || s->present[2] || s->observers > 0;
}

/* Records `left` for members the log still shows present while nobody is
 * connected (a room just loaded: see srv_room_get). */
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
        if (att_room_decide_leave(srv_room_live(r), roles[k], ATT_LEFT_SHUTDOWN, srv_now_ms(),
                                  events, &n) == 0)
            submit_presence(r, n, events);
    }
    if (n_roles)
        srv_log("info", "stale_presence_cleared", "{s:s,s:i}", "room", r->id, "members", n_roles);
}

int srv_rooms_jobs_in_flight(const srv_server *srv)
{
    int n = 0;
    for (size_t i = 0; i < srv->room_buckets; i++)
        for (srv_room *r = srv->room_table[i]; r; r = r->hash_next)
            n += (int)r->jobs.count;
    return n;
}

static void mark_dirty(srv_room *r)
{
    if (!r->state_dirty) {
        r->state_dirty = 1;
        lws_dll2_add_tail(&r->dirty_link, &r->srv->dirty_rooms);
    }
}

/* After a divergence nobody can patch up in place: every member reconnects
 * and resumes from its last seq. */
static void resync_members(srv_room *r)
{
    lws_start_foreach_dll(struct lws_dll2 *, d, lws_dll2_get_head(&r->members))
    {
        srv_conn *c = lws_container_of(d, srv_conn, room_link);
        srv_conn_begin_close(c, SRV_CLOSE_INTERNAL, NULL, ATT_LEFT_CLOSED);
    }
    lws_end_foreach_dll(d);
}

/* Each event goes to the audiences that may see it, numbered in each
 * audience's own sequence (aud[i][role], from the durable fold). */
static void broadcast_events(srv_room *r, srv_job *job,
                             const int64_t aud[ATT_MAX_EVENTS_PER_COMMAND][ATT_AUDIENCES])
{
    srv_frame *frames[ATT_MAX_EVENTS_PER_COMMAND][ATT_AUDIENCES] = {{0}};
    /* _safe: a send can cut off a slow reader, which leaves the list. */
    lws_start_foreach_dll_safe(struct lws_dll2 *, d, d1, lws_dll2_get_head(&r->members))
    {
        srv_conn *c = lws_container_of(d, srv_conn, room_link);
        /* A catching-up member reads these from the log. */
        int live = !c->replaying && c->state == CONN_MEMBER && (int)c->role >= 0 &&
                   (int)c->role < ATT_AUDIENCES;
        for (int i = 0; live && i < job->n; i++) {
            if (!att_event_visible_to(&job->events[i], c->role))
                continue;
            srv_frame **f = &frames[i][c->role];
            if (!*f)
                *f = srv_frame_event(aud[i][c->role], job->payload[i], job->batch.payload_len[i]);
            if (*f)
                srv_conn_send(c, *f);
        }
    }
    lws_end_foreach_dll_safe(d, d1);
    for (int i = 0; i < job->n; i++)
        for (int a = 0; a < ATT_AUDIENCES; a++)
            srv_frame_unref(frames[i][a]);
}

static void complete_job(srv_server *srv, srv_job *job)
{
    srv_room *r = job->room;
    srv_store_batch *b = &job->batch;
    lws_dll2_remove(&job->link);
    srv_histogram_add(&srv->metrics.commit, (double)b->commit_ns / 1e9);
    srv_histogram_add(&srv->metrics.durable, (double)(srv_mono_ns() - b->queued_ns) / 1e9);
    const char *id = job->has_id ? job->id : NULL;
    if (b->result < 0) {
        srv->metrics.store_failures++;
        srv_log("error", "store_commit_failed", "{s:s,s:I,s:i,s:s}", "room", r->id, "seq",
                (json_int_t)b->first_seq, "events", b->n, "error", b->error.message);
        send_internal(r, job->sender, id);
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
            srv->metrics.events_appended += (uint64_t)job->n;
            srv->metrics.batches_committed++;
            srv_conn *sender = room_member(r, job->sender);
            if (sender) {
                /* The seq of the last event the sender may see, in its own
                 * numbering; none when it saw nothing (the ack says nothing
                 * of hidden events). */
                int64_t seq = 0;
                for (int k = 0; k < job->n; k++)
                    if (att_event_visible_to(&job->events[k], sender->role))
                        seq = aud[k][sender->role];
                srv_frame *ack = srv_frame_from_json_consume(att_msg_ack(id, seq));
                srv_conn_send(sender, ack);
                srv_frame_unref(ack);
            }
            broadcast_events(r, job, (const int64_t(*)[ATT_AUDIENCES])aud);
            r->state_audience |= seen;
            mark_dirty(r);
            srv_api_room_changed(srv, r->id); /* the dashboards' pushed lists */
        }
    }
    for (srv_deferred *d = job->deferred; d; d = d->next) {
        srv_conn *c = room_member(r, d->conn_id);
        if (c)
            srv_conn_send(c, d->frame);
    }
    if (!r->jobs.count) {
        live_give_back(srv, r->live);
        r->live = NULL;
    }
    job_free(job);
}

/* A state goes only to the audiences that saw an event since the last one:
 * a commit of hidden events sends a partner nothing at all. */
static void broadcast_state(srv_room *r)
{
    srv_frame *by_role[ATT_AUDIENCES] = {0};
    unsigned audience = r->state_audience;
    r->state_audience = 0;
    lws_start_foreach_dll_safe(struct lws_dll2 *, d, d1, lws_dll2_get_head(&r->members))
    {
        srv_conn *c = lws_container_of(d, srv_conn, room_link);
        if (!c->replaying && c->state == CONN_MEMBER && c->role >= 0 && c->role < ATT_AUDIENCES &&
            (audience & (1u << c->role))) {
            if (!by_role[c->role])
                by_role[c->role] = srv_state_frame(r->srv, &r->durable, c->role);
            if (by_role[c->role])
                srv_conn_send(c, by_role[c->role]);
        }
    }
    lws_end_foreach_dll_safe(d, d1);
    for (int i = 0; i < ATT_AUDIENCES; i++)
        srv_frame_unref(by_role[i]);
}

void srv_rooms_on_store_completions(srv_server *srv)
{
    srv_store_batch *b = srv_store_take_completed(srv->store);
    while (b) {
        srv_store_batch *next = b->next;
        complete_job(srv, b->owner);
        b = next;
    }
    while (srv->dirty_rooms.count) {
        srv_room *r = lws_container_of(lws_dll2_get_head(&srv->dirty_rooms), srv_room, dirty_link);
        lws_dll2_remove(&r->dirty_link);
        r->state_dirty = 0;
        broadcast_state(r);
        room_arm_deadline(r);
    }
}

srv_frame *srv_room_hello_ack(srv_room *r, att_role role, const char *id)
{
    json_t *ack = att_msg_ack(id, 0);
    if (!ack)
        return NULL;
    const att_catalog *cat = r->srv->catalog;
    int rc = json_object_set_new(ack, "protocol", json_integer(ATT_PROTOCOL_VERSION));
    rc |= json_object_set_new(ack, "room", json_string(r->id));
    rc |= json_object_set_new(ack, "role", json_string(att_role_name(role)));
    rc |= json_object_set(ack, "exercise", r->script->json);
    rc |= json_object_set(ack, "vocab", att_catalog_vocab_json(cat));
    rc |= json_object_set(ack, "consent", att_catalog_consent_json(cat));
    rc |= json_object_set(ack, "safety", att_catalog_safety_json(cat));
    rc |= json_object_set_new(
        ack, "last_seq",
        json_integer(
            r->durable.aud_seq[(int)role >= 0 && (int)role < ATT_AUDIENCES ? (int)role
                                                                           : ATT_ROLE_THERAPIST]));
    srv_frame *f = rc ? NULL : srv_frame_from_json(ack);
    json_decref(ack);
    return f;
}

/* --- summaries and eviction ------------------------------------------------ */

json_t *srv_room_summary(srv_server *srv, srv_room *r, att_error *err)
{
    srv_store_room meta;
    if (srv_store_get_room(srv->store, r->id, &meta, err) < 0)
        return NULL;
    return srv_summary_json(&r->durable, r->script, r->id, meta.created_at, err);
}

/* Queues a summary for the store's cache; a failure only costs a later fold. */
static void pending_add(srv_server *srv, const char *id, int64_t last_seq, const json_t *summary)
{
    if (srv->n_pending_summaries == srv->cap_pending_summaries) {
        size_t cap = srv->cap_pending_summaries ? srv->cap_pending_summaries * 2 : 16;
        struct srv_pending_summary *p = realloc(srv->pending_summaries, cap * sizeof *p);
        if (!p)
            return;
        srv->pending_summaries = p;
        srv->cap_pending_summaries = cap;
    }
    struct srv_pending_summary *p = &srv->pending_summaries[srv->n_pending_summaries];
    if (!(p->summary = att_json_dump(summary, NULL)))
        return;
    snprintf(p->room_id, sizeof p->room_id, "%s", id);
    p->last_seq = last_seq;
    srv->n_pending_summaries++;
}

void srv_rooms_flush_summaries(srv_server *srv)
{
    size_t n = srv->n_pending_summaries;
    if (!n)
        return;
    srv_store_summary *items = malloc(n * sizeof *items);
    att_error err = {0};
    int rc = -ATT_ERR_INTERNAL;
    if (items) {
        for (size_t i = 0; i < n; i++) {
            items[i].room_id = srv->pending_summaries[i].room_id;
            items[i].last_seq = srv->pending_summaries[i].last_seq;
            items[i].summary = srv->pending_summaries[i].summary;
        }
        rc = srv_store_put_summaries(srv->store, items, n, &err);
    }
    if (rc < 0)
        srv_log("warn", "summaries_not_cached", "{s:I,s:s}", "rooms", (json_int_t)n, "error",
                items ? err.message : "out of memory");
    free(items);
    pending_clear(srv);
}

static json_t *summary_cold(srv_server *srv, const char *id, att_error *err);

json_t *srv_room_summary_by_id(srv_server *srv, const char *id, att_error *err)
{
    srv_room *r = srv_room_find(srv, id);
    if (r)
        return srv_room_summary(srv, r, err);
    char *text = NULL;
    int rc = srv_store_get_summary(srv->store, id, &text, err);
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
    return summary_cold(srv, id, err);
}

char *srv_room_summary_text_by_id(srv_server *srv, const char *id, size_t *len, att_error *err)
{
    char *text = NULL;
    if (!srv_room_find(srv, id)) {
        /* The cached text as it is: no parse, no json_t per room. */
        int rc = srv_store_get_summary(srv->store, id, &text, err);
        if (rc == 0 && text[0] == '{') {
            *len = strlen(text);
            return text;
        }
        free(text);
        text = NULL;
        if (rc < 0 && rc != -ATT_ERR_NOT_FOUND)
            return NULL;
    }
    json_t *summary = srv_room_summary_by_id(srv, id, err);
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
static json_t *summary_cold(srv_server *srv, const char *id, att_error *err)
{
    srv_room *r = NULL;
    int rc;
    srv_store_room meta;
    att_room *scratch = NULL;
    const att_script *script = NULL;
    json_t *summary = NULL;
    if ((rc = srv_store_get_room(srv->store, id, &meta, err)) < 0)
        return NULL;
    if (!(scratch = live_take(srv))) {
        att_fail(err, ATT_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    rc = srv_room_fold_log(srv->store, srv->catalog, srv->cfg, id, scratch, &script, NULL, err);
    if (rc == 0 && anyone_present(scratch)) {
        /* Members left present by a crash: load the room for real, which
         * records their `left`, rather than show them present. */
        live_give_back(srv, scratch);
        r = srv_room_get(srv, id, err);
        return r ? srv_room_summary(srv, r, err) : NULL;
    }
    if (rc == 0 && (summary = srv_summary_json(scratch, script, id, meta.created_at, err)))
        pending_add(srv, id, scratch->seq, summary);
    live_give_back(srv, scratch);
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

void srv_rooms_warm(srv_server *srv)
{
    if (srv->warm_done || srv->stopping)
        return;
    int64_t t0 = srv_mono_ns();
    /* Nobody to keep waiting (a restart, before anyone is back): faster. */
    int64_t budget_ns = srv->metrics.members ? SRV_WARM_BUDGET_NS : SRV_WARM_IDLE_BUDGET_NS;
    /* One fold is never cut short, so only short logs are folded here (a
     * 20,000-event one would hold every room for a good part of a second):
     * longer ones wait for their first need. */
    stale_ids stale = {.n = 0,
                       .max_events =
                           srv->metrics.members ? SRV_WARM_MAX_EVENTS : SRV_WARM_IDLE_MAX_EVENTS};
    char last[SRV_STORE_ID_BYTES + 1] = "";
    int scanned = 0;
    att_error err = {0};
    if (srv_store_scan_stale_summaries(srv->store, srv->warm_cursor, SRV_WARM_BATCH, last, &scanned,
                                       note_stale, &stale, &err) < 0) {
        srv_log("warn", "summaries_warm_failed", "{s:s}", "error", err.message);
        srv->warm_done = 1;
        return;
    }
    srv->warm_skipped += stale.skipped;
    int i = 0;
    for (; i < stale.n; i++) {
        if (i > 0 && srv_mono_ns() - t0 > budget_ns)
            break; /* the rest next tick: the cursor stops before them */
        if (srv_room_find(srv, stale.ids[i]))
            continue; /* in memory: summarised from its state, saved when evicted */
        att_error fold_err = {0};
        json_t *summary = summary_cold(srv, stale.ids[i], &fold_err);
        if (!summary)
            srv_log("warn", "summary_warm_failed", "{s:s,s:s}", "room", stale.ids[i], "error",
                    fold_err.message);
        json_decref(summary);
        srv->warm_folded++;
    }
    if (i < stale.n) {
        /* Out of time (i >= 1): the next tick scans on from the last one done. */
        snprintf(srv->warm_cursor, sizeof srv->warm_cursor, "%s", stale.ids[i - 1]);
    } else if (scanned < SRV_WARM_BATCH) {
        srv->warm_done = 1;
        srv_log("info", "summaries_warm", "{s:I,s:I}", "folded", (json_int_t)srv->warm_folded,
                "left_for_need", (json_int_t)srv->warm_skipped);
    } else {
        snprintf(srv->warm_cursor, sizeof srv->warm_cursor, "%s", last);
    }
    /* Writing the cache is a transaction (and an fsync) on this thread: while
     * anyone is connected, at most once a second (every tick, it doubled the
     * open-loop benchmark's p99), at once when the walk is done or nobody
     * waits. */
    int64_t now = srv_mono_ns();
    if (srv->warm_done || !srv->metrics.members ||
        now - srv->warm_flushed_ns >= (int64_t)SRV_SWEEP_MS * 1000000) {
        srv->warm_flushed_ns = now;
        srv_rooms_flush_summaries(srv);
    }
}

void srv_rooms_save_summaries(srv_server *srv)
{
    for (size_t i = 0; srv->room_table && i < srv->room_buckets; i++)
        for (srv_room *r = srv->room_table[i]; r; r = r->hash_next) {
            att_error err = {0};
            json_t *summary = srv_room_summary(srv, r, &err);
            if (summary)
                pending_add(srv, r->id, r->durable.seq, summary);
            json_decref(summary);
        }
    srv_rooms_flush_summaries(srv);
}

/* 1 when nothing but the room table holds the room and nothing would be
 * lost by folding it again later: srv_room_idle (no members, so no
 * conn->room; no jobs, so no job->room and no deferred replies; no detector
 * deadline armed, a spent one is not; no presence change waiting out its
 * debounce), no state broadcast pending and nobody the log shows present. */
static int room_quiet(const srv_room *r)
{
    return srv_room_idle(r) && !r->live && !r->state_dirty && !anyone_present(&r->durable);
}

void srv_rooms_sweep(srv_server *srv, int64_t now_ms)
{
    if (srv->stopping)
        return; /* rooms in memory at stop have their summaries saved at exit */
    const srv_config *cfg = srv->cfg;
    int evicted = 0;
    for (size_t b = 0; b < srv->room_buckets; b++) {
        srv_room **link = &srv->room_table[b];
        while (*link) {
            srv_room *r = *link;
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
            att_error err = {0};
            json_t *summary = srv_room_summary(srv, r, &err);
            if (summary)
                pending_add(srv, r->id, r->durable.seq, summary);
            json_decref(summary);
            *link = r->hash_next;
            if (srv->ctx)
                lws_sul_cancel(&r->deadline_sul);
            srv->metrics.rooms--;
            srv->metrics.rooms_evicted++;
            srv_log("info", "room_evicted", "{s:s,s:I,s:b}", "room", r->id, "seq",
                    (json_int_t)r->durable.seq, "ended", ended);
            room_free(r);
            evicted++;
        }
    }
    srv_rooms_flush_summaries(srv);
    /* Many rooms freed at once (a busy evening's sessions ending): give
     * glibc's freed pages back, so RSS follows the rooms in memory. */
    if (evicted >= SRV_EVICT_TRIM)
        malloc_trim(0);
}

/* The detector's clock: one lws_sul per room, armed at the live state's
 * next deadline. Lazily: lws keeps its timers in a sorted list (an O(n)
 * insert), and a silence deadline moves later with every turn, so a sul
 * already armed at or before the new deadline is left alone; when it fires
 * early it re-arms once. Only a deadline that moves earlier is rescheduled. */
static void room_deadline_cb(lws_sorted_usec_list_t *sul)
{
    srv_room *r = lws_container_of(sul, srv_room, deadline_sul);
    r->deadline_armed = -1;
    if (r->srv->stopping)
        return;
    att_event events[ATT_MAX_EVENTS_PER_COMMAND];
    int64_t deadline = att_room_next_deadline(srv_room_live(r), r->composing_at);
    int64_t now = srv_now_ms();
    if (deadline < 0 || now < deadline) {
        /* Armed for a deadline that has since moved later (or gone): no
         * tick can raise anything yet, so just re-arm for the new one. */
        room_arm_deadline(r);
        return;
    }
    int n = att_room_tick(srv_room_live(r), now, r->composing_at, events);
    if (n > 0)
        submit_presence(r, n, events);
    else
        r->deadline_spent = deadline; /* nothing to raise: wait for a state change */
    room_arm_deadline(r);
}

static void room_arm_deadline(srv_room *r)
{
    srv_server *srv = r->srv;
    if (!srv->ctx)
        return; /* not serving (recovery before the loop starts arms later) */
    int64_t deadline = att_room_next_deadline(srv_room_live(r), r->composing_at);
    if (deadline == r->deadline_armed)
        return;
    int64_t now = srv_now_ms();
    if (deadline >= 0 && deadline == r->deadline_spent)
        deadline = -1;
    if (deadline < 0) {
        /* Cancel is O(1); an armed sul would only fire to find nothing. */
        r->deadline_armed = -1;
        lws_sul_cancel(&r->deadline_sul);
        return;
    }
    if (r->deadline_armed >= 0 && r->deadline_armed <= deadline)
        return; /* fires at or before it and re-arms then */
    r->deadline_armed = deadline;
    int64_t delay_ms = deadline > now ? deadline - now : 0;
    lws_sul_schedule(srv->ctx, 0, &r->deadline_sul, room_deadline_cb,
                     (lws_usec_t)delay_ms * LWS_US_PER_MS);
}
