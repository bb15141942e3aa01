/*
 * fuzz_graph.c - a whole Alembic project loaded through a tree held in
 * memory (src/alembic/load.c, graph.c, set.c), then walked (walk.c).
 *
 * The input is a small archive of text files (the first one is the
 * project's alembic.ini) and queries:
 *   === alembic.ini
 *   [alembic]
 *   script_location = migrations
 *   === migrations/versions/a.py
 *   revision = 'a'
 *   ...
 *   === ?
 *   up a > +1          upgrade from the revisions before '>' to the target
 *   down b > base      downgrade likewise
 *   history a heads    history -r a:heads ('-' for none)
 *   resolve a@head     an identifier
 * Whatever the queries, the graph's heads, an upgrade to heads from
 * nothing, a downgrade to base from the heads and the full history run.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "dgm/alembic.h"
#include "dgm/tree.h"
#include "fuzz.h"

#define MAX_QUERIES 16
#define MAX_CURRENT 8

typedef struct mem_file {
	const char *path;   /* NUL-terminated inside the copy of the input */
	const char *data;
	size_t len;
} mem_file;

typedef struct mem_tree {
	mem_file *files;
	size_t n;
	const char *queries;
} mem_tree;

/* PATH lies below DIR ("" is the root): the rest of it, else NULL. */
static const char *below(const char *path, const char *dir)
{
	size_t n = strlen(dir);

	if (n == 0)
		return path;
	if (strncmp(path, dir, n) != 0 || path[n] != '/')
		return NULL;
	return path + n + 1;
}

static int mem_list(void *ctx, const char *dir, dgm_tree_entry_cb cb, void *payload,
		    dgm_error *err)
{
	mem_tree *t = ctx;

	for (size_t i = 0; i < t->n; i++) {
		const char *rest = below(t->files[i].path, dir), *slash;
		bool seen = false;
		size_t len;
		char *name;
		int rc;

		if (!rest || !*rest)
			continue;
		slash = strchr(rest, '/');
		len = slash ? (size_t)(slash - rest) : strlen(rest);
		/* one entry per name: a folder holds many files */
		for (size_t j = 0; j < i && !seen; j++) {
			const char *r2 = below(t->files[j].path, dir);

			seen = r2 && !strncmp(r2, rest, len) && (r2[len] == '/' || !r2[len]);
		}
		if (seen || len == 0)
			continue;
		name = dgm_xstrndup(rest, len);
		rc = cb(name, slash != NULL, payload);
		free(name);
		if (rc)
			return rc;
	}
	return 0;
}

static int mem_read(void *ctx, const char *path, dgm_buf *out, dgm_error *err)
{
	mem_tree *t = ctx;

	for (size_t i = 0; i < t->n; i++)
		if (!strcmp(t->files[i].path, path)) {
			dgm_buf_clear(out);
			dgm_buf_put(out, t->files[i].data, t->files[i].len);
			return 0;
		}
	return dgm_error_set(err, DGM_E_IO, "cannot read '%s': not in the tree", path);
}

static int mem_kind(void *ctx, const char *path)
{
	mem_tree *t = ctx;

	if (!*path)
		return 2;
	for (size_t i = 0; i < t->n; i++) {
		if (!strcmp(t->files[i].path, path))
			return 1;
		if (below(t->files[i].path, path))
			return 2;
	}
	return 0;
}

static void mem_close(void *ctx)
{
}

/* Split TEXT (modified in place) at lines "=== PATH". */
static void split(mem_tree *t, char *text, size_t size)
{
	char *p = text, *end = text + size;
	mem_file *cur = NULL;

	while (p < end) {
		char *eol = memchr(p, '\n', (size_t)(end - p));

		if (!eol)
			eol = end;
		if (eol - p >= 4 && !memcmp(p, "=== ", 4)) {
			*eol = '\0';
			if (cur)
				cur->len = (size_t)(p - cur->data);
			if (!strcmp(p + 4, "?")) {
				t->queries = eol + 1 <= end ? eol + 1 : end;
				cur = NULL;
				/* the queries run to the end */
				break;
			}
			t->files = dgm_xrealloc(t->files, (t->n + 1) * sizeof(*t->files));
			cur = &t->files[t->n++];
			cur->path = p + 4;
			cur->data = eol < end ? eol + 1 : end;
			cur->len = 0;
		}
		p = eol + 1;
	}
	if (cur)
		cur->len = (size_t)(end - cur->data);
}

static void steps(const dgm_alembic_script *s, bool up, const char *const *cur, size_t n,
		  const char *target)
{
	dgm_alembic_steps st;
	dgm_error err = DGM_ERROR_INIT;

	if ((up ? dgm_alembic_upgrade(&st, s, cur, n, target, &err)
		: dgm_alembic_downgrade(&st, s, cur, n, target, &err)) == 0)
		dgm_alembic_steps_free(&st);
}

static void history(const dgm_alembic_script *s, const char *base, const char *head)
{
	dgm_alembic_steps st;
	dgm_error err = DGM_ERROR_INIT;

	if (dgm_alembic_history(&st, s, base, head, &err) == 0)
		dgm_alembic_steps_free(&st);
}

static void resolve(const dgm_alembic_script *s, const char *id)
{
	const dgm_alembic_rev **out = NULL, *one;
	dgm_error err = DGM_ERROR_INIT;
	size_t n = 0;

	if (dgm_alembic_resolve(&out, &n, s, id, &err) == 0)
		free(out);
	(void)dgm_alembic_resolve_one(&one, s, id, &err);
}

/* One query line (modified in place). */
static void query(const dgm_alembic_script *s, char *line)
{
	const char *words[MAX_CURRENT + 3];
	size_t n = 0, gt = 0;
	char *save = NULL;

	for (char *w = strtok_r(line, " \t", &save); w && n < MAX_CURRENT + 3;
	     w = strtok_r(NULL, " \t", &save)) {
		if (!strcmp(w, ">") && !gt)
			gt = n;
		words[n++] = w;
	}
	if (n < 2)
		return;
	if ((!strcmp(words[0], "up") || !strcmp(words[0], "down")) && gt && gt + 1 < n)
		steps(s, words[0][0] == 'u', words + 1, gt - 1, words[gt + 1]);
	else if (!strcmp(words[0], "history"))
		history(s, strcmp(words[1], "-") ? words[1] : NULL,
			n > 2 && strcmp(words[2], "-") ? words[2] : NULL);
	else if (!strcmp(words[0], "resolve"))
		resolve(s, words[1]);
}

static void queries(const dgm_alembic_script *s, const char *text)
{
	char *copy = dgm_xstrdup(text ? text : ""), *save = NULL;
	const char **heads = dgm_xcalloc(s->nheads + 1, sizeof(*heads));
	int count = 0;

	for (size_t i = 0; i < s->nheads; i++)
		heads[i] = s->heads[i]->id;
	resolve(s, "heads");
	steps(s, true, NULL, 0, "heads");
	steps(s, false, heads, s->nheads, "base");
	history(s, NULL, NULL);
	for (char *l = strtok_r(copy, "\n", &save); l && count < MAX_QUERIES;
	     l = strtok_r(NULL, "\n", &save), count++)
		query(s, l);
	free(heads);
	free(copy);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_quiet();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = fuzz_text(data, size);
	mem_tree mt = { NULL, 0, NULL };
	dgm_tree tree = { &mt, "fuzz", mem_list, mem_read, mem_kind, mem_close };
	const dgm_alembic_load_opts opts = { NULL, NULL, NULL, true };
	dgm_alembic_script *s = NULL;
	dgm_error err = DGM_ERROR_INIT;

	split(&mt, text, size);
	/* the first file is the ini */
	if (mt.n && dgm_alembic_load(&s, &tree, mt.files[0].path, &opts, &err) == 0) {
		queries(s, mt.queries);
		dgm_alembic_free(s);
	}
	free(mt.files);
	free(text);
	return 0;
}
