/* peer.h - who a connection or request comes from, and how many
 * connections each client address holds.
 *
 * The client address is the TCP peer, or, only when the peer is one of the
 * configured trusted proxies (--trusted-proxy, an address or CIDR), the
 * last X-Forwarded-For entry that is not itself a trusted proxy: a proxy
 * appends the address it saw, so everything left of the last untrusted
 * entry was written by the client and proves nothing. Addresses are
 * printed numerically; an IPv4-mapped IPv6 peer prints as IPv4.
 *
 * srv_peer_counts owns its entries (one per address with open
 * connections); each accepted wsi points at its entry through lws' opaque
 * user data until LWS_CALLBACK_WSI_DESTROY. The parse and address helpers
 * are pure and run on any thread; the counts are touched only on the lws
 * service thread. */
#ifndef SRV_PEER_H
#define SRV_PEER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include "attune/types.h"

#define SRV_PEER_ADDR_MAX 64 /* numeric IPv6 with scope, NUL included */

typedef struct {
    int family;             /* AF_INET or AF_INET6 */
    unsigned char addr[16]; /* network order; IPv4 in the first 4 bytes */
    int prefix;             /* bits that must match */
} srv_cidr;

/* Parses "ADDR" or "ADDR/BITS" (IPv4 or IPv6). */
int srv_cidr_parse(const char *text, srv_cidr *out, att_error *err);

/* 1 when the numeric address `addr` falls in one of the n ranges. */
int srv_cidr_list_contains(const srv_cidr *list, int n, const char *addr);

/* Normalises a numeric address (IPv4-mapped IPv6 becomes IPv4) into out.
 * Returns 0, or -1 when `text` is not an address (out is then ""). */
int srv_peer_normalise(const char *text, char out[SRV_PEER_ADDR_MAX]);

/* The numeric text of a socket address (accept()'s peer), normalised. */
int srv_peer_from_sockaddr(const struct sockaddr *sa, char out[SRV_PEER_ADDR_MAX]);

/* The client address given the TCP peer and the request's X-Forwarded-For
 * value (NULL or "" when absent). */
void srv_peer_client(const srv_cidr *proxies, int n_proxies, const char *tcp_peer,
                     const char *forwarded_for, char out[SRV_PEER_ADDR_MAX]);

/* ---- open connections per address (service thread) ---- */
typedef struct srv_peer_entry srv_peer_entry;
typedef struct srv_peer_counts srv_peer_counts;

int srv_peer_counts_open(srv_peer_counts **out, att_error *err);
void srv_peer_counts_free(srv_peer_counts *pc);
/* Connections open from addr now (0 when none). */
int srv_peer_count(const srv_peer_counts *pc, const char *addr);
/* Adds one connection from addr; returns its entry (NULL: out of memory). */
srv_peer_entry *srv_peer_hold(srv_peer_counts *pc, const char *addr);
/* Ends one connection counted by srv_peer_hold. */
void srv_peer_release(srv_peer_counts *pc, srv_peer_entry *e);
int srv_peer_entry_count(const srv_peer_entry *e);
const char *srv_peer_entry_addr(const srv_peer_entry *e);
/* Connections held over all addresses. */
int64_t srv_peer_total(const srv_peer_counts *pc);

#endif
