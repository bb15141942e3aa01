/* test_common.c - error values, buffers, redaction, child processes,
 * argument parsing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "dgm/buf.h"
#include "dgm/cli.h"
#include "dgm/error.h"
#include "dgm/log.h"
#include "dgm/run.h"

static void error_codes_map_to_exit_codes(void **state)
{
	dgm_error e = DGM_ERROR_INIT;

	assert_int_equal(dgm_error_exit_code(&e), 0);
	dgm_error_set(&e, DGM_E_PLAN, "x");
	assert_int_equal(dgm_error_exit_code(&e), 2);
	dgm_error_set(&e, DGM_E_USAGE, "x");
	assert_int_equal(dgm_error_exit_code(&e), 2);
	dgm_error_set(&e, DGM_E_LOCK, "x");
	assert_int_equal(dgm_error_exit_code(&e), 3);
	dgm_error_set(&e, DGM_E_PG, "x");
	assert_int_equal(dgm_error_exit_code(&e), 1);
}

static void error_prefix_keeps_code_and_hint(void **state)
{
	dgm_error e = DGM_ERROR_INIT;

	assert_int_equal(dgm_error_set(&e, DGM_E_IO, "cannot open '%s'", "a"), -1);
	dgm_error_hint(&e, "create it");
	dgm_error_prefix(&e, "snapshot '%d'", 7);
	assert_string_equal(e.msg, "snapshot '7': cannot open 'a'");
	assert_string_equal(e.hint, "create it");
	assert_int_equal(e.code, DGM_E_IO);
}

static void buf_grows_and_escapes_json(void **state)
{
	dgm_buf b = DGM_BUF_INIT;

	assert_string_equal(dgm_buf_cstr(&b), "");
	for (int i = 0; i < 1000; i++)
		dgm_buf_printf(&b, "%d,", i);
	assert_int_equal(b.len, strlen(b.ptr));
	dgm_buf_clear(&b);
	dgm_buf_json_str(&b, "a\"b\\c\nd\x01");
	assert_string_equal(b.ptr, "\"a\\\"b\\\\c\\nd\\u0001\"");
	dgm_buf_free(&b);
}

static void redaction_hides_every_secret(void **state)
{
	dgm_buf out = DGM_BUF_INIT;

	dgm_log_add_secret("hunter2");
	dgm_log_add_secret("ab"); /* too short to redact safely: ignored */
	dgm_log_add_secret("hunter22-long");
	dgm_redact("pw=hunter2 and hunter22-long, ab", &out);
	assert_string_equal(out.ptr, "pw=**** and ****, ab");
	dgm_log_clear_secrets();
	dgm_redact("hunter2", &out);
	assert_string_equal(out.ptr, "hunter2");
	dgm_buf_free(&out);
}

static void run_captures_stdout_and_status(void **state)
{
	const char *argv[] = { "sh", "-c", "echo out; echo err >&2; exit 3", NULL };
	dgm_error e = DGM_ERROR_INIT;
	dgm_buf out = DGM_BUF_INIT;
	dgm_child c = { .argv = argv, .out = &out };

	assert_int_equal(dgm_run(&c, &e), -1);
	assert_int_equal(c.exit_code, 3);
	assert_string_equal(out.ptr, "out\n");
	assert_string_equal(e.msg, "'sh' terminated unexpectedly [3]: err");
	dgm_buf_free(&out);
}

/* A chatty child's stderr: the message keeps its last line (the cause)
 * and starts on a whole line. */
static void run_failure_shows_whole_last_lines(void **state)
{
	const char *argv[] = { "sh", "-c", "i=0; while [ $i -lt 100 ]; do echo \"progress line "
			       "number $i of the run\"; i=$((i+1)); done >&2; echo 'fatal: the cause' "
			       ">&2; exit 1", NULL };
	dgm_error e = DGM_ERROR_INIT;
	dgm_child c = { .argv = argv };
	const char *tail;

	assert_int_equal(dgm_run(&c, &e), -1);
	assert_non_null(strstr(e.msg, "\nfatal: the cause"));
	assert_string_equal(e.msg + strlen(e.msg) - strlen("fatal: the cause"), "fatal: the cause");
	tail = strstr(e.msg, "[1]: ");
	assert_non_null(tail);
	assert_memory_equal(tail + 5, "progress line number ", 21);
}

static void run_feeds_stdin_and_sets_env(void **state)
{
	const char *argv[] = { "sh", "-c", "cat; printf %s \"$DGM_T\"", NULL };
	const char *env[] = { "DGM_T=set", NULL };
	dgm_error e = DGM_ERROR_INIT;
	dgm_buf out = DGM_BUF_INIT;
	dgm_child c = { .argv = argv, .out = &out, .env_set = env, .in = "in\n", .in_len = 3 };

	assert_int_equal(dgm_run(&c, &e), 0);
	assert_string_equal(out.ptr, "in\nset");
	dgm_buf_free(&out);
}

static void run_times_out_and_kills_the_group(void **state)
{
	const char *argv[] = { "sh", "-c", "sleep 30 & sleep 30", NULL };
	dgm_error e = DGM_ERROR_INIT;
	dgm_child c = { .argv = argv, .timeout_ms = 200 };

	assert_int_equal(dgm_run(&c, &e), -1);
	assert_true(c.timed_out);
	assert_non_null(strstr(e.msg, "did not finish within 200 ms"));
}

static void run_reports_missing_program(void **state)
{
	const char *argv[] = { "dgm-no-such-program", NULL };
	dgm_error e = DGM_ERROR_INIT;
	dgm_child c = { .argv = argv };

	assert_int_equal(dgm_run(&c, &e), -1);
	assert_string_equal(e.msg, "cannot run 'dgm-no-such-program': No such file or directory");
}

static void line(const char *l, int fd, void *payload)
{
	dgm_buf *b = payload;

	dgm_buf_printf(b, "%d:%s|", fd, l);
}

static void run_streams_lines(void **state)
{
	const char *argv[] = { "sh", "-c", "printf 'a\\nb'; printf 'c\\n' >&2", NULL };
	dgm_error e = DGM_ERROR_INIT;
	dgm_buf got = DGM_BUF_INIT;
	dgm_child c = { .argv = argv, .on_line = line, .payload = &got };

	assert_int_equal(dgm_run(&c, &e), 0);
	assert_non_null(strstr(got.ptr, "1:a|"));
	assert_non_null(strstr(got.ptr, "1:b|"));
	assert_non_null(strstr(got.ptr, "2:c|"));
	dgm_buf_free(&got);
}

static void run_stops_child_on_cancel(void **state)
{
	const char *argv[] = { "sleep", "30", NULL };
	static volatile sig_atomic_t cancel = 1;
	dgm_error e = DGM_ERROR_INIT;
	dgm_child c = { .argv = argv, .cancel = &cancel };

	assert_int_equal(dgm_run(&c, &e), -1);
	assert_true(c.cancelled);
	assert_string_equal(e.msg, "'sleep' was stopped: the run is being cancelled");
}

static const dgm_cmd *cmd(const char *name)
{
	for (const dgm_cmd *c = dgm_commands; c->name; c++)
		if (!strcmp(c->name, name))
			return c;
	return NULL;
}

static void args_parse_options_and_positionals(void **state)
{
	char *argv[] = { "--to", "v1.5", "plan.yaml", "--dry-run", "--reason=bad deploy", NULL };
	dgm_error e = DGM_ERROR_INIT;
	dgm_args a;

	assert_int_equal(dgm_args_parse(&a, cmd("rollback"), 5, argv, &e), 0);
	assert_string_equal(dgm_args_get(&a, "to"), "v1.5");
	assert_true(dgm_args_flag(&a, "dry-run"));
	assert_false(dgm_args_flag(&a, "restore"));
	assert_string_equal(dgm_args_get(&a, "reason"), "bad deploy");
	assert_int_equal(a.npos, 1);
	assert_string_equal(a.pos[0], "plan.yaml");
}

static void args_reject_unknown_and_missing_values(void **state)
{
	char *a1[] = { "--tag", "x", NULL };
	char *a2[] = { "--to", NULL };
	char *a3[] = { "--dry-run=yes", NULL };
	dgm_error e = DGM_ERROR_INIT;
	dgm_args a;

	assert_int_equal(dgm_args_parse(&a, cmd("rollback"), 2, a1, &e), -1);
	assert_string_equal(e.msg, "unknown option '--tag' for 'rollback'");
	assert_int_equal(dgm_args_parse(&a, cmd("rollback"), 1, a2, &e), -1);
	assert_string_equal(e.msg, "option '--to' needs a value (TAG)");
	assert_int_equal(dgm_args_parse(&a, cmd("rollback"), 1, a3, &e), -1);
	assert_string_equal(e.msg, "option '--dry-run' takes no value");
	assert_int_equal(dgm_error_exit_code(&e), 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(error_codes_map_to_exit_codes),
		cmocka_unit_test(error_prefix_keeps_code_and_hint),
		cmocka_unit_test(buf_grows_and_escapes_json),
		cmocka_unit_test(redaction_hides_every_secret),
		cmocka_unit_test(run_captures_stdout_and_status),
		cmocka_unit_test(run_failure_shows_whole_last_lines),
		cmocka_unit_test(run_feeds_stdin_and_sets_env),
		cmocka_unit_test(run_times_out_and_kills_the_group),
		cmocka_unit_test(run_reports_missing_program),
		cmocka_unit_test(run_streams_lines),
		cmocka_unit_test(run_stops_child_on_cancel),
		cmocka_unit_test(args_parse_options_and_positionals),
		cmocka_unit_test(args_reject_unknown_and_missing_values),
	};

	return cmocka_run_group_tests_name("common", tests, NULL, NULL);
}
