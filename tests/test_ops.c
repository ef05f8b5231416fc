/* test_ops.c — every op of the CPU backend against the reference backend (src/ref/) on tiny,
 * odd and large shapes, with guard floats around every output and a NaN/Inf check; plus the
 * batch-invariance properties the encoder relies on (GEMM rows independent of M, attention of a
 * sequence independent of its neighbours, LayerNorm of a row independent of the others) and
 * MPNet's relative position buckets. */
#include "backend.h"
#include "testlib.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define GUARD 16
static const uint32_t GUARD_BITS = 0x7fa5a5a5u; /* a NaN no op writes */

/* A buffer of n floats with GUARD floats of GUARD_BITS on each side. */
typedef struct gbuf {
    float *raw;
    float *p;
    int64_t n;
} gbuf;

static gbuf galloc(int64_t n) {
    gbuf b = {malloc(sizeof(float) * (size_t)(n + 2 * GUARD)), NULL, n};
    b.p = b.raw + GUARD;
    for (int64_t i = 0; i < GUARD; i++) {
        memcpy(&b.raw[i], &GUARD_BITS, 4);
        memcpy(&b.p[n + i], &GUARD_BITS, 4);
    }
    return b;
}

static bool guards_ok(const gbuf *b) {
    for (int64_t i = 0; i < GUARD; i++)
        if (memcmp(&b->raw[i], &GUARD_BITS, 4) || memcmp(&b->p[b->n + i], &GUARD_BITS, 4))
            return false;
    return true;
}

static uint64_t rng = 88172645463325252ull;
static float frand(void) { /* uniform in [-1, 1) */
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (float)((double)(rng >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}
static void fill(float *p, int64_t n, float scale) {
    for (int64_t i = 0; i < n; i++) p[i] = frand() * scale;
}

static bool all_finite(const float *p, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(p[i])) return false;
    return true;
}

static double max_abs_diff(const float *a, const float *b, int64_t n) {
    double m = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (d > m || d != d) m = d != d ? INFINITY : d;
    }
    return m;
}

/* Both backends with their scratch; the CPU one with a 3-thread pool. */
typedef struct execs {
    sembed__exec ref, cpu;
} execs;

static execs make_execs(sembed__pool *pool, int32_t max_len, int32_t D, int32_t min_dim,
                        int32_t max_dim) {
    execs e;
    int32_t nt = sembed__pool_threads(pool);
    e.ref.pool = NULL;
    e.ref.scratch_floats = sembed__backend_ref.scratch_floats(max_len, D, min_dim, max_dim, 1);
    e.ref.scratch = malloc(sizeof(float) * (size_t)(e.ref.scratch_floats + 1));
    e.cpu.pool = pool;
    e.cpu.scratch_floats = sembed__backend_cpu.scratch_floats(max_len, D, min_dim, max_dim, nt);
    e.cpu.scratch = malloc(sizeof(float) * (size_t)(e.cpu.scratch_floats + 1));
    return e;
}
static void free_execs(execs *e) {
    free(e->ref.scratch);
    free(e->cpu.scratch);
}

/* Packs n sequences of the given lengths: seq_off (n+1). Returns T. */
static int32_t pack(int32_t *seq_off, const int32_t *lens, int32_t n) {
    seq_off[0] = 0;
    for (int32_t i = 0; i < n; i++) seq_off[i + 1] = seq_off[i] + lens[i];
    return seq_off[n];
}

/* LayerNorm outputs against the reference: the fast kernels (AVX-512, AVX2) sum in double as
 * the reference does, in another fixed order, and round (v - mean) * rstd, * gamma, + beta as it
 * does, so they agree to an ulp or so; relative to max(|ref|, 1). */
static double ln_diff(const float *r, const float *c, int64_t n) {
    double m = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)r[i] - c[i]) / (fabs(r[i]) > 1 ? fabs(r[i]) : 1);
        if (d > m || d != d) m = d != d ? INFINITY : d;
    }
    return m;
}
#define LN_TOL 1e-6

static void test_embed_ln(sembed__pool *pool, int64_t T, int32_t H, bool types, int32_t level) {
    const int32_t V = 97, P = 41, Y = 3;
    execs ex = make_execs(pool, 1, 1, 1, 1);
    float *word = malloc(sizeof(float) * (size_t)V * H), *pos = malloc(sizeof(float) * P * H);
    float *type = malloc(sizeof(float) * Y * H), *g = malloc(sizeof(float) * H),
          *b = malloc(sizeof(float) * H);
    fill(word, (int64_t)V * H, 1), fill(pos, (int64_t)P * H, 0.5f), fill(type, (int64_t)Y * H, 0.1f);
    fill(g, H, 1), fill(b, H, 0.2f);
    for (int32_t i = 0; i < H; i++) word[5 * H + i] += 40.0f; /* a row whose mean dwarfs its spread */
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)T), *pids = malloc(sizeof(int32_t) * (size_t)T),
            *tids = malloc(sizeof(int32_t) * (size_t)T);
    for (int64_t t = 0; t < T; t++) ids[t] = (int32_t)(t * 31 % V), pids[t] = (int32_t)(t % P), tids[t] = (int32_t)(t % Y);
    if (T > 1) ids[1] = 5;
    gbuf r = galloc(T * H), c = galloc(T * H), one = galloc(H);
    sembed__backend_ref.embed_ln(r.p, ids, pids, types ? tids : NULL, word, pos, types ? type : NULL,
                                 g, b, T, H, 1e-12f, &ex.ref);
    sembed__backend_cpu.embed_ln(c.p, ids, pids, types ? tids : NULL, word, pos, types ? type : NULL,
                                 g, b, T, H, 1e-12f, &ex.cpu);
    CHECKF(guards_ok(&r) && guards_ok(&c), "embed_ln T=%lld H=%d guards", (long long)T, H);
    CHECKF(all_finite(c.p, T * H), "embed_ln T=%lld H=%d NaN", (long long)T, H);
    double d = ln_diff(r.p, c.p, T * H);
    CHECKF(d <= LN_TOL, "embed_ln level %d T=%lld H=%d: max rel diff %g", level, (long long)T, H, d);
    /* batch invariance: each row alone gives its bits in the batch */
    int bad = 0;
    for (int64_t t = 0; t < T; t += T > 40 ? 37 : 1) {
        sembed__backend_cpu.embed_ln(one.p, ids + t, pids + t, types ? tids + t : NULL, word, pos,
                                     types ? type : NULL, g, b, 1, H, 1e-12f, &ex.cpu);
        bad += memcmp(one.p, c.p + t * H, sizeof(float) * (size_t)H) != 0;
    }
    CHECKF(bad == 0 && guards_ok(&one), "embed_ln level %d T=%lld H=%d: %d rows differ alone", level, (long long)T, H, bad);
    free(word), free(pos), free(type), free(g), free(b), free(ids), free(pids), free(tids);
    free(r.raw), free(c.raw), free(one.raw);
    free_execs(&ex);
}

static void test_add_ln(sembed__pool *pool, int64_t T, int32_t H, int32_t level) {
    execs ex = make_execs(pool, 1, 1, 1, 1);
    float *a = malloc(sizeof(float) * (size_t)(T * H)), *bb = malloc(sizeof(float) * (size_t)(T * H));
    float *g = malloc(sizeof(float) * H), *be = malloc(sizeof(float) * H);
    fill(a, T * H, 3), fill(bb, T * H, 1), fill(g, H, 1), fill(be, H, 1);
    for (int32_t i = 0; i < H; i++) a[(T - 1) * H + i] += 1000.0f; /* mean far above the spread */
    gbuf r = galloc(T * H), c = galloc(T * H), one = galloc(H);
    sembed__backend_ref.add_ln(r.p, a, bb, g, be, T, H, 1e-5f, &ex.ref);
    sembed__backend_cpu.add_ln(c.p, a, bb, g, be, T, H, 1e-5f, &ex.cpu);
    CHECKF(guards_ok(&r) && guards_ok(&c), "add_ln T=%lld H=%d guards", (long long)T, H);
    CHECKF(all_finite(c.p, T * H), "add_ln NaN");
    double d = ln_diff(r.p, c.p, T * H);
    CHECKF(d <= LN_TOL, "add_ln level %d T=%lld H=%d: max rel diff %g", level, (long long)T, H, d);
    if (getenv("SEMBED_TEST_VERBOSE"))
        printf("add_ln level %d T=%lld H=%d: max rel diff %g\n", level, (long long)T, H, d);
    /* batch invariance: each row alone gives its bits in the batch */
    int bad = 0;
    for (int64_t t = 0; t < T; t += T > 40 ? 37 : 1) {
        sembed__backend_cpu.add_ln(one.p, a + t * H, bb + t * H, g, be, 1, H, 1e-5f, &ex.cpu);
        bad += memcmp(one.p, c.p + t * H, sizeof(float) * (size_t)H) != 0;
    }
    CHECKF(bad == 0 && guards_ok(&one), "add_ln level %d T=%lld H=%d: %d rows differ alone", level, (long long)T, H, bad);
    /* in place (out aliases b), as the encoder calls it */
    sembed__backend_cpu.add_ln(bb, a, bb, g, be, T, H, 1e-5f, &ex.cpu);
    CHECKF(memcmp(c.p, bb, sizeof(float) * (size_t)(T * H)) == 0, "add_ln level %d in place T=%lld H=%d differs",
           level, (long long)T, H);
    free(a), free(bb), free(g), free(be), free(r.raw), free(c.raw), free(one.raw);
    free_execs(&ex);
}

static void test_act(sembed__pool *pool, int64_t n, int32_t level) {
    execs ex = make_execs(pool, 1, 1, 1, 1);
    for (int k = SEMBED__ACTK_IDENTITY; k <= SEMBED__ACTK_SIGMOID; k++) {
        gbuf r = galloc(n), c = galloc(n);
        fill(r.p, n, 6);
        memcpy(c.p, r.p, sizeof(float) * (size_t)n);
        sembed__backend_ref.act(r.p, n, (sembed__act_kind)k, &ex.ref);
        sembed__backend_cpu.act(c.p, n, (sembed__act_kind)k, &ex.cpu);
        CHECKF(guards_ok(&r) && guards_ok(&c), "act %d n=%lld guards", k, (long long)n);
        CHECKF(all_finite(c.p, n), "act %d NaN", k);
        /* exact GELU runs a vectorized erf (A&S 7.1.26, |error| <= 1.5e-7) on AVX-512 and AVX2:
         * values here reach |x| = 6, so 0.5 * 6 * 1.5e-7 plus rounding; the rest run ref's code */
        const double tol = k == SEMBED__ACTK_GELU ? 1e-6 : 0;
        double d = max_abs_diff(r.p, c.p, n);
        CHECKF(d <= tol, "act %d level %d n=%lld differs by %g", k, level, (long long)n, d);
        free(r.raw), free(c.raw);
    }
    /* exact GELU at known points (torch.nn.functional.gelu, float32) */
    float x[3] = {1.0f, -0.5f, 2.5f};
    sembed__backend_ref.act(x, 3, SEMBED__ACTK_GELU, &ex.ref);
    CHECKF(fabsf(x[0] - 0.8413447f) < 1e-6f && fabsf(x[1] + 0.1542688f) < 1e-6f &&
               fabsf(x[2] - 2.4844759f) < 1e-6f,
           "gelu values %.7f %.7f %.7f", x[0], x[1], x[2]);
    free_execs(&ex);
}

static void test_gemm(sembed__pool *pool, int64_t M, int32_t N, int32_t K, bool bias) {
    execs ex = make_execs(pool, 1, 1, N < K ? N : K, N > K ? N : K);
    float *x = malloc(sizeof(float) * (size_t)(M * K)), *w = malloc(sizeof(float) * (size_t)N * K),
          *b = malloc(sizeof(float) * (size_t)N);
    fill(x, M * K, 1), fill(w, (int64_t)N * K, 1), fill(b, N, 1);
    gbuf r = galloc(M * N), c = galloc(M * N);
    sembed__backend_ref.gemm_bias(r.p, x, w, bias ? b : NULL, M, N, K, &ex.ref);
    sembed__backend_cpu.gemm_bias(c.p, x, w, bias ? b : NULL, M, N, K, &ex.cpu);
    CHECKF(guards_ok(&r) && guards_ok(&c), "gemm %lldx%dx%d guards", (long long)M, N, K);
    CHECKF(all_finite(c.p, M * N), "gemm NaN");
    /* fp32 accumulation: error <= K * eps * sum|x||w|, and sum|x||w| ~ K/4 for values in
     * [-1, 1]; in practice it grows like sqrt(K), so this bound has a wide margin */
    double tol = 1.2e-7 * sqrt((double)K) * (K / 4.0 + 1) + 1e-6;
    double d = max_abs_diff(r.p, c.p, M * N);
    CHECKF(d <= tol, "gemm %lldx%dx%d: max diff %g > %g", (long long)M, N, K, d, tol);
    free(x), free(w), free(b), free(r.raw), free(c.raw);
    free_execs(&ex);
}

/* A row's GEMM result must not depend on M nor on the row's place (batch invariance). */
static void test_gemm_rows(sembed__pool *pool, int32_t N, int32_t K) {
    const int64_t MM = 300;
    execs ex = make_execs(pool, 1, 1, N < K ? N : K, N > K ? N : K);
    float *x = malloc(sizeof(float) * (size_t)(MM * K)), *w = malloc(sizeof(float) * (size_t)N * K),
          *b = malloc(sizeof(float) * (size_t)N);
    fill(x, MM * K, 1), fill(w, (int64_t)N * K, 0.1f), fill(b, N, 1);
    float *all = malloc(sizeof(float) * (size_t)(MM * N)), *y = malloc(sizeof(float) * (size_t)(MM * N));
    sembed__backend_cpu.gemm_bias(all, x, w, b, MM, N, K, &ex.cpu);
    int bad = 0;
    for (int64_t M = 1; M <= 200; M += (M < 40 ? 1 : 13))
        for (int64_t off = 0; off <= 7; off += 7) {
            sembed__backend_cpu.gemm_bias(y, x + off * K, w, b, M, N, K, &ex.cpu);
            if (memcmp(y, all + off * N, sizeof(float) * (size_t)(M * N))) {
                if (bad++ < 3) fprintf(stderr, "  gemm N=%d K=%d: rows of M=%lld at %lld differ\n", N, K, (long long)M, (long long)off);
            }
        }
    CHECKF(bad == 0, "gemm row invariance N=%d K=%d: %d cases differ", N, K, bad);
    free(x), free(w), free(b), free(all), free(y);
    free_execs(&ex);
}

/* Prepared GEMMs. FP32 (packed, one FMA chain per output): near the reference, rows independent
 * of M. INT8: bit-identical to the reference (exact integer sums), so rows are also
 * independent of M; and close to the fp32 product (quantization error only). BF16: near the
 * reference, rows independent of M. */
static void test_gemm_prep(sembed__pool *pool, int32_t prec, int64_t M, int32_t N, int32_t K,
                           bool bias, int32_t level) {
    execs ex = make_execs(pool, 1, 1, N < K ? N : K, N > K ? N : K);
    float *x = malloc(sizeof(float) * (size_t)(M * K)), *w = malloc(sizeof(float) * (size_t)N * K),
          *b = malloc(sizeof(float) * (size_t)N);
    fill(x, M * K, 2), fill(w, (int64_t)N * K, 0.2f), fill(b, N, 1);
    if (prec == SEMBED__PRECISION_INT8A && K >= 3) {
        /* every third row: one outlier (100, over 4x the row's rms, at a position that moves
         * through the row, the last included), then 3 and -3 over small values: the row less
         * its outlier errs by ~3% in one digit at K >= 384, so it takes a second digit too.
         * Every twelfth row from row 5: 20 channels at +-100 (K >= 40), over the cap of 16 */
        for (int64_t m = 1; m < M; m += 3) {
            for (int32_t k = 0; k < K; k++) x[m * K + k] *= 0.005f;
            x[m * K + (K - 1 - m % K)] = 100;
            x[m * K + (m * 7 + 1) % K] = 3, x[m * K + (m * 13 + 2) % K] = -3;
        }
        for (int64_t m = 5; m < M && K >= 40; m += 12)
            for (int32_t j = 0; j < 20; j++) x[m * K + (j * (K / 20) + m) % K] = j % 2 ? 100 : -100;
    }
    if (M > 2) memset(x + K, 0, sizeof(float) * (size_t)K); /* an all-zero row */
    sembed__wprep *p = NULL;
    sembed_error err;
    sembed_status s = sembed__wprep_new(w, bias ? b : NULL, N, K, prec, &p, &err);
    if (s == SEMBED_ERR_UNSUPPORTED) { /* bf16 on a CPU without it */
        free(x), free(w), free(b), free_execs(&ex);
        return;
    }
    CHECKF(s == SEMBED_OK, "wprep_new: %s", err.msg);
    gbuf r = galloc(M * N), c = galloc(M * N), f = galloc(M * N);
    sembed__backend_ref.gemm_prep(r.p, x, p, M, SEMBED__ACTK_IDENTITY, &ex.ref);
    sembed__backend_cpu.gemm_prep(c.p, x, p, M, SEMBED__ACTK_IDENTITY, &ex.cpu);
    sembed__backend_ref.gemm_bias(f.p, x, w, bias ? b : NULL, M, N, K, &ex.ref);
    CHECKF(guards_ok(&r) && guards_ok(&c), "gemm_prep %d %lldx%dx%d guards", prec, (long long)M, N, K);
    CHECKF(all_finite(c.p, M * N), "gemm_prep NaN");
    const char *name = prec == SEMBED__PRECISION_INT8X2 ? "int8x2"
                       : prec == SEMBED__PRECISION_INT8U ? "int8u"
                       : prec == SEMBED__PRECISION_INT8A ? "int8a"
                       : sembed_precision_name((sembed_precision)prec);
    if (prec == SEMBED__PRECISION_INT8A && K >= 384 && M >= 5) {
        /* the outlier rows differ from INT8U's (one digit), and are far nearer fp32's: INT8U
         * spends its 255 steps on the outlier's range (0.4 each), INT8A keeps the outlier
         * exact and gives the rest two digits */
        sembed__wprep *pu = NULL;
        CHECK(sembed__wprep_new(w, bias ? b : NULL, N, K, SEMBED__PRECISION_INT8U, &pu, &err) ==
              SEMBED_OK);
        float *yu = malloc(sizeof(float) * (size_t)(M * N));
        sembed__backend_cpu.gemm_prep(yu, x, pu, M, SEMBED__ACTK_IDENTITY, &ex.cpu);
        /* the product with the weights' own int8 values (per output channel, as prepared), so
         * that only the activations' error remains */
        float *wq = malloc(sizeof(float) * (size_t)N * K), *fq = malloc(sizeof(float) * (size_t)(M * N));
        for (int32_t n = 0; n < N; n++) {
            float amax = 0;
            for (int32_t k = 0; k < K; k++) amax = fmaxf(amax, fabsf(w[(int64_t)n * K + k]));
            for (int32_t k = 0; k < K; k++)
                wq[(int64_t)n * K + k] = amax > 0 ? nearbyintf(w[(int64_t)n * K + k] * (127.0f / amax)) * (amax / 127.0f) : 0;
        }
        sembed__backend_ref.gemm_bias(fq, x, wq, bias ? b : NULL, M, N, K, &ex.ref);
        int changed = 0, same = 0;
        double ea = 0, eu = 0;
        for (int64_t m = 0; m < M; m++) {
            const bool d = memcmp(yu + m * N, c.p + m * N, sizeof(float) * (size_t)N) != 0;
            changed += m % 3 == 1 && d, same += m % 3 != 1 && m % 12 != 5 && !d;
            if (m % 3 == 1) {
                ea += max_abs_diff(fq + m * N, c.p + m * N, N);
                eu += max_abs_diff(fq + m * N, yu + m * N, N);
            }
        }
        CHECKF(changed > 0 && same > 0, "int8a %lldx%dx%d: %d outlier rows differ from int8u, "
               "%d plain rows the same", (long long)M, N, K, changed, same);
        CHECKF(ea * 20 < eu, "int8a %lldx%dx%d: outlier rows' error (activations) %g, int8u's %g",
               (long long)M, N, K, ea, eu);
        free(yu), free(wq), free(fq);
        sembed__wprep_free(pu);
    }
    const bool exact = sembed__wprep_precision(p) == SEMBED_PRECISION_INT8; /* int8, x2 and u */
    double d = max_abs_diff(r.p, c.p, M * N);
    /* bf16 products are exact in fp32; the sums differ by fp32 rounding only */
    double tol = exact ? 0 : 1.2e-7 * sqrt((double)K) * (K / 4.0 + 1) + 1e-6;
    /* fp32 inputs: only the sums round; split fp32 (AMX): bf16 products, as bf16 */
    if (sembed__wprep_precision(p) == SEMBED_PRECISION_FP32 && !sembed__wprep_split(p)) tol /= 4;
    CHECKF(d <= tol, "gemm_prep %s level %d %lldx%dx%d: max diff to ref %g > %g", name, level,
           (long long)M, N, K, d, tol);
    /* against fp32: |x| <= 2, |w| <= 0.2, quantization steps 2/254 and 0.2/254 (int8) */
    double e = max_abs_diff(f.p, c.p, M * N), etol = (exact ? 0.02 : 0.004) * sqrt((double)K) + 1e-3;
    /* int8x2: x to about 2^-15 of its row's max, so mostly w's int8 steps (0.2/254) remain */
    if (sembed__wprep_digits(p) == 2) etol = 0.005 * sqrt((double)K) + 1e-3;
    /* split fp32: products to about 2^-16, far nearer fp32 than bf16's 2^-8 */
    if (sembed__wprep_split(p)) etol = 2e-5 * sqrt((double)K) + 1e-5;
    if (getenv("SEMBED_TEST_VERBOSE"))
        printf("gemm_prep %s level %d %lldx%dx%d: %g to ref, %g to fp32\n", name, level,
               (long long)M, N, K, d, e);
    if (prec == SEMBED__PRECISION_INT8A) { /* rows with values of 100: their weights' steps */
        e = 0;
        for (int64_t m = 0; m < M; m++) {
            float amax = 2;
            for (int32_t k = 0; k < K; k++) amax = fmaxf(amax, fabsf(x[m * K + k]));
            e = fmax(e, max_abs_diff(f.p + m * N, c.p + m * N, N) * 2 / amax);
        }
    }
    CHECKF(e <= etol, "gemm_prep %s %lldx%dx%d: max diff to fp32 %g > %g", name, (long long)M, N, K, e, etol);
    /* row invariance: each prefix of rows, at an offset, gives the same bits */
    float *y = malloc(sizeof(float) * (size_t)(M * N));
    int bad = 0;
    for (int64_t m = 1; m + 1 <= M; m += m < 20 ? 1 : 17) {
        sembed__backend_cpu.gemm_prep(y, x + K, p, m, SEMBED__ACTK_IDENTITY, &ex.cpu);
        if (memcmp(y, c.p + N, sizeof(float) * (size_t)(m * N))) bad++;
    }
    CHECKF(bad == 0, "gemm_prep %s level %d N=%d K=%d: %d row sets differ from the full batch", name,
           level, N, K, bad);
    /* the activation fused into the GEMM: the bits of the GEMM, then the backend's act pass;
     * the reference's fused GEMM against the reference's act, too */
    const sembed__act_kind acts[2] = {SEMBED__ACTK_GELU, SEMBED__ACTK_TANH};
    for (int i = 0; i < 2; i++) {
        sembed__backend_cpu.gemm_prep(y, x, p, M, acts[i], &ex.cpu);
        memcpy(r.p, c.p, sizeof(float) * (size_t)(M * N));
        sembed__backend_cpu.act(r.p, M * N, acts[i], &ex.cpu);
        CHECKF(memcmp(y, r.p, sizeof(float) * (size_t)(M * N)) == 0,
               "gemm_prep %s level %d %lldx%dx%d act %d: fused differs from gemm + act", name,
               level, (long long)M, N, K, (int)acts[i]);
    }
    sembed__backend_ref.gemm_prep(y, x, p, M, SEMBED__ACTK_GELU, &ex.ref);
    sembed__backend_ref.gemm_prep(r.p, x, p, M, SEMBED__ACTK_IDENTITY, &ex.ref);
    sembed__backend_ref.act(r.p, M * N, SEMBED__ACTK_GELU, &ex.ref);
    CHECKF(memcmp(y, r.p, sizeof(float) * (size_t)(M * N)) == 0, "ref gemm_prep GELU differs");
    free(y), free(x), free(w), free(b), free(r.raw), free(c.raw), free(f.raw);
    sembed__wprep_free(p);
    free_execs(&ex);
}

static void test_attention(sembed__pool *pool, const int32_t *lens, int32_t S, int32_t H,
                           int32_t A, bool rel, int32_t level) {
    int32_t seq_off[65];
    SEMBED_ASSERT(S <= 64);
    int32_t T = pack(seq_off, lens, S), max_len = 0;
    for (int32_t s = 0; s < S; s++) max_len = lens[s] > max_len ? lens[s] : max_len;
    const int32_t R = max_len + 3, D = H / A;
    execs ex = make_execs(pool, max_len, D, H, H);
    float *qkv = malloc(sizeof(float) * (size_t)T * 3 * H), *bias = malloc(sizeof(float) * (size_t)A * (2 * R - 1));
    fill(qkv, (int64_t)T * 3 * H, 2), fill(bias, (int64_t)A * (2 * R - 1), 1);
    gbuf r = galloc((int64_t)T * H), c = galloc((int64_t)T * H);
    sembed__backend_ref.attention(r.p, qkv, seq_off, rel ? bias : NULL, S, H, A, R, &ex.ref);
    sembed__backend_cpu.attention(c.p, qkv, seq_off, rel ? bias : NULL, S, H, A, R, &ex.cpu);
    CHECKF(guards_ok(&r) && guards_ok(&c), "attention guards");
    CHECKF(all_finite(c.p, (int64_t)T * H), "attention NaN");
    double d = max_abs_diff(r.p, c.p, (int64_t)T * H);
    CHECKF(d <= 2e-5, "attention level %d S=%d H=%d A=%d max_len=%d rel=%d: max diff %g", level, S, H, A, max_len, rel, d);
    /* each sequence alone gives bit-identical rows */
    int bad = 0;
    for (int32_t s = 0; s < S; s++) {
        int32_t one[2] = {0, lens[s]};
        float *o = malloc(sizeof(float) * (size_t)lens[s] * H);
        sembed__backend_cpu.attention(o, qkv + (int64_t)seq_off[s] * 3 * H, one, rel ? bias : NULL, 1, H, A, R, &ex.cpu);
        if (memcmp(o, c.p + (int64_t)seq_off[s] * H, sizeof(float) * (size_t)lens[s] * H)) bad++;
        free(o);
    }
    CHECKF(bad == 0, "attention level %d: %d sequences differ alone vs packed", level, bad);
    free(qkv), free(bias), free(r.raw), free(c.raw);
    free_execs(&ex);
}

static void test_pool_norm(sembed__pool *pool, const int32_t *lens, int32_t S, int32_t H) {
    int32_t seq_off[65], skip[64];
    int32_t T = pack(seq_off, lens, S);
    for (int32_t s = 0; s < S; s++) skip[s] = s % 3; /* some sequences have nothing left */
    execs ex = make_execs(pool, 1, 1, 1, 1);
    float *x = malloc(sizeof(float) * (size_t)T * H);
    fill(x, (int64_t)T * H, 1);
    const sembed__pool_kind kinds[6] = {SEMBED__POOLK_CLS, SEMBED__POOLK_MEAN, SEMBED__POOLK_MAX,
                                        SEMBED__POOLK_MEAN_SQRT_LEN, SEMBED__POOLK_WEIGHTED_MEAN,
                                        SEMBED__POOLK_LAST};
    for (int with_skip = 0; with_skip < 2; with_skip++) {
        const int64_t F = 6 * (int64_t)H;
        gbuf r = galloc(S * F), c = galloc(S * F);
        sembed__backend_ref.pool(r.p, x, seq_off, with_skip ? skip : NULL, kinds, 6, S, H, &ex.ref);
        sembed__backend_cpu.pool(c.p, x, seq_off, with_skip ? skip : NULL, kinds, 6, S, H, &ex.cpu);
        CHECKF(all_finite(c.p, S * F), "pool NaN");
        CHECKF(max_abs_diff(r.p, c.p, S * F) == 0, "pool S=%d H=%d skip=%d differs", S, H, with_skip);
        sembed__backend_ref.normalize(r.p, S, (int32_t)F, &ex.ref);
        sembed__backend_cpu.normalize(c.p, S, (int32_t)F, &ex.cpu);
        CHECKF(guards_ok(&r) && guards_ok(&c), "pool/normalize guards");
        CHECKF(max_abs_diff(r.p, c.p, S * F) == 0, "normalize differs");
        for (int32_t s = 0; s < S; s++) {
            double n2 = 0;
            for (int64_t i = 0; i < F; i++) n2 += (double)c.p[s * F + i] * c.p[s * F + i];
            CHECKF(fabs(n2 - 1) < 1e-5, "normalized row %d has norm^2 %g", s, n2);
        }
        if (!with_skip) { /* spot values: mean of sequence 0, CLS, LAST */
            double m = 0;
            for (int32_t t = 0; t < lens[0]; t++) m += x[(int64_t)t * H];
            float raw[6 * 64];
            if (H <= 64) {
                sembed__backend_ref.pool(raw, x, seq_off, NULL, kinds, 6, 1, H, &ex.ref);
                CHECK(fabs(raw[H] - m / lens[0]) < 1e-6);
                CHECK(raw[0] == x[0]);
                CHECK(raw[5 * H] == x[(int64_t)(lens[0] - 1) * H]);
            }
        }
        free(r.raw), free(c.raw);
    }
    free(x);
    free_execs(&ex);
}

/* A split FP32 preparation (made where the CPU has AMX) run with the ISA capped below AMX takes
 * the plain-C fallback (f32_split_c): the same sums, the bf16 ones in another order, so near the
 * AMX result and the reference. */
static void test_split_fallback(sembed__pool *pool, int64_t M, int32_t N, int32_t K) {
    sembed__cpu_isa_cap(4);
    execs ex = make_execs(pool, 1, 1, N < K ? N : K, N > K ? N : K);
    float *x = malloc(sizeof(float) * (size_t)(M * K)), *w = malloc(sizeof(float) * (size_t)N * K),
          *b = malloc(sizeof(float) * (size_t)N);
    fill(x, M * K, 2), fill(w, (int64_t)N * K, 0.2f), fill(b, N, 1);
    sembed__wprep *p = NULL;
    sembed_error err;
    CHECKF(sembed__wprep_new(w, b, N, K, SEMBED_PRECISION_FP32, &p, &err) == SEMBED_OK, "%s", err.msg);
    if (p && sembed__wprep_split(p)) {
        gbuf r = galloc(M * N), a = galloc(M * N), c = galloc(M * N);
        sembed__backend_ref.gemm_prep(r.p, x, p, M, SEMBED__ACTK_IDENTITY, &ex.ref);
        sembed__backend_cpu.gemm_prep(a.p, x, p, M, SEMBED__ACTK_IDENTITY, &ex.cpu);
        sembed__cpu_isa_cap(3);
        sembed__backend_cpu.gemm_prep(c.p, x, p, M, SEMBED__ACTK_IDENTITY, &ex.cpu);
        sembed__cpu_isa_cap(4);
        const double tol = 1.2e-7 * sqrt((double)K) * (K / 4.0 + 1) + 1e-6;
        CHECKF(guards_ok(&c) && all_finite(c.p, M * N), "split fallback %lldx%dx%d", (long long)M, N, K);
        CHECKF(max_abs_diff(r.p, c.p, M * N) <= tol && max_abs_diff(a.p, c.p, M * N) <= tol,
               "split fallback %lldx%dx%d: %g to ref, %g to AMX (tolerance %g)", (long long)M, N,
               K, max_abs_diff(r.p, c.p, M * N), max_abs_diff(a.p, c.p, M * N), tol);
        free(r.raw), free(a.raw), free(c.raw);
    } else {
        printf("split fallback %lldx%dx%d: skipped (no AMX here, so FP32 is not split)\n",
               (long long)M, N, K);
    }
    sembed__wprep_free(p);
    free(x), free(w), free(b);
    free_execs(&ex);
}

static void test_mpnet_buckets(void) {
    t_lines *l = t_lines_open("tests/data/mpnet/rel_buckets.txt");
    CHECK(l != NULL);
    if (!l) return;
    const char *line;
    size_t len;
    int32_t rel = -600, bad = 0, n = 0;
    while ((line = t_lines_next(l, &len))) {
        if (line[0] == '#') continue;
        int32_t want = atoi(line), got = sembed__mpnet_bucket(rel, 32, 128);
        if (got != want && bad++ < 5) fprintf(stderr, "  bucket(%d) = %d, transformers %d\n", rel, got, want);
        rel++, n++;
    }
    t_lines_close(l);
    CHECKF(n == 1201 && bad == 0, "mpnet buckets: %d of %d differ", bad, n);
}

int main(void) {
    sembed__pool *pool = NULL;
    sembed_error err;
    if (sembed__pool_new(3, &pool, &err) != SEMBED_OK) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    test_mpnet_buckets();

    /* LayerNorm at every level (AVX-512 16 lanes in steps of 32, AVX2 8 lanes and a scalar
     * tail, the reference's code): widths below, at and past each step */
    const int64_t Ts[] = {1, 2, 37, 700};
    const int32_t Hs[] = {1, 7, 16, 33, 53, 384, 771};
    for (int32_t level = 4; level >= 0; level--) {
        sembed__cpu_isa_cap(level);
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 7; j++) {
                test_embed_ln(pool, Ts[i], Hs[j], j % 2 == 0, level);
                test_add_ln(pool, Ts[i], Hs[j], level);
            }
    }
    sembed__cpu_isa_cap(4);
    /* at every instruction-set level (GELU: AVX-512 16 lanes, AVX2 8 lanes, the reference's) */
    for (int32_t level = 4; level >= 0; level--) {
        sembed__cpu_isa_cap(level);
        test_act(pool, 1, level), test_act(pool, 13, level), test_act(pool, 100003, level);
    }
    sembed__cpu_isa_cap(4);

    const int64_t Ms[] = {1, 3, 15, 16, 17, 129};
    const int32_t NK[][2] = {{1, 1}, {5, 3}, {37, 53}, {384, 384}, {1152, 384}, {384, 1536}};
    for (int i = 0; i < 6; i++)
        for (int j = 0; j < 6; j++) test_gemm(pool, Ms[i], NK[j][0], NK[j][1], (i + j) % 2 == 0);
    test_gemm(pool, 1000, 1536, 384, true);
    /* the shapes of the models we ship golden tests for (MiniLM-L6, MPNet-base) and odd ones */
    const int32_t RK[][2] = {{384, 384}, {1152, 384}, {1536, 384}, {384, 1536}, {768, 768},
                             {2304, 768}, {3072, 768}, {768, 3072}, {53, 37}, {128, 64}};
    for (int i = 0; i < 10; i++) test_gemm_rows(pool, RK[i][0], RK[i][1]);

    /* int8 and bf16 at every instruction-set level this CPU has (4 AMX .. 0 plain C) */
    /* rows: every remainder of the VNNI kernels' 4- and 6-row chunks, one 64-row panel and more */
    const int64_t QM[] = {1, 2, 3, 5, 7, 16, 17, 33, 64, 100, 300};
    const int32_t n_qm = (int32_t)(sizeof QM / sizeof QM[0]);
    const int32_t QNK[][2] = {{1, 1}, {37, 53}, {384, 384}, {1152, 384}, {384, 1536}, {50, 130}};
    const int32_t QPREC[] = {SEMBED_PRECISION_FP32,        SEMBED_PRECISION_INT8,
                             SEMBED_PRECISION_BF16,        SEMBED_PRECISION_FP32_STRICT,
                             SEMBED__PRECISION_INT8X2,     SEMBED__PRECISION_INT8U,
                             SEMBED__PRECISION_INT8A};
    for (int32_t level = 4; level >= 0; level--) {
        sembed__cpu_isa_cap(level);
        for (int pi = 0; pi < (int)(sizeof QPREC / sizeof QPREC[0]); pi++)
            for (int i = 0; i < n_qm; i++)
                for (int j = 0; j < 6; j++)
                    if (QM[i] * QNK[j][0] * QNK[j][1] < 60000000)
                        test_gemm_prep(pool, QPREC[pi], QM[i], QNK[j][0], QNK[j][1],
                                       (i + j) % 2 == 0, level);
    }
    test_split_fallback(pool, 17, 37, 53);
    test_split_fallback(pool, 40, 384, 1536);
    sembed__cpu_isa_cap(4);
    sembed__wprep *bad = NULL;
    CHECK(sembed__wprep_new(NULL, NULL, 3, 3, 7, &bad, &err) == SEMBED_ERR_INVALID_ARG && !bad);

    const int32_t l1[] = {1};
    const int32_t l2[] = {3, 1, 17, 2, 64, 5};
    const int32_t l3[] = {130, 7, 256, 1, 33};
    /* at every level: AVX-512 16 lanes, AVX2 8 lanes, plain C */
    for (int32_t level = 4; level >= 0; level--) {
        sembed__cpu_isa_cap(level);
        for (int rel = 0; rel < 2; rel++) {
            test_attention(pool, l1, 1, 8, 2, rel, level);
            test_attention(pool, l2, 6, 12, 3, rel, level);
            test_attention(pool, l2, 6, 64, 1, rel, level);
            test_attention(pool, l2, 6, 40, 2, rel, level); /* D = 20: a part of a 16-wide block */
            test_attention(pool, l3, 5, 96, 2, rel, level); /* D = 48 */
            test_attention(pool, l3, 5, 384, 12, rel, level);
        }
    }
    sembed__cpu_isa_cap(4);
    test_pool_norm(pool, l1, 1, 5);
    test_pool_norm(pool, l2, 6, 11);
    test_pool_norm(pool, l3, 5, 384);

    sembed__pool_free(pool);
    return t_done("test_ops");
}
