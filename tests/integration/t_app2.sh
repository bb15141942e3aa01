# t_app2.sh - the whole story on the second fixture application, shaped
# like a real FastAPI project: settings from POSTGRES_* (alembic.env hands
# it the target), alembic.ini under backend/, a role without CREATEDB, a
# data migration (integer ids to UUIDs) and a downgrade that cannot
# compile. Release v1.1, then v1.2; rows written after it; the rollback's
# downgrade fails, so the only way back is a restore, which must not
# discard those rows silently and must work without CREATEDB (in place).

APP2_ENV='  env:
    POSTGRES_SERVER: "${target.host}"
    POSTGRES_PORT: "${target.port}"
    POSTGRES_USER: "${target.user}"
    POSTGRES_PASSWORD: "${target.password}"
    POSTGRES_DB: "${target.dbname}"'

a2_revs() { psql_db "$TEST_DB" -c "SELECT string_agg(version_num, ',' ORDER BY 1) FROM alembic_version"; }
a2_id_type() {
	psql_db "$TEST_DB" -c "SELECT format_type(atttypid, atttypmod) FROM pg_attribute
		WHERE attrelid = '\"user\"'::regclass AND attname = 'id'"
}

test_release_and_rollback_of_a_real_shaped_application() {
	APP2_LINT= APP2_ALEMBIC=$APP2_ENV setup_release_app2 "$TEST_DB" v1.1
	migrate_app app/backend head
	app2_rows "$TEST_DB"
	# the data migration drops and renames columns that the running version
	# uses: the lint refuses it until the plan accepts it (a release for a
	# maintenance window)
	run_dgm apply plan.yaml --dry-run
	expect_rc 1
	expect_out "error: drop-column: column 'owner_id'"
	expect_out "apply would refuse"
	printf 'lint:\n  fail_on: never\n' >>plan.yaml
	# the role cannot create databases: preflight says how it will undo
	run_dgm apply plan.yaml --dry-run
	expect_rc 0
	expect_err "in place"
	run_dgm apply plan.yaml
	expect_rc 0
	expect_out "apply 'v1.1': success"
	[[ $(a2_id_type) == uuid ]] || fail "the data migration did not run: id is $(a2_id_type)"
	v11=$(a2_revs)
	users=$(psql_db "$TEST_DB" -c "SELECT count(*) FROM \"user\"")
	# v1.2 on top, then a row written by the application after it
	sed -i 's/^  tag: v1.1$/  tag: v1.2/' plan.yaml
	run_dgm apply plan.yaml
	expect_rc 0
	psql_db "$TEST_DB" -c "INSERT INTO \"user\" (id, email, is_active, full_name)
		VALUES (gen_random_uuid(), 'late@example.com', true, 'after the release')" >/dev/null
	# v1.2's downgrade cannot compile: the fallback restore would drop the row
	run_dgm rollback --to v1.1 plan.yaml
	expect_rc 1
	expect_err "CompileError"
	expect_err "--accept-data-loss"
	[[ $(psql_db "$TEST_DB" -c "SELECT count(*) FROM \"user\" WHERE email = 'late@example.com'") == 1 ]] ||
		fail "the row written after the release is gone without --accept-data-loss"
	[[ $(git -C app describe --tags --exact-match HEAD) == v1.2 ]] || fail "the code left v1.2 before the database did"
	# accepted: restored in place (no CREATEDB), the row's loss recorded
	run_dgm rollback --to v1.1 plan.yaml --accept-data-loss
	expect_rc 0
	[[ $(a2_revs) == "$v11" ]] || fail "revisions after the rollback: $(a2_revs), want $v11"
	[[ $(psql_db "$TEST_DB" -c "SELECT count(*) FROM \"user\"") == "$users" ]] || fail "users after the restore"
	[[ $(a2_id_type) == uuid ]] || fail "not v1.1's data"
	[[ $(git -C app describe --tags --exact-match HEAD) == v1.1 ]] || fail "HEAD is not v1.1"
	run_dgm history plan.yaml --json
	expect_rc 0
	python3 -c '
import json, sys
runs = json.load(sys.stdin)
got = sorted((r["command"], r["outcome"]) for r in runs)
want = sorted([("apply", "success"), ("apply", "success"), ("rollback", "failed"), ("rollback", "success")])
assert got == want, got
' <<<"$out" || fail "history after the restore: $out"
}
