/* catalog.c - snapshot manifests (JSON, jansson), listing and pruning. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "dgm/buf.h"
#include "dgm/fs.h"
#include "dgm/log.h"
#include "dgm/pg.h"
#include "dgm/pgbackrest.h"
#include "dgm/snapshot.h"
#include "internal.h"

static json_t *strlist_json(const dgm_strlist *l)
{
	json_t *a = json_array();

	for (size_t i = 0; i < l->count; i++)
		json_array_append_new(a, json_string(l->items[i]));
	return a;
}

static json_t *to_json(const dgm_snapshot *s)
{
	json_t *o = json_object();

	json_object_set_new(o, "format_version", json_integer(1));
	json_object_set_new(o, "id", json_string(s->id));
	json_object_set_new(o, "kind", json_string(s->kind));
	json_object_set_new(o, "release", json_string(s->release ? s->release : ""));
	json_object_set_new(o, "tag", json_string(s->tag ? s->tag : ""));
	json_object_set_new(o, "commit", json_string(s->commit ? s->commit : ""));
	json_object_set_new(o, "alembic_revisions", strlist_json(&s->revisions));
	json_object_set_new(o, "created", json_integer(s->created));
	json_object_set_new(o, "write_counters", s->writes ? json_loads(s->writes, 0, NULL) :
			    json_object());
	json_object_set_new(o, "database", json_pack("{s:s, s:s, s:s, s:s, s:s, s:i, s:I, s:s}",
		"name", s->database, "server_version", s->server_version,
		"pg_dump_version", s->pg_dump_version ? s->pg_dump_version : "",
		"wal_lsn", s->wal_lsn ? s->wal_lsn : "",
		"format", s->pitr ? "pgbackrest" : !s->has_dump ? "copy" : s->format == DGM_DUMP_DIRECTORY ? "directory" :
		"custom",
		"toc_entries", s->toc_entries, "bytes", (json_int_t)s->db_bytes,
		"files_sha256", s->db_sha256));
	if (s->db_copy)
		json_object_set_new(json_object_get(o, "database"), "copy", json_string(s->db_copy));
	if (s->pitr)
		json_object_set_new(json_object_get(o, "database"), "pgbackrest",
				    dgm_pgbr_point_json(s->pitr));
	if (s->catalog_sha256[0])
		json_object_set_new(json_object_get(o, "database"), "catalog_sha256",
				    json_string(s->catalog_sha256));
	if (s->has_store) {
		json_object_set_new(o, "model_store", json_pack("{s:s, s:s, s:I, s:I, s:I}",
			"path", s->store, "archive_sha256", s->archive_sha256,
			"archive_bytes", (json_int_t)s->archive_bytes,
			"content_bytes", (json_int_t)s->content_bytes,
			"entries", (json_int_t)s->entries));
		if (s->store_from)
			json_object_set_new(json_object_get(o, "model_store"), "linked_from",
					    json_string(s->store_from));
	}
	json_object_set_new(o, "timings_ms", json_pack("{s:i, s:i, s:i, s:i}",
		"dump", (int)s->dump_ms, "archive", (int)s->archive_ms,
		"verify", (int)s->verify_ms, "total", (int)s->total_ms));
	return o;
}

char *dgm_snapshot_json(const dgm_snapshot *snap)
{
	json_t *o = to_json(snap);
	char *text = json_dumps(o, JSON_COMPACT);
	char *copy = dgm_xstrdup(text ? text : "{}");

	free(text);
	json_decref(o);
	return copy;
}

json_t *dgm_snapshot_manifest_json(const dgm_snapshot *snap)
{
	return to_json(snap);
}

int dgm_snapshot_write_manifest(dgm_snapshot *snap, const dgm_plan *sign_with,
				const char *dir, dgm_error *err)
{
	json_t *o = to_json(snap);
	char *text = NULL, *path = dgm_xasprintf("%s/manifest.json", dir);
	int ret = -1;

	if (sign_with && dgm_snapshot_sign(o, snap, sign_with, dir, err))
		goto out;
	text = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	ret = dgm_fs_write_atomic(path, text, strlen(text), 0600, err);
	/* the snapshot in memory is what was written: a restore of it (an
	 * apply's undo) checks the same HMAC a later read would find */
	free(snap->hmac);
	snap->hmac = ret == 0 && sign_with ?
		     json_dumps(json_object_get(o, "hmac"), JSON_COMPACT) : NULL;
out:
	free(path);
	free(text);
	json_decref(o);
	return ret;
}

static char *jstr(json_t *o, const char *key)
{
	const char *v = json_string_value(json_object_get(o, key));

	return dgm_xstrdup(v ? v : "");
}

/* NULL where the key is absent (or empty). */
static char *jstr_opt(json_t *o, const char *key)
{
	const char *v = json_string_value(json_object_get(o, key));

	return v && *v ? dgm_xstrdup(v) : NULL;
}

static void from_json(dgm_snapshot *s, json_t *o, const char *dir)
{
	json_t *db = json_object_get(o, "database"), *ms = json_object_get(o, "model_store");
	json_t *t = json_object_get(o, "timings_ms"), *revs = json_object_get(o, "alembic_revisions");
	const char *fmt = json_string_value(json_object_get(db, "format"));

	s->id = jstr(o, "id");
	s->dir = dgm_xstrdup(dir);
	s->kind = jstr(o, "kind");
	s->release = jstr(o, "release");
	s->tag = jstr(o, "tag");
	s->commit = jstr(o, "commit");
	s->created = json_integer_value(json_object_get(o, "created"));
	s->writes = json_dumps(json_object_get(o, "write_counters"), JSON_COMPACT);
	if (!s->writes)
		s->writes = dgm_xstrdup("{}");
	s->revisions.count = json_array_size(revs);
	s->revisions.items = dgm_xcalloc(s->revisions.count + 1, sizeof(char *));
	for (size_t i = 0; i < s->revisions.count; i++) {
		const char *r = json_string_value(json_array_get(revs, i));

		s->revisions.items[i] = dgm_xstrdup(r ? r : "");
	}
	s->database = jstr(db, "name");
	s->server_version = jstr(db, "server_version");
	s->pg_dump_version = jstr(db, "pg_dump_version");
	s->wal_lsn = jstr(db, "wal_lsn");
	s->format = fmt && !strcmp(fmt, "custom") ? DGM_DUMP_CUSTOM : DGM_DUMP_DIRECTORY;
	s->db_copy = jstr_opt(db, "copy");
	s->pitr = dgm_pgbr_point_from_json(json_object_get(db, "pgbackrest"));
	s->has_dump = !s->pitr && (!fmt || strcmp(fmt, "copy") != 0);
	snprintf(s->catalog_sha256, sizeof(s->catalog_sha256), "%s",
		 json_string_value(json_object_get(db, "catalog_sha256")) ?: "");
	s->toc_entries = (int)json_integer_value(json_object_get(db, "toc_entries"));
	s->db_bytes = json_integer_value(json_object_get(db, "bytes"));
	snprintf(s->db_sha256, sizeof(s->db_sha256), "%s",
		 json_string_value(json_object_get(db, "files_sha256")) ?: "");
	s->has_store = ms != NULL;
	if (ms) {
		s->store = jstr(ms, "path");
		snprintf(s->archive_sha256, sizeof(s->archive_sha256), "%s",
			 json_string_value(json_object_get(ms, "archive_sha256")) ?: "");
		s->archive_bytes = json_integer_value(json_object_get(ms, "archive_bytes"));
		s->content_bytes = json_integer_value(json_object_get(ms, "content_bytes"));
		s->entries = json_integer_value(json_object_get(ms, "entries"));
		s->store_from = jstr_opt(ms, "linked_from");
	}
	s->dump_ms = (long)json_integer_value(json_object_get(t, "dump"));
	s->archive_ms = (long)json_integer_value(json_object_get(t, "archive"));
	s->verify_ms = (long)json_integer_value(json_object_get(t, "verify"));
	s->total_ms = (long)json_integer_value(json_object_get(t, "total"));
	if (json_object_get(o, "hmac"))
		s->hmac = json_dumps(json_object_get(o, "hmac"), JSON_COMPACT);
}

int dgm_snapshot_read(dgm_snapshot *snap, const char *dir, dgm_error *err)
{
	char *path = dgm_xasprintf("%s/manifest.json", dir);
	json_error_t jerr;
	json_t *o;

	memset(snap, 0, sizeof(*snap));
	o = json_load_file(path, 0, &jerr);
	if (!o || !json_is_object(o) || !json_is_string(json_object_get(o, "id"))) {
		dgm_error_set(err, DGM_E_IO, "cannot read snapshot manifest '%s': %s", path,
			      o ? "not a snapshot manifest" : jerr.text);
		json_decref(o);
		free(path);
		return -1;
	}
	from_json(snap, o, dir);
	json_decref(o);
	free(path);
	return 0;
}

static int newest_first(const void *a, const void *b)
{
	const dgm_snapshot *x = a, *y = b;

	if (x->created != y->created)
		return x->created < y->created ? 1 : -1;
	return strcmp(y->id, x->id);
}

int dgm_snapshot_list(dgm_snapshot **out, size_t *n, const char *backup_dir, dgm_error *err)
{
	DIR *d = opendir(backup_dir);
	struct dirent *de;
	size_t cap = 0;

	*out = NULL;
	*n = 0;
	if (!d)
		return errno == ENOENT ? 0 :
		       dgm_error_errno(err, DGM_E_IO, "cannot list snapshots in '%s'", backup_dir);
	while ((de = readdir(d)) != NULL) {
		dgm_error ignore = DGM_ERROR_INIT;
		char *dir;

		if (de->d_name[0] == '.' || strstr(de->d_name, ".partial"))
			continue;
		dir = dgm_xasprintf("%s/%s", backup_dir, de->d_name);
		if (*n == cap) {
			cap = cap ? 2 * cap : 8;
			*out = dgm_xrealloc(*out, cap * sizeof(**out));
		}
		if (dgm_snapshot_read(&(*out)[*n], dir, &ignore) == 0)
			(*n)++;
		else
			dgm_debug("not a snapshot: '%s' (%s)", dir, ignore.msg);
		free(dir);
	}
	closedir(d);
	if (*n)
		qsort(*out, *n, sizeof(**out), newest_first);
	return 0;
}

int dgm_snapshot_find(dgm_snapshot *snap, const char *backup_dir, const char *id,
		      dgm_error *err)
{
	dgm_snapshot *all = NULL;
	size_t n = 0, hits = 0, at = 0;

	memset(snap, 0, sizeof(*snap));
	if (dgm_snapshot_list(&all, &n, backup_dir, err))
		return -1;
	for (size_t i = 0; i < n; i++)
		if (!strncmp(all[i].id, id, strlen(id))) {
			hits++;
			at = i;
		}
	if (hits == 1) {
		*snap = all[at];
		memset(&all[at], 0, sizeof(all[at]));
	}
	dgm_snapshot_list_free(all, n);
	if (hits == 1)
		return 0;
	dgm_error_set(err, DGM_E_USAGE, "%s snapshot '%s' in '%s'",
		      hits ? "more than one" : "no", id, backup_dir);
	dgm_error_hint(err, "'dgmigrate backups list PLAN' shows the snapshots");
	return -1;
}

/* The database copy first: a folder whose copy could not be dropped
 * stays listed, so the next prune tries again. */
static int drop_copy(const dgm_snapshot *s, const dgm_plan *plan, dgm_error *err)
{
	dgm_error e = DGM_ERROR_INIT;

	/* a forged manifest could name any database as its copy */
	if (s->db_copy && dgm_snapshot_authenticate(s, plan, &e)) {
		dgm_warn("%s: its server-side copy '%s' is not dropped (drop it by hand if it is "
			 "one)", e.msg, s->db_copy);
		dgm_error_clear(&e);
	} else if (s->db_copy && dgm_snapshot_drop_copy(plan, s->db_copy, err))
		return -1;
	return 0;
}

/* The whole folder; or, when a kept snapshot reads model store files
 * from its archive, all but that archive (folded: no longer a snapshot). */
static int remove_one(const dgm_snapshot *s, const dgm_plan *plan,
		      const dgm_snapshot_needs *nd, dgm_error *err)
{
	if (drop_copy(s, plan, err))
		return -1;
	if (!dgm_snapshot_needed(nd, s->id)) {
		if (dgm_fs_remove_tree(s->dir, err))
			return -1;
		dgm_info("removed snapshot '%s'", s->id);
		return 0;
	}
	if (dgm_snapshot_fold(s->dir, err))
		return -1;
	dgm_info("removed snapshot '%s', all but its model store archive: a kept snapshot reads "
		 "unchanged files from it", s->id);
	return 0;
}

/* The way back from the newest apply: the newest pre-apply snapshot
 * holds the previous release's state, which a rollback restores. */
static const dgm_snapshot *way_back(const dgm_snapshot *all, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (all[i].kind && !strcmp(all[i].kind, "pre-apply"))
			return &all[i];
	return NULL;
}

int dgm_snapshot_prune(int *removed, const dgm_plan *plan, int keep, bool force,
		       bool (*in_use)(const char *id, void *payload), void *payload,
		       dgm_error *err)
{
	const char *backup_dir = plan->snapshot.directory;
	const dgm_snapshot *back;
	dgm_snapshot *all = NULL;
	dgm_snapshot_needs nd = { 0 };
	bool *gone;
	size_t n = 0;
	int ret = 0;

	*removed = 0;
	if (keep < 1)
		return dgm_error_set(err, DGM_E_USAGE, "--keep must be at least 1 (the newest "
				     "snapshot is never pruned)");
	if (dgm_snapshot_list(&all, &n, backup_dir, err))
		return -1;
	back = way_back(all, n);
	gone = dgm_xcalloc(n + 1, sizeof(*gone));
	for (size_t i = (size_t)keep; i < n; i++) {
		if (in_use && in_use(all[i].id, payload)) {
			dgm_info("keeping snapshot '%s': an unfinished run still needs it", all[i].id);
			continue;
		}
		if (&all[i] == back && !force) {
			dgm_info("keeping snapshot '%s': it holds the state before the newest apply "
				 "(of '%s'), the one a rollback to the previous release restores "
				 "(--force prunes it too)", all[i].id, all[i].tag);
			continue;
		}
		gone[i] = true;
	}
	/* never break a chain: what the kept ones read from stays */
	ret = dgm_snapshot_needs_of(&nd, all, n, gone, err);
	for (size_t i = 0; i < n && ret == 0; i++) {
		if (!gone[i])
			continue;
		ret = remove_one(&all[i], plan, &nd, err);
		if (ret == 0)
			(*removed)++;
	}
	if (ret == 0)
		ret = dgm_snapshot_drop_folded(plan, &nd, err);
	dgm_snapshot_needs_free(&nd);
	free(gone);
	dgm_snapshot_list_free(all, n);
	return ret;
}

int dgm_snapshot_trim_copies(const dgm_plan *plan, int keep, dgm_error *err)
{
	dgm_snapshot *all = NULL;
	size_t n = 0;
	int kept = 0, ret = 0;

	if (dgm_snapshot_list(&all, &n, plan->snapshot.directory, err))
		return -1;
	for (size_t i = 0; i < n && ret == 0; i++) {
		dgm_snapshot *s = &all[i];

		dgm_error e = DGM_ERROR_INIT;

		if (!s->db_copy || !s->has_dump || kept++ < keep)
			continue;
		/* never drop what a forged manifest names, nor re-sign it */
		if (dgm_snapshot_authenticate(s, plan, &e)) {
			dgm_warn("%s: its server-side copy '%s' is kept", e.msg, s->db_copy);
			dgm_error_clear(&e);
			continue;
		}
		ret = dgm_snapshot_drop_copy(plan, s->db_copy, err);
		if (ret == 0) {
			dgm_info("dropped the server-side copy '%s' of snapshot '%s' (its dump stays; "
				 "snapshot.keep_copies is %d)", s->db_copy, s->id, keep);
			free(s->db_copy);
			s->db_copy = NULL;
			ret = dgm_snapshot_write_manifest(s, s->hmac ? plan : NULL, s->dir, err);
		}
	}
	dgm_snapshot_list_free(all, n);
	return ret;
}

int dgm_snapshot_copies_size(long long *bytes, int *count, const dgm_plan *plan,
			      const dgm_snapshot *all, size_t n, dgm_error *err)
{
	PGconn *conn = NULL;
	int ret = 0;

	*bytes = 0;
	*count = 0;
	for (size_t i = 0; i < n && ret == 0; i++) {
		const char *name = all[i].db_copy;
		PGresult *res = NULL;

		if (!name)
			continue;
		if (!conn && dgm_pg_connect(&conn, plan->database.url, "dgmigrate backups", err))
			return -1;
		ret = dgm_pg_query(&res, conn, "SELECT pg_database_size(oid) FROM pg_database "
				   "WHERE datname = $1", 1, &name, err);
		if (ret == 0 && PQntuples(res) == 1) {
			*bytes += atoll(PQgetvalue(res, 0, 0));
			(*count)++;
		}
		PQclear(res);
	}
	dgm_pg_close(conn);
	return ret;
}

void dgm_snapshot_free(dgm_snapshot *s)
{
	if (!s)
		return;
	free(s->id);
	free(s->dir);
	free(s->kind);
	free(s->release);
	free(s->tag);
	free(s->commit);
	dgm_strlist_free(&s->revisions);
	free(s->database);
	free(s->server_version);
	free(s->pg_dump_version);
	free(s->wal_lsn);
	free(s->writes);
	free(s->store);
	free(s->db_copy);
	free(s->store_from);
	free(s->hmac);
	dgm_pgbr_point_free(s->pitr);
	memset(s, 0, sizeof(*s));
}

void dgm_snapshot_list_free(dgm_snapshot *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		dgm_snapshot_free(&list[i]);
	free(list);
}
