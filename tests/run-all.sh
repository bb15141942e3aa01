#!/usr/bin/env bash
# run-all.sh [unit|integration]: the test suite behind `make check`.
# Unit tests are cmocka binaries in $BUILD/tests; integration tests are
# tests/integration/t_*.sh run against one throwaway PostgreSQL cluster
# (each test gets its own database and folder). Ends with the line
# "N passed, N failed".
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-build}
what=${1:-all}
export ROOT
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
		if "$t"; then echo pass >>"$RESULTS"; else echo fail >>"$RESULTS"; fi
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
	for f in "$ROOT"/tests/integration/t_*.sh; do
		bash "$ROOT/tests/integration/runner.sh" "$f"
	done
fi

passed=$(grep -c '^pass$' "$RESULTS")
failed=$(grep -c '^fail$' "$RESULTS")
echo
echo "$passed passed, $failed failed"
[[ $failed -eq 0 && $passed -gt 0 ]]
