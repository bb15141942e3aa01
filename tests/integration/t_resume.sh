# t_resume.sh - a run killed with SIGKILL at every step boundary (and once
# in the middle of the upgrade) is settled by `dgmigrate resume`: either
# completed or put back, never left half-way.

prepare_v15() {
	setup_release "$TEST_DB"
	migrate_app app head
	psql_db "$TEST_DB" -c "INSERT INTO organizations (name, slug) VALUES ('a', 'a')" >/dev/null
	schema_v15=$(db_fingerprint "$TEST_DB" | grep ' schema$')
	head_v15=$(git -C app rev-parse HEAD)
}

revisions() { psql_db "$TEST_DB" -c "SELECT string_agg(version_num, ',' ORDER BY 1) FROM alembic_version"; }

expect_at_v15() {
	[[ $(revisions) == 5e9f3b7a1c62 ]] || fail "alembic_version: $(revisions)"
	[[ "$(db_fingerprint "$TEST_DB" | grep ' schema$')" == "$schema_v15" ]] || fail "schema is not v1.5's"
	[[ $(git -C app rev-parse HEAD) == "$head_v15" ]] || fail "HEAD is not v1.5"
	[[ -z $(git -C app status --porcelain) ]] || fail "work tree not clean"
}

expect_at_v16() {
	[[ $(revisions) == b6e14d8a0f97 ]] || fail "alembic_version: $(revisions)"
	[[ $(git -C app rev-parse HEAD) == $(git -C app rev-parse 'v1.6^{commit}') ]] || fail "HEAD is not v1.6"
}

kill_apply_at() {
	prepare_v15
	DGMIGRATE_FAULT_KILL_AT=$1 run_dgm apply plan.yaml
	[[ $rc == 137 ]] || fail "expected the run to be killed at $1, exit $rc: $err"
	run_dgm resume plan.yaml
	expect_rc 0
	run_dgm resume plan.yaml
	expect_err "nothing to resume"
}

test_apply_killed_at_snapshot_is_undone() { kill_apply_at snapshot; expect_at_v15; }
test_apply_killed_at_checkout_is_undone() { kill_apply_at checkout; expect_at_v15; }
test_apply_killed_at_migrate_is_undone() { kill_apply_at migrate; expect_at_v15; }
test_apply_killed_at_postconditions_is_completed() { kill_apply_at postconditions; expect_at_v16; }

test_apply_killed_during_the_upgrade_is_settled() {
	prepare_v15
	"$DGMIGRATE" apply plan.yaml >/dev/null 2>&1 &
	pid=$!
	for _ in $(seq 300); do
		grep -qs '"step":"migrate","phase":"start"' backups/state/journal/*.jsonl && break
		sleep 0.02
	done
	sleep 0.4
	kill -9 "$pid"
	wait "$pid" || true
	run_dgm resume plan.yaml
	expect_rc 0
	# completed or undone, nothing in between
	if [[ $(revisions) == b6e14d8a0f97 ]]; then expect_at_v16; else expect_at_v15; fi
}

kill_rollback_at() {
	prepare_v15
	run_dgm apply plan.yaml
	expect_rc 0
	DGMIGRATE_FAULT_KILL_AT=$1 run_dgm rollback --to v1.5 plan.yaml
	[[ $rc == 137 ]] || fail "expected the rollback to be killed at $1, exit $rc: $err"
	run_dgm resume plan.yaml
	expect_rc 0
	expect_at_v15
}

test_rollback_killed_at_snapshot() { kill_rollback_at snapshot; }
test_rollback_killed_at_downgrade() { kill_rollback_at downgrade; }
test_rollback_killed_at_checkout() { kill_rollback_at checkout; }
test_rollback_killed_at_verify() { kill_rollback_at verify; }
