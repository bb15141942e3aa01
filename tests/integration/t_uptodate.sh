# t_uptodate.sh - nothing to do is not a release: no snapshot, no report,
# no history row; --force makes it one.

test_apply_when_up_to_date_does_nothing() {
	setup_release "$TEST_DB"
	migrate_app app head
	run_dgm apply plan.yaml
	expect_rc 0
	snaps=$(ls backups | grep -vc state)
	reports=$(ls backups/state/reports | wc -l)
	runs=$(psql_db "$TEST_DB" -c "SELECT count(*) FROM dgmigrate.runs")
	run_dgm apply plan.yaml
	expect_rc 0
	expect_out "apply 'v1.6': up to date (database at b6e14d8a0f97, HEAD at 'v1.6'): nothing to do"
	[[ $(ls backups | grep -vc state) == "$snaps" ]] || fail "a snapshot was taken"
	[[ $(ls backups/state/reports | wc -l) == "$reports" ]] || fail "a report was written"
	[[ $(psql_db "$TEST_DB" -c "SELECT count(*) FROM dgmigrate.runs") == "$runs" ]] || fail "a history row was written"
	run_dgm resume plan.yaml
	expect_rc 0
	expect_err "nothing to resume"
	run_dgm apply plan.yaml --json
	expect_rc 0
	python3 -c 'import json,sys; e=[json.loads(l) for l in sys.stdin if l.strip()]; assert e[-1]["outcome"] == "up-to-date", e' <<<"$out" ||
		fail "--json: $out"
	run_dgm apply plan.yaml --force
	expect_rc 0
	expect_out "apply 'v1.6': success"
	[[ $(ls backups | grep -vc state) -gt "$snaps" ]] || fail "--force took no snapshot"
	[[ $(psql_db "$TEST_DB" -c "SELECT count(*) FROM dgmigrate.runs") -gt "$runs" ]] || fail "--force recorded no run"
}
