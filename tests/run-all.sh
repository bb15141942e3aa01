#!/usr/bin/env bash
# run-all.sh [unit|integration]: the test suite behind `make check`.
# Unit tests are cmocka binaries in $BUILD/tests and the fuzz harnesses
# of tests/fuzz/ run over their seeds ($BUILD/fuzz); integration tests are
# tests/integration/t_*.sh run against one throwaway PostgreSQL cluster
# (each test gets its own database and folder). Ends with the line
# "N passed, N failed".
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-build}
what=${1:-all}
export ROOT BUILD
export RESULTS=$(mktemp)
source "$ROOT/tests/integration/lib.sh"

DGM_WORK=$(mktemp -d /tmp/dgm-tests.XXXXXX)
chmod 711 "$DGM_WORK"  # the cluster runs as postgres inside it
export DGM_WORK
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

if [[ $what == all || $what == integration ]]; then
	echo "== integration tests (PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}'), $(alembic --version 2>/dev/null))"
	: "${DGMIGRATE:=$ROOT/dgmigrate}"
	export DGMIGRATE
	cluster_start "$DGM_WORK/cluster" || { echo "cannot start the test cluster" >&2; exit 1; }
	# The fixture application, built once; tests copy it.
	export FIXTURE_APP=$DGM_WORK/app-template
	bash "$ROOT/fixtures/build-app-repo.sh" "$FIXTURE_APP" >/dev/null ||
		{ echo "cannot build the fixture app" >&2; exit 1; }
	# TESTS="t_apply t_rollback" runs only those files
	for f in "$ROOT"/tests/integration/t_*.sh; do
		[[ -z ${TESTS:-} || " $TESTS " == *" $(basename "$f" .sh) "* ]] || continue
		# a file that cannot even load must not pass silently
		bash "$ROOT/tests/integration/runner.sh" "$f" ||
			{ echo "not ok - $(basename "$f") did not run to the end"; echo fail >>"$RESULTS"; }
	done
fi

passed=$(grep -c '^pass$' "$RESULTS")
failed=$(grep -c '^fail$' "$RESULTS")
echo
echo "$passed passed, $failed failed"
[[ $failed -eq 0 && $passed -gt 0 ]]
