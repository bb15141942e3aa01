#!/usr/bin/env bash
# apply.sh - issue 5's target: `dgmigrate apply` of the fixture app's
# v1.6 on a big v1.5 database against the naive sequential checklist
# (`pg_dump > plain.sql`, `tar czf` of the model store, `git checkout`,
# `alembic upgrade head`, one `psql` check per new table).
# Targets: dgmigrate's wall time (snapshot verification included) at
# most 0.3x the naive one; its own overhead under 2% of its wall time.
# Issue 14's two clocks, from dgmigrate's report: time to live (start to
# hooks.after done and health check passed; copy-first, the dump of the
# server-side copy still runs) at most 0.15x the naive total, and time
# to done (every backup verified) at most 1.0x the hand-tuned commands
# (`pg_dump -Fd -j2 -Z1` beside `tar -I 'zstd -T2 -3'`, then checkout and
# upgrade). The naive and the hand-tuned lists are live only when done.
#
# The data set, made anew each run on a throwaway PostgreSQL 15: the
# app's v1.5 tables (organizations, users, invoices) hold the bulk of it,
# bulk-filled; bench/gen-db.sh's tables go into a schema of their own,
# 'analytics' (its organizations, invoices, prediction_history and
# alembic_version would collide with the app's); >= 1.5 GiB in all by
# pg_database_size, plus a 1 GiB model store. It is built once in a
# database 'bench_v15', the template every round starts from.
#
# Own overhead: the CPU time (user + sys) of dgmigrate's main thread,
# read from /proc after it has exited and before it is reaped, so it is
# exact and leaves out every child (pg_dump, alembic, ...). The threads
# that compress the model store are left out too and shown apart: that
# is the work `tar czf` does in the naive checklist. CPU time is not
# wall time: in-process waits on disk (fsync, reads) are not in it.
#
# APPLY_BENCH_ROUNDS rounds (default 2: about 9 minutes on 2 cores),
# interleaved, medians compared; APPLY_BENCH_SCALE=0.1 makes the data ten times smaller (a quick check
# of the script; targets still checked but the size is not the issue's).
# APPLY_BENCH_PRIOR=1: each dgmigrate round starts with an earlier
# snapshot of the unchanged store (taken untimed), as a team's next
# release does: its store archive then holds only what changed.
#
# rollback.sh sources this file for the set-up (everything above the
# line "end of the shared set-up").
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$ROOT/bench/lib.sh"
source "$ROOT/tests/integration/lib.sh"
DGMIGRATE=${DGMIGRATE:-$ROOT/dgmigrate}
# the PostgreSQL 15 client for everyone (Debian's /usr/bin/pg_dump is a
# wrapper that may pick another version)
export PATH=$PGBIN:$PATH
ML_TABLES="predictive_models anomaly_detection_models anomaly_detection_results external_data_sources prediction_history"

say() { printf '  %s\n' "$*"; }
secs() { awk -v ms="$1" 'BEGIN { printf "%.1f", ms / 1000 }'; }
mib() { du -sm "$1" | awk '{ print $1 }'; }
# median N...: the middle value, the mean of the two middle ones for an even count
median() {
	printf '%s\n' "$@" | sort -g |
		awk '{ a[NR] = $1 } END { print NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}
ratio2() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
# at_most R LIMIT: R <= LIMIT
at_most() { awk -v r="$1" -v l="$2" 'BEGIN { exit !(r <= l) }'; }

# bench_setup NAME SCALE: the cluster, the data set in 'bench_v15', the
# model store, the app repository at v1.5, the plan. Sets $work.
bench_setup() {
	local name=$1 scale=$2 t0
	[[ -x $DGMIGRATE ]] || { echo "$name bench: no '$DGMIGRATE' (run make)" >&2; return 1; }
	work=$(mktemp -d "/tmp/dgm-bench-$name.XXXXXX")
	chmod 711 "$work"
	trap 'cluster_stop; rm -rf "$work"' EXIT
	trap 'exit 130' INT TERM
	cluster_start "$work"
	# wal_level=minimal: a table created or truncated and filled in one
	# transaction writes no WAL; autovacuum off: the load freezes and
	# analyzes every table itself, nothing runs beside the measured commands.
	for s in "wal_level = minimal" "max_wal_senders = 0" "full_page_writes = off" \
		"synchronous_commit = off" "maintenance_work_mem = '256MB'" "max_wal_size = '8GB'" \
		"checkpoint_timeout = '1h'" "shared_buffers = '256MB'" "autovacuum = off"; do
		pg_admin -q -c "ALTER SYSTEM SET $s"
	done
	as_pg "$PGBIN/pg_ctl" -D "$DGM_PGHOST/data" -l "$DGM_PGHOST/server.log" -w -t 60 -m fast \
		restart >/dev/null
	new_db bench_v15

	export DATABASE_URL; DATABASE_URL=$(db_url bench_v15)
	export ML_MODEL_STORAGE_PATH=$work/store
	export PGHOST=$DGM_PGHOST PGPORT=$DGM_PGPORT PGUSER=dgm PGPASSWORD=$DGM_PGPASS PGDATABASE=bench_v15
	sh "$ROOT/fixtures/build-app-repo.sh" "$work/app" >/dev/null
	git -C "$work/app" checkout -q v1.5
	echo "$name bench: generating the data set (made anew each run)"
	load_v15 "$scale"
	t0=$(now_ns)
	python3 "$ROOT/fixtures/gen-model-store.py" "$work/store" \
		--weights-mb "$(awk -v s="$scale" 'BEGIN { print int(1024 * s) }')" \
		--json-files "$(awk -v s="$scale" 'BEGIN { v = int(5000 * s); print (v < 100 ? 100 : v) }')" >/dev/null
	say "model store: $(mib "$work/store") MiB, $(find "$work/store" | wc -l) entries, made in $(secs $((($(now_ns) - t0) / 1000000))) s"
	# from here on everyone works on 'bench', a copy of 'bench_v15'
	DATABASE_URL=$(db_url bench) PGDATABASE=bench
	write_bench_plan "$work/plan.yaml"
	cat >"$work/cpu.py" <<'PY'
# cpu.py OUT CMD...: run CMD; write "wall_ms self_s main_s children_s"
# to OUT. The CPU times (user + sys, seconds) are read from /proc once
# the process has exited but before it is reaped (waitid WNOWAIT): self
# is all its threads, main its main thread, children what it waited on.
import os, sys, time
out, argv = sys.argv[1], sys.argv[2:]
t0 = time.monotonic()
pid = os.fork()
if pid == 0:
    try:
        os.execvp(argv[0], argv)
    finally:
        os._exit(127)
os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
wall = (time.monotonic() - t0) * 1000
tck = os.sysconf("SC_CLK_TCK")
def cpu(path):
    s = open(path).read()
    f = [int(x) / tck for x in s[s.rindex(")") + 2:].split()[11:15]]
    return f[0] + f[1], f[2] + f[3]
self_s, children_s = cpu("/proc/%d/stat" % pid)
main_s, _ = cpu("/proc/%d/task/%d/stat" % (pid, pid))
_, status = os.waitpid(pid, 0)
with open(out, "w") as f:
    f.write("%d %.2f %.2f %.2f\n" % (wall, self_s, main_s, children_s))
sys.exit(os.waitstatus_to_exitcode(status))
PY
}

# load_v15 SCALE: bench_v15 at the app's v1.5 with bulk rows, and
# gen-db.sh's tables in schema 'analytics'.
load_v15() {
	local scale=$1 s n_org n_user n_inv
	s=$(now_ns)
	psql -X -q -v ON_ERROR_STOP=1 -c "CREATE SCHEMA analytics"
	PGUSER=postgres PGPASSWORD='' PGOPTIONS="-c search_path=analytics" \
		bash "$ROOT/bench/gen-db.sh" --scale "$(awk -v s="$scale" 'BEGIN { print 0.3 * s }')" |
		sed 's/^/  analytics: /'
	psql -X -q -v ON_ERROR_STOP=1 -c "DROP TABLE analytics.alembic_version"
	migrate_app "$work/app" head
	n() { awk -v n="$1" -v s="$scale" 'BEGIN { v = int(n * s); print (v < 100 ? 100 : v) }'; }
	n_org=$(n 100000) n_user=$(n 1700000) n_inv=$(n 4700000)
	# The indexes and constraints come off for the load and back after it,
	# as pg_restore does: their definitions are alembic's, kept in post.sql.
	pg_dump -s --section=post-data -t public.organizations -t public.users -t public.invoices \
		-f "$work/post.sql"
	sql_v15 <<'SQL'
DO $$
DECLARE r record;
BEGIN
	FOR r IN SELECT conrelid::regclass AS t, conname FROM pg_constraint
		WHERE conrelid IN ('organizations'::regclass, 'users'::regclass, 'invoices'::regclass)
		AND contype IN ('f', 'p', 'u') ORDER BY contype <> 'f'
	LOOP
		EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I', r.t, r.conname);
	END LOOP;
	FOR r IN SELECT indexrelid::regclass AS i FROM pg_index
		WHERE indrelid IN ('organizations'::regclass, 'users'::regclass, 'invoices'::regclass)
	LOOP
		EXECUTE format('DROP INDEX %s', r.i);
	END LOOP;
END $$;
SQL
	# one transaction per table, truncated first: no WAL (wal_level=minimal)
	sql_v15 <<SQL
BEGIN;
TRUNCATE organizations;
INSERT INTO organizations (id, name, slug, plan, created_at)
SELECT i, initcap(a) || ' ' || initcap(b) || ' ' || (ARRAY['Inc.','LLC','GmbH','Ltd','S.A.','B.V.'])[1 + i % 6],
	a || '-' || b || '-' || i,
	(ARRAY['free','free','starter','team','business','enterprise'])[1 + (i * 7) % 6],
	timestamptz '2016-01-01' + random() * interval '7 years'
FROM (SELECT i, (analytics.w_company())[1 + floor(random() * cardinality(analytics.w_company()))::int] a,
	(analytics.w_company())[1 + floor(random() * cardinality(analytics.w_company()))::int] b
	FROM generate_series(1, $n_org) i OFFSET 0) s;
COMMIT;
SQL
	sql_v15 <<SQL &
BEGIN;
TRUNCATE users;
INSERT INTO users (id, organization_id, email, full_name, is_active, created_at)
SELECT i, 1 + (i * 7919::bigint) % $n_org,
	translate(lower(f || '.' || l), 'éèëöüøóçşłæ ''', 'eeeouoocsla') || '.' || i || '@' ||
		(analytics.w_mailhost())[1 + floor(random() * cardinality(analytics.w_mailhost()))::int],
	CASE WHEN random() < 0.95 THEN f || ' ' || l END, random() < 0.85,
	timestamptz '2017-01-01' + random() * interval '6 years'
FROM (SELECT i, (analytics.w_first())[1 + floor(random() * cardinality(analytics.w_first()))::int] f,
	(analytics.w_last())[1 + floor(random() * cardinality(analytics.w_last()))::int] l
	FROM generate_series(1, $n_user) i OFFSET 0) s;
COMMIT;
SQL
	local users=$!
	sql_v15 <<SQL
BEGIN;
TRUNCATE invoices;
INSERT INTO invoices (id, organization_id, created_by_id, number, amount_cents, currency, issued_at,
	created_at, status, due_date)
SELECT i, 1 + (u * 7919::bigint) % $n_org, CASE WHEN random() < 0.9 THEN u END,
	'INV-' || to_char(c, 'YYYY') || '-' || lpad(i::text, 9, '0'),
	(exp(random() * 13))::bigint, (ARRAY['EUR','EUR','USD','USD','GBP','CHF','JPY'])[1 + i % 7],
	CASE WHEN st <> 'draft' THEN c + random() * interval '3 days' END, c, st,
	CASE WHEN st <> 'draft' THEN (c AT TIME ZONE 'UTC')::date + 30 END
FROM (SELECT i, 1 + floor(random() * $n_user)::int u,
	timestamptz '2018-01-01' + random() * interval '5 years' c,
	(ARRAY['paid','paid','paid','paid','issued','issued','draft','void'])[1 + floor(random() * 8)::int] st
	FROM generate_series(1, $n_inv) i OFFSET 0) s;
COMMIT;
SQL
	wait "$users"
	sql_v15 -c "VACUUM (FREEZE, ANALYZE) organizations, users, invoices"
	sql_v15 -f "$work/post.sql" >/dev/null
	sql_v15 -c "SELECT setval(pg_get_serial_sequence(t, 'id'), n) FROM (VALUES ('organizations', $n_org),
		('users', $n_user), ('invoices', $n_inv)) v (t, n)" -c CHECKPOINT >/dev/null
	psql -X -At -c "SELECT format('  bench_v15: %s by pg_database_size (app tables %s), made in %s s',
		pg_size_pretty(pg_database_size(current_database())),
		pg_size_pretty(pg_total_relation_size('organizations') + pg_total_relation_size('users')
			+ pg_total_relation_size('invoices')), round($(($(now_ns) - s)) / 1e9, 1))"
}

# as dgm, the owner of the app's tables (alembic made them)
sql_v15() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }

write_bench_plan() {
	cat >"$1" <<PLAN
version: 1
release:
  name: apply benchmark
  repository: app
  tag: v1.6
database:
  url: \${DATABASE_URL}
snapshot:
  directory: backups
  format: directory
  jobs: 2
  compression: 1
  min_free: 1GiB
model_store:
  path: \${ML_MODEL_STORAGE_PATH}
  compression_level: 3
  threads: 0
environment:
  required: [DATABASE_URL, ML_MODEL_STORAGE_PATH]
postconditions:
  tables: [$(echo "$ML_TABLES" | sed 's/ /, /g')]
on_failure: rollback
PLAN
}

# reset_db TEMPLATE: 'bench' anew as a copy of TEMPLATE (a file copy:
# the default WAL_LOG strategy would write the whole database to WAL).
reset_db() {
	pg_admin -q -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS bench WITH (FORCE)" \
		-c "CREATE DATABASE bench TEMPLATE $1 OWNER dgm STRATEGY FILE_COPY" >/dev/null
}

# cold_or_warm: empty the page cache where allowed (root outside a
# container); sets $cold. Elsewhere the files were all just written (the
# template copy, the store), so every variant reads from a warm cache.
cold=no
try_cold() {
	sync
	if echo 3 2>/dev/null >/proc/sys/vm/drop_caches; then cold=yes; fi
}
settle_io() {
	sync
	[[ $cold == no ]] || echo 3 >/proc/sys/vm/drop_caches
}

# phases REPORT: the steps of a run report, "name s" each.
phases() {
	python3 -c 'import json, sys
r = json.load(open(sys.argv[1]))
print(", ".join("%s %.1f" % (s["step"], s["ms"] / 1e3) for s in r["steps"] if s["ms"] >= 100))' "$1"
}
# clocks REPORT: "time_to_live_ms time_to_done_ms" of a run report.
clocks() {
	python3 -c 'import json, sys
r = json.load(open(sys.argv[1]))
print(r.get("time_to_live_ms"), r.get("time_to_done_ms"))' "$1"
}
# snap_phases MANIFEST: a snapshot's own timings.
snap_phases() {
	python3 -c 'import json, sys
t = json.load(open(sys.argv[1]))["timings_ms"]
print("dump %.1f, archive %.1f, verify %.1f" % (t["dump"] / 1e3, t["archive"] / 1e3, t["verify"] / 1e3))' "$1"
}
last_report() { ls -t "$work"/backups/state/reports/*.json | head -n 1; }

# ---- end of the shared set-up ----
[[ ${BASH_SOURCE[0]} == "$0" ]] || return 0

SCALE=${APPLY_BENCH_SCALE:-1}
ROUNDS=${APPLY_BENCH_ROUNDS:-2}
bench_start=$(now_ns)
bench_setup apply "$SCALE"
try_cold
cd "$work"

# reset: the database back to v1.5, the work tree at v1.5, no snapshots.
reset() {
	reset_db bench_v15
	git -C app checkout -q v1.5
	rm -rf out backups
	mkdir -p out
	settle_io
}

# ml_checks: the checklist's last step, one psql check per new table.
ml_checks() {
	local t
	for t in $ML_TABLES; do
		psql -X -At -v ON_ERROR_STOP=1 -c "SELECT 'public.$t'::regclass" || return 1
	done
}

# naive: the checklist by hand; each step's time goes to naive.steps.
naive() {
	local s=$(now_ns) steps=""
	lap() { local e; e=$(now_ns); steps+="${steps:+, }$1 $(secs $(((e - s) / 1000000)))"; s=$e; }
	pg_dump >out/plain.sql || return 1
	lap pg_dump
	tar czf out/store.tgz -C "$work" store || return 1
	lap tar
	git -C app checkout -q v1.6 && (cd app && alembic upgrade head) || return 1
	lap "checkout+upgrade"
	ml_checks || return 1
	lap checks
	echo "$steps" >"$work/naive.steps"
}
# tuned: the same by hand as an expert would: a parallel, lightly
# compressed directory dump beside a multi-threaded zstd tar of the store,
# then the checkout and the upgrade (time to done = time to live here).
tuned() {
	local s=$(now_ns) steps="" dump_pid
	lap() { local e; e=$(now_ns); steps+="${steps:+, }$1 $(secs $(((e - s) / 1000000)))"; s=$e; }
	pg_dump -Fd -j2 -Z1 -f out/db &
	dump_pid=$!
	tar -I 'zstd -T2 -3' -cf out/store.tar.zst -C "$work" store || { wait "$dump_pid"; return 1; }
	wait "$dump_pid" || return 1
	lap "pg_dump -Fd -j2 -Z1 beside tar zstd -T2"
	git -C app checkout -q v1.6 && (cd app && alembic upgrade head) || return 1
	lap "checkout+upgrade"
	ml_checks || return 1
	lap checks
	echo "$steps" >"$work/tuned.steps"
}
dgm() { python3 "$work/cpu.py" "$work/cpu" "$DGMIGRATE" apply plan.yaml; }

# run NAME: reset, then one timed run; prints ms.
run() {
	local s e
	reset
	# a team's next release: an earlier snapshot of the same store exists,
	# so the store archive holds only what changed (untimed)
	if [[ $1 == dgm && ${APPLY_BENCH_PRIOR:-0} == 1 ]]; then
		"$DGMIGRATE" backups create plan.yaml >"$work/prior.log" 2>&1 ||
			{ echo "apply bench: the earlier snapshot failed:" >&2; tail -n 20 "$work/prior.log" >&2; return 1; }
		settle_io
	fi
	s=$(now_ns)
	if ! "$1" >"$work/$1.log" 2>&1; then
		echo "apply bench: $1 failed:" >&2
		tail -n 20 "$work/$1.log" >&2
		return 1
	fi
	e=$(now_ns)
	echo $(((e - s) / 1000000))
}

if [[ $cold == yes ]]; then
	echo "apply bench: $ROUNDS rounds, page cache dropped before each run (cold reads)"
else
	echo "apply bench: $ROUNDS rounds; cannot drop the page cache here: the data, just written, is read warm by every variant"
fi
echo "apply bench: the machine may be shared: compare the rounds to see the noise"
all_dgm=() all_naive=() all_main=() all_self=() all_live=() all_done=() all_tuned=()
for ((r = 1; r <= ROUNDS; r++)); do
	d=$(run dgm)
	read -r _ self_s main_s child_s <"$work/cpu"
	ph=$(phases "$(last_report)")
	read -r live done <<<"$(clocks "$(last_report)")"
	ph+=" (of the snapshot: $(snap_phases "$(ls "$work"/backups/*/manifest.json | head -n 1)"))"
	n=$(run naive)
	tu=$(run tuned)
	say "round $r: dgmigrate $(secs "$d") s (time to live $(secs "$live") s, time to done $(secs "$done") s; own CPU: main thread $main_s s, all threads $self_s s; children $child_s s) | naive $(secs "$n") s | hand-tuned $(secs "$tu") s"
	all_live+=("$live") all_done+=("$done") all_tuned+=("$tu")
	say "  dgmigrate steps (s): $ph | naive steps (s): $(cat "$work/naive.steps") | hand-tuned steps (s): $(cat "$work/tuned.steps")"
	all_dgm+=("$d") all_naive+=("$n") all_main+=("$(awk -v c="$main_s" -v w="$d" 'BEGIN { printf "%.2f", 100 * c * 1000 / w }')")
	all_self+=("$(awk -v c="$self_s" -v w="$d" 'BEGIN { printf "%.2f", 100 * c * 1000 / w }')")
done
ms_dgm=$(median "${all_dgm[@]}")
ms_naive=$(median "${all_naive[@]}")
ovh=$(median "${all_main[@]}")
ovh_all=$(median "${all_self[@]}")
r_naive=$(ratio2 "$ms_dgm" "$ms_naive")
ms_live=$(median "${all_live[@]}")
ms_done=$(median "${all_done[@]}")
r_live=$(ratio2 "$ms_live" "$ms_naive")
r_done=$(ratio2 "$ms_done" "$ms_naive")
ms_tuned=$(median "${all_tuned[@]}")
r_done_tuned=$(ratio2 "$ms_done" "$ms_tuned")
missed=()
at_most "$r_naive" 0.30 || missed+=("over 0.3x naive")
at_most "$r_live" 0.15 || missed+=("time to live over 0.15x naive")
at_most "$r_done_tuned" 1.0 || missed+=("time to done over 1.0x hand-tuned")
awk -v p="$ovh" 'BEGIN { exit !(p < 2) }' || missed+=("own overhead not under 2%")
verdict=ok
((${#missed[@]} == 0)) || verdict="MISSED: $(IFS=,; echo "${missed[*]}" | sed 's/,/, /g')"
say "whole benchmark: $(secs $((($(now_ns) - bench_start) / 1000000))) s"
printf 'apply: dgmigrate %s s | naive %s s (ratio %s, target <= 0.30) | own CPU %s%% of wall (main thread; %s%% with the archive threads; target < 2%%) [%s]\n' \
	"$(secs "$ms_dgm")" "$(secs "$ms_naive")" "$r_naive" "$ovh" "$ovh_all" "$verdict"
printf 'apply clocks: time to live %s s (%sx naive, target <= 0.15) | time to done %s s (%sx naive; %sx the hand-tuned %s s, target <= 1.0)\n' \
	"$(secs "$ms_live")" "$r_live" "$(secs "$ms_done")" "$r_done" "$r_done_tuned" "$(secs "$ms_tuned")"
[[ $verdict == ok ]]
