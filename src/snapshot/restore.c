/* restore.c - put a snapshot back: database and model store staged
 * beside their targets, swapped together, the replaced ones dropped
 * last; any failure before that puts both back as they were. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dgm/archive.h"
#include "dgm/fault.h"
#include "dgm/log.h"
#include "dgm/restore.h"

typedef struct restore_run {
	const dgm_plan *plan;
	const dgm_snapshot *snap;
	const dgm_restore_opts *o;
	dgm_db_restore db;
	dgm_archive_restore_state store;
	bool store_staged;
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

int dgm_snapshot_restore(const dgm_plan *plan, const dgm_snapshot *snap,
			 const dgm_restore_opts *o, dgm_error *err)
{
	restore_run r = { .plan = plan, .snap = snap, .o = o };
	int ret = -1;

	/* each part is checked where it is read, before the swap: the
	 * database's source when staged, the store entry by entry */
	if (o->database && dgm_db_restore_stage(&r.db, plan, snap, err))
		goto out;
	if (want_store(&r) && stage_store(&r, err))
		goto out;
	dgm_fault_point("restore.staged");
	if (o->database && dgm_db_restore_swap(&r.db, plan, o->terminate, err))
		goto out;
	if (r.store_staged && !r.store.identical && dgm_archive_restore_swap(&r.store, err))
		goto out;
	dgm_fault_point("restore.swapped");
	/* both are in place: now, and only now, drop what they replaced */
	if (o->database && dgm_db_restore_commit(&r.db, plan, err))
		goto done;
	if (r.store_staged && dgm_archive_restore_commit(&r.store, err))
		goto done;
	ret = 0;
	goto done;
out:
	undo(&r);
done:
	if (ret)
		dgm_error_prefix(err, "restore of snapshot '%s'", snap->id);
	if (r.store_staged)
		dgm_archive_restore_free(&r.store);
	dgm_db_restore_free(&r.db);
	return ret;
}
