/*
 * pgbackrest.h - the pgBackRest snapshot engine (snapshot.engine:
 * pgbackrest): a snapshot is a named restore point in the stanza's WAL
 * archive, not a copy of the database, so it takes well under a second
 * at any size; a restore replays the archive up to it.
 *
 * Every pgbackrest call is the plan's pgbackrest.command, then
 * --config, --stanza and pgbackrest.options, then the command and its
 * own options; never a secret in argv (the plan refuses such options).
 */
#ifndef DGM_PGBACKREST_H
#define DGM_PGBACKREST_H

#include <libpq-fe.h>
#include <stdbool.h>

#include "dgm/buf.h"
#include "dgm/check.h"
#include "dgm/error.h"
#include "dgm/plan.h"

/* Run `pgbackrest CMD ARGS...` for the plan's stanza; stdout into out
 * (may be NULL). Fails with pgbackrest's own message (its stderr). */
int dgm_pgbr_run(dgm_buf *out, const dgm_plan *plan, const char *cmd,
		 const char *const *args, long timeout_ms, dgm_error *err);

/* What `info --output=json` says of the newest usable backup. */
typedef struct dgm_pgbr_backup_info {
	int status;               /* the stanza's status code, 0 ok */
	char status_message[256];
	int backups;              /* how many backups the repository holds */
	char label[64];           /* the newest usable one, "" none */
	char type[8];             /* full, diff, incr */
	char wal_stop[32];        /* the last WAL segment it needs */
	long long repo_bytes;     /* its size in the repository */
	long long db_bytes;       /* the cluster's size it restores */
} dgm_pgbr_backup_info;

int dgm_pgbr_info(dgm_pgbr_backup_info *info, const dgm_plan *plan, dgm_error *err);

/* The preflight checks of the engine, each named in cl (nothing
 * changes; `pgbackrest check` forces a WAL switch, which is harmless):
 * pgbackrest, pgbackrest check, backup, archiving, restore point,
 * restore commands, repository. conn: the plan's database. */
void dgm_pgbr_preflight(dgm_checklist *cl, const dgm_plan *plan, PGconn *conn);

/* A snapshot's database part with this engine: where in the stanza's
 * WAL archive the restore point is, and the backup a restore starts
 * from (--set: a later backup could not reach back to it). */
typedef struct dgm_pgbr_point {
	char *stanza;
	char *name;               /* "dgmigrate-<snapshot id>" */
	char *lsn;                /* pg_create_restore_point()'s */
	int timeline;
	char *wal_segment;        /* the segment holding it, archived */
	char *backup_label;       /* the newest backup before it */
} dgm_pgbr_point;

void dgm_pgbr_point_free(dgm_pgbr_point *p);

/* The manifest's "pgbackrest" object, and back (NULL: not one). */
struct json_t;
struct json_t *dgm_pgbr_point_json(const dgm_pgbr_point *p);
dgm_pgbr_point *dgm_pgbr_point_from_json(struct json_t *o);

/* The optional backup (pgbackrest.backup), the restore point
 * 'dgmigrate-<id>', a WAL switch, and the wait (bounded by
 * pgbackrest.archive_timeout) until its segment is archived. *out is
 * malloc'd. */
int dgm_pgbr_snapshot(dgm_pgbr_point **out, const dgm_plan *plan, const char *id,
		      dgm_error *err);

/* The point can still be restored: the stanza is ok, its backup is in
 * the repository and the archive reaches its segment. */
int dgm_pgbr_verify(const dgm_pgbr_point *p, const dgm_plan *plan, dgm_error *err);

/* restore: side - the point restored (pgbackrest restore --type=name,
 * --db-include the database) into pgbackrest.side.directory/data,
 * started on side.port with archiving off, recovery waited for, the
 * database dumped (pg_dump -Fd) into dump_dir, the side instance stopped
 * and removed. The caller restores the dump through the usual path.
 * database: the name recorded in the snapshot. */
struct dgm_dump_info;
int dgm_pgbr_side_dump(struct dgm_dump_info *info, const dgm_plan *plan,
		       const dgm_pgbr_point *p, const char *database, const char *dump_dir,
		       dgm_error *err);

/* restore: cluster - the whole cluster rewound to the point in place:
 * refused when it holds other databases unless
 * pgbackrest.rewind_other_databases; the history rows of the database
 * kept; pgbackrest.server.stop, pgbackrest restore --delta --set=<backup>
 * --type=name --target=<point> --target-action=promote,
 * pgbackrest.server.start, a wait (timeouts.restore, else ten minutes)
 * until recovery has ended, the history rows put back and the database's
 * Alembic revisions checked against revisions. Each state reached is
 * journaled in <state_dir>/pgbackrest-cluster.jsonl (cluster_journal.c)
 * so that dgm_pgbr_cluster_resume can finish it. The advisory lock
 * (lock, may be NULL) goes with the server: it is taken again once the
 * server is back, before the journal is removed. */
struct dgm_lock;
typedef struct dgm_pgbr_cluster_target {
	const dgm_pgbr_point *point;
	const char *snapshot;     /* the snapshot's id */
	const char *database;     /* the database it holds */
	char *const *revisions;   /* its Alembic revisions */
	size_t nrevisions;
} dgm_pgbr_cluster_target;

int dgm_pgbr_cluster_restore(const dgm_plan *plan, const dgm_pgbr_cluster_target *t,
			     struct dgm_lock *lock, dgm_error *err);
/* resume: an interrupted restore: cluster is finished (the server is
 * never left stopped), or, where it had not stopped the server yet,
 * dropped. 0 also when there is none. */
int dgm_pgbr_cluster_resume(const dgm_plan *plan, dgm_error *err);
/* Before a run takes the lock: refused while a restore: cluster is under
 * way (DGM_E_LOCK) or was interrupted (DGM_E_RUN: resume first). */
int dgm_pgbr_cluster_guard(const dgm_plan *plan, dgm_error *err);
/* What a restore: cluster runs, as one line (point NULL: "<point>"). */
char *dgm_pgbr_cluster_text(const dgm_plan *plan, const dgm_pgbr_point *point);
/* How the plan's restore mode puts point back, as one line (dry run). */
char *dgm_pgbr_restore_text(const dgm_plan *plan, const dgm_pgbr_point *point);

/* What a killed restore: side left (the side instance running, its data
 * folder): stopped and removed. The caller holds the lock. */
void dgm_pgbr_side_sweep(const dgm_plan *plan);

/* "--archive-timeout=12.5": the plan's wait, in pgbackrest's seconds. */
void dgm_pgbr_timeout_opt(char *buf, size_t len, long ms);

#endif
