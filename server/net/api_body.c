/* api_body.c - the /api request bodies (see api_body.h). */
#include "api_body.h"

#include "attune/names.h"

/* The body as one JSON object, or bad_json. An empty body is not parsed:
 * jansson would only say so less plainly. */
static int parse_object(const char *bytes, size_t len, json_t **doc, att_error *err)
{
    *doc = NULL;
    if (len == 0)
        return att_fail(err, ATT_ERR_BAD_JSON, "the body is empty");
    json_error_t jerr;
    json_t *j = json_loadb(bytes, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!j)
        /* Not jerr.text: it quotes the body, which may be a password. */
        return att_fail(err, ATT_ERR_BAD_JSON, "the body is not JSON (at byte %d)", jerr.position);
    if (!json_is_object(j)) {
        json_decref(j);
        return att_fail(err, ATT_ERR_BAD_JSON, "the body is not a JSON object");
    }
    *doc = j;
    return 0;
}

/* The string member `key` of obj (its bytes and length, which counts any
 * NUL bytes a \u0000 put in it), or invalid_input when it is missing or not
 * a string. */
static int string_member(json_t *obj, const char *key, const char **text, size_t *len,
                         att_error *err)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_string(v))
        return att_fail(err, ATT_ERR_INVALID_INPUT, "\"%s\" is missing or not a string", key);
    *text = json_string_value(v);
    if (len)
        *len = json_string_length(v);
    return 0;
}

/* Drops the half-filled document of a failed parse, so that on failure the
 * caller owns nothing. */
static int fail_parse(json_t **doc, int rc)
{
    json_decref(*doc);
    *doc = NULL;
    return rc;
}

int srv_api_body_login(const char *bytes, size_t len, srv_login_body *out, att_error *err)
{
    *out = (srv_login_body){0};
    int rc;
    if ((rc = parse_object(bytes, len, &out->doc, err)))
        return rc;
    if ((rc = string_member(out->doc, "username", &out->username, NULL, err)) ||
        (rc = string_member(out->doc, "password", &out->password, &out->password_len, err)))
        return fail_parse(&out->doc, rc);
    return 0;
}

int srv_api_body_password(const char *bytes, size_t len, srv_password_body *out, att_error *err)
{
    *out = (srv_password_body){0};
    int rc;
    if ((rc = parse_object(bytes, len, &out->doc, err)))
        return rc;
    if ((rc = string_member(out->doc, "current_password", &out->current_password, &out->current_len,
                            err)) ||
        (rc = string_member(out->doc, "new_password", &out->new_password, &out->new_len, err)))
        return fail_parse(&out->doc, rc);
    return 0;
}

int srv_api_body_observer(const char *bytes, size_t len, srv_observer_body *out, att_error *err)
{
    *out = (srv_observer_body){0};
    int rc;
    if ((rc = parse_object(bytes, len, &out->doc, err)))
        return rc;
    if ((rc = string_member(out->doc, "name", &out->name, NULL, err)))
        return fail_parse(&out->doc, rc);
    return 0;
}

int srv_api_body_erase(const char *bytes, size_t len, srv_erase_body *out, att_error *err)
{
    *out = (srv_erase_body){0};
    int rc;
    if ((rc = parse_object(bytes, len, &out->doc, err)))
        return rc;
    if ((rc = string_member(out->doc, "confirm", &out->confirm, NULL, err)))
        return fail_parse(&out->doc, rc);
    return 0;
}

int srv_api_body_reissue(const char *bytes, size_t len, att_role *role, att_error *err)
{
    *role = ATT_ROLE_NONE;
    json_t *doc;
    const char *name = NULL;
    int rc;
    if ((rc = parse_object(bytes, len, &doc, err)))
        return rc;
    if ((rc = string_member(doc, "role", &name, NULL, err)))
        return fail_parse(&doc, rc);
    att_role named = att_role_from_name(name);
    json_decref(doc); /* name pointed into it */
    /* Every role that is given links: the partners' invitations, and the
     * staff's (revoked only; staff open with a ticket). */
    if (!att_role_is_partner(named) && named != ATT_ROLE_THERAPIST && named != ATT_ROLE_OBSERVER)
        return att_fail(err, ATT_ERR_INVALID_INPUT, "\"role\" is not a role with links");
    *role = named;
    return 0;
}

int srv_api_body_create_room(const char *bytes, size_t len, srv_create_room_body *out,
                             att_error *err)
{
    *out = (srv_create_room_body){0};
    int rc;
    if ((rc = parse_object(bytes, len, &out->doc, err)))
        return rc;
    if ((rc = string_member(out->doc, "exercise", &out->exercise, NULL, err)))
        return fail_parse(&out->doc, rc);
    return 0;
}
