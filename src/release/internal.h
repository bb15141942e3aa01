/* internal.h - what the files of src/release/ share. */
#ifndef DGM_RELEASE_INTERNAL_H
#define DGM_RELEASE_INTERNAL_H

#include <jansson.h>
#include <stdbool.h>
#include <time.h>

#include "dgm/clock.h"
#include "dgm/dataloss.h"
#include "dgm/git.h"
#include "dgm/lock.h"
#include "dgm/release.h"
#include "dgm/restore.h"
#include "dgm/snapshot.h"

/* One run of apply or rollback: what it knows and what it has done, so
 * that a failure can undo exactly what was done. */
typedef struct dgm_job {
	const dgm_plan *plan;
	const char *command;          /* "apply", "rollback" */
	char id[64];                  /* run id (the journal's) */
	dgm_facts facts;
	dgm_lock lock;
	dgm_snapshot snap;            /* the snapshot taken before any change */
	bool have_snap;
	dgm_git_state git_before;
	bool checked_out;
	bool hooks_before_ran;
	bool migrate_started;
	bool migrated;
	char **revs_after;
	size_t nrevs_after;
	long started_ms;
	char started_at[40];          /* UTC, ms: the first start (resume keeps it) */
	json_t *steps;                /* [{step, status, ms, evidence}] for the report */
	char *json_path;              /* the journal file */
	int journal_fd;
	int seq;
	const char *reason;           /* --reason, for the history */
	const char *tag;              /* the release this run goes to (plan's tag by default) */
	json_t *data_loss;            /* what a restore of this run discarded, or NULL */
	struct dgm_apply_part *store; /* copy-first: the store archive beside the release */
	struct dgm_apply_part *dump;  /* copy-first: the dump running beside the release */
	bool live;                    /* hooks.after done and health check passed */
	bool accept_data_loss;        /* --accept-data-loss (resume): for the undo's restore */
	bool loss_refused;            /* a restore was refused by the data-loss check */
	long live_ms;                 /* when, since started_ms */
} dgm_job;


/* Now in UTC with milliseconds, as the journal and the history write it. */
void dgm_job_utc_now(char *buf, size_t len);
/* Append a record of this type (stolen reference) to the journal. */
void dgm_job_journal(dgm_job *r, const char *type, json_t *rec);
/* Continue an interrupted run's journal (resume): same id, same file,
 * the same start time (the begin record's); a torn last record is cut.
 * The caller holds the run's lock. */
int dgm_job_reopen(dgm_job *r, const dgm_plan *plan, const char *command, const char *path,
		   const char *id, long long seq, const char *started_at, dgm_error *err);

/* Journal: append one record and fsync it before returning. */
int dgm_job_begin(dgm_job *r, const dgm_plan *plan, const char *command, const char *plan_path,
		  dgm_error *err);
/* Take the run's lock (or the one held, taken over), then begin: on
 * failure nothing was written. */
int dgm_job_begin_locked(dgm_job *r, const dgm_plan *plan, const char *command,
			 const char *plan_path, long wait_lock_ms, dgm_lock *held, dgm_error *err);
void dgm_job_step_start(dgm_job *r, const char *step);
/* data: extra evidence for the journal (stolen reference, may be NULL). */
void dgm_job_step_done(dgm_job *r, const char *step, long ms, json_t *data, const char *fmt, ...)
	DGM_PRINTF(5, 6);
void dgm_job_step_failed(dgm_job *r, const char *step, long ms, const dgm_error *e);
/* Journal what the run starts from (revisions, HEAD and branch, the
 * tag's commit), so that `resume` can undo or finish it after a crash. */
int dgm_job_record_facts(dgm_job *r, dgm_error *err);
/* Report, history row and journal end. */
void dgm_job_finish(dgm_job *r, const char *outcome, const dgm_error *e);
/* Report only: the journal stays open for `resume` (something the run
 * changed is not settled), and the history row waits for the end. */
void dgm_job_leave_open(dgm_job *r, const dgm_error *e);
void dgm_job_free(dgm_job *r);
/* The journal's end record (record.c; the report calls it last). */
void dgm_job_journal_end(dgm_job *r, const char *outcome, const dgm_error *e);

/* No entry of the model store (folders included) has changed since
 * (ctime; a second of margin): store_quiet.c. */
bool dgm_release_store_quiet(const char *store, struct timespec since);
/* resume: a rollback killed while its restore set the database aside
 * (aside.c) - the database back under its name unless its safety
 * snapshot was completed. */
struct dgm_journal_view;
int dgm_release_aside_recover(const dgm_plan *plan, const struct dgm_journal_view *v,
			      dgm_error *err);
/* Postconditions, after-hooks and health check (apply and resume). */
int dgm_release_finish_apply(dgm_job *r, dgm_error *err);

/* Copy-first apply (apply_parts.c): where the snapshot so far is its
 * server-side copy (snap.store_pending, snap.dump_pending), journal the
 * start of the "archive" and "dump" steps and make those parts on
 * threads; else nothing. */
int dgm_apply_parts_start(dgm_job *r, dgm_error *err);
/* Wait for the store archive (before hooks.after), or, still pending
 * without a thread (resume), make it now; add it to the snapshot and
 * journal the step's end. 0 when there is none; else err says why. */
int dgm_apply_store_finish(dgm_job *r, dgm_error *err);
/* The same for the dump of the copy (the end of the run). */
int dgm_apply_dump_finish(dgm_job *r, dgm_error *err);
/* The release failed: stop the dump, wait for both (a part that
 * finished is kept, one that failed removed). */
void dgm_apply_parts_cancel(dgm_job *r);
/* What a killed run's pending parts left in the snapshot's folder goes. */
void dgm_apply_parts_discard(dgm_job *r);
/* The release is applied but its dump failed: end the run (exit 1)
 * saying so, where its snapshot is, and what to run. */
void dgm_apply_dump_failed(dgm_job *r, dgm_error *err);
/* The outcome of a run whose release stayed applied without its dump. */
#define DGM_OUTCOME_NO_DUMP "applied-without-dump"

/* Refuse files git does not track (or ignores, when alembic would run
 * them) in the version folders of s, which was read from repo_dir. */
int dgm_release_check_untracked(const char *repo_dir, const dgm_alembic_script *s,
				dgm_error *err);

/* Put the database, code and model store back to where the run started. */
int dgm_job_undo(dgm_job *r, dgm_error *err);

/* A restore of the database (dataloss.c) that passes the data-loss
 * check first; what it discards goes to the report, the events and the
 * history, and afterwards the counters are the snapshot's baseline. */
typedef struct dgm_job_restore_opts {
	dgm_restore_opts ro;
	const dgm_dataloss *checked;  /* a check made earlier, or NULL: check now */
	bool accept;                  /* --accept-data-loss */
	bool own_unfinished;          /* undo of the run that took the snapshot */
	const char *kept_in;          /* the safety snapshot holding what is replaced */
	const char *instead;          /* the other way forward, for a refusal's hint */
} dgm_job_restore_opts;

int dgm_job_restore(dgm_job *r, const dgm_snapshot *snap, const dgm_job_restore_opts *o,
		    dgm_error *err);
/* Record the write counters now as snap's baseline; a failure is
 * a warning (later restores then need --accept-data-loss). Returns 0. */
int dgm_job_mark_baseline(dgm_job *r, const dgm_snapshot *snap);
/* The hint (and exit 1) of an undo whose restore the data-loss check
 * refused. */
void dgm_job_hint_loss_refused(dgm_job *r, dgm_error *err);
/* The same once the release is finished, unless this run recorded it
 * already (a resumed run: the writes since are the application's). */
int dgm_job_mark_release_baseline(dgm_job *r, const dgm_snapshot *snap);

#endif
