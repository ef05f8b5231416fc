/* testlib.c — the test harness (see testlib.h). */
#include "testlib.h"

#include <jansson.h>
#include <math.h>
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

bool t_corpus_load(const char *path, t_text **out, int32_t *n) {
    *out = NULL, *n = 0;
    t_lines *l = t_lines_open(path);
    if (!l) return false;
    int32_t cap = 1 << 15, k = 0;
    t_text *v = malloc(sizeof *v * (size_t)cap);
    const char *line;
    size_t len;
    bool ok = true;
    while (ok && (line = t_lines_next(l, &len))) {
        json_t *j = json_loadb(line, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
        ok = json_is_string(j);
        if (ok) {
            if (k == cap) v = realloc(v, sizeof *v * (size_t)(cap *= 2));
            v[k].len = json_string_length(j);
            v[k].s = malloc(v[k].len + 1);
            memcpy(v[k].s, json_string_value(j), v[k].len + 1);
            k++;
        }
        json_decref(j);
    }
    t_lines_close(l);
    if (!ok) {
        t_corpus_free(v, k);
        return false;
    }
    *out = v, *n = k;
    return true;
}

void t_corpus_free(t_text *texts, int32_t n) {
    for (int32_t i = 0; i < n && texts; i++) free(texts[i].s);
    free(texts);
}

float *t_read_f32_gz(const char *path, int64_t n) {
    gzFile f = gzopen(path, "rb");
    if (!f) return NULL;
    float *v = malloc(sizeof(float) * (size_t)n);
    int64_t got = 0;
    while (got < n) {
        int r = gzread(f, (char *)v + got * 4,
                       (unsigned)((n - got) * 4 > (1 << 30) ? (1 << 30) : (n - got) * 4));
        if (r <= 0) break;
        got += r / 4;
    }
    char extra;
    bool ok = got == n && gzread(f, &extra, 1) == 0;
    gzclose(f);
    if (!ok) free(v);
    return ok ? v : NULL;
}

double t_cosine(const float *a, const float *b, int32_t dim) {
    double dot = 0, na = 0, nb = 0;
    for (int32_t k = 0; k < dim; k++)
        dot += (double)a[k] * b[k], na += (double)a[k] * a[k], nb += (double)b[k] * b[k];
    return dot / (sqrt(na) * sqrt(nb) + 1e-30);
}
