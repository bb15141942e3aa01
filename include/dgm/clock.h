/* clock.h - monotonic milliseconds, for step timings and timeouts; a
 * timespec (a file's mtime or ctime) in nanoseconds. */
#ifndef DGM_CLOCK_H
#define DGM_CLOCK_H

#include <time.h>

long dgm_now_ms(void);
long long dgm_timespec_ns(const struct timespec *t);

#endif
