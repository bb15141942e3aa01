/* test_archive_recover.c - a store restore killed at any point (issue
 * #18.7) is settled by dgm_archive_recover, which the next restore and
 * the next archive of the store call first: the store is whole again
 * (old or new, never missing) and nothing is left beside it. Kills come
 * from the fault-injection hook DGMIGRATE_FAULT_KILL_AT in a child. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dgm/archive.h"
#include "dgm/buf.h"
#include "dgm/fs.h"

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

static void put_str(const char *dir, const char *name, const char *s)
{
	char *path = join(dir, name);

	assert_int_equal(dgm_fs_write_atomic(path, s, strlen(s), 0644, NULL), 0);
	assert_int_equal(chmod(path, 0644), 0);
	free(path);
}

static char *read_str(const char *dir, const char *name)
{
	char *path = join(dir, name);
	dgm_buf b = DGM_BUF_INIT;

	if (dgm_buf_read_file(&b, path, NULL))
		fail_msg("cannot read '%s'", path);
	free(path);
	return b.ptr;
}

/* Names beside the store that start with its name: none may stay. */
static void expect_nothing_beside(const char *dir, const char *store)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	const char *base = strrchr(store, '/') + 1;
	size_t n = strlen(base);

	assert_non_null(d);
	while ((de = readdir(d)))
		if (!strncmp(de->d_name, base, n) && de->d_name[n] == '.')
			fail_msg("'%s' was left beside the store", de->d_name);
	closedir(d);
}

/* models/ with m.json "v1", archived; then changed to "v2" plus new.txt. */
typedef struct fixture {
	char *dir, *store, *archive;
} fixture;

static void make_fixture(fixture *f, const char *name)
{
	dgm_archive_opts o = { 0 };
	dgm_error err = DGM_ERROR_INIT;

	f->dir = new_case(name);
	f->store = join(f->dir, "models");
	f->archive = join(f->dir, "snap.tar.zst");
	assert_int_equal(mkdir(f->store, 0755), 0);
	put_str(f->store, "m.json", "v1");
	o.dest = f->archive;
	o.store = f->store;
	if (dgm_archive_create(NULL, &o, &err))
		fail_msg("%s", err.msg);
	put_str(f->store, "m.json", "v2");
	put_str(f->store, "new.txt", "new");
}

static void free_fixture(fixture *f)
{
	free(f->dir);
	free(f->store);
	free(f->archive);
}

/* Restore (and commit when asked) in a child killed at point. */
static void killed_restore(const fixture *f, const char *point, bool commit)
{
	pid_t pid = fork();
	int status;

	assert_true(pid >= 0);
	if (pid == 0) {
		dgm_archive_restore_opts o = { .archive = f->archive, .target = f->store };
		dgm_archive_restore_state r;
		dgm_error err = DGM_ERROR_INIT;

		setenv("DGMIGRATE_FAULT_KILL_AT", point, 1);
		if (dgm_archive_restore(&r, &o, &err) == 0 && commit)
			dgm_archive_restore_commit(&r, &err);
		_exit(3);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL)
		fail_msg("the restore was not killed at '%s'", point);
}

static void recover_or_fail(const char *store)
{
	dgm_error err = DGM_ERROR_INIT;

	if (dgm_archive_recover(store, &err))
		fail_msg("%s", err.msg);
}

static void expect_old_store(const fixture *f)
{
	char *m = read_str(f->store, "m.json"), *n = read_str(f->store, "new.txt");

	assert_string_equal(m, "v2");
	assert_string_equal(n, "new");
	free(m);
	free(n);
	expect_nothing_beside(f->dir, f->store);
}

static void killed_between_the_renames_is_undone(void **state)
{
	fixture f;

	make_fixture(&f, "between");
	killed_restore(&f, "store.swap.between", false);
	/* the crash this is about: no store at all, its content aside */
	assert_false(exists(f.store));
	recover_or_fail(f.store);
	expect_old_store(&f);
	/* nothing left to do the second time */
	recover_or_fail(f.store);
	expect_old_store(&f);
	free_fixture(&f);
}

static void killed_while_staged_or_swapped_is_undone(void **state)
{
	static const char *const points[] = { "store.staged", "store.swapped" };

	for (size_t i = 0; i < 2; i++) {
		fixture f;

		make_fixture(&f, points[i]);
		killed_restore(&f, points[i], false);
		recover_or_fail(f.store);
		expect_old_store(&f);
		free_fixture(&f);
	}
}

static void killed_once_committed_is_completed(void **state)
{
	fixture f;
	char *m;

	make_fixture(&f, "commit");
	killed_restore(&f, "store.commit", true);
	recover_or_fail(f.store);
	m = read_str(f.store, "m.json");
	assert_string_equal(m, "v1");
	{
		char *n = join(f.store, "new.txt");

		assert_false(exists(n));
		free(n);
	}
	expect_nothing_beside(f.dir, f.store);
	free(m);
	free_fixture(&f);
}

/* The re-run's safety snapshot used to fail on the missing store; the
 * next restore used to leave the staging folder of the killed one. */
static void the_next_archive_or_restore_settles_it_first(void **state)
{
	fixture f;
	char *again = NULL;
	dgm_archive_opts o = { 0 };
	dgm_archive_restore_opts ro = { 0 };
	dgm_archive_restore_state r;
	dgm_error err = DGM_ERROR_INIT;

	make_fixture(&f, "next-run");
	killed_restore(&f, "store.swap.between", false);
	again = join(f.dir, "safety.tar.zst");
	o.dest = again;
	o.store = f.store;
	if (dgm_archive_create(NULL, &o, &err))
		fail_msg("%s", err.msg);
	expect_old_store(&f);

	killed_restore(&f, "store.staged", false);
	ro.archive = f.archive;
	ro.target = f.store;
	if (dgm_archive_restore(&r, &ro, &err))
		fail_msg("%s", err.msg);
	assert_int_equal(dgm_archive_restore_commit(&r, &err), 0);
	dgm_archive_restore_free(&r);
	{
		char *m = read_str(f.store, "m.json");

		assert_string_equal(m, "v1");
		free(m);
	}
	expect_nothing_beside(f.dir, f.store);
	free(again);
	free_fixture(&f);
}

/* A staging folder nobody recorded, deeper than PATH_MAX, with folders
 * that are read-only or closed: removed by descriptors all the same. */
static void stray_staging_folders_are_removed_whatever_their_depth(void **state)
{
	char *dir = new_case("stray"), *store = join(dir, "models");
	char *stray = join(dir, "models.restore-Ab12Cd"), *keep = join(dir, "models.restore-keep");
	char comp[201];
	int fd;

	memset(comp, 'x', 200);
	comp[200] = '\0';
	assert_int_equal(mkdir(store, 0755), 0);
	assert_int_equal(mkdir(stray, 0700), 0);
	assert_int_equal(mkdir(keep, 0700), 0);
	fd = open(stray, O_RDONLY | O_DIRECTORY);
	for (int i = 0; i < 2 * PATH_MAX / 200; i++) {
		int next;

		assert_int_equal(mkdirat(fd, comp, 0700), 0);
		next = openat(fd, comp, O_RDONLY | O_DIRECTORY);
		assert_true(next >= 0);
		if (i % 5 == 0) {
			int f2 = openat(next, "f", O_WRONLY | O_CREAT, 0400);

			close(f2);
			assert_int_equal(symlinkat("/etc/passwd", next, "l"), 0);
		}
		close(fd);
		fd = next;
	}
	assert_int_equal(mkdirat(fd, "closed", 0000), 0);
	assert_int_equal(fchmod(fd, 0500), 0);
	close(fd);
	recover_or_fail(store);
	assert_false(exists(stray));
	/* not a staging folder's name: left alone */
	assert_true(exists(keep));
	assert_true(exists("/etc/passwd"));
	free(dir);
	free(store);
	free(stray);
	free(keep);
}

static void a_forged_intent_file_renames_nothing(void **state)
{
	char *dir = new_case("forged"), *store = join(dir, "models"), *intent;
	char *victim = join(dir, "victim");
	const char *text = "dgmigrate-restore-intent 1\nphase swap\nswap 1 %s - - -\n";
	dgm_buf hex = DGM_BUF_INIT;
	dgm_error err = DGM_ERROR_INIT;
	char *body;

	assert_int_equal(mkdir(store, 0755), 0);
	put_str(dir, "victim", "x");
	for (const unsigned char *p = (const unsigned char *)victim; *p; p++)
		dgm_buf_printf(&hex, "%02x", *p);
	body = dgm_xasprintf(text, hex.ptr);
	intent = dgm_xasprintf("%s.restore.intent", store);
	assert_int_equal(dgm_fs_write_atomic(intent, body, strlen(body), 0600, NULL), 0);
	/* it names another path than the store: refused, nothing moved */
	assert_int_equal(dgm_archive_recover(store, &err), -1);
	print_message("%s\n", err.msg);
	assert_true(exists(victim));
	assert_true(exists(store));
	dgm_buf_free(&hex);
	free(body);
	free(intent);
	free(victim);
	free(store);
	free(dir);
}

static int setup(void **state)
{
	char tmpl[] = "/tmp/dgm-archive-recover.XXXXXX";

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
		cmocka_unit_test(killed_between_the_renames_is_undone),
		cmocka_unit_test(killed_while_staged_or_swapped_is_undone),
		cmocka_unit_test(killed_once_committed_is_completed),
		cmocka_unit_test(the_next_archive_or_restore_settles_it_first),
		cmocka_unit_test(stray_staging_folders_are_removed_whatever_their_depth),
		cmocka_unit_test(a_forged_intent_file_renames_nothing),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
