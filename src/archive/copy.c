/* copy.c - copies that keep modes and mtimes, owned by the owner of
 * what a restore replaces, and a removal by file descriptors that gets
 * through read-only folders and any depth. Copies, never hard links:
 * the store a restore replaces must stay exactly as it was. */
#include <dirent.h>
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

void ar_owner_of(ar_owner *o, const char *path)
{
	struct stat st;

	memset(o, 0, sizeof(*o));
	if (geteuid() != 0 || stat(path, &st) != 0)
		return;
	o->set = true;
	o->uid = st.st_uid;
	o->gid = st.st_gid;
}

int ar_set_meta(int fd, const char *show, const ar_owner *o, unsigned mode, long long mtime,
		dgm_error *err)
{
	struct timespec ts[2] = { { (time_t)mtime, 0 }, { (time_t)mtime, 0 } };
	char s[AR_SHOW_MAX];

	ar_show(s, sizeof(s), show);
	if (o->set && fchown(fd, o->uid, o->gid) != 0)
		return dgm_error_errno(err, DGM_E_IO, "cannot set the owner of '%s'", s);
	if (fchmod(fd, mode & AR_MODE_BITS) != 0 || futimens(fd, ts) != 0)
		return dgm_error_errno(err, DGM_E_IO, "cannot set the mode and mtime of '%s'", s);
	return 0;
}

int ar_copy_file(const char *src, int dfd, const char *name, const dgm_archive_entry *me,
		 const ar_owner *o, unsigned char *buf, dgm_error *err)
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
	out = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (out < 0) {
		dgm_error_errno(err, DGM_E_IO, "cannot create '%s'", me->path);
		goto out;
	}
	created = true;
	sha = ar_sha_new();
	if (copy_data(in, out, buf, sha, &total, src, me->path, err))
		goto out;
	ar_sha_final(sha, hex);
	sha = NULL;
	if (total != me->size || strcmp(hex, me->sha256)) {
		ret = 1; /* changed since it was compared */
		goto out;
	}
	if (ar_set_meta(out, me->path, o, me->mode, me->mtime, err))
		goto out;
	ret = close(out) == 0 ? 0 : dgm_error_errno(err, DGM_E_IO, "cannot write '%s'", me->path);
	out = -1;
out:
	if (sha)
		EVP_MD_CTX_free(sha);
	if (in >= 0)
		close(in);
	if (out >= 0)
		close(out);
	if (ret && created)
		unlinkat(dfd, name, 0);
	return ret;
}

typedef struct dir_fix {
	char *path;
	struct stat st;
} dir_fix;

typedef struct tree_copy {
	const ar_owner *o;
	unsigned char *buf;
	dir_fix *dirs;
	size_t n_dirs;
} tree_copy;

static int copy_symlink(const char *src, const char *dst, const struct stat *st,
			const ar_owner *o, dgm_error *err)
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
	if ((o->set && lchown(dst, o->uid, o->gid) != 0) ||
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
			const ar_owner *o, unsigned char *buf, dgm_error *err)
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
	    ar_set_meta(out, dst, o, st->st_mode & 07777, st->st_mtime, err))
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
		return copy_symlink(fs, dst, st, c->o, err);
	if (S_ISREG(st->st_mode))
		return copy_regular(fs, dst, st, c->o, c->buf, err);
	return dgm_error_set(err, DGM_E_ARCHIVE, "cannot copy '%s': not a file, folder or symlink",
			     fs);
}

static int fix_dir(const dir_fix *d, const ar_owner *o, dgm_error *err)
{
	int fd = open(d->path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	int ret;

	if (fd < 0)
		return dgm_error_errno(err, DGM_E_IO, "cannot open folder '%s'", d->path);
	ret = ar_set_meta(fd, d->path, o, d->st.st_mode & 07777, d->st.st_mtime, err);
	close(fd);
	return ret;
}

int ar_copy_tree(const char *src, const char *dst, const ar_owner *o, dgm_error *err)
{
	tree_copy c = { o, dgm_xmalloc(DGM_ARCHIVE_BLOCK), NULL, 0 };
	int ret = ar_walk(src, dst, copy_one, &c, err);

	/* deepest first, so setting a folder's mtime is the last change in it */
	for (size_t i = c.n_dirs; i-- > 0;) {
		if (!ret)
			ret = fix_dir(&c.dirs[i], o, err);
		free(c.dirs[i].path);
	}
	free(c.dirs);
	free(c.buf);
	return ret;
}

/* One folder on the way down: its subfolders still to remove, and who
 * it is, to check the way back up (".." is opened, not a path). */
typedef struct rm_level {
	char *name;               /* in its parent */
	char **subdirs;
	size_t n, next;
	dev_t dev;
	ino_t ino;
} rm_level;

/* Open a folder to empty it, making it readable and writable first
 * when it is not (our own staging: nobody else writes there). */
static int open_dir_at(int pfd, const char *name)
{
	int fd = openat(pfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;

	if (fd < 0 && errno == EACCES && fchmodat(pfd, name, 0700, 0) == 0)
		fd = openat(pfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd >= 0 && fstat(fd, &st) == 0 && (st.st_mode & 0700) != 0700)
		fchmod(fd, (st.st_mode & 07777) | 0700);
	return fd;
}

/* Unlink everything in fd but folders, which go to lv->subdirs. */
static int empty_level(int fd, rm_level *lv, const char *show, dgm_error *err)
{
	int dfd = dup(fd);
	DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
	struct dirent *de;
	struct stat st;
	size_t cap = 0;
	int ret = 0;

	if (!d) {
		if (dfd >= 0)
			close(dfd);
		return dgm_error_errno(err, DGM_E_IO, "cannot read a folder below '%s'", show);
	}
	if (fstat(fd, &st) == 0) {
		lv->dev = st.st_dev;
		lv->ino = st.st_ino;
	}
	while (!ret && (errno = 0, de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
			ret = errno == ENOENT ? 0 : -1;
		else if (!S_ISDIR(st.st_mode))
			ret = unlinkat(fd, de->d_name, 0) == 0 || errno == ENOENT ? 0 : -1;
		else {
			if (lv->n == cap) {
				cap = cap ? 2 * cap : 8;
				lv->subdirs = dgm_xrealloc(lv->subdirs, cap * sizeof(*lv->subdirs));
			}
			lv->subdirs[lv->n++] = dgm_xstrdup(de->d_name);
		}
	}
	if (!ret && errno)
		ret = -1;
	closedir(d);
	return ret ? dgm_error_errno(err, DGM_E_IO, "cannot remove what is below '%s'", show) : 0;
}

static void free_level(rm_level *lv)
{
	for (size_t i = 0; i < lv->n; i++)
		free(lv->subdirs[i]);
	free(lv->subdirs);
	free(lv->name);
	memset(lv, 0, sizeof(*lv));
}

/* Back to the parent by "..", checked to be the folder we came from. */
static int go_up(int *cur, const rm_level *parent, const char *show, dgm_error *err)
{
	int up = openat(*cur, "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct stat st;

	if (up < 0 || fstat(up, &st) != 0 || st.st_dev != parent->dev || st.st_ino != parent->ino) {
		if (up >= 0)
			close(up);
		return dgm_error_set(err, DGM_E_IO, "cannot remove '%s': a folder moved while it "
				     "was removed", show);
	}
	close(*cur);
	*cur = up;
	return 0;
}

/* Depth first with one folder open at a time, so no depth is too deep
 * (neither for PATH_MAX nor for the number of open files). */
static int remove_dir_at(int pfd, const char *name, const char *show, dgm_error *err)
{
	rm_level *st = dgm_xcalloc(1, sizeof(*st));
	size_t depth = 1, cap = 1;
	int cur = open_dir_at(pfd, name), ret = -1;

	if (cur < 0)
		return errno == ENOENT ? 0 : dgm_error_errno(err, DGM_E_IO, "cannot remove '%s'", show);
	st[0].name = dgm_xstrdup(name);
	if (empty_level(cur, &st[0], show, err))
		goto out;
	while (depth) {
		rm_level *lv = &st[depth - 1];

		if (lv->next < lv->n) {
			const char *child = lv->subdirs[lv->next++];
			int fd = open_dir_at(cur, child);

			if (fd < 0 && errno == ENOENT)
				continue;
			if (fd < 0) {
				dgm_error_errno(err, DGM_E_IO, "cannot remove a folder below '%s'", show);
				goto out;
			}
			close(cur);
			cur = fd;
			if (depth == cap) {
				st = dgm_xrealloc(st, 2 * cap * sizeof(*st));
				memset(st + cap, 0, cap * sizeof(*st));
				cap *= 2;
			}
			st[depth].name = dgm_xstrdup(child);
			if (empty_level(cur, &st[depth++], show, err))
				goto out;
			continue;
		}
		if (depth == 1)
			break;
		if (go_up(&cur, &st[depth - 2], show, err))
			goto out;
		if (unlinkat(cur, lv->name, AT_REMOVEDIR) != 0 && errno != ENOENT) {
			dgm_error_errno(err, DGM_E_IO, "cannot remove a folder below '%s'", show);
			goto out;
		}
		free_level(lv);
		depth--;
	}
	close(cur);
	cur = -1;
	if (unlinkat(pfd, name, AT_REMOVEDIR) != 0 && errno != ENOENT) {
		dgm_error_errno(err, DGM_E_IO, "cannot remove '%s'", show);
		goto out;
	}
	ret = 0;
out:
	if (cur >= 0)
		close(cur);
	for (size_t i = 0; i < cap; i++)
		free_level(&st[i]);
	free(st);
	return ret;
}

int ar_remove_tree(const char *path, dgm_error *err)
{
	char *parent = ar_dirname(path), *base = ar_basename(path);
	int pfd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC), ret = -1;
	struct stat st;

	if (pfd < 0) {
		ret = errno == ENOENT ? 0 : dgm_error_errno(err, DGM_E_IO, "cannot remove '%s'", path);
		goto out;
	}
	if (fstatat(pfd, base, &st, AT_SYMLINK_NOFOLLOW) != 0)
		ret = errno == ENOENT ? 0 : dgm_error_errno(err, DGM_E_IO, "cannot stat '%s'", path);
	else if (!S_ISDIR(st.st_mode))
		ret = unlinkat(pfd, base, 0) == 0 || errno == ENOENT ? 0 :
		      dgm_error_errno(err, DGM_E_IO, "cannot remove '%s'", path);
	else
		ret = remove_dir_at(pfd, base, path, err);
	if (ret == 0 && fsync(pfd) != 0)
		ret = dgm_error_errno(err, DGM_E_IO, "cannot flush folder '%s'", parent);
out:
	if (pfd >= 0)
		close(pfd);
	free(parent);
	free(base);
	return ret;
}
