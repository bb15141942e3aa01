/* rollback.c - `dgmigrate rollback --to TAG PLAN [...]`. */
#include <stdlib.h>

#include "dgm/cli.h"
#include "dgm/log.h"
#include "dgm/plan.h"
#include "dgm/release.h"
#include "dgm/snapshot.h"

int dgm_cmd_rollback(const dgm_args *args, dgm_error *err)
{
	dgm_rollback_opts o = {
		.to = dgm_args_get(args, "to"), .restore = -1,
		.accept_data_loss = dgm_args_flag(args, "accept-data-loss"),
		.reason = dgm_args_get(args, "reason"), .dry_run = dgm_args_flag(args, "dry-run"),
		.plan_path = args->npos ? args->pos[0] : getenv("DGMIGRATE_PLAN"),
	};
	dgm_plan plan;
	int ret;

	if (!o.to || !*o.to) {
		dgm_error_set(err, DGM_E_USAGE, "rollback needs --to TAG");
		dgm_error_hint(err, "usage: dgmigrate rollback --to TAG PLAN");
		return -1;
	}
	if (!o.plan_path) {
		dgm_error_set(err, DGM_E_USAGE, "rollback needs the release plan");
		dgm_error_hint(err, "pass PLAN, or set DGMIGRATE_PLAN");
		return -1;
	}
	if (dgm_args_flag(args, "restore") && dgm_args_flag(args, "no-restore")) {
		dgm_error_set(err, DGM_E_USAGE, "--restore and --no-restore contradict each other");
		return -1;
	}
	if (dgm_args_wait_lock(&o.wait_lock_ms, args, err))
		return -1;
	dgm_snapshot_trust_unsigned(dgm_args_flag(args, "trust-unsigned"));
	if (dgm_args_flag(args, "restore"))
		o.restore = 1;
	if (dgm_args_flag(args, "no-restore"))
		o.restore = 0;
	if (dgm_plan_load(&plan, o.plan_path, err))
		return -1;
	dgm_plan_register_secrets(&plan);
	ret = dgm_release_rollback(&plan, &o, err);
	dgm_plan_free(&plan);
	return ret;
}
