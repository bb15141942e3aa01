/* test_cli_docs.c - the man page and the bash completion name every
 * command and every option of the tables that drive --help. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dgm/cli.h"

static char *capture(void (*write)(FILE *, const char *), bool man)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	assert_non_null(f);
	if (man)
		write(f, "test");
	else
		dgm_cli_write_bash_completion(f);
	fclose(f);
	return text;
}

/* An option as roff spells it: \-\-name. */
static void expect_man_opt(const char *man, const dgm_opt *o, const char *cmd)
{
	char want[96];
	const char *at = strstr(man, cmd);

	snprintf(want, sizeof(want), "\\fB\\-\\-%s\\fR", o->name);
	for (char *p = want + 9; *p; p++)
		if (*p == '-') {
			memmove(p + 1, p, strlen(p) + 1);
			*p++ = '\\';
		}
	if (!at || !strstr(at, want))
		fail_msg("man page lacks '%s' (for '%s')", want, cmd);
}

static void man_page_names_every_command_and_option(void **state)
{
	char *man = capture(dgm_cli_write_man, true);

	assert_non_null(strstr(man, ".TH DGMIGRATE 1"));
	for (const dgm_cmd *c = dgm_commands; c->name; c++) {
		char section[64];

		snprintf(section, sizeof(section), ".SS \"%s\"\n", c->name);
		if (!strstr(man, section))
			fail_msg("man page lacks the section of '%s'", c->name);
		for (const dgm_opt *o = c->opts; o && o->name; o++)
			expect_man_opt(man, o, section);
	}
	for (const dgm_opt *o = dgm_cli_global_opts(); o->name; o++)
		expect_man_opt(man, o, ".SH COMMON OPTIONS");
	free(man);
}

static void completion_names_every_command_and_option(void **state)
{
	char *bash = capture(NULL, false);

	for (const dgm_cmd *c = dgm_commands; c->name; c++) {
		char start[64];
		const char *line, *end;

		snprintf(start, sizeof(start), "\t%s) words='", c->name);
		line = strstr(bash, start);
		if (!line)
			fail_msg("completion lacks the words of '%s'", c->name);
		end = strchr(line, '\n');
		for (const dgm_opt *o = c->opts; o && o->name; o++) {
			char want[64];
			const char *hit;

			snprintf(want, sizeof(want), " --%s ", o->name);
			hit = strstr(line, want);
			if (!hit || hit > end)
				fail_msg("completion of '%s' lacks '--%s'", c->name, o->name);
		}
	}
	free(bash);
}

/* Every line that starts with a dot is one of the requests the
 * generator writes: text from the tables never becomes a request. */
static bool known_request(const char *l)
{
	static const char *req[] = { ".TH ", ".SH ", ".SS ", ".TP\n", ".PP\n", ".RS\n", ".RE\n",
				     ".B ", ".BR ", ".br\n", ".nf\n", ".fi\n", NULL };

	for (int i = 0; req[i]; i++)
		if (!strncmp(l, req[i], strlen(req[i])))
			return true;
	return false;
}

static void roff_escapes_backslashes_and_leading_dots(void **state)
{
	char *man = capture(dgm_cli_write_man, true);

	for (char *l = man; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
		if ((l[0] == '.' || l[0] == '\'') && !known_request(l))
			fail_msg("unescaped line: %.40s", l);
	free(man);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(man_page_names_every_command_and_option),
		cmocka_unit_test(completion_names_every_command_and_option),
		cmocka_unit_test(roff_escapes_backslashes_and_leading_dots),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
