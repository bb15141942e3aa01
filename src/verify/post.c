/*
 * post.c - the plan's postconditions, checked on the upgraded database:
 * Alembic's heads, tables, indexes, validated foreign keys, then ANALYZE.
 * Every check runs even after one failed, so the report shows the
 * whole picture; the error sums up every failure.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dgm/clock.h"
#include "dgm/buf.h"
#include "dgm/log.h"
#include "dgm/pg.h"
#include "dgm/verify.h"

typedef struct post_ctx {
	dgm_verify_result *res;
	PGconn *conn;
	size_t failed;
	dgm_buf problems;   /* "table 'x' does not exist; index 'y' ..." */
	dgm_buf hint;       /* the fix for the first failure */
	dgm_buf oids;       /* "{16384,16390}": the tables found, for the FK query */
	dgm_buf analyze;    /* "public.a, public.b": the tables found, quoted */
	size_t nfound;
} post_ctx;

/* Count a failure: its one-line summary joins the error message, and
 * the first failure's fix becomes the hint. */
static void problem(post_ctx *c, const char *hint, const char *fmt, ...) DGM_PRINTF(3, 4);
static void problem(post_ctx *c, const char *hint, const char *fmt, ...)
{
	va_list ap;

	if (c->failed++)
		dgm_buf_puts(&c->problems, "; ");
	va_start(ap, fmt);
	dgm_buf_vprintf(&c->problems, fmt, ap);
	va_end(ap);
	if (!c->hint.len && hint)
		dgm_buf_puts(&c->hint, hint);
}

static const char *relkind_name(char k)
{
	switch (k) {
	case 'r': return "a table";
	case 'p': return "a partitioned table";
	case 'v': return "a view";
	case 'm': return "a materialized view";
	case 'f': return "a foreign table";
	case 'i': case 'I': return "an index";
	case 'S': return "a sequence";
	default: return "not a table";
	}
}

/* ---- alembic_version ---------------------------------------------------- */

static void join(dgm_buf *b, char *const *items, size_t n)
{
	if (!n)
		dgm_buf_puts(b, "(none: base)");
	for (size_t i = 0; i < n; i++)
		dgm_buf_printf(b, "%s%s", i ? ", " : "", items[i]);
}

static int check_revision(post_ctx *c, const dgm_plan *plan, char *const *want, size_t nwant,
			  dgm_error *err)
{
	const char *table = plan->alembic.version_table ? plan->alembic.version_table
							 : "alembic_version";
	dgm_buf have_s = DGM_BUF_INIT, want_s = DGM_BUF_INIT;
	char **have = NULL;
	size_t nhave = 0;
	bool ok;

	if (dgm_pg_read_revisions(&have, &nhave, c->conn, table, plan->alembic.version_schema,
				  err))
		return -1;
	join(&have_s, have, nhave);
	join(&want_s, want, nwant);
	ok = dgm_verify_same_set(have, nhave, want, nwant);
	if (ok)
		dgm_verify_add(c->res, table, true, "holds %s", have_s.ptr);
	else {
		dgm_verify_add(c->res, table, false, "holds %s, expected %s", have_s.ptr, want_s.ptr);
		problem(c, "look at the output of the Alembic upgrade above: a migration may have "
			"failed or the target revision is not the tag's heads",
			"'%s' holds %s, expected %s", table, have_s.ptr, want_s.ptr);
	}
	dgm_pg_strings_free(have);
	dgm_buf_free(&have_s);
	dgm_buf_free(&want_s);
	return 0;
}

/* ---- tables --------------------------------------------------------------- */

static const char table_sql[] =
	"SELECT c.oid, c.relkind, quote_ident(n.nspname) || '.' || quote_ident(c.relname),"
	" (SELECT count(*) FROM pg_attribute a"
	"   WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped),"
	" current_setting('search_path')"
	" FROM (SELECT to_regclass($1) AS r) x"
	" LEFT JOIN pg_class c ON c.oid = x.r"
	" LEFT JOIN pg_namespace n ON n.oid = c.relnamespace";

static void table_found(post_ctx *c, PGresult *r, const char *table, const char *item)
{
	char kind = PQgetvalue(r, 0, 1)[0];

	if (kind != 'r' && kind != 'p') {
		dgm_verify_add(c->res, item, false, "%s is %s", PQgetvalue(r, 0, 2),
			       relkind_name(kind));
		problem(c, NULL, "'%s' is %s, not a table", table, relkind_name(kind));
		return;
	}
	dgm_verify_add(c->res, item, true, "%s (%s columns)", PQgetvalue(r, 0, 2),
		       PQgetvalue(r, 0, 3));
	dgm_buf_puts(&c->oids, c->nfound ? "," : "{");
	dgm_buf_puts(&c->oids, PQgetvalue(r, 0, 0));
	if (c->nfound)
		dgm_buf_puts(&c->analyze, ", ");
	dgm_buf_puts(&c->analyze, PQgetvalue(r, 0, 2));
	c->nfound++;
}

static int check_table(post_ctx *c, const char *table, dgm_error *err)
{
	char *q = dgm_pg_quote_ident(c->conn, table);
	char *item = dgm_xasprintf("table %s", table);
	const char *params[] = { q };
	PGresult *r = NULL;

	if (dgm_pg_query(&r, c->conn, table_sql, 1, params, err)) {
		free(q);
		free(item);
		return -1;
	}
	if (PQgetisnull(r, 0, 0)) {
		dgm_verify_add(c->res, item, false, "does not exist (search_path: %s)",
			       PQgetvalue(r, 0, 4));
		problem(c, "check that a migration up to the target revision creates it, and "
			"the schema or search_path the plan's name relies on",
			"table '%s' does not exist", table);
	} else {
		table_found(c, r, table, item);
	}
	PQclear(r);
	free(q);
	free(item);
	return 0;
}

/* ---- indexes -------------------------------------------------------------- */

/* "ix_x on prediction_history(model_id)": the table as search_path shows
 * it, the key columns in order. Read from the catalogs alone:
 * pg_get_indexdef() and pg_get_expr() wait for a lock on the table, and
 * a session holding one must not hang the check (ANALYZE alone waits,
 * with a timeout). */
static const char index_sql[] =
	"SELECT c.relkind, i.indisvalid, i.indisunique, i.indrelid::regclass::text,"
	" (SELECT string_agg(coalesce(a.attname::text, '(expression)'), ', ' ORDER BY k.n)"
	"   FROM unnest(i.indkey::int2[]) WITH ORDINALITY k(attnum, n)"
	"   LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum"
	"  WHERE k.n <= i.indnkeyatts),"
	" c.oid::regclass::text"
	" FROM (SELECT to_regclass($1) AS r) x"
	" LEFT JOIN pg_class c ON c.oid = x.r"
	" LEFT JOIN pg_index i ON i.indexrelid = c.oid";

static void index_found(post_ctx *c, PGresult *r, const char *index, const char *item)
{
	char kind = PQgetvalue(r, 0, 0)[0];
	const char *name = PQgetvalue(r, 0, 5), *on = PQgetvalue(r, 0, 3);
	const char *cols = PQgetvalue(r, 0, 4);
	bool unique = !strcmp(PQgetvalue(r, 0, 2), "t");

	if (kind != 'i' && kind != 'I') {
		dgm_verify_add(c->res, item, false, "%s is %s", name, relkind_name(kind));
		problem(c, NULL, "'%s' is %s, not an index", index, relkind_name(kind));
		return;
	}
	if (strcmp(PQgetvalue(r, 0, 1), "t")) {
		dgm_verify_add(c->res, item, false, "%sindex %s on %s(%s) is INVALID",
			       unique ? "unique " : "", name, on, cols);
		problem(c, "an invalid index is what a failed CREATE INDEX CONCURRENTLY leaves: "
			"drop it and create it again",
			"index '%s' is invalid", index);
		return;
	}
	dgm_verify_add(c->res, item, true, "%sindex %s on %s(%s)", unique ? "unique " : "", name,
		       on, cols);
}

static int check_index(post_ctx *c, const char *index, dgm_error *err)
{
	char *q = dgm_pg_quote_ident(c->conn, index);
	char *item = dgm_xasprintf("index %s", index);
	const char *params[] = { q };
	PGresult *r = NULL;

	if (dgm_pg_query(&r, c->conn, index_sql, 1, params, err)) {
		free(q);
		free(item);
		return -1;
	}
	if (PQgetisnull(r, 0, 0)) {
		dgm_verify_add(c->res, item, false, "does not exist");
		problem(c, "check that a migration up to the target revision creates it",
			"index '%s' does not exist", index);
	} else {
		index_found(c, r, index, item);
	}
	PQclear(r);
	free(q);
	free(item);
	return 0;
}

/* ---- foreign keys --------------------------------------------------------- */

/* Every foreign key on the tables and every one that references them:
 * a NOT VALID key on another table still lets rows point nowhere. */
static const char fk_sql[] =
	"SELECT con.conname, con.conrelid::regclass::text, con.convalidated,"
	" pg_get_constraintdef(con.oid, true)"
	" FROM pg_constraint con"
	" WHERE con.contype = 'f'"
	"   AND (con.conrelid = ANY($1::oid[]) OR con.confrelid = ANY($1::oid[]))"
	" ORDER BY 2, 1";

static void fk_row(post_ctx *c, PGresult *r, int row)
{
	const char *name = PQgetvalue(r, row, 0), *on = PQgetvalue(r, row, 1);
	const char *def = PQgetvalue(r, row, 3);
	char *item = dgm_xasprintf("fk %s validated", name);
	char *hint;

	if (!strcmp(PQgetvalue(r, row, 2), "t")) {
		dgm_verify_add(c->res, item, true, "%s: %s", on, def);
		free(item);
		return;
	}
	dgm_verify_add(c->res, item, false, "not validated: %s: %s", on, def);
	hint = dgm_xasprintf("validate it once the data is clean: ALTER TABLE %s VALIDATE "
			     "CONSTRAINT %s (best in the migration that added it NOT VALID)",
			     on, name);
	problem(c, hint, "foreign key '%s' on '%s' is not validated", name, on);
	free(hint);
	free(item);
}

static int check_fks(post_ctx *c, dgm_error *err)
{
	const char *params[1];
	PGresult *r = NULL;
	int rows;

	dgm_buf_putc(&c->oids, '}');
	params[0] = c->oids.ptr;
	if (dgm_pg_query(&r, c->conn, fk_sql, 1, params, err))
		return -1;
	rows = PQntuples(r);
	for (int i = 0; i < rows; i++)
		fk_row(c, r, i);
	if (!rows)
		dgm_verify_add(c->res, "foreign keys validated", true,
			       "no foreign key on or referencing the %zu table%s", c->nfound,
			       c->nfound == 1 ? "" : "s");
	PQclear(r);
	return 0;
}

/* ---- ANALYZE -------------------------------------------------------------- */

/* Run sql; on failure, the server's primary message ("canceling
 * statement due to lock timeout") in msg. */
static bool exec_msg(PGconn *conn, const char *sql, char *msg, size_t len)
{
	PGresult *r = PQexec(conn, sql);
	ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
	const char *m = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	bool ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;

	if (!ok) {
		size_t n;

		snprintf(msg, len, "%s", m ? m : PQerrorMessage(conn));
		n = strlen(msg);
		while (n && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
			msg[--n] = '\0';
	}
	PQclear(r);
	return ok;
}

/* ANALYZE waits for locks like DDL does: behind a long transaction it
 * would hang the release. In its own transaction (when the connection
 * is idle) it gets the plan's lock_timeout, which SET LOCAL confines. */
static int analyze(post_ctx *c, const dgm_plan *plan, dgm_error *err)
{
	bool own = plan->timeouts.lock_ms > 0 && PQtransactionStatus(c->conn) == PQTRANS_IDLE;
	char *sql = own ? dgm_xasprintf("BEGIN; SET LOCAL lock_timeout = %ld; ANALYZE %s; COMMIT",
					plan->timeouts.lock_ms, c->analyze.ptr)
			: dgm_xasprintf("ANALYZE %s", c->analyze.ptr);
	long start = dgm_now_ms();
	char msg[512];
	bool ok = exec_msg(c->conn, sql, msg, sizeof(msg));

	free(sql);
	if (ok) {
		dgm_verify_add(c->res, "analyze", true, "ANALYZE %s in %ld ms", c->analyze.ptr,
			       dgm_now_ms() - start);
		return 0;
	}
	if (PQstatus(c->conn) != CONNECTION_OK)
		return dgm_error_set(err, DGM_E_PG, "cannot ANALYZE the postcondition tables: %s",
				     msg);
	if (own && PQtransactionStatus(c->conn) == PQTRANS_INERROR &&
	    dgm_pg_exec(c->conn, "ROLLBACK", err))
		return -1;
	dgm_verify_add(c->res, "analyze", false, "ANALYZE %s: %s", c->analyze.ptr, msg);
	problem(c, "another session may hold a lock on one of the tables: ANALYZE them once it "
		"is gone, or set postconditions.analyze to false",
		"ANALYZE failed: %s", msg);
	return 0;
}

/* ---- all together ----------------------------------------------------------- */

static int run_checks(post_ctx *c, const dgm_plan *plan, char *const *revs, size_t n,
		      dgm_error *err)
{
	const dgm_strlist *tables = &plan->postconditions.tables;
	const dgm_strlist *indexes = &plan->postconditions.indexes;

	if (revs && check_revision(c, plan, revs, n, err))
		return -1;
	for (size_t i = 0; i < tables->count; i++)
		if (check_table(c, tables->items[i], err))
			return -1;
	for (size_t i = 0; i < indexes->count; i++)
		if (check_index(c, indexes->items[i], err))
			return -1;
	if (plan->postconditions.foreign_keys_validated && c->nfound && check_fks(c, err))
		return -1;
	if (!plan->postconditions.analyze || !c->nfound)
		return 0;
	if (c->failed) {
		dgm_info("  skip  analyze: postconditions failed");
		return 0;
	}
	return analyze(c, plan, err);
}

int dgm_verify_postconditions(dgm_verify_result *res, PGconn *conn, const dgm_plan *plan,
			      char *const *expected_revs, size_t n, dgm_error *err)
{
	post_ctx c = { .res = res, .conn = conn };
	int ret = -1;

	if (run_checks(&c, plan, expected_revs, n, err))
		goto out;
	if (c.failed) {
		dgm_error_set(err, DGM_E_RUN, "postconditions failed: %s", c.problems.ptr);
		if (c.hint.len)
			dgm_error_hint(err, "%s", c.hint.ptr);
		goto out;
	}
	ret = 0;
out:
	dgm_buf_free(&c.problems);
	dgm_buf_free(&c.hint);
	dgm_buf_free(&c.oids);
	dgm_buf_free(&c.analyze);
	return ret;
}
