/* bench.c — `sembed bench`: CPU throughput for batches of real texts (the `batches` workload of
 * BENCH.md), optionally beside sentence-transformers run by bench/peer_st.py in the same run;
 * with --device cuda, CPU vs GPU per batch size, `mixed` and `query` on the GPU (peers:
 * bench/gpu_torch.py st-mixed / st-query), and a PNG of the batches table.
 * A benchmark: it reports speed and checks nothing. */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef SEMBED_HAVE_CUDA
#include "cuda/sembed_cuda.h"
#endif

#define MAX_SIZES 16

/* The card a GPU context runs on, for the tables ("" without CUDA). */
static const char *card_name(sembed_ctx *c) {
#ifdef SEMBED_HAVE_CUDA
    return c && sembed__ctx_cuda(c) ? sembed__cuda_device_name(sembed__ctx_cuda(c)) : "";
#else
    (void)c;
    return "";
#endif
}

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
            "      --precision P     CPU arithmetic: fp32 (default), fp32-strict, int8 or\n"
            "                        bf16 (see sembed embed --help); with --device, the\n"
            "                        GPU runs bf16 for bf16 and fp16 otherwise\n"
            "  -s, --seconds S       time per batch size (default 3)\n"
            "      --peer            run sentence-transformers (bench/peer_st.py, torch, same\n"
            "                        threads and texts) in the same run and print the ratio;\n"
            "                        with --device, its GPU runs for --mixed and --query instead\n"
            "  -o, --output FILE     write the results as JSON (default bench/results/cpu.json,\n"
            "                        gpu.json with --device)\n"
            "  -d, --device D        cpu (default), or cuda[:N]: the batches table then gives CPU\n"
            "                        and GPU ms per batch (default sizes 1,10,50,100,1000), the\n"
            "                        speedup, and the batch size from which the GPU wins\n"
            "      --plot FILE.png   draw the batches table (bench/plot_batches.py, matplotlib)\n"
            "      --mixed           the whole corpus, texts to vectors, in one call on the GPU;\n"
            "                        with --peer beside sentence-transformers encode fp16 on the\n"
            "                        GPU at its best batch size (32..1024)\n"
            "      --query           one short text to a vector, 1,000 times on the GPU: p50, p99\n"
            "                        (with --peer: sentence-transformers encode fp16)\n"
            "      --gpu-batch-tokens N  token budget of the GPU context's packed batches\n"
            "                        (default 32768; 512 to 1048576)\n");
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

static bool encode_or_say(sembed_ctx *ctx, int32_t n, char **texts, float *out, int32_t dim,
                          sembed_encode_info *info) {
    sembed_error err = {0};
    if (sembed_encode(ctx, n, (const char *const *)texts, NULL, out, (int64_t)n * dim, info, &err)) {
        fprintf(stderr, "sembed bench: %s\n", err.msg);
        return false;
    }
    return true;
}

/* For each batch size: two warm-up batches, then consecutive batches of the corpus for at least
 * `seconds` (and 5 batches). False on an encode error. */
static bool time_sizes(sembed_ctx *ctx, char **texts, int32_t n_texts, const int32_t *sizes,
                       int n_sizes, double seconds, int32_t dim, float *out,
                       sembed_encode_info *info, double *times, row *rows) {
    for (int si = 0; si < n_sizes; si++) {
        int32_t b = sizes[si];
        int32_t pos = 0, runs = 0;
        int64_t tokens = 0, texts_done = 0;
        double total = 0;
        int32_t nb = b < n_texts ? b : n_texts;
        for (int warm = 0; warm < 2; warm++) /* warm-up: caches, pages, threads, graphs */
            if (!encode_or_say(ctx, nb, texts, out, dim, info)) return false;
        double start = mono();
        while ((mono() - start < seconds || runs < 5) && runs < 100000) {
            if (pos + nb > n_texts) pos = 0;
            double t0 = mono();
            if (!encode_or_say(ctx, nb, texts + pos, out, dim, info)) return false;
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
    return true;
}

/* Runs `cmd` and returns its first line starting with `key` (static storage), or NULL. */
static const char *peer_line(const char *cmd, const char *key) {
    static char got[512];
    got[0] = 0;
    FILE *p = popen(cmd, "r");
    if (!p) return NULL;
    cli_lines r = {.f = p};
    char *line;
    size_t len;
    while (cli_next_line(&r, &line, &len))
        if (!got[0] && !strncmp(line, key, strlen(key))) snprintf(got, sizeof got, "%s", line);
    cli_lines_free(&r);
    int rc = pclose(p);
    if (rc != 0) fprintf(stderr, "sembed bench: '%s' failed\n", cmd);
    return got[0] ? got : NULL;
}

int cli_bench(int argc, char **argv) {
    static const struct option opts[] = {
        {"model", required_argument, NULL, 'm'},  {"corpus", required_argument, NULL, 'c'},
        {"batches", required_argument, NULL, 'b'}, {"threads", required_argument, NULL, 't'},
        {"seconds", required_argument, NULL, 's'}, {"peer", no_argument, NULL, 'P'},
        {"output", required_argument, NULL, 'o'},  {"device", required_argument, NULL, 'd'},
        {"plot", required_argument, NULL, 'g'},    {"mixed", no_argument, NULL, 'M'},
        {"query", no_argument, NULL, 'Q'},         {"help", no_argument, NULL, 'h'},
        {"precision", required_argument, NULL, 'X'},
        {"gpu-batch-tokens", required_argument, NULL, 'T'},
        {NULL, 0, NULL, 0}};
    const char *model_dir = NULL, *corpus = "bench/corpus/mixed.jsonl.gz";
    const char *output = NULL, *device = "cpu", *plot = NULL;
    const char *batches = NULL;
    int threads = 2;
    long gpu_tokens = 32768;
    double seconds = 3;
    bool peer = false, mixed = false, query = false;
    int c;
    sembed_precision precision = SEMBED_PRECISION_FP32;
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:c:b:t:s:o:d:h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model_dir = optarg; break;
        case 'c': corpus = optarg; break;
        case 'b': batches = optarg; break;
        case 't': threads = atoi(optarg); break;
        case 's': seconds = atof(optarg); break;
        case 'P': peer = true; break;
        case 'o': output = optarg; break;
        case 'd': device = optarg; break;
        case 'g': plot = optarg; break;
        case 'M': mixed = true; break;
        case 'Q': query = true; break;
        case 'T': {
            char *end;
            errno = 0;
            gpu_tokens = strtol(optarg, &end, 10);
            if (end == optarg || *end || errno || gpu_tokens < 512 || gpu_tokens > (1L << 20)) {
                fprintf(stderr, "sembed bench: --gpu-batch-tokens expects an integer from 512 "
                                "to 1048576, got '%s'\n", optarg);
                return 2;
            }
            break;
        }
        case 'X':
            if (sembed_precision_parse(optarg, &precision) != SEMBED_OK) {
                fprintf(stderr, "sembed bench: --precision expects fp32, fp32-strict, int8 or "
                                "bf16, got '%s'\n", optarg);
                return 2;
            }
            break;
        case 'h': help(stdout); return 0;
        default: help(stderr); return 2;
        }
    }
    const bool gpu = strcmp(device, "cpu") != 0;
    if (!batches) batches = gpu ? "1,10,50,100,1000" : "1,10,50,100";
    if (!output) output = gpu ? "bench/results/gpu.json" : "bench/results/cpu.json";
    if (!model_dir || threads < 1 || threads > 1024 || !(seconds > 0 && seconds < 3600)) {
        fprintf(stderr, "sembed bench: -m DIR is required; --threads in [1, 1024]; --seconds > 0\n");
        return 2;
    }
    if ((mixed || query || plot) && !gpu) {
        fprintf(stderr, "sembed bench: --mixed, --query and --plot need --device cuda[:N]\n");
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
        free(texts);
        return 1;
    }
    sembed_error err = {0};
    sembed_model *model = NULL;
    sembed_ctx *ctx = NULL, *gctx = NULL;
    float *out = NULL;
    sembed_encode_info *info = NULL;
    double *times = NULL;
    int rc = 1;
    sembed_ctx_params cp = sembed_ctx_default_params();
    cp.n_threads = threads;
    cp.precision = precision; /* the CPU context's */
    if (sembed_model_load(model_dir, NULL, &model, &err) ||
        sembed_ctx_new(model, &cp, &ctx, &err)) {
        fprintf(stderr, "sembed bench: %s\n", err.msg);
        goto done;
    }
    if (gpu) {
        /* the GPU context: large packed batches (the whole forward pass per launch sequence);
         * tokenization on `threads` CPU threads */
        sembed_ctx_params gp = cp;
        gp.device = device;
        /* the GPU runs fp16, or bf16 when asked; int8 and fp32-strict are the CPU side's only */
        gp.precision = cli_gpu_precision(precision);
        gp.max_batch_tokens = (int32_t)gpu_tokens;
        gp.max_batch_texts = 1024;
        if (sembed_ctx_new(model, &gp, &gctx, &err)) {
            fprintf(stderr, "sembed bench: %s\n", err.msg);
            goto done;
        }
    }
    int32_t dim = sembed_model_dim(model);
    int32_t max_b = mixed ? n_texts : 0;
    for (int i = 0; i < n_sizes; i++) max_b = sizes[i] > max_b ? sizes[i] : max_b;
    out = malloc(sizeof *out * (size_t)max_b * (size_t)dim);
    info = malloc(sizeof *info * (size_t)max_b);
    times = malloc(sizeof *times * 100000);
    row rows[MAX_SIZES], grows[MAX_SIZES];
    if (!out || !info || !times ||
        !time_sizes(ctx, texts, n_texts, sizes, n_sizes, seconds, dim, out, info, times, rows) ||
        (gctx && !time_sizes(gctx, texts, n_texts, sizes, n_sizes, seconds, dim, out, info, times,
                             grows)))
        goto done;
    /* the peer, in the same run, on the same texts and threads */
    double peer_ms[MAX_SIZES] = {0}, peer_tps[MAX_SIZES] = {0};
    char peer_version[128] = "";
    if (peer && !gpu) { /* on a GPU run the peers are the GPU ones (--mixed, --query) */
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
    /* mixed: the whole corpus, texts to vectors, in one call on the GPU (tokenization on
     * `threads` CPU threads included); best of 3 after a warm-up */
    double mixed_s = 0, st_mixed_tps = 0;
    int64_t mixed_tokens = 0;
    int st_mixed_batch = 0;
    if (mixed) {
        for (int r = 0; r < 4; r++) {
            double t0 = mono();
            if (!encode_or_say(gctx, n_texts, texts, out, dim, info)) goto done;
            double dt = mono() - t0;
            if (r > 0 && (mixed_s == 0 || dt < mixed_s)) mixed_s = dt;
        }
        for (int32_t i = 0; i < n_texts; i++) mixed_tokens += info[i].n_tokens;
        if (peer) {
            char cmd[8192];
            snprintf(cmd, sizeof cmd, "python3 bench/gpu_torch.py st-mixed '%s' '%s'", model_dir, corpus);
            const char *l = peer_line(cmd, "best ");
            if (!l || sscanf(l, "best batch %d texts_per_s %lf", &st_mixed_batch, &st_mixed_tps) != 2)
                fprintf(stderr, "sembed bench: no result from the sentence-transformers GPU peer\n");
        }
    }
    /* query: one short text to a vector, 1,000 times on the GPU */
    double q_p50 = 0, q_p99 = 0, st_query_ms = 0;
    static const char *const k_query = "how do I configure a reverse proxy for a web server";
    if (query) {
        char *q = (char *)k_query;
        for (int r = 0; r < 1010; r++) {
            double t0 = mono();
            if (!encode_or_say(gctx, 1, &q, out, dim, info)) goto done;
            if (r >= 10) times[r - 10] = mono() - t0;
        }
        qsort(times, 1000, sizeof *times, cmp_double);
        q_p50 = 1e3 * times[500], q_p99 = 1e3 * times[990];
        if (peer) {
            char cmd[8192];
            snprintf(cmd, sizeof cmd, "python3 bench/gpu_torch.py st-query '%s' '%s'", model_dir, k_query);
            const char *l = peer_line(cmd, "query ");
            if (!l || sscanf(l, "query ms_p50 %lf", &st_query_ms) != 1)
                fprintf(stderr, "sembed bench: no result from the sentence-transformers GPU query peer\n");
        }
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
    const char *card = card_name(gctx);
    printf("sembed bench: %s, %d threads, %s (%d texts), %s%s%s\n", model_dir, threads, corpus,
           n_texts, cpu, gpu ? ", " : "", card);
    int win = -1; /* the first size from which the GPU is faster at every larger size */
    if (gpu) {
        for (int i = n_sizes - 1; i >= 0 && grows[i].ms_p50 < rows[i].ms_p50; i--) win = i;
        printf("%7s %12s %12s %9s %14s %14s", "batch", "cpu ms p50", "gpu ms p50", "speedup",
               "cpu texts/s", "gpu texts/s");
    } else {
        printf("%7s %12s %12s %12s", "batch", "ms p50", "ms p99", "texts/s");
    }
    if (peer && !gpu) printf(" %14s %14s %8s", "st ms p50", "st texts/s", "speedup");
    printf("\n");
    for (int i = 0; i < n_sizes; i++) {
        if (gpu)
            printf("%7d %12.2f %12.2f %8.2fx %14.0f %14.0f", rows[i].batch, rows[i].ms_p50,
                   grows[i].ms_p50, rows[i].ms_p50 / grows[i].ms_p50, rows[i].texts_per_s,
                   grows[i].texts_per_s);
        else
            printf("%7d %12.2f %12.2f %12.0f", rows[i].batch, rows[i].ms_p50, rows[i].ms_p99, rows[i].texts_per_s);
        if (peer && peer_tps[i] > 0)
            printf(" %14.2f %14.0f %7.2fx", peer_ms[i], peer_tps[i], rows[i].texts_per_s / peer_tps[i]);
        printf("\n");
    }
    if (gpu) {
        if (win >= 0)
            printf("the GPU is faster from batch %d on (%s vs %d CPU threads)\n", rows[win].batch,
                   card, threads);
        else
            printf("the GPU is not faster at the largest batch here\n");
    }
    if (mixed) {
        printf("mixed: %d texts (%lld tokens) texts->vectors on the GPU in %.1f ms: %.0f texts/s, "
               "%.2fM tokens/s",
               n_texts, (long long)mixed_tokens, 1e3 * mixed_s, n_texts / mixed_s,
               mixed_tokens / mixed_s * 1e-6);
        if (st_mixed_tps > 0)
            printf("; sentence-transformers encode fp16 best %.0f texts/s (batch %d): %.1fx",
                   st_mixed_tps, st_mixed_batch, n_texts / mixed_s / st_mixed_tps);
        printf("\n");
    }
    if (query) {
        printf("query: '%s' text->vector on the GPU p50 %.3f ms, p99 %.3f ms", k_query, q_p50, q_p99);
        if (st_query_ms > 0)
            printf("; sentence-transformers encode fp16 p50 %.3f ms: %.1fx", st_query_ms,
                   st_query_ms / q_p50);
        printf("\n");
    }
    FILE *jf = fopen(output, "w");
    if (!jf && errno == ENOENT && system("mkdir -p bench/results") == 0) jf = fopen(output, "w");
    if (jf) {
        fprintf(jf, "{\"model\":\"%s\",\"threads\":%d,\"cpu\":\"%s\",\"device\":\"%s\",\"card\":\"%s\",\"peer\":\"%s\",",
                model_dir, threads, cpu, device, card, peer_version);
        if (gpu)
            fprintf(jf, "\"gpu_wins_from_batch\":%d,\"mixed\":{\"texts\":%d,\"tokens\":%lld,\"ms\":%.3f,"
                        "\"st_fp16_best_texts_per_s\":%.1f,\"st_best_batch\":%d},"
                        "\"query\":{\"ms_p50\":%.4f,\"ms_p99\":%.4f,\"st_fp16_ms_p50\":%.4f},",
                    win >= 0 ? rows[win].batch : -1, mixed ? n_texts : 0, (long long)mixed_tokens,
                    1e3 * mixed_s, st_mixed_tps, st_mixed_batch, q_p50, q_p99, st_query_ms);
        fprintf(jf, "\"rows\":[");
        for (int i = 0; i < n_sizes; i++) {
            fprintf(jf, "%s{\"batch\":%d,\"ms_p50\":%.4f,\"ms_p99\":%.4f,\"texts_per_s\":%.1f,\"st_ms_p50\":%.4f,\"st_texts_per_s\":%.1f",
                    i ? "," : "", rows[i].batch, rows[i].ms_p50, rows[i].ms_p99, rows[i].texts_per_s,
                    peer_ms[i], peer_tps[i]);
            if (gpu)
                fprintf(jf, ",\"gpu_ms_p50\":%.4f,\"gpu_ms_p99\":%.4f,\"gpu_texts_per_s\":%.1f",
                        grows[i].ms_p50, grows[i].ms_p99, grows[i].texts_per_s);
            fprintf(jf, "}");
        }
        fprintf(jf, "]}\n");
        fclose(jf);
    } else {
        fprintf(stderr, "sembed bench: cannot write %s\n", output);
    }
    if (plot) {
        char cmd[8192];
        snprintf(cmd, sizeof cmd, "python3 bench/plot_batches.py '%s' '%s'", output, plot);
        if (system(cmd) != 0) fprintf(stderr, "sembed bench: the plot (%s) failed\n", cmd);
        else printf("plot: %s\n", plot);
    }
    rc = 0;
done:
    for (int32_t i = 0; i < n_texts; i++) free(texts[i]);
    free(texts);
    free(out);
    free(info);
    free(times);
    sembed_ctx_free(gctx);
    sembed_ctx_free(ctx);
    sembed_model_free(model);
    return rc;
}
