/* token.c - HMAC-SHA256 invitation tokens and the key file (see token.h). */
#include "token.h"
#include "attune/names.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char b64url_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int srv_b64url_encode(const unsigned char *in, size_t len, char *out, size_t out_size)
{
    size_t need = (len / 3) * 4 + (len % 3 ? len % 3 + 1 : 0);
    if (need + 1 > out_size)
        return -1;
    size_t o = 0;
    size_t i = 0;
    for (; i + 2 < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = b64url_alphabet[(v >> 18) & 63];
        out[o++] = b64url_alphabet[(v >> 12) & 63];
        out[o++] = b64url_alphabet[(v >> 6) & 63];
        out[o++] = b64url_alphabet[v & 63];
    }
    if (len - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = b64url_alphabet[(v >> 18) & 63];
        out[o++] = b64url_alphabet[(v >> 12) & 63];
    } else if (len - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = b64url_alphabet[(v >> 18) & 63];
        out[o++] = b64url_alphabet[(v >> 12) & 63];
        out[o++] = b64url_alphabet[(v >> 6) & 63];
    }
    out[o] = '\0';
    return (int)o;
}

static int b64url_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

int srv_b64url_decode(const char *in, size_t len, unsigned char *out, size_t out_size)
{
    if (len % 4 == 1)
        return -1;
    size_t need = len / 4 * 3 + (len % 4 ? len % 4 - 1 : 0);
    if (need > out_size)
        return -1;
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64url_value(in[i]);
        if (v < 0)
            return -1;
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
        }
    }
    /* Leftover bits must be zero, so each token has exactly one spelling. */
    if (bits && (acc & ((1u << bits) - 1)))
        return -1;
    return (int)o;
}

int srv_random_bytes(unsigned char *buf, size_t n, att_error *err)
{
    if (RAND_bytes(buf, (int)n) != 1)
        return att_fail(err, ATT_ERR_INTERNAL, "no random bytes from OpenSSL");
    return 0;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static int key_parse(const char *text, size_t len, srv_token_key *key)
{
    while (len && (text[len - 1] == '\n' || text[len - 1] == '\r' || text[len - 1] == ' '))
        len--;
    if (len != 2 * SRV_TOKEN_KEY_BYTES)
        return -1;
    for (size_t i = 0; i < SRV_TOKEN_KEY_BYTES; i++) {
        int hi = hex_value(text[2 * i]), lo = hex_value(text[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        key->bytes[i] = (unsigned char)(hi << 4 | lo);
    }
    return 0;
}

static int key_create(const char *path, srv_token_key *key, att_error *err)
{
    if (srv_random_bytes(key->bytes, sizeof key->bytes, err) < 0)
        return -ATT_ERR_INTERNAL;
    char text[2 * SRV_TOKEN_KEY_BYTES + 2];
    for (size_t i = 0; i < SRV_TOKEN_KEY_BYTES; i++)
        snprintf(text + 2 * i, 3, "%02x", key->bytes[i]);
    text[2 * SRV_TOKEN_KEY_BYTES] = '\n';
    text[2 * SRV_TOKEN_KEY_BYTES + 1] = '\0';
    /* Write a temporary file, fsync, then link it into place: a crash never
     * leaves a half-written key, and O_EXCL on the link keeps a key another
     * process created first. */
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp)
        return att_fail(err, ATT_ERR_INTERNAL, "key file path too long");
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return att_fail(err, ATT_ERR_INTERNAL, "cannot create key file: %s", strerror(errno));
    size_t len = strlen(text);
    int ok = write(fd, text, len) == (ssize_t)len && fsync(fd) == 0;
    close(fd);
    if (!ok) {
        unlink(tmp);
        return att_fail(err, ATT_ERR_INTERNAL, "cannot write key file");
    }
    int rc = link(tmp, path);
    int link_errno = errno;
    unlink(tmp);
    if (rc != 0 && link_errno != EEXIST)
        return att_fail(err, ATT_ERR_INTERNAL, "cannot create key file: %s", strerror(link_errno));
    if (rc != 0)
        return 1; /* someone else created it: read theirs */
    return 0;
}

int srv_token_key_load(const char *path, srv_token_key *key, att_error *err)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        FILE *f = fopen(path, "rb");
        if (!f) {
            if (errno != ENOENT)
                return att_fail(err, ATT_ERR_INTERNAL, "cannot open key file: %s", strerror(errno));
            int rc = key_create(path, key, err);
            if (rc <= 0)
                return rc;
            continue;
        }
        struct stat st;
        if (fstat(fileno(f), &st) == 0 && (st.st_mode & 077) != 0) {
            fclose(f);
            return att_fail(err, ATT_ERR_INTERNAL,
                            "key file is readable by group or others (chmod 600 it)");
        }
        char text[256];
        size_t n = fread(text, 1, sizeof text, f);
        fclose(f);
        if (key_parse(text, n, key) < 0)
            return att_fail(err, ATT_ERR_INTERNAL, "key file must hold 64 hex characters");
        return 0;
    }
    return att_fail(err, ATT_ERR_INTERNAL, "cannot create key file");
}

int srv_room_id_valid(const char *id)
{
    size_t n = 0;
    for (; id[n]; n++) {
        char c = id[n];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_'))
            return 0;
        if (n >= SRV_ROOM_ID_MAX)
            return 0;
    }
    return n > 0;
}

static int mac_payload(const srv_token_key *key, const char *payload, size_t len,
                       unsigned char mac[32])
{
    unsigned int mac_len = 0;
    if (!HMAC(EVP_sha256(), key->bytes, (int)sizeof key->bytes, (const unsigned char *)payload, len,
              mac, &mac_len) ||
        mac_len != 32)
        return -1;
    return 0;
}

static int role_is_member(att_role r)
{
    return r == ATT_ROLE_PARTNER_A || r == ATT_ROLE_PARTNER_B || r == ATT_ROLE_THERAPIST ||
           r == ATT_ROLE_OBSERVER;
}

int srv_token_issue(const srv_token_key *key, const char *room, att_role role, int64_t expires,
                    const unsigned char *nonce, char *out, size_t out_size, att_error *err)
{
    if (!srv_room_id_valid(room))
        return att_fail(err, ATT_ERR_BAD_MESSAGE, "invalid room id");
    if (!role_is_member(role))
        return att_fail(err, ATT_ERR_BAD_MESSAGE, "tokens are for partners, therapist, observer");
    unsigned char fresh[SRV_TOKEN_NONCE_BYTES];
    if (!nonce) {
        if (srv_random_bytes(fresh, sizeof fresh, err) < 0)
            return -ATT_ERR_INTERNAL;
        nonce = fresh;
    }
    char nonce_hex[2 * SRV_TOKEN_NONCE_BYTES + 1];
    for (size_t i = 0; i < SRV_TOKEN_NONCE_BYTES; i++)
        snprintf(nonce_hex + 2 * i, 3, "%02x", nonce[i]);
    char payload[160];
    int plen = snprintf(payload, sizeof payload, "v1|%s|%s|%" PRId64 "|%s", room,
                        att_role_name(role), expires, nonce_hex);
    if (plen < 0 || plen >= (int)sizeof payload)
        return att_fail(err, ATT_ERR_INTERNAL, "token payload too long");
    unsigned char mac[32];
    if (mac_payload(key, payload, (size_t)plen, mac) < 0)
        return att_fail(err, ATT_ERR_INTERNAL, "HMAC failed");
    int n = srv_b64url_encode((const unsigned char *)payload, (size_t)plen, out, out_size);
    if (n < 0 || (size_t)n + 2 >= out_size)
        return att_fail(err, ATT_ERR_INTERNAL, "token buffer too small");
    out[n] = '.';
    if (srv_b64url_encode(mac, sizeof mac, out + n + 1, out_size - (size_t)n - 1) < 0)
        return att_fail(err, ATT_ERR_INTERNAL, "token buffer too small");
    return 0;
}

int srv_token_verify(const srv_token_key *key, const char *token, int64_t now,
                     srv_token_claims *claims, att_error *err)
{
    size_t len = strnlen(token, ATT_MAX_TOKEN_BYTES + 1);
    if (len > ATT_MAX_TOKEN_BYTES)
        return att_fail(err, ATT_ERR_BAD_TOKEN, "token too long");
    const char *dot = memchr(token, '.', len);
    if (!dot)
        return att_fail(err, ATT_ERR_BAD_TOKEN, "token has no mac");
    char payload[200];
    int plen = srv_b64url_decode(token, (size_t)(dot - token), (unsigned char *)payload,
                                 sizeof payload - 1);
    if (plen < 0)
        return att_fail(err, ATT_ERR_BAD_TOKEN, "token payload is not base64url");
    payload[plen] = '\0';
    unsigned char mac_given[33];
    int mlen =
        srv_b64url_decode(dot + 1, len - (size_t)(dot + 1 - token), mac_given, sizeof mac_given);
    unsigned char mac[32];
    if (mac_payload(key, payload, (size_t)plen, mac) < 0)
        return att_fail(err, ATT_ERR_INTERNAL, "HMAC failed");
    if (mlen != 32 || CRYPTO_memcmp(mac, mac_given, 32) != 0)
        return att_fail(err, ATT_ERR_BAD_TOKEN, "token mac does not match");
    /* Authentic from here on: the fields were written by srv_token_issue. */
    char *fields[5];
    int nf = 0;
    char *save = NULL;
    for (char *p = strtok_r(payload, "|", &save); p && nf < 5; p = strtok_r(NULL, "|", &save))
        fields[nf++] = p;
    if (nf != 5 || strcmp(fields[0], "v1") != 0)
        return att_fail(err, ATT_ERR_BAD_TOKEN, "token version unknown");
    if (!srv_room_id_valid(fields[1]))
        return att_fail(err, ATT_ERR_BAD_TOKEN, "token room invalid");
    att_role role = att_role_from_name(fields[2]);
    if (!role_is_member(role))
        return att_fail(err, ATT_ERR_BAD_TOKEN, "token role invalid");
    char *end = NULL;
    errno = 0;
    long long expires = strtoll(fields[3], &end, 10);
    if (errno || !end || *end)
        return att_fail(err, ATT_ERR_BAD_TOKEN, "token expiry invalid");
    if (expires <= now)
        return att_fail(err, ATT_ERR_BAD_TOKEN, "token expired");
    if (strlen(fields[4]) != 2 * SRV_TOKEN_NONCE_BYTES)
        return att_fail(err, ATT_ERR_BAD_TOKEN, "token nonce invalid");
    for (size_t i = 0; i < SRV_TOKEN_NONCE_BYTES; i++) {
        int hi = hex_value(fields[4][2 * i]), lo = hex_value(fields[4][2 * i + 1]);
        if (hi < 0 || lo < 0)
            return att_fail(err, ATT_ERR_BAD_TOKEN, "token nonce invalid");
        claims->nonce[i] = (unsigned char)(hi << 4 | lo);
    }
    snprintf(claims->room, sizeof claims->room, "%s", fields[1]);
    claims->role = role;
    claims->expires = expires;
    return 0;
}
