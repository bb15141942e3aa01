/* alembic_run.c - the real alembic as a child process: its argv and
 * environment (the plan's alembic.env and alembic.x with ${target.*}
 * filled in), and the proof of where it connects (alembic_guard.c). */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dgm/fault.h"
#include "dgm/log.h"
#include "dgm/pg.h"
#include "dgm/run.h"
#include "migrate_int.h"

/* The revision alembic runs now, for the rehearsal's lock sampler (a
 * thread of its own). */
static pthread_mutex_t running_mu = PTHREAD_MUTEX_INITIALIZER;
static char running_rev[128];

static void set_running(const char *rev, size_t n)
{
	pthread_mutex_lock(&running_mu);
	snprintf(running_rev, sizeof(running_rev), "%.*s", (int)n, rev);
	pthread_mutex_unlock(&running_mu);
}

void dgm_migrate_running(char *buf, size_t len)
{
	pthread_mutex_lock(&running_mu);
	snprintf(buf, len, "%s", running_rev);
	pthread_mutex_unlock(&running_mu);
}

/* "upgrade A -> B, message": B; "downgrade B -> A, message": B. */
static void note_running(const char *what)
{
	bool up = !strncmp(what, "upgrade ", 8);
	const char *from = what + (up ? 8 : 10), *arrow = strstr(from, " -> ");
	const char *to;

	if (!arrow)
		return;
	if (!up) {
		set_running(from, (size_t)(arrow - from));
		return;
	}
	to = arrow + 4;
	set_running(to, strcspn(to, ", \n"));
}

/* alembic's per-revision lines ("Running upgrade A -> B, message") are
 * the progress of a long migration: shown at normal verbosity, so a
 * table rewrite does not look hung; the rest is detail (--verbose). */
static void on_line(const char *line, int fd, void *payload)
{
	const char *run = strstr(line, "Running ");

	/* with --sql, stdout is the SQL: kept, not logged */
	if (fd == 1 && payload)
		return;
	if (!payload && run && (!strncmp(run + 8, "upgrade ", 8) ||
				!strncmp(run + 8, "downgrade ", 10))) {
		note_running(run + 8);
		dgm_info("  alembic: %s", run);
	} else
		dgm_debug("  alembic: %s", line);
}

/* The ini's folder inside app_dir, where alembic runs. */
static char *ini_dir(const dgm_plan *plan, const char *app_dir)
{
	const char *repo = plan->release.repository;
	size_t n = strlen(repo);
	const char *rel = plan->alembic.config;
	const char *slash;

	if (!strncmp(rel, repo, n) && rel[n] == '/')
		rel += n + 1;
	slash = strrchr(rel, '/');
	if (rel[0] == '/')
		return dgm_xstrndup(rel, (size_t)(slash - rel));
	return slash ? dgm_xasprintf("%s/%.*s", app_dir, (int)(slash - rel), rel)
		     : dgm_xstrdup(app_dir);
}

/* The line of a Python traceback that says what went wrong (the last
 * "SomeError: ..." line) and the statement alembic ran ("[SQL: ...]"). */
static void summarize(char *out, size_t len, const char *tail)
{
	const char *why = NULL, *sql = NULL, *p = tail;

	while (p && *p) {
		const char *nl = strchr(p, '\n');
		size_t n = nl ? (size_t)(nl - p) : strlen(p);
		const char *colon = memchr(p, ':', n);

		if (!strncmp(p, "[SQL: ", 6))
			sql = p;
		else if (colon && p[0] != ' ' && colon > p && (memmem(p, (size_t)(colon - p), "Error", 5) ||
			 memmem(p, (size_t)(colon - p), "Exception", 9)))
			why = p;
		p = nl ? nl + 1 : NULL;
	}
	if (!why) {
		snprintf(out, len, "%.*s", (int)len - 1, tail);
		return;
	}
	snprintf(out, len, "%.*s%s%.*s", (int)strcspn(why, "\n"), why, sql ? " " : "",
		 sql ? (int)strcspn(sql, "\n") : 0, sql ? sql : "");
}

/* ---- argv and environment ---------------------------------------------- */

/* The parts of the target for ${target.*}: what the server connection
 * really used when there is one (PQhost gives a unix-socket folder as a
 * path), else what the URL says. */
typedef struct parts {
	char *host, *port, *user, *password, *dbname;
} parts;

static void parts_free(parts *p)
{
	if (p->password)
		memset(p->password, 0, strlen(p->password));
	free(p->host);
	free(p->port);
	free(p->user);
	free(p->password);
	free(p->dbname);
	memset(p, 0, sizeof(*p));
}

static void parts_read(parts *p, const char *url, PGconn *conn)
{
	PQconninfoOption *opts = PQconninfoParse(url, NULL);

	memset(p, 0, sizeof(*p));
	for (PQconninfoOption *o = opts; o && o->keyword; o++) {
		char **dst = !strcmp(o->keyword, "host") ? &p->host : !strcmp(o->keyword, "port") ?
			     &p->port : !strcmp(o->keyword, "user") ? &p->user :
			     !strcmp(o->keyword, "password") ? &p->password :
			     !strcmp(o->keyword, "dbname") ? &p->dbname : NULL;

		if (dst && o->val && *o->val)
			*dst = dgm_xstrdup(o->val);
	}
	PQconninfoFree(opts);
	if (!conn)
		return;
	free(p->host);
	free(p->port);
	free(p->user);
	free(p->dbname);
	p->host = dgm_xstrdup(PQhost(conn));
	p->port = dgm_xstrdup(PQport(conn));
	p->user = dgm_xstrdup(PQuser(conn));
	p->dbname = dgm_xstrdup(PQdb(conn));
}

/* What alembic gets, built once per call. */
typedef struct call {
	dgm_strlist env;      /* NAME=value; holds secrets: wiped */
	dgm_strlist xargs;    /* the expanded alembic.x */
	char *cwd;
	char *marker;
} call;

static void push(dgm_strlist *l, char *s)
{
	l->items = dgm_xrealloc(l->items, (l->count + 2) * sizeof(char *));
	l->items[l->count++] = s;
	l->items[l->count] = NULL;
}

static void call_build(call *k, const dgm_plan *plan, const dgm_migrate_target *t,
		       const char *app_dir, PGconn *conn)
{
	parts pt;
	dgm_plan_target pt_view;

	memset(k, 0, sizeof(*k));
	parts_read(&pt, t->url, conn);
	pt_view = (dgm_plan_target){ .url = t->url, .host = pt.host, .port = pt.port,
				     .user = pt.user, .password = pt.password, .dbname = pt.dbname };
	k->cwd = ini_dir(plan, app_dir);
	k->marker = dgm_xasprintf("alembic-dgmigrate-%ld", (long)getpid());
	push(&k->env, dgm_xasprintf("DATABASE_URL=%s", t->url));
	push(&k->env, dgm_xasprintf("PGOPTIONS=-c lock_timeout=%ld -c statement_timeout=%ld",
				    plan->timeouts.lock_ms, plan->timeouts.statement_ms));
	push(&k->env, dgm_xasprintf("PGAPPNAME=%s", k->marker));
	/* the plan's own come last: they win */
	for (size_t i = 0; i < plan->alembic.env.count; i++)
		push(&k->env, dgm_plan_target_expand(plan->alembic.env.items[i], &pt_view));
	for (size_t i = 0; i < plan->alembic.x.count; i++)
		push(&k->xargs, dgm_plan_target_expand(plan->alembic.x.items[i], &pt_view));
	parts_free(&pt);
}

static void call_free(call *k)
{
	for (size_t i = 0; i < k->env.count; i++)
		memset(k->env.items[i], 0, strlen(k->env.items[i]));
	dgm_strlist_free(&k->env);
	dgm_strlist_free(&k->xargs);
	free(k->cwd);
	free(k->marker);
}

/* Run `alembic -c INI [-x ..] VERB [TARGET] [--sql]`. */
static int run(const dgm_plan *plan, const call *k, const char *verb, const char *target,
	       bool sql, dgm_buf *sql_out, const volatile sig_atomic_t *cancel, dgm_error *err)
{
	const dgm_strlist *cmd = &plan->alembic.command;
	const char *base = strrchr(plan->alembic.config, '/');
	const char **argv = dgm_xcalloc(cmd->count + 2 * k->xargs.count + 7, sizeof(char *));
	size_t n = 0;
	int ret;

	for (size_t i = 0; i < cmd->count; i++)
		argv[n++] = cmd->items[i];
	argv[n++] = "-c";
	argv[n++] = base ? base + 1 : plan->alembic.config;
	for (size_t i = 0; i < k->xargs.count; i++) {
		argv[n++] = "-x";
		argv[n++] = k->xargs.items[i];
	}
	argv[n++] = verb;
	if (target)
		argv[n++] = target;
	if (sql)
		argv[n++] = "--sql";
	{
		dgm_child c = { .argv = argv, .cwd = k->cwd,
				.env_set = (const char *const *)k->env.items,
				.out = sql ? sql_out : NULL, .on_line = on_line,
				.payload = sql ? sql_out : NULL, .cancel = cancel,
				.timeout_ms = plan->timeouts.migrate_ms };

		if (!sql) {
			set_running("", 0);
			dgm_fault_point("alembic.%s", verb);
		}
		ret = dgm_run(&c, err);
		if (ret && !c.timed_out && !c.cancelled && c.exit_code > 0) {
			char why[1536];

			summarize(why, sizeof(why), c.err_tail);
			dgm_error_set(err, DGM_E_CHILD, "'alembic' failed [%d]: %s", c.exit_code, why);
			dgm_error_hint(err, "alembic's full output is in the run's log (the journal "
				       "folder, <run id>.log); --verbose shows it too");
		}
	}
	free(argv);
	return ret;
}

/* ---- the proof --------------------------------------------------------- */

#define HINT_ENV "the application's env.py decides where alembic connects, and it does not " \
	"take the database from DATABASE_URL: hand it the target in its own terms with the " \
	"plan's alembic.env (e.g. POSTGRES_DB: \"${target.dbname}\", POSTGRES_SERVER: " \
	"\"${target.host}\") or alembic.x (read with context.get_x_argument()); " \
	"plans/example.yaml shows every placeholder"

/* Databases (and folders) alembic was proven to reach in this process. */
static char *proven_keys[16];
static size_t nproven;

static char *proof_key(PGconn *mon, const char *cwd)
{
	return dgm_xasprintf("%s:%s/%s %s", PQhost(mon), PQport(mon), PQdb(mon), cwd);
}

static bool was_proven(const char *key)
{
	for (size_t i = 0; i < nproven; i++)
		if (!strcmp(proven_keys[i], key))
			return true;
	return false;
}

static void breach_error(const dgm_guard *g, const char *intended, dgm_error *err)
{
	dgm_error_set(err, DGM_E_RUN, "alembic connected to the %s '%s' (%s) while it was to "
		      "run on '%s'; it was stopped before it changed anything: the plan's "
		      "alembic.env or alembic.x must point it at the target", g->bad_label,
		      g->bad.dbname, g->breach_who, intended);
	dgm_error_hint(err, "%s", HINT_ENV);
}

/* `alembic current` with the target fenced: proven when one of alembic's
 * sessions waits on the fence there. */
static int probe(dgm_guard *g, const dgm_plan *plan, const call *k, const char *intended,
		 dgm_error *err)
{
	dgm_error run_err = DGM_ERROR_INIT;
	int rc;

	if (dgm_guard_start(g, err))
		return -1;
	rc = run(plan, k, "current", NULL, false, NULL, &g->cancel, &run_err);
	dgm_guard_stop(g);
	if (g->breach) {
		breach_error(g, intended, err);
		return -1;
	}
	if (g->proven)
		return 0;
	if (rc && !g->cancel) {
		*err = run_err;
		dgm_error_prefix(err, "cannot tell which database alembic connects to: "
				 "'alembic current' failed before it reached database '%s'", intended);
		return -1;
	}
	dgm_error_set(err, DGM_E_RUN, "alembic did not connect to database '%s': 'alembic "
		      "current', run with the environment and -x arguments alembic gets, never "
		      "read that database's version table, so nothing was run; the plan's "
		      "alembic.env or alembic.x must point it there", intended);
	if (g->watch_error[0])
		dgm_error_set(err, DGM_E_RUN, "cannot tell which database alembic connects to: "
			      "watching pg_stat_activity failed: %s", g->watch_error);
	dgm_error_hint(err, "%s", HINT_ENV);
	return -1;
}

int dgm_migrate_alembic_at(const dgm_plan *plan, const dgm_migrate_target *t,
			   const char *app_dir, const char *verb, const char *target, bool sql,
			   dgm_buf *sql_out, dgm_error *err)
{
	dgm_guard g;
	call k;
	char *key = NULL, *intended = NULL;
	bool ran = false;     /* until alembic runs, a version table made for the probe goes */
	int ret = -1;

	memset(&g, 0, sizeof(g));
	memset(&k, 0, sizeof(k));
	if (sql) {
		call_build(&k, plan, t, app_dir, NULL);
		ret = run(plan, &k, verb, target, true, sql_out, NULL, err);
		goto out;
	}
	if (dgm_guard_connect(&g, plan, t, err))
		goto out;
	call_build(&k, plan, t, app_dir, g.mon);
	g.marker = k.marker;
	intended = dgm_xstrdup(PQdb(g.mon));
	key = proof_key(g.mon, k.cwd);
	if (!was_proven(key)) {
		if (dgm_guard_fence(&g, t, true, err))
			goto out;
		if (probe(&g, plan, &k, intended, err))
			goto out;
		dgm_info("alembic connects to '%s' (proven: its session waited on dgmigrate's lock "
			 "of the version table there)", intended);
		if (nproven < sizeof(proven_keys) / sizeof(proven_keys[0]))
			proven_keys[nproven++] = dgm_xstrdup(key);
	} else if (dgm_guard_fence(&g, t, false, err)) {
		goto out;
	}
	if (dgm_guard_start(&g, err))
		goto out;
	ran = true;
	ret = run(plan, &k, verb, target, false, NULL, &g.cancel, err);
	dgm_guard_stop(&g);
	if (g.breach) {
		breach_error(&g, intended, err);
		ret = -1;
	}
out:
	dgm_guard_close(&g, !ran);
	if (ret)
		dgm_error_prefix(err, "alembic %s %s%s", verb, target, sql ? " --sql" : "");
	call_free(&k);
	free(key);
	free(intended);
	return ret;
}

int dgm_migrate_alembic(const dgm_plan *plan, const char *app_dir, const char *verb,
			const char *target, bool sql, dgm_buf *sql_out, dgm_error *err)
{
	dgm_migrate_target t = { .url = plan->database.url };

	return dgm_migrate_alembic_at(plan, &t, app_dir, verb, target, sql, sql_out, err);
}
