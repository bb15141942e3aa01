/*
 * cmd.c - running pgbackrest for the plan's stanza, and reading what
 * `info --output=json` says of its backups.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dgm/log.h"
#include "dgm/pgbackrest.h"
#include "dgm/run.h"
#include "pgbr_int.h"

void dgm_pgbr_timeout_opt(char *buf, size_t len, long ms)
{
	snprintf(buf, len, "--archive-timeout=%ld.%03ld", ms / 1000, ms % 1000);
}

/* command... [--config=F] --stanza=S options... cmd args... NULL */
static const char **build_argv(char **config, char **stanza, const dgm_plan *plan,
			       const char *cmd, const char *const *args)
{
	const dgm_plan_pgbackrest *b = &plan->pgbackrest;
	size_t nargs = 0, n = 0;
	const char **argv;

	while (args && args[nargs])
		nargs++;
	argv = dgm_xcalloc(b->command.count + b->options.count + nargs + 4, sizeof(*argv));
	for (size_t i = 0; i < b->command.count; i++)
		argv[n++] = b->command.items[i];
	*config = b->config ? dgm_xasprintf("--config=%s", b->config) : NULL;
	if (*config)
		argv[n++] = *config;
	*stanza = dgm_xasprintf("--stanza=%s", b->stanza);
	argv[n++] = *stanza;
	for (size_t i = 0; i < b->options.count; i++)
		argv[n++] = b->options.items[i];
	argv[n++] = cmd;
	for (size_t i = 0; i < nargs; i++)
		argv[n++] = args[i];
	return argv;
}

int dgm_pgbr_run(dgm_buf *out, const dgm_plan *plan, const char *cmd,
		 const char *const *args, long timeout_ms, dgm_error *err)
{
	char *config, *stanza;
	const char **argv = build_argv(&config, &stanza, plan, cmd, args);
	dgm_child c = { .argv = argv, .out = out, .timeout_ms = timeout_ms };
	int ret;

	dgm_log(DGM_LOG_DEBUG, "pgbackrest %s for stanza '%s'", cmd, plan->pgbackrest.stanza);
	ret = dgm_run(&c, err);
	if (ret)
		dgm_error_prefix(err, "pgbackrest %s (stanza '%s')", cmd, plan->pgbackrest.stanza);
	free(config);
	free(stanza);
	free(argv);
	return ret;
}

char *dgm_pgbr_argv_text(const char *const *argv, size_t n)
{
	dgm_buf b = DGM_BUF_INIT;

	for (size_t i = 0; i < n && argv[i]; i++) {
		bool quote = !*argv[i] || strpbrk(argv[i], " \t'\"\\$") != NULL;

		dgm_buf_puts(&b, i ? " " : "");
		if (!quote) {
			dgm_buf_puts(&b, argv[i]);
			continue;
		}
		dgm_buf_putc(&b, '\'');
		for (const char *c = argv[i]; *c; c++)
			dgm_buf_puts(&b, *c == '\'' ? "'\\''" : (char[]){ *c, 0 });
		dgm_buf_putc(&b, '\'');
	}
	return dgm_buf_detach(&b);
}

char *dgm_pgbr_cmd_text(const dgm_plan *plan, const char *cmd, const char *const *args)
{
	char *config, *stanza, *text;
	const char **argv = build_argv(&config, &stanza, plan, cmd, args);
	size_t n = 0;

	while (argv[n])
		n++;
	text = dgm_pgbr_argv_text(argv, n);
	free(config);
	free(stanza);
	free(argv);
	return text;
}

static const char *jstr(json_t *o, const char *a, const char *b)
{
	json_t *v = json_object_get(o, a);

	if (b)
		v = json_object_get(v, b);
	return json_is_string(v) ? json_string_value(v) : "";
}

/* The newest backup without error. */
static void newest_backup(dgm_pgbr_backup_info *info, json_t *list)
{
	info->backups = (int)json_array_size(list);
	for (size_t i = json_array_size(list); i-- > 0;) {
		json_t *bk = json_array_get(list, i), *inf = json_object_get(bk, "info");

		if (json_is_true(json_object_get(bk, "error")))
			continue;
		snprintf(info->label, sizeof(info->label), "%s", jstr(bk, "label", NULL));
		snprintf(info->type, sizeof(info->type), "%s", jstr(bk, "type", NULL));
		snprintf(info->wal_stop, sizeof(info->wal_stop), "%s", jstr(bk, "archive", "stop"));
		info->repo_bytes = json_integer_value(json_object_get(
			json_object_get(inf, "repository"), "size"));
		info->db_bytes = json_integer_value(json_object_get(inf, "size"));
		return;
	}
}

int dgm_pgbr_info(dgm_pgbr_backup_info *info, const dgm_plan *plan, dgm_error *err)
{
	const char *args[] = { "--output=json", NULL };
	dgm_buf out = DGM_BUF_INIT;
	json_t *root = NULL, *st;
	json_error_t je;
	int ret = -1;

	memset(info, 0, sizeof(*info));
	if (dgm_pgbr_run(&out, plan, "info", args, 120000, err))
		goto out;
	root = json_loads(dgm_buf_cstr(&out), 0, &je);
	st = json_array_get(root, 0);
	if (!json_is_object(st)) {
		dgm_error_set(err, DGM_E_RUN, "pgbackrest info (stanza '%s') printed no stanza as "
			      "JSON: %s", plan->pgbackrest.stanza, root ? "empty list" : je.text);
		goto out;
	}
	info->status = (int)json_integer_value(json_object_get(json_object_get(st, "status"),
								"code"));
	snprintf(info->status_message, sizeof(info->status_message), "%s",
		 jstr(st, "status", "message"));
	newest_backup(info, json_object_get(st, "backup"));
	ret = 0;
out:
	json_decref(root);
	dgm_buf_free(&out);
	return ret;
}
