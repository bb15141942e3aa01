/* fuzz_catalog.c - a snapshot's catalog entry (<id>/manifest.json) read
 * by dgm_snapshot_read and listed by dgm_snapshot_list
 * (src/snapshot/catalog.c), then written back as JSON. The input is the
 * manifest.json of one snapshot folder in a private temporary folder. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dgm/snapshot.h"
#include "fuzz.h"

static char *dir, *snap_dir, *file;

static void cleanup(void)
{
	unlink(file);
	rmdir(snap_dir);
	rmdir(dir);
	free(file);
	free(snap_dir);
	free(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char tmpl[] = "/tmp/dgm-fuzz-catalog.XXXXXX";

	fuzz_quiet();
	if (!mkdtemp(tmpl)) {
		perror("mkdtemp");
		abort();
	}
	dir = dgm_xstrdup(tmpl);
	snap_dir = dgm_xasprintf("%s/20261129T064955Z-3f2a", dir);
	file = dgm_xasprintf("%s/manifest.json", snap_dir);
	if (mkdir(snap_dir, 0700) != 0) {
		perror("mkdir");
		abort();
	}
	atexit(cleanup);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	FILE *f = fopen(file, "wb");
	dgm_snapshot snap, *list = NULL;
	dgm_error err = DGM_ERROR_INIT;
	size_t n = 0;

	if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0)
		abort();
	if (dgm_snapshot_read(&snap, snap_dir, &err) == 0) {
		free(dgm_snapshot_json(&snap));
		dgm_snapshot_free(&snap);
	}
	if (dgm_snapshot_list(&list, &n, dir, &err) == 0)
		dgm_snapshot_list_free(list, n);
	return 0;
}
