/* token.c - HMAC-SHA256 invitation tokens and the key file (see token.h). */
#include "token.h"
#include "b64url.h"
#include "random.h"
#include "attune/names.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int key_parse(const char *text, size_t len, unsigned char key[SRV_KEY_FILE_BYTES])
{
    while (len && (text[len - 1] == '\n' || text[len - 1] == '\r' || text[len - 1] == ' '))
        len--;
    return srv_hex_decode(text, len, key, SRV_KEY_FILE_BYTES);
}

/* fsyncs the directory holding path, so a file just linked or renamed
 * into it survives a crash. */
int srv_key_file_sync_dir(const char *path, att_error *err)
{
    char dir[4096];
    if (snprintf(dir, sizeof dir, "%s", path) >= (int)sizeof dir)
        return att_fail(err, ATT_ERR_INTERNAL, "key file path too long");
    char *slash = strrchr(dir, '/');
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (slash == dir)
        dir[1] = '\0';
    else
        *slash = '\0';
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return att_fail(err, ATT_ERR_INTERNAL, "cannot open the key file's directory: %s",
                        strerror(errno));
    int rc = fsync(fd);
    close(fd);
    if (rc != 0)
        return att_fail(err, ATT_ERR_INTERNAL, "cannot sync the key file's directory");
    return 0;
}

int srv_key_file_create(const char *path, const unsigned char key[SRV_KEY_FILE_BYTES],
                        att_error *err)
{
    char text[2 * SRV_KEY_FILE_BYTES + 2];
    srv_hex_encode(key, SRV_KEY_FILE_BYTES, text);
    text[2 * SRV_KEY_FILE_BYTES] = '\n';
    text[2 * SRV_KEY_FILE_BYTES + 1] = '\0';
    /* Write a temporary file, fsync, then link it into place: a crash never
     * leaves a half-written key, and O_EXCL on the link keeps a key another
     * process created first. */
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp) {
        OPENSSL_cleanse(text, sizeof text);
        return att_fail(err, ATT_ERR_INTERNAL, "key file path too long");
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        OPENSSL_cleanse(text, sizeof text);
        return att_fail(err, ATT_ERR_INTERNAL, "cannot create key file %s: %s", path,
                        strerror(errno));
    }
    size_t len = strlen(text);
    int ok = write(fd, text, len) == (ssize_t)len && fsync(fd) == 0;
    OPENSSL_cleanse(text, sizeof text);
    close(fd);
    if (!ok) {
        unlink(tmp);
        return att_fail(err, ATT_ERR_INTERNAL, "cannot write key file %s", path);
    }
    int rc = link(tmp, path);
    int link_errno = errno;
    unlink(tmp);
    if (rc != 0 && link_errno != EEXIST)
        return att_fail(err, ATT_ERR_INTERNAL, "cannot create key file %s: %s", path,
                        strerror(link_errno));
    if (rc != 0)
        return 1; /* someone else created it: the caller reads theirs */
    return srv_key_file_sync_dir(path, err);
}

int srv_key_file_read(const char *path, unsigned char key[SRV_KEY_FILE_BYTES], att_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (errno == ENOENT)
            return att_fail(err, ATT_ERR_NOT_FOUND, "no key file %s", path);
        return att_fail(err, ATT_ERR_INTERNAL, "cannot open key file %s: %s", path,
                        strerror(errno));
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || (st.st_mode & 077) != 0) {
        fclose(f);
        return att_fail(err, ATT_ERR_INTERNAL,
                        "key file %s is readable by group or others (chmod 600 it)", path);
    }
    char text[256];
    size_t n = fread(text, 1, sizeof text, f);
    fclose(f);
    int rc = key_parse(text, n, key);
    OPENSSL_cleanse(text, sizeof text);
    if (rc < 0)
        return att_fail(err, ATT_ERR_INTERNAL, "key file %s must hold 64 hex characters", path);
    return 0;
}

int srv_token_key_load(const char *path, srv_token_key *key, att_error *err)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        int rc = srv_key_file_read(path, key->bytes, err);
        if (rc != -ATT_ERR_NOT_FOUND)
            return rc;
        if (srv_random_bytes(key->bytes, sizeof key->bytes, err) < 0)
            return -ATT_ERR_INTERNAL;
        rc = srv_key_file_create(path, key->bytes, err);
        if (rc <= 0)
            return rc;
        /* another process created it first: read theirs */
    }
    return att_fail(err, ATT_ERR_INTERNAL, "cannot create key file %s", path);
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
    srv_hex_encode(nonce, SRV_TOKEN_NONCE_BYTES, nonce_hex);
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

/* A token's two halves: its payload base64url-decoded (NUL-terminated)
 * and where its MAC's text is. */
typedef struct {
    char payload[200];
    size_t len;
    const char *mac_text;
    size_t mac_text_len;
} token_parts;

static int token_split(const char *token, token_parts *p, att_error *err)
{
    size_t len = strnlen(token, ATT_MAX_TOKEN_BYTES + 1);
    if (len > ATT_MAX_TOKEN_BYTES)
        return att_fail(err, ATT_ERR_BAD_TOKEN, "token too long");
    const char *dot = memchr(token, '.', len);
    if (!dot)
        return att_fail(err, ATT_ERR_BAD_TOKEN, "token has no mac");
    int plen = srv_b64url_decode(token, (size_t)(dot - token), (unsigned char *)p->payload,
                                 sizeof p->payload - 1);
    if (plen < 0)
        return att_fail(err, ATT_ERR_BAD_TOKEN, "token payload is not base64url");
    p->payload[plen] = '\0';
    p->len = (size_t)plen;
    p->mac_text = dot + 1;
    p->mac_text_len = len - (size_t)(dot + 1 - token);
    return 0;
}

/* Reads the claims from a payload srv_token_issue wrote
 * ("v1|room|role|expires|nonce hex"); expiry is not checked here. */
static int payload_claims(char *payload, srv_token_claims *claims, att_error *err)
{
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
    if (srv_hex_decode(fields[4], strlen(fields[4]), claims->nonce, SRV_TOKEN_NONCE_BYTES) < 0)
        return att_fail(err, ATT_ERR_BAD_TOKEN, "token nonce invalid");
    snprintf(claims->room, sizeof claims->room, "%s", fields[1]);
    claims->role = role;
    claims->expires = expires;
    return 0;
}

int srv_token_verify(const srv_token_key *key, const char *token, int64_t now,
                     srv_token_claims *claims, att_error *err)
{
    token_parts p;
    int rc = token_split(token, &p, err);
    if (rc < 0)
        return rc;
    unsigned char mac_given[33];
    int mlen = srv_b64url_decode(p.mac_text, p.mac_text_len, mac_given, sizeof mac_given);
    unsigned char mac[32];
    if (mac_payload(key, p.payload, p.len, mac) < 0)
        return att_fail(err, ATT_ERR_INTERNAL, "HMAC failed");
    if (mlen != 32 || CRYPTO_memcmp(mac, mac_given, 32) != 0)
        return att_fail(err, ATT_ERR_BAD_TOKEN, "token mac does not match");
    /* Authentic from here on: the fields were written by srv_token_issue. */
    srv_token_claims c;
    if ((rc = payload_claims(p.payload, &c, err)) < 0)
        return rc;
    if (c.expires <= now)
        return att_fail(err, ATT_ERR_BAD_TOKEN, "token expired");
    *claims = c;
    return 0;
}

int srv_token_read_claims(const char *token, srv_token_claims *claims, att_error *err)
{
    token_parts p;
    int rc = token_split(token, &p, err);
    return rc < 0 ? rc : payload_claims(p.payload, claims, err);
}
