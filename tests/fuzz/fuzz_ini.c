/* fuzz_ini.c - alembic.ini with configparser's rules (src/alembic/ini.c):
 * parse, then interpolate each option the text seems to set, in the
 * section it seems to be in (a rough scan of the input for "[name]" and
 * "key =" lines; the reader decides what they really are). */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "dgm/alembic.h"
#include "fuzz.h"

/* each get may expand up to 64 Ki references: a few dozen per input */
#define MAX_GETS 32

typedef struct get {
	char *sect, *key;
} get;

static char *trimmed(const char *p, size_t len)
{
	while (len && isspace((unsigned char)*p)) {
		p++;
		len--;
	}
	while (len && isspace((unsigned char)p[len - 1]))
		len--;
	return dgm_xstrndup(p, len);
}

static size_t scan(get *gets, const char *text)
{
	char *sect = dgm_xstrdup("alembic");
	size_t n = 0;

	gets[n++] = (get){ dgm_xstrdup("alembic"), dgm_xstrdup("here") };
	for (const char *p = text; *p && n < MAX_GETS;) {
		const char *eol = strchr(p, '\n');
		size_t len = eol ? (size_t)(eol - p) : strlen(p);
		const char *close = memchr(p, ']', len), *delim = NULL;

		for (size_t i = 0; i < len && !delim; i++)
			if (p[i] == '=' || p[i] == ':')
				delim = p + i;
		if (*p == '[' && close) {
			free(sect);
			sect = trimmed(p + 1, (size_t)(close - p - 1));
		} else if (delim) {
			gets[n++] = (get){ dgm_xstrdup(sect), trimmed(p, (size_t)(delim - p)) };
		}
		p += len + (eol != NULL);
	}
	free(sect);
	return n;
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
	get gets[MAX_GETS];
	size_t n = 0;

	if (dgm_alembic_ini_parse(&ini, "alembic.ini", "/srv/app", (const char *)data, size,
				  &err) == 0) {
		n = scan(gets, text);
		for (size_t i = 0; i < n; i++) {
			char *v = NULL;

			(void)dgm_alembic_ini_has_section(ini, gets[i].sect);
			dgm_error_clear(&err);
			if (dgm_alembic_ini_get(&v, ini, gets[i].sect, gets[i].key, &err) == 0)
				free(v);
		}
	}
	for (size_t i = 0; i < n; i++) {
		free(gets[i].sect);
		free(gets[i].key);
	}
	dgm_alembic_ini_free(ini);
	free(text);
	return 0;
}
