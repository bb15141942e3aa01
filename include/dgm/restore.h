/*
 * restore.h - putting a snapshot's database back: pg_restore -j into a
 * new database beside the target, check its Alembic revisions against
 * the snapshot's manifest, then swap names. The old database is renamed
 * aside, not dropped, until the caller commits. A role that may not
 * create databases restores in place instead (one transaction); one that
 * can do neither is told so before anything changes.
 */
#ifndef DGM_RESTORE_H
#define DGM_RESTORE_H

#include <stdbool.h>

#include <libpq-fe.h>

#include "dgm/error.h"
#include "dgm/plan.h"
#include "dgm/snapshot.h"

/* What the connected role may do to keep and put back its database
 * (read once, from a connection to that database). */
typedef struct dgm_db_caps {
	char role[64];
	char database[64];
	char owner[64];           /* the database's owner */
	bool super;
	bool createdb;
	bool owns;                /* a member of the database's owner */
	bool psql;                /* psql found: the in-place restore runs through it */
	int others;               /* other sessions connected to the database now */
	bool can_signal;          /* may end other roles' sessions (superuser or
				   * pg_signal_backend; never a superuser's unless
				   * one) */
	char foreign[256];        /* an object of the application's schemas this
				   * role cannot drop, "" none */
	char role_setting[64];    /* a role whose per-database settings only a
				   * superuser may set again, "" none */
} dgm_db_caps;

/* How a snapshot's database goes back. */
typedef enum dgm_restore_path {
	DGM_RESTORE_NONE = 0,     /* this role cannot restore the database */
	DGM_RESTORE_SWAP,         /* restored beside it, names swapped */
	DGM_RESTORE_IN_PLACE      /* pg_restore --clean into it, one transaction */
} dgm_restore_path;

int dgm_db_caps_read(dgm_db_caps *c, PGconn *conn, dgm_error *err);
/* A server-side copy (CREATE DATABASE ... TEMPLATE) is possible now;
 * else why not, in why. */
bool dgm_db_caps_can_copy(const dgm_db_caps *c, char *why, size_t len);
/* The restore this role can do (a swap where it may, else in place);
 * has_dump: the snapshot has a dump (in place reads only a dump). For
 * SWAP's fallback and for NONE, why says what is missing. */
dgm_restore_path dgm_db_caps_restore_path(const dgm_db_caps *c, bool has_dump, char *why,
					  size_t len);
/* One line for preflight and reports: "restore by swap (...)". */
const char *dgm_restore_path_text(dgm_restore_path p);

typedef struct dgm_db_restore {
	char *target;     /* the database's name */
	char *staging;    /* <target>_dgm_new_<id>: restored here first */
	char *aside;      /* <target>_dgm_old_<id>: the old database after the swap */
	bool keep_aside;  /* the aside database is a snapshot's: commit keeps it */
	bool staged;
	bool swapped;
	long restore_ms;
} dgm_db_restore;

/* pg_restore the snapshot into a new database beside the target and
 * check its alembic_version against the snapshot's manifest. */
int dgm_db_restore_stage(dgm_db_restore *r, const dgm_plan *plan, const dgm_snapshot *snap,
			 dgm_error *err);
/* Before the swap: the staging database takes the target's owner, ACL,
 * per-database and per-role-in-database settings, comment, connection
 * limit, tablespace and flags, and the history rows (dgmigrate.runs)
 * the target holds, so that a restore puts the data back and nothing
 * else. */
int dgm_db_restore_keep_state(dgm_db_restore *r, const dgm_plan *plan, dgm_error *err);
/* Where this role cannot create databases: the snapshot's dump restored
 * into the database itself, in one transaction (psql --single-transaction:
 * every schema of the application dropped, pg_restore --clean's script,
 * the Alembic revisions checked, the history rows carried over). A
 * failure anywhere leaves the database as it was. Sessions on it are
 * ended first when terminate is set, else they make it fail. */
int dgm_db_restore_in_place(const dgm_plan *plan, const dgm_snapshot *snap, bool terminate,
			    dgm_error *err);
/* Rename target -> aside, staging -> target. Sessions connected to the
 * target make it fail naming them, unless terminate is set. */
int dgm_db_restore_swap(dgm_db_restore *r, const dgm_plan *plan, bool terminate,
			dgm_error *err);
/* The swap (and an undo's swap back) keeps <state_dir>/db-swap.json
 * (swap_marker.c) while the target may have no name: written before the
 * first rename, removed once the target has its name again. Before a run
 * takes the lock: refused while a swap is under way (DGM_E_LOCK) or was
 * interrupted (DGM_E_RUN: resume first). */
int dgm_db_swap_guard(const dgm_plan *plan, dgm_error *err);
/* resume: an interrupted swap is settled (the database set aside renamed
 * back, the staging one dropped, the marker removed). 0 also when there
 * is none. */
int dgm_db_swap_settle(const dgm_plan *plan, dgm_error *err);
/* Both guards of an interrupted restore: a pgbackrest restore: cluster
 * and a database swap. Every command calls it before it connects. */
int dgm_restore_guard(const dgm_plan *plan, dgm_error *err);
/* Keep the restore: drop the aside database. */
int dgm_db_restore_commit(dgm_db_restore *r, const dgm_plan *plan, dgm_error *err);
/* Undo: put the old database back, drop the staging one. */
int dgm_db_restore_abort(dgm_db_restore *r, const dgm_plan *plan, dgm_error *err);
void dgm_db_restore_free(dgm_db_restore *r);

struct dgm_lock;

/* What dgm_snapshot_restore puts back. */
typedef struct dgm_restore_opts {
	bool database;          /* restore the database */
	bool store;             /* restore the model store */
	bool terminate;         /* terminate sessions on the target database */
	dgm_snapshot *aside_into; /* a DGM_SNAPSHOT_ASIDE snapshot: the database
				   * replaced is renamed to its db_copy and kept,
				   * and the snapshot completed once both are
				   * swapped (only by swap: else nothing changes);
				   * on a failure it is discarded (the database
				   * is back under its name) */
	struct dgm_lock *lock;  /* the run's lock: a pgbackrest restore: cluster
				 * takes it again after the server's restart
				 * (NULL: none held) */
} dgm_restore_opts;

/* The staging database of a restore of snapshot snap_id into target. */
char *dgm_db_restore_staging_name(const char *target, const char *snap_id);
/* This role restores snap by swap (not in place), now. */
bool dgm_snapshot_restore_swaps(const dgm_plan *plan, const dgm_snapshot *snap);

/* Verify the snapshot, stage the database and the model store beside
 * their targets, swap both, then drop what was replaced. A failure
 * before the last step puts everything back as it was. */
int dgm_snapshot_restore(const dgm_plan *plan, const dgm_snapshot *snap,
			 const dgm_restore_opts *o, dgm_error *err);

#endif
