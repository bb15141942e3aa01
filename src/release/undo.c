/* undo.c - put the database, the code and the model store back to where
 * a run started: downgrade with the newer code still checked out (it has
 * the downgrade scripts), restore the snapshot where the downgrade
 * cannot, check out the previous commit, restore the store if it
 * changed; then check that each part is back. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dgm/fs.h"
#include "dgm/log.h"
#include "dgm/migrate.h"
#include "dgm/pg.h"
#include "dgm/restore.h"
#include "dgm/verify.h"
#include "internal.h"

static int read_revs(char ***revs, size_t *n, const dgm_plan *plan, dgm_error *err)
{
	PGconn *conn = NULL;
	int ret;

	if (dgm_pg_connect(&conn, plan->database.url, "dgmigrate rollback", err))
		return -1;
	ret = dgm_pg_read_revisions(revs, n, conn, plan->alembic.version_table,
				    plan->alembic.version_schema, err);
	dgm_pg_close(conn);
	return ret;
}

/* The downgrade scripts are the tag's: the work tree's while the tag is
 * checked out, else an export of the tag's commit (an undo that could not
 * reach the database has already put the code back; resume retries). */
static int downgrade_dir(char **dir, dgm_job *r, dgm_error *err)
{
	const char *repo = r->plan->release.repository;
	dgm_git_state now;

	*dir = NULL;
	if (dgm_git_state_read(&now, repo, err))
		return -1;
	if (!strcmp(now.commit, r->facts.tag_commit))
		return 0;
	if (dgm_fs_mkdir_p(r->plan->state_dir, 0700, err))
		return -1;
	*dir = dgm_xasprintf("%s/undo-%s-XXXXXX", r->plan->state_dir, r->id);
	if (!mkdtemp(*dir))
		return dgm_error_errno(err, DGM_E_IO, "cannot create '%s'", *dir);
	dgm_info("HEAD is no longer at '%s': downgrading with its scripts, exported from git",
		 r->plan->release.tag);
	return dgm_git_export(repo, r->facts.tag_commit, *dir, err);
}

/* alembic downgrade, step by step, to exactly the revisions before. */
static int downgrade(dgm_job *r, char **now, size_t nnow, dgm_error *err)
{
	char **targets = NULL;
	char *dir = NULL;
	size_t n = 0;
	int ret = -1;

	if (dgm_migrate_plan_downgrade(&targets, &n, r->facts.graph, now, nnow, r->facts.revs,
				       r->facts.nrevs, err) ||
	    downgrade_dir(&dir, r, err))
		goto out;
	for (size_t i = 0; i < n; i++) {
		dgm_info("alembic downgrade %s", targets[i]);
		if (dgm_migrate_alembic(r->plan, dir ? dir : r->plan->release.repository,
					"downgrade", targets[i], false, NULL, err))
			goto out;
	}
	ret = 0;
out:
	if (dir) {
		dgm_error ignore = DGM_ERROR_INIT;

		dgm_fs_remove_tree(dir, &ignore);
		free(dir);
	}
	dgm_migrate_targets_free(targets, n);
	return ret;
}

/* A restore that discards writes (--accept-data-loss) keeps them in a
 * safety snapshot of the current state first, as every restore does. */
static int restore_db(dgm_job *r, dgm_error *err)
{
	dgm_job_restore_opts o = { .ro = { .database = true, .store = false, .terminate = true },
				   .own_unfinished = true, .accept = r->accept_data_loss,
				   .instead = "keep them: fix the failing downgrade, then run "
				   "'dgmigrate resume PLAN'" };
	dgm_snapshot_opts so = { .kind = "pre-restore",
				 .db = r->plan->snapshot.rollback_safety == DGM_SAFETY_COPY ?
				       DGM_SNAPSHOT_COPY : DGM_SNAPSHOT_DUMP, .store_like = &r->snap };
	dgm_dataloss dl;
	dgm_snapshot safety = { 0 };
	int ret = -1;

	dgm_warn("restoring the database from snapshot '%s'", r->snap.id);
	dgm_dataloss_check(&dl, r->plan, &r->snap, &(dgm_dataloss_opts){ .own_unfinished = true });
	o.checked = &dl;
	if (dl.verdict != DGM_DATALOSS_NONE && r->accept_data_loss) {
		if (dgm_snapshot_create(&safety, r->plan, &so, err)) {
			dgm_error_prefix(err, "no safety snapshot of the current state, so nothing "
					 "was restored");
			goto out;
		}
		dgm_info("safety snapshot '%s' holds the current state", safety.id);
		o.kept_in = safety.id;
	}
	ret = dgm_job_restore(r, &r->snap, &o, err);
out:
	dgm_snapshot_free(&safety);
	dgm_dataloss_free(&dl);
	return ret;
}

static int undo_database(dgm_job *r, dgm_error *err)
{
	char **now = NULL;
	size_t nnow = 0;
	long t = dgm_now_ms();
	int ret = -1;

	dgm_job_step_start(r, "undo.database");
	if (read_revs(&now, &nnow, r->plan, err)) {
		dgm_job_step_failed(r, "undo.database", dgm_now_ms() - t, err);
		goto out;
	}
	if (dgm_migrate_same_set(now, nnow, r->facts.revs, r->facts.nrevs)) {
		ret = 0;
		dgm_job_step_done(r, "undo.database", dgm_now_ms() - t, NULL,
				  "the database's revisions were unchanged");
		goto out;
	}
	if (downgrade(r, now, nnow, err) == 0) {
		ret = 0;
		dgm_job_step_done(r, "undo.database", dgm_now_ms() - t, NULL,
				  "downgraded to %s", r->facts.nrevs ? r->facts.revs[0] : "base");
		goto out;
	}
	dgm_warn("the downgrade failed (%s): falling back to the snapshot", err->msg);
	dgm_error_clear(err);
	ret = restore_db(r, err);
	if (ret)
		dgm_job_step_failed(r, "undo.database", dgm_now_ms() - t, err);
	else
		dgm_job_step_done(r, "undo.database", dgm_now_ms() - t, NULL,
				  "the downgrade failed; snapshot '%s' restored", r->snap.id);
out:
	dgm_pg_strings_free(now);
	return ret;
}

static int undo_code(dgm_job *r, dgm_error *err)
{
	long t = dgm_now_ms();

	if (!r->checked_out)
		return 0;
	dgm_job_step_start(r, "undo.code");
	if (dgm_git_restore_state(r->plan->release.repository, &r->git_before, err)) {
		dgm_job_step_failed(r, "undo.code", dgm_now_ms() - t, err);
		return -1;
	}
	dgm_job_step_done(r, "undo.code", dgm_now_ms() - t, NULL, "HEAD back at %.12s%s%s",
			  r->git_before.commit, r->git_before.branch[0] ? " on " : "",
			  r->git_before.branch);
	return 0;
}

/* The run does not write the store, but hooks or the application may:
 * put it back when it differs (identical stores are left alone). */
static int undo_store(dgm_job *r, dgm_error *err)
{
	dgm_restore_opts o = { .database = false, .store = true };
	long t = dgm_now_ms();

	if (!r->snap.has_store)
		return 0;
	dgm_job_step_start(r, "undo.store");
	if (dgm_snapshot_restore(r->plan, &r->snap, &o, err)) {
		dgm_job_step_failed(r, "undo.store", dgm_now_ms() - t, err);
		return -1;
	}
	dgm_job_step_done(r, "undo.store", dgm_now_ms() - t, NULL,
			  "model store matches snapshot '%s'", r->snap.id);
	return 0;
}

/* Compared, not assumed: revisions and HEAD as before. */
static int check_back(dgm_job *r, dgm_error *err)
{
	dgm_git_state now;
	char **revs = NULL;
	size_t n = 0;
	int ret = -1;

	if (read_revs(&revs, &n, r->plan, err) ||
	    dgm_git_state_read(&now, r->plan->release.repository, err))
		goto out;
	if (!dgm_migrate_same_set(revs, n, r->facts.revs, r->facts.nrevs)) {
		dgm_error_set(err, DGM_E_RUN, "after the rollback the database is at %s, not %s",
			      n ? revs[0] : "base", r->facts.nrevs ? r->facts.revs[0] : "base");
		goto out;
	}
	if (strcmp(now.commit, r->facts.head) != 0) {
		dgm_error_set(err, DGM_E_RUN, "after the rollback HEAD is %.12s, not %.12s",
			      now.commit, r->facts.head);
		goto out;
	}
	dgm_pg_strings_free(r->revs_after);
	r->revs_after = revs;
	r->nrevs_after = n;
	revs = NULL;
	ret = 0;
out:
	dgm_pg_strings_free(revs);
	return ret;
}

/* Keep the first failure in err; later ones are warned about. */
static void note_failure(bool *failed, dgm_error *err, const dgm_error *e)
{
	if (!*failed)
		*err = *e;
	else
		dgm_warn("%s", e->msg);
	*failed = true;
}

/* Each part is put back on its own: the code and the store need no
 * database, so an outage that stops the database's undo does not leave
 * HEAD at the new release. Whatever is not back is left to `resume`. */
int dgm_job_undo(dgm_job *r, dgm_error *err)
{
	dgm_error e = DGM_ERROR_INIT;
	bool failed = false;

	if (r->migrate_started && undo_database(r, &e))
		note_failure(&failed, err, &e);
	dgm_error_clear(&e);
	if (undo_code(r, &e))
		note_failure(&failed, err, &e);
	dgm_error_clear(&e);
	if (undo_store(r, &e))
		note_failure(&failed, err, &e);
	if (failed || check_back(r, err))
		return -1;
	if (r->hooks_before_ran) {
		dgm_verify_result res = DGM_VERIFY_RESULT_INIT;
		int rc = dgm_verify_run_hooks(&res, r->plan, &r->plan->hooks.after, "after", err);

		dgm_verify_result_free(&res);
		if (rc)
			return -1;
	}
	dgm_info("rolled back: database at %s, HEAD at %.12s, model store as before",
		 r->facts.nrevs ? r->facts.revs[0] : "base", r->facts.head);
	return 0;
}
