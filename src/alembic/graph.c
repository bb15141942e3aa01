/*
 * graph.c - Alembic's RevisionMap: the map of ids and branch labels,
 * heads and bases, depends_on resolution and normalization, cycle
 * checks, branch label spreading, and identifier resolution
 * (_resolve_revision_number, _revision_for_ident, get_revisions,
 * filter_for_lineage, _walk), ported from alembic/script/revision.py
 * 1.8.1 statement by statement so that corner cases behave the same.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "dgm/alembic.h"
#include "dgm/buf.h"
#include "dgm/log.h"
#include "alembic_int.h"

/* ---- building --------------------------------------------------------- */

dgm_alembic_script *dgm_alembic_script_new(void)
{
	return dgm_xcalloc(1, sizeof(dgm_alembic_script));
}

void dgm_alembic_script_add(dgm_alembic_script *s, dgm_alembic_revfile *rf)
{
	dgm_alembic_rev *r = dgm_xcalloc(1, sizeof(*r));

	r->id = rf->revision;
	r->path = rf->path;
	r->line = rf->revision_line;
	r->down_line = rf->down_line;
	r->depends_line = rf->depends_line;
	r->doc = rf->doc ? rf->doc : dgm_xstrdup("");
	r->down = rf->down;
	r->ndown = rf->ndown;
	r->depends = rf->depends;
	r->ndepends = rf->ndepends;
	r->labels = rf->labels;
	r->nlabels = rf->nlabels;
	r->labels_line = rf->labels_line;
	r->index = s->count;
	memset(rf, 0, sizeof(*rf));
	s->revs = dgm_xrealloc(s->revs, (s->count + 1) * sizeof(*s->revs));
	s->revs[s->count++] = r;
}

int dgm_alembic_script_add_text(dgm_alembic_script *s, const char *path, const char *text,
				dgm_error *err)
{
	dgm_alembic_revfile rf;

	if (dgm_alembic_revfile_parse(&rf, path, text, strlen(text), err) != 0)
		return -1;
	dgm_alembic_script_add(s, &rf);
	return 0;
}

static void add_key(struct dgm_alembic_graph *g, const char *name, size_t rev)
{
	g->keys[g->nkeys].name = name;
	g->keys[g->nkeys].rev = rev;
	dgm_strmap_put(&g->map, name, g->nkeys);
	g->nkeys++;
}

/* The revision a map key leads to, or -1. */
static long key_rev(const dgm_alembic_script *s, const char *name)
{
	size_t k;

	if (!s->graph || !dgm_strmap_get(&s->graph->map, name, &k))
		return -1;
	return (long)s->graph->keys[k].rev;
}

static int map_ids(dgm_alembic_script *s, dgm_error *err)
{
	struct dgm_alembic_graph *g = s->graph;

	for (size_t i = 0; i < s->count; i++) {
		long other = key_rev(s, s->revs[i]->id);

		if (other >= 0) {
			const dgm_alembic_rev *o = s->revs[other], *r = s->revs[i];

			dgm_error_set(err, DGM_E_ALEMBIC, "revision '%s' is present more than once: "
				      "%s:%d and %s:%d", r->id, o->path, o->line, r->path, r->line);
			dgm_error_hint(err, "give one of the files a new revision id");
			return -1;
		}
		add_key(g, s->revs[i]->id, i);
	}
	return 0;
}

static int map_labels(dgm_alembic_script *s, dgm_error *err)
{
	for (size_t i = 0; i < s->count; i++) {
		dgm_alembic_rev *r = s->revs[i];

		for (size_t j = 0; j < r->nlabels; j++) {
			long other = key_rev(s, r->labels[j]);

			if (other >= 0)
				return dgm_error_set(err, DGM_E_ALEMBIC, "%s:%d: branch name '%s' in "
						     "revision %s already used by revision %s",
						     r->path, r->labels_line, r->labels[j], r->id,
						     s->revs[other]->id);
			add_key(s->graph, r->labels[j], i);
		}
	}
	return 0;
}

static void push_unique(dgm_revlist *l, long x)
{
	if (!dgm_revlist_has(l, x))
		dgm_revlist_push(l, x);
}

/* _add_depends_on: depends_on names revisions or branch labels. */
static int resolve_depends(dgm_alembic_script *s, dgm_error *err)
{
	for (size_t i = 0; i < s->count; i++) {
		dgm_alembic_rev *r = s->revs[i];
		dgm_alembic_node *nd = &s->graph->nodes[i];

		for (size_t j = 0; j < r->ndepends; j++) {
			long d = key_rev(s, r->depends[j]);

			if (d < 0)
				return dgm_error_set(err, DGM_E_ALEMBIC, "%s:%d: depends_on '%s' of "
						     "revision %s is not present", r->path, r->depends_line,
						     r->depends[j], r->id);
			dgm_revlist_push(&nd->deps, d);
		}
	}
	return 0;
}

static int link_down(dgm_alembic_script *s, dgm_error *err)
{
	for (size_t i = 0; i < s->count; i++) {
		dgm_alembic_rev *r = s->revs[i];
		dgm_alembic_node *nd = &s->graph->nodes[i];

		for (size_t j = 0; j < r->ndown; j++) {
			long d = key_rev(s, r->down[j]);

			if (d < 0)
				return dgm_error_set(err, DGM_E_ALEMBIC, "%s:%d: revision %s referenced "
						     "from %s is not present", r->path, r->down_line,
						     r->down[j], r->id);
			if (strcmp(s->revs[d]->id, r->down[j]) != 0)
				return dgm_error_set(err, DGM_E_ALEMBIC, "%s:%d: down_revision '%s' of "
						     "%s is a branch label; Alembic needs a revision "
						     "id there", r->path, r->down_line, r->down[j], r->id);
			dgm_revlist_push(&nd->down, d);
		}
		for (size_t j = 0; j < nd->down.n; j++)
			push_unique(&nd->all_down, nd->down.v[j]);
		for (size_t j = 0; j < nd->deps.n; j++)
			push_unique(&nd->all_down, nd->deps.v[j]);
		for (size_t j = 0; j < nd->all_down.n; j++) {
			dgm_alembic_node *parent = &s->graph->nodes[nd->all_down.v[j]];

			push_unique(&parent->all_next, (long)i);
			if (dgm_revlist_has(&nd->down, nd->all_down.v[j]))
				push_unique(&parent->next, (long)i);
		}
	}
	return 0;
}

/* _normalize_depends_on: drop dependencies that an ancestor (by
 * down_revision) already declares. Alembic keeps the result in a set;
 * the declared order is kept here. */
static int normalize_depends(dgm_alembic_script *s, dgm_error *err)
{
	for (size_t i = 0; i < s->count; i++) {
		dgm_alembic_node *nd = &s->graph->nodes[i];
		dgm_bits anc, drop;
		long self = (long)i;

		if (nd->deps.n) {
			if (dgm_alembic_related(s, DGM_REL_DOWN, &self, 1, false, &anc, NULL, err) != 0)
				return -1;
			dgm_bits_init(&drop, s->count);
			for (size_t a = 0; a < s->count; a++) {
				dgm_alembic_node *an = &s->graph->nodes[a];

				if (a == i || !dgm_bits_test(&anc, a))
					continue;
				for (size_t k = 0; k < an->deps.n; k++)
					dgm_bits_set(&drop, (size_t)an->deps.v[k]);
			}
			for (size_t k = 0; k < nd->deps.n; k++)
				if (!dgm_bits_test(&drop, (size_t)nd->deps.v[k]))
					push_unique(&nd->norm_deps, nd->deps.v[k]);
			dgm_bits_free(&anc);
			dgm_bits_free(&drop);
		}
		for (size_t k = 0; k < nd->down.n; k++)
			push_unique(&nd->norm_down, nd->down.v[k]);
		for (size_t k = 0; k < nd->norm_deps.n; k++)
			push_unique(&nd->norm_down, nd->norm_deps.v[k]);
	}
	return 0;
}

/* Alembic's CycleDetected message; ids sorted as it sorts them. */
static int cycle_error(const dgm_alembic_script *s, const dgm_bits *missing, const char *kind,
		       dgm_error *err)
{
	const char **ids = dgm_xmalloc((s->count + 1) * sizeof(*ids));
	size_t n = 0;
	dgm_buf b = DGM_BUF_INIT;

	for (size_t i = 0; i < s->count; i++)
		if (!missing || dgm_bits_test(missing, i))
			ids[n++] = s->revs[i]->id;
	if (missing)
		dgm_sort_strings(ids, n);
	for (size_t i = 0; i < n; i++)
		dgm_buf_printf(&b, "%s%s", i ? ", " : "", ids[i]);
	dgm_error_set(err, DGM_E_ALEMBIC, "%s is detected in revisions (%s)", kind,
		      dgm_buf_cstr(&b));
	if (n)
		dgm_error_hint(err, "first of them: %s:%d", s->revs[key_rev(s, ids[0])]->path,
			       s->revs[key_rev(s, ids[0])]->line);
	dgm_buf_free(&b);
	free(ids);
	return -1;
}

/* One half of _detect_cycles: everything must lie between a head and a
 * base. */
static int check_space(const dgm_alembic_script *s, dgm_rel down, dgm_rel up, bool real,
		       const char *kind, dgm_error *err)
{
	dgm_revlist heads = { 0 }, bases = { 0 };
	dgm_bits from_heads, from_bases;
	int ret = -1;

	for (size_t i = 0; i < s->count; i++) {
		dgm_alembic_node *nd = &s->graph->nodes[i];

		if ((real ? nd->all_next.n : nd->next.n) == 0)
			dgm_revlist_push(&heads, (long)i);
		if (s->revs[i]->ndown == 0 && (!real || s->revs[i]->ndepends == 0))
			dgm_revlist_push(&bases, (long)i);
	}
	if (!heads.n || !bases.n) {
		cycle_error(s, NULL, kind, err);
		goto out;
	}
	if (dgm_alembic_related(s, down, heads.v, heads.n, false, &from_heads, NULL, err) != 0)
		goto out;
	if (dgm_alembic_related(s, up, bases.v, bases.n, false, &from_bases, NULL, err) != 0) {
		dgm_bits_free(&from_heads);
		goto out;
	}
	dgm_bits_and(&from_heads, &from_bases);
	ret = 0;
	if (dgm_bits_count(&from_heads) != s->count) {
		dgm_bits missing;

		dgm_bits_init(&missing, s->count);
		for (size_t i = 0; i < s->count; i++)
			if (!dgm_bits_test(&from_heads, i))
				dgm_bits_set(&missing, i);
		ret = cycle_error(s, &missing, kind, err);
		dgm_bits_free(&missing);
	}
	dgm_bits_free(&from_heads);
	dgm_bits_free(&from_bases);
out:
	dgm_revlist_free(&heads);
	dgm_revlist_free(&bases);
	return ret;
}

static int detect_cycles(const dgm_alembic_script *s, dgm_error *err)
{
	if (!s->count)
		return 0;
	if (check_space(s, DGM_REL_DOWN, DGM_REL_NEXT, false, "cycle", err) != 0)
		return -1;
	return check_space(s, DGM_REL_ALL_DOWN, DGM_REL_ALL_NEXT, true, "dependency cycle", err);
}

bool dgm_alembic_has_label(const dgm_alembic_rev *r, const char *label)
{
	for (size_t i = 0; i < r->nbranch_labels; i++)
		if (strcmp(r->branch_labels[i], label) == 0)
			return true;
	return false;
}

/* _add_branches: a revision's labels (those it declares plus those
 * spread to it so far) spread to its descendants, and from the last
 * descendant found down to the nearest branch or merge point. Alembic
 * visits the labelled revisions and their children in Python set order,
 * which can change the outcome when labelled branches nest; here both
 * are taken in load order. Labels are bit sets over all declared labels
 * (in map order) while they spread. */
static int spread_labels(dgm_alembic_script *s, dgm_bits *lbl, dgm_error *err)
{
	size_t nl = lbl[0].n;

	for (size_t i = 0; i < s->count; i++) {
		dgm_bits desc, now;
		long self = (long)i, p;

		if (!s->revs[i]->nlabels)
			continue;
		if (dgm_alembic_related(s, DGM_REL_NEXT, &self, 1, false, &desc, &p, err) != 0)
			return -1;
		dgm_bits_init(&now, nl);
		dgm_bits_or(&now, &lbl[i]);
		for (size_t d = 0; d < s->count; d++)
			if (dgm_bits_test(&desc, d))
				dgm_bits_or(&lbl[d], &now);
		while (p >= 0 && s->graph->nodes[p].all_next.n <= 1 && s->revs[p]->ndown <= 1) {
			dgm_bits_or(&lbl[p], &now);
			p = s->revs[p]->ndown ? s->graph->nodes[p].down.v[0] : -1;
		}
		dgm_bits_free(&now);
		dgm_bits_free(&desc);
	}
	return 0;
}

static int assign_labels(dgm_alembic_script *s, dgm_error *err)
{
	const struct dgm_alembic_graph *g = s->graph;
	size_t first = s->count, nl = g->nkeys - s->count;
	dgm_bits *lbl = dgm_xcalloc(s->count + 1, sizeof(*lbl));
	int ret;

	/* the keys after the ids are the labels, in declaration order */
	for (size_t i = 0; i < s->count; i++)
		dgm_bits_init(&lbl[i], nl);
	for (size_t k = first; k < g->nkeys; k++)
		dgm_bits_set(&lbl[g->keys[k].rev], k - first);
	ret = s->count ? spread_labels(s, lbl, err) : 0;
	for (size_t i = 0; i < s->count; i++) {
		dgm_alembic_rev *r = s->revs[i];

		r->branch_labels = dgm_xcalloc(dgm_bits_count(&lbl[i]) + 1,
					       sizeof(*r->branch_labels));
		for (size_t k = 0; k < nl; k++)
			if (dgm_bits_test(&lbl[i], k))
				r->branch_labels[r->nbranch_labels++] = g->keys[first + k].name;
		dgm_bits_free(&lbl[i]);
	}
	free(lbl);
	return ret;
}

static void publish(dgm_alembic_script *s)
{
	for (size_t i = 0; i < s->count; i++) {
		dgm_alembic_rev *r = s->revs[i];
		dgm_alembic_node *nd = &s->graph->nodes[i];

		r->deps = dgm_xcalloc(nd->deps.n + 1, sizeof(*r->deps));
		for (size_t j = 0; j < nd->deps.n; j++)
			r->deps[j] = s->revs[nd->deps.v[j]];
		r->ndeps = nd->deps.n;
		r->children = dgm_xcalloc(nd->next.n + 1, sizeof(*r->children));
		for (size_t j = 0; j < nd->next.n; j++)
			r->children[j] = s->revs[nd->next.v[j]];
		r->nchildren = nd->next.n;
		r->is_base = r->ndown == 0;
		r->is_head = nd->next.n == 0;
		r->is_real_head = nd->all_next.n == 0;
		r->is_branch_point = nd->next.n > 1;
		r->is_merge_point = r->ndown > 1;
	}
	s->heads = dgm_xcalloc(s->count + 1, sizeof(*s->heads));
	s->real_heads = dgm_xcalloc(s->count + 1, sizeof(*s->real_heads));
	s->bases = dgm_xcalloc(s->count + 1, sizeof(*s->bases));
	for (size_t i = 0; i < s->count; i++) {
		if (s->revs[i]->is_head)
			s->heads[s->nheads++] = s->revs[i];
		if (s->revs[i]->is_real_head)
			s->real_heads[s->nreal_heads++] = s->revs[i];
		if (s->revs[i]->is_base)
			s->bases[s->nbases++] = s->revs[i];
	}
}

int dgm_alembic_script_build(dgm_alembic_script *s, dgm_error *err)
{
	struct dgm_alembic_graph *g;
	size_t nlabels = 0;

	if (s->graph)
		return dgm_error_set(err, DGM_E_ALEMBIC, "the revision graph is already built");
	for (size_t i = 0; i < s->count; i++)
		nlabels += s->revs[i]->nlabels;
	g = s->graph = dgm_xcalloc(1, sizeof(*g));
	g->nodes = dgm_xcalloc(s->count + 1, sizeof(*g->nodes));
	g->keys = dgm_xcalloc(s->count + nlabels + 1, sizeof(*g->keys));
	dgm_strmap_init(&g->map, s->count + nlabels);
	if (map_ids(s, err) != 0 || map_labels(s, err) != 0 || resolve_depends(s, err) != 0 ||
	    link_down(s, err) != 0 || normalize_depends(s, err) != 0 ||
	    detect_cycles(s, err) != 0)
		return -1;
	publish(s);
	if (assign_labels(s, err) != 0)
		return -1;
	g->built = true;
	return 0;
}

void dgm_alembic_free(dgm_alembic_script *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->count; i++) {
		dgm_alembic_rev *r = s->revs[i];
		dgm_alembic_revfile rf = {
			.path = r->path, .revision = r->id, .down = r->down, .ndown = r->ndown,
			.depends = r->depends, .ndepends = r->ndepends, .labels = r->labels,
			.nlabels = r->nlabels, .doc = r->doc
		};

		dgm_alembic_revfile_free(&rf);
		free(r->deps);
		free(r->children);
		free(r->branch_labels);
		free(r);
		if (s->graph) {
			dgm_alembic_node *nd = &s->graph->nodes[i];

			dgm_revlist_free(&nd->down);
			dgm_revlist_free(&nd->deps);
			dgm_revlist_free(&nd->all_down);
			dgm_revlist_free(&nd->norm_deps);
			dgm_revlist_free(&nd->norm_down);
			dgm_revlist_free(&nd->next);
			dgm_revlist_free(&nd->all_next);
		}
	}
	if (s->graph) {
		free(s->graph->nodes);
		free(s->graph->keys);
		dgm_strmap_free(&s->graph->map);
		free(s->graph);
	}
	free(s->revs);
	free(s->heads);
	free(s->real_heads);
	free(s->bases);
	dgm_alembic_config_free(&s->config);
	free(s);
}

const dgm_alembic_rev *dgm_alembic_find(const dgm_alembic_script *s, const char *id)
{
	long r = key_rev(s, id);

	return r >= 0 && strcmp(s->revs[r]->id, id) == 0 ? s->revs[r] : NULL;
}

/* ---- traversal -------------------------------------------------------- */

static const dgm_revlist *relation(const dgm_alembic_script *s, dgm_rel rel, long i)
{
	const dgm_alembic_node *nd = &s->graph->nodes[i];

	switch (rel) {
	case DGM_REL_DOWN: return &nd->down;
	case DGM_REL_NORM_DOWN: return &nd->norm_down;
	case DGM_REL_ALL_DOWN: return &nd->all_down;
	case DGM_REL_NEXT: return &nd->next;
	default: return &nd->all_next;
	}
}

static int overlap_error(const dgm_alembic_script *s, long target, const dgm_bits *per,
			 const dgm_bits *tset, dgm_error *err)
{
	dgm_buf b = DGM_BUF_INIT;
	bool found = false;

	for (size_t i = 0; i < s->count; i++)
		if ((long)i != target && dgm_bits_test(per, i) && dgm_bits_test(tset, i)) {
			dgm_buf_printf(&b, "%s%s", found ? ", " : "", s->revs[i]->id);
			found = true;
		}
	if (found)
		dgm_error_set(err, DGM_E_ALEMBIC, "requested revision %s overlaps with other "
			      "requested revisions %s", s->revs[target]->id, dgm_buf_cstr(&b));
	dgm_buf_free(&b);
	return found ? -1 : 0;
}

/* _iterate_related_revisions: a depth-first walk with one stack and one
 * `seen` set shared by all targets, as Alembic does it. */
int dgm_alembic_related(const dgm_alembic_script *s, dgm_rel rel, const long *targets,
			size_t ntargets, bool check, dgm_bits *out, long *last, dgm_error *err)
{
	dgm_revlist stack = { 0 };
	dgm_bits per = { 0 }, tset = { 0 };
	int ret = -1;

	dgm_bits_init(out, s->count);
	if (check) {
		dgm_bits_init(&per, s->count);
		dgm_bits_init(&tset, s->count);
		for (size_t t = 0; t < ntargets; t++)
			if (targets[t] >= 0)
				dgm_bits_set(&tset, (size_t)targets[t]);
	}
	for (size_t t = 0; t < ntargets; t++) {
		if (targets[t] < 0) {
			dgm_error_set(err, DGM_E_ALEMBIC, "a revision is needed here, not '%s'",
				      targets[t] == DGM_REV_BASE ? "base" : "None");
			goto out;
		}
		dgm_revlist_push(&stack, targets[t]);
		if (check)
			memset(per.w, 0, ((s->count + 63) / 64) * sizeof(*per.w));
		while (stack.n) {
			long r = stack.v[--stack.n];
			const dgm_revlist *rl;

			if (check)
				dgm_bits_set(&per, (size_t)r);
			if (dgm_bits_test(out, (size_t)r))
				continue;
			dgm_bits_set(out, (size_t)r);
			rl = relation(s, rel, r);
			for (size_t k = 0; k < rl->n; k++)
				dgm_revlist_push(&stack, rl->v[k]);
			if (last)
				*last = r;
		}
		if (check && overlap_error(s, targets[t], &per, &tset, err) != 0)
			goto out;
	}
	ret = 0;
out:
	if (ret != 0)
		dgm_bits_free(out);
	dgm_revlist_free(&stack);
	dgm_bits_free(&per);
	dgm_bits_free(&tset);
	return ret;
}

/* ---- resolution ------------------------------------------------------- */

int dgm_alembic_multiple_heads(dgm_error *err, const dgm_alembic_script *s,
			       const char *const *ids, size_t n, const char *argument)
{
	dgm_buf b = DGM_BUF_INIT;

	(void)s;
	for (size_t i = 0; i < n; i++)
		dgm_buf_printf(&b, "%s'%s'", i ? ", " : "", ids[i]);
	dgm_error_set(err, DGM_E_ALEMBIC, "multiple head revisions are present for given "
		      "argument '%s': %s", argument, dgm_buf_cstr(&b));
	dgm_error_hint(err, "specify a specific target revision, '<branchname>@%s' to narrow "
		       "to a specific head, or 'heads' for all heads", argument);
	dgm_buf_free(&b);
	return -1;
}

static void ids_of(const dgm_alembic_script *s, const dgm_revlist *l, const char ***ids,
		   size_t *n)
{
	*ids = dgm_xcalloc(l->n + 1, sizeof(**ids));
	*n = 0;
	for (size_t i = 0; i < l->n; i++)
		if (l->v[i] >= 0)
			(*ids)[(*n)++] = s->revs[l->v[i]]->id;
}

/* get_current_head(branch_label) */
static int current_head(dgm_revlist *out, const dgm_alembic_script *s, const char *label,
			dgm_error *err)
{
	dgm_revlist heads = { 0 };
	int ret = 0;

	for (size_t i = 0; i < s->nheads; i++)
		dgm_revlist_push(&heads, (long)s->heads[i]->index);
	if (label && *label)
		ret = dgm_alembic_filter_lineage(out, s, heads.v, heads.n, label, false, err);
	else
		for (size_t i = 0; i < heads.n; i++)
			dgm_revlist_push(out, heads.v[i]);
	dgm_revlist_free(&heads);
	if (ret == 0 && out->n > 1) {
		const char **ids;
		size_t n;
		char *arg = label && *label ? dgm_xasprintf("%s@head", label) : dgm_xstrdup("head");

		ids_of(s, out, &ids, &n);
		ret = dgm_alembic_multiple_heads(err, s, ids, n, arg);
		free(ids);
		free(arg);
	}
	return ret;
}

int dgm_alembic_resolve_number(const dgm_alembic_script *s, const char *id, const char ***ids,
			       size_t *nids, char **label, char **buf, dgm_error *err)
{
	char *rest, *at;
	dgm_revlist l = { 0 };
	int ret = 0;

	*ids = NULL;
	*nids = 0;
	*label = NULL;
	*buf = id ? dgm_xstrdup(id) : NULL;
	rest = *buf;
	if (rest && (at = strchr(rest, '@')) != NULL) {
		*at = '\0';
		*label = rest;
		rest = at + 1;
	}
	if (rest && !strcmp(rest, "heads")) {
		if (*label && **label) {
			dgm_revlist heads = { 0 };

			for (size_t i = 0; i < s->nheads; i++)
				dgm_revlist_push(&heads, (long)s->heads[i]->index);
			ret = dgm_alembic_filter_lineage(&l, s, heads.v, heads.n, *label, false, err);
			dgm_revlist_free(&heads);
		} else {
			for (size_t i = 0; i < s->nreal_heads; i++)
				dgm_revlist_push(&l, (long)s->real_heads[i]->index);
		}
		if (ret == 0)
			ids_of(s, &l, ids, nids);
	} else if (rest && !strcmp(rest, "head")) {
		ret = current_head(&l, s, *label, err);
		if (ret == 0)
			ids_of(s, &l, ids, nids);
	} else if (rest && strcmp(rest, "base") != 0) {
		*ids = dgm_xcalloc(2, sizeof(**ids));
		(*ids)[0] = rest;
		*nids = 1;
	}
	dgm_revlist_free(&l);
	if (ret != 0) {
		free(*buf);
		*buf = NULL;
		*label = NULL;
	}
	return ret;
}

int dgm_alembic_resolve_branch(long *out, const dgm_alembic_script *s, const char *label,
			       dgm_error *err)
{
	*out = key_rev(s, label);
	if (*out >= 0)
		return 0;
	if (dgm_alembic_for_ident(out, s, label, NULL, err) != 0) {
		dgm_error_set(err, DGM_E_ALEMBIC, "no such branch: '%s'", label);
		return -1;
	}
	return 0;
}

/* _shares_lineage(target, shares): shares are resolved by the caller. */
static int shares_lineage(bool *yes, const dgm_alembic_script *s, long target,
			  const dgm_revlist *against, bool include_deps, dgm_error *err)
{
	dgm_bits up, down;

	*yes = against->n == 0;
	if (*yes)
		return 0;
	if (dgm_alembic_related(s, include_deps ? DGM_REL_ALL_NEXT : DGM_REL_NEXT, &target, 1,
				false, &up, NULL, err) != 0)
		return -1;
	if (dgm_alembic_related(s, include_deps ? DGM_REL_NORM_DOWN : DGM_REL_DOWN, &target, 1,
				false, &down, NULL, err) != 0) {
		dgm_bits_free(&up);
		return -1;
	}
	dgm_bits_or(&up, &down);
	for (size_t i = 0; i < against->n && !*yes; i++)
		*yes = against->v[i] >= 0 && dgm_bits_test(&up, (size_t)against->v[i]);
	dgm_bits_free(&up);
	dgm_bits_free(&down);
	return 0;
}

int dgm_alembic_filter_lineage(dgm_revlist *out, const dgm_alembic_script *s,
			       const long *targets, size_t n, const char *check_against,
			       bool include_deps, dgm_error *err)
{
	const char **ids = NULL;
	size_t nids = 0, count = n;
	char *label = NULL, *buf = NULL;
	dgm_revlist against = { 0 };
	int ret = -1;

	if (dgm_alembic_resolve_number(s, check_against, &ids, &nids, &label, &buf, err) != 0)
		return -1;
	/* Alembic resolves the shares inside the loop: no targets, no error */
	for (size_t t = 0; t < count; t++) {
		bool yes;

		if (t == 0) {
			long r;

			if (label && *label) {
				if (dgm_alembic_for_ident(&r, s, label, NULL, err) != 0)
					goto out;
				dgm_revlist_push(&against, r);
			}
			for (size_t i = 0; i < nids; i++) {
				if (dgm_alembic_for_ident(&r, s, ids[i], NULL, err) != 0)
					goto out;
				dgm_revlist_push(&against, r);
			}
		}
		if (targets[t] < 0)
			continue;
		if (shares_lineage(&yes, s, targets[t], &against, include_deps, err) != 0)
			goto out;
		if (yes)
			dgm_revlist_push(out, targets[t]);
	}
	ret = 0;
out:
	dgm_revlist_free(&against);
	free(ids);
	free(buf);
	return ret;
}

static bool prefix_of(const char *prefix, const char *s)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* The partial lookup of _revision_for_ident: every map key (ids and
 * labels) longer than 3 characters that starts with IDENT. */
static int partial(long *out, const dgm_alembic_script *s, const char *ident,
		   const char *check_branch, bool have_branch, dgm_error *err)
{
	const struct dgm_alembic_graph *g = s->graph;
	dgm_revlist keys = { 0 }, revs = { 0 }, kept = { 0 };
	int ret = -1;

	for (size_t k = 0; k < g->nkeys; k++)
		if (strlen(g->keys[k].name) > 3 && prefix_of(ident, g->keys[k].name)) {
			dgm_revlist_push(&keys, (long)k);
			dgm_revlist_push(&revs, (long)g->keys[k].rev);
		}
	if (have_branch) {
		dgm_revlist filtered = { 0 };

		if (dgm_alembic_filter_lineage(&kept, s, revs.v, revs.n, check_branch, false,
					       err) != 0)
			goto out;
		/* keep the keys whose revision survived, in order */
		for (size_t i = 0; i < keys.n; i++)
			if (dgm_revlist_has(&kept, revs.v[i]))
				dgm_revlist_push(&filtered, keys.v[i]);
		dgm_revlist_free(&keys);
		keys = filtered;
	}
	if (keys.n == 0) {
		dgm_error_set(err, DGM_E_ALEMBIC, "no such revision or branch '%s'%s", ident,
			      strlen(ident) < 4 ? "; please ensure at least four characters are "
			      "present for partial revision identifier matches" : "");
		goto out;
	}
	if (keys.n > 1) {
		dgm_buf b = DGM_BUF_INIT;

		for (size_t i = 0; i < keys.n && i < 3; i++)
			dgm_buf_printf(&b, "%s'%s'", i ? ", " : "", g->keys[keys.v[i]].name);
		dgm_error_set(err, DGM_E_ALEMBIC, "multiple revisions start with '%s': %s...",
			      ident, dgm_buf_cstr(&b));
		dgm_buf_free(&b);
		goto out;
	}
	*out = (long)g->keys[keys.v[0]].rev;
	ret = 0;
out:
	dgm_revlist_free(&keys);
	dgm_revlist_free(&revs);
	dgm_revlist_free(&kept);
	return ret;
}

int dgm_alembic_for_ident(long *out, const dgm_alembic_script *s, const char *ident,
			  const char *check_branch, dgm_error *err)
{
	bool have_branch = check_branch && *check_branch;
	long branch_rev = -1;

	*out = DGM_REV_NONE;
	if (have_branch && dgm_alembic_resolve_branch(&branch_rev, s, check_branch, err) != 0)
		return -1;
	if (!ident)
		return 0;
	if (!*ident)
		return dgm_error_set(err, DGM_E_ALEMBIC, "an empty revision identifier");
	*out = key_rev(s, ident);
	if (*out < 0 && partial(out, s, ident, check_branch, have_branch, err) != 0)
		return -1;
	if (have_branch) {
		dgm_revlist against = { 0 };
		bool yes;
		int rc;

		dgm_revlist_push(&against, branch_rev);
		rc = shares_lineage(&yes, s, *out, &against, false, err);
		dgm_revlist_free(&against);
		if (rc != 0)
			return -1;
		if (!yes)
			return dgm_error_set(err, DGM_E_ALEMBIC, "revision %s is not a member of "
					     "branch '%s'", s->revs[*out]->id, check_branch);
	}
	return 0;
}

int dgm_alembic_parse_steps(long *steps, const char *number, dgm_error *err)
{
	const char *p = number + (*number == '+' || *number == '-');
	char *end;
	long v;

	*steps = 0;
	errno = 0;
	v = strtol(number, &end, 10);
	/* LONG_MIN too: its absolute value is not a long */
	if (*p < '0' || *p > '9' || *end || errno == ERANGE || v == LONG_MIN) {
		dgm_error_set(err, DGM_E_ALEMBIC, "relative revision %s is out of range (at most "
			      "%ld steps either way)", number, LONG_MAX);
		dgm_error_hint(err, "name the revision (an id, a label, 'heads' or 'base') "
			       "instead of counting steps");
		return -1;
	}
	*steps = v;
	return 0;
}

/* Python's int() on a revision-like string: [+-]digits[_digits],
 * surrounded by optional white space. 1: an int (a positive one beyond a
 * long reads as LONG_MAX), 0: not an int, -1: a negative count out of
 * range (err set). */
static int parse_int(const char *s, long *out, dgm_error *err)
{
	dgm_buf digits = DGM_BUF_INIT;
	int ok = 0;
	const char *p = s;

	while (*p == ' ' || *p == '\t' || *p == '\n')
		p++;
	if (*p == '+' || *p == '-')
		dgm_buf_putc(&digits, *p++);
	if (*p < '0' || *p > '9')
		goto out;
	for (; *p; p++) {
		if (*p >= '0' && *p <= '9')
			dgm_buf_putc(&digits, *p);
		else if (*p == '_' && p[1] >= '0' && p[1] <= '9' && p[-1] != '_')
			continue;
		else
			break;
	}
	while (*p == ' ' || *p == '\t' || *p == '\n')
		p++;
	if (*p)
		goto out;
	ok = 1;
	if (digits.ptr[0] != '-') {
		errno = 0;
		*out = strtol(digits.ptr, NULL, 10);
		if (errno == ERANGE)
			*out = LONG_MAX;
	} else if (dgm_alembic_parse_steps(out, digits.ptr, err) != 0) {
		ok = -1;
	}
out:
	dgm_buf_free(&digits);
	return ok;
}

int dgm_alembic_get_revisions(dgm_revlist *out, const dgm_alembic_script *s, const char *id,
			      dgm_error *err)
{
	const char **ids = NULL;
	size_t nids = 0;
	char *label = NULL, *buf = NULL;
	long rint = 0, r;
	int ret = -1, isint = 0;

	if (dgm_alembic_resolve_number(s, id, &ids, &nids, &label, &buf, err) != 0)
		return -1;
	if (nids == 1 && (isint = parse_int(ids[0], &rint, err)) < 0)
		goto out;
	if (isint && rint < 0) {
		/* branch@-n: walk down from the heads */
		for (size_t i = 0; i < s->nreal_heads; i++) {
			const dgm_alembic_rev *h = s->real_heads[i];

			if (label && !dgm_alembic_has_label(h, label))
				continue;
			if (dgm_alembic_walk_steps(&r, s, (long)h->index, rint, NULL, true,
						   err) != 0)
				goto out;
			dgm_revlist_push(out, r);
		}
		ret = 0;
		goto out;
	}
	for (size_t i = 0; i < nids; i++) {
		if (dgm_alembic_for_ident(&r, s, ids[i], label, err) != 0)
			goto out;
		dgm_revlist_push(out, r);
	}
	ret = 0;
out:
	free(ids);
	free(buf);
	return ret;
}

int dgm_alembic_get_revision(long *out, const dgm_alembic_script *s, const char *id,
			     dgm_error *err)
{
	const char **ids = NULL;
	size_t nids = 0;
	char *label = NULL, *buf = NULL;
	int ret;

	*out = DGM_REV_NONE;
	if (dgm_alembic_resolve_number(s, id, &ids, &nids, &label, &buf, err) != 0)
		return -1;
	if (nids > 1)
		ret = dgm_alembic_multiple_heads(err, s, ids, nids, id);
	else
		ret = dgm_alembic_for_ident(out, s, nids ? ids[0] : NULL, label, err);
	free(ids);
	free(buf);
	return ret;
}

/* One step of _walk: the candidates from `initial`. */
static int walk_children(dgm_revlist *children, const dgm_alembic_script *s, long initial,
			 bool up, const char *label, dgm_error *err)
{
	dgm_revlist from = { 0 };
	int ret = 0;

	if (up) {
		if (initial == DGM_REV_BASE)
			return dgm_error_set(err, DGM_E_ALEMBIC, "cannot walk up from 'base'");
		if (initial == DGM_REV_NONE)
			for (size_t i = 0; i < s->nbases; i++)
				dgm_revlist_push(&from, (long)s->bases[i]->index);
		else
			for (size_t i = 0; i < s->graph->nodes[initial].next.n; i++)
				dgm_revlist_push(&from, s->graph->nodes[initial].next.v[i]);
		if (label && *label)
			ret = dgm_alembic_filter_lineage(children, s, from.v, from.n, label, false,
							 err);
		else
			for (size_t i = 0; i < from.n; i++)
				dgm_revlist_push(children, from.v[i]);
	} else if (initial != DGM_REV_BASE) {
		if (initial == DGM_REV_NONE)
			for (size_t i = 0; i < s->nheads; i++)
				dgm_revlist_push(children, (long)s->heads[i]->index);
		else
			for (size_t i = 0; i < s->graph->nodes[initial].down.n; i++)
				dgm_revlist_push(children, s->graph->nodes[initial].down.v[i]);
		if (!children->n)
			dgm_revlist_push(children, DGM_REV_BASE);
	}
	dgm_revlist_free(&from);
	return ret;
}

int dgm_alembic_walk_steps(long *out, const dgm_alembic_script *s, long start, long steps,
			   const char *branch_label, bool no_overwalk, dgm_error *err)
{
	long initial = start;
	/* unsigned: even LONG_MIN has a magnitude; the loop ends at the
	 * graph's end (no children) long before a large count runs out */
	unsigned long n = steps < 0 ? 0UL - (unsigned long)steps : (unsigned long)steps;

	for (unsigned long i = 0; i < n; i++) {
		dgm_revlist children = { 0 };

		if (walk_children(&children, s, initial, steps > 0, branch_label, err) != 0) {
			dgm_revlist_free(&children);
			return -1;
		}
		if (children.n == 0) {
			*out = no_overwalk ? DGM_REV_NONE : initial;
			dgm_revlist_free(&children);
			return 0;
		}
		if (children.n > 1) {
			dgm_revlist_free(&children);
			return dgm_error_set(err, DGM_E_ALEMBIC, "ambiguous walk");
		}
		initial = children.v[0];
		dgm_revlist_free(&children);
	}
	*out = initial;
	return 0;
}
