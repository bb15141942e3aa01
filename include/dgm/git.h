/*
 * git.h - the application repository through libgit2: tags, commits,
 * the state of the work tree. (Trees at a tag: see tree.h.)
 */
#ifndef DGM_GIT_H
#define DGM_GIT_H

#include <stdbool.h>
#include <git2.h>

#include "dgm/buf.h"
#include "dgm/error.h"

/* Open the repository whose work tree is dir (no upward search).
 * Initialises libgit2; pair with dgm_git_close. */
int dgm_git_open(git_repository **out, const char *dir, dgm_error *err);
void dgm_git_close(git_repository *repo);

/* Resolve rev (tag, branch, commit id, "HEAD") to a commit id, peeling
 * annotated tags. Unknown rev: DGM_E_GIT naming it and the tags there. */
int dgm_git_resolve_commit(git_oid *out, git_repository *repo, const char *rev,
			   dgm_error *err);

/* Whether tracked files differ from HEAD (in index or work tree);
 * untracked files do not count, as they do not block a checkout. */
int dgm_git_is_dirty(bool *dirty, char *first_path, size_t first_len,
		     git_repository *repo, dgm_error *err);

/* Called for each untracked file (ignored: whether .gitignore and the
 * like exclude it); its path is relative to the work tree's root. */
typedef int (*dgm_git_untracked_cb)(const char *path, bool ignored, void *payload);

/* Every untracked file under dir (relative to the work tree's root, ""
 * for all), the ignored ones too, in subfolders as well. A non-zero
 * return of cb stops the walk (that is not an error). */
int dgm_git_untracked(git_repository *repo, const char *dir, dgm_git_untracked_cb cb,
		      void *payload, dgm_error *err);

/* Hex id of HEAD's commit (41 bytes), and whether HEAD is detached. */
int dgm_git_head(char out[GIT_OID_HEXSZ + 1], bool *detached, git_repository *repo,
		 dgm_error *err);

/* Append the names of the tags that point at commit ("v1.5, v1.5.0"). */
int dgm_git_tags_at(dgm_buf *out, git_repository *repo, const git_oid *commit);
/* All tag names; free with git_strarray_dispose. */
int dgm_git_tag_names(git_strarray *out, git_repository *repo, dgm_error *err);

/* --- checkout and export (checkout.c) --- */

/* Where HEAD was, so a checkout can be undone: the commit, and the
 * branch name when HEAD was on a branch ("" when detached). */
typedef struct dgm_git_state {
	char commit[GIT_OID_HEXSZ + 1];
	char branch[256];      /* e.g. "refs/heads/main", "" if detached */
} dgm_git_state;

/* Read where HEAD is now. */
int dgm_git_state_read(dgm_git_state *out, const char *repo_dir, dgm_error *err);

/* `git checkout REV` as git leaves it: the work tree and index updated to
 * REV's commit (a tag is peeled), HEAD detached at that commit. Safe
 * mode: refuses (DGM_E_RUN, naming the first conflicting path) when a
 * tracked file has local changes, and then changes nothing; untracked
 * files that the target does not track are left alone. prev (may be NULL)
 * receives where HEAD was before. Files the target removes are removed.
 *
 * As with git, "conflicting" means a local change (staged or not) to a
 * file REV changes, or an untracked file where REV has one; a local change
 * to a file REV leaves as it is is kept, with a warning. prev is filled
 * as soon as HEAD has been read, so it is valid even when the checkout
 * itself fails. */
int dgm_git_checkout(dgm_git_state *prev, const char *repo_dir, const char *rev,
		     dgm_error *err);

/* Put HEAD back to a recorded state: checkout of state->commit, then HEAD
 * re-attached to state->branch when it was on a branch (and that branch
 * still points at the commit; else detached, with a warning via dgm_warn). */
int dgm_git_restore_state(const char *repo_dir, const dgm_git_state *state, dgm_error *err);

/* Write REV's tree into dest (created 0700, must not exist or be empty)
 * without touching the repository's work tree, index or HEAD - for running
 * `alembic upgrade --sql` against a tag's migrations without checking it
 * out. On failure dest is left as it was found (removed, or emptied). */
int dgm_git_export(const char *repo_dir, const char *rev, const char *dest, dgm_error *err);

/* Fill err from libgit2's last error, with context. Returns -1. */
int dgm_git_error(dgm_error *err, const char *context);

#endif
