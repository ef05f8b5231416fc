/* timing.h — the clock and the sort order that the dev/cpu timing programs share. */
#ifndef SEMBED_DEV_CPU_TIMING_H
#define SEMBED_DEV_CPU_TIMING_H

#include <time.h>

static inline double now_us(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e6 + t.tv_nsec * 1e-3;
}

/* qsort order of doubles, ascending */
static inline int cmp_double(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

#endif
