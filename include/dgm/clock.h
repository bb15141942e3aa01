/* clock.h - monotonic milliseconds, for step timings and timeouts. */
#ifndef DGM_CLOCK_H
#define DGM_CLOCK_H

long dgm_now_ms(void);

#endif
