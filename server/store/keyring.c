/* keyring.c - the KEK, the wrapped keys of DATA/keys.db and the cache of
 * unwrapped room keys (see keyring.h).
 *
 * Wrapping: AES-256-GCM under a wrapping key derived from the KEK
 * (HMAC-SHA256(KEK, "attune kek wrap v1")), so the KEK itself keys nothing
 * but that derivation. A wrapped key is version (1) | nonce (12) |
 * ciphertext (32) | tag (16); the associated data is "room:" ROOM or
 * "service:" NAME, a NUL, then the wrapping KEK's id, so a wrapped key
 * copied to another room's row, or relabelled with another KEK's id, does
 * not open.
 *
 * The cache: every room key is unwrapped once, at open (20,000 rooms take
 * some tens of milliseconds), into an open-addressing hash table (linear
 * probing, backward-shift deletion, so erase leaves no tombstones); a
 * lookup is one hash probe under the mutex. A room whose key another
 * process made after this one opened is read from keys.db on its first
 * miss and cached then. */
#include "keyring.h"
#include "clock.h"
#include "log.h"
#include "random.h"
#include "room_id.h"
#include "schema.h"
#include "token.h"
#include "pg.h"
#include "b64url.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

_Static_assert(SRV_KEY_FILE_BYTES == SRV_SEAL_KEY_BYTES, "a KEK file holds one 32-byte key");

#define WRAP_VERSION 0x01
#define WRAP_NONCE 12
#define WRAP_TAG 16
#define WRAPPED_BYTES (1 + WRAP_NONCE + SRV_SEAL_KEY_BYTES + WRAP_TAG)
/* Service key names: short lowercase words ("audit"). */
#define SERVICE_NAME_MAX 32
/* keys.db waits this long for another process's write (a rotation). */
#define BUSY_TIMEOUT_MS 10000

/* The one KEK loaded, with what is derived from it. */
typedef struct {
    unsigned char kek[SRV_KEY_FILE_BYTES];
    unsigned char wrap_key[32];
    char id[SRV_KEK_ID_CHARS + 1];
} kek_state;

typedef struct {
    char room[SRV_ROOM_ID_MAX + 1]; /* "" = empty slot */
    unsigned char key[SRV_SEAL_KEY_BYTES];
} room_slot;

struct srv_keyring {
    pthread_mutex_t lock;
    sqlite3 *db; /* keys.db, or NULL with PostgreSQL */
    srv_pg *pg;  /* the PostgreSQL connection, or NULL with keys.db */
    char data_dir[PATH_MAX];
    char kek_path[PATH_MAX];
    kek_state kek;
    room_slot *slots; /* cap slots, cap a power of two, at most 3/4 full */
    size_t cap, count;
};

/* ---- the KEK ---- */

/* The KEK's id (SHA-256 of a label and the KEK, first 8 bytes in hex) and
 * the wrapping key (HMAC-SHA256 of a label under the KEK). */
static int kek_derive(kek_state *k, att_error *err)
{
    unsigned char digest[32];
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    static const char id_label[] = "attune kek id v1";
    unsigned int dlen = 0;
    int ok = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) &&
             EVP_DigestUpdate(md, id_label, sizeof id_label - 1) &&
             EVP_DigestUpdate(md, k->kek, sizeof k->kek) && EVP_DigestFinal_ex(md, digest, &dlen) &&
             dlen == sizeof digest;
    EVP_MD_CTX_free(md);
    static const char wrap_label[] = "attune kek wrap v1";
    unsigned int wlen = 0;
    ok = ok &&
         HMAC(EVP_sha256(), k->kek, (int)sizeof k->kek, (const unsigned char *)wrap_label,
              sizeof wrap_label - 1, k->wrap_key, &wlen) &&
         wlen == sizeof k->wrap_key;
    if (!ok) {
        OPENSSL_cleanse(k, sizeof *k);
        return att_fail(err, ATT_ERR_INTERNAL, "keyring: cannot derive from the KEK (OpenSSL)");
    }
    srv_hex_encode(digest, SRV_KEK_ID_CHARS / 2, k->id);
    return 0;
}

static void kek_wipe(kek_state *k)
{
    OPENSSL_cleanse(k, sizeof *k);
}

/* 0 when real_dir is real_data or lies under it. */
static int path_inside(const char *real_dir, const char *real_data)
{
    size_t n = strlen(real_data);
    if (n == 1 && real_data[0] == '/')
        return 1;
    return strncmp(real_dir, real_data, n) == 0 && (real_dir[n] == '\0' || real_dir[n] == '/');
}

/* Refuses a KEK path inside the data directory (both resolved, the KEK
 * file's directory since the file may not exist yet). */
static int kek_path_check(const char *data_dir, const char *kek_path, att_error *err)
{
    char real_data[PATH_MAX], dir[PATH_MAX], real_dir[PATH_MAX];
    if (!realpath(data_dir, real_data))
        return att_fail(err, ATT_ERR_INTERNAL, "keyring: cannot resolve %s: %s", data_dir,
                        strerror(errno));
    if (snprintf(dir, sizeof dir, "%s", kek_path) >= (int)sizeof dir)
        return att_fail(err, ATT_ERR_INTERNAL, "keyring: KEK path too long");
    char *slash = strrchr(dir, '/');
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (slash == dir)
        dir[1] = '\0';
    else
        *slash = '\0';
    if (!realpath(dir, real_dir))
        return att_fail(err, ATT_ERR_INTERNAL, "keyring: cannot resolve the directory of %s: %s",
                        kek_path, strerror(errno));
    if (path_inside(real_dir, real_data))
        return att_fail(err, ATT_ERR_INTERNAL,
                        "keyring: the key-encryption key must live outside the data "
                        "directory (it is %s)",
                        kek_path);
    return 0;
}

/* Reads a KEK file into k. NOT_FOUND when it does not exist. */
static int kek_read(const char *path, kek_state *k, att_error *err)
{
    int rc = srv_key_file_read(path, k->kek, err);
    if (rc < 0) {
        kek_wipe(k);
        return rc;
    }
    return kek_derive(k, err);
}

int srv_kek_default_path(const char *data_dir, char *out, size_t out_size, att_error *err)
{
    const char *creds = getenv("CREDENTIALS_DIRECTORY");
    if (creds && creds[0]) {
        if (snprintf(out, out_size, "%s/%s", creds, SRV_KEK_CREDENTIAL) >= (int)out_size)
            return att_fail(err, ATT_ERR_INTERNAL, "keyring: KEK path too long");
        return 0;
    }
    char dir[PATH_MAX];
    if (snprintf(dir, sizeof dir, "%s", data_dir) >= (int)sizeof dir)
        return att_fail(err, ATT_ERR_INTERNAL, "keyring: data directory path too long");
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/')
        dir[--n] = '\0';
    const char *base = strrchr(dir, '/');
    base = base ? base + 1 : dir;
    /* "." or ".." (or "/") name no sibling: use the resolved path. */
    if (!base[0] || strcmp(base, ".") == 0 || strcmp(base, "..") == 0) {
        char real[PATH_MAX];
        if (!realpath(dir, real))
            return att_fail(err, ATT_ERR_INTERNAL, "keyring: cannot resolve %s: %s", data_dir,
                            strerror(errno));
        if (strcmp(real, "/") == 0)
            return att_fail(err, ATT_ERR_INTERNAL,
                            "keyring: the data directory is /; give --kek-file");
        snprintf(dir, sizeof dir, "%s", real);
    }
    if (snprintf(out, out_size, "%s.kek", dir) >= (int)out_size)
        return att_fail(err, ATT_ERR_INTERNAL, "keyring: KEK path too long");
    return 0;
}

/* ---- wrapping ---- */

/* The associated data: "room:" ROOM or "service:" NAME, NUL, the KEK id. */
static size_t wrap_aad(const char *kind, const char *name, const char *kek_id, unsigned char *out,
                       size_t out_size)
{
    int n = snprintf((char *)out, out_size, "%s:%s", kind, name);
    if (n < 0 || (size_t)n + 1 + SRV_KEK_ID_CHARS > out_size)
        return 0;
    out[n] = '\0';
    memcpy(out + n + 1, kek_id, SRV_KEK_ID_CHARS);
    return (size_t)n + 1 + SRV_KEK_ID_CHARS;
}

static int wrap_key(const kek_state *k, const char *kind, const char *name,
                    const unsigned char key[SRV_SEAL_KEY_BYTES], unsigned char out[WRAPPED_BYTES],
                    att_error *err)
{
    unsigned char aad[16 + SRV_ROOM_ID_MAX + SRV_KEK_ID_CHARS];
    size_t aad_len = wrap_aad(kind, name, k->id, aad, sizeof aad);
    if (!aad_len)
        return att_fail(err, ATT_ERR_INTERNAL, "keyring: name too long");
    out[0] = WRAP_VERSION;
    if (srv_random_bytes(out + 1, WRAP_NONCE, err) < 0)
        return -ATT_ERR_INTERNAL;
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int len = 0, fin = 0;
    int ok = c && EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, k->wrap_key, out + 1) &&
             EVP_EncryptUpdate(c, NULL, &len, aad, (int)aad_len) &&
             EVP_EncryptUpdate(c, out + 1 + WRAP_NONCE, &len, key, SRV_SEAL_KEY_BYTES) &&
             EVP_EncryptFinal_ex(c, out + 1 + WRAP_NONCE + len, &fin) &&
             EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, WRAP_TAG,
                                 out + 1 + WRAP_NONCE + SRV_SEAL_KEY_BYTES);
    EVP_CIPHER_CTX_free(c);
    if (!ok)
        return att_fail(err, ATT_ERR_INTERNAL, "keyring: wrapping failed");
    return 0;
}

static int unwrap_key(const kek_state *k, const char *kind, const char *name,
                      const unsigned char *wrapped, size_t wrapped_len,
                      unsigned char key[SRV_SEAL_KEY_BYTES], att_error *err)
{
    if (wrapped_len != WRAPPED_BYTES || wrapped[0] != WRAP_VERSION)
        return att_fail(err, ATT_ERR_INTERNAL, "keyring: the stored key of %s %s is malformed",
                        kind, name);
    unsigned char aad[16 + SRV_ROOM_ID_MAX + SRV_KEK_ID_CHARS];
    size_t aad_len = wrap_aad(kind, name, k->id, aad, sizeof aad);
    if (!aad_len)
        return att_fail(err, ATT_ERR_INTERNAL, "keyring: name too long");
    unsigned char tag[WRAP_TAG];
    memcpy(tag, wrapped + 1 + WRAP_NONCE + SRV_SEAL_KEY_BYTES, WRAP_TAG);
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int len = 0, fin = 0;
    int ok = c && EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, k->wrap_key, wrapped + 1) &&
             EVP_DecryptUpdate(c, NULL, &len, aad, (int)aad_len) &&
             EVP_DecryptUpdate(c, key, &len, wrapped + 1 + WRAP_NONCE, SRV_SEAL_KEY_BYTES) &&
             EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, WRAP_TAG, tag) &&
             EVP_DecryptFinal_ex(c, key + len, &fin) > 0;
    EVP_CIPHER_CTX_free(c);
    if (!ok) {
        OPENSSL_cleanse(key, SRV_SEAL_KEY_BYTES);
        return att_fail(err, ATT_ERR_INTERNAL,
                        "keyring: the stored key of %s %s does not open under KEK %s "
                        "(tampered with, or wrapped by another KEK)",
                        kind, name, k->id);
    }
    return 0;
}

/* ---- the cache ---- */

static uint64_t room_hash(const char *room)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)room; *p; p++)
        h = (h ^ *p) * 1099511628211ULL;
    return h;
}

static room_slot *cache_find(const srv_keyring *k, const char *room)
{
    if (!k->cap)
        return NULL;
    size_t mask = k->cap - 1;
    for (size_t i = room_hash(room) & mask;; i = (i + 1) & mask) {
        if (!k->slots[i].room[0])
            return NULL;
        if (strcmp(k->slots[i].room, room) == 0)
            return &k->slots[i];
    }
}

static int cache_grow(srv_keyring *k, att_error *err)
{
    size_t cap = k->cap ? k->cap * 2 : 1024;
    room_slot *slots = calloc(cap, sizeof *slots);
    if (!slots)
        return att_fail(err, ATT_ERR_INTERNAL, "keyring: out of memory");
    for (size_t j = 0; j < k->cap; j++) {
        if (!k->slots[j].room[0])
            continue;
        size_t i = room_hash(k->slots[j].room) & (cap - 1);
        while (slots[i].room[0])
            i = (i + 1) & (cap - 1);
        slots[i] = k->slots[j];
    }
    if (k->slots) {
        OPENSSL_cleanse(k->slots, k->cap * sizeof *k->slots);
        free(k->slots);
    }
    k->slots = slots;
    k->cap = cap;
    return 0;
}

static int cache_put(srv_keyring *k, const char *room, const unsigned char key[SRV_SEAL_KEY_BYTES],
                     att_error *err)
{
    room_slot *s = cache_find(k, room);
    if (s) {
        memcpy(s->key, key, SRV_SEAL_KEY_BYTES);
        return 0;
    }
    if ((k->count + 1) * 4 > k->cap * 3 && cache_grow(k, err) < 0)
        return -ATT_ERR_INTERNAL;
    size_t mask = k->cap - 1;
    size_t i = room_hash(room) & mask;
    while (k->slots[i].room[0])
        i = (i + 1) & mask;
    snprintf(k->slots[i].room, sizeof k->slots[i].room, "%s", room);
    memcpy(k->slots[i].key, key, SRV_SEAL_KEY_BYTES);
    k->count++;
    return 0;
}

/* Removes the room's slot, wiping it, and shifts back the run after it so
 * that every key stays reachable from its home slot. */
static void cache_remove(srv_keyring *k, const char *room)
{
    room_slot *s = cache_find(k, room);
    if (!s)
        return;
    size_t mask = k->cap - 1;
    size_t hole = (size_t)(s - k->slots);
    OPENSSL_cleanse(s, sizeof *s);
    k->count--;
    for (size_t i = (hole + 1) & mask; k->slots[i].room[0]; i = (i + 1) & mask) {
        size_t home = room_hash(k->slots[i].room) & mask;
        /* the entry at i may move to the hole when its home is not in
         * (hole, i] (cyclically) */
        int stays = hole < i ? (home > hole && home <= i) : (home > hole || home <= i);
        if (stays)
            continue;
        k->slots[hole] = k->slots[i];
        OPENSSL_cleanse(&k->slots[i], sizeof k->slots[i]);
        hole = i;
    }
}

/* ---- keys.db ---- */

static const char *const keys_steps[] = {
    /* 0 -> 1: the wrapped keys and the id of the KEK that wrapped them. */
    "CREATE TABLE IF NOT EXISTS room_keys ("
    "  room TEXT PRIMARY KEY,"
    "  kek_id TEXT NOT NULL,"
    "  wrapped BLOB NOT NULL,"
    "  created_at INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS service_keys ("
    "  name TEXT PRIMARY KEY,"
    "  kek_id TEXT NOT NULL,"
    "  wrapped BLOB NOT NULL,"
    "  created_at INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS keyring_meta ("
    "  key TEXT PRIMARY KEY,"
    "  value TEXT NOT NULL);",
};

static int db_fail(att_error *err, sqlite3 *db, const char *what)
{
    return att_fail(err, ATT_ERR_INTERNAL, "keyring: %s: %s", what, sqlite3_errmsg(db));
}

static int exec(sqlite3 *db, const char *sql, att_error *err)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        att_fail(err, ATT_ERR_INTERNAL, "keyring: %s", msg ? msg : "exec failed");
        sqlite3_free(msg);
        return -ATT_ERR_INTERNAL;
    }
    return 0;
}

static void rollback(sqlite3 *db)
{
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
}

static int keys_db_open(const char *data_dir, sqlite3 **out, att_error *err)
{
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s/keys.db", data_dir) >= (int)sizeof path)
        return att_fail(err, ATT_ERR_INTERNAL, "keyring: path too long");
    /* Created 0600 before SQLite sees it; its journal takes the same mode. */
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return att_fail(err, ATT_ERR_INTERNAL, "keyring: cannot open %s: %s", path,
                        strerror(errno));
    close(fd);
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
        SQLITE_OK) {
        int rc = db_fail(err, db, "open keys.db");
        sqlite3_close(db);
        return rc;
    }
    sqlite3_busy_timeout(db, BUSY_TIMEOUT_MS);
    /* Rollback journal (no WAL keeping old pages), every commit synced,
     * freed pages zeroed: an erased key's bytes leave the file. */
    if (exec(db, "PRAGMA journal_mode=DELETE; PRAGMA synchronous=FULL; PRAGMA secure_delete=ON;",
             err) < 0 ||
        srv_schema_migrate(db, "keys", keys_steps, (int)(sizeof keys_steps / sizeof keys_steps[0]),
                           err) < 0) {
        sqlite3_close(db);
        return -ATT_ERR_INTERNAL;
    }
    *out = db;
    return 0;
}

/* The KEK id keys.db records ("" when none yet). */
static int meta_kek_id(sqlite3 *db, char out[SRV_KEK_ID_CHARS + 1], att_error *err)
{
    sqlite3_stmt *st = NULL;
    out[0] = '\0';
    if (sqlite3_prepare_v2(db, "SELECT value FROM keyring_meta WHERE key = 'kek_id'", -1, &st,
                           NULL) != SQLITE_OK)
        return db_fail(err, db, "read kek id");
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const unsigned char *v = sqlite3_column_text(st, 0);
        snprintf(out, SRV_KEK_ID_CHARS + 1, "%s", v ? (const char *)v : "");
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return db_fail(err, db, "read kek id");
    return 0;
}

static int meta_set_kek_id(sqlite3 *db, const char *id, att_error *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db,
                           "INSERT INTO keyring_meta (key, value) VALUES ('kek_id', ?1)"
                           " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                           -1, &st, NULL) != SQLITE_OK)
        return db_fail(err, db, "write kek id");
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : db_fail(err, db, "write kek id");
}

/* How many wrapped keys keys.db holds (rooms and services). */
static int64_t stored_key_count(sqlite3 *db, att_error *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db,
                           "SELECT (SELECT count(*) FROM room_keys) +"
                           " (SELECT count(*) FROM service_keys)",
                           -1, &st, NULL) != SQLITE_OK)
        return db_fail(err, db, "count keys");
    int64_t n = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
    sqlite3_finalize(st);
    return n < 0 ? db_fail(err, db, "count keys") : n;
}

/* The file a rotation writes the new KEK to before it commits. */
static int new_kek_path(const char *kek_path, char *out, size_t out_size, att_error *err)
{
    if (snprintf(out, out_size, "%s.new", kek_path) >= (int)out_size)
        return att_fail(err, ATT_ERR_INTERNAL, "keyring: KEK path too long");
    return 0;
}

/* Loads the KEK that wrapped keys.db's keys into *kek: kek_path's, or,
 * when keys.db names the one a rotation left in kek_path.new (the rotation
 * committed but did not get to rename it), that one; with finish_rename
 * the rename is finished here (open), without it (a running server
 * reloading) the rotation's own process is left to do it. want_id is
 * keys.db's KEK id ("" when it has none). */
static int kek_load_matching(const char *kek_path, const char *want_id, int finish_rename,
                             kek_state *kek, att_error *err)
{
    int rc = kek_read(kek_path, kek, err);
    if (rc < 0 && rc != -ATT_ERR_NOT_FOUND)
        return rc;
    if (rc == 0 && (!want_id[0] || strcmp(kek->id, want_id) == 0))
        return 0;
    char pending[PATH_MAX];
    if (new_kek_path(kek_path, pending, sizeof pending, err) < 0)
        return -ATT_ERR_INTERNAL;
    kek_state next;
    att_error next_err = {0};
    if (want_id[0] && kek_read(pending, &next, &next_err) == 0 && strcmp(next.id, want_id) == 0) {
        if (finish_rename) {
            if (rename(pending, kek_path) != 0) {
                kek_wipe(&next);
                return att_fail(err, ATT_ERR_INTERNAL,
                                "keyring: cannot finish a rotation (rename %s): %s", pending,
                                strerror(errno));
            }
            if (srv_key_file_sync_dir(kek_path, err) < 0) {
                kek_wipe(&next);
                return -ATT_ERR_INTERNAL;
            }
        }
        kek_wipe(kek);
        *kek = next;
        kek_wipe(&next);
        return 0;
    }
    kek_wipe(&next);
    if (rc == -ATT_ERR_NOT_FOUND)
        return rc; /* err names the missing file */
    att_fail(err, ATT_ERR_INTERNAL,
             "keyring: KEK %s did not wrap the keys of keys.db (they need KEK %s); file %s",
             kek->id, want_id, kek_path);
    kek_wipe(kek);
    return -ATT_ERR_INTERNAL;
}

static int load_room_keys(srv_keyring *k, att_error *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(k->db, "SELECT room, wrapped FROM room_keys", -1, &st, NULL) !=
        SQLITE_OK)
        return db_fail(err, k->db, "read room keys");
    int rc;
    int result = 0;
    while (result == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *room = (const char *)sqlite3_column_text(st, 0);
        const unsigned char *w = sqlite3_column_blob(st, 1);
        size_t wlen = (size_t)sqlite3_column_bytes(st, 1);
        unsigned char key[SRV_SEAL_KEY_BYTES];
        att_error why = {0};
        if (!room || !srv_room_id_valid(room)) {
            result = att_fail(err, ATT_ERR_INTERNAL, "keyring: keys.db holds a bad room id");
        } else if (unwrap_key(&k->kek, "room", room, w, wlen, key, &why) == 0) {
            result = cache_put(k, room, key, err);
        } else {
            /* The KEK is the right one (keys.db names it), so this row was
             * damaged or tampered with: that room cannot be opened (its
             * lookups fail saying so), every other room still can. */
            srv_log("error", "room_key_unreadable", "{s:s,s:s}", "room", room, "error",
                    why.message);
        }
        OPENSSL_cleanse(key, sizeof key);
    }
    if (result == 0 && rc != SQLITE_DONE)
        result = db_fail(err, k->db, "read room keys");
    sqlite3_finalize(st);
    return result;
}

void srv_keyring_close(srv_keyring *k)
{
    if (!k)
        return;
    sqlite3_close(k->db);
    srv_pg_close(k->pg);
    if (k->slots) {
        OPENSSL_cleanse(k->slots, k->cap * sizeof *k->slots);
        free(k->slots);
    }
    kek_wipe(&k->kek);
    pthread_mutex_destroy(&k->lock);
    OPENSSL_cleanse(k, sizeof *k);
    free(k);
}

/* Opens keys.db and loads the matching KEK into k (no cache yet). */
static int keyring_load(srv_keyring *k, const char *data_dir, const char *kek_file,
                        int allow_create, att_error *err)
{
    if (snprintf(k->data_dir, sizeof k->data_dir, "%s", data_dir) >= (int)sizeof k->data_dir)
        return att_fail(err, ATT_ERR_INTERNAL, "keyring: data directory path too long");
    if (kek_file) {
        if (snprintf(k->kek_path, sizeof k->kek_path, "%s", kek_file) >= (int)sizeof k->kek_path)
            return att_fail(err, ATT_ERR_INTERNAL, "keyring: KEK path too long");
    } else if (srv_kek_default_path(data_dir, k->kek_path, sizeof k->kek_path, err) < 0) {
        return -ATT_ERR_INTERNAL;
    }
    if (mkdir(data_dir, 0700) != 0 && errno != EEXIST)
        return att_fail(err, ATT_ERR_INTERNAL, "keyring: cannot create %s: %s", data_dir,
                        strerror(errno));
    if (kek_path_check(data_dir, k->kek_path, err) < 0 || keys_db_open(data_dir, &k->db, err) < 0)
        return -ATT_ERR_INTERNAL;
    /* Under the write lock: two processes opening a new data directory at
     * once create one KEK, and a rotation is either wholly before or
     * wholly after what is read here. */
    if (exec(k->db, "BEGIN IMMEDIATE", err) < 0)
        return -ATT_ERR_INTERNAL;
    char want[SRV_KEK_ID_CHARS + 1];
    int64_t n_keys = 0;
    int rc = meta_kek_id(k->db, want, err);
    if (rc == 0 && (n_keys = stored_key_count(k->db, err)) < 0)
        rc = (int)n_keys;
    if (rc == 0 && n_keys == 0)
        want[0] = '\0'; /* nothing wrapped yet: any KEK fits */
    if (rc == 0)
        rc = kek_load_matching(k->kek_path, want, 1, &k->kek, err);
    if (rc == -ATT_ERR_NOT_FOUND) {
        if (allow_create && n_keys == 0) {
            rc = srv_random_bytes(k->kek.kek, sizeof k->kek.kek, err);
            if (rc == 0)
                rc = srv_key_file_create(k->kek_path, k->kek.kek, err);
            if (rc == 1) /* another process made it first: use theirs */
                rc = kek_read(k->kek_path, &k->kek, err);
            else if (rc == 0)
                rc = kek_derive(&k->kek, err);
        } else {
            rc = att_fail(err, ATT_ERR_INTERNAL,
                          "keyring: no key-encryption key at %s; without it nothing in the data "
                          "directory can be read",
                          k->kek_path);
        }
    }
    if (rc == 0) {
        char stored[SRV_KEK_ID_CHARS + 1];
        rc = meta_kek_id(k->db, stored, err);
        if (rc == 0 && strcmp(stored, k->kek.id) != 0)
            rc = meta_set_kek_id(k->db, k->kek.id, err);
    }
    if (rc < 0) {
        rollback(k->db);
        return rc;
    }
    return exec(k->db, "COMMIT", err);
}

int srv_keyring_open(const char *data_dir, const char *kek_file, int allow_create,
                     srv_keyring **out, att_error *err)
{
    srv_keyring *k = calloc(1, sizeof *k);
    if (!k)
        return att_fail(err, ATT_ERR_INTERNAL, "keyring: out of memory");
    pthread_mutex_init(&k->lock, NULL);
    int rc = keyring_load(k, data_dir, kek_file, allow_create, err);
    if (rc == 0)
        rc = load_room_keys(k, err);
    if (rc < 0) {
        srv_keyring_close(k);
        return rc;
    }
    *out = k;
    return 0;
}

void srv_keyring_kek_id(const srv_keyring *k, char out[SRV_KEK_ID_CHARS + 1])
{
    /* The id only changes under the lock (a reload); reading it unlocked
     * from another thread could tear, so copy it under the lock. */
    pthread_mutex_lock((pthread_mutex_t *)&k->lock);
    memcpy(out, k->kek.id, SRV_KEK_ID_CHARS + 1);
    pthread_mutex_unlock((pthread_mutex_t *)&k->lock);
}

/* Under the lock, inside a write transaction: makes sure the loaded KEK is
 * the one keys.db names (a rotation may have run since the open), reloading
 * the KEK file when it is not. */
static int pg_meta_kek_id(srv_keyring *k, const char *lock, char out[SRV_KEK_ID_CHARS + 1],
                          att_error *err);

static int kek_current(srv_keyring *k, att_error *err)
{
    char want[SRV_KEK_ID_CHARS + 1];
    if ((k->pg ? pg_meta_kek_id(k, " FOR SHARE", want, err) : meta_kek_id(k->db, want, err)) < 0)
        return -ATT_ERR_INTERNAL;
    if (!want[0] || strcmp(want, k->kek.id) == 0)
        return 0;
    kek_state fresh;
    att_error load_err = {0};
    if (kek_load_matching(k->kek_path, want, 0, &fresh, &load_err) < 0)
        return att_fail(err, ATT_ERR_INTERNAL,
                        "keyring: keys.db is wrapped by KEK %s, not the loaded %s; restart with "
                        "the new key-encryption key",
                        want, k->kek.id);
    kek_wipe(&k->kek);
    k->kek = fresh;
    kek_wipe(&fresh);
    return 0;
}

static int valid_service_name(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > SERVICE_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= '0' && name[i] <= '9') ||
              name[i] == '_' || name[i] == '-'))
            return 0;
    return 1;
}

/* ---- PostgreSQL (srv_keyring_open_pg) ----
 *
 * The same three tables as keys.db, prefixed so they cannot clash with the
 * event store's in a shared database. Every node on the database holds the
 * same KEK, so every node unwraps the same rows. Writers order themselves
 * on the keyring_meta row: a key insert holds it FOR SHARE (inserts run
 * side by side), a rotation FOR UPDATE (it waits for them and they for
 * it), so a key is never wrapped under a KEK a committed rotation has
 * left. */

static const char pg_schema[] = "CREATE TABLE IF NOT EXISTS keyring_room_keys ("
                                "  room text PRIMARY KEY,"
                                "  kek_id text NOT NULL,"
                                "  wrapped bytea NOT NULL,"
                                "  created_at bigint NOT NULL);"
                                "CREATE TABLE IF NOT EXISTS keyring_service_keys ("
                                "  name text PRIMARY KEY,"
                                "  kek_id text NOT NULL,"
                                "  wrapped bytea NOT NULL,"
                                "  created_at bigint NOT NULL);"
                                "CREATE TABLE IF NOT EXISTS keyring_meta ("
                                "  key text PRIMARY KEY,"
                                "  value text NOT NULL);";

static int pg_sql(srv_keyring *k, const char *sql, int n, const char *const *params,
                  const int *lengths, const int *formats, PGresult **out, att_error *err)
{
    return srv_pg_exec(k->pg, sql, n, params, lengths, formats, out, err);
}

static void pg_rollback(srv_keyring *k)
{
    att_error ignored;
    pg_sql(k, "ROLLBACK", 0, NULL, NULL, NULL, NULL, &ignored);
}

/* lock: "" or " FOR SHARE" or " FOR UPDATE". */
static int pg_meta_kek_id(srv_keyring *k, const char *lock, char out[SRV_KEK_ID_CHARS + 1],
                          att_error *err)
{
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT value FROM keyring_meta WHERE key = 'kek_id'%s", lock);
    PGresult *r = NULL;
    out[0] = '\0';
    if (pg_sql(k, sql, 0, NULL, NULL, NULL, &r, err) < 0)
        return -ATT_ERR_INTERNAL;
    if (PQntuples(r) == 1)
        snprintf(out, SRV_KEK_ID_CHARS + 1, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    return 0;
}

/* Unescapes a bytea column (text format) into buf. */
static size_t pg_wrapped(const PGresult *r, int row, int col, unsigned char *buf, size_t cap)
{
    size_t len = 0;
    unsigned char *raw = PQunescapeBytea((const unsigned char *)PQgetvalue(r, row, col), &len);
    if (!raw)
        return 0;
    size_t n = len <= cap ? len : 0;
    if (n)
        memcpy(buf, raw, n);
    OPENSSL_cleanse(raw, len);
    PQfreemem(raw);
    return n;
}

static int pg_read_stored_key(srv_keyring *k, const char *kind, const char *name,
                              unsigned char key[SRV_SEAL_KEY_BYTES], att_error *err)
{
    const char *sql = strcmp(kind, "room") == 0
                          ? "SELECT kek_id, wrapped FROM keyring_room_keys WHERE room = $1"
                          : "SELECT kek_id, wrapped FROM keyring_service_keys WHERE name = $1";
    for (int attempt = 0; attempt < 2; attempt++) {
        PGresult *r = NULL;
        if (pg_sql(k, sql, 1, &name, NULL, NULL, &r, err) < 0)
            return -ATT_ERR_INTERNAL;
        if (PQntuples(r) != 1) {
            PQclear(r);
            return att_fail(err, ATT_ERR_NOT_FOUND, "keyring: %s %s has no key", kind, name);
        }
        int other_kek = strcmp(PQgetvalue(r, 0, 0), k->kek.id) != 0;
        unsigned char wrapped[WRAPPED_BYTES + 1];
        size_t wlen = pg_wrapped(r, 0, 1, wrapped, sizeof wrapped);
        PQclear(r);
        if (!other_kek)
            return unwrap_key(&k->kek, kind, name, wrapped, wlen, key, err);
        /* wrapped by a KEK a rotation (on any node) made after our open */
        if (attempt == 0 && kek_current(k, err) < 0)
            return -ATT_ERR_INTERNAL;
    }
    return att_fail(err, ATT_ERR_INTERNAL, "keyring: the key of %s %s names another KEK", kind,
                    name);
}

/* Inserts the wrapped key unless the name has one: 1 when inserted, 0
 * when another node's row was there first. Inside the caller's
 * transaction. */
static int pg_insert_wrapped(srv_keyring *k, const char *kind, const char *name,
                             const unsigned char wrapped[WRAPPED_BYTES], att_error *err)
{
    const char *sql = strcmp(kind, "room") == 0
                          ? "INSERT INTO keyring_room_keys (room, kek_id, wrapped, created_at)"
                            " VALUES ($1, $2, $3, $4) ON CONFLICT (room) DO NOTHING"
                          : "INSERT INTO keyring_service_keys (name, kek_id, wrapped, created_at)"
                            " VALUES ($1, $2, $3, $4) ON CONFLICT (name) DO NOTHING";
    char now[24];
    snprintf(now, sizeof now, "%lld", (long long)(srv_now_ms() / 1000));
    const char *params[4] = {name, k->kek.id, (const char *)wrapped, now};
    const int lengths[4] = {0, 0, WRAPPED_BYTES, 0};
    const int formats[4] = {0, 0, 1, 0};
    PGresult *r = NULL;
    if (pg_sql(k, sql, 4, params, lengths, formats, &r, err) < 0)
        return -ATT_ERR_INTERNAL;
    int inserted = strcmp(PQcmdTuples(r), "1") == 0;
    PQclear(r);
    return inserted;
}

/* BAD_MESSAGE when the name already has a key. */
static int pg_insert_key(srv_keyring *k, const char *kind, const char *name,
                         const unsigned char key[SRV_SEAL_KEY_BYTES], att_error *err)
{
    if (pg_sql(k, "BEGIN", 0, NULL, NULL, NULL, NULL, err) < 0)
        return -ATT_ERR_INTERNAL;
    unsigned char wrapped[WRAPPED_BYTES];
    int rc = kek_current(k, err);
    if (rc == 0)
        rc = wrap_key(&k->kek, kind, name, key, wrapped, err);
    if (rc == 0 && (rc = pg_insert_wrapped(k, kind, name, wrapped, err)) == 0)
        rc = att_fail(err, ATT_ERR_BAD_MESSAGE, "keyring: %s %s already has a key", kind, name);
    if (rc < 0) {
        pg_rollback(k);
        return rc;
    }
    return pg_sql(k, "COMMIT", 0, NULL, NULL, NULL, NULL, err);
}

/* Room keys are written PG_KEY_BATCH at a time: one INSERT over
 * unnest()ed arrays (room ids and hex), not one round trip per room (20,000
 * rooms: seconds, not minutes). Room ids are [A-Za-z0-9_-]: nothing an
 * array literal must quote. */
#define PG_KEY_BATCH 500

/* Appends name to an array literal being built at *len ("{a,b"). */
static void array_add(char *buf, size_t *len, const char *name, size_t name_len)
{
    char sep = *len == 0 ? '{' : ',';
    buf[(*len)++] = sep;
    memcpy(buf + *len, name, name_len);
    *len += name_len;
}

static void array_end(char *buf, size_t *len)
{
    if (*len == 0)
        buf[(*len)++] = '{';
    buf[(*len)++] = '}';
    buf[*len] = '\0';
}

/* One batch of pg_ensure_room_keys: the rooms cand[0..nc) with their new
 * keys in made[0..nc); those stored are moved to the front of made (in
 * order), their indexes into made_at; *stored: how many. */
static int pg_insert_room_batch(srv_keyring *k, const char *const *rooms, const size_t *cand,
                                size_t nc, srv_seal_key *made, size_t *made_at, size_t *stored,
                                char *names, char *hexes, att_error *err)
{
    *stored = 0;
    size_t nl = 0, hl = 0;
    int rc = 0;
    for (size_t c = 0; rc == 0 && c < nc; c++) {
        unsigned char wrapped[WRAPPED_BYTES];
        char hex[2 * WRAPPED_BYTES + 1];
        rc = wrap_key(&k->kek, "room", rooms[cand[c]], made[c].bytes, wrapped, err);
        if (rc == 0) {
            array_add(names, &nl, rooms[cand[c]], strlen(rooms[cand[c]]));
            srv_hex_encode(wrapped, WRAPPED_BYTES, hex);
            array_add(hexes, &hl, hex, 2 * WRAPPED_BYTES);
        }
    }
    if (rc < 0)
        return rc;
    array_end(names, &nl);
    array_end(hexes, &hl);
    char now[24];
    snprintf(now, sizeof now, "%lld", (long long)(srv_now_ms() / 1000));
    const char *params[4] = {k->kek.id, names, hexes, now};
    PGresult *r = NULL;
    if (pg_sql(k,
               "INSERT INTO keyring_room_keys (room, kek_id, wrapped, created_at)"
               " SELECT v.room, $1, decode(v.w, 'hex'), $4::bigint"
               " FROM unnest($2::text[], $3::text[]) AS v(room, w)"
               " ON CONFLICT (room) DO NOTHING RETURNING room",
               4, params, NULL, NULL, &r, err) < 0)
        return -ATT_ERR_INTERNAL;
    /* RETURNING names the rooms stored, in no promised order */
    unsigned char *was_stored = calloc(nc ? nc : 1, 1);
    if (!was_stored) {
        PQclear(r);
        return att_fail(err, ATT_ERR_INTERNAL, "keyring: out of memory");
    }
    for (int i = 0; i < PQntuples(r); i++) {
        const char *room = PQgetvalue(r, i, 0);
        for (size_t c = 0; c < nc; c++)
            if (!was_stored[c] && strcmp(rooms[cand[c]], room) == 0) {
                was_stored[c] = 1;
                break;
            }
    }
    PQclear(r);
    for (size_t c = 0; c < nc; c++) {
        if (!was_stored[c])
            continue;
        if (*stored != c)
            made[*stored] = made[c];
        made_at[(*stored)++] = cand[c];
    }
    if (*stored < nc)
        OPENSSL_cleanse(made + *stored, (nc - *stored) * sizeof *made);
    free(was_stored);
    return 0;
}

static int by_room_name(const void *a, const void *b)
{
    return strcmp(**(const char *const *const *)a, **(const char *const *const *)b);
}

/* ensure_room_keys on PostgreSQL: one transaction, ON CONFLICT DO NOTHING,
 * then the rooms another node keyed first are read back, so two nodes
 * ensuring one room at once end with the one key that was stored. The
 * rooms are inserted in name order whatever the caller's order: an insert
 * waits on another node's uncommitted row of the same room, so two nodes
 * ensuring the same rooms in two orders could otherwise deadlock. */
static int pg_ensure_room_keys(srv_keyring *k, const char *const *rooms, size_t n,
                               srv_seal_key *made, size_t *made_at, size_t *n_new, att_error *err)
{
    *n_new = 0;
    size_t names_cap = 3 + (size_t)PG_KEY_BATCH * (SRV_ROOM_ID_MAX + 1);
    size_t hex_cap = 3 + (size_t)PG_KEY_BATCH * (2 * WRAPPED_BYTES + 1);
    char *names = malloc(names_cap), *hexes = malloc(hex_cap);
    size_t *cand = malloc(PG_KEY_BATCH * sizeof *cand);
    const char *const **order = malloc((n ? n : 1) * sizeof *order);
    unsigned char *is_new = calloc(n ? n : 1, 1);
    if (!names || !hexes || !cand || !order || !is_new) {
        free(names);
        free(hexes);
        free(cand);
        free(order);
        free(is_new);
        return att_fail(err, ATT_ERR_INTERNAL, "keyring: out of memory");
    }
    for (size_t i = 0; i < n; i++)
        order[i] = &rooms[i];
    qsort(order, n, sizeof *order, by_room_name);
    int rc = pg_sql(k, "BEGIN", 0, NULL, NULL, NULL, NULL, err);
    if (rc == 0)
        rc = kek_current(k, err);
    for (size_t i = 0; rc == 0 && i < n;) {
        /* the next batch: rooms not cached, each with a new random key */
        size_t nc = 0;
        for (; rc == 0 && i < n && nc < PG_KEY_BATCH; i++) {
            size_t at = (size_t)(order[i] - rooms);
            if (cache_find(k, rooms[at]))
                continue;
            rc = srv_random_bytes(made[*n_new + nc].bytes, SRV_SEAL_KEY_BYTES, err);
            cand[nc++] = at;
        }
        size_t stored = 0;
        if (rc == 0 && nc > 0)
            rc = pg_insert_room_batch(k, rooms, cand, nc, made + *n_new, made_at + *n_new, &stored,
                                      names, hexes, err);
        *n_new += stored;
    }
    OPENSSL_cleanse(hexes, hex_cap);
    free(names);
    free(hexes);
    free(cand);
    free(order);
    if (rc < 0) {
        free(is_new);
        pg_rollback(k);
        return rc;
    }
    if (pg_sql(k, "COMMIT", 0, NULL, NULL, NULL, NULL, err) < 0) {
        free(is_new);
        return -ATT_ERR_INTERNAL;
    }
    /* rooms another node keyed first: their stored key, into the cache */
    for (size_t j = 0; j < *n_new; j++)
        is_new[made_at[j]] = 1;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (is_new[i] || cache_find(k, rooms[i]))
            continue;
        unsigned char key[SRV_SEAL_KEY_BYTES];
        rc = pg_read_stored_key(k, "room", rooms[i], key, err);
        if (rc == 0)
            rc = cache_put(k, rooms[i], key, err);
        OPENSSL_cleanse(key, sizeof key);
    }
    free(is_new);
    return rc;
}

/* DELETE is durable at its commit, but PostgreSQL has no secure_delete:
 * the deleted tuple (the wrapped key, never the key itself) stays in the
 * table's file until VACUUM frees its space and something overwrites it,
 * and it stays in the WAL, in base backups and on standbys until those
 * are recycled. So erase runs VACUUM on the table straight after (not in
 * a transaction: each statement here is its own); a VACUUM that fails is
 * logged, not returned, since the key is already gone from every reader.
 * What makes an old copy of the wrapped key useless is the KEK: rotate it
 * and destroy the old one (keyring.h). */
static int pg_erase_room(srv_keyring *k, const char *room, att_error *err)
{
    if (pg_sql(k, "DELETE FROM keyring_room_keys WHERE room = $1", 1, &room, NULL, NULL, NULL,
               err) < 0)
        return -ATT_ERR_INTERNAL;
    att_error why = {0};
    if (pg_sql(k, "VACUUM keyring_room_keys", 0, NULL, NULL, NULL, NULL, &why) < 0)
        srv_log("warn", "key_vacuum_failed", "{s:s}", "error", why.message);
    return 0;
}

static int pg_load_room_keys(srv_keyring *k, att_error *err)
{
    PGresult *r = NULL;
    if (pg_sql(k, "SELECT room, wrapped FROM keyring_room_keys", 0, NULL, NULL, NULL, &r, err) < 0)
        return -ATT_ERR_INTERNAL;
    int result = 0;
    for (int i = 0; result == 0 && i < PQntuples(r); i++) {
        const char *room = PQgetvalue(r, i, 0);
        unsigned char wrapped[WRAPPED_BYTES + 1], key[SRV_SEAL_KEY_BYTES];
        size_t wlen = pg_wrapped(r, i, 1, wrapped, sizeof wrapped);
        att_error why = {0};
        if (!srv_room_id_valid(room))
            result =
                att_fail(err, ATT_ERR_INTERNAL, "keyring: keyring_room_keys holds a bad room id");
        else if (unwrap_key(&k->kek, "room", room, wrapped, wlen, key, &why) == 0)
            result = cache_put(k, room, key, err);
        else
            srv_log("error", "room_key_unreadable", "{s:s,s:s}", "room", room, "error",
                    why.message);
        OPENSSL_cleanse(key, sizeof key);
    }
    PQclear(r);
    return result;
}

/* Opens the tables and loads the matching KEK and the room keys, in one
 * transaction that holds the meta row (a rotation on another node is
 * wholly before or after it) under an advisory lock (two nodes opening an
 * empty database at once agree on one KEK id). */
static int pg_keyring_load(srv_keyring *k, const char *uri, const char *kek_file, int allow_create,
                           att_error *err)
{
    if (!kek_file || !kek_file[0])
        return att_fail(err, ATT_ERR_INVALID_INPUT,
                        "keyring: with a PostgreSQL store the key-encryption key file must be "
                        "given (--kek-file FILE, the same KEK on every node)");
    if (snprintf(k->kek_path, sizeof k->kek_path, "%s", kek_file) >= (int)sizeof k->kek_path)
        return att_fail(err, ATT_ERR_INTERNAL, "keyring: KEK path too long");
    if (srv_pg_connect(uri, "attune-keyring", &k->pg, err) < 0 ||
        srv_pg_exec_script(k->pg, pg_schema, err) < 0 ||
        pg_sql(k, "BEGIN", 0, NULL, NULL, NULL, NULL, err) < 0)
        return -ATT_ERR_INTERNAL;
    /* 'keyring' as bytes: the key of the open's advisory lock */
    int rc = pg_sql(k, "SELECT pg_advisory_xact_lock(7666804926361725287)", 0, NULL, NULL, NULL,
                    NULL, err);
    char want[SRV_KEK_ID_CHARS + 1] = "";
    PGresult *r = NULL;
    long long n_keys = 0;
    if (rc == 0)
        rc = pg_meta_kek_id(k, " FOR UPDATE", want, err);
    if (rc == 0 && (rc = pg_sql(k,
                                "SELECT (SELECT count(*) FROM keyring_room_keys) +"
                                " (SELECT count(*) FROM keyring_service_keys)",
                                0, NULL, NULL, NULL, &r, err)) == 0) {
        n_keys = atoll(PQgetvalue(r, 0, 0));
        PQclear(r);
    }
    if (rc == 0 && n_keys == 0)
        want[0] = '\0';
    if (rc == 0)
        rc = kek_load_matching(k->kek_path, want, 1, &k->kek, err);
    if (rc == -ATT_ERR_NOT_FOUND) {
        if (allow_create && n_keys == 0) {
            rc = srv_random_bytes(k->kek.kek, sizeof k->kek.kek, err);
            if (rc == 0)
                rc = srv_key_file_create(k->kek_path, k->kek.kek, err);
            if (rc == 1)
                rc = kek_read(k->kek_path, &k->kek, err);
            else if (rc == 0)
                rc = kek_derive(&k->kek, err);
        } else {
            rc = att_fail(err, ATT_ERR_INTERNAL,
                          "keyring: no key-encryption key at %s; without it nothing in the "
                          "database can be read",
                          k->kek_path);
        }
    }
    if (rc == 0 && strcmp(want, k->kek.id) != 0) {
        const char *id = k->kek.id;
        rc = pg_sql(k,
                    "INSERT INTO keyring_meta (key, value) VALUES ('kek_id', $1)"
                    " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    1, &id, NULL, NULL, NULL, err);
    }
    if (rc == 0)
        rc = pg_load_room_keys(k, err);
    if (rc < 0) {
        pg_rollback(k);
        return rc;
    }
    return pg_sql(k, "COMMIT", 0, NULL, NULL, NULL, NULL, err);
}

int srv_keyring_open_pg(const char *uri, const char *kek_file, int allow_create, srv_keyring **out,
                        att_error *err)
{
    srv_keyring *k = calloc(1, sizeof *k);
    if (!k)
        return att_fail(err, ATT_ERR_INTERNAL, "keyring: out of memory");
    pthread_mutex_init(&k->lock, NULL);
    int rc = pg_keyring_load(k, uri, kek_file, allow_create, err);
    if (rc < 0) {
        srv_keyring_close(k);
        return rc;
    }
    *out = k;
    return 0;
}

/* Reads one wrapped key (kind "room" or "service") and unwraps it.
 * NOT_FOUND when there is none. Under the lock. */
static int read_stored_key(srv_keyring *k, const char *kind, const char *name,
                           unsigned char key[SRV_SEAL_KEY_BYTES], att_error *err)
{
    if (k->pg)
        return pg_read_stored_key(k, kind, name, key, err);
    const char *sql = strcmp(kind, "room") == 0
                          ? "SELECT kek_id, wrapped FROM room_keys WHERE room = ?1"
                          : "SELECT kek_id, wrapped FROM service_keys WHERE name = ?1";
    for (int attempt = 0; attempt < 2; attempt++) {
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(k->db, sql, -1, &st, NULL) != SQLITE_OK)
            return db_fail(err, k->db, "read key");
        sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
        int rc = sqlite3_step(st);
        if (rc == SQLITE_DONE) {
            sqlite3_finalize(st);
            return att_fail(err, ATT_ERR_NOT_FOUND, "keyring: %s %s has no key", kind, name);
        }
        if (rc != SQLITE_ROW) {
            sqlite3_finalize(st);
            return db_fail(err, k->db, "read key");
        }
        const char *row_kek = (const char *)sqlite3_column_text(st, 0);
        int other_kek = row_kek && strcmp(row_kek, k->kek.id) != 0;
        rc = other_kek ? -ATT_ERR_INTERNAL
                       : unwrap_key(&k->kek, kind, name, sqlite3_column_blob(st, 1),
                                    (size_t)sqlite3_column_bytes(st, 1), key, err);
        sqlite3_finalize(st);
        if (!other_kek)
            return rc;
        /* wrapped by a KEK a rotation made after this keyring opened */
        if (attempt == 0) {
            if (exec(k->db, "BEGIN", err) < 0)
                return -ATT_ERR_INTERNAL;
            rc = kek_current(k, err);
            rollback(k->db);
            if (rc < 0)
                return rc;
        }
    }
    return att_fail(err, ATT_ERR_INTERNAL, "keyring: the key of %s %s names another KEK", kind,
                    name);
}

/* Wraps and inserts key under the current KEK (in its own transaction).
 * Under the lock. BAD_MESSAGE when the name already has a key. */
static int insert_key(srv_keyring *k, const char *kind, const char *name,
                      const unsigned char key[SRV_SEAL_KEY_BYTES], att_error *err)
{
    if (k->pg)
        return pg_insert_key(k, kind, name, key, err);
    const char *sql = strcmp(kind, "room") == 0
                          ? "INSERT INTO room_keys (room, kek_id, wrapped, created_at)"
                            " VALUES (?1, ?2, ?3, ?4)"
                          : "INSERT INTO service_keys (name, kek_id, wrapped, created_at)"
                            " VALUES (?1, ?2, ?3, ?4)";
    if (exec(k->db, "BEGIN IMMEDIATE", err) < 0)
        return -ATT_ERR_INTERNAL;
    unsigned char wrapped[WRAPPED_BYTES];
    int rc = kek_current(k, err);
    if (rc == 0)
        rc = wrap_key(&k->kek, kind, name, key, wrapped, err);
    sqlite3_stmt *st = NULL;
    if (rc == 0 && sqlite3_prepare_v2(k->db, sql, -1, &st, NULL) != SQLITE_OK)
        rc = db_fail(err, k->db, "store key");
    if (rc == 0) {
        sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, k->kek.id, -1, SQLITE_STATIC);
        sqlite3_bind_blob(st, 3, wrapped, sizeof wrapped, SQLITE_STATIC);
        sqlite3_bind_int64(st, 4, srv_now_ms() / 1000);
        int step = sqlite3_step(st);
        if (step == SQLITE_CONSTRAINT)
            rc = att_fail(err, ATT_ERR_BAD_MESSAGE, "keyring: %s %s already has a key", kind, name);
        else if (step != SQLITE_DONE)
            rc = db_fail(err, k->db, "store key");
    }
    sqlite3_finalize(st);
    if (rc < 0) {
        rollback(k->db);
        return rc;
    }
    return exec(k->db, "COMMIT", err);
}

int srv_keyring_room_key(srv_keyring *k, const char *room, srv_seal_key *out, att_error *err)
{
    if (!srv_room_id_valid(room))
        return att_fail(err, ATT_ERR_NOT_FOUND, "keyring: invalid room id");
    pthread_mutex_lock(&k->lock);
    int rc = 0;
    room_slot *s = cache_find(k, room);
    if (s) {
        memcpy(out->bytes, s->key, SRV_SEAL_KEY_BYTES);
    } else if ((rc = read_stored_key(k, "room", room, out->bytes, err)) == 0) {
        /* made by another process (the attune command) after our open */
        rc = cache_put(k, room, out->bytes, err);
    }
    pthread_mutex_unlock(&k->lock);
    if (rc < 0)
        OPENSSL_cleanse(out, sizeof *out);
    return rc;
}

int srv_keyring_new_room_key(srv_keyring *k, const char *room, srv_seal_key *out, att_error *err)
{
    if (!srv_room_id_valid(room))
        return att_fail(err, ATT_ERR_BAD_MESSAGE, "keyring: invalid room id");
    srv_seal_key key;
    if (srv_random_bytes(key.bytes, sizeof key.bytes, err) < 0)
        return -ATT_ERR_INTERNAL;
    pthread_mutex_lock(&k->lock);
    int rc = cache_find(k, room)
                 ? att_fail(err, ATT_ERR_BAD_MESSAGE, "keyring: room %s already has a key", room)
                 : insert_key(k, "room", room, key.bytes, err);
    if (rc == 0 && (rc = cache_put(k, room, key.bytes, err)) == 0)
        *out = key;
    pthread_mutex_unlock(&k->lock);
    OPENSSL_cleanse(&key, sizeof key);
    return rc;
}

/* srv_keyring_ensure_room_keys in keys.db (k->lock held): the missing
 * rooms' keys made and stored in one transaction; made[j] is the key of
 * rooms[made_at[j]] for j < *n_new (0 for a room another process made). */
static int sqlite_ensure_room_keys(srv_keyring *k, const char *const *rooms, size_t n,
                                   srv_seal_key *made, size_t *made_at, size_t *n_new,
                                   att_error *err)
{
    *n_new = 0;
    sqlite3_stmt *st = NULL;
    int rc = exec(k->db, "BEGIN IMMEDIATE", err);
    if (rc == 0)
        rc = kek_current(k, err);
    if (rc == 0 && sqlite3_prepare_v2(k->db,
                                      "INSERT INTO room_keys (room, kek_id, wrapped, created_at)"
                                      " VALUES (?1, ?2, ?3, ?4) ON CONFLICT (room) DO NOTHING",
                                      -1, &st, NULL) != SQLITE_OK)
        rc = db_fail(err, k->db, "store keys");
    int64_t now = srv_now_ms() / 1000;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (cache_find(k, rooms[i]))
            continue;
        unsigned char wrapped[WRAPPED_BYTES];
        if ((rc = srv_random_bytes(made[*n_new].bytes, SRV_SEAL_KEY_BYTES, err)) < 0 ||
            (rc = wrap_key(&k->kek, "room", rooms[i], made[*n_new].bytes, wrapped, err)) < 0)
            break;
        sqlite3_bind_text(st, 1, rooms[i], -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, k->kek.id, -1, SQLITE_STATIC);
        sqlite3_bind_blob(st, 3, wrapped, sizeof wrapped, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 4, now);
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = db_fail(err, k->db, "store keys");
        else if (sqlite3_changes(k->db) == 1) /* 0: another process made it */
            made_at[(*n_new)++] = i;
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    if (rc == 0)
        rc = exec(k->db, "COMMIT", err);
    else
        rollback(k->db);
    return rc;
}

int srv_keyring_ensure_room_keys(srv_keyring *k, const char *const *rooms, size_t n, int *n_made,
                                 att_error *err)
{
    if (n_made)
        *n_made = 0;
    for (size_t i = 0; i < n; i++)
        if (!srv_room_id_valid(rooms[i]))
            return att_fail(err, ATT_ERR_BAD_MESSAGE, "keyring: invalid room id");
    /* the keys made, cached only once the transaction is durable */
    srv_seal_key *made = calloc(n ? n : 1, sizeof *made);
    size_t *made_at = calloc(n ? n : 1, sizeof *made_at);
    if (!made || !made_at) {
        free(made);
        free(made_at);
        return att_fail(err, ATT_ERR_INTERNAL, "keyring: out of memory");
    }
    size_t n_new = 0;
    pthread_mutex_lock(&k->lock);
    int rc = k->pg ? pg_ensure_room_keys(k, rooms, n, made, made_at, &n_new, err)
                   : sqlite_ensure_room_keys(k, rooms, n, made, made_at, &n_new, err);
    for (size_t j = 0; rc == 0 && j < n_new; j++)
        rc = cache_put(k, rooms[made_at[j]], made[j].bytes, err);
    pthread_mutex_unlock(&k->lock);
    if (rc == 0 && n_made)
        *n_made = (int)n_new;
    OPENSSL_cleanse(made, (n ? n : 1) * sizeof *made);
    free(made);
    free(made_at);
    return rc;
}

int srv_keyring_erase_room(srv_keyring *k, const char *room, att_error *err)
{
    if (!srv_room_id_valid(room))
        return att_fail(err, ATT_ERR_BAD_MESSAGE, "keyring: invalid room id");
    pthread_mutex_lock(&k->lock);
    if (k->pg) {
        int prc = pg_erase_room(k, room, err);
        if (prc == 0)
            cache_remove(k, room);
        pthread_mutex_unlock(&k->lock);
        return prc;
    }
    int rc = 0;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(k->db, "DELETE FROM room_keys WHERE room = ?1", -1, &st, NULL) !=
        SQLITE_OK) {
        rc = db_fail(err, k->db, "erase key");
    } else {
        sqlite3_bind_text(st, 1, room, -1, SQLITE_STATIC);
        /* autocommit: synced (synchronous=FULL) before step returns; with
         * secure_delete the row's bytes are overwritten in keys.db. */
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = db_fail(err, k->db, "erase key");
    }
    sqlite3_finalize(st);
    if (rc == 0)
        cache_remove(k, room);
    pthread_mutex_unlock(&k->lock);
    return rc;
}

int srv_keyring_service_key(srv_keyring *k, const char *name, srv_seal_key *out, att_error *err)
{
    if (!valid_service_name(name))
        return att_fail(err, ATT_ERR_BAD_MESSAGE, "keyring: invalid service key name");
    pthread_mutex_lock(&k->lock);
    int rc = read_stored_key(k, "service", name, out->bytes, err);
    if (rc == -ATT_ERR_NOT_FOUND) {
        rc = srv_random_bytes(out->bytes, sizeof out->bytes, err);
        if (rc == 0)
            rc = insert_key(k, "service", name, out->bytes, err);
        if (rc == -ATT_ERR_BAD_MESSAGE) /* another process made it first */
            rc = read_stored_key(k, "service", name, out->bytes, err);
    }
    pthread_mutex_unlock(&k->lock);
    if (rc < 0)
        OPENSSL_cleanse(out, sizeof *out);
    return rc;
}

/* ---- rotation ---- */

/* Rewraps every row of one table from `from` to `to`. Inside the caller's
 * transaction. */
static int rewrap_table(sqlite3 *db, const char *kind, const kek_state *from, const kek_state *to,
                        int *n, att_error *err)
{
    int is_room = strcmp(kind, "room") == 0;
    sqlite3_stmt *sel = NULL, *upd = NULL;
    if (sqlite3_prepare_v2(db,
                           is_room ? "SELECT room, kek_id, wrapped FROM room_keys"
                                   : "SELECT name, kek_id, wrapped FROM service_keys",
                           -1, &sel, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db,
                           is_room
                               ? "UPDATE room_keys SET kek_id = ?2, wrapped = ?3 WHERE room = ?1"
                               : "UPDATE service_keys SET kek_id = ?2, wrapped = ?3"
                                 " WHERE name = ?1",
                           -1, &upd, NULL) != SQLITE_OK) {
        sqlite3_finalize(sel);
        return db_fail(err, db, "rewrap");
    }
    int rc = 0, step;
    while (rc == 0 && (step = sqlite3_step(sel)) == SQLITE_ROW) {
        char name[SRV_ROOM_ID_MAX + 1];
        const unsigned char *text = sqlite3_column_text(sel, 0);
        const unsigned char *row_kek = sqlite3_column_text(sel, 1);
        snprintf(name, sizeof name, "%s", text ? (const char *)text : "");
        unsigned char key[SRV_SEAL_KEY_BYTES], wrapped[WRAPPED_BYTES];
        if (!row_kek || strcmp((const char *)row_kek, from->id) != 0)
            rc = att_fail(err, ATT_ERR_INTERNAL, "keyring: the key of %s %s names KEK %s, not %s",
                          kind, name, row_kek ? (const char *)row_kek : "(none)", from->id);
        if (rc == 0)
            rc = unwrap_key(from, kind, name, sqlite3_column_blob(sel, 2),
                            (size_t)sqlite3_column_bytes(sel, 2), key, err);
        if (rc == 0)
            rc = wrap_key(to, kind, name, key, wrapped, err);
        OPENSSL_cleanse(key, sizeof key);
        if (rc == 0) {
            sqlite3_bind_text(upd, 1, name, -1, SQLITE_TRANSIENT);
            sqlite3_bind_text(upd, 2, to->id, -1, SQLITE_STATIC);
            sqlite3_bind_blob(upd, 3, wrapped, sizeof wrapped, SQLITE_TRANSIENT);
            if (sqlite3_step(upd) != SQLITE_DONE)
                rc = db_fail(err, db, "rewrap");
            else
                (*n)++;
            sqlite3_reset(upd);
        }
    }
    if (rc == 0 && step != SQLITE_DONE)
        rc = db_fail(err, db, "rewrap");
    sqlite3_finalize(sel);
    sqlite3_finalize(upd);
    return rc;
}

/* Rewraps every row of one PostgreSQL table from `from` to `to`, inside
 * the caller's transaction: the rows locked FOR UPDATE (an erase waits),
 * then rewritten PG_REWRAP_BATCH at a time by one UPDATE over unnest()ed
 * arrays (names and hex), not one round trip per key. Names are room ids
 * or service names: [A-Za-z0-9_-], nothing an array literal must quote. */
#define PG_REWRAP_BATCH 500
static int pg_rewrap_table(srv_keyring *k, const char *kind, const kek_state *from,
                           const kek_state *to, int *n, att_error *err)
{
    int is_room = strcmp(kind, "room") == 0;
    PGresult *r = NULL;
    if (pg_sql(k,
               is_room ? "SELECT room, kek_id, wrapped FROM keyring_room_keys FOR UPDATE"
                       : "SELECT name, kek_id, wrapped FROM keyring_service_keys FOR UPDATE",
               0, NULL, NULL, NULL, &r, err) < 0)
        return -ATT_ERR_INTERNAL;
    const char *update = is_room ? "UPDATE keyring_room_keys AS t SET kek_id = $1,"
                                   " wrapped = decode(v.w, 'hex')"
                                   " FROM unnest($2::text[], $3::text[]) AS v(name, w)"
                                   " WHERE t.room = v.name"
                                 : "UPDATE keyring_service_keys AS t SET kek_id = $1,"
                                   " wrapped = decode(v.w, 'hex')"
                                   " FROM unnest($2::text[], $3::text[]) AS v(name, w)"
                                   " WHERE t.name = v.name";
    int rows = PQntuples(r), rc = 0;
    /* one batch's arrays: '{' names ',' ... '}' and the same of hex */
    size_t names_cap = 2 + (size_t)PG_REWRAP_BATCH * (SRV_ROOM_ID_MAX + 1);
    size_t hex_cap = 2 + (size_t)PG_REWRAP_BATCH * (2 * WRAPPED_BYTES + 1);
    char *names = malloc(names_cap), *hexes = malloc(hex_cap);
    if (!names || !hexes)
        rc = att_fail(err, ATT_ERR_INTERNAL, "keyring: out of memory");
    for (int start = 0; rc == 0 && start < rows; start += PG_REWRAP_BATCH) {
        int end = start + PG_REWRAP_BATCH < rows ? start + PG_REWRAP_BATCH : rows;
        size_t nl = 0, hl = 0;
        names[nl++] = '{';
        hexes[hl++] = '{';
        for (int i = start; rc == 0 && i < end; i++) {
            const char *name = PQgetvalue(r, i, 0);
            const char *row_kek = PQgetvalue(r, i, 1);
            unsigned char wrapped[WRAPPED_BYTES + 1], key[SRV_SEAL_KEY_BYTES];
            size_t wlen = pg_wrapped(r, i, 2, wrapped, sizeof wrapped);
            if (is_room ? !srv_room_id_valid(name) : !valid_service_name(name))
                rc =
                    att_fail(err, ATT_ERR_INTERNAL, "keyring: a bad %s name in the database", kind);
            else if (strcmp(row_kek, from->id) != 0)
                rc = att_fail(err, ATT_ERR_INTERNAL,
                              "keyring: the key of %s %s names KEK %s, not %s", kind, name, row_kek,
                              from->id);
            if (rc == 0)
                rc = unwrap_key(from, kind, name, wrapped, wlen, key, err);
            if (rc == 0)
                rc = wrap_key(to, kind, name, key, wrapped, err);
            OPENSSL_cleanse(key, sizeof key);
            if (rc == 0) {
                if (i > start) {
                    names[nl++] = ',';
                    hexes[hl++] = ',';
                }
                size_t len = strlen(name);
                memcpy(names + nl, name, len);
                nl += len;
                srv_hex_encode(wrapped, WRAPPED_BYTES, hexes + hl);
                hl += 2 * WRAPPED_BYTES;
            }
        }
        names[nl++] = '}';
        names[nl] = '\0';
        hexes[hl++] = '}';
        hexes[hl] = '\0';
        PGresult *u = NULL;
        const char *params[3] = {to->id, names, hexes};
        if (rc == 0 && (rc = pg_sql(k, update, 3, params, NULL, NULL, &u, err)) == 0) {
            if (atoi(PQcmdTuples(u)) != end - start)
                rc = att_fail(err, ATT_ERR_INTERNAL,
                              "keyring: a %s key changed during the "
                              "rotation",
                              kind);
            else
                *n += end - start;
            PQclear(u);
        }
    }
    if (hexes)
        OPENSSL_cleanse(hexes, hex_cap);
    free(names);
    free(hexes);
    PQclear(r);
    return rc;
}

/* Step 2 of a rotation on PostgreSQL (see srv_keyring_rotate_pg_ex): one
 * transaction that holds the keyring_meta row FOR UPDATE (a key insert on
 * any node holds it FOR SHARE, so inserts wait for the rotation and it for
 * them; one that waited reads the new KEK id and reloads its KEK file).
 * 1 when the rewrap committed, 0 when stopped before (stop), negative on
 * failure; *committed_unknown is set when the COMMIT's outcome could not
 * be read back (the connection was lost and no reconnect answered). */
static int pg_rotate_commit(srv_keyring *k, const kek_state *next, srv_rotate_stop stop,
                            int *n_rewrapped, int *committed_unknown, att_error *err)
{
    *committed_unknown = 0;
    if (pg_sql(k, "BEGIN", 0, NULL, NULL, NULL, NULL, err) < 0)
        return -ATT_ERR_INTERNAL;
    char want[SRV_KEK_ID_CHARS + 1];
    int rc = pg_meta_kek_id(k, " FOR UPDATE", want, err);
    if (rc == 0 && strcmp(want, k->kek.id) != 0)
        rc = att_fail(err, ATT_ERR_INTERNAL,
                      "keyring: the database changed KEK during the rotation (%s, not %s)", want,
                      k->kek.id);
    if (rc == 0)
        rc = pg_rewrap_table(k, "room", &k->kek, next, n_rewrapped, err);
    if (rc == 0)
        rc = pg_rewrap_table(k, "service", &k->kek, next, n_rewrapped, err);
    if (rc == 0) {
        const char *id = next->id;
        rc = pg_sql(k, "UPDATE keyring_meta SET value = $1 WHERE key = 'kek_id'", 1, &id, NULL,
                    NULL, NULL, err);
    }
    if (rc < 0 || stop == SRV_ROTATE_STOP_BEFORE_COMMIT) {
        pg_rollback(k); /* as a crash before the commit would: nothing stored */
        return rc < 0 ? rc : 0;
    }
    if (pg_sql(k, "COMMIT", 0, NULL, NULL, NULL, NULL, err) == 0)
        return 1;
    /* The connection may have gone with the COMMIT on its way: read back
     * (srv_pg_exec reconnects) which KEK the database names now. */
    att_error why = {0};
    if (pg_meta_kek_id(k, "", want, &why) < 0) {
        *committed_unknown = 1;
        return att_fail(err, ATT_ERR_INTERNAL,
                        "keyring: the rotation's commit was lost with the connection and could "
                        "not be read back (%s); the old and the new KEK are both kept: the next "
                        "open takes whichever the database names",
                        why.message);
    }
    if (strcmp(want, next->id) == 0)
        return 1; /* it committed before the connection went */
    return att_fail(err, ATT_ERR_INTERNAL,
                    "keyring: the rotation did not commit (the database still names KEK %s); "
                    "nothing changed",
                    want);
}

/* A rotation on a data directory (data_dir) or a PostgreSQL database
 * (uri): keyring.h says in which order and why. */
static int rotate(const char *data_dir, const char *uri, const char *kek_file,
                  const char *new_kek_file, srv_rotate_stop stop, srv_keyring_rotation *out,
                  att_error *err)
{
    memset(out, 0, sizeof *out);
    /* Opening finishes a rotation that crashed after its commit. */
    srv_keyring *k = NULL;
    if ((data_dir ? srv_keyring_open(data_dir, kek_file, 0, &k, err)
                  : srv_keyring_open_pg(uri, kek_file, 0, &k, err)) < 0)
        return -ATT_ERR_INTERNAL;
    snprintf(out->old_kek_id, sizeof out->old_kek_id, "%s", k->kek.id);
    char pending[PATH_MAX];
    kek_state next;
    memset(&next, 0, sizeof next);
    int rc = 0;
    if (new_kek_file) {
        if ((rc = data_dir ? kek_path_check(data_dir, new_kek_file, err) : 0) == 0 &&
            (rc = kek_read(new_kek_file, &next, err)) == -ATT_ERR_NOT_FOUND)
            rc = att_fail(err, ATT_ERR_INTERNAL, "keyring: no new KEK file %s", new_kek_file);
    } else if ((rc = new_kek_path(k->kek_path, pending, sizeof pending, err)) == 0) {
        /* Any KEK.new left now is from a rotation that never committed
         * (open would have taken it otherwise): replace it. */
        if (unlink(pending) != 0 && errno != ENOENT)
            rc = att_fail(err, ATT_ERR_INTERNAL, "keyring: cannot remove %s: %s", pending,
                          strerror(errno));
        if (rc == 0)
            rc = srv_random_bytes(next.kek, sizeof next.kek, err);
        if (rc == 0)
            rc = srv_key_file_create(pending, next.kek, err);
        if (rc == 1)
            rc = att_fail(err, ATT_ERR_INTERNAL, "keyring: %s appeared during the rotation",
                          pending);
        if (rc == 0)
            rc = kek_derive(&next, err);
    }
    if (rc == 0 && strcmp(next.id, k->kek.id) == 0)
        rc = att_fail(err, ATT_ERR_BAD_MESSAGE, "keyring: the new KEK is the current one (%s)",
                      next.id);
    /* Step 2: one transaction rewraps every key and records the new id. */
    int keep_pending = 0;
    if (rc == 0 && !data_dir) {
        rc = pg_rotate_commit(k, &next, stop, &out->n_rewrapped, &keep_pending, err);
        if (rc == 0) { /* stopped before the commit, as a crash would: KEK.new left */
            kek_wipe(&next);
            srv_keyring_close(k);
            return 0;
        }
        if (rc == 1)
            rc = 0;
    } else if (rc == 0 && (rc = exec(k->db, "BEGIN IMMEDIATE", err)) == 0) {
        char want[SRV_KEK_ID_CHARS + 1];
        rc = meta_kek_id(k->db, want, err);
        if (rc == 0 && strcmp(want, k->kek.id) != 0)
            rc =
                att_fail(err, ATT_ERR_INTERNAL, "keyring: keys.db changed KEK during the rotation");
        if (rc == 0)
            rc = rewrap_table(k->db, "room", &k->kek, &next, &out->n_rewrapped, err);
        if (rc == 0)
            rc = rewrap_table(k->db, "service", &k->kek, &next, &out->n_rewrapped, err);
        if (rc == 0)
            rc = meta_set_kek_id(k->db, next.id, err);
        if (rc == 0 && stop == SRV_ROTATE_STOP_BEFORE_COMMIT) {
            /* as a crash here would: nothing committed, KEK.new left */
            rollback(k->db);
            kek_wipe(&next);
            srv_keyring_close(k);
            return 0;
        }
        if (rc == 0)
            rc = exec(k->db, "COMMIT", err);
        else
            rollback(k->db);
    }
    if (rc < 0 && !new_kek_file && next.id[0] && !keep_pending)
        unlink(pending); /* not committed: the old KEK stays the one */
    if (rc == 0 && stop == SRV_ROTATE_STOP_BEFORE_RENAME) {
        kek_wipe(&next);
        srv_keyring_close(k);
        return 0; /* as a crash here would: committed, KEK.new not renamed */
    }
    /* Step 3: the new KEK takes the old one's place. */
    if (rc == 0 && !new_kek_file) {
        if (rename(pending, k->kek_path) != 0)
            rc = att_fail(err, ATT_ERR_INTERNAL,
                          "keyring: keys are rewrapped but %s could not replace %s: %s (the next "
                          "open finishes it)",
                          pending, k->kek_path, strerror(errno));
        else
            rc = srv_key_file_sync_dir(k->kek_path, err);
    }
    if (rc == 0) {
        snprintf(out->new_kek_id, sizeof out->new_kek_id, "%s", next.id);
        snprintf(out->kek_path, sizeof out->kek_path, "%s",
                 new_kek_file ? new_kek_file : k->kek_path);
    }
    kek_wipe(&next);
    srv_keyring_close(k);
    return rc;
}

int srv_keyring_rotate_ex(const char *data_dir, const char *kek_file, const char *new_kek_file,
                          srv_rotate_stop stop, srv_keyring_rotation *out, att_error *err)
{
    return rotate(data_dir, NULL, kek_file, new_kek_file, stop, out, err);
}

int srv_keyring_rotate_pg_ex(const char *uri, const char *kek_file, const char *new_kek_file,
                             srv_rotate_stop stop, srv_keyring_rotation *out, att_error *err)
{
    if (!kek_file || !kek_file[0]) {
        memset(out, 0, sizeof *out);
        return att_fail(err, ATT_ERR_INVALID_INPUT,
                        "keyring: with a PostgreSQL store the key-encryption key file must be "
                        "given (--kek-file FILE)");
    }
    return rotate(NULL, uri, kek_file, new_kek_file, stop, out, err);
}

int srv_keyring_rotate_pg(const char *uri, const char *kek_file, const char *new_kek_file,
                          int *n_rewrapped, att_error *err)
{
    srv_keyring_rotation r;
    int rc = srv_keyring_rotate_pg_ex(uri, kek_file, new_kek_file, SRV_ROTATE_COMPLETE, &r, err);
    if (n_rewrapped)
        *n_rewrapped = r.n_rewrapped;
    return rc;
}

int srv_keyring_rotate(const char *data_dir, const char *kek_file, const char *new_kek_file,
                       int *n_rewrapped, att_error *err)
{
    srv_keyring_rotation r;
    int rc = srv_keyring_rotate_ex(data_dir, kek_file, new_kek_file, SRV_ROTATE_COMPLETE, &r, err);
    if (n_rewrapped)
        *n_rewrapped = r.n_rewrapped;
    return rc;
}
