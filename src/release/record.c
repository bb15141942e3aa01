/* record.c - what a run leaves behind: the journal (one JSON record a
 * line, appended and fsync'd before and after every step), the report
 * (JSON and Markdown, mapping each step to the seed checklist's items),
 * and a row in the database's history table. */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dgm/buf.h"
#include "dgm/fs.h"
#include "dgm/json.h"
#include "dgm/log.h"
#include "dgm/pg.h"
#include "dgm/pgbackrest.h"
#include "dgm/restore.h"
#include "internal.h"

void dgm_job_utc_now(char *buf, size_t len)
{
	struct timespec ts;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + strlen(buf), len - strlen(buf), ".%03ldZ", ts.tv_nsec / 1000000);
}

/* Append one record and make it durable before returning. Secrets are
 * redacted like every other output, value by value (dgm_json_redacted):
 * masking the serialized text would also hit its literals and escapes. */
void dgm_job_journal(dgm_job *r, const char *type, json_t *rec)
{
	char ts[40];
	char *text;
	json_t *red;
	dgm_buf line = DGM_BUF_INIT;

	dgm_job_utc_now(ts, sizeof(ts));
	json_object_set_new(rec, "seq", json_integer(++r->seq));
	json_object_set_new(rec, "ts", json_string(ts));
	json_object_set_new(rec, "run", json_string(r->id));
	json_object_set_new(rec, "type", json_string(type));
	red = dgm_json_redacted(rec);
	text = json_dumps(red, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(red);
	dgm_buf_puts(&line, text ? text : "{}");
	dgm_buf_putc(&line, '\n');
	if (r->journal_fd >= 0 &&
	    (write(r->journal_fd, line.ptr, line.len) != (ssize_t)line.len ||
	     fsync(r->journal_fd) != 0))
		dgm_warn("cannot write the journal '%s': %s", r->json_path, strerror(errno));
	free(text);
	dgm_buf_free(&line);
	json_decref(rec);
}

/* Fault injection for the crash tests: die right after the journal
 * says `where` happened (a step started, or "begin": the journal was
 * just created), as a kill -9 at that boundary would. */
static void fault_point(const char *where)
{
	const char *kill_at = getenv("DGMIGRATE_FAULT_KILL_AT");

	if (kill_at && !strcmp(kill_at, where))
		raise(SIGKILL);
}

static json_t *run_meta(const dgm_plan *plan, const char *plan_path)
{
	char host[256] = "";
	struct passwd *pw = getpwuid(getuid());

	gethostname(host, sizeof(host) - 1);
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:i}", "plan", plan_path ? plan_path : "",
			 "release", plan->release.name, "tag", plan->release.tag, "user",
			 pw ? pw->pw_name : "?", "host", host, "pid", (int)getpid());
}

int dgm_job_begin(dgm_job *r, const dgm_plan *plan, const char *command, const char *plan_path,
		  dgm_error *err)
{
	char stamp[32], *dir;
	time_t now = time(NULL);
	struct tm tm;

	memset(r, 0, sizeof(*r));
	r->plan = plan;
	r->command = command;
	r->journal_fd = -1;
	r->started_ms = dgm_now_ms();
	dgm_job_utc_now(r->started_at, sizeof(r->started_at));
	r->steps = json_array();
	gmtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
	snprintf(r->id, sizeof(r->id), "%s-%04x", stamp, (unsigned)(getpid() ^ (now << 4)) & 0xffff);
	dir = dgm_xasprintf("%s/journal", plan->state_dir);
	if (dgm_fs_mkdir_p(dir, 0700, err)) {
		free(dir);
		return -1;
	}
	r->json_path = dgm_xasprintf("%s/%s.jsonl", dir, r->id);
	r->journal_fd = open(r->json_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (r->journal_fd < 0) {
		dgm_error_errno(err, DGM_E_IO, "cannot create the journal '%s'", r->json_path);
		free(dir);
		return -1;
	}
	dgm_fs_fsync_path(dir, err);
	{
		char *log = dgm_xasprintf("%s/%s.log", dir, r->id);

		if (dgm_log_set_file(log, err))
			dgm_warn("%s", err->msg);
		free(log);
	}
	free(dir);
	dgm_job_journal(r, "begin", json_pack("{s:s, s:o}", "command", command, "meta",
				      run_meta(plan, plan_path)));
	dgm_info("run '%s' (journal '%s')", r->id, r->json_path);
	fault_point("begin");
	return 0;
}

/* The lock first, then the journal: a run that loses the lock (or waits
 * for it) leaves no journal that `resume` could take for an unfinished
 * run, and nothing is ever written to a journal without the lock. */
int dgm_job_begin_locked(dgm_job *r, const dgm_plan *plan, const char *command,
			 const char *plan_path, long wait_lock_ms, dgm_lock *held, dgm_error *err)
{
	dgm_lock lock = { NULL };
	char what[32];

	snprintf(what, sizeof(what), "%.*s", (int)strcspn(command, " "), command);
	if (held) {
		lock = *held;
		held->conn = NULL;
	} else if (dgm_restore_guard(plan, err) ||
		   dgm_lock_acquire(&lock, plan->database.url, what, wait_lock_ms, err))
		return -1;
	if (dgm_job_begin(r, plan, command, plan_path, err)) {
		dgm_lock_release(&lock);
		return -1;
	}
	r->lock = lock;
	return 0;
}

void dgm_job_step_start(dgm_job *r, const char *step)
{
	dgm_info("== %s", step);
	dgm_job_journal(r, "step", json_pack("{s:s, s:s}", "step", step, "phase", "start"));
	fault_point(step);
}

static void add_step(dgm_job *r, const char *step, const char *status, long ms,
		     const char *evidence)
{
	json_array_append_new(r->steps, json_pack("{s:s, s:s, s:I, s:s}", "step", step, "status",
						  status, "ms", (json_int_t)ms, "evidence", evidence));
}

void dgm_job_step_done(dgm_job *r, const char *step, long ms, json_t *data, const char *fmt, ...)
{
	dgm_buf ev = DGM_BUF_INIT;
	va_list ap;

	va_start(ap, fmt);
	dgm_buf_vprintf(&ev, fmt, ap);
	va_end(ap);
	dgm_info("   %s (%.1f s)", dgm_buf_cstr(&ev), (double)ms / 1000.0);
	dgm_job_journal(r, "step", json_pack("{s:s, s:s, s:I, s:s, s:o}", "step", step, "phase", "done",
				     "ms", (json_int_t)ms, "evidence", dgm_buf_cstr(&ev), "data",
				     data ? data : json_object()));
	add_step(r, step, "ok", ms, dgm_buf_cstr(&ev));
	{
		dgm_buf f = DGM_BUF_INIT;

		dgm_buf_puts(&f, "\"step\":");
		dgm_buf_json_str(&f, step);
		dgm_buf_printf(&f, ",\"status\":\"ok\",\"ms\":%ld,\"evidence\":", ms);
		dgm_buf_json_str(&f, dgm_buf_cstr(&ev));
		dgm_event("step", f.ptr);
		dgm_buf_free(&f);
	}
	dgm_buf_free(&ev);
}

void dgm_job_step_failed(dgm_job *r, const char *step, long ms, const dgm_error *e)
{
	dgm_buf f = DGM_BUF_INIT;

	dgm_job_journal(r, "step", json_pack("{s:s, s:s, s:I, s:s}", "step", step, "phase", "failed",
				     "ms", (json_int_t)ms, "error", e->msg));
	add_step(r, step, "failed", ms, e->msg);
	dgm_buf_puts(&f, "\"step\":");
	dgm_buf_json_str(&f, step);
	dgm_buf_printf(&f, ",\"status\":\"failed\",\"ms\":%ld,\"error\":", ms);
	dgm_buf_json_str(&f, e->msg);
	dgm_event("step", f.ptr);
	dgm_buf_free(&f);
}

void dgm_job_journal_end(dgm_job *r, const char *outcome, const dgm_error *e)
{
	dgm_job_journal(r, "end", json_pack("{s:s, s:s}", "outcome", outcome, "message", e ? e->msg : ""));
}

void dgm_job_free(dgm_job *r)
{
	dgm_log_set_file(NULL, NULL);
	if (r->journal_fd >= 0)
		close(r->journal_fd);
	json_decref(r->steps);
	json_decref(r->data_loss);
	free(r->json_path);
	dgm_pg_strings_free(r->revs_after);
	if (r->have_snap)
		dgm_snapshot_free(&r->snap);
	dgm_facts_free(&r->facts);
	memset(r, 0, sizeof(*r));
	r->journal_fd = -1;
}

int dgm_job_record_facts(dgm_job *r, dgm_error *err)
{
	json_t *revs = json_array();
	dgm_git_state st;

	if (dgm_git_state_read(&st, r->plan->release.repository, err)) {
		json_decref(revs);
		return -1;
	}
	for (size_t i = 0; i < r->facts.nrevs; i++)
		json_array_append_new(revs, json_string(r->facts.revs[i]));
	dgm_job_journal(r, "facts", json_pack("{s:o, s:s, s:s, s:s}", "revisions_before", revs,
				      "commit_before", st.commit, "branch_before", st.branch,
				      "tag_commit", r->facts.tag_commit));
	return 0;
}

/* Cut a torn last record (a crash in the middle of its write) before
 * appending: otherwise the next record would be glued to it, and the
 * torn line would no longer be the last one, which readers tolerate. */
static int cut_torn_tail(int fd, const char *path, dgm_error *err)
{
	char buf[4096];
	off_t end = lseek(fd, 0, SEEK_END), pos = end;

	while (pos > 0) {
		size_t n = pos < (off_t)sizeof(buf) ? (size_t)pos : sizeof(buf);
		ssize_t got = pread(fd, buf, n, pos - (off_t)n);

		if (got != (ssize_t)n)
			return dgm_error_errno(err, DGM_E_IO, "cannot read the journal '%s'", path);
		for (size_t i = n; i > 0; i--)
			if (buf[i - 1] == '\n') {
				pos = pos - (off_t)n + (off_t)i;
				goto found;
			}
		pos -= (off_t)n;
	}
found:
	if (pos == end)
		return 0;
	dgm_warn("%s: cutting a torn last record (%lld bytes) before continuing the journal",
		 path, (long long)(end - pos));
	if (ftruncate(fd, pos) != 0 || fsync(fd) != 0)
		return dgm_error_errno(err, DGM_E_IO, "cannot cut the torn record of '%s'", path);
	return 0;
}

int dgm_job_reopen(dgm_job *r, const dgm_plan *plan, const char *command, const char *path,
		   const char *id, long long seq, const char *started_at, dgm_error *err)
{
	char *log;

	memset(r, 0, sizeof(*r));
	r->plan = plan;
	r->command = command;
	r->seq = (int)seq;
	r->started_ms = dgm_now_ms();
	snprintf(r->started_at, sizeof(r->started_at), "%s", started_at);
	r->steps = json_array();
	snprintf(r->id, sizeof(r->id), "%s", id);
	r->json_path = dgm_xstrdup(path);
	r->journal_fd = open(path, O_RDWR | O_APPEND | O_CLOEXEC);
	if (r->journal_fd < 0)
		return dgm_error_errno(err, DGM_E_IO, "cannot reopen the journal '%s'", path);
	if (cut_torn_tail(r->journal_fd, path, err))
		return -1;
	log = dgm_xasprintf("%.*s.log", (int)(strlen(path) - strlen(".jsonl")), path);
	if (dgm_log_set_file(log, err))
		dgm_warn("%s", err->msg);
	free(log);
	dgm_job_journal(r, "resume", json_pack("{s:i}", "pid", (int)getpid()));
	return 0;
}
