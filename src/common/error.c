/* error.c - the error value every fallible function fills. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "dgm/error.h"

static void vset(char *dst, size_t cap, const char *fmt, va_list ap)
{
	int n = vsnprintf(dst, cap, fmt, ap);

	if (n < 0)
		dst[0] = '\0';
}

int dgm_error_set(dgm_error *err, dgm_code code, const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return -1;
	err->code = code;
	err->hint[0] = '\0';
	va_start(ap, fmt);
	vset(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	return -1;
}

int dgm_error_errno(dgm_error *err, dgm_code code, const char *fmt, ...)
{
	int saved = errno;
	size_t len;
	va_list ap;

	if (!err)
		return -1;
	err->code = code;
	err->hint[0] = '\0';
	va_start(ap, fmt);
	vset(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	len = strlen(err->msg);
	snprintf(err->msg + len, sizeof(err->msg) - len, ": %s", strerror(saved));
	errno = saved;
	return -1;
}

void dgm_error_hint(dgm_error *err, const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return;
	va_start(ap, fmt);
	vset(err->hint, sizeof(err->hint), fmt, ap);
	va_end(ap);
}

void dgm_error_prefix(dgm_error *err, const char *fmt, ...)
{
	char joined[2 * DGM_ERROR_MSG_MAX + 2];
	size_t n;
	va_list ap;

	if (!err)
		return;
	va_start(ap, fmt);
	vset(joined, DGM_ERROR_MSG_MAX, fmt, ap);
	va_end(ap);
	n = strlen(joined);
	snprintf(joined + n, sizeof(joined) - n, ": %s", err->msg);
	/* keep the start: the context and the beginning of the cause */
	snprintf(err->msg, sizeof(err->msg), "%.*s", DGM_ERROR_MSG_MAX - 1, joined);
}

void dgm_error_clear(dgm_error *err)
{
	if (!err)
		return;
	err->code = DGM_OK;
	err->msg[0] = '\0';
	err->hint[0] = '\0';
}

int dgm_error_exit_code(const dgm_error *err)
{
	if (!err)
		return 1;
	switch (err->code) {
	case DGM_OK:
		return 0;
	case DGM_E_USAGE:
	case DGM_E_PLAN:
	case DGM_E_NOT_BUILT:
		return 2;
	case DGM_E_LOCK:
		return 3;
	default:
		return 1;
	}
}

const char *dgm_error_name(dgm_code code)
{
	static const char *const names[] = {
		[DGM_OK] = "ok",
		[DGM_E_USAGE] = "usage error",
		[DGM_E_PLAN] = "plan error",
		[DGM_E_NOT_BUILT] = "not available",
		[DGM_E_LOCK] = "lock error",
		[DGM_E_RUN] = "run failed",
		[DGM_E_IO] = "file error",
		[DGM_E_NOMEM] = "out of memory",
		[DGM_E_PG] = "database error",
		[DGM_E_GIT] = "git error",
		[DGM_E_ARCHIVE] = "archive error",
		[DGM_E_CHILD] = "child process error",
		[DGM_E_ALEMBIC] = "alembic error",
	};

	if ((size_t)code >= sizeof(names) / sizeof(names[0]) || !names[code])
		return "error";
	return names[code];
}
