/* tickets.c - single-use staff tickets in memory (see tickets.h). */
#include "tickets.h"
#include "b64url.h"
#include "random.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    unsigned char hash[32];
    int64_t expires_at; /* ms; 0 for a free slot */
    srv_ticket_grant grant;
} ticket_slot;

struct srv_tickets {
    int64_t ttl_ms;
    ticket_slot slot[SRV_TICKETS_MAX];
};

int srv_tickets_new(int64_t ttl_ms, srv_tickets **out, att_error *err)
{
    srv_tickets *t = calloc(1, sizeof *t);
    if (!t)
        return att_fail(err, ATT_ERR_INTERNAL, "tickets: out of memory");
    t->ttl_ms = ttl_ms;
    *out = t;
    return 0;
}

int64_t srv_tickets_ttl_ms(const srv_tickets *t)
{
    return t->ttl_ms;
}

void srv_tickets_free(srv_tickets *t)
{
    free(t);
}

static int hash_ticket(const char *ticket, unsigned char out[32])
{
    unsigned int len = 0;
    return EVP_Digest(ticket, strlen(ticket), out, &len, EVP_sha256(), NULL) == 1 && len == 32 ? 0
                                                                                               : -1;
}

int srv_tickets_issue(srv_tickets *t, const srv_ticket_grant *grant, int64_t now,
                      char out[SRV_TICKET_BYTES], att_error *err)
{
    unsigned char raw[32];
    if (srv_random_bytes(raw, sizeof raw, err) < 0)
        return -ATT_ERR_INTERNAL;
    if (srv_b64url_encode(raw, sizeof raw, out, SRV_TICKET_BYTES) < 0)
        return att_fail(err, ATT_ERR_INTERNAL, "tickets: buffer too small");
    /* A free or expired slot, else the one expiring first (the oldest). */
    ticket_slot *use = &t->slot[0];
    for (size_t i = 0; i < SRV_TICKETS_MAX; i++) {
        ticket_slot *s = &t->slot[i];
        if (s->expires_at <= now) {
            use = s;
            break;
        }
        if (s->expires_at < use->expires_at)
            use = s;
    }
    if (hash_ticket(out, use->hash) < 0)
        return att_fail(err, ATT_ERR_INTERNAL, "tickets: SHA-256 failed");
    use->expires_at = now + t->ttl_ms;
    use->grant = *grant;
    return 0;
}

int srv_tickets_take(srv_tickets *t, const char *ticket, int64_t now, srv_ticket_grant *out)
{
    unsigned char h[32];
    if (strlen(ticket) != SRV_TICKET_BYTES - 1 || hash_ticket(ticket, h) < 0)
        return 0;
    /* Every live slot is compared, in constant time each, so the answer's
     * timing says nothing about which hash matched how far. */
    ticket_slot *found = NULL;
    for (size_t i = 0; i < SRV_TICKETS_MAX; i++) {
        ticket_slot *s = &t->slot[i];
        if (s->expires_at && CRYPTO_memcmp(s->hash, h, sizeof h) == 0)
            found = s;
    }
    if (!found)
        return 0;
    int fresh = found->expires_at > now;
    if (fresh)
        *out = found->grant;
    memset(found, 0, sizeof *found); /* single use */
    return fresh;
}

void srv_tickets_drop_session(srv_tickets *t, uint64_t login_session)
{
    for (size_t i = 0; i < SRV_TICKETS_MAX; i++)
        if (t->slot[i].expires_at && t->slot[i].grant.login_session == login_session)
            memset(&t->slot[i], 0, sizeof t->slot[i]);
}
