/* pg.c - libpq connections and queries. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dgm/buf.h"
#include "dgm/log.h"
#include "dgm/pg.h"

/* libpq messages end with a newline; keep them on one line. */
static void trim_msg(char *buf, size_t len, const char *msg)
{
	size_t n;

	snprintf(buf, len, "%s", msg ? msg : "");
	n = strlen(buf);
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = '\0';
	for (char *p = buf; *p; p++)
		if (*p == '\n')
			*p = ' ';
}

/* ---- where libpq took a connection's values from ------------------------ */

/* Whether the service file FILE has section SERVICE (*found) and a KEY
 * in it. Lines are "key=value", "[name]" or comments, as libpq reads. */
static bool service_file_has(const char *file, const char *service, const char *key,
			     bool *found)
{
	FILE *f = fopen(file, "r");
	char line[1024];
	bool in = false, has = false;

	*found = false;
	if (!f)
		return false;
	while (!has && fgets(line, sizeof(line), f)) {
		char *p = line + strspn(line, " \t");
		size_t n = strcspn(p, " \t=\r\n");

		if (*p == '[') {
			in = !strncmp(p + 1, service, strlen(service)) && p[1 + strlen(service)] == ']';
			*found = *found || in;
		} else if (in && *p != '#' && n == strlen(key) && !strncmp(p, key, n)) {
			has = true;
		}
	}
	fclose(f);
	return has;
}

/* Whether SERVICE gives KEY: the user's service file (PGSERVICEFILE, else
 * ~/.pg_service.conf), or the system's (PGSYSCONFDIR/pg_service.conf)
 * when the user's has no such service, as libpq looks them up. */
static bool service_has(const char *service, const char *key)
{
	const char *file = getenv("PGSERVICEFILE"), *home = getenv("HOME");
	const char *sys = getenv("PGSYSCONFDIR");
	char *path = NULL;
	bool found = false, has = false;

	if (file && *file)
		path = dgm_xstrdup(file);
	else if (home && *home)
		path = dgm_xasprintf("%s/.pg_service.conf", home);
	if (path)
		has = service_file_has(path, service, key, &found);
	free(path);
	if (!found && sys && *sys) {
		path = dgm_xasprintf("%s/pg_service.conf", sys);
		has = service_file_has(path, service, key, &found);
		free(path);
	}
	return has;
}

/* The service the connection used: the URL's, else PGSERVICE; or NULL. */
static const char *service_of(const PQconninfoOption *opts)
{
	for (const PQconninfoOption *o = opts; o && o->keyword; o++)
		if (!strcmp(o->keyword, "service") && o->val && *o->val)
			return o->val;
	return getenv("PGSERVICE") && *getenv("PGSERVICE") ? getenv("PGSERVICE") : NULL;
}

static bool url_gives(const PQconninfoOption *opts, const char *key)
{
	for (const PQconninfoOption *o = opts; o && o->keyword; o++)
		if (!strcmp(o->keyword, key) && o->val && *o->val)
			return true;
	return false;
}

/* Where a connection field the URL left empty came from: a service file
 * (libpq takes it before the variables), one of libpq's variables, or
 * libpq's built-in default. */
static void add_source(dgm_buf *src, const PQconninfoOption *opts, const char *key,
		       const char *envvar)
{
	const char *service = service_of(opts);

	if (url_gives(opts, key))
		return;
	if (service && service_has(service, key))
		dgm_buf_printf(src, "%s%s from service '%s'", src->len ? ", " : "", key, service);
	else if (getenv(envvar) && *getenv(envvar))
		dgm_buf_printf(src, "%s%s from %s", src->len ? ", " : "", key, envvar);
	else
		dgm_buf_printf(src, "%s%s: libpq's default", src->len ? ", " : "", key);
}

/* The password file libpq read (PGPASSFILE, else ~/.pgpass), malloc'd,
 * when the password it sent came from there, else NULL. */
static char *password_file_used(PGconn *conn, const PQconninfoOption *opts)
{
	const char *service = service_of(opts), *env = getenv("PGPASSFILE");
	PQconninfoOption *used;
	char *file = NULL;

	if (!PQconnectionUsedPassword(conn) || url_gives(opts, "password") ||
	    (getenv("PGPASSWORD") && *getenv("PGPASSWORD")) ||
	    (service && service_has(service, "password")))
		return NULL;
	used = PQconninfo(conn);
	for (const PQconninfoOption *o = used; o && o->keyword; o++)
		if (!strcmp(o->keyword, "passfile") && o->val && *o->val)
			file = dgm_xstrdup(o->val);
	PQconninfoFree(used);
	if (!file && env && *env)
		file = dgm_xstrdup(env);
	else if (!file)
		file = dgm_xasprintf("%s/.pgpass", getenv("HOME") ? getenv("HOME") : "~");
	return file;
}

static void connect_hint(dgm_error *err, const char *url, const char *passfile,
			 const char *service, bool sources)
{
	if (passfile)
		dgm_error_hint(err, "the password libpq sent came from the password file '%s'%s, "
			       "not from the plan: correct the line there that matches this host, "
			       "port, database and user (or remove it and give the password "
			       "otherwise)", passfile,
			       getenv("PGPASSFILE") && *getenv("PGPASSFILE") ? " (PGPASSFILE)" : "");
	else if (!*url)
		dgm_error_hint(err, "the plan gives no database.url, so libpq's defaults apply: "
			       "PGHOST, PGPORT, PGUSER, PGDATABASE, PGSERVICE%s and ~/.pgpass, as "
			       "for psql; check them, or set database.url",
			       service ? " (the service file's section of the service)" : "");
	else
		dgm_error_hint(err, "check that the server runs and that the plan's database.url "
			       "is right%s", sources ? ", and the PG* variables or service it "
			       "leaves to libpq" : "");
}

/* A failed connection, described with what libpq actually used (it
 * fills in service files, PG* variables and defaults) and where each
 * field the plan did not give came from, the password included. */
static void connect_failed(PGconn *conn, const char *url, dgm_error *err)
{
	PQconninfoOption *opts = PQconninfoParse(url, NULL);
	const char *host = PQhost(conn), *port = PQport(conn);
	char *passfile = password_file_used(conn, opts);
	dgm_buf src = DGM_BUF_INIT;
	char msg[1024];

	trim_msg(msg, sizeof(msg), PQerrorMessage(conn));
	add_source(&src, opts, "host", "PGHOST");
	add_source(&src, opts, "port", "PGPORT");
	add_source(&src, opts, "user", "PGUSER");
	add_source(&src, opts, "dbname", "PGDATABASE");
	if (passfile)
		dgm_buf_printf(&src, ", password from the password file '%s'", passfile);
	dgm_error_set(err, DGM_E_PG, "cannot connect to database '%s' on '%s:%s' as '%s'%s%s%s: %s",
		      PQdb(conn) ? PQdb(conn) : "?", host && *host ? host : "?",
		      port && *port ? port : "5432", PQuser(conn) ? PQuser(conn) : "?",
		      src.len ? " (" : "", dgm_buf_cstr(&src), src.len ? ")" : "", msg);
	connect_hint(err, url, passfile, service_of(opts), src.len > 0);
	free(passfile);
	dgm_buf_free(&src);
	PQconninfoFree(opts);
}

/* Server notices ("NOTICE: ... does not exist, skipping") are detail,
 * not progress: debug output, one line. */
static void notice(void *arg, const char *message)
{
	char line[1024];

	trim_msg(line, sizeof(line), message);
	dgm_debug("server: %s", line);
}

int dgm_pg_connect(PGconn **out, const char *url, const char *application_name,
		   dgm_error *err)
{
	return dgm_pg_connect_db(out, url, NULL, application_name, err);
}

int dgm_pg_connect_db(PGconn **out, const char *url, const char *dbname,
		      const char *application_name, dgm_error *err)
{
	/* a second "dbname" after expand_dbname overrides the URL's one */
	const char *keys[] = { "dbname", "application_name", "connect_timeout",
			       dbname ? "dbname" : NULL, NULL };
	const char *vals[] = { url, application_name ? application_name : "dgmigrate", "10",
			       dbname, NULL };
	char *perr = NULL;
	PQconninfoOption *opts;
	PGconn *conn;
	char msg[1024];

	*out = NULL;
	opts = PQconninfoParse(url, &perr);
	if (!opts) {
		trim_msg(msg, sizeof(msg), perr);
		PQfreemem(perr);
		dgm_error_set(err, DGM_E_PLAN, "the database URL is not valid: %s", msg);
		dgm_error_hint(err, "use postgresql://USER@HOST:PORT/DBNAME or 'host=... dbname=...'");
		return -1;
	}
	PQconninfoFree(opts);
	/* expand_dbname=1: the URL fills every field; the later keys override. */
	conn = PQconnectdbParams(keys, vals, 1);
	if (!conn)
		return dgm_error_set(err, DGM_E_NOMEM, "out of memory connecting to the database");
	if (PQstatus(conn) != CONNECTION_OK) {
		connect_failed(conn, url, err);
		PQfinish(conn);
		return -1;
	}
	PQsetNoticeProcessor(conn, notice, NULL);
	*out = conn;
	return 0;
}

void dgm_pg_close(PGconn *conn)
{
	if (conn)
		PQfinish(conn);
}

static int result_error(PGresult *res, PGconn *conn, const char *sql, dgm_error *err)
{
	char msg[1024];
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

	trim_msg(msg, sizeof(msg), res ? PQresultErrorMessage(res) : PQerrorMessage(conn));
	dgm_error_set(err, DGM_E_PG, "query failed%s%s%s: %s [%.60s%s]", state ? " (SQLSTATE " : "",
		      state ? state : "", state ? ")" : "", msg, sql, strlen(sql) > 60 ? "..." : "");
	return -1;
}

int dgm_pg_exec(PGconn *conn, const char *sql, dgm_error *err)
{
	PGresult *res = PQexec(conn, sql);
	int ret = 0;

	if (!res || (PQresultStatus(res) != PGRES_COMMAND_OK &&
		     PQresultStatus(res) != PGRES_TUPLES_OK))
		ret = result_error(res, conn, sql, err);
	PQclear(res);
	return ret;
}

int dgm_pg_exec_ident(PGconn *conn, const char *fmt, const char *a, const char *b,
		      dgm_error *err)
{
	char *qa = dgm_pg_quote_ident(conn, a), *qb = b ? dgm_pg_quote_ident(conn, b) : NULL;
	char *sql = dgm_xasprintf(fmt, qa, qb ? qb : "");
	int ret = dgm_pg_exec(conn, sql, err);

	free(sql);
	free(qa);
	free(qb);
	return ret;
}

int dgm_pg_drop_database(PGconn *conn, const char *name, bool force, dgm_error *err)
{
	return dgm_pg_exec_ident(conn, force ? "DROP DATABASE IF EXISTS %s WITH (FORCE)" :
				 "DROP DATABASE IF EXISTS %s", name, NULL, err);
}

int dgm_pg_copy_database(PGconn *conn, const char *name, const char *from, dgm_error *err)
{
	return dgm_pg_exec_ident(conn, PQserverVersion(conn) >= 150000 ?
				 "CREATE DATABASE %s TEMPLATE %s STRATEGY FILE_COPY" :
				 "CREATE DATABASE %s TEMPLATE %s", name, from, err);
}

int dgm_pg_rename_database(PGconn *conn, const char *from, const char *to, dgm_error *err)
{
	return dgm_pg_exec_ident(conn, "ALTER DATABASE %s RENAME TO %s", from, to, err);
}

int dgm_pg_query(PGresult **out, PGconn *conn, const char *sql, int nparams,
		 const char *const *params, dgm_error *err)
{
	PGresult *res = PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);

	*out = NULL;
	if (!res || (PQresultStatus(res) != PGRES_TUPLES_OK &&
		     PQresultStatus(res) != PGRES_COMMAND_OK)) {
		result_error(res, conn, sql, err);
		PQclear(res);
		return -1;
	}
	*out = res;
	return 0;
}

void dgm_pg_server_version(PGconn *conn, char *buf, size_t len)
{
	int v = PQserverVersion(conn);

	if (v >= 100000)
		snprintf(buf, len, "%d.%d", v / 10000, v % 10000);
	else
		snprintf(buf, len, "%d.%d.%d", v / 10000, (v / 100) % 100, v % 100);
}

/* conninfo keyword -> libpq environment variable */
static const char *const env_map[][2] = {
	{ "host", "PGHOST" }, { "hostaddr", "PGHOSTADDR" }, { "port", "PGPORT" },
	{ "dbname", "PGDATABASE" }, { "user", "PGUSER" }, { "password", "PGPASSWORD" },
	{ "passfile", "PGPASSFILE" }, { "sslmode", "PGSSLMODE" }, { "sslcert", "PGSSLCERT" },
	{ "sslkey", "PGSSLKEY" }, { "sslrootcert", "PGSSLROOTCERT" },
	{ "sslcrl", "PGSSLCRL" }, { "connect_timeout", "PGCONNECT_TIMEOUT" },
	{ "options", "PGOPTIONS" }, { "target_session_attrs", "PGTARGETSESSIONATTRS" },
	{ "gssencmode", "PGGSSENCMODE" }, { "service", "PGSERVICE" },
	{ "channel_binding", "PGCHANNELBINDING" },
};

int dgm_pg_env(char ***out, const char *url, dgm_error *err)
{
	size_t nmap = sizeof(env_map) / sizeof(env_map[0]), n = 0;
	char *perr = NULL;
	PQconninfoOption *opts = PQconninfoParse(url, &perr);
	char **env;

	*out = NULL;
	if (!opts) {
		PQfreemem(perr);
		return dgm_error_set(err, DGM_E_PLAN, "the database URL is not valid");
	}
	env = dgm_xcalloc(nmap + 1, sizeof(*env));
	for (PQconninfoOption *o = opts; o->keyword; o++) {
		if (!o->val || !*o->val)
			continue;
		for (size_t i = 0; i < nmap; i++)
			if (!strcmp(o->keyword, env_map[i][0]))
				env[n++] = dgm_xasprintf("%s=%s", env_map[i][1], o->val);
	}
	PQconninfoFree(opts);
	*out = env;
	return 0;
}

void dgm_pg_env_free(char **env)
{
	for (char **e = env; e && *e; e++) {
		/* the strings may hold a password: wipe before freeing */
		memset(*e, 0, strlen(*e));
		free(*e);
	}
	free(env);
}

char *dgm_pg_quote_ident(PGconn *conn, const char *ident)
{
	dgm_buf b = DGM_BUF_INIT;
	const char *dot = strchr(ident, '.');
	char *part;

	if (dot) {
		char *schema = dgm_xstrndup(ident, (size_t)(dot - ident));

		part = PQescapeIdentifier(conn, schema, strlen(schema));
		free(schema);
		dgm_buf_puts(&b, part ? part : "");
		dgm_buf_putc(&b, '.');
		PQfreemem(part);
		ident = dot + 1;
	}
	part = PQescapeIdentifier(conn, ident, strlen(ident));
	dgm_buf_puts(&b, part ? part : "");
	PQfreemem(part);
	return dgm_buf_detach(&b);
}

char *dgm_pg_owner_to_act_for(PGconn *conn, const char *db)
{
	const char *params[] = { db };
	dgm_error ignore = DGM_ERROR_INIT;
	PGresult *res = NULL;
	char *owner = NULL;

	if (dgm_pg_query(&res, conn, "SELECT pg_get_userbyid(datdba) FROM pg_database"
			 " WHERE datname = coalesce($1, current_database()) AND datdba <> (SELECT"
			 " oid FROM pg_roles WHERE rolname = current_user)"
			 " AND pg_has_role(datdba, 'MEMBER')", 1, params, &ignore) == 0 &&
	    PQntuples(res) == 1)
		owner = dgm_pg_quote_ident(conn, PQgetvalue(res, 0, 0));
	PQclear(res);
	return owner;
}

static bool role_says_true(PGconn *conn, const char *sql)
{
	PGresult *res = PQexec(conn, sql);
	bool yes = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 &&
		   !strcmp(PQgetvalue(res, 0, 0), "t");

	PQclear(res);
	return yes;
}

int dgm_pg_database_exists(bool *exists, PGconn *conn, const char *name, dgm_error *err)
{
	const char *params[] = { name };
	PGresult *res = NULL;

	if (dgm_pg_query(&res, conn, "SELECT count(*) FROM pg_database WHERE datname = $1", 1,
			 params, err))
		return -1;
	*exists = atoi(PQgetvalue(res, 0, 0)) > 0;
	PQclear(res);
	return 0;
}

bool dgm_pg_is_superuser(PGconn *conn)
{
	return role_says_true(conn, "SELECT rolsuper FROM pg_roles WHERE rolname = current_user");
}

bool dgm_pg_may_create_db(PGconn *conn)
{
	return role_says_true(conn, "SELECT rolsuper OR rolcreatedb FROM pg_roles "
			      "WHERE rolname = current_user");
}
