/* size.c - the size of the tables findings touch, from the target's
 * catalog: read-only, each under lock_timeout, so linting never waits
 * behind (or blocks) the application. */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>

#include "dgm/lint.h"
#include "dgm/log.h"
#include "dgm/pg.h"

static const char size_sql[] =
	"SELECT pg_total_relation_size(c.oid), c.reltuples::bigint, pg_relation_size(c.oid) "
	"FROM pg_class c WHERE c.oid = to_regclass($1)";

/* One table; a failure only leaves the size unknown. */
static void size_one(dgm_lint_finding *f, PGconn *conn)
{
	dgm_error e = DGM_ERROR_INIT;
	const char *params[] = { f->table };
	PGresult *res = NULL;

	if (dgm_pg_query(&res, conn, size_sql, 1, params, &e)) {
		dgm_warn("lint: cannot size table '%s': %s", f->table, e.msg);
		return;
	}
	if (PQntuples(res) == 1 && !PQgetisnull(res, 0, 0)) {
		f->table_bytes = atoll(PQgetvalue(res, 0, 0));
		f->table_rows = atoll(PQgetvalue(res, 0, 1));
		f->table_empty = atoll(PQgetvalue(res, 0, 2)) == 0;
	}
	PQclear(res);
}

int dgm_lint_size(dgm_lint_result *r, const char *url, long lock_ms, dgm_error *err)
{
	PGconn *conn = NULL;
	char sql[64];
	int ret = -1;

	if (dgm_pg_connect(&conn, url, "dgmigrate lint", err))
		return -1;
	snprintf(sql, sizeof(sql), "SET lock_timeout = %ld", lock_ms);
	if (dgm_pg_exec(conn, sql, err) ||
	    dgm_pg_exec(conn, "SET default_transaction_read_only = on", err))
		goto out;
	for (size_t i = 0; i < r->count; i++)
		if (r->items[i].table)
			size_one(&r->items[i], conn);
	ret = 0;
out:
	dgm_pg_close(conn);
	return ret;
}
