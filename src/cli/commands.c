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
	{ "dry-run", 'n', NULL, "run every check and show what would run, SQL included; change nothing" },
	{ "json", 0, NULL, "one JSON event a line on stdout" },
	{ "wait-lock", 0, "DURATION", "wait up to DURATION for the database lock instead of exiting 3" },
	DGM_OPT_END
};

static const dgm_opt rollback_opts[] = {
	{ "to", 0, "TAG", "the release to go back to (required)" },
	{ "restore", 0, NULL, "restore the database snapshot instead of downgrading" },
	{ "no-restore", 0, NULL, "never restore the database snapshot" },
	{ "accept-data-loss", 0, NULL, "allow a restore that discards writes made since the snapshot" },
	{ "reason", 0, "TEXT", "why, recorded in the history" },
	{ "dry-run", 'n', NULL, "show the rollback plan, SQL included; change nothing" },
	{ "json", 0, NULL, "one JSON event a line on stdout" },
	DGM_OPT_END
};

static const dgm_opt rehearse_opts[] = {
	{ "step", 0, NULL, "up one, down one, up one, revision by revision" },
	{ "json", 0, NULL, "one JSON event a line on stdout" },
	DGM_OPT_END
};

static const dgm_opt json_only_opts[] = {
	{ "json", 0, NULL, "print the result as JSON on stdout" },
	DGM_OPT_END
};

static const dgm_opt graph_opts[] = {
	{ "at", 0, "TAG", "read the graph as it stood at TAG (or any commit) in git" },
	{ "repo", 0, "DIR", "the application repository (default: the current folder)" },
	{ "config", 0, "FILE", "alembic.ini, relative to the repository (default: alembic.ini)" },
	{ "dot", 0, NULL, "print Graphviz DOT instead of a text tree" },
	{ "json", 0, NULL, "print the result as JSON on stdout" },
	DGM_OPT_END
};

static const dgm_opt backups_opts[] = {
	{ "keep", 0, "N", "with prune: how many snapshots to keep" },
	{ "json", 0, NULL, "print the result as JSON on stdout" },
	DGM_OPT_END
};

const dgm_cmd dgm_commands[] = {
	{ "validate", dgm_cmd_validate, "check a release plan and its environment; change nothing",
	  "PLAN",
	  "Parse the plan, expand ${VAR} from the environment, and check: the required\n"
	  "variables are set (their values are never printed), the repository, the tag,\n"
	  "alembic.ini and the model store exist, and the database answers.",
	  validate_opts, 1, 1, NULL },
	{ "apply", NULL, "apply a release: lock, preflight, snapshot, checkout, migrate, verify",
	  "PLAN [--dry-run] [--json]", NULL, apply_opts, 1, 1, "issue 5" },
	{ "rollback", NULL, "go back to the release at TAG: downgrade, checkout, restore",
	  "--to TAG [PLAN] [--restore|--no-restore] [--dry-run]", NULL, rollback_opts, 0, 1,
	  "issue 6" },
	{ "rehearse", NULL, "upgrade, verify, downgrade and compare on a scratch copy",
	  "PLAN [--step]", NULL, rehearse_opts, 1, 1, "issue 7" },
	{ "status", NULL, "database revision, code version, last runs, backups", "[PLAN] [--json]",
	  NULL, json_only_opts, 0, 1, "issue 3" },
	{ "history", NULL, "list the recorded runs", "PLAN [--json]", NULL, json_only_opts, 1, 1,
	  "issue 5" },
	{ "heads", NULL, "the Alembic heads of the code, at HEAD or --at TAG",
	  "[--repo DIR] [--at TAG] [--json]", NULL, graph_opts, 0, 0, "issue 3" },
	{ "graph", NULL, "the Alembic revision graph as a tree or DOT",
	  "[--repo DIR] [--at TAG] [--dot] [--json]", NULL, graph_opts, 0, 0, "issue 3" },
	{ "backups", NULL, "list, verify or prune snapshots", "list|verify ID|prune --keep N PLAN",
	  NULL, backups_opts, 1, 3, "issue 4" },
	{ "resume", NULL, "finish or undo an interrupted run from the journal", "PLAN", NULL,
	  json_only_opts, 1, 1, "issue 5" },
	{ NULL, NULL, NULL, NULL, NULL, NULL, 0, 0, NULL }
};
