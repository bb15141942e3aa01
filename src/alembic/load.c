/*
 * load.c - a project's revisions through a dgm_tree: alembic.ini, then
 * the version folders, then each revision file, then the graph.
 *
 * File selection follows ScriptDirectory._load_revisions and
 * Script._from_filename (Alembic 1.8.1): every name that ends in ".py"
 * and does not start with "__init__" or ".#" is a revision (also hidden
 * ones); with `sourceless = true` ".pyc"/".pyo" files count too, unless
 * their ".py" is there, and so do orphans in __pycache__ - those cannot
 * be read as text and are reported. A file found twice through two
 * version locations is read once. recursive_version_locations (Alembic
 * >= 1.10) descends into sub-folders in sorted order, skipping
 * __pycache__.
 */
#include <stdlib.h>
#include <string.h>

#include "dgm/alembic.h"
#include "dgm/buf.h"
#include "dgm/log.h"
#include "alembic_int.h"

typedef struct entry {
	char *name;
	bool is_dir;
} entry;

typedef struct listing {
	entry *v;
	size_t n, cap;
} listing;

typedef struct loader {
	dgm_tree *tree;
	dgm_alembic_script *s;
	const dgm_alembic_config *cfg;
	bool sort;
	dgm_strmap seen;       /* paths already read */
	char **paths;          /* owned keys of `seen` */
	size_t npaths;
	dgm_buf text;
	dgm_alembic_pyenv *env;  /* the project's modules, for names */
} loader;

static int on_entry(const char *name, bool is_dir, void *payload)
{
	listing *l = payload;

	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 64;
		l->v = dgm_xrealloc(l->v, l->cap * sizeof(*l->v));
	}
	l->v[l->n].name = dgm_xstrdup(name);
	l->v[l->n++].is_dir = is_dir;
	return 0;
}

static int cmp_entry(const void *a, const void *b)
{
	return strcmp(((const entry *)a)->name, ((const entry *)b)->name);
}

static void listing_free(listing *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i].name);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

static int list_dir(listing *l, loader *ld, const char *dir, bool sort, dgm_error *err)
{
	memset(l, 0, sizeof(*l));
	if (ld->tree->list(ld->tree->ctx, dir, on_entry, l, err) != 0) {
		listing_free(l);
		return -1;
	}
	if (sort && l->n)
		qsort(l->v, l->n, sizeof(*l->v), cmp_entry);
	return 0;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);

	return a >= b && !strcmp(s + a - b, suffix);
}

static bool starts_with(const char *s, const char *prefix)
{
	return !strncmp(s, prefix, strlen(prefix));
}

static int read_file(loader *ld, const char *path, dgm_error *err)
{
	size_t dummy;
	char *key;

	if (dgm_strmap_get(&ld->seen, path, &dummy)) {
		dgm_warn("file '%s' loaded twice! ignoring; please ensure version_locations is "
			 "unique", path);
		return 0;
	}
	key = dgm_xstrdup(path);
	ld->paths = dgm_xrealloc(ld->paths, (ld->npaths + 1) * sizeof(*ld->paths));
	ld->paths[ld->npaths++] = key;
	dgm_strmap_put(&ld->seen, key, 0);
	dgm_buf_clear(&ld->text);
	if (ld->tree->read(ld->tree->ctx, path, &ld->text, err) != 0)
		return -1;
	{
		dgm_alembic_revfile rf;

		if (dgm_alembic_revfile_parse_in(&rf, path, dgm_buf_cstr(&ld->text),
						 ld->text.len, ld->env, err) != 0)
			return -1;
		dgm_alembic_script_add(ld->s, &rf);
	}
	return 0;
}

/* A compiled file Alembic would load: no source next to it. */
static int compiled(loader *ld, const char *dir, const char *name, dgm_error *err)
{
	char *path = dgm_alembic_path_join(dir, name);
	char *py = dgm_xstrndup(path, strlen(path) - 1);
	char *pyc = dgm_xasprintf("%sc", py);
	bool is_o = ends_with(name, ".pyo");
	int ret = 0;

	if (ld->tree->kind(ld->tree->ctx, py) == 1 ||
	    (is_o && ld->tree->kind(ld->tree->ctx, pyc) == 1))
		dgm_debug("'%s' skipped: its source is there", path);
	else
		ret = dgm_error_set(err, DGM_E_ALEMBIC, "'%s' is a compiled revision without its "
				    "source; dgmigrate reads revisions as text and needs the "
				    ".py file", path);
	free(path);
	free(py);
	free(pyc);
	return ret;
}

static int consider(loader *ld, const char *dir, const char *name, bool is_dir,
		    dgm_error *err)
{
	bool src = ends_with(name, ".py");
	bool bin = ld->cfg->sourceless && (ends_with(name, ".pyc") || ends_with(name, ".pyo"));
	char *path;
	int ret;

	if ((!src && !bin) || starts_with(name, "__init__") || starts_with(name, ".#")) {
		dgm_debug("'%s/%s' is not a revision file: skipped", dir, name);
		return 0;
	}
	if (is_dir) {
		dgm_debug("'%s/%s' is a folder: skipped", dir, name);
		return 0;
	}
	if (bin)
		return compiled(ld, dir, name, err);
	path = dgm_alembic_path_join(dir, name);
	ret = read_file(ld, path, err);
	free(path);
	return ret;
}

/* sourceless: __pycache__ files whose stem is not among the folder's */
static int pycache(loader *ld, const char *dir, const listing *l, dgm_error *err)
{
	char *cache = dgm_alembic_path_join(dir, "__pycache__");
	listing c;
	int ret = 0;

	if (ld->tree->kind(ld->tree->ctx, cache) != 2) {
		free(cache);
		return 0;
	}
	if (list_dir(&c, ld, cache, ld->sort, err) != 0) {
		free(cache);
		return -1;
	}
	for (size_t i = 0; ret == 0 && i < c.n; i++) {
		size_t stem = strcspn(c.v[i].name, ".");
		bool known = false;

		for (size_t j = 0; j < l->n && !known; j++)
			known = strcspn(l->v[j].name, ".") == stem &&
				!strncmp(l->v[j].name, c.v[i].name, stem);
		if (!known)
			ret = consider(ld, cache, c.v[i].name, c.v[i].is_dir, err);
	}
	listing_free(&c);
	free(cache);
	return ret;
}

static int load_dir(loader *ld, const char *dir, dgm_error *err)
{
	bool recursive = ld->cfg->recursive;
	listing l;
	int ret = 0;

	if (list_dir(&l, ld, dir, ld->sort || recursive, err) != 0)
		return -1;
	for (size_t i = 0; ret == 0 && i < l.n; i++)
		if (!(recursive && l.v[i].is_dir))
			ret = consider(ld, dir, l.v[i].name, l.v[i].is_dir, err);
	if (ret == 0 && ld->cfg->sourceless)
		ret = pycache(ld, dir, &l, err);
	for (size_t i = 0; ret == 0 && recursive && i < l.n; i++)
		if (l.v[i].is_dir && strcmp(l.v[i].name, "__pycache__") != 0) {
			char *sub = dgm_alembic_path_join(dir, l.v[i].name);

			ret = load_dir(ld, sub, err);
			free(sub);
		}
	listing_free(&l);
	return ret;
}

static int load_locations(loader *ld, dgm_error *err)
{
	const dgm_alembic_config *cfg = ld->cfg;

	for (size_t i = 0; i < cfg->nversion_locations; i++) {
		const char *dir = cfg->version_locations[i];
		int kind = ld->tree->kind(ld->tree->ctx, dir);

		if (kind == 0 && cfg->explicit_locations) {
			dgm_debug("version location '%s' does not exist: skipped", dir);
			continue;
		}
		if (kind != 2) {
			dgm_error_set(err, DGM_E_ALEMBIC, "version folder '%s' %s", *dir ? dir : ".",
				      kind ? "is not a folder" : "does not exist");
			dgm_error_hint(err, "check script_location and version_locations in '%s'",
				       cfg->ini_path);
			return -1;
		}
		if (load_dir(ld, dir, err) != 0)
			return -1;
	}
	return 0;
}

int dgm_alembic_load(dgm_alembic_script **out, dgm_tree *tree, const char *ini_path,
		     const dgm_alembic_load_opts *opts, dgm_error *err)
{
	loader ld;
	dgm_alembic_config cfg;
	int ret = -1;

	*out = NULL;
	memset(&ld, 0, sizeof(ld));
	if (tree->read(tree->ctx, ini_path, &ld.text, err) != 0) {
		dgm_buf_free(&ld.text);
		return -1;
	}
	if (dgm_alembic_config_parse(&cfg, ini_path, dgm_buf_cstr(&ld.text), ld.text.len, opts,
				     err) != 0) {
		dgm_buf_free(&ld.text);
		return -1;
	}
	ld.tree = tree;
	ld.s = dgm_alembic_script_new();
	ld.s->config = cfg;
	ld.cfg = &ld.s->config;
	ld.sort = opts && opts->sort_files;
	ld.env = dgm_alembic_pyenv_new(tree, cfg.sys_path, cfg.nsys_path);
	dgm_alembic_pyenv_set_ask(ld.env, opts ? opts->ask_alembic : NULL);
	dgm_strmap_init(&ld.seen, 256);
	if (tree->kind(tree->ctx, cfg.script_location) != 2) {
		dgm_error_set(err, DGM_E_ALEMBIC, "path doesn't exist: '%s'", cfg.script_location);
		dgm_error_hint(err, "check script_location in '%s'", cfg.ini_path);
		goto out;
	}
	if (load_locations(&ld, err) != 0 || dgm_alembic_script_build(ld.s, err) != 0)
		goto out;
	dgm_debug("%s: %zu revisions, %zu heads", cfg.ini_path, ld.s->count, ld.s->nheads);
	*out = ld.s;
	ld.s = NULL;
	ret = 0;
out:
	dgm_alembic_free(ld.s);
	dgm_alembic_pyenv_free(ld.env);
	dgm_strmap_free(&ld.seen);
	for (size_t i = 0; i < ld.npaths; i++)
		free(ld.paths[i]);
	free(ld.paths);
	dgm_buf_free(&ld.text);
	return ret;
}
