# lib.sh - the integration-test harness: a throwaway PostgreSQL 15
# cluster on a unix socket in a temporary folder, one database per test,
# and small assertions. Sourced by tests/run-all.sh and by each test.
#
# The cluster runs as the 'postgres' user when the tests run as root
# (initdb refuses root). Two roles: 'postgres' (trust, for the harness)
# and 'dgm' (password, what dgmigrate uses: so secrets are exercised).

PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
ROOT=${ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}

as_pg() {
	if [[ $(id -u) -eq 0 ]]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

# cluster_start DIR: initdb + start; exports DGM_PGHOST DGM_PGPORT DGM_PGPASS.
cluster_start() {
	local dir=$1
	mkdir -p "$dir"
	chmod 711 "$dir"
	if [[ $(id -u) -eq 0 ]]; then
		mkdir -p "$dir/pg"
		chown postgres: "$dir/pg"
	fi
	DGM_PGHOST=$dir/pg
	DGM_PGPORT=$(( 20000 + RANDOM % 30000 ))
	DGM_PGPASS="pw-$RANDOM$RANDOM-secret"
	export DGM_PGHOST DGM_PGPORT DGM_PGPASS
	as_pg "$PGBIN/initdb" -D "$DGM_PGHOST/data" -U postgres --auth-local=trust \
		--auth-host=reject -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 ||
		{ cat "$dir/initdb.log" >&2; return 1; }
	# dgm must authenticate with its password; the harness uses trust.
	as_pg sh -c "printf 'local all postgres trust\nlocal all all scram-sha-256\n' > '$DGM_PGHOST/data/pg_hba.conf'"
	cluster_pg_start || { cat "$DGM_PGHOST/server.log" >&2; return 1; }
	pg_admin -q -c "CREATE ROLE dgm LOGIN SUPERUSER PASSWORD '$DGM_PGPASS'" >/dev/null
}

# cluster_ensure: the cluster of cluster_start answers, restarted (same
# socket, port and settings) when a test left it stopped or stopping: one
# test that stops the server must not fail every test after it.
cluster_ensure() {
	local i
	pg_admin -qAt -c "SELECT 1" >/dev/null 2>&1 && return 0
	# stopping (pid file, no answer): let it finish, then start it
	for ((i = 0; i < 600; i++)); do
		as_pg "$PGBIN/pg_ctl" -D "$DGM_PGHOST/data" status >/dev/null 2>&1 || break
		pg_admin -qAt -c "SELECT 1" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	as_pg "$PGBIN/pg_ctl" -D "$DGM_PGHOST/data" -m immediate -w stop >/dev/null 2>&1 || true
	cluster_pg_start
}

cluster_pg_start() {
	as_pg "$PGBIN/pg_ctl" -D "$DGM_PGHOST/data" -l "$DGM_PGHOST/server.log" -w -t 60 \
		-o "-k $DGM_PGHOST -p $DGM_PGPORT -c listen_addresses='' -c fsync=off -c max_connections=60" \
		start >/dev/null
}

cluster_stop() {
	[[ -n "${DGM_PGHOST:-}" && -d "$DGM_PGHOST/data" ]] || return 0
	as_pg "$PGBIN/pg_ctl" -D "$DGM_PGHOST/data" -m immediate -w stop >/dev/null 2>&1 || true
}

# pg_admin [psql args...]: psql as postgres on the test cluster.
pg_admin() {
	as_pg "$PGBIN/psql" -X -v ON_ERROR_STOP=1 -h "$DGM_PGHOST" -p "$DGM_PGPORT" -U postgres \
		-d "${PGADMIN_DB:-postgres}" "$@"
}

# psql_db DB [psql args...]: tuples only, unaligned, as postgres.
psql_db() {
	local db=$1; shift
	PGADMIN_DB=$db pg_admin -At "$@"
}

# db_url DB: the URL dgmigrate and alembic use (with the dgm password).
db_url() {
	printf 'postgresql://dgm:%s@/%s?host=%s&port=%s' "$DGM_PGPASS" "$1" "$DGM_PGHOST" "$DGM_PGPORT"
}

# new_db NAME: a fresh database owned by dgm.
new_db() {
	pg_admin -q -c "SET client_min_messages = warning" \
		-c "DROP DATABASE IF EXISTS \"$1\" WITH (FORCE)" -c "CREATE DATABASE \"$1\" OWNER dgm" >/dev/null
}

# ---- assertions: each prints what was expected on failure ----
fail() { echo "FAIL: $*" >&2; return 1; }

# run_dgm ARGS...: runs the binary, sets $rc, $out, $err (no exit on failure).
run_dgm() {
	local o e
	o=$(mktemp) e=$(mktemp)
	set +e
	"$DGMIGRATE" "$@" >"$o" 2>"$e"
	rc=$?
	set -e
	out=$(cat "$o") err=$(cat "$e")
	rm -f "$o" "$e"
	if [[ -n "${DGM_PGPASS:-}" ]] && grep -qF -- "$DGM_PGPASS" <<<"$out$err"; then
		fail "the database password appeared in dgmigrate's output"
		return 1
	fi
	return 0
}

expect_rc() {
	[[ "$rc" == "$1" ]] || fail "expected exit $1, got $rc
--- stdout:
$out
--- stderr:
$err"
}

expect_out() { grep -qF -- "$1" <<<"$out" || fail "stdout lacks '$1':
$out
--- stderr:
$err"; }
expect_err() { grep -qF -- "$1" <<<"$err" || fail "stderr lacks '$1':
$err"; }
expect_no() { ! grep -qF -- "$1" <<<"$out$err" || fail "output contains '$1':
$out$err"; }

# ---- fixtures for a test, in its own folder (the cwd) ----

# setup_release DB: ./app (a copy of the fixture repo, at v1.5), ./models
# (a small model store), the environment the plan needs, and ./plan.yaml.
setup_release() {
	local db=$1
	new_db "$db"
	cp -a "$FIXTURE_APP" app
	mkdir -p models/classifier && printf '{"kind":"demo"}\n' > models/classifier/meta.json
	export DATABASE_URL; DATABASE_URL=$(db_url "$db")
	export ML_MODEL_STORAGE_PATH=$PWD/models
	export SECRET_KEY="sk-$RANDOM$RANDOM-value"
	write_plan plan.yaml
}

# write_plan FILE [TAG]: a plan for the folder's app, models and database.
write_plan() {
	cat >"$1" <<PLAN
version: 1
release:
  name: test release
  repository: app
  tag: ${2:-v1.6}
database:
  url: \${DATABASE_URL}
snapshot:
  directory: backups
model_store:
  path: \${ML_MODEL_STORAGE_PATH}
environment:
  required: [DATABASE_URL, ML_MODEL_STORAGE_PATH, SECRET_KEY]
postconditions:
  tables: [predictive_models, anomaly_detection_models, anomaly_detection_results,
           external_data_sources, prediction_history]
on_failure: rollback
PLAN
}

# schema_dump DB: pg_dump -s without its random \restrict lines.
# dgmigrate's own history schema is left out: it is not the application's.
schema_dump() {
	as_pg "$PGBIN/pg_dump" -h "$DGM_PGHOST" -p "$DGM_PGPORT" -U postgres -s -N dgmigrate "$1" |
		grep -v -e '^\\restrict' -e '^\\unrestrict'
}

# db_fingerprint DB: the schema and an md5 of every table's rows, one line
# each. The schema is put in canonical form first (restored into a scratch
# database and dumped again): PostgreSQL deparses some expressions
# differently after a dump and restore (a varchar IN list in a CHECK), so
# equal schemas would otherwise compare different.
db_fingerprint() {
	local db=$1 tmp="fp_$$_$RANDOM"
	new_db "$tmp" 2>/dev/null
	schema_dump "$db" > "$tmp.sql" || fail "pg_dump -s $db failed"
	PGADMIN_DB=$tmp pg_admin -q -f "$tmp.sql" >"$tmp.log" 2>&1 ||
		fail "cannot replay the schema of $db: $(tail -3 "$tmp.log")"
	schema_dump "$tmp" | md5sum | sed 's/ .*/ schema/'
	pg_admin -q -c "DROP DATABASE \"$tmp\"" >/dev/null
	rm -f "$tmp.sql" "$tmp.log"
	psql_db "$db" -c "SELECT format('%I.%I', schemaname, relname) FROM pg_stat_user_tables WHERE schemaname <> 'dgmigrate' ORDER BY 1" |
	while read -r t; do
		printf '%s %s\n' "$(psql_db "$db" -c "SELECT md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), '')) FROM $t x")" "$t"
	done
}

# tree_fingerprint DIR: every entry's path, type, mode, mtime, size, link
# target and content hash.
tree_fingerprint() {
	(cd "$1" && find . -printf '%p %y %m %T@ %s %l\n' | sort &&
		find . -type f -print0 | sort -z | xargs -0 -r sha256sum)
}

# migrate_app DIR REV: the real alembic in the app folder DIR.
migrate_app() {
	(cd "$1" && alembic upgrade "$2" >/dev/null 2>&1) || { echo "alembic upgrade $2 failed" >&2; return 1; }
}

# ---- the second fixture application (fixtures/app2) ----

# setup_release_app2 DB [TAG]: ./app (fixtures/app2 built as a git
# repository, HEAD detached at v1.0), a role 'app_owner' without
# CREATEDB or SUPERUSER (password auth, the dgm password) that owns the
# fresh database DB, the POSTGRES_* variables the application's settings
# read (DATABASE_URL unset: the application never reads it), and
# ./plan.yaml (write_plan_app2) connecting as app_owner.
setup_release_app2() {
	local db=$1
	pg_admin -q -c "DO \$\$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'app_owner')
		THEN CREATE ROLE app_owner LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE; END IF; END\$\$" \
		-c "ALTER ROLE app_owner PASSWORD '$DGM_PGPASS'" >/dev/null
	pg_admin -q -c "SET client_min_messages = warning" \
		-c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" \
		-c "CREATE DATABASE \"$db\" OWNER app_owner" >/dev/null
	"$ROOT/fixtures/build-app2-repo.sh" app >/dev/null
	unset DATABASE_URL
	export POSTGRES_SERVER=$DGM_PGHOST POSTGRES_PORT=$DGM_PGPORT POSTGRES_USER=app_owner
	export POSTGRES_PASSWORD=$DGM_PGPASS POSTGRES_DB=$db
	write_plan_app2 plan.yaml "${2:-v1.1}"
}

# write_plan_app2 FILE [TAG]: a plan for the folder's app2 and database,
# the URL as a conninfo string built from the POSTGRES_* variables.
# $APP2_DB_USER replaces the user (e.g. dgm, which may create databases);
# $APP2_ALEMBIC lines are added under 'alembic:' (indented by the caller).
# v1.1's data migration drops and renames columns the running version
# uses, which the lint refuses: the plan says 'lint: fail_on: never'
# unless $APP2_LINT is set (empty: no lint section).
write_plan_app2() {
	local user='${POSTGRES_USER}'
	[[ -n "${APP2_DB_USER:-}" ]] && user=$APP2_DB_USER
	cat >"$1" <<PLAN
version: 1
release:
  name: inventory release
  repository: app
  tag: ${2:-v1.1}
database:
  url: "host=\${POSTGRES_SERVER} port=\${POSTGRES_PORT} user=$user password=\${POSTGRES_PASSWORD} dbname=\${POSTGRES_DB}"
alembic:
  config: backend/alembic.ini
${APP2_ALEMBIC:-}
snapshot:
  directory: backups
environment:
  required: [POSTGRES_PASSWORD]
on_failure: rollback
${APP2_LINT-lint:
  fail_on: never}
PLAN
}

# app2_rows DB: a few users and items, so that the v1.1 data migration
# has ids to rewrite (the database must be at v1.0's head).
app2_rows() {
	psql_db "$1" -q -c "INSERT INTO \"user\" (email, is_active, full_name)
		SELECT 'u' || g || '@example.com', true, 'user ' || g FROM generate_series(1, 3) g;
		INSERT INTO item (title, owner_id) SELECT 'item ' || g, 1 + g % 3 FROM generate_series(1, 5) g;" >/dev/null
}
