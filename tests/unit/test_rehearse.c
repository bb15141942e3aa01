/* test_rehearse.c - the pure parts of `dgmigrate rehearse`: the scratch
 * database's URL (read back with libpq, as alembic's libpq will) and
 * name, and the words for lock modes. The rehearsal itself is in
 * tests/integration/t_rehearse.sh. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "dgm/log.h"
#include "../../src/release/rehearse_int.h"

/* The value libpq reads for keyword in conninfo, or NULL. */
static char *libpq_value(const char *conninfo, const char *keyword)
{
	PQconninfoOption *opts = PQconninfoParse(conninfo, NULL);
	char *v = NULL;

	assert_non_null(opts);
	for (PQconninfoOption *o = opts; o->keyword; o++)
		if (!strcmp(o->keyword, keyword) && o->val)
			v = strdup(o->val);
	PQconninfoFree(opts);
	return v;
}

static void assert_value(const char *conninfo, const char *keyword, const char *want)
{
	char *v = libpq_value(conninfo, keyword);

	if (!want)
		assert_null(v);
	else
		assert_string_equal(v, want);
	free(v);
}

static void url_replaces_the_database_and_keeps_the_rest(void **state)
{
	const char *pw = "p@ss:w/rd?&=+% x'\"";
	char *enc_src = NULL;
	dgm_error e = DGM_ERROR_INIT;
	dgm_buf src = DGM_BUF_INIT;
	char *url = NULL;

	/* the plan's URL, with a password full of URL syntax */
	dgm_buf_puts(&src, "postgresql://dgm:");
	for (const char *p = pw; *p; p++)
		dgm_buf_printf(&src, "%%%02X", (unsigned char)*p);
	dgm_buf_puts(&src, "@/app?host=/tmp/pg%20sock&port=5433&sslmode=disable");
	enc_src = dgm_buf_detach(&src);
	assert_int_equal(dgm_rehearse_url(&url, enc_src, "app_dgm_rehearse_42", NULL, &e), 0);
	/* an ordinary host part: settings libraries reject an empty one, and
	 * SQLAlchemy would not decode a percent-encoded socket folder there */
	assert_int_equal(strncmp(url, "postgresql://dgm:", 17), 0);
	assert_non_null(strstr(url, "@localhost:5433/app_dgm_rehearse_42?"));
	assert_non_null(strstr(url, "host=%2Ftmp%2Fpg%20sock"));
	assert_value(url, "dbname", "app_dgm_rehearse_42");
	assert_value(url, "user", "dgm");
	assert_value(url, "password", pw);
	assert_value(url, "host", "/tmp/pg sock");
	assert_value(url, "port", "5433");
	assert_value(url, "sslmode", "disable");
	free(url);
	/* key=value conninfo, and an odd database name */
	assert_int_equal(dgm_rehearse_url(&url, "host=db.example port=6432 dbname=app user=u",
					  "a b/c", NULL, &e), 0);
	assert_string_equal(url, "postgresql://u@db.example:6432/a%20b%2Fc");
	assert_value(url, "dbname", "a b/c");
	assert_value(url, "host", "db.example");
	assert_value(url, "password", NULL);
	free(url);
	/* IPv6 in brackets */
	assert_int_equal(dgm_rehearse_url(&url, "host=::1 port=5432 dbname=app user=u", "s", NULL,
					  &e), 0);
	assert_string_equal(url, "postgresql://u@[::1]:5432/s");
	free(url);
	assert_int_equal(dgm_rehearse_url(&url, "postgresql://[bad", "x", NULL, &e), -1);
	assert_int_equal(e.code, DGM_E_PLAN);
	assert_null(url);
	free(enc_src);
}

static void url_password_is_redacted_in_both_forms(void **state)
{
	dgm_error e = DGM_ERROR_INIT;
	dgm_buf out = DGM_BUF_INIT;
	char *url = NULL;

	dgm_log_add_secret("s3cr3t word");
	assert_int_equal(dgm_rehearse_url(&url, "postgresql://u:s3cr3t%20word@/db?host=/tmp",
					  "db_dgm_rehearse_1", NULL, &e), 0);
	dgm_redact(url, &out);
	assert_null(strstr(out.ptr, "s3cr3t"));
	assert_non_null(strstr(out.ptr, "****"));
	dgm_buf_free(&out);
	free(url);
	dgm_log_clear_secrets();
}

static void scratch_names_fit_and_stay_whole(void **state)
{
	char *n = dgm_rehearse_scratch_name("app", 4242);
	char longname[64], accented[64];

	assert_string_equal(n, "app_dgm_rehearse_4242");
	free(n);
	memset(longname, 'x', 50);
	longname[50] = '\0';
	n = dgm_rehearse_scratch_name(longname, 4194304);
	assert_int_equal(strlen(n), 40 + strlen("_dgm_rehearse_4194304"));
	assert_true(strlen(n) <= 63);
	free(n);
	/* a two-byte character across byte 40 is not split */
	memset(accented, 'y', 39);
	strcpy(accented + 39, "\xc3\xa9z");
	n = dgm_rehearse_scratch_name(accented, 7);
	assert_int_equal(strncmp(n + 39, "_dgm_rehearse_7", 15), 0);
	free(n);
}

static void lock_modes_say_what_they_block(void **state)
{
	assert_string_equal(dgm_rehearse_lock_mode(8), "ACCESS EXCLUSIVE");
	assert_string_equal(dgm_rehearse_lock_blocks(8), "reads and writes");
	assert_string_equal(dgm_rehearse_lock_mode(5), "SHARE");
	assert_string_equal(dgm_rehearse_lock_blocks(5), "writes");
	assert_string_equal(dgm_rehearse_lock_blocks(3), "nothing");
	assert_string_equal(dgm_rehearse_lock_mode(0), "?");
	assert_string_equal(dgm_rehearse_lock_mode(9), "?");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(url_replaces_the_database_and_keeps_the_rest),
		cmocka_unit_test(url_password_is_redacted_in_both_forms),
		cmocka_unit_test(scratch_names_fit_and_stay_whole),
		cmocka_unit_test(lock_modes_say_what_they_block),
	};

	return cmocka_run_group_tests_name("rehearse", tests, NULL, NULL);
}
