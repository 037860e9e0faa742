/* test_keyring.c - the key hierarchy: the KEK's default path and file
 * checks, room keys that survive a reopen and open only under their KEK,
 * erase that lasts, service keys, rotation (whole, with the operator's
 * file, and stopped where a crash could stop it), a running keyring
 * noticing a rotation, and 20,000 rooms' open and lookup times. */
#define _GNU_SOURCE /* setenv, memmem */
#include "check.h"
#include "clock.h"
#include "keyring.h"
#include "token.h"

#include <sqlite3.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char base[] = "/tmp/attune-keyring-XXXXXX";

static void path_of(char *out, size_t n, const char *name)
{
    snprintf(out, n, "%s/%s", base, name);
}

static int file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static int file_mode(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (int)(st.st_mode & 0777) : -1;
}

static void write_text(const char *path, const char *text, int mode)
{
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f) {
        fputs(text, f);
        fclose(f);
    }
    chmod(path, (mode_t)mode);
}

static void test_default_path(void)
{
    char out[512];
    att_error err = {0};
    unsetenv("CREDENTIALS_DIRECTORY");
    CHECK_INT(srv_kek_default_path("./data", out, sizeof out, &err), 0);
    CHECK_STR(out, "./data.kek");
    CHECK_INT(srv_kek_default_path("var/data/", out, sizeof out, &err), 0);
    CHECK_STR(out, "var/data.kek");
    /* "." names no sibling: the resolved directory's */
    char cwd[400], want[512];
    CHECK(getcwd(cwd, sizeof cwd) != NULL);
    snprintf(want, sizeof want, "%s.kek", cwd);
    CHECK_INT(srv_kek_default_path(".", out, sizeof out, &err), 0);
    CHECK_STR(out, want);
    setenv("CREDENTIALS_DIRECTORY", "/run/credentials/attune.service", 1);
    CHECK_INT(srv_kek_default_path("./data", out, sizeof out, &err), 0);
    CHECK_STR(out, "/run/credentials/attune.service/attune-kek");
    unsetenv("CREDENTIALS_DIRECTORY");
}

static void test_keys(void)
{
    char data[512], kek[512], other[512], keysdb[600];
    path_of(data, sizeof data, "d1");
    path_of(kek, sizeof kek, "d1.kek");
    path_of(other, sizeof other, "other.kek");
    snprintf(keysdb, sizeof keysdb, "%s/keys.db", data);
    att_error err = {0};
    srv_keyring *k = NULL;

    /* no KEK and no permission to create one: the error names the file */
    CHECK(srv_keyring_open(data, kek, 0, &k, &err) < 0);
    CHECK(strstr(err.message, kek) != NULL);
    CHECK(strstr(err.message, "nothing in the data directory can be read") != NULL);
    CHECK(!file_exists(kek));

    /* created 0600 beside the data directory; keys.db 0600 */
    CHECK_INT(srv_keyring_open(data, NULL, 1, &k, &err), 0);
    CHECK_INT(file_mode(kek), 0600);
    CHECK_INT(file_mode(keysdb), 0600);
    char id[SRV_KEK_ID_CHARS + 1];
    srv_keyring_kek_id(k, id);
    CHECK_INT(strlen(id), SRV_KEK_ID_CHARS);

    srv_seal_key a, a2, b, svc, svc2;
    CHECK_INT(srv_keyring_room_key(k, "room-a", &a, &err), -ATT_ERR_NOT_FOUND);
    CHECK_INT(srv_keyring_new_room_key(k, "room-a", &a, &err), 0);
    CHECK_INT(srv_keyring_new_room_key(k, "room-a", &a2, &err), -ATT_ERR_BAD_MESSAGE);
    CHECK_INT(srv_keyring_new_room_key(k, "room-b", &b, &err), 0);
    CHECK(memcmp(a.bytes, b.bytes, sizeof a.bytes) != 0);
    CHECK_INT(srv_keyring_room_key(k, "room-a", &a2, &err), 0);
    CHECK(memcmp(a.bytes, a2.bytes, sizeof a.bytes) == 0);
    CHECK_INT(srv_keyring_service_key(k, "audit", &svc, &err), 0);
    CHECK_INT(srv_keyring_service_key(k, "audit", &svc2, &err), 0);
    CHECK(memcmp(svc.bytes, svc2.bytes, sizeof svc.bytes) == 0);
    CHECK(srv_keyring_service_key(k, "Bad Name", &svc2, &err) < 0);
    srv_keyring_close(k);

    /* the keys are not in keys.db in the clear */
    size_t len = 0;
    char *bytes = check_read_file(keysdb, &len);
    CHECK(bytes && !memmem(bytes, len, a.bytes, sizeof a.bytes) &&
          !memmem(bytes, len, b.bytes, sizeof b.bytes));
    free(bytes);

    /* reopened: the same keys */
    CHECK_INT(srv_keyring_open(data, kek, 0, &k, &err), 0);
    CHECK_INT(srv_keyring_room_key(k, "room-a", &a2, &err), 0);
    CHECK(memcmp(a.bytes, a2.bytes, sizeof a.bytes) == 0);
    CHECK_INT(srv_keyring_service_key(k, "audit", &svc2, &err), 0);
    CHECK(memcmp(svc.bytes, svc2.bytes, sizeof svc.bytes) == 0);

    /* erase: gone from the cache and from keys.db */
    CHECK_INT(srv_keyring_erase_room(k, "room-a", &err), 0);
    CHECK_INT(srv_keyring_erase_room(k, "room-a", &err), 0);
    CHECK_INT(srv_keyring_room_key(k, "room-a", &a2, &err), -ATT_ERR_NOT_FOUND);
    CHECK_INT(srv_keyring_room_key(k, "room-b", &a2, &err), 0);
    srv_keyring_close(k);
    CHECK_INT(srv_keyring_open(data, kek, 0, &k, &err), 0);
    CHECK_INT(srv_keyring_room_key(k, "room-a", &a2, &err), -ATT_ERR_NOT_FOUND);
    CHECK_INT(srv_keyring_room_key(k, "room-b", &a2, &err), 0);
    CHECK(memcmp(b.bytes, a2.bytes, sizeof b.bytes) == 0);
    srv_keyring_close(k);
    bytes = check_read_file(keysdb, &len);
    CHECK(bytes && !memmem(bytes, len, "room-a", 6));
    free(bytes);

    /* a damaged wrapped key, and one moved to another room's row: those
     * rooms do not open (saying why), the others do */
    srv_seal_key c;
    CHECK_INT(srv_keyring_open(data, kek, 0, &k, &err), 0);
    CHECK_INT(srv_keyring_new_room_key(k, "room-c", &c, &err), 0);
    CHECK_INT(srv_keyring_new_room_key(k, "room-d", &c, &err), 0);
    srv_keyring_close(k);
    sqlite3 *db = NULL;
    CHECK_INT(sqlite3_open(keysdb, &db), SQLITE_OK);
    CHECK_INT(sqlite3_exec(db,
                           "UPDATE room_keys SET wrapped = (SELECT wrapped FROM room_keys WHERE "
                           "room = 'room-b') WHERE room = 'room-c';"
                           "UPDATE room_keys SET wrapped = substr(wrapped, 1, 20) || X'00' || "
                           "substr(wrapped, 22) WHERE room = 'room-d';",
                           NULL, NULL, NULL),
              SQLITE_OK);
    sqlite3_close(db);
    CHECK_INT(srv_keyring_open(data, kek, 0, &k, &err), 0);
    CHECK_INT(srv_keyring_room_key(k, "room-b", &a2, &err), 0);
    CHECK(memcmp(b.bytes, a2.bytes, sizeof b.bytes) == 0);
    CHECK_INT(srv_keyring_room_key(k, "room-c", &a2, &err), -ATT_ERR_INTERNAL);
    CHECK(strstr(err.message, "does not open") != NULL);
    CHECK_INT(srv_keyring_room_key(k, "room-d", &a2, &err), -ATT_ERR_INTERNAL);
    CHECK(strstr(err.message, "does not open") != NULL);
    CHECK_INT(srv_keyring_erase_room(k, "room-c", &err), 0);
    CHECK_INT(srv_keyring_erase_room(k, "room-d", &err), 0);
    srv_keyring_close(k);

    /* another KEK: refused, both ids named */
    unsigned char other_key[SRV_KEY_FILE_BYTES];
    memset(other_key, 0x5a, sizeof other_key);
    CHECK_INT(srv_key_file_create(other, other_key, &err), 0);
    CHECK(srv_keyring_open(data, other, 0, &k, &err) < 0);
    CHECK(strstr(err.message, id) != NULL);
    CHECK(strstr(err.message, "did not wrap") != NULL);

    /* a missing KEK is not recreated while keys exist, even when allowed */
    char moved[600];
    snprintf(moved, sizeof moved, "%s.moved", kek);
    CHECK_INT(rename(kek, moved), 0);
    CHECK(srv_keyring_open(data, kek, 1, &k, &err) < 0);
    CHECK(strstr(err.message, "nothing in the data directory can be read") != NULL);
    CHECK(!file_exists(kek));
    CHECK_INT(rename(moved, kek), 0);

    /* group-readable KEK, bad content */
    CHECK_INT(chmod(kek, 0640), 0);
    CHECK(srv_keyring_open(data, kek, 0, &k, &err) < 0);
    CHECK(strstr(err.message, "group or others") != NULL);
    CHECK_INT(chmod(kek, 0600), 0);
    char bad[512];
    path_of(bad, sizeof bad, "bad.kek");
    write_text(bad, "not hex\n", 0600);
    CHECK(srv_keyring_open(data, bad, 0, &k, &err) < 0);
    CHECK(strstr(err.message, "64 hex") != NULL);

    /* a KEK inside the data directory, also through a path with ".." */
    char inside[600];
    snprintf(inside, sizeof inside, "%s/attune.kek", data);
    CHECK(srv_keyring_open(data, inside, 1, &k, &err) < 0);
    CHECK(strstr(err.message, "outside the data directory") != NULL);
    CHECK(!file_exists(inside));
    snprintf(inside, sizeof inside, "%s/../d1/sub.kek", data);
    CHECK(srv_keyring_open(data, inside, 1, &k, &err) < 0);
    CHECK(strstr(err.message, "outside the data directory") != NULL);
}

static void test_rotation(void)
{
    char data[512], kek[512], pending[600], opkek[512];
    path_of(data, sizeof data, "d2");
    path_of(kek, sizeof kek, "d2.kek");
    snprintf(pending, sizeof pending, "%s.new", kek);
    path_of(opkek, sizeof opkek, "operator.kek");
    att_error err = {0};
    srv_keyring *k = NULL, *running = NULL;
    CHECK_INT(srv_keyring_open(data, kek, 1, &k, &err), 0);
    srv_seal_key r1, r2, got, svc, svc2;
    CHECK_INT(srv_keyring_new_room_key(k, "r1", &r1, &err), 0);
    CHECK_INT(srv_keyring_new_room_key(k, "r2", &r2, &err), 0);
    CHECK_INT(srv_keyring_service_key(k, "audit", &svc, &err), 0);
    char id0[SRV_KEK_ID_CHARS + 1], id[SRV_KEK_ID_CHARS + 1];
    srv_keyring_kek_id(k, id0);
    srv_keyring_close(k);

    /* a "running server" keeps its keyring open across the rotations */
    CHECK_INT(srv_keyring_open(data, kek, 0, &running, &err), 0);

    /* whole rotation */
    srv_keyring_rotation rot;
    CHECK_INT(srv_keyring_rotate_ex(data, kek, NULL, SRV_ROTATE_COMPLETE, &rot, &err), 0);
    CHECK_INT(rot.n_rewrapped, 3);
    CHECK_STR(rot.old_kek_id, id0);
    CHECK(strcmp(rot.new_kek_id, id0) != 0);
    CHECK_STR(rot.kek_path, kek);
    CHECK(!file_exists(pending));
    CHECK_INT(file_mode(kek), 0600);
    CHECK_INT(srv_keyring_open(data, kek, 0, &k, &err), 0);
    srv_keyring_kek_id(k, id);
    CHECK_STR(id, rot.new_kek_id);
    CHECK_INT(srv_keyring_room_key(k, "r1", &got, &err), 0);
    CHECK(memcmp(got.bytes, r1.bytes, sizeof got.bytes) == 0);
    CHECK_INT(srv_keyring_service_key(k, "audit", &svc2, &err), 0);
    CHECK(memcmp(svc.bytes, svc2.bytes, sizeof svc.bytes) == 0);
    /* another process (the attune command) makes a room under the new KEK */
    srv_seal_key rx;
    CHECK_INT(srv_keyring_new_room_key(k, "rx", &rx, &err), 0);
    srv_keyring_close(k);

    /* the running keyring's first lookup of it misses its cache, finds it
     * wrapped by a KEK it has not loaded and rereads the KEK file */
    CHECK_INT(srv_keyring_room_key(running, "rx", &got, &err), 0);
    CHECK(memcmp(got.bytes, rx.bytes, sizeof got.bytes) == 0);

    /* the running keyring: cached keys still work; a new room key reloads
     * the (rewritten) KEK file and is wrapped under the new KEK */
    CHECK_INT(srv_keyring_room_key(running, "r2", &got, &err), 0);
    CHECK(memcmp(got.bytes, r2.bytes, sizeof got.bytes) == 0);
    srv_seal_key r3;
    CHECK_INT(srv_keyring_new_room_key(running, "r3", &r3, &err), 0);
    srv_keyring_kek_id(running, id);
    CHECK_STR(id, rot.new_kek_id);
    CHECK_INT(srv_keyring_open(data, kek, 0, &k, &err), 0);
    CHECK_INT(srv_keyring_room_key(k, "r3", &got, &err), 0);
    CHECK(memcmp(got.bytes, r3.bytes, sizeof got.bytes) == 0);
    srv_keyring_close(k);

    /* a crash before the commit: the old KEK still opens, KEK.new is
     * stale and the next rotation replaces it */
    char id1[SRV_KEK_ID_CHARS + 1];
    snprintf(id1, sizeof id1, "%s", rot.new_kek_id);
    CHECK_INT(srv_keyring_rotate_ex(data, kek, NULL, SRV_ROTATE_STOP_BEFORE_COMMIT, &rot, &err), 0);
    CHECK(file_exists(pending));
    CHECK_INT(srv_keyring_open(data, kek, 0, &k, &err), 0);
    srv_keyring_kek_id(k, id);
    CHECK_STR(id, id1);
    srv_keyring_close(k);
    CHECK(file_exists(pending));

    /* a crash between the commit and the rename: open finishes the rename */
    CHECK_INT(srv_keyring_rotate_ex(data, kek, NULL, SRV_ROTATE_STOP_BEFORE_RENAME, &rot, &err), 0);
    CHECK(file_exists(pending));
    /* ... the running keyring reads KEK.new meanwhile, without renaming */
    srv_seal_key r4;
    CHECK_INT(srv_keyring_new_room_key(running, "r4", &r4, &err), 0);
    CHECK(file_exists(pending));
    CHECK_INT(srv_keyring_open(data, kek, 0, &k, &err), 0);
    CHECK(!file_exists(pending));
    char id2[SRV_KEK_ID_CHARS + 1];
    srv_keyring_kek_id(k, id2);
    CHECK(strcmp(id2, id1) != 0);
    CHECK_INT(srv_keyring_room_key(k, "r1", &got, &err), 0);
    CHECK(memcmp(got.bytes, r1.bytes, sizeof got.bytes) == 0);
    CHECK_INT(srv_keyring_room_key(k, "r4", &got, &err), 0);
    CHECK(memcmp(got.bytes, r4.bytes, sizeof got.bytes) == 0);
    srv_keyring_close(k);

    /* the operator's new KEK file: kek is left as it was */
    unsigned char opkey[SRV_KEY_FILE_BYTES];
    memset(opkey, 0xa5, sizeof opkey);
    CHECK_INT(srv_key_file_create(opkek, opkey, &err), 0);
    size_t before_len = 0, after_len = 0;
    char *before = check_read_file(kek, &before_len);
    CHECK_INT(srv_keyring_rotate_ex(data, kek, opkek, SRV_ROTATE_COMPLETE, &rot, &err), 0);
    CHECK_INT(rot.n_rewrapped, 6); /* r1-r4, rx, audit */
    CHECK_STR(rot.kek_path, opkek);
    char *after = check_read_file(kek, &after_len);
    CHECK(before && after && before_len == after_len && memcmp(before, after, before_len) == 0);
    free(before);
    free(after);
    CHECK(srv_keyring_open(data, kek, 0, &k, &err) < 0); /* the old one no longer opens */
    CHECK_INT(srv_keyring_open(data, opkek, 0, &k, &err), 0);
    CHECK_INT(srv_keyring_room_key(k, "r2", &got, &err), 0);
    CHECK(memcmp(got.bytes, r2.bytes, sizeof got.bytes) == 0);
    srv_keyring_close(k);

    /* the running keyring cannot find that KEK in its file: a clear error,
     * and its cached keys still work */
    srv_seal_key r5;
    CHECK(srv_keyring_new_room_key(running, "r5", &r5, &err) < 0);
    CHECK(strstr(err.message, "restart with the new key-encryption key") != NULL);
    CHECK_INT(srv_keyring_room_key(running, "r1", &got, &err), 0);
    CHECK(memcmp(got.bytes, r1.bytes, sizeof got.bytes) == 0);
    srv_keyring_close(running);

    /* rotating to the same KEK is refused */
    CHECK(srv_keyring_rotate_ex(data, opkek, opkek, SRV_ROTATE_COMPLETE, &rot, &err) < 0);
}

static void test_many_rooms(void)
{
    enum { N = 20000 };
    char data[512], kek[512];
    path_of(data, sizeof data, "d3");
    path_of(kek, sizeof kek, "d3.kek");
    att_error err = {0};
    srv_keyring *k = NULL;
    CHECK_INT(srv_keyring_open(data, kek, 1, &k, &err), 0);
    static char names[N][16];
    const char *rooms[N];
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof names[i], "room-%05d", i);
        rooms[i] = names[i];
    }
    srv_seal_key first, got;
    CHECK_INT(srv_keyring_new_room_key(k, rooms[0], &first, &err), 0);
    int made = 0;
    int64_t t0 = srv_mono_ns();
    CHECK_INT(srv_keyring_ensure_room_keys(k, rooms, N, &made, &err), 0);
    int64_t t1 = srv_mono_ns();
    CHECK_INT(made, N - 1);
    CHECK_INT(srv_keyring_ensure_room_keys(k, rooms, N, &made, &err), 0);
    CHECK_INT(made, 0);
    CHECK_INT(srv_keyring_room_key(k, rooms[0], &got, &err), 0);
    CHECK(memcmp(got.bytes, first.bytes, sizeof got.bytes) == 0);
    srv_keyring_close(k);

    int64_t t2 = srv_mono_ns();
    CHECK_INT(srv_keyring_open(data, kek, 0, &k, &err), 0);
    int64_t t3 = srv_mono_ns();
    int found = 0;
    for (int round = 0; round < 5; round++)
        for (int i = 0; i < N; i++)
            found += srv_keyring_room_key(k, rooms[(i * 7919) % N], &got, &err) == 0;
    int64_t t4 = srv_mono_ns();
    CHECK_INT(found, 5 * N);
    CHECK_INT(srv_keyring_room_key(k, rooms[0], &got, &err), 0);
    CHECK(memcmp(got.bytes, first.bytes, sizeof got.bytes) == 0);
    /* erase one in 40 (backward-shift deletion keeps the rest reachable;
     * each erase is its own synced transaction, so not all of them) */
    enum { STRIDE = 40 };
    for (int i = 0; i < N; i += STRIDE)
        CHECK_INT(srv_keyring_erase_room(k, rooms[i], &err), 0);
    int64_t t5 = srv_mono_ns();
    int left = 0, gone = 0;
    for (int i = 0; i < N; i++) {
        int rc = srv_keyring_room_key(k, rooms[i], &got, &err);
        left += rc == 0;
        gone += rc == -ATT_ERR_NOT_FOUND;
    }
    CHECK_INT(left, N - N / STRIDE);
    CHECK_INT(gone, N / STRIDE);
    srv_keyring_close(k);
    printf("keyring: %d rooms: made in one transaction %.1f ms, open (unwrap all) %.1f ms, "
           "lookup %.0f ns each, erase %.2f ms each\n",
           N, (double)(t1 - t0) / 1e6, (double)(t3 - t2) / 1e6, (double)(t4 - t3) / (5.0 * N),
           (double)(t5 - t4) / (N / STRIDE) / 1e6);
}

int main(void)
{
    CHECK(mkdtemp(base) != NULL);
    test_default_path();
    test_keys();
    test_rotation();
    test_many_rooms();
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", base);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", base);
    return check_done("keyring");
}
