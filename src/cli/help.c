/* help.c - --help text, generated from the command and option tables. */
#include <stdio.h>
#include <string.h>

#include "dgm/cli.h"

static void print_opts(const dgm_opt *o)
{
	for (; o && o->name; o++) {
		char left[64];

		if (o->short_name)
			snprintf(left, sizeof(left), "-%c, --%s%s%s", o->short_name, o->name,
				 o->arg ? " " : "", o->arg ? o->arg : "");
		else
			snprintf(left, sizeof(left), "    --%s%s%s", o->name, o->arg ? " " : "",
				 o->arg ? o->arg : "");
		printf("  %-28s %s\n", left, o->help);
	}
}

void dgm_cli_print_command_help(const dgm_cmd *cmd)
{
	printf("usage: dgmigrate %s %s\n\n%s\n", cmd->name, cmd->usage, cmd->summary);
	if (cmd->description && *cmd->description)
		printf("\n%s\n", cmd->description);
	if (!cmd->run)
		printf("\nNot available in this build yet (%s).\n", cmd->issue ? cmd->issue : "planned");
	if (cmd->opts && cmd->opts->name) {
		printf("\noptions:\n");
		print_opts(cmd->opts);
	}
	printf("\ncommon options:\n");
	print_opts(dgm_cli_global_opts());
	printf("\nexit status: 0 success, 1 the run failed, 2 bad usage or bad plan,\n"
	       "3 another run holds the database lock\n");
}

void dgm_cli_print_help(void)
{
	printf("usage: dgmigrate [--version] [--help] COMMAND [ARGS]\n\n"
	       "Apply and undo database releases of Alembic-managed applications on\n"
	       "PostgreSQL: lock, preflight, snapshot, check out the release tag, migrate,\n"
	       "verify, record.\n\ncommands:\n");
	for (const dgm_cmd *c = dgm_commands; c->name; c++)
		printf("  %-10s %s%s\n", c->name, c->summary, c->run ? "" : " (not available yet)");
	printf("\nRun 'dgmigrate COMMAND --help' for a command's options.\n"
	       "\nexit status: 0 success, 1 the run failed, 2 bad usage or bad plan,\n"
	       "3 another run holds the database lock\n");
}
