/* test_archive_chain.c - model store archives that hold only what
 * changed (archive.h, "Chains"): a chain of five restores byte for byte
 * (content, modes, links) with a middle snapshot gone, an unchanged
 * store's archive holds no file at all (nothing was read again), and a
 * base that is missing or forged is refused, naming the snapshot and a
 * file it holds. Snapshot folders are laid out as the snapshot module
 * lays them out: SNAPS/<id>/models.tar.zst. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

#include "dgm/archive.h"
#include "dgm/buf.h"
#include "dgm/fs.h"

static char *sandbox, *store, *snaps;

static char *archive_of(const char *id)
{
	return dgm_xasprintf("%s/%s/models.tar.zst", snaps, id);
}

/* STORE/rel in a static buffer (one at a time). */
static const char *at(const char *rel)
{
	static char path[4096];

	snprintf(path, sizeof(path), "%s/%s", store, rel);
	return path;
}

static void put(const char *rel, const char *text, mode_t mode)
{
	char *path = dgm_xasprintf("%s/%s", store, rel);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	assert_int_equal(close(fd), 0);
	assert_int_equal(chmod(path, mode), 0);
	free(path);
}

/* File times come from a coarse clock: wait (a condition, not a timed
 * assertion) until it has moved well past the last change, so the
 * snapshot taken next may record the files' identities. */
static void settle(void)
{
	char *probe = dgm_xasprintf("%s/probe", sandbox);
	struct timespec now, pause = { 0, 10000000 };
	struct stat st;
	long long mark;

	put("../probe", "x", 0600);
	assert_int_equal(stat(probe, &st), 0);
	mark = (long long)st.st_ctim.tv_sec * 1000000000LL + st.st_ctim.tv_nsec + 80000000LL;
	for (;;) {
		clock_gettime(CLOCK_REALTIME, &now);
		if ((long long)now.tv_sec * 1000000000LL + now.tv_nsec > mark)
			break;
		nanosleep(&pause, NULL);
	}
	unlink(probe);
	free(probe);
}

static void snapshot(const char *id, const char *base)
{
	char *dir = dgm_xasprintf("%s/%s", snaps, id), *archive = archive_of(id);
	dgm_archive_opts o = { .dest = archive, .store = store, .level = 3, .base_id = base };
	dgm_error err = DGM_ERROR_INIT;

	settle();
	assert_int_equal(mkdir(dir, 0700), 0);
	if (dgm_archive_create(NULL, &o, &err) || dgm_archive_verify_new(archive, &err))
		fail_msg("snapshot %s: %s", id, err.msg);
	free(dir);
	free(archive);
}

/* --- a tree as text: every path, type, mode, size, content hash ------- */

static dgm_buf *print_to;
static size_t print_root;

static int print_one(const char *path, const struct stat *st, int flag, struct FTW *f)
{
	char sha[65] = "", link[256] = "";
	long long size = 0;

	if (S_ISREG(st->st_mode))
		assert_int_equal(dgm_fs_sha256_file(sha, &size, path, NULL), 0);
	if (S_ISLNK(st->st_mode))
		assert_true(readlink(path, link, sizeof(link) - 1) >= 0);
	dgm_buf_printf(print_to, "%s %o %lld %lld %s %s\n", path + print_root,
		       (unsigned)st->st_mode, (long long)(S_ISDIR(st->st_mode) ? 0 : st->st_size),
		       (long long)st->st_mtime, sha, link);
	return 0;
}

static char *print_tree(const char *root)
{
	dgm_buf b = DGM_BUF_INIT;

	print_to = &b;
	print_root = strlen(root);
	assert_int_equal(nftw(root, print_one, 16, FTW_PHYS), 0);
	dgm_buf_putc(&b, '\0');
	return b.ptr; /* nftw walks in directory order: the same tree, the same text */
}

static char *restore_to(const char *id, const char *name, dgm_error *err)
{
	char *archive = archive_of(id), *target = dgm_xasprintf("%s/%s", sandbox, name), *text;
	dgm_archive_restore_opts o = { .archive = archive, .target = target };
	dgm_archive_restore_state r;
	int rc = dgm_archive_restore(&r, &o, err);

	if (rc == 0)
		assert_int_equal(dgm_archive_restore_commit(&r, err), 0);
	dgm_archive_restore_free(&r);
	text = rc ? NULL : print_tree(target);
	free(archive);
	free(target);
	return text;
}

/* Regular files in the archive file itself. */
static int files_in(const char *id)
{
	char *path = archive_of(id);
	struct archive *a = archive_read_new();
	struct archive_entry *e;
	int n = 0;

	archive_read_support_filter_zstd(a);
	archive_read_support_format_tar(a);
	assert_int_equal(archive_read_open_filename(a, path, 65536), ARCHIVE_OK);
	while (archive_read_next_header(a, &e) == ARCHIVE_OK)
		n += archive_entry_filetype(e) == AE_IFREG;
	archive_read_free(a);
	free(path);
	return n;
}

static void build_store(void)
{
	char name[64];

	assert_int_equal(mkdir(store, 0755), 0);
	put("weights.bin", "0123456789abcdef", 0644);
	put("run.sh", "#!/bin/sh\n", 0755);
	assert_int_equal(mkdir(at("json"), 0755), 0);
	for (int i = 0; i < 20; i++) {
		snprintf(name, sizeof(name), "json/m%02d.json", i);
		put(name, "{\"model\": 1}\n", 0644);
	}
	assert_int_equal(symlink("weights.bin", at("current")), 0);
}

static int setup(void **state)
{
	char tmpl[] = "/tmp/dgm-archive-chain.XXXXXX";

	sandbox = dgm_xstrdup(mkdtemp(tmpl));
	store = dgm_xasprintf("%s/models", sandbox);
	snaps = dgm_xasprintf("%s/snaps", sandbox);
	assert_int_equal(mkdir(snaps, 0700), 0);
	build_store();
	return 0;
}

static int teardown(void **state)
{
	dgm_error err = DGM_ERROR_INIT;

	dgm_fs_remove_tree(sandbox, &err);
	free(sandbox);
	free(store);
	free(snaps);
	return 0;
}

/* --- the tests --------------------------------------------------------- */

static const char *const ids[] = { "", "s1", "s2", "s3", "s4", "s5" };

/* compare.c: the store against a manifest (no public header: the
 * archive module's own) */
void ar_compare_store(bool *identical, unsigned char *same, const char *target,
		      const dgm_archive_manifest *m, unsigned char *buf);

/* Bytes this process has read through read(2) and friends so far. */
static long long bytes_read(void)
{
	FILE *f = fopen("/proc/self/io", "r");
	long long n = -1;
	char line[128];

	assert_non_null(f);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "rchar: %lld", &n) == 1)
			break;
	fclose(f);
	assert_true(n >= 0);
	return n;
}

/* compare s1's manifest with the store: identical?, and bytes read */
static bool compare_with_s1(long long *read)
{
	char *archive = archive_of("s1"), *mpath = dgm_archive_manifest_path(archive);
	unsigned char *seen, *buf = dgm_xmalloc(DGM_ARCHIVE_BLOCK);
	dgm_archive_manifest m;
	dgm_error err = DGM_ERROR_INIT;
	bool same;
	long long before;

	if (dgm_archive_manifest_read(&m, mpath, &err))
		fail_msg("manifest: %s", err.msg);
	seen = dgm_xcalloc(m.n_entries + 1, 1);
	before = bytes_read();
	ar_compare_store(&same, seen, store, &m, buf);
	*read = bytes_read() - before;
	dgm_archive_manifest_free(&m);
	free(seen);
	free(buf);
	free(mpath);
	free(archive);
	return same;
}

/* The store is compared with a snapshot's manifest (a rollback's safety
 * snapshot links the release's archive when it matches; a restore keeps
 * what matches) by git's index test where the manifest recorded each
 * file's identity: an unchanged file is not read. A file changed behind
 * the same size and mtime (its ctime moved) is read and found changed;
 * one replaced by the same content (a new inode) is read and found the
 * same. */
static void compare_reads_only_what_the_stat_test_cannot_vouch_for(void **state)
{
	char *big = dgm_xmalloc(4 << 20), *tmp = dgm_xasprintf("%s/tmp.bin", sandbox);
	struct timespec times[2];
	struct stat st;
	long long n;
	int fd;

	for (int i = 0; i < (4 << 20); i++)
		big[i] = (char)('a' + i % 23);
	big[(4 << 20) - 1] = 0;
	put("big.bin", big, 0644);
	snapshot("s1", NULL);
	assert_true(compare_with_s1(&n));
	if (n >= 1 << 20)
		fail_msg("an unchanged 4 MiB store was read again: %lld bytes", n);
	/* the same bytes in a new file: read, and the same */
	put("../tmp.bin", big, 0644);
	assert_int_equal(stat(at("big.bin"), &st), 0);
	times[0] = st.st_atim;
	times[1] = st.st_mtim;
	assert_int_equal(utimensat(AT_FDCWD, tmp, times, 0), 0);
	assert_int_equal(rename(tmp, at("big.bin")), 0);
	assert_true(compare_with_s1(&n));
	assert_true(n >= 4 << 20);
	/* changed in place, size and mtime put back: read, and changed */
	fd = open(at("big.bin"), O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, "Z", 1, 100), 1);
	assert_int_equal(close(fd), 0);
	assert_int_equal(utimensat(AT_FDCWD, at("big.bin"), times, 0), 0);
	assert_false(compare_with_s1(&n));
	free(big);
	free(tmp);
}

/* Five snapshots, each chained to the one before, the store changed in
 * every way between them but one; restored each into a new folder and
 * the first over the live store: byte for byte, mode for mode. */
static void chain_of_five_restores_byte_identical_without_a_middle_link(void **state)
{
	char *want[6], *got, *s3 = dgm_xasprintf("%s/s3", snaps);
	dgm_error err = DGM_ERROR_INIT;

	snapshot("s1", NULL);
	want[1] = print_tree(store);
	assert_int_equal(files_in("s1"), 22);
	/* same size, new content; a new file; one gone; a mode changed */
	put("weights.bin", "fedcba9876543210", 0644);
	put("json/new.json", "{}", 0600);
	assert_int_equal(unlink(at("json/m03.json")), 0);
	assert_int_equal(chmod(at("json/m04.json"), 0600), 0);
	snapshot("s2", "s1");
	want[2] = print_tree(store);
	assert_int_equal(files_in("s2"), 3);
	/* unchanged: no file is read again, the archive holds none */
	snapshot("s3", "s2");
	want[3] = print_tree(store);
	assert_int_equal(files_in("s3"), 0);
	put("json/m05.json", "{\"model\": 5}\n", 0644);
	assert_int_equal(rename(at("run.sh"), at("start.sh")), 0);
	snapshot("s4", "s3");
	want[4] = print_tree(store);
	put("json/m06.json", "{\"model\": 6}\n", 0644);
	assert_int_equal(unlink(at("current")), 0);
	assert_int_equal(symlink("json", at("current")), 0);
	snapshot("s5", "s4");
	want[5] = print_tree(store);
	/* s3 holds no file: references are flat, nothing reads from it */
	assert_int_equal(dgm_fs_remove_tree(s3, &err), 0);
	for (int i = 1; i <= 5; i++) {
		char name[16];

		if (i == 3)
			continue;
		snprintf(name, sizeof(name), "restored%d", i);
		got = archive_of(ids[i]);
		if (dgm_archive_verify(got, NULL, &err))
			fail_msg("verify of %s: %s", ids[i], err.msg);
		free(got);
		got = restore_to(ids[i], name, &err);
		if (!got)
			fail_msg("restore of %s: %s", ids[i], err.msg);
		assert_string_equal(got, want[i]);
		free(got);
	}
	/* over the live store: unchanged files copied, the rest from s1 */
	got = restore_to("s1", "models", &err);
	if (!got)
		fail_msg("restore of s1 over the store: %s", err.msg);
	assert_string_equal(got, want[1]);
	free(got);
	for (int i = 1; i <= 5; i++)
		free(want[i]);
	free(s3);
}

static void expect_refused(const char *id, const char *what)
{
	dgm_error err = DGM_ERROR_INIT;
	char *got;

	got = archive_of(id);
	assert_int_equal(dgm_archive_verify(got, NULL, &err), -1);
	free(got);
	if (!strstr(err.msg, "snapshot 's1'") || !strstr(err.msg, "which holds 'store/") ||
	    !strstr(err.msg, what))
		fail_msg("verify: expected snapshot 's1', a file and '%s' in: %s", what, err.msg);
	dgm_error_clear(&err);
	got = restore_to(id, "refused", &err);
	assert_null(got);
	if (!strstr(err.msg, "snapshot 's1'") || !strstr(err.msg, what))
		fail_msg("restore: expected snapshot 's1' and '%s' in: %s", what, err.msg);
	got = dgm_xasprintf("%s/refused", sandbox);
	assert_int_equal(access(got, F_OK), -1);
	free(got);
	dgm_error_clear(&err);
}

static void swap_files(const char *a, const char *b)
{
	char *tmp = dgm_xasprintf("%s.swap", a);

	assert_int_equal(rename(a, tmp), 0);
	assert_int_equal(rename(b, a), 0);
	assert_int_equal(rename(tmp, b), 0);
	free(tmp);
}

/* s2 reads every file from s1: s1's archive gone, damaged, or replaced
 * by another consistent archive (with its manifest) is refused. */
static void missing_or_forged_base_is_refused(void **state)
{
	char *a1 = archive_of("s1"), *m1 = dgm_archive_manifest_path(a1);
	char *ax = archive_of("x"), *mx = dgm_archive_manifest_path(ax);
	char *moved = dgm_xasprintf("%s.moved", a1);
	unsigned char byte;
	int fd;

	snapshot("s1", NULL);
	snapshot("s2", "s1");
	assert_int_equal(files_in("s2"), 0);
	put("weights.bin", "forged forged!!!", 0644);
	snapshot("x", NULL);
	/* missing */
	assert_int_equal(rename(a1, moved), 0);
	expect_refused("s2", "its archive is missing");
	assert_int_equal(rename(moved, a1), 0);
	/* one byte changed, same size */
	fd = open(a1, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &byte, 1, 100), 1);
	byte ^= 1;
	assert_int_equal(pwrite(fd, &byte, 1, 100), 1);
	close(fd);
	expect_refused("s2", "s1/models.tar.zst");
	byte ^= 1;
	fd = open(a1, O_RDWR);
	assert_int_equal(pwrite(fd, &byte, 1, 100), 1);
	close(fd);
	/* another archive and its own manifest in its place */
	swap_files(a1, ax);
	swap_files(m1, mx);
	expect_refused("s2", "not the");
	swap_files(a1, ax);
	swap_files(m1, mx);
	free(a1);
	free(m1);
	free(ax);
	free(mx);
	free(moved);
}

static void write_text(const char *path, const char *text)
{
	assert_int_equal(dgm_fs_write_atomic(path, text, strlen(text), 0600, NULL), 0);
}

/* What a chained manifest may say, strictly. */
static void chain_keys_are_strict(void **state)
{
	static const char *const bad[][2] = {
		{ ", \"in\": \"nobody\"", "not among its bases" },
		{ ", \"in\": \"../x\"", "not a snapshot id" },
		{ ", \"dev\": 1", "go together" },
	};
	char *path = dgm_xasprintf("%s/m.json", sandbox);

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		dgm_buf t = DGM_BUF_INIT;
		dgm_archive_manifest m;
		dgm_error err = DGM_ERROR_INIT;

		dgm_buf_printf(&t, "{\"format\": \"dgmigrate-archive-manifest\", \"version\": 2, "
			       "\"created\": 1, \"archive_sha256\": \"%064d\", \"archive_bytes\": 0, "
			       "\"entry_count\": 2, \"content_bytes\": 1, \"store\": \"/s\", "
			       "\"extras\": [], \"bases\": [], \"entries\": [{\"path\": \"store\", "
			       "\"type\": \"dir\", \"mode\": \"0755\", \"mtime\": 1, \"size\": 0}, "
			       "{\"path\": \"store/f\", \"type\": \"file\", \"mode\": \"0644\", "
			       "\"mtime\": 1, \"size\": 1, \"sha256\": \"%064d\"%s}]}\n", 0, 0, bad[i][0]);
		write_text(path, t.ptr);
		assert_int_equal(dgm_archive_manifest_read(&m, path, &err), -1);
		if (!strstr(err.msg, bad[i][1]))
			fail_msg("expected '%s' in: %s", bad[i][1], err.msg);
		dgm_buf_free(&t);
	}
	free(path);
}

/* Each snapshot changes one file more, so each reads from one archive
 * more: the chain stops at DGM_ARCHIVE_CHAIN_MAX archives (the caller
 * then archives in full). */
static void chains_are_bounded(void **state)
{
	char id[16], prev[16], name[32], *dir, *archive;
	dgm_error err = DGM_ERROR_INIT;

	snapshot("c1", NULL);
	for (int i = 2; i <= DGM_ARCHIVE_CHAIN_MAX; i++) {
		snprintf(prev, sizeof(prev), "c%d", i - 1);
		snprintf(id, sizeof(id), "c%d", i);
		snprintf(name, sizeof(name), "json/m%02d.json", i);
		put(name, "{\"model\": 2}\n", 0644);
		snapshot(id, prev);
		assert_int_equal(files_in(id), 1);
	}
	snprintf(prev, sizeof(prev), "c%d", DGM_ARCHIVE_CHAIN_MAX);
	dir = dgm_xasprintf("%s/next", snaps);
	archive = archive_of("next");
	assert_int_equal(mkdir(dir, 0700), 0);
	dgm_archive_opts o = { .dest = archive, .store = store, .base_id = prev };
	assert_int_equal(dgm_archive_create(NULL, &o, &err), -1);
	if (!strstr(err.msg, "at most 16 in a chain"))
		fail_msg("expected the chain's bound in: %s", err.msg);
	assert_int_equal(access(archive, F_OK), -1);
	free(dir);
	free(archive);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(chain_of_five_restores_byte_identical_without_a_middle_link,
						setup, teardown),
		cmocka_unit_test_setup_teardown(missing_or_forged_base_is_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(compare_reads_only_what_the_stat_test_cannot_vouch_for,
						setup, teardown),
		cmocka_unit_test_setup_teardown(chain_keys_are_strict, setup, teardown),
		cmocka_unit_test_setup_teardown(chains_are_bounded, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
