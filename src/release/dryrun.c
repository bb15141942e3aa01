/* dryrun.c - `apply --dry-run`: every preflight check, then exactly what
 * would run, the SQL included, with nothing changed: the SQL comes from
 * `alembic upgrade FROM:TO --sql` run against the tag exported to a
 * temporary folder, not the work tree. */
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
#include "dgm/release.h"

static void print_hooks(const char *which, const dgm_plan_hooks *h)
{
	for (size_t i = 0; i < h->count; i++) {
		printf("hooks.%-6s '%s':", which, h->items[i].name);
		for (size_t j = 0; j < h->items[i].argv.count; j++)
			printf(" %s", h->items[i].argv.items[j]);
		printf(" (timeout %ld s)\n", h->items[i].timeout_ms / 1000);
	}
}

static void print_steps(const dgm_plan *plan, const dgm_facts *f)
{
	const dgm_alembic_steps *up = &f->upgrade;

	print_hooks("before", &plan->hooks.before);
	printf("snapshot     into '%s': pg_dump %s, %d jobs, compression %d (database %lld MiB); "
	       "model store archive, zstd level %d (%lld MiB of files); both verified\n",
	       plan->snapshot.directory, plan->snapshot.format == DGM_DUMP_DIRECTORY ?
	       "directory format" : "custom format", plan->snapshot.jobs, plan->snapshot.compression,
	       f->db_bytes >> 20, plan->model_store.level, f->store_bytes >> 20);
	if (plan->snapshot.keep_copies > 0)
		printf("             first a server-side copy of the database, kept for a fast "
		       "restore (another %lld MiB on the database server; snapshot.keep_copies: %d), "
		       "which the dump then reads; without other sessions connected, else the dump "
		       "reads the database\n", f->db_bytes >> 20, plan->snapshot.keep_copies);
	printf("checkout     '%s': HEAD %.12s -> '%s' (%.12s), detached\n",
	       plan->release.repository, f->head, plan->release.tag, f->tag_commit);
	printf("upgrade      alembic upgrade %s: %s -> ", plan->alembic.target,
	       f->nrevs ? f->revs[0] : "base");
	for (size_t i = 0; i < up->nheads_after; i++)
		printf("%s%s", i ? ", " : "", up->heads_after[i]->id);
	printf("%s, %zu revision%s in this order:\n", up->nheads_after ? "" : "base", up->count,
	       up->count == 1 ? "" : "s");
	for (size_t i = 0; i < up->count; i++)
		printf("               %s  %s\n", up->revs[i]->id, up->revs[i]->doc);
	printf("verify       alembic_version = the heads above; %zu tables, %zu indexes%s%s\n",
	       plan->postconditions.tables.count, plan->postconditions.indexes.count,
	       plan->postconditions.foreign_keys_validated ? ", foreign keys validated" : "",
	       plan->postconditions.analyze ? ", then ANALYZE" : "");
	print_hooks("after", &plan->hooks.after);
	if (plan->health_check.url)
		printf("health       GET the health check URL until 2xx (%d tries)\n",
		       plan->health_check.retries);
	printf("on failure   %s\n", plan->on_failure == DGM_ON_FAILURE_ROLLBACK ?
	       "rollback: downgrade (or restore the snapshot), check out the previous commit" :
	       "stop and report the state of each part");
}

/* The SQL the upgrade would run, from the tag's own migrations. */
static int print_sql(const dgm_plan *plan, const dgm_facts *f, dgm_error *err)
{
	char *tmp = dgm_xasprintf("%s/dry-run-XXXXXX", plan->state_dir);
	dgm_buf sql = DGM_BUF_INIT;
	char *range = NULL;
	int ret = -1;

	if (f->nrevs > 1) {
		printf("\n-- the database has %zu heads: 'alembic --sql' cannot start from several; "
		       "no SQL shown\n", f->nrevs);
		return 0;
	}
	if (dgm_fs_mkdir_p(plan->state_dir, 0700, err))
		goto out;
	if (!mkdtemp(tmp)) {
		dgm_error_errno(err, DGM_E_IO, "cannot create '%s'", tmp);
		goto out;
	}
	rmdir(tmp);
	range = dgm_xasprintf("%s:%s", f->nrevs ? f->revs[0] : "base", plan->alembic.target);
	if (dgm_git_export(plan->release.repository, plan->release.tag, tmp, err) ||
	    dgm_migrate_alembic(plan, tmp, "upgrade", range, true, &sql, err))
		goto out;
	printf("\n-- SQL of 'alembic upgrade %s --sql', from the migrations at '%s':\n%s", range,
	       plan->release.tag, dgm_buf_cstr(&sql));
	ret = 0;
out:
	{
		dgm_error ignore = DGM_ERROR_INIT;

		dgm_fs_remove_tree(tmp, &ignore);
	}
	free(range);
	free(tmp);
	dgm_buf_free(&sql);
	return ret;
}

int dgm_release_dry_run(const dgm_plan *plan, const dgm_apply_opts *o, dgm_error *err)
{
	dgm_lock lock = { 0 };
	dgm_facts f;
	int ret = -1;

	memset(&f, 0, sizeof(f));
	if (dgm_lock_acquire(&lock, plan->database.url, "apply --dry-run", o->wait_lock_ms, err))
		return -1;
	dgm_info("dry run: every check runs, nothing changes");
	if (dgm_preflight(&f, plan, DGM_PREFLIGHT_APPLY, false, err))
		goto out;
	printf("dry run of release '%s' (tag %s): nothing was changed\n", plan->release.name,
	       plan->release.tag);
	print_steps(plan, &f);
	if (f.upgrade.count && print_sql(plan, &f, err))
		goto out;
	ret = 0;
out:
	dgm_facts_free(&f);
	dgm_lock_release(&lock);
	return ret;
}
