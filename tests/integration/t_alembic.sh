# t_alembic.sh - dgmigrate's reading of the Alembic graph against the real
# alembic: heads, history and upgrade/downgrade orders, at a tag without a
# checkout, and the database's revision.

DUMP=$ROOT/$BUILD/tools/alembic_dump

test_heads_at_tag_while_work_tree_is_elsewhere() {
	cp -a "$FIXTURE_APP" app
	cd app
	git -c advice.detachedHead=false checkout -q v1.6
	run_dgm heads
	expect_rc 0
	[[ $out == "b6e14d8a0f97 (ml) (head)" ]] || fail "heads: '$out'"
	run_dgm heads --at v1.5
	expect_rc 0
	[[ $out == "5e9f3b7a1c62 (head)" ]] || fail "heads --at v1.5: '$out'"
	# the work tree is still at v1.6
	[[ -f migrations/versions/b6e14d8a0f97_enable_ml_features_per_organization.py ]] ||
		fail "the work tree changed"
	[[ $(git rev-parse HEAD) == $(git rev-parse v1.6^{commit}) ]] || fail "HEAD moved"
}

test_heads_equal_alembic_on_each_tag() {
	cp -a "$FIXTURE_APP" app
	cd app
	for tag in v1.5 v1.6 v1.6-broken; do
		git -c advice.detachedHead=false checkout -q "$tag"
		want=$(alembic heads 2>/dev/null | awk '{print $1}' | sort)
		run_dgm heads --at "$tag"
		got=$(awk '{print $1}' <<<"$out" | sort)
		[[ "$want" == "$got" ]] || fail "$tag: alembic '$want', dgmigrate '$got'"
	done
}

test_fixture_app_orders_equal_alembic() {
	cp -a "$FIXTURE_APP" app
	(cd app && git -c advice.detachedHead=false checkout -q v1.6)
	DATABASE_URL=postgresql://offline@/unused DUMP=$DUMP bash "$ROOT/tests/integration/alembic_equiv.sh" app 2
}

test_generated_graph_orders_equal_alembic() {
	python3 "$ROOT/fixtures/gen-alembic-graph.py" small --revisions 20 --seed 3 --branches >/dev/null 2>&1
	DUMP=$DUMP bash "$ROOT/tests/integration/alembic_equiv.sh" small 1
}

test_large_graph_with_labels_and_depends_on_equals_alembic() {
	python3 "$ROOT/fixtures/gen-alembic-graph.py" big --revisions 150 --seed 7 \
		--branches --labels --depends-on --split >/dev/null 2>&1
	DUMP=$DUMP bash "$ROOT/tests/integration/alembic_equiv.sh" big 1
	cd big
	want=$(alembic heads 2>/dev/null | awk '{print $1}' | sort)
	run_dgm heads
	[[ "$want" == "$(awk '{print $1}' <<<"$out" | sort)" ]] || fail "heads differ"
}

test_graph_text_json_and_dot() {
	cp -a "$FIXTURE_APP" app
	run_dgm graph --repo app --at v1.6
	expect_rc 0
	expect_out "7f0a3c9b2e56 (ml) (mergepoint)"
	expect_out "<- 9c3e7a5d1f08, e28f61b0c9d4"
	expect_out "depends on 0d6b2f9e4a71"
	run_dgm graph --repo app --at v1.6 --dot
	expect_out '"8b1e5d2c94a0" -> "a1d4c8e7b359";'
	run_dgm graph --repo app --at v1.6 --json
	python3 -c 'import json,sys; d=json.loads(sys.argv[1]); assert len(d["revisions"]) == 10' "$out" ||
		fail "graph --json is not the 10 revisions"
}

test_unknown_tag_is_usage_error() {
	cp -a "$FIXTURE_APP" app
	run_dgm heads --repo app --at v7
	expect_rc 2
	expect_err "no tag or commit 'v7'"
}

test_status_shows_what_upgrade_would_run_in_alembic_order() {
	setup_release "$TEST_DB"
	migrate_app app head
	run_dgm status plan.yaml
	expect_rc 0
	expect_out "alembic_version: 5e9f3b7a1c62"
	expect_out "6 revisions would run"
	got=$(sed -n 's/^ \{14\}\([0-9a-f]\{12\}\) .*/\1/p' <<<"$out" | tr '\n' ' ')
	(cd app && git -c advice.detachedHead=false checkout -q v1.6)
	want=$(cd app && alembic upgrade 5e9f3b7a1c62:head --sql 2>/dev/null |
		sed -n 's/^-- Running upgrade .* -> \([0-9a-f]*\)$/\1/p' | tr '\n' ' ')
	[[ "$got" == "$want" ]] || fail "order: dgmigrate '$got', alembic '$want'"
	run_dgm status plan.yaml --json
	expect_out '"database_revisions":["5e9f3b7a1c62"]'
}

test_database_ahead_of_code_is_refused_naming_tags() {
	setup_release "$TEST_DB"
	(cd app && git -c advice.detachedHead=false checkout -q v1.6)
	migrate_app app head
	(cd app && git -c advice.detachedHead=false checkout -q v1.5)
	write_plan plan.yaml v1.5
	run_dgm validate plan.yaml
	expect_rc 1
	expect_err "the database is at revision 'b6e14d8a0f97', which v1.5 does not know"
	expect_err "tags that know 'b6e14d8a0f97': v1.6, v1.6-broken, v1.6-leaky"
}

# The Python that runs alembic (its shebang), which can import it.
alembic_python() {
	local py
	py=$(head -1 "$(command -v alembic)" | sed -n 's/^#! *//p' | awk '{print $1}')
	[[ -x ${py:-} ]] && echo "$py" || echo python3
}

# The graph as the real Alembic loads it (run in the project's folder):
# one line per revision, "id down=... deps=... labels=...", sorted.
alembic_graph() {
	"$(alembic_python)" - <<'PY'
from alembic.config import Config
from alembic.script import ScriptDirectory

s = ScriptDirectory.from_config(Config("alembic.ini"))
def tup(v):
    return sorted(v if isinstance(v, (tuple, list)) else ((v,) if v else ()))
for r in sorted(s.walk_revisions(), key=lambda r: r.revision):
    print(r.revision, "down=" + ",".join(tup(r.down_revision)),
          "deps=" + ",".join(tup(r.dependencies)), "labels=" + ",".join(sorted(r.branch_labels)))
PY
}

# The same lines from dgmigrate's graph --json.
dgm_graph() {
	python3 -c '
import json, sys
for r in sorted(json.load(sys.stdin)["revisions"], key=lambda r: r["id"]):
    print(r["id"], "down=" + ",".join(sorted(r["down_revisions"])),
          "deps=" + ",".join(sorted(r["depends_on"])), "labels=" + ",".join(sorted(r["branch_labels"])))
' <<<"$1"
}

# Neutron's layout (issue 17): labels and down_revisions named through the
# project's constants modules, nested <release>/<expand|contract> folders,
# depends_on across the branches - read statically, as the real alembic
# (which imports the modules) reads it; in the work tree and at a tag.
test_neutron_like_constants_equal_alembic() {
	cp -a "$ROOT/fixtures/alembic/neutron-like" nl
	DATABASE_URL=postgresql://offline@/unused DUMP=$DUMP \
		bash "$ROOT/tests/integration/alembic_equiv.sh" nl 1
	cd nl
	want=$(alembic heads 2>/dev/null | awk '{print $1, $2}')
	run_dgm heads
	expect_rc 0
	[[ $want == "$(awk '{print $1, $2}' <<<"$out")" ]] || fail "heads: alembic '$want', dgmigrate '$out'"
	want=$(alembic_graph)
	[[ $want == *"1df244e556f5 down=4af11ca47297 deps=0e66c5227a8a labels=contract"* ]] ||
		fail "unexpected alembic graph: $want"
	run_dgm graph --json
	expect_rc 0
	[[ $want == "$(dgm_graph "$out")" ]] || fail "graph: alembic
$want
dgmigrate
$(dgm_graph "$out")"
	# at a tag, while the work tree names the branch otherwise
	git init -q && git add -A && git -c user.name=t -c user.email=t@example.com commit -qm r1
	git tag r1
	sed -i "s/CONTRACT_BRANCH = 'contract'/CONTRACT_BRANCH = 'shrink'/" nlike/db/migration/cli.py
	run_dgm heads --json --at r1
	expect_rc 0
	[[ $(dgm_graph "{\"revisions\": $(python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)["heads"]))' <<<"$out")}") == \
		*"1df244e556f5 down=4af11ca47297 deps=0e66c5227a8a labels=contract"* ]] || fail "heads --at r1: $out"
	want=$(alembic heads 2>/dev/null | awk '{print $1, $2}')
	[[ $want == *"(shrink)"* ]] || fail "alembic heads after the change: $want"
	run_dgm heads
	[[ $want == "$(awk '{print $1, $2}' <<<"$out")" ]] || fail "heads: alembic '$want', dgmigrate '$out'"
}

# A constant the project computes: the error names file, line and name.
test_computed_constant_is_reported_with_file_and_line() {
	cp -a "$ROOT/fixtures/alembic/neutron-like" nl
	cd nl
	sed -i "s/^CONTRACT_BRANCH = 'contract'/CONTRACT_BRANCH = os.environ.get('B', 'contract')/" \
		nlike/db/migration/cli.py
	run_dgm heads
	expect_rc 1
	expect_err "30018084ec99_initial.py:11: cannot read the value of 'branch_labels'"
	expect_err "nlike/db/migration/cli.py:8: the value of 'CONTRACT_BRANCH' is not a literal"
}

# Point 2 of issue 17: what static reading cannot answer, Alembic itself can
# be asked on request - in the work tree and at a tag - and the result says
# it was read by Alembic.
test_read_with_alembic_reads_computed_values() {
	cp -a "$ROOT/fixtures/alembic/neutron-like" nl
	cd nl
	git init -q
	sed -i "s/^CONTRACT_BRANCH = 'contract'/CONTRACT_BRANCH = os.environ.get('B', 'contract')/" \
		nlike/db/migration/cli.py
	git add -A && git -c user.name=t -c user.email=t@example.com commit -qm r1 && git tag r1
	run_dgm heads
	expect_rc 1
	expect_err "--read-with-alembic"
	expect_no "read_graph"
	want=$(alembic heads 2>/dev/null | awk '{print $1, $2}')
	[[ $want == *"(contract)"* ]] || fail "alembic heads: $want"
	run_dgm heads --read-with-alembic
	expect_rc 0
	expect_out "(read by Alembic)"
	[[ $want == "$(grep -v '^(read by' <<<"$out" | awk '{print $1, $2}')" ]] ||
		fail "heads: alembic '$want', dgmigrate '$out'"
	run_dgm graph --dot --read-with-alembic
	expect_rc 0
	expect_out "// read by Alembic"
	# at the tag, from a temporary export, while the work tree has lost the module
	rm nlike/db/migration/cli.py
	run_dgm graph --json --at r1 --read-with-alembic
	expect_rc 0
	expect_out '"read_by":"alembic"'
	[[ $(alembic_graph_of_tag) == "$(dgm_graph "$out")" ]] || fail "graph at r1 differs:
$(dgm_graph "$out")"
}

# Alembic reads the graph in the ini's folder, as the alembic command runs
# there (app2's alembic.ini is backend/alembic.ini, its script_location
# relative): the same revisions and tree-relative files as read as text,
# in the work tree and at a tag.
test_read_with_alembic_runs_in_the_ini_folder() {
	"$ROOT/fixtures/build-app2-repo.sh" app >/dev/null
	cd app
	for at in "" v1.0; do
		run_dgm graph --json --config backend/alembic.ini ${at:+--at "$at"}
		expect_rc 0
		want=$(rev_files "$out")
		[[ $want == *" backend/"* ]] || fail "static graph: $want"
		run_dgm graph --json --config backend/alembic.ini --read-with-alembic ${at:+--at "$at"}
		expect_rc 0
		expect_out '"read_by":"alembic"'
		[[ $(rev_files "$out") == "$want" ]] || fail "at '$at': read as text
$want
read by Alembic
$(rev_files "$out")"
	done
	# an absolute config inside the repository, reached through a symlink
	ln -s "$PWD" ../applink
	run_dgm graph --json --repo ../applink --config "$(cd .. && pwd)/applink/backend/alembic.ini" \
		--read-with-alembic
	expect_rc 0
	[[ $(rev_files "$out") == "$want" ]] || fail "absolute config: $(rev_files "$out")"
}

# "id file" of each revision of graph --json, sorted.
rev_files() {
	python3 -c '
import json, sys
for r in sorted(json.load(sys.stdin)["revisions"], key=lambda r: r["id"]):
    print(r["id"], r["file"])
' <<<"$1"
}

# nl_computed: ./nl, the neutron-like project as a git repository tagged
# r1, whose contract label is computed (os.environ.get): only Alembic
# itself can read its graph.
nl_computed() {
	cp -a "$ROOT/fixtures/alembic/neutron-like" nl
	sed -i "s/^CONTRACT_BRANCH = 'contract'/CONTRACT_BRANCH = os.environ.get('B', 'contract')/" \
		nl/nlike/db/migration/cli.py
	printf "__pycache__/\n" >nl/.gitignore
	(cd nl && git init -q && git add -A &&
		git -c user.name=t -c user.email=t@example.com commit -qm r1 && git tag r1)
}

# write_nl_plan FILE TAG [LINES]: a plan for ./nl at TAG on $TEST_DB;
# LINES go under 'alembic:' (line 10 on).
write_nl_plan() {
	cat >"$1" <<PLAN
version: 1
release:
  name: neutron-like
  repository: nl
  tag: $2
database:
  url: \${DATABASE_URL}
alembic:
  config: alembic.ini
${3:-}
snapshot:
  directory: backups
PLAN
}

# A plan's commands read the graph as alembic.read_graph says: without it
# a computed label stops them naming file, line and the plan key (not the
# flag of heads/graph); with 'alembic' they work, through the Python of
# alembic.command (here a virtualenv's alembic script: the alembic in PATH
# cannot run) with alembic.env set, and say the graph was read by Alembic.
test_plan_read_graph_alembic_in_validate_status_lint_and_dry_run() {
	new_db "$TEST_DB"
	export DATABASE_URL; DATABASE_URL=$(db_url "$TEST_DB")
	nl_computed
	write_nl_plan plan.yaml r1
	run_dgm validate plan.yaml
	expect_rc 1
	expect_err "30018084ec99_initial.py:11: cannot read the value of 'branch_labels'"
	expect_err "'alembic.read_graph: alembic' in the plan"
	expect_no "--read-with-alembic"
	run_dgm status plan.yaml
	expect_rc 1
	expect_err "'alembic.read_graph: alembic' in the plan"
	write_nl_plan plan.yaml r1 "  read_graph: dynamic"
	run_dgm validate plan.yaml
	expect_rc 2
	expect_err "plan.yaml:10:15: 'alembic.read_graph' must be one of 'static', 'alembic', got 'dynamic'"
	# a virtualenv's alembic; the one in PATH cannot run
	mkdir -p venv/bin fakebin
	cp "$(command -v alembic)" venv/bin/alembic
	printf '#!/bin/false\n' >fakebin/alembic
	chmod +x fakebin/alembic
	write_nl_plan plan.yaml r1 "  read_graph: alembic
  command: [$PWD/venv/bin/alembic]"
	PATH=$PWD/fakebin:$PATH run_dgm validate plan.yaml
	expect_rc 0
	expect_err "(read by Alembic: alembic.read_graph)"
	PATH=$PWD/fakebin:$PATH run_dgm validate plan.yaml --json
	expect_rc 0
	expect_out "(read by Alembic: alembic.read_graph)"
	PATH=$PWD/fakebin:$PATH run_dgm status plan.yaml
	expect_rc 0
	want=$(cd nl && alembic heads 2>/dev/null | awk '{print $1}' | sort | paste -sd' ')
	[[ $want == *" "* ]] || fail "alembic heads: $want"
	got=$(sed -n 's/^code heads  \(.*\) (read by Alembic)$/\1/p' <<<"$out" | tr -d , | tr ' ' '\n' | sort | paste -sd' ')
	[[ $got == "$want" ]] || fail "status code heads '$got', alembic '$want':
$out"
	expect_out "r1          heads"
	expect_out "8 revisions would run"
	PATH=$PWD/fakebin:$PATH run_dgm status plan.yaml --json
	expect_out '"read_by":"alembic"'
	PATH=$PWD/fakebin:$PATH run_dgm lint plan.yaml
	expect_rc 0
	expect_err "(read by Alembic: alembic.read_graph)"
	PATH=$PWD/fakebin:$PATH run_dgm apply plan.yaml --dry-run
	expect_rc 0
	expect_out "8 revisions in this order (graph read by Alembic):"
	# alembic.env reaches the project's code as it reaches alembic
	write_nl_plan plan.yaml r1 "  read_graph: alembic
  command: [$PWD/venv/bin/alembic]
  target: shrink@head"
	run_dgm validate plan.yaml
	expect_rc 2
	expect_err "alembic.target 'shrink@head' at 'r1'"
	write_nl_plan plan.yaml r1 "  read_graph: alembic
  command: [$PWD/venv/bin/alembic]
  target: shrink@head
  env: {B: shrink}"
	run_dgm validate plan.yaml
	expect_rc 0
	expect_err "target 'shrink@head' is 1df244e556f5 (read by Alembic: alembic.read_graph)"
	# the alembic in PATH is no way to ask
	write_nl_plan plan.yaml r1 "  read_graph: alembic"
	PATH=$PWD/fakebin:$PATH run_dgm validate plan.yaml
	expect_rc 1
	expect_no "(read by Alembic"
	# a command whose Python cannot be told is a plan error that says why
	write_nl_plan plan.yaml r1 "  read_graph: alembic
  command: [env, alembic]"
	run_dgm validate plan.yaml
	expect_rc 2
	expect_err "cannot tell which Python runs alembic.command [env, alembic]"
}

# rehearse, apply, rollback and resume of a project only Alembic can read:
# the graphs of the tag and of the work tree come from [python, -m,
# alembic], the report says so, the rollback downgrades exactly the newer
# release's revision, and resume completes a killed apply.
test_plan_read_graph_alembic_in_rehearse_apply_rollback_and_resume() {
	new_db "$TEST_DB"
	export DATABASE_URL; DATABASE_URL=$(db_url "$TEST_DB")
	nl_computed
	local v=nl/nlike/db/migration/alembic_migrations/versions/mitaka/contract
	cat >"$v/5c4f0e7a9b21_newer.py" <<'PY'
"""a newer contract revision

Revision ID: 5c4f0e7a9b21
"""
from alembic import op

revision = '5c4f0e7a9b21'
down_revision = '1df244e556f5'


def upgrade():
    op.execute("SELECT '5c4f0e7a9b21 up'")


def downgrade():
    op.execute("SELECT '5c4f0e7a9b21 down'")
PY
	(cd nl && git add -A && git -c user.name=t -c user.email=t@example.com commit -qm r2 &&
		git tag r2 && git -c advice.detachedHead=false checkout -q r1 && alembic upgrade heads >/dev/null 2>&1) ||
		fail "alembic upgrade heads at r1"
	write_nl_plan plan.yaml r2 "  read_graph: alembic
  command: [$(alembic_python), -m, alembic]"
	run_dgm rehearse plan.yaml
	expect_rc 0
	expect_err "(read by Alembic: alembic.read_graph)"
	expect_out ": PASS"
	run_dgm apply plan.yaml
	expect_rc 0
	expect_err "(read by Alembic: alembic.read_graph)"
	[[ $(psql_db "$TEST_DB" -c "SELECT version_num FROM alembic_version ORDER BY 1" | paste -sd' ') == \
		"3894bccad37f 5c4f0e7a9b21" ]] || fail "after apply: $(psql_db "$TEST_DB" -c 'TABLE alembic_version')"
	grep -q '"read_by": *"alembic"' backups/state/reports/*.json ||
		fail "the report JSON does not say read by Alembic: $(ls backups/state/reports)"
	grep -q "read by Alembic" backups/state/reports/*.md || fail "the report does not say read by Alembic"
	run_dgm rollback --to r1 plan.yaml
	expect_rc 0
	expect_err "the revision graphs are read by Alembic"
	[[ $(psql_db "$TEST_DB" -c "SELECT version_num FROM alembic_version ORDER BY 1" | paste -sd' ') == \
		"1df244e556f5 3894bccad37f" ]] || fail "after rollback: $(psql_db "$TEST_DB" -c 'TABLE alembic_version')"
	# an apply killed after the upgrade: resume reads the tag's graph the
	# same way, and completes it
	DGMIGRATE_FAULT_KILL_AT=postconditions run_dgm apply plan.yaml
	[[ $rc == 137 ]] || fail "expected the apply to be killed, exit $rc: $err"
	run_dgm resume plan.yaml
	expect_rc 0
	expect_err "reading the Alembic graph with Alembic itself"
	[[ $(psql_db "$TEST_DB" -c "SELECT version_num FROM alembic_version ORDER BY 1" | paste -sd' ') == \
		"3894bccad37f 5c4f0e7a9b21" ]] || fail "after resume: $(psql_db "$TEST_DB" -c 'TABLE alembic_version')"
	# the database ahead of the plan's tag: the tags that know its revision
	# are found among those only Alembic can read
	write_nl_plan plan.yaml r1 "  read_graph: alembic
  command: [$(alembic_python), -m, alembic]"
	run_dgm validate plan.yaml
	expect_rc 1
	expect_err "the database is at revision '5c4f0e7a9b21', which r1 does not know"
	expect_err "tags that know '5c4f0e7a9b21': r2"
}

# alembic_graph in an export of r1 (the work tree has changed).
alembic_graph_of_tag() {
	local d
	d=$(mktemp -d)
	git archive r1 | tar -x -C "$d"
	(cd "$d" && alembic_graph)
	rm -rf "$d"
}
