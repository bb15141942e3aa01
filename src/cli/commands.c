/* commands.c - the command table: name, function, summary, options.
 * It drives dispatch, parsing and --help alike. */
#include <stddef.h>

#include "dgm/cli.h"

static const dgm_opt validate_opts[] = {
	{ "json", 0, NULL, "print the result as JSON events on stdout" },
	{ "offline", 0, NULL, "skip the database connection check" },
	DGM_OPT_END
};

static const dgm_opt apply_opts[] = {
	{ "dry-run", 'n', NULL, "run every check and show what would run, SQL and lint findings included; change nothing" },
	{ "json", 0, NULL, "one JSON event a line on stdout" },
	{ "wait-lock", 0, "DURATION", "wait up to DURATION for the database lock instead of exiting 3" },
	{ "force", 0, NULL, "snapshot and record a run even when the database and code are up to date" },
	DGM_OPT_END
};

static const dgm_opt rollback_opts[] = {
	{ "to", 0, "TAG", "the release to go back to (required)" },
	{ "restore", 0, NULL, "restore the database snapshot instead of downgrading" },
	{ "no-restore", 0, NULL, "never restore the database snapshot" },
	{ "accept-data-loss", 0, NULL, "allow a restore (asked, or the fallback of a failed "
	  "downgrade) that discards writes made since the release finished, or when that cannot "
	  "be known" },
	{ "reason", 0, "TEXT", "why, recorded in the history" },
	{ "trust-unsigned", 0, NULL, "restore a snapshot that has no HMAC (made before snapshots "
	  "were signed) if it is the one to restore; only if nobody else could write its folder" },
	{ "dry-run", 'n', NULL, "show the rollback plan, SQL included; change nothing" },
	{ "wait-lock", 0, "DURATION", "wait up to DURATION for the database lock instead of exiting 3" },
	{ "json", 0, NULL, "one JSON event a line on stdout" },
	DGM_OPT_END
};

static const dgm_opt rehearse_opts[] = {
	{ "step", 0, NULL, "up one, down one, up one, revision by revision" },
	{ "json", 0, NULL, "one JSON event a line on stdout" },
	{ "wait-lock", 0, "DURATION", "wait up to DURATION for the database lock instead of exiting 3" },
	DGM_OPT_END
};

static const dgm_opt lint_opts[] = {
	{ "json", 0, NULL, "print the findings as one JSON document on stdout" },
	{ "sql", 0, "FILE", "lint SQL already rendered by 'alembic ... --sql' instead of a PLAN's "
	  "release (no database: no sizes)" },
	DGM_OPT_END
};

static const dgm_opt json_only_opts[] = {
	{ "json", 0, NULL, "print the result as JSON on stdout" },
	DGM_OPT_END
};

static const dgm_opt resume_opts[] = {
	{ "accept-data-loss", 0, NULL, "allow the restore the run's undo falls back to (a "
	  "downgrade that fails) to discard writes made since the release finished, or when that "
	  "cannot be known" },
	{ "json", 0, NULL, "print the result as JSON on stdout" },
	DGM_OPT_END
};

static const dgm_opt graph_opts[] = {
	{ "at", 0, "TAG", "read the graph as it stood at TAG (or any commit) in git" },
	{ "repo", 0, "DIR", "the application repository (default: the current folder)" },
	{ "config", 0, "FILE", "alembic.ini, relative to the repository (default: alembic.ini)" },
	{ "dot", 0, NULL, "print Graphviz DOT instead of a text tree" },
	{ "json", 0, NULL, "print the result as JSON on stdout" },
	{ "read-with-alembic", 0, NULL, "ask Alembic itself (the Python of the alembic in PATH; "
	  "imports the project's code) when revision files compute what cannot be read as text; "
	  "shown as read by Alembic (a plan's commands: alembic.read_graph: alembic)" },
	DGM_OPT_END
};

static const dgm_opt backups_opts[] = {
	{ "keep", 0, "N", "with prune: how many snapshots to keep" },
	{ "force", 0, NULL, "with prune: also remove the newest pre-apply snapshot (the way back)" },
	{ "terminate-connections", 0, NULL, "with restore: end sessions on the database" },
	{ "no-store", 0, NULL, "with restore: leave the model store as it is" },
	{ "accept-data-loss", 0, NULL, "with restore: allow it to discard writes made since the "
	  "snapshot's release finished (a pre-apply snapshot) or since the snapshot was taken "
	  "(any other), or when that cannot be known" },
	{ "trust-unsigned", 0, NULL, "with verify and restore: accept a snapshot that has no HMAC "
	  "(made before snapshots were signed); only if nobody else could write its folder" },
	{ "json", 0, NULL, "print the result as JSON on stdout" },
	DGM_OPT_END
};

const dgm_cmd dgm_commands[] = {
	{ "validate", dgm_cmd_validate, "check a release plan and its environment; change nothing",
	  "PLAN",
	  "Parse the plan, expand ${VAR} from the environment, and check: the required\n"
	  "variables are set (secret values - environment.secret, names with PASSWORD,\n"
	  "SECRET, TOKEN, KEY or CREDENTIAL, URL passwords - are never printed), the\n"
	  "repository, the tag, alembic.ini and the model store exist, and the database\n"
	  "answers; the tag's revision graph is read (as text, or by Alembic itself with\n"
	  "the plan's alembic.read_graph: alembic); revision files in the version\n"
	  "folders that git does not track, or ignores, are refused by name: alembic\n"
	  "would run them, and they are not the tag's (__pycache__ is left alone).\n"
	  "It warns when the key that signs snapshots (snapshot.key_file,\n"
	  "default <state_dir>/snapshot.key - inside snapshot.directory unless state_dir\n"
	  "is set) lies inside snapshot.directory, where whoever can write snapshots can\n"
	  "read or replace it, or is readable by group or others.",
	  validate_opts, 1, 1, NULL },
	{ "apply", dgm_cmd_apply, "apply a release: lock, preflight, snapshot, checkout, migrate, verify",
	  "PLAN [--dry-run] [--json] [--wait-lock DURATION] [--force]",
	  "When the database already holds the target and HEAD is at the tag, apply\n"
	  "says 'up to date' and exits 0: no snapshot, no report, no history row\n"
	  "(--force runs the release anyway). Otherwise, in this order: take the database's advisory lock (exit 3 if another run holds\n"
	  "it); preflight (every check, reported together, validate's among them:\n"
	  "untracked revision files in the version folders are refused; 'privileges'\n"
	  "says how the snapshot and a restore will go for this role, and an apply no\n"
	  "restore could undo is refused unless snapshot.allow_no_restore);\n"
	  "hooks.before; snapshot the\n"
	  "database (pg_dump) and the model store (archive), both verified before\n"
	  "anything changes (with snapshot.keep_copies >= 1, the default, copy-first:\n"
	  "the database is copied on the server, CREATE DATABASE <db>_dgm_snap_<id>\n"
	  "TEMPLATE <db>, checked (revisions, catalog fingerprint), gates the release;\n"
	  "the store archive and the pg_dump of the copy are made beside checkout and\n"
	  "upgrade: hooks.after waits for the archive, and the run ends, exit status\n"
	  "decided, once the dump is verified: if it fails the release stays applied,\n"
	  "the copy is its snapshot, exit 1; a later restore clones the copy in seconds);\n"
	  "check out the tag (detached HEAD); alembic upgrade, once alembic is proven\n"
	  "to connect to the plan's database ('alembic current' must wait on dgmigrate's\n"
	  "lock of its version table, else nothing runs: see alembic.env in the plan);\n"
	  "postconditions (alembic_version, tables, indexes, validated foreign keys,\n"
	  "ANALYZE); hooks.after; health check; record (journal, report, history).\n"
	  "A failure after the snapshot follows the plan's on_failure: 'rollback' puts\n"
	  "the database, code and model store back and checks them; 'stop' says where\n"
	  "each part is. Preflight includes the release's lint (see 'dgmigrate lint'): a\n"
	  "finding that reaches lint.fail_on refuses the run before anything changes,\n"
	  "naming the revision, file, rule and fix; suppressed findings are listed.\n"
	  "--dry-run runs every check and prints the steps, the SQL of 'alembic upgrade\n"
	  "FROM:TO --sql' from the tag's migrations and the lint's findings; nothing\n"
	  "changes (exit 1 when the lint would refuse the apply).",
	  apply_opts, 1, 1, NULL },
	{ "rollback", dgm_cmd_rollback, "go back to the release at TAG: downgrade, checkout, restore",
	  "--to TAG [PLAN] [--restore|--no-restore] [--accept-data-loss] [--trust-unsigned] [--reason TEXT] [--dry-run] [--json]",
	  "The target is the set of Alembic heads of the graph as it stood at TAG (read\n"
	  "from git). Revision files in the version folders that git does not track are\n"
	  "refused first, as in apply. In this order: lock; a safety snapshot of the current database and\n"
	  "model store, so the rollback itself can be undone (with snapshot.rollback_safety\n"
	  "'copy', the default, the database is copied on the server in seconds: CREATE\n"
	  "DATABASE <db>_dgm_safe_<id> TEMPLATE <db>; it is dumped instead when other\n"
	  "sessions are connected; a model store unchanged since TAG's snapshot links that\n"
	  "archive instead of writing it again); alembic downgrade while the newer code,\n"
	  "which holds the downgrade scripts, is still checked out - in\n"
	  "as many steps as it takes for alembic_version to hold exactly TAG's heads,\n"
	  "also where the newer release merged a branch that forked before TAG (when the\n"
	  "work tree does not know the database's revisions, the commit that does - from\n"
	  "the journal or the tags - is checked out first); restore TAG's database\n"
	  "snapshot where --restore asks or the downgrade failed; restore the model store\n"
	  "from TAG's snapshot; only then check out TAG; verify (revisions, HEAD, the\n"
	  "tables of TAG's snapshot); record with --reason. Every restore first counts\n"
	  "the writes made since the release finished (table write counters against\n"
	  "those recorded then); when there were any, or when that cannot be known\n"
	  "(statistics reset, server restarted, database replaced, no record), it needs\n"
	  "--accept-data-loss, and the report and history name the tables, the counts and\n"
	  "the safety snapshot that keeps them. Without it a failed downgrade stops there:\n"
	  "database as the downgrade left it, code at the newer release, exit 1. A failed\n"
	  "or killed rollback can be run again. PLAN defaults to $DGMIGRATE_PLAN.\n"
	  "--dry-run prints the path (downgrade, fallback, data-loss check) and the\n"
	  "downgrade SQL, and keeps no journal; a step whose SQL cannot be rendered is\n"
	  "named with alembic's error, exit 1.",
	  rollback_opts, 0, 1, NULL },
	{ "rehearse", dgm_cmd_rehearse, "upgrade, verify, downgrade and compare on a scratch copy",
	  "PLAN [--step] [--json] [--wait-lock DURATION]",
	  "Prove the release on a scratch copy of the database; the database itself, the\n"
	  "work tree and the model store are not changed. In this order: lock (exit 3 if\n"
	  "another run holds it); preflight; the tag's migrations exported from git; the\n"
	  "copy <db>_dgm_rehearse_<pid>, made with CREATE DATABASE ... TEMPLATE when no\n"
	  "other session is connected to the database (new sessions wait while it is\n"
	  "copied), else restored from the newest snapshot taken at its revision. On the\n"
	  "copy: schema fingerprint (tables, columns, constraints, indexes, sequences,\n"
	  "views, functions, types, triggers, extensions, grants); alembic upgrade, with\n"
	  "the locks it takes on existing tables recorded (pg_locks sampled; for a\n"
	  "superuser also an event trigger at each DDL statement); postconditions;\n"
	  "rows in the touched tables; alembic downgrade back to the starting revision\n"
	  "(its locks recorded too);\n"
	  "fingerprint, which must equal the first; alembic upgrade again. alembic gets\n"
	  "the copy as DATABASE_URL and through the plan's alembic.env/alembic.x\n"
	  "placeholders (${target.dbname}, ...); it must be seen connecting to the copy,\n"
	  "and the live database's version table is locked while it runs: an alembic\n"
	  "that reaches the live database is stopped there, nothing changed. --step does it\n"
	  "revision by revision (up one, down one, compare, up one) and names the revision\n"
	  "whose downgrade is wrong. The copy is always dropped, also on failure and on\n"
	  "SIGINT/SIGTERM; a copy left by a killed rehearsal of the same database is\n"
	  "dropped by the next one. Report (JSON and Markdown) in <state_dir>/reports,\n"
	  "with how long each lock was held per revision and table, beside the lint's\n"
	  "findings ('held ACCESS EXCLUSIVE on invoices for 4.20 s on a copy of the\n"
	  "real data').\n"
	  "Exit 0 pass, 1 the release failed the rehearsal, 2 bad plan, 3 locked.",
	  rehearse_opts, 1, 1, NULL },
	{ "lint", dgm_cmd_lint, "which migration statement will lock or break production",
	  "PLAN [--json] | --sql FILE [--json]",
	  "The SQL of 'alembic upgrade FROM:TO --sql' rendered from the tag's migrations\n"
	  "(and of the downgrade back, when the release has one head), parsed by\n"
	  "PostgreSQL 15's own parser; each statement attributed to its revision; each\n"
	  "table a finding touches sized in the database's catalog (read-only, under\n"
	  "lock_timeout). A table created in the same release is not flagged; an empty\n"
	  "one makes a lock or rewrite a notice, one of lint.thresholds.error_size\n"
	  "(default 1GiB) or more an error. Rules (lock taken):\n"
	  "  add-index-non-concurrent (SHARE), drop-index-non-concurrent (ACCESS\n"
	  "  EXCLUSIVE), concurrently-in-transaction, add-column-volatile-default\n"
	  "  (rewrite), add-column-not-null-no-default, alter-column-type (rewrite, not\n"
	  "  for varchar widening or varchar to text), set-not-null (scan),\n"
	  "  add-foreign-key-validated (SHARE ROW EXCLUSIVE, scan), add-check-validated\n"
	  "  (scan), add-unique-without-index, rename-column, rename-table, drop-column,\n"
	  "  drop-table, vacuum-full, cluster, reindex-non-concurrent, lock-table,\n"
	  "  update-whole-table, delete-whole-table, enum-add-value-in-transaction,\n"
	  "  truncate-cascade. Each finding names the revision, its file and the line\n"
	  "  of the op.* call (FILE:LINE), the statement, the lock, the table's size,\n"
	  "  why, and the safer way to write it.\n"
	  "Suppress one with '# dgmigrate: allow RULE -- reason' in the revision file,\n"
	  "or every one of a rule with lint.ignore. Exit 0, or 1 when a finding\n"
	  "reaches lint.fail_on (notice, warning, error - the default - or never).\n"
	  "The same findings show in apply's preflight (which refuses at fail_on),\n"
	  "in apply --dry-run after the SQL, and in the rehearsal's report beside the\n"
	  "lock times measured on the scratch copy.",
	  lint_opts, 0, 1, NULL },
	{ "status", dgm_cmd_status, "database revision, code version, what would run, snapshots",
	  "PLAN [--json]",
	  "Read the database's alembic_version, the work tree's HEAD and Alembic heads,\n"
	  "the heads at the plan's tag (from git, without a checkout), the revisions\n"
	  "an upgrade to the plan's target would run, in Alembic's order, and the\n"
	  "snapshots. Changes nothing.",
	  json_only_opts, 1, 1, NULL },
	{ "history", dgm_cmd_history, "list the recorded runs (the dgmigrate.runs table)",
	  "PLAN [--json]",
	  "Every apply and rollback is recorded in the database's dgmigrate.runs table:\n"
	  "run id, command, release, tag, revisions and commits before and after,\n"
	  "snapshot, outcome, user, host, times, reason, and the run's JSON report.",
	  json_only_opts, 1, 1, NULL },
	{ "heads", dgm_cmd_heads, "the Alembic heads of the code, in the work tree or --at TAG",
	  "[--repo DIR] [--config FILE] [--at TAG] [--json] [--read-with-alembic]",
	  "Read alembic.ini and every revision file as text (nothing is imported or\n"
	  "run) and print the heads as 'alembic heads' does. With --at TAG the files\n"
	  "come from the tag's tree in git, whatever the work tree holds.",
	  graph_opts, 0, 0, NULL },
	{ "graph", dgm_cmd_graph, "the Alembic revision graph as a text tree, JSON or DOT",
	  "[--repo DIR] [--config FILE] [--at TAG] [--dot] [--json] [--read-with-alembic]",
	  "Every revision, newest first (the order of 'alembic history'), with its\n"
	  "branch labels, head/branchpoint/mergepoint marks, down revisions and\n"
	  "depends_on. --dot prints Graphviz input: dgmigrate graph --dot | dot -Tsvg",
	  graph_opts, 0, 0, NULL },
	{ "backups", dgm_cmd_backups, "list, take, verify, restore or prune snapshots",
	  "list PLAN | create PLAN | verify ID PLAN [--trust-unsigned] | restore ID PLAN [--accept-data-loss] [--trust-unsigned] | prune PLAN [--keep N] [--force]",
	  "list    the snapshots in the plan's snapshot.directory, newest first, each\n"
	  "        with the release whose state it holds (the tags at the commit that\n"
	  "        was checked out when it was taken), then what an unfinished snapshot\n"
	  "        of the database left (a .partial folder, a server-side copy); --json\n"
	  "        prints one JSON array, leftovers with kind \"orphan\"\n"
	  "create  take a snapshot now (database dump + model store archive, verified)\n"
	  "verify  re-read a snapshot: its HMAC (below), every dump file against its SHA-256, pg_restore\n"
	  "        --list, the archive against its manifest (a database copy: it exists\n"
	  "        and holds the recorded Alembic revisions)\n"
	  "restore take a safety snapshot of the current state (a database copy, as for\n"
	  "        rollback), then put the snapshot back: pg_restore (or, for a copy, a\n"
	  "        TEMPLATE copy of it) into a new database, check its Alembic revision,\n"
	  "        swap names (the new database takes the old one's owner, ACL, settings,\n"
	  "        comment and limits, and dgmigrate.runs is carried over); the model store\n"
	  "        staged beside it and swapped by rename; what they replace is dropped\n"
	  "        only once both are in place. A role without CREATEDB restores in place\n"
	  "        instead: pg_restore --clean's script in one transaction (psql). Like\n"
	  "        every restore it needs --accept-data-loss when writes were made since\n"
	  "        the snapshot's release finished (a pre-apply snapshot) or since it was\n"
	  "        taken (any other), or when that cannot be known\n"
	  "prune   remove all but the N newest (default snapshot.keep), database copies\n"
	  "        dropped with them; the newest is never removed, nor (without --force)\n"
	  "        the newest pre-apply snapshot: a rollback to the previous release\n"
	  "        restores it; what an unfinished snapshot of the database left goes too\n"
	  "        (as with resume and the next run). A model store archive holds only\n"
	  "        what changed since the previous snapshot and reads the rest from the\n"
	  "        archives before it: a pruned snapshot a kept one reads from keeps\n"
	  "        only its archive (no longer listed) until nothing needs it\n"
	  "With snapshot.engine: pgbackrest a snapshot's database is a restore point\n"
	  "'dgmigrate-<id>' in the stanza's WAL archive (DB MiB shows 'pitr'): verify\n"
	  "checks its backup and WAL segment are still in the repository; restore\n"
	  "(pgbackrest.restore: side) rebuilds it beside (pgbackrest restore\n"
	  "--db-include into a side instance), dumps it from there and restores that\n"
	  "dump as above; with restore: cluster it stops the server\n"
	  "(pgbackrest.server.stop), rewinds the whole cluster in place (pgbackrest\n"
	  "restore --delta --type=name), starts it (server.start) and waits for the\n"
	  "end of recovery. While such a restore runs or after it was interrupted,\n"
	  "every other run is refused until resume has finished it\n"
	  "Snapshots are signed: manifest.json carries an HMAC-SHA-256 over itself,\n"
	  "db.sha256 (every dump file) and the archive's manifest, writes.json its own,\n"
	  "keyed by snapshot.key_file (default <state_dir>/snapshot.key, 32 random\n"
	  "bytes made on first use, 0600). verify, restore and rollback refuse a\n"
	  "snapshot whose HMAC does not match, naming the files; one without an HMAC\n"
	  "(made before) only with --trust-unsigned. state_dir defaults to a folder\n"
	  "INSIDE snapshot.directory: whoever can write the snapshots can then read or\n"
	  "replace the key. Where others can write snapshot.directory, set\n"
	  "snapshot.key_file (or state_dir) elsewhere; validate warns.",
	  backups_opts, 2, 3, NULL },
	{ "resume", dgm_cmd_resume, "finish or undo an interrupted run from the journal",
	  "PLAN [--accept-data-loss] [--json]",
	  "Find the newest run in the plan's state folder whose journal has no end\n"
	  "(it was killed or crashed) and settle it: an apply whose upgrade finished\n"
	  "is completed (postconditions, hooks, health check, record); any other\n"
	  "interrupted apply is undone (downgrade or snapshot restore, previous commit,\n"
	  "model store) and checked; an interrupted rollback is run again to its tag.\n"
	  "A snapshot restore passes the same data-loss check as every restore: when\n"
	  "writes were made since the release finished, or that cannot be known, it is\n"
	  "refused, the journal stays open, and --accept-data-loss lets it go ahead.\n"
	  "First of all an interrupted pgbackrest restore: cluster is settled from its\n"
	  "own journal (<state_dir>/pgbackrest-cluster.jsonl): killed before the\n"
	  "server was stopped it is dropped (nothing had changed), later it is\n"
	  "finished (pgbackrest restore --delta again, server.start, the end of\n"
	  "recovery waited for): the server is never left stopped. A side instance that\n"
	  "an interrupted restore: side left running is stopped and removed. Then a\n"
	  "database swap killed between its two renames (its marker\n"
	  "<state_dir>/db-swap.json) is settled: the database set aside goes back under\n"
	  "its name and the staging one is dropped; while that marker is there every\n"
	  "other command is refused.",
	  resume_opts, 1, 1, NULL },
	{ NULL, NULL, NULL, NULL, NULL, NULL, 0, 0, NULL }
};
