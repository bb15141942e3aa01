# t_copyfirst.sh - copy-first apply: the checked server-side copy gates
# the release; the store archive and the pg_dump of the copy are made
# while checkout and upgrade go on; hooks.after waits for the archive,
# the end of the run for the dump. Each order is shown by the journal and
# by what the database holds while a part is held at a fault point
# (DGMIGRATE_FAULT_WAIT_AT=snapshot.dump or snapshot.archive), never by
# timing.

V15=5e9f3b7a1c62
V16=b6e14d8a0f97

at_v15() {
	setup_release "$TEST_DB"
	migrate_app app head
	psql_db "$TEST_DB" -c "INSERT INTO organizations (name, slug) SELECT 'org ' || g, 'org-' || g FROM generate_series(1, 20) g" >/dev/null
	rows_v15=$(db_fingerprint "$TEST_DB")
}

revisions() { psql_db "${1:-$TEST_DB}" -c "SELECT string_agg(version_num, ',' ORDER BY 1) FROM alembic_version"; }
snap_id() { grep -l '"kind": "pre-apply"' backups/*/manifest.json | sed -n 1p | cut -d/ -f2; }
manifest() { jq -r "$1" "backups/$(snap_id)/manifest.json"; }
journal() { ls backups/state/journal/*.jsonl | sed -n 1p; }
# seq of the journal record of STEP in PHASE
seq_of() { jq -r "select(.type == \"step\" and .step == \"$1\" and .phase == \"$2\") | .seq" "$(journal)" | sed -n 1p; }

poll() {
	local i
	for ((i = 0; i < 3000; i++)); do "$@" && return 0; sleep 0.02; done
	fail "timed out waiting for: $*"
}

reached() {
	[[ -e wait.flag ]] && return 0
	kill -0 "$bgpid" 2>/dev/null || { echo "dgmigrate ended before the point: $(tail -5 bg.err)" >&2; exit 1; }
	return 1
}

# start_held ARGS...: dgmigrate ARGS in the background, its dump held
# before pg_dump starts ($HOLD: another point).
start_held() {
	rm -f wait.flag
	DGMIGRATE_FAULT_WAIT_AT=${HOLD:-snapshot.dump} DGMIGRATE_FAULT_WAIT_FILE=$PWD/wait.flag \
		setsid "$DGMIGRATE" "$@" >bg.out 2>bg.err &
	bgpid=$!
	poll reached
}

# the plans here have no hooks.after or health check: live once the
# store archive (which hooks.after would wait for) is in
live() { [[ -n $(seq_of archive done) ]]; }
posted() { [[ -n $(seq_of postconditions done) ]]; }

finish_bg() {
	set +e
	wait "$bgpid"
	rc=$?
	set -e
	out=$(cat bg.out) err=$(cat bg.err)
}

test_the_upgrade_runs_while_the_dump_is_held() {
	at_v15
	start_held apply --json plan.yaml
	# the release goes live with the dump not even started
	poll live
	[[ $(revisions) == "$V16" ]] || fail "not upgraded while the dump is held: $(revisions)"
	[[ $(git -C app rev-parse HEAD) == $(git -C app rev-parse 'v1.6^{commit}') ]] || fail "HEAD not at v1.6"
	[[ -z $(jq -r 'select(.type == "end") | .outcome' "$(journal)") ]] || fail "the run ended before its dump"
	# the snapshot that gated it: the copy (checked) and the store, no dump yet
	[[ $(manifest .database.format) == copy ]] || fail "the gate was not the copy: $(manifest .database.format)"
	copy=$(manifest .database.copy)
	[[ $(revisions "$copy") == "$V15" ]] || fail "the copy holds $(revisions "$copy")"
	[[ $(manifest .database.catalog_sha256) =~ ^[0-9a-f]{64}$ ]] || fail "no catalog fingerprint recorded"
	[[ $(manifest .model_store.entries) -ge 1 ]] || fail "no store archive once live"
	rm wait.flag
	finish_bg
	expect_rc 0
	# journal order: archive and dump started before checkout, the dump
	# done after the upgrade
	(( $(seq_of snapshot done) < $(seq_of archive start) && $(seq_of archive start) < $(seq_of dump start) &&
	   $(seq_of dump start) < $(seq_of checkout start) && $(seq_of migrate done) < $(seq_of dump done) )) ||
		fail "journal order: $(jq -c '[.step, .phase]' "$(journal)")"
	# the snapshot now holds the dump of the copy too, verified
	[[ $(manifest .database.format) == directory && $(manifest .database.copy) == "$copy" ]] ||
		fail "the dump was not added: $(manifest .database)"
	"$PGBIN/pg_restore" --list "backups/$(snap_id)/db" | grep -q "dbname: $copy" || fail "the dump is not of the copy"
	run_dgm backups verify "$(snap_id)" plan.yaml
	expect_rc 0
	# two clocks, in the end event and the report
	end=$(grep '"event":"end"' bg.out) || fail "no end event: $(cat bg.out)"
	ttl=$(jq -r .time_to_live_ms <<<"$end") ttd=$(jq -r .time_to_done_ms <<<"$end")
	[[ $ttl =~ ^[0-9]+$ && $ttd =~ ^[0-9]+$ ]] && (( ttl <= ttd )) || fail "clocks: $end"
	report=$(ls backups/state/reports/*.json | sed -n 1p)
	[[ $(jq -r .time_to_live_ms "$report") =~ ^[0-9]+$ && $(jq -r .time_to_done_ms "$report") =~ ^[0-9]+$ ]] ||
		fail "the report lacks the clocks"
	grep -q '^| Time to live' "${report%.json}.md" && grep -q '^| Time to done' "${report%.json}.md" ||
		fail "the Markdown report lacks the clocks"
}

# the store archive held: the upgrade runs, hooks.after waits for it
test_hooks_after_waits_for_the_store_archive() {
	at_v15
	cat >>plan.yaml <<PLAN
hooks:
  after:
    - name: maintenance-off
      run: [touch, "$PWD/after.ran"]
PLAN
	HOLD=snapshot.archive start_held apply plan.yaml
	poll posted
	[[ $(revisions) == "$V16" ]] || fail "not upgraded while the archive is held: $(revisions)"
	[[ ! -e after.ran && -z $(seq_of hooks.after start) ]] || fail "hooks.after ran before the archive was in"
	[[ $(manifest .model_store) == null ]] || fail "the gate waited for the archive"
	rm wait.flag
	finish_bg
	expect_rc 0
	[[ -e after.ran ]] || fail "hooks.after did not run"
	(( $(seq_of checkout start) < $(seq_of archive done) && $(seq_of archive done) < $(seq_of hooks.after start) )) ||
		fail "journal order: $(jq -c '[.step, .phase]' "$(journal)")"
	[[ $(manifest .model_store.entries) -ge 1 ]] || fail "no store archive in the snapshot"
	run_dgm backups verify "$(snap_id)" plan.yaml
	expect_rc 0
}

test_a_failed_dump_leaves_the_release_applied_and_the_copy_kept() {
	at_v15
	start_held apply plan.yaml
	poll live
	# pg_dump of the copy cannot connect: the dump fails after the release
	copy=$(manifest .database.copy)
	pg_admin -q -c "ALTER DATABASE \"$copy\" ALLOW_CONNECTIONS false" >/dev/null
	rm wait.flag
	finish_bg
	pg_admin -q -c "ALTER DATABASE \"$copy\" ALLOW_CONNECTIONS true" >/dev/null
	expect_rc 1
	expect_err "release 'v1.6' is applied"
	expect_err "its off-server backup failed"
	expect_err "the server-side copy '$copy'"
	expect_err "dgmigrate rollback --to <previous tag> PLAN"
	[[ $(revisions) == "$V16" ]] || fail "the release was not left applied: $(revisions)"
	[[ $(git -C app rev-parse HEAD) == $(git -C app rev-parse 'v1.6^{commit}') ]] || fail "HEAD not at v1.6"
	[[ $(revisions "$copy") == "$V15" ]] || fail "the copy was not kept"
	[[ $(manifest .database.format) == copy ]] || fail "the manifest names a dump"
	[[ -z $(ls "backups/$(snap_id)" | grep '^db') ]] || fail "dump leftovers: $(ls "backups/$(snap_id)")"
	report=$(ls backups/state/reports/*.json | sed -n 1p)
	[[ $(jq -r .outcome "$report") == applied-without-dump ]] || fail "report outcome $(jq -r .outcome "$report")"
	[[ $(jq -r .time_to_live_ms "$report") =~ ^[0-9]+$ && $(jq -r .time_to_done_ms "$report") == null ]] ||
		fail "clocks: $(jq -c '[.time_to_live_ms, .time_to_done_ms]' "$report")"
	grep -q "off-server backup failed" "${report%.json}.md" || fail "the Markdown report does not say why"
	[[ $(psql_db "$TEST_DB" -c "SELECT outcome FROM dgmigrate.runs") == applied-without-dump ]] ||
		fail "history: $(psql_db "$TEST_DB" -c "SELECT outcome FROM dgmigrate.runs")"
	# the copy is the release's snapshot: a rollback restores from it
	run_dgm rollback --to v1.5 plan.yaml --restore
	expect_rc 0
	expect_err "(a copy of '$copy')"
	[[ "$(db_fingerprint "$TEST_DB")" == "$rows_v15" ]] || fail "database differs from the snapshot"
}

test_without_a_copy_the_dump_comes_first() {
	at_v15
	sed -i 's/^  directory: backups$/&\n  keep_copies: 0/' plan.yaml
	run_dgm apply plan.yaml
	expect_rc 0
	[[ $(manifest .database.format) == directory && $(manifest .database.copy) == null ]] ||
		fail "not a dump only: $(manifest .database)"
	[[ -z $(seq_of dump start) ]] || fail "a dump step beside the release without a copy"
	(( $(seq_of snapshot done) < $(seq_of checkout start) )) || fail "journal order"
}

# killed while the release is live and its dump held: resume completes
# the run, dump included
test_killed_while_the_dump_runs_is_completed_by_resume() {
	at_v15
	start_held apply plan.yaml
	poll live
	kill -KILL -- "-$bgpid"
	wait "$bgpid" 2>/dev/null || true
	rm -f wait.flag
	run_dgm resume plan.yaml
	expect_rc 0
	[[ $(revisions) == "$V16" ]] || fail "alembic_version: $(revisions)"
	[[ $(manifest .database.format) == directory ]] || fail "resume did not take the dump"
	run_dgm backups verify "$(snap_id)" plan.yaml
	expect_rc 0
	[[ $(jq -r 'select(.type == "end") | .outcome' "$(journal)") == success ]] || fail "journal end"
	run_dgm resume plan.yaml
	expect_err "nothing to resume"
}

# killed as the dump step starts (before checkout): resume undoes; the
# snapshot keeps its copy, no dump files are left
test_killed_at_the_dump_step_is_undone_by_resume() {
	at_v15
	DGMIGRATE_FAULT_KILL_AT=dump run_dgm apply plan.yaml
	[[ $rc == 137 ]] || fail "expected the run to be killed at dump, exit $rc: $err"
	run_dgm resume plan.yaml
	expect_rc 0
	[[ $(revisions) == "$V15" ]] || fail "alembic_version: $(revisions)"
	[[ $(manifest .database.format) == copy ]] || fail "$(manifest .database)"
	[[ -z $(ls "backups/$(snap_id)" | grep -e '^db' -e '^models') ]] || fail "leftovers: $(ls "backups/$(snap_id)")"
	[[ "$(db_fingerprint "$TEST_DB")" == "$rows_v15" ]] || fail "database changed"
}

others() { [[ $(psql_db postgres -c "SELECT count(*) FROM pg_stat_activity WHERE datname = '$TEST_DB'") != 0 ]]; }

# another session connected: no copy can be made, the dump comes first
test_with_others_connected_the_dump_comes_first() {
	at_v15
	PGADMIN_DB=$TEST_DB pg_admin -c "SELECT pg_sleep(120)" >/dev/null 2>&1 &
	local sleeper=$!
	poll others
	run_dgm apply plan.yaml
	psql_db postgres -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '$TEST_DB'" >/dev/null
	wait "$sleeper" 2>/dev/null || true
	expect_rc 0
	expect_err "no server-side copy of '$TEST_DB'"
	[[ $(manifest .database.format) == directory && $(manifest .database.copy) == null ]] ||
		fail "not a dump only: $(manifest .database)"
	[[ -z $(seq_of dump start) ]] || fail "a dump step beside the release without a copy"
	(( $(seq_of snapshot done) < $(seq_of checkout start) )) || fail "journal order"
}
