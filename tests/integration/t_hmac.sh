# t_hmac.sh - authenticated snapshots (#13.7): a snapshot folder forged by
# someone who can write it - archive, dump, manifests and checksums
# rewritten to agree with each other - is refused by verify and restore,
# naming the file, and nothing changes; an untouched one verifies and
# restores; an unsigned one needs --trust-unsigned.

snapshot_id() { ls "${1:-backups}" | grep -v -e partial -e '^state$' | sort | tail -1; }

# A database at v1.6 with rows; snapshot A of it in ./backups, then a
# snapshot B (./backups2, another plan) of a different state - a row and
# a model file that A does not have - which the forgeries copy into A.
# The database and store are then put back as A holds them plus one more
# row (so a restore of A, forged or not, changes the database).
prepare() {
	setup_release "$TEST_DB"
	migrate_app app head
	psql_db "$TEST_DB" -c "INSERT INTO organizations (name, slug) VALUES ('honest', 'honest')" >/dev/null
	run_dgm backups create plan.yaml
	expect_rc 0
	A=$(snapshot_id)
	sed 's#directory: backups#directory: backups2#' plan.yaml > plan2.yaml
	psql_db "$TEST_DB" -c "INSERT INTO organizations (name, slug) VALUES ('forged', 'forged')" >/dev/null
	echo "attacker's weights" > models/evil.bin
	run_dgm backups create plan2.yaml
	expect_rc 0
	B=$(snapshot_id backups2)
	psql_db "$TEST_DB" -c "DELETE FROM organizations WHERE name = 'forged'" >/dev/null
	rm models/evil.bin
	psql_db "$TEST_DB" -c "INSERT INTO organizations (name, slug) VALUES ('later', 'later')" >/dev/null
	before_db=$(db_fingerprint "$TEST_DB")
	before_store=$(tree_fingerprint models)
}

# set_manifest DIR PYTHON: edit DIR/manifest.json (m) as the attacker
# would, keeping everything else - the HMAC included - as it was.
set_manifest() {
	python3 - "$1/manifest.json" "$2" <<'PY'
import json, sys, hashlib
path, code = sys.argv[1], sys.argv[2]
m = json.load(open(path))
sha = lambda p: hashlib.sha256(open(p, 'rb').read()).hexdigest()
exec(code)
json.dump(m, open(path, 'w'), indent=2)
PY
}

# Both commands refuse the forged snapshot A naming $1, and the database
# and the model store are as they were.
expect_refused() {
	run_dgm backups verify "$A" plan.yaml
	expect_rc 1
	expect_err "$1"
	expect_no "is intact"
	run_dgm backups restore "$A" plan.yaml --accept-data-loss
	expect_rc 1
	expect_err "$1"
	[[ $(db_fingerprint "$TEST_DB") == "$before_db" ]] || fail "the database changed"
	[[ $(tree_fingerprint models) == "$before_store" ]] || fail "the model store changed"
	[[ -z $(ls backups | grep -v -e "^$A\$" -e '^state$') ]] ||
		fail "a restore was started: $(ls backups)"
}

test_forged_archive_is_refused() {
	prepare
	cp "backups2/$B/models.tar.zst" "backups2/$B/models.tar.zst.manifest.json" "backups/$A/"
	set_manifest "backups/$A" "
b = json.load(open('backups2/$B/manifest.json'))['model_store']
for k in ('archive_sha256', 'archive_bytes', 'content_bytes', 'entries'):
    m['model_store'][k] = b[k]
assert m['model_store']['archive_sha256'] == sha('backups/$A/models.tar.zst')"
	expect_refused "models.tar.zst.manifest.json"
	expect_err "snapshot.key"
}

test_forged_dump_is_refused() {
	prepare
	# the data file of table organizations, and the list of checksums
	f=$(python3 -c '
import gzip, os, sys
d = sys.argv[1]
for n in sorted(os.listdir(d)):
    p = os.path.join(d, n)
    data = gzip.open(p).read() if n.endswith(".gz") else open(p, "rb").read()
    if n != "toc.dat" and b"forged" in data:
        print(n)
        break
' "backups2/$B/db")
	[[ -n $f ]] || fail "no data file of the dump holds the forged row"
	cp "backups2/$B/db/$f" "backups/$A/db/$f"
	(cd "backups/$A" && sha256sum db/* > db.sha256)
	set_manifest "backups/$A" "m['database']['files_sha256'] = sha('backups/$A/db.sha256')"
	expect_refused "db.sha256"
}

test_removed_hmac_is_refused_unless_trusted() {
	prepare
	set_manifest "backups/$A" "del m['hmac']"
	expect_refused "is not signed"
	expect_err "--trust-unsigned"
	run_dgm backups verify "$A" plan.yaml --trust-unsigned
	expect_rc 0
	expect_err "is intact"
}

test_untouched_snapshot_verifies_and_restores() {
	prepare
	run_dgm backups verify "$A" plan.yaml
	expect_rc 0
	expect_err "is intact"
	[[ $(stat -c %a backups/state/snapshot.key) == 600 && $(stat -c %s backups/state/snapshot.key) == 32 ]] ||
		fail "the key is not 32 bytes 0600"
	grep -q '"hmac"' "backups/$A/manifest.json" || fail "manifest.json has no hmac"
	grep -q '"hmac"' "backups/$A/writes.json" || fail "writes.json has no hmac"
	run_dgm backups restore "$A" plan.yaml --accept-data-loss
	expect_rc 0
	[[ $(psql_db "$TEST_DB" -c "SELECT string_agg(name, ',' ORDER BY name) FROM organizations WHERE name IN ('honest', 'forged', 'later')") == honest ]] ||
		fail "the restore did not put back snapshot A"
	# the baseline the restore rewrote is signed again
	run_dgm backups verify "$A" plan.yaml
	expect_rc 0
}

test_forged_baseline_is_refused() {
	prepare
	python3 - "backups/$A/writes.json" <<'PY'
import json, sys
w = json.load(open(sys.argv[1]))
for t in w['tables'].values():
    t[1] += 1000
json.dump(w, open(sys.argv[1], 'w'))
PY
	expect_refused "writes.json"
}

test_key_inside_snapshot_folder_warns() {
	setup_release "$TEST_DB"
	run_dgm validate plan.yaml --offline
	expect_err "is inside snapshot.directory"
	mkdir -m 700 keys
	sed -i 's#^  directory: backups#  directory: backups\n  key_file: keys/snapshot.key#' plan.yaml
	head -c 32 /dev/urandom > keys/snapshot.key
	chmod 640 keys/snapshot.key
	run_dgm validate plan.yaml --offline
	expect_no "is inside snapshot.directory"
	expect_err "has mode 0640"
	chmod 600 keys/snapshot.key
	run_dgm validate plan.yaml --offline
	expect_no "snapshot key"
	# a key_file the plan puts inside the snapshot folder: the warning says where
	line=$(grep -n 'key_file:' plan.yaml | cut -d: -f1)
	sed -i 's#key_file: keys/snapshot.key#key_file: backups/keys/snapshot.key#' plan.yaml
	run_dgm validate plan.yaml --offline
	expect_err "plan.yaml:$line:13: the snapshot key '$PWD/backups/keys/snapshot.key' is inside snapshot.directory"
}

# rollback --restore looks up the release's snapshot: a forged one is not
# used (the warning names the file) and nothing changes.
test_rollback_refuses_a_forged_release_snapshot() {
	setup_release "$TEST_DB"
	migrate_app app head
	run_dgm apply plan.yaml
	expect_rc 0
	snap=$(grep -l '"kind": "pre-apply"' backups/*/manifest.json | cut -d/ -f2)
	revs=$(psql_db "$TEST_DB" -c "SELECT string_agg(version_num, ',' ORDER BY 1) FROM alembic_version")
	set_manifest "backups/$snap" "m['release'] = 'forged'"
	run_dgm rollback --to v1.5 plan.yaml --restore --accept-data-loss
	expect_rc 1
	expect_err "snapshot '$snap': manifest.json in '$PWD/backups/$snap' does not match its HMAC"
	expect_err "no snapshot of 'v1.5'"
	[[ $(psql_db "$TEST_DB" -c "SELECT string_agg(version_num, ',' ORDER BY 1) FROM alembic_version") == "$revs" ]] ||
		fail "the rollback changed the database"
}

# Hold a session on $TEST_DB (application_name 'holder': CREATE DATABASE
# ... TEMPLATE cannot copy it) until release_holder; waits until connected.
hold_session() {
	PGADMIN_DB=$TEST_DB pg_admin -c "SET application_name = 'holder'" -c "SELECT pg_sleep(60)" >/dev/null 2>&1 &
	holder=$!
	for _ in $(seq 100); do
		[[ $(psql_db postgres -c "SELECT count(*) FROM pg_stat_activity WHERE datname = '$TEST_DB' AND application_name = 'holder'") -ge 1 ]] && return 0
		sleep 0.05
	done
	fail "the holding session did not connect"
}

release_holder() {
	psql_db postgres -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'holder' AND datname = '$TEST_DB'" >/dev/null
	wait "$holder" 2>/dev/null || true
}

# rehearse reads a snapshot when the database is busy (sessions connected:
# no TEMPLATE copy): it restores the newest snapshot at the database's
# revisions into the scratch database. A forged one - the dump holds the
# attacker's row, db.sha256 and the manifest agree with it - is not used,
# naming the file; with no other snapshot the rehearsal stops, and no
# scratch database (with the forged rows) is made.
test_rehearse_refuses_a_forged_snapshot() {
	prepare
	f=$(python3 -c '
import gzip, os, sys
d = sys.argv[1]
for n in sorted(os.listdir(d)):
    p = os.path.join(d, n)
    data = gzip.open(p).read() if n.endswith(".gz") else open(p, "rb").read()
    if n != "toc.dat" and b"forged" in data:
        print(n)
        break
' "backups2/$B/db")
	[[ -n $f ]] || fail "no data file of the dump holds the forged row"
	cp "backups2/$B/db/$f" "backups/$A/db/$f"
	(cd "backups/$A" && sha256sum db/* > db.sha256)
	set_manifest "backups/$A" "m['database']['files_sha256'] = sha('backups/$A/db.sha256')"
	hold_session
	run_dgm rehearse plan.yaml
	release_holder
	expect_rc 1
	expect_err "sessions are connected to it"
	expect_err "snapshot '$A': manifest.json, db.sha256 in '$PWD/backups/$A' do not match their HMAC"
	expect_err "and the snapshot taken at its revision, '$A', fails its HMAC check"
	expect_no "restoring snapshot '$A'"
	[[ -z $(psql_db postgres -c "SELECT datname FROM pg_database WHERE datname LIKE '${TEST_DB:0:40}\_dgm\_%'") ]] ||
		fail "a scratch or staging database was made: $(psql_db postgres -c "SELECT datname FROM pg_database")"
	[[ $(db_fingerprint "$TEST_DB") == "$before_db" ]] || fail "the database changed"
}
