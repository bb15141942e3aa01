/* tree_git.c - dgm_tree over a git tree: read a tag's files without a
 * checkout and without temporary files. */
#include <stdlib.h>
#include <string.h>

#include "dgm/buf.h"
#include "dgm/git.h"
#include "dgm/tree.h"

typedef struct git_ctx {
	git_repository *repo;
	git_tree *root;
} git_ctx;

/* Look up path's object (tree or blob); "" is the root tree. */
static int lookup(git_object **out, git_ctx *g, const char *path, git_object_t want)
{
	git_tree_entry *e = NULL;
	int rc;

	*out = NULL;
	if (!*path) {
		if (want != GIT_OBJECT_TREE && want != GIT_OBJECT_ANY)
			return -1;
		return git_object_dup(out, (git_object *)g->root);
	}
	if (git_tree_entry_bypath(&e, g->root, path) < 0)
		return -1;
	if (want != GIT_OBJECT_ANY && git_tree_entry_type(e) != want) {
		git_tree_entry_free(e);
		return -1;
	}
	rc = git_tree_entry_to_object(out, g->repo, e);
	git_tree_entry_free(e);
	return rc;
}

static int git_list(void *ctx, const char *dir, dgm_tree_entry_cb cb, void *payload,
		    dgm_error *err)
{
	git_ctx *g = ctx;
	git_object *obj = NULL;
	const git_tree *t;
	int rc = 0;

	if (lookup(&obj, g, dir, GIT_OBJECT_TREE) < 0)
		return dgm_error_set(err, DGM_E_IO, "no folder '%s' in the tree", dir);
	t = (const git_tree *)obj;
	for (size_t i = 0; i < git_tree_entrycount(t) && rc == 0; i++) {
		const git_tree_entry *e = git_tree_entry_byindex(t, i);

		rc = cb(git_tree_entry_name(e), git_tree_entry_type(e) == GIT_OBJECT_TREE, payload);
	}
	git_object_free(obj);
	return rc;
}

static int git_read(void *ctx, const char *path, dgm_buf *out, dgm_error *err)
{
	git_ctx *g = ctx;
	git_object *obj = NULL;
	const git_blob *b;

	if (lookup(&obj, g, path, GIT_OBJECT_BLOB) < 0)
		return dgm_error_set(err, DGM_E_IO, "no file '%s' in the tree", path);
	b = (const git_blob *)obj;
	dgm_buf_put(out, git_blob_rawcontent(b), (size_t)git_blob_rawsize(b));
	git_object_free(obj);
	return 0;
}

static int git_kind(void *ctx, const char *path)
{
	git_ctx *g = ctx;
	git_object *obj = NULL;
	int kind = 0;

	if (lookup(&obj, g, path, GIT_OBJECT_ANY) == 0)
		kind = git_object_type(obj) == GIT_OBJECT_TREE ? 2 :
		       git_object_type(obj) == GIT_OBJECT_BLOB ? 1 : 0;
	git_object_free(obj);
	return kind;
}

static void git_close(void *ctx)
{
	git_ctx *g = ctx;

	git_tree_free(g->root);
	dgm_git_close(g->repo);
	free(g);
}

int dgm_tree_open_git(dgm_tree *t, const char *repo_dir, const char *rev, dgm_error *err)
{
	git_ctx *g = dgm_xcalloc(1, sizeof(*g));
	git_commit *commit = NULL;
	git_oid oid;

	memset(t, 0, sizeof(*t));
	if (dgm_git_open(&g->repo, repo_dir, err))
		goto fail;
	if (dgm_git_resolve_commit(&oid, g->repo, rev, err))
		goto fail;
	if (git_commit_lookup(&commit, g->repo, &oid) < 0 ||
	    git_commit_tree(&g->root, commit) < 0) {
		dgm_git_error(err, "cannot read the commit's tree");
		goto fail;
	}
	git_commit_free(commit);
	t->ctx = g;
	t->label = dgm_xstrdup(rev);
	t->list = git_list;
	t->read = git_read;
	t->kind = git_kind;
	t->close = git_close;
	return 0;
fail:
	git_commit_free(commit);
	git_tree_free(g->root);
	dgm_git_close(g->repo);
	free(g);
	return -1;
}
