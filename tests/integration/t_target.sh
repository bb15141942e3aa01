# t_target.sh - alembic migrates exactly the database dgmigrate means
# (issue 11.1), on the second fixture application, whose env.py builds its
# URL from POSTGRES_* and never reads DATABASE_URL.

# The live database at v1.0's head with rows, the app checked out at v1.0.
tg_at_v10() {
	setup_release_app2 "$TEST_DB" "${1:-v1.1}"
	migrate_app app/backend head
	app2_rows "$TEST_DB"
}

# alembic.env handing the application the database dgmigrate targets.
TG_TARGET_ENV='  env:
    POSTGRES_SERVER: "${target.host}"
    POSTGRES_PORT: "${target.port}"
    POSTGRES_USER: "${target.user}"
    POSTGRES_PASSWORD: "${target.password}"
    POSTGRES_DB: "${target.dbname}"'

tg_scratch_dbs() {
	psql_db postgres -c "SELECT datname FROM pg_database WHERE datname ~ '_dgm_rehearse_[0-9]+\$'"
}

tg_ids_are_integers() {
	[[ $(psql_db "$1" -c "SELECT format_type(atttypid, atttypmod) FROM pg_attribute
		WHERE attrelid = '\"user\"'::regclass AND attname = 'id'") == integer ]]
}

# The application's env.py ignores the scratch copy: alembic reaches the
# live database, is stopped there before it changes anything, and the
# rehearsal fails naming the fix.
test_rehearse_without_alembic_env_leaves_live_unchanged() {
	APP2_DB_USER=dgm tg_at_v10
	before=$(db_fingerprint "$TEST_DB")
	run_dgm rehearse plan.yaml
	[[ $rc -ne 0 ]] || fail "the rehearsal passed: $out $err"
	expect_err "alembic.env"
	expect_err "live database '$TEST_DB'"
	[[ "$before" == "$(db_fingerprint "$TEST_DB")" ]] || fail "the live database changed:
$(diff <(echo "$before") <(db_fingerprint "$TEST_DB"))"
	tg_ids_are_integers "$TEST_DB" || fail "the live ids were rewritten"
	[[ -z $(tg_scratch_dbs) ]] || fail "scratch database left: $(tg_scratch_dbs)"
	# nothing of alembic's is left on the live database
	[[ $(psql_db postgres -c "SELECT count(*) FROM pg_stat_activity
		WHERE datname = '$TEST_DB' AND application_name LIKE 'alembic-dgmigrate%'") == 0 ]] ||
		fail "an alembic session is still connected"
}

# With alembic.env naming the target's parts, the rehearsal runs on the
# copy and passes; the live database is untouched. dgmigrate connects as
# dgm (which may create the copy), alembic as the application's own role
# (POSTGRES_USER from the environment), which owns the copy as it owns
# the live database.
test_rehearse_with_target_env_passes() {
	APP2_DB_USER=dgm APP2_ALEMBIC='  env:
    POSTGRES_SERVER: "${target.host}"
    POSTGRES_PORT: "${target.port}"
    POSTGRES_DB: "${target.dbname}"' tg_at_v10
	before=$(db_fingerprint "$TEST_DB")
	run_dgm rehearse plan.yaml
	expect_rc 0
	expect_out "on a scratch copy of '$TEST_DB': PASS"
	expect_err "alembic connects to '${TEST_DB:0:40}_dgm_rehearse_"
	[[ "$before" == "$(db_fingerprint "$TEST_DB")" ]] || fail "the live database changed"
	[[ -z $(tg_scratch_dbs) ]] || fail "scratch database left: $(tg_scratch_dbs)"
}

# apply, with alembic.env sending alembic to another database: refused
# before alembic changes anything, in either database.
test_apply_refuses_when_alembic_goes_elsewhere() {
	APP2_ALEMBIC='  env:
    POSTGRES_DB: other_inventory' tg_at_v10
	pg_admin -q -c "SET client_min_messages = warning" \
		-c "DROP DATABASE IF EXISTS other_inventory WITH (FORCE)" \
		-c "CREATE DATABASE other_inventory OWNER app_owner" >/dev/null
	POSTGRES_DB=other_inventory migrate_app app/backend head
	before=$(db_fingerprint "$TEST_DB") other=$(db_fingerprint other_inventory)
	run_dgm apply plan.yaml
	expect_rc 1
	expect_err "alembic did not connect to database '$TEST_DB'"
	expect_err "alembic.env"
	[[ "$before" == "$(db_fingerprint "$TEST_DB")" ]] || fail "the database changed"
	[[ "$other" == "$(db_fingerprint other_inventory)" ]] || fail "the other database changed"
	tg_ids_are_integers other_inventory || fail "the other database was migrated"
}

# apply with the target's parts in alembic.env: proven, then migrated.
test_apply_with_target_env_migrates_the_database() {
	APP2_ALEMBIC=$TG_TARGET_ENV tg_at_v10
	run_dgm apply plan.yaml
	expect_rc 0
	expect_err "alembic connects to '$TEST_DB'"
	! tg_ids_are_integers "$TEST_DB" || fail "the ids were not rewritten"
}

# Passwords never reach argv: ${target.password} in alembic.x is a plan
# error at its line and column, pointing at alembic.env.
test_password_placeholder_in_x_is_a_plan_error() {
	APP2_ALEMBIC='  x: [sqlalchemy.url=postgresql://u@h/d, "pw=${target.password}"]' tg_at_v10
	line=$(grep -n 'pw=' plan.yaml | cut -d: -f1)
	col=$(( $(grep 'pw=' plan.yaml | awk '{print index($0, "\"pw=")}') ))
	run_dgm validate plan.yaml --offline
	expect_rc 2
	expect_err "plan.yaml:$line:$col:"
	expect_err "alembic.env"
	APP2_ALEMBIC='  x: ["url=${target.url}"]' write_plan_app2 plan.yaml
	run_dgm validate plan.yaml --offline
	expect_rc 2
	expect_err "\${target.url}"
	APP2_ALEMBIC='  x: ["db=${target.dbnme}"]' write_plan_app2 plan.yaml
	run_dgm validate plan.yaml --offline
	expect_rc 2
	expect_err "did you mean '\${target.dbname}'"
}

# alembic.x values reach env.py through context.get_x_argument() with the
# placeholders replaced; the scratch URL has an ordinary host part that
# settings libraries accept.
test_x_arguments_and_scratch_url_shape() {
	setup_release "$TEST_DB"
	migrate_app app head
	cat > alembic-wrap <<'SH'
#!/bin/sh
# records what dgmigrate hands alembic, then runs it
/usr/bin/python3 - "$@" >>"$(dirname "$0")/seen.txt" <<'PY'
import os, sys
from urllib.parse import urlsplit
u = urlsplit(os.environ["DATABASE_URL"])
print("url", u.scheme, u.hostname, u.port, u.path, "appname=" + os.environ.get("PGAPPNAME", ""))
print("argv", " ".join(a for a in sys.argv[1:] if a.startswith("db=")))
PY
exec alembic "$@"
SH
	chmod +x alembic-wrap
	python3 - plan.yaml "$PWD/alembic-wrap" <<'PY'
import sys
p, wrap = sys.argv[1], sys.argv[2]
s = open(p).read().replace("database:", "alembic:\n  command: [%s]\n  x: [\"db=${target.dbname}\"]\ndatabase:" % wrap, 1)
open(p, "w").write(s)
PY
	run_dgm rehearse plan.yaml
	expect_rc 0
	grep -q "^url postgresql localhost $DGM_PGPORT /${TEST_DB:0:40}_dgm_rehearse_[0-9]* appname=alembic-dgmigrate" seen.txt ||
		fail "DATABASE_URL of the scratch copy: $(cat seen.txt)"
	grep -q "^argv db=${TEST_DB:0:40}_dgm_rehearse_[0-9]*\$" seen.txt || fail "-x: $(cat seen.txt)"
}

# A database alembic never touched has no version table to lock: the live
# one is fenced by an uncommitted CREATE TABLE of it (rehearse), the probe
# makes it as alembic would and drops it again when refused (apply).
test_empty_database_is_fenced_too() {
	APP2_DB_USER=dgm setup_release_app2 "$TEST_DB" v1.0
	no_table() { [[ $(psql_db "$TEST_DB" -c "SELECT to_regclass('alembic_version') IS NULL") == t ]]; }
	run_dgm rehearse plan.yaml
	[[ $rc -ne 0 ]] || fail "the rehearsal passed: $out $err"
	expect_err "alembic.env"
	no_table || fail "the rehearsal created the live version table"
	[[ $(psql_db "$TEST_DB" -c "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == 0 ]] ||
		fail "the rehearsal created tables in the live database"
	APP2_DB_USER=dgm APP2_ALEMBIC='  env:
    POSTGRES_DB: other_inventory' write_plan_app2 plan.yaml v1.0
	pg_admin -q -c "SET client_min_messages = warning" \
		-c "DROP DATABASE IF EXISTS other_inventory WITH (FORCE)" \
		-c "CREATE DATABASE other_inventory OWNER app_owner" >/dev/null
	run_dgm apply plan.yaml
	expect_rc 1
	expect_err "alembic did not connect to database '$TEST_DB'"
	no_table || fail "the refused apply left a version table behind"
	[[ $(psql_db other_inventory -c "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == 0 ]] ||
		fail "the other database was changed"
	APP2_DB_USER=dgm APP2_ALEMBIC="$TG_TARGET_ENV" write_plan_app2 plan.yaml v1.0
	sed -i 's/"${target.user}"/app_owner/' plan.yaml
	run_dgm apply plan.yaml
	expect_rc 0
	[[ $(psql_db "$TEST_DB" -c "SELECT version_num FROM alembic_version") == 7a2e9d4c1b85 ]] ||
		fail "not migrated"
	pg_admin -q -c "DROP DATABASE other_inventory" >/dev/null
}

# Issue 12.2: alembic.ini under backend/ is found where it lives.
test_alembic_ini_found_where_it_lives() {
	tg_at_v10
	sed -i -e '/^alembic:$/d' -e '/config: backend\/alembic.ini/d' plan.yaml
	run_dgm validate plan.yaml
	[[ $rc -ne 0 ]] || fail "validate passed without the ini"
	expect_err "alembic.ini in the repository: backend/alembic.ini"
	ALEMBIC_CONFIG=backend/alembic.ini run_dgm validate plan.yaml
	expect_rc 0
	run_dgm heads --repo app
	[[ $rc -ne 0 ]] || fail "heads passed without the ini"
	expect_err "alembic.ini in the repository: backend/alembic.ini"
	run_dgm heads --repo app --config "$PWD/app/backend/alembic.ini"
	expect_rc 0
	expect_out "7a2e9d4c1b85 (head)"
	ALEMBIC_CONFIG=backend/alembic.ini run_dgm heads --repo app --at v1.1
	expect_rc 0
	expect_out "d4e8b1f7a962 (head)"
	# an absolute path inside the repository, in a plan too
	printf 'alembic:\n  config: %s\n' "$PWD/app/backend/alembic.ini" >> plan.yaml
	run_dgm status plan.yaml
	expect_rc 0
	run_dgm validate plan.yaml
	expect_rc 0
}
