/* seal.c - AES-256-GCM sealing of event payloads (see seal.h). */
#include "seal.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "token.h"

#define VERSION 0x01
#define NONCE_BYTES 12
#define TAG_BYTES 16

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

/* Associated data: "<room>\0<seq as 8 bytes big-endian>". */
static size_t make_aad(const char *room, int64_t seq, unsigned char *aad, size_t cap)
{
    size_t n = strlen(room);
    if (n + 9 > cap)
        return 0;
    memcpy(aad, room, n);
    aad[n++] = 0;
    for (int i = 7; i >= 0; i--)
        aad[n++] = (unsigned char)((uint64_t)seq >> (8 * i));
    return n;
}

static int gcm_crypt(int seal, const srv_seal_key *key, const char *room, int64_t seq,
                     const unsigned char *nonce, const unsigned char *in, size_t len,
                     unsigned char *out, unsigned char *tag)
{
    unsigned char aad[96];
    size_t aad_len = make_aad(room, seq, aad, sizeof aad);
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

int srv_seal(const srv_seal_key *key, const char *room, int64_t seq, const void *plain, size_t len,
             srv_seal_buf *buf, att_error *err)
{
    if (reserve(buf, len + SRV_SEAL_OVERHEAD) < 0)
        return att_fail(err, ATT_ERR_INTERNAL, "seal: out of memory");
    unsigned char *p = buf->data;
    p[0] = VERSION;
    if (srv_random_bytes(p + 1, NONCE_BYTES, err) < 0)
        return -ATT_ERR_INTERNAL;
    if (gcm_crypt(1, key, room, seq, p + 1, plain, len, p + 1 + NONCE_BYTES,
                  p + 1 + NONCE_BYTES + len) < 0)
        return att_fail(err, ATT_ERR_INTERNAL, "seal: encryption failed");
    buf->len = len + SRV_SEAL_OVERHEAD;
    return 0;
}

int srv_unseal(const srv_seal_key *key, const char *room, int64_t seq, const void *sealed,
               size_t len, srv_seal_buf *buf, att_error *err)
{
    const unsigned char *in = sealed;
    if (len > 0 && in[0] == '{') { /* legacy plaintext */
        if (reserve(buf, len + 1) < 0)
            return att_fail(err, ATT_ERR_INTERNAL, "seal: out of memory");
        memcpy(buf->data, in, len);
        buf->data[len] = 0;
        buf->len = len;
        return 0;
    }
    if (len < SRV_SEAL_OVERHEAD || in[0] != VERSION)
        return att_fail(err, ATT_ERR_INTERNAL, "seal: event %lld is not a sealed payload",
                        (long long)seq);
    size_t n = len - SRV_SEAL_OVERHEAD;
    if (reserve(buf, n + 1) < 0)
        return att_fail(err, ATT_ERR_INTERNAL, "seal: out of memory");
    if (gcm_crypt(0, key, room, seq, in + 1, in + 1 + NONCE_BYTES, n, buf->data,
                  (unsigned char *)(in + 1 + NONCE_BYTES + n)) < 0)
        return att_fail(err, ATT_ERR_INTERNAL,
                        "seal: event %lld does not open (tampered, or another data key)",
                        (long long)seq);
    buf->data[n] = 0;
    buf->len = n;
    return 0;
}
