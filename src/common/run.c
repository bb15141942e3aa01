/* run.c - fork/exec an argv array, pump its pipes, time out, reap. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dgm/clock.h"
#include "dgm/log.h"
#include "dgm/run.h"

volatile sig_atomic_t dgm_run_interrupted;

static bool cancel_wanted(const dgm_child *c)
{
	return dgm_run_interrupted || (c->cancel && *c->cancel);
}

char *dgm_which(const char *name)
{
	const char *path = getenv("PATH");
	char *copy, *dir, *save = NULL, *found = NULL;

	if (!name || !*name)
		return NULL;
	if (strchr(name, '/'))
		return access(name, X_OK) == 0 ? dgm_xstrdup(name) : NULL;
	copy = dgm_xstrdup(path ? path : "/usr/local/bin:/usr/bin:/bin");
	for (dir = strtok_r(copy, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
		char *cand = dgm_xasprintf("%s/%s", *dir ? dir : ".", name);
		struct stat st;

		if (stat(cand, &st) == 0 && S_ISREG(st.st_mode) && access(cand, X_OK) == 0) {
			found = cand;
			break;
		}
		free(cand);
	}
	free(copy);
	return found;
}

/* What the child needs, made before fork(): between fork() and exec the
 * child of a threaded dgmigrate (the store archive, the alembic guard
 * and the lock sampler run in threads) may only make async-signal-safe
 * calls. A malloc() there waits forever on an allocator lock that
 * another thread held at the fork (seen under ASan, whose allocator is
 * not fork-aware), and setenv() both allocates and takes glibc's
 * environment lock. */
typedef struct exec_plan {
	char *path;                   /* argv[0] found in the child's PATH */
	char **envp;                  /* the child's whole environment */
	size_t nenv;
} exec_plan;

static void exec_plan_free(exec_plan *x)
{
	free(x->path);
	free(x->envp);
	memset(x, 0, sizeof(*x));
}

static bool env_named(const char *entry, const char *name, size_t len)
{
	return !strncmp(entry, name, len) && entry[len] == '=';
}

static bool env_dropped(const dgm_child *c, const char *entry)
{
	for (const char *const *u = c->env_unset; u && *u; u++)
		if (env_named(entry, *u, strlen(*u)))
			return true;
	for (const char *const *e = c->env_set; e && *e; e++) {
		const char *eq = strchr(*e, '=');

		if (eq && env_named(entry, *e, (size_t)(eq - *e)))
			return true;
	}
	return false;
}

/* environ without the unset and overridden names, then env_set; the
 * strings are borrowed (environ's and the caller's), only the array is
 * ours. Later entries of env_set win, as successive setenv() calls did. */
static void exec_plan_env(exec_plan *x, const dgm_child *c)
{
	extern char **environ;
	size_t n = 0;

	for (char **e = environ; e && *e; e++)
		n++;
	for (const char *const *e = c->env_set; e && *e; e++)
		n++;
	x->envp = dgm_xcalloc(n + 1, sizeof(char *));
	for (char **e = environ; e && *e; e++)
		if (!env_dropped(c, *e))
			x->envp[x->nenv++] = *e;
	for (const char *const *e = c->env_set; e && *e; e++) {
		const char *eq = strchr(*e, '=');
		bool later = false;

		if (!eq)
			continue;
		for (const char *const *f = e + 1; *f && !later; f++)
			later = env_named(*f, *e, (size_t)(eq - *e));
		if (!later)
			x->envp[x->nenv++] = (char *)*e;
	}
}

/* PATH as the child will see it (env_set may change it). */
static const char *child_path(const exec_plan *x)
{
	for (size_t i = 0; i < x->nenv; i++)
		if (env_named(x->envp[i], "PATH", 4))
			return x->envp[i] + 5;
	return "/usr/local/bin:/usr/bin:/bin";
}

/* Look argv[0] up as execvp() would. A name with a '/' is used as given
 * (relative to the child's folder). Returns the errno to report, or 0. */
static int exec_plan_path(exec_plan *x, const char *name)
{
	char *copy, *dir, *save = NULL;
	int why = ENOENT;

	if (!*name)
		return ENOENT;
	if (strchr(name, '/')) {
		x->path = dgm_xstrdup(name);
		return 0;
	}
	copy = dgm_xstrdup(child_path(x));
	for (dir = strtok_r(copy, ":", &save); dir && !x->path; dir = strtok_r(NULL, ":", &save)) {
		char *cand = dgm_xasprintf("%s/%s", *dir ? dir : ".", name);
		struct stat st;

		if (stat(cand, &st) == 0 && S_ISREG(st.st_mode)) {
			if (access(cand, X_OK) == 0) {
				x->path = cand;
				continue;
			}
			why = EACCES;
		}
		free(cand);
	}
	free(copy);
	return x->path ? 0 : why;
}

/* In the child: never returns; async-signal-safe calls only. A failure
 * before or at exec is sent to the parent as two ints (what, errno)
 * through report_fd, which exec closes (O_CLOEXEC) when it succeeds. */
enum { FAILED_CHDIR = 1, FAILED_EXEC = 2 };

static void child_exec(const dgm_child *c, const exec_plan *x, int in_fd, int out_fd, int err_fd,
		       int report_fd)
{
	int why[2];

	setpgid(0, 0);
	/* A killed dgmigrate must not leave alembic migrating on its own
	 * after the lock (its connection) is gone: the child dies with us. */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	signal(SIGPIPE, SIG_DFL);
	dup2(in_fd, 0);
	dup2(out_fd, 1);
	dup2(err_fd, 2);
	why[0] = FAILED_CHDIR;
	if (!c->cwd || chdir(c->cwd) == 0) {
		execve(x->path, (char *const *)c->argv, x->envp);
		why[0] = FAILED_EXEC;
	}
	why[1] = errno;
	if (write(report_fd, why, sizeof(why)) < 0)
		_exit(126);
	_exit(127);
}

/* After fork: 0 once the child has exec'd, else -1 with the failure in
 * c->err_tail (the child exits 127), as dgm_run reports it. */
static int child_started(dgm_child *c, int report_fd)
{
	int why[2];
	ssize_t r;

	do
		r = read(report_fd, why, sizeof(why));
	while (r < 0 && errno == EINTR);
	if (r != (ssize_t)sizeof(why))
		return 0;
	if (why[0] == FAILED_CHDIR)
		snprintf(c->err_tail, sizeof(c->err_tail), "cannot change to folder '%s': %s", c->cwd,
			 strerror(why[1]));
	else
		snprintf(c->err_tail, sizeof(c->err_tail), "cannot run '%s': %s", c->argv[0],
			 strerror(why[1]));
	return -1;
}

typedef struct stream {
	int fd;
	int which;          /* 1 stdout, 2 stderr */
	dgm_buf line;       /* partial line for on_line */
} stream;

static void keep_tail(dgm_child *c, const char *data, size_t n)
{
	size_t cap = sizeof(c->err_tail) - 1;
	size_t have = strlen(c->err_tail);

	if (n >= cap) {
		memcpy(c->err_tail, data + n - cap, cap);
		c->err_tail[cap] = '\0';
		return;
	}
	if (have + n > cap) {
		size_t drop = have + n - cap;

		memmove(c->err_tail, c->err_tail + drop, have - drop);
		have -= drop;
	}
	memcpy(c->err_tail + have, data, n);
	c->err_tail[have + n] = '\0';
}

static void deliver_lines(dgm_child *c, stream *s, bool flush)
{
	char *start, *nl;

	if (!c->on_line || !s->line.len)
		return;
	start = s->line.ptr;
	while ((nl = memchr(start, '\n', s->line.len - (size_t)(start - s->line.ptr))) != NULL) {
		*nl = '\0';
		c->on_line(start, s->which, c->payload);
		start = nl + 1;
	}
	if (flush && start < s->line.ptr + s->line.len) {
		c->on_line(start, s->which, c->payload);
		start = s->line.ptr + s->line.len;
	}
	{
		size_t rest = s->line.len - (size_t)(start - s->line.ptr);

		memmove(s->line.ptr, start, rest);
		s->line.len = rest;
		s->line.ptr[rest] = '\0';
	}
}

static void consume(dgm_child *c, stream *s, const char *data, size_t n)
{
	if (s->which == 1 && c->out)
		dgm_buf_put(c->out, data, n);
	if (s->which == 2)
		keep_tail(c, data, n);
	if (c->on_line) {
		dgm_buf_put(&s->line, data, n);
		deliver_lines(c, s, false);
	}
}

static void kill_group(pid_t pid, int sig)
{
	if (kill(-pid, sig) != 0)
		kill(pid, sig);
}

/* Pump stdin/stdout/stderr until both outputs close, honouring the
 * timeout. Returns with the child still to be reaped. */
static void pump(dgm_child *c, int in_fd, stream *st)
{
	long deadline = c->timeout_ms > 0 ? dgm_now_ms() + c->timeout_ms : 0;
	size_t in_off = 0;
	bool killed = false;

	for (;;) {
		struct pollfd p[3];
		int n = 0, in_idx = -1, idx[2] = { -1, -1 };
		int wait_ms = -1;

		for (int i = 0; i < 2; i++)
			if (st[i].fd >= 0) {
				idx[i] = n;
				p[n].fd = st[i].fd;
				p[n++].events = POLLIN;
			}
		if (in_fd >= 0) {
			in_idx = n;
			p[n].fd = in_fd;
			p[n++].events = POLLOUT;
		}
		if (idx[0] < 0 && idx[1] < 0)
			break;
		if (!killed && cancel_wanted(c)) {
			c->cancelled = true;
			kill_group(c->pid, SIGTERM);
			killed = true;
			deadline = dgm_now_ms() + 5000;
		}
		if (deadline) {
			long left = deadline - dgm_now_ms();

			if (left <= 0 && !killed) {
				c->timed_out = true;
				kill_group(c->pid, SIGTERM);
				killed = true;
				deadline = dgm_now_ms() + 5000;
				continue;
			}
			if (left <= 0 && killed) {
				kill_group(c->pid, SIGKILL);
				deadline = 0;
				continue;
			}
			wait_ms = (int)left;
		}
		/* wake up now and then to notice a cancel request */
		if (!killed && (wait_ms < 0 || wait_ms > 250))
			wait_ms = 250;
		if (poll(p, (nfds_t)n, wait_ms) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (in_idx >= 0 && (p[in_idx].revents & (POLLOUT | POLLERR | POLLHUP))) {
			ssize_t w = write(in_fd, c->in + in_off, c->in_len - in_off);

			if (w > 0)
				in_off += (size_t)w;
			if (w < 0 && errno != EINTR && errno != EAGAIN)
				in_off = c->in_len;
			if (in_off >= c->in_len) {
				close(in_fd);
				in_fd = -1;
			}
		}
		for (int i = 0; i < 2; i++) {
			char chunk[16384];
			ssize_t r;

			if (idx[i] < 0 || !(p[idx[i]].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			r = read(st[i].fd, chunk, sizeof(chunk));
			if (r < 0 && (errno == EINTR || errno == EAGAIN))
				continue;
			if (r <= 0) {
				close(st[i].fd);
				st[i].fd = -1;
				deliver_lines(c, &st[i], true);
				continue;
			}
			consume(c, &st[i], chunk, (size_t)r);
		}
	}
	if (in_fd >= 0)
		close(in_fd);
}

static void trim_tail(char *s)
{
	size_t n = strlen(s);

	while (n && (s[n - 1] == '\n' || s[n - 1] == ' ' || s[n - 1] == '\r'))
		s[--n] = '\0';
}

/* SIGPIPE is ignored while any thread's child runs (a child that quits
 * before reading its stdin must not kill dgmigrate); the disposition of
 * before the first is put back after the last (the dump of a copy-first
 * apply runs pg_dump beside alembic). */
static pthread_mutex_t pipe_lock = PTHREAD_MUTEX_INITIALIZER;
static int pipe_users;
static void (*pipe_before)(int);

static void pipe_ignore(void)
{
	pthread_mutex_lock(&pipe_lock);
	if (pipe_users++ == 0)
		pipe_before = signal(SIGPIPE, SIG_IGN);
	pthread_mutex_unlock(&pipe_lock);
}

static void pipe_restore(void)
{
	pthread_mutex_lock(&pipe_lock);
	if (--pipe_users == 0)
		signal(SIGPIPE, pipe_before);
	pthread_mutex_unlock(&pipe_lock);
}

int dgm_run_status(dgm_child *c, dgm_error *err)
{
	int in_pipe[2] = { -1, -1 }, out_pipe[2] = { -1, -1 }, err_pipe[2] = { -1, -1 };
	int report[2] = { -1, -1 };
	stream st[2] = { { -1, 1, DGM_BUF_INIT }, { -1, 2, DGM_BUF_INIT } };
	exec_plan x = { 0 };
	int status = 0, ret = -1, why;

	c->pid = -1;
	c->exit_code = -1;
	c->signal = 0;
	c->timed_out = false;
	c->cancelled = false;
	c->err_tail[0] = '\0';
	exec_plan_env(&x, c);
	if ((why = exec_plan_path(&x, c->argv[0])) != 0) {
		/* as a child that could not exec would have said */
		snprintf(c->err_tail, sizeof(c->err_tail), "cannot run '%s': %s", c->argv[0],
			 strerror(why));
		c->exit_code = 127;
		ret = 0;
		goto out;
	}
	if (pipe2(out_pipe, O_CLOEXEC) || pipe2(err_pipe, O_CLOEXEC) ||
	    pipe2(in_pipe, O_CLOEXEC) || pipe2(report, O_CLOEXEC)) {
		dgm_error_errno(err, DGM_E_CHILD, "cannot create pipes for '%s'", c->argv[0]);
		goto out;
	}
	pipe_ignore();
	c->pid = fork();
	if (c->pid < 0) {
		pipe_restore();
		dgm_error_errno(err, DGM_E_CHILD, "cannot start '%s'", c->argv[0]);
		goto out;
	}
	if (c->pid == 0)
		child_exec(c, &x, in_pipe[0], out_pipe[1], err_pipe[1], report[1]);
	setpgid(c->pid, c->pid);
	close(in_pipe[0]);
	close(out_pipe[1]);
	close(err_pipe[1]);
	close(report[1]);
	in_pipe[0] = out_pipe[1] = err_pipe[1] = report[1] = -1;
	if (child_started(c, report[0]) != 0) {
		while (waitpid(c->pid, &status, 0) < 0 && errno == EINTR)
			;
		pipe_restore();
		c->exit_code = 127;
		ret = 0;
		goto out;
	}
	if (!c->in) {
		close(in_pipe[1]);
		in_pipe[1] = -1;
	} else {
		fcntl(in_pipe[1], F_SETFL, O_NONBLOCK);
	}
	st[0].fd = out_pipe[0];
	st[1].fd = err_pipe[0];
	out_pipe[0] = err_pipe[0] = -1;
	pump(c, in_pipe[1], st);
	in_pipe[1] = -1;
	while (waitpid(c->pid, &status, 0) < 0 && errno == EINTR)
		;
	pipe_restore();
	if (WIFEXITED(status))
		c->exit_code = WEXITSTATUS(status);
	else if (WIFSIGNALED(status))
		c->signal = WTERMSIG(status);
	trim_tail(c->err_tail);
	ret = 0;
out:
	for (int i = 0; i < 2; i++) {
		if (st[i].fd >= 0)
			close(st[i].fd);
		dgm_buf_free(&st[i].line);
	}
	for (int i = 0; i < 2; i++) {
		if (in_pipe[i] >= 0)
			close(in_pipe[i]);
		if (out_pipe[i] >= 0)
			close(out_pipe[i]);
		if (err_pipe[i] >= 0)
			close(err_pipe[i]);
		if (report[i] >= 0)
			close(report[i]);
	}
	exec_plan_free(&x);
	return ret;
}

/* The end of stderr for a message: whole lines only (the kept tail may
 * start mid-line), and short enough that the message around it does
 * not cut off its last line, which usually says what went wrong. */
static const char *tail_lines(const dgm_child *c)
{
	const size_t max = DGM_ERROR_MSG_MAX / 2;
	const char *t = c->err_tail, *nl;
	size_t len = strlen(t);
	bool cut = len == sizeof(c->err_tail) - 1;

	if (len > max) {
		t += len - max;
		cut = true;
	}
	if (cut && (nl = strchr(t, '\n')) != NULL && nl[1])
		t = nl + 1;
	return *t ? t : "(no output on stderr)";
}

int dgm_run(dgm_child *c, dgm_error *err)
{
	const char *tail;

	if (dgm_run_status(c, err) != 0)
		return -1;
	tail = tail_lines(c);
	if (c->cancelled)
		return dgm_error_set(err, DGM_E_CHILD, "'%s' was stopped: %s", c->argv[0],
				     dgm_run_interrupted ? "interrupted" : "the run is being cancelled");
	if (c->timed_out)
		return dgm_error_set(err, DGM_E_CHILD,
				     "'%s' did not finish within %ld ms and was stopped: %s",
				     c->argv[0], c->timeout_ms, tail);
	if (c->signal)
		return dgm_error_set(err, DGM_E_CHILD,
				     "'%s' terminated unexpectedly by signal %d (%s): %s",
				     c->argv[0], c->signal, strsignal(c->signal), tail);
	if (c->exit_code == 127 && strstr(c->err_tail, "cannot run"))
		return dgm_error_set(err, DGM_E_CHILD, "%s", c->err_tail);
	if (c->exit_code != 0)
		return dgm_error_set(err, DGM_E_CHILD,
				     "'%s' terminated unexpectedly [%d]: %s",
				     c->argv[0], c->exit_code, tail);
	return 0;
}
