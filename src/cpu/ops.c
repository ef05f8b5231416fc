/* cpu/ops.c — the fast CPU backend: GEMMs through OpenBLAS, attention per (sequence, head) on
 * the thread pool, LayerNorm rows on AVX-512 / AVX2 lanes (the reference's double statistics,
 * summed in another fixed order) and the other row-wise ops as the reference's own code, split
 * over threads by rows. fp32, no -ffast-math. Not the reference (src/ref/ops.c).
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
    /* t = 1 / (1 + 0.3275911 |z|) by rcp14 and a Newton step (relative error ~1e-8, far under
     * the formula's): a 512-bit divide is slow on Zen 4, and gelu_512 took 4.8% of an
     * all-MiniLM-L6-v2 int8 batch (perf) */
    const __m512 den = _mm512_fmadd_ps(az, _mm512_set1_ps(0.3275911f), _mm512_set1_ps(1.0f));
    const __m512 t0 = _mm512_rcp14_ps(den);
    const __m512 t = _mm512_fmadd_ps(t0, _mm512_fnmadd_ps(den, t0, _mm512_set1_ps(1.0f)), t0);
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

/* ---- LayerNorm rows: layer_norm_row of src/ref/ops.c with its sums on lanes ----------------
 * As the reference: mean and variance in double, y = (float)((v - mean) * rstd) in double, then
 * y * gamma + beta in float. The sums run on double lanes (four accumulators of 8 with
 * AVX-512, two of 4 and a scalar tail with AVX2) in a fixed order that depends only on H, so a row's bits depend only on the row (not on T, the
 * threads or the split); they differ from the reference's serial sums by double rounding, far
 * below the float result's last bit, so the two agree to an ulp or so. */

/* Keeps x a rounded product: with -ffp-contract=fast (GCC's default for gnu11) x * g + b would
 * become one FMA, rounded once where the reference (built without FMA) rounds twice. */
#define ROUNDED(x) __asm__("" : "+v"(x))

/* Lanes i .. i+15 of a row of H floats that lie in the row. */
T512 static inline __mmask16 ln_mask16(int32_t H, int32_t i) {
    return H - i >= 16 ? 0xffff : H <= i ? 0 : (__mmask16)((1u << (H - i)) - 1);
}

/* The sums of a row run on four accumulators of 8 doubles, floats i .. i+31 of the row going to
 * accumulators 0 .. 3 in order: two independent add chains per 16 floats. */
T512 static inline __m512d ln_lo(__m512 x) { return _mm512_cvtps_pd(_mm512_castps512_ps256(x)); }
T512 static inline __m512d ln_hi(__m512 x) { return _mm512_cvtps_pd(_mm512_extractf32x8_ps(x, 1)); }
T512 static inline double ln_sum4(__m512d s0, __m512d s1, __m512d s2, __m512d s3) {
    return _mm512_reduce_add_pd(_mm512_add_pd(_mm512_add_pd(s0, s1), _mm512_add_pd(s2, s3)));
}

/* out (H) = LayerNorm(v (H)) * gamma + beta, out may be v, given sum = Σ v[i] (summed as
 * above). */
T512 static void ln_row_512(float *out, const float *v, const float *gamma, const float *beta,
                            int32_t H, float eps, double sum) {
    const double mean = sum / H;
    const __m512d vm = _mm512_set1_pd(mean);
    __m512d s0 = _mm512_setzero_pd(), s1 = s0, s2 = s0, s3 = s0;
    for (int32_t i = 0; i < H; i += 32) { /* var += (v[i] - mean)^2 */
        const __mmask16 m = ln_mask16(H, i), n = ln_mask16(H, i + 16);
        const __m512 x = _mm512_maskz_loadu_ps(m, v + i), y = _mm512_maskz_loadu_ps(n, v + i + 16);
        const __m512d d0 = _mm512_maskz_sub_pd((__mmask8)m, ln_lo(x), vm);
        const __m512d d1 = _mm512_maskz_sub_pd((__mmask8)(m >> 8), ln_hi(x), vm);
        const __m512d d2 = _mm512_maskz_sub_pd((__mmask8)n, ln_lo(y), vm);
        const __m512d d3 = _mm512_maskz_sub_pd((__mmask8)(n >> 8), ln_hi(y), vm);
        s0 = _mm512_fmadd_pd(d0, d0, s0);
        s1 = _mm512_fmadd_pd(d1, d1, s1);
        s2 = _mm512_fmadd_pd(d2, d2, s2);
        s3 = _mm512_fmadd_pd(d3, d3, s3);
    }
    const double var = ln_sum4(s0, s1, s2, s3) / H;
    const __m512d vr = _mm512_set1_pd(1.0 / sqrt(var + (double)eps));
    for (int32_t i = 0; i < H; i += 16) { /* out[i] = (float)((v[i] - mean) * rstd) * g[i] + b[i] */
        const __mmask16 m = ln_mask16(H, i);
        const __m512 x = _mm512_maskz_loadu_ps(m, v + i);
        const __m256 y0 = _mm512_cvtpd_ps(_mm512_mul_pd(_mm512_sub_pd(ln_lo(x), vm), vr));
        const __m256 y1 = _mm512_cvtpd_ps(_mm512_mul_pd(_mm512_sub_pd(ln_hi(x), vm), vr));
        const __m512 y = _mm512_insertf32x8(_mm512_castps256_ps512(y0), y1, 1);
        __m512 yg = _mm512_mul_ps(y, _mm512_maskz_loadu_ps(m, gamma + i));
        ROUNDED(yg);
        _mm512_mask_storeu_ps(out + i, m, _mm512_add_ps(yg, _mm512_maskz_loadu_ps(m, beta + i)));
    }
}

/* o (H) = a + b, then LayerNorm in place. */
T512 static void add_ln_row_512(float *o, const float *a, const float *b, const float *gamma,
                                const float *beta, int32_t H, float eps) {
    __m512d s0 = _mm512_setzero_pd(), s1 = s0, s2 = s0, s3 = s0;
    for (int32_t i = 0; i < H; i += 32) { /* o[i] = a[i] + b[i]; mean += o[i] (0 past H) */
        const __mmask16 m = ln_mask16(H, i), n = ln_mask16(H, i + 16);
        const __m512 x = _mm512_add_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i));
        const __m512 y = _mm512_add_ps(_mm512_maskz_loadu_ps(n, a + i + 16), _mm512_maskz_loadu_ps(n, b + i + 16));
        _mm512_mask_storeu_ps(o + i, m, x);
        _mm512_mask_storeu_ps(o + i + 16, n, y);
        s0 = _mm512_add_pd(s0, ln_lo(x)), s1 = _mm512_add_pd(s1, ln_hi(x));
        s2 = _mm512_add_pd(s2, ln_lo(y)), s3 = _mm512_add_pd(s3, ln_hi(y));
    }
    ln_row_512(o, o, gamma, beta, H, eps, ln_sum4(s0, s1, s2, s3));
}

/* o (H) = (w + y) + p (y may be NULL: w + p), then LayerNorm in place. */
T512 static void embed_ln_row_512(float *o, const float *w, const float *y, const float *p,
                                  const float *gamma, const float *beta, int32_t H, float eps) {
    __m512d s0 = _mm512_setzero_pd(), s1 = s0, s2 = s0, s3 = s0;
    for (int32_t i = 0; i < H; i += 16) {
        const __mmask16 m = ln_mask16(H, i);
        __m512 x = _mm512_maskz_loadu_ps(m, w + i);
        if (y) x = _mm512_add_ps(x, _mm512_maskz_loadu_ps(m, y + i));
        x = _mm512_add_ps(x, _mm512_maskz_loadu_ps(m, p + i));
        _mm512_mask_storeu_ps(o + i, m, x);
        if (i / 16 % 2 == 0)
            s0 = _mm512_add_pd(s0, ln_lo(x)), s1 = _mm512_add_pd(s1, ln_hi(x));
        else
            s2 = _mm512_add_pd(s2, ln_lo(x)), s3 = _mm512_add_pd(s3, ln_hi(x));
    }
    ln_row_512(o, o, gamma, beta, H, eps, ln_sum4(s0, s1, s2, s3));
}

/* ln_row_512 on 8 double lanes (two accumulators of 4) and the last H % 8 in a scalar sum
 * added after them. */
T256 static void ln_row_256(float *out, const float *v, const float *gamma, const float *beta,
                            int32_t H, float eps) {
    const int32_t n8 = H / 8 * 8;
    __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
    for (int32_t i = 0; i < n8; i += 8) { /* mean += v[i] */
        const __m256 x = _mm256_loadu_ps(v + i);
        s0 = _mm256_add_pd(s0, _mm256_cvtps_pd(_mm256_castps256_ps128(x)));
        s1 = _mm256_add_pd(s1, _mm256_cvtps_pd(_mm256_extractf128_ps(x, 1)));
    }
    double tail = 0;
    for (int32_t i = n8; i < H; i++) tail += v[i];
    __m256d s = _mm256_add_pd(s0, s1);
    __m128d h = _mm_add_pd(_mm256_castpd256_pd128(s), _mm256_extractf128_pd(s, 1));
    const double mean = (_mm_cvtsd_f64(h) + _mm_cvtsd_f64(_mm_unpackhi_pd(h, h)) + tail) / H;
    const __m256d vm = _mm256_set1_pd(mean);
    s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
    for (int32_t i = 0; i < n8; i += 8) { /* var += (v[i] - mean)^2 */
        const __m256 x = _mm256_loadu_ps(v + i);
        const __m256d d0 = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(x)), vm);
        const __m256d d1 = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(x, 1)), vm);
        s0 = _mm256_fmadd_pd(d0, d0, s0);
        s1 = _mm256_fmadd_pd(d1, d1, s1);
    }
    tail = 0;
    for (int32_t i = n8; i < H; i++) tail += ((double)v[i] - mean) * ((double)v[i] - mean);
    s = _mm256_add_pd(s0, s1);
    h = _mm_add_pd(_mm256_castpd256_pd128(s), _mm256_extractf128_pd(s, 1));
    const double var = (_mm_cvtsd_f64(h) + _mm_cvtsd_f64(_mm_unpackhi_pd(h, h)) + tail) / H;
    const double rstd = 1.0 / sqrt(var + (double)eps);
    const __m256d vr = _mm256_set1_pd(rstd);
    for (int32_t i = 0; i < n8; i += 8) { /* out[i] = (float)((v[i] - mean) * rstd) * g[i] + b[i] */
        const __m256 x = _mm256_loadu_ps(v + i);
        const __m128 y0 = _mm256_cvtpd_ps(_mm256_mul_pd(_mm256_sub_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(x)), vm), vr));
        const __m128 y1 = _mm256_cvtpd_ps(_mm256_mul_pd(_mm256_sub_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(x, 1)), vm), vr));
        const __m256 y = _mm256_insertf128_ps(_mm256_castps128_ps256(y0), y1, 1);
        __m256 yg = _mm256_mul_ps(y, _mm256_loadu_ps(gamma + i));
        ROUNDED(yg);
        _mm256_storeu_ps(out + i, _mm256_add_ps(yg, _mm256_loadu_ps(beta + i)));
    }
    for (int32_t i = n8; i < H; i++) {
        float yg = (float)(((double)v[i] - mean) * rstd) * gamma[i];
        ROUNDED(yg);
        out[i] = yg + beta[i];
    }
}

T256 static void add_ln_row_256(float *o, const float *a, const float *b, const float *gamma,
                                const float *beta, int32_t H, float eps) {
    int32_t i = 0;
    for (; i + 8 <= H; i += 8) _mm256_storeu_ps(o + i, _mm256_add_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i)));
    for (; i < H; i++) o[i] = a[i] + b[i];
    ln_row_256(o, o, gamma, beta, H, eps);
}

T256 static void embed_ln_row_256(float *o, const float *w, const float *y, const float *p,
                                  const float *gamma, const float *beta, int32_t H, float eps) {
    int32_t i = 0;
    for (; i + 8 <= H; i += 8) {
        __m256 x = _mm256_loadu_ps(w + i);
        if (y) x = _mm256_add_ps(x, _mm256_loadu_ps(y + i));
        _mm256_storeu_ps(o + i, _mm256_add_ps(x, _mm256_loadu_ps(p + i)));
    }
    for (; i < H; i++) o[i] = (y ? w[i] + y[i] : w[i]) + p[i];
    ln_row_256(o, o, gamma, beta, H, eps);
}
#endif

#define GEMM_MIN_MNK (INT64_C(1) << 21)

/* Query rows an AVX-512 or AVX2 attention kernel takes at once: ATT_ROWS score (and output)
 * chains share each load of Kᵀ (and of v_j), where one row alone waits on one FMA chain. */
#define ATT_ROWS 8

/* The fewest rows a GEMM of (N, K) runs with (see the file comment). */
static int64_t gemm_min_rows(int32_t N, int32_t K) {
    int64_t nk = (int64_t)N * K, rows = (GEMM_MIN_MNK + nk - 1) / nk;
    return rows < 16 ? 16 : rows;
}

static int64_t cpu_scratch_floats(int32_t max_len, int32_t head_dim, int32_t min_dim,
                                  int32_t max_dim, int32_t n_threads) {
    /* attention, per thread: Kt (D, L), scores (ATT_ROWS, L), one output row (D) */
    int64_t att = ((int64_t)(head_dim + ATT_ROWS) * (max_len + 16) + head_dim) * n_threads;
    /* padded small GEMMs: x (rows, K) and y (rows, N) */
    int64_t gemm = gemm_min_rows(min_dim, min_dim) * 2 * max_dim;
    /* prepared (int8, bf16) GEMMs, per thread: a panel of rows */
    int64_t prep = sembed__cpu_prep_scratch(max_dim) * n_threads;
    int64_t m = att > gemm ? att : gemm;
    return m > prep ? m : prep;
}

/* ---- row-wise ops: contiguous row ranges, one per thread ------------------------------------
 * (LayerNorm at T = 16, H = 384 on the 2-core dev VM: 2.0 us on 2 threads, 2.7 on one: the
 * split pays even there.) */

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
#ifdef HAVE_X86
    const sembed__cpu_isa *isa = sembed__cpu_isa_get();
    if (isa->avx512 || isa->avx2) {
        void (*row)(float *, const float *, const float *, const float *, const float *,
                    const float *, int32_t, float) = isa->avx512 ? embed_ln_row_512 : embed_ln_row_256;
        const int32_t H = a->H;
        for (int64_t t = b; t < e; t++) {
            const float *w = a->word + (int64_t)a->ids[t] * H, *p = a->pos + (int64_t)a->pos_ids[t] * H;
            const float *y = a->type ? a->type + (int64_t)(a->type_ids ? a->type_ids[t] : 0) * H : NULL;
            row(a->out + t * H, w, y, p, a->gamma, a->beta, H, a->eps);
        }
        return;
    }
#endif
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
#ifdef HAVE_X86
    const sembed__cpu_isa *isa = sembed__cpu_isa_get();
    if (isa->avx512 || isa->avx2) {
        void (*row)(float *, const float *, const float *, const float *, const float *, int32_t,
                    float) = isa->avx512 ? add_ln_row_512 : add_ln_row_256;
        const int64_t H = a->H;
        for (int64_t t = b; t < e; t++)
            row(a->out + t * H, a->a + t * H, a->b + t * H, a->gamma, a->beta, a->H, a->eps);
        return;
    }
#endif
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

typedef struct att_args att_args;
/* One unit of work: (sequence, head) u = s * A + h, on thread `thread`'s scratch. */
typedef void (*att_unit_fn)(const att_args *a, int32_t u, int32_t thread);

struct att_args {
    float *out;
    const float *qkv;
    const int32_t *seq_off;
    const float *rel_bias;
    int32_t S, H, A, R;
    const sembed__exec *ex;
    att_unit_fn unit;
};

/* One (sequence, head) of an attention task: its rows, and its thread's scratch: Kᵀ (D, Lp)
 * (Lp = L rounded up to `lanes`, the columns past L zero; filled by fill_kt or, with AVX-512,
 * kt_512), then scores (ATT_ROWS, Lp) and an output row (D). */
typedef struct att_head {
    const att_args *a;
    int32_t h, H, D, t0, L, Lp;
    int64_t ld;
    float scale;
    float *kt, *sc, *o;
    const float *bias; /* the head's relative position bias at distance 0, or NULL */
} att_head;

static att_head att_head_at(const att_args *a, int32_t task, int32_t thread, int32_t lanes) {
    att_head g = {.a = a, .h = task % a->A, .H = a->H, .D = a->H / a->A};
    const int32_t s = task / a->A, R = a->R;
    g.t0 = a->seq_off[s];
    g.L = a->seq_off[s + 1] - g.t0;
    g.Lp = (g.L + lanes - 1) / lanes * lanes;
    g.ld = 3 * (int64_t)g.H;
    g.scale = 1.0f / sqrtf((float)g.D);
    const int64_t per_thread = a->ex->scratch_floats / sembed__pool_threads(a->ex->pool);
    SEMBED_ASSERT((int64_t)(g.D + ATT_ROWS) * g.Lp + g.D <= per_thread);
    g.kt = a->ex->scratch + (int64_t)thread * per_thread;
    g.sc = g.kt + (int64_t)g.D * g.Lp;
    g.o = g.sc + (int64_t)ATT_ROWS * g.Lp;
    g.bias = a->rel_bias ? a->rel_bias + (int64_t)g.h * (2 * R - 1) + R - 1 : NULL;
    SEMBED_ASSERT(!g.bias || g.L <= R);
    return g;
}

/* Kᵀ (D, Lp) of the head's keys, zero past column L. */
static void fill_kt(const att_head *g) {
    const float *k0 = g->a->qkv + g->t0 * g->ld + g->H + g->h * g->D;
    for (int32_t j = 0; j < g->L; j++)
        for (int32_t d = 0; d < g->D; d++) g->kt[(int64_t)d * g->Lp + j] = k0[j * g->ld + d];
    for (int32_t d = 0; d < g->D; d++)
        for (int32_t j = g->L; j < g->Lp; j++) g->kt[(int64_t)d * g->Lp + j] = 0.0f;
}

/* One (sequence, head): scores = q·Kᵀ by broadcasting each q[d] over a row of Kᵀ (a loop the
 * compiler vectorizes without reassociating: each score still sums d = 0..D-1 in order), then
 * softmax, then out = Σ_j p_j v_j accumulated in j order. Depends only on the sequence. */
static void att_unit(const att_args *args, int32_t u, int32_t thread) {
    const att_head g = att_head_at(args, u, thread, 1);
    fill_kt(&g);
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
/* Kᵀ (D, Lp) for Lp a multiple of 16: 16x16 blocks of K (rows past L and columns past D read as
 * zero) transposed in registers (unpack, shuffle, two 128-bit lane shuffles). */
T512 static void kt_512(const att_head *g) {
    const float *k0 = g->a->qkv + g->t0 * g->ld + g->H + g->h * g->D;
    for (int32_t d0 = 0; d0 < g->D; d0 += 16) {
        const int32_t nd = g->D - d0 < 16 ? g->D - d0 : 16;
        const __mmask16 md = (__mmask16)((1u << nd) - 1);
        for (int32_t j0 = 0; j0 < g->Lp; j0 += 16) {
            __m512 r[16], t[16];
#pragma GCC unroll 16
            for (int k = 0; k < 16; k++)
                r[k] = j0 + k < g->L ? _mm512_maskz_loadu_ps(md, k0 + (j0 + k) * g->ld + d0)
                                     : _mm512_setzero_ps();
#pragma GCC unroll 8
            for (int k = 0; k < 16; k += 2) {
                t[k] = _mm512_unpacklo_ps(r[k], r[k + 1]);
                t[k + 1] = _mm512_unpackhi_ps(r[k], r[k + 1]);
            }
#pragma GCC unroll 4
            for (int k = 0; k < 16; k += 4) {
                r[k] = _mm512_shuffle_ps(t[k], t[k + 2], 0x44);
                r[k + 1] = _mm512_shuffle_ps(t[k], t[k + 2], 0xee);
                r[k + 2] = _mm512_shuffle_ps(t[k + 1], t[k + 3], 0x44);
                r[k + 3] = _mm512_shuffle_ps(t[k + 1], t[k + 3], 0xee);
            }
#pragma GCC unroll 8
            for (int k = 0; k < 8; k++) {
                const int b8 = k / 4 * 8, c = k % 4;
                t[b8 + c] = _mm512_shuffle_f32x4(r[b8 + c], r[b8 + 4 + c], 0x88);
                t[b8 + 4 + c] = _mm512_shuffle_f32x4(r[b8 + c], r[b8 + 4 + c], 0xdd);
            }
#pragma GCC unroll 8
            for (int k = 0; k < 8; k++) {
                r[k] = _mm512_shuffle_f32x4(t[k], t[k + 8], 0x88);
                r[k + 8] = _mm512_shuffle_f32x4(t[k], t[k + 8], 0xdd);
            }
            for (int k = 0; k < nd; k++) _mm512_storeu_ps(g->kt + (int64_t)(d0 + k) * g->Lp + j0, r[k]);
        }
    }
}

/* Query rows i0 .. i0+NR-1 of one (sequence, head) with 16 lanes: scores over j (Kᵀ padded to
 * Lp columns), exp by exp512, the output over d. The NR rows only share loads: each score still
 * sums d = 0..D-1 in order, and each output j = 0..L-1 in order (one FMA chain per lane), so a
 * sequence's result depends on nothing else, and equals that of one row at a time. */
T512 static inline __attribute__((always_inline)) void att_rows_512(const att_head *g,
                                                                    int32_t i0, const int NR) {
    const att_args *a = g->a;
    const int32_t H = g->H, D = g->D, t0 = g->t0, L = g->L, Lp = g->Lp;
    const int64_t ld = g->ld;
    const float *kt = g->kt, *bias = g->bias;
    const __mmask16 last = (__mmask16)(L % 16 ? (1u << (L % 16)) - 1 : 0xffff);
    const float *q[ATT_ROWS];
    float *sc[ATT_ROWS];
    __m512 mx[ATT_ROWS], acc[ATT_ROWS];
#pragma GCC unroll 8
    for (int r = 0; r < NR; r++) {
        q[r] = a->qkv + (t0 + i0 + r) * ld + g->h * D;
        sc[r] = g->sc + (int64_t)r * Lp;
        mx[r] = _mm512_set1_ps(-INFINITY);
    }
    for (int32_t j0 = 0; j0 < Lp; j0 += 16) {
#pragma GCC unroll 8
        for (int r = 0; r < NR; r++) acc[r] = _mm512_setzero_ps();
        for (int32_t d = 0; d < D; d++) {
            const __m512 k = _mm512_loadu_ps(kt + (int64_t)d * Lp + j0);
#pragma GCC unroll 8
            for (int r = 0; r < NR; r++) acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(q[r][d]), k, acc[r]);
        }
        const __mmask16 m = j0 + 16 < Lp ? 0xffff : last;
#pragma GCC unroll 8
        for (int r = 0; r < NR; r++) {
            acc[r] = _mm512_mul_ps(acc[r], _mm512_set1_ps(g->scale));
            if (bias) acc[r] = _mm512_add_ps(acc[r], _mm512_maskz_loadu_ps(m, bias + j0 - (i0 + r)));
            _mm512_storeu_ps(sc[r] + j0, acc[r]);
            mx[r] = _mm512_mask_max_ps(mx[r], m, mx[r], acc[r]);
        }
    }
    __m512 inv[ATT_ROWS];
#pragma GCC unroll 8
    for (int r = 0; r < NR; r++) {
        const __m512 vmax = _mm512_set1_ps(_mm512_reduce_max_ps(mx[r]));
        __m512 vsum = _mm512_setzero_ps();
        for (int32_t j0 = 0; j0 < Lp; j0 += 16) {
            const __mmask16 m = j0 + 16 < Lp ? 0xffff : last;
            const __m512 p = _mm512_maskz_mov_ps(m, exp512(_mm512_sub_ps(_mm512_loadu_ps(sc[r] + j0), vmax)));
            _mm512_storeu_ps(sc[r] + j0, p);
            vsum = _mm512_add_ps(vsum, p);
        }
        inv[r] = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(vsum));
    }
    const float *v0 = a->qkv + t0 * ld + 2 * H + g->h * D;
    for (int32_t d0 = 0; d0 < D; d0 += 16) {
        const __mmask16 m = D - d0 >= 16 ? 0xffff : (__mmask16)((1u << (D - d0)) - 1);
#pragma GCC unroll 8
        for (int r = 0; r < NR; r++) acc[r] = _mm512_setzero_ps();
        for (int32_t j = 0; j < L; j++) {
            const __m512 vj = _mm512_maskz_loadu_ps(m, v0 + j * ld + d0);
#pragma GCC unroll 8
            for (int r = 0; r < NR; r++) acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(sc[r][j]), vj, acc[r]);
        }
#pragma GCC unroll 8
        for (int r = 0; r < NR; r++)
            _mm512_mask_storeu_ps(a->out + (int64_t)(t0 + i0 + r) * H + g->h * D + d0, m,
                                  _mm512_mul_ps(acc[r], inv[r]));
    }
}

T512 static void att_unit_512(const att_args *a, int32_t u, int32_t thread) {
    const att_head g = att_head_at(a, u, thread, 16);
    kt_512(&g);
    int32_t i = 0;
    for (; i + ATT_ROWS <= g.L; i += ATT_ROWS) att_rows_512(&g, i, ATT_ROWS);
    if (i + 4 <= g.L) att_rows_512(&g, i, 4), i += 4;
    for (; i < g.L; i++) att_rows_512(&g, i, 1);
}

/* att_rows_512 on 8 lanes (Kᵀ padded to Lp = L rounded up to 8), exp by exp256: the same sums
 * in the same orders, so a sequence's result again depends on nothing else. */
T256 static inline __attribute__((always_inline)) void att_rows_256(const att_head *g,
                                                                    int32_t i0, const int NR) {
    const att_args *a = g->a;
    const int32_t H = g->H, D = g->D, t0 = g->t0, L = g->L, Lp = g->Lp;
    const int64_t ld = g->ld;
    const float *kt = g->kt, *bias = g->bias;
    const __m256i last = mask256(L - (Lp - 8)), all = mask256(8);
    const __m256 ninf = _mm256_set1_ps(-INFINITY);
    const float *q[ATT_ROWS];
    float *sc[ATT_ROWS];
    __m256 mx[ATT_ROWS], acc[ATT_ROWS];
#pragma GCC unroll 8
    for (int r = 0; r < NR; r++) {
        q[r] = a->qkv + (t0 + i0 + r) * ld + g->h * D;
        sc[r] = g->sc + (int64_t)r * Lp;
        mx[r] = ninf;
    }
    for (int32_t j0 = 0; j0 < Lp; j0 += 8) {
#pragma GCC unroll 8
        for (int r = 0; r < NR; r++) acc[r] = _mm256_setzero_ps();
        for (int32_t d = 0; d < D; d++) {
            const __m256 k = _mm256_loadu_ps(kt + (int64_t)d * Lp + j0);
#pragma GCC unroll 8
            for (int r = 0; r < NR; r++) acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(q[r][d]), k, acc[r]);
        }
        const __m256i m = j0 + 8 < Lp ? all : last;
#pragma GCC unroll 8
        for (int r = 0; r < NR; r++) {
            acc[r] = _mm256_mul_ps(acc[r], _mm256_set1_ps(g->scale));
            /* the masked load reads no bias past j = L - 1 (it may lie past the table) */
            if (bias) acc[r] = _mm256_add_ps(acc[r], _mm256_maskload_ps(bias + j0 - (i0 + r), m));
            _mm256_storeu_ps(sc[r] + j0, acc[r]);
            mx[r] = _mm256_max_ps(mx[r], _mm256_blendv_ps(ninf, acc[r], _mm256_castsi256_ps(m)));
        }
    }
    __m256 inv[ATT_ROWS];
#pragma GCC unroll 8
    for (int r = 0; r < NR; r++) {
        const __m256 vmax = _mm256_set1_ps(hmax256(mx[r]));
        __m256 vsum = _mm256_setzero_ps();
        for (int32_t j0 = 0; j0 < Lp; j0 += 8) {
            const __m256i m = j0 + 8 < Lp ? all : last;
            const __m256 p = _mm256_and_ps(_mm256_castsi256_ps(m),
                                           exp256(_mm256_sub_ps(_mm256_loadu_ps(sc[r] + j0), vmax)));
            _mm256_storeu_ps(sc[r] + j0, p);
            vsum = _mm256_add_ps(vsum, p);
        }
        inv[r] = _mm256_set1_ps(1.0f / hsum256(vsum));
    }
    const float *v0 = a->qkv + t0 * ld + 2 * H + g->h * D;
    for (int32_t d0 = 0; d0 < D; d0 += 8) {
        const __m256i m = mask256(D - d0);
#pragma GCC unroll 8
        for (int r = 0; r < NR; r++) acc[r] = _mm256_setzero_ps();
        for (int32_t j = 0; j < L; j++) {
            const __m256 vj = _mm256_maskload_ps(v0 + j * ld + d0, m);
#pragma GCC unroll 8
            for (int r = 0; r < NR; r++) acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(sc[r][j]), vj, acc[r]);
        }
#pragma GCC unroll 8
        for (int r = 0; r < NR; r++)
            _mm256_maskstore_ps(a->out + (int64_t)(t0 + i0 + r) * H + g->h * D + d0, m,
                                _mm256_mul_ps(acc[r], inv[r]));
    }
}

T256 static void att_unit_256(const att_args *a, int32_t u, int32_t thread) {
    const att_head g = att_head_at(a, u, thread, 8);
    fill_kt(&g);
    int32_t i = 0;
    for (; i + ATT_ROWS <= g.L; i += ATT_ROWS) att_rows_256(&g, i, ATT_ROWS);
    if (i + 4 <= g.L) att_rows_256(&g, i, 4), i += 4;
    for (; i < g.L; i++) att_rows_256(&g, i, 1);
}
#endif

/* Units task * U / n_tasks .. (task + 1) * U / n_tasks - 1 of the U = S * A. */
static void att_task(void *v, int32_t task, int32_t n_tasks, int32_t thread) {
    const att_args *a = v;
    const int64_t U = (int64_t)a->S * a->A;
    for (int64_t u = U * task / n_tasks; u < U * (task + 1) / n_tasks; u++) a->unit(a, (int32_t)u, thread);
}

static void cpu_attention(float *out, const float *qkv, const int32_t *seq_off,
                          const float *rel_bias, int32_t S, int32_t H, int32_t A, int32_t R,
                          const sembed__exec *ex) {
    att_args a = {out, qkv, seq_off, rel_bias, S, H, A, R, ex, att_unit};
#ifdef HAVE_X86
    if (sembed__cpu_isa_get()->avx512)
        a.unit = att_unit_512;
    else if (sembed__cpu_isa_get()->avx2)
        a.unit = att_unit_256;
#endif
    /* A batch: a task per (sequence, head), claimed as threads come free (sequences differ in
     * length). One sequence: its heads are equal work, so one task per thread, of contiguous
     * heads: each thread then writes its own columns of out (bge-small query of 14 tokens,
     * int8, 2 threads: p50 1.22 ms with 12 tasks, 1.16 with 2, 1.20 on one thread). */
    const int32_t nt = sembed__pool_threads(ex->pool);
    sembed__pool_run(ex->pool, att_task, &a, S == 1 && A > nt ? nt : S * A);
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
