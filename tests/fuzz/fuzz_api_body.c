/* fuzz_api_body.c - libFuzzer target for the /api request bodies
 * (server/net/api_body.h). Every input goes to each endpoint's parser (the
 * bytes are not NUL-terminated, so ASan sees a read past the end). Each must
 * not crash or leak; on failure it owns nothing and says why with bad_json
 * or invalid_input; on success its strings are the members' (lengths that
 * count NUL bytes from \u0000), and it succeeds exactly when the body is
 * one JSON object, without duplicate keys, whose members have the types
 * protocol/HTTP.md gives them (checked against jansson read directly). */
#include "api_body.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attune/names.h"

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_api_body: %s\n", what);
    abort();
}

/* The member `key` of the reference parse when it is a string, else NULL. */
static json_t *string_of(json_t *ref, const char *key)
{
    json_t *v = ref ? json_object_get(ref, key) : NULL;
    return json_is_string(v) ? v : NULL;
}

static void check_failure(int rc, const att_error *err, const void *doc)
{
    if (rc >= 0)
        fail("a parser returned a non-negative code for a failure");
    if (doc)
        fail("a failed parse still owns a document");
    if (err->code != ATT_ERR_BAD_JSON && err->code != ATT_ERR_INVALID_INPUT)
        fail("a failed parse gave another code than bad_json or invalid_input");
    if (!err->message[0])
        fail("a failed parse did not say why");
}

/* s (len bytes) is the reference string's value, NUL bytes and all. */
static void check_same(const char *s, size_t len, json_t *v)
{
    if (!s || len != json_string_length(v) || memcmp(s, json_string_value(v), len) != 0 ||
        s[len] != 0)
        fail("a parsed member differs from the body's");
}

/* s is the reference string as C reads it (up to a NUL from \u0000). */
static void check_same_text(const char *s, json_t *v)
{
    if (!s || strcmp(s, json_string_value(v)) != 0)
        fail("a parsed member differs from the body's");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *bytes = malloc(size ? size : 1);
    if (!bytes)
        abort();
    memcpy(bytes, data, size);
    /* The reference: what the body means, read with jansson directly. */
    json_t *ref = size ? json_loadb(bytes, size, JSON_REJECT_DUPLICATES, NULL) : NULL;
    if (ref && !json_is_object(ref)) {
        json_decref(ref);
        ref = NULL;
    }
    att_error err;
    int rc;

    srv_login_body login;
    memset(&err, 0, sizeof err);
    json_t *user = string_of(ref, "username"), *pw = string_of(ref, "password");
    rc = srv_api_body_login(bytes, size, &login, &err);
    if ((rc == 0) != (user && pw))
        fail("login: accepted or refused against the body");
    if (rc == 0) {
        check_same_text(login.username, user);
        check_same(login.password, login.password_len, pw);
        json_decref(login.doc);
    } else {
        check_failure(rc, &err, login.doc);
    }

    srv_password_body pass;
    memset(&err, 0, sizeof err);
    json_t *cur = string_of(ref, "current_password"), *neu = string_of(ref, "new_password");
    rc = srv_api_body_password(bytes, size, &pass, &err);
    if ((rc == 0) != (cur && neu))
        fail("password: accepted or refused against the body");
    if (rc == 0) {
        check_same(pass.current_password, pass.current_len, cur);
        check_same(pass.new_password, pass.new_len, neu);
        json_decref(pass.doc);
    } else {
        check_failure(rc, &err, pass.doc);
    }

    srv_observer_body obs;
    memset(&err, 0, sizeof err);
    json_t *name = string_of(ref, "name");
    rc = srv_api_body_observer(bytes, size, &obs, &err);
    if ((rc == 0) != (name != NULL))
        fail("observer: accepted or refused against the body");
    if (rc == 0) {
        check_same_text(obs.name, name);
        json_decref(obs.doc);
    } else {
        check_failure(rc, &err, obs.doc);
    }

    att_role role = ATT_ROLE_SYSTEM;
    memset(&err, 0, sizeof err);
    json_t *role_name = string_of(ref, "role");
    att_role want = role_name ? att_role_from_name(json_string_value(role_name)) : ATT_ROLE_NONE;
    int has_links = want == ATT_ROLE_PARTNER_A || want == ATT_ROLE_PARTNER_B ||
                    want == ATT_ROLE_THERAPIST || want == ATT_ROLE_OBSERVER;
    rc = srv_api_body_reissue(bytes, size, &role, &err);
    if ((rc == 0) != has_links)
        fail("reissue: accepted or refused against the body");
    if (rc == 0 ? role != want : role != ATT_ROLE_NONE)
        fail("reissue: another role than the body's");
    if (rc != 0)
        check_failure(rc, &err, NULL);

    srv_create_room_body room;
    memset(&err, 0, sizeof err);
    json_t *exercise = string_of(ref, "exercise");
    rc = srv_api_body_create_room(bytes, size, &room, &err);
    if ((rc == 0) != (exercise != NULL))
        fail("create room: accepted or refused against the body");
    if (rc == 0) {
        check_same_text(room.exercise, exercise);
        json_decref(room.doc);
    } else {
        check_failure(rc, &err, room.doc);
    }

    srv_erase_body erase;
    memset(&err, 0, sizeof err);
    json_t *confirm = string_of(ref, "confirm");
    rc = srv_api_body_erase(bytes, size, &erase, &err);
    if ((rc == 0) != (confirm != NULL))
        fail("erase: accepted or refused against the body");
    if (rc == 0) {
        check_same_text(erase.confirm, confirm);
        json_decref(erase.doc);
    } else {
        check_failure(rc, &err, erase.doc);
    }

    json_decref(ref);
    free(bytes);
    return 0;
}
