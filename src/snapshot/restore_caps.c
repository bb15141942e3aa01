/* restore_caps.c - what the role in the plan's URL may do to keep and
 * put back its database, found out before anything changes: preflight
 * says which way the snapshot and a later restore will go, and the
 * restore takes the same way. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dgm/log.h"
#include "dgm/pg.h"
#include "dgm/restore.h"
#include "dgm/run.h"

/* The role, the database and the sessions on it. */
static const char *role_sql =
	"SELECT current_user, current_database(), pg_get_userbyid(d.datdba), r.rolsuper,"
	" r.rolcreatedb, pg_has_role(d.datdba, 'MEMBER'),"
	" (SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
	"  AND pid <> pg_backend_pid() AND backend_type = 'client backend'),"
	" r.rolsuper OR pg_has_role('pg_signal_backend', 'MEMBER')"
	" FROM pg_database d, pg_roles r WHERE d.datname = current_database()"
	" AND r.rolname = current_user";

/* An object of the application's schemas (everything outside the
 * system's) that this role could not drop: the in-place restore drops
 * them all. Members of extensions go with their extension. */
static const char *foreign_sql =
	"WITH app AS (SELECT oid, nspname, nspowner FROM pg_namespace"
	"  WHERE nspname NOT IN ('pg_catalog', 'information_schema')"
	"  AND nspname !~ '^pg_(toast|temp_|toast_temp_)'),"
	" objs AS ("
	"  SELECT 'schema ' || quote_ident(nspname) AS what, nspowner AS owner,"
	"   'pg_namespace'::regclass AS cls, oid FROM app"
	"  UNION ALL SELECT 'relation ' || c.oid::regclass::text, c.relowner, 'pg_class'::regclass,"
	"   c.oid FROM pg_class c JOIN app ON app.oid = c.relnamespace"
	"   WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')"
	"  UNION ALL SELECT 'routine ' || p.oid::regprocedure::text, p.proowner,"
	"   'pg_proc'::regclass, p.oid FROM pg_proc p JOIN app ON app.oid = p.pronamespace"
	"  UNION ALL SELECT 'type ' || t.oid::regtype::text, t.typowner, 'pg_type'::regclass, t.oid"
	"   FROM pg_type t JOIN app ON app.oid = t.typnamespace WHERE t.typtype IN ('d', 'e', 'r')"
	"  UNION ALL SELECT 'extension ' || quote_ident(e.extname), e.extowner,"
	"   'pg_extension'::regclass, e.oid FROM pg_extension e JOIN app ON app.oid = e.extnamespace)"
	" SELECT what || ' (owner ' || quote_ident(pg_get_userbyid(owner)) || ')' FROM objs o"
	" WHERE NOT pg_has_role(o.owner, 'MEMBER') AND NOT EXISTS (SELECT 1 FROM pg_depend d"
	"  WHERE d.classid = o.cls AND d.objid = o.oid AND d.deptype = 'e')"
	" ORDER BY 1 LIMIT 1";

/* Another role's settings in this database: a new database takes them
 * again only from a superuser (ALTER ROLE ... IN DATABASE). */
static const char *role_setting_sql =
	"SELECT pg_get_userbyid(s.setrole) FROM pg_db_role_setting s JOIN pg_database d"
	" ON d.oid = s.setdatabase WHERE d.datname = current_database() AND s.setrole <> 0"
	" AND pg_get_userbyid(s.setrole) <> current_user ORDER BY 1 LIMIT 1";

static int first_value(char *buf, size_t len, PGconn *conn, const char *sql, dgm_error *err)
{
	PGresult *res = NULL;

	if (dgm_pg_query(&res, conn, sql, 0, NULL, err))
		return -1;
	snprintf(buf, len, "%s", PQntuples(res) ? PQgetvalue(res, 0, 0) : "");
	PQclear(res);
	return 0;
}

int dgm_db_caps_read(dgm_db_caps *c, PGconn *conn, dgm_error *err)
{
	PGresult *res = NULL;
	char *psql = dgm_which("psql");

	memset(c, 0, sizeof(*c));
	c->psql = psql != NULL;
	free(psql);
	if (dgm_pg_query(&res, conn, role_sql, 0, NULL, err))
		goto fail;
	if (PQntuples(res) != 1) {
		PQclear(res);
		dgm_error_set(err, DGM_E_PG, "cannot read the role and database in pg_roles and "
			      "pg_database");
		goto fail;
	}
	snprintf(c->role, sizeof(c->role), "%s", PQgetvalue(res, 0, 0));
	snprintf(c->database, sizeof(c->database), "%s", PQgetvalue(res, 0, 1));
	snprintf(c->owner, sizeof(c->owner), "%s", PQgetvalue(res, 0, 2));
	c->super = *PQgetvalue(res, 0, 3) == 't';
	c->createdb = *PQgetvalue(res, 0, 4) == 't';
	c->owns = *PQgetvalue(res, 0, 5) == 't';
	c->others = atoi(PQgetvalue(res, 0, 6));
	c->can_signal = *PQgetvalue(res, 0, 7) == 't';
	PQclear(res);
	if (!c->super && (first_value(c->foreign, sizeof(c->foreign), conn, foreign_sql, err) ||
			  first_value(c->role_setting, sizeof(c->role_setting), conn,
				      role_setting_sql, err)))
		goto fail;
	return 0;
fail:
	dgm_error_prefix(err, "cannot find out what this role may do");
	return -1;
}

bool dgm_db_caps_can_copy(const dgm_db_caps *c, char *why, size_t len)
{
	if (!c->super && !c->createdb)
		snprintf(why, len, "role '%s' has no CREATEDB", c->role);
	else if (!c->super && !c->owns)
		snprintf(why, len, "role '%s' does not own database '%s'", c->role, c->database);
	else if (c->others > 0)
		snprintf(why, len, "%d other session%s connected to '%s'", c->others,
			 c->others == 1 ? " is" : "s are", c->database);
	else
		return true;
	return false;
}

/* A swap creates a database with the target's owner, renames both and
 * sets the target's settings on the new one. */
static bool can_swap(const dgm_db_caps *c, char *why, size_t len)
{
	if (c->super)
		return true;
	if (!c->createdb)
		snprintf(why, len, "role '%s' has no CREATEDB", c->role);
	else if (!c->owns)
		snprintf(why, len, "role '%s' does not own database '%s'", c->role, c->database);
	else if (c->role_setting[0])
		snprintf(why, len, "the settings of role '%s' in database '%s' can only be set "
			 "again by a superuser", c->role_setting, c->database);
	else
		return true;
	return false;
}

dgm_restore_path dgm_db_caps_restore_path(const dgm_db_caps *c, bool has_dump, char *why,
					  size_t len)
{
	char swap_why[256] = "", more[320] = "";

	if (can_swap(c, swap_why, sizeof(swap_why)))
		return DGM_RESTORE_SWAP;
	if (!has_dump)
		snprintf(more, sizeof(more), "the snapshot has no dump to restore in place");
	else if (c->foreign[0])
		snprintf(more, sizeof(more), "a restore in place cannot drop %s", c->foreign);
	else if (!c->psql)
		snprintf(more, sizeof(more), "a restore in place needs psql, not found in PATH");
	snprintf(why, len, "%s%s%s", swap_why, more[0] ? "; " : "", more);
	return more[0] ? DGM_RESTORE_NONE : DGM_RESTORE_IN_PLACE;
}

const char *dgm_restore_path_text(dgm_restore_path p)
{
	switch (p) {
	case DGM_RESTORE_SWAP:
		return "restore beside the database, then names swapped";
	case DGM_RESTORE_IN_PLACE:
		return "restore in place (pg_restore --clean in one transaction)";
	default:
		return "no restore possible";
	}
}
