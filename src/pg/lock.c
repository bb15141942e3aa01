/* lock.c - the per-database advisory lock. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dgm/lock.h"
#include "dgm/log.h"
#include "dgm/pg.h"

/* Two-key advisory lock: a constant class ("dgm") and the target
 * database's name. It is taken in the maintenance database "postgres",
 * not in the target: a restore renames the target, which PostgreSQL
 * refuses while any session (ours included) is connected to it. */
#define LOCK_KEYS "1684500333, hashtext($1)"
#define MAINTENANCE_DB "postgres"

static void describe_holder(PGconn *conn, const char *target, char *buf, size_t len)
{
	const char *params[] = { target };
	PGresult *res = NULL;
	dgm_error e = DGM_ERROR_INIT;

	snprintf(buf, len, "another session");
	if (dgm_pg_query(&res, conn,
			 "SELECT a.pid, coalesce(a.application_name, ''), coalesce(a.usename, ''),"
			 " coalesce(a.client_addr::text, 'local'),"
			 " to_char(a.backend_start, 'YYYY-MM-DD HH24:MI:SS TZ')"
			 " FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
			 " WHERE l.locktype = 'advisory' AND l.granted"
			 " AND l.classid = 1684500333::oid"
			 " AND l.objid = hashtext($1)::oid"
			 " AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())",
			 1, params, &e) == 0 && PQntuples(res) > 0)
		snprintf(buf, len, "'%s' (backend pid %s, user '%s', from %s, since %s)",
			 PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 2),
			 PQgetvalue(res, 0, 3), PQgetvalue(res, 0, 4));
	PQclear(res);
}

static int try_lock(bool *got, PGconn *conn, const char *target, long wait_ms, dgm_error *err)
{
	const char *params[] = { target };
	char sql[160];
	PGresult *res = NULL;
	const char *state;

	*got = false;
	if (wait_ms <= 0) {
		if (dgm_pg_query(&res, conn, "SELECT pg_try_advisory_lock(" LOCK_KEYS ")", 1, params,
				 err))
			return -1;
		*got = !strcmp(PQgetvalue(res, 0, 0), "t");
		PQclear(res);
		return 0;
	}
	snprintf(sql, sizeof(sql), "SET lock_timeout = %ld", wait_ms);
	if (dgm_pg_exec(conn, sql, err))
		return -1;
	res = PQexecParams(conn, "SELECT pg_advisory_lock(" LOCK_KEYS ")", 1, NULL, params, NULL,
			   NULL, 0);
	state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	if (PQresultStatus(res) == PGRES_TUPLES_OK)
		*got = true;
	else if (!state || strcmp(state, "55P03") != 0) {
		dgm_error_set(err, DGM_E_PG, "cannot take the lock: %s", PQresultErrorMessage(res));
		PQclear(res);
		return -1;
	}
	PQclear(res);
	return dgm_pg_exec(conn, "RESET lock_timeout", err);
}

/* The target does not exist (a restore killed between its two renames
 * leaves no database of its name; resume puts it back under the lock):
 * lock the name libpq would connect to, in the maintenance database. */
static int lock_missing(dgm_lock *lock, char *target, size_t len, const char *url,
			const char *app, dgm_error *err)
{
	PQconninfoOption *opts = PQconninfoParse(url, NULL);
	const char *name = NULL;
	dgm_error e = DGM_ERROR_INIT;

	if (!strstr(err->msg, "does not exist") ||
	    dgm_pg_connect_db(&lock->conn, url, MAINTENANCE_DB, app, &e)) {
		PQconninfoFree(opts);
		return -1;
	}
	for (PQconninfoOption *o = opts; o && o->keyword; o++)
		if (!strcmp(o->keyword, "dbname") && o->val && *o->val)
			name = o->val;
	if (!name)
		name = getenv("PGDATABASE") && *getenv("PGDATABASE") ? getenv("PGDATABASE") :
		       PQuser(lock->conn);
	snprintf(target, len, "%s", name);
	PQconninfoFree(opts);
	dgm_warn("database '%s' does not exist: locking its name (a restore killed in its swap "
		 "leaves it so; resume puts it back)", target);
	dgm_error_clear(err);
	return 0;
}

int dgm_lock_acquire(dgm_lock *lock, const char *url, const char *what, long wait_ms,
		     dgm_error *err)
{
	char app[64], host[64] = "", holder[512], target[128];
	dgm_error ignore = DGM_ERROR_INIT;
	bool got = false;

	lock->conn = NULL;
	gethostname(host, sizeof(host) - 1);
	snprintf(app, sizeof(app), "dgmigrate %s %.20s:%d", what, host, (int)getpid());
	/* the target first: its real name, and a clear error if unreachable */
	if (dgm_pg_connect(&lock->conn, url, app, err)) {
		lock->conn = NULL;
		if (lock_missing(lock, target, sizeof(target), url, app, err))
			return -1;
	} else
		snprintf(target, sizeof(target), "%s", PQdb(lock->conn));
	if (strcmp(target, MAINTENANCE_DB) != 0 && strcmp(PQdb(lock->conn), MAINTENANCE_DB) != 0) {
		PGconn *maint = NULL;

		if (dgm_pg_connect_db(&maint, url, MAINTENANCE_DB, app, &ignore) == 0) {
			dgm_pg_close(lock->conn);
			lock->conn = maint;
		} else
			dgm_debug("cannot connect to '%s' (%s): locking in '%s' itself", MAINTENANCE_DB,
				  ignore.msg, target);
	}
	if (try_lock(&got, lock->conn, target, wait_ms, err))
		goto fail;
	if (!got) {
		describe_holder(lock->conn, target, holder, sizeof(holder));
		dgm_error_set(err, DGM_E_LOCK, "database '%s' is locked by another run: %s",
			      target, holder);
		dgm_error_hint(err, "wait for it to finish, or use --wait-lock DURATION; a killed "
			       "run's lock goes away with its connection");
		goto fail;
	}
	dgm_debug("lock on database '%s' taken as '%s'", target, app);
	return 0;
fail:
	dgm_pg_close(lock->conn);
	lock->conn = NULL;
	return -1;
}

void dgm_lock_release(dgm_lock *lock)
{
	PGresult *res;

	if (!lock || !lock->conn)
		return;
	/* Released before the run ends, not when the server gets round to
	 * the closed session: the next run (or a check) finds it free at
	 * once. A failure here is covered by closing the session. */
	res = PQexec(lock->conn, "SELECT pg_advisory_unlock_all()");
	PQclear(res);
	dgm_pg_close(lock->conn);
	lock->conn = NULL;
}

int dgm_lock_is_held(bool *held, PGconn *conn, const char *target, dgm_error *err)
{
	const char *params[] = { target };
	PGresult *res = NULL;

	if (dgm_pg_query(&res, conn, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
			 " AND granted AND classid = 1684500333::oid AND objid = hashtext($1)::oid"
			 " AND objsubid = 2", 1, params, err))
		return -1;
	*held = atoi(PQgetvalue(res, 0, 0)) > 0;
	PQclear(res);
	return 0;
}
