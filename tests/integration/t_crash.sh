# t_crash.sh - apply and rollback killed (SIGKILL to the process group) at
# step boundaries and at points inside the snapshot, the server-side copy,
# the upgrade, the downgrade and the store restore, and in the steps of a
# copy-first apply (the dump of the copy beside the release), then
# `resume`; and the server stopped in the middle of the upgrade. Every point is reached for
# sure, never after a sleep: DGMIGRATE_FAULT_KILL_AT (a step boundary),
# DGMIGRATE_FAULT_WAIT_AT (dgmigrate waits at a named point), or a table
# lock the test holds, which stops alembic inside its transaction.
#
# After each kill and resume: the database exactly at one release
# (revisions, schema fingerprint, row checksums), HEAD the same release, the
# model store as it was, the lock free, every journal ended exactly once,
# one history row per finished run with the journal's outcome.
#
# Trials share one database and run in sequence: a settled v1.5 is the
# start of the next apply trial, a v1.6 of the next rollback trial.

source "$ROOT/tests/integration/settled_lib.sh"

source "$ROOT/tests/integration/held_lib.sh"

# kill_at_step STEP ARGS...: killed right after the journal says STEP started.
kill_at_step() {
	DGMIGRATE_FAULT_KILL_AT=$1 run_dgm "${@:2}"
	[[ $rc == 137 ]] || fail "expected the run to be killed at $1, exit $rc: $err"
}

# ---- alembic stopped inside its transaction by a lock the test holds ----

other_lockers() {
	[[ $(psql_db "$TEST_DB" -c "SELECT count(*) FROM pg_locks WHERE relation = '$1'::regclass
		AND pid <> pg_backend_pid() AND $2") != 0 ]]
}

# hold_lock TABLE: a session that holds ACCESS SHARE on TABLE until
# release_lock: the upgrade's ALTER TABLE (or the downgrade's DROP TABLE)
# of it waits, after the revisions before it ran in the same transaction.
hold_lock() {
	rm -f lock.fifo && mkfifo lock.fifo
	PGADMIN_DB=$TEST_DB pg_admin -q <lock.fifo >lock.out 2>&1 &
	lockpid=$!
	exec 8>lock.fifo
	echo "BEGIN; LOCK TABLE $1 IN ACCESS SHARE MODE;" >&8
	wait_until "the test's lock on $1" other_lockers "$1" granted
}

release_lock() {
	exec 8>&-
	wait "$lockpid" 2>/dev/null || true
	rm -f lock.fifo
}

# A killed alembic's backend ends once it may go on and finds its client
# gone; it holds the transaction that changed nothing until then.
no_other_sessions() {
	[[ $(psql_db "$TEST_DB" -c "SELECT count(*) FROM pg_stat_activity WHERE datname =
		current_database() AND pid <> pg_backend_pid()") == 0 ]]
}

# stop_in_alembic VERB TABLE ARGS...: the run's alembic VERB waits for
# TABLE's lock: provably inside the migration.
stop_in_alembic() {
	start_at "alembic.$1" "${@:3}"
	hold_lock "$2"
	rm -f wait.flag
	wait_until "alembic to wait for $2" other_lockers "$2" "NOT granted"
}

# kill_in_alembic VERB TABLE ARGS...
kill_in_alembic() {
	stop_in_alembic "$@"
	kill_group
	release_lock
	wait_until "the killed alembic's session to end" no_other_sessions
}

# ---- the release before and after (settled_lib.sh: what "settled" means) ----

# crash_setup [15]: the app at v1.5 with rows and a store; then one real
# apply for v1.6's fingerprint (not with 15).
crash_setup() {
	setup_release "$TEST_DB"
	printf 'timeouts: {lock_timeout: 10m}\n' >>plan.yaml
	migrate_app app head
	psql_db "$TEST_DB" -c "INSERT INTO organizations (name, slug, plan) VALUES ('a', 'a',
		'enterprise'), ('b', 'b', 'free')" >/dev/null
	printf 'weights\n' >models/classifier/weights.bin
	fp15=$(fingerprint)
	head15=$(git -C app rev-parse HEAD)
	head16=$(git -C app rev-parse 'v1.6^{commit}')
	store=$(store_fp)
	at=15
	[[ ${1:-} == 15 ]] && return 0
	run_dgm apply plan.yaml
	expect_rc 0
	fp16=$(fingerprint)
	expect_settled
}

to_v16() { run_dgm apply plan.yaml; expect_rc 0; expect_settled; [[ $at == 16 ]]; }

# An application writes to the store after the release: the rollback
# must put back the release's store (a real swap, not "identical").
touch_store() { printf 'retrained\n' >models/classifier/weights.bin; }

# One sequence on one database, the most telling points (the step
# boundaries are t_resume's): a settled v1.6 starts a rollback trial, a
# settled v1.5 an apply trial.
test_apply_and_rollback_killed_anywhere_are_settled() {
	crash_setup
	# inside the rollback's safety snapshot: the server-side copy made
	touch_store; kill_at snapshot.copied rollback --to v1.5 plan.yaml; settle
	[[ $at == 15 ]] || fail "a resumed rollback ends at the tag"
	# inside the apply's snapshot: parts written, not yet verified
	kill_at snapshot.taken apply plan.yaml; settle
	# inside the upgrade's transaction
	kill_in_alembic upgrade users apply plan.yaml; settle
	[[ $at == 15 ]] || fail "an upgrade killed mid-transaction cannot have finished"
	# inside the apply's server-side copy, then after the upgrade finished
	kill_at snapshot.copied apply plan.yaml; settle
	kill_at_step postconditions apply plan.yaml; settle
	[[ $at == 16 ]] || fail "an apply killed after its upgrade is completed"
	# inside the downgrade (steps before it committed, one waiting)
	touch_store; kill_in_alembic downgrade external_data_sources rollback --to v1.5 plan.yaml
	settle
	to_v16
	# inside the store's restore: swapped, what it replaced not yet dropped
	touch_store; kill_at restore.swapped rollback --to v1.5 plan.yaml; settle
	[[ $at == 15 ]]
}

# ---- the step boundaries of hooks, health, the archive, the undo and restores ----

# serve_health: python's http.server on 127.0.0.1 answering /health (the
# plan's health check), stopped when the test ends; sets PORT.
serve_health() {
	local i
	mkdir -p www && printf 'ok\n' >www/health
	for ((i = 0; i < 5; i++)); do
		PORT=$(( 20000 + RANDOM % 30000 ))
		python3 -m http.server --bind 127.0.0.1 --directory www "$PORT" >http.log 2>&1 &
		http_pid=$!
		trap 's=$?; kill "$http_pid" 2>/dev/null; wait "$http_pid" 2>/dev/null || true; exit $s' EXIT
		wait_until "the health server" port_open && return 0
	done
	fail "cannot start a local HTTP server: $(cat http.log)"
}

port_open() {
	(exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null
}

# A plan with hooks before and after and a health check; bad.yaml is the
# same plan with a postcondition that never holds: its apply fails after
# the upgrade and undoes itself, and so does a resume of it.
hooks_and_health_plans() {
	cat >>plan.yaml <<PLAN
hooks:
  before:
    - {name: maintenance-on, run: [touch, "$PWD/maintenance"]}
  after:
    - {name: maintenance-off, run: [rm, -f, "$PWD/maintenance"]}
health_check:
  url: "http://127.0.0.1:$PORT/health"
  timeout: 5s
  interval: 100ms
  retries: 3
PLAN
	sed 's/^  tables: \[/  tables: [no_such_table, /' plan.yaml >bad.yaml
	grep -q no_such_table bad.yaml || fail "bad.yaml has no failing postcondition"
}

# Killed as each step starts (DGMIGRATE_FAULT_KILL_AT), then resume; the
# trials follow each other on one database. The apply's undo is reached
# through bad.yaml (a postcondition that fails after the upgrade), and
# its resume undoes it again from wherever the killed undo stopped.
test_killed_at_every_other_step_boundary_is_settled() {
	crash_setup 15
	serve_health
	hooks_and_health_plans
	run_dgm apply plan.yaml
	expect_rc 0
	fp16=$(fingerprint)
	expect_settled
	[[ $at == 16 ]]
	# each trial: the release it settles at, the step it is killed at,
	# "bad" for bad.yaml, the command
	local trial
	for trial in \
		"15 restore.store rollback --to v1.5" \
		"15 hooks.before apply" \
		"15 archive apply" \
		"16 hooks.after apply" \
		"15 checkout.code rollback --to v1.5" \
		"16 health apply" \
		"15 restore rollback --to v1.5 --restore" \
		"15 undo.database bad apply" \
		"15 undo.code bad apply" \
		"15 undo.store bad apply"; do
		set -- $trial
		local want=$1 step=$2 plan=plan.yaml
		shift 2
		if [[ $1 == bad ]]; then plan=bad.yaml; shift; fi
		[[ $step == restore* ]] && touch_store
		# a rollback whose work tree holds other code checks out the
		# release's first (checkout.code)
		[[ $step == checkout.code ]] && git -C app checkout -q v1.5
		kill_at_step "$step" "$@" "$plan"
		settle "$plan"
		[[ $at == "$want" ]] || fail "killed at $step: settled at v1.$at, not v1.$want"
		[[ ! -e maintenance ]] || fail "killed at $step: hooks.after never ran after hooks.before"
	done
}

# ---- copy-first apply: the dump of the server-side copy beside the release ----

journal_has() { grep -q "$1" "$(ls -t backups/state/journal/*.jsonl | head -n 1)"; }
# no hooks.after in these plans: live once the store archive is in
live() { journal_has '"step":"archive","phase":"done"'; }
newest_apply_snapshot() { grep -l '"kind": "pre-apply"' backups/*/manifest.json | sort | tail -n 1; }
posted() { journal_has '"step":"postconditions","phase":"done"'; }
expect_archive_added() {
	[[ $(jq -r .model_store.entries "$(newest_apply_snapshot)") -ge 1 ]] ||
		fail "the snapshot has no store archive: $(jq -c .model_store "$(newest_apply_snapshot)")"
}
expect_dump_added() {
	[[ $(jq -r .database.format "$(newest_apply_snapshot)") == directory ]] ||
		fail "the snapshot has no dump: $(jq -c .database "$(newest_apply_snapshot)")"
}
to_v15() { run_dgm rollback --to v1.5 plan.yaml; expect_rc 0; expect_settled; [[ $at == 15 ]]; }

# The release goes live while the dump is held (DGMIGRATE_FAULT_WAIT_AT=
# snapshot.dump); killed then, or inside that pg_dump once let go, resume
# completes the run with its dump; killed upgraded while the store archive
# is held, resume completes it with its archive; killed as the dump step
# starts (before the checkout), resume undoes it.
test_copy_first_apply_killed_in_its_new_steps_is_settled() {
	crash_setup
	to_v15
	start_at snapshot.archive apply plan.yaml
	wait_until "the postconditions to pass" posted
	kill_group; settle
	[[ $at == 16 ]] || fail "an apply killed after its upgrade is completed"
	expect_archive_added
	expect_dump_added
	to_v15
	start_at snapshot.dump apply plan.yaml
	wait_until "the release to go live" live
	kill_group; settle
	[[ $at == 16 ]] || fail "an apply killed once live is completed"
	expect_dump_added
	to_v15
	DGMIGRATE_FAULT_KILL_AT=snapshot-dump start_at snapshot.dump apply plan.yaml
	wait_until "the release to go live" live
	rm -f wait.flag
	wait "$bgpid" && rc=0 || rc=$?
	[[ $rc == 137 ]] || fail "expected the run to be killed inside pg_dump, exit $rc: $(tail -3 bg.err)"
	settle
	[[ $at == 16 ]] || fail "an apply killed inside its dump once live is completed"
	expect_dump_added
	to_v15
	kill_at_step dump apply plan.yaml; settle
	[[ $at == 15 ]] || fail "an apply killed before its checkout is undone"
}

# As cluster_start started it (lib.sh), on the same socket and port.
cluster_restart() { cluster_ensure; }

test_server_stopped_during_the_upgrade_leaves_the_run_to_resume() {
	crash_setup 15
	trap cluster_restart EXIT   # the other tests need the server
	stop_in_alembic upgrade users apply plan.yaml
	as_pg "$PGBIN/pg_ctl" -D "$DGM_PGHOST/data" -m fast -w stop >/dev/null
	wait "$bgpid" && rc=0 || rc=$?
	release_lock
	err=$(cat bg.err)
	expect_rc 1
	# the first cause, then the undo's, and the way forward
	grep -qE '^dgmigrate: error: alembic upgrade' <<<"$err" || fail "the first cause is lost: $err"
	expect_err "and the rollback failed too"
	expect_err "dgmigrate resume PLAN"
	# the code and the store went back without the database; the run is open
	[[ $(git -C app rev-parse HEAD) == "$head15" ]] || fail "HEAD was not put back"
	[[ $(store_fp) == "$store" ]] || fail "the model store is not as it was"
	j=$(ls -t backups/state/journal/*.jsonl | head -1)
	! grep -q '"type":"end"' "$j" || fail "the journal was ended: $(tail -2 "$j")"
	grep -q '"step":"undo.code","phase":"done"' "$j" || fail "undo.code not journaled"
	cluster_restart
	trap - EXIT
	settle
	[[ $at == 15 ]]
	[[ $(journal_outcome "$j") == rolled-back ]] || fail "resume ended it '$(journal_outcome "$j")'"
}

# Alembic runs untracked revision files: refused before anything changes.
test_untracked_revision_files_are_refused() {
	setup_release "$TEST_DB"
	migrate_app app head
	cat >app/migrations/versions/ffff00000000_stray.py <<'PY'
revision = "ffff00000000"
down_revision = "5e9f3b7a1c62"
def upgrade(): pass
def downgrade(): pass
PY
	run_dgm validate plan.yaml
	expect_rc 2
	expect_err "untracked file in the Alembic version folders"
	expect_err "migrations/versions/ffff00000000_stray.py"
	run_dgm apply plan.yaml
	expect_rc 2
	expect_err "ffff00000000_stray.py"
	[[ $(revisions) == "$V15" ]] || fail "the apply changed the database"
	# the rollback's downgrade runs with the work tree's scripts too
	run_dgm rollback --to v1.5 plan.yaml
	expect_rc 2
	expect_err "ffff00000000_stray.py"
	# ignored is no better when alembic would run it; __pycache__ is fine
	mv app/migrations/versions/ffff00000000_stray.py app/migrations/versions/stray_ignored.py
	mkdir -p app/.git/info && echo 'stray_ignored.py' >>app/.git/info/exclude
	run_dgm validate plan.yaml
	expect_rc 2
	expect_err "stray_ignored.py"
	rm app/migrations/versions/stray_ignored.py
	run_dgm validate plan.yaml
	expect_rc 0
}
