/* rollback.c - `dgmigrate rollback --to TAG`: back to a release, in an
 * order that works: a safety snapshot of the current state; alembic
 * downgrade while the newer code (which holds the downgrade scripts) is
 * still checked out, to exactly the heads of TAG's graph; then check out
 * TAG; restore the model store from the release's archive; restore the
 * database snapshot where asked or where the downgrade failed; verify. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dgm/cli.h"
#include "dgm/dump.h"
#include "dgm/log.h"
#include "dgm/migrate.h"
#include "dgm/pg.h"
#include "dgm/restore.h"
#include "dgm/run.h"
#include "internal.h"

typedef struct rb {
	dgm_job *r;
	const dgm_rollback_opts *o;
	const char *ini_rel;
	dgm_alembic_script *now;      /* graph of the code checked out now */
	dgm_alembic_script *then;     /* graph at TAG */
	char **want;                  /* TAG's heads */
	size_t nwant;
	char tag_commit[41];
	dgm_snapshot release;         /* newest snapshot taken at TAG's heads */
	bool have_release;
	char **targets;               /* downgrade steps */
	size_t ntargets;
	bool restore;                 /* restore the database snapshot */
	dgm_buf lost;                 /* tables written since the release snapshot */
} rb;

static int read_state(rb *b, dgm_error *err)
{
	const dgm_plan *plan = b->r->plan;
	git_repository *repo = NULL;
	PGconn *conn = NULL;
	git_oid oid;
	bool detached;
	int ret = -1;

	if (dgm_git_open(&repo, plan->release.repository, err))
		return -1;
	if (dgm_git_resolve_commit(&oid, repo, b->o->to, err) ||
	    dgm_git_head(b->r->facts.head, &detached, repo, err))
		goto out;
	git_oid_tostr(b->tag_commit, sizeof(b->tag_commit), &oid);
	memcpy(b->r->facts.tag_commit, b->tag_commit, sizeof(b->tag_commit));
	if (dgm_pg_connect(&conn, plan->database.url, "dgmigrate rollback", err) ||
	    dgm_pg_read_revisions(&b->r->facts.revs, &b->r->facts.nrevs, conn,
				  plan->alembic.version_table, plan->alembic.version_schema, err))
		goto out;
	dgm_pg_server_version(conn, b->r->facts.server_version,
			      sizeof(b->r->facts.server_version));
	if (dgm_cli_load_graph(&b->now, plan->release.repository, b->ini_rel, NULL, err) ||
	    dgm_cli_load_graph(&b->then, plan->release.repository, b->ini_rel, b->o->to, err))
		goto out;
	b->nwant = b->then->nheads;
	b->want = dgm_xcalloc(b->nwant + 1, sizeof(char *));
	for (size_t i = 0; i < b->nwant; i++)
		b->want[i] = b->then->heads[i]->id;
	ret = 0;
out:
	dgm_pg_close(conn);
	dgm_git_close(repo);
	return ret;
}

/* TAG must be behind the database, and the code must know the database. */
static int check_direction(rb *b, dgm_error *err)
{
	dgm_job *r = b->r;
	char **targets = NULL;
	size_t n = 0;

	if (dgm_cli_check_db_known(b->now, r->facts.revs, r->facts.nrevs,
				   r->plan->release.repository, b->ini_rel, "the checked-out code", err))
		return -1;
	for (size_t i = 0; i < b->nwant; i++) {
		dgm_alembic_steps st = { 0 };
		dgm_error e = DGM_ERROR_INIT;
		int rc = dgm_alembic_upgrade(&st, b->now, (const char *const *)r->facts.revs,
					     r->facts.nrevs, b->want[i], &e);
		size_t count = st.count;

		dgm_alembic_steps_free(&st);
		if (!dgm_alembic_find(b->now, b->want[i]))
			return dgm_error_set(err, DGM_E_USAGE, "'%s' is newer than the database and the "
					     "checked-out code: its head '%s' is unknown to both",
					     b->o->to, b->want[i]);
		if (rc == 0 && count > 0)
			return dgm_error_set(err, DGM_E_USAGE, "'%s' is newer than the database: its "
					     "head '%s' is not applied", b->o->to, b->want[i]);
	}
	if (dgm_migrate_plan_downgrade(&targets, &n, b->now, r->facts.revs, r->facts.nrevs,
				       b->want, b->nwant, err) == 0) {
		b->targets = targets;
		b->ntargets = n;
	} else if (b->o->restore == 0) {
		return -1;
	} else {
		dgm_warn("%s: the database snapshot will be restored instead", err->msg);
		dgm_error_clear(err);
		b->restore = true;
	}
	return 0;
}

/* The newest snapshot whose revisions are exactly TAG's heads. */
static void find_release_snapshot(rb *b)
{
	dgm_snapshot *all = NULL;
	size_t n = 0;
	dgm_error e = DGM_ERROR_INIT;

	if (dgm_snapshot_list(&all, &n, b->r->plan->snapshot.directory, &e))
		return;
	for (size_t i = 0; i < n && !b->have_release; i++)
		if (dgm_migrate_same_set(all[i].revisions.items, all[i].revisions.count, b->want,
					 b->nwant)) {
			b->release = all[i];
			memset(&all[i], 0, sizeof(all[i]));
			b->have_release = true;
		}
	dgm_snapshot_list_free(all, n);
}

/* Tables written since the release snapshot (a restore would lose that). */
static int writes_since(rb *b, dgm_error *err)
{
	PGconn *conn = NULL;
	PGresult *res = NULL;
	json_t *then, *now;
	const char *key;
	json_t *v;

	if (dgm_pg_connect(&conn, b->r->plan->database.url, "dgmigrate rollback", err) ||
	    dgm_pg_query(&res, conn, DGM_SNAPSHOT_WRITES_SQL, 0, NULL, err)) {
		dgm_pg_close(conn);
		return -1;
	}
	then = json_loads(b->release.writes ? b->release.writes : "{}", 0, NULL);
	now = json_loads(PQgetvalue(res, 0, 0), 0, NULL);
	json_object_foreach(now, key, v) {
		json_int_t before = json_integer_value(json_object_get(then, key));
		const char *dot = strchr(key, '.');

		/* Alembic's own bookkeeping is not application data */
		if (dot && !strcmp(dot + 1, b->r->plan->alembic.version_table))
			continue;
		if (json_integer_value(v) > before)
			dgm_buf_printf(&b->lost, "%s%s (+%lld)", b->lost.len ? ", " : "", key,
				       (long long)(json_integer_value(v) - before));
	}
	json_decref(then);
	json_decref(now);
	PQclear(res);
	dgm_pg_close(conn);
	return 0;
}

static int choose_path(rb *b, dgm_error *err)
{
	if (b->o->restore == 1)
		b->restore = true;
	if (!b->restore)
		return 0;
	if (!b->have_release)
		return dgm_error_set(err, DGM_E_RUN, "no snapshot of '%s' (revisions %s) to restore "
				     "in '%s'", b->o->to, b->nwant ? b->want[0] : "base",
				     b->r->plan->snapshot.directory);
	if (writes_since(b, err))
		return -1;
	if (b->lost.len && !b->o->accept_data_loss) {
		dgm_error_set(err, DGM_E_USAGE, "restoring snapshot '%s' would discard writes made "
			      "since it was taken: %s", b->release.id, b->lost.ptr);
		dgm_error_hint(err, "pass --accept-data-loss (a safety snapshot keeps them), or "
			       "roll back by downgrade (without --restore)");
		return -1;
	}
	return 0;
}


static void print_plan(rb *b)
{
	dgm_job *r = b->r;

	printf("rollback to '%s' (commit %.12s): nothing was changed\n", b->o->to, b->tag_commit);
	printf("database     at %s%s; target: the heads of '%s': ", r->facts.nrevs ?
	       r->facts.revs[0] : "base", r->facts.nrevs > 1 ? " and more" : "", b->o->to);
	for (size_t i = 0; i < b->nwant; i++)
		printf("%s%s", i ? ", " : "", b->want[i]);
	printf("\nsafety       snapshot of the current database (%s) and model store first\n",
	       r->plan->snapshot.rollback_safety == DGM_SAFETY_COPY ? "a server-side copy, or "
	       "pg_dump if other sessions are connected" : "pg_dump");
	if (b->restore)
		printf("database     restore snapshot '%s'%s\n", b->release.id,
		       b->lost.len ? " (discards writes made since)" : "");
	else
		for (size_t i = 0; i < b->ntargets; i++)
			printf("downgrade    alembic downgrade %s (with the current code)\n",
			       b->targets[i]);
	printf("checkout     HEAD %.12s -> '%s'\n", r->facts.head, b->o->to);
	if (b->have_release)
		printf("model store  from snapshot '%s' (archive sha256 %s)%s\n", b->release.id,
		       b->release.archive_sha256, b->release.has_store ? "" : ": none archived");
	else
		printf("model store  left as is: no snapshot of '%s' found\n", b->o->to);
	printf("data since   %s\n", b->lost.len ? b->lost.ptr : (b->restore ?
	       "no writes since the snapshot" : "kept (downgrade)"));
}

/* The SQL of each downgrade step, from the code checked out now. */
static int print_sql(rb *b, dgm_error *err)
{
	dgm_alembic_steps st = { 0 };
	const char *const *cur = (const char *const *)b->r->facts.revs;
	size_t ncur = b->r->facts.nrevs;
	char **owned = NULL;
	size_t nowned = 0;
	int ret = 0;

	for (size_t i = 0; i < b->ntargets && ret == 0; i++) {
		dgm_buf sql = DGM_BUF_INIT;
		char *range;

		if (ncur != 1) {
			printf("\n-- step %zu starts from %zu heads: 'alembic --sql' cannot show it\n",
			       i + 1, ncur);
			break;
		}
		range = dgm_xasprintf("%s:%s", cur[0], b->targets[i]);
		ret = dgm_migrate_alembic(b->r->plan, b->r->plan->release.repository, "downgrade",
					  range, true, &sql, err);
		if (ret == 0)
			printf("\n-- SQL of 'alembic downgrade %s --sql':\n%s", range, dgm_buf_cstr(&sql));
		free(range);
		dgm_buf_free(&sql);
		if (ret == 0 && dgm_alembic_downgrade(&st, b->now, cur, ncur, b->targets[i], err) == 0) {
			dgm_pg_strings_free(owned);
			nowned = st.nheads_after;
			owned = dgm_xcalloc(nowned + 1, sizeof(char *));
			for (size_t j = 0; j < nowned; j++)
				owned[j] = dgm_xstrdup(st.heads_after[j]->id);
			cur = (const char *const *)owned;
			ncur = nowned;
			dgm_alembic_steps_free(&st);
		}
	}
	dgm_pg_strings_free(owned);
	return ret;
}

static int do_downgrade(rb *b, dgm_error *err)
{
	long t = dgm_now_ms();

	dgm_job_step_start(b->r, "downgrade");
	b->r->migrate_started = true;
	for (size_t i = 0; i < b->ntargets; i++) {
		dgm_info("alembic downgrade %s", b->targets[i]);
		if (dgm_migrate_alembic(b->r->plan, b->r->plan->release.repository, "downgrade",
					b->targets[i], false, NULL, err)) {
			dgm_job_step_failed(b->r, "downgrade", dgm_now_ms() - t, err);
			return -1;
		}
	}
	dgm_job_step_done(b->r, "downgrade", dgm_now_ms() - t, NULL, "%zu alembic downgrade "
			  "step%s to %s", b->ntargets, b->ntargets == 1 ? "" : "s",
			  b->nwant ? b->want[0] : "base");
	return 0;
}

static int do_restore(rb *b, bool database, bool store, const char *step, dgm_error *err)
{
	dgm_restore_opts ro = { .database = database, .store = store, .terminate = true };
	long t = dgm_now_ms();

	dgm_job_step_start(b->r, step);
	if (dgm_snapshot_restore(b->r->plan, &b->release, &ro, err)) {
		dgm_job_step_failed(b->r, step, dgm_now_ms() - t, err);
		return -1;
	}
	dgm_job_step_done(b->r, step, dgm_now_ms() - t, json_pack("{s:s}", "snapshot",
			  b->release.id), "snapshot '%s' restored (%s)", b->release.id, step);
	return 0;
}

static int do_checkout(rb *b, dgm_error *err)
{
	long t = dgm_now_ms();

	dgm_job_step_start(b->r, "checkout");
	if (dgm_git_checkout(&b->r->git_before, b->r->plan->release.repository, b->o->to, err)) {
		dgm_job_step_failed(b->r, "checkout", dgm_now_ms() - t, err);
		return -1;
	}
	b->r->checked_out = true;
	dgm_job_step_done(b->r, "checkout", dgm_now_ms() - t, NULL, "'%s' checked out: HEAD "
			  "%.12s -> %.12s", b->o->to, b->r->git_before.commit, b->tag_commit);
	return 0;
}

/* Tables in the release snapshot's dump, from pg_restore --list. */
static void snapshot_tables(dgm_buf *out, const dgm_snapshot *s)
{
	char *dump = dgm_xasprintf("%s/%s", s->dir, s->format == DGM_DUMP_DIRECTORY ? "db" :
				   "db.dump");
	const char *argv[] = { "pg_restore", "--list", dump, NULL };
	dgm_buf list = DGM_BUF_INIT;
	dgm_child c = { .argv = argv, .out = &list, .timeout_ms = 60000 };
	dgm_error e = DGM_ERROR_INIT;

	char **names = NULL;
	size_t n = 0;

	if (dgm_run(&c, &e) == 0)
		for (char *l = strtok(list.ptr, "\n"); l; l = strtok(NULL, "\n")) {
			char schema[128], name[128];

			if (strstr(l, " TABLE DATA ") ||
			    sscanf(l, "%*d; %*u %*u TABLE %127s %127s", schema, name) != 2 ||
			    !strcmp(schema, "dgmigrate"))
				continue;
			names = dgm_xrealloc(names, (n + 1) * sizeof(char *));
			names[n++] = dgm_xasprintf("%s.%s", schema, name);
		}
	/* pg_restore lists in dump order; the database's list is sorted */
	dgm_sort_strings((const char **)names, n);
	for (size_t i = 0; i < n; i++) {
		dgm_buf_printf(out, "%s\n", names[i]);
		free(names[i]);
	}
	free(names);
	dgm_buf_free(&list);
	free(dump);
}

static int verify(rb *b, dgm_error *err)
{
	dgm_job *r = b->r;
	PGconn *conn = NULL;
	PGresult *res = NULL;
	dgm_buf want = DGM_BUF_INIT, have = DGM_BUF_INIT;
	dgm_git_state head;
	long t = dgm_now_ms();
	int ret = -1;

	dgm_job_step_start(r, "verify");
	if (dgm_pg_connect(&conn, r->plan->database.url, "dgmigrate verify", err) ||
	    dgm_pg_read_revisions(&r->revs_after, &r->nrevs_after, conn,
				  r->plan->alembic.version_table, r->plan->alembic.version_schema, err) ||
	    dgm_git_state_read(&head, r->plan->release.repository, err))
		goto out;
	if (!dgm_migrate_same_set(r->revs_after, r->nrevs_after, b->want, b->nwant)) {
		dgm_error_set(err, DGM_E_RUN, "alembic_version holds %s%s, not the heads of '%s'",
			      r->nrevs_after ? r->revs_after[0] : "nothing",
			      r->nrevs_after > 1 ? " and more" : "", b->o->to);
		goto out;
	}
	if (strcmp(head.commit, b->tag_commit) != 0) {
		dgm_error_set(err, DGM_E_RUN, "HEAD is %.12s, not '%s'", head.commit, b->o->to);
		goto out;
	}
	if (b->have_release) {
		snapshot_tables(&want, &b->release);
		if (dgm_pg_query(&res, conn, "SELECT string_agg(schemaname || '.' || tablename, E'\\n' "
				 "ORDER BY (schemaname || '.' || tablename) COLLATE \"C\") || E'\\n' FROM pg_tables WHERE schemaname NOT IN "
				 "('pg_catalog', 'information_schema', 'dgmigrate')", 0, NULL, err))
			goto out;
		dgm_buf_puts(&have, PQgetisnull(res, 0, 0) ? "" : PQgetvalue(res, 0, 0));
		if (want.len && strcmp(dgm_buf_cstr(&want), dgm_buf_cstr(&have)) != 0) {
			dgm_error_set(err, DGM_E_RUN, "the tables differ from those of snapshot '%s' "
				      "of '%s': expected [%s], found [%s]", b->release.id, b->o->to,
				      dgm_buf_cstr(&want), dgm_buf_cstr(&have));
			goto out;
		}
	}
	dgm_job_step_done(r, "verify", dgm_now_ms() - t, NULL, "alembic_version = %s, HEAD at "
			  "'%s'%s", r->nrevs_after ? r->revs_after[0] : "(base)", b->o->to,
			  want.len ? ", the same tables as the release snapshot" : "");
	ret = 0;
out:
	if (ret)
		dgm_job_step_failed(r, "verify", dgm_now_ms() - t, err);
	PQclear(res);
	dgm_pg_close(conn);
	dgm_buf_free(&want);
	dgm_buf_free(&have);
	return ret;
}

static int safety_snapshot(rb *b, dgm_error *err)
{
	const dgm_plan *plan = b->r->plan;
	dgm_snapshot_opts so = { .kind = "pre-rollback", .commit = b->r->facts.head,
				 .db = plan->snapshot.rollback_safety == DGM_SAFETY_COPY ?
				       DGM_SNAPSHOT_COPY : DGM_SNAPSHOT_DUMP,
				 .store_like = b->have_release ? &b->release : NULL };
	long t = dgm_now_ms();

	dgm_job_step_start(b->r, "snapshot");
	if (dgm_snapshot_create(&b->r->snap, plan, &so, err)) {
		dgm_job_step_failed(b->r, "snapshot", dgm_now_ms() - t, err);
		return -1;
	}
	b->r->have_snap = true;
	dgm_job_step_done(b->r, "snapshot", dgm_now_ms() - t, json_pack("{s:s}", "snapshot",
			  b->r->snap.id), "safety snapshot '%s' of the current state",
			  b->r->snap.id);
	return 0;
}

static int run_rollback(rb *b, dgm_error *err)
{
	if (safety_snapshot(b, err))
		return -1;
	if (!b->restore && do_downgrade(b, err)) {
		if (b->o->restore == 0 || !b->have_release)
			return -1;
		dgm_warn("the downgrade failed (%s): restoring snapshot '%s' instead", err->msg,
			 b->release.id);
		dgm_error_clear(err);
		b->restore = true;
	}
	if (do_checkout(b, err))
		return -1;
	if (b->have_release && (b->restore || b->release.has_store) &&
	    do_restore(b, b->restore, b->release.has_store, b->restore ? "restore" :
		       "restore.store", err))
		return -1;
	return verify(b, err);
}

static void rb_free(rb *b)
{
	dgm_migrate_targets_free(b->targets, b->ntargets);
	free(b->want);
	dgm_alembic_free(b->now);
	dgm_alembic_free(b->then);
	if (b->have_release)
		dgm_snapshot_free(&b->release);
	dgm_buf_free(&b->lost);
}

int dgm_release_rollback(const dgm_plan *plan, const dgm_rollback_opts *o, dgm_error *err)
{
	dgm_job r;
	rb b = { .o = o, .lost = DGM_BUF_INIT };
	int ret = -1;

	if (dgm_job_begin_locked(&r, plan, o->dry_run ? "rollback --dry-run" : "rollback",
				 o->plan_path, o->wait_lock_ms, o->lock, err))
		return -1;
	b.r = &r;
	r.reason = o->reason;
	r.tag = o->to;
	b.ini_rel = dgm_cli_ini_rel(plan->alembic.config, plan->release.repository);
	if (read_state(&b, err) ||
	    dgm_release_check_untracked(plan->release.repository, b.now, err) ||
	    check_direction(&b, err))
		goto fail;
	find_release_snapshot(&b);
	if (choose_path(&b, err))
		goto fail;
	if (!o->dry_run)
		dgm_job_journal(&r, "facts", json_pack("{s:s, s:s, s:b}", "to", o->to,
						       "commit_before", r.facts.head, "restore",
						       b.restore));
	if (o->dry_run) {
		print_plan(&b);
		ret = b.ntargets && !b.restore ? print_sql(&b, err) : 0;
		goto out;
	}
	if (run_rollback(&b, err)) {
		if (r.have_snap)
			dgm_error_hint(err, "the state before the rollback is in snapshot '%s': "
				       "dgmigrate backups restore %s PLAN", r.snap.id, r.snap.id);
		goto fail;
	}
	dgm_job_finish(&r, "success", NULL);
	dgm_info("rolled back to '%s'", o->to);
	ret = 0;
	goto out;
fail:
	dgm_job_finish(&r, "failed", err);
out:
	rb_free(&b);
	dgm_lock_release(&r.lock);
	dgm_job_free(&r);
	return ret;
}
