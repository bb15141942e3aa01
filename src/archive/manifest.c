/* manifest.c - the manifest in memory, and its JSON form.
 *
 * The file is JSON, one entry a line so that it greps and diffs well:
 *   {
 *   "format": "dgmigrate-archive-manifest",
 *   "version": 2,
 *   "created": 1700000000,
 *   "archive_sha256": "<64 hex>",
 *   "archive_bytes": 123,
 *   "entry_count": 3,
 *   "content_bytes": 42,
 *   "store": "/srv/models",
 *   "extras": [{"index": 0, "path": "/etc/app/x.yaml"}],
 *   "bases": [{"id": "20261129T064955Z-3f2a", "archive_sha256": "...", "archive_bytes": 9}],
 *   "entries": [
 *   {"path": "store", "type": "dir", "mode": "0755", "mtime": 1700000000, "size": 0},
 *   {"path": "store/a.bin", "type": "file", "mode": "0644", "mtime": 1, "size": 42, "sha256": "..."},
 *   {"path_hex": "73746f72652fff", "type": "symlink", ...},
 *   {"path": "store/b.bin", "type": "file", ..., "sha256": "...",
 *    "in": "20261129T064955Z-3f2a", "dev": 2049, "ino": 12, "mtime_ns": 1, "ctime_ns": 2}
 *   ]
 *   }
 * JSON strings must be UTF-8, file names need not be: a name that is
 * not valid UTF-8 is written as "<key>_hex" with its bytes in hex.
 * "mode" is the permission bits only (at most "0777"): set-id and
 * sticky bits, and write permission for everyone on anything but a
 * symlink, are neither recorded nor restored, and a manifest that has
 * them is refused. Owners are not recorded: a restore gives what it
 * writes to the owner of what it replaces. "size" is a file's content
 * length, a symlink's target length (below PATH_MAX), 0 for a folder.
 * Version 2 added "bases" and, per file, "in" (held by that base's
 * archive, see archive.h "Chains") and the file's identity when read
 * ("dev" ... "ctime_ns", all four or none); version 1 is still read. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "archive_int.h"
#include "dgm/buf.h"
#include "dgm/fs.h"

char *dgm_archive_manifest_path(const char *archive)
{
	return dgm_xasprintf("%s%s", archive, DGM_ARCHIVE_MANIFEST_SUFFIX);
}

void dgm_archive_manifest_add(dgm_archive_manifest *m, const dgm_archive_entry *e)
{
	if (m->n_entries == m->cap_entries) {
		m->cap_entries = m->cap_entries ? 2 * m->cap_entries : 64;
		m->entries = dgm_xrealloc(m->entries, m->cap_entries * sizeof(*e));
	}
	m->entries[m->n_entries] = *e;
	m->entries[m->n_entries].path = dgm_xstrdup(e->path);
	m->entries[m->n_entries].in = e->in ? dgm_xstrdup(e->in) : NULL;
	m->n_entries++;
	/* the index points into entries, which may have moved */
	free(m->by_path);
	m->by_path = NULL;
}

static int cmp_entries(const void *a, const void *b)
{
	return strcmp((*(dgm_archive_entry *const *)a)->path,
		      (*(dgm_archive_entry *const *)b)->path);
}

int dgm_archive_manifest_index(dgm_archive_manifest *m, dgm_error *err)
{
	char show[AR_SHOW_MAX];

	free(m->by_path);
	m->by_path = dgm_xmalloc((m->n_entries ? m->n_entries : 1) * sizeof(*m->by_path));
	for (size_t i = 0; i < m->n_entries; i++)
		m->by_path[i] = &m->entries[i];
	qsort(m->by_path, m->n_entries, sizeof(*m->by_path), cmp_entries);
	for (size_t i = 1; i < m->n_entries; i++)
		if (!strcmp(m->by_path[i - 1]->path, m->by_path[i]->path))
			return dgm_error_set(err, DGM_E_ARCHIVE, "the manifest lists '%s' twice",
					     ar_show(show, sizeof(show), m->by_path[i]->path));
	return 0;
}

long ar_manifest_pos(const dgm_archive_manifest *m, const char *path)
{
	size_t lo = 0, hi = m->n_entries;

	if (!m->by_path)
		return -1;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(m->by_path[mid]->path, path);

		if (c == 0)
			return (long)(m->by_path[mid] - m->entries);
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

const dgm_archive_entry *dgm_archive_manifest_find(const dgm_archive_manifest *m,
						   const char *path)
{
	long pos = ar_manifest_pos(m, path);

	return pos < 0 ? NULL : &m->entries[pos];
}

void dgm_archive_manifest_free(dgm_archive_manifest *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->n_entries; i++) {
		free(m->entries[i].path);
		free(m->entries[i].in);
	}
	for (size_t i = 0; i < m->n_extras; i++)
		free(m->extras[i]);
	for (size_t i = 0; i < m->n_bases; i++)
		free(m->bases[i].id);
	free(m->bases);
	free(m->entries);
	free(m->extras);
	free(m->by_path);
	free(m->store);
	memset(m, 0, sizeof(*m));
}

/* "key": "value" or, for bytes that are not UTF-8, "key_hex": "6869" */
static void put_name(dgm_buf *b, const char *key, const char *value)
{
	if (ar_utf8_valid(value)) {
		dgm_buf_printf(b, "\"%s\": ", key);
		dgm_buf_json_str(b, value);
		return;
	}
	dgm_buf_printf(b, "\"%s_hex\": \"", key);
	for (const unsigned char *p = (const unsigned char *)value; *p; p++)
		dgm_buf_printf(b, "%02x", *p);
	dgm_buf_putc(b, '"');
}

static void put_entry(dgm_buf *b, const dgm_archive_entry *e, bool last)
{
	dgm_buf_putc(b, '{');
	put_name(b, "path", e->path);
	dgm_buf_printf(b, ", \"type\": \"%s\", \"mode\": \"%04o\", \"mtime\": %lld, \"size\": %lld",
		       ar_type_name(e->type), e->mode, e->mtime, e->size);
	if (e->type != DGM_ARCHIVE_DIR)
		dgm_buf_printf(b, ", \"sha256\": \"%s\"", e->sha256);
	if (e->in)
		dgm_buf_printf(b, ", \"in\": \"%s\"", e->in);
	if (e->has_stat)
		dgm_buf_printf(b, ", \"dev\": %lld, \"ino\": %lld, \"mtime_ns\": %lld, "
			       "\"ctime_ns\": %lld", e->dev, e->ino, e->mtime_ns, e->ctime_ns);
	dgm_buf_puts(b, last ? "}\n" : "},\n");
}

static void put_manifest(dgm_buf *b, const dgm_archive_manifest *m)
{
	dgm_buf_printf(b, "{\n\"format\": \"dgmigrate-archive-manifest\",\n\"version\": 2,\n"
		       "\"created\": %lld,\n\"archive_sha256\": \"%s\",\n\"archive_bytes\": %lld,\n"
		       "\"entry_count\": %zu,\n\"content_bytes\": %lld,\n",
		       m->created, m->archive_sha256, m->archive_bytes, m->n_entries,
		       m->content_bytes);
	put_name(b, "store", m->store ? m->store : "");
	dgm_buf_puts(b, ",\n\"extras\": [");
	for (size_t i = 0; i < m->n_extras; i++) {
		dgm_buf_printf(b, "%s{\"index\": %zu, ", i ? ", " : "", i);
		put_name(b, "path", m->extras[i]);
		dgm_buf_putc(b, '}');
	}
	dgm_buf_puts(b, "],\n\"bases\": [");
	for (size_t i = 0; i < m->n_bases; i++)
		dgm_buf_printf(b, "%s{\"id\": \"%s\", \"archive_sha256\": \"%s\", "
			       "\"archive_bytes\": %lld}", i ? ", " : "", m->bases[i].id,
			       m->bases[i].archive_sha256, m->bases[i].archive_bytes);
	dgm_buf_puts(b, "],\n\"entries\": [\n");
	for (size_t i = 0; i < m->n_entries; i++)
		put_entry(b, &m->entries[i], i + 1 == m->n_entries);
	dgm_buf_puts(b, "]\n}\n");
}

int dgm_archive_manifest_write(const dgm_archive_manifest *m, const char *path,
			       dgm_error *err)
{
	dgm_buf b = DGM_BUF_INIT;
	char *tmp = dgm_xasprintf("%s.tmp", path);
	int ret;

	put_manifest(&b, m);
	/* a stale temp file would keep its old mode through O_TRUNC */
	if (unlink(tmp) != 0 && errno != ENOENT) {
		ret = dgm_error_errno(err, DGM_E_IO, "cannot remove '%s'", tmp);
		goto out;
	}
	ret = dgm_fs_write_atomic(path, b.ptr, b.len, 0600, err);
out:
	free(tmp);
	dgm_buf_free(&b);
	return ret;
}
