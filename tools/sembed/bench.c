/* bench.c — `sembed bench`: CPU throughput for batches of real texts (the `batches` workload of
 * BENCH.md), optionally beside sentence-transformers run by bench/peer_st.py in the same run.
 * A benchmark: it reports speed and checks nothing. */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_SIZES 16

static void help(FILE *f) {
    fprintf(f,
            "usage: sembed bench -m DIR [options]\n"
            "\n"
            "Times sembed_encode on batches of texts from a corpus (JSON lines of strings, gzip\n"
            "or plain): for each batch size, a warm-up, then consecutive batches for at least\n"
            "--seconds each; prints ms per batch (median, p99) and texts/s, and writes JSON.\n"
            "\n"
            "  -m, --model DIR       model folder\n"
            "  -c, --corpus FILE     texts (default bench/corpus/mixed.jsonl.gz)\n"
            "  -b, --batches LIST    batch sizes (default 1,10,50,100)\n"
            "  -t, --threads N       threads (default 2)\n"
            "  -s, --seconds S       time per batch size (default 3)\n"
            "      --peer            run sentence-transformers (bench/peer_st.py, torch, same\n"
            "                        threads and texts) in the same run and print the ratio\n"
            "  -o, --output FILE     write the results as JSON (default bench/results/cpu.json)\n");
}

static double mono(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Reads a gzip or plain JSON-lines corpus through `gzip -cdf` (no zlib in the tool). */
static char **read_corpus(const char *path, int32_t *n) {
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "gzip -cdf -- '%s'", path);
    if (strchr(path, '\'')) return NULL;
    FILE *f = popen(cmd, "r");
    if (!f) return NULL;
    cli_lines r = {.f = f};
    int32_t cap = 1024;
    char **v = malloc(sizeof *v * (size_t)cap);
    *n = 0;
    char *line;
    size_t len;
    while (v && cli_next_line(&r, &line, &len)) {
        char *t;
        size_t tl;
        if (!cli_json_text(line, len, &t, &tl)) continue;
        if (*n == cap) {
            char **w = realloc(v, sizeof *v * (size_t)(cap *= 2));
            if (!w) break;
            v = w;
        }
        v[(*n)++] = t;
    }
    cli_lines_free(&r);
    pclose(f);
    return v;
}

typedef struct row {
    int32_t batch;
    double ms_p50, ms_p99, texts_per_s;
    int64_t tokens;
} row;

int cli_bench(int argc, char **argv) {
    static const struct option opts[] = {
        {"model", required_argument, NULL, 'm'},  {"corpus", required_argument, NULL, 'c'},
        {"batches", required_argument, NULL, 'b'}, {"threads", required_argument, NULL, 't'},
        {"seconds", required_argument, NULL, 's'}, {"peer", no_argument, NULL, 'P'},
        {"output", required_argument, NULL, 'o'},  {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    const char *model_dir = NULL, *corpus = "bench/corpus/mixed.jsonl.gz";
    const char *output = "bench/results/cpu.json";
    const char *batches = "1,10,50,100";
    int threads = 2;
    double seconds = 3;
    bool peer = false;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:c:b:t:s:o:h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model_dir = optarg; break;
        case 'c': corpus = optarg; break;
        case 'b': batches = optarg; break;
        case 't': threads = atoi(optarg); break;
        case 's': seconds = atof(optarg); break;
        case 'P': peer = true; break;
        case 'o': output = optarg; break;
        case 'h': help(stdout); return 0;
        default: help(stderr); return 2;
        }
    }
    if (!model_dir || threads < 1 || threads > 1024 || !(seconds > 0 && seconds < 3600)) {
        fprintf(stderr, "sembed bench: -m DIR is required; --threads in [1, 1024]; --seconds > 0\n");
        return 2;
    }
    int32_t sizes[MAX_SIZES], n_sizes = 0;
    for (const char *p = batches; *p && n_sizes < MAX_SIZES;) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || v < 1 || v > 100000) {
            fprintf(stderr, "sembed bench: bad --batches '%s'\n", batches);
            return 2;
        }
        sizes[n_sizes++] = (int32_t)v;
        p = *end == ',' ? end + 1 : end;
    }
    int32_t n_texts = 0;
    char **texts = read_corpus(corpus, &n_texts);
    if (!texts || n_texts == 0) {
        fprintf(stderr, "sembed bench: cannot read texts from %s\n", corpus);
        return 1;
    }
    sembed_error err = {0};
    sembed_model *model = NULL;
    sembed_ctx *ctx = NULL;
    sembed_ctx_params cp = sembed_ctx_default_params();
    cp.n_threads = threads;
    if (sembed_model_load(model_dir, NULL, &model, &err) ||
        sembed_ctx_new(model, &cp, &ctx, &err)) {
        fprintf(stderr, "sembed bench: %s\n", err.msg);
        return 1;
    }
    int32_t dim = sembed_model_dim(model);
    int32_t max_b = 0;
    for (int i = 0; i < n_sizes; i++) max_b = sizes[i] > max_b ? sizes[i] : max_b;
    float *out = malloc(sizeof *out * (size_t)max_b * (size_t)dim);
    sembed_encode_info *info = malloc(sizeof *info * (size_t)max_b);
    double *times = malloc(sizeof *times * 100000);
    row rows[MAX_SIZES];
    for (int si = 0; si < n_sizes; si++) {
        int32_t b = sizes[si];
        int32_t pos = 0, runs = 0;
        int64_t tokens = 0, texts_done = 0;
        double total = 0;
        for (int warm = 0; warm < 2; warm++) { /* warm-up: caches, pages, threads */
            int32_t nb = b < n_texts ? b : n_texts;
            if (sembed_encode(ctx, nb, (const char *const *)texts, NULL, out, (int64_t)nb * dim, info, &err)) {
                fprintf(stderr, "sembed bench: %s\n", err.msg);
                return 1;
            }
        }
        double start = mono();
        while ((mono() - start < seconds || runs < 5) && runs < 100000) {
            if (pos + b > n_texts) pos = 0;
            int32_t nb = b < n_texts ? b : n_texts;
            double t0 = mono();
            if (sembed_encode(ctx, nb, (const char *const *)(texts + pos), NULL, out, (int64_t)nb * dim, info, &err)) {
                fprintf(stderr, "sembed bench: %s\n", err.msg);
                return 1;
            }
            double dt = mono() - t0;
            times[runs++] = dt;
            total += dt;
            for (int32_t i = 0; i < nb; i++) tokens += info[i].n_tokens;
            texts_done += nb;
            pos += nb;
        }
        qsort(times, (size_t)runs, sizeof *times, cmp_double);
        rows[si] = (row){.batch = b,
                         .ms_p50 = 1e3 * times[runs / 2],
                         .ms_p99 = 1e3 * times[(int)((runs - 1) * 0.99)],
                         .texts_per_s = (double)texts_done / total,
                         .tokens = tokens};
    }
    /* the peer, in the same run, on the same texts and threads */
    double peer_ms[MAX_SIZES] = {0}, peer_tps[MAX_SIZES] = {0};
    char peer_version[128] = "";
    if (peer) {
        char cmd[8192];
        snprintf(cmd, sizeof cmd,
                 "python3 bench/peer_st.py --model '%s' --corpus '%s' --batches '%s' --threads %d --seconds %g",
                 model_dir, corpus, batches, threads, seconds);
        FILE *p = popen(cmd, "r");
        cli_lines r = {.f = p};
        char *line;
        size_t len;
        while (p && cli_next_line(&r, &line, &len)) {
            int b;
            double ms, tps;
            if (sscanf(line, "batch %d ms %lf texts_per_s %lf", &b, &ms, &tps) == 3) {
                for (int i = 0; i < n_sizes; i++)
                    if (sizes[i] == b) {
                        peer_ms[i] = ms;
                        peer_tps[i] = tps;
                    }
            } else if (!strncmp(line, "version ", 8)) {
                snprintf(peer_version, sizeof peer_version, "%s", line + 8);
            }
        }
        cli_lines_free(&r);
        if (!p || pclose(p) != 0) fprintf(stderr, "sembed bench: the sentence-transformers peer failed\n");
    }
    char cpu[256] = "unknown CPU";
    FILE *ci = fopen("/proc/cpuinfo", "r");
    if (ci) {
        char l[512];
        while (fgets(l, sizeof l, ci))
            if (!strncmp(l, "model name", 10) && strchr(l, ':')) {
                snprintf(cpu, sizeof cpu, "%s", strchr(l, ':') + 2);
                cpu[strcspn(cpu, "\n")] = 0;
                break;
            }
        fclose(ci);
    }
    printf("sembed bench: %s, %d threads, %s (%d texts), %s\n", model_dir, threads, corpus, n_texts, cpu);
    printf("%7s %12s %12s %12s", "batch", "ms p50", "ms p99", "texts/s");
    if (peer) printf(" %14s %14s %8s", "st ms p50", "st texts/s", "speedup");
    printf("\n");
    for (int i = 0; i < n_sizes; i++) {
        printf("%7d %12.2f %12.2f %12.0f", rows[i].batch, rows[i].ms_p50, rows[i].ms_p99, rows[i].texts_per_s);
        if (peer && peer_tps[i] > 0)
            printf(" %14.2f %14.0f %7.2fx", peer_ms[i], peer_tps[i], rows[i].texts_per_s / peer_tps[i]);
        printf("\n");
    }
    FILE *jf = fopen(output, "w");
    if (!jf && errno == ENOENT && system("mkdir -p bench/results") == 0) jf = fopen(output, "w");
    if (jf) {
        fprintf(jf, "{\"model\":\"%s\",\"threads\":%d,\"cpu\":\"%s\",\"peer\":\"%s\",\"rows\":[", model_dir,
                threads, cpu, peer_version);
        for (int i = 0; i < n_sizes; i++)
            fprintf(jf, "%s{\"batch\":%d,\"ms_p50\":%.4f,\"ms_p99\":%.4f,\"texts_per_s\":%.1f,\"st_ms_p50\":%.4f,\"st_texts_per_s\":%.1f}",
                    i ? "," : "", rows[i].batch, rows[i].ms_p50, rows[i].ms_p99, rows[i].texts_per_s,
                    peer_ms[i], peer_tps[i]);
        fprintf(jf, "]}\n");
        fclose(jf);
    }
    for (int32_t i = 0; i < n_texts; i++) free(texts[i]);
    free(texts);
    free(out);
    free(info);
    free(times);
    sembed_ctx_free(ctx);
    sembed_model_free(model);
    return 0;
}
