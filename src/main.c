/* main.c - the entry point: find the command, parse, run, report. */
#include <stdio.h>
#include <string.h>

#include "dgm/cli.h"
#include "dgm/log.h"

#ifndef DGM_VERSION
#define DGM_VERSION "0.1.0-dev"
#endif

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
