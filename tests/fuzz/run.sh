#!/usr/bin/env bash
# run.sh BINDIR NAME... : libFuzzer on each harness for $FUZZ_SECONDS
# (default 60), one after the other, behind `make fuzz`.
#
# Each harness starts from its seed corpus and its regression inputs
# (tests/fuzz/corpus/NAME, tests/fuzz/regress/NAME; read only) and keeps
# what it learns in build/fuzz-work/NAME/corpus. A crash, leak, timeout
# or sanitizer report is saved in build/fuzz-work/NAME/ (crash-*, leak-*,
# timeout-*); copy it to tests/fuzz/regress/NAME/ once fixed, so that
# the unit tests replay it. Prints executions and coverage per harness;
# exits 1 when any harness found something.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
bindir=$1
shift
seconds=${FUZZ_SECONDS:-60}
work=$ROOT/build/fuzz-work
failed=()
summary=()

for name in "$@"; do
	dir=$work/$name
	mkdir -p "$dir/corpus"
	seeds=()
	for d in "$ROOT/tests/fuzz/corpus/$name" "$ROOT/tests/fuzz/regress/$name"; do
		[[ -d $d ]] && seeds+=("$d")
	done
	echo "== fuzz $name for ${seconds}s"
	# -timeout: one input may take 10 s; -rss_limit_mb: 2 GiB in all;
	# -max_len: 16 KiB, a large revision file (longer seeds are cut);
	# -malloc_limit_mb: no single allocation above 512 MiB
	"$ROOT/$bindir/$name" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
		-malloc_limit_mb=512 -max_len=16384 -print_final_stats=1 \
		-artifact_prefix="$dir/" "$dir/corpus" "${seeds[@]}" >"$dir/log" 2>&1
	status=$?
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/log" | tail -1)
	cov=$(grep -o 'cov: [0-9]*' "$dir/log" | tail -1 | awk '{print $2}')
	ft=$(grep -o 'ft: [0-9]*' "$dir/log" | tail -1 | awk '{print $2}')
	corpus=$(find "$dir/corpus" -type f | wc -l)
	line=$(printf '%-9s %10s runs  cov %6s  ft %6s  corpus %5s' "$name" "${runs:-?}" \
		"${cov:-?}" "${ft:-?}" "$corpus")
	if [[ $status -ne 0 ]]; then
		line="$line  FOUND (exit $status): $(ls "$dir" | grep -E '^(crash|leak|timeout|oom|slow-unit)-' | tr '\n' ' ')"
		failed+=("$name")
		grep -E '^(==[0-9]+==ERROR|SUMMARY|.*runtime error)' "$dir/log" | head -5
	fi
	echo "$line"
	summary+=("$line")
done

echo
echo "== fuzz summary (${seconds}s per harness; logs in build/fuzz-work/NAME/log)"
printf '%s\n' "${summary[@]}"
[[ ${#failed[@]} -eq 0 ]]
