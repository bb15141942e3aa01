/* fuzz_plan.c - a release plan (YAML) parsed, expanded and validated by
 * dgm_plan_parse (src/plan/), then the checks that read it: required
 * variables, secrets in argv, key positions. A few variables are set so
 * that ${VAR} expansion has something to expand. */
#include <stdlib.h>

#include "dgm/plan.h"
#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_quiet();
	setenv("DATABASE_URL", "postgresql://app:s3cret@localhost/app", 1);
	setenv("ML_MODEL_STORAGE_PATH", "/srv/models", 1);
	setenv("API_BASE_URL", "http://localhost:8000", 1);
	setenv("SECRET_KEY", "k", 1);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	dgm_plan plan;
	dgm_error err = DGM_ERROR_INIT;

	if (dgm_plan_parse(&plan, "plan.yaml", "/srv/plans", (const char *)data, size, &err) != 0)
		return 0;
	(void)dgm_plan_check_env(&plan, &err);
	(void)dgm_plan_check_argv_secrets(&plan, &err);
	(void)dgm_plan_where(&plan, "release.repository");
	(void)dgm_plan_where(&plan, "hooks.before[0].run");
	dgm_plan_free(&plan);
	return 0;
}
