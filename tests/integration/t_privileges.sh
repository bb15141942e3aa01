# t_privileges.sh - what the plan's role may do decides how the snapshot
# is taken and how a restore puts it back; a restore gives back the whole
# database (ACL, settings, comment, limits, history), not just its tables.

V15_HEAD=5e9f3b7a1c62

# as_role_release DB: like setup_release, but dgmigrate and alembic connect
# as a role of their own: LOGIN, no CREATEDB, not a superuser, owner of DB.
as_role_release() {
	local db=$1
	APP_ROLE="app_$(md5sum <<<"$db" | cut -c1-10)"
	APP_PASS="app-$RANDOM$RANDOM-pw"
	pg_admin -q -c "SET client_min_messages = warning" \
		-c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" -c "DROP ROLE IF EXISTS $APP_ROLE" \
		-c "CREATE ROLE $APP_ROLE LOGIN PASSWORD '$APP_PASS' NOCREATEDB NOSUPERUSER" \
		-c "CREATE DATABASE \"$db\" OWNER $APP_ROLE" >/dev/null
	cp -a "$FIXTURE_APP" app
	mkdir -p models/classifier && printf '{"kind":"demo"}\n' > models/classifier/meta.json
	export DATABASE_URL
	DATABASE_URL=$(printf 'postgresql://%s:%s@/%s?host=%s&port=%s' "$APP_ROLE" "$APP_PASS" "$db" \
		"$DGM_PGHOST" "$DGM_PGPORT")
	export ML_MODEL_STORAGE_PATH=$PWD/models
	export SECRET_KEY="sk-$RANDOM$RANDOM-value"
	write_plan plan.yaml
	migrate_app app head
	psql_db "$db" -c "INSERT INTO organizations (name, slug) SELECT 'org ' || g, 'org-' || g FROM generate_series(1, 20) g" >/dev/null
}

# Database-level state a restore must keep: ACL (CONNECT no longer open to
# PUBLIC), per-database and per-role-in-database settings, comment,
# connection limit.
set_db_state() {
	local db=$1 reader="rd_$(md5sum <<<"$1" | cut -c1-10)"
	pg_admin -q -c "SET client_min_messages = warning" -c "DROP ROLE IF EXISTS $reader" \
		-c "CREATE ROLE $reader LOGIN" \
		-c "REVOKE CONNECT, TEMPORARY ON DATABASE \"$db\" FROM PUBLIC" \
		-c "GRANT CONNECT ON DATABASE \"$db\" TO $reader" \
		-c "ALTER DATABASE \"$db\" SET work_mem = '12MB'" \
		-c "ALTER DATABASE \"$db\" SET search_path = \"\$user\", public, extra" \
		-c "ALTER ROLE $reader IN DATABASE \"$db\" SET statement_timeout = '5s'" \
		-c "COMMENT ON DATABASE \"$db\" IS 'orders, it''s ours'" \
		-c "ALTER DATABASE \"$db\" CONNECTION LIMIT 40" >/dev/null
}

db_state() {
	psql_db postgres -c "SELECT pg_get_userbyid(datdba), datacl, datconnlimit, datallowconn,
		datistemplate, dattablespace, shobj_description(oid, 'pg_database') FROM pg_database
		WHERE datname = '$1'" -c "SELECT coalesce(nullif(pg_get_userbyid(s.setrole), 'unknown (OID=0)'), '-'),
		s.setconfig FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase
		WHERE d.datname = '$1' ORDER BY 1"
}

revisions() { psql_db "$TEST_DB" -c "SELECT string_agg(version_num, ',' ORDER BY 1) FROM alembic_version"; }

# apply, a row written after it, rollback --restore --accept-data-loss:
# the database is the snapshot's, its state as before, its history whole.
apply_then_restore() {
	local fp_before state_before
	set_db_state "$TEST_DB"
	fp_before=$(db_fingerprint "$TEST_DB")
	state_before=$(db_state "$TEST_DB")
	run_dgm apply plan.yaml
	expect_rc 0
	apply_err=$err
	psql_db "$TEST_DB" -c "INSERT INTO organizations (name, slug) VALUES ('after', 'after')" >/dev/null
	run_dgm rollback --to v1.5 plan.yaml --restore --accept-data-loss --reason "undo it"
	expect_rc 0
	rollback_err=$err
	[[ $(revisions) == "$V15_HEAD" ]] || fail "alembic_version: $(revisions)"
	[[ "$(db_fingerprint "$TEST_DB")" == "$fp_before" ]] || fail "the database differs from the snapshot"
	[[ "$(db_state "$TEST_DB")" == "$state_before" ]] ||
		fail "database-level state changed: before
$state_before
after
$(db_state "$TEST_DB")"
	run_dgm history plan.yaml
	expect_rc 0
	[[ $(awk '$2 == "apply" && $4 == "success"' <<<"$out" | wc -l) == 1 ]] ||
		fail "history lost the apply:
$out"
	grep -q ' rollback .*undo it$' <<<"$out" || fail "history lacks the rollback:
$out"
}

test_preflight_says_dump_and_in_place_for_a_role_without_createdb() {
	as_role_release "$TEST_DB"
	run_dgm apply plan.yaml --dry-run
	expect_rc 0
	expect_err "role '$APP_ROLE' (no CREATEDB, owns '$TEST_DB'): snapshot by pg_dump"
	expect_err "restore in place (pg_restore --clean in one transaction)"
	expect_err "warning: no server-side copy (role '$APP_ROLE' has no CREATEDB)"
	[[ $(revisions) == "$V15_HEAD" ]] || fail "the dry run changed the database"
}

test_role_without_createdb_restores_in_place_and_keeps_everything() {
	as_role_release "$TEST_DB"
	apply_then_restore
	grep -qF "has no CREATEDB: snapshot '" <<<"$rollback_err" && grep -qF "is restored in place" <<<"$rollback_err" ||
		fail "no warning that the restore runs in place: $rollback_err"
	# the fallbacks are in the run reports, not only on the terminal
	grep -l "restored in place" backups/state/reports/*.md >/dev/null || fail "no warning in the rollback's report"
	grep -l "no server-side copy" backups/state/reports/*.md >/dev/null || fail "no warning in the apply's report"
	# the copy that preflight knew was impossible is not even tried
	grep -qF "no server-side copy of '$TEST_DB' (role '$APP_ROLE' has no CREATEDB)" <<<"$apply_err" &&
		! grep -q "permission denied to create database" <<<"$apply_err" ||
		fail "apply tried a CREATE DATABASE the role may not run: $apply_err"
}

test_in_place_restore_that_fails_leaves_the_database_as_it_was() {
	as_role_release "$TEST_DB"
	# a table of another role the plan's role belongs to: in the dump, with
	# its owner; by the time of the restore the role has left that role,
	# so the script fails half-way, after everything was dropped
	pg_admin -q -c "SET client_min_messages = warning" -c "DROP ROLE IF EXISTS ${APP_ROLE}_legacy" \
		-c "CREATE ROLE ${APP_ROLE}_legacy" -c "GRANT ${APP_ROLE}_legacy TO $APP_ROLE" >/dev/null
	psql_db "$TEST_DB" -c "CREATE TABLE public.legacy (id int)" \
		-c "ALTER TABLE public.legacy OWNER TO ${APP_ROLE}_legacy" >/dev/null
	run_dgm apply plan.yaml
	expect_rc 0
	psql_db "$TEST_DB" -c "DROP TABLE public.legacy" -c "REVOKE ${APP_ROLE}_legacy FROM $APP_ROLE" >/dev/null
	before=$(db_fingerprint "$TEST_DB")
	run_dgm rollback --to v1.5 plan.yaml --restore --accept-data-loss
	expect_rc 1
	expect_err "restore in place failed, database unchanged"
	expect_err "must be member of role \"${APP_ROLE}_legacy\""
	[[ "$(db_fingerprint "$TEST_DB")" == "$before" ]] || fail "the failed restore changed the database"
	[[ $(git -C app rev-parse HEAD) == $(git -C app rev-parse 'v1.6^{commit}') ]] ||
		fail "HEAD moved before the database reached v1.5"
	# the cause fixed, the same rollback run again converges (issue 11.3);
	# the table's owner also needs CREATE on its schema (PostgreSQL checks
	# it when a role that is not a superuser gives the table to it)
	PGADMIN_DB=$TEST_DB pg_admin -q -c "GRANT ${APP_ROLE}_legacy TO $APP_ROLE" \
		-c "GRANT CREATE ON SCHEMA public TO ${APP_ROLE}_legacy" >/dev/null
	run_dgm rollback --to v1.5 plan.yaml --restore --accept-data-loss
	expect_rc 0
	[[ $(revisions) == 5e9f3b7a1c62 ]] || fail "alembic_version: $(revisions)"
	[[ $(git -C app rev-parse HEAD) == $(git -C app rev-parse 'v1.5^{commit}') ]] || fail "HEAD is not at v1.5"
	[[ $(psql_db "$TEST_DB" -c "SELECT tableowner FROM pg_tables WHERE tablename = 'legacy'") == "${APP_ROLE}_legacy" ]] ||
		fail "the snapshot's table of the other role was not restored"
}

test_no_restore_path_is_refused_before_any_change() {
	as_role_release "$TEST_DB"
	# a table the role may read but not drop: no restore in place either
	psql_db "$TEST_DB" -c "CREATE TABLE public.audit_log (id int)" \
		-c "GRANT SELECT ON public.audit_log TO $APP_ROLE" >/dev/null
	before=$(db_fingerprint "$TEST_DB")
	head=$(git -C app rev-parse HEAD)
	run_dgm apply plan.yaml
	expect_rc 1
	expect_err "role '$APP_ROLE' could not restore database '$TEST_DB' if the release had to be undone"
	expect_err "cannot drop relation audit_log (owner postgres)"
	expect_err "snapshot.allow_no_restore"
	[[ "$(db_fingerprint "$TEST_DB")" == "$before" ]] || fail "the database changed"
	[[ $(git -C app rev-parse HEAD) == "$head" ]] || fail "HEAD moved"
	[[ -z $(ls backups | grep -v '^state$') ]] || fail "a snapshot was taken: $(ls backups)"
	# said explicitly in the plan, the apply may go on without a way back
	sed -i 's/^  directory: backups$/&\n  allow_no_restore: true/' plan.yaml
	run_dgm apply plan.yaml --dry-run
	expect_rc 0
	expect_err "warning: snapshot.allow_no_restore: role '$APP_ROLE' has no CREATEDB"
	expect_err "no restore possible"
}

test_restore_by_swap_keeps_database_state_and_history() {
	setup_release "$TEST_DB"
	migrate_app app head
	apply_then_restore
	# the superuser restored beside the database, from apply's copy
	err=$rollback_err
	expect_err "(a copy of '${TEST_DB:0:30}_dgm_snap_"
	expect_err "takes the owner, ACL, settings, comment and limits of '$TEST_DB'"
}

# A DBA's grant on one of PostgreSQL's own functions (what the pgbackrest
# engine asks for) is in the dump; only a superuser may give it again, so
# pg_restore as the application's role stopped at it and the restore
# failed (seen on the full-stack FastAPI template). It is left out, named.
grant_switch_wal() {
	PGADMIN_DB=$TEST_DB pg_admin -q -c "GRANT EXECUTE ON FUNCTION pg_switch_wal() TO $APP_ROLE"
}
can_switch_wal() {
	[[ $(psql_db "$TEST_DB" -c "SELECT has_function_privilege('$APP_ROLE', 'pg_switch_wal()', 'EXECUTE')") == t ]]
}

test_beside_restore_skips_a_grant_on_a_postgres_function() {
	as_role_release "$TEST_DB"
	pg_admin -q -c "ALTER ROLE $APP_ROLE CREATEDB"
	grant_switch_wal
	# no server-side copy: the restore is pg_restore of the dump
	sed -i 's/^  directory: backups$/  directory: backups\n  keep_copies: 0/' plan.yaml
	run_dgm apply plan.yaml
	expect_rc 0
	run_dgm rollback --to v1.5 plan.yaml --restore --accept-data-loss
	expect_rc 0
	expect_err "not restoring 1 grant on PostgreSQL's own functions (FUNCTION pg_switch_wal())"
	[[ $(revisions) == "$V15_HEAD" ]] || fail "alembic_version: $(revisions)"
}

test_in_place_restore_skips_a_grant_on_a_postgres_function() {
	as_role_release "$TEST_DB"
	grant_switch_wal
	run_dgm apply plan.yaml
	expect_rc 0
	run_dgm rollback --to v1.5 plan.yaml --restore --accept-data-loss
	expect_rc 0
	[[ $(revisions) == "$V15_HEAD" ]] || fail "alembic_version: $(revisions)"
	# in place, the database keeps the grant it had
	can_switch_wal || fail "the grant on pg_switch_wal() was lost"
}
