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

# make install puts the binary, dgmigrate(1) and the bash completion under
# DESTDIR/PREFIX; make uninstall takes them away again.
test_make_install_and_uninstall() {
	local dest=$PWD/dest
	make -s -C "$ROOT" BUILD="$BUILD" DESTDIR="$dest" PREFIX=/opt/dgm install >make.log 2>&1 ||
		fail "make install failed: $(tail -5 make.log)"
	[[ -x $dest/opt/dgm/bin/dgmigrate ]] || fail "no binary installed"
	[[ -f $dest/opt/dgm/share/man/man1/dgmigrate.1 ]] || fail "no man page installed"
	[[ -f $dest/opt/dgm/share/bash-completion/completions/dgmigrate ]] || fail "no completion installed"
	"$dest/opt/dgm/bin/dgmigrate" --version | grep -q '^dgmigrate ' || fail "installed binary does not run"
	make -s -C "$ROOT" BUILD="$BUILD" DESTDIR="$dest" PREFIX=/opt/dgm uninstall >make.log 2>&1 ||
		fail "make uninstall failed: $(tail -5 make.log)"
	[[ -z $(find "$dest" -type f) ]] || fail "left behind: $(find "$dest" -type f)"
}

# The man page renders, and names each command's options as --help does.
test_man_page_agrees_with_help() {
	local man=$ROOT/$BUILD/doc/dgmigrate.1
	command -v groff >/dev/null || { echo "groff missing: checking the roff source only"; }
	for c in validate apply rollback rehearse status history heads graph backups resume; do
		run_dgm "$c" --help
		for o in $(grep -oE -- '^  (-[a-z], |    )--[a-z-]+' <<<"$out" | grep -o -- '--[a-z-]*'); do
			grep -qF -- "\\fB$(sed 's/-/\\-/g' <<<"$o")\\fR" "$man" || fail "man page lacks $o of $c"
		done
	done
	if command -v groff >/dev/null; then
		groff -man -Tutf8 -ww "$man" >man.txt 2>man.err || fail "groff failed: $(cat man.err)"
		[[ ! -s man.err ]] || fail "groff warns: $(head -5 man.err)"
	fi
}

# The completion offers commands, a command's options, and plan files.
test_bash_completion_completes() {
	local comp=$ROOT/$BUILD/doc/dgmigrate.bash
	touch release.yaml
	got=$(bash -c 'source "$1"; COMP_WORDS=(dgmigrate rol); COMP_CWORD=1; _dgmigrate; echo "${COMPREPLY[*]}"' _ "$comp")
	[[ $got == rollback ]] || fail "command completion: '$got'"
	got=$(bash -c 'source "$1"; COMP_WORDS=(dgmigrate rollback --acc); COMP_CWORD=2; _dgmigrate; echo "${COMPREPLY[*]}"' _ "$comp")
	[[ $got == --accept-data-loss ]] || fail "option completion: '$got'"
	got=$(bash -c 'source "$1"; COMP_WORDS=(dgmigrate apply rel); COMP_CWORD=2; _dgmigrate; echo "${COMPREPLY[*]}"' _ "$comp")
	[[ $got == release.yaml ]] || fail "plan completion: '$got'"
}
