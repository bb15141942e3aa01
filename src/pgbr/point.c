/*
 * point.c - a snapshot with the pgBackRest engine: the optional backup,
 * a named restore point, a WAL switch, and the wait until the segment
 * holding the point is in the archive; and checking later that it can
 * still be restored.
 */
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dgm/clock.h"
#include "dgm/fault.h"
#include "dgm/log.h"
#include "dgm/pg.h"
#include "dgm/pgbackrest.h"

static const char *const backup_types[] = { "none", "incr", "diff", "full" };

void dgm_pgbr_point_free(dgm_pgbr_point *p)
{
	if (!p)
		return;
	free(p->stanza);
	free(p->name);
	free(p->lsn);
	free(p->wal_segment);
	free(p->backup_label);
	free(p);
}

json_t *dgm_pgbr_point_json(const dgm_pgbr_point *p)
{
	return json_pack("{s:s, s:s, s:s, s:i, s:s, s:s}", "stanza", p->stanza,
			 "restore_point", p->name, "lsn", p->lsn, "timeline", p->timeline,
			 "wal_segment", p->wal_segment, "backup_label", p->backup_label);
}

static char *jdup(json_t *o, const char *key)
{
	const char *v = json_string_value(json_object_get(o, key));

	return dgm_xstrdup(v ? v : "");
}

dgm_pgbr_point *dgm_pgbr_point_from_json(json_t *o)
{
	dgm_pgbr_point *p;

	if (!json_is_object(o))
		return NULL;
	p = dgm_xcalloc(1, sizeof(*p));
	p->stanza = jdup(o, "stanza");
	p->name = jdup(o, "restore_point");
	p->lsn = jdup(o, "lsn");
	p->timeline = (int)json_integer_value(json_object_get(o, "timeline"));
	p->wal_segment = jdup(o, "wal_segment");
	p->backup_label = jdup(o, "backup_label");
	return p;
}

static int take_backup(const dgm_plan *plan, dgm_error *err)
{
	char type[16], timeout[48];
	const char *args[] = { type, timeout, NULL };
	long start = dgm_now_ms();

	if (plan->pgbackrest.backup == DGM_PGBR_BACKUP_NONE)
		return 0;
	snprintf(type, sizeof(type), "--type=%s", backup_types[plan->pgbackrest.backup]);
	dgm_pgbr_timeout_opt(timeout, sizeof(timeout), plan->pgbackrest.archive_timeout_ms);
	dgm_info("pgbackrest: %s backup of stanza '%s' before the restore point",
		 backup_types[plan->pgbackrest.backup], plan->pgbackrest.stanza);
	if (dgm_pgbr_run(NULL, plan, "backup", args, plan->timeouts.snapshot_ms, err))
		return -1;
	dgm_info("pgbackrest: backup done in %ld ms", dgm_now_ms() - start);
	return 0;
}

static int create_point(dgm_pgbr_point *p, PGconn *conn, dgm_error *err)
{
	const char *params[] = { p->name };
	PGresult *r = NULL;

	if (dgm_pg_query(&r, conn, "SELECT l::text, pg_walfile_name(l) FROM "
			 "pg_create_restore_point($1) l", 1, params, err))
		return -1;
	p->lsn = dgm_xstrdup(PQgetvalue(r, 0, 0));
	p->wal_segment = dgm_xstrdup(PQgetvalue(r, 0, 1));
	{
		char tli[9];

		snprintf(tli, sizeof(tli), "%.8s", p->wal_segment);
		p->timeline = (int)strtol(tli, NULL, 16);
	}
	PQclear(r);
	return dgm_pg_exec(conn, "SELECT pg_switch_wal()", err);
}

static void pause_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* Poll pg_stat_archiver until the segment (or a later one) is archived;
 * at most pgbackrest.archive_timeout. */
static int wait_archived(const dgm_pgbr_point *p, const dgm_plan *plan, PGconn *conn,
			 dgm_error *err)
{
	long deadline = dgm_now_ms() + plan->pgbackrest.archive_timeout_ms, wait = 2;
	const char *params[] = { p->wal_segment };
	PGresult *r = NULL;

	for (;;) {
		bool done;

		if (dgm_pg_query(&r, conn, "SELECT coalesce(last_archived_wal >= $1, false), "
				 "coalesce(last_failed_wal, '') FROM pg_stat_archiver", 1, params, err))
			return -1;
		done = *PQgetvalue(r, 0, 0) == 't';
		if (done || dgm_now_ms() >= deadline)
			break;
		PQclear(r);
		pause_ms(wait);
		/* a query on an idle connection is cheap, and a coarser step
		 * would add up to itself to every snapshot */
		wait = wait < 10 ? wait * 2 : 10;
	}
	if (*PQgetvalue(r, 0, 0) != 't') {
		dgm_error_set(err, DGM_E_RUN, "WAL segment %s holding restore point '%s' was not "
			      "archived within pgbackrest.archive_timeout (%ld ms)%s%s", p->wal_segment,
			      p->name, plan->pgbackrest.archive_timeout_ms,
			      *PQgetvalue(r, 0, 1) ? "; last failed segment " : "", PQgetvalue(r, 0, 1));
		dgm_error_hint(err, "check archiving: pgbackrest --stanza=%s check",
			       plan->pgbackrest.stanza);
		PQclear(r);
		return -1;
	}
	PQclear(r);
	return 0;
}

/* `pgbackrest info` lists the whole WAL archive, so it takes longer the
 * more WAL the repository keeps: it runs beside the restore point and
 * its archiving. Started before the point is created, it names only
 * backups that had finished before it: each can be replayed to it. */
typedef struct info_job {
	const dgm_plan *plan;
	dgm_pgbr_backup_info info;
	dgm_error err;
	int rc;
} info_job;

static void *info_thread(void *arg)
{
	info_job *j = arg;

	j->rc = dgm_pgbr_info(&j->info, j->plan, &j->err);
	return NULL;
}

/* The restore point's backup: the newest usable one info listed. */
static int take_label(dgm_pgbr_point *p, info_job *j, dgm_error *err)
{
	if (j->rc) {
		*err = j->err;
		return -1;
	}
	if (!*j->info.label)
		return dgm_error_set(err, DGM_E_RUN, "stanza '%s' has no usable backup: restore "
				     "point '%s' could not be restored", p->stanza, p->name);
	p->backup_label = dgm_xstrdup(j->info.label);
	return 0;
}

static int point_and_wait(dgm_pgbr_point *p, const dgm_plan *plan, dgm_error *err)
{
	PGconn *conn = NULL;
	long start;
	int ret = -1;

	if (dgm_pg_connect(&conn, plan->database.url, "dgmigrate snapshot", err))
		return -1;
	start = dgm_now_ms();
	if (create_point(p, conn, err))
		goto out;
	dgm_fault_point("pgbackrest.point");
	if (wait_archived(p, plan, conn, err))
		goto out;
	dgm_info("restore point '%s' at %s (timeline %d) archived in %ld ms", p->name, p->lsn,
		 p->timeline, dgm_now_ms() - start);
	ret = 0;
out:
	dgm_pg_close(conn);
	return ret;
}

int dgm_pgbr_snapshot(dgm_pgbr_point **out, const dgm_plan *plan, const char *id,
		      dgm_error *err)
{
	dgm_pgbr_point *p = dgm_xcalloc(1, sizeof(*p));
	info_job job = { .plan = plan, .err = DGM_ERROR_INIT };
	pthread_t tid;
	bool threaded;
	int ret = -1;

	p->stanza = dgm_xstrdup(plan->pgbackrest.stanza);
	p->name = dgm_xasprintf("dgmigrate-%s", id);
	if (take_backup(plan, err))
		goto out;
	threaded = pthread_create(&tid, NULL, info_thread, &job) == 0;
	if (!threaded)
		info_thread(&job);
	ret = point_and_wait(p, plan, err);
	if (threaded)
		pthread_join(tid, NULL);
	if (ret == 0)
		ret = take_label(p, &job, err);
	else
		dgm_error_clear(&job.err);
	if (ret == 0)
		dgm_info("restore point '%s': backup %s replays to it", p->name, p->backup_label);
out:
	if (ret) {
		dgm_pgbr_point_free(p);
		p = NULL;
	}
	*out = p;
	return ret;
}

/* The archive (of the backup's database) reaches the point's segment. */
static bool archive_reaches(json_t *st, const char *segment)
{
	json_t *a;
	size_t i;

	json_array_foreach(json_object_get(st, "archive"), i, a) {
		const char *max = json_string_value(json_object_get(a, "max"));
		const char *min = json_string_value(json_object_get(a, "min"));

		if (min && max && strcmp(min, segment) <= 0 && strcmp(max, segment) >= 0)
			return true;
	}
	return false;
}

static bool has_backup(json_t *st, const char *label)
{
	json_t *b;
	size_t i;

	json_array_foreach(json_object_get(st, "backup"), i, b)
		if (!strcmp(json_string_value(json_object_get(b, "label")) ?: "", label))
			return !json_is_true(json_object_get(b, "error"));
	return false;
}

int dgm_pgbr_verify(const dgm_pgbr_point *p, const dgm_plan *plan, dgm_error *err)
{
	const char *args[] = { "--output=json", NULL };
	dgm_buf out = DGM_BUF_INIT;
	json_t *root = NULL, *st;
	int ret = -1;

	if (strcmp(p->stanza, plan->pgbackrest.stanza)) {
		dgm_error_set(err, DGM_E_PLAN, "restore point '%s' is in stanza '%s', the plan's "
			      "pgbackrest.stanza is '%s'", p->name, p->stanza, plan->pgbackrest.stanza);
		goto out;
	}
	if (dgm_pgbr_run(&out, plan, "info", args, 120000, err))
		goto out;
	root = json_loads(dgm_buf_cstr(&out), 0, NULL);
	st = json_array_get(root, 0);
	if (!has_backup(st, p->backup_label))
		dgm_error_set(err, DGM_E_RUN, "backup %s that restore point '%s' is restored from "
			      "is no longer in stanza '%s'", p->backup_label, p->name, p->stanza);
	else if (!archive_reaches(st, p->wal_segment))
		dgm_error_set(err, DGM_E_RUN, "the WAL archive of stanza '%s' no longer holds "
			      "segment %s of restore point '%s'", p->stanza, p->wal_segment, p->name);
	else
		ret = 0;
	if (ret)
		dgm_error_hint(err, "the repository's retention (repo1-retention-full) expired it; "
			       "this snapshot's database cannot be restored");
out:
	json_decref(root);
	dgm_buf_free(&out);
	return ret;
}
