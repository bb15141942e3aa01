/* resume.c - `dgmigrate resume PLAN` and `dgmigrate history PLAN`. */
#include <stdio.h>

#include "dgm/buf.h"
#include "dgm/cli.h"
#include "dgm/log.h"
#include "dgm/pg.h"
#include "dgm/plan.h"
#include "dgm/release.h"
#include "dgm/restore.h"

int dgm_cmd_resume(const dgm_args *args, dgm_error *err)
{
	dgm_plan plan;
	int ret;

	if (dgm_plan_load(&plan, args->pos[0], err))
		return -1;
	dgm_plan_register_secrets(&plan);
	ret = dgm_release_resume(&plan, dgm_args_flag(args, "accept-data-loss"), err);
	dgm_plan_free(&plan);
	return ret;
}

static int print_history(PGconn *conn, bool json, dgm_error *err)
{
	PGresult *res = NULL;
	const char *sql = json ?
		"SELECT coalesce(json_agg(r ORDER BY started_at DESC), '[]')::text FROM"
		" (SELECT run_id, command, release, tag, outcome, reason, db_user, host,"
		" revisions_before, revisions_after, commit_before, commit_after, snapshot_id,"
		" started_at, finished_at, report->'data_loss' AS data_loss FROM dgmigrate.runs) r" :
		"SELECT run_id, command, coalesce(tag, ''), outcome,"
		" coalesce(array_to_string(revisions_before, ','), '') || ' -> ' ||"
		" coalesce(array_to_string(revisions_after, ','), ''),"
		" to_char(started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS\"Z\"'),"
		" coalesce(db_user, ''), coalesce(reason, ''),"
		" coalesce((SELECT string_agg(format('%s: %s', t.key, t.value), ', ')"
		"  FROM jsonb_each_text(report->'data_loss'->'tables') t)"
		"  || ' (kept in snapshot ' || (report->'data_loss'->>'kept_in') || ')', '')"
		" FROM dgmigrate.runs"
		" ORDER BY started_at DESC";

	if (dgm_pg_query(&res, conn, sql, 0, NULL, err))
		return -1;
	if (json)
		printf("%s\n", PQgetvalue(res, 0, 0));
	else {
		printf("%-22s %-9s %-12s %-12s %-20s %-30s %s\n", "RUN", "COMMAND", "TAG", "OUTCOME",
		       "STARTED", "REVISIONS", "USER / REASON");
		for (int i = 0; i < PQntuples(res); i++)
			printf("%-22s %-9s %-12s %-12s %-20s %-30s %s%s%s\n", PQgetvalue(res, i, 0),
			       PQgetvalue(res, i, 1), PQgetvalue(res, i, 2), PQgetvalue(res, i, 3),
			       PQgetvalue(res, i, 5), PQgetvalue(res, i, 4), PQgetvalue(res, i, 6),
			       *PQgetvalue(res, i, 7) ? ": " : "", PQgetvalue(res, i, 7));
		/* a restore that discarded writes says which, and where they are */
		for (int i = 0; i < PQntuples(res); i++)
			if (*PQgetvalue(res, i, 8))
				printf("%s discarded writes: %s\n", PQgetvalue(res, i, 0),
				       PQgetvalue(res, i, 8));
	}
	PQclear(res);
	return 0;
}

int dgm_cmd_history(const dgm_args *args, dgm_error *err)
{
	PGconn *conn = NULL;
	PGresult *res = NULL;
	dgm_plan plan;
	int ret = -1;

	if (dgm_plan_load(&plan, args->pos[0], err))
		return -1;
	dgm_plan_register_secrets(&plan);
	if (dgm_restore_guard(&plan, err) ||
	    dgm_pg_connect(&conn, plan.database.url, "dgmigrate history", err) ||
	    dgm_pg_query(&res, conn, "SELECT to_regclass('dgmigrate.runs') IS NOT NULL", 0, NULL,
			 err))
		goto out;
	if (PQgetvalue(res, 0, 0)[0] != 't') {
		if (dgm_args_flag(args, "json"))
			printf("[]\n");
		else
			printf("(no runs recorded in database '%s')\n", PQdb(conn));
		ret = 0;
		goto out;
	}
	ret = print_history(conn, dgm_args_flag(args, "json"), err);
out:
	PQclear(res);
	dgm_pg_close(conn);
	dgm_plan_free(&plan);
	return ret;
}
