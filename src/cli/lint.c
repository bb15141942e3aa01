/* lint.c - `dgmigrate lint PLAN [--json]`: the release's upgrade (and,
 * when it has one head, downgrade) SQL as alembic renders it from the
 * tag's migrations, checked by the lint rules, each finding graded by the
 * size of its table in the target database. Nothing changes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dgm/buf.h"
#include "dgm/cli.h"
#include "dgm/lint.h"
#include "dgm/log.h"
#include "dgm/plan.h"
#include "dgm/release.h"
#include "dgm/tree.h"

typedef struct lint_pass {
	const char *verb;             /* "upgrade" or "downgrade" */
	char *range;
	dgm_lint_result res;
	bool done;
} lint_pass;

typedef struct lint_run {
	const dgm_plan *plan;
	dgm_facts facts;
	dgm_tree tag;                 /* the tag's files, for "# dgmigrate: allow" */
	bool tag_open;
	lint_pass pass[2];
} lint_run;

static const char *rev_file(const lint_run *r, const char *rev)
{
	const dgm_alembic_rev *a = rev && r->facts.graph ? dgm_alembic_find(r->facts.graph, rev) :
				   NULL;

	return a ? a->path : NULL;
}

static bool plan_ignores(const dgm_plan *plan, const char *rule)
{
	for (size_t i = 0; i < plan->lint.ignore.count; i++)
		if (!strcmp(plan->lint.ignore.items[i], rule))
			return true;
	return false;
}

/* lint.ignore, then the revision file's own "# dgmigrate: allow". */
static void suppress(lint_run *r, dgm_lint_finding *f)
{
	const char *path = rev_file(r, f->revision);
	dgm_buf text = DGM_BUF_INIT;
	dgm_error e = DGM_ERROR_INIT;
	char *why;

	if (plan_ignores(r->plan, f->rule->name)) {
		f->suppressed = dgm_xstrdup("lint.ignore");
		return;
	}
	if (!path || !r->tag_open || r->tag.read(r->tag.ctx, path, &text, &e))
		goto out;
	if ((why = dgm_lint_allowed(dgm_buf_cstr(&text), f->rule->name))) {
		f->suppressed = dgm_xasprintf("# dgmigrate: allow in %s%s%s", path,
					      *why ? ": " : "", why);
		free(why);
	}
out:
	dgm_buf_free(&text);
}

/* Render, lint, size, suppress and grade one direction. */
static int lint_pass_run(lint_run *r, lint_pass *p, dgm_error *err)
{
	dgm_buf sql = DGM_BUF_INIT;
	int ret = -1;

	if (dgm_release_render_sql(&sql, r->plan, p->verb, p->range, err) ||
	    dgm_lint_sql(&p->res, dgm_buf_cstr(&sql), p == &r->pass[1] ? &r->pass[0].res : NULL,
			 err)) {
		dgm_error_prefix(err, "lint of 'alembic %s %s --sql'", p->verb, p->range);
		goto out;
	}
	if (p->res.count && dgm_lint_size(&p->res, r->plan->database.url,
					  r->plan->timeouts.lock_ms, err))
		goto out;
	for (size_t i = 0; i < p->res.count; i++) {
		suppress(r, &p->res.items[i]);
		dgm_lint_grade(&p->res.items[i], r->plan->lint.error_bytes);
	}
	p->done = true;
	ret = 0;
out:
	dgm_buf_free(&sql);
	return ret;
}

/* The downgrade back to where the database is, when the range is one
 * alembic can render: one head after, at most one revision now. */
static void plan_downgrade(lint_run *r)
{
	const dgm_alembic_steps *up = &r->facts.upgrade;

	if (up->nheads_after != 1 || r->facts.nrevs > 1)
		return;
	r->pass[1].verb = "downgrade";
	r->pass[1].range = dgm_xasprintf("%s:%s", up->heads_after[0]->id,
					 r->facts.nrevs ? r->facts.revs[0] : "base");
}

static void human_size(char *buf, size_t len, long long b)
{
	if (b < 0)
		snprintf(buf, len, "size unknown");
	else if (b < 1024 * 1024)
		snprintf(buf, len, "%lld KiB", b / 1024);
	else if (b < 1LL << 30)
		snprintf(buf, len, "%.1f MiB", (double)b / (1 << 20));
	else
		snprintf(buf, len, "%.1f GiB", (double)b / (1LL << 30));
}

/* "FILE (upgrade REV, sql line N)": where a finding is, like a compiler. */
static void where(dgm_buf *b, const lint_run *r, const lint_pass *p, const dgm_lint_finding *f)
{
	const char *file = rev_file(r, f->revision);

	if (file)
		dgm_buf_printf(b, "%s (", file);
	dgm_buf_printf(b, "%s %s, sql line %d", p->verb, f->revision ? f->revision : "-", f->line);
	if (file)
		dgm_buf_putc(b, ')');
}

static void print_finding(const lint_run *r, const lint_pass *p, const dgm_lint_finding *f)
{
	const dgm_lint_rule *rule = f->rule;
	dgm_buf b = DGM_BUF_INIT;
	char size[64];

	where(&b, r, p, f);
	printf("%s: %s: %s%s%s\n    %s\n", dgm_buf_cstr(&b), dgm_lint_severity_name(f->severity),
	       rule->name, f->detail ? ": " : "", f->detail ? f->detail : "", f->stmt);
	dgm_buf_clear(&b);
	if (rule->lock)
		dgm_buf_printf(&b, "%s lock", rule->lock);
	if (f->table) {
		human_size(size, sizeof(size), f->table_bytes);
		dgm_buf_printf(&b, " on '%s' (%s%s", f->table, size, f->table_empty ? ", empty" : "");
		if (f->table_rows >= 0)
			dgm_buf_printf(&b, ", ~%lld rows", f->table_rows);
		dgm_buf_putc(&b, ')');
	}
	dgm_buf_printf(&b, "%s%s%s", rule->rewrites ? "; rewrites the table" : "",
		       rule->scans ? "; reads the whole table" : "",
		       rule->breaks ? "; breaks the application version still running" : "");
	if (b.len)
		printf("    %s\n", dgm_buf_cstr(&b));
	printf("    why: %s\n    fix: %s\n", rule->why, rule->fix);
	dgm_buf_free(&b);
}

static void json_finding(dgm_buf *b, const lint_run *r, const lint_pass *p,
			 const dgm_lint_finding *f)
{
	const dgm_lint_rule *rule = f->rule;
	const char *file = rev_file(r, f->revision);

	dgm_buf_puts(b, "{\"direction\":");
	dgm_buf_json_str(b, p->verb);
	dgm_buf_puts(b, ",\"revision\":");
	f->revision ? dgm_buf_json_str(b, f->revision) : dgm_buf_puts(b, "null");
	dgm_buf_puts(b, ",\"file\":");
	file ? dgm_buf_json_str(b, file) : dgm_buf_puts(b, "null");
	dgm_buf_printf(b, ",\"line\":%d,\"statement\":", f->line);
	dgm_buf_json_str(b, f->stmt);
	dgm_buf_puts(b, ",\"rule\":");
	dgm_buf_json_str(b, rule->name);
	dgm_buf_puts(b, ",\"severity\":");
	dgm_buf_json_str(b, dgm_lint_severity_name(f->severity));
	dgm_buf_puts(b, ",\"lock\":");
	rule->lock ? dgm_buf_json_str(b, rule->lock) : dgm_buf_puts(b, "null");
	dgm_buf_printf(b, ",\"rewrites\":%s,\"scans\":%s,\"breaks\":%s,\"in_transaction\":%s",
		       rule->rewrites ? "true" : "false", rule->scans ? "true" : "false",
		       rule->breaks ? "true" : "false", f->in_transaction ? "true" : "false");
	dgm_buf_puts(b, ",\"table\":");
	f->table ? dgm_buf_json_str(b, f->table) : dgm_buf_puts(b, "null");
	dgm_buf_printf(b, ",\"table_bytes\":%lld,\"table_rows\":%lld,\"table_empty\":%s",
		       f->table_bytes, f->table_rows, f->table_empty ? "true" : "false");
	dgm_buf_puts(b, ",\"detail\":");
	f->detail ? dgm_buf_json_str(b, f->detail) : dgm_buf_puts(b, "null");
	dgm_buf_puts(b, ",\"why\":");
	dgm_buf_json_str(b, rule->why);
	dgm_buf_puts(b, ",\"fix\":");
	dgm_buf_json_str(b, rule->fix);
	dgm_buf_puts(b, ",\"suppressed\":");
	f->suppressed ? dgm_buf_json_str(b, f->suppressed) : dgm_buf_puts(b, "null");
	dgm_buf_putc(b, '}');
}

/* Counts per severity of what is not suppressed; *nsup the rest. */
static void tally(const lint_run *r, size_t counts[3], size_t *nsup)
{
	counts[0] = counts[1] = counts[2] = 0;
	*nsup = 0;
	for (int k = 0; k < 2; k++)
		for (size_t i = 0; i < r->pass[k].res.count; i++) {
			const dgm_lint_finding *f = &r->pass[k].res.items[i];

			if (f->suppressed)
				(*nsup)++;
			else
				counts[f->severity]++;
		}
}

static bool fails(const lint_run *r, const size_t counts[3])
{
	int on = r->plan->lint.fail_on;

	for (int s = on; s <= DGM_LINT_ERROR; s++)
		if (counts[s])
			return true;
	return false;
}

static void print_json(const lint_run *r)
{
	dgm_buf b = DGM_BUF_INIT;
	size_t counts[3], nsup;
	bool first = true;

	tally(r, counts, &nsup);
	dgm_buf_puts(&b, "{\"release\":");
	dgm_buf_json_str(&b, r->plan->release.name);
	dgm_buf_puts(&b, ",\"tag\":");
	dgm_buf_json_str(&b, r->plan->release.tag);
	dgm_buf_puts(&b, ",\"fail_on\":");
	dgm_buf_json_str(&b, dgm_lint_severity_name(r->plan->lint.fail_on));
	dgm_buf_puts(&b, ",\"linted\":[");
	for (int k = 0; k < 2; k++) {
		if (!r->pass[k].done)
			continue;
		dgm_buf_printf(&b, "%s{\"direction\":\"%s\",\"range\":", k ? "," : "", r->pass[k].verb);
		dgm_buf_json_str(&b, r->pass[k].range);
		dgm_buf_printf(&b, ",\"statements\":%zu}", r->pass[k].res.statements);
	}
	dgm_buf_puts(&b, "],\"findings\":[");
	for (int k = 0; k < 2; k++)
		for (size_t i = 0; i < r->pass[k].res.count; i++) {
			if (!first)
				dgm_buf_putc(&b, ',');
			first = false;
			json_finding(&b, r, &r->pass[k], &r->pass[k].res.items[i]);
		}
	dgm_buf_printf(&b, "],\"errors\":%zu,\"warnings\":%zu,\"notices\":%zu,\"suppressed\":%zu,"
		       "\"fails\":%s}\n", counts[2], counts[1], counts[0], nsup,
		       fails(r, counts) ? "true" : "false");
	fputs(dgm_buf_cstr(&b), stdout);
	dgm_buf_free(&b);
}

static void print_text(const lint_run *r)
{
	size_t counts[3], nsup;

	for (int k = 0; k < 2; k++)
		for (size_t i = 0; i < r->pass[k].res.count; i++)
			if (!r->pass[k].res.items[i].suppressed)
				print_finding(r, &r->pass[k], &r->pass[k].res.items[i]);
	for (int k = 0; k < 2; k++)
		for (size_t i = 0; i < r->pass[k].res.count; i++) {
			const dgm_lint_finding *f = &r->pass[k].res.items[i];
			dgm_buf b = DGM_BUF_INIT;

			if (!f->suppressed)
				continue;
			where(&b, r, &r->pass[k], f);
			printf("%s: suppressed: %s (%s)\n", dgm_buf_cstr(&b), f->rule->name,
			       f->suppressed);
			dgm_buf_free(&b);
		}
	tally(r, counts, &nsup);
	printf("lint of '%s' (%s): %zu error%s, %zu warning%s, %zu notice%s, %zu suppressed; "
	       "fail_on %s\n", r->plan->release.name, r->plan->release.tag, counts[2],
	       counts[2] == 1 ? "" : "s", counts[1], counts[1] == 1 ? "" : "s", counts[0],
	       counts[0] == 1 ? "" : "s", nsup, dgm_lint_severity_name(r->plan->lint.fail_on));
}

static int lint_release(lint_run *r, dgm_error *err)
{
	dgm_error e = DGM_ERROR_INIT;

	if (dgm_preflight(&r->facts, r->plan, DGM_PREFLIGHT_VALIDATE, false, err))
		return -1;
	if (r->facts.nrevs > 1) {
		dgm_error_set(err, DGM_E_RUN, "the database has %zu heads: 'alembic --sql' cannot "
			      "start from several", r->facts.nrevs);
		dgm_error_hint(err, "lint once the database is at one revision");
		return -1;
	}
	if (dgm_tree_open_git(&r->tag, r->plan->release.repository, r->plan->release.tag, &e) == 0)
		r->tag_open = true;
	r->pass[0].verb = "upgrade";
	r->pass[0].range = dgm_xasprintf("%s:%s", r->facts.nrevs ? r->facts.revs[0] : "base",
					 r->plan->alembic.target);
	if (!r->facts.upgrade.count) {
		dgm_info("lint: the database is at the tag's heads: nothing to upgrade");
		return 0;
	}
	if (lint_pass_run(r, &r->pass[0], err))
		return -1;
	plan_downgrade(r);
	if (r->pass[1].range && lint_pass_run(r, &r->pass[1], &e)) {
		dgm_warn("the downgrade was not linted: %s", e.msg);
		dgm_lint_result_free(&r->pass[1].res);
	}
	return 0;
}

/* --sql FILE: SQL already rendered; no plan, no database, no sizes. */
static int lint_file(lint_run *r, dgm_plan *plan, const char *path, dgm_error *err)
{
	dgm_buf sql = DGM_BUF_INIT;
	int ret = -1;

	memset(plan, 0, sizeof(*plan));
	plan->release.name = dgm_xstrdup(path);
	plan->release.tag = dgm_xstrdup("-");
	plan->lint.fail_on = DGM_LINT_ERROR;
	r->plan = plan;
	if (dgm_buf_read_file(&sql, path, err))
		goto out;
	r->pass[0].verb = strstr(dgm_buf_cstr(&sql), "\n-- Running downgrade ") ? "downgrade" :
			  "upgrade";
	r->pass[0].range = dgm_xstrdup(path);
	if (dgm_lint_sql(&r->pass[0].res, dgm_buf_cstr(&sql), NULL, err)) {
		dgm_error_prefix(err, "'%s'", path);
		goto out;
	}
	r->pass[0].done = true;
	ret = 0;
out:
	dgm_buf_free(&sql);
	return ret;
}

static int load(lint_run *r, dgm_plan *plan, const dgm_args *args, dgm_error *err)
{
	const char *file = dgm_args_get(args, "sql");

	if (file && args->npos) {
		dgm_error_set(err, DGM_E_USAGE, "lint takes a PLAN or --sql FILE, not both");
		dgm_error_hint(err, "dgmigrate lint PLAN renders the release's SQL itself");
		return -1;
	}
	if (file)
		return lint_file(r, plan, file, err);
	if (!args->npos) {
		dgm_error_set(err, DGM_E_USAGE, "lint needs a PLAN (or --sql FILE)");
		dgm_error_hint(err, "dgmigrate lint plans/release.yaml");
		return -1;
	}
	if (dgm_plan_load(plan, args->pos[0], err))
		return -1;
	dgm_plan_register_secrets(plan);
	r->plan = plan;
	return lint_release(r, err);
}

int dgm_cmd_lint(const dgm_args *args, dgm_error *err)
{
	lint_run r;
	dgm_plan plan;
	size_t counts[3], nsup;
	int ret = -1;

	/* --json prints one document at the end: no events on the way */
	dgm_log_set_json(false);
	memset(&r, 0, sizeof(r));
	memset(&plan, 0, sizeof(plan));
	if (load(&r, &plan, args, err))
		goto out;
	if (dgm_args_flag(args, "json"))
		print_json(&r);
	else
		print_text(&r);
	tally(&r, counts, &nsup);
	ret = 0;
	if (fails(&r, counts)) {
		dgm_error_set(err, DGM_E_RUN, "lint: findings reach lint.fail_on '%s'",
			      dgm_lint_severity_name(plan.lint.fail_on));
		dgm_error_hint(err, "write the statements as each finding's fix says, or suppress one "
			       "with '# dgmigrate: allow RULE -- reason' in its revision file or "
			       "lint.ignore in the plan");
		ret = -1;
	}
out:
	for (int k = 0; k < 2; k++) {
		free(r.pass[k].range);
		dgm_lint_result_free(&r.pass[k].res);
	}
	if (r.tag_open)
		dgm_tree_close(&r.tag);
	dgm_facts_free(&r.facts);
	dgm_plan_free(&plan);
	return ret;
}
