/* internal.h - what the files of src/snapshot/ share. */
#ifndef DGM_SNAPSHOT_INTERNAL_H
#define DGM_SNAPSHOT_INTERNAL_H

#include "dgm/snapshot.h"

#include <limits.h>
#include <stddef.h>

struct json_t;
struct pg_conn;

/* Write DIR/manifest.json; signed (hmac.c) with the plan's key when
 * sign_with is set, else without an HMAC; snap->hmac says which. */
int dgm_snapshot_write_manifest(dgm_snapshot *snap, const dgm_plan *sign_with,
				const char *dir, dgm_error *err);
/* The catalog entry as JSON, without "hmac" (the part its MAC covers). */
struct json_t *dgm_snapshot_manifest_json(const dgm_snapshot *snap);

/* The secret snapshots are signed with (hmac.c). */
typedef struct dgm_snapshot_key {
	unsigned char bytes[1024];
	size_t len;
	char id[17];              /* 16 hex: names the key, reveals nothing */
	char path[PATH_MAX];
} dgm_snapshot_key;

/* Read the plan's key; create it (32 random bytes, 0600) when missing
 * and create is set. */
int dgm_snapshot_key_load(dgm_snapshot_key *k, const dgm_plan *plan, bool create,
			  dgm_error *err);
void dgm_snapshot_key_clear(dgm_snapshot_key *k);
/* HMAC-SHA-256 over the n chunks one after the other, in hex. */
int dgm_snapshot_mac(char hex[65], const unsigned char *key, size_t keylen,
		     const void *const *chunks, const size_t *lens, size_t n);
/* The MAC of one part of snapshot id:
 * HMAC(key, "dgmigrate-snapshot-hmac-v1\0" id "\0" part "\0" data). */
int dgm_snapshot_part_mac(char hex[65], const dgm_snapshot_key *k, const char *id,
			  const char *part, const void *data, size_t len);
/* Set manifest's "hmac": the MACs of it and of the files in dir it
 * vouches for. */
int dgm_snapshot_sign(struct json_t *manifest, const dgm_snapshot *s, const dgm_plan *plan,
		      const char *dir, dgm_error *err);
/* o's "hmac" (dgm_snapshot_seal_json) holds under the plan's key. */
bool dgm_snapshot_seal_holds(struct json_t *o, const dgm_plan *plan, const char *id,
			     const char *part);
/* vouch.c: record that the store archive in dir (snapshot id, SHA-256
 * sha) was just read back whole (or was linked from one that was), as
 * the archive file's identity now, sealed; failures only lose the
 * shortcut. */
void dgm_snapshot_vouch(const dgm_plan *plan, const char *dir, const char *id, const char *sha);
/* The store archive of s and of every base of its chain was read back
 * whole and has not changed since (the records hold and match). */
bool dgm_snapshot_archive_vouched(const dgm_snapshot *s, const dgm_plan *plan);
/* Write SNAPDIR/db.sha256 for the dump there; its own SHA-256 in sha. */
int dgm_snapshot_write_checksums(char sha[65], const char *snapdir, dgm_dump_format fmt,
				 dgm_error *err);
/* Compare the dump's files with db.sha256 (and db.sha256 with the manifest). */
int dgm_snapshot_check_checksums(const dgm_snapshot *snap, dgm_error *err);

/* The dump's files against db.sha256, and pg_restore --list against the
 * manifest's entry count (checksums.c). */
int dgm_snapshot_verify_dump(const dgm_snapshot *snap, dgm_error *err);
/* The database as a server-side copy (copy_db.c), made and checked:
 * true; false where it cannot be now (sessions connected, no right to
 * copy, ...): the reason is logged and the caller dumps instead. Needs
 * s->id, s->database, s->server_version and s->revisions. */
bool dgm_snapshot_copy_db(dgm_snapshot *s, const dgm_plan *plan, const char *infix,
			  bool then_dump);
/* Database db holds exactly the snapshot's Alembic revisions (copy_db.c:
 * a copy and a restored database are checked alike). */
int dgm_snapshot_check_db_revisions(const dgm_plan *plan, const dgm_snapshot *snap,
				    const char *db, dgm_error *err);
/* DROP DATABASE IF EXISTS name (a snapshot's copy). */
int dgm_snapshot_drop_copy(const dgm_plan *plan, const char *name, dgm_error *err);
/* The copy exists and holds the snapshot's revisions. */
int dgm_snapshot_check_copy(const dgm_snapshot *s, const dgm_plan *plan, dgm_error *err);

/* A copy's comment: "dgmigrate snapshot copy of <db>: <snapshot folder>". */
#define DGM_SNAPSHOT_LABEL_HEAD "dgmigrate snapshot copy of %s: "
/* COMMENT ON DATABASE copy IS that label (conn: the maintenance database). */
int dgm_snapshot_label_copy(struct pg_conn *conn, const char *copy, const char *db,
			    const char *snapdir, dgm_error *err);
/* Checksums, manifest, flush, rename partial to its final name (s->dir
 * follows). */
int dgm_snapshot_finish(dgm_snapshot *s, const dgm_plan *plan, const char *partial, long start,
			long verify_start, dgm_error *err);
/* <database>_dgm_<infix>_<id>, cut to PostgreSQL's 63 bytes. */
char *dgm_snapshot_copy_name(const char *database, const char *infix, const char *id);
/* PARTIAL/owner.json: the database the snapshot copies and the name of
 * the server-side copy it makes (NULL: none yet), written and flushed
 * before the copy or anything else is made, so a killed run's leftovers
 * can be told from another database's. */
int dgm_snapshot_write_owner(const char *partial, const char *database, const char *copy,
			     dgm_error *err);
/* Remove what killed snapshots of database left behind (sweep.c). The
 * caller holds the database's lock and has connected to the database
 * (so a killed run's copy is over: sweep.c). Each problem is warned
 * about (it never stops a run): -1 if there was one. */
int dgm_snapshot_sweep(const dgm_plan *plan, const char *database);
void dgm_snapshot_orphans_free_one(dgm_snapshot_orphan *o);

/* Model store chains (prune.c): the snapshots whose archives kept
 * snapshots read unchanged files from (archive.h, "Chains"). */
typedef struct dgm_snapshot_needs {
	char **ids;
	size_t n;
} dgm_snapshot_needs;

/* What the snapshots not gone[] need: each one's archive's bases. A
 * manifest that cannot be read fails (nothing is then removed). */
int dgm_snapshot_needs_of(dgm_snapshot_needs *nd, const dgm_snapshot *all, size_t n,
			  const bool *gone, dgm_error *err);
bool dgm_snapshot_needed(const dgm_snapshot_needs *nd, const char *id);
void dgm_snapshot_needs_free(dgm_snapshot_needs *nd);
/* Fold a snapshot folder: manifest.json first (it is then no longer a
 * snapshot), then all but models.tar.zst and its manifest. */
int dgm_snapshot_fold(const char *dir, dgm_error *err);
/* Remove the folded folders nothing needs any longer. */
int dgm_snapshot_drop_folded(const dgm_plan *plan, const dgm_snapshot_needs *nd,
			     dgm_error *err);

/* A restore point's database as a dump (restore_pitr.c): *view is snap
 * (sharing its strings: never freed) with the dump rebuilt from the
 * point into snap's folder; pitr_clean removes that dump again. */
/* For a role that is not a superuser: pg_restore's list of dump without
 * the grants on pg_catalog's objects, which only a superuser may give
 * (written to dir/toc.list, *list its path, a warning names them); NULL
 * when the whole dump can be restored. */
int dgm_snapshot_toc_for_role(char **list, const char *dump, const char *dir, bool super,
			      dgm_error *err);
int dgm_snapshot_pitr_dump(dgm_snapshot *view, const dgm_plan *plan, const dgm_snapshot *snap,
			   dgm_error *err);
void dgm_snapshot_pitr_clean(const dgm_snapshot *snap);
/* The marker of a swap of r (swap_marker.c): written, fsync'd and locked
 * (*fd) before the first rename; unmark closes it, removing the file
 * when remove is set (the target has its name again), else leaving it
 * for resume. */
struct dgm_db_restore;
int dgm_db_swap_mark(int *fd, const dgm_plan *plan, const struct dgm_db_restore *r,
		     dgm_error *err);
void dgm_db_swap_unmark(int *fd, const dgm_plan *plan, bool remove);

#endif
