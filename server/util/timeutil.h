/*
 * timeutil.h - small time helpers shared by the modules that wait on
 * condition variables with CLOCK_MONOTONIC deadlines.
 */
#ifndef NC_UTIL_TIMEUTIL_H
#define NC_UTIL_TIMEUTIL_H

#include <time.h>

/* CLOCK_MONOTONIC now plus `ms` milliseconds (ms >= 0), normalised. */
struct timespec nc_monotonic_after_ms(long ms);

#endif
