/* aside.c - a safety snapshot whose database is the database itself,
 * renamed aside by the restore that replaces it (rollback --restore):
 * one clone and two renames instead of two full copies. The snapshot
 * waits in its .partial folder (model store part taken, owner.json
 * naming no copy) until the database is set aside; then it is recorded
 * from that database, checked, and completed. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dgm/clock.h"
#include "dgm/fingerprint.h"
#include "dgm/fs.h"
#include "dgm/log.h"
#include "dgm/pg.h"
#include "internal.h"

#define MAINTENANCE_DB "postgres"

static void set_str(char **field, const char *value)
{
	free(*field);
	*field = dgm_xstrdup(value);
}

/* Revisions, WAL position, write counters and catalog fingerprint, read
 * from the database set aside: exactly what the snapshot holds (writes
 * made up to the rename are in it, none after). */
static int record_aside(dgm_snapshot *s, const dgm_plan *plan, dgm_error *err)
{
	dgm_fingerprint fp = DGM_FINGERPRINT_INIT;
	PGconn *conn = NULL;
	PGresult *res = NULL;
	char **revs = NULL;
	size_t n = 0;
	int ret = -1;

	if (dgm_pg_connect_db(&conn, plan->database.url, s->db_copy, "dgmigrate snapshot", err) ||
	    dgm_pg_read_revisions(&revs, &n, conn, plan->alembic.version_table,
				  plan->alembic.version_schema, err))
		goto out;
	dgm_strlist_free(&s->revisions);
	s->revisions.items = revs;
	s->revisions.count = n;
	if (dgm_pg_query(&res, conn, "SELECT pg_current_wal_lsn()::text, (" DGM_SNAPSHOT_WRITES_SQL
			 ")", 0, NULL, err))
		goto out;
	set_str(&s->wal_lsn, PQgetvalue(res, 0, 0));
	set_str(&s->writes, PQgetvalue(res, 0, 1));
	if (dgm_fingerprint_take(&fp, conn, plan->alembic.version_table,
				 plan->alembic.version_schema, err))
		goto out;
	memcpy(s->catalog_sha256, fp.sha256, sizeof(s->catalog_sha256));
	ret = 0;
out:
	dgm_fingerprint_free(&fp);
	PQclear(res);
	dgm_pg_close(conn);
	return ret;
}

int dgm_snapshot_finish_aside(dgm_snapshot *s, const dgm_plan *plan, dgm_error *err)
{
	long start = dgm_now_ms();
	char *partial = dgm_xstrdup(s->dir);
	int ret = -1;

	if (!s->aside_pending) {
		free(partial);
		return dgm_error_set(err, DGM_E_RUN, "snapshot '%s' is not waiting for a database "
				     "set aside", s->id);
	}
	/* read from the database itself: what it records is what it holds
	 * (a check_copy would compare it with itself) */
	if (record_aside(s, plan, err))
		goto out;
	s->aside_pending = false;
	if (dgm_snapshot_finish(s, plan, partial, start - s->total_ms, start, err)) {
		s->aside_pending = true;
		goto out;
	}
	dgm_info("safety snapshot '%s': database '%s' set aside as '%s', not copied", s->id,
		 s->database, s->db_copy);
	ret = 0;
out:
	if (ret)
		dgm_error_prefix(err, "safety snapshot '%s' of the database set aside", s->id);
	free(partial);
	return ret;
}

void dgm_snapshot_label_aside(const dgm_snapshot *s, const dgm_plan *plan)
{
	PGconn *conn = NULL;
	dgm_error e = DGM_ERROR_INIT;

	if (dgm_pg_connect_db(&conn, plan->database.url, MAINTENANCE_DB, "dgmigrate snapshot", &e) ||
	    dgm_snapshot_label_copy(conn, s->db_copy, s->database, s->dir, &e))
		dgm_warn("cannot label '%s' as the copy of snapshot '%s' (%s): it is still the "
			 "snapshot's database", s->db_copy, s->id, e.msg);
	dgm_error_clear(&e);
	dgm_pg_close(conn);
}

static int aside_exists(bool *exists, const dgm_plan *plan, const char *name, dgm_error *err)
{
	PGconn *conn = NULL;
	int ret = dgm_pg_connect_db(&conn, plan->database.url, MAINTENANCE_DB, "dgmigrate snapshot",
				    err);

	if (ret == 0)
		ret = dgm_pg_database_exists(exists, conn, name, err);
	dgm_pg_close(conn);
	return ret;
}

int dgm_snapshot_discard_aside(const dgm_snapshot *s, const dgm_plan *plan)
{
	dgm_error e = DGM_ERROR_INIT;
	char *manifest = dgm_xasprintf("%s/manifest.json", s->dir);
	bool exists = true;
	int ret = -1;

	if (aside_exists(&exists, plan, s->db_copy, &e) || exists) {
		dgm_warn("safety snapshot '%s' kept: %s", s->id, exists ? "its database is set "
			 "aside" : e.msg);
		goto out;
	}
	/* no longer a snapshot first, then the files */
	if (unlink(manifest) != 0 && errno != ENOENT) {
		dgm_warn("cannot remove '%s': %s", manifest, strerror(errno));
		goto out;
	}
	if (dgm_fs_remove_tree(s->dir, &e)) {
		dgm_warn("%s", e.msg);
		goto out;
	}
	ret = 0;
out:
	dgm_error_clear(&e);
	free(manifest);
	return ret;
}
