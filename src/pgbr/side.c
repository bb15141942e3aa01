/*
 * side.c - restore: side. The restore point is restored into a data
 * folder of its own (only the one database: --db-include), started as a
 * side instance on its own port and socket with archiving off (it must
 * never push a timeline of its own into the stanza), and once recovery
 * has reached the point and promoted, its database is dumped; the side
 * instance is then stopped and removed. The dump goes back through the
 * usual restore (restore.h), so nothing else of the live server is
 * touched.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "dgm/clock.h"
#include "dgm/dump.h"
#include "dgm/fs.h"
#include "dgm/log.h"
#include "dgm/pg.h"
#include "dgm/pgbackrest.h"
#include "dgm/run.h"
#include "pgbr_int.h"

typedef struct side {
	const dgm_plan *plan;
	char *data;               /* <side.directory>/data */
	char *log;
	char port[16];
	char *url;                /* the plan's conninfo, host and port the side's */
	bool started;
} side;

/* pg_ctl (the plan's argv prefix) -D data ARGS... */
static int pg_ctl(const side *sd, const char *const *args, bool quiet, dgm_error *err)
{
	const dgm_strlist *pre = &sd->plan->pgbackrest.pg_ctl;
	const char **argv = dgm_xcalloc(pre->count + 16, sizeof(*argv));
	size_t n = 0;
	int ret;

	for (size_t i = 0; i < pre->count; i++)
		argv[n++] = pre->items[i];
	argv[n++] = "-D";
	argv[n++] = sd->data;
	for (size_t i = 0; args[i]; i++)
		argv[n++] = args[i];
	{
		dgm_child c = { .argv = argv, .timeout_ms = 600000 };

		ret = quiet ? dgm_run_status(&c, err) : dgm_run(&c, err);
	}
	free(argv);
	return ret;
}

/* The plan's connection with host and port replaced by the side's. */
static char *side_url(const char *url, const char *sock, const char *port, dgm_error *err)
{
	PQconninfoOption *opts = PQconninfoParse(url, NULL);
	dgm_buf b = DGM_BUF_INIT;

	if (!opts) {
		dgm_error_set(err, DGM_E_PLAN, "cannot parse database.url");
		return NULL;
	}
	dgm_buf_printf(&b, "host='%s' port='%s'", sock, port);
	for (PQconninfoOption *o = opts; o->keyword; o++) {
		if (!o->val || !strcmp(o->keyword, "host") || !strcmp(o->keyword, "hostaddr") ||
		    !strcmp(o->keyword, "port"))
			continue;
		dgm_buf_printf(&b, " %s='", o->keyword);
		for (const char *c = o->val; *c; c++) {
			if (*c == '\'' || *c == '\\')
				dgm_buf_putc(&b, '\\');
			dgm_buf_putc(&b, *c);
		}
		dgm_buf_putc(&b, '\'');
	}
	PQconninfoFree(opts);
	return dgm_buf_detach(&b);
}

static int restore_point(side *sd, const dgm_pgbr_point *p, const char *database,
			 dgm_error *err)
{
	char *path = dgm_xasprintf("--pg1-path=%s", sd->data);
	char *set = dgm_xasprintf("--set=%s", p->backup_label);
	char *target = dgm_xasprintf("--target=%s", p->name);
	char *include = dgm_xasprintf("--db-include=%s", database);
	const char *args[] = { path, set, "--type=name", target, "--target-action=promote",
			       "--archive-mode=off", include, NULL };
	long start = dgm_now_ms();
	int ret;

	dgm_info("restore point '%s': restoring database '%s' of backup %s into '%s'", p->name,
		 database, p->backup_label, sd->data);
	ret = dgm_pgbr_run(NULL, sd->plan, "restore", args, sd->plan->timeouts.restore_ms, err);
	if (ret && strstr(err->msg, "[080]")) {
		/* the database is newer than the backup: the whole cluster then */
		dgm_info("database '%s' is not in backup %s: restoring the whole cluster beside",
			 database, p->backup_label);
		dgm_error_clear(err);
		args[6] = NULL;
		ret = dgm_pgbr_run(NULL, sd->plan, "restore", args, sd->plan->timeouts.restore_ms,
				   err);
	}
	if (ret == 0)
		dgm_info("restored in %ld ms", dgm_now_ms() - start);
	free(path);
	free(set);
	free(target);
	free(include);
	return ret;
}

static int start(side *sd, dgm_error *err)
{
	const char *sock = sd->plan->pgbackrest.side_directory;
	char *opts;
	int ret;

	if (strchr(sock, '\'') || strchr(sock, ' '))
		return dgm_error_set(err, DGM_E_PLAN, "pgbackrest.side.directory '%s' must not hold "
				     "spaces or quotes (it is the side instance's socket folder)",
				     sock);
	opts = dgm_xasprintf("-p %s -k %s -c listen_addresses='' -c archive_mode=off", sd->port,
			     sock);
	ret = pg_ctl(sd, (const char *const[]){ "-w", "-t", "600", "-l", sd->log, "-o", opts,
						  "start", NULL }, false, err);
	free(opts);
	if (ret)
		dgm_error_hint(err, "the side instance's log: %s", sd->log);
	else
		sd->started = true;
	return ret;
}

static void pause_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* Until recovery has reached the point and promoted (bounded by
 * timeouts.restore, else ten minutes): pg_ctl -w returns once the
 * instance accepts connections, which a hot standby does before. */
static int wait_promoted(side *sd, dgm_error *err)
{
	long limit = sd->plan->timeouts.restore_ms ? sd->plan->timeouts.restore_ms : 600000;
	long deadline = dgm_now_ms() + limit, wait = 10;
	PGconn *conn = NULL;
	int ret = -1;

	/* the maintenance database: during recovery the restored database
	 * may not exist yet (its CREATE DATABASE still to be replayed) */
	if (dgm_pg_connect_db(&conn, sd->url, "postgres", "dgmigrate side restore", err))
		return -1;
	for (;;) {
		PGresult *r = NULL;
		bool in_recovery;

		if (dgm_pg_query(&r, conn, "SELECT pg_is_in_recovery()", 0, NULL, err))
			break;
		in_recovery = *PQgetvalue(r, 0, 0) == 't';
		PQclear(r);
		if (!in_recovery) {
			ret = 0;
			break;
		}
		if (dgm_now_ms() >= deadline) {
			dgm_error_set(err, DGM_E_RUN, "the side instance was still recovering after "
				      "%ld ms", limit);
			dgm_error_hint(err, "its log: %s", sd->log);
			break;
		}
		pause_ms(wait);
		wait = wait < 200 ? wait * 2 : 200;
	}
	dgm_pg_close(conn);
	return ret;
}

static void stop_and_remove(side *sd)
{
	dgm_error e = DGM_ERROR_INIT;
	struct stat st;

	if (stat(sd->data, &st) == 0 && pg_ctl(sd, (const char *const[]){ "-m", "fast", "-w",
		      "stop", NULL }, true, &e))
		dgm_warn("cannot stop the side instance in '%s': %s", sd->data, e.msg);
	dgm_error_clear(&e);
	if (dgm_fs_remove_tree(sd->data, &e))
		dgm_warn("cannot remove the side instance '%s': %s", sd->data, e.msg);
	dgm_error_clear(&e);
}

static int side_port(side *sd, dgm_error *err)
{
	PGconn *conn = NULL;

	if (sd->plan->pgbackrest.side_port) {
		snprintf(sd->port, sizeof(sd->port), "%d", sd->plan->pgbackrest.side_port);
		return 0;
	}
	if (dgm_pg_connect(&conn, sd->plan->database.url, "dgmigrate side restore", err))
		return -1;
	snprintf(sd->port, sizeof(sd->port), "%d", atoi(PQport(conn)) + 1);
	dgm_pg_close(conn);
	return 0;
}

int dgm_pgbr_side_dump(dgm_dump_info *info, const dgm_plan *plan, const dgm_pgbr_point *p,
		       const char *database, const char *dump_dir, dgm_error *err)
{
	side sd = { .plan = plan };
	int ret = -1;

	sd.data = dgm_xasprintf("%s/data", plan->pgbackrest.side_directory);
	sd.log = dgm_xasprintf("%s/server.log", plan->pgbackrest.side_directory);
	/* what a killed restore left */
	stop_and_remove(&sd);
	if (side_port(&sd, err))
		goto out;
	sd.url = side_url(plan->database.url, plan->pgbackrest.side_directory, sd.port, err);
	if (!sd.url || restore_point(&sd, p, database, err) || start(&sd, err) ||
	    wait_promoted(&sd, err))
		goto out;
	dgm_fault_kill("side-started");
	{
		dgm_dump_opts o = { .url = sd.url, .dest = dump_dir, .format = DGM_DUMP_DIRECTORY,
				    .jobs = plan->snapshot.jobs,
				    .compression = plan->snapshot.compression,
				    .timeout_ms = plan->timeouts.restore_ms };

		dgm_info("side instance on port %s reached '%s': dumping database '%s'", sd.port,
			 p->name, database);
		ret = dgm_dump_create(info, &o, err);
	}
out:
	if (ret)
		dgm_error_prefix(err, "restore point '%s' (restore: side)", p->name);
	stop_and_remove(&sd);
	free(sd.data);
	free(sd.log);
	free(sd.url);
	return ret;
}

void dgm_pgbr_side_sweep(const dgm_plan *plan)
{
	side sd = { .plan = plan };
	struct stat st;

	sd.data = dgm_xasprintf("%s/data", plan->pgbackrest.side_directory);
	if (stat(sd.data, &st) == 0) {
		dgm_info("a side instance of a killed restore: side is left in '%s': stopping and "
			 "removing it", sd.data);
		stop_and_remove(&sd);
	}
	free(sd.data);
}
