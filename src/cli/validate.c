/* validate.c - `dgmigrate validate PLAN`: check the plan and its
 * environment, change nothing. The same preflight apply runs, without
 * the checks that only matter when something is about to change. */
#include "dgm/cli.h"
#include "dgm/log.h"
#include "dgm/plan.h"
#include "dgm/release.h"

int dgm_cmd_validate(const dgm_args *args, dgm_error *err)
{
	dgm_facts facts;
	dgm_plan plan;
	int ret = -1;

	if (dgm_plan_load(&plan, args->pos[0], err))
		return -1;
	dgm_plan_register_secrets(&plan);
	dgm_info("plan '%s': release '%s', tag '%s'", args->pos[0], plan.release.name,
		 plan.release.tag);
	if (dgm_preflight(&facts, &plan, DGM_PREFLIGHT_VALIDATE, dgm_args_flag(args, "offline"),
			  err) == 0) {
		dgm_info("plan '%s' is valid", args->pos[0]);
		dgm_event("valid", NULL);
		ret = 0;
	}
	dgm_facts_free(&facts);
	dgm_plan_free(&plan);
	return ret;
}
