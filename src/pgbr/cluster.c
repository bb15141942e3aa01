/*
 * cluster.c - restore: cluster. The server is stopped with the plan's
 * pgbackrest.server.stop, the whole cluster rewound in place to the
 * restore point (pgbackrest restore --delta --type=name
 * --target-action=promote), started with pgbackrest.server.start, and
 * once recovery has ended the database's history rows (dgmigrate.runs,
 * read before the stop) are put back and its Alembic revisions checked.
 * Each state reached is journaled (cluster_journal.c) before the next
 * step, and resume goes on from the last one: a restore again with
 * --delta is idempotent, a start is skipped when the server answers.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dgm/clock.h"
#include "dgm/history.h"
#include "dgm/json.h"
#include "dgm/lock.h"
#include "dgm/log.h"
#include "dgm/migrate.h"
#include "dgm/pg.h"
#include "dgm/run.h"
#include "pgbr_int.h"

#define MAINTENANCE_DB "postgres"

static long limit_ms(const dgm_plan *plan)
{
	return plan->timeouts.restore_ms ? plan->timeouts.restore_ms : 600000;
}

static void pause_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* The server runs (it may still be starting up or shutting down). */
static bool server_up(const dgm_plan *plan)
{
	PGPing p = PQping(plan->database.url);

	return p == PQPING_OK || p == PQPING_REJECT;
}

static int run_server_cmd(const dgm_plan *plan, const dgm_strlist *argv, const char *key,
			  dgm_error *err)
{
	dgm_child c = { .argv = (const char *const *)argv->items, .timeout_ms = limit_ms(plan) };
	char *text = dgm_pgbr_argv_text(c.argv, argv->count);
	int ret;

	dgm_info("%s: %s", key, text);
	ret = dgm_run(&c, err);
	if (ret)
		dgm_error_prefix(err, "%s (%s)", key, text);
	free(text);
	return ret;
}

static int stop_server(const dgm_plan *plan, dgm_error *err)
{
	long deadline = dgm_now_ms() + limit_ms(plan);

	if (run_server_cmd(plan, &plan->pgbackrest.server_stop, "pgbackrest.server.stop", err))
		return -1;
	while (server_up(plan)) {
		if (dgm_now_ms() >= deadline)
			return dgm_error_set(err, DGM_E_RUN, "the server still answers %ld ms after "
					     "pgbackrest.server.stop", limit_ms(plan));
		pause_ms(100);
	}
	return 0;
}

static void restore_args(char *set, size_t slen, char *target, size_t tlen,
			 const dgm_pgbr_point *p, const char *args[6])
{
	snprintf(set, slen, "--set=%s", p ? p->backup_label : "<backup>");
	snprintf(target, tlen, "--target=%s", p ? p->name : "<point>");
	args[0] = "--delta";
	args[1] = set;
	args[2] = "--type=name";
	args[3] = target;
	args[4] = "--target-action=promote";
	args[5] = NULL;
}

static int restore_point(const dgm_plan *plan, const dgm_pgbr_point *p, dgm_error *err)
{
	char set[128], target[160];
	const char *args[6];
	long start = dgm_now_ms();

	restore_args(set, sizeof(set), target, sizeof(target), p, args);
	dgm_info("restore point '%s': rewinding the cluster in place from backup %s (pgbackrest "
		 "restore --delta)", p->name, p->backup_label);
	if (dgm_pgbr_run(NULL, plan, "restore", args, plan->timeouts.restore_ms, err))
		return -1;
	dgm_info("restored in %ld ms", dgm_now_ms() - start);
	return 0;
}

char *dgm_pgbr_cluster_text(const dgm_plan *plan, const dgm_pgbr_point *point)
{
	const dgm_plan_pgbackrest *b = &plan->pgbackrest;
	char set[128], target[160], *stop, *start, *restore, *text;
	const char *args[6];

	restore_args(set, sizeof(set), target, sizeof(target), point, args);
	stop = dgm_pgbr_argv_text((const char *const *)b->server_stop.items, b->server_stop.count);
	start = dgm_pgbr_argv_text((const char *const *)b->server_start.items,
				   b->server_start.count);
	restore = dgm_pgbr_cmd_text(plan, "restore", args);
	text = dgm_xasprintf("stop the server (%s), %s, start it (%s), wait until recovery has "
			     "ended", stop, restore, start);
	free(stop);
	free(start);
	free(restore);
	return text;
}

char *dgm_pgbr_restore_text(const dgm_plan *plan, const dgm_pgbr_point *point)
{
	char *what, *text;

	if (plan->pgbackrest.restore == DGM_PGBR_RESTORE_SIDE)
		return dgm_xasprintf("restore: side - restore point '%s' rebuilt in '%s/data' on a "
				     "side instance, its database dumped and restored beside the "
				     "live one, names swapped; nothing else is touched", point->name,
				     plan->pgbackrest.side_directory);
	what = dgm_pgbr_cluster_text(plan, point);
	text = dgm_xasprintf("restore: cluster - the whole cluster rewound to restore point '%s': "
			     "%s", point->name, what);
	free(what);
	return text;
}

/* Until recovery has reached the point and promoted; connections are
 * refused while the server starts up, so those are retried too. */
static int wait_promoted(const dgm_plan *plan, dgm_error *err)
{
	long deadline = dgm_now_ms() + limit_ms(plan), wait = 10;

	for (;;) {
		PGconn *conn = NULL;
		PGresult *r = NULL;
		int in_recovery = -1;

		dgm_error_clear(err);
		if (dgm_pg_connect_db(&conn, plan->database.url, MAINTENANCE_DB,
				      "dgmigrate cluster restore", err) == 0 &&
		    dgm_pg_query(&r, conn, "SELECT pg_is_in_recovery()", 0, NULL, err) == 0)
			in_recovery = *PQgetvalue(r, 0, 0) == 't';
		PQclear(r);
		dgm_pg_close(conn);
		if (in_recovery == 0)
			return 0;
		if (dgm_now_ms() >= deadline) {
			if (in_recovery == 1)
				dgm_error_set(err, DGM_E_RUN, "the server was still recovering %ld ms "
					      "after its start", limit_ms(plan));
			dgm_error_prefix(err, "waiting for the end of recovery");
			dgm_error_hint(err, "read the server's log; once it has promoted, run "
				       "dgmigrate resume PLAN");
			return -1;
		}
		pause_ms(wait);
		wait = wait < 200 ? wait * 2 : 200;
	}
}

/* dgmigrate.runs of the database, as a JSON array; null when none (the
 * first run writes it at its end, so an undo of that run finds none).
 * Two queries: a query naming a missing table fails however it is
 * guarded, since the table is looked up before anything runs. */
static int read_runs(json_t **runs, const dgm_plan *plan, dgm_error *err)
{
	PGconn *conn = NULL;
	char *text = NULL;
	int ret = dgm_pg_connect(&conn, plan->database.url, "dgmigrate cluster restore", err);

	*runs = json_null();
	if (ret == 0)
		ret = dgm_history_rows(&text, conn, err);
	if (ret == 0 && strcmp(text, "[]") != 0) {
		json_decref(*runs);
		*runs = json_loads(text, 0, NULL);
	}
	free(text);
	dgm_pg_close(conn);
	return ret;
}

/* The rows read before the stop replace those of the same runs. */
static int write_runs(const dgm_plan *plan, json_t *runs, dgm_error *err)
{
	char *text = json_dumps(runs, JSON_COMPACT);
	const char *params[] = { text };
	PGconn *conn = NULL;
	PGresult *r = NULL;
	int ret = -1;

	if (!json_array_size(runs)) {
		free(text);
		return 0;
	}
	if (dgm_pg_connect(&conn, plan->database.url, "dgmigrate cluster restore", err) ||
	    dgm_pg_exec(conn, "BEGIN", err) || dgm_pg_exec(conn, DGM_HISTORY_DDL, err) ||
	    dgm_pg_query(&r, conn, "DELETE FROM dgmigrate.runs WHERE run_id IN (SELECT run_id "
			 "FROM jsonb_populate_recordset(NULL::dgmigrate.runs, $1::jsonb))", 1,
			 params, err))
		goto out;
	PQclear(r);
	r = NULL;
	if (dgm_pg_query(&r, conn, "INSERT INTO dgmigrate.runs SELECT * FROM "
			 "jsonb_populate_recordset(NULL::dgmigrate.runs, $1::jsonb)", 1, params,
			 err) || dgm_pg_exec(conn, "COMMIT", err))
		goto out;
	ret = 0;
out:
	if (ret)
		dgm_error_prefix(err, "cannot put the history (dgmigrate.runs) back");
	PQclear(r);
	dgm_pg_close(conn);
	free(text);
	return ret;
}

/* alembic_version holds the snapshot's revisions. */
static int check_revisions(const dgm_plan *plan, json_t *want, dgm_error *err)
{
	size_t nwant = json_array_size(want), n = 0;
	char **w = dgm_xcalloc(nwant + 1, sizeof(char *)), **have = NULL;
	PGconn *conn = NULL;
	int ret = -1;

	for (size_t i = 0; i < nwant; i++)
		w[i] = (char *)json_string_value(json_array_get(want, i));
	if (dgm_pg_connect(&conn, plan->database.url, "dgmigrate cluster restore", err) ||
	    dgm_pg_read_revisions(&have, &n, conn, plan->alembic.version_table,
				  plan->alembic.version_schema, err))
		goto out;
	if (!dgm_migrate_same_set(have, n, w, nwant)) {
		char *h = dgm_strs_join(have, n, "base"), *s = dgm_strs_join(w, nwant, "base");

		dgm_error_set(err, DGM_E_RUN, "after the cluster restore alembic_version holds %s, "
			      "the snapshot %s", h, s);
		free(h);
		free(s);
		goto out;
	}
	ret = 0;
out:
	dgm_pg_strings_free(have);
	dgm_pg_close(conn);
	free(w);
	return ret;
}

/* From the state the journal reached to the end of the restore. */
static int advance(dgm_pgbr_cj *j, const dgm_plan *plan, dgm_error *err)
{
	dgm_pgbr_point *p = dgm_pgbr_point_from_json(json_object_get(j->begin, "point"));
	int ret = -1;

	if (!strcmp(j->state, "begin") &&
	    (stop_server(plan, err) || dgm_pgbr_cj_reached(j, "stopped", err)))
		goto out;
	if (!strcmp(j->state, "stopped") &&
	    (restore_point(plan, p, err) || dgm_pgbr_cj_reached(j, "restored", err)))
		goto out;
	if (!strcmp(j->state, "restored") &&
	    (run_server_cmd(plan, &plan->pgbackrest.server_start, "pgbackrest.server.start", err) ||
	     dgm_pgbr_cj_reached(j, "started", err)))
		goto out;
	if (!strcmp(j->state, "started") &&
	    (wait_promoted(plan, err) || dgm_pgbr_cj_reached(j, "promoted", err)))
		goto out;
	if (write_runs(plan, json_object_get(j->begin, "runs"), err) ||
	    check_revisions(plan, json_object_get(j->begin, "revisions"), err))
		goto out;
	dgm_info("the cluster is at restore point '%s' and accepts writes", p->name);
	ret = 0;
out:
	dgm_pgbr_point_free(p);
	return ret;
}

static int check_others(const dgm_plan *plan, dgm_error *err)
{
	PGconn *conn = NULL;
	int others = 0, ret;

	ret = dgm_pg_connect(&conn, plan->database.url, "dgmigrate cluster restore", err) ||
	      dgm_pgbr_other_databases(&others, conn, err) ? -1 : 0;
	dgm_pg_close(conn);
	if (ret || !others || plan->pgbackrest.rewind_other_databases)
		return ret;
	dgm_error_set(err, DGM_E_RUN, "restore: cluster would rewind %d other database%s of the "
		      "cluster to the restore point too", others, others == 1 ? "" : "s");
	dgm_error_hint(err, "use pgbackrest.restore: side, or set "
		       "pgbackrest.rewind_other_databases: true if that is acceptable");
	return -1;
}

static json_t *begin_record(const dgm_pgbr_cluster_target *t, json_t *runs)
{
	return json_pack("{s:s, s:s, s:s, s:o, s:o, s:o, s:i}", "state", "begin", "snapshot",
			 t->snapshot, "database", t->database, "point", dgm_pgbr_point_json(t->point),
			 "revisions", dgm_json_strs(t->revisions, t->nrevisions), "runs", runs,
			 "pid", (int)getpid());
}

/* After advance (ret): the journal goes once the restore is over -
 * done, or failed after the server had promoted (putting the history
 * back or the revisions check: nothing is down or in flight, and a
 * resume could do no better); else it stays for resume. */
static int finish_journal(dgm_pgbr_cj *j, const dgm_plan *plan, int ret, dgm_error *err)
{
	dgm_error e = DGM_ERROR_INIT;

	if (ret && strcmp(j->state, "promoted")) {
		dgm_error_hint(err, "the restore stopped at state '%s' (journal '%s'); the server "
			       "may be down: once the cause is fixed, dgmigrate resume PLAN finishes "
			       "it", j->state, j->path);
		return -1;
	}
	if (ret == 0)
		return dgm_pgbr_cj_remove(j, plan, err);
	if (dgm_pgbr_cj_remove(j, plan, &e))
		dgm_warn("%s", e.msg);
	return -1;
}

/* The server was down: the lock's connection is gone. Taken again
 * before the journal goes (until then the journal keeps others out). */
static void retake_lock(const dgm_plan *plan, struct dgm_lock *lock)
{
	dgm_error e = DGM_ERROR_INIT;

	if (!lock)
		return;
	dgm_lock_release(lock);
	if (dgm_lock_acquire(lock, plan->database.url, "restore", 30000, &e))
		dgm_warn("the lock could not be taken again after the server's restart: %s", e.msg);
}

int dgm_pgbr_cluster_restore(const dgm_plan *plan, const dgm_pgbr_cluster_target *t,
			     struct dgm_lock *lock, dgm_error *err)
{
	dgm_pgbr_cj j = { .fd = -1 };
	json_t *runs = NULL, *begin;
	int ret = -1;

	if (check_others(plan, err) || read_runs(&runs, plan, err))
		goto out;
	begin = begin_record(t, runs);
	runs = NULL;
	ret = dgm_pgbr_cj_create(&j, plan, begin, err);
	json_decref(begin);
	if (ret)
		goto out;
	snprintf(j.state, sizeof(j.state), "begin");
	dgm_fault_kill("cluster-begin");
	ret = advance(&j, plan, err);
	if (ret == 0 || !strcmp(j.state, "promoted"))
		retake_lock(plan, lock);
	ret = finish_journal(&j, plan, ret, err);
out:
	if (ret)
		dgm_error_prefix(err, "restore point '%s' (restore: cluster)", t->point->name);
	json_decref(runs);
	dgm_pgbr_cj_close(&j);
	return ret;
}

/* Where the killed restore was, and what the server does now: the
 * state to go on from, or "" when it had changed nothing. */
static void settle_state(dgm_pgbr_cj *j, const dgm_plan *plan)
{
	bool up = server_up(plan);

	if (!strcmp(j->state, "begin"))
		snprintf(j->state, sizeof(j->state), "%s", up ? "" : "stopped");
	else if (!strcmp(j->state, "restored") && up)
		snprintf(j->state, sizeof(j->state), "started");
	else if (!strcmp(j->state, "started") && !up)
		snprintf(j->state, sizeof(j->state), "restored");
}

static int resume_open(dgm_pgbr_cj *j, const dgm_plan *plan, dgm_error *err)
{
	const char *snap = json_string_value(json_object_get(j->begin, "snapshot"));
	char was[16];

	snprintf(was, sizeof(was), "%s", j->state);
	settle_state(j, plan);
	if (!*j->state) {
		dgm_info("the restore: cluster of snapshot '%s' was killed before the server was "
			 "stopped: nothing had changed", snap ? snap : "?");
		return dgm_pgbr_cj_remove(j, plan, err);
	}
	dgm_info("finishing the restore: cluster of snapshot '%s' (it had reached '%s')",
		 snap ? snap : "?", was);
	/* someone started the server before its restore had run */
	if (!strcmp(j->state, "stopped") && server_up(plan) && stop_server(plan, err))
		return -1;
	return finish_journal(j, plan, advance(j, plan, err), err);
}

int dgm_pgbr_cluster_resume(const dgm_plan *plan, dgm_error *err)
{
	dgm_pgbr_cj j;
	bool found;
	int ret = dgm_pgbr_cj_open(&j, plan, &found, err);

	if (ret == 0 && found && !j.begin) {
		dgm_info("the journal '%s' holds no complete record (killed as it started): "
			 "nothing had changed; removing it", j.path);
		ret = dgm_pgbr_cj_remove(&j, plan, err);
	} else if (ret == 0 && found)
		ret = resume_open(&j, plan, err);
	if (ret)
		dgm_error_prefix(err, "resume of a restore: cluster");
	dgm_pgbr_cj_close(&j);
	return ret;
}
