/*
 * expand.c - ${VAR} expansion of plan values from the environment.
 *
 * Only "${NAME}" is special ("$HOME" and "$" alone stay as written, so a
 * password holding '$' needs no escaping); "$${" gives a literal "${".
 * alembic.env and alembic.x also hold ${target.NAME} placeholders for
 * the database a command aims alembic at: the load keeps them (and keeps
 * "$${" escaped), dgm_plan_target_expand fills them in at run time.
 * Messages name the variable and the key, never a value.
 */
#include <stdio.h>
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

static const char *const target_names[] = { "url", "host", "port", "user", "password",
					     "dbname", NULL };

/* ${target.NAME}, kept as written for dgm_plan_target_expand at run time. */
static int put_target(dgm_buf *b, const char *name, size_t len, const char *where,
		      const char *key, dgm_error *err)
{
	char word[64];
	const char *best;

	snprintf(word, sizeof(word), "%.*s", (int)(len < 63 ? len : 63), name);
	for (size_t i = 0; target_names[i]; i++) {
		if (!strcmp(word, target_names[i])) {
			dgm_buf_printf(b, "${target.%s}", word);
			return 0;
		}
	}
	best = dgm_plan_suggest(word, target_names);
	if (best)
		dgm_error_set(err, DGM_E_PLAN, "%s: unknown placeholder '${target.%s}' in '%s'; did "
			      "you mean '${target.%s}'?", where, word, key, best);
	else
		dgm_error_set(err, DGM_E_PLAN, "%s: unknown placeholder '${target.%s}' in '%s'",
			      where, word, key);
	dgm_error_hint(err, "the placeholders are ${target.url}, ${target.host}, ${target.port}, "
		       "${target.user}, ${target.password} and ${target.dbname}");
	return -1;
}

/* Append the value of ${name} (name has len bytes) to b; with keep, a
 * "${" in the value is escaped so that the run-time pass leaves it. */
static int put_var(dgm_buf *b, const char *name, size_t len, const char *where, const char *key,
		   bool keep, dgm_error *err)
{
	char var[256];
	const char *value;

	if (len > 7 && !strncmp(name, "target.", 7)) {
		if (keep)
			return put_target(b, name + 7, len - 7, where, key, err);
		dgm_error_set(err, DGM_E_PLAN, "%s: '${%.*s}' in '%s': the ${target.*} placeholders "
			      "are for alembic.env and alembic.x only", where,
			      (int)(len > 64 ? 64 : len), name, key);
		dgm_error_hint(err, "use ${VAR} for an environment variable here");
		return -1;
	}
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
	for (const char *p = value; keep && *p; p++) {
		if (p[0] == '$' && p[1] == '{')
			dgm_buf_putc(b, '$');
		dgm_buf_putc(b, *p);
	}
	if (!keep)
		dgm_buf_puts(b, value);
	return 0;
}

static int expand(char **out, const char *in, const char *where, const char *key, bool keep,
		  dgm_error *err)
{
	dgm_buf b = DGM_BUF_INIT;
	const char *p = in;

	*out = NULL;
	while (*p) {
		const char *end;

		if (!strncmp(p, "$${", 3)) {
			dgm_buf_puts(&b, keep ? "$${" : "${");
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
		if (put_var(&b, p + 2, (size_t)(end - p - 2), where, key, keep, err))
			goto fail;
		p = end + 1;
	}
	*out = dgm_buf_detach(&b);
	return 0;
fail:
	dgm_buf_free(&b);
	return -1;
}

int dgm_plan_expand(char **out, const char *in, const char *where, const char *key,
		    dgm_error *err)
{
	return expand(out, in, where, key, false, err);
}

int dgm_plan_expand_keep(char **out, const char *in, const char *where, const char *key,
			 dgm_error *err)
{
	return expand(out, in, where, key, true, err);
}

char *dgm_plan_target_expand(const char *s, const dgm_plan_target *t)
{
	const char *values[] = { t->url, t->host, t->port, t->user, t->password, t->dbname };
	dgm_buf b = DGM_BUF_INIT;

	while (*s) {
		size_t i;

		if (!strncmp(s, "$${", 3)) {
			dgm_buf_puts(&b, "${");
			s += 3;
			continue;
		}
		for (i = 0; target_names[i]; i++) {
			size_t n = strlen(target_names[i]);

			if (!strncmp(s, "${target.", 9) && !strncmp(s + 9, target_names[i], n) &&
			    s[9 + n] == '}') {
				dgm_buf_puts(&b, values[i] ? values[i] : "");
				s += 10 + n;
				break;
			}
		}
		if (!target_names[i])
			dgm_buf_putc(&b, *s++);
	}
	return dgm_buf_detach(&b);
}
