/* fuzz_ini.c - alembic.ini with configparser's rules (src/alembic/ini.c):
 * parse, then interpolate every option the text seems to set, in every
 * section it seems to name (a rough scan of the input for "[name]" and
 * "key =" lines; the reader decides what they really are). */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "dgm/alembic.h"
#include "fuzz.h"

#define MAX_NAMES 16

typedef struct names {
	char *v[MAX_NAMES];
	size_t n;
} names;

static void add(names *l, const char *p, size_t len)
{
	while (len && isspace((unsigned char)*p)) {
		p++;
		len--;
	}
	while (len && isspace((unsigned char)p[len - 1]))
		len--;
	if (len && l->n < MAX_NAMES)
		l->v[l->n++] = dgm_xstrndup(p, len);
}

static void scan(names *sects, names *keys, const char *text)
{
	for (const char *p = text; *p;) {
		const char *eol = strchr(p, '\n');
		size_t len = eol ? (size_t)(eol - p) : strlen(p);
		const char *close = memchr(p, ']', len), *delim = NULL;

		if (*p == '[' && close)
			add(sects, p + 1, (size_t)(close - p - 1));
		for (size_t i = 0; i < len && !delim; i++)
			if (p[i] == '=' || p[i] == ':')
				delim = p + i;
		if (*p != '[' && delim)
			add(keys, p, (size_t)(delim - p));
		p += len + (eol != NULL);
	}
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_quiet();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = fuzz_text(data, size);
	dgm_alembic_ini *ini = NULL;
	dgm_error err = DGM_ERROR_INIT;
	names sects = { { 0 }, 0 }, keys = { { 0 }, 0 };

	if (dgm_alembic_ini_parse(&ini, "alembic.ini", "/srv/app", (const char *)data, size,
				  &err) == 0) {
		scan(&sects, &keys, text);
		add(&sects, "alembic", 7);
		add(&keys, "here", 4);
		for (size_t s = 0; s < sects.n; s++) {
			(void)dgm_alembic_ini_has_section(ini, sects.v[s]);
			for (size_t k = 0; k < keys.n; k++) {
				char *v = NULL;

				dgm_error_clear(&err);
				if (dgm_alembic_ini_get(&v, ini, sects.v[s], keys.v[k], &err) == 0)
					free(v);
			}
		}
	}
	for (size_t i = 0; i < sects.n; i++)
		free(sects.v[i]);
	for (size_t i = 0; i < keys.n; i++)
		free(keys.v[i]);
	dgm_alembic_ini_free(ini);
	free(text);
	return 0;
}
