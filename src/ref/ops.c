/* ref/ops.c — the reference backend: every op of backend.h as plain scalar C, one thread, sums
 * in double. It is the oracle the fast backends are tested against, not a fast path.
 *
 * Dimension letters as in backend.h: T tokens, S sequences, H hidden, A heads, D head size,
 * M/N/K GEMM sizes, R relative-position reach, F pooled features. */
#include "backend.h"

#include <math.h>

int32_t sembed__mpnet_bucket(int32_t rel, int32_t num_buckets, int32_t max_distance) {
    /* transformers:  n = -rel; nb //= 2; ret = (n < 0) * nb; n = |n|; max_exact = nb // 2;
     * large = max_exact + int(log(float(n) / max_exact) / log(max_distance / max_exact)
     *                         * (nb - max_exact)), capped at nb - 1.
     * torch does the log arithmetic in float32; so do we (tests/data/mpnet/rel_buckets.txt). */
    int32_t ret = 0, n = -rel, nb = num_buckets / 2;
    if (n < 0) ret += nb;
    if (n < 0) n = -n;
    int32_t max_exact = nb / 2;
    if (n < max_exact) return ret + n;
    float scale = (float)log((double)max_distance / (double)max_exact);
    float v = logf((float)n / (float)max_exact) / scale * (float)(nb - max_exact);
    int32_t large = max_exact + (int32_t)v;
    if (large > nb - 1) large = nb - 1;
    return ret + large;
}

static int64_t ref_scratch_floats(int32_t max_len, int32_t head_dim, int32_t min_dim,
                                  int32_t max_dim, int32_t n_threads) {
    (void)head_dim, (void)min_dim, (void)n_threads;
    /* one row of attention scores; four rows of a prepared GEMM (int8 and float) */
    return max_len > 4 * (int64_t)max_dim ? max_len : 4 * (int64_t)max_dim;
}

/* out (H) = LayerNorm(v (H)) * gamma + beta, statistics in double. */
static void layer_norm_row(float *out, const float *v, const float *gamma, const float *beta,
                           int32_t H, float eps) {
    double mean = 0, var = 0;
    for (int32_t i = 0; i < H; i++) mean += v[i];
    mean /= H;
    for (int32_t i = 0; i < H; i++) var += ((double)v[i] - mean) * ((double)v[i] - mean);
    var /= H;
    double rstd = 1.0 / sqrt(var + (double)eps);
    for (int32_t i = 0; i < H; i++)
        out[i] = (float)(((double)v[i] - mean) * rstd) * gamma[i] + beta[i];
}

static void ref_embed_ln(float *out, const int32_t *ids, const int32_t *pos_ids,
                         const int32_t *type_ids, const float *word, const float *pos,
                         const float *type, const float *gamma, const float *beta, int64_t T,
                         int32_t H, float eps, const sembed__exec *ex) {
    (void)ex;
    for (int64_t t = 0; t < T; t++) {
        float *o = out + t * H;
        const float *w = word + (int64_t)ids[t] * H;
        const float *p = pos + (int64_t)pos_ids[t] * H;
        const float *y = type ? type + (int64_t)(type_ids ? type_ids[t] : 0) * H : NULL;
        for (int32_t i = 0; i < H; i++) o[i] = (y ? w[i] + y[i] : w[i]) + p[i];
        layer_norm_row(o, o, gamma, beta, H, eps);
    }
}

static void ref_gemm_bias(float *y, const float *x, const float *w, const float *b, int64_t M,
                          int32_t N, int32_t K, const sembed__exec *ex) {
    (void)ex;
    for (int64_t m = 0; m < M; m++)
        for (int32_t n = 0; n < N; n++) {
            double acc = 0;
            for (int32_t k = 0; k < K; k++) acc += (double)x[m * K + k] * w[(int64_t)n * K + k];
            y[m * N + n] = (float)(acc + (b ? b[n] : 0.0));
        }
}

static void ref_attention(float *out, const float *qkv, const int32_t *seq_off,
                          const float *rel_bias, int32_t S, int32_t H, int32_t A, int32_t R,
                          const sembed__exec *ex) {
    const int32_t D = H / A;
    const int64_t ld = 3 * (int64_t)H;
    const double scale = 1.0 / sqrt((double)D);
    float *p = ex->scratch; /* (L) scores of one query row */
    for (int32_t s = 0; s < S; s++) {
        const int32_t t0 = seq_off[s], L = seq_off[s + 1] - seq_off[s];
        SEMBED_ASSERT(ex->scratch_floats >= L);
        SEMBED_ASSERT(!rel_bias || L <= R);
        for (int32_t h = 0; h < A; h++) {
            for (int32_t i = 0; i < L; i++) {
                const float *q = qkv + (t0 + i) * ld + h * D;
                float mx = -INFINITY;
                for (int32_t j = 0; j < L; j++) {
                    const float *k = qkv + (t0 + j) * ld + H + h * D;
                    double dot = 0;
                    for (int32_t d = 0; d < D; d++) dot += (double)q[d] * k[d];
                    double sc = dot * scale;
                    if (rel_bias) sc += rel_bias[(int64_t)h * (2 * R - 1) + (j - i) + R - 1];
                    p[j] = (float)sc;
                    if (p[j] > mx) mx = p[j];
                }
                double sum = 0;
                for (int32_t j = 0; j < L; j++) {
                    p[j] = expf(p[j] - mx);
                    sum += p[j];
                }
                float *o = out + (int64_t)(t0 + i) * H + h * D;
                for (int32_t d = 0; d < D; d++) {
                    double acc = 0;
                    for (int32_t j = 0; j < L; j++)
                        acc += (double)p[j] * qkv[(t0 + j) * ld + 2 * H + h * D + d];
                    o[d] = (float)(acc / sum);
                }
            }
        }
    }
}

static void ref_add_ln(float *out, const float *a, const float *b, const float *gamma,
                       const float *beta, int64_t T, int32_t H, float eps,
                       const sembed__exec *ex) {
    (void)ex;
    for (int64_t t = 0; t < T; t++) {
        float *o = out + t * H;
        for (int32_t i = 0; i < H; i++) o[i] = a[t * H + i] + b[t * H + i];
        layer_norm_row(o, o, gamma, beta, H, eps);
    }
}

static float act1(float x, sembed__act_kind kind) {
    switch (kind) {
    case SEMBED__ACTK_IDENTITY: return x;
    case SEMBED__ACTK_GELU: return 0.5f * x * (1.0f + erff(x * (float)M_SQRT1_2));
    case SEMBED__ACTK_GELU_TANH:
        return 0.5f * x *
               (1.0f + tanhf((float)sqrt(2.0 / M_PI) * (x + 0.044715f * x * x * x)));
    case SEMBED__ACTK_RELU: return x > 0 ? x : 0.0f;
    case SEMBED__ACTK_TANH: return tanhf(x);
    case SEMBED__ACTK_SIGMOID: return 1.0f / (1.0f + expf(-x));
    }
    SEMBED_ASSERT(!"unknown activation");
    return x;
}

static void ref_act(float *x, int64_t n, sembed__act_kind kind, const sembed__exec *ex) {
    (void)ex;
    for (int64_t i = 0; i < n; i++) x[i] = act1(x[i], kind);
}

static void ref_pool(float *out, const float *x, const int32_t *seq_off, const int32_t *skip,
                     const sembed__pool_kind *kinds, int32_t n_kinds, int32_t S, int32_t H,
                     const sembed__exec *ex) {
    (void)ex;
    const int64_t F = (int64_t)n_kinds * H;
    for (int32_t s = 0; s < S; s++) {
        const int32_t t0 = seq_off[s], L = seq_off[s + 1] - t0;
        const int32_t k0 = skip ? (skip[s] < L ? skip[s] : L) : 0;
        for (int32_t c = 0; c < n_kinds; c++) {
            float *o = out + s * F + (int64_t)c * H;
            for (int32_t i = 0; i < H; i++) {
                double acc = 0, wsum = 0;
                float mx = -1e9f;
                switch (kinds[c]) {
                case SEMBED__POOLK_CLS: o[i] = x[(int64_t)t0 * H + i]; break;
                case SEMBED__POOLK_LAST: o[i] = x[(int64_t)(t0 + L - 1) * H + i]; break;
                case SEMBED__POOLK_MAX:
                    for (int32_t j = k0; j < L; j++)
                        if (x[(int64_t)(t0 + j) * H + i] > mx) mx = x[(int64_t)(t0 + j) * H + i];
                    o[i] = mx;
                    break;
                case SEMBED__POOLK_MEAN:
                case SEMBED__POOLK_MEAN_SQRT_LEN:
                    for (int32_t j = k0; j < L; j++) acc += x[(int64_t)(t0 + j) * H + i];
                    wsum = L - k0 > 0 ? L - k0 : 1e-9;
                    o[i] = (float)(kinds[c] == SEMBED__POOLK_MEAN ? acc / wsum
                                                                  : acc / sqrt(wsum));
                    break;
                case SEMBED__POOLK_WEIGHTED_MEAN:
                    for (int32_t j = k0; j < L; j++) {
                        acc += (double)(j + 1) * x[(int64_t)(t0 + j) * H + i];
                        wsum += j + 1;
                    }
                    o[i] = (float)(acc / (wsum > 0 ? wsum : 1e-9));
                    break;
                }
            }
        }
    }
}

static void ref_normalize(float *x, int32_t S, int32_t F, const sembed__exec *ex) {
    (void)ex;
    for (int32_t s = 0; s < S; s++) {
        float *v = x + (int64_t)s * F;
        double ss = 0;
        for (int32_t i = 0; i < F; i++) ss += (double)v[i] * v[i];
        double n = sqrt(ss);
        if (n < 1e-12) n = 1e-12;
        for (int32_t i = 0; i < F; i++) v[i] = (float)(v[i] / n);
    }
}

/* Symmetric int8 of v (n): q = round-to-nearest-even(v * (127 / max|v|)), returns the scale
 * max|v| / 127 (0 for an all-zero v, whose q are then 0). */
static float row_amax(const float *v, int32_t n) {
    float amax = 0;
    for (int32_t i = 0; i < n; i++) amax = fabsf(v[i]) > amax ? fabsf(v[i]) : amax;
    return amax;
}

/* quantize_row with amax = max|v| given. */
static float quantize_amax(int32_t *q, const float *v, int32_t n, float amax) {
    if (amax == 0) {
        for (int32_t i = 0; i < n; i++) q[i] = 0;
        return 0;
    }
    const float inv = 127.0f / amax;
    for (int32_t i = 0; i < n; i++) q[i] = (int32_t)nearbyintf(v[i] * inv);
    return amax / 127.0f;
}

static float quantize_row(int32_t *q, const float *v, int32_t n) {
    return quantize_amax(q, v, n, row_amax(v, n));
}

/* quantize_row, and the remainder's digit: q2 = clamp(rne((v - q·s) · 32258/max|v|), ±127),
 * *s2 = max|v| / 32258 (32258 = 127·254; SEMBED__PRECISION_INT8X2). Returns s. */
static float quantize_row2(int32_t *q, int32_t *q2, float *s2, const float *v, int32_t n) {
    const float amax = row_amax(v, n), s = quantize_amax(q, v, n, amax);
    *s2 = amax / 32258.0f;
    for (int32_t i = 0; i < n; i++) {
        const float r = amax == 0 ? 0 : nearbyintf(fmaf(-(float)q[i], s, v[i]) * (32258.0f / amax));
        q2[i] = r > 127 ? 127 : r < -127 ? -127 : (int32_t)r;
    }
    return s;
}

/* One uint8 digit with a zero point (SEMBED__PRECISION_INT8U): returns s = (hi - lo)/255 and
 * writes q[i] = u - z, with lo = min(0, min v), hi = max(0, max v), inv = 255/(hi - lo),
 * z = rne(-lo·inv), u = clamp(rne(v·inv) + z, 0, 255); a zero row gives 0s. */
static float quantize_row_u8(int32_t *q, const float *v, int32_t n) {
    float lo = 0, hi = 0;
    for (int32_t i = 0; i < n; i++) lo = v[i] < lo ? v[i] : lo, hi = v[i] > hi ? v[i] : hi;
    if (hi == lo) {
        for (int32_t i = 0; i < n; i++) q[i] = 0;
        return 0;
    }
    const float inv = 255.0f / (hi - lo);
    const int32_t z = (int32_t)nearbyintf(-lo * inv);
    for (int32_t i = 0; i < n; i++) {
        const int32_t u = (int32_t)nearbyintf(v[i] * inv) + z;
        q[i] = (u < 0 ? 0 : u > 255 ? 255 : u) - z;
    }
    return (hi - lo) / 255.0f;
}

/* SEMBED__PRECISION_INT8A's second digit for the row v whose uint8 digit (less its zero point)
 * is q with scale s: e = fmaf(-q, s, v); when Σe² > TAU2·Σv² (double, lanes k mod 8, added
 * pairwise) q2 = rne(e·127/max|e|) and *s2 = max|e|/127, else q2 = 0 and *s2 = 0. */
static void second_digit(int32_t *q2, float *s2, const int32_t *q, float s, const float *v,
                         int32_t n) {
    double e2[8] = {0}, v2[8] = {0};
    float amax = 0;
    for (int32_t i = 0; i < n; i++) {
        const float e = fmaf(-(float)q[i], s, v[i]);
        e2[i % 8] += (double)e * e;
        v2[i % 8] += (double)v[i] * v[i];
        amax = fabsf(e) > amax ? fabsf(e) : amax;
    }
    const double E = ((e2[0] + e2[1]) + (e2[2] + e2[3])) + ((e2[4] + e2[5]) + (e2[6] + e2[7]));
    const double V = ((v2[0] + v2[1]) + (v2[2] + v2[3])) + ((v2[4] + v2[5]) + (v2[6] + v2[7]));
    *s2 = 0;
    for (int32_t i = 0; i < n; i++) q2[i] = 0;
    if (!(E > SEMBED__INT8A_TAU2 * V) || amax == 0) return;
    const float inv = 127.0f / amax;
    for (int32_t i = 0; i < n; i++) q2[i] = (int32_t)nearbyintf(fmaf(-(float)q[i], s, v[i]) * inv);
    *s2 = amax / 127.0f;
}

/* SEMBED__INT8A's outlier channels of the row v (n): those with v_i² > THETA2·Σv²/n (Σ in double,
 * lanes i mod 8 added pairwise), at most MAXO, the first in i order; into oi, returns how many. */
static int32_t outlier_channels(int32_t *oi, const float *v, int32_t n) {
    double v2[8] = {0};
    for (int32_t i = 0; i < n; i++) v2[i % 8] += (double)v[i] * v[i];
    const double V = ((v2[0] + v2[1]) + (v2[2] + v2[3])) + ((v2[4] + v2[5]) + (v2[6] + v2[7]));
    const double t = SEMBED__INT8A_THETA2 * V / n;
    int32_t c = 0;
    for (int32_t i = 0; i < n && c < SEMBED__INT8A_MAXO; i++)
        if ((double)v[i] * v[i] > t) oi[c++] = i;
    return c;
}

/* The scratch holds three rows of K int32: x's row (its two digits) and w's row, quantized one
 * at a time. */
static void gemm_prep_only(float *y, const float *x, const sembed__wprep *p, int64_t M,
                           const sembed__exec *ex) {
    const float *w, *b;
    int32_t N, K;
    sembed__wprep_source(p, &w, &b, &N, &K);
    if (sembed__wprep_precision(p) == SEMBED_PRECISION_FP32 && !sembed__wprep_split(p)) {
        ref_gemm_bias(y, x, w, b, M, N, K, ex);
        return;
    }
    if (sembed__wprep_split(p)) { /* src/cpu/quant.c split_amx */
        SEMBED_ASSERT(ex->scratch_floats >= 4 * (int64_t)K);
        int32_t *qx = (int32_t *)ex->scratch, *qx2 = qx + K, *qw = qx2 + K;
        float *wl = (float *)(qw + K);
        for (int64_t m = 0; m < M; m++) {
            float sx2 = 0;
            const float sx = quantize_row2(qx, qx2, &sx2, x + m * K, K);
            for (int32_t n = 0; n < N; n++) {
                const float *wn = w + (int64_t)n * K;
                for (int32_t k = 0; k < K; k++) wl[k] = wn[k] - sembed__bf16_round(wn[k]);
                const float sl = quantize_row(qw, wl, K);
                double acc = 0;
                int64_t a1 = 0, a2 = 0;
                for (int32_t k = 0; k < K; k++) {
                    const float xv = x[m * K + k];
                    const double wh = sembed__bf16_round(wn[k]);
                    acc += (double)sembed__bf16_round(xv) * wh + (double)sembed__bf16_lo(xv) * wh;
                    a1 += (int64_t)qx[k] * qw[k];
                    a2 += (int64_t)qx2[k] * qw[k];
                }
                const float c = fmaf((float)a2, sx2 * sl, (float)(acc + (b ? b[n] : 0.0)));
                y[m * N + n] = fmaf((float)a1, sx * sl, c);
            }
        }
        return;
    }
    if (sembed__wprep_precision(p) == SEMBED_PRECISION_BF16) {
        for (int64_t m = 0; m < M; m++)
            for (int32_t n = 0; n < N; n++) {
                double acc = 0;
                for (int32_t k = 0; k < K; k++)
                    acc += (double)sembed__bf16_round(x[m * K + k]) *
                           sembed__bf16_round(w[(int64_t)n * K + k]);
                y[m * N + n] = (float)(acc + (b ? b[n] : 0.0));
            }
        return;
    }
    SEMBED_ASSERT(sembed__wprep_precision(p) == SEMBED_PRECISION_INT8);
    const bool two = sembed__wprep_digits(p) == 2, adapt = sembed__wprep_adapt(p);
    SEMBED_ASSERT(ex->scratch_floats >= 4 * (int64_t)K);
    int32_t *qx = (int32_t *)ex->scratch, *qw = qx + K, *qx2 = qw + K;
    float *xt = (float *)(qx2 + K); /* INT8A: the row less its outlier channels */
    for (int64_t m = 0; m < M; m++) {
        float sx2 = 0;
        const float *xm = x + m * K, *xq = xm;
        int32_t oi[SEMBED__INT8A_MAXO], no = 0;
        if (adapt) {
            no = outlier_channels(oi, xm, K);
            memcpy(xt, xm, sizeof(float) * (size_t)K);
            for (int32_t o = 0; o < no; o++) xt[oi[o]] = 0;
            xq = xt;
        }
        const float sx = two ? quantize_row2(qx, qx2, &sx2, xq, K)
                         : sembed__wprep_asym(p) ? quantize_row_u8(qx, xq, K)
                                                 : quantize_row(qx, xq, K);
        if (adapt) second_digit(qx2, &sx2, qx, sx, xq, K);
        for (int32_t n = 0; n < N; n++) {
            const float sw = quantize_row(qw, w + (int64_t)n * K, K);
            int64_t acc = 0, acc2 = 0;
            for (int32_t k = 0; k < K; k++) acc += (int64_t)qx[k] * qw[k];
            for (int32_t k = 0; k < K && (two || sx2 > 0); k++) acc2 += (int64_t)qx2[k] * qw[k];
            float c = b ? b[n] : 0.0f;
            if (two) c = fmaf((float)acc2, sx2 * sw, c);
            y[m * N + n] = fmaf((float)acc, sx * sw, c);
            if (adapt && sx2 > 0) y[m * N + n] += fmaf((float)acc2, sx2 * sw, 0.0f);
            if (no > 0) { /* the outliers exact, times the weights' int8 values */
                float t = 0;
                for (int32_t o = 0; o < no; o++) t = fmaf(xm[oi[o]], (float)qw[oi[o]], t);
                y[m * N + n] = fmaf(t, sw, y[m * N + n]);
            }
        }
    }
}

static void ref_gemm_prep(float *y, const float *x, const sembed__wprep *p, int64_t M,
                          sembed__act_kind act, const sembed__exec *ex) {
    gemm_prep_only(y, x, p, M, ex);
    const float *w, *b;
    int32_t N, K;
    sembed__wprep_source(p, &w, &b, &N, &K);
    if (act != SEMBED__ACTK_IDENTITY) ref_act(y, M * N, act, ex);
}

const sembed__backend sembed__backend_ref = {
    .name = "ref",
    .scratch_floats = ref_scratch_floats,
    .embed_ln = ref_embed_ln,
    .gemm_bias = ref_gemm_bias,
    .attention = ref_attention,
    .add_ln = ref_add_ln,
    .act = ref_act,
    .pool = ref_pool,
    .normalize = ref_normalize,
    .gemm_prep = ref_gemm_prep,
};
