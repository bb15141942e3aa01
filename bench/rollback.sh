#!/usr/bin/env bash
# rollback.sh - issue 6's target: `dgmigrate rollback --to v1.5` after
# the fixture app's v1.6 was applied by dgmigrate, on apply.sh's data set
# (>= 1.5 GiB, the bulk in the app's own tables, 1 GiB model store),
# against the naive manual rollback: the alembic downgrades, `git
# checkout v1.5`, `psql < plain.sql` into a recreated database, `tar xzf`
# of the model store (plain.sql and the .tgz taken before the release).
# Targets (issue 14, part 3): the downgrade path (the model store is
# unchanged, so nothing to extract) at most 0.1x the naive time; the
# restore path (--restore --accept-data-loss) at most 0.2x. Both include
# dgmigrate's safety snapshot of the current state, which it always
# takes first (the restore path's is the database it replaces, renamed
# aside: no copy).
#
# Every run starts from the same state: 'bench' copied from a template
# made once right after `dgmigrate apply` (untimed), the work tree at
# v1.6, and the snapshot folder as the apply left it (hard links).
#
# ROLLBACK_BENCH_ROUNDS (default 1: a round is three full runs, about
# 5 minutes on 2 cores; the set-up another 4) rounds, interleaved,
# medians compared; ROLLBACK_BENCH_SCALE=0.1 makes the data ten times smaller.
# ROLLBACK_BENCH_BASELINE=/path/to/an/earlier/dgmigrate: its downgrade
# and restore paths are timed too, in the same rounds on the same data
# (before/after numbers of a change; the apply is this build's).
set -euo pipefail
source "$(cd "$(dirname "$0")" && pwd)/apply.sh"

SCALE=${ROLLBACK_BENCH_SCALE:-1}
BASELINE=${ROLLBACK_BENCH_BASELINE:-}
ROUNDS=${ROLLBACK_BENCH_ROUNDS:-1}
bench_start=$(now_ns)
bench_setup rollback "$SCALE"
try_cold
cd "$work"

# ---- the state every run starts from ----
echo "rollback bench: the release applied once by dgmigrate (untimed), the naive backups taken before it"
reset_db bench_v15
mkdir -p naive
t0=$(now_ns)
PGDATABASE=bench pg_dump >naive/plain.sql
tar czf naive/store.tgz -C "$work" store
say "naive backups: plain.sql $(mib naive/plain.sql) MiB, store.tgz $(mib naive/store.tgz) MiB, in $(secs $((($(now_ns) - t0) / 1000000))) s"
t0=$(now_ns)
"$DGMIGRATE" apply -q plan.yaml >apply.log 2>&1 || { echo "rollback bench: dgmigrate apply failed:" >&2; tail -n 20 apply.log >&2; exit 1; }
say "dgmigrate apply: $(secs $((($(now_ns) - t0) / 1000000))) s"
# the downgrade steps dgmigrate would run, for the naive variant too
mapfile -t downgrades < <("$DGMIGRATE" rollback --to v1.5 plan.yaml --dry-run 2>/dev/null |
	awk '$1 == "downgrade" && $2 == "alembic" && $3 == "downgrade" { print $4 }')
((${#downgrades[@]})) || { echo "rollback bench: no downgrade step in the dry run" >&2; exit 1; }
say "downgrade steps: ${downgrades[*]}"
pg_admin -q -c "CREATE DATABASE bench_v16 TEMPLATE bench STRATEGY FILE_COPY" >/dev/null
mv backups backups.v16

release_id=$(grep -l '"kind": "pre-apply"' backups.v16/*/manifest.json | sort | tail -n 1 | cut -d/ -f2)

# reset: 'bench' at v1.6, the work tree at v1.6, the snapshots as the
# apply left them (hard links: snapshot files are written once; the
# state folder, where runs append, is copied). A new hard link moves the
# archive file's ctime, so the record that the apply read it back whole
# (models.verified.json) no longer holds: 'backups verify' (untimed, the
# page cache dropped after it) reads it back and records it again, as
# the apply left it.
reset() {
	reset_db bench_v16
	git -C app checkout -q v1.6
	rm -rf backups
	cp -al backups.v16 backups
	rm -rf backups/state
	cp -a backups.v16/state backups/state
	"$DGMIGRATE" backups verify "$release_id" plan.yaml >/dev/null 2>&1 ||
		{ echo "rollback bench: backups verify $release_id failed" >&2; return 1; }
	settle_io
}

# naive: by hand; each step's time goes to naive.steps.
naive() {
	local rev s=$(now_ns) steps=""
	lap() { local e; e=$(now_ns); steps+="${steps:+, }$1 $(secs $(((e - s) / 1000000)))"; s=$e; }
	for rev in "${downgrades[@]}"; do
		(cd app && alembic downgrade "$rev") || return 1
	done
	lap downgrade
	git -C app checkout -q v1.5 || return 1
	psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "DROP DATABASE bench WITH (FORCE)" \
		-c "CREATE DATABASE bench" || return 1
	psql -X -q -v ON_ERROR_STOP=1 -f naive/plain.sql >/dev/null || return 1
	lap "psql < plain.sql"
	# beside the store, not over it: the same work, and the store every
	# dgmigrate run starts from stays the one the apply archived (a store
	# extracted anew has new inodes: every file would be hashed again)
	rm -rf naive/restored && mkdir naive/restored &&
		tar xzf naive/store.tgz -C naive/restored || return 1
	lap "tar xzf"
	echo "$steps" >"$work/naive.steps"
}
downgrade() { python3 "$work/cpu.py" "$work/cpu" "${BIN:-$DGMIGRATE}" rollback --to v1.5 plan.yaml; }
restore() {
	python3 "$work/cpu.py" "$work/cpu" "${BIN:-$DGMIGRATE}" rollback --to v1.5 plan.yaml --restore \
		--accept-data-loss
}
base_downgrade() { BIN=$BASELINE downgrade; }
base_restore() { BIN=$BASELINE restore; }

# run NAME: reset, then one timed run; prints ms.
run() {
	local s e
	reset
	s=$(now_ns)
	if ! "$1" >"$work/$1.log" 2>&1; then
		echo "rollback bench: $1 failed:" >&2
		tail -n 20 "$work/$1.log" >&2
		return 1
	fi
	e=$(now_ns)
	echo $(((e - s) / 1000000))
}

# revisions: what alembic_version holds after a run (all must be v1.5's).
revisions() { psql -X -At -c "SELECT string_agg(version_num, ',' ORDER BY 1) FROM alembic_version"; }

if [[ $cold == yes ]]; then
	echo "rollback bench: $ROUNDS rounds, page cache dropped before each run (cold reads)"
else
	echo "rollback bench: $ROUNDS rounds; cannot drop the page cache here: the data, just written, is read warm by every variant"
fi
echo "rollback bench: the machine may be shared: compare the rounds to see the noise"
all_down=() all_rest=() all_naive=() all_bdown=() all_brest=()
for ((r = 1; r <= ROUNDS; r++)); do
	d=$(run downgrade)
	read -r _ self_d main_d _ <"$work/cpu"
	ph_d=$(phases "$(last_report)") rev_d=$(revisions)
	x=$(run restore)
	read -r _ self_x main_x _ <"$work/cpu"
	ph_x=$(phases "$(last_report)") rev_x=$(revisions)
	n=$(run naive)
	rev_n=$(revisions)
	[[ $rev_d == "$rev_x" && $rev_x == "$rev_n" ]] ||
		{ echo "rollback bench: the variants end at different revisions: $rev_d | $rev_x | $rev_n" >&2; exit 1; }
	say "round $r: downgrade path $(secs "$d") s | restore path $(secs "$x") s | naive $(secs "$n") s (all at $rev_n)"
	say "  downgrade path steps (s): $ph_d (own CPU: main thread $main_d s, all threads $self_d s)"
	say "  restore path steps (s): $ph_x (own CPU: main thread $main_x s, all threads $self_x s)"
	say "  naive steps (s): $(cat "$work/naive.steps")"
	all_down+=("$d") all_rest+=("$x") all_naive+=("$n")
	if [[ -n $BASELINE ]]; then
		bd=$(run base_downgrade)
		ph_bd=$(phases "$(last_report)")
		bx=$(run base_restore)
		ph_bx=$(phases "$(last_report)")
		say "  baseline: downgrade path $(secs "$bd") s ($ph_bd) | restore path $(secs "$bx") s ($ph_bx)"
		all_bdown+=("$bd") all_brest+=("$bx")
	fi
done
ms_down=$(median "${all_down[@]}")
ms_rest=$(median "${all_rest[@]}")
ms_naive=$(median "${all_naive[@]}")
r_down=$(ratio2 "$ms_down" "$ms_naive")
r_rest=$(ratio2 "$ms_rest" "$ms_naive")
if [[ -n $BASELINE ]]; then
	say "baseline ($BASELINE): downgrade path $(secs "$(median "${all_bdown[@]}")") s (ratio $(ratio2 "$(median "${all_bdown[@]}")" "$ms_naive")) | restore path $(secs "$(median "${all_brest[@]}")") s (ratio $(ratio2 "$(median "${all_brest[@]}")" "$ms_naive"))"
fi
missed=()
at_most "$r_down" 0.1 || missed+=("downgrade path over 0.1x naive")
at_most "$r_rest" 0.2 || missed+=("restore path over 0.2x naive")
verdict=ok
((${#missed[@]} == 0)) || verdict="MISSED: $(IFS=,; echo "${missed[*]}" | sed 's/,/, /g')"
say "whole benchmark: $(secs $((($(now_ns) - bench_start) / 1000000))) s"
printf 'rollback: downgrade path %s s (ratio %s, target <= 0.1) | restore path %s s (ratio %s, target <= 0.2) | naive %s s [%s]\n' \
	"$(secs "$ms_down")" "$r_down" "$(secs "$ms_rest")" "$r_rest" "$(secs "$ms_naive")" "$verdict"
[[ $verdict == ok ]]
