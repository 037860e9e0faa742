/* test_msg.c - the client message codec against the shared corpus
 * (tests/corpus), the limits at and just past each boundary, the client
 * examples in protocol/PROTOCOL.md, and the server envelopes' exact shapes. */
#include "check.h"

#include "attune/msg.h"
#include "attune/names.h"

#include <dirent.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#define CORPUS ATTUNE_TESTS_DIR "/corpus"
#define PROTOCOL_MD ATTUNE_TESTS_DIR "/../protocol/PROTOCOL.md"

/* Decodes buf and returns the att_code (0 on success); the message is released. */
static int decode_code(const char *buf, size_t len)
{
    att_msg m;
    att_error err = {0};
    int rc = att_msg_decode(buf, len, &m, &err);
    att_msg_release(&m);
    if (rc < 0)
        CHECK_INT(err.code, -rc);
    return rc < 0 ? -rc : 0;
}

static int decode_str(const char *s)
{
    return decode_code(s, strlen(s));
}

static const char *str_member(json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static void check_same_str(const char *file, const char *what, const char *got, const char *want)
{
    if (!want) {
        CHECK_MSG(got == NULL, "%s: %s should be absent", file, what);
        return;
    }
    CHECK_MSG(got && strcmp(got, want) == 0, "%s: %s = '%s', expected '%s'", file, what,
              got ? got : "(null)", want);
}

/* Checks every field of a decoded message against the same JSON parsed
 * independently. */
static void check_fields(const char *file, const att_msg *m, json_t *j)
{
    CHECK_STR(att_msg_type_name(m->type), str_member(j, "type"));
    const char *id = str_member(j, "id");
    CHECK_MSG(m->has_id == (id != NULL), "%s: has_id", file);
    if (id)
        check_same_str(file, "id", m->id, id);
    const char *text_key = NULL;
    switch (m->type) {
    case ATT_MSG_HELLO: {
        check_same_str(file, "token", m->token, str_member(j, "token"));
        json_t *r = json_object_get(j, "resume_from");
        CHECK_INT(m->resume_from, r ? json_integer_value(r) : -1);
        break;
    }
    case ATT_MSG_TURN:
        check_same_str(file, "step", m->step, str_member(j, "step"));
        CHECK_MSG(json_equal(m->input, json_object_get(j, "input")), "%s: input", file);
        CHECK(json_is_object(m->input));
        break;
    case ATT_MSG_CONTROL:
        CHECK_STR(att_control_name(m->action), str_member(j, "action"));
        break;
    case ATT_MSG_PAUSE_REQUEST:
    case ATT_MSG_RUPTURE_MARK:
    case ATT_MSG_RUPTURE_REPAIR:
    case ATT_MSG_RUPTURE_CONFIRM:
    case ATT_MSG_RUPTURE_DISMISS:
        text_key = "note";
        break;
    case ATT_MSG_CHECKIN:
        text_key = "note";
        CHECK_MSG(json_equal(m->answers, json_object_get(j, "answers")), "%s: answers", file);
        break;
    case ATT_MSG_REPAIR_ATTEMPT:
    case ATT_MSG_NOTE:
        text_key = "text";
        break;
    case ATT_MSG_PRIVATE_MESSAGE: {
        text_key = "text";
        const char *to = str_member(j, "to");
        CHECK_INT(m->to, to ? att_role_from_name(to) : ATT_ROLE_NONE);
        break;
    }
    case ATT_MSG_REPAIR_REPLY:
        CHECK_STR(att_repair_reply_name(m->reply), str_member(j, "reply"));
        break;
    default:
        break;
    }
    if (text_key)
        check_same_str(file, text_key, m->text, str_member(j, text_key));
    else
        CHECK_MSG(m->text == NULL, "%s: text should be NULL", file);
    if (m->type != ATT_MSG_CHECKIN)
        CHECK(m->answers == NULL);
    if (m->type != ATT_MSG_PRIVATE_MESSAGE)
        CHECK_INT(m->to, ATT_ROLE_NONE);
    json_t *rid = json_object_get(j, "rupture_id");
    CHECK_INT(m->rupture_id, rid ? json_integer_value(rid) : 0);
    json_t *sid = json_object_get(j, "suspicion_id");
    CHECK_INT(m->suspicion_id, sid ? json_integer_value(sid) : 0);
    json_t *aid = json_object_get(j, "attempt_id");
    CHECK_INT(m->attempt_id, aid ? json_integer_value(aid) : 0);
    if (m->type == ATT_MSG_RUPTURE_MARK) {
        CHECK_STR(att_rupture_kind_name(m->kind), str_member(j, "kind"));
        check_same_str(file, "marker", m->marker, str_member(j, "marker"));
        CHECK_STR(att_role_name(m->who), str_member(j, "who"));
        CHECK_STR(att_role_name(m->with), str_member(j, "with"));
    } else {
        CHECK(m->marker == NULL);
        CHECK_INT(m->who, ATT_ROLE_NONE);
    }
    if (m->type == ATT_MSG_RUPTURE_REPAIR)
        check_same_str(file, "strategy", m->strategy, str_member(j, "strategy"));
    else
        CHECK(m->strategy == NULL);
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

static void test_valid_corpus(void)
{
    DIR *dir = opendir(CORPUS "/valid");
    CHECK_MSG(dir != NULL, "cannot open %s/valid", CORPUS);
    if (!dir)
        return;
    int seen[ATT_MSG__COUNT] = {0};
    int files = 0;
    struct dirent *de;
    while ((de = readdir(dir)) != NULL) {
        if (!ends_with(de->d_name, ".json"))
            continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/valid/%s", CORPUS, de->d_name);
        size_t len;
        char *buf = check_read_file(path, &len);
        CHECK_MSG(buf != NULL, "read %s", path);
        if (!buf)
            continue;
        files++;
        att_msg m;
        att_error err = {0};
        int rc = att_msg_decode(buf, len, &m, &err);
        CHECK_MSG(rc == 0, "%s: %s (%s)", de->d_name, att_code_name(err.code), err.message);
        json_t *j = json_loadb(buf, len, 0, NULL);
        CHECK(j != NULL);
        if (rc == 0 && j) {
            check_fields(de->d_name, &m, j);
            seen[m.type]++;
        }
        json_decref(j);
        att_msg_release(&m);
        free(buf);
    }
    closedir(dir);
    CHECK_MSG(files >= ATT_MSG__COUNT, "only %d valid files", files);
    for (int t = 0; t < ATT_MSG__COUNT; t++)
        CHECK_MSG(seen[t] > 0, "no valid corpus file of type %s", att_msg_type_name(t));
}

static att_code code_from_name(const char *name)
{
    for (int c = 0; c < ATT_ERR__COUNT; c++)
        if (strcmp(att_code_name((att_code)c), name) == 0)
            return (att_code)c;
    return ATT_ERR__COUNT;
}

static void test_invalid_corpus(void)
{
    size_t mlen;
    char *manifest = check_read_file(CORPUS "/invalid.tsv", &mlen);
    CHECK_MSG(manifest != NULL, "read invalid.tsv");
    if (!manifest)
        return;
    int cases = 0, per_code[ATT_ERR__COUNT] = {0};
    char *save = NULL;
    for (char *line = strtok_r(manifest, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (line[0] == '#' || line[0] == '\0')
            continue;
        char *tab = strchr(line, '\t');
        CHECK_MSG(tab != NULL, "manifest line without a tab: %s", line);
        if (!tab)
            continue;
        *tab = '\0';
        char *code_name = tab + 1;
        char *tab2 = strchr(code_name, '\t');
        if (tab2)
            *tab2 = '\0';
        att_code want = code_from_name(code_name);
        CHECK_MSG(want != ATT_ERR__COUNT && want != ATT_OK, "%s: bad code %s", line, code_name);
        char path[1024];
        snprintf(path, sizeof path, "%s/invalid/%s", CORPUS, line);
        size_t len;
        char *buf = check_read_file(path, &len);
        CHECK_MSG(buf != NULL, "read %s", path);
        if (!buf)
            continue;
        cases++;
        att_msg m;
        att_error err = {0};
        int rc = att_msg_decode(buf, len, &m, &err);
        CHECK_MSG(rc == -(int)want && err.code == want, "%s: got %s (%s), expected %s", line,
                  rc == 0 ? "ok" : att_code_name(err.code), rc == 0 ? "" : err.message, code_name);
        if (want < ATT_ERR__COUNT)
            per_code[want]++;
        /* The error echoes id exactly when the message had a valid one. */
        json_t *j = json_loadb(buf, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, NULL);
        json_t *id = json_is_object(j) ? json_object_get(j, "id") : NULL;
        int id_valid = json_is_string(id) && json_string_length(id) >= 1 &&
                       json_string_length(id) <= ATT_MAX_ID_BYTES;
        CHECK_MSG(m.has_id == id_valid, "%s: has_id %d, expected %d", line, m.has_id, id_valid);
        if (id_valid)
            CHECK_STR(m.id, json_string_value(id));
        json_decref(j);
        att_msg_release(&m);
        free(buf);
    }
    free(manifest);
    CHECK_MSG(cases >= 60, "only %d invalid cases", cases);
    CHECK(per_code[ATT_ERR_BAD_JSON] > 0);
    CHECK(per_code[ATT_ERR_BAD_MESSAGE] > 0);
    CHECK(per_code[ATT_ERR_UNKNOWN_TYPE] > 0);
}

/* A note message of exactly `total` bytes: {"type":"note","text":"aaa"} padded
 * with trailing spaces (so the text stays within its own limit). */
static char *note_of_size(size_t total)
{
    const char *head = "{\"type\":\"note\",\"text\":\"aaa\"}";
    char *buf = malloc(total + 1);
    if (!buf)
        return NULL;
    memset(buf, ' ', total);
    memcpy(buf, head, strlen(head));
    buf[total] = '\0';
    return buf;
}

/* {"type":"turn","step":"s","input":{"a":[[...]]}} with `arrays` nested arrays
 * under "a": the innermost array is at depth 2 + arrays. */
static char *turn_with_arrays(int arrays)
{
    size_t cap = (size_t)arrays * 2 + 64;
    char *buf = malloc(cap);
    if (!buf)
        return NULL;
    size_t n = (size_t)snprintf(buf, cap, "{\"type\":\"turn\",\"step\":\"s\",\"input\":{\"a\":");
    for (int i = 0; i < arrays; i++)
        buf[n++] = '[';
    for (int i = 0; i < arrays; i++)
        buf[n++] = ']';
    memcpy(buf + n, "}}", 3);
    return buf;
}

static char *repeat(const char *prefix, char c, size_t count, const char *suffix)
{
    size_t p = strlen(prefix), s = strlen(suffix);
    char *buf = malloc(p + count + s + 1);
    if (!buf)
        return NULL;
    memcpy(buf, prefix, p);
    memset(buf + p, c, count);
    memcpy(buf + p + count, suffix, s + 1);
    return buf;
}

static void test_boundaries(void)
{
    /* Size: exactly 64 KiB decodes; one byte more is too_large, checked first. */
    char *b = note_of_size(ATT_MAX_MESSAGE_BYTES);
    CHECK_INT(decode_code(b, ATT_MAX_MESSAGE_BYTES), ATT_OK);
    free(b);
    b = note_of_size(ATT_MAX_MESSAGE_BYTES + 1);
    CHECK_INT(decode_code(b, ATT_MAX_MESSAGE_BYTES + 1), ATT_ERR_TOO_LARGE);
    free(b);
    b = repeat("", 'x', 1 << 20, "");
    CHECK_INT(decode_code(b, 1 << 20), ATT_ERR_TOO_LARGE);
    free(b);

    /* id: 64 bytes vs 65. */
    b = repeat("{\"type\":\"ping\",\"id\":\"", 'i', 64, "\"}");
    CHECK_INT(decode_str(b), ATT_OK);
    free(b);
    b = repeat("{\"type\":\"ping\",\"id\":\"", 'i', 65, "\"}");
    CHECK_INT(decode_str(b), ATT_ERR_BAD_MESSAGE);
    free(b);

    /* Depth: 8 containers deep decodes, 9 does not (root = 1, input = 2). */
    b = turn_with_arrays(6);
    CHECK_INT(decode_str(b), ATT_OK);
    free(b);
    b = turn_with_arrays(7);
    CHECK_INT(decode_str(b), ATT_ERR_BAD_MESSAGE);
    free(b);
    /* 10,000 levels: beyond the parser's own limit -> bad_json. */
    b = turn_with_arrays(10000);
    CHECK_INT(decode_str(b), ATT_ERR_BAD_JSON);
    free(b);
    b = repeat("", '[', 10000, "");
    CHECK_INT(decode_str(b), ATT_ERR_BAD_JSON);
    free(b);

    /* Token 1024 vs 1025, text 4000 vs 4001, step id 64 vs 65. */
    b = repeat("{\"type\":\"hello\",\"token\":\"", 't', 1024, "\"}");
    CHECK_INT(decode_str(b), ATT_OK);
    free(b);
    b = repeat("{\"type\":\"hello\",\"token\":\"", 't', 1025, "\"}");
    CHECK_INT(decode_str(b), ATT_ERR_BAD_MESSAGE);
    free(b);
    b = repeat("{\"type\":\"note\",\"text\":\"", 'a', 4000, "\"}");
    CHECK_INT(decode_str(b), ATT_OK);
    free(b);
    b = repeat("{\"type\":\"note\",\"text\":\"", 'a', 4001, "\"}");
    CHECK_INT(decode_str(b), ATT_ERR_BAD_MESSAGE);
    free(b);
    b = repeat("{\"type\":\"turn\",\"input\":{},\"step\":\"", 's', 64, "\"}");
    CHECK_INT(decode_str(b), ATT_OK);
    free(b);
    b = repeat("{\"type\":\"turn\",\"input\":{},\"step\":\"", 's', 65, "\"}");
    CHECK_INT(decode_str(b), ATT_ERR_BAD_MESSAGE);
    free(b);
    /* Lengths are bytes: "\u00e9" escapes to 2 bytes each; 32 -> 64 bytes, 33 -> 66. */
    char esc[512];
    strcpy(esc, "{\"type\":\"ping\",\"id\":\"");
    for (int i = 0; i < 32; i++)
        strcat(esc, "\\u00e9");
    strcat(esc, "\"}");
    CHECK_INT(decode_str(esc), ATT_OK);
    strcpy(esc + strlen(esc) - 2, "\\u00e9\"}");
    CHECK_INT(decode_str(esc), ATT_ERR_BAD_MESSAGE);

    /* Integer ranges. */
    CHECK_INT(decode_str("{\"type\":\"rupture_confirm\",\"suspicion_id\":2147483647}"), ATT_OK);
    CHECK_INT(decode_str("{\"type\":\"rupture_confirm\",\"suspicion_id\":2147483648}"),
              ATT_ERR_BAD_MESSAGE);
    CHECK_INT(decode_str("{\"type\":\"rupture_confirm\",\"suspicion_id\":0}"), ATT_ERR_BAD_MESSAGE);
    /* protocol 1 names are gone from the client messages */
    CHECK_INT(decode_str("{\"type\":\"rupture_confirm\",\"rupture_id\":1}"), ATT_ERR_BAD_MESSAGE);
    CHECK_INT(decode_str("{\"type\":\"rupture_dismiss\",\"rupture_id\":1}"), ATT_ERR_BAD_MESSAGE);
    CHECK_INT(decode_str("{\"type\":\"repair_accept\",\"attempt_seq\":5}"), ATT_ERR_BAD_MESSAGE);
    CHECK_INT(decode_str("{\"type\":\"repair_accept\",\"attempt_id\":2147483647}"), ATT_OK);
    CHECK_INT(decode_str("{\"type\":\"repair_accept\",\"attempt_id\":2147483648}"),
              ATT_ERR_BAD_MESSAGE);
    CHECK_INT(decode_str("{\"type\":\"repair_accept\",\"attempt_id\":9223372036854775808}"),
              ATT_ERR_BAD_JSON);
    CHECK_INT(
        decode_str("{\"type\":\"repair_reply\",\"attempt_id\":1,\"reply\":\"need_a_moment\"}"),
        ATT_OK);
    CHECK_INT(decode_str("{\"type\":\"repair_reply\",\"attempt_id\":1,\"reply\":\"acknowledged\"}"),
              ATT_OK);
    CHECK_INT(decode_str("{\"type\":\"repair_reply\",\"attempt_id\":1,\"reply\":\"accepted\"}"),
              ATT_ERR_BAD_MESSAGE);
    CHECK_INT(decode_str("{\"type\":\"repair_reply\",\"attempt_id\":1}"), ATT_ERR_BAD_MESSAGE);
    CHECK_INT(decode_str("{\"type\":\"hello\",\"token\":\"t\",\"resume_from\":0}"), ATT_OK);
    CHECK_INT(decode_str("{\"type\":\"hello\",\"token\":\"t\",\"resume_from\":-1}"),
              ATT_ERR_BAD_MESSAGE);

    /* Input members: 16 vs 17. */
    char in[512];
    for (int n = 16; n <= 17; n++) {
        strcpy(in, "{\"type\":\"turn\",\"step\":\"s\",\"input\":{");
        for (int i = 0; i < n; i++) {
            char member[16];
            snprintf(member, sizeof member, "%s\"k%d\":%d", i ? "," : "", i, i);
            strcat(in, member);
        }
        strcat(in, "}}");
        CHECK_INT(decode_str(in), n == 16 ? ATT_OK : ATT_ERR_BAD_MESSAGE);
    }

    /* Empty and NULL buffers. */
    CHECK_INT(decode_code("", 0), ATT_ERR_BAD_JSON);
    CHECK_INT(decode_code(NULL, 0), ATT_ERR_BAD_JSON);
    /* The length is honoured: bytes past len are not read. */
    CHECK_INT(decode_code("{\"type\":\"ping\"}garbage", 15), ATT_OK);
}

static void test_errors_echo_id_and_hide_text(void)
{
    att_msg m;
    att_error err = {0};
    CHECK_INT(att_msg_decode("{\"type\":\"nope\",\"id\":\"x1\"}", 25, &m, &err),
              -ATT_ERR_UNKNOWN_TYPE);
    CHECK(m.has_id);
    CHECK_STR(m.id, "x1");
    att_msg_release(&m);
    const char *s = "{\"type\":\"note\",\"id\":\"n2\",\"text\":\"\"}";
    CHECK_INT(att_msg_decode(s, strlen(s), &m, &err), -ATT_ERR_BAD_MESSAGE);
    CHECK(m.has_id);
    CHECK_STR(m.id, "n2");
    att_msg_release(&m);
    att_msg_release(&m); /* releasing twice is harmless */
    s = "{\"type\":\"ping\",\"id\":5}";
    CHECK_INT(att_msg_decode(s, strlen(s), &m, &err), -ATT_ERR_BAD_MESSAGE);
    CHECK(!m.has_id);
    att_msg_release(&m);

    /* Error messages never repeat what the sender wrote. */
    const char *leaky[] = {
        "{\"type\":\"SECRET-PHI\"}",
        "{\"type\":\"control\",\"action\":\"SECRET-PHI\"}",
        "{\"type\":\"ping\",\"SECRET-PHI\":1}",
        "{\"type\":\"note\",\"text\":\"SECRET-PHI\",\"x\":1}",
        "{\"type\":\"note\",\"text\":\"SECRET-PHI\"",
        "{\"type\":\"note\",\"text\":SECRET-PHI}",
        ("{\"type\":\"rupture_mark\",\"kind\":\"SECRET-PHI\",\"marker\":\"m\",\"who\":\"partner_"
         "a\","
         "\"with\":\"therapist\"}"),
    };
    for (size_t i = 0; i < sizeof leaky / sizeof leaky[0]; i++) {
        memset(&err, 0, sizeof err);
        int rc = att_msg_decode(leaky[i], strlen(leaky[i]), &m, &err);
        CHECK(rc < 0);
        CHECK_MSG(strstr(err.message, "SECRET") == NULL, "message leaks input: %s", err.message);
        CHECK(err.message[0] != '\0');
        att_msg_release(&m);
    }
}

static void test_protocol_examples(void)
{
    size_t len;
    char *md = check_read_file(PROTOCOL_MD, &len);
    CHECK_MSG(md != NULL, "read %s", PROTOCOL_MD);
    if (!md)
        return;
    int seen[ATT_MSG__COUNT] = {0};
    const char *fence = "```json client/";
    for (char *p = strstr(md, fence); p; p = strstr(p, fence)) {
        char *type = p + strlen(fence);
        char *eol = strchr(type, '\n');
        char *end = eol ? strstr(eol, "\n```") : NULL;
        CHECK(eol && end);
        if (!eol || !end)
            break;
        char tname[64] = {0};
        size_t tl = (size_t)(eol - type);
        memcpy(tname, type, tl < sizeof tname - 1 ? tl : sizeof tname - 1);
        att_msg m;
        att_error err = {0};
        int rc = att_msg_decode(eol + 1, (size_t)(end - eol), &m, &err);
        CHECK_MSG(rc == 0, "PROTOCOL.md example client/%s: %s", tname, err.message);
        if (rc == 0) {
            CHECK_STR(att_msg_type_name(m.type), tname);
            seen[m.type]++;
            json_t *j = json_loadb(eol + 1, (size_t)(end - eol), 0, NULL);
            check_fields("PROTOCOL.md", &m, j);
            json_decref(j);
        }
        att_msg_release(&m);
        p = end;
    }
    for (int t = 0; t < ATT_MSG__COUNT; t++)
        CHECK_MSG(seen[t] > 0, "PROTOCOL.md has no client/%s example", att_msg_type_name(t));
    free(md);
}

static void check_dump(json_t *j, const char *want)
{
    CHECK(j != NULL);
    size_t len = 0;
    char *s = j ? att_json_dump(j, &len) : NULL;
    CHECK_STR(s, want);
    if (s)
        CHECK_INT(len, strlen(want));
    free(s);
    json_decref(j);
}

static void test_encoders(void)
{
    check_dump(att_msg_ack(NULL, 0), "{\"type\":\"ack\"}");
    check_dump(att_msg_ack("p-17", 0), "{\"id\":\"p-17\",\"type\":\"ack\"}");
    check_dump(att_msg_ack("t-5", 44), "{\"id\":\"t-5\",\"seq\":44,\"type\":\"ack\"}");
    check_dump(att_msg_ack(NULL, -3), "{\"type\":\"ack\"}");
    check_dump(att_msg_error("t-6", ATT_ERR_NOT_YOUR_TURN, "it is partner_b's turn"),
               "{\"code\":\"not_your_turn\",\"id\":\"t-6\",\"message\":\"it is partner_b's "
               "turn\",\"type\":\"error\"}");
    check_dump(att_msg_error(NULL, ATT_ERR_BAD_JSON, NULL),
               "{\"code\":\"bad_json\",\"message\":\"bad_json\",\"type\":\"error\"}");
    check_dump(att_msg_bye("replaced"), "{\"reason\":\"replaced\",\"type\":\"bye\"}");

    json_t *ev = json_pack("{s:s, s:I, s:s}", "type", "joined", "at", (json_int_t)1764059010000,
                           "by", "partner_a");
    CHECK(ev != NULL);
    check_dump(att_msg_event(7, ev), "{\"event\":{\"at\":1764059010000,\"by\":\"partner_a\","
                                     "\"type\":\"joined\"},\"seq\":7,\"type\":\"event\"}");
    /* The event was borrowed: still ours, still intact. */
    CHECK_INT(ev->refcount, 1);
    CHECK_STR(str_member(ev, "type"), "joined");
    json_decref(ev);
    CHECK(att_msg_event(1, NULL) == NULL);

    /* Dumps are deterministic and compact whatever the insertion order. */
    json_t *a = json_pack("{s:i, s:i, s:[i,i]}", "z", 1, "a", 2, "m", 3, 4);
    check_dump(a, "{\"a\":2,\"m\":[3,4],\"z\":1}");
    json_t *scalar = json_integer(5);
    check_dump(scalar, "5");
    CHECK(att_json_dump(NULL, NULL) == NULL);

    /* Round trip: what the encoder writes, the decoder's JSON reader accepts. */
    json_t *err = att_msg_error("x", ATT_ERR_FORBIDDEN, "observers may only ping");
    char *s = att_json_dump(err, NULL);
    json_t *back = s ? json_loads(s, JSON_REJECT_DUPLICATES, NULL) : NULL;
    CHECK(back && json_equal(back, err));
    json_decref(back);
    json_decref(err);
    free(s);
}

static void test_names(void)
{
    for (int t = 0; t < ATT_MSG__COUNT; t++) {
        char buf[128];
        snprintf(buf, sizeof buf, "{\"type\":\"%s\"}", att_msg_type_name(t));
        att_msg m;
        att_error err;
        int rc = att_msg_decode(buf, strlen(buf), &m, &err);
        /* Either it decodes to that type (no required members) or fails on
         * members, never on the type itself. */
        if (rc == 0)
            CHECK_INT(m.type, t);
        else
            CHECK_INT(err.code, ATT_ERR_BAD_MESSAGE);
        att_msg_release(&m);
    }
    CHECK_STR(att_msg_type_name(ATT_MSG__COUNT), "unknown");
    CHECK_STR(att_msg_type_name((att_msg_type)-1), "unknown");
}

/* The protocol 2 client messages, field by field. */
static void test_protocol2_messages(void)
{
    att_msg m;
    att_error err = {0};
    const char *s = "{\"type\":\"private_message\",\"text\":\"only for you\"}";
    CHECK_INT(att_msg_decode(s, strlen(s), &m, &err), 0);
    CHECK_INT(m.type, ATT_MSG_PRIVATE_MESSAGE);
    CHECK_INT(m.to, ATT_ROLE_NONE); /* the room decides who it goes to */
    CHECK_STR(m.text, "only for you");
    att_msg_release(&m);
    static const struct {
        const char *to;
        att_role role;
    } tos[] = {{"therapist", ATT_ROLE_THERAPIST}, {"partner_a", ATT_ROLE_PARTNER_A},
               {"partner_b", ATT_ROLE_PARTNER_B}, {"observer", ATT_ROLE_NONE},
               {"system", ATT_ROLE_NONE},         {"everyone", ATT_ROLE_NONE}};
    for (size_t i = 0; i < sizeof tos / sizeof tos[0]; i++) {
        char buf[160];
        snprintf(buf, sizeof buf, "{\"type\":\"private_message\",\"text\":\"t\",\"to\":\"%s\"}",
                 tos[i].to);
        int rc = att_msg_decode(buf, strlen(buf), &m, &err);
        if (tos[i].role == ATT_ROLE_NONE) {
            CHECK_MSG(rc == -ATT_ERR_BAD_MESSAGE, "to %s", tos[i].to);
        } else {
            CHECK_MSG(rc == 0, "to %s: %s", tos[i].to, err.message);
            CHECK_INT(m.to, tos[i].role);
        }
        att_msg_release(&m);
    }
    CHECK_INT(decode_str("{\"type\":\"private_message\"}"), ATT_ERR_BAD_MESSAGE);
    CHECK_INT(decode_str("{\"type\":\"private_message\",\"text\":\"\"}"), ATT_ERR_BAD_MESSAGE);

    s = "{\"type\":\"checkin\",\"answers\":{\"safe_to_talk\":\"not_sure\"},\"note\":\"later\"}";
    CHECK_INT(att_msg_decode(s, strlen(s), &m, &err), 0);
    CHECK_INT(m.type, ATT_MSG_CHECKIN);
    CHECK_STR(json_string_value(json_object_get(m.answers, "safe_to_talk")), "not_sure");
    CHECK_STR(m.text, "later");
    att_msg_release(&m);
    CHECK_INT(decode_str("{\"type\":\"checkin\"}"), ATT_ERR_BAD_MESSAGE);
    CHECK_INT(decode_str("{\"type\":\"checkin\",\"answers\":{}}"), ATT_ERR_BAD_MESSAGE);
    CHECK_INT(decode_str("{\"type\":\"checkin\",\"answers\":[\"yes\"]}"), ATT_ERR_BAD_MESSAGE);
    CHECK_INT(decode_str("{\"type\":\"checkin\",\"answers\":{\"safe_to_talk\":1}}"),
              ATT_ERR_BAD_MESSAGE);
    CHECK_INT(decode_str("{\"type\":\"checkin\",\"answers\":{\"safe_to_talk\":\"\"}}"),
              ATT_ERR_BAD_MESSAGE);

    static const char *const bare[] = {"typing", "consent_withdraw", "ask_therapist"};
    for (size_t i = 0; i < 3; i++) {
        char buf[96];
        snprintf(buf, sizeof buf, "{\"type\":\"%s\"}", bare[i]);
        CHECK_MSG(decode_str(buf) == ATT_OK, "%s", bare[i]);
        snprintf(buf, sizeof buf, "{\"type\":\"%s\",\"text\":\"x\"}", bare[i]);
        CHECK_MSG(decode_str(buf) == ATT_ERR_BAD_MESSAGE, "%s with a member", bare[i]);
    }
    s = "{\"type\":\"control\",\"action\":\"proceed\"}";
    CHECK_INT(att_msg_decode(s, strlen(s), &m, &err), 0);
    CHECK_INT(m.action, ATT_CTL_PROCEED);
    att_msg_release(&m);

    s = "{\"type\":\"note\",\"text\":\"n\",\"suspicion_id\":4}";
    CHECK_INT(att_msg_decode(s, strlen(s), &m, &err), 0);
    CHECK_INT(m.suspicion_id, 4);
    CHECK_INT(m.rupture_id, 0);
    att_msg_release(&m);
    s = "{\"type\":\"rupture_dismiss\",\"suspicion_id\":3,\"note\":\"a false alarm\"}";
    CHECK_INT(att_msg_decode(s, strlen(s), &m, &err), 0);
    CHECK_INT(m.suspicion_id, 3);
    CHECK_STR(m.text, "a false alarm");
    att_msg_release(&m);
    s = "{\"type\":\"rupture_confirm\",\"suspicion_id\":2,\"note\":\"yes, that was it\"}";
    CHECK_INT(att_msg_decode(s, strlen(s), &m, &err), 0);
    CHECK_INT(m.suspicion_id, 2);
    CHECK_STR(m.text, "yes, that was it");
    att_msg_release(&m);
}

int main(void)
{
    test_valid_corpus();
    test_invalid_corpus();
    test_boundaries();
    test_errors_echo_id_and_hide_text();
    test_protocol_examples();
    test_encoders();
    test_names();
    test_protocol2_messages();
    return check_done("msg");
}
