/* project.c - load an application's Alembic graph for a command: from
 * the work tree, or as it stood at a tag (git, no checkout). */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dgm/buf.h"
#include "dgm/git.h"
#include "dgm/log.h"
#include "dgm/project.h"

/* ini's folder inside the tree ("" for the root). */
static char *ini_folder(const char *ini_rel)
{
	const char *slash = strrchr(ini_rel, '/');

	return slash ? dgm_xstrndup(ini_rel, (size_t)(slash - ini_rel)) : dgm_xstrdup("");
}

int dgm_project_load_graph(dgm_alembic_script **out, const char *repo, const char *ini_rel,
		       const char *at, dgm_error *err)
{
	char root[PATH_MAX];
	dgm_alembic_load_opts o = { 0 };
	dgm_tree tree;
	char *cwd;
	int ret;

	*out = NULL;
	if (!realpath(repo, root))
		return dgm_error_errno(err, DGM_E_USAGE, "cannot use repository '%s'", repo);
	/* --config given as an absolute path inside the repository */
	if (ini_rel[0] == '/') {
		size_t n = strlen(root);

		if (strncmp(ini_rel, root, n) != 0 || ini_rel[n] != '/')
			return dgm_error_set(err, DGM_E_USAGE, "alembic config '%s' is not inside the "
					     "repository '%s'", ini_rel, root);
		ini_rel += n + 1;
	}
	if (at ? dgm_tree_open_git(&tree, root, at, err) : dgm_tree_open_fs(&tree, root, err))
		return -1;
	cwd = ini_folder(ini_rel);
	o.cwd = cwd;
	o.root_on_disk = root;
	/* A git tree lists names sorted; the work tree in readdir() order,
	 * which is what Alembic 1.8 itself sees there. */
	o.sort_files = at != NULL;
	ret = dgm_alembic_load(out, &tree, ini_rel, &o, err);
	if (ret)
		dgm_error_prefix(err, "cannot read the Alembic revisions of '%s'%s%s", root,
				 at ? " at " : "", at ? at : "");
	dgm_tree_close(&tree);
	free(cwd);
	return ret;
}

/* The ini path relative to the repository, from an absolute config path. */
const char *dgm_project_ini_rel(const char *config, const char *repo)
{
	size_t n = strlen(repo);

	while (n > 1 && repo[n - 1] == '/')
		n--;
	if (!strncmp(config, repo, n) && config[n] == '/')
		return config + n + 1;
	return config;
}

int dgm_project_tags_knowing(dgm_buf *out, const char *repo_dir, const char *ini_rel,
			 const char *rev)
{
	git_repository *repo = NULL;
	git_strarray tags = { NULL, 0 };
	dgm_error e = DGM_ERROR_INIT;

	if (dgm_git_open(&repo, repo_dir, &e) || dgm_git_tag_names(&tags, repo, &e)) {
		dgm_git_close(repo);
		return -1;
	}
	for (size_t i = 0; i < tags.count; i++) {
		dgm_alembic_script *s = NULL;

		if (dgm_project_load_graph(&s, repo_dir, ini_rel, tags.strings[i], &e) == 0 &&
		    dgm_alembic_find(s, rev))
			dgm_buf_printf(out, "%s%s", out->len ? ", " : "", tags.strings[i]);
		dgm_alembic_free(s);
	}
	git_strarray_dispose(&tags);
	dgm_git_close(repo);
	return 0;
}

int dgm_project_check_db_known(const dgm_alembic_script *s, char *const *revs, size_t n,
			   const char *repo, const char *ini_rel, const char *code_name,
			   dgm_error *err)
{
	for (size_t i = 0; i < n; i++) {
		dgm_buf tags = DGM_BUF_INIT;

		if (dgm_alembic_find(s, revs[i]))
			continue;
		dgm_project_tags_knowing(&tags, repo, ini_rel, revs[i]);
		dgm_error_set(err, DGM_E_RUN, "the database is at revision '%s', which %s does not "
			      "know: the database is ahead of the code", revs[i], code_name);
		if (tags.len)
			dgm_error_hint(err, "tags that know '%s': %s", revs[i], tags.ptr);
		else
			dgm_error_hint(err, "no tag of '%s' knows '%s': was it migrated from "
				       "another branch?", repo, revs[i]);
		dgm_buf_free(&tags);
		return -1;
	}
	return 0;
}
