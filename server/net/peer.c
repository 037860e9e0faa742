/* peer.c - client addresses and connections per address (see peer.h). */
#include "peer.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PEER_BUCKETS 4096 /* a power of two */

struct srv_peer_entry {
    srv_peer_entry *next;
    uint32_t hash;
    int count;
    char addr[SRV_PEER_ADDR_MAX];
};

struct srv_peer_counts {
    srv_peer_entry *buckets[PEER_BUCKETS];
    int64_t total;
};

/* Fills family/bytes from a numeric address; IPv4-mapped IPv6 becomes IPv4. */
static int parse_addr(const char *text, int *family, unsigned char bytes[16])
{
    memset(bytes, 0, 16);
    if (inet_pton(AF_INET, text, bytes) == 1) {
        *family = AF_INET;
        return 0;
    }
    unsigned char v6[16];
    if (inet_pton(AF_INET6, text, v6) != 1)
        return -1;
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (memcmp(v6, mapped, sizeof mapped) == 0) {
        memcpy(bytes, v6 + 12, 4);
        *family = AF_INET;
        return 0;
    }
    memcpy(bytes, v6, 16);
    *family = AF_INET6;
    return 0;
}

int srv_cidr_parse(const char *text, srv_cidr *out, att_error *err)
{
    char addr[SRV_PEER_ADDR_MAX];
    const char *slash = strchr(text, '/');
    size_t n = slash ? (size_t)(slash - text) : strlen(text);
    if (n == 0 || n >= sizeof addr)
        return att_fail(err, ATT_ERR_BAD_MESSAGE, "--trusted-proxy: '%s' is not an address or CIDR",
                        text);
    memcpy(addr, text, n);
    addr[n] = '\0';
    memset(out, 0, sizeof *out);
    if (parse_addr(addr, &out->family, out->addr) < 0)
        return att_fail(err, ATT_ERR_BAD_MESSAGE, "--trusted-proxy: '%s' is not an address or CIDR",
                        text);
    int max = out->family == AF_INET ? 32 : 128;
    out->prefix = max;
    if (slash) {
        char *end = NULL;
        long bits = strtol(slash + 1, &end, 10);
        if (!slash[1] || !end || *end || bits < 0 || bits > max)
            return att_fail(err, ATT_ERR_BAD_MESSAGE,
                            "--trusted-proxy: '%s': the prefix must be 0..%d bits", text, max);
        out->prefix = (int)bits;
    }
    return 0;
}

static int cidr_match(const srv_cidr *c, int family, const unsigned char bytes[16])
{
    if (c->family != family)
        return 0;
    int full = c->prefix / 8, rest = c->prefix % 8;
    if (memcmp(c->addr, bytes, (size_t)full) != 0)
        return 0;
    if (rest) {
        unsigned char mask = (unsigned char)(0xff << (8 - rest));
        if ((c->addr[full] & mask) != (bytes[full] & mask))
            return 0;
    }
    return 1;
}

int srv_cidr_list_contains(const srv_cidr *list, int n, const char *addr)
{
    int family;
    unsigned char bytes[16];
    if (parse_addr(addr, &family, bytes) < 0)
        return 0;
    for (int i = 0; i < n; i++)
        if (cidr_match(&list[i], family, bytes))
            return 1;
    return 0;
}

int srv_peer_normalise(const char *text, char out[SRV_PEER_ADDR_MAX])
{
    int family;
    unsigned char bytes[16];
    out[0] = '\0';
    if (parse_addr(text, &family, bytes) < 0)
        return -1;
    if (!inet_ntop(family, bytes, out, SRV_PEER_ADDR_MAX)) {
        out[0] = '\0';
        return -1;
    }
    return 0;
}

int srv_peer_from_sockaddr(const struct sockaddr *sa, char out[SRV_PEER_ADDR_MAX])
{
    char text[SRV_PEER_ADDR_MAX];
    const void *src = NULL;
    if (sa->sa_family == AF_INET)
        src = &((const struct sockaddr_in *)(const void *)sa)->sin_addr;
    else if (sa->sa_family == AF_INET6)
        src = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
    if (!src || !inet_ntop(sa->sa_family, src, text, sizeof text)) {
        out[0] = '\0';
        return -1;
    }
    return srv_peer_normalise(text, out);
}

void srv_peer_client(const srv_cidr *proxies, int n_proxies, const char *tcp_peer,
                     const char *forwarded_for, char out[SRV_PEER_ADDR_MAX])
{
    if (srv_peer_normalise(tcp_peer, out) < 0)
        snprintf(out, SRV_PEER_ADDR_MAX, "%s", tcp_peer);
    if (!forwarded_for || !*forwarded_for || !srv_cidr_list_contains(proxies, n_proxies, out))
        return;
    /* Right to left: each trusted hop vouches for the entry before it. An
     * entry that is no address ends the walk at the last trusted hop. */
    const char *end = forwarded_for + strlen(forwarded_for);
    while (end > forwarded_for) {
        const char *start = end;
        while (start > forwarded_for && start[-1] != ',')
            start--;
        const char *a = start, *b = end;
        while (a < b && (*a == ' ' || *a == '\t'))
            a++;
        while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
            b--;
        char entry[SRV_PEER_ADDR_MAX], norm[SRV_PEER_ADDR_MAX];
        size_t n = (size_t)(b - a);
        if (n == 0 || n >= sizeof entry)
            return;
        memcpy(entry, a, n);
        entry[n] = '\0';
        if (srv_peer_normalise(entry, norm) < 0)
            return;
        memcpy(out, norm, SRV_PEER_ADDR_MAX);
        if (!srv_cidr_list_contains(proxies, n_proxies, norm))
            return;
        end = start > forwarded_for ? start - 1 : forwarded_for;
    }
}

/* ---- counts ---- */

static uint32_t hash_addr(const char *s)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

int srv_peer_counts_open(srv_peer_counts **out, att_error *err)
{
    *out = calloc(1, sizeof **out);
    return *out ? 0 : att_fail(err, ATT_ERR_INTERNAL, "out of memory");
}

void srv_peer_counts_free(srv_peer_counts *pc)
{
    if (!pc)
        return;
    for (size_t i = 0; i < PEER_BUCKETS; i++)
        for (srv_peer_entry *e = pc->buckets[i], *next; e; e = next) {
            next = e->next;
            free(e);
        }
    free(pc);
}

static srv_peer_entry *find(const srv_peer_counts *pc, const char *addr, uint32_t h)
{
    for (srv_peer_entry *e = pc->buckets[h & (PEER_BUCKETS - 1)]; e; e = e->next)
        if (e->hash == h && strcmp(e->addr, addr) == 0)
            return e;
    return NULL;
}

int srv_peer_count(const srv_peer_counts *pc, const char *addr)
{
    const srv_peer_entry *e = find(pc, addr, hash_addr(addr));
    return e ? e->count : 0;
}

srv_peer_entry *srv_peer_hold(srv_peer_counts *pc, const char *addr)
{
    uint32_t h = hash_addr(addr);
    srv_peer_entry *e = find(pc, addr, h);
    if (!e) {
        if (!(e = calloc(1, sizeof *e)))
            return NULL;
        e->hash = h;
        snprintf(e->addr, sizeof e->addr, "%s", addr);
        e->next = pc->buckets[h & (PEER_BUCKETS - 1)];
        pc->buckets[h & (PEER_BUCKETS - 1)] = e;
    }
    e->count++;
    pc->total++;
    return e;
}

void srv_peer_release(srv_peer_counts *pc, srv_peer_entry *e)
{
    pc->total--;
    if (--e->count > 0)
        return;
    for (srv_peer_entry **p = &pc->buckets[e->hash & (PEER_BUCKETS - 1)]; *p; p = &(*p)->next)
        if (*p == e) {
            *p = e->next;
            free(e);
            return;
        }
}

int srv_peer_entry_count(const srv_peer_entry *e)
{
    return e->count;
}

const char *srv_peer_entry_addr(const srv_peer_entry *e)
{
    return e->addr;
}

int64_t srv_peer_total(const srv_peer_counts *pc)
{
    return pc->total;
}
