/* resume.c - `dgmigrate resume`: finish or undo a run that was killed.
 * The journal says what the run started from (its facts record) and how
 * far it got (each step's start and done records): an apply whose
 * upgrade finished is completed (verify, hooks, health, record); any
 * other interrupted apply is undone; an interrupted rollback is run
 * again to the same tag, which is safe because every rollback step
 * starts from what the database and the work tree hold now. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dgm/cli.h"
#include "dgm/log.h"
#include "dgm/pg.h"
#include "dgm/verify.h"
#include "internal.h"

typedef struct journal_view {
	char *path;
	json_t *begin, *facts;
	json_t *phase;                /* step -> last phase */
	json_t *data;                 /* step -> data of its done record */
	int seq;
	bool ended;
} journal_view;

static void view_free(journal_view *v)
{
	free(v->path);
	json_decref(v->begin);
	json_decref(v->facts);
	json_decref(v->phase);
	json_decref(v->data);
	memset(v, 0, sizeof(*v));
}

/* Read a journal; a torn last line (a crash mid-write) is ignored. */
static int view_load(journal_view *v, const char *path, dgm_error *err)
{
	FILE *f = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0;
	int lineno = 0;

	memset(v, 0, sizeof(*v));
	if (!f)
		return dgm_error_errno(err, DGM_E_IO, "cannot read the journal '%s'", path);
	v->path = dgm_xstrdup(path);
	v->phase = json_object();
	v->data = json_object();
	while (getline(&line, &cap, f) > 0) {
		json_t *rec = json_loads(line, 0, NULL);
		const char *type = json_string_value(json_object_get(rec, "type"));

		lineno++;
		if (!rec || !type) {
			dgm_warn("%s:%d: unreadable journal record ignored (a torn write?)", path, lineno);
			json_decref(rec);
			continue;
		}
		v->seq = (int)json_integer_value(json_object_get(rec, "seq"));
		if (!strcmp(type, "begin"))
			v->begin = json_incref(rec);
		else if (!strcmp(type, "facts"))
			v->facts = json_incref(rec);
		else if (!strcmp(type, "end"))
			v->ended = true;
		else if (!strcmp(type, "step")) {
			const char *step = json_string_value(json_object_get(rec, "step"));
			json_t *phase = json_object_get(rec, "phase");

			json_object_set(v->phase, step, phase);
			if (!strcmp(json_string_value(phase), "done"))
				json_object_set(v->data, step, json_object_get(rec, "data"));
		}
		json_decref(rec);
	}
	free(line);
	fclose(f);
	if (!v->begin) {
		view_free(v);
		return dgm_error_set(err, DGM_E_RUN, "the journal '%s' has no begin record", path);
	}
	return 0;
}

/* The newest journal without an end record, or none. */
static int find_unfinished(journal_view *out, const dgm_plan *plan, dgm_error *err)
{
	char *dir = dgm_xasprintf("%s/journal", plan->state_dir);
	struct dirent **names = NULL;
	int n = scandir(dir, &names, NULL, alphasort), ret = 0;

	memset(out, 0, sizeof(*out));
	for (int i = n - 1; i >= 0; i--) {
		const char *name = names[i]->d_name;
		size_t len = strlen(name);

		if (!out->path && len > 6 && !strcmp(name + len - 6, ".jsonl")) {
			char *path = dgm_xasprintf("%s/%s", dir, name);
			journal_view v;

			if (view_load(&v, path, err) == 0) {
				if (!v.ended)
					*out = v;
				else
					view_free(&v);
			} else
				ret = -1;
			free(path);
		}
		free(names[i]);
	}
	free(names);
	free(dir);
	return ret;
}

static const char *phase(const journal_view *v, const char *step)
{
	return json_string_value(json_object_get(v->phase, step));
}

/* Rebuild what the killed apply knew from its facts record. */
static int load_facts(dgm_job *r, const journal_view *v, dgm_error *err)
{
	json_t *revs = json_object_get(v->facts, "revisions_before");
	const char *snap = json_string_value(json_object_get(json_object_get(v->data, "snapshot"),
							     "snapshot"));
	const char *ini = dgm_cli_ini_rel(r->plan->alembic.config, r->plan->release.repository);

	r->facts.nrevs = json_array_size(revs);
	r->facts.revs = dgm_xcalloc(r->facts.nrevs + 1, sizeof(char *));
	for (size_t i = 0; i < r->facts.nrevs; i++)
		r->facts.revs[i] = dgm_xstrdup(json_string_value(json_array_get(revs, i)));
	snprintf(r->facts.head, sizeof(r->facts.head), "%s",
		 json_string_value(json_object_get(v->facts, "commit_before")));
	snprintf(r->facts.tag_commit, sizeof(r->facts.tag_commit), "%s",
		 json_string_value(json_object_get(v->facts, "tag_commit")));
	snprintf(r->git_before.commit, sizeof(r->git_before.commit), "%s", r->facts.head);
	snprintf(r->git_before.branch, sizeof(r->git_before.branch), "%s",
		 json_string_value(json_object_get(v->facts, "branch_before")));
	r->facts.server_version[0] = '?';
	if (dgm_cli_load_graph(&r->facts.graph, r->plan->release.repository, ini,
			       r->plan->release.tag, err) ||
	    dgm_alembic_upgrade(&r->facts.upgrade, r->facts.graph,
				(const char *const *)r->facts.revs, r->facts.nrevs,
				r->plan->alembic.target, err))
		return -1;
	r->facts.upgrade_known = true;
	if (snap) {
		if (dgm_snapshot_find(&r->snap, r->plan->snapshot.directory, snap, err))
			return -1;
		r->have_snap = true;
	}
	r->checked_out = phase(v, "checkout") != NULL;
	r->migrate_started = phase(v, "migrate") != NULL;
	r->hooks_before_ran = phase(v, "hooks.before") && !strcmp(phase(v, "hooks.before"), "done");
	return 0;
}


static int resume_apply(dgm_job *r, const journal_view *v, dgm_error *err)
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
			dgm_job_finish(r, "success", NULL);
			return 0;
		}
		dgm_warn("completing failed (%s): undoing the run instead", err->msg);
		dgm_error_clear(err);
	} else
		dgm_info("the run stopped before its upgrade finished: undoing it");
	if (dgm_job_undo(r, err)) {
		/* not settled: the journal stays open for the next resume */
		dgm_error_hint(err, "the run's journal stays open: once the cause is fixed, run "
			       "dgmigrate resume PLAN again");
		dgm_job_leave_open(r, err);
		return -1;
	}
	dgm_job_finish(r, "rolled-back", NULL);
	return 0;
}

int dgm_release_resume(const dgm_plan *plan, dgm_error *err)
{
	journal_view v;
	const char *command;
	dgm_job r;
	int ret = -1;

	dgm_snapshot_sweep_locked(plan); /* what a killed snapshot left (sweep.c) */
	if (find_unfinished(&v, plan, err))
		return -1;
	if (!v.path) {
		dgm_info("nothing to resume: every run in '%s/journal' has ended", plan->state_dir);
		return 0;
	}
	command = json_string_value(json_object_get(v.begin, "command"));
	dgm_info("resuming run '%s' (%s) from '%s'", json_string_value(json_object_get(v.begin,
		 "run")), command, v.path);
	if (!strcmp(command, "rollback")) {
		dgm_rollback_opts o = { .to = json_string_value(json_object_get(v.facts, "to")),
					.restore = -1, .reason = "resume of an interrupted rollback" };
		char *path = dgm_xstrdup(v.path);
		dgm_job end;

		if (!o.to) {
			view_free(&v);
			free(path);
			return dgm_error_set(err, DGM_E_RUN, "the interrupted rollback had not started "
					     "changing anything; run it again");
		}
		/* the old journal ends here; the new rollback has its own */
		if (dgm_job_reopen(&end, plan, command, path, json_string_value(json_object_get(
				   v.begin, "run")), v.seq, err) == 0) {
			dgm_job_journal_end(&end, "resumed", NULL);
			dgm_job_free(&end);
		}
		free(path);
		ret = dgm_release_rollback(plan, &o, err);
		view_free(&v);
		return ret;
	}
	if (dgm_job_reopen(&r, plan, command, v.path, json_string_value(json_object_get(v.begin,
			   "run")), v.seq, err))
		goto out;
	if (dgm_lock_acquire(&r.lock, plan->database.url, "resume", 0, err)) {
		dgm_job_free(&r);
		goto out;
	}
	ret = resume_apply(&r, &v, err);
	dgm_lock_release(&r.lock);
	dgm_job_free(&r);
out:
	view_free(&v);
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
			journal_view v;

			if (view_load(&v, path, &ignore) == 0) {
				char *text = json_dumps(v.data, JSON_COMPACT);

				used = !v.ended && text && strstr(text, snapshot_id);
				free(text);
				view_free(&v);
			}
			free(path);
		}
		free(names[i]);
	}
	free(names);
	free(dir);
	return used;
}
