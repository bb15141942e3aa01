/*
 * expand.c - ${VAR} expansion of plan values from the environment.
 *
 * Only "${NAME}" is special ("$HOME" and "$" alone stay as written, so a
 * password holding '$' needs no escaping); "$${" gives a literal "${".
 * Messages name the variable and the key, never a value.
 */
#include <stdlib.h>
#include <string.h>

#include "dgm/buf.h"
#include "internal.h"

bool dgm_plan_is_var_name(const char *s, size_t len)
{
	if (len == 0 || (s[0] >= '0' && s[0] <= '9'))
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (!(c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9')))
			return false;
	}
	return true;
}

/* Append the value of ${name} (name has len bytes) to b. */
static int put_var(dgm_buf *b, const char *name, size_t len, const char *where, const char *key,
		   dgm_error *err)
{
	char var[256];
	const char *value;

	if (!dgm_plan_is_var_name(name, len) || len >= sizeof(var)) {
		dgm_error_set(err, DGM_E_PLAN, "%s: bad variable name '%.*s' in '%s'", where,
			      (int)(len > 64 ? 64 : len), name, key);
		dgm_error_hint(err, "a name is letters, digits and '_', not starting with a digit; "
			       "forms such as ${VAR:-default} are not supported");
		return -1;
	}
	memcpy(var, name, len);
	var[len] = '\0';
	value = getenv(var);
	if (!value) {
		dgm_error_set(err, DGM_E_PLAN,
			      "%s: environment variable '%s' is not set (used in '%s')", where, var,
			      key);
		dgm_error_hint(err, "export %s=... or remove it from the plan", var);
		return -1;
	}
	dgm_buf_puts(b, value);
	return 0;
}

int dgm_plan_expand(char **out, const char *in, const char *where, const char *key,
		    dgm_error *err)
{
	dgm_buf b = DGM_BUF_INIT;
	const char *p = in;

	*out = NULL;
	while (*p) {
		const char *end;

		if (!strncmp(p, "$${", 3)) {
			dgm_buf_puts(&b, "${");
			p += 3;
			continue;
		}
		if (strncmp(p, "${", 2)) {
			dgm_buf_putc(&b, *p++);
			continue;
		}
		end = strchr(p + 2, '}');
		if (!end) {
			dgm_error_set(err, DGM_E_PLAN, "%s: '${' without a closing '}' in '%s'", where,
				      key);
			dgm_error_hint(err, "close the variable name with '}', or write '$${' for "
				       "a literal '${'");
			goto fail;
		}
		if (put_var(&b, p + 2, (size_t)(end - p - 2), where, key, err))
			goto fail;
		p = end + 1;
	}
	*out = dgm_buf_detach(&b);
	return 0;
fail:
	dgm_buf_free(&b);
	return -1;
}
