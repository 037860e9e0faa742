/* api.c - the /api endpoints of protocol/HTTP.md (see api.h). Every
 * function runs on the lws service thread unless api.h says otherwise.
 *
 * A request's life: LWS_CALLBACK_HTTP reads the method, path and headers;
 * a GET (or a POST without a body) is answered at once, a POST's body is
 * collected (at most 16 KiB) and answered at BODY_COMPLETION. dispatch()
 * finds the request's route in the table `routes` (method, path pattern,
 * what it needs: a login, the room's ownership, the room), checks that,
 * and calls the route's handler. Answering fills the request's reply
 * (http_reply.h) and asks for WRITEABLE, which writes the headers, then
 * the body in pieces (one lws_write per call).
 *
 * A login's password is checked on the hasher thread (hasher.h): the
 * request waits in `waiting`, named by its id, until WAIT_CANCELLED brings
 * the result back; a request that closes meanwhile just leaves the list.
 *
 * GET /api/crisis is public (partners have no account): the body is made
 * once at start-up from --crisis-file (crisis.h) and copied out as is. */
#include "api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "accounts.h"
#include "admin.h"
#include "api_body.h"
#include "audit.h"
#include "config_store.h"
#include "crisis.h"
#include "erase.h"
#include "hasher.h"
#include "http.h"
#include "http_reply.h"
#include "invites.h"
#include "log.h"
#include "login_limit.h"
#include "room_events.h"
#include "review.h"
#include "room_log.h"
#include "server.h"
#include "sessions.h"
#include "tickets.h"
#include "ws.h"
#include "attune/buf.h"
#include "attune/names.h"

struct srv_api {
    srv_accounts *accounts;
    srv_sessions *sessions;
    srv_login_limit *limit;
    srv_hasher *hasher;
    srv_room_events *events; /* GET /api/rooms/events streams */
    srv_audit *audit;        /* who opened, exported, revoked, erased (audit.h) */
    int64_t erased_seen;     /* the last audit entry the erase sweep looked at */
    uint64_t next_request_id;
    lws_dll2_owner_t waiting;   /* api_req.wait_link: logins being checked */
    lws_dll2_owner_t reviewing; /* api_req.wait_link: log pages being built (review.h) */
    char *crisis;               /* GET /api/crisis body (--crisis-file or the default) */
    size_t crisis_len;
};

typedef enum { METHOD_OTHER, METHOD_GET, METHOD_POST } api_method;

typedef struct {
    struct lws *wsi;
    uint64_t id;
    lws_dll2_t wait_link; /* in api->waiting (password) or api->reviewing (log page) */
    int waiting;
    char login_name[SRV_ACCOUNT_NAME_MAX + 1];
    int password_change;       /* the waiting check is POST /api/password's */
    srv_events_stream *stream; /* GET /api/rooms/events: this request is a stream */
    api_method method;
    char path[160];
    /* the client address (peer.h); the --body-timeout while a body comes */
    char peer[SRV_PEER_ADDR_MAX];
    lws_sorted_usec_list_t body_sul;
    /* request body (POST) */
    char *body;
    size_t body_len;
    int body_too_large;
    int answered;
    /* response; extra.close_after: the request body was not read, so the
     * connection closes after the answer rather than being reused */
    srv_http_reply reply;
    srv_http_extra extra;
} api_req;

/* What routing found for a request's handler (dispatch): the login session
 * (every route but the public ones), the path's {id}, and, for the routes
 * of an owned room (ROUTE_ROOM), the room. */
typedef struct {
    srv_session_info sess;
    char room_id[ATT_ROOM_ID_BYTES + 1];
    srv_room *room;
} api_call;

static const struct lws_protocol_vhost_options security_headers[] = {
    {&security_headers[1], NULL, "content-security-policy:",
     "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
     "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"},
    {&security_headers[2], NULL, "x-content-type-options:", "nosniff"},
    {NULL, NULL, "referrer-policy:", "no-referrer"},
};

const struct lws_protocol_vhost_options *srv_api_security_headers(void)
{
    return security_headers;
}

size_t srv_api_pss_size(void)
{
    return sizeof(api_req);
}

srv_accounts *srv_api_accounts(srv_server *srv)
{
    return srv->api ? srv->api->accounts : NULL;
}

srv_sessions *srv_api_sessions(srv_server *srv)
{
    return srv->api ? srv->api->sessions : NULL;
}

/* The accounts as they are now, for srv_sessions_revalidate. */
typedef struct {
    int64_t id, gen;
} account_gen;

typedef struct {
    account_gen items[512];
    size_t n;
    int overflow;
} account_gens;

static int collect_gen(const srv_account *acct, void *arg)
{
    account_gens *g = arg;
    if (g->n == sizeof g->items / sizeof g->items[0]) {
        g->overflow = 1;
        return 1;
    }
    g->items[g->n].id = acct->id;
    g->items[g->n].gen = acct->password_gen;
    g->n++;
    return 0;
}

typedef struct {
    srv_accounts *accounts;
    account_gens *gens;
} revalidate_ctx;

static srv_session_account_state account_state(int found, int64_t gen, int64_t session_gen)
{
    return !found               ? SRV_SESSION_ACCOUNT_REMOVED
           : gen != session_gen ? SRV_SESSION_ACCOUNT_PASSWORD_CHANGED
                                : SRV_SESSION_ACCOUNT_OK;
}

/* Whether the account still exists with the generation the session
 * logged in with. */
static srv_session_account_state session_account_valid(void *arg, int64_t account_id,
                                                       int64_t password_gen)
{
    revalidate_ctx *c = arg;
    if (!c->gens->overflow) {
        for (size_t i = 0; i < c->gens->n; i++)
            if (c->gens->items[i].id == account_id)
                return account_state(1, c->gens->items[i].gen, password_gen);
        return SRV_SESSION_ACCOUNT_REMOVED;
    }
    /* Many accounts: ask for this one. */
    srv_account acct;
    att_error err = {0};
    int found = srv_accounts_get_by_id(c->accounts, account_id, &acct, &err);
    if (found < 0)
        return SRV_SESSION_ACCOUNT_OK; /* kept until the database answers */
    return account_state(found, acct.password_gen, password_gen);
}

/* A room `attune room erase` erased in another process while this server
 * runs: its live members close (bye room_erased), it leaves memory, and
 * this process's cached copy of its key goes; then the store's erase runs
 * again, for any event this server stored for it in the second before it
 * noticed. */
typedef struct {
    srv_server *srv;
    int64_t seen; /* the last entry dealt with */
    int busy;     /* a room still had a commit in flight: again next sweep */
} erased_sweep;

static int erase_noticed(const srv_audit_row *row, void *arg)
{
    erased_sweep *w = arg;
    srv_server *srv = w->srv;
    att_error err = {0};
    if (srv_room_id_valid(row->room)) {
        /* This process's own erases come by too; they find nothing left. */
        int was_live = srv_rooms_find(srv->rooms, row->room) != NULL;
        if (srv_rooms_erase(srv->rooms, row->room, &err) == -ATT_ERR_ROOM_BUSY) {
            w->busy = 1;
            return 1;
        }
        if (srv_keyring_erase_room(srv->keys, row->room, &err) < 0 ||
            (srv_store_erase_room(srv->store, row->room, &err) < 0 &&
             err.code != ATT_ERR_NOT_FOUND))
            srv_log("error", "erase_not_finished", "{s:s,s:s}", "room", row->room, "error",
                    err.message);
        if (was_live) {
            srv_api_room_changed(srv, row->room);
            srv_log("info", "room_erased_elsewhere", "{s:s,s:s}", "room", row->room, "by",
                    row->actor);
        }
    }
    w->seen = row->id;
    return 0;
}

static void sweep_erased(srv_server *srv)
{
    srv_api *api = srv->api;
    erased_sweep w = {srv, api->erased_seen, 0};
    srv_audit_filter f = {.action = srv_audit_action_name(SRV_AUDIT_ERASED),
                          .after_id = api->erased_seen};
    att_error err = {0};
    if (srv_audit_walk(api->audit, &f, erase_noticed, &w, &err) < 0)
        srv_log("error", "erase_sweep_failed", "{s:s}", "error", err.message);
    api->erased_seen = w.seen;
    srv_ws_drain(srv);
}

void srv_api_sweep(srv_server *srv)
{
    srv_api *api = srv->api;
    if (!api)
        return;
    sweep_erased(srv);
    srv_sessions_sweep(api->sessions, srv_now_ms());
    if (srv_sessions_count(api->sessions) == 0)
        return;
    /* Accounts removed or passwords changed, by this process or by the
     * `attune` command in another: one small query a second. */
    account_gens *gens = calloc(1, sizeof *gens);
    att_error err = {0};
    if (!gens)
        return;
    if (srv_accounts_list(api->accounts, collect_gen, gens, &err) < 0) {
        srv_log("error", "sessions_check_failed", "{s:s}", "error", err.message);
    } else {
        revalidate_ctx c = {api->accounts, gens};
        srv_sessions_revalidate(api->sessions, session_account_valid, &c);
    }
    free(gens);
}

/* The crisis body is made once, at start-up, so a bad --crisis-file stops
 * the server before it serves anyone. */
static int load_crisis(srv_api *api, const srv_config *cfg, att_error *err)
{
    json_t *body = NULL;
    if (cfg->crisis_file[0]) {
        int rc = srv_crisis_load(cfg->crisis_file, &body, err);
        if (rc < 0)
            return rc;
    } else {
        body = srv_crisis_default();
    }
    api->crisis = body ? att_json_dump(body, &api->crisis_len) : NULL;
    json_decref(body);
    if (!api->crisis)
        return att_fail(err, ATT_ERR_INTERNAL, "out of memory");
    return 0;
}

static char *room_list_text(void *arg, int64_t account_id, srv_account_kind kind, size_t *len,
                            att_error *err);

/* A session ended (sessions.h hook): its event streams close. */
static void close_session_streams(void *arg, uint64_t session_id, const char *account)
{
    srv_api *api = arg;
    (void)account;
    srv_room_events_session_ended(api->events, session_id);
}

void srv_api_room_changed(srv_server *srv, const char *room_id)
{
    if (srv->api)
        srv_room_events_room_changed(srv->api->events, room_id);
}

void srv_api_tick(srv_server *srv, int64_t now_mono)
{
    if (srv->api)
        srv_room_events_tick(srv->api->events, now_mono);
}

static int take_last_id(const srv_audit_row *row, void *arg)
{
    *(int64_t *)arg = row->id;
    return 1;
}

/* The newest audit entry's id (0 for none): the erase sweep starts there. */
static int audit_last_id(srv_audit *audit, int64_t *out, att_error *err)
{
    *out = 0;
    srv_audit_filter newest = {.limit = 1, .newest_first = 1};
    return srv_audit_walk(audit, &newest, take_last_id, out, err) < 0 ? -ATT_ERR_INTERNAL : 0;
}

int srv_api_open(srv_server *srv, att_error *err)
{
    srv_api *api = calloc(1, sizeof *api);
    if (!api)
        return att_fail(err, ATT_ERR_INTERNAL, "out of memory");
    srv->api = api;
    /* A cluster node (--store) shares accounts and login sessions with
     * the others, so any node serves /api and none logs anyone out. */
    const char *shared = srv->cfg->store_uri[0] ? srv->cfg->store_uri : NULL;
    int rc = shared ? srv_accounts_open_pg(shared, 1, &api->accounts, err)
                    : srv_accounts_open(srv->cfg->data_dir, 1, &api->accounts, err);
    if (rc == 0)
        rc = srv_sessions_new((int64_t)srv->cfg->session_idle_s * 1000,
                              (int64_t)srv->cfg->session_lifetime_s * 1000, &api->sessions, err);
    if (rc == 0 && shared)
        rc = srv_sessions_attach_pg(api->sessions, shared, err);
    if (rc == 0)
        rc = srv_login_limit_new(&api->limit, err);
    /* one count of failed logins, whichever node each attempt reached */
    if (rc == 0 && shared)
        rc = srv_login_limit_share(api->limit, shared, err);
    if (rc == 0)
        rc = load_crisis(api, srv->cfg, err);
    if (rc == 0)
        rc = srv_hasher_start(srv_server_wake, srv, &api->hasher, err);
    if (rc == 0)
        rc = srv_room_events_new(api->accounts, room_list_text, srv, &api->events, err);
    if (rc == 0 && shared)
        srv_room_events_poll_shared(api->events, SRV_EVENTS_SHARED_POLL_MS);
    /* and one audit log, so what a therapist did shows whichever node served it */
    if (rc == 0)
        rc = shared ? srv_audit_open_pg(shared, srv->keys, &api->audit, err)
                    : srv_audit_open(srv->cfg->data_dir, srv->keys, &api->audit, err);
    if (rc == 0)
        rc = audit_last_id(api->audit, &api->erased_seen, err);
    if (rc == 0 && srv_sessions_set_end_hook(api->sessions, close_session_streams, api) < 0)
        rc = att_fail(err, ATT_ERR_INTERNAL, "sessions: no room for another end hook");
    return rc;
}

void srv_api_close(srv_server *srv)
{
    srv_api *api = srv->api;
    if (!api)
        return;
    srv_hasher_stop(api->hasher);
    srv_room_events_free(api->events);
    srv_audit_close(api->audit);
    srv_accounts_close(api->accounts);
    srv_sessions_free(api->sessions);
    srv_login_limit_free(api->limit);
    free(api->crisis);
    free(api);
    srv->api = NULL;
}

/* ---- responses ---- */

/* Answers with a copy of text as the JSON body. */
static int respond_text(struct lws *wsi, api_req *q, int status, const char *text, size_t len)
{
    q->answered = 1;
    return srv_http_reply_copy(wsi, &q->reply, status, "application/json", text, len);
}

/* Consumes j. */
static int respond_json(struct lws *wsi, api_req *q, int status, json_t *j)
{
    size_t len = 0;
    char *text = j ? att_json_dump(j, &len) : NULL;
    json_decref(j);
    if (!text)
        return -1;
    int rc = respond_text(wsi, q, status, text, len);
    free(text);
    return rc;
}

static int respond_error(struct lws *wsi, api_req *q, int status, const char *code,
                         const char *message)
{
    return respond_json(wsi, q, status, json_pack("{s:s,s:s}", "error", code, "message", message));
}

static int respond_empty(struct lws *wsi, api_req *q, int status)
{
    return respond_text(wsi, q, status, "", 0);
}

/* ---- request helpers ---- */

static int header(struct lws *wsi, enum lws_token_indexes t, char *buf, size_t size)
{
    int total = lws_hdr_total_length(wsi, t);
    if (total <= 0) {
        buf[0] = '\0';
        return 0;
    }
    if ((size_t)total >= size)
        return -1;
    return lws_hdr_copy(wsi, buf, (int)size, t) < 0 ? -1 : total;
}

/* The attune_session cookie's value, or "" when absent. */
static void session_cookie(struct lws *wsi, char out[SRV_SESSION_COOKIE_BYTES])
{
    char all[4096];
    out[0] = '\0';
    if (header(wsi, WSI_TOKEN_HTTP_COOKIE, all, sizeof all) <= 0)
        return;
    const size_t name_len = strlen(SRV_SESSION_COOKIE_NAME);
    for (char *s = all; *s;) {
        while (*s == ' ' || *s == ';')
            s++;
        char *end = strchr(s, ';');
        size_t n = end ? (size_t)(end - s) : strlen(s);
        if (n > name_len && strncmp(s, SRV_SESSION_COOKIE_NAME, name_len) == 0 &&
            s[name_len] == '=') {
            size_t v = n - name_len - 1;
            if (v < SRV_SESSION_COOKIE_BYTES) {
                memcpy(out, s + name_len + 1, v);
                out[v] = '\0';
            }
            return;
        }
        s += n;
    }
}

static int served_over_tls(struct lws *wsi, const srv_config *cfg)
{
    /* Directly, or behind a TLS-terminating proxy named in --public-url. */
    return lws_is_ssl(wsi) || strncasecmp(cfg->public_url, "https://", 8) == 0;
}

static void set_cookie(struct lws *wsi, api_req *q, const srv_config *cfg, const char *value)
{
    snprintf(q->extra.set_cookie, sizeof q->extra.set_cookie,
             "%s=%s; HttpOnly; SameSite=Strict; Path=/%s%s", SRV_SESSION_COOKIE_NAME, value,
             value[0] ? "" : "; Max-Age=0", served_over_tls(wsi, cfg) ? "; Secure" : "");
}

/* 1 with the logged-in session in *sess, or 0 after answering 401. `renew`:
 * the request is the therapist's own action (it counts against idle
 * logoff); background reads pass 0. A removed account's sessions, and
 * those from before a password change, end here at once (and at the next
 * sweep without a request). */
static int authenticate(struct lws *wsi, srv_server *srv, api_req *q, int renew,
                        srv_session_info *sess, int *failed)
{
    char cookie[SRV_SESSION_COOKIE_BYTES];
    session_cookie(wsi, cookie);
    *failed = 0;
    int64_t now = srv_now_ms();
    if (cookie[0] && (renew ? srv_sessions_touch(srv->api->sessions, cookie, now, sess)
                            : srv_sessions_find(srv->api->sessions, cookie, now, sess))) {
        att_error err = {0};
        srv_account acct;
        int found = srv_accounts_get_by_id(srv->api->accounts, sess->account_id, &acct, &err);
        if (found == 1 && acct.password_gen == sess->password_gen)
            return 1;
        if (found < 0) {
            srv_log("error", "api_failed", "{s:s}", "error", err.message);
            *failed = respond_error(wsi, q, 500, "internal", "the server could not check this");
            return 0;
        }
        srv_sessions_end_id(srv->api->sessions, sess->id,
                            found ? "password_changed" : "account_removed");
    }
    if (cookie[0])
        set_cookie(wsi, q, srv->cfg, ""); /* expired or unknown: clear it */
    *failed = respond_error(wsi, q, 401, "not_authenticated", "please log in");
    return 0;
}

/* ---- endpoints ---- */

static int internal_error(struct lws *wsi, api_req *q, const att_error *err)
{
    srv_log("error", "api_failed", "{s:s,s:s}", "path", q->path, "error", err->message);
    return respond_error(wsi, q, 500, "internal", "the server could not do this");
}

/* Records what the logged-in account did to a room (audit.h): at once, on
 * this thread (a small transaction; the actions are rare). Opens and
 * exports coalesce (`once`): a dashboard rereading a room, a live view
 * reconnecting, a replay paging through a log are one entry per ten
 * minutes. A failure (a full disk, an audit log edited outside attune,
 * which refuses appends) is logged, not answered: the therapist's work goes
 * on and the log line says what the audit log is missing. */
static void audit_note(srv_server *srv, const srv_session_info *sess, srv_audit_action action,
                       const char *room, const char *detail, int once)
{
    srv_audit_entry e = {.at = srv_now_ms(),
                         .actor = sess->account,
                         .actor_id = sess->account_id,
                         .action = action,
                         .room = room,
                         .detail = detail};
    att_error err = {0};
    int rc = once ? srv_audit_record_once(srv->api->audit, &e, SRV_AUDIT_COALESCE_MS, NULL, &err)
                  : srv_audit_record(srv->api->audit, &e, NULL, &err);
    if (rc < 0)
        srv_log("error", "audit_failed", "{s:s,s:s,s:s,s:s}", "action",
                srv_audit_action_name(action), "room", room ? room : "", "by", sess->account,
                "error", err.message);
}

/* The two limit keys of an attempt: the account together with the client
 * address (wrong passwords from one place slow down that place only), and
 * the address alone (one place trying many names). The unit separator
 * cannot be in a valid name; an invalid one only ever fails. */
static void limit_keys(const char *user, const char *peer, char pair_key[SRV_LOGIN_KEY_BYTES],
                       char addr_key[SRV_LOGIN_KEY_BYTES])
{
    snprintf(pair_key, SRV_LOGIN_KEY_BYTES, "p:%s\x1f%.64s", peer, user);
    snprintf(addr_key, SRV_LOGIN_KEY_BYTES, "a:%s", peer);
}

/* At most this many password checks of one client address wait for the
 * hasher at once, so one address cannot fill its queue (review L4). */
#define LOGINS_PER_ADDRESS_AT_ONCE 4

static int waiting_from(srv_api *api, const char *peer)
{
    int n = 0;
    lws_start_foreach_dll(struct lws_dll2 *, d, lws_dll2_get_head(&api->waiting))
    {
        api_req *w = lws_container_of(d, api_req, wait_link);
        n += strcmp(w->peer, peer) == 0;
    }
    lws_end_foreach_dll(d);
    return n;
}

/* 0 when `user` may try a password from q's address now, else 1 after
 * answering 429 with Retry-After. */
static int login_delayed(struct lws *wsi, srv_api *api, api_req *q, const char *user, int64_t now,
                         int *failed)
{
    char pair_key[SRV_LOGIN_KEY_BYTES], addr_key[SRV_LOGIN_KEY_BYTES];
    limit_keys(user, q->peer, pair_key, addr_key);
    int64_t wait_pair =
        srv_login_limit_wait_s(api->limit, pair_key, SRV_LOGIN_PAIR_FREE_FAILURES, now);
    int64_t wait_addr =
        srv_login_limit_wait_s(api->limit, addr_key, SRV_LOGIN_ADDRESS_FREE_FAILURES, now);
    if (!wait_pair && !wait_addr && waiting_from(api, q->peer) < LOGINS_PER_ADDRESS_AT_ONCE)
        return 0;
    q->extra.retry_after_s = wait_pair > wait_addr ? wait_pair : wait_addr ? wait_addr : 1;
    srv_log("info", "login_limited", "{s:s,s:I}", "peer", q->peer, "retry_after",
            (json_int_t)q->extra.retry_after_s);
    *failed = respond_error(wsi, q, 429, "rate_limited", "too many failed logins; try again later");
    return 1;
}

/* Counts the attempt as a failure now (so parallel guesses cannot outrun
 * the limit); a right password takes it back (login_succeeded). */
static void count_attempt(srv_api *api, api_req *q, const char *user, int64_t now)
{
    char pair_key[SRV_LOGIN_KEY_BYTES], addr_key[SRV_LOGIN_KEY_BYTES];
    limit_keys(user, q->peer, pair_key, addr_key);
    srv_login_limit_fail(api->limit, pair_key, now);
    srv_login_limit_fail(api->limit, addr_key, now);
}

static void login_succeeded(srv_api *api, api_req *q, const char *user)
{
    char pair_key[SRV_LOGIN_KEY_BYTES], addr_key[SRV_LOGIN_KEY_BYTES];
    limit_keys(user, q->peer, pair_key, addr_key);
    srv_login_limit_reset(api->limit, pair_key);
    srv_login_limit_unfail(api->limit, addr_key);
}

/* Checks the limits, then hands the password to the hasher thread. */
static int do_login(struct lws *wsi, srv_server *srv, api_req *q, const api_call *call)
{
    (void)call;
    srv_api *api = srv->api;
    att_error err = {0};
    srv_login_body body;
    if (srv_api_body_login(q->body, q->body_len, &body, &err) < 0)
        return respond_error(wsi, q, 400, "bad_request",
                             "send {\"username\": ..., \"password\": ...}");
    const char *user = body.username;
    int64_t now = srv_now_ms();
    int failed = 0;
    if (login_delayed(wsi, api, q, user, now, &failed)) {
        json_decref(body.doc);
        return failed;
    }
    srv_hash_job *job = calloc(1, sizeof *job);
    if (!job) {
        json_decref(body.doc);
        return -1;
    }
    /* An invalid name is looked up as "", which finds nothing: the check
     * still runs scrypt on the dummy record and answers no. */
    int valid = srv_account_name_valid(user);
    int rc = srv_accounts_lookup(api->accounts, valid ? user : "", &job->record, &err);
    job->password_len = body.password_len;
    if (job->password_len > sizeof job->password)
        job->password_len = sizeof job->password;
    memcpy(job->password, body.password, job->password_len);
    if (valid)
        snprintf(q->login_name, sizeof q->login_name, "%s", user);
    /* The limit keys use at most 64 bytes of the name (limit_keys). */
    char name_copy[SRV_ACCOUNT_NAME_MAX + 1];
    snprintf(name_copy, sizeof name_copy, "%s", user);
    json_decref(body.doc); /* user points into it */
    if (rc < 0) {
        srv_hash_job_free(job);
        return internal_error(wsi, q, &err);
    }
    job->request_id = q->id;
    if (srv_hasher_submit(api->hasher, job, &err) < 0) {
        srv_hash_job_free(job);
        q->extra.retry_after_s = 1;
        return respond_error(wsi, q, 429, "rate_limited", "too many logins at once; try again");
    }
    count_attempt(api, q, name_copy, now);
    q->waiting = 1;
    lws_dll2_add_tail(&q->wait_link, &api->waiting);
    return 0;
}

/* The body of /api/me and of a login: who, and when the session ends. */
static json_t *me_json(srv_server *srv, const srv_session_info *sess)
{
    return json_pack(
        "{s:s,s:s,s:I,s:I,s:I}", "name", sess->account, "kind", srv_account_kind_name(sess->kind),
        "idle_timeout_s", (json_int_t)srv->cfg->session_idle_s, "lifetime_s",
        (json_int_t)srv->cfg->session_lifetime_s, "expires_at", (json_int_t)sess->expires_at);
}

/* The hasher's answer for a waiting login. */
static int finish_password_change(srv_server *srv, api_req *q, const srv_hash_job *job);

static int finish_login(srv_server *srv, api_req *q, const srv_hash_job *job)
{
    srv_api *api = srv->api;
    struct lws *wsi = q->wsi;
    if (job->result < 0)
        return internal_error(wsi, q, &job->error);
    if (q->password_change)
        return finish_password_change(srv, q, job);
    if (job->result == 0 || !q->login_name[0]) {
        srv_log("info", "login_failed", "{s:s}", "peer", q->peer);
        return respond_error(wsi, q, 401, "bad_credentials", "wrong username or password");
    }
    login_succeeded(api, q, q->login_name);
    char cookie[SRV_SESSION_COOKIE_BYTES];
    att_error err = {0};
    srv_account acct = {.id = job->record.account_id,
                        .kind = (srv_account_kind)job->record.kind,
                        .password_gen = job->record.password_gen};
    snprintf(acct.name, sizeof acct.name, "%s", q->login_name);
    if (srv_sessions_start(api->sessions, &acct, srv_now_ms(), cookie, NULL, &err) < 0)
        return internal_error(wsi, q, &err);
    set_cookie(wsi, q, srv->cfg, cookie);
    srv_log("info", "login", "{s:s,s:s}", "name", q->login_name, "peer", q->peer);
    srv_session_info sess;
    if (!srv_sessions_find(api->sessions, cookie, srv_now_ms(), &sess))
        return internal_error(wsi, q, &err);
    return respond_json(wsi, q, 200, me_json(srv, &sess));
}

/* The request in list (api->waiting or api->reviewing) whose id is id, taken
 * off the list and no longer waiting; NULL when it has gone. */
static api_req *take_waiting(lws_dll2_owner_t *list, uint64_t id)
{
    api_req *found = NULL;
    lws_start_foreach_dll(struct lws_dll2 *, d, lws_dll2_get_head(list))
    {
        api_req *q = lws_container_of(d, api_req, wait_link);
        if (q->id == id)
            found = q;
    }
    lws_end_foreach_dll(d);
    if (found) {
        lws_dll2_remove(&found->wait_link);
        found->waiting = 0;
    }
    return found;
}

/* WAIT_CANCELLED: answers the logins whose check finished. */
static void on_hasher_done(srv_server *srv)
{
    srv_api *api = srv->api;
    srv_hash_job *job = srv_hasher_take_done(api->hasher);
    while (job) {
        srv_hash_job *next = job->next;
        api_req *found = take_waiting(&api->waiting, job->request_id);
        if (found) {
            if (finish_login(srv, found, job) < 0)
                lws_set_timeout(found->wsi, PENDING_TIMEOUT_KILLED_BY_PARENT, LWS_TO_KILL_ASYNC);
        }
        srv_hash_job_free(job);
        job = next;
    }
}

/* POST /api/password: {"current_password", "new_password"}. The current
 * password is checked on the hasher thread like a login's (and counts
 * against the same limits, so a stolen cookie cannot guess it quickly);
 * the new hash is made there too. */
static int do_password(struct lws *wsi, srv_server *srv, api_req *q, const api_call *call)
{
    const srv_session_info *sess = &call->sess;
    srv_api *api = srv->api;
    att_error err = {0};
    srv_password_body body;
    if (srv_api_body_password(q->body, q->body_len, &body, &err) < 0)
        return respond_error(wsi, q, 400, "bad_request",
                             "send {\"current_password\": ..., \"new_password\": ...}");
    if (srv_password_check(body.new_password, body.new_len, &err) < 0) {
        json_decref(body.doc);
        return respond_error(wsi, q, 400, "bad_password", err.message);
    }
    int64_t now = srv_now_ms();
    int failed = 0;
    if (login_delayed(wsi, api, q, sess->account, now, &failed)) {
        json_decref(body.doc);
        return failed;
    }
    srv_hash_job *job = calloc(1, sizeof *job);
    if (!job) {
        json_decref(body.doc);
        return -1;
    }
    int rc = srv_accounts_lookup(api->accounts, sess->account, &job->record, &err);
    job->password_len = body.current_len;
    if (job->password_len > sizeof job->password)
        job->password_len = sizeof job->password;
    memcpy(job->password, body.current_password, job->password_len);
    job->set_new = 1;
    job->new_password_len = body.new_len; /* <= the max: checked above */
    memcpy(job->new_password, body.new_password, job->new_password_len);
    json_decref(body.doc);
    if (rc < 0 || !job->record.found || job->record.account_id != sess->account_id ||
        job->record.password_gen != sess->password_gen) {
        srv_hash_job_free(job);
        if (rc < 0)
            return internal_error(wsi, q, &err);
        srv_sessions_end_id(api->sessions, sess->id, "password_changed"); /* changed under it */
        set_cookie(wsi, q, srv->cfg, "");
        return respond_error(wsi, q, 401, "not_authenticated", "please log in");
    }
    job->request_id = q->id;
    if (srv_hasher_submit(api->hasher, job, &err) < 0) {
        srv_hash_job_free(job);
        q->extra.retry_after_s = 1;
        return respond_error(wsi, q, 429, "rate_limited", "too many logins at once; try again");
    }
    count_attempt(api, q, sess->account, now);
    snprintf(q->login_name, sizeof q->login_name, "%s", sess->account);
    q->password_change = 1;
    q->waiting = 1;
    lws_dll2_add_tail(&q->wait_link, &api->waiting);
    return 0;
}

/* The hasher's answer for a password change: on a match, the new hash is
 * stored (bumping the generation), every session of the account ends
 * (their WebSockets and streams close through the end hooks), and this
 * browser gets a fresh session so the page it is on keeps working. */
static int finish_password_change(srv_server *srv, api_req *q, const srv_hash_job *job)
{
    srv_api *api = srv->api;
    struct lws *wsi = q->wsi;
    if (job->result == 0) {
        srv_log("info", "password_change_failed", "{s:s}", "peer", q->peer);
        return respond_error(wsi, q, 403, "bad_credentials", "the current password is wrong");
    }
    att_error err = {0};
    int64_t gen = 0;
    int rc = srv_accounts_store_password(api->accounts, job->record.account_id,
                                         job->record.password_gen, &job->new_record, &gen, &err);
    if (rc == -ATT_ERR_NOT_FOUND) {
        srv_sessions_end_account(api->sessions, job->record.account_id, "password_changed");
        set_cookie(wsi, q, srv->cfg, "");
        return respond_error(wsi, q, 401, "not_authenticated", "please log in");
    }
    if (rc < 0)
        return internal_error(wsi, q, &err);
    login_succeeded(api, q, q->login_name);
    srv_sessions_end_account(api->sessions, job->record.account_id, "password_changed");
    srv_account acct = {.id = job->record.account_id,
                        .kind = (srv_account_kind)job->record.kind,
                        .password_gen = gen};
    snprintf(acct.name, sizeof acct.name, "%s", q->login_name);
    char cookie[SRV_SESSION_COOKIE_BYTES];
    srv_session_info sess;
    if (srv_sessions_start(api->sessions, &acct, srv_now_ms(), cookie, &sess, &err) < 0)
        return internal_error(wsi, q, &err);
    set_cookie(wsi, q, srv->cfg, cookie);
    srv_log("info", "password_changed", "{s:s,s:s}", "name", q->login_name, "peer", q->peer);
    return respond_json(wsi, q, 200, me_json(srv, &sess));
}

static int do_logout(struct lws *wsi, srv_server *srv, api_req *q, const api_call *call)
{
    (void)call;
    char cookie[SRV_SESSION_COOKIE_BYTES];
    session_cookie(wsi, cookie);
    if (cookie[0])
        srv_sessions_end(srv->api->sessions, cookie);
    set_cookie(wsi, q, srv->cfg, "");
    return respond_empty(wsi, q, 204);
}

/* The room summary of HTTP.md, from the room's committed state
 * (summary.c builds it; rooms.c caches it for rooms out of memory). */
static json_t *room_summary(srv_server *srv, srv_room *r, att_error *err)
{
    return srv_room_summary(srv->rooms, r, err);
}

/* The room's invitation records for the dashboard: role, when issued, by
 * whom, until when, revoked or not. Never a link: only its nonce's hash is
 * kept, so an issued link cannot be shown again. */
typedef struct {
    json_t *list;
    int64_t now;
} invitations_ctx;

static int add_invitation(const srv_invite_record *rec, void *arg)
{
    invitations_ctx *c = arg;
    json_t *item = json_pack("{s:I,s:s,s:I,s:I,s:s,s:b,s:b}", "id", (json_int_t)rec->id, "role",
                             att_role_name(rec->role), "issued_at", (json_int_t)rec->issued_at,
                             "expires_at", (json_int_t)rec->expires_at, "issued_by", rec->issued_by,
                             "revoked", rec->revoked_at != 0, "expired", rec->expires_at <= c->now);
    return !item || json_array_append_new(c->list, item) ? -1 : 0;
}

static json_t *invitations(srv_server *srv, const char *room_id, att_error *err)
{
    invitations_ctx c = {json_array(), srv_now_ms()};
    if (!c.list || srv_invites_list(srv->invites, room_id, add_invitation, &c, err) != 0) {
        if (!err->message[0])
            att_fail(err, ATT_ERR_INTERNAL, "cannot list invitations");
        json_decref(c.list);
        return NULL;
    }
    return c.list;
}

/* A new partner link for the room, recorded as issued by `issuer`. */
static json_t *partner_link(srv_server *srv, const char *room_id, att_role role, const char *issuer,
                            att_error *err)
{
    char url[SRV_URL_MAX];
    srv_link_options links = srv_config_links(srv->cfg);
    if (srv_admin_invite_url(srv->invites, &srv->key, &links, room_id, role, issuer, srv_now_ms(),
                             url, sizeof url, err) < 0)
        return NULL;
    return json_string(url);
}

/* 1 when the room exists and the account owns it, without loading it; else
 * 0 after answering 404 (someone else's room is as invisible as a missing
 * one) or 500. */
static int owns_room(struct lws *wsi, srv_server *srv, api_req *q, const srv_session_info *sess,
                     const char *room_id, int *failed)
{
    int64_t owner = 0;
    att_error err = {0};
    *failed = 0;
    int rc = srv_room_id_valid(room_id)
                 ? srv_accounts_get_owner_id(srv->api->accounts, room_id, &owner, &err)
                 : -ATT_ERR_NOT_FOUND;
    if (rc == 0 && owner == sess->account_id)
        return 1;
    if (rc == 0 || rc == -ATT_ERR_NOT_FOUND)
        *failed = respond_error(wsi, q, 404, "not_found", "no such room");
    else
        *failed = internal_error(wsi, q, &err);
    return 0;
}

/* The room if it exists and the account owns it; else NULL after
 * answering 404 (someone else's room is as invisible as a missing one) or
 * 500. */
/* 503 room_moved + Retry-After: the room is served by another node (or
 * its lease is changing hands): the proxy routes the retry by room, and it
 * lands on the holder, or here once the lease has moved. */
static int room_moved_error(struct lws *wsi, api_req *q)
{
    q->extra.retry_after_s = 1;
    return respond_error(wsi, q, 503, "room_moved",
                         "the room is served by another node right now; try again");
}

static srv_room *owned_room(struct lws *wsi, srv_server *srv, api_req *q,
                            const srv_session_info *sess, const char *room_id, int *failed)
{
    int64_t owner = 0;
    att_error err = {0};
    *failed = 0;
    int rc = srv_room_id_valid(room_id)
                 ? srv_accounts_get_owner_id(srv->api->accounts, room_id, &owner, &err)
                 : -ATT_ERR_NOT_FOUND;
    if (rc == 0 && owner == sess->account_id) {
        srv_room *r = srv_rooms_get(srv->rooms, room_id, &err);
        if (r)
            return r;
        rc = err.code == ATT_ERR_NOT_FOUND   ? -ATT_ERR_NOT_FOUND
             : err.code == ATT_ERR_ROOM_BUSY ? -ATT_ERR_ROOM_BUSY
                                             : -ATT_ERR_INTERNAL;
    } else if (rc == 0) {
        rc = -ATT_ERR_NOT_FOUND;
    }
    if (rc == -ATT_ERR_NOT_FOUND)
        *failed = respond_error(wsi, q, 404, "not_found", "no such room");
    else if (rc == -ATT_ERR_ROOM_BUSY)
        *failed = room_moved_error(wsi, q);
    else
        *failed = internal_error(wsi, q, &err);
    return NULL;
}

static int do_exercises(struct lws *wsi, srv_server *srv, api_req *q, const api_call *call)
{
    (void)call;
    json_t *list = json_array();
    size_t n = att_catalog_script_count(srv->catalog);
    for (size_t i = 0; list && i < n; i++) {
        const att_script *s = att_catalog_script_at(srv->catalog, i);
        json_t *summary = json_object_get(s->json, "summary");
        if (json_array_append_new(list, json_pack("{s:s,s:s,s:O}", "id", s->id, "title", s->title,
                                                  "summary", summary ? summary : json_null()))) {
            json_decref(list);
            list = NULL;
        }
    }
    return list ? respond_json(wsi, q, 200, list) : -1;
}

/* The list is JSON text spliced from each room's summary text: a room out
 * of memory is described from the store's summaries cache as stored (no
 * json_t per room, no load), so the list never folds every owned room. */
typedef struct {
    srv_server *srv;
    att_buf text; /* "[" then summaries joined by "," */
    att_error *err;
} list_ctx;

static int list_put(list_ctx *c, const char *s, size_t n)
{
    if (att_buf_reserve(&c->text, n) < 0)
        return -1;
    memcpy(c->text.data + c->text.len, s, n);
    c->text.len += n;
    c->text.data[c->text.len] = '\0';
    return 0;
}

static int add_owned_room(const char *room_id, void *arg)
{
    list_ctx *c = arg;
    size_t n = 0;
    char *s = srv_rooms_summary_text_by_id(c->srv->rooms, room_id, &n, c->err);
    if (!s) {
        /* One unreadable log must not hide the therapist's other rooms. */
        srv_log("error", "api_room_unavailable", "{s:s,s:s}", "room", room_id, "error",
                c->err->message);
        return 0;
    }
    int rc = (c->text.len > 1 && list_put(c, ",", 1) < 0) || list_put(c, s, n) < 0 ? -1 : 0;
    free(s);
    return rc;
}

/* The room list's text for an account: what GET /api/rooms answers and
 * the dashboard's event stream sends (room_events.h). A supervisor's
 * dashboard lists the rooms they were invited to observe. */
static char *room_list_text(void *arg, int64_t account_id, srv_account_kind kind, size_t *len,
                            att_error *err)
{
    srv_server *srv = arg;
    list_ctx c = {srv, {0}, err};
    int rc = list_put(&c, "[", 1);
    if (rc == 0 && kind == SRV_ACCOUNT_SUPERVISOR)
        rc = srv_invites_observed_rooms(srv->invites, account_id, add_owned_room, &c, err);
    else if (rc == 0)
        rc = srv_accounts_owned_rooms_id(srv->api->accounts, account_id, add_owned_room, &c, err);
    srv_rooms_flush_summaries(srv->rooms); /* the ones just folded, in one transaction */
    if (rc != 0 || list_put(&c, "]", 1) < 0) {
        att_buf_free(&c.text);
        if (!err->message[0])
            att_fail(err, ATT_ERR_INTERNAL, "cannot list rooms");
        return NULL;
    }
    *len = c.text.len;
    return c.text.data;
}

static int do_list_rooms(struct lws *wsi, srv_server *srv, api_req *q, const api_call *call)
{
    att_error err = {0};
    size_t len = 0;
    char *text = room_list_text(srv, call->sess.account_id, call->sess.kind, &len, &err);
    if (!text)
        return internal_error(wsi, q, &err);
    int rc = respond_text(wsi, q, 200, text, len);
    free(text);
    return rc;
}

typedef struct {
    srv_server *srv;
    json_t *list;
    att_error *err;
} observers_ctx;

static int add_observer_name(int64_t account_id, void *arg)
{
    observers_ctx *c = arg;
    srv_account acct;
    int found = srv_accounts_get_by_id(c->srv->api->accounts, account_id, &acct, c->err);
    if (found < 0)
        return -1;
    if (found == 0)
        return 0; /* a removed account observes nothing */
    return json_array_append_new(c->list, json_pack("{s:s}", "name", acct.name)) ? -1 : 0;
}

/* [{name}] of the supervisors invited to observe the room. */
static json_t *observer_names(srv_server *srv, const char *room_id, att_error *err)
{
    observers_ctx c = {srv, json_array(), err};
    if (!c.list || srv_invites_observers(srv->invites, room_id, add_observer_name, &c, err) != 0) {
        if (!err->message[0])
            att_fail(err, ATT_ERR_INTERNAL, "cannot list observers");
        json_decref(c.list);
        return NULL;
    }
    return c.list;
}

/* {room, invitations} (GET /api/rooms/{id}); with `issuer` (POST
 * /api/rooms) also {invites: {partner_a, partner_b}}, the partners' new
 * links, shown this once. The therapist's and observers' views open with
 * their login (POST /api/rooms/{id}/ticket), so no staff link is minted. */
static int room_detail(struct lws *wsi, srv_server *srv, api_req *q, srv_room *r, int status,
                       const char *issuer)
{
    att_error err = {0};
    json_t *summary = room_summary(srv, r, &err);
    json_t *links = NULL;
    if (summary && issuer) {
        json_t *a = partner_link(srv, srv_room_id(r), ATT_ROLE_PARTNER_A, issuer, &err);
        json_t *b = a ? partner_link(srv, srv_room_id(r), ATT_ROLE_PARTNER_B, issuer, &err) : NULL;
        links = b ? json_pack("{s:o,s:o}", "partner_a", a, "partner_b", b) : NULL;
        if (!b)
            json_decref(a);
    }
    json_t *list = summary && (links || !issuer) ? invitations(srv, srv_room_id(r), &err) : NULL;
    if (!list) {
        json_decref(summary);
        json_decref(links);
        return internal_error(wsi, q, &err);
    }
    json_t *observers = observer_names(srv, srv_room_id(r), &err);
    if (!observers) {
        json_decref(summary);
        json_decref(links);
        json_decref(list);
        return internal_error(wsi, q, &err);
    }
    json_t *out =
        json_pack("{s:o,s:o,s:o}", "room", summary, "invitations", list, "observers", observers);
    if (out && links)
        json_object_set_new(out, "invites", links);
    return respond_json(wsi, q, status, out);
}

/* POST /api/rooms/{id}/observers {name} (remove: .../observers/remove):
 * the room's therapist invites a supervisor's account to observe, or
 * takes the invitation back (their live view closes, 4401 bye revoked). */
static int do_observers(struct lws *wsi, srv_server *srv, api_req *q, const api_call *call,
                        int remove)
{
    srv_room *r = call->room;
    att_error err = {0};
    srv_observer_body body;
    const char *name =
        srv_api_body_observer(q->body, q->body_len, &body, &err) == 0 ? body.name : NULL;
    srv_account acct;
    int found = name && srv_account_name_valid(name)
                    ? srv_accounts_get(srv->api->accounts, name, &acct, &err)
                    : 0;
    json_decref(body.doc); /* name pointed into it */
    if (found < 0)
        return internal_error(wsi, q, &err);
    if (found != 1 || acct.kind != SRV_ACCOUNT_SUPERVISOR)
        return respond_error(wsi, q, 400, "bad_request",
                             "send {\"name\": NAME} with the name of a supervisor's account "
                             "(attune therapist add NAME --supervisor)");
    int rc = remove ? srv_invites_remove_observer(srv->invites, srv_room_id(r), acct.id, &err)
                    : srv_invites_add_observer(srv->invites, srv_room_id(r), acct.id, srv_now_ms(),
                                               &err);
    if (rc < 0)
        return internal_error(wsi, q, &err);
    if (remove)
        srv_links_close_observer(srv, srv_room_id(r), acct.id);
    if (rc > 0)
        audit_note(srv, &call->sess, remove ? SRV_AUDIT_OBSERVER_REMOVED : SRV_AUDIT_OBSERVER_ADDED,
                   srv_room_id(r), acct.name, 0);
    json_t *observers = observer_names(srv, srv_room_id(r), &err);
    if (!observers)
        return internal_error(wsi, q, &err);
    return respond_json(wsi, q, 200, json_pack("{s:o}", "observers", observers));
}

static int do_add_observer(struct lws *wsi, srv_server *srv, api_req *q, const api_call *call)
{
    return do_observers(wsi, srv, q, call, 0);
}

static int do_remove_observer(struct lws *wsi, srv_server *srv, api_req *q, const api_call *call)
{
    return do_observers(wsi, srv, q, call, 1);
}

/* POST /api/rooms/{id}/invites {role}: revokes every live link of the
 * role (their connections close 4401) and, for a partner, issues a new one,
 * shown this once. A staff role is only revoked: staff open with a ticket. */
static int do_reissue(struct lws *wsi, srv_server *srv, api_req *q, const api_call *call)
{
    srv_room *r = call->room;
    const srv_session_info *sess = &call->sess;
    att_error err = {0};
    att_role role;
    if (srv_api_body_reissue(q->body, q->body_len, &role, &err) < 0)
        return respond_error(wsi, q, 400, "bad_request",
                             "send {\"role\": \"partner_a\"|\"partner_b\"|\"therapist\"|"
                             "\"observer\"}");
    int revoked = srv_invites_revoke_role(srv->invites, srv_room_id(r), role, srv_now_ms(), &err);
    if (revoked < 0)
        return internal_error(wsi, q, &err);
    srv_links_close_revoked(srv); /* at once, not at the next sweep */
    json_t *url = att_role_is_partner(role)
                      ? partner_link(srv, srv_room_id(r), role, sess->account, &err)
                      : json_null();
    json_t *list = url ? invitations(srv, srv_room_id(r), &err) : NULL;
    if (!list) {
        json_decref(url);
        return internal_error(wsi, q, &err);
    }
    srv_log("info", "links_revoked", "{s:s,s:s,s:i,s:s}", "room", srv_room_id(r), "role",
            att_role_name(role), "revoked", revoked, "by", sess->account);
    audit_note(srv, sess, SRV_AUDIT_LINKS_REVOKED, srv_room_id(r), att_role_name(role), 0);
    if (att_role_is_partner(role))
        audit_note(srv, sess, SRV_AUDIT_LINK_ISSUED, srv_room_id(r), att_role_name(role), 0);
    return respond_json(wsi, q, 200,
                        json_pack("{s:s,s:i,s:o,s:o}", "role", att_role_name(role), "revoked",
                                  revoked, "url", url, "invitations", list));
}

/* POST /api/rooms/{id}/ticket: a single-use, short-lived ticket for the
 * live view (tickets.h), bound to this login session: the room's owner
 * gets the therapist's seat. */
static int do_ticket(struct lws *wsi, srv_server *srv, api_req *q, srv_room *r,
                     const srv_session_info *sess, att_role role)
{
    srv_ticket_grant grant = {
        .role = role, .login_session = sess->id, .account_id = sess->account_id};
    snprintf(grant.room, sizeof grant.room, "%s", srv_room_id(r));
    char ticket[SRV_TICKET_BYTES];
    att_error err = {0};
    if (srv_tickets_issue(srv->tickets, &grant, srv_now_ms(), ticket, &err) < 0)
        return internal_error(wsi, q, &err);
    return respond_json(wsi, q, 200,
                        json_pack("{s:s,s:s,s:s,s:i}", "ticket", ticket, "room", srv_room_id(r),
                                  "role", att_role_name(role), "expires_in_s",
                                  (int)(srv_tickets_ttl_ms(srv->tickets) / 1000)));
}

/* POST /api/rooms/{id}/ticket by a supervisor: an observer's ticket when
 * the room's therapist invited them; else 404 like any room not theirs. */
static int do_observer_ticket(struct lws *wsi, srv_server *srv, api_req *q,
                              const srv_session_info *sess, const char *room_id)
{
    att_error err = {0};
    int ok = srv_room_id_valid(room_id)
                 ? srv_invites_is_observer(srv->invites, room_id, sess->account_id, &err)
                 : 0;
    if (ok < 0)
        return internal_error(wsi, q, &err);
    srv_room *r = ok ? srv_rooms_get(srv->rooms, room_id, &err) : NULL;
    if (!r && ok && err.code == ATT_ERR_ROOM_BUSY)
        return room_moved_error(wsi, q);
    if (!r)
        return respond_error(wsi, q, 404, "not_found", "no such room");
    audit_note(srv, sess, SRV_AUDIT_OBSERVED, room_id, NULL, 1);
    return do_ticket(wsi, srv, q, r, sess, ATT_ROLE_OBSERVER);
}

/* POST /api/rooms/{id}/ticket: a supervisor's is an observer's; the room's
 * owner gets the therapist's seat. */
static int do_open_ticket(struct lws *wsi, srv_server *srv, api_req *q, const api_call *call)
{
    if (call->sess.kind == SRV_ACCOUNT_SUPERVISOR)
        return do_observer_ticket(wsi, srv, q, &call->sess, call->room_id);
    int failed = 0;
    srv_room *r = owned_room(wsi, srv, q, &call->sess, call->room_id, &failed);
    if (!r)
        return failed;
    audit_note(srv, &call->sess, SRV_AUDIT_OPENED, call->room_id, NULL, 1);
    return do_ticket(wsi, srv, q, r, &call->sess, ATT_ROLE_THERAPIST);
}

static int do_create_room(struct lws *wsi, srv_server *srv, api_req *q, const api_call *call)
{
    const srv_session_info *sess = &call->sess;
    const char *name = sess->account;
    srv_create_room_body body;
    att_error err = {0};
    /* The script (owned by the catalog) outlives the body the id came from. */
    const att_script *script = srv_api_body_create_room(q->body, q->body_len, &body, &err) == 0
                                   ? att_catalog_script(srv->catalog, body.exercise)
                                   : NULL;
    json_decref(body.doc);
    if (!script)
        return respond_error(wsi, q, 400, "bad_request",
                             "send {\"exercise\": ID} with an id from /api/exercises");
    char id[ATT_ROOM_ID_BYTES + 1];
    int rc = srv_admin_create_room(srv->store, srv->catalog, script->id, ATT_ROLE_PARTNER_A, "r-",
                                   id, &err);
    /* Created first, owned second: a failure in between leaves a room on no
     * dashboard (like `attune room create` without --owner), never a room
     * on the wrong one. */
    if (rc == 0)
        rc = srv_accounts_set_owner_id(srv->api->accounts, id, sess->account_id, &err);
    srv_room *r = rc == 0 ? srv_rooms_get(srv->rooms, id, &err) : NULL;
    if (!r)
        return internal_error(wsi, q, &err);
    srv_room_events_account_changed(srv->api->events, sess->account_id);
    srv_log("info", "room_created", "{s:s,s:s,s:s}", "room", id, "exercise", script->id, "owner",
            name);
    audit_note(srv, sess, SRV_AUDIT_CREATED, id, NULL, 0);
    return room_detail(wsi, srv, q, r, 201, name);
}

/* A query argument as a whole number in [min, max]: 1 (value set), 0
 * (absent: value untouched) or -1 (present but not such a number). */
static int query_int(struct lws *wsi, const char *name_eq, int64_t min, int64_t max, int64_t *value)
{
    char buf[64];
    const char *v = lws_get_urlarg_by_name(wsi, name_eq, buf, sizeof buf);
    if (!v)
        return 0;
    char *end = NULL;
    long long n = *v >= '0' && *v <= '9' ? strtoll(v, &end, 10) : -1;
    if (!end || *end || n < min || n > max)
        return -1;
    *value = n;
    return 1;
}

/* GET /api/rooms/{id}/log?after=SEQ&limit=N&upto=SEQ&states=each|none: one
 * page of the session log, built on the review worker (review.h); the
 * request waits in `reviewing` until WAIT_CANCELLED brings the page back.
 * The room is not loaded for it (a long log's fold would hold this thread):
 * a room in memory gives its committed seq and summary, any other the
 * store's last seq and cached summary, or the worker makes the summary. */
static int do_room_log(struct lws *wsi, srv_server *srv, api_req *q, const api_call *call)
{
    const char *room_id = call->room_id;
    att_error err = {0};
    srv_room *r = srv_rooms_find(srv->rooms, room_id);
    srv_store_room meta = {0};
    const att_script *script = r ? srv_room_script(r) : NULL;
    int64_t committed = r ? srv_room_committed(r)->seq : 0;
    if (!r && (srv_store_get_room(srv->store, room_id, &meta, &err) < 0 ||
               srv_store_last_seq(srv->store, room_id, &committed, &err) < 0))
        return err.code == ATT_ERR_NOT_FOUND
                   ? respond_error(wsi, q, 404, "not_found", "no such room")
                   : internal_error(wsi, q, &err);
    if (!r && !(script = att_catalog_script(srv->catalog, meta.exercise))) {
        att_fail(&err, ATT_ERR_INTERNAL, "room %s uses unknown exercise %s", room_id,
                 meta.exercise);
        return internal_error(wsi, q, &err);
    }
    int64_t after = 0, upto = committed, limit = SRV_REVIEW_DEFAULT_LIMIT;
    char states[16];
    const char *st = lws_get_urlarg_by_name(wsi, "states=", states, sizeof states);
    if (query_int(wsi, "after=", 0, INT64_MAX, &after) < 0 ||
        query_int(wsi, "upto=", 0, INT64_MAX, &upto) < 0 ||
        query_int(wsi, "limit=", 1, SRV_REVIEW_MAX_LIMIT, &limit) < 0 ||
        (st && strcmp(st, "each") != 0 && strcmp(st, "none") != 0))
        return respond_error(wsi, q, 400, "bad_request",
                             "after and upto are seqs, limit is 1 to 1000 events, states is "
                             "each or none");
    if (upto > committed)
        upto = committed; /* what is durable now; a live session goes on */
    if (after > upto)
        return respond_error(wsi, q, 400, "bad_request", "after is past the end of the log");
    srv_review_job *job = calloc(1, sizeof *job);
    if (!job)
        return -1;
    /* Reading the log is exporting it (the replay, the report): noted once
     * per reading, at its first page. */
    if (after == 0)
        audit_note(srv, &call->sess, SRV_AUDIT_EXPORTED, room_id, NULL, 1);
    /* The first page says what the session is; later pages only go on. */
    if (after == 0) {
        json_t *summary = NULL;
        if (r) {
            summary = room_summary(srv, r, &err);
        } else {
            char *cached = NULL;
            int rc = srv_store_get_summary(srv->store, room_id, &cached, &err);
            json_error_t jerr;
            summary = rc == 0 ? json_loads(cached, 0, &jerr) : NULL;
            free(cached);
            if (rc < 0 && rc != -ATT_ERR_NOT_FOUND) {
                srv_review_job_free(job);
                return internal_error(wsi, q, &err);
            }
            if (!json_is_object(summary)) { /* none current: the worker folds it */
                json_decref(summary);
                summary = NULL;
                job->summary_created_at = meta.created_at;
                job->want_summary = 1;
            }
        }
        json_t *head = summary || job->want_summary
                           ? json_pack("{s:O,s:O,s:O,s:O}", "exercise", script->json, "vocab",
                                       att_catalog_vocab_json(srv->catalog), "consent",
                                       att_catalog_consent_json(srv->catalog), "safety",
                                       att_catalog_safety_json(srv->catalog))
                           : NULL;
        if (head && summary && json_object_set_new(head, "room", summary)) {
            json_decref(head);
            head = NULL;
        }
        size_t len = 0;
        char *text = head ? att_json_dump(head, &len) : NULL;
        json_decref(head);
        if (!text || len < 2) {
            free(text);
            srv_review_job_free(job);
            if (!err.message[0])
                att_fail(&err, ATT_ERR_INTERNAL, "out of memory");
            return internal_error(wsi, q, &err);
        }
        memmove(text, text + 1, len - 2); /* the members, without the braces */
        text[len - 2] = '\0';
        job->head = text;
    }
    job->request_id = q->id;
    snprintf(job->room_id, sizeof job->room_id, "%s", room_id);
    job->script = script;
    job->after_seq = after;
    job->upto_seq = upto;
    job->limit = (int)limit;
    job->with_states = !st || strcmp(st, "each") == 0;
    if (srv_review_submit(srv->review, job, &err) < 0) {
        srv_review_job_free(job);
        q->extra.retry_after_s = 1;
        srv_log("info", "review_busy", "{s:s,s:s}", "room", room_id, "peer", q->peer);
        return respond_error(wsi, q, 503, "busy",
                             "the server is building other session logs; try again");
    }
    q->waiting = 1;
    lws_dll2_add_tail(&q->wait_link, &srv->api->reviewing);
    return 0;
}

/* WAIT_CANCELLED: answers the log requests whose page is built. */
static void on_review_done(srv_server *srv)
{
    srv_api *api = srv->api;
    srv_review_job *job = srv_review_take_done(srv->review);
    while (job) {
        srv_review_job *next = job->next;
        api_req *found = take_waiting(&api->reviewing, job->request_id);
        if (found) {
            int rc;
            if (job->result < 0) {
                rc = internal_error(found->wsi, found, &job->error);
            } else {
                /* The body was built with LWS_PRE headroom: it goes out as is. */
                srv_http_reply_take(found->wsi, &found->reply, 200, "application/json", job->body,
                                    job->body_len);
                job->body = NULL;
                found->answered = 1;
                rc = 0;
            }
            if (rc < 0)
                lws_set_timeout(found->wsi, PENDING_TIMEOUT_KILLED_BY_PARENT, LWS_TO_KILL_ASYNC);
        }
        srv_review_job_free(job);
        job = next;
    }
}

/* GET /api/rooms/events: the request becomes a stream (room_events.h). */
static int do_room_events(struct lws *wsi, srv_server *srv, api_req *q, const api_call *call)
{
    att_error err = {0};
    if (srv_room_events_open(srv->api->events, wsi, &call->sess, srv_mono_ms(), &q->stream, &err) <
        0)
        return internal_error(wsi, q, &err);
    q->answered = 1;
    return 0;
}

/* GET /api/crisis. Public: partners have no account, and the crisis page
 * must work for them. */
static int do_crisis(struct lws *wsi, srv_server *srv, api_req *q, const api_call *call)
{
    (void)call;
    return respond_text(wsi, q, 200, srv->api->crisis, srv->api->crisis_len);
}

static int do_me(struct lws *wsi, srv_server *srv, api_req *q, const api_call *call)
{
    return respond_json(wsi, q, 200, me_json(srv, &call->sess));
}

/* POST /api/activity: the therapist is there (its route renews the session). */
static int do_activity(struct lws *wsi, srv_server *srv, api_req *q, const api_call *call)
{
    (void)srv;
    (void)call;
    return respond_empty(wsi, q, 204);
}

static int do_room(struct lws *wsi, srv_server *srv, api_req *q, const api_call *call)
{
    audit_note(srv, &call->sess, SRV_AUDIT_OPENED, call->room_id, NULL, 1);
    return room_detail(wsi, srv, q, call->room, 200, NULL);
}

/* The supervisors invited to a room, by account id (their dashboards
 * change when it is erased). */
typedef struct {
    int64_t ids[32];
    size_t n;
} account_ids;

static int collect_account(int64_t account_id, void *arg)
{
    account_ids *a = arg;
    if (a->n < sizeof a->ids / sizeof a->ids[0])
        a->ids[a->n++] = account_id;
    return 0;
}

/* POST /api/rooms/{id}/erase {"confirm": ID}: the room's therapist erases
 * it for good (erase.h). First the live room goes (its members closed,
 * 4401 bye room_erased; freed from memory), then the store's key and
 * rows, invitations, observers and ownership, and the audit log says so.
 * A room with a commit still in flight answers 503 (Retry-After: 1); its
 * members are already gone then, so the retry finds it quiet. */
static int do_erase(struct lws *wsi, srv_server *srv, api_req *q, const api_call *call)
{
    const char *room_id = call->room_id;
    att_error err = {0};
    srv_erase_body body;
    int confirmed = srv_api_body_erase(q->body, q->body_len, &body, &err) == 0 &&
                    strcmp(body.confirm, room_id) == 0;
    json_decref(body.doc);
    if (!confirmed)
        return respond_error(wsi, q, 400, "bad_request",
                             "send {\"confirm\": ROOM_ID} with this room's id: erasing cannot be "
                             "undone");
    int rc = srv_rooms_erase(srv->rooms, room_id, &err);
    srv_ws_drain(srv); /* the closes go out now */
    if (rc == -ATT_ERR_ROOM_BUSY) {
        q->extra.retry_after_s = 1;
        return respond_error(wsi, q, 503, "busy", "the room is finishing a write; try again");
    }
    if (rc < 0)
        return internal_error(wsi, q, &err);
    account_ids observers = {{0}, 0};
    if (srv_invites_observers(srv->invites, room_id, collect_account, &observers, &err) < 0)
        return internal_error(wsi, q, &err);
    srv_erase_deps deps = {srv->store, srv->invites, srv->api->accounts, srv->api->audit};
    srv_erase_result done;
    rc = srv_erase_room(&deps, room_id, call->sess.account, call->sess.account_id, srv_now_ms(),
                        &done, &err);
    /* Whatever was done, the dashboards show it (a partial erase leaves the
     * room on its owner's, to be erased again). */
    srv_room_events_account_changed(srv->api->events, call->sess.account_id);
    for (size_t i = 0; i < observers.n; i++)
        srv_room_events_account_changed(srv->api->events, observers.ids[i]);
    if (rc == -ATT_ERR_NOT_FOUND)
        return respond_error(wsi, q, 404, "not_found", "no such room");
    if (rc < 0)
        return internal_error(wsi, q, &err);
    srv_links_close_revoked(srv); /* anyone left on a link of it */
    return respond_json(wsi, q, 200,
                        json_pack("{s:s,s:i,s:I}", "erased", room_id, "links_revoked",
                                  done.links_revoked, "audit_id", (json_int_t)done.audit_id));
}

/* GET /api/rooms/{id}/verify: whether the room's stored record is the one
 * that was written (store.h, srv_store_verify_room: every event's seal and
 * chain link, and the head's MAC). Runs here, on the service thread: one
 * read of the whole log (about a millisecond per thousand events), asked
 * for once by the report page. */
static int do_verify(struct lws *wsi, srv_server *srv, api_req *q, const api_call *call)
{
    att_error err = {0};
    srv_chain_report rep;
    memset(&rep, 0, sizeof rep);
    int rc = srv_store_verify_room(srv->store, call->room_id, &rep, &err);
    if (rc == -ATT_ERR_NOT_FOUND)
        return respond_error(wsi, q, 404, "not_found", "no such room");
    if (rc < 0)
        return internal_error(wsi, q, &err);
    if (rc == 1)
        srv_log("warn", "record_not_verified", "{s:s,s:I,s:s}", "room", call->room_id, "seq",
                (json_int_t)rep.bad_seq, "problem", rep.problem);
    json_t *head = rep.head_seq > 0 ? json_pack("{s:I,s:s}", "seq", (json_int_t)rep.head_seq,
                                                "hash", rep.head_hex)
                                    : json_null();
    json_t *out = json_pack("{s:b,s:I,s:o}", "verified", rc == 0, "events", (json_int_t)rep.events,
                            "head", head);
    if (out && rc == 1) {
        json_object_set_new(out, "problem", json_string(rep.problem));
        if (rep.bad_seq > 0)
            json_object_set_new(out, "bad_seq", json_integer(rep.bad_seq));
    }
    return respond_json(wsi, q, 200, out);
}

/* GET /api/audit?before=ID&limit=N: the caller's own audit entries, newest
 * first, a page at a time (next_before: the next page's before, null at
 * the end). Only what this account did: by account id, so a later account
 * of the same name sees nothing of an earlier one's. */
typedef struct {
    json_t *list;
    int64_t last_id;
} audit_page;

static int add_audit_row(const srv_audit_row *row, void *arg)
{
    audit_page *p = arg;
    p->last_id = row->id;
    json_t *item =
        json_pack("{s:I,s:I,s:s,s:s,s:s}", "id", (json_int_t)row->id, "at", (json_int_t)row->at,
                  "action", row->action, "room", row->room, "detail", row->detail);
    return !item || json_array_append_new(p->list, item) ? -1 : 0;
}

#define AUDIT_PAGE_DEFAULT 50
#define AUDIT_PAGE_MAX 200

static int query_int(struct lws *wsi, const char *name_eq, int64_t min, int64_t max,
                     int64_t *value);

static int do_audit(struct lws *wsi, srv_server *srv, api_req *q, const api_call *call)
{
    int64_t before = 0, limit = AUDIT_PAGE_DEFAULT;
    if (query_int(wsi, "before=", 1, INT64_MAX, &before) < 0 ||
        query_int(wsi, "limit=", 1, AUDIT_PAGE_MAX, &limit) < 0)
        return respond_error(wsi, q, 400, "bad_request",
                             "before is an entry id, limit is 1 to 200 entries");
    audit_page page = {json_array(), 0};
    if (!page.list)
        return -1;
    /* One more than asked for says whether there is a next page. */
    srv_audit_filter f = {.actor_id = call->sess.account_id,
                          .before_id = before,
                          .limit = (int)limit + 1,
                          .newest_first = 1};
    att_error err = {0};
    if (srv_audit_walk(srv->api->audit, &f, add_audit_row, &page, &err) != 0) {
        json_decref(page.list);
        if (!err.message[0])
            att_fail(&err, ATT_ERR_INTERNAL, "cannot list the audit log");
        return internal_error(wsi, q, &err);
    }
    json_t *next = json_null();
    if (json_array_size(page.list) > (size_t)limit) {
        json_array_remove(page.list, (size_t)limit);
        json_t *last = json_array_get(page.list, (size_t)limit - 1);
        next = json_integer(json_integer_value(json_object_get(last, "id")));
    }
    return respond_json(wsi, q, 200,
                        json_pack("{s:o,s:o}", "entries", page.list, "next_before", next));
}

static int no_endpoint(struct lws *wsi, srv_server *srv, api_req *q, const api_call *call)
{
    (void)srv;
    (void)call;
    return respond_error(wsi, q, 404, "not_found", "no such endpoint");
}

/* What a route needs before its handler runs; each includes the one before. */
typedef enum {
    ROUTE_PUBLIC, /* nothing */
    ROUTE_LOGIN,  /* a login session (else 401) */
    ROUTE_OWNER,  /* ... whose account owns room {id} (else 404), not loaded */
    ROUTE_ROOM,   /* ... and that room, loaded */
} route_access;

typedef struct {
    api_method method;
    /* "{id}" matches one path segment of 1 to ATT_ROOM_ID_BYTES bytes, a
     * final "*" any rest (even none); anything else itself. */
    const char *pattern;
    route_access access;
    /* The therapist's own action: it renews the session's idle logoff. What
     * the page reads in the background (GETs: summaries, logs, me) does
     * not, nor the live view's ticket, fetched again on every reconnect
     * (its commands count, through srv_sessions_activity). */
    int renews;
    int (*handler)(struct lws *wsi, srv_server *srv, api_req *q, const api_call *call);
} api_route;

/* protocol/HTTP.md's endpoints, read top to bottom: the first match wins. */
static const api_route routes[] = {
    {METHOD_POST, "/api/login", ROUTE_PUBLIC, 0, do_login},
    {METHOD_POST, "/api/logout", ROUTE_PUBLIC, 0, do_logout},
    {METHOD_GET, "/api/crisis", ROUTE_PUBLIC, 0, do_crisis},
    {METHOD_GET, "/api/me", ROUTE_LOGIN, 0, do_me},
    {METHOD_POST, "/api/activity", ROUTE_LOGIN, 1, do_activity},
    {METHOD_POST, "/api/password", ROUTE_LOGIN, 1, do_password},
    {METHOD_GET, "/api/exercises", ROUTE_LOGIN, 0, do_exercises},
    {METHOD_GET, "/api/audit", ROUTE_LOGIN, 0, do_audit},
    {METHOD_GET, "/api/rooms", ROUTE_LOGIN, 0, do_list_rooms},
    {METHOD_POST, "/api/rooms", ROUTE_LOGIN, 1, do_create_room},
    {METHOD_GET, "/api/rooms/events", ROUTE_LOGIN, 0, do_room_events},
    {METHOD_GET, "/api/rooms/{id}", ROUTE_ROOM, 0, do_room},
    {METHOD_GET, "/api/rooms/{id}/log", ROUTE_OWNER, 0, do_room_log},
    {METHOD_GET, "/api/rooms/{id}/verify", ROUTE_OWNER, 0, do_verify},
    {METHOD_POST, "/api/rooms/{id}/erase", ROUTE_OWNER, 1, do_erase},
    {METHOD_POST, "/api/rooms/{id}/invites", ROUTE_ROOM, 1, do_reissue},
    /* a supervisor's ticket is for a room they observe: do_open_ticket checks */
    {METHOD_POST, "/api/rooms/{id}/ticket", ROUTE_LOGIN, 0, do_open_ticket},
    {METHOD_POST, "/api/rooms/{id}/observers", ROUTE_ROOM, 1, do_add_observer},
    {METHOD_POST, "/api/rooms/{id}/observers/remove", ROUTE_ROOM, 1, do_remove_observer},
    /* Anything else under /api/rooms/ is no endpoint, said only after the
     * login; any other path is none at once. */
    {METHOD_GET, "/api/rooms/*", ROUTE_LOGIN, 0, no_endpoint},
    {METHOD_POST, "/api/rooms/*", ROUTE_LOGIN, 1, no_endpoint},
};

/* 1 when path matches pattern (api_route), with the {id} segment in id. */
static int route_matches(const char *pattern, const char *path, char id[ATT_ROOM_ID_BYTES + 1])
{
    while (*pattern) {
        if (strncmp(pattern, "{id}", 4) == 0) {
            size_t n = strcspn(path, "/");
            if (n == 0 || n > ATT_ROOM_ID_BYTES)
                return 0;
            memcpy(id, path, n);
            id[n] = '\0';
            pattern += 4;
            path += n;
        } else if (pattern[0] == '*' && pattern[1] == '\0') {
            return 1;
        } else if (*pattern++ != *path++) {
            return 0;
        }
    }
    return *path == '\0';
}

/* Routes a request: the first route that matches its method and path, what
 * that route needs (a login, the room's ownership, the room), then its
 * handler. */
static int dispatch(struct lws *wsi, srv_server *srv, api_req *q)
{
    const api_route *route = NULL;
    api_call call;
    memset(&call, 0, sizeof call);
    for (size_t i = 0; !route && i < sizeof routes / sizeof routes[0]; i++)
        if (routes[i].method == q->method &&
            route_matches(routes[i].pattern, q->path, call.room_id))
            route = &routes[i];
    if (!route)
        return respond_error(wsi, q, 404, "not_found", "no such endpoint");
    int failed = 0;
    if (route->access >= ROUTE_LOGIN &&
        !authenticate(wsi, srv, q, route->renews, &call.sess, &failed))
        return failed;
    if (route->access == ROUTE_OWNER && !owns_room(wsi, srv, q, &call.sess, call.room_id, &failed))
        return failed;
    if (route->access == ROUTE_ROOM &&
        !(call.room = owned_room(wsi, srv, q, &call.sess, call.room_id, &failed)))
        return failed;
    return route->handler(wsi, srv, q, &call);
}

/* A POST must say it is JSON and, when a browser sends an Origin, come from
 * an allowed one (HTML forms cannot send application/json; other sites'
 * scripts cannot forge Origin). Returns 1 when refused (answered 403). */
static int refuse_cross_site(struct lws *wsi, srv_server *srv, api_req *q, int *failed)
{
    char type[128];
    int n = header(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE, type, sizeof type);
    int json = n > 0 && strncasecmp(type, "application/json", 16) == 0 &&
               (type[16] == '\0' || type[16] == ';' || type[16] == ' ');
    const char *why = !json                                     ? "content type"
                      : !srv_http_origin_allowed(wsi, srv->cfg) ? "origin"
                                                                : NULL;
    if (!why)
        return 0;
    srv_log("info", "api_refused", "{s:s,s:s,s:s}", "path", q->path, "why", why, "peer", q->peer);
    q->extra.close_after = 1;
    *failed = respond_error(wsi, q, 403, "forbidden",
                            !json ? "send Content-Type: application/json"
                                  : "this origin may not use the API");
    return 1;
}

/* A sul, not in any wsi's callback, so the close may be synchronous. */
static void body_timed_out(lws_sorted_usec_list_t *sul)
{
    api_req *q = lws_container_of(sul, api_req, body_sul);
    srv_server *srv = lws_context_user(lws_get_context(q->wsi));
    srv->metrics.body_timeouts++;
    srv_log("info", "body_timeout", "{s:s,s:s,s:I}", "path", q->path, "peer", q->peer, "received",
            (json_int_t)q->body_len);
    lws_set_timeout(q->wsi, PENDING_TIMEOUT_HTTP_CONTENT, LWS_TO_KILL_SYNC);
}

static int on_http(struct lws *wsi, srv_server *srv, api_req *q)
{
    /* A kept-alive connection reuses q for its next request. */
    free(q->body);
    srv_http_reply_clear(&q->reply);
    if (q->waiting)
        lws_dll2_remove(&q->wait_link);
    lws_sul_cancel(&q->body_sul);
    memset(q, 0, sizeof *q);
    q->wsi = wsi;
    q->id = ++srv->api->next_request_id;
    srv_http_client_addr(wsi, srv->cfg, q->peer);
    int n;
    if ((n = header(wsi, WSI_TOKEN_GET_URI, q->path, sizeof q->path)) != 0)
        q->method = METHOD_GET;
    else if ((n = header(wsi, WSI_TOKEN_POST_URI, q->path, sizeof q->path)) != 0)
        q->method = METHOD_POST;
    if (n < 0) {
        q->extra.close_after = 1;
        return respond_error(wsi, q, 404, "not_found", "no such endpoint");
    }
    if (q->method == METHOD_OTHER) {
        q->extra.close_after = 1;
        return respond_error(wsi, q, 400, "bad_request", "use GET or POST");
    }
    if (q->method == METHOD_GET)
        return dispatch(wsi, srv, q);

    int failed = 0;
    if (refuse_cross_site(wsi, srv, q, &failed))
        return failed;
    char len_text[32];
    long long content_length = 0;
    if (header(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH, len_text, sizeof len_text) != 0) {
        char *end = NULL;
        content_length = strtoll(len_text, &end, 10);
        if (!end || *end || content_length < 0)
            content_length = SRV_API_MAX_BODY + 1;
    }
    if (content_length > SRV_API_MAX_BODY) {
        q->extra.close_after = 1;
        return respond_error(wsi, q, 413, "too_large", "the body is over 16 KiB");
    }
    if (content_length == 0)
        return dispatch(wsi, srv, q); /* lws delivers no body callbacks */
    /* The whole body within --body-timeout: lws' own content timeout
     * restarts with every piece, so a body dripped a byte at a time would
     * otherwise be held open for ever. */
    lws_sul_schedule(lws_get_context(wsi), 0, &q->body_sul, body_timed_out,
                     (lws_usec_t)srv->cfg->body_timeout_s * LWS_USEC_PER_SEC);
    return 0;
}

static int on_body(api_req *q, const void *in, size_t len)
{
    if (q->answered || q->body_too_large)
        return 0;
    if (q->body_len + len > SRV_API_MAX_BODY) {
        q->body_too_large = 1;
        free(q->body);
        q->body = NULL;
        q->body_len = 0;
        return 0;
    }
    char *grown = realloc(q->body, q->body_len + len + 1);
    if (!grown)
        return -1;
    q->body = grown;
    memcpy(q->body + q->body_len, in, len);
    q->body_len += len;
    return 0;
}

int srv_api_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                     size_t len)
{
    api_req *q = user;
    srv_server *srv = lws_context_user(lws_get_context(wsi));
    switch (reason) {
    case LWS_CALLBACK_HTTP:
        return q ? on_http(wsi, srv, q) : -1;
    case LWS_CALLBACK_HTTP_BODY:
        return q ? on_body(q, in, len) : -1;
    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        if (q)
            lws_sul_cancel(&q->body_sul);
        if (!q || q->answered)
            return 0;
        if (q->body_too_large)
            return respond_error(wsi, q, 413, "too_large", "the body is over 16 KiB");
        return dispatch(wsi, srv, q);
    case LWS_CALLBACK_HTTP_WRITEABLE:
        if (q && q->stream)
            return srv_room_events_writeable(srv->api->events, q->stream, srv_mono_ms());
        return q ? srv_http_reply_write(wsi, &q->reply, &q->extra) : 0;
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
        if (srv && srv->api)
            on_hasher_done(srv);
        if (srv && srv->api && srv->review)
            on_review_done(srv);
        return 0;
    case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
    case LWS_CALLBACK_CLOSED_HTTP:
        if (q) {
            lws_sul_cancel(&q->body_sul);
            if (q->waiting) {
                lws_dll2_remove(&q->wait_link);
                q->waiting = 0;
            }
            free(q->body);
            q->body = NULL;
            srv_http_reply_clear(&q->reply);
            srv_room_events_close(srv->api->events, q->stream);
            q->stream = NULL;
        }
        break;
    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}
