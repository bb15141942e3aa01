/* git.c - repository, revision and work-tree status with libgit2. */
#include <stdio.h>
#include <string.h>

#include "dgm/buf.h"
#include "dgm/git.h"

int dgm_git_error(dgm_error *err, const char *context)
{
	const git_error *e = git_error_last();

	return dgm_error_set(err, DGM_E_GIT, "%s: %s", context,
			     e && e->message ? e->message : "unknown libgit2 error");
}

int dgm_git_open(git_repository **out, const char *dir, dgm_error *err)
{
	*out = NULL;
	git_libgit2_init();
	if (git_repository_open_ext(out, dir, GIT_REPOSITORY_OPEN_NO_SEARCH, NULL) < 0) {
		dgm_git_error(err, "");
		dgm_error_set(err, DGM_E_GIT, "'%s' is not a git repository", dir);
		dgm_error_hint(err, "release.repository must name the application's git work tree");
		git_libgit2_shutdown();
		return -1;
	}
	return 0;
}

void dgm_git_close(git_repository *repo)
{
	if (!repo)
		return;
	git_repository_free(repo);
	git_libgit2_shutdown();
}

/* "v1.5, v1.6" - the tags, for messages about a missing one. */
static void list_tags(git_repository *repo, char *buf, size_t len)
{
	git_strarray tags = { NULL, 0 };
	size_t used = 0;

	buf[0] = '\0';
	if (git_tag_list(&tags, repo) < 0)
		return;
	for (size_t i = 0; i < tags.count && used + 2 < len; i++)
		used += (size_t)snprintf(buf + used, len - used, "%s%s", i ? ", " : "",
					 tags.strings[i]);
	git_strarray_dispose(&tags);
}

int dgm_git_resolve_commit(git_oid *out, git_repository *repo, const char *rev,
			   dgm_error *err)
{
	git_object *obj = NULL, *commit = NULL;
	char tags[512];
	int ret = -1;

	if (git_revparse_single(&obj, repo, rev) < 0) {
		list_tags(repo, tags, sizeof(tags));
		dgm_error_set(err, DGM_E_USAGE, "no tag or commit '%s' in '%s'", rev,
			      git_repository_workdir(repo));
		dgm_error_hint(err, "tags there: %s", tags[0] ? tags : "(none)");
		goto out;
	}
	if (git_object_peel(&commit, obj, GIT_OBJECT_COMMIT) < 0) {
		dgm_git_error(err, "cannot peel to a commit");
		dgm_error_prefix(err, "'%s'", rev);
		goto out;
	}
	git_oid_cpy(out, git_object_id(commit));
	ret = 0;
out:
	git_object_free(commit);
	git_object_free(obj);
	return ret;
}

int dgm_git_is_dirty(bool *dirty, char *first_path, size_t first_len,
		     git_repository *repo, dgm_error *err)
{
	git_status_options opts = GIT_STATUS_OPTIONS_INIT;
	git_status_list *list = NULL;

	opts.show = GIT_STATUS_SHOW_INDEX_AND_WORKDIR;
	opts.flags = GIT_STATUS_OPT_EXCLUDE_SUBMODULES;
	*dirty = false;
	if (first_len)
		first_path[0] = '\0';
	if (git_status_list_new(&list, repo, &opts) < 0)
		return dgm_git_error(err, "cannot read the work tree's status");
	for (size_t i = 0; i < git_status_list_entrycount(list); i++) {
		const git_status_entry *e = git_status_byindex(list, i);
		const git_diff_delta *d = e->head_to_index ? e->head_to_index : e->index_to_workdir;

		if (e->status == GIT_STATUS_CURRENT || (e->status & GIT_STATUS_IGNORED))
			continue;
		*dirty = true;
		if (first_len && d && d->new_file.path)
			snprintf(first_path, first_len, "%s", d->new_file.path);
		break;
	}
	git_status_list_free(list);
	return 0;
}

int dgm_git_untracked(git_repository *repo, const char *dir, dgm_git_untracked_cb cb,
		      void *payload, dgm_error *err)
{
	git_status_options opts = GIT_STATUS_OPTIONS_INIT;
	git_status_list *list = NULL;
	char *spec = (char *)dir;
	size_t n = strlen(dir);

	opts.show = GIT_STATUS_SHOW_WORKDIR_ONLY;
	opts.flags = GIT_STATUS_OPT_INCLUDE_UNTRACKED | GIT_STATUS_OPT_RECURSE_UNTRACKED_DIRS |
		     GIT_STATUS_OPT_INCLUDE_IGNORED | GIT_STATUS_OPT_RECURSE_IGNORED_DIRS |
		     GIT_STATUS_OPT_EXCLUDE_SUBMODULES | GIT_STATUS_OPT_DISABLE_PATHSPEC_MATCH;
	if (n) {
		opts.pathspec.strings = &spec;
		opts.pathspec.count = 1;
	}
	if (git_status_list_new(&list, repo, &opts) < 0)
		return dgm_git_error(err, "cannot read the work tree's status");
	for (size_t i = 0; i < git_status_list_entrycount(list); i++) {
		const git_status_entry *e = git_status_byindex(list, i);
		const char *path = e->index_to_workdir ? e->index_to_workdir->new_file.path : NULL;

		if (!path || !(e->status & (GIT_STATUS_WT_NEW | GIT_STATUS_IGNORED)))
			continue;
		/* the pathspec is a prefix: keep what lies inside dir only */
		if (n && (strncmp(path, dir, n) != 0 || path[n] != '/'))
			continue;
		if (cb(path, (e->status & GIT_STATUS_IGNORED) != 0, payload))
			break;
	}
	git_status_list_free(list);
	return 0;
}

int dgm_git_head(char out[GIT_OID_HEXSZ + 1], bool *detached, git_repository *repo,
		 dgm_error *err)
{
	git_oid oid;

	if (git_reference_name_to_id(&oid, repo, "HEAD") < 0)
		return dgm_git_error(err, "cannot read HEAD");
	git_oid_tostr(out, GIT_OID_HEXSZ + 1, &oid);
	*detached = git_repository_head_detached(repo) == 1;
	return 0;
}

typedef struct tags_at_ctx {
	git_repository *repo;
	const git_oid *want;
	dgm_buf *out;
} tags_at_ctx;

static int tag_at_cb(const char *name, git_oid *oid, void *payload)
{
	tags_at_ctx *c = payload;
	git_object *obj = NULL, *commit = NULL;

	if (git_object_lookup(&obj, c->repo, oid, GIT_OBJECT_ANY) == 0 &&
	    git_object_peel(&commit, obj, GIT_OBJECT_COMMIT) == 0 &&
	    git_oid_equal(git_object_id(commit), c->want)) {
		if (c->out->len)
			dgm_buf_puts(c->out, ", ");
		dgm_buf_puts(c->out, name + strlen("refs/tags/"));
	}
	git_object_free(commit);
	git_object_free(obj);
	return 0;
}

int dgm_git_tags_at(dgm_buf *out, git_repository *repo, const git_oid *commit)
{
	tags_at_ctx c = { repo, commit, out };

	return git_tag_foreach(repo, tag_at_cb, &c) < 0 ? -1 : 0;
}

int dgm_git_tag_names(git_strarray *out, git_repository *repo, dgm_error *err)
{
	if (git_tag_list(out, repo) < 0)
		return dgm_git_error(err, "cannot list tags");
	return 0;
}
