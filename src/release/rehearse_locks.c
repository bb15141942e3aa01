/* rehearse_locks.c - which locks the upgrade takes: pg_locks of the
 * scratch database sampled from a second connection while alembic runs,
 * the strongest mode kept per table. Sampling can miss a lock held for
 * less than the interval; the report says how often it sampled. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dgm/buf.h"
#include "dgm/clock.h"
#include "dgm/migrate.h"
#include "dgm/pg.h"
#include "rehearse_int.h"

/* Tables (not indexes) of the application locked by another session. */
static const char *sample_sql =
	"SELECT CASE WHEN n.nspname = 'public' THEN '' ELSE quote_ident(n.nspname) || '.' END"
	" || quote_ident(c.relname), l.mode"
	" FROM pg_locks l JOIN pg_class c ON c.oid = l.relation"
	" JOIN pg_namespace n ON n.oid = c.relnamespace"
	" WHERE l.locktype = 'relation' AND l.granted AND l.pid <> pg_backend_pid()"
	" AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
	" AND c.relkind IN ('r', 'p', 'm')"
	" AND n.nspname !~ '^pg_' AND n.nspname NOT IN ('information_schema', 'dgmigrate')";

static const struct {
	const char *pg;
	const char *mode;
	const char *blocks;   /* for an application that reads and writes rows */
} modes[] = {
	{ "", "", "" },
	{ "AccessShareLock", "ACCESS SHARE", "nothing" },
	{ "RowShareLock", "ROW SHARE", "nothing" },
	{ "RowExclusiveLock", "ROW EXCLUSIVE", "nothing" },
	{ "ShareUpdateExclusiveLock", "SHARE UPDATE EXCLUSIVE", "nothing (other DDL only)" },
	{ "ShareLock", "SHARE", "writes" },
	{ "ShareRowExclusiveLock", "SHARE ROW EXCLUSIVE", "writes" },
	{ "ExclusiveLock", "EXCLUSIVE", "writes" },
	{ "AccessExclusiveLock", "ACCESS EXCLUSIVE", "reads and writes" },
};

#define NMODES ((int)(sizeof(modes) / sizeof(modes[0])))

static int strength(const char *pg_mode)
{
	for (int i = 1; i < NMODES; i++)
		if (!strcmp(modes[i].pg, pg_mode))
			return i;
	return 0;
}

const char *dgm_rehearse_lock_mode(int s)
{
	return s > 0 && s < NMODES ? modes[s].mode : "?";
}

const char *dgm_rehearse_lock_blocks(int s)
{
	return s > 0 && s < NMODES ? modes[s].blocks : "?";
}

static void note(dgm_rehearse_sampler *s, const char *table, int st, bool at_ddl)
{
	dgm_rehearse_lock *l = NULL;

	for (size_t i = 0; i < s->nseen && !l; i++)
		if (!strcmp(s->seen[i].table, table))
			l = &s->seen[i];
	if (!l) {
		s->seen = dgm_xrealloc(s->seen, (s->nseen + 1) * sizeof(*s->seen));
		l = &s->seen[s->nseen++];
		memset(l, 0, sizeof(*l));
		l->table = dgm_xstrdup(table);
	}
	if (st > l->strength) {
		l->strength = st;
		l->samples = 0;
		free(l->during);
		l->during = dgm_xstrdup(s->during);
	}
	if (st == l->strength) {
		l->samples += !at_ddl;
		l->at_ddl |= at_ddl;
	}
}

/* ---- holds: how long each lock lasted --------------------------------- */

void dgm_rehearse_sampler_holds(dgm_rehearse_sampler *s, const char *direction,
				const char *revision)
{
	s->direction = direction;
	s->revision = revision;
	s->phase_first = s->nholds;
}

long dgm_rehearse_hold_ms(const dgm_rehearse_hold *h)
{
	long sampled = h->samples ? h->last_ms - h->first_ms + DGM_REHEARSE_SAMPLE_MS : 0;

	return sampled > h->ddl_ms ? sampled : h->ddl_ms;
}

/* running: the revision alembic says it runs now is the hold's (while
 * sampling; after the run, the last one is no one's in particular). */
static dgm_rehearse_hold *hold_new(dgm_rehearse_sampler *s, const char *table, int st,
				   bool running)
{
	dgm_rehearse_hold *h;
	char rev[128] = "";

	if (s->revision)
		snprintf(rev, sizeof(rev), "%s", s->revision);
	else if (running)
		dgm_migrate_running(rev, sizeof(rev));
	s->holds = dgm_xrealloc(s->holds, (s->nholds + 1) * sizeof(*s->holds));
	h = &s->holds[s->nholds++];
	memset(h, 0, sizeof(*h));
	h->direction = s->direction;
	h->revision = *rev ? dgm_xstrdup(rev) : NULL;
	h->table = dgm_xstrdup(table);
	h->strength = st;
	return h;
}

/* The hold of this phase on table at st; with sample >= 0, only one the
 * sample before saw (a lock released and taken again is a new hold). */
static dgm_rehearse_hold *hold_find(dgm_rehearse_sampler *s, const char *table, int st,
				    long sample)
{
	for (size_t i = s->phase_first; i < s->nholds; i++) {
		dgm_rehearse_hold *h = &s->holds[i];

		if (h->strength == st && !strcmp(h->table, table) &&
		    (sample < 0 || h->last_sample == sample - 1))
			return h;
	}
	return NULL;
}

static void hold_sampled(dgm_rehearse_sampler *s, const char *table, int st)
{
	dgm_rehearse_hold *h = hold_find(s, table, st, s->samples);
	long now = dgm_now_ms();

	if (!h) {
		h = hold_new(s, table, st, true);
		h->first_ms = now;
	}
	h->last_ms = now;
	h->last_sample = s->samples;
	h->samples++;
}

/* Each table's strongest lock in this sample: row i, unless another
 * row on its table is stronger (or as strong and earlier). */
static bool strongest_row(PGresult *res, int i)
{
	int st = strength(PQgetvalue(res, i, 1));

	for (int j = 0; j < PQntuples(res); j++) {
		int sj = strength(PQgetvalue(res, j, 1));

		if (j != i && !strcmp(PQgetvalue(res, j, 0), PQgetvalue(res, i, 0)) &&
		    (sj > st || (sj == st && j < i)))
			return false;
	}
	return true;
}

static void sample(dgm_rehearse_sampler *s)
{
	PGresult *res = PQexecPrepared(s->conn, "locks", 0, NULL, NULL, NULL, 0);

	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		if (!s->error[0])
			snprintf(s->error, sizeof(s->error), "%.*s",
				 (int)strcspn(PQresultErrorMessage(res), "\n"), PQresultErrorMessage(res));
		PQclear(res);
		return;
	}
	s->samples++;
	for (int i = 0; i < PQntuples(res); i++) {
		note(s, PQgetvalue(res, i, 0), strength(PQgetvalue(res, i, 1)), false);
		if (s->direction && strongest_row(res, i))
			hold_sampled(s, PQgetvalue(res, i, 0), strength(PQgetvalue(res, i, 1)));
	}
	PQclear(res);
}

static void *run(void *arg)
{
	dgm_rehearse_sampler *s = arg;
	struct timespec ts = { 0, DGM_REHEARSE_SAMPLE_MS * 1000000L };

	while (!atomic_load(&s->stop)) {
		sample(s);
		nanosleep(&ts, NULL);
	}
	return NULL;
}

int dgm_rehearse_sampler_start(dgm_rehearse_sampler *s, const char *url, const char *during,
			       dgm_error *err)
{
	PGresult *res;

	if (dgm_pg_connect(&s->conn, url, "dgmigrate rehearse locks", err))
		return -1;
	res = PQprepare(s->conn, "locks", sample_sql, 0, NULL);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		dgm_error_set(err, DGM_E_PG, "cannot prepare the pg_locks query: %.*s",
			      (int)strcspn(PQresultErrorMessage(res), "\n"), PQresultErrorMessage(res));
		PQclear(res);
		dgm_pg_close(s->conn);
		s->conn = NULL;
		return -1;
	}
	PQclear(res);
	s->during = during;
	atomic_store(&s->stop, 0);
	if (pthread_create(&s->thread, NULL, run, s) != 0) {
		dgm_pg_close(s->conn);
		s->conn = NULL;
		return dgm_error_set(err, DGM_E_RUN, "cannot start the lock sampler thread");
	}
	s->running = true;
	return 0;
}

void dgm_rehearse_sampler_stop(dgm_rehearse_sampler *s)
{
	if (s->running) {
		atomic_store(&s->stop, 1);
		pthread_join(s->thread, NULL);
		s->running = false;
	}
	dgm_pg_close(s->conn);
	s->conn = NULL;
}

void dgm_rehearse_sampler_free(dgm_rehearse_sampler *s)
{
	dgm_rehearse_sampler_stop(s);
	for (size_t i = 0; i < s->nseen; i++) {
		free(s->seen[i].table);
		free(s->seen[i].during);
	}
	free(s->seen);
	s->seen = NULL;
	s->nseen = 0;
	for (size_t i = 0; i < s->nholds; i++) {
		free(s->holds[i].revision);
		free(s->holds[i].versions);
		free(s->holds[i].table);
	}
	free(s->holds);
	s->holds = NULL;
	s->nholds = 0;
}

/* ---- the DDL probe ------------------------------------------------------ */

/* %s twice: the version table's schema and name, as SQL literals. The
 * revisions alembic_version holds at each DDL end (in the migration's
 * own transaction) say which revision runs. */
static const char *probe_sql =
	"CREATE SCHEMA IF NOT EXISTS dgmigrate;"
	"CREATE TABLE IF NOT EXISTS dgmigrate.rehearse_locks (relid oid, mode text);"
	"ALTER TABLE dgmigrate.rehearse_locks ADD COLUMN IF NOT EXISTS at timestamptz,"
	" ADD COLUMN IF NOT EXISTS versions text;"
	/* never in the migration's way: any error is swallowed */
	"CREATE OR REPLACE FUNCTION dgmigrate.rehearse_note_locks() RETURNS event_trigger"
	" LANGUAGE plpgsql SET search_path = pg_catalog AS $f$ DECLARE v text; BEGIN"
	" BEGIN EXECUTE format('SELECT string_agg(version_num::text, '','' ORDER BY 1)"
	"  FROM %%I.%%I', %s, %s) INTO v; EXCEPTION WHEN OTHERS THEN v := NULL; END;"
	" INSERT INTO dgmigrate.rehearse_locks SELECT l.relation, l.mode, clock_timestamp(), v"
	"  FROM pg_locks l"
	"  WHERE l.pid = pg_backend_pid() AND l.locktype = 'relation' AND l.granted;"
	" EXCEPTION WHEN OTHERS THEN NULL; END $f$;"
	"CREATE EVENT TRIGGER dgmigrate_rehearse_locks ON ddl_command_end"
	" EXECUTE FUNCTION dgmigrate.rehearse_note_locks()";

/* The probe's SQL for the version table schema.table (schema NULL: the
 * connection's current schema), or NULL. */
static char *probe_text(PGconn *conn, const char *schema, const char *table)
{
	dgm_error e = DGM_ERROR_INIT;
	PGresult *res = NULL;
	char *ls = NULL, *lt = NULL, *sql = NULL;

	if (!schema && (dgm_pg_query(&res, conn, "SELECT current_schema()", 0, NULL, &e) ||
			PQntuples(res) != 1 || PQgetisnull(res, 0, 0)))
		goto out;
	ls = PQescapeLiteral(conn, schema ? schema : PQgetvalue(res, 0, 0),
			     strlen(schema ? schema : PQgetvalue(res, 0, 0)));
	lt = PQescapeLiteral(conn, table, strlen(table));
	/* the literals go inside a $f$ body */
	if (ls && lt && !strchr(ls, '$') && !strchr(lt, '$'))
		sql = dgm_xasprintf(probe_sql, ls, lt);
out:
	PQfreemem(ls);
	PQfreemem(lt);
	PQclear(res);
	return sql;
}

void dgm_rehearse_probe_install(dgm_rehearse_sampler *s, PGconn *conn, const char *schema,
				const char *table)
{
	dgm_error e = DGM_ERROR_INIT;
	PGresult *res = NULL;
	char *sql;

	s->probe = false;
	if (dgm_pg_query(&res, conn, "SELECT rolsuper FROM pg_roles WHERE rolname = current_user",
			 0, NULL, &e) || PQntuples(res) != 1 || strcmp(PQgetvalue(res, 0, 0), "t")) {
		PQclear(res);
		return;
	}
	PQclear(res);
	if (!(sql = probe_text(conn, schema, table)))
		return;
	if (dgm_pg_exec(conn, "BEGIN", &e) == 0) {
		s->probe = dgm_pg_exec(conn, sql, &e) == 0;
		dgm_pg_exec(conn, s->probe ? "COMMIT" : "ROLLBACK", &e);
	}
	free(sql);
}

void dgm_rehearse_probe_reset(dgm_rehearse_sampler *s, PGconn *conn)
{
	dgm_error e = DGM_ERROR_INIT;

	if (s->probe)
		dgm_pg_exec(conn, "TRUNCATE dgmigrate.rehearse_locks", &e);
}

/* A lock the event trigger saw at DDL ends: the sampled hold it
 * confirms, or a hold of its own (held too briefly to be sampled). */
static void hold_traced(dgm_rehearse_sampler *s, const char *table, int st, long span_ms,
			const char *versions)
{
	dgm_rehearse_hold *h = NULL;

	/* one sampled, or traced at the same revisions */
	for (size_t i = s->phase_first; i < s->nholds && !h; i++)
		if (s->holds[i].strength == st && !strcmp(s->holds[i].table, table) &&
		    (s->holds[i].samples || !strcmp(s->holds[i].versions, versions)))
			h = &s->holds[i];
	if (!h)
		h = hold_new(s, table, st, false);
	/* what alembic_version held at the first DDL end that saw the lock
	 * names the revision that took it (rehearse.c attribute()): a sample
	 * reads alembic's "Running ..." lines, which can lag, and a lock held
	 * to the end of a one-transaction run is sampled under every later
	 * revision too */
	if (!h->versions)
		h->versions = dgm_xstrdup(versions);
	h->at_ddl = true;
	if (span_ms > h->ddl_ms)
		h->ddl_ms = span_ms;
}

void dgm_rehearse_probe_collect(dgm_rehearse_sampler *s, PGconn *conn, const char *during)
{
	dgm_error e = DGM_ERROR_INIT;
	PGresult *res = NULL;

	if (!s->probe || dgm_pg_query(&res, conn,
		"SELECT CASE WHEN n.nspname = 'public' THEN '' ELSE quote_ident(n.nspname)"
		" || '.' END || quote_ident(c.relname), l.mode,"
		" coalesce(round(extract(epoch FROM max(l.at) - min(l.at)) * 1000), 0)::bigint,"
		" coalesce(l.versions, '') FROM dgmigrate.rehearse_locks l"
		" JOIN pg_class c ON c.oid = l.relid JOIN pg_namespace n ON n.oid = c.relnamespace"
		" WHERE c.relkind IN ('r', 'p', 'm') AND n.nspname !~ '^pg_'"
		" AND n.nspname NOT IN ('information_schema', 'dgmigrate') GROUP BY 1, 2, 4"
		/* the first row of a table at its strongest mode is used: the
		 * earliest DDL end that saw it, when the lock was taken */
		" ORDER BY min(l.at), 1, 2", 0, NULL,
		&e))
		return;
	s->during = during;
	for (int i = 0; i < PQntuples(res); i++) {
		note(s, PQgetvalue(res, i, 0), strength(PQgetvalue(res, i, 1)), true);
		if (s->direction && strongest_row(res, i))
			hold_traced(s, PQgetvalue(res, i, 0), strength(PQgetvalue(res, i, 1)),
				    atol(PQgetvalue(res, i, 2)), PQgetvalue(res, i, 3));
	}
	s->during = NULL;
	PQclear(res);
}
