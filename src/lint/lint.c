/* lint.c - walk the statements of `alembic ... --sql` output, parsed by
 * PostgreSQL's own parser (libpg_query's JSON parse tree, read with
 * jansson), and apply the rules of rules.c. Besides the tree, only
 * alembic's own "-- Running upgrade X -> Y" comment lines are read, to
 * attribute each statement to its revision. */
#include <jansson.h>
#include <pg_query.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "dgm/buf.h"
#include "dgm/lint.h"

typedef struct mark {
	size_t off;                 /* where the comment line starts */
	char *rev;
} mark;

/* A CHECK (col IS NOT NULL) added in this SQL, for set-not-null. */
typedef struct check {
	char *table, *column, *name;
	bool validated;
} check;

typedef struct lctx {
	const char *sql;
	dgm_lint_result *out;
	mark *marks;
	size_t nmarks, mi;
	size_t line_off;            /* line counting cursor: offset and its line */
	int line;
	bool in_tx;
	char **created;             /* tables, indexes, columns created in this SQL */
	size_t ncreated;
	size_t *slots;              /* hash set of indexes+1 into created; 0 free */
	size_t nslots;
	check *checks;
	size_t nchecks;
	/* the statement being walked */
	const char *rev;
	int stmt_line;
	char *stmt;
} lctx;

static const char *str(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

static bool flag(json_t *o, const char *key)
{
	return json_is_true(json_object_get(o, key));
}

/* "schema.name" or "name" of a RangeVar. */
static char *rel_name(json_t *rv)
{
	const char *schema = str(rv, "schemaname"), *name = str(rv, "relname");

	if (!name)
		return NULL;
	return schema ? dgm_xasprintf("%s.%s", schema, name) : dgm_xstrdup(name);
}

/* The dotted name of a list of String nodes (a DropStmt object, a type). */
static char *names_join(json_t *list)
{
	dgm_buf b = DGM_BUF_INIT;
	size_t i;
	json_t *v;

	json_array_foreach(list, i, v) {
		const char *s = str(json_object_get(v, "String"), "sval");

		if (s)
			dgm_buf_printf(&b, "%s%s", i ? "." : "", s);
	}
	return dgm_buf_detach(&b);
}

/* The last String of a list: a function's or a type's own name. */
static const char *last_name(json_t *list)
{
	size_t n = json_array_size(list);

	return n ? str(json_object_get(json_array_get(list, n - 1), "String"), "sval") : NULL;
}

static size_t hash(const char *s)
{
	size_t h = 14695981039346656037u;

	while (*s)
		h = (h ^ (unsigned char)*s++) * 1099511628211u;
	return h;
}

/* The slot of name in the hash set, or the free slot where it would go. */
static size_t *slot(const lctx *c, const char *name)
{
	size_t i = hash(name) & (c->nslots - 1);

	while (c->slots[i] && strcmp(c->created[c->slots[i] - 1], name))
		i = (i + 1) & (c->nslots - 1);
	return &c->slots[i];
}

static bool created(const lctx *c, const char *name)
{
	return name && c->nslots && *slot(c, name);
}

static void grow(lctx *c)
{
	free(c->slots);
	c->nslots = c->nslots ? 2 * c->nslots : 64;
	c->slots = dgm_xcalloc(c->nslots, sizeof(*c->slots));
	for (size_t i = 0; i < c->ncreated; i++)
		*slot(c, c->created[i]) = i + 1;
}

static void remember(lctx *c, const char *name)
{
	if (!name || created(c, name))
		return;
	if (2 * (c->ncreated + 1) > c->nslots)
		grow(c);
	c->created = dgm_xrealloc(c->created, (c->ncreated + 1) * sizeof(*c->created));
	c->created[c->ncreated++] = dgm_xstrdup(name);
	*slot(c, name) = c->ncreated;
}

static void add(lctx *c, const char *rule, const char *table, const char *fmt, ...)
	DGM_PRINTF(4, 5);

static void add(lctx *c, const char *rule, const char *table, const char *fmt, ...)
{
	dgm_lint_result *r = c->out;
	dgm_lint_finding *f;
	va_list ap;

	if (r->count == r->cap) {
		r->cap = r->cap ? 2 * r->cap : 16;
		r->items = dgm_xrealloc(r->items, r->cap * sizeof(*r->items));
	}
	f = &r->items[r->count++];
	memset(f, 0, sizeof(*f));
	f->rule = dgm_lint_rule_find(rule);
	f->severity = f->rule->severity;
	f->revision = c->rev ? dgm_xstrdup(c->rev) : NULL;
	f->line = c->stmt_line;
	f->stmt = dgm_xstrdup(c->stmt);
	f->table = table ? dgm_xstrdup(table) : NULL;
	f->in_transaction = c->in_tx;
	f->table_bytes = f->table_rows = -1;
	if (fmt) {
		dgm_buf b = DGM_BUF_INIT;

		va_start(ap, fmt);
		dgm_buf_vprintf(&b, fmt, ap);
		va_end(ap);
		f->detail = dgm_buf_detach(&b);
	}
}

/* ---- revisions and lines ------------------------------------------------ */

/* alembic's "-- Running upgrade A -> B" (the revision is B) and
 * "-- Running downgrade B -> A" (B is undone): one per revision. */
static void find_marks(lctx *c)
{
	static const char up[] = "-- Running upgrade ", down[] = "-- Running downgrade ";
	const char *p = c->sql;

	for (; p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
		bool is_up = !strncmp(p, up, sizeof(up) - 1);
		const char *s, *arrow, *eol;

		if (!is_up && strncmp(p, down, sizeof(down) - 1))
			continue;
		s = p + (is_up ? sizeof(up) : sizeof(down)) - 1;
		eol = strchrnul(s, '\n');
		arrow = strstr(s, " -> ");
		if (!arrow || arrow > eol)
			continue;
		c->marks = dgm_xrealloc(c->marks, (c->nmarks + 1) * sizeof(*c->marks));
		c->marks[c->nmarks].off = (size_t)(p - c->sql);
		c->marks[c->nmarks++].rev = is_up ? dgm_xstrndup(arrow + 4, (size_t)(eol - arrow - 4)) :
					    dgm_xstrndup(s, (size_t)(arrow - s));
	}
}

/* Skip blanks and "--" comments from off: where the statement's text starts. */
static size_t skip_comments(const char *sql, size_t off, size_t end)
{
	while (off < end) {
		if (sql[off] == ' ' || sql[off] == '\t' || sql[off] == '\n' || sql[off] == '\r')
			off++;
		else if (sql[off] == '-' && sql[off + 1] == '-')
			off = (size_t)(strchrnul(sql + off, '\n') - sql);
		else
			break;
	}
	return off;
}

/* Set the statement's revision, line and first line; statements come in
 * order, so the cursors only move forward. */
static void locate(lctx *c, size_t loc, size_t len)
{
	size_t start = skip_comments(c->sql, loc, loc + len);
	const char *eol;

	while (c->mi < c->nmarks && c->marks[c->mi].off < start)
		c->rev = c->marks[c->mi++].rev;
	for (; c->line_off < start; c->line_off++)
		if (c->sql[c->line_off] == '\n')
			c->line++;
	eol = strchrnul(c->sql + start, '\n');
	if ((size_t)(eol - c->sql) > loc + len)
		eol = c->sql + loc + len;
	free(c->stmt);
	c->stmt = dgm_xstrndup(c->sql + start, (size_t)(eol - (c->sql + start)));
	c->stmt_line = c->line;
}

/* ---- the rules, per statement kind --------------------------------------- */

static const char *const volatile_fns[] = {
	"random", "gen_random_uuid", "uuid_generate_v1", "uuid_generate_v1mc",
	"uuid_generate_v4", "clock_timestamp", "timeofday", "nextval", NULL
};

/* The first volatile function called anywhere in the expression e. */
static const char *volatile_call(json_t *e)
{
	const char *key, *found = NULL;
	json_t *v;
	size_t i;

	if (json_is_array(e)) {
		json_array_foreach(e, i, v)
			if ((found = volatile_call(v)))
				return found;
		return NULL;
	}
	if (!json_is_object(e))
		return NULL;
	json_object_foreach(e, key, v) {
		if (!strcmp(key, "FuncCall")) {
			const char *fn = last_name(json_object_get(v, "funcname"));

			for (int j = 0; fn && volatile_fns[j]; j++)
				if (!strcmp(fn, volatile_fns[j]))
					return volatile_fns[j];
		}
		if ((found = volatile_call(v)))
			return found;
	}
	return NULL;
}

static void add_column(lctx *c, const char *table, json_t *col)
{
	const char *name = str(col, "colname"), *type = last_name(json_object_get(
		json_object_get(col, "typeName"), "names"));
	const char *vol = NULL;
	bool not_null = false, has_default = false;
	size_t i;
	json_t *w;

	json_array_foreach(json_object_get(col, "constraints"), i, w) {
		json_t *k = json_object_get(w, "Constraint");
		const char *t = str(k, "contype");

		if (!t)
			continue;
		if (!strcmp(t, "CONSTR_NOTNULL") || !strcmp(t, "CONSTR_PRIMARY"))
			not_null = true;
		if (!strcmp(t, "CONSTR_PRIMARY") || !strcmp(t, "CONSTR_UNIQUE"))
			add(c, "add-unique-without-index", table, "column '%s' %s", name,
			    t[7] == 'P' ? "PRIMARY KEY" : "UNIQUE");
		if (!strcmp(t, "CONSTR_DEFAULT")) {
			has_default = true;
			vol = vol ? vol : volatile_call(json_object_get(k, "raw_expr"));
		}
		if (!strcmp(t, "CONSTR_IDENTITY") || !strcmp(t, "CONSTR_GENERATED")) {
			has_default = true;
			vol = t[7] == 'I' ? "an identity" : "a stored generated expression";
		}
	}
	if (type && (!strcmp(type, "serial") || !strcmp(type, "bigserial") ||
		     !strcmp(type, "smallserial") || !strcmp(type, "serial4") ||
		     !strcmp(type, "serial8") || !strcmp(type, "serial2"))) {
		has_default = true;
		vol = type;
	}
	if (name) {
		char *full = dgm_xasprintf("%s.%s", table, name);

		remember(c, full);
		free(full);
	}
	if (vol)
		add(c, "add-column-volatile-default", table, "column '%s' with %s%s", name, vol,
		    strchr(vol, ' ') || strstr(vol, "serial") ? "" : "()");
	if (not_null && !has_default)
		add(c, "add-column-not-null-no-default", table, "column '%s'", name);
}

static void alter_type(lctx *c, const char *table, json_t *cmd)
{
	json_t *tn = json_object_get(json_object_get(json_object_get(cmd, "def"), "ColumnDef"),
				     "typeName");
	const char *type = last_name(json_object_get(tn, "names"));
	const char *col = str(cmd, "name");

	if (type && (!strcmp(type, "text") || !strcmp(type, "varchar"))) {
		add(c, "alter-column-type", table, "column '%s' to %s: no rewrite if it was a "
		    "varchar (widened, or made text), a rewrite from any other type", col, type);
		c->out->items[c->out->count - 1].severity = DGM_LINT_NOTICE;
		return;
	}
	add(c, "alter-column-type", table, "column '%s' to %s", col, type ? type : "?");
}

/* The column of a CHECK (col IS NOT NULL), else NULL. */
static const char *not_null_check_column(json_t *k)
{
	json_t *nt = json_object_get(json_object_get(k, "raw_expr"), "NullTest");
	json_t *cr = json_object_get(json_object_get(nt, "arg"), "ColumnRef");

	if (!cr || strcmp(str(nt, "nulltesttype") ? str(nt, "nulltesttype") : "", "IS_NOT_NULL"))
		return NULL;
	return last_name(json_object_get(cr, "fields"));
}

static void add_constraint(lctx *c, const char *table, json_t *k)
{
	const char *t = str(k, "contype"), *col;
	bool valid = !flag(k, "skip_validation");

	if (!t)
		return;
	if (!strcmp(t, "CONSTR_FOREIGN") && valid)
		add(c, "add-foreign-key-validated", table, "constraint '%s' references '%s'",
		    str(k, "conname") ? str(k, "conname") : "?",
		    str(json_object_get(k, "pktable"), "relname"));
	if ((!strcmp(t, "CONSTR_UNIQUE") || !strcmp(t, "CONSTR_PRIMARY")) && !str(k, "indexname"))
		add(c, "add-unique-without-index", table, "constraint '%s'",
		    str(k, "conname") ? str(k, "conname") : "?");
	if (strcmp(t, "CONSTR_CHECK"))
		return;
	if (valid)
		add(c, "add-check-validated", table, "constraint '%s'",
		    str(k, "conname") ? str(k, "conname") : "?");
	if ((col = not_null_check_column(k))) {
		check *ch;

		c->checks = dgm_xrealloc(c->checks, (c->nchecks + 1) * sizeof(*c->checks));
		ch = &c->checks[c->nchecks++];
		ch->table = dgm_xstrdup(table);
		ch->column = dgm_xstrdup(col);
		ch->name = dgm_xstrdup(str(k, "conname") ? str(k, "conname") : "");
		ch->validated = valid;
	}
}

static void validate_constraint(lctx *c, const char *table, const char *name)
{
	for (size_t i = 0; name && i < c->nchecks; i++)
		if (!strcmp(c->checks[i].table, table) && !strcmp(c->checks[i].name, name))
			c->checks[i].validated = true;
}

static void set_not_null(lctx *c, const char *table, const char *col)
{
	for (size_t i = 0; col && i < c->nchecks; i++)
		if (c->checks[i].validated && !strcmp(c->checks[i].table, table) &&
		    !strcmp(c->checks[i].column, col))
			return;
	add(c, "set-not-null", table, "column '%s'", col ? col : "?");
}

static void drop_column(lctx *c, const char *table, const char *col)
{
	char *full = dgm_xasprintf("%s.%s", table, col ? col : "");

	if (!created(c, full))
		add(c, "drop-column", table, "column '%s'", col ? col : "?");
	free(full);
}

static void alter_cmd(lctx *c, const char *table, json_t *cmd)
{
	const char *sub = str(cmd, "subtype");
	json_t *def = json_object_get(cmd, "def");

	if (!sub)
		return;
	if (!strcmp(sub, "AT_AddColumn"))
		add_column(c, table, json_object_get(def, "ColumnDef"));
	else if (!strcmp(sub, "AT_AlterColumnType"))
		alter_type(c, table, cmd);
	else if (!strcmp(sub, "AT_SetNotNull"))
		set_not_null(c, table, str(cmd, "name"));
	else if (!strcmp(sub, "AT_AddConstraint"))
		add_constraint(c, table, json_object_get(def, "Constraint"));
	else if (!strcmp(sub, "AT_ValidateConstraint"))
		validate_constraint(c, table, str(cmd, "name"));
	else if (!strcmp(sub, "AT_DropColumn"))
		drop_column(c, table, str(cmd, "name"));
}

static void alter_table(lctx *c, json_t *s)
{
	char *table = rel_name(json_object_get(s, "relation"));
	const char *objtype = str(s, "objtype");
	size_t i;
	json_t *cmd;

	/* a table created in this release is empty and unused: harmless */
	if (!table || created(c, table) || (objtype && strcmp(objtype, "OBJECT_TABLE")))
		goto out;
	json_array_foreach(json_object_get(s, "cmds"), i, cmd)
		alter_cmd(c, table, json_object_get(cmd, "AlterTableCmd"));
out:
	free(table);
}

static void create_index(lctx *c, json_t *s)
{
	char *table = rel_name(json_object_get(s, "relation"));
	const char *name = str(s, "idxname");

	if (flag(s, "concurrent") && c->in_tx)
		add(c, "concurrently-in-transaction", table, "CREATE INDEX CONCURRENTLY");
	else if (!flag(s, "concurrent") && !created(c, table))
		add(c, "add-index-non-concurrent", table, "index '%s'", name ? name : "?");
	remember(c, name);
	free(table);
}

static void drop(lctx *c, json_t *s)
{
	const char *type = str(s, "removeType");
	bool index = type && !strcmp(type, "OBJECT_INDEX"), conc = flag(s, "concurrent");
	size_t i;
	json_t *o;

	if (!type || (!index && strcmp(type, "OBJECT_TABLE")))
		return;
	json_array_foreach(json_object_get(s, "objects"), i, o) {
		char *name = names_join(json_object_get(json_object_get(o, "List"), "items"));

		if (index && conc && c->in_tx)
			add(c, "concurrently-in-transaction", NULL, "DROP INDEX CONCURRENTLY '%s'",
			    name);
		else if (index && !conc && !created(c, name))
			add(c, "drop-index-non-concurrent", NULL, "index '%s'", name);
		else if (!index && !created(c, name))
			add(c, "drop-table", name, NULL);
		free(name);
	}
}

static void rename_stmt(lctx *c, json_t *s)
{
	const char *type = str(s, "renameType");
	char *table = rel_name(json_object_get(s, "relation"));

	if (!type || !table || created(c, table))
		goto out;
	if (!strcmp(type, "OBJECT_COLUMN"))
		add(c, "rename-column", table, "column '%s' to '%s'", str(s, "subname"),
		    str(s, "newname"));
	else if (!strcmp(type, "OBJECT_TABLE"))
		add(c, "rename-table", table, "to '%s'", str(s, "newname"));
out:
	free(table);
}

/* Whether a list of DefElem options names opt. */
static bool has_option(json_t *list, const char *opt)
{
	size_t i;
	json_t *d;

	json_array_foreach(list, i, d) {
		const char *n = str(json_object_get(d, "DefElem"), "defname");

		if (n && !strcmp(n, opt))
			return true;
	}
	return false;
}

/* rule on each RangeVar of a list (wrapped as {"RangeVar": ...} or under
 * the key inner), unless the table is new. */
static void each_rel(lctx *c, json_t *list, const char *inner, const char *rule)
{
	size_t i;
	json_t *v;

	json_array_foreach(list, i, v) {
		json_t *rv = inner ? json_object_get(json_object_get(v, inner), "relation") :
				     json_object_get(v, "RangeVar");
		char *table = rel_name(rv);

		if (!created(c, table))
			add(c, rule, table, NULL);
		free(table);
	}
}

static void vacuum(lctx *c, json_t *s)
{
	if (!flag(s, "is_vacuumcmd") || !has_option(json_object_get(s, "options"), "full"))
		return;
	if (!json_array_size(json_object_get(s, "rels")))
		add(c, "vacuum-full", NULL, "every table of the database");
	each_rel(c, json_object_get(s, "rels"), "VacuumRelation", "vacuum-full");
}

static void cluster(lctx *c, json_t *s)
{
	char *table = rel_name(json_object_get(s, "relation"));

	if (!created(c, table))
		add(c, "cluster", table, table ? NULL : "every clustered table of the database");
	free(table);
}

static void reindex(lctx *c, json_t *s)
{
	char *rel = rel_name(json_object_get(s, "relation"));
	const char *name = rel ? rel : str(s, "name");

	if (has_option(json_object_get(s, "params"), "concurrently")) {
		if (c->in_tx)
			add(c, "concurrently-in-transaction", NULL, "REINDEX CONCURRENTLY");
	} else if (!created(c, name)) {
		bool table = str(s, "kind") && !strcmp(str(s, "kind"), "REINDEX_OBJECT_TABLE");

		add(c, "reindex-non-concurrent", table ? name : NULL, "'%s'", name ? name : "?");
	}
	free(rel);
}

static void dml(lctx *c, json_t *s, const char *rule)
{
	char *table = rel_name(json_object_get(s, "relation"));

	/* alembic's own bookkeeping, and new tables, are not the app's data */
	if (table && !json_object_get(s, "whereClause") && !created(c, table) &&
	    !strstr(table, "alembic_version"))
		add(c, rule, table, NULL);
	free(table);
}

static void transaction(lctx *c, json_t *s)
{
	const char *k = str(s, "kind");

	if (!k)
		return;
	if (!strcmp(k, "TRANS_STMT_BEGIN") || !strcmp(k, "TRANS_STMT_START"))
		c->in_tx = true;
	else if (!strcmp(k, "TRANS_STMT_COMMIT") || !strcmp(k, "TRANS_STMT_ROLLBACK"))
		c->in_tx = false;
}

static void statement(lctx *c, const char *kind, json_t *s)
{
	char *t;

	if (!strcmp(kind, "TransactionStmt"))
		transaction(c, s);
	else if (!strcmp(kind, "CreateStmt")) {
		remember(c, t = rel_name(json_object_get(s, "relation")));
		free(t);
	} else if (!strcmp(kind, "CreateTableAsStmt")) {
		t = rel_name(json_object_get(json_object_get(s, "into"), "rel"));
		remember(c, t);
		free(t);
	} else if (!strcmp(kind, "IndexStmt"))
		create_index(c, s);
	else if (!strcmp(kind, "AlterTableStmt"))
		alter_table(c, s);
	else if (!strcmp(kind, "DropStmt"))
		drop(c, s);
	else if (!strcmp(kind, "RenameStmt"))
		rename_stmt(c, s);
	else if (!strcmp(kind, "VacuumStmt"))
		vacuum(c, s);
	else if (!strcmp(kind, "ClusterStmt"))
		cluster(c, s);
	else if (!strcmp(kind, "ReindexStmt"))
		reindex(c, s);
	else if (!strcmp(kind, "LockStmt"))
		each_rel(c, json_object_get(s, "relations"), NULL, "lock-table");
	else if (!strcmp(kind, "UpdateStmt"))
		dml(c, s, "update-whole-table");
	else if (!strcmp(kind, "DeleteStmt"))
		dml(c, s, "delete-whole-table");
	else if (!strcmp(kind, "AlterEnumStmt") && !str(s, "oldVal") && c->in_tx) {
		t = names_join(json_object_get(s, "typeName"));
		add(c, "enum-add-value-in-transaction", NULL, "type '%s' value '%s'", t,
		    str(s, "newVal"));
		free(t);
	} else if (!strcmp(kind, "TruncateStmt") && str(s, "behavior") &&
		   !strcmp(str(s, "behavior"), "DROP_CASCADE"))
		each_rel(c, json_object_get(s, "relations"), NULL, "truncate-cascade");
}

/* ---- entry points -------------------------------------------------------- */

static void ctx_free(lctx *c)
{
	for (size_t i = 0; i < c->nmarks; i++)
		free(c->marks[i].rev);
	for (size_t i = 0; i < c->nchecks; i++) {
		free(c->checks[i].table);
		free(c->checks[i].column);
		free(c->checks[i].name);
	}
	free(c->marks);
	free(c->checks);
	free(c->slots);
	free(c->stmt);
}

/* The line of byte offset pos (1-based). */
static int line_of(const char *sql, size_t pos)
{
	int line = 1;

	for (size_t i = 0; i < pos && sql[i]; i++)
		line += sql[i] == '\n';
	return line;
}

/* The end of the JSON object or array at p, or NULL. The tree is
 * libpg_query's machine-written JSON: brackets outside strings, and
 * escapes inside them, are all it takes to step over a value unread. */
static const char *json_skip(const char *p)
{
	int depth = 0;

	do {
		if (*p == '\0')
			return NULL;
		if (*p == '"') {
			for (p++; *p && *p != '"'; p++)
				if (*p == '\\' && p[1])
					p++;
			if (!*p)
				return NULL;
		} else if (*p == '{' || *p == '[')
			depth++;
		else if (*p == '}' || *p == ']')
			depth--;
		p++;
	} while (depth > 0);
	return p;
}

/* The number after "key": in [p, end), or 0 (libpg_query leaves 0 out). */
static long long tail_number(const char *p, const char *end, const char *key)
{
	const char *k = memmem(p, (size_t)(end - p), key, strlen(key));

	return k ? strtoll(k + strlen(key), NULL, 10) : 0;
}

/* The end of the JSON value at p: an object, array, string or scalar. */
static const char *value_skip(const char *p)
{
	if (*p == '{' || *p == '[')
		return json_skip(p);
	if (*p == '"') {
		for (p++; *p && *p != '"'; p++)
			if (*p == '\\' && p[1])
				p++;
		return *p ? p + 1 : NULL;
	}
	while (*p && *p != ',' && *p != '}' && *p != ']')
		p++;
	return *p ? p : NULL;
}

/* The members of the object at p that the rules read: those named in
 * load, read; those in present, only noted as present (true); the rest,
 * stepped over unread. */
static json_t *shallow(const char *p, const char *const *load, const char *const *present)
{
	json_t *o = json_object();
	json_error_t jerr;

	for (p++; *p == '"';) {
		const char *k = p + 1, *ke = strchr(k, '"'), *v = ke ? ke + 2 : NULL, *ve;
		char key[64];

		if (!ke || ke[1] != ':' || !(ve = value_skip(v)) || (size_t)(ke - k) >= sizeof(key))
			goto bad;
		memcpy(key, k, (size_t)(ke - k));
		key[ke - k] = '\0';
		for (int i = 0; load[i]; i++)
			if (!strcmp(key, load[i]) &&
			    json_object_set_new(o, key, json_loadb(v, (size_t)(ve - v), JSON_DECODE_ANY,
								   &jerr)))
				goto bad;
		for (int i = 0; present[i]; i++)
			if (!strcmp(key, present[i]))
				json_object_set_new(o, key, json_true());
		p = *ve == ',' ? ve + 1 : ve;
	}
	if (*p == '}')
		return o;
bad:
	json_decref(o);
	return NULL;
}

/* Statement kinds the rules read in part: CREATE TABLE and UPDATE/DELETE
 * are the bulk of most releases' trees (columns, subqueries), and of the
 * time it takes to read them, yet only their relation matters - and
 * whether there is a WHERE. Kinds no rule reads are not read at all. */
static const struct {
	const char *kind;
	const char *load[4], *mark[2];
} partial[] = {
	{ "CreateStmt", { "relation", NULL }, { NULL } },
	{ "IndexStmt", { "relation", "idxname", "concurrent" }, { NULL } },
	{ "UpdateStmt", { "relation", NULL }, { "whereClause", NULL } },
	{ "DeleteStmt", { "relation", NULL }, { "whereClause", NULL } },
	{ "InsertStmt", { NULL }, { NULL } },
	{ "SelectStmt", { NULL }, { NULL } },
	{ "CommentStmt", { NULL }, { NULL } },
	{ "CreateFunctionStmt", { NULL }, { NULL } },
	{ "ViewStmt", { NULL }, { NULL } },
	{ "GrantStmt", { NULL }, { NULL } },
};

/* One statement's node {"Kind":{...}} at [p, end). */
static int node(lctx *c, const char *p, const char *end)
{
	const char *ke = p[0] == '{' && p[1] == '"' ? strchr(p + 2, '"') : NULL;
	json_error_t jerr;
	json_t *n = NULL;
	char kind[64];

	if (!ke || (size_t)(ke - p - 2) >= sizeof(kind) || strncmp(ke, "\":{", 3))
		return -1;
	memcpy(kind, p + 2, (size_t)(ke - p - 2));
	kind[ke - p - 2] = '\0';
	for (size_t i = 0; i < sizeof(partial) / sizeof(partial[0]); i++) {
		if (strcmp(kind, partial[i].kind))
			continue;
		if (!partial[i].load[0] && !partial[i].mark[0])
			return 0;
		if (!(n = shallow(ke + 2, partial[i].load, partial[i].mark)))
			return -1;
		break;
	}
	if (!n && !(n = json_loadb(ke + 2, (size_t)(end - ke - 3), 0, &jerr)))
		return -1;
	statement(c, kind, n);
	json_decref(n);
	return 0;
}

/* Each element {"stmt":NODE,"stmt_location":N,"stmt_len":M} of the
 * tree's "stmts" array, in order. */
static int walk(lctx *c, const char *tree, dgm_error *err)
{
	static const char stmts[] = "\"stmts\":[", stmt[] = "{\"stmt\":";
	const char *p = strstr(tree, stmts), *end, *ne;
	size_t len = strlen(c->sql);

	for (p = p ? p + sizeof(stmts) - 1 : ""; *p == '{'; p = *end == ',' ? end + 1 : end) {
		long long loc, n;

		/* after the node, only numbers: the element ends at the next '}' */
		if (strncmp(p, stmt, sizeof(stmt) - 1) || !(ne = json_skip(p + sizeof(stmt) - 1)) ||
		    !(end = strchr(ne, '}')))
			goto bad;
		end++;
		loc = tail_number(ne, end, "\"stmt_location\":");
		n = tail_number(ne, end, "\"stmt_len\":");
		if (loc < 0 || (size_t)loc > len || n < 0 || (size_t)(loc + n) > len)
			goto bad;
		locate(c, (size_t)loc, n ? (size_t)n : len - (size_t)loc);
		c->out->statements++;
		if (node(c, p + sizeof(stmt) - 1, ne))
			goto bad;
	}
	return 0;
bad:
	return dgm_error_set(err, DGM_E_RUN, "cannot read the parse tree near statement %zu",
			     c->out->statements + 1);
}

int dgm_lint_sql(dgm_lint_result *out, const char *sql, const dgm_lint_result *upgrade,
		 dgm_error *err)
{
	PgQueryParseResult pr = pg_query_parse(sql);
	lctx c = { .sql = sql, .out = out, .line = 1 };
	int ret = -1;

	if (pr.error) {
		dgm_error_set(err, DGM_E_RUN, "the migration SQL does not parse at line %d: %s",
			      line_of(sql, pr.error->cursorpos > 0 ? (size_t)pr.error->cursorpos - 1 : 0),
			      pr.error->message);
		dgm_error_hint(err, "this is PostgreSQL 15's parser; run the SQL through psql to "
			       "see the statement");
		goto out;
	}
	for (size_t i = 0; upgrade && i < upgrade->ncreated; i++)
		remember(&c, upgrade->created[i]);
	find_marks(&c);
	ret = walk(&c, pr.parse_tree, err);
out:
	/* the result keeps what was created, for the downgrade's lint */
	out->created = c.created;
	out->ncreated = c.ncreated;
	ctx_free(&c);
	pg_query_free_parse_result(pr);
	return ret;
}

void dgm_lint_result_free(dgm_lint_result *r)
{
	for (size_t i = 0; i < r->count; i++) {
		free(r->items[i].revision);
		free(r->items[i].stmt);
		free(r->items[i].table);
		free(r->items[i].detail);
		free(r->items[i].suppressed);
	}
	for (size_t i = 0; i < r->ncreated; i++)
		free(r->created[i]);
	free(r->items);
	free(r->created);
	memset(r, 0, sizeof(*r));
}
