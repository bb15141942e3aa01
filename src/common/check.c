/* check.c - checks reported together, as a list. */
#include <stdarg.h>
#include <stdio.h>

#include "dgm/buf.h"
#include "dgm/check.h"
#include "dgm/log.h"

static void event(const char *name, const char *status, const char *detail, const char *hint)
{
	dgm_buf f = DGM_BUF_INIT;

	dgm_buf_puts(&f, "\"name\":");
	dgm_buf_json_str(&f, name);
	dgm_buf_puts(&f, ",\"status\":");
	dgm_buf_json_str(&f, status);
	dgm_buf_puts(&f, ",\"detail\":");
	dgm_buf_json_str(&f, detail);
	if (hint && *hint) {
		dgm_buf_puts(&f, ",\"hint\":");
		dgm_buf_json_str(&f, hint);
	}
	dgm_event("check", dgm_buf_cstr(&f));
	dgm_buf_free(&f);
}

void dgm_check_ok(dgm_checklist *cl, const char *name, const char *fmt, ...)
{
	dgm_buf b = DGM_BUF_INIT;
	va_list ap;

	va_start(ap, fmt);
	dgm_buf_vprintf(&b, fmt, ap);
	va_end(ap);
	cl->total++;
	dgm_info("  ok    %-12s %s", name, dgm_buf_cstr(&b));
	event(name, "ok", dgm_buf_cstr(&b), NULL);
	dgm_buf_free(&b);
}

/* Usage and plan problems outrank run failures: the user fixes those first. */
static int severity(dgm_code c)
{
	return c == DGM_E_PLAN || c == DGM_E_USAGE ? 2 : c == DGM_OK ? 0 : 1;
}

void dgm_check_fail(dgm_checklist *cl, const char *name, const dgm_error *e)
{
	cl->total++;
	cl->failed++;
	if (severity(e->code) > severity(cl->code)) {
		cl->code = e->code;
		snprintf(cl->first, sizeof(cl->first), "%.500s", e->msg);
	}
	dgm_info("  FAIL  %-12s %s", name, e->msg);
	if (e->hint[0])
		dgm_info("        %-12s HINT: %s", "", e->hint);
	event(name, "fail", e->msg, e->hint);
}

void dgm_check_skip(dgm_checklist *cl, const char *name, const char *why)
{
	cl->total++;
	dgm_info("  skip  %-12s %s", name, why);
	event(name, "skip", why, NULL);
}

int dgm_check_finish(const dgm_checklist *cl, const char *what, dgm_error *err)
{
	if (!cl->failed)
		return 0;
	if (cl->failed == 1)
		return dgm_error_set(err, cl->code, "%s failed: %s", what, cl->first);
	return dgm_error_set(err, cl->code, "%s failed: %d of %d checks failed, first: %s", what,
			     cl->failed, cl->total, cl->first);
}
