/* apply.c - `dgmigrate apply`: lock, preflight, hooks, snapshot,
 * checkout, upgrade, postconditions, hooks, health, record. Every step
 * is journaled before and after it runs; a failure after the snapshot
 * follows the plan's on_failure. Copy-first (apply_parts.c), the store
 * archive and the dump of the snapshot's copy are made beside checkout
 * and upgrade: hooks.after waits for the archive, the end of the run
 * for the dump. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dgm/buf.h"
#include "dgm/json.h"
#include "dgm/log.h"
#include "dgm/migrate.h"
#include "dgm/pg.h"
#include "dgm/verify.h"
#include "internal.h"

static int step_hooks(dgm_job *r, const dgm_plan_hooks *h, const char *which, dgm_error *err)
{
	dgm_verify_result res = DGM_VERIFY_RESULT_INIT;
	char step[32];
	long t = dgm_now_ms();
	int ret;

	if (!h->count)
		return 0;
	snprintf(step, sizeof(step), "hooks.%s", which);
	dgm_job_step_start(r, step);
	ret = dgm_verify_run_hooks(&res, r->plan, h, which, err);
	if (ret)
		dgm_job_step_failed(r, step, dgm_now_ms() - t, err);
	else
		dgm_job_step_done(r, step, dgm_now_ms() - t, NULL, "%zu hook%s ran", res.count,
				  res.count == 1 ? "" : "s");
	dgm_verify_result_free(&res);
	return ret;
}

/* Copy-first where a server-side copy can be made (keep_copies >= 1):
 * the checked copy gates the release, the store archive and the dump of
 * the copy follow beside it (apply_parts.c); else a verified dump and
 * archive first. */
static int step_snapshot(dgm_job *r, dgm_error *err)
{
	bool copy = r->plan->snapshot.keep_copies > 0;
	dgm_snapshot_opts o = { .kind = "pre-apply", .commit = r->facts.head,
				.db = copy ? DGM_SNAPSHOT_COPY_DUMP : DGM_SNAPSHOT_DUMP,
				.copy_first = copy };
	long t = dgm_now_ms();
	char store[160] = "", db[320];

	dgm_job_step_start(r, "snapshot");
	if (dgm_snapshot_create(&r->snap, r->plan, &o, err)) {
		dgm_job_step_failed(r, "snapshot", dgm_now_ms() - t, err);
		return -1;
	}
	r->have_snap = true;
	if (r->snap.has_store)
		snprintf(store, sizeof(store), ", model store %lld entries (archive sha256 %.16s...)",
			 r->snap.entries, r->snap.archive_sha256);
	if (r->snap.dump_pending)
		snprintf(db, sizeof(db), "database as the server-side copy '%s' (revisions and "
			 "catalog fingerprint %.16s... checked; its off-server dump%s follow%s)",
			 r->snap.db_copy, r->snap.catalog_sha256, r->snap.store_pending ?
			 " and the model store archive" : "", r->snap.store_pending ? "" : "s");
	else
		snprintf(db, sizeof(db), "database %.1f MiB (%d entries, files sha256 %.16s...)",
			 (double)r->snap.db_bytes / 1048576.0, r->snap.toc_entries,
			 r->snap.db_sha256);
	dgm_job_step_done(r, "snapshot", dgm_now_ms() - t,
			  json_pack("{s:s, s:s, s:s, s:s, s:b, s:b}", "snapshot", r->snap.id,
				    "archive_sha256", r->snap.archive_sha256, "db_sha256",
				    r->snap.db_sha256, "copy", r->snap.db_copy ? r->snap.db_copy : "",
				    "dump_pending", r->snap.dump_pending, "store_pending",
				    r->snap.store_pending),
			  "snapshot '%s': %s%s, verified", r->snap.id, db, store);
	return 0;
}

static int step_checkout(dgm_job *r, dgm_error *err)
{
	long t = dgm_now_ms();

	dgm_job_step_start(r, "checkout");
	if (dgm_git_checkout(&r->git_before, r->plan->release.repository, r->plan->release.tag,
			     err)) {
		dgm_job_step_failed(r, "checkout", dgm_now_ms() - t, err);
		return -1;
	}
	r->checked_out = true;
	dgm_job_step_done(r, "checkout", dgm_now_ms() - t,
			  json_pack("{s:s, s:s, s:s}", "commit_before", r->git_before.commit,
				    "branch_before", r->git_before.branch, "commit_after",
				    r->facts.tag_commit),
			  "'%s' checked out: HEAD %.12s -> %.12s (detached)", r->plan->release.tag,
			  r->git_before.commit, r->facts.tag_commit);
	return 0;
}

static int step_migrate(dgm_job *r, dgm_error *err)
{
	long t = dgm_now_ms();

	dgm_job_step_start(r, "migrate");
	r->migrate_started = true;
	dgm_info("alembic upgrade %s: %zu revision%s", r->plan->alembic.target,
		 r->facts.upgrade.count, r->facts.upgrade.count == 1 ? "" : "s");
	if (dgm_migrate_alembic(r->plan, r->plan->release.repository, "upgrade",
				r->plan->alembic.target, false, NULL, err)) {
		dgm_job_step_failed(r, "migrate", dgm_now_ms() - t, err);
		return -1;
	}
	r->migrated = true;
	dgm_job_step_done(r, "migrate", dgm_now_ms() - t, NULL, "alembic upgrade %s ran %zu "
			  "revision%s", r->plan->alembic.target, r->facts.upgrade.count,
			  r->facts.upgrade.count == 1 ? "" : "s");
	return 0;
}

static int step_verify(dgm_job *r, dgm_error *err)
{
	dgm_verify_result res = DGM_VERIFY_RESULT_INIT;
	const dgm_alembic_steps *up = &r->facts.upgrade;
	char **want = dgm_xcalloc(up->nheads_after + 1, sizeof(char *));
	PGconn *conn = NULL;
	long t = dgm_now_ms();
	int ret = -1;

	dgm_job_step_start(r, "postconditions");
	for (size_t i = 0; i < up->nheads_after; i++)
		want[i] = up->heads_after[i]->id;
	if (dgm_pg_connect(&conn, r->plan->database.url, "dgmigrate verify", err) ||
	    dgm_verify_postconditions(&res, conn, r->plan, want, up->nheads_after, err) ||
	    dgm_pg_read_revisions(&r->revs_after, &r->nrevs_after, conn,
				  r->plan->alembic.version_table, r->plan->alembic.version_schema, err)) {
		dgm_job_step_failed(r, "postconditions", dgm_now_ms() - t, err);
		goto out;
	}
	{
		json_t *items = json_array();

		for (size_t i = 0; i < res.count; i++)
			json_array_append_new(items, json_pack("{s:s, s:b, s:s}", "check",
				res.items[i].name, "ok", res.items[i].ok, "evidence",
				res.items[i].evidence ? res.items[i].evidence : ""));
		dgm_job_step_done(r, "postconditions", dgm_now_ms() - t,
				  json_pack("{s:o, s:o}", "checks", items, "revisions_after",
					    dgm_json_strs(r->revs_after, r->nrevs_after)),
				  "%zu checks passed; alembic_version = %s", res.count,
				  r->nrevs_after ? r->revs_after[0] : "(base)");
	}
	ret = 0;
out:
	dgm_pg_close(conn);
	dgm_verify_result_free(&res);
	free(want);
	return ret;
}

static int step_health(dgm_job *r, dgm_error *err)
{
	dgm_verify_result res = DGM_VERIFY_RESULT_INIT;
	long t = dgm_now_ms();
	int ret;

	if (!r->plan->health_check.url)
		return 0;
	dgm_job_step_start(r, "health");
	ret = dgm_verify_health(&res, r->plan, err);
	if (ret)
		dgm_job_step_failed(r, "health", dgm_now_ms() - t, err);
	else
		dgm_job_step_done(r, "health", dgm_now_ms() - t, NULL, "%s",
				  res.count ? res.items[res.count - 1].evidence : "answered");
	dgm_verify_result_free(&res);
	return ret;
}

/* What follows the upgrade; resume runs it too. */
int dgm_release_finish_apply(dgm_job *r, dgm_error *err)
{
	/* the release is finished: a restore discards what is written from
	 * here; the application may write the store once hooks.after ran */
	if (step_verify(r, err) ||
	    dgm_job_mark_release_baseline(r, r->have_snap ? &r->snap : NULL) ||
	    dgm_apply_store_finish(r, err) ||
	    step_hooks(r, &r->plan->hooks.after, "after", err) ||
	    step_health(r, err))
		return -1;
	r->live = true;
	r->live_ms = dgm_now_ms() - r->started_ms;
	dgm_info("the release is live after %.1f s", (double)r->live_ms / 1000.0);
	return 0;
}

/* The steps that change things, in PRODUCT.md's order. */
static int run_steps(dgm_job *r, dgm_error *err)
{
	if (step_hooks(r, &r->plan->hooks.before, "before", err))
		return -1;
	r->hooks_before_ran = r->plan->hooks.before.count > 0;
	if (step_snapshot(r, err) || dgm_apply_parts_start(r, err) || step_checkout(r, err) ||
	    step_migrate(r, err) || dgm_release_finish_apply(r, err))
		return -1;
	return 0;
}

/* Where HEAD is after an undo that did not finish (for the hint). */
static const char *undo_code_at(dgm_job *r)
{
	static dgm_git_state now;
	dgm_error ignore = DGM_ERROR_INIT;

	if (dgm_git_state_read(&now, r->plan->release.repository, &ignore))
		return "(unknown)";
	return now.commit;
}

/* on_failure: rollback undoes, stop says where everything is. */
static void handle_failure(dgm_job *r, dgm_error *err)
{
	dgm_error undo_err = DGM_ERROR_INIT;

	if (!r->have_snap) {
		dgm_job_finish(r, "failed", err);
		return;
	}
	if (r->plan->on_failure == DGM_ON_FAILURE_STOP) {
		dgm_error_hint(err, "on_failure is 'stop': code at %s, database %s, snapshot '%s'; "
			       "undo with: dgmigrate rollback --to <previous tag> PLAN, or "
			       "dgmigrate backups restore %s PLAN", r->checked_out ?
			       r->plan->release.tag : "unchanged", r->migrate_started ?
			       "possibly partly migrated" : "unchanged", r->snap.id, r->snap.id);
		dgm_job_finish(r, "stopped", err);
		return;
	}
	dgm_warn("%s", err->msg);
	dgm_warn("on_failure is 'rollback': putting the database, the code and the model store "
		 "back");
	if (dgm_job_undo(r, &undo_err)) {
		char first[DGM_ERROR_MSG_MAX];

		/* err->msg is both the source and the target: copy it first */
		snprintf(first, sizeof(first), "%s", err->msg);
		dgm_error_set(err, DGM_E_RUN, "%.900s; and the rollback failed too: %.900s", first,
			      undo_err.msg);
		if (r->loss_refused)
			dgm_job_hint_loss_refused(r, err);
		else
			dgm_error_hint(err, "the run's journal stays open: once the cause is fixed "
				       "(the database server answers), run: dgmigrate resume PLAN. "
				       "Now the code is at %.12s, the database %s; snapshot '%s' "
				       "holds the state before the run", undo_code_at(r),
				       r->migrate_started ? "not known to be back" : "unchanged",
				       r->snap.id);
		dgm_job_leave_open(r, err);
		return;
	}
	dgm_error_hint(err, "everything was put back as it was before the run (snapshot '%s' "
		       "kept)", r->snap.id);
	dgm_job_finish(r, "rolled-back", err);
}

/* Nothing to do is not a release: with the database at the target and
 * HEAD at the tag there is nothing to snapshot or record. The journal is
 * ended (it was opened under the lock) and no report or history row is
 * written; --force makes it a run like any other. */
static bool up_to_date(const dgm_job *r)
{
	return r->facts.upgrade_known && r->facts.upgrade.count == 0 &&
	       !strcmp(r->facts.head, r->facts.tag_commit);
}

static void say_up_to_date(dgm_job *r)
{
	dgm_buf f = DGM_BUF_INIT;

	dgm_job_journal_end(r, "up-to-date", NULL);
	dgm_buf_puts(&f, "\"outcome\":\"up-to-date\",\"run\":");
	dgm_buf_json_str(&f, r->id);
	dgm_event("end", f.ptr);
	dgm_buf_free(&f);
	if (!dgm_log_json())
		printf("apply '%s': up to date (database at %s, HEAD at '%s'): nothing to do; "
		       "--force takes a snapshot and records a run anyway\n", r->plan->release.tag,
		       r->facts.nrevs ? r->facts.revs[0] : "base", r->plan->release.tag);
}

int dgm_release_apply(const dgm_plan *plan, const dgm_apply_opts *o, dgm_error *err)
{
	dgm_job r;
	int ret = -1;

	if (dgm_job_begin_locked(&r, plan, "apply", o->plan_path, o->wait_lock_ms, NULL, err))
		return -1;
	dgm_info("preflight:");
	if (dgm_preflight(&r.facts, plan, DGM_PREFLIGHT_APPLY, false, err)) {
		dgm_job_finish(&r, "failed", err);
		goto out;
	}
	if (!o->force && up_to_date(&r)) {
		say_up_to_date(&r);
		ret = 0;
		goto out;
	}
	if (dgm_job_record_facts(&r, err)) {
		dgm_job_finish(&r, "failed", err);
		goto out;
	}
	if (run_steps(&r, err)) {
		/* the undo may need the copy the dump reads */
		dgm_apply_parts_cancel(&r);
		handle_failure(&r, err);
		goto out;
	}
	/* the run ends once every backup is verified */
	if (dgm_apply_dump_finish(&r, err)) {
		dgm_apply_dump_failed(&r, err);
		goto out;
	}
	dgm_job_finish(&r, "success", NULL);
	ret = 0;
out:
	dgm_lock_release(&r.lock);
	dgm_job_free(&r);
	return ret;
}
