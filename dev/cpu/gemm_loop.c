/* gemm_loop.c — one prepared GEMM shape timed over NW copies of its weights (so that they stream
 * from L3, as a query's do), p50 µs per GEMM and the weight bytes' rate (dev/cpu/NOTES.md).
 *   gcc -O2 -Isrc -Iinclude dev/cpu/gemm_loop.c build-rel/libsembed.a \
 *       $(pkg-config --libs libutf8proc jansson openblas) -lm -lpthread -o /tmp/gemm_loop
 *   /tmp/gemm_loop N K M PRECISION NW THREADS [REPS]   (PRECISION 0 fp32, 1 int8, 16 int8x2) */
#include "backend.h"
#include "timing.h"

#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    if (argc < 7) {
        fprintf(stderr, "usage: %s N K M PRECISION NW THREADS [REPS]\n", argv[0]);
        return 2;
    }
    const int N = atoi(argv[1]), K = atoi(argv[2]), M = atoi(argv[3]), prec = atoi(argv[4]);
    const int nw = atoi(argv[5]), nt = atoi(argv[6]), reps = argc > 7 ? atoi(argv[7]) : 200;
    sembed_error e = {0};
    sembed__pool *pool = NULL;
    if (sembed__pool_new(nt, &pool, &e)) return fprintf(stderr, "%s\n", e.msg), 1;
    sembed__exec ex = {pool, NULL, sembed__cpu_prep_scratch(K) * nt};
    ex.scratch = aligned_alloc(64, (size_t)ex.scratch_floats * sizeof(float));
    float *w = malloc(sizeof(float) * (size_t)N * K), *b = calloc((size_t)N, sizeof(float));
    float *x = malloc(sizeof(float) * (size_t)M * K), *y = malloc(sizeof(float) * (size_t)M * N);
    srand(1);
    for (long i = 0; i < (long)N * K; i++) w[i] = (rand() / (float)RAND_MAX - 0.5f) * 0.1f;
    for (long i = 0; i < (long)M * K; i++) x[i] = rand() / (float)RAND_MAX - 0.5f;
    sembed__wprep **p = malloc(sizeof(*p) * (size_t)nw);
    for (int i = 0; i < nw; i++)
        if (sembed__wprep_new(w, b, N, K, prec, &p[i], &e)) return fprintf(stderr, "%s\n", e.msg), 1;
    double *ts = malloc(sizeof(double) * (size_t)reps);
    for (int r = 0; r < reps; r++) {
        const double t0 = now_us();
        for (int i = 0; i < nw; i++) sembed__cpu_gemm_prep(y, x, p[i], M, SEMBED__ACTK_IDENTITY, &ex);
        ts[r] = (now_us() - t0) / nw;
    }
    qsort(ts, (size_t)reps, sizeof(double), cmp_double);
    const double bytes = (double)N * K * (prec == 0 ? 3 : prec == 2 ? 2 : 1);
    printf("N%d K%d M%d prec%d threads %d: %.1f us/gemm  %.1f GB/s of weights\n", N, K, M, prec,
           nt, ts[reps / 2], bytes / ts[reps / 2] / 1e3);
    for (int i = 0; i < nw; i++) sembed__wprep_free(p[i]);
    sembed__pool_free(pool);
    free(p), free(ts), free(w), free(b), free(x), free(y), free(ex.scratch);
    return 0;
}
