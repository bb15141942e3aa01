/*
 * walk.c - which revisions `alembic upgrade` / `downgrade` run, in which
 * order, and what alembic_version holds afterwards.
 *
 * Ported from Alembic 1.8.1: RevisionMap._parse_upgrade_target,
 * _parse_downgrade_target, _collect_upgrade_revisions,
 * _collect_downgrade_revisions and _topological_sort (revision.py),
 * ScriptDirectory._upgrade_revs / _downgrade_revs (base.py: upgrades
 * run the sorted list reversed), and HeadMaintainer (migration.py).
 * Where Alembic would stop on an AssertionError or KeyError, an error
 * says so instead.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "dgm/alembic.h"
#include "dgm/buf.h"
#include "dgm/log.h"
#include "alembic_int.h"

#define NODE(s, i) (&(s)->graph->nodes[(i)])

/* ---- _relative_destination = (?:(.+?)@)?(\w+)?((?:\+|-)\d+) ---------- */

typedef struct relative {
	char *label;    /* NULL: none */
	char *symbol;   /* NULL: none */
	char *number;   /* "+2", "-1" as written */
	long value;     /* set by relative_steps() */
} relative;

static bool word_char(unsigned char c)
{
	return isalnum(c) || c == '_' || c >= 0x80;
}

/* The part after the optional "label@": (\w+)?[+-]\d+ at its start. */
static bool match_rest(relative *m, const char *t)
{
	size_t w = 0, d;

	while (word_char((unsigned char)t[w]))
		w++;
	if ((t[w] != '+' && t[w] != '-') || !isdigit((unsigned char)t[w + 1]))
		return false;
	for (d = w + 1; isdigit((unsigned char)t[d]); d++)
		;
	m->symbol = w ? dgm_xstrndup(t, w) : NULL;
	m->number = dgm_xstrndup(t + w, d - w);
	return true;
}

/* re.match semantics: anchored at the start only; the lazy label takes
 * the first '@' after which the rest matches. */
static bool match_relative(relative *m, const char *s)
{
	memset(m, 0, sizeof(*m));
	if (!s)
		return false;
	for (const char *at = strchr(s + (*s ? 1 : 0), '@'); at; at = strchr(at + 1, '@')) {
		if (memchr(s, '\n', (size_t)(at - s)))
			break;
		if (match_rest(m, at + 1)) {
			m->label = dgm_xstrndup(s, (size_t)(at - s));
			return true;
		}
	}
	return match_rest(m, s);
}

static void relative_free(relative *m)
{
	free(m->label);
	free(m->symbol);
	free(m->number);
	memset(m, 0, sizeof(*m));
}

/* The count of a matched target; never cut to a narrower type. */
static int relative_steps(relative *m, dgm_error *err)
{
	return dgm_alembic_parse_steps(&m->value, m->number, err);
}

/* NUMBER passed relative_steps() */
static int didnt_produce(dgm_error *err, const char *number)
{
	return dgm_error_set(err, DGM_E_ALEMBIC, "relative revision %s didn't produce %ld "
			     "migrations", number, labs(strtol(number, NULL, 10)));
}

/* ---- the ids a command starts from ------------------------------------ */

/* get_revisions() of a list of strings (NULL items are None). */
static int get_all(dgm_revlist *out, const dgm_alembic_script *s, const char *const *ids,
		   size_t n, dgm_error *err)
{
	for (size_t i = 0; i < n; i++)
		if (dgm_alembic_get_revisions(out, s, ids[i], err) != 0)
			return -1;
	return 0;
}

static int get_rev_labelled(long *out, const dgm_alembic_script *s, const char *label,
			    const char *symbol, dgm_error *err)
{
	char *id;
	int rc;

	if (!label)
		return dgm_alembic_get_revision(out, s, symbol, err);
	id = dgm_xasprintf("%s@%s", label, symbol);
	rc = dgm_alembic_get_revision(out, s, id, err);
	free(id);
	return rc;
}

/* _filter_into_branch_heads(get_revisions(ids) + their ancestors) */
static int all_current(dgm_revlist *out, const dgm_alembic_script *s, const char *const *ids,
		       size_t n, dgm_error *err)
{
	dgm_revlist top = { 0 };
	dgm_bits set;
	int ret = -1;

	if (get_all(&top, s, ids, n, err) != 0)
		goto out;
	if (dgm_alembic_related(s, DGM_REL_NORM_DOWN, top.v, top.n, false, &set, NULL, err) != 0)
		goto out;
	for (size_t i = 0; i < s->count; i++) {
		dgm_bits desc;
		long self = (long)i;
		bool keep = true;

		if (!dgm_bits_test(&set, i))
			continue;
		if (dgm_alembic_related(s, DGM_REL_NEXT, &self, 1, false, &desc, NULL, err) != 0) {
			dgm_bits_free(&set);
			goto out;
		}
		for (size_t j = 0; j < s->count && keep; j++)
			keep = j == i || !(dgm_bits_test(&desc, j) && dgm_bits_test(&set, j));
		dgm_bits_free(&desc);
		if (keep)
			dgm_revlist_push(out, self);
	}
	dgm_bits_free(&set);
	ret = 0;
out:
	dgm_revlist_free(&top);
	return ret;
}

/* ---- targets ---------------------------------------------------------- */

/* The start of a relative upgrade without a symbol ("+2", "label@+2"). */
static int upgrade_start(long *start, const dgm_alembic_script *s, const char *const *cur,
			 size_t ncur, const char *label, dgm_error *err)
{
	dgm_revlist revs = { 0 }, starts = { 0 }, active = { 0 };
	dgm_bits anc = { 0 };
	int ret = -1;

	*start = DGM_REV_NONE;
	if (!label) {
		if (ncur > 1) {
			dgm_error_set(err, DGM_E_ALEMBIC, "ambiguous upgrade from multiple "
				      "current revisions");
			return -1;
		}
		return ncur ? dgm_alembic_get_revision(start, s, cur[0], err) : 0;
	}
	if (get_all(&revs, s, cur, ncur, err) != 0 ||
	    dgm_alembic_filter_lineage(&starts, s, revs.v, revs.n, label, false, err) != 0)
		goto out;
	if (!starts.n) {
		/* the branch is not a head: backtrack to where it forks */
		dgm_revlist onbranch = { 0 };
		dgm_bits downs;

		if (dgm_alembic_related(s, DGM_REL_NORM_DOWN, revs.v, revs.n, false, &anc, NULL,
					err) != 0)
			goto out;
		for (size_t i = 0; i < s->count; i++)
			if (dgm_bits_test(&anc, i))
				dgm_revlist_push(&onbranch, (long)i);
		if (dgm_alembic_filter_lineage(&active, s, onbranch.v, onbranch.n, label, false,
					       err) != 0) {
			dgm_revlist_free(&onbranch);
			goto out;
		}
		dgm_revlist_free(&onbranch);
		dgm_bits_init(&downs, s->count);
		for (size_t i = 0; i < active.n; i++)
			for (size_t k = 0; k < NODE(s, active.v[i])->norm_down.n; k++)
				dgm_bits_set(&downs, (size_t)NODE(s, active.v[i])->norm_down.v[k]);
		for (size_t i = 0; i < active.n; i++)
			if (!dgm_bits_test(&downs, (size_t)active.v[i]))
				dgm_revlist_push(&starts, active.v[i]);
		dgm_bits_free(&downs);
		if (!starts.n)
			dgm_revlist_push(&starts, DGM_REV_NONE);
	}
	if (starts.n > 1) {
		dgm_error_set(err, DGM_E_ALEMBIC, "ambiguous upgrade from multiple current "
			      "revisions");
		goto out;
	}
	*start = starts.v[0];
	ret = 0;
out:
	dgm_revlist_free(&revs);
	dgm_revlist_free(&starts);
	dgm_revlist_free(&active);
	dgm_bits_free(&anc);
	return ret;
}

/* _parse_upgrade_target: the revisions to upgrade to. */
static int upgrade_target(dgm_revlist *out, const dgm_alembic_script *s, const char *const *cur,
			  size_t ncur, const char *target, bool assert_rel, dgm_error *err)
{
	relative m;
	long start, rev;
	int ret = -1;

	if (!match_relative(&m, target))
		return dgm_alembic_get_revisions(out, s, target, err);
	if (relative_steps(&m, err) != 0)
		goto out;
	if (m.value > 0 && !m.symbol) {
		if (upgrade_start(&start, s, cur, ncur, m.label, err) != 0 ||
		    dgm_alembic_walk_steps(&rev, s, start, m.value, m.label, assert_rel,
					   err) != 0)
			goto out;
		if (rev == DGM_REV_NONE) {
			didnt_produce(err, m.number);
			goto out;
		}
	} else if (m.value > 0) {
		if (dgm_alembic_get_revision(&start, s, m.symbol, err) != 0 ||
		    dgm_alembic_walk_steps(&rev, s, start, m.value, m.label, assert_rel,
					   err) != 0)
			goto out;
	} else {
		if (!m.symbol) {
			didnt_produce(err, m.number);
			goto out;
		}
		if (get_rev_labelled(&start, s, m.label, m.symbol, err) != 0 ||
		    dgm_alembic_walk_steps(&rev, s, start, m.value, NULL, assert_rel,
					   err) != 0)
			goto out;
	}
	dgm_revlist_push(out, rev);
	ret = 0;
out:
	relative_free(&m);
	return ret;
}

/* A relative downgrade without a symbol ("-1", "label@-1"): the current
 * revision it counts from. *label may be replaced. */
static int downgrade_symbol(char **symbol, char **label, const dgm_alembic_script *s,
			    const char *const *cur, size_t ncur, const char *number,
			    dgm_error *err)
{
	if (*label) {
		dgm_revlist revs = { 0 }, on = { 0 };
		int ret = -1;

		for (size_t i = 0; i < ncur; i++) {
			long r;

			if (dgm_alembic_for_ident(&r, s, cur[i], NULL, err) != 0)
				goto out;
			dgm_revlist_push(&revs, r);
		}
		if (dgm_alembic_filter_lineage(&on, s, revs.v, revs.n, *label, false, err) != 0)
			goto out;
		if (!on.n) {
			dgm_revlist_free(&revs);
			if (all_current(&revs, s, cur, ncur, err) != 0 ||
			    dgm_alembic_filter_lineage(&on, s, revs.v, revs.n, *label, false, err))
				goto out;
		}
		if (on.n != 1 || on.v[0] < 0) {
			dgm_error_set(err, DGM_E_ALEMBIC, "cannot tell which current revision of "
				      "branch '%s' to count from (Alembic stops here)", *label);
			goto out;
		}
		*symbol = dgm_xstrdup(s->revs[on.v[0]]->id);
		ret = 0;
out:
		dgm_revlist_free(&revs);
		dgm_revlist_free(&on);
		return ret;
	}
	if (!ncur)
		return didnt_produce(err, number);
	for (size_t i = 1; i < ncur; i++)
		if (strcmp(cur[i], cur[0]) != 0) {
			dgm_warn("downgrade -1 from multiple heads is ambiguous; this usage will "
				 "be disallowed in a future release");
			break;
		}
	*symbol = dgm_xstrdup(cur[0]);
	*label = dgm_xstrdup(cur[0]);
	return 0;
}

/* _parse_downgrade_target: *label (malloc'd or NULL) and the target
 * revision (NONE for base, BASE for a walk that reached base). */
static int downgrade_target(char **label, long *rev, const dgm_alembic_script *s,
			    const char *const *cur, size_t ncur, const char *target,
			    bool assert_rel, dgm_error *err)
{
	relative m;
	long start;
	int ret = -1;

	*label = NULL;
	*rev = DGM_REV_NONE;
	if (!target)
		return 0;
	if (!match_relative(&m, target)) {
		const char *at = strrchr(target, '@');

		if (at && at > target)
			*label = dgm_xstrndup(target, (size_t)(at - target));
		return dgm_alembic_get_revision(rev, s, at ? at + 1 : target, err);
	}
	if (relative_steps(&m, err) != 0)
		goto out;
	if (m.value >= 0) {
		if (!m.symbol) {
			didnt_produce(err, m.number);
			goto out;
		}
		if (dgm_alembic_get_revision(&start, s, m.symbol, err) != 0 ||
		    dgm_alembic_walk_steps(rev, s, start, m.value, m.label, assert_rel,
					   err) != 0)
			goto out;
		if (*rev == DGM_REV_NONE) {
			dgm_error_set(err, DGM_E_ALEMBIC, "walked too far");
			goto out;
		}
	} else {
		bool rel = !m.symbol;

		if (rel && downgrade_symbol(&m.symbol, &m.label, s, cur, ncur, m.number, err) != 0)
			goto out;
		if (get_rev_labelled(&start, s, m.label, m.symbol, err) != 0 ||
		    dgm_alembic_walk_steps(rev, s, start, m.value, NULL, assert_rel, err) != 0)
			goto out;
		if (*rev == DGM_REV_NONE) {
			if (rel)
				didnt_produce(err, m.number);
			else
				dgm_error_set(err, DGM_E_ALEMBIC, "walked too far");
			goto out;
		}
	}
	*label = m.label;
	m.label = NULL;
	ret = 0;
out:
	relative_free(&m);
	return ret;
}

/* ---- collecting ------------------------------------------------------- */

/* The lower bound of _collect_upgrade_revisions: a string (history) or
 * a list of ids (the current heads). */
typedef struct lower {
	const char *str;
	const char *const *ids;
	size_t nids;
} lower;

static int require_revisions(const dgm_revlist *l, const char *what, dgm_error *err)
{
	for (size_t i = 0; i < l->n; i++)
		if (l->v[i] < 0)
			return dgm_error_set(err, DGM_E_ALEMBIC, "%s leads to %s, not to a revision "
					     "(Alembic stops here)", what,
					     l->v[i] == DGM_REV_BASE ? "base" : "nothing");
	return 0;
}

/* "label@..." as the lower bound keeps the targets on that branch. */
static int keep_branch_targets(dgm_revlist *targets, const dgm_alembic_script *s,
			       const char *lower_str, dgm_error *err)
{
	char *branch = dgm_xstrndup(lower_str, strcspn(lower_str, "@"));
	const char *name = branch;
	long br;
	size_t k = 0;

	if (dgm_alembic_get_revision(&br, s, branch, err) != 0) {
		free(branch);
		return -1;
	}
	if (br >= 0 && !strcmp(s->revs[br]->id, branch)) {
		if (s->revs[br]->nbranch_labels != 1) {
			free(branch);
			return dgm_error_set(err, DGM_E_ALEMBIC, "revision %s used as a branch "
					     "needs exactly one branch label", s->revs[br]->id);
		}
		name = s->revs[br]->branch_labels[0];
	}
	for (size_t i = 0; i < targets->n; i++)
		if (dgm_alembic_has_label(s->revs[targets->v[i]], name))
			targets->v[k++] = targets->v[i];
	targets->n = k;
	free(branch);
	return 0;
}

static void bits_add_list(dgm_bits *b, const dgm_revlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		if (l->v[i] >= 0)
			dgm_bits_set(b, (size_t)l->v[i]);
}

/* The "lower is relative" special case (history -r-3:). */
static int relative_lower(dgm_revlist *current, const char **lower_str, char **keep,
			  const dgm_alembic_script *s, const char *upper, bool assert_rel,
			  dgm_error *err)
{
	char *label = NULL;
	long rev;

	if (downgrade_target(&label, &rev, s, &upper, 1, *lower_str, assert_rel, err) != 0)
		return -1;
	free(label);
	current->n = 0;
	if (rev == DGM_REV_NONE)
		return dgm_error_set(err, DGM_E_ALEMBIC, "'%s' leads nowhere", *lower_str);
	if (rev == DGM_REV_BASE) {
		*lower_str = NULL;
		return 0;
	}
	dgm_revlist_push(current, rev);
	*keep = dgm_xstrdup(s->revs[rev]->id);
	*lower_str = *keep;
	return 0;
}

/* The end of _collect_upgrade_revisions: with inclusive the lower
 * revisions run too; without implicit_base only their descendants do. */
static int trim_needs(dgm_bits *needs, const dgm_alembic_script *s, const char *lower_str,
		      const dgm_revlist *current, bool inclusive, bool implicit_base,
		      dgm_error *err)
{
	dgm_bits desc;

	if (inclusive && lower_str) {
		dgm_revlist low = { 0 };
		int rc = dgm_alembic_get_revisions(&low, s, lower_str, err);

		if (rc == 0)
			bits_add_list(needs, &low);
		dgm_revlist_free(&low);
		if (rc != 0)
			return -1;
	} else if (inclusive) {
		bits_add_list(needs, current);
	}
	if (!current->n || implicit_base)
		return 0;
	if (dgm_alembic_related(s, DGM_REL_NEXT, current->v, current->n, true, &desc, NULL,
				err) != 0)
		return -1;
	dgm_bits_and(needs, &desc);
	dgm_bits_free(&desc);
	return 0;
}

/* _collect_upgrade_revisions: what an upgrade from LOWER to UPPER runs
 * (*needs) and the revisions it aims at (*targets, the sort's heads). */
static int collect_upgrade(dgm_bits *needs, dgm_revlist *targets, const dgm_alembic_script *s,
			   const char *upper, const lower *lo, bool inclusive, bool implicit_base,
			   bool assert_rel, dgm_error *err)
{
	const char *cur1[1];
	const char *const *cur = lo->str ? cur1 : lo->ids;
	size_t ncur = lo->str ? 1 : lo->nids;
	const char *lower_str = lo->str;
	char *keep = NULL;
	dgm_revlist current = { 0 };
	dgm_bits required = { 0 }, have = { 0 };
	int ret = -1;

	cur1[0] = lo->str;
	memset(needs, 0, sizeof(*needs));
	if (upgrade_target(targets, s, cur, ncur, upper, assert_rel, err) != 0 ||
	    require_revisions(targets, upper, err) != 0)
		goto out;
	if (lower_str && strchr(lower_str, '@') &&
	    keep_branch_targets(targets, s, lower_str, err) != 0)
		goto out;
	if (dgm_alembic_related(s, DGM_REL_NORM_DOWN, targets->v, targets->n, true, &required,
				NULL, err) != 0)
		goto out;
	if ((lower_str ? dgm_alembic_get_revisions(&current, s, lower_str, err)
	     : get_all(&current, s, lo->ids, lo->nids, err)) != 0)
		goto out;
	for (size_t i = 0; !implicit_base && i < current.n; i++)
		if (current.v[i] >= 0 && !dgm_bits_test(&required, (size_t)current.v[i])) {
			dgm_error_set(err, DGM_E_ALEMBIC, "requested range %s:%s does not refer to "
				      "ancestor/descendant revisions along the same branch",
				      lower_str ? lower_str : "current", upper);
			goto out;
		}
	if (current.n && current.v[0] == DGM_REV_NONE &&
	    relative_lower(&current, &lower_str, &keep, s, upper, assert_rel, err) != 0)
		goto out;
	if (require_revisions(&current, lower_str ? lower_str : "the current revision", err) ||
	    dgm_alembic_related(s, DGM_REL_NORM_DOWN, current.v, current.n, true, &have, NULL,
				err) != 0)
		goto out;
	dgm_bits_copy(needs, &required);
	dgm_bits_andnot(needs, &have);
	ret = trim_needs(needs, s, lower_str, &current, inclusive, implicit_base, err);
out:
	if (ret != 0)
		dgm_bits_free(needs);
	dgm_bits_free(&required);
	dgm_bits_free(&have);
	dgm_revlist_free(&current);
	free(keep);
	return ret;
}

/* The revisions a downgrade starts dropping from. */
static int downgrade_roots(dgm_revlist *roots, const dgm_alembic_script *s, long target,
			   bool inclusive, const char *label, dgm_error *err)
{
	dgm_bits anc;
	long br;
	size_t k = 0;

	if (target < 0) {
		for (size_t i = 0; i < s->count; i++)
			if (s->revs[i]->ndown == 0)
				dgm_revlist_push(roots, (long)i);
	} else if (inclusive) {
		dgm_revlist_push(roots, target);
	} else {
		for (size_t i = 0; i < NODE(s, target)->next.n; i++)
			dgm_revlist_push(roots, NODE(s, target)->next.v[i]);
	}
	if (!label || !*label || roots->n <= 1)
		return 0;
	if (dgm_alembic_resolve_branch(&br, s, label, err) != 0 ||
	    dgm_alembic_related(s, DGM_REL_DOWN, &br, 1, false, &anc, NULL, err) != 0)
		return -1;
	for (size_t i = 0; i < roots->n; i++)
		if (dgm_bits_test(&anc, (size_t)roots->v[i]))
			roots->v[k++] = roots->v[i];
	roots->n = k;
	dgm_bits_free(&anc);
	if (!k)
		return dgm_error_set(err, DGM_E_ALEMBIC, "not a valid downgrade target from "
				     "current heads");
	return 0;
}

/* _collect_downgrade_revisions: what a downgrade from CUR to TARGET
 * drops (*drop) and the current revisions (*heads, the sort's heads). */
static int collect_downgrade(dgm_bits *drop, dgm_revlist *heads, const dgm_alembic_script *s,
			     const char *const *cur, size_t ncur, const char *target,
			     bool inclusive, bool implicit_base, bool assert_rel, dgm_error *err)
{
	char *label = NULL;
	long trev;
	dgm_revlist roots = { 0 };
	dgm_bits active = { 0 };
	int ret = -1;

	memset(drop, 0, sizeof(*drop));
	if (downgrade_target(&label, &trev, s, cur, ncur, target, assert_rel, err) != 0)
		goto out;
	if (trev == DGM_REV_BASE)
		trev = DGM_REV_NONE;
	if (downgrade_roots(&roots, s, trev, inclusive, label, err) != 0 ||
	    get_all(heads, s, cur, ncur, err) != 0 || require_revisions(heads, "current", err) ||
	    dgm_alembic_related(s, DGM_REL_ALL_NEXT, roots.v, roots.n, false, drop, NULL,
				err) != 0)
		goto out;
	if (dgm_alembic_related(s, DGM_REL_NORM_DOWN, heads->v, heads->n, false, &active, NULL,
				err) != 0)
		goto out;
	dgm_bits_and(drop, &active);
	if (implicit_base) {
		dgm_bits below;

		if (dgm_alembic_related(s, DGM_REL_NORM_DOWN, roots.v, roots.n, false, &below,
					NULL, err) != 0)
			goto out;
		dgm_bits_andnot(&active, &below);
		dgm_bits_or(drop, &active);
		dgm_bits_free(&below);
	}
	if (trev >= 0 && !dgm_bits_any(drop) && !dgm_revlist_has(heads, trev)) {
		dgm_error_set(err, DGM_E_ALEMBIC, "destination %s is not a valid downgrade target "
			      "from current head(s)", target);
		goto out;
	}
	ret = 0;
out:
	if (ret != 0)
		dgm_bits_free(drop);
	free(label);
	dgm_revlist_free(&roots);
	dgm_bits_free(&active);
	return ret;
}

/* ---- _topological_sort ------------------------------------------------ */

typedef struct sorter {
	const dgm_alembic_script *s;
	dgm_bits todo;
	dgm_revlist heads;      /* current_heads */
	dgm_bits *anc;          /* ancestors_by_idx, parallel to heads */
	size_t nanc, canc;
} sorter;

static int sorter_add(sorter *st, long head, size_t at, dgm_error *err)
{
	dgm_bits b;

	if (dgm_alembic_related(st->s, DGM_REL_NORM_DOWN, &head, 1, false, &b, NULL, err) != 0)
		return -1;
	if (at < st->nanc) {
		dgm_bits_free(&st->anc[at]);
		st->anc[at] = b;
		st->heads.v[at] = head;
		return 0;
	}
	if (st->nanc == st->canc) {
		st->canc = st->canc ? st->canc * 2 : 8;
		st->anc = dgm_xrealloc(st->anc, st->canc * sizeof(*st->anc));
	}
	st->anc[st->nanc++] = b;
	dgm_revlist_push(&st->heads, head);
	return 0;
}

static void sorter_remove(sorter *st, size_t at)
{
	dgm_bits_free(&st->anc[at]);
	memmove(&st->anc[at], &st->anc[at + 1], (st->nanc - at - 1) * sizeof(*st->anc));
	memmove(&st->heads.v[at], &st->heads.v[at + 1], (st->heads.n - at - 1) * sizeof(long));
	st->nanc--;
	st->heads.n--;
}

/* After emitting `cand`, its parents take its place among the heads. */
static int advance(sorter *st, size_t *idx, long cand, dgm_error *err)
{
	const dgm_alembic_node *nd = NODE(st->s, cand);
	dgm_revlist add = { 0 };
	int ret = 0;

	for (size_t k = 0; k < nd->norm_down.n; k++) {
		long r = nd->norm_down.v[k];

		if (dgm_bits_test(&st->todo, (size_t)r) && !dgm_revlist_has(&st->heads, r))
			dgm_revlist_push(&add, r);
	}
	if (!add.n) {
		sorter_remove(st, *idx);
		*idx = *idx ? *idx - 1 : 0;
	} else if (!nd->norm_deps.n && nd->down.n == 1) {
		/* plain movement down a line: the ancestors stay valid */
		st->heads.v[*idx] = add.v[0];
		dgm_bits_unset(&st->anc[*idx], (size_t)cand);
	} else {
		ret = sorter_add(st, add.v[0], *idx, err);
		for (size_t k = 1; ret == 0 && k < add.n; k++)
			ret = sorter_add(st, add.v[k], st->nanc, err);
	}
	dgm_revlist_free(&add);
	return ret;
}

static int cmp_long(const void *a, const void *b)
{
	long x = *(const long *)a, y = *(const long *)b;

	return x < y ? -1 : x > y;
}

/* Revisions of TODO, each after everything that depends on it (heads
 * first), breaking ties by load order as Alembic does. */
static int topo_sort(dgm_revlist *out, const dgm_alembic_script *s, const dgm_bits *todo,
		     const dgm_revlist *heads, dgm_error *err)
{
	sorter st = { s, { 0 }, { 0 }, NULL, 0, 0 };
	dgm_revlist start = { 0 };
	size_t idx = 0, switches = 0;
	int ret = -1;

	dgm_bits_copy(&st.todo, todo);
	for (size_t i = 0; i < heads->n; i++)
		if (heads->v[i] >= 0 && dgm_bits_test(todo, (size_t)heads->v[i]) &&
		    !dgm_revlist_has(&start, heads->v[i]))
			dgm_revlist_push(&start, heads->v[i]);
	if (start.n)
		qsort(start.v, start.n, sizeof(long), cmp_long);
	for (size_t i = 0; i < start.n; i++)
		if (sorter_add(&st, start.v[i], st.nanc, err) != 0)
			goto out;
	while (st.heads.n) {
		long cand = st.heads.v[idx];
		size_t j;

		for (j = 0; j < st.nanc; j++)
			if (j != idx && dgm_bits_test(&st.anc[j], (size_t)cand))
				break;
		if (j < st.nanc) {
			/* another head depends on the candidate: that one goes first */
			idx = j;
			if (++switches > st.nanc) {
				dgm_error_set(err, DGM_E_ALEMBIC, "the revisions cannot be ordered");
				goto out;
			}
			continue;
		}
		switches = 0;
		if (dgm_bits_test(&st.todo, (size_t)cand)) {
			dgm_revlist_push(out, cand);
			dgm_bits_unset(&st.todo, (size_t)cand);
		}
		if (advance(&st, &idx, cand, err) != 0)
			goto out;
	}
	if (dgm_bits_any(&st.todo)) {
		dgm_error_set(err, DGM_E_ALEMBIC, "the revisions cannot be ordered: some are not "
			      "below the targets");
		goto out;
	}
	ret = 0;
out:
	for (size_t i = 0; i < st.nanc; i++)
		dgm_bits_free(&st.anc[i]);
	free(st.anc);
	dgm_revlist_free(&st.heads);
	dgm_bits_free(&st.todo);
	dgm_revlist_free(&start);
	return ret;
}

/* ---- HeadMaintainer --------------------------------------------------- */

static int heads_error(const dgm_alembic_script *s, long r, const char *what, dgm_error *err)
{
	return dgm_error_set(err, DGM_E_ALEMBIC, "alembic would fail at revision %s: %s",
			     s->revs[r]->id, what);
}

/* ancestors (with dependencies) of heads other than EXCEPT (bits) */
static int others_ancestors(dgm_bits *out, const dgm_alembic_script *s, const dgm_bits *heads,
			    const dgm_bits *except, dgm_error *err)
{
	dgm_revlist others = { 0 };
	int rc;

	for (size_t i = 0; i < s->count; i++)
		if (dgm_bits_test(heads, i) && !dgm_bits_test(except, i))
			dgm_revlist_push(&others, (long)i);
	rc = dgm_alembic_related(s, DGM_REL_NORM_DOWN, others.v, others.n, false, out, NULL, err);
	dgm_revlist_free(&others);
	return rc;
}

static int move(dgm_bits *heads, const dgm_alembic_script *s, long r, const dgm_bits *from,
		const dgm_bits *to, dgm_error *err)
{
	for (size_t i = 0; i < s->count; i++)
		if (dgm_bits_test(from, i) && !dgm_bits_test(heads, i))
			return heads_error(s, r, "a version row to remove is not there", err);
	dgm_bits_andnot(heads, from);
	for (size_t i = 0; i < s->count; i++)
		if (dgm_bits_test(to, i) && dgm_bits_test(heads, i))
			return heads_error(s, r, "a version row to add is already there", err);
	dgm_bits_or(heads, to);
	return 0;
}

static void bits_of(dgm_bits *b, size_t n, const dgm_revlist *l, long one)
{
	dgm_bits_init(b, n);
	if (l)
		bits_add_list(b, l);
	if (one >= 0)
		dgm_bits_set(b, (size_t)one);
}

/* to_revisions of a downgrade step minus what other heads still need. */
static int unmerge_to(dgm_bits *to, const dgm_alembic_script *s, const dgm_bits *heads, long r,
		      dgm_error *err)
{
	dgm_bits self, anc;

	bits_of(to, s->count, &NODE(s, r)->norm_down, -1);
	bits_of(&self, s->count, NULL, r);
	if (others_ancestors(&anc, s, heads, &self, err) != 0) {
		dgm_bits_free(&self);
		return -1;
	}
	dgm_bits_andnot(to, &anc);
	dgm_bits_free(&self);
	dgm_bits_free(&anc);
	return 0;
}

static int step_upgrade(dgm_bits *heads, const dgm_alembic_script *s, long r, dgm_error *err)
{
	const dgm_revlist *down = &NODE(s, r)->norm_down;
	dgm_bits from, to, inter;
	size_t hits;
	int ret = -1;

	bits_of(&from, s->count, down, -1);
	bits_of(&to, s->count, NULL, r);
	dgm_bits_copy(&inter, &from);
	dgm_bits_and(&inter, heads);
	hits = dgm_bits_count(&inter);
	if (down->n == 0 || hits == 0) {
		dgm_bits none;                                   /* new branch */

		dgm_bits_init(&none, s->count);
		ret = move(heads, s, r, &none, &to, err);
		dgm_bits_free(&none);
	} else if (down->n > 1 && hits > 1) {
		dgm_bits anc;                                    /* merge */

		if (others_ancestors(&anc, s, heads, &from, err) != 0)
			goto out;
		dgm_bits_andnot(&from, &anc);
		dgm_bits_free(&anc);
		ret = dgm_bits_any(&from) ? move(heads, s, r, &from, &to, err)
			: heads_error(s, r, "nothing to merge", err);
	} else if (down->n > 1 && hits != 1) {
		ret = heads_error(s, r, "can't do an UPDATE because downrevision is ambiguous", err);
	} else {
		ret = move(heads, s, r, down->n > 1 ? &inter : &from, &to, err);
	}
out:
	dgm_bits_free(&from);
	dgm_bits_free(&to);
	dgm_bits_free(&inter);
	return ret;
}

static int step_downgrade(dgm_bits *heads, const dgm_alembic_script *s, long r, dgm_error *err)
{
	const dgm_revlist *down = &NODE(s, r)->norm_down;
	bool in = dgm_bits_test(heads, (size_t)r);
	dgm_bits self, to = { 0 }, inter;
	int ret = -1;

	bits_of(&self, s->count, NULL, r);
	bits_of(&inter, s->count, down, -1);
	dgm_bits_and(&inter, heads);
	if (in && down->n && unmerge_to(&to, s, heads, r, err) != 0)
		goto out;
	if (in && (!down->n || !dgm_bits_any(&to))) {
		dgm_bits none;                                   /* delete */

		dgm_bits_init(&none, s->count);
		ret = move(heads, s, r, &self, &none, err);
		dgm_bits_free(&none);
	} else if (in && down->n > 1) {
		ret = move(heads, s, r, &self, &to, err);         /* unmerge */
	} else if (down->n > 1 && dgm_bits_count(&inter) != 1) {
		ret = heads_error(s, r, "can't do an UPDATE because downrevision is ambiguous", err);
	} else {
		dgm_bits dst;

		if (down->n > 1)
			dgm_bits_copy(&dst, &inter);
		else
			bits_of(&dst, s->count, down, -1);
		ret = move(heads, s, r, &self, &dst, err);
		dgm_bits_free(&dst);
	}
out:
	dgm_bits_free(&self);
	dgm_bits_free(&to);
	dgm_bits_free(&inter);
	return ret;
}

static int simulate(dgm_alembic_steps *out, const dgm_alembic_script *s, const dgm_revlist *cur,
		    dgm_error *err)
{
	dgm_bits heads;
	int ret = 0;

	bits_of(&heads, s->count, cur, -1);
	for (size_t i = 0; ret == 0 && i < out->count; i++)
		ret = out->upgrade ? step_upgrade(&heads, s, (long)out->revs[i]->index, err)
			: step_downgrade(&heads, s, (long)out->revs[i]->index, err);
	if (ret == 0) {
		out->heads_after = dgm_xcalloc(dgm_bits_count(&heads) + 1, sizeof(*out->heads_after));
		for (size_t i = 0; i < s->count; i++)
			if (dgm_bits_test(&heads, i))
				out->heads_after[out->nheads_after++] = s->revs[i];
	}
	dgm_bits_free(&heads);
	return ret;
}

/* ---- the commands ----------------------------------------------------- */

static void set_steps(dgm_alembic_steps *out, const dgm_alembic_script *s,
		      const dgm_revlist *order, bool reverse)
{
	out->revs = dgm_xcalloc(order->n + 1, sizeof(*out->revs));
	out->count = order->n;
	for (size_t i = 0; i < order->n; i++)
		out->revs[i] = s->revs[order->v[reverse ? order->n - 1 - i : i]];
}

/* The current heads as full ids, the way get_current_heads() gives them. */
static int current_ids(dgm_revlist *cur, const char ***ids, const dgm_alembic_script *s,
		       const char *const *current, size_t ncurrent, dgm_error *err)
{
	*ids = dgm_xcalloc(ncurrent + 1, sizeof(**ids));
	for (size_t i = 0; i < ncurrent; i++) {
		long r;

		if (dgm_alembic_get_revision(&r, s, current[i], err) != 0)
			return -1;
		if (r < 0)
			continue;
		(*ids)[cur->n] = s->revs[r]->id;
		dgm_revlist_push(cur, r);
	}
	return 0;
}

static int check_built(const dgm_alembic_script *s, dgm_error *err)
{
	if (!s->graph || !s->graph->built)
		return dgm_error_set(err, DGM_E_ALEMBIC, "the revision graph is not built");
	return 0;
}

int dgm_alembic_upgrade(dgm_alembic_steps *out, const dgm_alembic_script *s,
			const char *const *current, size_t ncurrent, const char *target,
			dgm_error *err)
{
	dgm_revlist cur = { 0 }, targets = { 0 }, order = { 0 };
	const char **ids = NULL;
	dgm_bits needs = { 0 };
	lower lo = { NULL, NULL, 0 };
	int ret = -1;

	memset(out, 0, sizeof(*out));
	out->upgrade = true;
	if (check_built(s, err) != 0 || current_ids(&cur, &ids, s, current, ncurrent, err) != 0)
		goto out;
	lo.ids = ids;
	lo.nids = cur.n;
	if (collect_upgrade(&needs, &targets, s, target, &lo, false, true, true, err) != 0 ||
	    topo_sort(&order, s, &needs, &targets, err) != 0)
		goto out;
	set_steps(out, s, &order, true);
	ret = simulate(out, s, &cur, err);
out:
	if (ret != 0)
		dgm_alembic_steps_free(out);
	dgm_revlist_free(&cur);
	dgm_revlist_free(&targets);
	dgm_revlist_free(&order);
	dgm_bits_free(&needs);
	free(ids);
	return ret;
}

int dgm_alembic_downgrade(dgm_alembic_steps *out, const dgm_alembic_script *s,
			  const char *const *current, size_t ncurrent, const char *target,
			  dgm_error *err)
{
	dgm_revlist cur = { 0 }, heads = { 0 }, order = { 0 };
	const char **ids = NULL;
	dgm_bits drop = { 0 };
	int ret = -1;

	memset(out, 0, sizeof(*out));
	if (check_built(s, err) != 0 || current_ids(&cur, &ids, s, current, ncurrent, err) != 0)
		goto out;
	if (collect_downgrade(&drop, &heads, s, ids, cur.n, target, false, false, true, err) ||
	    topo_sort(&order, s, &drop, &heads, err) != 0)
		goto out;
	set_steps(out, s, &order, false);
	ret = simulate(out, s, &cur, err);
out:
	if (ret != 0)
		dgm_alembic_steps_free(out);
	dgm_revlist_free(&cur);
	dgm_revlist_free(&heads);
	dgm_revlist_free(&order);
	dgm_bits_free(&drop);
	free(ids);
	return ret;
}

int dgm_alembic_history(dgm_alembic_steps *out, const dgm_alembic_script *s, const char *base,
			const char *head, dgm_error *err)
{
	dgm_revlist targets = { 0 }, order = { 0 };
	dgm_bits needs = { 0 };
	lower lo = { base ? base : "base", NULL, 0 };
	int ret = -1;

	memset(out, 0, sizeof(*out));
	out->upgrade = true;
	if (check_built(s, err) != 0 ||
	    collect_upgrade(&needs, &targets, s, head ? head : "heads", &lo, true, false, false,
			    err) != 0 ||
	    topo_sort(&order, s, &needs, &targets, err) != 0)
		goto out;
	set_steps(out, s, &order, false);
	out->heads_after = dgm_xcalloc(1, sizeof(*out->heads_after));
	ret = 0;
out:
	if (ret != 0)
		dgm_alembic_steps_free(out);
	dgm_revlist_free(&targets);
	dgm_revlist_free(&order);
	dgm_bits_free(&needs);
	return ret;
}

void dgm_alembic_steps_free(dgm_alembic_steps *st)
{
	if (!st)
		return;
	free(st->revs);
	free(st->heads_after);
	memset(st, 0, sizeof(*st));
}

/* ---- public resolution ------------------------------------------------ */

int dgm_alembic_resolve(const dgm_alembic_rev ***out, size_t *n, const dgm_alembic_script *s,
			const char *id, dgm_error *err)
{
	dgm_revlist l = { 0 };

	*out = NULL;
	*n = 0;
	if (check_built(s, err) != 0 || dgm_alembic_get_revisions(&l, s, id, err) != 0) {
		dgm_revlist_free(&l);
		return -1;
	}
	*out = dgm_xcalloc(l.n + 1, sizeof(**out));
	for (size_t i = 0; i < l.n; i++)
		if (l.v[i] >= 0)
			(*out)[(*n)++] = s->revs[l.v[i]];
	dgm_revlist_free(&l);
	return 0;
}

int dgm_alembic_resolve_one(const dgm_alembic_rev **out, const dgm_alembic_script *s,
			    const char *id, dgm_error *err)
{
	long r;

	*out = NULL;
	if (check_built(s, err) != 0 || dgm_alembic_get_revision(&r, s, id, err) != 0)
		return -1;
	*out = r >= 0 ? s->revs[r] : NULL;
	return 0;
}
