/* test_run_fork.c - what a child does between fork() and exec.
 *
 * In a threaded dgmigrate, a lock another thread holds at the fork (the
 * allocator's, glibc's environment lock) is never released in the child:
 * a child that allocates or changes its environment before exec may wait
 * forever. This binary replaces setenv() and unsetenv(): in a forked
 * child (marked by a pthread_atfork handler) they end the child with
 * exit code 99 instead, so a child that calls them is seen, every time,
 * without having to catch the rare unlucky fork. */

#include <dlfcn.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dgm/buf.h"
#include "dgm/error.h"
#include "dgm/run.h"

static volatile int in_child;

static void mark_child(void)
{
	in_child = 1;
}

int setenv(const char *name, const char *value, int overwrite)
{
	int (*real)(const char *, const char *, int);

	if (in_child)
		_exit(99);
	*(void **)&real = dlsym(RTLD_NEXT, "setenv");
	return real(name, value, overwrite);
}

int unsetenv(const char *name)
{
	int (*real)(const char *);

	if (in_child)
		_exit(99);
	*(void **)&real = dlsym(RTLD_NEXT, "unsetenv");
	return real(name);
}

static void child_sets_env_without_setenv(void **state)
{
	const char *argv[] = { "sh", "-c", "printf '%s|%s|%s' \"$DGM_A\" \"${DGM_GONE-unset}\" \"$DGM_B\"",
			       NULL };
	const char *set[] = { "DGM_A=first", "DGM_B=x", "DGM_A=second", NULL };
	const char *unset[] = { "DGM_GONE", NULL };
	dgm_error e = DGM_ERROR_INIT;
	dgm_buf out = DGM_BUF_INIT;
	dgm_child c = { .argv = argv, .out = &out, .env_set = set, .env_unset = unset };

	(void)state;
	assert_int_equal(setenv("DGM_GONE", "here", 1), 0);
	assert_int_equal(setenv("DGM_B", "old", 1), 0);
	assert_int_equal(dgm_run_status(&c, &e), 0);
	assert_int_not_equal(c.exit_code, 99);
	assert_int_equal(c.exit_code, 0);
	/* the last of two values wins, as successive setenv() calls did */
	assert_string_equal(out.ptr, "second|unset|x");
	dgm_buf_free(&out);
	unsetenv("DGM_GONE");
	unsetenv("DGM_B");
}

static void child_path_comes_from_its_environment(void **state)
{
	const char *argv[] = { "dgm-only-here", NULL };
	char dir[] = "/tmp/dgm-run-XXXXXX", prog[64], path[96];
	const char *set[] = { path, NULL };
	dgm_error e = DGM_ERROR_INIT;
	dgm_buf out = DGM_BUF_INIT;
	dgm_child c = { .argv = argv, .out = &out, .env_set = set };
	FILE *f;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(prog, sizeof(prog), "%s/dgm-only-here", dir);
	snprintf(path, sizeof(path), "PATH=%s:/usr/bin:/bin", dir);
	f = fopen(prog, "w");
	assert_non_null(f);
	fputs("#!/bin/sh\necho found\n", f);
	fclose(f);
	assert_int_equal(chmod(prog, 0755), 0);
	assert_int_equal(dgm_run(&c, &e), 0);
	assert_string_equal(out.ptr, "found\n");
	unlink(prog);
	rmdir(dir);
	dgm_buf_free(&out);
}

static void child_reports_a_folder_it_cannot_enter(void **state)
{
	const char *argv[] = { "true", NULL };
	dgm_error e = DGM_ERROR_INIT;
	dgm_child c = { .argv = argv, .cwd = "/nonexistent/dgm" };

	(void)state;
	assert_int_equal(dgm_run(&c, &e), -1);
	assert_non_null(strstr(e.msg, "cannot change to folder '/nonexistent/dgm': No such file or directory"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(child_sets_env_without_setenv),
		cmocka_unit_test(child_path_comes_from_its_environment),
		cmocka_unit_test(child_reports_a_folder_it_cannot_enter),
	};

	pthread_atfork(NULL, NULL, mark_child);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
