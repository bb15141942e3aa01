/* compare.c - the current store against the manifest (what may be
 * copied instead of extracted, and whether anything must change at
 * all), and the staged tree against the manifest before the swap. */
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "archive_int.h"
#include "dgm/buf.h"

static bool is_under(const char *path, const char *prefix)
{
	size_t n = strlen(prefix);

	return !strncmp(path, prefix, n) && (path[n] == '\0' || path[n] == '/');
}

static bool file_same(const char *fs, const dgm_archive_entry *me, unsigned char *buf)
{
	int fd = open(fs, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	EVP_MD_CTX *sha;
	long long total = 0;
	char hex[65];
	ssize_t n;

	if (fd < 0)
		return false;
	sha = ar_sha_new();
	while ((n = read(fd, buf, DGM_ARCHIVE_BLOCK)) > 0) {
		ar_sha_update(sha, buf, (size_t)n);
		total += n;
	}
	close(fd);
	ar_sha_final(sha, hex);
	return n == 0 && total == me->size && !strcmp(hex, me->sha256);
}

static bool link_same(const char *fs, const dgm_archive_entry *me)
{
	/* the manifest reader bounds it; never trust more than a path */
	if (me->size < 0 || me->size >= AR_PATH_MAX)
		return false;
	char *target = dgm_xmalloc((size_t)me->size + 2);
	ssize_t n = readlink(fs, target, (size_t)me->size + 2);
	char hex[65];
	bool same = false;

	if (n == me->size) {
		ar_sha_buf(hex, target, (size_t)n);
		same = !strcmp(hex, me->sha256);
	}
	free(target);
	return same;
}

typedef struct cmp {
	const dgm_archive_manifest *m;
	unsigned char *same, *found, *buf;
	bool identical;
} cmp;

/* Folders count by mode; their mtimes move with any add and remove, so
 * they do not decide "identical" (they are restored in any case). */
static int compare_one(const char *fs, const char *ap, const struct stat *st, void *vc,
		       dgm_error *err)
{
	cmp *c = vc;
	long pos = ar_manifest_pos(c->m, ap);
	const dgm_archive_entry *me;
	bool ok = false;

	if (pos < 0) {
		c->identical = false;
		return 0;
	}
	me = &c->m->entries[pos];
	c->found[pos] = 1;
	if (me->type == DGM_ARCHIVE_DIR)
		ok = S_ISDIR(st->st_mode) && (st->st_mode & 07777) == me->mode;
	else if (me->type == DGM_ARCHIVE_SYMLINK)
		ok = S_ISLNK(st->st_mode) && link_same(fs, me);
	else if (S_ISREG(st->st_mode) && (st->st_mode & 07777) == me->mode &&
		 st->st_size == me->size && st->st_mtime == me->mtime) {
		ok = ar_stat_unchanged(me, st) || file_same(fs, me, c->buf);
		c->same[pos] = ok;
	}
	c->identical &= ok;
	return 0;
}

void ar_compare_store(bool *identical, unsigned char *same, const char *target,
		      const dgm_archive_manifest *m, unsigned char *buf)
{
	cmp c = { m, same, dgm_xcalloc(m->n_entries + 1, 1), buf, true };
	dgm_error ignored = DGM_ERROR_INIT;
	struct stat st;

	if (lstat(target, &st) != 0 || !S_ISDIR(st.st_mode) ||
	    ar_walk(target, AR_STORE, compare_one, &c, &ignored))
		c.identical = false;
	for (size_t i = 0; i < m->n_entries; i++)
		if (is_under(m->entries[i].path, AR_STORE) && !c.found[i])
			c.identical = false;
	*identical = c.identical;
	free(c.found);
}

int dgm_archive_store_matches(bool *same, const char *archive, const char *store,
			      bool read_archive, dgm_error *err)
{
	char *mpath = dgm_archive_manifest_path(archive);
	dgm_archive_manifest m;
	unsigned char *seen = NULL, *buf = NULL;
	char *real = NULL;

	*same = false;
	/* never call a damaged archive the same: it would be linked */
	if (dgm_archive_recover(store, err) || dgm_archive_manifest_read(&m, mpath, err)) {
		free(mpath);
		return -1;
	}
	/* every archive of its chain, too */
	if (read_archive && dgm_archive_verify(archive, mpath, err)) {
		dgm_archive_manifest_free(&m);
		free(mpath);
		return -1;
	}
	real = realpath(store, NULL);
	if (real && m.n_extras == 0) {
		seen = dgm_xcalloc(m.n_entries + 1, 1);
		buf = dgm_xmalloc(DGM_ARCHIVE_BLOCK);
		ar_compare_store(same, seen, real, &m, buf);
	}
	dgm_archive_manifest_free(&m);
	free(seen);
	free(buf);
	free(real);
	free(mpath);
	return 0;
}

typedef struct staged {
	const dgm_archive_manifest *m;
	unsigned char *found;
} staged;

static int staged_one(const char *fs, const char *ap, const struct stat *st, void *vs,
		      dgm_error *err)
{
	staged *s = vs;
	long pos = ar_manifest_pos(s->m, ap);
	const dgm_archive_entry *me = pos >= 0 ? &s->m->entries[pos] : NULL;
	char show[AR_SHOW_MAX];
	const char *why = NULL;

	ar_show(show, sizeof(show), ap);
	if (!me)
		return dgm_error_set(err, DGM_E_ARCHIVE, "'%s' was staged but is not in the manifest",
				     show);
	s->found[pos] = 1;
	if ((me->type == DGM_ARCHIVE_FILE && !S_ISREG(st->st_mode)) ||
	    (me->type == DGM_ARCHIVE_DIR && !S_ISDIR(st->st_mode)) ||
	    (me->type == DGM_ARCHIVE_SYMLINK && !S_ISLNK(st->st_mode)))
		why = "type";
	else if (me->type != DGM_ARCHIVE_SYMLINK && (st->st_mode & 07777) != me->mode)
		why = "mode";
	else if (st->st_mtime != me->mtime)
		why = "mtime";
	else if (me->type == DGM_ARCHIVE_FILE && st->st_size != me->size)
		why = "size";
	else if (me->type == DGM_ARCHIVE_SYMLINK && !link_same(fs, me))
		why = "link target";
	if (why)
		return dgm_error_set(err, DGM_E_ARCHIVE, "staged '%s' differs from the manifest: %s",
				     show, why);
	return 0;
}

int ar_check_staged(const char *dir, const char *prefix, const dgm_archive_manifest *m,
		    dgm_error *err)
{
	staged s = { m, dgm_xcalloc(m->n_entries + 1, 1) };
	char *root = dgm_xasprintf("%s/%s", dir, prefix);
	char show[AR_SHOW_MAX];
	int ret = ar_walk(root, prefix, staged_one, &s, err);

	for (size_t i = 0; i < m->n_entries && !ret; i++)
		if (is_under(m->entries[i].path, prefix) && !s.found[i])
			ret = dgm_error_set(err, DGM_E_ARCHIVE, "'%s' was not staged",
					    ar_show(show, sizeof(show), m->entries[i].path));
	free(root);
	free(s.found);
	return ret;
}
