/* test_seal.c - encryption at rest: payloads round-trip, a flipped byte or a
 * payload moved to another room or seq fails to open, legacy plaintext still
 * opens, and the database file never holds what was written in the clear. */
#define _GNU_SOURCE /* memmem */
#include "check.h"
#include "seal.h"
#include "store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int file_contains(const char *path, const char *needle)
{
    size_t len = 0;
    char *data = check_read_file(path, &len);
    int found = 0;
    for (size_t i = 0; data && i + strlen(needle) <= len; i++)
        if (memcmp(data + i, needle, strlen(needle)) == 0)
            found = 1;
    free(data);
    return found;
}

static srv_walk collect_text(const srv_stored_event *ev, void *arg, att_error *err)
{
    (void)err;
    char *out = arg;
    snprintf(out, 256, "%s|%.*s", ev->type ? ev->type : "(none)", (int)ev->len, ev->payload);
    return SRV_WALK_CONTINUE;
}

int main(void)
{
    char dir[] = "/tmp/attune-seal-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    att_error err = {0};
    srv_seal_key key, again;
    CHECK_INT(srv_seal_key_load(dir, &key, &err), 0);
    CHECK_INT(srv_seal_key_load(dir, &again, &err), 0);
    CHECK(memcmp(key.bytes, again.bytes, sizeof key.bytes) == 0);
    char path[512];
    snprintf(path, sizeof path, "%s/data.key", dir);
    struct stat st;
    CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);

    const char *plain = "{\"type\":\"turn\",\"input\":{\"what_happened\":\"SECRET-PHI words\"}}";
    srv_seal_buf sealed = {0}, opened = {0};
    CHECK_INT(srv_seal(&key, "room1", 7, "turn", plain, strlen(plain), &sealed, &err), 0);
    CHECK_INT(sealed.len, strlen(plain) + SRV_SEAL_OVERHEAD);
    CHECK(memmem(sealed.data, sealed.len, "SECRET", 6) == NULL);
    int checked = 0;
    CHECK_INT(
        srv_unseal(&key, "room1", 7, "turn", sealed.data, sealed.len, &opened, &checked, &err), 0);
    CHECK_INT(checked, 1);
    CHECK_STR((const char *)opened.data, plain);
    /* another room, another seq, another type or none, a flipped byte, another key */
    CHECK(srv_unseal(&key, "room2", 7, "turn", sealed.data, sealed.len, &opened, NULL, &err) < 0);
    CHECK(srv_unseal(&key, "room1", 8, "turn", sealed.data, sealed.len, &opened, NULL, &err) < 0);
    CHECK(srv_unseal(&key, "room1", 7, "joined", sealed.data, sealed.len, &opened, NULL, &err) < 0);
    CHECK(srv_unseal(&key, "room1", 7, NULL, sealed.data, sealed.len, &opened, NULL, &err) < 0);
    /* no seal without a type */
    CHECK(srv_seal(&key, "room1", 7, NULL, plain, strlen(plain), &opened, &err) < 0);
    sealed.data[20] ^= 1;
    CHECK(srv_unseal(&key, "room1", 7, "turn", sealed.data, sealed.len, &opened, NULL, &err) < 0);
    sealed.data[20] ^= 1;
    srv_seal_key other = key;
    other.bytes[0] ^= 0x80;
    CHECK(srv_unseal(&other, "room1", 7, "turn", sealed.data, sealed.len, &opened, NULL, &err) < 0);
    CHECK(strstr(err.message, "SECRET") == NULL);
    /* two seals of the same text differ (fresh nonces) */
    srv_seal_buf second = {0};
    CHECK_INT(srv_seal(&key, "room1", 7, "turn", plain, strlen(plain), &second, &err), 0);
    CHECK(memcmp(second.data, sealed.data, sealed.len) != 0);
    /* legacy plaintext opens as itself; garbage does not */
    checked = 1;
    CHECK_INT(srv_unseal(&key, "room1", 1, NULL, "{\"a\":1}", 7, &opened, &checked, &err), 0);
    CHECK_INT(checked, 0);
    CHECK_STR((const char *)opened.data, "{\"a\":1}");
    CHECK(srv_unseal(&key, "room1", 1, NULL, "xx", 2, &opened, NULL, &err) < 0);

    /* Through the store: the database holds no plaintext, reads give it back. */
    srv_store *s = NULL;
    CHECK_INT(srv_store_open(dir, &s, &err), 0);
    srv_store_room room = {.id = "roomS", .exercise = "enactment", .created_at = 1};
    CHECK_INT(srv_store_create_room(s, &room, plain, strlen(plain), &err), 0);
    char back[256] = "";
    CHECK_INT(srv_store_walk_events(s, "roomS", 0, -1, 0, collect_text, back, &err),
              SRV_WALK_CONTINUE);
    char want[300];
    snprintf(want, sizeof want, "room_created|%s", plain);
    CHECK_STR(back, want);
    srv_store_close(s);
    snprintf(path, sizeof path, "%s/attune.db", dir);
    CHECK(!file_contains(path, "SECRET-PHI"));
    snprintf(path, sizeof path, "%s/attune.db-wal", dir);
    CHECK(!file_contains(path, "SECRET-PHI"));

    srv_seal_buf_free(&sealed);
    srv_seal_buf_free(&second);
    srv_seal_buf_free(&opened);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
    return check_done("seal");
}
