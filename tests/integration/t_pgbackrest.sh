# t_pgbackrest.sh - the pgBackRest snapshot engine against the real
# pgbackrest (2.45) and a cluster of each test's own (pgbr_lib.sh).

source "$ROOT/tests/integration/pgbr_lib.sh"

test_harness_archives_and_backs_up() {
	pgbr_setup
	pgbr info --output=json > info.json
	python3 - info.json <<'PY'
import json, sys
info = json.load(open(sys.argv[1]))
s = info[0]
assert s["status"]["code"] == 0, s["status"]
assert [b["type"] for b in s["backup"]] == ["full"], s["backup"]
PY
	grep -q "^repo1-path=$PWD/pgbr/repo" pgbr/pgbackrest.conf || fail "repository outside the test"
}

test_preflight_names_each_check() {
	pgbr_setup
	setup_release "$TEST_DB"
	pgbr_plan
	run_dgm validate plan.yaml
	expect_rc 0
	run_dgm apply plan.yaml --dry-run
	expect_rc 0
	expect_check ok pgbackrest "pgBackRest 2.45"
	expect_check ok "pgbackrest check" "stanza 'dgm' archives WAL"
	expect_check ok backup "newest full backup"
	expect_check ok archiving "archive_mode on, archive_command set"
	expect_check ok "restore point" "role 'dgm' may create restore points"
	expect_check ok restore "side: a restore rebuilds the database"
	expect_check ok repository "MiB free in '$PWD/pgbr/repo'"
}

test_preflight_refuses_broken_archiving() {
	pgbr_setup
	setup_release "$TEST_DB"
	pgbr_plan
	pgbr_break_archiving
	run_dgm apply plan.yaml --dry-run
	expect_rc 1
	expect_check FAIL "pgbackrest check" "pgbackrest check (stanza 'dgm')"
	expect_err "WAL archiving to the stanza does not work"
}

test_preflight_refuses_without_a_backup() {
	pgbr_setup --no-backup
	setup_release "$TEST_DB"
	pgbr_plan
	run_dgm apply plan.yaml --dry-run
	expect_rc 1
	expect_check FAIL backup "stanza 'dgm' has no usable backup"
	# unless the snapshot takes a full one
	echo "  backup: full" >> plan.yaml
	run_dgm apply plan.yaml --dry-run
	expect_rc 0
	expect_check ok backup "none yet; the snapshot takes a full backup first"
}

test_cluster_restore_refuses_others() {
	pgbr_setup
	setup_release "$TEST_DB"
	PGBR_PLAN_EXTRA='  restore: cluster
  server:
    stop: [true]
    start: [true]' pgbr_plan
	new_db other_app
	run_dgm apply plan.yaml --dry-run
	expect_rc 1
	expect_check FAIL restore "restore: cluster would rewind 1 other database of the cluster"
	echo "  rewind_other_databases: true" >> plan.yaml
	run_dgm apply plan.yaml --dry-run
	expect_rc 0
	expect_check ok restore "cluster: a restore stops the server"
}
