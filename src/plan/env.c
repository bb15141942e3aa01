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

bool dgm_plan_name_looks_secret(const char *name)
{
	static const char *const words[] = { "PASSWORD", "PASSWD", "SECRET", "TOKEN", "KEY",
					     "CREDENTIAL", NULL };

	for (size_t i = 0; words[i]; i++)
		if (strcasestr(name, words[i]))
			return true;
	return false;
}

static bool listed(const dgm_strlist *l, const char *name)
{
	for (size_t i = 0; i < l->count; i++)
		if (!strcmp(l->items[i], name))
			return true;
	return false;
}

bool dgm_plan_is_secret_var(const dgm_plan *plan, const char *name)
{
	return listed(&plan->secret_env, name) ||
	       (listed(&plan->required_env, name) && dgm_plan_name_looks_secret(name));
}

/* The password of a scheme://user:password@host URL as written (percent-
 * encoding included: logs and child errors may quote the URL itself),
 * or NULL. Like libpq: the user info ends at the first '@' before any
 * '/'. */
static char *url_password(const char *url)
{
	const char *p = strstr(url, "://"), *at, *colon;
	size_t auth;

	if (!p || strcspn(url, ":") != (size_t)(p - url))
		return NULL;
	p += 3;
	auth = strcspn(p, "@/");
	if (p[auth] != '@')
		return NULL;
	at = p + auth;
	colon = memchr(p, ':', auth);
	if (!colon || at - colon <= 1)
		return NULL;
	return dgm_xstrndup(colon + 1, (size_t)(at - colon - 1));
}

/* Call fn(name, value) for every secret value the plan names: secret
 * variables, the password of a URL held by any required or secret
 * variable, and the database URL's (name "database.url"). Stops at the
 * first nonzero return and returns it. */
typedef int (*secret_fn)(const char *name, const char *value, void *payload);

static int each_var_secret(const dgm_plan *plan, const dgm_strlist *l, secret_fn fn, void *payload)
{
	for (size_t i = 0; i < l->count; i++) {
		const char *name = l->items[i], *value = getenv(name);
		char *pw = value ? url_password(value) : NULL;
		int ret = 0;

		if (value && dgm_plan_is_secret_var(plan, name))
			ret = fn(name, value, payload);
		if (!ret && pw)
			ret = fn(name, pw, payload);
		free(pw);
		if (ret)
			return ret;
	}
	return 0;
}

static int each_secret(const dgm_plan *plan, secret_fn fn, void *payload)
{
	char *pw = plan->database.url ? url_password(plan->database.url) : NULL;
	int ret = pw ? fn("database.url", pw, payload) : 0;

	free(pw);
	if (!ret)
		ret = each_var_secret(plan, &plan->required_env, fn, payload);
	if (!ret)
		ret = each_var_secret(plan, &plan->secret_env, fn, payload);
	return ret;
}

static int register_one(const char *name, const char *value, void *payload)
{
	dgm_log_add_secret(value);
	return 0;
}

/* The database URL's password as libpq decodes it (key=value conninfo
 * too), beside the written form each_secret() registers. */
static void add_decoded_url_password(const char *url)
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
}

void dgm_plan_register_secrets(const dgm_plan *plan)
{
	if (plan->database.url)
		add_decoded_url_password(plan->database.url);
	/* libpq's own variable: a password from the environment is one too */
	if (getenv("PGPASSWORD") && *getenv("PGPASSWORD"))
		dgm_log_add_secret(getenv("PGPASSWORD"));
	each_secret(plan, register_one, NULL);
}

typedef struct argv_check {
	const char *arg;
	const char *name;             /* out: whose secret is in arg */
} argv_check;

static int secret_in_arg(const char *name, const char *value, void *payload)
{
	argv_check *c = payload;

	if (strlen(value) < 3 || !dgm_secret_find(c->arg, value))
		return 0;
	c->name = name;
	return 1;
}

static int check_list(const dgm_plan *plan, const dgm_strlist *argv, const char *key,
		      dgm_error *err)
{
	for (size_t i = 0; i < argv->count; i++) {
		argv_check c = { .arg = argv->items[i] };

		if (!each_secret(plan, secret_in_arg, &c))
			continue;
		if (!strcmp(c.name, "database.url")) {
			dgm_error_set(err, DGM_E_PLAN, "%s: '%s' would put the database URL's "
				      "password in a child's argv, which every user can read",
				      plan->path, key);
			dgm_error_hint(err, "leave it out of the command: the child inherits the "
				       "environment (PGPASSWORD, ~/.pgpass or the URL's variable)");
			return -1;
		}
		dgm_error_set(err, DGM_E_PLAN, "%s: '%s' would put the value of secret "
			      "variable '%s' in a child's argv, which every user can read",
			      plan->path, key, c.name);
		dgm_error_hint(err, "leave it out of the command: the child inherits the "
			       "environment, so let it read $%s itself", c.name);
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
