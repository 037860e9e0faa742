/* admin.c - room creation, invitations, the demo room and --verify (see
 * admin.h). */
#include "admin.h"

#include <stdlib.h>
#include <string.h>
#include "attune/msg.h"
#include "attune/room.h"
#include "attune/names.h"
#include "attune/state.h"
#include "b64url.h"
#include "clock.h"
#include "random.h"
#include "room_id.h"
#include "log.h"
#include "log_fold.h"
#include "summary.h"

/* A new room's summary goes into the store's cache with it, so the server's
 * start-up walk (rooms.c, srv_rooms_warm) never has to fold a room only to
 * describe it (6,334 fresh rooms kept the walk folding, and writing the
 * cache, on the service thread for a minute after start). A failure only
 * costs that later fold, so it is logged, not returned. */
static void cache_new_summary(srv_store *store, const att_room *room, const att_script *script,
                              const char *id, int64_t now)
{
    att_error err = {0};
    json_t *summary = srv_summary_json(room, script, id, now, &err);
    char *text = summary ? att_json_dump(summary, NULL) : NULL;
    json_decref(summary);
    srv_store_summary item = {.room_id = id, .last_seq = room->seq, .summary = text};
    if (!text || srv_store_put_summaries(store, &item, 1, &err) < 0)
        srv_log("warn", "summary_not_cached", "{s:s,s:s}", "room", id, "error",
                text ? err.message : "cannot build the summary");
    free(text);
}

int srv_admin_create_room_as(srv_store *store, const att_catalog *cat, const char *exercise,
                             att_role first_speaker, const char *id, int64_t now, att_error *err)
{
    const att_script *script = att_catalog_script(cat, exercise);
    if (!script)
        return att_fail(err, ATT_ERR_NOT_FOUND, "no exercise '%s'", exercise);
    if (!srv_room_id_valid(id))
        return att_fail(err, ATT_ERR_BAD_MESSAGE,
                        "a room id is 1..64 characters of A-Z a-z 0-9 - _");
    att_room *room = malloc(sizeof *room);
    if (!room)
        return att_fail(err, ATT_ERR_INTERNAL, "out of memory");
    int rc = att_room_init(room, cat, script, id, NULL, err);
    char *payload = NULL;
    size_t len = 0;
    if (rc == 0) {
        att_event ev;
        att_room_created_event(room, now, first_speaker, &ev);
        /* Fold it as the server will on load: a room nobody can replay must
         * not exist. */
        rc = att_room_apply(room, &ev, err);
        json_t *obj = rc == 0 ? att_event_to_json(&ev, script) : NULL;
        payload = obj ? att_json_dump(obj, &len) : NULL;
        json_decref(obj);
        if (rc == 0 && !payload)
            rc = att_fail(err, ATT_ERR_INTERNAL, "cannot encode room_created");
    }
    if (rc == 0) {
        srv_store_room meta = {.created_at = now};
        snprintf(meta.id, sizeof meta.id, "%s", id);
        snprintf(meta.exercise, sizeof meta.exercise, "%s", script->id);
        rc = srv_store_create_room(store, &meta, payload, len, err);
    }
    if (rc == 0)
        cache_new_summary(store, room, script, id, now);
    free(payload);
    free(room);
    return rc;
}

int srv_admin_create_room(srv_store *store, const att_catalog *cat, const char *exercise,
                          att_role first_speaker, const char *id_prefix, char *id_out,
                          att_error *err)
{
    unsigned char rnd[12];
    char rnd_text[20];
    if (srv_random_bytes(rnd, sizeof rnd, err) < 0)
        return -ATT_ERR_INTERNAL;
    srv_b64url_encode(rnd, sizeof rnd, rnd_text, sizeof rnd_text);
    char id[ATT_ROOM_ID_BYTES + 1];
    snprintf(id, sizeof id, "%s%s", id_prefix ? id_prefix : "", rnd_text);
    int rc = srv_admin_create_room_as(store, cat, exercise, first_speaker, id, srv_now_ms(), err);
    if (rc == 0)
        memcpy(id_out, id, strlen(id) + 1);
    return rc;
}

void srv_admin_base_url(const srv_link_options *links, char *out, size_t size)
{
    if (links->public_url && links->public_url[0]) {
        snprintf(out, size, "%s", links->public_url);
        size_t n = strlen(out);
        if (n && out[n - 1] == '/')
            out[n - 1] = '\0';
        return;
    }
    const char *host = links->host ? links->host : "";
    if (strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0 || !host[0])
        host = "localhost";
    if (strchr(host, ':'))
        snprintf(out, size, "http://[%s]:%d", host, links->port);
    else
        snprintf(out, size, "http://%s:%d", host, links->port);
}

/* The room rides in the query, where a proxy routes by it (the room id is
 * no secret: /api paths carry it too); the token in the fragment. */
static int url_for(const srv_link_options *links, const char *room, const char *token, char *out,
                   size_t size, att_error *err)
{
    char base[SRV_URL_MAX];
    srv_admin_base_url(links, base, sizeof base);
    if ((size_t)snprintf(out, size, "%s/?room=%s#token=%s", base, room, token) >= size)
        return att_fail(err, ATT_ERR_INTERNAL, "invitation URL too long");
    return 0;
}

int srv_admin_invite_url(srv_invites *inv, const srv_token_key *key, const srv_link_options *links,
                         const char *room, att_role role, const char *issued_by, int64_t now_ms,
                         char *out, size_t size, att_error *err)
{
    char token[SRV_TOKEN_MAX];
    int rc = srv_invites_issue(inv, key, room, role, links->token_ttl_s, issued_by, now_ms, token,
                               sizeof token, NULL, err);
    if (rc < 0)
        return rc;
    return url_for(links, room, token, out, size, err);
}

static void invite_line(att_role role, const char *url, char out[SRV_INVITE_LINE_MAX])
{
    snprintf(out, SRV_INVITE_LINE_MAX, "invite %s %s", att_role_name(role), url);
}

int srv_admin_invite_lines(srv_invites *inv, const srv_token_key *key,
                           const srv_link_options *links, const char *room, const att_role *roles,
                           int n, const char *issued_by, int64_t now_ms,
                           char lines[][SRV_INVITE_LINE_MAX], att_error *err)
{
    for (int i = 0; i < n; i++) {
        char url[SRV_URL_MAX];
        int rc = srv_admin_invite_url(inv, key, links, room, roles[i], issued_by, now_ms, url,
                                      sizeof url, err);
        if (rc < 0)
            return rc;
        invite_line(roles[i], url, lines[i]);
    }
    return 0;
}

int srv_admin_demo(srv_store *store, srv_invites *inv, const att_catalog *cat,
                   const srv_token_key *key, const srv_link_options *links, const char *exercise,
                   char lines[3][SRV_INVITE_LINE_MAX], att_error *err)
{
    char room_id[ATT_ROOM_ID_BYTES + 1];
    int rc = srv_store_get_setting(store, "demo.room", room_id, sizeof room_id, err);
    srv_store_room meta;
    if (rc == 0 && srv_store_get_room(store, room_id, &meta, err) < 0)
        rc = -ATT_ERR_NOT_FOUND;
    if (rc == -ATT_ERR_NOT_FOUND) {
        rc = srv_admin_create_room(store, cat, exercise, ATT_ROLE_PARTNER_A, "demo-", room_id, err);
        if (rc == 0)
            rc = srv_store_set_setting(store, "demo.room", room_id, err);
    }
    if (rc < 0)
        return rc;
    static const att_role roles[3] = {ATT_ROLE_PARTNER_A, ATT_ROLE_PARTNER_B, ATT_ROLE_THERAPIST};
    int64_t now = srv_now_ms();
    for (int i = 0; i < 3; i++) {
        char setting[64], token[SRV_TOKEN_MAX];
        snprintf(setting, sizeof setting, "demo.token.%s", att_role_name(roles[i]));
        srv_token_claims claims;
        int64_t record_id = 0;
        att_error ignored = {0};
        /* A token from before invitation records has none and fails here,
         * so an old data directory's demo gets fresh, recorded links. */
        int have = srv_store_get_setting(store, setting, token, sizeof token, &ignored) == 0 &&
                   srv_invites_verify(inv, key, token, now + 3600 * 1000, &claims, &record_id,
                                      &ignored) == 0 &&
                   strcmp(claims.room, room_id) == 0 && claims.role == roles[i];
        if (!have) {
            if ((rc = srv_invites_issue(inv, key, room_id, roles[i], links->token_ttl_s,
                                        SRV_INVITE_OPERATOR, now, token, sizeof token, NULL, err)) <
                    0 ||
                (rc = srv_store_set_setting(store, setting, token, err)) < 0)
                return rc;
        }
        char url[SRV_URL_MAX];
        if ((rc = url_for(links, room_id, token, url, sizeof url, err)) < 0)
            return rc;
        invite_line(roles[i], url, lines[i]);
    }
    return 0;
}

typedef struct {
    srv_store *store;
    const att_catalog *cat;
    const att_room_config *options;
    FILE *out;
    int failures;
    att_room *room;
} verify_ctx;

static int verify_one(const srv_store_room *meta, void *arg)
{
    verify_ctx *v = arg;
    att_error err = {0};
    char hash[65] = "";
    json_t *line = json_object();
    json_object_set_new(line, "room", json_string(meta->id));
    json_object_set_new(line, "exercise", json_string(meta->exercise));
    if (srv_log_fold_room(v->store, v->cat, v->options, meta->id, NULL, v->room, NULL, &err) < 0 ||
        att_state_hash(v->room, hash, &err) < 0) {
        v->failures++;
        json_object_set_new(line, "error", json_string(err.message));
    } else {
        json_object_set_new(line, "seq", json_integer(v->room->seq));
        json_object_set_new(line, "hash", json_string(hash));
        json_object_set_new(line, "state", srv_therapist_state_json(v->room));
    }
    char *text = att_json_dump(line, NULL);
    json_decref(line);
    if (text) {
        fprintf(v->out, "%s\n", text);
        free(text);
    }
    return 0;
}

int srv_admin_verify(srv_store *store, const att_catalog *cat, const att_room_config *options,
                     FILE *out, att_error *err)
{
    verify_ctx v = {store, cat, options, out, 0, malloc(sizeof(att_room))};
    if (!v.room)
        return att_fail(err, ATT_ERR_INTERNAL, "out of memory");
    int rc = srv_store_list_rooms(store, verify_one, &v, err);
    free(v.room);
    fflush(out);
    if (rc < 0)
        return rc;
    if (v.failures)
        return att_fail(err, ATT_ERR_INTERNAL, "%d room(s) failed to fold", v.failures);
    return 0;
}
