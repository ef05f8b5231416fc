/* test_cache_file.c — the on-disk record store of src/cache_file.c (the GPU's GEMM plans use
 * it): the line format, records that round-trip, replacement, damaged files read as what parses,
 * the size cap, the directory from the environment. Runs in every build (no GPU needed). */
#include "cache_file.h"
#include "common.h"
#include "testlib.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static bool parses(const char *line) {
    char key[SEMBED__CACHE_KEY_MAX];
    uint8_t val[SEMBED__CACHE_VAL_MAX];
    size_t n = 0;
    return sembed__cache_parse_line(line, strlen(line), key, val, &n);
}

static void test_parse(void) {
    char key[SEMBED__CACHE_KEY_MAX];
    uint8_t val[SEMBED__CACHE_VAL_MAX];
    size_t n = 0;
    const char *l = "gemm/H100|v1 00ff10Ab";
    CHECK(sembed__cache_parse_line(l, strlen(l), key, val, &n));
    CHECK(!strcmp(key, "gemm/H100|v1") && n == 4 && val[0] == 0 && val[1] == 0xff &&
          val[2] == 0x10 && val[3] == 0xab);
    CHECK(!parses(""));
    CHECK(!parses("key"));            /* no value */
    CHECK(!parses("key "));           /* an empty value */
    CHECK(!parses(" 00"));            /* an empty key */
    CHECK(!parses("key 0"));          /* an odd number of digits */
    CHECK(!parses("key 0g"));         /* not hex */
    CHECK(!parses("key  00"));        /* two spaces */
    CHECK(!parses("key 00 "));        /* trailing space */
    CHECK(!parses("k\xc3\xa9y 00"));  /* a key outside '!'..'~' */
    CHECK(!parses("key\t00"));
    /* the limits: a key of KEY_MAX-1 characters and VAL_MAX bytes pass, one more does not */
    char *big = malloc(SEMBED__CACHE_KEY_MAX + 2 * SEMBED__CACHE_VAL_MAX + 8);
    memset(big, 'k', SEMBED__CACHE_KEY_MAX - 1);
    big[SEMBED__CACHE_KEY_MAX - 1] = ' ';
    memset(big + SEMBED__CACHE_KEY_MAX, 'a', 2 * SEMBED__CACHE_VAL_MAX);
    big[SEMBED__CACHE_KEY_MAX + 2 * SEMBED__CACHE_VAL_MAX] = 0;
    CHECK(parses(big));
    big[SEMBED__CACHE_KEY_MAX + 2 * SEMBED__CACHE_VAL_MAX] = 'a';
    big[SEMBED__CACHE_KEY_MAX + 2 * SEMBED__CACHE_VAL_MAX + 1] = 'a';
    big[SEMBED__CACHE_KEY_MAX + 2 * SEMBED__CACHE_VAL_MAX + 2] = 0;
    CHECK(!parses(big));
    memmove(big + 1, big, SEMBED__CACHE_KEY_MAX + 8); /* a key of KEY_MAX characters */
    big[0] = 'k';
    big[SEMBED__CACHE_KEY_MAX + 3] = 0;
    CHECK(!parses(big));
    free(big);
}

static void test_store(void) {
    char *dir = t_tmpdir();
    char *path = sembed__path_join(dir, "a/b/plans.txt"); /* directories made as needed */
    uint8_t v[100], r[100];
    for (int i = 0; i < 100; i++) v[i] = (uint8_t)(i * 37 + 5);
    CHECK(!sembed__cache_get(path, "k1", r, sizeof r)); /* no file yet */
    CHECK(sembed__cache_put(path, "k1", v, sizeof v));
    memset(r, 0, sizeof r);
    CHECK(sembed__cache_get(path, "k1", r, sizeof r) && !memcmp(r, v, sizeof v));
    CHECK(!sembed__cache_get(path, "k1", r, 99));  /* the length must match */
    CHECK(!sembed__cache_get(path, "k2", r, sizeof r));
    /* a second key, then k1 replaced: one line each */
    CHECK(sembed__cache_put(path, "k2", v, 7));
    uint8_t v2[7];
    memcpy(v2, v, sizeof v2);
    v[0] ^= 1;
    CHECK(sembed__cache_put(path, "k1", v, sizeof v));
    CHECK(sembed__cache_get(path, "k1", r, sizeof r) && !memcmp(r, v, sizeof v));
    CHECK(sembed__cache_get(path, "k2", r, 7) && !memcmp(r, v2, 7));
    char *data = NULL;
    size_t len = 0;
    sembed_error err = {0};
    CHECK(sembed__read_file(path, 1 << 20, &data, &len, &err) == SEMBED_OK);
    int lines = 0;
    for (size_t i = 0; i < len; i++) lines += data[i] == '\n';
    CHECK(lines == 2 && data && !strncmp(data, "k2 ", 3));
    sembed__free(data);
    /* bad keys and lengths are refused */
    CHECK(!sembed__cache_put(path, "", v, 4));
    CHECK(!sembed__cache_put(path, "a b", v, 4));
    CHECK(!sembed__cache_put(path, "k3", v, 0));
    CHECK(!sembed__cache_put(path, "k3", v, SEMBED__CACHE_VAL_MAX + 1));
    CHECK(!sembed__cache_get(path, "a b", r, 4));

    /* a damaged file: the lines that parse count, the rest are dropped on the next write, and a
     * last line without its newline (a write cut short) is left out */
    const char damaged[] = "junk\nk4 0102\n\x01\x02\xff garbage\nk5 zz\nk6 0a0b\nk7 0c";
    CHECK(t_write_file(dir, "damaged.txt", damaged, sizeof damaged - 1));
    char *dp = sembed__path_join(dir, "damaged.txt");
    CHECK(sembed__cache_get(dp, "k4", r, 2) && r[0] == 1 && r[1] == 2);
    CHECK(sembed__cache_get(dp, "k6", r, 2) && r[0] == 10 && r[1] == 11);
    CHECK(!sembed__cache_get(dp, "k5", r, 1) && !sembed__cache_get(dp, "k7", r, 1));
    CHECK(sembed__cache_put(dp, "k8", v, 3));
    CHECK(sembed__read_file(dp, 1 << 20, &data, &len, &err) == SEMBED_OK);
    CHECK(data && !strncmp(data, "k4 0102\nk6 0a0b\nk8 ", 19) && len == 19 + 6 + 1);
    sembed__free(data);
    /* later lines win on a get */
    const char twice[] = "k 01\nk 02\n";
    CHECK(t_write_file(dir, "twice.txt", twice, sizeof twice - 1));
    char *tp = sembed__path_join(dir, "twice.txt");
    CHECK(sembed__cache_get(tp, "k", r, 1) && r[0] == 2);
    /* the cap: many records keep the file under FILE_MAX, the newest kept */
    uint8_t w[SEMBED__CACHE_VAL_MAX];
    memset(w, 0x5a, sizeof w);
    char key[32];
    const int many = SEMBED__CACHE_FILE_MAX / (2 * SEMBED__CACHE_VAL_MAX) + 20;
    bool all = true;
    for (int i = 0; i < many; i++) {
        snprintf(key, sizeof key, "many%d", i);
        all = all && sembed__cache_put(tp, key, w, sizeof w);
    }
    CHECK(all);
    struct stat st;
    CHECK(stat(tp, &st) == 0 && st.st_size <= SEMBED__CACHE_FILE_MAX && st.st_size > SEMBED__CACHE_FILE_MAX / 2);
    snprintf(key, sizeof key, "many%d", many - 1);
    CHECK(sembed__cache_get(tp, key, w, sizeof w));
    CHECK(!sembed__cache_get(tp, "many0", w, sizeof w));
    /* a path that cannot be written: a file where a directory should be */
    char *blocked = sembed__path_join(dp, "x.txt");
    CHECK(!sembed__cache_put(blocked, "k", v, 1) && !sembed__cache_get(blocked, "k", r, 1));
    /* a directory as the file */
    char *adir = sembed__path_join(dir, "a");
    CHECK(!sembed__cache_get(adir, "k", r, 1) && !sembed__cache_put(adir, "k", v, 1));
    sembed__free(adir), sembed__free(blocked), sembed__free(tp), sembed__free(dp);
    sembed__free(path);
    t_rmdir(dir);
}

static void test_dir(void) {
    setenv("SEMBED_CACHE_DIR", "/x/y", 1);
    char *d = sembed__cache_dir();
    CHECK(d && !strcmp(d, "/x/y"));
    sembed__free(d);
    setenv("SEMBED_CACHE_DIR", "off", 1);
    CHECK(sembed__cache_dir() == NULL);
    setenv("SEMBED_CACHE_DIR", "", 1);
    CHECK(sembed__cache_dir() == NULL);
    unsetenv("SEMBED_CACHE_DIR");
    setenv("XDG_CACHE_HOME", "/c", 1);
    d = sembed__cache_dir();
    CHECK(d && !strcmp(d, "/c/sembed"));
    sembed__free(d);
    setenv("XDG_CACHE_HOME", "relative", 1); /* not absolute: ignored, as the spec says */
    setenv("HOME", "/h", 1);
    d = sembed__cache_dir();
    CHECK(d && !strcmp(d, "/h/.cache/sembed"));
    sembed__free(d);
    unsetenv("XDG_CACHE_HOME");
    unsetenv("HOME");
    CHECK(sembed__cache_dir() == NULL);
}

int main(void) {
    test_parse();
    test_store();
    test_dir();
    return t_done("test_cache_file");
}
