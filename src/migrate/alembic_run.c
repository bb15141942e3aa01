/* alembic_run.c - the real alembic as a child process. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dgm/fault.h"
#include "dgm/log.h"
#include "dgm/migrate.h"
#include "dgm/run.h"

static void on_line(const char *line, int fd, void *payload)
{
	/* with --sql, stdout is the SQL: kept, not logged */
	if (fd == 1 && payload)
		return;
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

int dgm_migrate_alembic(const dgm_plan *plan, const char *app_dir, const char *verb,
			const char *target, bool sql, dgm_buf *sql_out, dgm_error *err)
{
	const dgm_strlist *cmd = &plan->alembic.command;
	const char *base = strrchr(plan->alembic.config, '/');
	char *cwd = ini_dir(plan, app_dir);
	char *url = dgm_xasprintf("DATABASE_URL=%s", plan->database.url);
	char *opts = dgm_xasprintf("PGOPTIONS=-c lock_timeout=%ld -c statement_timeout=%ld",
				   plan->timeouts.lock_ms, plan->timeouts.statement_ms);
	const char *env[] = { url, opts, NULL };
	const char **argv = dgm_xcalloc(cmd->count + 7, sizeof(char *));
	size_t n = 0;
	int ret;

	for (size_t i = 0; i < cmd->count; i++)
		argv[n++] = cmd->items[i];
	argv[n++] = "-c";
	argv[n++] = base ? base + 1 : plan->alembic.config;
	argv[n++] = verb;
	argv[n++] = target;
	if (sql)
		argv[n++] = "--sql";
	{
		dgm_child c = { .argv = argv, .cwd = cwd, .env_set = env, .out = sql ? sql_out : NULL,
				.on_line = on_line, .payload = sql ? sql_out : NULL,
				.timeout_ms = plan->timeouts.migrate_ms };

		if (!sql)
			dgm_fault_point("alembic.%s", verb);
		ret = dgm_run(&c, err);
		if (ret && !c.timed_out && !c.cancelled && c.exit_code > 0) {
			char why[1536];

			summarize(why, sizeof(why), c.err_tail);
			dgm_error_set(err, DGM_E_CHILD, "'alembic' failed [%d]: %s", c.exit_code, why);
			dgm_error_hint(err, "alembic's full output is in the run's log (the journal "
				       "folder, <run id>.log); --verbose shows it too");
		}
	}
	if (ret)
		dgm_error_prefix(err, "alembic %s %s%s", verb, target, sql ? " --sql" : "");
	memset(url, 0, strlen(url));
	free(url);
	free(opts);
	free(argv);
	free(cwd);
	return ret;
}
