/* check.c - the checks a manifest must pass before anything is read or
 * written by it, shared by verify and restore (one function, so that
 * `backups verify` calls intact exactly what a restore would accept):
 * every path safe, normalized and in order, short enough for every
 * path a restore builds from it, modes without set-id, sticky or
 * world-write bits, a store folder, and extras that are absolute paths
 * with entries only under their own "extra/<i>/<basename>". */
#include <stdlib.h>
#include <string.h>

#include "archive_int.h"
#include "dgm/buf.h"

/* extra/<i>[/...]: i (canonical decimal), *rest after "extra/<i>";
 * -1 when path is not of that form. */
static long extra_number(const char *path, const char **rest)
{
	const char *p = path + strlen(AR_EXTRA "/");
	long i = 0;
	size_t n;

	if (strncmp(path, AR_EXTRA "/", strlen(AR_EXTRA "/")))
		return -1;
	n = strspn(p, "0123456789");
	if (n == 0 || n > 6 || (n > 1 && p[0] == '0') || (p[n] != '\0' && p[n] != '/'))
		return -1;
	for (size_t k = 0; k < n; k++)
		i = 10 * i + (p[k] - '0');
	*rest = p + n;
	return i;
}

long ar_extra_index(const dgm_archive_manifest *m, const char *path, const char **tail)
{
	const char *rest = NULL;
	long i = extra_number(path, &rest);
	char *base;
	size_t n;
	bool ok;

	*tail = NULL;
	if (i < 0 || (size_t)i >= m->n_extras)
		return -1;
	if (!*rest)
		return i;
	base = ar_basename(m->extras[i]);
	n = strlen(base);
	ok = !strncmp(rest + 1, base, n) && (rest[1 + n] == '\0' || rest[1 + n] == '/');
	free(base);
	if (!ok)
		return -1;
	*tail = rest + 1 + n;
	return i;
}

/* An extra path must be absolute and normalized: a restore writes there. */
static int check_extra_path(const char *path, dgm_error *err)
{
	char show[AR_SHOW_MAX];
	const char *s = path + 1;

	ar_show(show, sizeof(show), path);
	if (path[0] != '/' || !path[1])
		return dgm_error_set(err, DGM_E_ARCHIVE, "extra path '%s' is not an absolute path "
				     "below '/'", show);
	for (;; s += strcspn(s, "/") + 1) {
		size_t n = strcspn(s, "/");

		if (n == 0 || (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
			return dgm_error_set(err, DGM_E_ARCHIVE, "extra path '%s' is not a normalized "
					     "absolute path", show);
		if (!s[n])
			break;
	}
	if (strlen(path) + AR_STAGING_EXTRA + AR_PATH_MARGIN >= AR_PATH_MAX)
		return dgm_error_set(err, DGM_E_ARCHIVE, "extra path '%s' is too long", show);
	return 0;
}

/* Where under extra/ an entry may be: "extra", "extra/<i>" (folders)
 * and what lies under "extra/<i>/<basename of extra path i>". *len: the
 * longest path a restore builds for it beyond the store's staging. */
static int check_extra_entry(const dgm_archive_manifest *m, const dgm_archive_entry *e,
			     size_t *len, dgm_error *err)
{
	char show[AR_SHOW_MAX];
	const char *tail = NULL;
	long i;

	*len = 0;
	if (strcmp(e->path, AR_EXTRA) && strncmp(e->path, AR_EXTRA "/", strlen(AR_EXTRA "/")))
		return 0;
	ar_show(show, sizeof(show), e->path);
	i = m->n_extras ? ar_extra_index(m, e->path, &tail) : -1;
	if (!strcmp(e->path, AR_EXTRA) && m->n_extras)
		i = 0;
	if (i < 0)
		return dgm_error_set(err, DGM_E_ARCHIVE, "refusing entry '%s': not an extra path of "
				     "this archive", show);
	if (!tail && e->type != DGM_ARCHIVE_DIR)
		return dgm_error_set(err, DGM_E_ARCHIVE, "refusing entry '%s': not a folder", show);
	/* put back at PATH, staged at PATH.restore-XXXXXX/tree<tail> */
	if (tail)
		*len = strlen(m->extras[i]) + AR_STAGING_EXTRA + strlen("tree") + strlen(tail);
	return 0;
}

static int check_mode(const dgm_archive_entry *e, dgm_error *err)
{
	char show[AR_SHOW_MAX];

	ar_show(show, sizeof(show), e->path);
	if (e->mode & ~AR_MODE_BITS)
		return dgm_error_set(err, DGM_E_ARCHIVE, "refusing entry '%s': mode %04o has "
				     "setuid, setgid or sticky bits", show, e->mode);
	/* a symlink's own mode means nothing (0777 on Linux) */
	if (e->type != DGM_ARCHIVE_SYMLINK && (e->mode & 0002))
		return dgm_error_set(err, DGM_E_ARCHIVE, "refusing entry '%s': mode %04o is "
				     "writable by everyone", show, e->mode);
	return 0;
}

static int check_entry(const dgm_archive_manifest *m, const dgm_archive_entry *e,
		       size_t root_len, const unsigned char *seen, dgm_error *err)
{
	char show[AR_SHOW_MAX];
	size_t len;

	if (ar_path_check(e->path, m, seen, err) || check_extra_entry(m, e, &len, err))
		return -1;
	if (root_len + strlen(e->path) > len)
		len = root_len + strlen(e->path);
	if (len + AR_PATH_MARGIN >= AR_PATH_MAX)
		return dgm_error_set(err, DGM_E_ARCHIVE, "refusing entry '%s': its path would be "
				     "too long on disk (%zu bytes; the limit is %d)",
				     ar_show(show, sizeof(show), e->path), len,
				     AR_PATH_MAX - AR_PATH_MARGIN - 1);
	return check_mode(e, err);
}

int ar_manifest_check(const dgm_archive_manifest *m, size_t root_len, dgm_error *err)
{
	unsigned char *seen = dgm_xcalloc(m->n_entries + 1, 1);
	const dgm_archive_entry *root = dgm_archive_manifest_find(m, AR_STORE);
	int ret = 0;

	for (size_t i = 0; i < m->n_extras && !ret; i++)
		ret = check_extra_path(m->extras[i], err);
	for (size_t i = 0; i < m->n_entries && !ret; i++) {
		ret = check_entry(m, &m->entries[i], root_len, seen, err);
		seen[i] = 1;
	}
	if (!ret && (!root || root->type != DGM_ARCHIVE_DIR))
		ret = dgm_error_set(err, DGM_E_ARCHIVE, "the manifest has no '" AR_STORE "' folder");
	free(seen);
	return ret;
}

int ar_check_next(long *pos, struct archive_entry *e, const dgm_archive_manifest *m,
		  unsigned char *seen, dgm_error *err)
{
	if (ar_path_check(archive_entry_pathname(e), m, seen, err) ||
	    ar_header_check(pos, e, m, seen, err))
		return -1;
	seen[*pos] = 1;
	return 0;
}
