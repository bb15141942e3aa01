# held_lib.sh - dgmigrate run in the background and held at a named point
# (DGMIGRATE_FAULT_WAIT_AT, src/common/fault.c), then killed or let go:
# the tests wait for the code, never for the clock. Sourced by the test
# files that kill or hold runs (t_crash, t_rollback_speed, t_swap_guard).

# wait_until WHAT CMD...: poll a condition (not a clock) for up to 60 s.
wait_until() {
	local i
	for ((i = 0; i < 3000; i++)); do
		"${@:2}" && return 0
		sleep 0.02
	done
	fail "timed out waiting for $1"
}

# The run in the background ($bgpid) waits at its point (wait.flag made).
reached() {
	[[ -e wait.flag ]] && return 0
	if ! kill -0 "$bgpid" 2>/dev/null; then
		echo "dgmigrate ended before the point: $(tail -5 bg.err)" >&2
		exit 1
	fi
	return 1
}

# start_at POINT ARGS...: dgmigrate ARGS in its own process group, waiting
# at POINT once reached; its output in bg.out and bg.err.
start_at() {
	rm -f wait.flag
	DGMIGRATE_FAULT_WAIT_AT=$1 DGMIGRATE_FAULT_WAIT_FILE=$PWD/wait.flag \
		setsid "$DGMIGRATE" "${@:2}" >bg.out 2>bg.err &
	bgpid=$!
	wait_until "the run to reach '$1'" reached
}

# kill_group: the held run and its children, as a kill -9 would.
kill_group() {
	kill -KILL -- "-$bgpid"
	wait "$bgpid" 2>/dev/null || true
	rm -f wait.flag
}

# kill_at POINT ARGS...: the run killed at a point inside a step.
kill_at() { start_at "$@"; kill_group; }

# Databases a restore's swap names after this test's database
# (<db>_dgm_new_<id>, <db>_dgm_old_<id>): only its own, since the tests of
# other files share the cluster.
leftovers() { psql_db postgres -c "SELECT string_agg(datname, ' ') FROM pg_database WHERE left(datname, 30) = left('$TEST_DB', 30) AND (datname LIKE '%\_dgm\_new\_%' OR datname LIKE '%\_dgm\_old\_%')"; }
