/* snapshot.c - take a snapshot: pg_dump and the model-store archive at
 * the same time, both verified, then catalogued and renamed into place. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "dgm/clock.h"
#include "dgm/archive.h"
#include "dgm/buf.h"
#include "dgm/dump.h"
#include "dgm/fs.h"
#include "dgm/log.h"
#include "dgm/pg.h"
#include "dgm/run.h"
#include "internal.h"

static char *new_id(void)
{
	struct timespec ts;
	struct tm tm;
	char stamp[32];

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
	return dgm_xasprintf("%s-%04x", stamp, (unsigned)((ts.tv_nsec / 1000) ^ getpid()) & 0xffff);
}

/* The archive half, run on its own thread while pg_dump runs. */
typedef struct archive_job {
	const dgm_plan *plan;
	char *dest;
	dgm_archive_manifest manifest;
	volatile sig_atomic_t *failed;  /* set on failure: stops pg_dump */
	dgm_error err;
	long ms;
	int rc;
	dgm_progress_state progress;
} archive_job;

static void archive_progress(long long done, long long total, void *payload)
{
	dgm_progress(payload, done, total);
}

static void *archive_thread(void *arg)
{
	archive_job *j = arg;
	const dgm_plan *p = j->plan;
	dgm_archive_opts o = {
		.dest = j->dest, .store = p->model_store.path,
		.extras = (const char *const *)p->model_store.extra_paths.items,
		.n_extras = p->model_store.extra_paths.count,
		.level = p->model_store.level, .threads = p->model_store.threads,
		.progress = archive_progress, .payload = &j->progress,
	};
	long start = dgm_now_ms();

	j->rc = dgm_archive_create(&j->manifest, &o, &j->err);
	if (j->rc == 0)
		j->rc = dgm_archive_verify(j->dest, NULL, &j->err);
	if (j->rc)
		*j->failed = 1;
	j->ms = dgm_now_ms() - start;
	return NULL;
}

/* Revisions and WAL position at the time of the snapshot. */
static int record_db_state(dgm_snapshot *s, const dgm_plan *plan, dgm_error *err)
{
	PGconn *conn = NULL;
	PGresult *res = NULL;
	char **revs = NULL;
	size_t n = 0;
	int ret = -1;

	if (dgm_pg_connect(&conn, plan->database.url, "dgmigrate snapshot", err))
		return -1;
	if (dgm_pg_read_revisions(&revs, &n, conn, plan->alembic.version_table,
				  plan->alembic.version_schema, err))
		goto out;
	s->revisions.items = revs;
	s->revisions.count = n;
	if (dgm_pg_query(&res, conn, "SELECT pg_current_wal_lsn()::text", 0, NULL, err))
		goto out;
	s->wal_lsn = dgm_xstrdup(PQgetvalue(res, 0, 0));
	PQclear(res);
	res = NULL;
	if (dgm_pg_query(&res, conn, DGM_SNAPSHOT_WRITES_SQL, 0, NULL, err))
		goto out;
	s->writes = dgm_xstrdup(PQgetvalue(res, 0, 0));
	ret = 0;
out:
	PQclear(res);
	dgm_pg_close(conn);
	return ret;
}

static int dump_db(dgm_snapshot *s, const dgm_plan *plan, const char *partial,
		   volatile sig_atomic_t *cancel, dgm_error *err)
{
	char *dest = dgm_xasprintf("%s/%s", partial,
				   plan->snapshot.format == DGM_DUMP_DIRECTORY ? "db" : "db.dump");
	dgm_dump_opts o = {
		.url = plan->database.url, .dest = dest, .format = plan->snapshot.format,
		.jobs = plan->snapshot.jobs, .compression = plan->snapshot.compression,
		.timeout_ms = plan->timeouts.snapshot_ms, .cancel = cancel,
	};
	dgm_dump_info info;
	int ret = dgm_dump_create(&info, &o, err);

	if (ret == 0) {
		s->server_version = dgm_xstrdup(info.server_version);
		s->pg_dump_version = dgm_xstrdup(info.pg_dump_version);
		s->database = dgm_xstrdup(info.database);
		s->toc_entries = info.toc_entries;
		s->db_bytes = info.bytes;
		s->dump_ms = info.ms;
	}
	free(dest);
	return ret;
}

static void fill_store(dgm_snapshot *s, const archive_job *j)
{
	s->has_store = true;
	s->store = dgm_xstrdup(j->plan->model_store.path);
	snprintf(s->archive_sha256, sizeof(s->archive_sha256), "%s", j->manifest.archive_sha256);
	s->archive_bytes = j->manifest.archive_bytes;
	s->content_bytes = j->manifest.content_bytes;
	s->entries = (long long)j->manifest.n_entries;
	s->archive_ms = j->ms;
}

/* Both halves at once; if one fails the other is stopped (pg_dump) or
 * waited for (the archive), and the first cause is reported. */
static int take_both(dgm_snapshot *s, const dgm_plan *plan, const char *partial,
		     dgm_error *err)
{
	static volatile sig_atomic_t failed;
	archive_job job = { .plan = plan, .failed = &failed, .err = DGM_ERROR_INIT,
			    .progress = DGM_PROGRESS_INIT("model store", "MiB") };
	bool threaded = plan->model_store.path != NULL;
	pthread_t tid;
	int rc;

	failed = 0;
	job.dest = dgm_xasprintf("%s/models.tar.zst", partial);
	if (threaded && pthread_create(&tid, NULL, archive_thread, &job) != 0) {
		free(job.dest);
		return dgm_error_set(err, DGM_E_RUN, "cannot start the archive thread");
	}
	rc = dump_db(s, plan, partial, &failed, err);
	if (threaded) {
		pthread_join(tid, NULL);
		if (job.rc == 0)
			fill_store(s, &job);
		else if (rc == 0 || (dgm_run_interrupted == 0 && failed)) {
			/* the archive failed first: its error is the cause */
			*err = job.err;
			rc = -1;
		}
		dgm_archive_manifest_free(&job.manifest);
	}
	free(job.dest);
	return rc;
}

/* Checksums, manifest (with the timings so far), flush, rename. */
static int finish(dgm_snapshot *s, const char *partial, long start, long verify_start,
		  dgm_error *err)
{
	char *final = NULL;
	int ret = -1;

	if (dgm_snapshot_write_checksums(s->db_sha256, partial, s->format, err))
		return -1;
	s->verify_ms = dgm_now_ms() - verify_start;
	s->total_ms = dgm_now_ms() - start;
	if (dgm_snapshot_write_manifest(s, partial, err) || dgm_fs_fsync_tree(partial, err))
		return -1;
	final = dgm_xasprintf("%.*s", (int)(strlen(partial) - strlen(".partial")), partial);
	if (rename(partial, final) != 0) {
		dgm_error_errno(err, DGM_E_IO, "cannot rename '%s' to '%s'", partial, final);
		goto out;
	}
	free(s->dir);
	s->dir = final;
	final = NULL;
	ret = dgm_fs_fsync_path(s->dir, err);
out:
	free(final);
	return ret;
}

static int check_space(const dgm_plan *plan, dgm_error *err)
{
	long long free_bytes = dgm_fs_free_bytes(plan->snapshot.directory);

	if (free_bytes >= 0 && free_bytes < plan->snapshot.min_free_bytes) {
		dgm_error_set(err, DGM_E_RUN, "only %lld MiB free for snapshots in '%s' "
			      "(snapshot.min_free is %lld MiB)", free_bytes >> 20,
			      plan->snapshot.directory, plan->snapshot.min_free_bytes >> 20);
		dgm_error_hint(err, "free space, prune old snapshots ('dgmigrate backups prune "
			       "--keep N PLAN') or lower snapshot.min_free");
		return -1;
	}
	return 0;
}

int dgm_snapshot_create(dgm_snapshot *s, const dgm_plan *plan,
			const dgm_snapshot_opts *opts, dgm_error *err)
{
	long start = dgm_now_ms();
	mode_t old_umask = umask(077);
	char *partial = NULL;
	int ret = -1;

	memset(s, 0, sizeof(*s));
	s->id = new_id();
	s->kind = dgm_xstrdup(opts && opts->kind ? opts->kind : "manual");
	s->release = dgm_xstrdup(plan->release.name);
	s->tag = dgm_xstrdup(plan->release.tag);
	s->commit = dgm_xstrdup(opts && opts->commit ? opts->commit : "");
	s->format = plan->snapshot.format;
	s->created = (long long)time(NULL);
	if (dgm_fs_mkdir_p(plan->snapshot.directory, 0700, err) || check_space(plan, err))
		goto out;
	partial = dgm_xasprintf("%s/%s.partial", plan->snapshot.directory, s->id);
	s->dir = dgm_xstrdup(partial);
	if (dgm_fs_mkdir_p(partial, 0700, err) || record_db_state(s, plan, err))
		goto out;
	dgm_info("snapshot '%s': pg_dump (%s, %d jobs) and model store archive, in parallel",
		 s->id, s->format == DGM_DUMP_DIRECTORY ? "directory" : "custom",
		 plan->snapshot.jobs);
	if (take_both(s, plan, partial, err))
		goto out;
	if (finish(s, partial, start, start + s->dump_ms, err))
		goto out;
	ret = 0;
out:
	if (ret && partial) {
		dgm_error cleanup = DGM_ERROR_INIT;

		dgm_fs_remove_tree(partial, &cleanup);
	}
	umask(old_umask);
	free(partial);
	if (ret) {
		dgm_error_prefix(err, "snapshot failed");
		dgm_snapshot_free(s);
	}
	return ret;
}

int dgm_snapshot_verify(const dgm_snapshot *snap, dgm_error *err)
{
	char *archive = dgm_xasprintf("%s/models.tar.zst", snap->dir);
	char *dump = dgm_xasprintf("%s/%s", snap->dir,
				   snap->format == DGM_DUMP_DIRECTORY ? "db" : "db.dump");
	int entries = 0, ret = -1;

	if (dgm_snapshot_check_checksums(snap, err))
		goto out;
	if (dgm_dump_list(&entries, dump, snap->format, err))
		goto out;
	if (entries != snap->toc_entries) {
		dgm_error_set(err, DGM_E_RUN, "snapshot '%s': the dump lists %d entries, its "
			      "manifest %d", snap->id, entries, snap->toc_entries);
		goto out;
	}
	if (snap->has_store && dgm_archive_verify(archive, NULL, err))
		goto out;
	ret = 0;
out:
	if (ret)
		dgm_error_prefix(err, "verification failed");
	free(archive);
	free(dump);
	return ret;
}
