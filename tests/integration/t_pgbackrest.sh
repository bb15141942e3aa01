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
	# allowed, but the cluster restore is not written yet: a plan error
	expect_rc 2
	expect_check FAIL restore "(other databases too: allowed), but this dgmigrate cannot restore"
	expect_no "rewind 1 other database"
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
