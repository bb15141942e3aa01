/*
 * alembic_dump.c - print what dgmigrate's Alembic port computes, in a
 * plain text format the equivalence check (tests/integration/
 * alembic_equiv.sh) compares with the real alembic.
 *
 *   alembic_dump [--sorted] [--ini PATH] DIR heads
 *   alembic_dump [--sorted] [--ini PATH] DIR history
 *   alembic_dump [--sorted] [--ini PATH] DIR graph
 *   alembic_dump [--sorted] [--ini PATH] DIR upgrade FROM TARGET
 *   alembic_dump [--sorted] [--ini PATH] DIR downgrade FROM TARGET
 *   alembic_dump [--sorted] [--ini PATH] DIR bench N
 *   alembic_dump [--sorted] [--ini PATH] DIR batch < QUERIES
 *
 * FROM is "base" or comma-separated revisions (the alembic_version
 * rows). upgrade/downgrade print one "upgrade A, B -> C" line a step,
 * as Alembic's "-- Running ..." comments do, then "heads: X Y". graph
 * prints "id|down,...|depends_on,...|labels,...|doc" a revision
 * (depends_on as written, as `alembic history` shows it). batch reads
 * "resolve ID", "upgrade FROM TARGET", "downgrade FROM TARGET" lines and
 * answers each with one line: "ok ID ... | HEAD ..." or "error MESSAGE"
 * (tests/tools/alembic_fuzz.py).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dgm/alembic.h"
#include "dgm/log.h"

static void print_list(char *const *items, size_t n, const char *sep)
{
	for (size_t i = 0; i < n; i++)
		printf("%s%s", i ? sep : "", items[i]);
}

static void print_steps(const dgm_alembic_steps *st)
{
	for (size_t i = 0; i < st->count; i++) {
		const dgm_alembic_rev *r = st->revs[i];

		if (st->upgrade) {
			printf("upgrade ");
			print_list(r->down, r->ndown, ", ");
			printf(" -> %s\n", r->id);
		} else {
			printf("downgrade %s -> ", r->id);
			print_list(r->down, r->ndown, ", ");
			printf("\n");
		}
	}
	printf("heads:");
	for (size_t i = 0; i < st->nheads_after; i++)
		printf(" %s", st->heads_after[i]->id);
	printf("\n");
}

static size_t split_from(const char **out, char *from)
{
	size_t n = 0;

	if (!strcmp(from, "base"))
		return 0;
	for (char *p = strtok(from, ","); p && n < 256; p = strtok(NULL, ","))
		out[n++] = p;
	return n;
}

static void print_graph(const dgm_alembic_script *s)
{
	for (size_t i = 0; i < s->count; i++) {
		const dgm_alembic_rev *r = s->revs[i];

		printf("%s|", r->id);
		print_list(r->down, r->ndown, ",");
		printf("|");
		print_list(r->depends, r->ndepends, ",");
		printf("|");
		print_list((char *const *)r->branch_labels, r->nbranch_labels, ",");
		printf("|%s\n", r->doc);
	}
}

static int bench(dgm_tree *tree, const char *ini, const dgm_alembic_load_opts *o, int n,
		 dgm_error *err)
{
	struct timespec a, b;
	double best = 1e9;

	for (int i = 0; i < n; i++) {
		dgm_alembic_script *s;
		double ms;

		clock_gettime(CLOCK_MONOTONIC, &a);
		if (dgm_alembic_load(&s, tree, ini, o, err) != 0)
			return -1;
		for (size_t h = 0; h < s->nheads; h++)
			fprintf(stderr, "%s%s", s->heads[h]->id, h + 1 < s->nheads ? " " : "\n");
		clock_gettime(CLOCK_MONOTONIC, &b);
		ms = (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6;
		if (ms < best)
			best = ms;
		dgm_alembic_free(s);
	}
	printf("best of %d: %.2f ms\n", n, best);
	return 0;
}

static void answer(const dgm_alembic_rev *const *revs, size_t n,
		   const dgm_alembic_rev *const *heads, size_t nheads)
{
	printf("ok");
	for (size_t i = 0; i < n; i++)
		printf(" %s", revs[i]->id);
	printf(" |");
	for (size_t i = 0; i < nheads; i++)
		printf(" %s", heads[i]->id);
	printf("\n");
}

static void batch_line(dgm_alembic_script *s, char *line)
{
	dgm_error err = DGM_ERROR_INIT;
	char *cmd = strtok(line, " \n"), *a = strtok(NULL, " \n"), *b = strtok(NULL, " \n");
	const char *from[256];
	int rc = -1;

	if (cmd && a && !strcmp(cmd, "resolve")) {
		const dgm_alembic_rev **revs;
		size_t n;

		if ((rc = dgm_alembic_resolve(&revs, &n, s, a, &err)) == 0) {
			answer(revs, n, NULL, 0);
			free(revs);
		}
	} else if (cmd && a && b) {
		dgm_alembic_steps st;
		size_t n = split_from(from, a);

		rc = !strcmp(cmd, "upgrade") ? dgm_alembic_upgrade(&st, s, from, n, b, &err)
			: dgm_alembic_downgrade(&st, s, from, n, b, &err);
		if (rc == 0) {
			answer(st.revs, st.count, st.heads_after, st.nheads_after);
			dgm_alembic_steps_free(&st);
		}
	} else {
		dgm_error_set(&err, DGM_E_USAGE, "bad query");
	}
	if (rc != 0)
		printf("error %s\n", err.msg);
	fflush(stdout);
}

static int run(dgm_alembic_script *s, int argc, char **argv, dgm_error *err)
{
	const char *from[256];
	dgm_alembic_steps st;
	const char *cmd = argv[0];

	if (!strcmp(cmd, "heads")) {
		for (size_t i = 0; i < s->nheads; i++)
			printf("%s\n", s->heads[i]->id);
		return 0;
	}
	if (!strcmp(cmd, "batch")) {
		char line[4096];

		while (fgets(line, sizeof(line), stdin))
			batch_line(s, line);
		return 0;
	}
	if (!strcmp(cmd, "graph")) {
		print_graph(s);
		return 0;
	}
	if (!strcmp(cmd, "history")) {
		if (dgm_alembic_history(&st, s, argc > 1 ? argv[1] : NULL, argc > 2 ? argv[2] : NULL,
					err) != 0)
			return -1;
		for (size_t i = 0; i < st.count; i++)
			printf("%s\n", st.revs[i]->id);
		dgm_alembic_steps_free(&st);
		return 0;
	}
	if ((strcmp(cmd, "upgrade") && strcmp(cmd, "downgrade")) || argc != 3) {
		fprintf(stderr, "usage: alembic_dump [--sorted] [--ini PATH] DIR "
			"heads|history|graph|upgrade FROM TO|downgrade FROM TO|bench N\n");
		exit(2);
	}
	{
		size_t n = split_from(from, argv[1]);
		int rc = !strcmp(cmd, "upgrade") ? dgm_alembic_upgrade(&st, s, from, n, argv[2], err)
			: dgm_alembic_downgrade(&st, s, from, n, argv[2], err);

		if (rc != 0)
			return -1;
	}
	print_steps(&st);
	dgm_alembic_steps_free(&st);
	return 0;
}

int main(int argc, char **argv)
{
	dgm_alembic_load_opts o = { 0 };
	const char *ini = "alembic.ini";
	dgm_error err = DGM_ERROR_INIT;
	dgm_alembic_script *s = NULL;
	dgm_tree tree;
	int i = 1, rc = 1;

	for (; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "--sorted"))
			o.sort_files = true;
		else if (!strcmp(argv[i], "--ini") && i + 1 < argc)
			ini = argv[++i];
		else if (!strcmp(argv[i], "--debug"))
			dgm_log_set_level(DGM_LOG_DEBUG);
	}
	if (argc - i < 2) {
		fprintf(stderr, "usage: alembic_dump [--sorted] [--ini PATH] DIR COMMAND ...\n");
		return 2;
	}
	if (dgm_tree_open_fs(&tree, argv[i], &err) != 0)
		goto out;
	if (!strcmp(argv[i + 1], "bench")) {
		rc = bench(&tree, ini, &o, argc > i + 2 ? atoi(argv[i + 2]) : 10, &err) ? 1 : 0;
		dgm_tree_close(&tree);
		goto out;
	}
	if (dgm_alembic_load(&s, &tree, ini, &o, &err) == 0 &&
	    run(s, argc - i - 1, argv + i + 1, &err) == 0)
		rc = 0;
	dgm_alembic_free(s);
	dgm_tree_close(&tree);
out:
	if (rc)
		dgm_log_error_report(&err);
	return rc;
}
