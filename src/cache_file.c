/* cache_file.c — see cache_file.h. */
#include "cache_file.h"

#include "common.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

char *sembed__cache_dir(void) {
    const char *e = getenv("SEMBED_CACHE_DIR");
    if (e) return *e && strcmp(e, "off") != 0 ? sembed__strdup(e) : NULL;
    e = getenv("XDG_CACHE_HOME");
    if (e && *e == '/') return sembed__path_join(e, "sembed");
    e = getenv("HOME");
    if (e && *e == '/') return sembed__path_join(e, ".cache/sembed");
    return NULL;
}

static int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static bool key_char(char c) { return c >= '!' && c <= '~'; }

static bool key_ok(const char *key) {
    const size_t n = strlen(key);
    if (n < 1 || n >= SEMBED__CACHE_KEY_MAX) return false;
    for (size_t i = 0; i < n; i++)
        if (!key_char(key[i])) return false;
    return true;
}

bool sembed__cache_parse_line(const char *line, size_t n, char *key, uint8_t *val,
                              size_t *val_len) {
    size_t k = 0;
    while (k < n && key_char(line[k])) k++;
    if (k < 1 || k >= SEMBED__CACHE_KEY_MAX || k >= n || line[k] != ' ') return false;
    const char *h = line + k + 1;
    const size_t nh = n - k - 1;
    if (nh < 2 || nh % 2 != 0 || nh / 2 > SEMBED__CACHE_VAL_MAX) return false;
    for (size_t i = 0; i < nh; i++)
        if (hex_digit(h[i]) < 0) return false;
    for (size_t i = 0; i < nh / 2; i++)
        val[i] = (uint8_t)(hex_digit(h[2 * i]) << 4 | hex_digit(h[2 * i + 1]));
    memcpy(key, line, k);
    key[k] = 0;
    *val_len = nh / 2;
    return true;
}

/* The file's first FILE_MAX bytes (NUL-terminated), or NULL. */
static char *read_all(const char *path, size_t *len) {
    char *data = NULL;
    sembed_error err = {0};
    if (sembed__read_file(path, SEMBED__CACHE_FILE_MAX, &data, len, &err) != SEMBED_OK) return NULL;
    return data;
}

/* The next line of data from *at that parses: its key and record, and where the line is (*line,
 * *line_n bytes with its '\n'). False at the end. A last line without its '\n' (a write cut
 * short) is left out. */
static bool next_record(const char *data, size_t len, size_t *at, char *key, uint8_t *val,
                        size_t *val_len, size_t *line, size_t *line_n) {
    while (*at < len) {
        const char *nl = memchr(data + *at, '\n', len - *at);
        if (!nl) return false;
        const size_t start = *at, n = (size_t)(nl - (data + start));
        *at = start + n + 1;
        if (sembed__cache_parse_line(data + start, n, key, val, val_len)) {
            *line = start, *line_n = n + 1;
            return true;
        }
    }
    return false;
}

bool sembed__cache_get(const char *path, const char *key, void *val, size_t len) {
    if (!path || !key_ok(key) || len < 1 || len > SEMBED__CACHE_VAL_MAX) return false;
    size_t n = 0;
    char *data = read_all(path, &n);
    if (!data) return false;
    char k[SEMBED__CACHE_KEY_MAX];
    uint8_t v[SEMBED__CACHE_VAL_MAX], got[SEMBED__CACHE_VAL_MAX];
    size_t at = 0, vl = 0, lo = 0, ln = 0;
    bool found = false;
    while (next_record(data, n, &at, k, v, &vl, &lo, &ln))
        if (strcmp(k, key) == 0 && (found = vl == len)) memcpy(got, v, len); /* the last wins */
    sembed__free(data);
    if (found) memcpy(val, got, len);
    return found;
}

/* mkdir -p of the directory part of path */
static bool make_parents(const char *path) {
    char *p = sembed__strdup(path);
    if (!p) return false;
    bool ok = true;
    for (char *s = p + 1; *s && ok; s++) {
        if (*s != '/') continue;
        *s = 0;
        ok = mkdir(p, 0755) == 0 || errno == EEXIST;
        *s = '/';
    }
    sembed__free(p);
    return ok;
}

bool sembed__cache_put(const char *path, const char *key, const void *val, size_t len) {
    if (!path || !key_ok(key) || len < 1 || len > SEMBED__CACHE_VAL_MAX) return false;
    if (!make_parents(path)) return false;
    /* the old lines that parse, less key's: their offsets and lengths */
    size_t n_old = 0, n_keep = 0, cap = 0;
    char *old = read_all(path, &n_old);
    size_t (*span)[2] = NULL;
    bool oom = false;
    if (old) {
        char k[SEMBED__CACHE_KEY_MAX];
        uint8_t v[SEMBED__CACHE_VAL_MAX];
        size_t at = 0, vl = 0, lo = 0, ln = 0;
        while (!oom && next_record(old, n_old, &at, k, v, &vl, &lo, &ln)) {
            if (strcmp(k, key) == 0) continue;
            if (n_keep == cap) {
                cap = cap ? 2 * cap : 64;
                size_t (*sp)[2] = sembed__realloc(span, cap * sizeof *sp);
                if (!(oom = sp == NULL)) span = sp;
            }
            if (!oom) span[n_keep][0] = lo, span[n_keep++][1] = ln;
        }
    }
    /* the new line */
    const size_t kl = strlen(key), nl = kl + 1 + 2 * len + 1;
    char *line = sembed__malloc(nl + 1);
    static const char hex[] = "0123456789abcdef";
    bool ok = line && !oom;
    if (ok) {
        memcpy(line, key, kl);
        line[kl] = ' ';
        for (size_t i = 0; i < len; i++) {
            const uint8_t b = ((const uint8_t *)val)[i];
            line[kl + 1 + 2 * i] = hex[b >> 4];
            line[kl + 2 + 2 * i] = hex[b & 15];
        }
        line[nl - 1] = '\n';
        line[nl] = 0;
    }
    /* the oldest lines go first where the whole would pass FILE_MAX */
    size_t first = 0, total = nl;
    for (size_t i = 0; i < n_keep; i++) total += span[i][1];
    while (first < n_keep && total > SEMBED__CACHE_FILE_MAX) total -= span[first++][1];
    char *tmp = NULL;
    if (ok) {
        static atomic_uint seq;
        const size_t tl = strlen(path) + 48;
        tmp = sembed__malloc(tl);
        ok = tmp != NULL;
        if (ok)
            snprintf(tmp, tl, "%s.tmp.%ld.%u", path, (long)getpid(), atomic_fetch_add(&seq, 1));
    }
    FILE *f = ok ? fopen(tmp, "wb") : NULL;
    if (ok && f) {
        for (size_t i = first; i < n_keep && ok; i++)
            ok = fwrite(old + span[i][0], 1, span[i][1], f) == span[i][1];
        ok = ok && fwrite(line, 1, nl, f) == nl;
        ok = fclose(f) == 0 && ok;
        ok = ok && rename(tmp, path) == 0;
        if (!ok) remove(tmp);
    } else {
        ok = false;
    }
    sembed__free(tmp);
    sembed__free(line);
    sembed__free(span);
    sembed__free(old);
    return ok;
}
