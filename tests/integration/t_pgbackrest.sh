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
	# the role's line says the engine's snapshot, not a server-side copy
	expect_check ok privileges "snapshot by a pgBackRest restore point"
	expect_no "no server-side copy"
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

snapshot_id() { ls backups | grep -v -e partial -e '^state$' | sort | tail -1; }

# manifest_get ID PYEXPR: a value of the snapshot's manifest (m).
manifest_get() {
	python3 -c "import json,sys; m=json.load(open(sys.argv[1])); print($2)" "backups/$1/manifest.json"
}

test_snapshot_is_a_restore_point() {
	pgbr_setup
	setup_release "$TEST_DB"
	migrate_app app head
	pgbr_plan
	label=$(pgbr info --output=json | python3 -c "import json,sys; print(json.load(sys.stdin)[0]['backup'][-1]['label'])")
	run_dgm backups create plan.yaml
	expect_rc 0
	expect_err "restore point in pgBackRest stanza 'dgm' and model store archive"
	expect_no "pg_dump ("
	id=$(snapshot_id)
	[[ -n $id && $out == "$id" ]] || fail "create printed '$out', folder '$id'"
	[[ ! -e backups/$id/db && ! -e backups/$id/db.dump ]] || fail "a dump was taken"
	[[ $(manifest_get "$id" "m['database']['format']") == pgbackrest ]] || fail "format"
	[[ $(manifest_get "$id" "m['database']['pgbackrest']['restore_point']") == "dgmigrate-$id" ]] ||
		fail "restore point name"
	[[ $(manifest_get "$id" "m['database']['pgbackrest']['stanza']") == dgm ]] || fail "stanza"
	[[ $(manifest_get "$id" "m['database']['pgbackrest']['timeline']") == 1 ]] || fail "timeline"
	[[ $(manifest_get "$id" "m['database']['pgbackrest']['backup_label']") == "$label" ]] ||
		fail "backup label is not $label"
	seg=$(manifest_get "$id" "m['database']['pgbackrest']['wal_segment']")
	lsn=$(manifest_get "$id" "m['database']['pgbackrest']['lsn']")
	[[ $(psql_db postgres -c "SELECT pg_walfile_name('$lsn')") == "$seg" ]] || fail "segment of $lsn"
	# the segment holding the point is in the repository
	pgbr archive-get "$seg" "$PWD/pgbr/got.wal" || fail "segment $seg not archived"
	run_dgm backups list plan.yaml
	expect_rc 0
	expect_out "pitr"
	expect_out "restore point 'dgmigrate-$id' in pgBackRest stanza 'dgm' (LSN $lsn, timeline 1, backup $label)"
	run_dgm backups verify "$id" plan.yaml
	expect_rc 0
	expect_err "is intact: restore point 'dgmigrate-$id'"
}

test_snapshot_takes_the_planned_backup() {
	pgbr_setup --no-backup
	setup_release "$TEST_DB"
	PGBR_PLAN_EXTRA="  backup: full" pgbr_plan
	run_dgm backups create plan.yaml
	expect_rc 0
	id=$(snapshot_id)
	label=$(pgbr info --output=json | python3 -c "import json,sys; b=json.load(sys.stdin)[0]['backup']; print(len(b), b[-1]['label'])")
	[[ $label == "1 "*F ]] || fail "no full backup: $label"
	[[ $(manifest_get "$id" "m['database']['pgbackrest']['backup_label']") == "${label#1 }" ]] ||
		fail "backup label"
}

test_snapshot_waits_for_the_archive() {
	pgbr_setup
	setup_release "$TEST_DB"
	PGBR_ARCHIVE_TIMEOUT=1s pgbr_plan
	pgbr_break_archiving
	run_dgm backups create plan.yaml
	expect_rc 1
	expect_err "holding restore point 'dgmigrate-"
	expect_err "was not archived within pgbackrest.archive_timeout (1000 ms)"
	[[ -z $(ls backups | grep -v '^state$') ]] || fail "a snapshot was left: $(ls backups)"
}

# apply (its snapshot a restore point after an incremental backup), a
# row written after the release, rollback --restore: the database is the
# one at the restore point again, through a side instance.
test_rollback_restore_side() {
	pgbr_setup
	setup_release "$TEST_DB"
	migrate_app app head
	psql_db "$TEST_DB" -c "INSERT INTO organizations (name, slug) SELECT 'org ' || g, 'org-' || g FROM generate_series(1, 20) g" >/dev/null
	rows_v15=$(db_fingerprint "$TEST_DB")
	PGBR_PLAN_EXTRA="  backup: incr" pgbr_plan
	run_dgm apply plan.yaml
	expect_rc 0
	id=$(grep -l '"kind": "pre-apply"' backups/*/manifest.json | cut -d/ -f2)
	[[ $(manifest_get "$id" "m['database']['format']") == pgbackrest ]] || fail "not a restore point"
	psql_db "$TEST_DB" -c "INSERT INTO organizations (name, slug) VALUES ('after release', 'after-release')" >/dev/null
	run_dgm rollback --to v1.5 plan.yaml --restore
	expect_rc 2
	expect_err "would discard writes made since the release finished"
	run_dgm rollback --to v1.5 plan.yaml --restore --accept-data-loss
	expect_rc 0
	expect_err "restore point 'dgmigrate-$id': restoring database '$TEST_DB'"
	expect_err "side instance on port $((DGM_PGPORT + 1)) reached 'dgmigrate-$id'"
	expect_no "is not in backup"  # --db-include: the one database
	[[ "$(db_fingerprint "$TEST_DB")" == "$rows_v15" ]] || fail "database differs from the restore point:
$(diff <(echo "$rows_v15") <(db_fingerprint "$TEST_DB"))"
	# the side instance is gone, and so is the dump made from it
	[[ ! -e pgbr/side/data ]] || fail "side instance left in pgbr/side/data"
	[[ ! -e backups/$id/db && ! -e backups/$id/db.sha256 ]] || fail "the side dump was left"
	run_dgm backups verify "$id" plan.yaml
	expect_rc 0
}

# The database is newer than the stanza's backup (no backup in the plan):
# --db-include cannot name it, so the whole cluster is restored beside;
# `backups restore` puts the database back to the point all the same.
test_side_restore_db_not_in_backup() {
	pgbr_setup
	setup_release "$TEST_DB"
	migrate_app app head
	psql_db "$TEST_DB" -c "INSERT INTO organizations (name, slug) SELECT 'org ' || g, 'org-' || g FROM generate_series(1, 5) g" >/dev/null
	before=$(db_fingerprint "$TEST_DB")
	pgbr_plan
	run_dgm backups create plan.yaml
	expect_rc 0
	id=$(snapshot_id)
	psql_db "$TEST_DB" -c "DELETE FROM organizations WHERE id % 2 = 0; CREATE TABLE junk (x int)" >/dev/null
	run_dgm backups restore "$id" plan.yaml --accept-data-loss
	expect_rc 0
	expect_err "is not in backup"
	[[ "$(db_fingerprint "$TEST_DB")" == "$before" ]] || fail "database differs from the restore point"
	[[ ! -e pgbr/side/data ]] || fail "side instance left"
}

# ---- restore: cluster ----

# pgbr_cluster_plan [FILE]: pgbr_plan with restore: cluster; the server
# is stopped and started with pg_ctl as cluster_pg_start starts it.
pgbr_cluster_plan() {
	local run_as=""
	[[ $(id -u) -eq 0 ]] && run_as="runuser, -u, postgres, --, "
	PGBR_PLAN_EXTRA="  restore: cluster
  server:
    stop: [${run_as}$PGBIN/pg_ctl, -D, $DGM_PGHOST/data, -m, fast, -w, stop]
    start: [${run_as}$PGBIN/pg_ctl, -D, $DGM_PGHOST/data, -l, $DGM_PGHOST/server.log, -w, -t, \"60\", -o, \"-k $DGM_PGHOST -p $DGM_PGPORT -c listen_addresses='' -c fsync=off -c max_connections=60\", start]
${PGBR_PLAN_EXTRA:-}" pgbr_plan "$@"
}

# pgbr_released: the release applied with a restore point before it (an
# incremental backup first), a row written after it; $rows_v15 is the
# database at the restore point, $id the snapshot.
pgbr_released() {
	psql_db "$TEST_DB" -c "INSERT INTO organizations (name, slug) SELECT 'org ' || g, 'org-' || g FROM generate_series(1, 20) g ON CONFLICT DO NOTHING" >/dev/null
	rows_v15=$(db_fingerprint "$TEST_DB")
	run_dgm apply plan.yaml
	expect_rc 0
	id=$(grep -l '"kind": "pre-apply"' backups/*/manifest.json | cut -d/ -f2 | sort | tail -1)
	psql_db "$TEST_DB" -c "INSERT INTO organizations (name, slug) VALUES ('after release $id', 'after-$id')" >/dev/null
}

pgbr_at_point() {
	[[ $(psql_db postgres -c "SELECT pg_is_in_recovery()") == f ]] || fail "the server is not up or still recovering"
	[[ "$(db_fingerprint "$TEST_DB")" == "$rows_v15" ]] || fail "database differs from the restore point:
$(diff <(echo "$rows_v15") <(db_fingerprint "$TEST_DB"))"
	[[ ! -e backups/state/pgbackrest-cluster.jsonl ]] || fail "the cluster restore's journal was left"
}

# restore: cluster - the server stopped, the cluster rewound to the
# restore point in place, started, promoted: the database is exactly
# the one at the point, and the run history is kept.
test_rollback_restore_cluster() {
	pgbr_setup
	setup_release "$TEST_DB"
	migrate_app app head
	PGBR_PLAN_EXTRA="  backup: incr" pgbr_cluster_plan
	run_dgm apply plan.yaml --dry-run
	expect_rc 0
	expect_check ok restore "cluster: a restore rewinds the whole cluster: stop the server ("
	expect_check ok restore "pg_ctl -D $DGM_PGHOST/data -m fast -w stop), "
	expect_check ok restore "pgbackrest --config=$PWD/pgbr/pgbackrest.conf --stanza=dgm restore --delta --set=<backup> --type=name --target=<point> --target-action=promote, start it ("
	expect_check ok restore "pg_ctl -D $DGM_PGHOST/data -l $DGM_PGHOST/server.log -w -t 60 -o '-k $DGM_PGHOST"
	expect_check ok privileges "snapshot by a pgBackRest restore point (the pgbackrest checks below); restore by rewinding the whole cluster"
	pgbr_released
	run_dgm rollback --to v1.5 plan.yaml --restore --accept-data-loss --dry-run
	expect_rc 0
	expect_out "restore: cluster - the whole cluster rewound to restore point 'dgmigrate-$id': stop the server ("
	expect_out "restore --delta --set=$(manifest_get "$id" "m['database']['pgbackrest']['backup_label']") --type=name --target=dgmigrate-$id --target-action=promote, start it ("
	run_dgm rollback --to v1.5 plan.yaml --restore
	expect_rc 2
	expect_err "would discard writes made since the release finished"
	[[ $(psql_db postgres -c "SELECT 1") == 1 ]] || fail "the refused restore stopped the server"
	# held with the server stopped (the lock went with it): the restore's
	# own journal keeps every other run out meanwhile
	rm -f wait.flag
	DGMIGRATE_FAULT_WAIT_AT=cluster.stopped DGMIGRATE_FAULT_WAIT_FILE=$PWD/wait.flag \
		"$DGMIGRATE" rollback --to v1.5 plan.yaml --restore --accept-data-loss >bg.out 2>bg.err &
	bgpid=$!
	for ((i = 0; i < 3000; i++)); do
		[[ -e wait.flag ]] && break
		kill -0 "$bgpid" 2>/dev/null || break
		sleep 0.02
	done
	[[ -e wait.flag ]] || fail "the rollback did not reach cluster.stopped: $(tail -5 bg.err)"
	run_dgm apply plan.yaml
	expect_rc 3
	expect_err "a restore: cluster is under way"
	run_dgm resume plan.yaml
	expect_rc 3
	rm -f wait.flag
	wait "$bgpid" || fail "the rollback failed: $(tail -5 bg.err)"
	err=$(cat bg.err)
	expect_err "pgbackrest.server.stop: "
	expect_err "restore point 'dgmigrate-$id': rewinding the cluster in place from backup"
	expect_err "pgbackrest.server.start: "
	expect_err "the cluster is at restore point 'dgmigrate-$id' and accepts writes"
	pgbr_at_point
	# the history rows written after the point are kept
	[[ $(psql_db "$TEST_DB" -c "SELECT count(*) FROM dgmigrate.runs WHERE outcome = 'success'") == 2 ]] ||
		fail "history: $(psql_db "$TEST_DB" -c "SELECT command, outcome FROM dgmigrate.runs")"
	# the cluster archives on the new timeline: a restore point made there
	# goes back through backups restore too
	run_dgm backups create plan.yaml
	expect_rc 0
	snap=$out
	at_snap=$(db_fingerprint "$TEST_DB")
	psql_db "$TEST_DB" -c "INSERT INTO organizations (name, slug) VALUES ('late', 'late')" >/dev/null
	run_dgm backups restore "$snap" plan.yaml --accept-data-loss
	expect_rc 0
	expect_err "the cluster is at restore point 'dgmigrate-$snap' and accepts writes"
	[[ "$(db_fingerprint "$TEST_DB")" == "$at_snap" ]] || fail "backups restore did not go back to $snap"
	[[ ! -e backups/state/pgbackrest-cluster.jsonl ]] || fail "the cluster restore's journal was left"
}

# Killed at each state of the restore (journaled in its own journal:
# the server is down, so the run's lock and journal cannot guard it):
# nothing else runs until resume has settled it. Killed before the stop,
# nothing had changed and the rollback is finished by downgrade; from
# the stop on, resume finishes the restore: the server is up and the
# database at the restore point.
test_cluster_restore_killed() {
	pgbr_setup
	setup_release "$TEST_DB"
	migrate_app app head
	pgbr_cluster_plan
	for state in begin stopped restored started; do
		pgbr_released
		DGMIGRATE_FAULT_KILL_AT=cluster-$state run_dgm rollback --to v1.5 plan.yaml --restore --accept-data-loss
		[[ $rc == 137 ]] || fail "expected the rollback to be killed at $state, exit $rc: $err"
		if [[ $state == stopped || $state == restored ]]; then
			! psql_db postgres -c "SELECT 1" >/dev/null 2>&1 || fail "the server answers at $state"
		fi
		run_dgm apply plan.yaml
		expect_rc 1
		expect_err "a restore: cluster of snapshot '$id' was interrupted (state '$state'"
		expect_err "run dgmigrate resume PLAN first"
		# a dry run too says why the server may be down and what to run
		if [[ $state == stopped ]]; then
			run_dgm apply plan.yaml --dry-run
			expect_rc 1
			expect_err "a restore: cluster of snapshot '$id' was interrupted (state '$state'"
		fi
		run_dgm resume plan.yaml
		expect_rc 0
		[[ $(psql_db "$TEST_DB" -c "SELECT version_num FROM alembic_version") == 5e9f3b7a1c62 ]] ||
			fail "not at v1.5 after a kill at $state"
		if [[ $state == begin ]]; then
			expect_err "was killed before the server was stopped: nothing had changed"
			[[ $(psql_db "$TEST_DB" -c "SELECT count(*) FROM organizations WHERE slug = 'after-$id'") == 1 ]] ||
				fail "the row written after the release was lost"
			rows_v15=$(db_fingerprint "$TEST_DB")
		else
			expect_err "finishing the restore: cluster of snapshot '$id' (it had reached '$state')"
		fi
		pgbr_at_point
	done
}

# Killed while the side instance runs: the live database is untouched;
# resume stops and removes the side instance and the dump folder, and
# finishes the rollback.
test_side_restore_killed() {
	pgbr_setup
	setup_release "$TEST_DB"
	migrate_app app head
	PGBR_PLAN_EXTRA="  backup: incr" pgbr_plan
	pgbr_released
	live=$(db_fingerprint "$TEST_DB")
	DGMIGRATE_FAULT_KILL_AT=side-started run_dgm rollback --to v1.5 plan.yaml --restore --accept-data-loss
	[[ $rc == 137 ]] || fail "expected the rollback to be killed, exit $rc: $err"
	as_pg "$PGBIN/pg_ctl" -D "$PWD/pgbr/side/data" status >/dev/null || fail "no side instance runs"
	[[ "$(db_fingerprint "$TEST_DB")" == "$live" ]] || fail "the live database changed"
	run_dgm resume plan.yaml
	expect_rc 0
	expect_err "a side instance of a killed restore: side is left in '$PWD/pgbr/side/data'"
	[[ ! -e pgbr/side/data ]] || fail "side instance left in pgbr/side/data"
	! "$PGBIN/pg_isready" -q -h "$PWD/pgbr/side" -p $((DGM_PGPORT + 1)) || fail "the side instance still answers"
	[[ -z $(ls -d backups/*/db 2>/dev/null) ]] || fail "a side dump was left: $(ls -d backups/*/db)"
	# the rollback was finished (by downgrade): the row written after the
	# release is still there
	[[ $(psql_db "$TEST_DB" -c "SELECT version_num FROM alembic_version") == 5e9f3b7a1c62 ]] ||
		fail "not at v1.5"
	[[ $(psql_db "$TEST_DB" -c "SELECT count(*) FROM organizations WHERE slug = 'after-$id'") == 1 ]] ||
		fail "the row written after the release was lost"
}

# Other databases of the cluster: refused before anything (also where no
# preflight runs: backups restore), unless rewind_other_databases.
test_cluster_restore_refuses_others() {
	pgbr_setup
	setup_release "$TEST_DB"
	PGBR_PLAN_EXTRA='  restore: cluster
  server:
    stop: [false]
    start: [false]' pgbr_plan
	new_db other_app
	run_dgm apply plan.yaml --dry-run
	expect_rc 1
	expect_check FAIL restore "restore: cluster would rewind 1 other database of the cluster"
	run_dgm backups create plan.yaml
	expect_rc 0
	run_dgm backups restore "$(snapshot_id)" plan.yaml --accept-data-loss
	expect_rc 1
	expect_err "restore: cluster would rewind 1 other database of the cluster to the restore point too"
	expect_no "pgbackrest.server.stop"
	[[ ! -e backups/state/pgbackrest-cluster.jsonl ]] || fail "a refused restore left a journal"
	echo "  rewind_other_databases: true" >> plan.yaml
	run_dgm apply plan.yaml --dry-run
	expect_rc 0
	expect_check ok restore "cluster: a restore rewinds the whole cluster (other databases too: allowed): stop the server (false)"
	expect_no "rewind 1 other database"
}

# ---- apply's undo ----

# An apply of v1.7 (t_dataloss.sh's release, whose downgrade raises)
# with a postcondition that never holds: it fails after the upgrade, the
# undo's downgrade fails, and the undo restores the restore point taken
# before the apply - through restore: cluster, then through side, on the
# same database. The database is exactly the one at the point, HEAD is
# back at v1.5, the server is up, and the apply's journal has ended.
test_apply_undo_restores() {
	pgbr_setup
	setup_release "$TEST_DB"
	source "$ROOT/tests/integration/t_dataloss.sh" # add_nodown_release
	add_nodown_release
	migrate_app app head
	psql_db "$TEST_DB" -c "INSERT INTO organizations (name, slug) SELECT 'org ' || g, 'org-' || g FROM generate_series(1, 20) g" >/dev/null
	rows_v15=$(db_fingerprint "$TEST_DB")
	local mode
	for mode in cluster side; do
		write_plan plan.yaml v1.7
		if [[ $mode == cluster ]]; then pgbr_cluster_plan; else pgbr_plan; fi
		sed -i 's/^  tables: \[/  tables: [no_such_table, /' plan.yaml
		grep -q no_such_table plan.yaml || fail "the plan has no failing postcondition"
		run_dgm apply plan.yaml
		expect_rc 1
		expect_err "postconditions failed: table 'no_such_table' does not exist"
		expect_err "the downgrade failed ("
		id=$(grep -l '"kind": "pre-apply"' backups/*/manifest.json | cut -d/ -f2 | sort | tail -1)
		[[ $(manifest_get "$id" "m['database']['format']") == pgbackrest ]] || fail "$mode: not a restore point"
		if [[ $mode == cluster ]]; then
			expect_err "the cluster is at restore point 'dgmigrate-$id' and accepts writes"
		else
			expect_err "side instance on port $((DGM_PGPORT + 1)) reached 'dgmigrate-$id'"
			[[ ! -e pgbr/side/data ]] || fail "side instance left in pgbr/side/data"
		fi
		pgbr_at_point
		[[ $(git -C app rev-parse HEAD) == $(git -C app rev-parse 'v1.5^{commit}') ]] ||
			fail "$mode: HEAD is not at v1.5"
		run_dgm resume plan.yaml
		expect_rc 0
		expect_err "nothing to resume"
	done
}
