#!/usr/bin/env bash
# snapshot.sh - the snapshot target: `dgmigrate backups create` (pg_dump
# -Fd -j2 -Z1 beside the model-store archive, verification included)
# against (a) the naive `pg_dump > plain.sql; tar czf` and (b) the
# hand-tuned `pg_dump -Fd -j2 -Z1` alongside `tar -I 'zstd -T2 -3'`, on a
# throwaway PostgreSQL 15 holding >= 1.5 GiB (bench/gen-db.sh) and a
# 1 GiB model store (fixtures/gen-model-store.py), made anew each run.
# Targets: at most 0.25x of (a), at most 1.30x of (b), peak RSS of
# dgmigrate under 64 MiB. Exits non-zero when one is missed.
#
# Each variant runs SNAPSHOT_BENCH_ROUNDS times (default 3, interleaved);
# the medians are compared. No round starts that would end past
# SNAPSHOT_BENCH_BUDGET_S (default 570) seconds of the whole run, so a
# busy machine gets fewer rounds instead of a bench over ~10 minutes. SNAPSHOT_BENCH_SCALE=0.1 makes the data ten
# times smaller (a quick check of the script itself; the targets are
# still checked, but the size is not what the issue asks for).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
source "$ROOT/bench/lib.sh"
source "$ROOT/tests/integration/lib.sh"
DGMIGRATE=${DGMIGRATE:-$ROOT/dgmigrate}
SCALE=${SNAPSHOT_BENCH_SCALE:-1}
ROUNDS=${SNAPSHOT_BENCH_ROUNDS:-3}
BUDGET_S=${SNAPSHOT_BENCH_BUDGET_S:-570}
# the PostgreSQL 15 client for everyone (Debian's /usr/bin/pg_dump is a
# wrapper that may pick another version)
export PATH=$PGBIN:$PATH

say() { printf '  %s\n' "$*"; }
secs() { awk -v ms="$1" 'BEGIN { printf "%.1f", ms / 1000 }'; }
mib() { du -sm "$1" | awk '{ print $1 }'; }

need_tools() {
	local missing=()
	[[ -x /usr/bin/time ]] || missing+=(time)
	command -v zstd >/dev/null || missing+=(zstd)
	((${#missing[@]})) || return 0
	if [[ $(id -u) -ne 0 ]]; then
		echo "snapshot bench: missing ${missing[*]}; run: sudo apt-get install -y ${missing[*]}" >&2
		return 1
	fi
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y -q "${missing[@]}" >/dev/null 2>&1 ||
		{ apt-get update -q >/dev/null && apt-get install -y -q "${missing[@]}" >/dev/null; }
}
need_tools
[[ -x $DGMIGRATE ]] || { echo "snapshot bench: no '$DGMIGRATE' (run make)" >&2; exit 1; }

bench_start=$(now_ns)
work=$(mktemp -d /tmp/dgm-bench-snapshot.XXXXXX)
chmod 711 "$work"
cleanup() {
	cluster_stop
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- the cluster: lib.sh's, restarted with settings for a fast load ----
cluster_start "$work"
# wal_level=minimal: a table created and filled in one transaction
# writes no WAL; autovacuum off: gen-db.sh freezes and analyzes every
# table itself, and nothing must run beside the measured commands.
for s in "wal_level = minimal" "max_wal_senders = 0" "full_page_writes = off" \
	"synchronous_commit = off" "maintenance_work_mem = '256MB'" "max_wal_size = '8GB'" \
	"checkpoint_timeout = '1h'" "shared_buffers = '256MB'" "autovacuum = off"; do
	pg_admin -q -c "ALTER SYSTEM SET $s"
done
as_pg "$PGBIN/pg_ctl" -D "$DGM_PGHOST/data" -l "$DGM_PGHOST/server.log" -w -t 60 -m fast \
	restart >/dev/null
new_db bench

echo "snapshot bench: generating the data set (cached nowhere: made anew each run)"
PGHOST=$DGM_PGHOST PGPORT=$DGM_PGPORT PGUSER=postgres PGDATABASE=bench \
	bash "$ROOT/bench/gen-db.sh" --scale "$SCALE"
t0=$(now_ns)
weights=$(awk -v s="$SCALE" 'BEGIN { print int(1024 * s) }')
jsons=$(awk -v s="$SCALE" 'BEGIN { v = int(5000 * s); print (v < 100 ? 100 : v) }')
python3 "$ROOT/fixtures/gen-model-store.py" "$work/store" --weights-mb "$weights" \
	--json-files "$jsons" >/dev/null
say "model store: $(mib "$work/store") MiB, $(find "$work/store" | wc -l) entries, made in $(secs $((($(now_ns) - t0) / 1000000))) s"

# ---- one connection for everyone: dgmigrate's URL, the same role and
# password for the baselines through the libpq environment ----
export DATABASE_URL; DATABASE_URL=$(db_url bench)
export ML_MODEL_STORAGE_PATH=$work/store
export PGHOST=$DGM_PGHOST PGPORT=$DGM_PGPORT PGUSER=dgm PGPASSWORD=$DGM_PGPASS PGDATABASE=bench

mkdir -p "$work/app"
cat >"$work/plan.yaml" <<'PLAN'
version: 1
release:
  name: snapshot benchmark
  repository: app
  tag: v1
database:
  url: ${DATABASE_URL}
snapshot:
  directory: out/dgmigrate
  format: directory
  jobs: 2
  compression: 1
  min_free: 1GiB
model_store:
  path: ${ML_MODEL_STORAGE_PATH}
  compression_level: 3
  threads: 0
environment:
  required: [DATABASE_URL, ML_MODEL_STORAGE_PATH]
PLAN

# ---- the three ways to take the same copy ----
# (run calls these in an `if`, where set -e does not apply: chain by hand)
naive() {
	pg_dump >"$1/plain.sql" && tar czf "$1/store.tgz" -C "$work" store
}
tuned() {
	local dump
	pg_dump -Fd -j2 -Z1 -f "$1/db" &
	dump=$!
	tar -I 'zstd -T2 -3' -cf "$1/store.tar.zst" -C "$work" store || { wait "$dump"; return 1; }
	wait "$dump"
}
# %M is the peak RSS of dgmigrate or of the largest child it waited for
# (pg_dump, pg_restore), whichever is higher: not a sum.
dgmigrate() {
	/usr/bin/time -f %M -o "$work/rss" "$DGMIGRATE" backups create "$work/plan.yaml"
}

# Empty the page cache so every variant reads from disk; where that is
# not allowed (a container), a first unmeasured pass warms the cache for
# all of them alike.
cold=no
if sync && echo 3 2>/dev/null >/proc/sys/vm/drop_caches; then
	cold=yes
fi
prepare() {
	rm -rf "$work/out"
	mkdir -p "$work/out"
	sync
	[[ $cold == no ]] || echo 3 >/proc/sys/vm/drop_caches
}

# children_ms: user + system CPU time of this shell's finished children
# (`times` runs in this shell: a $(...) would be a new process at zero).
children_ms() {
	times >"$work/times"
	awk 'NR == 2 { t = 0
		for (i = 1; i <= 2; i++) { split($i, p, /[ms]/); t += p[1] * 60 + p[2] }
		printf "%d", t * 1000 }' "$work/times"
}

# run NAME: one run into $work/out, output in $work/NAME.log; prints its
# wall time and the CPU time of its processes (not the server's), in ms.
run() {
	local s e
	prepare
	children_ms >"$work/cpu0"
	s=$(now_ns)
	if ! "$1" "$work/out" >"$work/$1.log" 2>&1; then
		echo "snapshot bench: $1 failed:" >&2
		tail -n 20 "$work/$1.log" >&2
		return 1
	fi
	e=$(now_ns)
	children_ms >"$work/cpu1"
	echo "$(((e - s) / 1000000)) $(($(<"$work/cpu1") - $(<"$work/cpu0")))"
}

# Each round runs all three, dgmigrate first and the naive way last (any
# write-back left from the data generation hits dgmigrate, not a
# baseline); interleaved rounds see the same drift of a shared machine,
# and the median of each is kept. "cpu" is the user + system time of the
# client processes (dgmigrate with its pg_dump; pg_dump, tar, zstd,
# gzip): less sensitive than wall time to other work on the machine; the
# server's share (COPY) is the same for all three.
order=(dgmigrate tuned naive)
if [[ $cold == yes ]]; then
	echo "snapshot bench: $ROUNDS rounds, page cache dropped before each run (cold reads)"
else
	echo "snapshot bench: cannot drop the page cache here; one unmeasured warm-up run of each, then $ROUNDS rounds"
	for v in "${order[@]}"; do run "$v" >/dev/null; done
fi

# phases FILE: dgmigrate's own timings from a snapshot's manifest.json
# (its "total" is left out: the wall time measured here is the total).
phases() {
	python3 -c 'import json, sys
t = json.load(open(sys.argv[1]))["timings_ms"]
print("dump %.1f, archive %.1f, verify %.1f" % (t["dump"] / 1e3, t["archive"] / 1e3, t["verify"] / 1e3))' "$1"
}

all_dgm=() all_tuned=() all_naive=() rss_kib=0 round_ns=0
for ((r = 1; r <= ROUNDS; r++)); do
	round_start=$(now_ns)
	if ((r > 1 && (round_start - bench_start + round_ns) / 1000000000 > BUDGET_S)); then
		say "stopping after $((r - 1)) of $ROUNDS rounds: one more would end past ${BUDGET_S} s"
		break
	fi
	out=$(run dgmigrate)
	read -r d dc <<<"$out"
	k=$(tail -n 1 "$work/rss")
	((k > rss_kib)) && rss_kib=$k
	snap=$(dirname "$(ls "$work"/out/dgmigrate/*/manifest.json | head -n 1)")
	ph=$(phases "$snap/manifest.json")
	sizes="database $(mib "$snap/db") + archive $(mib "$snap/models.tar.zst") MiB"
	out=$(run tuned)
	read -r t tc <<<"$out"
	sizes+=" | $(mib "$work/out/db") + $(mib "$work/out/store.tar.zst") MiB"
	out=$(run naive)
	read -r n nc <<<"$out"
	sizes+=" | plain.sql $(mib "$work/out/plain.sql") + store.tgz $(mib "$work/out/store.tgz") MiB"
	say "round $r: dgmigrate $(secs "$d") s, cpu $(secs "$dc") s ($ph; RSS $((k / 1024)) MiB)" \
		"| tuned $(secs "$t") s, cpu $(secs "$tc") s | naive $(secs "$n") s, cpu $(secs "$nc") s"
	((r > 1)) || say "  sizes: $sizes"
	all_dgm+=("$d") all_tuned+=("$t") all_naive+=("$n")
	round_ns=$(($(now_ns) - round_start))
done
rm -rf "$work/out"
# the middle value; of two, the lower
median() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
ms_dgm=$(median "${all_dgm[@]}")
ms_tuned=$(median "${all_tuned[@]}")
ms_naive=$(median "${all_naive[@]}")

r_naive=$(awk -v a="$ms_dgm" -v b="$ms_naive" 'BEGIN { printf "%.2f", a / b }')
r_tuned=$(awk -v a="$ms_dgm" -v b="$ms_tuned" 'BEGIN { printf "%.2f", a / b }')
rss=$((rss_kib / 1024))
missed=()
awk -v r="$r_naive" 'BEGIN { exit !(r <= 0.25) }' || missed+=("over 0.25x naive")
awk -v r="$r_tuned" 'BEGIN { exit !(r <= 1.30) }' || missed+=("over 1.30x tuned")
((rss_kib < 64 * 1024)) || missed+=("peak RSS not under 64 MiB")
verdict=ok
((${#missed[@]} == 0)) || verdict="MISSED: $(IFS=,; echo "${missed[*]}" | sed 's/,/, /g')"
say "whole benchmark: $(secs $((($(now_ns) - bench_start) / 1000000))) s"
printf 'snapshot: dgmigrate %s s (peak RSS %d MiB) | naive %s s (ratio %s, target <= 0.25) | tuned %s s (ratio %s, target <= 1.30) [%s]\n' \
	"$(secs "$ms_dgm")" "$rss" "$(secs "$ms_naive")" "$r_naive" "$(secs "$ms_tuned")" "$r_tuned" "$verdict"
[[ $verdict == ok ]]
