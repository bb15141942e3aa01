/*
 * pg.h - the libpq wrapper: connections, queries, and the conninfo a
 * child process needs (through its environment, never argv).
 */
#ifndef DGM_PG_H
#define DGM_PG_H

#include <stdbool.h>
#include <stddef.h>

#include <libpq-fe.h>

#include "dgm/error.h"

/* Connect to url (libpq URL or conninfo). application_name may be NULL.
 * Messages name the database, host and port, never the password. */
int dgm_pg_connect(PGconn **out, const char *url, const char *application_name,
		   dgm_error *err);
/* The same server and credentials, another database (NULL: url's). */
int dgm_pg_connect_db(PGconn **out, const char *url, const char *dbname,
		      const char *application_name, dgm_error *err);
/* PQfinish, NULL-safe. */
void dgm_pg_close(PGconn *conn);

/* Run a command that returns no rows. */
int dgm_pg_exec(PGconn *conn, const char *sql, dgm_error *err);

/* Run a command with one or two identifiers spliced into fmt (two %s),
 * each quoted: "ALTER DATABASE %s RENAME TO %s". b may be NULL. */
int dgm_pg_exec_ident(PGconn *conn, const char *fmt, const char *a, const char *b,
		      dgm_error *err);
/* DROP DATABASE IF EXISTS name [WITH (FORCE): its sessions ended]. */
int dgm_pg_drop_database(PGconn *conn, const char *name, bool force, dgm_error *err);
/* CREATE DATABASE name TEMPLATE from, as a file copy (STRATEGY FILE_COPY
 * from PostgreSQL 15 on: WAL_LOG would write it all to the WAL). from
 * must have no session connected. */
int dgm_pg_copy_database(PGconn *conn, const char *name, const char *from, dgm_error *err);
/* ALTER DATABASE from RENAME TO to. */
int dgm_pg_rename_database(PGconn *conn, const char *from, const char *to, dgm_error *err);
/* Run a query with text parameters; *out must be PQclear'ed. */
int dgm_pg_query(PGresult **out, PGconn *conn, const char *sql, int nparams,
		 const char *const *params, dgm_error *err);

/* "15.18" style version of the connected server, into buf. */
void dgm_pg_server_version(PGconn *conn, char *buf, size_t len);

/* Environment entries ("PGHOST=...", ...) that let a libpq client child
 * (pg_dump, pg_restore, psql) reach the database of url. The array and
 * its strings are malloc'd; free with dgm_pg_env_free. */
int dgm_pg_env(char ***out, const char *url, dgm_error *err);
void dgm_pg_env_free(char **env);

/* Quote an identifier (schema.table is quoted part by part). malloc'd. */
char *dgm_pg_quote_ident(PGconn *conn, const char *ident);

/* The rows of Alembic's version table (schema may be NULL: search_path),
 * sorted. A missing table means the database is at base: 0 rows. *out
 * is a NULL-terminated malloc'd array of malloc'd strings. */
int dgm_pg_read_revisions(char ***out, size_t *n, PGconn *conn, const char *table,
			  const char *schema, dgm_error *err);
void dgm_pg_strings_free(char **list);

/* The owner of database db (NULL: the connected one), quoted, when it
 * is another role that the current one is a member of (so dgmigrate may
 * create or alter objects for it); else NULL. */
char *dgm_pg_owner_to_act_for(PGconn *conn, const char *db);

/* Whether a database of that name exists in the cluster of conn. */
int dgm_pg_database_exists(bool *exists, PGconn *conn, const char *name, dgm_error *err);

/* Whether the connected role is a superuser (false when it cannot be read). */
bool dgm_pg_is_superuser(PGconn *conn);
/* The session's role may CREATE DATABASE (CREATEDB or superuser); false
 * also when that cannot be read. */
bool dgm_pg_may_create_db(PGconn *conn);

#endif
