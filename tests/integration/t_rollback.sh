# t_rollback.sh - `dgmigrate rollback --to TAG` on the fixture app: the
# v1.6 release forks a branch from before v1.5's head and merges it, so a
# plain `alembic downgrade <v1.5 head>` would leave it applied.

at_v16() {
	setup_release "$TEST_DB"
	rm -rf models
	python3 "$ROOT/fixtures/gen-model-store.py" models --weights-mb 1 --json-files 50 >/dev/null
	migrate_app app head
	psql_db "$TEST_DB" -c "INSERT INTO organizations (name, slug) SELECT 'org ' || g, 'org-' || g FROM generate_series(1, 20) g" >/dev/null
	cp -a models models.v15
	schema_v15=$(db_fingerprint "$TEST_DB" | grep ' schema$')
	rows_v15=$(db_fingerprint "$TEST_DB")
	head_v15=$(git -C app rev-parse HEAD)
	run_dgm apply plan.yaml
	expect_rc 0
}

# the newest safety snapshot, and the database copy its manifest names
safety_id() { ls -t backups | grep -v state | sed -n 1p; }
copy_of() { sed -n 's/.*"copy": "\([^"]*\)".*/\1/p' "backups/$1/manifest.json"; }
db_exists() { [[ $(psql_db postgres -c "SELECT count(*) FROM pg_database WHERE datname = '$1'") == 1 ]]; }

revisions() { psql_db "$TEST_DB" -c "SELECT string_agg(version_num, ',' ORDER BY 1) FROM alembic_version"; }
ml_tables() { psql_db "$TEST_DB" -c "SELECT count(*) FROM pg_tables WHERE tablename IN ('predictive_models', 'anomaly_detection_models', 'anomaly_detection_results', 'external_data_sources', 'prediction_history')"; }

test_rollback_by_downgrade_keeps_new_rows() {
	at_v16
	psql_db "$TEST_DB" -c "INSERT INTO organizations (name, slug) VALUES ('after release', 'after-release')" >/dev/null
	run_dgm rollback --to v1.5 plan.yaml --reason "bad release"
	expect_rc 0
	[[ $(revisions) == 5e9f3b7a1c62 ]] || fail "alembic_version: $(revisions), want exactly v1.5's head"
	[[ $(ml_tables) == 0 ]] || fail "ML tables left: $(ml_tables)"
	[[ "$(db_fingerprint "$TEST_DB" | grep ' schema$')" == "$schema_v15" ]] || fail "schema differs from v1.5's"
	[[ $(psql_db "$TEST_DB" -c "SELECT count(*) FROM organizations WHERE slug = 'after-release'") == 1 ]] ||
		fail "the row written after the release is gone"
	[[ $(git -C app rev-parse HEAD) == "$head_v15" ]] || fail "HEAD not at v1.5"
	diff <(tree_fingerprint models.v15) <(tree_fingerprint models) || fail "model store differs"
	[[ $(psql_db "$TEST_DB" -c "SELECT reason FROM dgmigrate.runs WHERE command = 'rollback'") == "bad release" ]] ||
		fail "no history row with the reason"
	# the safety snapshot: a server-side copy of the database as it was
	# before the rollback, and the release's archive linked (the store
	# had not changed), not written again
	safety=$(safety_id) copy=$(copy_of "$(safety_id)")
	grep -q '"kind": "pre-rollback"' "backups/$safety/manifest.json" || fail "no safety snapshot"
	[[ -n $copy ]] && db_exists "$copy" || fail "no database copy in the safety snapshot"
	[[ ! -e backups/$safety/db ]] || fail "a dump beside the copy"
	[[ $(psql_db "$copy" -c "SELECT count(*) FROM predictive_models") == 0 &&
		$(psql_db "$copy" -c "SELECT count(*) FROM organizations WHERE slug = 'after-release'") == 1 ]] ||
		fail "the copy does not hold the state before the rollback"
	grep -q '"linked_from"' "backups/$safety/manifest.json" || fail "the unchanged store was archived again"
	expect_err "its archive is linked"
	run_dgm backups verify "$safety" plan.yaml
	expect_rc 0
	expect_err "database copy '$copy' holds the recorded revisions"
	# pruning it drops the copy too
	sleep 1
	run_dgm backups create plan.yaml
	expect_rc 0
	run_dgm backups prune plan.yaml --keep 1
	expect_rc 0
	[[ ! -d backups/$safety ]] || fail "the safety snapshot was not pruned"
	! db_exists "$copy" || fail "the pruned snapshot's database copy is still there"
}

test_copy_of_an_unfinished_snapshot_is_dropped() {
	at_v16
	# what a run killed while copying leaves: a copy, labelled with the
	# snapshot folder it was for, and no such folder
	orphan="${TEST_DB:0:30}_dgm_safe_20990101T000000Z-dead"
	psql_db postgres -c "CREATE DATABASE \"$orphan\" TEMPLATE \"$TEST_DB\"" \
		-c "COMMENT ON DATABASE \"$orphan\" IS 'dgmigrate snapshot copy of $TEST_DB: $PWD/backups/20990101T000000Z-dead'" >/dev/null
	# look-alikes with the same name prefix: of another plan (snapshots
	# elsewhere), and of another database sharing this snapshot folder
	other="${TEST_DB:0:30}_dgm_snap_20990101T000000Z-beef"
	psql_db postgres -c "CREATE DATABASE \"$other\" TEMPLATE \"$TEST_DB\"" \
		-c "COMMENT ON DATABASE \"$other\" IS 'dgmigrate snapshot copy of $TEST_DB: /elsewhere/20990101T000000Z-beef'" >/dev/null
	other2="${TEST_DB:0:30}_dgm_snap_20990101T000000Z-cafe"
	psql_db postgres -c "CREATE DATABASE \"$other2\" TEMPLATE \"$TEST_DB\"" \
		-c "COMMENT ON DATABASE \"$other2\" IS 'dgmigrate snapshot copy of ${TEST_DB}_eu: $PWD/backups/20990101T000000Z-cafe'" >/dev/null
	run_dgm rollback --to v1.5 plan.yaml
	expect_rc 0
	expect_err "dropping '$orphan', the copy of an unfinished snapshot"
	! db_exists "$orphan" || fail "the orphaned copy is still there"
	db_exists "$other" || fail "another plan's copy was dropped"
	db_exists "$other2" || fail "another database's copy was dropped"
	psql_db postgres -c "DROP DATABASE \"$other\"" -c "DROP DATABASE \"$other2\"" >/dev/null
	db_exists "$(copy_of "$(safety_id)")" || fail "the new safety copy was dropped too"
	db_exists "$(copy_of "$(pre_apply_id)")" || fail "apply's copy was dropped too"
}

test_safety_is_a_dump_while_others_are_connected() {
	at_v16
	# a session of the application stays connected: no TEMPLATE copy
	PGADMIN_DB=$TEST_DB pg_admin -c "SELECT pg_sleep(120)" >/dev/null 2>&1 &
	local sleeper=$!
	for _ in $(seq 50); do
		[[ $(psql_db postgres -c "SELECT count(*) FROM pg_stat_activity WHERE datname = '$TEST_DB'") == 0 ]] || break
		sleep 0.1
	done
	run_dgm rollback --to v1.5 plan.yaml
	psql_db postgres -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '$TEST_DB'" >/dev/null
	wait "$sleeper" 2>/dev/null || true
	expect_rc 0
	expect_err "1 other session is connected to '$TEST_DB'"
	expect_err "taking a pg_dump instead"
	safety=$(safety_id)
	[[ -z $(copy_of "$safety") && -d backups/$safety/db ]] || fail "the safety snapshot is not a dump"
	[[ $(revisions) == 5e9f3b7a1c62 ]] || fail "alembic_version: $(revisions)"
}

test_rollback_restore_needs_consent_and_keeps_a_safety_snapshot() {
	at_v16
	psql_db "$TEST_DB" -c "INSERT INTO organizations (name, slug) VALUES ('after release', 'after-release')" >/dev/null
	run_dgm rollback --to v1.5 plan.yaml --restore
	expect_rc 2
	expect_err "would discard writes made since the release finished: 'public.organizations': 1 write"
	[[ $(revisions) == b6e14d8a0f97 ]] || fail "something changed: $(revisions)"
	run_dgm rollback --to v1.5 plan.yaml --restore --accept-data-loss
	expect_rc 0
	# apply kept a server-side copy beside its dump: the restore reads it
	expect_err "(a copy of '${TEST_DB:0:30}_dgm_snap_"
	[[ "$(db_fingerprint "$TEST_DB")" == "$rows_v15" ]] || fail "database differs from the snapshot"
	# the safety snapshot holds what was written after the release
	safety=$(ls -t backups | grep -v state | sed -n 1p)
	grep -q '"kind": "pre-rollback"' "backups/$safety/manifest.json" || fail "no safety snapshot"
	[[ -n $(copy_of "$safety") ]] || fail "the safety snapshot is not a database copy"
	run_dgm backups restore "$safety" plan.yaml --terminate-connections
	expect_rc 0
	[[ $(psql_db "$TEST_DB" -c "SELECT count(*) FROM organizations WHERE slug = 'after-release'") == 1 ]] ||
		fail "the safety snapshot does not give the row back"
}

# apply's snapshot: a server-side copy, and the dump taken from that copy
pre_apply_id() { grep -l '"kind": "pre-apply"' backups/*/manifest.json | sed -n 1p | cut -d/ -f2; }

test_apply_keeps_a_copy_and_restore_reads_the_dump_without_it() {
	at_v16
	snap=$(pre_apply_id) copy=$(copy_of "$(pre_apply_id)")
	[[ -n $copy ]] && db_exists "$copy" || fail "apply kept no server-side copy"
	[[ $(psql_db "$copy" -c "SELECT version_num FROM alembic_version") == 5e9f3b7a1c62 ]] ||
		fail "the copy is not the database before the release"
	"$PGBIN/pg_restore" --list "backups/$snap/db" | grep -q "dbname: $copy" || fail "the dump was not taken from the copy"
	# the copy gone: the restore reads the dump
	psql_db postgres -c "DROP DATABASE \"$copy\"" >/dev/null
	run_dgm rollback --to v1.5 plan.yaml --restore
	expect_rc 0
	expect_err "restoring from the dump instead"
	expect_err "(pg_restore, "
	[[ "$(db_fingerprint "$TEST_DB")" == "$rows_v15" ]] || fail "database differs from the snapshot"
}

test_only_the_newest_apply_snapshot_keeps_its_copy() {
	at_v16
	first=$(pre_apply_id) copy1=$(copy_of "$(pre_apply_id)")
	run_dgm rollback --to v1.5 plan.yaml
	expect_rc 0
	sleep 1
	run_dgm apply plan.yaml
	expect_rc 0
	expect_err "dropped the server-side copy '$copy1' of snapshot '$first'"
	! db_exists "$copy1" || fail "the older copy is still there"
	[[ -z $(copy_of "$first") && -d backups/$first/db ]] || fail "the older snapshot's manifest still names its copy"
	newest=$(grep -l '"kind": "pre-apply"' backups/*/manifest.json | cut -d/ -f2 | sort | tail -n 1)
	db_exists "$(copy_of "$newest")" || fail "the newest apply snapshot has no copy"
	run_dgm backups verify "$first" plan.yaml
	expect_rc 0
}

test_failed_downgrade_falls_back_to_restore() {
	at_v16
	# an object the downgrade does not know blocks its DROP TABLE
	psql_db "$TEST_DB" -c "CREATE VIEW blocker AS SELECT * FROM predictive_models" >/dev/null
	run_dgm rollback --to v1.5 plan.yaml
	expect_rc 0
	expect_err "the downgrade failed"
	expect_err "restoring snapshot"
	[[ $(revisions) == 5e9f3b7a1c62 ]] || fail "alembic_version: $(revisions)"
	[[ "$(db_fingerprint "$TEST_DB")" == "$rows_v15" ]] || fail "database differs from the snapshot"
}

test_dry_run_prints_steps_and_sql_and_changes_nothing() {
	at_v16
	before=$(db_fingerprint "$TEST_DB")
	run_dgm rollback --to v1.5 plan.yaml --dry-run
	expect_rc 0
	expect_out "alembic downgrade 5e9f3b7a1c62"
	expect_out "alembic downgrade a1d4c8e7b359@8b1e5d2c94a0"
	expect_out "DROP TABLE prediction_history"
	expect_out "model store  from snapshot"
	[[ "$before" == "$(db_fingerprint "$TEST_DB")" ]] || fail "the database changed"
	[[ $(git -C app rev-parse HEAD) == $(git -C app rev-parse 'v1.6^{commit}') ]] || fail "HEAD moved"
}

test_tag_newer_than_database_is_refused() {
	setup_release "$TEST_DB"
	migrate_app app head
	run_dgm rollback --to v1.6 plan.yaml
	expect_rc 2
	expect_err "'v1.6' is newer than the database"
	run_dgm rollback --to v0.1 plan.yaml
	expect_rc 2
	expect_err "no tag or commit 'v0.1'"
}
