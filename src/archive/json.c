/* json.c - a small strict JSON reader for our own files: the caller
 * walks the expected shape, reading each value with the function for
 * its kind (see manifest_read.c). No trees are built. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "archive_int.h"
#include "dgm/buf.h"

int ar_json_fail(ar_json *j, const char *what)
{
	int line = 1;

	for (const char *q = j->start; q < j->p && q < j->end; q++)
		line += *q == '\n';
	return dgm_error_set(j->err, DGM_E_ARCHIVE, "manifest '%s' is not valid: line %d: %s",
			     j->file, line, what);
}

void ar_json_ws(ar_json *j)
{
	while (j->p < j->end && (*j->p == ' ' || *j->p == '\n' || *j->p == '\t' || *j->p == '\r'))
		j->p++;
}

int ar_json_char(ar_json *j, char c)
{
	char what[32];

	ar_json_ws(j);
	if (j->p < j->end && *j->p == c) {
		j->p++;
		return 0;
	}
	snprintf(what, sizeof(what), "expected '%c'", c);
	return ar_json_fail(j, what);
}

bool ar_json_peek(ar_json *j, char c)
{
	ar_json_ws(j);
	if (j->p < j->end && *j->p == c) {
		j->p++;
		return true;
	}
	return false;
}

static int hex4(ar_json *j, unsigned *cp)
{
	*cp = 0;
	for (int i = 0; i < 4; i++, j->p++) {
		char c = j->p < j->end ? *j->p : '\0';
		int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 :
			c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;

		if (v < 0)
			return ar_json_fail(j, "bad \\u escape");
		*cp = *cp << 4 | (unsigned)v;
	}
	return 0;
}

static void put_utf8(dgm_buf *b, unsigned cp)
{
	if (cp < 0x80) {
		dgm_buf_putc(b, (char)cp);
	} else if (cp < 0x800) {
		dgm_buf_putc(b, (char)(0xc0 | cp >> 6));
		dgm_buf_putc(b, (char)(0x80 | (cp & 0x3f)));
	} else if (cp < 0x10000) {
		dgm_buf_putc(b, (char)(0xe0 | cp >> 12));
		dgm_buf_putc(b, (char)(0x80 | ((cp >> 6) & 0x3f)));
		dgm_buf_putc(b, (char)(0x80 | (cp & 0x3f)));
	} else {
		dgm_buf_putc(b, (char)(0xf0 | cp >> 18));
		dgm_buf_putc(b, (char)(0x80 | ((cp >> 12) & 0x3f)));
		dgm_buf_putc(b, (char)(0x80 | ((cp >> 6) & 0x3f)));
		dgm_buf_putc(b, (char)(0x80 | (cp & 0x3f)));
	}
}

/* \uXXXX, with a surrogate pair when it takes two */
static int json_unicode(ar_json *j, dgm_buf *out)
{
	unsigned cp, lo;

	if (hex4(j, &cp))
		return -1;
	if (cp >= 0xdc00 && cp <= 0xdfff)
		return ar_json_fail(j, "lone low surrogate");
	if (cp >= 0xd800 && cp <= 0xdbff) {
		if (j->end - j->p < 2 || j->p[0] != '\\' || j->p[1] != 'u')
			return ar_json_fail(j, "lone high surrogate");
		j->p += 2;
		if (hex4(j, &lo))
			return -1;
		if (lo < 0xdc00 || lo > 0xdfff)
			return ar_json_fail(j, "bad surrogate pair");
		cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
	}
	if (cp == 0)
		return ar_json_fail(j, "\\u0000 in a string");
	put_utf8(out, cp);
	return 0;
}

static int json_escape(ar_json *j, dgm_buf *out)
{
	static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
	const char *hit;

	if (j->p >= j->end)
		return ar_json_fail(j, "unterminated string");
	if (*j->p == 'u') {
		j->p++;
		return json_unicode(j, out);
	}
	hit = strchr(from, *j->p);
	if (!hit || !*j->p)
		return ar_json_fail(j, "bad escape in a string");
	dgm_buf_putc(out, to[hit - from]);
	j->p++;
	return 0;
}

int ar_json_string(ar_json *j, dgm_buf *out)
{
	dgm_buf_clear(out);
	dgm_buf_puts(out, "");
	if (ar_json_char(j, '"'))
		return -1;
	for (;;) {
		unsigned char c;

		if (j->p >= j->end)
			return ar_json_fail(j, "unterminated string");
		c = (unsigned char)*j->p++;
		if (c == '"')
			break;
		if (c < 0x20)
			return ar_json_fail(j, "control character in a string");
		if (c == '\\') {
			if (json_escape(j, out))
				return -1;
		} else {
			dgm_buf_putc(out, (char)c);
		}
	}
	if (!ar_utf8_valid(out->ptr))
		return ar_json_fail(j, "string is not UTF-8");
	return 0;
}

/* An integer: no fraction, no exponent, no leading zeros. */
int ar_json_int(ar_json *j, long long *out)
{
	bool neg;
	unsigned long long v = 0;
	const char *digits;

	ar_json_ws(j);
	neg = j->p < j->end && *j->p == '-';
	j->p += neg;
	digits = j->p;
	while (j->p < j->end && *j->p >= '0' && *j->p <= '9') {
		if (v > (unsigned long long)(9223372036854775807LL / 10))
			return ar_json_fail(j, "number too large");
		v = v * 10 + (unsigned)(*j->p++ - '0');
	}
	if (j->p == digits || (*digits == '0' && j->p - digits > 1))
		return ar_json_fail(j, "expected an integer");
	if (j->p < j->end && (*j->p == '.' || *j->p == 'e' || *j->p == 'E'))
		return ar_json_fail(j, "expected an integer");
	if (v > 9223372036854775807ULL)
		return ar_json_fail(j, "number too large");
	*out = neg ? -(long long)v : (long long)v;
	return 0;
}

int ar_json_object(ar_json *j, ar_json_member_fn fn, void *ctx)
{
	dgm_buf key = DGM_BUF_INIT;
	int ret = -1;

	if (ar_json_char(j, '{'))
		return -1;
	if (ar_json_peek(j, '}'))
		return 0;
	do {
		if (ar_json_string(j, &key) || ar_json_char(j, ':') || fn(j, key.ptr, ctx))
			goto out;
	} while (ar_json_peek(j, ','));
	ret = ar_json_char(j, '}');
out:
	dgm_buf_free(&key);
	return ret;
}

int ar_json_array(ar_json *j, ar_json_item_fn fn, void *ctx)
{
	if (ar_json_char(j, '['))
		return -1;
	if (ar_json_peek(j, ']'))
		return 0;
	do {
		if (fn(j, ctx))
			return -1;
	} while (ar_json_peek(j, ','));
	return ar_json_char(j, ']');
}

static int hex_digit(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* A file name: "key" holds UTF-8, "key_hex" the bytes in hex. */
int ar_json_name(ar_json *j, bool hex, char **out)
{
	dgm_buf b = DGM_BUF_INIT;
	const char *s;

	if (ar_json_string(j, &j->s))
		return -1;
	if (!hex) {
		*out = dgm_xstrdup(j->s.ptr);
		return 0;
	}
	s = j->s.ptr;
	if (j->s.len % 2)
		return ar_json_fail(j, "odd number of hex digits");
	for (size_t i = 0; i < j->s.len; i += 2) {
		int hi = hex_digit(s[i]), lo = hex_digit(s[i + 1]);

		if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
			dgm_buf_free(&b);
			return ar_json_fail(j, "bad hex digits");
		}
		dgm_buf_putc(&b, (char)(hi << 4 | lo));
	}
	dgm_buf_puts(&b, "");
	*out = dgm_buf_detach(&b);
	return 0;
}

int ar_json_sha(ar_json *j, char out[65])
{
	if (ar_json_string(j, &j->s))
		return -1;
	if (j->s.len != 64 || strspn(j->s.ptr, "0123456789abcdef") != 64)
		return ar_json_fail(j, "expected 64 lowercase hex digits");
	memcpy(out, j->s.ptr, 65);
	return 0;
}

/* Track which keys of an object were seen: each at most once. */
int ar_json_key(ar_json *j, unsigned *seen, unsigned bit, const char *key)
{
	char what[128];

	if (*seen & bit) {
		snprintf(what, sizeof(what), "key '%.64s' appears twice", key);
		return ar_json_fail(j, what);
	}
	*seen |= bit;
	return 0;
}

int ar_json_unknown(ar_json *j, const char *key)
{
	char what[128];

	snprintf(what, sizeof(what), "unknown key '%.64s'", key);
	return ar_json_fail(j, what);
}
