/* fuzz_cache_file.c — libFuzzer target for the cache file's reader (src/cache_file.c): the fuzz
 * bytes are the file. Every line that parses must give back, through a get, a record of the
 * length it holds; a put then rewrites the file from what parses. */
#include "cache_file.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char key[SEMBED__CACHE_KEY_MAX];
    uint8_t val[SEMBED__CACHE_VAL_MAX], got[SEMBED__CACHE_VAL_MAX];
    size_t n = 0;
    /* each line by itself */
    size_t at = 0;
    while (at < size) {
        const uint8_t *nl = memchr(data + at, '\n', size - at);
        const size_t len = nl ? (size_t)(nl - (data + at)) : size - at;
        if (sembed__cache_parse_line((const char *)data + at, len, key, val, &n)) {
            if (n < 1 || n > SEMBED__CACHE_VAL_MAX || strlen(key) < 1) __builtin_trap();
        }
        at += len + 1;
    }
    /* the whole as a file */
    char path[64];
    snprintf(path, sizeof path, "/tmp/sembed-fuzz-cache-%ld.txt", (long)getpid());
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    const bool wrote = fwrite(data, 1, size, f) == size;
    if (fclose(f) != 0 || !wrote) return 0;
    (void)sembed__cache_get(path, "gemm/k", got, 8);
    const uint8_t rec[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    if (sembed__cache_put(path, "gemm/k", rec, sizeof rec) &&
        (!sembed__cache_get(path, "gemm/k", got, sizeof rec) || memcmp(got, rec, sizeof rec) != 0))
        __builtin_trap();
    remove(path);
    return 0;
}
