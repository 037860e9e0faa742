/* test_invites.c - invitation records and staff tickets: a token verifies
 * only with its record; revoked, expired, foreign and unrecorded tokens are
 * refused; revocations are numbered for the sweep (also across two handles,
 * as the server and the `attune` command are); the TTL cap; observers;
 * tickets are single use, expire and drop with their session. Prints the
 * cost of one verify (the hello path). */
#include "check.h"
#include "clock.h"
#include "invites.h"
#include "random.h"
#include "tickets.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int count_id(int64_t id, void *arg)
{
    (void)id;
    (*(int *)arg)++;
    return 0;
}

static int count_room(const char *room, void *arg)
{
    (void)room;
    (*(int *)arg)++;
    return 0;
}

static void test_records(const char *dir, const srv_token_key *key, const srv_token_key *other)
{
    srv_invites *inv = NULL, *cli = NULL;
    att_error err = {0};
    CHECK_INT(srv_invites_open(dir, &inv, &err), 0);
    CHECK_INT(srv_invites_open(dir, &cli, &err), 0); /* another process's handle */
    const int64_t now = 1800000000000;
    char tok[SRV_TOKEN_MAX];
    int64_t id = 0, got = 0;
    srv_token_claims c;
    CHECK_INT(srv_invites_issue(inv, key, "room-1", ATT_ROLE_PARTNER_A, 3600, "alice", now, tok,
                                sizeof tok, &id, &err),
              0);
    CHECK(id > 0);
    CHECK_INT(srv_invites_verify(inv, key, tok, now + 1000, &c, &got, &err), 0);
    CHECK_INT(got, id);
    CHECK_STR(c.room, "room-1");
    CHECK_INT(c.role, ATT_ROLE_PARTNER_A);
    /* expired, foreign key */
    CHECK_INT(srv_invites_verify(inv, key, tok, now + 3600 * 1000, &c, &got, &err),
              -ATT_ERR_BAD_TOKEN);
    CHECK_INT(srv_invites_verify(inv, other, tok, now, &c, &got, &err), -ATT_ERR_BAD_TOKEN);
    /* a token with a valid MAC but no record (minted before records) */
    char bare[SRV_TOKEN_MAX];
    CHECK_INT(srv_token_issue(key, "room-1", ATT_ROLE_PARTNER_A, now / 1000 + 3600, NULL, bare,
                              sizeof bare, &err),
              0);
    CHECK_INT(srv_invites_verify(inv, key, bare, now, &c, &got, &err), -ATT_ERR_BAD_TOKEN);
    CHECK(strstr(err.message, "no invitation record") != NULL);
    /* the TTL cap */
    CHECK_INT(srv_invites_issue(inv, key, "room-1", ATT_ROLE_PARTNER_B, SRV_INVITE_TTL_MAX_S + 1,
                                "alice", now, tok, sizeof tok, NULL, &err),
              -ATT_ERR_BAD_MESSAGE);
    CHECK_INT(srv_invites_issue(inv, key, "room-1", ATT_ROLE_PARTNER_B, 0, "alice", now, tok,
                                sizeof tok, NULL, &err),
              -ATT_ERR_BAD_MESSAGE);

    /* Revocation by the other handle reaches this one's feed. */
    char b1[SRV_TOKEN_MAX], b2[SRV_TOKEN_MAX];
    int64_t id1 = 0, id2 = 0, rev0 = -1, rev = -1;
    CHECK_INT(srv_invites_issue(inv, key, "room-1", ATT_ROLE_PARTNER_B, 3600, "alice", now, b1,
                                sizeof b1, &id1, &err),
              0);
    CHECK_INT(srv_invites_issue(inv, key, "room-1", ATT_ROLE_PARTNER_B, 3600, "alice", now, b2,
                                sizeof b2, &id2, &err),
              0);
    CHECK_INT(srv_invites_revision(inv, &rev0, &err), 0);
    CHECK_INT(rev0, 0);
    CHECK_INT(srv_invites_revoke_role(cli, "room-1", ATT_ROLE_PARTNER_B, now, &err), 2);
    CHECK_INT(srv_invites_revoke_role(cli, "room-1", ATT_ROLE_PARTNER_B, now, &err), 0);
    int n = 0;
    CHECK_INT(srv_invites_revoked_since(inv, rev0, count_id, &n, &rev, &err), 0);
    CHECK_INT(n, 2);
    CHECK(rev > rev0);
    n = 0;
    CHECK_INT(srv_invites_revoked_since(inv, rev, count_id, &n, &rev, &err), 0);
    CHECK_INT(n, 0);
    CHECK_INT(srv_invites_verify(inv, key, b1, now, &c, &got, &err), -ATT_ERR_BAD_TOKEN);
    CHECK(strstr(err.message, "revoked") != NULL);
    /* partner_a's link is untouched; revoking it by token */
    CHECK_INT(srv_invites_issue(inv, key, "room-1", ATT_ROLE_PARTNER_A, 3600, "alice", now, tok,
                                sizeof tok, &id, &err),
              0);
    CHECK_INT(srv_invites_revoke_token(cli, key, tok, now, &c, &err), 1);
    CHECK_INT(srv_invites_revoke_token(cli, key, tok, now, &c, &err), 0);
    CHECK_INT(srv_invites_revoke_token(cli, key, bare, now, &c, &err), -ATT_ERR_NOT_FOUND);
    CHECK(srv_invites_revoke_token(cli, key, "garbage", now, &c, &err) < 0);
    n = 0;
    CHECK_INT(srv_invites_revoked_since(inv, rev, count_id, &n, &rev, &err), 0);
    CHECK_INT(n, 1);

    /* observers by account id */
    CHECK_INT(srv_invites_add_observer(inv, "room-1", 7, now, &err), 1);
    CHECK_INT(srv_invites_add_observer(inv, "room-1", 7, now, &err), 0);
    CHECK_INT(srv_invites_is_observer(inv, "room-1", 7, &err), 1);
    CHECK_INT(srv_invites_is_observer(inv, "room-1", 8, &err), 0);
    CHECK_INT(srv_invites_is_observer(inv, "room-2", 7, &err), 0);
    int rooms = 0;
    CHECK_INT(srv_invites_observed_rooms(inv, 7, count_room, &rooms, &err), 0);
    CHECK_INT(rooms, 1);
    CHECK_INT(srv_invites_remove_observer(inv, "room-1", 7, &err), 1);
    CHECK_INT(srv_invites_is_observer(inv, "room-1", 7, &err), 0);

    /* The hello path's cost: one verify, in a database of 2,000 links. */
    enum { LINKS = 2000, TIMED = 20000 };
    char(*toks)[SRV_TOKEN_MAX] = malloc(sizeof(*toks) * 64);
    for (int i = 0; i < LINKS; i++) {
        char t[SRV_TOKEN_MAX];
        char room[32];
        snprintf(room, sizeof room, "load-%d", i / 3);
        CHECK_MSG(srv_invites_issue(inv, key, room, ATT_ROLE_PARTNER_A, 3600, "operator", now,
                                    i < 64 ? toks[i] : t, SRV_TOKEN_MAX, NULL, &err) == 0,
                  "%s", err.message);
    }
    int64_t t0 = srv_mono_ns();
    int ok = 0;
    for (int i = 0; i < TIMED; i++)
        ok += srv_invites_verify(inv, key, toks[i % 64], now, &c, &got, &err) == 0;
    int64_t t1 = srv_mono_ns();
    CHECK_INT(ok, TIMED);
    /* The sweep's look for new revocations, once a second: nothing new. */
    int64_t t2 = srv_mono_ns(), r2 = rev;
    for (int i = 0; i < 1000; i++) {
        n = 0;
        srv_invites_revoked_since(inv, rev, count_id, &n, &r2, &err);
    }
    int64_t t3 = srv_mono_ns();
    CHECK_INT(n, 0);
    printf("test_invites: the sweep's revocation check %.1f us\n",
           (double)(t3 - t2) / 1000 / 1000.0);
    printf("test_invites: one verify (MAC + record) %.1f us over %d links\n",
           (double)(t1 - t0) / TIMED / 1000.0, LINKS);
    free(toks);
    srv_invites_close(cli);
    srv_invites_close(inv);
}

static void test_tickets(void)
{
    srv_tickets *t = NULL;
    att_error err = {0};
    CHECK_INT(srv_tickets_new(60000, &t, &err), 0);
    srv_ticket_grant g = {.role = ATT_ROLE_THERAPIST, .login_session = 5, .account_id = 9}, out;
    snprintf(g.room, sizeof g.room, "room-1");
    char a[SRV_TICKET_BYTES], b[SRV_TICKET_BYTES], c[SRV_TICKET_BYTES];
    CHECK_INT(srv_tickets_issue(t, &g, 1000, a, &err), 0);
    CHECK_INT(srv_tickets_issue(t, &g, 1000, b, &err), 0);
    CHECK(strcmp(a, b) != 0);
    CHECK_INT(strlen(a), SRV_TICKET_BYTES - 1);
    CHECK_INT(srv_tickets_take(t, a, 2000, &out), 1);
    CHECK_STR(out.room, "room-1");
    CHECK_INT(out.login_session, 5);
    CHECK_INT(out.account_id, 9);
    CHECK_INT(srv_tickets_take(t, a, 2000, &out), 0);  /* single use */
    CHECK_INT(srv_tickets_take(t, b, 61000, &out), 0); /* expired */
    CHECK_INT(srv_tickets_take(t, b, 2000, &out), 0);  /* and gone */
    CHECK_INT(srv_tickets_issue(t, &g, 1000, c, &err), 0);
    srv_tickets_drop_session(t, 5);
    CHECK_INT(srv_tickets_take(t, c, 2000, &out), 0); /* the login ended */
    CHECK_INT(srv_tickets_take(t, "short", 2000, &out), 0);
    /* A full table gives the oldest slot to the newest ticket. */
    char first[SRV_TICKET_BYTES], last[SRV_TICKET_BYTES];
    CHECK_INT(srv_tickets_issue(t, &g, 5000, first, &err), 0);
    for (int i = 0; i < SRV_TICKETS_MAX; i++)
        CHECK_INT(srv_tickets_issue(t, &g, 5001 + i, last, &err), 0);
    CHECK_INT(srv_tickets_take(t, first, 6000, &out), 0);
    CHECK_INT(srv_tickets_take(t, last, 6000, &out), 1);
    srv_tickets_free(t);
}

int main(void)
{
    char dir[] = "/tmp/attune-test-invites-XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    srv_token_key key, other;
    att_error err = {0};
    CHECK_INT(srv_random_bytes(key.bytes, sizeof key.bytes, &err), 0);
    CHECK_INT(srv_random_bytes(other.bytes, sizeof other.bytes, &err), 0);
    test_records(dir, &key, &other);
    test_tickets();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return check_done("test_invites");
}
