/*
 * release.h - the release engine behind apply, rollback and resume:
 * preflight (every check, reported together), then the steps in the
 * order PRODUCT.md gives, each journaled before and after it runs.
 */
#ifndef DGM_RELEASE_H
#define DGM_RELEASE_H

#include <stdbool.h>

#include "dgm/alembic.h"
#include "dgm/buf.h"
#include "dgm/error.h"
#include "dgm/plan.h"

/* What preflight learned; the run uses it rather than asking again. */
typedef struct dgm_facts {
	char **revs;                  /* alembic_version rows now */
	size_t nrevs;
	char server_version[32];
	long long db_bytes;           /* pg_database_size */
	long long table_bytes;        /* tables with TOAST, no indexes: what a dump holds */
	long long store_bytes;        /* model store, files only */
	char head[41];                /* work tree HEAD commit */
	char tag_commit[41];          /* the plan's tag, peeled */
	char alembic_version[64];     /* "alembic 1.8.1" */
	dgm_alembic_script *graph;    /* the graph at the plan's tag */
	dgm_alembic_steps upgrade;    /* revs -> alembic.target, at the tag */
	bool upgrade_known;
} dgm_facts;

typedef enum dgm_preflight_mode {
	DGM_PREFLIGHT_VALIDATE,       /* validate: no tool or disk checks */
	DGM_PREFLIGHT_APPLY           /* everything apply needs */
} dgm_preflight_mode;

/* Run every check, report each, and fail (with the most serious code:
 * plan problems exit 2) when any failed. offline skips the database. */
int dgm_preflight(dgm_facts *facts, const dgm_plan *plan, dgm_preflight_mode mode,
		  bool offline, dgm_error *err);
void dgm_facts_free(dgm_facts *facts);

typedef struct dgm_apply_opts {
	bool dry_run;
	bool force;                   /* snapshot and record even when up to date */
	long wait_lock_ms;
	const char *plan_path;        /* as given, for the journal */
} dgm_apply_opts;

/* `apply --dry-run`: preflight, the steps and the SQL; nothing changes. */
int dgm_release_dry_run(const dgm_plan *plan, const dgm_apply_opts *o, dgm_error *err);

/* The SQL of `alembic VERB RANGE --sql` (e.g. "upgrade", "abc:heads"),
 * rendered from the plan's tag exported to a temporary folder. */
int dgm_release_render_sql(dgm_buf *sql, const dgm_plan *plan, const char *verb,
			   const char *range, dgm_error *err);

/* `dgmigrate apply`. */
int dgm_release_apply(const dgm_plan *plan, const dgm_apply_opts *o, dgm_error *err);

typedef struct dgm_rollback_opts {
	const char *to;               /* the tag to go back to */
	int restore;                  /* 1 --restore, 0 --no-restore, -1 default */
	bool accept_data_loss;
	const char *reason;           /* recorded in the history */
	bool dry_run;
	long wait_lock_ms;
	const char *plan_path;
	struct dgm_lock *lock;        /* held already (resume): the run takes it over */
} dgm_rollback_opts;

/* `dgmigrate rollback --to TAG`. */
int dgm_release_rollback(const dgm_plan *plan, const dgm_rollback_opts *o, dgm_error *err);

/* `dgmigrate resume`: finish or undo the newest interrupted run. */
int dgm_release_resume(const dgm_plan *plan, dgm_error *err);

/* Whether an unfinished run's journal still needs this snapshot (for
 * `backups prune`); payload is the plan. */
bool dgm_release_snapshot_in_use(const char *snapshot_id, void *payload);

#endif
