/* fs.c - durable writes, trees, checksums. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "dgm/buf.h"
#include "dgm/fs.h"

int dgm_fs_mkdir_p(const char *path, mode_t mode, dgm_error *err)
{
	char *p = dgm_xstrdup(path);
	int ret = 0;

	for (char *s = p + 1; ; s++) {
		if (*s && *s != '/')
			continue;
		char saved = *s;

		*s = '\0';
		if (mkdir(p, mode) != 0 && errno != EEXIST) {
			ret = dgm_error_errno(err, DGM_E_IO, "cannot create folder '%s'", p);
			break;
		}
		*s = saved;
		if (!saved)
			break;
	}
	free(p);
	return ret;
}

int dgm_fs_fsync_path(const char *path, dgm_error *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	int ret = 0;

	if (fd < 0)
		return dgm_error_errno(err, DGM_E_IO, "cannot open '%s' to flush it", path);
	if (fsync(fd) != 0 && errno != EINVAL)
		ret = dgm_error_errno(err, DGM_E_IO, "cannot flush '%s'", path);
	close(fd);
	return ret;
}

/* per thread: a snapshot walks trees on two threads at once */
static _Thread_local dgm_error *walk_err;

static int fsync_one(const char *path, const struct stat *st, int flag, struct FTW *f)
{
	if (flag == FTW_SL)
		return 0;
	return dgm_fs_fsync_path(path, walk_err) ? 1 : 0;
}

int dgm_fs_fsync_tree(const char *path, dgm_error *err)
{
	walk_err = err;
	/* FTW_DEPTH: files before their folder, so the folder's flush is last */
	if (nftw(path, fsync_one, 32, FTW_PHYS | FTW_DEPTH) != 0)
		return err && err->code ? -1 :
		       dgm_error_errno(err, DGM_E_IO, "cannot walk '%s'", path);
	return 0;
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *f)
{
	int rc = (flag == FTW_DP || flag == FTW_D) ? rmdir(path) : unlink(path);

	if (rc != 0 && errno != ENOENT) {
		dgm_error_errno(walk_err, DGM_E_IO, "cannot remove '%s'", path);
		return 1;
	}
	return 0;
}

int dgm_fs_remove_tree(const char *path, dgm_error *err)
{
	struct stat st;

	if (lstat(path, &st) != 0)
		return errno == ENOENT ? 0 : dgm_error_errno(err, DGM_E_IO, "cannot stat '%s'", path);
	if (!S_ISDIR(st.st_mode))
		return unlink(path) == 0 ? 0 : dgm_error_errno(err, DGM_E_IO, "cannot remove '%s'", path);
	walk_err = err;
	return nftw(path, remove_one, 32, FTW_PHYS | FTW_DEPTH) == 0 ? 0 : -1;
}

static int parent_of(char *dir, size_t len, const char *path)
{
	const char *slash = strrchr(path, '/');

	if (!slash)
		return snprintf(dir, len, ".") < 0 ? -1 : 0;
	if (slash == path)
		return snprintf(dir, len, "/") < 0 ? -1 : 0;
	return snprintf(dir, len, "%.*s", (int)(slash - path), path) < 0 ? -1 : 0;
}

int dgm_fs_write_atomic(const char *path, const void *data, size_t len, mode_t mode,
			dgm_error *err)
{
	char *tmp = dgm_xasprintf("%s.tmp", path);
	char dir[4096];
	const char *p = data;
	int fd, ret = -1;

	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0) {
		dgm_error_errno(err, DGM_E_IO, "cannot create '%s'", tmp);
		goto out;
	}
	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			dgm_error_errno(err, DGM_E_IO, "cannot write '%s'", tmp);
			goto out;
		}
		p += n;
		len -= (size_t)n;
	}
	if (fsync(fd) != 0) {
		dgm_error_errno(err, DGM_E_IO, "cannot flush '%s'", tmp);
		goto out;
	}
	close(fd);
	fd = -1;
	if (rename(tmp, path) != 0) {
		dgm_error_errno(err, DGM_E_IO, "cannot rename '%s' to '%s'", tmp, path);
		unlink(tmp);
		goto out;
	}
	parent_of(dir, sizeof(dir), path);
	ret = dgm_fs_fsync_path(dir, err);
out:
	if (fd >= 0) {
		close(fd);
		unlink(tmp);
	}
	free(tmp);
	return ret;
}

int dgm_fs_sha256_file(char out[65], long long *size, const char *path, dgm_error *err)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	EVP_MD_CTX *ctx = NULL;
	unsigned char *chunk = NULL;
	long long total = 0;
	int fd, ret = -1;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return dgm_error_errno(err, DGM_E_IO, "cannot open '%s'", path);
	chunk = dgm_xmalloc(1 << 20);
	ctx = EVP_MD_CTX_new();
	if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
		dgm_error_set(err, DGM_E_IO, "cannot start SHA-256");
		goto out;
	}
	for (;;) {
		ssize_t n = read(fd, chunk, 1 << 20);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			dgm_error_errno(err, DGM_E_IO, "cannot read '%s'", path);
			goto out;
		}
		if (n == 0)
			break;
		EVP_DigestUpdate(ctx, chunk, (size_t)n);
		total += n;
	}
	EVP_DigestFinal_ex(ctx, md, &mdlen);
	for (unsigned int i = 0; i < mdlen && i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
	if (size)
		*size = total;
	ret = 0;
out:
	EVP_MD_CTX_free(ctx);
	free(chunk);
	close(fd);
	return ret;
}

static _Thread_local long long tree_total;

static int add_size(const char *path, const struct stat *st, int flag, struct FTW *f)
{
	if (flag == FTW_F && S_ISREG(st->st_mode))
		tree_total += st->st_size;
	return 0;
}

long long dgm_fs_tree_size(const char *path)
{
	tree_total = 0;
	if (nftw(path, add_size, 32, FTW_PHYS) != 0)
		return -1;
	return tree_total;
}

long long dgm_fs_free_bytes(const char *path)
{
	char *p = dgm_xstrdup(path);
	struct statvfs sv;
	long long ret = -1;

	for (;;) {
		if (statvfs(p, &sv) == 0) {
			ret = (long long)sv.f_bavail * (long long)sv.f_frsize;
			break;
		}
		char *slash = strrchr(p, '/');

		if (!slash || slash == p)
			break;
		*slash = '\0';
	}
	free(p);
	return ret;
}
