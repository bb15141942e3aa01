/*
 * fault.h - fault injection for the crash tests: make dgmigrate stop at a
 * named point and wait there, so that a test can kill it (or stop the
 * server) at a known place instead of racing the clock.
 *
 *   DGMIGRATE_FAULT_WAIT_AT=<point>    the point to wait at (first time only)
 *   DGMIGRATE_FAULT_WAIT_FILE=<path>   created when the point is reached;
 *                                      dgmigrate goes on once it is removed
 *
 * Points: "alembic.upgrade", "alembic.downgrade" (right before alembic
 * runs), "snapshot.copied" (the server-side copy exists, not yet
 * labelled), "snapshot.taken" (the parts of a snapshot are written, not
 * yet verified and renamed), "snapshot.dump", "snapshot.archive"
 * (copy-first apply: on the thread of that part, before pg_dump of the
 * copy or the store archive starts, while the release goes on),
 * "snapshot.link" (on the store's thread, before the store is compared
 * with the archive a rollback's safety snapshot would link),
 * "restore.pg_restore" (the dump restore's work folder made, pg_restore
 * about to start), "restore.staged", "restore.renamed" (between the
 * database swap's two renames: no database has the target's name; its
 * marker is written), "swap.settle.renamed" (resume put the database set
 * aside back under its name, the staging one not yet dropped),
 * "restore.db-swapped"
 * (the database swapped, the store not yet), "restore.swapped",
 * "cluster.<state>" (restore: cluster, once its journal says stopped,
 * restored, started or promoted).
 * Without the variables a point costs one getenv.
 */
#ifndef DGM_FAULT_H
#define DGM_FAULT_H

#include "dgm/error.h"

/* Wait at the point named by fmt when the environment asks for it. */
void dgm_fault_point(const char *fmt, ...) DGM_PRINTF(1, 2);

/* DGMIGRATE_FAULT_KILL_AT=<point>: SIGKILL here, as a kill -9 at that
 * point would. Points: "cluster-begin", "cluster-stopped",
 * "cluster-restored", "cluster-started" (restore: cluster, right after
 * its journal says so: src/pgbr/cluster_journal.c), "side-started" (the
 * side instance is up and promoted, before its dump). */
void dgm_fault_kill(const char *point);

#endif
