/* read_alembic.c - the graph as Alembic itself reads it, for projects
 * whose revision files compute what dgmigrate cannot read as text.
 *
 * Only on request (--read-with-alembic, alembic.read_graph: alembic): it
 * runs the alembic command's Python on a short script that loads
 * ScriptDirectory.from_config and prints every revision as JSON, in the
 * work tree or in a temporary export of the tag. That imports the project's code; the graph is then
 * marked "read by Alembic" wherever it is shown. */
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dgm/buf.h"
#include "dgm/fs.h"
#include "dgm/git.h"
#include "dgm/log.h"
#include "dgm/project.h"
#include "dgm/run.h"
#include "project_int.h"

/* Revisions in Alembic's load order (ScriptDirectory._load_revisions),
 * paths relative to the tree's root (argv[2]). It runs in the ini's
 * folder, as alembic does, and imports from that folder only when
 * alembic would (argv[3] "cwd": `python -m alembic` does, the alembic
 * script does not, unless prepend_sys_path says so). */
static const char script[] =
	"import json, os, sys\n"
	"if sys.path and sys.path[0] == '' and sys.argv[3] != 'cwd':\n"
	"    del sys.path[0]\n"
	"from alembic.config import Config\n"
	"from alembic.script import ScriptDirectory\n"
	"def tup(v):\n"
	"    return list(v) if isinstance(v, (tuple, list)) else ([v] if v else [])\n"
	"s = ScriptDirectory.from_config(Config(sys.argv[1]))\n"
	"out = []\n"
	"for sc in s._load_revisions():\n"
	"    out.append({'revision': sc.revision, 'down_revision': tup(sc.down_revision),\n"
	"                'branch_labels': tup(sc._orig_branch_labels),\n"
	"                'depends_on': tup(sc.dependencies),\n"
	"                'path': os.path.relpath(sc.path, sys.argv[2]), 'doc': sc.doc or ''})\n"
	"json.dump(out, sys.stdout)\n";

/* The interpreter of the program at PATH (its "#!" line), or NULL. */
static char *shebang_python(const char *path)
{
	char line[PATH_MAX + 16], *py = NULL;
	FILE *f = path ? fopen(path, "r") : NULL;

	if (!f)
		return NULL;
	if (fgets(line, sizeof(line), f) && !strncmp(line, "#!", 2)) {
		char *save = NULL, *tok = strtok_r(line + 2, " \t\r\n", &save);

		if (tok && !strcmp(tok, "/usr/bin/env"))
			tok = strtok_r(NULL, " \t\r\n", &save);
		if (tok)
			py = dgm_xstrdup(tok);
	}
	fclose(f);
	return py;
}

static void command_text(dgm_buf *b, char *const *cmd, size_t n)
{
	dgm_buf_putc(b, '[');
	for (size_t i = 0; i < n; i++)
		dgm_buf_printf(b, "%s%s", i ? ", " : "", cmd[i]);
	dgm_buf_putc(b, ']');
}

/* The Python of the alembic command: [PYTHON, -m, alembic, ...] names
 * it; a lone program is the alembic script (found in PATH, or relative
 * to DIR, where alembic runs) whose "#!" line names it. */
static int command_python(char **py, char *const *cmd, size_t n, const char *dir,
			  dgm_error *err)
{
	dgm_buf b = DGM_BUF_INIT;
	char *path;

	*py = NULL;
	if (n >= 3 && !strcmp(cmd[1], "-m") && !strcmp(cmd[2], "alembic")) {
		*py = dgm_xstrdup(cmd[0]);
		return 0;
	}
	if (n <= 1) {
		const char *prog = n ? cmd[0] : "alembic";

		path = strchr(prog, '/') && prog[0] != '/' ?
		       dgm_xasprintf("%s/%s", dir, prog) : dgm_which(prog);
		*py = shebang_python(path);
		free(path);
		if (*py)
			return 0;
		return dgm_error_set(err, DGM_E_USAGE, "cannot find the Python of '%s' (its \"#!\" "
				     "line) to let Alembic read the graph", prog);
	}
	command_text(&b, cmd, n);
	dgm_error_set(err, DGM_E_PLAN, "cannot tell which Python runs alembic.command %s, to let "
		      "Alembic read the graph", dgm_buf_cstr(&b));
	dgm_error_hint(err, "write alembic.command as [PYTHON, -m, alembic] or as the alembic "
		       "script of the project's virtualenv (e.g. [.venv/bin/alembic])");
	dgm_buf_free(&b);
	return -1;
}

static char **str_list(json_t *a, size_t *n)
{
	char **v = dgm_xcalloc(json_array_size(a) + 1, sizeof(*v));

	*n = 0;
	for (size_t i = 0; i < json_array_size(a); i++)
		if (json_is_string(json_array_get(a, i)))
			v[(*n)++] = dgm_xstrdup(json_string_value(json_array_get(a, i)));
	return v;
}

/* The JSON list the script printed, as a built graph. */
static int from_json(dgm_alembic_script **out, const char *text, dgm_error *err)
{
	json_t *root = json_loads(text, 0, NULL);
	dgm_alembic_script *s;
	size_t i;
	json_t *o;

	if (!json_is_array(root)) {
		json_decref(root);
		return dgm_error_set(err, DGM_E_ALEMBIC, "alembic's graph could not be read: "
				     "the script printed no JSON list");
	}
	s = dgm_alembic_script_new();
	json_array_foreach(root, i, o) {
		dgm_alembic_revfile rf;
		const char *id = json_string_value(json_object_get(o, "revision"));

		memset(&rf, 0, sizeof(rf));
		rf.revision = dgm_xstrdup(id ? id : "");
		rf.path = dgm_xstrdup(json_string_value(json_object_get(o, "path")) ?: "");
		rf.doc = dgm_xstrdup(json_string_value(json_object_get(o, "doc")) ?: "");
		rf.has_down = true;
		rf.down = str_list(json_object_get(o, "down_revision"), &rf.ndown);
		rf.labels = str_list(json_object_get(o, "branch_labels"), &rf.nlabels);
		rf.depends = str_list(json_object_get(o, "depends_on"), &rf.ndepends);
		dgm_alembic_script_add(s, &rf);
	}
	json_decref(root);
	if (dgm_alembic_script_build(s, err) != 0) {
		dgm_alembic_free(s);
		return -1;
	}
	s->read_by_alembic = true;
	*out = s;
	return 0;
}

/* ROOT's folder that holds INI_REL (malloc'd): where alembic runs. */
static char *ini_folder(const char *root, const char *ini_rel)
{
	const char *slash = strrchr(ini_rel, '/');

	return slash ? dgm_xasprintf("%s/%.*s", root, (int)(slash - ini_rel), ini_rel) :
	       dgm_xstrdup(root);
}

/* Run the script on INI_REL in ROOT (the work tree or an export), in
 * the ini's folder. */
static int run_script(dgm_alembic_script **out, const char *py, bool with_cwd,
		      char *const *plan_env, const char *root, const char *ini_rel,
		      dgm_error *err)
{
	const char *slash = strrchr(ini_rel, '/');
	char *dir = ini_folder(root, ini_rel);
	const char *argv[] = { py, "-c", script, slash ? slash + 1 : ini_rel, root,
			       with_cwd ? "cwd" : "-", NULL };
	dgm_buf json = DGM_BUF_INIT;
	size_t n = 0;
	const char **env;
	dgm_child c = { .argv = argv, .cwd = dir, .out = &json };
	int ret;

	while (plan_env && plan_env[n])
		n++;
	env = dgm_xcalloc(n + 2, sizeof(*env));
	/* no __pycache__ left in the user's work tree; the plan's come last */
	env[0] = "PYTHONDONTWRITEBYTECODE=1";
	for (size_t i = 0; i < n; i++)
		env[i + 1] = plan_env[i];
	c.env_set = env;

	dgm_info("reading the Alembic graph with Alembic itself ('%s' in '%s')", py, dir);
	ret = dgm_run(&c, err);
	if (ret == 0)
		ret = from_json(out, dgm_buf_cstr(&json), err);
	else
		dgm_error_hint(err, "Alembic could not load the revisions either; run 'alembic "
			       "heads' in '%s' to see why", dir);
	dgm_buf_free(&json);
	free(env);
	free(dir);
	return ret;
}

int dgm_project_load_graph_alembic(dgm_alembic_script **out, const char *repo,
				   const char *ini, const char *at,
				   const dgm_project_reader *how, dgm_error *err)
{
	char *const *cmd = how ? how->command : NULL;
	size_t ncmd = how ? how->ncommand : 0;
	char root[PATH_MAX], *py = NULL, *tmp = NULL, *ini_rel = NULL, *dir;
	int ret = -1;

	*out = NULL;
	if (!realpath(repo, root))
		return dgm_error_errno(err, DGM_E_USAGE, "cannot use repository '%s'", repo);
	if (dgm_project_tree_relative(&ini_rel, root, ini, err))
		return -1;
	dir = ini_folder(root, ini_rel);
	ret = command_python(&py, cmd, ncmd, dir, err);
	free(dir);
	if (ret)
		goto out;
	ret = -1;
	if (at) {
		tmp = dgm_xstrdup("/tmp/dgmigrate-graph-XXXXXX");
		if (!mkdtemp(tmp)) {
			dgm_error_errno(err, DGM_E_IO, "cannot create a temporary folder");
			goto out;
		}
		if (dgm_git_export(root, at, tmp, err) != 0)
			goto out;
	}
	ret = run_script(out, py, ncmd >= 3 && !strcmp(cmd[1], "-m"), how ? how->env : NULL,
			 tmp ? tmp : root, ini_rel, err);
	if (ret)
		dgm_error_prefix(err, "cannot read the Alembic revisions of '%s'%s%s with Alembic",
				 root, at ? " at " : "", at ? at : "");
out:
	if (tmp) {
		dgm_error e = DGM_ERROR_INIT;

		if (dgm_fs_remove_tree(tmp, &e) != 0)
			dgm_warn("%s", e.msg);
	}
	free(tmp);
	free(py);
	free(ini_rel);
	return ret;
}
