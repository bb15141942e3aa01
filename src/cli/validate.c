/* validate.c - `dgmigrate validate PLAN`: check the plan and its
 * environment, change nothing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dgm/check.h"
#include "dgm/cli.h"
#include "dgm/git.h"
#include "dgm/log.h"
#include "dgm/pg.h"
#include "dgm/plan.h"
#include "dgm/tree.h"

static void check_repo(dgm_checklist *cl, const dgm_plan *plan)
{
	dgm_error e = DGM_ERROR_INIT;
	git_repository *repo = NULL;
	char path[256], hex[GIT_OID_HEXSZ + 1];
	bool dirty = false;
	git_oid oid;

	if (dgm_git_open(&repo, plan->release.repository, &e)) {
		dgm_check_fail(cl, "repository", &e);
		dgm_check_skip(cl, "tag", "no repository");
		return;
	}
	if (dgm_git_is_dirty(&dirty, path, sizeof(path), repo, &e))
		dgm_check_fail(cl, "repository", &e);
	else if (dirty && !plan->release.allow_dirty) {
		dgm_error_set(&e, DGM_E_PLAN, "the work tree '%s' has uncommitted changes ('%s')",
			      plan->release.repository, path);
		dgm_error_hint(&e, "commit or stash them, or set release.allow_dirty: true");
		dgm_check_fail(cl, "repository", &e);
	} else
		dgm_check_ok(cl, "repository", "'%s' is a git work tree%s",
			     plan->release.repository, dirty ? " (uncommitted changes allowed)" : ", clean");
	if (dgm_git_resolve_commit(&oid, repo, plan->release.tag, &e)) {
		e.code = DGM_E_PLAN;
		dgm_check_fail(cl, "tag", &e);
	} else {
		git_oid_tostr(hex, sizeof(hex), &oid);
		dgm_check_ok(cl, "tag", "'%s' is commit %.12s", plan->release.tag, hex);
	}
	dgm_git_close(repo);
}

/* The graph as it stood at the tag (read from git), and the target. */
static dgm_alembic_script *check_alembic(dgm_checklist *cl, const dgm_plan *plan)
{
	const char *rel = dgm_cli_ini_rel(plan->alembic.config, plan->release.repository);
	const dgm_alembic_rev **target = NULL;
	dgm_alembic_script *s = NULL;
	dgm_error e = DGM_ERROR_INIT;
	size_t n = 0;

	if (dgm_cli_load_graph(&s, plan->release.repository, rel, plan->release.tag, &e)) {
		if (e.code == DGM_E_USAGE)
			dgm_check_skip(cl, "alembic", "the tag cannot be read");
		else
			dgm_check_fail(cl, "alembic", &e);
		return NULL;
	}
	if (dgm_alembic_resolve(&target, &n, s, plan->alembic.target, &e)) {
		dgm_error_prefix(&e, "alembic.target '%s' at '%s'", plan->alembic.target,
				 plan->release.tag);
		e.code = DGM_E_PLAN;
		dgm_check_fail(cl, "alembic", &e);
	} else
		dgm_check_ok(cl, "alembic", "'%s' at '%s': %zu revisions, target '%s' is %s%s", rel,
			     plan->release.tag, s->count, plan->alembic.target,
			     n ? target[0]->id : "base", n > 1 ? " and more" : "");
	free(target);
	return s;
}

static void check_folder(dgm_checklist *cl, const char *name, const char *path, bool may_create)
{
	dgm_error e = DGM_ERROR_INIT;
	struct stat st;

	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode) && access(path, R_OK | X_OK) == 0) {
		dgm_check_ok(cl, name, "'%s' is a readable folder", path);
		return;
	}
	if (may_create && stat(path, &st) != 0) {
		dgm_check_ok(cl, name, "'%s' will be created", path);
		return;
	}
	if (stat(path, &st) != 0)
		dgm_error_errno(&e, DGM_E_PLAN, "cannot use '%s'", path);
	else
		dgm_error_set(&e, DGM_E_PLAN, "'%s' is not a readable folder", path);
	dgm_check_fail(cl, name, &e);
}

static void check_database(dgm_checklist *cl, const dgm_plan *plan,
			   const dgm_alembic_script *s)
{
	const char *rel = dgm_cli_ini_rel(plan->alembic.config, plan->release.repository);
	dgm_error e = DGM_ERROR_INIT;
	PGconn *conn = NULL;
	char **revs = NULL;
	size_t n = 0;
	char ver[32];

	if (dgm_pg_connect(&conn, plan->database.url, "dgmigrate validate", &e)) {
		dgm_check_fail(cl, "database", &e);
		return;
	}
	dgm_pg_server_version(conn, ver, sizeof(ver));
	if (dgm_pg_read_revisions(&revs, &n, conn, plan->alembic.version_table,
				  plan->alembic.version_schema, &e))
		dgm_check_fail(cl, "database", &e);
	else if (s && dgm_cli_check_db_known(s, revs, n, plan->release.repository, rel,
					     plan->release.tag, &e))
		dgm_check_fail(cl, "database", &e);
	else
		dgm_check_ok(cl, "database", "'%s' answers: PostgreSQL %s, at %s%s", PQdb(conn), ver,
			     n ? revs[0] : "base (no alembic_version rows)", n > 1 ? " and more" : "");
	dgm_pg_strings_free(revs);
	dgm_pg_close(conn);
}

int dgm_cmd_validate(const dgm_args *args, dgm_error *err)
{
	dgm_checklist cl = DGM_CHECKLIST_INIT;
	dgm_error e = DGM_ERROR_INIT;
	dgm_alembic_script *script = NULL;
	dgm_plan plan;
	int ret = -1;

	if (dgm_plan_load(&plan, args->pos[0], err))
		return -1;
	dgm_plan_register_secrets(&plan);
	dgm_info("plan '%s': release '%s', tag '%s'", args->pos[0], plan.release.name,
		 plan.release.tag);
	if (dgm_plan_check_env(&plan, &e))
		dgm_check_fail(&cl, "environment", &e);
	else if (dgm_plan_check_argv_secrets(&plan, &e))
		dgm_check_fail(&cl, "environment", &e);
	else
		dgm_check_ok(&cl, "environment", "%zu required variables set",
			     plan.required_env.count);
	check_repo(&cl, &plan);
	script = check_alembic(&cl, &plan);
	if (plan.model_store.path)
		check_folder(&cl, "model store", plan.model_store.path, false);
	check_folder(&cl, "snapshots", plan.snapshot.directory, true);
	if (dgm_args_flag(args, "offline"))
		dgm_check_skip(&cl, "database", "--offline");
	else
		check_database(&cl, &plan, script);
	if (dgm_check_finish(&cl, "validation", err))
		goto out;
	dgm_info("plan '%s' is valid: %d checks passed", args->pos[0], cl.total);
	dgm_event("valid", NULL);
	ret = 0;
out:
	dgm_alembic_free(script);
	dgm_plan_free(&plan);
	return ret;
}
