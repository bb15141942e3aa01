# t_verify.sh - release verification (src/verify/): postconditions on a
# real database, hooks, and the health check against a local HTTP server.
# Until `apply` exists, a small program (tests/tools/verify_probe.c)
# drives the functions; it prints one "ok|FAIL<TAB>NAME<TAB>EVIDENCE"
# line an item.

PROBE_SRC=$ROOT/tests/tools/verify_probe.c

# The probe: make's build when the Makefile has it, else compiled here
# once for the file, with the sanitizers when libdgm.a was built with them.
probe_bin() {
	local lib=$ROOT/$BUILD/libdgm.a bin=$DGM_WORK/verify_probe san=()
	if [[ -x $ROOT/$BUILD/tools/verify_probe ]]; then
		echo "$ROOT/$BUILD/tools/verify_probe"
		return
	fi
	if [[ ! -x $bin ]]; then
		[[ -f $lib ]] || { fail "$lib is missing: run make first"; return 1; }
		# not grep -q: under pipefail, nm killed by SIGPIPE would fail the test
		if nm "$lib" 2>/dev/null | grep __asan_init >/dev/null; then
			san=(-fsanitize=address,undefined -fno-omit-frame-pointer)
		fi
		# shellcheck disable=SC2046
		cc -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wno-unused-parameter -g "${san[@]}" \
			-I"$ROOT/include" $(pkg-config --cflags libpq) -o "$bin.tmp" "$PROBE_SRC" "$lib" \
			$(pkg-config --libs libpq libgit2 libarchive yaml-0.1 libcrypto jansson libcurl) \
			-lpthread >&2 || { fail "cannot build verify_probe"; return 1; }
		mv "$bin.tmp" "$bin"
	fi
	echo "$bin"
}

# probe ARGS...: like run_dgm (sets rc, out, err; checks the password).
probe() {
	local DGMIGRATE
	DGMIGRATE=$(probe_bin) || return 1
	run_dgm "$@"
}

# A database with the five ML tables, their foreign keys and indexes, a
# few rows, and Alembic's version table at ab12cd34ef56.
ml_schema() {
	new_db "$TEST_DB"
	psql_db "$TEST_DB" -q <<'SQL' >/dev/null
CREATE TABLE organizations (id serial PRIMARY KEY, name text NOT NULL);
CREATE TABLE predictive_models (id serial PRIMARY KEY,
  organization_id int NOT NULL CONSTRAINT fk_predictive_models_organization REFERENCES organizations(id),
  name text NOT NULL);
CREATE TABLE anomaly_detection_models (id serial PRIMARY KEY, name text NOT NULL);
CREATE TABLE anomaly_detection_results (id serial PRIMARY KEY,
  model_id int NOT NULL CONSTRAINT fk_anomaly_detection_results_model REFERENCES anomaly_detection_models(id),
  score float8);
CREATE TABLE external_data_sources (id serial PRIMARY KEY, name text NOT NULL);
CREATE TABLE prediction_history (id serial PRIMARY KEY,
  model_id int NOT NULL CONSTRAINT fk_prediction_history_model REFERENCES predictive_models(id),
  value float8);
CREATE INDEX ix_predictive_models_organization_id ON predictive_models (organization_id);
CREATE INDEX ix_anomaly_detection_results_model_id ON anomaly_detection_results (model_id);
CREATE INDEX ix_prediction_history_model_id ON prediction_history (model_id);
INSERT INTO organizations (name) SELECT 'org ' || g FROM generate_series(1, 3) g;
INSERT INTO predictive_models (organization_id, name) SELECT 1 + g % 3, 'm' || g FROM generate_series(1, 20) g;
INSERT INTO prediction_history (model_id, value) SELECT 1 + g % 20, g FROM generate_series(1, 500) g;
CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY);
INSERT INTO alembic_version VALUES ('ab12cd34ef56');
SQL
	plan_env
}

# plan_env: what the plans below need: the variables and ./app.
plan_env() {
	export DATABASE_URL; DATABASE_URL=$(db_url "$TEST_DB")
	export SECRET_KEY="sk-$RANDOM$RANDOM-value"
	mkdir -p app/bin
}

# verify_plan: plan.yaml for ./app and the test database; the sections
# given on stdin are appended.
verify_plan() {
	cat > plan.yaml <<'PLAN'
version: 1
release:
  name: verify test
  repository: app
  tag: v1.6
database:
  url: ${DATABASE_URL}
snapshot:
  directory: backups
environment:
  required: [DATABASE_URL, SECRET_KEY]
PLAN
	cat >> plan.yaml
}

ml_plan() {
	verify_plan <<'PLAN'
postconditions:
  tables: [predictive_models, anomaly_detection_models, anomaly_detection_results,
           external_data_sources, prediction_history]
  indexes: [ix_predictive_models_organization_id, ix_anomaly_detection_results_model_id,
            ix_prediction_history_model_id]
PLAN
}

expect_items() {
	expect_out "items $1 failed $2"
}

# ---- postconditions ----------------------------------------------------

test_all_ml_tables_indexes_and_fks_pass() {
	ml_schema
	ml_plan
	probe plan.yaml post ab12cd34ef56
	expect_rc 0
	expect_out $'ok\talembic_version\tholds ab12cd34ef56'
	expect_out $'ok\ttable predictive_models\tpublic.predictive_models (3 columns)'
	expect_out $'ok\ttable external_data_sources\tpublic.external_data_sources'
	expect_out $'ok\tindex ix_prediction_history_model_id\tindex ix_prediction_history_model_id on prediction_history(model_id)'
	# on the tables, and the one from predictive_models to organizations
	expect_out $'ok\tfk fk_prediction_history_model validated\tprediction_history: FOREIGN KEY (model_id) REFERENCES predictive_models(id)'
	expect_out $'ok\tfk fk_predictive_models_organization validated'
	expect_out $'ok\tfk fk_anomaly_detection_results_model validated'
	expect_out $'ok\tanalyze\tANALYZE public.predictive_models, public.anomaly_detection_models'
	# 1 revision + 5 tables + 3 indexes + 3 foreign keys + analyze
	expect_items 13 0
	expect_err "  ok    table prediction_history: public.prediction_history"
}

test_analyze_ran() {
	ml_schema
	ml_plan
	[[ $(psql_db "$TEST_DB" -c "SELECT count(*) FROM pg_stat_user_tables WHERE last_analyze IS NOT NULL") == 0 ]] ||
		fail "tables were analyzed before the test"
	probe plan.yaml post
	expect_rc 0
	got=$(psql_db "$TEST_DB" -c "SELECT string_agg(relname, ' ' ORDER BY relname) FROM pg_stat_user_tables WHERE last_analyze IS NOT NULL")
	[[ $got == "anomaly_detection_models anomaly_detection_results external_data_sources prediction_history predictive_models" ]] ||
		fail "analyzed: '$got'"
	[[ $(psql_db "$TEST_DB" -c "SELECT reltuples FROM pg_class WHERE relname = 'prediction_history'") == 500 ]] ||
		fail "prediction_history has no statistics"
}

test_analyze_off_leaves_tables_alone() {
	ml_schema
	ml_plan
	printf '  analyze: false\n' >> plan.yaml
	probe plan.yaml post
	expect_rc 0
	expect_items 11 0
	[[ $(psql_db "$TEST_DB" -c "SELECT count(*) FROM pg_stat_user_tables WHERE last_analyze IS NOT NULL") == 0 ]] ||
		fail "ANALYZE ran although analyze: false"
}

test_analyze_waits_no_longer_than_lock_timeout() {
	ml_schema
	ml_plan
	printf 'timeouts:\n  lock_timeout: 200ms\n' >> plan.yaml
	psql_db "$TEST_DB" -c "BEGIN; LOCK TABLE prediction_history; SELECT pg_sleep(20)" >/dev/null 2>&1 &
	locker=$!
	trap 's=$?; psql_db "$TEST_DB" -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE '"'"'%LOCK TABLE%'"'"' AND pid <> pg_backend_pid()" >/dev/null; wait $locker || true; exit $s' EXIT
	for ((i = 0; i < 100; i++)); do
		[[ $(psql_db "$TEST_DB" -c "SELECT count(*) FROM pg_locks WHERE relation = 'prediction_history'::regclass AND mode = 'AccessExclusiveLock' AND granted") == 1 ]] && break
		sleep 0.02
	done
	start=$(date +%s%N)
	probe plan.yaml post
	ms=$(( ($(date +%s%N) - start) / 1000000 ))
	expect_rc 1
	expect_err "postconditions failed: ANALYZE failed: canceling statement due to lock timeout"
	# the catalog checks do not wait for the lock; ANALYZE gives up after 200 ms
	(( ms < 1500 )) || fail "took $ms ms"
	expect_out $'FAIL\tanalyze\tANALYZE public.predictive_models'
	expect_items 12 1
}

test_missing_table_is_named_and_others_still_checked() {
	ml_schema
	psql_db "$TEST_DB" -c "DROP TABLE external_data_sources" >/dev/null
	ml_plan
	probe plan.yaml post
	expect_rc 1
	expect_err "dgmigrate: error: postconditions failed: table 'external_data_sources' does not exist"
	expect_out $'FAIL\ttable external_data_sources\tdoes not exist (search_path: "$user", public)'
	# every other item was checked; no ANALYZE after a failure
	expect_out $'ok\ttable prediction_history'
	expect_out $'ok\tindex ix_prediction_history_model_id'
	expect_no $'\tanalyze\t'
	expect_items 11 1
}

test_schema_qualified_and_search_path() {
	ml_schema
	psql_db "$TEST_DB" -c "CREATE SCHEMA ml; ALTER TABLE external_data_sources SET SCHEMA ml" >/dev/null
	verify_plan <<'PLAN'
postconditions:
  tables: [ml.external_data_sources, predictive_models, external_data_sources]
PLAN
	probe plan.yaml post
	expect_rc 1
	expect_out $'ok\ttable ml.external_data_sources\tml.external_data_sources (2 columns)'
	expect_out $'FAIL\ttable external_data_sources\tdoes not exist'
	# the role's search_path finds it
	psql_db "$TEST_DB" -c "ALTER ROLE dgm IN DATABASE \"$TEST_DB\" SET search_path = public, ml" >/dev/null
	probe plan.yaml post
	expect_rc 0
	expect_out $'ok\ttable external_data_sources\tml.external_data_sources'
}

test_not_valid_fk_fails_until_validated() {
	ml_schema
	psql_db "$TEST_DB" -c "ALTER TABLE prediction_history DROP CONSTRAINT fk_prediction_history_model,
		ADD CONSTRAINT fk_prediction_history_model FOREIGN KEY (model_id) REFERENCES predictive_models(id) NOT VALID" >/dev/null
	ml_plan
	probe plan.yaml post
	expect_rc 1
	expect_err "postconditions failed: foreign key 'fk_prediction_history_model' on 'prediction_history' is not validated"
	expect_err "HINT: validate it once the data is clean: ALTER TABLE prediction_history VALIDATE CONSTRAINT fk_prediction_history_model"
	expect_out $'FAIL\tfk fk_prediction_history_model validated\tnot validated: prediction_history: FOREIGN KEY (model_id) REFERENCES predictive_models(id) NOT VALID'
	expect_items 11 1
	psql_db "$TEST_DB" -c "ALTER TABLE prediction_history VALIDATE CONSTRAINT fk_prediction_history_model" >/dev/null
	probe plan.yaml post
	expect_rc 0
	expect_out $'ok\tfk fk_prediction_history_model validated'
}

test_not_valid_fk_referencing_a_table_from_outside_fails() {
	ml_schema
	psql_db "$TEST_DB" -c "CREATE TABLE model_audit (model_id int);
		ALTER TABLE model_audit ADD CONSTRAINT fk_model_audit_model FOREIGN KEY (model_id) REFERENCES predictive_models(id) NOT VALID" >/dev/null
	ml_plan
	probe plan.yaml post
	expect_rc 1
	expect_err "foreign key 'fk_model_audit_model' on 'model_audit' is not validated"
	# not checked when the plan says so
	printf '  foreign_keys_validated: false\n' >> plan.yaml
	probe plan.yaml post
	expect_rc 0
	expect_no "fk_model_audit_model"
}

test_missing_and_invalid_index_fail() {
	ml_schema
	psql_db "$TEST_DB" -c "DROP INDEX ix_anomaly_detection_results_model_id" >/dev/null
	# what a failed CREATE INDEX CONCURRENTLY leaves behind
	psql_db "$TEST_DB" -c "UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'ix_prediction_history_model_id'::regclass" >/dev/null
	ml_plan
	probe plan.yaml post
	expect_rc 1
	expect_err "postconditions failed: index 'ix_anomaly_detection_results_model_id' does not exist; index 'ix_prediction_history_model_id' is invalid"
	expect_out $'FAIL\tindex ix_anomaly_detection_results_model_id\tdoes not exist'
	expect_out $'FAIL\tindex ix_prediction_history_model_id\tindex ix_prediction_history_model_id on prediction_history(model_id) is INVALID'
	expect_items 11 2
}

test_wrong_kind_of_relation_fails() {
	ml_schema
	psql_db "$TEST_DB" -c "ALTER TABLE external_data_sources RENAME TO eds; CREATE VIEW external_data_sources AS SELECT * FROM eds" >/dev/null
	verify_plan <<'PLAN'
postconditions:
  tables: [external_data_sources]
  indexes: [predictive_models]
PLAN
	probe plan.yaml post
	expect_rc 1
	expect_err "postconditions failed: 'external_data_sources' is a view, not a table; 'predictive_models' is a table, not an index"
}

test_alembic_version_compared_as_a_set() {
	ml_schema
	psql_db "$TEST_DB" -c "INSERT INTO alembic_version VALUES ('0f0f0f0f0f0f')" >/dev/null
	ml_plan
	probe plan.yaml post 0f0f0f0f0f0f,ab12cd34ef56
	expect_rc 0
	expect_out $'ok\talembic_version\tholds 0f0f0f0f0f0f, ab12cd34ef56'
	probe plan.yaml post ab12cd34ef56
	expect_rc 1
	expect_err "postconditions failed: 'alembic_version' holds 0f0f0f0f0f0f, ab12cd34ef56, expected ab12cd34ef56"
	probe plan.yaml post base
	expect_rc 1
	expect_err "expected (none: base)"
}

# ---- hooks ---------------------------------------------------------------

# app/bin/maintenance ARG: records ARG in app/calls; "fail" fails loudly.
hook_script() {
	cat > app/bin/maintenance <<'SH'
#!/bin/sh
echo "$1" >> calls
echo "maintenance: $1"
case $1 in
fail) echo "progress on stdout"; echo "cannot reach the load balancer" >&2
      echo "token was $SECRET_KEY" >&2; exit 1 ;;
sleep) exec sleep 5 ;;
esac
SH
	chmod +x app/bin/maintenance
}

test_hooks_run_in_order_from_the_repository() {
	plan_env
	hook_script
	verify_plan <<'PLAN'
hooks:
  before:
    - {name: maintenance-on, run: [./bin/maintenance, "on"]}
    - {name: flush, run: [./bin/maintenance, flush], timeout: 2s}
  after:
    - {name: maintenance-off, run: [./bin/maintenance, "off"]}
PLAN
	probe -v plan.yaml hooks before
	expect_rc 0
	expect_out $'ok\thook maintenance-on (before)\t\'./bin/maintenance on\' exited 0 in'
	expect_out $'ok\thook flush (before)'
	expect_items 2 0
	# output streamed at debug level
	expect_err "debug: hook 'maintenance-on': maintenance: on"
	probe plan.yaml hooks after
	expect_rc 0
	[[ $(cat app/calls) == $'on\nflush\noff' ]] || fail "calls: $(cat app/calls)"
}

test_failing_hook_is_named_with_its_stderr_and_stops_the_list() {
	plan_env
	hook_script
	verify_plan <<'PLAN'
hooks:
  before:
    - {name: maintenance-on, run: [./bin/maintenance, "on"]}
    - {name: lb-drain, run: [./bin/maintenance, fail]}
    - {name: never, run: [./bin/maintenance, never]}
PLAN
	probe plan.yaml hooks before
	expect_rc 1
	expect_err "dgmigrate: error: hook 'lb-drain' failed: exited with code 1: cannot reach the load balancer | token was ****"
	expect_out $'FAIL\thook lb-drain (before)'
	expect_items 2 1
	expect_no "$SECRET_KEY"
	[[ $(cat app/calls) == $'on\nfail' ]] || fail "calls: $(cat app/calls)"
}

test_hook_past_its_timeout_is_stopped() {
	plan_env
	hook_script
	verify_plan <<'PLAN'
hooks:
  after:
    - {name: slow, run: [./bin/maintenance, sleep], timeout: 300ms}
PLAN
	start=$(date +%s%N)
	probe plan.yaml hooks after
	ms=$(( ($(date +%s%N) - start) / 1000000 ))
	expect_rc 1
	expect_err "hook 'slow' failed: did not finish within 300 ms and was stopped: maintenance: sleep"
	expect_err "HINT: raise the hook's timeout (or timeouts.hook)"
	(( ms < 2500 )) || fail "took $ms ms"
}

test_hook_default_timeout_comes_from_timeouts_hook() {
	plan_env
	hook_script
	verify_plan <<'PLAN'
hooks:
  after:
    - {name: slow, run: [./bin/maintenance, sleep]}
timeouts:
  hook: 200ms
PLAN
	probe plan.yaml hooks after
	expect_rc 1
	expect_err "did not finish within 200 ms"
}

test_missing_hook_program() {
	plan_env
	verify_plan <<'PLAN'
hooks:
  before:
    - {name: maintenance-on, run: [./bin/nope, "on"]}
PLAN
	probe plan.yaml hooks before
	expect_rc 1
	expect_err "hook 'maintenance-on' failed: cannot run './bin/nope': No such file or directory"
	expect_err "without a shell"
}

# ---- health check -----------------------------------------------------------

# serve_www: python's http.server on 127.0.0.1 serving ./www (with
# api/health), stopped when the test ends; sets PORT.
serve_www() {
	local i
	mkdir -p www/api
	printf '{"status":"ok"}\n' > www/api/health
	for ((i = 0; i < 5; i++)); do
		PORT=$(( 20000 + RANDOM % 30000 ))
		python3 -m http.server --bind 127.0.0.1 --directory www "$PORT" >http.log 2>&1 &
		SERVER_PID=$!
		# keep the test's status: the trap's last command would replace it
		trap 's=$?; kill "$SERVER_PID" 2>/dev/null; wait "$SERVER_PID" 2>/dev/null || true; exit $s' EXIT
		if wait_port "$PORT"; then
			return 0
		fi
		kill "$SERVER_PID" 2>/dev/null; wait "$SERVER_PID" 2>/dev/null || true
	done
	fail "cannot start a local HTTP server: $(cat http.log)"
}

wait_port() {
	local i
	for ((i = 0; i < 50; i++)); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		kill -0 "$SERVER_PID" 2>/dev/null || return 1
		sleep 0.05
	done
	return 1
}

# health_plan URL [TIMEOUT [RETRIES]]: no database needed.
health_plan() {
	plan_env
	verify_plan <<PLAN
health_check:
  url: "$1"
  timeout: ${2:-2s}
  interval: 100ms
  retries: ${3:-3}
PLAN
}

test_health_check_passes() {
	serve_www
	export no_proxy=127.0.0.1 NO_PROXY=127.0.0.1
	health_plan "http://127.0.0.1:$PORT/api/health?token=tok-\${SECRET_KEY}"
	probe plan.yaml health
	expect_rc 0
	expect_out $'ok\thealth http://127.0.0.1:'"$PORT"$'/api/health\tHTTP 200: {"status":"ok"} (try 1,'
	expect_no "tok-"
	grep -q 'GET /api/health?token=tok-' http.log || fail "the server saw no GET: $(cat http.log)"
}

test_health_retries_until_the_app_is_up() {
	serve_www
	export no_proxy=127.0.0.1 NO_PROXY=127.0.0.1
	rm www/api/health
	health_plan "http://127.0.0.1:$PORT/api/health" 2s 20
	(sleep 0.3; printf '{"status":"ok"}' > www/api/health) &
	probe plan.yaml health
	wait $!
	expect_rc 0
	expect_err "health check: try 1 of 20: HTTP 404"
	expect_out $'ok\thealth http://127.0.0.1:'"$PORT"$'/api/health\tHTTP 200: {"status":"ok"}'
	expect_no "(try 1,"
}

test_health_without_url_is_a_no_op() {
	plan_env
	verify_plan </dev/null
	probe plan.yaml health
	expect_rc 0
	expect_items 0 0
	expect_no "health"
}

test_health_404_fails_after_the_retries() {
	serve_www
	export no_proxy=127.0.0.1 NO_PROXY=127.0.0.1
	health_plan "http://127.0.0.1:$PORT/api/nope"
	probe plan.yaml health
	expect_rc 1
	expect_err "dgmigrate: error: health check 'http://127.0.0.1:$PORT/api/nope' failed: no 2xx answer after 3 tries in"
	expect_err "; last: HTTP 404"
	[[ $(grep -c 'GET /api/nope' http.log) == 3 ]] || fail "expected 3 GETs: $(cat http.log)"
}

test_health_deadline_stops_the_retries() {
	serve_www
	export no_proxy=127.0.0.1 NO_PROXY=127.0.0.1
	health_plan "http://127.0.0.1:$PORT/api/nope" 250ms 50
	probe plan.yaml health
	expect_rc 1
	expect_err "no 2xx answer within the 250 ms deadline"
	n=$(grep -c 'GET /api/nope' http.log)
	(( n >= 1 && n <= 3 )) || fail "expected at most 3 GETs, got $n"
}

test_health_nothing_listening_gives_transport_error() {
	export no_proxy=127.0.0.1 NO_PROXY=127.0.0.1
	for ((i = 0; i < 20; i++)); do
		port=$(( 20000 + RANDOM % 30000 ))
		(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || break
	done
	health_plan "http://127.0.0.1:$port/api/health" 2s 2
	probe plan.yaml health
	expect_rc 1
	expect_err "health check 'http://127.0.0.1:$port/api/health' failed: no 2xx answer after 2 tries"
	expect_err "last: Failed to connect to 127.0.0.1 port $port"
	expect_err "HINT: check that the application runs and listens at that address"
}
