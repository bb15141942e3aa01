/* report.c - the run report (JSON + Markdown for a change ticket) and
 * the history row, written when the run ends. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dgm/json.h"
#include "dgm/buf.h"
#include "dgm/fs.h"
#include "dgm/log.h"
#include "dgm/pg.h"
#include "internal.h"

/* Which items of the seed checklist's "Deployment Phase" a step covers. */
static const struct {
	const char *step;
	const char *items;
} checklist[] = {
	{ "hooks.before", "Set application to maintenance mode" },
	{ "snapshot", "Take final database backup; Export current ML models (if any); "
		      "Document current system state" },
	{ "checkout", "Pull latest code from repository (the release tag)" },
	{ "migrate", "Run Alembic migrations; Check migration logs for errors" },
	{ "postconditions", "Verify all tables created successfully; Validate data integrity "
			    "post-migration (foreign keys validated); Update database statistics" },
	{ "hooks.after", "Remove maintenance mode" },
	{ "health", "Verify API health endpoint" },
	{ "undo.database", "Rollback database migrations / Restore database backup if needed" },
	{ "undo.code", "Restore previous code version" },
	{ "undo.store", "Restore the ML model store" },
};

static const char *not_covered =
	"Install/update Python dependencies; Collect static files; Start application server; "
	"Frontend deployment; User communication";

static const char *items_for(const char *step)
{
	for (size_t i = 0; i < sizeof(checklist) / sizeof(checklist[0]); i++)
		if (!strcmp(checklist[i].step, step))
			return checklist[i].items;
	return step;
}

/* The commit checked out now, read rather than assumed: a failed run may
 * have checked out another commit than the one it was going to. */
static const char *commit_now(const dgm_job *r, const char *outcome, char buf[41])
{
	dgm_git_state st;
	dgm_error e = DGM_ERROR_INIT;

	if (dgm_git_state_read(&st, r->plan->release.repository, &e) == 0) {
		memcpy(buf, st.commit, 41);
		return buf;
	}
	return r->checked_out && !strcmp(outcome, "success") ? r->facts.tag_commit : r->facts.head;
}

static json_t *report_json(const dgm_job *r, const char *outcome, const dgm_error *e)
{
	char host[256] = "", now[41];
	json_t *j;

	gethostname(host, sizeof(host) - 1);
	j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:s, s:s, s:I, s:O, s:s}",
		"run", r->id, "command", r->command, "release", r->plan->release.name,
		"tag", r->tag ? r->tag : r->plan->release.tag, "outcome", outcome, "message", e ? e->msg : "",
		"commit_before", r->facts.head, "commit_after", commit_now(r, outcome, now),
		"revisions_before", dgm_json_strs(r->facts.revs, r->facts.nrevs),
		"revisions_after", dgm_json_strs(r->revs_after, r->nrevs_after),
		"snapshot", r->have_snap ? r->snap.id : "",
		"host", host, "duration_ms", (json_int_t)(dgm_now_ms() - r->started_ms),
		"steps", r->steps, "not_covered", not_covered);
	/* which tables lost how many writes, and where they still are */
	if (r->data_loss)
		json_object_set(j, "data_loss", r->data_loss);
	return j;
}

static void md_row(dgm_buf *b, const char *k, const char *v)
{
	dgm_buf_printf(b, "| %s | %s |\n", k, v && *v ? v : "-");
}

static char *join(char *const *v, size_t n)
{
	dgm_buf b = DGM_BUF_INIT;

	for (size_t i = 0; i < n; i++)
		dgm_buf_printf(&b, "%s%s", i ? ", " : "", v[i]);
	return dgm_buf_detach(&b);
}

static char *report_md(const dgm_job *r, json_t *j)
{
	dgm_buf b = DGM_BUF_INIT;
	char *before = join(r->facts.revs, r->facts.nrevs), *after = join(r->revs_after, r->nrevs_after);
	size_t i;
	json_t *s;

	dgm_buf_printf(&b, "# dgmigrate %s: %s (%s) - %s\n\n", r->command, r->plan->release.name,
		       json_string_value(json_object_get(j, "tag")),
		       json_string_value(json_object_get(j, "outcome")));
	if (*json_string_value(json_object_get(j, "message")))
		dgm_buf_printf(&b, "> %s\n\n", json_string_value(json_object_get(j, "message")));
	dgm_buf_puts(&b, "| Fact | Value |\n|---|---|\n");
	md_row(&b, "Run", r->id);
	md_row(&b, "Host", json_string_value(json_object_get(j, "host")));
	md_row(&b, "Revisions before", *before ? before : "(base)");
	md_row(&b, "Revisions after", after);
	md_row(&b, "Commit before", r->facts.head);
	md_row(&b, "Commit after", json_string_value(json_object_get(j, "commit_after")));
	md_row(&b, "Snapshot", r->have_snap ? r->snap.id : "");
	if (r->have_snap) {
		md_row(&b, "Dump files SHA-256 (db.sha256)", r->snap.db_sha256);
		md_row(&b, "Model store archive SHA-256", r->snap.archive_sha256);
	}
	if (r->data_loss) {
		dgm_buf dl = DGM_BUF_INIT;
		const char *name;
		json_t *n;

		json_object_foreach(json_object_get(r->data_loss, "tables"), name, n)
			dgm_buf_printf(&dl, "%s%s: %lld", dl.len ? ", " : "", name,
				       (long long)json_integer_value(n));
		dgm_buf_printf(&dl, "%s (snapshot %s restored; kept in safety snapshot %s)",
			       dl.len ? "" : json_string_value(json_object_get(r->data_loss, "why")),
			       json_string_value(json_object_get(r->data_loss, "snapshot")),
			       json_string_value(json_object_get(r->data_loss, "kept_in")));
		md_row(&b, "Writes discarded", dl.ptr);
		dgm_buf_free(&dl);
	}
	dgm_buf_printf(&b, "| Duration | %.1f s |\n\n", (double)json_integer_value(
		json_object_get(j, "duration_ms")) / 1000.0);
	dgm_buf_puts(&b, "| Checklist item (Deployment Phase) | Result | Time | Evidence |\n"
			 "|---|---|---|---|\n");
	json_array_foreach(r->steps, i, s)
		dgm_buf_printf(&b, "| %s | %s | %.1f s | %s |\n",
			       items_for(json_string_value(json_object_get(s, "step"))),
			       json_string_value(json_object_get(s, "status")),
			       (double)json_integer_value(json_object_get(s, "ms")) / 1000.0,
			       json_string_value(json_object_get(s, "evidence")));
	dgm_buf_printf(&b, "| %s | not covered by dgmigrate | | |\n", not_covered);
	free(before);
	free(after);
	return dgm_buf_detach(&b);
}

static void write_report(const dgm_job *r, json_t *j)
{
	dgm_error e = DGM_ERROR_INIT;
	char *dir = dgm_xasprintf("%s/reports", r->plan->state_dir);
	char *jp = dgm_xasprintf("%s/%s.json", dir, r->id), *mp = dgm_xasprintf("%s/%s.md", dir, r->id);
	char *jtext = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER), *md = report_md(r, j);
	dgm_buf red = DGM_BUF_INIT;

	if (dgm_fs_mkdir_p(dir, 0700, &e) == 0) {
		dgm_redact(jtext, &red);
		dgm_fs_write_atomic(jp, red.ptr, red.len, 0600, &e);
		dgm_redact(md, &red);
		dgm_fs_write_atomic(mp, red.ptr, red.len, 0600, &e);
	}
	if (e.code)
		dgm_warn("cannot write the report: %s", e.msg);
	else
		dgm_info("report: %s", mp);
	dgm_buf_free(&red);
	free(jtext);
	free(md);
	free(jp);
	free(mp);
	free(dir);
}

static const char *history_ddl =
	"CREATE SCHEMA IF NOT EXISTS dgmigrate;"
	"CREATE TABLE IF NOT EXISTS dgmigrate.runs (run_id text PRIMARY KEY, command text NOT NULL,"
	" release text, tag text, commit_before text, commit_after text,"
	" revisions_before text[], revisions_after text[], snapshot_id text, snapshot_sha256 text,"
	" outcome text NOT NULL, reason text, db_user text DEFAULT current_user, host text,"
	" started_at timestamptz, finished_at timestamptz DEFAULT now(), report jsonb)";

/* After any restore: a row written before it would be lost with it. */
static void write_history(const dgm_job *r, json_t *j, const char *reason)
{
	char *text = json_dumps(j, JSON_COMPACT), *before = json_dumps(json_object_get(j,
		"revisions_before"), JSON_COMPACT), *after = json_dumps(json_object_get(j,
		"revisions_after"), JSON_COMPACT);
	char started[32];
	const char *p[12];
	dgm_error e = DGM_ERROR_INIT;
	dgm_buf red = DGM_BUF_INIT;
	PGconn *conn = NULL;
	PGresult *res = NULL;

	snprintf(started, sizeof(started), "%ld", (long)(dgm_now_ms() - r->started_ms) / 1000);
	dgm_redact(text, &red);
	p[0] = r->id; p[1] = r->command; p[2] = r->plan->release.name;
	p[3] = json_string_value(json_object_get(j, "tag"));
	p[4] = r->facts.head; p[5] = json_string_value(json_object_get(j, "commit_after"));
	p[6] = before; p[7] = after; p[8] = r->have_snap ? r->snap.id : NULL;
	p[9] = r->have_snap ? r->snap.archive_sha256 : NULL;
	p[10] = json_string_value(json_object_get(j, "outcome"));
	p[11] = red.ptr;
	if (dgm_pg_connect(&conn, r->plan->database.url, "dgmigrate history", &e) ||
	    dgm_pg_exec(conn, history_ddl, &e) ||
	    dgm_pg_query(&res, conn, "INSERT INTO dgmigrate.runs (run_id, command, release, tag,"
			 " commit_before, commit_after, revisions_before, revisions_after, snapshot_id,"
			 " snapshot_sha256, outcome, report, reason, host, started_at) VALUES ($1, $2, $3,"
			 " $4, $5, $6, ARRAY(SELECT json_array_elements_text($7::json)),"
			 " ARRAY(SELECT json_array_elements_text($8::json)), $9, $10, $11, $12::jsonb,"
			 " $13, $14, now() - make_interval(secs => $15::int))"
			 " ON CONFLICT (run_id) DO UPDATE SET outcome = EXCLUDED.outcome,"
			 " report = EXCLUDED.report, finished_at = now()", 15,
			 (const char *const[]){ p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8],
						p[9], p[10], p[11], reason, json_string_value(
						json_object_get(j, "host")), started }, &e))
		dgm_warn("cannot record the run in the history table: %s", e.msg);
	PQclear(res);
	dgm_pg_close(conn);
	dgm_buf_free(&red);
	free(text);
	free(before);
	free(after);
}

void dgm_job_finish(dgm_job *r, const char *outcome, const dgm_error *e)
{
	json_t *j = report_json(r, outcome, e);

	write_report(r, j);
	if (r->facts.server_version[0])
		write_history(r, j, r->reason);
	dgm_job_journal_end(r, outcome, e);
	{
		dgm_buf f = DGM_BUF_INIT;

		dgm_buf_puts(&f, "\"outcome\":");
		dgm_buf_json_str(&f, outcome);
		dgm_buf_puts(&f, ",\"run\":");
		dgm_buf_json_str(&f, r->id);
		dgm_event("end", f.ptr);
		dgm_buf_free(&f);
	}
	json_decref(j);
}
