/* test_token.c - base64url and hex, invitation tokens: valid, tampered,
 * expired, foreign key, claims read without the key, and the key file
 * (created 0600, reread identically). */
#include "check.h"
#include "b64url.h"
#include "token.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void test_b64url(void)
{
    const unsigned char in[] = {0xfb, 0xff, 0x00, 0x10, 0x7e};
    for (size_t len = 0; len <= sizeof in; len++) {
        char enc[16];
        unsigned char dec[16];
        int n = srv_b64url_encode(in, len, enc, sizeof enc);
        CHECK(n >= 0);
        CHECK(strchr(enc, '+') == NULL && strchr(enc, '/') == NULL && strchr(enc, '=') == NULL);
        int m = srv_b64url_decode(enc, (size_t)n, dec, sizeof dec);
        CHECK_INT(m, len);
        CHECK(memcmp(in, dec, len) == 0);
    }
    unsigned char dec[8];
    CHECK(srv_b64url_decode("a", 1, dec, sizeof dec) < 0);    /* impossible length */
    CHECK(srv_b64url_decode("ab+c", 4, dec, sizeof dec) < 0); /* not url alphabet */
    CHECK(srv_b64url_decode("AB", 2, dec, sizeof dec) < 0);   /* non-zero tail bits */
    CHECK(srv_b64url_decode("AA", 2, dec, sizeof dec) == 1);
    /* hex: lowercase out, either case in, exact length only */
    char hex[2 * sizeof in + 1];
    srv_hex_encode(in, sizeof in, hex);
    CHECK_STR(hex, "fbff00107e");
    unsigned char back[sizeof in];
    CHECK_INT(srv_hex_decode("FBff00107E", 10, back, sizeof back), 0);
    CHECK(memcmp(back, in, sizeof in) == 0);
    CHECK(srv_hex_decode("fbff00107", 9, back, sizeof back) < 0);
    CHECK(srv_hex_decode("fbff00107g", 10, back, sizeof back) < 0);
}

static void test_tokens(const srv_token_key *key, const srv_token_key *other)
{
    char tok[SRV_TOKEN_MAX];
    att_error err = {0};
    CHECK_INT(
        srv_token_issue(key, "room-1_x", ATT_ROLE_PARTNER_B, 2000, NULL, tok, sizeof tok, &err), 0);
    CHECK(strlen(tok) < ATT_MAX_TOKEN_BYTES);
    srv_token_claims c;
    CHECK_INT(srv_token_verify(key, tok, 1999, &c, &err), 0);
    CHECK_STR(c.room, "room-1_x");
    CHECK_INT(c.role, ATT_ROLE_PARTNER_B);
    CHECK_INT(c.expires, 2000);
    /* read without the key (the load generator): the same claims, expiry
     * not checked; a token that is not one is refused */
    srv_token_claims r;
    CHECK_INT(srv_token_read_claims(tok, &r, &err), 0);
    CHECK_STR(r.room, "room-1_x");
    CHECK_INT(r.role, ATT_ROLE_PARTNER_B);
    CHECK_INT(r.expires, 2000);
    CHECK(memcmp(r.nonce, c.nonce, sizeof r.nonce) == 0);
    CHECK_INT(srv_token_read_claims("not-a-token", &r, &err), -ATT_ERR_BAD_TOKEN);
    CHECK_INT(srv_token_read_claims("djF8eA.AA", &r, &err), -ATT_ERR_BAD_TOKEN); /* "v1|x" */

    /* expired: at and after the expiry second */
    CHECK_INT(srv_token_verify(key, tok, 2000, &c, &err), -ATT_ERR_BAD_TOKEN);
    CHECK_INT(err.code, ATT_ERR_BAD_TOKEN);
    CHECK(strstr(err.message, "expired") != NULL);
    /* foreign key */
    CHECK_INT(srv_token_verify(other, tok, 1000, &c, &err), -ATT_ERR_BAD_TOKEN);
    /* every single-character change anywhere is rejected */
    size_t len = strlen(tok);
    int accepted = 0;
    for (size_t i = 0; i < len; i++) {
        char t2[SRV_TOKEN_MAX];
        memcpy(t2, tok, len + 1);
        t2[i] = t2[i] == 'A' ? 'B' : 'A';
        if (srv_token_verify(key, t2, 1000, &c, &err) == 0)
            accepted++;
    }
    CHECK_INT(accepted, 0);
    /* truncated, empty, garbage */
    char t3[SRV_TOKEN_MAX];
    memcpy(t3, tok, len - 1);
    t3[len - 1] = '\0';
    CHECK(srv_token_verify(key, t3, 1000, &c, &err) < 0);
    CHECK(srv_token_verify(key, "", 1000, &c, &err) < 0);
    CHECK(srv_token_verify(key, "....", 1000, &c, &err) < 0);
    CHECK(srv_token_verify(key, "not a token at all", 1000, &c, &err) < 0);

    /* a payload re-signed with a different role under the wrong key fails */
    char tok_obs[SRV_TOKEN_MAX];
    CHECK_INT(srv_token_issue(other, "room-1_x", ATT_ROLE_THERAPIST, 2000, NULL, tok_obs,
                              sizeof tok_obs, &err),
              0);
    CHECK(srv_token_verify(key, tok_obs, 1000, &c, &err) < 0);

    /* fixed nonce: deterministic; random nonce: tokens differ */
    unsigned char nonce[SRV_TOKEN_NONCE_BYTES] = {1, 2, 3};
    char d1[SRV_TOKEN_MAX], d2[SRV_TOKEN_MAX], r2[SRV_TOKEN_MAX];
    srv_token_issue(key, "r", ATT_ROLE_OBSERVER, 5000, nonce, d1, sizeof d1, &err);
    srv_token_issue(key, "r", ATT_ROLE_OBSERVER, 5000, nonce, d2, sizeof d2, &err);
    CHECK_STR(d1, d2);
    srv_token_issue(key, "r", ATT_ROLE_OBSERVER, 5000, NULL, r2, sizeof r2, &err);
    CHECK(strcmp(d1, r2) != 0);
    CHECK_INT(srv_token_verify(key, d1, 10, &c, &err), 0);
    CHECK_INT(c.role, ATT_ROLE_OBSERVER);
    /* verify hands back the nonce: what the invitation record is found by */
    CHECK(memcmp(c.nonce, nonce, sizeof nonce) == 0);

    /* issuing refuses bad rooms and roles */
    CHECK(srv_token_issue(key, "bad room", ATT_ROLE_PARTNER_A, 1, NULL, tok, sizeof tok, &err) < 0);
    CHECK(srv_token_issue(key, "r", ATT_ROLE_SYSTEM, 1, NULL, tok, sizeof tok, &err) < 0);
    CHECK(srv_token_issue(key, "r", ATT_ROLE_PARTNER_A, 1, NULL, tok, 10, &err) < 0);
}

int main(void)
{
    test_b64url();

    char dir[] = "/tmp/attune-token-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[256];
    snprintf(path, sizeof path, "%s/secret.key", dir);
    srv_token_key k1, k2, k3;
    att_error err = {0};
    CHECK_INT(srv_token_key_load(path, &k1, &err), 0);
    struct stat st;
    CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
    CHECK_INT(srv_token_key_load(path, &k2, &err), 0);
    CHECK(memcmp(k1.bytes, k2.bytes, sizeof k1.bytes) == 0);

    char path2[256];
    snprintf(path2, sizeof path2, "%s/other.key", dir);
    CHECK_INT(srv_token_key_load(path2, &k3, &err), 0);
    CHECK(memcmp(k1.bytes, k3.bytes, sizeof k1.bytes) != 0);

    test_tokens(&k1, &k3);

    /* a world-readable key file is refused */
    chmod(path2, 0644);
    CHECK(srv_token_key_load(path2, &k3, &err) < 0);
    /* a corrupt key file is refused */
    FILE *f = fopen(path2, "w");
    fputs("xyz\n", f);
    fclose(f);
    chmod(path2, 0600);
    CHECK(srv_token_key_load(path2, &k3, &err) < 0);

    unlink(path);
    unlink(path2);
    rmdir(dir);
    return check_done("token");
}
