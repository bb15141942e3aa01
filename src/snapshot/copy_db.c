/* copy_db.c - a snapshot's database as a server-side copy: CREATE
 * DATABASE <target>_dgm_safe_<id> TEMPLATE <target> STRATEGY FILE_COPY.
 * PostgreSQL copies the files (after a checkpoint) and flushes them:
 * seconds where pg_dump takes minutes, which is what a rollback's safety
 * snapshot needs. It cannot run while another session is connected to
 * the target; the caller then takes a dump instead. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dgm/buf.h"
#include "dgm/clock.h"
#include "dgm/fault.h"
#include "dgm/log.h"
#include "dgm/pg.h"
#include "internal.h"

#define MAINTENANCE_DB "postgres"

int dgm_snapshot_drop_copy(const dgm_plan *plan, const char *name, dgm_error *err)
{
	PGconn *conn = NULL;
	int ret;

	if (dgm_pg_connect_db(&conn, plan->database.url, MAINTENANCE_DB, "dgmigrate snapshot", err))
		return -1;
	ret = dgm_pg_drop_database(conn, name, true, err);
	dgm_pg_close(conn);
	if (ret)
		dgm_error_prefix(err, "cannot drop the database copy '%s'", name);
	return ret;
}

int dgm_snapshot_check_copy(const dgm_snapshot *s, const dgm_plan *plan, dgm_error *err)
{
	if (dgm_snapshot_check_db_revisions(plan, s, s->db_copy, err)) {
		dgm_error_prefix(err, "snapshot '%s' (a copy of database '%s')", s->id, s->database);
		return -1;
	}
	return 0;
}

/* A copy's comment: "dgmigrate snapshot copy of <db>: <snapshot folder>". */
#define LABEL_HEAD "dgmigrate snapshot copy of %s: "

/* Each copy says, in its comment, the database it copies and the
 * snapshot folder it belongs to: only a copy of this database for a
 * folder of this plan's snapshot directory is ever taken for an orphan
 * (another database may share the copy names' 30-byte prefix, and the
 * sweep runs under this database's lock only). */
static int label_copy(PGconn *conn, const char *copy, const char *db, const char *snapdir,
		      dgm_error *err)
{
	char *text = dgm_xasprintf(LABEL_HEAD "%s", db, snapdir);
	char *lit = PQescapeLiteral(conn, text, strlen(text));
	char *fmt = dgm_xasprintf("COMMENT ON DATABASE %%s IS %s", lit ? lit : "''");
	int ret = dgm_pg_exec_ident(conn, fmt, copy, NULL, err);

	PQfreemem(lit);
	free(fmt);
	free(text);
	return ret;
}

/* A copy whose snapshot folder was never completed (a run killed while
 * it was made) would hold the database's size on the server for good:
 * such copies are dropped. Runs under the database's lock, so no other
 * dgmigrate is making one for this database. */
static void drop_orphans(PGconn *conn, const dgm_plan *plan, const char *db)
{
	char *prefix = dgm_xasprintf("%.30s_dgm_", db);
	char *head = dgm_xasprintf(LABEL_HEAD, db);
	char *mine = dgm_xasprintf("%s%s/", head, plan->snapshot.directory);
	const char *params[] = { prefix, mine };
	PGresult *res = NULL;
	dgm_error e = DGM_ERROR_INIT;
	struct stat st;

	if (dgm_pg_query(&res, conn, "SELECT datname, shobj_description(oid, 'pg_database')"
			 " FROM pg_database WHERE left(datname, length($1)) = $1"
			 " AND substr(datname, length($1) + 1, 5) IN ('safe_', 'snap_')"
			 " AND left(shobj_description(oid, 'pg_database'), length($2)) = $2",
			 2, params, &e) == 0) {
		for (int i = 0; i < PQntuples(res); i++) {
			const char *name = PQgetvalue(res, i, 0);
			const char *dir = PQgetvalue(res, i, 1) + strlen(head);

			if (stat(dir, &st) == 0 || errno != ENOENT)
				continue;
			dgm_info("dropping '%s', the copy of an unfinished snapshot", name);
			if (dgm_pg_drop_database(conn, name, true, &e))
				dgm_warn("%s", e.msg);
			dgm_error_clear(&e);
		}
	}
	dgm_error_clear(&e);
	PQclear(res);
	free(mine);
	free(head);
	free(prefix);
}

/* Who else is connected to db (a TEMPLATE copy needs nobody). */
static int other_sessions(dgm_buf *who, PGconn *conn, const char *db, dgm_error *err)
{
	const char *params[] = { db };
	PGresult *res = NULL;
	int n;

	if (dgm_pg_query(&res, conn, "SELECT pid, coalesce(nullif(application_name, ''), '-'),"
			 " coalesce(usename, '') FROM pg_stat_activity WHERE datname = $1"
			 " AND pid <> pg_backend_pid()", 1, params, err))
		return -1;
	n = PQntuples(res);
	for (int i = 0; i < n && i < 3; i++)
		dgm_buf_printf(who, "%spid %s '%s' (user '%s')", i ? ", " : "", PQgetvalue(res, i, 0),
			       PQgetvalue(res, i, 1), PQgetvalue(res, i, 2));
	if (n > 3)
		dgm_buf_printf(who, " and %d more", n - 3);
	PQclear(res);
	return n;
}

bool dgm_snapshot_copy_db(dgm_snapshot *s, const dgm_plan *plan, const char *infix,
			  bool then_dump)
{
	PGconn *conn = NULL;
	dgm_buf who = DGM_BUF_INIT;
	dgm_error why = DGM_ERROR_INIT;
	char *copy = dgm_xasprintf("%.30s_dgm_%s_%.22s", s->database, infix, s->id);
	char *snapdir = dgm_xasprintf("%s/%s", plan->snapshot.directory, s->id);
	long start = dgm_now_ms();
	bool ok = false;
	int n;

	if (dgm_pg_connect_db(&conn, plan->database.url, MAINTENANCE_DB, "dgmigrate snapshot",
			      &why))
		goto out;
	drop_orphans(conn, plan, s->database);
	n = other_sessions(&who, conn, s->database, &why);
	if (n != 0) {
		if (n > 0)
			dgm_error_set(&why, DGM_E_RUN, "%d other session%s connected to '%s': %s", n,
				      n == 1 ? " is" : "s are", s->database, who.ptr);
		goto out;
	}
	dgm_info("copying database '%s' on the server (CREATE DATABASE %s TEMPLATE ...)",
		 s->database, copy);
	if (dgm_pg_copy_database(conn, copy, s->database, &why))
		goto out;
	dgm_fault_point("snapshot.copied");
	s->db_copy = copy;
	copy = NULL;
	if (label_copy(conn, s->db_copy, s->database, snapdir, &why) || dgm_snapshot_check_copy(s, plan, &why)) {
		dgm_error ignore = DGM_ERROR_INIT;

		dgm_pg_drop_database(conn, s->db_copy, true, &ignore);
		free(s->db_copy);
		s->db_copy = NULL;
		goto out;
	}
	s->dump_ms = dgm_now_ms() - start;
	ok = true;
out:
	if (!ok) /* a fallback is never silent: a warning, kept in the run's report */
		dgm_warn("no server-side copy of '%s' (%s): %s", s->database, why.msg, then_dump ?
			 "the dump is taken from the database itself" : "taking a pg_dump instead");
	dgm_error_clear(&why);
	dgm_buf_free(&who);
	dgm_pg_close(conn);
	free(snapdir);
	free(copy);
	return ok;
}
