/* clock.c - monotonic milliseconds; timespecs in nanoseconds. */
#include <time.h>

#include "dgm/clock.h"

long dgm_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

long long dgm_timespec_ns(const struct timespec *t)
{
	return (long long)t->tv_sec * 1000000000LL + t->tv_nsec;
}
