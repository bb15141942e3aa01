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
#include "dgm/history.h"
#include "dgm/log.h"
#include "dgm/pg.h"
#include "internal.h"

/* The checklist item a step covers, in this release's terms: only what
 * the plan has (no model-store words without a model store), and worded
 * for the command (a rollback checks out an older release). */
static void hook_names(dgm_buf *b, const dgm_plan_hooks *h)
{
	for (size_t i = 0; i < h->count; i++)
		dgm_buf_printf(b, "%s%s", i ? ", " : ": ", h->items[i].name);
}

static void checklist_item(dgm_buf *b, const dgm_job *r, const char *step)
{
	const dgm_plan *p = r->plan;
	bool store = p->model_store.path != NULL, rollback = !strncmp(r->command, "rollback", 8);
	const char *tag = r->tag ? r->tag : p->release.tag;

	if (!strcmp(step, "hooks.before") || !strcmp(step, "hooks.after")) {
		dgm_buf_printf(b, "Run %s", step);
		hook_names(b, step[6] == 'b' ? &p->hooks.before : &p->hooks.after);
	} else if (!strcmp(step, "snapshot"))
		dgm_buf_printf(b, "%s of the database%s, verified; record revisions and commit",
			       rollback ? "Safety snapshot of the current state" : "Back up",
			       store ? " and archive of the model store" : "");
	else if (!strcmp(step, "archive"))
		dgm_buf_puts(b, "Archive of the model store, taken beside the release, verified "
			     "before hooks.after");
	else if (!strcmp(step, "dump"))
		dgm_buf_puts(b, "Off-server backup: pg_dump of the snapshot's server-side copy, "
			     "taken beside the release, verified");
	else if (!strcmp(step, "checkout"))
		dgm_buf_printf(b, "Check out %s '%s'", rollback ? "the older release" :
			       "the release", tag);
	else if (!strcmp(step, "migrate"))
		dgm_buf_printf(b, "Run Alembic migrations (upgrade to %s)", p->alembic.target);
	else if (!strcmp(step, "downgrade"))
		dgm_buf_printf(b, "Downgrade the database to the Alembic heads of '%s'", tag);
	else if (!strcmp(step, "postconditions"))
		dgm_buf_printf(b, "Verify alembic_version%s%s%s", p->postconditions.tables.count ?
			       " and the plan's tables" : "", p->postconditions.foreign_keys_validated ?
			       "; foreign keys validated" : "", p->postconditions.analyze ?
			       "; update statistics (ANALYZE)" : "");
	else if (!strcmp(step, "health"))
		dgm_buf_puts(b, "Health check of the application");
	else if (!strcmp(step, "restore"))
		dgm_buf_printf(b, "Restore the database%s from the snapshot of '%s'",
			       store ? " and the model store" : "", tag);
	else if (!strcmp(step, "restore.store"))
		dgm_buf_printf(b, "Restore the model store from the snapshot of '%s'", tag);
	else if (!strcmp(step, "verify"))
		dgm_buf_printf(b, "Verify revisions, checked-out code and tables of '%s'", tag);
	else if (!strcmp(step, "undo.database"))
		dgm_buf_puts(b, "Undo: downgrade the database, or restore its snapshot");
	else if (!strcmp(step, "undo.code"))
		dgm_buf_puts(b, "Undo: check out the previous code again");
	else if (!strcmp(step, "undo.store"))
		dgm_buf_puts(b, "Undo: put the model store back");
	else
		dgm_buf_puts(b, step);
}

static const char *not_covered =
	"Application dependencies, static files, restarting the application, other "
	"deployments and user communication (hooks can run them)";

/* The release stays applied (with or without its off-server dump). */
static bool applied(const char *outcome)
{
	return !strcmp(outcome, "success") || !strcmp(outcome, DGM_OUTCOME_NO_DUMP);
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
	return r->checked_out && applied(outcome) ? r->facts.tag_commit : r->facts.head;
}

/* The two clocks: time to live (start to hooks.after done and health
 * check passed; a rollback is live when it is done) and time to done
 * (every backup verified); -1 where the run did not get there. */
static long to_live_ms(const dgm_job *r, const char *outcome)
{
	if (r->live)
		return r->live_ms;
	return !strcmp(outcome, "success") ? dgm_now_ms() - r->started_ms : -1;
}

static long to_done_ms(const dgm_job *r, const char *outcome)
{
	return !strcmp(outcome, "success") ? dgm_now_ms() - r->started_ms : -1;
}

static json_t *ms_or_null(long ms)
{
	return ms < 0 ? json_null() : json_integer(ms);
}

/* The lint's document, as `lint --json` has it (without release and tag). */
static json_t *lint_json(const dgm_release_lint *l)
{
	dgm_buf b = DGM_BUF_INIT;
	json_t *j;

	dgm_buf_putc(&b, '{');
	dgm_release_lint_json(&b, l);
	dgm_buf_putc(&b, '}');
	j = json_loads(b.ptr, 0, NULL);
	dgm_buf_free(&b);
	return j ? j : json_null();
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
	/* what to run: a run's report says it as the error does */
	if (e && e->hint[0])
		json_object_set_new(j, "hint", json_string(e->hint));
	json_object_set_new(j, "time_to_live_ms", ms_or_null(to_live_ms(r, outcome)));
	json_object_set_new(j, "time_to_done_ms", ms_or_null(to_done_ms(r, outcome)));
	/* which tables lost how many writes, and where they still are */
	if (r->data_loss)
		json_object_set(j, "data_loss", r->data_loss);
	if (r->facts.lint)
		json_object_set_new(j, "lint", lint_json(r->facts.lint));
	/* the revision graphs came from the project's code, run by Alembic */
	if (r->plan->alembic.read_graph == DGM_READ_GRAPH_ALEMBIC)
		json_object_set_new(j, "read_by", json_string("alembic"));
	return j;
}

/* The preflight's lint: the counts, then every finding, one line each
 * (the suppressed ones with why). */
static void md_lint(dgm_buf *b, const dgm_job *r)
{
	const dgm_release_lint *l = r->facts.lint;
	size_t counts[3], nsup;

	if (!l)
		return;
	dgm_release_lint_tally(l, counts, &nsup);
	dgm_buf_printf(b, "\n## Lint (preflight)\n\n%zu errors, %zu warnings, %zu notices, %zu "
		       "suppressed; fail_on %s.\n\n", counts[2], counts[1], counts[0], nsup,
		       dgm_lint_severity_name(l->plan->lint.fail_on));
	for (int k = 0; k < 2; k++)
		for (size_t i = 0; i < l->pass[k].res.count; i++) {
			const dgm_lint_finding *f = &l->pass[k].res.items[i];

			dgm_buf_puts(b, "- ");
			dgm_release_lint_where(b, l, &l->pass[k], f);
			dgm_buf_printf(b, ": %s %s", f->suppressed ? "suppressed" :
				       dgm_lint_severity_name(f->severity), f->rule->name);
			if (f->table)
				dgm_buf_printf(b, " on '%s'", f->table);
			if (f->suppressed)
				dgm_buf_printf(b, " (%s)", f->suppressed);
			dgm_buf_putc(b, '\n');
		}
}

static void md_row(dgm_buf *b, const char *k, const char *v)
{
	dgm_buf_printf(b, "| %s | %s |\n", k, v && *v ? v : "-");
}

static void md_clock(dgm_buf *b, const char *k, json_t *ms)
{
	if (json_is_integer(ms))
		dgm_buf_printf(b, "| %s | %.1f s |\n", k, (double)json_integer_value(ms) / 1000.0);
	else
		md_row(b, k, "not reached");
}

/* The warnings logged during the run (fallbacks among them). */
static void add_warnings(json_t *j)
{
	const char *const *w;
	size_t n = dgm_log_warnings(&w);
	json_t *a = json_array();

	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, json_string(w[i]));
	json_object_set_new(j, "warnings", a);
}

static void md_warnings(dgm_buf *b, json_t *j)
{
	size_t i;
	json_t *w;

	if (json_array_size(json_object_get(j, "warnings")))
		dgm_buf_puts(b, "\n## Warnings\n\n");
	json_array_foreach(json_object_get(j, "warnings"), i, w)
		dgm_buf_printf(b, "- %s\n", json_string_value(w));
}

static char *report_md(const dgm_job *r, json_t *j)
{
	dgm_buf b = DGM_BUF_INIT;
	char *before = dgm_strs_join(r->facts.revs, r->facts.nrevs, "");
	char *after = dgm_strs_join(r->revs_after, r->nrevs_after, "");
	size_t i;
	json_t *s;

	dgm_buf_printf(&b, "# dgmigrate %s: %s (%s) - %s\n\n", r->command, r->plan->release.name,
		       json_string_value(json_object_get(j, "tag")),
		       json_string_value(json_object_get(j, "outcome")));
	if (*json_string_value(json_object_get(j, "message")))
		dgm_buf_printf(&b, "> %s\n\n", json_string_value(json_object_get(j, "message")));
	if (json_is_string(json_object_get(j, "hint")))
		dgm_buf_printf(&b, "> HINT: %s\n\n", json_string_value(json_object_get(j, "hint")));
	dgm_buf_puts(&b, "| Fact | Value |\n|---|---|\n");
	md_row(&b, "Run", r->id);
	md_row(&b, "Host", json_string_value(json_object_get(j, "host")));
	md_row(&b, "Revisions before", *before ? before : "(base)");
	md_row(&b, "Revisions after", after);
	md_row(&b, "Commit before", r->facts.head);
	md_row(&b, "Commit after", json_string_value(json_object_get(j, "commit_after")));
	md_row(&b, "Snapshot", r->have_snap ? r->snap.id : "");
	if (json_is_string(json_object_get(j, "read_by")))
		md_row(&b, "Revision graph", "read by Alembic (alembic.read_graph: alembic; it "
		       "imported the project's code)");
	if (r->have_snap) {
		md_row(&b, "Dump files SHA-256 (db.sha256)", r->snap.db_sha256);
		if (r->snap.has_store)
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
	md_clock(&b, "Time to live (hooks.after done, health check passed)",
		 json_object_get(j, "time_to_live_ms"));
	md_clock(&b, "Time to done (every backup verified)", json_object_get(j, "time_to_done_ms"));
	dgm_buf_printf(&b, "| Duration | %.1f s |\n\n", (double)json_integer_value(
		json_object_get(j, "duration_ms")) / 1000.0);
	dgm_buf_puts(&b, "| Checklist item | Result | Time | Evidence |\n|---|---|---|---|\n");
	json_array_foreach(r->steps, i, s) {
		dgm_buf_puts(&b, "| ");
		checklist_item(&b, r, json_string_value(json_object_get(s, "step")));
		dgm_buf_printf(&b, " | %s | %.1f s | %s |\n",
			       json_string_value(json_object_get(s, "status")),
			       (double)json_integer_value(json_object_get(s, "ms")) / 1000.0,
			       json_string_value(json_object_get(s, "evidence")));
	}
	dgm_buf_printf(&b, "| %s | not covered by dgmigrate | | |\n", not_covered);
	md_lint(&b, r);
	md_warnings(&b, j);
	free(before);
	free(after);
	return dgm_buf_detach(&b);
}

/* The report's Markdown path, or NULL when it could not be written. */
static char *write_report(const dgm_job *r, json_t *j)
{
	dgm_error e = DGM_ERROR_INIT;
	char *dir = dgm_xasprintf("%s/reports", r->plan->state_dir);
	char *jp = dgm_xasprintf("%s/%s.json", dir, r->id), *mp = dgm_xasprintf("%s/%s.md", dir, r->id);
	char *jtext = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER), *md = report_md(r, j);
	dgm_buf red = DGM_BUF_INIT;

	/* j is redacted already (value by value); the Markdown is text */
	if (dgm_fs_mkdir_p(dir, 0700, &e) == 0) {
		dgm_fs_write_atomic(jp, jtext ? jtext : "{}", jtext ? strlen(jtext) : 2, 0600, &e);
		dgm_redact(md, &red);
		dgm_fs_write_atomic(mp, red.ptr, red.len, 0600, &e);
	}
	if (e.code) {
		dgm_warn("cannot write the report: %s", e.msg);
		free(mp);
		mp = NULL;
	} else
		dgm_info("report: %s", mp);
	dgm_buf_free(&red);
	free(jtext);
	free(md);
	free(jp);
	free(dir);
	return mp;
}

/* One result line on stdout, the last thing a run prints there (with
 * --json the "end" event is that line). */
static void result_line(const dgm_job *r, const char *outcome, const char *report)
{
	dgm_buf line = DGM_BUF_INIT, red = DGM_BUF_INIT;

	if (dgm_log_json())
		return;
	dgm_buf_printf(&line, "%s '%s': %s (run %s, database at %s%s, HEAD %.12s%s%s)\n",
		       r->command, r->tag ? r->tag : r->plan->release.tag, outcome, r->id,
		       r->nrevs_after ? r->revs_after[0] : (r->facts.nrevs ? r->facts.revs[0] :
		       "base"), r->nrevs_after > 1 ? " and more" : "", r->checked_out &&
		       applied(outcome) ? r->facts.tag_commit : r->facts.head,
		       report ? ", report " : "", report ? report : "");
	dgm_redact(dgm_buf_cstr(&line), &red);
	fputs(dgm_buf_cstr(&red), stdout);
	fflush(stdout);
	dgm_buf_free(&line);
	dgm_buf_free(&red);
}

/* shared with the restore, which carries the rows over */
static const char *history_ddl = DGM_HISTORY_DDL;

/* After any restore: a row written before it would be lost with it. */
static void write_history(const dgm_job *r, json_t *j, const char *reason)
{
	char *text = json_dumps(j, JSON_COMPACT), *before = json_dumps(json_object_get(j,
		"revisions_before"), JSON_COMPACT), *after = json_dumps(json_object_get(j,
		"revisions_after"), JSON_COMPACT);
	char finished[40];
	const char *p[12];
	dgm_error e = DGM_ERROR_INIT;
	dgm_buf why = DGM_BUF_INIT;   /* the reason, typed by a person: redacted too */
	PGconn *conn = NULL;
	PGresult *res = NULL;

	if (reason)
		dgm_redact(reason, &why);
	/* both times from this machine's clock, to the millisecond; a
	 * resumed run keeps the start of the run it continues */
	dgm_job_utc_now(finished, sizeof(finished));
	p[0] = r->id; p[1] = r->command; p[2] = r->plan->release.name;
	p[3] = json_string_value(json_object_get(j, "tag"));
	p[4] = r->facts.head; p[5] = json_string_value(json_object_get(j, "commit_after"));
	p[6] = before; p[7] = after; p[8] = r->have_snap ? r->snap.id : NULL;
	p[9] = r->have_snap ? r->snap.archive_sha256 : NULL;
	p[10] = json_string_value(json_object_get(j, "outcome"));
	p[11] = text;
	if (dgm_pg_connect(&conn, r->plan->database.url, "dgmigrate history", &e) ||
	    dgm_pg_exec(conn, history_ddl, &e) ||
	    dgm_pg_query(&res, conn, "INSERT INTO dgmigrate.runs (run_id, command, release, tag,"
			 " commit_before, commit_after, revisions_before, revisions_after, snapshot_id,"
			 " snapshot_sha256, outcome, report, reason, host, started_at, finished_at)"
			 " VALUES ($1, $2, $3, $4, $5, $6,"
			 " ARRAY(SELECT json_array_elements_text($7::json)),"
			 " ARRAY(SELECT json_array_elements_text($8::json)), $9, $10, $11, $12::jsonb,"
			 " $13, $14, $15::timestamptz, $16::timestamptz)"
			 " ON CONFLICT (run_id) DO UPDATE SET outcome = EXCLUDED.outcome,"
			 " report = EXCLUDED.report, finished_at = EXCLUDED.finished_at", 16,
			 (const char *const[]){ p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8],
						p[9], p[10], p[11], reason ? dgm_buf_cstr(&why) : NULL,
						json_string_value(json_object_get(j, "host")),
						r->started_at[0] ? r->started_at : NULL, finished },
			 &e))
		dgm_warn("cannot record the run in the history table: %s", e.msg);
	PQclear(res);
	dgm_pg_close(conn);
	dgm_buf_free(&why);
	free(text);
	free(before);
	free(after);
}

static void clock_field(dgm_buf *f, const char *name, json_t *ms)
{
	if (json_is_integer(ms))
		dgm_buf_printf(f, ",\"%s\":%lld", name, (long long)json_integer_value(ms));
	else
		dgm_buf_printf(f, ",\"%s\":null", name);
}

/* Report, then (for a settled run) history row and journal end, then
 * the "end" event and the result line. */
static void finish(dgm_job *r, const char *outcome, const dgm_error *e, bool settled)
{
	json_t *j = report_json(r, outcome, e), *red;
	dgm_buf f = DGM_BUF_INIT;
	char *report;

	add_warnings(j);
	red = dgm_json_redacted(j);
	report = write_report(r, red);
	if (settled) {
		if (r->facts.server_version[0])
			write_history(r, red, r->reason);
		dgm_job_journal_end(r, outcome, e);
	}
	dgm_buf_puts(&f, "\"outcome\":");
	dgm_buf_json_str(&f, outcome);
	dgm_buf_puts(&f, ",\"run\":");
	dgm_buf_json_str(&f, r->id);
	clock_field(&f, "time_to_live_ms", json_object_get(j, "time_to_live_ms"));
	clock_field(&f, "time_to_done_ms", json_object_get(j, "time_to_done_ms"));
	dgm_event("end", f.ptr);
	dgm_buf_free(&f);
	result_line(r, outcome, report);
	free(report);
	json_decref(red);
	json_decref(j);
}

void dgm_job_finish(dgm_job *r, const char *outcome, const dgm_error *e)
{
	finish(r, outcome, e, true);
}

/* A run that could not put back everything it changed: the report says
 * so, but the journal gets no end record and the history no row, so that
 * `resume` retries and then records the run once. */
void dgm_job_leave_open(dgm_job *r, const dgm_error *e)
{
	finish(r, "unsettled", e, false);
}
