# t_apply.sh - `dgmigrate apply` end to end on the fixture app, real
# PostgreSQL, real alembic, real pg_dump.

ML_TABLES="predictive_models anomaly_detection_models anomaly_detection_results external_data_sources prediction_history"

# The database at v1.5 with data, the app checked out at v1.5.
at_v15() {
	setup_release "$TEST_DB"
	rm -rf models
	python3 "$ROOT/fixtures/gen-model-store.py" models --weights-mb 1 --json-files 50 >/dev/null
	migrate_app app head
	psql_db "$TEST_DB" -c "INSERT INTO organizations (name, slug) SELECT 'org ' || g, 'org-' || g FROM generate_series(1, 20) g" >/dev/null
}

revisions() { psql_db "$TEST_DB" -c "SELECT string_agg(version_num, ',' ORDER BY 1) FROM alembic_version"; }

test_apply_v15_to_v16() {
	at_v15
	run_dgm apply plan.yaml
	expect_rc 0
	[[ $(revisions) == b6e14d8a0f97 ]] || fail "revision after apply: $(revisions)"
	for t in $ML_TABLES; do
		[[ $(psql_db "$TEST_DB" -c "SELECT to_regclass('$t') IS NOT NULL") == t ]] || fail "no table $t"
	done
	for i in ix_predictive_models_organization_id ix_anomaly_detection_results_model_id ix_prediction_history_model_id; do
		[[ $(psql_db "$TEST_DB" -c "SELECT to_regclass('$i') IS NOT NULL") == t ]] || fail "no index $i"
	done
	[[ $(psql_db "$TEST_DB" -c "SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND NOT convalidated") == 0 ]] ||
		fail "a foreign key is not validated"
	[[ $(git -C app rev-parse HEAD) == $(git -C app rev-parse 'v1.6^{commit}') ]] || fail "HEAD not at v1.6"
	[[ -z $(git -C app status --porcelain) ]] || fail "work tree not clean: $(git -C app status --porcelain)"
	ls backups | grep -q . || fail "no snapshot"
	ls backups/state/reports/*.md >/dev/null 2>&1 || fail "no report"
	[[ $(psql_db "$TEST_DB" -c "SELECT outcome FROM dgmigrate.runs") == success ]] || fail "no history row"
	expect_no "$SECRET_KEY"
	# alembic's per-revision lines are the progress of the upgrade
	expect_err "alembic: Running upgrade 5e9f3b7a1c62 -> 0d6b2f9e4a71"
	[[ $(grep -c 'alembic: Running upgrade' <<<"$err") == 6 ]] || fail "not one progress line a revision: $err"
}

test_broken_release_is_rolled_back_exactly() {
	at_v15
	cp -a models models.before
	before=$(db_fingerprint "$TEST_DB")
	head=$(git -C app rev-parse HEAD)
	write_plan plan.yaml v1.6-broken
	run_dgm apply plan.yaml
	expect_rc 1
	expect_err "everything was put back"
	after=$(db_fingerprint "$TEST_DB")
	[[ "$before" == "$after" ]] || fail "database differs after the rollback:
$(diff <(echo "$before") <(echo "$after"))"
	[[ $(revisions) == 5e9f3b7a1c62 ]] || fail "revision after rollback: $(revisions)"
	[[ $(git -C app rev-parse HEAD) == "$head" ]] || fail "HEAD not back"
	diff <(tree_fingerprint models.before) <(tree_fingerprint models) || fail "model store differs"
	report=$(ls backups/state/reports/*.md | sed -n 1p)
	grep -q "rolled-back" "$report" || fail "the report does not say rolled-back"
	grep -q "model_registry" "$report" || fail "the report does not say why"
}

test_dry_run_changes_nothing_and_shows_sql() {
	at_v15
	before=$(db_fingerprint "$TEST_DB")
	head=$(git -C app rev-parse HEAD)
	run_dgm apply --dry-run plan.yaml
	expect_rc 0
	expect_out "nothing was changed"
	expect_out "CREATE TABLE predictive_models"
	expect_out "0d6b2f9e4a71  create predictive_models"
	[[ "$before" == "$(db_fingerprint "$TEST_DB")" ]] || fail "the database changed"
	[[ $(git -C app rev-parse HEAD) == "$head" && -z $(git -C app status --porcelain) ]] || fail "the work tree changed"
	[[ -z "$(ls backups 2>/dev/null | grep -v state)" ]] || fail "a snapshot was taken"
	[[ $(psql_db "$TEST_DB" -c "SELECT to_regclass('dgmigrate.runs') IS NULL") == t ]] || fail "history written"
}

test_concurrent_apply_exits_3() {
	at_v15
	pg_admin -c "SET application_name = 'first-apply'" \
		-c "SELECT pg_advisory_lock(1684500333, hashtext('$TEST_DB'))" -c "SELECT pg_sleep(20)" >/dev/null 2>&1 &
	holder=$!
	for _ in $(seq 50); do
		[[ $(psql_db postgres -c "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted") -ge 1 ]] && break
		sleep 0.1
	done
	run_dgm apply plan.yaml
	kill "$holder" 2>/dev/null || true
	expect_rc 3
	expect_err "locked by another run: 'first-apply'"
	[[ $(revisions) == 5e9f3b7a1c62 ]] || fail "the database changed"
}

test_preflight_reports_every_problem_at_once() {
	at_v15
	unset SECRET_KEY
	echo "# edit" >> app/alembic.ini
	run_dgm apply plan.yaml
	expect_rc 2
	expect_err "FAIL  environment"
	expect_err "FAIL  repository"
	[[ $(revisions) == 5e9f3b7a1c62 ]] || fail "the database changed"
}
