/* test_journal.c - the journal reader (src/journal/read.c) on valid,
 * torn and damaged journals (the inputs that crashed `resume`), and the
 * journal writer's redaction of secrets that look like JSON. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dgm/journal.h"
#include "dgm/json.h"
#include "dgm/log.h"
#include "../../src/release/internal.h"

#define REC(seq, rest) "{\"seq\":" #seq ",\"ts\":\"2026-01-02T03:04:05.678Z\",\"run\":\"r1\"," rest "}\n"
#define BEGIN(cmd) REC(1, "\"type\":\"begin\",\"command\":\"" cmd "\",\"meta\":{\"pid\":1}")
#define FACTS REC(2, "\"type\":\"facts\",\"revisions_before\":[\"a1\",\"b2\"]," \
		  "\"commit_before\":\"c0\",\"branch_before\":\"main\",\"tag_commit\":\"t0\"")
#define SNAP_START REC(3, "\"type\":\"step\",\"step\":\"snapshot\",\"phase\":\"start\"")
#define SNAP_DONE REC(4, "\"type\":\"step\",\"step\":\"snapshot\",\"phase\":\"done\",\"ms\":5," \
		      "\"evidence\":\"x\",\"data\":{\"snapshot\":\"S1\"}")
#define END(seq) REC(seq, "\"type\":\"end\",\"outcome\":\"success\",\"message\":\"\"")

static int parse(dgm_journal_view *v, const char *text, dgm_error *e)
{
	dgm_error_clear(e);
	return dgm_journal_parse(v, text, strlen(text), "j.jsonl", e);
}

/* text fails at line; the message names the file and the line. */
static void damaged(const char *text, int line, const char *why)
{
	dgm_error e = DGM_ERROR_INIT;
	dgm_journal_view v;
	char where[32];

	assert_int_equal(parse(&v, text, &e), -1);
	assert_int_equal(e.code, DGM_E_RUN);
	snprintf(where, sizeof(where), "j.jsonl:%d: ", line);
	if (strncmp(e.msg, where, strlen(where)) || !strstr(e.msg, why))
		fail_msg("'%s' does not start with '%s' and say '%s'", e.msg, where, why);
	assert_int_equal(v.bad_line, line);
	dgm_journal_free(&v);
}

static void a_valid_apply_journal_is_read(void **state)
{
	dgm_error e = DGM_ERROR_INIT;
	dgm_journal_view v;

	assert_int_equal(parse(&v, BEGIN("apply") FACTS SNAP_START SNAP_DONE, &e), 0);
	assert_string_equal(v.run, "r1");
	assert_string_equal(v.command, "apply");
	assert_string_equal(v.started_at, "2026-01-02T03:04:05.678Z");
	assert_int_equal(v.seq, 4);
	assert_false(v.ended);
	assert_int_equal(v.torn_line, 0);
	assert_string_equal(dgm_journal_phase(&v, "snapshot"), "done");
	assert_null(dgm_journal_phase(&v, "migrate"));
	assert_string_equal(json_string_value(json_object_get(dgm_journal_data(&v, "snapshot"),
							      "snapshot")), "S1");
	assert_string_equal(dgm_journal_fact(&v, "tag_commit"), "t0");
	assert_int_equal(json_array_size(v.records), 4);
	dgm_journal_free(&v);

	assert_int_equal(parse(&v, BEGIN("apply") FACTS END(3), &e), 0);
	assert_true(v.ended);
	dgm_journal_free(&v);
}

static void a_valid_rollback_journal_is_read(void **state)
{
	dgm_error e = DGM_ERROR_INIT;
	dgm_journal_view v;

	assert_int_equal(parse(&v, BEGIN("rollback") REC(2, "\"type\":\"facts\",\"to\":\"v1.5\","
			 "\"commit_before\":\"c0\",\"restore\":false")
			 REC(3, "\"type\":\"resume\",\"pid\":7"), &e), 0);
	assert_string_equal(dgm_journal_fact(&v, "to"), "v1.5");
	assert_int_equal(v.seq, 3);
	dgm_journal_free(&v);
	/* killed before its facts: only the begin record */
	assert_int_equal(parse(&v, BEGIN("rollback"), &e), 0);
	assert_null(v.facts);
	assert_null(dgm_journal_fact(&v, "to"));
	dgm_journal_free(&v);
}

static void a_torn_last_line_is_tolerated(void **state)
{
	dgm_error e = DGM_ERROR_INIT;
	dgm_journal_view v;

	assert_int_equal(parse(&v, BEGIN("apply") FACTS "{\"seq\":3,\"ts\":\"2026", &e), 0);
	assert_int_equal(v.torn_line, 3);
	assert_int_equal(json_array_size(v.records), 2);
	dgm_journal_free(&v);
	/* the same with a newline after it */
	assert_int_equal(parse(&v, BEGIN("apply") "{\"seq\":2,\"ts\n", &e), 0);
	assert_int_equal(v.torn_line, 2);
	dgm_journal_free(&v);
	/* killed while the journal was being created: no record at all */
	assert_int_equal(parse(&v, "", &e), 0);
	assert_null(v.begin);
	assert_int_equal(json_array_size(v.records), 0);
	dgm_journal_free(&v);
	assert_int_equal(parse(&v, "{\"seq\":1,\"ty", &e), 0);
	assert_null(v.begin);
	dgm_journal_free(&v);
}

/* The inputs fuzzing found (issue 13.8), and their neighbours. */
static void a_step_without_phase_is_damage(void **state)
{
	damaged("{\"type\":\"step\"}", 1, "no string \"ts\"");
	damaged(BEGIN("apply") REC(2, "\"type\":\"step\"") FACTS, 2, "\"step\"");
	damaged(BEGIN("apply") REC(2, "\"type\":\"step\",\"step\":\"migrate\""), 2, "\"phase\"");
	damaged(BEGIN("apply") REC(2, "\"type\":\"step\",\"step\":\"migrate\",\"phase\":7"), 2,
		"\"phase\"");
	damaged(BEGIN("apply") REC(2, "\"type\":\"step\",\"step\":\"migrate\",\"phase\":\"x\""), 2,
		"\"phase\"");
	damaged(BEGIN("apply") REC(2, "\"type\":\"step\",\"step\":[],\"phase\":\"done\""), 2,
		"\"step\"");
	damaged(BEGIN("apply") REC(2, "\"type\":\"step\",\"step\":\"s\",\"phase\":\"done\","
				      "\"data\":3"), 2, "\"data\"");
}

static void a_begin_without_command_is_damage(void **state)
{
	damaged(REC(1, "\"type\":\"begin\""), 1, "\"command\"");
	damaged(REC(1, "\"type\":\"begin\",\"command\":null"), 1, "\"command\"");
	damaged(REC(1, "\"type\":\"begin\",\"command\":\"apply\",\"meta\":[]"), 1, "\"meta\"");
	damaged(FACTS BEGIN("apply"), 1, "before the begin record");
	damaged("[1,2]\n" BEGIN("apply"), 1, "not a JSON object");
	damaged(REC(1, "\"type\":5"), 1, "\"type\"");
	damaged("{\"seq\":\"1\",\"ts\":\"t\",\"run\":\"r1\",\"type\":\"begin\",\"command\":\"apply\"}\n",
		1, "\"seq\"");
}

static void bad_facts_are_damage(void **state)
{
	damaged(BEGIN("apply") REC(2, "\"type\":\"facts\",\"revisions_before\":[\"a\",3],"
		"\"commit_before\":\"c\",\"branch_before\":\"m\",\"tag_commit\":\"t\""), 2,
		"\"revisions_before\"[1] is not a string");
	damaged(BEGIN("apply") REC(2, "\"type\":\"facts\",\"revisions_before\":{},"
		"\"commit_before\":\"c\",\"branch_before\":\"m\",\"tag_commit\":\"t\""), 2,
		"\"revisions_before\"");
	damaged(BEGIN("apply") REC(2, "\"type\":\"facts\",\"revisions_before\":[],"
		"\"commit_before\":\"c\",\"branch_before\":\"m\""), 2, "\"tag_commit\"");
	damaged(BEGIN("rollback") REC(2, "\"type\":\"facts\",\"to\":\"v1\",\"commit_before\":\"c\","
		"\"restore\":\"no\""), 2, "\"restore\"");
	damaged(BEGIN("rollback") REC(2, "\"type\":\"facts\",\"to\":1,\"commit_before\":\"c\","
		"\"restore\":true"), 2, "\"to\"");
	damaged(BEGIN("apply") REC(2, "\"type\":\"end\""), 2, "\"outcome\"");
}

/* Under ASan these also show that nothing leaks (the old reader kept
 * only the last begin and facts and leaked the first). */
static void second_begin_or_facts_is_damage(void **state)
{
	damaged(BEGIN("apply") BEGIN("apply"), 2, "a second begin record");
	damaged(BEGIN("apply") FACTS FACTS, 3, "a second facts record");
	damaged(BEGIN("apply") "{\"seq\":2,\"ts\":\"t\",\"run\":\"other\",\"type\":\"resume\"}\n", 2,
		"run 'other'");
}

static void damage_in_the_middle_is_not_a_torn_line(void **state)
{
	dgm_error e = DGM_ERROR_INIT;
	dgm_journal_view v;

	damaged(BEGIN("apply") "{\"seq\":2,\"restore\":****}\n" FACTS, 2, "not JSON");
	damaged(BEGIN("apply") "\n" FACTS, 2, "not JSON");
	/* the records after the damage are still read: the run ended */
	assert_int_equal(parse(&v, BEGIN("apply") "{\"ok\":****}\n" FACTS SNAP_START SNAP_DONE
			       END(5), &e), -1);
	assert_int_equal(v.bad_line, 2);
	assert_true(v.ended);
	assert_string_equal(dgm_journal_phase(&v, "snapshot"), "done");
	dgm_journal_free(&v);
}

static void load_reads_a_file(void **state)
{
	char path[] = "/tmp/test_journal.XXXXXX";
	const char *text = BEGIN("apply") FACTS;
	dgm_error e = DGM_ERROR_INIT;
	dgm_journal_view v;
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	assert_int_equal(dgm_journal_load(&v, path, &e), 0);
	assert_string_equal(v.path, path);
	assert_non_null(v.facts);
	dgm_journal_free(&v);
	unlink(path);
	assert_int_equal(dgm_journal_load(&v, path, &e), -1);
	assert_int_equal(e.code, DGM_E_IO);
	assert_null(v.path);
	dgm_journal_free(&v);
}

/* Issue 18.1: secrets equal to JSON literals, or holding a quote or a
 * backslash, are masked in values and keys; the record stays JSON with
 * its literals intact, and the secret does not leak escaped. */
static void secrets_are_masked_value_by_value(void **state)
{
	static const char *const secrets[] = { "true", "false", "null", "1234", "a\"b\\c", NULL };
	json_t *rec = json_pack("{s:b, s:b, s:n, s:i, s:s, s:s, s:[s, b], s:{s:s}}", "ok", 1,
				"restore", 0, "none", "count", 1234, "evidence", "x=true; y=a\"b\\c",
				"plain", "1234", "list", "false", 1, "false", "k", "null");
	json_t *red, *back;
	char *text;

	for (size_t i = 0; secrets[i]; i++)
		dgm_log_add_secret(secrets[i]);
	red = dgm_json_redacted(rec);
	text = json_dumps(red, JSON_COMPACT | JSON_SORT_KEYS);
	back = json_loads(text, 0, NULL);
	assert_non_null(back);
	assert_true(json_is_true(json_object_get(back, "ok")));
	assert_true(json_is_false(json_object_get(back, "restore")));
	assert_true(json_is_null(json_object_get(back, "none")));
	assert_int_equal(json_integer_value(json_object_get(back, "count")), 1234);
	assert_string_equal(json_string_value(json_object_get(back, "evidence")), "x=****; y=****");
	assert_string_equal(json_string_value(json_object_get(back, "plain")), "****");
	assert_string_equal(json_string_value(json_array_get(json_object_get(back, "list"), 0)),
			    "****");
	assert_true(json_is_true(json_array_get(json_object_get(back, "list"), 1)));
	assert_string_equal(json_string_value(json_object_get(json_object_get(back, "****"), "k")),
			    "****");
	assert_null(strstr(text, "a\\\"b\\\\c"));
	dgm_log_clear_secrets();
	free(text);
	json_decref(back);
	json_decref(red);
	json_decref(rec);
	assert_null(dgm_json_redacted(NULL));
}

/* The writer end to end: records with secret-looking values read back. */
static void journal_records_stay_json_with_secrets(void **state)
{
	static const char *const secrets[] = { "true", "false", "null", "0", "1", "\"", "\\",
					       "s\"q\\z", NULL };
	char path[] = "/tmp/test_journal.XXXXXX";
	dgm_error e = DGM_ERROR_INIT;
	dgm_journal_view v;
	dgm_job r;

	memset(&r, 0, sizeof(r));
	snprintf(r.id, sizeof(r.id), "20260101T000000Z-true");
	r.json_path = path;
	r.journal_fd = mkstemp(path);
	assert_true(r.journal_fd >= 0);
	for (size_t i = 0; secrets[i]; i++)
		dgm_log_add_secret(secrets[i]);
	dgm_job_journal(&r, "begin", json_pack("{s:s, s:{s:s, s:i}}", "command", "rollback", "meta",
					       "user", "s\"q\\z", "pid", 1));
	dgm_job_journal(&r, "facts", json_pack("{s:s, s:s, s:b}", "to", "v1.5", "commit_before",
					       "abc", "restore", 1));
	dgm_job_journal(&r, "step", json_pack("{s:s, s:s, s:b, s:n}", "step", "verify", "phase",
					      "start", "true", 0, "x"));
	close(r.journal_fd);
	assert_int_equal(dgm_journal_load(&v, path, &e), 0);
	assert_int_equal(v.torn_line, 0);
	assert_int_equal(json_array_size(v.records), 3);
	assert_true(json_is_true(json_object_get(v.facts, "restore")));
	assert_string_equal(json_string_value(json_object_get(json_object_get(v.begin, "meta"),
							      "user")), "****");
	assert_string_equal(dgm_journal_phase(&v, "verify"), "start");
	dgm_journal_free(&v);
	dgm_log_clear_secrets();
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(a_valid_apply_journal_is_read),
		cmocka_unit_test(a_valid_rollback_journal_is_read),
		cmocka_unit_test(a_torn_last_line_is_tolerated),
		cmocka_unit_test(a_step_without_phase_is_damage),
		cmocka_unit_test(a_begin_without_command_is_damage),
		cmocka_unit_test(bad_facts_are_damage),
		cmocka_unit_test(second_begin_or_facts_is_damage),
		cmocka_unit_test(damage_in_the_middle_is_not_a_torn_line),
		cmocka_unit_test(load_reads_a_file),
		cmocka_unit_test(secrets_are_masked_value_by_value),
		cmocka_unit_test(journal_records_stay_json_with_secrets),
	};

	dgm_log_set_level(DGM_LOG_ERROR);
	return cmocka_run_group_tests_name("journal", tests, NULL, NULL);
}
