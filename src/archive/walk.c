/* walk.c - a pre-order walk of a folder in sorted order, so that the
 * same tree always gives the same archive and the same manifest. */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "archive_int.h"
#include "dgm/buf.h"

typedef struct walk {
	dgm_buf fs, ap;
	ar_walk_fn fn;
	void *payload;
} walk;

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names in a folder, sorted. The folder is closed before the
 * caller descends, so depth does not cost file descriptors. */
static int list_dir(char ***names, size_t *n, const char *path, dgm_error *err)
{
	DIR *d = opendir(path);
	size_t cap = 0;
	struct dirent *de;

	*names = NULL;
	*n = 0;
	if (!d)
		return dgm_error_errno(err, DGM_E_IO, "cannot open folder '%s'", path);
	for (;;) {
		errno = 0;
		de = readdir(d);
		if (!de)
			break;
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (*n == cap) {
			cap = cap ? 2 * cap : 32;
			*names = dgm_xrealloc(*names, cap * sizeof(**names));
		}
		(*names)[(*n)++] = dgm_xstrdup(de->d_name);
	}
	if (errno) {
		dgm_error_errno(err, DGM_E_IO, "cannot read folder '%s'", path);
		closedir(d);
		return -1;
	}
	closedir(d);
	if (*n)
		qsort(*names, *n, sizeof(**names), cmp_names);
	return 0;
}

static int visit(walk *w, const struct stat *st, dgm_error *err);

static int visit_children(walk *w, dgm_error *err)
{
	size_t fs_len = w->fs.len, ap_len = w->ap.len, n = 0, i;
	char **names = NULL;
	int ret = 0;

	if (list_dir(&names, &n, dgm_buf_cstr(&w->fs), err))
		return -1;
	for (i = 0; i < n && !ret; i++) {
		struct stat st;

		dgm_buf_putc(&w->fs, '/');
		dgm_buf_puts(&w->fs, names[i]);
		dgm_buf_putc(&w->ap, '/');
		dgm_buf_puts(&w->ap, names[i]);
		if (lstat(w->fs.ptr, &st) != 0)
			ret = dgm_error_errno(err, DGM_E_IO, "cannot stat '%s'", w->fs.ptr);
		else
			ret = visit(w, &st, err);
		w->fs.len = fs_len;
		w->fs.ptr[fs_len] = '\0';
		w->ap.len = ap_len;
		w->ap.ptr[ap_len] = '\0';
	}
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return ret;
}

static int visit(walk *w, const struct stat *st, dgm_error *err)
{
	int rc = w->fn(w->fs.ptr, w->ap.ptr, st, w->payload, err);

	if (rc)
		return rc;
	return S_ISDIR(st->st_mode) ? visit_children(w, err) : 0;
}

int ar_walk(const char *root, const char *aroot, ar_walk_fn fn, void *payload, dgm_error *err)
{
	walk w = { DGM_BUF_INIT, DGM_BUF_INIT, fn, payload };
	struct stat st;
	int ret;

	if (stat(root, &st) != 0)
		return dgm_error_errno(err, DGM_E_IO, "cannot stat '%s'", root);
	dgm_buf_puts(&w.fs, root);
	/* "/srv/models/" and "/srv/models" name the same folder */
	while (w.fs.len > 1 && w.fs.ptr[w.fs.len - 1] == '/')
		w.fs.ptr[--w.fs.len] = '\0';
	dgm_buf_puts(&w.ap, aroot);
	ret = visit(&w, &st, err);
	dgm_buf_free(&w.fs);
	dgm_buf_free(&w.ap);
	return ret;
}
