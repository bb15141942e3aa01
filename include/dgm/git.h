/*
 * git.h - the application repository through libgit2: tags, commits,
 * the state of the work tree. (Trees at a tag: see tree.h.)
 */
#ifndef DGM_GIT_H
#define DGM_GIT_H

#include <stdbool.h>
#include <git2.h>

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

/* Hex id of HEAD's commit (41 bytes), and whether HEAD is detached. */
int dgm_git_head(char out[GIT_OID_HEXSZ + 1], bool *detached, git_repository *repo,
		 dgm_error *err);

/* Fill err from libgit2's last error, with context. Returns -1. */
int dgm_git_error(dgm_error *err, const char *context);

#endif
