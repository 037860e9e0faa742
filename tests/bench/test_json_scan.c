/* test_json_scan.c - unit checks of the load generator's JSON member
 * scanner: lookups past nested values and escaped strings, multi-key scans,
 * integers and malformed text. */
#include "check.h"
#include "json_scan.h"

#include <string.h>

static js_span get(const char *text, const char *key, int *rc)
{
    js_span v = {0};
    *rc = js_member(text, strlen(text), key, &v);
    return v;
}

int main(void)
{
    const char *state =
        " {\"type\":\"state\",\"note\":\"a \\\"quoted\\\" } brace\",\"ruptures\":[{\"id\":1,"
        "\"evidence\":[3,4]},[],{}],\"step\":{\"id\":\"reflect\",\"index\":4,\"actor\":"
        "\"partner_b\",\"inputs\":[{\"name\":\"x\"}]},\"seq\":  44 ,\"ended_reason\":null,"
        "\"neg\":-7,\"ok\":true}";
    int rc;
    js_span v = get(state, "seq", &rc);
    int64_t x = 0;
    CHECK_INT(rc, 1);
    CHECK_INT(js_int(v, &x), 0);
    CHECK_INT(x, 44);
    v = get(state, "neg", &rc);
    CHECK(rc == 1 && js_int(v, &x) == 0 && x == -7);
    v = get(state, "type", &rc);
    CHECK(rc == 1 && js_str_eq(v, "state") && !js_str_eq(v, "stat"));
    v = get(state, "ended_reason", &rc);
    CHECK(rc == 1 && v.len == 4 && memcmp(v.p, "null", 4) == 0);
    v = get(state, "ok", &rc);
    CHECK(rc == 1 && v.len == 4);
    get(state, "index", &rc); /* only top-level members are found */
    CHECK_INT(rc, 0);
    v = get(state, "step", &rc);
    CHECK(rc == 1 && v.p[0] == '{' && v.p[v.len - 1] == '}');
    js_span inner;
    CHECK_INT(js_member(v.p, v.len, "index", &inner), 1);
    CHECK(js_int(inner, &x) == 0 && x == 4);
    CHECK_INT(js_member(v.p, v.len, "actor", &inner), 1);
    char text[32];
    CHECK_INT(js_str_copy(inner, text, sizeof text), 9);
    CHECK_STR(text, "partner_b");
    CHECK_INT(js_str_copy(inner, text, 5), -1); /* too small */

    const char *keys[] = {"ok", "type", "missing", "seq"};
    js_span out[4];
    CHECK_INT(js_members(state, strlen(state), keys, 4, out), 3);
    CHECK(out[0].p && out[1].p && !out[2].p && out[3].p);

    /* not integers */
    js_span s = {"1.5", 3};
    CHECK_INT(js_int(s, &x), -1);
    s = (js_span){"\"7\"", 3};
    CHECK_INT(js_int(s, &x), -1);
    s = (js_span){"99999999999999999999", 20};
    CHECK_INT(js_int(s, &x), -1);
    s = (js_span){"-", 1};
    CHECK_INT(js_int(s, &x), -1);

    /* malformed objects */
    get("[1,2]", "a", &rc);
    CHECK_INT(rc, -1);
    get("{\"a\":1", "b", &rc);
    CHECK_INT(rc, -1);
    get("{\"a\" 1}", "a", &rc);
    CHECK_INT(rc, -1);
    get("{\"a\":\"unterminated}", "b", &rc);
    CHECK_INT(rc, -1);
    get("{\"a\":{\"b\":[1,2}}", "c", &rc);
    CHECK_INT(rc, -1);
    get("{}", "a", &rc);
    CHECK_INT(rc, 0);
    char deep[200];
    memset(deep, '[', sizeof deep);
    CHECK(js_skip_value(deep, deep + sizeof deep) == NULL);
    return check_done("test_json_scan");
}
