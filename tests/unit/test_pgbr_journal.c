/* test_pgbr_journal.c - the journal of a pgbackrest restore: cluster
 * (src/pgbr/cluster_journal.c): each state reached is read back, a torn
 * last record is ignored, and the guard refuses other runs - exit 3
 * while a live process holds it, "resume first" once it is left. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "dgm/fs.h"
#include "../../src/pgbr/pgbr_int.h"

typedef struct fixture {
	char dir[64];
	dgm_plan plan;
} fixture;

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));

	snprintf(f->dir, sizeof(f->dir), "/tmp/dgm-pgbr-cj-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	f->plan.state_dir = f->dir;
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

static void write_journal(const fixture *f, const char *text)
{
	char *path = dgm_pgbr_cj_path(&f->plan);
	FILE *fp = fopen(path, "w");

	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
	free(path);
}

static void states_are_read_back(void **state)
{
	fixture *f = *state;
	dgm_error e = DGM_ERROR_INIT;
	json_t *begin = json_pack("{s:s, s:s, s:{s:s}}", "state", "begin", "snapshot", "S1",
				  "point", "restore_point", "dgmigrate-S1");
	dgm_pgbr_cj j;
	bool found;

	assert_int_equal(dgm_pgbr_cj_create(&j, &f->plan, begin, &e), 0);
	/* a second restore cannot start while this one's journal exists */
	{
		dgm_pgbr_cj k;

		assert_int_equal(dgm_pgbr_cj_create(&k, &f->plan, begin, &e), -1);
	}
	assert_int_equal(dgm_pgbr_cj_reached(&j, "stopped", &e), 0);
	assert_int_equal(dgm_pgbr_cj_reached(&j, "restored", &e), 0);
	dgm_pgbr_cj_close(&j);
	json_decref(begin);
	assert_int_equal(dgm_pgbr_cj_open(&j, &f->plan, &found, &e), 0);
	assert_true(found);
	assert_string_equal(j.state, "restored");
	assert_string_equal(json_string_value(json_object_get(j.begin, "snapshot")), "S1");
	assert_int_equal(dgm_pgbr_cj_remove(&j, &f->plan, &e), 0);
	dgm_pgbr_cj_close(&j);
	assert_int_equal(dgm_pgbr_cj_open(&j, &f->plan, &found, &e), 0);
	assert_false(found);
	dgm_pgbr_cj_close(&j);
}

static void a_torn_last_record_is_ignored(void **state)
{
	fixture *f = *state;
	dgm_error e = DGM_ERROR_INIT;
	dgm_pgbr_cj j;
	bool found;

	write_journal(f, "{\"state\":\"begin\",\"snapshot\":\"S2\",\"point\":{}}\n"
			 "{\"state\":\"stopped\"}\n{\"state\":\"resto");
	assert_int_equal(dgm_pgbr_cj_open(&j, &f->plan, &found, &e), 0);
	assert_string_equal(j.state, "stopped");
	dgm_pgbr_cj_close(&j);
	/* killed while the begin record was written: nothing to go on from */
	write_journal(f, "{\"state\":\"begin\",\"snap");
	assert_int_equal(dgm_pgbr_cj_open(&j, &f->plan, &found, &e), 0);
	assert_true(found);
	assert_null(j.begin);
	dgm_pgbr_cj_close(&j);
	/* a damaged record in the middle is not a torn one */
	write_journal(f, "{\"state\":\"begin\",\"point\":{}}\nnot json\n{\"state\":\"stopped\"}\n");
	assert_int_equal(dgm_pgbr_cj_open(&j, &f->plan, &found, &e), -1);
	assert_non_null(strstr(e.msg, "a damaged record"));
	dgm_pgbr_cj_close(&j);
}

static void the_guard_refuses_other_runs(void **state)
{
	fixture *f = *state;
	dgm_error e = DGM_ERROR_INIT;
	char *path = dgm_pgbr_cj_path(&f->plan);
	int fd;

	assert_int_equal(dgm_pgbr_cluster_guard(&f->plan, &e), 0);
	write_journal(f, "{\"state\":\"begin\",\"snapshot\":\"S3\",\"point\":{}}\n"
			 "{\"state\":\"started\"}\n");
	assert_int_equal(dgm_pgbr_cluster_guard(&f->plan, &e), -1);
	assert_int_equal(e.code, DGM_E_RUN);
	assert_non_null(strstr(e.msg, "of snapshot 'S3' was interrupted (state 'started'"));
	assert_non_null(strstr(e.hint, "run dgmigrate resume PLAN first"));
	/* a live restore holds it */
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(flock(fd, LOCK_EX), 0);
	dgm_error_clear(&e);
	assert_int_equal(dgm_pgbr_cluster_guard(&f->plan, &e), -1);
	assert_int_equal(e.code, DGM_E_LOCK);
	assert_non_null(strstr(e.msg, "a restore: cluster is under way"));
	close(fd);
	free(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(states_are_read_back, setup, teardown),
		cmocka_unit_test_setup_teardown(a_torn_last_record_is_ignored, setup, teardown),
		cmocka_unit_test_setup_teardown(the_guard_refuses_other_runs, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
