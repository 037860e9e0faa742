/* json_scan.h - allocation-free lookups in JSON text for the load generator.
 *
 * The generator reads tens of thousands of server messages a second and only
 * needs a few members of each (type, id, seq, a state's step), so it scans
 * the text instead of building a tree: one pass that skips over values it
 * does not need. Owns nothing: spans point into the caller's text. It checks
 * structure only as far as it must to skip values correctly; it is not a
 * validator (the server's output is trusted to be JSON).
 *
 * Threads: pure functions, callable from any thread. */
#ifndef ATTUNE_BENCH_JSON_SCAN_H
#define ATTUNE_BENCH_JSON_SCAN_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    const char *p; /* first byte of the value (a quote for strings) */
    size_t len;    /* bytes of the whole value, quotes included */
} js_span;

/* Finds member key (no escapes in it) in the object whose text starts at
 * obj (leading whitespace allowed). Returns 1 and the value's span when
 * found, 0 when absent, -1 when the text is not a well-formed object. */
int js_member(const char *obj, size_t len, const char *key, js_span *out);

/* One pass over the object for n keys: out[i] gets the span of keys[i] (p
 * NULL when absent). Returns how many were found, or -1 when malformed. */
int js_members(const char *obj, size_t len, const char *const *keys, int n, js_span *out);

/* Integer value of a span (no fraction or exponent). 0 or -1. */
int js_int(js_span v, int64_t *out);

/* 1 when the span is the JSON string s (compared without unescaping). */
int js_str_eq(js_span v, const char *s);

/* Copies a string value's raw contents (between the quotes, escapes left as
 * they are) into out. Returns its length, or -1 when v is not a string or
 * out is too small. */
int js_str_copy(js_span v, char *out, size_t out_size);

/* Skips one value starting at p (after whitespace); returns the end of the
 * value or NULL when malformed. Exposed for tests. */
const char *js_skip_value(const char *p, const char *end);

#endif
