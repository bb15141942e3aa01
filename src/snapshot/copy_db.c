/* copy_db.c - a snapshot's database as a server-side copy: CREATE
 * DATABASE <target>_dgm_safe_<id> TEMPLATE <target> STRATEGY FILE_COPY.
 * PostgreSQL copies the files (after a checkpoint) and flushes them:
 * seconds where pg_dump takes minutes, which is what a rollback's safety
 * snapshot needs. It cannot run while another session is connected to
 * the target; the caller then takes a dump instead. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dgm/buf.h"
#include "dgm/clock.h"
#include "dgm/fault.h"
#include "dgm/fingerprint.h"
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
	if (ret) {
		dgm_error_prefix(err, "cannot drop the database copy '%s'", name);
		dgm_error_hint(err, "drop it by hand: DROP DATABASE \"%s\" WITH (FORCE);", name);
	}
	return ret;
}

/* The copy's schema fingerprint is the one the source had (recorded in
 * the same session that read its revisions, before the copy). */
static int check_catalog(const dgm_snapshot *s, const dgm_plan *plan, dgm_error *err)
{
	dgm_fingerprint fp = DGM_FINGERPRINT_INIT;
	PGconn *conn = NULL;
	int ret = -1;

	if (dgm_pg_connect_db(&conn, plan->database.url, s->db_copy, "dgmigrate snapshot", err) ||
	    dgm_fingerprint_take(&fp, conn, plan->alembic.version_table,
				 plan->alembic.version_schema, err))
		goto out;
	if (strcmp(fp.sha256, s->catalog_sha256) != 0) {
		dgm_error_set(err, DGM_E_RUN, "database '%s' has catalog fingerprint %.16s... where "
			      "its source had %.16s... when copied", s->db_copy, fp.sha256,
			      s->catalog_sha256);
		goto out;
	}
	ret = 0;
out:
	dgm_fingerprint_free(&fp);
	dgm_pg_close(conn);
	return ret;
}

int dgm_snapshot_check_copy(const dgm_snapshot *s, const dgm_plan *plan, dgm_error *err)
{
	if (dgm_snapshot_check_db_revisions(plan, s, s->db_copy, err) ||
	    (s->catalog_sha256[0] && check_catalog(s, plan, err))) {
		dgm_error_prefix(err, "snapshot '%s' (a copy of database '%s')", s->id, s->database);
		return -1;
	}
	return 0;
}

/* Each copy says, in its comment, the database it copies and the
 * snapshot folder it belongs to (sweep.c: a copy whose folder is gone is
 * an orphan). */
int dgm_snapshot_label_copy(PGconn *conn, const char *copy, const char *db, const char *snapdir,
			    dgm_error *err)
{
	char *text = dgm_xasprintf(DGM_SNAPSHOT_LABEL_HEAD "%s", db, snapdir);
	char *lit = PQescapeLiteral(conn, text, strlen(text));
	char *fmt = dgm_xasprintf("COMMENT ON DATABASE %%s IS %s", lit ? lit : "''");
	int ret = dgm_pg_exec_ident(conn, fmt, copy, NULL, err);

	PQfreemem(lit);
	free(fmt);
	free(text);
	return ret;
}

/* Fault injection for the leak tests: DGMIGRATE_FAULT_KILL_AT=
 * snapshot-copy dies as a kill -9 in the middle of the copy would: once
 * CREATE DATABASE has reached the server (which goes on copying). */
static void fault_kill_during_copy(PGconn *conn, const char *copy, const char *from)
{
	const char *at = getenv("DGMIGRATE_FAULT_KILL_AT");
	char *a, *b, *sql;

	if (!at || strcmp(at, "snapshot-copy") != 0)
		return;
	a = dgm_pg_quote_ident(conn, copy);
	b = dgm_pg_quote_ident(conn, from);
	sql = dgm_xasprintf("CREATE DATABASE %s TEMPLATE %s%s", a, b,
			    PQserverVersion(conn) >= 150000 ? " STRATEGY FILE_COPY" : "");
	if (PQsendQuery(conn, sql))
		while (PQflush(conn) > 0)
			;
	raise(SIGKILL);
	free(sql);
	free(b);
	free(a);
}

/* The copy, recorded in the snapshot's folder before it is made. */
static int make_copy(PGconn *conn, const dgm_snapshot *s, const char *copy, dgm_error *err)
{
	if (dgm_snapshot_write_owner(s->dir, s->database, copy, err))
		return -1;
	dgm_info("copying database '%s' on the server (CREATE DATABASE %s TEMPLATE ...)",
		 s->database, copy);
	fault_kill_during_copy(conn, copy, s->database);
	return dgm_pg_copy_database(conn, copy, s->database, err);
}

/* A copy made but not usable goes; one that cannot be dropped is named. */
static void drop_failed_copy(PGconn *conn, const char *copy)
{
	dgm_error e = DGM_ERROR_INIT;

	if (dgm_pg_drop_database(conn, copy, true, &e))
		dgm_warn("cannot drop the database copy '%s' (%s): drop it by hand: "
			 "DROP DATABASE \"%s\" WITH (FORCE);", copy, e.msg, copy);
	dgm_error_clear(&e);
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
	char *copy = dgm_snapshot_copy_name(s->database, infix, s->id);
	char *snapdir = dgm_xasprintf("%s/%s", plan->snapshot.directory, s->id);
	long start = dgm_now_ms();
	bool ok = false;
	int n;

	if (dgm_pg_connect_db(&conn, plan->database.url, MAINTENANCE_DB, "dgmigrate snapshot",
			      &why))
		goto out;
	/* no CREATE DATABASE that is bound to fail (preflight said so too) */
	if (!dgm_pg_may_create_db(conn)) {
		dgm_error_set(&why, DGM_E_RUN, "role '%s' has no CREATEDB", PQuser(conn));
		goto out;
	}
	n = other_sessions(&who, conn, s->database, &why);
	if (n != 0) {
		if (n > 0)
			dgm_error_set(&why, DGM_E_RUN, "%d other session%s connected to '%s': %s", n,
				      n == 1 ? " is" : "s are", s->database, who.ptr);
		goto out;
	}
	if (make_copy(conn, s, copy, &why))
		goto out;
	dgm_fault_point("snapshot.copied");
	s->db_copy = copy;
	copy = NULL;
	if (dgm_snapshot_label_copy(conn, s->db_copy, s->database, snapdir, &why) ||
	    dgm_snapshot_check_copy(s, plan, &why)) {
		drop_failed_copy(conn, s->db_copy);
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

/* The restored database must say what the snapshot said it would. */
int dgm_snapshot_check_db_revisions(const dgm_plan *plan, const dgm_snapshot *snap,
				    const char *db, dgm_error *err)
{
	PGconn *conn = NULL;
	char **revs = NULL;
	size_t n = 0;
	int ret = -1;

	if (dgm_pg_connect_db(&conn, plan->database.url, db, "dgmigrate restore", err) ||
	    dgm_pg_read_revisions(&revs, &n, conn, plan->alembic.version_table,
				  plan->alembic.version_schema, err))
		goto out;
	for (size_t i = 0; i < n || i < snap->revisions.count; i++) {
		if (i < n && i < snap->revisions.count && !strcmp(revs[i], snap->revisions.items[i]))
			continue;
		dgm_error_set(err, DGM_E_RUN, "database '%s' holds revision '%s' where "
			      "snapshot '%s' recorded '%s'", db, i < n ? revs[i] : "(none)", snap->id,
			      i < snap->revisions.count ? snap->revisions.items[i] : "(none)");
		goto out;
	}
	ret = 0;
out:
	dgm_pg_strings_free(revs);
	dgm_pg_close(conn);
	return ret;
}
