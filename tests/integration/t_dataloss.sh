# t_dataloss.sh - no restore path silently throws away data, a failed
# rollback can always be run again, and dry runs are dry (issue 11: 2, 3, 6).
#
# Release v1.7 is made here on top of the fixture's v1.6 (whose head is a
# data migration): d1e2f3a4b5c6 creates audit_events and its downgrade
# raises CompileError, as a downgrade that cannot drop an unnamed
# constraint does; e7f8a9b0c1d2 adds organizations.note and its downgrade
# works. So a rollback's downgrade fails halfway, at d1e2f3a4b5c6.

N1=d1e2f3a4b5c6
H15=5e9f3b7a1c62

add_nodown_release() {
	git -C app checkout -q v1.6
	cat >app/migrations/versions/${N1}_create_audit_events.py <<'PY'
"""create audit_events

Revision ID: d1e2f3a4b5c6
Revises: b6e14d8a0f97
"""
import os

from alembic import op
import sqlalchemy as sa
from sqlalchemy.exc import CompileError

revision = "d1e2f3a4b5c6"
down_revision = "b6e14d8a0f97"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("audit_events", sa.Column("id", sa.Integer, primary_key=True),
                    sa.Column("what", sa.Text, nullable=False))


def downgrade() -> None:
    # the failure fixed (test_a_failed_rollback_converges_when_run_again)
    if os.environ.get("AUDIT_DOWNGRADE_FIXED") == "1":
        op.drop_table("audit_events")
        return
    raise CompileError("Can't emit DROP CONSTRAINT for constraint "
                       "CheckConstraint(<audit_events>); it has no name")
PY
	cat >app/migrations/versions/e7f8a9b0c1d2_add_organization_note.py <<'PY'
"""add organizations.note

Revision ID: e7f8a9b0c1d2
Revises: d1e2f3a4b5c6
"""
from alembic import op
import sqlalchemy as sa

revision = "e7f8a9b0c1d2"
down_revision = "d1e2f3a4b5c6"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("organizations", sa.Column("note", sa.Text, nullable=True))


def downgrade() -> None:
    op.drop_column("organizations", "note")
PY
	git -C app add -A
	git -C app -c user.name=t -c user.email=t@example.com commit -qm "v1.7: audit events"
	git -C app tag v1.7
	git -C app checkout -q v1.5
}

# at_release TAG: the app at v1.5 with rows (so v1.6's data migration
# rewrites some), then `dgmigrate apply` of TAG.
at_release() {
	before_release "$1"
	run_dgm apply plan.yaml
	expect_rc 0
}

# before_release TAG: as at_release, without the apply.
before_release() {
	setup_release "$TEST_DB"
	add_nodown_release
	write_plan plan.yaml "$1"
	migrate_app app head
	psql_db "$TEST_DB" -c "INSERT INTO organizations (name, slug, plan) SELECT 'org ' || g, 'org-' || g, CASE WHEN g % 2 = 0 THEN 'enterprise' ELSE 'free' END FROM generate_series(1, 20) g" \
		-c "INSERT INTO users (organization_id, email) SELECT id, 'u' || id || '@example.com' FROM organizations" >/dev/null
	rows_v15=$(db_fingerprint "$TEST_DB")
}

revisions() { psql_db "$TEST_DB" -c "SELECT string_agg(version_num, ',' ORDER BY 1) FROM alembic_version"; }
write_after_release() {
	psql_db "$TEST_DB" -c "INSERT INTO organizations (name, slug) VALUES ('after release', 'after-release')" >/dev/null
}
after_rows() { psql_db "$TEST_DB" -c "SELECT count(*) FROM organizations WHERE slug = 'after-release'"; }
commit_of() { git -C app rev-parse "$1^{commit}"; }
pre_apply_id() { grep -l '"kind": "pre-apply"' backups/*/manifest.json | sort | tail -n 1 | cut -d/ -f2; }
newest_report() { ls -t backups/state/reports/*.json | grep -v rehearse | sed -n 1p; }
all_json() { python3 -c 'import json,sys; [json.loads(l) for l in sys.stdin if l.strip()]' <<<"$1"; }

test_fallback_restore_needs_consent_for_writes_after_the_release() {
	at_release v1.7
	write_after_release
	run_dgm rollback --to v1.5 plan.yaml
	expect_rc 1
	expect_err "the downgrade failed"
	expect_err "would discard writes made since the release finished: 'public.organizations': 1 write"
	expect_err "--accept-data-loss"
	expect_err "dgmigrate apply PLAN"
	# stopped where the failed downgrade left the database, code at v1.7
	[[ $(revisions) == "$N1" ]] || fail "alembic_version: $(revisions), want $N1"
	[[ $(after_rows) == 1 ]] || fail "the row written after the release is gone"
	[[ $(git -C app rev-parse HEAD) == $(commit_of v1.7) ]] || fail "HEAD is not at v1.7"
	run_dgm rollback --to v1.5 plan.yaml --accept-data-loss --json
	expect_rc 0
	all_json "$out" || fail "--json printed something that is not JSON: $out"
	expect_out '"event":"data_loss"'
	expect_out '"public.organizations":1'
	[[ $(revisions) == "$H15" ]] || fail "alembic_version: $(revisions)"
	[[ $(after_rows) == 0 ]] || fail "the restore did not happen"
	[[ $(git -C app rev-parse HEAD) == $(commit_of v1.5) ]] || fail "HEAD is not at v1.5"
	# report and history name the table, the count and the safety snapshot
	safety=$(grep -l '"kind": "pre-rollback"' backups/*/manifest.json | sort | tail -n 1 | cut -d/ -f2)
	report=$(newest_report)
	python3 - "$report" "$safety" <<'PY' || fail "the report does not say what was discarded: $(cat "$report")"
import json, sys
r = json.load(open(sys.argv[1]))
dl = r["data_loss"]
assert dl["tables"] == {"public.organizations": 1}, dl
assert dl["kept_in"] == sys.argv[2], dl
PY
	grep -q "Writes discarded | public.organizations: 1" "${report%.json}.md" || fail "the Markdown report does not say it"
	[[ $(psql_db "$TEST_DB" -c "SELECT report->'data_loss'->'tables'->>'public.organizations' || ' ' || (report->'data_loss'->>'kept_in') FROM dgmigrate.runs WHERE command = 'rollback' AND outcome = 'success'") == "1 $safety" ]] ||
		fail "the history row does not say what was discarded"
	run_dgm history plan.yaml
	expect_out "discarded writes: public.organizations: 1 (kept in snapshot $safety)"
	# and the safety snapshot gives it back
	[[ $(psql_db "$(sed -n 's/.*"copy": "\([^"]*\)".*/\1/p' "backups/$safety/manifest.json")" -c "SELECT count(*) FROM organizations WHERE slug = 'after-release'") == 1 ]] ||
		fail "the safety snapshot does not hold the discarded row"
}

test_a_data_migrations_own_writes_are_not_user_data() {
	# v1.6's head rewrites rows of organizations and users; nothing is
	# written after the release
	at_release v1.6
	[[ $(psql_db "$TEST_DB" -c "SELECT count(*) FROM organizations WHERE ml_features_enabled") == 10 ]] ||
		fail "the data migration rewrote no rows"
	run_dgm rollback --to v1.5 plan.yaml --restore
	expect_rc 0
	expect_no "accept-data-loss"
	[[ "$(db_fingerprint "$TEST_DB")" == "$rows_v15" ]] || fail "database differs from the snapshot"
}

test_statistics_reset_since_the_release_is_unknown() {
	at_release v1.6
	psql_db "$TEST_DB" -c "SELECT pg_stat_reset()" >/dev/null
	run_dgm rollback --to v1.5 plan.yaml --restore
	expect_rc 2
	expect_err "might discard writes made since the release finished: unknown"
	expect_err "statistics were reset"
	[[ $(revisions) == b6e14d8a0f97 ]] || fail "something changed: $(revisions)"
	# a database replaced behind dgmigrate's back (its counters start over)
	psql_db postgres -c "ALTER DATABASE \"$TEST_DB\" RENAME TO \"${TEST_DB:0:40}_old\"" \
		-c "CREATE DATABASE \"$TEST_DB\" TEMPLATE \"${TEST_DB:0:40}_old\" OWNER dgm" \
		-c "DROP DATABASE \"${TEST_DB:0:40}_old\"" >/dev/null
	run_dgm backups restore "$(pre_apply_id)" plan.yaml
	expect_rc 2
	expect_err "the database was replaced since the baseline"
	[[ $(revisions) == b6e14d8a0f97 ]] || fail "something changed: $(revisions)"
}

test_backups_restore_passes_the_same_check() {
	at_release v1.6
	write_after_release
	snap=$(pre_apply_id)
	run_dgm backups restore "$snap" plan.yaml --terminate-connections
	expect_rc 2
	expect_err "would discard writes made since the release finished: 'public.organizations': 1 write"
	[[ $(after_rows) == 1 && $(revisions) == b6e14d8a0f97 ]] || fail "something changed"
	run_dgm backups restore "$snap" plan.yaml --terminate-connections --accept-data-loss --json
	expect_rc 0
	all_json "$out" || fail "--json printed something that is not JSON: $out"
	expect_out '"public.organizations":1'
	expect_err "they are kept in safety snapshot"
	[[ $(after_rows) == 0 && $(revisions) == "$H15" ]] || fail "not restored"
}

test_rollback_killed_at_each_step_converges_when_run_again() {
	at_release v1.7
	# each run starts from what the killed one before it left
	for step in snapshot downgrade restore checkout verify; do
		DGMIGRATE_FAULT_KILL_AT=$step run_dgm rollback --to v1.5 plan.yaml
		[[ $rc == 137 ]] || fail "not killed at $step: exit $rc: $err"
	done
	run_dgm rollback --to v1.5 plan.yaml
	expect_rc 0
	[[ $(revisions) == "$H15" ]] || fail "alembic_version: $(revisions)"
	[[ $(git -C app rev-parse HEAD) == $(commit_of v1.5) ]] || fail "HEAD is not at v1.5"
	[[ "$(db_fingerprint "$TEST_DB")" == "$rows_v15" ]] || fail "database differs from v1.5's"
	# the split an older failed rollback left: code at v1.5, database at v1.7
	run_dgm apply plan.yaml
	expect_rc 0
	git -C app checkout -q v1.5
	run_dgm rollback --to v1.5 plan.yaml
	expect_rc 0
	expect_err "the code of"
	[[ $(revisions) == "$H15" ]] || fail "alembic_version: $(revisions)"
	[[ $(git -C app rev-parse HEAD) == $(commit_of v1.5) ]] || fail "HEAD is not at v1.5"
	report=$(newest_report)
	grep -q "checkout.code .*-> $(commit_of v1.7 | cut -c1-12)" "${report%.json}.md" ||
		fail "the report does not name the commit checked out for the downgrade"
	# and so does its history row: the commit checked out for the
	# downgrade, the commit at the end
	[[ $(psql_db "$TEST_DB" -c "SELECT commit_after || ' ' || (SELECT s->>'evidence' FROM
		jsonb_array_elements(report->'steps') s WHERE s->>'step' = 'checkout.code')
		FROM dgmigrate.runs WHERE run_id = '$(basename "$report" .json)'") == \
		"$(commit_of v1.5) HEAD $(commit_of v1.5 | cut -c1-12) -> $(commit_of v1.7 | cut -c1-12)"* ]] ||
		fail "the history row does not record the commits checked out: $(psql_db "$TEST_DB" -c "SELECT commit_after, report->'steps' FROM dgmigrate.runs WHERE run_id = '$(basename "$report" .json)'")"
}

# A rollback that failed (not killed) at its downgrade, run again once
# the downgrade is fixed: it converges from where the failed one stopped
# (database half-way at $N1, code at v1.7).
test_a_failed_rollback_converges_when_run_again() {
	at_release v1.7
	run_dgm rollback --to v1.5 plan.yaml --no-restore
	expect_rc 1
	expect_err "CompileError"
	[[ $(revisions) == "$N1" ]] || fail "alembic_version: $(revisions), want $N1"
	[[ $(git -C app rev-parse HEAD) == $(commit_of v1.7) ]] || fail "HEAD is not at v1.7"
	AUDIT_DOWNGRADE_FIXED=1 run_dgm rollback --to v1.5 plan.yaml --no-restore
	expect_rc 0
	[[ $(revisions) == "$H15" ]] || fail "alembic_version: $(revisions)"
	[[ $(git -C app rev-parse HEAD) == $(commit_of v1.5) ]] || fail "HEAD is not at v1.5"
	[[ "$(db_fingerprint "$TEST_DB")" == "$rows_v15" ]] || fail "database differs from v1.5's"
	[[ $(psql_db "$TEST_DB" -c "SELECT string_agg(outcome, ',' ORDER BY started_at) FROM dgmigrate.runs
		WHERE command LIKE 'rollback%'") == failed,success ]] || fail "history: $(psql_db "$TEST_DB" -c "SELECT command, outcome FROM dgmigrate.runs")"
}

test_dry_run_with_an_unrenderable_downgrade_reports_the_path() {
	at_release v1.7
	write_after_release
	journals=$(ls backups/state/journal/*.jsonl | wc -l)
	before=$(db_fingerprint "$TEST_DB")
	run_dgm rollback --to v1.5 plan.yaml --dry-run
	expect_rc 1
	expect_out "downgrade    alembic downgrade $H15"
	expect_out "fallback     if the downgrade fails: restore snapshot"
	expect_out "refused without --accept-data-loss"
	expect_out "'public.organizations': 1 write"
	expect_out "cannot be rendered"
	expect_err "CompileError"
	[[ $(ls backups/state/journal/*.jsonl | wc -l) == "$journals" ]] || fail "the dry run left a journal"
	[[ "$before" == "$(db_fingerprint "$TEST_DB")" ]] || fail "the database changed"
	run_dgm rollback --to v1.5 plan.yaml --dry-run --json
	expect_rc 1
	all_json "$out" || fail "--json printed something that is not JSON: $out"
	expect_out '"event":"sql"'
	run_dgm resume plan.yaml
	expect_rc 0
	expect_err "nothing to resume"
	[[ $(ls backups/state/journal/*.jsonl | wc -l) == "$journals" ]] || fail "a dry run left a journal"
}

test_json_output_is_json_only() {
	at_release v1.6
	for cmd in "validate plan.yaml" "status plan.yaml" "history plan.yaml" "backups list plan.yaml" \
		"apply plan.yaml --dry-run" "rollback --to v1.5 plan.yaml --dry-run" "resume plan.yaml" \
		"heads --repo app" "graph --repo app" "backups create plan.yaml" "rehearse plan.yaml" \
		"backups verify $(pre_apply_id) plan.yaml" "backups prune plan.yaml --keep 5" \
		"rollback --to v1.5 plan.yaml"; do
		# shellcheck disable=SC2086
		run_dgm $cmd --json
		[[ $rc == 0 || $rc == 1 ]] || fail "'$cmd --json' exit $rc: $err"
		# (resume with nothing to resume has no result to print)
		[[ -n $out || $cmd == resume* ]] || fail "'$cmd --json' printed nothing on stdout"
		all_json "$out" || fail "'$cmd --json' printed something that is not JSON:
$out"
	done
}

# ---- the undo of a release that was live: a restore like any other ----

journal_ends() { grep -c '"type":"end"' "$(ls backups/state/journal/*.jsonl | sort | tail -n 1)" || true; }

# Consent given: the restore ran, v1.5 everywhere, the journal ended once
# (rolled back), and the history says what was discarded.
expect_restored_with_consent() {
	[[ $(revisions) == "$H15" ]] || fail "alembic_version: $(revisions)"
	[[ $(after_rows) == 0 ]] || fail "the restore did not happen"
	[[ "$(db_fingerprint "$TEST_DB")" == "$rows_v15" ]] || fail "database differs from v1.5's"
	[[ $(git -C app rev-parse HEAD) == $(commit_of v1.5) ]] || fail "HEAD is not at v1.5"
	[[ $(journal_ends) == 1 ]] || fail "the apply's journal ended $(journal_ends) times"
	run_dgm history plan.yaml
	safety=$(grep -l '"kind": "pre-restore"' backups/*/manifest.json | sort | tail -n 1 | cut -d/ -f2)
	expect_out "discarded writes: public.organizations: 1 (kept in snapshot $safety)"
	[[ $(psql_db "$(jq -r .database.copy "backups/$safety/manifest.json")" -c "SELECT count(*) FROM organizations WHERE slug = 'after-release'") == 1 ]] ||
		fail "the safety snapshot does not hold the discarded row"
	run_dgm resume plan.yaml
	expect_err "nothing to resume"
}

# The release went live (postconditions passed, the write counters
# recorded), was killed at its health check, and the application wrote a
# row; resume completes it, the health check fails, and the undo's
# downgrade fails (v1.7): the fallback restore would drop that row.
test_resume_undoing_a_live_release_needs_consent() {
	before_release v1.7
	printf 'health_check: {url: "http://127.0.0.1:9/health", timeout: 1s, interval: 100ms, retries: 1}\n' >>plan.yaml
	DGMIGRATE_FAULT_KILL_AT=health run_dgm apply plan.yaml
	[[ $rc == 137 ]] || fail "not killed at health: exit $rc: $err"
	write_after_release
	run_dgm resume plan.yaml
	expect_rc 1
	expect_err "would discard writes made since the release finished: 'public.organizations': 1 write"
	expect_err "dgmigrate resume PLAN --accept-data-loss"
	[[ $(after_rows) == 1 ]] || fail "the row written after the release is gone"
	[[ $(journal_ends) == 0 ]] || fail "the journal was ended: the run is not settled"
	run_dgm resume plan.yaml --accept-data-loss
	expect_rc 0
	expect_err "--accept-data-loss: restoring snapshot"
	expect_restored_with_consent
}

# The same through the apply's own undo: hooks.after writes a row as the
# application would, then fails.
test_apply_undoing_a_live_release_needs_consent() {
	before_release v1.7
	cat >>plan.yaml <<PLAN
hooks:
  after:
    - {name: app-writes, run: [$PGBIN/psql, -X, -q, -h, "$DGM_PGHOST", -p, "$DGM_PGPORT", -U, postgres, -d, "$TEST_DB", -c, "INSERT INTO organizations (name, slug) VALUES ('after release', 'after-release')"]}
    - {name: smoke-test, run: ["false"]}
PLAN
	run_dgm apply plan.yaml
	expect_rc 1
	expect_err "hook 'smoke-test' failed"
	expect_err "would discard writes made since the release finished: 'public.organizations': 1 write"
	expect_err "dgmigrate resume PLAN --accept-data-loss"
	[[ $(after_rows) == 1 ]] || fail "the row written after the release is gone"
	[[ $(journal_ends) == 0 ]] || fail "the journal was ended: the run is not settled"
	# the hook would write again: the application is gone now
	sed -i '/^hooks:/,$d' plan.yaml
	run_dgm resume plan.yaml --accept-data-loss
	expect_rc 0
	expect_restored_with_consent
}

# Fail closed: what the counters cannot tell is "unknown" and needs
# consent - the server restarted, the server counts no writes, the
# baseline is gone.
test_unknown_writes_need_consent() {
	at_release v1.6
	as_pg "$PGBIN/pg_ctl" -D "$DGM_PGHOST/data" -m fast -w stop >/dev/null
	cluster_ensure
	run_dgm rollback --to v1.5 plan.yaml --restore
	expect_rc 2
	expect_err "might discard writes made since the release finished: unknown, the server restarted"
	[[ $(revisions) == b6e14d8a0f97 ]] || fail "something changed: $(revisions)"
	psql_db postgres -c "ALTER DATABASE \"$TEST_DB\" SET track_counts = off" >/dev/null
	run_dgm rollback --to v1.5 plan.yaml --restore
	expect_rc 2
	expect_err "unknown, the server does not count writes (track_counts is off)"
	psql_db postgres -c "ALTER DATABASE \"$TEST_DB\" RESET track_counts" >/dev/null
	rm "backups/$(pre_apply_id)/writes.json"
	run_dgm backups restore "$(pre_apply_id)" plan.yaml --terminate-connections
	expect_rc 2
	expect_err "unknown, no record of the write counters"
	[[ $(revisions) == b6e14d8a0f97 ]] || fail "something changed: $(revisions)"
	# with consent it goes ahead
	run_dgm rollback --to v1.5 plan.yaml --restore --accept-data-loss
	expect_rc 0
	[[ "$(db_fingerprint "$TEST_DB")" == "$rows_v15" ]] || fail "database differs from the snapshot"
}

# A rollback killed at its fallback restore (consent given) is run again
# by resume, which passes consent on when it is given again.
test_resume_of_a_rollback_passes_consent_on() {
	at_release v1.7
	write_after_release
	DGMIGRATE_FAULT_KILL_AT=restore run_dgm rollback --to v1.5 plan.yaml --accept-data-loss
	[[ $rc == 137 ]] || fail "not killed at restore: exit $rc: $err"
	[[ $(after_rows) == 1 ]] || fail "the row is gone before the restore"
	run_dgm resume plan.yaml --accept-data-loss
	expect_rc 0
	expect_err "--accept-data-loss: restoring snapshot"
	[[ $(revisions) == "$H15" ]] || fail "alembic_version: $(revisions)"
	[[ $(after_rows) == 0 ]] || fail "the restore did not happen"
	[[ $(git -C app rev-parse HEAD) == $(commit_of v1.5) ]] || fail "HEAD is not at v1.5"
	run_dgm resume plan.yaml
	expect_err "nothing to resume"
}
