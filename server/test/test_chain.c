/* test_chain.c - tamper evidence: the chain and head MAC against values
 * computed independently (Python's hashlib/hmac, in the comments), then the
 * store: every kind of tampering named by srv_store_verify_room and refused
 * by a walk, the migration of an old database, erase and backups. */
#include "backup.h"
#include "chain.h"
#include "check.h"
#include "clock.h"
#include "keyring.h"
#include "store.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* hashlib.sha256(b"attune.chain.v1" + prev + b"room1\0" + seq.to_bytes(8, "big") +
 * type + b"\0" + sealed) */
#define LINK1_HEX "eeb2b92dee1d23ef5af0444d50c537bcd91a7128aa1f747a47f11a4da9a76ea8"
#define LINK2_HEX "8cf4ca0e36b7127f0bb15d078cf4309e522c94eecdacd2ab29ebc4bb557bac6b"
/* hmac.new(bytes(range(32)), b"attune head key v1", sha256) */
#define HEAD_KEY_HEX "2e507ca42635a665964e829c80483151a8d3b00c34a5b7dcda7a8c097cbb42fc"
/* hmac.new(head key, b"attune.head.v1" + b"room1\0" + (2).to_bytes(8, "big") + link2, sha256) */
#define HEAD_MAC_HEX "4c215e4707a4e4536013344cb6b2847b584c583e33fb129053b6f7dd37e7d043"

static void known_answers(void)
{
    att_error err = {0};
    srv_chain_hasher *h = NULL;
    CHECK_INT(srv_chain_hasher_new(&h, &err), 0);
    srv_chain_link zero = {{0}}, l1, l2, again, mac;
    char hex[SRV_CHAIN_HEX + 1];
    CHECK_INT(srv_chain_next(h, &zero, "room1", 1, "room_created",
                             "\x03"
                             "abc",
                             4, &l1, &err),
              0);
    srv_chain_hex(&l1, hex);
    CHECK_STR(hex, LINK1_HEX);
    CHECK_INT(srv_chain_next(h, &l1, "room1", 2, "joined",
                             "\x03"
                             "defgh",
                             6, &l2, &err),
              0);
    srv_chain_hex(&l2, hex);
    CHECK_STR(hex, LINK2_HEX);
    /* every input counts: the room, the seq, the type, a payload byte, the previous link */
    CHECK_INT(srv_chain_next(h, &l1, "room2", 2, "joined",
                             "\x03"
                             "defgh",
                             6, &again, &err),
              0);
    CHECK(!srv_chain_same(&again, &l2, sizeof l2));
    CHECK_INT(srv_chain_next(h, &l1, "room1", 3, "joined",
                             "\x03"
                             "defgh",
                             6, &again, &err),
              0);
    CHECK(!srv_chain_same(&again, &l2, sizeof l2));
    CHECK_INT(srv_chain_next(h, &l1, "room1", 2, "left",
                             "\x03"
                             "defgh",
                             6, &again, &err),
              0);
    CHECK(!srv_chain_same(&again, &l2, sizeof l2));
    CHECK_INT(srv_chain_next(h, &l1, "room1", 2, "joined",
                             "\x03"
                             "defgi",
                             6, &again, &err),
              0);
    CHECK(!srv_chain_same(&again, &l2, sizeof l2));
    CHECK_INT(srv_chain_next(h, &zero, "room1", 2, "joined",
                             "\x03"
                             "defgh",
                             6, &again, &err),
              0);
    CHECK(!srv_chain_same(&again, &l2, sizeof l2));
    /* room and type are NUL-terminated in the hash: moving a byte across fails */
    CHECK_INT(srv_chain_next(h, &l1, "room1", 2, "joinedx", "defgh", 5, &again, &err), 0);
    CHECK(!srv_chain_same(&again, &l2, sizeof l2));
    CHECK_INT(srv_chain_next(h, &l1, "room1", 2, "joined",
                             "\x03"
                             "defgh",
                             6, &again, &err),
              0);
    CHECK(srv_chain_same(&again, &l2, sizeof l2));

    srv_seal_key room_key;
    for (int i = 0; i < SRV_SEAL_KEY_BYTES; i++)
        room_key.bytes[i] = (unsigned char)i;
    srv_chain_key head_key;
    CHECK_INT(srv_chain_head_key(h, &room_key, &head_key, &err), 0);
    srv_chain_hex((const srv_chain_link *)&head_key, hex);
    CHECK_STR(hex, HEAD_KEY_HEX);
    CHECK_INT(srv_chain_head_mac(h, &head_key, "room1", 2, &l2, &mac, &err), 0);
    srv_chain_hex(&mac, hex);
    CHECK_STR(hex, HEAD_MAC_HEX);
    srv_chain_link other;
    CHECK_INT(srv_chain_head_mac(h, &head_key, "room1", 3, &l2, &other, &err), 0);
    CHECK(!srv_chain_same(&other, &mac, sizeof mac));
    CHECK_INT(srv_chain_head_mac(h, &head_key, "room1", 2, &l1, &other, &err), 0);
    CHECK(!srv_chain_same(&other, &mac, sizeof mac));
    /* a room id longer than any the store keeps is refused, not overrun */
    char long_room[200];
    memset(long_room, 'r', sizeof long_room - 1);
    long_room[sizeof long_room - 1] = '\0';
    CHECK(srv_chain_head_mac(h, &head_key, long_room, 2, &l2, &other, &err) < 0);
    srv_chain_wipe(&head_key, sizeof head_key);
    CHECK(head_key.bytes[0] == 0 && head_key.bytes[31] == 0);
    srv_chain_hasher_free(h);
}

/* What the append path pays per event (one link) and per batch (the head
 * key and MAC), printed: the store thread's share of the cost. */
static void costs(void)
{
    enum { N = 20000 };
    att_error err = {0};
    srv_chain_hasher *h = NULL;
    CHECK_INT(srv_chain_hasher_new(&h, &err), 0);
    unsigned char sealed[413]; /* a typical turn: one 384-byte bucket + overhead */
    memset(sealed, 0x5a, sizeof sealed);
    srv_chain_link link = {{0}}, mac;
    srv_seal_key key = {{1}};
    srv_chain_key head_key;
    int ok = 1;
    int64_t t0 = srv_mono_ns();
    for (int i = 0; i < N; i++)
        ok &= srv_chain_next(h, &link, "r-0123456789ab", i + 1, "turn", sealed, sizeof sealed,
                             &link, &err) == 0;
    int64_t t1 = srv_mono_ns();
    for (int i = 0; i < N; i++)
        ok &= srv_chain_head_key(h, &key, &head_key, &err) == 0 &&
              srv_chain_head_mac(h, &head_key, "r-0123456789ab", i + 1, &link, &mac, &err) == 0;
    int64_t t2 = srv_mono_ns();
    CHECK(ok);
    printf("chain: %.0f ns per event link, %.0f ns per batch head (key and MAC)\n",
           (double)(t1 - t0) / N, (double)(t2 - t1) / N);
    srv_chain_hasher_free(h);
}

/* ---- the store ---- */

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

/* A data directory ROOT/data with its KEK at ROOT/kek. */
typedef struct {
    char root[64], dir[400], kek[128];
    srv_keyring *keys;
    srv_store *store;
    notifier n;
} fixture;

static void open_store(fixture *f)
{
    att_error err = {0};
    CHECK_INT(srv_keyring_open(f->dir, f->kek, 1, &f->keys, &err), 0);
    CHECK_INT(srv_store_open(f->dir, f->keys, &f->store, &err), 0);
    CHECK_INT(srv_store_start(f->store, 0, on_notify, NULL, &f->n, &err), 0);
}

static void close_store(fixture *f)
{
    srv_store_close(f->store);
    srv_keyring_close(f->keys);
    f->store = NULL;
    f->keys = NULL;
}

static void new_fixture(fixture *f)
{
    memset(f, 0, sizeof *f);
    snprintf(f->root, sizeof f->root, "/tmp/attune-chain-XXXXXX");
    CHECK(mkdtemp(f->root) != NULL);
    snprintf(f->dir, sizeof f->dir, "%s/data", f->root);
    snprintf(f->kek, sizeof f->kek, "%s/kek", f->root);
    pthread_mutex_init(&f->n.lock, NULL);
    pthread_cond_init(&f->n.cond, NULL);
    open_store(f);
}

static char texts[SRV_STORE_MAX_BATCH][64];

/* A room with `events` events: room_created, then notes in batches of 4. */
static void make_room(fixture *f, const char *id, int events)
{
    att_error err = {0};
    srv_store_room room = {.created_at = 1};
    snprintf(room.id, sizeof room.id, "%s", id);
    snprintf(room.exercise, sizeof room.exercise, "enactment");
    const char *first = "{\"type\":\"room_created\"}";
    CHECK_INT(srv_store_create_room(f->store, &room, first, strlen(first), &err), 0);
    for (int64_t seq = 2; seq <= events;) {
        srv_store_batch b;
        memset(&b, 0, sizeof b);
        snprintf(b.room_id, sizeof b.room_id, "%s", id);
        b.first_seq = seq;
        b.n = events - seq + 1 < 4 ? (int)(events - seq + 1) : 4;
        for (int i = 0; i < b.n; i++) {
            snprintf(texts[i], sizeof texts[i], "{\"type\":\"note\",\"text\":\"words %lld\"}",
                     (long long)(seq + i));
            b.payload[i] = texts[i];
            b.payload_len[i] = strlen(texts[i]);
            b.type[i] = "note";
        }
        CHECK_INT(srv_store_append(f->store, &b, &err), 0);
        srv_store_batch *done = NULL;
        while (!done) {
            pthread_mutex_lock(&f->n.lock);
            while (!f->n.notified)
                pthread_cond_wait(&f->n.cond, &f->n.lock);
            f->n.notified = 0;
            pthread_mutex_unlock(&f->n.lock);
            done = srv_store_take_completed(f->store);
        }
        CHECK_INT(done->result, 0);
        seq += b.n;
    }
}

typedef struct {
    int n;
    int64_t first, last;
    int stop_after;
} counted;

static srv_walk count_event(const srv_stored_event *ev, void *arg, att_error *err)
{
    (void)err;
    counted *c = arg;
    if (!c->n)
        c->first = ev->seq;
    c->last = ev->seq;
    c->n++;
    CHECK(strstr(ev->payload, "\"type\"") != NULL);
    return c->stop_after && c->n == c->stop_after ? SRV_WALK_PAUSE : SRV_WALK_CONTINUE;
}

static void run_sql(const fixture *f, const char *sql)
{
    char path[600];
    snprintf(path, sizeof path, "%s/attune.db", f->dir);
    sqlite3 *db = NULL;
    CHECK_INT(sqlite3_open(path, &db), SQLITE_OK);
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    CHECK_MSG(rc == SQLITE_OK, "%s: %s", sql, msg ? msg : "");
    sqlite3_free(msg);
    sqlite3_close(db);
}

/* Verifies room, expecting a problem at bad_seq whose text contains what
 * (what NULL: verified). */
static void expect_verify(fixture *f, const char *room, int64_t bad_seq, const char *what)
{
    srv_chain_report rep;
    att_error err = {0};
    int rc = srv_store_verify_room(f->store, room, &rep, &err);
    if (!what) {
        CHECK_MSG(rc == 0, "%s: %s", room, rep.problem);
        CHECK(rep.problem[0] == '\0');
        CHECK_INT(rep.bad_seq, 0);
        CHECK_INT(rep.events, rep.head_seq);
        CHECK_INT(strlen(rep.head_hex), SRV_CHAIN_HEX);
        return;
    }
    CHECK_MSG(rc == 1, "%s: rc %d (%s)", room, rc, err.message);
    CHECK_MSG(rep.bad_seq == bad_seq, "%s: bad seq %lld, not %lld (%s)", room,
              (long long)rep.bad_seq, (long long)bad_seq, rep.problem);
    CHECK_MSG(strstr(rep.problem, what) != NULL, "%s: \"%s\" lacks \"%s\"", room, rep.problem,
              what);
    CHECK(strstr(rep.problem, "words") == NULL); /* never what an event says */
}

/* A walk of the whole room fails, naming seq in its message. */
static void expect_walk_fails(fixture *f, const char *room, int64_t seq)
{
    counted c = {0};
    att_error err = {0};
    CHECK_INT(srv_store_walk_events(f->store, room, 0, -1, 0, count_event, &c, &err),
              SRV_WALK_FAILED);
    char want[48];
    snprintf(want, sizeof want, "event %lld", (long long)seq);
    CHECK_MSG(strstr(err.message, want) != NULL, "%s: \"%s\" lacks \"%s\"", room, err.message,
              want);
    CHECK(strstr(err.message, "words") == NULL);
}

static void walks_check_the_chain(void)
{
    fixture f;
    new_fixture(&f);
    make_room(&f, "walked", 10);
    expect_verify(&f, "walked", 0, NULL);
    att_error err = {0};
    counted c = {0};
    CHECK_INT(srv_store_walk_events(f.store, "walked", 0, -1, 0, count_event, &c, &err),
              SRV_WALK_CONTINUE);
    CHECK_INT(c.n, 10);
    /* from the middle (the anchor's stored link), with an upper bound, a
     * limit, a pause, from the end and past it */
    c = (counted){0};
    CHECK_INT(srv_store_walk_events(f.store, "walked", 5, -1, 0, count_event, &c, &err),
              SRV_WALK_CONTINUE);
    CHECK(c.n == 5 && c.first == 6 && c.last == 10);
    c = (counted){0};
    CHECK_INT(srv_store_walk_events(f.store, "walked", 2, 7, 0, count_event, &c, &err),
              SRV_WALK_CONTINUE);
    CHECK(c.n == 5 && c.first == 3 && c.last == 7);
    c = (counted){0};
    CHECK_INT(srv_store_walk_events(f.store, "walked", 3, -1, 4, count_event, &c, &err),
              SRV_WALK_CONTINUE);
    CHECK(c.n == 4 && c.first == 4 && c.last == 7);
    c = (counted){.stop_after = 2};
    CHECK_INT(srv_store_walk_events(f.store, "walked", 0, -1, 0, count_event, &c, &err),
              SRV_WALK_PAUSE);
    CHECK_INT(c.n, 2);
    c = (counted){0};
    CHECK_INT(srv_store_walk_events(f.store, "walked", 10, -1, 0, count_event, &c, &err),
              SRV_WALK_CONTINUE);
    CHECK_INT(c.n, 0);
    CHECK_INT(srv_store_walk_events(f.store, "walked", 12, -1, 0, count_event, &c, &err),
              SRV_WALK_CONTINUE);
    CHECK_INT(c.n, 0);
    /* a room with no events walks empty; verify says there is none */
    CHECK_INT(srv_store_walk_events(f.store, "nobody", 0, -1, 0, count_event, &c, &err),
              SRV_WALK_CONTINUE);
    srv_chain_report rep;
    CHECK_INT(srv_store_verify_room(f.store, "nobody", &rep, &err), -ATT_ERR_NOT_FOUND);
    /* the reader of another thread checks the same way */
    srv_store_reader *r = NULL;
    CHECK_INT(srv_store_reader_open(f.store, &r, &err), 0);
    c = (counted){0};
    CHECK_INT(srv_store_reader_walk_events(r, "walked", 4, -1, 0, count_event, &c, &err),
              SRV_WALK_CONTINUE);
    CHECK_INT(c.n, 6);
    srv_store_reader_close(r);
    close_store(&f);

    /* the head says 10, the log was cut at 8: the walk from the start, one
     * from the middle, and the reader all refuse it */
    run_sql(&f, "DELETE FROM events WHERE room = 'walked' AND seq > 8");
    open_store(&f);
    expect_walk_fails(&f, "walked", 9);
    c = (counted){0};
    CHECK_INT(srv_store_walk_events(f.store, "walked", 5, -1, 0, count_event, &c, &err),
              SRV_WALK_FAILED);
    CHECK(strstr(err.message, "truncated") != NULL);
    CHECK_INT(srv_store_reader_open(f.store, &r, &err), 0);
    CHECK_INT(srv_store_reader_walk_events(r, "walked", 0, -1, 0, count_event, &c, &err),
              SRV_WALK_FAILED);
    srv_store_reader_close(r);
    /* a bounded walk that stops short of the cut still reads */
    c = (counted){0};
    CHECK_INT(srv_store_walk_events(f.store, "walked", 0, 6, 0, count_event, &c, &err),
              SRV_WALK_CONTINUE);
    CHECK_INT(c.n, 6);
    close_store(&f);
}

/* One room per kind of tampering, edited while the store is closed. */
static void verify_names_each_tampering(void)
{
    fixture f;
    new_fixture(&f);
    static const char *const names[] = {"edited", "typed",    "dropped", "swapped",
                                        "copied", "appended", "cut",     "headless",
                                        "forged", "relinked", "clean"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        make_room(&f, names[i], 9);
    close_store(&f);
    /* a byte of event 4's ciphertext flipped */
    run_sql(&f, "UPDATE events SET payload = substr(payload, 1, 19) || "
                "(CASE WHEN substr(payload, 20, 1) = x'00' THEN x'01' ELSE x'00' END) || "
                "substr(payload, 21) WHERE room = 'edited' AND seq = 4");
    /* event 5's type column changed */
    run_sql(&f, "UPDATE events SET type = 'turn' WHERE room = 'typed' AND seq = 5");
    run_sql(&f, "DELETE FROM events WHERE room = 'dropped' AND seq = 6");
    /* payloads of 3 and 7 swapped (through a copy: an UPDATE's subquery
     * would see the row it already changed) */
    run_sql(&f, "CREATE TEMP TABLE was AS SELECT seq, payload FROM events WHERE room = "
                "'swapped' AND seq IN (3, 7); UPDATE events SET payload = (SELECT payload FROM "
                "was WHERE was.seq = 10 - events.seq) WHERE room = 'swapped' AND seq IN (3, 7)");
    /* a copy of event 4 (its payload, type and link) in place of event 6 */
    run_sql(&f, "UPDATE events SET payload = (SELECT payload FROM events WHERE room = 'copied' "
                "AND seq = 4), chain = (SELECT chain FROM events WHERE room = 'copied' AND seq = "
                "4) WHERE room = 'copied' AND seq = 6");
    /* a copy of event 2 appended as event 10 */
    run_sql(&f, "INSERT INTO events (room, seq, type, payload, chain) SELECT room, 10, type, "
                "payload, chain FROM events WHERE room = 'appended' AND seq = 2");
    run_sql(&f, "DELETE FROM events WHERE room = 'cut' AND seq >= 8");
    run_sql(&f, "DELETE FROM room_heads WHERE room = 'headless'");
    /* the head moved back to event 7 with its link: the MAC no longer holds */
    run_sql(&f, "UPDATE room_heads SET seq = 7, chain = (SELECT chain FROM events WHERE room = "
                "'forged' AND seq = 7) WHERE room = 'forged'");
    /* event 3's stored link changed alone */
    run_sql(&f, "UPDATE events SET chain = zeroblob(32) WHERE room = 'relinked' AND seq = 3");
    open_store(&f);
    expect_verify(&f, "edited", 4, "edited: its payload or type was changed");
    expect_verify(&f, "typed", 5, "edited: its payload or type was changed");
    expect_verify(&f, "dropped", 6, "dropped");
    expect_verify(&f, "swapped", 3, "reordered: it holds the payload sealed for event 7");
    expect_verify(&f, "copied", 6, "inserted: a copy of event 4");
    expect_verify(&f, "appended", 10,
                  "inserted: past the room's head (event 9), a copy of event 2");
    expect_verify(&f, "cut", 8, "truncated: the log ends at event 7 but its head says 9");
    expect_verify(&f, "headless", 0, "no authenticated head");
    expect_verify(&f, "forged", 0, "head does not authenticate");
    expect_verify(&f, "relinked", 3, "edited: its stored link was changed");
    expect_verify(&f, "clean", 0, NULL);
    expect_walk_fails(&f, "edited", 4);
    expect_walk_fails(&f, "typed", 5);
    expect_walk_fails(&f, "dropped", 6);
    expect_walk_fails(&f, "swapped", 3);
    expect_walk_fails(&f, "copied", 6);
    expect_walk_fails(&f, "appended", 10);
    expect_walk_fails(&f, "cut", 8);
    expect_walk_fails(&f, "headless", 9);
    expect_walk_fails(&f, "forged", 7);
    expect_walk_fails(&f, "relinked", 3);
    /* the clean room still takes appends after all that */
    make_room(&f, "later", 3);
    expect_verify(&f, "later", 0, NULL);
    close_store(&f);
}

static int64_t count_rows(const fixture *f, const char *sql)
{
    char path[600];
    snprintf(path, sizeof path, "%s/attune.db", f->dir);
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int64_t n = -1;
    if (sqlite3_open(path, &db) == SQLITE_OK &&
        sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

static int mode_of(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (int)(st.st_mode & 0777) : -1;
}

/* Backups of the events and the keys, a restore that verifies, then an
 * erase: the backup taken before it, restored with the keys of now, opens
 * every room but the erased one. */
static void erase_and_backups(void)
{
    fixture f;
    new_fixture(&f);
    make_room(&f, "kept", 7);
    make_room(&f, "gone", 6);
    att_error err = {0};
    char dest[200], path[600], fresh[200];
    snprintf(dest, sizeof dest, "%s/backup", f.root);
    CHECK_INT(srv_backup_take(f.dir, dest, 0, &err), 0);
    CHECK_INT(srv_backup_take(f.dir, dest, 1, &err), 0);
    CHECK_INT(mode_of(dest), 0700);
    snprintf(path, sizeof path, "%s/attune.db", dest);
    CHECK_INT(mode_of(path), 0600);
    snprintf(path, sizeof path, "%s/keys.db", dest);
    CHECK_INT(mode_of(path), 0600);
    /* a backup is never overwritten; the KEK is never in it */
    CHECK_INT(srv_backup_take(f.dir, dest, 0, &err), -ATT_ERR_BAD_MESSAGE);
    snprintf(path, sizeof path, "%s/kek", dest);
    CHECK(access(path, F_OK) != 0);

    /* the erase: key first, then every row of the room */
    CHECK_INT(srv_store_erase_room(f.store, "gone", &err), 0);
    srv_seal_key key;
    CHECK_INT(srv_keyring_room_key(f.keys, "gone", &key, &err), -ATT_ERR_NOT_FOUND);
    srv_store_room meta;
    CHECK_INT(srv_store_get_room(f.store, "gone", &meta, &err), -ATT_ERR_NOT_FOUND);
    CHECK_INT(srv_store_erase_room(f.store, "gone", &err), -ATT_ERR_NOT_FOUND);
    expect_verify(&f, "kept", 0, NULL);
    close_store(&f);
    CHECK_INT(count_rows(&f, "SELECT count(*) FROM events WHERE room = 'gone'"), 0);
    CHECK_INT(count_rows(&f, "SELECT count(*) FROM room_heads WHERE room = 'gone'"), 0);
    CHECK_INT(count_rows(&f, "SELECT count(*) FROM rooms WHERE id = 'gone'"), 0);
    CHECK_INT(count_rows(&f, "SELECT count(*) FROM room_summaries WHERE room = 'gone'"), 0);
    CHECK_INT(count_rows(&f, "SELECT count(*) FROM events WHERE room = 'kept'"), 7);

    /* restore the backup as it was (its own keys): both rooms verify */
    snprintf(fresh, sizeof fresh, "%s/restored", f.root);
    CHECK_INT(srv_backup_restore(fresh, dest, NULL, &err), 0);
    fixture r = f;
    snprintf(r.dir, sizeof r.dir, "%s", fresh);
    open_store(&r);
    expect_verify(&r, "kept", 0, NULL);
    expect_verify(&r, "gone", 0, NULL);
    close_store(&r);
    /* not into a directory that has something in it */
    CHECK_INT(srv_backup_restore(fresh, dest, NULL, &err), -ATT_ERR_BAD_MESSAGE);

    /* the same events with the keys of now: the erased room does not open */
    char now_keys[600];
    snprintf(now_keys, sizeof now_keys, "%s/keys.db", f.dir);
    snprintf(fresh, sizeof fresh, "%s/after-erase", f.root);
    CHECK_INT(srv_backup_restore(fresh, dest, now_keys, &err), 0);
    snprintf(r.dir, sizeof r.dir, "%s", fresh);
    open_store(&r);
    expect_verify(&r, "kept", 0, NULL);
    expect_verify(&r, "gone", 0, "data key is gone");
    counted c = {0};
    CHECK_INT(srv_store_walk_events(r.store, "gone", 0, -1, 0, count_event, &c, &err),
              SRV_WALK_FAILED);
    CHECK_INT(err.code, ATT_ERR_NOT_FOUND);
    CHECK_INT(c.n, 0);
    c = (counted){0};
    CHECK_INT(srv_store_walk_events(r.store, "kept", 0, -1, 0, count_event, &c, &err),
              SRV_WALK_CONTINUE);
    CHECK_INT(c.n, 7);
    close_store(&r);
}

typedef struct {
    fixture *f;
    int rooms;
} migrated;

static int verify_listed(const srv_store_room *room, void *arg)
{
    migrated *m = arg;
    m->rooms++;
    expect_verify(m->f, room->id, 0, NULL);
    return 0;
}

/* An old data directory (its data.key: before per-room keys) migrates to
 * chained logs with a head per room, every one of which verifies. */
static void migrates_fixture(const char *name)
{
    fixture f;
    memset(&f, 0, sizeof f);
    snprintf(f.root, sizeof f.root, "/tmp/attune-chain-XXXXXX");
    CHECK(mkdtemp(f.root) != NULL);
    snprintf(f.dir, sizeof f.dir, "%s/data", f.root);
    snprintf(f.kek, sizeof f.kek, "%s/kek", f.root);
    pthread_mutex_init(&f.n.lock, NULL);
    pthread_cond_init(&f.n.cond, NULL);
    char cmd[3000];
    snprintf(cmd, sizeof cmd,
             "mkdir -m 700 '%s' && cp -a '%s/tests/fixtures/%s/data'/. '%s'/ && chmod 600 '%s'/*",
             f.dir, ATTUNE_SOURCE_DIR, name, f.dir, f.dir);
    CHECK_INT(system(cmd), 0);
    open_store(&f);
    migrated m = {&f, 0};
    att_error err = {0};
    CHECK_INT(srv_store_list_rooms(f.store, verify_listed, &m, &err), 0);
    CHECK_MSG(m.rooms > 0, "%s has no rooms", name);
    close_store(&f);
    CHECK_INT(count_rows(&f, "SELECT count(*) FROM events WHERE chain IS NULL"), 0);
    CHECK_INT(count_rows(&f, "SELECT count(DISTINCT room) FROM events"),
              count_rows(&f, "SELECT count(*) FROM room_heads"));
    CHECK_INT(count_rows(&f, "SELECT count(*) FROM room_heads h WHERE h.seq <> (SELECT max(seq) "
                             "FROM events e WHERE e.room = h.room)"),
              0);
}

int main(void)
{
    known_answers();
    costs();
    walks_check_the_chain();
    verify_names_each_tampering();
    erase_and_backups();
    migrates_fixture("store-v1");
    migrates_fixture("store-v2");
    return check_done("chain");
}
