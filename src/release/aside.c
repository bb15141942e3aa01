/* aside.c - resume after a rollback killed while its restore set the
 * database aside as its safety snapshot (rollback.c, use_aside): the
 * journal's snapshot step names the database, the name it goes aside
 * under and the staging database renamed into its place. Until the
 * safety snapshot is complete (its manifest written, right after the
 * swap), the database set aside is put back under its name: the first
 * rename done alone leaves no database of that name; both done, the
 * restored one (a clone of the release snapshot, which stays) is
 * dropped: the rollback runs again from the database as it was. A completed snapshot owns its database: nothing to do. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dgm/journal.h"
#include "dgm/log.h"
#include "dgm/pg.h"
#include "internal.h"

#define MAINTENANCE_DB "postgres"

static bool completed(const dgm_plan *plan, const char *id)
{
	char *path = dgm_xasprintf("%s/%s/manifest.json", plan->snapshot.directory, id);
	struct stat st;
	bool done = stat(path, &st) == 0;

	free(path);
	return done;
}

/* Only the names a rollback of this database makes (a journal edited by
 * hand never renames another database). */
static bool names_ok(const char *db, const char *id, const char *aside, const char *staging)
{
	char *want = dgm_xasprintf("%.30s_dgm_safe_%.22s", db, id);
	char *head = dgm_xasprintf("%.30s_dgm_new_", db);
	bool ok = !strcmp(want, aside) && !strncmp(staging, head, strlen(head));

	free(want);
	free(head);
	return ok;
}

static int put_back(PGconn *conn, const char *db, const char *aside, const char *staging,
		    dgm_error *err)
{
	bool target, stage;

	if (dgm_pg_database_exists(&target, conn, db, err) || dgm_pg_database_exists(&stage, conn, staging, err))
		return -1;
	if (target && stage)
		return dgm_error_set(err, DGM_E_RUN, "databases '%s', '%s' and '%s' all exist: "
				     "cannot tell which holds what", db, aside, staging);
	/* what was swapped in, or still waits to be, is a clone of the
	 * release snapshot (which stays): it goes, and the rollback runs
	 * again from the database as it was */
	if (target && dgm_pg_rename_database(conn, db, staging, err))
		return -1;
	dgm_info("putting database '%s' back under its name (it was set aside as '%s' by the "
		 "killed rollback, whose safety snapshot was not complete)", db, aside);
	if (dgm_pg_rename_database(conn, aside, db, err))
		return -1;
	return dgm_pg_drop_database(conn, staging, true, err);
}

int dgm_release_aside_recover(const dgm_plan *plan, const dgm_journal_view *v, dgm_error *err)
{
	json_t *d = dgm_journal_data(v, "snapshot");
	const char *id = json_string_value(json_object_get(d, "snapshot"));
	const char *db = json_string_value(json_object_get(d, "database"));
	const char *aside = json_string_value(json_object_get(d, "aside"));
	const char *staging = json_string_value(json_object_get(d, "staging"));
	PGconn *conn = NULL;
	bool exists;
	int ret = -1;

	if (!id || !db || !aside || !staging || completed(plan, id))
		return 0;
	if (!names_ok(db, id, aside, staging))
		return dgm_error_set(err, DGM_E_RUN, "%s: the snapshot step names databases no "
				     "rollback of '%s' makes ('%s', '%s')", v->path, db, aside, staging);
	if (dgm_pg_connect_db(&conn, plan->database.url, MAINTENANCE_DB, "dgmigrate resume", err) ||
	    dgm_pg_database_exists(&exists, conn, aside, err))
		goto out;
	ret = exists ? put_back(conn, db, aside, staging, err) : 0;
out:
	if (ret)
		dgm_error_prefix(err, "cannot put back the database the killed rollback set aside");
	dgm_pg_close(conn);
	return ret;
}
