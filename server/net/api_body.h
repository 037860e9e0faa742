/* api_body.h - the JSON bodies of the /api POST requests (protocol/HTTP.md),
 * parsed from the bytes the client sent into what each endpoint needs. Only
 * the parsing lives here: what the values mean (does the account exist, is
 * the new password long enough, is the exercise in the catalog) stays with
 * the endpoint in api.c. Kept apart so that a fuzz target
 * (tests/fuzz/fuzz_api_body.c) can drive it without a server.
 *
 * Every body must be one JSON object (duplicate keys rejected); a member of
 * the wrong type counts as missing; members the endpoint does not know are
 * ignored.
 *
 * Ownership: each parse result struct owns its parsed document (`doc`); the
 * strings in it point into that document and live until the caller's
 * json_decref(result.doc). On failure doc is NULL and nothing is owned.
 *
 * Threads: pure functions of their arguments, callable from any thread (the
 * API calls them on the lws service thread). */
#ifndef SRV_API_BODY_H
#define SRV_API_BODY_H

#include <jansson.h>
#include <stddef.h>
#include "attune/types.h"

/* POST /api/login {"username", "password"}. */
typedef struct {
    json_t *doc;
    const char *username; /* NUL-terminated, any length: validity is the caller's */
    const char *password; /* password_len bytes; may hold NUL bytes */
    size_t password_len;
} srv_login_body;

/* POST /api/password {"current_password", "new_password"}. */
typedef struct {
    json_t *doc;
    const char *current_password; /* current_len bytes; may hold NUL bytes */
    size_t current_len;
    const char *new_password; /* new_len bytes; may hold NUL bytes */
    size_t new_len;
} srv_password_body;

/* POST /api/rooms/{id}/observers[/remove] {"name"}: a supervisor's account. */
typedef struct {
    json_t *doc;
    const char *name; /* NUL-terminated, any length: validity is the caller's */
} srv_observer_body;

/* POST /api/rooms/{id}/erase {"confirm"}: the room id typed again. */
typedef struct {
    json_t *doc;
    const char *confirm; /* NUL-terminated; the caller compares it with the room's id */
} srv_erase_body;

/* POST /api/rooms {"exercise"}: the id of the script the room runs. */
typedef struct {
    json_t *doc;
    const char *exercise; /* NUL-terminated; the caller looks it up */
} srv_create_room_body;

/* Each parses len bytes (need not be NUL-terminated; len 0 is an empty body)
 * into out. Returns 0, or a negative code with err set: bad_json when the
 * bytes are not one JSON object, invalid_input when a member is missing or
 * of the wrong type (or, for a reissue, not a role that has links). */
int srv_api_body_login(const char *bytes, size_t len, srv_login_body *out, att_error *err);
int srv_api_body_password(const char *bytes, size_t len, srv_password_body *out, att_error *err);
int srv_api_body_observer(const char *bytes, size_t len, srv_observer_body *out, att_error *err);
int srv_api_body_erase(const char *bytes, size_t len, srv_erase_body *out, att_error *err);
/* POST /api/rooms/{id}/invites {"role"}: the role whose links are reissued,
 * one of partner_a, partner_b, therapist, observer. Owns nothing. */
int srv_api_body_reissue(const char *bytes, size_t len, att_role *role, att_error *err);
int srv_api_body_create_room(const char *bytes, size_t len, srv_create_room_body *out,
                             att_error *err);

#endif
