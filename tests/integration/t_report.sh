# t_report.sh - the run report speaks of this release and this command:
# only the steps the plan has, worded for apply or rollback.

newest_report() { ls -t backups/state/reports/*.md | grep -v rehearse | sed -n 1p; }

test_report_without_a_model_store_has_no_model_store_item() {
	setup_release "$TEST_DB"
	migrate_app app head
	sed -i -e '/^model_store:/,/^  path:/d' -e 's/, ML_MODEL_STORAGE_PATH//' plan.yaml
	grep -q model_store plan.yaml && fail "the plan still has a model store"
	run_dgm apply plan.yaml
	expect_rc 0
	report=$(newest_report)
	! grep -qi "model store\|ML model" "$report" || fail "the report speaks of a model store:
$(cat "$report")"
	grep -q "| Back up of the database, verified" "$report" || fail "no backup item: $(cat "$report")"
	grep -q "| Check out the release 'v1.6' |" "$report" || fail "no checkout item: $(cat "$report")"
	! grep -q "Pull latest code\|Deployment Phase" "$report" || fail "seed wording in the report"
}

test_rollback_report_speaks_of_the_older_release() {
	setup_release "$TEST_DB"
	migrate_app app head
	run_dgm apply plan.yaml
	expect_rc 0
	sleep 1   # report names order by the second of the run id
	run_dgm rollback --to v1.5 plan.yaml
	expect_rc 0
	grep -qE "^rollback 'v1\.5': success \(run .*, database at 5e9f3b7a1c62, HEAD 5fdd279852c1, report " <<<"$out" ||
		fail "rollback's result line: $out"
	report=$(newest_report)
	grep -q "^# dgmigrate rollback" "$report" || fail "not the rollback's report: $report"
	grep -q "| Check out the older release 'v1.5' |" "$report" || fail "checkout wording: $(cat "$report")"
	grep -q "| Safety snapshot of the current state of the database and archive of the model store" "$report" ||
		fail "snapshot wording: $(cat "$report")"
	grep -q "| Downgrade the database to the Alembic heads of 'v1.5' |" "$report" ||
		fail "downgrade wording: $(cat "$report")"
}

# apply and rollback end with one result line on stdout; --json keeps
# stdout to JSON lines.
test_apply_and_rollback_end_with_one_result_line() {
	setup_release "$TEST_DB"
	migrate_app app head
	run_dgm apply plan.yaml
	expect_rc 0
	[[ $(wc -l <<<"$out") == 1 ]] || fail "apply printed more than one line on stdout: $out"
	grep -qE "^apply 'v1\.6': success \(run [0-9A-Za-z-]+, database at b6e14d8a0f97, HEAD 24ead41de01b, report .*\.md\)$" <<<"$out" ||
		fail "apply's result line: $out"
	sleep 1
	run_dgm rollback --to v1.5 plan.yaml --json
	expect_rc 0
	python3 -c 'import json,sys; [json.loads(l) for l in sys.stdin if l.strip()]' <<<"$out" ||
		fail "rollback --json printed something else than JSON lines: $out"
}
