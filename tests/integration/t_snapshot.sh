# t_snapshot.sh - snapshots: pg_dump + model-store archive, verify,
# restore, prune, lock, secrets (real cluster, real pg_dump/pg_restore).

# A database at v1.5 with rows, and a varied model store.
prepare() {
	setup_release "$TEST_DB"
	rm -rf models
	python3 "$ROOT/fixtures/gen-model-store.py" models --weights-mb 2 --json-files 200 >/dev/null
	migrate_app app head
	psql_db "$TEST_DB" -c "INSERT INTO organizations (name, slug) SELECT 'org ' || g, 'org-' || g FROM generate_series(1, 50) g" >/dev/null
}

snapshot_id() { ls backups | grep -v -e partial -e '^state$' | sort | tail -1; }

test_create_list_verify() {
	prepare
	run_dgm backups create plan.yaml
	expect_rc 0
	id=$(snapshot_id)
	[[ -n $id && $out == "$id" ]] || fail "create printed '$out', folder '$id'"
	run_dgm backups list plan.yaml
	expect_rc 0
	expect_out "$id"
	expect_out "5e9f3b7a1c62"
	run_dgm backups verify "$id" plan.yaml
	expect_rc 0
	expect_err "is intact"
	[[ $(stat -c %a backups "backups/$id") == $'700\n700' ]] || fail "folders not 0700"
	bad=$(find "backups/$id" -type f ! -perm 600 | sed -n 1p)
	[[ -z $bad ]] || fail "file not 0600: $bad"
}

test_round_trip_restores_database_and_store() {
	prepare
	cp -a models models.before
	before_db=$(db_fingerprint "$TEST_DB")
	run_dgm backups create plan.yaml
	expect_rc 0
	id=$(snapshot_id)
	# change everything the snapshot covers
	psql_db "$TEST_DB" -c "DELETE FROM organizations WHERE id % 2 = 0; CREATE TABLE junk (x int)" >/dev/null
	echo changed > models/README.changed
	f=$(find models -name '*.json' | sort | sed -n 1p); echo '{}' > "$f"
	rm -rf "$(find models -mindepth 1 -type d | sort | tail -1)"
	# the rows deleted since the snapshot are writes a restore discards
	run_dgm backups restore "$id" plan.yaml
	expect_rc 2
	expect_err "would discard writes made since the snapshot was taken: 'public.organizations'"
	run_dgm backups restore "$id" plan.yaml --accept-data-loss
	expect_rc 0
	after_db=$(db_fingerprint "$TEST_DB")
	[[ "$before_db" == "$after_db" ]] || fail "database differs after restore:
$(diff <(echo "$before_db") <(echo "$after_db"))"
	diff <(tree_fingerprint models.before) <(tree_fingerprint models) || fail "model store differs"
	# the state before the restore was kept
	run_dgm backups list plan.yaml
	expect_out "pre-restore"
}

test_verify_catches_flipped_byte_in_archive() {
	prepare
	run_dgm backups create plan.yaml
	id=$(snapshot_id)
	a=backups/$id/models.tar.zst
	size=$(stat -c %s "$a")
	printf '\xff' | dd of="$a" bs=1 seek=$((size / 2)) conv=notrunc status=none
	run_dgm backups verify "$id" plan.yaml
	expect_rc 1
	expect_err "does not match its manifest"
}

test_verify_catches_deleted_dump_file() {
	prepare
	run_dgm backups create plan.yaml
	id=$(snapshot_id)
	victim=$(ls "backups/$id/db" | grep '\.dat' | sed -n 1p)
	rm "backups/$id/db/$victim"
	run_dgm backups verify "$id" plan.yaml
	expect_rc 1
	expect_err "do not match db.sha256"
}

test_wrong_password_leaves_no_snapshot() {
	prepare
	DATABASE_URL=$(db_url "$TEST_DB" | sed "s/$DGM_PGPASS/not-the-password/")
	run_dgm backups create plan.yaml
	expect_rc 1
	expect_err "password authentication failed"
	expect_no "not-the-password"
	[[ -z "$(ls backups 2>/dev/null)" ]] || fail "something was left: $(ls backups)"
}

test_stopped_server_leaves_no_snapshot() {
	prepare
	DATABASE_URL="postgresql://dgm:$DGM_PGPASS@/$TEST_DB?host=$PWD&port=1"
	run_dgm backups create plan.yaml
	expect_rc 1
	expect_err "cannot connect to database '$TEST_DB'"
	[[ -z "$(ls backups 2>/dev/null)" ]] || fail "something was left: $(ls backups)"
}

test_failed_dump_leaves_no_snapshot() {
	prepare
	# a pg_dump that dies halfway, as a killed dump would
	mkdir -p shim
	printf '#!/bin/sh\n[ "$1" = --version ] && exec %s "$@"\necho "pg_dump: killed" >&2\nexit 9\n' \
		"$PGBIN/pg_dump" > shim/pg_dump
	chmod +x shim/pg_dump
	PATH=$PWD/shim:$PATH run_dgm backups create plan.yaml
	expect_rc 1
	expect_err "'pg_dump' terminated unexpectedly [9]: pg_dump: killed"
	[[ -z "$(ls backups 2>/dev/null)" ]] || fail "something was left: $(ls backups)"
}

test_password_never_in_child_argv() {
	prepare
	mkdir -p shim
	for tool in pg_dump pg_restore; do
		printf '#!/bin/sh\ntr "\\0" " " < /proc/$$/cmdline >> %s/argv.log\necho >> %s/argv.log\nexec %s/%s "$@"\n' \
			"$PWD" "$PWD" "$PGBIN" "$tool" > "shim/$tool"
		chmod +x "shim/$tool"
	done
	PATH=$PWD/shim:$PATH run_dgm backups create plan.yaml
	expect_rc 0
	PATH=$PWD/shim:$PATH run_dgm backups restore "$(snapshot_id)" plan.yaml
	expect_rc 0
	grep -q -- '--format=directory' argv.log || fail "the shims did not run: $(cat argv.log)"
	! grep -qF -- "$DGM_PGPASS" argv.log || fail "password in a child's argv"
	! grep -qF -- "$SECRET_KEY" argv.log || fail "a secret in a child's argv"
}

test_second_run_gets_exit_3_naming_the_holder() {
	prepare
	pg_admin -c "SET application_name = 'other-deploy'" \
		-c "SELECT pg_advisory_lock(1684500333, hashtext('$TEST_DB'))" -c "SELECT pg_sleep(20)" >/dev/null 2>&1 &
	holder=$!
	for _ in $(seq 50); do
		[[ $(psql_db postgres -c "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted") -ge 1 ]] && break
		sleep 0.1
	done
	run_dgm backups create plan.yaml
	kill "$holder" 2>/dev/null || true
	expect_rc 3
	expect_err "database '$TEST_DB' is locked by another run: 'other-deploy'"
}

test_prune_keeps_the_newest() {
	prepare
	for _ in 1 2 3; do run_dgm backups create plan.yaml; expect_rc 0; sleep 1; done
	newest=$(snapshot_id)
	run_dgm backups prune plan.yaml --keep 1
	expect_rc 0
	# state/ holds the key that signs snapshots (default state_dir); the
	# newest reads its unchanged model store files from the oldest one's
	# archive, which stays, folded: no longer a snapshot
	[[ $(ls backups/*/manifest.json) == "backups/$newest/manifest.json" ]] ||
		fail "left: $(ls backups/*/manifest.json), want $newest"
	[[ $(ls backups | grep -v -e '^state$' | wc -l) == 2 ]] || fail "left: $(ls backups)"
	run_dgm backups prune plan.yaml --keep 0
	expect_rc 2
}

test_prune_keeps_what_an_unfinished_run_needs() {
	prepare
	DGMIGRATE_FAULT_KILL_AT=checkout run_dgm apply plan.yaml
	[[ $rc == 137 ]] || fail "the run was not killed: $rc"
	needed=$(snapshot_id)
	sleep 1
	run_dgm backups create plan.yaml
	run_dgm backups prune plan.yaml --keep 1
	expect_rc 0
	expect_err "keeping snapshot '$needed': an unfinished run still needs it"
	[[ -d backups/$needed ]] || fail "the snapshot the journal needs was pruned"
}

# The dump's progress counts bytes of table data, not tables: one big
# table among empty ones moves it from 0 to all, not 1/n at a time.
test_dump_progress_is_in_bytes() {
	setup_release "$TEST_DB"
	migrate_app app head
	psql_db "$TEST_DB" -c "CREATE TABLE big AS SELECT g, repeat(md5(g::text), 8) AS pad FROM generate_series(1, 20000) g" >/dev/null
	# pg_table_size counts the free space and visibility maps, which
	# autovacuum would otherwise add whenever it comes by: make them now
	psql_db "$TEST_DB" -c "VACUUM" >/dev/null
	total=$(psql_db "$TEST_DB" -c "SELECT sum(pg_table_size(c.oid)) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE relkind IN ('r', 'm') AND nspname NOT IN ('pg_catalog', 'information_schema')")
	run_dgm backups create plan.yaml --json
	expect_rc 0
	printf '%s\n' "$out" > events.jsonl
	python3 - "$total" events.jsonl <<'PY' || fail "no progress in bytes of table data: $out"
import json, sys
total = int(sys.argv[1])
ev = [json.loads(l) for l in open(sys.argv[2]) if l.strip()]
p = [e for e in ev if e.get("event") == "progress" and e.get("step") == "database"]
assert p and all(e["unit"] == "bytes" and e["total"] == total for e in p), p
assert p[-1]["done"] == total, p
PY
}
