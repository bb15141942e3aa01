/* migrate_int.h - what alembic_run.c and alembic_guard.c share: the
 * fences and the watch that prove which database alembic reaches
 * (alembic_guard.c explains how). */
#ifndef DGM_MIGRATE_INT_H
#define DGM_MIGRATE_INT_H

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>

#include <libpq-fe.h>

#include "dgm/migrate.h"

/* A session holding a database's version table in an open transaction. */
typedef struct dgm_fence {
	PGconn *conn;
	int pid;              /* its backend */
	char *dbname;
	bool held;            /* the transaction is open */
	bool created;         /* the version table was created for the probe */
} dgm_fence;

typedef struct dgm_guard {
	const dgm_plan *plan;
	const char *marker;   /* alembic's application_name (PGAPPNAME) */
	const char *bad_label;
	PGconn *mon;          /* polls pg_stat_activity, autocommit */
	dgm_fence ok;         /* the probe's fence on the target */
	dgm_fence bad;        /* the forbidden database's fence */
	char since[64];       /* server time alembic started */
	volatile sig_atomic_t cancel; /* stops alembic (dgm_child.cancel) */
	atomic_int stop;
	pthread_t thread;
	bool running;
	/* results */
	bool proven;          /* alembic waited on the target's fence */
	bool breach;          /* alembic waited on the forbidden fence */
	int breach_pid;
	char breach_who[256];
	char watch_error[256];
} dgm_guard;

/* The watching connection, to the target; dgm_guard_close also after a
 * failure. Set g->marker before dgm_guard_start. */
int dgm_guard_connect(dgm_guard *g, const dgm_plan *plan, const dgm_migrate_target *t,
		      dgm_error *err);
/* Fence the target when probe, the forbidden database when t names one. */
int dgm_guard_fence(dgm_guard *g, const dgm_migrate_target *t, bool probe, dgm_error *err);
/* Right before alembic starts: note the time, start the watch. */
int dgm_guard_start(dgm_guard *g, dgm_error *err);
/* Once alembic has ended. */
void dgm_guard_stop(dgm_guard *g);
/* Lift the fences; refused: also drop a version table the probe made. */
void dgm_guard_close(dgm_guard *g, bool refused);

#endif
