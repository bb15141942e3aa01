# t_swap_guard.sh - a database swap killed between its two renames leaves
# no database under the target's name; `backups restore` keeps no
# journal, so the swap keeps a marker (<state_dir>/db-swap.json): every
# command refuses while it is there, naming the situation and `resume`,
# which puts the database back. Points in a run are reached for sure
# (DGMIGRATE_FAULT_WAIT_AT), never after a sleep.

source "$ROOT/tests/integration/held_lib.sh"

MARKER=backups/state/db-swap.json

prepare() {
	setup_release "$TEST_DB"
	migrate_app app head
	psql_db "$TEST_DB" -c "INSERT INTO organizations (name, slug) SELECT 'org ' || g, 'org-' || g FROM generate_series(1, 20) g" >/dev/null
	run_dgm backups create plan.yaml
	expect_rc 0
	snap=$(ls backups | grep -v -e partial -e state)
	# written after the snapshot: a restore of it discards the row
	psql_db "$TEST_DB" -c "INSERT INTO organizations (name, slug) VALUES ('later', 'later')" >/dev/null
	rows_before=$(db_fingerprint "$TEST_DB")
}

db_exists() { [[ $(psql_db postgres -c "SELECT count(*) FROM pg_database WHERE datname = '$1'") == 1 ]]; }
later_rows() { psql_db "$TEST_DB" -c "SELECT count(*) FROM organizations WHERE slug = 'later'"; }
# go_on: the run waiting at its point goes on; $brc is its exit status.
go_on() {
	rm -f wait.flag
	brc=0
	wait "$bgpid" || brc=$?
}

expect_refused() {
	expect_rc 1
	expect_err "a database swap of '$TEST_DB' was interrupted: the database is renamed to '${TEST_DB:0:30}_dgm_old_${snap:0:22}'"
	expect_err "run dgmigrate resume PLAN first"
}

expect_back() {
	[[ ! -e $MARKER ]] || fail "the marker is left: $(cat "$MARKER")"
	db_exists "$TEST_DB" || fail "no database '$TEST_DB'"
	[[ "$(db_fingerprint "$TEST_DB")" == "$rows_before" ]] || fail "the database differs from before the restore"
	[[ -z $(leftovers) ]] || fail "left behind: $(leftovers)"
}

test_restore_killed_between_its_renames_is_put_back_by_resume() {
	prepare
	kill_at restore.renamed backups restore "$snap" plan.yaml --accept-data-loss
	! db_exists "$TEST_DB" || fail "the database still has its name between the renames"
	[[ -f $MARKER ]] || fail "no marker of the swap"
	run_dgm status plan.yaml
	expect_refused
	run_dgm apply --dry-run plan.yaml
	expect_refused
	run_dgm backups restore "$snap" plan.yaml --accept-data-loss
	expect_refused
	run_dgm rollback --to v1.5 plan.yaml --dry-run
	expect_refused
	run_dgm validate plan.yaml
	[[ $rc != 0 ]] || fail "validate passed"
	expect_err "a database swap of '$TEST_DB' was interrupted"
	run_dgm resume plan.yaml
	expect_rc 0
	expect_err "putting database '$TEST_DB' back under its name"
	expect_back
	run_dgm resume plan.yaml
	expect_rc 0
	expect_err "nothing to resume"
	expect_no "settling the database swap"
	run_dgm status plan.yaml
	expect_rc 0
	# nothing was restored: the restore runs again, and works
	run_dgm backups restore "$snap" plan.yaml --accept-data-loss
	expect_rc 0
	[[ $(later_rows) == 0 ]] || fail "the snapshot was not restored"
	[[ ! -e $MARKER ]] || fail "the marker is left after a restore"
	[[ -z $(leftovers) ]] || fail "left behind: $(leftovers)"
}

# resume killed in the middle of putting it back: run again, it finishes
test_resume_killed_while_settling_is_run_again() {
	prepare
	kill_at restore.renamed backups restore "$snap" plan.yaml --accept-data-loss
	kill_at swap.settle.renamed resume plan.yaml
	[[ -f $MARKER ]] || fail "the marker went before the swap was settled"
	db_exists "$TEST_DB" || fail "no database '$TEST_DB' after the first rename back"
	run_dgm resume plan.yaml
	expect_rc 0
	expect_err "dropping '${TEST_DB:0:30}_dgm_new_${snap:0:22}', staged by the interrupted swap"
	expect_back
}

# while the swap runs, its marker is held: other runs exit 3; once it
# has finished, the marker is gone
test_a_swap_under_way_refuses_with_exit_3_and_leaves_no_marker() {
	prepare
	start_at restore.renamed backups restore "$snap" plan.yaml --accept-data-loss
	run_dgm status plan.yaml
	expect_rc 3
	expect_err "a database swap is under way"
	run_dgm resume plan.yaml
	expect_rc 3
	go_on
	[[ $brc == 0 ]] || fail "expected exit 0, got $brc: $(tail -5 bg.err)"
	[[ ! -e $MARKER ]] || fail "the marker is left after a restore"
	[[ $(later_rows) == 0 ]] || fail "the snapshot was not restored"
	[[ -z $(leftovers) ]] || fail "left behind: $(leftovers)"
}

# The second rename fails (the staging database dropped while the run
# waits at restore.staged): the database is put back, the marker removed.
test_a_failing_second_rename_puts_back_and_removes_the_marker() {
	prepare
	start_at restore.staged backups restore "$snap" plan.yaml --accept-data-loss
	psql_db postgres -c "DROP DATABASE \"${TEST_DB:0:30}_dgm_new_${snap:0:22}\"" >/dev/null
	go_on
	[[ $brc == 1 ]] || fail "expected exit 1, got $brc: $(tail -5 bg.err)"
	expect_back
	run_dgm status plan.yaml
	expect_rc 0
}

# A rollback that sets nothing aside under a snapshot's name (its safety
# snapshot a dump): its journal says nothing of the swap, the marker
# does. resume puts the database back, then runs the rollback again.
test_rollback_killed_between_its_renames_without_aside_is_resumed() {
	setup_release "$TEST_DB"
	sed -i 's/^  directory: backups$/&\n  rollback_safety: dump/' plan.yaml
	migrate_app app head
	run_dgm apply plan.yaml
	expect_rc 0
	kill_at restore.renamed rollback --to v1.5 plan.yaml --restore --accept-data-loss
	! db_exists "$TEST_DB" || fail "the database still has its name between the renames"
	run_dgm rollback --to v1.5 plan.yaml --restore --accept-data-loss
	expect_rc 1
	expect_err "a database swap of '$TEST_DB' was interrupted"
	run_dgm resume plan.yaml --accept-data-loss
	expect_rc 0
	expect_err "putting database '$TEST_DB' back under its name"
	[[ ! -e $MARKER ]] || fail "the marker is left: $(cat "$MARKER")"
	[[ $(psql_db "$TEST_DB" -c "SELECT string_agg(version_num, ',') FROM alembic_version") == 5e9f3b7a1c62 ]] ||
		fail "not rolled back to v1.5"
	[[ -z $(leftovers) ]] || fail "left behind: $(leftovers)"
	run_dgm resume plan.yaml
	expect_err "nothing to resume"
}

# ---- a restore killed in pg_restore ----

# Its work folder (<snapshot dir>/.restore-<id>, the pg_restore list) is
# removed by resume (and by the next run's sweep); the database never
# left its name.
test_a_restore_killed_in_pg_restore_leaves_no_work_folder() {
	setup_release "$TEST_DB"
	# dump only: the restore runs pg_restore, not a server-side clone
	sed -i 's/^  directory: backups$/&\n  keep_copies: 0/' plan.yaml
	migrate_app app head
	run_dgm backups create plan.yaml
	expect_rc 0
	snap=$(ls backups | grep -v -e partial -e state)
	kill_at restore.pg_restore backups restore "$snap" plan.yaml --accept-data-loss
	[[ -d backups/.restore-$snap ]] || fail "no work folder: $(ls -a backups)"
	[[ ! -e $MARKER ]] || fail "a swap marker before the swap"
	run_dgm resume plan.yaml
	expect_rc 0
	expect_err "/backups/.restore-$snap', the work folder of a restore that was killed"
	[[ ! -e backups/.restore-$snap ]] || fail "the work folder is left: $(ls -a backups)"
	run_dgm backups restore "$snap" plan.yaml --accept-data-loss
	expect_rc 0
}
