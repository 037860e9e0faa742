/* tls.c - the certificate pair and the vhost's TLS settings (see tls.h). */
#include "tls.h"

#include <errno.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

/* OpenSSL's reason for the last failure, for a message, and an empty error
 * queue after it: a stale entry would make lws' next SSL_get_error on this
 * thread report a failure that did not happen. */
static const char *ssl_reason(char *buf, size_t size)
{
    unsigned long e = ERR_peek_last_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;
    snprintf(buf, size, "%s", r ? r : "unknown OpenSSL error");
    ERR_clear_error();
    return buf;
}

/* The PEM password callback: a key that asks for one is refused (OpenSSL's
 * default would prompt on the terminal, which a service has not got). */
static int no_password(char *buf, int size, int rwflag, void *asked)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    *(int *)asked = 1;
    return -1;
}

/* The leaf first, then every further certificate in the file. */
static int read_chain(const char *path, srv_tls_pair *out, att_error *err)
{
    char why[160];
    FILE *f = fopen(path, "r");
    if (!f)
        return att_fail(err, ATT_ERR_BAD_MESSAGE, "--tls-cert %s: %s", path, strerror(errno));
    int rc = 0;
    out->leaf = PEM_read_X509(f, NULL, NULL, NULL);
    if (!out->leaf) {
        rc = att_fail(err, ATT_ERR_BAD_MESSAGE, "--tls-cert %s: no PEM certificate (%s)", path,
                      ssl_reason(why, sizeof why));
        goto done;
    }
    if (!(out->chain = sk_X509_new_null())) {
        rc = att_fail(err, ATT_ERR_INTERNAL, "--tls-cert %s: out of memory", path);
        goto done;
    }
    for (;;) {
        X509 *next = PEM_read_X509(f, NULL, NULL, NULL);
        if (!next)
            break;
        if (!sk_X509_push(out->chain, next)) {
            X509_free(next);
            rc = att_fail(err, ATT_ERR_INTERNAL, "--tls-cert %s: out of memory", path);
            goto done;
        }
    }
    /* The loop ends at the end of the file ("no start line") or at an
     * intermediate that does not parse. */
    unsigned long e = ERR_peek_last_error();
    if (e && !(ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE)) {
        rc = att_fail(err, ATT_ERR_BAD_MESSAGE,
                      "--tls-cert %s: certificate %d of the chain does not parse (%s)", path,
                      sk_X509_num(out->chain) + 2, ssl_reason(why, sizeof why));
        goto done;
    }
    ERR_clear_error();
done:
    fclose(f);
    return rc;
}

static int read_key(const char *path, srv_tls_pair *out, att_error *err)
{
    char why[160];
    FILE *f = fopen(path, "r");
    if (!f)
        return att_fail(err, ATT_ERR_BAD_MESSAGE, "--tls-key %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) == 0)
        out->key_mode = (unsigned)(st.st_mode & 0777);
    int asked = 0;
    out->key = PEM_read_PrivateKey(f, NULL, no_password, &asked);
    fclose(f);
    if (out->key)
        return 0;
    if (asked) {
        ERR_clear_error();
        return att_fail(err, ATT_ERR_BAD_MESSAGE,
                        "--tls-key %s: the key is encrypted; give the server an unencrypted key "
                        "(mode 0600, readable by its user only)",
                        path);
    }
    return att_fail(err, ATT_ERR_BAD_MESSAGE, "--tls-key %s: no PEM private key (%s)", path,
                    ssl_reason(why, sizeof why));
}

/* serial and not_after, for the log lines that say which certificate is
 * served. */
static void describe(srv_tls_pair *p)
{
    snprintf(p->serial, sizeof p->serial, "?");
    snprintf(p->not_after, sizeof p->not_after, "?");
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(p->leaf), NULL);
    char *hex = bn ? BN_bn2hex(bn) : NULL;
    if (hex)
        snprintf(p->serial, sizeof p->serial, "%s", hex);
    OPENSSL_free(hex);
    BN_free(bn);
    BIO *mem = BIO_new(BIO_s_mem());
    if (mem && ASN1_TIME_print(mem, X509_get0_notAfter(p->leaf))) {
        int n = BIO_read(mem, p->not_after, (int)sizeof p->not_after - 1);
        p->not_after[n > 0 ? n : 0] = '\0';
    }
    BIO_free(mem);
    ERR_clear_error();
}

int srv_tls_pair_load(const char *cert_path, const char *key_path, srv_tls_pair *out,
                      att_error *err)
{
    memset(out, 0, sizeof *out);
    int rc = read_chain(cert_path, out, err);
    if (rc == 0)
        rc = read_key(key_path, out, err);
    if (rc == 0 && X509_check_private_key(out->leaf, out->key) != 1) {
        ERR_clear_error();
        rc = att_fail(err, ATT_ERR_BAD_MESSAGE,
                      "--tls-key %s is not the private key of --tls-cert %s", key_path, cert_path);
    }
    if (rc == 0) {
        describe(out);
        if (X509_cmp_current_time(X509_get0_notAfter(out->leaf)) < 0)
            rc = att_fail(err, ATT_ERR_BAD_MESSAGE, "--tls-cert %s expired on %s", cert_path,
                          out->not_after);
    }
    if (rc < 0)
        srv_tls_pair_free(out);
    return rc;
}

void srv_tls_pair_free(srv_tls_pair *pair)
{
    X509_free(pair->leaf);
    sk_X509_pop_free(pair->chain, X509_free);
    EVP_PKEY_free(pair->key);
    memset(pair, 0, sizeof *pair);
}

int srv_tls_configure(SSL_CTX *ctx, att_error *err)
{
    char why[160];
    SSL_CTX_set_options(ctx, SRV_TLS_OPTIONS | SSL_OP_CIPHER_SERVER_PREFERENCE);
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
        SSL_CTX_set_max_proto_version(ctx, 0) != 1 || /* 0: the highest OpenSSL has (1.3) */
        SSL_CTX_set_cipher_list(ctx, SRV_TLS12_CIPHERS) != 1 ||
        SSL_CTX_set1_groups_list(ctx, SRV_TLS_GROUPS) != 1)
        return att_fail(err, ATT_ERR_INTERNAL, "cannot set the TLS versions and ciphers (%s)",
                        ssl_reason(why, sizeof why));
    return 0;
}

int srv_tls_install(SSL_CTX *ctx, const srv_tls_pair *pair, att_error *err)
{
    char why[160];
    X509 *current = SSL_CTX_get0_certificate(ctx);
    EVP_PKEY *current_key = current ? X509_get0_pubkey(current) : NULL;
    const char *kind = EVP_PKEY_get0_type_name(pair->key);
    if (current_key && kind && !EVP_PKEY_is_a(current_key, kind)) {
        const char *was = EVP_PKEY_get0_type_name(current_key);
        ERR_clear_error();
        return att_fail(err, ATT_ERR_BAD_MESSAGE,
                        "the new key is %s, the one served is %s: restart the server to change "
                        "the kind of key",
                        kind, was ? was : "another kind");
    }
    /* Checks everything (key matches, security level of each certificate)
     * before it replaces the leaf, its chain and its key together. */
    if (SSL_CTX_use_cert_and_key(ctx, pair->leaf, pair->key, pair->chain, 1) != 1)
        return att_fail(err, ATT_ERR_BAD_MESSAGE, "OpenSSL refused the certificate (%s)",
                        ssl_reason(why, sizeof why));
    ERR_clear_error();
    return 0;
}
