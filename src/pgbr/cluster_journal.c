/*
 * cluster_journal.c - the journal of a restore: cluster (cluster.c).
 *
 * The server is down for part of such a restore, so the run's advisory
 * lock (held on a connection to it) is gone and neither the run's
 * journal nor the lock can guard it: `backups restore` keeps no run
 * journal at all, and `resume` must act before it can connect. The
 * restore therefore keeps a journal of its own,
 * <state_dir>/pgbackrest-cluster.jsonl: a begin record (what is
 * restored, the history rows to carry over) and one record a state
 * reached (stopped, restored, started, promoted), each appended and
 * fsync'd before the next step. The run holds flock(LOCK_EX) on it for
 * the whole restore; while the file exists every other run is refused
 * (exit 3 while a live process holds it, else "run dgmigrate resume").
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "dgm/fs.h"
#include "dgm/log.h"
#include "pgbr_int.h"

char *dgm_pgbr_cj_path(const dgm_plan *plan)
{
	return dgm_xasprintf("%s/pgbackrest-cluster.jsonl", plan->state_dir);
}

int dgm_pgbr_cj_create(dgm_pgbr_cj *j, const dgm_plan *plan, json_t *begin, dgm_error *err)
{
	memset(j, 0, sizeof(*j));
	j->fd = -1;
	j->path = dgm_pgbr_cj_path(plan);
	if (dgm_fs_mkdir_p(plan->state_dir, 0700, err))
		goto fail;
	j->fd = open(j->path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0600);
	if (j->fd < 0) {
		dgm_error_errno(err, DGM_E_IO, "cannot create the cluster restore's journal '%s'",
				j->path);
		goto fail;
	}
	if (flock(j->fd, LOCK_EX | LOCK_NB) != 0) {
		dgm_error_errno(err, DGM_E_LOCK, "cannot lock '%s'", j->path);
		goto fail;
	}
	j->begin = json_incref(begin);
	if (dgm_pgbr_cj_append(j, begin, err) || dgm_fs_fsync_path(plan->state_dir, err))
		goto fail;
	return 0;
fail:
	dgm_pgbr_cj_close(j);
	return -1;
}

int dgm_pgbr_cj_append(dgm_pgbr_cj *j, json_t *rec, dgm_error *err)
{
	char *text = json_dumps(rec, JSON_COMPACT | JSON_PRESERVE_ORDER);
	size_t len = text ? strlen(text) : 0;
	int ret = 0;

	if (!text || write(j->fd, text, len) != (ssize_t)len || write(j->fd, "\n", 1) != 1 ||
	    fsync(j->fd) != 0)
		ret = dgm_error_errno(err, DGM_E_IO, "cannot write the cluster restore's journal "
				      "'%s'", j->path);
	free(text);
	return ret;
}

int dgm_pgbr_cj_reached(dgm_pgbr_cj *j, const char *state, dgm_error *err)
{
	json_t *rec = json_pack("{s:s}", "state", state);
	char point[64];
	int ret = dgm_pgbr_cj_append(j, rec, err);

	json_decref(rec);
	snprintf(j->state, sizeof(j->state), "%s", state);
	snprintf(point, sizeof(point), "cluster-%s", state);
	if (ret == 0) {
		dgm_fault_kill(point);
		dgm_fault_point("cluster.%s", state);
	}
	return ret;
}

/* Every complete line; a torn last one (a kill in the middle of a
 * write) is ignored. */
static int parse(dgm_pgbr_cj *j, const char *text, dgm_error *err)
{
	const char *p = text;

	while (*p) {
		const char *nl = strchr(p, '\n');
		json_t *rec;

		if (!nl)
			break;
		rec = json_loadb(p, (size_t)(nl - p), 0, NULL);
		if (!json_is_object(rec)) {
			json_decref(rec);
			return dgm_error_set(err, DGM_E_RUN, "%s: a damaged record", j->path);
		}
		if (!j->begin)
			j->begin = rec;
		else {
			snprintf(j->state, sizeof(j->state), "%s",
				 json_string_value(json_object_get(rec, "state")) ?: "");
			json_decref(rec);
		}
		p = nl + 1;
	}
	if (j->begin && !json_is_object(json_object_get(j->begin, "point")))
		return dgm_error_set(err, DGM_E_RUN, "%s: the begin record names no restore point",
				     j->path);
	if (j->begin && !*j->state)
		snprintf(j->state, sizeof(j->state), "begin");
	return 0;
}

int dgm_pgbr_cj_open(dgm_pgbr_cj *j, const dgm_plan *plan, bool *found, dgm_error *err)
{
	dgm_buf text = DGM_BUF_INIT;
	char buf[8192];
	ssize_t n;
	int ret = -1;

	memset(j, 0, sizeof(*j));
	*found = false;
	j->path = dgm_pgbr_cj_path(plan);
	j->fd = open(j->path, O_RDWR | O_APPEND | O_CLOEXEC);
	if (j->fd < 0 && errno == ENOENT)
		return 0;
	if (j->fd < 0)
		return dgm_error_errno(err, DGM_E_IO, "cannot open '%s'", j->path);
	*found = true;
	if (flock(j->fd, LOCK_EX | LOCK_NB) != 0) {
		dgm_error_set(err, DGM_E_LOCK, "a restore: cluster is under way (its journal '%s' "
			      "is locked by a live process): the server may be down while it runs",
			      j->path);
		dgm_error_hint(err, "wait for it to finish, then run again");
		goto out;
	}
	while ((n = read(j->fd, buf, sizeof(buf))) > 0)
		dgm_buf_put(&text, buf, (size_t)n);
	if (n < 0) {
		dgm_error_errno(err, DGM_E_IO, "cannot read '%s'", j->path);
		goto out;
	}
	ret = parse(j, dgm_buf_cstr(&text), err);
out:
	dgm_buf_free(&text);
	return ret;
}

int dgm_pgbr_cj_remove(dgm_pgbr_cj *j, const dgm_plan *plan, dgm_error *err)
{
	if (unlink(j->path) != 0)
		return dgm_error_errno(err, DGM_E_IO, "cannot remove '%s'", j->path);
	return dgm_fs_fsync_path(plan->state_dir, err);
}

void dgm_pgbr_cj_close(dgm_pgbr_cj *j)
{
	if (j->fd >= 0)
		close(j->fd);
	j->fd = -1;
	json_decref(j->begin);
	j->begin = NULL;
	free(j->path);
	j->path = NULL;
}

int dgm_pgbr_cluster_guard(const dgm_plan *plan, dgm_error *err)
{
	dgm_pgbr_cj j;
	bool found;
	int ret = dgm_pgbr_cj_open(&j, plan, &found, err);

	if (ret == 0 && found) {
		dgm_error_set(err, DGM_E_RUN, "a restore: cluster of snapshot '%s' was interrupted "
			      "(state '%s', journal '%s'): the server and the database may not be "
			      "where they should", j.begin ? json_string_value(json_object_get(
			      j.begin, "snapshot")) ?: "?" : "?", j.state, j.path);
		dgm_error_hint(err, "run dgmigrate resume PLAN first: it finishes the restore");
		ret = -1;
	}
	dgm_pgbr_cj_close(&j);
	return ret;
}
