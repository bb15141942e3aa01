/* internal.h - what the files of src/snapshot/ share. */
#ifndef DGM_SNAPSHOT_INTERNAL_H
#define DGM_SNAPSHOT_INTERNAL_H

#include "dgm/snapshot.h"

int dgm_snapshot_write_manifest(const dgm_snapshot *snap, const char *dir, dgm_error *err);
/* Write SNAPDIR/db.sha256 for the dump there; its own SHA-256 in sha. */
int dgm_snapshot_write_checksums(char sha[65], const char *snapdir, dgm_dump_format fmt,
				 dgm_error *err);
/* Compare the dump's files with db.sha256 (and db.sha256 with the manifest). */
int dgm_snapshot_check_checksums(const dgm_snapshot *snap, dgm_error *err);

#endif
