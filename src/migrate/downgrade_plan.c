/* downgrade_plan.c - the chain of `alembic downgrade` targets that lands
 * alembic_version exactly on a set of heads. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dgm/log.h"
#include "dgm/migrate.h"

#define MAX_STEPS 32

bool dgm_migrate_same_set(char *const *a, size_t na, char *const *b, size_t nb)
{
	if (na != nb)
		return false;
	for (size_t i = 0; i < na; i++) {
		bool found = false;

		for (size_t j = 0; j < nb && !found; j++)
			found = !strcmp(a[i], b[j]);
		if (!found)
			return false;
	}
	return true;
}

/* Mark r and everything it needs (down revisions and depends_on). */
static void mark_ancestors(const dgm_alembic_script *s, const dgm_alembic_rev *r, bool *mark)
{
	if (!r || mark[r->index])
		return;
	mark[r->index] = true;
	for (size_t i = 0; i < r->ndown; i++)
		mark_ancestors(s, dgm_alembic_find(s, r->down[i]), mark);
	for (size_t i = 0; i < r->ndeps; i++)
		mark_ancestors(s, r->deps[i], mark);
}

/* What is applied when alembic_version holds these ids. */
static bool *applied(const dgm_alembic_script *s, const char *const *ids, size_t n)
{
	bool *mark = dgm_xcalloc(s->count + 1, sizeof(bool));

	for (size_t i = 0; i < n; i++)
		mark_ancestors(s, dgm_alembic_find(s, ids[i]), mark);
	return mark;
}

/* The nearest ancestor of h that `keep` holds, breadth first; NULL when
 * the branch reaches base without meeting it. */
static const dgm_alembic_rev *fork_point(const dgm_alembic_script *s, const dgm_alembic_rev *h,
					 const bool *keep)
{
	const dgm_alembic_rev **queue = dgm_xcalloc(s->count + 1, sizeof(*queue));
	bool *seen = dgm_xcalloc(s->count + 1, sizeof(bool));
	const dgm_alembic_rev *found = NULL;
	size_t head = 0, tail = 0;

	queue[tail++] = h;
	seen[h->index] = true;
	while (head < tail && !found) {
		const dgm_alembic_rev *r = queue[head++];

		for (size_t i = 0; i < r->ndown && !found; i++) {
			const dgm_alembic_rev *d = dgm_alembic_find(s, r->down[i]);

			if (!d || seen[d->index])
				continue;
			if (keep[d->index])
				found = d;
			seen[d->index] = true;
			queue[tail++] = d;
		}
	}
	free(queue);
	free(seen);
	return found;
}

/* A step is good when Alembic accepts it, it removes something, and it
 * removes nothing that want needs. */
static bool step_ok(const dgm_alembic_script *s, const char *const *cur, size_t ncur,
		    const char *target, const bool *keep, dgm_alembic_steps *st)
{
	dgm_error ignore = DGM_ERROR_INIT;
	bool ok = true;

	memset(st, 0, sizeof(*st));
	if (dgm_alembic_downgrade(st, s, cur, ncur, target, &ignore))
		return false;
	if (st->count == 0) {
		dgm_alembic_steps_free(st);
		return false;
	}
	for (size_t i = 0; i < st->count && ok; i++)
		ok = !keep[st->revs[i]->index];
	if (!ok)
		dgm_alembic_steps_free(st);
	return ok;
}

/* Candidate targets for the next step, best first. */
static size_t candidates(char **out, const dgm_alembic_script *s, const char *const *cur,
			 size_t ncur, char *const *want, size_t nwant, const bool *keep)
{
	size_t n = 0;

	if (nwant == 0)
		out[n++] = dgm_xstrdup("base");
	if (nwant == 1)
		out[n++] = dgm_xstrdup(want[0]);
	for (size_t i = 0; i < ncur && n < 8; i++) {
		const dgm_alembic_rev *h = dgm_alembic_find(s, cur[i]);
		const dgm_alembic_rev *f;

		if (!h || keep[h->index])
			continue;
		f = fork_point(s, h, keep);
		out[n++] = dgm_xasprintf("%s@%s", h->id, f ? f->id : "base");
	}
	return n;
}

static void set_current(char ***cur, size_t *ncur, const dgm_alembic_steps *st)
{
	dgm_migrate_targets_free(*cur, *ncur);
	*ncur = st->nheads_after;
	*cur = dgm_xcalloc(*ncur + 1, sizeof(char *));
	for (size_t i = 0; i < *ncur; i++)
		(*cur)[i] = dgm_xstrdup(st->heads_after[i]->id);
}

int dgm_migrate_plan_downgrade(char ***targets, size_t *n, const dgm_alembic_script *s,
			       char *const *current, size_t ncur, char *const *want,
			       size_t nwant, dgm_error *err)
{
	bool *keep = applied(s, (const char *const *)want, nwant);
	char **cur = dgm_xcalloc(ncur + 1, sizeof(char *));
	size_t steps = 0;
	int ret = -1;

	*targets = dgm_xcalloc(MAX_STEPS + 1, sizeof(char *));
	*n = 0;
	for (size_t i = 0; i < ncur; i++)
		cur[i] = dgm_xstrdup(current[i]);
	while (!dgm_migrate_same_set(cur, ncur, want, nwant)) {
		char *cand[8];
		size_t nc = candidates(cand, s, (const char *const *)cur, ncur, want, nwant, keep);
		dgm_alembic_steps st;
		bool moved = false;

		for (size_t i = 0; i < nc; i++) {
			if (!moved && steps < MAX_STEPS &&
			    step_ok(s, (const char *const *)cur, ncur, cand[i], keep, &st)) {
				(*targets)[steps++] = cand[i];
				set_current(&cur, &ncur, &st);
				dgm_alembic_steps_free(&st);
				moved = true;
				continue;
			}
			free(cand[i]);
		}
		if (!moved) {
			dgm_error_set(err, DGM_E_ALEMBIC, "no sequence of 'alembic downgrade' reaches "
				      "exactly the heads %s%s from the database's revisions", nwant ?
				      want[0] : "base", nwant > 1 ? " and more" : "");
			dgm_error_hint(err, "restore the snapshot instead (--restore)");
			goto out;
		}
	}
	*n = steps;
	ret = 0;
out:
	if (ret) {
		dgm_migrate_targets_free(*targets, steps);
		*targets = NULL;
	}
	dgm_migrate_targets_free(cur, ncur);
	free(keep);
	return ret;
}

void dgm_migrate_targets_free(char **targets, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(targets[i]);
	free(targets);
}
