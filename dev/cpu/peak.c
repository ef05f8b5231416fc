/* peak.c — this CPU's peaks, for the floors in dev/cpu/NOTES.md: zmm FMA (16 fp32 MACs),
 * vpdpbusd zmm (64 int8 MACs) and vdpbf16ps zmm (32 bf16 MACs) per second, on 1 .. N threads at
 * once (12 independent accumulators a thread, so the count is throughput, not latency), and the
 * read bandwidth from DRAM (each thread sums its own 256 MB). The VM's neighbours move these:
 * run it a few times.
 *   gcc -O2 -mavx512f -mavx512vnni -mavx512bf16 -pthread dev/cpu/peak.c -o /tmp/peak
 *   /tmp/peak [THREADS [SECONDS_PER_TEST]]                                                   */
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define ACC 12
#define INNER 100000L

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

typedef struct {
    int kind;
    double seconds, per_s, sink;
    const float *buf;
    long n;
} job;

#define LOOP(TYPE, INIT, OP)                                                                      \
    do {                                                                                          \
        TYPE acc[ACC];                                                                            \
        for (int i = 0; i < ACC; i++) acc[i] = INIT;                                              \
        long n = 0;                                                                               \
        const double t0 = now_s();                                                                \
        double t = t0;                                                                            \
        while (t - t0 < j->seconds) {                                                             \
            for (long it = 0; it < INNER; it++) {                                                 \
                _Pragma("GCC unroll 12") for (int i = 0; i < ACC; i++) acc[i] = OP;               \
            }                                                                                     \
            n += INNER * ACC;                                                                     \
            t = now_s();                                                                          \
        }                                                                                         \
        j->per_s = (double)n / (t - t0);                                                          \
        float s = 0;                                                                              \
        for (int i = 0; i < ACC; i++) s += _mm512_reduce_add_ps(_mm512_castsi512_ps((__m512i)acc[i])); \
        j->sink = s;                                                                              \
    } while (0)

static void *run(void *v) {
    job *j = v;
    const __m512 a = _mm512_set1_ps(1.0f + 1e-7f), b = _mm512_set1_ps(1e-9f);
    const __m512i ua = _mm512_set1_epi8(1), sb = _mm512_set1_epi8(1);
    const __m512bh ha = (__m512bh)_mm512_set1_epi16(0x3f80), hb = (__m512bh)_mm512_set1_epi16(0x3000);
    if (j->kind == 0) LOOP(__m512, b, _mm512_fmadd_ps(acc[i], a, b));
    if (j->kind == 1) LOOP(__m512i, _mm512_setzero_si512(), _mm512_dpbusd_epi32(acc[i], ua, sb));
    if (j->kind == 2) LOOP(__m512, b, _mm512_dpbf16_ps(acc[i], ha, hb));
    if (j->kind == 3) { /* bytes read per second */
        __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
        long bytes = 0;
        const double t0 = now_s();
        double t = t0;
        while (t - t0 < j->seconds) {
            for (long i = 0; i < j->n; i += 64) {
                s0 = _mm512_add_ps(s0, _mm512_load_ps(j->buf + i));
                s1 = _mm512_add_ps(s1, _mm512_load_ps(j->buf + i + 16));
                s2 = _mm512_add_ps(s2, _mm512_load_ps(j->buf + i + 32));
                s3 = _mm512_add_ps(s3, _mm512_load_ps(j->buf + i + 48));
            }
            bytes += j->n * 4;
            t = now_s();
        }
        j->per_s = (double)bytes / (t - t0);
        j->sink = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
    }
    return NULL;
}

int main(int argc, char **argv) {
    const int nt = argc > 1 ? atoi(argv[1]) : 2;
    const double sec = argc > 2 ? atof(argv[2]) : 1.0;
    const char *name[] = {"zmm FMA (16 fp32 MACs)", "vpdpbusd zmm (64 int8 MACs)", "vdpbf16ps zmm (32 bf16 MACs)",
                          "DRAM reads"};
    const int macs[] = {16, 64, 32};
    const long n = 64L << 20; /* floats a thread: 256 MB */
    float *bufs[64];
    if (nt < 1 || nt > 64) return fprintf(stderr, "THREADS: 1 .. 64\n"), 2;
    for (int i = 0; i < nt; i++) {
        bufs[i] = aligned_alloc(64, (size_t)n * sizeof(float));
        if (!bufs[i]) return fprintf(stderr, "out of memory\n"), 1;
        for (long k = 0; k < n; k++) bufs[i][k] = 1.0f;
    }
    for (int kind = 0; kind < 4; kind++)
        for (int t = 1; t <= nt; t++) {
            pthread_t th[64];
            job jobs[64];
            for (int i = 0; i < t; i++) {
                jobs[i] = (job){.kind = kind, .seconds = sec, .buf = bufs[i], .n = n};
                pthread_create(&th[i], NULL, run, &jobs[i]);
            }
            double sum = 0;
            for (int i = 0; i < t; i++) pthread_join(th[i], NULL), sum += jobs[i].per_s;
            if (kind == 3)
                printf("%-30s %d thread%s: %.1f GB/s in all\n", name[kind], t, t > 1 ? "s" : " ", sum * 1e-9);
            else
                printf("%-30s %d thread%s: %.2f G instr/s in all (%.2f a thread), %.1f GMAC/s\n", name[kind],
                       t, t > 1 ? "s" : " ", sum * 1e-9, sum * 1e-9 / t, sum * 1e-9 * macs[kind]);
        }
    for (int i = 0; i < nt; i++) free(bufs[i]);
    return 0;
}
