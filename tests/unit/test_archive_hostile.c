/* test_archive_hostile.c - forged snapshots: archives written here with
 * libarchive, their manifests rewritten to agree (sizes, hashes, totals),
 * so that only the checks of src/archive stand between them and the
 * disk. One test per finding of issue #13 (points 1-6). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

#include "dgm/archive.h"
#include "dgm/buf.h"
#include "dgm/fs.h"

#define T0 1600000000
#define FOREIGN 4242

static char *sandbox;
static int case_no;

static char *join(const char *a, const char *b)
{
	return dgm_xasprintf("%s/%s", a, b);
}

static char *new_case(const char *name)
{
	char *dir = dgm_xasprintf("%s/%02d-%s", sandbox, ++case_no, name);

	assert_int_equal(mkdir(dir, 0700), 0);
	return dir;
}

static bool exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

static size_t count_glob(const char *pattern)
{
	glob_t g;
	size_t n;

	if (glob(pattern, GLOB_PERIOD, NULL, &g) != 0)
		return 0;
	n = g.gl_pathc;
	globfree(&g);
	return n;
}

static void expect_no_leftovers(const char *target)
{
	char *pattern = dgm_xasprintf("%s.*", target);

	if (count_glob(pattern) != 0)
		fail_msg("something was left beside '%s'", target);
	free(pattern);
}

static void put_str(const char *dir, const char *name, const char *s, mode_t mode)
{
	char *path = join(dir, name);
	struct timespec ts[2] = { { T0, 0 }, { T0, 0 } };

	assert_int_equal(dgm_fs_write_atomic(path, s, strlen(s), mode, NULL), 0);
	assert_int_equal(chmod(path, mode), 0);
	assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
	free(path);
}

/* --- forging ------------------------------------------------------------ */

typedef struct forged {
	const char *path;
	char type;             /* 'd', 'f', 'l' */
	unsigned mode;         /* in the tar header and in the manifest */
	const char *body;      /* a file's content, a symlink's target */
	int owner;             /* uid and gid in the tar header */
} forged;

static void sha_of_text(char out[65], const char *dir, const char *text)
{
	char *tmp = join(dir, "body.tmp");

	assert_int_equal(dgm_fs_write_atomic(tmp, text, strlen(text), 0600, NULL), 0);
	assert_int_equal(dgm_fs_sha256_file(out, NULL, tmp, NULL), 0);
	unlink(tmp);
	free(tmp);
}

static void put_entry(struct archive *a, struct archive_entry *e, const forged *f)
{
	archive_entry_clear(e);
	archive_entry_set_pathname(e, f->path);
	archive_entry_set_mtime(e, T0, 0);
	archive_entry_set_perm(e, f->mode);
	archive_entry_set_uid(e, f->owner);
	archive_entry_set_gid(e, f->owner);
	if (f->type == 'd') {
		archive_entry_set_filetype(e, AE_IFDIR);
	} else if (f->type == 'l') {
		archive_entry_set_filetype(e, AE_IFLNK);
		archive_entry_set_symlink(e, f->body);
	} else {
		archive_entry_set_filetype(e, AE_IFREG);
		archive_entry_set_size(e, (la_int64_t)strlen(f->body));
	}
	assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
	if (f->type == 'f')
		assert_int_equal(archive_write_data(a, f->body, strlen(f->body)),
				 (la_ssize_t)strlen(f->body));
}

/* The archive and a manifest that agrees with it in every respect. */
static void forge(const char *archive, const forged *f, size_t n, const char *const *extras,
		  size_t n_extras)
{
	struct archive *a = archive_write_new();
	struct archive_entry *e = archive_entry_new();
	char *mpath = dgm_archive_manifest_path(archive), *dir = dgm_xstrdup(archive);
	dgm_archive_manifest m = { 0 };
	dgm_error err = DGM_ERROR_INIT;
	long long size;

	*strrchr(dir, '/') = '\0';
	archive_write_set_format_pax_restricted(a);
	archive_write_add_filter_zstd(a);
	assert_int_equal(archive_write_open_filename(a, archive), ARCHIVE_OK);
	for (size_t i = 0; i < n; i++) {
		dgm_archive_entry me = { (char *)f[i].path, DGM_ARCHIVE_FILE, 0, f[i].mode, T0, "" };

		put_entry(a, e, &f[i]);
		if (f[i].type == 'd')
			me.type = DGM_ARCHIVE_DIR;
		else {
			me.type = f[i].type == 'l' ? DGM_ARCHIVE_SYMLINK : DGM_ARCHIVE_FILE;
			me.size = (long long)strlen(f[i].body);
			sha_of_text(me.sha256, dir, f[i].body);
		}
		dgm_archive_manifest_add(&m, &me);
		m.content_bytes += me.type == DGM_ARCHIVE_FILE ? me.size : 0;
	}
	assert_int_equal(archive_write_close(a), ARCHIVE_OK);
	archive_write_free(a);
	archive_entry_free(e);
	assert_int_equal(dgm_fs_sha256_file(m.archive_sha256, &size, archive, NULL), 0);
	m.archive_bytes = size;
	m.store = dgm_xstrdup("/srv/models");
	m.created = T0;
	m.extras = dgm_xcalloc(n_extras + 1, sizeof(*m.extras));
	for (size_t i = 0; i < n_extras; i++)
		m.extras[i] = dgm_xstrdup(extras[i]);
	m.n_extras = n_extras;
	assert_int_equal(dgm_archive_manifest_index(&m, &err), 0);
	assert_int_equal(dgm_archive_manifest_write(&m, mpath, &err), 0);
	dgm_archive_manifest_free(&m);
	free(mpath);
	free(dir);
}

/* --- 13.1: entries deeper than PATH_MAX ----------------------------------- */

/* store/ then a chain of folders that ends 4087 bytes into the staged
 * path (root_len: the staging folder's, with its '/'), so that the next
 * name, a folder named like a decoy, passes PATH_MAX: libarchive 3.6
 * then changes into the chain and sets owner and mode by that short
 * name. Then a symlink named like the other decoy. */
static forged *deep_entries(size_t *n, char ***names, size_t root_len)
{
	size_t left = PATH_MAX - 9 - root_len - strlen("store"), k = 0;
	forged *f = dgm_xcalloc(PATH_MAX / 100 + 4, sizeof(*f));
	dgm_buf path = DGM_BUF_INIT;

	*names = dgm_xcalloc(PATH_MAX / 100 + 4, sizeof(**names));
	dgm_buf_puts(&path, "store");
	f[k++] = (forged){ "store", 'd', 0755, NULL, FOREIGN };
	while (left > 0) {
		size_t c = left > 201 ? 200 : left - 1;

		if (left > 201 && left - 201 < 2)
			c = 150;
		dgm_buf_putc(&path, '/');
		for (size_t i = 0; i < c; i++)
			dgm_buf_putc(&path, 'd');
		left -= c + 1;
		(*names)[k] = dgm_xstrdup(path.ptr);
		f[k] = (forged){ (*names)[k], 'd', 0755, NULL, FOREIGN };
		k++;
	}
	(*names)[k] = dgm_xasprintf("%s/decoy-dir", path.ptr);
	f[k] = (forged){ (*names)[k], 'd', 0755, NULL, FOREIGN };
	k++;
	(*names)[k] = dgm_xasprintf("%s/decoy-link", path.ptr);
	f[k] = (forged){ (*names)[k], 'l', 0777, "x", FOREIGN };
	k++;
	dgm_buf_free(&path);
	*n = k;
	return f;
}

static void expect_untouched(const char *path)
{
	struct stat st;

	assert_int_equal(lstat(path, &st), 0);
	if ((st.st_mode & 07777) != 0644 || st.st_uid != 0 || st.st_gid != 0)
		fail_msg("'%s' was changed: mode %04o, owner %d:%d", path, st.st_mode & 07777,
			 (int)st.st_uid, (int)st.st_gid);
}

static void deep_entries_cannot_touch_the_working_folder(void **state)
{
	char *dir = new_case("deep"), *cwd_dir = join(dir, "cwd"), *archive = join(dir, "d.tar.zst");
	char *target = join(dir, "models"), *decoy_d = join(cwd_dir, "decoy-dir");
	char *decoy_l = join(cwd_dir, "decoy-link"), *saved = getcwd(NULL, 0), **names;
	dgm_archive_restore_opts o = { .archive = archive, .target = target };
	dgm_archive_restore_state r;
	dgm_error err = DGM_ERROR_INIT;
	size_t n;
	forged *f = deep_entries(&n, &names, strlen(target) + strlen(".restore-XXXXXX/"));
	int rc;

	if (geteuid() != 0)
		skip();
	assert_int_equal(mkdir(cwd_dir, 0755), 0);
	put_str(cwd_dir, "decoy-dir", "decoy\n", 0644);
	put_str(cwd_dir, "decoy-link", "decoy\n", 0644);
	forge(archive, f, n, NULL, 0);
	/* as a service started from a folder: the decoys are where relative
	 * names would land */
	assert_int_equal(chdir(cwd_dir), 0);
	rc = dgm_archive_restore(&r, &o, &err);
	assert_int_equal(chdir(saved), 0);
	expect_untouched(decoy_d);
	expect_untouched(decoy_l);
	assert_int_equal(rc, -1);
	print_message("refused: %s\n", err.msg);
	assert_non_null(strstr(err.msg, "too long"));
	assert_false(exists(target));
	expect_no_leftovers(target);
	/* verify refuses it the same way */
	assert_int_equal(dgm_archive_verify(archive, NULL, &err), -1);
	assert_non_null(strstr(err.msg, "too long"));
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	free(f);
	free(saved);
	free(dir);
	free(cwd_dir);
	free(archive);
	free(target);
	free(decoy_d);
	free(decoy_l);
}

/* --- 13.2: set-id bits, loose modes and foreign owners ------------------- */

static void expect_restore_refused(const char *dir, const char *name, const forged *f, size_t n,
				   const char *msg)
{
	char *archive = dgm_xasprintf("%s/%s.tar.zst", dir, name);
	char *target = dgm_xasprintf("%s/%s-models", dir, name);
	dgm_archive_restore_opts o = { .archive = archive, .target = target };
	dgm_archive_restore_state r;
	dgm_error err = DGM_ERROR_INIT;

	forge(archive, f, n, NULL, 0);
	assert_int_equal(dgm_archive_restore(&r, &o, &err), -1);
	print_message("%s: %s\n", name, err.msg);
	if (!strstr(err.msg, msg))
		fail_msg("expected '%s' in '%s'", msg, err.msg);
	assert_false(exists(target));
	expect_no_leftovers(target);
	/* and verify says the same */
	assert_int_equal(dgm_archive_verify(archive, NULL, &err), -1);
	if (!strstr(err.msg, msg))
		fail_msg("verify: expected '%s' in '%s'", msg, err.msg);
	free(archive);
	free(target);
}

static void set_id_bits_and_loose_modes_are_refused(void **state)
{
	char *dir = new_case("set-id");
	static const unsigned modes[] = { 04755, 02755, 06755, 01755 };

	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		char name[32];
		const forged file[] = { { "store", 'd', 0755, NULL, 0 },
					{ "store/tool", 'f', modes[i], "#!/bin/sh\n", FOREIGN } };
		const forged folder[] = { { "store", 'd', 0755, NULL, 0 },
					  { "store/sub", 'd', modes[i], NULL, FOREIGN } };

		snprintf(name, sizeof(name), "file-%04o", modes[i]);
		expect_restore_refused(dir, name, file, 2, "setuid, setgid or sticky");
		snprintf(name, sizeof(name), "dir-%04o", modes[i]);
		expect_restore_refused(dir, name, folder, 2, "setuid, setgid or sticky");
	}
	{
		const forged open_root[] = { { "store", 'd', 0777, NULL, 0 } };
		const forged open_file[] = { { "store", 'd', 0755, NULL, 0 },
					     { "store/w", 'f', 0666, "w\n", 0 } };

		expect_restore_refused(dir, "root-0777", open_root, 1, "writable by everyone");
		expect_restore_refused(dir, "file-0666", open_file, 2, "writable by everyone");
	}
	free(dir);
}

/* Every entry below path (path included) owned by uid:gid, no set-id bit. */
static void expect_owned(const char *path, uid_t uid, gid_t gid)
{
	struct stat st;

	assert_int_equal(lstat(path, &st), 0);
	if (st.st_uid != uid || st.st_gid != gid || (st.st_mode & 06000))
		fail_msg("'%s': owner %d:%d, mode %04o", path, (int)st.st_uid, (int)st.st_gid,
			 st.st_mode & 07777);
}

static void owners_come_from_the_store_not_the_archive(void **state)
{
	char *dir = new_case("owners"), *archive = join(dir, "o.tar.zst");
	char *target = join(dir, "models");
	const forged f[] = { { "store", 'd', 0755, NULL, FOREIGN },
			     { "store/sub", 'd', 0750, NULL, FOREIGN },
			     { "store/sub/m.bin", 'f', 0644, "weights\n", FOREIGN },
			     { "store/latest", 'l', 0777, "sub/m.bin", FOREIGN } };
	static const char *const names[] = { "", "/sub", "/sub/m.bin", "/latest" };
	dgm_archive_restore_opts o = { .archive = archive, .target = target };
	dgm_archive_restore_state r;
	dgm_error err = DGM_ERROR_INIT;
	char *saved;
	int rc;

	if (geteuid() != 0)
		skip();
	forge(archive, f, 4, NULL, 0);
	/* the store belongs to a service user: so does what is restored */
	assert_int_equal(mkdir(target, 0755), 0);
	assert_int_equal(chown(target, 1234, 1235), 0);
	/* run from '/', as cron and systemd do: nothing depends on it */
	saved = getcwd(NULL, 0);
	assert_int_equal(chdir("/"), 0);
	rc = dgm_archive_restore(&r, &o, &err);
	assert_int_equal(chdir(saved), 0);
	free(saved);
	if (rc)
		fail_msg("%s", err.msg);
	assert_int_equal(dgm_archive_restore_commit(&r, &err), 0);
	dgm_archive_restore_free(&r);
	for (size_t i = 0; i < 4; i++) {
		char *p = dgm_xasprintf("%s%s", target, names[i]);

		expect_owned(p, 1234, 1235);
		free(p);
	}
	expect_no_leftovers(target);
	free(dir);
	free(archive);
	free(target);
}

/* Our own archives never hold what a restore refuses: set-id, sticky
 * and world-write bits are stripped when archiving, so a store that has
 * them is still archived, verified and restored (without them). */
static void archiving_strips_what_a_restore_refuses(void **state)
{
	char *dir = new_case("strip"), *store = join(dir, "models"), *archive = join(dir, "s.tar.zst");
	char *target = join(dir, "restored"), *sub = join(store, "shared");
	dgm_archive_opts co = { .dest = archive, .store = store };
	dgm_archive_restore_opts ro = { .archive = archive, .target = target };
	dgm_archive_restore_state r;
	dgm_archive_manifest m;
	dgm_error err = DGM_ERROR_INIT;
	static const char *const names[] = { "store/tool", "store/shared", "store/open.json" };
	static const unsigned want[] = { 0755, 0775, 0664 };

	assert_int_equal(mkdir(store, 0755), 0);
	assert_int_equal(mkdir(sub, 0755), 0);
	put_str(store, "tool", "#!/bin/sh\n", 04755);
	put_str(store, "open.json", "{}\n", 0666);
	assert_int_equal(chmod(sub, 02777), 0);
	if (dgm_archive_create(&m, &co, &err))
		fail_msg("%s", err.msg);
	for (size_t i = 0; i < 3; i++) {
		const dgm_archive_entry *e = dgm_archive_manifest_find(&m, names[i]);

		assert_non_null(e);
		if (e->mode != want[i])
			fail_msg("'%s' recorded as %04o, not %04o", names[i], e->mode, want[i]);
	}
	dgm_archive_manifest_free(&m);
	if (dgm_archive_verify(archive, NULL, &err))
		fail_msg("%s", err.msg);
	if (dgm_archive_restore(&r, &ro, &err))
		fail_msg("%s", err.msg);
	assert_int_equal(dgm_archive_restore_commit(&r, &err), 0);
	dgm_archive_restore_free(&r);
	{
		char *tool = join(target, "tool");
		struct stat st;

		assert_int_equal(lstat(tool, &st), 0);
		assert_int_equal(st.st_mode & 07777, 0755);
		free(tool);
	}
	free(dir);
	free(store);
	free(archive);
	free(target);
	free(sub);
}

/* --- 13.3: verify applies the checks of a restore ------------------------ */

static void expect_verify_refuses(const char *dir, const char *name, const forged *f, size_t n,
				  const char *const *extras, size_t n_extras, const char *msg)
{
	char *archive = dgm_xasprintf("%s/%s.tar.zst", dir, name);
	dgm_error err = DGM_ERROR_INIT;

	forge(archive, f, n, extras, n_extras);
	assert_int_equal(dgm_archive_verify(archive, NULL, &err), -1);
	print_message("%s: %s\n", name, err.msg);
	if (!strstr(err.msg, msg))
		fail_msg("expected '%s' in '%s'", msg, err.msg);
	free(archive);
}

static void verify_refuses_what_restore_refuses(void **state)
{
	char *dir = new_case("verify");
	const char *rel[] = { "relative/app.yaml" };
	const char *good[] = { "/etc/app.yaml" };
	const forged dotdot[] = { { "store", 'd', 0755, NULL, 0 }, { "../x", 'f', 0644, "x", 0 } };
	const forged abs[] = { { "store", 'd', 0755, NULL, 0 }, { "/tmp/x", 'f', 0644, "x", 0 } };
	const forged through[] = { { "store", 'd', 0755, NULL, 0 }, { "store/l", 'l', 0777, "/", 0 },
				   { "store/l/x", 'f', 0644, "x", 0 } };
	const forged suid[] = { { "store", 'd', 0755, NULL, 0 }, { "store/x", 'f', 04755, "x", 0 } };
	const forged no_root[] = { { "extra", 'd', 0700, NULL, 0 } };
	const forged stray[] = { { "store", 'd', 0755, NULL, 0 }, { "extra", 'd', 0700, NULL, 0 },
				 { "extra/0", 'd', 0700, NULL, 0 },
				 { "extra/0/passwd", 'f', 0644, "x", 0 } };
	const forged extra_ok[] = { { "store", 'd', 0755, NULL, 0 }, { "extra", 'd', 0700, NULL, 0 },
				    { "extra/0", 'd', 0700, NULL, 0 },
				    { "extra/0/app.yaml", 'f', 0644, "x", 0 } };
	const forged renamed[] = { { "store", 'd', 0755, NULL, 0 }, { "extra", 'd', 0700, NULL, 0 },
				   { "extra/0", 'd', 0700, NULL, 0 },
				   { "extra/0/shadow", 'f', 0644, "x", 0 } };

	expect_verify_refuses(dir, "dotdot", dotdot, 2, NULL, 0, "a '..' component");
	expect_verify_refuses(dir, "absolute", abs, 2, NULL, 0, "an absolute path");
	expect_verify_refuses(dir, "through", through, 3, NULL, 0, "goes through symlink");
	expect_verify_refuses(dir, "suid", suid, 2, NULL, 0, "setuid, setgid or sticky");
	expect_verify_refuses(dir, "no-root", no_root, 1, good, 1, "no 'store' folder");
	expect_verify_refuses(dir, "stray-extra", stray, 4, NULL, 0, "not an extra path");
	expect_verify_refuses(dir, "relative-extra", extra_ok, 4, rel, 1, "not an absolute");
	expect_verify_refuses(dir, "renamed-extra", renamed, 4, good, 1, "not an extra path");
	free(dir);
}

/* --- 13.4: nothing staged is left behind --------------------------------- */

static void unrequested_extras_are_not_extracted_or_left(void **state)
{
	char *dir = new_case("extras"), *archive = join(dir, "e.tar.zst");
	char *target = join(dir, "models"), *app = join(dir, "app.yaml"), *conf = join(dir, "c.yaml");
	const char *extras[] = { app, conf };
	char *p0 = dgm_xasprintf("extra/0/app.yaml"), *p1 = dgm_xasprintf("extra/1/c.yaml");
	const forged f[] = { { "store", 'd', 0755, NULL, 0 }, { "store/m", 'f', 0644, "m\n", 0 },
			     { "extra", 'd', 0700, NULL, 0 }, { "extra/0", 'd', 0700, NULL, 0 },
			     { p0, 'f', 0640, "feature: on\n", 0 }, { "extra/1", 'd', 0700, NULL, 0 },
			     { p1, 'f', 0640, "c: 1\n", 0 } };
	dgm_archive_restore_opts o = { .archive = archive, .target = target,
				       .restore_extras = extras, .n_restore_extras = 1 };
	dgm_archive_restore_state r;
	dgm_error err = DGM_ERROR_INIT;
	dgm_buf text = DGM_BUF_INIT;

	forge(archive, f, 7, extras, 2);
	put_str(dir, "app.yaml", "feature: off\n", 0600);
	put_str(dir, "c.yaml", "c: 2\n", 0600);
	if (dgm_archive_restore(&r, &o, &err))
		fail_msg("%s", err.msg);
	assert_int_equal(dgm_archive_restore_commit(&r, &err), 0);
	dgm_archive_restore_free(&r);
	assert_int_equal(dgm_buf_read_file(&text, app, NULL), 0);
	assert_string_equal(text.ptr, "feature: on\n");
	dgm_buf_clear(&text);
	assert_int_equal(dgm_buf_read_file(&text, conf, NULL), 0);
	assert_string_equal(text.ptr, "c: 2\n");
	/* neither the store's staging folder nor the unrestored extra stays */
	expect_no_leftovers(target);
	expect_no_leftovers(app);
	expect_no_leftovers(conf);
	dgm_buf_free(&text);
	free(p0);
	free(p1);
	free(dir);
	free(archive);
	free(target);
	free(app);
	free(conf);
}

/* --- 13.5: a damaged archive is never taken as intact --------------------- */

static void a_truncated_archive_fails_even_over_an_identical_store(void **state)
{
	char *dir = new_case("identical"), *store = join(dir, "models");
	char *archive = join(dir, "s.tar.zst"), *sub = join(store, "sub");
	dgm_archive_opts co = { .dest = archive, .store = store };
	dgm_archive_restore_opts o = { .archive = archive, .target = store };
	dgm_archive_restore_state r;
	dgm_error err = DGM_ERROR_INIT;
	struct stat st;
	bool same = true;

	assert_int_equal(mkdir(store, 0755), 0);
	assert_int_equal(mkdir(sub, 0755), 0);
	for (int i = 0; i < 50; i++) {
		char name[32], body[96];

		snprintf(name, sizeof(name), "sub/m%02d.json", i);
		snprintf(body, sizeof(body), "{\"model\": %d, \"pad\": \"%040d\"}\n", i, i);
		put_str(store, name, body, 0644);
	}
	if (dgm_archive_create(NULL, &co, &err))
		fail_msg("%s", err.msg);
	assert_int_equal(stat(archive, &st), 0);
	assert_int_equal(truncate(archive, st.st_size / 2), 0);
	/* the store matches the manifest file by file: still, the archive is read */
	assert_int_equal(dgm_archive_restore(&r, &o, &err), -1);
	print_message("restore: %s\n", err.msg);
	expect_no_leftovers(store);
	/* and a snapshot must not link it as "the same" */
	err = (dgm_error)DGM_ERROR_INIT;
	if (dgm_archive_store_matches(&same, archive, store, true, &err) == 0)
		assert_false(same);
	else
		print_message("store_matches: %s\n", err.msg);
	free(dir);
	free(store);
	free(archive);
	free(sub);
}

/* --- 13.6: sizes from the manifest are bounded --------------------------- */

#define ZEROS "0000000000000000000000000000000000000000000000000000000000000000"
#define HEAD(count, content) "{\"format\": \"dgmigrate-archive-manifest\", \"version\": 1, " \
	"\"created\": 1, \"archive_sha256\": \"" ZEROS "\", \"archive_bytes\": 0, " \
	"\"entry_count\": " count ", \"content_bytes\": " content ", \"store\": \"/s\", " \
	"\"extras\": [], \"entries\": [{\"path\": \"store\", \"type\": \"dir\", " \
	"\"mode\": \"0755\", \"mtime\": 1, \"size\": 0}"

static void expect_manifest_refused(const char *dir, const char *text, const char *msg)
{
	char *path = join(dir, "m.json");
	dgm_archive_manifest m;
	dgm_error err = DGM_ERROR_INIT;

	assert_int_equal(dgm_fs_write_atomic(path, text, strlen(text), 0600, NULL), 0);
	if (dgm_archive_manifest_read(&m, path, &err) == 0) {
		dgm_archive_manifest_free(&m);
		fail_msg("accepted: %s", text);
	}
	print_message("%s\n", err.msg);
	if (!strstr(err.msg, msg))
		fail_msg("expected '%s' in '%s'", msg, err.msg);
	free(path);
}

static void sizes_are_bounded_by_the_entry_type(void **state)
{
	char *dir = new_case("sizes");

	/* a symlink target of 9.2e18 bytes */
	expect_manifest_refused(dir, HEAD("2", "0") ", {\"path\": \"store/l\", \"type\": "
				"\"symlink\", \"mode\": \"0777\", \"mtime\": 1, \"size\": "
				"9223372036854775807, \"sha256\": \"" ZEROS "\"}]}\n", "symlink");
	/* file sizes whose sum wraps around to 0 */
	expect_manifest_refused(dir, HEAD("4", "0") ", {\"path\": \"store/a\", \"type\": "
				"\"file\", \"mode\": \"0644\", \"mtime\": 1, \"size\": "
				"9223372036854775807, \"sha256\": \"" ZEROS "\"}, {\"path\": "
				"\"store/b\", \"type\": \"file\", \"mode\": \"0644\", \"mtime\": 1, "
				"\"size\": 9223372036854775807, \"sha256\": \"" ZEROS "\"}, "
				"{\"path\": \"store/c\", \"type\": \"file\", \"mode\": \"0644\", "
				"\"mtime\": 1, \"size\": 2, \"sha256\": \"" ZEROS "\"}]}\n",
				"too large");
	/* set-id bits are not something a manifest records */
	expect_manifest_refused(dir, HEAD("2", "1") ", {\"path\": \"store/a\", \"type\": "
				"\"file\", \"mode\": \"4755\", \"mtime\": 1, \"size\": 1, "
				"\"sha256\": \"" ZEROS "\"}]}\n", "setuid, setgid or sticky");
	free(dir);
}

static int setup(void **state)
{
	char tmpl[] = "/tmp/dgm-archive-hostile.XXXXXX";

	sandbox = dgm_xstrdup(mkdtemp(tmpl));
	return 0;
}

static int teardown(void **state)
{
	dgm_error err = DGM_ERROR_INIT;

	dgm_fs_remove_tree(sandbox, &err);
	free(sandbox);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(deep_entries_cannot_touch_the_working_folder),
		cmocka_unit_test(set_id_bits_and_loose_modes_are_refused),
		cmocka_unit_test(owners_come_from_the_store_not_the_archive),
		cmocka_unit_test(archiving_strips_what_a_restore_refuses),
		cmocka_unit_test(verify_refuses_what_restore_refuses),
		cmocka_unit_test(unrequested_extras_are_not_extracted_or_left),
		cmocka_unit_test(a_truncated_archive_fails_even_over_an_identical_store),
		cmocka_unit_test(sizes_are_bounded_by_the_entry_type),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
