/* preflight.c - every check before anything changes, reported together. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dgm/buf.h"
#include "dgm/check.h"
#include "dgm/project.h"
#include "dgm/dump.h"
#include "dgm/fs.h"
#include "dgm/git.h"
#include "dgm/log.h"
#include "dgm/pg.h"
#include "dgm/pgbackrest.h"
#include "dgm/release.h"
#include "dgm/restore.h"
#include "dgm/run.h"
#include "internal.h"

typedef struct pf {
	dgm_checklist cl;
	const dgm_plan *plan;
	dgm_facts *f;
	const char *ini_rel;
	dgm_preflight_mode mode;
	bool db_ok;
} pf;

static void check_environment(pf *p)
{
	dgm_error e = DGM_ERROR_INIT;

	if (dgm_plan_check_env(p->plan, &e) || dgm_plan_check_argv_secrets(p->plan, &e))
		dgm_check_fail(&p->cl, "environment", &e);
	else
		dgm_check_ok(&p->cl, "environment", "%zu required variables set (values not shown)",
			     p->plan->required_env.count);
}

static void check_repo(pf *p)
{
	const dgm_plan *plan = p->plan;
	dgm_error e = DGM_ERROR_INIT;
	git_repository *repo = NULL;
	char path[256];
	bool dirty = false, detached;
	git_oid oid;

	if (dgm_git_open(&repo, plan->release.repository, &e)) {
		e.code = DGM_E_PLAN;
		dgm_check_fail(&p->cl, "repository", &e);
		dgm_check_skip(&p->cl, "tag", "no repository");
		return;
	}
	if (dgm_git_is_dirty(&dirty, path, sizeof(path), repo, &e) ||
	    dgm_git_head(p->f->head, &detached, repo, &e))
		dgm_check_fail(&p->cl, "repository", &e);
	else if (dirty && !plan->release.allow_dirty) {
		dgm_error_set(&e, DGM_E_PLAN, "the work tree '%s' has uncommitted changes ('%s')",
			      plan->release.repository, path);
		dgm_error_hint(&e, "commit or stash them, or set release.allow_dirty: true");
		dgm_check_fail(&p->cl, "repository", &e);
	} else
		dgm_check_ok(&p->cl, "repository", "'%s' at %.12s, %s", plan->release.repository,
			     p->f->head, dirty ? "uncommitted changes allowed" : "clean");
	if (dgm_git_resolve_commit(&oid, repo, plan->release.tag, &e)) {
		e.code = DGM_E_PLAN;
		dgm_check_fail(&p->cl, "tag", &e);
	} else {
		git_oid_tostr(p->f->tag_commit, sizeof(p->f->tag_commit), &oid);
		dgm_check_ok(&p->cl, "tag", "'%s' is commit %.12s", plan->release.tag,
			     p->f->tag_commit);
	}
	dgm_git_close(repo);
}

static void check_graph(pf *p)
{
	const dgm_plan *plan = p->plan;
	const dgm_alembic_rev **target = NULL;
	dgm_error e = DGM_ERROR_INIT;
	size_t n = 0;

	if (dgm_project_plan_graph(&p->f->graph, plan, plan->release.tag, &e)) {
		if (e.code == DGM_E_USAGE)
			dgm_check_skip(&p->cl, "alembic", "the tag cannot be read");
		else
			dgm_check_fail(&p->cl, "alembic", &e);
		return;
	}
	if (dgm_alembic_resolve(&target, &n, p->f->graph, plan->alembic.target, &e)) {
		dgm_error_prefix(&e, "alembic.target '%s' at '%s'", plan->alembic.target,
				 plan->release.tag);
		e.code = DGM_E_PLAN;
		dgm_check_fail(&p->cl, "alembic", &e);
	} else
		dgm_check_ok(&p->cl, "alembic", "'%s' at '%s': %zu revisions, target '%s' is %s%s%s",
			     p->ini_rel, plan->release.tag, p->f->graph->count, plan->alembic.target,
			     n ? target[0]->id : "base", n > 1 ? " and more" : "",
			     p->f->graph->read_by_alembic ? " (read by Alembic: alembic.read_graph)" :
			     "");
	free(target);
}

/* Alembic runs untracked revision files too: only the tag's may run. */
static void check_untracked(pf *p)
{
	dgm_error e = DGM_ERROR_INIT;

	if (!p->f->graph)
		return;
	if (dgm_release_check_untracked(p->plan->release.repository, p->f->graph, &e))
		dgm_check_fail(&p->cl, "versions", &e);
	else
		dgm_check_ok(&p->cl, "versions", "no untracked files in the Alembic version "
			     "folders");
}

static void plan_upgrade(pf *p)
{
	dgm_error e = DGM_ERROR_INIT;

	if (!p->db_ok || !p->f->graph)
		return;
	if (dgm_project_check_db_known(p->f->graph, p->f->revs, p->f->nrevs, p->plan,
				       p->plan->release.tag, &e)) {
		dgm_check_fail(&p->cl, "revision", &e);
		return;
	}
	if (dgm_alembic_upgrade(&p->f->upgrade, p->f->graph, (const char *const *)p->f->revs,
				p->f->nrevs, p->plan->alembic.target, &e)) {
		dgm_check_fail(&p->cl, "revision", &e);
		return;
	}
	p->f->upgrade_known = true;
	dgm_check_ok(&p->cl, "revision", "database at %s: the upgrade runs %zu revision%s",
		     p->f->nrevs ? p->f->revs[0] : "base", p->f->upgrade.count,
		     p->f->upgrade.count == 1 ? "" : "s");
}

static void check_database(pf *p)
{
	const dgm_plan *plan = p->plan;
	dgm_error e = DGM_ERROR_INIT;
	PGconn *conn = NULL;
	PGresult *res = NULL;

	/* an interrupted restore: cluster may be why the server is down (an
	 * interrupted swap why the database has no name), and nothing may run
	 * before resume has finished it */
	if (dgm_restore_guard(plan, &e) ||
	    dgm_pg_connect(&conn, plan->database.url, "dgmigrate preflight", &e)) {
		dgm_check_fail(&p->cl, "database", &e);
		return;
	}
	dgm_pg_server_version(conn, p->f->server_version, sizeof(p->f->server_version));
	if (dgm_pg_read_revisions(&p->f->revs, &p->f->nrevs, conn, plan->alembic.version_table,
				  plan->alembic.version_schema, &e) ||
	    dgm_pg_query(&res, conn, "SELECT pg_database_size(current_database()), (SELECT "
			 "coalesce(sum(pg_table_size(oid)), 0) FROM pg_class WHERE relkind IN "
			 "('r', 'm') AND relnamespace NOT IN ('pg_catalog'::regnamespace, "
			 "'information_schema'::regnamespace))", 0, NULL, &e)) {
		dgm_check_fail(&p->cl, "database", &e);
	} else {
		p->f->db_bytes = atoll(PQgetvalue(res, 0, 0));
		p->f->table_bytes = atoll(PQgetvalue(res, 0, 1));
		p->db_ok = true;
		dgm_check_ok(&p->cl, "database", "'%s' answers: PostgreSQL %s, %lld MiB", PQdb(conn),
			     p->f->server_version, p->f->db_bytes >> 20);
	}
	PQclear(res);
	dgm_pg_close(conn);
}

static const char *snapshot_way(const dgm_plan *plan, bool copy)
{
	if (plan->snapshot.engine == DGM_ENGINE_PGBACKREST)
		return "a pgBackRest restore point (the pgbackrest checks below)";
	return copy ? "server-side copy (it gates the release), then pg_dump of it and the store "
		      "archive beside the release" : "pg_dump";
}

/* Which way apply's snapshot and a later restore will go for this role,
 * said before anything changes; every way that is not the first choice
 * is a warning. An apply that no restore could undo is refused unless
 * the plan says snapshot.allow_no_restore. */
static void say_paths(pf *p, const dgm_db_caps *c)
{
	const dgm_plan *plan = p->plan;
	char copy_why[256] = "", why[640] = "";
	bool copy = plan->snapshot.keep_copies > 0 && dgm_db_caps_can_copy(c, copy_why,
									  sizeof(copy_why));
	dgm_restore_path path = dgm_db_caps_restore_path(c, true, why, sizeof(why));
	dgm_error e = DGM_ERROR_INIT;

	if (plan->snapshot.keep_copies > 0 && !copy && plan->snapshot.engine == DGM_ENGINE_DUMP)
		dgm_warn("no server-side copy (%s): apply's snapshot will be a pg_dump", copy_why);
	/* a cluster rewind restores no database by pg_restore */
	if (path == DGM_RESTORE_IN_PLACE && (plan->snapshot.engine == DGM_ENGINE_DUMP ||
					     plan->pgbackrest.restore != DGM_PGBR_RESTORE_CLUSTER))
		dgm_warn("%s: a restore will run in place (pg_restore --clean in one transaction)",
			 why);
	if (path == DGM_RESTORE_NONE && !plan->snapshot.allow_no_restore) {
		dgm_error_set(&e, DGM_E_RUN, "role '%s' could not restore database '%s' if the "
			      "release had to be undone: %s", c->role, c->database, why);
		dgm_error_hint(&e, "grant it CREATEDB (ALTER ROLE %s CREATEDB) or let it own every "
			       "object of the database; or set snapshot.allow_no_restore: true to "
			       "apply without a way back by restore", c->role);
		dgm_check_fail(&p->cl, "privileges", &e);
		return;
	}
	if (path == DGM_RESTORE_NONE)
		dgm_warn("snapshot.allow_no_restore: %s; the snapshot could not be restored by this "
			 "role", why);
	dgm_check_ok(&p->cl, "privileges", "role '%s' (%s, %s '%s'): snapshot by %s; %s%s",
		     c->role, c->super ? "superuser" : c->createdb ? "CREATEDB" : "no CREATEDB",
		     c->owns ? "owns" : "does not own", c->database, snapshot_way(plan, copy),
		     plan->snapshot.engine == DGM_ENGINE_PGBACKREST &&
		     plan->pgbackrest.restore == DGM_PGBR_RESTORE_CLUSTER ?
		     "restore by rewinding the whole cluster (the restore check below)" :
		     dgm_restore_path_text(path),
		     c->can_signal ? "" : "; a restore can end only this role's own sessions "
		     "(no pg_signal_backend)");
}

static void check_privileges(pf *p)
{
	dgm_error e = DGM_ERROR_INIT;
	PGconn *conn = NULL;
	dgm_db_caps caps;

	if (!p->db_ok) {
		dgm_check_skip(&p->cl, "privileges", "no database");
		return;
	}
	if (dgm_pg_connect(&conn, p->plan->database.url, "dgmigrate preflight", &e) ||
	    dgm_db_caps_read(&caps, conn, &e))
		dgm_check_fail(&p->cl, "privileges", &e);
	else
		say_paths(p, &caps);
	dgm_pg_close(conn);
}

/* pg_dump and pg_restore at least as new as the server; alembic there. */
static void check_tools(pf *p)
{
	const char *tools[] = { "pg_dump", "pg_restore" };
	const char *argv[] = { p->plan->alembic.command.items[0], "--version", NULL };
	dgm_buf out = DGM_BUF_INIT;
	dgm_error e = DGM_ERROR_INIT;
	char ver[32];

	for (size_t i = 0; i < 2; i++) {
		if (dgm_dump_tool_version(ver, sizeof(ver), tools[i], &e))
			dgm_check_fail(&p->cl, tools[i], &e);
		else if (p->db_ok && atoi(ver) < atoi(p->f->server_version)) {
			dgm_error_set(&e, DGM_E_RUN, "%s %s is older than the server (PostgreSQL %s)",
				      tools[i], ver, p->f->server_version);
			dgm_error_hint(&e, "install postgresql-client-%d", atoi(p->f->server_version));
			dgm_check_fail(&p->cl, tools[i], &e);
		} else
			dgm_check_ok(&p->cl, tools[i], "%s %s", tools[i], ver);
	}
	{
		dgm_child c = { .argv = argv, .out = &out, .timeout_ms = 30000 };

		if (dgm_run(&c, &e)) {
			dgm_error_hint(&e, "install alembic (Debian: apt-get install alembic) or set "
				       "alembic.command");
			dgm_check_fail(&p->cl, "alembic cmd", &e);
		} else {
			snprintf(p->f->alembic_version, sizeof(p->f->alembic_version), "%.*s",
				 (int)strcspn(dgm_buf_cstr(&out), "\n"), dgm_buf_cstr(&out));
			dgm_check_ok(&p->cl, "alembic cmd", "%s", p->f->alembic_version);
		}
	}
	dgm_buf_free(&out);
}

static void check_store(pf *p)
{
	const char *path = p->plan->model_store.path;
	dgm_error e = DGM_ERROR_INIT;
	struct stat st;

	if (!path)
		return;
	if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode) || access(path, R_OK | X_OK) != 0) {
		dgm_error_errno(&e, DGM_E_PLAN, "the model store (model_store.path) is not a "
				"readable folder");
		dgm_check_fail(&p->cl, "model store", &e);
		return;
	}
	p->f->store_bytes = dgm_fs_tree_size(path);
	dgm_check_ok(&p->cl, "model store", "readable, %lld MiB", p->f->store_bytes >> 20);
}

/* Room for the snapshot in its folder: the dump holds table data, not
 * indexes, compressed (estimated at half), and the archive about the
 * store's size (model weights hardly compress), plus snapshot.min_free
 * to spare. A server-side copy goes to the database server instead, and
 * is estimated there, separately. */
static void check_disk(pf *p)
{
	bool pgbr = p->plan->snapshot.engine == DGM_ENGINE_PGBACKREST;
	long long dump = pgbr ? 0 : p->f->table_bytes / 2, need = dump + p->f->store_bytes;
	long long have = dgm_fs_free_bytes(p->plan->snapshot.directory);
	long long spare = p->plan->snapshot.min_free_bytes;
	dgm_error e = DGM_ERROR_INIT;

	if (have >= 0 && have < need + spare) {
		dgm_error_set(&e, DGM_E_RUN, "%lld MiB free in '%s', the snapshot needs about %lld "
			      "MiB there (dump %lld, model store %lld) and snapshot.min_free %lld MiB "
			      "more", have >> 20, p->plan->snapshot.directory, need >> 20, dump >> 20,
			      p->f->store_bytes >> 20, spare >> 20);
		dgm_error_hint(&e, "free space or prune snapshots: dgmigrate backups prune PLAN "
			       "--keep N");
		dgm_check_fail(&p->cl, "disk", &e);
	} else
		dgm_check_ok(&p->cl, "disk", "%lld MiB free in '%s', the snapshot needs about %lld "
			     "MiB there (dump %lld, model store %lld) and snapshot.min_free %lld MiB "
			     "more", have >> 20, p->plan->snapshot.directory, need >> 20, dump >> 20,
			     p->f->store_bytes >> 20, spare >> 20);
	if (p->plan->snapshot.keep_copies > 0 && !pgbr)
		dgm_check_ok(&p->cl, "server disk", "the server-side copy takes about %lld MiB on "
			     "the database server (the database's size; libpq cannot see the "
			     "server's free space: keep_copies: 0 takes a dump only)",
			     p->f->db_bytes >> 20);
}

/* snapshot.engine: pgbackrest - its own checks (src/pgbr/preflight.c). */
static void check_pgbackrest(pf *p)
{
	dgm_error e = DGM_ERROR_INIT;
	PGconn *conn = NULL;

	if (p->db_ok && dgm_pg_connect(&conn, p->plan->database.url, "dgmigrate preflight", &e))
		dgm_check_fail(&p->cl, "archiving", &e);
	dgm_pgbr_preflight(&p->cl, p->plan, conn);
	dgm_pg_close(conn);
}

/* The first finding that reaches lint.fail_on, and its pass. */
static const dgm_lint_finding *first_failing(const dgm_release_lint *l, const dgm_lint_pass **pp)
{
	for (int k = 0; k < 2; k++)
		for (size_t i = 0; i < l->pass[k].res.count; i++) {
			const dgm_lint_finding *f = &l->pass[k].res.items[i];

			if (!f->suppressed && (int)f->severity >= l->plan->lint.fail_on) {
				*pp = &l->pass[k];
				return f;
			}
		}
	return NULL;
}

/* Refuse: the first finding named with its revision, file, rule and
 * fix, and how to suppress it. */
static void lint_refuse(pf *p, const dgm_release_lint *l)
{
	const dgm_lint_pass *lp = NULL;
	const dgm_lint_finding *f = first_failing(l, &lp);
	const char *file = dgm_release_lint_file(l, f->revision);
	int on = l->plan->lint.fail_on;
	size_t counts[3], nsup, n = 0;
	dgm_error e = DGM_ERROR_INIT;
	dgm_buf m = DGM_BUF_INIT;

	dgm_release_lint_tally(l, counts, &nsup);
	for (int s = on; s <= DGM_LINT_ERROR; s++)
		n += counts[s];
	dgm_buf_puts(&m, "lint: ");
	dgm_release_lint_where(&m, l, lp, f);
	dgm_buf_printf(&m, ": %s %s", dgm_lint_severity_name(f->severity), f->rule->name);
	if (f->detail)
		dgm_buf_printf(&m, " (%s)", f->detail);
	if (f->table)
		dgm_buf_printf(&m, " on '%s'", f->table);
	dgm_buf_printf(&m, " reaches lint.fail_on '%s'", dgm_lint_severity_name(on));
	if (n > 1)
		dgm_buf_printf(&m, " (and %zu more finding%s)", n - 1, n == 2 ? "" : "s");
	dgm_buf_printf(&m, "; fix: %s", f->rule->fix);
	dgm_error_set(&e, DGM_E_RUN, "%s", dgm_buf_cstr(&m));
	dgm_error_hint(&e, "write the statement as the fix says; or, where it is safe, suppress it "
		       "with '# dgmigrate: allow %s -- <reason>' in %s, or lint.ignore: [%s] in the "
		       "plan; 'dgmigrate lint PLAN' lists every finding", f->rule->name,
		       file ? file : "the revision file", f->rule->name);
	p->f->lint_refused = true;
	dgm_check_fail(&p->cl, "lint", &e);
	dgm_buf_free(&m);
}

/* What lint.ignore and "# dgmigrate: allow" kept out of the count,
 * listed; then the check's line. */
static void lint_pass_ok(pf *p, const dgm_release_lint *l)
{
	size_t counts[3], nsup;

	for (int k = 0; k < 2; k++)
		for (size_t i = 0; i < l->pass[k].res.count; i++) {
			const dgm_lint_finding *f = &l->pass[k].res.items[i];
			dgm_buf where = DGM_BUF_INIT;

			if (!f->suppressed)
				continue;
			dgm_release_lint_where(&where, l, &l->pass[k], f);
			dgm_info("  lint: %s: suppressed: %s (%s)", dgm_buf_cstr(&where),
				 f->rule->name, f->suppressed);
			dgm_buf_free(&where);
		}
	dgm_release_lint_tally(l, counts, &nsup);
	dgm_check_ok(&p->cl, "lint", "%zu error%s, %zu warning%s, %zu notice%s, %zu suppressed: "
		     "none reaches lint.fail_on '%s'", counts[2], counts[2] == 1 ? "" : "s",
		     counts[1], counts[1] == 1 ? "" : "s", counts[0], counts[0] == 1 ? "" : "s",
		     nsup, dgm_lint_severity_name(p->plan->lint.fail_on));
}

/* The release's SQL linted before anything changes: a finding that
 * reaches lint.fail_on refuses the run. SQL alembic cannot render
 * offline (a migration that reads the database) is not linted: a
 * warning, not a refusal. */
static void check_lint(pf *p)
{
	dgm_release_lint *l;
	dgm_error e = DGM_ERROR_INIT;

	if (!p->db_ok || !p->f->upgrade_known || !p->f->upgrade.count)
		return;
	if (p->plan->lint.fail_on == DGM_LINT_NEVER && p->mode != DGM_PREFLIGHT_DRY_RUN) {
		dgm_check_skip(&p->cl, "lint", "lint.fail_on is 'never'");
		return;
	}
	l = dgm_xcalloc(1, sizeof(*l));
	if (dgm_release_lint_run(l, p->plan, p->f, &e)) {
		dgm_warn("the release's SQL was not linted: %s", e.msg);
		dgm_check_skip(&p->cl, "lint", "the release's SQL could not be rendered or parsed");
		dgm_release_lint_free(l);
		free(l);
		return;
	}
	p->f->lint = l;
	if (dgm_release_lint_fails(l))
		lint_refuse(p, l);
	else
		lint_pass_ok(p, l);
}

int dgm_preflight(dgm_facts *facts, const dgm_plan *plan, dgm_preflight_mode mode,
		  bool offline, dgm_error *err)
{
	pf p = { .cl = DGM_CHECKLIST_INIT, .plan = plan, .f = facts, .mode = mode };

	memset(facts, 0, sizeof(*facts));
	p.ini_rel = dgm_project_ini_rel(plan->alembic.config, plan->release.repository);
	check_environment(&p);
	check_repo(&p);
	check_graph(&p);
	check_untracked(&p);
	check_store(&p);
	dgm_snapshot_key_advise(plan);
	if (offline)
		dgm_check_skip(&p.cl, "database", "--offline");
	else {
		check_database(&p);
		plan_upgrade(&p);
	}
	if (mode != DGM_PREFLIGHT_VALIDATE) {
		if (!offline)
			check_privileges(&p);
		check_tools(&p);
		check_disk(&p);
		check_lint(&p);
		if (plan->snapshot.engine == DGM_ENGINE_PGBACKREST && !offline)
			check_pgbackrest(&p);
	}
	facts->failed_checks = p.cl.failed;
	return dgm_check_finish(&p.cl, "preflight", err);
}

void dgm_facts_free(dgm_facts *f)
{
	dgm_pg_strings_free(f->revs);
	dgm_alembic_steps_free(&f->upgrade);
	dgm_alembic_free(f->graph);
	if (f->lint) {
		dgm_release_lint_free(f->lint);
		free(f->lint);
	}
	memset(f, 0, sizeof(*f));
}
