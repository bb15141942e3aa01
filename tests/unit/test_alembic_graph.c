/* test_alembic_graph.c - the revision map: heads, bases, labels,
 * depends_on, identifier resolution and the graph errors. Expected
 * values come from Alembic 1.8.1's RevisionMap on the same graphs. */
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

static void build_fails(const spec *sp, size_t n, const char *expect)
{
	dgm_error err = DGM_ERROR_INIT;

	assert_null(build(sp, n, &err));
	if (!strstr(err.msg, expect))
		fail_msg("expected '%s' in '%s'", expect, err.msg);
}

#define BUILD(sp) build_ok(sp, sizeof(sp) / sizeof(sp[0]))
#define BUILD_FAILS(sp, msg) build_fails(sp, sizeof(sp) / sizeof(sp[0]), msg)

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

/* the ids of a list, space separated */
static char *ids(const dgm_alembic_rev *const *revs, size_t n)
{
	dgm_buf b = DGM_BUF_INIT;

	dgm_buf_puts(&b, "");
	for (size_t i = 0; i < n; i++)
		dgm_buf_printf(&b, "%s%s", i ? " " : "", revs[i]->id);
	return dgm_buf_detach(&b);
}

static void expect_ids(const dgm_alembic_rev *const *revs, size_t n, const char *want)
{
	char *got = ids(revs, n);

	assert_string_equal(got, want);
	free(got);
}

static bool has_label(const dgm_alembic_rev *r, const char *l)
{
	for (size_t i = 0; i < r->nbranch_labels; i++)
		if (!strcmp(r->branch_labels[i], l))
			return true;
	return false;
}

static void heads_bases_and_points(void **state)
{
	dgm_alembic_script *s = BUILD(g1);
	const dgm_alembic_rev *lin = dgm_alembic_find(s, "lin002");
	const dgm_alembic_rev *mrg = dgm_alembic_find(s, "mrg006");
	const dgm_alembic_rev *dep = dgm_alembic_find(s, "dep008");

	expect_ids((const dgm_alembic_rev *const *)s->heads, s->nheads, "dep008 tip009");
	expect_ids((const dgm_alembic_rev *const *)s->real_heads, s->nreal_heads,
		   "dep008 tip009");
	expect_ids((const dgm_alembic_rev *const *)s->bases, s->nbases, "base01 oth007");
	assert_true(lin->is_branch_point);
	assert_int_equal(lin->nchildren, 2);
	assert_true(mrg->is_merge_point);
	assert_false(dgm_alembic_find(s, "brc003")->is_head);
	assert_int_equal(dep->ndeps, 1);
	assert_string_equal(dep->deps[0]->id, "brc003");
	assert_string_equal(dep->doc, "rev dep008");
	assert_null(dgm_alembic_find(s, "lin0"));
	assert_null(dgm_alembic_find(s, "feature"));
	dgm_alembic_free(s);
}

static void labels_spread_as_alembic_does(void **state)
{
	dgm_alembic_script *s = BUILD(g1);
	/* Alembic: base01 lin002 brc003 {main}; brd004 bre005 mrg006 tip009
	 * {feature, main}; oth007 dep008 {other} */
	static const struct { const char *id, *labels; } want[] = {
		{ "base01", "main" }, { "lin002", "main" }, { "brc003", "main" },
		{ "brd004", "feature main" }, { "bre005", "feature main" },
		{ "mrg006", "feature main" }, { "tip009", "feature main" },
		{ "oth007", "other" }, { "dep008", "other" },
	};

	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		const dgm_alembic_rev *r = dgm_alembic_find(s, want[i].id);
		size_t n = 1;

		for (const char *p = want[i].labels; *p; p++)
			n += *p == ' ';
		assert_int_equal(r->nbranch_labels, n);
		if (strstr(want[i].labels, "main"))
			assert_true(has_label(r, "main"));
		if (strstr(want[i].labels, "feature"))
			assert_true(has_label(r, "feature"));
		if (strstr(want[i].labels, "other"))
			assert_true(has_label(r, "other"));
	}
	dgm_alembic_free(s);
}

static void resolves(const dgm_alembic_script *s, const char *id, const char *want)
{
	const dgm_alembic_rev **out;
	size_t n;
	dgm_error err = DGM_ERROR_INIT;

	if (dgm_alembic_resolve(&out, &n, s, id, &err) != 0)
		fail_msg("'%s': %s", id, err.msg);
	expect_ids(out, n, want);
	free(out);
}

static void resolve_fails(const dgm_alembic_script *s, const char *id, const char *expect)
{
	const dgm_alembic_rev **out = NULL;
	size_t n;
	dgm_error err = DGM_ERROR_INIT;

	assert_int_equal(dgm_alembic_resolve(&out, &n, s, id, &err), -1);
	assert_null(out);
	if (!strstr(err.msg, expect))
		fail_msg("'%s': expected '%s' in '%s'", id, expect, err.msg);
}

static void identifiers_resolve_as_alembic(void **state)
{
	dgm_alembic_script *s = BUILD(g1);

	resolves(s, "heads", "dep008 tip009");
	resolves(s, "base", "");
	resolves(s, "lin002", "lin002");
	resolves(s, "brc", "brc003");         /* unique prefix */
	resolves(s, "bas", "base01");         /* 3 characters are enough when unique */
	resolves(s, "feature", "brd004");     /* a label is its revision */
	resolves(s, "feature@head", "tip009");
	resolves(s, "other@head", "dep008");
	resolves(s, "main@head", "tip009");
	resolves(s, "feature@heads", "tip009");
	resolves(s, "main@base", "");
	resolves(s, "feature@bre0", "bre005");
	resolves(s, "other@dep", "dep008");
	resolves(s, "-1", "oth007 mrg006");   /* one step down from each head */
	resolves(s, "feature@-1", "mrg006");
	resolves(s, "other@-1", "oth007");
	resolve_fails(s, "head", "multiple head revisions are present for given argument "
		      "'head': 'dep008', 'tip009'");
	resolve_fails(s, "br", "multiple revisions start with 'br': 'brc003', 'brd004', "
		      "'bre005'...");
	resolve_fails(s, "b", "multiple revisions start with 'b': 'base01', 'brc003', 'brd004'");
	resolve_fails(s, "nope", "no such revision or branch 'nope'");
	resolve_fails(s, "xy", "no such revision or branch 'xy'; please ensure at least four "
		      "characters are present");
	resolve_fails(s, "feature@brc003", "revision brc003 is not a member of branch 'feature'");
	resolve_fails(s, "nosuch@head", "no such revision or branch 'nosuch'");
	dgm_alembic_free(s);
}

static void resolve_one_wants_a_single_revision(void **state)
{
	dgm_alembic_script *s = BUILD(g1);
	const dgm_alembic_rev *r;
	dgm_error err = DGM_ERROR_INIT;

	assert_int_equal(dgm_alembic_resolve_one(&r, s, "base", &err), 0);
	assert_null(r);
	assert_int_equal(dgm_alembic_resolve_one(&r, s, "main@head", &err), 0);
	assert_string_equal(r->id, "tip009");
	assert_int_equal(dgm_alembic_resolve_one(&r, s, "heads", &err), -1);
	assert_non_null(strstr(err.msg, "for given argument 'heads'"));
	assert_non_null(strstr(err.hint, "'<branchname>@heads'"));
	dgm_alembic_free(s);
}

/* depends_on names a revision by id or by branch label; a dependency an
 * ancestor already declares is dropped (normalized) */
static void depends_on_resolves_labels_and_normalizes(void **state)
{
	static const spec g[] = {
		{ "aaaa", NULL, NULL, "left" },
		{ "bbbb", NULL, NULL, "right" },
		{ "cccc", "aaaa", "right", NULL },
		{ "dddd", "cccc", "bbbb", NULL },
	};
	dgm_alembic_script *s = BUILD(g);
	const dgm_alembic_rev *c = dgm_alembic_find(s, "cccc");

	assert_string_equal(c->deps[0]->id, "bbbb");
	assert_false(dgm_alembic_find(s, "bbbb")->is_real_head);
	assert_true(dgm_alembic_find(s, "bbbb")->is_head);
	expect_ids((const dgm_alembic_rev *const *)s->heads, s->nheads, "bbbb dddd");
	expect_ids((const dgm_alembic_rev *const *)s->real_heads, s->nreal_heads, "dddd");
	resolves(s, "heads", "dddd");
	dgm_alembic_free(s);
}

static void graph_errors_name_the_files(void **state)
{
	static const spec dup[] = {
		{ "aaaa", NULL, NULL, NULL }, { "bbbb", "aaaa", NULL, NULL },
		{ "aaaa", "bbbb", NULL, NULL },
	};
	static const spec missing[] = {
		{ "aaaa", NULL, NULL, NULL }, { "bbbb", "zzzz", NULL, NULL },
	};
	static const spec missing_dep[] = {
		{ "aaaa", NULL, NULL, NULL }, { "bbbb", "aaaa", "nolabel", NULL },
	};
	static const spec cycle[] = {
		{ "aaaa", NULL, NULL, NULL }, { "bbbb", "dddd", NULL, NULL },
		{ "cccc", "bbbb", NULL, NULL }, { "dddd", "cccc", NULL, NULL },
	};
	static const spec all_cycle[] = {
		{ "bbbb", "cccc", NULL, NULL }, { "cccc", "bbbb", NULL, NULL },
	};
	static const spec dep_cycle[] = {
		{ "aaaa", NULL, "cccc", NULL }, { "bbbb", "aaaa", NULL, NULL },
		{ "cccc", "bbbb", NULL, NULL },
	};
	static const spec label_twice[] = {
		{ "aaaa", NULL, NULL, "x" }, { "bbbb", "aaaa", NULL, "x" },
	};
	static const spec label_is_id[] = {
		{ "aaaa", NULL, NULL, NULL }, { "bbbb", "aaaa", NULL, "aaaa" },
	};

	BUILD_FAILS(dup, "revision 'aaaa' is present more than once: versions/aaaa_x.py:2 "
		    "and versions/aaaa_x.py:2");
	BUILD_FAILS(missing, "versions/bbbb_x.py:3: revision zzzz referenced from bbbb is not "
		    "present");
	BUILD_FAILS(missing_dep, "versions/bbbb_x.py:4: depends_on 'nolabel' of revision bbbb is "
		    "not present");
	BUILD_FAILS(cycle, "cycle is detected in revisions (bbbb, cccc, dddd)");
	BUILD_FAILS(all_cycle, "cycle is detected in revisions (bbbb, cccc)");
	BUILD_FAILS(dep_cycle, "dependency cycle is detected in revisions");
	BUILD_FAILS(label_twice, "branch name 'x' in revision bbbb already used by revision aaaa");
	BUILD_FAILS(label_is_id, "branch name 'aaaa' in revision bbbb already used by revision aaaa");
}

static void empty_project_has_no_heads(void **state)
{
	dgm_alembic_script *s = build_ok(NULL, 0);
	dgm_alembic_steps st;
	dgm_error err = DGM_ERROR_INIT;

	assert_int_equal(s->nheads, 0);
	resolves(s, "heads", "");
	assert_int_equal(dgm_alembic_upgrade(&st, s, NULL, 0, "heads", &err), 0);
	assert_int_equal(st.count, 0);
	dgm_alembic_steps_free(&st);
	dgm_alembic_free(s);
}

/* a graph of 5,000 revisions builds without quadratic costs */
static void big_linear_graph_builds(void **state)
{
	size_t n = 5000;
	spec *sp = dgm_xcalloc(n, sizeof(*sp));
	char **names = dgm_xcalloc(n, sizeof(*names));
	dgm_alembic_script *s;

	for (size_t i = 0; i < n; i++) {
		names[i] = dgm_xasprintf("r%06zu", i);
		sp[i].id = names[i];
		sp[i].down = i ? names[i - 1] : NULL;
	}
	s = build_ok(sp, n);
	assert_int_equal(s->nheads, 1);
	assert_string_equal(s->heads[0]->id, "r004999");
	dgm_alembic_free(s);
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	free(sp);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(heads_bases_and_points),
		cmocka_unit_test(labels_spread_as_alembic_does),
		cmocka_unit_test(identifiers_resolve_as_alembic),
		cmocka_unit_test(resolve_one_wants_a_single_revision),
		cmocka_unit_test(depends_on_resolves_labels_and_normalizes),
		cmocka_unit_test(graph_errors_name_the_files),
		cmocka_unit_test(empty_project_has_no_heads),
		cmocka_unit_test(big_linear_graph_builds),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
