/* test_fingerprint.c - the pure parts of the schema fingerprint: the
 * normal form of definitions, sorting and hashing, the diff and its
 * words. Reading the catalogs is in tests/integration/t_rehearse.sh. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "dgm/fingerprint.h"

static void assert_norm(const char *in, const char *want)
{
	char *got = dgm_fingerprint_normalize(in);

	assert_string_equal(got, want);
	free(got);
}

static bool same(const char *a, const char *b)
{
	char *x = dgm_fingerprint_normalize(a), *y = dgm_fingerprint_normalize(b);
	bool eq = !strcmp(x, y);

	free(x);
	free(y);
	return eq;
}

/* PostgreSQL 15 shows CHECK (status IN (...)) on a varchar column one way
 * when the constraint is created, another once it has been dumped and
 * restored (both strings as pg_get_constraintdef printed them). */
static void check_in_list_equal_after_restore(void **state)
{
	const char *created =
		"CHECK (((status)::text = ANY ((ARRAY['draft'::character varying, 'issued'::character "
		"varying, 'paid'::character varying, 'void'::character varying])::text[])))";
	const char *restored =
		"CHECK (((status)::text = ANY (ARRAY[('draft'::character varying)::text, "
		"('issued'::character varying)::text, ('paid'::character varying)::text, "
		"('void'::character varying)::text])))";

	assert_true(same(created, restored));
	assert_norm(created, "CHECK status::text = ANY ARRAY['draft'::character varying::text, "
		    "'issued'::character varying::text, 'paid'::character varying::text, "
		    "'void'::character varying::text]");
	/* a different list, or a different cast, stays different */
	assert_false(same(created, "CHECK (((status)::text = ANY ((ARRAY['draft'::character "
			  "varying, 'issued'::character varying])::text[])))"));
	assert_false(same("ARRAY['a'::varchar]::text[]", "ARRAY['a'::varchar]::name[]"));
}

static void parentheses_and_whitespace(void **state)
{
	assert_norm("  CHECK ((a > 0))\n  AND   (b)  ", "CHECK a > 0 AND b");
	assert_norm("lower((email)::text)", "lower email::text");
	assert_norm("CREATE INDEX ix ON public.t USING btree (due_date) WHERE ((status)::text = "
		    "'issued'::text)", "CREATE INDEX ix ON public.t USING btree due_date WHERE "
		    "status::text = 'issued'::text");
	assert_norm("numeric(6,4)", "numeric 6,4");
	assert_norm("", "");
	assert_norm("ARRAY[ 1 , 2 ]", "ARRAY[1, 2]");
}

static void quotes_are_left_alone(void **state)
{
	assert_norm("x = 'a (b)  c'", "x = 'a (b)  c'");
	assert_norm("x = 'it''s (so)'", "x = 'it''s (so)'");
	assert_norm("x = E'a\\' (b)'", "x = E'a\\' (b)'");
	assert_norm("\"Odd (Name)\" IS NOT NULL", "\"Odd (Name)\" IS NOT NULL");
	assert_false(same("x = 'a  b'", "x = 'a b'"));
	/* an array cast only counts outside quotes */
	assert_norm("'ARRAY[1]::text[]'", "'ARRAY[1]::text[]'");
}

static void nested_arrays_and_non_casts(void **state)
{
	assert_norm("ARRAY[ARRAY[1, 2], ARRAY[3]]::bigint[]",
		    "ARRAY[ARRAY[1, 2]::bigint, ARRAY[3]::bigint]");
	/* not a cast to an array type: unchanged */
	assert_norm("ARRAY[1, 2]::text", "ARRAY[1, 2]::text");
	assert_norm("ARRAY[1] = x", "ARRAY[1] = x");
	assert_norm("MYARRAY[1]::int[]", "MYARRAY[1]::int[]");
	assert_norm("ARRAY[]::text[]", "ARRAY[]");
}

static void build(dgm_fingerprint *fp, const char *const rows[][4], size_t n)
{
	for (size_t i = 0; i < n; i++)
		dgm_fingerprint_add(fp, rows[i][0], rows[i][1], rows[i][2], rows[i][3]);
	dgm_fingerprint_finish(fp);
}

static const char *const base_rows[][4] = {
	{ "table", "users", "users", "owner app" },
	{ "column", "users.id", "users", "integer not null" },
	{ "index", "pk_users", "users", "CREATE UNIQUE INDEX pk_users ON public.users USING btree (id)" },
	{ "constraint", "users.ck", "users", "CHECK ((id > 0)), validated" },
};

static void sorted_hashed_and_found(void **state)
{
	const char *const reversed[][4] = {
		{ "constraint", "users.ck", "users", "CHECK (id > 0), validated" },
		{ "index", "pk_users", "users",
		  "CREATE UNIQUE INDEX pk_users ON public.users USING btree (id)" },
		{ "column", "users.id", "users", "integer not null" },
		{ "table", "users", "users", "owner app" },
	};
	dgm_fingerprint a = DGM_FINGERPRINT_INIT, b = DGM_FINGERPRINT_INIT;
	const dgm_fp_item *it;

	build(&a, base_rows, 4);
	build(&b, reversed, 4);
	assert_string_equal(a.items[0].kind, "column");
	assert_string_equal(a.items[3].kind, "table");
	assert_int_equal(strlen(a.sha256), 64);
	/* same items in any order, and definitions equal in normal form */
	assert_string_equal(a.sha256, b.sha256);
	it = dgm_fingerprint_find(&a, "index", "pk_users");
	assert_non_null(it);
	assert_string_equal(it->table, "users");
	assert_null(dgm_fingerprint_find(&a, "index", "pk_nope"));
	assert_null(dgm_fingerprint_find(&a, "table", "pk_users"));
	dgm_fingerprint_free(&b);
	dgm_fingerprint_add(&b, "table", "users", "users", "owner other");
	dgm_fingerprint_finish(&b);
	assert_string_not_equal(a.sha256, b.sha256);
	dgm_fingerprint_free(&a);
	dgm_fingerprint_free(&b);
	/* empty, and freed twice */
	dgm_fingerprint_finish(&a);
	assert_int_equal(strlen(a.sha256), 64);
	assert_null(dgm_fingerprint_find(&a, "table", "x"));
	dgm_fingerprint_free(&a);
	dgm_fingerprint_free(&a);
}

static char *render(const dgm_fp_diff_item *d, const char *when)
{
	dgm_buf b = DGM_BUF_INIT;

	dgm_fp_diff_render(&b, d, when);
	return dgm_buf_detach(&b);
}

static void diff_says_what_the_downgrade_left(void **state)
{
	const char *const after_rows[][4] = {
		{ "table", "users", "users", "owner app" },
		{ "column", "users.id", "users", "integer not null" },
		{ "column", "users.ml_role", "users", "character varying(20) not null" },
		{ "index", "ix_users_ml_role", "users",
		  "CREATE INDEX ix_users_ml_role ON public.users USING btree (ml_role)" },
		{ "constraint", "users.ck", "users", "CHECK ((id > 1)), validated" },
	};
	dgm_fingerprint before = DGM_FINGERPRINT_INIT, after = DGM_FINGERPRINT_INIT;
	dgm_fp_diff d;
	char *s;

	build(&before, base_rows, 4);
	build(&after, after_rows, 5);
	dgm_fingerprint_diff(&d, &before, &after);
	assert_int_equal(d.count, 4);
	/* in kind, name order */
	assert_int_equal(d.items[0].change, DGM_FP_ADDED);
	s = render(&d.items[0], "after downgrade to 5e9f3b7a1c62");
	assert_string_equal(s, "column users.ml_role still exists after downgrade to 5e9f3b7a1c62");
	free(s);
	assert_int_equal(d.items[1].change, DGM_FP_CHANGED);
	s = render(&d.items[1], "after downgrade to base");
	assert_string_equal(s, "constraint users.ck differs after downgrade to base: was "
			    "'CHECK ((id > 0)), validated', now 'CHECK ((id > 1)), validated'");
	free(s);
	assert_int_equal(d.items[2].change, DGM_FP_ADDED);
	s = render(&d.items[2], "after downgrade to 5e9f3b7a1c62");
	assert_string_equal(s, "index ix_users_ml_role still exists after downgrade to 5e9f3b7a1c62");
	free(s);
	assert_int_equal(d.items[3].change, DGM_FP_REMOVED);
	assert_null(d.items[3].after);
	s = render(&d.items[3], "after downgrade to X");
	assert_string_equal(s, "index pk_users is missing after downgrade to X");
	free(s);
	dgm_fp_diff_free(&d);
	/* no difference with itself */
	dgm_fingerprint_diff(&d, &after, &after);
	assert_int_equal(d.count, 0);
	dgm_fp_diff_free(&d);
	dgm_fingerprint_free(&before);
	dgm_fingerprint_free(&after);
}

static void long_definitions_show_where_they_differ(void **state)
{
	dgm_fingerprint a = DGM_FINGERPRINT_INIT, b = DGM_FINGERPRINT_INIT;
	dgm_buf x = DGM_BUF_INIT, y = DGM_BUF_INIT;
	dgm_fp_diff d;
	char *s;

	dgm_buf_puts(&x, "SELECT\n    ");
	for (int i = 0; i < 40; i++)
		dgm_buf_printf(&x, "col%02d, ", i);
	dgm_buf_puts(&y, x.ptr);
	dgm_buf_puts(&x, "a FROM t");
	dgm_buf_puts(&y, "b FROM t");
	dgm_fingerprint_add(&a, "view", "v", "", x.ptr);
	dgm_fingerprint_add(&b, "view", "v", "", y.ptr);
	dgm_fingerprint_finish(&a);
	dgm_fingerprint_finish(&b);
	dgm_fingerprint_diff(&d, &a, &b);
	assert_int_equal(d.count, 1);
	s = render(&d.items[0], "after downgrade to R");
	assert_non_null(strstr(s, "was '...")); /* cut at the front: the start is the same */
	assert_non_null(strstr(s, "a FROM t'"));
	assert_non_null(strstr(s, "b FROM t'"));
	assert_null(strchr(s, '\n'));
	assert_true(strlen(s) < 2 * 160 + 100);
	free(s);
	dgm_fp_diff_free(&d);
	dgm_fingerprint_free(&a);
	dgm_fingerprint_free(&b);
	dgm_buf_free(&x);
	dgm_buf_free(&y);
}

static void assert_word(const char *kind, const char *name, const char *want)
{
	dgm_fp_item it = { .kind = (char *)kind, .name = (char *)name };
	char *got = dgm_fp_item_word(&it);

	assert_string_equal(got, want);
	free(got);
}

static void words_are_what_source_code_names(void **state)
{
	assert_word("index", "ix_invoices_due_date", "ix_invoices_due_date");
	assert_word("column", "users.ml_role", "ml_role");
	assert_word("column", "s.users.ml_role", "ml_role");
	assert_word("constraint", "users.ck_users_ml_role", "ck_users_ml_role");
	assert_word("function", "f(integer)", "f");
	assert_word("function", "s.f(integer, s.t)", "f");
	assert_word("table", "\"Odd.Name\"", "Odd.Name");
	assert_word("column", "\"My \"\"T\"\"\".x", "x");
	assert_word("table", "s.\"We\"\"ird\"", "We\"ird");
	assert_word("grant", "table users", "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(check_in_list_equal_after_restore),
		cmocka_unit_test(parentheses_and_whitespace),
		cmocka_unit_test(quotes_are_left_alone),
		cmocka_unit_test(nested_arrays_and_non_casts),
		cmocka_unit_test(sorted_hashed_and_found),
		cmocka_unit_test(diff_says_what_the_downgrade_left),
		cmocka_unit_test(long_definitions_show_where_they_differ),
		cmocka_unit_test(words_are_what_source_code_names),
	};

	return cmocka_run_group_tests_name("fingerprint", tests, NULL, NULL);
}
