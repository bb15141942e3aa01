# t_journal.sh - the journal can be trusted: secrets never break it, only
# the lock holder writes to it, every interrupted run is settled by
# `resume` (even one killed right after it began), damaged journals are
# reported rather than crashing, and the history keeps real times.

JOURNALS=backups/state/journal

prepare_v15() {
	setup_release "$TEST_DB"
	migrate_app app head
	head_v15=$(git -C app rev-parse HEAD)
}

revisions() { psql_db "$TEST_DB" -c "SELECT string_agg(version_num, ',' ORDER BY 1) FROM alembic_version"; }

expect_at_v15() {
	[[ $(revisions) == 5e9f3b7a1c62 ]] || fail "alembic_version: $(revisions)"
	[[ $(git -C app rev-parse HEAD) == "$head_v15" ]] || fail "HEAD is not v1.5"
}

expect_at_v16() {
	[[ $(revisions) == b6e14d8a0f97 ]] || fail "alembic_version: $(revisions)"
	[[ $(git -C app rev-parse HEAD) == $(git -C app rev-parse 'v1.6^{commit}') ]] || fail "HEAD is not v1.6"
}

# every_line_is_json FILE...: each line of each file parses as JSON.
every_line_is_json() {
	python3 - "$@" <<'PY' || fail "a line is not JSON (see above)"
import json, sys
for path in sys.argv[1:]:
    for n, line in enumerate(open(path), 1):
        try:
            json.loads(line)
        except ValueError:
            sys.exit(f"{path}:{n}: not JSON: {line.strip()}")
PY
}

# The plan also requires TOKEN_* variables whose values look like JSON:
# their names make them secrets, so these test the masking itself.
secret_like_json() {
	export TOKEN_T=true TOKEN_F=false TOKEN_N=null TOKEN_0=0 TOKEN_1=1 TOKEN_Q='"' TOKEN_B='\'
	export TOKEN_QB='q"b\s'
	sed -i 's/^  required: \[\(.*\)\]/  required: [\1, TOKEN_T, TOKEN_F, TOKEN_N, TOKEN_0, TOKEN_1, TOKEN_Q, TOKEN_B, TOKEN_QB]/' plan.yaml
	grep -q TOKEN_QB plan.yaml || fail "plan not changed"
}

# Issue 18.1: a rollback killed at its downgrade is resumed although the
# journal's records hold true/false literals equal to secret values.
test_secrets_like_json_literals_keep_the_journal_valid() {
	prepare_v15
	secret_like_json
	run_dgm apply plan.yaml --json
	expect_rc 0
	python3 -c '
import json, sys
for line in sys.stdin:
    json.loads(line)' <<<"$out" || fail "a --json event is not JSON: $out"
	DGMIGRATE_FAULT_KILL_AT=downgrade run_dgm rollback --to v1.5 plan.yaml
	[[ $rc == 137 ]] || fail "expected the rollback to be killed, exit $rc: $err"
	run_dgm resume plan.yaml
	expect_rc 0
	expect_at_v15
	every_line_is_json "$JOURNALS"/*.jsonl
	python3 -c 'import json, sys; [json.load(open(p)) for p in sys.argv[1:]]' \
		backups/state/reports/*.json || fail "a report is not JSON"
	! grep -qF 'q"b\s' "$JOURNALS"/*.jsonl backups/state/reports/*.json || fail "a secret leaked"
	! grep -qF 'q\"b\\s' "$JOURNALS"/*.jsonl backups/state/reports/*.json || fail "a secret leaked escaped"
	# every run reached the history (its report is valid jsonb)
	[[ $(psql_db "$TEST_DB" -c "SELECT count(*) FROM dgmigrate.runs WHERE outcome = 'success'") -eq 2 ]] ||
		fail "history rows: $(psql_db "$TEST_DB" -c "SELECT run_id, outcome FROM dgmigrate.runs")"
}

# ---- a live run's lock, held from psql as src/pg/lock.c takes it ----
hold_lock() {
	rm -f lock.fifo
	mkfifo lock.fifo
	pg_admin -q <lock.fifo >/dev/null 2>&1 &
	lock_pid=$!
	exec 7>lock.fifo
	echo "SET application_name = 'live-run'; SELECT pg_advisory_lock(1684500333, hashtext('$TEST_DB'));" >&7
	for _ in $(seq 200); do
		[[ $(psql_db postgres -c "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted") -ge 1 ]] && return 0
		sleep 0.05
	done
	fail "the lock was not taken"
}

release_lock() {
	exec 7>&-
	wait "$lock_pid" || true
	for _ in $(seq 200); do
		[[ $(psql_db postgres -c "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'") -eq 0 ]] && return 0
		sleep 0.05
	done
	fail "the lock was not released"
}

journal_state() { (cd "$JOURNALS" && ls -1 && cat -- *.jsonl) | sha256sum; }

# Issue 18.2: resume while another run holds the lock writes nothing.
resume_waits_for_the_lock() {
	local before
	before=$(journal_state)
	hold_lock
	run_dgm resume plan.yaml
	expect_rc 3
	expect_err "locked by another run: 'live-run'"
	[[ $(journal_state) == "$before" ]] || fail "resume wrote to a journal without the lock"
	release_lock
	run_dgm resume plan.yaml
	expect_rc 0
	run_dgm resume plan.yaml
	expect_err "nothing to resume"
}

test_resume_leaves_a_locked_apply_journal_alone() {
	prepare_v15
	DGMIGRATE_FAULT_KILL_AT=migrate run_dgm apply plan.yaml
	[[ $rc == 137 ]] || fail "expected the apply to be killed, exit $rc: $err"
	resume_waits_for_the_lock
	expect_at_v15
}

test_resume_leaves_a_locked_rollback_journal_alone() {
	prepare_v15
	run_dgm apply plan.yaml
	expect_rc 0
	DGMIGRATE_FAULT_KILL_AT=downgrade run_dgm rollback --to v1.5 plan.yaml
	[[ $rc == 137 ]] || fail "expected the rollback to be killed, exit $rc: $err"
	resume_waits_for_the_lock
	expect_at_v15
}

# A run that loses the lock leaves no journal that resume could take for
# an unfinished run (nor any other).
test_a_run_without_the_lock_writes_no_journal() {
	prepare_v15
	run_dgm apply plan.yaml
	expect_rc 0
	before=$(journal_state)
	hold_lock
	run_dgm apply plan.yaml
	expect_rc 3
	run_dgm rollback --to v1.5 plan.yaml
	expect_rc 3
	expect_err "locked by another run: 'live-run'"
	[[ $(journal_state) == "$before" ]] || fail "a run without the lock wrote a journal"
	release_lock
	expect_at_v16
}

# Issue 18.5: a rollback killed right after its begin record changed
# nothing; resume ends its journal, also after the rollback was re-run.
test_rollback_killed_after_begin_is_ended_by_resume() {
	prepare_v15
	run_dgm apply plan.yaml
	expect_rc 0
	DGMIGRATE_FAULT_KILL_AT=begin run_dgm rollback --to v1.5 plan.yaml
	[[ $rc == 137 ]] || fail "expected the rollback to be killed at begin, exit $rc: $err"
	expect_at_v16
	run_dgm resume plan.yaml
	expect_rc 0
	expect_err "nothing had changed"
	run_dgm resume plan.yaml
	expect_rc 0
	expect_err "nothing to resume"
	expect_at_v16
	# killed again, then re-run by hand before resume
	DGMIGRATE_FAULT_KILL_AT=begin run_dgm rollback --to v1.5 plan.yaml
	[[ $rc == 137 ]] || fail "expected the rollback to be killed at begin, exit $rc: $err"
	run_dgm rollback --to v1.5 plan.yaml
	expect_rc 0
	run_dgm resume plan.yaml
	expect_rc 0
	expect_err "nothing had changed"
	run_dgm resume plan.yaml
	expect_err "nothing to resume"
	expect_at_v15
}

# The same journal made by hand (what a kill in the first milliseconds
# leaves): a rollback's begin record and nothing else.
test_a_begin_only_rollback_journal_is_ended_by_resume() {
	prepare_v15
	run_dgm apply plan.yaml
	expect_rc 0
	run_dgm rollback --to v1.5 plan.yaml
	expect_rc 0
	last=$(ls "$JOURNALS"/*.jsonl | tail -1)
	head -1 "$last" | sed 's/"run":"[^"]*"/"run":"99991231T000000Z-0001"/' \
		> "$JOURNALS/99991231T000000Z-0001.jsonl"
	grep -q '"command":"rollback"' "$JOURNALS/99991231T000000Z-0001.jsonl" || fail "no begin record"
	run_dgm resume plan.yaml
	expect_rc 0
	expect_err "nothing had changed"
	tail -1 "$JOURNALS/99991231T000000Z-0001.jsonl" | grep -q '"type":"end"' || fail "the journal was not ended"
	run_dgm resume plan.yaml
	expect_err "nothing to resume"
	expect_at_v15
}

# Issue 18.9: the history row of a resumed run keeps the run's start,
# to the millisecond; it finishes later.
test_history_of_a_resumed_run_keeps_its_start() {
	prepare_v15
	DGMIGRATE_FAULT_KILL_AT=postconditions run_dgm apply plan.yaml
	[[ $rc == 137 ]] || fail "expected the apply to be killed, exit $rc: $err"
	begin_ts=$(head -1 "$JOURNALS"/*.jsonl | python3 -c 'import json, sys; print(json.load(sys.stdin)["ts"])')
	run_dgm resume plan.yaml
	expect_rc 0
	expect_at_v16
	row=$(psql_db "$TEST_DB" -c "SELECT to_char(started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), finished_at > started_at FROM dgmigrate.runs")
	[[ "$row" == "$begin_ts|t" ]] || fail "history row '$row', journal began at '$begin_ts'"
}

# Issue 13.8: damaged journals are reported with file and line, never a
# crash; resume says what it can still do.
test_a_damaged_journal_is_reported_not_crashed() {
	prepare_v15
	DGMIGRATE_FAULT_KILL_AT=checkout run_dgm apply plan.yaml
	[[ $rc == 137 ]] || fail "expected the apply to be killed, exit $rc: $err"
	j=$(ls "$JOURNALS"/*.jsonl)
	name=$(basename "$j")
	cp "$j" good.jsonl
	sed -i '2a {"type":"step"}' "$j"
	run_dgm resume plan.yaml
	expect_rc 1
	expect_err "$name:3: damaged journal record"
	expect_err "backups restore"
	expect_err "then move the journal aside (mv '"
	run_dgm backups prune plan.yaml --keep 1
	expect_rc 0
	[[ -n "$(ls backups | grep -v state)" ]] || fail "prune removed the damaged run's snapshot"
	# a begin record without a command, a non-string revision
	printf '%s\n' '{"seq":1,"ts":"t","run":"r","type":"begin"}' > "$j"
	run_dgm resume plan.yaml
	expect_rc 1
	expect_err "$name:1: damaged journal record"
	head -1 good.jsonl > "$j"
	sed -n 2p good.jsonl | sed 's/"revisions_before":\["[^"]*"/"revisions_before":[7/' >> "$j"
	run_dgm resume plan.yaml
	expect_rc 1
	expect_err "$name:2: damaged journal record"
	# the intact journal, with a torn last line: resume settles it
	cp good.jsonl "$j"
	printf '{"seq":99,"ts":"20' >> "$j"
	run_dgm resume plan.yaml
	expect_rc 0
	expect_err "torn"
	expect_at_v15
	every_line_is_json "$j"
}

# Issue 12.1: required settings are shown as they are; secrets (by name,
# by environment.secret, URL passwords) are masked, and masking never
# mangles an ordinary word.
test_settings_are_shown_and_secrets_masked() {
	prepare_v15
	export POSTGRES_DB=app APP_MODE=true SENTRY_DSN="https://dsn-key-$RANDOM@sentry.example/1"
	export API_TOKEN=tok
	sed -i 's/^  required: \[\(.*\)\]/  required: [\1, POSTGRES_DB, APP_MODE, API_TOKEN]\n  secret: [SENTRY_DSN]/' plan.yaml
	cat >>plan.yaml <<'PLAN'
hooks:
  before:
    - name: show-settings
      run: [sh, -c, 'echo "db=$POSTGRES_DB mode=$APP_MODE application dsn=$SENTRY_DSN token=$API_TOKEN tokens"']
PLAN
	run_dgm apply plan.yaml
	expect_rc 0
	log=$(cat backups/state/journal/*.log)
	grep -qF "db=app mode=true application dsn=**** token=**** tokens" <<<"$log" ||
		fail "the hook's output was not shown as expected: $(grep -F 'db=' <<<"$log")"
	! grep -qF -- "$SENTRY_DSN" backups/state/journal/* backups/state/reports/* || fail "a secret leaked"
	grep -qF "# dgmigrate apply: test release (v1.6) - success" backups/state/reports/*.md ||
		fail "the report's title was mangled: $(head -1 backups/state/reports/*.md)"
	# a secret pasted into a rollback's reason: masked in its history row
	run_dgm rollback --to v1.5 plan.yaml --reason "dsn $SENTRY_DSN was rotated"
	expect_rc 0
	row=$(psql_db "$TEST_DB" -Atc "SELECT r::text FROM dgmigrate.runs r WHERE command = 'rollback'")
	grep -qF "dsn **** was rotated" <<<"$row" || fail "the history row lacks the masked reason: $row"
	! grep -qF -- "$SENTRY_DSN" <<<"$row" || fail "a secret leaked into the history row"
	run_dgm history plan.yaml --json
	expect_rc 0
	grep -qF "dsn **** was rotated" <<<"$out" && ! grep -qF -- "$SENTRY_DSN" <<<"$out" ||
		fail "history --json does not mask the reason: $out"
	# the database URL's password stays secret (run_dgm checks the output)
	run_dgm validate plan.yaml
	expect_rc 0
	! grep -qF -- "$DGM_PGPASS" backups/state/journal/* backups/state/reports/* ||
		fail "the database password leaked"
}
