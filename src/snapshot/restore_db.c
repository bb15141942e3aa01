/* restore_db.c - restore a snapshot's dump beside the target database,
 * check it, then swap names. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dgm/clock.h"
#include "dgm/buf.h"
#include "dgm/fault.h"
#include "dgm/fs.h"
#include "dgm/log.h"
#include "dgm/pg.h"
#include "dgm/restore.h"
#include "dgm/run.h"
#include "internal.h"

#define MAINTENANCE_DB "postgres"

static int maint(PGconn **conn, const dgm_plan *plan, dgm_error *err)
{
	return dgm_pg_connect_db(conn, plan->database.url, MAINTENANCE_DB, "dgmigrate restore", err);
}

static int run_pg_restore(const dgm_plan *plan, const dgm_snapshot *snap, const char *db,
			  bool super, dgm_error *err)
{
	char jobs[32], dbopt[300];
	char *dump = dgm_xasprintf("%s/%s", snap->dir,
				   snap->format == DGM_DUMP_DIRECTORY ? "db" : "db.dump");
	char *work = dgm_xasprintf("%s/.restore-%s", plan->snapshot.directory, snap->id);
	char *list = NULL;
	const char *argv[] = { "pg_restore", "--exit-on-error", jobs, dbopt, dump, NULL, NULL, NULL };
	dgm_error ignore = DGM_ERROR_INIT;
	char **env = NULL;
	int ret = -1;

	snprintf(jobs, sizeof(jobs), "--jobs=%d", plan->snapshot.jobs);
	/* the database name only: host, user and password come from PG* env */
	snprintf(dbopt, sizeof(dbopt), "--dbname=%s", db);
	if (dgm_fs_remove_tree(work, err) || dgm_fs_mkdir_p(work, 0700, err) ||
	    dgm_snapshot_toc_for_role(&list, dump, work, super, err))
		goto out;
	if (list) {
		argv[5] = "--use-list";
		argv[6] = list;
	}
	dgm_fault_point("restore.pg_restore");
	if (dgm_pg_env(&env, plan->database.url, err) == 0) {
		dgm_child c = { .argv = argv, .env_set = (const char *const *)env,
				.env_unset = (const char *const[]){ "PGDATABASE", NULL },
				.timeout_ms = plan->timeouts.restore_ms };

		ret = dgm_run(&c, err);
	}
out:
	dgm_pg_env_free(env);
	dgm_fs_remove_tree(work, &ignore);
	dgm_error_clear(&ignore);
	free(list);
	free(work);
	free(dump);
	return ret;
}

/* CREATE DATABASE new with the owner, encoding and locale of like. */
static int create_like(PGconn *conn, const char *name, const char *like, dgm_error *err)
{
	const char *params[] = { like };
	PGresult *res = NULL;
	char *qname = NULL, *qowner = NULL, *sql = NULL;
	char *enc = NULL, *coll = NULL, *ctype = NULL;
	int ret = -1;

	if (dgm_pg_query(&res, conn, "SELECT pg_get_userbyid(datdba), pg_encoding_to_char(encoding),"
			 " datcollate, datctype FROM pg_database WHERE datname = $1", 1, params, err))
		return -1;
	if (PQntuples(res) != 1) {
		dgm_error_set(err, DGM_E_PG, "database '%s' not found in pg_database", like);
		goto out;
	}
	qname = dgm_pg_quote_ident(conn, name);
	qowner = dgm_pg_quote_ident(conn, PQgetvalue(res, 0, 0));
	enc = PQescapeLiteral(conn, PQgetvalue(res, 0, 1), strlen(PQgetvalue(res, 0, 1)));
	coll = PQescapeLiteral(conn, PQgetvalue(res, 0, 2), strlen(PQgetvalue(res, 0, 2)));
	ctype = PQescapeLiteral(conn, PQgetvalue(res, 0, 3), strlen(PQgetvalue(res, 0, 3)));
	sql = dgm_xasprintf("CREATE DATABASE %s OWNER %s TEMPLATE template0 ENCODING %s "
			    "LC_COLLATE %s LC_CTYPE %s", qname, qowner, enc, coll, ctype);
	ret = dgm_pg_exec(conn, sql, err);
out:
	PQfreemem(enc);
	PQfreemem(coll);
	PQfreemem(ctype);
	free(sql);
	free(qname);
	free(qowner);
	PQclear(res);
	return ret;
}

/* What the restore reads, checked before anything is made: a server-side
 * copy that holds what the snapshot recorded (*copy, cloned by TEMPLATE
 * in seconds), else the dump (files against db.sha256, pg_restore
 * --list). A copy-only snapshot whose copy fails its check fails here. */
static int pick_source(bool *copy, const dgm_plan *plan, const dgm_snapshot *snap,
		       dgm_error *err)
{
	*copy = false;
	if (snap->db_copy) {
		if (dgm_snapshot_check_copy(snap, plan, err) == 0) {
			*copy = true;
			return 0;
		}
		if (!snap->has_dump)
			return -1;
		dgm_warn("%s: restoring from the dump instead", err->msg);
		dgm_error_clear(err);
	}
	return dgm_snapshot_verify_dump(snap, err);
}

char *dgm_db_restore_staging_name(const char *target, const char *snap_id)
{
	return dgm_xasprintf("%.30s_dgm_new_%.22s", target, snap_id);
}

int dgm_db_restore_stage(dgm_db_restore *r, const dgm_plan *plan, const dgm_snapshot *snap,
			 dgm_error *err)
{
	PGconn *conn = NULL, *target = NULL;
	long start = dgm_now_ms();
	bool copy;
	int ret = -1;

	memset(r, 0, sizeof(*r));
	if (dgm_pg_connect(&target, plan->database.url, "dgmigrate restore", err))
		return -1;
	r->target = dgm_xstrdup(PQdb(target));
	dgm_pg_close(target);
	r->staging = dgm_db_restore_staging_name(r->target, snap->id);
	r->aside = dgm_xasprintf("%.30s_dgm_old_%.22s", r->target, snap->id);
	if (pick_source(&copy, plan, snap, err) || maint(&conn, plan, err))
		goto out;
	if (dgm_pg_drop_database(conn, r->staging, true, err))
		goto out;
	if (copy) {
		/* the copy stays as it is: the snapshot can be restored again */
		dgm_info("restoring snapshot '%s' into database '%s' (a copy of '%s')", snap->id,
			 r->staging, snap->db_copy);
		if (dgm_pg_copy_database(conn, r->staging, snap->db_copy, err))
			goto out;
		r->staged = true;
	} else {
		if (create_like(conn, r->staging, r->target, err))
			goto out;
		r->staged = true;
		dgm_info("restoring snapshot '%s' into database '%s' (pg_restore, %d jobs)",
			 snap->id, r->staging, plan->snapshot.jobs);
		if (run_pg_restore(plan, snap, r->staging, dgm_pg_is_superuser(conn), err))
			goto out;
	}
	if (dgm_snapshot_check_db_revisions(plan, snap, r->staging, err))
		goto out;
	r->restore_ms = dgm_now_ms() - start;
	ret = 0;
out:
	if (ret && r->staged && conn) {
		dgm_error ignore = DGM_ERROR_INIT;

		dgm_pg_drop_database(conn, r->staging, true, &ignore);
		r->staged = false;
	}
	dgm_pg_close(conn);
	if (ret)
		dgm_error_prefix(err, "database restore failed");
	return ret;
}

/* Sessions on the target: a swap would cut them off. */
static int check_sessions(PGconn *conn, const char *db, bool terminate, dgm_error *err)
{
	const char *params[] = { db };
	const char *sql = terminate ?
		"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1" :
		"SELECT pid, coalesce(application_name, ''), coalesce(usename, ''),"
		" coalesce(client_addr::text, 'local') FROM pg_stat_activity WHERE datname = $1";
	PGresult *res = NULL;
	dgm_buf who = DGM_BUF_INIT;
	int n;

	if (dgm_pg_query(&res, conn, sql, 1, params, err))
		return -1;
	n = PQntuples(res);
	if (!terminate && n > 0) {
		for (int i = 0; i < n && i < 5; i++)
			dgm_buf_printf(&who, "%spid %s '%s' (user '%s', from %s)", i ? ", " : "",
				       PQgetvalue(res, i, 0), PQgetvalue(res, i, 1),
				       PQgetvalue(res, i, 2), PQgetvalue(res, i, 3));
		dgm_error_set(err, DGM_E_RUN, "%d session%s still connected to database '%s': %s%s",
			      n, n == 1 ? " is" : "s are", db, who.ptr, n > 5 ? ", ..." : "");
		dgm_error_hint(err, "stop the application (maintenance mode) or pass "
			       "--terminate-connections");
		dgm_buf_free(&who);
		PQclear(res);
		return -1;
	}
	PQclear(res);
	return 0;
}

/* The marker goes when the target has its name again (asked of the
 * server, not assumed from which statement failed); else it stays for
 * resume, and the error says so. */
static void unmark(int *fd, PGconn *conn, const dgm_db_restore *r, const dgm_plan *plan,
		   int ret, dgm_error *err)
{
	dgm_error ignore = DGM_ERROR_INIT;
	bool back = false;

	if (*fd < 0)
		return;
	if (ret && (dgm_pg_database_exists(&back, conn, r->target, &ignore) || !back))
		dgm_error_hint(err, "database '%s' may have no name now (set aside as '%s'): run "
			       "dgmigrate resume PLAN to put it back", r->target, r->aside);
	dgm_db_swap_unmark(fd, plan, ret == 0 || back);
}

int dgm_db_restore_swap(dgm_db_restore *r, const dgm_plan *plan, bool terminate,
			dgm_error *err)
{
	PGconn *conn = NULL;
	int fd = -1, ret = -1;

	if (maint(&conn, plan, err))
		return -1;
	if (check_sessions(conn, r->target, terminate, err) ||
	    dgm_db_swap_mark(&fd, plan, r, err) ||
	    (!r->keep_aside && dgm_pg_drop_database(conn, r->aside, false, err)) ||
	    dgm_pg_rename_database(conn, r->target, r->aside, err))
		goto out;
	/* the crash tests stop here: no database has the target's name (the
	 * marker says where it is: resume puts it back) */
	dgm_fault_point("restore.renamed");
	if (dgm_pg_rename_database(conn, r->staging, r->target, err)) {
		dgm_error ignore = DGM_ERROR_INIT;

		dgm_pg_rename_database(conn, r->aside, r->target, &ignore);
		goto out;
	}
	r->swapped = true;
	ret = 0;
out:
	unmark(&fd, conn, r, plan, ret, err);
	dgm_pg_close(conn);
	return ret;
}

int dgm_db_restore_commit(dgm_db_restore *r, const dgm_plan *plan, dgm_error *err)
{
	PGconn *conn = NULL;
	int ret;

	if (!r->swapped || r->keep_aside)
		return 0;
	if (maint(&conn, plan, err))
		return -1;
	ret = dgm_pg_drop_database(conn, r->aside, true, err);
	dgm_pg_close(conn);
	return ret;
}

int dgm_db_restore_abort(dgm_db_restore *r, const dgm_plan *plan, dgm_error *err)
{
	PGconn *conn = NULL;
	int ret = 0;

	if (!r->staged && !r->swapped)
		return 0;
	if (maint(&conn, plan, err))
		return -1;
	/* swapped back under the same marker as the swap: between these two
	 * renames too, no database has the target's name */
	if (r->swapped) {
		int fd = -1;

		ret = dgm_db_swap_mark(&fd, plan, r, err) ||
		      dgm_pg_rename_database(conn, r->target, r->staging, err) ||
		      dgm_pg_rename_database(conn, r->aside, r->target, err);
		unmark(&fd, conn, r, plan, ret, err);
	}
	if (ret == 0)
		ret = dgm_pg_drop_database(conn, r->staging, true, err);
	dgm_pg_close(conn);
	return ret ? -1 : 0;
}

void dgm_db_restore_free(dgm_db_restore *r)
{
	free(r->target);
	free(r->staging);
	free(r->aside);
	memset(r, 0, sizeof(*r));
}
