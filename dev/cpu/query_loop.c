/* query_loop.c — one text encoded N times on the CPU, p10/p50/p90 in ms (dev/cpu/NOTES.md).
 *   gcc -O2 -Iinclude dev/cpu/query_loop.c build-rel/libsembed.a \
 *       $(pkg-config --libs libutf8proc jansson openblas) -lm -lpthread -o /tmp/query_loop
 *   /tmp/query_loop MODEL_DIR PRECISION [REPS [THREADS]]   (PRECISION: 0 fp32, 1 int8, 3 fp32-strict)
 * QTEXT=... sets the text (default: 17 tokens with bert-base-uncased's vocabulary). */
#include "sembed.h"
#include "timing.h"

#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s MODEL_DIR PRECISION [REPS [THREADS]]\n", argv[0]);
        return 2;
    }
    const int reps = argc > 3 ? atoi(argv[3]) : 500;
    sembed_error e = {0};
    sembed_model *m = NULL;
    sembed_ctx *c = NULL;
    if (sembed_model_load(argv[1], NULL, &m, &e)) return fprintf(stderr, "%s\n", e.msg), 1;
    sembed_ctx_params p = sembed_ctx_default_params();
    p.n_threads = argc > 4 ? atoi(argv[4]) : 2;
    p.precision = (sembed_precision)atoi(argv[2]);
    if (sembed_ctx_new(m, &p, &c, &e)) return fprintf(stderr, "%s\n", e.msg), 1;
    const char *t = getenv("QTEXT") ? getenv("QTEXT")
                                    : "how do i configure the retry policy for failed background jobs";
    static float out[8192];
    double *ts = malloc(sizeof(double) * (size_t)(reps > 0 ? reps : 1));
    for (int i = 0; i < 20; i++) sembed_encode(c, 1, &t, NULL, out, 8192, NULL, &e);
    for (int i = 0; i < reps; i++) {
        const double t0 = now_us();
        if (sembed_encode(c, 1, &t, NULL, out, 8192, NULL, &e)) return fprintf(stderr, "%s\n", e.msg), 1;
        ts[i] = (now_us() - t0) * 1e-3; /* ms */
    }
    qsort(ts, (size_t)reps, sizeof(double), cmp_double);
    printf("p50 %.3f ms  p10 %.3f  p90 %.3f\n", ts[reps / 2], ts[reps / 10], ts[reps * 9 / 10]);
    free(ts);
    sembed_ctx_free(c);
    sembed_model_free(m);
    return 0;
}
