/*
 * fingerprint.h - a database schema read from the catalogs as a sorted
 * list of items, so that two states of a database can be compared and
 * the difference said in words ("index ix_x still exists after
 * downgrade to 5e9f3b7a1c62").
 *
 * Items cover schemas, tables, columns (type, collation, nullability,
 * default, identity, generated), constraints (definition, validated),
 * indexes (definition, valid), sequences (parameters, owner column),
 * views, functions (signature, result, hash of the definition), enums,
 * domains and composite types, triggers, policies, extensions and
 * grants. Left out: PostgreSQL's own schemas, the `dgmigrate` schema,
 * objects that belong to an extension, and the Alembic version table
 * (which a downgrade to base legitimately leaves behind). Data is never
 * read: the fingerprint is about the schema only.
 *
 * Equal schemas compare equal: definitions are compared in a normal form
 * (see dgm_fingerprint_normalize), because PostgreSQL deparses some
 * expressions differently after a dump and restore than when they were
 * first created.
 */
#ifndef DGM_FINGERPRINT_H
#define DGM_FINGERPRINT_H

#include <stdbool.h>
#include <stddef.h>

#include <libpq-fe.h>

#include "dgm/buf.h"
#include "dgm/error.h"

/* One object. Names omit the schema when it is "public", as people
 * write them: "users.ml_role", "ix_invoices_due_date". */
typedef struct dgm_fp_item {
	char *kind;       /* "table", "column", "constraint", "index", ... */
	char *name;       /* unique within its kind */
	char *table;      /* the table it belongs to ("" when none) */
	char *detail;     /* the definition as PostgreSQL shows it */
	char *key;        /* detail in normal form: what comparisons use */
} dgm_fp_item;

typedef struct dgm_fingerprint {
	dgm_fp_item *items;   /* sorted by kind, then name (byte order) */
	size_t count;
	size_t cap;
	char sha256[65];      /* of every kind, name and key, once finished */
} dgm_fingerprint;

#define DGM_FINGERPRINT_INIT { NULL, 0, 0, "" }

/* Read the schema of conn's database. version_table (and version_schema,
 * NULL: any schema) name Alembic's table, which is left out. The
 * session's search_path is set to public for the duration, so that
 * definitions are deparsed the same way every time. */
int dgm_fingerprint_take(dgm_fingerprint *fp, PGconn *conn, const char *version_table,
			 const char *version_schema, dgm_error *err);

/* Build one by hand (tests, and dgm_fingerprint_take): add items in any
 * order, then finish (sorts, and computes the hash). */
void dgm_fingerprint_add(dgm_fingerprint *fp, const char *kind, const char *name,
			 const char *table, const char *detail);
void dgm_fingerprint_finish(dgm_fingerprint *fp);
void dgm_fingerprint_free(dgm_fingerprint *fp);

/* The item of this kind and name, or NULL. */
const dgm_fp_item *dgm_fingerprint_find(const dgm_fingerprint *fp, const char *kind,
					const char *name);

/* The normal form of a definition (malloc'd): whitespace runs become one
 * space, parentheses outside quoted literals and identifiers are dropped,
 * and a cast applied to a whole array literal is pushed into its
 * elements ("ARRAY['a'::varchar]::text[]" reads as
 * "ARRAY['a'::varchar::text]"), which is how PostgreSQL shows a CHECK
 * (x IN ('a', 'b')) on a varchar column once it has been dumped and
 * restored. Dropping parentheses could make two expressions that differ
 * only in grouping compare equal; a downgrade that changes nothing but
 * the grouping of a condition is not a case worth the false alarms. */
char *dgm_fingerprint_normalize(const char *def);

typedef enum dgm_fp_change {
	DGM_FP_ADDED,     /* in `after` only */
	DGM_FP_REMOVED,   /* in `before` only */
	DGM_FP_CHANGED    /* in both, with a different key */
} dgm_fp_change;

typedef struct dgm_fp_diff_item {
	dgm_fp_change change;
	const dgm_fp_item *before;  /* NULL for ADDED */
	const dgm_fp_item *after;   /* NULL for REMOVED */
} dgm_fp_diff_item;

typedef struct dgm_fp_diff {
	dgm_fp_diff_item *items;    /* in kind, name order; points into both */
	size_t count;
} dgm_fp_diff;

/* What changed from before to after. Both must be finished; the diff
 * points into them, so it must be freed first. */
void dgm_fingerprint_diff(dgm_fp_diff *out, const dgm_fingerprint *before,
			  const dgm_fingerprint *after);
void dgm_fp_diff_free(dgm_fp_diff *d);

/* One difference in words, appended to out. `when` says when after was
 * taken ("after downgrade to 5e9f3b7a1c62"):
 *   index ix_x still exists after downgrade to R
 *   column users.x is missing after downgrade to R
 *   constraint users.ck differs after downgrade to R: was '...', now '...'
 * Long definitions are shortened to about 160 bytes. */
void dgm_fp_diff_render(dgm_buf *out, const dgm_fp_diff_item *d, const char *when);

/* The name of the object as written in source code: the last part of the
 * item's name ("users.ml_role" -> "ml_role", "f(integer)" -> "f"),
 * without quotes. Empty for grants. malloc'd. */
char *dgm_fp_item_word(const dgm_fp_item *it);

#endif
