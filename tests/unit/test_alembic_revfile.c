/* test_alembic_revfile.c - reading revision files as text: every
 * assignment form real projects use, docstrings that must not be
 * trusted, and the errors that name file and line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "dgm/buf.h"

#include "dgm/alembic.h"

static dgm_alembic_revfile parse_ok(const char *path, const char *text)
{
	dgm_alembic_revfile rf;
	dgm_error err = DGM_ERROR_INIT;

	if (dgm_alembic_revfile_parse(&rf, path, text, strlen(text), &err) != 0)
		fail_msg("%s: %s", path, err.msg);
	return rf;
}

static void parse_fails(const char *path, const char *text, const char *expect)
{
	dgm_alembic_revfile rf;
	dgm_error err = DGM_ERROR_INIT;

	assert_int_equal(dgm_alembic_revfile_parse(&rf, path, text, strlen(text), &err), -1);
	if (!strstr(err.msg, expect))
		fail_msg("expected '%s' in '%s'", expect, err.msg);
	assert_int_equal(err.code, DGM_E_ALEMBIC);
}

static void classic_template_is_read(void **state)
{
	dgm_alembic_revfile rf = parse_ok("v/ae1027a6acf_add_users.py",
		"\"\"\"add users\n"
		"\n"
		"Revision ID: ae1027a6acf\n"
		"Revises: 1975ea83b712\n"
		"Create Date: 2024-01-01 10:00:00\n"
		"\n"
		"\"\"\"\n"
		"from alembic import op\n"
		"import sqlalchemy as sa\n"
		"\n"
		"# revision identifiers, used by Alembic.\n"
		"revision = 'ae1027a6acf'\n"
		"down_revision = '1975ea83b712'\n"
		"branch_labels = None\n"
		"depends_on = None\n"
		"\n"
		"\n"
		"def upgrade():\n"
		"    revision = 'inner'  # a local: not the module's\n"
		"    op.execute(\"SELECT 1\")\n");

	assert_string_equal(rf.revision, "ae1027a6acf");
	assert_int_equal(rf.revision_line, 12);
	assert_true(rf.has_down);
	assert_int_equal(rf.ndown, 1);
	assert_string_equal(rf.down[0], "1975ea83b712");
	assert_int_equal(rf.down_line, 13);
	assert_int_equal(rf.nlabels, 0);
	assert_int_equal(rf.ndepends, 0);
	assert_string_equal(rf.doc, "add users");
	dgm_alembic_revfile_free(&rf);
}

static void annotated_assignments_are_read(void **state)
{
	dgm_alembic_revfile rf = parse_ok("x.py",
		"\"\"\"merge heads\"\"\"\n"
		"from typing import Sequence, Union\n"
		"\n"
		"revision: str = \"ab12cd34\"\n"
		"down_revision: Union[str, Sequence[str], None] = (\"a1b2c3d4\", \"e5f6a7b8\")\n"
		"branch_labels: Union[str, Sequence[str], None] = None\n"
		"depends_on: Union[str, Sequence[str], None] = \"f0f0f0f0\"\n");

	assert_string_equal(rf.revision, "ab12cd34");
	assert_int_equal(rf.ndown, 2);
	assert_string_equal(rf.down[0], "a1b2c3d4");
	assert_string_equal(rf.down[1], "e5f6a7b8");
	assert_int_equal(rf.ndepends, 1);
	assert_string_equal(rf.depends[0], "f0f0f0f0");
	assert_string_equal(rf.doc, "merge heads");
	dgm_alembic_revfile_free(&rf);
}

static void every_quote_style_is_read(void **state)
{
	dgm_alembic_revfile rf = parse_ok("x.py",
		"revision = '''abcd1234'''\n"
		"down_revision = \"\"\"beef0001\"\"\"\n"
		"branch_labels = r'lbl'\n"
		"depends_on = u\"dep00001\"\n");

	assert_string_equal(rf.revision, "abcd1234");
	assert_string_equal(rf.down[0], "beef0001");
	assert_string_equal(rf.labels[0], "lbl");
	assert_string_equal(rf.depends[0], "dep00001");
	dgm_alembic_revfile_free(&rf);
}

static void tuples_and_lists_over_lines_are_read(void **state)
{
	dgm_alembic_revfile rf = parse_ok("x.py",
		"revision = 'm3rg3000'\n"
		"down_revision = (\n"
		"    'aaaa0001',  # first parent\n"
		"    # a comment between items\n"
		"    \"bbbb0002\",\n"
		")\n"
		"branch_labels = ['one', \"two\",]\n"
		"depends_on = ('cccc0003',)\n");

	assert_int_equal(rf.ndown, 2);
	assert_string_equal(rf.down[1], "bbbb0002");
	assert_int_equal(rf.nlabels, 2);
	assert_string_equal(rf.labels[1], "two");
	assert_int_equal(rf.ndepends, 1);
	assert_int_equal(rf.depends_line, 8);
	dgm_alembic_revfile_free(&rf);
}

static void none_empty_tuple_and_empty_string_mean_base(void **state)
{
	const char *forms[] = {
		"revision = 'base0001'\ndown_revision = None\n",
		"revision = 'base0001'\ndown_revision = ()\n",
		"revision = 'base0001'\ndown_revision = ''\n",
		"revision = 'base0001'\ndown_revision = (None)\n",
		"revision = 'base0001'\ndown_revision: Optional[str] = None\n",
	};

	for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
		dgm_alembic_revfile rf = parse_ok("x.py", forms[i]);

		assert_true(rf.has_down);
		assert_int_equal(rf.ndown, 0);
		dgm_alembic_revfile_free(&rf);
	}
}

static void docstring_is_not_code(void **state)
{
	dgm_alembic_revfile rf = parse_ok("x.py",
		"'''Add the table\n"
		"\n"
		"Revision ID: zzzz9999\n"
		"Revises: yyyy8888\n"
		"revision = 'zzzz9999'\n"
		"down_revision = 'yyyy8888'\n"
		"'''\n"
		"s = \"\"\"\n"
		"revision = 'inside a string'\n"
		"\"\"\"\n"
		"revision = 'real0001'\n"
		"down_revision = 'real0000'\n");

	assert_string_equal(rf.revision, "real0001");
	assert_string_equal(rf.down[0], "real0000");
	assert_int_equal(rf.revision_line, 11);
	assert_string_equal(rf.doc, "Add the table");
	dgm_alembic_revfile_free(&rf);
}

static void message_is_the_first_paragraph(void **state)
{
	dgm_alembic_revfile rf = parse_ok("x.py",
		"#!/usr/bin/env python\n"
		"# -*- coding: utf-8 -*-\n"
		"\n"
		"\"\"\"\n   Add a\n   long \\\"thing\\\"\n\nRevision ID: x\n\"\"\"\n"
		"revision = 'abcd0001'\ndown_revision = None\n");

	assert_string_equal(rf.doc, "Add a\n   long \"thing\"");
	dgm_alembic_revfile_free(&rf);

	rf = parse_ok("x.py", "import os\n\"\"\"not a docstring\"\"\"\n"
		      "revision = 'abcd0001'\ndown_revision = None\n");
	assert_string_equal(rf.doc, "");
	dgm_alembic_revfile_free(&rf);
}

static void last_assignment_wins_and_odd_forms_work(void **state)
{
	dgm_alembic_revfile rf = parse_ok("x.py",
		"revision = 'old00000'\n"
		"down_revision = None  # replaced below\n"
		"if False:\n"
		"    revision = 'never000'\n"
		"revision = 'ab' \"cd\" '1234'\n"
		"down_revision = \\\n"
		"    'parent01'\n"
		"branch_labels = depends_on = None\n"
		"x = 1; depends_on = 'dep00001'; y = 2\n"
		"def f(revision='nope'): pass\n"
		"class C:\n"
		"    revision = 'class000'\n");

	assert_string_equal(rf.revision, "abcd1234");
	assert_int_equal(rf.revision_line, 5);
	assert_string_equal(rf.down[0], "parent01");
	assert_int_equal(rf.nlabels, 0);
	assert_int_equal(rf.ndepends, 1);
	assert_string_equal(rf.depends[0], "dep00001");
	dgm_alembic_revfile_free(&rf);
}

static void crlf_bom_and_escapes_are_handled(void **state)
{
	dgm_alembic_revfile rf = parse_ok("x.py",
		"\xEF\xBB\xBF\"\"\"Tab\\there\r\n\r\nmore\"\"\"\r\n"
		"revision = \"ab\\x63d0001\"\r\n"
		"down_revision = (\r\n  'a0000001',\r\n  'b0000002'\r\n)\r\n");

	assert_string_equal(rf.revision, "abcd0001");
	assert_string_equal(rf.doc, "Tab\there");
	assert_int_equal(rf.ndown, 2);
	assert_int_equal(rf.down_line, 5);
	dgm_alembic_revfile_free(&rf);
}

static void legacy_file_name_gives_the_id(void **state)
{
	dgm_alembic_revfile rf = parse_ok("versions/1975ea83b712.py", "down_revision = None\n");

	assert_string_equal(rf.revision, "1975ea83b712");
	assert_true(rf.revision_from_name);
	dgm_alembic_revfile_free(&rf);
	parse_fails("versions/add_users.py", "down_revision = None\n",
		    "could not determine revision id from filename");
}

static void errors_name_file_and_line(void **state)
{
	parse_fails("v/a.py", "revision = 'abc1'\ndown_revision = compute()\n",
		    "v/a.py:2: the value of 'down_revision' is not a literal");
	parse_fails("v/a.py", "revision = f'abc{1}'\ndown_revision = None\n",
		    "v/a.py:1: the value of 'revision' is not a literal");
	parse_fails("v/a.py", "revision = ('a', 'b')\ndown_revision = None\n",
		    "v/a.py:1: 'revision' must be a string");
	parse_fails("v/a.py", "revision = 'abc1'\n", "v/a.py: no 'down_revision'");
	parse_fails("v/a.py", "revision = 'abc-1'\ndown_revision = None\n",
		    "v/a.py:1: revision identifier 'abc-1'");
	parse_fails("v/a.py", "revision = 'abc1'\ndown_revision = ('x', 'abc1')\n",
		    "v/a.py:2: self-loop is detected in revisions (abc1)");
	parse_fails("v/a.py", "revision = 'abc1'\ndown_revision = None\ndepends_on = 'abc1'\n",
		    "v/a.py:3: dependency self-loop");
	parse_fails("v/a.py", "revision = 'abc1\ndown_revision = None\n",
		    "v/a.py:1: unterminated string");
	parse_fails("v/a.py", "\"\"\"doc\nrevision = 'abc1'\n", "v/a.py:1: unterminated string");
	parse_fails("v/a.py", "revision = 'abc1'\ndown_revision = (('a', 'b'),)\n",
		    "v/a.py:2: the value of 'down_revision' is not a literal");
	parse_fails("v/a.py", "revision = 'abc1'\ndown_revision = b'x'\n",
		    "not a literal");
}

static void a_non_literal_that_is_replaced_is_fine(void **state)
{
	dgm_alembic_revfile rf = parse_ok("x.py",
		"down_revision = os.environ['X']\n"
		"revision = 'abcd0001'\n"
		"down_revision = None\n");

	assert_int_equal(rf.ndown, 0);
	dgm_alembic_revfile_free(&rf);
}

/* "revision = ((...('a',)...))" nested LEVELS deep on line 3 */
static char *nested(size_t levels)
{
	dgm_buf b = DGM_BUF_INIT;

	dgm_buf_puts(&b, "\"\"\"deep\"\"\"\ndown_revision = None\nrevision = ");
	for (size_t i = 0; i < levels; i++)
		dgm_buf_putc(&b, '(');
	dgm_buf_puts(&b, "'abc1'");
	for (size_t i = 0; i < levels; i++)
		dgm_buf_putc(&b, ')');
	dgm_buf_puts(&b, "\n");
	return dgm_buf_detach(&b);
}

/* Python 3.11 compiles 200 nested brackets and refuses 201 ("too many
 * nested parentheses"); deeper files used to cost quadratic time and,
 * from about 60,000 levels, overflow the stack. */
static void bracket_nesting_is_bounded_as_in_python(void **state)
{
	char *text = nested(200);
	dgm_alembic_revfile rf = parse_ok("v/deep.py", text);

	assert_string_equal(rf.revision, "abc1");
	dgm_alembic_revfile_free(&rf);
	free(text);
	text = nested(201);
	parse_fails("v/deep.py", text, "v/deep.py:3: too many nested parentheses (more than 200");
	free(text);
	text = nested(1000000);
	parse_fails("v/deep.py", text, "v/deep.py:3: too many nested parentheses (more than 200");
	free(text);
	/* brackets that are never closed count as well */
	text = dgm_xasprintf("revision = 'a'\ndown_revision = None\nx = [%0*d", 300, 0);
	memset(strchr(text, '[') + 1, '{', 299);
	parse_fails("v/open.py", text, "v/open.py:3: too many nested parentheses");
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(classic_template_is_read),
		cmocka_unit_test(annotated_assignments_are_read),
		cmocka_unit_test(every_quote_style_is_read),
		cmocka_unit_test(tuples_and_lists_over_lines_are_read),
		cmocka_unit_test(none_empty_tuple_and_empty_string_mean_base),
		cmocka_unit_test(docstring_is_not_code),
		cmocka_unit_test(message_is_the_first_paragraph),
		cmocka_unit_test(last_assignment_wins_and_odd_forms_work),
		cmocka_unit_test(crlf_bom_and_escapes_are_handled),
		cmocka_unit_test(legacy_file_name_gives_the_id),
		cmocka_unit_test(errors_name_file_and_line),
		cmocka_unit_test(a_non_literal_that_is_replaced_is_fine),
		cmocka_unit_test(bracket_nesting_is_bounded_as_in_python),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
