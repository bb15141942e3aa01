/*
 * cli.h - the command table and the option tables that drive both
 * parsing and --help (STYLE.md: one option table per command).
 */
#ifndef DGM_CLI_H
#define DGM_CLI_H

#include <stdbool.h>
#include <stdio.h>

#include "dgm/alembic.h"
#include "dgm/buf.h"
#include "dgm/error.h"

typedef struct dgm_opt {
	const char *name;       /* long name without "--" */
	char short_name;        /* 0: none */
	const char *arg;        /* metavariable, NULL for a flag */
	const char *help;
} dgm_opt;

#define DGM_OPT_END { NULL, 0, NULL, NULL }

#define DGM_ARGS_MAX_POS 8

/* The parsed command line of one command. */
typedef struct dgm_args {
	const struct dgm_cmd *cmd;
	const char *values[32];  /* per option index: value, or "" for a set flag, NULL unset */
	const char *pos[DGM_ARGS_MAX_POS];
	int npos;
} dgm_args;

typedef int (*dgm_cmd_fn)(const dgm_args *args, dgm_error *err);

typedef struct dgm_cmd {
	const char *name;
	dgm_cmd_fn run;          /* NULL: not built yet */
	const char *summary;     /* one line for the command list */
	const char *usage;       /* after "dgmigrate NAME " */
	const char *description; /* paragraph(s) for NAME --help */
	const dgm_opt *opts;     /* DGM_OPT_END-terminated */
	int min_pos, max_pos;    /* positional argument counts */
	const char *issue;       /* for commands not built yet: where it is tracked */
} dgm_cmd;

/* The command table, NULL-name-terminated (src/main.c). */
extern const dgm_cmd dgm_commands[];

/* Parse argv (after the command name) against cmd's option table plus
 * the global options. Unknown options are DGM_E_USAGE errors. */
int dgm_args_parse(dgm_args *args, const dgm_cmd *cmd, int argc, char **argv,
		   dgm_error *err);
/* The value of option NAME: NULL unset, "" for a set flag. */
const char *dgm_args_get(const dgm_args *args, const char *name);
bool dgm_args_flag(const dgm_args *args, const char *name);
/* --wait-lock DURATION in ms into *ms (left as is when unset). */
int dgm_args_wait_lock(long *ms, const dgm_args *args, dgm_error *err);

/* Print the command's --help text on stdout. */
void dgm_cli_print_command_help(const dgm_cmd *cmd);
void dgm_cli_print_help(void);
/* The options every command takes (--help, --verbose, --quiet). */
const dgm_opt *dgm_cli_global_opts(void);
/* The man page dgmigrate(1) and the bash completion, from the same
 * tables as --help (src/cli/docs.c). */
void dgm_cli_write_man(FILE *f, const char *version);
void dgm_cli_write_bash_completion(FILE *f);

/* Commands (src/cli/<name>.c). */
int dgm_cmd_validate(const dgm_args *args, dgm_error *err);
int dgm_cmd_backups(const dgm_args *args, dgm_error *err);
int dgm_cmd_apply(const dgm_args *args, dgm_error *err);
int dgm_cmd_rollback(const dgm_args *args, dgm_error *err);
int dgm_cmd_resume(const dgm_args *args, dgm_error *err);
int dgm_cmd_history(const dgm_args *args, dgm_error *err);
int dgm_cmd_heads(const dgm_args *args, dgm_error *err);
int dgm_cmd_graph(const dgm_args *args, dgm_error *err);
int dgm_cmd_status(const dgm_args *args, dgm_error *err);
int dgm_cmd_rehearse(const dgm_args *args, dgm_error *err);
int dgm_cmd_lint(const dgm_args *args, dgm_error *err);

#endif
