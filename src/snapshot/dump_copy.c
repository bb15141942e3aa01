/* dump_copy.c - the off-server dump of a copy-first snapshot. The copy
 * (CREATE DATABASE ... TEMPLATE, checked) gated the release; this dump of
 * the copy is taken while the release proceeds, on the caller's thread
 * of choice: it writes only files in the snapshot's folder and reads the
 * snapshot. Adding it to the manifest is the caller's, afterwards. (The
 * store archive's counterpart is in snapshot.c, beside the archive job.) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dgm/dump.h"
#include "dgm/fault.h"
#include "dgm/fs.h"
#include "dgm/log.h"
#include "internal.h"

static const char *const dump_files[] = {
	"db", "db.partial", "db.dump", "db.dump.partial", "db.sha256", NULL
};

void dgm_snapshot_discard_dump(const dgm_snapshot *s)
{
	if (s->has_dump)
		return;
	for (size_t i = 0; dump_files[i]; i++) {
		char *path = dgm_xasprintf("%s/%s", s->dir, dump_files[i]);
		dgm_error e = DGM_ERROR_INIT;

		if (dgm_fs_remove_tree(path, &e))
			dgm_warn("%s", e.msg);
		dgm_error_clear(&e);
		free(path);
	}
}

int dgm_snapshot_dump_copy(dgm_snapshot_dump *out, const dgm_snapshot *s,
			   const dgm_plan *plan, const volatile sig_atomic_t *cancel,
			   dgm_error *err)
{
	char *dest = dgm_xasprintf("%s/%s", s->dir,
				   s->format == DGM_DUMP_DIRECTORY ? "db" : "db.dump");
	dgm_dump_opts o = {
		.url = plan->database.url, .dbname = s->db_copy, .dest = dest,
		.format = s->format, .jobs = plan->snapshot.jobs,
		.compression = plan->snapshot.compression,
		.timeout_ms = plan->timeouts.snapshot_ms, .cancel = cancel,
	};
	dgm_dump_info info;
	int ret = -1;

	memset(out, 0, sizeof(*out));
	if (!s->db_copy || s->has_dump) {
		dgm_error_set(err, DGM_E_RUN, "snapshot '%s' has %s", s->id, s->has_dump ?
			      "its dump already" : "no server-side copy to dump");
		goto out;
	}
	/* what a killed run's try left (resume takes the dump again) */
	dgm_snapshot_discard_dump(s);
	dgm_info("pg_dump of '%s', the server-side copy of snapshot '%s' (the off-server backup)",
		 s->db_copy, s->id);
	/* the crash and order tests hold the dump here */
	dgm_fault_point("snapshot.dump");
	if (dgm_dump_create(&info, &o, err) ||
	    dgm_snapshot_write_checksums(out->db_sha256, s->dir, s->format, err) ||
	    dgm_fs_fsync_path(s->dir, err))
		goto out;
	snprintf(out->pg_dump_version, sizeof(out->pg_dump_version), "%s", info.pg_dump_version);
	out->toc_entries = info.toc_entries;
	out->bytes = info.bytes;
	out->ms = info.ms;
	ret = 0;
out:
	if (ret) {
		dgm_snapshot_discard_dump(s);
		dgm_error_prefix(err, "the dump of snapshot '%s' failed", s->id);
	}
	free(dest);
	return ret;
}

int dgm_snapshot_add_dump(dgm_snapshot *s, const dgm_plan *plan, const dgm_snapshot_dump *d,
			  dgm_error *err)
{
	dgm_error e = DGM_ERROR_INIT;

	free(s->pg_dump_version);
	s->pg_dump_version = dgm_xstrdup(d->pg_dump_version);
	s->toc_entries = d->toc_entries;
	s->db_bytes = d->bytes;
	memcpy(s->db_sha256, d->db_sha256, sizeof(s->db_sha256));
	s->dump_ms = d->ms;
	s->has_dump = true;
	if (dgm_snapshot_write_manifest(s, plan, s->dir, err) || dgm_fs_fsync_path(s->dir, err)) {
		/* the manifest on disk still says "copy": so does the one in memory */
		s->has_dump = false;
		s->db_sha256[0] = '\0';
		dgm_error_prefix(err, "cannot add the dump to snapshot '%s'", s->id);
		return -1;
	}
	s->dump_pending = false;
	if (dgm_snapshot_trim_copies(plan, plan->snapshot.keep_copies, &e))
		dgm_warn("cannot drop older server-side copies: %s", e.msg);
	dgm_error_clear(&e);
	return 0;
}
