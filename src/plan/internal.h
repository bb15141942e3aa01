/*
 * internal.h - what the files of src/plan/ share and nobody else needs:
 * the small YAML node tree, ${VAR} expansion, key suggestions, paths.
 */
#ifndef DGM_PLAN_INTERNAL_H
#define DGM_PLAN_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "dgm/error.h"
#include "dgm/plan.h"

typedef enum dgm_ykind {
	DGM_Y_SCALAR,
	DGM_Y_MAP,
	DGM_Y_SEQ
} dgm_ykind;

/* One node of the document, with where it starts in the file. */
typedef struct dgm_ynode {
	dgm_ykind kind;
	int line;                  /* 1-based */
	int column;                /* 1-based, in characters */
	char *text;                /* scalar: as written, before expansion */
	bool plain;                /* scalar: unquoted (only plain can be null) */
	struct dgm_ynode **kids;   /* map: key, value, key, value...; seq: items */
	size_t n;                  /* number of kids (twice the pairs of a map) */
} dgm_ynode;

/* Read one YAML document into a tree. Syntax errors, an empty file, a
 * second document and aliases are DGM_E_PLAN errors "NAME:LINE:COL: ...". */
int dgm_plan_yparse(dgm_ynode **root, const char *name, const char *text, size_t len,
		    dgm_error *err);
void dgm_plan_ynode_free(dgm_ynode *n);
/* An unquoted empty, "~" or "null" scalar: a key without a value. */
bool dgm_plan_ynode_is_null(const dgm_ynode *n);

/* Expand ${NAME} from the environment, "$${" to a literal "${". `where`
 * ("FILE:LINE:COL") and `key` ("database.url") go into the messages;
 * variable values never do. *out is malloc'd. */
int dgm_plan_expand(char **out, const char *in, const char *where, const char *key,
		    dgm_error *err);
/* The same, keeping ${target.url|host|port|user|password|dbname} (any
 * other ${target.*} is an error) and "$${" for dgm_plan_target_expand. */
int dgm_plan_expand_keep(char **out, const char *in, const char *where, const char *key,
			 dgm_error *err);
/* A variable name: [A-Za-z_][A-Za-z0-9_]*. */
bool dgm_plan_is_var_name(const char *s, size_t len);

/* Optimal string alignment distance (Levenshtein plus transpositions,
 * so 'tga' is one edit from 'tag'). */
size_t dgm_plan_edit_distance(const char *a, const char *b);
/* The candidate closest to word when it is close enough to be a likely
 * typo (or word is a prefix of it), else NULL. cands is NULL-terminated. */
const char *dgm_plan_suggest(const char *word, const char *const *cands);

/* base/path made absolute and lexically normalized ("." and ".."
 * removed); path is returned normalized when already absolute. base
 * must be absolute. Result malloc'd. */
char *dgm_plan_path_join(const char *base, const char *path);

/* Walk the tree against the schema into plan (whose path and dir are
 * set and defaults applied). */
int dgm_plan_schema_apply(dgm_plan *plan, const dgm_ynode *root, dgm_error *err);

/* The pgbackrest: section (pgbackrest.c): defaults before the schema,
 * those depending on other keys after, then the checks across keys. */
void dgm_plan_pgbr_defaults(dgm_plan *p);
void dgm_plan_pgbr_finish(dgm_plan *p);
int dgm_plan_pgbr_check(const dgm_plan *p, dgm_error *err);

#endif
