/* checksums.c - db.sha256: the SHA-256 of every file of a dump, in the
 * format of sha256sum, so a deleted or altered dump file is caught; and
 * the dump verified against it and its manifest.
 *
 * The files of src/snapshot/ are layered: snapshot.c (create, verify)
 * and restore*.c use catalog.c, copy_db.c, checksums.c and dump.c, which
 * use nothing above them. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dgm/buf.h"
#include "dgm/dump.h"
#include "dgm/fs.h"
#include "internal.h"

/* The file names of a directory dump (flat: pg_dump -Fd writes no
 * sub-folders), sorted; or the one name of a custom dump. */
static int dump_files(dgm_strlist *names, const char *snapdir, dgm_dump_format fmt,
		      dgm_error *err)
{
	char *dir;
	DIR *d;
	struct dirent *de;

	memset(names, 0, sizeof(*names));
	names->items = dgm_xcalloc(1, sizeof(char *));
	if (fmt == DGM_DUMP_CUSTOM) {
		names->items = dgm_xrealloc(names->items, 2 * sizeof(char *));
		names->items[0] = dgm_xstrdup("db.dump");
		names->items[1] = NULL;
		names->count = 1;
		return 0;
	}
	dir = dgm_xasprintf("%s/db", snapdir);
	d = opendir(dir);
	if (!d) {
		dgm_error_errno(err, DGM_E_IO, "cannot list the dump '%s'", dir);
		free(dir);
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		names->items = dgm_xrealloc(names->items, (names->count + 2) * sizeof(char *));
		names->items[names->count++] = dgm_xasprintf("db/%s", de->d_name);
		names->items[names->count] = NULL;
	}
	closedir(d);
	free(dir);
	dgm_sort_strings((const char **)names->items, names->count);
	return 0;
}

/* The text of db.sha256 for the dump as it is now. */
static int compute(dgm_buf *out, const char *snapdir, dgm_dump_format fmt, dgm_error *err)
{
	dgm_strlist names;
	int ret = -1;

	if (dump_files(&names, snapdir, fmt, err))
		return -1;
	for (size_t i = 0; i < names.count; i++) {
		char *path = dgm_xasprintf("%s/%s", snapdir, names.items[i]);
		char hex[65];
		int rc = dgm_fs_sha256_file(hex, NULL, path, err);

		free(path);
		if (rc)
			goto out;
		dgm_buf_printf(out, "%s  %s\n", hex, names.items[i]);
	}
	ret = 0;
out:
	dgm_strlist_free(&names);
	return ret;
}

int dgm_snapshot_write_checksums(char sha[65], const char *snapdir, dgm_dump_format fmt,
				 dgm_error *err)
{
	dgm_buf text = DGM_BUF_INIT;
	char *path = dgm_xasprintf("%s/db.sha256", snapdir);
	int ret = -1;

	if (compute(&text, snapdir, fmt, err) ||
	    dgm_fs_write_atomic(path, text.ptr, text.len, 0600, err) ||
	    dgm_fs_sha256_file(sha, NULL, path, err))
		goto out;
	ret = 0;
out:
	free(path);
	dgm_buf_free(&text);
	return ret;
}

/* The file named on the first line that differs between two lists. */
static void first_difference(char *buf, size_t len, const char *want, const char *have)
{
	const char *w = want, *h = have;

	while (*w && *h) {
		size_t lw = strcspn(w, "\n"), lh = strcspn(h, "\n");

		if (lw != lh || memcmp(w, h, lw) != 0)
			break;
		w += lw + (w[lw] == '\n');
		h += lh + (h[lh] == '\n');
	}
	if (!*w)
		w = h;
	if (strlen(w) > 66)
		w += 66; /* skip "<64 hex>  " to the file name */
	snprintf(buf, len, "%.*s", (int)strcspn(w, "\n"), w);
}

int dgm_snapshot_check_checksums(const dgm_snapshot *snap, dgm_error *err)
{
	dgm_buf want = DGM_BUF_INIT, have = DGM_BUF_INIT;
	char *path = dgm_xasprintf("%s/db.sha256", snap->dir);
	char sha[65], diff[256];
	int ret = -1;

	if (dgm_fs_sha256_file(sha, NULL, path, err) || dgm_buf_read_file(&want, path, err))
		goto out;
	if (strcmp(sha, snap->db_sha256) != 0) {
		dgm_error_set(err, DGM_E_RUN, "snapshot '%s': db.sha256 does not match its manifest",
			      snap->id);
		goto out;
	}
	if (compute(&have, snap->dir, snap->format, err))
		goto out;
	if (strcmp(want.ptr, have.ptr) != 0) {
		first_difference(diff, sizeof(diff), want.ptr, have.ptr);
		dgm_error_set(err, DGM_E_RUN, "snapshot '%s': the dump's files do not match "
			      "db.sha256 (near '%s')", snap->id, diff);
		dgm_error_hint(err, "this snapshot cannot be trusted; use another one");
		goto out;
	}
	ret = 0;
out:
	free(path);
	dgm_buf_free(&want);
	dgm_buf_free(&have);
	return ret;
}

/* The dump as its manifest describes it: every file against db.sha256,
 * and pg_restore --list reads back the recorded number of entries. */
int dgm_snapshot_verify_dump(const dgm_snapshot *snap, dgm_error *err)
{
	char *dump = dgm_xasprintf("%s/%s", snap->dir,
				   snap->format == DGM_DUMP_DIRECTORY ? "db" : "db.dump");
	int entries = 0, ret = -1;

	if (dgm_snapshot_check_checksums(snap, err) ||
	    dgm_dump_list(&entries, dump, snap->format, err))
		goto out;
	if (entries != snap->toc_entries) {
		dgm_error_set(err, DGM_E_RUN, "snapshot '%s': the dump lists %d entries, its "
			      "manifest %d", snap->id, entries, snap->toc_entries);
		goto out;
	}
	ret = 0;
out:
	free(dump);
	return ret;
}
