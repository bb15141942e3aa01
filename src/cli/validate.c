/* validate.c - `dgmigrate validate PLAN`: check the plan and its
 * environment, change nothing. */
#include <stdio.h>
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

/* path relative to root, or NULL when path is not inside root. */
static const char *inside(const char *path, const char *root)
{
	size_t n = strlen(root);

	while (n > 1 && root[n - 1] == '/')
		n--;
	if (strncmp(path, root, n) || (path[n] != '/' && path[n] != '\0'))
		return NULL;
	return path[n] == '/' ? path + n + 1 : path + n;
}

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

static void check_alembic_config(dgm_checklist *cl, const dgm_plan *plan)
{
	const char *rel = inside(plan->alembic.config, plan->release.repository);
	dgm_error e = DGM_ERROR_INIT;
	dgm_tree tree;

	if (!rel) {
		if (access(plan->alembic.config, R_OK) == 0)
			dgm_check_ok(cl, "alembic", "'%s' is readable", plan->alembic.config);
		else {
			dgm_error_errno(&e, DGM_E_PLAN, "cannot read '%s'", plan->alembic.config);
			dgm_check_fail(cl, "alembic", &e);
		}
		return;
	}
	if (dgm_tree_open_git(&tree, plan->release.repository, plan->release.tag, &e)) {
		dgm_check_skip(cl, "alembic", "the tag cannot be read");
		return;
	}
	if (tree.kind(tree.ctx, rel) == 1)
		dgm_check_ok(cl, "alembic", "'%s' exists at '%s'", rel, plan->release.tag);
	else {
		dgm_error_set(&e, DGM_E_PLAN, "no file '%s' at tag '%s' of '%s'", rel,
			      plan->release.tag, plan->release.repository);
		dgm_error_hint(&e, "set alembic.config to alembic.ini's path inside the repository");
		dgm_check_fail(cl, "alembic", &e);
	}
	dgm_tree_close(&tree);
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

static void check_database(dgm_checklist *cl, const dgm_plan *plan)
{
	dgm_error e = DGM_ERROR_INIT;
	PGconn *conn = NULL;
	char ver[32];

	if (dgm_pg_connect(&conn, plan->database.url, "dgmigrate validate", &e)) {
		dgm_check_fail(cl, "database", &e);
		return;
	}
	dgm_pg_server_version(conn, ver, sizeof(ver));
	dgm_check_ok(cl, "database", "'%s' answers: PostgreSQL %s", PQdb(conn), ver);
	dgm_pg_close(conn);
}

int dgm_cmd_validate(const dgm_args *args, dgm_error *err)
{
	dgm_checklist cl = DGM_CHECKLIST_INIT;
	dgm_error e = DGM_ERROR_INIT;
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
	check_alembic_config(&cl, &plan);
	if (plan.model_store.path)
		check_folder(&cl, "model store", plan.model_store.path, false);
	check_folder(&cl, "snapshots", plan.snapshot.directory, true);
	if (dgm_args_flag(args, "offline"))
		dgm_check_skip(&cl, "database", "--offline");
	else
		check_database(&cl, &plan);
	if (dgm_check_finish(&cl, "validation", err))
		goto out;
	dgm_info("plan '%s' is valid: %d checks passed", args->pos[0], cl.total);
	dgm_event("valid", NULL);
	ret = 0;
out:
	dgm_plan_free(&plan);
	return ret;
}
