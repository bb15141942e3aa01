/* manifest_read.c - read back our own manifest (the format is described
 * in manifest.c). Strict: unknown keys, duplicate keys, missing keys,
 * values of the wrong kind and totals that do not add up are errors; a
 * manifest that is not exactly ours is not trusted. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "archive_int.h"
#include "dgm/buf.h"

enum {
	E_PATH = 1, E_TYPE = 2, E_MODE = 4, E_MTIME = 8, E_SIZE = 16, E_SHA = 32,
	E_NEEDED = E_PATH | E_TYPE | E_MODE | E_MTIME | E_SIZE,
	E_IN = 64, E_DEV = 128, E_INO = 256, E_MNS = 512, E_CNS = 1024,
	E_STAT = E_DEV | E_INO | E_MNS | E_CNS
};

/* A snapshot id: what names a folder beside the archive's (util.c). */
static int read_id(ar_json *j, char **out)
{
	if (ar_json_string(j, &j->s))
		return -1;
	if (!ar_id_valid(j->s.ptr))
		return ar_json_fail(j, "not a snapshot id");
	*out = dgm_xstrdup(j->s.ptr);
	return 0;
}

typedef struct entry_ctx {
	dgm_archive_entry e;
	unsigned seen;
} entry_ctx;

static int read_type(ar_json *j, dgm_archive_type *t)
{
	static const dgm_archive_type all[] = { DGM_ARCHIVE_FILE, DGM_ARCHIVE_DIR,
						DGM_ARCHIVE_SYMLINK };

	if (ar_json_string(j, &j->s))
		return -1;
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		if (!strcmp(j->s.ptr, ar_type_name(all[i]))) {
			*t = all[i];
			return 0;
		}
	return ar_json_fail(j, "type is not 'file', 'dir' or 'symlink'");
}

/* "0755": exactly four octal digits, permission bits only (manifest.c) */
static int read_mode(ar_json *j, unsigned *mode)
{
	if (ar_json_string(j, &j->s))
		return -1;
	if (j->s.len != 4 || strspn(j->s.ptr, "01234567") != 4)
		return ar_json_fail(j, "mode is not four octal digits");
	*mode = (unsigned)strtoul(j->s.ptr, NULL, 8);
	if (*mode & ~AR_MODE_BITS)
		return ar_json_fail(j, "mode has setuid, setgid or sticky bits, which a manifest "
				    "never records");
	return 0;
}

static int read_count(ar_json *j, long long *v)
{
	if (ar_json_int(j, v))
		return -1;
	return *v < 0 ? ar_json_fail(j, "negative number") : 0;
}

static int entry_member(ar_json *j, const char *key, void *vctx)
{
	entry_ctx *c = vctx;
	bool hex = !strcmp(key, "path_hex");

	if (hex || !strcmp(key, "path"))
		return ar_json_key(j, &c->seen, E_PATH, key) || ar_json_name(j, hex, &c->e.path);
	if (!strcmp(key, "type"))
		return ar_json_key(j, &c->seen, E_TYPE, key) || read_type(j, &c->e.type);
	if (!strcmp(key, "mode"))
		return ar_json_key(j, &c->seen, E_MODE, key) || read_mode(j, &c->e.mode);
	if (!strcmp(key, "mtime"))
		return ar_json_key(j, &c->seen, E_MTIME, key) || ar_json_int(j, &c->e.mtime);
	if (!strcmp(key, "size"))
		return ar_json_key(j, &c->seen, E_SIZE, key) || read_count(j, &c->e.size);
	if (!strcmp(key, "sha256"))
		return ar_json_key(j, &c->seen, E_SHA, key) || ar_json_sha(j, c->e.sha256);
	if (!strcmp(key, "in"))
		return ar_json_key(j, &c->seen, E_IN, key) || read_id(j, &c->e.in);
	if (!strcmp(key, "dev"))
		return ar_json_key(j, &c->seen, E_DEV, key) || ar_json_int(j, &c->e.dev);
	if (!strcmp(key, "ino"))
		return ar_json_key(j, &c->seen, E_INO, key) || ar_json_int(j, &c->e.ino);
	if (!strcmp(key, "mtime_ns"))
		return ar_json_key(j, &c->seen, E_MNS, key) || ar_json_int(j, &c->e.mtime_ns);
	if (!strcmp(key, "ctime_ns"))
		return ar_json_key(j, &c->seen, E_CNS, key) || ar_json_int(j, &c->e.ctime_ns);
	return ar_json_unknown(j, key);
}

static int entry_item(ar_json *j, void *vm)
{
	entry_ctx c = { { 0 }, 0 };
	int ret = -1;

	if (ar_json_object(j, entry_member, &c))
		goto out;
	if ((c.seen & E_NEEDED) != E_NEEDED) {
		ar_json_fail(j, "entry without path, type, mode, mtime or size");
		goto out;
	}
	if (!(c.seen & E_SHA) != (c.e.type == DGM_ARCHIVE_DIR)) {
		ar_json_fail(j, "sha256 is needed for files and symlinks, and only for them");
		goto out;
	}
	if (!c.e.path[0] || (c.e.type == DGM_ARCHIVE_DIR && c.e.size != 0)) {
		ar_json_fail(j, "entry with an empty path, or a folder with a size");
		goto out;
	}
	/* a link target is a path: the size must fit one (it is allocated) */
	if (c.e.type == DGM_ARCHIVE_SYMLINK && c.e.size >= AR_PATH_MAX) {
		ar_json_fail(j, "symlink target longer than a path can be");
		goto out;
	}
	if ((c.seen & E_STAT) && ((c.seen & E_STAT) != E_STAT || c.e.type != DGM_ARCHIVE_FILE)) {
		ar_json_fail(j, "dev, ino, mtime_ns and ctime_ns go together, on files only");
		goto out;
	}
	if (c.e.in && c.e.type != DGM_ARCHIVE_FILE) {
		ar_json_fail(j, "only a file can be held by another archive");
		goto out;
	}
	c.e.has_stat = (c.seen & E_STAT) != 0;
	dgm_archive_manifest_add(vm, &c.e);
	ret = 0;
out:
	free(c.e.path);
	free(c.e.in);
	return ret;
}

typedef struct extra_ctx {
	long long index;
	char *path;
	unsigned seen;
} extra_ctx;

static int extra_member(ar_json *j, const char *key, void *vctx)
{
	extra_ctx *c = vctx;
	bool hex = !strcmp(key, "path_hex");

	if (hex || !strcmp(key, "path"))
		return ar_json_key(j, &c->seen, 1, key) || ar_json_name(j, hex, &c->path);
	if (!strcmp(key, "index"))
		return ar_json_key(j, &c->seen, 2, key) || ar_json_int(j, &c->index);
	return ar_json_unknown(j, key);
}

static int extra_item(ar_json *j, void *vm)
{
	dgm_archive_manifest *m = vm;
	extra_ctx c = { 0, NULL, 0 };
	int ret = -1;

	if (ar_json_object(j, extra_member, &c))
		goto out;
	if (c.seen != 3) {
		ar_json_fail(j, "extra without index or path");
		goto out;
	}
	if (c.index != (long long)m->n_extras) {
		ar_json_fail(j, "extras out of order");
		goto out;
	}
	m->extras = dgm_xrealloc(m->extras, (m->n_extras + 1) * sizeof(*m->extras));
	m->extras[m->n_extras++] = c.path;
	c.path = NULL;
	ret = 0;
out:
	free(c.path);
	return ret;
}

typedef struct base_ctx {
	dgm_archive_base b;
	unsigned seen;
} base_ctx;

static int base_member(ar_json *j, const char *key, void *vctx)
{
	base_ctx *c = vctx;

	if (!strcmp(key, "id"))
		return ar_json_key(j, &c->seen, 1, key) || read_id(j, &c->b.id);
	if (!strcmp(key, "archive_sha256"))
		return ar_json_key(j, &c->seen, 2, key) || ar_json_sha(j, c->b.archive_sha256);
	if (!strcmp(key, "archive_bytes"))
		return ar_json_key(j, &c->seen, 4, key) || read_count(j, &c->b.archive_bytes);
	return ar_json_unknown(j, key);
}

static int base_item(ar_json *j, void *vm)
{
	dgm_archive_manifest *m = vm;
	base_ctx c = { { 0 }, 0 };

	if (ar_json_object(j, base_member, &c) || (c.seen != 7 &&
	    ar_json_fail(j, "base without id, archive_sha256 or archive_bytes"))) {
		free(c.b.id);
		return -1;
	}
	for (size_t i = 0; i < m->n_bases; i++)
		if (!strcmp(m->bases[i].id, c.b.id)) {
			free(c.b.id);
			return ar_json_fail(j, "a base listed twice");
		}
	m->bases = dgm_xrealloc(m->bases, (m->n_bases + 1) * sizeof(*m->bases));
	m->bases[m->n_bases++] = c.b;
	return 0;
}

enum {
	M_BASES = 1024,
	M_FORMAT = 1, M_VERSION = 2, M_CREATED = 4, M_SHA = 8, M_BYTES = 16, M_COUNT = 32,
	M_CONTENT = 64, M_STORE = 128, M_EXTRAS = 256, M_ENTRIES = 512, M_ALL = 1023
};

typedef struct top_ctx {
	dgm_archive_manifest *m;
	long long version, entry_count;
	unsigned seen;
} top_ctx;

static int read_format(ar_json *j)
{
	if (ar_json_string(j, &j->s))
		return -1;
	if (strcmp(j->s.ptr, "dgmigrate-archive-manifest"))
		return ar_json_fail(j, "not a dgmigrate archive manifest");
	return 0;
}

static int top_member(ar_json *j, const char *key, void *vctx)
{
	top_ctx *c = vctx;
	dgm_archive_manifest *m = c->m;
	bool hex = !strcmp(key, "store_hex");

	if (!strcmp(key, "format"))
		return ar_json_key(j, &c->seen, M_FORMAT, key) || read_format(j);
	if (!strcmp(key, "version"))
		return ar_json_key(j, &c->seen, M_VERSION, key) || ar_json_int(j, &c->version);
	if (!strcmp(key, "created"))
		return ar_json_key(j, &c->seen, M_CREATED, key) || ar_json_int(j, &m->created);
	if (!strcmp(key, "archive_sha256"))
		return ar_json_key(j, &c->seen, M_SHA, key) || ar_json_sha(j, m->archive_sha256);
	if (!strcmp(key, "archive_bytes"))
		return ar_json_key(j, &c->seen, M_BYTES, key) || read_count(j, &m->archive_bytes);
	if (!strcmp(key, "entry_count"))
		return ar_json_key(j, &c->seen, M_COUNT, key) || read_count(j, &c->entry_count);
	if (!strcmp(key, "content_bytes"))
		return ar_json_key(j, &c->seen, M_CONTENT, key) || read_count(j, &m->content_bytes);
	if (hex || !strcmp(key, "store"))
		return ar_json_key(j, &c->seen, M_STORE, key) || ar_json_name(j, hex, &m->store);
	if (!strcmp(key, "extras"))
		return ar_json_key(j, &c->seen, M_EXTRAS, key) || ar_json_array(j, extra_item, m);
	if (!strcmp(key, "entries"))
		return ar_json_key(j, &c->seen, M_ENTRIES, key) || ar_json_array(j, entry_item, m);
	if (!strcmp(key, "bases"))
		return ar_json_key(j, &c->seen, M_BASES, key) || ar_json_array(j, base_item, m);
	return ar_json_unknown(j, key);
}

/* The numbers at the top must describe the entries listed. */
static int check_totals(const top_ctx *c, const char *path, dgm_error *err)
{
	const dgm_archive_manifest *m = c->m;
	long long content = 0;

	if ((c->seen & M_ALL) != M_ALL)
		return dgm_error_set(err, DGM_E_ARCHIVE, "manifest '%s' is not valid: "
				     "a required key is missing", path);
	if (c->version != 1 && c->version != 2)
		return dgm_error_set(err, DGM_E_ARCHIVE, "manifest '%s' has version %lld, this "
				     "dgmigrate reads versions 1 and 2", path, c->version);
	if (ar_bases_check(m, err)) {
		dgm_error_prefix(err, "manifest '%s' is not valid", path);
		return -1;
	}
	for (size_t i = 0; i < m->n_entries; i++)
		if (m->entries[i].type == DGM_ARCHIVE_FILE &&
		    __builtin_add_overflow(content, m->entries[i].size, &content))
			return dgm_error_set(err, DGM_E_ARCHIVE, "manifest '%s' is not valid: its "
					     "file sizes add up to a number too large", path);
	if (c->entry_count != (long long)m->n_entries || content != m->content_bytes)
		return dgm_error_set(err, DGM_E_ARCHIVE, "manifest '%s' is not valid: its totals "
				     "do not match its entries", path);
	return 0;
}

int dgm_archive_manifest_read(dgm_archive_manifest *m, const char *path, dgm_error *err)
{
	dgm_buf text = DGM_BUF_INIT;
	ar_json j = { 0 };
	top_ctx c = { m, 0, 0, 0 };
	int ret = -1;

	memset(m, 0, sizeof(*m));
	if (dgm_buf_read_file(&text, path, err))
		goto out;
	j.start = j.p = text.ptr;
	j.end = text.ptr + text.len;
	j.file = path;
	j.err = err;
	if (ar_json_object(&j, top_member, &c))
		goto out;
	ar_json_ws(&j);
	if (j.p != j.end) {
		ar_json_fail(&j, "text after the manifest");
		goto out;
	}
	if (check_totals(&c, path, err))
		goto out;
	if (dgm_archive_manifest_index(m, err)) {
		dgm_error_prefix(err, "manifest '%s' is not valid", path);
		goto out;
	}
	ret = 0;
out:
	if (ret)
		dgm_archive_manifest_free(m);
	dgm_buf_free(&j.s);
	dgm_buf_free(&text);
	return ret;
}
