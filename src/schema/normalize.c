/* normalize.c - definitions in a normal form, so that an expression
 * PostgreSQL deparses one way when it is created and another way after a
 * dump and restore compares equal. */
#include <ctype.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "dgm/buf.h"
#include "dgm/fingerprint.h"

/* Index just past the quoted literal or identifier that starts at s[i]
 * ('...' with '' doubled, E'...' with backslash escapes, "..." with ""
 * doubled). An unterminated one runs to the end. */
static size_t skip_quoted(const char *s, size_t i)
{
	char q = s[i];
	bool esc = q == '\'' && i > 0 && (s[i - 1] == 'E' || s[i - 1] == 'e') &&
		   (i < 2 || !(isalnum((unsigned char)s[i - 2]) || s[i - 2] == '_'));

	for (i++; s[i]; i++) {
		if (esc && s[i] == '\\' && s[i + 1]) {
			i++;
			continue;
		}
		if (s[i] == q) {
			if (s[i + 1] == q) {
				i++;
				continue;
			}
			return i + 1;
		}
	}
	return i;
}

static bool word_char(char c)
{
	return isalnum((unsigned char)c) || c == '_' || c == '"' || c == '\'' ||
	       (unsigned char)c >= 0x80;
}

/* Pass 1: drop parentheses and collapse whitespace outside quotes. A
 * dropped parenthesis separates like a space only between two words
 * ("lower(email)" -> "lower email", "(status)::text" -> "status::text");
 * no space after '[' nor before ']' or ','. */
static void strip(dgm_buf *out, const char *s)
{
	bool space = false, paren = false;

	for (size_t i = 0; s[i];) {
		char c = s[i], prev = out->len ? out->ptr[out->len - 1] : '\0';

		if (c == '(' || c == ')' || isspace((unsigned char)c)) {
			paren |= c == '(' || c == ')';
			space |= isspace((unsigned char)c) != 0;
			i++;
			continue;
		}
		if ((space || (paren && word_char(prev) && word_char(c))) && prev && prev != '[' &&
		    c != ']' && c != ',')
			dgm_buf_putc(out, ' ');
		space = paren = false;
		if (c == '\'' || c == '"') {
			size_t end = skip_quoted(s, i);

			dgm_buf_put(out, s + i, end - i);
			i = end;
			continue;
		}
		dgm_buf_putc(out, c);
		i++;
	}
}

/* The ']' that closes the '[' at s[open], or 0. */
static size_t closing_bracket(const char *s, size_t open)
{
	int depth = 0;

	for (size_t i = open; s[i];) {
		if (s[i] == '\'' || s[i] == '"') {
			i = skip_quoted(s, i);
			continue;
		}
		if (s[i] == '[')
			depth++;
		else if (s[i] == ']' && --depth == 0)
			return i;
		i++;
	}
	return 0;
}

/* Length of the type name in "::TYPE[]" at s (s points at "::"), or 0
 * when s does not hold such a cast to an array type. */
static size_t array_cast_type(const char *s)
{
	size_t n = 0;

	if (strncmp(s, "::", 2) != 0)
		return 0;
	s += 2;
	while (isalnum((unsigned char)s[n]) || s[n] == '_' || s[n] == ' ' || s[n] == '.' ||
	       s[n] == '"')
		n++;
	if (n == 0 || s[n - 1] == ' ' || strncmp(s + n, "[]", 2) != 0)
		return 0;
	return n;
}

/* Rewrite ARRAY[e1, e2]::T[] (s[p] is the 'A') as ARRAY[e1::T, e2::T]
 * into out; false (out untouched) when the array is not cast so. */
static bool push_cast(dgm_buf *out, const char *s, size_t p)
{
	size_t open = p + 5, close = closing_bracket(s, open), tlen, start;

	if (!close || !(tlen = array_cast_type(s + close + 1)))
		return false;
	dgm_buf_put(out, s, open + 1);
	start = open + 1;
	for (size_t i = start; i <= close;) {
		if (s[i] == '\'' || s[i] == '"') {
			i = skip_quoted(s, i);
			continue;
		}
		if (s[i] == '[' && i < close) {
			size_t inner = closing_bracket(s, i);

			i = inner > i ? inner + 1 : close;
			continue;
		}
		if (s[i] == ',' || i == close) {
			if (i > start) {
				dgm_buf_put(out, s + start, i - start);
				dgm_buf_printf(out, "::%.*s", (int)tlen, s + close + 3);
			}
			dgm_buf_putc(out, s[i]);
			start = i + 1;
		}
		i++;
	}
	dgm_buf_puts(out, s + close + 3 + tlen + 2);
	return true;
}

/* Whether "ARRAY[" starts a token at s[i]. */
static bool array_at(const char *s, size_t i)
{
	return !strncmp(s + i, "ARRAY[", 6) &&
	       (i == 0 || !(isalnum((unsigned char)s[i - 1]) || s[i - 1] == '_'));
}

/* Pass 2: push casts of whole arrays into their elements, left to right
 * (arrays nested in a rewritten one are still ahead of the scan). */
static char *push_array_casts(char *s)
{
	for (size_t i = 0; s[i];) {
		dgm_buf b = DGM_BUF_INIT;

		if (s[i] == '\'' || s[i] == '"') {
			i = skip_quoted(s, i);
			continue;
		}
		if (array_at(s, i) && push_cast(&b, s, i)) {
			free(s);
			s = dgm_buf_detach(&b);
		}
		i += array_at(s, i) ? 6 : 1;
	}
	return s;
}

char *dgm_fingerprint_normalize(const char *def)
{
	dgm_buf b = DGM_BUF_INIT;

	strip(&b, def ? def : "");
	return push_array_casts(dgm_buf_detach(&b));
}
