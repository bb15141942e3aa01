# t_validate.sh - `dgmigrate validate` against a real cluster and the
# fixture repository.

test_valid_plan_passes() {
	setup_release "$TEST_DB"
	run_dgm validate plan.yaml
	expect_rc 0
	expect_err "ok    environment"
	expect_err "ok    tag"
	expect_err "ok    database"
	expect_err "PostgreSQL 15"
	expect_no "$SECRET_KEY"
}

test_json_events() {
	setup_release "$TEST_DB"
	run_dgm validate --json plan.yaml
	expect_rc 0
	expect_out '{"event":"check","name":"database","status":"ok"'
	expect_out '{"event":"valid"}'
}

test_missing_required_variable_is_named_not_shown() {
	setup_release "$TEST_DB"
	unset SECRET_KEY
	run_dgm validate plan.yaml
	expect_rc 2
	expect_err "SECRET_KEY"
}

test_unset_variable_in_plan_names_line() {
	setup_release "$TEST_DB"
	unset DATABASE_URL
	run_dgm validate plan.yaml
	expect_rc 2
	expect_err "plan.yaml:7:8: environment variable 'DATABASE_URL' is not set"
}

test_unknown_tag_lists_tags() {
	setup_release "$TEST_DB"
	write_plan plan.yaml v9.9
	run_dgm validate plan.yaml
	expect_rc 2
	expect_err "no tag or commit 'v9.9'"
	expect_err "v1.5"
}

test_wrong_password_is_clear_and_secret() {
	setup_release "$TEST_DB"
	DATABASE_URL=$(db_url "$TEST_DB" | sed "s/$DGM_PGPASS/wrong-password-123/")
	run_dgm validate plan.yaml
	expect_rc 1
	expect_err "cannot connect to database '$TEST_DB'"
	expect_err "password authentication failed"
	expect_no "wrong-password-123"
}

test_stopped_server_is_clear() {
	setup_release "$TEST_DB"
	DATABASE_URL="postgresql://dgm:$DGM_PGPASS@/$TEST_DB?host=$PWD&port=1"
	run_dgm validate plan.yaml
	expect_rc 1
	expect_err "cannot connect to database '$TEST_DB' on '$PWD:1'"
}

test_dirty_work_tree_is_refused() {
	setup_release "$TEST_DB"
	echo "# local edit" >> app/alembic.ini
	run_dgm validate plan.yaml
	expect_rc 2
	expect_err "uncommitted changes ('alembic.ini')"
}

test_bad_plan_exits_2_with_position() {
	setup_release "$TEST_DB"
	sed -i 's/^  tag:/  tga:/' plan.yaml
	run_dgm validate plan.yaml
	expect_rc 2
	expect_err "plan.yaml:5:3: unknown key 'tga' in 'release'; did you mean 'tag'?"
}

test_secret_in_hook_argv_is_refused() {
	setup_release "$TEST_DB"
	cat >> plan.yaml <<'YAML'
hooks:
  before:
    - name: leak
      run: [echo, "token=${SECRET_KEY}"]
YAML
	run_dgm validate plan.yaml
	expect_rc 2
	expect_err "'hooks.before[0].run' would put the value of secret variable 'SECRET_KEY'"
	expect_no "$SECRET_KEY"
}

# No database.url (or url: ""): libpq's defaults, as psql uses them.
plan_without_url() {
	setup_release "$TEST_DB"
	sed -i -e "s|^  url: .*|  url: \"$1\"|" -e 's/required: \[DATABASE_URL, /required: [/' plan.yaml
	[[ -z $1 ]] || return 0
	sed -i -e '/^  url: ""$/d' -e '/^database:$/d' plan.yaml
	unset DATABASE_URL
	export PGHOST=$DGM_PGHOST PGPORT=$DGM_PGPORT PGUSER=dgm PGDATABASE=$TEST_DB
	export PGPASSFILE=$PWD/pgpass
	printf '*:*:*:dgm:%s\n' "$DGM_PGPASS" > pgpass
	chmod 600 pgpass
}

test_no_url_uses_libpq_variables_and_pgpass() {
	plan_without_url ""
	grep -q 'url' plan.yaml && fail "the plan still names a url"
	run_dgm validate plan.yaml
	expect_rc 0
	run_dgm status plan.yaml
	expect_rc 0
}

test_empty_url_uses_libpq_variables() {
	plan_without_url "x"
	sed -i 's|^  url: "x"|  url: ""|' plan.yaml
	unset DATABASE_URL
	export PGHOST=$DGM_PGHOST PGPORT=$DGM_PGPORT PGUSER=dgm PGDATABASE=$TEST_DB PGPASSWORD=$DGM_PGPASS
	run_dgm validate plan.yaml
	expect_rc 0
}

# PGSERVICE and a service file (PGSERVICEFILE): dgmigrate connects as psql
# does; when the service's values fail, the error says they came from the
# service - also where a PG* variable is set too, since libpq takes the
# service's values first.
test_service_file_connects_and_is_named_when_it_fails() {
	plan_without_url ""
	unset PGHOST PGPORT PGUSER PGDATABASE
	export PGSERVICEFILE=$PWD/pg_service.conf PGSERVICE=appdb
	cat >pg_service.conf <<CONF
# the application's database
[other]
host=/nonexistent
[appdb]
host=$DGM_PGHOST
port=$DGM_PGPORT
user=dgm
dbname=$TEST_DB
CONF
	run_dgm validate plan.yaml
	expect_rc 0
	run_dgm status plan.yaml
	expect_rc 0
	expect_out "alembic_version"
	sed -i 's/^port=.*/port=1/' pg_service.conf
	export PGPORT=$DGM_PGPORT
	run_dgm validate plan.yaml
	expect_rc 1
	expect_err "cannot connect to database '$TEST_DB' on '$DGM_PGHOST:1' as 'dgm' (host from service 'appdb', port from service 'appdb', user from service 'appdb', dbname from service 'appdb')"
	expect_err "PGSERVICE (the service file's section of the service)"
	expect_no "port from PGPORT"
}

# A wrong password that libpq took from the password file (PGPASSFILE):
# the error and its hint name that file, not the plan.
test_wrong_password_from_pgpass_is_named() {
	plan_without_url ""
	printf '*:*:*:dgm:wrong-%s\n' "$RANDOM" > pgpass
	run_dgm validate plan.yaml
	expect_rc 1
	expect_err "password authentication failed for user \"dgm\""
	expect_err "password from the password file '$PWD/pgpass'"
	expect_err "the password libpq sent came from the password file '$PWD/pgpass' (PGPASSFILE)"
	expect_no "wrong-"
	# a password the plan's URL gives is not blamed on the file
	printf 'database:\n  url: "postgresql://dgm:bad-pw@/%s?host=%s&port=%s"\n' "$TEST_DB" "$DGM_PGHOST" \
		"$DGM_PGPORT" >>plan.yaml
	run_dgm validate plan.yaml
	expect_rc 1
	expect_err "password authentication failed"
	expect_no "password file"
}

test_connection_error_names_what_libpq_used_and_why() {
	plan_without_url ""
	export PGPORT=1
	run_dgm validate plan.yaml
	expect_rc 1
	expect_err "cannot connect to database '$TEST_DB' on '$DGM_PGHOST:1' as 'dgm'"
	expect_err "port from PGPORT"
	expect_err "dbname from PGDATABASE"
	expect_err "libpq's defaults apply"
	expect_no 'DATABASE_URL'
}
