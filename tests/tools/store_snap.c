/* store_snap.c - the model store half of a snapshot, as dgmigrate takes
 * it (src/snapshot/snapshot.c, archive_thread), alone: for
 * bench/store.sh, which has no database to dump.
 *
 *   store_snap SNAPS ID STORE [BASE]
 *
 * archives STORE into SNAPS/ID/models.tar.zst (zstd level 3, no worker
 * threads: the snapshot defaults), chained to snapshot BASE in SNAPS
 * when given, then reads it back (dgm_archive_verify_new). Prints
 * "ms=<wall ms> archived=<files in the archive> files=<files listed>
 * bytes=<archive bytes>". */
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>

#include "dgm/archive.h"
#include "dgm/buf.h"

static long now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000L + t.tv_nsec / 1000000L;
}

int main(int argc, char **argv)
{
	dgm_error err = DGM_ERROR_INIT;
	dgm_archive_manifest m;
	long start = now_ms();
	long long files = 0, archived = 0;
	char *dir, *dest;

	if (argc != 4 && argc != 5) {
		fprintf(stderr, "usage: store_snap SNAPS ID STORE [BASE]\n");
		return 2;
	}
	dir = dgm_xasprintf("%s/%s", argv[1], argv[2]);
	dest = dgm_xasprintf("%s/models.tar.zst", dir);
	dgm_archive_opts o = { .dest = dest, .store = argv[3], .level = 3,
			       .base_id = argc == 5 ? argv[4] : NULL };

	if (mkdir(dir, 0700) != 0 || dgm_archive_create(&m, &o, &err) ||
	    dgm_archive_verify_new(dest, &err)) {
		fprintf(stderr, "store_snap: %s\n", err.msg[0] ? err.msg : "cannot create the folder");
		return 1;
	}
	for (size_t i = 0; i < m.n_entries; i++)
		if (m.entries[i].type == DGM_ARCHIVE_FILE) {
			files++;
			archived += m.entries[i].in == NULL;
		}
	printf("ms=%ld archived=%lld files=%lld bytes=%lld\n", now_ms() - start, archived, files,
	       m.archive_bytes);
	dgm_archive_manifest_free(&m);
	free(dir);
	free(dest);
	return 0;
}
