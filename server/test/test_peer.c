/* test_peer.c - client addresses (peer.h): CIDR parsing and matching,
 * normalising (IPv4-mapped IPv6), X-Forwarded-For believed only from a
 * trusted proxy and read right to left, and the per-address counts. */
#include "check.h"
#include "peer.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

static void client_is(const srv_cidr *proxies, int n, const char *tcp, const char *xff,
                      const char *want)
{
    char out[SRV_PEER_ADDR_MAX];
    srv_peer_client(proxies, n, tcp, xff, out);
    CHECK_STR(out, want);
}

int main(void)
{
    srv_cidr p[4];
    att_error err = {0};
    CHECK(srv_cidr_parse("10.0.0.0/8", &p[0], &err) == 0);
    CHECK(srv_cidr_parse("127.0.0.5", &p[1], &err) == 0);
    CHECK(srv_cidr_parse("fd00::/8", &p[2], &err) == 0);
    CHECK(srv_cidr_parse("::ffff:192.0.2.1", &p[3], &err) == 0); /* mapped: an IPv4 proxy */
    CHECK(p[3].family == AF_INET && p[3].prefix == 32);
    static const char *const bad[] = {
        "", "x", "10.0.0.0/", "10.0.0.0/33", "::/129", "10.0.0.0/8/8", "10.0.0.0/-1", "1.2.3.4 "};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK(srv_cidr_parse(bad[i], &p[0], &err) < 0);
        CHECK(strstr(err.message, "--trusted-proxy") != NULL);
    }
    CHECK(srv_cidr_parse("10.0.0.0/8", &p[0], &err) == 0);

    CHECK(srv_cidr_list_contains(p, 4, "10.200.3.4"));
    CHECK(!srv_cidr_list_contains(p, 4, "11.0.0.1"));
    CHECK(srv_cidr_list_contains(p, 4, "::ffff:10.1.1.1"));
    CHECK(srv_cidr_list_contains(p, 4, "fd12::1"));
    CHECK(!srv_cidr_list_contains(p, 4, "fe80::1"));
    CHECK(!srv_cidr_list_contains(p, 4, "127.0.0.6"));
    CHECK(!srv_cidr_list_contains(p, 4, "not an address"));
    srv_cidr odd;
    CHECK(srv_cidr_parse("192.168.4.0/22", &odd, &err) == 0);
    CHECK(srv_cidr_list_contains(&odd, 1, "192.168.7.255"));
    CHECK(!srv_cidr_list_contains(&odd, 1, "192.168.8.0"));
    CHECK(srv_cidr_parse("0.0.0.0/0", &odd, &err) == 0);
    CHECK(srv_cidr_list_contains(&odd, 1, "203.0.113.9"));

    char out[SRV_PEER_ADDR_MAX];
    CHECK(srv_peer_normalise("::ffff:127.0.0.2", out) == 0);
    CHECK_STR(out, "127.0.0.2");
    CHECK(srv_peer_normalise("2001:DB8::1", out) == 0);
    CHECK_STR(out, "2001:db8::1");
    CHECK(srv_peer_normalise("example.org", out) < 0);
    struct sockaddr_in sin = {.sin_family = AF_INET};
    inet_pton(AF_INET, "198.51.100.3", &sin.sin_addr);
    CHECK(srv_peer_from_sockaddr((struct sockaddr *)&sin, out) == 0);
    CHECK_STR(out, "198.51.100.3");

    /* No proxies: the TCP peer, whatever X-Forwarded-For says. */
    client_is(p, 0, "127.0.0.5", "198.51.100.7", "127.0.0.5");
    /* Not from a proxy: ignored. */
    client_is(p, 4, "203.0.113.1", "198.51.100.7", "203.0.113.1");
    /* From a proxy: the last entry that is not a trusted proxy. */
    client_is(p, 4, "127.0.0.5", "198.51.100.7", "198.51.100.7");
    client_is(p, 4, "127.0.0.5", "6.6.6.6, 198.51.100.7", "198.51.100.7");
    client_is(p, 4, "127.0.0.5", "6.6.6.6, 198.51.100.7, 10.1.2.3", "198.51.100.7");
    client_is(p, 4, "::ffff:127.0.0.5", " 198.51.100.7 ,10.1.2.3 ", "198.51.100.7");
    client_is(p, 4, "127.0.0.5", "2001:db8::7", "2001:db8::7");
    /* Missing or all trusted: the last trusted hop. */
    client_is(p, 4, "127.0.0.5", "", "127.0.0.5");
    client_is(p, 4, "127.0.0.5", NULL, "127.0.0.5");
    client_is(p, 4, "127.0.0.5", "10.0.0.1, 10.0.0.2", "10.0.0.1");
    /* Garbage ends the walk at the last trusted hop: a client cannot pick
     * an address by writing nonsense. */
    client_is(p, 4, "127.0.0.5", "198.51.100.7, unknown", "127.0.0.5");
    client_is(p, 4, "127.0.0.5", "198.51.100.7,, 10.0.0.9", "10.0.0.9");

    srv_peer_counts *pc = NULL;
    CHECK(srv_peer_counts_open(&pc, &err) == 0);
    srv_peer_entry *a1 = srv_peer_hold(pc, "127.0.0.2");
    srv_peer_entry *a2 = srv_peer_hold(pc, "127.0.0.2");
    srv_peer_entry *b = srv_peer_hold(pc, "127.0.0.3");
    CHECK(a1 == a2 && a1 != b);
    CHECK(srv_peer_count(pc, "127.0.0.2") == 2 && srv_peer_count(pc, "127.0.0.3") == 1);
    CHECK(srv_peer_count(pc, "127.0.0.4") == 0);
    CHECK(srv_peer_total(pc) == 3);
    CHECK_STR(srv_peer_entry_addr(b), "127.0.0.3");
    srv_peer_release(pc, a1);
    CHECK(srv_peer_entry_count(a2) == 1);
    srv_peer_release(pc, a2);
    srv_peer_release(pc, b);
    CHECK(srv_peer_total(pc) == 0 && srv_peer_count(pc, "127.0.0.2") == 0);
    /* Many addresses share buckets and come and go. */
    srv_peer_entry *many[5000];
    char addr[SRV_PEER_ADDR_MAX];
    for (int i = 0; i < 5000; i++) {
        snprintf(addr, sizeof addr, "10.%d.%d.1", i / 250, i % 250);
        many[i] = srv_peer_hold(pc, addr);
        CHECK(many[i] != NULL);
    }
    CHECK(srv_peer_total(pc) == 5000 && srv_peer_count(pc, "10.19.249.1") == 1);
    for (int i = 0; i < 5000; i += 2)
        srv_peer_release(pc, many[i]);
    CHECK(srv_peer_count(pc, "10.0.0.1") == 0 && srv_peer_count(pc, "10.0.1.1") == 1);
    CHECK(srv_peer_total(pc) == 2500);
    srv_peer_counts_free(pc);
    return check_done("peer");
}
