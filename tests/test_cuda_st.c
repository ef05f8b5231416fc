/* test_cuda_st.c — parity of the CUDA encoder with sentence-transformers fp32 on the golden
 * texts: SEMBED_CUDA_ST_MODEL names a model folder and SEMBED_CUDA_ST_REF a prefix of the files
 * `bench/gpu_torch.py st-ref` wrote on the GPU machine (PREFIX.texts, PREFIX.f32: the texts and
 * sentence-transformers' fp32 vectors for that very folder). Each text's cosine must be at least
 * 0.9999 (fp16, the default) or 0.999 (SEMBED_PRECISION_BF16); all texts go through one sembed_encode call (packed batches of mixed lengths). Skips
 * (77) without a GPU or without the two variables (scripts/gpu-check.sh sets them). */
#include "testlib.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef SEMBED_HAVE_CUDA
#include "cuda/sembed_cuda.h"

static bool read_u32(FILE *f, uint32_t *v) {
    unsigned char b[4];
    if (fread(b, 1, 4, f) != 4) return false;
    *v = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
    return true;
}

int main(void) {
    const char *dir = getenv("SEMBED_CUDA_ST_MODEL"), *ref = getenv("SEMBED_CUDA_ST_REF");
    if (!dir || !ref || sembed__cuda_device_count() < 1) {
        printf("test_cuda_st: needs a CUDA device, SEMBED_CUDA_ST_MODEL and SEMBED_CUDA_ST_REF; "
               "skipped\n");
        return 77;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s.texts", ref);
    FILE *f = fopen(path, "rb");
    uint32_t n = 0;
    CHECKF(f && read_u32(f, &n) && n > 0 && n < 1000000, "cannot read %s", path);
    if (!f || n == 0 || n >= 1000000) return t_done("test_cuda_st");
    char **texts = calloc(n, sizeof *texts);
    size_t *lens = calloc(n, sizeof *lens);
    for (uint32_t i = 0; i < n; i++) {
        uint32_t len = 0;
        CHECKF(read_u32(f, &len) && len < (1u << 24), "%s: text %u: bad length", path, i);
        texts[i] = malloc((size_t)len + 1);
        CHECKF(fread(texts[i], 1, len, f) == len, "%s: text %u: short read", path, i);
        texts[i][len] = '\0';
        lens[i] = len;
    }
    fclose(f);

    sembed_error err = {0};
    sembed_model *m = NULL;
    CHECKF(sembed_model_load(dir, NULL, &m, &err) == SEMBED_OK, "%s: %s", dir, err.msg);
    if (!m) return t_done("test_cuda_st");
    const int dim = sembed_model_dim(m);
    float *want = malloc(sizeof(float) * n * (size_t)dim), *got = malloc(sizeof(float) * n * (size_t)dim);
    snprintf(path, sizeof path, "%s.f32", ref);
    f = fopen(path, "rb");
    CHECKF(f && fread(want, sizeof(float), (size_t)n * dim, f) == (size_t)n * dim,
           "%s: expected %u x %d floats", path, n, dim);
    if (f) fclose(f);

    /* fp16 (the default) within 0.9999; bf16 (SEMBED_PRECISION_BF16) within 0.999 */
    for (int pass = 0; pass < 2; pass++) {
        const bool bf16 = pass == 1;
        const double bound = bf16 ? 0.999 : 0.9999;
        sembed_ctx_params cp = sembed_ctx_default_params();
        cp.device = "cuda";
        cp.max_batch_tokens = 16384;
        if (bf16) cp.precision = SEMBED_PRECISION_BF16;
        sembed_ctx *ctx = NULL;
        CHECKF(sembed_ctx_new(m, &cp, &ctx, &err) == SEMBED_OK, "%s", err.msg);
        if (!ctx) continue;
        memset(got, 0xFF, sizeof(float) * n * (size_t)dim);
        CHECKF(sembed_encode(ctx, (int32_t)n, (const char *const *)texts, lens, got,
                             (int64_t)n * dim, NULL, &err) == SEMBED_OK, "%s", err.msg);
        double worst = 2;
        int worst_i = -1, bad = 0;
        for (uint32_t i = 0; i < n; i++) {
            double ab = 0, aa = 0, bb = 0;
            for (int k = 0; k < dim; k++) {
                const double a = got[(size_t)i * dim + k], b = want[(size_t)i * dim + k];
                ab += a * b, aa += a * a, bb += b * b;
            }
            const double c = ab / (sqrt(aa) * sqrt(bb) + 1e-30);
            if (!(c >= bound)) bad++; /* NaN counts as bad */
            if (!(c >= worst)) worst = c, worst_i = (int)i;
        }
        CHECKF(bad == 0, "%s: %d of %u texts below cosine %.4f (worst %.7f, text %d)",
               bf16 ? "bf16" : "fp16", bad, n, bound, worst, worst_i);
        printf("  %s on %s, %s: %u texts, min cosine vs sentence-transformers fp32 %.7f (text %d)\n",
               dir, sembed__cuda_device_name(sembed__ctx_cuda(ctx)), bf16 ? "bf16" : "fp16", n,
               worst, worst_i);
        sembed_ctx_free(ctx);
    }
    sembed_model_free(m);
    for (uint32_t i = 0; i < n; i++) free(texts[i]);
    free(texts), free(lens), free(want), free(got);
    return t_done("test_cuda_st");
}
#else
int main(void) {
    printf("test_cuda_st: built without CUDA, skipped\n");
    return 77;
}
#endif
