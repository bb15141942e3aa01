/* test_alembic_load.c - whole projects through a file system tree: the
 * fixtures in fixtures/alembic/ (found from this file's path, so run the
 * test from the repository root as `make` does), and generated folders
 * for file selection rules. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "dgm/alembic.h"
#include "dgm/buf.h"
#include "dgm/log.h"

static char *fixture(const char *name)
{
	const char *self = __FILE__;
	const char *tail = strstr(self, "tests/unit/");
	size_t root = tail ? (size_t)(tail - self) : 0;

	return dgm_xasprintf("%.*sfixtures/alembic/%s", (int)root, self, name);
}

static dgm_alembic_script *load(const char *root, const char *ini,
				const dgm_alembic_load_opts *opts, dgm_error *err)
{
	dgm_tree tree;
	dgm_alembic_script *s = NULL;

	if (dgm_tree_open_fs(&tree, root, err) != 0)
		return NULL;
	if (dgm_alembic_load(&s, &tree, ini, opts, err) != 0)
		s = NULL;
	dgm_tree_close(&tree);
	return s;
}

static dgm_alembic_script *load_ok(const char *name, const char *ini,
				   const dgm_alembic_load_opts *opts)
{
	char *root = fixture(name);
	dgm_error err = DGM_ERROR_INIT;
	dgm_alembic_script *s = load(root, ini, opts, &err);

	if (!s)
		fail_msg("%s: %s", root, err.msg);
	free(root);
	return s;
}

static void basic_project_loads_and_skips_non_revisions(void **state)
{
	dgm_alembic_script *s = load_ok("basic", "alembic.ini", NULL);
	const dgm_alembic_rev *r;

	assert_int_equal(s->count, 3);   /* not __init__.py, README, .#lock.py */
	assert_int_equal(s->nheads, 1);
	assert_string_equal(s->heads[0]->id, "27c6a30d7c24");
	assert_string_equal(s->heads[0]->down[0], "ae1027a6acf");
	assert_string_equal(s->heads[0]->doc, "add an index");
	assert_string_equal(s->config.script_location, "migrations");
	assert_string_equal(s->config.version_locations[0], "migrations/versions");
	r = dgm_alembic_find(s, "1975ea83b712");
	assert_non_null(r);
	assert_string_equal(r->path, "migrations/versions/1975ea83b712_create_account.py");
	assert_int_equal(r->line, 13);
	dgm_alembic_free(s);
}

static void ids(const dgm_alembic_steps *st, const char *want)
{
	dgm_buf b = DGM_BUF_INIT;

	dgm_buf_puts(&b, "");
	for (size_t i = 0; i < st->count; i++)
		dgm_buf_printf(&b, "%s%s", i ? " " : "", st->revs[i]->id);
	assert_string_equal(b.ptr, want);
	dgm_buf_free(&b);
}

static void ini_in_a_subfolder_with_two_locations(void **state)
{
	dgm_alembic_load_opts opts = { .sort_files = true };
	dgm_alembic_script *s = load_ok("multi", "app/alembic.ini", &opts);
	dgm_alembic_steps st;
	dgm_error err = DGM_ERROR_INIT;
	const char *cur[] = { "c0re0005" };

	assert_int_equal(s->count, 8);
	assert_int_equal(s->config.nversion_locations, 3);
	assert_string_equal(s->config.version_locations[1], "shared/versions");
	assert_int_equal(s->nheads, 2);
	assert_string_equal(s->heads[0]->id, "c0re0005");
	assert_string_equal(s->heads[1]->id, "5hared03");
	/* alembic history, checked against Alembic 1.8.1 */
	assert_int_equal(dgm_alembic_history(&st, s, NULL, NULL, &err), 0);
	ids(&st, "c0re0005 5hared03 5hared02 5hared01 c0re0003 c0re0004 c0re0002 c0re0001");
	dgm_alembic_steps_free(&st);
	/* the shared branch needs c0re0003 (depends_on) */
	assert_int_equal(dgm_alembic_upgrade(&st, s, NULL, 0, "shared@head", &err), 0);
	ids(&st, "c0re0001 c0re0002 c0re0003 5hared01 5hared02 5hared03");
	assert_int_equal(st.nheads_after, 1);
	assert_string_equal(st.heads_after[0]->id, "5hared03");
	dgm_alembic_steps_free(&st);
	assert_int_equal(dgm_alembic_upgrade(&st, s, cur, 1, "heads", &err), 0);
	ids(&st, "5hared01 5hared02 5hared03");
	dgm_alembic_steps_free(&st);
	dgm_alembic_free(s);
}

static void absolute_paths_under_the_repository(void **state)
{
	char *root = fixture("multi"), real[PATH_MAX];
	dgm_alembic_load_opts opts = { 0 };
	dgm_error err = DGM_ERROR_INIT;
	dgm_alembic_script *s;

	assert_non_null(realpath(root, real));
	opts.root_on_disk = real;
	s = load(root, "app/alembic.ini", &opts, &err);
	if (!s)
		fail_msg("%s", err.msg);
	assert_int_equal(s->count, 8);
	assert_string_equal(s->config.version_locations[0], "app/db/versions");
	dgm_alembic_free(s);
	free(root);
}

static void recursive_version_locations(void **state)
{
	dgm_alembic_script *s = load_ok("recursive", "alembic.ini", NULL);

	assert_int_equal(s->count, 3);
	assert_string_equal(s->heads[0]->id, "aaaa0003");
	assert_string_equal(s->revs[0]->id, "aaaa0001");  /* files first, then folders */
	assert_string_equal(s->revs[1]->path, "migrations/versions/2024/01/aaaa0002_second.py");
	dgm_alembic_free(s);
}

static void load_fails(const char *ini, const char *expect)
{
	char *root = fixture("");
	dgm_error err = DGM_ERROR_INIT;

	assert_null(load(root, ini, NULL, &err));
	if (!strstr(err.msg, expect))
		fail_msg("%s: expected '%s' in '%s'", ini, expect, err.msg);
	free(root);
}

static void broken_projects_are_reported(void **state)
{
	load_fails("bad/dup.ini", "revision 'dddd0001' is present more than once: "
		   "bad/dup/versions/");
	load_fails("bad/missing.ini", "bad/missing/versions/m2.py:9: revision mmmm9999 referenced "
		   "from mmmm0002 is not present");
	load_fails("bad/cycle.ini", "cycle is detected in revisions (cccc0001, cccc0002)");
	load_fails("bad/norev.ini", "bad/norev/versions/add_stuff.py: could not determine "
		   "revision id from filename");
	load_fails("bad/nonliteral.ini", "bad/nonliteral/versions/x2.py:3: the value of "
		   "'down_revision' is not a literal");
	load_fails("bad/none.ini", "cannot open");
}

/* ---- generated folders ------------------------------------------------ */

static void put(const char *dir, const char *name, const char *text)
{
	char *path = dgm_xasprintf("%s/%s", dir, name);
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	free(path);
}

static char *sandbox(void)
{
	char *dir = dgm_xstrdup("/tmp/dgm-alembic-XXXXXX");

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

static void mkdirs(const char *root, const char *sub)
{
	char *p = dgm_xasprintf("%s/%s", root, sub);

	assert_int_equal(mkdir(p, 0700), 0);
	free(p);
}

static void pycache_and_sourceless_rules(void **state)
{
	char *root = sandbox(), *v = dgm_xasprintf("%s/m/versions", root);
	dgm_error err = DGM_ERROR_INIT;
	dgm_alembic_script *s;

	mkdirs(root, "m");
	mkdirs(root, "m/versions");
	mkdirs(root, "m/versions/__pycache__");
	put(root, "alembic.ini", "[alembic]\nscript_location = m\n");
	put(v, "abcd_one.py", "revision = 'abcd0001'\ndown_revision = None\n");
	put(v, "__pycache__/abcd_one.cpython-311.pyc", "\x01\x02binary");
	put(v, "__pycache__/gone.cpython-311.pyc", "\x01\x02binary");
	put(v, "abcd_one.pyc", "\x01\x02binary");
	s = load(root, "alembic.ini", NULL, &err);
	assert_non_null(s);
	assert_int_equal(s->count, 1);
	dgm_alembic_free(s);

	/* sourceless: a compiled file whose source is gone cannot be read */
	put(root, "alembic.ini", "[alembic]\nscript_location = m\nsourceless = true\n");
	assert_null(load(root, "alembic.ini", NULL, &err));
	assert_non_null(strstr(err.msg, "gone.cpython-311.pyc' is a compiled revision without "
				     "its source"));
	remove_tree(root);
	free(root);
	free(v);
}

static void missing_folders_are_reported(void **state)
{
	char *root = sandbox();
	dgm_error err = DGM_ERROR_INIT;

	put(root, "alembic.ini", "[alembic]\nscript_location = nowhere\n");
	assert_null(load(root, "alembic.ini", NULL, &err));
	assert_non_null(strstr(err.msg, "path doesn't exist: 'nowhere'"));
	mkdirs(root, "nowhere");
	assert_null(load(root, "alembic.ini", NULL, &err));
	assert_non_null(strstr(err.msg, "version folder 'nowhere/versions' does not exist"));
	/* explicit version locations that do not exist are skipped */
	put(root, "alembic.ini", "[alembic]\nscript_location = nowhere\n"
	    "version_locations = %(here)s/a %(here)s/b\n");
	{
		dgm_alembic_script *s = load(root, "alembic.ini", NULL, &err);

		assert_non_null(s);
		assert_int_equal(s->count, 0);
		dgm_alembic_free(s);
	}
	remove_tree(root);
	free(root);
}

/* env.py counts 1, the versions folder 100 (a __pycache__ may be there) */
static int count_entry(const char *name, bool is_dir, void *payload)
{
	if (!strcmp(name, "env.py") && !is_dir)
		(*(int *)payload) += 1;
	if (!strcmp(name, "versions") && is_dir)
		(*(int *)payload) += 100;
	return 0;
}

static void tree_fs_lists_reads_and_stays_inside(void **state)
{
	char *root = fixture("basic");
	dgm_tree t;
	dgm_buf b = DGM_BUF_INIT;
	dgm_error err = DGM_ERROR_INIT;
	int seen = 0;

	assert_int_equal(dgm_tree_open_fs(&t, root, &err), 0);
	assert_int_equal(t.kind(t.ctx, ""), 2);
	assert_int_equal(t.kind(t.ctx, "alembic.ini"), 1);
	assert_int_equal(t.kind(t.ctx, "nope"), 0);
	assert_int_equal(t.kind(t.ctx, "../basic/alembic.ini"), 0);
	assert_int_equal(t.list(t.ctx, "migrations", count_entry, &seen, &err), 0);
	assert_int_equal(seen, 101);
	assert_int_equal(t.read(t.ctx, "migrations/versions/README", &b, &err), 0);
	assert_string_equal(b.ptr, "Revisions of the basic fixture.\n");
	assert_int_equal(t.read(t.ctx, "migrations/../../x", &b, &err), -1);
	assert_non_null(strstr(err.msg, "leaves the tree"));
	assert_int_equal(t.list(t.ctx, "nope", count_entry, &seen, &err), -1);
	dgm_tree_close(&t);
	assert_null(t.label);
	assert_int_equal(dgm_tree_open_fs(&t, "/nonexistent/dgm", &err), -1);
	dgm_tree_close(&t);
	dgm_buf_free(&b);
	free(root);
}

/* 1,000 revisions with branches: loaded and heads known well under 50 ms */
static void thousand_revisions_load_fast(void **state)
{
	char *root = sandbox(), *v = dgm_xasprintf("%s/m/versions", root);
	dgm_error err = DGM_ERROR_INIT;
	struct timespec a, b;
	dgm_alembic_script *s;
	double ms;

	mkdirs(root, "m");
	mkdirs(root, "m/versions");
	put(root, "alembic.ini", "[alembic]\nscript_location = m\n");
	for (int i = 0; i < 1000; i++) {
		char name[64], *text;

		snprintf(name, sizeof(name), "r%04d_step.py", i);
		if (i == 0)
			text = dgm_xstrdup("revision = 'r0000'\ndown_revision = None\n");
		else if (i % 50 == 0)   /* merge the side branch back */
			text = dgm_xasprintf("\"\"\"merge\"\"\"\nrevision: str = 'r%04d'\n"
					     "down_revision = ('r%04d', 'r%04d')\n", i, i - 1, i - 2);
		else if (i % 50 == 49)  /* a side branch off two back */
			text = dgm_xasprintf("revision = 'r%04d'\ndown_revision = 'r%04d'\n", i, i - 2);
		else
			text = dgm_xasprintf("revision = 'r%04d'\ndown_revision = 'r%04d'\n", i, i - 1);
		put(v, name, text);
		free(text);
	}
	clock_gettime(CLOCK_MONOTONIC, &a);
	s = load(root, "alembic.ini", NULL, &err);
	clock_gettime(CLOCK_MONOTONIC, &b);
	if (!s)
		fail_msg("%s", err.msg);
	ms = (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6;
	assert_int_equal(s->count, 1000);
	assert_int_equal(s->nheads, 2);
	print_message("1,000 revisions loaded in %.1f ms\n", ms);
	/* generous: sanitizer builds and a busy machine are much slower */
	assert_true(ms < 2000);
	dgm_alembic_free(s);
	remove_tree(root);
	free(root);
	free(v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(basic_project_loads_and_skips_non_revisions),
		cmocka_unit_test(ini_in_a_subfolder_with_two_locations),
		cmocka_unit_test(absolute_paths_under_the_repository),
		cmocka_unit_test(recursive_version_locations),
		cmocka_unit_test(broken_projects_are_reported),
		cmocka_unit_test(pycache_and_sourceless_rules),
		cmocka_unit_test(missing_folders_are_reported),
		cmocka_unit_test(tree_fs_lists_reads_and_stays_inside),
		cmocka_unit_test(thousand_revisions_load_fast),
	};

	dgm_log_set_level(DGM_LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
