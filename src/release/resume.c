/* resume.c - `dgmigrate resume`: finish or undo a run that was killed.
 * The journal says what the run started from (its facts record) and how
 * far it got (each step's start and done records): an apply whose
 * upgrade finished is completed (verify, hooks, health, the dump of a
 * copy-first snapshot's copy, record); any
 * other interrupted apply is undone; an interrupted rollback is run
 * again to the same tag, which is safe because every rollback step
 * starts from what the database and the work tree hold now. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dgm/buf.h"
#include "dgm/project.h"
#include "dgm/journal.h"
#include "dgm/log.h"
#include "dgm/pg.h"
#include "dgm/pgbackrest.h"
#include "dgm/verify.h"
#include "internal.h"

/* What the readable records of a damaged journal still tell: the run,
 * its last step and the snapshot taken before it changed anything. */
static void damage_hint(const dgm_journal_view *v, dgm_error *err)
{
	json_t *last = NULL, *rec;
	const char *snap = json_string_value(json_object_get(dgm_journal_data(v, "snapshot"),
							     "snapshot"));
	dgm_buf what = DGM_BUF_INIT;
	size_t i;

	json_array_foreach(v->records, i, rec)
		if (!strcmp(json_string_value(json_object_get(rec, "type")), "step"))
			last = rec;
	dgm_buf_printf(&what, "the readable records show run '%s' (%s)", v->run ? v->run : "?",
		       v->command ? v->command : "command unknown");
	if (last)
		dgm_buf_printf(&what, ", last step '%s' (%s)",
			       json_string_value(json_object_get(last, "step")),
			       json_string_value(json_object_get(last, "phase")));
	if (snap)
		dgm_buf_printf(&what, "; snapshot '%s' holds the state before it: dgmigrate backups "
			       "restore %s PLAN", snap, snap);
	else
		dgm_buf_puts(&what, "; no snapshot was recorded: check with dgmigrate status PLAN");
	dgm_error_hint(err, "resume cannot tell what the run changed; %s; then move the journal "
		       "aside (mv '%s' '%s.damaged') so resume can settle older runs",
		       dgm_buf_cstr(&what), v->path, v->path);
	dgm_buf_free(&what);
}

/* Load one journal: 1 when it is unfinished (*v filled), 0 when it has
 * ended, -1 when it is damaged or unreadable and has not ended. */
static int load_one(dgm_journal_view *v, const char *path, dgm_error *err)
{
	if (dgm_journal_load(v, path, err)) {
		if (!v->path)
			return -1;
		if (v->ended) {
			dgm_warn("%s (the run ended: ignored)", err->msg);
			dgm_error_clear(err);
			dgm_journal_free(v);
			return 0;
		}
		damage_hint(v, err);
		dgm_journal_free(v);
		return -1;
	}
	if (v->torn_line)
		dgm_warn("%s:%d: torn last record ignored (a crash in the middle of a write)",
			 path, v->torn_line);
	if (v->ended) {
		dgm_journal_free(v);
		return 0;
	}
	return 1;
}

/* The newest journal without an end record, or none (out->path NULL). */
static int find_unfinished(dgm_journal_view *out, const dgm_plan *plan, dgm_error *err)
{
	char *dir = dgm_xasprintf("%s/journal", plan->state_dir);
	struct dirent **names = NULL;
	int n = scandir(dir, &names, NULL, alphasort), ret = 0;

	memset(out, 0, sizeof(*out));
	for (int i = n - 1; i >= 0; i--) {
		const char *name = names[i]->d_name;
		size_t len = strlen(name);

		if (!out->path && ret == 0 && len > 6 && !strcmp(name + len - 6, ".jsonl")) {
			char *path = dgm_xasprintf("%s/%s", dir, name);

			if (load_one(out, path, err) < 0)
				ret = -1;
			free(path);
		}
		free(names[i]);
	}
	free(names);
	free(dir);
	return ret;
}

static const char *phase(const dgm_journal_view *v, const char *step)
{
	return dgm_journal_phase(v, step);
}

/* Rebuild what the killed apply knew from its facts record. */
static int load_facts(dgm_job *r, const dgm_journal_view *v, dgm_error *err)
{
	json_t *revs = json_object_get(v->facts, "revisions_before");
	const char *snap = json_string_value(json_object_get(dgm_journal_data(v, "snapshot"),
							     "snapshot"));

	r->facts.nrevs = json_array_size(revs);
	r->facts.revs = dgm_xcalloc(r->facts.nrevs + 1, sizeof(char *));
	for (size_t i = 0; i < r->facts.nrevs; i++)
		r->facts.revs[i] = dgm_xstrdup(json_string_value(json_array_get(revs, i)));
	/* the reader checked that each of these facts is there and a string */
	snprintf(r->facts.head, sizeof(r->facts.head), "%s", dgm_journal_fact(v, "commit_before"));
	snprintf(r->facts.tag_commit, sizeof(r->facts.tag_commit), "%s",
		 dgm_journal_fact(v, "tag_commit"));
	snprintf(r->git_before.commit, sizeof(r->git_before.commit), "%s", r->facts.head);
	snprintf(r->git_before.branch, sizeof(r->git_before.branch), "%s",
		 dgm_journal_fact(v, "branch_before"));
	r->facts.server_version[0] = '?';
	if (dgm_project_plan_graph(&r->facts.graph, r->plan, r->plan->release.tag, err) ||
	    dgm_alembic_upgrade(&r->facts.upgrade, r->facts.graph,
				(const char *const *)r->facts.revs, r->facts.nrevs,
				r->plan->alembic.target, err))
		return -1;
	r->facts.upgrade_known = true;
	if (snap) {
		if (dgm_snapshot_find(&r->snap, r->plan->snapshot.directory, snap, err))
			return -1;
		r->have_snap = true;
		/* copy-first: the dump of the copy had started and is not in
		 * the manifest (a dump that got there is kept) */
		r->snap.dump_pending = phase(v, "dump") && !r->snap.has_dump && r->snap.db_copy;
		r->snap.store_pending = phase(v, "archive") && !r->snap.has_store &&
					r->plan->model_store.path;
	}
	r->checked_out = phase(v, "checkout") != NULL;
	r->migrate_started = phase(v, "migrate") != NULL;
	r->hooks_before_ran = phase(v, "hooks.before") && !strcmp(phase(v, "hooks.before"), "done");
	return 0;
}


static int resume_apply(dgm_job *r, const dgm_journal_view *v, dgm_error *err)
{
	const char *mig = phase(v, "migrate");

	if (!v->facts) {
		dgm_info("the run stopped before preflight finished: nothing had changed");
		dgm_job_finish(r, "failed", NULL);
		return 0;
	}
	if (load_facts(r, v, err))
		return -1;
	if (mig && !strcmp(mig, "done")) {
		dgm_info("the upgrade had finished: completing the run (verify, hooks, health)");
		r->migrated = true;
		if (dgm_release_finish_apply(r, err) == 0) {
			/* the run ends with its backups verified */
			if (dgm_apply_dump_finish(r, err)) {
				dgm_apply_dump_failed(r, err);
				return -1;
			}
			dgm_job_finish(r, "success", NULL);
			return 0;
		}
		dgm_warn("completing failed (%s): undoing the run instead", err->msg);
		dgm_error_clear(err);
	} else
		dgm_info("the run stopped before its upgrade finished: undoing it");
	/* the parts the killed run was making are not finished now: the
	 * snapshot keeps its copy (and the undo may need it); the store was
	 * not written by anyone before hooks.after, which waits for its
	 * archive */
	dgm_apply_parts_discard(r);
	if (dgm_job_undo(r, err)) {
		/* not settled: the journal stays open for the next resume */
		if (r->loss_refused)
			dgm_job_hint_loss_refused(r, err);
		else
			dgm_error_hint(err, "the run's journal stays open: once the cause is fixed, "
				       "run dgmigrate resume PLAN again");
		dgm_job_leave_open(r, err);
		return -1;
	}
	dgm_job_finish(r, "rolled-back", NULL);
	return 0;
}

/* A rollback killed before its facts record changed nothing: end its
 * journal. One with facts is run again to the same tag, which takes
 * over the lock; its old journal ends here, the new run has its own. */
static int resume_rollback(const dgm_plan *plan, const dgm_journal_view *v, dgm_lock *lock,
			   bool accept_data_loss, dgm_error *err)
{
	dgm_rollback_opts o = { .to = dgm_journal_fact(v, "to"), .restore = -1,
				.accept_data_loss = accept_data_loss,
				.reason = "resume of an interrupted rollback", .lock = lock };
	dgm_error why = DGM_ERROR_INIT;
	dgm_job end;
	char *to = o.to ? dgm_xstrdup(o.to) : NULL;
	int ret;

	if (dgm_job_reopen(&end, plan, v->command, v->path, v->run, v->seq, v->started_at, err)) {
		dgm_job_free(&end);
		free(to);
		return -1;
	}
	if (!to) {
		dgm_info("the rollback stopped before it changed anything: nothing had changed "
			 "(run it again to roll back)");
		dgm_error_set(&why, DGM_E_RUN, "killed before it changed anything; nothing had "
			      "changed");
		dgm_job_journal_end(&end, "failed", &why);
		dgm_job_free(&end);
		return 0;
	}
	/* the database first: a rollback killed in its swap may have left
	 * none under its name */
	if (dgm_release_aside_recover(plan, v, err)) {
		dgm_job_free(&end);
		free(to);
		return -1;
	}
	dgm_job_journal_end(&end, "resumed", NULL);
	dgm_job_free(&end);
	o.to = to;
	ret = dgm_release_rollback(plan, &o, err);
	free(to);
	return ret;
}

/* Under the lock: journals that hold no complete record (killed while
 * being created) are removed, as their run changed nothing. */
static int next_unfinished(dgm_journal_view *v, const dgm_plan *plan, dgm_error *err)
{
	for (;;) {
		if (find_unfinished(v, plan, err))
			return -1;
		if (!v->path || v->begin)
			return 0;
		dgm_info("the journal '%s' holds no complete record (killed as it started): "
			 "nothing had changed; removing it", v->path);
		if (unlink(v->path) != 0) {
			dgm_error_errno(err, DGM_E_IO, "cannot remove the empty journal '%s'", v->path);
			dgm_journal_free(v);
			return -1;
		}
		dgm_journal_free(v);
	}
}

static int resume_locked(const dgm_plan *plan, dgm_lock *lock, bool accept_data_loss,
			 dgm_error *err)
{
	dgm_journal_view v;
	dgm_job r;
	int ret = -1;

	/* again under the lock: the run seen before may have ended since */
	if (next_unfinished(&v, plan, err))
		return -1;
	if (!v.path) {
		dgm_info("nothing to resume: every run in '%s/journal' has ended", plan->state_dir);
		return 0;
	}
	dgm_info("resuming run '%s' (%s) from '%s'", v.run, v.command, v.path);
	if (!strncmp(v.command, "rollback", 8)) {
		ret = resume_rollback(plan, &v, lock, accept_data_loss, err);
		goto out;
	}
	if (strcmp(v.command, "apply")) {
		dgm_error_set(err, DGM_E_RUN, "%s: cannot resume a '%s' run", v.path, v.command);
		dgm_error_hint(err, "move the journal aside (mv '%s' '%s.done') if that run needs "
			       "nothing more", v.path, v.path);
		goto out;
	}
	if (dgm_job_reopen(&r, plan, v.command, v.path, v.run, v.seq, v.started_at, err)) {
		dgm_job_free(&r);
		goto out;
	}
	r.lock = *lock;
	lock->conn = NULL;
	r.accept_data_loss = accept_data_loss;
	ret = resume_apply(&r, &v, err);
	dgm_lock_release(&r.lock);
	dgm_job_free(&r);
out:
	dgm_journal_free(&v);
	return ret;
}

int dgm_release_resume(const dgm_plan *plan, bool accept_data_loss, dgm_error *err)
{
	dgm_journal_view v;
	dgm_lock lock = { NULL };
	int ret;

	/* a restore: cluster first: it may have left the server stopped, and
	 * nothing else can run (nor take the lock) until it is back */
	if (dgm_pgbr_cluster_resume(plan, err))
		return -1;
	/* then a database swap killed between its renames: until it is
	 * settled the database may have no name (a rollback's journal would
	 * settle it too, a backups restore has none) */
	if (dgm_db_swap_settle(plan, err))
		return -1;
	/* what a killed snapshot left (sweep.c: under the lock it takes, and
	 * only reported while a live run holds it) */
	dgm_snapshot_sweep_locked(plan);
	/* A first look without the lock: nothing to do needs the journal only. */
	if (find_unfinished(&v, plan, err))
		return -1;
	if (!v.path) {
		dgm_info("nothing to resume: every run in '%s/journal' has ended", plan->state_dir);
		return 0;
	}
	dgm_journal_free(&v);
	/* Nothing is written to a journal without the run's lock: a live
	 * run holds it, and then resume stops here (exit 3). */
	if (dgm_lock_acquire(&lock, plan->database.url, "resume", 0, err))
		return -1;
	dgm_snapshot_pitr_sweep(plan);
	ret = resume_locked(plan, &lock, accept_data_loss, err);
	dgm_lock_release(&lock);
	return ret;
}

bool dgm_release_snapshot_in_use(const char *snapshot_id, void *payload)
{
	const dgm_plan *plan = payload;
	char *dir = dgm_xasprintf("%s/journal", plan->state_dir);
	struct dirent **names = NULL;
	int n = scandir(dir, &names, NULL, alphasort);
	bool used = false;

	for (int i = 0; i < n; i++) {
		const char *name = names[i]->d_name;
		size_t len = strlen(name);

		if (!used && len > 6 && !strcmp(name + len - 6, ".jsonl")) {
			char *path = dgm_xasprintf("%s/%s", dir, name);
			dgm_error ignore = DGM_ERROR_INIT;
			dgm_journal_view v;

			/* a damaged journal still names what it names */
			dgm_journal_load(&v, path, &ignore);
			if (v.path && !v.ended) {
				char *text = json_dumps(v.records, JSON_COMPACT);

				used = text && strstr(text, snapshot_id);
				free(text);
			}
			dgm_journal_free(&v);
			free(path);
		}
		free(names[i]);
	}
	free(names);
	free(dir);
	return used;
}
