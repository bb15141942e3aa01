/* lint.c - `dgmigrate lint PLAN [--json]`: the release's upgrade (and,
 * when it has one head, downgrade) SQL as alembic renders it from the
 * tag's migrations, checked by the lint rules, each finding graded by the
 * size of its table in the target database (src/release/lint.c). Nothing
 * changes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dgm/buf.h"
#include "dgm/cli.h"
#include "dgm/lint.h"
#include "dgm/log.h"
#include "dgm/plan.h"
#include "dgm/release.h"

typedef struct lint_run {
	dgm_facts facts;
	dgm_release_lint lint;
} lint_run;

static void print_json(const lint_run *r)
{
	dgm_buf b = DGM_BUF_INIT;

	dgm_buf_puts(&b, "{\"release\":");
	dgm_buf_json_str(&b, r->lint.plan->release.name);
	dgm_buf_puts(&b, ",\"tag\":");
	dgm_buf_json_str(&b, r->lint.plan->release.tag);
	dgm_buf_putc(&b, ',');
	dgm_release_lint_json(&b, &r->lint);
	dgm_buf_puts(&b, "}\n");
	fputs(dgm_buf_cstr(&b), stdout);
	dgm_buf_free(&b);
}

static int lint_release(lint_run *r, const dgm_plan *plan, dgm_error *err)
{
	if (dgm_preflight(&r->facts, plan, DGM_PREFLIGHT_VALIDATE, false, err))
		return -1;
	if (dgm_release_lint_run(&r->lint, plan, &r->facts, err))
		return -1;
	if (!r->facts.upgrade.count)
		dgm_info("lint: the database is at the tag's heads: nothing to upgrade");
	return 0;
}

/* --sql FILE: SQL already rendered; no plan, no database, no sizes. */
static int lint_file(lint_run *r, dgm_plan *plan, const char *path, dgm_error *err)
{
	dgm_lint_pass *p = &r->lint.pass[0];
	dgm_buf sql = DGM_BUF_INIT;
	int ret = -1;

	memset(plan, 0, sizeof(*plan));
	plan->release.name = dgm_xstrdup(path);
	plan->release.tag = dgm_xstrdup("-");
	plan->lint.fail_on = DGM_LINT_ERROR;
	r->lint.plan = plan;
	if (dgm_buf_read_file(&sql, path, err))
		goto out;
	p->verb = strstr(dgm_buf_cstr(&sql), "\n-- Running downgrade ") ? "downgrade" : "upgrade";
	p->range = dgm_xstrdup(path);
	if (dgm_lint_sql(&p->res, dgm_buf_cstr(&sql), NULL, err)) {
		dgm_error_prefix(err, "'%s'", path);
		goto out;
	}
	p->done = true;
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
	return lint_release(r, plan, err);
}

int dgm_cmd_lint(const dgm_args *args, dgm_error *err)
{
	lint_run r;
	dgm_plan plan;
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
		dgm_release_lint_print(&r.lint, stdout);
	ret = 0;
	if (dgm_release_lint_fails(&r.lint)) {
		dgm_error_set(err, DGM_E_RUN, "lint: findings reach lint.fail_on '%s'",
			      dgm_lint_severity_name(plan.lint.fail_on));
		dgm_error_hint(err, "write the statements as each finding's fix says, or suppress one "
			       "with '# dgmigrate: allow RULE -- reason' in its revision file or "
			       "lint.ignore in the plan");
		ret = -1;
	}
out:
	dgm_release_lint_free(&r.lint);
	dgm_facts_free(&r.facts);
	dgm_plan_free(&plan);
	return ret;
}
