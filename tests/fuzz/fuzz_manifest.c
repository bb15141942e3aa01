/* fuzz_manifest.c - an archive manifest (models.tar.zst.manifest.json)
 * read by dgm_archive_manifest_read (src/archive/manifest_read.c). The
 * reader takes a path: the input is written to an in-memory file and
 * read through /proc/self/fd. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "dgm/archive.h"
#include "fuzz.h"

static int fd = -1;
static char path[64];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_quiet();
	fd = memfd_create("manifest.json", MFD_CLOEXEC);
	if (fd < 0) {
		perror("memfd_create");
		abort();
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	dgm_archive_manifest m;
	dgm_error err = DGM_ERROR_INIT;

	if (ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
		abort();
	if (dgm_archive_manifest_read(&m, path, &err) == 0)
		dgm_archive_manifest_free(&m);
	return 0;
}
