/*
 * archive.h - the model-store archive: a pax tar compressed with zstd,
 * with a JSON manifest beside it, verified and restored safely.
 *
 * Layout of an archive (paths are byte strings, '/'-separated):
 *   store                      the model store folder itself
 *   store/<rel>                everything below it, in sorted order
 *   extra                      (synthetic folder, 0700, mtime 0)
 *   extra/<i>                  (the same), one per extra path
 *   extra/<i>/<basename>[/..]  extra path number i (a file or a folder)
 * The store and each extra path are followed if they are symlinks; below
 * them nothing is followed: symlinks are archived as links. Only files,
 * folders and symlinks are archived (anything else is an error); hard
 * links become separate files; mtimes are kept to the second.
 * Modes: the manifest records permission bits only (0777): setuid,
 * setgid and sticky bits, and write permission for everyone (except on
 * symlinks, whose mode means nothing), are stripped when archiving;
 * a restore and verify refuse an archive or manifest that has them (a
 * forgery: we never write them).
 * Owners: never taken from an archive. A restore makes everything it
 * writes belong to the owner of what it replaces (the store folder, an
 * extra path; the process's user when there is none).
 * Paths: a restore refuses, before writing anything, an entry whose
 * path on disk (staged, final or aside) would come within 64 bytes of
 * PATH_MAX, or with a name over 255 bytes.
 * The same files always give the same archive, byte for byte.
 *
 * Chains (dgm_archive_opts.base_id): a snapshot's archive holds only
 * what changed since an earlier snapshot of the same store; its
 * manifest still lists every entry, and a file entry with "in": ID is
 * held by the archive of snapshot ID, found at ../ID/<archive name>
 * beside this archive's folder (a snapshot folder). References are
 * flat: ID is the archive that holds the bytes, never one that refers
 * on. The manifest records each base's archive SHA-256 and size, so
 * what signs the manifest signs the chain. Verify and restore read
 * every archive of the chain with every check below; a base that is
 * missing or differs from what is recorded is refused, naming the
 * snapshot and a file it holds.
 *
 * Files written: DEST (the archive) and DEST.manifest.json, both 0600.
 * The manifest is made durable before the archive is renamed into
 * place, so an archive that exists always has its manifest; a manifest
 * without its archive is the trace of an interrupted create.
 *
 * Memory does not grow with the size of the files: content moves in
 * fixed blocks (DGM_ARCHIVE_BLOCK). It does grow with the number of
 * entries (the manifest is held in memory, ~150 bytes an entry), and by
 * a fixed amount per zstd worker thread (see dgm_archive_opts.threads).
 *
 * Threads: create and verify may run beside other work (nothing here
 * changes the working folder or keeps global state; a restore extracts
 * by file descriptors). A restore also uses dgm_fs_fsync_tree, which
 * keeps its error pointer in a static: do not run it beside other users
 * of it.
 */
#ifndef DGM_ARCHIVE_H
#define DGM_ARCHIVE_H

#include <stdbool.h>
#include <stddef.h>

#include "dgm/error.h"

#define DGM_ARCHIVE_BLOCK (1 << 20)
#define DGM_ARCHIVE_MANIFEST_SUFFIX ".manifest.json"
/* The most archives one snapshot's store is read from (its own included). */
#define DGM_ARCHIVE_CHAIN_MAX 16

/* Called with the bytes of file content handled so far and the total,
 * at most about four times a second, and once at the end with
 * done == total. */
typedef void (*dgm_archive_progress_fn)(long long done, long long total, void *payload);

typedef enum dgm_archive_type {
	DGM_ARCHIVE_FILE = 0,
	DGM_ARCHIVE_DIR,
	DGM_ARCHIVE_SYMLINK
} dgm_archive_type;

typedef struct dgm_archive_entry {
	char *path;          /* archive path, raw bytes (see the layout above) */
	dgm_archive_type type;
	long long size;      /* file: content bytes; symlink: target length; dir: 0 */
	unsigned mode;       /* permission bits, 07777 */
	long long mtime;     /* seconds since the epoch */
	char sha256[65];     /* file: content; symlink: target; dir: "" */
	/* Chains (see "Chains" above): the id of the snapshot whose archive
	 * holds this file's content; NULL: this archive holds it. */
	char *in;
	/* The file's identity when it was read (lstat: st_dev, st_ino, mtime
	 * and ctime in ns), recorded only when neither time was within
	 * AR_RACY_NS of the start of the archive (a file changed in the
	 * same clock tick as it was read could keep both): has_stat. */
	bool has_stat;
	long long dev, ino, mtime_ns, ctime_ns;
} dgm_archive_entry;

/* An archive a chained manifest reads files from: the snapshot's id and
 * what its archive file was when referenced (recorded, so signed). */
typedef struct dgm_archive_base {
	char *id;
	char archive_sha256[65];
	long long archive_bytes;
} dgm_archive_base;

typedef struct dgm_archive_manifest {
	long long created;        /* unix time the archive was written */
	char archive_sha256[65];  /* of the archive file as written */
	long long archive_bytes;  /* its size */
	long long content_bytes;  /* sum of the file sizes */
	char *store;              /* the folder archived as "store" */
	char **extras;            /* extras[i] was archived under "extra/<i>/" */
	size_t n_extras;
	dgm_archive_entry *entries; /* in archive order (those held elsewhere too) */
	size_t n_entries;
	dgm_archive_base *bases;  /* the archives entries' "in" name, in order */
	size_t n_bases;
	size_t cap_entries;       /* private */
	dgm_archive_entry **by_path; /* private: sorted, for _find */
} dgm_archive_manifest;

/* What dgm_archive_create writes. */
typedef struct dgm_archive_opts {
	const char *dest;         /* the archive file; must not exist */
	const char *store;        /* the model store folder */
	const char *const *extras; /* other files or folders, may be NULL */
	size_t n_extras;
	int level;                /* zstd level 1-22; 0 means 3 */
	/* zstd worker threads 0-64 (libarchive 3.6.2 "zstd:threads"); 0:
	 * compress in this thread. Each worker holds fixed buffers: peak RSS
	 * grew by 7 MiB with 0, 48-70 MiB with 1, 86-112 MiB with 2 at level 3
	 * (more at higher levels), whatever the store's size. On 2 cores at
	 * level 3, 0 was also the fastest (reading and hashing are serial). */
	int threads;
	dgm_archive_progress_fn progress; /* may be NULL */
	void *payload;
	/* A chain: the id of an earlier snapshot of the same store (no
	 * extras on either side) whose archive is ../BASE_ID/<name of dest>
	 * beside dest's folder. A file whose size, mode, inode, device,
	 * mtime and ctime are those recorded there is neither read nor
	 * archived again: the entry names the archive that holds it. NULL:
	 * a full archive. A base whose files come from DGM_ARCHIVE_CHAIN_MAX
	 * - 1 archives already (itself included) is refused (the caller
	 * then archives in full): a restore reads every archive of a chain
	 * through, so chains stay short. */
	const char *base_id;
} dgm_archive_opts;

/* Settle an interrupted restore of the store first (dgm_archive_recover:
 * a store killed between the renames of a swap is put back). Write the
 * archive to DEST.tmp (0600) while hashing every entry and the
 * output, flush it, write DEST.manifest.json durably, then rename
 * DEST.tmp to DEST and flush the folder. On failure nothing is left but
 * what existed before. m (may be NULL) receives the manifest; free it
 * with dgm_archive_manifest_free(). Call dgm_archive_verify() afterwards
 * to prove the copy on disk reads back. */
int dgm_archive_create(dgm_archive_manifest *m, const dgm_archive_opts *o, dgm_error *err);

/* Check the manifest (NULL: the archive's path +
 * DGM_ARCHIVE_MANIFEST_SUFFIX) with every check a restore makes (paths,
 * order, types, modes, extras, lengths under the recorded store), then
 * re-read the archive and compare it: the archive file's SHA-256 and
 * size, and every entry's path, type, size, mode, mtime and content or
 * link-target hash; no entry missing, none extra. A mismatch fails with
 * DGM_E_ARCHIVE: "archive 'A' does not match its manifest: 'store/x.bin'
 * sha256 differs"; what a restore would refuse: "archive 'A' would not
 * be restored: refusing entry ...". */
int dgm_archive_verify(const char *archive, const char *manifest, dgm_error *err);

/* Like dgm_archive_verify for a chain, but the archives of the bases
 * are not read again (they were verified when their snapshots were
 * made): each must be there with the size recorded, its manifest must
 * read, pass every check, and agree with the files referenced (type,
 * mode, mtime, size, SHA-256) and with the recorded archive SHA-256.
 * What a new snapshot runs on its own archive. */
int dgm_archive_verify_new(const char *archive, dgm_error *err);
/* The snapshot ids whose archives the archive's manifest references
 * (its bases; none for a full archive). *ids: NULL-terminated, free
 * each and the array. */
int dgm_archive_bases(char ***ids, size_t *n, const char *archive, dgm_error *err);

/* --- manifest ---------------------------------------------------------- */

/* The manifest's path for an archive (caller frees). */
char *dgm_archive_manifest_path(const char *archive);

/* Would archiving store (with no extra paths) now give the same content
 * as the archive? *same: every entry of its manifest is there with the
 * same type, mode and content, and nothing else is: a file is hashed
 * unless the manifest recorded its identity and it is unchanged (git's
 * index test). An archive with extra paths is never the same. With
 * read_archive, first the whole archive and its chain are read back
 * (dgm_archive_verify): an archive that is not intact fails, so it is
 * never linked into another snapshot; without, the caller vouches that
 * they were read back and have not changed since. Settles an
 * interrupted restore of store first (dgm_archive_recover). */
int dgm_archive_store_matches(bool *same, const char *archive, const char *store,
			      bool read_archive, dgm_error *err);
/* Read and check a manifest (strict: unknown keys, missing fields and
 * inconsistent totals are errors). */
int dgm_archive_manifest_read(dgm_archive_manifest *m, const char *path, dgm_error *err);
/* Write m as JSON to path (0600, atomically: temp file, fsync, rename). */
int dgm_archive_manifest_write(const dgm_archive_manifest *m, const char *path,
			       dgm_error *err);
/* The entry named path, or NULL. */
const dgm_archive_entry *dgm_archive_manifest_find(const dgm_archive_manifest *m,
						   const char *path);
/* Append a copy of e (the snapshot catalog does not need this; tests
 * build manifests with it). Call _index before _find. */
void dgm_archive_manifest_add(dgm_archive_manifest *m, const dgm_archive_entry *e);
/* Sort the lookup index; fails on a duplicate path. */
int dgm_archive_manifest_index(dgm_archive_manifest *m, dgm_error *err);
void dgm_archive_manifest_free(dgm_archive_manifest *m);

/* --- restore ----------------------------------------------------------- */

typedef struct dgm_archive_restore_opts {
	const char *archive;
	const char *manifest;     /* NULL: the archive's path + suffix */
	const char *target;       /* the model store folder; need not exist */
	/* Extra paths to put back at their original absolute place; each
	 * must be one of the manifest's extras (the manifest alone never
	 * decides where we write). Extras not listed are not extracted at
	 * all (read through and checked only). */
	const char *const *restore_extras;
	size_t n_restore_extras;
	dgm_archive_progress_fn progress;
	void *payload;
} dgm_archive_restore_opts;

/* One path replaced by a restore: the store, or an extra path. */
typedef struct dgm_archive_swap {
	char *path;               /* the final place (the store: symlinks resolved) */
	char *staged;             /* the verified new content, beside path */
	char *aside;              /* where the current content goes: PATH.old-<UTC time> */
	char *dir;                /* the staging folder holding staged (0700) */
	bool existed;             /* path existed at swap time (so aside holds it) */
	bool swapped;
} dgm_archive_swap;

typedef struct dgm_archive_restore_state {
	bool identical;           /* the store already matched the manifest file by
				   * file (size, mode, mtime, SHA-256): left as is */
	dgm_archive_swap store;   /* store.dir is TARGET.restore-XXXXXX */
	dgm_archive_swap *extras; /* one per restore_extras item */
	size_t n_extras;
	char *intent;             /* private: TARGET.restore.intent, see _recover */
	long long files_copied, bytes_copied;       /* unchanged, from the current store */
	long long files_extracted, bytes_extracted; /* from the archive */
} dgm_archive_restore_state;

/* Everything up to the swap; nothing outside the staging folders
 * changes. First settles an interrupted restore (dgm_archive_recover),
 * checks the manifest as dgm_archive_verify does, with the lengths
 * under this target, then compares the current store with the manifest
 * (reading the files whose size, mode and mtime match); when it matches
 * file by file (folders by mode: their mtimes do not count)
 * r->identical is set and, unless extras are to be restored, nothing is
 * created, but the archive is still read through and verified.
 * Otherwise it refuses a target that is a mount point or whose file
 * system lacks room for a full copy, records the staging folder in the
 * intent file, then extracts into TARGET.restore-XXXXXX (0700) by file
 * descriptors (src/archive/extract.c) - an entry with an absolute path,
 * a '..' component, a path through a symlink, an unexpected type or a
 * difference from the manifest fails the whole restore - copying the
 * files that are unchanged in the current store instead of extracting
 * them (copies, never hard links: the current store stays intact).
 * Then it checks the staged tree and the archive's SHA-256 against the
 * manifest and flushes it all. On failure every staging folder is
 * removed. DGMIGRATE_FAULT_KILL_AT=store.staged kills the process once
 * everything is staged (crash tests). */
int dgm_archive_restore_stage(dgm_archive_restore_state *r, const dgm_archive_restore_opts *o,
			      dgm_error *err);
/* Renames only: each PATH -> its aside, staged -> PATH, folder flushed.
 * If a rename fails, the swaps already done are undone. Every name is
 * recorded in the intent file (fsynced) before the first rename, so a
 * crash anywhere in between is undone by dgm_archive_recover.
 * DGMIGRATE_FAULT_KILL_AT=store.swap.between kills the process between
 * the two renames of the store, store.swapped after all of them. */
int dgm_archive_restore_swap(dgm_archive_restore_state *r, dgm_error *err);
/* Keep the restore: mark it committed in the intent file (a crash from
 * here on completes it), remove the asides, the staging folders and the
 * intent file. DGMIGRATE_FAULT_KILL_AT=store.commit: killed once marked. */
int dgm_archive_restore_commit(dgm_archive_restore_state *r, dgm_error *err);
/* Undo: put every aside back in place and remove the staging folders
 * and the intent file. */
int dgm_archive_restore_abort(dgm_archive_restore_state *r, dgm_error *err);
void dgm_archive_restore_free(dgm_archive_restore_state *r);
/* Settle a restore of store that was cut short (killed, crashed) at any
 * point, from the intent file beside it (TARGET.restore.intent, see
 * src/archive/recover.c): before the swap or in the middle of it, the
 * old content is put back and the staging folders removed; once
 * committed, the old content and the staging folders are removed. With
 * no intent file, staging folders TARGET.restore-XXXXXX are removed.
 * NULL or a store with nothing to settle: does nothing. Called by
 * _restore_stage, dgm_archive_create and _store_matches; callers must
 * hold the run's lock (it must not race a live restore). */
int dgm_archive_recover(const char *store, dgm_error *err);

/* _stage then _swap; the caller still commits or aborts. */
int dgm_archive_restore(dgm_archive_restore_state *r, const dgm_archive_restore_opts *o,
			dgm_error *err);

#endif
