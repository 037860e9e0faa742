/* test_store.c - the SQLite store on its own: group commit and read-back,
 * seq gaps refused, an injected commit failure fails its whole group and
 * nothing of it is stored, reopen after close, settings, the room summaries
 * cache (current only at the room's last seq) and its scan, and a WAL that
 * checkpoints and starts again under sustained appends instead of growing.
 * First the older formats' data directories (tests/fixtures/store-v1,
 * from before the type column, and store-v2, from before per-room keys,
 * with legacy plaintext rows): each migration is one transaction (a
 * failure part way, or a missing data.key, changes nothing; the rooms'
 * keys made before it are reused), and afterwards every event (with its
 * type) and every account is there, every payload sealed under its room's
 * key, data.key deleted, and a plaintext row written in later refused. */
#define _GNU_SOURCE /* memmem */
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
static void sustained_appends(srv_store *s, srv_keyring *keys, notifier *n, const char *dir)
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
        /* rooms without a room_created event: only their keys */
        srv_seal_key key;
        CHECK_INT(srv_keyring_new_room_key(keys, b->room_id, &key, &err), 0);
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
    char wal[400];
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

/* ---- older formats (tests/fixtures/store-v1, store-v2) ---------------- */

#define V1_FIXTURE ATTUNE_SOURCE_DIR "/tests/fixtures/store-v1/data"
#define V1_DEMO_EVENTS 18 /* README.md: what make.mjs recorded */
#define V2_FIXTURE ATTUNE_SOURCE_DIR "/tests/fixtures/store-v2/data"
#define V2_EVENTS 21 /* README.md: clinic-1 1, legacy-1 1, the demo room 19 */
#define V2_DEMO_EVENTS 19

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

/* Payloads that are version 0x03 seals of a bucket's length (seal.h:
 * 128, 256, ... 4096, then multiples of 4096, plus the 29 bytes around). */
static int64_t count_v3_bucketed(sqlite3 *db)
{
    return count_sql(db, "SELECT count(*) FROM events WHERE substr(payload, 1, 1) = x'03' AND "
                         "length(payload) - 29 IN (128, 256, 512, 1024, 2048, 4096) OR "
                         "(substr(payload, 1, 1) = x'03' AND (length(payload) - 29) % 4096 = 0 "
                         "AND length(payload) > 4096)");
}

static int file_exists(const char *dir, const char *name)
{
    char path[400];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return access(path, F_OK) == 0;
}

/* A fixture copied into ROOT/data (the KEK beside it, ROOT/data.kek).
 * A checkout gives the key files 0644; the key loader wants 0600. */
static void copy_fixture(const char *fixture, const char *root, char *dir, size_t dir_size,
                         const char *leave_out)
{
    char cmd[1200];
    snprintf(dir, dir_size, "%s/data", root);
    CHECK_INT(mkdir(dir, 0700), 0);
    snprintf(cmd, sizeof cmd, "cp -a '%s'/. '%s'/ && chmod 600 '%s'/*", fixture, dir, dir);
    CHECK_INT(system(cmd), 0);
    if (leave_out) {
        snprintf(cmd, sizeof cmd, "rm '%s/%s'", dir, leave_out);
        CHECK_INT(system(cmd), 0);
    }
}

typedef struct {
    int64_t events, expect_seq;
    int typed_as_payload; /* events whose type equals their payload's "type" */
    int private_messages, notes, calm_note;
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
    /* Logs from before command ids: no stored tail, the wire form is the
     * payload as it is. */
    CHECK(att_event_wire_cut(ev->payload, ev->len) == ev->len);
    if (ev->type && strcmp(ev->type, "private_message") == 0)
        w->private_messages++;
    if (ev->type && strcmp(ev->type, "note") == 0) {
        w->notes++;
        if (memmem(ev->payload, ev->len, "A calm start.", 13))
            w->calm_note++;
    }
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

/* Walks and folds every listed room: each event in order, typed as its
 * payload says; returns the events seen, *demo_walk the demo room's. */
static int64_t walk_and_fold(srv_store *s, char ids[][SRV_STORE_ID_BYTES + 1], int n,
                             v1_walk *demo_walk)
{
    att_error err = {0};
    att_catalog *cat = NULL;
    CHECK_INT(att_catalog_load_dir(ATTUNE_SOURCE_DIR "/protocol", &cat, &err), 0);
    int64_t total = 0;
    for (int i = 0; i < n; i++) {
        v1_walk w = {.expect_seq = 1};
        CHECK_INT(srv_store_walk_events(s, ids[i], 0, -1, 0, v1_event, &w, &err),
                  SRV_WALK_CONTINUE);
        CHECK_MSG(w.typed_as_payload == w.events, "%s: %d of %lld typed", ids[i],
                  w.typed_as_payload, (long long)w.events);
        total += w.events;
        att_room *room = malloc(sizeof *room);
        CHECK(room != NULL);
        CHECK_INT(srv_log_fold_room(s, cat, NULL, ids[i], NULL, room, NULL, &err), 0);
        CHECK_INT(room->seq, w.events);
        CHECK_INT(room->n_commands, 0);
        if (strncmp(ids[i], "demo-", 5) == 0) {
            CHECK_INT(room->status, ATT_STATUS_ACTIVE);
            *demo_walk = w;
        }
        free(room);
    }
    att_catalog_free(cat);
    return total;
}

static void migrates_store_v1(void)
{
    char root[] = "/tmp/attune-store-v1-XXXXXX", dir[300];
    CHECK(mkdtemp(root) != NULL);
    copy_fixture(V1_FIXTURE, root, dir, sizeof dir, NULL);
    char cmd[600], path[400];
    snprintf(path, sizeof path, "%s/attune.db", dir);
    att_error err = {0};

    /* As the release before types left it: store format 1, no type column,
     * every payload sealed as version 0x01 under data.key. */
    sqlite3 *db = NULL;
    CHECK_INT(sqlite3_open(path, &db), SQLITE_OK);
    CHECK_INT(srv_schema_version(db, "store", &err), 1);
    CHECK(!has_type_column(db));
    int64_t events = count_sql(db, "SELECT count(*) FROM events");
    CHECK_INT(events, V1_DEMO_EVENTS + 1);
    CHECK_INT(count_sql(db, "SELECT count(*) FROM events WHERE substr(payload, 1, 1) = x'01'"),
              events);
    /* A migration that fails part way (the fifth event's reseal under its
     * room's key is refused, after the type step and after the rooms' keys
     * were made in keys.db) leaves the database as it was: one
     * transaction; data.key stays. */
    CHECK_INT(sqlite3_exec(db,
                           "CREATE TRIGGER refuse_fifth BEFORE UPDATE ON events WHEN NEW.seq = 5 "
                           "AND substr(NEW.payload, 1, 1) = x'03' "
                           "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END;",
                           NULL, NULL, NULL),
              SQLITE_OK);
    srv_keyring *keys = NULL;
    CHECK_INT(srv_keyring_open(dir, NULL, 1, &keys, &err), 0);
    srv_store *s = NULL;
    CHECK(srv_store_open(dir, keys, &s, &err) < 0);
    CHECK(strstr(err.message, "refused by the test") != NULL);
    CHECK_INT(srv_schema_version(db, "store", &err), 1);
    CHECK(!has_type_column(db));
    CHECK_INT(count_sql(db, "SELECT count(*) FROM events WHERE substr(payload, 1, 1) = x'01'"),
              events);
    CHECK(file_exists(dir, "data.key"));
    CHECK_INT(sqlite3_exec(db, "DROP TRIGGER refuse_fifth", NULL, NULL, NULL), SQLITE_OK);
    /* As after a crash: the keys the failed run made are durable in
     * keys.db, and the next run reuses them. */
    srv_keyring_close(keys);
    keys = NULL;
    CHECK_INT(srv_keyring_open(dir, NULL, 0, &keys, &err), 0);
    srv_seal_key made_before, used;
    CHECK_INT(srv_keyring_room_key(keys, "clinic-1", &made_before, &err), 0);

    /* Opened by this build: migrated, every event typed and resealed under
     * its room's key (version 0x03, padded), data.key deleted. */
    CHECK_INT(srv_store_open(dir, keys, &s, &err), 0);
    int version = srv_schema_version(db, "store", &err);
    CHECK(version >= 3);
    CHECK(has_type_column(db));
    CHECK_INT(count_sql(db, "SELECT count(*) FROM events WHERE type IS NOT NULL"), events);
    CHECK_INT(count_v3_bucketed(db), events);
    CHECK_INT(count_sql(db, "SELECT count(*) FROM events WHERE type = 'room_created'"), 2);
    CHECK(!file_exists(dir, "data.key"));
    CHECK_INT(srv_keyring_room_key(keys, "clinic-1", &used, &err), 0);
    CHECK(memcmp(used.bytes, made_before.bytes, sizeof used.bytes) == 0);
    char ids[4][SRV_STORE_ID_BYTES + 1] = {{0}};
    CHECK_INT(srv_store_list_rooms(s, v1_room, ids, &err), 0);
    CHECK_STR(ids[0], "clinic-1");
    CHECK(strncmp(ids[1], "demo-", 5) == 0);
    CHECK(!ids[2][0]);

    /* Every event reads back, in order, its type beside it as its payload
     * says, and every room still folds. */
    v1_walk demo = {0};
    CHECK_INT(walk_and_fold(s, ids, 2, &demo), events);
    CHECK_INT(demo.events, V1_DEMO_EVENTS);
    CHECK_INT(demo.private_messages, 1);
    CHECK_INT(demo.notes, 1);
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
    CHECK_INT(srv_store_open(dir, keys, &s, &err), 0);
    srv_store_close(s);
    CHECK_INT(srv_schema_version(db, "store", &err), version);
    sqlite3_close(db);
    srv_keyring_close(keys);
    printf("store: the type-less directory (v1) migrated: %lld events, 2 accounts\n",
           (long long)events);
    snprintf(cmd, sizeof cmd, "rm -rf %s", root);
    CHECK_INT(system(cmd), 0);
}

/* The format before per-room keys (tests/fixtures/store-v2): version 0x02
 * seals under data.key and two legacy plaintext rows. Without data.key
 * the migration fails and changes nothing; with it, every event opens
 * under its room's key, typed, data.key is gone, and a plaintext row
 * written into the migrated database is refused. */
static void migrates_store_v2(void)
{
    char root[] = "/tmp/attune-store-v2-XXXXXX", dir[300], path[400], cmd[600];
    att_error err = {0};
    srv_keyring *keys = NULL;
    srv_store *s = NULL;
    sqlite3 *db = NULL;

    /* data.key missing: the sealed rows cannot be resealed; it says so and
     * leaves the database at format 2. */
    CHECK(mkdtemp(root) != NULL);
    copy_fixture(V2_FIXTURE, root, dir, sizeof dir, "data.key");
    CHECK_INT(srv_keyring_open(dir, NULL, 1, &keys, &err), 0);
    CHECK(srv_store_open(dir, keys, &s, &err) < 0);
    CHECK_MSG(strstr(err.message, "data.key") != NULL && strstr(err.message, "missing") != NULL,
              "%s", err.message);
    snprintf(path, sizeof path, "%s/attune.db", dir);
    CHECK_INT(sqlite3_open(path, &db), SQLITE_OK);
    CHECK_INT(srv_schema_version(db, "store", &err), 2);
    CHECK_INT(count_sql(db, "SELECT count(*) FROM events WHERE substr(payload, 1, 1) = x'02'"),
              V2_EVENTS - 2);
    sqlite3_close(db);
    srv_keyring_close(keys);
    snprintf(cmd, sizeof cmd, "rm -rf %s", root);
    CHECK_INT(system(cmd), 0);

    /* As the format-2 release left it. */
    snprintf(root, sizeof root, "/tmp/attune-store-v2-XXXXXX");
    CHECK(mkdtemp(root) != NULL);
    copy_fixture(V2_FIXTURE, root, dir, sizeof dir, NULL);
    snprintf(path, sizeof path, "%s/attune.db", dir);
    CHECK_INT(sqlite3_open(path, &db), SQLITE_OK);
    CHECK_INT(srv_schema_version(db, "store", &err), 2);
    CHECK_INT(count_sql(db, "SELECT count(*) FROM events"), V2_EVENTS);
    CHECK_INT(count_sql(db, "SELECT count(*) FROM events WHERE substr(payload, 1, 1) = x'02'"),
              V2_EVENTS - 2);
    CHECK_INT(count_sql(db, "SELECT count(*) FROM events WHERE substr(payload, 1, 1) = x'7b'"), 2);
    int64_t json_bytes =
        count_sql(db, "SELECT sum(CASE WHEN substr(payload, 1, 1) = x'7b' THEN length(payload) "
                      "ELSE length(payload) - 29 END) FROM events");

    CHECK_INT(srv_keyring_open(dir, NULL, 1, &keys, &err), 0);
    CHECK_INT(srv_store_open(dir, keys, &s, &err), 0);
    CHECK(srv_schema_version(db, "store", &err) >= 3);
    CHECK_INT(count_v3_bucketed(db), V2_EVENTS);
    CHECK_INT(count_sql(db, "SELECT count(*) FROM events WHERE type IS NOT NULL"), V2_EVENTS);
    CHECK(!file_exists(dir, "data.key"));
    CHECK(file_exists(dir, "keys.db"));
    int64_t stored = count_sql(db, "SELECT sum(length(payload)) FROM events");
    printf("store: v2 fixture padded: %lld bytes of JSON stored as %lld\n", (long long)json_bytes,
           (long long)stored);
    char ids[4][SRV_STORE_ID_BYTES + 1] = {{0}};
    CHECK_INT(srv_store_list_rooms(s, v1_room, ids, &err), 0);
    int n_rooms = 0;
    while (n_rooms < 4 && ids[n_rooms][0])
        n_rooms++;
    CHECK_INT(n_rooms, 3);
    v1_walk demo = {0};
    CHECK_INT(walk_and_fold(s, ids, n_rooms, &demo), V2_EVENTS);
    CHECK_INT(demo.events, V2_DEMO_EVENTS);
    CHECK_INT(demo.private_messages, 2);
    CHECK_INT(demo.notes, 1);
    CHECK_INT(demo.calm_note, 1); /* the plaintext row, resealed */
    /* each room its own key */
    srv_seal_key k1, k2;
    CHECK_INT(srv_keyring_room_key(keys, "clinic-1", &k1, &err), 0);
    CHECK_INT(srv_keyring_room_key(keys, "legacy-1", &k2, &err), 0);
    CHECK(memcmp(k1.bytes, k2.bytes, sizeof k1.bytes) != 0);
    srv_store_close(s);

    /* A plaintext row written into the migrated database is refused, a
     * new one or one replacing a sealed payload; the walk's error holds
     * none of its text. */
    CHECK_INT(sqlite3_exec(db,
                           "INSERT INTO events (room, seq, type, payload) VALUES ('clinic-1', 2, "
                           "'note', CAST('{\"type\":\"note\",\"text\":\"forged note\"}' AS BLOB))",
                           NULL, NULL, NULL),
              SQLITE_OK);
    CHECK_INT(
        sqlite3_exec(db,
                     "UPDATE events SET payload = CAST('{\"type\":\"room_created\"}' AS BLOB) "
                     "WHERE room = 'legacy-1' AND seq = 1",
                     NULL, NULL, NULL),
        SQLITE_OK);
    CHECK_INT(srv_store_open(dir, keys, &s, &err), 0);
    v1_walk w = {.expect_seq = 1};
    CHECK_INT(srv_store_walk_events(s, "clinic-1", 0, -1, 0, v1_event, &w, &err), SRV_WALK_FAILED);
    CHECK(strstr(err.message, "forged") == NULL);
    CHECK_INT(w.events, 1); /* seq 1 opened, seq 2 did not */
    memset(&w, 0, sizeof w);
    w.expect_seq = 1;
    CHECK_INT(srv_store_walk_events(s, "legacy-1", 0, -1, 0, v1_event, &w, &err), SRV_WALK_FAILED);
    CHECK_INT(w.events, 0);
    srv_store_close(s);
    sqlite3_close(db);
    srv_keyring_close(keys);
    printf("store: the per-room-key-less directory (v2) migrated: %d events, 2 of them "
           "plaintext\n",
           V2_EVENTS);
    snprintf(cmd, sizeof cmd, "rm -rf %s", root);
    CHECK_INT(system(cmd), 0);
}

int main(void)
{
    migrates_store_v1();
    migrates_store_v2();

    char root[] = "/tmp/attune-store-XXXXXX", dir[300];
    CHECK(mkdtemp(root) != NULL);
    snprintf(dir, sizeof dir, "%s/data", root);
    CHECK_INT(mkdir(dir, 0700), 0);
    att_error err = {0};
    srv_keyring *keys = NULL;
    CHECK_INT(srv_keyring_open(dir, NULL, 1, &keys, &err), 0);
    srv_store *s = NULL;
    CHECK_INT(srv_store_open(dir, keys, &s, &err), 0);
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

    sustained_appends(s, keys, &n, dir);

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
    CHECK_INT(srv_store_open(dir, keys, &s, &err), 0);
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
    srv_keyring_close(keys);

    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf %s", root);
    CHECK_INT(system(cmd), 0);
    return check_done("store");
}
