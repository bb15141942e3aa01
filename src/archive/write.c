/* write.c - dgm_archive_create: the store (and extra paths) into a pax
 * tar compressed with zstd, hashed as it is written, made durable,
 * with its manifest. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "archive_int.h"
#include "dgm/clock.h"
#include "dgm/buf.h"
#include "dgm/fs.h"

typedef struct writer {
	struct archive *a;
	struct archive_entry *e;
	int fd;                   /* DEST.tmp */
	const char *tmp;
	EVP_MD_CTX *sha;          /* of the bytes written to fd */
	long long bytes;
	int io_errno;             /* set by the write callback */
	unsigned char *buf;       /* DGM_ARCHIVE_BLOCK: file content in transit */
	dgm_archive_manifest *m;
	ar_progress progress;
	long long start_ns;       /* when the archive was begun */
	const dgm_archive_manifest *base; /* a chain's base (NULL: full archive) */
	const char *base_id;
} writer;

/* libarchive's output callback: to the file, through the hash. */
static la_ssize_t out_write(struct archive *a, void *vw, const void *data, size_t len)
{
	writer *w = vw;
	const char *p = data;
	size_t left = len;

	while (left) {
		ssize_t n = write(w->fd, p, left);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			w->io_errno = errno;
			archive_set_error(a, errno, "cannot write '%s'", w->tmp);
			return -1;
		}
		p += n;
		left -= (size_t)n;
	}
	ar_sha_update(w->sha, data, len);
	w->bytes += (long long)len;
	return (la_ssize_t)len;
}

static int la_fail(writer *w, const char *what, const char *ap, dgm_error *err)
{
	char show[AR_SHOW_MAX];

	if (w->io_errno) {
		errno = w->io_errno;
		return dgm_error_errno(err, DGM_E_IO, "cannot write '%s'", w->tmp);
	}
	return dgm_error_set(err, DGM_E_ARCHIVE, "cannot %s '%s': %s", what,
			     ar_show(show, sizeof(show), ap), archive_error_string(w->a));
}

static int open_writer(writer *w, const dgm_archive_opts *o, dgm_error *err)
{
	char level[16], threads[16];

	snprintf(level, sizeof(level), "%d", o->level ? o->level : 3);
	snprintf(threads, sizeof(threads), "%d", o->threads);
	w->a = archive_write_new();
	w->e = archive_entry_new();
	if (!w->a || !w->e)
		return dgm_error_set(err, DGM_E_NOMEM, "cannot start libarchive");
	/* restricted pax: plain ustar headers unless a name or size needs
	 * more; hdrcharset=BINARY: names are bytes, whatever the locale */
	if (archive_write_set_format_pax_restricted(w->a) != ARCHIVE_OK ||
	    archive_write_set_format_option(w->a, "pax", "hdrcharset", "BINARY") != ARCHIVE_OK ||
	    archive_write_add_filter_zstd(w->a) != ARCHIVE_OK ||
	    archive_write_set_filter_option(w->a, "zstd", "compression-level", level) != ARCHIVE_OK)
		return dgm_error_set(err, DGM_E_ARCHIVE, "cannot set up pax + zstd (level %s): %s",
				     level, archive_error_string(w->a));
	if (o->threads &&
	    archive_write_set_filter_option(w->a, "zstd", "threads", threads) != ARCHIVE_OK)
		return dgm_error_set(err, DGM_E_ARCHIVE, "cannot use %s zstd threads: %s", threads,
				     archive_error_string(w->a));
	/* no padding of the last block: the file ends where zstd's frame does */
	archive_write_set_bytes_per_block(w->a, 64 * 1024);
	archive_write_set_bytes_in_last_block(w->a, 1);
	if (archive_write_open2(w->a, w, NULL, out_write, NULL, NULL) != ARCHIVE_OK)
		return la_fail(w, "start", w->tmp, err);
	return 0;
}

static void entry_basics(writer *w, const char *ap, const struct stat *st, dgm_archive_entry *me)
{
	archive_entry_clear(w->e);
	/* permission bits only: set-id and sticky bits are not kept, nor is
	 * write permission for everyone (a restore refuses all of them) */
	unsigned mode = st->st_mode & AR_MODE_BITS & (S_ISLNK(st->st_mode) ? 0777u : 0775u);

	archive_entry_set_pathname(w->e, ap);
	archive_entry_set_perm(w->e, mode);
	archive_entry_set_mtime(w->e, st->st_mtime, 0);
	archive_entry_set_uid(w->e, st->st_uid);
	archive_entry_set_gid(w->e, st->st_gid);
	memset(me, 0, sizeof(*me));
	me->path = (char *)ap;
	me->mode = mode;
	me->mtime = st->st_mtime;
}

static int put_header(writer *w, const char *ap, dgm_error *err)
{
	int rc = archive_write_header(w->a, w->e);

	/* a warning here means a name or value was stored differently than
	 * given: for a backup that is a failure */
	return rc == ARCHIVE_OK ? 0 : la_fail(w, "archive", ap, err);
}

static int put_symlink(writer *w, const char *fs, const char *ap, const struct stat *st,
		       dgm_archive_entry *me, dgm_error *err)
{
	size_t cap = (size_t)st->st_size + 1;
	char *target = NULL;
	ssize_t n;
	int ret = -1;

	for (;;) {
		target = dgm_xrealloc(target, cap);
		n = readlink(fs, target, cap);
		if (n < 0) {
			dgm_error_errno(err, DGM_E_IO, "cannot read symlink '%s'", fs);
			goto out;
		}
		if ((size_t)n < cap)
			break;
		cap *= 2;
	}
	target[n] = '\0';
	archive_entry_set_filetype(w->e, AE_IFLNK);
	archive_entry_set_symlink(w->e, target);
	me->type = DGM_ARCHIVE_SYMLINK;
	me->size = n;
	ar_sha_buf(me->sha256, target, (size_t)n);
	ret = put_header(w, ap, err);
out:
	free(target);
	return ret;
}

/* Stream one file in blocks. The size in the tar header is the one
 * lstat gave; a file that grows or shrinks meanwhile fails the archive
 * instead of being stored torn. */
static int put_content(writer *w, int fd, const char *fs, const char *ap,
		       dgm_archive_entry *me, dgm_error *err)
{
	EVP_MD_CTX *sha = ar_sha_new();
	long long total = 0;
	int ret = -1;

	for (;;) {
		ssize_t n = read(fd, w->buf, DGM_ARCHIVE_BLOCK);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			dgm_error_errno(err, DGM_E_IO, "cannot read '%s'", fs);
			goto out;
		}
		if (n == 0)
			break;
		if (total + n > me->size) {
			total = -1; /* it grew */
			break;
		}
		ar_sha_update(sha, w->buf, (size_t)n);
		if (archive_write_data(w->a, w->buf, (size_t)n) != n) {
			la_fail(w, "archive", ap, err);
			goto out;
		}
		total += n;
		ar_progress_add(&w->progress, n);
	}
	if (total != me->size) {
		dgm_error_set(err, DGM_E_ARCHIVE, "'%s' changed while it was archived", fs);
		dgm_error_hint(err, "stop what writes to the model store during the snapshot");
		goto out;
	}
	ret = 0;
out:
	ar_sha_final(sha, me->sha256);
	return ret;
}

static int put_file(writer *w, const char *fs, const char *ap, const struct stat *st,
		    dgm_archive_entry *me, dgm_error *err)
{
	struct stat fst;
	int fd = open(fs, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	int ret = -1;

	if (fd < 0)
		return dgm_error_errno(err, DGM_E_IO, "cannot open '%s'", fs);
	if (fstat(fd, &fst) != 0 || fst.st_ino != st->st_ino || fst.st_dev != st->st_dev) {
		dgm_error_set(err, DGM_E_ARCHIVE, "'%s' changed while it was archived", fs);
		goto out;
	}
	archive_entry_set_filetype(w->e, AE_IFREG);
	archive_entry_set_size(w->e, st->st_size);
	me->type = DGM_ARCHIVE_FILE;
	me->size = st->st_size;
	if (put_header(w, ap, err) || put_content(w, fd, fs, ap, me, err))
		goto out;
	w->m->content_bytes += me->size;
	ret = 0;
out:
	close(fd);
	return ret;
}

/* The identity a later snapshot compares (archive.h), unless either
 * time is too close to the start of this one to be trusted. */
static void set_stat(const writer *w, dgm_archive_entry *me, const struct stat *st)
{
	long long mns = dgm_timespec_ns(&st->st_mtim), cns = dgm_timespec_ns(&st->st_ctim);
	long long margin = mns % 1000000000LL || cns % 1000000000LL ? AR_RACY_NS :
			   AR_RACY_COARSE_NS;

	if (mns >= w->start_ns - margin || cns >= w->start_ns - margin)
		return;
	me->has_stat = true;
	me->dev = (long long)st->st_dev;
	me->ino = (long long)st->st_ino;
	me->mtime_ns = mns;
	me->ctime_ns = cns;
}

/* Name the base that holds id in the manifest (once), with what was
 * recorded of its archive: the base's own, or one of its bases'. */
static void add_base(writer *w, const char *id)
{
	dgm_archive_manifest *m = w->m;
	dgm_archive_base rec = { 0 };

	for (size_t i = 0; i < m->n_bases; i++)
		if (!strcmp(m->bases[i].id, id))
			return;
	if (!strcmp(id, w->base_id)) {
		memcpy(rec.archive_sha256, w->base->archive_sha256, sizeof(rec.archive_sha256));
		rec.archive_bytes = w->base->archive_bytes;
	}
	for (size_t i = 0; i < w->base->n_bases; i++)
		if (!strcmp(w->base->bases[i].id, id))
			rec = w->base->bases[i];
	rec.id = dgm_xstrdup(id);
	m->bases = dgm_xrealloc(m->bases, (m->n_bases + 1) * sizeof(*m->bases));
	m->bases[m->n_bases++] = rec;
}

/* A file unchanged since the base recorded it (size, mode, mtime,
 * inode, device, ctime: git's index test) is neither read nor archived:
 * its entry names the archive that holds it. */
static bool reuse(writer *w, const struct stat *st, dgm_archive_entry *me)
{
	const dgm_archive_entry *be = w->base ? dgm_archive_manifest_find(w->base, me->path) : NULL;

	if (!be || be->mode != me->mode || !ar_stat_unchanged(be, st))
		return false;
	me->type = DGM_ARCHIVE_FILE;
	me->size = be->size;
	memcpy(me->sha256, be->sha256, sizeof(me->sha256));
	me->in = be->in ? be->in : (char *)w->base_id;
	set_stat(w, me, st);
	add_base(w, me->in);
	w->m->content_bytes += me->size;
	ar_progress_add(&w->progress, me->size);
	return true;
}

static int put_one(const char *fs, const char *ap, const struct stat *st, void *vw,
		   dgm_error *err)
{
	writer *w = vw;
	dgm_archive_entry me;
	int ret;

	entry_basics(w, ap, st, &me);
	if (S_ISDIR(st->st_mode)) {
		archive_entry_set_filetype(w->e, AE_IFDIR);
		me.type = DGM_ARCHIVE_DIR;
		ret = put_header(w, ap, err);
	} else if (S_ISLNK(st->st_mode)) {
		ret = put_symlink(w, fs, ap, st, &me, err);
	} else if (S_ISREG(st->st_mode)) {
		ret = reuse(w, st, &me) ? 0 : put_file(w, fs, ap, st, &me, err);
		if (ret == 0 && !me.in)
			set_stat(w, &me, st);
	} else {
		ret = dgm_error_set(err, DGM_E_ARCHIVE, "cannot archive '%s': only files, folders "
				    "and symlinks can be", fs);
		dgm_error_hint(err, "move sockets, pipes and devices out of the model store");
	}
	if (!ret)
		dgm_archive_manifest_add(w->m, &me);
	return ret;
}

static int add_size(const char *fs, const char *ap, const struct stat *st, void *vtotal,
		    dgm_error *err)
{
	if (S_ISREG(st->st_mode))
		*(long long *)vtotal += st->st_size;
	return 0;
}

/* The synthetic folders "extra" and "extra/<i>" that hold extra paths;
 * mtime 0, so that the same files always make the same archive. */
static int put_extra_dir(writer *w, const char *ap, dgm_error *err)
{
	struct stat st = { .st_mode = S_IFDIR | 0700, .st_mtime = 0,
			   .st_uid = getuid(), .st_gid = getgid() };

	return put_one(NULL, ap, &st, w, err);
}

static int put_extras(writer *w, const dgm_archive_opts *o, dgm_error *err)
{
	if (o->n_extras && put_extra_dir(w, AR_EXTRA, err))
		return -1;
	for (size_t i = 0; i < o->n_extras; i++) {
		char *dir = dgm_xasprintf(AR_EXTRA "/%zu", i);
		char *base = ar_basename(o->extras[i]);
		char *ap = dgm_xasprintf("%s/%s", dir, base);
		int rc = put_extra_dir(w, dir, err) || ar_walk(o->extras[i], ap, put_one, w, err);

		free(dir);
		free(base);
		free(ap);
		if (rc)
			return -1;
	}
	return 0;
}

static int check_not_inside(const char *dest_dir, const char *src, dgm_error *err)
{
	char *real_src = realpath(src, NULL);
	size_t n = real_src ? strlen(real_src) : 0;
	int ret = 0;

	if (real_src && !strncmp(dest_dir, real_src, n) &&
	    (dest_dir[n] == '/' || dest_dir[n] == '\0' || n == 1)) {
		ret = dgm_error_set(err, DGM_E_ARCHIVE, "the archive would be written inside '%s', "
				    "which it archives", src);
		dgm_error_hint(err, "put snapshots outside the model store and the extra paths");
	}
	free(real_src);
	return ret;
}

static int check_source(const char *path, bool store, dgm_error *err)
{
	struct stat st;
	char *base;
	int ret = 0;

	if (stat(path, &st) != 0)
		return dgm_error_errno(err, DGM_E_IO, "cannot archive '%s'", path);
	if (store && !S_ISDIR(st.st_mode))
		return dgm_error_set(err, DGM_E_ARCHIVE, "the model store '%s' is not a folder", path);
	base = ar_basename(path);
	if (!strcmp(base, "/") || !strcmp(base, ".") || !strcmp(base, "..") || !*base)
		ret = dgm_error_set(err, DGM_E_ARCHIVE, "cannot archive '%s': name it by its "
				    "absolute path", path);
	free(base);
	return ret;
}

static int check_opts(const dgm_archive_opts *o, dgm_error *err)
{
	struct stat st;
	char *dir, *real_dir;
	int ret = -1;

	if (!o->dest || !*o->dest || !o->store || !*o->store)
		return dgm_error_set(err, DGM_E_ARCHIVE, "an archive needs a destination and a store");
	if (o->level < 0 || o->level > 22 || o->threads < 0 || o->threads > 64)
		return dgm_error_set(err, DGM_E_ARCHIVE, "zstd level %d or threads %d out of range "
				     "(level 1-22, threads 0-64)", o->level, o->threads);
	if (lstat(o->dest, &st) == 0) {
		dgm_error_set(err, DGM_E_ARCHIVE, "archive '%s' already exists", o->dest);
		dgm_error_hint(err, "archives are never overwritten: choose a new name");
		return -1;
	}
	dir = ar_dirname(o->dest);
	real_dir = realpath(dir, NULL);
	if (!real_dir) {
		dgm_error_errno(err, DGM_E_IO, "cannot use folder '%s' for the archive", dir);
		goto out;
	}
	if (check_source(o->store, true, err) || check_not_inside(real_dir, o->store, err))
		goto out;
	for (size_t i = 0; i < o->n_extras; i++)
		if (check_source(o->extras[i], false, err) ||
		    check_not_inside(real_dir, o->extras[i], err))
			goto out;
	ret = 0;
out:
	free(dir);
	free(real_dir);
	return ret;
}

static void start_manifest(dgm_archive_manifest *m, const dgm_archive_opts *o)
{
	memset(m, 0, sizeof(*m));
	m->created = (long long)time(NULL);
	m->store = dgm_xstrdup(o->store);
	m->extras = dgm_xcalloc(o->n_extras + 1, sizeof(*m->extras));
	for (size_t i = 0; i < o->n_extras; i++)
		m->extras[i] = dgm_xstrdup(o->extras[i]);
	m->n_extras = o->n_extras;
}

/* The first, quick walk: the bytes the progress counts up to. */
static int count_total(long long *total, const dgm_archive_opts *o, dgm_error *err)
{
	*total = 0;
	if (ar_walk(o->store, AR_STORE, add_size, total, err))
		return -1;
	for (size_t i = 0; i < o->n_extras; i++)
		if (ar_walk(o->extras[i], AR_EXTRA, add_size, total, err))
			return -1;
	return 0;
}

static int open_tmp(writer *w, dgm_error *err)
{
	w->fd = open(w->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (w->fd < 0)
		return dgm_error_errno(err, DGM_E_IO, "cannot create '%s'", w->tmp);
	/* a stale DEST.tmp keeps its mode through O_TRUNC */
	if (fchmod(w->fd, 0600) != 0)
		return dgm_error_errno(err, DGM_E_IO, "cannot set the mode of '%s'", w->tmp);
	return 0;
}

/* Everything into DEST.tmp, then flushed; the archive's hash and size
 * into the manifest. */
static int write_all(writer *w, const dgm_archive_opts *o, dgm_error *err)
{
	if (open_tmp(w, err) || open_writer(w, o, err))
		return -1;
	if (ar_walk(o->store, AR_STORE, put_one, w, err) || put_extras(w, o, err))
		return -1;
	if (archive_write_close(w->a) != ARCHIVE_OK)
		return la_fail(w, "finish", w->tmp, err);
	if (fsync(w->fd) != 0)
		return dgm_error_errno(err, DGM_E_IO, "cannot flush '%s'", w->tmp);
	ar_sha_final(w->sha, w->m->archive_sha256);
	w->sha = NULL;
	w->m->archive_bytes = w->bytes;
	return dgm_archive_manifest_index(w->m, err);
}

/* The manifest of the chain's base: of this store alone. */
static int load_base(dgm_archive_manifest *b, const dgm_archive_opts *o, dgm_error *err)
{
	char *path, *mpath;
	int ret;

	if (!ar_id_valid(o->base_id))
		return dgm_error_set(err, DGM_E_ARCHIVE, "'%s' is not a snapshot id", o->base_id);
	path = ar_base_path(o->dest, o->base_id);
	mpath = dgm_archive_manifest_path(path);
	ret = dgm_archive_manifest_read(b, mpath, err);
	if (!ret && (b->n_extras || o->n_extras || strcmp(b->store, o->store)))
		ret = dgm_error_set(err, DGM_E_ARCHIVE, "the archive of snapshot '%s' is not one of "
				    "the model store '%s' alone", o->base_id, o->store);
	/* a restore reads every archive of a chain through: bounded */
	else if (!ret && b->n_bases + 2 > DGM_ARCHIVE_CHAIN_MAX)
		ret = dgm_error_set(err, DGM_E_ARCHIVE, "snapshot '%s' reads from %zu archives "
				    "already (at most %d in a chain)", o->base_id, b->n_bases + 1,
				    DGM_ARCHIVE_CHAIN_MAX);
	free(path);
	free(mpath);
	return ret;
}

int dgm_archive_create(dgm_archive_manifest *out, const dgm_archive_opts *o, dgm_error *err)
{
	dgm_archive_manifest m, base;
	writer w = { .fd = -1, .m = &m };
	struct timespec now;
	char *mpath = NULL, *dir = NULL, *tmp = NULL;
	bool wrote_manifest = false, renamed = false;
	int ret = -1;

	memset(&m, 0, sizeof(m));
	memset(&base, 0, sizeof(base));
	clock_gettime(CLOCK_REALTIME, &now);
	w.start_ns = dgm_timespec_ns(&now);
	/* a store left half-swapped by a killed restore is put back first */
	if (dgm_archive_recover(o->store, err) || check_opts(o, err))
		goto out;
	if (o->base_id && load_base(&base, o, err))
		goto out;
	w.base = o->base_id ? &base : NULL;
	w.base_id = o->base_id;
	start_manifest(&m, o);
	tmp = dgm_xasprintf("%s.tmp", o->dest);
	mpath = dgm_archive_manifest_path(o->dest);
	dir = ar_dirname(o->dest);
	w.tmp = tmp;
	w.buf = dgm_xmalloc(DGM_ARCHIVE_BLOCK);
	w.sha = ar_sha_new();
	w.progress = (ar_progress){ o->progress, o->payload, 0, 0, 0 };
	if (count_total(&w.progress.total, o, err) || write_all(&w, o, err))
		goto out;
	/* manifest first: an archive that exists always has its manifest */
	if (dgm_archive_manifest_write(&m, mpath, err))
		goto out;
	wrote_manifest = true;
	if (ar_rename_noreplace(tmp, o->dest, err))
		goto out;
	renamed = true;
	if (dgm_fs_fsync_path(dir, err))
		goto out;
	ar_progress_end(&w.progress);
	ret = 0;
out:
	if (w.a)
		archive_write_free(w.a);
	archive_entry_free(w.e);
	if (w.sha)
		EVP_MD_CTX_free(w.sha);
	if (w.fd >= 0)
		close(w.fd);
	if (ret && tmp)
		unlink(renamed ? o->dest : tmp);
	if (ret && wrote_manifest)
		unlink(mpath);
	if (ret && err)
		dgm_error_prefix(err, "cannot archive the model store '%s'", o->store);
	if (!ret && out)
		*out = m;
	else
		dgm_archive_manifest_free(&m);
	dgm_archive_manifest_free(&base);
	free(w.buf);
	free(tmp);
	free(mpath);
	free(dir);
	return ret;
}
