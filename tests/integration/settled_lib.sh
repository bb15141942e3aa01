# settled_lib.sh - what "settled" means after a kill and `resume` (sourced
# by t_crash and t_resume): the database exactly at one release
# (revisions, schema fingerprint, row checksums), HEAD the same release,
# the model store as it was, the lock free, every journal ended exactly
# once, one history row per finished run with the journal's outcome, and
# nothing left behind. The caller sets fp15, head15, head16, store (and
# fp16 once a real apply made it: unset, v1.6's rows are not compared).

# Nothing left behind after a kill: no .partial folder, no server-side
# copy that no snapshot owns, no model-store staging or aside folder.
CHECK_LEAKS=${CHECK_LEAKS:-1}
CHECK_STORE_SWAP=${CHECK_STORE_SWAP:-1}

V15=5e9f3b7a1c62
V16=b6e14d8a0f97

revisions() { psql_db "$TEST_DB" -c "SELECT string_agg(version_num, ',' ORDER BY 1) FROM alembic_version"; }

# fingerprint: the schema (pg_dump -s) and every table's row checksum, as
# db_fingerprint (lib.sh) but in two processes: no restore of the database
# happens in these trials, so the schema needs no canonical form.
fingerprint() {
	schema_dump "$TEST_DB" | md5sum | sed 's/ .*/ schema/'
	psql_db "$TEST_DB" <<'SQL'
SELECT format('SELECT %L || '' '' || md5(coalesce(string_agg(x::text, ''|'' ORDER BY x::text), '''')) FROM %s x', t, t)
FROM (SELECT format('%I.%I', schemaname, relname) AS t FROM pg_stat_user_tables
      WHERE schemaname <> 'dgmigrate' ORDER BY 1) s
\gexec
SQL
}

# The store's content and modes (not the folders' times: a restore by
# swap makes a new folder).
store_fp() { (cd models && find . -printf '%p %y %m %s %l\n' | sort &&
	find . -type f -print0 | sort -z | xargs -0 -r sha256sum); }

journal_outcome() { sed -n 's/.*"outcome":"\([^"]*\)".*"type":"end".*/\1/p' "$1"; }

# Every journal ended once; a finished run that knew the database has one
# history row with the journal's outcome; a resumed one (re-run under a
# new journal) and an open one none.
expect_journals_and_history() {
	local j run ends outcome hist
	for j in backups/state/journal/*.jsonl; do
		run=$(basename "$j" .jsonl)
		ends=$(grep -c '"type":"end"' "$j" || true)
		[[ $ends == 1 ]] || fail "journal $run ended $ends times"
		outcome=$(journal_outcome "$j")
		hist=$(psql_db "$TEST_DB" -c "SELECT string_agg(outcome, ',') FROM dgmigrate.runs
			WHERE run_id = '$run'")
		if [[ $outcome == resumed ]] || ! grep -q '"type":"facts"' "$j"; then
			[[ -z $hist ]] || fail "run $run ($outcome) has a history row: $hist"
		else
			[[ $hist == "$outcome" ]] || fail "run $run ended '$outcome', history says '$hist'"
		fi
	done
}

expect_no_leaks() {
	local copy
	if [[ $CHECK_LEAKS == 1 ]]; then
		[[ -z $(find backups -maxdepth 1 -name '*.partial') ]] ||
			fail "partial snapshot folders left: $(ls backups)"
		# nor a copy-first snapshot's unfinished dump or archive
		[[ -z $(find backups -mindepth 2 -maxdepth 2 -name 'db*.partial' -o -name '*.tmp') ]] ||
			fail "a partial dump or archive left: $(find backups -mindepth 2 -maxdepth 2 -name 'db*.partial' -o -name '*.tmp')"
		for copy in $(psql_db postgres -c "SELECT datname FROM pg_database WHERE
				datname LIKE '${TEST_DB:0:30}\_dgm\_%'"); do
			# (names keep 30 characters of the database's: the copies
			# of the file's other tests may share the prefix)
			grep -qsF -- "$copy" backups/*/manifest.json "${DGM_WORK:-.}"/*/backups/*/manifest.json ||
				fail "server-side copy '$copy' belongs to no snapshot"
		done
	fi
	if [[ $CHECK_STORE_SWAP == 1 ]]; then
		[[ -z $(find . -maxdepth 1 -name 'models?*') ]] ||
			fail "model store leftovers: $(find . -maxdepth 1 -name 'models?*')"
	fi
}

# Exactly one release everywhere; sets $at (15 or 16) for the next trial.
expect_settled() {
	local revs fp
	revs=$(revisions)
	fp=$(fingerprint)
	case $revs in
	"$V15") at=15; [[ $fp == "$fp15" ]] || fail "at $V15 but not v1.5's schema and rows:
$fp
--- expected:
$fp15"
		[[ $(git -C app rev-parse HEAD) == "$head15" ]] || fail "database at v1.5, HEAD is not" ;;
	"$V16") at=16; [[ -z ${fp16:-} || $fp == "$fp16" ]] || fail "at $V16 but not v1.6's schema and rows"
		[[ $(git -C app rev-parse HEAD) == "$head16" ]] || fail "database at v1.6, HEAD is not" ;;
	*) fail "alembic_version is neither release's: '$revs'" ;;
	esac
	[[ -z $(git -C app status --porcelain) ]] || fail "work tree not clean"
	[[ $(store_fp) == "$store" ]] || fail "the model store is not as it was"
	[[ $(pg_admin -At -c "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'") == 0 ]] ||
		fail "an advisory lock is still held"
	expect_journals_and_history
	expect_no_leaks
}

# settle [PLAN]: resume settles it, and a second resume finds nothing.
settle() {
	run_dgm resume "${1:-plan.yaml}"
	expect_rc 0
	run_dgm resume "${1:-plan.yaml}"
	expect_err "nothing to resume"
	expect_settled
}

