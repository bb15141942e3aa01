/* tree_fs.c - a dgm_tree over a folder on disk, and dgm_tree_close for
 * every kind of tree. Entries are listed in readdir() order, which is
 * the order Python's os.listdir() (and so Alembic 1.8) sees. */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dgm/tree.h"

typedef struct fs_ctx {
	char *root;
} fs_ctx;

/* Tree paths are relative and never climb out of the root. */
static bool safe(const char *path)
{
	const char *p = path;

	if (path[0] == '/')
		return false;
	while (*p) {
		size_t len = strcspn(p, "/");

		if (len == 2 && p[0] == '.' && p[1] == '.')
			return false;
		p += len;
		if (*p == '/')
			p++;
	}
	return true;
}

static char *full_path(const fs_ctx *c, const char *path)
{
	return *path ? dgm_xasprintf("%s/%s", c->root, path) : dgm_xstrdup(c->root);
}

static int fs_list(void *ctx, const char *dir, dgm_tree_entry_cb cb, void *payload,
		   dgm_error *err)
{
	fs_ctx *c = ctx;
	char *path;
	DIR *d;
	struct dirent *e;
	int ret = 0;

	if (!safe(dir))
		return dgm_error_set(err, DGM_E_IO, "path '%s' leaves the tree '%s'", dir, c->root);
	path = full_path(c, dir);
	if (!(d = opendir(path))) {
		dgm_error_errno(err, DGM_E_IO, "cannot list folder '%s'", path);
		free(path);
		return -1;
	}
	for (errno = 0; ret == 0 && (e = readdir(d)) != NULL; errno = 0) {
		bool is_dir = e->d_type == DT_DIR;

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (e->d_type == DT_UNKNOWN || e->d_type == DT_LNK) {
			char *p = dgm_xasprintf("%s/%s", path, e->d_name);
			struct stat st;

			is_dir = stat(p, &st) == 0 && S_ISDIR(st.st_mode);
			free(p);
		}
		ret = cb(e->d_name, is_dir, payload);
	}
	if (ret == 0 && errno != 0)
		ret = dgm_error_errno(err, DGM_E_IO, "cannot list folder '%s'", path);
	closedir(d);
	free(path);
	return ret;
}

static int fs_read(void *ctx, const char *path, dgm_buf *out, dgm_error *err)
{
	fs_ctx *c = ctx;
	char *full;
	int ret;

	if (!safe(path))
		return dgm_error_set(err, DGM_E_IO, "path '%s' leaves the tree '%s'", path, c->root);
	full = full_path(c, path);
	ret = dgm_buf_read_file(out, full, err);
	free(full);
	return ret;
}

static int fs_kind(void *ctx, const char *path)
{
	fs_ctx *c = ctx;
	struct stat st;
	char *full;
	int kind = 0;

	if (!safe(path))
		return 0;
	full = full_path(c, path);
	if (stat(full, &st) == 0)
		kind = S_ISDIR(st.st_mode) ? 2 : 1;
	free(full);
	return kind;
}

static void fs_close(void *ctx)
{
	fs_ctx *c = ctx;

	if (!c)
		return;
	free(c->root);
	free(c);
}

int dgm_tree_open_fs(dgm_tree *t, const char *root, dgm_error *err)
{
	struct stat st;
	fs_ctx *c;
	size_t len;

	memset(t, 0, sizeof(*t));
	if (stat(root, &st) != 0)
		return dgm_error_errno(err, DGM_E_IO, "cannot open folder '%s'", root);
	if (!S_ISDIR(st.st_mode))
		return dgm_error_set(err, DGM_E_IO, "'%s' is not a folder", root);
	c = dgm_xcalloc(1, sizeof(*c));
	c->root = dgm_xstrdup(root);
	len = strlen(c->root);
	while (len > 1 && c->root[len - 1] == '/')
		c->root[--len] = '\0';
	t->ctx = c;
	t->label = dgm_xstrdup(c->root);
	t->list = fs_list;
	t->read = fs_read;
	t->kind = fs_kind;
	t->close = fs_close;
	return 0;
}

void dgm_tree_close(dgm_tree *t)
{
	if (!t)
		return;
	if (t->close)
		t->close(t->ctx);
	free(t->label);
	memset(t, 0, sizeof(*t));
}
