/*
 * restore_pitr.c - a snapshot whose database is a pgBackRest restore
 * point (snapshot.engine: pgbackrest) is restored through the same path
 * as a dump: the point is rebuilt beside (restore: side, src/pgbr/side.c),
 * dumped into the snapshot's folder as db/ with its db.sha256, and the
 * restore reads that dump like any other; both are removed afterwards
 * (the manifest never lists them: a later restore rebuilds them).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dgm/dump.h"
#include "dgm/fs.h"
#include "dgm/log.h"
#include "dgm/pgbackrest.h"
#include "internal.h"

void dgm_snapshot_pitr_clean(const dgm_snapshot *snap)
{
	char *db = dgm_xasprintf("%s/db", snap->dir), *sums = dgm_xasprintf("%s/db.sha256", snap->dir);
	char *partial = dgm_xasprintf("%s/db.partial", snap->dir);
	dgm_error e = DGM_ERROR_INIT;

	if (dgm_fs_remove_tree(db, &e) || dgm_fs_remove_tree(partial, &e))
		dgm_warn("%s", e.msg);
	dgm_error_clear(&e);
	unlink(sums);
	free(db);
	free(sums);
	free(partial);
}

int dgm_snapshot_pitr_dump(dgm_snapshot *view, const dgm_plan *plan, const dgm_snapshot *snap,
			   dgm_error *err)
{
	char *dest = dgm_xasprintf("%s/db", snap->dir);
	dgm_dump_info info;
	int ret = -1;

	*view = *snap;
	view->pitr = NULL;
	dgm_snapshot_pitr_clean(snap);
	if (dgm_pgbr_side_dump(&info, plan, snap->pitr, snap->database, dest, err) ||
	    dgm_snapshot_write_checksums(view->db_sha256, snap->dir, DGM_DUMP_DIRECTORY, err))
		goto out;
	view->has_dump = true;
	view->format = DGM_DUMP_DIRECTORY;
	view->toc_entries = info.toc_entries;
	view->db_bytes = info.bytes;
	ret = 0;
out:
	if (ret)
		dgm_snapshot_pitr_clean(snap);
	free(dest);
	return ret;
}

void dgm_snapshot_pitr_sweep(const dgm_plan *plan)
{
	dgm_snapshot *all = NULL;
	dgm_error e = DGM_ERROR_INIT;
	size_t n = 0;

	if (plan->snapshot.engine != DGM_ENGINE_PGBACKREST)
		return;
	dgm_pgbr_side_sweep(plan);
	if (dgm_snapshot_list(&all, &n, plan->snapshot.directory, &e))
		return;
	for (size_t i = 0; i < n; i++)
		if (all[i].pitr)
			dgm_snapshot_pitr_clean(&all[i]);
	dgm_snapshot_list_free(all, n);
}
