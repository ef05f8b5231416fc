/* test_cuda_encode.c — the CUDA encoder end to end on all-MiniLM-L6-v2: its vectors against the
 * CPU encoder's (cosine >= 0.9999 per text; bf16 on the GPU, >= BF16_MIN_COS) and batch
 * invariance (a text's vector bit-identical alone and inside batches of 64). Skips (77) when
 * built without CUDA or without a GPU. */
#include "testlib.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef SEMBED_HAVE_CUDA
#include "cuda/sembed_cuda.h"

#define N_TEXTS 100
/* bf16 keeps 8 significant bits where fp16 keeps 11: the bound its vectors must hold against the
 * CPU's fp32 ones (the fp16 path: 0.9999) */
#define BF16_MIN_COS 0.999

static const char *const k_words[] = {
    "the", "retrieval", "of", "passages", "embedding", "vectors", "GPU", "kernel", "attention",
    "is", "fast", "and", "exact", "café", "naïve", "東京", "résumé", "a", "model", "sentence",
    "transformers", "packed", "batch", "without", "padding", "query", "latency", "2024", "C11",
    "library", "layer", "norm", "softmax", "(parentheses)", "hyphen-ated", "don't", "über", "!"};

static char *make_text(int i) {
    uint32_t r = 2166136261u ^ (uint32_t)i * 16777619u;
    int n = i == 0 ? 0 : i == 1 ? 1 : (i % 7 == 0 ? 300 : 1 + (int)(r % 90));
    char *s = malloc((size_t)n * 16 + 1);
    size_t len = 0;
    for (int k = 0; k < n; k++) {
        r = r * 1664525u + 1013904223u;
        const char *w = k_words[(r >> 8) % (sizeof k_words / sizeof k_words[0])];
        len += (size_t)sprintf(s + len, "%s%s", k ? " " : "", w);
    }
    s[len] = '\0';
    return s;
}

int main(void) {
    if (sembed__cuda_device_count() < 1) {
        printf("test_cuda_encode: no CUDA device, skipped\n");
        return 77;
    }
    const char *dir = t_model_dir("all-MiniLM-L6-v2");
    sembed_error err = {0};
    sembed_model *m = NULL;
    /* the device brought up while the model loads, as sembed embed does */
    sembed_ctx_params wp = sembed_ctx_default_params();
    wp.device = "cuda";
    sembed_device_warm *warm = sembed_device_warm_start(&wp);
    CHECK(warm != NULL);
    const sembed_status ls = sembed_model_load(dir, NULL, &m, &err);
    sembed_device_warm_wait(warm);
    if (ls != SEMBED_OK) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    sembed_ctx_params cp = sembed_ctx_default_params();
    sembed_ctx *cpu = NULL, *gpu = NULL;
    CHECKF(sembed_ctx_new(m, &cp, &cpu, &err) == SEMBED_OK, "%s", err.msg);
    cp.device = "cuda";
    cp.max_batch_tokens = 16384;
    CHECKF(sembed_ctx_new(m, &cp, &gpu, &err) == SEMBED_OK, "%s", err.msg);
    cp.device = "cuda:99";
    sembed_ctx *bad = NULL;
    CHECK(sembed_ctx_new(m, &cp, &bad, &err) != SEMBED_OK && bad == NULL);
    cp.device = "gpu";
    CHECK(sembed_ctx_new(m, &cp, &bad, &err) == SEMBED_ERR_INVALID_ARG);
    if (!cpu || !gpu) return t_done("test_cuda_encode");
    printf("test_cuda_encode on %s\n", sembed__cuda_device_name(sembed__ctx_cuda(gpu)));
    CHECK(!strcmp(sembed_ctx_device(gpu), "cuda:0") && !strcmp(sembed_ctx_device(cpu), "cpu"));

    const int dim = sembed_model_dim(m);
    char *texts[N_TEXTS];
    for (int i = 0; i < N_TEXTS; i++) texts[i] = make_text(i);
    float *vc = malloc(sizeof(float) * N_TEXTS * dim), *vg = malloc(sizeof(float) * N_TEXTS * dim);
    float *one = malloc(sizeof(float) * dim), *vb = malloc(sizeof(float) * N_TEXTS * dim);
    CHECKF(sembed_encode(cpu, N_TEXTS, (const char *const *)texts, NULL, vc,
                         (int64_t)N_TEXTS * dim, NULL, &err) == SEMBED_OK, "%s", err.msg);
    CHECKF(sembed_encode(gpu, N_TEXTS, (const char *const *)texts, NULL, vg,
                         (int64_t)N_TEXTS * dim, NULL, &err) == SEMBED_OK, "%s", err.msg);
    double worst = 1;
    int worst_i = -1;
    for (int i = 0; i < N_TEXTS; i++) {
        double c = t_cosine(vc + (size_t)i * dim, vg + (size_t)i * dim, dim);
        bool finite = true;
        for (int k = 0; k < dim; k++) finite = finite && isfinite(vg[(size_t)i * dim + k]);
        CHECKF(finite, "text %d: NaN/Inf in the CUDA vector", i);
        CHECKF(c >= 0.9999, "text %d: cosine CUDA vs CPU %.6f", i, c);
        if (c < worst) worst = c, worst_i = i;
    }
    printf("  CUDA vs CPU over %d texts: min cosine %.7f (text %d)\n", N_TEXTS, worst, worst_i);

    /* batch invariance: each of the first 64 alone, then texts 32..95 as another batch */
    int diff = 0;
    for (int i = 0; i < 64; i++) {
        CHECKF(sembed_encode(gpu, 1, (const char *const *)&texts[i], NULL, one, dim, NULL, &err) ==
                   SEMBED_OK, "%s", err.msg);
        if (memcmp(one, vg + (size_t)i * dim, sizeof(float) * dim) != 0) diff++;
    }
    CHECKF(diff == 0, "%d of 64 texts differ alone vs in a batch", diff);
    CHECKF(sembed_encode(gpu, 64, (const char *const *)&texts[32], NULL, vb, (int64_t)64 * dim,
                         NULL, &err) == SEMBED_OK, "%s", err.msg);
    CHECKF(memcmp(vb, vg + (size_t)32 * dim, sizeof(float) * 64 * dim) == 0,
           "texts 32..95 differ between two batch compositions");
    printf("  batch invariance: %d of 64 texts differ alone vs in a batch\n", diff);

    /* CUDA graphs: a shape's first batch runs op by op, its second is captured and replayed,
     * later ones replay; every run gives the batch-of-100 bits. Then the same with graphs off,
     * and in a second, small context (the GEMM algorithms are chosen once per process). */
    cp.device = "cuda";
    cp.max_batch_tokens = 512;
    sembed_ctx *small = NULL;
    CHECKF(sembed_ctx_new(m, &cp, &small, &err) == SEMBED_OK, "%s", err.msg);
    int gdiff = 0, runs = 0;
    for (int pass = 0; pass < 3; pass++) {
        sembed_ctx *c = pass == 2 ? small : gpu;
        if (!c) break;
        sembed__cuda_set_graphs(sembed__ctx_cuda(c), pass != 1);
        for (int i = 1; i < 12; i++)
            for (int rep = 0; rep < 3; rep++, runs++) {
                memset(one, 0xFF, sizeof(float) * dim);
                CHECKF(sembed_encode(c, 1, (const char *const *)&texts[i], NULL, one, dim, NULL,
                                     &err) == SEMBED_OK, "%s", err.msg);
                if (memcmp(one, vg + (size_t)i * dim, sizeof(float) * dim) != 0) gdiff++;
            }
        /* two texts at once, twice: a two-sequence graph */
        for (int rep = 0; rep < 2; rep++, runs++) {
            CHECKF(sembed_encode(c, 2, (const char *const *)&texts[3], NULL, vb, (int64_t)2 * dim,
                                 NULL, &err) == SEMBED_OK, "%s", err.msg);
            if (memcmp(vb, vg + (size_t)3 * dim, sizeof(float) * 2 * dim) != 0) gdiff++;
        }
    }
    CHECKF(gdiff == 0, "%d of %d repeated runs (graphs on, off, small context) differ", gdiff, runs);
    printf("  graphs on/off and a 512-token context: %d of %d repeated runs differ\n", gdiff, runs);
    sembed_ctx_free(small);

    /* A call of many chunks (7 texts a chunk, batches of <= 512 tokens and 7 texts): batches
     * run while the next is packed and the next chunk tokenized, two in flight, and go on into
     * the next chunk (SEMBED_CUDA_OVERLAP unset), or stay inside a chunk with one batch (=1) or
     * none (=0) left running. Each gives the one 100-text batch's bits and token counts, in
     * full and truncated to half the dimensions (Matryoshka: rows finished through the stage);
     * an over-long text in a later chunk (strict) fails the call, named. */
    cp.device = "cuda";
    cp.max_batch_tokens = 512;
    cp.max_batch_texts = 7;
    sembed_ctx *chunked = NULL;
    sembed_encode_info info_a[N_TEXTS], info_b[N_TEXTS];
    CHECKF(sembed_encode(gpu, N_TEXTS, (const char *const *)texts, NULL, vb,
                         (int64_t)N_TEXTS * dim, info_a, &err) == SEMBED_OK, "%s", err.msg);
    const sembed_encode_opts half = {.dimensions = dim / 2};
    float *vh = malloc(sizeof(float) * N_TEXTS * dim);
    CHECKF(sembed_encode_ex(gpu, N_TEXTS, (const char *const *)texts, NULL, &half, vh,
                            (int64_t)N_TEXTS * dim, NULL, &err) == SEMBED_OK, "%s", err.msg);
    const char *const modes[] = {NULL, "1", "0"};
    for (int mo = 0; mo < 3; mo++) {
        if (modes[mo]) setenv("SEMBED_CUDA_OVERLAP", modes[mo], 1);
        chunked = NULL;
        CHECKF(sembed_ctx_new(m, &cp, &chunked, &err) == SEMBED_OK, "%s", err.msg);
        unsetenv("SEMBED_CUDA_OVERLAP");
        if (!chunked) continue;
        memset(vb, 0xFF, sizeof(float) * N_TEXTS * dim);
        memset(info_b, 0xFF, sizeof info_b);
        CHECKF(sembed_encode(chunked, N_TEXTS, (const char *const *)texts, NULL, vb,
                             (int64_t)N_TEXTS * dim, info_b, &err) == SEMBED_OK, "%s", err.msg);
        CHECKF(memcmp(vb, vg, sizeof(float) * N_TEXTS * dim) == 0, "overlap mode %s",
               modes[mo] ? modes[mo] : "default");
        int idiff = 0;
        for (int i = 0; i < N_TEXTS; i++)
            idiff += info_a[i].n_tokens != info_b[i].n_tokens || info_a[i].truncated != info_b[i].truncated;
        CHECKF(idiff == 0, "%d of %d texts' info differ in 7-text chunks", idiff, N_TEXTS);
        memset(vb, 0xFF, sizeof(float) * N_TEXTS * dim);
        CHECKF(sembed_encode_ex(chunked, N_TEXTS, (const char *const *)texts, NULL, &half, vb,
                                (int64_t)N_TEXTS * (dim / 2), NULL, &err) == SEMBED_OK, "%s",
               err.msg);
        CHECKF(memcmp(vb, vh, sizeof(float) * N_TEXTS * (dim / 2)) == 0,
               "truncated rows, overlap mode %s", modes[mo] ? modes[mo] : "default");
        sembed_ctx_free(chunked);
    }
    free(vh);
    cp.strict_length = 1;
    chunked = NULL;
    CHECKF(sembed_ctx_new(m, &cp, &chunked, &err) == SEMBED_OK, "%s", err.msg);
    if (chunked) {
        size_t big = 20000;
        char *longt = malloc(big + 1);
        for (size_t k = 0; k < big; k++) longt[k] = k % 6 == 5 ? ' ' : "word"[k % 4];
        longt[big] = 0;
        const char *tx[30];
        for (int i = 0; i < 30; i++) tx[i] = texts[i];
        tx[23] = longt; /* in the fourth chunk */
        CHECK(sembed_encode(chunked, 30, tx, NULL, vb, (int64_t)30 * dim, NULL, &err) ==
                  SEMBED_ERR_TOO_LONG &&
              strstr(err.msg, "text 23 "));
        /* the context still works after the failed call */
        CHECKF(sembed_encode(chunked, 20, (const char *const *)texts, NULL, vb,
                             (int64_t)20 * dim, NULL, &err) == SEMBED_OK, "%s", err.msg);
        CHECK(memcmp(vb, vg, sizeof(float) * 20 * dim) == 0);
        free(longt);
        sembed_ctx_free(chunked);
    }
    cp.strict_length = 0;
    cp.max_batch_texts = 0;
    printf("  7-text chunks, 512-token batches (two in flight across chunks, one, none): the same "
           "bits and info, full and truncated; a long text in chunk 4 named\n");

    /* SEMBED_PRECISION_BF16: bf16 weights and activations on the GPU */
    cp.device = "cuda";
    cp.max_batch_tokens = 16384;
    cp.precision = SEMBED_PRECISION_BF16;
    sembed_ctx *gb = NULL;
    CHECKF(sembed_ctx_new(m, &cp, &gb, &err) == SEMBED_OK, "bf16 context: %s", err.msg);
    if (gb) {
        CHECKF(sembed_encode(gb, N_TEXTS, (const char *const *)texts, NULL, vb,
                             (int64_t)N_TEXTS * dim, NULL, &err) == SEMBED_OK, "%s", err.msg);
        double bworst = 1;
        int bworst_i = -1, bdiff = 0, fp16_gap = 0;
        for (int i = 0; i < N_TEXTS; i++) {
            const double c = t_cosine(vc + (size_t)i * dim, vb + (size_t)i * dim, dim);
            bool finite = true;
            for (int k = 0; k < dim; k++) finite = finite && isfinite(vb[(size_t)i * dim + k]);
            CHECKF(finite && c >= BF16_MIN_COS, "bf16 text %d: cosine CUDA vs CPU %.6f", i, c);
            if (c < bworst) bworst = c, bworst_i = i;
            /* bf16 must differ from fp16 (it is not silently the fp16 path) */
            if (memcmp(vb + (size_t)i * dim, vg + (size_t)i * dim, sizeof(float) * dim) != 0)
                fp16_gap++;
        }
        CHECKF(fp16_gap > N_TEXTS / 2, "bf16 vectors equal the fp16 ones for %d of %d texts",
               N_TEXTS - fp16_gap, N_TEXTS);
        for (int i = 0; i < 16; i++) {
            CHECKF(sembed_encode(gb, 1, (const char *const *)&texts[i], NULL, one, dim, NULL,
                                 &err) == SEMBED_OK, "%s", err.msg);
            if (memcmp(one, vb + (size_t)i * dim, sizeof(float) * dim) != 0) bdiff++;
        }
        CHECKF(bdiff == 0, "bf16: %d of 16 texts differ alone vs in a batch", bdiff);
        printf("  bf16: min cosine vs CPU fp32 %.7f (text %d); %d of 16 texts differ alone vs in a "
               "batch\n", bworst, bworst_i, bdiff);
        sembed_ctx_free(gb);
    }

    for (int i = 0; i < N_TEXTS; i++) free(texts[i]);
    free(vc), free(vg), free(one), free(vb);
    sembed_ctx_free(cpu);
    sembed_ctx_free(gpu);
    sembed_model_free(m);
    return t_done("test_cuda_encode");
}
#else
int main(void) {
    printf("test_cuda_encode: built without CUDA, skipped\n");
    return 77;
}
#endif
