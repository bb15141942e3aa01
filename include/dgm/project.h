/*
 * project.h - an application's Alembic project as a repository holds it:
 * its revision graph from the work tree or at a tag (git, no checkout),
 * and the check of a database's revisions against it. Below release/
 * and cli/, which both use it.
 */
#ifndef DGM_PROJECT_H
#define DGM_PROJECT_H

#include <stddef.h>

#include "dgm/alembic.h"
#include "dgm/buf.h"
#include "dgm/error.h"

/* Load the Alembic graph of repo (ini: alembic.ini's path inside it,
 * or an absolute path inside it) from the work tree, or as it stood at
 * `at` when not NULL. When the ini is missing, the hint lists the
 * alembic.ini files of the repository's tree. */
int dgm_project_load_graph(dgm_alembic_script **out, const char *repo, const char *ini,
			   const char *at, dgm_error *err);
/* The same graph as Alembic itself loads it, for revision files that
 * compute what cannot be read as text: the Python of ALEMBIC_CMD (NULL:
 * "alembic" in PATH) runs ScriptDirectory.from_config on the ini in the
 * work tree, or in a temporary export of `at`, and prints the revisions
 * as JSON. This imports the project's code. The result has
 * read_by_alembic set, and must be shown as "read by Alembic". */
int dgm_project_load_graph_alembic(dgm_alembic_script **out, const char *repo,
				   const char *ini_rel, const char *at, const char *alembic_cmd,
				   dgm_error *err);
/* alembic.ini's path relative to the repository, from the plan's
 * absolute alembic.config. */
const char *dgm_project_ini_rel(const char *config, const char *repo);

/* Append the tags (", "-separated) whose Alembic graph holds rev. */
int dgm_project_tags_knowing(dgm_buf *out, const char *repo_dir, const char *ini_rel,
			     const char *rev);
/* Fail when a database revision is not in the graph s (the database is
 * ahead of the code), naming the revision and the tags that know it. */
int dgm_project_check_db_known(const dgm_alembic_script *s, char *const *revs, size_t n,
			       const char *repo, const char *ini_rel, const char *code_name,
			       dgm_error *err);

#endif
