/* test_store.c - the SQLite store on its own: group commit and read-back,
 * seq gaps refused, an injected commit failure fails its whole group and
 * nothing of it is stored, reopen after close, settings, the room summaries
 * cache (current only at the room's last seq) and its scan, and a WAL that
 * checkpoints and starts again under sustained appends instead of growing.
 * Then the previous release's data directory (tests/fixtures/store-v1):
 * its migration is one transaction, and afterwards every event (with its
 * type in the new column) and every account is there. */
#include "accounts.h"
#include "attune/catalog.h"
#include "check.h"
#include "invites.h"
#include "log_fold.h"
#include "schema.h"
#include "store.h"

#include <jansson.h>
#include <sqlite3.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int notified;
} notifier;

static void on_notify(void *arg)
{
    notifier *n = arg;
    pthread_mutex_lock(&n->lock);
    n->notified++;
    pthread_cond_signal(&n->cond);
    pthread_mutex_unlock(&n->lock);
}

static void wait_notified(notifier *n)
{
    pthread_mutex_lock(&n->lock);
    while (n->notified == 0)
        pthread_cond_wait(&n->cond, &n->lock);
    n->notified = 0;
    pthread_mutex_unlock(&n->lock);
}

/* Waits until `want` batches have come back; returns them in order. */
static int collect(srv_store *s, notifier *n, srv_store_batch **out, int want)
{
    int got = 0;
    while (got < want) {
        wait_notified(n);
        for (srv_store_batch *b = srv_store_take_completed(s); b; b = b->next)
            out[got++] = b;
    }
    return got;
}

typedef struct {
    int count;
    int64_t seqs[64];
    char payloads[64][32];
    char types[64][32];
} readback;

static srv_walk on_event(const srv_stored_event *ev, void *arg, att_error *err)
{
    (void)err;
    readback *r = arg;
    if (r->count < 64) {
        r->seqs[r->count] = ev->seq;
        snprintf(r->payloads[r->count], sizeof r->payloads[0], "%.*s", (int)ev->len, ev->payload);
        snprintf(r->types[r->count], sizeof r->types[0], "%s", ev->type ? ev->type : "(none)");
    }
    r->count++;
    return SRV_WALK_CONTINUE;
}

/* Stops after two events. */
static srv_walk two_events(const srv_stored_event *ev, void *arg, att_error *err)
{
    readback *r = arg;
    on_event(ev, arg, err);
    return r->count == 2 ? SRV_WALK_PAUSE : SRV_WALK_CONTINUE;
}

static int count_rooms(const srv_store_room *room, void *arg)
{
    (void)room;
    (*(int *)arg)++;
    return 0;
}

static char texts[64][32];

static void fill(srv_store_batch *b, const char *room, int64_t first, int n, int text_base)
{
    memset(b, 0, sizeof *b);
    snprintf(b->room_id, sizeof b->room_id, "%s", room);
    b->first_seq = first;
    b->n = n;
    for (int i = 0; i < n; i++) {
        snprintf(texts[text_base + i], sizeof texts[0], "{\"n\":%lld}", (long long)(first + i));
        b->payload[i] = texts[text_base + i];
        b->payload_len[i] = strlen(texts[text_base + i]);
        b->type[i] = "turn";
    }
}

/* Sustained appends from four rooms, each with one batch in flight, big
 * enough to cross the checkpoint threshold many times: every event must be
 * stored, and the WAL must have been started again (its file stays far
 * below what was written through it). */
static void sustained_appends(srv_store *s, notifier *n, const char *dir)
{
    enum { ROOMS = 4, ROUNDS = 700, PER = 16, SIZE = 3000 };
    static char big[PER][SIZE + 1];
    for (int i = 0; i < PER; i++) {
        memset(big[i], 'a' + i, SIZE);
        big[i][0] = '"';
        big[i][SIZE - 1] = '"';
        big[i][SIZE] = '\0';
    }
    static srv_store_batch batches[ROOMS];
    int64_t next[ROOMS];
    att_error err = {0};
    for (int r = 0; r < ROOMS; r++)
        next[r] = 1;
    int sent = 0, done = 0, failed = 0;
    for (int r = 0; r < ROOMS; r++) {
        srv_store_batch *b = &batches[r];
        memset(b, 0, sizeof *b);
        snprintf(b->room_id, sizeof b->room_id, "wal%d", r);
        b->first_seq = next[r];
        b->n = PER;
        for (int i = 0; i < PER; i++) {
            b->payload[i] = big[i];
            b->payload_len[i] = SIZE;
            b->type[i] = "note";
        }
        b->owner = (void *)(intptr_t)r;
        CHECK_INT(srv_store_append(s, b, &err), 0);
        sent++;
    }
    while (done < sent) {
        wait_notified(n);
        srv_store_batch *b = srv_store_take_completed(s);
        while (b) {
            srv_store_batch *nb = b->next;
            int r = (int)(intptr_t)b->owner;
            done++;
            if (b->result != 0)
                failed++;
            next[r] += PER;
            if (sent < ROOMS * ROUNDS) {
                b->first_seq = next[r];
                CHECK_INT(srv_store_append(s, b, &err), 0);
                sent++;
            }
            b = nb;
        }
    }
    CHECK_INT(failed, 0);
    for (int r = 0; r < ROOMS; r++) {
        char room[16];
        snprintf(room, sizeof room, "wal%d", r);
        int64_t last = 0;
        CHECK_INT(srv_store_last_seq(s, room, &last, &err), 0);
        CHECK_INT(last, (int64_t)ROUNDS * PER);
    }
    /* About 12 pages per batch went through the WAL (~100 MiB in all);
     * restarted after each checkpoint, its file stays near the threshold. */
    char wal[300];
    snprintf(wal, sizeof wal, "%s/attune.db-wal", dir);
    struct stat st;
    CHECK_INT(stat(wal, &st), 0);
    CHECK(st.st_size < 48 * 1024 * 1024);
    srv_store_stats stats;
    srv_store_get_stats(s, &stats);
    CHECK(stats.checkpoints >= 3); /* ~33,000 pages through the WAL, 4,000 a pass */
    printf("sustained appends: %d batches, WAL file %lld KiB\n", sent,
           (long long)st.st_size / 1024);
}

typedef struct {
    char ids[4][SRV_STORE_ID_BYTES + 1];
    int n;
} stale_seen;

static int note_stale(const char *id, int64_t last_seq, void *arg)
{
    (void)last_seq;
    stale_seen *seen = arg;
    if (seen->n < 4)
        snprintf(seen->ids[seen->n++], sizeof seen->ids[0], "%s", id);
    return 0;
}

/* ---- the previous release's format (tests/fixtures/store-v1) ---------- */

#define V1_FIXTURE ATTUNE_SOURCE_DIR "/tests/fixtures/store-v1/data"
#define V1_DEMO_EVENTS 18 /* README.md: what make.mjs recorded */

static int64_t count_sql(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    int64_t n = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return n;
}

static int has_type_column(sqlite3 *db)
{
    return count_sql(db, "SELECT count(*) FROM pragma_table_info('events') WHERE name = 'type'") ==
           1;
}

typedef struct {
    int64_t events, expect_seq;
    int typed_as_payload; /* events whose type equals their payload's "type" */
    int private_messages, notes;
    char room[SRV_STORE_ID_BYTES + 1];
} v1_walk;

static srv_walk v1_event(const srv_stored_event *ev, void *arg, att_error *err)
{
    (void)err;
    v1_walk *w = arg;
    w->events++;
    CHECK_INT(ev->seq, w->expect_seq);
    w->expect_seq = ev->seq + 1;
    json_t *obj = json_loadb(ev->payload, ev->len, 0, NULL);
    const char *t = json_string_value(json_object_get(obj, "type"));
    if (t && ev->type && strcmp(t, ev->type) == 0)
        w->typed_as_payload++;
    if (ev->type && strcmp(ev->type, "private_message") == 0)
        w->private_messages++;
    if (ev->type && strcmp(ev->type, "note") == 0)
        w->notes++;
    json_decref(obj);
    return SRV_WALK_CONTINUE;
}

static int v1_room(const srv_store_room *room, void *arg)
{
    char(*ids)[SRV_STORE_ID_BYTES + 1] = arg;
    for (int i = 0; i < 4; i++)
        if (!ids[i][0]) {
            snprintf(ids[i], sizeof ids[i], "%s", room->id);
            break;
        }
    return 0;
}

static int v1_invite(const srv_invite_record *rec, void *arg)
{
    (void)rec;
    (*(int *)arg)++;
    return 0;
}

static void migrates_store_v1(void)
{
    char dir[] = "/tmp/attune-store-v1-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char cmd[600], path[300];
    /* A checkout gives the key files 0644; the key loader wants 0600. */
    snprintf(cmd, sizeof cmd, "cp -a '%s'/. '%s'/ && chmod 600 '%s'/*", V1_FIXTURE, dir, dir);
    CHECK_INT(system(cmd), 0);
    snprintf(path, sizeof path, "%s/attune.db", dir);
    att_error err = {0};

    /* As the previous release left it: store format 1, no type column,
     * every payload sealed as version 0x01. */
    sqlite3 *db = NULL;
    CHECK_INT(sqlite3_open(path, &db), SQLITE_OK);
    CHECK_INT(srv_schema_version(db, "store", &err), 1);
    CHECK(!has_type_column(db));
    int64_t events = count_sql(db, "SELECT count(*) FROM events");
    CHECK_INT(events, V1_DEMO_EVENTS + 1);
    CHECK_INT(count_sql(db, "SELECT count(*) FROM events WHERE substr(payload, 1, 1) = x'01'"),
              events);
    /* A migration that fails part way (the fifth event's rewrite is refused)
     * leaves the database as it was: one transaction. */
    CHECK_INT(sqlite3_exec(db,
                           "CREATE TRIGGER refuse_fifth BEFORE UPDATE ON events WHEN NEW.seq = 5 "
                           "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END;",
                           NULL, NULL, NULL),
              SQLITE_OK);
    srv_store *s = NULL;
    CHECK(srv_store_open(dir, &s, &err) < 0);
    CHECK(strstr(err.message, "refused by the test") != NULL);
    CHECK_INT(srv_schema_version(db, "store", &err), 1);
    CHECK(!has_type_column(db));
    CHECK_INT(count_sql(db, "SELECT count(*) FROM events WHERE substr(payload, 1, 1) = x'01'"),
              events);
    CHECK_INT(sqlite3_exec(db, "DROP TRIGGER refuse_fifth", NULL, NULL, NULL), SQLITE_OK);

    /* Opened by this build: migrated to format 2, every event typed and
     * resealed with its type (version 0x02). */
    CHECK_INT(srv_store_open(dir, &s, &err), 0);
    CHECK_INT(srv_schema_version(db, "store", &err), 2);
    CHECK(has_type_column(db));
    CHECK_INT(count_sql(db, "SELECT count(*) FROM events WHERE type IS NOT NULL"), events);
    CHECK_INT(count_sql(db, "SELECT count(*) FROM events WHERE substr(payload, 1, 1) = x'02'"),
              events);
    CHECK_INT(count_sql(db, "SELECT count(*) FROM events WHERE type = 'room_created'"), 2);
    char ids[4][SRV_STORE_ID_BYTES + 1] = {{0}};
    CHECK_INT(srv_store_list_rooms(s, v1_room, ids, &err), 0);
    CHECK_STR(ids[0], "clinic-1");
    CHECK(strncmp(ids[1], "demo-", 5) == 0);
    CHECK(!ids[2][0]);

    /* Every event reads back, in order, its type beside it as its payload
     * says, and every room still folds. */
    att_catalog *cat = NULL;
    CHECK_INT(att_catalog_load_dir(ATTUNE_SOURCE_DIR "/protocol", &cat, &err), 0);
    int64_t total = 0;
    for (int i = 0; i < 2; i++) {
        v1_walk w = {.expect_seq = 1};
        CHECK_INT(srv_store_walk_events(s, ids[i], 0, -1, 0, v1_event, &w, &err),
                  SRV_WALK_CONTINUE);
        CHECK_INT(w.typed_as_payload, w.events);
        total += w.events;
        att_room *room = malloc(sizeof *room);
        CHECK(room != NULL);
        CHECK_INT(srv_log_fold_room(s, cat, NULL, ids[i], NULL, room, NULL, &err), 0);
        CHECK_INT(room->seq, w.events);
        if (i == 1) {
            CHECK_INT(w.events, V1_DEMO_EVENTS);
            CHECK_INT(w.private_messages, 1);
            CHECK_INT(w.notes, 1);
            CHECK_INT(room->status, ATT_STATUS_ACTIVE);
        }
        free(room);
    }
    CHECK_INT(total, events);
    att_catalog_free(cat);
    srv_store_close(s);

    /* Every account, its kind and password, and what it owns; every
     * invitation record. */
    srv_accounts *acc = NULL;
    CHECK_INT(srv_accounts_open(dir, 0, &acc, &err), 0);
    srv_account a;
    CHECK_INT(srv_accounts_get(acc, "robin", &a, &err), 1);
    CHECK_INT(a.kind, SRV_ACCOUNT_THERAPIST);
    CHECK_INT(srv_accounts_get(acc, "sam", &a, &err), 1);
    CHECK_INT(a.kind, SRV_ACCOUNT_SUPERVISOR);
    CHECK_INT(srv_accounts_verify(acc, "robin", "correct horse battery", 21, &err), 1);
    CHECK_INT(srv_accounts_verify(acc, "robin", "not the password", 16, &err), 0);
    char owner[SRV_ACCOUNT_NAME_MAX + 1];
    for (int i = 0; i < 2; i++) {
        CHECK_INT(srv_accounts_get_owner(acc, ids[i], owner, &err), 0);
        CHECK_STR(owner, "robin");
    }
    srv_accounts_close(acc);
    srv_invites *inv = NULL;
    CHECK_INT(srv_invites_open(dir, &inv, &err), 0);
    int n_invites = 0;
    for (int i = 0; i < 2; i++)
        CHECK_INT(srv_invites_list(inv, ids[i], v1_invite, &n_invites, &err), 0);
    CHECK_INT(n_invites, 6);
    srv_invites_close(inv);

    /* Opening again migrates nothing more. */
    CHECK_INT(srv_store_open(dir, &s, &err), 0);
    srv_store_close(s);
    CHECK_INT(srv_schema_version(db, "store", &err), 2);
    sqlite3_close(db);
    printf("store: the previous release's directory migrated: %lld events, 2 accounts\n",
           (long long)events);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK_INT(system(cmd), 0);
}

int main(void)
{
    migrates_store_v1();

    char dir[] = "/tmp/attune-store-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    att_error err = {0};
    srv_store *s = NULL;
    CHECK_INT(srv_store_open(dir, &s, &err), 0);
    notifier n = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};
    CHECK_INT(srv_store_start(s, SRV_STORE_DEFAULT_WINDOW_US, on_notify, NULL, &n, &err), 0);

    srv_store_room ra = {.id = "roomA", .exercise = "enactment", .created_at = 1000};
    srv_store_room rb = {.id = "roomB", .exercise = "enactment", .created_at = 2000};
    CHECK_INT(srv_store_create_room(s, &ra, "{\"first\":1}", 11, &err), 0);
    CHECK_INT(srv_store_create_room(s, &rb, "{\"first\":2}", 11, &err), 0);
    CHECK_INT(srv_store_create_room(s, &ra, "{}", 2, &err), -ATT_ERR_BAD_MESSAGE);

    /* Ten batches over two rooms, appended back to back: the store thread
     * commits them in fewer transactions than batches (group commit) and
     * returns them in append order. */
    srv_store_batch batches[10];
    int64_t next_a = 2, next_b = 2;
    for (int i = 0; i < 10; i++) {
        int k = 1 + i % 3;
        if (i % 2 == 0) {
            fill(&batches[i], "roomA", next_a, k, i * 4);
            next_a += k;
        } else {
            fill(&batches[i], "roomB", next_b, k, i * 4);
            next_b += k;
        }
        batches[i].owner = &batches[i];
        CHECK_INT(srv_store_append(s, &batches[i], &err), 0);
    }
    srv_store_batch *done[32];
    int got = collect(s, &n, done, 10);
    CHECK_INT(got, 10);
    int max_group = 0;
    for (int i = 0; i < got; i++) {
        CHECK(done[i] == &batches[i]);
        CHECK_INT(done[i]->result, 0);
        CHECK(done[i]->commit_ns > 0);
        if (done[i]->group_size > max_group)
            max_group = done[i]->group_size;
    }
    CHECK_MSG(max_group > 1, "no group commit: largest group %d", max_group);
    printf("store: 10 batches committed, largest group %d\n", max_group);

    readback r = {0};
    CHECK_INT(srv_store_walk_events(s, "roomA", 0, -1, 0, on_event, &r, &err), 0);
    CHECK_INT(r.count, next_a - 1);
    for (int i = 0; i < r.count && i < 64; i++)
        CHECK_INT(r.seqs[i], i + 1);
    CHECK_STR(r.payloads[0], "{\"first\":1}");
    CHECK_STR(r.payloads[1], "{\"n\":2}");
    /* each event's type comes back beside it, the first one room_created */
    CHECK_STR(r.types[0], "room_created");
    CHECK_STR(r.types[1], "turn");
    /* a callback's PAUSE ends the walk and is its result */
    memset(&r, 0, sizeof r);
    CHECK_INT(srv_store_walk_events(s, "roomA", 0, -1, 0, two_events, &r, &err), SRV_WALK_PAUSE);
    CHECK_INT(r.count, 2);
    /* a batch event without a type is refused */
    srv_store_batch untyped;
    fill(&untyped, "roomA", next_a, 1, 48);
    untyped.type[0] = NULL;
    CHECK(srv_store_append(s, &untyped, &err) < 0);
    /* after / upto / limit */
    memset(&r, 0, sizeof r);
    CHECK_INT(srv_store_walk_events(s, "roomB", 3, 6, 2, on_event, &r, &err), 0);
    CHECK_INT(r.count, 2);
    CHECK_INT(r.seqs[0], 4);
    CHECK_INT(r.seqs[1], 5);
    int64_t last = 0;
    CHECK_INT(srv_store_last_seq(s, "roomB", &last, &err), 0);
    CHECK_INT(last, next_b - 1);

    /* A gap is refused and nothing of that batch is stored; the good batch
     * in the same group still commits. */
    srv_store_batch gap, good;
    fill(&gap, "roomA", next_a + 1, 2, 40);
    fill(&good, "roomB", next_b, 1, 44);
    CHECK_INT(srv_store_append(s, &gap, &err), 0);
    CHECK_INT(srv_store_append(s, &good, &err), 0);
    got = collect(s, &n, done, 2);
    CHECK(done[0] == &gap && done[0]->result == -ATT_ERR_INTERNAL);
    CHECK(done[1] == &good && done[1]->result == 0);
    next_b++;
    CHECK_INT(srv_store_last_seq(s, "roomA", &last, &err), 0);
    CHECK_INT(last, next_a - 1);

    sustained_appends(s, &n, dir);

    /* Injected commit failure: the whole group fails, nothing is stored. */
    srv_store_fail_nth_batch(s, 1);
    srv_store_batch f1;
    fill(&f1, "roomA", next_a, 2, 50);
    CHECK_INT(srv_store_append(s, &f1, &err), 0);
    got = collect(s, &n, done, 1);
    CHECK_INT(done[0]->result, -ATT_ERR_INTERNAL);
    CHECK_INT(srv_store_last_seq(s, "roomA", &last, &err), 0);
    CHECK_INT(last, next_a - 1);
    /* and the next one works again */
    fill(&f1, "roomA", next_a, 2, 50);
    CHECK_INT(srv_store_append(s, &f1, &err), 0);
    got = collect(s, &n, done, 1);
    CHECK_INT(done[0]->result, 0);
    next_a += 2;

    /* Settings */
    char value[64];
    CHECK_INT(srv_store_get_setting(s, "demo.room", value, sizeof value, &err), -ATT_ERR_NOT_FOUND);
    CHECK_INT(srv_store_set_setting(s, "demo.room", "roomA", &err), 0);
    CHECK_INT(srv_store_set_setting(s, "demo.room", "roomB", &err), 0);
    CHECK_INT(srv_store_get_setting(s, "demo.room", value, sizeof value, &err), 0);
    CHECK_STR(value, "roomB");

    /* The room summaries cache: a summary is current only at the room's
     * last seq; the scan reports rooms with none or a stale one. */
    char *text = NULL;
    CHECK_INT(srv_store_get_summary(s, "roomA", &text, &err), -ATT_ERR_NOT_FOUND);
    stale_seen seen = {0};
    char scan_last[SRV_STORE_ID_BYTES + 1];
    int scanned = 0;
    CHECK_INT(
        srv_store_scan_stale_summaries(s, "", 10, scan_last, &scanned, note_stale, &seen, &err), 0);
    CHECK_INT(scanned, 2);
    CHECK_INT(seen.n, 2);
    CHECK_STR(scan_last, "roomB");
    srv_store_summary sums[2] = {{"roomA", next_a - 1, "{\"id\":\"roomA\"}"},
                                 {"roomB", next_b - 2, "{\"id\":\"roomB\"}"}};
    CHECK_INT(srv_store_put_summaries(s, sums, 2, &err), 0);
    CHECK_INT(srv_store_get_summary(s, "roomA", &text, &err), 0);
    CHECK_STR(text, "{\"id\":\"roomA\"}");
    free(text);
    CHECK_INT(srv_store_get_summary(s, "roomB", &text, &err), -ATT_ERR_NOT_FOUND); /* stale */
    memset(&seen, 0, sizeof seen);
    CHECK_INT(
        srv_store_scan_stale_summaries(s, "", 10, scan_last, &scanned, note_stale, &seen, &err), 0);
    CHECK_INT(seen.n, 1);
    CHECK_STR(seen.ids[0], "roomB");
    memset(&seen, 0, sizeof seen);
    CHECK_INT(
        srv_store_scan_stale_summaries(s, "", 1, scan_last, &scanned, note_stale, &seen, &err), 0);
    CHECK_INT(scanned, 1);
    CHECK_INT(seen.n, 0);
    CHECK_STR(scan_last, "roomA");
    /* A new event makes roomA's summary stale. */
    fill(&f1, "roomA", next_a, 1, 52);
    CHECK_INT(srv_store_append(s, &f1, &err), 0);
    got = collect(s, &n, done, 1);
    CHECK_INT(done[0]->result, 0);
    next_a += 1;
    CHECK_INT(srv_store_get_summary(s, "roomA", &text, &err), -ATT_ERR_NOT_FOUND);
    sums[0].last_seq = next_a - 1;
    CHECK_INT(srv_store_put_summaries(s, sums, 1, &err), 0);
    CHECK_INT(srv_store_get_summary(s, "roomA", &text, &err), 0);
    free(text);

    /* Close flushes a batch appended just before it (never taken back: the
     * discard callback is NULL, the batch lives on our stack). */
    srv_store_batch last_batch;
    fill(&last_batch, "roomB", next_b, 3, 56);
    CHECK_INT(srv_store_append(s, &last_batch, &err), 0);
    srv_store_close(s);
    next_b += 3;

    /* Reopen: everything is there. */
    s = NULL;
    CHECK_INT(srv_store_open(dir, &s, &err), 0);
    int rooms = 0;
    CHECK_INT(srv_store_list_rooms(s, count_rooms, &rooms, &err), 0);
    CHECK_INT(rooms, 2);
    srv_store_room got_room;
    CHECK_INT(srv_store_get_room(s, "roomB", &got_room, &err), 0);
    CHECK_STR(got_room.exercise, "enactment");
    CHECK_INT(got_room.created_at, 2000);
    CHECK_INT(srv_store_get_room(s, "nope", &got_room, &err), -ATT_ERR_NOT_FOUND);
    CHECK_INT(srv_store_last_seq(s, "roomA", &last, &err), 0);
    CHECK_INT(last, next_a - 1);
    CHECK_INT(srv_store_last_seq(s, "roomB", &last, &err), 0);
    CHECK_INT(last, next_b - 1);
    memset(&r, 0, sizeof r);
    CHECK_INT(srv_store_walk_events(s, "roomB", next_b - 4, -1, 0, on_event, &r, &err), 0);
    CHECK_INT(r.count, 3);
    CHECK_INT(srv_store_get_setting(s, "demo.room", value, sizeof value, &err), 0);
    /* append refused when not started */
    srv_store_batch idle;
    fill(&idle, "roomA", next_a, 1, 60);
    CHECK(srv_store_append(s, &idle, &err) < 0);
    srv_store_close(s);

    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK_INT(system(cmd), 0);
    return check_done("store");
}
