/* checkout.c - deploy a release by checking its tag out in the work tree,
 * put the previous HEAD back, and export a tree elsewhere; libgit2 only,
 * no `git` child. Checkouts are always SAFE: local work is never lost, a
 * conflict refuses the whole checkout before any file changes. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dgm/fs.h"
#include "dgm/git.h"
#include "dgm/log.h"

static const char *last_git_message(void)
{
	const git_error *e = git_error_last();

	return e && e->message ? e->message : "unknown libgit2 error";
}

/* What the SAFE checkout's notifications told us. */
typedef struct notes {
	char conflict[1024];   /* first conflicting path */
	bool untracked;        /* ... an untracked file where the target has one */
	size_t nconflicts;
	char dirty[1024];      /* first local change the checkout keeps */
	size_t ndirty;
} notes;

static int notify_cb(git_checkout_notify_t why, const char *path,
		     const git_diff_file *baseline, const git_diff_file *target,
		     const git_diff_file *workdir, void *payload)
{
	notes *n = payload;

	if (why == GIT_CHECKOUT_NOTIFY_DIRTY) {
		if (n->ndirty++ == 0)
			snprintf(n->dirty, sizeof(n->dirty), "%s", path);
		return 0;
	}
	/* Keep going: libgit2 then cancels with GIT_ECONFLICT, before any
	 * file is written, and we can say how many paths are in the way. */
	if (n->nconflicts++ == 0) {
		snprintf(n->conflict, sizeof(n->conflict), "%s", path);
		n->untracked = workdir && !baseline;
	}
	return 0;
}

static int refuse(const notes *n, const char *label, const char *dir, dgm_error *err)
{
	char more[64] = "";

	if (n->nconflicts > 1)
		snprintf(more, sizeof(more), " (and %zu more)", n->nconflicts - 1);
	if (n->untracked) {
		dgm_error_set(err, DGM_E_RUN,
			      "cannot check out '%s' in '%s': untracked '%s'%s would be overwritten",
			      label, dir, n->conflict, more);
		dgm_error_hint(err, "move it out of the way (git status), then run again");
	} else {
		dgm_error_set(err, DGM_E_RUN, "cannot check out '%s' in '%s': '%s'%s has local changes",
			      label, dir, n->conflict, more);
		/* allow_dirty only skips the preflight: it cannot make a
		 * checkout overwrite local work, so it is no fix here. */
		dgm_error_hint(err, "commit or stash them (git status); release.allow_dirty keeps "
			       "local changes only in files that '%s' does not change", label);
	}
	return -1;
}

/* SAFE checkout of commit oid, then HEAD detached there. label names the
 * revision in messages. */
static int checkout_commit(git_repository *repo, const git_oid *oid, const char *label,
			   const char *dir, dgm_error *err)
{
	git_checkout_options opts = GIT_CHECKOUT_OPTIONS_INIT;
	git_commit *commit = NULL;
	notes n = { .nconflicts = 0 };
	int rc, ret = -1;

	if (git_commit_lookup(&commit, repo, oid) < 0) {
		dgm_git_error(err, "cannot read the commit");
		dgm_error_prefix(err, "'%s'", label);
		goto out;
	}
	opts.checkout_strategy = GIT_CHECKOUT_SAFE;
	opts.notify_flags = GIT_CHECKOUT_NOTIFY_CONFLICT | GIT_CHECKOUT_NOTIFY_DIRTY;
	opts.notify_cb = notify_cb;
	opts.notify_payload = &n;
	rc = git_checkout_tree(repo, (const git_object *)commit, &opts);
	if (n.nconflicts) {
		refuse(&n, label, dir, err);
		goto out;
	}
	if (rc < 0) {
		dgm_error_set(err, DGM_E_GIT, "cannot check out '%s' in '%s': %s", label, dir,
			      last_git_message());
		dgm_error_hint(err, "the work tree may be partly updated while HEAD has not moved; "
			       "see git status");
		goto out;
	}
	/* Files first, then HEAD, as git does: HEAD never names a commit
	 * whose files are not there. */
	if (git_repository_set_head_detached(repo, oid) < 0) {
		dgm_git_error(err, "cannot move HEAD");
		dgm_error_prefix(err, "checked out '%s' in '%s'", label, dir);
		goto out;
	}
	if (n.ndirty == 1)
		dgm_warn("'%s' has local changes in '%s'; the checkout of '%s' keeps them",
			 n.dirty, dir, label);
	else if (n.ndirty)
		dgm_warn("'%s' and %zu more files have local changes in '%s'; the checkout of '%s' "
			 "keeps them", n.dirty, n.ndirty - 1, dir, label);
	ret = 0;
out:
	git_commit_free(commit);
	return ret;
}

static int read_state(dgm_git_state *out, git_repository *repo, const char *dir,
		      dgm_error *err)
{
	git_reference *head = NULL;
	git_object *commit = NULL;
	int rc, ret = -1;

	memset(out, 0, sizeof(*out));
	rc = git_repository_head(&head, repo);
	if (rc == GIT_EUNBORNBRANCH || rc == GIT_ENOTFOUND) {
		dgm_error_set(err, DGM_E_GIT, "'%s' has no commit checked out", dir);
		goto out;
	}
	if (rc < 0 || git_reference_peel(&commit, head, GIT_OBJECT_COMMIT) < 0) {
		dgm_git_error(err, "cannot read HEAD");
		dgm_error_prefix(err, "'%s'", dir);
		goto out;
	}
	git_oid_tostr(out->commit, sizeof(out->commit), git_object_id(commit));
	/* Only a branch can be re-attached (git_repository_set_head detaches
	 * on anything else), so only a branch is worth recording. */
	if (git_reference_is_branch(head)) {
		const char *name = git_reference_name(head);

		if (strlen(name) >= sizeof(out->branch)) {
			dgm_error_set(err, DGM_E_GIT, "branch name '%s' in '%s' is too long", name, dir);
			goto out;
		}
		strcpy(out->branch, name);
	}
	ret = 0;
out:
	git_object_free(commit);
	git_reference_free(head);
	return ret;
}

int dgm_git_state_read(dgm_git_state *out, const char *repo_dir, dgm_error *err)
{
	git_repository *repo = NULL;
	int ret;

	memset(out, 0, sizeof(*out));
	if (dgm_git_open(&repo, repo_dir, err))
		return -1;
	ret = read_state(out, repo, repo_dir, err);
	dgm_git_close(repo);
	return ret;
}

int dgm_git_checkout(dgm_git_state *prev, const char *repo_dir, const char *rev,
		     dgm_error *err)
{
	git_repository *repo = NULL;
	dgm_git_state before;
	git_oid oid;
	int ret = -1;

	if (prev)
		memset(prev, 0, sizeof(*prev));
	if (dgm_git_open(&repo, repo_dir, err))
		return -1;
	if (read_state(&before, repo, repo_dir, err))
		goto out;
	if (prev)
		*prev = before;
	if (dgm_git_resolve_commit(&oid, repo, rev, err))
		goto out;
	ret = checkout_commit(repo, &oid, rev, repo_dir, err);
out:
	dgm_git_close(repo);
	return ret;
}

/* HEAD back onto state->branch, if it still points at state->commit. */
static int reattach(git_repository *repo, const dgm_git_state *state, const git_oid *oid,
		    const char *dir, dgm_error *err)
{
	git_oid at;
	char now[GIT_OID_HEXSZ + 1];

	if (git_reference_name_to_id(&at, repo, state->branch) < 0) {
		dgm_warn("branch '%s' no longer exists in '%s'; HEAD stays detached at '%s'",
			 state->branch, dir, state->commit);
		return 0;
	}
	if (!git_oid_equal(&at, oid)) {
		git_oid_tostr(now, sizeof(now), &at);
		dgm_warn("branch '%s' in '%s' has moved to '%s'; HEAD stays detached at '%s'",
			 state->branch, dir, now, state->commit);
		return 0;
	}
	if (git_repository_set_head(repo, state->branch) < 0) {
		dgm_git_error(err, "cannot attach HEAD");
		dgm_error_prefix(err, "'%s' in '%s'", state->branch, dir);
		return -1;
	}
	return 0;
}

int dgm_git_restore_state(const char *repo_dir, const dgm_git_state *state, dgm_error *err)
{
	git_repository *repo = NULL;
	char label[13];
	git_oid oid;
	int ret = -1;

	if (strlen(state->commit) != GIT_OID_HEXSZ || git_oid_fromstr(&oid, state->commit) < 0)
		return dgm_error_set(err, DGM_E_GIT, "'%s' is not a commit id", state->commit);
	snprintf(label, sizeof(label), "%s", state->commit);
	if (dgm_git_open(&repo, repo_dir, err))
		return -1;
	if (checkout_commit(repo, &oid, label, repo_dir, err))
		goto out;
	if (state->branch[0] && reattach(repo, state, &oid, repo_dir, err))
		goto out;
	ret = 0;
out:
	dgm_git_close(repo);
	return ret;
}

/* --- export ---------------------------------------------------------- */

/* 1 if dir has no entries, 0 if it has, -1 on error (errno set). */
static int dir_is_empty(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int empty = 1;

	if (!d)
		return -1;
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
			empty = 0;
			break;
		}
	closedir(d);
	return empty;
}

/* dest must be new or an empty folder; *created says which. */
static int prepare_dest(const char *dest, bool *created, dgm_error *err)
{
	struct stat st;
	int empty;

	*created = false;
	if (lstat(dest, &st) != 0) {
		if (errno != ENOENT)
			return dgm_error_errno(err, DGM_E_IO, "cannot read '%s'", dest);
		if (dgm_fs_mkdir_p(dest, 0700, err))
			return -1;
		*created = true;
		return 0;
	}
	if (!S_ISDIR(st.st_mode))
		return dgm_error_set(err, DGM_E_IO, "'%s' exists and is not a folder", dest);
	empty = dir_is_empty(dest);
	if (empty < 0)
		return dgm_error_errno(err, DGM_E_IO, "cannot read folder '%s'", dest);
	if (!empty) {
		dgm_error_set(err, DGM_E_IO, "cannot export into '%s': the folder is not empty", dest);
		dgm_error_hint(err, "export needs a new or an empty folder");
		return -1;
	}
	return 0;
}

/* Undo a failed export: dest as it was found. */
static void clean_dest(const char *dest, bool created)
{
	DIR *d;
	struct dirent *e;

	if (created) {
		dgm_fs_remove_tree(dest, NULL);
		return;
	}
	d = opendir(dest);
	if (!d)
		return;
	while ((e = readdir(d)) != NULL) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		char *path = dgm_xasprintf("%s/%s", dest, e->d_name);

		dgm_fs_remove_tree(path, NULL);
		free(path);
	}
	closedir(d);
}

int dgm_git_export(const char *repo_dir, const char *rev, const char *dest, dgm_error *err)
{
	git_checkout_options opts = GIT_CHECKOUT_OPTIONS_INIT;
	git_repository *repo = NULL;
	git_commit *commit = NULL;
	bool created = false;
	git_oid oid;
	int ret = -1;

	if (dgm_git_open(&repo, repo_dir, err))
		return -1;
	if (dgm_git_resolve_commit(&oid, repo, rev, err))
		goto out;
	if (git_commit_lookup(&commit, repo, &oid) < 0) {
		dgm_git_error(err, "cannot read the commit");
		dgm_error_prefix(err, "'%s'", rev);
		goto out;
	}
	if (prepare_dest(dest, &created, err))
		goto out;
	/* FORCE into an empty folder writes every file of the tree (modes
	 * and symlinks as git writes them); the repository's index is not
	 * updated nor written, and its work tree is not looked at. */
	opts.checkout_strategy = GIT_CHECKOUT_FORCE | GIT_CHECKOUT_DONT_UPDATE_INDEX;
	opts.target_directory = dest;
	if (git_checkout_tree(repo, (const git_object *)commit, &opts) < 0) {
		dgm_error_set(err, DGM_E_GIT, "cannot export '%s' into '%s': %s", rev, dest,
			      last_git_message());
		clean_dest(dest, created);
		goto out;
	}
	ret = 0;
out:
	git_commit_free(commit);
	dgm_git_close(repo);
	return ret;
}
