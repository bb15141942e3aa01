/*
 * project.h - an application's Alembic project as a repository holds it:
 * its revision graph from the work tree or at a tag (git, no checkout),
 * and the check of a database's revisions against it. Below release/
 * and cli/, which both use it.
 */
#ifndef DGM_PROJECT_H
#define DGM_PROJECT_H

#include <stdbool.h>
#include <stddef.h>

#include "dgm/alembic.h"
#include "dgm/buf.h"
#include "dgm/error.h"
#include "dgm/plan.h"

/* How a command reads the graph. */
typedef struct dgm_project_reader {
	/* Ask Alembic itself (it imports the project's code); the result
	 * has read_by_alembic set and must be shown as "read by Alembic". */
	bool alembic;
	/* The alembic command (an argv prefix such as the plan's
	 * alembic.command) whose Python asks; NULL: "alembic" in PATH. */
	char *const *command;
	size_t ncommand;
	/* "NAME=value" set for it (the plan's alembic.env), NULL-terminated;
	 * may hold secrets. NULL: none. */
	char *const *env;
	/* How the user asks for Alembic in this command, named in the hint
	 * when a value cannot be read as text; NULL: every way is named. */
	const char *ask;
} dgm_project_reader;

/* Load the Alembic graph of repo (ini: alembic.ini's path inside it,
 * or an absolute path inside it) from the work tree, or as it stood at
 * `at` when not NULL, the way `how` says (NULL: as text). When the ini
 * is missing, the hint lists the alembic.ini files of the repository's
 * tree. */
int dgm_project_read_graph(dgm_alembic_script **out, const dgm_project_reader *how,
			   const char *repo, const char *ini, const char *at, dgm_error *err);
/* dgm_project_read_graph as text. */
int dgm_project_load_graph(dgm_alembic_script **out, const char *repo, const char *ini,
			   const char *at, dgm_error *err);
/* The same graph as Alembic itself loads it, for revision files that
 * compute what cannot be read as text: the Python of how->command (none:
 * "alembic" in PATH), with how->env set, runs ScriptDirectory.from_config
 * on the ini, in the ini's folder of the work tree or of a temporary
 * export of `at`, and prints the revisions as JSON. This imports the
 * project's code. The command is [PYTHON, -m, alembic, ...] or one
 * program, the alembic script whose "#!" line names its Python (a
 * relative path is taken from the ini's folder, where alembic runs). The
 * result has read_by_alembic set. */
int dgm_project_load_graph_alembic(dgm_alembic_script **out, const char *repo,
				   const char *ini, const char *at,
				   const dgm_project_reader *how, dgm_error *err);
/* alembic.ini's path relative to the repository, from the plan's
 * absolute alembic.config. */
const char *dgm_project_ini_rel(const char *config, const char *repo);

/* The reader of a plan's commands: alembic.read_graph with the Python
 * of alembic.command and alembic.env (${target.*} from database.url);
 * hints name the plan key. Free with dgm_project_reader_free. */
void dgm_project_plan_reader(dgm_project_reader *how, const dgm_plan *plan);
void dgm_project_reader_free(dgm_project_reader *how);
/* The graph of the plan's repository and alembic.config, read as the
 * plan says, in the work tree (at NULL) or at a tag or commit. */
int dgm_project_plan_graph(dgm_alembic_script **out, const dgm_plan *plan, const char *at,
			   dgm_error *err);

/* Append the tags (", "-separated) whose Alembic graph, read as the
 * plan says, holds rev. */
int dgm_project_tags_knowing(dgm_buf *out, const dgm_plan *plan, const char *rev);
/* Fail when a database revision is not in the graph s (the database is
 * ahead of the code), naming the revision and the tags that know it. */
int dgm_project_check_db_known(const dgm_alembic_script *s, char *const *revs, size_t n,
			       const dgm_plan *plan, const char *code_name, dgm_error *err);

#endif
