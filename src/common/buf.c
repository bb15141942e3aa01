/* buf.c - growable buffer and allocation helpers. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dgm/buf.h"

static void oom(size_t n)
{
	fprintf(stderr, "dgmigrate: error: out of memory (allocating %zu bytes)\n", n);
	abort();
}

void *dgm_xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p)
		oom(n);
	return p;
}

void *dgm_xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);

	if (!p)
		oom(n * size);
	return p;
}

void *dgm_xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);

	if (!q)
		oom(n);
	return q;
}

void *dgm_xgrow(void *p, size_t *cap, size_t need, size_t size)
{
	size_t n = *cap ? *cap : 8;

	if (need <= *cap)
		return p;
	while (n < need)
		n *= 2;
	if (n > SIZE_MAX / size)
		oom(SIZE_MAX);
	*cap = n;
	return dgm_xrealloc(p, n * size);
}

char *dgm_xstrdup(const char *s)
{
	return dgm_xstrndup(s, strlen(s));
}

char *dgm_xstrndup(const char *s, size_t n)
{
	char *p = dgm_xmalloc(n + 1);

	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

char *dgm_xasprintf(const char *fmt, ...)
{
	dgm_buf b = DGM_BUF_INIT;
	va_list ap;

	va_start(ap, fmt);
	dgm_buf_vprintf(&b, fmt, ap);
	va_end(ap);
	return dgm_buf_detach(&b);
}

static void grow(dgm_buf *b, size_t extra)
{
	size_t need = b->len + extra + 1;

	if (need <= b->cap)
		return;
	if (b->cap == 0)
		b->cap = 64;
	while (b->cap < need)
		b->cap *= 2;
	b->ptr = dgm_xrealloc(b->ptr, b->cap);
}

void dgm_buf_put(dgm_buf *b, const void *data, size_t len)
{
	grow(b, len);
	if (len)
		memcpy(b->ptr + b->len, data, len);
	b->len += len;
	b->ptr[b->len] = '\0';
}

void dgm_buf_puts(dgm_buf *b, const char *s)
{
	dgm_buf_put(b, s, strlen(s));
}

void dgm_buf_putc(dgm_buf *b, char c)
{
	dgm_buf_put(b, &c, 1);
}

void dgm_buf_vprintf(dgm_buf *b, const char *fmt, va_list ap)
{
	va_list ap2;
	int n;

	va_copy(ap2, ap);
	n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0)
		return;
	grow(b, (size_t)n);
	vsnprintf(b->ptr + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
}

void dgm_buf_printf(dgm_buf *b, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	dgm_buf_vprintf(b, fmt, ap);
	va_end(ap);
}

void dgm_buf_json_str(dgm_buf *b, const char *s)
{
	const unsigned char *p = (const unsigned char *)(s ? s : "");

	dgm_buf_putc(b, '"');
	for (; *p; p++) {
		switch (*p) {
		case '"': dgm_buf_puts(b, "\\\""); break;
		case '\\': dgm_buf_puts(b, "\\\\"); break;
		case '\n': dgm_buf_puts(b, "\\n"); break;
		case '\r': dgm_buf_puts(b, "\\r"); break;
		case '\t': dgm_buf_puts(b, "\\t"); break;
		default:
			if (*p < 0x20)
				dgm_buf_printf(b, "\\u%04x", *p);
			else
				dgm_buf_putc(b, (char)*p);
		}
	}
	dgm_buf_putc(b, '"');
}

void dgm_buf_clear(dgm_buf *b)
{
	b->len = 0;
	if (b->ptr)
		b->ptr[0] = '\0';
}

const char *dgm_buf_cstr(const dgm_buf *b)
{
	return b->ptr ? b->ptr : "";
}

char *dgm_buf_detach(dgm_buf *b)
{
	char *p = b->ptr ? b->ptr : dgm_xstrdup("");

	b->ptr = NULL;
	b->len = b->cap = 0;
	return p;
}

void dgm_buf_free(dgm_buf *b)
{
	free(b->ptr);
	b->ptr = NULL;
	b->len = b->cap = 0;
}

int dgm_buf_read_file(dgm_buf *b, const char *path, dgm_error *err)
{
	char chunk[65536];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int ret = -1;

	if (fd < 0)
		return dgm_error_errno(err, DGM_E_IO, "cannot open '%s'", path);
	for (;;) {
		ssize_t n = read(fd, chunk, sizeof(chunk));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			dgm_error_errno(err, DGM_E_IO, "cannot read '%s'", path);
			goto out;
		}
		if (n == 0)
			break;
		dgm_buf_put(b, chunk, (size_t)n);
	}
	if (!b->ptr)
		dgm_buf_puts(b, "");
	ret = 0;
out:
	close(fd);
	return ret;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

void dgm_sort_strings(const char **items, size_t n)
{
	if (n > 1)
		qsort(items, n, sizeof(*items), cmp_str);
}

char *dgm_strs_join(char *const *v, size_t n, const char *empty)
{
	dgm_buf b = DGM_BUF_INIT;

	for (size_t i = 0; i < n; i++)
		dgm_buf_printf(&b, "%s%s", i ? ", " : "", v[i]);
	if (!n)
		dgm_buf_puts(&b, empty);
	return dgm_buf_detach(&b);
}
