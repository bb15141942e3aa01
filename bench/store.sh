#!/usr/bin/env bash
# store.sh - the model store snapshot targets of issue #14.2: a snapshot
# of an unchanged 1 GiB store (many files) in under 1 s, and of a store
# where 5% of the files changed in under 0.15x the time of a full
# archive. No database: the store half of a snapshot alone, as
# dgmigrate takes it (build/tools/store_snap: dgm_archive_create at the
# snapshot defaults, chained to the previous snapshot, then its own
# archive read back with dgm_archive_verify_new).
#
# The store: 4096 files of 256 KiB (random bytes: model weights do not
# compress) and 4096 small JSON files in 64 folders, made anew each run.
# Each round (STORE_BENCH_ROUNDS, default 3, interleaved): a full
# archive; a snapshot of the unchanged store chained to it; then 5% of
# the files (every 20th: 205 weights, 205 JSON) rewritten with new
# content of the same size, and a snapshot chained to the unchanged one.
# Medians are compared. Page cache: warm (what a release's snapshot
# sees right after the previous one; the unchanged case reads no file
# content at all). STORE_BENCH_SCALE=0.1 makes the store ten times
# smaller (a quick check of the script). Exits non-zero when a target
# is missed.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
source "$ROOT/bench/lib.sh"
SCALE=${STORE_BENCH_SCALE:-1}
ROUNDS=${STORE_BENCH_ROUNDS:-3}
TOOL=$ROOT/build/tools/store_snap

make -s -C "$ROOT" build/tools/store_snap >/dev/null
work=$(mktemp -d /tmp/dgm-bench-store.XXXXXX)
trap 'rm -rf "$work"' EXIT
trap 'exit 130' INT TERM

echo "store bench: generating the store"
python3 - "$work/store" "$SCALE" <<'PY'
import os, sys
root, scale = sys.argv[1], float(sys.argv[2])
n = max(64, int(4096 * scale))
for i in range(n):
    d = os.path.join(root, "g%02d" % (i % 64))
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "w%05d.bin" % i), "wb") as f:
        f.write(os.urandom(256 * 1024))
    with open(os.path.join(d, "m%05d.json" % i), "w") as f:
        f.write('{"model": %d, "weights": "w%05d.bin", "threshold": 0.5}\n' % (i, i))
PY
files=$(find "$work/store" -type f | wc -l)
mib=$(du -sm "$work/store" | awk '{ print $1 }')
echo "store bench: $files files, $mib MiB"
# files changed within 50 ms of a snapshot's start get no recorded
# identity (a change in the same clock tick could go unseen): let the
# clock move past the generation, as it has in a real store
sleep 0.2

# change_5pct ROUND: every 20th file, new content of the same size
change_5pct() {
	python3 - "$work/store" "$1" <<'PY'
import os, sys
root, r = sys.argv[1], int(sys.argv[2])
names = sorted(os.path.join(dp, f) for dp, _, fs in os.walk(root) for f in fs)
for k, p in enumerate(names):
    if k % 20 == r % 20:
        size = os.path.getsize(p)
        with open(p, "r+b") as f:
            f.write(os.urandom(size) if p.endswith(".bin") else b"x" * size)
PY
}

# snap ID [BASE]: one snapshot; prints "ms archived"
snap() {
	local line
	line=$("$TOOL" "$work/snaps" "$1" "$work/store" ${2:+"$2"})
	awk '{ for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
	       print v["ms"], v["archived"] }' <<<"$line"
}

median() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

full=() unchanged=() changed=()
for ((r = 1; r <= ROUNDS; r++)); do
	rm -rf "$work/snaps" && mkdir "$work/snaps"
	read -r f_ms _ < <(snap full)
	read -r u_ms u_files < <(snap unchanged full)
	# the changes must be older than the coarse clock's tick when the
	# next snapshot starts, as they are in a real release
	change_5pct "$r"
	sleep 0.2
	read -r c_ms c_files < <(snap changed unchanged)
	(( u_files == 0 )) || { echo "store bench: the unchanged snapshot archived $u_files files" >&2; exit 1; }
	printf '  round %d: full %d ms; unchanged %d ms (0 files archived); 5%% changed %d ms (%d files archived)\n' \
		"$r" "$f_ms" "$u_ms" "$c_ms" "$c_files"
	full+=("$f_ms") unchanged+=("$u_ms") changed+=("$c_ms")
done
mf=$(median "${full[@]}") mu=$(median "${unchanged[@]}") mc=$(median "${changed[@]}")
rc_ratio=$(awk -v a="$mc" -v b="$mf" 'BEGIN { printf "%.3f", a / b }')
echo "store bench (medians of $ROUNDS): full archive $mf ms; unchanged $mu ms (target < 1000);" \
	"5% changed $mc ms = ${rc_ratio}x the full archive (target < 0.15x)"
status=0
(( mu < 1000 )) || { echo "store bench: MISSED: unchanged store snapshot ${mu} ms >= 1000 ms"; status=1; }
awk -v r="$rc_ratio" 'BEGIN { exit !(r < 0.15) }' ||
	{ echo "store bench: MISSED: 5% changed is ${rc_ratio}x a full archive (>= 0.15x)"; status=1; }
exit $status
