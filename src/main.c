/* main.c - the command table and the entry point. */
#include <stdio.h>
#include <string.h>

#include "dgm/cli.h"
#include "dgm/log.h"

#ifndef DGM_VERSION
#define DGM_VERSION "0.1.0-dev"
#endif

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

static const dgm_cmd *find_command(const char *name)
{
	for (const dgm_cmd *c = dgm_commands; c->name; c++)
		if (!strcmp(c->name, name))
			return c;
	return NULL;
}

static int run_command(const dgm_cmd *cmd, int argc, char **argv, dgm_error *err)
{
	dgm_args args;

	if (dgm_args_parse(&args, cmd, argc, argv, err))
		return -1;
	if (dgm_args_flag(&args, "help")) {
		dgm_cli_print_command_help(cmd);
		return 0;
	}
	if (dgm_args_flag(&args, "quiet"))
		dgm_log_set_level(DGM_LOG_WARN);
	if (dgm_args_flag(&args, "verbose"))
		dgm_log_set_level(DGM_LOG_DEBUG);
	if (dgm_args_flag(&args, "json"))
		dgm_log_set_json(true);
	if (!cmd->run) {
		dgm_error_set(err, DGM_E_NOT_BUILT, "'%s' is not available in this build yet",
			      cmd->name);
		dgm_error_hint(err, "it is tracked in %s; nothing was changed", cmd->issue);
		return -1;
	}
	return cmd->run(&args, err);
}

int main(int argc, char **argv)
{
	dgm_error err = DGM_ERROR_INIT;
	const dgm_cmd *cmd;
	int rc;

	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
	    !strcmp(argv[1], "help")) {
		if (argc >= 3 && (cmd = find_command(argv[2])) != NULL)
			dgm_cli_print_command_help(cmd);
		else
			dgm_cli_print_help();
		return argc < 2 ? 2 : 0;
	}
	if (!strcmp(argv[1], "--version")) {
		printf("dgmigrate %s\n", DGM_VERSION);
		return 0;
	}
	cmd = find_command(argv[1]);
	if (!cmd) {
		dgm_error_set(&err, DGM_E_USAGE, "unknown command '%s'", argv[1]);
		dgm_error_hint(&err, "run 'dgmigrate --help' for the list of commands");
		rc = -1;
	} else {
		rc = run_command(cmd, argc - 2, argv + 2, &err);
	}
	if (rc)
		dgm_log_error_report(&err);
	dgm_log_clear_secrets();
	return rc ? dgm_error_exit_code(&err) : 0;
}
