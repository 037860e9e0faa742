/* seal.c - AES-256-GCM sealing of event payloads (see seal.h). */
#include "seal.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "random.h"
#include "token.h"

#define VERSION_ROOM_SEQ 0x01      /* AAD: room, seq */
#define VERSION_ROOM_SEQ_TYPE 0x02 /* AAD: room, seq, type */
#define NONCE_BYTES 12
#define TAG_BYTES 16
/* room id (up to 87 bytes, as before types), its NUL, the seq (8), the type */
#define AAD_MAX (96 + SRV_SEAL_TYPE_MAX)

int srv_seal_key_load(const char *dir, srv_seal_key *key, att_error *err)
{
    char path[4096];
    if (snprintf(path, sizeof path, "%s/data.key", dir) >= (int)sizeof path)
        return att_fail(err, ATT_ERR_INTERNAL, "seal: path too long");
    /* Same file format and creation rules as the invitation key. */
    srv_token_key k;
    int rc = srv_token_key_load(path, &k, err);
    if (rc < 0)
        return rc;
    memcpy(key->bytes, k.bytes, sizeof key->bytes);
    memset(&k, 0, sizeof k);
    return 0;
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

/* Associated data: "<room>\0<seq as 8 bytes big-endian>", then for version
 * 0x02 "<type>" (type NULL: version 0x01). 0 when it does not fit. */
static size_t make_aad(const char *room, int64_t seq, const char *type, unsigned char *aad,
                       size_t cap)
{
    size_t n = strlen(room), t = type ? strlen(type) : 0;
    if (n + 9 + t > cap || (type && (t == 0 || t > SRV_SEAL_TYPE_MAX)))
        return 0;
    memcpy(aad, room, n);
    aad[n++] = 0;
    for (int i = 7; i >= 0; i--)
        aad[n++] = (unsigned char)((uint64_t)seq >> (8 * i));
    if (t) /* type NULL (version 0x01): memcpy's source may not be NULL, even for 0 bytes */
        memcpy(aad + n, type, t);
    return n + t;
}

static int gcm_crypt(int seal, const srv_seal_key *key, const char *room, int64_t seq,
                     const char *type, const unsigned char *nonce, const unsigned char *in,
                     size_t len, unsigned char *out, unsigned char *tag)
{
    unsigned char aad[AAD_MAX];
    size_t aad_len = make_aad(room, seq, type, aad, sizeof aad);
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int outl = 0, ok = aad_len > 0 && ctx && len <= INT32_MAX;
    ok = ok && (seal ? EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key->bytes, nonce)
                     : EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key->bytes, nonce));
    if (seal) {
        ok = ok && EVP_EncryptUpdate(ctx, NULL, &outl, aad, (int)aad_len);
        ok = ok && EVP_EncryptUpdate(ctx, out, &outl, in, (int)len);
        ok = ok && EVP_EncryptFinal_ex(ctx, out + outl, &outl);
        ok = ok && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG_BYTES, tag);
    } else {
        ok = ok && EVP_DecryptUpdate(ctx, NULL, &outl, aad, (int)aad_len);
        ok = ok && EVP_DecryptUpdate(ctx, out, &outl, in, (int)len);
        ok = ok && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TAG_BYTES, tag);
        ok = ok && EVP_DecryptFinal_ex(ctx, out + outl, &outl) > 0;
    }
    EVP_CIPHER_CTX_free(ctx);
    return ok ? 0 : -1;
}

int srv_seal(const srv_seal_key *key, const char *room, int64_t seq, const char *type,
             const void *plain, size_t len, srv_seal_buf *buf, att_error *err)
{
    if (!type || !type[0] || strlen(type) > SRV_SEAL_TYPE_MAX)
        return att_fail(err, ATT_ERR_INTERNAL, "seal: event %lld has no valid type",
                        (long long)seq);
    if (reserve(buf, len + SRV_SEAL_OVERHEAD) < 0)
        return att_fail(err, ATT_ERR_INTERNAL, "seal: out of memory");
    unsigned char *p = buf->data;
    p[0] = VERSION_ROOM_SEQ_TYPE;
    if (srv_random_bytes(p + 1, NONCE_BYTES, err) < 0)
        return -ATT_ERR_INTERNAL;
    if (gcm_crypt(1, key, room, seq, type, p + 1, plain, len, p + 1 + NONCE_BYTES,
                  p + 1 + NONCE_BYTES + len) < 0)
        return att_fail(err, ATT_ERR_INTERNAL, "seal: encryption failed");
    buf->len = len + SRV_SEAL_OVERHEAD;
    return 0;
}

int srv_unseal(const srv_seal_key *key, const char *room, int64_t seq, const char *type,
               const void *sealed, size_t len, srv_seal_buf *buf, int *type_checked, att_error *err)
{
    const unsigned char *in = sealed;
    if (type_checked)
        *type_checked = 0;
    if (len > 0 && in[0] == '{') { /* legacy plaintext */
        if (reserve(buf, len + 1) < 0)
            return att_fail(err, ATT_ERR_INTERNAL, "seal: out of memory");
        memcpy(buf->data, in, len);
        buf->data[len] = 0;
        buf->len = len;
        return 0;
    }
    if (len < SRV_SEAL_OVERHEAD || (in[0] != VERSION_ROOM_SEQ && in[0] != VERSION_ROOM_SEQ_TYPE))
        return att_fail(err, ATT_ERR_INTERNAL, "seal: event %lld is not a sealed payload",
                        (long long)seq);
    size_t n = len - SRV_SEAL_OVERHEAD;
    if (reserve(buf, n + 1) < 0)
        return att_fail(err, ATT_ERR_INTERNAL, "seal: out of memory");
    int with_type = in[0] == VERSION_ROOM_SEQ_TYPE;
    if (with_type && !type)
        return att_fail(err, ATT_ERR_INTERNAL, "seal: event %lld has lost its type",
                        (long long)seq);
    if (gcm_crypt(0, key, room, seq, with_type ? type : NULL, in + 1, in + 1 + NONCE_BYTES, n,
                  buf->data, (unsigned char *)(in + 1 + NONCE_BYTES + n)) < 0)
        return att_fail(err, ATT_ERR_INTERNAL,
                        "seal: event %lld does not open (tampered, or another data key)",
                        (long long)seq);
    buf->data[n] = 0;
    buf->len = n;
    if (type_checked)
        *type_checked = with_type;
    return 0;
}
