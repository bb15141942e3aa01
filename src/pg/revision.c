/* revision.c - what Alembic's version table says about the database. */
#include <stdlib.h>
#include <string.h>

#include "dgm/buf.h"
#include "dgm/pg.h"

static int table_exists(bool *exists, PGconn *conn, const char *qualified, dgm_error *err)
{
	const char *params[] = { qualified };
	PGresult *res = NULL;

	if (dgm_pg_query(&res, conn, "SELECT to_regclass($1) IS NOT NULL", 1, params, err))
		return -1;
	*exists = !strcmp(PQgetvalue(res, 0, 0), "t");
	PQclear(res);
	return 0;
}

int dgm_pg_read_revisions(char ***out, size_t *n, PGconn *conn, const char *table,
			  const char *schema, dgm_error *err)
{
	dgm_buf name = DGM_BUF_INIT, sql = DGM_BUF_INIT;
	PGresult *res = NULL;
	char *q = NULL;
	bool exists = false;
	int ret = -1;

	*out = dgm_xcalloc(1, sizeof(char *));
	*n = 0;
	if (schema)
		dgm_buf_printf(&name, "%s.%s", schema, table);
	else
		dgm_buf_puts(&name, table);
	q = dgm_pg_quote_ident(conn, name.ptr);
	if (table_exists(&exists, conn, q, err))
		goto out;
	if (!exists) {
		ret = 0;
		goto out;
	}
	dgm_buf_printf(&sql, "SELECT version_num FROM %s ORDER BY 1", q);
	if (dgm_pg_query(&res, conn, sql.ptr, 0, NULL, err)) {
		dgm_error_prefix(err, "cannot read Alembic's version table '%s'", name.ptr);
		goto out;
	}
	*n = (size_t)PQntuples(res);
	*out = dgm_xrealloc(*out, (*n + 1) * sizeof(char *));
	for (size_t i = 0; i < *n; i++)
		(*out)[i] = dgm_xstrdup(PQgetvalue(res, (int)i, 0));
	(*out)[*n] = NULL;
	ret = 0;
out:
	if (ret) {
		dgm_pg_strings_free(*out);
		*out = NULL;
		*n = 0;
	}
	PQclear(res);
	free(q);
	dgm_buf_free(&name);
	dgm_buf_free(&sql);
	return ret;
}

void dgm_pg_strings_free(char **list)
{
	for (char **p = list; p && *p; p++)
		free(*p);
	free(list);
}
