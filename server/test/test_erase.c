/* test_erase.c - erasing a room for good, without a network: the room
 * service's part (srv_rooms_erase: every member closed 4401 bye
 * room_erased and detached, nothing recorded, busy while a commit is in
 * flight, then freed from memory) and the whole sequence (srv_erase_room:
 * links revoked, observers taken off, the key and the rows gone, the owner
 * row gone, the audit entry written; a retry after a stop partway
 * finishes; an unknown room is not_found; another room is untouched). A
 * real store on its own thread, the real catalog, the real accounts,
 * invitations and audit log in a temporary directory. */
#include "check.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "accounts.h"
#include "admin.h"
#include "audit.h"
#include "clock.h"
#include "erase.h"
#include "invites.h"
#include "keyring.h"
#include "room_service.h"

#ifndef ATTUNE_SOURCE_DIR
#define ATTUNE_SOURCE_DIR "."
#endif

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int woken;
} notifier;

static void on_notify(void *arg)
{
    notifier *n = arg;
    pthread_mutex_lock(&n->mu);
    n->woken = 1;
    pthread_cond_signal(&n->cv);
    pthread_mutex_unlock(&n->mu);
}

static void wait_commits(srv_rooms *svc, notifier *n)
{
    for (int rounds = 0; srv_rooms_jobs_in_flight(svc) > 0 && rounds < 1000; rounds++) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += 5;
        pthread_mutex_lock(&n->mu);
        while (!n->woken)
            if (pthread_cond_timedwait(&n->cv, &n->mu, &until) != 0)
                break;
        n->woken = 0;
        pthread_mutex_unlock(&n->mu);
        srv_rooms_on_store_completions(svc);
    }
    CHECK_INT(srv_rooms_jobs_in_flight(svc), 0);
}

/* How many close items the outbox holds for m with this bye; empties it. */
static int closes_for(srv_rooms *svc, const srv_member *m, const char *bye)
{
    srv_outbox *ob = srv_rooms_outbox(svc);
    int n = 0;
    for (size_t i = 0; i < ob->n_items; i++) {
        const srv_out_item *it = &ob->items[i];
        n += it->kind == SRV_OUT_CLOSE && it->to == m && it->code == SRV_CLOSE_BAD_TOKEN &&
             it->bye && strcmp(it->bye, bye) == 0;
    }
    return n;
}

static void join(srv_rooms *svc, srv_room *r, srv_member *m, att_role role)
{
    CHECK_INT(srv_room_join(svc, r, m, role, "h", 0), 0);
    while (srv_room_replay_step(svc, m, 1 << 20))
        ;
}

static srv_walk count_event(const srv_stored_event *ev, void *arg, att_error *err)
{
    (void)ev;
    (void)err;
    (*(int *)arg)++;
    return SRV_WALK_CONTINUE;
}

static int count_erased(const srv_audit_row *row, void *arg)
{
    (*(int *)arg) += strcmp(row->action, "erased") == 0;
    return 0;
}

int main(void)
{
    char dir[] = "/tmp/attune-erase-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    att_error err = {0};
    att_catalog *cat = NULL;
    srv_keyring *keys = NULL;
    srv_store *store = NULL;
    srv_accounts *accounts = NULL;
    srv_invites *invites = NULL;
    srv_audit *audit = NULL;
    CHECK_INT(att_catalog_load_dir(ATTUNE_SOURCE_DIR "/protocol", &cat, &err), 0);
    CHECK_INT(srv_keyring_open(dir, NULL, 1, &keys, &err), 0);
    CHECK_INT(srv_store_open(dir, keys, &store, &err), 0);
    CHECK_INT(srv_accounts_open(dir, 0, &accounts, &err), 0);
    CHECK_INT(srv_invites_open(dir, &invites, &err), 0);
    CHECK_INT(srv_audit_open(dir, keys, &audit, &err), 0);
    notifier n = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};
    CHECK_INT(srv_store_start(store, 0, on_notify, NULL, &n, &err), 0);
    int64_t dana = 0, sup = 0;
    CHECK_INT(srv_accounts_add_kind(accounts, "dana", SRV_ACCOUNT_THERAPIST, "dana-long-password",
                                    18, &dana, &err),
              0);
    CHECK_INT(srv_accounts_add_kind(accounts, "sup", SRV_ACCOUNT_SUPERVISOR, "sup-long-password!",
                                    18, &sup, &err),
              0);
    char room[ATT_ROOM_ID_BYTES + 1], other[ATT_ROOM_ID_BYTES + 1];
    CHECK_INT(srv_admin_create_room(store, cat, "enactment", ATT_ROLE_PARTNER_A, "r-", room, &err),
              0);
    CHECK_INT(srv_admin_create_room(store, cat, "enactment", ATT_ROLE_PARTNER_A, "r-", other, &err),
              0);
    CHECK_INT(srv_accounts_set_owner_id(accounts, room, dana, &err), 0);
    CHECK_INT(srv_accounts_set_owner_id(accounts, other, dana, &err), 0);
    CHECK_INT(srv_invites_add_observer(invites, room, sup, srv_now_ms(), &err), 1);
    srv_token_key tkey;
    memset(tkey.bytes, 0x42, sizeof tkey.bytes);
    char tok_a[SRV_TOKEN_MAX], tok_b[SRV_TOKEN_MAX], tok_other[SRV_TOKEN_MAX];
    int64_t now = srv_now_ms();
    CHECK_INT(srv_invites_issue(invites, &tkey, room, ATT_ROLE_PARTNER_A, 3600, "dana", now, tok_a,
                                sizeof tok_a, NULL, &err),
              0);
    CHECK_INT(srv_invites_issue(invites, &tkey, room, ATT_ROLE_PARTNER_B, 3600, "dana", now, tok_b,
                                sizeof tok_b, NULL, &err),
              0);
    CHECK_INT(srv_invites_issue(invites, &tkey, other, ATT_ROLE_PARTNER_A, 3600, "dana", now,
                                tok_other, sizeof tok_other, NULL, &err),
              0);

    srv_metrics metrics = {0};
    srv_rooms_deps deps = {.store = store,
                           .catalog = cat,
                           .invites = invites,
                           .metrics = &metrics,
                           .options = {.room = {.silence_ms = 300000, .disconnect_grace_ms = 60000},
                                       .room_event_cap = 50000,
                                       .presence_debounce_ms = 0,
                                       .room_evict_s = 60,
                                       .room_idle_evict_s = 600,
                                       .link_grace_s = 1800,
                                       .max_queue_bytes = 1 << 20}};
    srv_rooms *svc = NULL;
    CHECK_INT(srv_rooms_open(&deps, &svc, &err), 0);
    srv_room *r = srv_rooms_get(svc, room, &err);
    CHECK(r != NULL);
    if (!r)
        return check_done("erase");

    /* --- the live part: members go at once, the room when its commits do */
    srv_member a = {.id = 1}, b = {.id = 2}, t = {.id = 3};
    join(svc, r, &t, ATT_ROLE_THERAPIST);
    join(svc, r, &a, ATT_ROLE_PARTNER_A);
    join(svc, r, &b, ATT_ROLE_PARTNER_B);
    CHECK(srv_rooms_jobs_in_flight(svc) > 0); /* their `joined`, with the store */
    srv_outbox_reset(srv_rooms_outbox(svc));
    int64_t rooms_before = metrics.rooms;
    CHECK_INT(srv_rooms_erase(svc, room, &err), -ATT_ERR_ROOM_BUSY);
    CHECK_INT(closes_for(svc, &a, "room_erased"), 1);
    CHECK_INT(closes_for(svc, &b, "room_erased"), 1);
    CHECK_INT(closes_for(svc, &t, "room_erased"), 1);
    CHECK(a.room == NULL && b.room == NULL && t.room == NULL && a.closing && t.closing);
    CHECK(srv_rooms_find(svc, room) == r); /* kept while the store holds its batch */
    srv_outbox_reset(srv_rooms_outbox(svc));
    wait_commits(svc, &n);
    /* The shell's close of a member already gone from the room is harmless. */
    srv_rooms_forget_member(svc, &a, ATT_LEFT_CLOSED, 1);
    CHECK_INT(srv_rooms_jobs_in_flight(svc), 0);
    CHECK_INT(srv_rooms_erase(svc, room, &err), 0);
    CHECK(srv_rooms_find(svc, room) == NULL);
    CHECK_INT(metrics.rooms, rooms_before - 1);
    CHECK_INT(srv_rooms_erase(svc, "r-never-loaded", &err), 0);
    CHECK_INT(srv_rooms_jobs_in_flight(svc), 0); /* no `left` was recorded for anyone */

    /* --- the whole erase ------------------------------------------------ */
    srv_erase_deps edeps = {store, invites, accounts, audit};
    srv_erase_result done;
    CHECK_INT(srv_erase_room(&edeps, room, "dana", dana, srv_now_ms(), &done, &err), 0);
    CHECK_INT(done.links_revoked, 2);
    CHECK_INT(done.observers_removed, 1);
    CHECK_INT(done.store_had_room, 1);
    CHECK(done.audit_id > 0);
    srv_store_room meta;
    CHECK_INT(srv_store_get_room(store, room, &meta, &err), -ATT_ERR_NOT_FOUND);
    srv_seal_key k;
    CHECK_INT(srv_keyring_room_key(keys, room, &k, &err), -ATT_ERR_NOT_FOUND);
    int64_t owner = 0;
    CHECK_INT(srv_accounts_get_owner_id(accounts, room, &owner, &err), -ATT_ERR_NOT_FOUND);
    CHECK_INT(srv_invites_is_observer(invites, room, sup, &err), 0);
    srv_token_claims claims;
    int64_t rec = 0;
    CHECK_INT(srv_invites_verify(invites, &tkey, tok_a, srv_now_ms(), &claims, &rec, &err),
              -ATT_ERR_BAD_TOKEN);
    CHECK_INT(srv_invites_verify(invites, &tkey, tok_b, srv_now_ms(), &claims, &rec, &err),
              -ATT_ERR_BAD_TOKEN);
    int events = 0;
    CHECK_INT(srv_store_walk_events(store, room, 0, -1, 0, count_event, &events, &err),
              SRV_WALK_CONTINUE);
    CHECK_INT(events, 0);
    srv_audit_filter mine = {.room = room, .actor_id = dana};
    int erased = 0;
    CHECK_INT(srv_audit_walk(audit, &mine, count_erased, &erased, &err), 0);
    CHECK_INT(erased, 1);
    srv_audit_check check;
    CHECK_INT(srv_audit_verify(audit, &check, &err), 0);
    CHECK(check.ok);

    /* The other room is as it was. */
    events = 0;
    CHECK_INT(srv_store_walk_events(store, other, 0, -1, 0, count_event, &events, &err),
              SRV_WALK_CONTINUE);
    CHECK_INT(events, 1);
    CHECK_INT(srv_invites_verify(invites, &tkey, tok_other, srv_now_ms(), &claims, &rec, &err), 0);
    CHECK_INT(srv_accounts_get_owner_id(accounts, other, &owner, &err), 0);

    /* Again: nothing left of it anywhere, not_found, nothing recorded. */
    CHECK_INT(srv_erase_room(&edeps, room, "dana", dana, srv_now_ms(), &done, &err),
              -ATT_ERR_NOT_FOUND);
    CHECK_INT(srv_erase_room(&edeps, "r-no-such", "dana", dana, srv_now_ms(), &done, &err),
              -ATT_ERR_NOT_FOUND);
    erased = 0;
    CHECK_INT(srv_audit_walk(audit, &mine, count_erased, &erased, &err), 0);
    CHECK_INT(erased, 1);

    /* An erase that stopped after the store let go (the owner row left):
     * asking again finishes it. */
    CHECK_INT(srv_accounts_set_owner_id(accounts, room, dana, &err), 0);
    CHECK_INT(srv_erase_room(&edeps, room, "cli:test", 0, srv_now_ms(), &done, &err), 0);
    CHECK_INT(done.store_had_room, 0);
    CHECK_INT(srv_accounts_get_owner_id(accounts, room, &owner, &err), -ATT_ERR_NOT_FOUND);

    srv_store_close(store);
    srv_rooms_free(svc);
    srv_audit_close(audit);
    srv_invites_close(invites);
    srv_accounts_close(accounts);
    srv_keyring_close(keys);
    att_catalog_free(cat);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s %s.kek", dir, dir);
    CHECK_INT(system(cmd), 0);
    return check_done("erase");
}
