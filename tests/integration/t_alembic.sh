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
