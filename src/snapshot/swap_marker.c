/*
 * swap_marker.c - the marker of a database swap (restore_db.c).
 *
 * A restore by swap renames the target aside, then the staging database
 * into its place; killed between the two renames, no database has the
 * target's name. Not every caller keeps a journal that covers the swap
 * (`backups restore` keeps none), so the swap keeps a marker of its own,
 * <state_dir>/db-swap.json: the target, aside and staging names, written
 * to a temporary file, fsync'd and linked into place (it appears whole or
 * not at all) before the first rename, and removed once the target has
 * its name again. The writer holds flock(LOCK_EX) on it while it swaps.
 * While the marker exists every run is refused (exit 3 while a live
 * process holds it, else "run dgmigrate resume"); resume settles it
 * first: the database set aside goes back under its name, the staging
 * database is dropped. Each step of that is one rename or drop, so a
 * resume killed in the middle is run again from what the server holds.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dgm/fault.h"
#include "dgm/fs.h"
#include "dgm/log.h"
#include "dgm/pg.h"
#include "dgm/pgbackrest.h"
#include "dgm/restore.h"
#include "internal.h"

#define MAINTENANCE_DB "postgres"

typedef struct marker {
	char *path;
	int fd;                   /* flock(LOCK_EX) held while open */
	char *target, *aside, *staging;
} marker;

static char *marker_path(const dgm_plan *plan)
{
	return dgm_xasprintf("%s/db-swap.json", plan->state_dir);
}

static int write_all(int fd, const char *text, size_t len)
{
	return write(fd, text, len) == (ssize_t)len && fsync(fd) == 0 ? 0 : -1;
}

int dgm_db_swap_mark(int *fd, const dgm_plan *plan, const dgm_db_restore *r, dgm_error *err)
{
	char *path = marker_path(plan), *tmp = dgm_xasprintf("%s.tmp", path);
	json_t *o = json_pack("{s:s, s:s, s:s, s:i}", "target", r->target, "aside", r->aside,
			      "staging", r->staging, "pid", (int)getpid());
	char *text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	int ret = -1;

	*fd = -1;
	if (dgm_fs_mkdir_p(plan->state_dir, 0700, err))
		goto out;
	/* a new file: a temporary one a killed swap left may be linked to the
	 * marker itself */
	unlink(tmp);
	*fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (*fd < 0 || flock(*fd, LOCK_EX | LOCK_NB) != 0 ||
	    write_all(*fd, text, strlen(text)) != 0) {
		dgm_error_errno(err, DGM_E_IO, "cannot write the database swap's marker '%s'", tmp);
		goto out;
	}
	/* link, not rename: an existing marker is never replaced */
	if (link(tmp, path) != 0) {
		if (errno == EEXIST)
			dgm_error_set(err, DGM_E_RUN, "the marker of another database swap '%s' "
				      "exists", path);
		else
			dgm_error_errno(err, DGM_E_IO, "cannot create '%s'", path);
		dgm_error_hint(err, "run dgmigrate resume PLAN first");
		goto out;
	}
	unlink(tmp);
	ret = dgm_fs_fsync_path(plan->state_dir, err);
out:
	if (ret && *fd >= 0) {
		unlink(tmp);
		close(*fd);
		*fd = -1;
	}
	json_decref(o);
	free(text);
	free(tmp);
	free(path);
	return ret;
}

void dgm_db_swap_unmark(int *fd, const dgm_plan *plan, bool remove)
{
	char *path = marker_path(plan);
	dgm_error e = DGM_ERROR_INIT;

	if (*fd < 0)
		goto out;
	if (remove && unlink(path) != 0)
		dgm_error_errno(&e, DGM_E_IO, "cannot remove '%s'", path);
	else if (remove)
		dgm_fs_fsync_path(plan->state_dir, &e);
	if (e.code)
		dgm_warn("%s", e.msg);
	dgm_error_clear(&e);
	close(*fd);
	*fd = -1;
out:
	free(path);
}

static void marker_close(marker *m)
{
	if (m->fd >= 0)
		close(m->fd);
	free(m->path);
	free(m->target);
	free(m->aside);
	free(m->staging);
	memset(m, 0, sizeof(*m));
	m->fd = -1;
}

static char *field(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s && *s ? dgm_xstrdup(s) : NULL;
}

/* Only the names a swap of target makes: a marker edited by hand never
 * renames or drops another database. */
static bool names_ok(const marker *m)
{
	char *head = dgm_xasprintf("%.30s_dgm_", m->target);
	char *staging = dgm_xasprintf("%.30s_dgm_new_", m->target);
	bool ok = !strncmp(m->aside, head, strlen(head)) &&
		  !strncmp(m->staging, staging, strlen(staging));

	free(head);
	free(staging);
	return ok;
}

static int marker_read(marker *m, dgm_error *err)
{
	json_t *o = json_load_file(m->path, 0, NULL);

	m->target = field(o, "target");
	m->aside = field(o, "aside");
	m->staging = field(o, "staging");
	json_decref(o);
	if (!m->target || !m->aside || !m->staging || !names_ok(m)) {
		dgm_error_set(err, DGM_E_RUN, "the database swap's marker '%s' is damaged or names "
			      "databases no swap makes", m->path);
		dgm_error_hint(err, "check which database holds what (its name, the _dgm_old_ and "
			       "_dgm_new_ ones), rename it back by hand if needed, then remove '%s'",
			       m->path);
		return -1;
	}
	return 0;
}

/* Open and lock the marker (*found false: there is none); a live
 * writer holding it fails with DGM_E_LOCK. */
static int marker_open(marker *m, const dgm_plan *plan, bool *found, dgm_error *err)
{
	struct stat st;

	memset(m, 0, sizeof(*m));
	*found = false;
	m->path = marker_path(plan);
	m->fd = open(m->path, O_RDONLY | O_CLOEXEC);
	if (m->fd < 0 && errno == ENOENT)
		return 0;
	if (m->fd < 0)
		return dgm_error_errno(err, DGM_E_IO, "cannot open '%s'", m->path);
	if (flock(m->fd, LOCK_EX | LOCK_NB) != 0) {
		dgm_error_set(err, DGM_E_LOCK, "a database swap is under way (its marker '%s' is "
			      "locked by a live process): the database may have no name while it "
			      "runs", m->path);
		dgm_error_hint(err, "wait for it to finish, then run again");
		return -1;
	}
	/* removed by its writer while this waited for the lock: no swap */
	if (fstat(m->fd, &st) == 0 && st.st_nlink == 0)
		return 0;
	*found = true;
	return marker_read(m, err);
}

/* Whether db exists (false also when the server cannot tell). */
static bool db_exists(PGconn *conn, const char *db)
{
	dgm_error ignore = DGM_ERROR_INIT;
	bool exists = false;

	return conn && dgm_pg_database_exists(&exists, conn, db, &ignore) == 0 && exists;
}

int dgm_db_swap_guard(const dgm_plan *plan, dgm_error *err)
{
	dgm_error ignore = DGM_ERROR_INIT;
	PGconn *conn = NULL;
	marker m;
	bool found;
	int ret = marker_open(&m, plan, &found, err);

	if (ret || !found)
		goto out;
	dgm_pg_connect_db(&conn, plan->database.url, MAINTENANCE_DB, "dgmigrate guard", &ignore);
	if (!db_exists(conn, m.target) && db_exists(conn, m.aside))
		dgm_error_set(err, DGM_E_RUN, "a database swap of '%s' was interrupted: the database "
			      "is renamed to '%s' (marker '%s')", m.target, m.aside, m.path);
	else
		dgm_error_set(err, DGM_E_RUN, "a database swap of '%s' was interrupted: the database "
			      "may be renamed to '%s', the restored one is '%s' (marker '%s')",
			      m.target, m.aside, m.staging, m.path);
	dgm_error_hint(err, "run dgmigrate resume PLAN first: it puts the database back under "
		       "its name");
	ret = -1;
out:
	dgm_pg_close(conn);
	marker_close(&m);
	return ret;
}

int dgm_restore_guard(const dgm_plan *plan, dgm_error *err)
{
	return dgm_pgbr_cluster_guard(plan, err) || dgm_db_swap_guard(plan, err) ? -1 : 0;
}

/* Killed between the renames (or between an undo's): the database set
 * aside goes back under its name; nothing was restored. */
static int put_back(PGconn *conn, const marker *m, dgm_error *err)
{
	dgm_info("putting database '%s' back under its name (a swap killed between its two "
		 "renames left it as '%s'): nothing was restored, the restore can be run again",
		 m->target, m->aside);
	if (dgm_pg_rename_database(conn, m->aside, m->target, err))
		return -1;
	dgm_fault_point("swap.settle.renamed");
	return dgm_pg_drop_database(conn, m->staging, true, err);
}

static int settle(PGconn *conn, const marker *m, dgm_error *err)
{
	bool target, aside, staging;

	if (dgm_pg_database_exists(&target, conn, m->target, err) ||
	    dgm_pg_database_exists(&aside, conn, m->aside, err) ||
	    dgm_pg_database_exists(&staging, conn, m->staging, err))
		return -1;
	if (!target && aside)
		return put_back(conn, m, err);
	if (!target) {
		dgm_error_set(err, DGM_E_RUN, "neither database '%s' nor '%s' (where the swap "
			      "sets it aside) exists", m->target, m->aside);
		dgm_error_hint(err, "find the database, rename it to '%s', then remove '%s'",
			       m->target, m->path);
		return -1;
	}
	/* the target has its name: no rename was done, or both */
	if (staging) {
		dgm_info("database '%s' has its name; dropping '%s', staged by the interrupted "
			 "swap", m->target, m->staging);
		return dgm_pg_drop_database(conn, m->staging, true, err);
	}
	dgm_info("database '%s' has its name (the interrupted swap had finished)%s%s%s",
		 m->target, aside ? ": the database it replaced is kept as '" : "",
		 aside ? m->aside : "", aside ? "'" : "");
	return 0;
}

/* What a swap killed right after linking its marker left beside it. */
static void remove_tmp(const char *path)
{
	char *tmp = dgm_xasprintf("%s.tmp", path);

	unlink(tmp);
	free(tmp);
}

int dgm_db_swap_settle(const dgm_plan *plan, dgm_error *err)
{
	PGconn *conn = NULL;
	marker m;
	bool found;
	int ret = marker_open(&m, plan, &found, err);

	if (ret || !found)
		goto out;
	dgm_info("settling the database swap of '%s' that was interrupted (marker '%s')",
		 m.target, m.path);
	ret = dgm_pg_connect_db(&conn, plan->database.url, MAINTENANCE_DB, "dgmigrate resume",
				err) || settle(conn, &m, err) ? -1 : 0;
	if (ret == 0)
		remove_tmp(m.path);
	if (ret == 0 && unlink(m.path) != 0)
		ret = dgm_error_errno(err, DGM_E_IO, "cannot remove '%s'", m.path);
	if (ret == 0)
		ret = dgm_fs_fsync_path(plan->state_dir, err);
out:
	if (ret)
		dgm_error_prefix(err, "resume of an interrupted database swap");
	dgm_pg_close(conn);
	marker_close(&m);
	return ret;
}
