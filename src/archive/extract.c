/* extract.c - the archive into a staging folder, refusing anything that
 * could land outside it.
 *
 * Fences, each enough on its own: the whole manifest was checked before
 * (ar_manifest_check: safe, normalized, short enough paths); every
 * entry's path is checked again as it is read (relative, under store/
 * or extra/, every parent an already extracted folder of the manifest,
 * never a symlink); and nothing is written by path: each entry is
 * created relative to its folder's descriptor, opened one component at
 * a time from the staging folder with O_NOFOLLOW, new names with O_EXCL
 * (mkdirat, symlinkat). So a symlink, the working folder or PATH_MAX
 * cannot move a write anywhere else. What reaches the disk is only the
 * name, type, permission bits, mtime, content or link target the
 * manifest agrees with; the owner is the store's (ar_stage.owner), never
 * the archive's; no hard links, devices, xattrs, ACLs or file flags. A
 * refused entry fails the whole restore. Nothing here changes the
 * working folder, so other threads may run beside it. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "archive_int.h"
#include "dgm/buf.h"

typedef struct extractor {
	ar_stage *s;
	ar_reader r;
	unsigned char *seen;
	int root;                 /* the staging folder */
	long *dirs;               /* folders created, in archive order */
	size_t n_dirs;
	int out;                  /* the file being written */
	const char *out_path;
} extractor;

static int io_fail(const char *what, const char *path, dgm_error *err)
{
	char show[AR_SHOW_MAX];

	return dgm_error_errno(err, DGM_E_IO, "cannot %s '%s'", what,
			       ar_show(show, sizeof(show), path));
}

/* The folder holding path (checked: normalized, relative), opened from
 * the staging folder one component at a time, never through a
 * symlink. *name: the last component. */
static int open_parent(extractor *x, const char *path, const char **name, dgm_error *err)
{
	int fd = dup(x->root);
	const char *s = path;

	if (fd < 0)
		return io_fail("open the folder of", path, err);
	for (size_t n; s[n = strcspn(s, "/")] == '/'; s += n + 1) {
		char *comp = dgm_xstrndup(s, n);
		int next = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

		free(comp);
		close(fd);
		if (next < 0)
			return io_fail("open the folder of", path, err);
		fd = next;
	}
	*name = s;
	return fd;
}

static int to_file(const void *data, size_t len, void *vx, dgm_error *err)
{
	extractor *x = vx;
	const char *p = data;

	while (len) {
		ssize_t n = write(x->out, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return io_fail("write", x->out_path, err);
		p += n;
		len -= (size_t)n;
		ar_progress_add(x->s->progress, n);
	}
	return 0;
}

static int put_file(extractor *x, int dfd, const char *name, const dgm_archive_entry *me,
		    dgm_error *err)
{
	char sha[65];
	long long len;
	int ret = -1;

	x->out = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	x->out_path = me->path;
	if (x->out < 0)
		return io_fail("create", me->path, err);
	if (ar_reader_content(&x->r, sha, &len, to_file, x, err) ||
	    ar_content_check(me, sha, len, err) ||
	    ar_set_meta(x->out, me->path, &x->s->owner, me->mode, me->mtime, err))
		goto out;
	x->s->files++;
	x->s->bytes += len;
	ret = 0;
out:
	if (close(x->out) != 0 && ret == 0)
		ret = io_fail("write", me->path, err);
	x->out = -1;
	return ret;
}

static int put_symlink(extractor *x, int dfd, const char *name, struct archive_entry *e,
		       const dgm_archive_entry *me, dgm_error *err)
{
	struct timespec ts[2] = { { (time_t)me->mtime, 0 }, { (time_t)me->mtime, 0 } };
	const ar_owner *o = &x->s->owner;

	/* the target was compared with the manifest's by ar_header_check */
	if (symlinkat(archive_entry_symlink(e), dfd, name) != 0)
		return io_fail("create symlink", me->path, err);
	if ((o->set && fchownat(dfd, name, o->uid, o->gid, AT_SYMLINK_NOFOLLOW) != 0) ||
	    utimensat(dfd, name, ts, AT_SYMLINK_NOFOLLOW) != 0)
		return io_fail("set the owner and mtime of", me->path, err);
	return 0;
}

/* 0700 while it fills; owner, mode and mtime once everything is in. */
static int put_dir(extractor *x, int dfd, const char *name, long pos, dgm_error *err)
{
	if (mkdirat(dfd, name, 0700) != 0)
		return io_fail("create folder", x->s->m->entries[pos].path, err);
	x->dirs = dgm_xrealloc(x->dirs, (x->n_dirs + 1) * sizeof(*x->dirs));
	x->dirs[x->n_dirs++] = pos;
	return 0;
}

/* An unchanged file from the current store. 1: it changed, extract it. */
static int copy_current(extractor *x, int dfd, const char *name, const dgm_archive_entry *me,
			dgm_error *err)
{
	ar_stage *s = x->s;
	char *src = dgm_xasprintf("%s%s", s->current, me->path + strlen(AR_STORE));
	int rc = ar_copy_file(src, dfd, name, me, &s->owner, s->buf, err);

	if (rc == 0) {
		s->files_copied++;
		s->bytes_copied += me->size;
		ar_progress_add(s->progress, me->size);
	}
	free(src);
	return rc;
}

static bool in_store(const char *path)
{
	size_t n = strlen(AR_STORE);

	return !strncmp(path, AR_STORE, n) && (path[n] == '\0' || path[n] == '/');
}

/* Is this entry written? The store unless it is identical; under
 * extra/ only what belongs to a wanted extra path. */
static bool wanted(const ar_stage *s, const char *path)
{
	const char *tail;
	long i;

	if (in_store(path))
		return !s->skip_store;
	if (!s->want_extra)
		return false;
	if (!strcmp(path, AR_EXTRA)) {
		for (size_t k = 0; k < s->m->n_extras; k++)
			if (s->want_extra[k])
				return true;
		return false;
	}
	i = ar_extra_index(s->m, path, &tail);
	return i >= 0 && s->want_extra[i];
}

/* A file of ours whose content is in a base's archive. */
static int write_file(extractor *x, long pos, dgm_error *err)
{
	const dgm_archive_entry *me = &x->s->m->entries[pos];
	const char *name;
	int dfd = open_parent(x, me->path, &name, err), rc;

	if (dfd < 0)
		return -1;
	rc = x->s->same && x->s->same[pos] ? copy_current(x, dfd, name, me, err) : 1;
	if (rc == 1)
		rc = put_file(x, dfd, name, me, err);
	close(dfd);
	return rc;
}

static int write_entry(extractor *x, struct archive_entry *e, long pos, dgm_error *err)
{
	const dgm_archive_entry *me = &x->s->m->entries[pos];
	const char *name;
	int dfd = open_parent(x, me->path, &name, err), rc = -1;

	if (dfd < 0)
		return -1;
	switch (me->type) {
	case DGM_ARCHIVE_DIR:
		rc = put_dir(x, dfd, name, pos, err);
		break;
	case DGM_ARCHIVE_SYMLINK:
		rc = put_symlink(x, dfd, name, e, me, err);
		break;
	case DGM_ARCHIVE_FILE:
		rc = x->s->same && x->s->same[pos] ? copy_current(x, dfd, name, me, err) : 1;
		if (rc == 1)
			rc = put_file(x, dfd, name, me, err);
		break;
	}
	close(dfd);
	return rc;
}

static int extract_entry(extractor *x, struct archive_entry *e, dgm_error *err)
{
	long pos;

	if (ar_check_next(&pos, e, x->s->m, x->seen, err))
		return -1;
	/* what is not written is still read through, and so hashed */
	if (!wanted(x->s, x->s->m->entries[pos].path))
		return 0;
	return write_entry(x, e, pos, err);
}

/* Deepest first (reverse archive order: parents come before children),
 * so a folder's mtime is the last change in it and a read-only folder
 * is made so after its content. */
static int fix_dirs(extractor *x, dgm_error *err)
{
	for (size_t k = x->n_dirs; k-- > 0;) {
		const dgm_archive_entry *me = &x->s->m->entries[x->dirs[k]];
		const char *name;
		int dfd = open_parent(x, me->path, &name, err), fd, rc;

		if (dfd < 0)
			return -1;
		fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		close(dfd);
		if (fd < 0)
			return io_fail("open folder", me->path, err);
		rc = ar_set_meta(fd, me->path, &x->s->owner, me->mode, me->mtime, err);
		close(fd);
		if (rc)
			return -1;
	}
	return 0;
}

static int extract_all(extractor *x, dgm_error *err)
{
	struct archive_entry *e;
	int rc;

	while ((rc = ar_reader_next(&x->r, &e, err)) == 1)
		if (extract_entry(x, e, err))
			return -1;
	return rc < 0 ? -1 : 0;
}

/* A base's entry, checked against the base's own manifest (every check
 * of extract_entry); written only when it holds a file of ours. */
static int base_entry(extractor *x, const ar_base *b, struct archive_entry *e,
		      unsigned char *seen, dgm_error *err)
{
	long pos, ours;

	if (ar_check_next(&pos, e, &b->m, seen, err))
		return -1;
	ours = b->ours[pos];
	if (ours < 0 || !wanted(x->s, x->s->m->entries[ours].path))
		return 0;
	return write_file(x, ours, err);
}

/* Into the folders our own archive made: the files base b holds. */
static int extract_base(extractor *x, const ar_base *b, dgm_error *err)
{
	unsigned char *seen = dgm_xcalloc(b->m.n_entries + 1, 1);
	struct archive_entry *e;
	int rc = -1;

	ar_reader_close(&x->r);
	if (ar_reader_open(&x->r, b->path, err))
		goto out;
	while ((rc = ar_reader_next(&x->r, &e, err)) == 1)
		if (base_entry(x, b, e, seen, err))
			goto out;
	if (rc == 0)
		rc = ar_all_seen(&b->m, seen, err) || ar_reader_finish(&x->r, &b->m, err) ? -1 : 0;
out:
	if (rc)
		ar_chain_prefix(b, err);
	free(seen);
	return rc ? -1 : 0;
}

static int extract_chain(extractor *x, dgm_error *err)
{
	for (size_t i = 0; x->s->chain && i < x->s->chain->n; i++)
		if (extract_base(x, &x->s->chain->bases[i], err))
			return -1;
	return 0;
}

int ar_extract(ar_stage *s, dgm_error *err)
{
	extractor x = { .s = s, .root = -1, .out = -1 };
	int ret = -1;

	x.r.fd = -1;
	x.seen = dgm_xcalloc(s->m->n_entries + 1, 1);
	x.root = open(s->dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (x.root < 0) {
		io_fail("open the staging folder", s->dir, err);
		goto out;
	}
	if (ar_reader_open(&x.r, s->archive, err))
		goto out;
	/* folders get their modes and mtimes once the bases' files are in */
	if (extract_all(&x, err) || ar_all_seen(s->m, x.seen, err) ||
	    ar_reader_finish(&x.r, s->m, err) || extract_chain(&x, err) || fix_dirs(&x, err))
		goto out;
	ret = 0;
out:
	if (x.root >= 0)
		close(x.root);
	ar_reader_close(&x.r);
	free(x.dirs);
	free(x.seen);
	return ret;
}
