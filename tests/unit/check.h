/* check.h - the unit tests' tiny assertion kit. A failed CHECK prints where
 * and why and counts the failure; check_done() prints "N passed, N failed"
 * and returns the process exit code. */
#ifndef ATTUNE_CHECK_H
#define ATTUNE_CHECK_H

#include <stdio.h>
#include <string.h>

extern int check_passed, check_failed;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (cond) {                                                                                \
            check_passed++;                                                                        \
        } else {                                                                                   \
            check_failed++;                                                                        \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);               \
        }                                                                                          \
    } while (0)

#define CHECK_MSG(cond, ...)                                                                       \
    do {                                                                                           \
        if (cond) {                                                                                \
            check_passed++;                                                                        \
        } else {                                                                                   \
            check_failed++;                                                                        \
            fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond);               \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
        }                                                                                          \
    } while (0)

#define CHECK_STR(a, b) check_str(__FILE__, __LINE__, (a), (b))

#define CHECK_INT(a, b)                                                                            \
    CHECK_MSG((long long)(a) == (long long)(b), "%lld != %lld", (long long)(a), (long long)(b))

int check_done(const char *suite);
void check_str(const char *file, int line, const char *a, const char *b);

/* Reads a whole file into a malloc'd NUL-terminated buffer (NULL on error). */
char *check_read_file(const char *path, size_t *len_out);

#endif
