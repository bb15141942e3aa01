/* test_verify.c - verification results, URL redaction, revision sets,
 * and how a failing hook is reported. No database, no server: the
 * postconditions and the health check are in tests/integration/
 * t_verify.sh (which also keeps this test free of libcurl). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "dgm/log.h"
#include "dgm/verify.h"

static void result_counts_items_and_failures(void **state)
{
	dgm_verify_result r = DGM_VERIFY_RESULT_INIT;

	dgm_verify_add(&r, "table predictive_models", true, "public.predictive_models (%d columns)",
		       8);
	dgm_verify_add(&r, "table prediction_history", false, "does not exist");
	dgm_verify_add(&r, "index ix_a", false, "does not exist");
	assert_int_equal(r.count, 3);
	assert_int_equal(r.failed, 2);
	assert_string_equal(r.items[0].name, "table predictive_models");
	assert_true(r.items[0].ok);
	assert_string_equal(r.items[0].evidence, "public.predictive_models (8 columns)");
	assert_false(r.items[1].ok);
	dgm_verify_result_free(&r);
	assert_null(r.items);
	assert_int_equal(r.count, 0);
	assert_int_equal(r.failed, 0);
	/* freed results can be reused, and freeing twice is harmless */
	dgm_verify_add(&r, "x", true, "y");
	assert_int_equal(r.count, 1);
	dgm_verify_result_free(&r);
	dgm_verify_result_free(&r);
	dgm_verify_result_free(NULL);
}

static void result_without_storage_only_prints(void **state)
{
	dgm_verify_add(NULL, "health http://h/", false, "HTTP %d", 503);
}

static void result_evidence_is_redacted(void **state)
{
	dgm_verify_result r = DGM_VERIFY_RESULT_INIT;

	dgm_log_add_secret("s3cr3t-token");
	dgm_verify_add(&r, "hook s3cr3t-token", false, "exited 1: bad token s3cr3t-token!");
	assert_string_equal(r.items[0].name, "hook ****");
	assert_string_equal(r.items[0].evidence, "exited 1: bad token ****!");
	dgm_log_clear_secrets();
	dgm_verify_result_free(&r);
}

static void check_url(const char *in, const char *want)
{
	char *got = dgm_verify_url_redact(in);

	assert_string_equal(got, want);
	free(got);
}

static void url_loses_query_fragment_and_userinfo(void **state)
{
	check_url("http://127.0.0.1:8000/api/health", "http://127.0.0.1:8000/api/health");
	check_url("http://127.0.0.1:8000/api/health?token=abc&x=1",
		  "http://127.0.0.1:8000/api/health");
	check_url("https://h/api/health#frag", "https://h/api/health");
	check_url("https://user:pass@h:443/api/health?k=v", "https://h:443/api/health");
	check_url("https://user@h", "https://h");
	check_url("http://h?token=x", "http://h");
	check_url("http://a:b@h?token=x", "http://h");
	/* an '@' in the path is not user info */
	check_url("http://h/users/@me?t=1", "http://h/users/@me");
	check_url("http://[::1]:8080/health?x", "http://[::1]:8080/health");
	check_url("", "");
}

static void revision_sets_ignore_order(void **state)
{
	char *ab[] = { "a1", "b2" }, *ba[] = { "b2", "a1" }, *a[] = { "a1" };
	char *aab[] = { "a1", "a1", "b2" }, *ac[] = { "a1", "c3" };

	assert_true(dgm_verify_same_set(ab, 2, ba, 2));
	assert_true(dgm_verify_same_set(ab, 2, aab, 3));
	assert_true(dgm_verify_same_set(NULL, 0, NULL, 0));
	assert_false(dgm_verify_same_set(ab, 2, a, 1));
	assert_false(dgm_verify_same_set(a, 1, ab, 2));
	assert_false(dgm_verify_same_set(ab, 2, ac, 2));
	assert_false(dgm_verify_same_set(a, 1, NULL, 0));
}

/* One hook running `sh -c SCRIPT` from /, timeout 5 s. */
static int run_sh(dgm_verify_result *r, const char *script, dgm_error *e)
{
	char *argv[] = { "sh", "-c", (char *)script, NULL };
	dgm_plan_hook hook = { .name = "maintenance-on", .argv = { argv, 3 }, .timeout_ms = 5000 };
	dgm_plan_hooks hooks = { &hook, 1 };
	dgm_plan plan = { 0 };

	plan.release.repository = "/";
	return dgm_verify_run_hooks(r, &plan, &hooks, "before", e);
}

static void hook_failure_names_hook_and_stderr_tail(void **state)
{
	dgm_verify_result r = DGM_VERIFY_RESULT_INIT;
	dgm_error e = DGM_ERROR_INIT;

	assert_int_equal(run_sh(&r, "echo progress; for i in 1 2 3 4 5 6; do echo l$i >&2; done; "
			 "exit 3", &e), -1);
	assert_int_equal(e.code, DGM_E_RUN);
	/* the last five stderr lines, not stdout */
	assert_string_equal(e.msg, "hook 'maintenance-on' failed: exited with code 3: "
			    "l2 | l3 | l4 | l5 | l6");
	assert_non_null(strstr(e.hint, "run it by hand from '/'"));
	assert_int_equal(r.count, 1);
	assert_int_equal(r.failed, 1);
	assert_string_equal(r.items[0].name, "hook maintenance-on (before)");
	dgm_verify_result_free(&r);
}

static void hook_failure_falls_back_to_stdout(void **state)
{
	dgm_verify_result r = DGM_VERIFY_RESULT_INIT;
	dgm_error e = DGM_ERROR_INIT;

	assert_int_equal(run_sh(&r, "echo 'cannot reach lb'; exit 1", &e), -1);
	assert_string_equal(e.msg, "hook 'maintenance-on' failed: exited with code 1: "
			    "cannot reach lb");
	dgm_verify_result_free(&r);
	assert_int_equal(run_sh(&r, "exit 1", &e), -1);
	assert_string_equal(e.msg, "hook 'maintenance-on' failed: exited with code 1: (no output)");
	dgm_verify_result_free(&r);
}

static void hook_tail_lines_are_cut_and_trimmed(void **state)
{
	dgm_verify_result r = DGM_VERIFY_RESULT_INIT;
	dgm_error e = DGM_ERROR_INIT;
	const char *prefix = "hook 'maintenance-on' failed: exited with code 2: ";
	char want[400];

	/* 299 zeros, then a 2-byte character across the 300-byte cut */
	assert_int_equal(run_sh(&r, "printf 'x\\r\\n' >&2; printf '%0299d\\303\\251zz\\n' 0 >&2; "
			 "exit 2", &e), -1);
	snprintf(want, sizeof(want), "%sx | %0299d", prefix, 0);
	assert_string_equal(e.msg, want);
	dgm_verify_result_free(&r);
}

static void hook_success_is_recorded(void **state)
{
	dgm_verify_result r = DGM_VERIFY_RESULT_INIT;
	dgm_error e = DGM_ERROR_INIT;

	assert_int_equal(run_sh(&r, "echo ok", &e), 0);
	assert_int_equal(r.count, 1);
	assert_true(r.items[0].ok);
	assert_non_null(strstr(r.items[0].evidence, "exited 0 in"));
	dgm_verify_result_free(&r);
}

static void hook_missing_program_says_so(void **state)
{
	char *argv[] = { "./bin/no-such-hook", "on", NULL };
	dgm_plan_hook hook = { .name = "maintenance-on", .argv = { argv, 2 }, .timeout_ms = 5000 };
	dgm_plan_hooks hooks = { &hook, 1 };
	dgm_plan plan = { 0 };
	dgm_error e = DGM_ERROR_INIT;

	plan.release.repository = "/";
	assert_int_equal(dgm_verify_run_hooks(NULL, &plan, &hooks, "before", &e), -1);
	assert_string_equal(e.msg, "hook 'maintenance-on' failed: cannot run './bin/no-such-hook': "
			    "No such file or directory");
	assert_non_null(strstr(e.hint, "without a shell"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(result_counts_items_and_failures),
		cmocka_unit_test(result_without_storage_only_prints),
		cmocka_unit_test(result_evidence_is_redacted),
		cmocka_unit_test(url_loses_query_fragment_and_userinfo),
		cmocka_unit_test(revision_sets_ignore_order),
		cmocka_unit_test(hook_failure_names_hook_and_stderr_tail),
		cmocka_unit_test(hook_failure_falls_back_to_stdout),
		cmocka_unit_test(hook_tail_lines_are_cut_and_trimmed),
		cmocka_unit_test(hook_success_is_recorded),
		cmocka_unit_test(hook_missing_program_says_so),
	};

	/* items are printed as they are recorded; keep the test output short */
	dgm_log_set_level(DGM_LOG_ERROR);
	return cmocka_run_group_tests_name("verify", tests, NULL, NULL);
}
