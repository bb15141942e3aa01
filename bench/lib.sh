# lib.sh - helpers for the benchmarks: wall time of commands, medians.

now_ns() { date +%s%N; }

# time_ms CMD...: wall time of one run in ms (output discarded).
time_ms() {
	local s e
	s=$(now_ns)
	"$@" >/dev/null 2>&1 || { echo "bench: command failed: $*" >&2; return 1; }
	e=$(now_ns)
	echo $(( (e - s) / 1000000 ))
}

# median_ms N CMD...: median wall time of N runs, in ms.
median_ms() {
	local n=$1; shift
	local t=()
	for ((i = 0; i < n; i++)); do t+=("$(time_ms "$@")") || return 1; done
	printf '%s\n' "${t[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) b = 1; printf "%.1f", a / b }'; }
