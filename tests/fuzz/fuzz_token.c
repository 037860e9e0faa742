/* fuzz_token.c - libFuzzer target for invitation tokens (server/store/token.h)
 * under a fixed test key, at a fixed "now". Each input is used three ways:
 *  - as a token string (up to its first NUL): srv_token_verify must not
 *    crash or read out of bounds, and accepts only what srv_token_issue
 *    writes for the claims it read (forging an HMAC-SHA256 is not something
 *    a fuzzer does; the seeds hold tokens minted with the test key);
 *  - as a payload the key holder signed (the MAC made here): the fields'
 *    parser behind the MAC check must not crash, and whatever it accepts
 *    has a valid room id, a role that has links and an expiry after now;
 *  - as the parameters of a token minted here (room id, role, expiry and
 *    nonce taken from its bytes): that token verifies to exactly those
 *    claims, with one character changed it never verifies (the encoding
 *    has one spelling and the MAC covers everything), after its expiry it
 *    is refused, and another key does not open it. */
#include "b64url.h"
#include "token.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attune/names.h"

#define NOW 1700000000 /* unix seconds, 2023-11-14 */

static srv_token_key test_key(unsigned char salt)
{
    srv_token_key key;
    for (size_t i = 0; i < sizeof key.bytes; i++)
        key.bytes[i] = (unsigned char)(i * 7 + salt);
    return key;
}

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_token: %s\n", what);
    abort();
}

static int role_has_links(att_role r)
{
    return r == ATT_ROLE_PARTNER_A || r == ATT_ROLE_PARTNER_B || r == ATT_ROLE_THERAPIST ||
           r == ATT_ROLE_OBSERVER;
}

static void check_claims(const srv_token_claims *c)
{
    if (!srv_room_id_valid(c->room) || !role_has_links(c->role) || c->expires <= NOW)
        fail("accepted a token whose claims are not valid");
}

/* Field by field: the bytes after the room's NUL are not claims. */
static int same_claims(const srv_token_claims *a, const srv_token_claims *b)
{
    return strcmp(a->room, b->room) == 0 && a->role == b->role && a->expires == b->expires &&
           memcmp(a->nonce, b->nonce, sizeof a->nonce) == 0;
}

/* The input as a token string. Only the key's holder makes tokens that
 * verify (the seeds hold two), and those only as srv_token_issue spells
 * them. */
static void verify_as_token(const srv_token_key *key, const uint8_t *data, size_t size)
{
    char *token = malloc(size + 1);
    if (!token)
        abort();
    memcpy(token, data, size);
    token[size] = 0;
    srv_token_claims claims;
    att_error err = {0};
    if (srv_token_verify(key, token, NOW, &claims, &err) == 0) {
        check_claims(&claims);
        char minted[SRV_TOKEN_MAX];
        if (srv_token_issue(key, claims.room, claims.role, claims.expires, claims.nonce, minted,
                            sizeof minted, &err) < 0 ||
            strcmp(minted, token) != 0)
            fail("accepted a token srv_token_issue would not have written");
    } else if (err.code != ATT_ERR_BAD_TOKEN) {
        fail("a bad token failed with another code than bad_token");
    }
    free(token);
}

/* The input as a payload signed with the key: the field parser. */
static void verify_as_signed_payload(const srv_token_key *key, const uint8_t *data, size_t size)
{
    if (size > 150) /* the verifier's payload buffer holds 199 bytes */
        size = 150;
    unsigned char mac[32];
    unsigned int mac_len = 0;
    if (!HMAC(EVP_sha256(), key->bytes, (int)sizeof key->bytes, data, size, mac, &mac_len) ||
        mac_len != sizeof mac)
        fail("HMAC failed");
    char token[SRV_TOKEN_MAX + 64];
    int n = srv_b64url_encode(data, size, token, sizeof token);
    if (n < 0)
        fail("encode failed");
    token[n] = '.';
    if (srv_b64url_encode(mac, sizeof mac, token + n + 1, sizeof token - (size_t)n - 1) < 0)
        fail("encode failed");
    srv_token_claims claims, back;
    att_error err = {0};
    if (srv_token_verify(key, token, NOW, &claims, &err) == 0) {
        check_claims(&claims);
        /* What it read re-mints into a token that reads the same. */
        char again[SRV_TOKEN_MAX];
        if (srv_token_issue(key, claims.room, claims.role, claims.expires, claims.nonce, again,
                            sizeof again, &err) < 0 ||
            srv_token_verify(key, again, NOW, &back, &err) < 0 || !same_claims(&back, &claims))
            fail("claims read from a signed payload do not re-mint");
    }
}

static const char room_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* The input as a minted token's parameters. */
static void round_trip(const srv_token_key *key, const uint8_t *data, size_t size)
{
    uint8_t p[32] = {0}; /* role, expiry (4), where and what to change (3), nonce (12) */
    memcpy(p, data, size < 20 ? size : 20);
    const uint8_t *rest = size > 20 ? data + 20 : NULL;
    size_t rest_len = size > 20 ? size - 20 : 0;
    static const att_role roles[] = {ATT_ROLE_PARTNER_A, ATT_ROLE_PARTNER_B, ATT_ROLE_THERAPIST,
                                     ATT_ROLE_OBSERVER};
    att_role role = roles[p[0] % 4];
    int64_t expires = NOW + 1 + ((int64_t)p[1] << 24 | p[2] << 16 | p[3] << 8 | p[4]);
    char room[SRV_ROOM_ID_MAX + 1];
    size_t room_len = rest_len == 0 ? 1 : rest_len > SRV_ROOM_ID_MAX ? SRV_ROOM_ID_MAX : rest_len;
    for (size_t i = 0; i < room_len; i++)
        room[i] = room_alphabet[(rest ? rest[i] : 0) % (sizeof room_alphabet - 1)];
    room[room_len] = 0;
    const unsigned char *nonce = p + 8;

    char token[SRV_TOKEN_MAX];
    att_error err = {0};
    if (srv_token_issue(key, room, role, expires, nonce, token, sizeof token, &err) < 0)
        fail("could not mint a token for a valid room and role");
    srv_token_claims claims;
    if (srv_token_verify(key, token, NOW, &claims, &err) < 0)
        fail("a minted token does not verify");
    if (strcmp(claims.room, room) != 0 || claims.role != role || claims.expires != expires ||
        memcmp(claims.nonce, nonce, SRV_TOKEN_NONCE_BYTES) != 0)
        fail("a minted token verifies to other claims");
    if (srv_token_verify(key, token, expires, &claims, &err) == 0)
        fail("a token verified at its expiry");
    srv_token_key other = test_key(1);
    if (srv_token_verify(&other, token, NOW, &claims, &err) == 0)
        fail("a token verified under another key");

    size_t len = strlen(token);
    size_t at = ((size_t)p[5] << 8 | p[6]) % len;
    char was = token[at];
    char now_char = (char)p[7];
    if (now_char == was)
        now_char = (char)(was ^ 1);
    token[at] = now_char;
    if (srv_token_verify(key, token, NOW, &claims, &err) == 0)
        fail("a token with one character changed still verifies");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const srv_token_key key = test_key(0);
    verify_as_token(&key, data, size);
    verify_as_signed_payload(&key, data, size);
    round_trip(&key, data, size);
    return 0;
}
