/* buf.h - a growable byte buffer the core writes text into (the state
 * serializer, state.h). The caller owns the buffer: start it zeroed, reuse it
 * (set len to 0), and free its data with att_buf_free. Any thread; one
 * buffer per writer. */
#ifndef ATTUNE_BUF_H
#define ATTUNE_BUF_H

#include <stddef.h>

typedef struct {
    char *data; /* NUL-terminated after every write; NULL until the first */
    size_t len, cap;
} att_buf;

/* Makes room for `more` bytes after len, plus a NUL. Returns 0, or -1 when
 * the buffer cannot grow (it is unchanged then). */
int att_buf_reserve(att_buf *b, size_t more);

/* Frees data and leaves the buffer empty and reusable. */
void att_buf_free(att_buf *b);

#endif
