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

# plan.yaml for TAG with a lint section (printf escapes in EXTRA): a lock
# on a table of 64 kB or more is an error.
lint_plan() {
	write_plan plan.yaml "$1"
	printf 'lint:\n  thresholds:\n    error_size: 64kB\n%b' "$2" >>plan.yaml
}

# invoices with 5000 rows: v1.6-leaky's index on it is then an error.
fill_invoices() {
	psql_db "$TEST_DB" -c "INSERT INTO invoices (organization_id, number, amount_cents)
		    SELECT (SELECT min(id) FROM organizations), 'n' || g, g FROM generate_series(1, 5000) g" \
		-c "ANALYZE invoices" >/dev/null
}

test_lint_reaching_fail_on_refuses_and_changes_nothing() {
	at_v15
	fill_invoices
	before=$(db_fingerprint "$TEST_DB")
	head=$(git -C app rev-parse HEAD)
	lint_plan v1.6-leaky ""
	run_dgm apply plan.yaml
	expect_rc 1
	expect_err "FAIL  lint"
	# the revision, its file, the rule, the table and the fix
	expect_err "migrations/versions/f3b9d6a1e842_index_issued_invoices_by_due_date.py:23 (upgrade f3b9d6a1e842, sql line"
	expect_err "error add-index-non-concurrent (index 'ix_invoices_due_date') on 'invoices' reaches lint.fail_on 'error'"
	expect_err "fix: CREATE INDEX CONCURRENTLY"
	# how to suppress it
	expect_err "'# dgmigrate: allow add-index-non-concurrent -- <reason>' in migrations/versions/f3b9d6a1e842_index_issued_invoices_by_due_date.py"
	expect_err "lint.ignore: [add-index-non-concurrent]"
	# before anything changed: no snapshot, no checkout, no migration
	[[ "$before" == "$(db_fingerprint "$TEST_DB")" ]] || fail "the database changed"
	[[ $(git -C app rev-parse HEAD) == "$head" ]] || fail "HEAD moved"
	[[ -z "$(ls backups 2>/dev/null | grep -v state)" ]] || fail "a snapshot was taken"
	# the refused run's report holds the findings
	report=$(ls backups/state/reports/*.md | sed -n 1p)
	grep -q ": error add-index-non-concurrent on 'invoices'$" "$report" || fail "report: $(cat "$report")"
}

test_lint_finding_suppressed_by_the_plan_lets_apply_proceed() {
	at_v15
	fill_invoices
	lint_plan v1.6-leaky "  ignore: [add-index-non-concurrent]\n"
	run_dgm apply plan.yaml
	expect_rc 0
	expect_err "ok    lint"
	expect_err "lint: migrations/versions/f3b9d6a1e842_index_issued_invoices_by_due_date.py:23 (upgrade f3b9d6a1e842, sql line"
	expect_err "suppressed: add-index-non-concurrent (lint.ignore)"
	[[ $(revisions) == f3b9d6a1e842 ]] || fail "revision after apply: $(revisions)"
	# the run's report lists it too
	report=$(ls backups/state/reports/*.md | sed -n 1p)
	grep -q "^## Lint (preflight)" "$report" || fail "no lint in the report: $(cat "$report")"
	grep -q "(upgrade f3b9d6a1e842, sql line [0-9]*): suppressed add-index-non-concurrent on 'invoices' (lint.ignore)" "$report" ||
		fail "the report does not list what was suppressed: $(cat "$report")"
	python3 - "${report%.md}.json" <<'PY' || fail "report JSON: $(cat "${report%.md}.json")"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["outcome"] == "success" and r["lint"]["suppressed"] == 1, r.get("lint")
assert any(f["rule"] == "add-index-non-concurrent" and f["suppressed"] == "lint.ignore" for f in r["lint"]["findings"])
PY
}

test_lint_finding_allowed_in_the_revision_file_lets_apply_proceed() {
	at_v15
	fill_invoices
	local f
	f=$(cd app && git ls-tree -r --name-only v1.6-leaky | grep f3b9d6a1e842)
	(cd app && git checkout -q v1.6-leaky &&
		sed -i 's/^def upgrade() -> None:/# dgmigrate: allow add-index-non-concurrent -- built at night\n&/' "$f" &&
		git -c user.name=t -c user.email=t@t commit -qam allow && git tag v1.6-lint &&
		git checkout -q v1.5)
	lint_plan v1.6-lint ""
	run_dgm apply plan.yaml
	expect_rc 0
	expect_err "suppressed: add-index-non-concurrent (# dgmigrate: allow in $f: built at night)"
	[[ $(revisions) == f3b9d6a1e842 ]] || fail "revision after apply: $(revisions)"
}

test_dry_run_shows_lint_findings_after_the_sql() {
	at_v15
	fill_invoices
	lint_plan v1.6-leaky ""
	run_dgm apply --dry-run plan.yaml
	# the lint's refusal is the dry run's verdict, yet everything is shown
	expect_rc 1
	expect_out "CREATE INDEX ix_invoices_due_date"
	expect_out "-- lint of the upgrade and downgrade SQL"
	expect_out "(upgrade f3b9d6a1e842, sql line"
	expect_out "error: add-index-non-concurrent: index 'ix_invoices_due_date'"
	expect_out "fix: CREATE INDEX CONCURRENTLY"
	expect_out "apply would refuse: a finding reaches lint.fail_on 'error'"
	[[ "$(sed -n '/-- SQL of/=' <<<"$out")" -lt "$(sed -n '/-- lint of/=' <<<"$out")" ]] ||
		fail "the findings are not after the SQL"
	# --json: one lint event, as lint --json's document
	run_dgm apply --dry-run --json plan.yaml
	expect_rc 1
	python3 - "$out" <<'PY' || fail "no lint event: $out"
import json, sys
ev = [json.loads(l) for l in sys.argv[1].splitlines() if l.startswith("{")]
lint = [e for e in ev if e.get("event") == "lint"]
assert len(lint) == 1, ev
l = lint[0]
assert l["fails"] is True and l["fail_on"] == "error", l
assert any(f["rule"] == "add-index-non-concurrent" and f["revision"] == "f3b9d6a1e842"
           for f in l["findings"]), l["findings"]
PY
}
