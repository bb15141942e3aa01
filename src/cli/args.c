/* args.c - parse a command's argv against its option table. */
#include <stdio.h>
#include <string.h>

#include "dgm/cli.h"
#include "dgm/log.h"
#include "dgm/plan.h"

/* Options every command accepts; they come after the command's own in
 * the index space of dgm_args.values. */
static const dgm_opt global_opts[] = {
	{ "help", 'h', NULL, "show this help and exit" },
	{ "verbose", 'v', NULL, "debug detail on stderr" },
	{ "quiet", 'q', NULL, "only errors and warnings on stderr" },
	DGM_OPT_END
};

const dgm_opt *dgm_cli_global_opts(void)
{
	return global_opts;
}

static int count_opts(const dgm_opt *o)
{
	int n = 0;

	while (o && o[n].name)
		n++;
	return n;
}

/* Find an option by long or short name; its index in values[] or -1. */
static int find_opt(const dgm_cmd *cmd, const char *lname, size_t llen, char sname)
{
	int nc = count_opts(cmd->opts);

	for (int pass = 0; pass < 2; pass++) {
		const dgm_opt *o = pass ? global_opts : cmd->opts;
		int base = pass ? nc : 0;

		for (int i = 0; o && o[i].name; i++) {
			if (lname && strlen(o[i].name) == llen && !strncmp(o[i].name, lname, llen))
				return base + i;
			if (!lname && sname && o[i].short_name == sname)
				return base + i;
		}
	}
	return -1;
}

static const dgm_opt *opt_at(const dgm_cmd *cmd, int idx)
{
	int nc = count_opts(cmd->opts);

	return idx < nc ? &cmd->opts[idx] : &global_opts[idx - nc];
}

static int take_value(dgm_args *args, const dgm_cmd *cmd, int idx, const char *inline_val,
		      int argc, char **argv, int *i, const char *spelled, dgm_error *err)
{
	const dgm_opt *o = opt_at(cmd, idx);

	if (!o->arg) {
		if (inline_val)
			return dgm_error_set(err, DGM_E_USAGE, "option '%s' takes no value", spelled);
		args->values[idx] = "";
		return 0;
	}
	if (inline_val) {
		args->values[idx] = inline_val;
		return 0;
	}
	if (*i + 1 >= argc)
		return dgm_error_set(err, DGM_E_USAGE, "option '%s' needs a value (%s)",
				     spelled, o->arg);
	args->values[idx] = argv[++*i];
	return 0;
}

static int parse_long(dgm_args *args, const dgm_cmd *cmd, int argc, char **argv, int *i,
		      dgm_error *err)
{
	const char *name = argv[*i] + 2;
	const char *eq = strchr(name, '=');
	size_t len = eq ? (size_t)(eq - name) : strlen(name);
	int idx = find_opt(cmd, name, len, 0);

	if (idx < 0) {
		dgm_error_set(err, DGM_E_USAGE, "unknown option '--%.*s' for '%s'", (int)len,
			      name, cmd->name);
		dgm_error_hint(err, "see 'dgmigrate %s --help'", cmd->name);
		return -1;
	}
	char spelled[64];

	snprintf(spelled, sizeof(spelled), "--%.*s", (int)len, name);
	return take_value(args, cmd, idx, eq ? eq + 1 : NULL, argc, argv, i, spelled, err);
}

static int parse_short(dgm_args *args, const dgm_cmd *cmd, int argc, char **argv, int *i,
		       dgm_error *err)
{
	const char *p = argv[*i] + 1;

	for (; *p; p++) {
		int idx = find_opt(cmd, NULL, 0, *p);
		char spelled[3] = { '-', *p, 0 };

		if (idx < 0) {
			dgm_error_set(err, DGM_E_USAGE, "unknown option '-%c' for '%s'", *p,
				      cmd->name);
			dgm_error_hint(err, "see 'dgmigrate %s --help'", cmd->name);
			return -1;
		}
		if (opt_at(cmd, idx)->arg)
			return take_value(args, cmd, idx, p[1] ? p + 1 : NULL, argc, argv, i,
					  spelled, err);
		args->values[idx] = "";
	}
	return 0;
}

int dgm_args_parse(dgm_args *args, const dgm_cmd *cmd, int argc, char **argv, dgm_error *err)
{
	bool only_pos = false;

	memset(args, 0, sizeof(*args));
	args->cmd = cmd;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		int rc = 0;

		if (!only_pos && !strcmp(a, "--")) {
			only_pos = true;
			continue;
		}
		if (!only_pos && a[0] == '-' && a[1] == '-')
			rc = parse_long(args, cmd, argc, argv, &i, err);
		else if (!only_pos && a[0] == '-' && a[1])
			rc = parse_short(args, cmd, argc, argv, &i, err);
		else if (args->npos >= DGM_ARGS_MAX_POS)
			rc = dgm_error_set(err, DGM_E_USAGE, "too many arguments for '%s'", cmd->name);
		else
			args->pos[args->npos++] = a;
		if (rc)
			return -1;
	}
	if (dgm_args_flag(args, "help"))
		return 0;
	if (args->npos < cmd->min_pos || args->npos > cmd->max_pos) {
		dgm_error_set(err, DGM_E_USAGE, "%s arguments for '%s'",
			      args->npos < cmd->min_pos ? "missing" : "too many", cmd->name);
		dgm_error_hint(err, "usage: dgmigrate %s %s", cmd->name, cmd->usage);
		return -1;
	}
	return 0;
}

const char *dgm_args_get(const dgm_args *args, const char *name)
{
	int idx = find_opt(args->cmd, name, strlen(name), 0);

	return idx < 0 ? NULL : args->values[idx];
}

bool dgm_args_flag(const dgm_args *args, const char *name)
{
	return dgm_args_get(args, name) != NULL;
}

int dgm_args_wait_lock(long *ms, const dgm_args *args, dgm_error *err)
{
	const char *wait = dgm_args_get(args, "wait-lock");

	if (wait && dgm_parse_duration(wait, ms) != 0) {
		dgm_error_set(err, DGM_E_USAGE, "--wait-lock takes a duration such as 30s or 5m, "
			      "got '%s'", wait);
		return -1;
	}
	return 0;
}
