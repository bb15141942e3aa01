# t_lint.sh - `dgmigrate lint`: the release's SQL rendered by the real
# alembic from the tag, linted, each finding sized by the real cluster.

# lint_plan TAG [EXTRA]: plan.yaml for TAG, with a lint section.
lint_plan() {
	write_plan plan.yaml "$1"
	printf 'lint:\n%b' "${2:-}" >>plan.yaml
}

# Fill invoices (v1.5) with N rows.
fill_invoices() {
	psql_db "$TEST_DB" -c "INSERT INTO organizations (name, slug) VALUES ('acme', 'acme')" \
		-c "INSERT INTO invoices (organization_id, number, amount_cents)
		    SELECT (SELECT min(id) FROM organizations), 'n' || g, g FROM generate_series(1, $1) g" \
		-c "ANALYZE invoices" >/dev/null
}

test_v16_has_no_error() {
	setup_release "$TEST_DB"
	migrate_app app head
	run_dgm lint plan.yaml
	expect_rc 0
	expect_out "0 errors"
	# the tables v1.6 creates, and the downgrade dropping them, are not flagged
	expect_no "predictive_models"
	# the check added to users (which existed before) is
	expect_out "add-check-validated"
	expect_out "migrations/versions/b6e14d8a0f97"
	expect_out "upgrade b6e14d8a0f97"
}

test_index_on_a_big_table_is_an_error() {
	setup_release "$TEST_DB"
	migrate_app app head
	fill_invoices 5000
	lint_plan v1.6-leaky "  thresholds:\n    error_size: 64kB\n"
	run_dgm lint plan.yaml
	expect_rc 1
	expect_out "f3b9d6a1e842_index_issued_invoices_by_due_date.py:23 (upgrade f3b9d6a1e842, sql line"
	expect_out "error: add-index-non-concurrent: index 'ix_invoices_due_date'"
	# the leaky downgrade's op.execute("DROP INDEX ...")
	expect_out "f3b9d6a1e842_index_issued_invoices_by_due_date.py:36 (downgrade f3b9d6a1e842, sql line"
	expect_out "SHARE lock on 'invoices' ("
	expect_out "~5000 rows"
	expect_out "fix: CREATE INDEX CONCURRENTLY"
	expect_err "findings reach lint.fail_on 'error'"
}

test_index_on_an_empty_table_is_a_notice() {
	setup_release "$TEST_DB"
	migrate_app app head
	lint_plan v1.6-leaky "  thresholds:\n    error_size: 64kB\n"
	run_dgm lint plan.yaml
	expect_rc 0
	expect_out "notice: add-index-non-concurrent: index 'ix_invoices_due_date'"
	expect_out "SHARE lock on 'invoices' ("
	expect_out "KiB, empty); reads the whole table"
	# fail_on notice: the same finding now fails the lint
	lint_plan v1.6-leaky "  fail_on: notice\n  thresholds:\n    error_size: 64kB\n"
	run_dgm lint plan.yaml
	expect_rc 1
}

test_json_is_one_document() {
	setup_release "$TEST_DB"
	migrate_app app head
	fill_invoices 5000
	lint_plan v1.6-leaky "  thresholds:\n    error_size: 64kB\n"
	run_dgm lint --json plan.yaml
	expect_rc 1
	python3 - "$out" <<'PY' || fail "not the expected JSON document: $out"
import json, sys
doc = json.loads(sys.argv[1])
assert doc["tag"] == "v1.6-leaky" and doc["fails"] is True, doc
assert [p["direction"] for p in doc["linted"]] == ["upgrade", "downgrade"], doc["linted"]
ix = [f for f in doc["findings"] if f["rule"] == "add-index-non-concurrent"]
assert len(ix) == 1, ix
f = ix[0]
assert f["severity"] == "error" and f["table"] == "invoices" and f["lock"] == "SHARE", f
assert f["revision"] == "f3b9d6a1e842" and f["table_rows"] == 5000 and f["table_bytes"] > 65536, f
assert f["file"].endswith("f3b9d6a1e842_index_issued_invoices_by_due_date.py"), f
# the line of the op.create_index call the statement comes from
assert f["file_line"] == 23, f
# the misspelt DROP INDEX of the leaky downgrade
assert any(x["direction"] == "downgrade" and x["rule"] == "drop-index-non-concurrent"
           for x in doc["findings"]), doc["findings"]
PY
}

test_suppressed_by_plan_and_by_revision_file() {
	setup_release "$TEST_DB"
	migrate_app app head
	fill_invoices 5000
	lint_plan v1.6-leaky "  ignore: [add-index-non-concurrent]\n  thresholds:\n    error_size: 64kB\n"
	run_dgm lint plan.yaml
	expect_rc 0
	expect_out "suppressed: add-index-non-concurrent (lint.ignore)"
	# the same from a comment in the revision file, in a new tag
	lint_plan v1.6-lint "  thresholds:\n    error_size: 64kB\n"
	local f
	f=$(cd app && git ls-tree -r --name-only v1.6-leaky | grep f3b9d6a1e842)
	(cd app && git checkout -q v1.6-leaky &&
		sed -i 's/^def upgrade() -> None:/# dgmigrate: allow add-index-non-concurrent -- built at night\n&/' "$f" &&
		git -c user.name=t -c user.email=t@t commit -qam allow && git tag v1.6-lint &&
		git checkout -q v1.5)
	run_dgm lint plan.yaml
	expect_rc 0
	expect_out "suppressed: add-index-non-concurrent (# dgmigrate: allow in $f: built at night)"
}

test_bad_lint_section_is_a_plan_error() {
	setup_release "$TEST_DB"
	lint_plan v1.6 "  ignore: [no-such-rule]\n"
	run_dgm lint plan.yaml
	expect_rc 2
	expect_err "plan.yaml:19:12: 'lint.ignore[0]' is not a lint rule: 'no-such-rule'"
}
