/* prune.c - pruning never breaks a model store chain: a snapshot whose
 * archive a kept snapshot reads unchanged files from is folded (its
 * folder keeps only models.tar.zst and its manifest, no manifest.json,
 * so it is no longer listed or restorable) instead of removed, and a
 * folded folder goes once no kept snapshot needs it. Its archive stays
 * checked: the kept snapshot's signed manifest records its SHA-256. */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dgm/archive.h"
#include "dgm/buf.h"
#include "dgm/fs.h"
#include "dgm/log.h"
#include "internal.h"

#define ARCHIVE_NAME "models.tar.zst"

bool dgm_snapshot_needed(const dgm_snapshot_needs *nd, const char *id)
{
	for (size_t i = 0; i < nd->n; i++)
		if (!strcmp(nd->ids[i], id))
			return true;
	return false;
}

static void need(dgm_snapshot_needs *nd, const char *id)
{
	if (dgm_snapshot_needed(nd, id))
		return;
	nd->ids = dgm_xrealloc(nd->ids, (nd->n + 1) * sizeof(*nd->ids));
	nd->ids[nd->n++] = dgm_xstrdup(id);
}

int dgm_snapshot_needs_of(dgm_snapshot_needs *nd, const dgm_snapshot *all, size_t n,
			  const bool *gone, dgm_error *err)
{
	memset(nd, 0, sizeof(*nd));
	for (size_t i = 0; i < n; i++) {
		char *archive, **ids = NULL;
		size_t k = 0;
		int rc;

		if (gone[i] || !all[i].has_store)
			continue;
		archive = dgm_xasprintf("%s/" ARCHIVE_NAME, all[i].dir);
		rc = dgm_archive_bases(&ids, &k, archive, err);
		free(archive);
		for (size_t j = 0; j < k; j++) {
			need(nd, ids[j]);
			free(ids[j]);
		}
		free(ids);
		if (rc) {
			dgm_error_prefix(err, "cannot tell which archives snapshot '%s' reads from, so "
					 "nothing was pruned", all[i].id);
			return -1;
		}
	}
	return 0;
}

void dgm_snapshot_needs_free(dgm_snapshot_needs *nd)
{
	for (size_t i = 0; i < nd->n; i++)
		free(nd->ids[i]);
	free(nd->ids);
	memset(nd, 0, sizeof(*nd));
}

static bool kept_name(const char *name)
{
	return !strcmp(name, ARCHIVE_NAME) || !strcmp(name, ARCHIVE_NAME DGM_ARCHIVE_MANIFEST_SUFFIX);
}

int dgm_snapshot_fold(const char *dir, dgm_error *err)
{
	char *manifest = dgm_xasprintf("%s/manifest.json", dir);
	struct dirent *de;
	DIR *d;
	int ret = -1;

	if (unlink(manifest) != 0 && errno != ENOENT) {
		dgm_error_errno(err, DGM_E_IO, "cannot remove '%s'", manifest);
		goto out;
	}
	if (dgm_fs_fsync_path(dir, err))
		goto out;
	d = opendir(dir);
	if (!d) {
		dgm_error_errno(err, DGM_E_IO, "cannot list '%s'", dir);
		goto out;
	}
	ret = 0;
	while (ret == 0 && (de = readdir(d)) != NULL) {
		char *path;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") || kept_name(de->d_name))
			continue;
		path = dgm_xasprintf("%s/%s", dir, de->d_name);
		ret = dgm_fs_remove_tree(path, err);
		free(path);
	}
	closedir(d);
out:
	free(manifest);
	return ret;
}

/* A folder pruning folded: an archive manifest, no manifest.json. */
static bool folded(const char *dir)
{
	char *m = dgm_xasprintf("%s/manifest.json", dir);
	char *am = dgm_xasprintf("%s/" ARCHIVE_NAME DGM_ARCHIVE_MANIFEST_SUFFIX, dir);
	struct stat st;
	bool yes = lstat(m, &st) != 0 && errno == ENOENT && lstat(am, &st) == 0;

	free(m);
	free(am);
	return yes;
}

int dgm_snapshot_drop_folded(const dgm_plan *plan, const dgm_snapshot_needs *nd,
			     dgm_error *err)
{
	DIR *d = opendir(plan->snapshot.directory);
	struct dirent *de;
	int ret = 0;

	if (!d)
		return errno == ENOENT ? 0 : dgm_error_errno(err, DGM_E_IO, "cannot list '%s'",
							      plan->snapshot.directory);
	while (ret == 0 && (de = readdir(d)) != NULL) {
		char *dir;

		if (de->d_name[0] == '.' || strstr(de->d_name, ".partial"))
			continue;
		dir = dgm_xasprintf("%s/%s", plan->snapshot.directory, de->d_name);
		if (folded(dir) && !dgm_snapshot_needed(nd, de->d_name)) {
			ret = dgm_fs_remove_tree(dir, err);
			if (ret == 0)
				dgm_info("removed the archive of pruned snapshot '%s': no kept snapshot "
					 "reads from it any longer", de->d_name);
		}
		free(dir);
	}
	closedir(d);
	return ret;
}
