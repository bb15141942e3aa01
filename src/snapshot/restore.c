/* restore.c - put a snapshot back: database and model store staged
 * beside their targets, swapped together, the replaced ones dropped
 * last; any failure before that puts both back as they were. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dgm/archive.h"
#include "dgm/fault.h"
#include "dgm/log.h"
#include "dgm/pg.h"
#include "dgm/pgbackrest.h"
#include "dgm/restore.h"
#include "internal.h"

typedef struct restore_run {
	const dgm_plan *plan;
	const dgm_snapshot *snap;
	const dgm_restore_opts *o;
	dgm_db_restore db;
	dgm_archive_restore_state store;
	bool store_staged;
	dgm_restore_path path;
} restore_run;

static int stage_store(restore_run *r, dgm_error *err)
{
	char *archive = dgm_xasprintf("%s/models.tar.zst", r->snap->dir);
	dgm_progress_state ps = DGM_PROGRESS_INIT("model store", "MiB");
	dgm_archive_restore_opts ao = { .archive = archive, .target = r->plan->model_store.path,
					.progress = dgm_progress_cb, .payload = &ps };
	int ret;

	memset(&r->store, 0, sizeof(r->store));
	ret = dgm_archive_restore_stage(&r->store, &ao, err);
	free(archive);
	if (ret)
		return -1;
	r->store_staged = true;
	if (r->store.identical)
		dgm_info("the model store already matches the snapshot file by file: left as is");
	else
		dgm_info("model store staged: %lld files from the archive, %lld unchanged copied",
			 r->store.files_extracted, r->store.files_copied);
	return 0;
}

/* Undo whatever was done; errors here are reported, not returned. */
static void undo(restore_run *r)
{
	dgm_error e = DGM_ERROR_INIT;

	if (r->store_staged && dgm_archive_restore_abort(&r->store, &e))
		dgm_warn("could not put the model store back: %s", e.msg);
	dgm_error_clear(&e);
	if (dgm_db_restore_abort(&r->db, r->plan, &e))
		dgm_warn("could not put the database back: %s", e.msg);
}

static bool want_store(const restore_run *r)
{
	return r->o->store && r->snap->has_store && r->plan->model_store.path;
}

/* Which way the database goes back, from what this role may do: beside
 * it and swapped where it may create databases, else in place (said
 * aloud: it is slower and holds locks), else refused before anything. */
static int choose_path(restore_run *r, dgm_error *err)
{
	PGconn *conn = NULL;
	dgm_db_caps caps;
	char why[640] = "";
	int ret = -1;

	if (dgm_pg_connect(&conn, r->plan->database.url, "dgmigrate restore", err) ||
	    dgm_db_caps_read(&caps, conn, err))
		goto out;
	r->path = dgm_db_caps_restore_path(&caps, r->snap->has_dump, why, sizeof(why));
	if (r->path == DGM_RESTORE_NONE) {
		dgm_error_set(err, DGM_E_RUN, "role '%s' cannot restore database '%s': %s",
			      caps.role, caps.database, why);
		dgm_error_hint(err, "grant it CREATEDB (ALTER ROLE %s CREATEDB), or let it own "
			       "every object of the database, or restore as a superuser", caps.role);
		goto out;
	}
	if (r->path == DGM_RESTORE_IN_PLACE)
		dgm_warn("%s: snapshot '%s' is restored in place (pg_restore --clean in one "
			 "transaction), not beside the database", why, r->snap->id);
	ret = 0;
out:
	dgm_pg_close(conn);
	return ret;
}

bool dgm_snapshot_restore_swaps(const dgm_plan *plan, const dgm_snapshot *snap)
{
	restore_run r = { .plan = plan, .snap = snap };
	dgm_error e = DGM_ERROR_INIT;
	bool swaps = !snap->pitr && choose_path(&r, &e) == 0 && r.path == DGM_RESTORE_SWAP;

	dgm_error_clear(&e);
	return swaps;
}

/* The database replaced is kept as the snapshot aside_into's (aside.c):
 * renamed to its name, not dropped. */
static int keep_aside(restore_run *r, dgm_error *err)
{
	(void)err;
	free(r->db.aside);
	r->db.aside = dgm_xstrdup(r->o->aside_into->db_copy);
	r->db.keep_aside = true;
	return 0;
}

/* In place, the database goes last: once committed it cannot be undone,
 * so the model store is swapped (and can still be put back) first. */
static int restore_in_place(restore_run *r, dgm_error *err)
{
	if (dgm_snapshot_verify_dump(r->snap, err))
		return -1;
	if (want_store(r) && stage_store(r, err))
		return -1;
	if (r->store_staged && !r->store.identical && dgm_archive_restore_swap(&r->store, err))
		return -1;
	return dgm_db_restore_in_place(r->plan, r->snap, r->o->terminate, err);
}

/* pgbackrest.restore: cluster - as in place, the database goes last:
 * the model store is swapped first (and put back if the rewind fails). */
static int restore_cluster(restore_run *r, dgm_error *err)
{
	dgm_pgbr_cluster_target t = { .point = r->snap->pitr, .snapshot = r->snap->id,
				      .database = r->snap->database,
				      .revisions = r->snap->revisions.items,
				      .nrevisions = r->snap->revisions.count };

	if (want_store(r) && stage_store(r, err))
		return -1;
	if (r->store_staged && !r->store.identical && dgm_archive_restore_swap(&r->store, err))
		return -1;
	return dgm_pgbr_cluster_restore(r->plan, &t, r->o->lock, err);
}

int dgm_snapshot_restore(const dgm_plan *plan, const dgm_snapshot *snap,
			 const dgm_restore_opts *o, dgm_error *err)
{
	restore_run r = { .plan = plan, .snap = snap, .o = o };
	const dgm_snapshot *pitr = NULL;
	dgm_snapshot view;
	int ret = -1;

	/* what the snapshot's files say decides what runs: signed, or nothing */
	if (dgm_snapshot_authenticate(snap, plan, err))
		goto done;
	if (snap->pitr && o->database &&
	    plan->pgbackrest.restore == DGM_PGBR_RESTORE_CLUSTER) {
		if (restore_cluster(&r, err))
			goto out;
		if (r.store_staged && dgm_archive_restore_commit(&r.store, err))
			goto done;
		ret = 0;
		goto done;
	}
	/* a restore point: rebuilt as a dump first, then restored as one */
	if (snap->pitr && o->database) {
		pitr = snap;
		if (dgm_snapshot_pitr_dump(&view, plan, snap, err))
			goto done;
		r.snap = snap = &view;
	}
	if (o->aside_into && !o->database) {
		dgm_error_set(err, DGM_E_RUN, "nothing to set aside: the database is not restored");
		goto done;
	}
	if (o->database && choose_path(&r, err))
		goto done;
	/* nothing changed yet: a database restored in place cannot go aside */
	if (o->aside_into && r.path != DGM_RESTORE_SWAP) {
		dgm_error_set(err, DGM_E_RUN, "the database cannot be set aside as snapshot '%s': "
			      "it is not restored by swap", o->aside_into->id);
		goto done;
	}
	if (r.path == DGM_RESTORE_IN_PLACE) {
		if (restore_in_place(&r, err))
			goto out;
		if (r.store_staged && dgm_archive_restore_commit(&r.store, err))
			goto done;
		ret = 0;
		goto done;
	}
	/* each part is checked where it is read, before the swap: the
	 * database's source when staged, the store entry by entry */
	if (o->database && (dgm_db_restore_stage(&r.db, plan, snap, err) ||
			    (o->aside_into && keep_aside(&r, err)) ||
			    dgm_db_restore_keep_state(&r.db, plan, err)))
		goto out;
	if (want_store(&r) && stage_store(&r, err))
		goto out;
	dgm_fault_point("restore.staged");
	if (o->database && dgm_db_restore_swap(&r.db, plan, o->terminate, err))
		goto out;
	/* the database replaced is the safety snapshot's: recorded from it,
	 * checked, the snapshot completed (a kill before: resume renames it
	 * back, the snapshot was never one) */
	dgm_fault_point("restore.db-swapped");
	if (o->aside_into && dgm_snapshot_finish_aside(o->aside_into, plan, err))
		goto out;
	if (r.store_staged && !r.store.identical && dgm_archive_restore_swap(&r.store, err))
		goto out;
	dgm_fault_point("restore.swapped");
	if (o->aside_into)
		dgm_snapshot_label_aside(o->aside_into, plan);
	/* both are in place: now, and only now, drop what they replaced */
	if (o->database && dgm_db_restore_commit(&r.db, plan, err))
		goto done;
	if (r.store_staged && dgm_archive_restore_commit(&r.store, err))
		goto done;
	ret = 0;
	goto done;
out:
	undo(&r);
	/* the database is back under its name: the safety snapshot has none */
	if (o->aside_into)
		dgm_snapshot_discard_aside(o->aside_into, plan);
done:
	if (ret)
		dgm_error_prefix(err, "restore of snapshot '%s'", snap->id);
	if (r.store_staged)
		dgm_archive_restore_free(&r.store);
	dgm_db_restore_free(&r.db);
	if (pitr)
		dgm_snapshot_pitr_clean(pitr);
	return ret;
}
