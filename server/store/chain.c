/* chain.c - the hash chain and the head MAC of a room's log (see chain.h). */
#include "chain.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <stdlib.h>
#include <string.h>

#define CHAIN_DOMAIN "attune.chain.v1"
#define HEAD_DOMAIN "attune.head.v1"
#define HEAD_KEY_LABEL "attune head key v1"
/* The longest room id the store keeps (SRV_STORE_ID_BYTES) and more. */
#define ROOM_MAX 128

struct srv_chain_hasher {
    EVP_MD *md; /* SHA-256, fetched once */
    EVP_MD_CTX *ctx;
    EVP_MAC *hmac; /* HMAC, fetched once */
    EVP_MAC_CTX *mac_ctx;
};

int srv_chain_hasher_new(srv_chain_hasher **out, att_error *err)
{
    srv_chain_hasher *h = calloc(1, sizeof *h);
    if (!h)
        return att_fail(err, ATT_ERR_INTERNAL, "chain: out of memory");
    h->md = EVP_MD_fetch(NULL, "SHA256", NULL);
    h->ctx = EVP_MD_CTX_new();
    h->hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    h->mac_ctx = h->hmac ? EVP_MAC_CTX_new(h->hmac) : NULL;
    if (h->mac_ctx) {
        char digest[] = "SHA256";
        OSSL_PARAM params[] = {
            OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
            OSSL_PARAM_construct_end(),
        };
        if (EVP_MAC_CTX_set_params(h->mac_ctx, params) != 1) {
            EVP_MAC_CTX_free(h->mac_ctx);
            h->mac_ctx = NULL;
        }
    }
    if (!h->md || !h->ctx || !h->mac_ctx) {
        srv_chain_hasher_free(h);
        return att_fail(err, ATT_ERR_INTERNAL, "chain: cannot set up SHA-256");
    }
    *out = h;
    return 0;
}

void srv_chain_hasher_free(srv_chain_hasher *h)
{
    if (!h)
        return;
    EVP_MD_CTX_free(h->ctx);
    EVP_MD_free(h->md);
    EVP_MAC_CTX_free(h->mac_ctx);
    EVP_MAC_free(h->hmac);
    free(h);
}

static void seq_be(int64_t seq, unsigned char out[8])
{
    uint64_t v = (uint64_t)seq;
    for (int i = 7; i >= 0; i--) {
        out[i] = (unsigned char)(v & 0xff);
        v >>= 8;
    }
}

int srv_chain_next(srv_chain_hasher *h, const srv_chain_link *prev, const char *room, int64_t seq,
                   const char *type, const void *sealed, size_t len, srv_chain_link *out,
                   att_error *err)
{
    static const unsigned char nul = 0;
    unsigned char be[8];
    seq_be(seq, be);
    if (!type)
        type = "";
    unsigned int n = 0;
    if (EVP_DigestInit_ex(h->ctx, h->md, NULL) != 1 ||
        EVP_DigestUpdate(h->ctx, CHAIN_DOMAIN, strlen(CHAIN_DOMAIN)) != 1 ||
        EVP_DigestUpdate(h->ctx, prev->bytes, sizeof prev->bytes) != 1 ||
        EVP_DigestUpdate(h->ctx, room, strlen(room)) != 1 ||
        EVP_DigestUpdate(h->ctx, &nul, 1) != 1 || EVP_DigestUpdate(h->ctx, be, sizeof be) != 1 ||
        EVP_DigestUpdate(h->ctx, type, strlen(type)) != 1 ||
        EVP_DigestUpdate(h->ctx, &nul, 1) != 1 ||
        (len && EVP_DigestUpdate(h->ctx, sealed, len) != 1) ||
        EVP_DigestFinal_ex(h->ctx, out->bytes, &n) != 1 || n != SRV_CHAIN_BYTES)
        return att_fail(err, ATT_ERR_INTERNAL, "chain: SHA-256 failed");
    return 0;
}

/* out = HMAC-SHA256(key[0..SRV_CHAIN_BYTES), msg[0..n)). */
static int hmac(srv_chain_hasher *h, const unsigned char *key, const void *msg, size_t n,
                unsigned char out[SRV_CHAIN_BYTES])
{
    size_t out_len = 0;
    if (EVP_MAC_init(h->mac_ctx, key, SRV_CHAIN_BYTES, NULL) != 1 ||
        EVP_MAC_update(h->mac_ctx, msg, n) != 1 ||
        EVP_MAC_final(h->mac_ctx, out, &out_len, SRV_CHAIN_BYTES) != 1 ||
        out_len != SRV_CHAIN_BYTES)
        return -1;
    return 0;
}

int srv_chain_head_key(srv_chain_hasher *h, const srv_seal_key *room_key, srv_chain_key *out,
                       att_error *err)
{
    _Static_assert(SRV_SEAL_KEY_BYTES == SRV_CHAIN_BYTES, "a room key is an HMAC-SHA256 key");
    if (hmac(h, room_key->bytes, HEAD_KEY_LABEL, strlen(HEAD_KEY_LABEL), out->bytes) < 0)
        return att_fail(err, ATT_ERR_INTERNAL, "chain: cannot derive the head key");
    return 0;
}

int srv_chain_head_mac(srv_chain_hasher *h, const srv_chain_key *head_key, const char *room,
                       int64_t seq, const srv_chain_link *link, srv_chain_link *mac_out,
                       att_error *err)
{
    unsigned char msg[sizeof HEAD_DOMAIN + ROOM_MAX + 1 + 8 + SRV_CHAIN_BYTES];
    size_t d = strlen(HEAD_DOMAIN), r = strlen(room), n = 0;
    if (r > ROOM_MAX)
        return att_fail(err, ATT_ERR_INTERNAL, "chain: room id too long");
    memcpy(msg, HEAD_DOMAIN, d);
    n = d;
    memcpy(msg + n, room, r);
    n += r;
    msg[n++] = 0;
    seq_be(seq, msg + n);
    n += 8;
    memcpy(msg + n, link->bytes, SRV_CHAIN_BYTES);
    n += SRV_CHAIN_BYTES;
    if (hmac(h, head_key->bytes, msg, n, mac_out->bytes) < 0)
        return att_fail(err, ATT_ERR_INTERNAL, "chain: HMAC failed");
    return 0;
}

int srv_chain_same(const void *a, const void *b, size_t n)
{
    return CRYPTO_memcmp(a, b, n) == 0;
}

void srv_chain_hex(const srv_chain_link *link, char out[SRV_CHAIN_HEX + 1])
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < SRV_CHAIN_BYTES; i++) {
        out[2 * i] = digits[link->bytes[i] >> 4];
        out[2 * i + 1] = digits[link->bytes[i] & 15];
    }
    out[SRV_CHAIN_HEX] = '\0';
}

void srv_chain_wipe(void *p, size_t n)
{
    OPENSSL_cleanse(p, n);
}
