/* extract.c - the archive into a staging folder, refusing anything that
 * could land outside it.
 *
 * Three fences, each enough on its own: every path is checked here
 * before libarchive sees it (relative, normalized, under store/ or
 * extra/, every parent an already extracted folder of the manifest,
 * never a symlink); libarchive's archive_write_disk runs with
 * SECURE_SYMLINKS and SECURE_NODOTDOT; and what reaches the disk is a
 * fresh entry holding only the name, type, mode, mtime, owner, size and
 * link target the manifest agrees with - no hard links, devices,
 * xattrs, ACLs or file flags. A refused entry fails the whole restore.
 *
 * libarchive gets the checked relative path under the staging folder's
 * real path (no symlink in it, so SECURE_SYMLINKS, which checks every
 * component, has nothing to trip on above the staging folder). That
 * path is absolute by construction, so SECURE_NOABSOLUTEPATHS cannot be
 * set; the archive's own path was refused if absolute, above. The other
 * way - chdir into the staging folder - would change the working folder
 * of the whole process while other threads run (the snapshot archives
 * while pg_dump runs). */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "archive_int.h"
#include "dgm/buf.h"

typedef struct extractor {
	ar_stage *s;
	struct archive *disk;
	struct archive_entry *out;
	ar_reader r;
	unsigned char *seen;
	dgm_buf root;             /* the staging folder's real path + "/" */
	size_t root_len;
} extractor;

/* Where an (already checked) archive path goes on disk. */
static const char *disk_path(extractor *x, const char *path)
{
	x->root.len = x->root_len;
	dgm_buf_puts(&x->root, path);
	return x->root.ptr;
}

static int disk_fail(extractor *x, const char *path, dgm_error *err)
{
	char show[AR_SHOW_MAX];

	return dgm_error_set(err, DGM_E_ARCHIVE, "cannot extract '%s': %s",
			     ar_show(show, sizeof(show), path), archive_error_string(x->disk) ?
			     archive_error_string(x->disk) : "unknown error");
}

static int to_disk(const void *data, size_t len, void *vx, dgm_error *err)
{
	extractor *x = vx;

	if (archive_write_data(x->disk, data, len) != (la_ssize_t)len)
		return disk_fail(x, archive_entry_pathname(x->out) + x->root_len, err);
	ar_progress_add(x->s->progress, (long long)len);
	return 0;
}

static void fresh_entry(struct archive_entry *out, const char *path, struct archive_entry *in,
			const dgm_archive_entry *me)
{
	archive_entry_clear(out);
	archive_entry_set_pathname(out, path);
	archive_entry_set_perm(out, me->mode);
	archive_entry_set_mtime(out, (time_t)me->mtime, 0);
	archive_entry_set_uid(out, archive_entry_uid(in));
	archive_entry_set_gid(out, archive_entry_gid(in));
	switch (me->type) {
	case DGM_ARCHIVE_FILE:
		archive_entry_set_filetype(out, AE_IFREG);
		archive_entry_set_size(out, me->size);
		break;
	case DGM_ARCHIVE_DIR:
		archive_entry_set_filetype(out, AE_IFDIR);
		break;
	case DGM_ARCHIVE_SYMLINK:
		archive_entry_set_filetype(out, AE_IFLNK);
		archive_entry_set_symlink(out, archive_entry_symlink(in));
		break;
	}
}

static bool in_store(const char *path)
{
	size_t n = strlen(AR_STORE);

	return !strncmp(path, AR_STORE, n) && (path[n] == '\0' || path[n] == '/');
}

/* An unchanged file from the current store into its folder, which
 * libarchive has just created. 1: it changed, extract it. */
static int copy_current(extractor *x, const dgm_archive_entry *me, dgm_error *err)
{
	ar_stage *s = x->s;
	char *src = dgm_xasprintf("%s%s", s->current, me->path + strlen(AR_STORE));
	int rc = ar_copy_file(src, disk_path(x, me->path), me, s->buf, err);

	if (rc == 0) {
		s->files_copied++;
		s->bytes_copied += me->size;
		ar_progress_add(s->progress, me->size);
	}
	free(src);
	return rc;
}

static int extract_entry(extractor *x, struct archive_entry *e, dgm_error *err)
{
	const dgm_archive_manifest *m = x->s->m;
	const dgm_archive_entry *me;
	char sha[65];
	long long len;
	long pos;

	if (ar_path_check(archive_entry_pathname(e), m, x->seen, err) ||
	    ar_header_check(&pos, e, m, x->seen, err))
		return -1;
	x->seen[pos] = 1;
	me = &m->entries[pos];
	/* what is not written is still read through, and so hashed */
	if (x->s->skip_store && in_store(me->path))
		return 0;
	if (x->s->same && x->s->same[pos]) {
		int rc = copy_current(x, me, err);

		if (rc <= 0)
			return rc;
	}
	fresh_entry(x->out, disk_path(x, me->path), e, me);
	if (archive_write_header(x->disk, x->out) != ARCHIVE_OK)
		return disk_fail(x, me->path, err);
	if (me->type == DGM_ARCHIVE_FILE) {
		if (ar_reader_content(&x->r, sha, &len, to_disk, x, err) ||
		    ar_content_check(me, sha, len, err))
			return -1;
		x->s->files++;
		x->s->bytes += len;
	}
	if (archive_write_finish_entry(x->disk) != ARCHIVE_OK)
		return disk_fail(x, me->path, err);
	return 0;
}

static int open_disk(extractor *x, dgm_error *err)
{
	int flags = ARCHIVE_EXTRACT_SECURE_SYMLINKS | ARCHIVE_EXTRACT_SECURE_NODOTDOT |
		    ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_TIME;

	/* like tar: owners come back only when we may set them */
	if (geteuid() == 0)
		flags |= ARCHIVE_EXTRACT_OWNER;
	x->disk = archive_write_disk_new();
	x->out = archive_entry_new();
	if (!x->disk || !x->out || archive_write_disk_set_options(x->disk, flags) != ARCHIVE_OK)
		return dgm_error_set(err, DGM_E_NOMEM, "cannot start libarchive");
	return 0;
}

static int extract_all(extractor *x, dgm_error *err)
{
	struct archive_entry *e;
	int rc;

	while ((rc = ar_reader_next(&x->r, &e, err)) == 1)
		if (extract_entry(x, e, err))
			return -1;
	if (rc < 0)
		return -1;
	/* folders get their modes and mtimes now, after their content */
	if (archive_write_close(x->disk) != ARCHIVE_OK)
		return disk_fail(x, x->s->dir, err);
	return 0;
}

static int open_root(extractor *x, dgm_error *err)
{
	char *real = realpath(x->s->dir, NULL);

	if (!real)
		return dgm_error_errno(err, DGM_E_IO, "cannot resolve '%s'", x->s->dir);
	dgm_buf_puts(&x->root, real);
	dgm_buf_putc(&x->root, '/');
	x->root_len = x->root.len;
	free(real);
	return 0;
}

int ar_extract(ar_stage *s, dgm_error *err)
{
	extractor x = { .s = s, .root = DGM_BUF_INIT };
	int ret = -1;

	x.r.fd = -1;
	x.seen = dgm_xcalloc(s->m->n_entries + 1, 1);
	if (open_root(&x, err) || open_disk(&x, err) || ar_reader_open(&x.r, s->archive, err))
		goto out;
	if (extract_all(&x, err) || ar_all_seen(s->m, x.seen, err) ||
	    ar_reader_finish(&x.r, s->m, err))
		goto out;
	ret = 0;
out:
	/* frees libarchive's pending folder fixes too, on failure */
	if (x.disk)
		archive_write_free(x.disk);
	archive_entry_free(x.out);
	ar_reader_close(&x.r);
	dgm_buf_free(&x.root);
	free(x.seen);
	return ret;
}
