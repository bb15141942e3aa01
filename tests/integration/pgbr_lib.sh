# pgbr_lib.sh - pgBackRest for integration tests (sourced by t_pgbackrest).
#
# Test names stay short: the socket path (<test folder>/pgc/pg/.s.PGSQL.N)
# must fit in 107 bytes.
#
# pgbr_setup gives the test a PostgreSQL cluster of its own (./pgc: a
# restore point rewinds a whole cluster, so never the file's shared one)
# archiving its WAL to the stanza 'dgm' of a posix repository in ./pgbr,
# with pgBackRest's configuration, lock, log and spool folders there too:
# nothing outside the test's folder. The cluster is stopped when the test
# ends. The repository and configuration belong to the cluster's user
# (postgres when the tests run as root): archive_command runs as it.

PGBR_STANZA=dgm

# pgbr ARGS...: pgbackrest on the test's configuration, as the cluster's user.
pgbr() {
	as_pg pgbackrest --config="$PGBR_CONF" --stanza="$PGBR_STANZA" "$@"
}

# pgbr_conf: write ./pgbr/pgbackrest.conf for the running test cluster.
pgbr_conf() {
	local d=$PWD/pgbr
	mkdir -p "$d/repo" "$d/lock" "$d/log" "$d/spool"
	PGBR_CONF=$d/pgbackrest.conf
	cat >"$PGBR_CONF" <<CONF
[global]
repo1-type=posix
repo1-path=$d/repo
repo1-retention-full=4
lock-path=$d/lock
log-path=$d/log
spool-path=$d/spool
log-level-file=detail
start-fast=y
compress-type=lz4

[$PGBR_STANZA]
pg1-path=$DGM_PGHOST/data
pg1-port=$DGM_PGPORT
pg1-socket-path=$DGM_PGHOST
pg1-user=postgres
CONF
	[[ $(id -u) -ne 0 ]] || chown -R postgres: "$d"
	export PGBR_CONF
}

# pgbr_teardown: stop the test's cluster, and a side instance a failed
# test left running (an EXIT trap of the test).
pgbr_teardown() {
	local side=${PGBR_CLUSTER%/pgc}/pgbr/side/data
	[[ -n ${PGBR_CLUSTER:-} ]] && as_pg "$PGBIN/pg_ctl" -D "$PGBR_CLUSTER/pg/data" -m immediate -w stop >/dev/null 2>&1
	[[ -n ${PGBR_CLUSTER:-} && -f $side/postmaster.pid ]] && as_pg "$PGBIN/pg_ctl" -D "$side" -m immediate -w stop >/dev/null 2>&1
	return 0
}

# pgbr_restart: restart the test's cluster with the options it started with.
pgbr_restart() {
	as_pg "$PGBIN/pg_ctl" -D "$DGM_PGHOST/data" -l "$DGM_PGHOST/server.log" -w -t 60 restart >/dev/null ||
		{ tail -20 "$DGM_PGHOST/server.log" >&2; return 1; }
}

# pgbr_setup [--no-backup]: the cluster, archiving on, stanza-create,
# check and (unless --no-backup) a first full backup.
pgbr_setup() {
	PGBR_CLUSTER=$PWD/pgc
	trap pgbr_teardown EXIT
	cluster_start "$PGBR_CLUSTER"
	pgbr_conf
	pg_admin -q -c "ALTER SYSTEM SET archive_mode = on" \
		-c "ALTER SYSTEM SET archive_command = 'pgbackrest --config=$PGBR_CONF --stanza=$PGBR_STANZA archive-push %p'" \
		-c "ALTER SYSTEM SET wal_level = replica" >/dev/null
	pgbr_restart
	pgbr stanza-create >pgbr/stanza-create.out 2>&1 || { cat pgbr/stanza-create.out >&2; return 1; }
	pgbr check >pgbr/check.out 2>&1 || { cat pgbr/check.out >&2; return 1; }
	[[ ${1:-} == --no-backup ]] && return 0
	pgbr backup --type=full >pgbr/backup.out 2>&1 || { cat pgbr/backup.out >&2; return 1; }
}

# pgbr_break_archiving: archive_command fails from now on (a repository
# that is gone), as a reload, not a restart.
pgbr_break_archiving() {
	pg_admin -q -c "ALTER SYSTEM SET archive_command = 'false'" -c "SELECT pg_reload_conf()" >/dev/null
}

# pgbr_plan [FILE]: the release plan (setup_release's) with
# snapshot.engine: pgbackrest on the test's stanza; $PGBR_PLAN_EXTRA
# lines are added to the pgbackrest section (indented by the caller).
pgbr_plan() {
	local f=${1:-plan.yaml} run_as=""
	[[ $(id -u) -eq 0 ]] && run_as="runuser, -u, postgres, --, "
	sed -i 's/^  directory: backups$/  directory: backups\n  engine: pgbackrest/' "$f"
	mkdir -p pgbr/side && { [[ $(id -u) -ne 0 ]] || chown postgres: pgbr/side; }
	cat >>"$f" <<PLAN
pgbackrest:
  stanza: $PGBR_STANZA
  config: $PGBR_CONF
  command: [${run_as}pgbackrest]
  archive_timeout: ${PGBR_ARCHIVE_TIMEOUT:-10s}
  repository_path: $PWD/pgbr/repo
  min_free: 1MiB
  side:
    directory: $PWD/pgbr/side
    port: $((DGM_PGPORT + 1))
    pg_ctl: [${run_as}$PGBIN/pg_ctl]
${PGBR_PLAN_EXTRA:-}
PLAN
}

# expect_check ok|FAIL NAME TEXT: the preflight line of check NAME says TEXT.
expect_check() {
	grep -E "^  $1 +$2 " <<<"$err" | grep -qF -- "$3" || fail "no '$1 $2: ...$3...' in:
$err"
}
