/* paths.c - absolute, lexically normalized paths for the plan. */
#include <string.h>

#include "dgm/buf.h"
#include "internal.h"

/* Append component [s, s+len) to the normalized absolute path in b. */
static void push_component(dgm_buf *b, const char *s, size_t len)
{
	if (len == 0 || (len == 1 && s[0] == '.'))
		return;
	if (len == 2 && s[0] == '.' && s[1] == '.') {
		/* Lexical: the plan's folder is already a real path, so ".."
		 * here means the parent the user sees. "/.." stays "/". */
		char *slash = strrchr(b->ptr, '/');

		b->len = slash && slash != b->ptr ? (size_t)(slash - b->ptr) : 0;
		b->ptr[b->len] = '\0';
		return;
	}
	dgm_buf_putc(b, '/');
	dgm_buf_put(b, s, len);
}

static void push_path(dgm_buf *b, const char *p)
{
	while (*p) {
		size_t len = strcspn(p, "/");

		push_component(b, p, len);
		p += len;
		while (*p == '/')
			p++;
	}
}

char *dgm_plan_path_join(const char *base, const char *path)
{
	dgm_buf b = DGM_BUF_INIT;

	dgm_buf_puts(&b, "");
	if (path[0] != '/')
		push_path(&b, base);
	push_path(&b, path);
	if (b.len == 0)
		dgm_buf_putc(&b, '/');
	return dgm_buf_detach(&b);
}
