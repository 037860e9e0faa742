/* crisis.c - the --crisis-file loader and checker (see crisis.h). */
#include "crisis.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

typedef enum { KIND_TEXT, KIND_PHONE, KIND_URL, KIND_DATE } str_kind;

typedef struct {
    const char *name;
    str_kind kind;
    size_t max; /* bytes of UTF-8 */
} field;

static const field top_fields[] = {
    {"country", KIND_TEXT, 80}, {"emergency", KIND_PHONE, 20},  {"checked", KIND_DATE, 10},
    {"note", KIND_TEXT, 600},   {"neutral_url", KIND_URL, 300},
};

static const field line_fields[] = {
    {"name", KIND_TEXT, 120},        {"phone", KIND_PHONE, 40}, {"text", KIND_PHONE, 40},
    {"text_keyword", KIND_TEXT, 40}, {"url", KIND_URL, 300},    {"hours", KIND_TEXT, 80},
    {"description", KIND_TEXT, 300},
};

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

static const char *kind_rule(str_kind kind)
{
    switch (kind) {
    case KIND_PHONE:
        return "a number: digits, letters, spaces and + - ( ) . # *";
    case KIND_URL:
        return "an absolute http:// or https:// address without spaces or quotes";
    case KIND_DATE:
        return "a date as YYYY-MM-DD";
    default:
        return "text without control characters";
    }
}

static int valid_text(const char *s)
{
    int seen = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p < 0x20 || *p == 0x7f)
            return 0;
        if (*p != ' ')
            seen = 1;
    }
    return seen;
}

static int valid_phone(const char *s)
{
    int alnum = 0;
    for (const char *p = s; *p; p++) {
        char c = *p;
        int ok = (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
        alnum += ok;
        if (!ok && !strchr(" +-().#*", c))
            return 0;
    }
    return alnum > 0;
}

static int valid_url(const char *s)
{
    const char *rest = NULL;
    if (strncmp(s, "https://", 8) == 0)
        rest = s + 8;
    else if (strncmp(s, "http://", 7) == 0)
        rest = s + 7;
    if (!rest || !*rest || *rest == '/')
        return 0; /* no host */
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p <= 0x20 || *p == 0x7f || strchr("\"'<>\\`", *p))
            return 0;
    return 1;
}

static int valid_date(const char *s)
{
    if (strlen(s) != 10 || s[4] != '-' || s[7] != '-')
        return 0;
    for (int i = 0; i < 10; i++)
        if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9'))
            return 0;
    int month = (s[5] - '0') * 10 + (s[6] - '0'), day = (s[8] - '0') * 10 + (s[9] - '0');
    return month >= 1 && month <= 12 && day >= 1 && day <= 31;
}

/* Copies in[f->name], when present, into out after checking it. */
static int take_string(const json_t *in, json_t *out, const field *f, const char *where,
                       att_error *err)
{
    json_t *v = json_object_get(in, f->name);
    if (!v)
        return 0;
    const char *sep = where[0] ? "." : "";
    if (!json_is_string(v))
        return att_fail(err, ATT_ERR_BAD_MESSAGE, "%s%s%s: expected a string", where, sep, f->name);
    const char *s = json_string_value(v);
    size_t len = json_string_length(v);
    if (len > f->max)
        return att_fail(err, ATT_ERR_BAD_MESSAGE, "%s%s%s: longer than %zu bytes", where, sep,
                        f->name, f->max);
    int ok = strlen(s) == len; /* no NUL inside */
    if (ok) {
        switch (f->kind) {
        case KIND_PHONE:
            ok = valid_phone(s);
            break;
        case KIND_URL:
            ok = valid_url(s);
            break;
        case KIND_DATE:
            ok = valid_date(s);
            break;
        default:
            ok = valid_text(s);
            break;
        }
    }
    if (!ok)
        return att_fail(err, ATT_ERR_BAD_MESSAGE, "%s%s%s: expected %s", where, sep, f->name,
                        kind_rule(f->kind));
    if (json_object_set_new(out, f->name, json_string(s)) != 0)
        return att_fail(err, ATT_ERR_INTERNAL, "out of memory");
    return 0;
}

static int only_known(const json_t *obj, const char *where, const field *fields, size_t n,
                      const char *const *also, att_error *err)
{
    const char *key;
    json_t *value;
    json_object_foreach((json_t *)obj, key, value)
    {
        (void)value;
        int known = 0;
        for (size_t i = 0; !known && i < n; i++)
            known = strcmp(key, fields[i].name) == 0;
        for (const char *const *a = also; !known && a && *a; a++)
            known = strcmp(key, *a) == 0;
        if (!known)
            return att_fail(err, ATT_ERR_BAD_MESSAGE, "%s%sunknown member '%.40s'", where,
                            where[0] ? ": " : "", key);
    }
    return 0;
}

static int check_lines(const json_t *in, const char *name, json_t *out, att_error *err)
{
    json_t *arr = json_object_get(in, name);
    json_t *copy = json_array();
    if (!copy || json_object_set_new(out, name, copy) != 0)
        return att_fail(err, ATT_ERR_INTERNAL, "out of memory");
    if (!arr)
        return 0;
    if (!json_is_array(arr))
        return att_fail(err, ATT_ERR_BAD_MESSAGE, "%s: expected an array of lines", name);
    if (json_array_size(arr) > SRV_CRISIS_MAX_LINES)
        return att_fail(err, ATT_ERR_BAD_MESSAGE, "%s: more than %d lines", name,
                        SRV_CRISIS_MAX_LINES);
    size_t i;
    json_t *line;
    json_array_foreach(arr, i, line)
    {
        char where[48];
        snprintf(where, sizeof where, "%s[%zu]", name, i);
        if (!json_is_object(line))
            return att_fail(err, ATT_ERR_BAD_MESSAGE,
                            "%s: expected an object {\"name\", \"phone\", ...}", where);
        int rc = only_known(line, where, line_fields, N_OF(line_fields), NULL, err);
        if (rc < 0)
            return rc;
        if (!json_object_get(line, "name"))
            return att_fail(err, ATT_ERR_BAD_MESSAGE, "%s.name: missing (the line's name)", where);
        json_t *one = json_object();
        if (!one || json_array_append_new(copy, one) != 0)
            return att_fail(err, ATT_ERR_INTERNAL, "out of memory");
        for (size_t f = 0; f < N_OF(line_fields); f++)
            if ((rc = take_string(line, one, &line_fields[f], where, err)) < 0)
                return rc;
        if (!json_object_get(one, "phone") && !json_object_get(one, "text") &&
            !json_object_get(one, "url"))
            return att_fail(err, ATT_ERR_BAD_MESSAGE, "%s: needs at least one of phone, text, url",
                            where);
        if (json_object_get(one, "text_keyword") && !json_object_get(one, "text"))
            return att_fail(err, ATT_ERR_BAD_MESSAGE,
                            "%s.text_keyword: given without text (the number to text)", where);
    }
    return 0;
}

int srv_crisis_check(const json_t *in, json_t **out, att_error *err)
{
    *out = NULL;
    if (!json_is_object(in))
        return att_fail(err, ATT_ERR_BAD_MESSAGE, "expected a JSON object at the top");
    static const char *const lists[] = {"lines", "domestic_abuse", NULL};
    int rc = only_known(in, "", top_fields, N_OF(top_fields), lists, err);
    if (rc < 0)
        return rc;
    json_t *body = json_pack("{s:b}", "configured", 1);
    if (!body)
        return att_fail(err, ATT_ERR_INTERNAL, "out of memory");
    for (size_t f = 0; rc == 0 && f < N_OF(top_fields); f++)
        rc = take_string(in, body, &top_fields[f], "", err);
    if (rc == 0)
        rc = check_lines(in, "lines", body, err);
    if (rc == 0)
        rc = check_lines(in, "domestic_abuse", body, err);
    if (rc == 0 && !json_object_get(body, "neutral_url") &&
        json_object_set_new(body, "neutral_url", json_string(SRV_CRISIS_DEFAULT_NEUTRAL_URL)))
        rc = att_fail(err, ATT_ERR_INTERNAL, "out of memory");
    if (rc < 0) {
        json_decref(body);
        return rc;
    }
    *out = body;
    return 0;
}

int srv_crisis_load(const char *path, json_t **out, att_error *err)
{
    *out = NULL;
    struct stat st;
    if (stat(path, &st) != 0)
        return att_fail(err, ATT_ERR_BAD_MESSAGE, "--crisis-file %s: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return att_fail(err, ATT_ERR_BAD_MESSAGE, "--crisis-file %s: not a regular file", path);
    if (st.st_size > SRV_CRISIS_MAX_FILE)
        return att_fail(err, ATT_ERR_BAD_MESSAGE, "--crisis-file %s: larger than %d KiB", path,
                        SRV_CRISIS_MAX_FILE / 1024);
    json_error_t jerr;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return att_fail(err, ATT_ERR_BAD_MESSAGE, "--crisis-file %s:%d:%d: %s", path, jerr.line,
                        jerr.column, jerr.text);
    att_error inner = {0};
    int rc = srv_crisis_check(root, out, &inner);
    json_decref(root);
    if (rc < 0)
        return att_fail(err, inner.code, "--crisis-file: %s (in %s)", inner.message, path);
    return 0;
}

json_t *srv_crisis_default(void)
{
    return json_pack("{s:b,s:[],s:[],s:s}", "configured", 0, "lines", "domestic_abuse",
                     "neutral_url", SRV_CRISIS_DEFAULT_NEUTRAL_URL);
}
