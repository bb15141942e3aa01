/*
 * tree.h - read-only access to a folder of files, either the work tree
 * on disk or a git tree (a tag or commit, read with libgit2, without a
 * checkout). The Alembic loader reads alembic.ini and the version
 * folders through this, so the same code answers "the graph now" and
 * "the graph as it stood at v1.5".
 *
 * Paths are relative to the tree's root, '/'-separated, "" is the root.
 */
#ifndef DGM_TREE_H
#define DGM_TREE_H

#include <stdbool.h>

#include "dgm/buf.h"
#include "dgm/error.h"

/* Called once per entry of a folder ("." and ".." excluded), in no
 * particular order. Return non-zero to stop (that value is returned by
 * list). */
typedef int (*dgm_tree_entry_cb)(const char *name, bool is_dir, void *payload);

typedef struct dgm_tree {
	void *ctx;
	char *label;   /* for messages: the root folder, or "v1.5" */
	int (*list)(void *ctx, const char *dir, dgm_tree_entry_cb cb, void *payload,
		    dgm_error *err);
	int (*read)(void *ctx, const char *path, dgm_buf *out, dgm_error *err);
	/* 1 exists as a file, 2 as a folder, 0 absent */
	int (*kind)(void *ctx, const char *path);
	void (*close)(void *ctx);
} dgm_tree;

/* The file system under root (an absolute or relative folder). */
int dgm_tree_open_fs(dgm_tree *t, const char *root, dgm_error *err);
/* A git tree: REV (tag, branch, commit id) of the repository holding
 * repo_dir. Implemented in src/git/. */
int dgm_tree_open_git(dgm_tree *t, const char *repo_dir, const char *rev, dgm_error *err);
void dgm_tree_close(dgm_tree *t);

#endif
