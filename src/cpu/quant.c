/* cpu/quant.c — GEMMs on weights prepared at context creation: FP32 packed for an AVX-512 or
 * AVX2 kernel, INT8 (weights per output channel, activations per row at run time; AMX int8
 * tiles, AVX-512 VNNI, or plain C) and BF16 (AMX bf16 tiles, AVX512_BF16). Not OpenBLAS's
 * gemm_bias (ops.c) and not the reference (src/ref/ops.c ref_gemm_prep, which these match: bit for bit
 * for INT8).
 *
 * Dimension letters: M rows of x and y, N output channels, K inputs; Np = N rounded up to 32
 * (two 16-column blocks, an AMX pair), Kp = K rounded up to 64 (one AMX tile row).
 *
 * Packed weights, per 16-column block nb (contiguous, Kp*16 elements):
 *   FP32: (Kp, 16) floats: w[nb*16 + j, k] at [k][j];
 *   INT8: (Kp/4, 16, 4) bytes: w[nb*16 + j, 4*r + i] at [r][j][i] — a VNNI operand row and an
 *         AMX B-tile row (16 rows of 64 bytes per 64 k);
 *   BF16: (Kp/2, 16, 2) bf16 values, the same with pairs (16 rows of 64 bytes per 32 k).
 * Padding columns and k are zero (and padding activations are zero), so they add nothing.
 *
 * Batch invariance: INT8 sums are exact integers, so the AMX path for full 16-row tiles and the
 * VNNI path for the rest give identical results. BF16 pads a partial tile with zero rows instead,
 * so every row takes the AMX path (or every row the AVX512_BF16 one). */
#include "backend.h"

#include <math.h>

#if defined(__x86_64__)
#include <immintrin.h>
#define HAVE_X86 1
#endif

#define MB 64 /* rows of x quantized together (one panel) */
/* Floats of a thread's tile buffer: an INT8X2 run's sums, 2·MB run rows (a panel's two digits)
 * x 32 columns; split_amx takes two 32 x 32 (fp32, then int32) of it. */
#define CBUF_RUN (2 * MB * 32)

struct sembed__wprep {
    int32_t N, K, Np, Kp, precision;
    int32_t digits;     /* INT8: int8 digits per activation (1, or 2: SEMBED__PRECISION_INT8X2) */
    bool asym;          /* INT8: one uint8 digit with a zero point (SEMBED__PRECISION_INT8U) */
    bool adapt;         /* INT8: asym, and a second digit for rows that need it (_INT8A) */
    bool split;         /* FP32 as a bf16 hi part and an int8 lo part, for AMX (split_amx) */
    const float *w, *b; /* the fp32 source (for the reference) */
    void *packed;       /* INT8: int8_t (Np/16, Kp/4, 16, 4); BF16: uint16_t (Np/16, Kp/2, 16, 2);
                         * FP32 split: per pair of 16-column blocks (96 Kp bytes, one stream),
                         * the hi parts' bf16 tiles (per 32 k: block 0's, block 1's), then the
                         * lo parts' int8 tiles (per 64 k: block 0's, block 1's); lo = w - hi,
                         * quantized per output channel (scale). split_hi / split_lo */
    float *scale;       /* (Np) INT8 per-channel scales; 0 for padding */
    int32_t *comp;      /* (Np) INT8: 128 * Σ_k q[n, k], for VNNI's unsigned x operand */
    float *bias;        /* (Np) b or 0 */
    float *zero_bias;   /* (Np) zeros: INT8A's second digits' sums, added to y (compute_panel) */
};

float sembed__bf16_round(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) {
        u |= 0x00400000u; /* a quiet NaN stays a NaN */
    } else {
        u += 0x7fffu + ((u >> 16) & 1u);
    }
    u &= 0xffff0000u;
    memcpy(&x, &u, 4);
    return x;
}

static uint16_t bf16_bits(float x) {
    float r = sembed__bf16_round(x);
    uint32_t u;
    memcpy(&u, &r, 4);
    return (uint16_t)(u >> 16);
}

/* Byte offsets in a split preparation of column n's hi (bf16) and lo (int8) parts at k. */
static inline int64_t split_hi(int64_t Kp, int32_t n, int32_t k) {
    return (int64_t)(n / 32) * 96 * Kp + (int64_t)(k / 32) * 2048 + (n / 16 % 2) * 1024 +
           (k % 32 / 2) * 64 + (n % 16) * 4 + (k % 2) * 2;
}
static inline int64_t split_lo(int64_t Kp, int32_t n, int32_t k) {
    return (int64_t)(n / 32) * 96 * Kp + 64 * Kp + (int64_t)(k / 64) * 2048 + (n / 16 % 2) * 1024 +
           (k % 64 / 4) * 64 + (n % 16) * 4 + k % 4;
}

int32_t sembed__wprep_precision(const sembed__wprep *p) { return p->precision; }
int32_t sembed__wprep_digits(const sembed__wprep *p) { return p->digits; }
bool sembed__wprep_asym(const sembed__wprep *p) { return p->asym; }
bool sembed__wprep_adapt(const sembed__wprep *p) { return p->adapt; }
bool sembed__wprep_split(const sembed__wprep *p) { return p->split; }

float sembed__bf16_lo(float x) { return sembed__bf16_round(x - sembed__bf16_round(x)); }

/* Measured on all-MiniLM-L6-v2 over 1,500 mixed passages and 300 queries (bench/cpu_peers.py's
 * check): all four GEMMs in int8 gave a min cosine to fp32 of 0.9930 and a top-10 overlap of
 * 0.936; qkv in bf16 0.9964 / 0.957; qkv and FFN out in bf16 0.9980 / 0.969; all bf16 0.99996.
 * Simulated over 400 golden texts (torch, per GEMM): the error is the activations' (LayerNorm
 * outputs with outlier channels into qkv and FFN in, GELU's tail into FFN out); int8 weights
 * with activations in two int8 digits (INT8X2) for those three and plain int8 for attention
 * out: min cosine 0.99646, against 0.99566 for bf16 qkv / FFN out — at one byte per weight
 * instead of two, and the same exact integer sums on every CPU. */
int32_t sembed__wprep_choose(int32_t precision, int32_t which, int32_t layer) {
    const sembed__cpu_isa *isa = sembed__cpu_isa_get();
    /* fp32: packed weights and our AVX-512 or AVX2 kernel (OpenBLAS repacks the weights on
     * every call, which dominates a query's small GEMMs; with AVX2 only, against OpenBLAS's
     * Haswell kernels at the MiniLM shapes: 1.1-1.5x on 16 rows, even on 2000); without AVX2,
     * OpenBLAS */
    if (precision == SEMBED_PRECISION_FP32 || precision == SEMBED_PRECISION_FP32_STRICT)
        return isa->avx2 ? precision : -1;
    if (precision != SEMBED_PRECISION_INT8) return precision;
    if (isa->amx_int8) return which == 1 ? SEMBED_PRECISION_INT8 : SEMBED__PRECISION_INT8X2;
    /* Without AMX (VNNI or plain C), where the products are the time: the attention output and
     * FFN out take one uint8 digit with a zero point (INT8U; the GELU output into FFN out is
     * nearly all >= -0.17, so the digit spends its range on the positive side), except the
     * first layer's FFN out; qkv and FFN in INT8X2. Over the 617 golden texts, min cosine to
     * sentence-transformers fp32 (test_precision; the bound is 0.995), all-MiniLM-L6-v2 /
     * bge-small: the AMX formats 0.99592 / -; INT8U for both everywhere 0.99493 / 0.99901
     * (the worst text "[SEP]́ [SEP]́"); with the first layer's FFN out INT8X2 0.99549 / 0.99688;
     * the last layer's instead 0.99498. Products per weight 1.92 -> ~1.6; on the Zen 4 VM the
     * MiniLM int8 query 1.04 -> 0.89 ms and batches +13-30% (without the first-layer
     * exception). qkv and FFN in then took INT8A instead of INT8X2: one uint8 digit, and a
     * second only for rows whose first errs by more than 1.5% (SEMBED__INT8A_TAU2): min cosine
     * 0.99559 / 0.99893 (at 2%: 0.99487, 11 MiniLM texts under the bound). The first layer's
     * FFN out then took INT8A too (0.99564 / 0.99871, ~1.5% faster), and INT8A its rows'
     * outlier channels exact (over 4x the row's rms): the rows that take a second digit fell
     * from ~55% to 1-3%, min cosine 0.99531 / 0.99884 (0.99572 / 0.99873 at 3.5x, 3% slower),
     * MiniLM batches +8%. The AMX kernels take no uint8 digits yet, so AMX CPUs keep the
     * formats above. dev/cpu/NOTES.md and dev/cpu/int8_sim.py have the rest. */
    if (which == 3 && layer == 0) return SEMBED__PRECISION_INT8A;
    return which == 0 || which == 2 ? SEMBED__PRECISION_INT8A : SEMBED__PRECISION_INT8U;
}

void sembed__wprep_source(const sembed__wprep *p, const float **w, const float **b, int32_t *N,
                          int32_t *K) {
    *w = p->w, *b = p->b, *N = p->N, *K = p->K;
}

void sembed__wprep_free(sembed__wprep *p) {
    if (!p) return;
    sembed__free(p->packed);
    sembed__free(p->scale);
    sembed__free(p->comp);
    sembed__free(p->bias);
    sembed__free(p->zero_bias);
    sembed__free(p);
}

sembed_status sembed__wprep_new(const float *w, const float *b, int32_t N, int32_t K,
                                int32_t precision, sembed__wprep **out, sembed_error *err) {
    *out = NULL;
    if (precision != SEMBED_PRECISION_FP32 && precision != SEMBED_PRECISION_INT8 &&
        precision != SEMBED_PRECISION_BF16 && precision != SEMBED_PRECISION_FP32_STRICT &&
        precision != SEMBED__PRECISION_INT8X2 && precision != SEMBED__PRECISION_INT8U &&
        precision != SEMBED__PRECISION_INT8A)
        return sembed__err(err, SEMBED_ERR_INVALID_ARG,
                           "precision %d is not fp32 (0), int8 (1), bf16 (2), fp32-strict (3), "
                           "int8x2 (%d), int8u (%d) or int8a (%d)",
                           precision, SEMBED__PRECISION_INT8X2, SEMBED__PRECISION_INT8U,
                           SEMBED__PRECISION_INT8A);
    const bool strict = precision == SEMBED_PRECISION_FP32_STRICT;
    if (strict) precision = SEMBED_PRECISION_FP32;
    const int32_t digits = precision == SEMBED__PRECISION_INT8X2 ? 2 : 1;
    const bool adapt = precision == SEMBED__PRECISION_INT8A;
    const bool asym = precision == SEMBED__PRECISION_INT8U || adapt;
    if (digits == 2 || asym) precision = SEMBED_PRECISION_INT8;
    if (precision == SEMBED_PRECISION_BF16 && !sembed__cpu_isa_get()->avx512_bf16)
        return sembed__err(err, SEMBED_ERR_UNSUPPORTED,
                           "precision bf16 needs a CPU with AVX512_BF16 (this one has none, or "
                           "SEMBED_CPU_ISA hides it)");
    if (N < 1 || K < 1 || K > (1 << 20) || N > (1 << 20))
        return sembed__err(err, SEMBED_ERR_INVALID_ARG, "cannot prepare a %d x %d weight", N, K);
    sembed__wprep *p = sembed__calloc(1, sizeof *p);
    if (!p) return sembed__err(err, SEMBED_ERR_NOMEM, "out of memory preparing weights");
    p->N = N, p->K = K, p->precision = precision, p->digits = digits, p->w = w, p->b = b;
    p->asym = asym, p->adapt = adapt;
    p->split = precision == SEMBED_PRECISION_FP32 && !strict && sembed__cpu_isa_get()->amx_bf16 &&
               sembed__cpu_isa_get()->amx_int8;
    p->Np = (N + 31) / 32 * 32;
    p->Kp = (K + 63) / 64 * 64;
    const size_t elems = (size_t)p->Np * (size_t)p->Kp;
    const size_t esize = precision == SEMBED_PRECISION_INT8 ? 1
                         : precision == SEMBED_PRECISION_BF16 ? 2
                         : p->split ? 3 : 4; /* split: 2 bytes hi + 1 byte lo */
    p->packed = sembed__calloc(elems, esize);
    p->scale = sembed__calloc((size_t)p->Np, sizeof(float));
    p->comp = sembed__calloc((size_t)p->Np, sizeof(int32_t));
    p->bias = sembed__calloc((size_t)p->Np, sizeof(float));
    if (adapt) p->zero_bias = sembed__calloc((size_t)p->Np, sizeof(float));
    if (!p->packed || !p->scale || !p->comp || !p->bias || (adapt && !p->zero_bias)) {
        sembed__wprep_free(p);
        return sembed__err(err, SEMBED_ERR_NOMEM, "out of memory preparing a %d x %d weight", N,
                           K);
    }
    const int64_t Kp = p->Kp;
    for (int32_t n = 0; n < N; n++) {
        const float *wn = w + (int64_t)n * K;
        const int64_t nb = n / 16, j = n % 16;
        p->bias[n] = b ? b[n] : 0.0f;
        if (p->split) { /* lo = wn - bf16(wn) (exact in fp32), as int8 with its row's scale */
            uint8_t *base = p->packed;
            float amax = 0;
            for (int32_t k = 0; k < K; k++) {
                const uint16_t h = bf16_bits(wn[k]);
                memcpy(base + split_hi(Kp, n, k), &h, 2);
                const float l = fabsf(wn[k] - sembed__bf16_round(wn[k]));
                amax = l > amax ? l : amax;
            }
            if (amax > 0) {
                const float inv = 127.0f / amax;
                for (int32_t k = 0; k < K; k++)
                    base[split_lo(Kp, n, k)] = (uint8_t)(int8_t)(int32_t)nearbyintf(
                        (wn[k] - sembed__bf16_round(wn[k])) * inv);
                p->scale[n] = amax / 127.0f;
            }
            continue;
        }
        if (precision == SEMBED_PRECISION_FP32) {
            float *dst = (float *)p->packed + nb * Kp * 16;
            for (int32_t k = 0; k < K; k++) dst[k * 16 + j] = wn[k];
            continue;
        }
        if (precision == SEMBED_PRECISION_BF16) {
            uint16_t *dst = (uint16_t *)p->packed + nb * Kp * 16;
            for (int32_t k = 0; k < K; k++) dst[(k / 2) * 32 + j * 2 + k % 2] = bf16_bits(wn[k]);
            continue;
        }
        /* the reference's quantize_row: the same float operations, so the same integers */
        float amax = 0;
        for (int32_t k = 0; k < K; k++) amax = fabsf(wn[k]) > amax ? fabsf(wn[k]) : amax;
        int8_t *dst = (int8_t *)p->packed + nb * Kp * 16;
        int32_t sum = 0;
        if (amax > 0) {
            const float inv = 127.0f / amax;
            for (int32_t k = 0; k < K; k++) {
                const int32_t q = (int32_t)nearbyintf(wn[k] * inv);
                dst[(k / 4) * 64 + j * 4 + k % 4] = (int8_t)q;
                sum += q;
            }
            p->scale[n] = amax / 127.0f;
        }
        p->comp[n] = 128 * sum;
    }
    *out = p;
    return SEMBED_OK;
}

/* ---- activations ---------------------------------------------------------------------------- */

/* Quantizes rows [0, rows) of x (ldx = K) into q (rows_pad, Kp) int8 and sx (rows_pad);
 * rows rows..rows_pad-1 and columns K..Kp-1 are zero. The reference's quantize_row. With q2
 * (not NULL), the second digit too, into q2 and sx2 (the reference's quantize_row2):
 * q2 = clamp(rne((x - q·sx) · 32258/amax), ±127), sx2 = amax/32258 (32258 = 127·254). */
static void quantize_rows_c(int8_t *q, float *sx, int8_t *q2, float *sx2, const float *x,
                            int32_t rows, int32_t rows_pad, int32_t K, int32_t Kp) {
    for (int32_t r = 0; r < rows_pad; r++) {
        int8_t *qr = q + (int64_t)r * Kp, *q2r = q2 ? q2 + (int64_t)r * Kp : NULL;
        memset(qr, 0, (size_t)Kp);
        sx[r] = 0;
        if (q2) memset(q2r, 0, (size_t)Kp), sx2[r] = 0;
        if (r >= rows) continue;
        const float *v = x + (int64_t)r * K;
        float amax = 0;
        for (int32_t k = 0; k < K; k++) amax = fabsf(v[k]) > amax ? fabsf(v[k]) : amax;
        if (amax == 0) continue;
        const float inv = 127.0f / amax, s = amax / 127.0f;
        for (int32_t k = 0; k < K; k++) qr[k] = (int8_t)(int32_t)nearbyintf(v[k] * inv);
        sx[r] = s;
        if (!q2) continue;
        const float inv2 = 32258.0f / amax;
        for (int32_t k = 0; k < K; k++) {
            const float q2f = nearbyintf(fmaf(-(float)qr[k], s, v[k]) * inv2);
            q2r[k] = (int8_t)(q2f > 127 ? 127 : q2f < -127 ? -127 : (int32_t)q2f);
        }
        sx2[r] = amax / 32258.0f;
    }
}

/* The int8 GEMM of rows [0, rows) of one panel and column blocks [nb0, nb1), plain C:
 * acc = Σ_k q_x q_w exactly, y = fmaf(acc, sx*sw, b), or fmaf(acc, sx*sw, y) with add_y (the
 * first digit of an INT8X2 GEMM over the second's result). */
static void q8_kernel_c(float *y, int32_t ldy, const int8_t *q, const float *sx, const float *zf,
                        int32_t rows, const sembed__wprep *p, int32_t nb0, int32_t nb1,
                        bool add_y) {
    const int8_t *W = p->packed;
    const int64_t Kp = p->Kp;
    for (int32_t r = 0; r < rows; r++)
        for (int32_t n = nb0 * 16; n < nb1 * 16 && n < p->N; n++) {
            const int8_t *wb = W + (int64_t)(n / 16) * Kp * 16 + (n % 16) * 4;
            const int8_t *qr = q + (int64_t)r * Kp;
            int32_t acc = 0;
            if (zf) { /* INT8U: uint8 digits less their zero point */
                const int32_t z = (int32_t)zf[r];
                for (int64_t k = 0; k < Kp; k++)
                    acc += ((int32_t)(uint8_t)qr[k] - z) * wb[(k / 4) * 64 + k % 4];
            } else {
                for (int64_t k = 0; k < Kp; k++) acc += (int32_t)qr[k] * wb[(k / 4) * 64 + k % 4];
            }
            float *yo = y + (int64_t)r * ldy + n;
            *yo = fmaf((float)acc, sx[r] * p->scale[n], add_y ? *yo : p->bias[n]);
        }
}

/* Rows [0, rows) of x as one uint8 digit each with a zero point (SEMBED__PRECISION_INT8U, the
 * reference's quantize_row_u8): lo = min(0, min v), hi = max(0, max v), inv = 255/(hi - lo),
 * s = (hi - lo)/255, z = rne(-lo·inv), u = clamp(rne(v·inv) + z, 0, 255), so v ≈ (u - z)·s; a
 * zero row gives u = z = s = 0. u lands in q (as bytes), s in sx and z in zf (as a float,
 * exact); rows rows..rows_pad-1 and columns K..Kp-1 are zero. */
static void quantize_rows_u8_c(int8_t *q, float *sx, float *zf, const float *x, int32_t rows,
                               int32_t rows_pad, int32_t K, int32_t Kp) {
    for (int32_t r = 0; r < rows_pad; r++) {
        uint8_t *ur = (uint8_t *)q + (int64_t)r * Kp;
        memset(ur, 0, (size_t)Kp);
        sx[r] = 0, zf[r] = 0;
        if (r >= rows) continue;
        const float *v = x + (int64_t)r * K;
        float lo = 0, hi = 0;
        for (int32_t k = 0; k < K; k++) lo = v[k] < lo ? v[k] : lo, hi = v[k] > hi ? v[k] : hi;
        if (hi == lo) continue;
        const float inv = 255.0f / (hi - lo);
        const int32_t z = (int32_t)nearbyintf(-lo * inv);
        for (int32_t k = 0; k < K; k++) {
            const int32_t u = (int32_t)nearbyintf(v[k] * inv) + z;
            ur[k] = (uint8_t)(u < 0 ? 0 : u > 255 ? 255 : u);
        }
        sx[r] = (hi - lo) / 255.0f, zf[r] = (float)z;
    }
}

/* Eight lanes of a sum of squares (k mod 8), added pairwise: INT8A's fixed order. */
static inline double sum8(const double *l) {
    return ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]));
}

/* Whether a row with these sums of squares (e², x²) and max|e| takes INT8A's second digit. */
static inline bool needs_second(const double *e2, const double *v2, float amax) {
    return sum8(e2) > SEMBED__INT8A_TAU2 * sum8(v2) && amax > 0;
}

/* INT8A's second digit for one row of an INT8U panel (uint8 digits ur, scale s, zero point z)
 * from v, as the reference's second_digit: into ar (zeroed), returning its scale, or 0 for
 * none. */
static float adapt_row_c(int8_t *ar, const uint8_t *ur, float s, int32_t z, const float *v,
                         int32_t K) {
    double e2[8] = {0}, v2[8] = {0};
    float amax = 0;
    for (int32_t k = 0; k < K; k++) {
        const float e = fmaf(-(float)((int32_t)ur[k] - z), s, v[k]);
        e2[k % 8] += (double)e * e;
        v2[k % 8] += (double)v[k] * v[k];
        amax = fabsf(e) > amax ? fabsf(e) : amax;
    }
    if (!needs_second(e2, v2, amax)) return 0;
    const float inv = 127.0f / amax;
    for (int32_t k = 0; k < K; k++)
        ar[k] = (int8_t)(int32_t)nearbyintf(fmaf(-(float)((int32_t)ur[k] - z), s, v[k]) * inv);
    return amax / 127.0f;
}

typedef float (*adapt_row_fn)(int8_t *, const uint8_t *, float, int32_t, const float *, int32_t);

/* SEMBED__PRECISION_INT8A: the second digits of rows [0, rows) of an INT8U panel (uint8 digits
 * q, scales sx, zero points zf) from x, by `row` (adapt_row_c, or adapt_row_512 where the CPU
 * has AVX-512: the same digits): into qa (rows_pad, Kp) and sa; a row without one has sa 0 and
 * zero digits, as rows rows..rows_pad-1. */
static void adapt_rows(adapt_row_fn row, int8_t *qa, float *sa, const int8_t *q, const float *sx,
                       const float *zf, const float *x, int32_t rows, int32_t rows_pad,
                       int32_t K, int32_t Kp) {
    for (int32_t r = 0; r < rows_pad; r++) {
        int8_t *ar = qa + (int64_t)r * Kp;
        memset(ar, 0, (size_t)Kp);
        sa[r] = r < rows ? row(ar, (const uint8_t *)q + (int64_t)r * Kp, sx[r], (int32_t)zf[r],
                               x + (int64_t)r * K, K)
                         : 0;
    }
}

/* INT8A's outlier channels of the row v (K), as the reference's outlier_channels: v_k² >
 * THETA2·Σv²/K (Σ in sum8's lanes and order), at most MAXO, the first in k order; into oi,
 * returns how many. */
static int32_t outliers_c(int32_t *oi, const float *v, int32_t K) {
    double v2[8] = {0};
    for (int32_t k = 0; k < K; k++) v2[k % 8] += (double)v[k] * v[k];
    const double t = SEMBED__INT8A_THETA2 * sum8(v2) / K;
    int32_t c = 0;
    for (int32_t k = 0; k < K && c < SEMBED__INT8A_MAXO; k++)
        if ((double)v[k] * v[k] > t) oi[c++] = k;
    return c;
}

typedef int32_t (*outliers_fn)(int32_t *, const float *, int32_t);

#ifdef HAVE_X86
#define T512 __attribute__((target("avx2,fma,avx512f,avx512bw,avx512dq,avx512vl")))
#define TVNNI __attribute__((target("avx2,fma,avx512f,avx512bw,avx512dq,avx512vl,avx512vnni")))
#define TAMX                                                                                     \
    __attribute__((target("avx2,fma,avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx512bf16,"   \
                          "amx-tile,amx-int8,amx-bf16")))
#define TBF16 __attribute__((target("avx2,fma,avx512f,avx512bw,avx512dq,avx512vl,avx512bf16")))

T512 static void quantize_rows_512(int8_t *q, float *sx, int8_t *q2, float *sx2, const float *x,
                                   int32_t rows, int32_t rows_pad, int32_t K, int32_t Kp) {
    for (int32_t r = 0; r < rows_pad; r++) {
        int8_t *qr = q + (int64_t)r * Kp, *q2r = q2 ? q2 + (int64_t)r * Kp : NULL;
        sx[r] = 0;
        if (q2) sx2[r] = 0;
        if (r >= rows) {
            memset(qr, 0, (size_t)Kp);
            if (q2) memset(q2r, 0, (size_t)Kp);
            continue;
        }
        const float *v = x + (int64_t)r * K;
        /* amax = max_k |v[k]| (max is exact, so any order gives the reference's value) */
        __m512 mx = _mm512_setzero_ps();
        int32_t k = 0;
        for (; k + 16 <= K; k += 16) mx = _mm512_max_ps(mx, _mm512_abs_ps(_mm512_loadu_ps(v + k)));
        if (k < K) {
            __mmask16 mk = (__mmask16)((1u << (K - k)) - 1);
            mx = _mm512_max_ps(mx, _mm512_abs_ps(_mm512_maskz_loadu_ps(mk, v + k)));
        }
        const float amax = _mm512_reduce_max_ps(mx);
        if (amax == 0) {
            memset(qr, 0, (size_t)Kp);
            if (q2) memset(q2r, 0, (size_t)Kp);
            continue;
        }
        /* q = round-to-nearest-even(v * inv), the reference's nearbyintf in the default mode;
         * q2 = the same of (v - q·s) · inv2, clamped to ±127 */
        const __m512 inv = _mm512_set1_ps(127.0f / amax), s = _mm512_set1_ps(amax / 127.0f);
        const __m512 inv2 = _mm512_set1_ps(32258.0f / amax);
        const __m512i lim = _mm512_set1_epi32(127);
        for (k = 0; k < Kp; k += 16) {
            const int32_t left = K - k;
            __mmask16 mk = left >= 16 ? 0xffff : left > 0 ? (__mmask16)((1u << left) - 1) : 0;
            const __m512 f = _mm512_maskz_loadu_ps(mk, v + k);
            __m512i qi = _mm512_cvtps_epi32(_mm512_mul_ps(f, inv));
            _mm_storeu_si128((__m128i *)(qr + k), _mm512_cvtsepi32_epi8(qi));
            if (!q2) continue;
            const __m512 res = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(qi), s, f);
            __m512i q2i = _mm512_cvtps_epi32(_mm512_mul_ps(res, inv2));
            q2i = _mm512_max_epi32(_mm512_min_epi32(q2i, lim), _mm512_sub_epi32(_mm512_setzero_si512(), lim));
            _mm_storeu_si128((__m128i *)(q2r + k), _mm512_cvtsepi32_epi8(q2i));
        }
        sx[r] = amax / 127.0f;
        if (q2) sx2[r] = amax / 32258.0f;
    }
}

/* quantize_rows_u8_c with 16 lanes (min and max are exact, cvtps rounds to nearest even as
 * nearbyintf does): the same bytes. Columns K..Kp-1 hold z (their weights are zero). */
T512 static void quantize_rows_u8_512(int8_t *q, float *sx, float *zf, const float *x,
                                      int32_t rows, int32_t rows_pad, int32_t K, int32_t Kp) {
    for (int32_t r = 0; r < rows_pad; r++) {
        uint8_t *ur = (uint8_t *)q + (int64_t)r * Kp;
        sx[r] = 0, zf[r] = 0;
        if (r >= rows) {
            memset(ur, 0, (size_t)Kp);
            continue;
        }
        const float *v = x + (int64_t)r * K;
        __m512 mn = _mm512_setzero_ps(), mx = _mm512_setzero_ps();
        for (int32_t k = 0; k < K; k += 16) { /* masked-off lanes read 0: lo <= 0 <= hi anyway */
            const __mmask16 mk = K - k >= 16 ? 0xffff : (__mmask16)((1u << (K - k)) - 1);
            const __m512 f = _mm512_maskz_loadu_ps(mk, v + k);
            mn = _mm512_min_ps(mn, f), mx = _mm512_max_ps(mx, f);
        }
        const float lo = _mm512_reduce_min_ps(mn), hi = _mm512_reduce_max_ps(mx);
        if (hi == lo) {
            memset(ur, 0, (size_t)Kp);
            continue;
        }
        const float inv = 255.0f / (hi - lo);
        const int32_t z = (int32_t)nearbyintf(-lo * inv);
        const __m512 vinv = _mm512_set1_ps(inv);
        const __m512i vz = _mm512_set1_epi32(z), zero = _mm512_setzero_si512(),
                      top = _mm512_set1_epi32(255);
        for (int32_t k = 0; k < Kp; k += 16) {
            const int32_t left = K - k;
            const __mmask16 mk = left >= 16 ? 0xffff : left > 0 ? (__mmask16)((1u << left) - 1) : 0;
            __m512i u = _mm512_add_epi32(
                _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_maskz_loadu_ps(mk, v + k), vinv)), vz);
            u = _mm512_min_epi32(_mm512_max_epi32(u, zero), top);
            _mm_storeu_si128((__m128i *)(ur + k), _mm512_cvtusepi32_epi8(u));
        }
        sx[r] = (hi - lo) / 255.0f, zf[r] = (float)z;
    }
}

/* f's low and high eight lanes as doubles (exact). */
T512 static inline void halves_pd(__m512 f, __m512d *lo, __m512d *hi) {
    *lo = _mm512_cvtps_pd(_mm512_castps512_ps256(f));
    *hi = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(f), 1)));
}

/* acc + f's squares in double (exact), lanes k mod 8: the low eight, then the high eight
 * (sum8's lanes, in k order). */
T512 static inline __m512d add_sq8(__m512d acc, __m512 f) {
    __m512d lo, hi;
    halves_pd(f, &lo, &hi);
    return _mm512_add_pd(_mm512_add_pd(acc, _mm512_mul_pd(lo, lo)), _mm512_mul_pd(hi, hi));
}

/* Lanes k..k+15 of a row's x (into *f) and its uint8 digit's error e = fmaf(-(u - z), s, x),
 * both 0 past K. */
T512 static inline __m512 adapt_e_512(const float *v, const uint8_t *ur, int32_t k, int32_t K,
                                      __m512 vs, __m512i vz, __m512 *f) {
    const __mmask16 mk = K - k >= 16 ? 0xffff : (__mmask16)((1u << (K - k)) - 1);
    *f = _mm512_maskz_loadu_ps(mk, v + k);
    const __m512i u = _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(mk, ur + k));
    return _mm512_maskz_mov_ps(
        mk, _mm512_fnmadd_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(u, vz)), vs, *f));
}

/* adapt_row_c with 16 lanes: e by fnmadd (one rounding, as fmaf), its squares in double
 * (exact) summed per lane k mod 8 in the same order, max|e| exact: the same digits. */
T512 static float adapt_row_512(int8_t *ar, const uint8_t *ur, float s, int32_t z,
                                const float *v, int32_t K) {
    const __m512 vs = _mm512_set1_ps(s);
    const __m512i vz = _mm512_set1_epi32(z);
    __m512d e2 = _mm512_setzero_pd(), v2 = _mm512_setzero_pd();
    __m512 am = _mm512_setzero_ps();
    for (int32_t k = 0; k < K; k += 16) {
        __m512 f;
        const __m512 e = adapt_e_512(v, ur, k, K, vs, vz, &f);
        e2 = add_sq8(e2, e), v2 = add_sq8(v2, f);
        am = _mm512_max_ps(am, _mm512_abs_ps(e));
    }
    double l[8], m[8];
    _mm512_storeu_pd(l, e2), _mm512_storeu_pd(m, v2);
    const float amax = _mm512_reduce_max_ps(am);
    if (!needs_second(l, m, amax)) return 0;
    const __m512 vinv = _mm512_set1_ps(127.0f / amax);
    for (int32_t k = 0; k < K; k += 16) {
        __m512 f;
        const __m512 e = adapt_e_512(v, ur, k, K, vs, vz, &f);
        _mm_storeu_si128((__m128i *)(ar + k),
                         _mm512_cvtsepi32_epi8(_mm512_cvtps_epi32(_mm512_mul_ps(e, vinv))));
    }
    return amax / 127.0f;
}

/* outliers_c with 16 lanes: the squares in double (exact), summed per lane k mod 8 in k order
 * (the low half's lanes, then the high half's), so the same threshold and channels. */
T512 static int32_t outliers_512(int32_t *oi, const float *v, int32_t K) {
    __m512d v2 = _mm512_setzero_pd();
    for (int32_t k = 0; k < K; k += 16) {
        const __mmask16 mk = K - k >= 16 ? 0xffff : (__mmask16)((1u << (K - k)) - 1);
        v2 = add_sq8(v2, _mm512_maskz_loadu_ps(mk, v + k));
    }
    double l[8];
    _mm512_storeu_pd(l, v2);
    const __m512d t = _mm512_set1_pd(SEMBED__INT8A_THETA2 * sum8(l) / K);
    int32_t c = 0;
    for (int32_t k = 0; k < K && c < SEMBED__INT8A_MAXO; k += 16) {
        const __mmask16 mk = K - k >= 16 ? 0xffff : (__mmask16)((1u << (K - k)) - 1);
        __m512d fl, fh;
        halves_pd(_mm512_maskz_loadu_ps(mk, v + k), &fl, &fh);
        uint32_t m = (uint32_t)_mm512_cmp_pd_mask(_mm512_mul_pd(fl, fl), t, _CMP_GT_OQ) |
                     (uint32_t)_mm512_cmp_pd_mask(_mm512_mul_pd(fh, fh), t, _CMP_GT_OQ) << 8;
        for (; m && c < SEMBED__INT8A_MAXO; m &= m - 1) oi[c++] = k + __builtin_ctz(m);
    }
    return c;
}

/* One row of 16 columns (masked) of an INT8X2 or split GEMM from its int32 sums: the first
 * digits' c, the second digits' c2: y = fmaf(c, sx·sw, fmaf(c2, sx2·sw, base)), q8_kernel_c's
 * two passes in one (the AMX kernels' and q8x2_vnni's epilogue). */
T512 static inline void x2_store(float *yo, __mmask16 mk, __m512i c, __m512i c2, float sx,
                                 float sx2, __m512 sw, __m512 base) {
    __m512 v = _mm512_fmadd_ps(_mm512_cvtepi32_ps(c2), _mm512_mul_ps(_mm512_set1_ps(sx2), sw),
                               base);
    v = _mm512_fmadd_ps(_mm512_cvtepi32_ps(c), _mm512_mul_ps(_mm512_set1_ps(sx), sw), v);
    _mm512_mask_storeu_ps(yo, mk, v);
}

/* y[r, n] = fmaf(acc, sx[r]*scale[n], bias[n]) for one 16-column block, masked to N
 * (q8_kernel_c's). */
T512 static inline void q8_store_at(float *yo, __m512i acc, float sxr, const sembed__wprep *p,
                                    int32_t n) {
    const int32_t left = p->N - n;
    if (left <= 0) return;
    const __mmask16 mk = left >= 16 ? 0xffff : (__mmask16)((1u << left) - 1);
    const __m512 s = _mm512_mul_ps(_mm512_set1_ps(sxr), _mm512_loadu_ps(p->scale + n));
    const __m512 c = _mm512_loadu_ps(p->bias + n);
    _mm512_mask_storeu_ps(yo, mk, _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc), s, c));
}
T512 static inline void q8_store(float *yr, __m512i acc, float sxr, const sembed__wprep *p,
                                 int32_t n) {
    q8_store_at(yr + n, acc, sxr, p, n);
}

/* MR rows x NB blocks of 16 columns with vpdpbusd: x is unsigned (q + 128, by flipping the sign
 * bit), so acc - comp[n] is Σ q_x q_w. Rows r0.., blocks nb... The accumulators are named
 * variables (c<row><block>) and vpdpbusd is inline asm: with an array and the intrinsic, GCC 12
 * kept the 6x4 block on the stack and copied each accumulator out and back (perf annotate on a
 * Zen 4: the kernel ran at half the instruction's rate). */
#define Q8V_DP(MR, NB, r, j)                                                                     \
    if (MR > r && NB > j) __asm__("vpdpbusd %2, %1, %0" : "+v"(c##r##j) : "v"(xb), "v"(w##j));
#define Q8V_ROW(MR, NB, r)                                                                       \
    if (MR > r) {                                                                                \
        int32_t x4;                                                                              \
        memcpy(&x4, q + r * Kp + k4 * 4, 4);                                                     \
        const __m512i xb = _mm512_xor_si512(_mm512_set1_epi32(x4), flip);                        \
        Q8V_DP(MR, NB, r, 0) Q8V_DP(MR, NB, r, 1) Q8V_DP(MR, NB, r, 2) Q8V_DP(MR, NB, r, 3)     \
    }
#define Q8V_STORE(MR, r, j)                                                                      \
    if (MR > r) {                                                                                \
        const __m512i off =                                                                      \
            zf ? _mm512_mullo_epi32(_mm512_set1_epi32((int32_t)zf[r]), wsum) : comp;             \
        q8_store_at(y + (int64_t)r * ldy + (n - col0), _mm512_sub_epi32(c##r##j, off), sx[r], p, \
                    n);                                                                          \
    }
#define Q8V_BLOCK(MR, NB, j)                                                                     \
    if (NB > j) {                                                                                \
        const int32_t n = (nb + j) * 16;                                                         \
        const __m512i comp = _mm512_loadu_si512(p->comp + n), wsum = _mm512_srai_epi32(comp, 7); \
        Q8V_STORE(MR, 0, j) Q8V_STORE(MR, 1, j) Q8V_STORE(MR, 2, j)                             \
        Q8V_STORE(MR, 3, j) Q8V_STORE(MR, 4, j) Q8V_STORE(MR, 5, j)                             \
    }
#define Q8_VNNI(MR, NB)                                                                          \
    TVNNI static void q8_vnni_##MR##x##NB(float *y, int32_t ldy, const int8_t *q,               \
                                          const float *sx, const float *zf,                      \
                                          const sembed__wprep *p, int32_t nb, int32_t col0) {    \
        const int64_t Kp = p->Kp;                                                                \
        const int8_t *W = (const int8_t *)p->packed + (int64_t)nb * Kp * 16;                     \
        const __m512i z = _mm512_setzero_si512();                                                \
        __m512i c00 = z, c01 = z, c02 = z, c03 = z, c10 = z, c11 = z, c12 = z, c13 = z,          \
                c20 = z, c21 = z, c22 = z, c23 = z, c30 = z, c31 = z, c32 = z, c33 = z,          \
                c40 = z, c41 = z, c42 = z, c43 = z, c50 = z, c51 = z, c52 = z, c53 = z;          \
        const __m512i flip = _mm512_set1_epi32(zf ? 0 : (int32_t)0x80808080u);                   \
        for (int64_t k4 = 0; k4 < Kp / 4; k4++) {                                                \
            const __m512i w0 = _mm512_loadu_si512(W + k4 * 64),                                  \
                          w1 = _mm512_loadu_si512(W + 1 * Kp * 16 + k4 * 64);                    \
            __m512i w2 = z, w3 = z;                                                              \
            if (NB > 2) {                                                                        \
                w2 = _mm512_loadu_si512(W + 2 * Kp * 16 + k4 * 64);                              \
                w3 = _mm512_loadu_si512(W + 3 * Kp * 16 + k4 * 64);                              \
            }                                                                                    \
            Q8V_ROW(MR, NB, 0) Q8V_ROW(MR, NB, 1) Q8V_ROW(MR, NB, 2)                            \
            Q8V_ROW(MR, NB, 3) Q8V_ROW(MR, NB, 4) Q8V_ROW(MR, NB, 5)                            \
        }                                                                                        \
        Q8V_BLOCK(MR, NB, 0) Q8V_BLOCK(MR, NB, 1) Q8V_BLOCK(MR, NB, 2) Q8V_BLOCK(MR, NB, 3)     \
    }
Q8_VNNI(1, 4)
Q8_VNNI(2, 4)
Q8_VNNI(3, 4)
Q8_VNNI(4, 4)
Q8_VNNI(5, 4)
Q8_VNNI(6, 4)
Q8_VNNI(1, 2)
Q8_VNNI(2, 2)
Q8_VNNI(3, 2)
Q8_VNNI(4, 2)
Q8_VNNI(5, 2)
Q8_VNNI(6, 2)

typedef void (*q8_vnni_fn)(float *, int32_t, const int8_t *, const float *, const float *,
                           const sembed__wprep *, int32_t, int32_t);
static const q8_vnni_fn q8_vnni4[7] = {NULL,         q8_vnni_1x4, q8_vnni_2x4, q8_vnni_3x4,
                                       q8_vnni_4x4, q8_vnni_5x4, q8_vnni_6x4};
static const q8_vnni_fn q8_vnni2[7] = {NULL,         q8_vnni_1x2, q8_vnni_2x2, q8_vnni_3x2,
                                       q8_vnni_4x2, q8_vnni_5x2, q8_vnni_6x2};

/* Rows [0, rows) of a panel, blocks [nb0, nb1) (an even count: Np is a multiple of 32); column
 * n goes to y's column n - col0. */
static void q8_vnni(float *y, int32_t ldy, const int8_t *q, const float *sx, const float *zf,
                    int32_t rows, const sembed__wprep *p, int32_t nb0, int32_t nb1, int32_t col0) {
    for (int32_t nb = nb0; nb < nb1;) {
        const bool four = nb + 4 <= nb1;
        for (int32_t r = 0; r < rows; r += 6) {
            const int32_t mr = rows - r < 6 ? rows - r : 6;
            (four ? q8_vnni4 : q8_vnni2)[mr](y + (int64_t)r * ldy, ldy, q + (int64_t)r * p->Kp,
                                             sx + r, zf ? zf + r : NULL, p, nb, col0);
        }
        nb += four ? 4 : 2;
    }
}

/* An INT8X2 GEMM's two digits in one pass over the weights: MR rows x 2 digits x NB blocks of
 * 16 columns (a<r><j> the first digits' sums, b<r><j> the second's), and x2_store's epilogue,
 * the bits of q8_kernel_c's two passes. Each weight load feeds 2·MR products: a 16-row query is four
 * full 4-row chunks instead of the 6 + 6 + 4 of each of two passes. */
#define Q8X2_DP(MR, NB, r, j)                                                                    \
    if (MR > r && NB > j) {                                                                      \
        __asm__("vpdpbusd %2, %1, %0" : "+v"(a##r##j) : "v"(xa), "v"(w##j));                    \
        __asm__("vpdpbusd %2, %1, %0" : "+v"(b##r##j) : "v"(xb), "v"(w##j));                    \
    }
#define Q8X2_ROW(MR, NB, r)                                                                      \
    if (MR > r) {                                                                                \
        int32_t x4, y4;                                                                          \
        memcpy(&x4, q + r * Kp + k4 * 4, 4);                                                     \
        memcpy(&y4, q2 + r * Kp + k4 * 4, 4);                                                    \
        const __m512i xa = _mm512_xor_si512(_mm512_set1_epi32(x4), flip),                        \
                      xb = _mm512_xor_si512(_mm512_set1_epi32(y4), flip);                        \
        Q8X2_DP(MR, NB, r, 0) Q8X2_DP(MR, NB, r, 1) Q8X2_DP(MR, NB, r, 2)                       \
    }
#define Q8X2_STORE(MR, r, j)                                                                     \
    if (MR > r)                                                                                  \
        x2_store(y + (int64_t)r * ldy + n, mk, _mm512_sub_epi32(a##r##j, comp),                  \
                 _mm512_sub_epi32(b##r##j, comp), sx[r], sx2[r], sw, bias);
#define Q8X2_BLOCK(MR, NB, j)                                                                    \
    if (NB > j && p->N > (nb + j) * 16) {                                                        \
        const int32_t n = (nb + j) * 16, left = p->N - n;                                        \
        const __mmask16 mk = left >= 16 ? 0xffff : (__mmask16)((1u << left) - 1);               \
        const __m512i comp = _mm512_loadu_si512(p->comp + n);                                    \
        const __m512 sw = _mm512_loadu_ps(p->scale + n), bias = _mm512_loadu_ps(p->bias + n);    \
        Q8X2_STORE(MR, 0, j) Q8X2_STORE(MR, 1, j) Q8X2_STORE(MR, 2, j) Q8X2_STORE(MR, 3, j)     \
    }
#define Q8X2_VNNI(MR, NB)                                                                        \
    TVNNI static void q8x2_vnni_##MR##x##NB(float *y, int32_t ldy, const int8_t *q,             \
                                            const float *sx, const int8_t *q2,                   \
                                            const float *sx2, const sembed__wprep *p,            \
                                            int32_t nb, const char *pf) {                        \
        const int64_t Kp = p->Kp;                                                                \
        const int8_t *W = (const int8_t *)p->packed + (int64_t)nb * Kp * 16;                     \
        const __m512i z = _mm512_setzero_si512();                                                \
        __m512i a00 = z, a01 = z, a02 = z, a10 = z, a11 = z, a12 = z, a20 = z, a21 = z, a22 = z, \
                a30 = z, a31 = z, a32 = z, b00 = z, b01 = z, b02 = z, b10 = z, b11 = z, b12 = z, \
                b20 = z, b21 = z, b22 = z, b30 = z, b31 = z, b32 = z;                            \
        const __m512i flip = _mm512_set1_epi32((int32_t)0x80808080u);                            \
        for (int64_t k4 = 0; k4 < Kp / 4; k4++) {                                                \
            const __m512i w0 = _mm512_loadu_si512(W + k4 * 64);                                  \
            __m512i w1 = z, w2 = z;                                                              \
            if (NB > 1) w1 = _mm512_loadu_si512(W + 1 * Kp * 16 + k4 * 64);                      \
            if (NB > 2) w2 = _mm512_loadu_si512(W + 2 * Kp * 16 + k4 * 64);                      \
            if (pf) _mm_prefetch(pf + k4 * 64, _MM_HINT_T1);                                     \
            Q8X2_ROW(MR, NB, 0) Q8X2_ROW(MR, NB, 1) Q8X2_ROW(MR, NB, 2) Q8X2_ROW(MR, NB, 3)     \
        }                                                                                        \
        Q8X2_BLOCK(MR, NB, 0) Q8X2_BLOCK(MR, NB, 1) Q8X2_BLOCK(MR, NB, 2)                       \
    }
Q8X2_VNNI(1, 3)
Q8X2_VNNI(2, 3)
Q8X2_VNNI(3, 3)
Q8X2_VNNI(4, 3)
Q8X2_VNNI(1, 1)
Q8X2_VNNI(2, 1)
Q8X2_VNNI(3, 1)
Q8X2_VNNI(4, 1)

typedef void (*q8x2_vnni_fn)(float *, int32_t, const int8_t *, const float *, const int8_t *,
                             const float *, const sembed__wprep *, int32_t, const char *);
static const q8x2_vnni_fn q8x2_vnni3[5] = {NULL, q8x2_vnni_1x3, q8x2_vnni_2x3, q8x2_vnni_3x3,
                                           q8x2_vnni_4x3};
static const q8x2_vnni_fn q8x2_vnni1[5] = {NULL, q8x2_vnni_1x1, q8x2_vnni_2x1, q8x2_vnni_3x1,
                                           q8x2_vnni_4x1};

/* Rows [0, rows) of an INT8X2 panel (digits q, q2), blocks [nb0, nb1). Row chunks 2-4 prefetch
 * the next column group into L2, a block each, as f32_avx512 does: a 16-token bge-small int8
 * query 2.34 -> 2.08 ms on the Zen 4 VM (median of 8 alternating rounds), MiniLM 1.11 -> 1.03. */
static void q8x2_vnni(float *y, int32_t ldy, const int8_t *q, const float *sx, const int8_t *q2,
                      const float *sx2, int32_t rows, const sembed__wprep *p, int32_t nb0,
                      int32_t nb1) {
    for (int32_t nb = nb0; nb < nb1;) {
        const bool three = nb + 3 <= nb1;
        const int32_t next = nb + (three ? 3 : 1), next_blocks = nb1 - next < 3 ? nb1 - next : 3;
        for (int32_t r = 0; r < rows; r += 4) {
            const int32_t mr = rows - r < 4 ? rows - r : 4, chunk = r / 4;
            const int64_t o = (int64_t)r * p->Kp;
            const char *pf = NULL;
            if (chunk >= 1 && chunk - 1 < next_blocks) /* as in f32_avx512: one block a chunk */
                pf = (const char *)p->packed + (int64_t)(next + chunk - 1) * p->Kp * 16;
            (three ? q8x2_vnni3 : q8x2_vnni1)[mr](y + (int64_t)r * ldy, ldy, q + o, sx + r,
                                                  q2 + o, sx2 + r, p, nb, pf);
        }
        nb += three ? 3 : 1;
    }
}

typedef struct tilecfg {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} tilecfg;

/* Palette 1, tiles 0-7 all 16 rows of 64 bytes: C tiles 0-3 (2x2 of 16x16 32-bit), A tiles 4-5,
 * B tiles 6-7. */
TAMX static void amx_config(void) {
    tilecfg cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int i = 0; i < 8; i++) cfg.rows[i] = 16, cfg.colsb[i] = 64;
    _tile_loadconfig(&cfg);
}

/* Rows [0, nr) of the column pair nb, nb+1 of an INT8X2 GEMM (masked to N) from tile sums of
 * 32 columns a row: the first digits' at c, the second digits' at c2. */
TAMX static void x2_rows(float *y, int32_t ldy, const int32_t *c, const int32_t *c2,
                         const float *sx, const float *sx2, int32_t nr, const sembed__wprep *p,
                         int32_t nb) {
    for (int32_t j = 0; j < 2; j++) {
        const int32_t n = (nb + j) * 16, left = p->N - n;
        if (left <= 0) break;
        const __mmask16 mk = left >= 16 ? 0xffff : (__mmask16)((1u << left) - 1);
        const __m512 sw = _mm512_loadu_ps(p->scale + n), b = _mm512_loadu_ps(p->bias + n);
        for (int32_t r = 0; r < nr; r++)
            x2_store(y + (int64_t)r * ldy + n, mk, _mm512_loadu_si512(c + r * 32 + j * 16),
                     _mm512_loadu_si512(c2 + r * 32 + j * 16), sx[r], sx2[r], sw, b);
    }
}

/* C tiles 0-3 to zero. */
TAMX static inline void zero_c_tiles(void) {
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
}

/* C tiles 0-3 to cbuf (32 rows x 32 columns of 32 bits: tiles 0 1 above 2 3). */
TAMX static inline void stored_tiles(void *cbuf) {
    int32_t *c = cbuf;
    _tile_stored(0, c, 128);
    _tile_stored(1, c + 16, 128);
    _tile_stored(2, c + 512, 128);
    _tile_stored(3, c + 528, 128);
}

/* C tiles 0, 1 (A tile t of a digit run) and, with two, 2, 3 (A tile t + 1) to cbuf, whose row
 * a (of the run) holds the run row's 32 columns: the layout stored_tiles gives for t = 0. */
TAMX static inline void stored_run_tiles(int32_t *cbuf, int32_t t, bool two) {
    int32_t *c = cbuf + t * 512;
    _tile_stored(0, c, 128);
    _tile_stored(1, c + 16, 128);
    if (!two) return;
    _tile_stored(2, c + 512, 128);
    _tile_stored(3, c + 528, 128);
}

/* C tiles 0, 1 (and 2, 3 when two) = the A tiles at a0 (a1): 16 rows of Kp int8 each, times
 * the column blocks at b0, b1, over all of K in order. */
TAMX static inline void q8_tile_pair(const int8_t *a0, const int8_t *a1, bool two,
                                     const int8_t *b0, const int8_t *b1, int64_t Kp) {
    zero_c_tiles();
    for (int64_t c = 0; c < Kp / 64; c++) {
        _tile_loadd(4, a0 + c * 64, Kp);
        _tile_loadd(6, b0 + c * 1024, 64);
        _tile_loadd(7, b1 + c * 1024, 64);
        _tile_dpbssd(0, 4, 6);
        _tile_dpbssd(1, 4, 7);
        if (two) {
            _tile_loadd(5, a1 + c * 64, Kp);
            _tile_dpbssd(2, 5, 6);
            _tile_dpbssd(3, 5, 7);
        }
    }
}

/* A panel with AMX: C tiles 0-3 (2x2 of 16x16 int32), A tiles 4-5 (16 rows x 64 k), B tiles
 * 6-7 (64 k x 16 columns); the sums are exact integers, so zero padding changes no row's result.
 * One digit (INT8): rows_pad a multiple of 16, the panel zero past `rows`; cbuf 32x32 int32.
 * Two digits (INT8X2), y = fmaf(acc, sx*sw, fmaf(acc2, sx2*sw, b)) as q8_kernel_c's two passes
 * give, from either layout (rows_at):
 * - run: q is a run of 2·rows rows, the first digits of rows 0..rows-1 then their second digits
 *   (q2 = q + rows·Kp), zero to the end of its last 16-row tile, cut into A tiles of 16 run rows
 *   whatever digit they hold: ceil(2·rows/16) tiles, so 17 rows take 3 tiles (a tile pair per 16
 *   rows takes 4) and 8 rows one; cbuf (run row a at a·32) keeps a column pair's sums of every
 *   tile before the epilogue;
 * - planes (larger panels): per 16 rows tile 4 holds the first digits and tile 5 the same rows'
 *   second digits, rows_pad a multiple of 16. */
TAMX static void q8_amx(float *y, int32_t ldy, const int8_t *q, const float *sx,
                        const int8_t *q2, const float *sx2, bool run, int32_t rows,
                        int32_t rows_pad, const sembed__wprep *p, int32_t nb0, int32_t nb1,
                        int32_t *cbuf) {
    const int64_t Kp = p->Kp;
    const int8_t *W = p->packed;
    amx_config();
    if (q2 && !run) {
        for (int32_t r0 = 0; r0 < rows_pad; r0 += 16)
            for (int32_t nb = nb0; nb < nb1; nb += 2) {
                const int8_t *b0 = W + (int64_t)nb * Kp * 16;
                q8_tile_pair(q + (int64_t)r0 * Kp, q2 + (int64_t)r0 * Kp, true, b0, b0 + Kp * 16,
                             Kp);
                stored_tiles(cbuf);
                x2_rows(y + (int64_t)r0 * ldy, ldy, cbuf, cbuf + 512, sx + r0, sx2 + r0,
                        rows - r0 < 16 ? rows - r0 : 16, p, nb);
            }
        _tile_release();
        return;
    }
    if (q2) {
        const int32_t tiles = (2 * rows + 15) / 16;
        for (int32_t nb = nb0; nb < nb1; nb += 2) {
            const int8_t *b0 = W + (int64_t)nb * Kp * 16, *b1 = b0 + Kp * 16;
            for (int32_t t = 0; t < tiles; t += 2) {
                const int8_t *a0 = q + (int64_t)t * 16 * Kp;
                q8_tile_pair(a0, a0 + 16 * Kp, t + 1 < tiles, b0, b1, Kp);
                stored_run_tiles(cbuf, t, t + 1 < tiles);
            }
            x2_rows(y, ldy, cbuf, cbuf + rows * 32, sx, sx2, rows, p, nb);
        }
        _tile_release();
        return;
    }
    for (int32_t r0 = 0; r0 < rows_pad; r0 += 32) {
        const bool two = r0 + 32 <= rows_pad;
        const int8_t *a0 = q + (int64_t)r0 * Kp;
        for (int32_t nb = nb0; nb < nb1; nb += 2) {
            const int8_t *b0 = W + (int64_t)nb * Kp * 16;
            q8_tile_pair(a0, a0 + 16 * Kp, two, b0, b0 + Kp * 16, Kp);
            stored_tiles(cbuf);
            for (int32_t r = 0; r < (two ? 32 : 16) && r0 + r < rows; r++)
                for (int j = 0; j < 2; j++)
                    q8_store(y + (int64_t)(r0 + r) * ldy, _mm512_loadu_si512(cbuf + r * 32 + j * 16),
                             sx[r0 + r], p, (nb + j) * 16);
        }
    }
    _tile_release();
}

/* ---- BF16 ---------------------------------------------------------------------------------- */

/* x rows [0, rows) to bf16 (rows_pad, Kp), padding zero. */
TBF16 static void bf16_rows(uint16_t *q, const float *x, int32_t rows, int32_t rows_pad, int32_t K,
                            int32_t Kp) {
    for (int32_t r = 0; r < rows_pad; r++) {
        uint16_t *qr = q + (int64_t)r * Kp;
        if (r >= rows) {
            memset(qr, 0, sizeof(uint16_t) * (size_t)Kp);
            continue;
        }
        const float *v = x + (int64_t)r * K;
        for (int32_t k = 0; k < Kp; k += 16) {
            const int32_t left = K - k;
            __mmask16 mk = left >= 16 ? 0xffff : left > 0 ? (__mmask16)((1u << left) - 1) : 0;
            __m256bh h = _mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(mk, v + k)); /* RNE */
            memcpy(qr + k, &h, 32);
        }
    }
}

TBF16 static inline void bf_store(float *yr, __m512 acc, const sembed__wprep *p, int32_t n) {
    const __m512 v = _mm512_add_ps(acc, _mm512_loadu_ps(p->bias + n));
    const int32_t left = p->N - n;
    if (left >= 16) _mm512_storeu_ps(yr + n, v);
    else if (left > 0) _mm512_mask_storeu_ps(yr + n, (__mmask16)((1u << left) - 1), v);
}

/* The fp32 C tiles of rows r0.. (32, or 16 when !two) and blocks nb, nb+1 to y, + bias. */
TAMX static void store_bf_tiles(float *y, int32_t ldy, float *cbuf, int32_t r0, int32_t rows,
                                bool two, const sembed__wprep *p, int32_t nb) {
    stored_tiles(cbuf);
    const int32_t nr = two ? 32 : 16;
    for (int32_t r = 0; r < nr && r0 + r < rows; r++)
        for (int j = 0; j < 2; j++)
            bf_store(y + (int64_t)(r0 + r) * ldy, _mm512_loadu_ps(cbuf + r * 32 + j * 16), p,
                     (nb + j) * 16);
}

/* AVX512_BF16: 4 rows x 2 blocks per step, vdpbf16ps over k pairs in order. */
TBF16 static void bf16_avx(float *y, int32_t ldy, const uint16_t *q, int32_t rows,
                           const sembed__wprep *p, int32_t nb0, int32_t nb1) {
    const int64_t Kp = p->Kp;
    const uint16_t *W = p->packed;
    for (int32_t nb = nb0; nb < nb1; nb += 2)
        for (int32_t r0 = 0; r0 < rows; r0 += 4) {
            const int32_t mr = rows - r0 < 4 ? rows - r0 : 4;
            __m512 acc[4][2];
            for (int r = 0; r < 4; r++) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
            const uint16_t *b0 = W + (int64_t)nb * Kp * 16, *b1 = b0 + Kp * 16;
            for (int64_t k2 = 0; k2 < Kp / 2; k2++) {
                __m512bh w0, w1;
                memcpy(&w0, b0 + k2 * 32, 64);
                memcpy(&w1, b1 + k2 * 32, 64);
                for (int r = 0; r < 4; r++) {
                    if (r >= mr) break;
                    int32_t x2;
                    memcpy(&x2, q + (int64_t)(r0 + r) * Kp + k2 * 2, 4);
                    __m512bh xb;
                    __m512i xi = _mm512_set1_epi32(x2);
                    memcpy(&xb, &xi, 64);
                    acc[r][0] = _mm512_dpbf16_ps(acc[r][0], xb, w0);
                    acc[r][1] = _mm512_dpbf16_ps(acc[r][1], xb, w1);
                }
            }
            for (int r = 0; r < mr; r++)
                for (int j = 0; j < 2; j++)
                    bf_store(y + (int64_t)(r0 + r) * ldy, acc[r][j], p, (nb + j) * 16);
        }
}

/* C tiles 0, 1 (and 2, 3 when two) += the 16-row A tiles at a0 (a1; bf16 rows of Kp) times
 * the B tiles 6, 7 already loaded. */
TAMX static inline void dp_bf16_rows(const uint16_t *a0, const uint16_t *a1, bool two, int64_t Kp) {
    _tile_loadd(4, a0, Kp * 2);
    _tile_dpbf16ps(0, 4, 6);
    _tile_dpbf16ps(1, 4, 7);
    if (two) {
        _tile_loadd(5, a1, Kp * 2);
        _tile_dpbf16ps(2, 5, 6);
        _tile_dpbf16ps(3, 5, 7);
    }
}

/* AMX bf16: rows a multiple of 16 (the panel is zero-padded), 2x2 tiles as q8_amx. */
TAMX static void bf16_amx(float *y, int32_t ldy, const uint16_t *q, int32_t rows, int32_t rows_pad,
                          const sembed__wprep *p, int32_t nb0, int32_t nb1, float *cbuf) {
    const int64_t Kp = p->Kp;
    const uint16_t *W = p->packed;
    amx_config();
    for (int32_t r0 = 0; r0 < rows_pad; r0 += 32) {
        const bool two = r0 + 32 <= rows_pad;
        const uint16_t *a0 = q + (int64_t)r0 * Kp, *a1 = a0 + 16 * Kp;
        for (int32_t nb = nb0; nb < nb1; nb += 2) {
            const uint16_t *b0 = W + (int64_t)nb * Kp * 16, *b1 = b0 + Kp * 16;
            zero_c_tiles();
            for (int64_t c = 0; c < Kp / 32; c++) {
                _tile_loadd(6, b0 + c * 512, 64);
                _tile_loadd(7, b1 + c * 512, 64);
                dp_bf16_rows(a0 + c * 32, a1 + c * 32, two, Kp);
            }
            store_bf_tiles(y, ldy, cbuf, r0, rows, two, p, nb);
        }
    }
    _tile_release();
}
/* ---- FP32 split in two bf16 parts (AMX) ------------------------------------------------------ */

/* x rows [0, rows) to two bf16 panels (rows_pad, Kp): hi = bf16(x), lo = bf16(x - hi), both
 * rounded to nearest even (x - hi is exact in fp32); padding zero. */
TBF16 static void bf16_split_rows(uint16_t *hi, uint16_t *lo, const float *x, int32_t rows,
                                  int32_t rows_pad, int32_t K, int32_t Kp) {
    for (int32_t r = 0; r < rows_pad; r++) {
        uint16_t *hr = hi + (int64_t)r * Kp, *lr = lo + (int64_t)r * Kp;
        if (r >= rows) {
            memset(hr, 0, sizeof(uint16_t) * (size_t)Kp);
            memset(lr, 0, sizeof(uint16_t) * (size_t)Kp);
            continue;
        }
        const float *v = x + (int64_t)r * K;
        for (int32_t k = 0; k < Kp; k += 16) {
            const int32_t left = K - k;
            __mmask16 mk = left >= 16 ? 0xffff : left > 0 ? (__mmask16)((1u << left) - 1) : 0;
            const __m512 f = _mm512_maskz_loadu_ps(mk, v + k);
            __m256bh h = _mm512_cvtneps_pbh(f);
            __m256i hb;
            memcpy(&hb, &h, 32);
            const __m512 hf = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(hb), 16));
            __m256bh l = _mm512_cvtneps_pbh(_mm512_sub_ps(f, hf));
            memcpy(hr + k, &h, 32);
            memcpy(lr + k, &l, 32);
        }
    }
}

/* FP32 on AMX: x = xh + xl (bf16 parts, x - xh - xl = O(2^-17 |x|)) and w = wh + wl with wh
 * bf16 and wl = w - wh exact, stored as int8 with its output channel's scale sl (a step of
 * max|wl|/127 = O(2^-16 max|w|)); x is also taken as two int8 digits (q·sx + q2·sx2, the
 * INT8X2 quantization). y = fmaf(Σ q·wl_q, sx·sl, fmaf(Σ q2·wl_q, sx2·sl, Σ (xh·wh + xl·wh) + b)):
 * the bf16 products exact and summed in the tiles' fp32 per 32 k in order, the int8 sums exact.
 * About 16 bits of each product where fp32 has 24 (PyTorch's float32_matmul_precision "high"
 * takes xh·wl in bf16 instead), at 3 bytes per weight instead of 4: a query streams its weights
 * from memory, so bytes are its time. Rows a multiple of 16 (the panels are zero-padded), so
 * every row takes this path at every M: batch invariant. */
TAMX static void split_amx(float *y, int32_t ldy, const uint16_t *xh, const uint16_t *xl,
                           const int8_t *q, const float *sx, const int8_t *q2, const float *sx2,
                           int32_t rows, int32_t rows_pad, const sembed__wprep *p, int32_t nb0,
                           int32_t nb1, float *cbuf) {
    const int64_t Kp = p->Kp;
    const uint8_t *W = p->packed;
    int32_t *ci = (int32_t *)(cbuf + 32 * 32); /* after the fp32 tiles: the int32 ones */
    amx_config();
    /* 16 rows at a time, four independent accumulators: C tiles 0, 1 take xh·wh and 2, 3 xl·wh
     * for the pair of column blocks (so no tile waits on its own last product), then 0, 1 the
     * first digits' sums with wl and 2, 3 the second digits' */
    for (int32_t r0 = 0; r0 < rows_pad; r0 += 16) {
        const uint16_t *h = xh + (int64_t)r0 * Kp, *l = xl + (int64_t)r0 * Kp;
        const int8_t *a1 = q + (int64_t)r0 * Kp, *a2 = q2 + (int64_t)r0 * Kp;
        const int32_t nr = rows - r0 < 16 ? rows - r0 : 16;
        for (int32_t nb = nb0; nb < nb1; nb += 2) {
            const uint8_t *bh = W + (int64_t)(nb / 2) * 96 * Kp, *bl = bh + 64 * Kp;
            zero_c_tiles();
            for (int64_t c = 0; c < Kp / 32; c++) {
                _tile_loadd(6, bh + c * 2048, 64); /* wh */
                _tile_loadd(7, bh + c * 2048 + 1024, 64);
                _tile_loadd(4, h + c * 32, Kp * 2);
                _tile_loadd(5, l + c * 32, Kp * 2);
                _tile_dpbf16ps(0, 4, 6);
                _tile_dpbf16ps(1, 4, 7);
                _tile_dpbf16ps(2, 5, 6);
                _tile_dpbf16ps(3, 5, 7);
            }
            stored_tiles(cbuf);
            zero_c_tiles();
            for (int64_t c = 0; c < Kp / 64; c++) {
                _tile_loadd(6, bl + c * 2048, 64); /* wl */
                _tile_loadd(7, bl + c * 2048 + 1024, 64);
                _tile_loadd(4, a1 + c * 64, Kp);
                _tile_loadd(5, a2 + c * 64, Kp);
                _tile_dpbssd(0, 4, 6);
                _tile_dpbssd(1, 4, 7);
                _tile_dpbssd(2, 5, 6);
                _tile_dpbssd(3, 5, 7);
            }
            stored_tiles(ci);
            /* y = fmaf(Σ q·wl, sx·sl, fmaf(Σ q2·wl, sx2·sl, (Σ xh·wh + Σ xl·wh) + b)); x2_rows
             * with the fp32 sums as an argument, and these loops as dp_bf16_rows and
             * q8_tile_pair, measured 10-25% slower here (M 16-64, N 1536, K 384), so both stay */
            for (int32_t j = 0; j < 2; j++) {
                const int32_t n = (nb + j) * 16, left = p->N - n;
                if (left <= 0) break;
                const __mmask16 mk = left >= 16 ? 0xffff : (__mmask16)((1u << left) - 1);
                const __m512 sl = _mm512_loadu_ps(p->scale + n), b = _mm512_loadu_ps(p->bias + n);
                for (int32_t r = 0; r < nr; r++) {
                    const float *cf = cbuf + r * 32 + j * 16;
                    x2_store(y + (int64_t)(r0 + r) * ldy + n, mk,
                             _mm512_loadu_si512(ci + r * 32 + j * 16),
                             _mm512_loadu_si512(ci + r * 32 + j * 16 + 512), sx[r0 + r],
                             sx2[r0 + r], sl,
                             _mm512_add_ps(_mm512_add_ps(_mm512_loadu_ps(cf),
                                                         _mm512_loadu_ps(cf + 512)), b));
                }
            }
        }
    }
    _tile_release();
}

/* ---- FP32 ------------------------------------------------------------------------------------ */

/* MR rows x NB blocks of 16 columns: y = Σ_k x[r, k] w[n, k] with one FMA chain per output in k
 * order (so a row's result does not depend on the blocking, M or the thread), then + b. */
#define F32K(MR, NB)                                                                             \
    T512 static void f32_##MR##x##NB(float *y, int32_t ldy, const float *x, int32_t ldx,         \
                                     const sembed__wprep *p, int32_t nb, const char *pf) {       \
        const int64_t Kp = p->Kp;                                                                \
        const float *W = (const float *)p->packed + (int64_t)nb * Kp * 16;                       \
        __m512 acc[MR][NB];                                                                      \
        for (int r = 0; r < MR; r++)                                                             \
            for (int j = 0; j < NB; j++) acc[r][j] = _mm512_setzero_ps();                        \
        for (int64_t k = 0; k < p->K; k++) {                                                     \
            __m512 w[NB];                                                                        \
            for (int j = 0; j < NB; j++) w[j] = _mm512_loadu_ps(W + j * Kp * 16 + k * 16);       \
            if (pf) {                                                                            \
                _mm_prefetch(pf + k * 128, _MM_HINT_T1);                                         \
                _mm_prefetch(pf + k * 128 + 64, _MM_HINT_T1);                                    \
            }                                                                                    \
            for (int r = 0; r < MR; r++) {                                                       \
                const __m512 xb = _mm512_set1_ps(x[(int64_t)r * ldx + k]);                       \
                for (int j = 0; j < NB; j++) acc[r][j] = _mm512_fmadd_ps(xb, w[j], acc[r][j]);   \
            }                                                                                    \
        }                                                                                        \
        for (int j = 0; j < NB; j++) {                                                           \
            const int32_t n = (nb + j) * 16, left = p->N - n;                                    \
            const __m512 b = _mm512_loadu_ps(p->bias + n);                                       \
            for (int r = 0; r < MR; r++) {                                                       \
                const __m512 v = _mm512_add_ps(acc[r][j], b);                                    \
                float *yr = y + (int64_t)r * ldy;                                                \
                if (left >= 16) _mm512_storeu_ps(yr + n, v);                                     \
                else if (left > 0) _mm512_mask_storeu_ps(yr + n, (__mmask16)((1u << left) - 1), v); \
            }                                                                                    \
        }                                                                                        \
    }
F32K(1, 4)
F32K(2, 4)
F32K(3, 4)
F32K(4, 4)
F32K(5, 4)
F32K(6, 4)
F32K(1, 2)
F32K(2, 2)
F32K(3, 2)
F32K(4, 2)
F32K(5, 2)
F32K(6, 2)

typedef void (*f32_fn)(float *, int32_t, const float *, int32_t, const sembed__wprep *, int32_t,
                       const char *);
static const f32_fn f32_4[7] = {NULL, f32_1x4, f32_2x4, f32_3x4, f32_4x4, f32_5x4, f32_6x4};
static const f32_fn f32_2[7] = {NULL, f32_1x2, f32_2x2, f32_3x2, f32_4x2, f32_5x2, f32_6x2};

static void f32_avx512(float *y, int32_t ldy, const float *x, int32_t rows,
                       const sembed__wprep *p, int32_t nb0, int32_t nb1) {
    for (int32_t nb = nb0; nb < nb1;) {
        const bool four = nb + 4 <= nb1;
        /* The next column group's weights into L2 while this group's second and third row
         * chunks run from the cache (the first streams the group from memory): chunk c
         * prefetches blocks 2(c-1) and 2(c-1)+1 of it, two lines a k. A 16-token query's fp32
         * GEMMs stream their weights from DRAM (all-MiniLM-L6-v2: 42 MB, more than the Zen 4
         * VM's L3): its p50 went 2.24-2.62 -> 1.88-2.13 ms there (T0 instead of T1: 2.24-2.67). */
        const int32_t next = nb + (four ? 4 : 2), next_blocks = nb1 - next < 4 ? nb1 - next : 4;
        for (int32_t r = 0; r < rows; r += 6) {
            const int32_t mr = rows - r < 6 ? rows - r : 6, chunk = r / 6;
            const char *pf = NULL;
            if (chunk >= 1 && 2 * (chunk - 1) < next_blocks)
                pf = (const char *)((const float *)p->packed +
                                    (int64_t)(next + 2 * (chunk - 1)) * p->Kp * 16);
            (four ? f32_4 : f32_2)[mr](y + (int64_t)r * ldy, ldy, x + (int64_t)r * p->K, p->K,
                                       p, nb, pf);
        }
        nb += four ? 4 : 2;
    }
}

#define T256 __attribute__((target("avx2,fma")))

/* The FP32 kernel with AVX2: MR rows x one 16-column block as two ymm (6 x 2 accumulators, 2
 * weight registers and a broadcast fit the 16 ymm), one FMA chain per output in k order as in
 * F32K: the same bits as f32_c, and rows independent of M. The accumulators are named variables,
 * not an array: GCC stored an array of them to the stack on every k. */
#define F32A_FMA(MR, r)                                                                          \
    if (MR > r) {                                                                                \
        const __m256 xb = _mm256_broadcast_ss(x + (int64_t)r * ldx + k);                         \
        c##r##0 = _mm256_fmadd_ps(xb, w0, c##r##0);                                              \
        c##r##1 = _mm256_fmadd_ps(xb, w1, c##r##1);                                              \
    }
#define F32A_STORE(MR, r)                                                                        \
    if (MR > r) {                                                                                \
        float *yr = y + (int64_t)r * ldy + n;                                                    \
        const __m256 v0 = _mm256_add_ps(c##r##0, b0), v1 = _mm256_add_ps(c##r##1, b1);          \
        if (left >= 16) {                                                                        \
            _mm256_storeu_ps(yr, v0);                                                            \
            _mm256_storeu_ps(yr + 8, v1);                                                        \
        } else {                                                                                 \
            _mm256_maskstore_ps(yr, m0, v0);                                                     \
            _mm256_maskstore_ps(yr + 8, m1, v1);                                                 \
        }                                                                                        \
    }
#define F32K256(MR)                                                                              \
    T256 static void f32_256_##MR(float *y, int32_t ldy, const float *x, int32_t ldx,            \
                                  const sembed__wprep *p, int32_t nb) {                          \
        const float *W = (const float *)p->packed + (int64_t)nb * p->Kp * 16;                    \
        const int64_t K = p->K;                                                                  \
        __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, \
               c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;                 \
        for (int64_t k = 0; k < K; k++) {                                                        \
            const __m256 w0 = _mm256_loadu_ps(W + k * 16), w1 = _mm256_loadu_ps(W + k * 16 + 8); \
            F32A_FMA(MR, 0) F32A_FMA(MR, 1) F32A_FMA(MR, 2)                                     \
            F32A_FMA(MR, 3) F32A_FMA(MR, 4) F32A_FMA(MR, 5)                                     \
        }                                                                                        \
        const int32_t n = nb * 16, left = p->N - n;                                              \
        const __m256 b0 = _mm256_loadu_ps(p->bias + n), b1 = _mm256_loadu_ps(p->bias + n + 8);   \
        const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);                           \
        const __m256i m0 = _mm256_cmpgt_epi32(_mm256_set1_epi32(left), idx),                     \
                      m1 = _mm256_cmpgt_epi32(_mm256_set1_epi32(left - 8), idx);                 \
        F32A_STORE(MR, 0) F32A_STORE(MR, 1) F32A_STORE(MR, 2)                                   \
        F32A_STORE(MR, 3) F32A_STORE(MR, 4) F32A_STORE(MR, 5)                                   \
    }
F32K256(1)
F32K256(2)
F32K256(3)
F32K256(4)
F32K256(5)
F32K256(6)

typedef void (*f32_256_fn)(float *, int32_t, const float *, int32_t, const sembed__wprep *,
                           int32_t);
static const f32_256_fn f32_256[7] = {NULL, f32_256_1, f32_256_2, f32_256_3,
                                  f32_256_4, f32_256_5, f32_256_6};

static void f32_avx2(float *y, int32_t ldy, const float *x, int32_t rows, const sembed__wprep *p,
                     int32_t nb0, int32_t nb1) {
    for (int32_t nb = nb0; nb < nb1 && nb * 16 < p->N; nb++)
        for (int32_t r = 0; r < rows; r += 6) {
            const int32_t mr = rows - r < 6 ? rows - r : 6;
            f32_256[mr](y + (int64_t)r * ldy, ldy, x + (int64_t)r * p->K, p->K, p, nb);
        }
}
#endif /* HAVE_X86 */

/* The FP32 kernel in plain C (the same FMA chain per output, through fmaf). */
static void f32_c(float *y, int32_t ldy, const float *x, int32_t rows, const sembed__wprep *p,
                  int32_t nb0, int32_t nb1) {
    const float *W = p->packed;
    for (int32_t r = 0; r < rows; r++)
        for (int32_t n = nb0 * 16; n < nb1 * 16 && n < p->N; n++) {
            const float *wb = W + (int64_t)(n / 16) * p->Kp * 16 + n % 16;
            float acc = 0;
            for (int64_t k = 0; k < p->K; k++) acc = fmaf(x[(int64_t)r * p->K + k], wb[k * 16], acc);
            y[(int64_t)r * ldy + n] = acc + p->bias[n];
        }
}

/* The split FP32 GEMM in plain C (a preparation made with AMX, run with the ISA capped below
 * it: tests only): split_amx's sums, the bf16 ones in fp32 in k order, from the panel's int8
 * digits of x and the packed int8 lo parts. */
static void f32_split_c(float *y, int32_t ldy, const float *x, const int8_t *q, const float *sx,
                        const int8_t *q2, const float *sx2, int32_t rows, const sembed__wprep *p,
                        int32_t nb0, int32_t nb1) {
    const int64_t Kp = p->Kp;
    const int8_t *W = p->packed;
    for (int32_t r = 0; r < rows; r++)
        for (int32_t n = nb0 * 16; n < nb1 * 16 && n < p->N; n++) {
            const float *xr = x + (int64_t)r * p->K, *wn = p->w + (int64_t)n * p->K;
            float acc = 0, accl = 0;
            int32_t a1 = 0, a2 = 0;
            for (int64_t k = 0; k < p->K; k++) {
                const float xh = sembed__bf16_round(xr[k]), xl = sembed__bf16_lo(xr[k]);
                const float wh = sembed__bf16_round(wn[k]);
                acc += xh * wh;
                accl += xl * wh;
                const int32_t wl = W[split_lo(Kp, n, (int32_t)k)];
                a1 += (int32_t)q[(int64_t)r * Kp + k] * wl;
                a2 += (int32_t)q2[(int64_t)r * Kp + k] * wl;
            }
            const float c = fmaf((float)a2, sx2[r] * p->scale[n], (acc + accl) + p->bias[n]);
            y[(int64_t)r * ldy + n] = fmaf((float)a1, sx[r] * p->scale[n], c);
        }
}

/* ---- the op ---------------------------------------------------------------------------------- */

/* Per thread: a tile buffer (CBUF_RUN) and two panel slots, each 2 MB scales and a panel (MB, Kp)
 * of int8 (one or two digits) or bf16, or for split fp32 two bf16 (hi, lo) then two int8 digits
 * (at most 1.5 MB * Kp floats), plus alignment slack. Two slots, because a
 * GEMM of few panels converts each panel once into a shared slot (panel i in thread i/2's slot
 * i%2; fewer than 2 panels per thread) and then splits its columns among the threads. */
static int64_t slot_floats(int64_t Kp) { return 2 * MB + MB * Kp + MB * Kp / 2; }

/* After the two slots, INT8A's gather area: MB scales, then (MB, Kp) int8 (adapt_panel). */
static int64_t gather_floats(int64_t Kp) { return MB + MB * Kp / 4; }

/* A thread's gather area (thread_area's base given): INT8A's row copy while converting, then
 * its gathered second digits (adapt_panel). */
static float *gather_area(const sembed__wprep *p, float *base) {
    return base + CBUF_RUN + 2 * slot_floats(p->Kp);
}

int64_t sembed__cpu_prep_scratch(int32_t max_k) {
    const int64_t Kp = (max_k + 63) / 64 * 64;
    return 16 + CBUF_RUN + 2 * slot_floats(Kp) + gather_floats(Kp);
}

typedef struct prep_args {
    float *y;
    const float *x;
    const sembed__wprep *p;
    int64_t M;
    int32_t n_panels, n_splits;
    bool shared; /* panels converted first, into the slots of panel_slot() */
    sembed__act_kind act;
    const sembed__exec *ex;
} prep_args;

typedef struct panel_slot {
    float *sx;  /* (MB) int8 row scales, then (MB) the second digit's (INT8X2) */
    void *buf;  /* (MB, Kp) int8 or bf16, or two (MB, Kp) int8 (INT8X2: first digits, second
                 * digits), or split: two (MB, Kp) bf16 (hi, lo) then the two int8 digit panels;
                 * 64-byte aligned */
} panel_slot;

static float *thread_area(const prep_args *a, int32_t thread) {
    const int64_t per_thread = a->ex->scratch_floats / sembed__pool_threads(a->ex->pool);
    SEMBED_ASSERT(per_thread >= sembed__cpu_prep_scratch(a->p->K));
    float *base = a->ex->scratch + (int64_t)thread * per_thread;
    return (float *)(((uintptr_t)base + 63) & ~(uintptr_t)63); /* then cbuf (CBUF_RUN) */
}

static panel_slot slot_at(const prep_args *a, int32_t thread, int32_t slot) {
    float *s = thread_area(a, thread) + CBUF_RUN + slot * slot_floats(a->p->Kp);
    return (panel_slot){s, s + 2 * MB};
}

static int32_t rows_of(const prep_args *a, int32_t panel) {
    const int64_t m0 = (int64_t)panel * MB;
    return (int32_t)(a->M - m0 < MB ? a->M - m0 : MB);
}

/* Whether a preparation's panels go to AMX tiles (and so are zero-padded to 16-row tiles). */
static bool panel_amx(const sembed__wprep *p) {
    const sembed__cpu_isa *isa = sembed__cpu_isa_get();
    if (p->precision == SEMBED_PRECISION_BF16) return isa->amx_bf16;
    if (p->precision == SEMBED_PRECISION_FP32) return p->split && isa->amx_bf16 && isa->amx_int8;
    return isa->avx512 && isa->amx_int8 && !p->asym; /* no uint8 digits on AMX yet */
}

/* Whether a panel of `rows` rows keeps its two digits as one run of rows (rows_at, q8_amx):
 * INT8X2 panels of up to RUN_ROWS rows (a query). Larger ones keep two planes: with the run,
 * all-MiniLM-L6-v2 int8 batches of 256 texts ran 11% slower (880-929 -> 779-820 texts/s). Both
 * give the same bits. */
#define RUN_ROWS 32
static bool run_layout(const sembed__wprep *p, int32_t rows) {
    return p->digits == 2 && !p->split && rows <= RUN_ROWS;
}

/* Where row r of a converted panel of `rows` rows lies in its slot: bf16 x (hi) and, split, its
 * lo part; int8 digits q and (INT8X2 or split) q2 with their row scales. Split: four planes of
 * (MB, Kp) — bf16 hi, bf16 lo, int8 q, int8 q2; BF16: one bf16 plane; INT8: one int8 plane;
 * INT8X2: two int8 planes, or in a panel of up to RUN_ROWS rows one run of 2·rows rows of Kp
 * (the first digits of rows 0..rows-1, then their second digits) in their room, which q8_amx
 * cuts into 16-row tiles. */
typedef struct panel_rows {
    uint16_t *xh, *xl;
    int8_t *q, *q2; /* q2 NULL: one digit */
    float *sx, *sx2;
    int8_t *qa; /* INT8A: the second digits (a plane after q), and their scales (0: none) */
    float *sa;
    int32_t *on, *oi; /* INT8A: outlier channels per row (count; MAXO channels, values) */
    float *ox;
} panel_rows;

/* INT8A's outlier lists (MB counts, MB x MAXO channels and values) fit the room after its
 * three planes (a slot's int8 room is six planes of at least MB x 64 bytes) */
_Static_assert(MB * 4 * (1 + 2 * SEMBED__INT8A_MAXO) <= 3 * MB * 64, "INT8A outlier lists");

static panel_rows rows_at(const sembed__wprep *p, panel_slot s, int32_t rows, int32_t r) {
    const int64_t Kp = p->Kp, plane = (int64_t)MB * Kp;
    panel_rows v = {.sx = s.sx + r, .sx2 = s.sx + MB + r};
    uint16_t *b16 = s.buf;
    if (p->split) {
        v.xh = b16 + r * Kp, v.xl = v.xh + plane;
        v.q = (int8_t *)(b16 + 2 * plane) + r * Kp, v.q2 = v.q + plane;
    } else if (p->precision == SEMBED_PRECISION_BF16) {
        v.xh = b16 + r * Kp;
    } else {
        int8_t *q = s.buf;
        v.q = q + r * Kp;
        if (p->digits == 2) v.q2 = run_layout(p, rows) ? q + (rows + r) * Kp : v.q + plane;
        if (p->adapt) {
            v.qa = v.q + plane, v.sa = (float *)(q + 2 * plane) + r;
            int32_t *o = (int32_t *)(q + 3 * plane); /* MB counts, then MB x MAXO channels */
            v.on = o + r, v.oi = o + MB + r * SEMBED__INT8A_MAXO;
            v.ox = (float *)(o + MB + MB * SEMBED__INT8A_MAXO) + r * SEMBED__INT8A_MAXO;
        }
    }
    if (!v.q2 && !p->asym) v.sx2 = NULL; /* INT8U: the rows' zero points (as floats) */
    return v;
}

/* INT8A rows [0, n) of v from x (rows real..n-1 zero): per row its outlier channels (into v.on,
 * v.oi, v.ox), the row less them in tmp (K floats), and from tmp its uint8 digit and, where it
 * needs one, its second digit. */
static void adapt_convert(const sembed__wprep *p, panel_rows v, const float *x, int32_t real,
                          int32_t n, float *tmp) {
    const int32_t K = p->K;
    const int64_t Kp = p->Kp;
    void (*u8)(int8_t *, float *, float *, const float *, int32_t, int32_t, int32_t, int32_t) =
        quantize_rows_u8_c;
    adapt_row_fn row = adapt_row_c;
    outliers_fn outliers = outliers_c;
#ifdef HAVE_X86
    if (sembed__cpu_isa_get()->avx512) u8 = quantize_rows_u8_512, row = adapt_row_512, outliers = outliers_512;
#endif
    for (int32_t r = 0; r < n; r++) {
        int32_t *oi = v.oi + r * SEMBED__INT8A_MAXO, no = 0;
        float *ox = v.ox + r * SEMBED__INT8A_MAXO;
        const float *xr = x + (int64_t)r * K;
        if (r < real) {
            no = outliers(oi, xr, K);
            memcpy(tmp, xr, sizeof(float) * (size_t)K);
            for (int32_t o = 0; o < no; o++) ox[o] = xr[oi[o]], tmp[oi[o]] = 0;
        }
        v.on[r] = no;
        u8(v.q + r * Kp, v.sx + r, v.sx2 + r, tmp, r < real, 1, K, (int32_t)Kp);
        adapt_rows(row, v.qa + r * Kp, v.sa + r, v.q + r * Kp, v.sx + r, v.sx2 + r, tmp, r < real, 1,
                   K, (int32_t)Kp);
    }
}

/* Rows [ra, rb) of one panel of x (`rows` rows from x on) as its kernel reads them, AMX tiles
 * zero-padded: one-part rows from `rows` to the end of the last 16-row tile; an INT8X2 run from
 * 2·rows to the end of its last tile, by the part that reaches `rows`. Row by row, so parts of a
 * panel can be converted by different threads. */
static void convert_rows(const sembed__wprep *p, const float *x, int32_t rows, int32_t ra,
                         int32_t rb, panel_slot s, float *tmp) {
    if (p->precision == SEMBED_PRECISION_FP32 && !p->split) return; /* the kernels read x */
    const bool amx = panel_amx(p);
    const int32_t pad = amx ? (rows + 15) / 16 * 16 : rows;
    if (rb > pad) rb = pad;
    if (rb <= ra) return;
    const int32_t K = p->K, Kp = p->Kp;
    const float *xr = x + (int64_t)ra * K;
    const panel_rows v = rows_at(p, s, rows, ra);
    if (run_layout(p, rows)) {
        const int32_t real = (rows < rb ? rows : rb) - ra;
        if (amx && rb >= rows) /* the run's padding: run rows 2·rows .. its last tile's end */
            memset(rows_at(p, s, rows, rows).q2, 0,
                   (size_t)((2 * rows + 15) / 16 * 16 - 2 * rows) * (size_t)Kp);
        if (real <= 0) return;
#ifdef HAVE_X86
        if (sembed__cpu_isa_get()->avx512) {
            quantize_rows_512(v.q, v.sx, v.q2, v.sx2, xr, real, real, K, Kp);
            return;
        }
#endif
        quantize_rows_c(v.q, v.sx, v.q2, v.sx2, xr, real, real, K, Kp);
        return;
    }
    const int32_t real = rows < rb ? (rows > ra ? rows - ra : 0) : rb - ra, n = rb - ra;
    if (p->precision == SEMBED_PRECISION_BF16) {
#ifdef HAVE_X86
        bf16_rows(v.xh, xr, real, n, K, Kp);
#endif
        return;
    }
    if (p->adapt) {
        adapt_convert(p, v, xr, real, n, tmp);
        return;
    }
    if (p->asym) {
#ifdef HAVE_X86
        if (sembed__cpu_isa_get()->avx512) {
            quantize_rows_u8_512(v.q, v.sx, v.sx2, xr, real, n, K, Kp);
            return;
        }
#endif
        quantize_rows_u8_c(v.q, v.sx, v.sx2, xr, real, n, K, Kp);
        return;
    }
#ifdef HAVE_X86
    if (p->split && amx) bf16_split_rows(v.xh, v.xl, xr, real, n, K, Kp);
    if (sembed__cpu_isa_get()->avx512) {
        quantize_rows_512(v.q, v.sx, v.q2, v.sx2, xr, real, n, K, Kp);
        return;
    }
#endif
    quantize_rows_c(v.q, v.sx, v.q2, v.sx2, xr, real, n, K, Kp);
}

/* INT8A's outlier product for one row, columns of blocks [nb0, nb1): per column n, t = 0,
 * t = fmaf(x_o, (float)qw[n, o], t) over the row's outliers in order, y = fmaf(t, sw[n], y). */
static void outlier_row_c(float *yr, const sembed__wprep *p, const int32_t *oi, const float *ox,
                          int32_t no, int32_t nb0, int32_t nb1) {
    const int8_t *W = p->packed;
    const int64_t Kp = p->Kp;
    for (int32_t n = nb0 * 16; n < nb1 * 16 && n < p->N; n++) {
        const int8_t *wb = W + (int64_t)(n / 16) * Kp * 16 + (n % 16) * 4;
        float t = 0;
        for (int32_t o = 0; o < no; o++) t = fmaf(ox[o], (float)wb[(oi[o] / 4) * 64 + oi[o] % 4], t);
        yr[n] = fmaf(t, p->scale[n], yr[n]);
    }
}

#ifdef HAVE_X86
/* Input channel k's int8 weights of column block nb as 16 floats: the block's bytes for k lie
 * in one 64-byte line (4 k per column), shifted out of their lanes. */
T512 static inline __m512 packed_k_512(const sembed__wprep *p, int32_t nb, int32_t k) {
    const __m512i w4 = _mm512_loadu_si512((const int8_t *)p->packed + (int64_t)nb * p->Kp * 16 + (k / 4) * 64);
    return _mm512_cvtepi32_ps(
        _mm512_srai_epi32(_mm512_sll_epi32(w4, _mm_cvtsi32_si128(24 - 8 * (k % 4))), 24));
}

/* A panel's distinct outlier channels (its rows mostly share a few): ch[0..nd), and for row r's
 * o-th outlier its index od[r][o] in ch; nd > OUTL_DISTINCT: too many (row by row then). */
#define OUTL_DISTINCT 32
typedef struct outl_map {
    int32_t nd, ch[OUTL_DISTINCT];
    uint8_t od[MB][SEMBED__INT8A_MAXO];
} outl_map;

static void outl_map_make(outl_map *mp, panel_rows v, int32_t rows) {
    mp->nd = 0;
    for (int32_t r = 0; r < rows; r++)
        for (int32_t o = 0; o < v.on[r]; o++) {
            const int32_t k = v.oi[r * SEMBED__INT8A_MAXO + o];
            int32_t d = 0;
            while (d < mp->nd && mp->ch[d] != k) d++;
            if (d == OUTL_DISTINCT) {
                mp->nd = OUTL_DISTINCT + 1;
                return;
            }
            if (d == mp->nd) mp->ch[mp->nd++] = k;
            mp->od[r][o] = (uint8_t)d;
        }
}

/* outlier_row_c with 16 lanes: the weights of the row's o-th outlier from wf[od[o]] (a panel's
 * channels, unpacked once), or with wf NULL unpacked here from channel oi[o]. */
T512 static inline __attribute__((always_inline)) void outlier_row_512(
    float *yr, const sembed__wprep *p, const float *ox, const int32_t *oi, const uint8_t *od,
    int32_t no, const float (*wf)[64], int32_t nb0, int32_t nb1) {
    for (int32_t nb = nb0; nb < nb1; nb++) {
        const int32_t n = nb * 16, left = p->N - n;
        if (left <= 0) break;
        const __mmask16 mk = left >= 16 ? 0xffff : (__mmask16)((1u << left) - 1);
        __m512 t = _mm512_setzero_ps();
        for (int32_t o = 0; o < no; o++)
            t = _mm512_fmadd_ps(_mm512_set1_ps(ox[o]),
                                wf ? _mm512_loadu_ps(wf[od[o]] + (nb - nb0) * 16)
                                   : packed_k_512(p, nb, oi[o]),
                                t);
        _mm512_mask_storeu_ps(yr + n, mk,
                              _mm512_fmadd_ps(t, _mm512_loadu_ps(p->scale + n),
                                              _mm512_maskz_loadu_ps(mk, yr + n)));
    }
}

/* The outlier products of a panel's rows for blocks [nb0, nb1) (at most 4): the weights of each
 * distinct outlier channel unpacked once into 64 floats, then per row one FMA per outlier and
 * block from them, in outlier_row_c's order; too many channels in the panel: row by row, each
 * weight unpacked where it is used. Unpacking per row and outlier, the outlier products took 5%
 * of an all-MiniLM-L6-v2 int8 batch (perf, Zen 4). */
T512 static void outlier_rows_512(float *y, const sembed__wprep *p, panel_rows v, int32_t rows,
                                  const outl_map *mp, int32_t nb0, int32_t nb1) {
    const bool shared = mp->nd <= OUTL_DISTINCT;
    float wf[OUTL_DISTINCT][64];
    SEMBED_ASSERT(nb1 - nb0 <= 4);
    for (int32_t d = 0; shared && d < mp->nd; d++)
        for (int32_t nb = nb0; nb < nb1; nb++)
            _mm512_storeu_ps(wf[d] + (nb - nb0) * 16, packed_k_512(p, nb, mp->ch[d]));
    for (int32_t r = 0; r < rows; r++) {
        if (v.on[r] == 0) continue;
        float *yr = y + (int64_t)r * p->N;
        const float *ox = v.ox + r * SEMBED__INT8A_MAXO;
        const int32_t *oi = v.oi + r * SEMBED__INT8A_MAXO;
        if (shared)
            outlier_row_512(yr, p, ox, oi, mp->od[r], v.on[r], (const float (*)[64])wf, nb0, nb1);
        else
            outlier_row_512(yr, p, ox, oi, NULL, v.on[r], NULL, nb0, nb1);
    }
}
#endif

/* INT8A: every row's uint8 digit (with the bias), then the second digits' sums (with a zero
 * bias) of the rows that have them into t (the thread's tile buffer: 64 rows of 64 columns, or
 * on plain C one row of N), added to y's rows. With VNNI the flagged rows are first gathered
 * into the thread's own area (after its slots), so that they run as full 6-row tiles: in place,
 * a panel's flagged rows come in runs of one to three (about half the rows are flagged), and
 * q8_vnni_1x4 alone took 5.6% of an all-MiniLM-L6-v2 int8 batch (perf, Zen 4). A row's sums
 * do not depend on the tile it runs in, so the bits are those of one row at a time. */
static void adapt_panel(const sembed__wprep *p, float *y, panel_rows v, int32_t rows, int32_t nb0,
                        int32_t nb1, void *cbuf) {
    sembed__wprep pz = *p;
    pz.bias = p->zero_bias;
    float *t = cbuf;
    const int32_t N = p->N;
#ifdef HAVE_X86
    if (sembed__cpu_isa_get()->avx512_vnni) {
        const int64_t Kp = p->Kp;
        int32_t idx[MB], m = 0;
        for (int32_t r = 0; r < rows; r++)
            if (v.sa[r] > 0) idx[m++] = r;
        const int8_t *qa = v.qa;
        const float *sa = v.sa;
        if (m < rows && m > 0) { /* gather; when every row is flagged, they are in place */
            float *gs = gather_area(p, t);
            int8_t *gq = (int8_t *)(gs + MB);
            for (int32_t i = 0; i < m; i++) {
                memcpy(gq + i * Kp, v.qa + idx[i] * Kp, (size_t)Kp);
                gs[i] = v.sa[idx[i]];
            }
            qa = gq, sa = gs;
        }
        SEMBED_ASSERT(m * 64 <= CBUF_RUN);
        outl_map mp;
        outl_map_make(&mp, v, rows);
        /* column groups outer, so that the second pass finds the group's weights in L1 */
        for (int32_t nb = nb0; nb < nb1;) {
            const int32_t nbe = nb + 4 <= nb1 ? nb + 4 : nb + 2, c0 = nb * 16;
            const int32_t c1 = nbe * 16 < N ? nbe * 16 : N;
            q8_vnni(y, N, v.q, v.sx, v.sx2, rows, p, nb, nbe, 0);
            if (m > 0) {
                q8_vnni(t, 64, qa, sa, NULL, m, &pz, nb, nbe, c0);
                for (int32_t i = 0; i < m; i++) {
                    float *yr = y + (int64_t)idx[i] * N;
                    for (int32_t c = c0; c < c1; c++) yr[c] += t[i * 64 + c - c0];
                }
            }
            outlier_rows_512(y, p, v, rows, &mp, nb, nbe);
            nb = nbe;
        }
        return;
    }
#endif
    SEMBED_ASSERT(N <= CBUF_RUN);
    q8_kernel_c(y, N, v.q, v.sx, v.sx2, rows, p, nb0, nb1, false);
    const int32_t c1 = nb1 * 16 < N ? nb1 * 16 : N;
    for (int32_t r = 0; r < rows; r++) {
        if (!(v.sa[r] > 0)) continue;
        q8_kernel_c(t, 0, v.qa + (int64_t)r * p->Kp, v.sa + r, NULL, 1, &pz, nb0, nb1, false);
        for (int32_t c = nb0 * 16; c < c1; c++) y[(int64_t)r * N + c] += t[c];
    }
    for (int32_t r = 0; r < rows; r++)
        if (v.on[r] > 0)
            outlier_row_c(y + (int64_t)r * N, p, v.oi + r * SEMBED__INT8A_MAXO,
                          v.ox + r * SEMBED__INT8A_MAXO, v.on[r], nb0, nb1);
}

/* y rows [0, rows), column blocks [nb0, nb1), from a converted panel (and x, for fp32). */
static void compute_panel(const sembed__wprep *p, float *y, const float *x, int32_t rows,
                          panel_slot s, int32_t nb0, int32_t nb1, void *cbuf) {
    const sembed__cpu_isa *isa = sembed__cpu_isa_get();
    (void)isa, (void)cbuf;
    const panel_rows v = rows_at(p, s, rows, 0);
    const int32_t pad16 = (rows + 15) / 16 * 16;
    if (p->precision == SEMBED_PRECISION_FP32) {
        if (p->split) {
#ifdef HAVE_X86
            if (panel_amx(p)) {
                split_amx(y, p->N, v.xh, v.xl, v.q, v.sx, v.q2, v.sx2, rows, pad16, p, nb0, nb1,
                          cbuf);
                return;
            }
#endif
            f32_split_c(y, p->N, x, v.q, v.sx, v.q2, v.sx2, rows, p, nb0, nb1);
            return;
        }
#ifdef HAVE_X86
        if (isa->avx512) {
            f32_avx512(y, p->N, x, rows, p, nb0, nb1);
            return;
        }
        if (isa->avx2) {
            f32_avx2(y, p->N, x, rows, p, nb0, nb1);
            return;
        }
#endif
        f32_c(y, p->N, x, rows, p, nb0, nb1);
        return;
    }
    if (p->precision == SEMBED_PRECISION_BF16) {
#ifdef HAVE_X86
        if (panel_amx(p))
            bf16_amx(y, p->N, v.xh, rows, pad16, p, nb0, nb1, cbuf);
        else
            bf16_avx(y, p->N, v.xh, rows, p, nb0, nb1);
#endif
        return;
    }
    const float *zf = p->asym ? v.sx2 : NULL; /* INT8U: the rows' zero points */
    if (p->adapt) {
        adapt_panel(p, y, v, rows, nb0, nb1, cbuf);
        return;
    }
#ifdef HAVE_X86
    if (panel_amx(p)) {
        q8_amx(y, p->N, v.q, v.sx, v.q2, v.sx2, run_layout(p, rows), rows, pad16, p, nb0, nb1,
               cbuf);
        return;
    }
    if (isa->avx512_vnni) { /* INT8X2: both digits in one pass */
        if (v.q2)
            q8x2_vnni(y, p->N, v.q, v.sx, v.q2, v.sx2, rows, p, nb0, nb1);
        else
            q8_vnni(y, p->N, v.q, v.sx, zf, rows, p, nb0, nb1, 0);
        return;
    }
#endif
    /* INT8X2: the second digit, then the first over it */
    if (v.q2) q8_kernel_c(y, p->N, v.q2, v.sx2, NULL, rows, p, nb0, nb1, false);
    q8_kernel_c(y, p->N, v.q, v.sx, zf, rows, p, nb0, nb1, v.q2 != NULL);
}

/* Shared mode, first pass: part task % parts of panel task / parts (parts = n_tasks / panels)
 * into thread panel/2's slot panel%2. */
static void convert_task(void *v, int32_t task, int32_t n_tasks, int32_t thread) {
    const prep_args *a = v;
    const int32_t parts = n_tasks / a->n_panels, panel = task / parts, part = task % parts;
    /* the parts split the rows to convert: an INT8X2 run's real rows (its padding goes with the
     * last part), or the rows to the panel's last 16-row tile */
    const int32_t rows = rows_of(a, panel);
    const int32_t n = run_layout(a->p, rows) ? rows : (rows + 15) / 16 * 16;
    convert_rows(a->p, a->x + (int64_t)panel * MB * a->p->K, rows, n * part / parts,
                 n * (part + 1) / parts, slot_at(a, panel / 2, panel % 2),
                 gather_area(a->p, thread_area(a, thread)));
}

static void prep_task(void *v, int32_t task, int32_t n_tasks, int32_t thread) {
    (void)n_tasks;
    const prep_args *a = v;
    const sembed__wprep *p = a->p;
    const int32_t panel = task / a->n_splits, split = task % a->n_splits;
    const int32_t rows = rows_of(a, panel);
    const int32_t pairs = p->Np / 32;
    const int32_t nb0 = 2 * (pairs * split / a->n_splits),
                  nb1 = 2 * (pairs * (split + 1) / a->n_splits);
    if (nb1 <= nb0) return;
    const float *x = a->x + (int64_t)panel * MB * p->K;
    panel_slot s;
    if (a->shared) {
        s = slot_at(a, panel / 2, panel % 2);
    } else {
        s = slot_at(a, thread, 0);
        convert_rows(p, x, rows, 0, MB, s, gather_area(p, thread_area(a, thread)));
    }
    float *y = a->y + (int64_t)panel * MB * p->N;
    compute_panel(p, y, x, rows, s, nb0, nb1, thread_area(a, thread));
    /* the activation on the block just written, while it is in cache (elementwise: the same
     * bits as the backend's act pass over all of y) */
    const int32_t n0 = nb0 * 16, n1 = nb1 * 16 < p->N ? nb1 * 16 : p->N;
    for (int32_t r = 0; r < rows && a->act != SEMBED__ACTK_IDENTITY; r++)
        sembed__cpu_act_span(y + (int64_t)r * p->N + n0, n1 - n0, a->act);
}

void sembed__cpu_gemm_prep(float *y, const float *x, const sembed__wprep *p, int64_t M,
                           sembed__act_kind act, const sembed__exec *ex) {
    if (M <= 0) return;
    const int32_t nt = sembed__pool_threads(ex->pool);
    const int64_t panels = (M + MB - 1) / MB;
    SEMBED_ASSERT(panels < INT32_MAX / 64);
    /* few panels (a query): split the columns too, so every thread has work, and convert each
     * panel once beforehand instead of in every task of its columns. As few column parts as
     * fill the threads evenly: each task configures the tiles and starts its own weight
     * streams, and a 16-token query took 1.20 -> 1.05 ms (bge-small int8, 2 threads) with one
     * part per thread instead of two */
    int32_t splits = 1;
    if (panels < 2 * nt) {
        const int64_t tasks = nt * ((panels + nt - 1) / nt); /* a multiple of the threads */
        splits = (int32_t)((tasks + panels - 1) / panels);
    }
    if (splits > p->Np / 32) splits = p->Np / 32;
    const bool converts = p->precision != SEMBED_PRECISION_FP32 || p->split;
    prep_args a = {y, x, p, M, (int32_t)panels, splits, splits > 1 && converts, act, ex};
    if (a.shared) {
        SEMBED_ASSERT(panels <= 2 * (int64_t)nt);
        /* a panel's rows split among the threads when there are fewer panels than threads */
        const int32_t parts = panels >= nt ? 1 : (int32_t)((nt + panels - 1) / panels);
        sembed__pool_run(ex->pool, convert_task, &a, (int32_t)panels * parts);
    }
    sembed__pool_run(ex->pool, prep_task, &a, (int32_t)panels * splits);
}
