/* gpu_bench.c — times sembed's CUDA encoder on fixed token ids (read from a file the peer script
 * wrote, so both sides see the same inputs): token ids in, normalized vectors out, host clock
 * around each synchronous batch. A benchmark program, not a test; scripts/gpu-check.sh runs it.
 *
 *   gpu_bench MODEL_DIR IDS_FILE SETS S L REPS VECTORS_OUT LABEL
 *
 * IDS_FILE holds SETS x S x L int32 ids; the timed runs rotate through the sets. Prints one JSON
 * line; writes set 0's S vectors (fp32) to VECTORS_OUT. GPU_BENCH_PROFILE=1 adds the mean GPU ms
 * per op kind (events after each op, 10 more batches); GPU_BENCH_GRAPHS=0 turns CUDA graphs off;
 * GPU_BENCH_BF16=1 runs bf16 (SEMBED_PRECISION_BF16). */
#include "sembed.h"
#include "cuda/sembed_cuda.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    if (argc != 9) {
        fprintf(stderr, "usage: gpu_bench MODEL_DIR IDS_FILE SETS S L REPS VECTORS_OUT LABEL\n");
        return 2;
    }
    const int sets = atoi(argv[3]), S = atoi(argv[4]), L = atoi(argv[5]), reps = atoi(argv[6]);
    const size_t per = (size_t)S * L;
    int32_t *ids = malloc(sizeof(int32_t) * per * sets);
    FILE *f = fopen(argv[2], "rb");
    if (!f || fread(ids, sizeof(int32_t), per * sets, f) != per * sets) {
        fprintf(stderr, "gpu_bench: cannot read %s\n", argv[2]);
        return 1;
    }
    fclose(f);
    sembed_error err = {0};
    sembed_model *m = NULL;
    if (sembed_model_load(argv[1], NULL, &m, &err) != SEMBED_OK) {
        fprintf(stderr, "gpu_bench: %s\n", err.msg);
        return 1;
    }
    sembed_ctx_params cp = sembed_ctx_default_params();
    cp.device = "cuda";
    cp.max_batch_tokens = (int32_t)per;
    cp.max_batch_texts = S;
    cp.n_threads = 1;
    /* GPU_BENCH_BF16=1: bf16 weights and activations (SEMBED_PRECISION_BF16) instead of fp16 */
    if (getenv("GPU_BENCH_BF16") && strcmp(getenv("GPU_BENCH_BF16"), "1") == 0)
        cp.precision = SEMBED_PRECISION_BF16;
    sembed_ctx *ctx = NULL;
    if (sembed_ctx_new(m, &cp, &ctx, &err) != SEMBED_OK) {
        fprintf(stderr, "gpu_bench: %s\n", err.msg);
        return 1;
    }
    sembed__cuda *g = sembed__ctx_cuda(ctx);
    /* GPU_BENCH_GRAPHS=0: every batch launched op by op */
    const int graphs = !(getenv("GPU_BENCH_GRAPHS") && strcmp(getenv("GPU_BENCH_GRAPHS"), "0") == 0);
    sembed__cuda_set_graphs(g, graphs);
    const int dim = sembed_model_dim(m);
    int32_t *off = malloc(sizeof(int32_t) * (S + 1));
    for (int s = 0; s <= S; s++) off[s] = s * L;
    float *out = malloc(sizeof(float) * (size_t)S * dim);
    double *t = malloc(sizeof(double) * reps);
    for (int r = 0; r < 10 + reps; r++) {
        const int k = r % sets;
        const double t0 = now_ms();
        if (sembed__cuda_encode(g, ids + per * k, off, S, S * L, out, &err) != SEMBED_OK) {
            fprintf(stderr, "gpu_bench: %s\n", err.msg);
            return 1;
        }
        if (r >= 10) t[r - 10] = now_ms() - t0;
        if (r == 0) {
            FILE *v = fopen(argv[7], "wb");
            if (!v || fwrite(out, sizeof(float), (size_t)S * dim, v) != (size_t)S * dim) return 1;
            fclose(v);
        }
    }
    qsort(t, reps, sizeof(double), cmp_d);
    /* GPU_BENCH_PROFILE=1: then 10 more batches with an event after each op (graphs off) */
    char prof[1024] = "";
    if (getenv("GPU_BENCH_PROFILE") && atoi(getenv("GPU_BENCH_PROFILE")) > 0) {
        if (sembed__cuda_profile(g, true, &err) != SEMBED_OK) {
            fprintf(stderr, "gpu_bench: %s\n", err.msg);
            return 1;
        }
        for (int r = 0; r < 10; r++)
            if (sembed__cuda_encode(g, ids + per * (r % sets), off, S, S * L, out, &err) != SEMBED_OK) {
                fprintf(stderr, "gpu_bench: %s\n", err.msg);
                return 1;
            }
        double ms[SEMBED__CUDA_N_OPS];
        const char *names[SEMBED__CUDA_N_OPS];
        const int64_t nb = sembed__cuda_profile_read(g, ms, names);
        size_t k = (size_t)snprintf(prof, sizeof prof, ", \"op_ms\": {");
        for (int i = 0; i < SEMBED__CUDA_N_OPS && k < sizeof prof; i++)
            k += (size_t)snprintf(prof + k, sizeof prof - k, "%s\"%s\": %.4f", i ? ", " : "",
                                  names[i], ms[i] / (double)(nb > 0 ? nb : 1));
        if (k < sizeof prof) snprintf(prof + k, sizeof prof - k, "}");
        sembed__cuda_profile(g, false, &err);
    }
    double mean = 0;
    for (int r = 0; r < reps; r++) mean += t[r] / reps;
    printf("{\"workload\": \"%s\", \"S\": %d, \"L\": %d, \"reps\": %d, \"ms_p50\": %.4f, "
           "\"ms_p99\": %.4f, \"ms_min\": %.4f, \"ms_mean\": %.4f, \"graphs\": %d, "
           "\"device\": \"%s\"%s}\n",
           argv[8], S, L, reps, t[reps / 2], t[(int)(reps * 0.99)], t[0], mean, graphs,
           sembed__cuda_device_name(g), prof);
    free(ids), free(off), free(out), free(t);
    sembed_ctx_free(ctx);
    sembed_model_free(m);
    return 0;
}
