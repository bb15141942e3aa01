/*
 * preflight.c - the pgBackRest engine's checks before anything changes,
 * each a named line of the preflight: pgbackrest (the program), pgbackrest
 * check (the stanza archives), backup (a usable one exists), archiving
 * (the server's side), restore point (the role may make one), restore
 * (how a rollback restores, and its commands), repository (room).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dgm/fs.h"
#include "dgm/pg.h"
#include "dgm/pgbackrest.h"
#include "dgm/run.h"
#include "pgbr_int.h"

static const char *const backup_names[] = { "none", "incr", "diff", "full" };

static void check_program(dgm_checklist *cl, const dgm_plan *plan, bool *ok)
{
	const dgm_plan_pgbackrest *b = &plan->pgbackrest;
	dgm_error e = DGM_ERROR_INIT;
	dgm_buf out = DGM_BUF_INIT;
	dgm_child c = { .argv = (const char *const *)b->command.items, .out = &out,
			.timeout_ms = 30000 };
	const char **argv = dgm_xcalloc(b->command.count + 2, sizeof(*argv));

	for (size_t i = 0; i < b->command.count; i++)
		argv[i] = b->command.items[i];
	argv[b->command.count] = "version";
	c.argv = argv;
	*ok = !dgm_run(&c, &e);
	if (!*ok) {
		dgm_error_hint(&e, "install pgBackRest (Debian: apt-get install pgbackrest) or set "
			       "pgbackrest.command");
		dgm_check_fail(cl, "pgbackrest", &e);
	} else
		dgm_check_ok(cl, "pgbackrest", "%.*s", (int)strcspn(dgm_buf_cstr(&out), "\n"),
			     dgm_buf_cstr(&out));
	free(argv);
	dgm_buf_free(&out);
}

/* `pgbackrest check`: the stanza's configuration matches the server and
 * a WAL segment gets archived within pgbackrest.archive_timeout. */
static void check_stanza(dgm_checklist *cl, const dgm_plan *plan)
{
	char timeout[48];
	const char *args[] = { timeout, NULL };
	dgm_error e = DGM_ERROR_INIT;

	dgm_pgbr_timeout_opt(timeout, sizeof(timeout), plan->pgbackrest.archive_timeout_ms);
	if (dgm_pgbr_run(NULL, plan, "check", args, plan->pgbackrest.archive_timeout_ms + 120000,
			 &e)) {
		dgm_error_hint(&e, "WAL archiving to the stanza does not work: fix archive_command "
			       "or the repository (pgbackrest --stanza=%s check says the same)",
			       plan->pgbackrest.stanza);
		dgm_check_fail(cl, "pgbackrest check", &e);
	} else
		dgm_check_ok(cl, "pgbackrest check", "stanza '%s' archives WAL",
			     plan->pgbackrest.stanza);
}

static void check_backup(dgm_checklist *cl, const dgm_plan *plan, dgm_pgbr_backup_info *info)
{
	int want = plan->pgbackrest.backup;
	dgm_error e = DGM_ERROR_INIT;

	if (dgm_pgbr_info(info, plan, &e)) {
		dgm_check_fail(cl, "backup", &e);
		return;
	}
	if (info->status != 0 && info->status != 2 /* no backups */) {
		dgm_error_set(&e, DGM_E_RUN, "stanza '%s': %s", plan->pgbackrest.stanza,
			      info->status_message);
		dgm_check_fail(cl, "backup", &e);
	} else if (!*info->label && want != DGM_PGBR_BACKUP_FULL) {
		dgm_error_set(&e, DGM_E_RUN, "stanza '%s' has no usable backup: a restore point "
			      "could not be restored", plan->pgbackrest.stanza);
		dgm_error_hint(&e, "take one (pgbackrest --stanza=%s backup --type=full) or set "
			       "pgbackrest.backup: full", plan->pgbackrest.stanza);
		dgm_check_fail(cl, "backup", &e);
	} else if (!*info->label)
		dgm_check_ok(cl, "backup", "none yet; the snapshot takes a full backup first");
	else
		dgm_check_ok(cl, "backup", "newest %s backup %s (%lld MiB of database); the "
			     "snapshot takes %s backup first", info->type, info->label,
			     info->db_bytes >> 20, want == DGM_PGBR_BACKUP_NONE ? "no" :
			     backup_names[want]);
}

/* archive_mode on (or always), an archive_command, and the role may call
 * pg_create_restore_point and pg_switch_wal (superuser or granted). */
static void check_server(dgm_checklist *cl, PGconn *conn)
{
	dgm_error e = DGM_ERROR_INIT;
	PGresult *r = NULL;

	if (dgm_pg_query(&r, conn, "SELECT current_setting('archive_mode'), "
			 "current_setting('archive_command') <> '', "
			 "has_function_privilege('pg_create_restore_point(text)', 'EXECUTE'), "
			 "has_function_privilege('pg_switch_wal()', 'EXECUTE'), current_user",
			 0, NULL, &e)) {
		dgm_check_fail(cl, "archiving", &e);
		dgm_check_skip(cl, "restore point", "no answer from the server");
		return;
	}
	if (!strcmp(PQgetvalue(r, 0, 0), "off") || *PQgetvalue(r, 0, 1) != 't') {
		dgm_error_set(&e, DGM_E_RUN, "the server does not archive WAL (archive_mode %s, "
			      "archive_command %s)", PQgetvalue(r, 0, 0),
			      *PQgetvalue(r, 0, 1) == 't' ? "set" : "empty");
		dgm_error_hint(&e, "set archive_mode = on and archive_command = 'pgbackrest "
			       "--stanza=NAME archive-push %%p', then restart the server");
		dgm_check_fail(cl, "archiving", &e);
	} else
		dgm_check_ok(cl, "archiving", "archive_mode %s, archive_command set",
			     PQgetvalue(r, 0, 0));
	if (*PQgetvalue(r, 0, 2) != 't' || *PQgetvalue(r, 0, 3) != 't') {
		dgm_error_set(&e, DGM_E_RUN, "role '%s' may not call pg_create_restore_point() "
			      "and pg_switch_wal()", PQgetvalue(r, 0, 4));
		dgm_error_hint(&e, "as a superuser: GRANT EXECUTE ON FUNCTION "
			       "pg_create_restore_point(text), pg_switch_wal() TO %s",
			       PQgetvalue(r, 0, 4));
		dgm_check_fail(cl, "restore point", &e);
	} else
		dgm_check_ok(cl, "restore point", "role '%s' may create restore points",
			     PQgetvalue(r, 0, 4));
	PQclear(r);
}

/* A command's program is there (argv[0] in PATH). */
static int program_found(const dgm_strlist *argv, const char *key, dgm_error *err)
{
	char *path = argv->count ? dgm_which(argv->items[0]) : NULL;

	if (path) {
		free(path);
		return 0;
	}
	dgm_error_set(err, DGM_E_PLAN, "%s: program '%s' not found", key,
		      argv->count ? argv->items[0] : "");
	return -1;
}

int dgm_pgbr_other_databases(int *n, PGconn *conn, dgm_error *err)
{
	PGresult *r = NULL;

	if (dgm_pg_query(&r, conn, "SELECT count(*) FROM pg_database WHERE NOT datistemplate "
			 "AND datname NOT IN (current_database(), 'postgres')", 0, NULL, err))
		return -1;
	*n = atoi(PQgetvalue(r, 0, 0));
	PQclear(r);
	return 0;
}

static void check_restore(dgm_checklist *cl, const dgm_plan *plan, PGconn *conn)
{
	const dgm_plan_pgbackrest *b = &plan->pgbackrest;
	dgm_error e = DGM_ERROR_INIT;
	int others = 0;

	if (b->restore == DGM_PGBR_RESTORE_SIDE) {
		if (program_found(&b->pg_ctl, "pgbackrest.side.pg_ctl", &e))
			dgm_check_fail(cl, "restore", &e);
		else
			dgm_check_ok(cl, "restore", "side: a restore rebuilds the database in '%s' "
				     "and moves it into the server; nothing else is touched",
				     b->side_directory);
		return;
	}
	if (program_found(&b->server_stop, "pgbackrest.server.stop", &e) ||
	    program_found(&b->server_start, "pgbackrest.server.start", &e) ||
	    dgm_pgbr_other_databases(&others, conn, &e)) {
		dgm_check_fail(cl, "restore", &e);
	} else if (others && !b->rewind_other_databases) {
		dgm_error_set(&e, DGM_E_RUN, "restore: cluster would rewind %d other database%s of "
			      "the cluster to the restore point too", others, others == 1 ? "" : "s");
		dgm_error_hint(&e, "use pgbackrest.restore: side, or set "
			       "pgbackrest.rewind_other_databases: true if that is acceptable");
		dgm_check_fail(cl, "restore", &e);
	} else {
		char *what = dgm_pgbr_cluster_text(plan, NULL);

		dgm_check_ok(cl, "restore", "cluster: a restore rewinds the whole cluster%s: %s",
			     others ? " (other databases too: allowed)" : "", what);
		free(what);
	}
}

static void check_repository(dgm_checklist *cl, const dgm_plan *plan,
			     const dgm_pgbr_backup_info *info)
{
	const dgm_plan_pgbackrest *b = &plan->pgbackrest;
	long long need = b->min_free_bytes, have;
	dgm_error e = DGM_ERROR_INIT;

	if (!b->repo_path) {
		dgm_check_ok(cl, "repository", "room not checked (no pgbackrest.repository_path: "
			     "a remote or object-store repository)");
		return;
	}
	if (b->backup != DGM_PGBR_BACKUP_NONE)
		need += info->repo_bytes;
	have = dgm_fs_free_bytes(b->repo_path);
	if (have < 0) {
		dgm_error_errno(&e, DGM_E_PLAN, "cannot read the free space of '%s' "
				"(pgbackrest.repository_path)", b->repo_path);
		dgm_check_fail(cl, "repository", &e);
	} else if (have < need) {
		dgm_error_set(&e, DGM_E_RUN, "%lld MiB free in the repository '%s', it needs %lld "
			      "MiB (pgbackrest.min_free%s)", have >> 20, b->repo_path, need >> 20,
			      b->backup != DGM_PGBR_BACKUP_NONE ? " and the backup" : "");
		dgm_error_hint(&e, "expire old backups (pgbackrest expire) or free space");
		dgm_check_fail(cl, "repository", &e);
	} else
		dgm_check_ok(cl, "repository", "%lld MiB free in '%s', needs %lld MiB", have >> 20,
			     b->repo_path, need >> 20);
}

void dgm_pgbr_preflight(dgm_checklist *cl, const dgm_plan *plan, PGconn *conn)
{
	dgm_pgbr_backup_info info;
	bool ok;

	check_program(cl, plan, &ok);
	if (!ok) {
		dgm_check_skip(cl, "pgbackrest check", "no pgbackrest");
		dgm_check_skip(cl, "backup", "no pgbackrest");
		memset(&info, 0, sizeof(info));
	} else {
		check_stanza(cl, plan);
		check_backup(cl, plan, &info);
	}
	if (conn) {
		check_server(cl, conn);
		check_restore(cl, plan, conn);
	} else
		dgm_check_skip(cl, "archiving", "no database");
	check_repository(cl, plan, &info);
}
