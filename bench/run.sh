#!/usr/bin/env bash
# run.sh - `make bench`: every benchmark, each printing its measurement
# against its target and failing when a target is missed.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
status=0
for b in heads lint snapshot store apply rollback pgbackrest; do
	echo "== bench: $b"
	bash "$ROOT/bench/$b.sh" || status=1
done
exit $status
