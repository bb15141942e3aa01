/* result.c - the verified items of a run, and small pure helpers. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "dgm/buf.h"
#include "dgm/log.h"
#include "dgm/verify.h"

static void event(const dgm_verify_item *it)
{
	dgm_buf f = DGM_BUF_INIT;

	dgm_buf_puts(&f, "\"name\":");
	dgm_buf_json_str(&f, it->name);
	dgm_buf_puts(&f, ",\"status\":");
	dgm_buf_json_str(&f, it->ok ? "ok" : "fail");
	dgm_buf_puts(&f, ",\"evidence\":");
	dgm_buf_json_str(&f, it->evidence);
	dgm_event("verify", dgm_buf_cstr(&f));
	dgm_buf_free(&f);
}

/* Redact into a fresh string: the report is written from these, and it
 * must not hold a secret even when a hook printed one. */
static char *redacted(const char *s)
{
	dgm_buf b = DGM_BUF_INIT;

	dgm_redact(s, &b);
	return dgm_buf_detach(&b);
}

void dgm_verify_add(dgm_verify_result *res, const char *name, bool ok, const char *fmt, ...)
{
	dgm_verify_item it;
	dgm_buf ev = DGM_BUF_INIT;
	va_list ap;

	va_start(ap, fmt);
	dgm_buf_vprintf(&ev, fmt, ap);
	va_end(ap);
	it.name = redacted(name);
	it.ok = ok;
	it.evidence = redacted(dgm_buf_cstr(&ev));
	dgm_buf_free(&ev);
	dgm_info("  %-5s %s: %s", ok ? "ok" : "FAIL", it.name, it.evidence);
	event(&it);
	if (!res) {
		free(it.name);
		free(it.evidence);
		return;
	}
	res->items = dgm_xrealloc(res->items, (res->count + 1) * sizeof(*res->items));
	res->items[res->count++] = it;
	if (!ok)
		res->failed++;
}

void dgm_verify_result_free(dgm_verify_result *res)
{
	if (!res)
		return;
	for (size_t i = 0; i < res->count; i++) {
		free(res->items[i].name);
		free(res->items[i].evidence);
	}
	free(res->items);
	res->items = NULL;
	res->count = 0;
	res->failed = 0;
}

char *dgm_verify_url_redact(const char *url)
{
	const char *scheme = strstr(url, "://");
	const char *auth = scheme ? scheme + 3 : url;
	size_t auth_len = strcspn(auth, "/?#");
	const char *at = memrchr(auth, '@', auth_len);
	dgm_buf b = DGM_BUF_INIT;

	dgm_buf_put(&b, url, (size_t)(auth - url));
	if (at) {
		auth_len -= (size_t)(at + 1 - auth);
		auth = at + 1;
	}
	/* the host, then the path up to the query string or fragment */
	dgm_buf_put(&b, auth, auth_len + strcspn(auth + auth_len, "?#"));
	return dgm_buf_detach(&b);
}

static bool contains(char *const *list, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(list[i], s))
			return true;
	return false;
}

bool dgm_verify_same_set(char *const *a, size_t na, char *const *b, size_t nb)
{
	for (size_t i = 0; i < na; i++)
		if (!contains(b, nb, a[i]))
			return false;
	for (size_t i = 0; i < nb; i++)
		if (!contains(a, na, b[i]))
			return false;
	return true;
}
