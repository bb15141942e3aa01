/* backups.c - `dgmigrate backups list|create|verify|prune`. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "dgm/cli.h"
#include "dgm/git.h"
#include "dgm/dataloss.h"
#include "dgm/lock.h"
#include "dgm/log.h"
#include "dgm/pgbackrest.h"
#include "dgm/plan.h"
#include "dgm/release.h"
#include "dgm/restore.h"
#include "dgm/snapshot.h"

static void fmt_time(char *buf, size_t len, long long t)
{
	time_t tt = (time_t)t;
	struct tm tm;

	gmtime_r(&tt, &tm);
	strftime(buf, len, "%Y-%m-%d %H:%M:%SZ", &tm);
}

/* With --json, the result as one event on stdout. */
static void result(const char *event, const char *id, const char *safety)
{
	dgm_buf f = DGM_BUF_INIT;

	dgm_buf_puts(&f, "\"snapshot\":");
	dgm_buf_json_str(&f, id);
	if (safety) {
		dgm_buf_puts(&f, ",\"safety_snapshot\":");
		dgm_buf_json_str(&f, safety);
	}
	dgm_event(event, f.ptr);
	dgm_buf_free(&f);
}

/* The release whose state a snapshot holds: the tags at the commit that
 * was checked out when it was taken (a pre-apply snapshot holds the
 * release before the one its run deployed), else that commit. */
static void holds(char *buf, size_t len, git_repository *repo, const dgm_snapshot *s)
{
	dgm_buf tags = DGM_BUF_INIT;
	git_oid oid;

	if (!s->commit || !*s->commit || git_oid_fromstr(&oid, s->commit) != 0) {
		snprintf(buf, len, "?");
		return;
	}
	if (repo)
		dgm_git_tags_at(&tags, repo, &oid);
	if (tags.len)
		snprintf(buf, len, "%s", tags.ptr);
	else
		snprintf(buf, len, "%.12s", s->commit);
	dgm_buf_free(&tags);
}

static void print_one(const dgm_snapshot *s, const char *held)
{
	char when[32], revs[128] = "";
	size_t used = 0;

	fmt_time(when, sizeof(when), s->created);
	for (size_t i = 0; i < s->revisions.count && used < sizeof(revs) - 16; i++)
		used += (size_t)snprintf(revs + used, sizeof(revs) - used, "%s%.12s", i ? "," : "",
					 s->revisions.items[i]);
	printf("%-24s %-12s %-20s %-14s %-26s ", s->id, s->kind, when, held,
	       s->revisions.count ? revs : "(base)");
	if (s->pitr)
		printf("%8s", "pitr");
	else if (!s->has_dump)
		printf("%8s", "copy");
	else
		printf("%8.1f", (double)s->db_bytes / 1048576.0);
	printf(" %8.1f%s\n", (double)s->archive_bytes / 1048576.0, s->store_from ? " (linked)" : "");
}

static json_t *orphan_json(const dgm_snapshot_orphan *o, bool in_progress)
{
	json_t *db = json_pack("{s:s?}", "name", o->database);

	if (o->copy) {
		json_object_set_new(db, "copy", json_string(o->copy));
		json_object_set_new(db, "copy_exists", json_boolean(o->copy_exists));
	}
	return json_pack("{s:s, s:s, s:s?, s:o, s:s}", "id", o->id, "kind", "orphan",
			 "folder", o->dir, "database", db, "state",
			 in_progress ? "in progress" : "left by a run that did not finish");
}

static void print_orphan(const dgm_snapshot_orphan *o, bool in_progress)
{
	printf("%s: %s %s", o->id, in_progress ? "unfinished snapshot (a run holding the lock "
	       "may be writing it):" : "left by a snapshot that did not finish:",
	       o->dir ? "folder" : "database copy");
	if (o->dir)
		printf(" '%s'%s", o->dir, o->database ? "" : " (it does not say whose it is)");
	if (o->dir && o->copy)
		printf(" and database copy");
	if (o->copy)
		printf(" '%s'%s", o->copy, o->copy_exists ? "" : " (not on the server)");
	printf("\n");
}

/* Unfinished snapshots of this database: after the list, or into the
 * JSON array. Needs the server; without it, a warning. */
static void list_orphans(const dgm_plan *plan, json_t *json)
{
	dgm_snapshot_orphan *o = NULL;
	dgm_error e = DGM_ERROR_INIT;
	bool in_progress = false;
	size_t n = 0;

	if (dgm_snapshot_orphans(&o, &n, &in_progress, plan, &e)) {
		dgm_warn("cannot look for unfinished snapshots: %s", e.msg);
		dgm_error_clear(&e);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		if (json)
			json_array_append_new(json, orphan_json(&o[i], in_progress));
		else
			print_orphan(&o[i], in_progress);
	}
	if (!json && n && !in_progress)
		printf("('dgmigrate resume PLAN', the next apply or rollback, or 'dgmigrate backups "
		       "prune PLAN' removes what a killed snapshot left)\n");
	dgm_snapshot_orphans_free(o, n);
}

/* One JSON document (an array), as every listing prints with --json:
 * the snapshots, then what unfinished ones left (kind "orphan"). */
static void print_json(const dgm_snapshot *all, size_t n, git_repository *repo, json_t *orphans)
{
	json_t *arr = json_array();
	char held[256], *text;

	for (size_t i = 0; i < n; i++) {
		char *one = dgm_snapshot_json(&all[i]);
		json_t *o = json_loads(one, 0, NULL);

		holds(held, sizeof(held), repo, &all[i]);
		json_object_set_new(o, "holds", json_string(held));
		json_array_append_new(arr, o);
		free(one);
	}
	json_array_extend(arr, orphans);
	text = json_dumps(arr, JSON_COMPACT);
	printf("%s\n", text);
	free(text);
	json_decref(arr);
}

/* Kept copies cost the database's size on the server, not in the
 * snapshot folder: say how much, when the server answers. */
static void print_copies_size(const dgm_plan *plan, const dgm_snapshot *all, size_t n)
{
	dgm_error e = DGM_ERROR_INIT;
	long long bytes;
	int count;

	if (dgm_snapshot_copies_size(&bytes, &count, plan, all, n, &e))
		dgm_warn("cannot size the server-side copies: %s", e.msg);
	else if (count)
		printf("server-side copies: %d, %.1f MiB on the database server\n", count,
		       (double)bytes / 1048576.0);
}

static int list(const dgm_plan *plan, bool json, dgm_error *err)
{
	dgm_snapshot *all = NULL;
	git_repository *repo = NULL;
	dgm_error ignore = DGM_ERROR_INIT;
	size_t n = 0;

	if (dgm_snapshot_list(&all, &n, plan->snapshot.directory, err))
		return -1;
	/* labels only: a missing repository leaves them as commits */
	if (dgm_git_open(&repo, plan->release.repository, &ignore))
		repo = NULL;
	if (json) {
		json_t *orphans = json_array();

		list_orphans(plan, orphans);
		print_json(all, n, repo, orphans);
		json_decref(orphans);
		goto out;
	}
	printf("%-24s %-12s %-20s %-14s %-26s %8s %8s\n", "ID", "KIND", "CREATED", "HOLDS",
	       "ALEMBIC REVISIONS", "DB MiB", "STORE MiB");
	for (size_t i = 0; i < n; i++) {
		char held[256];

		holds(held, sizeof(held), repo, &all[i]);
		print_one(&all[i], held);
	}
	if (!n)
		printf("(no snapshots in '%s')\n", plan->snapshot.directory);
	for (size_t i = 0; i < n; i++) {
		if (all[i].db_copy)
			printf("%s: %s '%s' on the same server\n", all[i].id, all[i].has_dump ?
			       "also kept as the database copy" : "the database is the copy",
			       all[i].db_copy);
		if (all[i].pitr)
			printf("%s: the database is restore point '%s' in pgBackRest stanza '%s' "
			       "(LSN %s, timeline %d, backup %s)\n", all[i].id, all[i].pitr->name,
			       all[i].pitr->stanza, all[i].pitr->lsn, all[i].pitr->timeline,
			       all[i].pitr->backup_label);
		if (all[i].kind && !strcmp(all[i].kind, "pre-apply") && all[i].tag)
			printf("%s: taken before applying '%s'\n", all[i].id, all[i].tag);
	}
	print_copies_size(plan, all, n);
	list_orphans(plan, NULL);
out:
	dgm_git_close(repo);
	dgm_snapshot_list_free(all, n);
	return 0;
}

/* The counters now are the snapshot's baseline: a restore of it loses
 * what is written from here (dataloss.h). */
static void mark(const dgm_plan *plan, const dgm_snapshot *s)
{
	dgm_error e = DGM_ERROR_INIT;

	if (dgm_dataloss_mark(plan, s, "backups", &e))
		dgm_warn("%s: a later restore of it will need --accept-data-loss", e.msg);
}

static int create(const dgm_plan *plan, bool json, dgm_error *err)
{
	dgm_snapshot_opts o = { .kind = "manual" };
	dgm_git_state head;
	dgm_error ignore = DGM_ERROR_INIT;
	dgm_snapshot s;
	dgm_lock lock;

	/* the commit checked out says which release the snapshot holds */
	if (dgm_git_state_read(&head, plan->release.repository, &ignore) == 0)
		o.commit = head.commit;
	if (dgm_restore_guard(plan, err) ||
	    dgm_lock_acquire(&lock, plan->database.url, "backups create", 0, err))
		return -1;
	if (dgm_snapshot_create(&s, plan, &o, err)) {
		dgm_lock_release(&lock);
		return -1;
	}
	dgm_lock_release(&lock);
	mark(plan, &s);
	dgm_info("snapshot '%s' written and verified in %.1f s: database %.1f MiB, model store "
		 "%.1f MiB (%lld entries)", s.id, (double)s.total_ms / 1000.0,
		 (double)s.db_bytes / 1048576.0, (double)s.archive_bytes / 1048576.0, s.entries);
	if (json) {
		char *j = dgm_snapshot_json(&s);

		printf("%s\n", j);
		free(j);
	} else
		printf("%s\n", s.id);
	dgm_snapshot_free(&s);
	return 0;
}

static int verify(const dgm_plan *plan, const char *id, dgm_error *err)
{
	dgm_snapshot s;
	int ret;

	if (dgm_snapshot_find(&s, plan->snapshot.directory, id, err))
		return -1;
	ret = dgm_snapshot_verify(&s, plan, err);
	if (ret == 0 && s.pitr)
		dgm_info("snapshot '%s' is intact: restore point '%s' (LSN %s) is in stanza '%s', "
			 "backup %s, WAL archived to %s; %lld archive entries, checksums match", s.id,
			 s.pitr->name, s.pitr->lsn, s.pitr->stanza, s.pitr->backup_label,
			 s.pitr->wal_segment, s.entries);
	else if (ret == 0 && !s.has_dump)
		dgm_info("snapshot '%s' is intact: database copy '%s' holds the recorded revisions, "
			 "%lld archive entries, checksums match", s.id, s.db_copy, s.entries);
	else if (ret == 0)
		dgm_info("snapshot '%s' is intact: %d dump entries%s%s%s, %lld archive entries, "
			 "checksums match", s.id, s.toc_entries, s.db_copy ? " (and database copy '" :
			 "", s.db_copy ? s.db_copy : "", s.db_copy ? "')" : "", s.entries);
	if (ret == 0)
		result("verified", s.id, NULL);
	dgm_snapshot_free(&s);
	return ret;
}


/* Put a snapshot back, after a safety snapshot of the current state, so
 * the restore itself can be undone. */
static int restore(const dgm_plan *plan, const char *id, const dgm_args *args, dgm_error *err)
{
	dgm_restore_opts ro = { .database = true, .store = !dgm_args_flag(args, "no-store"),
				.terminate = dgm_args_flag(args, "terminate-connections") };
	dgm_snapshot_opts so = { .kind = "pre-restore",
				 .db = plan->snapshot.rollback_safety == DGM_SAFETY_COPY ?
				       DGM_SNAPSHOT_COPY : DGM_SNAPSHOT_DUMP };
	dgm_snapshot snap = { 0 }, safety = { 0 };
	dgm_lock lock = { 0 };
	dgm_dataloss dl = { 0 };
	int ret = -1;

	/* refused before the safety snapshot: nothing changes for a forged one */
	if (dgm_snapshot_find(&snap, plan->snapshot.directory, id, err) ||
	    dgm_snapshot_authenticate(&snap, plan, err) || dgm_restore_guard(plan, err) ||
	    dgm_lock_acquire(&lock, plan->database.url, "backups restore", 0, err))
		goto out;
	/* the same check as every other restore, before anything changes */
	dgm_dataloss_check(&dl, plan, &snap, NULL);
	if (dgm_dataloss_gate(&dl, dgm_args_flag(args, "accept-data-loss"), "leave the "
			      "database as it is", err))
		goto out;
	so.store_like = &snap;
	if (dgm_snapshot_create(&safety, plan, &so, err)) {
		dgm_error_prefix(err, "no safety snapshot of the current state, so nothing was restored");
		goto out;
	}
	dgm_info("safety snapshot '%s' holds the current state", safety.id);
	if (dl.verdict != DGM_DATALOSS_NONE)
		free(dgm_dataloss_announce(&dl, safety.id));
	ro.lock = &lock;
	if (dgm_snapshot_restore(plan, &snap, &ro, err)) {
		dgm_error_hint(err, "the current state is also in safety snapshot '%s'", safety.id);
		goto out;
	}
	mark(plan, &snap);
	mark(plan, &safety);
	result("restored", snap.id, safety.id);
	dgm_info("snapshot '%s' restored (database%s); the state before is in snapshot '%s'",
		 snap.id, ro.store && snap.has_store ? " and model store" : "", safety.id);
	ret = 0;
out:
	dgm_dataloss_free(&dl);
	dgm_lock_release(&lock);
	dgm_snapshot_free(&safety);
	dgm_snapshot_free(&snap);
	return ret;
}

static int prune(const dgm_plan *plan, const char *keep_arg, bool force, dgm_error *err)
{
	int keep = plan->snapshot.keep, removed = 0;

	if (keep_arg) {
		char *end;
		long k = strtol(keep_arg, &end, 10);

		if (*end || k < 1 || k > 100000)
			return dgm_error_set(err, DGM_E_USAGE, "--keep takes a whole number of at "
					     "least 1, got '%s'", keep_arg);
		keep = (int)k;
	}
	/* an interrupted swap's database may be set aside under a snapshot
	 * copy's name: nothing is swept or pruned before resume */
	if (dgm_restore_guard(plan, err))
		return -1;
	dgm_snapshot_sweep_locked(plan);
	if (dgm_snapshot_prune(&removed, plan, keep, force, dgm_release_snapshot_in_use,
			       (void *)plan, err))
		return -1;
	dgm_info("pruned %d snapshot%s; kept the %d newest and those named above", removed,
		 removed == 1 ? "" : "s", keep);
	{
		char f[64];

		snprintf(f, sizeof(f), "\"removed\":%d,\"kept\":%d", removed, keep);
		dgm_event("pruned", f);
	}
	return 0;
}

int dgm_cmd_backups(const dgm_args *args, dgm_error *err)
{
	const char *sub = args->pos[0];
	bool with_id = !strcmp(sub, "verify") || !strcmp(sub, "restore");
	bool json = dgm_args_flag(args, "json");
	dgm_plan plan;
	int ret;

	dgm_snapshot_trust_unsigned(dgm_args_flag(args, "trust-unsigned"));
	if (strcmp(sub, "list") && strcmp(sub, "create") && !with_id && strcmp(sub, "prune")) {
		dgm_error_set(err, DGM_E_USAGE, "unknown backups command '%s'", sub);
		dgm_error_hint(err, "use list, create, verify, restore or prune");
		return -1;
	}
	if (args->npos != (with_id ? 3 : 2)) {
		dgm_error_set(err, DGM_E_USAGE, "usage: dgmigrate backups %s%s PLAN", sub,
			      with_id ? " ID" : "");
		return -1;
	}
	if (dgm_plan_load(&plan, args->pos[args->npos - 1], err))
		return -1;
	dgm_plan_register_secrets(&plan);
	if (!strcmp(sub, "list"))
		ret = list(&plan, json, err);
	else if (!strcmp(sub, "create"))
		ret = create(&plan, json, err);
	else if (!strcmp(sub, "verify"))
		ret = verify(&plan, args->pos[1], err);
	else if (with_id)
		ret = restore(&plan, args->pos[1], args, err);
	else
		ret = prune(&plan, dgm_args_get(args, "keep"), dgm_args_flag(args, "force"), err);
	dgm_plan_free(&plan);
	return ret;
}
