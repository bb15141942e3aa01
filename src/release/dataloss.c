/* dataloss.c - what a restore would throw away: the table write counters
 * now against the snapshot's baseline (dataloss.h says what that is and
 * where it is kept). One check for every path that restores. */
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dgm/buf.h"
#include "dgm/dataloss.h"
#include "dgm/fs.h"
#include "dgm/log.h"
#include "dgm/pg.h"
#include "internal.h"

#define TS(x) "to_char(" x " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"

/* One row: the database's oid, when its statistics were reset, when the
 * server started, now, whether counters are kept, every application
 * table's {name: [relid, writes]}, and the other sessions connected. */
static const char *counters_sql =
	"SELECT d.oid::text, coalesce(" TS("s.stats_reset") ", ''), "
	TS("pg_postmaster_start_time()") ", " TS("now()") ", current_setting('track_counts'),"
	" (SELECT coalesce(json_object_agg(format('%I.%I', schemaname, relname),"
	"  json_build_array(relid::bigint, n_tup_ins + n_tup_upd + n_tup_del)), '{}')::text"
	"  FROM pg_stat_user_tables WHERE schemaname <> 'dgmigrate'),"
	" (SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
	"  AND pid <> pg_backend_pid() AND backend_type = 'client backend')::text"
	" FROM pg_database d LEFT JOIN pg_stat_database s ON s.datid = d.oid"
	" WHERE d.datname = current_database()";

/* A session's counters reach the shared statistics when its transaction
 * ends, but no more often than once a second, and an idle session that
 * has just flushed waits up to 10 s (PostgreSQL 15's PGSTAT_IDLE_INTERVAL)
 * before it flushes again. */
#define FLUSH_WAIT_S 11

static json_t *read_counters(const dgm_plan *plan, bool wait_for_others, dgm_error *err)
{
	PGconn *conn = NULL;
	PGresult *res = NULL;
	json_t *c = NULL;

	if (dgm_pg_connect(&conn, plan->database.url, "dgmigrate data-loss check", err) ||
	    dgm_pg_query(&res, conn, counters_sql, 0, NULL, err))
		goto out;
	if (wait_for_others && atoi(PQgetvalue(res, 0, 6)) > 0) {
		dgm_info("%s other session%s connected to the database: waiting %d s for their "
			 "write counters to reach the statistics", PQgetvalue(res, 0, 6),
			 atoi(PQgetvalue(res, 0, 6)) == 1 ? " is" : "s are", FLUSH_WAIT_S);
		PQclear(res);
		res = NULL;
		sleep(FLUSH_WAIT_S);
		if (dgm_pg_query(&res, conn, counters_sql, 0, NULL, err))
			goto out;
	}
	c = json_pack("{s:s, s:s, s:s, s:s, s:s, s:o}", "db_oid", PQgetvalue(res, 0, 0),
		      "stats_reset", PQgetvalue(res, 0, 1), "postmaster_start", PQgetvalue(res, 0, 2),
		      "recorded_at", PQgetvalue(res, 0, 3), "track_counts", PQgetvalue(res, 0, 4),
		      "tables", json_loads(PQgetvalue(res, 0, 5), 0, NULL));
out:
	PQclear(res);
	dgm_pg_close(conn);
	return c;
}

static char *baseline_path(const dgm_snapshot *snap)
{
	return dgm_xasprintf("%s/writes.json", snap->dir);
}

int dgm_dataloss_mark(const dgm_plan *plan, const dgm_snapshot *snap, const char *run,
		      dgm_error *err)
{
	const char *snapshot_id = snap->id;
	char *path = NULL, *text = NULL;
	json_t *c = read_counters(plan, false, err);
	int ret = -1;

	if (!c)
		goto out;
	json_object_set_new(c, "snapshot", json_string(snapshot_id));
	json_object_set_new(c, "run", json_string(run ? run : ""));
	if (dgm_snapshot_seal_json(c, plan, snapshot_id, "writes.json", err))
		goto out;
	text = json_dumps(c, JSON_INDENT(1) | JSON_SORT_KEYS);
	path = baseline_path(snap);
	if (dgm_fs_write_atomic(path, text, strlen(text), 0600, err))
		goto out;
	dgm_debug("write counters recorded as the baseline of snapshot '%s'", snapshot_id);
	ret = 0;
out:
	if (ret)
		dgm_error_prefix(err, "cannot record the write counters for snapshot '%s'",
				 snapshot_id);
	json_decref(c);
	free(text);
	free(path);
	return ret;
}

static void unknown(dgm_dataloss *dl, const char *fmt, ...) DGM_PRINTF(2, 3);

static void unknown(dgm_dataloss *dl, const char *fmt, ...)
{
	dgm_buf b = DGM_BUF_INIT;
	va_list ap;

	va_start(ap, fmt);
	dgm_buf_vprintf(&b, fmt, ap);
	va_end(ap);
	free(dl->why);
	dl->why = dgm_buf_detach(&b);
	dl->verdict = DGM_DATALOSS_UNKNOWN;
}

static const char *str(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "";
}

/* What can make the counters incomparable, checked before any table. */
static bool comparable(dgm_dataloss *dl, json_t *base, json_t *now)
{
	if (strcmp(str(now, "track_counts"), "on"))
		unknown(dl, "the server does not count writes (track_counts is off)");
	else if (strcmp(str(base, "db_oid"), str(now, "db_oid")))
		unknown(dl, "the database was replaced since the baseline of %s (it was "
			"restored or re-created: oid %s, now %s)", str(base, "recorded_at"),
			str(base, "db_oid"), str(now, "db_oid"));
	else if (strcmp(str(base, "stats_reset"), str(now, "stats_reset")))
		unknown(dl, "the database's statistics were reset at %s, after the baseline of %s",
			str(now, "stats_reset"), str(base, "recorded_at"));
	else if (strcmp(str(base, "postmaster_start"), str(now, "postmaster_start")))
		unknown(dl, "the server restarted at %s, after the baseline of %s",
			str(now, "postmaster_start"), str(base, "recorded_at"));
	return dl->verdict != DGM_DATALOSS_UNKNOWN;
}

static void compare(dgm_dataloss *dl, const dgm_plan *plan, json_t *base, json_t *now)
{
	json_t *then = json_object_get(base, "tables"), *v;
	const char *name;

	json_object_foreach(json_object_get(now, "tables"), name, v) {
		json_t *b = json_object_get(then, name);
		json_int_t n = json_integer_value(json_array_get(v, 1)), d = n;
		const char *dot = strchr(name, '.');

		/* Alembic's own bookkeeping is not application data */
		if (dot && !strcmp(dot + 1, plan->alembic.version_table))
			continue;
		/* the same table (oid) as then: what it gained; a table made
		 * since: everything it holds was written since */
		if (b && json_integer_value(json_array_get(b, 0)) ==
			 json_integer_value(json_array_get(v, 0)))
			d = n - json_integer_value(json_array_get(b, 1));
		if (d < 0) {
			unknown(dl, "the write counters of '%s' went backwards since %s (they were "
				"reset)", name, str(base, "recorded_at"));
			return;
		}
		if (d == 0)
			continue;
		dl->tables = dgm_xrealloc(dl->tables, (dl->ntables + 1) * sizeof(*dl->tables));
		dl->tables[dl->ntables].name = dgm_xstrdup(name);
		dl->tables[dl->ntables++].writes = d;
		dl->total += d;
	}
	dl->verdict = dl->ntables ? DGM_DATALOSS_WRITES : DGM_DATALOSS_NONE;
}

void dgm_dataloss_check(dgm_dataloss *dl, const dgm_plan *plan, const dgm_snapshot *snap,
			const dgm_dataloss_opts *o)
{
	char *path = baseline_path(snap);
	json_t *base = json_load_file(path, 0, NULL), *now = NULL;
	dgm_error e = DGM_ERROR_INIT;

	memset(dl, 0, sizeof(*dl));
	dl->snapshot = dgm_xstrdup(snap->id);
	dl->of_release = snap->kind && !strcmp(snap->kind, "pre-apply");
	if (!base && o && o->own_unfinished) {
		dl->basis = dgm_xasprintf("the release that took snapshot '%s' did not finish: "
					  "the writes since are its own", snap->id);
		goto out;
	}
	if (!base) {
		unknown(dl, "no record of the write counters after snapshot '%s' (recorded when "
			"the run that took it finishes its changes; that run failed, or predates "
			"this check)", snap->id);
		goto out;
	}
	dl->basis = dgm_xasprintf("the write counters recorded at %s by run '%s'",
				  str(base, "recorded_at"), str(base, "run"));
	now = read_counters(plan, true, &e);
	if (!now)
		unknown(dl, "cannot read the write counters: %s", e.msg);
	else if (comparable(dl, base, now))
		compare(dl, plan, base, now);
out:
	json_decref(base);
	json_decref(now);
	free(path);
}

int dgm_dataloss_gate(const dgm_dataloss *dl, bool accept, const char *instead,
		      dgm_error *err)
{
	char *what;

	if (dl->verdict == DGM_DATALOSS_NONE || accept)
		return 0;
	what = dgm_dataloss_summary(dl);
	dgm_error_set(err, DGM_E_USAGE, "restoring snapshot '%s' %s discard writes made since %s: "
		      "%s", dl->snapshot, dl->verdict == DGM_DATALOSS_WRITES ? "would" : "might",
		      dl->of_release ? "the release finished" : "the snapshot was taken", what);
	dgm_error_hint(err, "either pass --accept-data-loss to restore anyway (a safety snapshot "
		       "of the current state is taken first and keeps those writes), or %s",
		       instead);
	free(what);
	return -1;
}

char *dgm_dataloss_summary(const dgm_dataloss *dl)
{
	dgm_buf b = DGM_BUF_INIT;

	if (dl->verdict == DGM_DATALOSS_UNKNOWN)
		dgm_buf_printf(&b, "unknown, %s", dl->why);
	else if (dl->verdict == DGM_DATALOSS_NONE)
		dgm_buf_puts(&b, "none");
	for (size_t i = 0; dl->verdict == DGM_DATALOSS_WRITES && i < dl->ntables; i++)
		dgm_buf_printf(&b, "%s'%s': %lld write%s", i ? ", " : "", dl->tables[i].name,
			       dl->tables[i].writes, dl->tables[i].writes == 1 ? "" : "s");
	return dgm_buf_detach(&b);
}

char *dgm_dataloss_json(const dgm_dataloss *dl, const char *kept_in)
{
	static const char *verdicts[] = { "none", "writes", "unknown" };
	json_t *tables = json_object(), *j;
	char *text;

	for (size_t i = 0; i < dl->ntables; i++)
		json_object_set_new(tables, dl->tables[i].name, json_integer(dl->tables[i].writes));
	j = json_pack("{s:s, s:s, s:s, s:s, s:o, s:I, s:s}", "verdict", verdicts[dl->verdict],
		      "snapshot", dl->snapshot ? dl->snapshot : "", "basis",
		      dl->basis ? dl->basis : "", "why", dl->why ? dl->why : "", "tables", tables,
		      "total", (json_int_t)dl->total, "kept_in", kept_in ? kept_in : "");
	text = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(j);
	return text;
}

void dgm_dataloss_free(dgm_dataloss *dl)
{
	for (size_t i = 0; i < dl->ntables; i++)
		free(dl->tables[i].name);
	free(dl->tables);
	free(dl->snapshot);
	free(dl->basis);
	free(dl->why);
	memset(dl, 0, sizeof(*dl));
}

/* --- the guarded restore of a run (internal.h) --- */

int dgm_job_mark_baseline(dgm_job *r, const dgm_snapshot *snap)
{
	dgm_error e = DGM_ERROR_INIT;

	if (snap && dgm_dataloss_mark(r->plan, snap, r->id, &e))
		dgm_warn("%s: a later restore of it will need --accept-data-loss", e.msg);
	return 0;
}

void dgm_job_hint_loss_refused(dgm_job *r, dgm_error *err)
{
	/* a step of the run stopped, as the fallback of a rollback does */
	err->code = DGM_E_RUN;
	dgm_error_hint(err, "the run's journal stays open, the database where the failed "
		       "downgrade left it. Either restore snapshot '%s' anyway: dgmigrate resume "
		       "PLAN --accept-data-loss (a safety snapshot of the current state is taken "
		       "first and keeps those writes), or keep them: fix the failing downgrade, "
		       "then run: dgmigrate resume PLAN", r->snap.id);
}

int dgm_job_mark_release_baseline(dgm_job *r, const dgm_snapshot *snap)
{
	char *path;
	json_t *base;

	if (!snap)
		return 0;
	path = baseline_path(snap);
	base = json_load_file(path, 0, NULL);
	free(path);
	if (base && !strcmp(str(base, "run"), r->id)) {
		dgm_info("the write counters after the release were recorded at %s: writes since "
			 "then are the application's", str(base, "recorded_at"));
		json_decref(base);
		return 0;
	}
	json_decref(base);
	return dgm_job_mark_baseline(r, snap);
}

char *dgm_dataloss_announce(const dgm_dataloss *dl, const char *kept_in)
{
	char *what = dgm_dataloss_summary(dl), *j = dgm_dataloss_json(dl, kept_in);
	dgm_buf f = DGM_BUF_INIT;

	dgm_warn("--accept-data-loss: restoring snapshot '%s' discards writes made since the "
		 "release finished (%s)%s%s%s", dl->snapshot, what, kept_in ? "; they are kept in "
		 "safety snapshot '" : "", kept_in ? kept_in : "", kept_in ? "'" : "");
	dgm_buf_puts(&f, "\"data_loss\":");
	dgm_buf_puts(&f, j);
	dgm_event("data_loss", f.ptr);
	dgm_buf_free(&f);
	free(what);
	return j;
}

/* Say what is discarded: a warning, a JSON event, the report and the
 * history (through r->data_loss). */
static void record_loss(dgm_job *r, const dgm_dataloss *dl, const char *kept_in)
{
	char *j = dgm_dataloss_announce(dl, kept_in);

	json_decref(r->data_loss);
	r->data_loss = json_loads(j, 0, NULL);
	free(j);
}

int dgm_job_restore(dgm_job *r, const dgm_snapshot *snap, const dgm_job_restore_opts *o,
		    dgm_error *err)
{
	dgm_dataloss mine;
	const dgm_dataloss *dl = o->checked;
	dgm_dataloss_opts co = { .own_unfinished = o->own_unfinished };
	int ret = -1;

	memset(&mine, 0, sizeof(mine));
	if (o->ro.database && !dl) {
		dgm_dataloss_check(&mine, r->plan, snap, &co);
		dl = &mine;
	}
	if (o->ro.database && dgm_dataloss_gate(dl, o->accept, o->instead, err)) {
		r->loss_refused = true;
		goto out;
	}
	if (o->ro.database && dl->verdict != DGM_DATALOSS_NONE)
		record_loss(r, dl, o->kept_in);
	{
		dgm_restore_opts ro = o->ro;

		ro.lock = &r->lock;
		if (dgm_snapshot_restore(r->plan, snap, &ro, err))
			goto out;
	}
	/* the database is the snapshot again: count from here */
	if (o->ro.database)
		dgm_job_mark_baseline(r, snap);
	ret = 0;
out:
	dgm_dataloss_free(&mine);
	return ret;
}
