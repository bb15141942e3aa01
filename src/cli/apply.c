/* apply.c - `dgmigrate apply PLAN [--dry-run] [--json] [--wait-lock D]`. */
#include "dgm/cli.h"
#include "dgm/log.h"
#include "dgm/plan.h"
#include "dgm/release.h"

int dgm_cmd_apply(const dgm_args *args, dgm_error *err)
{
	dgm_apply_opts o = { .dry_run = dgm_args_flag(args, "dry-run"),
			     .force = dgm_args_flag(args, "force"), .plan_path = args->pos[0] };
	dgm_plan plan;
	int ret;

	if (dgm_args_wait_lock(&o.wait_lock_ms, args, err) ||
	    dgm_plan_load(&plan, args->pos[0], err))
		return -1;
	dgm_plan_register_secrets(&plan);
	ret = o.dry_run ? dgm_release_dry_run(&plan, &o, err) : dgm_release_apply(&plan, &o, err);
	dgm_plan_free(&plan);
	return ret;
}
