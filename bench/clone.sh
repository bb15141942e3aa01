#!/usr/bin/env bash
# clone.sh - issue 14 part 3: why does cloning a kept server-side copy
# (CREATE DATABASE new TEMPLATE copy STRATEGY FILE_COPY, the restore
# path's one big step) take 2.6 s in one run and 6.7 s in another? Each
# variant on a throwaway PostgreSQL 15 (the bench's settings) with a
# gen-db.sh database 'live' and its copy 'kept', rounds interleaved:
#   alone      page cache dropped, the clone alone (cold source)
#   warm       the clone again right away (source in the page cache)
#   after-copy page cache dropped, a full copy of 'live' first (today's
#              restore path: the safety copy), then the clone (timed)
#   wal-log    page cache dropped, STRATEGY WAL_LOG
#   dirty      page cache dropped, then an UPDATE of a big table (dirty
#              shared buffers, no checkpoint), then the clone (its
#              checkpoint writes them)
# CLONE_BENCH_SCALE (default 0.7: about 1.1 GB), CLONE_BENCH_ROUNDS (3).
# The cluster runs as the tests' and benches' do (fsync=off): PostgreSQL
# leaves the copied files to the kernel's writeback. Root is needed to
# drop the page cache (else every variant reads warm).
#
# Measured 2026-12-02 (1.1 GB, 2 shared cores, load 2-3.5), medians of 3:
# alone 1.05 s (rounds 3.3, 1.05, 0.92), warm 0.50 s, after a full copy
# 3.0 s (5.0, 3.0, 2.8; the copy itself 1.35 s), wal-log 1.49 s, after
# an UPDATE that dirtied shared buffers 2.1 s (3.1, 1.8, 2.1). The clone
# right after the safety copy is what varied: that copy leaves its whole
# size dirty in the page cache, and the clone reads its cold source while
# the kernel writes the copy back (below the background threshold, 10% of
# RAM, it may not start during the clone: the fast outlier). A restore
# path that does not copy first clones at the "alone" speed.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$ROOT/bench/lib.sh"
source "$ROOT/tests/integration/lib.sh"
export PATH=$PGBIN:$PATH
SCALE=${CLONE_BENCH_SCALE:-0.7}
ROUNDS=${CLONE_BENCH_ROUNDS:-3}
work=$(mktemp -d /tmp/dgm-bench-clone.XXXXXX)
chmod 711 "$work"
trap 'cluster_stop; rm -rf "$work"' EXIT
cluster_start "$work"
for s in "wal_level = minimal" "max_wal_senders = 0" "full_page_writes = off" \
	"synchronous_commit = off" "max_wal_size = '8GB'" "checkpoint_timeout = '1h'" \
	"shared_buffers = '256MB'" "autovacuum = off"; do
	pg_admin -q -c "ALTER SYSTEM SET $s"
done
as_pg "$PGBIN/pg_ctl" -D "$DGM_PGHOST/data" -l "$DGM_PGHOST/server.log" -w -t 60 -m fast restart >/dev/null
pg_admin -q -c "CREATE DATABASE live"
PGHOST=$DGM_PGHOST PGPORT=$DGM_PGPORT PGUSER=postgres PGDATABASE=live bash "$ROOT/bench/gen-db.sh" --scale "$SCALE"
pg_admin -q -c "CREATE DATABASE kept TEMPLATE live STRATEGY FILE_COPY"
echo "clone bench: live $(psql_db live -c "SELECT pg_size_pretty(pg_database_size('live'))"), fsync $(psql_db live -c 'SHOW fsync'), load $(cut -d' ' -f1-3 /proc/loadavg)"

cold() { sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || echo "clone bench: cannot drop the page cache" >&2; }
ms() { local s; s=$(now_ns); PGADMIN_DB=${DB:-postgres} pg_admin -q -c "$1" >/dev/null; echo $((($(now_ns) - s) / 1000000)); }
drop() { pg_admin -q -c "DROP DATABASE IF EXISTS new" -c "DROP DATABASE IF EXISTS safe" >/dev/null; }
clone() { ms "CREATE DATABASE new TEMPLATE kept STRATEGY ${1:-FILE_COPY}"; }
declare -A all
add() { all[$1]+="$2 "; }
for ((r = 1; r <= ROUNDS; r++)); do
	drop; cold; a=$(clone); add alone "$a"
	drop; w=$(clone); add warm "$w"
	drop; cold; c=$(ms "CREATE DATABASE safe TEMPLATE live STRATEGY FILE_COPY"); ac=$(clone); add after-copy "$ac"; add safe-copy "$c"
	drop; cold; wl=$(clone WAL_LOG); add wal-log "$wl"
	drop; cold
	u=$(DB=live ms "UPDATE events SET action = action WHERE id % 2 = 0")
	dc=$(clone); add dirty "$dc"
	ck=$(ms CHECKPOINT)
	echo "round $r (ms): alone $a | warm $w | safe copy $c then clone $ac | wal-log $wl | after an update ($u ms) $dc | checkpoint after $ck | load $(cut -d' ' -f1 /proc/loadavg)"
done
for k in alone warm safe-copy after-copy wal-log dirty; do
	echo "median $k: $(printf '%s\n' ${all[$k]} | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}') ms"
done
