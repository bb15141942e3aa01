/* test_alembic_names.c - revision ids and branch labels named through
 * the project's own constants (`branch_labels = (cli.CONTRACT_BRANCH,)`),
 * read statically from the work tree and from a git tag; and the errors
 * that name file, line and name when a value cannot be read. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dgm/alembic.h"
#include "dgm/buf.h"
#include "dgm/project.h"
#include "dgm/run.h"

/* ---- a project in a temporary folder ---------------------------------- */

static char *sandbox(void)
{
	char *dir = dgm_xstrdup("/tmp/dgm-names-XXXXXX");

	assert_non_null(mkdtemp(dir));
	return dir;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static void remove_tree(const char *dir)
{
	if (nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0)
		print_error("cannot remove %s\n", dir);
}

/* Write ROOT/REL, creating its folders. */
static void put(const char *root, const char *rel, const char *text)
{
	char *path = dgm_xasprintf("%s/%s", root, rel);
	FILE *f;

	for (char *p = path + strlen(root) + 1; (p = strchr(p, '/')) != NULL; p++) {
		*p = '\0';
		mkdir(path, 0700);
		*p = '/';
	}
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	free(path);
}

/* Neutron's layout: a package above the version folders, nested
 * <release>/<expand|contract> folders without __init__.py, labels from
 * constants modules. */
static void neutron_like(const char *root)
{
	put(root, "alembic.ini", "[alembic]\nscript_location = app/migrations\n"
	    "version_locations = app/migrations/versions app/migrations/versions/r1/expand "
	    "app/migrations/versions/r1/contract\n");
	put(root, "app/__init__.py", "");
	put(root, "app/migrations/__init__.py", "");
	put(root, "app/migrations/versions/__init__.py", "");
	/* through two modules: labels.EXPAND is names.EXPAND_BRANCH */
	put(root, "app/labels.py", "from app.db import names\n\nEXPAND = names.EXPAND_BRANCH\n");
	put(root, "app/db/__init__.py", "");
	put(root, "app/db/names.py", "EXPAND_BRANCH = 'expand'\n");
	put(root, "app/cli.py", "import os\n\nCONTRACT_BRANCH = \"contract\"\n"
	    "HOME = os.environ['HOME']\nEXPAND_HEAD = 'e1'\n");
	put(root, "app/revs.py", "PARENTS = ('e1', 'c1')\n");
	put(root, "app/migrations/versions/base.py",
	    "revision = 'base1'\ndown_revision = None\n");
	put(root, "app/migrations/versions/r1/expand/e1.py",
	    "from app import labels\n\nrevision = 'e1'\ndown_revision = 'base1'\n"
	    "branch_labels = (labels.EXPAND,)\n");
	put(root, "app/migrations/versions/r1/contract/c1.py",
	    "from app.cli import CONTRACT_BRANCH\nimport app.cli\n\n"
	    "revision = 'c1'\ndown_revision = 'base1'\nbranch_labels = [CONTRACT_BRANCH]\n"
	    "depends_on = (app.cli.EXPAND_HEAD,)\n");
	put(root, "app/migrations/versions/m1.py",
	    "import app.revs as revs\n\nrevision = 'm1'\ndown_revision = revs.PARENTS\n");
}

static dgm_alembic_script *load(const char *root, const char *at, dgm_error *err)
{
	dgm_alembic_script *s = NULL;

	if (dgm_project_load_graph(&s, root, "alembic.ini", at, err) != 0)
		return NULL;
	return s;
}

static const dgm_alembic_rev *rev(const dgm_alembic_script *s, const char *id)
{
	const dgm_alembic_rev *r = dgm_alembic_find(s, id);

	if (!r)
		fail_msg("no revision '%s'", id);
	return r;
}

static void load_fails(const char *root, const char *at, const char *const *expect)
{
	dgm_error err = DGM_ERROR_INIT;
	dgm_alembic_script *s = load(root, at, &err);

	assert_null(s);
	for (int i = 0; expect[i]; i++)
		if (!strstr(err.msg, expect[i]))
			fail_msg("expected '%s' in '%s'", expect[i], err.msg);
}

static void assert_list(char **v, size_t n, const char *want)
{
	dgm_buf b = DGM_BUF_INIT;

	for (size_t i = 0; i < n; i++)
		dgm_buf_printf(&b, "%s%s", i ? " " : "", v[i]);
	assert_string_equal(dgm_buf_cstr(&b), want);
	dgm_buf_free(&b);
}

/* ---- the work tree ---------------------------------------------------- */

static void project_constant_labels(void **state)
{
	char *root = sandbox();
	dgm_error err = DGM_ERROR_INIT;
	dgm_alembic_script *s;

	neutron_like(root);
	s = load(root, NULL, &err);
	if (!s)
		fail_msg("%s", err.msg);
	assert_list(rev(s, "c1")->labels, rev(s, "c1")->nlabels, "contract");
	assert_list(rev(s, "c1")->depends, rev(s, "c1")->ndepends, "e1");
	assert_int_equal(s->nheads, 1);
	assert_string_equal(s->heads[0]->id, "m1");
	dgm_alembic_free(s);
	/* the config may be given as an absolute path inside the repository */
	{
		char *ini = dgm_xasprintf("%s/alembic.ini", root);

		assert_int_equal(dgm_project_load_graph(&s, root, ini, NULL, &err), 0);
		dgm_alembic_free(s);
		free(ini);
		assert_int_equal(dgm_project_load_graph(&s, root, "/tmp/alembic.ini", NULL,
							&err), -1);
		assert_non_null(strstr(err.msg, "is outside the repository"));
	}
	remove_tree(root);
	free(root);
}

static void down_revision_from_an_imported_tuple(void **state)
{
	char *root = sandbox();
	dgm_error err = DGM_ERROR_INIT;
	dgm_alembic_script *s;

	neutron_like(root);
	s = load(root, NULL, &err);
	if (!s)
		fail_msg("%s", err.msg);
	assert_list(rev(s, "m1")->down, rev(s, "m1")->ndown, "e1 c1");
	assert_true(rev(s, "m1")->is_merge_point);
	dgm_alembic_free(s);
	remove_tree(root);
	free(root);
}

static void constant_through_two_modules(void **state)
{
	char *root = sandbox();
	dgm_error err = DGM_ERROR_INIT;
	dgm_alembic_script *s;

	neutron_like(root);
	s = load(root, NULL, &err);
	if (!s)
		fail_msg("%s", err.msg);
	assert_list(rev(s, "e1")->labels, rev(s, "e1")->nlabels, "expand");
	dgm_alembic_free(s);
	remove_tree(root);
	free(root);
}

static void prepend_sys_path_is_a_root(void **state)
{
	char *root = sandbox();
	dgm_error err = DGM_ERROR_INIT;
	dgm_alembic_script *s;

	/* no package above the versions: the module is found through
	 * prepend_sys_path only */
	put(root, "alembic.ini", "[alembic]\nscript_location = mig\nprepend_sys_path = . lib\n");
	put(root, "lib/consts.py", "BASE = 'b0'\nLABELS = ['main']\n");
	put(root, "mig/versions/b0.py", "import consts\nrevision = consts.BASE\n"
	    "down_revision = None\nbranch_labels = consts.LABELS\n");
	s = load(root, NULL, &err);
	if (!s)
		fail_msg("%s", err.msg);
	assert_list(rev(s, "b0")->labels, rev(s, "b0")->nlabels, "main");
	dgm_alembic_free(s);
	remove_tree(root);
	free(root);
}

static void unresolvable_names_are_reported(void **state)
{
	char *root = sandbox();

	neutron_like(root);
	/* a module outside the project */
	put(root, "app/migrations/versions/r1/expand/e1.py",
	    "from oslo_db import consts\n\nrevision = 'e1'\ndown_revision = 'base1'\n"
	    "branch_labels = (consts.EXPAND,)\n");
	load_fails(root, NULL, (const char *const[]){
		"app/migrations/versions/r1/expand/e1.py:5: cannot read the value of "
		"'branch_labels'", "e1.py:1: module 'oslo_db' is not a file of the project", NULL });
	/* a computed constant in a module of the project */
	put(root, "app/migrations/versions/r1/expand/e1.py",
	    "import app.cli\n\nrevision = 'e1'\ndown_revision = 'base1'\n"
	    "branch_labels = app.cli.HOME\n");
	load_fails(root, NULL, (const char *const[]){
		"e1.py:5: cannot read the value of 'branch_labels'",
		"app/cli.py:4: the value of 'HOME' is not a literal", NULL });
	/* the hint names the way to Alembic the command at hand takes */
	{
		dgm_project_reader how = { .ask = "'alembic.read_graph: alembic' in the plan" };
		dgm_alembic_script *s = NULL;
		dgm_error err = DGM_ERROR_INIT;

		assert_int_equal(dgm_project_read_graph(&s, &how, root, "alembic.ini", NULL, &err), -1);
		assert_non_null(strstr(err.hint, "let Alembic read the graph ('alembic.read_graph: "
					"alembic' in the plan; it imports the project's code)"));
		assert_null(strstr(err.hint, "--read-with-alembic"));
		dgm_error_clear(&err);
		assert_int_equal(dgm_project_load_graph(&s, root, "alembic.ini", NULL, &err), -1);
		assert_non_null(strstr(err.hint, "--read-with-alembic"));
		assert_non_null(strstr(err.hint, "alembic.read_graph: alembic"));
	}
	/* a name the module does not assign */
	put(root, "app/migrations/versions/r1/expand/e1.py",
	    "from app import labels\nrevision = 'e1'\ndown_revision = 'base1'\n"
	    "branch_labels = labels.NOPE\n");
	load_fails(root, NULL, (const char *const[]){
		"e1.py:4: cannot read the value of 'branch_labels'",
		"'NOPE' is not assigned at the top level of 'app/labels.py'", NULL });
	remove_tree(root);
	free(root);
}

/* ---- names within one file -------------------------------------------- */

static void names_of_the_file_itself(void **state)
{
	const char *text = "LABEL = 'feature'\nPARENT: str = 'a1'\n"
			   "revision = 'b2'\ndown_revision = PARENT\n"
			   "branch_labels = (LABEL,)\n";
	dgm_alembic_revfile rf;
	dgm_error err = DGM_ERROR_INIT;

	if (dgm_alembic_revfile_parse(&rf, "v/b2.py", text, strlen(text), &err) != 0)
		fail_msg("%s", err.msg);
	assert_list(rf.down, rf.ndown, "a1");
	assert_list(rf.labels, rf.nlabels, "feature");
	dgm_alembic_revfile_free(&rf);
	/* Python runs the file top down: a name assigned later is unbound */
	text = "revision = 'b2'\ndown_revision = PARENT\nPARENT = 'a1'\n";
	assert_int_equal(dgm_alembic_revfile_parse(&rf, "v/b2.py", text, strlen(text), &err), -1);
	assert_non_null(strstr(err.msg, "v/b2.py:2: name 'PARENT' is not assigned or imported"));
	/* a cycle ends */
	text = "A = B\nB = A\nrevision = A\ndown_revision = None\n";
	assert_int_equal(dgm_alembic_revfile_parse(&rf, "v/b2.py", text, strlen(text), &err), -1);
	assert_non_null(strstr(err.msg, "v/b2.py:3: cannot read the value of 'revision'"));
}

/* ---- at a git tag ----------------------------------------------------- */

static void git(const char *dir, const char *const *args)
{
	const char *argv[16] = { "git", "-C", dir, "-c", "user.name=t", "-c",
				 "user.email=t@example.com" };
	size_t n = 7;
	dgm_child c = { .argv = argv };
	dgm_error e = DGM_ERROR_INIT;

	for (int i = 0; args[i] && n < 15; i++)
		argv[n++] = args[i];
	if (dgm_run_status(&c, &e) != 0 || c.exit_code != 0)
		fail_msg("git %s in '%s' failed: %s", args[0], dir, e.msg);
}

static void names_at_a_tag(void **state)
{
	char *root = sandbox();
	dgm_error err = DGM_ERROR_INIT;
	dgm_alembic_script *s;

	neutron_like(root);
	git(root, (const char *const[]){ "init", "-q", NULL });
	git(root, (const char *const[]){ "add", "-A", NULL });
	git(root, (const char *const[]){ "commit", "-q", "-m", "r1", NULL });
	git(root, (const char *const[]){ "tag", "v1", NULL });
	/* the work tree moves on: other labels, and a broken module */
	put(root, "app/db/names.py", "EXPAND_BRANCH = 'grow'\n");
	put(root, "app/revs.py", "PARENTS = compute()\n");
	s = load(root, "v1", &err);
	if (!s)
		fail_msg("%s", err.msg);
	assert_list(rev(s, "e1")->labels, rev(s, "e1")->nlabels, "expand");
	assert_list(rev(s, "c1")->labels, rev(s, "c1")->nlabels, "contract");
	assert_list(rev(s, "m1")->down, rev(s, "m1")->ndown, "e1 c1");
	dgm_alembic_free(s);
	load_fails(root, NULL, (const char *const[]){
		"m1.py:4: cannot read the value of 'down_revision'",
		"app/revs.py:1: the value of 'PARENTS' is not a literal", NULL });
	/* at the tag, an unresolvable name is reported the same way */
	git(root, (const char *const[]){ "commit", "-q", "-a", "-m", "r2", NULL });
	git(root, (const char *const[]){ "tag", "v2", NULL });
	load_fails(root, "v2", (const char *const[]){
		"app/migrations/versions/m1.py:4: cannot read the value of 'down_revision'",
		"app/revs.py:1: the value of 'PARENTS' is not a literal", NULL });
	remove_tree(root);
	free(root);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(project_constant_labels),
		cmocka_unit_test(down_revision_from_an_imported_tuple),
		cmocka_unit_test(constant_through_two_modules),
		cmocka_unit_test(prepend_sys_path_is_a_root),
		cmocka_unit_test(unresolvable_names_are_reported),
		cmocka_unit_test(names_of_the_file_itself),
		cmocka_unit_test(names_at_a_tag),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
