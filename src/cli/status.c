/* status.c - `dgmigrate status PLAN`: where the database, the code and
 * the snapshots stand, and what an upgrade to the plan's tag would run. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dgm/buf.h"
#include "dgm/cli.h"
#include "dgm/git.h"
#include "dgm/log.h"
#include "dgm/pg.h"
#include "dgm/plan.h"
#include "dgm/project.h"
#include "dgm/restore.h"
#include "dgm/snapshot.h"

typedef struct status {
	const dgm_plan *plan;
	const char *ini_rel;
	char **revs;                 /* alembic_version rows */
	size_t nrevs;
	char server[32];
	char head[GIT_OID_HEXSZ + 1];
	bool detached, dirty;
	dgm_buf head_tags;
	dgm_alembic_script *code;    /* graph in the work tree */
	dgm_alembic_script *target;  /* graph at the plan's tag */
	dgm_alembic_steps steps;     /* upgrade db -> plan target, at the tag */
	bool steps_known;
	dgm_error steps_err;
	dgm_snapshot *snaps;
	size_t nsnaps;
	long long copies_bytes;      /* server-side copies of those snapshots */
	int ncopies;
	char last_run[256];          /* newest row of dgmigrate.runs, "" none */
} status;

/* The newest recorded run; none when the history table does not exist. */
static void read_last_run(status *st, PGconn *conn)
{
	dgm_error ignore = DGM_ERROR_INIT;
	PGresult *res = NULL;

	if (dgm_pg_query(&res, conn, "SELECT run_id || ' ' || command || ' ' || coalesce(tag, '') ||"
			 " ': ' || outcome || ' at ' || to_char(finished_at AT TIME ZONE 'UTC',"
			 " 'YYYY-MM-DD HH24:MI:SS\"Z\"') FROM dgmigrate.runs ORDER BY started_at DESC"
			 " LIMIT 1", 0, NULL, &ignore) == 0 && PQntuples(res) == 1)
		snprintf(st->last_run, sizeof(st->last_run), "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
}

static int read_db(status *st, dgm_error *err)
{
	PGconn *conn = NULL;
	int ret;

	/* an interrupted restore says what happened and what settles it,
	 * rather than that the database does not exist */
	if (dgm_restore_guard(st->plan, err) ||
	    dgm_pg_connect(&conn, st->plan->database.url, "dgmigrate status", err))
		return -1;
	dgm_pg_server_version(conn, st->server, sizeof(st->server));
	ret = dgm_pg_read_revisions(&st->revs, &st->nrevs, conn, st->plan->alembic.version_table,
				    st->plan->alembic.version_schema, err);
	if (ret == 0)
		read_last_run(st, conn);
	dgm_pg_close(conn);
	return ret;
}

static int read_code(status *st, dgm_error *err)
{
	git_repository *repo = NULL;
	char path[256];
	git_oid oid;
	int ret = -1;

	if (dgm_git_open(&repo, st->plan->release.repository, err))
		return -1;
	if (dgm_git_head(st->head, &st->detached, repo, err) ||
	    dgm_git_is_dirty(&st->dirty, path, sizeof(path), repo, err))
		goto out;
	git_oid_fromstr(&oid, st->head);
	dgm_git_tags_at(&st->head_tags, repo, &oid);
	ret = 0;
out:
	dgm_git_close(repo);
	return ret;
}

static int read_graphs(status *st, dgm_error *err)
{
	if (dgm_project_plan_graph(&st->code, st->plan, NULL, err) ||
	    dgm_project_plan_graph(&st->target, st->plan, st->plan->release.tag, err))
		return -1;
	/* What `alembic upgrade TARGET` would run once the tag is checked out. */
	st->steps_known = dgm_alembic_upgrade(&st->steps, st->target,
					      (const char *const *)st->revs, st->nrevs,
					      st->plan->alembic.target, &st->steps_err) == 0;
	return 0;
}

static void list_heads(dgm_buf *b, const dgm_alembic_script *s)
{
	for (size_t i = 0; i < s->nheads; i++)
		dgm_buf_printf(b, "%s%s", i ? ", " : "", s->heads[i]->id);
	/* the project's code ran to tell them (alembic.read_graph) */
	if (s->read_by_alembic)
		dgm_buf_puts(b, " (read by Alembic)");
}

static void print_text(const status *st)
{
	dgm_buf b = DGM_BUF_INIT;
	char when[32];

	printf("release     '%s' (plan tag %s)\n", st->plan->release.name, st->plan->release.tag);
	printf("database    PostgreSQL %s, alembic_version: ", st->server);
	for (size_t i = 0; i < st->nrevs; i++)
		printf("%s%s%s", i ? ", " : "", st->revs[i],
		       dgm_alembic_find(st->code, st->revs[i]) ? "" : " (unknown to the work tree)");
	printf("%s\n", st->nrevs ? "" : "(base: empty)");
	printf("code        %s at %.12s%s%s%s, %s\n", st->plan->release.repository, st->head,
	       st->detached ? " (detached)" : "", st->head_tags.len ? ", tag " : "",
	       dgm_buf_cstr(&st->head_tags), st->dirty ? "uncommitted changes" : "clean");
	list_heads(&b, st->code);
	printf("code heads  %s\n", b.ptr);
	dgm_buf_clear(&b);
	list_heads(&b, st->target);
	printf("%-11s heads %s\n", st->plan->release.tag, b.ptr);
	if (!st->steps_known)
		printf("upgrade     cannot be planned: %s\n", st->steps_err.msg);
	else if (!st->steps.count)
		printf("upgrade     nothing to run: the database is at '%s'\n", st->plan->alembic.target);
	else {
		printf("upgrade     %zu revision%s would run:\n", st->steps.count,
		       st->steps.count == 1 ? "" : "s");
		for (size_t i = 0; i < st->steps.count; i++)
			printf("              %s  %s\n", st->steps.revs[i]->id, st->steps.revs[i]->doc);
	}
	if (st->nsnaps) {
		time_t t = (time_t)st->snaps[0].created;

		strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%SZ", gmtime(&t));
		printf("snapshots   %zu, newest '%s' (%s, %s)\n", st->nsnaps, st->snaps[0].id,
		       st->snaps[0].kind, when);
		if (st->ncopies)
			printf("            %d server-side cop%s: %.1f MiB on the database server\n",
			       st->ncopies, st->ncopies == 1 ? "y" : "ies",
			       (double)st->copies_bytes / 1048576.0);
	} else
		printf("snapshots   none in '%s'\n", st->plan->snapshot.directory);
	printf("last run    %s\n", st->last_run[0] ? st->last_run : "(none recorded)");
	dgm_buf_free(&b);
}

static void print_json(const status *st)
{
	dgm_buf b = DGM_BUF_INIT;

	dgm_buf_putc(&b, '{');
	if (st->code->read_by_alembic)
		dgm_buf_puts(&b, "\"read_by\":\"alembic\",");
	dgm_buf_puts(&b, "\"release\":");
	dgm_buf_json_str(&b, st->plan->release.name);
	dgm_buf_puts(&b, ",\"tag\":");
	dgm_buf_json_str(&b, st->plan->release.tag);
	dgm_buf_puts(&b, ",\"server_version\":");
	dgm_buf_json_str(&b, st->server);
	dgm_buf_puts(&b, ",\"database_revisions\":[");
	for (size_t i = 0; i < st->nrevs; i++) {
		dgm_buf_puts(&b, i ? "," : "");
		dgm_buf_json_str(&b, st->revs[i]);
	}
	dgm_buf_puts(&b, "],\"head_commit\":");
	dgm_buf_json_str(&b, st->head);
	dgm_buf_puts(&b, ",\"head_tags\":");
	dgm_buf_json_str(&b, dgm_buf_cstr(&st->head_tags));
	dgm_buf_printf(&b, ",\"dirty\":%s,\"code_heads\":[", st->dirty ? "true" : "false");
	for (size_t i = 0; i < st->code->nheads; i++) {
		dgm_buf_puts(&b, i ? "," : "");
		dgm_buf_json_str(&b, st->code->heads[i]->id);
	}
	dgm_buf_puts(&b, "],\"tag_heads\":[");
	for (size_t i = 0; i < st->target->nheads; i++) {
		dgm_buf_puts(&b, i ? "," : "");
		dgm_buf_json_str(&b, st->target->heads[i]->id);
	}
	dgm_buf_puts(&b, "],\"upgrade\":[");
	for (size_t i = 0; st->steps_known && i < st->steps.count; i++) {
		dgm_buf_puts(&b, i ? "," : "");
		dgm_buf_json_str(&b, st->steps.revs[i]->id);
	}
	dgm_buf_printf(&b, "],\"snapshots\":%zu,\"server_copies\":%d,\"server_copies_bytes\":%lld,"
		       "\"last_run\":", st->nsnaps, st->ncopies, st->copies_bytes);
	dgm_buf_json_str(&b, st->last_run);
	if (st->nsnaps) {
		dgm_buf_puts(&b, ",\"newest_snapshot\":");
		dgm_buf_json_str(&b, st->snaps[0].id);
	}
	dgm_buf_puts(&b, "}\n");
	fputs(b.ptr, stdout);
	dgm_buf_free(&b);
}

int dgm_cmd_status(const dgm_args *args, dgm_error *err)
{
	dgm_plan plan;
	status st = { .plan = &plan, .head_tags = DGM_BUF_INIT, .steps_err = DGM_ERROR_INIT };
	int ret = -1;

	if (dgm_plan_load(&plan, args->pos[0], err))
		return -1;
	dgm_plan_register_secrets(&plan);
	st.ini_rel = dgm_project_ini_rel(plan.alembic.config, plan.release.repository);
	if (read_db(&st, err) || read_code(&st, err) || read_graphs(&st, err) ||
	    dgm_snapshot_list(&st.snaps, &st.nsnaps, plan.snapshot.directory, err) ||
	    dgm_snapshot_copies_size(&st.copies_bytes, &st.ncopies, &plan, st.snaps, st.nsnaps,
				     err))
		goto out;
	if (dgm_args_flag(args, "json"))
		print_json(&st);
	else
		print_text(&st);
	ret = 0;
out:
	dgm_snapshot_list_free(st.snaps, st.nsnaps);
	dgm_alembic_steps_free(&st.steps);
	dgm_alembic_free(st.code);
	dgm_alembic_free(st.target);
	dgm_pg_strings_free(st.revs);
	dgm_buf_free(&st.head_tags);
	dgm_plan_free(&plan);
	return ret;
}
