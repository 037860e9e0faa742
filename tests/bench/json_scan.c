/* json_scan.c - allocation-free member lookups in JSON text (see json_scan.h). */
#include "json_scan.h"

#include <string.h>

/* Containers deeper than this are refused (the server's messages are shallow;
 * the limit only keeps a hostile text from recursing without bound). */
#define JS_MAX_DEPTH 64

static const char *skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

static const char *skip_string(const char *p, const char *end)
{
    /* p is at the opening quote */
    for (p++; p < end; p++) {
        if (*p == '\\') {
            p++;
            continue;
        }
        if (*p == '"')
            return p + 1;
    }
    return NULL;
}

static const char *skip_value_depth(const char *p, const char *end, int depth)
{
    p = skip_ws(p, end);
    if (p >= end)
        return NULL;
    char c = *p;
    if (c == '"')
        return skip_string(p, end);
    if (c == '{' || c == '[') {
        if (depth >= JS_MAX_DEPTH)
            return NULL;
        char close = c == '{' ? '}' : ']';
        p = skip_ws(p + 1, end);
        if (p < end && *p == close)
            return p + 1;
        for (;;) {
            if (c == '{') {
                p = skip_ws(p, end);
                if (p >= end || *p != '"')
                    return NULL;
                p = skip_string(p, end);
                if (!p)
                    return NULL;
                p = skip_ws(p, end);
                if (p >= end || *p != ':')
                    return NULL;
                p++;
            }
            p = skip_value_depth(p, end, depth + 1);
            if (!p)
                return NULL;
            p = skip_ws(p, end);
            if (p >= end)
                return NULL;
            if (*p == close)
                return p + 1;
            if (*p != ',')
                return NULL;
            p++;
        }
    }
    /* number, true, false, null: up to the next delimiter */
    const char *s = p;
    while (p < end && *p != ',' && *p != '}' && *p != ']' && *p != ' ' && *p != '\n' &&
           *p != '\r' && *p != '\t')
        p++;
    return p > s ? p : NULL;
}

const char *js_skip_value(const char *p, const char *end)
{
    return skip_value_depth(p, end, 0);
}

int js_members(const char *obj, size_t len, const char *const *keys, int n, js_span *out)
{
    const char *end = obj + len;
    const char *p = skip_ws(obj, end);
    int found = 0;
    for (int i = 0; i < n; i++) {
        out[i].p = NULL;
        out[i].len = 0;
    }
    if (p >= end || *p != '{')
        return -1;
    p = skip_ws(p + 1, end);
    if (p < end && *p == '}')
        return 0;
    for (;;) {
        p = skip_ws(p, end);
        if (p >= end || *p != '"')
            return -1;
        const char *k = p + 1;
        p = skip_string(p, end);
        if (!p)
            return -1;
        size_t klen = (size_t)(p - 1 - k);
        int match = -1;
        for (int i = 0; i < n; i++) {
            if (!out[i].p && strlen(keys[i]) == klen && memcmp(k, keys[i], klen) == 0) {
                match = i;
                break;
            }
        }
        p = skip_ws(p, end);
        if (p >= end || *p != ':')
            return -1;
        const char *v = skip_ws(p + 1, end);
        p = js_skip_value(v, end);
        if (!p)
            return -1;
        if (match >= 0) {
            out[match].p = v;
            out[match].len = (size_t)(p - v);
            if (++found == n)
                return found; /* no need to scan the rest */
        }
        p = skip_ws(p, end);
        if (p >= end)
            return -1;
        if (*p == '}')
            return found;
        if (*p != ',')
            return -1;
        p++;
    }
}

int js_member(const char *obj, size_t len, const char *key, js_span *out)
{
    const char *keys[1] = {key};
    int rc = js_members(obj, len, keys, 1, out);
    return rc < 0 ? -1 : rc;
}

int js_int(js_span v, int64_t *out)
{
    if (v.len == 0 || v.len > 20)
        return -1;
    size_t i = 0;
    int neg = 0;
    if (v.p[0] == '-') {
        neg = 1;
        i = 1;
        if (v.len == 1)
            return -1;
    }
    int64_t x = 0;
    for (; i < v.len; i++) {
        if (v.p[i] < '0' || v.p[i] > '9')
            return -1;
        if (x > (INT64_MAX - (v.p[i] - '0')) / 10)
            return -1;
        x = x * 10 + (v.p[i] - '0');
    }
    *out = neg ? -x : x;
    return 0;
}

int js_str_eq(js_span v, const char *s)
{
    size_t n = strlen(s);
    return v.len == n + 2 && v.p[0] == '"' && memcmp(v.p + 1, s, n) == 0 && v.p[n + 1] == '"';
}

int js_str_copy(js_span v, char *out, size_t out_size)
{
    if (v.len < 2 || v.p[0] != '"' || v.p[v.len - 1] != '"' || v.len - 2 >= out_size)
        return -1;
    memcpy(out, v.p + 1, v.len - 2);
    out[v.len - 2] = '\0';
    return (int)(v.len - 2);
}
