/*
 * run.h - child processes, always from an argv array, never a shell.
 *
 * Modelled on git's pipe_command(): stdout and stderr are pumped
 * together with poll() so a chatty child cannot deadlock, the child
 * runs in its own process group so a timeout kills its children too,
 * and the child is always reaped.
 */
#ifndef DGM_RUN_H
#define DGM_RUN_H

#include <signal.h>
#include <stdbool.h>
#include <sys/types.h>

#include "dgm/buf.h"
#include "dgm/error.h"

/* Called for each complete line the child writes (without the '\n').
 * fd is 1 for stdout, 2 for stderr. */
typedef void (*dgm_line_cb)(const char *line, int fd, void *payload);

typedef struct dgm_child {
	/* in */
	const char *const *argv;      /* argv[0] is looked up in PATH */
	const char *cwd;              /* NULL: inherit */
	const char *const *env_set;   /* "NAME=value" entries, NULL-terminated */
	const char *const *env_unset; /* names to remove, NULL-terminated */
	const char *in;               /* bytes to feed to stdin, NULL: /dev/null */
	size_t in_len;
	long timeout_ms;              /* 0: no limit */
	dgm_buf *out;                 /* NULL: stdout is not kept */
	dgm_line_cb on_line;          /* optional, for streaming output */
	void *payload;
	/* When *cancel becomes non-zero (another thread failed, a signal
	 * arrived), the child's process group is stopped. NULL: only the
	 * global dgm_run_interrupted is watched. */
	const volatile sig_atomic_t *cancel;

	/* out */
	pid_t pid;
	int exit_code;                /* valid when !signaled */
	int signal;                   /* terminating signal, 0 if none */
	bool timed_out;
	bool cancelled;
	char err_tail[2048];          /* last bytes of stderr, for messages */
} dgm_child;

/* Set by dgmigrate's SIGINT/SIGTERM handler: every running child is
 * stopped and dgm_run fails with "interrupted". */
extern volatile sig_atomic_t dgm_run_interrupted;

/* Run the child to completion. Returns 0 when it ran and exited 0;
 * otherwise -1 with an error such as
 *   'pg_dump' terminated unexpectedly [1]: <tail of stderr>       */
int dgm_run(dgm_child *c, dgm_error *err);

/* Like dgm_run but a non-zero exit is not an error: returns 0 once the
 * child has been reaped, and the caller inspects exit_code / signal. */
int dgm_run_status(dgm_child *c, dgm_error *err);

/* Find an executable in PATH (or check a path with a '/'). Returns a
 * malloc'd absolute path or NULL. */
char *dgm_which(const char *name);

#endif
