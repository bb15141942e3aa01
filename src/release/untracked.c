/* untracked.c - alembic runs every revision file in its version folders,
 * tracked or not: a release must run exactly the tag's migrations, so
 * files git does not track there are refused before anything changes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dgm/buf.h"
#include "dgm/git.h"
#include "internal.h"

typedef struct found {
	const dgm_alembic_config *cfg;
	size_t skip;                  /* length of the folder's prefix */
	dgm_buf names;
	size_t count;
} found;

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && !strcmp(s + n - m, suffix);
}

/* What alembic would load: *.py (and *.pyc, *.pyo when sourceless) in
 * the folder itself, or below it with recursive_version_locations. */
static bool alembic_reads(const found *f, const char *rel)
{
	if (strchr(rel, '/') && !f->cfg->recursive)
		return false;
	return ends_with(rel, ".py") || (f->cfg->sourceless && (ends_with(rel, ".pyc") ||
								 ends_with(rel, ".pyo")));
}

/* Untracked and not ignored: refused (it is not the tag's); ignored:
 * refused when alembic would run it. Python's own cache is left alone. */
static int on_untracked(const char *path, bool ignored, void *payload)
{
	found *f = payload;
	const char *rel = path + f->skip;

	if (!strncmp(rel, "__pycache__/", 12) || strstr(rel, "/__pycache__/"))
		return 0;
	if (ignored && !alembic_reads(f, rel))
		return 0;
	if (f->count < 3)
		dgm_buf_printf(&f->names, "%s'%s'", f->count ? ", " : "", path);
	f->count++;
	return 0;
}

int dgm_release_check_untracked(const char *repo_dir, const dgm_alembic_script *s,
				dgm_error *err)
{
	const dgm_alembic_config *cfg = &s->config;
	git_repository *repo = NULL;
	found f = { .cfg = cfg, .names = DGM_BUF_INIT };
	int ret = -1;

	if (dgm_git_open(&repo, repo_dir, err))
		return -1;
	for (size_t i = 0; i < cfg->nversion_locations; i++) {
		const char *dir = cfg->version_locations[i];

		f.skip = *dir ? strlen(dir) + 1 : 0;
		if (dgm_git_untracked(repo, dir, on_untracked, &f, err))
			goto out;
	}
	if (f.count) {
		dgm_error_set(err, DGM_E_PLAN, "%zu untracked file%s in the Alembic version folders "
			      "of '%s': %s%s; alembic runs every revision file there, not only the "
			      "tag's", f.count, f.count == 1 ? "" : "s", repo_dir,
			      dgm_buf_cstr(&f.names), f.count > 3 ? " and more" : "");
		dgm_error_hint(err, "a release runs exactly its tag's migrations: commit the file to "
			       "the release or remove it (git status --ignored lists them)");
		goto out;
	}
	ret = 0;
out:
	dgm_buf_free(&f.names);
	dgm_git_close(repo);
	return ret;
}
