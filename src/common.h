/* common.h — internals shared by every part of the library: error filling, assertions,
 * checked arithmetic, file reading. Not part of the public API (see include/sembed.h). */
#ifndef SEMBED_COMMON_H
#define SEMBED_COMMON_H

#include "sembed.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__GNUC__)
#define SEMBED_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define SEMBED_PRINTF(f, a)
#endif

/* Fills *err (when non-NULL) and returns `status`, so call sites read
 * `return sembed__err(err, SEMBED_ERR_FORMAT, "%s: field ...", file);`. */
sembed_status sembed__err(sembed_error *err, sembed_status status, const char *fmt, ...)
    SEMBED_PRINTF(3, 4);

/* Broken internal contracts. Stays on in release builds; never reachable from input. */
void sembed__assert_fail(const char *expr, const char *file, int line);
#define SEMBED_ASSERT(x) ((x) ? (void)0 : sembed__assert_fail(#x, __FILE__, __LINE__))

/* Checked arithmetic: return false on overflow. */
static inline bool sembed__mul_size(size_t a, size_t b, size_t *out) {
    return !__builtin_mul_overflow(a, b, out);
}
static inline bool sembed__add_size(size_t a, size_t b, size_t *out) {
    return !__builtin_add_overflow(a, b, out);
}

/* Allocation through one place, so that fault injection (tests) can make the N-th fail. */
void *sembed__malloc(size_t n);
void *sembed__calloc(size_t n, size_t size);
void *sembed__realloc(void *p, size_t n);
void sembed__free(void *p);
char *sembed__strdup(const char *s);
/* Test hook: make allocation number `n` (1-based, counted from now) fail; 0 disables. With
 * `persistent`, every allocation from the n-th on fails. Returns how many allocations were made
 * since the last call. Not thread-safe; tests only. */
int64_t sembed__alloc_fail_at(int64_t n, bool persistent);

/* Reads a whole file into a NUL-terminated buffer (*len excludes the NUL). Errors name path. */
sembed_status sembed__read_file(const char *path, size_t max_bytes, char **data, size_t *len,
                                sembed_error *err);
/* Joins dir and name with one '/' into a new string (NULL on allocation failure). */
char *sembed__path_join(const char *dir, const char *name);
bool sembed__file_exists(const char *path);

/* Number of online CPUs (at least 1). */
int sembed__n_cpus(void);

#endif
