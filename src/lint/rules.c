/* rules.c - the lint rules: name, severity, lock, cost, and the fix. The
 * README's rule table is written from this one. */
#include <string.h>

#include "dgm/lint.h"

#define AX "ACCESS EXCLUSIVE"
#define CONC_FIX "run it in an autocommit block: with op.get_context().autocommit_block(): " \
	"op.create_index(..., postgresql_concurrently=True)"

static const dgm_lint_rule rules[] = {
	{ "add-index-non-concurrent", DGM_LINT_WARNING, "SHARE", false, true, false,
	  "CREATE INDEX blocks every write to the table while the index is built",
	  "CREATE INDEX CONCURRENTLY; " CONC_FIX },
	{ "drop-index-non-concurrent", DGM_LINT_WARNING, AX, false, false, false,
	  "DROP INDEX waits for every query on the table, and blocks all of them meanwhile",
	  "DROP INDEX CONCURRENTLY in an autocommit block "
	  "(op.drop_index(..., postgresql_concurrently=True))" },
	{ "concurrently-in-transaction", DGM_LINT_ERROR, NULL, false, false, false,
	  "CONCURRENTLY cannot run inside a transaction block: the migration fails "
	  "(alembic wraps migrations in one unless told otherwise)",
	  CONC_FIX },
	{ "add-column-volatile-default", DGM_LINT_WARNING, AX, true, false, false,
	  "a volatile default (random(), gen_random_uuid(), clock_timestamp(), nextval(), "
	  "serial, identity, stored generated) rewrites the whole table under the strongest lock",
	  "add the column without a default (or with a constant one), then SET DEFAULT, "
	  "and backfill existing rows in batches" },
	{ "add-column-not-null-no-default", DGM_LINT_ERROR, AX, false, false, true,
	  "a NOT NULL column without a default fails on a table with rows, and the "
	  "running application's INSERTs do not set it",
	  "add it nullable or with a constant DEFAULT; backfill; then CHECK (col IS NOT NULL) "
	  "NOT VALID, VALIDATE CONSTRAINT, SET NOT NULL in a later release" },
	{ "alter-column-type", DGM_LINT_WARNING, AX, true, false, false,
	  "ALTER COLUMN TYPE rewrites the table and its indexes under the strongest lock "
	  "(not when it only widens a varchar or makes a varchar text)",
	  "add a new column, write both from the application, backfill in batches, "
	  "switch reads, drop the old column in a later release" },
	{ "set-not-null", DGM_LINT_WARNING, AX, false, true, false,
	  "SET NOT NULL reads the whole table under the strongest lock, unless a validated "
	  "CHECK (col IS NOT NULL) proves it first",
	  "ADD CONSTRAINT c CHECK (col IS NOT NULL) NOT VALID; VALIDATE CONSTRAINT c; "
	  "then SET NOT NULL (no scan); then drop the check" },
	{ "add-foreign-key-validated", DGM_LINT_WARNING, "SHARE ROW EXCLUSIVE", false, true, false,
	  "adding a foreign key checks every row while writes to both tables are blocked",
	  "ADD CONSTRAINT ... FOREIGN KEY ... NOT VALID, then VALIDATE CONSTRAINT in "
	  "another transaction (it takes only SHARE UPDATE EXCLUSIVE)" },
	{ "add-check-validated", DGM_LINT_WARNING, AX, false, true, false,
	  "adding a CHECK constraint reads every row under the strongest lock",
	  "ADD CONSTRAINT ... CHECK (...) NOT VALID, then VALIDATE CONSTRAINT in another "
	  "transaction" },
	{ "add-unique-without-index", DGM_LINT_WARNING, AX, false, true, false,
	  "adding UNIQUE or PRIMARY KEY builds its index under the strongest lock",
	  "CREATE UNIQUE INDEX CONCURRENTLY ix ...; then ADD CONSTRAINT ... UNIQUE "
	  "(or PRIMARY KEY) USING INDEX ix" },
	{ "rename-column", DGM_LINT_ERROR, AX, false, false, true,
	  "the application version still running reads and writes the old name",
	  "add the new column, write both, backfill, switch reads, drop the old one in a "
	  "later release (or keep the name in the ORM: Column(\"old_name\", ...))" },
	{ "rename-table", DGM_LINT_ERROR, AX, false, false, true,
	  "the application version still running uses the old name",
	  "create the new table or a view with the old name, move the application, "
	  "drop the old one in a later release" },
	{ "drop-column", DGM_LINT_ERROR, AX, false, false, true,
	  "destroys data, and the application version still running selects the column",
	  "stop using the column in one release (deferred/ignored in the ORM), drop it in "
	  "the next" },
	{ "drop-table", DGM_LINT_ERROR, AX, false, false, true,
	  "destroys data, and the application version still running uses the table",
	  "stop using the table in one release, drop it in the next (after a snapshot)" },
	{ "vacuum-full", DGM_LINT_ERROR, AX, true, false, false,
	  "VACUUM FULL rewrites the table under the strongest lock",
	  "plain VACUUM, or pg_repack outside the migration" },
	{ "cluster", DGM_LINT_ERROR, AX, true, false, false,
	  "CLUSTER rewrites the table under the strongest lock",
	  "leave physical order to a maintenance window, or pg_repack --order-by" },
	{ "reindex-non-concurrent", DGM_LINT_WARNING, AX, false, true, false,
	  "REINDEX blocks writes to the table (and reads through the index) while it rebuilds",
	  "REINDEX ... CONCURRENTLY in an autocommit block" },
	{ "lock-table", DGM_LINT_WARNING, AX, false, false, false,
	  "an explicit LOCK TABLE blocks the application until the migration's transaction ends",
	  "remove it; if ordering matters, keep the transaction short and set lock_timeout" },
	{ "update-whole-table", DGM_LINT_WARNING, "ROW EXCLUSIVE", false, true, false,
	  "an UPDATE without WHERE locks every row of the table until the migration's "
	  "transaction commits",
	  "backfill in batches (WHERE id BETWEEN ...) outside the schema migration's "
	  "transaction" },
	{ "delete-whole-table", DGM_LINT_WARNING, "ROW EXCLUSIVE", false, true, true,
	  "a DELETE without WHERE removes every row and locks them until commit",
	  "delete in batches with a WHERE clause, after a snapshot" },
	{ "enum-add-value-in-transaction", DGM_LINT_WARNING, AX, false, false, false,
	  "ALTER TYPE ... ADD VALUE inside a transaction: the new value cannot be used "
	  "before the transaction commits, so a later migration of the same run that uses it "
	  "fails",
	  "run it in an autocommit block (op.get_context().autocommit_block())" },
	{ "truncate-cascade", DGM_LINT_ERROR, AX, false, false, true,
	  "TRUNCATE ... CASCADE also empties every table with a foreign key to it",
	  "TRUNCATE the tables you mean, by name, without CASCADE" },
};

const dgm_lint_rule *dgm_lint_rules(size_t *n)
{
	*n = sizeof(rules) / sizeof(rules[0]);
	return rules;
}

const dgm_lint_rule *dgm_lint_rule_find(const char *name)
{
	for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++)
		if (!strcmp(rules[i].name, name))
			return &rules[i];
	return NULL;
}

const char *dgm_lint_severity_name(dgm_lint_severity s)
{
	static const char *const names[] = { "notice", "warning", "error", "never" };

	return s <= DGM_LINT_NEVER ? names[s] : "?";
}

void dgm_lint_grade(dgm_lint_finding *f, long long error_bytes)
{
	const dgm_lint_rule *r = f->rule;

	/* what breaks the running application does so whatever the size */
	if (r->breaks || !r->lock || f->table_bytes < 0)
		return;
	if (f->table_empty)
		f->severity = DGM_LINT_NOTICE;
	else if (f->table_bytes >= error_bytes)
		f->severity = DGM_LINT_ERROR;
}
