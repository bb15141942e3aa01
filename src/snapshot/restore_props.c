/* restore_props.c - a restore by swap puts a new database in the old
 * one's place; what belongs to the database rather than to its data
 * (owner, ACL, settings, comment, limits) and dgmigrate's history rows
 * are carried over from the old one, before the swap. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dgm/history.h"
#include "dgm/log.h"
#include "dgm/pg.h"
#include "dgm/restore.h"

#define MAINTENANCE_DB "postgres"

/* The statements that give database $2 the properties of database $1,
 * built by the server (it quotes). Settings of list variables are kept
 * as PostgreSQL stored them (their elements already quoted), the others
 * as literals, as pg_dumpall does. */
static const char *props_sql =
	"WITH t AS (SELECT * FROM pg_database WHERE datname = $1),"
	" n AS (SELECT * FROM pg_database WHERE datname = $2)"
	" SELECT stmt FROM ("
	"  SELECT 1 AS ord, format('ALTER DATABASE %I OWNER TO %I', $2, pg_get_userbyid(t.datdba))"
	"   AS stmt, 0::oid AS who, 0::bigint AS k FROM t, n WHERE t.datdba <> n.datdba"
	"  UNION ALL SELECT 2, format('ALTER DATABASE %I SET TABLESPACE %I', $2, s.spcname), 0, 0"
	"   FROM t, n, pg_tablespace s WHERE s.oid = t.dattablespace"
	"   AND t.dattablespace <> n.dattablespace"
	"  UNION ALL SELECT 3, format('REVOKE ALL ON DATABASE %I FROM PUBLIC, %I', $2,"
	"   pg_get_userbyid(t.datdba)), 0, 0 FROM t WHERE t.datacl IS NOT NULL"
	"  UNION ALL SELECT 4, format('GRANT %s ON DATABASE %I TO %s%s', a.privilege_type, $2,"
	"   CASE a.grantee WHEN 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END,"
	"   CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END), 0, 0"
	"   FROM t, aclexplode(t.datacl) a"
	"  UNION ALL SELECT 5, format('COMMENT ON DATABASE %I IS %L', $2,"
	"   shobj_description(t.oid, 'pg_database')), 0, 0 FROM t"
	"  UNION ALL SELECT 6, format('ALTER DATABASE %I WITH CONNECTION LIMIT %s', $2,"
	"   t.datconnlimit), 0, 0 FROM t"
	"  UNION ALL SELECT 7, CASE WHEN s.setrole = 0 THEN format('ALTER DATABASE %I SET %I TO %s',"
	"   $2, split_part(c, '=', 1), v) ELSE format('ALTER ROLE %I IN DATABASE %I SET %I TO %s',"
	"   pg_get_userbyid(s.setrole), $2, split_part(c, '=', 1), v) END, s.setrole, k"
	"   FROM t JOIN pg_db_role_setting s ON s.setdatabase = t.oid,"
	"   unnest(s.setconfig) WITH ORDINALITY u(c, k),"
	"   LATERAL (SELECT CASE WHEN split_part(c, '=', 1) IN ('search_path', 'temp_tablespaces',"
	"    'local_preload_libraries', 'session_preload_libraries') THEN substr(c, strpos(c, '=') + 1)"
	"    ELSE quote_literal(substr(c, strpos(c, '=') + 1)) END AS v) q"
	"  UNION ALL SELECT 8, format('ALTER DATABASE %I WITH ALLOW_CONNECTIONS %s IS_TEMPLATE %s',"
	"   $2, t.datallowconn, t.datistemplate), 0, 0 FROM t"
	"   WHERE NOT t.datallowconn OR t.datistemplate"
	" ) x ORDER BY ord, who, k, stmt";

static int copy_props(PGconn *conn, const char *from, const char *to, dgm_error *err)
{
	const char *params[] = { from, to };
	PGresult *res = NULL;
	int ret = -1;

	if (dgm_pg_query(&res, conn, props_sql, 2, params, err))
		return -1;
	for (int i = 0; i < PQntuples(res); i++)
		if (dgm_pg_exec(conn, PQgetvalue(res, i, 0), err))
			goto out;
	dgm_info("database '%s' takes the owner, ACL, settings, comment and limits of '%s' "
		 "(%d statements)", to, from, PQntuples(res));
	ret = 0;
out:
	PQclear(res);
	return ret;
}

int dgm_history_rows(char **json, PGconn *conn, dgm_error *err)
{
	PGresult *res = NULL;
	int ret = -1;

	*json = NULL;
	/* a query naming a missing table fails before it runs: ask first */
	if (dgm_pg_query(&res, conn, "SELECT to_regclass('dgmigrate.runs') IS NOT NULL", 0, NULL,
			 err))
		goto out;
	if (*PQgetvalue(res, 0, 0) != 't') {
		*json = dgm_xstrdup("[]");
		ret = 0;
		goto out;
	}
	PQclear(res);
	if (dgm_pg_query(&res, conn, "SELECT coalesce(jsonb_agg(to_jsonb(r)), '[]')::text"
			 " FROM dgmigrate.runs r", 0, NULL, err))
		goto out;
	*json = dgm_xstrdup(PQgetvalue(res, 0, 0));
	ret = 0;
out:
	PQclear(res);
	return ret;
}

/* The history rows of database from, as one JSON array ("[]": none). */
static int read_runs(char **json, const dgm_plan *plan, const char *from, dgm_error *err)
{
	PGconn *conn = NULL;
	int ret = dgm_pg_connect_db(&conn, plan->database.url, from, "dgmigrate restore", err);

	*json = NULL;
	if (ret == 0)
		ret = dgm_history_rows(json, conn, err);
	dgm_pg_close(conn);
	return ret;
}

/* Rows carried over replace the restored database's rows of the same
 * runs: the database being replaced has the newer state of each. */
static int write_runs(const dgm_plan *plan, const char *to, const char *json, dgm_error *err)
{
	const char *params[] = { json };
	PGconn *conn = NULL;
	PGresult *res = NULL;
	int ret = -1;

	if (dgm_pg_connect_db(&conn, plan->database.url, to, "dgmigrate restore", err) ||
	    dgm_pg_exec(conn, "BEGIN", err) || dgm_pg_exec(conn, DGM_HISTORY_DDL, err))
		goto out;
	if (dgm_pg_query(&res, conn, "DELETE FROM dgmigrate.runs WHERE run_id IN (SELECT"
			 " run_id FROM jsonb_populate_recordset(NULL::dgmigrate.runs, $1::jsonb))",
			 1, params, err))
		goto out;
	PQclear(res);
	if (dgm_pg_query(&res, conn, "INSERT INTO dgmigrate.runs SELECT * FROM"
			 " jsonb_populate_recordset(NULL::dgmigrate.runs, $1::jsonb)", 1, params,
			 err) || dgm_pg_exec(conn, "COMMIT", err))
		goto out;
	ret = 0;
out:
	PQclear(res);
	dgm_pg_close(conn);
	return ret;
}

int dgm_db_restore_keep_state(dgm_db_restore *r, const dgm_plan *plan, dgm_error *err)
{
	PGconn *conn = NULL;
	char *runs = NULL;
	int ret = -1;

	if (read_runs(&runs, plan, r->target, err) || write_runs(plan, r->staging, runs, err)) {
		dgm_error_prefix(err, "cannot carry the history (dgmigrate.runs) of '%s' over",
				 r->target);
		goto out;
	}
	if (dgm_pg_connect_db(&conn, plan->database.url, MAINTENANCE_DB, "dgmigrate restore",
			      err))
		goto out;
	if (copy_props(conn, r->target, r->staging, err)) {
		dgm_error_prefix(err, "cannot give database '%s' the properties of '%s'", r->staging,
				 r->target);
		dgm_error_hint(err, "restore as a superuser, or as a role that owns '%s' and may "
			       "set each of its settings", r->target);
		goto out;
	}
	ret = 0;
out:
	dgm_pg_close(conn);
	free(runs);
	return ret;
}
