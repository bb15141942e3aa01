/* test_alembic_ini.c - alembic.ini with configparser's rules, and the
 * folders Alembic takes from it. Expected values were checked against
 * Python's configparser and Alembic 1.8.1. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "dgm/alembic.h"
#include "dgm/buf.h"

static const char sample[] =
	"# c\n"
	"[DEFAULT]\n"
	"shared = %(here)s/shared\n"
	"[alembic]\n"
	"Script_Location = %(here)s/migrations\n"
	"a: 1 ; not a comment\n"
	"multi = one\n"
	"    two\n"
	"\n"
	"    three\n"
	"\n"
	"  ; comment line\n"
	"b=x%%y\n"
	"nested = %(a)s-%(shared)s\n"
	"[other]\n"
	"k=v\n";

static char *get(const dgm_alembic_ini *ini, const char *sect, const char *key)
{
	dgm_error err = DGM_ERROR_INIT;
	char *v = NULL;

	if (dgm_alembic_ini_get(&v, ini, sect, key, &err) != 0)
		fail_msg("%s", err.msg);
	return v;
}

static void expect(const dgm_alembic_ini *ini, const char *sect, const char *key,
		   const char *want)
{
	char *v = get(ini, sect, key);

	if (!want) {
		assert_null(v);
		return;
	}
	assert_non_null(v);
	assert_string_equal(v, want);
	free(v);
}

static void configparser_rules_hold(void **state)
{
	dgm_alembic_ini *ini;
	dgm_error err = DGM_ERROR_INIT;

	assert_int_equal(dgm_alembic_ini_parse(&ini, "alembic.ini", "/r/app", sample,
					       strlen(sample), &err), 0);
	expect(ini, "alembic", "script_location", "/r/app/migrations");
	expect(ini, "alembic", "SCRIPT_LOCATION", "/r/app/migrations");
	expect(ini, "alembic", "a", "1 ; not a comment");
	expect(ini, "alembic", "multi", "one\ntwo\n\nthree");
	expect(ini, "alembic", "b", "x%y");
	expect(ini, "alembic", "nested", "1 ; not a comment-/r/app/shared");
	expect(ini, "alembic", "shared", "/r/app/shared");
	expect(ini, "other", "k", "v");
	expect(ini, "other", "a", NULL);
	expect(ini, "missing", "k", NULL);
	assert_true(dgm_alembic_ini_has_section(ini, "alembic"));
	assert_false(dgm_alembic_ini_has_section(ini, "DEFAULT"));
	assert_false(dgm_alembic_ini_has_section(ini, "nope"));
	dgm_alembic_ini_free(ini);
}

static void ini_fails(const char *text, const char *key, const char *expect_msg)
{
	dgm_alembic_ini *ini = NULL;
	dgm_error err = DGM_ERROR_INIT;
	char *v = NULL;
	int rc = dgm_alembic_ini_parse(&ini, "a.ini", "/h", text, strlen(text), &err);

	if (rc == 0 && key)
		rc = dgm_alembic_ini_get(&v, ini, "s", key, &err);
	assert_int_equal(rc, -1);
	if (!strstr(err.msg, expect_msg))
		fail_msg("expected '%s' in '%s'", expect_msg, err.msg);
	dgm_alembic_ini_free(ini);
	free(v);
}

static void ini_errors_are_reported(void **state)
{
	ini_fails("k = v\n", NULL, "a.ini:1: file contains no section headers");
	ini_fails("[s]\n[s]\n", NULL, "a.ini:2: section 's' already exists");
	ini_fails("[s]\nk = 1\nK = 2\n", NULL, "a.ini:3: option 'k' in section 's' already exists");
	ini_fails("[s]\njust words\n", NULL, "a.ini:2: cannot parse line");
	ini_fails("[s]\n= v\n", NULL, "a.ini:2: cannot parse line");
	ini_fails("[s]\nk = %(nope)s\n", "k", "refers to 'nope', which is not set");
	ini_fails("[s]\nk = 50%\n", "k", "bad interpolation");
	ini_fails("[s]\nk = %(k)s\n", "k", "recursion limit exceeded");
}

static int config(dgm_alembic_config *cfg, const char *ini_path, const char *text,
		  const dgm_alembic_load_opts *opts, dgm_error *err)
{
	return dgm_alembic_config_parse(cfg, ini_path, text, strlen(text), opts, err);
}

static void config_ok(dgm_alembic_config *cfg, const char *ini_path, const char *text,
		      const dgm_alembic_load_opts *opts)
{
	dgm_error err = DGM_ERROR_INIT;

	if (config(cfg, ini_path, text, opts, &err) != 0)
		fail_msg("%s", err.msg);
}

static void locations_are(const dgm_alembic_config *cfg, const char *const *want, size_t n)
{
	assert_int_equal(cfg->nversion_locations, n);
	for (size_t i = 0; i < n; i++)
		assert_string_equal(cfg->version_locations[i], want[i]);
}

static void script_location_is_made_tree_relative(void **state)
{
	dgm_alembic_config cfg;
	dgm_alembic_load_opts opts = { 0 };
	const char *v1[] = { "app/migrations/versions" };
	const char *v2[] = { "db/versions" };

	config_ok(&cfg, "app/alembic.ini", "[alembic]\nscript_location = migrations\n", NULL);
	assert_string_equal(cfg.script_location, "app/migrations");
	assert_false(cfg.explicit_locations);
	locations_are(&cfg, v1, 1);
	dgm_alembic_config_free(&cfg);

	config_ok(&cfg, "app/alembic.ini", "[alembic]\nscript_location = %(here)s/migrations\n",
		  NULL);
	assert_string_equal(cfg.script_location, "app/migrations");
	dgm_alembic_config_free(&cfg);

	/* alembic run from the repository root: relative to the root */
	opts.cwd = "";
	config_ok(&cfg, "app/alembic.ini", "[alembic]\nscript_location = ./db/../db\n", &opts);
	assert_string_equal(cfg.script_location, "db");
	locations_are(&cfg, v2, 1);
	dgm_alembic_config_free(&cfg);

	/* absolute paths under the repository on disk */
	opts.cwd = NULL;
	opts.root_on_disk = "/srv/repo/";
	config_ok(&cfg, "alembic.ini",
		  "[alembic]\nscript_location = /srv/repo/db\n"
		  "version_locations = %(here)s/db/versions\n", &opts);
	assert_string_equal(cfg.script_location, "db");
	locations_are(&cfg, v2, 1);
	assert_true(cfg.explicit_locations);
	dgm_alembic_config_free(&cfg);
}

static void version_path_separators_split_as_alembic(void **state)
{
	dgm_alembic_config cfg;
	const char *legacy[] = { "a", "", "b", "c", "d" };
	const char *two[] = { "x y", "z" };
	const char *three[] = { "a", "b", "c" };

	/* Alembic 1.8 without a separator: re.split(", *|(?: +)"), empty
	 * pieces kept (they mean the working folder) */
	config_ok(&cfg, "alembic.ini", "[alembic]\nscript_location = m\n"
		  "version_locations = a , b,c  d\n", NULL);
	locations_are(&cfg, legacy, 5);
	dgm_alembic_config_free(&cfg);

	config_ok(&cfg, "alembic.ini", "[alembic]\nscript_location = m\n"
		  "version_locations = x y;z;\nversion_path_separator = ;\n", NULL);
	locations_are(&cfg, two, 2);
	dgm_alembic_config_free(&cfg);

	config_ok(&cfg, "alembic.ini", "[alembic]\nscript_location = m\n"
		  "version_locations = a:b::c\nversion_path_separator = os\n", NULL);
	locations_are(&cfg, three, 3);
	dgm_alembic_config_free(&cfg);

	config_ok(&cfg, "alembic.ini", "[alembic]\nscript_location = m\n"
		  "version_locations = a b  c\nversion_path_separator = space\n", NULL);
	locations_are(&cfg, three, 3);
	dgm_alembic_config_free(&cfg);

	config_ok(&cfg, "alembic.ini", "[alembic]\nscript_location = m\n"
		  "version_locations =\n  a\n  b\n  c\nversion_path_separator = newline\n", NULL);
	locations_are(&cfg, three, 3);
	dgm_alembic_config_free(&cfg);

	config_ok(&cfg, "alembic.ini", "[alembic]\nscript_location = m\n"
		  "version_locations = a:b\nversion_path_separator = :\n"
		  "recursive_version_locations = TRUE\nsourceless = true\n", NULL);
	assert_true(cfg.recursive);
	assert_true(cfg.sourceless);
	dgm_alembic_config_free(&cfg);
}

static void config_fails(const char *ini_path, const char *text,
			 const dgm_alembic_load_opts *opts, const char *expect_msg)
{
	dgm_alembic_config cfg;
	dgm_error err = DGM_ERROR_INIT;

	assert_int_equal(config(&cfg, ini_path, text, opts, &err), -1);
	if (!strstr(err.msg, expect_msg))
		fail_msg("expected '%s' in '%s'", expect_msg, err.msg);
}

static void config_errors_are_clear(void **state)
{
	dgm_alembic_load_opts opts = { .root_on_disk = "/srv/repo" };
	dgm_alembic_load_opts named = { .section = "db2" };

	config_fails("alembic.ini", "[other]\nx = 1\n", NULL, "alembic.ini: no '[alembic]' section");
	config_fails("alembic.ini", "[alembic]\nx = 1\n", NULL,
		     "no 'script_location' key found in configuration");
	config_fails("alembic.ini", "[alembic]\nscript_location = myapp:migrations\n", NULL,
		     "is a package resource");
	config_fails("alembic.ini", "[alembic]\nscript_location = m\nversion_locations = a\n"
		     "version_path_separator = comma\n", NULL,
		     "'comma' is not a valid value for version_path_separator");
	config_fails("alembic.ini", "[alembic]\nscript_location = ../../m\n", NULL,
		     "leads above the repository's root");
	config_fails("alembic.ini", "[alembic]\nscript_location = /srv/other/m\n", &opts,
		     "is outside the repository '/srv/repo'");
	config_fails("alembic.ini", "[alembic]\nscript_location = m\n"
		     "recursive_version_locations = maybe\n", NULL, "must be true or false");
	config_fails("alembic.ini", "[alembic]\nscript_location = m\n", &named,
		     "no '[db2]' section");
}

/* LEVELS options, each naming the one below it WIDTH times; the last
 * holds LEAF. Key "k0" expands to WIDTH^(LEVELS-1) copies of LEAF. */
static char *fan_out(int levels, int width, const char *leaf)
{
	dgm_buf b = DGM_BUF_INIT;

	dgm_buf_puts(&b, "[s]\n");
	for (int i = 0; i < levels - 1; i++) {
		dgm_buf_printf(&b, "k%d = ", i);
		for (int j = 0; j < width; j++)
			dgm_buf_printf(&b, "%%(k%d)s", i + 1);
		dgm_buf_puts(&b, "\n");
	}
	dgm_buf_printf(&b, "k%d = %s\n", levels - 1, leaf);
	return dgm_buf_detach(&b);
}

/* configparser's depth limit (10) bounds recursion, not size: 720 bytes
 * of ini used to expand to 16^9 bytes. A value is at most 64 KiB after
 * interpolation, and expands at most 16 Ki references. */
static void interpolation_size_is_bounded(void **state)
{
	char *text = fan_out(4, 16, "abcd");   /* 16 KiB: fine */
	dgm_alembic_ini *ini = NULL;
	dgm_error err = DGM_ERROR_INIT;
	char *v;

	assert_int_equal(dgm_alembic_ini_parse(&ini, "a.ini", "/h", text, strlen(text), &err), 0);
	v = get(ini, "s", "k0");
	assert_int_equal(strlen(v), 16 * 16 * 16 * 4);
	free(v);
	dgm_alembic_ini_free(ini);
	free(text);
	text = fan_out(5, 16, "0123456789abcdef");  /* 1 MiB */
	ini_fails(text, "k0", "a.ini:2: option 'k0' in section 's' expands to more than 65536 bytes");
	free(text);
	text = fan_out(10, 16, "0123456789abcdef"); /* 16^10 bytes */
	ini_fails(text, "k0", "option 'k0' in section 's' expands to more than 65536 bytes");
	free(text);
	text = fan_out(6, 16, "");              /* 1 Mi references to nothing */
	ini_fails(text, "K0", "a.ini:2: option 'K0' in section 's' expands more than 16384 "
		  "references");
	free(text);
}

/* A 600-byte ini whose version_locations interpolates to 64 KiB of
 * commas (found by `make fuzz`: 15 s and 1.6 GB under ASan, one array
 * copy per folder) is refused by count; 1024 folders still load. */
static void folder_lists_are_bounded(void **state)
{
	char *text = fan_out(3, 16, ",,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,");
	dgm_buf ok = DGM_BUF_INIT;
	dgm_alembic_config cfg;
	dgm_buf b = DGM_BUF_INIT;

	dgm_buf_printf(&b, "[alembic]\nscript_location = m\nversion_locations = %%(k0)s\n%s",
		       strchr(text, '\n') + 1);
	config_fails("alembic.ini", b.ptr, NULL, "alembic.ini: version_locations names 16385 "
		     "folders; at most 1024 are read");
	dgm_buf_clear(&b);
	dgm_buf_printf(&b, "[alembic]\nscript_location = m\nprepend_sys_path = %%(k0)s\n%s",
		       strchr(text, '\n') + 1);
	config_fails("alembic.ini", b.ptr, NULL, "alembic.ini: prepend_sys_path names 16385 "
		     "folders; at most 1024 are read");
	dgm_buf_puts(&ok, "[alembic]\nscript_location = m\nversion_locations =");
	for (int i = 0; i < 1024; i++)
		dgm_buf_printf(&ok, " v%d", i);
	dgm_buf_puts(&ok, "\n");
	config_ok(&cfg, "alembic.ini", ok.ptr, NULL);
	assert_int_equal(cfg.nversion_locations, 1024);
	dgm_alembic_config_free(&cfg);
	dgm_buf_free(&ok);
	dgm_buf_free(&b);
	free(text);
}

/* Options and sections are looked up through hash maps: 100,000 keys
 * used to cost minutes (each new key was compared with every other). */
static void many_keys_cost_linear_time(void **state)
{
	dgm_buf b = DGM_BUF_INIT;
	dgm_alembic_ini *ini = NULL;
	dgm_error err = DGM_ERROR_INIT;
	char *v;

	dgm_buf_puts(&b, "[s]\n");
	for (int i = 0; i < 100000; i++)
		dgm_buf_printf(&b, "key%d = %d\n", i, i);
	for (int i = 0; i < 20000; i++)
		dgm_buf_printf(&b, "[sect%d]\nk = %%(key%d)s\n", i, i);
	dgm_buf_puts(&b, "[s]\n");
	assert_int_equal(dgm_alembic_ini_parse(&ini, "a.ini", "/h", b.ptr, b.len, &err), -1);
	assert_non_null(strstr(err.msg, "a.ini:140002: section 's' already exists"));
	b.len -= 4;
	b.ptr[b.len] = '\0';
	assert_int_equal(dgm_alembic_ini_parse(&ini, "a.ini", "/h", b.ptr, b.len, &err), 0);
	v = get(ini, "s", "KEY99999");
	assert_string_equal(v, "99999");
	free(v);
	assert_true(dgm_alembic_ini_has_section(ini, "sect19999"));
	dgm_alembic_ini_free(ini);
	dgm_buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(configparser_rules_hold),
		cmocka_unit_test(ini_errors_are_reported),
		cmocka_unit_test(script_location_is_made_tree_relative),
		cmocka_unit_test(version_path_separators_split_as_alembic),
		cmocka_unit_test(config_errors_are_clear),
		cmocka_unit_test(interpolation_size_is_bounded),
		cmocka_unit_test(many_keys_cost_linear_time),
		cmocka_unit_test(folder_lists_are_bounded),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
