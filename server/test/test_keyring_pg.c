/* test_keyring_pg.c - the keyring on PostgreSQL (srv_keyring_open_pg) and
 * its rotation (srv_keyring_rotate_pg_ex), against a fresh database of
 * ATTUNE_TEST_PG (pg_test.h; skipped without it outside CI). Two handles
 * are two nodes, each with its own copy of the KEK file: both making the
 * same rooms' keys at once store one key per room; a rotation rewraps
 * every key, the new KEK opens them (a payload sealed before still
 * opens), the old one is refused, a running node reloads the new KEK
 * (from KEK.new beside its file when the rotation ran elsewhere); crashes
 * before the commit and before the rename leave a KEK that opens; the
 * operator's own new KEK file; keys made on a node while a rotation runs
 * end up under the new KEK. */
#include "check.h"
#include "clock.h"
#include "keyring.h"
#include "pg_test.h"
#include "seal.h"
#include "token.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define N_ROOMS 200

static char base[] = "/tmp/attune-keyring-pg-XXXXXX";
static char uri[512];

static void path_of(char *out, size_t n, const char *name)
{
    snprintf(out, n, "%s/%s", base, name);
}

static int file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* Copies a key file (mode 0600), replacing the target. */
static void copy_key(const char *from, const char *to)
{
    unsigned char key[SRV_KEY_FILE_BYTES];
    att_error err = {0};
    CHECK_INT(srv_key_file_read(from, key, &err), 0);
    unlink(to);
    CHECK_INT(srv_key_file_create(to, key, &err), 0);
}

static void room_name(char out[24], int i)
{
    snprintf(out, 24, "room-%03d", i);
}

/* One integer from SQL on the test's own connection. */
static long long sql_int(const char *text)
{
    PGconn *c = PQconnectdb(uri);
    CHECK(PQstatus(c) == CONNECTION_OK);
    PGresult *r = PQexec(c, text);
    CHECK_MSG(PQresultStatus(r) == PGRES_TUPLES_OK, "%s: %s", text, PQresultErrorMessage(r));
    long long v = PQntuples(r) == 1 ? atoll(PQgetvalue(r, 0, 0)) : -1;
    PQclear(r);
    PQfinish(c);
    return v;
}

/* Rows not wrapped under the KEK id given. */
static long long rows_not_under(const char *kek_id)
{
    char q[256];
    snprintf(q, sizeof q,
             "SELECT (SELECT count(*) FROM keyring_room_keys WHERE kek_id <> '%s') +"
             " (SELECT count(*) FROM keyring_service_keys WHERE kek_id <> '%s')",
             kek_id, kek_id);
    return sql_int(q);
}

typedef struct {
    srv_keyring *k;
    int reverse, batch; /* the order, and whether ensure_room_keys or new_room_key */
    int failed;
    int start, n; /* for the rooms made during a rotation */
} maker;

static void *make_rooms(void *arg)
{
    maker *m = arg;
    att_error err = {0};
    if (m->batch) {
        /* other rooms ("ens-..."), 50 to a call of ensure_room_keys */
        char names[50][24];
        const char *batch[50];
        for (int j = 0; j < N_ROOMS; j += 50) {
            for (int b = 0; b < 50; b++) {
                int i = m->reverse ? N_ROOMS - 1 - (j + b) : j + b;
                snprintf(names[b], sizeof names[b], "ens-%03d", i);
                batch[b] = names[b];
            }
            if (srv_keyring_ensure_room_keys(m->k, batch, 50, NULL, &err) < 0)
                m->failed++;
        }
        return NULL;
    }
    for (int j = 0; j < N_ROOMS; j++) {
        int i = m->reverse ? N_ROOMS - 1 - j : j;
        char room[24];
        room_name(room, i);
        srv_seal_key key;
        int rc = srv_keyring_new_room_key(m->k, room, &key, &err);
        if (rc == -ATT_ERR_BAD_MESSAGE) /* the other node made it first */
            rc = srv_keyring_room_key(m->k, room, &key, &err);
        if (rc < 0)
            m->failed++;
    }
    return NULL;
}

static void *make_more(void *arg)
{
    maker *m = arg;
    att_error err = {0};
    for (int i = m->start; i < m->start + m->n; i++) {
        char room[24];
        room_name(room, i);
        srv_seal_key key;
        if (srv_keyring_new_room_key(m->k, room, &key, &err) < 0) {
            fprintf(stderr, "make_more %s: %s\n", room, err.message);
            m->failed++;
        }
    }
    return NULL;
}

/* Both nodes agree on every room's key. */
static void check_same_keys(srv_keyring *a, srv_keyring *b, int n)
{
    att_error err = {0};
    int differ = 0, failed = 0;
    for (int i = 0; i < n; i++) {
        char room[24];
        room_name(room, i);
        srv_seal_key ka, kb;
        if (srv_keyring_room_key(a, room, &ka, &err) < 0 ||
            srv_keyring_room_key(b, room, &kb, &err) < 0)
            failed++;
        else
            differ += memcmp(ka.bytes, kb.bytes, sizeof ka.bytes) != 0;
    }
    CHECK_INT(failed, 0);
    CHECK_INT(differ, 0);
}

/* A rotation of many keys (ATTUNE_KEYRING_PG_ROOMS, 5,000 unless set):
 * how long the one transaction takes, which is how long a node making a
 * new room meanwhile waits (at most pg.h's lock_timeout). */
static void test_many(srv_keyring *k, const char *pending, const char *kek)
{
    const char *env = getenv("ATTUNE_KEYRING_PG_ROOMS");
    int n = env && atoi(env) > 0 ? atoi(env) : 5000;
    char(*names)[24] = calloc((size_t)n, sizeof *names);
    const char **rooms = calloc((size_t)n, sizeof *rooms);
    CHECK(names && rooms);
    if (!names || !rooms) {
        free(names);
        free(rooms);
        return;
    }
    for (int i = 0; i < n; i++) {
        snprintf(names[i], sizeof names[i], "many-%06d", i);
        rooms[i] = names[i];
    }
    att_error err = {0};
    int made = 0;
    int64_t t0 = srv_mono_ms();
    CHECK_INT(srv_keyring_ensure_room_keys(k, rooms, (size_t)n, &made, &err), 0);
    int64_t t1 = srv_mono_ms();
    CHECK_INT(made, n);
    long long before = sql_int("SELECT count(*) FROM keyring_room_keys") +
                       sql_int("SELECT count(*) FROM keyring_service_keys");
    srv_keyring_rotation rot;
    unlink(pending);
    CHECK_INT(srv_keyring_rotate_pg_ex(uri, kek, NULL, SRV_ROTATE_COMPLETE, &rot, &err), 0);
    int64_t t2 = srv_mono_ms();
    CHECK_INT(rot.n_rewrapped, before);
    CHECK_INT(rows_not_under(rot.new_kek_id), 0);
    srv_seal_key got;
    CHECK_INT(srv_keyring_room_key(k, rooms[n - 1], &got, &err), 0);
    printf("keyring on PostgreSQL: %d room keys made in one transaction in %lld ms; "
           "rotation of %lld keys (open, unwrap all, rewrap, commit) in %lld ms\n",
           n, (long long)(t1 - t0), before, (long long)(t2 - t1));
    free(names);
    free(rooms);
}

int main(void)
{
    pg_test_fresh_db("keyring", uri, sizeof uri);
    CHECK(mkdtemp(base) != NULL);
    char kek_a[512], kek_b[512], pend_a[600], pend_b[600], old[512], op[512];
    path_of(kek_a, sizeof kek_a, "a.kek");
    path_of(kek_b, sizeof kek_b, "b.kek");
    snprintf(pend_a, sizeof pend_a, "%s.new", kek_a);
    snprintf(pend_b, sizeof pend_b, "%s.new", kek_b);
    path_of(old, sizeof old, "old.kek");
    path_of(op, sizeof op, "operator.kek");
    att_error err = {0};
    srv_keyring *ka = NULL, *kb = NULL, *k = NULL;

    /* no KEK file given: refused, for open and rotation alike */
    CHECK_INT(srv_keyring_open_pg(uri, NULL, 1, &k, &err), -ATT_ERR_INVALID_INPUT);
    srv_keyring_rotation rot;
    CHECK_INT(srv_keyring_rotate_pg_ex(uri, NULL, NULL, SRV_ROTATE_COMPLETE, &rot, &err),
              -ATT_ERR_INVALID_INPUT);

    /* node A makes the KEK; node B is given a copy */
    CHECK_INT(srv_keyring_open_pg(uri, kek_a, 1, &ka, &err), 0);
    copy_key(kek_a, kek_b);
    CHECK_INT(srv_keyring_open_pg(uri, kek_b, 0, &kb, &err), 0);

    /* both nodes make the same rooms' keys at once: one key per room */
    maker ma = {ka, 0, 0, 0, 0, 0}, mb = {kb, 1, 0, 0, 0, 0};
    pthread_t ta, tb;
    int64_t t0 = srv_mono_ms();
    CHECK_INT(pthread_create(&ta, NULL, make_rooms, &ma), 0);
    CHECK_INT(pthread_create(&tb, NULL, make_rooms, &mb), 0);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    printf("keyring on PostgreSQL: %d rooms keyed from 2 nodes at once in %lld ms\n", N_ROOMS,
           (long long)(srv_mono_ms() - t0));
    CHECK_INT(ma.failed, 0);
    CHECK_INT(mb.failed, 0);
    CHECK_INT(sql_int("SELECT count(*) FROM keyring_room_keys"), N_ROOMS);
    check_same_keys(ka, kb, N_ROOMS);
    /* the same through ensure_room_keys, in batches, on other rooms */
    ma.batch = mb.batch = 1;
    CHECK_INT(pthread_create(&ta, NULL, make_rooms, &ma), 0);
    CHECK_INT(pthread_create(&tb, NULL, make_rooms, &mb), 0);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    CHECK_INT(ma.failed + mb.failed, 0);
    CHECK_INT(sql_int("SELECT count(*) FROM keyring_room_keys"), 2 * N_ROOMS);
    int differ = 0, failed = 0;
    for (int i = 0; i < N_ROOMS; i++) {
        char room[24];
        snprintf(room, sizeof room, "ens-%03d", i);
        srv_seal_key x, y;
        if (srv_keyring_room_key(ka, room, &x, &err) < 0 ||
            srv_keyring_room_key(kb, room, &y, &err) < 0)
            failed++;
        else
            differ += memcmp(x.bytes, y.bytes, sizeof x.bytes) != 0;
    }
    CHECK_INT(failed, 0);
    CHECK_INT(differ, 0);

    srv_seal_key audit_a, audit_b, r7, got;
    CHECK_INT(srv_keyring_service_key(ka, "audit", &audit_a, &err), 0);
    CHECK_INT(srv_keyring_service_key(kb, "audit", &audit_b, &err), 0);
    CHECK(memcmp(audit_a.bytes, audit_b.bytes, sizeof audit_a.bytes) == 0);
    CHECK_INT(srv_keyring_room_key(ka, "room-007", &r7, &err), 0);
    static const char note[] = "{\"text\":\"sealed before the rotation\"}";
    srv_seal_buf sealed = {0}, opened = {0};
    CHECK_INT(srv_seal(&r7, "room-007", 1, "note", note, strlen(note), &sealed, &err), 0);
    char id0[SRV_KEK_ID_CHARS + 1], id[SRV_KEK_ID_CHARS + 1];
    srv_keyring_kek_id(ka, id0);
    copy_key(kek_a, old);

    /* rotation on node A's machine: a new random KEK replaces a.kek */
    t0 = srv_mono_ms();
    CHECK_INT(srv_keyring_rotate_pg_ex(uri, kek_a, NULL, SRV_ROTATE_COMPLETE, &rot, &err), 0);
    printf("rotation on PostgreSQL: %d keys rewrapped in %lld ms\n", rot.n_rewrapped,
           (long long)(srv_mono_ms() - t0));
    CHECK_INT(rot.n_rewrapped, 2 * N_ROOMS + 1); /* the rooms and "audit" */
    CHECK_STR(rot.old_kek_id, id0);
    CHECK(strcmp(rot.new_kek_id, id0) != 0);
    CHECK_STR(rot.kek_path, kek_a);
    CHECK(!file_exists(pend_a));
    CHECK_INT(rows_not_under(rot.new_kek_id), 0);
    char id1[SRV_KEK_ID_CHARS + 1];
    snprintf(id1, sizeof id1, "%s", rot.new_kek_id);

    /* the new KEK opens everything, the sealed payload too; the old is refused */
    CHECK_INT(srv_keyring_open_pg(uri, kek_a, 0, &k, &err), 0);
    srv_keyring_kek_id(k, id);
    CHECK_STR(id, id1);
    CHECK_INT(srv_keyring_room_key(k, "room-007", &got, &err), 0);
    CHECK_INT(srv_unseal(&got, "room-007", 1, "note", sealed.data, sealed.len, &opened, &err), 0);
    CHECK(opened.len == strlen(note) && memcmp(opened.data, note, opened.len) == 0);
    CHECK_INT(srv_keyring_service_key(k, "audit", &got, &err), 0);
    CHECK(memcmp(got.bytes, audit_a.bytes, sizeof got.bytes) == 0);
    srv_keyring_close(k);
    k = NULL;
    CHECK(srv_keyring_open_pg(uri, old, 0, &k, &err) < 0);
    CHECK_MSG(strstr(err.message, "did not wrap") != NULL, "%s", err.message);

    /* running node A: keeps its keys, and a new room reloads a.kek */
    srv_seal_key fresh;
    CHECK_INT(srv_keyring_new_room_key(ka, "new-on-a", &fresh, &err), 0);
    srv_keyring_kek_id(ka, id);
    CHECK_STR(id, id1);
    /* running node B: its b.kek is the old KEK; without the new one beside
     * it a new room fails, cached rooms still open */
    CHECK(srv_keyring_new_room_key(kb, "new-on-b", &fresh, &err) < 0);
    CHECK(strstr(err.message, "restart with the new key-encryption key") != NULL);
    CHECK_INT(srv_keyring_room_key(kb, "room-007", &got, &err), 0);
    CHECK(memcmp(got.bytes, r7.bytes, sizeof got.bytes) == 0);
    /* the operator puts the new KEK beside it as b.kek.new: B takes it */
    copy_key(kek_a, pend_b);
    CHECK_INT(srv_keyring_new_room_key(kb, "new-on-b", &fresh, &err), 0);
    srv_keyring_kek_id(kb, id);
    CHECK_STR(id, id1);
    CHECK(file_exists(pend_b)); /* a running node does not rename */
    CHECK_INT(srv_keyring_room_key(ka, "new-on-b", &got, &err), 0);
    CHECK(memcmp(got.bytes, fresh.bytes, sizeof got.bytes) == 0);
    /* node B restarting finishes the rename */
    srv_keyring_close(kb);
    CHECK_INT(srv_keyring_open_pg(uri, kek_b, 0, &kb, &err), 0);
    CHECK(!file_exists(pend_b));
    check_same_keys(ka, kb, N_ROOMS);

    /* a crash before the commit: nothing changed, a.kek still opens */
    CHECK_INT(srv_keyring_rotate_pg_ex(uri, kek_a, NULL, SRV_ROTATE_STOP_BEFORE_COMMIT, &rot, &err),
              0);
    CHECK(file_exists(pend_a));
    CHECK_INT(rows_not_under(id1), 0);
    CHECK_INT(srv_keyring_open_pg(uri, kek_a, 0, &k, &err), 0);
    srv_keyring_kek_id(k, id);
    CHECK_STR(id, id1);
    srv_keyring_close(k);
    CHECK(file_exists(pend_a)); /* stale: the next rotation replaces it */

    /* a crash between the commit and the rename: open finishes it */
    CHECK_INT(srv_keyring_rotate_pg_ex(uri, kek_a, NULL, SRV_ROTATE_STOP_BEFORE_RENAME, &rot, &err),
              0);
    CHECK(file_exists(pend_a));
    char id2[SRV_KEK_ID_CHARS + 1];
    CHECK_INT(srv_keyring_open_pg(uri, kek_a, 0, &k, &err), 0);
    CHECK(!file_exists(pend_a));
    srv_keyring_kek_id(k, id2);
    CHECK(strcmp(id2, id1) != 0);
    CHECK_INT(rows_not_under(id2), 0);
    CHECK_INT(srv_keyring_room_key(k, "room-007", &got, &err), 0);
    CHECK_INT(srv_unseal(&got, "room-007", 1, "note", sealed.data, sealed.len, &opened, &err), 0);
    srv_keyring_close(k);

    /* the operator's procedure for several nodes: the new KEK put beside
     * every node's file as KEK.new, then the rotation with --new-kek-file,
     * while node B is making rooms */
    copy_key(kek_a, kek_b); /* both nodes on the current KEK again */
    srv_keyring_close(kb);
    CHECK_INT(srv_keyring_open_pg(uri, kek_b, 0, &kb, &err), 0);
    copy_key(kek_a, old);
    unsigned char opkey[SRV_KEY_FILE_BYTES];
    memset(opkey, 0xa5, sizeof opkey);
    CHECK_INT(srv_key_file_create(op, opkey, &err), 0);
    copy_key(op, pend_a);
    copy_key(op, pend_b);
    maker more = {kb, 0, 0, 0, N_ROOMS, 100};
    pthread_t tm;
    CHECK_INT(pthread_create(&tm, NULL, make_more, &more), 0);
    CHECK_INT(srv_keyring_rotate_pg_ex(uri, kek_a, pend_a, SRV_ROTATE_COMPLETE, &rot, &err), 0);
    pthread_join(tm, NULL);
    CHECK_INT(more.failed, 0);
    CHECK_STR(rot.kek_path, pend_a);
    CHECK(rot.n_rewrapped >= 2 * N_ROOMS + 3); /* the rooms, new-on-a/b, audit, some of B's */
    CHECK_INT(rows_not_under(rot.new_kek_id), 0);
    CHECK_INT(sql_int("SELECT count(*) FROM keyring_room_keys"), 2 * N_ROOMS + 2 + 100);
    /* every node opens with its KEK.new (renamed then); the old is refused */
    CHECK(srv_keyring_open_pg(uri, old, 0, &k, &err) < 0);
    CHECK_INT(srv_keyring_open_pg(uri, kek_a, 0, &k, &err), 0);
    CHECK(!file_exists(pend_a));
    srv_keyring_close(kb);
    CHECK_INT(srv_keyring_open_pg(uri, kek_b, 0, &kb, &err), 0);
    check_same_keys(k, kb, N_ROOMS + 100);
    CHECK_INT(srv_keyring_room_key(k, "room-007", &got, &err), 0);
    CHECK_INT(srv_unseal(&got, "room-007", 1, "note", sealed.data, sealed.len, &opened, &err), 0);
    /* rotating to the KEK in use is refused */
    CHECK_INT(srv_keyring_rotate_pg_ex(uri, kek_a, kek_a, SRV_ROTATE_COMPLETE, &rot, &err),
              -ATT_ERR_BAD_MESSAGE);
    srv_keyring_close(k);
    srv_keyring_close(kb);
    test_many(ka, pend_a, kek_a);
    srv_keyring_close(ka);
    srv_seal_buf_free(&sealed);
    srv_seal_buf_free(&opened);

    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", base);
    CHECK_INT(system(cmd), 0);
    return check_done("test_keyring_pg");
}
