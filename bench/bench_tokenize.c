/* bench_tokenize.c — tokenization throughput of sembed on a corpus (JSON lines of strings,
 * gzip or plain), with N threads: warm-up, then repetitions, median reported as JSON.
 * A benchmark, not a test: it checks nothing but that tokenizing succeeds. */
#include "sembed.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: bench_tokenize MODEL_DIR CORPUS.jsonl[.gz] THREADS [REPEATS]\n");
        return 2;
    }
    int threads = atoi(argv[3]);
    int repeats = argc > 4 ? atoi(argv[4]) : 5;
    gzFile f = gzopen(argv[2], "rb");
    if (!f) {
        fprintf(stderr, "cannot open %s\n", argv[2]);
        return 1;
    }
    size_t cap = 1024, n = 0, total_bytes = 0;
    char **texts = malloc(cap * sizeof *texts);
    size_t *lens = malloc(cap * sizeof *lens);
    static char line[1 << 20];
    while (gzgets(f, line, sizeof line)) {
        json_error_t e;
        json_t *j = json_loads(line, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
        if (!json_is_string(j)) continue;
        if (n == cap) {
            cap *= 2;
            texts = realloc(texts, cap * sizeof *texts);
            lens = realloc(lens, cap * sizeof *lens);
        }
        lens[n] = json_string_length(j);
        texts[n] = malloc(lens[n] + 1);
        memcpy(texts[n], json_string_value(j), lens[n] + 1);
        total_bytes += lens[n];
        n++;
        json_decref(j);
    }
    gzclose(f);
    sembed_error err = {0};
    sembed_tokenizer *tok = NULL;
    if (sembed_tokenizer_load(argv[1], NULL, &tok, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    int32_t ml = sembed_tokenizer_max_length(tok);
    int32_t *ids = malloc(sizeof *ids * (size_t)ml * n);
    int32_t *offs = malloc(sizeof *offs * 2 * (size_t)ml * n);
    sembed_tokens *outs = calloc(n, sizeof *outs);
    for (size_t i = 0; i < n; i++)
        outs[i] = (sembed_tokens){.ids = ids + i * (size_t)ml, .offsets = offs + 2 * i * (size_t)ml,
                                  .capacity = ml};
    double *times = malloc(sizeof *times * (size_t)(repeats + 1));
    long long tokens = 0;
    for (int r = -1; r < repeats; r++) { /* r = -1: warm-up */
        double t0 = now();
        if (sembed_tokenize_batch(tok, (int32_t)n, (const char *const *)texts, lens, outs, threads,
                                  &err)) {
            fprintf(stderr, "%s\n", err.msg);
            return 1;
        }
        double dt = now() - t0;
        if (r >= 0) times[r] = dt;
        if (r == -1) {
            for (size_t i = 0; i < n; i++) tokens += outs[i].n;
        }
    }
    qsort(times, (size_t)repeats, sizeof *times, cmp_double);
    double med = times[repeats / 2];
    printf("{\"tool\":\"sembed\",\"threads\":%d,\"texts\":%zu,\"bytes\":%zu,\"tokens\":%lld,"
           "\"seconds\":%.6f,\"tokens_per_s\":%.0f,\"texts_per_s\":%.0f}\n",
           threads, n, total_bytes, tokens, med, (double)tokens / med, (double)n / med);
    sembed_tokenizer_free(tok);
    return 0;
}
