/* tls.h - the server's own TLS: the certificate and key that --tls-cert and
 * --tls-key name, read and checked by us (not by lws), the TLS settings of
 * the vhost's SSL_CTX, and the swap a SIGHUP asks for.
 *
 * Why not lws' loader: it takes a missing file as "no certificate" and
 * serves handshakes that fail, prompts on the terminal for an encrypted key,
 * and on a reload (lws_tls_cert_updated) writes the new certificate into the
 * live SSL_CTX before it knows the key matches, leaving a broken pair. Here
 * a pair is read whole and checked (key matches, not expired, within the
 * security level) before anything serves it, and installed in one call that
 * changes nothing when it fails.
 *
 * Ownership: an srv_tls_pair owns its certificate, chain and key until
 * srv_tls_pair_free; installing takes references, so the pair is freed
 * right after. The SSL_CTX is lws' (the vhost's), borrowed.
 * Threads: srv_tls_pair_load on any thread (it touches no SSL_CTX);
 * srv_tls_configure and srv_tls_install on the lws service thread only,
 * where every handshake runs (a handshake started before an install keeps
 * the certificate it got). */
#ifndef SRV_TLS_H
#define SRV_TLS_H

#include <openssl/ssl.h>
#include <openssl/x509.h>
#include "attune/types.h"

/* TLS 1.2 suites: ECDHE key exchange (forward secrecy) with AES-GCM or
 * ChaCha20-Poly1305 only. TLS 1.3 keeps OpenSSL's defaults (all AEAD). */
#define SRV_TLS12_CIPHERS                                                                          \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"                                   \
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"                                   \
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

/* The key exchange groups offered, best first (lws would pin P-256 alone). */
#define SRV_TLS_GROUPS "X25519:P-256:P-384"

/* Options for the vhost's SSL_CTX (lws_context_creation_info.ssl_options_set):
 * nothing below TLS 1.2, no TLS compression (CRIME), no renegotiation. */
#define SRV_TLS_OPTIONS                                                                            \
    (SSL_OP_NO_SSLv3 | SSL_OP_NO_TLSv1 | SSL_OP_NO_TLSv1_1 | SSL_OP_NO_COMPRESSION |               \
     SSL_OP_NO_RENEGOTIATION)

typedef struct {
    X509 *leaf;
    STACK_OF(X509) * chain; /* the intermediates after the leaf (may be empty) */
    EVP_PKEY *key;
    char serial[80];    /* the leaf's serial number in hex, for the log */
    char not_after[40]; /* the leaf's expiry as OpenSSL prints it */
    unsigned key_mode;  /* the key file's permission bits (the server warns when 077 has any) */
} srv_tls_pair;

/* Reads cert_path (PEM: the leaf, then any intermediates) and key_path (PEM,
 * unencrypted) into *out and checks them: both parse, the key belongs to
 * the leaf, the leaf has not expired. 0, or a negative code with err naming
 * the file and what is wrong (out is then empty). */
int srv_tls_pair_load(const char *cert_path, const char *key_path, srv_tls_pair *out,
                      att_error *err);

/* Frees what a pair holds (an empty or freed pair: nothing). */
void srv_tls_pair_free(srv_tls_pair *pair);

/* Sets the vhost's SSL_CTX, as lws made it, to TLS 1.2 to 1.3 with the
 * options, TLS 1.2 suites and groups above. 0, or a negative code with err
 * set. */
int srv_tls_configure(SSL_CTX *ctx, att_error *err);

/* Makes `pair` what new handshakes on ctx present, or changes nothing and
 * fails: refused by OpenSSL (e.g. under its security level), or a key of
 * another kind than the one installed (RSA -> EC needs a restart: OpenSSL
 * would keep serving the old one beside it). 0, or a negative code with err
 * set. */
int srv_tls_install(SSL_CTX *ctx, const srv_tls_pair *pair, att_error *err);

#endif
