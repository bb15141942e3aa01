#!/usr/bin/env bash
# runner.sh FILE: run every test_* function of one integration test file,
# each in its own subshell with `set -e`, in its own work folder.
# Prints "ok - NAME" / "not ok - NAME" and appends counts to $RESULTS.
set -uo pipefail
file=$1
source "$(dirname "$0")/lib.sh"
source "$file"

base=$(basename "$file" .sh)
for fn in $(declare -F | awk '{print $3}' | grep '^test_'); do
	work="$DGM_WORK/$base.$fn"
	mkdir -p "$work"
	log="$work/test.log"
	start=$(date +%s%N)
	[[ -n ${DGM_CURRENT:-} ]] && echo "$fn" >"$DGM_CURRENT"
	( set -e; cd "$work"; TEST_DB="${base}_${fn}"; TEST_DB=${TEST_DB:0:60}; "$fn" ) >"$log" 2>&1
	status=$?
	ms=$(( ($(date +%s%N) - start) / 1000000 ))
	if [[ $status -eq 0 ]]; then
		echo "ok - $base: $fn (${ms} ms)"
		echo pass >>"$RESULTS"
	else
		echo "not ok - $base: $fn (${ms} ms)"
		sed 's/^/    # /' "$log" | tail -40
		echo fail >>"$RESULTS"
	fi
done
