#!/usr/bin/env bash
# run-all.sh [unit|integration]: the test suite behind `make check`.
# Unit tests are cmocka binaries in $BUILD/tests and the fuzz harnesses
# of tests/fuzz/ run over their seeds ($BUILD/fuzz); integration tests are
# tests/integration/t_*.sh run against throwaway PostgreSQL clusters, in
# up to two groups at once, each on its own cluster (each test gets its
# own database and folder). Ends with the line "N passed, N failed".
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-build}
what=${1:-all}
export ROOT BUILD
export RESULTS=$(mktemp)
source "$ROOT/tests/integration/lib.sh"

DGM_WORK=$(mktemp -d /tmp/dgm-tests.XXXXXX)
chmod 711 "$DGM_WORK"  # the cluster runs as postgres inside it
DGM_WORK_TOP=$DGM_WORK
export DGM_WORK DGM_WORK_TOP
cleanup() {
	cluster_stop
	rm -rf "$DGM_WORK"
	rm -f "$RESULTS"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [[ $what == all || $what == unit ]]; then
	echo "== unit tests"
	for t in "$ROOT/$BUILD"/tests/test_*; do
		[[ -x "$t" ]] || continue
		log=$(mktemp)
		"$t" 2>&1 | tee "$log"
		status=${PIPESTATUS[0]}
		# count cmocka's tests one by one; a crash counts as one failure
		p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$log" | awk '{s+=$1} END {print s+0}')
		f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$log" | awk '{s+=$1} END {print s+0}')
		for ((i = 0; i < ${p:-0}; i++)); do echo pass >>"$RESULTS"; done
		for ((i = 0; i < ${f:-0}; i++)); do echo fail >>"$RESULTS"; done
		if [[ $status -ne 0 && ${f:-0} -eq 0 ]]; then
			echo "not ok - $(basename "$t") exited $status" && echo fail >>"$RESULTS"
		fi
		rm -f "$log"
	done
	# Every fuzz harness over its seed corpus and the inputs of past
	# findings (tests/fuzz/), without fuzzing: one test per harness.
	for t in "$ROOT/$BUILD"/fuzz/*; do
		[[ -x "$t" ]] || continue
		name=$(basename "$t")
		log=$(mktemp)
		dirs=()
		for d in "$ROOT/tests/fuzz/corpus/$name" "$ROOT/tests/fuzz/regress/$name"; do
			[[ -d $d ]] && dirs+=("$d")
		done
		if [[ ${#dirs[@]} -gt 0 ]] && "$t" "${dirs[@]}" >"$log" 2>&1; then
			echo "ok - fuzz seeds: $(tail -1 "$log" | sed 's|.*/fuzz/||')"
			echo pass >>"$RESULTS"
		else
			tail -30 "$log"
			echo "not ok - fuzz seeds: $name (the last input named above failed)"
			echo fail >>"$RESULTS"
		fi
		rm -f "$log"
	done
fi

# One group of integration files on its own cluster (cluster-wide checks -
# advisory locks, database names, a stopped server - see only that group):
# run_group DIR FILE...; output to DIR/log.
run_group() {
	local dir=$1 f
	shift
	export DGM_WORK=$dir
	trap 'cluster_stop' EXIT
	trap 'exit 130' INT TERM
	cluster_start "$dir/cluster" || { echo "not ok - cannot start a test cluster"; echo fail >>"$RESULTS"; return 1; }
	# The fixture application, built once per group; tests copy it.
	export FIXTURE_APP=$dir/app-template
	bash "$ROOT/fixtures/build-app-repo.sh" "$FIXTURE_APP" >/dev/null ||
		{ echo "not ok - cannot build the fixture app"; echo fail >>"$RESULTS"; return 1; }
	for f in "$@"; do
		cluster_ensure || { echo "not ok - the test cluster is down and does not start again"; echo fail >>"$RESULTS"; return 1; }
		run_file "$dir" "$f"
	done
}

# kill_left_in PREFIX: SIGKILL every process whose working folder starts with PREFIX.
kill_left_in() {
	local p cwd
	for p in /proc/[0-9]*; do
		cwd=$(readlink "$p/cwd" 2>/dev/null) || continue
		[[ $cwd == "$1"* ]] && kill -KILL "${p#/proc/}" 2>/dev/null
	done
	return 0
}

# run_file DIR FILE: one integration file, bounded by FILE_TIMEOUT seconds
# (default 900: the slowest file takes 80 s idle) so that a hang is a
# failure that names the test and shows what was running, never a CI run
# that ends only when its own clock does. The file's lines are printed
# together once it ends (groups run at once; a file's lines stay together).
run_file() {
	local dir=$1 f=$2 base status out
	base=$(basename "$f" .sh)
	out="$dir/$base.out"
	export DGM_CURRENT="$dir/$base.current"
	timeout -k 20 "${FILE_TIMEOUT:-900}" bash "$ROOT/tests/integration/runner.sh" "$f" >"$out" 2>&1
	status=$?
	if [[ $status -eq 124 || $status -eq 137 ]]; then
		echo "not ok - $base: timed out after ${FILE_TIMEOUT:-900} s in $(cat "$DGM_CURRENT" 2>/dev/null)" >>"$out"
		echo fail >>"$RESULTS"
		{
			echo "    # the test's log (last 60 lines):"
			tail -60 "$dir/$base.$(cat "$DGM_CURRENT" 2>/dev/null)/test.log" 2>/dev/null | sed 's/^/    # /'
			echo "    # processes left:"
			ps -eo pid,pgid,etimes,args --forest 2>/dev/null | grep -v ' ps -eo' | grep -E 'dgmigrate|alembic|pg_dump|pg_restore|psql|python|postgres: ' | sed 's/^/    # /' | head -60
			# what was left running in the file's folders (setsid'd runs
			# escape timeout's process group) must not hold the next file up
			kill_left_in "$dir/$base."
		} >>"$out"
	elif [[ $status -ne 0 ]]; then
		# a file that cannot even load must not pass silently
		echo "not ok - $base did not run to the end" >>"$out"
		echo fail >>"$RESULTS"
	fi
	flock "$DGM_WORK_TOP/print.lock" cat "$out"
}

# Seconds each file took on an idle 2-core machine, to balance the groups
# (a file not listed counts 30).
weight() {
	case $(basename "$1" .sh) in
	t_rollback) echo 80 ;; t_dataloss) echo 95 ;; t_crash) echo 70 ;; t_alembic) echo 55 ;;
	t_resume|t_journal) echo 35 ;; t_target|t_rehearse|t_snapshot) echo 30 ;;
	t_privileges|t_retention|t_app2|t_store|t_copyfirst) echo 20 ;; t_apply|t_report|t_swap_guard) echo 15 ;;
	t_uptodate|t_leaks) echo 10 ;; t_pgbackrest) echo 140 ;; t_rollback_speed) echo 60 ;; *) echo 5 ;;
	esac
}

if [[ $what == all || $what == integration ]]; then
	echo "== integration tests (PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}'), $(alembic --version 2>/dev/null))"
	: "${DGMIGRATE:=$ROOT/dgmigrate}"
	export DGMIGRATE
	# TESTS="t_apply t_rollback" runs only those files; TEST_GROUPS=N runs
	# them in N groups at once, each on its own cluster (default: one per
	# core, at most 2: the tests themselves start alembic and pg_dump).
	files=()
	for f in "$ROOT"/tests/integration/t_*.sh; do
		[[ -z ${TESTS:-} || " $TESTS " == *" $(basename "$f" .sh) "* ]] && files+=("$f")
	done
	groups=${TEST_GROUPS:-$(nproc)}
	(( groups > 2 )) && groups=2
	(( groups > ${#files[@]} )) && groups=${#files[@]}
	(( groups < 1 )) && groups=1
	# heaviest first, each to the lightest group
	declare -a load members
	for ((g = 0; g < groups; g++)); do load[g]=0; members[g]=""; done
	while read -r w f; do
		best=0
		for ((g = 1; g < groups; g++)); do (( load[g] < load[best] )) && best=$g; done
		load[best]=$(( load[best] + w )); members[best]+="$f "
	done < <(for f in "${files[@]}"; do echo "$(weight "$f") $f"; done | sort -rn)
	pids=()
	for ((g = 0; g < groups; g++)); do
		mkdir -p "$DGM_WORK/g$g" && chmod 711 "$DGM_WORK/g$g"
		# shellcheck disable=SC2086
		( run_group "$DGM_WORK/g$g" ${members[g]} ) &
		pids+=($!)
	done
	trap 'kill "${pids[@]}" 2>/dev/null; wait; exit 130' INT TERM
	for ((g = 0; g < groups; g++)); do
		wait "${pids[g]}"
	done
	trap 'exit 130' INT TERM
fi

passed=$(grep -c '^pass$' "$RESULTS")
failed=$(grep -c '^fail$' "$RESULTS")
echo
echo "$passed passed, $failed failed"
[[ $failed -eq 0 && $passed -gt 0 ]]
