/*
 * env.c - the plan's environment: required variables and the secrets
 * that must never be printed (PRODUCT.md, "Guarantees").
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "dgm/buf.h"
#include "dgm/log.h"
#include "internal.h"

int dgm_plan_check_env(const dgm_plan *plan, dgm_error *err)
{
	const dgm_plan_mark *m = dgm_plan_where(plan, "environment.required");
	dgm_buf names = DGM_BUF_INIT, where = DGM_BUF_INIT;
	size_t missing = 0;

	for (size_t i = 0; i < plan->required_env.count; i++) {
		const char *name = plan->required_env.items[i];
		const char *value = getenv(name);

		if (value && *value)
			continue;
		dgm_buf_printf(&names, "%s'%s'", missing ? ", " : "", name);
		missing++;
	}
	if (missing) {
		if (m)
			dgm_buf_printf(&where, "%s:%d:%d", plan->path, m->line, m->column);
		else
			dgm_buf_puts(&where, plan->path ? plan->path : "plan");
		if (missing == 1)
			dgm_error_set(err, DGM_E_PLAN, "%s: required environment variable %s is "
				      "not set", where.ptr, names.ptr);
		else
			dgm_error_set(err, DGM_E_PLAN, "%s: required environment variables are "
				      "not set: %s", where.ptr, names.ptr);
		dgm_error_hint(err, "export %s before running dgmigrate (an empty value counts "
			       "as unset; values are never printed)",
			       missing == 1 ? "it" : "them");
	}
	dgm_buf_free(&names);
	dgm_buf_free(&where);
	return missing ? -1 : 0;
}

/* The password as written in a postgresql:// URL, percent-encoding
 * included: logs and child errors may quote the URL itself, where the
 * decoded form PQconninfoParse gives does not appear. */
static void add_raw_url_password(const char *url)
{
	const char *p, *at, *colon;
	size_t auth;

	if (!strncmp(url, "postgresql://", 13))
		p = url + 13;
	else if (!strncmp(url, "postgres://", 11))
		p = url + 11;
	else
		return;
	/* Like libpq: the user info ends at the first '@' before any '/'. */
	auth = strcspn(p, "@/");
	if (p[auth] != '@')
		return;
	at = p + auth;
	colon = memchr(p, ':', auth);
	if (colon && at - colon > 1) {
		char *pw = dgm_xstrndup(colon + 1, (size_t)(at - colon - 1));

		dgm_log_add_secret(pw);
		free(pw);
	}
}

static void add_url_password(const char *url)
{
	char *errmsg = NULL;
	PQconninfoOption *opts = PQconninfoParse(url, &errmsg);

	if (opts) {
		for (PQconninfoOption *o = opts; o->keyword; o++)
			if (!strcmp(o->keyword, "password") && o->val && *o->val)
				dgm_log_add_secret(o->val);
		PQconninfoFree(opts);
	}
	if (errmsg)
		PQfreemem(errmsg);
	/* Also when the URL does not parse: it may still be printed. */
	add_raw_url_password(url);
}

void dgm_plan_register_secrets(const dgm_plan *plan)
{
	if (plan->database.url)
		add_url_password(plan->database.url);
	for (size_t i = 0; i < plan->required_env.count; i++) {
		const char *value = getenv(plan->required_env.items[i]);

		if (value)
			dgm_log_add_secret(value);
	}
}

/* The name of the required variable whose value appears in s, or NULL. */
static const char *secret_in(const dgm_plan *plan, const char *s)
{
	for (size_t i = 0; i < plan->required_env.count; i++) {
		const char *value = getenv(plan->required_env.items[i]);

		if (value && strlen(value) >= 3 && strstr(s, value))
			return plan->required_env.items[i];
	}
	return NULL;
}

static int check_list(const dgm_plan *plan, const dgm_strlist *argv, const char *key,
		      dgm_error *err)
{
	for (size_t i = 0; i < argv->count; i++) {
		const char *name = secret_in(plan, argv->items[i]);

		if (!name)
			continue;
		dgm_error_set(err, DGM_E_PLAN, "%s: '%s' would put the value of required "
			      "variable '%s' in a child's argv, which every user can read",
			      plan->path, key, name);
		dgm_error_hint(err, "leave it out of the command: the child inherits the "
			       "environment, so let it read $%s itself", name);
		return -1;
	}
	return 0;
}

static int check_hooks(const dgm_plan *plan, const dgm_plan_hooks *h, const char *which,
		       dgm_error *err)
{
	char key[64];

	for (size_t i = 0; i < h->count; i++) {
		snprintf(key, sizeof(key), "hooks.%s[%zu].run", which, i);
		if (check_list(plan, &h->items[i].argv, key, err))
			return -1;
	}
	return 0;
}

int dgm_plan_check_argv_secrets(const dgm_plan *plan, dgm_error *err)
{
	if (check_list(plan, &plan->alembic.command, "alembic.command", err) ||
	    check_list(plan, &plan->alembic.x, "alembic.x", err) ||
	    check_hooks(plan, &plan->hooks.before, "before", err) ||
	    check_hooks(plan, &plan->hooks.after, "after", err))
		return -1;
	return 0;
}
