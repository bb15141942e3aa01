#!/usr/bin/env bash
# heads.sh - issue 3's target: `dgmigrate heads` against `alembic heads`
# on a generated 1,000-revision graph (branches, merges, labels,
# depends_on). Target: dgmigrate under 50 ms and at least 20x faster.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
source "$ROOT/bench/lib.sh"
DGMIGRATE=${DGMIGRATE:-$ROOT/dgmigrate}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

python3 "$ROOT/fixtures/gen-alembic-graph.py" "$work/proj" --revisions 1000 --seed 7 \
	--branches --labels --depends-on >/dev/null
cd "$work/proj"
# same answer first: a fast wrong answer is worth nothing
want=$(alembic heads 2>/dev/null | awk '{print $1}' | sort)
got=$("$DGMIGRATE" heads | awk '{print $1}' | sort)
if [[ "$want" != "$got" ]]; then
	echo "heads differ: alembic '$want', dgmigrate '$got'" >&2
	exit 1
fi
d=$(median_ms 21 "$DGMIGRATE" heads)
a=$(median_ms 5 alembic heads)
r=$(ratio "$a" "$d")
verdict=ok
(( d < 50 )) || verdict="MISSED (over 50 ms)"
awk -v r="$r" 'BEGIN { exit !(r >= 20) }' || verdict="MISSED (under 20x)"
printf 'heads on 1000 revisions: dgmigrate %d ms (median of 21), alembic %d ms (median of 5): %sx faster [%s]\n' \
	"$d" "$a" "$r" "$verdict"
[[ $verdict == ok ]]
