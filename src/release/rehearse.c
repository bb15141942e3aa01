/* rehearse.c - `dgmigrate rehearse`: the release's upgrade, its
 * postconditions and its downgrade run for real on a scratch copy of
 * the database; the schema after the downgrade must equal the one
 * before. The database itself, the work tree and the model store are
 * never touched: the migrations come from the tag exported to a
 * temporary folder, and the copy is dropped on every path. */
#include <ctype.h>
#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dgm/buf.h"
#include "dgm/clock.h"
#include "dgm/fs.h"
#include "dgm/git.h"
#include "dgm/log.h"
#include "dgm/migrate.h"
#include "dgm/pg.h"
#include "dgm/pgbackrest.h"
#include "dgm/restore.h"
#include "dgm/run.h"
#include "rehearse_int.h"

void dgm_rehearse_phase(dgm_rehearsal *r, const char *phase, bool ok, long ms,
			const char *fmt, ...)
{
	dgm_buf d = DGM_BUF_INIT, ev = DGM_BUF_INIT;
	va_list ap;

	va_start(ap, fmt);
	dgm_buf_vprintf(&d, fmt, ap);
	va_end(ap);
	json_array_append_new(r->phases, json_pack("{s:s, s:b, s:I, s:s}", "phase", phase, "ok",
						   ok, "ms", (json_int_t)ms, "detail",
						   dgm_buf_cstr(&d)));
	dgm_info("  %-5s %s (%.1f s): %s", ok ? "ok" : "FAIL", phase, (double)ms / 1000.0,
		 dgm_buf_cstr(&d));
	dgm_buf_puts(&ev, "\"phase\":");
	dgm_buf_json_str(&ev, phase);
	dgm_buf_printf(&ev, ",\"ok\":%s,\"ms\":%ld,\"detail\":", ok ? "true" : "false", ms);
	dgm_buf_json_str(&ev, dgm_buf_cstr(&d));
	dgm_event("phase", ev.ptr);
	dgm_buf_free(&ev);
	dgm_buf_free(&d);
}

/* The release failed the rehearsal (as opposed to dgmigrate failing to
 * run it): the first reason is the verdict's. A child stopped by a
 * signal is neither. */
static void release_failed(dgm_rehearsal *r, const dgm_error *e)
{
	if (dgm_run_interrupted || strcmp(r->verdict, "pass") != 0)
		return;
	r->verdict = "fail";
	r->why = *e;
	r->why.code = DGM_E_RUN;
}

/* alembic failed on the copy: the release's fault, unless interrupted
 * or stopped by the guard (it reached the live database, or not the
 * copy: the plan's alembic.env is at fault, DGM_E_RUN). */
static void alembic_failed(dgm_rehearsal *r, dgm_error *err)
{
	if (dgm_run_interrupted || err->code != DGM_E_CHILD)
		return;
	dgm_error_prefix(err, "rehearsal failed");
	dgm_error_hint(err, "--verbose shows alembic's full output; the database itself was not "
		       "changed");
	release_failed(r, err);
}

static int interrupted(dgm_error *err)
{
	if (!dgm_run_interrupted)
		return 0;
	return dgm_error_set(err, DGM_E_RUN, "interrupted");
}

/* The target heads of the upgrade, as ids (not copied). */
static const char **target_heads(const dgm_rehearsal *r)
{
	const dgm_alembic_steps *up = &r->facts.upgrade;
	const char **ids = dgm_xcalloc(up->nheads_after + 1, sizeof(char *));

	for (size_t i = 0; i < up->nheads_after; i++)
		ids[i] = up->heads_after[i]->id;
	return ids;
}

static int read_revs(char ***revs, size_t *n, dgm_rehearsal *r, dgm_error *err)
{
	return dgm_pg_read_revisions(revs, n, r->conn, r->plan->alembic.version_table,
				     r->plan->alembic.version_schema, err);
}

/* alembic_version must hold exactly want after `what`. */
static int expect_revs(dgm_rehearsal *r, char *const *want, size_t nwant, const char *what,
		       dgm_error *err)
{
	char **revs = NULL;
	size_t n = 0;
	int ret = -1;

	if (read_revs(&revs, &n, r, err))
		return -1;
	if (dgm_migrate_same_set(revs, n, want, nwant))
		ret = 0;
	else {
		char *have = dgm_strs_join(revs, n, "base");
		char *exp = dgm_strs_join(want, nwant, "base");

		dgm_error_set(err, DGM_E_RUN, "after %s alembic_version holds %s, expected %s", what,
			      have, exp);
		release_failed(r, err);
		free(have);
		free(exp);
	}
	dgm_pg_strings_free(revs);
	return ret;
}

/* ---- the steps --------------------------------------------------------- */

/* alembic on the scratch copy, proven to connect there, with the live
 * database fenced: an env.py that ignores the copy is stopped at the
 * live database's version table (dgm_migrate_alembic_at). */
static int alembic(dgm_rehearsal *r, const char *verb, const char *target, dgm_error *err)
{
	dgm_migrate_target t = { .url = r->scratch.url, .forbidden = r->plan->database.url,
				 .forbidden_label = "live database" };

	return dgm_migrate_alembic_at(&r->scratch_plan, &t, r->export_dir, verb, target, false,
				      NULL, err);
}

/* pg_locks sampled while alembic runs; holds recorded as the upgrade's
 * or the downgrade's (direction NULL: none), of revision (NULL: the one
 * alembic says it runs). */
static void sample_start(dgm_rehearsal *r, const char *phase, const char *direction,
			 const char *revision)
{
	dgm_error e = DGM_ERROR_INIT;

	dgm_rehearse_probe_reset(&r->sampler, r->conn);
	dgm_rehearse_sampler_holds(&r->sampler, direction, revision);
	/* without the sampler the rehearsal still proves what matters */
	if (dgm_rehearse_sampler_start(&r->sampler, r->scratch.url, phase, &e))
		dgm_warn("no pg_locks sampling during '%s': %s", phase, e.msg);
}

static bool in_list(const char *id, const char *list)
{
	size_t n = strlen(id);

	for (const char *p = list; (p = strstr(p, id)); p++)
		if ((p == list || p[-1] == ',') && (p[n] == ',' || !p[n]))
			return true;
	return false;
}

/* The index of id in the upgrade's revisions, or -1. */
static long upgrade_index(const dgm_alembic_steps *up, const char *id)
{
	for (size_t i = 0; i < up->count; i++)
		if (!strcmp(up->revs[i]->id, id))
			return (long)i;
	return -1;
}

/* Mark i and its down revisions within the upgrade as applied. */
static void mark_applied(const dgm_alembic_steps *up, bool *applied, long i)
{
	if (i < 0 || applied[i])
		return;
	applied[i] = true;
	for (size_t k = 0; k < up->revs[i]->ndown; k++)
		mark_applied(up, applied, upgrade_index(up, up->revs[i]->down[k]));
}

/* The one revision of the upgrade that can run next when alembic_version
 * holds versions: not applied (in versions or below one), every down
 * revision applied or applied before the upgrade. NULL when not one. */
static const char *next_in_upgrade(const dgm_alembic_steps *up, const char *versions)
{
	bool *applied = dgm_xcalloc(up->count + 1, sizeof(bool));
	const char *found = NULL;
	int n = 0;

	for (size_t i = 0; i < up->count; i++)
		if (in_list(up->revs[i]->id, versions))
			mark_applied(up, applied, (long)i);
	for (size_t i = 0; i < up->count; i++) {
		bool ready = !applied[i];

		for (size_t k = 0; k < up->revs[i]->ndown && ready; k++) {
			long d = upgrade_index(up, up->revs[i]->down[k]);

			ready = d < 0 || applied[d];
		}
		if (ready && n++ == 0)
			found = up->revs[i]->id;
	}
	free(applied);
	return n == 1 ? found : NULL;
}

/* The revision that ran while alembic_version held versions ("a,b",
 * "" none): upgrading, the one that could run next; downgrading, the one
 * revision being undone. NULL when that cannot be told. */
static const char *running_at(const dgm_rehearsal *r, const char *direction,
			      const char *versions)
{
	const dgm_alembic_rev *rev;

	if (strcmp(direction, "downgrade"))
		return next_in_upgrade(&r->facts.upgrade, versions);
	if (!*versions || strchr(versions, ',') || !r->facts.graph)
		return NULL;
	rev = dgm_alembic_find(r->facts.graph, versions);
	return rev ? rev->id : NULL;
}

/* Holds the event trigger saw: their revision from what alembic_version
 * held at the first DDL end that saw the lock (the revision that took
 * it), over the one a sample guessed from alembic's output. */
static void attribute(dgm_rehearsal *r)
{
	dgm_rehearse_sampler *s = &r->sampler;
	const char *id;

	for (size_t i = s->phase_first; i < s->nholds; i++) {
		dgm_rehearse_hold *h = &s->holds[i];

		if (!h->versions || !(id = running_at(r, h->direction, h->versions)))
			continue;
		free(h->revision);
		h->revision = dgm_xstrdup(id);
	}
}

static void sample_stop(dgm_rehearsal *r, const char *phase)
{
	dgm_rehearse_sampler_stop(&r->sampler);
	dgm_rehearse_probe_collect(&r->sampler, r->conn, phase);
	if (r->sampler.direction)
		attribute(r);
	dgm_rehearse_sampler_holds(&r->sampler, NULL, NULL);
}

/* alembic upgrade TARGET on the scratch database, with pg_locks sampled
 * meanwhile. A failing upgrade fails the rehearsal. */
static int upgrade(dgm_rehearsal *r, const char *phase, const char *target, const char *what,
		   dgm_error *err)
{
	long start = dgm_now_ms();
	int ret;

	if (interrupted(err))
		return -1;
	/* what the release holds is measured the first time; "again" only
	 * proves the downgraded database upgrades */
	sample_start(r, phase, strstr(phase, " again") ? NULL : "upgrade",
		     r->opts->step ? target : NULL);
	ret = alembic(r, "upgrade", target, err);
	sample_stop(r, phase);
	if (ret) {
		dgm_rehearse_phase(r, phase, false, dgm_now_ms() - start, "%s", err->msg);
		alembic_failed(r, err);
		return -1;
	}
	dgm_rehearse_phase(r, phase, true, dgm_now_ms() - start, "alembic upgrade %s: %s", target,
			   what);
	return 0;
}

/* The alembic downgrades that take the scratch database back to want
 * (dgm_migrate_plan_downgrade: one step may not be enough when a branch
 * forked before want). */
static int downgrade(dgm_rehearsal *r, const char *phase, char *const *want, size_t nwant,
		     dgm_error *err)
{
	long start = dgm_now_ms();
	char **cur = NULL, **targets = NULL, *to = dgm_strs_join(want, nwant, "base");
	size_t ncur = 0, n = 0;
	dgm_buf ran = DGM_BUF_INIT;
	int ret = -1;

	if (interrupted(err) || read_revs(&cur, &ncur, r, err) ||
	    dgm_migrate_plan_downgrade(&targets, &n, r->facts.graph, cur, ncur, want, nwant, err))
		goto out;
	for (size_t i = 0; i < n; i++) {
		int failed;

		dgm_buf_printf(&ran, "%salembic downgrade %s", i ? "; " : "", targets[i]);
		/* --step's phase is "downgrade REV" */
		sample_start(r, phase, "downgrade", r->opts->step ? phase + 10 : NULL);
		failed = alembic(r, "downgrade", targets[i], err);
		sample_stop(r, phase);
		if (failed) {
			dgm_rehearse_phase(r, phase, false, dgm_now_ms() - start, "%s", err->msg);
			alembic_failed(r, err);
			goto out;
		}
	}
	if (expect_revs(r, want, nwant, phase, err)) {
		dgm_rehearse_phase(r, phase, false, dgm_now_ms() - start, "%s", err->msg);
		goto out;
	}
	dgm_rehearse_phase(r, phase, true, dgm_now_ms() - start, "back to %s: %s", to,
			   dgm_buf_cstr(&ran));
	ret = 0;
out:
	dgm_migrate_targets_free(targets, n);
	dgm_pg_strings_free(cur);
	dgm_buf_free(&ran);
	free(to);
	return ret;
}

static int fingerprint(dgm_rehearsal *r, dgm_fingerprint *fp, const char *phase,
		       dgm_error *err)
{
	long start = dgm_now_ms();

	if (interrupted(err) || dgm_fingerprint_take(fp, r->conn, r->plan->alembic.version_table,
						      r->plan->alembic.version_schema, err))
		return -1;
	dgm_rehearse_phase(r, phase, true, dgm_now_ms() - start, "%zu objects, sha256 %.16s",
			   fp->count, fp->sha256);
	return 0;
}

static bool ident_char(char c)
{
	return isalnum((unsigned char)c) || c == '_';
}

/* Whether text holds word as a whole identifier. */
static bool has_word(const char *text, const char *word)
{
	size_t n = strlen(word);

	for (const char *p = strstr(text, word); n && p; p = strstr(p + 1, word))
		if ((p == text || !ident_char(p[-1])) && !ident_char(p[n]))
			return true;
	return false;
}

/* The upgrade's revisions whose file names the object: when the whole
 * release is rehearsed at once, the likely culprits (--step proves it). */
static char *named_in(const dgm_rehearsal *r, const dgm_fp_item *it)
{
	const dgm_alembic_steps *up = &r->facts.upgrade;
	char *word = dgm_fp_item_word(it);
	dgm_buf ids = DGM_BUF_INIT;

	for (size_t i = 0; *word && i < up->count; i++) {
		char *path = dgm_xasprintf("%s/%s", r->export_dir, up->revs[i]->path);
		dgm_buf text = DGM_BUF_INIT;
		dgm_error ignore = DGM_ERROR_INIT;

		if (dgm_buf_read_file(&text, path, &ignore) == 0 && has_word(text.ptr, word))
			dgm_buf_printf(&ids, "%s%s", ids.len ? ", " : "", up->revs[i]->id);
		dgm_buf_free(&text);
		free(path);
	}
	free(word);
	return ids.len ? dgm_buf_detach(&ids) : NULL;
}

static const char *change_name(dgm_fp_change c)
{
	return c == DGM_FP_ADDED ? "still exists" : c == DGM_FP_REMOVED ? "missing" : "differs";
}

static void add_finding(dgm_rehearsal *r, const dgm_fp_diff_item *d, const char *when,
			const char *rev, dgm_buf *first)
{
	const dgm_fp_item *it = d->after ? d->after : d->before;
	char *named = rev ? NULL : named_in(r, it);
	dgm_buf text = DGM_BUF_INIT;

	dgm_fp_diff_render(&text, d, when);
	json_array_append_new(r->findings, json_pack("{s:s?, s:s, s:s, s:s, s:s, s:s?, s:s?, s:s}",
		"revision", rev ? rev : named, "attributed_by", rev ? "step" : named ?
		"named in the revision file" : "unknown", "change", change_name(d->change),
		"kind", it->kind, "name", it->name, "before", d->before ? d->before->detail : NULL,
		"after", d->after ? d->after->detail : NULL, "text", text.ptr));
	dgm_info("  FAIL  %s%s%s%s", text.ptr, rev ? " (revision " : named ? " (named in revision " :
		 "", rev ? rev : named ? named : "", rev || named ? ")" : "");
	if (!first->len) {
		if (rev)
			dgm_buf_printf(first, "the downgrade of revision %s is wrong: %s", rev, text.ptr);
		else
			dgm_buf_printf(first, "%s%s%s%s", text.ptr, named ? " (named in revision " : "",
				       named ? named : "", named ? ")" : "");
	}
	dgm_buf_free(&text);
	free(named);
}

/* Compare the schema now with ref; every difference is a finding. rev:
 * the revision whose downgrade just ran (--step), NULL for the whole
 * release. A difference fails the rehearsal. */
static int compare(dgm_rehearsal *r, const dgm_fingerprint *ref, const char *phase,
		   const char *when, const char *rev, dgm_error *err)
{
	dgm_fingerprint now = DGM_FINGERPRINT_INIT;
	dgm_fp_diff d = { NULL, 0 };
	dgm_buf first = DGM_BUF_INIT;
	long start = dgm_now_ms();
	int ret = -1;

	if (interrupted(err) || dgm_fingerprint_take(&now, r->conn, r->plan->alembic.version_table,
						      r->plan->alembic.version_schema, err))
		return -1;
	dgm_fingerprint_diff(&d, ref, &now);
	if (!rev)
		snprintf(r->fp_after, sizeof(r->fp_after), "%s", now.sha256);
	for (size_t i = 0; i < d.count; i++)
		add_finding(r, &d.items[i], when, rev, &first);
	if (d.count == 0) {
		dgm_rehearse_phase(r, phase, true, dgm_now_ms() - start, "the schema %s equals the "
				   "one before (sha256 %.16s, %zu objects)", when, now.sha256, now.count);
		ret = 0;
	} else {
		dgm_rehearse_phase(r, phase, false, dgm_now_ms() - start, "%zu difference%s %s",
				   d.count, d.count == 1 ? "" : "s", when);
		dgm_error_set(err, DGM_E_RUN, "rehearsal failed: %s%s", first.ptr, d.count > 1 ?
			      " (and more differences: see the report)" : "");
		if (rev)
			dgm_error_hint(err, "fix the downgrade() of revision %s so that it undoes "
				       "everything its upgrade() does", rev);
		else
			dgm_error_hint(err, "'dgmigrate rehearse PLAN --step' runs each revision up, "
				       "down and up again, and names the one whose downgrade is wrong");
		release_failed(r, err);
	}
	dgm_fp_diff_free(&d);
	dgm_fingerprint_free(&now);
	dgm_buf_free(&first);
	return ret;
}

static int postconditions(dgm_rehearsal *r, dgm_error *err)
{
	const char **heads = target_heads(r);
	long start = dgm_now_ms();
	dgm_error e = DGM_ERROR_INIT;
	int ret = 0;

	if (interrupted(err)) {
		free(heads);
		return -1;
	}
	r->post_ran = true;
	if (dgm_verify_postconditions(&r->post, r->conn, &r->scratch_plan, (char *const *)heads,
				      r->facts.upgrade.nheads_after, &e) == 0)
		dgm_rehearse_phase(r, "postconditions", true, dgm_now_ms() - start, "%zu checks held",
				   r->post.count);
	else if (e.code == DGM_E_RUN) {
		dgm_rehearse_phase(r, "postconditions", false, dgm_now_ms() - start, "%s", e.msg);
		release_failed(r, &e);
	} else {
		*err = e;
		ret = -1;
	}
	free(heads);
	return ret;
}

/* ---- rows in the tables the upgrade touched ---------------------------- */

/* A table name from the fingerprint ("users", "s.t"), schema-qualified. */
static char *qualified(const char *name)
{
	bool quoted = false;

	for (const char *p = name; *p; p++) {
		if (*p == '"')
			quoted = !quoted;
		else if (*p == '.' && !quoted)
			return dgm_xstrdup(name);
	}
	return dgm_xasprintf("public.%s", name);
}

/* Exact count, or the planner's estimate when counting takes too long. */
static void count_rows(dgm_rehearsal *r, const char *table, const char *why)
{
	char *q = qualified(table), *sql = dgm_xasprintf("SELECT count(*) FROM %s", q);
	const char *params[] = { q };
	dgm_error e = DGM_ERROR_INIT;
	PGresult *res = NULL;
	bool estimated = false;

	dgm_pg_exec(r->conn, "SET statement_timeout = '10s'", &e);
	if (dgm_pg_query(&res, r->conn, sql, 0, NULL, &e)) {
		estimated = true;
		dgm_pg_query(&res, r->conn, "SELECT greatest(reltuples, 0)::bigint FROM pg_class"
			     " WHERE oid = $1::regclass", 1, params, &e);
	}
	dgm_pg_exec(r->conn, "RESET statement_timeout", &e);
	if (res && PQntuples(res) == 1)
		json_array_append_new(r->tables, json_pack("{s:s, s:I, s:b, s:s}", "table", table,
			"rows", (json_int_t)atoll(PQgetvalue(res, 0, 0)), "estimated", estimated,
			"why", why));
	PQclear(res);
	free(sql);
	free(q);
}

static bool listed(json_t *tables, const char *name)
{
	size_t i;
	json_t *t;

	json_array_foreach(tables, i, t)
		if (!strcmp(json_string_value(json_object_get(t, "table")), name))
			return true;
	return false;
}

/* Touched: altered by the upgrade (the fingerprints) or locked by it
 * (the sampler), then the tables it created. */
static void touched_tables(dgm_rehearsal *r)
{
	dgm_fp_diff d = { NULL, 0 };

	dgm_fingerprint_diff(&d, &r->fp_before, &r->fp_upgraded);
	for (int created = 0; created < 2; created++) {
		for (size_t i = 0; i < d.count; i++) {
			const dgm_fp_item *it = d.items[i].after;

			if (!it || !*it->table || listed(r->tables, it->table) ||
			    (dgm_fingerprint_find(&r->fp_before, "table", it->table) == NULL) != created)
				continue;
			count_rows(r, it->table, created ? "created" : "altered");
		}
		for (size_t i = 0; i < r->sampler.nseen && !created; i++) {
			const dgm_rehearse_lock *l = &r->sampler.seen[i];

			if (dgm_fingerprint_find(&r->fp_before, "table", l->table) &&
			    dgm_fingerprint_find(&r->fp_upgraded, "table", l->table) &&
			    !listed(r->tables, l->table))
				count_rows(r, l->table, "locked");
		}
	}
	dgm_fp_diff_free(&d);
}

static int after_upgrade(dgm_rehearsal *r, dgm_error *err)
{
	long start;

	if (postconditions(r, err) ||
	    fingerprint(r, &r->fp_upgraded, "fingerprint after the upgrade", err))
		return -1;
	start = dgm_now_ms();
	touched_tables(r);
	dgm_rehearse_phase(r, "rows", true, dgm_now_ms() - start, "%zu tables touched",
			   json_array_size(r->tables));
	return 0;
}

/* ---- the two ways to rehearse ------------------------------------------ */

/* The release as apply runs it: one upgrade, one downgrade chain. */
static int run_whole(dgm_rehearsal *r, dgm_error *err)
{
	const dgm_alembic_steps *up = &r->facts.upgrade;
	const char *target = r->plan->alembic.target;
	const char **heads = target_heads(r);
	char *what = dgm_xasprintf("%zu revision%s from %s", up->count, up->count == 1 ? "" : "s",
				   r->start_text);
	char *when = dgm_xasprintf("after downgrade to %s", r->start_text);
	int ret = -1;

	if (upgrade(r, "upgrade", target, what, err) ||
	    expect_revs(r, (char *const *)heads, up->nheads_after, "the upgrade", err) ||
	    after_upgrade(r, err) ||
	    downgrade(r, "downgrade", r->facts.revs, r->facts.nrevs, err))
		goto out;
	/* a difference fails the rehearsal, but upgrading again still says
	 * whether the database was left upgradable; anything else stops */
	if (compare(r, &r->fp_before, "compare", when, NULL, err) && strcmp(r->verdict, "fail"))
		goto out;
	if (upgrade(r, "upgrade again", target, "the downgraded database upgrades again", err) ||
	    expect_revs(r, (char *const *)heads, up->nheads_after, "the upgrade again", err))
		goto out;
	ret = 0;
out:
	free(heads);
	free(what);
	free(when);
	return ret;
}

/* One revision: up, down, compare, up again. */
static int run_one(dgm_rehearsal *r, const dgm_alembic_rev *rev, dgm_error *err)
{
	dgm_fingerprint fp = DGM_FINGERPRINT_INIT;
	char **cur = NULL;
	size_t ncur = 0;
	char *start = NULL, *when = NULL, *phase = NULL;
	int ret = -1;

	if (read_revs(&cur, &ncur, r, err) ||
	    dgm_fingerprint_take(&fp, r->conn, r->plan->alembic.version_table,
				 r->plan->alembic.version_schema, err))
		goto out;
	start = dgm_strs_join(cur, ncur, "base");
	when = dgm_xasprintf("after downgrade to %s", start);
	phase = dgm_xasprintf("upgrade %s", rev->id);
	if (upgrade(r, phase, rev->id, rev->doc, err))
		goto out;
	free(phase);
	phase = dgm_xasprintf("downgrade %s", rev->id);
	if (downgrade(r, phase, cur, ncur, err))
		goto out;
	free(phase);
	phase = dgm_xasprintf("compare %s", rev->id);
	if (compare(r, &fp, phase, when, rev->id, err))
		goto out;
	free(phase);
	phase = dgm_xasprintf("upgrade %s again", rev->id);
	if (upgrade(r, phase, rev->id, "upgrades again after its downgrade", err))
		goto out;
	ret = 0;
out:
	dgm_fingerprint_free(&fp);
	dgm_pg_strings_free(cur);
	free(start);
	free(when);
	free(phase);
	return ret;
}

/* --step: revision by revision in the upgrade's order, stopping at the
 * first whose downgrade is wrong (what comes after would not apply). */
static int run_steps(dgm_rehearsal *r, dgm_error *err)
{
	const dgm_alembic_steps *up = &r->facts.upgrade;
	const char **heads = target_heads(r);
	int ret = -1;

	for (size_t i = 0; i < up->count; i++)
		if (run_one(r, up->revs[i], err))
			goto out;
	if (expect_revs(r, (char *const *)heads, up->nheads_after, "the last step", err) ||
	    after_upgrade(r, err))
		goto out;
	ret = 0;
out:
	free(heads);
	return ret;
}

/* ---- setting up and cleaning up ---------------------------------------- */

/* "rehearse-<database>-": the export folders of this database's
 * rehearsals (the name made safe for a file name). */
static char *export_prefix(const char *db)
{
	dgm_buf b = DGM_BUF_INIT;

	dgm_buf_puts(&b, "rehearse-");
	for (const char *p = db; *p; p++)
		dgm_buf_putc(&b, isalnum((unsigned char)*p) || *p == '-' || *p == '_' ? *p : '_');
	dgm_buf_putc(&b, '-');
	return dgm_buf_detach(&b);
}

/* A killed rehearsal leaves its export behind; we hold the database's
 * lock, so no other rehearsal of it is using one. */
static void drop_stale_exports(const char *state_dir, const char *prefix)
{
	DIR *d = opendir(state_dir);
	struct dirent *de;

	while (d && (de = readdir(d)) != NULL) {
		size_t n = strlen(prefix);
		dgm_error e = DGM_ERROR_INIT;
		char *path;

		/* the prefix and exactly mkdtemp's six characters */
		if (strncmp(de->d_name, prefix, n) != 0 || strlen(de->d_name) != n + 6)
			continue;
		path = dgm_xasprintf("%s/%s", state_dir, de->d_name);
		dgm_debug("removing '%s', left by a rehearsal that did not finish", path);
		if (dgm_fs_remove_tree(path, &e))
			dgm_warn("cannot remove '%s': %s", path, e.msg);
		free(path);
	}
	if (d)
		closedir(d);
}

/* The release's lint, for the report to set the measured locks beside;
 * a lint that cannot run is a warning. */
static void lint(dgm_rehearsal *r)
{
	dgm_error e = DGM_ERROR_INIT;

	if (!r->facts.upgrade.count)
		return;
	if (dgm_release_lint_run(&r->lint, r->plan, &r->facts, &e) == 0) {
		r->linted = true;
		return;
	}
	dgm_warn("the release's SQL was not linted: %s", e.msg);
	dgm_release_lint_free(&r->lint);
}

/* Preflight (the work tree and the model store play no part: a dirty
 * tree is fine, a missing store too), then the tag exported. */
static int prepare(dgm_rehearsal *r, dgm_error *err)
{
	dgm_plan pf = *r->plan;
	PGconn *conn = NULL;
	char *tmp, *prefix;

	pf.release.allow_dirty = true;
	pf.model_store.path = NULL;
	if (dgm_preflight(&r->facts, &pf, DGM_PREFLIGHT_VALIDATE, false, err))
		return -1;
	if (!r->facts.upgrade_known)
		return dgm_error_set(err, DGM_E_RUN, "the upgrade's revisions are not known");
	r->start_text = dgm_strs_join(r->facts.revs, r->facts.nrevs, "base");
	lint(r);
	if (dgm_pg_connect(&conn, r->plan->database.url, "dgmigrate rehearse", err))
		return -1;
	r->database = dgm_xstrdup(PQdb(conn));
	dgm_pg_close(conn);
	if (dgm_fs_mkdir_p(r->plan->state_dir, 0700, err))
		return -1;
	prefix = export_prefix(r->database);
	drop_stale_exports(r->plan->state_dir, prefix);
	tmp = dgm_xasprintf("%s/%sXXXXXX", r->plan->state_dir, prefix);
	free(prefix);
	if (!mkdtemp(tmp)) {
		dgm_error_errno(err, DGM_E_IO, "cannot create '%s'", tmp);
		free(tmp);
		return -1;
	}
	r->export_dir = tmp;
	return dgm_git_export(r->plan->release.repository, r->plan->release.tag, tmp, err);
}

static int rehearse(dgm_rehearsal *r, dgm_error *err)
{
	long start = dgm_now_ms();

	if (dgm_rehearse_scratch_create(&r->scratch, r->plan, r->database, r->facts.revs,
					r->facts.nrevs, err))
		return -1;
	dgm_rehearse_phase(r, "copy", true, dgm_now_ms() - start, "'%s' into '%s' (%s)%s",
			   r->scratch.source, r->scratch.name, r->scratch.from,
			   r->scratch.leftovers ? "; leftovers of killed rehearsals dropped first" : "");
	r->scratch_plan = *r->plan;
	r->scratch_plan.database.url = r->scratch.url;
	if (interrupted(err) ||
	    dgm_pg_connect(&r->conn, r->scratch.url, "dgmigrate rehearse", err))
		return -1;
	dgm_rehearse_probe_install(&r->sampler, r->conn, r->plan->alembic.version_schema,
				   r->plan->alembic.version_table);
	if (fingerprint(r, &r->fp_before, "fingerprint before", err))
		return -1;
	return r->opts->step ? run_steps(r, err) : run_whole(r, err);
}

static void cleanup(dgm_rehearsal *r)
{
	dgm_error e = DGM_ERROR_INIT;
	long start = dgm_now_ms();

	dgm_rehearse_sampler_stop(&r->sampler);
	dgm_pg_close(r->conn);
	r->conn = NULL;
	if (r->scratch.exists) {
		dgm_rehearse_scratch_drop(&r->scratch, r->plan);
		dgm_rehearse_phase(r, "drop", !r->scratch.exists, dgm_now_ms() - start, "%s '%s'",
				   r->scratch.exists ? "could not drop" : "dropped", r->scratch.name);
	}
	if (r->export_dir && dgm_fs_remove_tree(r->export_dir, &e))
		dgm_warn("cannot remove '%s': %s", r->export_dir, e.msg);
}

/* The verdict and the error the command ends with. */
static int settle(dgm_rehearsal *r, int ret, dgm_error *err)
{
	if (dgm_run_interrupted) {
		r->verdict = "interrupted";
		dgm_error_set(err, DGM_E_RUN, "the rehearsal was interrupted");
		dgm_error_hint(err, "%s", r->scratch.exists ? "the scratch database could not be "
			       "dropped; the next rehearsal drops it" : "the scratch database was "
			       "dropped; nothing else was changed");
		r->why = *err;
		return -1;
	}
	if (!strcmp(r->verdict, "fail")) {
		*err = r->why;
		return -1;
	}
	if (ret) {
		r->verdict = "error";
		r->why = *err;
		return -1;
	}
	return 0;
}

static void rehearsal_free(dgm_rehearsal *r)
{
	dgm_rehearse_sampler_free(&r->sampler);
	dgm_rehearse_scratch_free(&r->scratch);
	dgm_fingerprint_free(&r->fp_before);
	dgm_fingerprint_free(&r->fp_upgraded);
	dgm_verify_result_free(&r->post);
	dgm_release_lint_free(&r->lint);
	dgm_facts_free(&r->facts);
	json_decref(r->phases);
	json_decref(r->findings);
	json_decref(r->tables);
	free(r->export_dir);
	free(r->start_text);
	free(r->database);
}

int dgm_release_rehearse(const dgm_plan *plan, const dgm_rehearse_opts *o, dgm_error *err)
{
	dgm_rehearsal r;
	bool report = false;
	int ret = -1;

	memset(&r, 0, sizeof(r));
	r.plan = plan;
	r.opts = o;
	r.verdict = "pass";
	r.phases = json_array();
	r.findings = json_array();
	r.tables = json_array();
	r.started = time(NULL);
	r.started_ms = dgm_now_ms();
	dgm_rehearse_signals_install();
	if (dgm_restore_guard(plan, err) ||
	    dgm_lock_acquire(&r.lock, plan->database.url, "rehearse", o->wait_lock_ms, err))
		goto out;
	dgm_info("rehearsal of '%s' (tag %s)%s: on a scratch copy, the database itself is not "
		 "changed", plan->release.name, plan->release.tag, o->step ? ", revision by revision" :
		 "");
	if (prepare(&r, err))
		goto out;
	report = true;
	if (r.facts.upgrade.count == 0) {
		dgm_rehearse_phase(&r, "upgrade", true, 0, "nothing to rehearse: the database is "
				   "already at '%s' of %s", plan->alembic.target, plan->release.tag);
		ret = 0;
		goto out;
	}
	ret = rehearse(&r, err);
out:
	cleanup(&r);
	ret = settle(&r, ret, err);
	if (report)
		dgm_rehearse_report(&r);
	dgm_lock_release(&r.lock);
	rehearsal_free(&r);
	dgm_rehearse_signals_restore();
	return ret;
}
