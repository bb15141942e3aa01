# t_rehearse.sh - `dgmigrate rehearse` end to end: the fixture app's
# releases rehearsed on scratch copies, real PostgreSQL, real alembic.
# The scratch database of $TEST_DB is named ${TEST_DB:0:40}_dgm_rehearse_<pid>.

# The database at v1.5 with data the v1.6 data migration changes; the
# app checked out at v1.5.
rh_at_v15() {
	setup_release "$TEST_DB"
	migrate_app app head
	psql_db "$TEST_DB" -q -c "
		INSERT INTO organizations (name, slug, plan) VALUES ('Acme', 'acme', 'enterprise'),
			('Small', 'small', 'free');
		INSERT INTO users (organization_id, email, full_name)
			SELECT o.id, o.slug || '-' || g || '@example.com', 'user ' || g
			FROM organizations o, generate_series(1, 3) g;
		INSERT INTO invoices (organization_id, number, amount_cents, issued_at)
			SELECT o.id, 'INV-' || o.slug || '-' || g, 1000 * g, now() - g * interval '1 day'
			FROM organizations o, generate_series(1, 2) g;" >/dev/null
}

# The database at the v1.6 head (migrated with v1.6's code), the work
# tree back at v1.5.
rh_at_v16() {
	rh_at_v15
	git -C app -c advice.detachedHead=false checkout -q v1.6
	migrate_app app head
	git -C app -c advice.detachedHead=false checkout -q v1.5
}

rh_revisions() { psql_db "$TEST_DB" -c "SELECT string_agg(version_num, ',' ORDER BY 1) FROM alembic_version"; }

rh_scratch_dbs() {
	psql_db postgres -c "SELECT datname FROM pg_database WHERE datname ~ '^${TEST_DB:0:40}_dgm_rehearse_[0-9]+\$' ORDER BY 1"
}

rh_expect_no_scratch() {
	local left
	left=$(rh_scratch_dbs)
	[[ -z $left ]] || fail "scratch database(s) left behind: $left"
}

rh_report() { ls backups/state/reports/rehearse-*."$1" | tail -1; }

# Hold a session on the database (application_name 'holder') until
# rh_release_holder; waits until it is connected.
rh_hold_session() {
	PGADMIN_DB=$TEST_DB pg_admin -c "SET application_name = 'holder'" -c "SELECT pg_sleep(60)" >/dev/null 2>&1 &
	holder=$!
	for _ in $(seq 100); do
		[[ $(psql_db postgres -c "SELECT count(*) FROM pg_stat_activity WHERE datname = '$TEST_DB' AND application_name = 'holder'") -ge 1 ]] && return 0
		sleep 0.05
	done
	fail "the holding session did not connect"
}

rh_release_holder() {
	psql_db postgres -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'holder' AND datname = '$TEST_DB'" >/dev/null
	wait "$holder" 2>/dev/null || true
}

test_v16_passes_and_changes_nothing() {
	rh_at_v15
	before=$(db_fingerprint "$TEST_DB")
	revs=$(rh_revisions)
	head=$(git -C app rev-parse HEAD)
	status=$(git -C app status --porcelain --ignored)
	run_dgm rehearse plan.yaml
	expect_rc 0
	expect_out "on a scratch copy of '$TEST_DB': PASS"
	expect_out "(CREATE DATABASE ... TEMPLATE)"
	expect_out "the schema after downgrade to 5e9f3b7a1c62 equals the one before"
	expect_out "alembic downgrade a1d4c8e7b359@8b1e5d2c94a0"
	expect_out "ok    upgrade again"
	# the DDL of the data migration, seen by the event trigger
	expect_out "lock  organizations: ACCESS EXCLUSIVE (blocks reads and writes)"
	# the database, the work tree: as they were
	[[ "$before" == "$(db_fingerprint "$TEST_DB")" ]] || fail "the database changed:
$(diff <(echo "$before") <(db_fingerprint "$TEST_DB"))"
	[[ $(rh_revisions) == "$revs" ]] || fail "alembic_version changed: $(rh_revisions)"
	[[ $(git -C app rev-parse HEAD) == "$head" ]] || fail "HEAD moved"
	[[ $(git -C app status --porcelain --ignored) == "$status" ]] || fail "the work tree changed: $(git -C app status --porcelain --ignored)"
	[[ -z $(git -C app status --porcelain) ]] || fail "the work tree is not clean"
	[[ $(psql_db "$TEST_DB" -c "SELECT to_regclass('dgmigrate.runs') IS NULL") == t ]] || fail "history written"
	rh_expect_no_scratch
	# the report, owner-only, says the same
	json=$(rh_report json) md=$(rh_report md)
	[[ $(stat -c %a "$json") == 600 && $(stat -c %a "$md") == 600 ]] || fail "report modes"
	python3 - "$json" <<'PY' || fail "report: $(cat "$json")"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["verdict"] == "pass", r["verdict"]
assert r["revisions_before"] == ["5e9f3b7a1c62"] and r["revisions_target"] == ["b6e14d8a0f97"]
assert r["fingerprint_before"] == r["fingerprint_after_downgrade"] != ""
assert r["scratch_dropped"] is True
phases = [p["phase"] for p in r["phases"]]
for p in ("copy", "fingerprint before", "upgrade", "postconditions", "downgrade", "compare", "upgrade again", "drop"):
    assert p in phases, p
assert all(p["ok"] for p in r["phases"])
rows = {t["table"]: t["rows"] for t in r["tables"]}
assert rows["users"] == 6 and rows["organizations"] == 2, rows
assert {"table": "organizations", "mode": "ACCESS EXCLUSIVE"}.items() <= next(l for l in r["locks"] if l["table"] == "organizations").items()
PY
	grep -q "| Revisions before | 5e9f3b7a1c62 |" "$md" || fail "markdown report: $(cat "$md")"
	expect_no "$SECRET_KEY"
	! grep -qF "$DGM_PGPASS" "$json" "$md" || fail "the password is in the report"
}

test_leaky_release_fails_naming_the_index() {
	rh_at_v15
	write_plan plan.yaml v1.6-leaky
	run_dgm rehearse plan.yaml
	expect_rc 1
	expect_err "rehearsal failed: index ix_invoices_due_date still exists after downgrade to 5e9f3b7a1c62 (named in revision f3b9d6a1e842)"
	expect_err "HINT: 'dgmigrate rehearse PLAN --step'"
	expect_out ": FAIL"
	# upgrading again then fails on the index left behind
	expect_out "relation \"ix_invoices_due_date\" already exists"
	md=$(rh_report md)
	grep -q "f3b9d6a1e842" "$md" && grep -q "index ix_invoices_due_date still exists" "$md" ||
		fail "the report does not name the revision and the index: $(cat "$md")"
	[[ $(rh_revisions) == 5e9f3b7a1c62 ]] || fail "the database changed: $(rh_revisions)"
	[[ $(psql_db "$TEST_DB" -c "SELECT to_regclass('ix_invoices_due_date') IS NULL") == t ]] ||
		fail "the index was created in the database itself"
	rh_expect_no_scratch
}

test_step_names_the_exact_revision() {
	rh_at_v16
	write_plan plan.yaml v1.6-leaky
	run_dgm rehearse plan.yaml --step --json
	expect_rc 1
	expect_err "rehearsal failed: the downgrade of revision f3b9d6a1e842 is wrong: index ix_invoices_due_date still exists after downgrade to c5e8a2f70b14"
	# the revision before it passed its own round trip
	expect_err "ok    compare c5e8a2f70b14"
	grep '^{"event":"report"' <<<"$out" | python3 -c '
import json, sys
r = json.load(sys.stdin)
assert r["event"] == "report" and r["verdict"] == "fail" and r["mode"] == "step", r
d = r["differences"]
assert len(d) == 1 and d[0]["revision"] == "f3b9d6a1e842" and d[0]["attributed_by"] == "step", d
assert d[0]["kind"] == "index" and d[0]["name"] == "ix_invoices_due_date", d
assert [p["phase"] for p in r["phases"] if not p["ok"]] == ["compare f3b9d6a1e842"], r["phases"]
' || fail "the JSON report: $out"
	[[ $(rh_revisions) == b6e14d8a0f97 ]] || fail "the database changed: $(rh_revisions)"
	rh_expect_no_scratch
}

test_sigterm_mid_run_drops_the_copy() {
	rh_at_v15
	"$DGMIGRATE" rehearse plan.yaml >out.txt 2>err.txt &
	pid=$!
	# wait for alembic: a session on the scratch database that is not ours
	for _ in $(seq 300); do
		[[ $(psql_db postgres -c "SELECT count(*) FROM pg_stat_activity WHERE datname ~ '^${TEST_DB:0:40}_dgm_rehearse_[0-9]+\$' AND application_name NOT LIKE 'dgmigrate%'") -ge 1 ]] && break
		sleep 0.02
	done
	[[ -n $(rh_scratch_dbs) ]] || fail "no scratch database while the rehearsal runs"
	kill -TERM "$pid"
	rc=0
	wait "$pid" || rc=$?
	out=$(cat out.txt) err=$(cat err.txt)
	expect_rc 1
	expect_err "the rehearsal was interrupted"
	expect_err "the scratch database was dropped"
	expect_out ": interrupted"
	rh_expect_no_scratch
	[[ $(rh_revisions) == 5e9f3b7a1c62 ]] || fail "the database changed: $(rh_revisions)"
}

test_leftover_copy_is_dropped() {
	rh_at_v15
	# what a rehearsal killed with SIGKILL leaves behind, and two bystanders
	pg_admin -q -c "CREATE DATABASE \"${TEST_DB}_dgm_rehearse_999999\"" \
		-c "CREATE DATABASE \"${TEST_DB}_dgm_rehearse_x\"" -c "CREATE DATABASE \"${TEST_DB}x_dgm_rehearse_1\""
	run_dgm rehearse plan.yaml
	expect_rc 0
	expect_err "dropping '${TEST_DB}_dgm_rehearse_999999', left behind by a rehearsal that did not finish"
	expect_out "leftovers of killed rehearsals dropped first"
	rh_expect_no_scratch
	left=$(psql_db postgres -c "SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_database WHERE datname IN ('${TEST_DB}_dgm_rehearse_x', '${TEST_DB}x_dgm_rehearse_1')")
	[[ $left == "${TEST_DB}_dgm_rehearse_x,${TEST_DB}x_dgm_rehearse_1" ]] || fail "a bystander was dropped: '$left'"
	pg_admin -q -c "DROP DATABASE \"${TEST_DB}_dgm_rehearse_x\"" -c "DROP DATABASE \"${TEST_DB}x_dgm_rehearse_1\""
}

test_busy_db_copied_from_snapshot() {
	rh_at_v15
	run_dgm backups create plan.yaml
	expect_rc 0
	snap=$(ls backups | grep -v state)
	rh_hold_session
	run_dgm rehearse plan.yaml
	rh_release_holder
	expect_rc 0
	expect_err "sessions are connected to '$TEST_DB'"
	expect_out "(snapshot $snap)"
	expect_out ": PASS"
	[[ $(rh_revisions) == 5e9f3b7a1c62 ]] || fail "the database changed: $(rh_revisions)"
	rh_expect_no_scratch
	[[ -z $(psql_db postgres -c "SELECT datname FROM pg_database WHERE datname LIKE '%\_dgm\_new\_%'") ]] ||
		fail "the restore's staging database was left behind"
}

test_busy_db_without_snapshot_fails() {
	rh_at_v15
	rh_hold_session
	run_dgm rehearse plan.yaml
	rh_release_holder
	expect_rc 1
	expect_err "sessions are connected to it (pid"
	expect_err "'holder'"
	expect_err "holds no snapshot to restore instead"
	expect_err "HINT: take a snapshot now with 'dgmigrate backups create PLAN'"
	rh_expect_no_scratch
	[[ $(rh_revisions) == 5e9f3b7a1c62 ]] || fail "the database changed"
}

test_held_lock_exits_3() {
	setup_release "$TEST_DB"
	pg_admin -c "SET application_name = 'first-apply'" \
		-c "SELECT pg_advisory_lock(1684500333, hashtext('$TEST_DB'))" -c "SELECT pg_sleep(20)" >/dev/null 2>&1 &
	holder=$!
	for _ in $(seq 50); do
		[[ $(psql_db postgres -c "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'first-apply' AND wait_event = 'PgSleep'") -ge 1 ]] && break
		sleep 0.1
	done
	run_dgm rehearse plan.yaml
	expect_rc 3
	expect_err "locked by another run: 'first-apply'"
	# --wait-lock: waits, then still exit 3 when the holder keeps it
	start=$(date +%s%N)
	run_dgm rehearse plan.yaml --wait-lock 1s
	waited=$((($(date +%s%N) - start) / 1000000))
	psql_db postgres -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'first-apply'" >/dev/null
	wait "$holder" 2>/dev/null || true
	expect_rc 3
	((waited >= 1000)) || fail "--wait-lock 1s returned after $waited ms"
	run_dgm rehearse plan.yaml --wait-lock soon
	expect_rc 2
	expect_err "--wait-lock takes a duration such as 30s or 5m, got 'soon'"
	rh_expect_no_scratch
}

test_wait_lock_proceeds_once_the_holder_is_done() {
	rh_at_v15
	# the holder lets go by itself after 2 s
	pg_admin -c "SET application_name = 'first-apply'" \
		-c "SELECT pg_advisory_lock(1684500333, hashtext('$TEST_DB'))" -c "SELECT pg_sleep(2)" >/dev/null 2>&1 &
	holder=$!
	for _ in $(seq 50); do
		[[ $(psql_db postgres -c "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'first-apply' AND wait_event = 'PgSleep'") -ge 1 ]] && break
		sleep 0.1
	done
	run_dgm rehearse plan.yaml --wait-lock 60s
	wait "$holder" 2>/dev/null || true
	expect_rc 0
	rh_expect_no_scratch
}

# Tag v1.7-rewrite: v1.6 and one more revision that rewrites invoices
# (amount_cents bigint -> numeric, and back in its downgrade).
rh_tag_rewrite() {
	(cd app && git checkout -q v1.6 && cat > migrations/versions/d2f5a8c1e3b7_amounts_as_numeric.py <<'PY' &&
"""amounts as numeric

Revision ID: d2f5a8c1e3b7
Revises: b6e14d8a0f97
"""
from alembic import op
import sqlalchemy as sa

revision = "d2f5a8c1e3b7"
down_revision = "b6e14d8a0f97"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.alter_column("invoices", "amount_cents", type_=sa.Numeric(20, 0),
                    existing_type=sa.BigInteger(), existing_nullable=False)


def downgrade() -> None:
    op.alter_column("invoices", "amount_cents", type_=sa.BigInteger(),
                    existing_type=sa.Numeric(20, 0), existing_nullable=False,
                    postgresql_using="amount_cents::bigint")
PY
		git add -A && git -c user.name=t -c user.email=t@t commit -qm rewrite && git tag v1.7-rewrite &&
		git checkout -q v1.5)
}

test_rewrite_shows_the_lock_measured_beside_its_finding() {
	rh_at_v15
	rh_tag_rewrite
	write_plan plan.yaml v1.7-rewrite
	run_dgm rehearse plan.yaml
	expect_rc 0
	# the finding, and beside it the lock measured on the copy (how long
	# depends on the machine: only that it is there, never a value)
	expect_out "lint  migrations/versions/d2f5a8c1e3b7_amounts_as_numeric.py:16 (upgrade d2f5a8c1e3b7, sql line"
	expect_out "alter-column-type on 'invoices': held ACCESS EXCLUSIVE on invoices for "
	expect_out "on a copy of the real data (upgrade"
	json=$(rh_report json) md=$(rh_report md)
	python3 - "$json" 2>py.err <<'PY' || fail "report $json: $(tail -8 py.err)"
import json, sys
r = json.load(open(sys.argv[1]))
lint = r["lint"]
assert [p["direction"] for p in lint["linted"]] == ["upgrade", "downgrade"], lint["linted"]
for direction in ("upgrade", "downgrade"):
    f = [f for f in lint["findings"] if f["rule"] == "alter-column-type" and f["direction"] == direction]
    assert len(f) == 1, (direction, lint["findings"])
    f = f[0]
    assert f["revision"] == "d2f5a8c1e3b7" and f["table"] == "invoices", f
    assert f["file_line"] == (16 if direction == "upgrade" else 21), f
    m = f["measured"]
    assert m is not None, f
    assert m["direction"] == direction and m["table"] == "invoices" and m["mode"] == "ACCESS EXCLUSIVE", m
    # the revision: the one alembic said it ran (sampled), or the one
    # alembic_version says runs next (seen at a DDL end)
    assert m["revision"] == "d2f5a8c1e3b7", m
    assert isinstance(m["held_ms"], int) and m["held_ms"] >= 0, m
    assert m["measured_by"] in ("sampling", "ddl-trace") and m["text"].startswith("held ACCESS EXCLUSIVE on invoices for"), m
# per revision and per table, both directions
holds = [(h["direction"], h["revision"], h["table"], h["mode"]) for h in r["lock_holds"]]
for direction in ("upgrade", "downgrade"):
    assert (direction, "d2f5a8c1e3b7", "invoices", "ACCESS EXCLUSIVE") in holds, holds
# v1.6's CHECK on users, in its own revision
assert ("upgrade", "b6e14d8a0f97", "users", "ACCESS EXCLUSIVE") in holds, holds
PY
	grep -q "## Lint findings, with the locks measured on the copy" "$md" || fail "markdown: $(cat "$md")"
	grep -q "| upgrade | .* | invoices | ACCESS EXCLUSIVE |" "$md" || fail "markdown holds: $(cat "$md")"
	rh_expect_no_scratch
}
