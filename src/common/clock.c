/* clock.c - monotonic milliseconds. */
#include <time.h>

#include "dgm/clock.h"

long dgm_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
