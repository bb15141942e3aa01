/* fault.c - wait at a named point for the crash tests (see fault.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dgm/fault.h"
#include "dgm/log.h"

/* Announce the point by creating the file, then wait until the test
 * removes it (or kills the process group). Only the first time: a test
 * that lets the run go on must not be stopped again by a later step. */
static void wait_for(const char *point, const char *file)
{
	static bool done;
	const struct timespec tick = { .tv_sec = 0, .tv_nsec = 10 * 1000 * 1000 };
	char pid[32];
	int fd;

	if (done)
		return;
	done = true;
	fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		dgm_warn("fault injection: cannot create '%s': %s", file, strerror(errno));
		return;
	}
	snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
	if (write(fd, pid, strlen(pid)) < 0 || fsync(fd) != 0)
		dgm_warn("fault injection: cannot write '%s': %s", file, strerror(errno));
	close(fd);
	dgm_info("fault injection: waiting at '%s' until '%s' is removed", point, file);
	while (access(file, F_OK) == 0)
		nanosleep(&tick, NULL);
}

void dgm_fault_point(const char *fmt, ...)
{
	const char *at = getenv("DGMIGRATE_FAULT_WAIT_AT");
	const char *file = getenv("DGMIGRATE_FAULT_WAIT_FILE");
	char point[128];
	va_list ap;

	if (!at || !file || !*file)
		return;
	va_start(ap, fmt);
	vsnprintf(point, sizeof(point), fmt, ap);
	va_end(ap);
	if (!strcmp(at, point))
		wait_for(point, file);
}

void dgm_fault_kill(const char *point)
{
	const char *at = getenv("DGMIGRATE_FAULT_KILL_AT");

	/* as a kill -9 at that point would */
	if (at && !strcmp(at, point))
		raise(SIGKILL);
}
