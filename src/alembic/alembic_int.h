/*
 * alembic_int.h - private to src/alembic: the graph's index structures
 * and the RevisionMap primitives walk.c builds on.
 *
 * Revisions are referred to by their load index. Results that Alembic
 * returns as "a Revision, None or 'base'" are longs: >= 0 an index,
 * DGM_REV_NONE for None, DGM_REV_BASE for the string "base".
 */
#ifndef DGM_ALEMBIC_INT_H
#define DGM_ALEMBIC_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dgm/alembic.h"

#define DGM_REV_NONE (-1L)
#define DGM_REV_BASE (-2L)

/* A growable list of longs (revision indices or the markers above). */
typedef struct dgm_revlist {
	long *v;
	size_t n, cap;
} dgm_revlist;

void dgm_revlist_push(dgm_revlist *l, long x);
bool dgm_revlist_has(const dgm_revlist *l, long x);
void dgm_revlist_free(dgm_revlist *l);

/* A set of revision indices. */
typedef struct dgm_bits {
	uint64_t *w;
	size_t n;
} dgm_bits;

void dgm_bits_init(dgm_bits *b, size_t n);
void dgm_bits_free(dgm_bits *b);
void dgm_bits_copy(dgm_bits *dst, const dgm_bits *src);
static inline void dgm_bits_set(dgm_bits *b, size_t i) { b->w[i / 64] |= (uint64_t)1 << (i % 64); }
static inline void dgm_bits_unset(dgm_bits *b, size_t i) { b->w[i / 64] &= ~((uint64_t)1 << (i % 64)); }
static inline bool dgm_bits_test(const dgm_bits *b, size_t i)
{
	return (b->w[i / 64] >> (i % 64)) & 1;
}
void dgm_bits_and(dgm_bits *dst, const dgm_bits *src);
void dgm_bits_or(dgm_bits *dst, const dgm_bits *src);
void dgm_bits_andnot(dgm_bits *dst, const dgm_bits *src);
bool dgm_bits_any(const dgm_bits *b);
size_t dgm_bits_count(const dgm_bits *b);

/* String -> index hash table (open addressing; keys are borrowed). The
 * keys come from files of any repository: each map hashes with its own
 * random seed, so that no file can be written to collide. */
typedef struct dgm_strmap {
	const char **keys;
	size_t *vals;
	size_t cap, count;
	uint64_t seed;
} dgm_strmap;

void dgm_strmap_init(dgm_strmap *m, size_t expected);
void dgm_strmap_free(dgm_strmap *m);
/* false when the key was already present (the value is left as is) */
bool dgm_strmap_put(dgm_strmap *m, const char *key, size_t val);
bool dgm_strmap_get(const dgm_strmap *m, const char *key, size_t *val);

/* Per revision, the relations Alembic derives (all as indices). */
typedef struct dgm_alembic_node {
	dgm_revlist down;      /* _versioned_down_revisions */
	dgm_revlist deps;      /* _resolved_dependencies */
	dgm_revlist all_down;  /* _all_down_revisions */
	dgm_revlist norm_deps; /* _normalized_resolved_dependencies */
	dgm_revlist norm_down; /* _normalized_down_revisions */
	dgm_revlist next;      /* nextrev */
	dgm_revlist all_next;  /* _all_nextrev */
} dgm_alembic_node;

/* One key of Alembic's _revision_map: revision ids first (load order),
 * then branch labels; both lead to a revision. */
typedef struct dgm_alembic_key {
	const char *name;
	size_t rev;
} dgm_alembic_key;

struct dgm_alembic_graph {
	dgm_alembic_node *nodes;
	dgm_alembic_key *keys;
	size_t nkeys;
	dgm_strmap map;          /* key name -> index in keys */
	bool built;
};

/* Which relation a traversal follows. */
typedef enum dgm_rel {
	DGM_REL_DOWN,       /* versioned down revisions */
	DGM_REL_NORM_DOWN,  /* normalized down revisions (depends_on too) */
	DGM_REL_ALL_DOWN,
	DGM_REL_NEXT,       /* versioned children */
	DGM_REL_ALL_NEXT    /* children including dependents */
} dgm_rel;

/* _iterate_related_revisions: everything reachable from TARGETS (them
 * included) into *out. With check, a target reaching another target is
 * an error. *last (may be NULL) receives the last revision yielded. */
int dgm_alembic_related(const dgm_alembic_script *s, dgm_rel rel, const long *targets,
			size_t ntargets, bool check, dgm_bits *out, long *last, dgm_error *err);

/* _resolve_revision_number: splits LABEL@ and expands heads / head /
 * base. *ids (malloc'd array of borrowed strings) gets the ids;
 * *label points into *buf, which the caller frees. */
int dgm_alembic_resolve_number(const dgm_alembic_script *s, const char *id, const char ***ids,
			       size_t *nids, char **label, char **buf, dgm_error *err);
/* _revision_for_ident; ident NULL is Alembic's () and gives NONE. */
int dgm_alembic_for_ident(long *out, const dgm_alembic_script *s, const char *ident,
			  const char *check_branch, dgm_error *err);
/* get_revisions() of one string (NULL: None) appended to *out. */
int dgm_alembic_get_revisions(dgm_revlist *out, const dgm_alembic_script *s, const char *id,
			      dgm_error *err);
/* get_revision(): NONE for base. */
int dgm_alembic_get_revision(long *out, const dgm_alembic_script *s, const char *id,
			     dgm_error *err);
/* filter_for_lineage: the TARGETS (indices) that share lineage with
 * CHECK_AGAINST, appended to *out in order. */
int dgm_alembic_filter_lineage(dgm_revlist *out, const dgm_alembic_script *s,
			       const long *targets, size_t n, const char *check_against,
			       bool include_deps, dgm_error *err);
/* A relative count as written ("+2", "-10", "3"; digits only after the
 * sign) into *steps. Python's ints have no bound, but a walk stops at
 * the end of the graph, so any count that fits in a long means the same
 * to Alembic; a larger one is refused. */
int dgm_alembic_parse_steps(long *steps, const char *number, dgm_error *err);
/* _walk; start NONE means "from nothing" (bases up, heads down). */
int dgm_alembic_walk_steps(long *out, const dgm_alembic_script *s, long start, long steps,
			   const char *branch_label, bool no_overwalk, dgm_error *err);
/* _resolve_branch */
int dgm_alembic_resolve_branch(long *out, const dgm_alembic_script *s, const char *label,
			       dgm_error *err);
/* Does the revision carry this branch label (own or spread)? */
bool dgm_alembic_has_label(const dgm_alembic_rev *r, const char *label);

/* Join DIR and PATH ('/'-separated, DIR "" is the root) and collapse
 * "." and ".." lexically, as os.path.normpath does. NULL when the
 * result would climb above the root. */
char *dgm_alembic_path_join(const char *dir, const char *path);

/* The MultipleHeads error, worded as Alembic's command line does. */
int dgm_alembic_multiple_heads(dgm_error *err, const dgm_alembic_script *s,
			       const char *const *ids, size_t n, const char *argument);

#endif
