/* store_quiet.c - has anything in the model store changed since a time?
 * A rollback's safety snapshot links the release's archive only after
 * comparing the store with it file by file (every file hashed); the
 * restore of the store a few seconds later would read the archive and
 * hash every file again to find the same. Nothing written, created,
 * removed, renamed or chmod'ed since leaves every entry's ctime (which
 * no one can set back) before the comparison started: then the store
 * is still the archive, and the second pass is skipped. */
#include <ftw.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <time.h>

#include "internal.h"

static struct timespec quiet_since;
static bool quiet;

static bool later(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec > b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec >= b->tv_nsec);
}

static int visit(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)path;
	(void)ftw;
	if (flag == FTW_NS || flag == FTW_DNR || later(&st->st_ctim, &quiet_since)) {
		quiet = false;
		return 1;
	}
	return 0;
}

bool dgm_release_store_quiet(const char *store, struct timespec since)
{
	struct stat st;

	/* the file system's clock may lag the wall clock by a tick: a second
	 * of margin (a store written just before only costs the full pass) */
	since.tv_sec -= 1;
	quiet_since = since;
	quiet = true;
	if (lstat(store, &st) != 0 || !S_ISDIR(st.st_mode) ||
	    nftw(store, visit, 16, FTW_PHYS) != 0)
		return false;
	return quiet;
}
