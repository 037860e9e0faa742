/* buf.c - the growable text buffer (buf.h). */
#include "attune/buf.h"

#include <stdlib.h>

int att_buf_reserve(att_buf *b, size_t more)
{
    if (b->len + more + 1 <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 1024;
    while (cap < b->len + more + 1)
        cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p)
        return -1;
    b->data = p;
    b->cap = cap;
    return 0;
}

void att_buf_free(att_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}
