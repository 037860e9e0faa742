#include "check.h"

#include <stdlib.h>

int check_passed, check_failed;

int check_done(const char *suite)
{
    printf("%s: %d passed, %d failed\n", suite, check_passed, check_failed);
    return check_failed == 0 ? 0 : 1;
}

char *check_read_file(const char *path, size_t *len_out)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    if (fseek(f, 0, SEEK_END) != 0) {
        fclose(f);
        return NULL;
    }
    long n = ftell(f);
    if (n < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return NULL;
    }
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf) {
        buf[n] = '\0';
        if (len_out)
            *len_out = (size_t)n;
    }
    return buf;
}

void check_str(const char *file, int line, const char *a, const char *b)
{
    if (a && b && strcmp(a, b) == 0) {
        check_passed++;
        return;
    }
    check_failed++;
    fprintf(stderr, "%s:%d: CHECK failed: '%s' != '%s'\n", file, line, a ? a : "(null)",
            b ? b : "(null)");
}
