/*
 * lint.h - which statement of a release's migration SQL will lock or break
 * production: the SQL of `alembic upgrade A:B --sql` parsed by PostgreSQL's
 * own parser (libpg_query), each statement attributed to its revision and
 * checked against the rules below, then graded by the size of the table it
 * touches in the target database.
 */
#ifndef DGM_LINT_H
#define DGM_LINT_H

#include <stdbool.h>
#include <stddef.h>

#include "dgm/error.h"

/* Ordered: lint.fail_on compares against it. */
typedef enum dgm_lint_severity {
	DGM_LINT_NOTICE = 0,
	DGM_LINT_WARNING = 1,
	DGM_LINT_ERROR = 2,
	DGM_LINT_NEVER = 3           /* only as lint.fail_on: never fail */
} dgm_lint_severity;

typedef struct dgm_lint_rule {
	const char *name;            /* stable: lint.ignore and "# dgmigrate: allow" use it */
	dgm_lint_severity severity;  /* before grading by table size */
	const char *lock;            /* "ACCESS EXCLUSIVE", ...; NULL: no table lock */
	bool rewrites;               /* rewrites the table (and its indexes) */
	bool scans;                  /* reads the whole table under the lock */
	bool breaks;                 /* breaks the application version still running */
	const char *why;
	const char *fix;             /* the safer way to write it */
} dgm_lint_rule;

/* The rules, in a fixed order; *n gets their count. */
const dgm_lint_rule *dgm_lint_rules(size_t *n);
const dgm_lint_rule *dgm_lint_rule_find(const char *name);
const char *dgm_lint_severity_name(dgm_lint_severity s);

typedef struct dgm_lint_finding {
	const dgm_lint_rule *rule;
	dgm_lint_severity severity;  /* after grading */
	char *revision;              /* NULL: before any "-- Running ..." line */
	int line;                    /* 1-based, of the statement's first line in the SQL */
	int src_line;                /* of the call in the revision file it comes from; 0 unknown */
	char *stmt;                  /* the statement's first line */
	char *table;                 /* the table it locks ("schema.name" when qualified); may be NULL */
	char *detail;                /* what exactly, e.g. "column 'id' default gen_random_uuid()" */
	bool in_transaction;
	long long table_bytes;       /* pg_total_relation_size; -1 unknown */
	long long table_rows;        /* reltuples; -1 unknown */
	bool table_empty;            /* heap of 0 bytes */
	char *suppressed;            /* NULL, or why it is not counted ("lint.ignore", ...) */
} dgm_lint_finding;

typedef struct dgm_lint_result {
	dgm_lint_finding *items;
	size_t count, cap;
	size_t statements;           /* statements parsed */
	char **created;              /* tables, indexes and "table.column"s the SQL created */
	size_t ncreated;
} dgm_lint_result;

/* Lint the SQL that `alembic upgrade|downgrade A:B --sql` printed into
 * *out (zeroed by the caller). Tables, indexes and columns created earlier
 * in the same SQL - or, for a downgrade, by the release's upgrade (its
 * result in upgrade, else NULL) - are new in this release: rules on them
 * are not reported. A parse error is DGM_E_RUN with its line. */
int dgm_lint_sql(dgm_lint_result *out, const char *sql, const dgm_lint_result *upgrade,
		 dgm_error *err);
void dgm_lint_result_free(dgm_lint_result *r);

/* Grade one finding by its table's size: an empty table lowers a lock
 * or rewrite rule to a notice, one of error_bytes or more raises it to an
 * error. Rules that break the running application keep their severity. */
void dgm_lint_grade(dgm_lint_finding *f, long long error_bytes);

/* Fill table_bytes, table_rows and table_empty of each finding that names
 * a table, from the catalog of the database at url: read-only, under
 * lock_timeout lock_ms. A table it cannot size (not there, lock timeout)
 * keeps -1, with a warning. Fails only when the database cannot be
 * reached. */
int dgm_lint_size(dgm_lint_result *r, const char *url, long lock_ms, dgm_error *err);

/* The line (1-based) of the revision file text where f's statement comes
 * from: in the body of `def func(` ("upgrade" or "downgrade"), the op.*
 * call the rule's statement is made by (op.create_index for
 * add-index-non-concurrent, ...), or else an op.execute, that names f's
 * table and the names its detail quotes; the best fit. 0 when none does. */
int dgm_lint_source_line(const char *text, const char *func, const dgm_lint_finding *f);

/* The reason of a "# dgmigrate: allow RULE -- reason" line in a revision
 * file's text (malloc'd; "" when no reason is given), or NULL. */
char *dgm_lint_allowed(const char *text, const char *rule);

#endif
