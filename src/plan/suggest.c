/* suggest.c - "did you mean 'tag'?" for unknown keys. */
#include <stdlib.h>
#include <string.h>

#include "dgm/buf.h"
#include "internal.h"

static size_t min3(size_t a, size_t b, size_t c)
{
	size_t m = a < b ? a : b;

	return m < c ? m : c;
}

size_t dgm_plan_edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), d;
	/* Three rows of the matrix: i-2, i-1 and i. */
	size_t *rows = dgm_xcalloc(3 * (lb + 1), sizeof(*rows));
	size_t *prev2 = rows, *prev = rows + lb + 1, *cur = rows + 2 * (lb + 1);

	for (size_t j = 0; j <= lb; j++)
		prev[j] = j;
	for (size_t i = 1; i <= la; i++) {
		cur[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t cost = a[i - 1] != b[j - 1];

			cur[j] = min3(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost);
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
			    prev2[j - 2] + 1 < cur[j])
				cur[j] = prev2[j - 2] + 1;
		}
		size_t *t = prev2;
		prev2 = prev;
		prev = cur;
		cur = t;
	}
	d = prev[lb];
	free(rows);
	return d;
}

/* How many edits still look like a typo rather than another word:
 * one for short keys, up to three for long ones. */
static size_t max_edits(const char *word)
{
	size_t n = 1 + strlen(word) / 4;

	return n > 3 ? 3 : n;
}

const char *dgm_plan_suggest(const char *word, const char *const *cands)
{
	const char *best = NULL;
	size_t best_d = (size_t)-1, wlen = strlen(word);

	for (size_t i = 0; cands[i]; i++) {
		size_t d = dgm_plan_edit_distance(word, cands[i]);

		if (d < best_d) {
			best_d = d;
			best = cands[i];
		}
	}
	if (best && best_d <= max_edits(word))
		return best;
	/* 'repo' for 'repository', 'compress' for 'compression'. */
	for (size_t i = 0; wlen >= 3 && cands[i]; i++)
		if (!strncmp(cands[i], word, wlen))
			return cands[i];
	return NULL;
}
