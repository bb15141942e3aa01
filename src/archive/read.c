/* read.c - reading an archive while hashing every byte of the file, and
 * the checks each entry must pass against the manifest (shared by
 * verify and restore). */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "archive_int.h"
#include "dgm/buf.h"

/* libarchive's input callback: every byte of the file passes through
 * the hash, in order, exactly once (there is no skip or seek callback,
 * so libarchive reads through what it skips). */
static la_ssize_t in_read(struct archive *a, void *vr, const void **buf)
{
	ar_reader *r = vr;

	for (;;) {
		ssize_t n = read(r->fd, r->in, DGM_ARCHIVE_BLOCK);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r->io_errno = errno;
			archive_set_error(a, errno, "read error");
			return -1;
		}
		ar_sha_update(r->sha, r->in, (size_t)n);
		r->bytes += n;
		*buf = r->in;
		return n;
	}
}

static int reader_fail(ar_reader *r, dgm_error *err)
{
	if (r->io_errno) {
		errno = r->io_errno;
		return dgm_error_errno(err, DGM_E_IO, "cannot read archive '%s'", r->path);
	}
	return dgm_error_set(err, DGM_E_ARCHIVE, "archive '%s' is damaged: %s", r->path,
			     archive_error_string(r->a) ? archive_error_string(r->a) : "unknown error");
}

int ar_reader_open(ar_reader *r, const char *path, dgm_error *err)
{
	memset(r, 0, sizeof(*r));
	r->path = path;
	r->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (r->fd < 0)
		return dgm_error_errno(err, DGM_E_IO, "cannot open archive '%s'", path);
	r->in = dgm_xmalloc(DGM_ARCHIVE_BLOCK);
	r->data = dgm_xmalloc(DGM_ARCHIVE_BLOCK);
	r->sha = ar_sha_new();
	r->a = archive_read_new();
	if (!r->a)
		return dgm_error_set(err, DGM_E_NOMEM, "cannot start libarchive");
	/* tar only (what we write): no other format's parser is exposed */
	archive_read_support_format_tar(r->a);
	archive_read_support_filter_zstd(r->a);
	if (archive_read_open(r->a, r, NULL, in_read, NULL) != ARCHIVE_OK)
		return reader_fail(r, err);
	return 0;
}

/* tar stores folders as "name/": back to the name we archived */
static void strip_dir_slash(struct archive_entry *e)
{
	const char *path = archive_entry_pathname(e);
	size_t n = path ? strlen(path) : 0;

	if (archive_entry_filetype(e) == AE_IFDIR && n > 1 && path[n - 1] == '/') {
		char *name = dgm_xstrndup(path, n - 1);

		archive_entry_copy_pathname(e, name);
		free(name);
	}
}

int ar_reader_next(ar_reader *r, struct archive_entry **e, dgm_error *err)
{
	int rc = archive_read_next_header(r->a, e);

	if (rc == ARCHIVE_EOF)
		return 0;
	/* a warning means something was not read as written: not ours */
	if (rc != ARCHIVE_OK)
		return reader_fail(r, err);
	strip_dir_slash(*e);
	return 1;
}

int ar_reader_content(ar_reader *r, char sha[65], long long *len, ar_sink_fn sink,
		      void *payload, dgm_error *err)
{
	EVP_MD_CTX *c = ar_sha_new();
	int ret = -1;

	*len = 0;
	for (;;) {
		la_ssize_t n = archive_read_data(r->a, r->data, DGM_ARCHIVE_BLOCK);

		if (n < 0) {
			reader_fail(r, err);
			goto out;
		}
		if (n == 0)
			break;
		ar_sha_update(c, r->data, (size_t)n);
		*len += n;
		if (sink && sink(r->data, (size_t)n, payload, err))
			goto out;
	}
	ret = 0;
out:
	ar_sha_final(c, sha);
	return ret;
}

int ar_reader_finish(ar_reader *r, const dgm_archive_manifest *m, dgm_error *err)
{
	char sha[65];

	/* libarchive stops at the end-of-archive blocks; whatever follows
	 * is part of the file, and of its hash, too */
	for (;;) {
		ssize_t n = read(r->fd, r->in, DGM_ARCHIVE_BLOCK);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return dgm_error_errno(err, DGM_E_IO, "cannot read archive '%s'", r->path);
		if (n == 0)
			break;
		ar_sha_update(r->sha, r->in, (size_t)n);
		r->bytes += n;
	}
	ar_sha_final(r->sha, sha);
	r->sha = NULL;
	if (r->bytes != m->archive_bytes)
		return dgm_error_set(err, DGM_E_ARCHIVE, "the archive file has %lld bytes, not %lld",
				     r->bytes, m->archive_bytes);
	if (strcmp(sha, m->archive_sha256))
		return dgm_error_set(err, DGM_E_ARCHIVE, "the archive file's sha256 differs");
	return 0;
}

void ar_reader_close(ar_reader *r)
{
	if (r->a)
		archive_read_free(r->a);
	if (r->sha)
		EVP_MD_CTX_free(r->sha);
	if (r->fd >= 0)
		close(r->fd);
	free(r->in);
	free(r->data);
	memset(r, 0, sizeof(*r));
	r->fd = -1;
}

static bool is_top(const char *path, size_t n)
{
	return (n == strlen(AR_STORE) && !strncmp(path, AR_STORE, n)) ||
	       (n == strlen(AR_EXTRA) && !strncmp(path, AR_EXTRA, n));
}

/* Why a path is not a safe, normalized relative path under store/ or
 * extra/, or NULL. */
static const char *path_problem(const char *path)
{
	if (!*path)
		return "an empty path";
	if (*path == '/')
		return "an absolute path";
	for (const char *s = path;; s += strcspn(s, "/") + 1) {
		size_t n = strcspn(s, "/");

		if (n == 0)
			return "an empty path component";
		if (n == 1 && s[0] == '.')
			return "a '.' component";
		if (n == 2 && s[0] == '.' && s[1] == '.')
			return "a '..' component";
		if (n > 255)
			return "a name longer than 255 bytes";
		if (!s[n])
			break;
	}
	if (!is_top(path, strcspn(path, "/")))
		return "a path outside " AR_STORE "/ and " AR_EXTRA "/";
	return NULL;
}

/* Every folder above path must be a folder of the manifest, already
 * seen: never a symlink, so nothing can be written through one. */
static int check_parents(const char *path, const dgm_archive_manifest *m,
			 const unsigned char *seen, dgm_error *err)
{
	char show[AR_SHOW_MAX], show2[AR_SHOW_MAX];
	const char *slash;
	int ret = 0;

	for (slash = strchr(path, '/'); slash && !ret; slash = strchr(slash + 1, '/')) {
		char *parent = dgm_xstrndup(path, (size_t)(slash - path));
		long pos = ar_manifest_pos(m, parent);

		ar_show(show, sizeof(show), path);
		ar_show(show2, sizeof(show2), parent);
		if (pos >= 0 && m->entries[pos].type == DGM_ARCHIVE_SYMLINK)
			ret = dgm_error_set(err, DGM_E_ARCHIVE, "refusing entry '%s': its path goes "
					    "through symlink '%s'", show, show2);
		else if (pos < 0 || m->entries[pos].type != DGM_ARCHIVE_DIR || !seen[pos])
			ret = dgm_error_set(err, DGM_E_ARCHIVE, "refusing entry '%s': its folder '%s' "
					    "does not come before it", show, show2);
		free(parent);
	}
	return ret;
}

int ar_path_check(const char *path, const dgm_archive_manifest *m, const unsigned char *seen,
		  dgm_error *err)
{
	char show[AR_SHOW_MAX];
	const char *why;

	if (!path)
		return dgm_error_set(err, DGM_E_ARCHIVE, "refusing an entry without a readable name");
	why = path_problem(path);
	if (why)
		return dgm_error_set(err, DGM_E_ARCHIVE, "refusing entry '%s': %s",
				     ar_show(show, sizeof(show), path), why);
	return check_parents(path, m, seen, err);
}

static int entry_type(dgm_archive_type *t, struct archive_entry *e, const char *show,
		      dgm_error *err)
{
	if (archive_entry_hardlink(e))
		return dgm_error_set(err, DGM_E_ARCHIVE, "'%s' is a hard link", show);
	switch (archive_entry_filetype(e)) {
	case AE_IFREG: *t = DGM_ARCHIVE_FILE; return 0;
	case AE_IFDIR: *t = DGM_ARCHIVE_DIR; return 0;
	case AE_IFLNK: *t = DGM_ARCHIVE_SYMLINK; return 0;
	}
	return dgm_error_set(err, DGM_E_ARCHIVE, "'%s' is not a file, folder or symlink", show);
}

static int link_check(struct archive_entry *e, const dgm_archive_entry *me, const char *show,
		      dgm_error *err)
{
	const char *target = archive_entry_symlink(e);
	char sha[65];

	if (!target)
		return dgm_error_set(err, DGM_E_ARCHIVE, "'%s' has no readable link target", show);
	ar_sha_buf(sha, target, strlen(target));
	if ((long long)strlen(target) != me->size || strcmp(sha, me->sha256))
		return dgm_error_set(err, DGM_E_ARCHIVE, "'%s' link target differs", show);
	return 0;
}

int ar_header_check(long *pos, struct archive_entry *e, const dgm_archive_manifest *m,
		    const unsigned char *seen, dgm_error *err)
{
	const char *path = archive_entry_pathname(e);
	char show[AR_SHOW_MAX];
	const dgm_archive_entry *me;
	dgm_archive_type t = DGM_ARCHIVE_FILE;

	if (!path)
		return dgm_error_set(err, DGM_E_ARCHIVE, "an entry has no readable name");
	ar_show(show, sizeof(show), path);
	if (entry_type(&t, e, show, err))
		return -1;
	*pos = ar_manifest_pos(m, path);
	if (*pos < 0)
		return dgm_error_set(err, DGM_E_ARCHIVE, "'%s' is not in the manifest", show);
	if (seen[*pos])
		return dgm_error_set(err, DGM_E_ARCHIVE, "'%s' appears twice", show);
	me = &m->entries[*pos];
	if (me->in)
		return dgm_error_set(err, DGM_E_ARCHIVE, "'%s' is in this archive, but the manifest "
				     "says snapshot '%s' holds it", show, me->in);
	if (t != me->type)
		return dgm_error_set(err, DGM_E_ARCHIVE, "'%s' is a %s, the manifest says %s", show,
				     ar_type_name(t), ar_type_name(me->type));
	if ((archive_entry_perm(e) & 07777) != me->mode)
		return dgm_error_set(err, DGM_E_ARCHIVE, "'%s' mode differs", show);
	if ((long long)archive_entry_mtime(e) != me->mtime)
		return dgm_error_set(err, DGM_E_ARCHIVE, "'%s' mtime differs", show);
	if (t == DGM_ARCHIVE_FILE && (long long)archive_entry_size(e) != me->size)
		return dgm_error_set(err, DGM_E_ARCHIVE, "'%s' size differs", show);
	return t == DGM_ARCHIVE_SYMLINK ? link_check(e, me, show, err) : 0;
}

int ar_content_check(const dgm_archive_entry *me, const char sha[65], long long len,
		     dgm_error *err)
{
	char show[AR_SHOW_MAX];

	ar_show(show, sizeof(show), me->path);
	if (len != me->size)
		return dgm_error_set(err, DGM_E_ARCHIVE, "'%s' size differs", show);
	if (strcmp(sha, me->sha256))
		return dgm_error_set(err, DGM_E_ARCHIVE, "'%s' sha256 differs", show);
	return 0;
}

int ar_all_seen(const dgm_archive_manifest *m, const unsigned char *seen, dgm_error *err)
{
	char show[AR_SHOW_MAX];

	for (size_t i = 0; i < m->n_entries; i++)
		if (!seen[i] && !m->entries[i].in)
			return dgm_error_set(err, DGM_E_ARCHIVE, "'%s' is missing from the archive",
					     ar_show(show, sizeof(show), m->entries[i].path));
	return 0;
}
