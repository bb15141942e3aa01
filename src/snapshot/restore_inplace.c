/* restore_inplace.c - put a snapshot's dump back into the database
 * itself, for a role that cannot create databases (no CREATEDB): one
 * psql --single-transaction session runs
 *   1. a prelude: dgmigrate's history rows kept aside (a temporary
 *      table), every schema of the application dropped with what it
 *      holds, public dropped and made again as it was (owner, ACL,
 *      comment);
 *   2. pg_restore --clean --if-exists's script of the dump (written to
 *      a private file first, so psql never runs a script cut short);
 *   3. an epilogue: the Alembic revisions checked against the snapshot,
 *      the history rows carried over.
 * Any error stops psql (ON_ERROR_STOP) and the transaction is rolled
 * back: the database is as it was. The database itself (its OID) stays,
 * so its owner, ACL, settings and comment are untouched.
 *
 * Limits: the role must be able to drop every object of the database's
 * schemas (own them; preflight checks); objects outside schemas that
 * were created after the snapshot (event triggers, publications,
 * extensions in pg_catalog, large objects) stay; the script needs about
 * the database's size on disk under the state folder while it runs; the
 * restore is single-threaded (no pg_restore --jobs in one transaction),
 * and holds its locks until it commits. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dgm/buf.h"
#include "dgm/fs.h"
#include "dgm/history.h"
#include "dgm/log.h"
#include "dgm/pg.h"
#include "dgm/restore.h"
#include "dgm/run.h"
#include "internal.h"

static const char *prelude =
	"SET client_min_messages = warning;\n"
	"CREATE TEMPORARY TABLE dgm_carry_runs (j jsonb);\n"
	"DO $dgm$\n"
	"DECLARE o record; own text; acl aclitem[]; cmt text;\n"
	"BEGIN\n"
	"  IF to_regclass('dgmigrate.runs') IS NOT NULL THEN\n"
	"    INSERT INTO pg_temp.dgm_carry_runs SELECT to_jsonb(r) FROM dgmigrate.runs r;\n"
	"  END IF;\n"
	"  FOR o IN SELECT nspname FROM pg_namespace WHERE nspname NOT IN ('pg_catalog',\n"
	"      'information_schema', 'public') AND nspname !~ '^pg_(toast|temp_|toast_temp_)' LOOP\n"
	"    EXECUTE format('DROP SCHEMA %I CASCADE', o.nspname);\n"
	"  END LOOP;\n"
	"  SELECT pg_get_userbyid(nspowner), nspacl, obj_description(oid, 'pg_namespace')\n"
	"    INTO own, acl, cmt FROM pg_namespace WHERE nspname = 'public';\n"
	"  IF FOUND THEN\n"
	"    DROP SCHEMA public CASCADE;\n"
	"    EXECUTE format('CREATE SCHEMA public AUTHORIZATION %I', own);\n"
	"    IF acl IS NOT NULL THEN\n"
	"      EXECUTE format('REVOKE ALL ON SCHEMA public FROM PUBLIC, %I', own);\n"
	"      FOR o IN SELECT a.privilege_type, a.grantee, a.is_grantable FROM aclexplode(acl) a LOOP\n"
	"        EXECUTE format('GRANT %s ON SCHEMA public TO %s%s', o.privilege_type,\n"
	"          CASE o.grantee WHEN 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(o.grantee)) END,\n"
	"          CASE WHEN o.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END);\n"
	"      END LOOP;\n"
	"    END IF;\n"
	"    EXECUTE format('COMMENT ON SCHEMA public IS %L', cmt);\n"
	"  END IF;\n"
	"END $dgm$;\n";

/* The snapshot's revisions, checked inside the transaction: a dump that
 * does not hold them is never committed. */
static void epilogue_check(dgm_buf *b, PGconn *conn, const dgm_plan *plan,
			   const dgm_snapshot *snap)
{
	char *table = dgm_xasprintf("%s%s%s", plan->alembic.version_schema ?
				    plan->alembic.version_schema : "",
				    plan->alembic.version_schema ? "." : "",
				    plan->alembic.version_table);
	char *qtable = dgm_pg_quote_ident(conn, table);
	char *lit = PQescapeLiteral(conn, qtable, strlen(qtable));
	char *id = PQescapeLiteral(conn, snap->id, strlen(snap->id));

	dgm_buf_puts(b, "RESET search_path;\nDO $dgm$\nDECLARE got text[] := '{}'; want text[] := "
		     "ARRAY[");
	for (size_t i = 0; i < snap->revisions.count; i++) {
		char *r = PQescapeLiteral(conn, snap->revisions.items[i],
					  strlen(snap->revisions.items[i]));

		dgm_buf_printf(b, "%s%s", i ? ", " : "", r ? r : "''");
		PQfreemem(r);
	}
	dgm_buf_printf(b, "]::text[];\nBEGIN\n"
		       "  IF to_regclass(%s) IS NOT NULL THEN\n"
		       "    EXECUTE format('SELECT coalesce(array_agg(version_num::text), ''{}'') FROM %%s',"
		       " to_regclass(%s)) INTO got;\n"
		       "  END IF;\n"
		       "  IF ARRAY(SELECT unnest(got) ORDER BY 1) IS DISTINCT FROM"
		       " ARRAY(SELECT unnest(want) ORDER BY 1) THEN\n"
		       "    RAISE EXCEPTION 'the restored database holds revisions %% where snapshot %% "
		       "recorded %%', got, %s, want;\n"
		       "  END IF;\n"
		       "END $dgm$;\n", lit ? lit : "''", lit ? lit : "''", id ? id : "''");
	PQfreemem(lit);
	PQfreemem(id);
	free(qtable);
	free(table);
}

/* The history rows kept aside by the prelude replace those the dump had. */
static void epilogue_runs(dgm_buf *b)
{
	dgm_buf_printf(b, "%s;\n", DGM_HISTORY_DDL);
	dgm_buf_puts(b, "DELETE FROM dgmigrate.runs WHERE run_id IN"
		     " (SELECT j->>'run_id' FROM pg_temp.dgm_carry_runs);\n"
		     "INSERT INTO dgmigrate.runs SELECT (jsonb_populate_record(NULL::dgmigrate.runs,"
		     " j)).* FROM pg_temp.dgm_carry_runs;\n");
}

static int write_file(const char *dir, const char *name, const char *text, dgm_error *err)
{
	char *path = dgm_xasprintf("%s/%s", dir, name);
	int ret = dgm_fs_write_atomic(path, text, strlen(text), 0600, err);

	free(path);
	return ret;
}

/* Child env: the URL's server and credentials, this database. */
static int child_env(char ***env, const dgm_plan *plan, const char *db, dgm_error *err)
{
	size_t n = 0;

	if (dgm_pg_env(env, plan->database.url, err))
		return -1;
	while ((*env)[n])
		n++;
	*env = dgm_xrealloc(*env, (n + 3) * sizeof(char *));
	(*env)[n] = dgm_xasprintf("PGDATABASE=%s", db);
	(*env)[n + 1] = dgm_xstrdup("PGAPPNAME=dgmigrate restore");
	(*env)[n + 2] = NULL;
	return 0;
}

static int run_scripts(const dgm_plan *plan, const dgm_snapshot *snap, const char *dir,
		       const char *db, bool super, dgm_error *err)
{
	char *dump = dgm_xasprintf("%s/%s", snap->dir,
				   snap->format == DGM_DUMP_DIRECTORY ? "db" : "db.dump");
	char *script = dgm_xasprintf("--file=%s/restore.sql", dir);
	char *pre = dgm_xasprintf("%s/prelude.sql", dir), *body = dgm_xasprintf("%s/restore.sql", dir);
	char *post = dgm_xasprintf("%s/epilogue.sql", dir);
	const char *dump_argv[] = { "pg_restore", "--clean", "--if-exists", script, dump, NULL, NULL,
				    NULL };
	char *list = NULL;
	const char *psql_argv[] = { "psql", "--no-psqlrc", "--quiet", "--set=ON_ERROR_STOP=1",
				    "--single-transaction", "--file", pre, "--file", body,
				    "--file", post, NULL };
	char **env = NULL;
	int ret = -1;

	if (dgm_snapshot_toc_for_role(&list, dump, dir, super, err))
		goto out;
	if (list) {
		dump_argv[5] = "--use-list";
		dump_argv[6] = list;
	}
	if (child_env(&env, plan, db, err) == 0) {
		dgm_child pr = { .argv = dump_argv, .timeout_ms = plan->timeouts.restore_ms };
		dgm_child ps = { .argv = psql_argv, .env_set = (const char *const *)env,
				 .timeout_ms = plan->timeouts.restore_ms };

		ret = dgm_run(&pr, err);
		if (ret == 0) {
			dgm_info("restoring snapshot '%s' in place into database '%s' (psql, one "
				 "transaction)", snap->id, db);
			ret = dgm_run(&ps, err);
		}
	}
out:
	dgm_pg_env_free(env);
	free(list);
	free(dump);
	free(script);
	free(pre);
	free(body);
	free(post);
	return ret;
}

/* Client sessions on the database; with terminate, those this role may
 * end are ended (a non-superuser may end its own roles' sessions, or
 * any with pg_signal_backend, never a superuser's): the rest are named. */
static const char *sessions_sql =
	"SELECT pid, coalesce(usename, ''), coalesce(nullif(application_name, ''), '-')"
	" FROM pg_stat_activity a WHERE datname = current_database() AND pid <> pg_backend_pid()"
	" AND backend_type = 'client backend' AND NOT ($1 AND ("
	"  (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) OR"
	"  (NOT coalesce((SELECT rolsuper FROM pg_roles WHERE oid = a.usesysid), false) AND"
	"   (pg_has_role(a.usesysid, 'MEMBER') OR pg_has_role('pg_signal_backend', 'MEMBER'))))"
	"  AND pg_terminate_backend(a.pid))";

static int end_sessions(PGconn *conn, bool terminate, dgm_error *err)
{
	const char *params[] = { terminate ? "true" : "false" };
	PGresult *res = NULL;
	dgm_buf who = DGM_BUF_INIT;
	int n;

	if (dgm_pg_query(&res, conn, sessions_sql, 1, params, err))
		return -1;
	n = PQntuples(res);
	for (int i = 0; i < n && i < 3; i++)
		dgm_buf_printf(&who, "%spid %s '%s' (user '%s')", i ? ", " : "", PQgetvalue(res, i, 0),
			       PQgetvalue(res, i, 2), PQgetvalue(res, i, 1));
	PQclear(res);
	if (n == 0)
		return 0;
	dgm_error_set(err, DGM_E_RUN, "%d other session%s connected to database '%s'%s: %s%s", n,
		      n == 1 ? " is" : "s are", PQdb(conn), terminate ? " and this role may not "
		      "end them" : "", who.ptr, n > 3 ? ", ..." : "");
	dgm_error_hint(err, "stop the application (maintenance mode)%s", terminate ?
		       ", or grant pg_signal_backend to the plan's role" :
		       " or pass --terminate-connections");
	dgm_buf_free(&who);
	return -1;
}

int dgm_db_restore_in_place(const dgm_plan *plan, const dgm_snapshot *snap, bool terminate,
			    dgm_error *err)
{
	PGconn *conn = NULL;
	dgm_buf post = DGM_BUF_INIT;
	dgm_error ignore = DGM_ERROR_INIT;
	char *dir = dgm_xasprintf("%s/restore-%s", plan->state_dir, snap->id);
	char *db = NULL;
	bool super;
	int ret = -1;

	if (!snap->has_dump) {
		dgm_error_set(err, DGM_E_RUN, "snapshot '%s' has no dump (only a server-side copy): "
			      "it cannot be restored in place", snap->id);
		goto out;
	}
	if (dgm_pg_connect(&conn, plan->database.url, "dgmigrate restore", err))
		goto out;
	db = dgm_xstrdup(PQdb(conn));
	epilogue_check(&post, conn, plan, snap);
	epilogue_runs(&post);
	if (dgm_fs_remove_tree(dir, err) || dgm_fs_mkdir_p(dir, 0700, err) ||
	    write_file(dir, "prelude.sql", prelude, err) ||
	    write_file(dir, "epilogue.sql", dgm_buf_cstr(&post), err) ||
	    end_sessions(conn, terminate, err))
		goto out;
	super = dgm_pg_is_superuser(conn);
	dgm_pg_close(conn);
	conn = NULL;
	ret = run_scripts(plan, snap, dir, db, super, err);
out:
	dgm_fs_remove_tree(dir, &ignore);
	dgm_error_clear(&ignore);
	dgm_pg_close(conn);
	dgm_buf_free(&post);
	free(dir);
	free(db);
	if (ret)
		dgm_error_prefix(err, "restore in place failed, database unchanged");
	return ret;
}
