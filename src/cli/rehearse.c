/* rehearse.c - `dgmigrate rehearse PLAN [--step] [--json] [--wait-lock D]`. */
#include "dgm/cli.h"
#include "dgm/log.h"
#include "dgm/plan.h"
#include "dgm/rehearse.h"

int dgm_cmd_rehearse(const dgm_args *args, dgm_error *err)
{
	dgm_rehearse_opts o = { .step = dgm_args_flag(args, "step") };
	dgm_plan plan;
	int ret;

	if (dgm_args_wait_lock(&o.wait_lock_ms, args, err) ||
	    dgm_plan_load(&plan, args->pos[0], err))
		return -1;
	dgm_plan_register_secrets(&plan);
	ret = dgm_release_rehearse(&plan, &o, err);
	dgm_plan_free(&plan);
	return ret;
}
