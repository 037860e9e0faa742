/* test_accounts_pg.c - accounts and room ownership on PostgreSQL
 * (srv_accounts_open_pg), against a fresh database of ATTUNE_TEST_PG
 * (pg_test.h; skipped without it outside CI): names and passwords checked
 * as on SQLite, a taken name refused, scrypt verification (right, wrong,
 * unknown name), the password generation and store_password's compare and
 * swap, ids never reused (not even the newest's), a removed account's
 * rooms staying unowned, listing in name order, owned rooms joined with
 * the event store's rooms table newest first; and two handles (two nodes)
 * on one database seeing each other's writes at once. */
#include "accounts.h"
#include "check.h"
#include "pg_test.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <string.h>

typedef struct {
    char names[8][SRV_ACCOUNT_NAME_MAX + 1];
    int n;
} name_list;

static int collect_account(const srv_account *acct, void *arg)
{
    name_list *l = arg;
    if (l->n < 8)
        snprintf(l->names[l->n++], sizeof l->names[0], "%s", acct->name);
    return 0;
}

static int collect_room(const char *room, void *arg)
{
    name_list *l = arg;
    if (l->n < 8)
        snprintf(l->names[l->n++], sizeof l->names[0], "%s", room);
    return 0;
}

static int stop_at_first(const char *room, void *arg)
{
    (void)room;
    (*(int *)arg)++;
    return 7;
}

static void run_sql(const char *uri, const char *sql)
{
    PGconn *c = PQconnectdb(uri);
    CHECK(PQstatus(c) == CONNECTION_OK);
    PGresult *r = PQexec(c, sql);
    CHECK_MSG(PQresultStatus(r) == PGRES_COMMAND_OK, "%s", PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
}

static void accounts(const char *uri)
{
    att_error err = {0};
    srv_accounts *a = NULL;
    CHECK_INT(srv_accounts_open_pg("/not/a/uri", 1, &a, &err), -ATT_ERR_INVALID_INPUT);
    CHECK(a == NULL);
    CHECK_INT(srv_accounts_open_pg(uri, 1, &a, &err), 0);
    CHECK(srv_accounts_is_pg(a));
    /* Opening again finds the tables there. */
    srv_accounts *again = NULL;
    CHECK_INT(srv_accounts_open_pg(uri, 0, &again, &err), 0);
    srv_accounts_close(again);

    CHECK_INT(srv_accounts_add(a, "bad name", "long-enough-password", 20, &err),
              -ATT_ERR_BAD_MESSAGE);
    CHECK_INT(srv_accounts_add(a, "short", "too-short", 9, &err), -ATT_ERR_BAD_MESSAGE);
    CHECK_INT(srv_accounts_add(a, "dana", "dana-long-password", 18, &err), 0);
    CHECK_INT(srv_accounts_add(a, "dana", "another-long-password", 21, &err), -ATT_ERR_BAD_MESSAGE);
    CHECK(strstr(err.message, "already") != NULL);
    CHECK_INT(srv_accounts_exists(a, "dana", &err), 1);
    CHECK_INT(srv_accounts_exists(a, "nobody", &err), 0);
    CHECK_INT(srv_accounts_exists(a, "short", &err), 0);

    srv_account dana;
    CHECK_INT(srv_accounts_get(a, "dana", &dana, &err), 1);
    CHECK(dana.id > 0 && dana.password_gen == 1 && dana.kind == SRV_ACCOUNT_THERAPIST);
    CHECK_STR(dana.name, "dana");
    CHECK(dana.created_at > 1600000000000LL);
    srv_account by_id;
    CHECK_INT(srv_accounts_get_by_id(a, dana.id, &by_id, &err), 1);
    CHECK_STR(by_id.name, "dana");
    CHECK_INT(srv_accounts_get_by_id(a, dana.id + 1000, &by_id, &err), 0);
    CHECK_INT(srv_accounts_get(a, "nobody", &by_id, &err), 0);

    CHECK_INT(srv_accounts_verify(a, "dana", "dana-long-password", 18, &err), 1);
    CHECK_INT(srv_accounts_verify(a, "dana", "dana-wrong-password", 19, &err), 0);
    CHECK_INT(srv_accounts_verify(a, "nobody", "dana-long-password", 18, &err), 0);
    srv_password_record rec;
    CHECK_INT(srv_accounts_lookup(a, "dana", &rec, &err), 0);
    CHECK(rec.found && rec.account_id == dana.id && rec.password_gen == 1);
    CHECK_INT(rec.scrypt_log2_n, 15);
    CHECK_INT(srv_accounts_lookup(a, "nobody", &rec, &err), 0);
    CHECK(!rec.found && rec.scrypt_log2_n == 15);

    /* A password change bumps the generation; the old password stops. */
    CHECK_INT(srv_accounts_set_password(a, "dana", "dana-newer-password", 19, &err), 0);
    CHECK_INT(srv_accounts_get(a, "dana", &dana, &err), 1);
    CHECK_INT(dana.password_gen, 2);
    CHECK_INT(srv_accounts_verify(a, "dana", "dana-long-password", 18, &err), 0);
    CHECK_INT(srv_accounts_verify(a, "dana", "dana-newer-password", 19, &err), 1);
    CHECK_INT(srv_accounts_set_password(a, "nobody", "whatever-password", 17, &err),
              -ATT_ERR_NOT_FOUND);
    CHECK_INT(srv_accounts_set_password(a, "dana", "short", 5, &err), -ATT_ERR_BAD_MESSAGE);

    /* store_password: only while the generation is the expected one. */
    srv_password_record fresh;
    CHECK_INT(srv_password_hash_new("dana-hashed-elsewhere", 21, &fresh, &err), 0);
    int64_t gen = 0;
    CHECK_INT(srv_accounts_store_password(a, dana.id, 1, &fresh, &gen, &err), -ATT_ERR_NOT_FOUND);
    CHECK_INT(srv_accounts_store_password(a, dana.id, 2, &fresh, &gen, &err), 0);
    CHECK_INT(gen, 3);
    CHECK_INT(srv_accounts_verify(a, "dana", "dana-hashed-elsewhere", 21, &err), 1);
    CHECK_INT(srv_accounts_store_password(a, dana.id + 1000, 1, &fresh, &gen, &err),
              -ATT_ERR_NOT_FOUND);

    /* Ownership by id; a removed account's room stays unowned, and a new
     * account of the same name gets a new id and no rooms. */
    CHECK_INT(srv_accounts_set_owner(a, "r-dana", "dana", &err), 0);
    CHECK_INT(srv_accounts_set_owner(a, "r-x", "nobody", &err), -ATT_ERR_NOT_FOUND);
    CHECK_INT(srv_accounts_set_owner_id(a, "r-x", dana.id + 1000, &err), -ATT_ERR_NOT_FOUND);
    char owner[SRV_ACCOUNT_NAME_MAX + 1];
    int64_t owner_id = 0;
    CHECK_INT(srv_accounts_get_owner(a, "r-dana", owner, &err), 0);
    CHECK_STR(owner, "dana");
    CHECK_INT(srv_accounts_get_owner_id(a, "r-dana", &owner_id, &err), 0);
    CHECK_INT(owner_id, dana.id);
    CHECK_INT(srv_accounts_get_owner(a, "r-none", owner, &err), -ATT_ERR_NOT_FOUND);

    int64_t sup_id = 0, sup_id2 = 0;
    CHECK_INT(srv_accounts_add_kind(a, "sam", SRV_ACCOUNT_SUPERVISOR, "sam-long-password", 17,
                                    &sup_id, &err),
              0);
    srv_account sam;
    CHECK_INT(srv_accounts_get_by_id(a, sup_id, &sam, &err), 1);
    CHECK(sam.kind == SRV_ACCOUNT_SUPERVISOR);
    /* Replacing the owner. */
    CHECK_INT(srv_accounts_set_owner_id(a, "r-dana", sup_id, &err), 0);
    CHECK_INT(srv_accounts_get_owner(a, "r-dana", owner, &err), 0);
    CHECK_STR(owner, "sam");
    CHECK_INT(srv_accounts_set_owner_id(a, "r-dana", dana.id, &err), 0);

    /* The newest account removed: its id is still never reused. */
    CHECK_INT(srv_accounts_remove(a, "sam", &err), 0);
    CHECK_INT(srv_accounts_remove(a, "sam", &err), -ATT_ERR_NOT_FOUND);
    CHECK_INT(srv_accounts_add_kind(a, "sam", SRV_ACCOUNT_SUPERVISOR, "sam-long-password", 17,
                                    &sup_id2, &err),
              0);
    CHECK(sup_id2 > sup_id);

    CHECK_INT(srv_accounts_remove(a, "dana", &err), 0);
    CHECK_INT(srv_accounts_get_owner_id(a, "r-dana", &owner_id, &err), -ATT_ERR_NOT_FOUND);
    CHECK_INT(srv_accounts_add(a, "dana", "dana-other-password", 19, &err), 0);
    srv_account dana2;
    CHECK_INT(srv_accounts_get(a, "dana", &dana2, &err), 1);
    CHECK(dana2.id != dana.id);
    CHECK_INT(srv_accounts_get_owner_id(a, "r-dana", &owner_id, &err), -ATT_ERR_NOT_FOUND);

    /* Listing in (byte) name order. */
    CHECK_INT(srv_accounts_add(a, "Zoe", "zoe-long-password", 17, &err), 0);
    CHECK_INT(srv_accounts_add(a, "ali", "ali-long-password", 17, &err), 0);
    name_list l = {0};
    CHECK_INT(srv_accounts_list(a, collect_account, &l, &err), 0);
    CHECK_INT(l.n, 4);
    CHECK_STR(l.names[0], "Zoe");
    CHECK_STR(l.names[1], "ali");
    CHECK_STR(l.names[2], "dana");
    CHECK_STR(l.names[3], "sam");

    /* Owned rooms: none listed before the event store made its rooms
     * table; then only rooms that exist there, newest first. */
    CHECK_INT(srv_accounts_set_owner_id(a, "r-old", dana2.id, &err), 0);
    CHECK_INT(srv_accounts_set_owner(a, "r-new", "dana", &err), 0);
    CHECK_INT(srv_accounts_set_owner(a, "r-gone", "dana", &err), 0);
    l.n = 0;
    CHECK_INT(srv_accounts_owned_rooms(a, "dana", collect_room, &l, &err), 0);
    CHECK_INT(l.n, 0);
    run_sql(uri, "CREATE TABLE IF NOT EXISTS rooms (id TEXT PRIMARY KEY, created_at BIGINT NOT "
                 "NULL); INSERT INTO rooms VALUES ('r-old', 1000), ('r-new', 2000), "
                 "('r-dana', 3000)");
    CHECK_INT(srv_accounts_owned_rooms(a, "dana", collect_room, &l, &err), 0);
    CHECK_INT(l.n, 2);
    CHECK_STR(l.names[0], "r-new");
    CHECK_STR(l.names[1], "r-old");
    l.n = 0;
    CHECK_INT(srv_accounts_owned_rooms_id(a, dana2.id, collect_room, &l, &err), 0);
    CHECK_INT(l.n, 2);
    CHECK_STR(l.names[0], "r-new");
    int calls = 0;
    CHECK_INT(srv_accounts_owned_rooms_id(a, dana2.id, stop_at_first, &calls, &err), 7);
    CHECK_INT(calls, 1);
    CHECK_INT(srv_accounts_clear_owner(a, "r-new", &err), 0);
    CHECK_INT(srv_accounts_clear_owner(a, "r-new", &err), 0);
    l.n = 0;
    CHECK_INT(srv_accounts_owned_rooms(a, "dana", collect_room, &l, &err), 0);
    CHECK_INT(l.n, 1);
    CHECK_STR(l.names[0], "r-old");
    srv_accounts_close(a);
}

/* Two nodes: what one writes the other reads at once, and a password
 * changed on one ends verification with the old one on the other. */
static void two_nodes(const char *uri)
{
    att_error err = {0};
    srv_accounts *n1 = NULL, *n2 = NULL;
    CHECK_INT(srv_accounts_open_pg(uri, 1, &n1, &err), 0);
    CHECK_INT(srv_accounts_open_pg(uri, 1, &n2, &err), 0);
    int64_t id = 0;
    CHECK_INT(srv_accounts_add_kind(n1, "robin", SRV_ACCOUNT_THERAPIST, "correct horse battery", 21,
                                    &id, &err),
              0);
    srv_account seen;
    CHECK_INT(srv_accounts_get(n2, "robin", &seen, &err), 1);
    CHECK_INT(seen.id, id);
    CHECK_INT(srv_accounts_verify(n2, "robin", "correct horse battery", 21, &err), 1);
    /* The same name added on the other node is refused. */
    CHECK_INT(srv_accounts_add(n2, "robin", "another-long-password", 21, &err),
              -ATT_ERR_BAD_MESSAGE);
    CHECK_INT(srv_accounts_set_owner(n2, "r-robin", "robin", &err), 0);
    char owner[SRV_ACCOUNT_NAME_MAX + 1];
    CHECK_INT(srv_accounts_get_owner(n1, "r-robin", owner, &err), 0);
    CHECK_STR(owner, "robin");
    CHECK_INT(srv_accounts_set_password(n1, "robin", "a-brand-new-password", 20, &err), 0);
    CHECK_INT(srv_accounts_get_by_id(n2, id, &seen, &err), 1);
    CHECK_INT(seen.password_gen, 2);
    CHECK_INT(srv_accounts_verify(n2, "robin", "correct horse battery", 21, &err), 0);
    CHECK_INT(srv_accounts_verify(n2, "robin", "a-brand-new-password", 20, &err), 1);
    /* Both nodes hashed a new password from generation 2: the first to
     * store wins, the second is told the password changed meanwhile. */
    srv_password_record r1, r2;
    CHECK_INT(srv_password_hash_new("node-one-password", 17, &r1, &err), 0);
    CHECK_INT(srv_password_hash_new("node-two-password", 17, &r2, &err), 0);
    CHECK_INT(srv_accounts_store_password(n1, id, 2, &r1, NULL, &err), 0);
    CHECK_INT(srv_accounts_store_password(n2, id, 2, &r2, NULL, &err), -ATT_ERR_NOT_FOUND);
    CHECK_INT(srv_accounts_verify(n2, "robin", "node-one-password", 17, &err), 1);
    CHECK_INT(srv_accounts_remove(n2, "robin", &err), 0);
    CHECK_INT(srv_accounts_exists(n1, "robin", &err), 0);
    CHECK_INT(srv_accounts_get_owner(n1, "r-robin", owner, &err), -ATT_ERR_NOT_FOUND);
    srv_accounts_close(n1);
    srv_accounts_close(n2);
}

int main(void)
{
    char uri[512], uri2[512];
    pg_test_fresh_db("accounts", uri, sizeof uri);
    accounts(uri);
    pg_test_fresh_db("accounts2", uri2, sizeof uri2);
    two_nodes(uri2);
    return check_done("accounts_pg");
}
