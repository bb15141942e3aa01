/*
 * release.h - the release engine behind apply, rollback and resume:
 * preflight (every check, reported together), then the steps in the
 * order PRODUCT.md gives, each journaled before and after it runs.
 */
#ifndef DGM_RELEASE_H
#define DGM_RELEASE_H

#include <stdbool.h>
#include <stdio.h>

#include "dgm/alembic.h"
#include "dgm/buf.h"
#include "dgm/error.h"
#include "dgm/lint.h"
#include "dgm/plan.h"
#include "dgm/tree.h"

struct dgm_release_lint;

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
	struct dgm_release_lint *lint; /* apply's preflight: the release linted, or NULL */
	bool lint_refused;            /* the lint check failed: a finding reaches fail_on */
	int failed_checks;            /* how many preflight checks failed */
} dgm_facts;

typedef enum dgm_preflight_mode {
	DGM_PREFLIGHT_VALIDATE,       /* validate: no tool or disk checks */
	DGM_PREFLIGHT_APPLY,          /* everything apply needs, the lint included */
	DGM_PREFLIGHT_DRY_RUN         /* as apply; the lint runs even with fail_on never */
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

/* ---- the release's lint (lint.c): `dgmigrate lint`, apply's preflight,
 * `apply --dry-run` and the rehearsal report ------------------------- */

/* One direction: the SQL of `alembic VERB RANGE --sql`, linted. */
typedef struct dgm_lint_pass {
	const char *verb;             /* "upgrade" or "downgrade" */
	char *range;
	dgm_lint_result res;
	bool done;
} dgm_lint_pass;

typedef struct dgm_release_lint {
	const dgm_plan *plan;
	const dgm_alembic_script *graph; /* the tag's, for the revision files; not owned */
	dgm_tree tag;                 /* the tag's files, for "# dgmigrate: allow" */
	bool tag_open;
	dgm_lint_pass pass[2];        /* upgrade, then downgrade */
	dgm_buf upgrade_sql;          /* as rendered, for apply --dry-run */
} dgm_release_lint;

/* Lint the release from the database's revisions in f (preflight's
 * facts, graph included) to the plan's target: the upgrade's SQL and,
 * when alembic can render it, the downgrade's (a failure there is a
 * warning); sized by the target's catalog, suppressed by lint.ignore and
 * "# dgmigrate: allow" lines, graded. *l is zeroed first. Nothing to
 * upgrade is no error (no pass done). */
int dgm_release_lint_run(dgm_release_lint *l, const dgm_plan *plan, const dgm_facts *f,
			 dgm_error *err);
void dgm_release_lint_free(dgm_release_lint *l);
/* The revision file (path in the repository) of rev, or NULL. */
const char *dgm_release_lint_file(const dgm_release_lint *l, const char *rev);
/* Counts per severity of what is not suppressed; *nsup the rest. */
void dgm_release_lint_tally(const dgm_release_lint *l, size_t counts[3], size_t *nsup);
/* Whether a finding that is not suppressed reaches lint.fail_on. */
bool dgm_release_lint_fails(const dgm_release_lint *l);
/* The findings like a compiler's (suppressed ones after, one line each)
 * and the summary line. */
void dgm_release_lint_print(const dgm_release_lint *l, FILE *out);
/* "FILE:LINE (upgrade REV, sql line N)": where a finding is (FILE alone
 * when the call it comes from was not found; no FILE when the revision
 * is not known). */
void dgm_release_lint_where(dgm_buf *b, const dgm_release_lint *l, const dgm_lint_pass *p,
			    const dgm_lint_finding *f);
/* One finding as a JSON object. */
void dgm_release_lint_json_finding(dgm_buf *b, const dgm_release_lint *l,
				   const dgm_lint_pass *p, const dgm_lint_finding *f);
/* The members of `dgmigrate lint --json`'s document after "release" and
 * "tag": "fail_on", "linted", "findings", the counts and "fails". */
void dgm_release_lint_json(dgm_buf *b, const dgm_release_lint *l);

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

/* `dgmigrate resume`: finish or undo the newest interrupted run.
 * accept_data_loss: a restore its undo falls back to (or the resumed
 * rollback's) may discard writes made since the release finished. */
int dgm_release_resume(const dgm_plan *plan, bool accept_data_loss, dgm_error *err);

/* Whether an unfinished run's journal still needs this snapshot (for
 * `backups prune`); payload is the plan. */
bool dgm_release_snapshot_in_use(const char *snapshot_id, void *payload);

#endif
