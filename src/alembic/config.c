/*
 * config.c - the script settings of alembic.ini, as Alembic 1.8's
 * ScriptDirectory.from_config reads them, turned into folders relative
 * to the tree root.
 *
 * A git tree has no absolute paths, so `%(here)s` (Alembic: the ini's
 * absolute folder) becomes opts->root_on_disk + "/" + the ini's folder,
 * or "/" + the ini's folder when no root is given; absolute results are
 * then made relative to that root again. Relative paths are relative to
 * the folder alembic runs in (opts->cwd, by default the ini's folder),
 * as Alembic resolves them against its working folder.
 */
#include <stdlib.h>
#include <string.h>

#include "dgm/alembic.h"
#include "dgm/buf.h"
#include "alembic_int.h"

char *dgm_alembic_path_join(const char *dir, const char *path)
{
	dgm_buf joined = DGM_BUF_INIT, out = DGM_BUF_INIT;
	char *copy, *part, *save = NULL;
	size_t *marks = NULL, nmarks = 0;
	char *ret = NULL;

	dgm_buf_printf(&joined, "%s/%s", dir ? dir : "", path ? path : "");
	copy = dgm_buf_detach(&joined);
	marks = dgm_xmalloc((strlen(copy) + 1) * sizeof(*marks));
	dgm_buf_puts(&out, "");
	for (part = strtok_r(copy, "/", &save); part; part = strtok_r(NULL, "/", &save)) {
		if (strcmp(part, ".") == 0)
			continue;
		if (strcmp(part, "..") == 0) {
			if (nmarks == 0)
				goto out;
			out.len = marks[--nmarks];
			out.ptr[out.len] = '\0';
			continue;
		}
		marks[nmarks++] = out.len;
		if (out.len)
			dgm_buf_putc(&out, '/');
		dgm_buf_puts(&out, part);
	}
	ret = dgm_buf_detach(&out);
out:
	dgm_buf_free(&out);
	free(marks);
	free(copy);
	return ret;
}

typedef struct ctx {
	const char *ini_path;
	char *cwd;          /* tree-relative */
	char *root;         /* root_on_disk without a trailing '/', or NULL */
} ctx;

/* A path from alembic.ini as a tree-relative folder. */
static int resolve(char **out, const ctx *c, const char *what, const char *p, dgm_error *err)
{
	*out = NULL;
	if (p[0] != '/' && strchr(p, ':'))
		return dgm_error_set(err, DGM_E_ALEMBIC, "%s: %s '%s' is a package resource "
				     "('package:folder'), which dgmigrate cannot read; use a path",
				     c->ini_path, what, p);
	if (p[0] != '/')
		*out = dgm_alembic_path_join(c->cwd, p);
	else if (!c->root)
		*out = dgm_alembic_path_join("", p + 1);
	else {
		char *abs = dgm_alembic_path_join("", p + 1);
		size_t rl = strlen(c->root);

		if (abs && rl == 0)
			*out = abs;
		else if (abs && !strncmp(abs, c->root, rl) && (!abs[rl] || abs[rl] == '/'))
			*out = dgm_xstrdup(abs[rl] ? abs + rl + 1 : "");
		if (*out != abs)
			free(abs);
		if (!*out)
			return dgm_error_set(err, DGM_E_ALEMBIC, "%s: %s '%s' is outside the "
					     "repository '/%s'", c->ini_path, what, p, c->root);
	}
	if (!*out)
		return dgm_error_set(err, DGM_E_ALEMBIC, "%s: %s '%s' leads above the "
				     "repository's root", c->ini_path, what, p);
	return 0;
}

static void add_location(dgm_alembic_config *cfg, char *path)
{
	cfg->version_locations = dgm_xrealloc(cfg->version_locations,
					      (cfg->nversion_locations + 1) *
					      sizeof(*cfg->version_locations));
	cfg->version_locations[cfg->nversion_locations++] = path;
}

/* More version folders (or prepend_sys_path folders) than any project
 * has (neutron: about 60); a value that interpolates to tens of
 * thousands is refused, not read. */
#define MAX_VERSION_LOCATIONS 1024

/* One piece more, the array grown by doubling: a 64 KiB value of
 * commas must not cost a copy of the array per piece. */
static void push_part(char ***parts, size_t *n, size_t *cap, const char *s, size_t len)
{
	if (*n == *cap) {
		*cap = *cap ? 2 * *cap : 8;
		*parts = dgm_xrealloc(*parts, *cap * sizeof(**parts));
	}
	(*parts)[(*n)++] = dgm_xstrndup(s, len);
}

/* Alembic 1.8's legacy split when version_path_separator is unset:
 * re.split(r", *|(?: +)") - empty pieces are kept (and mean the
 * working folder, as os.path.abspath("") does). */
static void split_legacy(char ***parts, size_t *n, const char *s)
{
	const char *start = s, *p = s;
	size_t cap = 0;

	*parts = NULL;
	*n = 0;
	for (;;) {
		size_t sep = 0;

		if (*p == ',') {
			sep = 1;
			while (p[sep] == ' ')
				sep++;
		} else if (*p == ' ') {
			while (p[sep] == ' ')
				sep++;
		}
		if (sep || !*p) {
			push_part(parts, n, &cap, start, (size_t)(p - start));
			if (!*p)
				break;
			p += sep;
			start = p;
			continue;
		}
		p++;
	}
}

static void split_char(char ***parts, size_t *n, const char *s, char sep)
{
	size_t cap = 0;

	*parts = NULL;
	*n = 0;
	while (*s) {
		const char *e = strchr(s, sep);
		size_t len = e ? (size_t)(e - s) : strlen(s);

		if (len)
			push_part(parts, n, &cap, s, len);
		s += len + (e ? 1 : 0);
	}
}

static int split_locations(char ***parts, size_t *n, const ctx *c, const char *value,
			   const char *sep, dgm_error *err)
{
	if (!sep)
		split_legacy(parts, n, value);
	else if (!strcmp(sep, "space"))
		split_char(parts, n, value, ' ');
	else if (!strcmp(sep, "os") || !strcmp(sep, ":"))
		split_char(parts, n, value, ':');
	else if (!strcmp(sep, ";"))
		split_char(parts, n, value, ';');
	else if (!strcmp(sep, "newline"))
		/* Alembic >= 1.13; 1.8 rejects it */
		split_char(parts, n, value, '\n');
	else
		return dgm_error_set(err, DGM_E_ALEMBIC, "%s: '%s' is not a valid value for "
				     "version_path_separator; expected 'space', 'os', ':', ';'",
				     c->ini_path, sep);
	return 0;
}

static int read_locations(dgm_alembic_config *cfg, const ctx *c, const dgm_alembic_ini *ini,
			  const char *section, dgm_error *err)
{
	char *value = NULL, *sep = NULL, **parts = NULL;
	size_t n = 0;
	int ret = -1;

	if (dgm_alembic_ini_get(&value, ini, section, "version_locations", err) != 0 ||
	    dgm_alembic_ini_get(&sep, ini, section, "version_path_separator", err) != 0)
		goto out;
	if (!value || !*value) {
		char *p = dgm_alembic_path_join(cfg->script_location, "versions");

		add_location(cfg, p);
		ret = 0;
		goto out;
	}
	cfg->explicit_locations = true;
	if (split_locations(&parts, &n, c, value, sep, err) != 0)
		goto out;
	if (n > MAX_VERSION_LOCATIONS) {
		dgm_error_set(err, DGM_E_ALEMBIC, "%s: version_locations names %zu folders; at most "
			      "%d are read", c->ini_path, n, MAX_VERSION_LOCATIONS);
		dgm_error_hint(err, "list each version folder once, separated as "
			       "version_path_separator says");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		char *p;

		if (resolve(&p, c, "version location", parts[i], err) != 0)
			goto out;
		add_location(cfg, p);
	}
	ret = 0;
out:
	for (size_t i = 0; i < n; i++)
		free(parts[i]);
	free(parts);
	free(value);
	free(sep);
	return ret;
}

/* prepend_sys_path: Alembic 1.8 splits it on re.split(r", *|(?: +)|:")
 * and puts the pieces in front of sys.path; relative ones are relative
 * to the working folder. A folder outside the repository holds no
 * module of the project: it is left out. */
static int read_sys_path(dgm_alembic_config *cfg, const ctx *c, const dgm_alembic_ini *ini,
			 const char *section, dgm_error *err)
{
	char *value = NULL, **parts = NULL;
	size_t n = 0;

	if (dgm_alembic_ini_get(&value, ini, section, "prepend_sys_path", err) != 0)
		return -1;
	if (value && *value) {
		for (char *p = value; *p; p++)
			if (*p == ':')
				*p = ',';
		split_legacy(&parts, &n, value);
	}
	if (n > MAX_VERSION_LOCATIONS) {
		dgm_error_set(err, DGM_E_ALEMBIC, "%s: prepend_sys_path names %zu folders; at most %d "
			      "are read", c->ini_path, n, MAX_VERSION_LOCATIONS);
		for (size_t i = 0; i < n; i++)
			free(parts[i]);
		free(parts);
		free(value);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		char *p = NULL;
		dgm_error ignored = DGM_ERROR_INIT;

		if (resolve(&p, c, "prepend_sys_path", parts[i], &ignored) == 0) {
			cfg->sys_path = dgm_xrealloc(cfg->sys_path,
						     (cfg->nsys_path + 1) * sizeof(*cfg->sys_path));
			cfg->sys_path[cfg->nsys_path++] = p;
		}
		free(parts[i]);
	}
	free(parts);
	free(value);
	return 0;
}

static int read_bool(bool *out, const dgm_alembic_ini *ini, const char *section,
		     const char *key, const char *path, dgm_error *err)
{
	static const char *const yes[] = { "true", "yes", "on", "y", "t", "1", NULL };
	static const char *const no[] = { "false", "no", "off", "n", "f", "0", NULL };
	char *v = NULL;
	int ret = 0;

	*out = false;
	if (dgm_alembic_ini_get(&v, ini, section, key, err) != 0)
		return -1;
	if (!v)
		return 0;
	for (char *p = v; *p; p++)
		*p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
	for (int i = 0; yes[i]; i++)
		if (!strcmp(v, yes[i]))
			*out = true;
	if (!*out) {
		bool ok = false;

		for (int i = 0; no[i]; i++)
			ok |= !strcmp(v, no[i]);
		if (!ok)
			ret = dgm_error_set(err, DGM_E_ALEMBIC, "%s: '%s' must be true or false, "
					    "not '%s'", path, key, v);
	}
	free(v);
	return ret;
}

static void make_ctx(ctx *c, const char *ini_path, const dgm_alembic_load_opts *opts,
		     char **here)
{
	char *ini_dir = dgm_alembic_path_join(ini_path, "..");

	if (!ini_dir)
		ini_dir = dgm_xstrdup("");
	c->ini_path = ini_path;
	c->cwd = opts && opts->cwd ? dgm_alembic_path_join("", opts->cwd) : NULL;
	if (!c->cwd)
		c->cwd = dgm_xstrdup(ini_dir);
	c->root = NULL;
	if (opts && opts->root_on_disk && opts->root_on_disk[0] == '/')
		c->root = dgm_alembic_path_join("", opts->root_on_disk + 1);
	if (c->root)
		*here = dgm_xasprintf("/%s%s%s", c->root, *c->root && *ini_dir ? "/" : "", ini_dir);
	else
		*here = dgm_xasprintf("/%s", ini_dir);
	free(ini_dir);
}

int dgm_alembic_config_parse(dgm_alembic_config *cfg, const char *ini_path, const char *text,
			     size_t len, const dgm_alembic_load_opts *opts, dgm_error *err)
{
	const char *section = opts && opts->section ? opts->section : "alembic";
	dgm_alembic_ini *ini = NULL;
	char *here = NULL, *loc = NULL;
	ctx c;
	int ret = -1;

	memset(cfg, 0, sizeof(*cfg));
	cfg->ini_path = dgm_alembic_path_join("", ini_path);
	if (!cfg->ini_path)
		cfg->ini_path = dgm_xstrdup(ini_path);
	make_ctx(&c, cfg->ini_path, opts, &here);
	if (dgm_alembic_ini_parse(&ini, cfg->ini_path, here, text, len, err) != 0)
		goto out;
	if (!dgm_alembic_ini_has_section(ini, section)) {
		dgm_error_set(err, DGM_E_ALEMBIC, "%s: no '[%s]' section", cfg->ini_path, section);
		goto out;
	}
	if (dgm_alembic_ini_get(&loc, ini, section, "script_location", err) != 0)
		goto out;
	if (!loc) {
		dgm_error_set(err, DGM_E_ALEMBIC, "%s: no 'script_location' key found in "
			      "configuration", cfg->ini_path);
		goto out;
	}
	if (resolve(&cfg->script_location, &c, "script_location", loc, err) != 0 ||
	    read_locations(cfg, &c, ini, section, err) != 0 ||
	    read_sys_path(cfg, &c, ini, section, err) != 0 ||
	    read_bool(&cfg->recursive, ini, section, "recursive_version_locations",
		      cfg->ini_path, err) != 0)
		goto out;
	{
		char *sl = NULL;

		if (dgm_alembic_ini_get(&sl, ini, section, "sourceless", err) != 0)
			goto out;
		/* Alembic compares with "true" exactly */
		cfg->sourceless = sl && !strcmp(sl, "true");
		free(sl);
	}
	ret = 0;
out:
	if (ret != 0)
		dgm_alembic_config_free(cfg);
	dgm_alembic_ini_free(ini);
	free(loc);
	free(here);
	free(c.cwd);
	free(c.root);
	return ret;
}

void dgm_alembic_config_free(dgm_alembic_config *cfg)
{
	if (!cfg)
		return;
	free(cfg->ini_path);
	free(cfg->script_location);
	for (size_t i = 0; i < cfg->nversion_locations; i++)
		free(cfg->version_locations[i]);
	free(cfg->version_locations);
	for (size_t i = 0; i < cfg->nsys_path; i++)
		free(cfg->sys_path[i]);
	free(cfg->sys_path);
	memset(cfg, 0, sizeof(*cfg));
}
