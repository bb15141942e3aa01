/*
 * verify_probe.c - drive src/verify/ the way `apply` will, for
 * tests/integration/t_verify.sh:
 *
 *   verify_probe [-v] PLAN post [HEADS]       postconditions; HEADS is
 *                                             "a,b" or "base" (optional)
 *   verify_probe [-v] PLAN hooks before|after
 *   verify_probe [-v] PLAN health
 *
 * Loads the plan, registers its secrets, runs the step and prints each
 * item on stdout as "ok|FAIL<TAB>NAME<TAB>EVIDENCE"; a failure is
 * reported on stderr like dgmigrate does, with its exit code.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dgm/log.h"
#include "dgm/pg.h"
#include "dgm/verify.h"

/* "a,b" -> {"a", "b"}; "base" -> {} (a non-NULL empty list). */
static char **split_heads(const char *arg, size_t *n)
{
	char **out = dgm_xcalloc(strlen(arg) + 2, sizeof(char *));
	char *copy = dgm_xstrdup(arg), *save = NULL;

	*n = 0;
	if (strcmp(arg, "base"))
		for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save))
			out[(*n)++] = dgm_xstrdup(t);
	free(copy);
	return out;
}

static int post(dgm_verify_result *res, const dgm_plan *plan, const char *heads,
		dgm_error *err)
{
	PGconn *conn = NULL;
	char **revs = NULL;
	size_t n = 0;
	int ret;

	if (dgm_pg_connect(&conn, plan->database.url, "dgmigrate verify_probe", err))
		return -1;
	if (heads)
		revs = split_heads(heads, &n);
	ret = dgm_verify_postconditions(res, conn, plan, revs, n, err);
	dgm_pg_strings_free(revs);
	dgm_pg_close(conn);
	return ret;
}

static int act(dgm_verify_result *res, const dgm_plan *plan, int argc, char **argv,
	       dgm_error *err)
{
	const char *what = argv[0];

	if (!strcmp(what, "post"))
		return post(res, plan, argc > 1 ? argv[1] : NULL, err);
	if (!strcmp(what, "hooks") && argc > 1 && !strcmp(argv[1], "before"))
		return dgm_verify_run_hooks(res, plan, &plan->hooks.before, "before", err);
	if (!strcmp(what, "hooks") && argc > 1 && !strcmp(argv[1], "after"))
		return dgm_verify_run_hooks(res, plan, &plan->hooks.after, "after", err);
	if (!strcmp(what, "health"))
		return dgm_verify_health(res, plan, err);
	return dgm_error_set(err, DGM_E_USAGE, "unknown action '%s'", what);
}

int main(int argc, char **argv)
{
	dgm_verify_result res = DGM_VERIFY_RESULT_INIT;
	dgm_error err = DGM_ERROR_INIT;
	dgm_plan plan;
	int rc = 0;

	if (argc > 1 && !strcmp(argv[1], "-v")) {
		dgm_log_set_level(DGM_LOG_DEBUG);
		argv++, argc--;
	}
	if (argc < 3) {
		fprintf(stderr, "usage: verify_probe [-v] PLAN post [HEADS] | hooks before|after | "
			"health\n");
		return 2;
	}
	if (dgm_plan_load(&plan, argv[1], &err)) {
		dgm_log_error_report(&err);
		return dgm_error_exit_code(&err);
	}
	dgm_plan_register_secrets(&plan);
	if (act(&res, &plan, argc - 2, argv + 2, &err)) {
		dgm_log_error_report(&err);
		rc = dgm_error_exit_code(&err);
	}
	for (size_t i = 0; i < res.count; i++)
		printf("%s\t%s\t%s\n", res.items[i].ok ? "ok" : "FAIL", res.items[i].name,
		       res.items[i].evidence);
	printf("items %zu failed %zu\n", res.count, res.failed);
	dgm_verify_result_free(&res);
	dgm_plan_free(&plan);
	dgm_log_clear_secrets();
	return rc;
}
