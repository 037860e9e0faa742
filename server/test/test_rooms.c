/* test_rooms.c - the room service's commit cycle without a network: a real
 * store (SQLite in a temporary directory, its own commit thread), the real
 * catalog, members that are plain srv_member values, and a reader of the
 * outbox standing in for the network shell. Checks that nothing reaches a
 * member before the store has it (ack and broadcast only after durable), a
 * failed commit (the store's fault hook) and the rebuild after it, the
 * silence deadline firing through the deadline API, the visibility of a
 * staff-only event per role, the outbox's close of a replaced member, and a
 * fenced batch (a takeover by another node): every member closed with
 * room_moved, nothing acked or rebuilt, the room forgotten and folded
 * afresh when next needed. Command ids: a resend (in flight or after the
 * commit) is acked with the original's seq and appends nothing; behind a
 * failed commit it gets the original's error. */
#include "check.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "admin.h"
#include "deadlines.h"
#include "room_service.h"

#ifndef ATTUNE_SOURCE_DIR
#define ATTUNE_SOURCE_DIR "."
#endif

#define MAX_FRAMES 256
#define N_MEMBERS 6

/* What one member was sent, as the shell would have written it. */
typedef struct {
    char *frames[MAX_FRAMES];
    int n;
    int close_code;
    const char *close_bye;
} inbox;

typedef struct {
    inbox box[N_MEMBERS]; /* by member id */
    int room_changes;
} reader;

/* The store thread's wake-up (the server's srv_server_wake). */
typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int woken;
} notifier;

static void on_notify(void *arg)
{
    notifier *n = arg;
    pthread_mutex_lock(&n->mu);
    n->woken = 1;
    pthread_cond_signal(&n->cv);
    pthread_mutex_unlock(&n->mu);
}

/* Reads the outbox into the members' inboxes, like srv_ws_drain. */
static void drain(srv_rooms *svc, reader *rd)
{
    srv_outbox *ob = srv_rooms_outbox(svc);
    for (size_t i = 0; i < ob->n_items; i++) {
        const srv_out_item *it = &ob->items[i];
        if (it->kind == SRV_OUT_ROOM_CHANGED) {
            rd->room_changes++;
            continue;
        }
        if (!it->to)
            continue;
        CHECK(it->to->id > 0 && it->to->id < N_MEMBERS);
        inbox *b = &rd->box[it->to->id];
        if (it->kind == SRV_OUT_CLOSE) {
            b->close_code = it->code;
            b->close_bye = it->bye;
            continue;
        }
        const srv_out_msg *m = &ob->msgs[it->msg];
        const char *text = srv_outbox_text(ob, m);
        char *frame = NULL;
        size_t size = m->len + 64;
        CHECK((frame = malloc(size)) != NULL);
        if (m->kind == SRV_OUT_EVENT)
            snprintf(frame, size, "{\"event\":%.*s,\"seq\":%lld,\"type\":\"event\"}", (int)m->len,
                     text, (long long)m->seq);
        else
            snprintf(frame, size, "%.*s", (int)m->len, text);
        CHECK(b->n < MAX_FRAMES);
        if (b->n < MAX_FRAMES)
            b->frames[b->n++] = frame;
        else
            free(frame);
    }
    srv_outbox_reset(ob);
}

static void inbox_clear(reader *rd)
{
    for (int i = 0; i < N_MEMBERS; i++) {
        for (int k = 0; k < rd->box[i].n; k++)
            free(rd->box[i].frames[k]);
        memset(&rd->box[i], 0, sizeof rd->box[i]);
    }
    rd->room_changes = 0;
}

/* Frames of member id containing needle. */
static int count_with(const reader *rd, uint64_t id, const char *needle)
{
    int n = 0;
    for (int k = 0; k < rd->box[id].n; k++)
        n += strstr(rd->box[id].frames[k], needle) != NULL;
    return n;
}

/* Waits for the store to hand back every job in flight, handing each
 * completion to the service as the shell's WAIT_CANCELLED does. */
static void wait_commits(srv_rooms *svc, notifier *n)
{
    for (int rounds = 0; srv_rooms_jobs_in_flight(svc) > 0 && rounds < 1000; rounds++) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += 5;
        pthread_mutex_lock(&n->mu);
        while (!n->woken)
            if (pthread_cond_timedwait(&n->cv, &n->mu, &until) != 0)
                break;
        n->woken = 0;
        pthread_mutex_unlock(&n->mu);
        srv_rooms_on_store_completions(svc);
    }
    CHECK_INT(srv_rooms_jobs_in_flight(svc), 0);
}

static void command(srv_rooms *svc, srv_member *m, const char *text)
{
    att_msg msg;
    att_error err = {0};
    int rc = att_msg_decode(text, strlen(text), &msg, &err);
    CHECK_MSG(rc == 0, "%s: %s", text, err.message);
    if (rc == 0)
        srv_room_command(svc, m, &msg);
}

/* Joins m as role and lets it catch up, as the shell's hello does. */
static void join(srv_rooms *svc, srv_room *r, srv_member *m, att_role role, reader *rd)
{
    CHECK_INT(srv_room_join(svc, r, m, role, "h", 0), 0);
    while (srv_room_replay_step(svc, m, 1 << 20))
        ;
    drain(svc, rd);
}

/* The deadline heap against a plain scan: arms, moves (earlier and later)
 * and cancels at random; the first is always the earliest armed. */
static void test_deadlines(void)
{
    enum { N = 200 };
    srv_deadlines h = {0};
    srv_deadline d[N] = {{0}};
    unsigned seed = 7;
    int wrong = 0;
    for (int round = 0; round < 20000; round++) {
        seed = seed * 1103515245u + 12345u;
        int i = (int)((seed >> 8) % N);
        if ((seed >> 4) % 4 == 0)
            srv_deadlines_cancel(&h, &d[i]);
        else
            CHECK_INT(srv_deadlines_arm(&h, &d[i], (int64_t)((seed >> 12) % 5000)), 0);
        const srv_deadline *want = NULL;
        for (int k = 0; k < N; k++)
            if (srv_deadline_armed(&d[k]) && (!want || d[k].at < want->at))
                want = &d[k];
        const srv_deadline *got = srv_deadlines_first(&h);
        wrong += !(want == NULL ? got == NULL : got != NULL && got->at == want->at);
    }
    CHECK_INT(wrong, 0);
    size_t armed = 0;
    for (int k = 0; k < N; k++)
        armed += srv_deadline_armed(&d[k]);
    CHECK_INT(h.n, armed);
    srv_deadlines_free(&h);
    for (int k = 0; k < N; k++)
        CHECK(!srv_deadline_armed(&d[k]));
}

int main(void)
{
    test_deadlines();
    char dir[] = "/tmp/attune-rooms-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    att_error err = {0};
    att_catalog *cat = NULL;
    srv_keyring *keys = NULL;
    srv_store *store = NULL;
    CHECK_INT(att_catalog_load_dir(ATTUNE_SOURCE_DIR "/protocol", &cat, &err), 0);
    /* the KEK beside the data directory (DIR.kek), the keys in it */
    CHECK_INT(srv_keyring_open(dir, NULL, 1, &keys, &err), 0);
    CHECK_INT(srv_store_open(dir, keys, &store, &err), 0);
    notifier n = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};
    CHECK_INT(srv_store_start(store, 0, on_notify, NULL, &n, &err), 0);
    char room_id[ATT_ROOM_ID_BYTES + 1];
    CHECK_INT(
        srv_admin_create_room(store, cat, "enactment", ATT_ROLE_PARTNER_A, "r-", room_id, &err), 0);

    srv_metrics metrics = {0};
    srv_rooms_deps deps = {.store = store,
                           .catalog = cat,
                           .metrics = &metrics,
                           .options = {.room = {.silence_ms = 300000, .disconnect_grace_ms = 60000},
                                       .room_event_cap = 50000,
                                       .presence_debounce_ms = 0,
                                       .room_evict_s = 60,
                                       .room_idle_evict_s = 600,
                                       .link_grace_s = 1800,
                                       .max_queue_bytes = 1 << 20}};
    srv_rooms *svc = NULL;
    CHECK_INT(srv_rooms_open(&deps, &svc, &err), 0);
    reader rd = {0};
    srv_room *r = srv_rooms_get(svc, room_id, &err);
    CHECK(r != NULL);
    if (!r)
        return check_done("rooms");

    /* --- members join: the hello ack, the catch-up, then `joined` ------- */
    srv_member a = {.id = 1}, b = {.id = 2}, t = {.id = 3}, a2 = {.id = 4};
    join(svc, r, &t, ATT_ROLE_THERAPIST, &rd);
    join(svc, r, &a, ATT_ROLE_PARTNER_A, &rd);
    join(svc, r, &b, ATT_ROLE_PARTNER_B, &rd);
    CHECK_INT(count_with(&rd, 1, "\"protocol\""), 1); /* the hello ack */
    CHECK_INT(count_with(&rd, 1, "\"type\":\"state\""), 1);
    CHECK_INT(count_with(&rd, 1, "\"type\":\"room_created\""), 1); /* caught up from the log */
    CHECK_INT(srv_rooms_jobs_in_flight(svc), 3); /* the three `joined`, not yet durable */
    CHECK_INT(count_with(&rd, 3, "\"type\":\"joined\""), 0);
    wait_commits(svc, &n);
    drain(svc, &rd);
    CHECK_INT(count_with(&rd, 3, "\"type\":\"joined\""), 3); /* the therapist saw all three */
    inbox_clear(&rd);

    /* --- commit: ack and broadcast only once durable -------------------- */
    int64_t before = srv_room_committed(r)->seq;
    command(svc, &a, "{\"type\":\"consent\",\"id\":\"c1\",\"accept\":true}");
    drain(svc, &rd);
    CHECK_INT(rd.box[1].n + rd.box[2].n + rd.box[3].n, 0); /* nothing before the store has it */
    CHECK_INT(srv_room_committed(r)->seq, before);
    CHECK(srv_room_live(r)->seq > before); /* the next command is decided against it */
    CHECK_INT(srv_rooms_jobs_in_flight(svc), 1);
    wait_commits(svc, &n);
    drain(svc, &rd);
    CHECK(srv_room_committed(r)->seq > before);
    CHECK(srv_room_live(r) == srv_room_committed(r));           /* nothing in flight */
    CHECK_INT(count_with(&rd, 1, "\"id\":\"c1\""), 1);          /* the ack */
    CHECK_INT(count_with(&rd, 2, "\"type\":\"consented\""), 1); /* the event */
    CHECK_INT(count_with(&rd, 3, "\"type\":\"state\""), 1);
    CHECK_INT(count_with(&rd, 2, "\"id\":\"c1\""), 0); /* acks go to the sender only */
    CHECK_INT(rd.room_changes, 1);
    inbox_clear(&rd);

    /* --- a reply behind an in-flight commit keeps its place -------------- */
    command(svc, &b, "{\"type\":\"consent\",\"id\":\"c2\",\"accept\":true}");
    srv_room_reply_ack(svc, &b, "p1"); /* a ping while c2 is in flight */
    drain(svc, &rd);
    CHECK_INT(count_with(&rd, 2, "\"p1\""), 0);
    wait_commits(svc, &n);
    drain(svc, &rd);
    CHECK(rd.box[2].n >= 2);
    if (rd.box[2].n >= 2) {
        CHECK(strstr(rd.box[2].frames[0], "\"c2\"") != NULL);
        CHECK(strstr(rd.box[2].frames[rd.box[2].n - 2], "\"p1\"") != NULL ||
              strstr(rd.box[2].frames[rd.box[2].n - 1], "\"p1\"") != NULL);
    }
    inbox_clear(&rd);

    /* --- a failed commit: `internal` to the sender, memory rebuilt ------- */
    before = srv_room_committed(r)->seq;
    int64_t a_seen = srv_room_committed(r)->aud_seq[ATT_ROLE_PARTNER_A];
    srv_store_fail_nth_batch(store, 1);
    command(svc, &a, "{\"type\":\"checkin\",\"id\":\"k1\",\"answers\":{\"safe_to_talk\":\"yes\"}}");
    CHECK(srv_room_live(r)->seq > before);
    wait_commits(svc, &n);
    drain(svc, &rd);
    CHECK_INT(count_with(&rd, 1, "\"internal\""), 1);
    CHECK_INT(count_with(&rd, 1, "\"k1\""), 1);  /* the error names the command */
    CHECK_INT(count_with(&rd, 2, "checkin"), 0); /* nobody saw what the disk lacks */
    CHECK_INT(count_with(&rd, 3, "checkin"), 0);
    CHECK_INT(srv_room_committed(r)->seq, before);
    CHECK(srv_room_live(r) == srv_room_committed(r));
    CHECK_INT(metrics.store_failures, 1);
    inbox_clear(&rd);
    /* rebuilt from the store: the same command now goes through */
    command(svc, &a, "{\"type\":\"checkin\",\"id\":\"k2\",\"answers\":{\"safe_to_talk\":\"yes\"}}");
    wait_commits(svc, &n);
    drain(svc, &rd);
    CHECK_INT(count_with(&rd, 1, "\"k2\""), 1);
    CHECK_INT(srv_room_committed(r)->seq, before + 1);
    CHECK_INT(srv_room_committed(r)->aud_seq[ATT_ROLE_PARTNER_A], a_seen + 1);
    command(svc, &b, "{\"type\":\"checkin\",\"id\":\"k3\",\"answers\":{\"safe_to_talk\":\"yes\"}}");
    wait_commits(svc, &n);
    drain(svc, &rd);
    CHECK_INT(srv_room_committed(r)->status, ATT_STATUS_ACTIVE);
    inbox_clear(&rd);

    /* --- command ids: a resend appends nothing, gets the original's seq --- */
    before = srv_room_committed(r)->seq;
    command(svc, &a,
            "{\"type\":\"private_message\",\"id\":\"d1\",\"text\":\"only once\","
            "\"command_id\":\"cmd-0123456789abcdef\"}");
    /* while the first waits for its commit */
    command(svc, &a,
            "{\"type\":\"private_message\",\"id\":\"d2\",\"text\":\"only once\","
            "\"command_id\":\"cmd-0123456789abcdef\"}");
    CHECK_INT(srv_rooms_jobs_in_flight(svc), 1);
    wait_commits(svc, &n);
    drain(svc, &rd);
    CHECK_INT(srv_room_committed(r)->seq, before + 1);
    char want[96];
    int64_t a_seq = srv_room_committed(r)->aud_seq[ATT_ROLE_PARTNER_A];
    snprintf(want, sizeof want, "{\"id\":\"d1\",\"seq\":%lld,\"type\":\"ack\"}", (long long)a_seq);
    CHECK_INT(count_with(&rd, 1, want), 1);
    snprintf(want, sizeof want, "{\"duplicate\":true,\"id\":\"d2\",\"seq\":%lld,\"type\":\"ack\"}",
             (long long)a_seq);
    CHECK_INT(count_with(&rd, 1, want), 1);
    CHECK_INT(count_with(&rd, 3, "only once"), 1); /* one event */
    CHECK_INT(count_with(&rd, 3, "\"type\":\"event\""), 1);
    CHECK_INT(count_with(&rd, 1, "cmd-0123456789abcdef"), 0); /* on no wire */
    CHECK_INT(count_with(&rd, 3, "cmd-0123456789abcdef"), 0);
    CHECK_INT(count_with(&rd, 3, "command_"), 0);
    inbox_clear(&rd);
    /* after the commit: acked at once, nothing in flight, nothing broadcast */
    command(svc, &a,
            "{\"type\":\"private_message\",\"id\":\"d3\",\"text\":\"only once\","
            "\"command_id\":\"cmd-0123456789abcdef\"}");
    CHECK_INT(srv_rooms_jobs_in_flight(svc), 0);
    drain(svc, &rd);
    snprintf(want, sizeof want, "{\"duplicate\":true,\"id\":\"d3\",\"seq\":%lld,\"type\":\"ack\"}",
             (long long)a_seq);
    CHECK_INT(count_with(&rd, 1, want), 1);
    CHECK_INT(rd.box[1].n + rd.box[2].n + rd.box[3].n, 1);
    CHECK_INT(srv_room_committed(r)->seq, before + 1);
    inbox_clear(&rd);
    /* the same id from another role is another command */
    command(svc, &b,
            "{\"type\":\"private_message\",\"id\":\"d4\",\"text\":\"b's own\","
            "\"command_id\":\"cmd-0123456789abcdef\"}");
    wait_commits(svc, &n);
    drain(svc, &rd);
    CHECK_INT(count_with(&rd, 2, "duplicate"), 0);
    CHECK_INT(srv_room_committed(r)->seq, before + 2);
    inbox_clear(&rd);
    /* a resend behind a commit that fails gets the original's error, and
     * the id is not taken: the next resend is recorded */
    srv_store_fail_nth_batch(store, 1);
    command(svc, &a,
            "{\"type\":\"private_message\",\"id\":\"e1\",\"text\":\"after a failure\","
            "\"command_id\":\"cmd-fedcba9876543210\"}");
    command(svc, &a,
            "{\"type\":\"private_message\",\"id\":\"e2\",\"text\":\"after a failure\","
            "\"command_id\":\"cmd-fedcba9876543210\"}");
    wait_commits(svc, &n);
    drain(svc, &rd);
    CHECK_INT(count_with(&rd, 1, "\"internal\""), 2);
    CHECK_INT(count_with(&rd, 1, "\"e1\""), 1);
    CHECK_INT(count_with(&rd, 1, "\"e2\""), 1);
    CHECK_INT(count_with(&rd, 3, "after a failure"), 0);
    CHECK_INT(srv_room_committed(r)->seq, before + 2);
    inbox_clear(&rd);
    command(svc, &a,
            "{\"type\":\"private_message\",\"id\":\"e3\",\"text\":\"after a failure\","
            "\"command_id\":\"cmd-fedcba9876543210\"}");
    wait_commits(svc, &n);
    drain(svc, &rd);
    CHECK_INT(count_with(&rd, 1, "\"e3\""), 1);
    CHECK_INT(count_with(&rd, 1, "duplicate"), 0);
    CHECK_INT(count_with(&rd, 3, "\"type\":\"event\""), 1);
    CHECK_INT(srv_room_committed(r)->seq, before + 3);
    inbox_clear(&rd);

    /* --- the silence deadline, through the deadline API ------------------ */
    int64_t due = srv_rooms_next_deadline(svc);
    const att_room *live = srv_room_live(r);
    CHECK_INT(due, live->step_started_at + 300000); /* what_happened: silence_ms 300000 */
    int64_t partner_seen = srv_room_committed(r)->aud_seq[ATT_ROLE_PARTNER_B];
    int64_t staff_seen = srv_room_committed(r)->aud_seq[ATT_ROLE_THERAPIST];
    srv_rooms_tick(svc, due - 1);
    CHECK_INT(srv_rooms_jobs_in_flight(svc), 0); /* not yet */
    srv_rooms_tick(svc, due);
    CHECK_INT(srv_rooms_jobs_in_flight(svc), 1); /* the suspicion, on its way to the store */
    wait_commits(svc, &n);
    drain(svc, &rd);
    CHECK_INT(count_with(&rd, 3, "\"type\":\"event\""), 1);     /* the suspicion */
    CHECK_INT(count_with(&rd, 3, "\"marker\":\"silence\""), 2); /* it, and the state */
    /* visibility per role: the partners get nothing at all of it */
    CHECK_INT(rd.box[1].n, 0);
    CHECK_INT(rd.box[2].n, 0);
    CHECK_INT(srv_room_committed(r)->aud_seq[ATT_ROLE_PARTNER_B], partner_seen);
    CHECK(srv_room_committed(r)->aud_seq[ATT_ROLE_THERAPIST] > staff_seen);
    /* a spent deadline is not armed again until the state changes */
    CHECK(srv_rooms_next_deadline(svc) < 0 || srv_rooms_next_deadline(svc) > due);
    inbox_clear(&rd);

    /* --- a partner catching up later never sees it either ---------------- */
    srv_room_detach(svc, &b, ATT_LEFT_CLOSED, 0);
    srv_member b2 = {.id = 5};
    join(svc, r, &b2, ATT_ROLE_PARTNER_B, &rd);
    CHECK(rd.box[5].n > 3);
    CHECK_INT(count_with(&rd, 5, "\"marker\""), 0);
    CHECK_INT(count_with(&rd, 5, "\"suspicion"), 0);
    CHECK_INT(count_with(&rd, 5, "\"type\":\"state\""), 1);
    /* numbered in partner_b's own sequence, 1.. with no gaps, all it may see */
    int64_t b_seen = srv_room_committed(r)->aud_seq[ATT_ROLE_PARTNER_B];
    CHECK_INT(count_with(&rd, 5, ",\"type\":\"event\"}"), b_seen);
    for (int64_t k = 1; k <= b_seen; k++) {
        char needle[48];
        snprintf(needle, sizeof needle, "},\"seq\":%lld,\"type\":\"event\"}", (long long)k);
        CHECK_MSG(count_with(&rd, 5, needle) == 1, "seq %lld", (long long)k);
    }
    wait_commits(svc, &n);
    inbox_clear(&rd);

    /* --- a second connection of partner_a replaces the first ------------- */
    join(svc, r, &a2, ATT_ROLE_PARTNER_A, &rd);
    CHECK_INT(rd.box[1].close_code, SRV_CLOSE_REPLACED);
    CHECK(rd.box[1].close_bye && strcmp(rd.box[1].close_bye, "replaced") == 0);
    CHECK(a.room == NULL);
    CHECK(a2.room == r);
    wait_commits(svc, &n);
    drain(svc, &rd);
    CHECK_INT(count_with(&rd, 3, "\"type\":\"replaced\""), 1); /* the therapist is told */
    /* a member that goes before the drain gets nothing more */
    srv_room_reply_ack(svc, &t, "gone");
    srv_rooms_forget_member(svc, &t, ATT_LEFT_CLOSED, 0);
    inbox_clear(&rd);
    drain(svc, &rd);
    CHECK_INT(rd.box[3].n, 0);
    inbox_clear(&rd);

    /* --- the outbox keeps its memory: steady turns allocate nothing there - */
    srv_outbox *ob = srv_rooms_outbox(svc);
    size_t caps[3] = {0};
    for (int turn = 0; turn < 40; turn++) {
        command(svc, &a2, "{\"type\":\"private_message\",\"id\":\"m\",\"text\":\"x\"}");
        srv_room_reply_ack(svc, &b2, "p"); /* behind a2's commit */
        command(svc, &b2, "{\"type\":\"typing\"}");
        wait_commits(svc, &n);
        if (turn == 20) {
            caps[0] = ob->cap_items;
            caps[1] = ob->cap_msgs;
            caps[2] = ob->bytes.cap;
        }
        drain(svc, &rd);
        inbox_clear(&rd);
    }
    CHECK(caps[0] > 0 && caps[0] == ob->cap_items);
    CHECK(caps[1] > 0 && caps[1] == ob->cap_msgs);
    CHECK(caps[2] > 0 && caps[2] == ob->bytes.cap);

    /* --- a fenced batch: the room was taken over by another node --------- */
    CHECK_INT(srv_room_committed(r)->seq, srv_room_live(r)->seq);
    uint64_t rooms_before = metrics.rooms, members_before = metrics.members;
    srv_rooms_fence_nth_completion(svc, 1);
    command(svc, &a2, "{\"type\":\"private_message\",\"id\":\"f1\",\"text\":\"fenced one\"}");
    command(svc, &b2, "{\"type\":\"private_message\",\"id\":\"f2\",\"text\":\"y\"}");
    CHECK_INT(srv_rooms_jobs_in_flight(svc), 2);
    wait_commits(svc, &n);
    drain(svc, &rd);
    /* every member goes, told to reconnect where the room is served now */
    CHECK_INT(rd.box[4].close_code, SRV_CLOSE_ROOM_MOVED);
    CHECK(rd.box[4].close_bye && strcmp(rd.box[4].close_bye, "room_moved") == 0);
    CHECK_INT(rd.box[5].close_code, SRV_CLOSE_ROOM_MOVED);
    CHECK(rd.box[5].close_bye && strcmp(rd.box[5].close_bye, "room_moved") == 0);
    CHECK(a2.room == NULL && b2.room == NULL);
    CHECK_INT(metrics.members, members_before - 2);
    /* neither command is acked, refused or broadcast: both clients resend
     * on the other node (the one behind the fenced batch is dropped too) */
    CHECK_INT(count_with(&rd, 4, "\"f1\""), 0);
    CHECK_INT(count_with(&rd, 5, "\"f2\""), 0);
    CHECK_INT(count_with(&rd, 4, "private_message"), 0);
    CHECK_INT(count_with(&rd, 5, "\"type\":\"event\""), 0);
    CHECK_INT(count_with(&rd, 4, "\"type\":\"state\""), 0);
    /* not served any more, not rebuilt (no room_rebuilt: its seq is what it was) */
    CHECK(srv_rooms_find(svc, room_id) == NULL);
    err = (att_error){0};
    CHECK(srv_rooms_get(svc, room_id, &err) == NULL);
    CHECK_INT(err.code, ATT_ERR_ROOM_BUSY);
    CHECK_INT(srv_rooms_next_deadline(svc), -1); /* its timers are off */
    CHECK_INT(metrics.rooms, rooms_before);      /* until the sweep forgets it */
    srv_rooms_sweep(svc, 1);
    CHECK_INT(metrics.rooms, rooms_before - 1);
    inbox_clear(&rd);
    /* The SQLite store grants the lease again (it stored both batches: the
     * fence was the test's): the room is folded afresh from the log, and the
     * members it shows present (a2, b2 and the therapist forgotten above
     * without a `left`) get theirs, the takeover path. */
    r = srv_rooms_get(svc, room_id, &err);
    CHECK(r != NULL);
    if (!r)
        return check_done("rooms");
    CHECK_INT(metrics.rooms, rooms_before);
    CHECK_INT(srv_rooms_jobs_in_flight(svc), 3); /* the three stale `left` */
    wait_commits(svc, &n);
    join(svc, r, &a2, ATT_ROLE_PARTNER_A, &rd);
    CHECK_INT(count_with(&rd, 4, "fenced one"), 1); /* stored after all: folded afresh */
    wait_commits(svc, &n);
    inbox_clear(&rd);

    srv_rooms_leave_all(svc);
    wait_commits(svc, &n);
    srv_store_close(store);
    srv_rooms_free(svc);
    srv_keyring_close(keys);
    att_catalog_free(cat);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s %s.kek", dir, dir);
    CHECK_INT(system(cmd), 0);
    return check_done("rooms");
}
