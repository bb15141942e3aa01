/*
 * schema.c - the plan's schema as tables of fields, and the walk that
 * checks the YAML tree against them and fills dgm_plan.
 *
 * Each mapping of the plan is a NULL-terminated table of fields; a
 * field says its key, its type and where its value goes (an offset from
 * a base: the plan itself, or one hook). Keys are taken in file order,
 * so the first error reported is the first one in the file; missing
 * required keys are reported once the mapping has been read.
 */
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dgm/lint.h"
#include "dgm/buf.h"
#include "internal.h"

typedef struct pctx {
	dgm_plan *plan;
	dgm_error *err;
} pctx;

typedef enum fkind {
	F_SECTION,   /* a mapping: .sub */
	F_STR,       /* non-empty string */
	F_PATH,      /* path, made absolute against the plan's folder */
	F_INT,       /* .min .. .max */
	F_BOOL,
	F_DURATION,  /* long milliseconds */
	F_SIZE,      /* long long bytes */
	F_ENUM,      /* .choices; stored as the int index */
	F_LIST,      /* dgm_strlist; items checked by .item */
	F_CUSTOM     /* .fn */
} fkind;

/* What a field's value looks like, for the hint of a wrong kind. */
typedef enum shape {
	SH_SCALAR,
	SH_LIST,
	SH_MAP
} shape;

typedef enum ikind {
	I_STR,       /* any string (argv items) */
	I_PATH,      /* made absolute */
	I_VAR,       /* an environment variable name */
	I_IDENT      /* a table or index name, optionally schema-qualified */
} ikind;

enum {
	REQUIRED = 1,
	NONEMPTY = 2,  /* a list that must have an item when given */
	MAY_BE_EMPTY = 4 /* a string where "" means something (libpq's defaults) */
};

struct field;
typedef int (*custom_fn)(pctx *c, const struct field *f, const dgm_ynode *v, const char *key,
			 void *dst);

typedef struct field {
	const char *key;
	fkind kind;
	unsigned flags;
	size_t off;
	long min, max;                 /* F_INT */
	const char *const *choices;    /* F_ENUM, NULL-terminated */
	const struct field *sub;       /* F_SECTION */
	ikind item;                    /* F_LIST */
	custom_fn fn;                  /* F_CUSTOM */
	shape custom_shape;            /* F_CUSTOM */
	const char *what;              /* F_CUSTOM, F_LIST: "a list of table names" */
	const char *example;           /* a value for hints */
} field;

#define OFF(member) offsetof(dgm_plan, member)
#define HOOK_OFF(member) offsetof(dgm_plan_hook, member)
#define NO_MAX 0

/* ---- messages ---------------------------------------------------------- */

static int fail(pctx *c, const dgm_ynode *n, const char *fmt, ...) DGM_PRINTF(3, 4);

static int fail(pctx *c, const dgm_ynode *n, const char *fmt, ...)
{
	char msg[DGM_ERROR_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return dgm_error_set(c->err, DGM_E_PLAN, "%s:%d:%d: %s", c->plan->path, n->line,
			     n->column, msg);
}

static int hint(pctx *c, const char *fmt, ...) DGM_PRINTF(2, 3);

static int hint(pctx *c, const char *fmt, ...)
{
	char h[DGM_ERROR_HINT_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(h, sizeof(h), fmt, ap);
	va_end(ap);
	dgm_error_hint(c->err, "%s", h);
	return -1;
}

/* What a node is, for "must be X, got Y": the text as written (never
 * an expanded value, which may be a secret), on one line, shortened at
 * a character boundary. */
static const char *got(const dgm_ynode *n, char *buf, size_t cap)
{
	dgm_buf b = DGM_BUF_INIT;
	size_t i;

	if (n->kind == DGM_Y_MAP)
		return "a mapping";
	if (n->kind == DGM_Y_SEQ)
		return "a list";
	dgm_buf_putc(&b, '\'');
	for (i = 0; n->text[i] && b.len < 58; i++) {
		unsigned char ch = (unsigned char)n->text[i];

		if (ch == '\n')
			dgm_buf_puts(&b, "\\n");
		else if (ch < 0x20 || ch == 0x7f)
			dgm_buf_putc(&b, ' ');
		else
			dgm_buf_putc(&b, (char)ch);
	}
	/* Do not end in the middle of a UTF-8 sequence. */
	while (n->text[i] && ((unsigned char)n->text[i] & 0xc0) == 0x80 && i > 0) {
		i--;
		b.len--;
	}
	dgm_buf_puts(&b, n->text[i] ? "...'" : "'");
	if (strstr(n->text, "${"))
		dgm_buf_puts(&b, " (expanded value not shown)");
	snprintf(buf, cap, "%s", dgm_buf_cstr(&b));
	dgm_buf_free(&b);
	return buf;
}

/* "in 'release'", or "at the top level" for the root. */
static const char *in_where(const char *key, char *buf, size_t cap)
{
	if (!*key)
		return "at the top level";
	snprintf(buf, cap, "in '%s'", key);
	return buf;
}

static const char *describe(const field *f, char *buf, size_t cap)
{
	switch (f->kind) {
	case F_SECTION: return "a mapping";
	case F_STR: return "a string";
	case F_PATH: return "a path";
	case F_BOOL: return "true or false";
	case F_DURATION: return "a duration such as 500ms, 30s, 5m, 2h or 1h30m";
	case F_SIZE: return "a size such as 4096, 100KB, 512MiB or 1GiB";
	case F_INT:
		if (f->max == NO_MAX)
			snprintf(buf, cap, "an integer of at least %ld", f->min);
		else
			snprintf(buf, cap, "an integer from %ld to %ld", f->min, f->max);
		return buf;
	case F_ENUM: {
		dgm_buf b = DGM_BUF_INIT;

		dgm_buf_puts(&b, "one of ");
		for (size_t i = 0; f->choices[i]; i++)
			dgm_buf_printf(&b, "%s'%s'", i ? ", " : "", f->choices[i]);
		snprintf(buf, cap, "%s", dgm_buf_cstr(&b));
		dgm_buf_free(&b);
		return buf;
	}
	default:
		return f->what;
	}
}

static shape shape_of(const field *f)
{
	switch (f->kind) {
	case F_SECTION: return SH_MAP;
	case F_LIST: return SH_LIST;
	case F_CUSTOM: return f->custom_shape;
	default: return SH_SCALAR;
	}
}

/* The fix for a value of the wrong kind or out of range; callers with
 * a better one replace it. */
static void wrong_hint(pctx *c, const field *f, const dgm_ynode *v, const char *key)
{
	const char *last = strrchr(key, '.') ? strrchr(key, '.') + 1 : key;
	shape want = shape_of(f);

	if (want == SH_MAP)
		hint(c, "write 'key: value' lines indented below '%s'", last);
	else if (want == SH_LIST && v->kind != DGM_Y_SEQ)
		hint(c, "write the items as [a, b] or as '- item' lines");
	else if (want == SH_SCALAR && v->kind != DGM_Y_SCALAR)
		hint(c, "write a single value after '%s:'", last);
	else if (f->kind == F_INT && f->max == NO_MAX)
		hint(c, "write a whole number of at least %ld", f->min);
	else if (f->kind == F_INT)
		hint(c, "write a whole number from %ld to %ld", f->min, f->max);
	else if (f->kind == F_ENUM)
		hint(c, "write one of the values exactly as listed");
}

static int wrong(pctx *c, const field *f, const dgm_ynode *v, const char *key)
{
	char dbuf[256], gbuf[160];

	fail(c, v, "'%s' must be %s, got %s", key, describe(f, dbuf, sizeof(dbuf)),
	     got(v, gbuf, sizeof(gbuf)));
	wrong_hint(c, f, v, key);
	return -1;
}

/* ---- scalars ----------------------------------------------------------- */

static void mark(pctx *c, const char *key, const dgm_ynode *v)
{
	dgm_plan *p = c->plan;
	dgm_plan_mark *m;

	p->marks = dgm_xrealloc(p->marks, (p->nmarks + 1) * sizeof(*p->marks));
	m = &p->marks[p->nmarks++];
	m->key = dgm_xstrdup(key);
	m->line = v->line;
	m->column = v->column;
}

/* The expanded text of scalar v (malloc'd). */
static int expand(pctx *c, const dgm_ynode *v, const char *key, char **out)
{
	char where[512];

	snprintf(where, sizeof(where), "%s:%d:%d", c->plan->path, v->line, v->column);
	return dgm_plan_expand(out, v->text, where, key, c->err);
}

static int null_value(pctx *c, const field *f, const dgm_ynode *v, const char *key)
{
	fail(c, v, "'%s' has no value", key);
	if (f && (f->flags & REQUIRED))
		return hint(c, "give it a value%s%s", f->example ? ", e.g. " : "",
			    f->example ? f->example : "");
	return hint(c, "give it a value, or remove the key to use the default");
}

/* A non-empty string. Lists and mappings are the caller's `wrong`. */
static int string_value(pctx *c, const field *f, const dgm_ynode *v, const char *key, char **out)
{
	if (v->kind != DGM_Y_SCALAR)
		return wrong(c, f, v, key);
	if (dgm_plan_ynode_is_null(v))
		return null_value(c, f, v, key);
	if (expand(c, v, key, out))
		return -1;
	/* "" written as such may mean something; a variable that expands to
	 * "" is a mistake (an unset DATABASE_URL must not fall back to PG*) */
	if (!**out && !(f && (f->flags & MAY_BE_EMPTY) && !strstr(v->text, "${"))) {
		free(*out);
		*out = NULL;
		fail(c, v, "'%s' must not be empty", key);
		if (strstr(v->text, "${"))
			return hint(c, "a variable it uses is set to an empty string");
		return hint(c, "give it a value%s%s", f && f->example ? ", e.g. " : "",
			    f && f->example ? f->example : "");
	}
	return 0;
}

static int path_value(pctx *c, const field *f, const dgm_ynode *v, const char *key, char **out)
{
	char *s;

	if (string_value(c, f, v, key, &s))
		return -1;
	if (s[0] == '~') {
		free(s);
		fail(c, v, "'%s' starts with '~', which is not expanded", key);
		return hint(c, "write ${HOME}/... or an absolute path");
	}
	*out = dgm_plan_path_join(c->plan->dir, s);
	free(s);
	return 0;
}

static int int_value(pctx *c, const field *f, const dgm_ynode *v, const char *key, int *out)
{
	char *s, *end;
	long n;
	int rc = 0;

	if (string_value(c, f, v, key, &s))
		return -1;
	n = strtol(s, &end, 10);
	if (!((s[0] >= '0' && s[0] <= '9') || s[0] == '-') || *end || n < f->min ||
	    n > (f->max == NO_MAX ? INT_MAX : f->max))
		rc = wrong(c, f, v, key);
	else
		*out = (int)n;
	free(s);
	return rc;
}

static int bool_value(pctx *c, const field *f, const dgm_ynode *v, const char *key, bool *out)
{
	static const char *const yes[] = { "true", "True", "TRUE", NULL };
	static const char *const no[] = { "false", "False", "FALSE", NULL };
	char *s;
	int rc = -1;

	if (string_value(c, f, v, key, &s))
		return -1;
	for (size_t i = 0; yes[i]; i++) {
		if (!strcmp(s, yes[i]) || !strcmp(s, no[i])) {
			*out = !strcmp(s, yes[i]);
			rc = 0;
		}
	}
	free(s);
	if (rc) {
		wrong(c, f, v, key);
		return hint(c, "write true or false (yes, no, on and off are not accepted)");
	}
	return 0;
}

static int duration_value(pctx *c, const field *f, const dgm_ynode *v, const char *key,
			  long *out)
{
	char *s;
	int rc;

	if (string_value(c, f, v, key, &s))
		return -1;
	rc = dgm_parse_duration(s, out);
	free(s);
	if (rc) {
		wrong(c, f, v, key);
		return hint(c, "write a whole number and a unit (ms, s, m or h), largest unit "
			    "first; a number without a unit is allowed only for 0");
	}
	return 0;
}

static int size_value(pctx *c, const field *f, const dgm_ynode *v, const char *key,
		      long long *out)
{
	char *s;
	int rc;

	if (string_value(c, f, v, key, &s))
		return -1;
	rc = dgm_parse_size(s, out);
	free(s);
	if (rc) {
		wrong(c, f, v, key);
		return hint(c, "write a whole number of bytes, optionally with a unit: k or KiB, "
			    "M or MiB, G or GiB, T or TiB (powers of 1024), KB, MB, GB or TB "
			    "(powers of 1000)");
	}
	return 0;
}

static int enum_value(pctx *c, const field *f, const dgm_ynode *v, const char *key, int *out)
{
	char *s;
	int rc = -1;

	if (string_value(c, f, v, key, &s))
		return -1;
	for (int i = 0; f->choices[i]; i++) {
		if (!strcmp(s, f->choices[i])) {
			*out = i;
			rc = 0;
		}
	}
	free(s);
	return rc ? wrong(c, f, v, key) : 0;
}

/* ---- lists ------------------------------------------------------------- */

/* "analytics.predictive_models" or "predictive_models". */
static bool is_ident(const char *s)
{
	const char *dot = strchr(s, '.');

	if (!dot)
		return dgm_plan_is_var_name(s, strlen(s)) && strlen(s) <= 63;
	return dgm_plan_is_var_name(s, (size_t)(dot - s)) && dot - s <= 63 &&
	       dgm_plan_is_var_name(dot + 1, strlen(dot + 1)) && strlen(dot + 1) <= 63;
}

static int bad_item(pctx *c, const field *f, const dgm_ynode *v, const char *key, const char *s)
{
	char gbuf[160];

	if (f->item == I_VAR) {
		fail(c, v, "'%s' must be a variable name, got %s", key, got(v, gbuf, sizeof(gbuf)));
		if (s[0] == '$')
			return hint(c, "write the name alone, without '$' or '${}'");
		return hint(c, "a name is letters, digits and '_', not starting with a digit");
	}
	fail(c, v, "'%s' must be a name such as %s or myschema.%s, got %s", key, f->example,
	     f->example, got(v, gbuf, sizeof(gbuf)));
	return hint(c, "write an unquoted PostgreSQL identifier: letters, digits and '_'");
}

static int check_item(pctx *c, const field *f, const dgm_ynode *v, const char *key,
		      const char *s)
{
	if (f->item == I_STR)
		return 0;
	if (!*s) {
		fail(c, v, "'%s' must not be empty", key);
		return hint(c, "remove the empty item");
	}
	if (f->item == I_PATH && s[0] == '~') {
		fail(c, v, "'%s' starts with '~', which is not expanded", key);
		return hint(c, "write ${HOME}/... or an absolute path");
	}
	if ((f->item == I_VAR && !dgm_plan_is_var_name(s, strlen(s))) ||
	    (f->item == I_IDENT && !is_ident(s)))
		return bad_item(c, f, v, key, s);
	return 0;
}

static int list_item(pctx *c, const field *f, const dgm_ynode *v, const char *key, char **out)
{
	char *s;

	if (v->kind != DGM_Y_SCALAR) {
		char gbuf[160];

		fail(c, v, "'%s' must be a string, got %s", key, got(v, gbuf, sizeof(gbuf)));
		return hint(c, "write each item as a single value");
	}
	if (dgm_plan_ynode_is_null(v))
		return null_value(c, NULL, v, key);
	if (expand(c, v, key, &s))
		return -1;
	if (check_item(c, f, v, key, s)) {
		free(s);
		return -1;
	}
	if (f->item == I_PATH) {
		*out = dgm_plan_path_join(c->plan->dir, s);
		free(s);
	} else {
		*out = s;
	}
	return 0;
}

/* A list of strings. The caller has checked v is a sequence. */
static int strlist_value(pctx *c, const field *f, const dgm_ynode *v, const char *key,
			 dgm_strlist *out)
{
	dgm_strlist_free(out);
	out->items = dgm_xcalloc(v->n + 1, sizeof(*out->items));
	for (size_t i = 0; i < v->n; i++) {
		char ikey[256];

		snprintf(ikey, sizeof(ikey), "%s[%zu]", key, i);
		mark(c, ikey, v->kids[i]);
		if (list_item(c, f, v->kids[i], ikey, &out->items[i]))
			return -1;
		out->count = i + 1;
	}
	return 0;
}

static int list_value(pctx *c, const field *f, const dgm_ynode *v, const char *key,
		      dgm_strlist *out)
{
	if (v->kind == DGM_Y_SCALAR) {
		wrong(c, f, v, key);
		return hint(c, "write it as a list, e.g. [%s]", f->example);
	}
	if (v->kind != DGM_Y_SEQ)
		return wrong(c, f, v, key);
	if (v->n == 0 && (f->flags & NONEMPTY)) {
		fail(c, v, "'%s' must not be empty", key);
		return hint(c, "list at least one, e.g. [%s], or remove the key", f->example);
	}
	return strlist_value(c, f, v, key, out);
}

/* ---- mappings ---------------------------------------------------------- */

static int walk_map(pctx *c, const dgm_ynode *map, const field *spec, const char *key,
		    void *base);

static const field *find_field(const field *spec, const char *key)
{
	for (const field *f = spec; f->key; f++)
		if (!strcmp(f->key, key))
			return f;
	return NULL;
}

/* "release.tag: v1.6" written at the top level: keys nest, they do
 * not take dots. */
static int dotted_key(pctx *c, const dgm_ynode *k, const field *spec, const char *key)
{
	const char *dot = strchr(k->text, '.');
	char wbuf[300];

	for (const field *f = spec; dot && f->key; f++) {
		if (f->kind != F_SECTION || strlen(f->key) != (size_t)(dot - k->text) ||
		    strncmp(f->key, k->text, (size_t)(dot - k->text)))
			continue;
		fail(c, k, "unknown key '%s' %s; keys do not contain dots", k->text,
		     in_where(key, wbuf, sizeof(wbuf)));
		return hint(c, "write '%s:' and below it, indented, '%s: ...'", f->key, dot + 1);
	}
	return 0;
}

static int unknown_key(pctx *c, const dgm_ynode *k, const field *spec, const char *key)
{
	if (dotted_key(c, k, spec, key))
		return -1;
	const char *names[32];
	const char *best;
	char wbuf[300];
	dgm_buf list = DGM_BUF_INIT;
	size_t n = 0;

	for (const field *f = spec; f->key && n < 31; f++)
		names[n++] = f->key;
	names[n] = NULL;
	best = dgm_plan_suggest(k->text, names);
	if (best) {
		fail(c, k, "unknown key '%s' %s; did you mean '%s'?", k->text,
		     in_where(key, wbuf, sizeof(wbuf)), best);
		return hint(c, "rename '%s' to '%s'", k->text, best);
	}
	for (size_t i = 0; i < n; i++)
		dgm_buf_printf(&list, "%s'%s'", i ? ", " : "", names[i]);
	fail(c, k, "unknown key '%s' %s; valid keys are %s", k->text,
	     in_where(key, wbuf, sizeof(wbuf)), dgm_buf_cstr(&list));
	dgm_buf_free(&list);
	return hint(c, "remove '%s' or rename it to one of the valid keys", k->text);
}

static int duplicate_key(pctx *c, const dgm_ynode *map, size_t i, const char *key)
{
	const dgm_ynode *k = map->kids[i];
	char wbuf[300];

	for (size_t j = 0; j < i; j += 2) {
		if (strcmp(map->kids[j]->text, k->text))
			continue;
		fail(c, k, "duplicate key '%s' %s (first given at line %d)", k->text,
		     in_where(key, wbuf, sizeof(wbuf)), map->kids[j]->line);
		return hint(c, "keep one of the two");
	}
	return 0;
}

static int missing_key(pctx *c, const dgm_ynode *map, const field *f, const char *key)
{
	char wbuf[300];

	fail(c, map, "missing required key '%s' %s", f->key, in_where(key, wbuf, sizeof(wbuf)));
	if (!*key)
		return hint(c, "add '%s:' at the top level; plans/example.yaml shows every key",
			    f->key);
	return hint(c, "add '%s: %s' under '%s'", f->key, f->example ? f->example : "...", key);
}

/* One key's value: dispatch on the field's kind. */
static int value(pctx *c, const field *f, const dgm_ynode *v, const char *key, void *base)
{
	void *dst = (char *)base + f->off;

	mark(c, key, v);
	if (dgm_plan_ynode_is_null(v))
		return null_value(c, f, v, key);
	switch (f->kind) {
	case F_SECTION:
		if (v->kind != DGM_Y_MAP)
			return wrong(c, f, v, key);
		return walk_map(c, v, f->sub, key, base);
	case F_STR:
		free(*(char **)dst);
		*(char **)dst = NULL;
		return string_value(c, f, v, key, dst);
	case F_PATH:
		free(*(char **)dst);
		*(char **)dst = NULL;
		return path_value(c, f, v, key, dst);
	case F_INT: return int_value(c, f, v, key, dst);
	case F_BOOL: return bool_value(c, f, v, key, dst);
	case F_DURATION: return duration_value(c, f, v, key, dst);
	case F_SIZE: return size_value(c, f, v, key, dst);
	case F_ENUM: return enum_value(c, f, v, key, dst);
	case F_LIST: return list_value(c, f, v, key, dst);
	case F_CUSTOM: return f->fn(c, f, v, key, dst);
	}
	return -1;
}

static int walk_map(pctx *c, const dgm_ynode *map, const field *spec, const char *key,
		    void *base)
{
	for (size_t i = 0; i < map->n; i += 2) {
		const dgm_ynode *k = map->kids[i];
		const field *f = find_field(spec, k->text);
		char sub[256];

		if (!f)
			return unknown_key(c, k, spec, key);
		if (duplicate_key(c, map, i, key))
			return -1;
		snprintf(sub, sizeof(sub), "%s%s%s", key, *key ? "." : "", k->text);
		if (value(c, f, map->kids[i + 1], sub, base))
			return -1;
	}
	for (const field *f = spec; f->key; f++) {
		bool found = false;

		for (size_t i = 0; i < map->n && !found; i += 2)
			found = !strcmp(map->kids[i]->text, f->key);
		if (!found && (f->flags & REQUIRED))
			return missing_key(c, map, f, key);
	}
	return 0;
}

/* ---- custom fields ----------------------------------------------------- */

static int version_value(pctx *c, const field *f, const dgm_ynode *v, const char *key, void *dst)
{
	char *s, gbuf[160];
	int ok;

	if (v->kind != DGM_Y_SCALAR)
		return wrong(c, f, v, key);
	if (expand(c, v, key, &s))
		return -1;
	ok = !strcmp(s, "1");
	free(s);
	if (ok) {
		*(int *)dst = 1;
		return 0;
	}
	fail(c, v, "'version' must be 1, got %s", got(v, gbuf, sizeof(gbuf)));
	return hint(c, "this dgmigrate reads version 1 of the plan format");
}

/* An argv: a non-empty list whose first item (the program) is not "". */
static int argv_value(pctx *c, const field *f, const dgm_ynode *v, const char *key,
		      dgm_strlist *l)
{
	if (v->n == 0) {
		fail(c, v, "'%s' must not be empty", key);
		return hint(c, "write the command as a list, e.g. %s", f->example);
	}
	if (strlist_value(c, f, v, key, l))
		return -1;
	if (!*l->items[0]) {
		fail(c, v->kids[0], "'%s[0]' must not be empty", key);
		return hint(c, "the first item is the program to run");
	}
	return 0;
}

/* A string or a list of strings, no shell: a string is one program. */
static int command_value(pctx *c, const field *f, const dgm_ynode *v, const char *key,
			 void *dst)
{
	dgm_strlist *l = dst;
	char *s;

	if (v->kind == DGM_Y_MAP)
		return wrong(c, f, v, key);
	if (v->kind == DGM_Y_SEQ)
		return argv_value(c, f, v, key, l);
	if (string_value(c, f, v, key, &s))
		return -1;
	if (strpbrk(s, " \t")) {
		free(s);
		char gbuf[160];

		fail(c, v, "'%s' must be one program name or a list, got %s", key,
		     got(v, gbuf, sizeof(gbuf)));
		return hint(c, "commands run without a shell: to pass arguments, write a list such "
			    "as [python3, -m, alembic]");
	}
	dgm_strlist_free(l);
	l->items = dgm_xcalloc(2, sizeof(*l->items));
	l->items[0] = s;
	l->count = 1;
	return 0;
}

/* The hint for `run: "./bin/maintenance on"`: the same words as a list. */
static int run_is_string(pctx *c, const dgm_ynode *v, const char *key)
{
	dgm_buf h = DGM_BUF_INIT;
	const char *p = v->text;

	fail(c, v, "'%s' must be a list of strings (argv), not a string: hooks run without a "
	     "shell", key);
	dgm_buf_puts(&h, "write run: [");
	for (int i = 0; *(p += strspn(p, " \t")); i++) {
		size_t len = strcspn(p, " \t");

		dgm_buf_puts(&h, i ? ", \"" : "\"");
		for (size_t j = 0; j < len; j++) {
			if (p[j] == '"' || p[j] == '\\')
				dgm_buf_putc(&h, '\\');
			dgm_buf_putc(&h, p[j]);
		}
		dgm_buf_putc(&h, '"');
		p += len;
	}
	dgm_buf_putc(&h, ']');
	hint(c, "%s", dgm_buf_cstr(&h));
	dgm_buf_free(&h);
	return -1;
}

static int run_value(pctx *c, const field *f, const dgm_ynode *v, const char *key, void *dst)
{
	dgm_strlist *l = dst;

	if (v->kind == DGM_Y_SCALAR)
		return run_is_string(c, v, key);
	if (v->kind != DGM_Y_SEQ)
		return wrong(c, f, v, key);
	return argv_value(c, f, v, key, l);
}

static const field hook_fields[] = {
	{ .key = "name", .kind = F_STR, .flags = REQUIRED, .off = HOOK_OFF(name),
	  .example = "maintenance-on" },
	{ .key = "run", .kind = F_CUSTOM, .flags = REQUIRED, .off = HOOK_OFF(argv),
	  .fn = run_value, .custom_shape = SH_LIST, .item = I_STR, .what = "a list of strings (argv)",
	  .example = "[./bin/maintenance, \"on\"]" },
	{ .key = "timeout", .kind = F_DURATION, .off = HOOK_OFF(timeout_ms), .example = "30s" },
	{ NULL }
};

static int hooks_value(pctx *c, const field *f, const dgm_ynode *v, const char *key, void *dst)
{
	dgm_plan_hooks *h = dst;

	if (v->kind != DGM_Y_SEQ)
		return wrong(c, f, v, key);
	h->items = dgm_xcalloc(v->n ? v->n : 1, sizeof(*h->items));
	for (size_t i = 0; i < v->n; i++) {
		const dgm_ynode *item = v->kids[i];
		dgm_plan_hook *hk = &h->items[h->count++];
		char ikey[256];

		snprintf(ikey, sizeof(ikey), "%s[%zu]", key, i);
		/* -1: "not given"; the plan's timeouts.hook fills it in later. */
		hk->timeout_ms = -1;
		mark(c, ikey, item);
		if (item->kind != DGM_Y_MAP) {
			char gbuf[160];

			fail(c, item, "'%s' must be a mapping with 'name' and 'run', got %s", ikey,
			     got(item, gbuf, sizeof(gbuf)));
			return hint(c, "write each hook as a mapping, e.g. "
				    "{name: maintenance-on, run: [./bin/maintenance, \"on\"]}");
		}
		if (walk_map(c, item, hook_fields, ikey, hk))
			return -1;
	}
	return 0;
}

static int url_value(pctx *c, const field *f, const dgm_ynode *v, const char *key, void *dst)
{
	char **out = dst;
	char gbuf[160];

	free(*out);
	*out = NULL;
	if (string_value(c, f, v, key, out))
		return -1;
	if (!strncmp(*out, "http://", 7) || !strncmp(*out, "https://", 8))
		return 0;
	fail(c, v, "'%s' must start with http:// or https://, got %s", key,
	     got(v, gbuf, sizeof(gbuf)));
	return hint(c, "write the full URL, e.g. http://localhost:8000/api/health");
}

/* ---- alembic.env and alembic.x ------------------------------------------ */

/* One value of alembic.env or alembic.x: a string, ${VAR} expanded now,
 * ${target.*} kept for the run (dgm_plan_target_expand). */
static int target_value(pctx *c, const dgm_ynode *v, const char *key, char **out)
{
	char where[512], gbuf[160];

	if (v->kind != DGM_Y_SCALAR) {
		fail(c, v, "'%s' must be a string, got %s", key, got(v, gbuf, sizeof(gbuf)));
		return hint(c, "write a single value; quote it when it holds ${...}");
	}
	if (dgm_plan_ynode_is_null(v))
		return null_value(c, NULL, v, key);
	snprintf(where, sizeof(where), "%s:%d:%d", c->plan->path, v->line, v->column);
	return dgm_plan_expand_keep(out, v->text, where, key, c->err);
}

/* alembic.env: NAME: value, set in alembic's environment. */
static int env_value(pctx *c, const field *f, const dgm_ynode *v, const char *key, void *dst)
{
	dgm_strlist *l = dst;

	if (v->kind != DGM_Y_MAP)
		return wrong(c, f, v, key);
	dgm_strlist_free(l);
	l->items = dgm_xcalloc(v->n / 2 + 1, sizeof(*l->items));
	for (size_t i = 0; i < v->n; i += 2) {
		const dgm_ynode *k = v->kids[i];
		char ikey[256], *val = NULL;

		snprintf(ikey, sizeof(ikey), "%s.%s", key, k->text);
		mark(c, ikey, k);
		if (!dgm_plan_is_var_name(k->text, strlen(k->text))) {
			fail(c, k, "'%s' must be an environment variable name, got '%.64s'", ikey,
			     k->text);
			return hint(c, "a name is letters, digits and '_', not starting with a digit");
		}
		if (duplicate_key(c, v, i, key) || target_value(c, v->kids[i + 1], ikey, &val))
			return -1;
		l->items[l->count++] = dgm_xasprintf("%s=%s", k->text, val);
		free(val);
	}
	return 0;
}

/* alembic.x: `-x` arguments. argv is readable by every user (/proc), so
 * the placeholders that hold the password are refused here. */
static int x_value(pctx *c, const field *f, const dgm_ynode *v, const char *key, void *dst)
{
	static const char *const secret[] = { "${target.password}", "${target.url}", NULL };
	dgm_strlist *l = dst;

	if (v->kind == DGM_Y_SCALAR) {
		wrong(c, f, v, key);
		return hint(c, "write it as a list, e.g. %s", f->example);
	}
	if (v->kind != DGM_Y_SEQ)
		return wrong(c, f, v, key);
	dgm_strlist_free(l);
	l->items = dgm_xcalloc(v->n + 1, sizeof(*l->items));
	for (size_t i = 0; i < v->n; i++) {
		const dgm_ynode *it = v->kids[i];
		char ikey[256];

		snprintf(ikey, sizeof(ikey), "%s[%zu]", key, i);
		mark(c, ikey, it);
		if (target_value(c, it, ikey, &l->items[i]))
			return -1;
		l->count = i + 1;
		for (size_t j = 0; secret[j]; j++) {
			if (!strstr(l->items[i], secret[j]))
				continue;
			fail(c, it, "'%s' puts %s in alembic's argv, which every user of the machine "
			     "can read", ikey, secret[j]);
			return hint(c, "pass it in alembic.env instead (e.g. POSTGRES_PASSWORD: "
				    "\"${target.password}\", DATABASE_URL: \"${target.url}\"), which "
				    "env.py reads with os.environ");
		}
	}
	return 0;
}

/* lint.ignore: rule names, each checked against the rule table. */
static int lint_ignore_value(pctx *c, const field *f, const dgm_ynode *v, const char *key,
			     void *dst)
{
	dgm_strlist *l = dst;

	if (list_value(c, f, v, key, l))
		return -1;
	for (size_t i = 0; i < l->count; i++) {
		if (dgm_lint_rule_find(l->items[i]))
			continue;
		fail(c, v->kids[i], "'%s[%zu]' is not a lint rule: '%s'", key, i, l->items[i]);
		return hint(c, "'dgmigrate lint --help' and the README list the rules, e.g. "
			    "add-index-non-concurrent");
	}
	return 0;
}

/* ---- the schema -------------------------------------------------------- */

static const char *const formats[] = { "directory", "custom", NULL };
static const char *const failures[] = { "rollback", "stop", NULL };
static const char *const safeties[] = { "copy", "dump", NULL };
static const char *const engines[] = { "dump", "pgbackrest", NULL };
static const char *const pgbr_backups[] = { "none", "incr", "diff", "full", NULL };
static const char *const pgbr_restores[] = { "side", "cluster", NULL };
/* in the order of dgm_lint_severity */
static const char *const lint_levels[] = { "notice", "warning", "error", "never", NULL };

static const field release_fields[] = {
	{ .key = "name", .kind = F_STR, .flags = REQUIRED, .off = OFF(release.name),
	  .example = "\"FastAPI v1.6 ML analytics\"" },
	{ .key = "repository", .kind = F_PATH, .flags = REQUIRED, .off = OFF(release.repository),
	  .example = "../app" },
	{ .key = "tag", .kind = F_STR, .flags = REQUIRED, .off = OFF(release.tag),
	  .example = "v1.6" },
	{ .key = "allow_dirty", .kind = F_BOOL, .off = OFF(release.allow_dirty),
	  .example = "false" },
	{ NULL }
};

static const field database_fields[] = {
	/* Absent or "": libpq's defaults (PGHOST, PGPORT, PGUSER, PGDATABASE,
	 * PGSERVICE, ~/.pgpass), as psql does. */
	{ .key = "url", .kind = F_STR, .flags = MAY_BE_EMPTY, .off = OFF(database.url),
	  .example = "${DATABASE_URL}" },
	{ NULL }
};

static const char *const read_graphs[] = { "static", "alembic", NULL };

static const field alembic_fields[] = {
	/* Resolved against release.repository once the whole plan is read. */
	{ .key = "config", .kind = F_STR, .off = OFF(alembic.config), .example = "alembic.ini" },
	{ .key = "command", .kind = F_CUSTOM, .off = OFF(alembic.command), .fn = command_value,
	  .custom_shape = SH_SCALAR, .item = I_STR, .what = "a program name or a list of strings",
	  .example = "[python3, -m, alembic]" },
	{ .key = "target", .kind = F_STR, .off = OFF(alembic.target), .example = "heads" },
	{ .key = "version_table", .kind = F_STR, .off = OFF(alembic.version_table),
	  .example = "alembic_version" },
	{ .key = "version_table_schema", .kind = F_STR, .off = OFF(alembic.version_schema),
	  .example = "public" },
	{ .key = "env", .kind = F_CUSTOM, .off = OFF(alembic.env), .fn = env_value,
	  .custom_shape = SH_MAP, .what = "a mapping of variable names to values" },
	{ .key = "x", .kind = F_CUSTOM, .off = OFF(alembic.x), .fn = x_value,
	  .custom_shape = SH_LIST, .what = "a list of key=value strings",
	  .example = "[\"db=${target.dbname}\"]" },
	/* alembic: the graph as Alembic loads it, for revision files that
	 * compute what cannot be read as text (it imports the code). */
	{ .key = "read_graph", .kind = F_ENUM, .off = OFF(alembic.read_graph),
	  .choices = read_graphs },
	{ NULL }
};

static const field snapshot_fields[] = {
	{ .key = "directory", .kind = F_PATH, .flags = REQUIRED, .off = OFF(snapshot.directory),
	  .example = "../backups" },
	{ .key = "format", .kind = F_ENUM, .off = OFF(snapshot.format), .choices = formats },
	{ .key = "jobs", .kind = F_INT, .off = OFF(snapshot.jobs), .min = 1, .max = 64 },
	{ .key = "compression", .kind = F_INT, .off = OFF(snapshot.compression), .min = 0,
	  .max = 9 },
	{ .key = "keep", .kind = F_INT, .off = OFF(snapshot.keep), .min = 1, .max = NO_MAX },
	{ .key = "min_free", .kind = F_SIZE, .off = OFF(snapshot.min_free_bytes) },
	{ .key = "rollback_safety", .kind = F_ENUM, .off = OFF(snapshot.rollback_safety),
	  .choices = safeties },
	{ .key = "keep_copies", .kind = F_INT, .off = OFF(snapshot.keep_copies), .min = 0,
	  .max = NO_MAX },
	{ .key = "allow_no_restore", .kind = F_BOOL, .off = OFF(snapshot.allow_no_restore),
	  .example = "false" },
	{ .key = "key_file", .kind = F_PATH, .off = OFF(snapshot.key_file),
	  .example = "/etc/dgmigrate/snapshot.key" },
	{ .key = "engine", .kind = F_ENUM, .off = OFF(snapshot.engine), .choices = engines },
	{ NULL }
};

/* ---- pgbackrest: the restore-point snapshot engine ---- */

/* An option passed through: "--name" or "--name=value", never a secret
 * (argv is world-readable): those go in the environment (PGBACKREST_*)
 * or pgbackrest's configuration file. */
static int pgbr_option_ok(pctx *c, const dgm_ynode *v, const char *key, const char *s)
{
	size_t n = strcspn(s, "=");
	char *name;
	bool secret;

	if (strncmp(s, "--", 2) || n < 3) {
		fail(c, v, "'%s' must be a pgbackrest option '--name=value', got '%s'", key, s);
		return hint(c, "e.g. --repo1-type=s3; the stanza and --config have keys of their own");
	}
	name = dgm_xstrndup(s + 2, n - 2);
	secret = dgm_plan_name_looks_secret(name) || strstr(name, "pass");
	if (secret) {
		fail(c, v, "'%s' passes pgbackrest's '%s' on the command line, where every user "
		     "can read it", key, name);
		hint(c, "set it in the environment as PGBACKREST_%s or in pgbackrest's "
		     "configuration file", name);
	}
	free(name);
	return secret ? -1 : 0;
}

static int pgbr_options_value(pctx *c, const field *f, const dgm_ynode *v, const char *key,
			      void *dst)
{
	dgm_strlist *l = dst;

	if (v->kind != DGM_Y_SEQ)
		return wrong(c, f, v, key);
	if (strlist_value(c, f, v, key, l))
		return -1;
	for (size_t i = 0; i < l->count; i++) {
		char ikey[256];

		snprintf(ikey, sizeof(ikey), "%s[%zu]", key, i);
		if (pgbr_option_ok(c, v->kids[i], ikey, l->items[i]))
			return -1;
	}
	return 0;
}

static int pgbr_argv_value(pctx *c, const field *f, const dgm_ynode *v, const char *key,
			   void *dst)
{
	if (v->kind != DGM_Y_SEQ)
		return wrong(c, f, v, key);
	return argv_value(c, f, v, key, dst);
}

static const field pgbr_server_fields[] = {
	{ .key = "stop", .kind = F_CUSTOM, .off = OFF(pgbackrest.server_stop),
	  .fn = pgbr_argv_value, .custom_shape = SH_LIST, .item = I_STR,
	  .what = "a list of strings (argv)", .example = "[pg_ctlcluster, \"15\", main, stop]" },
	{ .key = "start", .kind = F_CUSTOM, .off = OFF(pgbackrest.server_start),
	  .fn = pgbr_argv_value, .custom_shape = SH_LIST, .item = I_STR,
	  .what = "a list of strings (argv)", .example = "[pg_ctlcluster, \"15\", main, start]" },
	{ NULL }
};

static const field pgbr_side_fields[] = {
	{ .key = "directory", .kind = F_PATH, .off = OFF(pgbackrest.side_directory),
	  .example = "/var/lib/postgresql/dgm-side" },
	{ .key = "port", .kind = F_INT, .off = OFF(pgbackrest.side_port), .min = 1,
	  .max = 65535 },
	{ .key = "pg_ctl", .kind = F_CUSTOM, .off = OFF(pgbackrest.pg_ctl), .fn = command_value,
	  .custom_shape = SH_SCALAR, .item = I_STR, .what = "a program name or a list of strings",
	  .example = "[runuser, -u, postgres, --, /usr/lib/postgresql/15/bin/pg_ctl]" },
	{ NULL }
};

static const field pgbackrest_fields[] = {
	{ .key = "stanza", .kind = F_STR, .flags = REQUIRED, .off = OFF(pgbackrest.stanza),
	  .example = "main" },
	{ .key = "config", .kind = F_PATH, .off = OFF(pgbackrest.config),
	  .example = "/etc/pgbackrest/pgbackrest.conf" },
	{ .key = "command", .kind = F_CUSTOM, .off = OFF(pgbackrest.command), .fn = command_value,
	  .custom_shape = SH_SCALAR, .item = I_STR, .what = "a program name or a list of strings",
	  .example = "[runuser, -u, postgres, --, pgbackrest]" },
	{ .key = "options", .kind = F_CUSTOM, .off = OFF(pgbackrest.options),
	  .fn = pgbr_options_value, .custom_shape = SH_LIST, .item = I_STR,
	  .what = "a list of pgbackrest options", .example = "[--repo1-type=s3]" },
	{ .key = "backup", .kind = F_ENUM, .off = OFF(pgbackrest.backup), .choices = pgbr_backups },
	{ .key = "restore", .kind = F_ENUM, .off = OFF(pgbackrest.restore),
	  .choices = pgbr_restores },
	{ .key = "archive_timeout", .kind = F_DURATION, .off = OFF(pgbackrest.archive_timeout_ms) },
	{ .key = "repository_path", .kind = F_PATH, .off = OFF(pgbackrest.repo_path),
	  .example = "/var/lib/pgbackrest" },
	{ .key = "min_free", .kind = F_SIZE, .off = OFF(pgbackrest.min_free_bytes) },
	{ .key = "server", .kind = F_SECTION, .sub = pgbr_server_fields },
	{ .key = "rewind_other_databases", .kind = F_BOOL,
	  .off = OFF(pgbackrest.rewind_other_databases), .example = "false" },
	{ .key = "side", .kind = F_SECTION, .sub = pgbr_side_fields },
	{ NULL }
};

static const field model_store_fields[] = {
	{ .key = "path", .kind = F_PATH, .flags = REQUIRED, .off = OFF(model_store.path),
	  .example = "${ML_MODEL_STORAGE_PATH}" },
	{ .key = "compression_level", .kind = F_INT, .off = OFF(model_store.level), .min = 1,
	  .max = 19 },
	{ .key = "threads", .kind = F_INT, .off = OFF(model_store.threads), .min = 0, .max = 64 },
	{ .key = "extra_paths", .kind = F_LIST, .off = OFF(model_store.extra_paths),
	  .item = I_PATH, .what = "a list of paths", .example = "../config/app.env" },
	{ NULL }
};

static const field environment_fields[] = {
	{ .key = "required", .kind = F_LIST, .off = OFF(required_env), .item = I_VAR,
	  .what = "a list of variable names", .example = "DATABASE_URL, SECRET_KEY" },
	{ .key = "secret", .kind = F_LIST, .off = OFF(secret_env), .item = I_VAR,
	  .what = "a list of variable names", .example = "SMTP_PASS, SENTRY_DSN" },
	{ NULL }
};

static const field postconditions_fields[] = {
	{ .key = "tables", .kind = F_LIST, .flags = NONEMPTY, .off = OFF(postconditions.tables),
	  .item = I_IDENT, .what = "a list of table names", .example = "predictive_models" },
	{ .key = "indexes", .kind = F_LIST, .flags = NONEMPTY, .off = OFF(postconditions.indexes),
	  .item = I_IDENT, .what = "a list of index names",
	  .example = "ix_predictive_models_organization_id" },
	{ .key = "foreign_keys_validated", .kind = F_BOOL,
	  .off = OFF(postconditions.foreign_keys_validated) },
	{ .key = "analyze", .kind = F_BOOL, .off = OFF(postconditions.analyze) },
	{ NULL }
};

static const field hooks_fields[] = {
	{ .key = "before", .kind = F_CUSTOM, .off = OFF(hooks.before), .fn = hooks_value,
	  .custom_shape = SH_LIST, .what = "a list of hooks" },
	{ .key = "after", .kind = F_CUSTOM, .off = OFF(hooks.after), .fn = hooks_value,
	  .custom_shape = SH_LIST, .what = "a list of hooks" },
	{ NULL }
};

static const field health_fields[] = {
	{ .key = "url", .kind = F_CUSTOM, .flags = REQUIRED, .off = OFF(health_check.url),
	  .fn = url_value, .what = "a string", .example = "http://localhost:8000/api/health" },
	{ .key = "timeout", .kind = F_DURATION, .off = OFF(health_check.timeout_ms) },
	{ .key = "interval", .kind = F_DURATION, .off = OFF(health_check.interval_ms) },
	{ .key = "retries", .kind = F_INT, .off = OFF(health_check.retries), .min = 1,
	  .max = NO_MAX },
	{ NULL }
};

static const field timeouts_fields[] = {
	{ .key = "lock_timeout", .kind = F_DURATION, .off = OFF(timeouts.lock_ms) },
	{ .key = "statement_timeout", .kind = F_DURATION, .off = OFF(timeouts.statement_ms) },
	{ .key = "snapshot", .kind = F_DURATION, .off = OFF(timeouts.snapshot_ms) },
	{ .key = "migrate", .kind = F_DURATION, .off = OFF(timeouts.migrate_ms) },
	{ .key = "restore", .kind = F_DURATION, .off = OFF(timeouts.restore_ms) },
	{ .key = "hook", .kind = F_DURATION, .off = OFF(timeouts.hook_ms) },
	{ NULL }
};

static const field lint_threshold_fields[] = {
	{ .key = "error_size", .kind = F_SIZE, .off = OFF(lint.error_bytes) },
	{ NULL }
};

static const field lint_fields[] = {
	{ .key = "fail_on", .kind = F_ENUM, .off = OFF(lint.fail_on), .choices = lint_levels },
	{ .key = "ignore", .kind = F_CUSTOM, .off = OFF(lint.ignore), .fn = lint_ignore_value,
	  .custom_shape = SH_LIST, .item = I_STR, .what = "a list of lint rule names",
	  .example = "add-index-non-concurrent" },
	{ .key = "thresholds", .kind = F_SECTION, .sub = lint_threshold_fields },
	{ NULL }
};

static const field top_fields[] = {
	{ .key = "version", .kind = F_CUSTOM, .flags = REQUIRED, .off = OFF(version),
	  .fn = version_value, .what = "1", .example = "1" },
	{ .key = "release", .kind = F_SECTION, .flags = REQUIRED, .sub = release_fields },
	{ .key = "database", .kind = F_SECTION, .sub = database_fields },
	{ .key = "alembic", .kind = F_SECTION, .sub = alembic_fields },
	{ .key = "snapshot", .kind = F_SECTION, .flags = REQUIRED, .sub = snapshot_fields },
	{ .key = "model_store", .kind = F_SECTION, .sub = model_store_fields },
	{ .key = "environment", .kind = F_SECTION, .sub = environment_fields },
	{ .key = "postconditions", .kind = F_SECTION, .sub = postconditions_fields },
	{ .key = "hooks", .kind = F_SECTION, .sub = hooks_fields },
	{ .key = "health_check", .kind = F_SECTION, .sub = health_fields },
	{ .key = "timeouts", .kind = F_SECTION, .sub = timeouts_fields },
	{ .key = "on_failure", .kind = F_ENUM, .off = OFF(on_failure), .choices = failures },
	{ .key = "state_dir", .kind = F_PATH, .off = OFF(state_dir), .example = "../state" },
	{ .key = "lint", .kind = F_SECTION, .sub = lint_fields },
	{ .key = "pgbackrest", .kind = F_SECTION, .sub = pgbackrest_fields },
	{ NULL }
};

/* F_ENUM writes an int through the field's offset. */
_Static_assert(sizeof(dgm_dump_format) == sizeof(int), "enum stored as int");
_Static_assert(sizeof(dgm_on_failure) == sizeof(int), "enum stored as int");

int dgm_plan_schema_apply(dgm_plan *plan, const dgm_ynode *root, dgm_error *err)
{
	pctx c = { .plan = plan, .err = err };
	char gbuf[160];

	if (root->kind != DGM_Y_MAP) {
		fail(&c, root, "the plan must be a mapping of keys (version, release, ...), got %s",
		     got(root, gbuf, sizeof(gbuf)));
		return hint(&c, "start from plans/example.yaml, which documents every key");
	}
	return walk_map(&c, root, top_fields, "", plan);
}
