# t_cli.sh - the command line itself: help, version, usage errors.

test_help_lists_every_command() {
	run_dgm --help
	expect_rc 0
	for c in validate apply rollback rehearse status history heads graph backups resume; do
		expect_out "  $c "
	done
}

test_every_command_has_help() {
	for c in validate apply rollback rehearse status history heads graph backups resume; do
		run_dgm "$c" --help
		expect_rc 0
		expect_out "usage: dgmigrate $c"
		expect_out "exit status:"
	done
}

test_version() {
	run_dgm --version
	expect_rc 0
	expect_out "dgmigrate "
}

test_unknown_command_is_usage_error() {
	run_dgm frobnicate
	expect_rc 2
	expect_err "unknown command 'frobnicate'"
	expect_err "HINT: run 'dgmigrate --help'"
}

test_unknown_option_is_usage_error() {
	run_dgm validate --frob x.yaml
	expect_rc 2
	expect_err "unknown option '--frob' for 'validate'"
}

test_missing_argument_is_usage_error() {
	run_dgm validate
	expect_rc 2
	expect_err "missing arguments for 'validate'"
	expect_err "usage: dgmigrate validate PLAN"
}

test_missing_plan_is_a_plan_error() {
	run_dgm rehearse plan.yaml
	expect_rc 2
	expect_err "plan.yaml"
}
