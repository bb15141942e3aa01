/* test_plan.c - the release plan: schema, typing, ${VAR} expansion,
 * durations and sizes, suggestions, environment checks, secrets, and
 * the plans shipped in plans/. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dgm/buf.h"
#include "dgm/error.h"
#include "dgm/log.h"
#include "dgm/plan.h"
#include "../../src/plan/internal.h"

#define NAME "plans/t.yaml"
#define DIR "/srv/release/plans"

/* Nine lines every test plan starts from; broken plans add from line 10. */
#define BASE                                \
	"version: 1\n"                      \
	"release:\n"                        \
	"  name: demo\n"                    \
	"  repository: ../app\n"            \
	"  tag: v1.6\n"                     \
	"database:\n"                       \
	"  url: postgresql://localhost/app\n" \
	"snapshot:\n"                       \
	"  directory: backups\n"

static int parse(dgm_plan *p, const char *text, dgm_error *e)
{
	return dgm_plan_parse(p, NAME, DIR, text, strlen(text), e);
}

/* ---- broken plans: exact message, code and hint ------------------------- */

struct broken {
	const char *name;
	const char *text;
	const char *msg;
	const char *hint;   /* NULL: not checked */
};

static const struct broken broken[] = {
	/* unknown keys */
	{ "unknown_key_suggests_the_nearest",
	  "version: 1\nrelease:\n  name: demo\n  repository: ../app\n  tga: v1.6\n",
	  NAME ":5:3: unknown key 'tga' in 'release'; did you mean 'tag'?",
	  "rename 'tga' to 'tag'" },
	{ "unknown_key_prefix_suggests_the_full_key",
	  "version: 1\nrelease:\n  repo: ../app\n",
	  NAME ":3:3: unknown key 'repo' in 'release'; did you mean 'repository'?", NULL },
	{ "unknown_top_level_key_suggests",
	  BASE "timeout:\n  hook: 5s\n",
	  NAME ":10:1: unknown key 'timeout' at the top level; did you mean 'timeouts'?", NULL },
	{ "unknown_key_lists_valid_keys_when_nothing_is_close",
	  BASE "  colour: red\n",
	  NAME ":10:3: unknown key 'colour' in 'snapshot'; valid keys are 'directory', 'format', "
	  "'jobs', 'compression', 'keep', 'min_free', 'rollback_safety', 'keep_copies', "
	  "'allow_no_restore', 'key_file', 'engine'",
	  "remove 'colour' or rename it to one of the valid keys" },
	{ "unknown_top_level_key_lists_valid_keys",
	  BASE "owner: ops\n",
	  NAME ":10:1: unknown key 'owner' at the top level; valid keys are 'version', 'release', "
	  "'database', 'alembic', 'snapshot', 'model_store', 'environment', 'postconditions', "
	  "'hooks', 'health_check', 'timeouts', 'on_failure', 'state_dir', 'lint', 'pgbackrest'",
	  NULL },
	{ "dotted_key_is_told_to_nest",
	  BASE "release.allow_dirty: true\n",
	  NAME ":10:1: unknown key 'release.allow_dirty' at the top level; keys do not contain dots",
	  "write 'release:' and below it, indented, 'allow_dirty: ...'" },
	{ "unknown_key_in_a_hook",
	  BASE "hooks:\n  before:\n    - name: a\n      run: [a]\n      timout: 5s\n",
	  NAME ":14:7: unknown key 'timout' in 'hooks.before[0]'; did you mean 'timeout'?", NULL },
	/* missing keys: the position is the mapping that lacks it */
	{ "missing_required_key",
	  "version: 1\nrelease:\n  name: demo\n  repository: ../app\n"
	  "database:\n  url: x\nsnapshot:\n  directory: b\n",
	  NAME ":3:3: missing required key 'tag' in 'release'", "add 'tag: v1.6' under 'release'" },
	{ "missing_required_section",
	  "version: 1\nrelease:\n  name: demo\n  repository: ../app\n  tag: v1.6\n"
	  "database:\n  url: x\n",
	  NAME ":1:1: missing required key 'snapshot' at the top level",
	  "add 'snapshot:' at the top level; plans/example.yaml shows every key" },
	{ "missing_version",
	  "release:\n  name: demo\n  repository: ../app\n  tag: v1.6\n"
	  "database:\n  url: x\nsnapshot:\n  directory: b\n",
	  NAME ":1:1: missing required key 'version' at the top level", NULL },
	{ "missing_key_in_an_empty_flow_mapping",
	  "version: 1\nrelease: {}\n",
	  NAME ":2:10: missing required key 'name' in 'release'", NULL },
	{ "missing_url_in_health_check",
	  BASE "health_check:\n  timeout: 5s\n",
	  NAME ":11:3: missing required key 'url' in 'health_check'",
	  "add 'url: http://localhost:8000/api/health' under 'health_check'" },
	{ "missing_run_in_a_hook",
	  BASE "hooks:\n  after:\n    - name: maintenance-off\n",
	  NAME ":12:7: missing required key 'run' in 'hooks.after[0]'", NULL },
	/* version */
	{ "version_other_than_1",
	  "version: 2\n",
	  NAME ":1:10: 'version' must be 1, got '2'",
	  "this dgmigrate reads version 1 of the plan format" },
	/* wrong types and values */
	{ "integer_given_a_word",
	  BASE "  jobs: two\n",
	  NAME ":10:9: 'snapshot.jobs' must be an integer from 1 to 64, got 'two'",
	  "write a whole number from 1 to 64" },
	{ "integer_out_of_range",
	  BASE "  compression: 10\n",
	  NAME ":10:16: 'snapshot.compression' must be an integer from 0 to 9, got '10'", NULL },
	{ "integer_below_its_minimum",
	  BASE "  keep: 0\n",
	  NAME ":10:9: 'snapshot.keep' must be an integer of at least 1, got '0'",
	  "write a whole number of at least 1" },
	{ "integer_with_a_fraction",
	  BASE "health_check:\n  url: http://x\n  retries: 2.5\n",
	  NAME ":12:12: 'health_check.retries' must be an integer of at least 1, got '2.5'", NULL },
	{ "boolean_given_yes",
	  BASE "postconditions:\n  analyze: yes\n",
	  NAME ":11:12: 'postconditions.analyze' must be true or false, got 'yes'",
	  "write true or false (yes, no, on and off are not accepted)" },
	{ "bad_enum_lists_the_allowed_values",
	  BASE "  format: tar\n",
	  NAME ":10:11: 'snapshot.format' must be one of 'directory', 'custom', got 'tar'", NULL },
	{ "bad_rollback_safety",
	  BASE "  rollback_safety: snapshot\n",
	  NAME ":10:20: 'snapshot.rollback_safety' must be one of 'copy', 'dump', got 'snapshot'",
	  NULL },
	{ "lint_ignore_names_an_unknown_rule",
	  BASE "lint:\n  ignore:\n    - drop-column\n    - add-index-concurrently\n",
	  NAME ":13:7: 'lint.ignore[1]' is not a lint rule: 'add-index-concurrently'",
	  "'dgmigrate lint --help' and the README list the rules, e.g. add-index-non-concurrent" },
	{ "lint_bad_fail_on",
	  BASE "lint:\n  fail_on: fatal\n",
	  NAME ":11:12: 'lint.fail_on' must be one of 'notice', 'warning', 'error', 'never', "
	  "got 'fatal'", NULL },
	{ "lint_bad_threshold",
	  BASE "lint:\n  thresholds:\n    error_size: big\n",
	  NAME ":12:17: 'lint.thresholds.error_size' must be a size such as 4096, 100KB, 512MiB or "
	  "1GiB, got 'big'", NULL },
	{ "bad_on_failure",
	  BASE "on_failure: continue\n",
	  NAME ":10:13: 'on_failure' must be one of 'rollback', 'stop', got 'continue'", NULL },
	{ "bad_duration",
	  BASE "timeouts:\n  hook: 30 sec\n",
	  NAME ":11:9: 'timeouts.hook' must be a duration such as 500ms, 30s, 5m, 2h or 1h30m, "
	  "got '30 sec'",
	  "write a whole number and a unit (ms, s, m or h), largest unit first; a number "
	  "without a unit is allowed only for 0" },
	{ "duration_without_a_unit",
	  BASE "timeouts:\n  lock_timeout: 5\n",
	  NAME ":11:17: 'timeouts.lock_timeout' must be a duration such as 500ms, 30s, 5m, 2h or "
	  "1h30m, got '5'", NULL },
	{ "bad_hook_timeout",
	  BASE "hooks:\n  before:\n    - name: a\n      run: [a]\n      timeout: 1x\n",
	  NAME ":14:16: 'hooks.before[0].timeout' must be a duration such as 500ms, 30s, 5m, 2h or "
	  "1h30m, got '1x'", NULL },
	{ "bad_size",
	  BASE "  min_free: 1 gig\n",
	  NAME ":10:13: 'snapshot.min_free' must be a size such as 4096, 100KB, 512MiB or 1GiB, "
	  "got '1 gig'", NULL },
	{ "list_where_a_mapping_is_expected",
	  BASE "timeouts: [1]\n",
	  NAME ":10:11: 'timeouts' must be a mapping, got a list",
	  "write 'key: value' lines indented below 'timeouts'" },
	{ "scalar_where_a_mapping_is_expected",
	  BASE "alembic: alembic.ini\n",
	  NAME ":10:10: 'alembic' must be a mapping, got 'alembic.ini'", NULL },
	{ "mapping_where_a_string_is_expected",
	  BASE "  format:\n    kind: custom\n",
	  NAME ":11:5: 'snapshot.format' must be one of 'directory', 'custom', got a mapping",
	  "write a single value after 'format:'" },
	{ "string_where_a_list_is_expected",
	  BASE "postconditions:\n  tables: predictive_models\n",
	  NAME ":11:11: 'postconditions.tables' must be a list of table names, "
	  "got 'predictive_models'",
	  "write it as a list, e.g. [predictive_models]" },
	{ "mapping_where_a_list_is_expected",
	  BASE "environment:\n  required:\n    DATABASE_URL: yes\n",
	  NAME ":12:5: 'environment.required' must be a list of variable names, got a mapping",
	  "write the items as [a, b] or as '- item' lines" },
	{ "key_without_a_value",
	  "version: 1\nrelease:\n  name: demo\n  repository: ../app\n  tag:\n",
	  NAME ":5:7: 'release.tag' has no value", "give it a value, e.g. v1.6" },
	{ "optional_section_without_a_value",
	  BASE "alembic:\n",
	  NAME ":10:9: 'alembic' has no value",
	  "give it a value, or remove the key to use the default" },
	{ "empty_string",
	  "version: 1\nrelease:\n  name: ''\n",
	  NAME ":3:9: 'release.name' must not be empty", NULL },
	{ "tilde_is_not_expanded",
	  BASE "state_dir: ~/state\n",
	  NAME ":10:12: 'state_dir' starts with '~', which is not expanded",
	  "write ${HOME}/... or an absolute path" },
	/* lists */
	{ "empty_list_where_one_item_is_required",
	  BASE "postconditions:\n  tables: []\n",
	  NAME ":11:11: 'postconditions.tables' must not be empty",
	  "list at least one, e.g. [predictive_models], or remove the key" },
	{ "empty_index_list",
	  BASE "postconditions:\n  tables: [a]\n  indexes: []\n",
	  NAME ":12:12: 'postconditions.indexes' must not be empty", NULL },
	{ "bad_table_name",
	  BASE "postconditions:\n  tables: [public.ok, 'bad name']\n",
	  NAME ":11:23: 'postconditions.tables[1]' must be a name such as predictive_models or "
	  "myschema.predictive_models, got 'bad name'", NULL },
	{ "bad_variable_name_in_environment_required",
	  BASE "environment:\n  required:\n    - DATABASE_URL\n    - API-KEY\n",
	  NAME ":13:7: 'environment.required[1]' must be a variable name, got 'API-KEY'",
	  "a name is letters, digits and '_', not starting with a digit" },
	{ "variable_name_written_with_a_dollar",
	  BASE "environment:\n  required: [$SECRET_KEY]\n",
	  NAME ":11:14: 'environment.required[0]' must be a variable name, got '$SECRET_KEY'",
	  "write the name alone, without '$' or '${}'" },
	{ "duplicate_key",
	  BASE "  directory: other\n",
	  NAME ":10:3: duplicate key 'directory' in 'snapshot' (first given at line 9)",
	  "keep one of the two" },
	{ "duplicate_section",
	  BASE "release:\n  tag: v1.7\n",
	  NAME ":10:1: duplicate key 'release' at the top level (first given at line 2)", NULL },
	/* health check, hooks, commands */
	{ "health_check_url_not_http",
	  BASE "health_check:\n  url: ftp://example.com/health\n",
	  NAME ":11:8: 'health_check.url' must start with http:// or https://, "
	  "got 'ftp://example.com/health'", NULL },
	{ "hook_run_given_as_a_string",
	  BASE "hooks:\n  before:\n    - name: maintenance-on\n      run: ./bin/maintenance on\n",
	  NAME ":13:12: 'hooks.before[0].run' must be a list of strings (argv), not a string: "
	  "hooks run without a shell",
	  "write run: [\"./bin/maintenance\", \"on\"]" },
	{ "hook_run_empty",
	  BASE "hooks:\n  after:\n    - name: x\n      run: []\n",
	  NAME ":13:12: 'hooks.after[0].run' must not be empty",
	  "write the command as a list, e.g. [./bin/maintenance, \"on\"]" },
	{ "hook_that_is_not_a_mapping",
	  BASE "hooks:\n  before:\n    - ./bin/maintenance on\n",
	  NAME ":12:7: 'hooks.before[0]' must be a mapping with 'name' and 'run', "
	  "got './bin/maintenance on'", NULL },
	{ "hooks_that_are_not_a_list",
	  BASE "hooks:\n  after: maintenance-off\n",
	  NAME ":11:10: 'hooks.after' must be a list of hooks, got 'maintenance-off'", NULL },
	{ "alembic_read_graph_unknown",
	  BASE "alembic:\n  read_graph: dynamic\n",
	  NAME ":11:15: 'alembic.read_graph' must be one of 'static', 'alembic', got 'dynamic'",
	  "write one of the values exactly as listed" },
	{ "alembic_command_with_arguments_in_a_string",
	  BASE "alembic:\n  command: python3 -m alembic\n",
	  NAME ":11:12: 'alembic.command' must be one program name or a list, "
	  "got 'python3 -m alembic'",
	  "commands run without a shell: to pass arguments, write a list such as "
	  "[python3, -m, alembic]" },
	/* YAML itself */
	{ "yaml_syntax_error",
	  BASE "  jobs: [1, 2\n",
	  NAME ":11:1: invalid YAML: did not find expected ',' or ']' (while parsing a flow "
	  "sequence at line 10, column 9)", NULL },
	{ "yaml_bad_indentation",
	  "version: 1\nrelease:\n  name: demo\n tag: v1.6\n",
	  NAME ":4:2: invalid YAML: did not find expected key (while parsing a block mapping "
	  "at line 1, column 1)", NULL },
	{ "yaml_tab_indentation",
	  "version: 1\nrelease:\n\tname: demo\n",
	  NAME ":3:1: invalid YAML: found character that cannot start any token (while scanning "
	  "for the next token at line 3, column 1)",
	  "YAML does not allow tabs for indentation: use spaces" },
	{ "yaml_alias",
	  BASE "  jobs: &n 2\n  keep: *n\n",
	  NAME ":11:9: YAML aliases ('*n') are not supported in plans", NULL },
	{ "yaml_two_documents",
	  BASE "---\nversion: 1\n",
	  NAME ":10:1: the plan holds more than one YAML document", NULL },
	{ "yaml_invalid_utf8",
	  "version: 1\nrelease: \xff\n",
	  NAME ":2:10: invalid YAML: invalid leading UTF-8 octet",
	  "save the plan as UTF-8 text without control characters" },
	{ "empty_file", "", NAME ":1:1: plan is empty",
	  "start from plans/example.yaml, which documents every key" },
	{ "only_comments", "# nothing here\n\n# yet\n", NAME ":1:1: plan is empty", NULL },
	{ "top_level_list",
	  "- version: 1\n",
	  NAME ":1:1: the plan must be a mapping of keys (version, release, ...), got a list",
	  NULL },
	{ "top_level_scalar",
	  "just some text\n",
	  NAME ":1:1: the plan must be a mapping of keys (version, release, ...), "
	  "got 'just some text'", NULL },
	/* ${VAR} */
	{ "unset_variable",
	  "version: 1\nrelease:\n  name: demo\n  repository: ../app\n  tag: v1.6\n"
	  "database:\n  url: ${DGM_T_UNSET}\n",
	  NAME ":7:8: environment variable 'DGM_T_UNSET' is not set (used in 'database.url')",
	  "export DGM_T_UNSET=... or remove it from the plan" },
	{ "unset_variable_in_a_list_item",
	  BASE "model_store:\n  path: /m\n  extra_paths:\n    - ${DGM_T_UNSET}/app.env\n",
	  NAME ":13:7: environment variable 'DGM_T_UNSET' is not set "
	  "(used in 'model_store.extra_paths[0]')", NULL },
	{ "unterminated_variable",
	  "version: 1\nrelease:\n  name: demo ${DGM_T_URL\n",
	  NAME ":3:9: '${' without a closing '}' in 'release.name'",
	  "close the variable name with '}', or write '$${' for a literal '${'" },
	{ "bad_variable_name_in_a_value",
	  "version: 1\nrelease:\n  name: ${DGM_T_URL:-x}\n",
	  NAME ":3:9: bad variable name 'DGM_T_URL:-x' in 'release.name'", NULL },
	{ "variable_set_to_an_empty_string",
	  "version: 1\nrelease:\n  name: demo\n  repository: ../app\n  tag: v1.6\n"
	  "database:\n  url: ${DGM_T_EMPTY}\n",
	  NAME ":7:8: 'database.url' must not be empty",
	  "a variable it uses is set to an empty string" },
	{ "expanded_value_is_never_shown",
	  BASE "  jobs: ${DGM_T_URL}\n",
	  NAME ":10:9: 'snapshot.jobs' must be an integer from 1 to 64, got '${DGM_T_URL}' "
	  "(expanded value not shown)", NULL },
	/* alembic.env and alembic.x */
	{ "alembic_x_refuses_the_password_placeholder",
	  BASE "alembic:\n  x: [a=b, \"pw=${target.password}\"]\n",
	  NAME ":11:12: 'alembic.x[1]' puts ${target.password} in alembic's argv, which every "
	  "user of the machine can read", NULL },
	{ "alembic_x_refuses_the_url_placeholder",
	  BASE "alembic:\n  x:\n    - \"url=${target.url}\"\n",
	  NAME ":12:7: 'alembic.x[0]' puts ${target.url} in alembic's argv, which every "
	  "user of the machine can read", NULL },
	{ "unknown_target_placeholder_suggests",
	  BASE "alembic:\n  env:\n    POSTGRES_DB: \"${target.dbnam}\"\n",
	  NAME ":12:18: unknown placeholder '${target.dbnam}' in 'alembic.env.POSTGRES_DB'; "
	  "did you mean '${target.dbname}'?", NULL },
	{ "target_placeholder_only_in_alembic_env_and_x",
	  BASE "state_dir: \"${target.dbname}\"\n",
	  NAME ":10:12: '${target.dbname}' in 'state_dir': the ${target.*} placeholders are "
	  "for alembic.env and alembic.x only", NULL },
	{ "alembic_env_names_are_variable_names",
	  BASE "alembic:\n  env:\n    9LIVES: x\n",
	  NAME ":12:5: 'alembic.env.9LIVES' must be an environment variable name, got '9LIVES'",
	  NULL },
	{ "alembic_env_is_a_mapping",
	  BASE "alembic:\n  env: [A=b]\n",
	  NAME ":11:8: 'alembic.env' must be a mapping of variable names to values, got a list",
	  NULL },
	/* snapshot.engine: pgbackrest and its section */
	{ "engine_is_dump_or_pgbackrest",
	  BASE "  engine: barman\n",
	  NAME ":10:11: 'snapshot.engine' must be one of 'dump', 'pgbackrest', got 'barman'", NULL },
	{ "pgbackrest_engine_needs_its_section",
	  BASE "  engine: pgbackrest\n",
	  NAME ":10:11: 'snapshot.engine: pgbackrest' needs a 'pgbackrest' section",
	  "add 'pgbackrest:' with at least 'stanza: <name>' (see plans/example.yaml)" },
	{ "pgbackrest_section_without_the_engine",
	  BASE "pgbackrest:\n  stanza: main\n",
	  NAME ":11:3: 'pgbackrest' is given but snapshot.engine is 'dump': the section would be "
	  "ignored", "set 'snapshot.engine: pgbackrest', or remove the section" },
	{ "pgbackrest_needs_a_stanza",
	  BASE "  engine: pgbackrest\npgbackrest:\n  backup: full\n",
	  NAME ":12:3: missing required key 'stanza' in 'pgbackrest'", NULL },
	{ "pgbackrest_backup_types",
	  BASE "  engine: pgbackrest\npgbackrest:\n  stanza: main\n  backup: weekly\n",
	  NAME ":13:11: 'pgbackrest.backup' must be one of 'none', 'incr', 'diff', 'full', got "
	  "'weekly'", NULL },
	{ "pgbackrest_restore_cluster_needs_server_commands",
	  BASE "  engine: pgbackrest\npgbackrest:\n  stanza: main\n  restore: cluster\n"
	  "  server:\n    stop: [pg_ctlcluster, \"15\", main, stop]\n",
	  NAME ":13:12: 'pgbackrest.restore: cluster' needs 'pgbackrest.server.stop' and "
	  "'pgbackrest.server.start'", NULL },
	{ "pgbackrest_options_are_options",
	  BASE "  engine: pgbackrest\npgbackrest:\n  stanza: main\n  options: [repo1-type=s3]\n",
	  NAME ":13:13: 'pgbackrest.options[0]' must be a pgbackrest option '--name=value', got "
	  "'repo1-type=s3'", NULL },
	{ "pgbackrest_options_never_hold_secrets",
	  BASE "  engine: pgbackrest\npgbackrest:\n  stanza: main\n"
	  "  options: [--repo1-type=s3, --repo1-s3-key-secret=abc]\n",
	  NAME ":13:30: 'pgbackrest.options[1]' passes pgbackrest's 'repo1-s3-key-secret' on the "
	  "command line, where every user can read it",
	  "set it in the environment as PGBACKREST_repo1-s3-key-secret or in pgbackrest's "
	  "configuration file" },
	{ "pgbackrest_server_stop_is_a_list",
	  BASE "  engine: pgbackrest\npgbackrest:\n  stanza: main\n  server:\n"
	  "    stop: pg_ctlcluster\n",
	  NAME ":14:11: 'pgbackrest.server.stop' must be a list of strings (argv), got "
	  "'pg_ctlcluster'", NULL },
};

static void broken_plan_fails_exactly(void **state)
{
	const struct broken *b = *state;
	dgm_error e = DGM_ERROR_INIT;
	dgm_plan p;

	assert_int_equal(parse(&p, b->text, &e), -1);
	assert_string_equal(e.msg, b->msg);
	assert_int_equal(e.code, DGM_E_PLAN);
	assert_int_equal(dgm_error_exit_code(&e), 2);
	assert_true(e.hint[0] != '\0');
	if (b->hint)
		assert_string_equal(e.hint, b->hint);
	/* A failed parse leaves nothing to free, and freeing is harmless. */
	assert_null(p.path);
	dgm_plan_free(&p);
}

/* No message may carry a variable's value. */
static void messages_never_hold_a_variable_value(void **state)
{
	for (size_t i = 0; i < sizeof(broken) / sizeof(broken[0]); i++) {
		dgm_error e = DGM_ERROR_INIT;
		dgm_plan p;

		parse(&p, broken[i].text, &e);
		assert_null(strstr(e.msg, "s3cr3t"));
		assert_null(strstr(e.hint, "s3cr3t"));
	}
}

/* ---- valid plans ------------------------------------------------------- */

static const char full_plan[] =
	"version: 1\n"
	"release:\n"
	"  name: \"FastAPI v1.6 ML analytics\"\n"
	"  repository: ../app\n"
	"  tag: v1.6\n"
	"  allow_dirty: true\n"
	"database:\n"
	"  url: ${DGM_T_URL}\n"
	"alembic:\n"
	"  config: conf/alembic.ini\n"
	"  command: [python3, -m, alembic]\n"
	"  target: ae1027a6acf\n"
	"  version_table: av\n"
	"  version_table_schema: meta\n"
	"snapshot:\n"
	"  directory: /var/backups/app\n"
	"  format: custom\n"
	"  jobs: 4\n"
	"  compression: 0\n"
	"  keep: 3\n"
	"  min_free: 512MiB\n"
	"  rollback_safety: dump\n"
	"  keep_copies: 0\n"
	"model_store:\n"
	"  path: ${DGM_T_MODELS}\n"
	"  compression_level: 19\n"
	"  threads: 8\n"
	"  extra_paths: [../config/app.env, /etc/app/extra.conf]\n"
	"environment:\n"
	"  required: [DGM_T_URL, DGM_T_SECRET]\n"
	"postconditions:\n"
	"  tables: [predictive_models, analytics.prediction_history]\n"
	"  indexes:\n"
	"    - ix_predictive_models_organization_id\n"
	"  foreign_keys_validated: false\n"
	"  analyze: False\n"
	"hooks:\n"
	"  before:\n"
	"    - name: maintenance-on\n"
	"      run: [./bin/maintenance, \"on\"]\n"
	"      timeout: 30s\n"
	"    - name: warm\n"
	"      run: [./bin/warm, \"\"]\n"
	"  after:\n"
	"    - name: maintenance-off\n"
	"      run: [./bin/maintenance, \"off\"]\n"
	"health_check:\n"
	"  url: https://app.example/api/health\n"
	"  timeout: 2m\n"
	"  interval: 500ms\n"
	"  retries: 3\n"
	"timeouts:\n"
	"  lock_timeout: 10s\n"
	"  statement_timeout: 1h30m\n"
	"  snapshot: 30m\n"
	"  migrate: 15m\n"
	"  restore: 2h\n"
	"  hook: 45s\n"
	"on_failure: stop\n"
	"state_dir: ../state\n";

static void full_plan_maps_every_field(void **state)
{
	dgm_error e = DGM_ERROR_INIT;
	dgm_plan p;

	assert_int_equal(parse(&p, full_plan, &e), 0);
	assert_string_equal(p.path, NAME);
	assert_string_equal(p.dir, DIR);
	assert_int_equal(p.version, 1);
	assert_string_equal(p.release.name, "FastAPI v1.6 ML analytics");
	assert_string_equal(p.release.repository, "/srv/release/app");
	assert_string_equal(p.release.tag, "v1.6");
	assert_true(p.release.allow_dirty);
	assert_string_equal(p.database.url, "postgresql://app:s3cr3t-pw@db.example/app");
	assert_string_equal(p.alembic.config, "/srv/release/app/conf/alembic.ini");
	assert_int_equal(p.alembic.command.count, 3);
	assert_string_equal(p.alembic.command.items[0], "python3");
	assert_string_equal(p.alembic.command.items[2], "alembic");
	assert_null(p.alembic.command.items[3]);
	assert_string_equal(p.alembic.target, "ae1027a6acf");
	assert_string_equal(p.alembic.version_table, "av");
	assert_string_equal(p.alembic.version_schema, "meta");
	assert_string_equal(p.snapshot.directory, "/var/backups/app");
	assert_int_equal(p.snapshot.format, DGM_DUMP_CUSTOM);
	assert_int_equal(p.snapshot.jobs, 4);
	assert_int_equal(p.snapshot.compression, 0);
	assert_int_equal(p.snapshot.keep, 3);
	assert_true(p.snapshot.min_free_bytes == 512LL << 20);
	assert_int_equal(p.snapshot.rollback_safety, DGM_SAFETY_DUMP);
	assert_int_equal(p.snapshot.keep_copies, 0);
	assert_string_equal(p.model_store.path, "/srv/models");
	assert_int_equal(p.model_store.level, 19);
	assert_int_equal(p.model_store.threads, 8);
	assert_int_equal(p.model_store.extra_paths.count, 2);
	assert_string_equal(p.model_store.extra_paths.items[0], "/srv/release/config/app.env");
	assert_string_equal(p.model_store.extra_paths.items[1], "/etc/app/extra.conf");
	assert_int_equal(p.required_env.count, 2);
	assert_string_equal(p.required_env.items[1], "DGM_T_SECRET");
	assert_int_equal(p.postconditions.tables.count, 2);
	assert_string_equal(p.postconditions.tables.items[1], "analytics.prediction_history");
	assert_int_equal(p.postconditions.indexes.count, 1);
	assert_false(p.postconditions.foreign_keys_validated);
	assert_false(p.postconditions.analyze);
	assert_int_equal(p.hooks.before.count, 2);
	assert_string_equal(p.hooks.before.items[0].name, "maintenance-on");
	assert_int_equal(p.hooks.before.items[0].argv.count, 2);
	assert_string_equal(p.hooks.before.items[0].argv.items[1], "on");
	assert_int_equal(p.hooks.before.items[0].timeout_ms, 30000);
	assert_string_equal(p.hooks.before.items[1].argv.items[1], "");
	assert_int_equal(p.hooks.before.items[1].timeout_ms, 45000); /* timeouts.hook */
	assert_int_equal(p.hooks.after.count, 1);
	assert_string_equal(p.hooks.after.items[0].argv.items[1], "off");
	assert_int_equal(p.hooks.after.items[0].timeout_ms, 45000);
	assert_string_equal(p.health_check.url, "https://app.example/api/health");
	assert_int_equal(p.health_check.timeout_ms, 120000);
	assert_int_equal(p.health_check.interval_ms, 500);
	assert_int_equal(p.health_check.retries, 3);
	assert_int_equal(p.timeouts.lock_ms, 10000);
	assert_int_equal(p.timeouts.statement_ms, 5400000);
	assert_int_equal(p.timeouts.snapshot_ms, 1800000);
	assert_int_equal(p.timeouts.migrate_ms, 900000);
	assert_int_equal(p.timeouts.restore_ms, 7200000);
	assert_int_equal(p.timeouts.hook_ms, 45000);
	assert_int_equal(p.on_failure, DGM_ON_FAILURE_STOP);
	assert_string_equal(p.state_dir, "/srv/release/state");
	dgm_plan_free(&p);
}

static void read_graph_is_static_unless_alembic(void **state)
{
	dgm_error e = DGM_ERROR_INIT;
	dgm_plan p;

	assert_int_equal(parse(&p, BASE, &e), 0);
	assert_int_equal(p.alembic.read_graph, DGM_READ_GRAPH_STATIC);
	dgm_plan_free(&p);
	assert_int_equal(parse(&p, BASE "alembic:\n  read_graph: alembic\n", &e), 0);
	assert_int_equal(p.alembic.read_graph, DGM_READ_GRAPH_ALEMBIC);
	dgm_plan_free(&p);
	assert_int_equal(parse(&p, BASE "alembic:\n  read_graph: static\n", &e), 0);
	assert_int_equal(p.alembic.read_graph, DGM_READ_GRAPH_STATIC);
	dgm_plan_free(&p);
}

static void minimal_plan_gets_the_defaults(void **state)
{
	dgm_error e = DGM_ERROR_INIT;
	dgm_plan p;

	assert_int_equal(parse(&p, BASE, &e), 0);
	assert_false(p.release.allow_dirty);
	assert_string_equal(p.alembic.config, "/srv/release/app/alembic.ini");
	assert_int_equal(p.alembic.command.count, 1);
	assert_string_equal(p.alembic.command.items[0], "alembic");
	assert_null(p.alembic.command.items[1]);
	assert_string_equal(p.alembic.target, "heads");
	assert_string_equal(p.alembic.version_table, "alembic_version");
	assert_null(p.alembic.version_schema);
	assert_string_equal(p.snapshot.directory, "/srv/release/plans/backups");
	assert_int_equal(p.snapshot.format, DGM_DUMP_DIRECTORY);
	assert_int_equal(p.snapshot.rollback_safety, DGM_SAFETY_COPY);
	assert_int_equal(p.snapshot.keep_copies, 1);
	assert_int_equal(p.snapshot.jobs, 2);
	assert_int_equal(p.snapshot.compression, 1);
	assert_int_equal(p.snapshot.keep, 5);
	assert_true(p.snapshot.min_free_bytes == 1LL << 30);
	assert_null(p.model_store.path);
	assert_int_equal(p.model_store.level, 3);
	assert_int_equal(p.model_store.threads, 0);
	assert_int_equal(p.model_store.extra_paths.count, 0);
	assert_int_equal(p.required_env.count, 0);
	assert_int_equal(p.postconditions.tables.count, 0);
	assert_true(p.postconditions.foreign_keys_validated);
	assert_true(p.postconditions.analyze);
	assert_int_equal(p.hooks.before.count + p.hooks.after.count, 0);
	assert_null(p.health_check.url);
	assert_int_equal(p.health_check.timeout_ms, 60000);
	assert_int_equal(p.health_check.interval_ms, 2000);
	assert_int_equal(p.health_check.retries, 10);
	assert_int_equal(p.timeouts.lock_ms, 5000);
	assert_int_equal(p.timeouts.statement_ms, 0);
	assert_int_equal(p.timeouts.snapshot_ms, 0);
	assert_int_equal(p.timeouts.migrate_ms, 0);
	assert_int_equal(p.timeouts.restore_ms, 0);
	assert_int_equal(p.timeouts.hook_ms, 60000);
	assert_int_equal(p.on_failure, DGM_ON_FAILURE_ROLLBACK);
	assert_string_equal(p.state_dir, "/srv/release/plans/backups/state");
	dgm_plan_free(&p);
}

static void relative_paths_resolve_against_the_plan_folder(void **state)
{
	const char *text = "version: 1\nrelease:\n  name: d\n  repository: ./a/../b//c/.\n"
			   "  tag: t\ndatabase:\n  url: x\nsnapshot:\n  directory: ../../..\n"
			   "alembic:\n  config: /etc/alembic.ini\nstate_dir: /var/lib/dgm/\n";
	dgm_error e = DGM_ERROR_INIT;
	dgm_plan p;
	char cwd[PATH_MAX];

	assert_int_equal(parse(&p, text, &e), 0);
	assert_string_equal(p.release.repository, "/srv/release/plans/b/c");
	assert_string_equal(p.snapshot.directory, "/");
	assert_string_equal(p.alembic.config, "/etc/alembic.ini");
	assert_string_equal(p.state_dir, "/var/lib/dgm");
	dgm_plan_free(&p);

	/* A relative folder is taken from the current one. */
	assert_int_equal(dgm_plan_parse(&p, "x.yaml", "sub", text, strlen(text), &e), 0);
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_int_equal(strncmp(p.dir, cwd, strlen(cwd)), 0);
	assert_string_equal(p.dir + strlen(cwd), strcmp(cwd, "/") ? "/sub" : "sub");
	dgm_plan_free(&p);
}

static void quotes_do_not_change_typed_values(void **state)
{
	dgm_error e = DGM_ERROR_INIT;
	dgm_plan p;

	assert_int_equal(parse(&p, BASE "  jobs: \"8\"\n  min_free: '0'\n", &e), 0);
	assert_int_equal(p.snapshot.jobs, 8);
	assert_true(p.snapshot.min_free_bytes == 0);
	dgm_plan_free(&p);
	/* ...but a quoted "null" is a string, not a missing value. */
	assert_int_equal(parse(&p, BASE "alembic:\n  target: 'null'\n", &e), 0);
	assert_string_equal(p.alembic.target, "null");
	dgm_plan_free(&p);
}

static void marks_point_at_each_value(void **state)
{
	dgm_error e = DGM_ERROR_INIT;
	const dgm_plan_mark *m;
	dgm_plan p;

	assert_int_equal(parse(&p, full_plan, &e), 0);
	m = dgm_plan_where(&p, "release.repository");
	assert_non_null(m);
	assert_int_equal(m->line, 4);
	assert_int_equal(m->column, 15);
	m = dgm_plan_where(&p, "postconditions.tables[1]");
	assert_non_null(m);
	assert_int_equal(m->line, 32);
	assert_int_equal(m->column, 31);
	assert_null(dgm_plan_where(&p, "nothing.here"));

	dgm_error_set(&e, DGM_E_GIT, "repository '%s' does not exist", p.release.repository);
	dgm_plan_error_at(&p, "release.repository", &e);
	assert_string_equal(e.msg, NAME ":4:15: repository '/srv/release/app' does not exist");
	dgm_error_set(&e, DGM_E_PLAN, "boom");
	dgm_plan_error_at(&p, "alembic.nothing", &e);
	assert_string_equal(e.msg, NAME ": boom");
	dgm_plan_free(&p);
}


/* alembic.env and alembic.x keep ${target.*} for the run; ${VAR} is
 * expanded at load, and a "${" in its value is not taken for one. */
static void alembic_env_and_x_keep_target_placeholders(void **state)
{
	dgm_plan p;
	dgm_error e = DGM_ERROR_INIT;
	dgm_plan_target t = { .url = "postgresql://u:pw@h:5/d", .host = "/tmp/s", .port = "5",
			      .user = "u", .password = "pw", .dbname = "d" };
	char *v;

	setenv("DGM_T_TRICKY", "a${target.password}b", 1);
	assert_int_equal(parse(&p, BASE "alembic:\n  env:\n    POSTGRES_SERVER: \"${target.host}\"\n"
			       "    URL: \"${target.url}\"\n    T: \"${DGM_T_TRICKY}$${x}\"\n"
			       "  x: [\"db=${target.dbname}\", \"port=${target.port}\"]\n", &e), 0);
	assert_int_equal(p.alembic.env.count, 3);
	assert_string_equal(p.alembic.env.items[0], "POSTGRES_SERVER=${target.host}");
	assert_int_equal(p.alembic.x.count, 2);
	v = dgm_plan_target_expand(p.alembic.env.items[0], &t);
	assert_string_equal(v, "POSTGRES_SERVER=/tmp/s");
	free(v);
	v = dgm_plan_target_expand(p.alembic.env.items[1], &t);
	assert_string_equal(v, "URL=postgresql://u:pw@h:5/d");
	free(v);
	/* the variable's "${target.password}" is text, not a placeholder */
	v = dgm_plan_target_expand(p.alembic.env.items[2], &t);
	assert_string_equal(v, "T=a${target.password}b${x}");
	free(v);
	v = dgm_plan_target_expand(p.alembic.x.items[0], &t);
	assert_string_equal(v, "db=d");
	free(v);
	assert_non_null(dgm_plan_where(&p, "alembic.x[1]"));
	dgm_plan_free(&p);
	unsetenv("DGM_T_TRICKY");
}


/* An absolute alembic.config reached through a symlink is rewritten under
 * release.repository, where alembic_run.c finds the ini's folder. */
static void absolute_config_through_a_symlink_lands_in_the_repository(void **state)
{
	char tmpl[] = "/tmp/dgm-plan-XXXXXX", link[64], text[512];
	dgm_plan p;
	dgm_error e = DGM_ERROR_INIT;

	assert_non_null(mkdtemp(tmpl));
	snprintf(link, sizeof(link), "%s-link", tmpl);
	assert_int_equal(symlink(tmpl, link), 0);
	snprintf(text, sizeof(text), "version: 1\nrelease:\n  name: demo\n  repository: %s\n"
		 "  tag: v1\ndatabase:\n  url: postgresql://localhost/app\nsnapshot:\n"
		 "  directory: backups\nalembic:\n  config: %s/alembic.ini\n", tmpl, link);
	assert_int_equal(parse(&p, text, &e), 0);
	snprintf(text, sizeof(text), "%s/alembic.ini", tmpl);
	assert_string_equal(p.alembic.config, text);
	dgm_plan_free(&p);
	unlink(link);
	rmdir(tmpl);
}

/* ---- ${VAR} ------------------------------------------------------------- */

static void variables_expand_in_values_only(void **state)
{
	const char *text = "version: 1\nrelease:\n  name: \"$${literal} ${DGM_T_NAME} $HOME $\"\n"
			   "  repository: ${DGM_T_MODELS}/../app\n  tag: v${DGM_T_TAG}\n"
			   "database:\n  url: ${DGM_T_URL}\nsnapshot:\n  directory: b\n";
	dgm_error e = DGM_ERROR_INIT;
	dgm_plan p;

	setenv("DGM_T_NAME", "analytics", 1);
	setenv("DGM_T_TAG", "1.6", 1);
	assert_int_equal(parse(&p, text, &e), 0);
	assert_string_equal(p.release.name, "${literal} analytics $HOME $");
	assert_string_equal(p.release.repository, "/srv/app");
	assert_string_equal(p.release.tag, "v1.6");
	dgm_plan_free(&p);

	/* Keys are never expanded. */
	assert_int_equal(parse(&p, BASE "${DGM_T_NAME}: x\n", &e), -1);
	assert_string_equal(e.msg, NAME ":10:1: unknown key '${DGM_T_NAME}' at the top level; "
			    "valid keys are 'version', 'release', 'database', 'alembic', "
			    "'snapshot', 'model_store', 'environment', 'postconditions', 'hooks', "
			    "'health_check', 'timeouts', 'on_failure', 'state_dir', 'lint', 'pgbackrest'");
	unsetenv("DGM_T_NAME");
	unsetenv("DGM_T_TAG");
}

static void expand_handles_edges(void **state)
{
	dgm_error e = DGM_ERROR_INIT;
	char *out;

	assert_int_equal(dgm_plan_expand(&out, "", "f:1:1", "k", &e), 0);
	assert_string_equal(out, "");
	free(out);
	assert_int_equal(dgm_plan_expand(&out, "$$${DGM_T_SECRET}$${x}$$", "f:1:1", "k", &e), 0);
	/* Left to right: "$" then "$${" - only "$${" is special. */
	assert_string_equal(out, "$${DGM_T_SECRET}${x}$$");
	free(out);
	assert_int_equal(dgm_plan_expand(&out, "a${}b", "f:2:3", "k", &e), -1);
	assert_null(out);
	assert_string_equal(e.msg, "f:2:3: bad variable name '' in 'k'");
	assert_int_equal(dgm_plan_expand(&out, "${9LIVES}", "f:2:3", "k", &e), -1);
	assert_string_equal(e.msg, "f:2:3: bad variable name '9LIVES' in 'k'");
	assert_int_equal(dgm_plan_expand(&out, "${DGM_T_UNSET}", "f:2:3", "k", &e), -1);
	assert_string_equal(e.msg, "f:2:3: environment variable 'DGM_T_UNSET' is not set "
			    "(used in 'k')");
	assert_true(dgm_plan_is_var_name("_x9", 3));
	assert_false(dgm_plan_is_var_name("x-9", 3));
}

/* ---- durations and sizes ----------------------------------------------- */

static void durations_parse(void **state)
{
	static const struct { const char *s; long ms; } ok[] = {
		{ "0", 0 }, { "0s", 0 }, { "500ms", 500 }, { "30s", 30000 }, { "5m", 300000 },
		{ "2h", 7200000 }, { "1h30m", 5400000 }, { "1h0m5s250ms", 3605250 },
		{ "90s", 90000 }, { "1m1ms", 60001 },
	};
	static const char *const bad[] = {
		"", "5", "00", "-5s", "+5s", "5 s", "5S", "1.5h", "30m1h", "5m5m", "5d", "h",
		"1h30", "5sec", " 5s", "5s ", "99999999999999999999s", "9223372036854775807h",
	};
	long ms;

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		ms = -1;
		assert_int_equal(dgm_parse_duration(ok[i].s, &ms), 0);
		assert_int_equal(ms, ok[i].ms);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (dgm_parse_duration(bad[i], &ms) != -1)
			fail_msg("duration '%s' was accepted", bad[i]);
	assert_int_equal(dgm_parse_duration(NULL, &ms), -1);
}

static void sizes_parse(void **state)
{
	static const struct { const char *s; long long bytes; } ok[] = {
		{ "0", 0 }, { "4096", 4096 }, { "10B", 10 }, { "100k", 102400 },
		{ "100K", 102400 }, { "100KiB", 102400 }, { "100KB", 100000 }, { "100kb", 100000 },
		{ "2M", 2LL << 20 }, { "2MiB", 2LL << 20 }, { "2MB", 2000000 },
		{ "1G", 1LL << 30 }, { "1GiB", 1LL << 30 }, { "1gib", 1LL << 30 },
		{ "1GB", 1000000000 }, { "3T", 3LL << 40 }, { "3TiB", 3LL << 40 },
		{ "3TB", 3000000000000LL },
	};
	static const char *const bad[] = {
		"", "k", "1.5G", "1 GiB", "-1", "+1", "1Gi", "1PB", "1gigs", "GiB1",
		"99999999999999999999", "9999999999TiB",
	};
	long long b;

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		b = -1;
		assert_int_equal(dgm_parse_size(ok[i].s, &b), 0);
		if (b != ok[i].bytes)
			fail_msg("size '%s' gave %lld", ok[i].s, b);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (dgm_parse_size(bad[i], &b) != -1)
			fail_msg("size '%s' was accepted", bad[i]);
}

/* ---- suggestions --------------------------------------------------------- */

static void suggestions_pick_likely_typos(void **state)
{
	static const char *const keys[] = { "name", "repository", "tag", "allow_dirty", NULL };

	assert_int_equal(dgm_plan_edit_distance("tga", "tag"), 1);
	assert_int_equal(dgm_plan_edit_distance("", "tag"), 3);
	assert_int_equal(dgm_plan_edit_distance("kitten", "sitting"), 3);
	assert_string_equal(dgm_plan_suggest("tga", keys), "tag");
	assert_string_equal(dgm_plan_suggest("nmae", keys), "name");
	assert_string_equal(dgm_plan_suggest("Tag", keys), "tag");
	assert_string_equal(dgm_plan_suggest("allow-dirty", keys), "allow_dirty");
	assert_string_equal(dgm_plan_suggest("allowdirty", keys), "allow_dirty");
	assert_string_equal(dgm_plan_suggest("repo", keys), "repository");
	assert_null(dgm_plan_suggest("owner", keys));
	assert_null(dgm_plan_suggest("x", keys));
	assert_null(dgm_plan_suggest("", keys));
}

/* ---- environment and secrets --------------------------------------------- */

static void check_env_names_every_missing_variable(void **state)
{
	const char *text = BASE "environment:\n  required:\n    - DGM_T_URL\n    - DGM_T_UNSET\n"
			   "    - DGM_T_EMPTY\n    - DGM_T_UNSET2\n";
	dgm_error e = DGM_ERROR_INIT;
	dgm_plan p;

	assert_int_equal(parse(&p, text, &e), 0);
	assert_int_equal(dgm_plan_check_env(&p, &e), -1);
	assert_int_equal(e.code, DGM_E_PLAN);
	assert_string_equal(e.msg, NAME ":12:5: required environment variables are not set: "
			    "'DGM_T_UNSET', 'DGM_T_EMPTY', 'DGM_T_UNSET2'");
	assert_string_equal(e.hint, "export them before running dgmigrate (an empty value "
			    "counts as unset; values are never printed)");
	setenv("DGM_T_UNSET2", "x", 1);
	setenv("DGM_T_EMPTY", "y", 1);
	assert_int_equal(dgm_plan_check_env(&p, &e), -1);
	assert_string_equal(e.msg, NAME ":12:5: required environment variable 'DGM_T_UNSET' is "
			    "not set");
	setenv("DGM_T_UNSET", "z", 1);
	dgm_error_clear(&e);
	assert_int_equal(dgm_plan_check_env(&p, &e), 0);
	assert_int_equal(e.code, DGM_OK);
	unsetenv("DGM_T_UNSET");
	unsetenv("DGM_T_UNSET2");
	setenv("DGM_T_EMPTY", "", 1);
	dgm_plan_free(&p);

	/* No environment section: nothing to check. */
	assert_int_equal(parse(&p, BASE, &e), 0);
	assert_int_equal(dgm_plan_check_env(&p, &e), 0);
	dgm_plan_free(&p);
}

static void redacted(const char *s, const char *want)
{
	dgm_buf out = DGM_BUF_INIT;

	dgm_redact(s, &out);
	assert_string_equal(out.ptr, want);
	dgm_buf_free(&out);
}

static void secrets_are_registered(void **state)
{
	const char *text = BASE "environment:\n  required: [DGM_T_SECRET]\n";
	dgm_error e = DGM_ERROR_INIT;
	dgm_plan p;

	dgm_log_clear_secrets();
	assert_int_equal(parse(&p, full_plan, &e), 0);
	dgm_plan_register_secrets(&p);
	/* DGM_T_URL is a setting (its name does not look secret): only its
	 * password is masked; DGM_T_SECRET's name makes it a secret. */
	redacted("connecting to postgresql://app:s3cr3t-pw@db.example/app with topsecret-value",
		 "connecting to postgresql://app:****@db.example/app with ****");
	redacted("password s3cr3t-pw rejected", "password **** rejected");
	dgm_plan_free(&p);
	dgm_log_clear_secrets();

	/* The URL's password alone, percent-encoded: both the decoded and
	 * the written form. */
	setenv("DGM_T_URL2", "postgres://u:p%40ss-word@h:5432/db?sslmode=disable", 1);
	assert_int_equal(parse(&p, "version: 1\nrelease:\n  name: d\n  repository: a\n  tag: t\n"
			      "database:\n  url: ${DGM_T_URL2}\nsnapshot:\n  directory: b\n",
			      &e), 0);
	dgm_plan_register_secrets(&p);
	redacted("u:p%40ss-word@h p@ss-word", "u:****@h ****");
	dgm_plan_free(&p);
	dgm_log_clear_secrets();

	/* key=value conninfo, and a plan with only required variables. */
	assert_int_equal(parse(&p, "version: 1\nrelease:\n  name: d\n  repository: a\n  tag: t\n"
			      "database:\n  url: host=h password='kv secret' dbname=x\n"
			      "snapshot:\n  directory: b\n", &e), 0);
	dgm_plan_register_secrets(&p);
	redacted("password is kv secret", "password is ****");
	dgm_plan_free(&p);
	dgm_log_clear_secrets();

	assert_int_equal(parse(&p, text, &e), 0);
	dgm_plan_register_secrets(&p);
	redacted("SECRET_KEY=topsecret-value", "SECRET_KEY=****");
	dgm_plan_free(&p);
	dgm_log_clear_secrets();
	unsetenv("DGM_T_URL2");
}

/* Issue 12.1: required settings are shown; secrets are the variables of
 * environment.secret, required ones whose names look secret and URL
 * passwords; masking never mangles ordinary words. */
static void settings_are_shown_and_secrets_masked(void **state)
{
	const char *text = BASE "environment:\n"
		"  required: [DGM_T_DB, DGM_T_HOST, DGM_T_API_TOKEN, DGM_T_REDIS_URL]\n"
		"  secret: [DGM_T_DSN]\n";
	dgm_error e = DGM_ERROR_INIT;
	dgm_plan p;

	setenv("DGM_T_DB", "app", 1);
	setenv("DGM_T_HOST", "localhost", 1);
	setenv("DGM_T_API_TOKEN", "tok", 1);
	setenv("DGM_T_REDIS_URL", "redis://:redis-pw-1@cache:6379/0", 1);
	setenv("DGM_T_DSN", "https://k3y@sentry.example/1", 1);
	dgm_log_clear_secrets();
	assert_int_equal(parse(&p, text, &e), 0);
	assert_int_equal(p.secret_env.count, 1);
	assert_true(dgm_plan_is_secret_var(&p, "DGM_T_API_TOKEN"));
	assert_true(dgm_plan_is_secret_var(&p, "DGM_T_DSN"));
	assert_false(dgm_plan_is_secret_var(&p, "DGM_T_DB"));
	assert_false(dgm_plan_is_secret_var(&p, "DGM_T_REDIS_URL"));
	dgm_plan_register_secrets(&p);
	redacted("# dgmigrate apply: Start application server on localhost for app",
		 "# dgmigrate apply: Start application server on localhost for app");
	redacted("token tok, tokens, app_tok", "token ****, tokens, app_tok");
	redacted("redis://:redis-pw-1@cache:6379/0 and https://k3y@sentry.example/1",
		 "redis://:****@cache:6379/0 and ****");
	dgm_plan_free(&p);
	dgm_log_clear_secrets();
	/* the plan's file:line:column for a bad name */
	assert_int_equal(parse(&p, BASE "environment:\n  secret: [not-a-var]\n", &e), -1);
	assert_non_null(strstr(e.msg, "environment.secret"));
	dgm_plan_free(&p);
	assert_true(dgm_plan_name_looks_secret("db_password"));
	assert_true(dgm_plan_name_looks_secret("AWS_SECRET_ACCESS_KEY"));
	assert_true(dgm_plan_name_looks_secret("GCP_CREDENTIALS"));
	assert_false(dgm_plan_name_looks_secret("POSTGRES_DB"));
	unsetenv("DGM_T_DB");
	unsetenv("DGM_T_HOST");
	unsetenv("DGM_T_API_TOKEN");
	unsetenv("DGM_T_REDIS_URL");
	unsetenv("DGM_T_DSN");
}

/* ---- files ----------------------------------------------------------------- */

static void missing_file_is_a_plan_error(void **state)
{
	dgm_error e = DGM_ERROR_INIT;
	dgm_plan p;

	assert_int_equal(dgm_plan_load(&p, "/nonexistent/x.yaml", &e), -1);
	assert_int_equal(e.code, DGM_E_PLAN);
	assert_string_equal(e.msg, "cannot read plan '/nonexistent/x.yaml': No such file or "
			    "directory");
	assert_int_equal(dgm_plan_load(&p, "/", &e), -1);
	assert_string_equal(e.msg, "cannot read plan '/': Is a directory");
	assert_null(p.path);
}

/* The repository root: $ROOT (tests/run-all.sh), else the first folder
 * holding plans/example.yaml above the current one or this binary. */
static int find_root(char *root, size_t cap)
{
	char start[2][PATH_MAX] = { "", "" };
	const char *env = getenv("ROOT");
	ssize_t n;

	if (env && snprintf(root, cap, "%s", env) < (int)cap)
		return 0;
	if (!getcwd(start[0], sizeof(start[0])))
		start[0][0] = '\0';
	n = readlink("/proc/self/exe", start[1], sizeof(start[1]) - 1);
	start[1][n > 0 ? n : 0] = '\0';
	for (int s = 0; s < 2; s++) {
		char dir[PATH_MAX], probe[PATH_MAX + 32];

		strcpy(dir, start[s]);
		while (dir[0]) {
			snprintf(probe, sizeof(probe), "%s/plans/example.yaml", dir);
			if (access(probe, R_OK) == 0) {
				snprintf(root, cap, "%s", dir);
				return 0;
			}
			*strrchr(dir, '/') = '\0';
		}
	}
	return -1;
}

static void load_shipped(const char *root, const char *rel, dgm_plan *p)
{
	char path[PATH_MAX + 64];
	dgm_error e = DGM_ERROR_INIT;

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	if (dgm_plan_load(p, path, &e))
		fail_msg("%s: %s", rel, e.msg);
	if (dgm_plan_check_env(p, &e))
		fail_msg("%s: %s", rel, e.msg);
}

static void shipped_plans_load(void **state)
{
	static const char *const vars[] = {
		"DATABASE_URL", "SECRET_KEY", "JWT_SECRET_KEY", "API_BASE_URL", "FRONTEND_URL",
		"ML_MODEL_STORAGE_PATH", "EXTERNAL_DATA_SYNC_ENABLED",
	};
	static const char *const tables[] = {
		"predictive_models", "anomaly_detection_models", "anomaly_detection_results",
		"external_data_sources", "prediction_history",
	};
	char root[PATH_MAX], want[PATH_MAX + 32];
	dgm_plan p;

	if (find_root(root, sizeof(root)))
		fail_msg("cannot find plans/example.yaml (set ROOT to the repository)");
	setenv("DATABASE_URL", "postgresql://app:pw-example@localhost/app", 1);
	setenv("API_BASE_URL", "http://localhost:8000", 1);
	setenv("ML_MODEL_STORAGE_PATH", "/srv/models", 1);
	for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
		setenv(vars[i], getenv(vars[i]) ? getenv(vars[i]) : "x-value", 1);

	load_shipped(root, "plans/example.yaml", &p);
	assert_string_equal(p.release.tag, "v1.6");
	assert_int_equal(p.required_env.count, 7);
	assert_int_equal(p.postconditions.tables.count, 5);
	for (size_t i = 0; i < 5; i++)
		assert_string_equal(p.postconditions.tables.items[i], tables[i]);
	assert_int_equal(p.postconditions.indexes.count, 3);
	assert_int_equal(p.hooks.before.count, 1);
	assert_string_equal(p.hooks.before.items[0].argv.items[1], "on");
	assert_string_equal(p.hooks.after.items[0].argv.items[1], "off");
	assert_string_equal(p.health_check.url, "http://localhost:8000/api/health");
	assert_string_equal(p.model_store.path, "/srv/models");
	assert_int_equal(p.on_failure, DGM_ON_FAILURE_ROLLBACK);
	dgm_plan_free(&p);

	load_shipped(root, "plans/demo.yaml", &p);
	snprintf(want, sizeof(want), "%s/.demo/app", root);
	assert_string_equal(p.release.repository, want);
	snprintf(want, sizeof(want), "%s/.demo/backups", root);
	assert_string_equal(p.snapshot.directory, want);
	assert_string_equal(p.release.tag, "v1.6");
	assert_int_equal(p.required_env.count, 3);
	assert_int_equal(p.postconditions.tables.count, 5);
	assert_int_equal(p.postconditions.indexes.count, 3);
	assert_int_equal(p.hooks.before.count + p.hooks.after.count, 0);
	assert_null(p.health_check.url);
	assert_int_equal(p.on_failure, DGM_ON_FAILURE_ROLLBACK);
	assert_int_equal(p.lint.fail_on, 2);  /* error */
	assert_int_equal(p.lint.error_bytes, 1LL << 30);
	assert_int_equal(p.lint.ignore.count, 0);
	dgm_plan_free(&p);

	load_shipped(root, "plans/pgbackrest.yaml", &p);
	assert_int_equal(p.snapshot.engine, DGM_ENGINE_PGBACKREST);
	assert_string_equal(p.pgbackrest.stanza, "main");
	assert_int_equal(p.pgbackrest.backup, DGM_PGBR_BACKUP_INCR);
	assert_int_equal(p.pgbackrest.restore, DGM_PGBR_RESTORE_SIDE);
	assert_int_equal(p.pgbackrest.command.count, 5);
	assert_int_equal(p.pgbackrest.side_port, 5433);
	assert_int_equal(p.pgbackrest.archive_timeout_ms, 60000);
	assert_string_equal(p.pgbackrest.repo_path, "/var/lib/pgbackrest");
	snprintf(want, sizeof(want), "%s/backups/state/pgbackrest-side", root);
	assert_string_equal(p.pgbackrest.side_directory, want);
	dgm_plan_free(&p);
}

/* ---- main ------------------------------------------------------------------ */

static int set_env(void **state)
{
	setenv("DGM_T_URL", "postgresql://app:s3cr3t-pw@db.example/app", 1);
	setenv("DGM_T_MODELS", "/srv/models", 1);
	setenv("DGM_T_SECRET", "topsecret-value", 1);
	setenv("DGM_T_EMPTY", "", 1);
	unsetenv("DGM_T_UNSET");
	unsetenv("DGM_T_UNSET2");
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(messages_never_hold_a_variable_value),
		cmocka_unit_test(full_plan_maps_every_field),
		cmocka_unit_test(minimal_plan_gets_the_defaults),
		cmocka_unit_test(read_graph_is_static_unless_alembic),
		cmocka_unit_test(relative_paths_resolve_against_the_plan_folder),
		cmocka_unit_test(quotes_do_not_change_typed_values),
		cmocka_unit_test(marks_point_at_each_value),
		cmocka_unit_test(variables_expand_in_values_only),
		cmocka_unit_test(expand_handles_edges),
		cmocka_unit_test(alembic_env_and_x_keep_target_placeholders),
		cmocka_unit_test(absolute_config_through_a_symlink_lands_in_the_repository),
		cmocka_unit_test(durations_parse),
		cmocka_unit_test(sizes_parse),
		cmocka_unit_test(suggestions_pick_likely_typos),
		cmocka_unit_test(check_env_names_every_missing_variable),
		cmocka_unit_test(secrets_are_registered),
		cmocka_unit_test(settings_are_shown_and_secrets_masked),
		cmocka_unit_test(missing_file_is_a_plan_error),
		cmocka_unit_test(shipped_plans_load),
	};
	size_t nb = sizeof(broken) / sizeof(broken[0]);
	struct CMUnitTest *bt = calloc(nb, sizeof(*bt));
	int failed;

	/* One named test per broken plan, so a failure says which. */
	for (size_t i = 0; i < nb; i++) {
		bt[i].name = broken[i].name;
		bt[i].test_func = broken_plan_fails_exactly;
		bt[i].initial_state = (void *)&broken[i];
	}
	failed = _cmocka_run_group_tests("plan_errors", bt, nb, set_env, NULL);
	failed += cmocka_run_group_tests_name("plan", tests, set_env, NULL);
	free(bt);
	return failed ? 1 : 0;
}
