/* project.c - load an application's Alembic graph for a command: from
 * the work tree, or as it stood at a tag (git, no checkout). */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "dgm/buf.h"
#include "dgm/git.h"
#include "dgm/log.h"
#include "dgm/project.h"
#include "project_int.h"

/* ini's folder inside the tree ("" for the root). */
static char *ini_folder(const char *ini_rel)
{
	const char *slash = strrchr(ini_rel, '/');

	return slash ? dgm_xstrndup(ini_rel, (size_t)(slash - ini_rel)) : dgm_xstrdup("");
}

/* ---- finding alembic.ini (issue 12.2) ---------------------------------- */

typedef struct ini_search {
	dgm_tree *tree;
	dgm_buf found;        /* "backend/alembic.ini, ..." */
	char dir[PATH_MAX];   /* the folder being listed, "" for the root */
	int depth, seen;
} ini_search;

static int ini_entry(const char *name, bool is_dir, void *payload)
{
	ini_search *q = payload;
	dgm_error ignore = DGM_ERROR_INIT;
	size_t len = strlen(q->dir);

	if (++q->seen > 20000 || name[0] == '.')
		return 0;
	if (!is_dir) {
		if (!strcmp(name, "alembic.ini"))
			dgm_buf_printf(&q->found, "%s%s%s%s", q->found.len ? ", " : "", q->dir,
				       len ? "/" : "", name);
		return 0;
	}
	if (q->depth >= 4 || !strcmp(name, "node_modules") || len + strlen(name) + 2 > PATH_MAX)
		return 0;
	snprintf(q->dir + len, sizeof(q->dir) - len, "%s%s", len ? "/" : "", name);
	q->depth++;
	q->tree->list(q->tree->ctx, q->dir, ini_entry, q, &ignore);
	q->depth--;
	q->dir[len] = '\0';
	return 0;
}

/* The alembic.ini files of the repository's git tree (at `at`, else
 * HEAD; the work tree when it is no git repository), as a hint. */
static void suggest_inis(dgm_error *err, const char *root, const char *at)
{
	dgm_error ignore = DGM_ERROR_INIT;
	dgm_tree tree;
	ini_search q;

	memset(&q, 0, sizeof(q));
	if (dgm_tree_open_git(&tree, root, at ? at : "HEAD", &ignore) &&
	    dgm_tree_open_fs(&tree, root, &ignore))
		return;
	q.tree = &tree;
	tree.list(tree.ctx, "", ini_entry, &q, &ignore);
	if (q.found.len)
		dgm_error_hint(err, "alembic.ini in the repository: %s; set alembic.config in the "
			       "plan (relative to the repository), or --config, or ALEMBIC_CONFIG",
			       q.found.ptr);
	else
		dgm_error_hint(err, "the repository holds no alembic.ini: set alembic.config in the "
			       "plan, or --config, or ALEMBIC_CONFIG");
	dgm_buf_free(&q.found);
	dgm_tree_close(&tree);
}

int dgm_project_tree_relative(char **out, const char *root, const char *ini, dgm_error *err)
{
	char *dir, real[PATH_MAX];
	const char *slash = strrchr(ini, '/');
	size_t n = strlen(root);

	if (ini[0] != '/') {
		*out = dgm_xstrdup(ini);
		return 0;
	}
	dir = dgm_xstrndup(ini, (size_t)(slash - ini));
	if (!realpath(*dir ? dir : "/", real)) {
		dgm_error_errno(err, DGM_E_USAGE, "cannot use alembic config '%s'", ini);
		free(dir);
		return -1;
	}
	free(dir);
	if (!strcmp(real, root))
		*out = dgm_xstrdup(slash + 1);
	else if (!strncmp(real, root, n) && real[n] == '/')
		*out = dgm_xasprintf("%s%s", real + n + 1, slash);
	else {
		dgm_error_set(err, DGM_E_USAGE, "alembic config '%s' is outside the repository '%s'",
			      ini, root);
		dgm_error_hint(err, "give a path inside the repository, or relative to it");
		return -1;
	}
	return 0;
}

/* The graph read as text; hints name `ask` as the way to Alembic. */
static int load_static(dgm_alembic_script **out, const char *repo, const char *ini_given,
		       const char *at, const char *ask, dgm_error *err)
{
	char root[PATH_MAX];
	dgm_alembic_load_opts o = { 0 };
	dgm_tree tree;
	char *cwd, *ini_rel = NULL;
	int ret;

	*out = NULL;
	if (!realpath(repo, root))
		return dgm_error_errno(err, DGM_E_USAGE, "cannot use repository '%s'", repo);
	if (dgm_project_tree_relative(&ini_rel, root, ini_given, err))
		return -1;
	if (at ? dgm_tree_open_git(&tree, root, at, err) : dgm_tree_open_fs(&tree, root, err)) {
		free(ini_rel);
		return -1;
	}
	cwd = ini_folder(ini_rel);
	o.cwd = cwd;
	o.root_on_disk = root;
	/* A git tree lists names sorted; the work tree in readdir() order,
	 * which is what Alembic 1.8 itself sees there. */
	o.sort_files = at != NULL;
	o.ask_alembic = ask;
	ret = dgm_alembic_load(out, &tree, ini_rel, &o, err);
	if (ret && tree.kind(tree.ctx, ini_rel) != 1)
		suggest_inis(err, root, at);
	if (ret)
		dgm_error_prefix(err, "cannot read the Alembic revisions of '%s'%s%s", root,
				 at ? " at " : "", at ? at : "");
	dgm_tree_close(&tree);
	free(cwd);
	free(ini_rel);
	return ret;
}

/* The ini path relative to the repository, from an absolute config path. */
const char *dgm_project_ini_rel(const char *config, const char *repo)
{
	size_t n = strlen(repo);

	while (n > 1 && repo[n - 1] == '/')
		n--;
	if (!strncmp(config, repo, n) && config[n] == '/')
		return config + n + 1;
	return config;
}

int dgm_project_read_graph(dgm_alembic_script **out, const dgm_project_reader *how,
			   const char *repo, const char *ini, const char *at, dgm_error *err)
{
	if (how && how->alembic)
		return dgm_project_load_graph_alembic(out, repo, ini, at, how, err);
	return load_static(out, repo, ini, at, how ? how->ask : NULL, err);
}

int dgm_project_load_graph(dgm_alembic_script **out, const char *repo, const char *ini,
			   const char *at, dgm_error *err)
{
	return load_static(out, repo, ini, at, NULL, err);
}

/* alembic.env as alembic gets it, ${target.*} from the plan's URL (what
 * it says; libpq's defaults are not looked up for a graph). */
static char **plan_env(const dgm_plan *plan)
{
	const char *url = plan->database.url ? plan->database.url : "";
	PQconninfoOption *opts = PQconninfoParse(url, NULL);
	dgm_plan_target t = { .url = url };
	char **env = dgm_xcalloc(plan->alembic.env.count + 1, sizeof(*env));

	for (PQconninfoOption *o = opts; o && o->keyword; o++) {
		const char **dst = !strcmp(o->keyword, "host") ? &t.host :
				   !strcmp(o->keyword, "port") ? &t.port :
				   !strcmp(o->keyword, "user") ? &t.user :
				   !strcmp(o->keyword, "password") ? &t.password :
				   !strcmp(o->keyword, "dbname") ? &t.dbname : NULL;

		if (dst && o->val && *o->val)
			*dst = o->val;
	}
	for (size_t i = 0; i < plan->alembic.env.count; i++)
		env[i] = dgm_plan_target_expand(plan->alembic.env.items[i], &t);
	PQconninfoFree(opts);
	return env;
}

void dgm_project_plan_reader(dgm_project_reader *how, const dgm_plan *plan)
{
	memset(how, 0, sizeof(*how));
	how->alembic = plan->alembic.read_graph == DGM_READ_GRAPH_ALEMBIC;
	how->command = plan->alembic.command.items;
	how->ncommand = plan->alembic.command.count;
	how->env = how->alembic ? plan_env(plan) : NULL;
	how->ask = "'alembic.read_graph: alembic' in the plan";
}

void dgm_project_reader_free(dgm_project_reader *how)
{
	char **env = (char **)how->env;

	for (size_t i = 0; env && env[i]; i++) {
		memset(env[i], 0, strlen(env[i]));  /* values may be secrets */
		free(env[i]);
	}
	free(env);
	how->env = NULL;
}

int dgm_project_plan_graph(dgm_alembic_script **out, const dgm_plan *plan, const char *at,
			   dgm_error *err)
{
	dgm_project_reader how;
	int ret;

	dgm_project_plan_reader(&how, plan);
	ret = dgm_project_read_graph(out, &how, plan->release.repository,
				     dgm_project_ini_rel(plan->alembic.config,
							 plan->release.repository), at, err);
	dgm_project_reader_free(&how);
	return ret;
}

/* Alembic reads a tag's graph from an export, running Python: a hint
 * over every tag of a large project must not take minutes. */
#define MAX_ALEMBIC_TAG_READS 16

/* The tag's graph for a hint: as text first; by Alembic (when the plan
 * says so) only where the text cannot answer, at most *budget times. */
static dgm_alembic_script *tag_graph(const dgm_plan *plan, const char *tag, int *budget)
{
	dgm_alembic_script *s = NULL;
	dgm_error e = DGM_ERROR_INIT;

	if (dgm_project_load_graph(&s, plan->release.repository,
				   dgm_project_ini_rel(plan->alembic.config, plan->release.repository),
				   tag, &e) == 0)
		return s;
	if (plan->alembic.read_graph != DGM_READ_GRAPH_ALEMBIC || (*budget)-- <= 0)
		return NULL;
	dgm_error_clear(&e);
	return dgm_project_plan_graph(&s, plan, tag, &e) == 0 ? s : NULL;
}

int dgm_project_tags_knowing(dgm_buf *out, const dgm_plan *plan, const char *rev)
{
	git_repository *repo = NULL;
	git_strarray tags = { NULL, 0 };
	dgm_error e = DGM_ERROR_INIT;
	int budget = MAX_ALEMBIC_TAG_READS;

	if (dgm_git_open(&repo, plan->release.repository, &e) || dgm_git_tag_names(&tags, repo, &e)) {
		dgm_git_close(repo);
		return -1;
	}
	for (size_t i = 0; i < tags.count; i++) {
		dgm_alembic_script *s = tag_graph(plan, tags.strings[i], &budget);

		if (s && dgm_alembic_find(s, rev))
			dgm_buf_printf(out, "%s%s", out->len ? ", " : "", tags.strings[i]);
		dgm_alembic_free(s);
	}
	if (budget < 0)
		dgm_buf_printf(out, "%s(tags beyond the first %d that only Alembic can read were "
			       "not searched)", out->len ? " " : "", MAX_ALEMBIC_TAG_READS);
	git_strarray_dispose(&tags);
	dgm_git_close(repo);
	return 0;
}

int dgm_project_check_db_known(const dgm_alembic_script *s, char *const *revs, size_t n,
			       const dgm_plan *plan, const char *code_name, dgm_error *err)
{
	for (size_t i = 0; i < n; i++) {
		dgm_buf tags = DGM_BUF_INIT;

		if (dgm_alembic_find(s, revs[i]))
			continue;
		dgm_project_tags_knowing(&tags, plan, revs[i]);
		dgm_error_set(err, DGM_E_RUN, "the database is at revision '%s', which %s does not "
			      "know: the database is ahead of the code", revs[i], code_name);
		if (tags.len)
			dgm_error_hint(err, "tags that know '%s': %s", revs[i], tags.ptr);
		else
			dgm_error_hint(err, "no tag of '%s' knows '%s': was it migrated from "
				       "another branch?", plan->release.repository, revs[i]);
		dgm_buf_free(&tags);
		return -1;
	}
	return 0;
}
