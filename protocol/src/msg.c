/* msg.c - the client message codec: decodes one frame and validates it
 * exactly as protocol/schema/client/ *.schema.json do (plus the byte-length
 * rules a schema cannot express), and builds the server envelopes (ack,
 * error, event, bye). Pure: no state outside its arguments. */
#include "attune/msg.h"
#include "attune/names.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* Marker and strategy ids on the wire; the room checks them against the catalog. */
#define CATALOG_ID_MAX_BYTES 48
#define STEP_ID_MAX_BYTES 64

/* --- per-type member table (mirrors the client schemas) ----------------- */

typedef enum {
    FIELD_TOKEN,        /* string 1..1024 bytes -> token */
    FIELD_TICKET,       /* string 1..1024 bytes -> ticket */
    FIELD_RESUME_FROM,  /* integer >= 0 -> resume_from */
    FIELD_TRUE,         /* the literal true */
    FIELD_STEP_ID,      /* string 1..64 bytes -> step */
    FIELD_INPUT,        /* object, <= 16 members, strings <= 4000 bytes -> input */
    FIELD_CONTROL,      /* control action name -> action */
    FIELD_TEXT,         /* string 1..4000 bytes -> text */
    FIELD_RUPTURE_ID,   /* integer 1..INT_MAX -> rupture_id */
    FIELD_ATTEMPT_ID,   /* integer 1..INT_MAX -> attempt_id */
    FIELD_SUSPICION_ID, /* integer 1..INT_MAX -> suspicion_id */
    FIELD_REPLY,        /* need_a_moment | acknowledged -> reply */
    FIELD_TO,           /* therapist | partner role -> to */
    FIELD_ANSWERS,      /* object of 1..16 string members (1..64 bytes) -> answers */
    FIELD_MARK_KIND,    /* withdrawal | confrontation -> kind */
    FIELD_MARKER,       /* string 1..48 bytes -> marker */
    FIELD_STRATEGY,     /* string 1..48 bytes -> strategy */
    FIELD_WHO,          /* partner role -> who */
    FIELD_WITH,         /* partner or therapist role -> with */
} field_kind;

typedef struct {
    const char *name;
    field_kind kind;
    int required;
} field_spec;

#define MAX_FIELDS 5

typedef struct {
    int n;
    field_spec fields[MAX_FIELDS];
} type_spec;

static const type_spec type_specs[ATT_MSG__COUNT] = {
    /* token or ticket, exactly one (checked after the members) */
    [ATT_MSG_HELLO] = {3,
                       {{"token", FIELD_TOKEN, 0},
                        {"ticket", FIELD_TICKET, 0},
                        {"resume_from", FIELD_RESUME_FROM, 0}}},
    [ATT_MSG_PING] = {0, {{0}}},
    [ATT_MSG_CONSENT] = {1, {{"accept", FIELD_TRUE, 1}}},
    [ATT_MSG_TURN] = {2, {{"step", FIELD_STEP_ID, 1}, {"input", FIELD_INPUT, 1}}},
    [ATT_MSG_CONTROL] = {1, {{"action", FIELD_CONTROL, 1}}},
    [ATT_MSG_PAUSE_REQUEST] = {1, {{"note", FIELD_TEXT, 0}}},
    [ATT_MSG_REPAIR_ATTEMPT] = {2, {{"text", FIELD_TEXT, 0}, {"rupture_id", FIELD_RUPTURE_ID, 0}}},
    [ATT_MSG_REPAIR_ACCEPT] = {1, {{"attempt_id", FIELD_ATTEMPT_ID, 1}}},
    [ATT_MSG_RUPTURE_MARK] = {5,
                              {{"kind", FIELD_MARK_KIND, 1},
                               {"marker", FIELD_MARKER, 1},
                               {"who", FIELD_WHO, 1},
                               {"with", FIELD_WITH, 1},
                               {"note", FIELD_TEXT, 0}}},
    [ATT_MSG_RUPTURE_REPAIR] = {3,
                                {{"rupture_id", FIELD_RUPTURE_ID, 1},
                                 {"strategy", FIELD_STRATEGY, 1},
                                 {"note", FIELD_TEXT, 0}}},
    [ATT_MSG_RUPTURE_CONFIRM] = {2,
                                 {{"suspicion_id", FIELD_SUSPICION_ID, 1},
                                  {"note", FIELD_TEXT, 0}}},
    [ATT_MSG_RUPTURE_DISMISS] = {2,
                                 {{"suspicion_id", FIELD_SUSPICION_ID, 1},
                                  {"note", FIELD_TEXT, 0}}},
    [ATT_MSG_NOTE] = {3,
                      {{"text", FIELD_TEXT, 1},
                       {"rupture_id", FIELD_RUPTURE_ID, 0},
                       {"suspicion_id", FIELD_SUSPICION_ID, 0}}},
    [ATT_MSG_TYPING] = {0, {{0}}},
    [ATT_MSG_CONSENT_WITHDRAW] = {0, {{0}}},
    [ATT_MSG_CHECKIN] = {2, {{"answers", FIELD_ANSWERS, 1}, {"note", FIELD_TEXT, 0}}},
    [ATT_MSG_REPAIR_REPLY] = {2, {{"attempt_id", FIELD_ATTEMPT_ID, 1}, {"reply", FIELD_REPLY, 1}}},
    [ATT_MSG_PRIVATE_MESSAGE] = {2, {{"text", FIELD_TEXT, 1}, {"to", FIELD_TO, 0}}},
    [ATT_MSG_ASK_THERAPIST] = {0, {{0}}},
};

int att_msg_takes_command_id(att_msg_type type)
{
    return type != ATT_MSG_HELLO && type != ATT_MSG_PING && type != ATT_MSG_TYPING &&
           (int)type >= 0 && (int)type < (int)ATT_MSG__COUNT;
}

static const field_spec *find_field(const type_spec *spec, const char *name)
{
    for (int i = 0; i < spec->n; i++)
        if (strcmp(spec->fields[i].name, name) == 0)
            return &spec->fields[i];
    return NULL;
}

/* --- checks --------------------------------------------------------------- */

static int string_bytes_in(const json_t *v, size_t min, size_t max)
{
    if (!json_is_string(v))
        return 0;
    size_t n = json_string_length(v);
    return n >= min && n <= max;
}

static int integer_in(const json_t *v, int64_t min, int64_t max)
{
    if (!json_is_integer(v))
        return 0;
    json_int_t n = json_integer_value(v);
    return n >= min && n <= max;
}

/* 1 when v, a value at nesting level `level` (root object = 1), has no
 * container deeper than ATT_MAX_DEPTH. Recursion is bounded by jansson's own
 * parser depth limit. */
static int depth_ok(const json_t *v, int level)
{
    if (!json_is_object(v) && !json_is_array(v))
        return 1;
    if (level > ATT_MAX_DEPTH)
        return 0;
    if (json_is_object(v)) {
        const char *key;
        json_t *child;
        json_object_foreach((json_t *)v, key, child)
        {
            if (!depth_ok(child, level + 1))
                return 0;
        }
    } else {
        size_t i;
        json_t *child;
        json_array_foreach(v, i, child)
        {
            if (!depth_ok(child, level + 1))
                return 0;
        }
    }
    return 1;
}

/* 1 when every string anywhere inside v is at most ATT_MAX_TEXT_BYTES. */
static int input_strings_ok(const json_t *v)
{
    if (json_is_string(v))
        return json_string_length(v) <= ATT_MAX_TEXT_BYTES;
    if (json_is_object(v)) {
        const char *key;
        json_t *child;
        json_object_foreach((json_t *)v, key, child)
        {
            if (!input_strings_ok(child))
                return 0;
        }
    } else if (json_is_array(v)) {
        size_t i;
        json_t *child;
        json_array_foreach(v, i, child)
        {
            if (!input_strings_ok(child))
                return 0;
        }
    }
    return 1;
}

/* Validates one member and stores it in out. Messages name the member (from
 * our own table), never its value: values may be what a participant wrote. */
static int take_field(const field_spec *f, json_t *v, att_msg *out, att_error *err)
{
    const char *type = att_msg_type_name(out->type);
    switch (f->kind) {
    case FIELD_TOKEN:
        if (!string_bytes_in(v, 1, ATT_MAX_TOKEN_BYTES))
            return att_fail(err, ATT_ERR_BAD_MESSAGE, "%s.%s must be a string of 1..%d bytes", type,
                            f->name, ATT_MAX_TOKEN_BYTES);
        out->token = json_string_value(v);
        return 0;
    case FIELD_TICKET:
        if (!string_bytes_in(v, 1, ATT_MAX_TOKEN_BYTES))
            return att_fail(err, ATT_ERR_BAD_MESSAGE, "%s.%s must be a string of 1..%d bytes", type,
                            f->name, ATT_MAX_TOKEN_BYTES);
        out->ticket = json_string_value(v);
        return 0;
    case FIELD_RESUME_FROM:
        if (!integer_in(v, 0, INT64_MAX))
            return att_fail(err, ATT_ERR_BAD_MESSAGE, "%s.%s must be an integer >= 0", type,
                            f->name);
        out->resume_from = json_integer_value(v);
        return 0;
    case FIELD_TRUE:
        if (!json_is_true(v))
            return att_fail(err, ATT_ERR_BAD_MESSAGE, "%s.%s must be true", type, f->name);
        return 0;
    case FIELD_STEP_ID:
        if (!string_bytes_in(v, 1, STEP_ID_MAX_BYTES))
            return att_fail(err, ATT_ERR_BAD_MESSAGE, "%s.%s must be a string of 1..%d bytes", type,
                            f->name, STEP_ID_MAX_BYTES);
        out->step = json_string_value(v);
        return 0;
    case FIELD_INPUT:
        if (!json_is_object(v))
            return att_fail(err, ATT_ERR_BAD_MESSAGE, "%s.%s must be an object", type, f->name);
        if (json_object_size(v) > ATT_MAX_INPUT_MEMBERS)
            return att_fail(err, ATT_ERR_BAD_MESSAGE, "%s.%s has more than %d members", type,
                            f->name, ATT_MAX_INPUT_MEMBERS);
        if (!input_strings_ok(v))
            return att_fail(err, ATT_ERR_BAD_MESSAGE, "%s.%s has a string over %d bytes", type,
                            f->name, ATT_MAX_TEXT_BYTES);
        out->input = v;
        return 0;
    case FIELD_CONTROL: {
        int c = json_is_string(v) ? att_control_from_name(json_string_value(v)) : -1;
        if (c < 0)
            return att_fail(err, ATT_ERR_BAD_MESSAGE,
                            "%s.%s must be advance, back, pause, resume, swap, end or proceed",
                            type, f->name);
        out->action = (att_control)c;
        return 0;
    }
    case FIELD_TEXT:
        if (!string_bytes_in(v, 1, ATT_MAX_TEXT_BYTES))
            return att_fail(err, ATT_ERR_BAD_MESSAGE, "%s.%s must be a string of 1..%d bytes", type,
                            f->name, ATT_MAX_TEXT_BYTES);
        out->text = json_string_value(v);
        return 0;
    case FIELD_RUPTURE_ID:
        if (!integer_in(v, 1, INT_MAX))
            return att_fail(err, ATT_ERR_BAD_MESSAGE, "%s.%s must be an integer in 1..%d", type,
                            f->name, INT_MAX);
        out->rupture_id = (int)json_integer_value(v);
        return 0;
    case FIELD_ATTEMPT_ID:
    case FIELD_SUSPICION_ID:
        if (!integer_in(v, 1, INT_MAX))
            return att_fail(err, ATT_ERR_BAD_MESSAGE, "%s.%s must be an integer in 1..%d", type,
                            f->name, INT_MAX);
        if (f->kind == FIELD_ATTEMPT_ID)
            out->attempt_id = (int)json_integer_value(v);
        else
            out->suspicion_id = (int)json_integer_value(v);
        return 0;
    case FIELD_REPLY: {
        int r = json_is_string(v) ? att_repair_reply_from_name(json_string_value(v)) : -1;
        if (r < 0)
            return att_fail(err, ATT_ERR_BAD_MESSAGE, "%s.%s must be need_a_moment or acknowledged",
                            type, f->name);
        out->reply = (att_repair_reply)r;
        return 0;
    }
    case FIELD_TO: {
        att_role r = json_is_string(v) ? att_role_from_name(json_string_value(v)) : ATT_ROLE_NONE;
        if (!att_role_is_partner(r) && r != ATT_ROLE_THERAPIST)
            return att_fail(err, ATT_ERR_BAD_MESSAGE,
                            "%s.%s must be therapist, partner_a or partner_b", type, f->name);
        out->to = r;
        return 0;
    }
    case FIELD_ANSWERS: {
        if (!json_is_object(v) || json_object_size(v) < 1 ||
            json_object_size(v) > ATT_MAX_INPUT_MEMBERS)
            return att_fail(err, ATT_ERR_BAD_MESSAGE, "%s.%s must be an object of 1..%d members",
                            type, f->name, ATT_MAX_INPUT_MEMBERS);
        const char *key;
        json_t *a;
        json_object_foreach(v, key, a)
        {
            if (strlen(key) < 1 || strlen(key) > ATT_MAX_ID_BYTES ||
                !string_bytes_in(a, 1, ATT_MAX_ID_BYTES))
                return att_fail(err, ATT_ERR_BAD_MESSAGE,
                                "%s.%s: question and option ids are 1..%d bytes", type, f->name,
                                ATT_MAX_ID_BYTES);
        }
        out->answers = v;
        return 0;
    }
    case FIELD_MARK_KIND: {
        int k = json_is_string(v) ? att_rupture_kind_from_name(json_string_value(v)) : -1;
        if (k != ATT_RK_WITHDRAWAL && k != ATT_RK_CONFRONTATION)
            return att_fail(err, ATT_ERR_BAD_MESSAGE, "%s.%s must be withdrawal or confrontation",
                            type, f->name);
        out->kind = (att_rupture_kind)k;
        return 0;
    }
    case FIELD_MARKER:
    case FIELD_STRATEGY:
        if (!string_bytes_in(v, 1, CATALOG_ID_MAX_BYTES))
            return att_fail(err, ATT_ERR_BAD_MESSAGE, "%s.%s must be a string of 1..%d bytes", type,
                            f->name, CATALOG_ID_MAX_BYTES);
        if (f->kind == FIELD_MARKER)
            out->marker = json_string_value(v);
        else
            out->strategy = json_string_value(v);
        return 0;
    case FIELD_WHO:
    case FIELD_WITH: {
        att_role r = json_is_string(v) ? att_role_from_name(json_string_value(v)) : ATT_ROLE_NONE;
        int ok = att_role_is_partner(r) || (f->kind == FIELD_WITH && r == ATT_ROLE_THERAPIST);
        if (!ok)
            return att_fail(err, ATT_ERR_BAD_MESSAGE, "%s.%s must be %s", type, f->name,
                            f->kind == FIELD_WHO ? "partner_a or partner_b"
                                                 : "partner_a, partner_b or therapist");
        if (f->kind == FIELD_WHO)
            out->who = r;
        else
            out->with = r;
        return 0;
    }
    }
    return att_fail(err, ATT_ERR_INTERNAL, "unhandled member kind");
}

/* --- decode ----------------------------------------------------------------- */

static void msg_reset(att_msg *m)
{
    memset(m, 0, sizeof *m);
    m->resume_from = -1;
    m->who = ATT_ROLE_NONE;
    m->with = ATT_ROLE_NONE;
    m->to = ATT_ROLE_NONE;
}

int att_msg_decode(const char *buf, size_t len, att_msg *out, att_error *err)
{
    msg_reset(out);
    if (len > ATT_MAX_MESSAGE_BYTES)
        return att_fail(err, ATT_ERR_TOO_LARGE, "message over %d bytes", ATT_MAX_MESSAGE_BYTES);

    json_error_t jerr;
    out->root =
        json_loadb(buf ? buf : "", buf ? len : 0, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (!out->root)
        return att_fail(err, ATT_ERR_BAD_JSON, "not valid JSON (at byte %d)", jerr.position);
    /* jansson's lexer takes a NUL byte for the end of input, so `123` then
     * NUL decoded as 123 (JSONTestSuite n_multidigit_number_then_00). No
     * JSON text holds a raw NUL (in a string it is \u0000). */
    const char *nul = buf ? memchr(buf, '\0', len) : NULL;
    if (nul)
        return att_fail(err, ATT_ERR_BAD_JSON, "not valid JSON (a NUL byte at byte %d)",
                        (int)(nul - buf));
    json_t *root = out->root;
    if (!json_is_object(root))
        return att_fail(err, ATT_ERR_BAD_MESSAGE, "a message must be a JSON object");

    /* The id first, so that every later error can echo it. */
    json_t *id = json_object_get(root, "id");
    int id_valid = string_bytes_in(id, 1, ATT_MAX_ID_BYTES);
    if (id_valid) {
        size_t n = json_string_length(id);
        memcpy(out->id, json_string_value(id), n);
        out->id[n] = '\0';
        out->has_id = 1;
    }

    json_t *type = json_object_get(root, "type");
    if (!json_is_string(type))
        return att_fail(err, ATT_ERR_BAD_MESSAGE, "a message needs a string member \"type\"");
    int t = att_msg_type_from_name(json_string_value(type));
    if (t < 0)
        return att_fail(err, ATT_ERR_UNKNOWN_TYPE, "unknown message type");
    out->type = (att_msg_type)t;
    const char *tname = att_msg_type_name((att_msg_type)t);

    if (id && !id_valid)
        return att_fail(err, ATT_ERR_BAD_MESSAGE, "id must be a string of 1..%d bytes",
                        ATT_MAX_ID_BYTES);
    if (!depth_ok(root, 1))
        return att_fail(err, ATT_ERR_BAD_MESSAGE, "nesting deeper than %d", ATT_MAX_DEPTH);

    const type_spec *spec = &type_specs[t];
    const char *key;
    json_t *value;
    json_object_foreach(root, key, value)
    {
        if (strcmp(key, "type") == 0 || strcmp(key, "id") == 0)
            continue;
        if (strcmp(key, "command_id") == 0 && att_msg_takes_command_id(out->type)) {
            if (!json_is_string(value) ||
                !att_command_id_ok(json_string_value(value), json_string_length(value)))
                return att_fail(err, ATT_ERR_BAD_MESSAGE,
                                "%s.command_id must be %d..%d of A-Z a-z 0-9 _ -", tname,
                                ATT_COMMAND_ID_MIN_BYTES, ATT_COMMAND_ID_MAX_BYTES);
            out->command_id = json_string_value(value);
            continue;
        }
        if (!find_field(spec, key))
            return att_fail(err, ATT_ERR_BAD_MESSAGE, "unknown member in %s", tname);
    }
    for (int i = 0; i < spec->n; i++) {
        const field_spec *f = &spec->fields[i];
        json_t *v = json_object_get(root, f->name);
        if (!v) {
            if (f->required)
                return att_fail(err, ATT_ERR_BAD_MESSAGE, "%s needs member %s", tname, f->name);
            continue;
        }
        int rc = take_field(f, v, out, err);
        if (rc < 0)
            return rc;
    }
    if (out->type == ATT_MSG_HELLO && !out->token == !out->ticket)
        return att_fail(err, ATT_ERR_BAD_MESSAGE, "hello needs member token or ticket (one)");
    if (out->type == ATT_MSG_RUPTURE_MARK && out->who == out->with)
        return att_fail(err, ATT_ERR_BAD_MESSAGE, "rupture_mark.with must differ from who");
    return 0;
}

void att_msg_release(att_msg *m)
{
    if (!m)
        return;
    json_decref(m->root);
    msg_reset(m);
}

/* --- server envelopes ----------------------------------------------------- */

/* Sets key to a new value; returns -1 when either failed to allocate. */
static int set_new(json_t *obj, const char *key, json_t *value)
{
    return value ? json_object_set_new(obj, key, value) : -1;
}

/* Returns obj, or NULL (releasing obj) when any set failed. */
static json_t *finish(json_t *obj, int rc)
{
    if (rc != 0) {
        json_decref(obj);
        return NULL;
    }
    return obj;
}

json_t *att_msg_ack(const char *id, int64_t seq)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    int rc = set_new(o, "type", json_string("ack"));
    if (id)
        rc |= set_new(o, "id", json_string(id));
    if (seq > 0)
        rc |= set_new(o, "seq", json_integer(seq));
    return finish(o, rc);
}

json_t *att_msg_ack_duplicate(const char *id, int64_t seq)
{
    json_t *o = att_msg_ack(id, seq);
    if (o && json_object_set_new(o, "duplicate", json_true()) != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

json_t *att_msg_error(const char *id, att_code code, const char *message)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    int rc = set_new(o, "type", json_string("error"));
    if (id)
        rc |= set_new(o, "id", json_string(id));
    rc |= set_new(o, "code", json_string(att_code_name(code)));
    rc |= set_new(o, "message", json_string(message ? message : att_code_name(code)));
    return finish(o, rc);
}

json_t *att_msg_event(int64_t seq, json_t *event)
{
    if (!event)
        return NULL;
    json_t *o = json_object();
    if (!o)
        return NULL;
    int rc = set_new(o, "type", json_string("event"));
    rc |= set_new(o, "seq", json_integer(seq));
    rc |= json_object_set(o, "event", event);
    return finish(o, rc);
}

json_t *att_msg_bye(const char *reason)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    int rc = set_new(o, "type", json_string("bye"));
    rc |= set_new(o, "reason", json_string(reason ? reason : "shutdown"));
    return finish(o, rc);
}

char *att_json_dump(const json_t *j, size_t *len_out)
{
    const size_t flags = JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY;
    if (!j)
        return NULL;
    /* json_dumpb into our own malloc'd buffer, so the caller's free() matches
     * even when jansson uses custom allocators. */
    size_t need = json_dumpb(j, NULL, 0, flags);
    if (need == 0)
        return NULL;
    char *buf = malloc(need + 1);
    if (!buf)
        return NULL;
    if (json_dumpb(j, buf, need, flags) != need) {
        free(buf);
        return NULL;
    }
    buf[need] = '\0';
    if (len_out)
        *len_out = need;
    return buf;
}
