/* lint.c - the release's lint, as `dgmigrate lint`, apply's preflight,
 * `apply --dry-run` and the rehearsal report all show it: the upgrade
 * (and, when it has one head, downgrade) SQL as alembic renders it from
 * the tag's migrations, checked by the lint rules, each finding graded
 * by the size of its table in the target database. Nothing changes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dgm/buf.h"
#include "dgm/lint.h"
#include "dgm/log.h"
#include "dgm/plan.h"
#include "dgm/release.h"
#include "dgm/tree.h"

const char *dgm_release_lint_file(const dgm_release_lint *l, const char *rev)
{
	const dgm_alembic_rev *a = rev && l->graph ? dgm_alembic_find(l->graph, rev) : NULL;

	return a ? a->path : NULL;
}

static bool plan_ignores(const dgm_plan *plan, const char *rule)
{
	for (size_t i = 0; i < plan->lint.ignore.count; i++)
		if (!strcmp(plan->lint.ignore.items[i], rule))
			return true;
	return false;
}

/* From the revision file: the line of the call the statement comes
 * from; then lint.ignore, then the file's own "# dgmigrate: allow". */
static void from_file(dgm_release_lint *l, const dgm_lint_pass *p, dgm_lint_finding *f)
{
	const char *path = dgm_release_lint_file(l, f->revision);
	dgm_buf text = DGM_BUF_INIT;
	dgm_error e = DGM_ERROR_INIT;
	bool have = path && l->tag_open && l->tag.read(l->tag.ctx, path, &text, &e) == 0;
	char *why;

	if (have)
		f->src_line = dgm_lint_source_line(dgm_buf_cstr(&text), p->verb, f);
	if (plan_ignores(l->plan, f->rule->name))
		f->suppressed = dgm_xstrdup("lint.ignore");
	else if (have && (why = dgm_lint_allowed(dgm_buf_cstr(&text), f->rule->name))) {
		f->suppressed = dgm_xasprintf("# dgmigrate: allow in %s%s%s", path,
					      *why ? ": " : "", why);
		free(why);
	}
	dgm_buf_free(&text);
}

/* Render, lint, size, suppress and grade one direction. */
static int pass_run(dgm_release_lint *l, dgm_lint_pass *p, dgm_error *err)
{
	dgm_buf sql = DGM_BUF_INIT;
	int ret = -1;

	if (dgm_release_render_sql(&sql, l->plan, p->verb, p->range, err) ||
	    dgm_lint_sql(&p->res, dgm_buf_cstr(&sql), p == &l->pass[1] ? &l->pass[0].res : NULL,
			 err)) {
		dgm_error_prefix(err, "lint of 'alembic %s %s --sql'", p->verb, p->range);
		goto out;
	}
	if (p->res.count && dgm_lint_size(&p->res, l->plan->database.url,
					  l->plan->timeouts.lock_ms, err))
		goto out;
	for (size_t i = 0; i < p->res.count; i++) {
		from_file(l, p, &p->res.items[i]);
		dgm_lint_grade(&p->res.items[i], l->plan->lint.error_bytes);
	}
	p->done = true;
	if (p == &l->pass[0]) {
		l->upgrade_sql = sql;
		return 0;
	}
	ret = 0;
out:
	dgm_buf_free(&sql);
	return ret;
}

/* The downgrade back to where the database is, when the range is one
 * alembic can render: one head after, at most one revision now. */
static void plan_downgrade(dgm_release_lint *l, const dgm_facts *f)
{
	const dgm_alembic_steps *up = &f->upgrade;

	if (up->nheads_after != 1 || f->nrevs > 1)
		return;
	l->pass[1].verb = "downgrade";
	l->pass[1].range = dgm_xasprintf("%s:%s", up->heads_after[0]->id,
					 f->nrevs ? f->revs[0] : "base");
}

int dgm_release_lint_run(dgm_release_lint *l, const dgm_plan *plan, const dgm_facts *f,
			 dgm_error *err)
{
	dgm_error e = DGM_ERROR_INIT;

	memset(l, 0, sizeof(*l));
	l->plan = plan;
	l->graph = f->graph;
	if (f->nrevs > 1) {
		dgm_error_set(err, DGM_E_RUN, "the database has %zu heads: 'alembic --sql' cannot "
			      "start from several", f->nrevs);
		dgm_error_hint(err, "lint once the database is at one revision");
		return -1;
	}
	if (dgm_tree_open_git(&l->tag, plan->release.repository, plan->release.tag, &e) == 0)
		l->tag_open = true;
	l->pass[0].verb = "upgrade";
	l->pass[0].range = dgm_xasprintf("%s:%s", f->nrevs ? f->revs[0] : "base",
					 plan->alembic.target);
	if (!f->upgrade.count)
		return 0;
	if (pass_run(l, &l->pass[0], err))
		return -1;
	plan_downgrade(l, f);
	if (l->pass[1].range && pass_run(l, &l->pass[1], &e)) {
		dgm_warn("the downgrade was not linted: %s", e.msg);
		dgm_lint_result_free(&l->pass[1].res);
	}
	return 0;
}

void dgm_release_lint_free(dgm_release_lint *l)
{
	for (int k = 0; k < 2; k++) {
		free(l->pass[k].range);
		dgm_lint_result_free(&l->pass[k].res);
	}
	if (l->tag_open)
		dgm_tree_close(&l->tag);
	dgm_buf_free(&l->upgrade_sql);
	memset(l, 0, sizeof(*l));
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

void dgm_release_lint_where(dgm_buf *b, const dgm_release_lint *l, const dgm_lint_pass *p,
			    const dgm_lint_finding *f)
{
	const char *file = dgm_release_lint_file(l, f->revision);

	if (file && f->src_line)
		dgm_buf_printf(b, "%s:%d (", file, f->src_line);
	else if (file)
		dgm_buf_printf(b, "%s (", file);
	dgm_buf_printf(b, "%s %s, sql line %d", p->verb, f->revision ? f->revision : "-", f->line);
	if (file)
		dgm_buf_putc(b, ')');
}

static void print_finding(FILE *out, const dgm_release_lint *l, const dgm_lint_pass *p,
			  const dgm_lint_finding *f)
{
	const dgm_lint_rule *rule = f->rule;
	dgm_buf b = DGM_BUF_INIT;
	char size[64];

	dgm_release_lint_where(&b, l, p, f);
	fprintf(out, "%s: %s: %s%s%s\n    %s\n", dgm_buf_cstr(&b),
		dgm_lint_severity_name(f->severity), rule->name, f->detail ? ": " : "",
		f->detail ? f->detail : "", f->stmt);
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
		fprintf(out, "    %s\n", dgm_buf_cstr(&b));
	fprintf(out, "    why: %s\n    fix: %s\n", rule->why, rule->fix);
	dgm_buf_free(&b);
}

static void json_str_or_null(dgm_buf *b, const char *s)
{
	if (s)
		dgm_buf_json_str(b, s);
	else
		dgm_buf_puts(b, "null");
}

void dgm_release_lint_json_finding(dgm_buf *b, const dgm_release_lint *l,
				   const dgm_lint_pass *p, const dgm_lint_finding *f)
{
	const dgm_lint_rule *rule = f->rule;

	dgm_buf_puts(b, "{\"direction\":");
	dgm_buf_json_str(b, p->verb);
	dgm_buf_puts(b, ",\"revision\":");
	json_str_or_null(b, f->revision);
	dgm_buf_puts(b, ",\"file\":");
	json_str_or_null(b, dgm_release_lint_file(l, f->revision));
	if (f->src_line)
		dgm_buf_printf(b, ",\"file_line\":%d", f->src_line);
	else
		dgm_buf_puts(b, ",\"file_line\":null");
	dgm_buf_printf(b, ",\"line\":%d,\"statement\":", f->line);
	dgm_buf_json_str(b, f->stmt);
	dgm_buf_puts(b, ",\"rule\":");
	dgm_buf_json_str(b, rule->name);
	dgm_buf_puts(b, ",\"severity\":");
	dgm_buf_json_str(b, dgm_lint_severity_name(f->severity));
	dgm_buf_puts(b, ",\"lock\":");
	json_str_or_null(b, rule->lock);
	dgm_buf_printf(b, ",\"rewrites\":%s,\"scans\":%s,\"breaks\":%s,\"in_transaction\":%s",
		       rule->rewrites ? "true" : "false", rule->scans ? "true" : "false",
		       rule->breaks ? "true" : "false", f->in_transaction ? "true" : "false");
	dgm_buf_puts(b, ",\"table\":");
	json_str_or_null(b, f->table);
	dgm_buf_printf(b, ",\"table_bytes\":%lld,\"table_rows\":%lld,\"table_empty\":%s",
		       f->table_bytes, f->table_rows, f->table_empty ? "true" : "false");
	dgm_buf_puts(b, ",\"detail\":");
	json_str_or_null(b, f->detail);
	dgm_buf_puts(b, ",\"why\":");
	dgm_buf_json_str(b, rule->why);
	dgm_buf_puts(b, ",\"fix\":");
	dgm_buf_json_str(b, rule->fix);
	dgm_buf_puts(b, ",\"suppressed\":");
	json_str_or_null(b, f->suppressed);
	dgm_buf_putc(b, '}');
}

void dgm_release_lint_tally(const dgm_release_lint *l, size_t counts[3], size_t *nsup)
{
	counts[0] = counts[1] = counts[2] = 0;
	*nsup = 0;
	for (int k = 0; k < 2; k++)
		for (size_t i = 0; i < l->pass[k].res.count; i++) {
			const dgm_lint_finding *f = &l->pass[k].res.items[i];

			if (f->suppressed)
				(*nsup)++;
			else
				counts[f->severity]++;
		}
}

bool dgm_release_lint_fails(const dgm_release_lint *l)
{
	size_t counts[3], nsup;

	dgm_release_lint_tally(l, counts, &nsup);
	for (int s = l->plan->lint.fail_on; s <= DGM_LINT_ERROR; s++)
		if (counts[s])
			return true;
	return false;
}

void dgm_release_lint_json(dgm_buf *b, const dgm_release_lint *l)
{
	size_t counts[3], nsup;
	bool first = true;

	dgm_release_lint_tally(l, counts, &nsup);
	dgm_buf_puts(b, "\"fail_on\":");
	dgm_buf_json_str(b, dgm_lint_severity_name(l->plan->lint.fail_on));
	dgm_buf_puts(b, ",\"linted\":[");
	for (int k = 0; k < 2; k++) {
		if (!l->pass[k].done)
			continue;
		dgm_buf_printf(b, "%s{\"direction\":\"%s\",\"range\":", k ? "," : "", l->pass[k].verb);
		dgm_buf_json_str(b, l->pass[k].range);
		dgm_buf_printf(b, ",\"statements\":%zu}", l->pass[k].res.statements);
	}
	dgm_buf_puts(b, "],\"findings\":[");
	for (int k = 0; k < 2; k++)
		for (size_t i = 0; i < l->pass[k].res.count; i++) {
			if (!first)
				dgm_buf_putc(b, ',');
			first = false;
			dgm_release_lint_json_finding(b, l, &l->pass[k], &l->pass[k].res.items[i]);
		}
	dgm_buf_printf(b, "],\"errors\":%zu,\"warnings\":%zu,\"notices\":%zu,\"suppressed\":%zu,"
		       "\"fails\":%s", counts[2], counts[1], counts[0], nsup,
		       dgm_release_lint_fails(l) ? "true" : "false");
}

void dgm_release_lint_print(const dgm_release_lint *l, FILE *out)
{
	size_t counts[3], nsup;

	for (int k = 0; k < 2; k++)
		for (size_t i = 0; i < l->pass[k].res.count; i++)
			if (!l->pass[k].res.items[i].suppressed)
				print_finding(out, l, &l->pass[k], &l->pass[k].res.items[i]);
	for (int k = 0; k < 2; k++)
		for (size_t i = 0; i < l->pass[k].res.count; i++) {
			const dgm_lint_finding *f = &l->pass[k].res.items[i];
			dgm_buf b = DGM_BUF_INIT;

			if (!f->suppressed)
				continue;
			dgm_release_lint_where(&b, l, &l->pass[k], f);
			fprintf(out, "%s: suppressed: %s (%s)\n", dgm_buf_cstr(&b), f->rule->name,
				f->suppressed);
			dgm_buf_free(&b);
		}
	dgm_release_lint_tally(l, counts, &nsup);
	fprintf(out, "lint of '%s' (%s): %zu error%s, %zu warning%s, %zu notice%s, %zu "
		"suppressed; fail_on %s\n", l->plan->release.name, l->plan->release.tag, counts[2],
		counts[2] == 1 ? "" : "s", counts[1], counts[1] == 1 ? "" : "s", counts[0],
		counts[0] == 1 ? "" : "s", nsup, dgm_lint_severity_name(l->plan->lint.fail_on));
}
