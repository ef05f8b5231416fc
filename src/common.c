/* common.c — error filling, assertions, allocation with fault injection, file reading. */
#include "common.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

sembed_status sembed__err(sembed_error *err, sembed_status status, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        err->status = status;
    }
    return status;
}

void sembed__assert_fail(const char *expr, const char *file, int line) {
    fprintf(stderr, "sembed: internal assertion failed: %s (%s:%d)\n", expr, file, line);
    abort();
}

const char *sembed_status_str(sembed_status status) {
    switch (status) {
    case SEMBED_OK: return "ok";
    case SEMBED_ERR_INVALID_ARG: return "invalid argument";
    case SEMBED_ERR_IO: return "i/o error";
    case SEMBED_ERR_FORMAT: return "invalid file format";
    case SEMBED_ERR_UNSUPPORTED: return "unsupported";
    case SEMBED_ERR_NOMEM: return "out of memory";
    case SEMBED_ERR_INPUT: return "invalid input";
    case SEMBED_ERR_TOO_SMALL: return "buffer too small";
    case SEMBED_ERR_TOO_LONG: return "input too long";
    case SEMBED_ERR_BACKEND: return "backend error";
    }
    return "unknown status";
}

const char *sembed_version(void) {
#define SEMBED_STR2(x) #x
#define SEMBED_STR(x) SEMBED_STR2(x)
    return SEMBED_STR(SEMBED_VERSION_MAJOR) "." SEMBED_STR(SEMBED_VERSION_MINOR) "." SEMBED_STR(
        SEMBED_VERSION_PATCH);
}

/* ---- allocation with fault injection --------------------------------------------------- */

static int64_t g_alloc_count;
static int64_t g_alloc_fail_at;
static bool g_alloc_persistent;

static bool alloc_should_fail(void) {
    if (g_alloc_fail_at <= 0) return false;
    int64_t k = __atomic_add_fetch(&g_alloc_count, 1, __ATOMIC_RELAXED);
    return g_alloc_persistent ? k >= g_alloc_fail_at : k == g_alloc_fail_at;
}

int64_t sembed__alloc_fail_at(int64_t n, bool persistent) {
    int64_t made = g_alloc_count;
    g_alloc_count = 0;
    g_alloc_fail_at = n;
    g_alloc_persistent = persistent;
    return made;
}

void *sembed__malloc(size_t n) { return alloc_should_fail() ? NULL : malloc(n ? n : 1); }
void *sembed__calloc(size_t n, size_t size) {
    return alloc_should_fail() ? NULL : calloc(n ? n : 1, size ? size : 1);
}
void *sembed__realloc(void *p, size_t n) {
    return alloc_should_fail() ? NULL : realloc(p, n ? n : 1);
}
void sembed__free(void *p) { free(p); }
char *sembed__strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = sembed__malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

/* ---- files ------------------------------------------------------------------------------ */

sembed_status sembed__read_file(const char *path, size_t max_bytes, char **data, size_t *len,
                                sembed_error *err) {
    *data = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return sembed__err(err, SEMBED_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return sembed__err(err, SEMBED_ERR_IO, "%s: not a regular file", path);
    }
    if ((uint64_t)st.st_size > max_bytes) {
        fclose(f);
        return sembed__err(err, SEMBED_ERR_FORMAT, "%s: file is %lld bytes, more than the limit of %zu",
                           path, (long long)st.st_size, max_bytes);
    }
    size_t n = (size_t)st.st_size;
    char *buf = sembed__malloc(n + 1);
    if (!buf) {
        fclose(f);
        return sembed__err(err, SEMBED_ERR_NOMEM, "%s: out of memory reading %zu bytes", path, n);
    }
    size_t got = fread(buf, 1, n, f);
    int read_err = ferror(f);
    fclose(f);
    if (got != n || read_err) {
        sembed__free(buf);
        return sembed__err(err, SEMBED_ERR_IO, "%s: short read (%zu of %zu bytes)", path, got, n);
    }
    buf[n] = 0;
    *data = buf;
    *len = n;
    return SEMBED_OK;
}

char *sembed__path_join(const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name);
    bool slash = a > 0 && dir[a - 1] != '/';
    char *p = sembed__malloc(a + slash + b + 1);
    if (!p) return NULL;
    memcpy(p, dir, a);
    if (slash) p[a] = '/';
    memcpy(p + a + slash, name, b + 1);
    return p;
}

bool sembed__file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

int sembed__n_cpus(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

static const char *const precision_names[] = {"fp32", "int8", "bf16", "fp32-strict"};

const char *sembed_precision_name(sembed_precision precision) {
    const int i = (int)precision;
    return i >= 0 && i < (int)(sizeof precision_names / sizeof *precision_names)
               ? precision_names[i]
               : NULL;
}

sembed_status sembed_precision_parse(const char *name, sembed_precision *out) {
    for (int i = 0; name && i < (int)(sizeof precision_names / sizeof *precision_names); i++)
        if (!strcmp(name, precision_names[i])) {
            *out = (sembed_precision)i;
            return SEMBED_OK;
        }
    return SEMBED_ERR_INVALID_ARG;
}
