/* vouch.c - a store archive that was read back whole and has not changed
 * since is not read again before it is linked into another snapshot.
 * models.verified.json, in the folder of the snapshot that owns the
 * archive, records the archive file's identity right after a full
 * reading (device, inode, size, mtime and ctime to the ns: git's index
 * test) and its SHA-256, sealed with the snapshot key. A write to the
 * file, a rename over it or a hard link more or less moves its ctime, and
 * the record cannot be rewritten without the key. A restore and `backups
 * verify` read every archive whole in any case. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dgm/archive.h"
#include "dgm/clock.h"
#include "dgm/fs.h"
#include "dgm/log.h"
#include "internal.h"

#define VOUCH_FILE "models.verified.json"

/* What the archive in dir is now; NULL when it cannot be stat'ed. */
static json_t *identity(const char *dir, const char *sha)
{
	char *archive = dgm_xasprintf("%s/models.tar.zst", dir);
	struct stat st;
	json_t *o = NULL;

	if (stat(archive, &st) == 0)
		o = json_pack("{s:s, s:I, s:I, s:I, s:I, s:I}", "archive_sha256", sha,
			      "dev", (json_int_t)st.st_dev, "ino", (json_int_t)st.st_ino,
			      "size", (json_int_t)st.st_size, "mtime_ns", (json_int_t)dgm_timespec_ns(&st.st_mtim),
			      "ctime_ns", (json_int_t)dgm_timespec_ns(&st.st_ctim));
	free(archive);
	return o;
}

void dgm_snapshot_vouch(const dgm_plan *plan, const char *dir, const char *id, const char *sha)
{
	char *path = dgm_xasprintf("%s/%s", dir, VOUCH_FILE), *text = NULL;
	json_t *o = identity(dir, sha);
	dgm_error e = DGM_ERROR_INIT;

	if (!o || dgm_snapshot_seal_json(o, plan, id, VOUCH_FILE, &e))
		goto out;
	text = json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS);
	if (text && dgm_fs_write_atomic(path, text, strlen(text), 0600, &e) == 0)
		dgm_debug("snapshot '%s': its store archive, read back whole, is vouched for in '%s'",
			  id, path);
out:
	/* only a shortcut lost: the next link reads the archive again */
	if (e.code)
		dgm_debug("cannot record that snapshot '%s''s archive was read back: %s", id, e.msg);
	dgm_error_clear(&e);
	json_decref(o);
	free(text);
	free(path);
}

static bool vouched_one(const dgm_plan *plan, const char *dir, const char *id, const char *sha)
{
	char *path = dgm_xasprintf("%s/%s", dir, VOUCH_FILE);
	json_t *was = json_load_file(path, 0, NULL), *now = identity(dir, sha), *bare = NULL;
	bool ok = false;

	if (!was || !now || !dgm_snapshot_seal_holds(was, plan, id, VOUCH_FILE))
		goto out;
	bare = json_deep_copy(was);
	json_object_del(bare, "hmac");
	ok = json_equal(bare, now);
out:
	if (!ok)
		dgm_debug("snapshot '%s': its store archive is read back (%s)", id, !was ?
			  "never read back whole since it was made or linked" : "changed since, or "
			  "the record is not sealed with this key");
	json_decref(was);
	json_decref(now);
	json_decref(bare);
	free(path);
	return ok;
}

bool dgm_snapshot_archive_vouched(const dgm_snapshot *s, const dgm_plan *plan)
{
	char *archive = dgm_xasprintf("%s/models.tar.zst", s->dir);
	char *mpath = dgm_archive_manifest_path(archive);
	dgm_archive_manifest m;
	dgm_error e = DGM_ERROR_INIT;
	bool ok = false;

	if (!s->has_store || !vouched_one(plan, s->dir, s->id, s->archive_sha256) ||
	    dgm_archive_manifest_read(&m, mpath, &e))
		goto out;
	/* references are flat: each base's own archive holds what it gives */
	ok = true;
	for (size_t i = 0; ok && i < m.n_bases; i++) {
		char *dir = dgm_xasprintf("%s/%s", plan->snapshot.directory, m.bases[i].id);

		ok = vouched_one(plan, dir, m.bases[i].id, m.bases[i].archive_sha256);
		free(dir);
	}
	dgm_archive_manifest_free(&m);
out:
	dgm_error_clear(&e);
	free(archive);
	free(mpath);
	return ok;
}
