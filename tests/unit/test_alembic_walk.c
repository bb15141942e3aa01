/* test_alembic_walk.c - which revisions `alembic upgrade` / `downgrade`
 * run, in which order, and alembic_version afterwards. Every expected
 * value was produced by Alembic 1.8.1 (RevisionMap.iterate_revisions and
 * HeadMaintainer) on the same graph. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dgm/alembic.h"
#include "dgm/buf.h"
#include "dgm/log.h"

typedef struct spec {
	const char *id, *down, *deps, *labels;  /* comma-separated, NULL for None */
} spec;

/* "a,b" -> ('a', 'b',) */
static void tuple(dgm_buf *b, const char *name, const char *list)
{
	char *copy, *save = NULL;

	if (!list) {
		dgm_buf_printf(b, "%s = None\n", name);
		return;
	}
	copy = dgm_xstrdup(list);
	dgm_buf_printf(b, "%s = (", name);
	for (char *p = strtok_r(copy, ",", &save); p; p = strtok_r(NULL, ",", &save))
		dgm_buf_printf(b, "'%s', ", p);
	dgm_buf_puts(b, ")\n");
	free(copy);
}

static dgm_alembic_script *build(const spec *sp, size_t n, dgm_error *err)
{
	dgm_alembic_script *s = dgm_alembic_script_new();

	for (size_t i = 0; i < n; i++) {
		dgm_buf b = DGM_BUF_INIT;
		char *path = dgm_xasprintf("versions/%s_x.py", sp[i].id);
		int rc;

		dgm_buf_printf(&b, "\"\"\"rev %s\"\"\"\nrevision = '%s'\n", sp[i].id, sp[i].id);
		tuple(&b, "down_revision", sp[i].down);
		tuple(&b, "depends_on", sp[i].deps);
		tuple(&b, "branch_labels", sp[i].labels);
		rc = dgm_alembic_script_add_text(s, path, dgm_buf_cstr(&b), err);
		dgm_buf_free(&b);
		free(path);
		if (rc != 0) {
			dgm_alembic_free(s);
			return NULL;
		}
	}
	if (dgm_alembic_script_build(s, err) != 0) {
		dgm_alembic_free(s);
		return NULL;
	}
	return s;
}

static dgm_alembic_script *build_ok(const spec *sp, size_t n)
{
	dgm_error err = DGM_ERROR_INIT;
	dgm_alembic_script *s = build(sp, n, &err);

	if (!s)
		fail_msg("%s", err.msg);
	return s;
}

#define BUILD(sp) build_ok(sp, sizeof(sp) / sizeof(sp[0]))

/* branches, a merge, two bases, labels, a depends_on across bases */
static const spec g1[] = {
	{ "base01", NULL, NULL, "main" },
	{ "lin002", "base01", NULL, NULL },
	{ "brc003", "lin002", NULL, NULL },
	{ "brd004", "lin002", NULL, "feature" },
	{ "bre005", "brd004", NULL, NULL },
	{ "mrg006", "brc003,bre005", NULL, NULL },
	{ "oth007", NULL, NULL, "other" },
	{ "dep008", "oth007", "brc003", NULL },
	{ "tip009", "mrg006", NULL, NULL },
};

static char *join(const dgm_alembic_rev *const *revs, size_t n)
{
	dgm_buf b = DGM_BUF_INIT;

	dgm_buf_puts(&b, "");
	for (size_t i = 0; i < n; i++)
		dgm_buf_printf(&b, "%s%s", i ? " " : "", revs[i]->id);
	return dgm_buf_detach(&b);
}

/* FROM: space-separated ids ("" = base) */
static int run(dgm_alembic_steps *st, const dgm_alembic_script *s, bool up, const char *from,
	       const char *target, dgm_error *err)
{
	char *copy = dgm_xstrdup(from), *save = NULL;
	const char *cur[8];
	size_t n = 0;
	int rc;

	for (char *p = strtok_r(copy, " ", &save); p && n < 8; p = strtok_r(NULL, " ", &save))
		cur[n++] = p;
	rc = up ? dgm_alembic_upgrade(st, s, cur, n, target, err)
		: dgm_alembic_downgrade(st, s, cur, n, target, err);
	free(copy);
	return rc;
}

static void expect_run(const dgm_alembic_script *s, bool up, const char *from,
		       const char *target, const char *steps, const char *after)
{
	dgm_alembic_steps st;
	dgm_error err = DGM_ERROR_INIT;
	char *got, *got_after;

	if (run(&st, s, up, from, target, &err) != 0)
		fail_msg("%s '%s' -> '%s': %s", up ? "upgrade" : "downgrade", from, target, err.msg);
	assert_int_equal(st.upgrade, up);
	got = join(st.revs, st.count);
	got_after = join(st.heads_after, st.nheads_after);
	if (strcmp(got, steps) != 0)
		fail_msg("%s '%s' -> '%s': steps '%s', want '%s'", up ? "upgrade" : "downgrade",
			 from, target, got, steps);
	if (after && strcmp(got_after, after) != 0)
		fail_msg("%s '%s' -> '%s': heads after '%s', want '%s'",
			 up ? "upgrade" : "downgrade", from, target, got_after, after);
	free(got);
	free(got_after);
	dgm_alembic_steps_free(&st);
}

static void expect_fail(const dgm_alembic_script *s, bool up, const char *from,
			const char *target, const char *msg)
{
	dgm_alembic_steps st;
	dgm_error err = DGM_ERROR_INIT;

	assert_int_equal(run(&st, s, up, from, target, &err), -1);
	assert_int_equal(st.count, 0);
	if (!strstr(err.msg, msg))
		fail_msg("'%s' -> '%s': expected '%s' in '%s'", from, target, msg, err.msg);
}

static void upgrades_run_in_alembic_order(void **state)
{
	dgm_alembic_script *s = BUILD(g1);

	expect_run(s, true, "", "heads",
		   "base01 lin002 brc003 brd004 bre005 mrg006 tip009 oth007 dep008",
		   "dep008 tip009");
	expect_run(s, true, "", "tip009", "base01 lin002 brd004 bre005 brc003 mrg006 tip009",
		   "tip009");
	expect_run(s, true, "", "feature@head",
		   "base01 lin002 brd004 bre005 brc003 mrg006 tip009", "tip009");
	expect_run(s, true, "brc003", "heads", "brd004 bre005 mrg006 tip009 oth007 dep008",
		   "dep008 tip009");
	expect_run(s, true, "mrg006 oth007", "heads", "tip009 dep008", "dep008 tip009");
	/* depends_on pulls brc003 in, and merges it into dep008's row */
	expect_run(s, true, "", "other@head", "base01 lin002 brc003 oth007 dep008", "dep008");
	expect_run(s, true, "dep008", "heads", "brd004 bre005 mrg006 tip009", "dep008 tip009");
	expect_run(s, true, "", "mrg006", "base01 lin002 brd004 bre005 brc003 mrg006", "mrg006");
	expect_run(s, true, "lin002", "brc003+1", "brd004 bre005 brc003 mrg006", "mrg006");
	expect_run(s, true, "lin002", "feature@+1", "brd004", NULL);
	expect_run(s, true, "bre005", "brd004", "", "bre005");
	expect_run(s, true, "", "base", "", "");
	expect_run(s, true, "", "mrg0", "base01 lin002 brd004 bre005 brc003 mrg006", "mrg006");
	dgm_alembic_free(s);
}

static void upgrade_errors_match_alembic(void **state)
{
	dgm_alembic_script *s = BUILD(g1);

	expect_fail(s, true, "lin002", "+2", "ambiguous walk");
	expect_fail(s, true, "", "+1", "ambiguous walk");
	expect_fail(s, true, "tip009 dep008", "+1", "ambiguous upgrade from multiple current "
		    "revisions");
	expect_fail(s, true, "tip009", "head-2", "multiple head revisions are present for given "
		    "argument 'head'");
	expect_fail(s, true, "", "-1", "relative revision -1 didn't produce 1 migrations");
	expect_fail(s, true, "", "head", "multiple head revisions");
	expect_fail(s, true, "", "nosuch", "no such revision or branch 'nosuch'");
	expect_fail(s, true, "nosuch", "heads", "no such revision or branch 'nosuch'");
	dgm_alembic_free(s);
}

static void downgrades_run_in_alembic_order(void **state)
{
	dgm_alembic_script *s = BUILD(g1);

	expect_run(s, false, "tip009 dep008", "base",
		   "dep008 oth007 tip009 mrg006 bre005 brd004 brc003 lin002 base01", "");
	expect_run(s, false, "tip009 dep008", "lin002",
		   "dep008 tip009 mrg006 bre005 brd004 brc003", "lin002 oth007");
	expect_run(s, false, "tip009 dep008", "-1", "tip009", "mrg006 dep008");
	expect_run(s, false, "tip009 dep008", "brc003", "tip009 mrg006", "bre005 dep008");
	expect_run(s, false, "tip009 dep008", "other@base", "dep008 oth007", "tip009");
	expect_run(s, false, "tip009 dep008", "feature@base",
		   "dep008 tip009 mrg006 bre005 brd004 brc003 lin002 base01", NULL);
	expect_run(s, false, "tip009 dep008", "feature@-1", "tip009", NULL);
	expect_run(s, false, "bre005 brc003", "lin002", "brc003 bre005 brd004", "lin002");
	expect_run(s, false, "tip009 dep008", "oth007", "dep008", "oth007 tip009");
	expect_run(s, false, "tip009 dep008", "dep008-1", "dep008", NULL);
	dgm_alembic_free(s);
}

static void downgrade_errors_match_alembic(void **state)
{
	dgm_alembic_script *s = BUILD(g1);

	expect_fail(s, false, "tip009", "-2", "ambiguous walk");
	expect_fail(s, false, "lin002", "brc003", "destination brc003 is not a valid downgrade "
		    "target from current head(s)");
	expect_fail(s, false, "tip009", "heads", "multiple head revisions are present for given "
		    "argument 'heads'");
	expect_fail(s, false, "", "-1", "relative revision -1 didn't produce 1 migrations");
	expect_fail(s, false, "tip009", "+1", "relative revision +1 didn't produce 1 migrations");
	dgm_alembic_free(s);
}

static void history_lists_newest_first(void **state)
{
	dgm_alembic_script *s = BUILD(g1);
	dgm_alembic_steps st;
	dgm_error err = DGM_ERROR_INIT;
	char *got;

	assert_int_equal(dgm_alembic_history(&st, s, NULL, NULL, &err), 0);
	got = join(st.revs, st.count);
	assert_string_equal(got, "dep008 oth007 tip009 mrg006 bre005 brd004 brc003 lin002 base01");
	free(got);
	dgm_alembic_steps_free(&st);
	assert_int_equal(dgm_alembic_history(&st, s, "lin002", "mrg006", &err), 0);
	got = join(st.revs, st.count);
	assert_string_equal(got, "mrg006 brc003 bre005 brd004 lin002");
	free(got);
	dgm_alembic_steps_free(&st);
	dgm_alembic_free(s);
}

static const spec line3[] = {
	{ "aaa001", NULL, NULL, NULL },
	{ "bbb002", "aaa001", NULL, NULL },
	{ "ccc003", "bbb002", NULL, NULL },
};

/* Counts are Python ints in Alembic: a count larger than the graph
 * walks off its end ("didn't produce N migrations"). They used to be
 * cut to an int: +4294967297 ran one step, -2147483648 was undefined
 * behaviour. Counts beyond a long are refused. */
static void relative_counts_are_never_truncated(void **state)
{
	dgm_alembic_script *s = BUILD(line3);
	const dgm_alembic_rev **out = NULL;
	dgm_error err = DGM_ERROR_INIT;
	size_t n = 0;

	expect_run(s, true, "aaa001", "+1", "bbb002", "bbb002");
	expect_fail(s, true, "aaa001", "+4294967297",
		    "relative revision +4294967297 didn't produce 4294967297 migrations");
	expect_fail(s, true, "aaa001", "+2147483648",
		    "relative revision +2147483648 didn't produce 2147483648 migrations");
	expect_fail(s, false, "ccc003", "-2147483648",
		    "relative revision -2147483648 didn't produce 2147483648 migrations");
	expect_fail(s, false, "ccc003", "-4294967298",
		    "relative revision -4294967298 didn't produce 4294967298 migrations");
	expect_fail(s, false, "ccc003", "ccc003-2147483648", "walked too far");
	expect_fail(s, true, "aaa001", "+99999999999999999999",
		    "relative revision +99999999999999999999 is out of range");
	expect_fail(s, false, "ccc003", "-99999999999999999999",
		    "relative revision -99999999999999999999 is out of range");
	expect_fail(s, false, "ccc003", "-9223372036854775808",
		    "relative revision -9223372036854775808 is out of range");
	expect_fail(s, true, "aaa001", "aaa001+9223372036854775808", "is out of range");
	/* "-N" as an identifier walks down from the heads (to None when too far) */
	assert_int_equal(dgm_alembic_resolve(&out, &n, s, "-1", &err), 0);
	assert_int_equal(n, 1);
	assert_string_equal(out[0]->id, "bbb002");
	free(out);
	out = NULL;
	assert_int_equal(dgm_alembic_resolve(&out, &n, s, "-2147483648", &err), 0);
	assert_int_equal(n, 0);
	free(out);
	out = NULL;
	assert_int_equal(dgm_alembic_resolve(&out, &n, s, "-99999999999999999999", &err), -1);
	assert_non_null(strstr(err.msg, "-99999999999999999999 is out of range"));
	free(out);
	dgm_alembic_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(upgrades_run_in_alembic_order),
		cmocka_unit_test(upgrade_errors_match_alembic),
		cmocka_unit_test(downgrades_run_in_alembic_order),
		cmocka_unit_test(downgrade_errors_match_alembic),
		cmocka_unit_test(history_lists_newest_first),
		cmocka_unit_test(relative_counts_are_never_truncated),
	};

	/* Alembic warns about "downgrade -1" from several heads, so do we */
	dgm_log_set_level(DGM_LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
