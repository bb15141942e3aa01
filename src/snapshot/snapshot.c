/* snapshot.c - take a snapshot: pg_dump and the model-store archive at
 * the same time, both verified, then catalogued and renamed into place. */
#include <errno.h>
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
#include "dgm/fault.h"
#include "dgm/fingerprint.h"
#include "dgm/log.h"
#include "dgm/pg.h"
#include "dgm/pgbackrest.h"
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
	char *base_id;            /* an earlier snapshot to chain to, or NULL */
	const dgm_snapshot *like; /* link its archive if the store still matches */
	const char *partial;      /* the snapshot's folder, being written */
	const char *id;           /* the snapshot's id */
	bool linked;              /* like's archive was linked */
	dgm_archive_manifest manifest;
	volatile sig_atomic_t *failed;  /* set on failure: stops pg_dump */
	dgm_error err;
	long ms;
	int rc;
	dgm_progress_state progress;
} archive_job;

static bool link_store(const dgm_plan *plan, const dgm_snapshot *like, const char *partial,
		       const char *id);
static char *pick_base(const dgm_plan *plan);

/* The store's half, beside the database's: like's archive linked where
 * the store still matches it (comparing reads the whole store, so it
 * runs here, not before the database's copy or dump starts); else an
 * archive of what changed since the newest usable snapshot. */
static void *archive_thread(void *arg)
{
	archive_job *j = arg;
	const dgm_plan *p = j->plan;
	dgm_archive_opts o = {
		.dest = j->dest, .store = p->model_store.path,
		.extras = (const char *const *)p->model_store.extra_paths.items,
		.n_extras = p->model_store.extra_paths.count,
		.level = p->model_store.level, .threads = p->model_store.threads,
		.progress = dgm_progress_cb, .payload = &j->progress,
	};
	long start = dgm_now_ms();

	if (j->like && link_store(p, j->like, j->partial, j->id)) {
		j->linked = true;
		j->rc = 0;
		j->ms = dgm_now_ms() - start;
		return NULL;
	}
	o.base_id = j->base_id = pick_base(p);
	j->rc = dgm_archive_create(&j->manifest, &o, &j->err);
	if (j->rc && j->base_id && !dgm_run_interrupted) {
		dgm_info("cannot archive only what changed since snapshot '%s' (%s): archiving the "
			 "whole model store", j->base_id, j->err.msg);
		dgm_error_clear(&j->err);
		o.base_id = NULL;
		j->rc = dgm_archive_create(&j->manifest, &o, &j->err);
	}
	/* this archive read back; the bases' archives were when they were made */
	if (j->rc == 0)
		j->rc = dgm_archive_verify_new(j->dest, &j->err);
	if (j->rc)
		*j->failed = 1;
	j->ms = dgm_now_ms() - start;
	return NULL;
}

/* The schema fingerprint a copy-first snapshot's copy must match. */
static int record_catalog(dgm_snapshot *s, PGconn *conn, const dgm_plan *plan, dgm_error *err)
{
	dgm_fingerprint fp = DGM_FINGERPRINT_INIT;
	int ret = dgm_fingerprint_take(&fp, conn, plan->alembic.version_table,
				       plan->alembic.version_schema, err);

	if (ret == 0)
		memcpy(s->catalog_sha256, fp.sha256, sizeof(s->catalog_sha256));
	dgm_fingerprint_free(&fp);
	return ret;
}

/* Revisions and WAL position at the time of the snapshot (and, for a
 * copy that gates a release alone, the catalog fingerprint). */
static int record_db_state(dgm_snapshot *s, const dgm_plan *plan, bool catalog, dgm_error *err)
{
	PGconn *conn = NULL;
	PGresult *res = NULL;
	char **revs = NULL;
	size_t n = 0;
	int ret = -1;

	if (dgm_pg_connect(&conn, plan->database.url, "dgmigrate snapshot", err))
		return -1;
	s->database = dgm_xstrdup(PQdb(conn));
	s->server_version = dgm_xmalloc(32);
	dgm_pg_server_version(conn, s->server_version, 32);
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
	if (catalog && record_catalog(s, conn, plan, err))
		goto out;
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
		.url = plan->database.url, .dbname = s->db_copy, .dest = dest,
		.format = plan->snapshot.format,
		.jobs = plan->snapshot.jobs, .compression = plan->snapshot.compression,
		.timeout_ms = plan->timeouts.snapshot_ms, .cancel = cancel,
	};
	dgm_dump_info info;
	int ret = dgm_dump_create(&info, &o, err);

	if (ret == 0) {
		/* database and server_version: record_db_state's (the dump may
		 * have read the copy) */
		s->pg_dump_version = dgm_xstrdup(info.pg_dump_version);
		s->toc_entries = info.toc_entries;
		s->db_bytes = info.bytes;
		s->dump_ms += info.ms;
		s->has_dump = true;
	}
	free(dest);
	return ret;
}

/* What a chained archive left to its bases. */
static void say_chain(const dgm_snapshot *s, const dgm_archive_manifest *m)
{
	long long files = 0, held = 0, bytes = 0;

	for (size_t i = 0; i < m->n_entries; i++)
		if (m->entries[i].type == DGM_ARCHIVE_FILE) {
			files++;
			held += m->entries[i].in != NULL;
			bytes += m->entries[i].in ? 0 : m->entries[i].size;
		}
	if (m->n_bases)
		dgm_info("snapshot '%s': %lld of %lld model store files unchanged, read from %zu "
			 "earlier snapshot%s' archives; %lld new or changed (%lld MiB) archived", s->id,
			 held, files, m->n_bases, m->n_bases == 1 ? "" : "s", files - held, bytes >> 20);
}

/* like's archive is this snapshot's too (link_store linked it). */
static void fill_linked(dgm_snapshot *s, const archive_job *j)
{
	const dgm_snapshot *like = j->like;

	s->has_store = true;
	s->store = dgm_xstrdup(like->store);
	s->store_from = dgm_xstrdup(like->id);
	memcpy(s->archive_sha256, like->archive_sha256, sizeof(s->archive_sha256));
	s->archive_bytes = like->archive_bytes;
	s->content_bytes = like->content_bytes;
	s->entries = like->entries;
	s->archive_ms = j->ms;
}

static void fill_store(dgm_snapshot *s, const archive_job *j)
{
	say_chain(s, &j->manifest);
	s->has_store = true;
	s->store = dgm_xstrdup(j->plan->model_store.path);
	snprintf(s->archive_sha256, sizeof(s->archive_sha256), "%s", j->manifest.archive_sha256);
	s->archive_bytes = j->manifest.archive_bytes;
	s->content_bytes = j->manifest.content_bytes;
	s->entries = (long long)j->manifest.n_entries;
	s->archive_ms = j->ms;
}

/* The database: a server-side copy (the dump, if one is asked for too,
 * is taken from the copy: both hold the same; copy-first, later), else
 * a dump. */
static int db_part(dgm_snapshot *s, const dgm_plan *plan, const dgm_snapshot_opts *opts,
		   const char *partial, volatile sig_atomic_t *failed, dgm_error *err)
{
	if (plan->snapshot.engine == DGM_ENGINE_PGBACKREST)
		return dgm_pgbr_snapshot(&s->pitr, plan, s->id, err);
	dgm_snapshot_db mode = opts ? opts->db : DGM_SNAPSHOT_DUMP;

	if (mode == DGM_SNAPSHOT_ASIDE) {
		/* set aside later by the restore that replaces it (aside.c) */
		s->db_copy = dgm_snapshot_copy_name(s->database, "safe", s->id);
		s->aside_pending = true;
		return 0;
	}
	bool copied = mode != DGM_SNAPSHOT_DUMP &&
		      dgm_snapshot_copy_db(s, plan, mode == DGM_SNAPSHOT_COPY ? "safe" : "snap",
					   mode == DGM_SNAPSHOT_COPY_DUMP);

	if (copied && mode == DGM_SNAPSHOT_COPY)
		return 0;
	return dump_db(s, plan, partial, failed, err);
}

/* Where the store still matches an earlier snapshot's archive file by
 * file, that archive (written once, verified, never changed) is
 * hard-linked instead of written again. false: archive it. */
static bool link_store(const dgm_plan *plan, const dgm_snapshot *like, const char *partial,
		       const char *id)
{
	char *from = dgm_xasprintf("%s/models.tar.zst", like->dir);
	char *to = dgm_xasprintf("%s/models.tar.zst", partial);
	char *mfrom = dgm_archive_manifest_path(from), *mto = dgm_archive_manifest_path(to);
	dgm_error e = DGM_ERROR_INIT;
	long start = dgm_now_ms();
	bool same = false, ok = false, vouched;

	if (plan->model_store.extra_paths.count || !like->has_store ||
	    strcmp(like->store, plan->model_store.path))
		goto out;
	/* the new snapshot's HMAC vouches for what is linked: only what an
	 * HMAC already vouched for */
	if (dgm_snapshot_authenticate(like, plan, &e)) {
		dgm_info("not linking the archive of snapshot '%s' (%s): archiving the model store",
			 like->id, e.msg);
		goto out;
	}
	/* the order test holds the comparison here, beside the database's half */
	dgm_fault_point("snapshot.link");
	vouched = dgm_snapshot_archive_vouched(like, plan);
	if (vouched)
		dgm_info("the archive of snapshot '%s' was read back whole and has not changed since "
			 "(models.verified.json): not read again", like->id);
	if (dgm_archive_store_matches(&same, from, plan->model_store.path, !vouched, &e)) {
		dgm_warn("not linking the archive of snapshot '%s' (%s): archiving the model store",
			 like->id, e.msg);
		goto out;
	}
	if (!same)
		goto out;
	if (link(mfrom, mto) != 0 || link(from, to) != 0) {
		dgm_info("cannot link the archive of snapshot '%s' (%s): archiving the model store",
			 like->id, strerror(errno));
		unlink(mto);
		goto out;
	}
	/* the new link moved the file's ctime: both folders record it now */
	dgm_snapshot_vouch(plan, like->dir, like->id, like->archive_sha256);
	dgm_snapshot_vouch(plan, partial, id, like->archive_sha256);
	dgm_info("the model store matches snapshot '%s' file by file: its archive is linked, "
		 "not written again (compared in %ld ms)", like->id, dgm_now_ms() - start);
	ok = true;
out:
	dgm_error_clear(&e);
	free(from);
	free(to);
	free(mfrom);
	free(mto);
	return ok;
}

/* A base's archive holds the files a chained snapshot does not: it must
 * be intact now, not only when it was made. Read back whole and
 * unchanged since (vouch.c), it is not read again; else it is read back
 * whole here (and vouched for). */
static bool intact_base(const dgm_snapshot *s, const dgm_plan *plan, dgm_error *err)
{
	char *archive;
	int rc;

	if (dgm_snapshot_archive_vouched(s, plan))
		return true;
	archive = dgm_xasprintf("%s/models.tar.zst", s->dir);
	rc = dgm_archive_verify(archive, NULL, err);
	if (rc == 0)
		dgm_snapshot_vouch(plan, s->dir, s->id, s->archive_sha256);
	free(archive);
	return rc == 0;
}

static bool usable_base(const dgm_snapshot *s, const dgm_plan *plan)
{
	dgm_error e = DGM_ERROR_INIT;
	bool ok;

	if (!s->has_store || !s->store || strcmp(s->store, plan->model_store.path))
		return false;
	ok = dgm_snapshot_authenticate(s, plan, &e) == 0;
	if (!ok)
		dgm_debug("not chaining to snapshot '%s': %s", s->id, e.msg);
	else if (!(ok = intact_base(s, plan, &e)))
		dgm_warn("not chaining the model store archive to snapshot '%s', whose archive is "
			 "not intact: %s", s->id, e.msg);
	dgm_error_clear(&e);
	return ok;
}

/* The newest snapshot of this store (alone) whose HMAC holds: its
 * archive's manifest says which files need not be read again. One whose
 * archive is linked from another (store_from: the same file) gives way
 * to that one, so that pruning the link (a rollback's safety snapshot)
 * frees it. */
static char *pick_base(const dgm_plan *plan)
{
	dgm_snapshot *all = NULL;
	dgm_error e = DGM_ERROR_INIT;
	size_t n = 0;
	char *id = NULL;

	if (plan->model_store.extra_paths.count ||
	    dgm_snapshot_list(&all, &n, plan->snapshot.directory, &e))
		goto out;
	/* the origin first: the same archive file, checked (and maybe read
	 * back) once, not once for each name it has */
	for (size_t i = 0; i < n && !id; i++) {
		for (size_t k = 0; all[i].store_from && k < n && !id; k++)
			if (!strcmp(all[k].id, all[i].store_from) && usable_base(&all[k], plan))
				id = dgm_xstrdup(all[k].id);
		if (!id && usable_base(&all[i], plan))
			id = dgm_xstrdup(all[i].id);
	}
out:
	dgm_error_clear(&e);
	dgm_snapshot_list_free(all, n);
	return id;
}

/* Copy-first: the checked copy alone completes the snapshot; its dump
 * and the store archive follow beside the release (dump_copy.c). Where
 * no copy can be made, *opts becomes a plain dump's (no second try),
 * held in dump_only. */
static bool copy_first(dgm_snapshot *s, const dgm_plan *plan, const dgm_snapshot_opts **opts,
		       dgm_snapshot_opts *dump_only)
{
	const dgm_snapshot_opts *in = *opts;

	if (!in || !in->copy_first || in->db != DGM_SNAPSHOT_COPY_DUMP ||
	    plan->snapshot.engine == DGM_ENGINE_PGBACKREST)
		return false;
	if (dgm_snapshot_copy_db(s, plan, "snap", true)) {
		s->dump_pending = true;
		s->store_pending = plan->model_store.path != NULL;
		return true;
	}
	*dump_only = *in;
	dump_only->db = DGM_SNAPSHOT_DUMP;
	*opts = dump_only;
	return false;
}

/* Both halves at once; if one fails the other is stopped (pg_dump) or
 * waited for (the archive), and the first cause is reported. */
static int take_both(dgm_snapshot *s, const dgm_plan *plan, const dgm_snapshot_opts *opts,
		     const char *partial, dgm_error *err)
{
	static volatile sig_atomic_t failed;
	archive_job job = { .plan = plan, .failed = &failed, .err = DGM_ERROR_INIT,
			    .progress = DGM_PROGRESS_INIT("model store", "MiB") };
	bool threaded = plan->model_store.path != NULL;
	dgm_snapshot_opts dump_only;
	pthread_t tid;
	int rc = 0;

	failed = 0;
	if (copy_first(s, plan, &opts, &dump_only))
		return 0;
	job.dest = dgm_xasprintf("%s/models.tar.zst", partial);
	job.like = opts ? opts->store_like : NULL;
	job.partial = partial;
	job.id = s->id;
	if (threaded && pthread_create(&tid, NULL, archive_thread, &job) != 0) {
		free(job.dest);
		free(job.base_id);
		return dgm_error_set(err, DGM_E_RUN, "cannot start the archive thread");
	}
	rc = db_part(s, plan, opts, partial, &failed, err);
	if (threaded) {
		pthread_join(tid, NULL);
		if (job.rc == 0 && job.linked)
			fill_linked(s, &job);
		else if (job.rc == 0)
			fill_store(s, &job);
		else if (rc == 0 || (dgm_run_interrupted == 0 && failed)) {
			/* the archive failed first: its error is the cause */
			*err = job.err;
			rc = -1;
		}
		dgm_archive_manifest_free(&job.manifest);
	}
	free(job.dest);
	free(job.base_id);
	return rc;
}

static const char *const store_files[] = {
	"models.tar.zst", "models.tar.zst.tmp", "models.tar.zst.manifest.json",
	"models.tar.zst.manifest.json.tmp", "models.verified.json", NULL
};

void dgm_snapshot_discard_store(const dgm_snapshot *s)
{
	if (s->has_store)
		return;
	for (size_t i = 0; store_files[i]; i++) {
		char *path = dgm_xasprintf("%s/%s", s->dir, store_files[i]);

		if (unlink(path) != 0 && errno != ENOENT)
			dgm_warn("cannot remove '%s': %s", path, strerror(errno));
		free(path);
	}
}

int dgm_snapshot_archive_store(dgm_snapshot_store *out, const dgm_snapshot *s,
			       const dgm_plan *plan, dgm_error *err)
{
	volatile sig_atomic_t failed = 0;
	archive_job job = { .plan = plan, .failed = &failed, .err = DGM_ERROR_INIT,
			    .progress = DGM_PROGRESS_INIT("model store", "MiB") };

	memset(out, 0, sizeof(*out));
	if (s->has_store || !plan->model_store.path)
		return dgm_error_set(err, DGM_E_RUN, "snapshot '%s' has %s", s->id, s->has_store ?
				     "its store archive already" : "no model store to archive");
	/* what a killed run's try left (resume archives again) */
	dgm_snapshot_discard_store(s);
	/* the order tests hold the archive here */
	dgm_fault_point("snapshot.archive");
	job.dest = dgm_xasprintf("%s/models.tar.zst", s->dir);
	archive_thread(&job);
	if (job.rc == 0 && dgm_fs_fsync_path(s->dir, &job.err))
		job.rc = -1;
	if (job.rc == 0) {
		snprintf(out->archive_sha256, sizeof(out->archive_sha256), "%s",
			 job.manifest.archive_sha256);
		out->archive_bytes = job.manifest.archive_bytes;
		out->content_bytes = job.manifest.content_bytes;
		out->entries = (long long)job.manifest.n_entries;
		out->ms = job.ms;
		dgm_snapshot_vouch(plan, s->dir, s->id, out->archive_sha256);
	} else {
		*err = job.err;
		dgm_snapshot_discard_store(s);
		dgm_error_prefix(err, "the model store archive of snapshot '%s' failed", s->id);
	}
	dgm_archive_manifest_free(&job.manifest);
	free(job.dest);
	free(job.base_id);
	return job.rc;
}

int dgm_snapshot_add_store(dgm_snapshot *s, const dgm_plan *plan, const dgm_snapshot_store *st,
			   dgm_error *err)
{
	s->has_store = true;
	free(s->store);
	s->store = dgm_xstrdup(plan->model_store.path);
	memcpy(s->archive_sha256, st->archive_sha256, sizeof(s->archive_sha256));
	s->archive_bytes = st->archive_bytes;
	s->content_bytes = st->content_bytes;
	s->entries = st->entries;
	s->archive_ms = st->ms;
	if (dgm_snapshot_write_manifest(s, plan, s->dir, err) || dgm_fs_fsync_path(s->dir, err)) {
		/* the manifest on disk names no archive: nor does the one in memory */
		s->has_store = false;
		dgm_error_prefix(err, "cannot add the store archive to snapshot '%s'", s->id);
		return -1;
	}
	s->store_pending = false;
	return 0;
}

/* Checksums, manifest (with the timings so far), flush, rename. */
int dgm_snapshot_finish(dgm_snapshot *s, const dgm_plan *plan, const char *partial, long start,
		  long verify_start, dgm_error *err)
{
	char *final = NULL;
	int ret = -1;

	if (s->has_dump && dgm_snapshot_write_checksums(s->db_sha256, partial, s->format, err))
		return -1;
	s->verify_ms = dgm_now_ms() - verify_start;
	s->total_ms = dgm_now_ms() - start;
	if (dgm_snapshot_write_manifest(s, plan, partial, err) || dgm_fs_fsync_tree(partial, err))
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
	/* archive_thread read it back whole (a linked one was vouched for
	 * when linked); signed now, the key is there */
	if (ret == 0 && s->has_store && !s->store_from)
		dgm_snapshot_vouch(plan, s->dir, s->id, s->archive_sha256);
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

/* A failed snapshot: its copy first, so a copy that cannot be dropped
 * keeps its folder (and owner.json) for the next run's sweep. */
static void discard(const dgm_plan *plan, const dgm_snapshot *s, const char *partial)
{
	dgm_error e = DGM_ERROR_INIT;

	if (s->db_copy && dgm_snapshot_drop_copy(plan, s->db_copy, &e)) {
		dgm_warn("%s; %s", e.msg, e.hint);
		dgm_error_clear(&e);
		return;
	}
	if (dgm_fs_remove_tree(partial, &e))
		dgm_warn("%s", e.msg);
	dgm_error_clear(&e);
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
	if (record_db_state(s, plan, opts && opts->copy_first && opts->db != DGM_SNAPSHOT_DUMP, err))
		goto out;
	/* what a killed snapshot of this database left: the caller holds
	 * the database's lock, so no other run is writing one */
	dgm_snapshot_sweep(plan, s->database);
	partial = dgm_xasprintf("%s/%s.partial", plan->snapshot.directory, s->id);
	s->dir = dgm_xstrdup(partial);
	if (dgm_fs_mkdir_p(partial, 0700, err) ||
	    dgm_snapshot_write_owner(partial, s->database, NULL, err))
		goto out;
	if (plan->snapshot.engine == DGM_ENGINE_PGBACKREST)
		dgm_info("snapshot '%s': restore point in pgBackRest stanza '%s' and model store "
			 "archive, in parallel", s->id, plan->pgbackrest.stanza);
	else
		dgm_info("snapshot '%s': %s (%s, %d jobs) and model store archive, in parallel", s->id,
			 !opts || opts->db == DGM_SNAPSHOT_DUMP ? "pg_dump" : opts->db == DGM_SNAPSHOT_ASIDE ?
			 "the database itself, renamed aside when the restore replaces it" :
			 opts->db == DGM_SNAPSHOT_COPY ?
			 "server-side copy of the database, else pg_dump" : opts->copy_first ?
			 "server-side copy of the database (its pg_dump and the store archive follow "
			 "beside the release), else pg_dump" :
			 "server-side copy of the database, then pg_dump of it",
			 s->format == DGM_DUMP_DIRECTORY ? "directory" : "custom", plan->snapshot.jobs);
	if (take_both(s, plan, opts, partial, err))
		goto out;
	dgm_fault_point("snapshot.taken");
	if (s->aside_pending) {
		/* completed by dgm_snapshot_finish_aside, once set aside */
		s->total_ms = dgm_now_ms() - start;
		ret = 0;
		goto out;
	}
	if (dgm_snapshot_finish(s, plan, partial, start, start + s->dump_ms, err))
		goto out;
	ret = 0;
	if (opts && opts->db == DGM_SNAPSHOT_COPY_DUMP && s->has_dump) {
		dgm_error e = DGM_ERROR_INIT;

		if (dgm_snapshot_trim_copies(plan, plan->snapshot.keep_copies, &e))
			dgm_warn("cannot drop older server-side copies: %s", e.msg);
		dgm_error_clear(&e);
	}
out:
	if (ret && partial)
		discard(plan, s, partial);
	umask(old_umask);
	free(partial);
	if (ret) {
		dgm_error_prefix(err, "snapshot failed");
		dgm_snapshot_free(s);
	}
	return ret;
}

int dgm_snapshot_verify(const dgm_snapshot *snap, const dgm_plan *plan, dgm_error *err)
{
	char *archive = dgm_xasprintf("%s/models.tar.zst", snap->dir);
	int ret = dgm_snapshot_authenticate(snap, plan, err);

	if (ret == 0 && snap->has_dump)
		ret = dgm_snapshot_verify_dump(snap, err);
	if (ret == 0 && snap->pitr)
		ret = dgm_pgbr_verify(snap->pitr, plan, err);

	/* a copy beside a dump is a shortcut: missing, it is only a warning */
	if (ret == 0 && snap->db_copy && dgm_snapshot_check_copy(snap, plan, err)) {
		if (snap->has_dump)
			dgm_warn("%s: a restore will read the dump instead", err->msg);
		else
			ret = -1;
		if (ret == 0)
			dgm_error_clear(err);
	}
	if (ret == 0 && snap->has_store) {
		ret = dgm_archive_verify(archive, NULL, err);
		if (ret == 0)
			dgm_snapshot_vouch(plan, snap->dir, snap->id, snap->archive_sha256);
	}
	if (ret)
		dgm_error_prefix(err, "verification failed");
	free(archive);
	return ret;
}
