/* source.c - the line of a revision file where a finding's statement
 * comes from: the op.* call (or op.execute) in its upgrade() or
 * downgrade() that names the finding's table, index, column or
 * constraint. Python is not parsed: calls are found by their name and
 * read to their closing parenthesis, which is all it takes for the
 * calls Alembic's autogenerate and people write. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dgm/buf.h"
#include "dgm/lint.h"

/* The op.* functions each rule's statement comes from. */
static const struct {
	const char *rule;
	const char *ops[4];
} rule_ops[] = {
	{ "add-index-non-concurrent", { "create_index" } },
	{ "drop-index-non-concurrent", { "drop_index" } },
	{ "concurrently-in-transaction", { "create_index", "drop_index" } },
	{ "add-column-volatile-default", { "add_column" } },
	{ "add-column-not-null-no-default", { "add_column" } },
	{ "alter-column-type", { "alter_column" } },
	{ "set-not-null", { "alter_column" } },
	{ "add-foreign-key-validated", { "create_foreign_key", "add_column" } },
	{ "add-check-validated", { "create_check_constraint" } },
	{ "add-unique-without-index", { "create_unique_constraint", "create_primary_key",
					 "add_column" } },
	{ "rename-column", { "alter_column" } },
	{ "rename-table", { "rename_table" } },
	{ "drop-column", { "drop_column" } },
	{ "drop-table", { "drop_table" } },
};

#define MAX_NAMES 8
#define MAX_WORDS 16

typedef struct want {
	const char *const *ops;
	char verb[16];               /* the statement's first word: an op.execute must say it */
	char *names[MAX_NAMES];      /* the table and the names quoted in the detail */
	size_t nnames;
	char *words[MAX_WORDS];      /* the statement's words: which of two op.execute */
	size_t nwords;
} want;

static void add_name(want *w, const char *s, size_t n)
{
	const char *dot = memchr(s, '.', n);

	/* "schema.name": the file says the name (schema= apart) */
	if (dot) {
		n -= (size_t)(dot + 1 - s);
		s = dot + 1;
	}
	if (n && w->nnames < MAX_NAMES)
		w->names[w->nnames++] = dgm_xstrndup(s, n);
}

/* The statement's distinct words of 3 or more characters: two op.execute
 * calls with the same verb and table are told apart by the rest. */
static void add_words(want *w, const char *stmt)
{
	for (const char *p = stmt; p && *p && w->nwords < MAX_WORDS;) {
		size_t n = 0;
		bool seen = false;

		while (p[n] && (isalnum((unsigned char)p[n]) || p[n] == '_'))
			n++;
		if (!n) {
			p++;
			continue;
		}
		for (size_t i = 0; i < w->nwords && !seen; i++)
			seen = strlen(w->words[i]) == n && !strncasecmp(w->words[i], p, n);
		if (n >= 3 && !seen)
			w->words[w->nwords++] = dgm_xstrndup(p, n);
		p += n;
	}
}

static void want_init(want *w, const dgm_lint_finding *f)
{
	static const char *const none[] = { NULL };

	memset(w, 0, sizeof(*w));
	w->ops = none;
	for (size_t i = 0; i < sizeof(rule_ops) / sizeof(rule_ops[0]); i++)
		if (!strcmp(rule_ops[i].rule, f->rule->name))
			w->ops = rule_ops[i].ops;
	if (f->stmt) {
		size_t n = 0;

		while (isalpha((unsigned char)f->stmt[n]) && n + 1 < sizeof(w->verb)) {
			w->verb[n] = (char)toupper((unsigned char)f->stmt[n]);
			n++;
		}
	}
	add_words(w, f->stmt);
	if (f->table)
		add_name(w, f->table, strlen(f->table));
	for (const char *p = f->detail ? strchr(f->detail, '\'') : NULL; p;) {
		const char *end = strchr(p + 1, '\'');

		if (!end)
			break;
		add_name(w, p + 1, (size_t)(end - p - 1));
		p = strchr(end + 1, '\'');
	}
}

static void want_free(want *w)
{
	for (size_t i = 0; i < w->nnames; i++)
		free(w->names[i]);
	for (size_t i = 0; i < w->nwords; i++)
		free(w->words[i]);
}

/* [*start, *end): the body of `def func(` at the start of a line. */
static bool body(const char *text, const char *func, const char **start, const char **end)
{
	size_t n = strlen(func);

	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
		if (strncmp(p, "def ", 4) || strncmp(p + 4, func, n) || p[4 + n] != '(')
			continue;
		*start = p;
		for (p = strchr(p, '\n'); p && p[1]; p = strchr(p + 1, '\n'))
			if (!strncmp(p + 1, "def ", 4) || !strncmp(p + 1, "async def ", 10))
				break;
		*end = p ? p + 1 : text + strlen(text);
		return true;
	}
	return false;
}

/* The end of the call whose '(' is at p: its matching ')', strings
 * stepped over; or lim. */
static const char *call_end(const char *p, const char *lim)
{
	int depth = 0;
	char quote = 0;

	for (; p < lim; p++) {
		if (quote) {
			if (*p == '\\' && p + 1 < lim)
				p++;
			else if (*p == quote)
				quote = 0;
		} else if (*p == '"' || *p == '\'')
			quote = *p;
		else if (*p == '(')
			depth++;
		else if (*p == ')' && --depth == 0)
			return p + 1;
	}
	return lim;
}

static bool ident_char(char c)
{
	return isalnum((unsigned char)c) || c == '_';
}

/* Whether name is in [p, end) as a whole word. */
static bool has_word(const char *p, const char *end, const char *name)
{
	size_t n = strlen(name);

	for (const char *q = p; (q = memmem(q, (size_t)(end - q), name, n)); q++)
		if ((q == p || !ident_char(q[-1])) && (q + n >= end || !ident_char(q[n])))
			return true;
	return false;
}

/* Whether the upper-case word is in [p, end), in any case. */
static bool has_word_ci(const char *p, const char *end, const char *word)
{
	size_t n = strlen(word);

	for (const char *q = p; q + n <= end; q++)
		if (!strncasecmp(q, word, n) && (q == p || !ident_char(q[-1])) &&
		    (q + n >= end || !ident_char(q[n])))
			return true;
	return false;
}

/* How well the call named op, at [p, end), fits: 0 not at all. */
static int score(const want *w, const char *op, const char *p, const char *end)
{
	int s = 0, names = 0;

	for (int i = 0; w->ops[i] && !s; i++)
		if (!strcmp(op, w->ops[i]))
			s = 2;
	if (!s && !strcmp(op, "execute") && (!*w->verb || has_word_ci(p, end, w->verb)))
		s = 1;
	if (!s)
		return 0;
	for (size_t i = 0; i < w->nnames; i++)
		names += has_word(p, end, w->names[i]);
	if (w->nnames && !names)
		return 0;
	s = (MAX_WORDS + 1) * (s + 2 * names);
	/* among op.execute calls alike so far, the one saying more of it */
	if (!strcmp(op, "execute"))
		for (size_t i = 0; i < w->nwords; i++)
			s += has_word_ci(p, end, w->words[i]);
	return s;
}

/* The ".NAME(" call at p (after the dot), if any: its name into op. */
static bool call_at(const char *p, char *op, size_t len)
{
	size_t n = 0;

	while (ident_char(p[n]) && n + 1 < len)
		n++;
	if (!n || p[n] != '(')
		return false;
	memcpy(op, p, n);
	op[n] = '\0';
	return true;
}

int dgm_lint_source_line(const char *text, const char *func, const dgm_lint_finding *f)
{
	const char *start, *end;
	int best = 0, best_line = 0, line = 1;
	want w;

	if (!text || !body(text, func, &start, &end))
		return 0;
	for (const char *p = text; p < start; p++)
		line += *p == '\n';
	want_init(&w, f);
	for (const char *p = start; p < end; p++) {
		char op[64];
		int s;

		if (*p == '\n')
			line++;
		if (*p != '.' || !call_at(p + 1, op, sizeof(op)))
			continue;
		s = score(&w, op, p, call_end(strchr(p, '('), end));
		if (s > best) {
			best = s;
			best_line = line;
		}
	}
	want_free(&w);
	return best_line;
}
