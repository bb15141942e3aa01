/* recover.c - the intent file of a restore, and dgm_archive_recover,
 * which settles a restore cut short at any point.
 *
 * TARGET.restore.intent (TARGET: the store's real path), 0600, written
 * atomically (temp file, fsync, rename, fsync of the folder) whenever a
 * staging folder is created and before the first rename:
 *   dgmigrate-restore-intent 1
 *   phase stage|swap|commit
 *   swap <existed 0|1> <path> <dir> <staged> <aside>   (one per swap:
 *                                 the store first; names in hex, "-": none)
 * and removed once the restore is committed or undone. Recovery:
 *   stage   nothing was renamed: remove the staging folders;
 *   swap    undo: new content back into its staging folder, the aside
 *           back in place (whichever of the two renames happened);
 *   commit  complete: remove the asides and the staging folders.
 * A restore is thus all or nothing: the caller (a rollback, `resume`)
 * restores again when it has to. Without an intent file, leftover
 * staging folders TARGET.restore-XXXXXX are removed. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "archive_int.h"
#include "dgm/buf.h"
#include "dgm/fs.h"
#include "dgm/log.h"

#define INTENT_SUFFIX ".restore.intent"
#define INTENT_MAGIC "dgmigrate-restore-intent 1"

static void put_hex(dgm_buf *b, const char *s)
{
	dgm_buf_putc(b, ' ');
	if (!s) {
		dgm_buf_putc(b, '-');
		return;
	}
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		dgm_buf_printf(b, "%02x", *p);
}

static void put_swap(dgm_buf *b, const dgm_archive_swap *w)
{
	dgm_buf_printf(b, "swap %d", w->existed ? 1 : 0);
	put_hex(b, w->path);
	put_hex(b, w->dir);
	put_hex(b, w->staged);
	put_hex(b, w->aside);
	dgm_buf_putc(b, '\n');
}

int ar_intent_write(dgm_archive_restore_state *r, const char *phase, dgm_error *err)
{
	dgm_buf b = DGM_BUF_INIT;
	int ret;

	if (!r->intent)
		r->intent = dgm_xasprintf("%s" INTENT_SUFFIX, r->store.path);
	dgm_buf_printf(&b, INTENT_MAGIC "\nphase %s\n", phase);
	put_swap(&b, &r->store);
	for (size_t k = 0; k < r->n_extras; k++)
		put_swap(&b, &r->extras[k]);
	ret = dgm_fs_write_atomic(r->intent, b.ptr, b.len, 0600, err);
	dgm_buf_free(&b);
	return ret;
}

static int remove_intent(const char *path, dgm_error *err)
{
	char *parent = ar_dirname(path);
	int ret = 0;

	if (unlink(path) != 0 && errno != ENOENT)
		ret = dgm_error_errno(err, DGM_E_IO, "cannot remove '%s'", path);
	else
		ret = dgm_fs_fsync_path(parent, err);
	free(parent);
	return ret;
}

int ar_intent_remove(dgm_archive_restore_state *r, dgm_error *err)
{
	int ret = r->intent ? remove_intent(r->intent, err) : 0;

	if (!ret) {
		free(r->intent);
		r->intent = NULL;
	}
	return ret;
}

/* --- reading it back ---------------------------------------------------- */

typedef struct intent {
	char *phase;
	dgm_archive_swap *swaps;
	size_t n;
} intent;

static int unhex(char **out, const char *s, size_t n)
{
	char *p;

	*out = NULL;
	if (n == 1 && s[0] == '-')
		return 0;
	if (n == 0 || n % 2 || strspn(s, "0123456789abcdef") < n)
		return -1;
	p = *out = dgm_xcalloc(n / 2 + 1, 1);
	for (size_t i = 0; i < n; i += 2) {
		unsigned v;

		sscanf(s + i, "%2x", &v);
		if (!v)
			return -1;
		*p++ = (char)v;
	}
	return 0;
}

static int parse_swap(dgm_archive_swap *w, const char *line)
{
	char **fields[] = { &w->path, &w->dir, &w->staged, &w->aside };
	const char *s = line + strlen("swap ");

	if (strncmp(line, "swap ", 5) || (s[0] != '0' && s[0] != '1') || s[1] != ' ')
		return -1;
	w->existed = s[0] == '1';
	s += 2;
	for (size_t i = 0; i < 4; i++) {
		size_t n = strcspn(s, " ");

		if (unhex(fields[i], s, n) || (i < 3 && s[n] != ' ') || (i == 3 && s[n]))
			return -1;
		s += n + (s[n] == ' ');
	}
	return w->path ? 0 : -1;
}

/* Only names derived from the swap's own path are ever renamed or
 * removed, whatever the file says. */
static bool swap_sane(const dgm_archive_swap *w)
{
	size_t n = strlen(w->path);
	bool dir_ok = !w->dir || (!strncmp(w->dir, w->path, n) &&
				  !strncmp(w->dir + n, ".restore-", 9) && strlen(w->dir + n) == 15 &&
				  !strchr(w->dir + n, '/'));
	bool staged_ok = !w->staged || (w->dir && (!strcmp(w->staged + strlen(w->dir), "/store") ||
						   !strcmp(w->staged + strlen(w->dir), "/tree")) &&
					!strncmp(w->staged, w->dir, strlen(w->dir)));
	bool aside_ok = !w->aside || (!strncmp(w->aside, w->path, n) &&
				      !strncmp(w->aside + n, ".old-", 5) && !strchr(w->aside + n, '/'));

	return w->path[0] == '/' && dir_ok && staged_ok && aside_ok;
}

static void intent_free(intent *in)
{
	for (size_t i = 0; i < in->n; i++) {
		free(in->swaps[i].path);
		free(in->swaps[i].dir);
		free(in->swaps[i].staged);
		free(in->swaps[i].aside);
	}
	free(in->swaps);
	free(in->phase);
}

static int parse_intent(intent *in, char *text, const char *path, dgm_error *err)
{
	char *save = NULL, *line = strtok_r(text, "\n", &save);
	int ret = 0;

	memset(in, 0, sizeof(*in));
	if (!line || strcmp(line, INTENT_MAGIC))
		ret = -1;
	line = ret ? NULL : strtok_r(NULL, "\n", &save);
	if (!line || strncmp(line, "phase ", 6))
		ret = -1;
	else
		in->phase = dgm_xstrdup(line + 6);
	while (!ret && (line = strtok_r(NULL, "\n", &save))) {
		dgm_archive_swap *w;

		in->swaps = dgm_xrealloc(in->swaps, (in->n + 1) * sizeof(*in->swaps));
		w = &in->swaps[in->n++];
		memset(w, 0, sizeof(*w));
		ret = parse_swap(w, line) || !swap_sane(w) ? -1 : 0;
	}
	if (!ret && (!in->n || (strcmp(in->phase, "stage") && strcmp(in->phase, "swap") &&
				strcmp(in->phase, "commit"))))
		ret = -1;
	if (ret) {
		dgm_error_set(err, DGM_E_ARCHIVE, "the restore intent file '%s' is damaged", path);
		dgm_error_hint(err, "compare the folders named '%s.restore-*' and '.old-*' beside it "
			       "by hand, then remove it", in->n ? in->swaps[0].path : "...");
	}
	return ret;
}

/* Ours and not writable by others, or not trusted. */
static int read_intent(intent *in, const char *path, dgm_error *err)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	dgm_buf text = DGM_BUF_INIT;
	struct stat st;
	int ret = -1;

	if (fd < 0)
		return dgm_error_errno(err, DGM_E_IO, "cannot open '%s'", path);
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid() ||
	    (st.st_mode & 022) || st.st_size > 1 << 20) {
		dgm_error_set(err, DGM_E_ARCHIVE, "the restore intent file '%s' is not one this "
			      "user wrote (owner, mode or size)", path);
		goto out;
	}
	if (dgm_buf_read_file(&text, path, err) == 0)
		ret = parse_intent(in, text.ptr, path, err);
out:
	close(fd);
	dgm_buf_free(&text);
	return ret;
}

/* --- settling ----------------------------------------------------------- */

static bool present(const char *path)
{
	struct stat st;

	return path && lstat(path, &st) == 0;
}

static int move(const char *from, const char *to, dgm_error *err)
{
	char *parent = ar_dirname(to);
	int ret = ar_rename_noreplace(from, to, err) || dgm_fs_fsync_path(parent, err);

	free(parent);
	return ret ? -1 : 0;
}

/* Undo one swap from wherever it stopped. */
static int undo_swap(const dgm_archive_swap *w, dgm_error *err)
{
	/* staged gone and path there: path holds the new content */
	if (w->staged && !present(w->staged) && present(w->dir) && present(w->path) &&
	    (!w->existed || present(w->aside)) && move(w->path, w->staged, err))
		return -1;
	if (w->existed && w->aside && present(w->aside) && !present(w->path) &&
	    move(w->aside, w->path, err))
		return -1;
	return 0;
}

static int settle(const intent *in, dgm_error *err)
{
	bool undo = !strcmp(in->phase, "swap"), commit = !strcmp(in->phase, "commit");

	for (size_t k = in->n; k-- > 0;) {
		const dgm_archive_swap *w = &in->swaps[k];

		if (undo && undo_swap(w, err))
			return -1;
		/* the old content, once the new one is in place for good */
		if (commit && w->aside && present(w->path) && ar_remove_tree(w->aside, err))
			return -1;
		if (w->dir && ar_remove_tree(w->dir, err))
			return -1;
	}
	return 0;
}

/* TARGET.restore-XXXXXX folders with no intent file: a restore killed
 * before it recorded them. */
static int sweep(const char *target, dgm_error *err)
{
	char *parent = ar_dirname(target), *base = ar_basename(target);
	char *prefix = dgm_xasprintf("%s.restore-", base);
	DIR *d = opendir(parent);
	struct dirent *de;
	int ret = 0;

	while (d && !ret && (de = readdir(d))) {
		size_t n = strlen(prefix), nb = strlen(base);
		char *path;

		if (strncmp(de->d_name, base, nb))
			continue;
		path = dgm_xasprintf("%s/%s", parent, de->d_name);
		if (!strncmp(de->d_name, prefix, n) && strlen(de->d_name + n) == 6) {
			dgm_info("removing '%s', left by an interrupted restore", path);
			ret = ar_remove_tree(path, err);
		} else if (!strcmp(de->d_name + nb, INTENT_SUFFIX ".tmp")) {
			unlink(path);
		}
		free(path);
	}
	if (d)
		closedir(d);
	free(parent);
	free(base);
	free(prefix);
	return ret;
}

/* Where a restore of store puts its names: the store's real path, or
 * (missing: between the renames of a swap) its real folder + its name,
 * through one symlink level (a symlinked store whose folder is gone). */
static char *store_place(const char *store)
{
	char *real = realpath(store, NULL), *target, *dir, *rdir, *base, *out = NULL;
	char link[AR_PATH_MAX];
	ssize_t n;

	if (real)
		return real;
	n = readlink(store, link, sizeof(link) - 1);
	if (n > 0) {
		link[n] = '\0';
		dir = ar_dirname(store);
		target = link[0] == '/' ? dgm_xstrdup(link) : dgm_xasprintf("%s/%s", dir, link);
		free(dir);
	} else {
		target = dgm_xstrdup(store);
	}
	dir = ar_dirname(target);
	base = ar_basename(target);
	rdir = realpath(dir, NULL);
	if (rdir)
		out = dgm_xasprintf("%s/%s", strcmp(rdir, "/") ? rdir : "", base);
	free(rdir);
	free(dir);
	free(base);
	free(target);
	return out;
}

int dgm_archive_recover(const char *store, dgm_error *err)
{
	char *place = store ? store_place(store) : NULL, *path = NULL;
	intent in = { 0 };
	int ret = 0;

	if (!place)
		return 0;
	path = dgm_xasprintf("%s" INTENT_SUFFIX, place);
	if (present(path)) {
		ret = read_intent(&in, path, err);
		if (!ret && strcmp(in.swaps[0].path, place))
			ret = dgm_error_set(err, DGM_E_ARCHIVE, "the restore intent file '%s' is for "
					    "'%s', not '%s'", path, in.swaps[0].path, place);
		if (!ret && !(ret = settle(&in, err)))
			ret = remove_intent(path, err);
		if (!ret)
			dgm_info("an interrupted restore of '%s' was %s", place,
				 !strcmp(in.phase, "commit") ? "completed" : "undone");
	}
	if (!ret)
		ret = sweep(place, err);
	if (ret)
		dgm_error_prefix(err, "cannot settle an interrupted restore of '%s'", store);
	intent_free(&in);
	free(path);
	free(place);
	return ret;
}
