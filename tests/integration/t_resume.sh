# t_resume.sh - a run killed with SIGKILL at every step boundary (and once
# in the middle of the upgrade) is settled by `dgmigrate resume`: either
# completed or put back, never left half-way - the full check of
# settled_lib.sh (database, code, store, lock, journals, history, leaks).

source "$ROOT/tests/integration/settled_lib.sh"

prepare_v15() {
	setup_release "$TEST_DB"
	migrate_app app head
	psql_db "$TEST_DB" -c "INSERT INTO organizations (name, slug) VALUES ('a', 'a')" >/dev/null
	fp15=$(fingerprint)
	head15=$(git -C app rev-parse HEAD)
	head16=$(git -C app rev-parse 'v1.6^{commit}')
	store=$(store_fp)
}

expect_at_v15() { expect_settled; [[ $at == 15 ]] || fail "settled at v1.$at, not v1.5"; }
expect_at_v16() { expect_settled; [[ $at == 16 ]] || fail "settled at v1.$at, not v1.6"; }

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

# The upgrade provably under way: dgmigrate waits before alembic starts
# (DGMIGRATE_FAULT_WAIT_AT), the test takes a lock that the last revision's
# ALTER TABLE users needs, lets alembic go, and kills the process group once
# alembic waits for that lock - inside its transaction, never a sleep.
users_locked() {
	[[ $(psql_db "$TEST_DB" -c "SELECT count(*) FROM pg_locks WHERE relation = 'users'::regclass
		AND pid <> pg_backend_pid() AND $1") != 0 ]]
}

alone() {
	[[ $(psql_db "$TEST_DB" -c "SELECT count(*) FROM pg_stat_activity WHERE
		datname = current_database() AND pid <> pg_backend_pid()") == 0 ]]
}

poll() {
	for _ in $(seq 3000); do "$@" && return 0; sleep 0.02; done
	fail "timed out waiting for: $*"
}

test_apply_killed_during_the_upgrade_is_settled() {
	prepare_v15
	printf 'timeouts: {lock_timeout: 10m}\n' >>plan.yaml
	DGMIGRATE_FAULT_WAIT_AT=alembic.upgrade DGMIGRATE_FAULT_WAIT_FILE=$PWD/wait.flag \
		setsid "$DGMIGRATE" apply plan.yaml >/dev/null 2>&1 &
	pid=$!
	poll test -e wait.flag
	mkfifo lock.fifo
	PGADMIN_DB=$TEST_DB pg_admin -q <lock.fifo >/dev/null 2>&1 &
	lockpid=$!
	exec 8>lock.fifo
	echo "BEGIN; LOCK TABLE users IN ACCESS SHARE MODE;" >&8
	poll users_locked granted
	rm wait.flag
	poll users_locked "NOT granted"
	kill -KILL -- "-$pid"
	wait "$pid" || true
	exec 8>&-
	wait "$lockpid" || true
	poll alone
	run_dgm resume plan.yaml
	expect_rc 0
	# killed inside the upgrade's transaction: nothing of it stayed
	expect_at_v15
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
