# t_rollback_speed.sh - issue 14, part 3: what a rollback no longer does
# twice. `rollback --restore` keeps the database it replaces as its safety
# snapshot by renaming it aside, not by a full copy first (the restore
# path costs one clone and renames), and a run killed between or after
# its renames is settled by `resume` with nothing lost. A model store the
# safety snapshot found equal to the release's archive (file by file) and
# that nobody touched since is not compared again by the restore; one
# written in between is restored. Points in a run are reached for sure
# (DGMIGRATE_FAULT_WAIT_AT), never after a sleep.

source "$ROOT/tests/integration/held_lib.sh"

V15=5e9f3b7a1c62

at_v16() {
	setup_release "$TEST_DB"
	rm -rf models
	python3 "$ROOT/fixtures/gen-model-store.py" models --weights-mb 1 --json-files 50 >/dev/null
	migrate_app app head
	psql_db "$TEST_DB" -c "INSERT INTO organizations (name, slug) SELECT 'org ' || g, 'org-' || g FROM generate_series(1, 20) g" >/dev/null
	rows_v15=$(db_fingerprint "$TEST_DB")
	rm -rf models.v15 && cp -a models models.v15
	head_v15=$(git -C app rev-parse HEAD)
	run_dgm apply plan.yaml
	expect_rc 0
	# written after the release: the safety snapshot must keep it
	psql_db "$TEST_DB" -c "INSERT INTO organizations (name, slug) VALUES ('after release', 'after-release')" >/dev/null
}

safety_id() { grep -l '"kind": "pre-rollback"' backups/*/manifest.json 2>/dev/null | sort | tail -n 1 | cut -d/ -f2; }
copy_of() { sed -n 's/.*"copy": "\([^"]*\)".*/\1/p' "backups/$1/manifest.json"; }
db_oid() { psql_db postgres -c "SELECT oid FROM pg_database WHERE datname = '$1'"; }
db_exists() { [[ -n $(db_oid "$1") ]]; }
revisions() { psql_db "$TEST_DB" -c "SELECT string_agg(version_num, ',' ORDER BY 1) FROM alembic_version"; }
# this test's safety copies (other files' tests share the cluster)
safe_dbs() { psql_db postgres -c "SELECT string_agg(datname, ' ' ORDER BY datname) FROM pg_database WHERE left(datname, 30) = left('$TEST_DB', 30) AND datname LIKE '%\_dgm\_safe\_%'"; }
after_rows() { psql_db "$1" -c "SELECT count(*) FROM organizations WHERE slug = 'after-release'"; }

test_restore_sets_the_database_aside_instead_of_copying_it() {
	at_v16
	psql_db postgres -c "COMMENT ON DATABASE \"$TEST_DB\" IS 'the app database'" >/dev/null
	local oid; oid=$(db_oid "$TEST_DB")
	run_dgm rollback --to v1.5 plan.yaml --dry-run --restore --accept-data-loss
	expect_rc 0
	expect_out "renamed aside"
	run_dgm rollback --to v1.5 plan.yaml --restore --accept-data-loss
	expect_rc 0
	expect_err "set aside as '${TEST_DB:0:30}_dgm_safe_"
	[[ $(revisions) == "$V15" ]] || fail "alembic_version: $(revisions)"
	[[ "$(db_fingerprint "$TEST_DB")" == "$rows_v15" ]] || fail "database differs from the release snapshot"
	[[ $(git -C app rev-parse HEAD) == "$head_v15" ]] || fail "HEAD not at v1.5"
	# the safety snapshot's database is the database that was live: the
	# same one (its oid), renamed, not a copy of it
	local safety copy
	safety=$(safety_id) copy=$(copy_of "$(safety_id)")
	[[ -n $safety && $copy == "${TEST_DB:0:30}_dgm_safe_${safety:0:22}" ]] ||
		fail "no safety snapshot set aside: '$safety' '$copy'"
	[[ $(db_oid "$copy") == "$oid" ]] || fail "the safety snapshot's database is a copy (oid $(db_oid "$copy"), the live one was $oid)"
	[[ ! -e backups/$safety/db ]] || fail "a dump in the safety snapshot"
	[[ -z $(leftovers) ]] || fail "left behind: $(leftovers)"
	[[ $(after_rows "$copy") == 1 ]] || fail "the database set aside lacks the row written after the release"
	# the live database keeps its properties, the copy carries the label
	[[ $(psql_db postgres -c "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = '$TEST_DB'") == "the app database" ]] ||
		fail "the live database lost its comment"
	[[ $(psql_db postgres -c "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = '$copy'") == "dgmigrate snapshot copy of $TEST_DB: "* ]] ||
		fail "the copy set aside is not labelled"
	[[ $(psql_db "$TEST_DB" -c "SELECT count(*) FROM dgmigrate.runs WHERE command = 'rollback'") -ge 1 ]] ||
		fail "no history row of the rollback"
	run_dgm backups verify "$safety" plan.yaml
	expect_rc 0
	# and it gives back what it holds
	run_dgm backups restore "$safety" plan.yaml --terminate-connections
	expect_rc 0
	[[ $(after_rows "$TEST_DB") == 1 ]] || fail "the safety snapshot does not give the row back"
	[[ $(psql_db "$TEST_DB" -c "SELECT string_agg(version_num, ',') FROM alembic_version") == b6e14d8a0f97 ]] ||
		fail "the safety snapshot is not at v1.6"
}

test_restore_refused_by_the_data_loss_check_leaves_no_snapshot() {
	at_v16
	run_dgm rollback --to v1.5 plan.yaml --restore
	expect_rc 2
	[[ -z $(safety_id) ]] || fail "a safety snapshot without its database: $(safety_id)"
	[[ $(after_rows "$TEST_DB") == 1 ]] || fail "the database changed"
}

# ---- killed in the swap, settled by resume ----

# killed at POINT, then resumed: v1.5 everywhere, the row written after
# the release in the live database or in a complete safety snapshot,
# nothing left half-made.
killed_and_resumed() {
	at_v16
	kill_at "$1" rollback --to v1.5 plan.yaml --restore --accept-data-loss
	"${2:-true}"
	run_dgm resume plan.yaml
	expect_rc 0
	if [[ $1 == restore.swapped ]]; then
		expect_no "putting database"
	else
		expect_err "putting database '$TEST_DB' back under its name"
	fi
	run_dgm resume plan.yaml
	expect_err "nothing to resume"
	[[ $(revisions) == "$V15" ]] || fail "alembic_version: $(revisions)"
	[[ $(git -C app rev-parse HEAD) == "$head_v15" ]] || fail "HEAD not at v1.5"
	local kept=0 id
	[[ $(after_rows "$TEST_DB") == 1 ]] && kept=1
	for id in $(grep -l '"kind": "pre-rollback"' backups/*/manifest.json | cut -d/ -f2); do
		db_exists "$(copy_of "$id")" || fail "safety snapshot $id names no database"
		[[ $(after_rows "$(copy_of "$id")") == 1 ]] && kept=1
	done
	((kept)) || fail "the row written after the release is lost"
	[[ -z $(leftovers) ]] || fail "left behind: $(leftovers)"
	[[ -z $(ls -d backups/*.partial 2>/dev/null) ]] || fail "left behind: $(ls -d backups/*.partial)"
}

no_live_database() { ! db_exists "$TEST_DB" || fail "the database still has its name between the renames"; }

test_restore_killed_between_its_renames_is_settled() { killed_and_resumed restore.renamed no_live_database; }
test_restore_killed_after_its_renames_is_settled() { killed_and_resumed restore.db-swapped; }
test_restore_killed_after_the_snapshot_completed_is_settled() { killed_and_resumed restore.swapped; }

# The swap fails after the database went aside (its staging database
# dropped while the run waits at restore.staged): the database is put
# back, and the safety snapshot that waited for it is gone, not named.
test_restore_failing_in_its_swap_puts_the_database_back() {
	at_v16
	local set_aside; set_aside=$(safe_dbs)
	rm -f wait.flag
	DGMIGRATE_FAULT_WAIT_AT=restore.staged DGMIGRATE_FAULT_WAIT_FILE=$PWD/wait.flag \
		"$DGMIGRATE" rollback --to v1.5 plan.yaml --restore --accept-data-loss >bg.out 2>bg.err &
	bgpid=$!
	wait_until "the restore to be staged" reached
	local staging
	staging=$(psql_db postgres -c "SELECT datname FROM pg_database WHERE datname LIKE '${TEST_DB:0:30}\_dgm\_new\_%'")
	[[ -n $staging ]] || fail "no staging database"
	psql_db postgres -c "DROP DATABASE \"$staging\"" >/dev/null
	rm -f wait.flag
	local brc=0
	wait "$bgpid" || brc=$?
	[[ $brc == 1 ]] || fail "expected exit 1, got $brc: $(tail -5 bg.err)"
	[[ $(revisions) == b6e14d8a0f97 ]] || fail "alembic_version: $(revisions)"
	[[ $(after_rows "$TEST_DB") == 1 ]] || fail "the row written after the release is gone"
	[[ -z $(safety_id) ]] || fail "a safety snapshot without its database: $(safety_id)"
	[[ -z $(ls -d backups/*.partial 2>/dev/null) ]] || fail "left behind: $(ls -d backups/*.partial)"
	[[ $(safe_dbs) == "$set_aside" ]] || fail "a database set aside is left: $(safe_dbs)"
	! grep -q "before the rollback is in snapshot" bg.err || fail "the error names a snapshot that is gone"
}

# ---- the model store, compared once ----

store_same() { diff <(cd models.v15 && find . -type f -print0 | sort -z | xargs -0 sha256sum) \
	<(cd models && find . -type f -print0 | sort -z | xargs -0 sha256sum) >/dev/null; }

test_an_untouched_store_is_compared_once() {
	at_v16
	run_dgm rollback --to v1.5 plan.yaml
	expect_rc 0
	expect_err "its archive is linked"
	expect_err "nothing in it has changed since: left as is"
	store_same || fail "the model store differs from the release's"
	grep -q '"step":"restore.store","phase":"done"' "$(ls -t backups/state/journal/*.jsonl | head -n 1)" ||
		fail "no restore.store step in the journal"
	# the restore path too
	run_dgm apply plan.yaml
	expect_rc 0
	run_dgm rollback --to v1.5 plan.yaml --restore --accept-data-loss
	expect_rc 0
	expect_err "nothing in it has changed since: left as is"
	store_same || fail "the model store differs from the release's"
}

test_a_store_written_during_the_rollback_is_restored() {
	at_v16
	rm -f wait.flag
	DGMIGRATE_FAULT_WAIT_AT=alembic.downgrade DGMIGRATE_FAULT_WAIT_FILE=$PWD/wait.flag \
		"$DGMIGRATE" rollback --to v1.5 plan.yaml >bg.out 2>bg.err &
	bgpid=$!
	wait_until "the downgrade to start" reached
	# after the safety snapshot compared the store: the application writes
	printf 'retrained\n' >>"$(find models -type f | sort | head -n 1)"
	rm -f wait.flag
	wait "$bgpid" || fail "the rollback failed: $(tail -5 bg.err)"
	! grep -q "left as is" bg.err || fail "the store written since was left as is"
	store_same || fail "the store written during the rollback was not restored"
}

# The safety snapshot compares the store with the release's archive
# (reading both whole) on the store's thread while the database is copied,
# not before the copy starts: held in that comparison, the copy completes.
test_the_store_is_compared_while_the_database_is_copied() {
	at_v16
	rm -f wait.flag
	DGMIGRATE_FAULT_WAIT_AT=snapshot.link DGMIGRATE_FAULT_WAIT_FILE=$PWD/wait.flag \
		"$DGMIGRATE" rollback --to v1.5 plan.yaml >bg.out 2>bg.err &
	bgpid=$!
	wait_until "the store comparison to start" reached
	wait_until "the safety copy to be made while the store comparison is held" safe_copy_made
	rm -f wait.flag
	wait "$bgpid" || fail "the rollback failed: $(tail -5 bg.err)"
	grep -q "its archive is linked" bg.err || fail "the release's archive was not linked"
	[[ $(revisions) == "$V15" ]] || fail "alembic_version: $(revisions)"
	store_same || fail "the model store differs from the release's"
}
safe_copy_made() {
	kill -0 "$bgpid" 2>/dev/null || fail "the rollback ended: $(tail -5 bg.err)"
	[[ -n $(safe_dbs) ]]
}

# The release's store archive was read back whole when apply wrote it;
# unchanged since (models.verified.json: its identity, sealed), the
# safety snapshot links it without reading it again. Changed since (its
# ctime moved), or with a record not sealed by the key, it is read back
# whole first: a damaged archive is then never linked.
release_id() { grep -l '"kind": "pre-apply"' backups/*/manifest.json | sort | tail -n 1 | cut -d/ -f2; }

test_a_vouched_release_archive_is_not_read_again() {
	at_v16
	local rel; rel=$(release_id)
	[[ -f backups/$rel/models.verified.json ]] || fail "apply left no record of reading its archive back"
	run_dgm rollback --to v1.5 plan.yaml
	expect_rc 0
	expect_err "the archive of snapshot '$rel' was read back whole and has not changed since"
	expect_err "its archive is linked"
	store_same || fail "the model store differs from the release's"
	# the link moved the file's ctime: the record follows it
	run_dgm backups verify "$(safety_id)" plan.yaml
	expect_rc 0
}

test_a_damaged_release_archive_is_read_back_and_not_linked() {
	at_v16
	local rel; rel=$(release_id)
	# one byte changed in place (size and mtime put back): the ctime moves
	local a=backups/$rel/models.tar.zst m
	m=$(stat -c %y "$a")
	printf 'X' | dd of="$a" bs=1 seek=4096 conv=notrunc status=none
	touch -d "$m" "$a"
	run_dgm rollback --to v1.5 plan.yaml
	# the release's store archive cannot be restored: the rollback stops
	# there, and says where the state before it is
	expect_rc 1
	expect_err "is damaged"
	expect_no "was read back whole and has not changed since"
	expect_no "its archive is linked"
	expect_err "not linking the archive of snapshot '$rel'"
	# nor is the safety snapshot's archive chained to the damaged one: it
	# can be restored
	expect_err "not chaining the model store archive to snapshot '$rel'"
	run_dgm backups verify "$(safety_id)" plan.yaml
	expect_rc 0
}

test_a_forged_record_does_not_vouch() {
	at_v16
	local rel; rel=$(release_id)
	local a=backups/$rel/models.tar.zst
	printf 'X' | dd of="$a" bs=1 seek=4096 conv=notrunc status=none
	# the record rewritten to the file's new identity, without the key
	python3 - "backups/$rel/models.verified.json" "$a" <<'PY'
import json, os, sys
rec = json.load(open(sys.argv[1])); st = os.stat(sys.argv[2])
rec.update(dev=st.st_dev, ino=st.st_ino, size=st.st_size, mtime_ns=st.st_mtime_ns, ctime_ns=st.st_ctime_ns)
json.dump(rec, open(sys.argv[1], "w"))
PY
	run_dgm rollback --to v1.5 plan.yaml
	expect_rc 1
	expect_no "was read back whole and has not changed since"
	expect_no "its archive is linked"
	expect_err "not linking the archive of snapshot '$rel'"
	run_dgm backups verify "$(safety_id)" plan.yaml
	expect_rc 0
}
