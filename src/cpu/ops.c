/* cpu/ops.c — the fast CPU backend: GEMMs through OpenBLAS, attention per (sequence, head) on
 * the thread pool, row-wise ops as the reference's own code split over threads by rows (so they
 * are bit-identical to ref). fp32, no -ffast-math. Not the reference (src/ref/ops.c).
 *
 * Dimension letters as in backend.h: T tokens, S sequences, H hidden, A heads, D head size,
 * L one sequence's length, M/N/K GEMM sizes, R relative-position reach, F pooled features.
 *
 * Batch invariance: OpenBLAS (0.3.21, SkylakeX kernels) gives a row of an sgemm a result that
 * does not depend on M, except that small products (M*N*K below about 10^6) take its "small
 * matrix" kernels, which round differently: a 3-token text alone came out different from the
 * same text inside a batch. So a GEMM with fewer than gemm_min_rows(N, K) rows (M*N*K under
 * 2^21, and at least 16 rows) is run on zero-padded copies in scratch. test_ops checks row
 * invariance for M = 1..200 at the model shapes and odd ones, so another OpenBLAS or CPU that
 * breaks it is caught. */
#include "backend.h"

#include <cblas.h>
#include <math.h>

#if defined(__x86_64__)
#include <immintrin.h>
#define HAVE_X86 1
#define T512 __attribute__((target("avx2,fma,avx512f,avx512bw,avx512dq,avx512vl")))
#define T256 __attribute__((target("avx2,fma")))

/* e^x, 16 lanes: Cephes' expf (x = n ln2 + r, |r| <= ln2/2, degree-6 polynomial, 2^n by
 * scalef); within 2 ulp of expf for x in [-87, 88]. */
T512 static inline __m512 exp512(__m512 x) {
    x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-87.3f)), _mm512_set1_ps(88.3f));
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_fmadd_ps(_mm512_mul_ps(p, r), r, _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    return _mm512_scalef_ps(p, n);
}

/* Exact GELU, 0.5 x (1 + erf(x / sqrt 2)), 16 lanes, with erf from Abramowitz & Stegun 7.1.26
 * (absolute error <= 1.5e-7, the formula PyTorch's vectorized CPU erf uses). */
T512 static inline __m512 gelu512(__m512 x) {
    const __m512 z = _mm512_mul_ps(x, _mm512_set1_ps(0.70710678118654752f));
    const __m512 az = _mm512_abs_ps(z);
    const __m512 t = _mm512_div_ps(_mm512_set1_ps(1.0f),
                                   _mm512_fmadd_ps(az, _mm512_set1_ps(0.3275911f), _mm512_set1_ps(1.0f)));
    __m512 p = _mm512_set1_ps(1.061405429f);
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-1.453152027f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(1.421413741f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-0.284496736f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(0.254829592f));
    p = _mm512_mul_ps(p, t);
    const __m512 e = exp512(_mm512_sub_ps(_mm512_setzero_ps(), _mm512_mul_ps(az, az)));
    __m512 erf_abs = _mm512_fnmadd_ps(p, e, _mm512_set1_ps(1.0f)); /* erf(|z|) */
    /* erf is odd: copy z's sign */
    const __m512 sign = _mm512_castsi512_ps(
        _mm512_and_si512(_mm512_castps_si512(z), _mm512_set1_epi32((int32_t)0x80000000u)));
    const __m512 erf = _mm512_or_ps(erf_abs, sign);
    return _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(0.5f), x),
                         _mm512_add_ps(_mm512_set1_ps(1.0f), erf));
}

T512 static void gelu_512(float *x, int64_t n) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(x + i, gelu512(_mm512_loadu_ps(x + i)));
    if (i < n) {
        const __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(x + i, m, gelu512(_mm512_maskz_loadu_ps(m, x + i)));
    }
}

/* ---- the same on 8 lanes, for CPUs with AVX2 + FMA but no AVX-512 (or capped to AVX2) ---- */

/* Lanes i < n of a mask for _mm256_maskload_ps / _mm256_maskstore_ps (n may be <= 0 or > 8). */
T256 static inline __m256i mask256(int32_t n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

T256 static inline float hmax256(__m256 v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    return _mm_cvtss_f32(_mm_max_ss(m, _mm_movehdup_ps(m)));
}

T256 static inline float hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}

/* exp512 on 8 lanes. AVX2 has no scalef: 2^n is built from its exponent bits, exact for the
 * clamped n in [-126, 127], so p * 2^n rounds once, as scalef does. */
T256 static inline __m256 exp256(__m256 x) {
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.3f)), _mm256_set1_ps(88.3f));
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(_mm256_mul_ps(p, r), r, _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    const __m256i e =
        _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

/* gelu512 on 8 lanes: the same A&S 7.1.26 erf (absolute error <= 1.5e-7). */
T256 static inline __m256 gelu256(__m256 x) {
    const __m256 signbit = _mm256_set1_ps(-0.0f);
    const __m256 z = _mm256_mul_ps(x, _mm256_set1_ps(0.70710678118654752f));
    const __m256 az = _mm256_andnot_ps(signbit, z);
    const __m256 t = _mm256_div_ps(_mm256_set1_ps(1.0f),
                                   _mm256_fmadd_ps(az, _mm256_set1_ps(0.3275911f), _mm256_set1_ps(1.0f)));
    __m256 p = _mm256_set1_ps(1.061405429f);
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-1.453152027f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(1.421413741f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-0.284496736f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(0.254829592f));
    p = _mm256_mul_ps(p, t);
    const __m256 e = exp256(_mm256_sub_ps(_mm256_setzero_ps(), _mm256_mul_ps(az, az)));
    const __m256 erf_abs = _mm256_fnmadd_ps(p, e, _mm256_set1_ps(1.0f)); /* erf(|z|) */
    const __m256 erf = _mm256_or_ps(erf_abs, _mm256_and_ps(z, signbit)); /* erf is odd */
    return _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5f), x),
                         _mm256_add_ps(_mm256_set1_ps(1.0f), erf));
}

T256 static void gelu_256(float *x, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, gelu256(_mm256_loadu_ps(x + i)));
    if (i < n) {
        const __m256i m = mask256((int32_t)(n - i));
        _mm256_maskstore_ps(x + i, m, gelu256(_mm256_maskload_ps(x + i, m)));
    }
}
#endif

#define GEMM_MIN_MNK (INT64_C(1) << 21)

/* The fewest rows a GEMM of (N, K) runs with (see the file comment). */
static int64_t gemm_min_rows(int32_t N, int32_t K) {
    int64_t nk = (int64_t)N * K, rows = (GEMM_MIN_MNK + nk - 1) / nk;
    return rows < 16 ? 16 : rows;
}

static int64_t cpu_scratch_floats(int32_t max_len, int32_t head_dim, int32_t min_dim,
                                  int32_t max_dim, int32_t n_threads) {
    /* attention, per thread: Kt (D, L), scores (L), one output row (D) */
    int64_t att = ((int64_t)head_dim * (max_len + 16) + max_len + 16 + head_dim) * n_threads;
    /* padded small GEMMs: x (rows, K) and y (rows, N) */
    int64_t gemm = gemm_min_rows(min_dim, min_dim) * 2 * max_dim;
    /* prepared (int8, bf16) GEMMs, per thread: a panel of rows */
    int64_t prep = sembed__cpu_prep_scratch(max_dim) * n_threads;
    int64_t m = att > gemm ? att : gemm;
    return m > prep ? m : prep;
}

/* ---- row-wise ops: the reference's code on contiguous row ranges, one per thread ----------- */

static void row_range(int64_t n, int32_t task, int32_t n_tasks, int64_t *b, int64_t *e) {
    *b = n * task / n_tasks;
    *e = n * (task + 1) / n_tasks;
}

static int32_t n_row_tasks(const sembed__exec *ex, int64_t rows) {
    int32_t n = sembed__pool_threads(ex->pool);
    return rows < n ? (int32_t)(rows > 0 ? rows : 1) : n;
}

typedef struct embed_args {
    float *out;
    const int32_t *ids, *pos_ids, *type_ids;
    const float *word, *pos, *type, *gamma, *beta;
    int64_t T;
    int32_t H;
    float eps;
    const sembed__exec *ex;
} embed_args;

static void embed_task(void *v, int32_t task, int32_t n_tasks, int32_t thread) {
    (void)thread;
    embed_args *a = v;
    int64_t b, e;
    row_range(a->T, task, n_tasks, &b, &e);
    if (e <= b) return;
    sembed__backend_ref.embed_ln(a->out + b * a->H, a->ids + b, a->pos_ids + b,
                                 a->type_ids ? a->type_ids + b : NULL, a->word, a->pos, a->type,
                                 a->gamma, a->beta, e - b, a->H, a->eps, a->ex);
}

static void cpu_embed_ln(float *out, const int32_t *ids, const int32_t *pos_ids,
                         const int32_t *type_ids, const float *word, const float *pos,
                         const float *type, const float *gamma, const float *beta, int64_t T,
                         int32_t H, float eps, const sembed__exec *ex) {
    embed_args a = {out, ids, pos_ids, type_ids, word, pos, type, gamma, beta, T, H, eps, ex};
    sembed__pool_run(ex->pool, embed_task, &a, n_row_tasks(ex, T));
}

typedef struct add_ln_args {
    float *out;
    const float *a, *b, *gamma, *beta;
    int64_t T;
    int32_t H;
    float eps;
    const sembed__exec *ex;
} add_ln_args;

static void add_ln_task(void *v, int32_t task, int32_t n_tasks, int32_t thread) {
    (void)thread;
    add_ln_args *a = v;
    int64_t b, e;
    row_range(a->T, task, n_tasks, &b, &e);
    if (e <= b) return;
    sembed__backend_ref.add_ln(a->out + b * a->H, a->a + b * a->H, a->b + b * a->H, a->gamma,
                               a->beta, e - b, a->H, a->eps, a->ex);
}

static void cpu_add_ln(float *out, const float *a, const float *b, const float *gamma,
                       const float *beta, int64_t T, int32_t H, float eps,
                       const sembed__exec *ex) {
    add_ln_args args = {out, a, b, gamma, beta, T, H, eps, ex};
    sembed__pool_run(ex->pool, add_ln_task, &args, n_row_tasks(ex, T));
}

typedef struct act_args {
    float *x;
    int64_t n;
    sembed__act_kind kind;
    const sembed__exec *ex;
} act_args;

void sembed__cpu_act_span(float *x, int64_t n, sembed__act_kind kind) {
    if (n <= 0 || kind == SEMBED__ACTK_IDENTITY) return;
#ifdef HAVE_X86
    if (kind == SEMBED__ACTK_GELU && sembed__cpu_isa_get()->avx512) {
        gelu_512(x, n);
        return;
    }
    if (kind == SEMBED__ACTK_GELU && sembed__cpu_isa_get()->avx2) {
        gelu_256(x, n);
        return;
    }
#endif
    const sembed__exec none = {0};
    sembed__backend_ref.act(x, n, kind, &none); /* elementwise: needs no threads or scratch */
}

static void act_task(void *v, int32_t task, int32_t n_tasks, int32_t thread) {
    (void)thread;
    act_args *a = v;
    int64_t b, e;
    row_range(a->n, task, n_tasks, &b, &e);
    if (e > b) sembed__cpu_act_span(a->x + b, e - b, a->kind);
}

static void cpu_act(float *x, int64_t n, sembed__act_kind kind, const sembed__exec *ex) {
    if (kind == SEMBED__ACTK_IDENTITY) return;
    act_args a = {x, n, kind, ex};
    /* chunks of at least 4096 elements: below that a thread costs more than it saves */
    int64_t chunks = n / 4096 + 1;
    int32_t nt = sembed__pool_threads(ex->pool);
    sembed__pool_run(ex->pool, act_task, &a, (int32_t)(chunks < nt ? chunks : nt));
}

typedef struct pool_args {
    float *out;
    const float *x;
    const int32_t *seq_off, *skip;
    const sembed__pool_kind *kinds;
    int32_t n_kinds, S, H;
    const sembed__exec *ex;
} pool_args;

static void pool_task(void *v, int32_t task, int32_t n_tasks, int32_t thread) {
    (void)thread;
    pool_args *a = v;
    int64_t b, e;
    row_range(a->S, task, n_tasks, &b, &e);
    if (e <= b) return;
    /* seq_off holds absolute rows of x, so a sub-range of sequences needs no rebasing */
    sembed__backend_ref.pool(a->out + b * a->n_kinds * a->H, a->x, a->seq_off + b,
                             a->skip ? a->skip + b : NULL, a->kinds, a->n_kinds, (int32_t)(e - b),
                             a->H, a->ex);
}

static void cpu_pool(float *out, const float *x, const int32_t *seq_off, const int32_t *skip,
                     const sembed__pool_kind *kinds, int32_t n_kinds, int32_t S, int32_t H,
                     const sembed__exec *ex) {
    pool_args a = {out, x, seq_off, skip, kinds, n_kinds, S, H, ex};
    sembed__pool_run(ex->pool, pool_task, &a, n_row_tasks(ex, S));
}

static void cpu_normalize(float *x, int32_t S, int32_t F, const sembed__exec *ex) {
    sembed__backend_ref.normalize(x, S, F, ex); /* S*F is small: threads would cost more */
}

/* ---- GEMM ----------------------------------------------------------------------------------- */

static void add_bias(float *y, const float *b, int64_t M, int32_t N) {
    for (int64_t m = 0; m < M; m++)
        for (int32_t n = 0; n < N; n++) y[m * N + n] += b[n];
}

static void cpu_gemm_bias(float *y, const float *x, const float *w, const float *b, int64_t M,
                          int32_t N, int32_t K, const sembed__exec *ex) {
    if (M <= 0) return;
    const int64_t rows = gemm_min_rows(N, K);
    if (M < rows) {
        /* see the file comment: pad so that small batches take the same OpenBLAS path, and so
         * round the same, as large ones */
        SEMBED_ASSERT(ex->scratch_floats >= rows * ((int64_t)K + N));
        float *xp = ex->scratch, *yp = ex->scratch + rows * K;
        memcpy(xp, x, sizeof(float) * (size_t)(M * K));
        memset(xp + M * K, 0, sizeof(float) * (size_t)((rows - M) * K));
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (blasint)rows, N, K, 1.0f, xp, K, w,
                    K, 0.0f, yp, N);
        memcpy(y, yp, sizeof(float) * (size_t)(M * N));
    } else {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (blasint)M, N, K, 1.0f, x, K, w, K,
                    0.0f, y, N);
    }
    if (b) add_bias(y, b, M, N);
}

void sembed__cpu_set_blas_threads(int32_t n_threads) { openblas_set_num_threads(n_threads); }

/* ---- attention ------------------------------------------------------------------------------ */

typedef struct att_args {
    float *out;
    const float *qkv;
    const int32_t *seq_off;
    const float *rel_bias;
    int32_t S, H, A, R;
    const sembed__exec *ex;
} att_args;

/* One (sequence, head) of an attention task: its rows, and its thread's scratch: Kᵀ (D, Lp)
 * filled (Lp = L rounded up to `lanes`, the columns past L zero), then scores (Lp) and an
 * output row (D). */
typedef struct att_head {
    const att_args *a;
    int32_t h, H, D, t0, L, Lp;
    int64_t ld;
    float scale;
    float *kt, *sc, *o;
    const float *bias; /* the head's relative position bias at distance 0, or NULL */
} att_head;

static att_head att_head_at(const void *v, int32_t task, int32_t thread, int32_t lanes) {
    const att_args *a = v;
    att_head g = {.a = a, .h = task % a->A, .H = a->H, .D = a->H / a->A};
    const int32_t s = task / a->A, R = a->R;
    g.t0 = a->seq_off[s];
    g.L = a->seq_off[s + 1] - g.t0;
    g.Lp = (g.L + lanes - 1) / lanes * lanes;
    g.ld = 3 * (int64_t)g.H;
    g.scale = 1.0f / sqrtf((float)g.D);
    const int64_t per_thread = a->ex->scratch_floats / sembed__pool_threads(a->ex->pool);
    SEMBED_ASSERT((int64_t)g.D * g.Lp + g.Lp + g.D <= per_thread);
    g.kt = a->ex->scratch + (int64_t)thread * per_thread;
    g.sc = g.kt + (int64_t)g.D * g.Lp;
    g.o = g.sc + g.Lp;
    g.bias = a->rel_bias ? a->rel_bias + (int64_t)g.h * (2 * R - 1) + R - 1 : NULL;
    SEMBED_ASSERT(!g.bias || g.L <= R);
    for (int32_t j = 0; j < g.Lp; j++) {
        const float *k = a->qkv + (g.t0 + j) * g.ld + g.H + g.h * g.D;
        for (int32_t d = 0; d < g.D; d++) g.kt[(int64_t)d * g.Lp + j] = j < g.L ? k[d] : 0.0f;
    }
    return g;
}

/* One (sequence, head): scores = q·Kᵀ by broadcasting each q[d] over a row of Kᵀ (a loop the
 * compiler vectorizes without reassociating: each score still sums d = 0..D-1 in order), then
 * softmax, then out = Σ_j p_j v_j accumulated in j order. Depends only on the sequence. */
static void att_task(void *v, int32_t task, int32_t n_tasks, int32_t thread) {
    (void)n_tasks;
    const att_head g = att_head_at(v, task, thread, 1);
    const att_args *a = g.a;
    const int32_t h = g.h, H = g.H, D = g.D, t0 = g.t0, L = g.L;
    const int64_t ld = g.ld;
    const float scale = g.scale;
    float *kt = g.kt, *sc = g.sc;
    float *o = g.o;
    const float *bias = g.bias;
    for (int32_t i = 0; i < L; i++) {
        const float *q = a->qkv + (t0 + i) * ld + h * D;
        for (int32_t j = 0; j < L; j++) sc[j] = 0.0f;
        for (int32_t d = 0; d < D; d++) {
            const float qd = q[d], *kd = kt + (int64_t)d * L;
            for (int32_t j = 0; j < L; j++) sc[j] += qd * kd[j];
        }
        float mx = -INFINITY;
        for (int32_t j = 0; j < L; j++) {
            sc[j] *= scale;
            if (bias) sc[j] += bias[j - i];
            mx = sc[j] > mx ? sc[j] : mx;
        }
        float sum = 0.0f;
        for (int32_t j = 0; j < L; j++) {
            sc[j] = expf(sc[j] - mx);
            sum += sc[j];
        }
        for (int32_t d = 0; d < D; d++) o[d] = 0.0f;
        for (int32_t j = 0; j < L; j++) {
            const float p = sc[j], *vj = a->qkv + (t0 + j) * ld + 2 * H + h * D;
            for (int32_t d = 0; d < D; d++) o[d] += p * vj[d];
        }
        float *dst = a->out + (int64_t)(t0 + i) * H + h * D;
        for (int32_t d = 0; d < D; d++) dst[d] = o[d] / sum;
    }
}

#ifdef HAVE_X86
/* att_task with 16 lanes: scores over j (Kᵀ padded to Lp = L rounded up to 16 columns), exp
 * by exp512, the output over d. Each score still sums d = 0..D-1 in order and each output sums
 * j = 0..L-1 in order, so a sequence's result depends on nothing else. */
T512 static void att_task_512(void *v, int32_t task, int32_t n_tasks, int32_t thread) {
    (void)n_tasks;
    const att_head g = att_head_at(v, task, thread, 16);
    const att_args *a = g.a;
    const int32_t h = g.h, H = g.H, D = g.D, t0 = g.t0, L = g.L, Lp = g.Lp;
    const int64_t ld = g.ld;
    const float scale = g.scale;
    float *kt = g.kt, *sc = g.sc;
    const float *bias = g.bias;
    const __mmask16 last = (__mmask16)(L % 16 ? (1u << (L % 16)) - 1 : 0xffff);
    for (int32_t i = 0; i < L; i++) {
        const float *q = a->qkv + (t0 + i) * ld + h * D;
        __m512 mx = _mm512_set1_ps(-INFINITY);
        for (int32_t j0 = 0; j0 < Lp; j0 += 16) {
            __m512 acc = _mm512_setzero_ps();
            for (int32_t d = 0; d < D; d++)
                acc = _mm512_fmadd_ps(_mm512_set1_ps(q[d]), _mm512_loadu_ps(kt + (int64_t)d * Lp + j0), acc);
            acc = _mm512_mul_ps(acc, _mm512_set1_ps(scale));
            const __mmask16 m = j0 + 16 < Lp ? 0xffff : last;
            if (bias) acc = _mm512_add_ps(acc, _mm512_maskz_loadu_ps(m, bias + j0 - i));
            _mm512_storeu_ps(sc + j0, acc);
            mx = _mm512_mask_max_ps(mx, m, mx, acc);
        }
        const __m512 vmax = _mm512_set1_ps(_mm512_reduce_max_ps(mx));
        __m512 vsum = _mm512_setzero_ps();
        for (int32_t j0 = 0; j0 < Lp; j0 += 16) {
            const __mmask16 m = j0 + 16 < Lp ? 0xffff : last;
            const __m512 p = _mm512_maskz_mov_ps(m, exp512(_mm512_sub_ps(_mm512_loadu_ps(sc + j0), vmax)));
            _mm512_storeu_ps(sc + j0, p);
            vsum = _mm512_add_ps(vsum, p);
        }
        const __m512 inv = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(vsum));
        float *dst = a->out + (int64_t)(t0 + i) * H + h * D;
        for (int32_t d0 = 0; d0 < D; d0 += 16) {
            const __mmask16 m = D - d0 >= 16 ? 0xffff : (__mmask16)((1u << (D - d0)) - 1);
            __m512 o = _mm512_setzero_ps();
            for (int32_t j = 0; j < L; j++)
                o = _mm512_fmadd_ps(_mm512_set1_ps(sc[j]),
                                    _mm512_maskz_loadu_ps(m, a->qkv + (t0 + j) * ld + 2 * H + h * D + d0), o);
            _mm512_mask_storeu_ps(dst + d0, m, _mm512_mul_ps(o, inv));
        }
    }
}

/* att_task_512 on 8 lanes (Kᵀ padded to Lp = L rounded up to 8), exp by exp256: the same sums
 * in the same orders, so a sequence's result again depends on nothing else. */
T256 static void att_task_256(void *v, int32_t task, int32_t n_tasks, int32_t thread) {
    (void)n_tasks;
    const att_head g = att_head_at(v, task, thread, 8);
    const att_args *a = g.a;
    const int32_t h = g.h, H = g.H, D = g.D, t0 = g.t0, L = g.L, Lp = g.Lp;
    const int64_t ld = g.ld;
    const float scale = g.scale;
    float *kt = g.kt, *sc = g.sc;
    const float *bias = g.bias;
    const __m256i last = mask256(L - (Lp - 8)), all = mask256(8);
    const __m256 ninf = _mm256_set1_ps(-INFINITY);
    for (int32_t i = 0; i < L; i++) {
        const float *q = a->qkv + (t0 + i) * ld + h * D;
        __m256 mx = ninf;
        for (int32_t j0 = 0; j0 < Lp; j0 += 8) {
            __m256 acc = _mm256_setzero_ps();
            for (int32_t d = 0; d < D; d++)
                acc = _mm256_fmadd_ps(_mm256_set1_ps(q[d]), _mm256_loadu_ps(kt + (int64_t)d * Lp + j0), acc);
            acc = _mm256_mul_ps(acc, _mm256_set1_ps(scale));
            const __m256i m = j0 + 8 < Lp ? all : last;
            /* the masked load reads no bias past j = L - 1 (it may lie past the table) */
            if (bias) acc = _mm256_add_ps(acc, _mm256_maskload_ps(bias + j0 - i, m));
            _mm256_storeu_ps(sc + j0, acc);
            mx = _mm256_max_ps(mx, _mm256_blendv_ps(ninf, acc, _mm256_castsi256_ps(m)));
        }
        const __m256 vmax = _mm256_set1_ps(hmax256(mx));
        __m256 vsum = _mm256_setzero_ps();
        for (int32_t j0 = 0; j0 < Lp; j0 += 8) {
            const __m256i m = j0 + 8 < Lp ? all : last;
            const __m256 p = _mm256_and_ps(_mm256_castsi256_ps(m),
                                           exp256(_mm256_sub_ps(_mm256_loadu_ps(sc + j0), vmax)));
            _mm256_storeu_ps(sc + j0, p);
            vsum = _mm256_add_ps(vsum, p);
        }
        const __m256 inv = _mm256_set1_ps(1.0f / hsum256(vsum));
        float *dst = a->out + (int64_t)(t0 + i) * H + h * D;
        for (int32_t d0 = 0; d0 < D; d0 += 8) {
            const __m256i m = mask256(D - d0);
            __m256 o = _mm256_setzero_ps();
            for (int32_t j = 0; j < L; j++)
                o = _mm256_fmadd_ps(_mm256_set1_ps(sc[j]),
                                    _mm256_maskload_ps(a->qkv + (t0 + j) * ld + 2 * H + h * D + d0, m), o);
            _mm256_maskstore_ps(dst + d0, m, _mm256_mul_ps(o, inv));
        }
    }
}
#endif

static void cpu_attention(float *out, const float *qkv, const int32_t *seq_off,
                          const float *rel_bias, int32_t S, int32_t H, int32_t A, int32_t R,
                          const sembed__exec *ex) {
    att_args a = {out, qkv, seq_off, rel_bias, S, H, A, R, ex};
#ifdef HAVE_X86
    if (sembed__cpu_isa_get()->avx512) {
        sembed__pool_run(ex->pool, att_task_512, &a, S * A);
        return;
    }
    if (sembed__cpu_isa_get()->avx2) {
        sembed__pool_run(ex->pool, att_task_256, &a, S * A);
        return;
    }
#endif
    sembed__pool_run(ex->pool, att_task, &a, S * A);
}

const sembed__backend sembed__backend_cpu = {
    .name = "cpu",
    .scratch_floats = cpu_scratch_floats,
    .embed_ln = cpu_embed_ln,
    .gemm_bias = cpu_gemm_bias,
    .attention = cpu_attention,
    .add_ln = cpu_add_ln,
    .act = cpu_act,
    .pool = cpu_pool,
    .normalize = cpu_normalize,
    .gemm_prep = sembed__cpu_gemm_prep,
};
