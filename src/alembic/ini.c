/*
 * ini.c - alembic.ini with Python configparser's semantics, and the
 * script settings Alembic 1.8 takes from it (ScriptDirectory.from_config).
 *
 * configparser details kept: `=` or `:` (the first one) ends the key;
 * keys are lowercased; only whole-line `#`/`;` comments exist (a `;`
 * after a value is part of it); a line indented deeper than its key's
 * line continues the value (blank lines inside are kept, trailing ones
 * dropped); [DEFAULT] options show in every section; a section or key
 * given twice is an error; `%(name)s` expands from the section and the
 * defaults, recursively, `%%` is a percent sign.
 *
 * configparser bounds the depth of interpolation (10) but not its size:
 * ten options naming the next one sixteen times each expand to 16^9
 * bytes. A value here is at most MAX_VALUE bytes after interpolation,
 * reached through at most MAX_REFS references (references to empty
 * values cost time without growing the value).
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "dgm/alembic.h"
#include "dgm/buf.h"
#include "alembic_int.h"

typedef struct ini_opt {
	char *key;
	dgm_buf value;   /* lines joined by '\n' */
	int line;
} ini_opt;

/* Sections and options are found through hash maps: a file of many keys
 * must not cost time quadratic in their number (100,000 keys took
 * minutes). */
typedef struct ini_sect {
	char *name;
	ini_opt *opts;
	size_t nopts, opts_cap;
	dgm_strmap index;  /* key -> index in opts */
} ini_sect;

struct dgm_alembic_ini {
	char *name;
	ini_sect *sects;  /* [0] is DEFAULT */
	size_t nsects, sects_cap;
	dgm_strmap index; /* name -> index in sects */
};

#define MAX_DEPTH 10
#define MAX_VALUE 65536
#define MAX_REFS 16384

static ini_sect *find_sect(const dgm_alembic_ini *ini, const char *name)
{
	size_t i;

	return dgm_strmap_get(&ini->index, name, &i) ? &ini->sects[i] : NULL;
}

static ini_opt *find_opt(const ini_sect *s, const char *key)
{
	size_t i;

	return s && dgm_strmap_get(&s->index, key, &i) ? &s->opts[i] : NULL;
}

static ini_sect *add_sect(dgm_alembic_ini *ini, const char *name, size_t len)
{
	ini_sect *s;

	ini->sects = dgm_xgrow(ini->sects, &ini->sects_cap, ini->nsects + 1, sizeof(*ini->sects));
	s = &ini->sects[ini->nsects++];
	memset(s, 0, sizeof(*s));
	s->name = dgm_xstrndup(name, len);
	dgm_strmap_init(&s->index, 8);
	dgm_strmap_put(&ini->index, s->name, ini->nsects - 1);
	return s;
}

static ini_opt *add_opt(ini_sect *s, const char *key, size_t len, int line)
{
	ini_opt *o;

	s->opts = dgm_xgrow(s->opts, &s->opts_cap, s->nopts + 1, sizeof(*s->opts));
	o = &s->opts[s->nopts++];
	memset(o, 0, sizeof(*o));
	o->key = dgm_xstrndup(key, len);
	for (char *p = o->key; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	o->line = line;
	dgm_strmap_put(&s->index, o->key, s->nopts - 1);
	return o;
}

/* [start, end) of s without surrounding white space */
static void strip(const char **start, const char **end)
{
	while (*start < *end && isspace((unsigned char)**start))
		(*start)++;
	while (*end > *start && isspace((unsigned char)(*end)[-1]))
		(*end)--;
}

typedef struct reader {
	dgm_alembic_ini *ini;
	ini_sect *cur;       /* NULL before the first header */
	ini_opt *opt;        /* option that continuation lines extend */
	size_t indent;
	int lineno;
} reader;

/* A "[name]" line: configparser takes everything up to the last ']'. */
static int header(reader *r, const char *v, const char *end, dgm_error *err)
{
	const char *close = end;
	char *name;

	while (close > v && close[-1] != ']')
		close--;
	name = dgm_xstrndup(v + 1, (size_t)(close - 1 - (v + 1)));
	if (strcmp(name, "DEFAULT") == 0) {
		r->cur = &r->ini->sects[0];
	} else if (find_sect(r->ini, name)) {
		dgm_error_set(err, DGM_E_ALEMBIC, "%s:%d: section '%s' already exists",
			      r->ini->name, r->lineno, name);
		free(name);
		return -1;
	} else {
		r->cur = add_sect(r->ini, name, strlen(name));
	}
	free(name);
	r->opt = NULL;
	return 0;
}

static bool is_header(const char *v, const char *end)
{
	const char *close = end;

	if (v >= end || *v != '[')
		return false;
	while (close > v && close[-1] != ']')
		close--;
	return close - v >= 3;
}

static int option(reader *r, const char *v, const char *end, const char *raw_line,
		  dgm_error *err)
{
	const char *delim = v, *kend, *val, *vend = end;

	while (delim < end && *delim != '=' && *delim != ':')
		delim++;
	kend = delim;
	while (kend > v && isspace((unsigned char)kend[-1]))
		kend--;
	if (delim >= end || kend == v)
		return dgm_error_set(err, DGM_E_ALEMBIC, "%s:%d: cannot parse line '%s'",
				     r->ini->name, r->lineno, raw_line);
	{
		char *key = dgm_xstrndup(v, (size_t)(kend - v));

		for (char *p = key; *p; p++)
			*p = (char)tolower((unsigned char)*p);
		if (find_opt(r->cur, key)) {
			dgm_error_set(err, DGM_E_ALEMBIC, "%s:%d: option '%s' in section '%s' "
				      "already exists", r->ini->name, r->lineno, key, r->cur->name);
			free(key);
			return -1;
		}
		free(key);
	}
	r->opt = add_opt(r->cur, v, (size_t)(kend - v), r->lineno);
	val = delim + 1;
	strip(&val, &vend);
	dgm_buf_put(&r->opt->value, val, (size_t)(vend - val));
	return 0;
}

static int line(reader *r, const char *p, const char *eol, dgm_error *err)
{
	const char *v = p, *end = eol;
	size_t indent = 0;

	strip(&v, &end);
	if (v < end && (*v == '#' || *v == ';'))
		return 0;                        /* comment: not even a blank line */
	if (v == end) {
		if (r->opt)
			dgm_buf_putc(&r->opt->value, '\n');
		return 0;
	}
	while (p + indent < eol && isspace((unsigned char)p[indent]))
		indent++;
	if (r->cur && r->opt && indent > r->indent) {
		dgm_buf_putc(&r->opt->value, '\n');
		dgm_buf_put(&r->opt->value, v, (size_t)(end - v));
		return 0;
	}
	r->indent = indent;
	if (is_header(v, end))
		return header(r, v, end, err);
	if (!r->cur) {
		char *raw = dgm_xstrndup(p, (size_t)(eol - p));

		dgm_error_set(err, DGM_E_ALEMBIC, "%s:%d: file contains no section headers: '%s'",
			      r->ini->name, r->lineno, raw);
		free(raw);
		return -1;
	}
	{
		char *raw = dgm_xstrndup(p, (size_t)(eol - p));
		int rc = option(r, v, end, raw, err);

		free(raw);
		return rc;
	}
}

/* Blank lines were added as '\n'; configparser drops trailing ones. */
static void finish_values(dgm_alembic_ini *ini)
{
	for (size_t i = 0; i < ini->nsects; i++)
		for (size_t j = 0; j < ini->sects[i].nopts; j++) {
			dgm_buf *b = &ini->sects[i].opts[j].value;

			while (b->len && isspace((unsigned char)b->ptr[b->len - 1]))
				b->ptr[--b->len] = '\0';
			if (!b->ptr)
				dgm_buf_puts(b, "");
		}
}

int dgm_alembic_ini_parse(dgm_alembic_ini **out, const char *name, const char *here,
			  const char *text, size_t len, dgm_error *err)
{
	dgm_alembic_ini *ini = dgm_xcalloc(1, sizeof(*ini));
	reader r = { ini, NULL, NULL, 0, 0 };
	const char *p = text, *end = text + len;

	*out = NULL;
	ini->name = dgm_xstrdup(name);
	dgm_strmap_init(&ini->index, 8);
	add_sect(ini, "DEFAULT", 7);
	if (here) {
		ini_opt *o = add_opt(&ini->sects[0], "here", 4, 0);

		dgm_buf_puts(&o->value, here);
	}
	if (len >= 3 && !memcmp(p, "\xEF\xBB\xBF", 3))
		p += 3;
	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));

		if (!eol)
			eol = end;
		r.lineno++;
		if (line(&r, p, eol, err) != 0) {
			dgm_alembic_ini_free(ini);
			return -1;
		}
		p = eol + 1;
	}
	finish_values(ini);
	*out = ini;
	return 0;
}

bool dgm_alembic_ini_has_section(const dgm_alembic_ini *ini, const char *section)
{
	return strcmp(section, "DEFAULT") != 0 && find_sect(ini, section) != NULL;
}

static const ini_opt *lookup(const dgm_alembic_ini *ini, const ini_sect *s, const char *key)
{
	const ini_opt *o = find_opt(s, key);

	return o ? o : find_opt(&ini->sects[0], key);
}

/* The value being expanded: for messages and the size bounds. */
typedef struct expansion {
	const dgm_alembic_ini *ini;
	const ini_sect *s;
	const char *key;     /* as the caller asked for it */
	int line;            /* where it is set */
	size_t refs;
} expansion;

static int too_large(const expansion *x, const dgm_buf *out, dgm_error *err)
{
	if (out->len <= MAX_VALUE && x->refs <= MAX_REFS)
		return 0;
	if (out->len > MAX_VALUE)
		dgm_error_set(err, DGM_E_ALEMBIC, "%s:%d: option '%s' in section '%s' expands to "
			      "more than %d bytes", x->ini->name, x->line, x->key, x->s->name,
			      MAX_VALUE);
	else
		dgm_error_set(err, DGM_E_ALEMBIC, "%s:%d: option '%s' in section '%s' expands more "
			      "than %d references", x->ini->name, x->line, x->key, x->s->name,
			      MAX_REFS);
	dgm_error_hint(err, "check the %%(name)s references of '%s' and of the options they "
		       "name: they repeat each other", x->key);
	return -1;
}

static int interpolate(dgm_buf *out, expansion *x, const char *rest, int depth, dgm_error *err)
{
	const dgm_alembic_ini *ini = x->ini;
	const ini_sect *s = x->s;
	const char *key = x->key;

	if (depth > MAX_DEPTH)
		return dgm_error_set(err, DGM_E_ALEMBIC, "%s: recursion limit exceeded in value "
				     "substitution: option '%s' in section '%s'",
				     ini->name, key, s->name);
	while (*rest) {
		const char *pct = strchr(rest, '%'), *close;
		const ini_opt *o;
		char *var;

		if (!pct) {
			dgm_buf_puts(out, rest);
			break;
		}
		dgm_buf_put(out, rest, (size_t)(pct - rest));
		if (too_large(x, out, err) != 0)
			return -1;
		if (pct[1] == '%') {
			dgm_buf_putc(out, '%');
			rest = pct + 2;
			continue;
		}
		close = pct[1] == '(' ? strchr(pct + 2, ')') : NULL;
		if (!close || close == pct + 2 || close[1] != 's')
			return dgm_error_set(err, DGM_E_ALEMBIC, "%s: bad interpolation in option "
					     "'%s' of section '%s' at '%s' ('%%' must be followed "
					     "by '%%' or '(name)s')", ini->name, key, s->name, pct);
		var = dgm_xstrndup(pct + 2, (size_t)(close - pct - 2));
		for (char *c = var; *c; c++)
			*c = (char)tolower((unsigned char)*c);
		o = lookup(ini, s, var);
		if (!o) {
			dgm_error_set(err, DGM_E_ALEMBIC, "%s: option '%s' in section '%s' refers to "
				      "'%s', which is not set", ini->name, key, s->name, var);
			free(var);
			return -1;
		}
		free(var);
		x->refs++;
		if (too_large(x, out, err) != 0 ||
		    interpolate(out, x, dgm_buf_cstr(&o->value), depth + 1, err) != 0)
			return -1;
		rest = close + 2;
	}
	return too_large(x, out, err);
}

int dgm_alembic_ini_get(char **value, const dgm_alembic_ini *ini, const char *section,
			const char *key, dgm_error *err)
{
	const ini_sect *s = find_sect(ini, section);
	const ini_opt *o;
	dgm_buf out = DGM_BUF_INIT;
	char *lkey = dgm_xstrdup(key);

	*value = NULL;
	for (char *c = lkey; *c; c++)
		*c = (char)tolower((unsigned char)*c);
	o = s ? lookup(ini, s, lkey) : NULL;
	free(lkey);
	if (!o)
		return 0;
	if (interpolate(&out, &(expansion){ ini, s, key, o->line, 0 }, dgm_buf_cstr(&o->value), 1,
			err) != 0) {
		dgm_buf_free(&out);
		return -1;
	}
	*value = dgm_buf_detach(&out);
	return 0;
}

void dgm_alembic_ini_free(dgm_alembic_ini *ini)
{
	if (!ini)
		return;
	for (size_t i = 0; i < ini->nsects; i++) {
		for (size_t j = 0; j < ini->sects[i].nopts; j++) {
			free(ini->sects[i].opts[j].key);
			dgm_buf_free(&ini->sects[i].opts[j].value);
		}
		free(ini->sects[i].opts);
		free(ini->sects[i].name);
		dgm_strmap_free(&ini->sects[i].index);
	}
	dgm_strmap_free(&ini->index);
	free(ini->sects);
	free(ini->name);
	free(ini);
}
