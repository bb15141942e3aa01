# t_retention.sh - pruning keeps the way back, and listings say which
# release each snapshot holds.

applied_v16() {
	setup_release "$TEST_DB"
	migrate_app app head
	run_dgm apply plan.yaml
	expect_rc 0
	pre_apply=$(grep -l '"kind": "pre-apply"' backups/*/manifest.json | xargs -n1 dirname | xargs -n1 basename)
	[[ -n $pre_apply ]] || fail "no pre-apply snapshot"
	sleep 1   # snapshot ids order by the second they were taken in
	run_dgm backups create plan.yaml
	expect_rc 0
	sleep 1
	run_dgm backups create plan.yaml
	expect_rc 0
}

test_prune_keeps_the_way_back_unless_forced() {
	applied_v16
	run_dgm backups prune plan.yaml --keep 1
	expect_rc 0
	[[ -d backups/$pre_apply ]] || fail "prune removed the only pre-apply snapshot"
	expect_err "keeping snapshot '$pre_apply': it holds the state before the newest apply"
	expect_err "pruned 1 snapshot"
	# what the rollback needs is still there: it restores from it
	run_dgm rollback --to v1.5 plan.yaml --restore --accept-data-loss --dry-run
	expect_rc 0
	expect_out "restore snapshot '$pre_apply'"
	run_dgm backups prune plan.yaml --keep 1 --force
	expect_rc 0
	# the kept snapshots read unchanged model store files from its archive,
	# which alone stays (folded: no longer a snapshot)
	[[ ! -e backups/$pre_apply/manifest.json && -e backups/$pre_apply/models.tar.zst ]] ||
		fail "--force did not prune the pre-apply snapshot: $(ls "backups/$pre_apply")"
}

test_list_labels_the_release_each_snapshot_holds() {
	applied_v16
	run_dgm backups list plan.yaml
	expect_rc 0
	grep -E "^$pre_apply +pre-apply +.* v1\.5 " <<<"$out" >/dev/null ||
		fail "the pre-apply snapshot is not labelled with v1.5, the release it holds:
$out"
	expect_out "$pre_apply: taken before applying 'v1.6'"
	run_dgm backups list plan.yaml --json
	expect_rc 0
	python3 -c '
import json, sys
doc = json.loads(sys.stdin.read())
assert isinstance(doc, list) and len(doc) == 3, doc
pre = [s for s in doc if s["kind"] == "pre-apply"][0]
assert pre["holds"] == "v1.5", pre["holds"]
manual = [s for s in doc if s["kind"] == "manual"]
assert all(s["holds"] == "v1.6" for s in manual), [s["holds"] for s in manual]
' <<<"$out" || fail "backups list --json is not one document with the releases held:
$out"
}

# Space is told on both sides: the snapshot folder gets the dump and the
# archive, the database server the copy; kept copies are sized.
test_space_is_estimated_per_side_and_copies_are_sized() {
	setup_release "$TEST_DB"
	migrate_app app head
	run_dgm apply plan.yaml --dry-run
	expect_rc 0
	# a database of a few MiB of catalog and no rows: the dump is ~0 MiB,
	# the copy the database's whole size, and only the latter on the server
	expect_err "the snapshot needs about 0 MiB there (dump 0, model store 0)"
	db_mib=$(( $(psql_db "$TEST_DB" -c "SELECT pg_database_size(current_database())") >> 20 ))
	expect_err "the server-side copy takes about $db_mib MiB on the database server"
	run_dgm apply plan.yaml
	expect_rc 0
	run_dgm backups list plan.yaml
	expect_rc 0
	expect_out "server-side copies: 1, "
	run_dgm status plan.yaml
	expect_rc 0
	expect_out "1 server-side copy: "
	run_dgm status plan.yaml --json
	python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["server_copies"] == 1 and d["server_copies_bytes"] > 0, d' <<<"$out" ||
		fail "status --json lacks the copies' size: $out"
}
