/* run.c - fork/exec an argv array, pump its pipes, time out, reap. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
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

/* In the child: never returns. */
static void child_exec(const dgm_child *c, int in_fd, int out_fd, int err_fd)
{
	setpgid(0, 0);
	/* A killed dgmigrate must not leave alembic migrating on its own
	 * after the lock (its connection) is gone: the child dies with us. */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	signal(SIGPIPE, SIG_DFL);
	dup2(in_fd, 0);
	dup2(out_fd, 1);
	dup2(err_fd, 2);
	if (c->cwd && chdir(c->cwd) != 0) {
		dprintf(2, "cannot change to folder '%s': %s\n", c->cwd, strerror(errno));
		_exit(127);
	}
	for (const char *const *u = c->env_unset; u && *u; u++)
		unsetenv(*u);
	for (const char *const *e = c->env_set; e && *e; e++) {
		const char *eq = strchr(*e, '=');

		if (eq) {
			char *name = strndup(*e, (size_t)(eq - *e));

			if (name)
				setenv(name, eq + 1, 1);
			free(name);
		}
	}
	execvp(c->argv[0], (char *const *)c->argv);
	dprintf(2, "cannot run '%s': %s\n", c->argv[0], strerror(errno));
	_exit(127);
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

int dgm_run_status(dgm_child *c, dgm_error *err)
{
	int in_pipe[2] = { -1, -1 }, out_pipe[2] = { -1, -1 }, err_pipe[2] = { -1, -1 };
	stream st[2] = { { -1, 1, DGM_BUF_INIT }, { -1, 2, DGM_BUF_INIT } };
	int status = 0, ret = -1;
	void (*old_pipe)(int);

	c->pid = -1;
	c->exit_code = -1;
	c->signal = 0;
	c->timed_out = false;
	c->cancelled = false;
	c->err_tail[0] = '\0';
	if (pipe2(out_pipe, O_CLOEXEC) || pipe2(err_pipe, O_CLOEXEC) ||
	    pipe2(in_pipe, O_CLOEXEC)) {
		dgm_error_errno(err, DGM_E_CHILD, "cannot create pipes for '%s'", c->argv[0]);
		goto out;
	}
	old_pipe = signal(SIGPIPE, SIG_IGN);
	c->pid = fork();
	if (c->pid < 0) {
		signal(SIGPIPE, old_pipe);
		dgm_error_errno(err, DGM_E_CHILD, "cannot start '%s'", c->argv[0]);
		goto out;
	}
	if (c->pid == 0)
		child_exec(c, in_pipe[0], out_pipe[1], err_pipe[1]);
	setpgid(c->pid, c->pid);
	close(in_pipe[0]);
	close(out_pipe[1]);
	close(err_pipe[1]);
	in_pipe[0] = out_pipe[1] = err_pipe[1] = -1;
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
	signal(SIGPIPE, old_pipe);
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
	}
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
