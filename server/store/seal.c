/* seal.c - AES-256-GCM sealing of event payloads (see seal.h). */
#include "seal.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "random.h"
#include "token.h"

#define VERSION_ROOM_SEQ 0x01      /* legacy, data.key; AAD: room, seq */
#define VERSION_ROOM_SEQ_TYPE 0x02 /* legacy, data.key; AAD: room, seq, type */
#define VERSION_PADDED 0x03        /* the room's key; AAD: version, room, seq, type */
#define NONCE_BYTES 12
#define TAG_BYTES 16
/* the version (1), room id (up to 87 bytes, as before types), its NUL, the
 * seq (8), the type */
#define AAD_MAX (1 + 96 + SRV_SEAL_TYPE_MAX)

static const unsigned char zeros[256];

size_t srv_seal_bucket(size_t len)
{
    if (len > SRV_SEAL_MAX_PLAIN)
        return 0;
    size_t need = len + SRV_SEAL_PREFIX_BYTES;
    if (need > SRV_SEAL_PAGE_BUCKET)
        return (need + SRV_SEAL_PAGE_BUCKET - 1) / SRV_SEAL_PAGE_BUCKET * SRV_SEAL_PAGE_BUCKET;
    size_t b = SRV_SEAL_MIN_BUCKET;
    while (b < need)
        b *= 2;
    return b;
}

static int reserve(srv_seal_buf *b, size_t n)
{
    if (n <= b->cap)
        return 0;
    unsigned char *p = realloc(b->data, n);
    if (!p)
        return -1;
    b->data = p;
    b->cap = n;
    return 0;
}

void srv_seal_buf_free(srv_seal_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

/* Associated data: for version 0x03 the version byte first, then
 * "<room>\0<seq as 8 bytes big-endian>", then (0x02, 0x03) "<type>" (type
 * NULL: version 0x01). 0 when it does not fit. */
static size_t make_aad(int version, const char *room, int64_t seq, const char *type,
                       unsigned char *aad, size_t cap)
{
    size_t n = 0, r = strlen(room), t = type ? strlen(type) : 0;
    if (1 + r + 9 + t > cap || (type && (t == 0 || t > SRV_SEAL_TYPE_MAX)))
        return 0;
    if (version == VERSION_PADDED)
        aad[n++] = VERSION_PADDED;
    memcpy(aad + n, room, r);
    n += r;
    aad[n++] = 0;
    for (int i = 7; i >= 0; i--)
        aad[n++] = (unsigned char)((uint64_t)seq >> (8 * i));
    if (t) /* type NULL (version 0x01): memcpy's source may not be NULL, even for 0 bytes */
        memcpy(aad + n, type, t);
    return n + t;
}

/* One cipher context for one payload: key, nonce and associated data. */
static EVP_CIPHER_CTX *gcm_start(int seal, int version, const srv_seal_key *key, const char *room,
                                 int64_t seq, const char *type, const unsigned char *nonce)
{
    unsigned char aad[AAD_MAX];
    size_t aad_len = make_aad(version, room, seq, type, aad, sizeof aad);
    EVP_CIPHER_CTX *ctx = aad_len ? EVP_CIPHER_CTX_new() : NULL;
    int outl = 0, ok = ctx != NULL;
    if (seal) {
        ok = ok && EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key->bytes, nonce);
        ok = ok && EVP_EncryptUpdate(ctx, NULL, &outl, aad, (int)aad_len);
    } else {
        ok = ok && EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key->bytes, nonce);
        ok = ok && EVP_DecryptUpdate(ctx, NULL, &outl, aad, (int)aad_len);
    }
    if (!ok) {
        EVP_CIPHER_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

/* Decrypts len bytes at in into out and checks the tag; 0 or -1. */
static int gcm_open(int version, const srv_seal_key *key, const char *room, int64_t seq,
                    const char *type, const unsigned char *nonce, const unsigned char *in,
                    size_t len, unsigned char *out, const unsigned char *tag)
{
    EVP_CIPHER_CTX *ctx =
        len <= INT32_MAX ? gcm_start(0, version, key, room, seq, type, nonce) : NULL;
    int outl = 0, ok = ctx != NULL;
    ok = ok && EVP_DecryptUpdate(ctx, out, &outl, in, (int)len);
    ok = ok && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TAG_BYTES, (void *)tag);
    ok = ok && EVP_DecryptFinal_ex(ctx, out + outl, &outl) > 0;
    EVP_CIPHER_CTX_free(ctx);
    return ok ? 0 : -1;
}

int srv_seal(const srv_seal_key *room_key, const char *room, int64_t seq, const char *type,
             const void *plain, size_t len, srv_seal_buf *buf, att_error *err)
{
    if (!type || !type[0] || strlen(type) > SRV_SEAL_TYPE_MAX)
        return att_fail(err, ATT_ERR_INTERNAL, "seal: event %lld has no valid type",
                        (long long)seq);
    size_t bucket = srv_seal_bucket(len);
    if (!bucket)
        return att_fail(err, ATT_ERR_INTERNAL, "seal: event %lld is too long to seal",
                        (long long)seq);
    if (reserve(buf, bucket + SRV_SEAL_OVERHEAD) < 0)
        return att_fail(err, ATT_ERR_INTERNAL, "seal: out of memory");
    unsigned char *p = buf->data, *nonce = p + 1, *out = p + 1 + NONCE_BYTES;
    p[0] = VERSION_PADDED;
    if (srv_random_bytes(nonce, NONCE_BYTES, err) < 0)
        return -ATT_ERR_INTERNAL;
    unsigned char prefix[SRV_SEAL_PREFIX_BYTES] = {(unsigned char)(len >> 24),
                                                   (unsigned char)(len >> 16),
                                                   (unsigned char)(len >> 8), (unsigned char)len};
    /* GCM is a stream: the prefix, the JSON and the padding go through in
     * pieces, so the padded plaintext is never copied into one buffer. */
    EVP_CIPHER_CTX *ctx = gcm_start(1, VERSION_PADDED, room_key, room, seq, type, nonce);
    int outl = 0, ok = ctx != NULL;
    size_t at = 0;
    ok = ok && EVP_EncryptUpdate(ctx, out, &outl, prefix, (int)sizeof prefix);
    at += (size_t)outl;
    ok = ok && EVP_EncryptUpdate(ctx, out + at, &outl, plain, (int)len);
    at += ok ? (size_t)outl : 0;
    for (size_t pad = bucket - SRV_SEAL_PREFIX_BYTES - len; ok && pad > 0;) {
        size_t n = pad < sizeof zeros ? pad : sizeof zeros;
        ok = EVP_EncryptUpdate(ctx, out + at, &outl, zeros, (int)n);
        at += ok ? (size_t)outl : 0;
        pad -= n;
    }
    ok = ok && EVP_EncryptFinal_ex(ctx, out + at, &outl);
    at += ok ? (size_t)outl : 0;
    ok = ok && at == bucket;
    ok = ok && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG_BYTES, out + bucket);
    EVP_CIPHER_CTX_free(ctx);
    if (!ok)
        return att_fail(err, ATT_ERR_INTERNAL, "seal: encryption failed");
    buf->len = bucket + SRV_SEAL_OVERHEAD;
    return 0;
}

int srv_unseal(const srv_seal_key *room_key, const char *room, int64_t seq, const char *type,
               const void *sealed, size_t len, srv_seal_buf *buf, att_error *err)
{
    const unsigned char *in = sealed;
    if (len == 0 || in[0] != VERSION_PADDED)
        return att_fail(err, ATT_ERR_INTERNAL,
                        "seal: event %lld is not sealed under its room's key (version %s); "
                        "refused",
                        (long long)seq,
                        len == 0       ? "none: empty"
                        : in[0] == '{' ? "none: plaintext"
                        : in[0] == VERSION_ROOM_SEQ || in[0] == VERSION_ROOM_SEQ_TYPE ? "legacy"
                                                                                      : "unknown");
    if (!type)
        return att_fail(err, ATT_ERR_INTERNAL, "seal: event %lld has lost its type",
                        (long long)seq);
    size_t n = len >= SRV_SEAL_OVERHEAD ? len - SRV_SEAL_OVERHEAD : 0;
    /* Only bucket sizes are ever written (srv_seal_bucket(b - prefix) == b). */
    if (n < SRV_SEAL_MIN_BUCKET || srv_seal_bucket(n - SRV_SEAL_PREFIX_BYTES) != n)
        return att_fail(err, ATT_ERR_INTERNAL, "seal: event %lld has a damaged length (%zu)",
                        (long long)seq, len);
    if (reserve(buf, n + 1) < 0)
        return att_fail(err, ATT_ERR_INTERNAL, "seal: out of memory");
    if (gcm_open(VERSION_PADDED, room_key, room, seq, type, in + 1, in + 1 + NONCE_BYTES, n,
                 buf->data, in + 1 + NONCE_BYTES + n) < 0) {
        OPENSSL_cleanse(buf->data, n);
        return att_fail(err, ATT_ERR_INTERNAL,
                        "seal: event %lld does not open (tampered, or not this room's key)",
                        (long long)seq);
    }
    unsigned char *p = buf->data;
    size_t json = (size_t)p[0] << 24 | (size_t)p[1] << 16 | (size_t)p[2] << 8 | p[3];
    int padding_ok = json <= n - SRV_SEAL_PREFIX_BYTES &&
                     srv_seal_bucket(json) == n; /* the bucket srv_seal chose */
    for (size_t i = SRV_SEAL_PREFIX_BYTES + json; padding_ok && i < n; i++)
        padding_ok = p[i] == 0;
    if (!padding_ok) {
        OPENSSL_cleanse(p, n);
        return att_fail(err, ATT_ERR_INTERNAL, "seal: event %lld has a bad length or padding",
                        (long long)seq);
    }
    memmove(p, p + SRV_SEAL_PREFIX_BYTES, json);
    p[json] = 0;
    buf->len = json;
    return 0;
}

/* ---- the formats before per-room keys: the migration only ---- */

static int legacy_key_path(const char *dir, char *path, size_t size, att_error *err)
{
    if (snprintf(path, size, "%s/data.key", dir) >= (int)size)
        return att_fail(err, ATT_ERR_INTERNAL, "seal: path too long");
    return 0;
}

int srv_legacy_key_load(const char *dir, srv_seal_key *key, att_error *err)
{
    char path[4096];
    if (legacy_key_path(dir, path, sizeof path, err) < 0)
        return -ATT_ERR_INTERNAL;
    return srv_key_file_read(path, key->bytes, err);
}

int srv_unseal_legacy(const srv_seal_key *data_key, const char *room, int64_t seq, const char *type,
                      const void *sealed, size_t len, srv_seal_buf *buf, int *type_checked,
                      att_error *err)
{
    const unsigned char *in = sealed;
    if (type_checked)
        *type_checked = 0;
    if (len > 0 && in[0] == '{') { /* legacy plaintext, from before sealing */
        if (reserve(buf, len + 1) < 0)
            return att_fail(err, ATT_ERR_INTERNAL, "seal: out of memory");
        memcpy(buf->data, in, len);
        buf->data[len] = 0;
        buf->len = len;
        return 0;
    }
    if (len < SRV_SEAL_OVERHEAD || (in[0] != VERSION_ROOM_SEQ && in[0] != VERSION_ROOM_SEQ_TYPE))
        return att_fail(err, ATT_ERR_INTERNAL, "seal: event %lld is not a legacy sealed payload",
                        (long long)seq);
    if (!data_key)
        return att_fail(err, ATT_ERR_NOT_FOUND,
                        "seal: event %lld was sealed under data.key, which is missing",
                        (long long)seq);
    size_t n = len - SRV_SEAL_OVERHEAD;
    if (reserve(buf, n + 1) < 0)
        return att_fail(err, ATT_ERR_INTERNAL, "seal: out of memory");
    int with_type = in[0] == VERSION_ROOM_SEQ_TYPE;
    if (with_type && !type)
        return att_fail(err, ATT_ERR_INTERNAL, "seal: event %lld has lost its type",
                        (long long)seq);
    if (gcm_open(in[0], data_key, room, seq, with_type ? type : NULL, in + 1, in + 1 + NONCE_BYTES,
                 n, buf->data, in + 1 + NONCE_BYTES + n) < 0) {
        OPENSSL_cleanse(buf->data, n);
        return att_fail(err, ATT_ERR_INTERNAL,
                        "seal: event %lld does not open (tampered, or another data key)",
                        (long long)seq);
    }
    buf->data[n] = 0;
    buf->len = n;
    if (type_checked)
        *type_checked = with_type;
    return 0;
}

int srv_legacy_key_destroy(const char *dir, att_error *err)
{
    char path[4096];
    if (legacy_key_path(dir, path, sizeof path, err) < 0)
        return -ATT_ERR_INTERNAL;
    int fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        if (errno == ENOENT)
            return 0;
        return att_fail(err, ATT_ERR_INTERNAL, "seal: cannot open %s to destroy it: %s", path,
                        strerror(errno));
    }
    /* Overwrite in place first: on most file systems the blocks that held
     * the key are then zeros even if something keeps the old inode. */
    struct stat st;
    int ok = fstat(fd, &st) == 0;
    for (off_t at = 0; ok && at < st.st_size;) {
        size_t n =
            (size_t)(st.st_size - at) < sizeof zeros ? (size_t)(st.st_size - at) : sizeof zeros;
        ssize_t w = pwrite(fd, zeros, n, at);
        ok = w > 0;
        at += ok ? w : 0;
    }
    ok = ok && fsync(fd) == 0;
    close(fd);
    if (!ok)
        return att_fail(err, ATT_ERR_INTERNAL, "seal: cannot overwrite %s: %s", path,
                        strerror(errno));
    if (unlink(path) != 0)
        return att_fail(err, ATT_ERR_INTERNAL, "seal: cannot delete %s: %s", path, strerror(errno));
    return srv_key_file_sync_dir(path, err);
}
