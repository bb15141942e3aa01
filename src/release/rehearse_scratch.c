/* rehearse_scratch.c - the scratch database a rehearsal runs on: named
 * after the plan's database, cloned with CREATE DATABASE ... TEMPLATE or
 * restored from a snapshot, always dropped, and found and dropped by the
 * next rehearsal when a killed one left it behind. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dgm/buf.h"
#include "dgm/log.h"
#include "dgm/migrate.h"
#include "dgm/pg.h"
#include "dgm/restore.h"
#include "dgm/run.h"
#include "dgm/snapshot.h"
#include "rehearse_int.h"

#define SOURCE_MAX 40
#define COMMENT_PREFIX "dgmigrate rehearse scratch copy of "

/* ---- names and URLs ---------------------------------------------------- */

/* Percent-encode everything but RFC 3986's unreserved characters. */
static void put_encoded(dgm_buf *b, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
		    *p == '-' || *p == '.' || *p == '_' || *p == '~')
			dgm_buf_putc(b, (char)*p);
		else
			dgm_buf_printf(b, "%%%02X", *p);
	}
}

/* The encoded password is a secret too: logs may quote the URL. */
static void put_password(dgm_buf *b, const char *pw)
{
	dgm_buf enc = DGM_BUF_INIT;

	put_encoded(&enc, pw);
	dgm_log_add_secret(dgm_buf_cstr(&enc));
	dgm_buf_puts(b, dgm_buf_cstr(&enc));
	memset(enc.ptr, 0, enc.len);
	dgm_buf_free(&enc);
}

/* URL keywords: written in the URL's own places, not in the query. */
static bool in_authority(const char *kw)
{
	return !strcmp(kw, "user") || !strcmp(kw, "password") || !strcmp(kw, "host") ||
	       !strcmp(kw, "port") || !strcmp(kw, "dbname");
}

/* host[:port]: a name or address as is (IPv6 in brackets); a unix-socket
 * folder or a list of hosts goes to the query string as host=..., and
 * the authority says localhost (a socket is always on this machine).
 * SQLAlchemy does not decode a percent-encoded host (psycopg2 would be
 * handed "%2Ftmp..."), while libpq and SQLAlchemy both let ?host=
 * override the authority's; settings libraries want a host there. */
static void put_host(dgm_buf *b, dgm_buf *query, const char *host, const char *port)
{
	if (host && *host && !strchr(host, '/') && !strchr(host, ',') && host[0] != '@')
		dgm_buf_printf(b, strchr(host, ':') ? "[%s]" : "%s", host);
	else if (host && *host) {
		dgm_buf_puts(b, "localhost");
		dgm_buf_puts(query, "&host=");
		put_encoded(query, host);
	}
	if (port && *port && !strchr(port, ','))
		dgm_buf_printf(b, ":%s", port);
	else if (port && *port) {
		dgm_buf_puts(query, "&port=");
		put_encoded(query, port);
	}
}

int dgm_rehearse_url(char **out, const char *url, const char *dbname, PGconn *conn,
		     dgm_error *err)
{
	char *perr = NULL;
	PQconninfoOption *opts = PQconninfoParse(url, &perr);
	const char *user = NULL, *pw = NULL, *host = NULL, *port = NULL;
	dgm_buf b = DGM_BUF_INIT, query = DGM_BUF_INIT;

	*out = NULL;
	if (!opts) {
		PQfreemem(perr);
		return dgm_error_set(err, DGM_E_PLAN, "the database URL is not valid");
	}
	for (PQconninfoOption *o = opts; o->keyword; o++) {
		if (!o->val || !*o->val)
			continue;
		if (!strcmp(o->keyword, "user"))
			user = o->val;
		else if (!strcmp(o->keyword, "password"))
			pw = o->val;
		else if (!strcmp(o->keyword, "host"))
			host = o->val;
		else if (!strcmp(o->keyword, "port"))
			port = o->val;
		if (in_authority(o->keyword))
			continue;
		dgm_buf_printf(&query, "&%s=", o->keyword);
		put_encoded(&query, o->val);
	}
	/* what libpq's defaults made of the rest (PGHOST, the socket folder) */
	if (conn) {
		user = user ? user : PQuser(conn);
		host = host ? host : PQhost(conn);
		port = port ? port : PQport(conn);
	}
	dgm_buf_puts(&b, "postgresql://");
	if (user) {
		put_encoded(&b, user);
		if (pw) {
			dgm_buf_putc(&b, ':');
			put_password(&b, pw);
		}
		dgm_buf_putc(&b, '@');
	}
	put_host(&b, &query, host, port);
	dgm_buf_putc(&b, '/');
	put_encoded(&b, dbname);
	if (query.len) {
		query.ptr[0] = '?';
		dgm_buf_puts(&b, query.ptr);
	}
	dgm_buf_free(&query);
	PQconninfoFree(opts);
	*out = dgm_buf_detach(&b);
	return 0;
}

/* Length of s cut to at most max bytes without splitting a UTF-8
 * character. */
static size_t cut(const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n <= max)
		return n;
	n = max;
	while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
		n--;
	return n;
}

char *dgm_rehearse_scratch_name(const char *source, long pid)
{
	return dgm_xasprintf("%.*s_dgm_rehearse_%ld", (int)cut(source, SOURCE_MAX), source, pid);
}

/* ---- the maintenance connection ---------------------------------------- */

/* A connection to another database of the server: CREATE DATABASE ...
 * TEMPLATE needs the source free of sessions, ours included. */
static int maintenance(PGconn **conn, const dgm_plan *plan, const char *source, dgm_error *err)
{
	const char *dbs[] = { "postgres", "template1" };
	dgm_error first = DGM_ERROR_INIT;

	for (size_t i = 0; i < 2; i++) {
		dgm_error e = DGM_ERROR_INIT;

		if (!strcmp(dbs[i], source))
			continue;
		if (dgm_pg_connect_db(conn, plan->database.url, dbs[i], "dgmigrate rehearse", &e) == 0)
			return 0;
		if (!first.code)
			first = e;
	}
	*err = first;
	if (!err->code)
		dgm_error_set(err, DGM_E_PG, "no maintenance database to connect to");
	dgm_error_prefix(err, "rehearse needs a database other than '%s' on the server", source);
	return -1;
}

/* ---- leftovers --------------------------------------------------------- */

/* The regular expression that matches scratch names of source. */
static char *leftover_regex(const char *source)
{
	dgm_buf b = DGM_BUF_INIT;
	size_t n = cut(source, SOURCE_MAX);

	dgm_buf_putc(&b, '^');
	for (size_t i = 0; i < n; i++) {
		if (strchr(".^$*+?()[]{}|\\-", source[i]))
			dgm_buf_putc(&b, '\\');
		dgm_buf_putc(&b, source[i]);
	}
	dgm_buf_puts(&b, "_dgm_rehearse_[0-9]+$");
	return dgm_buf_detach(&b);
}

/* Every scratch database of this source is a leftover: a rehearsal holds
 * the source's lock for as long as its scratch database exists, and we
 * hold that lock now. When the source's name was cut, the database's
 * comment must name the source too, so that another database whose name
 * starts the same is never taken for it. */
static int drop_leftovers(PGconn *conn, const char *source, int *dropped, dgm_error *err)
{
	char *re = leftover_regex(source);
	char *comment = dgm_xasprintf(COMMENT_PREFIX "%s", source);
	const char *params[] = { re, comment, strlen(source) > SOURCE_MAX ? "t" : "f" };
	PGresult *res = NULL;
	int ret = -1;

	*dropped = 0;
	if (dgm_pg_query(&res, conn, "SELECT datname FROM pg_database WHERE datname ~ $1"
			 " AND (NOT $3::bool OR shobj_description(oid, 'pg_database') = $2)"
			 " ORDER BY 1", 3, params, err))
		goto out;
	for (int i = 0; i < PQntuples(res); i++) {
		dgm_info("dropping '%s', left behind by a rehearsal that did not finish",
			 PQgetvalue(res, i, 0));
		if (dgm_pg_drop_database(conn, PQgetvalue(res, i, 0), true, err))
			goto out;
		(*dropped)++;
	}
	ret = 0;
out:
	PQclear(res);
	free(re);
	free(comment);
	return ret;
}

/* ---- the copy ---------------------------------------------------------- */

/* Other sessions on the source, described for messages ("" when none).
 * Autovacuum does not count: CREATE DATABASE stops it. */
static int other_sessions(dgm_buf *who, int *n, PGconn *conn, const char *source,
			  dgm_error *err)
{
	const char *params[] = { source };
	PGresult *res = NULL;

	if (dgm_pg_query(&res, conn, "SELECT pid, coalesce(nullif(application_name, ''), '?'),"
			 " coalesce(usename, '') FROM pg_stat_activity WHERE datname = $1"
			 " AND pid <> pg_backend_pid()"
			 " AND coalesce(backend_type, '') <> 'autovacuum worker' ORDER BY pid",
			 1, params, err))
		return -1;
	*n = PQntuples(res);
	for (int i = 0; i < *n && i < 5; i++)
		dgm_buf_printf(who, "%spid %s '%s' (user '%s')", i ? ", " : "", PQgetvalue(res, i, 0),
			       PQgetvalue(res, i, 1), PQgetvalue(res, i, 2));
	if (*n > 5)
		dgm_buf_puts(who, ", ...");
	PQclear(res);
	return 0;
}

/* CREATE DATABASE ... TEMPLATE. *busy when a session connected to the
 * source in the meantime (the caller then restores a snapshot). */
/* " OWNER <the source's owner>" when that is another role we may create
 * databases for (a member of it), else "": in PostgreSQL 15 the public
 * schema belongs to the database's owner, so an application role that
 * owns the live database must own the copy too to migrate it. */
static char *owner_clause(PGconn *conn, const char *source)
{
	char *owner = dgm_pg_owner_to_act_for(conn, source), *clause;

	clause = owner ? dgm_xasprintf(" OWNER %s", owner) : dgm_xstrdup("");
	free(owner);
	return clause;
}

static int clone_template(dgm_rehearse_scratch *s, PGconn *conn, bool *busy, dgm_error *err)
{
	char *qs = dgm_pg_quote_ident(conn, s->source), *qn = dgm_pg_quote_ident(conn, s->name);
	char *owner = owner_clause(conn, s->source);
	char *sql = dgm_xasprintf("CREATE DATABASE %s TEMPLATE %s%s", qn, qs, owner);
	PGresult *res = PQexec(conn, sql);
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	int ret = 0;

	*busy = false;
	if (PQresultStatus(res) == PGRES_COMMAND_OK) {
		s->exists = true;
		s->from = dgm_xstrdup("CREATE DATABASE ... TEMPLATE");
	} else if (state && !strcmp(state, "55006")) {
		*busy = true;
	} else {
		dgm_error_set(err, DGM_E_PG, "cannot copy database '%s' into '%s': %.*s", s->source,
			      s->name, (int)strcspn(PQresultErrorMessage(res), "\n"),
			      PQresultErrorMessage(res));
		ret = -1;
	}
	PQclear(res);
	free(sql);
	free(owner);
	free(qs);
	free(qn);
	return ret;
}

/* The newest snapshot taken at exactly these revisions. */
static int pick_snapshot(dgm_snapshot *out, const dgm_plan *plan, char *const *revs,
			 size_t nrevs, const char *who, dgm_error *err)
{
	dgm_snapshot *list = NULL;
	size_t n = 0, i, forged;

	if (dgm_snapshot_list(&list, &n, plan->snapshot.directory, err))
		return -1;
	forged = n;
	for (i = 0; i < n; i++) {
		if (!dgm_migrate_same_set(list[i].revisions.items, list[i].revisions.count, revs,
					  nrevs))
			continue;
		if (dgm_snapshot_authentic(&list[i], plan))
			break;
		if (forged == n)
			forged = i;
	}
	if (i == n) {
		if (forged < n)
			dgm_error_set(err, DGM_E_RUN, "cannot copy the database for the rehearsal: "
				      "sessions are connected to it (%s), and the snapshot taken at "
				      "its revision%s, '%s', fails its HMAC check (see the warning): it is not used",
				      who, nrevs == 1 ? "" : "s", list[forged].id);
		else if (n == 0)
			dgm_error_set(err, DGM_E_RUN, "cannot copy the database for the rehearsal: "
				      "sessions are connected to it (%s), so CREATE DATABASE ... "
				      "TEMPLATE cannot run, and '%s' holds no snapshot to restore "
				      "instead", who, plan->snapshot.directory);
		else
			dgm_error_set(err, DGM_E_RUN, "cannot copy the database for the rehearsal: "
				      "sessions are connected to it (%s), and no snapshot in '%s' was "
				      "taken at its revision%s (the newest, '%s', was taken at %s)", who,
				      plan->snapshot.directory, nrevs == 1 ? "" : "s", list[0].id,
				      list[0].revisions.count ? list[0].revisions.items[0] : "base");
		dgm_error_hint(err, "take a snapshot now with 'dgmigrate backups create PLAN', or "
			       "stop the sessions so that the database can be cloned");
		dgm_snapshot_list_free(list, n);
		return -1;
	}
	*out = list[i];
	memset(&list[i], 0, sizeof(list[i]));
	dgm_snapshot_list_free(list, n);
	return 0;
}

/* pg_restore the snapshot beside the source (restore.h), then give the
 * restored database the scratch name. */
static int restore_snapshot(dgm_rehearse_scratch *s, PGconn *conn, const dgm_plan *plan,
			    char *const *revs, size_t nrevs, const char *who, dgm_error *err)
{
	dgm_snapshot snap;
	dgm_db_restore dr;
	int ret = -1;

	memset(&snap, 0, sizeof(snap));
	if (pick_snapshot(&snap, plan, revs, nrevs, who, err))
		return -1;
	dgm_info("sessions are connected to '%s' (%s): restoring snapshot '%s' instead of "
		 "cloning", s->source, who, snap.id);
	if (dgm_db_restore_stage(&dr, plan, &snap, err))
		goto out;
	if (dgm_pg_rename_database(conn, dr.staging, s->name, err)) {
		dgm_error ignore = DGM_ERROR_INIT;

		dgm_db_restore_abort(&dr, plan, &ignore);
	} else {
		s->exists = true;
		s->snapshot = dgm_xstrdup(snap.id);
		s->from = dgm_xasprintf("snapshot %s", snap.id);
		ret = 0;
	}
	dgm_db_restore_free(&dr);
out:
	dgm_snapshot_free(&snap);
	return ret;
}

/* ALTER DATABASE ... SET (and ALTER ROLE ... IN DATABASE ... SET) of the
 * source, which neither a TEMPLATE copy nor a dump carries: a migration
 * may rely on the database's search_path. List settings are stored in
 * their quoted list form and go back as they are; others as literals. */
static void copy_settings(PGconn *conn, const char *source, const char *name)
{
	const char *params[] = { source, name };
	dgm_error e = DGM_ERROR_INIT;
	PGresult *res = NULL;

	if (dgm_pg_query(&res, conn,
		"SELECT format('ALTER %s SET %I TO %s', CASE WHEN s.setrole = 0"
		"  THEN format('DATABASE %I', $2::text)"
		"  ELSE format('ROLE %I IN DATABASE %I', pg_get_userbyid(s.setrole), $2::text) END,"
		" split_part(c, '=', 1), CASE WHEN split_part(c, '=', 1) IN ('search_path',"
		"  'temp_tablespaces', 'session_preload_libraries', 'local_preload_libraries')"
		"  THEN substr(c, strpos(c, '=') + 1)"
		"  ELSE quote_literal(substr(c, strpos(c, '=') + 1)) END)"
		" FROM pg_db_role_setting s CROSS JOIN unnest(s.setconfig) c"
		" WHERE s.setdatabase = (SELECT oid FROM pg_database WHERE datname = $1)",
		2, params, &e)) {
		dgm_warn("cannot read the settings of database '%s': %s", source, e.msg);
		return;
	}
	for (int i = 0; i < PQntuples(res); i++)
		if (dgm_pg_exec(conn, PQgetvalue(res, i, 0), &e))
			dgm_warn("the copy lacks a setting of '%s': %s", source, e.msg);
	PQclear(res);
}

int dgm_rehearse_scratch_create(dgm_rehearse_scratch *s, const dgm_plan *plan,
				const char *source, char *const *revs, size_t nrevs, dgm_error *err)
{
	dgm_error ignore = DGM_ERROR_INIT;
	dgm_buf who = DGM_BUF_INIT;
	PGconn *conn = NULL;
	bool busy = false;
	int others = 0, ret = -1;

	memset(s, 0, sizeof(*s));
	s->source = dgm_xstrdup(source);
	if (maintenance(&conn, plan, s->source, err))
		goto out;
	s->name = dgm_rehearse_scratch_name(s->source, (long)getpid());
	if (dgm_rehearse_url(&s->url, plan->database.url, s->name, conn, err) ||
	    drop_leftovers(conn, s->source, &s->leftovers, err) ||
	    other_sessions(&who, &others, conn, s->source, err))
		goto out;
	if (others == 0 && clone_template(s, conn, &busy, err))
		goto out;
	if (others > 0 || busy) {
		if (busy)
			dgm_buf_puts(&who, "a session connected while it was being copied");
		if (restore_snapshot(s, conn, plan, revs, nrevs, dgm_buf_cstr(&who), err))
			goto out;
	}
	copy_settings(conn, s->source, s->name);
	{
		/* so that a leftover is known for what it is (see drop_leftovers) */
		char *q = dgm_pg_quote_ident(conn, s->name);
		char *text = dgm_xasprintf(COMMENT_PREFIX "%s", s->source);
		char *lit = PQescapeLiteral(conn, text, strlen(text));
		char *sql = dgm_xasprintf("COMMENT ON DATABASE %s IS %s", q, lit ? lit : "''");

		if (dgm_pg_exec(conn, sql, &ignore))
			dgm_debug("cannot comment on '%s': %s", s->name, ignore.msg);
		PQfreemem(lit);
		free(sql);
		free(text);
		free(q);
	}
	ret = 0;
out:
	dgm_buf_free(&who);
	dgm_pg_close(conn);
	return ret;
}

void dgm_rehearse_scratch_drop(dgm_rehearse_scratch *s, const dgm_plan *plan)
{
	dgm_error e = DGM_ERROR_INIT;
	PGconn *conn = NULL;

	if (!s->exists)
		return;
	if (maintenance(&conn, plan, s->source, &e) == 0 &&
	    dgm_pg_drop_database(conn, s->name, true, &e) == 0) {
		s->exists = false;
		dgm_debug("scratch database '%s' dropped", s->name);
	} else
		dgm_warn("cannot drop the scratch database '%s' (the next rehearsal will): %s",
			 s->name, e.msg);
	dgm_pg_close(conn);
}

void dgm_rehearse_scratch_free(dgm_rehearse_scratch *s)
{
	if (s->url)
		memset(s->url, 0, strlen(s->url));
	free(s->url);
	free(s->source);
	free(s->name);
	free(s->from);
	free(s->snapshot);
	memset(s, 0, sizeof(*s));
}

/* ---- signals ----------------------------------------------------------- */

static struct sigaction old_int, old_term;

/* Only a flag: the run sees it (dgm_run stops the child at once) and
 * cleans up on its way out. */
static void on_signal(int sig)
{
	(void)sig;
	dgm_run_interrupted = 1;
}

void dgm_rehearse_signals_install(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);
}

void dgm_rehearse_signals_restore(void)
{
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
}
