/*
 * archive_int.h - private to src/archive: hashing, progress, the sorted
 * tree walk, the archive reader that hashes what it reads, the checks
 * an entry must pass, and file copies.
 */
#ifndef DGM_ARCHIVE_INT_H
#define DGM_ARCHIVE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <archive.h>
#include <archive_entry.h>
#include <openssl/evp.h>

#include "dgm/archive.h"
#include "dgm/buf.h"
#include "dgm/error.h"

#define AR_STORE "store"
#define AR_EXTRA "extra"
/* What a manifest records of a mode: permission bits, no set-id or
 * sticky bit (manifest.c). */
#define AR_MODE_BITS 0777u
/* PATH_MAX, and the margin kept below it for every path a restore
 * builds (staged, final, aside): entries that would come closer are
 * refused before anything is written. */
#define AR_PATH_MAX 4096
#define AR_PATH_MARGIN 64
/* what a staging folder adds to the store's path: ".restore-XXXXXX/" */
#define AR_STAGING_EXTRA 16

/* --- SHA-256 (util.c) --- */
EVP_MD_CTX *ar_sha_new(void);           /* aborts when OpenSSL cannot start one */
void ar_sha_update(EVP_MD_CTX *c, const void *data, size_t len);
void ar_sha_final(EVP_MD_CTX *c, char out[65]); /* and frees c */
void ar_sha_buf(char out[65], const void *data, size_t len);

/* --- progress (util.c) --- */
typedef struct ar_progress {
	dgm_archive_progress_fn fn;
	void *payload;
	long long done, total;
	long last_ms;
} ar_progress;

void ar_progress_add(ar_progress *p, long long n);
void ar_progress_end(ar_progress *p);

/* --- names (util.c) --- */
/* s made printable for a message: bytes outside printable ASCII and
 * invalid UTF-8 as \xNN, cut at len. Returns out. */
const char *ar_show(char *out, size_t len, const char *s);
#define AR_SHOW_MAX 512
bool ar_utf8_valid(const char *s);
/* Last component of path, trailing slashes ignored (caller frees). */
char *ar_basename(const char *path);
/* The folder holding path ("." or "/" at the top; caller frees). */
char *ar_dirname(const char *path);
const char *ar_type_name(dgm_archive_type t);
/* "<path>.old-20240131T120000Z", unused yet (caller frees). */
char *ar_aside_name(const char *path);
/* DGMIGRATE_FAULT_KILL_AT=<point>: SIGKILL here (crash tests). */
void ar_fault(const char *point);
/* rename that never replaces an existing dest. */
int ar_rename_noreplace(const char *from, const char *to, dgm_error *err);

/* --- sorted walk (walk.c) --- */
/* Called for the root first, then for every entry below in pre-order,
 * names sorted bytewise. fs: the path on disk; ap: the archive path
 * (aroot + "/" + relative path). st from lstat (for the root: stat, so
 * a symlinked root is followed). Non-zero return stops the walk. */
typedef int (*ar_walk_fn)(const char *fs, const char *ap, const struct stat *st,
			  void *payload, dgm_error *err);
int ar_walk(const char *root, const char *aroot, ar_walk_fn fn, void *payload, dgm_error *err);

/* --- manifest helpers (manifest.c) --- */
/* Position of the entry named path, or -1. */
long ar_manifest_pos(const dgm_archive_manifest *m, const char *path);

/* st (lstat) is the file an entry recorded the identity of (has_stat:
 * size, mtime, inode, device and ctime to the ns, git's index test):
 * unchanged since, so its content is the entry's without reading it.
 * The mode is the caller's to compare. */
bool ar_stat_unchanged(const dgm_archive_entry *me, const struct stat *st);

/* --- a strict JSON reader driven by the expected shape (json.c) --- */
typedef struct ar_json {
	const char *start, *p, *end;
	const char *file;         /* for messages */
	dgm_error *err;
	dgm_buf s;                /* the last string value read */
} ar_json;

typedef int (*ar_json_member_fn)(ar_json *j, const char *key, void *ctx);
typedef int (*ar_json_item_fn)(ar_json *j, void *ctx);

/* "manifest 'F' is not valid: line N: WHAT"; returns -1. */
int ar_json_fail(ar_json *j, const char *what);
void ar_json_ws(ar_json *j);
int ar_json_char(ar_json *j, char c);     /* expect c (after white space) */
bool ar_json_peek(ar_json *j, char c);    /* consume c if it comes next */
int ar_json_string(ar_json *j, dgm_buf *out); /* decoded, UTF-8, no NUL */
int ar_json_int(ar_json *j, long long *out);  /* integers only */
/* Calls fn for each member, positioned at its value. */
int ar_json_object(ar_json *j, ar_json_member_fn fn, void *ctx);
int ar_json_array(ar_json *j, ar_json_item_fn fn, void *ctx);
/* A file name: a UTF-8 string, or (hex) the bytes as lowercase hex. */
int ar_json_name(ar_json *j, bool hex, char **out);
int ar_json_sha(ar_json *j, char out[65]);
/* Record key as seen in *seen (bit); fails when seen before. */
int ar_json_key(ar_json *j, unsigned *seen, unsigned bit, const char *key);
int ar_json_unknown(ar_json *j, const char *key);

/* --- reading archives (read.c) --- */
typedef struct ar_reader {
	struct archive *a;
	int fd;
	EVP_MD_CTX *sha;          /* of every byte of the file */
	long long bytes;
	unsigned char *in;        /* read callback buffer */
	unsigned char *data;      /* entry content buffer */
	const char *path;
	int io_errno;
} ar_reader;

int ar_reader_open(ar_reader *r, const char *path, dgm_error *err);
/* 1 and *e set: an entry; 0: the end; -1: error. */
int ar_reader_next(ar_reader *r, struct archive_entry **e, dgm_error *err);
/* Read the content of the current entry in blocks; sink (may be NULL)
 * gets each block. The content's SHA-256 goes to sha. */
typedef int (*ar_sink_fn)(const void *data, size_t len, void *payload, dgm_error *err);
int ar_reader_content(ar_reader *r, char sha[65], long long *len, ar_sink_fn sink,
		      void *payload, dgm_error *err);
/* Read to the end of the file; compare its SHA-256 and size with m. */
int ar_reader_finish(ar_reader *r, const dgm_archive_manifest *m, dgm_error *err);
void ar_reader_close(ar_reader *r);

/* The entry's archive path, refused when it is not a safe, normalized
 * relative path under store/ or extra/ whose every parent folder is a
 * folder of m already seen (seen[] indexed like m->entries). */
int ar_path_check(const char *path, const dgm_archive_manifest *m, const unsigned char *seen,
		  dgm_error *err);
/* Compare a header with its manifest entry (found by path, not seen
 * before): type, mode, mtime, size, link target. *pos: its index. */
int ar_header_check(long *pos, struct archive_entry *e, const dgm_archive_manifest *m,
		    const unsigned char *seen, dgm_error *err);
/* The path, header and order checks of one entry read from the
 * archive (ar_path_check, ar_header_check), then marked seen: what
 * verify and restore both do with every entry. */
int ar_check_next(long *pos, struct archive_entry *e, const dgm_archive_manifest *m,
		  unsigned char *seen, dgm_error *err);
/* --- the checks of a whole manifest (check.c) --- */
/* Before reading an archive by m: every path safe, in order (parents
 * first), never longer on disk than AR_PATH_MAX - AR_PATH_MARGIN under
 * a root of root_len bytes (the staging folder with its '/'), modes
 * within AR_MODE_BITS and not writable by everyone, a store folder,
 * extras absolute and entries under extra/ only theirs. */
int ar_manifest_check(const dgm_archive_manifest *m, size_t root_len, dgm_error *err);
/* Which extra path (index) an entry under extra/<i>/ belongs to, or
 * -1; *tail: what follows "extra/<i>/<basename>" (NULL for extra/<i>). */
long ar_extra_index(const dgm_archive_manifest *m, const char *path, const char **tail);
/* Read the archive through, every entry checked against m (already
 * checked with ar_manifest_check), and the file's size and hash. */
int ar_verify_archive(const dgm_archive_manifest *m, const char *archive, dgm_error *err);

/* Every entry of m this archive holds (no "in") seen? Else names the first missing one. */
int ar_all_seen(const dgm_archive_manifest *m, const unsigned char *seen, dgm_error *err);
/* Compare a computed content hash with the entry's. */
int ar_content_check(const dgm_archive_entry *me, const char sha[65], long long len,
		     dgm_error *err);

/* --- chains (chain.c; archive.h "Chains") --- */
/* A file whose mtime or ctime is within this of the start of the
 * archive (or after it) gets no recorded identity: a change in the
 * same clock tick as the read could leave both times as they were.
 * Kernel file times come from a coarse clock (1-10 ms a tick). */
#define AR_RACY_NS 50000000LL
/* A file system that keeps whole seconds only: this margin instead. */
#define AR_RACY_COARSE_NS 2000000000LL
/* A snapshot id: 1-64 of [A-Za-z0-9_.-], not starting with '.'. */
bool ar_id_valid(const char *id);
/* Every "in" names a listed base, every base is named, none is m's own. */
int ar_bases_check(const dgm_archive_manifest *m, dgm_error *err);
/* ../ID/<basename of archive>, beside archive's folder (caller frees). */
char *ar_base_path(const char *archive, const char *id);

typedef struct ar_base {
	const dgm_archive_base *rec; /* as recorded in the chained manifest */
	char *path;               /* its archive file */
	dgm_archive_manifest m;   /* its own manifest, checked */
	long *ours;               /* per entry of m: the chained manifest's entry it
				   * holds, or -1 */
	const char *first;        /* a file it holds, for messages */
} ar_base;

typedef struct ar_chain {
	ar_base *bases;
	size_t n;
} ar_chain;

/* Every base of m (the manifest of archive, checked): its archive file
 * there with the recorded size, its manifest read and checked like m
 * (root_len as for m), recording the recorded SHA-256 and size, and
 * holding each file that m says it holds as a file (not referring on)
 * with m's type, mode, mtime, size and SHA-256. A failure names the
 * snapshot and a file it holds. */
int ar_chain_open(ar_chain *c, const dgm_archive_manifest *m, const char *archive,
		  size_t root_len, dgm_error *err);
/* Read every base archive through against its manifest (ar_verify_archive). */
int ar_chain_verify(const ar_chain *c, dgm_error *err);
void ar_chain_free(ar_chain *c);
/* "snapshot 'ID' (archive 'P'), which holds 'store/x' of this one: " */
void ar_chain_prefix(const ar_base *b, dgm_error *err);

/* --- owners, copies and removal (copy.c) --- */
/* Who owns what a restore writes: never the archive's uid/gid, but the
 * owner of what is being replaced (the store folder, an extra path),
 * else the process. set: chown to uid:gid (only as root). */
typedef struct ar_owner {
	bool set;
	uid_t uid;
	gid_t gid;
} ar_owner;

void ar_owner_of(ar_owner *o, const char *path);
/* Owner (first: chown clears set-id bits), mode, mtime of an open fd. */
int ar_set_meta(int fd, const char *show, const ar_owner *o, unsigned mode, long long mtime,
		dgm_error *err);
/* Copy a regular file to a new name in folder dfd while hashing it;
 * owner o, mode and mtime from me. Returns 1 (and removes it) when the
 * content's hash is not me's: the source changed. */
int ar_copy_file(const char *src, int dfd, const char *name, const dgm_archive_entry *me,
		 const ar_owner *o, unsigned char *buf, dgm_error *err);
/* Copy a tree (files, folders, symlinks, with modes and mtimes, owned
 * by o) to a new dst. */
int ar_copy_tree(const char *src, const char *dst, const ar_owner *o, dgm_error *err);
/* rm -rf by file descriptors (openat/unlinkat, one open folder at a
 * time): no length limit, never follows symlinks, gets through
 * read-only folders. A missing path is not an error. */
int ar_remove_tree(const char *path, dgm_error *err);

/* --- restore pieces (extract.c, compare.c) --- */
typedef struct ar_stage {
	const dgm_archive_manifest *m;
	const char *archive;
	const char *dir;          /* the staging folder (extraction root) */
	const char *current;      /* the current store: source of copies */
	const unsigned char *same; /* per entry: unchanged there, copy it (NULL: none) */
	bool skip_store;          /* the store is identical: write none of it */
	const bool *want_extra;   /* per extra path: extract it (NULL: none) */
	ar_owner owner;           /* of everything written */
	unsigned char *buf;       /* DGM_ARCHIVE_BLOCK, for copies */
	ar_progress *progress;
	const ar_chain *chain;    /* the bases m reads files from (NULL: none) */
	long long files, bytes;   /* extracted */
	long long files_copied, bytes_copied;
} ar_stage;

/* Each entry in archive order, by file descriptors below the staging
 * folder (never by path, so neither the working folder nor PATH_MAX
 * matters): a file unchanged in the current store is copied from there
 * (if it changed meanwhile, it is extracted after all), anything else
 * extracted; folders get their modes and mtimes last, deepest first.
 * Entries of the store (skip_store) and of extras not wanted are read
 * through and hashed, not written. */
int ar_extract(ar_stage *s, dgm_error *err);
/* Which files of the current store match m (same[] per entry); whether
 * the whole store is identical to m's store entries. Never fails:
 * what cannot be read simply does not match. */
void ar_compare_store(bool *identical, unsigned char *same, const char *target,
		      const dgm_archive_manifest *m, unsigned char *buf);
/* Check a staged tree (dir/<archive paths>) against m's entries under
 * prefix ("store" or "extra"), metadata only: content was hashed as it
 * was written. */
int ar_check_staged(const char *dir, const char *prefix, const dgm_archive_manifest *m,
		    dgm_error *err);

/* --- the intent file of a restore (recover.c) --- */
/* Record r's names and phase ("stage", "swap", "commit") durably in
 * r->intent (TARGET.restore.intent). */
int ar_intent_write(dgm_archive_restore_state *r, const char *phase, dgm_error *err);
/* Remove it (the restore is settled). */
int ar_intent_remove(dgm_archive_restore_state *r, dgm_error *err);

#endif
