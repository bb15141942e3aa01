/* dump.c - pg_dump into a snapshot, verified with pg_restore --list. */
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <jansson.h>

#include "dgm/clock.h"
#include "dgm/buf.h"
#include "dgm/dump.h"
#include "dgm/fs.h"
#include "dgm/log.h"
#include "dgm/pg.h"
#include "dgm/run.h"

int dgm_dump_tool_version(char *out, size_t len, const char *tool, dgm_error *err)
{
	const char *argv[] = { tool, "--version", NULL };
	dgm_buf b = DGM_BUF_INIT;
	dgm_child c = { .argv = argv, .out = &b, .timeout_ms = 10000 };
	const char *p;
	int ret = -1;

	if (dgm_run(&c, err))
		goto out;
	/* "pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)" */
	p = strstr(dgm_buf_cstr(&b), ") ");
	if (!p) {
		dgm_error_set(err, DGM_E_CHILD, "cannot read the version of '%s' from '%s'", tool,
			      dgm_buf_cstr(&b));
		goto out;
	}
	snprintf(out, len, "%.*s", (int)strcspn(p + 2, " \n"), p + 2);
	ret = 0;
out:
	dgm_buf_free(&b);
	return ret;
}

/* The server's version, so an older pg_dump can be refused up front. */
static int server_info(dgm_dump_info *info, const char *url, dgm_error *err)
{
	PGconn *conn = NULL;

	if (dgm_pg_connect(&conn, url, "dgmigrate snapshot", err))
		return -1;
	dgm_pg_server_version(conn, info->server_version, sizeof(info->server_version));
	snprintf(info->database, sizeof(info->database), "%s", PQdb(conn));
	dgm_pg_close(conn);
	return 0;
}

static int check_versions(const dgm_dump_info *info, dgm_error *err)
{
	if (atoi(info->pg_dump_version) < atoi(info->server_version)) {
		dgm_error_set(err, DGM_E_RUN, "pg_dump %s is older than the server (PostgreSQL %s)",
			      info->pg_dump_version, info->server_version);
		dgm_error_hint(err, "install postgresql-client-%d and put its bin folder first in PATH",
			       atoi(info->server_version));
		return -1;
	}
	return 0;
}

int dgm_dump_list(int *entries, const char *path, dgm_dump_format format, dgm_error *err)
{
	const char *argv[] = { "pg_restore", "--list",
			       format == DGM_DUMP_DIRECTORY ? "--format=directory" : "--format=custom",
			       path, NULL };
	dgm_buf b = DGM_BUF_INIT;
	dgm_child c = { .argv = argv, .out = &b, .timeout_ms = 120000 };
	int n = 0;

	if (dgm_run(&c, err)) {
		dgm_error_prefix(err, "the dump '%s' does not read back", path);
		dgm_buf_free(&b);
		return -1;
	}
	for (const char *p = dgm_buf_cstr(&b); *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : "")
		if (*p != ';' && *p != '\n')
			n++;
	dgm_buf_free(&b);
	*entries = n;
	return 0;
}

/* Progress in bytes of table data, not in tables: one table often holds
 * most of the data. A table counts once pg_dump starts copying it. */
typedef struct dump_progress {
	dgm_progress_state st;
	long long done, total;
	json_t *sizes;             /* {"schema.table": pg_table_size} */
	dgm_buf errors;            /* pg_dump's own error lines, not its progress */
} dump_progress;

/* The size of every table whose data pg_dump copies, named as pg_dump's
 * --verbose names them ("schema.table", unquoted). None: no sizes. */
static void table_sizes(dump_progress *p, const dgm_dump_opts *o)
{
	static const char *sql =
		"SELECT coalesce(json_object_agg(n.nspname || '.' || c.relname, pg_table_size(c.oid)),"
		" '{}')::text, coalesce(sum(pg_table_size(c.oid)), 0) FROM pg_class c JOIN pg_namespace n"
		" ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'm')"
		" AND n.nspname NOT IN ('pg_catalog', 'information_schema')";
	dgm_error ignore = DGM_ERROR_INIT;
	PGconn *conn = NULL;
	PGresult *res = NULL;

	if (dgm_pg_connect_db(&conn, o->url, o->dbname, "dgmigrate snapshot", &ignore) == 0 &&
	    dgm_pg_query(&res, conn, sql, 0, NULL, &ignore) == 0) {
		p->sizes = json_loads(PQgetvalue(res, 0, 0), 0, NULL);
		p->total = atoll(PQgetvalue(res, 0, 1));
	}
	PQclear(res);
	dgm_pg_close(conn);
}

static bool starts(const char *s, const char *head)
{
	return !strncmp(s, head, strlen(head));
}

/* --verbose progress ("pg_dump: reading ...") fills the stderr tail that
 * a failure would show: keep what pg_dump says about the failure. */
static bool is_error_line(const char *line)
{
	return *line && (!starts(line, "pg_dump: ") || starts(line, "pg_dump: error:") ||
			 starts(line, "pg_dump: detail:") || starts(line, "pg_dump: hint:") ||
			 starts(line, "pg_dump: warning:") || starts(line, "pg_dump: fatal:"));
}

/* Fault injection for the leak tests: DGMIGRATE_FAULT_KILL_AT=
 * snapshot-dump dies as a kill -9 in the middle of pg_dump would, once
 * it copies table data. */
static void fault_kill_during_dump(void)
{
	const char *at = getenv("DGMIGRATE_FAULT_KILL_AT");

	if (at && !strcmp(at, "snapshot-dump"))
		raise(SIGKILL);
}

/* pg_dump --verbose says 'dumping contents of table "schema.table"' per
 * table: add that table's size. */
static void on_dump_line(const char *line, int fd, void *payload)
{
	static const char mark[] = "dumping contents of table \"";
	dump_progress *p = payload;
	const char *name;
	char table[512];

	if (fd != 2)
		return;
	if (is_error_line(line) && p->errors.len < 1200)
		dgm_buf_printf(&p->errors, "%s%s", p->errors.len ? "; " : "", line);
	if (!(name = strstr(line, mark)))
		return;
	fault_kill_during_dump();
	name += sizeof(mark) - 1;
	snprintf(table, sizeof(table), "%.*s", (int)strcspn(name, "\""), name);
	p->done += json_integer_value(json_object_get(p->sizes, table));
	if (p->done > p->total)
		p->done = p->total;
	dgm_progress(&p->st, p->done, p->total);
}

/* A failed pg_dump: its error lines, when it said any. */
static void dump_error(const dgm_child *c, const dump_progress *p, dgm_error *err)
{
	if (c->exit_code > 0 && !c->cancelled && !c->timed_out && p->errors.len)
		dgm_error_set(err, DGM_E_CHILD, "'pg_dump' terminated unexpectedly [%d]: %s",
			      c->exit_code, dgm_buf_cstr(&p->errors));
}

static int run_pg_dump(const dgm_dump_opts *o, const char *partial, dgm_error *err)
{
	dump_progress prog = { DGM_PROGRESS_INIT("database", "MiB"), 0, 0, NULL, DGM_BUF_INIT };
	char jobs[16], level[16], file_opt[4096];
	const char *argv[14];
	char **env = NULL;
	int n = 0, ret;

	snprintf(jobs, sizeof(jobs), "--jobs=%d", o->jobs);
	snprintf(level, sizeof(level), "--compress=%d", o->compression);
	snprintf(file_opt, sizeof(file_opt), "--file=%s", partial);
	argv[n++] = "pg_dump";
	argv[n++] = o->format == DGM_DUMP_DIRECTORY ? "--format=directory" : "--format=custom";
	if (o->format == DGM_DUMP_DIRECTORY)
		argv[n++] = jobs;
	argv[n++] = level;
	argv[n++] = "--no-sync"; /* we flush the whole tree once, ourselves */
	argv[n++] = "--verbose"; /* one line a table: the progress */
	argv[n++] = file_opt;
	argv[n] = NULL;
	if (dgm_pg_env(&env, o->url, err))
		return -1;
	if (o->dbname) {
		size_t n_env = 0;

		while (env[n_env])
			n_env++;
		/* set last: it wins over the URL's PGDATABASE */
		env = dgm_xrealloc(env, (n_env + 2) * sizeof(*env));
		env[n_env] = dgm_xasprintf("PGDATABASE=%s", o->dbname);
		env[n_env + 1] = NULL;
	}
	{
		dgm_child c = { .argv = argv, .env_set = (const char *const *)env,
				.timeout_ms = o->timeout_ms, .cancel = o->cancel,
				.on_line = on_dump_line, .payload = &prog };

		prog.st.lines = true;
		table_sizes(&prog, o);
		dgm_progress(&prog.st, 0, prog.total);
		ret = dgm_run(&c, err);
		if (ret == 0)
			dgm_progress(&prog.st, prog.total, prog.total);
		else
			dump_error(&c, &prog, err);
	}
	json_decref(prog.sizes);
	dgm_buf_free(&prog.errors);
	dgm_pg_env_free(env);
	return ret;
}

int dgm_dump_create(dgm_dump_info *info, const dgm_dump_opts *o, dgm_error *err)
{
	char *partial = dgm_xasprintf("%s.partial", o->dest);
	long start = dgm_now_ms();
	int ret = -1;

	memset(info, 0, sizeof(*info));
	if (dgm_dump_tool_version(info->pg_dump_version, sizeof(info->pg_dump_version),
				  "pg_dump", err) ||
	    server_info(info, o->url, err) || check_versions(info, err))
		goto out;
	if (dgm_fs_remove_tree(partial, err))
		goto out;
	if (run_pg_dump(o, partial, err))
		goto out;
	info->ms = dgm_now_ms() - start;
	if (o->format == DGM_DUMP_DIRECTORY)
		chmod(partial, 0700);
	if (dgm_dump_list(&info->toc_entries, partial, o->format, err) ||
	    dgm_fs_fsync_tree(partial, err))
		goto out;
	if (rename(partial, o->dest) != 0) {
		dgm_error_errno(err, DGM_E_IO, "cannot rename '%s' to '%s'", partial, o->dest);
		goto out;
	}
	info->bytes = o->format == DGM_DUMP_DIRECTORY ? dgm_fs_tree_size(o->dest) : 0;
	if (o->format == DGM_DUMP_CUSTOM) {
		struct stat st;

		if (stat(o->dest, &st) == 0)
			info->bytes = st.st_size;
	}
	ret = 0;
out:
	if (ret) {
		dgm_error e2 = DGM_ERROR_INIT;

		dgm_fs_remove_tree(partial, &e2);
		dgm_error_prefix(err, "database snapshot failed");
	}
	free(partial);
	return ret;
}
