# t_pgbackrest.sh - the pgBackRest snapshot engine against the real
# pgbackrest (2.45) and a cluster of each test's own (pgbr_lib.sh).

source "$ROOT/tests/integration/pgbr_lib.sh"

test_harness_archives_and_backs_up() {
	pgbr_setup
	pgbr info --output=json > info.json
	python3 - info.json <<'PY'
import json, sys
info = json.load(open(sys.argv[1]))
s = info[0]
assert s["status"]["code"] == 0, s["status"]
assert [b["type"] for b in s["backup"]] == ["full"], s["backup"]
PY
	grep -q "^repo1-path=$PWD/pgbr/repo" pgbr/pgbackrest.conf || fail "repository outside the test"
}
