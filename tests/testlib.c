/* testlib.c — the test harness (see testlib.h). */
#include "testlib.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

int t_failures;
int t_checks;

int t_done(const char *name) {
    printf("%s: %d passed, %d failed\n", name, t_checks - t_failures, t_failures);
    return t_failures ? 1 : 0;
}

const char *t_model_dir_opt(const char *name) {
    static char buf[8][4096];
    static int slot;
    const char *root = getenv("SEMBED_MODELS");
    char *p = buf[slot++ % 8];
    if (root && *root)
        snprintf(p, 4096, "%s/%s", root, name);
    else
        snprintf(p, 4096, "%s/.cache/sembed/models/%s", getenv("HOME") ? getenv("HOME") : "/root",
                 name);
    char marker[4200];
    snprintf(marker, sizeof marker, "%s/.complete", p);
    struct stat st;
    if (stat(marker, &st) != 0) return NULL;
    return p;
}

const char *t_model_dir(const char *name) {
    const char *p = t_model_dir_opt(name);
    if (p) return p;
    const char *req = getenv("SEMBED_REQUIRE_MODELS");
    if (req && strcmp(req, "1") == 0) {
        fprintf(stderr, "model %s is not cached (run: python3 scripts/fetch_models.py %s)\n", name,
                name);
        exit(1);
    }
    printf("SKIP: model %s is not cached (python3 scripts/fetch_models.py %s)\n", name, name);
    exit(77);
}

struct t_lines {
    gzFile f;
    char *buf;
    size_t cap;
};

t_lines *t_lines_open(const char *path) {
    gzFile f = gzopen(path, "rb");
    if (!f) return NULL;
    gzbuffer(f, 1 << 20);
    t_lines *l = calloc(1, sizeof *l);
    l->f = f;
    l->cap = 1 << 16;
    l->buf = malloc(l->cap);
    return l;
}

const char *t_lines_next(t_lines *l, size_t *len) {
    size_t n = 0;
    for (;;) {
        if (n + 2 > l->cap) {
            l->cap *= 2;
            l->buf = realloc(l->buf, l->cap);
        }
        if (!gzgets(l->f, l->buf + n, (int)(l->cap - n))) {
            if (n == 0) return NULL;
            break;
        }
        n += strlen(l->buf + n);
        if (n > 0 && l->buf[n - 1] == '\n') {
            l->buf[--n] = 0;
            break;
        }
    }
    *len = n;
    return l->buf;
}

void t_lines_close(t_lines *l) {
    if (!l) return;
    gzclose(l->f);
    free(l->buf);
    free(l);
}

char *t_tmpdir(void) {
    char tmpl[] = "/tmp/sembed-test-XXXXXX";
    char *d = mkdtemp(tmpl);
    return d ? strdup(d) : NULL;
}

bool t_write_file(const char *dir, const char *name, const void *data, size_t size) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) return false;
    bool ok = fwrite(data, 1, size, f) == size;
    return fclose(f) == 0 && ok;
}

static void rm_rf(const char *path) {
    DIR *d = opendir(path);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            char sub[4096];
            snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
            rm_rf(sub);
        }
        closedir(d);
        rmdir(path);
    } else {
        unlink(path);
    }
}

void t_rmdir(char *dir) {
    if (!dir) return;
    rm_rf(dir);
    free(dir);
}

int32_t t_text_stride(void) {
    const char *s = getenv("SEMBED_TEST_TEXT_STRIDE");
    long k = s ? strtol(s, NULL, 10) : 1;
    return k >= 1 && k <= 1000 ? (int32_t)k : 1;
}
