/* test_swap_marker.c - the marker of a database swap
 * (src/snapshot/swap_marker.c): written whole with the names of the
 * swap, held while its writer lives (other runs exit 3), left by a
 * killed one ("resume first"), never replaced by a second swap, and
 * gone once the swap has finished. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dgm/fs.h"
#include "dgm/restore.h"
#include "../../src/snapshot/internal.h"

typedef struct fixture {
	char dir[64];
	char path[128];
	dgm_plan plan;
	dgm_db_restore r;
} fixture;

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));

	snprintf(f->dir, sizeof(f->dir), "/tmp/dgm-swap-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->path, sizeof(f->path), "%s/db-swap.json", f->dir);
	f->plan.state_dir = f->dir;
	/* no server there: the guard names the situation without asking one */
	f->plan.database.url = "postgresql:///app?host=/nonexistent-dgm-socket-dir";
	f->r.target = "app";
	f->r.aside = "app_dgm_old_S1";
	f->r.staging = "app_dgm_new_S1";
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;
	dgm_error e = DGM_ERROR_INIT;

	dgm_fs_remove_tree(f->dir, &e);
	free(f);
	return 0;
}

static bool exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

static void the_marker_names_the_swap(void **state)
{
	fixture *f = *state;
	dgm_error e = DGM_ERROR_INIT;
	json_t *o;
	int fd;

	assert_int_equal(dgm_db_swap_mark(&fd, &f->plan, &f->r, &e), 0);
	o = json_load_file(f->path, 0, NULL);
	assert_non_null(o);
	assert_string_equal(json_string_value(json_object_get(o, "target")), "app");
	assert_string_equal(json_string_value(json_object_get(o, "aside")), "app_dgm_old_S1");
	assert_string_equal(json_string_value(json_object_get(o, "staging")), "app_dgm_new_S1");
	json_decref(o);
	dgm_db_swap_unmark(&fd, &f->plan, true);
	assert_false(exists(f->path));
	assert_int_equal(dgm_db_swap_guard(&f->plan, &e), 0);
}

static void a_live_swap_refuses_with_exit_3(void **state)
{
	fixture *f = *state;
	dgm_error e = DGM_ERROR_INIT;
	int fd, fd2;

	assert_int_equal(dgm_db_swap_mark(&fd, &f->plan, &f->r, &e), 0);
	assert_int_equal(dgm_db_swap_guard(&f->plan, &e), -1);
	assert_int_equal(e.code, DGM_E_LOCK);
	assert_int_equal(dgm_error_exit_code(&e), 3);
	assert_non_null(strstr(e.msg, "a database swap is under way"));
	dgm_error_clear(&e);
	assert_int_equal(dgm_db_swap_settle(&f->plan, &e), -1);
	assert_int_equal(e.code, DGM_E_LOCK);
	/* a second swap never replaces the marker */
	dgm_error_clear(&e);
	assert_int_equal(dgm_db_swap_mark(&fd2, &f->plan, &f->r, &e), -1);
	assert_non_null(strstr(e.msg, "exists"));
	assert_true(exists(f->path));
	dgm_db_swap_unmark(&fd, &f->plan, true);
}

static void a_killed_swap_says_resume(void **state)
{
	fixture *f = *state;
	dgm_error e = DGM_ERROR_INIT;
	int fd;

	assert_int_equal(dgm_db_swap_mark(&fd, &f->plan, &f->r, &e), 0);
	/* its writer gone: the marker stays, unlocked */
	dgm_db_swap_unmark(&fd, &f->plan, false);
	assert_true(exists(f->path));
	assert_int_equal(dgm_restore_guard(&f->plan, &e), -1);
	assert_int_equal(e.code, DGM_E_RUN);
	assert_non_null(strstr(e.msg, "a database swap of 'app' was interrupted"));
	assert_non_null(strstr(e.msg, "'app_dgm_old_S1'"));
	assert_non_null(strstr(e.hint, "run dgmigrate resume PLAN first"));
}

static void a_marker_naming_other_databases_is_refused(void **state)
{
	fixture *f = *state;
	dgm_error e = DGM_ERROR_INIT;
	FILE *fp = fopen(f->path, "w");

	assert_non_null(fp);
	fputs("{\"target\":\"app\",\"aside\":\"billing\",\"staging\":\"app_dgm_new_S1\"}", fp);
	fclose(fp);
	assert_int_equal(dgm_db_swap_settle(&f->plan, &e), -1);
	assert_non_null(strstr(e.msg, "names databases no swap makes"));
	assert_true(exists(f->path));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(the_marker_names_the_swap, setup, teardown),
		cmocka_unit_test_setup_teardown(a_live_swap_refuses_with_exit_3, setup, teardown),
		cmocka_unit_test_setup_teardown(a_killed_swap_says_resume, setup, teardown),
		cmocka_unit_test_setup_teardown(a_marker_naming_other_databases_is_refused, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
