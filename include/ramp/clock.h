/* Wall-clock time for progress lines, profiling and run budgets. */
#ifndef RAMP_CLOCK_H
#define RAMP_CLOCK_H

/* Seconds on a monotonic clock: only differences mean anything. */
double rc_now_s(void);

#endif
