/*
 * fs.h - file-system helpers every module that writes state needs:
 * durable writes (fsync of files and folders), owner-only folders,
 * removal of trees, SHA-256 of files.
 */
#ifndef DGM_FS_H
#define DGM_FS_H

#include <stddef.h>
#include <sys/types.h>

#include "dgm/error.h"

/* mkdir -p with mode for every folder it creates. */
int dgm_fs_mkdir_p(const char *path, mode_t mode, dgm_error *err);
/* fsync a file, or a folder (so a rename or a new entry in it is durable). */
int dgm_fs_fsync_path(const char *path, dgm_error *err);
/* fsync every file and folder below path (path included). */
int dgm_fs_fsync_tree(const char *path, dgm_error *err);
/* rm -rf; a missing path is not an error. Never follows symlinks. */
int dgm_fs_remove_tree(const char *path, dgm_error *err);
/* Write data to path atomically: path.tmp, fsync, rename, fsync folder. */
int dgm_fs_write_atomic(const char *path, const void *data, size_t len, mode_t mode,
			dgm_error *err);
/* SHA-256 of a file's content as 64 hex digits + NUL. */
int dgm_fs_sha256_file(char out[65], long long *size, const char *path, dgm_error *err);
/* Total size in bytes of regular files below path (symlinks not followed). */
long long dgm_fs_tree_size(const char *path);
/* Free bytes for an unprivileged writer on the file system of path (or
 * of its nearest existing parent). -1 on error. */
long long dgm_fs_free_bytes(const char *path);

#endif
