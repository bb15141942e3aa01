/* rehearse_int.h - what the files of `dgmigrate rehearse` share:
 * rehearse.c (the run), rehearse_scratch.c (the scratch database),
 * rehearse_locks.c (pg_locks sampling), rehearse_report.c (the report). */
#ifndef DGM_REHEARSE_INT_H
#define DGM_REHEARSE_INT_H

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <time.h>

#include <libpq-fe.h>

#include "dgm/fingerprint.h"
#include "dgm/lock.h"
#include "dgm/rehearse.h"
#include "dgm/release.h"
#include "dgm/verify.h"

/* ---- the scratch database (rehearse_scratch.c) ------------------------ */

typedef struct dgm_rehearse_scratch {
	char *source;         /* the plan's database, by name */
	char *name;           /* <source>_dgm_rehearse_<pid> */
	char *url;            /* the plan's URL for `name`: holds the password */
	char *from;           /* "CREATE DATABASE ... TEMPLATE" or "snapshot <id>" */
	char *snapshot;       /* the snapshot's id when restored from one */
	bool exists;          /* created, and not dropped yet */
	int leftovers;        /* scratch databases of killed runs dropped first */
} dgm_rehearse_scratch;

/* The plan's URL with dbname replaced, in the ordinary shape
 * postgresql://user:password@host:port/dbname that libpq, SQLAlchemy and
 * settings libraries read (a unix-socket folder as ?host=, with
 * localhost in the host's place; every other setting in the query
 * string, percent-encoded). conn (NULL: none) gives what the URL leaves
 * to libpq's defaults: user, host, port. Holds the password: never
 * print it. */
int dgm_rehearse_url(char **out, const char *url, const char *dbname, PGconn *conn,
		     dgm_error *err);

/* The scratch database's name for source and pid: the source cut to 40
 * bytes (at a character boundary) + "_dgm_rehearse_" + pid. */
char *dgm_rehearse_scratch_name(const char *source, long pid);

/* Drop leftovers, then clone (or restore) the plan's database (named
 * source) into a new scratch database. revs: the database's revisions
 * now (a snapshot must have been taken at those). */
int dgm_rehearse_scratch_create(dgm_rehearse_scratch *s, const dgm_plan *plan,
				const char *source, char *const *revs, size_t nrevs,
				dgm_error *err);
/* DROP DATABASE ... WITH (FORCE); idempotent. Failures are warned about:
 * the next rehearsal drops a leftover. */
void dgm_rehearse_scratch_drop(dgm_rehearse_scratch *s, const dgm_plan *plan);
void dgm_rehearse_scratch_free(dgm_rehearse_scratch *s);

/* SIGINT and SIGTERM set dgm_run_interrupted (which stops the running
 * child) while a rehearsal runs; the run notices and cleans up. */
void dgm_rehearse_signals_install(void);
void dgm_rehearse_signals_restore(void);

/* ---- pg_locks sampling (rehearse_locks.c) ----------------------------- */

/* The strongest lock seen on one table. */
typedef struct dgm_rehearse_lock {
	char *table;
	int strength;         /* 1 AccessShare .. 8 AccessExclusive */
	char *during;         /* the phase it was seen in ("upgrade", "upgrade R") */
	int samples;          /* samples that saw it at that strength */
	bool at_ddl;          /* held when a DDL statement ended (event trigger) */
} dgm_rehearse_lock;

/* One lock held without a break on one table, at one strength, during
 * the upgrade or the downgrade: when it was first and last seen, and in
 * which revision it was first seen. */
typedef struct dgm_rehearse_hold {
	const char *direction;  /* "upgrade" or "downgrade" (static) */
	char *revision;         /* the revision alembic was running, NULL unknown */
	char *table;
	int strength;
	long first_ms, last_ms; /* monotonic clock, first and last sample that saw it */
	long samples;           /* samples that saw it */
	long last_sample;       /* the sample number that last saw it */
	bool at_ddl;            /* held at the end of a DDL statement (event trigger) */
	char *versions;         /* traced only: alembic_version then ("a,b"; "" none) */
	long ddl_ms;            /* between the first and last DDL ends that saw it */
} dgm_rehearse_hold;

/* How long a hold lasted, in ms: sampled, from its first to its last
 * sample plus one interval; traced at DDL ends only, their span. */
long dgm_rehearse_hold_ms(const dgm_rehearse_hold *h);

typedef struct dgm_rehearse_sampler {
	/* results, across every start/stop */
	dgm_rehearse_lock *seen;
	size_t nseen;
	dgm_rehearse_hold *holds;
	size_t nholds;
	const char *direction;  /* while running: where holds go, NULL none */
	const char *revision;   /* while running: the one revision (--step), or NULL */
	size_t phase_first;     /* the first hold of the phase running */
	long samples;         /* queries run */
	char error[256];      /* the first query that failed, "" none */
	/* while running */
	PGconn *conn;
	const char *during;
	atomic_int stop;
	pthread_t thread;
	bool running;
	bool probe;           /* the DDL event trigger is installed */
} dgm_rehearse_sampler;

#define DGM_REHEARSE_SAMPLE_MS 20
#define DGM_REHEARSE_SAMPLE_TEXT "20 ms"

/* Sample pg_locks of the database of url every DGM_REHEARSE_SAMPLE_MS
 * from a second connection, in a thread, until stop. during names what
 * runs meanwhile (kept, not copied). */
int dgm_rehearse_sampler_start(dgm_rehearse_sampler *s, const char *url, const char *during,
			       dgm_error *err);
/* Record holds, meanwhile and from the next probe_collect, as the
 * upgrade's or the downgrade's (direction, static), of revision (NULL:
 * the one alembic says it runs); direction NULL: record none. */
void dgm_rehearse_sampler_holds(dgm_rehearse_sampler *s, const char *direction,
				const char *revision);
void dgm_rehearse_sampler_stop(dgm_rehearse_sampler *s);

/* Sampling misses locks held for less than its interval, and a DDL
 * statement in a short transaction often is. Where the role may create
 * event triggers (superusers), an event trigger in the scratch database
 * records the locks the migration's transaction holds at the end of
 * every DDL statement, in dgmigrate.rehearse_locks (the dgmigrate schema
 * is not part of the fingerprint), with the revisions the version table
 * (schema.table; schema NULL: the current one) held then. install: on
 * conn, the scratch database; a role that may not is no error (sampling
 * only). reset
 * before each upgrade; collect after it, as seen during `during`. */
void dgm_rehearse_probe_install(dgm_rehearse_sampler *s, PGconn *conn, const char *schema,
				const char *table);
void dgm_rehearse_probe_reset(dgm_rehearse_sampler *s, PGconn *conn);
void dgm_rehearse_probe_collect(dgm_rehearse_sampler *s, PGconn *conn, const char *during);
void dgm_rehearse_sampler_free(dgm_rehearse_sampler *s);
/* "ACCESS EXCLUSIVE", and what such a lock blocks for the application
 * ("reads and writes", "writes", "nothing"). */
const char *dgm_rehearse_lock_mode(int strength);
const char *dgm_rehearse_lock_blocks(int strength);

/* ---- one rehearsal ----------------------------------------------------- */

typedef struct dgm_rehearsal {
	const dgm_plan *plan;
	const dgm_rehearse_opts *opts;
	dgm_plan scratch_plan;        /* shallow copy: database.url is the scratch's */
	dgm_facts facts;
	dgm_lock lock;
	char *database;               /* the plan's database, by name */
	char *export_dir;             /* the tag, exported */
	dgm_rehearse_scratch scratch;
	PGconn *conn;                 /* to the scratch database */
	dgm_rehearse_sampler sampler;
	dgm_fingerprint fp_before;    /* at the start */
	dgm_fingerprint fp_upgraded;  /* after the upgrade */
	char fp_after[65];            /* sha256 after the whole downgrade, "" not taken */
	dgm_verify_result post;
	bool post_ran;
	char *start_text;             /* the starting revisions, "base" when none */
	json_t *phases;               /* [{phase, ok, ms, detail}] */
	json_t *findings;             /* [{revision, how, change, kind, name, ...}] */
	json_t *tables;               /* [{table, rows, estimated, why}] */
	dgm_release_lint lint;        /* the release's lint, when linted */
	bool linted;
	const char *verdict;          /* "pass", "fail", "error", "interrupted" */
	dgm_error why;                /* why it failed */
	long started_ms;
	time_t started;
} dgm_rehearsal;

/* Record a phase (and log it on stderr). */
void dgm_rehearse_phase(dgm_rehearsal *r, const char *phase, bool ok, long ms,
			const char *fmt, ...) DGM_PRINTF(5, 6);

/* ---- the report (rehearse_report.c) ------------------------------------ */

/* Write <state_dir>/reports/rehearse-<time>.{json,md} and print the
 * summary (or the "report" event in JSON mode). */
void dgm_rehearse_report(dgm_rehearsal *r);

#endif
