/*
 * restore.h - putting a snapshot's database back: pg_restore -j into a
 * new database beside the target, check its Alembic revisions against
 * the snapshot's manifest, then swap names. The old database is renamed
 * aside, not dropped, until the caller commits.
 */
#ifndef DGM_RESTORE_H
#define DGM_RESTORE_H

#include <stdbool.h>

#include "dgm/error.h"
#include "dgm/plan.h"
#include "dgm/snapshot.h"

typedef struct dgm_db_restore {
	char *target;     /* the database's name */
	char *staging;    /* <target>_dgm_new_<id>: restored here first */
	char *aside;      /* <target>_dgm_old_<id>: the old database after the swap */
	bool staged;
	bool swapped;
	long restore_ms;
} dgm_db_restore;

/* pg_restore the snapshot into a new database beside the target and
 * check its alembic_version against the snapshot's manifest. */
int dgm_db_restore_stage(dgm_db_restore *r, const dgm_plan *plan, const dgm_snapshot *snap,
			 dgm_error *err);
/* Rename target -> aside, staging -> target. Sessions connected to the
 * target make it fail naming them, unless terminate is set. */
int dgm_db_restore_swap(dgm_db_restore *r, const dgm_plan *plan, bool terminate,
			dgm_error *err);
/* Keep the restore: drop the aside database. */
int dgm_db_restore_commit(dgm_db_restore *r, const dgm_plan *plan, dgm_error *err);
/* Undo: put the old database back, drop the staging one. */
int dgm_db_restore_abort(dgm_db_restore *r, const dgm_plan *plan, dgm_error *err);
void dgm_db_restore_free(dgm_db_restore *r);

/* What dgm_snapshot_restore puts back. */
typedef struct dgm_restore_opts {
	bool database;          /* restore the database */
	bool store;             /* restore the model store */
	bool terminate;         /* terminate sessions on the target database */
} dgm_restore_opts;

/* Verify the snapshot, stage the database and the model store beside
 * their targets, swap both, then drop what was replaced. A failure
 * before the last step puts everything back as it was. */
int dgm_snapshot_restore(const dgm_plan *plan, const dgm_snapshot *snap,
			 const dgm_restore_opts *o, dgm_error *err);

#endif
