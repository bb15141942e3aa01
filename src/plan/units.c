/* units.c - durations ("1h30m") and sizes ("512MiB") in plans. */
#include <ctype.h>
#include <limits.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "dgm/plan.h"

/* Read a run of decimal digits into *v; returns the count read (0 on
 * overflow or when there is no digit). */
static size_t read_number(const char *s, long long *v)
{
	size_t i = 0;

	*v = 0;
	for (; isdigit((unsigned char)s[i]); i++) {
		if (__builtin_mul_overflow(*v, 10, v) ||
		    __builtin_add_overflow(*v, s[i] - '0', v))
			return 0;
	}
	return i;
}

int dgm_parse_duration(const char *s, long *ms)
{
	/* Largest first: "1h30m" reads naturally, "30m1h" is a typo. */
	static const struct { const char *name; long long ms; } units[] = {
		{ "h", 3600000 }, { "m", 60000 }, { "s", 1000 }, { "ms", 1 },
	};
	long long total = 0;
	size_t next_unit = 0;

	if (!s || !*s)
		return -1;
	if (!strcmp(s, "0")) {
		*ms = 0;
		return 0;
	}
	while (*s) {
		long long v, part;
		size_t n = read_number(s, &v), ulen, u;

		if (n == 0)
			return -1;
		s += n;
		for (ulen = 0; isalpha((unsigned char)s[ulen]); ulen++)
			;
		for (u = next_unit; u < 4; u++)
			if (strlen(units[u].name) == ulen && !strncmp(s, units[u].name, ulen))
				break;
		if (ulen == 0 || u == 4)
			return -1;
		if (__builtin_mul_overflow(v, units[u].ms, &part) ||
		    __builtin_add_overflow(total, part, &total) || total > LONG_MAX)
			return -1;
		next_unit = u + 1;
		s += ulen;
	}
	*ms = (long)total;
	return 0;
}

int dgm_parse_size(const char *s, long long *bytes)
{
	/* GNU coreutils' convention: K and KiB are 1024, KB is 1000. */
	static const struct { const char *name; long long mult; } units[] = {
		{ "", 1 }, { "b", 1 },
		{ "k", 1LL << 10 }, { "kib", 1LL << 10 }, { "kb", 1000LL },
		{ "m", 1LL << 20 }, { "mib", 1LL << 20 }, { "mb", 1000000LL },
		{ "g", 1LL << 30 }, { "gib", 1LL << 30 }, { "gb", 1000000000LL },
		{ "t", 1LL << 40 }, { "tib", 1LL << 40 }, { "tb", 1000000000000LL },
	};
	long long v;
	size_t n;

	if (!s)
		return -1;
	n = read_number(s, &v);
	if (n == 0)
		return -1;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcasecmp(s + n, units[i].name))
			continue;
		if (__builtin_mul_overflow(v, units[i].mult, bytes))
			return -1;
		return 0;
	}
	return -1;
}
