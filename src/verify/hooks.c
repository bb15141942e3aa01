/*
 * hooks.c - the plan's commands before and after the migration
 * (maintenance mode on and off, cache flushes): argv arrays run from the
 * application's repository, never through a shell, each with a timeout.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dgm/clock.h"
#include "dgm/buf.h"
#include "dgm/log.h"
#include "dgm/run.h"
#include "dgm/verify.h"

#define TAIL_LINES 5
#define TAIL_LINE_MAX 300

/* The last non-empty lines of each stream, for the error: a failing
 * script usually says why in its last few lines. */
typedef struct hook_out {
	const char *name;
	char *lines[2][TAIL_LINES];   /* [0] stdout, [1] stderr; rings */
	size_t next[2];
	size_t n[2];
} hook_out;

static void on_line(const char *line, int fd, void *payload)
{
	hook_out *o = payload;
	int k = fd == 2;
	size_t n;

	dgm_debug("hook '%s': %s", o->name, line);
	if (!line[strspn(line, " \t\r")])
		return;
	n = strnlen(line, TAIL_LINE_MAX);
	/* cut a long line between characters, not inside a UTF-8 sequence */
	while (n && line[n] && ((unsigned char)line[n] & 0xC0) == 0x80)
		n--;
	while (n && (line[n - 1] == '\r' || line[n - 1] == ' '))
		n--;
	free(o->lines[k][o->next[k]]);
	o->lines[k][o->next[k]] = dgm_xstrndup(line, n);
	o->next[k] = (o->next[k] + 1) % TAIL_LINES;
	if (o->n[k] < TAIL_LINES)
		o->n[k]++;
}

/* stderr's last lines, or stdout's when the hook wrote nothing there. */
static void put_tail(dgm_buf *b, const hook_out *o)
{
	int k = o->n[1] ? 1 : 0;

	if (!o->n[k]) {
		dgm_buf_puts(b, "(no output)");
		return;
	}
	for (size_t i = 0; i < o->n[k]; i++) {
		size_t at = (o->next[k] + TAIL_LINES - o->n[k] + i) % TAIL_LINES;

		dgm_buf_printf(b, "%s%s", i ? " | " : "", o->lines[k][at]);
	}
}

static void hook_out_free(hook_out *o)
{
	for (int k = 0; k < 2; k++)
		for (size_t i = 0; i < TAIL_LINES; i++)
			free(o->lines[k][i]);
}

/* run.c's own messages when exec or chdir fails in the child. */
static bool exec_failed(const dgm_child *ch)
{
	return ch->exit_code == 127 && (!strncmp(ch->err_tail, "cannot run '", 12) ||
					!strncmp(ch->err_tail, "cannot change to folder '", 25));
}

/* Why the hook failed, with its last output; and the fix. */
static void describe_failure(dgm_buf *why, dgm_buf *hint, const dgm_child *ch,
			     const hook_out *o, const dgm_plan *plan)
{
	if (exec_failed(ch)) {
		dgm_buf_puts(why, ch->err_tail);
		dgm_buf_printf(hint, "hooks run from the repository '%s' without a shell: check "
			       "the command's path and that it is executable",
			       plan->release.repository);
		return;
	}
	if (ch->cancelled)
		dgm_buf_printf(why, "stopped: %s", dgm_run_interrupted ? "interrupted"
				: "the run is being cancelled");
	else if (ch->timed_out) {
		dgm_buf_printf(why, "did not finish within %ld ms and was stopped", ch->timeout_ms);
		dgm_buf_puts(hint, "raise the hook's timeout (or timeouts.hook) if it needs longer");
	} else if (ch->signal)
		dgm_buf_printf(why, "killed by signal %d (%s)", ch->signal, strsignal(ch->signal));
	else
		dgm_buf_printf(why, "exited with code %d", ch->exit_code);
	dgm_buf_puts(why, ": ");
	put_tail(why, o);
	if (!hint->len)
		dgm_buf_printf(hint, "run it by hand from '%s', or run dgmigrate with --verbose to "
			       "see all its output", plan->release.repository);
}

static void join_argv(dgm_buf *b, const dgm_strlist *argv)
{
	for (size_t i = 0; i < argv->count; i++)
		dgm_buf_printf(b, "%s%s", i ? " " : "", argv->items[i]);
}

static int run_hook(dgm_verify_result *res, const dgm_plan *plan, const dgm_plan_hook *h,
		    const char *which, dgm_error *err)
{
	hook_out o = { .name = h->name };
	dgm_child ch = { 0 };
	dgm_buf cmd = DGM_BUF_INIT, why = DGM_BUF_INIT, hint = DGM_BUF_INIT;
	char *item = dgm_xasprintf("hook %s (%s)", h->name, which);
	long start = dgm_now_ms();
	int ret = -1;

	join_argv(&cmd, &h->argv);
	dgm_info("running %s hook '%s': %s", which, h->name, cmd.ptr);
	ch.argv = (const char *const *)h->argv.items;
	ch.cwd = plan->release.repository;
	/* < 0: not given (a plan built by hand); the plan loader fills it in */
	ch.timeout_ms = h->timeout_ms >= 0 ? h->timeout_ms : plan->timeouts.hook_ms;
	ch.on_line = on_line;
	ch.payload = &o;
	if (dgm_run_status(&ch, err)) {
		dgm_verify_add(res, item, false, "%s", err ? err->msg : "cannot start it");
		dgm_error_prefix(err, "hook '%s' failed", h->name);
		goto out;
	}
	if (!ch.cancelled && !ch.timed_out && !ch.signal && ch.exit_code == 0) {
		dgm_verify_add(res, item, true, "'%s' exited 0 in %ld ms", cmd.ptr, dgm_now_ms() - start);
		ret = 0;
		goto out;
	}
	describe_failure(&why, &hint, &ch, &o, plan);
	dgm_verify_add(res, item, false, "'%s' %s", cmd.ptr, why.ptr);
	dgm_error_set(err, DGM_E_RUN, "hook '%s' failed: %s", h->name, why.ptr);
	dgm_error_hint(err, "%s", hint.ptr);
out:
	hook_out_free(&o);
	dgm_buf_free(&cmd);
	dgm_buf_free(&why);
	dgm_buf_free(&hint);
	free(item);
	return ret;
}

int dgm_verify_run_hooks(dgm_verify_result *res, const dgm_plan *plan,
			 const dgm_plan_hooks *hooks, const char *which, dgm_error *err)
{
	which = which ? which : "plan";
	for (size_t i = 0; i < hooks->count; i++) {
		const dgm_plan_hook *h = &hooks->items[i];

		if (!h->argv.count) {
			char *item = dgm_xasprintf("hook %s (%s)", h->name, which);

			dgm_verify_add(res, item, false, "no command to run");
			free(item);
			return dgm_error_set(err, DGM_E_PLAN, "hook '%s' has no command to run",
					     h->name);
		}
		if (run_hook(res, plan, h, which, err))
			return -1;
	}
	return 0;
}
