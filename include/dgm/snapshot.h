/*
 * snapshot.h - a release's safety copy: the database (pg_dump) and the
 * model store (archive) taken together, verified, and catalogued.
 *
 * On disk, in the plan's snapshot.directory (0700; files 0600):
 *   <id>.partial/            while it is being written; never trusted
 *   <id>/manifest.json       the catalog entry, written last
 *   <id>/db/ or db.dump      pg_dump -Fd (parallel) or -Fc
 *   <id>/db.sha256           SHA-256 of every dump file (sha256sum format)
 *   <id>/models.tar.zst      the model store and extra paths
 *   <id>/models.tar.zst.manifest.json
 *   <id>/writes.json         the data-loss baseline (dataloss.h)
 * manifest.json and writes.json carry an HMAC-SHA-256 ("hmac") keyed by
 * a secret outside the folder (snapshot.key_file, default
 * <state_dir>/snapshot.key): manifest.json's covers itself, db.sha256
 * (so every dump file) and the archive's manifest (so the archive). A
 * snapshot whose HMAC does not match is never verified, restored or
 * rolled back to; one without is only with --trust-unsigned (hmac.c).
 * Server-side copies (CREATE DATABASE ... TEMPLATE, seconds where a
 * dump or a restore takes minutes): a rollback's safety snapshot may
 * hold its database only as such a copy, <target>_dgm_safe_<id>, no
 * db/ folder; apply's snapshot (and a manual one) may keep a copy
 * <target>_dgm_snap_<id> beside its dump - the dump is then taken from
 * the copy, so both hold the same - for a restore in seconds (the
 * newest snapshot.keep_copies keep theirs). Copy-first (apply), the
 * checked copy alone completes the snapshot ("format": "copy"), and
 * its dump and store archive are added to it afterwards, each written
 * beside the manifest and then named by it (signed again). Where the
 * model store was unchanged since the snapshot a safety snapshot is taken
 * for (store_like), that one's archive is hard-linked (store_from)
 * instead of written again; otherwise the archive is chained to the
 * newest signed snapshot of the same store and holds only what changed
 * (archive.h, "Chains"). Pruning drops copies too, and folds a snapshot
 * whose archive a kept one reads from: <id>/ then holds only
 * models.tar.zst and its manifest, no manifest.json (src/snapshot/prune.c).
 * A folder without ".partial" and with a manifest.json is complete and
 * was verified when it was made.
 */
#ifndef DGM_SNAPSHOT_H
#define DGM_SNAPSHOT_H

#include <signal.h>
#include <stdbool.h>

#include "dgm/error.h"
#include "dgm/plan.h"

typedef struct dgm_snapshot {
	char *id;                 /* 20261129T064955Z-3f2a */
	char *dir;                /* absolute folder */
	char *kind;               /* "pre-apply", "pre-rollback", "manual" */
	char *release;
	char *tag;                /* the release the plan deploys */
	char *commit;             /* HEAD of the work tree when taken, "" unknown */
	dgm_strlist revisions;    /* alembic_version rows when taken */
	char *database;
	char *server_version;
	char *pg_dump_version;
	char *wal_lsn;            /* pg_current_wal_lsn() when taken */
	char *writes;             /* JSON {"schema.table": inserts+updates+deletes}
				   * from pg_stat_user_tables when taken: a later
				   * restore compares them to see what it would lose */
	dgm_dump_format format;
	bool has_dump;            /* db/ or db.dump is there */
	bool dump_pending;        /* copy-first: the dump of db_copy is still to be
				   * taken (dgm_snapshot_dump_copy); not in the
				   * manifest, which says "copy" until it is */
	bool store_pending;       /* copy-first: the store archive is still to be
				   * made (dgm_snapshot_archive_store) */
	char catalog_sha256[65];  /* the schema fingerprint the copy was checked
				   * against (the source's when copied), or "" */
	char *db_copy;            /* a server-side copy of the database, or NULL */
	char *store_from;         /* snapshot whose archive was linked, or NULL */
	int toc_entries;
	long long db_bytes;
	char db_sha256[65];       /* of db.sha256, which lists every dump file */
	bool has_store;
	char *store;              /* model store path archived */
	char archive_sha256[65];
	long long archive_bytes;
	long long content_bytes;
	long long entries;
	long long created;        /* unix time */
	long dump_ms, archive_ms, verify_ms, total_ms;
	char *hmac;               /* manifest.json's "hmac" as JSON text, NULL unsigned */
	bool aside_pending;       /* DGM_SNAPSHOT_ASIDE: still in its .partial folder,
				   * waiting for db_copy (below) */
	struct dgm_pgbr_point *pitr; /* snapshot.engine: pgbackrest - the database is a
				   * restore point in the WAL archive (pgbackrest.h),
				   * no dump or copy; NULL otherwise */
} dgm_snapshot;

/* The write counters of every application table, as one JSON object. */
#define DGM_SNAPSHOT_WRITES_SQL \
	"SELECT coalesce(json_object_agg(format('%I.%I', schemaname, relname)," \
	" n_tup_ins + n_tup_upd + n_tup_del), '{}')::text FROM pg_stat_user_tables" \
	" WHERE schemaname <> 'dgmigrate'"

/* How the database is kept. A server-side copy needs no other session
 * on the database; where it cannot be made the database is dumped. */
typedef enum dgm_snapshot_db {
	DGM_SNAPSHOT_DUMP = 0,    /* pg_dump */
	DGM_SNAPSHOT_COPY,        /* a server-side copy only */
	DGM_SNAPSHOT_COPY_DUMP,   /* a server-side copy, and pg_dump of the copy */
	DGM_SNAPSHOT_ASIDE        /* the database itself, renamed aside by the restore
				   * that replaces it (below) */
} dgm_snapshot_db;

/* What the caller knows that the snapshot records. */
typedef struct dgm_snapshot_opts {
	const char *kind;
	const char *commit;       /* may be NULL */
	dgm_snapshot_db db;
	const struct dgm_snapshot *store_like; /* link its archive if the store
				   * still matches it file by file; may be NULL */
	bool copy_first;          /* with DGM_SNAPSHOT_COPY_DUMP: once the copy is
				   * made and checked, the snapshot is complete
				   * with it alone; its dump and the store archive
				   * are left to dgm_snapshot_dump_copy and
				   * dgm_snapshot_archive_store (dump_pending,
				   * store_pending). Without a copy, a dump and
				   * the archive at once, as ever */
} dgm_snapshot_opts;

/* Dump the database and archive the model store at the same time, verify
 * both, write the manifest, rename into place. On failure nothing that
 * looks like a snapshot is left. */
int dgm_snapshot_create(dgm_snapshot *snap, const dgm_plan *plan,
			const dgm_snapshot_opts *opts, dgm_error *err);

/* The off-server dump of a copy-first snapshot, taken while the release
 * proceeds: pg_dump of the copy into <dir>/db (or db.dump), read back by
 * pg_restore --list, flushed, and db.sha256 written. Touches only files
 * in the folder and reads snap (safe on a thread while the caller reads
 * snap too); what is left of an earlier try is removed first. cancel
 * stops pg_dump when set. */
typedef struct dgm_snapshot_dump {
	char pg_dump_version[32];
	int toc_entries;
	long long bytes;
	char db_sha256[65];
	long ms;
} dgm_snapshot_dump;

int dgm_snapshot_dump_copy(dgm_snapshot_dump *out, const dgm_snapshot *snap,
			   const dgm_plan *plan, const volatile sig_atomic_t *cancel,
			   dgm_error *err);
/* Then (the caller's thread): the manifest names the dump too (signed
 * again), the folder is flushed, and older snapshots' copies beyond
 * snapshot.keep_copies are dropped. */
int dgm_snapshot_add_dump(dgm_snapshot *snap, const dgm_plan *plan,
			  const dgm_snapshot_dump *d, dgm_error *err);
/* A dump that will not be added: its files (complete or partial) go. */
void dgm_snapshot_discard_dump(const dgm_snapshot *snap);

/* The model store archive of a copy-first snapshot, the same way: made
 * and verified into <dir>/models.tar.zst (safe on a thread), then added
 * to the manifest by the caller's thread. */
typedef struct dgm_snapshot_store {
	char archive_sha256[65];
	long long archive_bytes;
	long long content_bytes;
	long long entries;
	long ms;
} dgm_snapshot_store;

int dgm_snapshot_archive_store(dgm_snapshot_store *out, const dgm_snapshot *snap,
			       const dgm_plan *plan, dgm_error *err);
int dgm_snapshot_add_store(dgm_snapshot *snap, const dgm_plan *plan,
			   const dgm_snapshot_store *st, dgm_error *err);
void dgm_snapshot_discard_store(const dgm_snapshot *snap);

/* DGM_SNAPSHOT_ASIDE, for a restore that replaces the database anyway
 * (rollback --restore): a full copy of a database about to be replaced
 * is not needed, the database itself is kept. dgm_snapshot_create takes
 * the model store part and leaves the snapshot in its .partial folder,
 * aside_pending, db_copy naming <target>_dgm_safe_<id>, which does not
 * exist yet (owner.json names no copy, so no sweep ever drops it). The
 * restore renames the database to that name instead of dropping it
 * (dgm_restore_opts.aside_into) and calls dgm_snapshot_finish_aside: its
 * revisions, write counters and catalog fingerprint are read from the
 * database set aside, checked, and the manifest written and renamed into
 * place. dgm_snapshot_label_aside then labels the copy (sweep.c).
 * dgm_snapshot_discard_aside: the database is not (or no longer) set
 * aside under that name: the snapshot folder goes (manifest first); if
 * the copy exists, the snapshot is left alone (-1, warned). */
int dgm_snapshot_finish_aside(dgm_snapshot *snap, const dgm_plan *plan, dgm_error *err);
void dgm_snapshot_label_aside(const dgm_snapshot *snap, const dgm_plan *plan);
int dgm_snapshot_discard_aside(const dgm_snapshot *snap, const dgm_plan *plan);

/* Re-check a snapshot: the archive against its manifest, every dump file
 * against db.sha256 (none missing, none extra), pg_restore --list; or a
 * database copy: it exists and holds the recorded revisions. */
int dgm_snapshot_verify(const dgm_snapshot *snap, const dgm_plan *plan, dgm_error *err);

/* Read <dir>/manifest.json. */
int dgm_snapshot_read(dgm_snapshot *snap, const char *dir, dgm_error *err);

/* Every complete snapshot in the folder, newest first. */
int dgm_snapshot_list(dgm_snapshot **out, size_t *n, const char *backup_dir, dgm_error *err);
/* Find ID (or a unique prefix) in the folder. */
int dgm_snapshot_find(dgm_snapshot *snap, const char *backup_dir, const char *id,
		      dgm_error *err);

/* Remove all but the `keep` newest; never the newest one, never one for
 * which in_use(id) says true, and without force never the newest
 * pre-apply snapshot (the way back to the previous release). removed
 * counts what went. */
int dgm_snapshot_prune(int *removed, const dgm_plan *plan, int keep, bool force,
		       bool (*in_use)(const char *id, void *payload), void *payload,
		       dgm_error *err);

/* Drop the server-side copies of all but the newest `keep` snapshots
 * that also have a dump (their manifests then name no copy); a copy that
 * is the only database of its snapshot stays. */
int dgm_snapshot_trim_copies(const dgm_plan *plan, int keep, dgm_error *err);

/* The space the listed snapshots' server-side copies take on the
 * database server (pg_database_size), and how many exist. */
int dgm_snapshot_copies_size(long long *bytes, int *count, const dgm_plan *plan,
			     const dgm_snapshot *all, size_t n, dgm_error *err);

/* What a killed snapshot of the plan's database left behind: its
 * <id>.partial folder (database NULL when the folder does not say whose
 * it is) and the server-side copy it was making; or a copy labelled for
 * a snapshot folder of this plan that is gone (dir NULL). */
typedef struct dgm_snapshot_orphan {
	char *id;
	char *dir;                /* the .partial folder, or NULL */
	char *database;           /* the database it is a snapshot of */
	char *copy;               /* its server-side copy, or NULL */
	bool copy_exists;
} dgm_snapshot_orphan;

/* List them (nothing changes). in_progress: a run holds the database's
 * lock, so they may be that run's snapshot being written. */
int dgm_snapshot_orphans(dgm_snapshot_orphan **out, size_t *n, bool *in_progress,
			 const dgm_plan *plan, dgm_error *err);
void dgm_snapshot_orphans_free(dgm_snapshot_orphan *list, size_t n);

/* Take the database's lock and remove them (copies, then folders); a
 * held lock or an unreachable server is only reported: never fails the
 * caller. dgm_snapshot_create does the same under the caller's lock. */
void dgm_snapshot_sweep_locked(const dgm_plan *plan);
/* snapshot.engine: pgbackrest - what a killed restore: side left (the
 * side instance, the dumps made from it in snapshot folders) goes. The
 * caller holds the lock. */
void dgm_snapshot_pitr_sweep(const dgm_plan *plan);

/* The snapshot is what was signed: manifest.json, db.sha256, the
 * archive's manifest and writes.json match their HMACs under the plan's
 * key; else an error naming the files that do not match and the key
 * file. A snapshot without HMAC fails too, unless trusted (below). */
int dgm_snapshot_authenticate(const dgm_snapshot *snap, const dgm_plan *plan, dgm_error *err);
/* The same as a yes/no; a snapshot that fails is warned about, naming
 * the files, and skipped (a lookup among the snapshots). */
bool dgm_snapshot_authentic(const dgm_snapshot *snap, const dgm_plan *plan);
/* --trust-unsigned: for this process, snapshots without HMAC (made
 * before snapshots were signed) are used, with a warning. */
void dgm_snapshot_trust_unsigned(bool on);
/* The key file: snapshot.key_file, else <state_dir>/snapshot.key. malloc'd. */
char *dgm_snapshot_key_path(const dgm_plan *plan);
/* Warn when the key file is inside snapshot.directory (whoever can write
 * snapshots could then read or replace it) or readable by others. */
void dgm_snapshot_key_advise(const dgm_plan *plan);
/* Sign a JSON file of snapshot id kept beside its manifest (writes.json):
 * sets o's "hmac" to {"algorithm", "key_id", part: MAC of o without "hmac"}. */
struct json_t;
int dgm_snapshot_seal_json(struct json_t *o, const dgm_plan *plan, const char *id,
			   const char *part, dgm_error *err);

void dgm_snapshot_free(dgm_snapshot *snap);
void dgm_snapshot_list_free(dgm_snapshot *list, size_t n);

/* The manifest as one JSON object (for --json and reports). malloc'd. */
char *dgm_snapshot_json(const dgm_snapshot *snap);

#endif
