/* test_migrate.c - downgrade chains that land exactly on a set of heads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "dgm/migrate.h"

static void add(dgm_alembic_script *s, const char *id, const char *down, const char *extra)
{
	char path[64], text[512];
	dgm_error e = DGM_ERROR_INIT;

	snprintf(path, sizeof(path), "versions/%s.py", id);
	snprintf(text, sizeof(text), "revision = '%s'\ndown_revision = %s\n%s\n", id, down,
		 extra ? extra : "");
	assert_int_equal(dgm_alembic_script_add_text(s, path, text, &e), 0);
}

/* The fixture's shape: v1.5 is a -> b -> c; v1.6 adds d on c, a branch
 * f forking from b (older than c), e on f, a merge m of d and e, and h. */
static dgm_alembic_script *fixture_graph(void)
{
	dgm_alembic_script *s = dgm_alembic_script_new();
	dgm_error e = DGM_ERROR_INIT;

	add(s, "aaaa", "None", NULL);
	add(s, "bbbb", "'aaaa'", NULL);
	add(s, "cccc", "'bbbb'", NULL);
	add(s, "dddd", "'cccc'", NULL);
	add(s, "ffff", "'bbbb'", "branch_labels = ('ml',)");
	add(s, "eeee", "'ffff'", "depends_on = 'dddd'");
	add(s, "mmmm", "('dddd', 'eeee')", NULL);
	add(s, "hhhh", "'mmmm'", NULL);
	assert_int_equal(dgm_alembic_script_build(s, &e), 0);
	return s;
}

static void plain_downgrade_leaves_the_fork_so_a_second_step_removes_it(void **state)
{
	dgm_alembic_script *s = fixture_graph();
	char *cur[] = { "hhhh" }, *want[] = { "cccc" };
	char **t = NULL;
	size_t n = 0;
	dgm_error e = DGM_ERROR_INIT;

	assert_int_equal(dgm_migrate_plan_downgrade(&t, &n, s, cur, 1, want, 1, &e), 0);
	assert_int_equal(n, 2);
	assert_string_equal(t[0], "cccc");
	assert_string_equal(t[1], "ffff@bbbb");
	dgm_migrate_targets_free(t, n);
	dgm_alembic_free(s);
}

static void nothing_to_do_when_already_there(void **state)
{
	dgm_alembic_script *s = fixture_graph();
	char *cur[] = { "cccc" }, *want[] = { "cccc" };
	char **t = NULL;
	size_t n = 9;
	dgm_error e = DGM_ERROR_INIT;

	assert_int_equal(dgm_migrate_plan_downgrade(&t, &n, s, cur, 1, want, 1, &e), 0);
	assert_int_equal(n, 0);
	dgm_migrate_targets_free(t, n);
	dgm_alembic_free(s);
}

static void down_to_base(void **state)
{
	dgm_alembic_script *s = fixture_graph();
	char *cur[] = { "hhhh" };
	char **t = NULL;
	size_t n = 0;
	dgm_error e = DGM_ERROR_INIT;

	assert_int_equal(dgm_migrate_plan_downgrade(&t, &n, s, cur, 1, NULL, 0, &e), 0);
	assert_int_equal(n, 1);
	assert_string_equal(t[0], "base");
	dgm_migrate_targets_free(t, n);
	dgm_alembic_free(s);
}

static void from_a_half_applied_branch(void **state)
{
	dgm_alembic_script *s = fixture_graph();
	char *cur[] = { "dddd", "eeee" }, *want[] = { "cccc" };
	char **t = NULL;
	size_t n = 0;
	dgm_error e = DGM_ERROR_INIT;

	assert_int_equal(dgm_migrate_plan_downgrade(&t, &n, s, cur, 2, want, 1, &e), 0);
	assert_true(n >= 1);
	dgm_migrate_targets_free(t, n);
	dgm_alembic_free(s);
}

static void same_set_ignores_order(void **state)
{
	char *a[] = { "x", "y" }, *b[] = { "y", "x" }, *c[] = { "x" };

	assert_true(dgm_migrate_same_set(a, 2, b, 2));
	assert_false(dgm_migrate_same_set(a, 2, c, 1));
	assert_true(dgm_migrate_same_set(NULL, 0, NULL, 0));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(plain_downgrade_leaves_the_fork_so_a_second_step_removes_it),
		cmocka_unit_test(nothing_to_do_when_already_there),
		cmocka_unit_test(down_to_base),
		cmocka_unit_test(from_a_half_applied_branch),
		cmocka_unit_test(same_set_ignores_order),
	};

	return cmocka_run_group_tests_name("migrate", tests, NULL, NULL);
}
