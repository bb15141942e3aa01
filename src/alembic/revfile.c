/*
 * revfile.c - read a revision file's module-level assignments as text.
 *
 * A small Python tokenizer (strings of every quoting and prefix,
 * comments, brackets across lines, backslash continuations) splits the
 * file into logical lines; only statements at column 0 count, as only
 * those set module attributes. Of those, plain (`a = b = v`) and
 * annotated (`a: T = v`) assignments to revision, down_revision,
 * branch_labels and depends_on are evaluated as literals: a string
 * (adjacent strings concatenated), None, or a tuple / list / set of
 * strings. As in Python, the last assignment wins. The docstring is the
 * first statement when it is a string; what it says ("Revises: ...",
 * even "revision = 'x'") is never read as code.
 *
 * Brackets nest at most 200 deep, as in CPython's tokenizer ("too many
 * nested parentheses"); the lexer pairs them once, so that reading a
 * value costs time linear in its length and stack bounded by the limit.
 */
#include <ctype.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "dgm/alembic.h"
#include "dgm/buf.h"
#include "dgm/log.h"
#include "alembic_int.h"

typedef enum tok_kind { T_NAME, T_STRING, T_OTHER, T_OP, T_NEWLINE } tok_kind;

typedef struct tok {
	tok_kind kind;
	const char *p;       /* source span (for strings: the whole literal) */
	size_t len;
	int line;
	int col;
	/* strings */
	unsigned char prefix; /* bit set of STR_* */
	size_t qlen;          /* 1 or 3 */
	/* opening brackets: index of the closing one, 0 when unclosed */
	size_t match;
} tok;

/* CPython's MAXLEVEL: 200 nested brackets compile, 201 do not */
#define MAX_NESTING 200

enum { STR_RAW = 1, STR_BYTES = 2, STR_F = 4 };

typedef struct lexer {
	const char *path;
	const char *s;
	size_t n, i;
	int line;
	size_t line_start;
	int depth;
	size_t open[MAX_NESTING]; /* token index of each open bracket */
	tok *toks;
	size_t ntoks, cap;
	bool line_has_tokens;
} lexer;

static tok *push(lexer *lx, tok_kind kind, size_t start, size_t len, int line, int col)
{
	tok *t;

	if (lx->ntoks == lx->cap) {
		lx->cap = lx->cap ? lx->cap * 2 : 256;
		lx->toks = dgm_xrealloc(lx->toks, lx->cap * sizeof(*lx->toks));
	}
	t = &lx->toks[lx->ntoks++];
	memset(t, 0, sizeof(*t));
	t->kind = kind;
	t->p = lx->s + start;
	t->len = len;
	t->line = line;
	t->col = col;
	if (kind != T_NEWLINE)
		lx->line_has_tokens = true;
	return t;
}

static bool ident_start(unsigned char c)
{
	return isalpha(c) || c == '_' || c >= 0x80;
}

static bool ident_char(unsigned char c)
{
	return isalnum(c) || c == '_' || c >= 0x80;
}

/* The string prefix letters, or -1 when NAME is not a valid prefix. */
static int string_prefix(const char *p, size_t len)
{
	int flags = 0;
	bool r = false, b = false, f = false, u = false;

	if (len == 0 || len > 2)
		return len == 0 ? 0 : -1;
	for (size_t i = 0; i < len; i++) {
		switch (tolower((unsigned char)p[i])) {
		case 'r': if (r) return -1; r = true; flags |= STR_RAW; break;
		case 'b': if (b) return -1; b = true; flags |= STR_BYTES; break;
		case 'f': if (f) return -1; f = true; flags |= STR_F; break;
		case 'u': if (u) return -1; u = true; break;
		default: return -1;
		}
	}
	if (u && len > 1)
		return -1;
	if (b && f)
		return -1;
	return flags;
}

static void newline(lexer *lx, size_t next)
{
	lx->line++;
	lx->line_start = next;
}

/* Lex a string literal whose quote is at lx->i; `start` is where its
 * prefix begins. */
static int lex_string(lexer *lx, size_t start, int prefix, dgm_error *err)
{
	const char *s = lx->s;
	char q = s[lx->i];
	size_t qlen = (lx->i + 2 < lx->n && s[lx->i + 1] == q && s[lx->i + 2] == q) ? 3 : 1;
	size_t j = lx->i + qlen;
	int line = lx->line, col = (int)(start - lx->line_start);
	tok *t;

	for (;;) {
		if (j >= lx->n)
			return dgm_error_set(err, DGM_E_ALEMBIC, "%s:%d: unterminated string",
					     lx->path, line);
		if (s[j] == '\\') {
			if (j + 1 < lx->n && s[j + 1] == '\n')
				newline(lx, j + 2);
			j += 2;
			continue;
		}
		if (s[j] == '\n') {
			if (qlen == 1)
				return dgm_error_set(err, DGM_E_ALEMBIC,
						     "%s:%d: unterminated string", lx->path, line);
			newline(lx, j + 1);
			j++;
			continue;
		}
		if (s[j] == q && (qlen == 1 || (j + 2 < lx->n && s[j + 1] == q && s[j + 2] == q))) {
			j += qlen;
			break;
		}
		j++;
	}
	t = push(lx, T_STRING, start, j - start, line, col);
	t->prefix = (unsigned char)prefix;
	t->qlen = qlen;
	lx->i = j;
	return 0;
}

static const char *const ops3[] = { "**=", "//=", ">>=", "<<=", "...", NULL };
static const char *const ops2[] = {
	"==", "!=", "<=", ">=", ":=", "->", "+=", "-=", "*=", "/=", "%=", "&=", "|=",
	"^=", "@=", "**", "//", "<<", ">>", NULL
};

static size_t op_len(const lexer *lx)
{
	for (int i = 0; ops3[i]; i++)
		if (lx->i + 3 <= lx->n && !memcmp(lx->s + lx->i, ops3[i], 3))
			return 3;
	for (int i = 0; ops2[i]; i++)
		if (lx->i + 2 <= lx->n && !memcmp(lx->s + lx->i, ops2[i], 2))
			return 2;
	return 1;
}

static bool is_open(const tok *t)
{
	return t->kind == T_OP && t->len == 1 &&
	       (t->p[0] == '(' || t->p[0] == '[' || t->p[0] == '{');
}

static bool is_close(const tok *t)
{
	return t->kind == T_OP && t->len == 1 &&
	       (t->p[0] == ')' || t->p[0] == ']' || t->p[0] == '}');
}

static int lex_op(lexer *lx, dgm_error *err)
{
	size_t at = lx->ntoks;
	const tok *t = push(lx, T_OP, lx->i, op_len(lx), lx->line,
			    (int)(lx->i - lx->line_start));

	lx->i += t->len;
	if (is_open(t)) {
		if (lx->depth == MAX_NESTING) {
			dgm_error_set(err, DGM_E_ALEMBIC, "%s:%d: too many nested parentheses "
				      "(more than %d levels)", lx->path, t->line, MAX_NESTING);
			dgm_error_hint(err, "Python refuses this file too; Alembic could not load it");
			return -1;
		}
		lx->open[lx->depth++] = at;
	} else if (is_close(t) && lx->depth > 0) {
		lx->toks[lx->open[--lx->depth]].match = at;
	}
	return 0;
}

static int lex_word(lexer *lx, dgm_error *err)
{
	size_t start = lx->i, j = lx->i;
	int prefix;

	while (j < lx->n && ident_char((unsigned char)lx->s[j]))
		j++;
	if (j < lx->n && (lx->s[j] == '\'' || lx->s[j] == '"') &&
	    (prefix = string_prefix(lx->s + start, j - start)) >= 0) {
		lx->i = j;
		return lex_string(lx, start, prefix, err);
	}
	push(lx, T_NAME, start, j - start, lx->line, (int)(start - lx->line_start));
	lx->i = j;
	return 0;
}

static void lex_number(lexer *lx)
{
	size_t start = lx->i;

	while (lx->i < lx->n && (isalnum((unsigned char)lx->s[lx->i]) || lx->s[lx->i] == '_' ||
				 lx->s[lx->i] == '.'))
		lx->i++;
	push(lx, T_OTHER, start, lx->i - start, lx->line, (int)(start - lx->line_start));
}

static int lex(lexer *lx, dgm_error *err)
{
	while (lx->i < lx->n) {
		unsigned char c = (unsigned char)lx->s[lx->i];

		if (c == ' ' || c == '\t' || c == '\f') {
			lx->i++;
		} else if (c == '#') {
			while (lx->i < lx->n && lx->s[lx->i] != '\n')
				lx->i++;
		} else if (c == '\\' && lx->i + 1 < lx->n && lx->s[lx->i + 1] == '\n') {
			lx->i += 2;
			newline(lx, lx->i);
		} else if (c == '\n') {
			if (lx->depth == 0 && lx->line_has_tokens) {
				push(lx, T_NEWLINE, lx->i, 0, lx->line, 0);
				lx->line_has_tokens = false;
			}
			lx->i++;
			newline(lx, lx->i);
		} else if (ident_start(c)) {
			if (lex_word(lx, err) != 0)
				return -1;
		} else if (c == '\'' || c == '"') {
			if (lex_string(lx, lx->i, 0, err) != 0)
				return -1;
		} else if (isdigit(c) || (c == '.' && lx->i + 1 < lx->n &&
					   isdigit((unsigned char)lx->s[lx->i + 1]))) {
			lex_number(lx);
		} else if (lex_op(lx, err) != 0) {
			return -1;
		}
	}
	if (lx->line_has_tokens)
		push(lx, T_NEWLINE, lx->i, 0, lx->line, 0);
	return 0;
}

/* ---- string values ---------------------------------------------------- */

static void put_utf8(dgm_buf *b, unsigned long cp)
{
	if (cp < 0x80) {
		dgm_buf_putc(b, (char)cp);
	} else if (cp < 0x800) {
		dgm_buf_putc(b, (char)(0xC0 | (cp >> 6)));
		dgm_buf_putc(b, (char)(0x80 | (cp & 0x3F)));
	} else if (cp < 0x10000) {
		dgm_buf_putc(b, (char)(0xE0 | (cp >> 12)));
		dgm_buf_putc(b, (char)(0x80 | ((cp >> 6) & 0x3F)));
		dgm_buf_putc(b, (char)(0x80 | (cp & 0x3F)));
	} else {
		dgm_buf_putc(b, (char)(0xF0 | (cp >> 18)));
		dgm_buf_putc(b, (char)(0x80 | ((cp >> 12) & 0x3F)));
		dgm_buf_putc(b, (char)(0x80 | ((cp >> 6) & 0x3F)));
		dgm_buf_putc(b, (char)(0x80 | (cp & 0x3F)));
	}
}

/* Decode the escape at p[0] == '\\'; returns the bytes consumed. */
static size_t unescape(dgm_buf *b, const char *p, const char *end)
{
	static const char simple_from[] = "\\'\"abfnrtv";
	static const char simple_to[] = "\\'\"\a\b\f\n\r\t\v";
	const char *hit;
	size_t i = 1, digits;
	unsigned long cp = 0;

	if (p + 1 >= end) {
		dgm_buf_putc(b, '\\');
		return 1;
	}
	if (p[1] == '\n')
		return 2;
	if ((hit = strchr(simple_from, p[1])) != NULL && p[1]) {
		dgm_buf_putc(b, simple_to[hit - simple_from]);
		return 2;
	}
	if (p[1] >= '0' && p[1] <= '7') {
		while (i < 4 && p + i < end && p[i] >= '0' && p[i] <= '7')
			cp = cp * 8 + (unsigned long)(p[i++] - '0');
		put_utf8(b, cp);
		return i;
	}
	digits = p[1] == 'x' ? 2 : p[1] == 'u' ? 4 : p[1] == 'U' ? 8 : 0;
	if (digits && p + 2 + digits <= end) {
		for (i = 2; i < 2 + digits && isxdigit((unsigned char)p[i]); i++)
			cp = cp * 16 + (unsigned long)(isdigit((unsigned char)p[i]) ? p[i] - '0'
						       : tolower((unsigned char)p[i]) - 'a' + 10);
		if (i == 2 + digits) {
			put_utf8(b, cp);
			return i;
		}
	}
	/* unknown escapes (and \N{...}) stay as written, as Python keeps them */
	dgm_buf_put(b, p, 2);
	return 2;
}

/* The value of a string token, appended to b. */
static void string_value(dgm_buf *b, const tok *t)
{
	size_t plen = 0;
	const char *p, *end;

	while (t->p[plen] != '\'' && t->p[plen] != '"')
		plen++;
	p = t->p + plen + t->qlen;
	end = t->p + t->len - t->qlen;
	if (t->prefix & STR_RAW) {
		dgm_buf_put(b, p, (size_t)(end - p));
		return;
	}
	while (p < end) {
		const char *bs = memchr(p, '\\', (size_t)(end - p));

		if (!bs) {
			dgm_buf_put(b, p, (size_t)(end - p));
			break;
		}
		dgm_buf_put(b, p, (size_t)(bs - p));
		p = bs + unescape(b, bs, end);
	}
	if (!b->ptr)
		dgm_buf_puts(b, "");
}

/* ---- values ----------------------------------------------------------- */

/* V_MOD: a module (str is its dotted name), met while following a name */
typedef enum val_kind { V_NONE, V_STR, V_SEQ, V_MOD } val_kind;

typedef struct value {
	val_kind kind;
	char *str;
	char **items;
	size_t nitems;
} value;

static void value_free(value *v)
{
	free(v->str);
	for (size_t i = 0; i < v->nitems; i++)
		free(v->items[i]);
	free(v->items);
	memset(v, 0, sizeof(*v));
}

static bool is_op(const tok *t, const char *op)
{
	return t->kind == T_OP && t->len == strlen(op) && !memcmp(t->p, op, t->len);
}

static bool is_name(const tok *t, const char *name)
{
	return t->kind == T_NAME && t->len == strlen(name) && !memcmp(t->p, name, t->len);
}

/* ---- modules and the names they bind ---------------------------------- */

/* A name bound at column 0: by an assignment (tokens [a, b) are its
 * value) or by an import (module, and attr for `from module import`). */
typedef struct binding {
	char *name;
	int line;
	size_t a, b;
	char *module;
	char *attr;
} binding;

/* One Python file read as text: a revision file or a module it imports. */
typedef struct pymod {
	char *path;      /* tree path */
	char *name;      /* dotted module name; NULL for a revision file */
	bool package;    /* an __init__.py */
	char *src;
	tok *toks;
	size_t ntoks;
	binding *binds;
	size_t nbinds;
} pymod;

struct dgm_alembic_pyenv {
	dgm_tree *tree;
	char **sys_path;        /* prepend_sys_path folders */
	size_t nsys_path;
	char **roots;           /* of the revision file being read */
	size_t nroots;
	pymod **mods;           /* modules read so far */
	size_t nmods;
	const char *ask;        /* how to let Alembic read the graph, or NULL */
};

/* A name leads to another at most this many times (e.g. a label from a
 * constant that is another module's constant). */
#define MAX_NAME_DEPTH 6

static void pymod_free(pymod *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->nbinds; i++) {
		free(m->binds[i].name);
		free(m->binds[i].module);
		free(m->binds[i].attr);
	}
	free(m->binds);
	free(m->toks);
	free(m->src);
	free(m->path);
	free(m->name);
	free(m);
}

static void bind(pymod *m, char *name, int line, size_t a, size_t b, char *module, char *attr)
{
	binding *x;

	m->binds = dgm_xrealloc(m->binds, (m->nbinds + 1) * sizeof(*m->binds));
	x = &m->binds[m->nbinds++];
	x->name = name;
	x->line = line;
	x->a = a;
	x->b = b;
	x->module = module;
	x->attr = attr;
}

/* The last binding of NAME on a line before `before`. */
static const binding *lookup(const pymod *m, const char *name, int before)
{
	for (size_t i = m->nbinds; i-- > 0;)
		if (m->binds[i].line < before && !strcmp(m->binds[i].name, name))
			return &m->binds[i];
	return NULL;
}

/* A dotted name NAME ('.' NAME)* at toks[a]: malloc'd, *next after it. */
static char *dotted(const tok *toks, size_t a, size_t b, size_t *next)
{
	dgm_buf s = DGM_BUF_INIT;

	if (a >= b || toks[a].kind != T_NAME)
		return NULL;
	dgm_buf_put(&s, toks[a].p, toks[a].len);
	a++;
	while (a + 1 < b && toks[a].kind == T_OP && toks[a].len == 1 && toks[a].p[0] == '.' &&
	       toks[a + 1].kind == T_NAME) {
		dgm_buf_putc(&s, '.');
		dgm_buf_put(&s, toks[a + 1].p, toks[a + 1].len);
		a += 2;
	}
	*next = a;
	return dgm_buf_detach(&s);
}

static bool tok_is(const tok *t, tok_kind kind, const char *text)
{
	return t->kind == kind && t->len == strlen(text) && !memcmp(t->p, text, t->len);
}

/* `import a.b.c` binds a (the package); `import a.b as c` binds c. */
static void import_stmt(pymod *m, const tok *toks, size_t a, size_t b)
{
	for (size_t i = a + 1; i < b;) {
		size_t next;
		char *mod = dotted(toks, i, b, &next);

		if (!mod)
			return;
		if (next + 1 < b && tok_is(&toks[next], T_NAME, "as") &&
		    toks[next + 1].kind == T_NAME) {
			bind(m, dgm_xstrndup(toks[next + 1].p, toks[next + 1].len), toks[a].line,
			     0, 0, mod, NULL);
			next += 2;
		} else {
			bind(m, dgm_xstrndup(mod, strcspn(mod, ".")), toks[a].line, 0, 0,
			     dgm_xstrndup(mod, strcspn(mod, ".")), NULL);
			free(mod);
		}
		if (next < b && !tok_is(&toks[next], T_OP, ","))
			return;
		i = next + 1;
	}
}

/* The absolute module of `from .x import` inside module m, or NULL. */
static char *relative_base(const pymod *m, size_t dots, const char *rest)
{
	char *base;

	if (!m->name)
		return NULL;  /* a revision file is loaded from its path, not a package */
	base = dgm_xstrdup(m->name);
	for (size_t i = m->package ? 1 : 0; i < dots; i++) {
		char *dot = strrchr(base, '.');

		if (!dot) {
			free(base);
			return NULL;
		}
		*dot = '\0';
	}
	if (rest) {
		char *full = dgm_xasprintf("%s.%s", base, rest);

		free(base);
		base = full;
	}
	return base;
}

/* `from [.]mod import x [as y], ...` (also in parentheses). */
static void from_stmt(pymod *m, const tok *toks, size_t a, size_t b)
{
	size_t i = a + 1, dots = 0;
	char *mod = NULL, *rest = NULL;

	for (; i < b && toks[i].kind == T_OP && (tok_is(&toks[i], T_OP, ".") ||
						  tok_is(&toks[i], T_OP, "...")); i++)
		dots += toks[i].len;
	if (i < b && toks[i].kind == T_NAME && !tok_is(&toks[i], T_NAME, "import"))
		rest = dotted(toks, i, b, &i);
	mod = dots ? relative_base(m, dots, rest) : rest;
	if (dots)
		free(rest);
	if (!mod || i >= b || !tok_is(&toks[i], T_NAME, "import")) {
		free(mod);
		return;
	}
	for (i++; i < b; i++) {
		const tok *name = &toks[i], *alias = name;

		if (tok_is(name, T_OP, "(") || tok_is(name, T_OP, ")") || tok_is(name, T_OP, ","))
			continue;
		if (name->kind != T_NAME)
			break;  /* `*`: names we cannot know; left unbound */
		if (i + 2 < b && tok_is(&toks[i + 1], T_NAME, "as") && toks[i + 2].kind == T_NAME) {
			alias = &toks[i + 2];
			i += 2;
		}
		bind(m, dgm_xstrndup(alias->p, alias->len), toks[a].line, 0, 0, dgm_xstrdup(mod),
		     dgm_xstrndup(name->p, name->len));
	}
	free(mod);
}

/* ---- statements ------------------------------------------------------- */

enum { K_REVISION, K_DOWN, K_LABELS, K_DEPENDS, K_COUNT };
static const char *const key_names[K_COUNT] = {
	"revision", "down_revision", "branch_labels", "depends_on"
};

typedef struct assign {
	bool set;
	size_t a, b;  /* the value's tokens */
	value v;
	int line;
} assign;

static int key_of(const tok *t)
{
	for (int k = 0; k < K_COUNT; k++)
		if (is_name(t, key_names[k]))
			return k;
	return -1;
}

/* Target toks[t] (a lone name) gets the value toks[a, b). */
static void target(assign *as, pymod *m, const tok *toks, size_t t, size_t a, size_t b)
{
	int key = as ? key_of(&toks[t]) : -1;

	if (key >= 0) {
		as[key].set = true;
		as[key].line = toks[t].line;
		as[key].a = a;
		as[key].b = b;
	}
	bind(m, dgm_xstrndup(toks[t].p, toks[t].len), toks[t].line, a, b, NULL, NULL);
}

/* A statement toks[a, b): record the names it binds (and, in a revision
 * file, the keys we care about). */
static void statement(assign *as, pymod *m, const tok *toks, size_t a, size_t b)
{
	size_t eq[16], neq = 0, seg = a;
	int depth = 0;

	if (is_name(&toks[a], "import"))
		return import_stmt(m, toks, a, b);
	if (is_name(&toks[a], "from"))
		return from_stmt(m, toks, a, b);
	if (b - a >= 2 && toks[a].kind == T_NAME && is_op(&toks[a + 1], ":")) {
		/* annotated: NAME ':' annotation '=' value */
		for (size_t i = a + 2; i < b; i++) {
			if (is_open(&toks[i]))
				depth++;
			else if (is_close(&toks[i]))
				depth--;
			else if (depth == 0 && is_op(&toks[i], "=")) {
				target(as, m, toks, a, i + 1, b);
				return;
			}
		}
		return;
	}
	for (size_t i = a; i < b && neq < 16; i++) {
		if (is_open(&toks[i]))
			depth++;
		else if (is_close(&toks[i]))
			depth--;
		else if (depth == 0 && is_op(&toks[i], "="))
			eq[neq++] = i;
	}
	for (size_t k = 0; k < neq; k++) {
		if (eq[k] == seg + 1 && toks[seg].kind == T_NAME)
			target(as, m, toks, seg, eq[neq - 1] + 1, b);
		seg = eq[k] + 1;
	}
}

static void strip_doc(char *s)
{
	size_t len = strlen(s), start = 0;

	while (len && (isspace((unsigned char)s[len - 1]) ||
		       ((unsigned char)s[len - 1] >= 0x1c && (unsigned char)s[len - 1] <= 0x1f)))
		len--;
	while (start < len && (isspace((unsigned char)s[start]) ||
			       ((unsigned char)s[start] >= 0x1c && (unsigned char)s[start] <= 0x1f)))
		start++;
	memmove(s, s + start, len - start);
	s[len - start] = '\0';
}

/* Alembic's Script.doc: the stripped docstring up to the first blank
 * line ("\n\n"). */
static char *docstring(const tok *toks, size_t a, size_t b)
{
	dgm_buf s = DGM_BUF_INIT;
	char *doc, *para;

	for (size_t i = a; i < b; i++) {
		if (toks[i].kind != T_STRING || (toks[i].prefix & (STR_BYTES | STR_F))) {
			dgm_buf_free(&s);
			return NULL;
		}
		string_value(&s, &toks[i]);
	}
	doc = dgm_buf_detach(&s);
	strip_doc(doc);
	if ((para = strstr(doc, "\n\n")) != NULL)
		*para = '\0';
	return doc;
}

/* Walk the logical lines; statements at column 0 only. doc may be NULL
 * (an imported module). */
static void statements(assign *as, char **doc, pymod *m)
{
	const tok *toks = m->toks;
	size_t ntoks = m->ntoks, start = 0;
	bool first = true;

	while (start < ntoks) {
		size_t end = start, a;

		while (toks[end].kind != T_NEWLINE)
			end++;
		a = start;
		for (size_t i = start; i <= end; i++) {
			if (i < end && !is_op(&toks[i], ";"))
				continue;
			if (i > a && toks[start].col == 0) {
				if (first && doc)
					*doc = docstring(toks, a, i);
				statement(as, m, toks, a, i);
			}
			if (i > a)
				first = false;
			a = i + 1;
		}
		start = end + 1;
	}
}

/* Python reads source with universal newlines; a UTF-8 BOM is skipped. */
static char *normalize_newlines(const char *text, size_t len, size_t *out_len)
{
	char *out = dgm_xmalloc(len + 1);
	size_t o = 0, i = 0;

	if (len >= 3 && !memcmp(text, "\xEF\xBB\xBF", 3))
		i = 3;
	for (; i < len; i++) {
		if (text[i] == '\r') {
			out[o++] = '\n';
			if (i + 1 < len && text[i + 1] == '\n')
				i++;
		} else {
			out[o++] = text[i];
		}
	}
	out[o] = '\0';
	*out_len = o;
	return out;
}

/* Lex TEXT (the file PATH) into a new pymod; its bindings (and, with
 * `as`, the keys) are recorded. */
static int pymod_read(pymod **out, const char *path, const char *text, size_t len,
		      assign *as, char **doc, dgm_error *err)
{
	pymod *m = dgm_xcalloc(1, sizeof(*m));
	lexer lx;
	size_t n;

	*out = NULL;
	memset(&lx, 0, sizeof(lx));
	m->path = dgm_xstrdup(path);
	m->src = normalize_newlines(text, len, &n);
	lx.path = path;
	lx.s = m->src;
	lx.n = n;
	lx.line = 1;
	if (lex(&lx, err) != 0) {
		free(lx.toks);
		pymod_free(m);
		return -1;
	}
	m->toks = lx.toks;
	m->ntoks = lx.ntoks;
	statements(as, doc, m);
	*out = m;
	return 0;
}

/* ---- evaluating a value: literals, and names of the project ---------- */

/* What evaluating one key needs. */
typedef struct ectx {
	dgm_alembic_pyenv *env;  /* NULL: names of the file itself only */
	bool named;              /* a name was followed */
	dgm_error *err;
} ectx;

static int eval_value(value *out, ectx *c, pymod *m, size_t a, size_t b, bool force_seq,
		      int line, const char *what, int depth);
static int eval_name(value *out, ectx *c, pymod *m, const char *name, int line, int depth);

static int not_literal(ectx *c, const pymod *m, int line, const char *what)
{
	return dgm_error_set(c->err, DGM_E_ALEMBIC, "%s:%d: the value of '%s' is not a literal "
			     "(a string, None, or a tuple or list of strings)", m->path, line, what);
}

static pymod *cached(dgm_alembic_pyenv *env, const char *path)
{
	for (size_t i = 0; i < env->nmods; i++)
		if (!strcmp(env->mods[i]->path, path))
			return env->mods[i];
	return NULL;
}

/* Read the module file PATH (kind: 1 a file, 2 a namespace folder). */
static int load_module(pymod **out, dgm_alembic_pyenv *env, const char *path, int kind,
		       const char *name, dgm_error *err)
{
	dgm_buf text = DGM_BUF_INIT;
	int ret = 0;

	if ((*out = cached(env, path)) != NULL)
		return 0;
	if (kind == 2) {
		*out = dgm_xcalloc(1, sizeof(**out));
		(*out)->path = dgm_xstrdup(path);
	} else if ((ret = env->tree->read(env->tree->ctx, path, &text, err)) == 0) {
		ret = pymod_read(out, path, dgm_buf_cstr(&text), text.len, NULL, NULL, err);
	}
	dgm_buf_free(&text);
	if (ret != 0)
		return -1;
	(*out)->name = dgm_xstrdup(name);
	(*out)->package = kind == 2 || (strlen(path) >= strlen("__init__.py") &&
					!strcmp(path + strlen(path) - strlen("__init__.py"),
						"__init__.py"));
	env->mods = dgm_xrealloc(env->mods, (env->nmods + 1) * sizeof(*env->mods));
	env->mods[env->nmods++] = *out;
	return 0;
}

/* The file of module NAME under the roots, as Python's path finder
 * looks: ROOT/a/b.py, ROOT/a/b/__init__.py, then a namespace folder.
 * *out NULL when there is none (no error). */
static int find_module(pymod **out, dgm_alembic_pyenv *env, const char *name, dgm_error *err)
{
	char *rel = dgm_xstrdup(name);
	int ret = 0;

	*out = NULL;
	for (char *p = rel; *p; p++)
		if (*p == '.')
			*p = '/';
	for (size_t r = 0; env && !*out && ret == 0 && r < env->nroots; r++) {
		char *py = dgm_xasprintf("%s.py", rel), *init = dgm_xasprintf("%s/__init__.py", rel);
		char *cand[3] = { dgm_alembic_path_join(env->roots[r], py),
				  dgm_alembic_path_join(env->roots[r], init),
				  dgm_alembic_path_join(env->roots[r], rel) };

		for (int i = 0; i < 3 && !*out && ret == 0; i++) {
			int kind = cand[i] ? env->tree->kind(env->tree->ctx, cand[i]) : 0;

			if (kind == (i == 2 ? 2 : 1))
				ret = load_module(out, env, cand[i], kind, name, err);
		}
		for (int i = 0; i < 3; i++)
			free(cand[i]);
		free(py);
		free(init);
	}
	free(rel);
	return ret;
}

static int no_module(ectx *c, const pymod *from, int line, const char *name)
{
	dgm_buf roots = DGM_BUF_INIT;

	for (size_t i = 0; c->env && i < c->env->nroots; i++)
		dgm_buf_printf(&roots, "%s'%s'", i ? ", " : "", *c->env->roots[i] ?
			       c->env->roots[i] : ".");
	dgm_error_set(c->err, DGM_E_ALEMBIC, "%s:%d: module '%s' is not a file of the project "
		      "(looked under: %s)", from->path, line, name, roots.len ? roots.ptr : "none");
	dgm_error_hint(c->err, "dgmigrate reads names only from the project's own modules: "
		       "write the value as a literal, or list the module's root folder in "
		       "prepend_sys_path");
	dgm_buf_free(&roots);
	return -1;
}

static int eval_binding(value *out, ectx *c, pymod *m, const binding *b, int depth);

/* Attribute ATTR of module MOD (imported by `from` at from:line). */
static int module_attr(value *out, ectx *c, const pymod *from, int line, const char *mod,
		       const char *attr, int depth)
{
	char *sub = dgm_xasprintf("%s.%s", mod, attr);
	pymod *m, *s;
	const binding *b;
	int ret = -1;

	if (find_module(&m, c->env, mod, c->err) != 0)
		goto out;
	if (!m) {
		no_module(c, from, line, mod);
		goto out;
	}
	if ((b = lookup(m, attr, INT_MAX)) != NULL) {
		ret = eval_binding(out, c, m, b, depth + 1);
		goto out;
	}
	if (find_module(&s, c->env, sub, c->err) != 0)
		goto out;
	if (s) {
		out->kind = V_MOD;
		out->str = sub;
		sub = NULL;
		ret = 0;
		goto out;
	}
	dgm_error_set(c->err, DGM_E_ALEMBIC, "%s:%d: '%s' is not assigned at the top level of "
		      "'%s' (module '%s')", from->path, line, attr, m->path, mod);
out:
	free(sub);
	return ret;
}

static int eval_binding(value *out, ectx *c, pymod *m, const binding *b, int depth)
{
	if (depth > MAX_NAME_DEPTH)
		return dgm_error_set(c->err, DGM_E_ALEMBIC, "%s:%d: '%s': more than %d names lead "
				     "to its value (an import cycle?)", m->path, b->line, b->name,
				     MAX_NAME_DEPTH);
	if (!b->module)
		return eval_value(out, c, m, b->a, b->b, false, b->line, b->name, depth);
	if (!b->attr) {
		out->kind = V_MOD;
		out->str = dgm_xstrdup(b->module);
		return 0;
	}
	return module_attr(out, c, m, b->line, b->module, b->attr, depth);
}

/* NAME (dotted) used at line in m: a name bound at m's top level (in a
 * revision file: before that line, as Python runs it), then attributes
 * of the modules it leads to. */
static int eval_name(value *out, ectx *c, pymod *m, const char *name, int line, int depth)
{
	size_t len = strcspn(name, ".");
	char *first = dgm_xstrndup(name, len);
	const char *rest = name[len] ? name + len + 1 : NULL;
	const binding *b = lookup(m, first, m->name ? INT_MAX : line);
	int ret;

	c->named = true;
	free(first);
	if (!b)
		return dgm_error_set(c->err, DGM_E_ALEMBIC, "%s:%d: name '%.*s' is not assigned or "
				     "imported at the top level of the file", m->path, line,
				     (int)len, name);
	ret = eval_binding(out, c, m, b, depth + 1);
	while (ret == 0 && rest) {
		char *seg = dgm_xstrndup(rest, strcspn(rest, "."));
		char *mod = out->str;

		rest = rest[strlen(seg)] ? rest + strlen(seg) + 1 : NULL;
		if (out->kind != V_MOD) {
			ret = dgm_error_set(c->err, DGM_E_ALEMBIC, "%s:%d: '%s': '%s' is not a "
					    "module", m->path, line, name, seg);
		} else {
			out->str = NULL;
			value_free(out);
			ret = module_attr(out, c, m, line, mod, seg, depth + 1);
		}
		free(mod);
		free(seg);
	}
	if (ret == 0 && out->kind == V_MOD)
		ret = dgm_error_set(c->err, DGM_E_ALEMBIC, "%s:%d: '%s' is a module, not a value",
				    m->path, line, name);
	if (ret != 0)
		value_free(out);
	return ret;
}

/* One element: strings, None, a bracketed sequence or a (dotted) name.
 * *next gets the token after it. */
static int eval_elem(value *out, ectx *c, pymod *m, size_t a, size_t b, size_t *next, int line,
		     const char *what, int depth)
{
	const tok *toks = m->toks;

	memset(out, 0, sizeof(*out));
	if (a >= b)
		return not_literal(c, m, line, what);
	if (toks[a].kind == T_STRING) {
		dgm_buf s = DGM_BUF_INIT;

		for (; a < b && toks[a].kind == T_STRING; a++) {
			if (toks[a].prefix & (STR_BYTES | STR_F)) {
				dgm_buf_free(&s);
				return not_literal(c, m, line, what);
			}
			string_value(&s, &toks[a]);
		}
		out->kind = V_STR;
		out->str = dgm_buf_detach(&s);
		*next = a;
		return 0;
	}
	if (is_name(&toks[a], "None")) {
		out->kind = V_NONE;
		*next = a + 1;
		return 0;
	}
	if (is_open(&toks[a])) {
		size_t close = toks[a].match;
		bool paren = is_op(&toks[a], "(");

		/* recursion is bounded by MAX_NESTING */
		if (close == 0 || close >= b)
			return not_literal(c, m, line, what);
		*next = close + 1;
		if (close == a + 1) {
			out->kind = V_SEQ;
			return 0;
		}
		return eval_value(out, c, m, a + 1, close, !paren, line, what, depth);
	}
	if (toks[a].kind == T_NAME) {
		char *name = dotted(toks, a, b, next);
		int ret;

		/* a call, subscript or operator: computed */
		if (*next < b && !is_op(&toks[*next], ",")) {
			free(name);
			return not_literal(c, m, line, what);
		}
		ret = eval_name(out, c, m, name, toks[a].line, depth);
		free(name);
		return ret;
	}
	return not_literal(c, m, line, what);
}

static void seq_add(value *seq, value *elem)
{
	seq->items = dgm_xrealloc(seq->items, (seq->nitems + 1) * sizeof(*seq->items));
	seq->items[seq->nitems++] = elem->str;
	elem->str = NULL;
}

/* value := elem (',' elem)* [','] ; a comma makes a tuple. With
 * force_seq (inside [] or {}) the result is a sequence anyway; the
 * items of a sequence must be strings. */
static int eval_value(value *out, ectx *c, pymod *m, size_t a, size_t b, bool force_seq,
		      int line, const char *what, int depth)
{
	value seq = { V_SEQ, NULL, NULL, 0 }, elem;
	bool comma = false;
	size_t count = 0;

	memset(out, 0, sizeof(*out));
	while (a < b) {
		if (eval_elem(&elem, c, m, a, b, &a, line, what, depth) != 0)
			goto fail;
		if (a < b && !is_op(&m->toks[a], ",")) {
			value_free(&elem);
			not_literal(c, m, line, what);
			goto fail;
		}
		if (a < b) {
			comma = true;
			a++;
		}
		if (count++ == 0 && a >= b && !comma && !force_seq) {
			*out = elem;
			return 0;
		}
		if (elem.kind != V_STR) {
			value_free(&elem);
			not_literal(c, m, line, what);
			goto fail;
		}
		seq_add(&seq, &elem);
	}
	*out = seq;
	return 0;
fail:
	value_free(&seq);
	return -1;
}

/* ---- from assignments to the revfile ---------------------------------- */

static const char *base_name(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash ? slash + 1 : path;
}

/* Alembic's legacy rule: a file named "<lowercase hex>.py" without a
 * `revision` gets the hex as its id. */
static char *legacy_id(const char *path)
{
	const char *name = base_name(path);
	size_t n = strspn(name, "0123456789abcdef");

	if (n == 0 || strcmp(name + n, ".py") != 0)
		return NULL;
	return dgm_xstrndup(name, n);
}

static void take_list(char ***out, size_t *n, value *v)
{
	*out = NULL;
	*n = 0;
	if (v->kind == V_STR) {
		*out = dgm_xmalloc(sizeof(**out));
		(*out)[0] = v->str;
		*n = 1;
		v->str = NULL;
	} else if (v->kind == V_SEQ) {
		*out = v->items;
		*n = v->nitems;
		v->items = NULL;
		v->nitems = 0;
	}
}

/* The way to let Alembic read the graph, as the command at hand takes it. */
static const char *ask_text(const dgm_alembic_pyenv *env)
{
	if (env && env->ask)
		return env->ask;
	return "'heads' and 'graph' take --read-with-alembic, a plan takes "
	       "'alembic.read_graph: alembic'";
}

/* Evaluate the last assignment of each key: a literal, or names of the
 * file and of the project's modules that lead to one. */
static int eval_keys(assign *as, pymod *m, dgm_alembic_pyenv *env, dgm_error *err)
{
	for (int k = 0; k < K_COUNT; k++) {
		ectx c = { env, false, err };

		if (!as[k].set)
			continue;
		if (eval_value(&as[k].v, &c, m, as[k].a, as[k].b, false, as[k].line,
			       key_names[k], 0) == 0)
			continue;
		if (c.named) {
			dgm_error_prefix(err, "%s:%d: cannot read the value of '%s'", m->path,
					 as[k].line, key_names[k]);
			dgm_error_hint(err, "dgmigrate reads literals, and names bound to them in the "
				       "project's own modules; write the value as a literal, list the "
				       "module's root folder in prepend_sys_path, or let Alembic read "
				       "the graph (%s; it imports the project's code)", ask_text(env));
		} else {
			dgm_error_set(err, DGM_E_ALEMBIC, "%s:%d: the value of '%s' is not a literal "
				      "(a string, None, or a tuple or list of strings, or a name "
				      "of the project bound to one)", m->path, as[k].line,
				      key_names[k]);
			dgm_error_hint(err, "dgmigrate reads revision files as text and cannot run "
				       "computed values; write the value as a literal, or let Alembic "
				       "read the graph (%s; it imports the project's code)",
				       ask_text(env));
		}
		return -1;
	}
	return 0;
}

static int take_revision(dgm_alembic_revfile *rf, assign *as, const char *path, dgm_error *err)
{
	if (!as[K_REVISION].set) {
		rf->revision = legacy_id(path);
		if (!rf->revision)
			return dgm_error_set(err, DGM_E_ALEMBIC,
					     "%s: could not determine revision id from filename "
					     "'%s': no 'revision' is assigned", path, base_name(path));
		rf->revision_from_name = true;
		dgm_debug("%s: no 'revision' assignment, id '%s' taken from the file name",
			  path, rf->revision);
		return 0;
	}
	if (as[K_REVISION].v.kind != V_STR)
		return dgm_error_set(err, DGM_E_ALEMBIC, "%s:%d: 'revision' must be a string",
				     path, as[K_REVISION].line);
	rf->revision = as[K_REVISION].v.str;
	as[K_REVISION].v.str = NULL;
	rf->revision_line = as[K_REVISION].line;
	if (strpbrk(rf->revision, "@-+") || !*rf->revision)
		return dgm_error_set(err, DGM_E_ALEMBIC,
				     "%s:%d: revision identifier '%s' is empty or holds '@', '-' or '+'",
				     path, rf->revision_line, rf->revision);
	return 0;
}

static bool holds(char **list, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(list[i], s) == 0)
			return true;
	return false;
}

static int take_relations(dgm_alembic_revfile *rf, assign *as, const char *path, dgm_error *err)
{
	if (!as[K_DOWN].set)
		return dgm_error_set(err, DGM_E_ALEMBIC, "%s: no 'down_revision' is assigned "
				     "(Alembic fails on this file)", path);
	rf->has_down = true;
	rf->down_line = as[K_DOWN].line;
	take_list(&rf->down, &rf->ndown, &as[K_DOWN].v);
	/* Alembic reads "" and () as None */
	if (rf->ndown == 1 && !*rf->down[0]) {
		free(rf->down[0]);
		rf->ndown = 0;
	}
	rf->depends_line = as[K_DEPENDS].line;
	take_list(&rf->depends, &rf->ndepends, &as[K_DEPENDS].v);
	rf->labels_line = as[K_LABELS].line;
	take_list(&rf->labels, &rf->nlabels, &as[K_LABELS].v);
	if (holds(rf->down, rf->ndown, rf->revision))
		return dgm_error_set(err, DGM_E_ALEMBIC,
				     "%s:%d: self-loop is detected in revisions (%s)",
				     path, rf->down_line, rf->revision);
	if (holds(rf->depends, rf->ndepends, rf->revision))
		return dgm_error_set(err, DGM_E_ALEMBIC,
				     "%s:%d: dependency self-loop is detected in revisions (%s)",
				     path, rf->depends_line, rf->revision);
	return 0;
}

/* The roots Python would find the project's modules under, for the
 * revision file PATH: the folder above the outermost package that holds
 * it (the nearest folder with an __init__.py, then up while its parent
 * is one too), then the ini's prepend_sys_path. */
static void set_roots(dgm_alembic_pyenv *env, const char *path)
{
	char *dir = dgm_alembic_path_join(path, ".."), *top = NULL;

	for (size_t i = 0; i < env->nroots; i++)
		free(env->roots[i]);
	env->nroots = 0;
	env->roots = dgm_xrealloc(env->roots, (env->nsys_path + 1) * sizeof(*env->roots));
	while (dir) {
		char *init = dgm_alembic_path_join(dir, "__init__.py");
		bool pkg = env->tree->kind(env->tree->ctx, init) == 1;
		char *up = *dir ? dgm_alembic_path_join(dir, "..") : NULL;

		free(init);
		if (pkg) {
			free(top);
			top = up ? dgm_xstrdup(up) : NULL;
		} else if (top) {
			free(up);
			break;
		}
		free(dir);
		dir = up;
	}
	free(dir);
	if (top)
		env->roots[env->nroots++] = top;
	for (size_t i = 0; i < env->nsys_path; i++)
		env->roots[env->nroots++] = dgm_xstrdup(env->sys_path[i]);
}

dgm_alembic_pyenv *dgm_alembic_pyenv_new(dgm_tree *tree, char *const *sys_path, size_t n)
{
	dgm_alembic_pyenv *env = dgm_xcalloc(1, sizeof(*env));

	env->tree = tree;
	env->sys_path = dgm_xcalloc(n + 1, sizeof(*env->sys_path));
	for (size_t i = 0; i < n; i++)
		env->sys_path[i] = dgm_xstrdup(sys_path[i]);
	env->nsys_path = n;
	return env;
}

void dgm_alembic_pyenv_set_ask(dgm_alembic_pyenv *env, const char *ask_alembic)
{
	if (env)
		env->ask = ask_alembic;
}

void dgm_alembic_pyenv_free(dgm_alembic_pyenv *env)
{
	if (!env)
		return;
	for (size_t i = 0; i < env->nsys_path; i++)
		free(env->sys_path[i]);
	for (size_t i = 0; i < env->nroots; i++)
		free(env->roots[i]);
	for (size_t i = 0; i < env->nmods; i++)
		pymod_free(env->mods[i]);
	free(env->sys_path);
	free(env->roots);
	free(env->mods);
	free(env);
}

int dgm_alembic_revfile_parse_in(dgm_alembic_revfile *rf, const char *path, const char *text,
				 size_t len, dgm_alembic_pyenv *env, dgm_error *err)
{
	assign as[K_COUNT];
	pymod *m = NULL;
	int ret = -1;

	memset(rf, 0, sizeof(*rf));
	memset(as, 0, sizeof(as));
	rf->path = dgm_xstrdup(path);
	if (pymod_read(&m, path, text, len, as, &rf->doc, err) != 0)
		goto out;
	if (!rf->doc)
		rf->doc = dgm_xstrdup("");
	if (env)
		set_roots(env, path);
	if (eval_keys(as, m, env, err) != 0 || take_revision(rf, as, path, err) != 0 ||
	    take_relations(rf, as, path, err) != 0)
		goto out;
	ret = 0;
out:
	for (int k = 0; k < K_COUNT; k++)
		value_free(&as[k].v);
	pymod_free(m);
	if (ret != 0)
		dgm_alembic_revfile_free(rf);
	return ret;
}

int dgm_alembic_revfile_parse(dgm_alembic_revfile *rf, const char *path, const char *text,
			      size_t len, dgm_error *err)
{
	return dgm_alembic_revfile_parse_in(rf, path, text, len, NULL, err);
}

static void free_list(char **l, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(l[i]);
	free(l);
}

void dgm_alembic_revfile_free(dgm_alembic_revfile *rf)
{
	if (!rf)
		return;
	free(rf->path);
	free(rf->revision);
	free_list(rf->down, rf->ndown);
	free_list(rf->depends, rf->ndepends);
	free_list(rf->labels, rf->nlabels);
	free(rf->doc);
	memset(rf, 0, sizeof(*rf));
}
