/* apply_parts.c - copy-first apply. The server-side copy of the database
 * (checked: the recorded revisions and the catalog fingerprint its
 * source had) completes the snapshot that gates the release; its two
 * other parts are made on threads while checkout and upgrade go on: the
 * model store archive, which hooks.after waits for (the application may
 * write the store once it is back: nothing the run does before that
 * touches it), and the off-server pg_dump of the copy, which the end of
 * the run waits for (lock held, exit status undecided until it is
 * written, read back, flushed and in the manifest). The threads write
 * only in the snapshot's folder; the journal and the snapshot in memory
 * are the run's thread's: it journals each part's start before the
 * thread exists and its end after joining it. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dgm/json.h"
#include "dgm/log.h"
#include "internal.h"

typedef enum part_kind { PART_STORE, PART_DUMP } part_kind;

struct dgm_apply_part {
	part_kind kind;
	pthread_t tid;
	const dgm_snapshot *snap;     /* the run's: read only while the thread runs */
	const dgm_plan *plan;
	volatile sig_atomic_t cancel; /* stops pg_dump */
	dgm_snapshot_dump dump;
	dgm_snapshot_store store;
	dgm_error err;
	int rc;
	long start;
};

static const char *step_of(part_kind kind)
{
	return kind == PART_DUMP ? "dump" : "archive";
}

static void *part_thread(void *arg)
{
	struct dgm_apply_part *j = arg;

	if (j->kind == PART_DUMP)
		j->rc = dgm_snapshot_dump_copy(&j->dump, j->snap, j->plan, &j->cancel, &j->err);
	else
		j->rc = dgm_snapshot_archive_store(&j->store, j->snap, j->plan, &j->err);
	return NULL;
}

static int start(dgm_job *r, part_kind kind, struct dgm_apply_part **slot, dgm_error *err)
{
	struct dgm_apply_part *j = dgm_xcalloc(1, sizeof(*j));

	j->kind = kind;
	j->snap = &r->snap;
	j->plan = r->plan;
	j->start = dgm_now_ms();
	dgm_job_step_start(r, step_of(kind));
	if (pthread_create(&j->tid, NULL, part_thread, j) != 0) {
		dgm_error_set(err, DGM_E_RUN, "cannot start the %s thread", step_of(kind));
		dgm_job_step_failed(r, step_of(kind), 0, err);
		free(j);
		return -1;
	}
	*slot = j;
	return 0;
}

int dgm_apply_parts_start(dgm_job *r, dgm_error *err)
{
	if (!r->have_snap)
		return 0;
	if (r->snap.store_pending && start(r, PART_STORE, &r->store, err))
		return -1;
	if (r->snap.dump_pending && start(r, PART_DUMP, &r->dump, err))
		return -1;
	return 0;
}

/* Into the snapshot's manifest; the step's end in the journal. */
static int add(dgm_job *r, struct dgm_apply_part *j)
{
	const char *step = step_of(j->kind);
	long ms = dgm_now_ms() - j->start;

	if (j->kind == PART_STORE) {
		if (dgm_snapshot_add_store(&r->snap, r->plan, &j->store, &j->err))
			return -1;
		dgm_job_step_done(r, step, ms, json_pack("{s:s, s:s}", "snapshot", r->snap.id,
				  "archive_sha256", r->snap.archive_sha256),
				  "model store %lld entries (archive sha256 %.16s...), written, flushed "
				  "and verified, in snapshot '%s'", r->snap.entries,
				  r->snap.archive_sha256, r->snap.id);
		return 0;
	}
	if (dgm_snapshot_add_dump(&r->snap, r->plan, &j->dump, &j->err))
		return -1;
	dgm_job_step_done(r, step, ms, json_pack("{s:s, s:s, s:s}", "snapshot", r->snap.id,
			  "copy", r->snap.db_copy, "db_sha256", r->snap.db_sha256),
			  "pg_dump of the server-side copy '%s': %.1f MiB (%d entries, files sha256 "
			  "%.16s...), written, flushed and verified; snapshot '%s' holds both",
			  r->snap.db_copy, (double)j->dump.bytes / 1048576.0, j->dump.toc_entries,
			  r->snap.db_sha256, r->snap.id);
	return 0;
}

/* Join the thread, add its part, journal the end; what failed is
 * removed (the snapshot keeps what it had). */
static int join(dgm_job *r, struct dgm_apply_part **slot, dgm_error *err)
{
	struct dgm_apply_part *j = *slot;
	int ret = -1;

	*slot = NULL;
	pthread_join(j->tid, NULL);
	if (j->rc == 0 && add(r, j) == 0) {
		ret = 0;
		goto out;
	}
	if (j->kind == PART_DUMP)
		dgm_snapshot_discard_dump(&r->snap);
	else
		dgm_snapshot_discard_store(&r->snap);
	*err = j->err;
	dgm_job_step_failed(r, step_of(j->kind), dgm_now_ms() - j->start, err);
out:
	free(j);
	return ret;
}

/* The part's thread joined, or (resume: the killed run's part is still
 * pending) the part made now. */
static int finish(dgm_job *r, part_kind kind, struct dgm_apply_part **slot, dgm_error *err)
{
	bool pending = kind == PART_DUMP ? r->snap.dump_pending : r->snap.store_pending;

	if (!*slot && (!r->have_snap || !pending))
		return 0;
	if (!*slot && start(r, kind, slot, err))
		return -1;
	if (kind == PART_DUMP)
		dgm_info("the release is live: waiting for the off-server dump of snapshot '%s'",
			 r->snap.id);
	return join(r, slot, err);
}

int dgm_apply_store_finish(dgm_job *r, dgm_error *err)
{
	return finish(r, PART_STORE, &r->store, err);
}

int dgm_apply_dump_finish(dgm_job *r, dgm_error *err)
{
	return finish(r, PART_DUMP, &r->dump, err);
}

void dgm_apply_parts_cancel(dgm_job *r)
{
	dgm_error e = DGM_ERROR_INIT;

	if (r->dump)
		r->dump->cancel = 1;
	/* a part that had finished is kept; one that failed is removed */
	if (r->store)
		join(r, &r->store, &e);
	dgm_error_clear(&e);
	if (r->dump)
		join(r, &r->dump, &e);
	dgm_error_clear(&e);
}

void dgm_apply_parts_discard(dgm_job *r)
{
	if (!r->have_snap)
		return;
	if (r->snap.dump_pending)
		dgm_snapshot_discard_dump(&r->snap);
	if (r->snap.store_pending)
		dgm_snapshot_discard_store(&r->snap);
}

void dgm_apply_dump_failed(dgm_job *r, dgm_error *err)
{
	char cause[DGM_ERROR_MSG_MAX];

	/* err->msg is both the source and the target: copy it first */
	snprintf(cause, sizeof(cause), "%s", err->msg);
	dgm_error_set(err, DGM_E_RUN, "release '%s' is applied and live (its postconditions, "
		      "hooks.after and health check passed), but its off-server backup failed: "
		      "%.900s", r->plan->release.tag, cause);
	dgm_error_hint(err, "the release stays applied; snapshot '%s' holds the state before it: "
		       "the database as the server-side copy '%s' on the same server, and the "
		       "model store archive. A rollback restores from it: dgmigrate rollback --to "
		       "<previous tag> PLAN. Keep that copy until there is a backup off the server: "
		       "once the cause is fixed, run dgmigrate backups create PLAN (the release as "
		       "it is now), or pg_dump --format=directory --dbname=%s for the state before",
		       r->snap.id, r->snap.db_copy, r->snap.db_copy);
	dgm_job_finish(r, DGM_OUTCOME_NO_DUMP, err);
}
