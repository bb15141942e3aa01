/* restore.c - put a model store (and, when asked, extra paths) back
 * from an archive: stage beside the target and check everything, then
 * swap by renames, keeping the old content aside until commit or abort.
 *
 * Extras: only those the caller names in restore_extras are extracted
 * (into the store's staging folder, then copied into a staging folder
 * beside their original place, PATH.restore-XXXXXX, on the same file
 * system so the swap is a rename) and swapped like the store; the
 * others are read through and hashed, never written anywhere.
 *
 * Every staging folder, and from the swap on every name, is recorded
 * in an intent file beside the store (recover.c) before it is used, so
 * that a crash at any point is settled by dgm_archive_recover. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "archive_int.h"
#include "dgm/buf.h"
#include "dgm/fs.h"

/* The final place, with the symlinks of its existing part resolved, so
 * that staging and aside land on the file system of the real folder. */
static char *resolve(const char *path, bool want_dir, dgm_error *err)
{
	char *real = realpath(path, NULL), *dir, *rdir, *base, *out = NULL;
	struct stat st;

	if (real && !strcmp(real, "/")) {
		dgm_error_set(err, DGM_E_ARCHIVE, "cannot restore over '/'");
		free(real);
		return NULL;
	}
	if (real) {
		if (want_dir && (stat(real, &st) != 0 || !S_ISDIR(st.st_mode))) {
			dgm_error_set(err, DGM_E_ARCHIVE, "'%s' is not a folder", path);
			free(real);
			return NULL;
		}
		return real;
	}
	if (errno != ENOENT) {
		dgm_error_errno(err, DGM_E_IO, "cannot resolve '%s'", path);
		return NULL;
	}
	dir = ar_dirname(path);
	base = ar_basename(path);
	rdir = realpath(dir, NULL);
	if (!rdir)
		dgm_error_errno(err, DGM_E_IO, "cannot restore into '%s': folder '%s'", path, dir);
	else
		out = dgm_xasprintf("%s/%s", strcmp(rdir, "/") ? rdir : "", base);
	free(dir);
	free(base);
	free(rdir);
	return out;
}

/* A staging folder beside path: PATH.restore-XXXXXX, 0700. */
static char *make_staging(const char *path, dgm_error *err)
{
	char *dir = dgm_xasprintf("%s.restore-XXXXXX", path);

	if (!mkdtemp(dir)) {
		dgm_error_errno(err, DGM_E_IO, "cannot create a staging folder beside '%s'", path);
		free(dir);
		return NULL;
	}
	return dir;
}

/* The swap is a rename within the parent folder: path must not be a
 * mount point (rename cannot move one), and a full copy must fit. */
static int check_room(const char *path, long long need, dgm_error *err)
{
	char *parent = ar_dirname(path);
	long long avail = dgm_fs_free_bytes(parent);
	struct stat st, pst;
	int ret = 0;

	if (lstat(path, &st) == 0 && stat(parent, &pst) == 0 && st.st_dev != pst.st_dev) {
		ret = dgm_error_set(err, DGM_E_ARCHIVE, "'%s' is a mount point, and a restore "
				    "replaces it by a rename", path);
		dgm_error_hint(err, "keep the model store in a folder inside the volume, "
			       "not at its root");
	} else if (avail >= 0 && avail < need) {
		ret = dgm_error_set(err, DGM_E_IO, "not enough free space beside '%s': %lld bytes "
				    "free, %lld needed", path, avail, need);
	}
	free(parent);
	return ret;
}

static long extra_index(const dgm_archive_manifest *m, const char *path)
{
	for (size_t i = 0; i < m->n_extras; i++)
		if (!strcmp(m->extras[i], path))
			return (long)i;
	return -1;
}

/* The extras the caller wants back must all be the manifest's. */
static int pick_extras(dgm_archive_restore_state *r, const dgm_archive_manifest *m,
		       const dgm_archive_restore_opts *o, dgm_error *err)
{
	r->extras = dgm_xcalloc(o->n_restore_extras + 1, sizeof(*r->extras));
	for (size_t k = 0; k < o->n_restore_extras; k++) {
		if (extra_index(m, o->restore_extras[k]) < 0)
			return dgm_error_set(err, DGM_E_ARCHIVE, "'%s' is not an extra path of this "
					     "archive", o->restore_extras[k]);
		for (size_t j = 0; j < k; j++)
			if (!strcmp(o->restore_extras[j], o->restore_extras[k]))
				return dgm_error_set(err, DGM_E_ARCHIVE, "extra path '%s' is listed "
						     "twice", o->restore_extras[k]);
		r->extras[k].path = resolve(o->restore_extras[k], false, err);
		if (!r->extras[k].path)
			return -1;
		r->n_extras++;
		if (check_room(r->extras[k].path, 0, err))
			return -1;
	}
	return 0;
}

/* Each wanted extra, from the store's staging folder to a staging
 * folder beside its place, owned like what it replaces. */
static int stage_extras(dgm_archive_restore_state *r, const dgm_archive_manifest *m,
			const dgm_archive_restore_opts *o, dgm_error *err)
{
	for (size_t k = 0; k < r->n_extras; k++) {
		dgm_archive_swap *w = &r->extras[k];
		long i = extra_index(m, o->restore_extras[k]);
		char *base = ar_basename(m->extras[i]);
		char *src = dgm_xasprintf("%s/" AR_EXTRA "/%ld/%s", r->store.dir, i, base);
		ar_owner owner;
		int rc;

		free(base);
		ar_owner_of(&owner, w->path);
		w->dir = make_staging(w->path, err);
		rc = -1;
		if (w->dir) {
			w->staged = dgm_xasprintf("%s/tree", w->dir);
			w->aside = ar_aside_name(w->path);
			rc = ar_intent_write(r, "stage", err) || ar_copy_tree(src, w->staged, &owner, err) ||
			     dgm_fs_fsync_tree(w->dir, err);
		}
		free(src);
		if (rc)
			return -1;
	}
	return 0;
}

/* Folders that hold new staging folders: their entries must be durable too. */
static int flush_parents(dgm_archive_restore_state *r, dgm_error *err)
{
	int ret = 0;

	for (size_t k = 0; k <= r->n_extras && !ret; k++) {
		const char *dir = k < r->n_extras ? r->extras[k].dir : r->store.dir;
		char *parent = dir ? ar_dirname(dir) : NULL;

		if (parent)
			ret = dgm_fs_fsync_path(parent, err);
		free(parent);
	}
	return ret;
}

static void remove_staging(dgm_archive_restore_state *r)
{
	dgm_error ignored = DGM_ERROR_INIT;
	int ret = 0;

	for (size_t k = 0; k < r->n_extras; k++)
		if (r->extras[k].dir)
			ret |= ar_remove_tree(r->extras[k].dir, &ignored);
	if (r->store.dir)
		ret |= ar_remove_tree(r->store.dir, &ignored);
	/* what could not be removed stays recorded for dgm_archive_recover */
	if (!ret)
		ar_intent_remove(r, &ignored);
}

/* Which extras to extract: those asked for, by index. */
static bool *wanted_extras(const dgm_archive_manifest *m, const dgm_archive_restore_opts *o)
{
	bool *want = dgm_xcalloc(m->n_extras + 1, sizeof(*want));

	for (size_t k = 0; k < o->n_restore_extras; k++)
		want[extra_index(m, o->restore_extras[k])] = true;
	return want;
}

/* Extract (copying what is unchanged) into the staging folder, and
 * check what was staged. */
static int stage_store(dgm_archive_restore_state *r, const dgm_archive_manifest *m,
		       const ar_chain *chain, const dgm_archive_restore_opts *o,
		       const unsigned char *same, unsigned char *buf, dgm_error *err)
{
	ar_progress p = { o->progress, o->payload, 0, m->content_bytes, 0 };
	bool *want = wanted_extras(m, o);
	ar_stage s = { .m = m, .archive = o->archive, .dir = r->store.dir,
		       .current = r->store.path, .same = r->identical ? NULL : same,
		       .skip_store = r->identical, .want_extra = want, .buf = buf,
		       .progress = &p, .chain = chain };
	int ret = -1;

	ar_owner_of(&s.owner, r->store.path);
	if (ar_extract(&s, err))
		goto out;
	r->files_extracted = s.files;
	r->bytes_extracted = s.bytes;
	r->files_copied = s.files_copied;
	r->bytes_copied = s.bytes_copied;
	if (!r->identical && ar_check_staged(r->store.dir, AR_STORE, m, err))
		goto out;
	for (size_t i = 0; i < m->n_extras; i++) {
		char *prefix = dgm_xasprintf(AR_EXTRA "/%zu", i);
		int rc = want[i] ? ar_check_staged(r->store.dir, prefix, m, err) : 0;

		free(prefix);
		if (rc)
			goto out;
	}
	ar_progress_end(&p);
	ret = 0;
out:
	free(want);
	return ret;
}

/* The manifest, checked as verify checks it, for this target, and the
 * bases of its chain. */
static int read_checked(dgm_archive_manifest *m, ar_chain *chain, const char *mpath,
			dgm_archive_restore_state *r, const dgm_archive_restore_opts *o,
			dgm_error *err)
{
	size_t root_len;

	if (dgm_archive_manifest_read(m, mpath, err))
		return -1;
	r->store.path = resolve(o->target, true, err);
	if (!r->store.path)
		return -1;
	root_len = strlen(r->store.path) + AR_STAGING_EXTRA;
	return ar_manifest_check(m, root_len, err) ||
	       ar_chain_open(chain, m, o->archive, root_len, err) ? -1 : 0;
}

int dgm_archive_restore_stage(dgm_archive_restore_state *r, const dgm_archive_restore_opts *o,
			      dgm_error *err)
{
	char *mpath = o->manifest ? dgm_xstrdup(o->manifest) : dgm_archive_manifest_path(o->archive);
	unsigned char *same = NULL, *buf = NULL;
	dgm_archive_manifest m;
	ar_chain chain = { 0 };
	int ret = -1;

	memset(r, 0, sizeof(*r));
	memset(&m, 0, sizeof(m));
	/* an earlier restore cut short is settled first */
	if (dgm_archive_recover(o->target, err) || read_checked(&m, &chain, mpath, r, o, err) ||
	    pick_extras(r, &m, o, err))
		goto out;
	same = dgm_xcalloc(m.n_entries + 1, 1);
	buf = dgm_xmalloc(DGM_ARCHIVE_BLOCK);
	ar_compare_store(&r->identical, same, r->store.path, &m, buf);
	if (r->identical && !r->n_extras) {
		/* nothing to write, but the archive is read through all the
		 * same: a restore never calls a damaged archive good */
		ret = ar_verify_archive(&m, o->archive, err) || ar_chain_verify(&chain, err) ? -1 : 0;
		goto out;
	}
	if (check_room(r->store.path, m.content_bytes, err))
		goto out;
	r->store.dir = make_staging(r->store.path, err);
	if (!r->store.dir || ar_intent_write(r, "stage", err) ||
	    stage_store(r, &m, &chain, o, same, buf, err))
		goto out;
	if (!r->identical) {
		r->store.staged = dgm_xasprintf("%s/" AR_STORE, r->store.dir);
		r->store.aside = ar_aside_name(r->store.path);
	}
	if (stage_extras(r, &m, o, err))
		goto out;
	if (ar_intent_write(r, "stage", err) || dgm_fs_fsync_tree(r->store.dir, err) ||
	    flush_parents(r, err))
		goto out;
	ar_fault("store.staged");
	ret = 0;
out:
	if (ret) {
		remove_staging(r);
		dgm_archive_restore_free(r);
		dgm_error_prefix(err, "cannot restore '%s' from '%s'", o->target, o->archive);
	}
	ar_chain_free(&chain);
	dgm_archive_manifest_free(&m);
	free(same);
	free(buf);
	free(mpath);
	return ret;
}

static int fsync_parent(const char *path, dgm_error *err)
{
	char *parent = ar_dirname(path);
	int ret = dgm_fs_fsync_path(parent, err);

	free(parent);
	return ret;
}

static int swap_one(dgm_archive_swap *w, bool is_store, dgm_error *err)
{
	struct stat st;

	if (!w->staged || w->swapped)
		return 0;
	/* what the intent file says must hold: re-checked here */
	if (w->existed != (lstat(w->path, &st) == 0))
		return dgm_error_set(err, DGM_E_ARCHIVE, "'%s' %s during the restore", w->path,
				     w->existed ? "disappeared" : "appeared");
	if (w->existed && ar_rename_noreplace(w->path, w->aside, err))
		return -1;
	ar_fault(is_store ? "store.swap.between" : "extra.swap.between");
	if (ar_rename_noreplace(w->staged, w->path, err)) {
		if (w->existed && rename(w->aside, w->path) != 0)
			dgm_error_hint(err, "the previous content of '%s' is in '%s'", w->path,
				       w->aside);
		return -1;
	}
	w->swapped = true;
	return fsync_parent(w->path, err);
}

static int unswap_one(dgm_archive_swap *w, dgm_error *err)
{
	if (!w->swapped)
		return 0;
	if (ar_rename_noreplace(w->path, w->staged, err) ||
	    (w->existed && ar_rename_noreplace(w->aside, w->path, err)))
		return -1;
	w->swapped = false;
	return fsync_parent(w->path, err);
}

static int unswap_all(dgm_archive_restore_state *r, dgm_error *err)
{
	for (size_t k = r->n_extras; k-- > 0;)
		if (unswap_one(&r->extras[k], err))
			return -1;
	return unswap_one(&r->store, err);
}

int dgm_archive_restore_swap(dgm_archive_restore_state *r, dgm_error *err)
{
	dgm_error undo = DGM_ERROR_INIT;
	struct stat st;

	/* every name is durable before the first rename */
	r->store.existed = lstat(r->store.path, &st) == 0;
	for (size_t k = 0; k < r->n_extras; k++)
		r->extras[k].existed = lstat(r->extras[k].path, &st) == 0;
	if (ar_intent_write(r, "swap", err))
		return -1;
	if (swap_one(&r->store, true, err))
		goto fail;
	for (size_t k = 0; k < r->n_extras; k++)
		if (swap_one(&r->extras[k], false, err))
			goto fail;
	ar_fault("store.swapped");
	return 0;
fail:
	if (unswap_all(r, &undo))
		dgm_error_hint(err, "undoing the swap failed too: %s", undo.msg);
	return -1;
}

/* Remove a tree we own and forget it. */
static int drop(char **path, dgm_error *err)
{
	int ret = *path ? ar_remove_tree(*path, err) : 0;

	if (!ret) {
		free(*path);
		*path = NULL;
	}
	return ret;
}

int dgm_archive_restore_commit(dgm_archive_restore_state *r, dgm_error *err)
{
	/* from here on, a crash completes the restore instead of undoing it */
	if ((r->store.dir || r->n_extras) && ar_intent_write(r, "commit", err))
		return -1;
	ar_fault("store.commit");
	if (r->store.swapped && r->store.existed && drop(&r->store.aside, err))
		return -1;
	for (size_t k = 0; k < r->n_extras; k++) {
		dgm_archive_swap *w = &r->extras[k];

		if ((w->swapped && w->existed && drop(&w->aside, err)) || drop(&w->dir, err))
			return -1;
	}
	if (drop(&r->store.dir, err))
		return -1;
	return ar_intent_remove(r, err);
}

int dgm_archive_restore_abort(dgm_archive_restore_state *r, dgm_error *err)
{
	/* the staging folders hold the new content until it is back there */
	if (unswap_all(r, err))
		return -1;
	for (size_t k = 0; k < r->n_extras; k++)
		if (drop(&r->extras[k].dir, err))
			return -1;
	if (drop(&r->store.dir, err))
		return -1;
	return ar_intent_remove(r, err);
}

static void free_swap(dgm_archive_swap *w)
{
	free(w->path);
	free(w->staged);
	free(w->aside);
	free(w->dir);
}

void dgm_archive_restore_free(dgm_archive_restore_state *r)
{
	if (!r)
		return;
	free_swap(&r->store);
	for (size_t k = 0; k < r->n_extras; k++)
		free_swap(&r->extras[k]);
	free(r->extras);
	free(r->intent);
	memset(r, 0, sizeof(*r));
}

int dgm_archive_restore(dgm_archive_restore_state *r, const dgm_archive_restore_opts *o,
			dgm_error *err)
{
	dgm_error ignored = DGM_ERROR_INIT;

	if (dgm_archive_restore_stage(r, o, err))
		return -1;
	if (dgm_archive_restore_swap(r, err)) {
		dgm_archive_restore_abort(r, &ignored);
		dgm_error_prefix(err, "cannot restore '%s' from '%s'", o->target, o->archive);
		return -1;
	}
	return 0;
}
