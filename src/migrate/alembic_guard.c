/*
 * alembic_guard.c - proof of which database alembic connects to, before
 * it changes anything.
 *
 * dgmigrate hands alembic a database (DATABASE_URL, and the plan's
 * alembic.env / alembic.x with ${target.*} filled in), but the
 * application's env.py decides where it really connects: one that builds
 * its URL from POSTGRES_* goes to the live database while dgmigrate
 * rehearses on a copy. Watching connections by name or address is not
 * enough (drivers differ, unix sockets have no client address, short
 * sessions are missed between samples), so the proof uses what every
 * alembic does on every database it migrates, whatever the driver: it
 * reads or creates its version table first, before any migration runs.
 *
 * A fence is a dgmigrate session holding, in an open transaction,
 * LOCK TABLE <version table> IN ACCESS EXCLUSIVE MODE (or, when the table
 * does not exist, an uncommitted CREATE TABLE of it, which any other
 * CREATE TABLE of that name waits for). A session that touches the
 * version table of a fenced database waits on the fence, and
 * pg_blocking_pids() names the fence as what it waits for: a backend on
 * that very database, found without racing the clock.
 *
 *  - The probe (once per database and folder, before the first
 *    upgrade/downgrade): the target is fenced and `alembic current` runs
 *    with the same environment. Proven when one of alembic's backends
 *    waits on the target's fence (then the fence is lifted and current
 *    finishes); when current ends without that, alembic went elsewhere
 *    and the command is refused. `current` changes nothing anywhere.
 *  - Forbidden database (a rehearsal's live one): fenced while every
 *    alembic of the rehearsal runs, the probe included. A backend of
 *    alembic waiting on it is terminated (its transaction rolls back),
 *    alembic is stopped, and the run fails with nothing changed.
 *
 * "Alembic's backend": application_name is the marker dgmigrate puts in
 * PGAPPNAME (libpq drivers honour it), or, for drivers that ignore it,
 * a session that started after alembic did. A thread polls every 20 ms;
 * sessions wait on the fence as long as it takes, so polling cannot
 * miss them.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "dgm/buf.h"
#include "dgm/log.h"
#include "dgm/pg.h"
#include "migrate_int.h"

#define POLL_MS 20

/* The version table as SQL, schema-qualified when the plan says. */
static char *version_table(PGconn *conn, const dgm_plan *plan)
{
	char *t = dgm_pg_quote_ident(conn, plan->alembic.version_table), *q;

	if (!plan->alembic.version_schema)
		return t;
	q = dgm_pg_quote_ident(conn, plan->alembic.version_schema);
	{
		char *both = dgm_xasprintf("%s.%s", q, t);

		free(q);
		free(t);
		return both;
	}
}

static int table_exists(PGconn *conn, const char *table, bool *exists, dgm_error *err)
{
	const char *params[] = { table };
	PGresult *res = NULL;

	if (dgm_pg_query(&res, conn, "SELECT to_regclass($1) IS NOT NULL", 1, params, err))
		return -1;
	*exists = !strcmp(PQgetvalue(res, 0, 0), "t");
	PQclear(res);
	return 0;
}

/* Alembic's own DDL for its version table. */
static char *create_sql(const char *table)
{
	return dgm_xasprintf("CREATE TABLE %s (version_num VARCHAR(32) NOT NULL, CONSTRAINT "
			     "alembic_version_pkc PRIMARY KEY (version_num))", table);
}

/* The version table made for the probe belongs to the database's owner
 * (the application's role, as a rule), as if alembic had made it: when
 * dgmigrate runs as another role, alembic could not use it otherwise. */
static void give_to_owner(PGconn *conn, const char *table)
{
	dgm_error e = DGM_ERROR_INIT;
	char *owner = dgm_pg_owner_to_act_for(conn, NULL), *sql;

	if (!owner)
		return;
	sql = dgm_xasprintf("ALTER TABLE %s OWNER TO %s", table, owner);
	if (dgm_pg_exec(conn, sql, &e))
		dgm_warn("the version table dgmigrate made keeps its owner: %s", e.msg);
	free(sql);
	free(owner);
}

/* Open a fence on url's database. create: when the version table is
 * missing, create it for good (the probe needs a table `alembic current`
 * reads); otherwise the fence creates it uncommitted. */
static int fence_open(dgm_fence *f, const dgm_plan *plan, const char *url, bool create,
		      dgm_error *err)
{
	char *table = NULL, *sql = NULL;
	bool exists = false;
	int ret = -1;

	memset(f, 0, sizeof(*f));
	if (dgm_pg_connect(&f->conn, url, "dgmigrate fence", err))
		return -1;
	f->pid = PQbackendPID(f->conn);
	f->dbname = dgm_xstrdup(PQdb(f->conn));
	table = version_table(f->conn, plan);
	if (table_exists(f->conn, table, &exists, err))
		goto out;
	if (!exists && create) {
		sql = create_sql(table);
		if (dgm_pg_exec(f->conn, sql, err))
			goto out;
		f->created = true;
		exists = true;
		give_to_owner(f->conn, table);
		free(sql);
	}
	sql = dgm_xasprintf("SET lock_timeout = %ld", plan->timeouts.lock_ms);
	if (dgm_pg_exec(f->conn, sql, err) || dgm_pg_exec(f->conn, "BEGIN", err))
		goto out;
	free(sql);
	sql = exists ? dgm_xasprintf("LOCK TABLE %s IN ACCESS EXCLUSIVE MODE", table)
		     : create_sql(table);
	if (dgm_pg_exec(f->conn, sql, err))
		goto out;
	f->held = true;
	ret = 0;
out:
	if (ret)
		dgm_error_prefix(err, "cannot fence the version table of database '%s'",
				 f->dbname ? f->dbname : "?");
	free(table);
	free(sql);
	return ret;
}

static void fence_lift(dgm_fence *f)
{
	dgm_error ignore = DGM_ERROR_INIT;

	if (f->held)
		dgm_pg_exec(f->conn, "ROLLBACK", &ignore);
	f->held = false;
}

/* Lift the fence; drop the version table the probe created when asked
 * (nothing of dgmigrate's stays behind a refused run). */
static void fence_close(dgm_fence *f, const dgm_plan *plan, bool drop_created)
{
	dgm_error e = DGM_ERROR_INIT;

	fence_lift(f);
	if (f->conn && f->created && drop_created) {
		char *table = version_table(f->conn, plan);
		char *sql = dgm_xasprintf("DROP TABLE IF EXISTS %s", table);

		if (dgm_pg_exec(f->conn, sql, &e))
			dgm_warn("cannot drop the version table dgmigrate created in '%s': %s",
				 f->dbname, e.msg);
		free(sql);
		free(table);
	}
	dgm_pg_close(f->conn);
	free(f->dbname);
	memset(f, 0, sizeof(*f));
}

/* ---- the watch --------------------------------------------------------- */

/* Sessions waiting on a fence: pid, database, application_name, whether
 * alembic's (marker, or started after alembic), which fence. */
static const char WAITING_SQL[] =
	"SELECT pid, coalesce(datname, ''), coalesce(application_name, ''),"
	" application_name = $3 OR backend_start >= $4::timestamptz,"
	" $1::int = ANY(pg_blocking_pids(pid))"
	" FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
	" AND ($1::int = ANY(pg_blocking_pids(pid)) OR $2::int = ANY(pg_blocking_pids(pid)))";

static void terminate(dgm_guard *g, const char *pid)
{
	const char *params[] = { pid };
	dgm_error e = DGM_ERROR_INIT;
	PGresult *res = NULL;

	if (dgm_pg_query(&res, g->mon, "SELECT pg_terminate_backend($1::int)", 1, params, &e))
		dgm_warn("cannot stop alembic's session %s on the %s: %s", pid, g->bad_label, e.msg);
	PQclear(res);
}

/* One look at the waiting sessions. */
static void look(dgm_guard *g)
{
	char ok[16], bad[16];
	const char *params[] = { ok, bad, g->marker, g->since };
	dgm_error e = DGM_ERROR_INIT;
	PGresult *res = NULL;

	snprintf(ok, sizeof(ok), "%d", g->ok.held ? g->ok.pid : 0);
	snprintf(bad, sizeof(bad), "%d", g->bad.held ? g->bad.pid : 0);
	if (dgm_pg_query(&res, g->mon, WAITING_SQL, 4, params, &e)) {
		if (!g->watch_error[0])
			snprintf(g->watch_error, sizeof(g->watch_error), "%.200s", e.msg);
		return;
	}
	for (int i = 0; i < PQntuples(res); i++) {
		bool alembic = !strcmp(PQgetvalue(res, i, 3), "t");

		if (!alembic)
			continue;
		if (!strcmp(PQgetvalue(res, i, 4), "t")) {
			g->proven = true;
			fence_lift(&g->ok);
			continue;
		}
		if (!g->breach) {
			snprintf(g->breach_who, sizeof(g->breach_who), "backend pid %s, "
				 "application_name '%s'", PQgetvalue(res, i, 0), PQgetvalue(res, i, 2));
			g->breach_pid = atoi(PQgetvalue(res, i, 0));
		}
		g->breach = true;
		g->cancel = 1;
		terminate(g, PQgetvalue(res, i, 0));
	}
	PQclear(res);
}

static void *watch(void *arg)
{
	dgm_guard *g = arg;
	struct timespec ts = { 0, POLL_MS * 1000000L };

	while (!atomic_load(&g->stop)) {
		look(g);
		nanosleep(&ts, NULL);
	}
	return NULL;
}

/* After a breach: the terminated session must be gone before the fence
 * is lifted, or a statement it was waiting with would run. Bounded: a
 * session that cannot be terminated is left waiting on the fence until
 * dgmigrate's session ends, and alembic is already stopped. */
static void wait_gone(dgm_guard *g)
{
	struct timespec ts = { 0, POLL_MS * 1000000L };
	char pid[16];
	const char *params[] = { pid };

	snprintf(pid, sizeof(pid), "%d", g->breach_pid);
	for (int i = 0; i < 250; i++) {
		dgm_error e = DGM_ERROR_INIT;
		PGresult *res = NULL;
		bool gone = dgm_pg_query(&res, g->mon, "SELECT 1 FROM pg_stat_activity WHERE pid = $1",
					 1, params, &e) || PQntuples(res) == 0;

		PQclear(res);
		if (gone)
			return;
		nanosleep(&ts, NULL);
	}
}

int dgm_guard_connect(dgm_guard *g, const dgm_plan *plan, const dgm_migrate_target *t,
		      dgm_error *err)
{
	memset(g, 0, sizeof(*g));
	g->plan = plan;
	g->marker = "";
	g->bad_label = t->forbidden_label ? t->forbidden_label : "live database";
	atomic_init(&g->stop, 0);
	return dgm_pg_connect(&g->mon, t->url, "dgmigrate guard", err);
}

int dgm_guard_fence(dgm_guard *g, const dgm_migrate_target *t, bool probe, dgm_error *err)
{
	if ((probe && fence_open(&g->ok, g->plan, t->url, true, err)) ||
	    (t->forbidden && fence_open(&g->bad, g->plan, t->forbidden, false, err)))
		return -1;
	return 0;
}

int dgm_guard_start(dgm_guard *g, dgm_error *err)
{
	PGresult *res = NULL;

	if (dgm_pg_query(&res, g->mon, "SELECT clock_timestamp()::text", 0, NULL, err))
		return -1;
	snprintf(g->since, sizeof(g->since), "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	if (!g->ok.held && !g->bad.held)
		return 0;
	atomic_store(&g->stop, 0);
	if (pthread_create(&g->thread, NULL, watch, g) != 0)
		return dgm_error_set(err, DGM_E_RUN, "cannot start the thread that watches alembic");
	g->running = true;
	return 0;
}

void dgm_guard_stop(dgm_guard *g)
{
	if (g->running) {
		atomic_store(&g->stop, 1);
		pthread_join(g->thread, NULL);
		g->running = false;
	}
	/* a last look: alembic may have been stopped while it waited */
	if (g->mon && (g->ok.held || g->bad.held))
		look(g);
	if (g->breach)
		wait_gone(g);
}

void dgm_guard_close(dgm_guard *g, bool refused)
{
	fence_close(&g->ok, g->plan, refused);
	fence_close(&g->bad, g->plan, false);
	dgm_pg_close(g->mon);
	g->mon = NULL;
}
