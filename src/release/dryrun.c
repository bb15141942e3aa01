/* dryrun.c - `apply --dry-run`: every preflight check, then exactly what
 * would run, the SQL included, with nothing changed: the SQL comes from
 * `alembic upgrade FROM:TO --sql` run against the tag exported to a
 * temporary folder, not the work tree. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dgm/buf.h"
#include "dgm/fs.h"
#include "dgm/git.h"
#include "dgm/lock.h"
#include "dgm/log.h"
#include "dgm/migrate.h"
#include "dgm/pgbackrest.h"
#include "dgm/restore.h"
#include "dgm/release.h"

/* One line of the plan: "ITEM  DETAIL" as text, or with --json an
 * event {"event":"plan","item":...,"detail":...}: stdout is JSON only. */
static void line(const char *item, const char *fmt, ...) DGM_PRINTF(2, 3);

static void line(const char *item, const char *fmt, ...)
{
	dgm_buf b = DGM_BUF_INIT, f = DGM_BUF_INIT;
	va_list ap;

	va_start(ap, fmt);
	dgm_buf_vprintf(&b, fmt, ap);
	va_end(ap);
	if (dgm_log_json()) {
		dgm_buf_puts(&f, "\"item\":");
		dgm_buf_json_str(&f, item);
		dgm_buf_puts(&f, ",\"detail\":");
		dgm_buf_json_str(&f, dgm_buf_cstr(&b));
		dgm_event("plan", f.ptr);
	} else
		printf("%-12s %s\n", item, dgm_buf_cstr(&b));
	dgm_buf_free(&b);
	dgm_buf_free(&f);
}

static void print_hooks(const char *which, const dgm_plan_hooks *h)
{
	char item[16];

	snprintf(item, sizeof(item), "hooks.%s", which);
	for (size_t i = 0; i < h->count; i++) {
		dgm_buf b = DGM_BUF_INIT;

		for (size_t j = 0; j < h->items[i].argv.count; j++)
			dgm_buf_printf(&b, " %s", h->items[i].argv.items[j]);
		line(item, "'%s':%s (timeout %ld s)", h->items[i].name, dgm_buf_cstr(&b),
		     h->items[i].timeout_ms / 1000);
		dgm_buf_free(&b);
	}
}

static void print_steps(const dgm_plan *plan, const dgm_facts *f)
{
	const dgm_alembic_steps *up = &f->upgrade;
	dgm_buf heads = DGM_BUF_INIT;

	print_hooks("before", &plan->hooks.before);
	line("snapshot", "into '%s': pg_dump %s, %d jobs, compression %d (database %lld MiB); "
	     "model store archive, zstd level %d (%lld MiB of files); both verified",
	     plan->snapshot.directory, plan->snapshot.format == DGM_DUMP_DIRECTORY ?
	     "directory format" : "custom format", plan->snapshot.jobs, plan->snapshot.compression,
	     f->db_bytes >> 20, plan->model_store.level, f->store_bytes >> 20);
	if (plan->snapshot.keep_copies > 0)
		line("", "copy-first: a server-side copy of the database, kept for a fast "
		     "restore (another %lld MiB on the database server; snapshot.keep_copies: %d), "
		     "checked, gates the release; the store archive and the dump of the copy are "
		     "made beside checkout and upgrade (hooks.after waits for the archive, the end "
		     "of the run for the dump); without other sessions connected, else the dump "
		     "and the archive come first",
		     f->db_bytes >> 20, plan->snapshot.keep_copies);
	line("checkout", "'%s': HEAD %.12s -> '%s' (%.12s), detached",
	     plan->release.repository, f->head, plan->release.tag, f->tag_commit);
	for (size_t i = 0; i < up->nheads_after; i++)
		dgm_buf_printf(&heads, "%s%s", i ? ", " : "", up->heads_after[i]->id);
	line("upgrade", "alembic upgrade %s: %s -> %s, %zu revision%s in this order%s:",
	     plan->alembic.target, f->nrevs ? f->revs[0] : "base",
	     up->nheads_after ? dgm_buf_cstr(&heads) : "base", up->count,
	     up->count == 1 ? "" : "s",
	     f->graph && f->graph->read_by_alembic ? " (graph read by Alembic)" : "");
	for (size_t i = 0; i < up->count; i++)
		line("", "  %s  %s", up->revs[i]->id, up->revs[i]->doc);
	line("verify", "alembic_version = the heads above; %zu tables, %zu indexes%s%s",
	     plan->postconditions.tables.count, plan->postconditions.indexes.count,
	     plan->postconditions.foreign_keys_validated ? ", foreign keys validated" : "",
	     plan->postconditions.analyze ? ", then ANALYZE" : "");
	print_hooks("after", &plan->hooks.after);
	if (plan->health_check.url)
		line("health", "GET the health check URL until 2xx (%d tries)",
		     plan->health_check.retries);
	line("on failure", "%s", plan->on_failure == DGM_ON_FAILURE_ROLLBACK ?
	     "rollback: downgrade (or restore the snapshot), check out the previous commit" :
	     "stop and report the state of each part");
	dgm_buf_free(&heads);
}

/* The SQL as text, or one JSON event. */
static void print_sql_text(const char *range, const char *tag, const char *sql)
{
	dgm_buf f = DGM_BUF_INIT;

	if (!dgm_log_json()) {
		printf("\n-- SQL of 'alembic upgrade %s --sql', from the migrations at '%s':\n%s",
		       range, tag, sql);
		return;
	}
	dgm_buf_puts(&f, "\"range\":");
	dgm_buf_json_str(&f, range);
	dgm_buf_puts(&f, ",\"sql\":");
	dgm_buf_json_str(&f, sql);
	dgm_event("sql", f.ptr);
	dgm_buf_free(&f);
}

/* The SQL of `alembic VERB RANGE --sql`, from the tag's own migrations
 * exported to a temporary folder under state_dir. */
int dgm_release_render_sql(dgm_buf *sql, const dgm_plan *plan, const char *verb,
			   const char *range, dgm_error *err)
{
	char *tmp = dgm_xasprintf("%s/dry-run-XXXXXX", plan->state_dir);
	int ret = -1;

	if (dgm_fs_mkdir_p(plan->state_dir, 0700, err))
		goto out;
	if (!mkdtemp(tmp)) {
		dgm_error_errno(err, DGM_E_IO, "cannot create '%s'", tmp);
		goto out;
	}
	rmdir(tmp);
	if (dgm_git_export(plan->release.repository, plan->release.tag, tmp, err) ||
	    dgm_migrate_alembic(plan, tmp, verb, range, true, sql, err))
		goto out;
	ret = 0;
out:
	{
		dgm_error ignore = DGM_ERROR_INIT;

		dgm_fs_remove_tree(tmp, &ignore);
	}
	free(tmp);
	return ret;
}

/* The findings after the SQL: as `dgmigrate lint` prints them, or one
 * "lint" event with the same members as its --json document. */
static void print_lint(const dgm_facts *f)
{
	dgm_buf b = DGM_BUF_INIT;

	if (!f->lint) {
		line("lint", "not run: see the preflight's warning");
		return;
	}
	if (dgm_log_json()) {
		dgm_release_lint_json(&b, f->lint);
		dgm_event("lint", b.ptr);
	} else {
		printf("\n-- lint of the upgrade and downgrade SQL (what 'dgmigrate lint' shows):\n");
		fflush(stdout);
		dgm_release_lint_print(f->lint, stdout);
		if (f->lint_refused)
			printf("apply would refuse: a finding reaches lint.fail_on '%s'\n",
			       dgm_lint_severity_name(f->lint->plan->lint.fail_on));
	}
	dgm_buf_free(&b);
}

/* The SQL the upgrade would run, from the tag's own migrations (as
 * preflight's lint rendered it, when it ran), then the lint findings. */
static int print_sql(const dgm_plan *plan, const dgm_facts *f, dgm_error *err)
{
	dgm_buf sql = DGM_BUF_INIT;
	char *range;
	int ret = 0;

	if (f->nrevs > 1) {
		line("sql", "the database has %zu heads: 'alembic --sql' cannot start from several; "
		     "no SQL shown", f->nrevs);
		return 0;
	}
	range = dgm_xasprintf("%s:%s", f->nrevs ? f->revs[0] : "base", plan->alembic.target);
	if (f->lint && f->lint->pass[0].done)
		print_sql_text(range, plan->release.tag, dgm_buf_cstr(&f->lint->upgrade_sql));
	else if ((ret = dgm_release_render_sql(&sql, plan, "upgrade", range, err)) == 0)
		print_sql_text(range, plan->release.tag, dgm_buf_cstr(&sql));
	if (ret == 0)
		print_lint(f);
	free(range);
	dgm_buf_free(&sql);
	return ret;
}

int dgm_release_dry_run(const dgm_plan *plan, const dgm_apply_opts *o, dgm_error *err)
{
	dgm_error pf = DGM_ERROR_INIT;
	dgm_lock lock = { 0 };
	dgm_facts f;
	int ret = -1;

	memset(&f, 0, sizeof(f));
	/* an interrupted restore: cluster may have left the server down, an
	 * interrupted database swap the database without its name */
	if (dgm_restore_guard(plan, err) ||
	    dgm_lock_acquire(&lock, plan->database.url, "apply --dry-run", o->wait_lock_ms, err))
		return -1;
	dgm_info("dry run: every check runs, nothing changes");
	/* a refusal by the lint alone still shows the plan, the SQL and
	 * the findings: they are what the DBA needs to see */
	if (dgm_preflight(&f, plan, DGM_PREFLIGHT_DRY_RUN, false, &pf) &&
	    !(f.lint_refused && f.failed_checks == 1)) {
		*err = pf;
		goto out;
	}
	line("dry run", "of release '%s' (tag %s): nothing was changed", plan->release.name,
	     plan->release.tag);
	print_steps(plan, &f);
	if (f.upgrade.count && print_sql(plan, &f, err))
		goto out;
	if (f.lint_refused) {
		*err = pf;
		goto out;
	}
	ret = 0;
out:
	dgm_facts_free(&f);
	dgm_lock_release(&lock);
	return ret;
}
