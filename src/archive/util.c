/* util.c - hashing, progress, names and renames shared by src/archive. */
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "archive_int.h"
#include "dgm/clock.h"
#include "dgm/buf.h"

EVP_MD_CTX *ar_sha_new(void)
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();

	/* like dgm_xmalloc: without a digest nothing here can go on */
	if (!c || EVP_DigestInit_ex(c, EVP_sha256(), NULL) != 1) {
		fprintf(stderr, "dgmigrate: error: cannot start SHA-256\n");
		abort();
	}
	return c;
}

void ar_sha_update(EVP_MD_CTX *c, const void *data, size_t len)
{
	if (len)
		EVP_DigestUpdate(c, data, len);
}

void ar_sha_final(EVP_MD_CTX *c, char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	EVP_DigestFinal_ex(c, md, &n);
	for (unsigned int i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
	EVP_MD_CTX_free(c);
}

void ar_sha_buf(char out[65], const void *data, size_t len)
{
	EVP_MD_CTX *c = ar_sha_new();

	ar_sha_update(c, data, len);
	ar_sha_final(c, out);
}

bool ar_stat_unchanged(const dgm_archive_entry *me, const struct stat *st)
{
	return me->type == DGM_ARCHIVE_FILE && me->has_stat && S_ISREG(st->st_mode) &&
	       me->size == st->st_size && me->mtime == st->st_mtime && me->dev == (long long)st->st_dev &&
	       me->ino == (long long)st->st_ino && me->mtime_ns == dgm_timespec_ns(&st->st_mtim) &&
	       me->ctime_ns == dgm_timespec_ns(&st->st_ctim);
}

void ar_progress_add(ar_progress *p, long long n)
{
	long t;

	p->done += n;
	if (!p->fn)
		return;
	t = dgm_now_ms();
	/* a few calls a second: enough for a bar, nothing for the disk */
	if (t - p->last_ms < 250)
		return;
	p->last_ms = t;
	p->fn(p->done < p->total ? p->done : p->total, p->total, p->payload);
}

void ar_progress_end(ar_progress *p)
{
	if (p->fn)
		p->fn(p->total, p->total, p->payload);
}

/* Length of the UTF-8 sequence at s (strict: no overlongs, no
 * surrogates, nothing above U+10FFFF), or 0 when invalid. */
static size_t utf8_len(const unsigned char *s)
{
	unsigned c = s[0];
	size_t n;
	unsigned cp;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2, cp = c & 0x1f;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3, cp = c & 0x0f;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4, cp = c & 0x07;
	else
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

bool ar_utf8_valid(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	while (*p) {
		size_t n = utf8_len(p);

		if (!n)
			return false;
		p += n;
	}
	return true;
}

/* len is at least 16 (callers use AR_SHOW_MAX). */
const char *ar_show(char *out, size_t len, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t o = 0;

	while (*p && o + 8 < len) {
		size_t n = utf8_len(p);

		if (n > 1 || (n == 1 && *p >= 0x20 && *p != 0x7f)) {
			memcpy(out + o, p, n);
			o += n;
			p += n;
		} else {
			o += (size_t)snprintf(out + o, len - o, "\\x%02x", *p++);
		}
	}
	/* the loop leaves o + 4 < len, room for the mark of a cut */
	if (*p) {
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o] = '\0';
	return out;
}

char *ar_basename(const char *path)
{
	size_t end = strlen(path), start;

	while (end > 1 && path[end - 1] == '/')
		end--;
	start = end;
	while (start > 0 && path[start - 1] != '/')
		start--;
	return dgm_xstrndup(path + start, end - start);
}

char *ar_dirname(const char *path)
{
	const char *slash = strrchr(path, '/');

	if (!slash)
		return dgm_xstrdup(".");
	if (slash == path)
		return dgm_xstrdup("/");
	return dgm_xstrndup(path, (size_t)(slash - path));
}

const char *ar_type_name(dgm_archive_type t)
{
	switch (t) {
	case DGM_ARCHIVE_FILE: return "file";
	case DGM_ARCHIVE_DIR: return "dir";
	case DGM_ARCHIVE_SYMLINK: return "symlink";
	}
	return "?";
}

char *ar_aside_name(const char *path)
{
	time_t now = time(NULL);
	struct tm tm;
	char stamp[32];
	struct stat st;
	char *name;

	gmtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
	name = dgm_xasprintf("%s.old-%s", path, stamp);
	for (int i = 2; lstat(name, &st) == 0; i++) {
		free(name);
		name = dgm_xasprintf("%s.old-%s-%d", path, stamp, i);
	}
	return name;
}

int ar_rename_noreplace(const char *from, const char *to, dgm_error *err)
{
	struct stat st;

	if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == 0)
		return 0;
	/* file systems without RENAME_NOREPLACE: check, then rename */
	if (errno == EINVAL || errno == ENOSYS) {
		if (lstat(to, &st) == 0) {
			errno = EEXIST;
		} else if (rename(from, to) == 0) {
			return 0;
		}
	}
	return dgm_error_errno(err, DGM_E_IO, "cannot rename '%s' to '%s'", from, to);
}

void ar_fault(const char *point)
{
	const char *at = getenv("DGMIGRATE_FAULT_KILL_AT");

	/* as a kill -9 at that point would */
	if (at && !strcmp(at, point))
		raise(SIGKILL);
}
