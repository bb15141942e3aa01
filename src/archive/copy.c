/* copy.c - copies that keep modes, mtimes (and owners, as root), and a
 * removal that gets through read-only folders. Copies, never hard
 * links: the store a restore replaces must stay exactly as it was. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "archive_int.h"
#include "dgm/buf.h"
#include "dgm/fs.h"

static int write_all(int fd, const unsigned char *p, size_t len, const char *path,
		     dgm_error *err)
{
	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return dgm_error_errno(err, DGM_E_IO, "cannot write '%s'", path);
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* in -> out in blocks; the content's hash to sha when it is not NULL. */
static int copy_data(int in, int out, unsigned char *buf, EVP_MD_CTX *sha, long long *total,
		     const char *src, const char *dst, dgm_error *err)
{
	*total = 0;
	for (;;) {
		ssize_t n = read(in, buf, DGM_ARCHIVE_BLOCK);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return dgm_error_errno(err, DGM_E_IO, "cannot read '%s'", src);
		if (n == 0)
			return 0;
		if (sha)
			ar_sha_update(sha, buf, (size_t)n);
		if (write_all(out, buf, (size_t)n, dst, err))
			return -1;
		*total += n;
	}
}

/* Owner (as root; first, since chown clears set-id bits), mode, mtime. */
static int set_meta(int fd, const char *path, const struct stat *owner, unsigned mode,
		    long long mtime, dgm_error *err)
{
	struct timespec ts[2] = { { (time_t)mtime, 0 }, { (time_t)mtime, 0 } };

	if (geteuid() == 0 && fchown(fd, owner->st_uid, owner->st_gid) != 0)
		return dgm_error_errno(err, DGM_E_IO, "cannot set the owner of '%s'", path);
	if (fchmod(fd, mode) != 0 || futimens(fd, ts) != 0)
		return dgm_error_errno(err, DGM_E_IO, "cannot set the mode and mtime of '%s'", path);
	return 0;
}

int ar_copy_file(const char *src, const char *dst, const dgm_archive_entry *me,
		 unsigned char *buf, dgm_error *err)
{
	int in = open(src, O_RDONLY | O_NOFOLLOW | O_CLOEXEC), out = -1;
	EVP_MD_CTX *sha = NULL;
	bool created = false;
	struct stat st;
	long long total = 0;
	char hex[65];
	int ret = 1;

	/* what cannot be read now is simply extracted instead */
	if (in < 0 || fstat(in, &st) != 0 || !S_ISREG(st.st_mode))
		goto out;
	ret = -1;
	out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (out < 0) {
		dgm_error_errno(err, DGM_E_IO, "cannot create '%s'", dst);
		goto out;
	}
	created = true;
	sha = ar_sha_new();
	if (copy_data(in, out, buf, sha, &total, src, dst, err))
		goto out;
	ar_sha_final(sha, hex);
	sha = NULL;
	if (total != me->size || strcmp(hex, me->sha256)) {
		ret = 1; /* changed since it was compared */
		goto out;
	}
	if (set_meta(out, dst, &st, me->mode, me->mtime, err))
		goto out;
	ret = close(out) == 0 ? 0 : dgm_error_errno(err, DGM_E_IO, "cannot write '%s'", dst);
	out = -1;
out:
	if (sha)
		EVP_MD_CTX_free(sha);
	if (in >= 0)
		close(in);
	if (out >= 0)
		close(out);
	if (ret && created)
		unlink(dst);
	return ret;
}

typedef struct dir_fix {
	char *path;
	struct stat st;
} dir_fix;

typedef struct tree_copy {
	unsigned char *buf;
	dir_fix *dirs;
	size_t n_dirs;
} tree_copy;

static int copy_symlink(const char *src, const char *dst, const struct stat *st, dgm_error *err)
{
	struct timespec ts[2] = { { st->st_mtime, 0 }, { st->st_mtime, 0 } };
	char *target = dgm_xcalloc((size_t)st->st_size + 1, 1);
	ssize_t n = readlink(src, target, (size_t)st->st_size + 1);
	int ret = -1;

	if (n != st->st_size) {
		dgm_error_errno(err, DGM_E_IO, "cannot read symlink '%s'", src);
		goto out;
	}
	if (symlink(target, dst) != 0) {
		dgm_error_errno(err, DGM_E_IO, "cannot create symlink '%s'", dst);
		goto out;
	}
	if ((geteuid() == 0 && lchown(dst, st->st_uid, st->st_gid) != 0) ||
	    utimensat(AT_FDCWD, dst, ts, AT_SYMLINK_NOFOLLOW) != 0) {
		dgm_error_errno(err, DGM_E_IO, "cannot set the owner and mtime of '%s'", dst);
		goto out;
	}
	ret = 0;
out:
	free(target);
	return ret;
}

static int copy_regular(const char *src, const char *dst, const struct stat *st,
			unsigned char *buf, dgm_error *err)
{
	int in = open(src, O_RDONLY | O_NOFOLLOW | O_CLOEXEC), out = -1;
	long long total;
	int ret = -1;

	if (in < 0)
		return dgm_error_errno(err, DGM_E_IO, "cannot open '%s'", src);
	out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (out < 0) {
		dgm_error_errno(err, DGM_E_IO, "cannot create '%s'", dst);
		goto out;
	}
	if (copy_data(in, out, buf, NULL, &total, src, dst, err) ||
	    set_meta(out, dst, st, st->st_mode & 07777, st->st_mtime, err))
		goto out;
	ret = 0;
out:
	close(in);
	if (out >= 0 && close(out) != 0 && !ret)
		ret = dgm_error_errno(err, DGM_E_IO, "cannot write '%s'", dst);
	return ret;
}

/* The walk's "archive path" is the destination path (aroot = dst). */
static int copy_one(const char *fs, const char *dst, const struct stat *st, void *vc,
		    dgm_error *err)
{
	tree_copy *c = vc;

	if (S_ISDIR(st->st_mode)) {
		/* 0700 while it fills; its own mode and mtime once it is full */
		if (mkdir(dst, 0700) != 0)
			return dgm_error_errno(err, DGM_E_IO, "cannot create folder '%s'", dst);
		c->dirs = dgm_xrealloc(c->dirs, (c->n_dirs + 1) * sizeof(*c->dirs));
		c->dirs[c->n_dirs].path = dgm_xstrdup(dst);
		c->dirs[c->n_dirs++].st = *st;
		return 0;
	}
	if (S_ISLNK(st->st_mode))
		return copy_symlink(fs, dst, st, err);
	if (S_ISREG(st->st_mode))
		return copy_regular(fs, dst, st, c->buf, err);
	return dgm_error_set(err, DGM_E_ARCHIVE, "cannot copy '%s': not a file, folder or symlink",
			     fs);
}

static int fix_dir(const dir_fix *d, dgm_error *err)
{
	int fd = open(d->path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	int ret;

	if (fd < 0)
		return dgm_error_errno(err, DGM_E_IO, "cannot open folder '%s'", d->path);
	ret = set_meta(fd, d->path, &d->st, d->st.st_mode & 07777, d->st.st_mtime, err);
	close(fd);
	return ret;
}

int ar_copy_tree(const char *src, const char *dst, dgm_error *err)
{
	tree_copy c = { dgm_xmalloc(DGM_ARCHIVE_BLOCK), NULL, 0 };
	int ret = ar_walk(src, dst, copy_one, &c, err);

	/* deepest first, so setting a folder's mtime is the last change in it */
	for (size_t i = c.n_dirs; i-- > 0;) {
		if (!ret)
			ret = fix_dir(&c.dirs[i], err);
		free(c.dirs[i].path);
	}
	free(c.dirs);
	free(c.buf);
	return ret;
}

static int make_writable(const char *fs, const char *ap, const struct stat *st, void *unused,
			 dgm_error *err)
{
	if (S_ISDIR(st->st_mode) && (st->st_mode & 0700) != 0700 &&
	    chmod(fs, (st->st_mode & 07777) | 0700) != 0)
		return dgm_error_errno(err, DGM_E_IO, "cannot remove '%s'", fs);
	return 0;
}

int ar_remove_tree(const char *path, dgm_error *err)
{
	struct stat st;

	if (lstat(path, &st) != 0)
		return errno == ENOENT ? 0 : dgm_error_errno(err, DGM_E_IO, "cannot stat '%s'", path);
	/* the walk sees a folder before listing it: chmod it first */
	if (S_ISDIR(st.st_mode) && ar_walk(path, path, make_writable, NULL, err))
		return -1;
	return dgm_fs_remove_tree(path, err);
}
