/*
 * plan.c - load a release plan: read the file, build the YAML tree,
 * apply the schema, then fill in the defaults that depend on other keys
 * (alembic.ini under the repository, the state folder under the
 * snapshots, hook timeouts).
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dgm/buf.h"
#include "dgm/lint.h"
#include "internal.h"

static void set_defaults(dgm_plan *p)
{
	p->version = 1;
	p->snapshot.format = DGM_DUMP_DIRECTORY;
	p->snapshot.jobs = 2;
	p->snapshot.compression = 1;
	p->snapshot.keep = 5;
	p->snapshot.keep_copies = 1;
	p->snapshot.min_free_bytes = 1LL << 30;
	p->model_store.level = 3;
	p->model_store.threads = 0;
	p->postconditions.foreign_keys_validated = true;
	p->postconditions.analyze = true;
	p->health_check.timeout_ms = 60000;
	p->health_check.interval_ms = 2000;
	p->health_check.retries = 10;
	p->timeouts.lock_ms = 5000;
	p->timeouts.statement_ms = 0;
	p->timeouts.hook_ms = 60000;
	p->on_failure = DGM_ON_FAILURE_ROLLBACK;
	p->lint.fail_on = DGM_LINT_ERROR;
	p->lint.error_bytes = 1LL << 30;
	dgm_plan_pgbr_defaults(p);
}

static void hooks_finish(dgm_plan_hooks *h, long hook_ms)
{
	for (size_t i = 0; i < h->count; i++)
		if (h->items[i].timeout_ms < 0)
			h->items[i].timeout_ms = hook_ms;
}

/* An absolute config inside the repository spelled through another path
 * (a symlink) is rewritten under release.repository: alembic must run
 * in the tree being migrated (a rehearsal's export), found by prefix. */
static void config_in_repository(dgm_plan *p)
{
	char real_repo[PATH_MAX], real_dir[PATH_MAX];
	char *dir = dgm_xstrdup(p->alembic.config), *slash = strrchr(dir, '/');
	size_t n = strlen(p->release.repository);

	if (!strncmp(p->alembic.config, p->release.repository, n) && p->alembic.config[n] == '/')
		goto out;
	*slash = '\0';
	if (!realpath(p->release.repository, real_repo) || !realpath(*dir ? dir : "/", real_dir))
		goto out;
	n = strlen(real_repo);
	if (!strncmp(real_dir, real_repo, n) && (real_dir[n] == '/' || !real_dir[n])) {
		char *fixed = dgm_xasprintf("%s%s/%s", p->release.repository, real_dir + n,
					    slash + 1);

		free(p->alembic.config);
		p->alembic.config = fixed;
	}
out:
	free(dir);
}

static void finish(dgm_plan *p)
{
	/* like alembic: alembic.config, else $ALEMBIC_CONFIG, else alembic.ini */
	const char *env = getenv("ALEMBIC_CONFIG");
	char *config = p->alembic.config ? p->alembic.config :
		       dgm_xstrdup(env && *env ? env : "alembic.ini");

	p->alembic.config = dgm_plan_path_join(p->release.repository, config);
	free(config);
	config_in_repository(p);
	if (!p->alembic.command.count) {
		p->alembic.command.items = dgm_xcalloc(2, sizeof(char *));
		p->alembic.command.items[0] = dgm_xstrdup("alembic");
		p->alembic.command.count = 1;
	}
	if (!p->alembic.target)
		p->alembic.target = dgm_xstrdup("heads");
	if (!p->database.url)
		p->database.url = dgm_xstrdup("");
	if (!p->alembic.version_table)
		p->alembic.version_table = dgm_xstrdup("alembic_version");
	if (!p->state_dir)
		p->state_dir = dgm_plan_path_join(p->snapshot.directory, "state");
	hooks_finish(&p->hooks.before, p->timeouts.hook_ms);
	hooks_finish(&p->hooks.after, p->timeouts.hook_ms);
	dgm_plan_pgbr_finish(p);
}

/* dir made absolute against the current folder; NULL means it. */
static char *absolute_dir(const char *dir)
{
	char cwd[PATH_MAX];

	if (dir && dir[0] == '/')
		return dgm_plan_path_join("/", dir);
	if (!getcwd(cwd, sizeof(cwd)))
		strcpy(cwd, "/");
	return dgm_plan_path_join(cwd, dir ? dir : ".");
}

int dgm_plan_parse(dgm_plan *plan, const char *name, const char *dir, const char *text,
		   size_t len, dgm_error *err)
{
	dgm_ynode *root = NULL;
	int ret = -1;

	memset(plan, 0, sizeof(*plan));
	plan->path = dgm_xstrdup(name);
	plan->dir = absolute_dir(dir);
	set_defaults(plan);
	if (dgm_plan_yparse(&root, name, text, len, err))
		goto out;
	if (dgm_plan_schema_apply(plan, root, err))
		goto out;
	finish(plan);
	if (dgm_plan_pgbr_check(plan, err))
		goto out;
	ret = 0;
out:
	dgm_plan_ynode_free(root);
	if (ret)
		dgm_plan_free(plan);
	return ret;
}

static int read_plan(const char *path, dgm_buf *b, dgm_error *err)
{
	char chunk[16384];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int ret = -1;

	if (fd < 0)
		goto fail;
	for (;;) {
		ssize_t n = read(fd, chunk, sizeof(chunk));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			goto fail;
		if (n == 0)
			break;
		dgm_buf_put(b, chunk, (size_t)n);
	}
	dgm_buf_puts(b, "");
	ret = 0;
	goto out;
fail:
	dgm_error_errno(err, DGM_E_PLAN, "cannot read plan '%s'", path);
	dgm_error_hint(err, "give the path of a plan file; plans/example.yaml documents the format");
out:
	if (fd >= 0)
		close(fd);
	return ret;
}

/* The real folder of the plan file, so that "../app" means the folder
 * next to the one holding the plan, wherever dgmigrate runs from. */
static char *plan_dir(const char *path)
{
	char *copy = dgm_xstrdup(path);
	char *real = realpath(dirname(copy), NULL);
	char *dir;

	free(copy);
	if (!real)
		return NULL;
	dir = dgm_xstrdup(real);
	free(real);
	return dir;
}

int dgm_plan_load(dgm_plan *plan, const char *path, dgm_error *err)
{
	dgm_buf text = DGM_BUF_INIT;
	char *dir = NULL;
	int ret = -1;

	memset(plan, 0, sizeof(*plan));
	if (read_plan(path, &text, err))
		goto out;
	dir = plan_dir(path);
	if (!dir) {
		dgm_error_errno(err, DGM_E_PLAN, "cannot resolve the folder of plan '%s'", path);
		goto out;
	}
	ret = dgm_plan_parse(plan, path, dir, text.ptr, text.len, err);
out:
	free(dir);
	dgm_buf_free(&text);
	return ret;
}

static void hooks_free(dgm_plan_hooks *h)
{
	for (size_t i = 0; i < h->count; i++) {
		free(h->items[i].name);
		dgm_strlist_free(&h->items[i].argv);
	}
	free(h->items);
}

void dgm_plan_free(dgm_plan *p)
{
	if (!p)
		return;
	free(p->path);
	free(p->dir);
	free(p->release.name);
	free(p->release.repository);
	free(p->release.tag);
	free(p->database.url);
	free(p->alembic.config);
	dgm_strlist_free(&p->alembic.command);
	free(p->alembic.target);
	free(p->alembic.version_table);
	free(p->alembic.version_schema);
	dgm_strlist_free(&p->alembic.env);
	dgm_strlist_free(&p->alembic.x);
	free(p->snapshot.directory);
	free(p->snapshot.key_file);
	free(p->model_store.path);
	dgm_strlist_free(&p->model_store.extra_paths);
	dgm_strlist_free(&p->required_env);
	dgm_strlist_free(&p->secret_env);
	dgm_strlist_free(&p->postconditions.tables);
	dgm_strlist_free(&p->postconditions.indexes);
	dgm_strlist_free(&p->lint.ignore);
	hooks_free(&p->hooks.before);
	hooks_free(&p->hooks.after);
	free(p->health_check.url);
	free(p->state_dir);
	free(p->pgbackrest.stanza);
	free(p->pgbackrest.config);
	dgm_strlist_free(&p->pgbackrest.command);
	dgm_strlist_free(&p->pgbackrest.options);
	free(p->pgbackrest.repo_path);
	dgm_strlist_free(&p->pgbackrest.server_stop);
	dgm_strlist_free(&p->pgbackrest.server_start);
	free(p->pgbackrest.side_directory);
	dgm_strlist_free(&p->pgbackrest.pg_ctl);
	for (size_t i = 0; i < p->nmarks; i++)
		free(p->marks[i].key);
	free(p->marks);
	memset(p, 0, sizeof(*p));
}

const dgm_plan_mark *dgm_plan_where(const dgm_plan *plan, const char *key)
{
	for (size_t i = 0; i < plan->nmarks; i++)
		if (!strcmp(plan->marks[i].key, key))
			return &plan->marks[i];
	return NULL;
}

void dgm_plan_error_at(const dgm_plan *plan, const char *key, dgm_error *err)
{
	const dgm_plan_mark *m = dgm_plan_where(plan, key);

	if (m)
		dgm_error_prefix(err, "%s:%d:%d", plan->path, m->line, m->column);
	else
		dgm_error_prefix(err, "%s", plan->path);
}
