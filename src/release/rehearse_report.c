/* rehearse_report.c - the rehearsal's report for sign-off: JSON and
 * Markdown in <state_dir>/reports, a summary on stdout. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "dgm/json.h"
#include "dgm/buf.h"
#include "dgm/clock.h"
#include "dgm/fs.h"
#include "dgm/log.h"
#include "rehearse_int.h"

/* Locks on tables that existed before the upgrade: those are the ones the
 * application uses while a real upgrade runs. Strongest first. */
static json_t *locks_json(const dgm_rehearsal *r)
{
	json_t *a = json_array();

	for (int st = 8; st > 0; st--)
		for (size_t i = 0; i < r->sampler.nseen; i++) {
			const dgm_rehearse_lock *l = &r->sampler.seen[i];

			if (l->strength != st || !dgm_fingerprint_find(&r->fp_before, "table", l->table))
				continue;
			json_array_append_new(a, json_pack("{s:s, s:s, s:s, s:s, s:b, s:I}", "table",
				l->table, "mode", dgm_rehearse_lock_mode(st), "blocks",
				dgm_rehearse_lock_blocks(st), "during", l->during, "at_ddl", l->at_ddl,
				"sampled_ms", (json_int_t)l->samples * DGM_REHEARSE_SAMPLE_MS));
		}
	return a;
}

/* "held ACCESS EXCLUSIVE on invoices for 4.2 s on a copy of the real
 * data", with how it was measured. */
static char *hold_text(const dgm_rehearse_hold *h)
{
	long ms = dgm_rehearse_hold_ms(h);
	char took[64];

	if (!h->samples && !ms)
		snprintf(took, sizeof(took), "for less than a sampling interval");
	else
		snprintf(took, sizeof(took), "for %s%.*f s", h->samples ? "" : "at least ",
			 ms < 10000 ? 2 : 1, (double)ms / 1000.0);
	return dgm_xasprintf("held %s on %s %s on a copy of the real data (%s%s%s; %s)",
			     dgm_rehearse_lock_mode(h->strength), h->table, took, h->direction,
			     h->revision ? " of " : "", h->revision ? h->revision : "",
			     h->samples ? "pg_locks sampled every " DGM_REHEARSE_SAMPLE_TEXT :
			     "seen at the end of DDL statements, between two samples of pg_locks");
}

static json_t *hold_json(const dgm_rehearse_hold *h)
{
	char *text = hold_text(h);
	json_t *j = json_pack("{s:s, s:s?, s:s, s:s, s:s, s:I, s:I, s:b, s:s, s:s}",
		"direction", h->direction, "revision", h->revision, "table", h->table,
		"mode", dgm_rehearse_lock_mode(h->strength),
		"blocks", dgm_rehearse_lock_blocks(h->strength),
		"held_ms", (json_int_t)dgm_rehearse_hold_ms(h), "samples", (json_int_t)h->samples,
		"at_ddl", h->at_ddl, "measured_by", h->samples ? "sampling" : "ddl-trace",
		"text", text);

	free(text);
	return j;
}

/* Holds on tables that existed before the upgrade (those the application
 * uses), in the order they began. */
static bool hold_counts(const dgm_rehearsal *r, const dgm_rehearse_hold *h)
{
	return h->direction && dgm_fingerprint_find(&r->fp_before, "table", h->table);
}

static json_t *holds_json(const dgm_rehearsal *r)
{
	json_t *a = json_array();

	for (size_t i = 0; i < r->sampler.nholds; i++)
		if (hold_counts(r, &r->sampler.holds[i]))
			json_array_append_new(a, hold_json(&r->sampler.holds[i]));
	return a;
}

/* "schema.name" or "name" (public), unquoted, as the lint names tables. */
static bool same_table(const char *lint_table, const char *hold_table)
{
	char plain[256];
	size_t n = 0;

	if (!strncmp(lint_table, "public.", 7))
		lint_table += 7;
	for (const char *p = hold_table; *p && n + 1 < sizeof(plain); p++)
		if (*p != '"')
			plain[n++] = *p;
	plain[n] = '\0';
	return !strcmp(lint_table, plain);
}

/* The hold measured for a finding: its direction and table, its
 * revision when both are known; the strongest, then the longest. */
static const dgm_rehearse_hold *measured(const dgm_rehearsal *r, const char *verb,
					 const dgm_lint_finding *f)
{
	const dgm_rehearse_hold *best = NULL;

	for (size_t i = 0; f->table && i < r->sampler.nholds; i++) {
		const dgm_rehearse_hold *h = &r->sampler.holds[i];

		if (!hold_counts(r, h) || strcmp(h->direction, verb) || !same_table(f->table, h->table) ||
		    (h->revision && f->revision && strcmp(h->revision, f->revision)))
			continue;
		if (!best || h->strength > best->strength || (h->strength == best->strength &&
		    dgm_rehearse_hold_ms(h) > dgm_rehearse_hold_ms(best)))
			best = h;
	}
	return best;
}

/* The lint's document (as `lint --json` has it), each finding with what
 * was measured on the copy: "measured" is the hold, or null. */
static json_t *lint_json(const dgm_rehearsal *r)
{
	dgm_buf b = DGM_BUF_INIT;
	json_t *j, *findings;
	size_t n = 0;

	if (!r->linted)
		return json_null();
	dgm_buf_putc(&b, '{');
	dgm_release_lint_json(&b, &r->lint);
	dgm_buf_putc(&b, '}');
	j = json_loads(b.ptr, 0, NULL);
	dgm_buf_free(&b);
	findings = json_object_get(j, "findings");
	for (int k = 0; k < 2; k++)
		for (size_t i = 0; i < r->lint.pass[k].res.count; i++) {
			const dgm_rehearse_hold *h = measured(r, r->lint.pass[k].verb,
							     &r->lint.pass[k].res.items[i]);
			const dgm_lint_finding *f = &r->lint.pass[k].res.items[i];
			json_t *x = json_array_get(findings, n++);
			dgm_buf where = DGM_BUF_INIT;

			dgm_release_lint_where(&where, &r->lint, &r->lint.pass[k], f);
			json_object_set_new(x, "where", json_string(dgm_buf_cstr(&where)));
			json_object_set_new(x, "measured", h ? hold_json(h) : json_null());
			dgm_buf_free(&where);
		}
	return j ? j : json_null();
}

static json_t *upgrade_json(const dgm_rehearsal *r)
{
	json_t *a = json_array();

	for (size_t i = 0; i < r->facts.upgrade.count; i++)
		json_array_append_new(a, json_pack("{s:s, s:s?}", "revision",
			r->facts.upgrade.revs[i]->id, "message", r->facts.upgrade.revs[i]->doc));
	return a;
}

static json_t *post_json(const dgm_rehearsal *r)
{
	json_t *a = json_array();

	for (size_t i = 0; i < r->post.count; i++)
		json_array_append_new(a, json_pack("{s:s, s:b, s:s?}", "check", r->post.items[i].name,
			"ok", r->post.items[i].ok, "evidence", r->post.items[i].evidence));
	return a;
}

static json_t *report_json(const dgm_rehearsal *r)
{
	const dgm_plan *plan = r->plan;
	json_t *j = json_object(), *target = json_array();
	char host[256] = "", when[32];

	gethostname(host, sizeof(host) - 1);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime(&r->started));
	for (size_t i = 0; i < r->facts.upgrade.nheads_after; i++)
		json_array_append_new(target, json_string(r->facts.upgrade.heads_after[i]->id));
	json_object_set_new(j, "command", json_string("rehearse"));
	json_object_set_new(j, "verdict", json_string(r->verdict));
	json_object_set_new(j, "message", json_string(r->why.msg));
	json_object_set_new(j, "hint", json_string(r->why.hint));
	json_object_set_new(j, "release", json_string(plan->release.name));
	json_object_set_new(j, "tag", json_string(plan->release.tag));
	json_object_set_new(j, "tag_commit", json_string(r->facts.tag_commit));
	json_object_set_new(j, "mode", json_string(r->opts->step ? "step" : "whole"));
	json_object_set_new(j, "database", json_string(r->database ? r->database : ""));
	json_object_set_new(j, "scratch_database", json_string(r->scratch.name ? r->scratch.name : ""));
	json_object_set_new(j, "scratch_from", json_string(r->scratch.from ? r->scratch.from : ""));
	json_object_set_new(j, "scratch_dropped", json_boolean(!r->scratch.exists));
	json_object_set_new(j, "revisions_before", dgm_json_strs(r->facts.revs, r->facts.nrevs));
	json_object_set_new(j, "revisions_target", target);
	json_object_set_new(j, "upgrade", upgrade_json(r));
	json_object_set_new(j, "fingerprint_before", json_string(r->fp_before.sha256));
	json_object_set_new(j, "fingerprint_upgraded", json_string(r->fp_upgraded.sha256));
	json_object_set_new(j, "fingerprint_after_downgrade", json_string(r->fp_after));
	json_object_set_new(j, "phases", json_incref(r->phases));
	json_object_set_new(j, "differences", json_incref(r->findings));
	json_object_set_new(j, "locks", locks_json(r));
	json_object_set_new(j, "lock_holds", holds_json(r));
	json_object_set_new(j, "lint", lint_json(r));
	json_object_set_new(j, "lock_sample_ms", json_integer(DGM_REHEARSE_SAMPLE_MS));
	json_object_set_new(j, "lock_samples", json_integer(r->sampler.samples));
	json_object_set_new(j, "lock_ddl_probe", json_boolean(r->sampler.probe));
	if (r->sampler.error[0])
		json_object_set_new(j, "lock_sample_error", json_string(r->sampler.error));
	json_object_set_new(j, "tables", json_incref(r->tables));
	json_object_set_new(j, "postconditions", post_json(r));
	json_object_set_new(j, "host", json_string(host));
	json_object_set_new(j, "started_at", json_string(when));
	json_object_set_new(j, "duration_ms", json_integer(dgm_now_ms() - r->started_ms));
	return j;
}

static const char *str(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "";
}

/* Table cells cannot hold '|' or newlines. */
static void cell(dgm_buf *b, const char *s)
{
	for (; *s; s++)
		if (*s == '|')
			dgm_buf_puts(b, "\\|");
		else
			dgm_buf_putc(b, *s == '\n' ? ' ' : *s);
}

static const char *verdict_word(const char *v)
{
	return !strcmp(v, "pass") ? "PASS" : !strcmp(v, "fail") ? "FAIL" : v;
}

static void md_facts(dgm_buf *b, const dgm_rehearsal *r, json_t *j)
{
	dgm_buf_printf(b, "# dgmigrate rehearse: %s (%s) - %s\n\n", r->plan->release.name,
		       r->plan->release.tag, verdict_word(r->verdict));
	if (*str(j, "message"))
		dgm_buf_printf(b, "> %s\n\n", str(j, "message"));
	dgm_buf_puts(b, "| Fact | Value |\n|---|---|\n");
	dgm_buf_printf(b, "| Database | %s |\n", str(j, "database"));
	dgm_buf_printf(b, "| Scratch copy | %s, from %s, %s |\n", str(j, "scratch_database"),
		       str(j, "scratch_from"), r->scratch.exists ? "NOT dropped" : "dropped");
	dgm_buf_printf(b, "| Mode | %s |\n", r->opts->step ? "revision by revision (--step)" :
		       "the whole release at once");
	dgm_buf_printf(b, "| Tag | %s (%s) |\n", r->plan->release.tag, r->facts.tag_commit);
	dgm_buf_printf(b, "| Revisions before | %s |\n", r->start_text ? r->start_text : "");
	dgm_buf_printf(b, "| Upgrade | %zu revisions to %s |\n", r->facts.upgrade.count,
		       r->plan->alembic.target);
	dgm_buf_printf(b, "| Schema fingerprint before | %s |\n", r->fp_before.sha256);
	dgm_buf_printf(b, "| Schema fingerprint after the downgrade | %s |\n",
		       r->fp_after[0] ? r->fp_after : "-");
	dgm_buf_printf(b, "| Host | %s |\n| Started | %s |\n| Duration | %.1f s |\n\n",
		       str(j, "host"), str(j, "started_at"),
		       (double)json_integer_value(json_object_get(j, "duration_ms")) / 1000.0);
}

static void md_phases(dgm_buf *b, json_t *j)
{
	size_t i;
	json_t *x;

	dgm_buf_puts(b, "## Phases\n\n| Phase | Result | Time | Detail |\n|---|---|---|---|\n");
	json_array_foreach(json_object_get(j, "phases"), i, x) {
		dgm_buf_printf(b, "| %s | %s | %.1f s | ", str(x, "phase"),
			       json_is_true(json_object_get(x, "ok")) ? "ok" : "FAIL",
			       (double)json_integer_value(json_object_get(x, "ms")) / 1000.0);
		cell(b, str(x, "detail"));
		dgm_buf_puts(b, " |\n");
	}
	if (!json_array_size(json_object_get(j, "differences")))
		return;
	dgm_buf_puts(b, "\n## What the downgrade did not undo\n\n| Revision | Difference |\n"
		     "|---|---|\n");
	json_array_foreach(json_object_get(j, "differences"), i, x) {
		dgm_buf_printf(b, "| %s%s | ", *str(x, "revision") ? str(x, "revision") : "?",
			       strcmp(str(x, "attributed_by"), "step") ? " (named in its file)" : "");
		cell(b, str(x, "text"));
		dgm_buf_puts(b, " |\n");
	}
}

static void md_locks(dgm_buf *b, json_t *j)
{
	size_t i;
	json_t *x;

	dgm_buf_printf(b, "\n## Locks the upgrade took on existing tables\n\npg_locks sampled every "
		       "%d ms (%lld samples): a lock held for less may not show%s.\n\n",
		       DGM_REHEARSE_SAMPLE_MS, (long long)json_integer_value(json_object_get(j,
		       "lock_samples")), json_is_true(json_object_get(j, "lock_ddl_probe")) ?
		       "; the locks held at the end of each DDL statement were recorded by an event "
		       "trigger" : "; DDL statements were not traced (that needs a superuser)");
	dgm_buf_puts(b, "| Table | Strongest lock | Blocks for the application | During | Seen |\n"
		     "|---|---|---|---|---|\n");
	json_array_foreach(json_object_get(j, "locks"), i, x) {
		long long ms = (long long)json_integer_value(json_object_get(x, "sampled_ms"));

		dgm_buf_printf(b, "| %s | %s | %s | %s | ", str(x, "table"), str(x, "mode"),
			       str(x, "blocks"), str(x, "during"));
		if (json_is_true(json_object_get(x, "at_ddl")))
			dgm_buf_puts(b, ms ? "at a DDL statement; " : "at a DDL statement");
		if (ms)
			dgm_buf_printf(b, "in samples for ~%lld ms", ms);
		dgm_buf_puts(b, " |\n");
	}
}

/* Each lint finding with the lock measured on the copy beside it. */
static void md_lint(dgm_buf *b, json_t *j)
{
	json_t *lint = json_object_get(j, "lint"), *x;
	size_t i;

	dgm_buf_puts(b, "\n## Locks held, per revision and table\n\n| Direction | Revision | "
		     "Table | Lock | Blocks | Held | Measured by |\n|---|---|---|---|---|---|---|\n");
	json_array_foreach(json_object_get(j, "lock_holds"), i, x)
		dgm_buf_printf(b, "| %s | %s | %s | %s | %s | %.2f s | %s |\n", str(x, "direction"),
			       *str(x, "revision") ? str(x, "revision") : "?", str(x, "table"),
			       str(x, "mode"), str(x, "blocks"),
			       (double)json_integer_value(json_object_get(x, "held_ms")) / 1000.0,
			       str(x, "measured_by"));
	if (!json_is_object(lint)) {
		dgm_buf_puts(b, "\n## Lint\n\nThe release's SQL was not linted (see the warning).\n");
		return;
	}
	dgm_buf_printf(b, "\n## Lint findings, with the locks measured on the copy\n\n%lld "
		       "errors, %lld warnings, %lld notices, %lld suppressed; fail_on %s.\n\n"
		       "| Where | Severity | Rule | Table | Measured on the copy | Fix |\n"
		       "|---|---|---|---|---|---|\n",
		       (long long)json_integer_value(json_object_get(lint, "errors")),
		       (long long)json_integer_value(json_object_get(lint, "warnings")),
		       (long long)json_integer_value(json_object_get(lint, "notices")),
		       (long long)json_integer_value(json_object_get(lint, "suppressed")),
		       str(lint, "fail_on"));
	json_array_foreach(json_object_get(lint, "findings"), i, x) {
		json_t *m = json_object_get(x, "measured");

		dgm_buf_puts(b, "| ");
		cell(b, str(x, "where"));
		dgm_buf_printf(b, " | %s | %s | %s | ", json_is_string(json_object_get(x,
			       "suppressed")) ? "suppressed" : str(x, "severity"), str(x, "rule"),
			       *str(x, "table") ? str(x, "table") : "-");
		cell(b, json_is_object(m) ? str(m, "text") : "no lock seen on the copy");
		dgm_buf_puts(b, " | ");
		cell(b, str(x, "fix"));
		dgm_buf_puts(b, " |\n");
	}
}

static void md_rows_and_checks(dgm_buf *b, json_t *j)
{
	size_t i;
	json_t *x;

	dgm_buf_puts(b, "\n## Rows in the tables the upgrade touched\n\n"
		     "| Table | Rows | Touched |\n|---|---|---|\n");
	json_array_foreach(json_object_get(j, "tables"), i, x)
		dgm_buf_printf(b, "| %s | %s%lld | %s |\n", str(x, "table"),
			       json_is_true(json_object_get(x, "estimated")) ? "~" : "",
			       (long long)json_integer_value(json_object_get(x, "rows")), str(x, "why"));
	dgm_buf_puts(b, "\n## Postconditions (on the upgraded copy)\n\n"
		     "| Check | Result | Evidence |\n|---|---|---|\n");
	json_array_foreach(json_object_get(j, "postconditions"), i, x) {
		dgm_buf_printf(b, "| %s | %s | ", str(x, "check"),
			       json_is_true(json_object_get(x, "ok")) ? "ok" : "FAIL");
		cell(b, str(x, "evidence"));
		dgm_buf_puts(b, " |\n");
	}
}

/* reports/rehearse-<UTC time>, with -2, -3 ... when that exists. */
static char *report_base(const dgm_rehearsal *r, const char *dir)
{
	char stamp[32];
	char *base = NULL, *probe = NULL;
	struct stat st;

	strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", gmtime(&r->started));
	for (int n = 1; !base; n++) {
		base = n == 1 ? dgm_xasprintf("%s/rehearse-%s", dir, stamp) :
				dgm_xasprintf("%s/rehearse-%s-%d", dir, stamp, n);
		probe = dgm_xasprintf("%s.json", base);
		if (stat(probe, &st) == 0) {
			free(base);
			base = NULL;
		}
		free(probe);
	}
	return base;
}

static int write_files(char **md_path, const dgm_rehearsal *r, json_t *j, dgm_error *err)
{
	char *dir = dgm_xasprintf("%s/reports", r->plan->state_dir), *base = NULL;
	/* the JSON is redacted value by value, never as text */
	json_t *jred = dgm_json_redacted(j);
	char *jp = NULL, *text = json_dumps(jred, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	dgm_buf md = DGM_BUF_INIT, red = DGM_BUF_INIT;
	int ret = -1;

	*md_path = NULL;
	if (dgm_fs_mkdir_p(dir, 0700, err))
		goto out;
	base = report_base(r, dir);
	jp = dgm_xasprintf("%s.json", base);
	*md_path = dgm_xasprintf("%s.md", base);
	md_facts(&md, r, j);
	md_phases(&md, j);
	md_locks(&md, j);
	md_lint(&md, j);
	md_rows_and_checks(&md, j);
	if (dgm_fs_write_atomic(jp, text, strlen(text), 0600, err))
		goto out;
	dgm_redact(md.ptr, &red);
	ret = dgm_fs_write_atomic(*md_path, red.ptr, red.len, 0600, err);
out:
	dgm_buf_free(&md);
	dgm_buf_free(&red);
	json_decref(jred);
	free(text);
	free(jp);
	free(base);
	free(dir);
	return ret;
}

/* "  lint  WHERE: SEVERITY RULE on 'T': held ... on a copy of the real
 * data", for each finding that is not suppressed. */
static void summary_lint(dgm_buf *b, json_t *j)
{
	json_t *lint = json_object_get(j, "lint"), *x;
	size_t i;

	json_array_foreach(json_object_get(lint, "findings"), i, x) {
		json_t *m = json_object_get(x, "measured");

		if (json_is_string(json_object_get(x, "suppressed")))
			continue;
		dgm_buf_printf(b, "  lint  %s: %s %s", str(x, "where"), str(x, "severity"),
			       str(x, "rule"));
		if (*str(x, "table"))
			dgm_buf_printf(b, " on '%s'", str(x, "table"));
		dgm_buf_printf(b, ": %s\n", json_is_object(m) ? str(m, "text") :
			       *str(x, "table") ? "no lock on it seen on the copy" :
			       "no table to measure");
	}
}

static void summary(const dgm_rehearsal *r, json_t *j, const char *md_path)
{
	dgm_buf b = DGM_BUF_INIT, red = DGM_BUF_INIT;
	size_t i;
	json_t *x;

	dgm_buf_printf(&b, "rehearsal of '%s' (tag %s) on a scratch copy of '%s': %s\n",
		       r->plan->release.name, r->plan->release.tag, str(j, "database"),
		       verdict_word(r->verdict));
	json_array_foreach(json_object_get(j, "phases"), i, x)
		dgm_buf_printf(&b, "  %-5s %-30s %6.1f s  %s\n",
			       json_is_true(json_object_get(x, "ok")) ? "ok" : "FAIL", str(x, "phase"),
			       (double)json_integer_value(json_object_get(x, "ms")) / 1000.0,
			       str(x, "detail"));
	json_array_foreach(json_object_get(j, "differences"), i, x)
		dgm_buf_printf(&b, "  %s %s: %s\n", strcmp(str(x, "attributed_by"), "step") ?
			       "named in revision" : "revision", *str(x, "revision") ?
			       str(x, "revision") : "?", str(x, "text"));
	json_array_foreach(json_object_get(j, "locks"), i, x)
		dgm_buf_printf(&b, "  lock  %s: %s (blocks %s), during %s\n", str(x, "table"),
			       str(x, "mode"), str(x, "blocks"), str(x, "during"));
	summary_lint(&b, j);
	if (md_path)
		dgm_buf_printf(&b, "report: %s\n", md_path);
	dgm_redact(b.ptr, &red);
	fputs(red.ptr, stdout);
	fflush(stdout);
	dgm_buf_free(&b);
	dgm_buf_free(&red);
}

void dgm_rehearse_report(dgm_rehearsal *r)
{
	json_t *j = report_json(r);
	dgm_error e = DGM_ERROR_INIT;
	char *md_path = NULL;

	if (write_files(&md_path, r, j, &e)) {
		dgm_warn("cannot write the report: %s", e.msg);
		free(md_path);
		md_path = NULL;
	} else
		dgm_info("report: %s", md_path);
	if (dgm_log_json()) {
		char *text;

		json_object_set_new(j, "report", json_string(md_path ? md_path : ""));
		text = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
		/* the object's members, for dgm_event's {"event": ..., <fields>} */
		text[strlen(text) - 1] = '\0';
		dgm_event("report", text + 1);
		free(text);
	} else
		summary(r, j, md_path);
	free(md_path);
	json_decref(j);
}
