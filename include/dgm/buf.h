/*
 * buf.h - a growable, always NUL-terminated byte buffer.
 * Allocation failure aborts: dgmigrate cannot do anything useful
 * without memory, and checking every append would hide the logic.
 */
#ifndef DGM_BUF_H
#define DGM_BUF_H

#include <stdarg.h>
#include <stddef.h>

#include "dgm/error.h"

typedef struct dgm_buf {
	char *ptr;    /* never NULL after the first append; "" when empty */
	size_t len;
	size_t cap;
} dgm_buf;

#define DGM_BUF_INIT { NULL, 0, 0 }

void dgm_buf_put(dgm_buf *b, const void *data, size_t len);
void dgm_buf_puts(dgm_buf *b, const char *s);
void dgm_buf_putc(dgm_buf *b, char c);
void dgm_buf_printf(dgm_buf *b, const char *fmt, ...) DGM_PRINTF(2, 3);
void dgm_buf_vprintf(dgm_buf *b, const char *fmt, va_list ap);
/* Append s as a JSON string literal, quotes included. */
void dgm_buf_json_str(dgm_buf *b, const char *s);
void dgm_buf_clear(dgm_buf *b);
/* The contents as a C string ("" for an untouched buffer). */
const char *dgm_buf_cstr(const dgm_buf *b);
/* Hand the allocation to the caller (who frees it); b is reset. */
char *dgm_buf_detach(dgm_buf *b);
void dgm_buf_free(dgm_buf *b);

/* Memory helpers that abort with a message on exhaustion. */
void *dgm_xmalloc(size_t n);
void *dgm_xcalloc(size_t n, size_t size);
void *dgm_xrealloc(void *p, size_t n);
/* Room for `need` elements of `size` bytes in p, whose room for *cap is
 * doubled as needed: appending one at a time costs linear time, also
 * where realloc always copies (sanitizers). */
void *dgm_xgrow(void *p, size_t *cap, size_t need, size_t size);
char *dgm_xstrdup(const char *s);
/* Copies exactly n bytes (unlike strndup, it does not stop at a NUL). */
char *dgm_xstrndup(const char *s, size_t n);
char *dgm_xasprintf(const char *fmt, ...) DGM_PRINTF(1, 2);

/* Sort n strings in strcmp (byte) order, in place. */
void dgm_sort_strings(const char **items, size_t n);

/* Read a whole file into b. */
int dgm_buf_read_file(dgm_buf *b, const char *path, dgm_error *err);

/* "a, b, c", or `empty` for no item (a list of revisions: "base"). */
char *dgm_strs_join(char *const *v, size_t n, const char *empty);

#endif
