# t_leaks.sh - a snapshot killed in the middle (during the server-side
# copy, during pg_dump) leaves nothing that `resume`, the next run or
# `backups prune` does not remove, and `backups list` shows it meanwhile;
# what belongs to another database is never touched. A failing pg_dump
# says why.

prepare_v15() {
	setup_release "$TEST_DB"
	migrate_app app head
	psql_db "$TEST_DB" -c "INSERT INTO organizations (name, slug) VALUES ('a', 'a')" >/dev/null
}

db_exists() { [[ $(psql_db postgres -c "SELECT count(*) FROM pg_database WHERE datname = '$1'") == 1 ]]; }

# Look-alikes that share the copies' 30-byte name prefix: an unfinished
# snapshot of another database in the same snapshot folder (its copy
# included), and a database nobody says anything about.
LOOK1=20990101T000000Z-cafe
LOOK2=20990101T000000Z-beef
make_lookalikes() {
	mkdir -p "backups/$LOOK1.partial"
	printf '{"database":"%s_eu","copy":"%s_dgm_snap_%s"}' "$TEST_DB" "${TEST_DB:0:30}" "$LOOK1" \
		> "backups/$LOOK1.partial/owner.json"
	pg_admin -q -c "CREATE DATABASE \"${TEST_DB:0:30}_dgm_snap_$LOOK1\"" \
		-c "CREATE DATABASE \"${TEST_DB:0:30}_dgm_safe_$LOOK2\"" >/dev/null
}
expect_lookalikes_kept() {
	[[ -f backups/$LOOK1.partial/owner.json ]] || fail "another database's unfinished snapshot was removed"
	db_exists "${TEST_DB:0:30}_dgm_snap_$LOOK1" || fail "another database's copy was dropped"
	db_exists "${TEST_DB:0:30}_dgm_safe_$LOOK2" || fail "a database that only looks like a copy was dropped"
	pg_admin -q -c "DROP DATABASE \"${TEST_DB:0:30}_dgm_snap_$LOOK1\"" \
		-c "DROP DATABASE \"${TEST_DB:0:30}_dgm_safe_$LOOK2\"" >/dev/null
}

# The unfinished snapshot the killed run left (not the look-alike).
killed_id() { ls backups | grep '\.partial$' | grep -v "$LOOK1" | sed 's/\.partial$//'; }
copy_in() { sed -n 's/.*"copy":"\([^"]*\)".*/\1/p' "backups/$1.partial/owner.json"; }

# The killed run's CREATE DATABASE goes on without its client: wait until
# the server has committed the copy (a condition, not a delay).
wait_for_db() {
	for _ in $(seq 300); do db_exists "$1" && return 0; sleep 0.1; done
	fail "the database '$1' never appeared"
}

# Killed while CREATE DATABASE ... TEMPLATE runs: the folder says which
# copy it was making, so the full-size copy is found and dropped.
kill_during_copy() {
	[[ $rc == 137 ]] || fail "the run was not killed during the copy: exit $rc: $err"
	id=$(killed_id)
	[[ -n $id ]] || fail "no unfinished snapshot folder: $(ls backups)"
	copy=$(copy_in "$id")
	[[ $copy == "${TEST_DB:0:30}_dgm_"*"_$id" ]] || fail "owner.json does not name the copy: '$copy'"
	wait_for_db "$copy"
	run_dgm backups list plan.yaml
	expect_rc 0
	expect_out "$id: left by a snapshot that did not finish: folder '$PWD/backups/$id.partial' and database copy '$copy'"
	expect_no "$LOOK1"
	expect_no "$LOOK2"
	run_dgm backups list --json plan.yaml
	expect_rc 0
	grep -q "\"id\":\"$id\",\"kind\":\"orphan\"" <<<"$out" || fail "no orphan in the JSON list: $out"
	grep -q "\"copy\":\"$copy\",\"copy_exists\":true" <<<"$out" || fail "the JSON list lacks the copy: $out"
}

expect_swept() {
	expect_err "dropping '$copy', the copy of an unfinished snapshot"
	! db_exists "$copy" || fail "the killed snapshot's copy '$copy' is still there"
	[[ ! -e backups/$id.partial ]] || fail "the killed snapshot's folder is still there"
	expect_lookalikes_kept
	run_dgm backups list plan.yaml
	expect_no "did not finish"
}

test_apply_killed_during_the_copy_is_swept_by_resume() {
	prepare_v15
	make_lookalikes
	DGMIGRATE_FAULT_KILL_AT=snapshot-copy run_dgm apply plan.yaml
	kill_during_copy
	run_dgm resume plan.yaml
	expect_rc 0
	expect_swept
}

test_next_apply_drops_what_a_killed_restore_left() {
	prepare_v15
	run_dgm backups create plan.yaml
	expect_rc 0
	make_lookalikes
	DGMIGRATE_FAULT_KILL_AT=snapshot-copy run_dgm backups restore "$(ls backups | grep -v -e partial -e state)" plan.yaml
	kill_during_copy
	run_dgm apply plan.yaml
	expect_rc 0
	expect_swept
}

test_prune_drops_what_a_killed_restore_left() {
	prepare_v15
	run_dgm backups create plan.yaml
	expect_rc 0
	make_lookalikes
	DGMIGRATE_FAULT_KILL_AT=snapshot-copy run_dgm backups restore "$(ls backups | grep -v -e partial -e state)" plan.yaml
	kill_during_copy
	# a copy that cannot be dropped is named, with the SQL to drop it by
	# hand, and its folder stays so the next sweep tries again
	pg_admin -q -c "ALTER DATABASE \"$copy\" IS_TEMPLATE true" >/dev/null
	run_dgm backups prune plan.yaml
	expect_rc 0
	expect_err "cannot drop '$copy', the copy of unfinished snapshot '$id'"
	expect_err "DROP DATABASE \"$copy\" WITH (FORCE);"
	[[ -f backups/$id.partial/owner.json ]] || fail "the folder naming the copy was removed"
	pg_admin -q -c "ALTER DATABASE \"$copy\" IS_TEMPLATE false" >/dev/null
	run_dgm backups prune plan.yaml
	expect_rc 0
	expect_swept
}

test_dump_killed_midway_is_swept_by_prune() {
	prepare_v15
	make_lookalikes
	DGMIGRATE_FAULT_KILL_AT=snapshot-dump run_dgm backups create plan.yaml
	[[ $rc == 137 ]] || fail "the run was not killed during pg_dump: exit $rc: $err"
	id=$(killed_id)
	[[ -d backups/$id.partial/db.partial ]] || fail "no half-written dump: $(ls -R backups)"
	run_dgm backups list plan.yaml
	expect_out "$id: left by a snapshot that did not finish: folder '$PWD/backups/$id.partial'"
	# folders that do not say whose they are (an older dgmigrate's): an
	# empty one goes, one with content is only shown
	mkdir backups/20990101T000000Z-0001.partial backups/20990101T000000Z-0002.partial
	touch backups/20990101T000000Z-0002.partial/models.tar.zst.tmp
	run_dgm backups prune plan.yaml
	expect_rc 0
	expect_err "removing '$PWD/backups/$id.partial', the folder of an unfinished snapshot"
	[[ ! -e backups/$id.partial ]] || fail "the killed snapshot's folder is still there"
	[[ ! -e backups/20990101T000000Z-0001.partial ]] || fail "an empty unfinished folder is still there"
	[[ -e backups/20990101T000000Z-0002.partial ]] || fail "a folder nobody can be told to own was removed"
	run_dgm backups list plan.yaml
	expect_out "20990101T000000Z-0002: left by a snapshot that did not finish: folder '$PWD/backups/20990101T000000Z-0002.partial' (it does not say whose it is)"
	expect_lookalikes_kept
}

test_failed_pg_dump_shows_its_error() {
	prepare_v15
	# a role that may read the application's tables but not one more
	pg_admin -q -c "CREATE ROLE dgm_reader LOGIN PASSWORD '$DGM_PGPASS'" >/dev/null
	psql_db "$TEST_DB" -q -c "GRANT SELECT ON ALL TABLES IN SCHEMA public TO dgm_reader" \
		-c "CREATE TABLE vault (secret text)" >/dev/null
	DATABASE_URL=$(db_url "$TEST_DB" | sed 's/dgm:/dgm_reader:/')
	run_dgm backups create plan.yaml
	pg_admin -q -c "DROP OWNED BY dgm_reader CASCADE" -c "DROP ROLE dgm_reader" >/dev/null 2>&1 || true
	expect_rc 1
	expect_err "'pg_dump' terminated unexpectedly [1]: pg_dump: error: query failed: ERROR:  permission denied for table vault"
	expect_no "pg_dump: reading"
	[[ -z "$(ls backups 2>/dev/null | grep -v state)" ]] || fail "something was left: $(ls backups)"
}
