/* test_git.c - checkout, restore and export on real repositories built by
 * fixtures/build-app-repo.sh (tags v1.5, v1.6, v1.6-broken, v1.6-leaky; detached HEAD
 * at v1.5; branch main at v1.6-broken), checked with the real `git`. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dgm/buf.h"
#include "dgm/fs.h"
#include "dgm/git.h"
#include "dgm/run.h"

/* A file v1.6 adds (and v1.5 does not have). */
#define V16_FILE "migrations/versions/b6e14d8a0f97_enable_ml_features_per_organization.py"

static char root[PATH_MAX];
static char *sandbox;
static int case_no;

/* --- helpers ----------------------------------------------------------- */

/* The repository root: $ROOT (tests/run-all.sh), else the first folder
 * holding fixtures/build-app-repo.sh above the current one. */
static int find_root(void)
{
	const char *env = getenv("ROOT");
	char dir[PATH_MAX], probe[PATH_MAX + 64];

	if (env && snprintf(root, sizeof(root), "%s", env) < (int)sizeof(root))
		return 0;
	if (!getcwd(dir, sizeof(dir)))
		return -1;
	while (dir[0]) {
		snprintf(probe, sizeof(probe), "%s/fixtures/build-app-repo.sh", dir);
		if (access(probe, R_OK) == 0) {
			snprintf(root, sizeof(root), "%s", dir);
			return 0;
		}
		*strrchr(dir, '/') = '\0';
	}
	return -1;
}

static char *join(const char *a, const char *b)
{
	return dgm_xasprintf("%s/%s", a, b);
}

/* Run argv; returns the exit code, stdout (one trailing newline cut) in out. */
static int run_argv(const char *const *argv, dgm_buf *out)
{
	dgm_child c = { .argv = argv, .out = out };
	dgm_error e = DGM_ERROR_INIT;

	if (dgm_run_status(&c, &e))
		fail_msg("cannot run '%s': %s", argv[0], e.msg);
	if (out && out->len && out->ptr[out->len - 1] == '\n')
		out->ptr[--out->len] = '\0';
	return c.signal ? 128 + c.signal : c.exit_code;
}

/* git -C dir ARGS... (NULL-terminated); exit code, stdout in out. */
static int vgit(dgm_buf *out, const char *dir, va_list ap)
{
	const char *argv[32] = { "git", "-C", dir };
	size_t n = 3;
	const char *a;

	while ((a = va_arg(ap, const char *)) != NULL && n < 31)
		argv[n++] = a;
	argv[n] = NULL;
	return run_argv(argv, out);
}

static int git_rc(const char *dir, ...)
{
	va_list ap;
	int rc;

	va_start(ap, dir);
	rc = vgit(NULL, dir, ap);
	va_end(ap);
	return rc;
}

/* Stdout of a git command that must succeed (malloc'd). */
static char *git_out(const char *dir, ...)
{
	dgm_buf out = DGM_BUF_INIT;
	va_list ap;
	int rc;

	va_start(ap, dir);
	rc = vgit(&out, dir, ap);
	va_end(ap);
	if (rc != 0)
		fail_msg("git in '%s' exited %d", dir, rc);
	dgm_buf_puts(&out, "");
	return dgm_buf_detach(&out);
}

static void assert_git(const char *dir, const char *want, ...)
{
	dgm_buf out = DGM_BUF_INIT;
	va_list ap;
	int rc;

	va_start(ap, want);
	rc = vgit(&out, dir, ap);
	va_end(ap);
	assert_int_equal(rc, 0);
	assert_string_equal(dgm_buf_cstr(&out), want);
	dgm_buf_free(&out);
}

/* A fresh folder for one test. */
static char *new_case(const char *name)
{
	char *dir = dgm_xasprintf("%s/%02d-%s", sandbox, ++case_no, name);

	assert_int_equal(mkdir(dir, 0700), 0);
	return dir;
}

/* A fresh fixture repository (detached at v1.5) in a new case folder. */
static char *new_repo(const char *name)
{
	char *cdir = new_case(name), *app = join(cdir, "app");
	char *script = join(root, "fixtures/build-app-repo.sh");
	const char *argv[] = { "sh", script, app, NULL };

	assert_int_equal(run_argv(argv, NULL), 0);
	free(script);
	free(cdir);
	return app;
}

static char *commit_of(const char *dir, const char *rev)
{
	char *spec = dgm_xasprintf("%s^{commit}", rev);
	char *id = git_out(dir, "rev-parse", "--verify", "-q", spec, NULL);

	free(spec);
	return id;
}

static bool exists(const char *dir, const char *rel)
{
	char *p = join(dir, rel);
	struct stat st;
	bool ok = lstat(p, &st) == 0;

	free(p);
	return ok;
}

static char *slurp(const char *dir, const char *rel)
{
	char *p = join(dir, rel);
	dgm_buf b = DGM_BUF_INIT;

	if (dgm_buf_read_file(&b, p, NULL))
		fail_msg("cannot read '%s'", p);
	free(p);
	dgm_buf_puts(&b, "");
	return dgm_buf_detach(&b);
}

static void read_bytes(dgm_buf *b, const char *dir, const char *rel)
{
	char *p = join(dir, rel);

	if (dgm_buf_read_file(b, p, NULL))
		fail_msg("cannot read '%s'", p);
	free(p);
}

static void put(const char *dir, const char *rel, const char *text)
{
	char *p = join(dir, rel);
	FILE *f = fopen(p, "w");

	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
	free(p);
}

/* The file dir/rel must hold what rev has at rel in repository app. */
static void assert_file_as_in(const char *app, const char *dir, const char *rel,
			      const char *rev)
{
	char *spec = dgm_xasprintf("%s:%s", rev, rel);
	char *want = git_out(app, "show", spec, NULL);
	char *got = slurp(dir, rel);

	/* git_out cut one trailing newline */
	assert_int_equal(strncmp(got, want, strlen(want)), 0);
	assert_string_equal(got + strlen(want), "\n");
	free(spec);
	free(want);
	free(got);
}

/* HEAD must be detached at rev's commit, the work tree clean. */
static void assert_detached_clean_at(const char *dir, const char *rev)
{
	char *want = commit_of(dir, rev), *head = commit_of(dir, "HEAD");

	assert_string_equal(head, want);
	assert_int_equal(git_rc(dir, "symbolic-ref", "-q", "HEAD", NULL), 1);
	assert_git(dir, "", "status", "--porcelain", NULL);
	free(want);
	free(head);
}

/* stderr into a file while fn-under-test runs: dgm_warn's output. */
static int saved_stderr = -1;

static void capture_begin(void)
{
	char *p = join(sandbox, "stderr.txt");
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	fflush(stderr);
	saved_stderr = dup(2);
	assert_true(dup2(fd, 2) == 2);
	close(fd);
	free(p);
}

static char *capture_end(void)
{
	fflush(stderr);
	dup2(saved_stderr, 2);
	close(saved_stderr);
	return slurp(sandbox, "stderr.txt");
}

/* --- checkout and restore ---------------------------------------------- */

static void checkout_tag_detaches_head_and_updates_files(void **state)
{
	char *app = new_repo("checkout");
	char *v15 = commit_of(app, "v1.5"), *v16 = commit_of(app, "v1.6");
	dgm_error e = DGM_ERROR_INIT;
	dgm_git_state prev, now;
	glob_t g;

	assert_false(exists(app, V16_FILE));
	assert_int_equal(dgm_git_checkout(&prev, app, "v1.6", &e), 0);
	assert_string_equal(prev.commit, v15);
	assert_string_equal(prev.branch, "");

	char *pattern = join(app, "migrations/versions/b6e14d8a0f97_*.py");

	assert_int_equal(glob(pattern, 0, NULL, &g), 0);
	assert_int_equal(g.gl_pathc, 1);
	globfree(&g);
	free(pattern);
	assert_file_as_in(app, app, "CHANGELOG.md", "v1.6");
	assert_detached_clean_at(app, "v1.6");

	assert_int_equal(dgm_git_state_read(&now, app, &e), 0);
	assert_string_equal(now.commit, v16);
	assert_string_equal(now.branch, "");
	free(v15);
	free(v16);
	free(app);
}

static void restore_puts_the_previous_commit_back(void **state)
{
	char *app = new_repo("restore");
	dgm_error e = DGM_ERROR_INIT;
	dgm_git_state prev;

	assert_int_equal(dgm_git_checkout(&prev, app, "v1.6", &e), 0);
	assert_true(exists(app, V16_FILE));
	assert_int_equal(dgm_git_restore_state(app, &prev, &e), 0);
	assert_false(exists(app, V16_FILE));
	assert_file_as_in(app, app, "CHANGELOG.md", "v1.5");
	assert_detached_clean_at(app, "v1.5");
	/* the index matches v1.5 exactly, not just the work tree */
	assert_git(app, "", "diff", "--cached", "--name-only", "v1.5", NULL);
	free(app);
}

static void checkout_of_the_current_commit_changes_nothing(void **state)
{
	char *app = new_repo("same");
	dgm_error e = DGM_ERROR_INIT;
	dgm_git_state prev;

	assert_int_equal(dgm_git_checkout(&prev, app, "v1.5", &e), 0);
	assert_detached_clean_at(app, "v1.5");
	assert_int_equal(dgm_git_restore_state(app, &prev, &e), 0);
	assert_detached_clean_at(app, "v1.5");
	free(app);
}

/* v1.6 changes CHANGELOG.md: a local change to it blocks the checkout. */
static void local_change_to_a_file_the_tag_changes_refuses(void **state)
{
	char *app = new_repo("dirty");
	char *head = commit_of(app, "HEAD"), *got, *want;
	dgm_buf index_before = DGM_BUF_INIT, index_after = DGM_BUF_INIT;
	dgm_error e = DGM_ERROR_INIT;
	dgm_git_state prev;

	put(app, "CHANGELOG.md", "local edit\n");
	read_bytes(&index_before, app, ".git/index");
	assert_int_equal(dgm_git_checkout(&prev, app, "v1.6", &e), -1);
	read_bytes(&index_after, app, ".git/index");
	assert_int_equal(index_after.len, index_before.len);
	assert_memory_equal(index_after.ptr, index_before.ptr, index_before.len);
	assert_int_equal(e.code, DGM_E_RUN);
	want = dgm_xasprintf("cannot check out 'v1.6' in '%s': 'CHANGELOG.md' has local changes",
			     app);
	assert_string_equal(e.msg, want);
	assert_non_null(strstr(e.hint, "commit or stash them (git status)"));
	/* nothing changed: the edit, HEAD, the other files, the index */
	got = slurp(app, "CHANGELOG.md");
	assert_string_equal(got, "local edit\n");
	free(got);
	got = commit_of(app, "HEAD");
	assert_string_equal(got, head);
	assert_false(exists(app, V16_FILE));
	assert_git(app, " M CHANGELOG.md", "status", "--porcelain", NULL);
	assert_string_equal(prev.commit, head);
	dgm_buf_free(&index_before);
	dgm_buf_free(&index_after);
	free(got);
	free(want);
	free(head);
	free(app);
}

static void staged_change_refuses_too(void **state)
{
	char *app = new_repo("staged");
	dgm_error e = DGM_ERROR_INIT;

	put(app, "app/__init__.py", "# staged\n");
	assert_int_equal(git_rc(app, "add", "app/__init__.py", NULL), 0);
	assert_int_equal(dgm_git_checkout(NULL, app, "v1.6", &e), -1);
	assert_int_equal(e.code, DGM_E_RUN);
	assert_non_null(strstr(e.msg, "'app/__init__.py' has local changes"));
	assert_git(app, "M  app/__init__.py", "status", "--porcelain", NULL);
	assert_false(exists(app, V16_FILE));
	free(app);
}

static void several_conflicts_are_counted(void **state)
{
	char *app = new_repo("several");
	dgm_error e = DGM_ERROR_INIT;

	put(app, "CHANGELOG.md", "x\n");
	put(app, "app/__init__.py", "y\n");
	assert_int_equal(dgm_git_checkout(NULL, app, "v1.6", &e), -1);
	assert_non_null(strstr(e.msg, "(and 1 more) has local changes"));
	free(app);
}

/* As with git: a change to a file the tag does not touch is carried over,
 * and said in a warning. */
static void local_change_to_an_untouched_file_is_kept(void **state)
{
	char *app = new_repo("kept");
	dgm_error e = DGM_ERROR_INIT;
	dgm_git_state prev;
	char *log, *got, *ini = slurp(app, "alembic.ini");
	char *edited = dgm_xasprintf("%s# local\n", ini);

	put(app, "alembic.ini", edited);
	capture_begin();
	assert_int_equal(dgm_git_checkout(&prev, app, "v1.6", &e), 0);
	log = capture_end();
	assert_non_null(strstr(log, "'alembic.ini' has local changes"));
	assert_true(exists(app, V16_FILE));
	got = slurp(app, "alembic.ini");
	assert_string_equal(got, edited);
	free(got);
	assert_git(app, " M alembic.ini", "status", "--porcelain", NULL);

	free(log);
	capture_begin();
	assert_int_equal(dgm_git_restore_state(app, &prev, &e), 0);
	log = capture_end();
	assert_non_null(strstr(log, "'alembic.ini' has local changes"));
	assert_false(exists(app, V16_FILE));
	got = slurp(app, "alembic.ini");
	assert_string_equal(got, edited);
	free(got);
	free(log);
	free(edited);
	free(ini);
	free(app);
}

static void untracked_file_where_the_tag_has_one_refuses(void **state)
{
	char *app = new_repo("in-the-way");
	dgm_error e = DGM_ERROR_INIT;
	char *got;

	put(app, V16_FILE, "# mine\n");
	assert_int_equal(dgm_git_checkout(NULL, app, "v1.6", &e), -1);
	assert_int_equal(e.code, DGM_E_RUN);
	assert_non_null(strstr(e.msg, "untracked '" V16_FILE "' would be overwritten"));
	got = slurp(app, V16_FILE);
	assert_string_equal(got, "# mine\n");
	free(got);
	assert_git(app, "?? " V16_FILE, "status", "--porcelain", NULL);
	assert_git(app, "", "diff", "--name-only", "HEAD", "v1.5", NULL);
	free(app);
}

static void untracked_and_ignored_files_survive(void **state)
{
	char *app = new_repo("untracked");
	dgm_error e = DGM_ERROR_INIT;
	dgm_git_state prev;
	char *got;

	put(app, "notes.txt", "keep me\n");
	put(app, ".env", "SECRET=1\n");   /* ignored by the app's .gitignore */
	put(app, "migrations/versions/zz_local_draft.py", "# draft\n");
	assert_int_equal(dgm_git_checkout(&prev, app, "v1.6", &e), 0);
	assert_true(exists(app, V16_FILE));
	assert_int_equal(dgm_git_restore_state(app, &prev, &e), 0);
	got = slurp(app, "notes.txt");
	assert_string_equal(got, "keep me\n");
	free(got);
	got = slurp(app, ".env");
	assert_string_equal(got, "SECRET=1\n");
	free(got);
	assert_true(exists(app, "migrations/versions/zz_local_draft.py"));
	assert_git(app, "?? migrations/versions/zz_local_draft.py\n?? notes.txt",
		   "status", "--porcelain", NULL);
	free(app);
}

static void restore_reattaches_the_branch(void **state)
{
	char *app = new_repo("branch");
	char *main_id = commit_of(app, "main");
	dgm_error e = DGM_ERROR_INIT;
	dgm_git_state prev, now;

	assert_int_equal(git_rc(app, "checkout", "-q", "main", NULL), 0);
	assert_int_equal(dgm_git_state_read(&now, app, &e), 0);
	assert_string_equal(now.branch, "refs/heads/main");
	assert_string_equal(now.commit, main_id);

	assert_int_equal(dgm_git_checkout(&prev, app, "v1.6", &e), 0);
	assert_string_equal(prev.branch, "refs/heads/main");
	assert_string_equal(prev.commit, main_id);
	assert_detached_clean_at(app, "v1.6");

	assert_int_equal(dgm_git_restore_state(app, &prev, &e), 0);
	assert_git(app, "refs/heads/main", "symbolic-ref", "HEAD", NULL);
	assert_git(app, "", "status", "--porcelain", NULL);
	assert_true(exists(app, "migrations/versions/4c8d2a6f9e13_create_model_deployments.py"));
	free(main_id);
	free(app);
}

static void restore_stays_detached_when_the_branch_moved(void **state)
{
	char *app = new_repo("moved");
	dgm_error e = DGM_ERROR_INIT;
	dgm_git_state prev;
	char *log;

	assert_int_equal(git_rc(app, "checkout", "-q", "main", NULL), 0);
	assert_int_equal(dgm_git_checkout(&prev, app, "v1.6", &e), 0);
	assert_int_equal(git_rc(app, "branch", "-q", "-f", "main", "v1.5", NULL), 0);
	capture_begin();
	assert_int_equal(dgm_git_restore_state(app, &prev, &e), 0);
	log = capture_end();
	assert_non_null(strstr(log, "branch 'refs/heads/main' in '"));
	assert_non_null(strstr(log, "has moved to"));
	assert_detached_clean_at(app, "v1.6-broken");
	free(log);

	/* a deleted branch: the same */
	assert_int_equal(git_rc(app, "branch", "-q", "-D", "main", NULL), 0);
	capture_begin();
	assert_int_equal(dgm_git_restore_state(app, &prev, &e), 0);
	log = capture_end();
	assert_non_null(strstr(log, "no longer exists"));
	assert_detached_clean_at(app, "v1.6-broken");
	free(log);
	free(app);
}

static void restore_of_a_bad_state_fails(void **state)
{
	char *app = new_repo("bad-state");
	dgm_error e = DGM_ERROR_INIT;
	dgm_git_state s = { "not-a-commit", "" };

	assert_int_equal(dgm_git_restore_state(app, &s, &e), -1);
	assert_int_equal(e.code, DGM_E_GIT);
	assert_string_equal(e.msg, "'not-a-commit' is not a commit id");
	memset(s.commit, 'a', GIT_OID_HEXSZ);
	assert_int_equal(dgm_git_restore_state(app, &s, &e), -1);
	assert_int_equal(e.code, DGM_E_GIT);
	assert_detached_clean_at(app, "v1.5");
	free(app);
}

/* A tag with an executable, a symlink and a new folder, made with git. */
static void add_modes_tag(const char *app)
{
	char *bin = join(app, "bin"), *run = join(app, "bin/run.sh"), *link = join(app, "latest.ini");

	assert_int_equal(mkdir(bin, 0755), 0);
	put(app, "bin/run.sh", "#!/bin/sh\necho run\n");
	assert_int_equal(chmod(run, 0755), 0);
	assert_int_equal(symlink("alembic.ini", link), 0);
	assert_int_equal(git_rc(app, "add", "bin", "latest.ini", NULL), 0);
	assert_int_equal(git_rc(app, "commit", "-q", "-m", "modes", NULL), 0);
	assert_int_equal(git_rc(app, "tag", "v-modes", NULL), 0);
	assert_int_equal(git_rc(app, "checkout", "-q", "v1.5", NULL), 0);
	assert_false(exists(app, "bin"));
	free(bin);
	free(run);
	free(link);
}

static void assert_modes(const char *dir)
{
	char *run = join(dir, "bin/run.sh"), *link = join(dir, "latest.ini"), *ini = join(dir,
											"alembic.ini");
	char target[64];
	struct stat st;
	ssize_t n;

	assert_int_equal(stat(run, &st), 0);
	assert_true(S_ISREG(st.st_mode) && (st.st_mode & 0100));
	assert_int_equal(stat(ini, &st), 0);
	assert_true((st.st_mode & 0111) == 0);
	assert_int_equal(lstat(link, &st), 0);
	assert_true(S_ISLNK(st.st_mode));
	n = readlink(link, target, sizeof(target) - 1);
	assert_int_equal(n, (ssize_t)strlen("alembic.ini"));
	target[n] = '\0';
	assert_string_equal(target, "alembic.ini");
	free(run);
	free(link);
	free(ini);
}

static void modes_and_symlinks_as_git_writes_them(void **state)
{
	char *app = new_repo("modes");
	dgm_error e = DGM_ERROR_INIT;
	dgm_git_state prev;

	add_modes_tag(app);
	assert_int_equal(dgm_git_checkout(&prev, app, "v-modes", &e), 0);
	assert_modes(app);
	assert_detached_clean_at(app, "v-modes");
	/* going back removes the files, and the folder they leave empty */
	assert_int_equal(dgm_git_restore_state(app, &prev, &e), 0);
	assert_false(exists(app, "bin"));
	assert_false(exists(app, "latest.ini"));
	assert_detached_clean_at(app, "v1.5");
	free(app);
}

static void unknown_rev_is_a_usage_error_listing_the_tags(void **state)
{
	char *app = new_repo("unknown");
	char *dest = join(app, "../export");
	dgm_error e = DGM_ERROR_INIT;
	dgm_git_state prev;

	assert_int_equal(dgm_git_checkout(&prev, app, "v9.9", &e), -1);
	assert_int_equal(e.code, DGM_E_USAGE);
	assert_non_null(strstr(e.msg, "no tag or commit 'v9.9'"));
	assert_string_equal(e.hint, "tags there: v1.5, v1.6, v1.6-broken, v1.6-leaky");
	assert_detached_clean_at(app, "v1.5");

	dgm_error_clear(&e);
	assert_int_equal(dgm_git_export(app, "v9.9", dest, &e), -1);
	assert_int_equal(e.code, DGM_E_USAGE);
	assert_false(exists(dest, ""));
	free(dest);
	free(app);
}

static void not_a_repository_is_a_git_error(void **state)
{
	char *dir = new_case("not-a-repo");
	dgm_error e = DGM_ERROR_INIT;
	dgm_git_state s;

	assert_int_equal(dgm_git_state_read(&s, dir, &e), -1);
	assert_int_equal(e.code, DGM_E_GIT);
	assert_int_equal(dgm_git_checkout(&s, dir, "v1.6", &e), -1);
	assert_int_equal(e.code, DGM_E_GIT);
	free(dir);
}

/* --- export ------------------------------------------------------------ */

static int count_files(const char *dir)
{
	const char *argv[] = { "find", dir, "!", "-type", "d", NULL };
	dgm_buf out = DGM_BUF_INIT;
	int n = 0;

	assert_int_equal(run_argv(argv, &out), 0);
	for (size_t i = 0; i < out.len; i++)
		n += out.ptr[i] == '\n';
	n += out.len > 0;
	dgm_buf_free(&out);
	return n;
}

static void export_writes_the_tree_and_leaves_the_repository_alone(void **state)
{
	char *app = new_repo("export"), *dest = join(app, "../out/v1.6");
	char *tracked = git_out(app, "ls-tree", "-r", "--name-only", "v1.6", NULL);
	dgm_buf index_before = DGM_BUF_INIT, index_after = DGM_BUF_INIT;
	dgm_error e = DGM_ERROR_INIT;
	struct stat st;
	int ntracked = 1;

	read_bytes(&index_before, app, ".git/index");
	assert_int_equal(dgm_git_export(app, "v1.6", dest, &e), 0);
	assert_int_equal(stat(dest, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0700);
	assert_file_as_in(app, dest, V16_FILE, "v1.6");
	assert_file_as_in(app, dest, "CHANGELOG.md", "v1.6");
	for (const char *p = tracked; *p; p++)
		ntracked += *p == '\n';
	assert_int_equal(count_files(dest), ntracked);
	assert_false(exists(dest, ".git"));

	/* the work tree, the index and HEAD have not moved */
	assert_false(exists(app, V16_FILE));
	assert_detached_clean_at(app, "v1.5");
	read_bytes(&index_after, app, ".git/index");
	assert_int_equal(index_after.len, index_before.len);
	assert_memory_equal(index_after.ptr, index_before.ptr, index_before.len);
	dgm_buf_free(&index_before);
	dgm_buf_free(&index_after);
	free(tracked);
	free(dest);
	free(app);
}

/* The export is the tag's content, whatever the work tree and index hold. */
static void export_ignores_local_changes(void **state)
{
	char *app = new_repo("export-dirty"), *dest = join(app, "../out"), *got;
	dgm_error e = DGM_ERROR_INIT;

	put(app, "CHANGELOG.md", "local edit\n");
	put(app, "app/__init__.py", "# staged\n");
	assert_int_equal(git_rc(app, "add", "app/__init__.py", NULL), 0);
	assert_int_equal(dgm_git_export(app, "v1.6", dest, &e), 0);
	assert_file_as_in(app, dest, "CHANGELOG.md", "v1.6");
	assert_file_as_in(app, dest, "app/__init__.py", "v1.6");
	assert_file_as_in(app, dest, "alembic.ini", "v1.6");
	got = slurp(app, "CHANGELOG.md");
	assert_string_equal(got, "local edit\n");
	free(got);
	assert_git(app, " M CHANGELOG.md\nM  app/__init__.py", "status", "--porcelain", NULL);
	free(dest);
	free(app);
}

static void export_keeps_modes_and_symlinks(void **state)
{
	char *app = new_repo("export-modes"), *dest = join(app, "../out");
	dgm_error e = DGM_ERROR_INIT;

	add_modes_tag(app);
	assert_int_equal(dgm_git_export(app, "v-modes", dest, &e), 0);
	assert_modes(dest);
	assert_false(exists(app, "bin"));
	free(dest);
	free(app);
}

static void export_needs_a_new_or_empty_folder(void **state)
{
	char *app = new_repo("export-dest"), *dest = join(app, "../dest"), *got;
	dgm_error e = DGM_ERROR_INIT;

	assert_int_equal(mkdir(dest, 0750), 0);
	assert_int_equal(dgm_git_export(app, "v1.5", dest, &e), 0);
	assert_true(exists(dest, "alembic.ini"));

	assert_int_equal(dgm_git_export(app, "v1.6", dest, &e), -1);
	assert_int_equal(e.code, DGM_E_IO);
	got = dgm_xasprintf("cannot export into '%s': the folder is not empty", dest);
	assert_string_equal(e.msg, got);
	assert_false(exists(dest, V16_FILE));
	free(got);

	got = join(dest, "alembic.ini");
	assert_int_equal(dgm_git_export(app, "v1.6", got, &e), -1);
	assert_int_equal(e.code, DGM_E_IO);
	assert_non_null(strstr(e.msg, "exists and is not a folder"));
	free(got);
	free(dest);
	free(app);
}

/* --- main -------------------------------------------------------------- */

static int setup(void **state)
{
	char tmpl[] = "/tmp/dgm-test-git.XXXXXX";

	if (find_root()) {
		fprintf(stderr, "cannot find fixtures/build-app-repo.sh (set ROOT to the repository)\n");
		return -1;
	}
	if (!mkdtemp(tmpl))
		return -1;
	sandbox = dgm_xstrdup(tmpl);
	/* the real git in these tests must not see the caller's settings */
	setenv("GIT_CONFIG_NOSYSTEM", "1", 1);
	setenv("GIT_CONFIG_GLOBAL", "/dev/null", 1);
	setenv("GIT_AUTHOR_NAME", "Test", 1);
	setenv("GIT_AUTHOR_EMAIL", "test@example.com", 1);
	setenv("GIT_COMMITTER_NAME", "Test", 1);
	setenv("GIT_COMMITTER_EMAIL", "test@example.com", 1);
	setenv("LC_ALL", "C", 1);
	umask(022);
	return 0;
}

static int teardown(void **state)
{
	if (sandbox && !getenv("DGM_TEST_KEEP"))
		dgm_fs_remove_tree(sandbox, NULL);
	free(sandbox);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(checkout_tag_detaches_head_and_updates_files),
		cmocka_unit_test(restore_puts_the_previous_commit_back),
		cmocka_unit_test(checkout_of_the_current_commit_changes_nothing),
		cmocka_unit_test(local_change_to_a_file_the_tag_changes_refuses),
		cmocka_unit_test(staged_change_refuses_too),
		cmocka_unit_test(several_conflicts_are_counted),
		cmocka_unit_test(local_change_to_an_untouched_file_is_kept),
		cmocka_unit_test(untracked_file_where_the_tag_has_one_refuses),
		cmocka_unit_test(untracked_and_ignored_files_survive),
		cmocka_unit_test(restore_reattaches_the_branch),
		cmocka_unit_test(restore_stays_detached_when_the_branch_moved),
		cmocka_unit_test(restore_of_a_bad_state_fails),
		cmocka_unit_test(modes_and_symlinks_as_git_writes_them),
		cmocka_unit_test(unknown_rev_is_a_usage_error_listing_the_tags),
		cmocka_unit_test(not_a_repository_is_a_git_error),
		cmocka_unit_test(export_writes_the_tree_and_leaves_the_repository_alone),
		cmocka_unit_test(export_ignores_local_changes),
		cmocka_unit_test(export_keeps_modes_and_symlinks),
		cmocka_unit_test(export_needs_a_new_or_empty_folder),
	};

	return cmocka_run_group_tests_name("git", tests, setup, teardown);
}
