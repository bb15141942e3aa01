/* allow.c - suppression in the revision file itself:
 *     # dgmigrate: allow add-index-non-concurrent -- the table is empty
 * a Python comment line, so the reason travels with the migration. */
#include <string.h>

#include "dgm/buf.h"
#include "dgm/lint.h"

static const char *skip_blanks(const char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}

/* The reason after RULE on one comment line, or NULL. */
static char *line_allows(const char *p, const char *eol, const char *rule)
{
	static const char tag[] = "dgmigrate:";
	size_t n = strlen(rule);

	p = skip_blanks(p);
	if (*p != '#')
		return NULL;
	p = skip_blanks(p + 1);
	if (strncmp(p, tag, sizeof(tag) - 1))
		return NULL;
	p = skip_blanks(p + sizeof(tag) - 1);
	if (strncmp(p, "allow", 5) || (p[5] != ' ' && p[5] != '\t'))
		return NULL;
	p = skip_blanks(p + 5);
	if (strncmp(p, rule, n) || (p + n < eol && p[n] != ' ' && p[n] != '\t' && p[n] != '\r'))
		return NULL;
	p = skip_blanks(p + n);
	if (!strncmp(p, "--", 2))
		p = skip_blanks(p + 2);
	while (eol > p && (eol[-1] == ' ' || eol[-1] == '\r' || eol[-1] == '\t'))
		eol--;
	return dgm_xstrndup(p, eol > p ? (size_t)(eol - p) : 0);
}

char *dgm_lint_allowed(const char *text, const char *rule)
{
	for (const char *p = text; p && *p;) {
		const char *eol = strchrnul(p, '\n');
		char *why = line_allows(p, eol, rule);

		if (why)
			return why;
		p = *eol ? eol + 1 : NULL;
	}
	return NULL;
}
