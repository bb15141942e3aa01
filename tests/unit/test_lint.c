/* test_lint.c - each lint rule fires on a bad statement and stays silent
 * on its safe rewrite; statements are attributed to alembic's revisions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dgm/cli.h"
#include "dgm/lint.h"

/* How many findings of rule the SQL gets. */
static size_t count(const char *sql, const char *rule)
{
	dgm_lint_result r = { 0 };
	dgm_error e = DGM_ERROR_INIT;
	size_t n = 0;

	assert_non_null(dgm_lint_rule_find(rule));
	if (dgm_lint_sql(&r, sql, NULL, &e))
		fail_msg("lint failed: %s", e.msg);
	for (size_t i = 0; i < r.count; i++)
		n += !strcmp(r.items[i].rule->name, rule);
	dgm_lint_result_free(&r);
	return n;
}

#define FIRES(sql, rule) assert_int_equal(count(sql, rule), 1)
#define SILENT(sql, rule) assert_int_equal(count(sql, rule), 0)

/* What alembic prints around a revision in transactional mode. */
#define TX(body) "BEGIN;\n\n-- Running upgrade a1 -> b2\n\n" body \
	"\nUPDATE alembic_version SET version_num='b2' WHERE alembic_version.version_num = 'a1';\n\nCOMMIT;\n"

static void add_index(void **state)
{
	FIRES(TX("CREATE INDEX ix_invoices_customer_id ON invoices (customer_id);"),
	      "add-index-non-concurrent");
	FIRES(TX("CREATE UNIQUE INDEX ix_users_email ON public.users (lower(email));"),
	      "add-index-non-concurrent");
	/* the autocommit block: COMMIT, the statement, BEGIN */
	SILENT(TX("COMMIT;\nCREATE INDEX CONCURRENTLY ix_invoices_customer_id ON invoices "
		  "(customer_id);\nBEGIN;"), "add-index-non-concurrent");
	/* a table created in the same release is empty and unused */
	SILENT(TX("CREATE TABLE predictive_models (id SERIAL NOT NULL, organization_id INTEGER, "
		  "PRIMARY KEY (id));\nCREATE INDEX ix_pm_org ON predictive_models "
		  "(organization_id);"), "add-index-non-concurrent");
}

static void drop_index(void **state)
{
	FIRES(TX("DROP INDEX ix_invoices_customer_id;"), "drop-index-non-concurrent");
	FIRES(TX("DROP INDEX IF EXISTS public.ix_old;"), "drop-index-non-concurrent");
	SILENT("DROP INDEX CONCURRENTLY ix_invoices_customer_id;", "drop-index-non-concurrent");
	SILENT(TX("CREATE INDEX ix_tmp ON invoices (a);\nDROP INDEX ix_tmp;"),
	       "drop-index-non-concurrent");
}

static void concurrently_in_transaction(void **state)
{
	FIRES(TX("CREATE INDEX CONCURRENTLY ix_a ON invoices (a);"), "concurrently-in-transaction");
	FIRES(TX("DROP INDEX CONCURRENTLY ix_a;"), "concurrently-in-transaction");
	FIRES(TX("REINDEX INDEX CONCURRENTLY ix_a;"), "concurrently-in-transaction");
	SILENT(TX("COMMIT;\nCREATE INDEX CONCURRENTLY ix_a ON invoices (a);\nBEGIN;"),
	       "concurrently-in-transaction");
	/* non-transactional mode: no BEGIN at all */
	SILENT("-- Running upgrade a1 -> b2\nCREATE INDEX CONCURRENTLY ix_a ON invoices (a);",
	       "concurrently-in-transaction");
}

static void volatile_default(void **state)
{
	FIRES(TX("ALTER TABLE invoices ADD COLUMN uid UUID DEFAULT gen_random_uuid() NOT NULL;"),
	      "add-column-volatile-default");
	FIRES(TX("ALTER TABLE invoices ADD COLUMN seen TIMESTAMP DEFAULT clock_timestamp();"),
	      "add-column-volatile-default");
	FIRES(TX("ALTER TABLE invoices ADD COLUMN n BIGSERIAL;"), "add-column-volatile-default");
	FIRES(TX("ALTER TABLE invoices ADD COLUMN r FLOAT DEFAULT (random() * 10);"),
	      "add-column-volatile-default");
	/* constant and stable defaults are stored in the catalog, no rewrite */
	SILENT(TX("ALTER TABLE invoices ADD COLUMN created_at TIMESTAMP DEFAULT now() NOT NULL;"),
	       "add-column-volatile-default");
	SILENT(TX("ALTER TABLE invoices ADD COLUMN status VARCHAR(20) DEFAULT 'new';"),
	       "add-column-volatile-default");
}

static void not_null_without_default(void **state)
{
	FIRES(TX("ALTER TABLE invoices ADD COLUMN currency VARCHAR(3) NOT NULL;"),
	      "add-column-not-null-no-default");
	FIRES(TX("ALTER TABLE users ADD COLUMN tenant_id INTEGER NOT NULL;"),
	      "add-column-not-null-no-default");
	SILENT(TX("ALTER TABLE invoices ADD COLUMN currency VARCHAR(3) DEFAULT 'EUR' NOT NULL;"),
	       "add-column-not-null-no-default");
	SILENT(TX("ALTER TABLE invoices ADD COLUMN currency VARCHAR(3);"),
	       "add-column-not-null-no-default");
}

static void column_type(void **state)
{
	dgm_lint_result r = { 0 };
	dgm_error e = DGM_ERROR_INIT;

	FIRES(TX("ALTER TABLE invoices ALTER COLUMN amount TYPE NUMERIC(12, 2);"),
	      "alter-column-type");
	FIRES(TX("ALTER TABLE invoices ALTER COLUMN id TYPE BIGINT;"), "alter-column-type");
	SILENT(TX("CREATE TABLE t (id INTEGER);\nALTER TABLE t ALTER COLUMN id TYPE BIGINT;"),
	       "alter-column-type");
	/* to varchar or text: only a notice, which says when it rewrites */
	assert_int_equal(dgm_lint_sql(&r, TX("ALTER TABLE invoices ALTER COLUMN note TYPE "
					     "VARCHAR(500);"), NULL, &e), 0);
	assert_int_equal(r.count, 1);
	assert_int_equal(r.items[0].severity, DGM_LINT_NOTICE);
	assert_non_null(strstr(r.items[0].detail, "no rewrite if it was a varchar"));
	dgm_lint_result_free(&r);
}

static void set_not_null(void **state)
{
	FIRES(TX("ALTER TABLE invoices ALTER COLUMN currency SET NOT NULL;"), "set-not-null");
	/* a check that is never validated proves nothing */
	FIRES(TX("ALTER TABLE invoices ADD CONSTRAINT c CHECK (currency IS NOT NULL) NOT VALID;\n"
		 "ALTER TABLE invoices ALTER COLUMN currency SET NOT NULL;"), "set-not-null");
	SILENT(TX("ALTER TABLE invoices ADD CONSTRAINT c CHECK (currency IS NOT NULL) NOT VALID;\n"
		  "COMMIT;\nBEGIN;\nALTER TABLE invoices VALIDATE CONSTRAINT c;\n"
		  "ALTER TABLE invoices ALTER COLUMN currency SET NOT NULL;"), "set-not-null");
	SILENT(TX("CREATE TABLE t (a INT);\nALTER TABLE t ALTER COLUMN a SET NOT NULL;"),
	       "set-not-null");
}

static void not_valid(void **state)
{
	FIRES(TX("ALTER TABLE invoices ADD CONSTRAINT fk_customer FOREIGN KEY(customer_id) "
		 "REFERENCES customers (id);"), "add-foreign-key-validated");
	FIRES(TX("ALTER TABLE invoices ADD CONSTRAINT amount_positive CHECK (amount > 0);"),
	      "add-check-validated");
	SILENT(TX("ALTER TABLE invoices ADD CONSTRAINT fk_customer FOREIGN KEY(customer_id) "
		  "REFERENCES customers (id) NOT VALID;"), "add-foreign-key-validated");
	SILENT(TX("ALTER TABLE invoices ADD CONSTRAINT amount_positive CHECK (amount > 0) "
		  "NOT VALID;"), "add-check-validated");
	/* on a table of this release (alembic's create_foreign_key after create_table) */
	SILENT(TX("CREATE TABLE lines (id INT, invoice_id INT);\nALTER TABLE lines ADD "
		  "CONSTRAINT fk FOREIGN KEY(invoice_id) REFERENCES invoices (id);"),
	       "add-foreign-key-validated");
}

static void unique_using_index(void **state)
{
	FIRES(TX("ALTER TABLE users ADD CONSTRAINT uq_users_email UNIQUE (email);"),
	      "add-unique-without-index");
	FIRES(TX("ALTER TABLE users ADD PRIMARY KEY (id);"), "add-unique-without-index");
	SILENT(TX("ALTER TABLE users ADD CONSTRAINT uq_users_email UNIQUE USING INDEX ix_email;"),
	       "add-unique-without-index");
	SILENT(TX("ALTER TABLE users ADD CONSTRAINT users_pkey PRIMARY KEY USING INDEX ix_id;"),
	       "add-unique-without-index");
}

static void renames_and_drops(void **state)
{
	FIRES(TX("ALTER TABLE users RENAME COLUMN name TO full_name;"), "rename-column");
	FIRES(TX("ALTER TABLE users RENAME TO accounts;"), "rename-table");
	FIRES(TX("ALTER TABLE users DROP COLUMN legacy_flag;"), "drop-column");
	FIRES(TX("DROP TABLE old_reports;"), "drop-table");
	SILENT(TX("CREATE TABLE tmp (a INT);\nALTER TABLE tmp RENAME COLUMN a TO b;"),
	       "rename-column");
	SILENT(TX("CREATE TABLE tmp (a INT);\nDROP TABLE tmp;"), "drop-table");
	SILENT(TX("ALTER TABLE users ADD COLUMN full_name VARCHAR;"), "rename-column");
}

static void maintenance(void **state)
{
	FIRES(TX("VACUUM FULL invoices;"), "vacuum-full");
	FIRES(TX("CLUSTER invoices USING ix_invoices_date;"), "cluster");
	FIRES(TX("REINDEX TABLE invoices;"), "reindex-non-concurrent");
	FIRES(TX("LOCK TABLE invoices IN ACCESS EXCLUSIVE MODE;"), "lock-table");
	SILENT(TX("VACUUM (ANALYZE) invoices;"), "vacuum-full");
	SILENT("REINDEX TABLE CONCURRENTLY invoices;", "reindex-non-concurrent");
}

static void whole_table_dml(void **state)
{
	FIRES(TX("UPDATE invoices SET currency='EUR';"), "update-whole-table");
	FIRES(TX("DELETE FROM audit_log;"), "delete-whole-table");
	SILENT(TX("UPDATE invoices SET currency='EUR' WHERE id BETWEEN 1 AND 10000;"),
	       "update-whole-table");
	SILENT(TX("DELETE FROM audit_log WHERE created_at < now() - interval '90 days';"),
	       "delete-whole-table");
	/* alembic's own bookkeeping is not flagged */
	SILENT("BEGIN;\nDELETE FROM alembic_version;\nCOMMIT;", "delete-whole-table");
}

static void enum_and_truncate(void **state)
{
	FIRES(TX("ALTER TYPE invoice_status ADD VALUE 'refunded';"), "enum-add-value-in-transaction");
	SILENT(TX("COMMIT;\nALTER TYPE invoice_status ADD VALUE 'refunded';\nBEGIN;"),
	       "enum-add-value-in-transaction");
	FIRES(TX("TRUNCATE invoices CASCADE;"), "truncate-cascade");
	SILENT(TX("TRUNCATE invoices;"), "truncate-cascade");
}

/* Each finding carries its revision, its line and the statement's first
 * line, also where a revision is a merge or starts from base. */
static void revisions_and_lines(void **state)
{
	const char *sql = "BEGIN;\n\nCREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL);\n"
			  "\n-- Running upgrade  -> aaaa\n\nCREATE INDEX ix1 ON t1 (a);\n"
			  "\nINSERT INTO alembic_version (version_num) VALUES ('aaaa');\n"
			  "\n-- Running upgrade aaaa, bbbb -> cccc\n\nALTER TABLE t2\n    ADD COLUMN x INT NOT NULL;\n"
			  "\nCOMMIT;\n";
	dgm_lint_result r = { 0 };
	dgm_error e = DGM_ERROR_INIT;

	assert_int_equal(dgm_lint_sql(&r, sql, NULL, &e), 0);
	assert_int_equal(r.count, 2);
	assert_string_equal(r.items[0].revision, "aaaa");
	assert_int_equal(r.items[0].line, 7);
	assert_string_equal(r.items[0].stmt, "CREATE INDEX ix1 ON t1 (a)");
	assert_string_equal(r.items[0].table, "t1");
	assert_true(r.items[0].in_transaction);
	assert_string_equal(r.items[1].revision, "cccc");
	assert_int_equal(r.items[1].line, 13);
	assert_string_equal(r.items[1].stmt, "ALTER TABLE t2");
	assert_int_equal(r.statements, 6);
	dgm_lint_result_free(&r);

	/* the downgrade's marks name the revision undone */
	assert_int_equal(dgm_lint_sql(&r, "-- Running downgrade cccc -> aaaa\n\nDROP TABLE t9;\n",
				      NULL, &e), 0);
	assert_string_equal(r.items[0].revision, "cccc");
	dgm_lint_result_free(&r);
}

/* A downgrade that drops what the release's upgrade created breaks
 * nothing; one that drops what was there before does. */
static void downgrade_knows_what_the_upgrade_created(void **state)
{
	dgm_lint_result up = { 0 }, down = { 0 };
	dgm_error e = DGM_ERROR_INIT;

	assert_int_equal(dgm_lint_sql(&up, TX("CREATE TABLE predictive_models (id INT);\n"
					      "ALTER TABLE users ADD COLUMN ml_role VARCHAR(20);\n"
					      "CREATE INDEX ix_users_ml_role ON users (ml_role);"),
				      NULL, &e), 0);
	assert_int_equal(up.count, 1);  /* the index on users */
	assert_int_equal(dgm_lint_sql(&down, "BEGIN;\n-- Running downgrade b2 -> a1\n"
				      "DROP INDEX ix_users_ml_role;\nALTER TABLE users DROP COLUMN "
				      "ml_role;\nDROP TABLE predictive_models;\nALTER TABLE users "
				      "DROP COLUMN email;\nCOMMIT;\n", &up, &e), 0);
	assert_int_equal(down.count, 1);
	assert_string_equal(down.items[0].rule->name, "drop-column");
	assert_string_equal(down.items[0].detail, "column 'email'");
	assert_string_equal(down.items[0].revision, "b2");
	dgm_lint_result_free(&up);
	dgm_lint_result_free(&down);
}

static void allow_comment_in_the_revision_file(void **state)
{
	const char *py = "revision: str = \"f3b9d6a1e842\"\n\n"
			 "# dgmigrate: allow add-index-non-concurrent -- invoices is small\n"
			 "#dgmigrate:allow drop-column\n"
			 "def upgrade() -> None:\n    op.create_index('ix', 'invoices', ['a'])\n";
	char *why;

	why = dgm_lint_allowed(py, "add-index-non-concurrent");
	assert_string_equal(why, "invoices is small");
	free(why);
	why = dgm_lint_allowed(py, "drop-column");
	assert_string_equal(why, "");
	free(why);
	/* a prefix of a rule name is not the rule; code is not a comment */
	assert_null(dgm_lint_allowed(py, "add-index"));
	assert_null(dgm_lint_allowed("x = 1  # dgmigrate allow drop-table\n", "drop-table"));
	assert_null(dgm_lint_allowed(py, "drop-table"));
}

static void help_names_every_rule(void **state)
{
	const dgm_cmd *lint = NULL;
	const dgm_lint_rule *r;
	size_t n;

	for (const dgm_cmd *c = dgm_commands; c->name; c++)
		if (!strcmp(c->name, "lint"))
			lint = c;
	assert_non_null(lint);
	r = dgm_lint_rules(&n);
	for (size_t i = 0; i < n; i++)
		if (!strstr(lint->description, r[i].name))
			fail_msg("'dgmigrate lint --help' does not name rule '%s'", r[i].name);
}

static void parse_error_names_the_line(void **state)
{
	dgm_lint_result r = { 0 };
	dgm_error e = DGM_ERROR_INIT;

	assert_int_equal(dgm_lint_sql(&r, "BEGIN;\nSELECT 1;\nCREAT TABLE x (a int);\n", NULL, &e), -1);
	assert_non_null(strstr(e.msg, "line 3"));
	dgm_lint_result_free(&r);
	dgm_error_clear(&e);
}

static void grading_by_size(void **state)
{
	dgm_lint_finding f = { 0 };

	f.rule = dgm_lint_rule_find("add-index-non-concurrent");
	f.severity = f.rule->severity;
	f.table_bytes = 2LL << 30;
	dgm_lint_grade(&f, 1LL << 30);
	assert_int_equal(f.severity, DGM_LINT_ERROR);
	f.severity = f.rule->severity;
	f.table_bytes = 8192;
	f.table_empty = true;
	dgm_lint_grade(&f, 1LL << 30);
	assert_int_equal(f.severity, DGM_LINT_NOTICE);
	/* a drop breaks the running app whatever the size */
	f.rule = dgm_lint_rule_find("drop-column");
	f.severity = f.rule->severity;
	dgm_lint_grade(&f, 1LL << 30);
	assert_int_equal(f.severity, DGM_LINT_ERROR);
}

static void every_rule_is_documented(void **state)
{
	size_t n;
	const dgm_lint_rule *r = dgm_lint_rules(&n);

	assert_true(n >= 21);
	for (size_t i = 0; i < n; i++) {
		assert_non_null(r[i].why);
		assert_non_null(r[i].fix);
		assert_ptr_equal(dgm_lint_rule_find(r[i].name), &r[i]);
	}
}

/* A revision file as autogenerate and people write them. */
static const char revfile[] =
	"\"\"\"add due dates\n\nRevision ID: b2\n\"\"\"\n"          /* 1-4 */
	"from alembic import op\nimport sqlalchemy as sa\n\n"               /* 5-7 */
	"def upgrade() -> None:\n"                                         /* 8 */
	"    op.add_column('invoices', sa.Column('due', sa.Date()))\n"      /* 9 */
	"    op.create_index(\n"                                           /* 10 */
	"        'ix_invoices_due',\n"                                     /* 11 */
	"        'invoices',\n"                                            /* 12 */
	"        ['due'],\n    )\n"                                        /* 13-14 */
	"    op.create_index('ix_users_email', 'users', ['email'])\n"      /* 15 */
	"    op.execute(\"UPDATE invoices SET due = issued + 30\")\n"      /* 16 */
	"    with op.batch_alter_table('users') as batch_op:\n"            /* 17 */
	"        batch_op.alter_column('email', type_=sa.Text())\n"        /* 18 */
	"\n\ndef downgrade() -> None:\n"                                   /* 19-21 */
	"    op.drop_index('ix_invoices_due', table_name='invoices')\n"    /* 22 */
	"    op.drop_column('invoices', 'due')\n";                          /* 23 */

static int source_line(const char *rule, const char *table, const char *detail,
		       const char *func)
{
	dgm_lint_finding f = { 0 };

	/* the statement's first word: what an op.execute must say */
	f.stmt = !strncmp(rule, "update", 6) ? "UPDATE invoices SET due = issued + 30" :
		 !strncmp(rule, "add-index", 9) ? "CREATE INDEX ..." :
		 !strncmp(rule, "drop-index", 10) ? "DROP INDEX ..." : "ALTER TABLE ...";
	f.rule = dgm_lint_rule_find(rule);
	assert_non_null(f.rule);
	f.table = (char *)table;
	f.detail = (char *)detail;
	return dgm_lint_source_line(revfile, func, &f);
}

static void finding_points_to_the_call_in_the_revision_file(void **state)
{
	/* the call that makes the statement, over several lines: its first */
	assert_int_equal(source_line("add-index-non-concurrent", "invoices",
				     "index 'ix_invoices_due'", "upgrade"), 10);
	/* the same call on another table is another finding's */
	assert_int_equal(source_line("add-index-non-concurrent", "users", "index 'ix_users_email'",
				     "upgrade"), 15);
	assert_int_equal(source_line("update-whole-table", "invoices", NULL, "upgrade"), 16);
	/* batch operations, schema-qualified tables */
	assert_int_equal(source_line("alter-column-type", "public.users", "column 'email' to text",
				     "upgrade"), 18);
	/* the downgrade's statements come from downgrade() */
	assert_int_equal(source_line("drop-index-non-concurrent", NULL, "index 'ix_invoices_due'",
				     "downgrade"), 22);
	assert_int_equal(source_line("drop-column", "invoices", "column 'due'", "downgrade"), 23);
	/* nothing names it, or no such function: the file, not a line */
	assert_int_equal(source_line("drop-table", "orders", NULL, "upgrade"), 0);
	/* an op.execute that names the table yet runs another statement */
	assert_int_equal(source_line("drop-column", "invoices", "column 'due'", "upgrade"), 0);
	assert_int_equal(dgm_lint_source_line("x = 1\n", "upgrade",
					      &(dgm_lint_finding){ .rule = dgm_lint_rule_find("cluster") }), 0);
}

/* The template's id migration: two op.execute calls update the same
 * table; each finding points to its own (the full-stack FastAPI
 * template's d98dd8ec85a3 pointed both to the first). */
static void two_updates_of_one_table_point_to_their_own_calls(void **state)
{
	static const char text[] =
		"def upgrade():\n"                                                          /* 1 */
		"    op.execute('UPDATE \"user\" SET new_id = uuid_generate_v4()')\n"       /* 2 */
		"    op.execute('UPDATE item SET new_id = uuid_generate_v4()')\n"           /* 3 */
		"    op.execute('UPDATE item SET new_owner_id = (SELECT new_id FROM \"user\" "
		"WHERE \"user\".id = item.owner_id)')\n";                                 /* 4 */
	dgm_lint_finding f = { .rule = dgm_lint_rule_find("update-whole-table"), .table = "item" };

	f.stmt = "UPDATE item SET new_owner_id = (SELECT new_id FROM \"user\" WHERE \"user\".id = "
		 "item.owner_id)";
	assert_int_equal(dgm_lint_source_line(text, "upgrade", &f), 4);
	f.stmt = "UPDATE item SET new_id = uuid_generate_v4()";
	assert_int_equal(dgm_lint_source_line(text, "upgrade", &f), 3);
	f.table = "user";
	f.stmt = "UPDATE \"user\" SET new_id = uuid_generate_v4()";
	assert_int_equal(dgm_lint_source_line(text, "upgrade", &f), 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(add_index),
		cmocka_unit_test(drop_index),
		cmocka_unit_test(concurrently_in_transaction),
		cmocka_unit_test(volatile_default),
		cmocka_unit_test(not_null_without_default),
		cmocka_unit_test(column_type),
		cmocka_unit_test(set_not_null),
		cmocka_unit_test(not_valid),
		cmocka_unit_test(unique_using_index),
		cmocka_unit_test(renames_and_drops),
		cmocka_unit_test(maintenance),
		cmocka_unit_test(whole_table_dml),
		cmocka_unit_test(enum_and_truncate),
		cmocka_unit_test(revisions_and_lines),
		cmocka_unit_test(downgrade_knows_what_the_upgrade_created),
		cmocka_unit_test(allow_comment_in_the_revision_file),
		cmocka_unit_test(help_names_every_rule),
		cmocka_unit_test(parse_error_names_the_line),
		cmocka_unit_test(grading_by_size),
		cmocka_unit_test(every_rule_is_documented),
		cmocka_unit_test(finding_points_to_the_call_in_the_revision_file),
		cmocka_unit_test(two_updates_of_one_table_point_to_their_own_calls),
	};

	return cmocka_run_group_tests_name("lint", tests, NULL, NULL);
}
