#!/usr/bin/env bash
# pgbackrest.sh - the restore-point snapshot (snapshot.engine: pgbackrest)
# next to the dump snapshot and the server-side copy, for the same data at two sizes: a throwaway
# PostgreSQL 15 archiving to a pgBackRest stanza (tests/integration/
# pgbr_lib.sh), bench/gen-db.sh at PGBR_BENCH_SCALES (default "0.13 1.3":
# about 0.2 and 2 GiB), a full backup of each (untimed), then
# `dgmigrate backups create` with each engine (the model store empty).
# Targets (issue 16): the restore-point snapshot takes < 1 s and differs
# by < 20% between the sizes. Exits non-zero when one is missed.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
source "$ROOT/tests/integration/lib.sh"
source "$ROOT/tests/integration/pgbr_lib.sh"
DGMIGRATE=${DGMIGRATE:-$ROOT/dgmigrate}
SCALES=${PGBR_BENCH_SCALES:-0.13 1.3}
ROUNDS=${PGBR_BENCH_ROUNDS:-3}
export PATH=$PGBIN:$PATH

work=$(mktemp -d /tmp/dgm-pgbr.XXXXXX)
chmod 711 "$work"
trap 'pgbr_teardown; rm -rf "$work"' EXIT
cd "$work"
export FIXTURE_APP=$work/app-template
bash "$ROOT/fixtures/build-app-repo.sh" "$FIXTURE_APP" >/dev/null
pgbr_setup --no-backup
# pgbr_setup sets its own EXIT trap (stop the cluster): remove the folder too
trap 'pgbr_teardown; rm -rf "$work"' EXIT

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }

# snap_ms PLAN: wall ms of one `backups create`, its folder removed after.
snap_ms() {
	local t0 t1
	t0=$(now_ms)
	"$DGMIGRATE" backups create -q "$1" >/dev/null 2>"$work/create.err" ||
		{ cat "$work/create.err" >&2; exit 1; }
	t1=$(now_ms)
	rm -rf backups/2*
	echo $((t1 - t0))
}

# copy_ms DB: wall ms of the server-side copy that apply's copy-first
# snapshot and a rollback's safety snapshot make (CREATE DATABASE ...
# TEMPLATE ... STRATEGY FILE_COPY; dgmigrate then reads the copy's
# revisions and catalog fingerprint), the copy dropped after.
copy_ms() {
	local t0 t1
	t0=$(now_ms)
	psql_db postgres -c "CREATE DATABASE ${1}_copy TEMPLATE $1 STRATEGY FILE_COPY" >/dev/null
	t1=$(now_ms)
	psql_db postgres -c "DROP DATABASE ${1}_copy" >/dev/null
	echo $((t1 - t0))
}

declare -A pitr
status=0
for s in $SCALES; do
	db=bench_${s//./_}
	dir=$work/$db
	mkdir -p "$dir" && cd "$dir"
	new_db "$db"
	PGHOST=$DGM_PGHOST PGPORT=$DGM_PGPORT PGUSER=postgres PGDATABASE=$db \
		bash "$ROOT/bench/gen-db.sh" --scale "$s" >gen.log 2>&1
	size=$(psql_db "$db" -c "SELECT pg_database_size('$db') / 1048576")
	pgbr backup --type=full >/dev/null 2>&1
	# the same archive at both sizes: this full backup and the WAL after it
	# (what retention keeps); `pgbackrest info`, which a snapshot runs for
	# the backup label, lists the archive, so the WAL of generating the
	# larger data set kept beside it would be timed too
	pgbr expire --repo1-retention-full=1 >/dev/null 2>&1
	cp -a "$FIXTURE_APP" app && mkdir -p models
	export DATABASE_URL; DATABASE_URL=$(db_url "$db")
	export ML_MODEL_STORAGE_PATH=$dir/models SECRET_KEY=x
	write_plan dump.yaml && cp dump.yaml plan.yaml && pgbr_plan plan.yaml
	p=() d=() c=()
	for ((r = 0; r < ROUNDS; r++)); do
		p+=("$(snap_ms plan.yaml)")
		d+=("$(snap_ms dump.yaml)")
		c+=("$(copy_ms "$db")")
	done
	pitr[$s]=$(printf '%s\n' "${p[@]}" | median)
	printf '  %s MiB: restore point %s ms, dump %s ms, server-side copy %s ms (median of %d)\n' \
		"$size" "${pitr[$s]}" "$(printf '%s\n' "${d[@]}" | median)" \
		"$(printf '%s\n' "${c[@]}" | median)" "$ROUNDS"
	printf '    per round, ms: restore point %s; dump %s; copy %s\n' "${p[*]}" "${d[*]}" "${c[*]}"
	(( pitr[$s] < 1000 )) || { echo "  MISSED: restore point snapshot over 1 s"; status=1; }
	cd "$work"
done
set -- $SCALES
if (($# == 2)); then
	awk -v a="${pitr[$1]}" -v b="${pitr[$2]}" 'BEGIN { d = (b > a ? b - a : a - b) / (a < b ? a : b);
		printf "  restore point at the two sizes differs by %.0f%% (target < 20%%)\n", d * 100; exit d >= 0.2 }' ||
		status=1
fi
exit $status
