/*
 * rehearse.h - `dgmigrate rehearse`: the release's upgrade and downgrade
 * proven on a scratch copy of the database, which is always dropped.
 *
 * In this order: the database's advisory lock (exit 3 when another run
 * holds it); preflight; the tag exported to a temporary folder (the work
 * tree is never touched); leftover scratch databases of killed
 * rehearsals of this database dropped; the scratch copy
 * <db>_dgm_rehearse_<pid> made with CREATE DATABASE ... TEMPLATE when no
 * other session is connected to the database, else restored from the
 * newest snapshot taken at the database's current revisions; then on the
 * copy: schema fingerprint; alembic upgrade to the plan's target (with
 * pg_locks sampled from a second connection); postconditions; the
 * downgrade back to the starting revisions; fingerprint, which must equal
 * the first one; upgrade again. With `step`, each revision of the
 * upgrade in turn: up one, down one, compare, up one.
 *
 * The report (JSON and Markdown, 0600) goes to
 * <state_dir>/reports/rehearse-<UTC time>.{json,md}; the summary to
 * stdout, or with --json one "report" event there.
 */
#ifndef DGM_REHEARSE_H
#define DGM_REHEARSE_H

#include <stdbool.h>

#include "dgm/error.h"
#include "dgm/plan.h"

typedef struct dgm_rehearse_opts {
	bool step;            /* revision by revision */
	long wait_lock_ms;    /* 0: fail at once when the lock is held */
} dgm_rehearse_opts;

/* 0 when the rehearsal passed. A failed rehearsal is DGM_E_RUN (exit 1)
 * whose message names the revision and the object left behind; plan
 * problems exit 2, a held lock 3. The scratch database is dropped on
 * every path, SIGINT and SIGTERM included (they are caught while this
 * runs and stop the child at work). */
int dgm_release_rehearse(const dgm_plan *plan, const dgm_rehearse_opts *o, dgm_error *err);

#endif
