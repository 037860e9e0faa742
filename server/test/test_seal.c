/* test_seal.c - encryption at rest: payloads round-trip under a room's key,
 * padded to buckets (two texts of 10 and 100 bytes are stored at the same
 * length); a flipped byte, a payload moved to another room, seq or type, or
 * opened under another key fails; a bad length prefix or padding fails
 * even under a valid tag; there is no plaintext path (a '{' payload and
 * the older seals under DATA/data.key are refused by srv_unseal, and open
 * only through the migration's srv_unseal_legacy); data.key is never
 * created and is destroyed on request; through the store, the database
 * file never holds what was written, a plaintext row written into it is
 * refused, a row moved to another room does not open, and a room whose key
 * was erased walks as FAILED with NOT_FOUND. */
#define _GNU_SOURCE /* memmem */
#include "check.h"
#include "keyring.h"
#include "seal.h"
#include "store.h"

#include <openssl/evp.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int file_contains(const char *path, const char *needle)
{
    size_t len = 0;
    char *data = check_read_file(path, &len);
    int found = data && memmem(data, len, needle, strlen(needle)) != NULL;
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

static srv_seal_key key_of(unsigned char salt)
{
    srv_seal_key k;
    for (size_t i = 0; i < sizeof k.bytes; i++)
        k.bytes[i] = (unsigned char)(i * 7 + salt);
    return k;
}

/* A seal written by hand, as the formats before this one wrote them and
 * to forge bad padding under a valid tag: version | nonce (12 bytes of
 * 0x5a) | AES-256-GCM(plain) | tag, associated data "<room>\0<seq BE>" and
 * the type when given, prefixed with the version byte when with_version. */
static size_t raw_seal(unsigned char version, int with_version, const srv_seal_key *key,
                       const char *room, int64_t seq, const char *type, const void *plain,
                       size_t len, unsigned char *out)
{
    unsigned char aad[256], nonce[12];
    size_t n = 0;
    if (with_version)
        aad[n++] = version;
    memcpy(aad + n, room, strlen(room) + 1);
    n += strlen(room) + 1;
    for (int i = 7; i >= 0; i--)
        aad[n++] = (unsigned char)((uint64_t)seq >> (8 * i));
    if (type) {
        memcpy(aad + n, type, strlen(type));
        n += strlen(type);
    }
    memset(nonce, 0x5a, sizeof nonce);
    out[0] = version;
    memcpy(out + 1, nonce, 12);
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int outl = 0, total = 0;
    EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key->bytes, nonce);
    EVP_EncryptUpdate(ctx, NULL, &outl, aad, (int)n);
    EVP_EncryptUpdate(ctx, out + 13, &outl, plain, (int)len);
    total = outl;
    EVP_EncryptFinal_ex(ctx, out + 13 + total, &outl);
    total += outl;
    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, 16, out + 13 + total);
    EVP_CIPHER_CTX_free(ctx);
    return 1 + 12 + (size_t)total + 16;
}

/* A version 0x03 padded plaintext by hand: the prefix says json_len, the
 * bucket is bucket bytes, pad_byte fills the padding. */
static size_t raw_padded(const srv_seal_key *key, const char *room, int64_t seq, const char *type,
                         const char *json, uint32_t prefix_len, size_t bucket,
                         unsigned char pad_byte, unsigned char *out)
{
    unsigned char plain[8192];
    memset(plain, pad_byte, bucket);
    plain[0] = (unsigned char)(prefix_len >> 24);
    plain[1] = (unsigned char)(prefix_len >> 16);
    plain[2] = (unsigned char)(prefix_len >> 8);
    plain[3] = (unsigned char)prefix_len;
    memcpy(plain + 4, json, strlen(json));
    return raw_seal(0x03, 1, key, room, seq, type, plain, bucket, out);
}

static void buckets(void)
{
    CHECK_INT(srv_seal_bucket(0), 128);
    CHECK_INT(srv_seal_bucket(124), 128); /* 4 + 124 = 128 */
    CHECK_INT(srv_seal_bucket(125), 256);
    CHECK_INT(srv_seal_bucket(1000), 1024);
    CHECK_INT(srv_seal_bucket(4092), 4096);
    CHECK_INT(srv_seal_bucket(4093), 8192);
    CHECK_INT(srv_seal_bucket(8188), 8192);
    CHECK_INT(srv_seal_bucket(8189), 12288);
    CHECK_INT(srv_seal_bucket(SRV_SEAL_MAX_PLAIN + 1), 0);
}

static void seal_and_open(void)
{
    att_error err = {0};
    srv_seal_key key = key_of(1);
    const char *plain = "{\"type\":\"turn\",\"input\":{\"what_happened\":\"SECRET-PHI words\"}}";
    srv_seal_buf sealed = {0}, opened = {0};
    CHECK_INT(srv_seal(&key, "room1", 7, "turn", plain, strlen(plain), &sealed, &err), 0);
    CHECK_INT(sealed.len, srv_seal_bucket(strlen(plain)) + SRV_SEAL_OVERHEAD);
    CHECK_INT(sealed.data[0], 0x03);
    CHECK(memmem(sealed.data, sealed.len, "SECRET", 6) == NULL);
    CHECK_INT(srv_unseal(&key, "room1", 7, "turn", sealed.data, sealed.len, &opened, &err), 0);
    CHECK_STR((const char *)opened.data, plain);
    CHECK_INT(opened.len, strlen(plain));
    /* another room, another seq, another type or none, a flipped byte
     * (anywhere: version, nonce, ciphertext, tag), another key */
    CHECK(srv_unseal(&key, "room2", 7, "turn", sealed.data, sealed.len, &opened, &err) < 0);
    CHECK(srv_unseal(&key, "room1", 8, "turn", sealed.data, sealed.len, &opened, &err) < 0);
    CHECK(srv_unseal(&key, "room1", 7, "joined", sealed.data, sealed.len, &opened, &err) < 0);
    CHECK(srv_unseal(&key, "room1", 7, NULL, sealed.data, sealed.len, &opened, &err) < 0);
    size_t at[] = {0, 5, 20, 60, sealed.len - 1};
    for (size_t i = 0; i < sizeof at / sizeof at[0]; i++) {
        sealed.data[at[i]] ^= 1;
        CHECK(srv_unseal(&key, "room1", 7, "turn", sealed.data, sealed.len, &opened, &err) < 0);
        sealed.data[at[i]] ^= 1;
    }
    /* cut short, or one byte longer */
    CHECK(srv_unseal(&key, "room1", 7, "turn", sealed.data, sealed.len - 1, &opened, &err) < 0);
    srv_seal_key other = key_of(2);
    CHECK(srv_unseal(&other, "room1", 7, "turn", sealed.data, sealed.len, &opened, &err) < 0);
    CHECK(strstr(err.message, "SECRET") == NULL);
    /* no seal without a type */
    CHECK(srv_seal(&key, "room1", 7, NULL, plain, strlen(plain), &opened, &err) < 0);
    /* two seals of the same text differ (fresh nonces) */
    srv_seal_buf second = {0};
    CHECK_INT(srv_seal(&key, "room1", 7, "turn", plain, strlen(plain), &second, &err), 0);
    CHECK_INT(second.len, sealed.len);
    CHECK(memcmp(second.data, sealed.data, sealed.len) != 0);
    /* an empty payload and one exactly filling its bucket */
    CHECK_INT(srv_seal(&key, "room1", 1, "turn", "", 0, &second, &err), 0);
    CHECK_INT(second.len, 128 + SRV_SEAL_OVERHEAD);
    CHECK_INT(srv_unseal(&key, "room1", 1, "turn", second.data, second.len, &opened, &err), 0);
    CHECK_INT(opened.len, 0);
    char full[125];
    memset(full, 'x', 124);
    full[124] = 0;
    CHECK_INT(srv_seal(&key, "room1", 1, "turn", full, 124, &second, &err), 0);
    CHECK_INT(second.len, 128 + SRV_SEAL_OVERHEAD);
    CHECK_INT(srv_unseal(&key, "room1", 1, "turn", second.data, second.len, &opened, &err), 0);
    CHECK_STR((const char *)opened.data, full);
    srv_seal_buf_free(&sealed);
    srv_seal_buf_free(&second);
    srv_seal_buf_free(&opened);
}

/* The stored length says the bucket, not the length. */
static void padding_hides_length(void)
{
    att_error err = {0};
    srv_seal_key key = key_of(3);
    char ten[11], hundred[101];
    memset(ten, 'a', 10);
    ten[10] = 0;
    memset(hundred, 'b', 100);
    hundred[100] = 0;
    srv_seal_buf a = {0}, b = {0}, opened = {0};
    CHECK_INT(srv_seal(&key, "room1", 2, "message", ten, 10, &a, &err), 0);
    CHECK_INT(srv_seal(&key, "room1", 2, "message", hundred, 100, &b, &err), 0);
    CHECK_INT(a.len, b.len);
    CHECK_INT(a.len, 128 + SRV_SEAL_OVERHEAD);
    CHECK_INT(srv_unseal(&key, "room1", 2, "message", a.data, a.len, &opened, &err), 0);
    CHECK_STR((const char *)opened.data, ten);
    CHECK_INT(srv_unseal(&key, "room1", 2, "message", b.data, b.len, &opened, &err), 0);
    CHECK_STR((const char *)opened.data, hundred);
    srv_seal_buf_free(&a);
    srv_seal_buf_free(&b);
    srv_seal_buf_free(&opened);
}

/* A valid tag over a bad inside: the prefix longer than the bucket, a
 * prefix that belongs to a smaller bucket, padding that is not zero, a
 * ciphertext that is not a bucket size. */
static void bad_padding_refused(void)
{
    att_error err = {0};
    srv_seal_key key = key_of(4);
    unsigned char raw[9000];
    srv_seal_buf opened = {0};
    const char *json = "{\"type\":\"note\"}";
    uint32_t n = (uint32_t)strlen(json);
    size_t len = raw_padded(&key, "r", 3, "note", json, n, 128, 0, raw);
    CHECK_INT(srv_unseal(&key, "r", 3, "note", raw, len, &opened, &err), 0); /* the control */
    CHECK_STR((const char *)opened.data, json);
    len = raw_padded(&key, "r", 3, "note", json, n, 128, 1, raw);
    CHECK(srv_unseal(&key, "r", 3, "note", raw, len, &opened, &err) < 0);
    CHECK(strstr(err.message, "padding") != NULL);
    len = raw_padded(&key, "r", 3, "note", json, 125, 128, 0, raw);
    CHECK(srv_unseal(&key, "r", 3, "note", raw, len, &opened, &err) < 0);
    len = raw_padded(&key, "r", 3, "note", json, 0xffffffffu, 128, 0, raw);
    CHECK(srv_unseal(&key, "r", 3, "note", raw, len, &opened, &err) < 0);
    len = raw_padded(&key, "r", 3, "note", json, n, 256, 0, raw); /* 15 bytes in a 256 bucket */
    CHECK(srv_unseal(&key, "r", 3, "note", raw, len, &opened, &err) < 0);
    len = raw_padded(&key, "r", 3, "note", json, n, 200, 0, raw); /* not a bucket */
    CHECK(srv_unseal(&key, "r", 3, "note", raw, len, &opened, &err) < 0);
    /* version 0x03 without the version byte in the associated data */
    unsigned char plain[128] = {0, 0, 0, (unsigned char)n};
    memcpy(plain + 4, json, n);
    len = raw_seal(0x03, 0, &key, "r", 3, "note", plain, 128, raw);
    CHECK(srv_unseal(&key, "r", 3, "note", raw, len, &opened, &err) < 0);
    srv_seal_buf_free(&opened);
}

/* No plaintext path, and the older seals only through the migration's
 * function. */
static void legacy_formats(const char *dir)
{
    att_error err = {0};
    srv_seal_key data_key = key_of(5);
    srv_seal_buf opened = {0};
    const char *json = "{\"type\":\"consent\",\"text\":\"forged\"}";
    size_t n = strlen(json);
    CHECK(srv_unseal(&data_key, "room1", 1, "consent", json, n, &opened, &err) < 0);
    CHECK(strstr(err.message, "plaintext") != NULL);
    CHECK(strstr(err.message, "forged") == NULL);
    int checked = 1;
    CHECK_INT(srv_unseal_legacy(NULL, "room1", 1, NULL, json, n, &opened, &checked, &err), 0);
    CHECK_INT(checked, 0);
    CHECK_STR((const char *)opened.data, json);

    unsigned char raw[512];
    size_t v2 = raw_seal(0x02, 0, &data_key, "room1", 4, "consent", json, n, raw);
    CHECK(srv_unseal(&data_key, "room1", 4, "consent", raw, v2, &opened, &err) < 0);
    CHECK_INT(srv_unseal_legacy(&data_key, "room1", 4, "consent", raw, v2, &opened, &checked, &err),
              0);
    CHECK_INT(checked, 1);
    CHECK_STR((const char *)opened.data, json);
    CHECK(srv_unseal_legacy(&data_key, "room1", 4, "note", raw, v2, &opened, &checked, &err) < 0);
    CHECK_INT(srv_unseal_legacy(NULL, "room1", 4, "consent", raw, v2, &opened, NULL, &err),
              -ATT_ERR_NOT_FOUND);
    size_t v1 = raw_seal(0x01, 0, &data_key, "room1", 5, NULL, json, n, raw);
    CHECK(srv_unseal(&data_key, "room1", 5, "consent", raw, v1, &opened, &err) < 0);
    CHECK_INT(srv_unseal_legacy(&data_key, "room1", 5, NULL, raw, v1, &opened, &checked, &err), 0);
    CHECK_INT(checked, 0);
    CHECK_STR((const char *)opened.data, json);
    /* a current seal is not the migration's business */
    srv_seal_buf v3 = {0};
    CHECK_INT(srv_seal(&data_key, "room1", 6, "consent", json, n, &v3, &err), 0);
    CHECK(srv_unseal_legacy(&data_key, "room1", 6, "consent", v3.data, v3.len, &opened, NULL,
                            &err) < 0);
    srv_seal_buf_free(&v3);
    srv_seal_buf_free(&opened);

    /* data.key: never created, read when there, destroyed on request */
    srv_seal_key loaded;
    char path[600];
    snprintf(path, sizeof path, "%s/data.key", dir);
    CHECK_INT(srv_legacy_key_load(dir, &loaded, &err), -ATT_ERR_NOT_FOUND);
    CHECK(access(path, F_OK) != 0);
    CHECK_INT(srv_legacy_key_destroy(dir, &err), 0);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    fprintf(f, "%064d\n", 7);
    fclose(f);
    CHECK_INT(chmod(path, 0600), 0);
    CHECK_INT(srv_legacy_key_load(dir, &loaded, &err), 0);
    CHECK_INT(loaded.bytes[31], 7);
    CHECK_INT(srv_legacy_key_destroy(dir, &err), 0);
    CHECK(access(path, F_OK) != 0);
}

/* Through the store, under a keyring whose KEK is beside the data
 * directory (DIR.kek). */
static void through_the_store(const char *dir)
{
    att_error err = {0};
    const char *plain = "{\"type\":\"turn\",\"input\":{\"what_happened\":\"SECRET-PHI words\"}}";
    srv_keyring *keys = NULL;
    srv_store *s = NULL;
    CHECK_INT(srv_keyring_open(dir, NULL, 1, &keys, &err), 0);
    CHECK_INT(srv_store_open(dir, keys, &s, &err), 0);
    srv_store_room room = {.id = "roomS", .exercise = "enactment", .created_at = 1};
    srv_store_room other = {.id = "roomT", .exercise = "enactment", .created_at = 2};
    CHECK_INT(srv_store_create_room(s, &room, plain, strlen(plain), &err), 0);
    CHECK_INT(srv_store_create_room(s, &other, "{\"x\":1}", 7, &err), 0);
    /* a second creation of the same id fails and leaves the room's key */
    CHECK_INT(srv_store_create_room(s, &room, "{}", 2, &err), -ATT_ERR_BAD_MESSAGE);
    char back[256] = "";
    CHECK_INT(srv_store_walk_events(s, "roomS", 0, -1, 0, collect_text, back, &err),
              SRV_WALK_CONTINUE);
    char want[300];
    snprintf(want, sizeof want, "room_created|%s", plain);
    CHECK_STR(back, want);
    /* each room its own key */
    srv_seal_key ks, kt;
    CHECK_INT(srv_keyring_room_key(keys, "roomS", &ks, &err), 0);
    CHECK_INT(srv_keyring_room_key(keys, "roomT", &kt, &err), 0);
    CHECK(memcmp(ks.bytes, kt.bytes, sizeof ks.bytes) != 0);
    /* a room with no events needs no key */
    CHECK_INT(srv_store_walk_events(s, "nobody", 0, -1, 0, collect_text, back, &err),
              SRV_WALK_CONTINUE);
    srv_store_close(s);
    s = NULL;

    char path[600];
    snprintf(path, sizeof path, "%s/attune.db", dir);
    CHECK(!file_contains(path, "SECRET-PHI"));
    snprintf(path, sizeof path, "%s/attune.db-wal", dir);
    CHECK(!file_contains(path, "SECRET-PHI"));
    snprintf(path, sizeof path, "%s/data.key", dir);
    CHECK(access(path, F_OK) != 0); /* never made */

    /* Written into the database behind the store's back: a plaintext
     * event, and roomT's first event copied over roomS's. */
    sqlite3 *db = NULL;
    snprintf(path, sizeof path, "%s/attune.db", dir);
    CHECK_INT(sqlite3_open(path, &db), SQLITE_OK);
    CHECK_INT(sqlite3_exec(db,
                           "INSERT INTO events (room, seq, type, payload) VALUES ('roomS', 2, "
                           "'note', CAST('{\"type\":\"note\",\"text\":\"forged\"}' AS BLOB))",
                           NULL, NULL, NULL),
              SQLITE_OK);
    CHECK_INT(srv_store_open(dir, keys, &s, &err), 0);
    CHECK_INT(srv_store_walk_events(s, "roomS", 0, -1, 0, collect_text, back, &err),
              SRV_WALK_FAILED);
    /* refused by the seal (srv_unseal: "plaintext") or, first, by the
     * room's hash chain (chain.h), whichever the walk checks first */
    CHECK_MSG(strstr(err.message, "plaintext") || strstr(err.message, "chain"), "%s", err.message);
    CHECK(strstr(err.message, "forged") == NULL);
    CHECK_INT(srv_store_walk_events(s, "roomS", 0, 1, 0, collect_text, back, &err),
              SRV_WALK_CONTINUE);
    srv_store_close(s);
    CHECK_INT(sqlite3_exec(db,
                           "UPDATE events SET payload = (SELECT payload FROM events WHERE room = "
                           "'roomT' AND seq = 1) WHERE room = 'roomS' AND seq = 1",
                           NULL, NULL, NULL),
              SQLITE_OK);
    CHECK_INT(srv_store_open(dir, keys, &s, &err), 0);
    CHECK_INT(srv_store_walk_events(s, "roomS", 0, 1, 0, collect_text, back, &err),
              SRV_WALK_FAILED);
    /* roomT's key erased: its events walk as FAILED, NOT_FOUND, no crash */
    CHECK_INT(srv_keyring_erase_room(keys, "roomT", &err), 0);
    err.code = 0;
    CHECK_INT(srv_store_walk_events(s, "roomT", 0, -1, 0, collect_text, back, &err),
              SRV_WALK_FAILED);
    CHECK_INT(err.code, ATT_ERR_NOT_FOUND);
    CHECK(strstr(err.message, "no data key") != NULL);
    srv_store_close(s);
    sqlite3_close(db);
    srv_keyring_close(keys);
}

int main(void)
{
    char root[] = "/tmp/attune-seal-XXXXXX";
    CHECK(mkdtemp(root) != NULL);
    char dir[300];
    snprintf(dir, sizeof dir, "%s/data", root);
    CHECK_INT(mkdir(dir, 0700), 0);

    buckets();
    seal_and_open();
    padding_hides_length();
    bad_padding_refused();
    legacy_formats(dir);
    through_the_store(dir);

    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", root);
    CHECK(system(cmd) == 0);
    return check_done("seal");
}
