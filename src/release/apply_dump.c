/* apply_dump.c - copy-first apply. The server-side copy of the database
 * (checked: the recorded revisions and the source's catalog fingerprint)
 * and the verified store archive gate the release; the off-server dump
 * of the copy then runs on a thread while checkout, upgrade,
 * postconditions, hooks.after and the health check go on. The run ends
 * - lock held until then - only once that dump is written, read back,
 * flushed and named by the snapshot's manifest. The thread writes only
 * in the snapshot's folder; the journal and the snapshot in memory are
 * the run's thread's alone (start and end of the "dump" step). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dgm/json.h"
#include "dgm/log.h"
#include "internal.h"

struct dgm_apply_dump {
	pthread_t tid;
	const dgm_snapshot *snap;     /* the run's, read only while the thread runs */
	const dgm_plan *plan;
	volatile sig_atomic_t cancel;
	dgm_snapshot_dump out;
	dgm_error err;
	int rc;
	long start;
};

static void *dump_thread(void *arg)
{
	struct dgm_apply_dump *j = arg;

	j->rc = dgm_snapshot_dump_copy(&j->out, j->snap, j->plan, &j->cancel, &j->err);
	return NULL;
}

int dgm_apply_dump_start(dgm_job *r, dgm_error *err)
{
	struct dgm_apply_dump *j;

	if (!r->have_snap || !r->snap.dump_pending)
		return 0;
	j = dgm_xcalloc(1, sizeof(*j));
	j->snap = &r->snap;
	j->plan = r->plan;
	j->start = dgm_now_ms();
	dgm_job_step_start(r, "dump");
	if (pthread_create(&j->tid, NULL, dump_thread, j) != 0) {
		dgm_error_set(err, DGM_E_RUN, "cannot start the dump thread");
		dgm_job_step_failed(r, "dump", 0, err);
		free(j);
		return -1;
	}
	r->dump = j;
	return 0;
}

/* Join the thread; add the dump to the snapshot; journal the end. */
static int join(dgm_job *r, dgm_error *err)
{
	struct dgm_apply_dump *j = r->dump;
	const dgm_snapshot_dump *d = &j->out;
	int ret = -1;

	r->dump = NULL;
	pthread_join(j->tid, NULL);
	if (j->rc == 0 && dgm_snapshot_add_dump(&r->snap, r->plan, d, &j->err)) {
		j->rc = -1;
		dgm_snapshot_discard_dump(&r->snap);
	}
	if (j->rc) {
		*err = j->err;
		dgm_job_step_failed(r, "dump", dgm_now_ms() - j->start, err);
		goto out;
	}
	dgm_job_step_done(r, "dump", dgm_now_ms() - j->start,
			  json_pack("{s:s, s:s, s:s}", "snapshot", r->snap.id, "copy",
				    r->snap.db_copy, "db_sha256", r->snap.db_sha256),
			  "pg_dump of the server-side copy '%s': %.1f MiB (%d entries, files sha256 "
			  "%.16s...), written, flushed and verified; snapshot '%s' holds both",
			  r->snap.db_copy, (double)d->bytes / 1048576.0, d->toc_entries,
			  r->snap.db_sha256, r->snap.id);
	ret = 0;
out:
	free(j);
	return ret;
}

int dgm_apply_dump_finish(dgm_job *r, dgm_error *err)
{
	if (!r->dump)
		return 0;
	dgm_info("the release is live: waiting for the off-server dump of snapshot '%s'",
		 r->snap.id);
	return join(r, err);
}

void dgm_apply_dump_cancel(dgm_job *r)
{
	dgm_error e = DGM_ERROR_INIT;

	if (!r->dump)
		return;
	r->dump->cancel = 1;
	if (join(r, &e) == 0)
		/* it had finished: the snapshot has its dump too */
		return;
	dgm_error_clear(&e);
	dgm_snapshot_discard_dump(&r->snap);
}

int dgm_apply_dump_now(dgm_job *r, dgm_error *err)
{
	if (dgm_apply_dump_start(r, err))
		return -1;
	return dgm_apply_dump_finish(r, err);
}

void dgm_apply_dump_failed(dgm_job *r, dgm_error *err)
{
	char cause[DGM_ERROR_MSG_MAX];

	/* err->msg is both the source and the target: copy it first */
	snprintf(cause, sizeof(cause), "%s", err->msg);
	dgm_error_set(err, DGM_E_RUN, "release '%s' is applied and live (its postconditions, "
		      "hooks.after and health check passed), but its off-server backup failed: %.900s", r->plan->release.tag,
		      cause);
	dgm_error_hint(err, "the release stays applied; snapshot '%s' holds the state before it: "
		       "the database as the server-side copy '%s' on the same server, and the "
		       "model store archive. A rollback restores from it: dgmigrate rollback --to "
		       "<previous tag> PLAN. Keep that copy until there is a backup off the server: "
		       "once the cause is fixed, run dgmigrate backups create PLAN (the release as "
		       "it is now), or pg_dump --format=directory --dbname=%s for the state before",
		       r->snap.id, r->snap.db_copy, r->snap.db_copy);
	dgm_job_finish(r, DGM_OUTCOME_NO_DUMP, err);
}
