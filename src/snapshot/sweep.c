/* sweep.c - what a killed snapshot leaves behind: its <id>.partial
 * folder and, when it was copying the database on the server, a
 * <db>_dgm_snap_<id> or <db>_dgm_safe_<id> copy of the database's full
 * size. Each snapshot writes owner.json (the database it copies, and the
 * copy's name before CREATE DATABASE is sent) into its .partial folder
 * first, so such leftovers can be told from anything else: a folder or
 * copy of another database sharing the snapshot directory or the copy
 * names' 30-byte prefix is never touched. The work folders of restores
 * killed in pg_restore go too. Removal runs under the
 * database's lock only (one run per database), so nothing removed is
 * still being written. */
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dgm/buf.h"
#include "dgm/fs.h"
#include "dgm/lock.h"
#include "dgm/log.h"
#include "dgm/pg.h"
#include "internal.h"

#define MAINTENANCE_DB "postgres"
#define OWNER_FILE "owner.json"
#define PARTIAL ".partial"

int dgm_snapshot_write_owner(const char *partial, const char *database, const char *copy,
			     dgm_error *err)
{
	json_t *o = json_pack("{s:s, s:s?}", "database", database, "copy", copy);
	char *text = json_dumps(o, JSON_COMPACT);
	char *path = dgm_xasprintf("%s/" OWNER_FILE, partial);
	int ret = dgm_fs_write_atomic(path, text, strlen(text), 0600, err);

	if (ret)
		dgm_error_prefix(err, "cannot record what the snapshot is writing");
	free(path);
	free(text);
	json_decref(o);
	return ret;
}

char *dgm_snapshot_copy_name(const char *database, const char *infix, const char *id)
{
	return dgm_xasprintf("%.30s_dgm_%s_%.22s", database, infix, id);
}

/* The copy owner.json names, if it is one this snapshot could have made:
 * a marker edited by hand never names another database for dropping. */
static char *owned_copy(const char *database, const char *copy, const char *id)
{
	static const char *const infixes[] = { "snap", "safe" };

	for (size_t i = 0; copy && i < 2; i++) {
		char *want = dgm_snapshot_copy_name(database, infixes[i], id);
		bool same = !strcmp(want, copy);

		free(want);
		if (same)
			return dgm_xstrdup(copy);
	}
	return NULL;
}

/* One .partial folder: whose it is (database NULL: no readable
 * owner.json, e.g. left by an older dgmigrate), and its copy. */
static void read_partial(dgm_snapshot_orphan *o, const char *dir, const char *name)
{
	char *path = dgm_xasprintf("%s/%s/" OWNER_FILE, dir, name);
	json_t *j = json_load_file(path, 0, NULL);
	const char *db = json_string_value(json_object_get(j, "database"));

	memset(o, 0, sizeof(*o));
	o->id = dgm_xasprintf("%.*s", (int)(strlen(name) - strlen(PARTIAL)), name);
	o->dir = dgm_xasprintf("%s/%s", dir, name);
	if (db) {
		o->database = dgm_xstrdup(db);
		o->copy = owned_copy(db, json_string_value(json_object_get(j, "copy")), o->id);
	}
	json_decref(j);
	free(path);
}

static void push(dgm_snapshot_orphan **out, size_t *n, const dgm_snapshot_orphan *o)
{
	*out = dgm_xrealloc(*out, (*n + 1) * sizeof(**out));
	(*out)[(*n)++] = *o;
}

static bool ends_with(const char *s, const char *tail)
{
	size_t a = strlen(s), b = strlen(tail);

	return a > b && !strcmp(s + a - b, tail);
}

/* The .partial folders of database (and those nobody can be told to
 * own). */
static int scan_folders(dgm_snapshot_orphan **out, size_t *n, const char *dir,
			const char *database, dgm_error *err)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	if (!d)
		return errno == ENOENT ? 0 :
		       dgm_error_errno(err, DGM_E_IO, "cannot list snapshots in '%s'", dir);
	while ((de = readdir(d)) != NULL) {
		dgm_snapshot_orphan o;

		if (de->d_name[0] == '.' || !ends_with(de->d_name, PARTIAL))
			continue;
		read_partial(&o, dir, de->d_name);
		if (!o.database || !strcmp(o.database, database))
			push(out, n, &o);
		else
			dgm_snapshot_orphans_free_one(&o);
	}
	closedir(d);
	return 0;
}

static bool folder_gone(const char *path)
{
	struct stat st;
	char *partial = dgm_xasprintf("%s" PARTIAL, path);
	bool gone = stat(path, &st) != 0 && errno == ENOENT &&
		    stat(partial, &st) != 0 && errno == ENOENT;

	free(partial);
	return gone;
}

/* Copies labelled for a folder of this plan's snapshot directory that is
 * gone (not even .partial): their snapshot never finished, or was
 * removed by hand. */
static int scan_labels(dgm_snapshot_orphan **out, size_t *n, PGconn *conn, const dgm_plan *plan,
		       const char *database, dgm_error *err)
{
	char *prefix = dgm_xasprintf("%.30s_dgm_", database);
	char *head = dgm_xasprintf(DGM_SNAPSHOT_LABEL_HEAD, database);
	char *mine = dgm_xasprintf("%s%s/", head, plan->snapshot.directory);
	const char *params[] = { prefix, mine };
	PGresult *res = NULL;
	int ret = -1;

	if (dgm_pg_query(&res, conn, "SELECT datname, shobj_description(oid, 'pg_database')"
			 " FROM pg_database WHERE left(datname, length($1)) = $1"
			 " AND substr(datname, length($1) + 1, 5) IN ('safe_', 'snap_')"
			 " AND left(shobj_description(oid, 'pg_database'), length($2)) = $2",
			 2, params, err))
		goto out;
	for (int i = 0; i < PQntuples(res); i++) {
		const char *dir = PQgetvalue(res, i, 1) + strlen(head);
		const char *slash = strrchr(dir, '/');
		dgm_snapshot_orphan o = { 0 };

		if (!folder_gone(dir))
			continue;
		o.id = dgm_xstrdup(slash ? slash + 1 : dir);
		o.database = dgm_xstrdup(database);
		o.copy = dgm_xstrdup(PQgetvalue(res, i, 0));
		o.copy_exists = true;
		push(out, n, &o);
	}
	ret = 0;
out:
	PQclear(res);
	free(mine);
	free(head);
	free(prefix);
	return ret;
}

static int find(dgm_snapshot_orphan **out, size_t *n, PGconn *conn, const dgm_plan *plan,
		const char *database, dgm_error *err)
{
	*out = NULL;
	*n = 0;
	if (scan_folders(out, n, plan->snapshot.directory, database, err))
		return -1;
	for (size_t i = 0; i < *n; i++)
		if ((*out)[i].copy && dgm_pg_database_exists(&(*out)[i].copy_exists, conn, (*out)[i].copy, err))
			return -1;
	return scan_labels(out, n, conn, plan, database, err);
}

/* The plan's database as the server names it, and a session in the
 * maintenance database (a copy cannot be dropped from inside it). A
 * killed run's CREATE DATABASE ... TEMPLATE goes on without its client,
 * but it keeps new sessions out of the database it copies until it ends:
 * once connected there, its copy is committed or gone, never appearing
 * after the sweep's DROP. */
static int open_server(char **database, PGconn **conn, const dgm_plan *plan, dgm_error *err)
{
	PGconn *target = NULL;

	*conn = NULL;
	if (dgm_pg_connect(&target, plan->database.url, "dgmigrate snapshot", err))
		return -1;
	*database = dgm_xstrdup(PQdb(target));
	dgm_pg_close(target);
	if (dgm_pg_connect_db(conn, plan->database.url, MAINTENANCE_DB, "dgmigrate snapshot", err)) {
		free(*database);
		*database = NULL;
		return -1;
	}
	return 0;
}

int dgm_snapshot_orphans(dgm_snapshot_orphan **out, size_t *n, bool *in_progress,
			 const dgm_plan *plan, dgm_error *err)
{
	char *database = NULL;
	PGconn *conn = NULL;
	int ret = -1;

	*out = NULL;
	*n = 0;
	if (open_server(&database, &conn, plan, err))
		return -1;
	if (find(out, n, conn, plan, database, err) ||
	    dgm_lock_is_held(in_progress, conn, database, err))
		goto out;
	ret = 0;
out:
	if (ret) {
		dgm_snapshot_orphans_free(*out, *n);
		*out = NULL;
		*n = 0;
	}
	dgm_pg_close(conn);
	free(database);
	return ret;
}

static int drop_orphan_copy(PGconn *conn, const dgm_snapshot_orphan *o, dgm_error *err)
{
	if (dgm_pg_drop_database(conn, o->copy, true, err)) {
		dgm_error_prefix(err, "cannot drop '%s', the copy of unfinished snapshot '%s'",
				 o->copy, o->id);
		dgm_error_hint(err, "drop it by hand: DROP DATABASE \"%s\" WITH (FORCE);", o->copy);
		return -1;
	}
	return 0;
}

/* The copy first: a folder whose copy could not be dropped stays, so
 * the next sweep tries again. */
static int remove_orphan(PGconn *conn, const dgm_snapshot_orphan *o, dgm_error *err)
{
	if (o->copy) {
		if (o->copy_exists)
			dgm_info("dropping '%s', the copy of an unfinished snapshot", o->copy);
		if (drop_orphan_copy(conn, o, err))
			return -1;
	}
	if (!o->dir)
		return 0;
	dgm_info("removing '%s', the folder of an unfinished snapshot", o->dir);
	return dgm_fs_remove_tree(o->dir, err);
}

/* A .partial folder with no owner.json: whose it is cannot be told, so
 * only an empty one (a run killed right after making it) goes. */
static void remove_unowned(const dgm_snapshot_orphan *o)
{
	if (rmdir(o->dir) == 0)
		dgm_info("removed '%s', the empty folder of an unfinished snapshot", o->dir);
	else
		dgm_info("left '%s': it does not say which database it is a snapshot of "
			 "(remove it by hand if no run is writing it)", o->dir);
}

/* The database snapshot id holds, from its manifest (NULL: none). */
static char *snapshot_database(const dgm_plan *plan, const char *id)
{
	char *path = dgm_xasprintf("%s/%s/manifest.json", plan->snapshot.directory, id);
	json_t *o = json_load_file(path, 0, NULL);
	const char *name = json_string_value(json_object_get(json_object_get(o, "database"),
							     "name"));
	char *db = name ? dgm_xstrdup(name) : NULL;

	json_decref(o);
	free(path);
	return db;
}

/* The work folders of restores killed in pg_restore (restore_db.c:
 * <snapshot dir>/.restore-<id>, restore_inplace.c: <state dir>/restore-
 * <id>), each removed when snapshot <id> is one of this database's: the
 * caller holds its lock, so no restore of it is running. */
static void sweep_restore_work(const dgm_plan *plan, const char *dir, const char *head,
			       const char *database)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	while (d && (de = readdir(d)) != NULL) {
		size_t len = strlen(head);
		char *db, *path;
		dgm_error e = DGM_ERROR_INIT;

		if (strncmp(de->d_name, head, len) || !de->d_name[len])
			continue;
		db = snapshot_database(plan, de->d_name + len);
		path = dgm_xasprintf("%s/%s", dir, de->d_name);
		if (db && !strcmp(db, database)) {
			dgm_info("removing '%s', the work folder of a restore that was killed", path);
			if (dgm_fs_remove_tree(path, &e))
				dgm_warn("%s", e.msg);
		}
		dgm_error_clear(&e);
		free(path);
		free(db);
	}
	if (d)
		closedir(d);
}

/* Each problem is warned about as it comes; -1 if there was one. */
static int sweep_with(PGconn *conn, const dgm_plan *plan, const char *database)
{
	dgm_snapshot_orphan *all = NULL;
	dgm_error e = DGM_ERROR_INIT;
	size_t n = 0;
	int ret = 0;

	if (find(&all, &n, conn, plan, database, &e)) {
		dgm_warn("cannot look for what killed snapshots left behind: %s", e.msg);
		ret = -1;
	}
	for (size_t i = 0; ret == 0 && i < n; i++) {
		if (!all[i].database)
			remove_unowned(&all[i]);
		else if (remove_orphan(conn, &all[i], &e)) {
			dgm_warn("%s%s%s", e.msg, e.hint[0] ? "; " : "", e.hint);
			ret = -1;
		}
		dgm_error_clear(&e);
	}
	dgm_error_clear(&e);
	dgm_snapshot_orphans_free(all, n);
	sweep_restore_work(plan, plan->snapshot.directory, ".restore-", database);
	sweep_restore_work(plan, plan->state_dir, "restore-", database);
	return ret;
}

int dgm_snapshot_sweep(const dgm_plan *plan, const char *database)
{
	dgm_error e = DGM_ERROR_INIT;
	PGconn *conn = NULL;
	int ret;

	if (dgm_pg_connect_db(&conn, plan->database.url, MAINTENANCE_DB, "dgmigrate snapshot", &e)) {
		dgm_warn("cannot look for what killed snapshots left behind: %s", e.msg);
		return -1;
	}
	ret = sweep_with(conn, plan, database);
	dgm_pg_close(conn);
	return ret;
}

void dgm_snapshot_sweep_locked(const dgm_plan *plan)
{
	dgm_error e = DGM_ERROR_INIT;
	char *database = NULL;
	PGconn *conn = NULL;
	dgm_lock lock = { 0 };

	if (open_server(&database, &conn, plan, &e) == 0 &&
	    dgm_lock_acquire(&lock, plan->database.url, "sweep", 0, &e) == 0) {
		sweep_with(conn, plan, database);
		dgm_lock_release(&lock);
	}
	if (e.code == DGM_E_LOCK)
		dgm_info("unfinished snapshots left alone: another run holds the lock");
	else if (e.code != DGM_OK)
		dgm_warn("cannot look for what killed snapshots left behind: %s", e.msg);
	dgm_error_clear(&e);
	dgm_pg_close(conn);
	free(database);
}

void dgm_snapshot_orphans_free_one(dgm_snapshot_orphan *o)
{
	free(o->id);
	free(o->dir);
	free(o->database);
	free(o->copy);
	memset(o, 0, sizeof(*o));
}

void dgm_snapshot_orphans_free(dgm_snapshot_orphan *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		dgm_snapshot_orphans_free_one(&list[i]);
	free(list);
}
