/* test_invites_pg.c - invitation records and observers on PostgreSQL
 * (srv_invites_open_pg), against a fresh database of ATTUNE_TEST_PG
 * (pg_test.h; skipped without it outside CI), mirroring test_invites.c's
 * checks with two handles as two nodes: a token verifies only with its
 * record, on either node; revoked, expired, foreign and unrecorded tokens
 * are refused; revocations made on one node are numbered and reach the
 * other's sweep, and a revocation number never shows before a lower one
 * (a revocation waits while another node's is uncommitted); the TTL cap;
 * listing; observers by account id. */
#include "check.h"
#include "invites.h"
#include "pg_test.h"
#include "random.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

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

typedef struct {
    int64_t ids[8];
    int n;
} id_list;

static int collect_id(int64_t id, void *arg)
{
    id_list *l = arg;
    if (l->n < 8)
        l->ids[l->n++] = id;
    return 0;
}

typedef struct {
    int n, revoked;
    att_role roles[8];
} record_list;

static int collect_record(const srv_invite_record *rec, void *arg)
{
    record_list *l = arg;
    if (l->n < 8)
        l->roles[l->n] = rec->role;
    l->n++;
    l->revoked += rec->revoked_at != 0;
    return 0;
}

static void test_records(const char *uri, const srv_token_key *key, const srv_token_key *other)
{
    srv_invites *inv = NULL, *cli = NULL;
    att_error err = {0};
    CHECK_INT(srv_invites_open_pg("not-a-uri", &inv, &err), -ATT_ERR_INVALID_INPUT);
    CHECK(inv == NULL);
    CHECK_INT(srv_invites_open_pg(uri, &inv, &err), 0);
    CHECK_INT(srv_invites_open_pg(uri, &cli, &err), 0); /* another node's handle */
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
    /* The other node verifies it too. */
    got = 0;
    CHECK_INT(srv_invites_verify(cli, key, tok, now + 1000, &c, &got, &err), 0);
    CHECK_INT(got, id);
    /* expired, foreign key */
    CHECK_INT(srv_invites_verify(inv, key, tok, now + 3600 * 1000, &c, &got, &err),
              -ATT_ERR_BAD_TOKEN);
    CHECK(strstr(err.message, "expired") != NULL);
    CHECK_INT(srv_invites_verify(inv, other, tok, now, &c, &got, &err), -ATT_ERR_BAD_TOKEN);
    /* a token with a valid MAC but no record */
    char bare[SRV_TOKEN_MAX];
    CHECK_INT(srv_token_issue(key, "room-1", ATT_ROLE_PARTNER_A, now / 1000 + 3600, NULL, bare,
                              sizeof bare, &err),
              0);
    CHECK_INT(srv_invites_verify(inv, key, bare, now, &c, &got, &err), -ATT_ERR_BAD_TOKEN);
    CHECK(strstr(err.message, "no invitation record") != NULL);
    /* the TTL cap and the issuer's length */
    CHECK_INT(srv_invites_issue(inv, key, "room-1", ATT_ROLE_PARTNER_B, SRV_INVITE_TTL_MAX_S + 1,
                                "alice", now, tok, sizeof tok, NULL, &err),
              -ATT_ERR_BAD_MESSAGE);
    CHECK_INT(srv_invites_issue(inv, key, "room-1", ATT_ROLE_PARTNER_B, 0, "alice", now, tok,
                                sizeof tok, NULL, &err),
              -ATT_ERR_BAD_MESSAGE);
    char long_issuer[SRV_INVITE_ISSUER_MAX + 2];
    memset(long_issuer, 'x', sizeof long_issuer - 1);
    long_issuer[sizeof long_issuer - 1] = '\0';
    CHECK_INT(srv_invites_issue(inv, key, "room-1", ATT_ROLE_PARTNER_B, 60, long_issuer, now, tok,
                                sizeof tok, NULL, &err),
              -ATT_ERR_BAD_MESSAGE);

    /* Revocation on the other node reaches this one's feed. */
    char b1[SRV_TOKEN_MAX], b2[SRV_TOKEN_MAX];
    int64_t id1 = 0, id2 = 0, rev0 = -1, rev = -1;
    CHECK_INT(srv_invites_issue(inv, key, "room-1", ATT_ROLE_PARTNER_B, 3600, "alice", now, b1,
                                sizeof b1, &id1, &err),
              0);
    CHECK_INT(srv_invites_issue(inv, key, "room-1", ATT_ROLE_PARTNER_B, 3600, "alice", now, b2,
                                sizeof b2, &id2, &err),
              0);
    CHECK(id2 > id1 && id1 > id);
    CHECK_INT(srv_invites_revision(inv, &rev0, &err), 0);
    CHECK_INT(rev0, 0);
    CHECK_INT(srv_invites_revoke_role(cli, "room-1", ATT_ROLE_PARTNER_B, now, &err), 2);
    CHECK_INT(srv_invites_revoke_role(cli, "room-1", ATT_ROLE_PARTNER_B, now, &err), 0);
    id_list revoked = {0};
    CHECK_INT(srv_invites_revoked_since(inv, rev0, collect_id, &revoked, &rev, &err), 0);
    CHECK_INT(revoked.n, 2);
    CHECK((revoked.ids[0] == id1 && revoked.ids[1] == id2) ||
          (revoked.ids[0] == id2 && revoked.ids[1] == id1));
    CHECK(rev > rev0);
    int64_t rev_now = -1;
    CHECK_INT(srv_invites_revision(inv, &rev_now, &err), 0);
    CHECK_INT(rev_now, rev);
    int n = 0;
    int64_t same = -1;
    CHECK_INT(srv_invites_revoked_since(inv, rev, count_id, &n, &same, &err), 0);
    CHECK_INT(n, 0);
    CHECK_INT(same, rev);
    CHECK_INT(srv_invites_verify(inv, key, b1, now, &c, &got, &err), -ATT_ERR_BAD_TOKEN);
    CHECK(strstr(err.message, "revoked") != NULL);
    /* partner_a's link is untouched; revoking it by token on the other node */
    CHECK_INT(srv_invites_issue(inv, key, "room-1", ATT_ROLE_PARTNER_A, 3600, "alice", now, tok,
                                sizeof tok, &id, &err),
              0);
    CHECK_INT(srv_invites_verify(inv, key, tok, now, &c, &got, &err), 0);
    CHECK_INT(srv_invites_revoke_token(cli, key, tok, now, &c, &err), 1);
    CHECK_INT(srv_invites_revoke_token(cli, key, tok, now, &c, &err), 0);
    CHECK_INT(srv_invites_revoke_token(inv, key, tok, now, &c, &err), 0);
    CHECK_INT(srv_invites_revoke_token(cli, key, bare, now, &c, &err), -ATT_ERR_NOT_FOUND);
    CHECK(srv_invites_revoke_token(cli, key, "garbage", now, &c, &err) < 0);
    CHECK_INT(srv_invites_verify(inv, key, tok, now, &c, &got, &err), -ATT_ERR_BAD_TOKEN);
    int64_t rev2 = -1;
    n = 0;
    CHECK_INT(srv_invites_revoked_since(inv, rev, count_id, &n, &rev2, &err), 0);
    CHECK_INT(n, 1);
    CHECK(rev2 > rev);

    /* The room's records, oldest first. */
    record_list l = {0};
    CHECK_INT(srv_invites_list(cli, "room-1", collect_record, &l, &err), 0);
    CHECK_INT(l.n, 4);
    CHECK_INT(l.revoked, 3);
    CHECK_INT(l.roles[0], ATT_ROLE_PARTNER_A);
    CHECK_INT(l.roles[1], ATT_ROLE_PARTNER_B);
    CHECK_INT(l.roles[3], ATT_ROLE_PARTNER_A);
    l.n = 0;
    CHECK_INT(srv_invites_list(cli, "room-none", collect_record, &l, &err), 0);
    CHECK_INT(l.n, 0);

    /* observers by account id, across the two handles */
    CHECK_INT(srv_invites_add_observer(inv, "room-1", 7, now, &err), 1);
    CHECK_INT(srv_invites_add_observer(cli, "room-1", 7, now, &err), 0);
    CHECK_INT(srv_invites_add_observer(inv, "room-1", 9, now, &err), 1);
    CHECK_INT(srv_invites_add_observer(inv, "room-2", 7, now + 5, &err), 1);
    CHECK_INT(srv_invites_is_observer(cli, "room-1", 7, &err), 1);
    CHECK_INT(srv_invites_is_observer(cli, "room-1", 8, &err), 0);
    CHECK_INT(srv_invites_is_observer(cli, "room-3", 7, &err), 0);
    id_list obs = {0};
    CHECK_INT(srv_invites_observers(cli, "room-1", collect_id, &obs, &err), 0);
    CHECK_INT(obs.n, 2);
    CHECK_INT(obs.ids[0], 7); /* the order added, even within one ms */
    CHECK_INT(obs.ids[1], 9);
    int rooms = 0;
    CHECK_INT(srv_invites_observed_rooms(cli, 7, count_room, &rooms, &err), 0);
    CHECK_INT(rooms, 2);
    CHECK_INT(srv_invites_remove_observer(cli, "room-1", 7, &err), 1);
    CHECK_INT(srv_invites_remove_observer(cli, "room-1", 7, &err), 0);
    CHECK_INT(srv_invites_is_observer(inv, "room-1", 7, &err), 0);
    rooms = 0;
    CHECK_INT(srv_invites_observed_rooms(inv, 7, count_room, &rooms, &err), 0);
    CHECK_INT(rooms, 1);

    /* Reopening finds everything as it was. */
    srv_invites_close(cli);
    CHECK_INT(srv_invites_open_pg(uri, &cli, &err), 0);
    CHECK_INT(srv_invites_verify(cli, key, b1, now, &c, &got, &err), -ATT_ERR_BAD_TOKEN);
    CHECK_INT(srv_invites_revision(cli, &rev_now, &err), 0);
    CHECK_INT(rev_now, rev2);
    srv_invites_close(cli);
    srv_invites_close(inv);
}

typedef struct {
    srv_invites *inv;
    int result;
    atomic_int done;
} revoke_job;

static void *revoke_partner_b(void *arg)
{
    revoke_job *job = arg;
    att_error err = {0};
    job->result =
        srv_invites_revoke_role(job->inv, "room-3", ATT_ROLE_PARTNER_B, 1800000000000, &err);
    atomic_store(&job->done, 1);
    return NULL;
}

/* Another node's revocation holds number N+1 uncommitted; this node's
 * revocation must wait for it (and take N+2), so a sweep in between sees
 * neither and a sweep after sees both in order: none is skipped. */
static void test_revocation_order(const char *uri, const srv_token_key *key)
{
    srv_invites *inv = NULL, *cli = NULL;
    att_error err = {0};
    CHECK_INT(srv_invites_open_pg(uri, &inv, &err), 0);
    CHECK_INT(srv_invites_open_pg(uri, &cli, &err), 0);
    const int64_t now = 1800000000000;
    char tok[SRV_TOKEN_MAX];
    int64_t id_a = 0, id_b = 0, rev0 = -1, rev = -1;
    CHECK_INT(srv_invites_issue(inv, key, "room-3", ATT_ROLE_PARTNER_A, 3600, "alice", now, tok,
                                sizeof tok, &id_a, &err),
              0);
    CHECK_INT(srv_invites_issue(inv, key, "room-3", ATT_ROLE_PARTNER_B, 3600, "alice", now, tok,
                                sizeof tok, &id_b, &err),
              0);
    CHECK_INT(srv_invites_revision(inv, &rev0, &err), 0);

    PGconn *other = PQconnectdb(uri);
    CHECK(PQstatus(other) == CONNECTION_OK);
    PGresult *r = PQexec(other, "BEGIN");
    CHECK(PQresultStatus(r) == PGRES_COMMAND_OK);
    PQclear(r);
    char sql[400];
    snprintf(sql, sizeof sql,
             "WITH next AS (UPDATE invite_revision SET rev = rev + 1 WHERE id = 1 RETURNING rev) "
             "UPDATE invites SET revoked_at = 1, revoked_rev = (SELECT rev FROM next) "
             "WHERE id = %lld",
             (long long)id_a);
    r = PQexec(other, sql);
    CHECK_MSG(PQresultStatus(r) == PGRES_COMMAND_OK, "%s", PQerrorMessage(other));
    PQclear(r);

    revoke_job job = {.inv = cli, .result = -1};
    atomic_init(&job.done, 0);
    pthread_t th;
    CHECK_INT(pthread_create(&th, NULL, revoke_partner_b, &job), 0);
    struct timespec pause = {0, 300 * 1000 * 1000};
    nanosleep(&pause, NULL);
    CHECK_INT(atomic_load(&job.done), 0); /* waiting for the other node's commit */
    id_list seen = {0};
    CHECK_INT(srv_invites_revoked_since(inv, rev0, collect_id, &seen, &rev, &err), 0);
    CHECK_INT(seen.n, 0);
    CHECK_INT(rev, rev0);

    r = PQexec(other, "COMMIT");
    CHECK(PQresultStatus(r) == PGRES_COMMAND_OK);
    PQclear(r);
    PQfinish(other);
    pthread_join(th, NULL);
    CHECK_INT(job.result, 1);
    CHECK_INT(srv_invites_revoked_since(inv, rev0, collect_id, &seen, &rev, &err), 0);
    CHECK_INT(seen.n, 2);
    CHECK_INT(seen.ids[0], id_a);
    CHECK_INT(seen.ids[1], id_b);
    CHECK(rev >= rev0 + 2); /* numbers may have gaps (a revocation of nothing) */
    srv_invites_close(cli);
    srv_invites_close(inv);
}

int main(void)
{
    char uri[512];
    pg_test_fresh_db("invites", uri, sizeof uri);
    srv_token_key key, other;
    att_error err = {0};
    CHECK_INT(srv_random_bytes(key.bytes, sizeof key.bytes, &err), 0);
    CHECK_INT(srv_random_bytes(other.bytes, sizeof other.bytes, &err), 0);
    test_records(uri, &key, &other);
    test_revocation_order(uri, &key);
    return check_done("test_invites_pg");
}
