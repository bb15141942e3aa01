#!/usr/bin/env bash
# runner.sh FILE: run every test_* function of one integration test file,
# each in its own subshell with `set -e`, in its own work folder.
# Prints "ok - NAME" / "not ok - NAME" and appends counts to $RESULTS.
#
# A test that has not ended after TEST_TIMEOUT seconds (default 300; the
# slowest takes 16 s on an idle 2-core machine) is a hang, not a slow
# test: it fails, showing what its processes were doing (their stacks,
# from gdb) and what its sessions waited for, and everything it left
# running is killed so that the next test starts clean.
set -uo pipefail
file=$1
source "$(dirname "$0")/lib.sh"
source "$file"

base=$(basename "$file" .sh)

# pids_in DIR: the processes whose working folder is DIR or below (a
# test's commands, also those it started with setsid).
pids_in() {
	local p cwd
	for p in /proc/[0-9]*; do
		cwd=$(readlink "$p/cwd" 2>/dev/null) || continue
		[[ $cwd == "$1" || $cwd == "$1"/* ]] && echo "${p#/proc/}"
	done
	return 0
}

# show_hang DIR: what the test's processes and sessions were doing.
show_hang() {
	local pids p
	pids=$(pids_in "$1" | paste -sd, -)
	echo "processes of the test:"
	[[ -n $pids ]] && ps -o pid,ppid,stat,wchan:24,etimes,args -p "$pids" 2>&1
	for p in ${pids//,/ }; do
		case $(cat "/proc/$p/comm" 2>/dev/null) in
		dgmigrate|pg_dump|pg_restore)
			echo "stacks of $p ($(cat "/proc/$p/comm")):"
			timeout 30 gdb -p "$p" -batch -nx -ex 'thread apply all bt 12' 2>/dev/null |
				grep -E '^(Thread|#)' | head -60 ;;
		esac
	done
	echo "sessions on the test cluster:"
	psql_db postgres -c "SELECT pid, datname, application_name, state,
		wait_event_type || ':' || wait_event, pg_blocking_pids(pid), left(query, 100)
		FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()" 2>&1
}

# kill_in DIR DB: kill the test's processes, end its sessions (on DB and
# the databases named after it: copies, scratch databases).
kill_in() {
	local p
	for p in $(pids_in "$1"); do kill -KILL "$p" 2>/dev/null; done
	psql_db postgres -c "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE left(datname, length('$2')) = '$2'" >/dev/null 2>&1
	return 0
}

for fn in $(declare -F | awk '{print $3}' | grep '^test_'); do
	work="$DGM_WORK/$base.$fn"
	mkdir -p "$work"
	log="$work/test.log"
	cluster_ensure >/dev/null 2>&1
	start=$(date +%s%N)
	db="${base}_${fn}"
	[[ -n ${DGM_CURRENT:-} ]] && echo "$fn" >"$DGM_CURRENT"
	( set -e; cd "$work"; TEST_DB="${base}_${fn}"; TEST_DB=${TEST_DB:0:60}; "$fn" ) >"$log" 2>&1 </dev/null &
	pid=$!
	# the watchdog: not a clock the test races, a bound on a hang
	( sleep "${TEST_TIMEOUT:-300}" || exit 0
	  { echo "HANG: not ended after ${TEST_TIMEOUT:-300} s"; show_hang "$work"; } >"$work/hang.txt" 2>&1
	  kill_in "$work" "${db:0:60}" ) </dev/null >/dev/null 2>&1 &
	watchdog=$!
	wait "$pid"
	status=$?
	pkill -P "$watchdog" sleep 2>/dev/null
	wait "$watchdog" 2>/dev/null
	ms=$(( ($(date +%s%N) - start) / 1000000 ))
	if [[ $status -eq 0 && ! -s $work/hang.txt ]]; then
		echo "ok - $base: $fn (${ms} ms)"
		echo pass >>"$RESULTS"
	else
		echo "not ok - $base: $fn (${ms} ms)"
		# what failed first (a long log's tail may not reach it), then the tail
		grep -m 5 '^FAIL: ' "$log" | sed 's/^/    # /'
		grep -v -e "^tar: Ignoring unknown extended header keyword" "$log" | sed 's/^/    # /' | tail -40
		[[ -s $work/hang.txt ]] && sed 's/^/    # /' "$work/hang.txt" | head -150
		echo fail >>"$RESULTS"
	fi
done
