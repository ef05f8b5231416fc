/* backend.h — the compute backend boundary: a small vtable of fused encoder ops over packed
 * batches, implemented by src/ref/ (plain scalar C, the oracle) and src/cpu/ (fast, threaded,
 * OpenBLAS). Not the encoder (src/encoder.c strings the ops together) and not memory planning.
 *
 * Dimension letters: T tokens of the packed batch (all sequences end to end, no padding),
 * S sequences, H hidden size, A heads, D head size (H/A), M rows and N columns of a GEMM output,
 * K the GEMM's inner size, V vocabulary, P position table rows, Y token types, R the longest
 * sequence a relative-position table covers, F pooled features per sequence. */
#ifndef SEMBED_BACKEND_H
#define SEMBED_BACKEND_H

#include "common.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct sembed__pool sembed__pool;

/* A Linear layer's weights prepared at context creation for a reduced precision (quant.c):
 * INT8, symmetric per output channel (scale max|w[n,:]|/127), packed for VNNI and AMX tiles;
 * BF16, rounded to nearest even, packed in k pairs. It keeps pointers to the fp32 w and b it
 * came from (the reference backend computes from those). */
typedef struct sembed__wprep sembed__wprep;

/* What every op receives last (its "stream"): the threads to split rows over and a scratch area
 * planned at load from scratch_floats(). Ops take no locks and allocate nothing. */
typedef struct sembed__exec {
    sembed__pool *pool;     /* NULL: run on the calling thread */
    float *scratch;         /* scratch_floats() floats, or NULL when that is 0 */
    int64_t scratch_floats;
} sembed__exec;

typedef enum sembed__act_kind {
    SEMBED__ACTK_IDENTITY = 0,
    SEMBED__ACTK_GELU,      /* exact: 0.5*x*(1+erf(x/sqrt(2))) */
    SEMBED__ACTK_GELU_TANH, /* 0.5*x*(1+tanh(sqrt(2/pi)*(x+0.044715*x^3))) */
    SEMBED__ACTK_RELU,
    SEMBED__ACTK_TANH,
    SEMBED__ACTK_SIGMOID,
} sembed__act_kind;

typedef enum sembed__pool_kind {
    SEMBED__POOLK_CLS = 1,  /* the first token of the sequence */
    SEMBED__POOLK_MEAN,     /* mean over the pooled tokens */
    SEMBED__POOLK_MAX,      /* elementwise max over the pooled tokens */
    SEMBED__POOLK_MEAN_SQRT_LEN, /* sum / sqrt(pooled tokens) */
    SEMBED__POOLK_WEIGHTED_MEAN, /* weights 1..L by position (skipped tokens weigh 0) */
    SEMBED__POOLK_LAST,     /* the last token */
} sembed__pool_kind;

#define SEMBED__MAX_POOL_KINDS 6

/* Packed sequences: sequence s is rows seq_off[s] .. seq_off[s+1]-1 of the T rows;
 * seq_off[0] == 0, seq_off[S] == T, and every sequence has at least one token. */

typedef struct sembed__backend {
    const char *name; /* "ref", "cpu" */

    /* Floats of scratch the ops need for sequences of up to max_len tokens, head size D, GEMM
     * N and K in min_dim..max_dim, on n_threads threads. */
    int64_t (*scratch_floats)(int32_t max_len, int32_t head_dim, int32_t min_dim,
                              int32_t max_dim, int32_t n_threads);

    /* out = LayerNorm(word[ids] + type[type_ids] + pos[pos_ids]) * gamma + beta, added in
     * that order. type may be NULL (no token types; type_ids then ignored). */
    void (*embed_ln)(float *out,             /* (T, H) */
                     const int32_t *ids,     /* (T) in [0, V) */
                     const int32_t *pos_ids, /* (T) in [0, P) */
                     const int32_t *type_ids,/* (T) in [0, Y), or NULL: all 0 */
                     const float *word,      /* (V, H) */
                     const float *pos,       /* (P, H) */
                     const float *type,      /* (Y, H) or NULL */
                     const float *gamma,     /* (H) */
                     const float *beta,      /* (H) */
                     int64_t T, int32_t H, float eps, const sembed__exec *ex);

    /* y = x · wᵀ + b, w as a Linear layer stores it. y must not overlap x. The result of a row
     * depends only on that row of x (not on M): the batch-invariance contract. */
    void (*gemm_bias)(float *y,       /* (M, N) */
                      const float *x, /* (M, K) */
                      const float *w, /* (N, K) */
                      const float *b, /* (N) or NULL */
                      int64_t M, int32_t N, int32_t K, const sembed__exec *ex);

    /* Multi-head self-attention per sequence: for each sequence s and head h,
     * out[i, h*D:(h+1)*D] = softmax_j(q_i·k_j / sqrt(D) + bias[h][j-i]) · v_j over the tokens
     * i, j of s. rel_bias, when non-NULL, is indexed rel_bias[h*(2R-1) + (j-i) + R-1] (MPNet's
     * bucketed relative position bias, expanded at load); every sequence must then have <= R
     * tokens. */
    void (*attention)(float *out,              /* (T, H) */
                      const float *qkv,        /* (T, 3H): q | k | v, head h at columns h*D */
                      const int32_t *seq_off,  /* (S+1) */
                      const float *rel_bias,   /* (A, 2R-1) or NULL */
                      int32_t S, int32_t H, int32_t A, int32_t R, const sembed__exec *ex);

    /* out = LayerNorm(a + b) * gamma + beta. out may alias a or b. */
    void (*add_ln)(float *out,         /* (T, H) */
                   const float *a,     /* (T, H) */
                   const float *b,     /* (T, H) */
                   const float *gamma, /* (H) */
                   const float *beta,  /* (H) */
                   int64_t T, int32_t H, float eps, const sembed__exec *ex);

    /* x = act(x), elementwise, in place. */
    void (*act)(float *x, /* (n) */
                int64_t n, sembed__act_kind kind, const sembed__exec *ex);

    /* Pools each sequence's rows into F = n_kinds*H features, the kinds concatenated in order.
     * The first skip[s] tokens of sequence s are left out of mean/max/weighted/sqrt pooling
     * (sentence-transformers' include_prompt=false); CLS and LAST ignore skip. A sequence with
     * no pooled token gives 0 for mean-like kinds and -1e9 for max (as sentence-transformers). */
    void (*pool)(float *out,                  /* (S, n_kinds*H) */
                 const float *x,              /* (T, H) */
                 const int32_t *seq_off,      /* (S+1) */
                 const int32_t *skip,         /* (S) or NULL: none */
                 const sembed__pool_kind *kinds, /* (n_kinds) */
                 int32_t n_kinds, int32_t S, int32_t H, const sembed__exec *ex);

    /* x[s] /= max(||x[s]||_2, 1e-12), per row, in place. */
    void (*normalize)(float *x, /* (S, F) */
                      int32_t S, int32_t F, const sembed__exec *ex);

    /* y = x · wᵀ + b in w's precision. INT8: each row of x is quantized symmetrically on its
     * own (scale max|x[m,:]|/127, round to nearest even), products summed exactly in int32,
     * then y = fmaf((float)acc, sx[m]*sw[n], b[n]): exact integer sums make every kernel (AMX,
     * VNNI, scalar) and the reference agree bit for bit, and rows independent of M. BF16: x
     * and w rounded to bf16, products summed in fp32 (or better) in a fixed order per row. */
    void (*gemm_prep)(float *y,                /* (M, N) */
                      const float *x,          /* (M, K) */
                      const sembed__wprep *w,  /* (N, K) prepared */
                      int64_t M,
                      sembed__act_kind act,    /* then y = act(y), bit for bit the backend's act */
                      const sembed__exec *ex);
} sembed__backend;

extern const sembed__backend sembed__backend_ref;
extern const sembed__backend sembed__backend_cpu;

/* ---- reduced-precision weights (src/cpu/quant.c) ------------------------------------------ */

/* INT8 weights with each activation taken as two int8 digits: x ≈ q·sx + q2·sx2 per row
 * (sx = max|x|/127, q2 the rounded remainder at a 254x finer step), y = fmaf(Σ q·qw, sx·sw,
 * fmaf(Σ q2·qw, sx2·sw, b)): int8 weight bytes, activations to about 15 bits, and exact integer
 * sums (so every kernel and the reference agree bit for bit). A preparation's precision is then
 * SEMBED_PRECISION_INT8 with sembed__wprep_digits 2. Internal: not a sembed_precision. */
#define SEMBED__PRECISION_INT8X2 16
/* INT8 weights with each activation row taken as one uint8 digit with a zero point: lo =
 * min(0, min x), hi = max(0, max x), s = (hi - lo)/255, z = rne(-lo·255/(hi - lo)), u =
 * clamp(rne(x·255/(hi - lo)) + z, 0, 255), y = fmaf(Σ (u - z)·qw, s·sw, b): vpdpbusd's unsigned
 * operand as it is, the zero point folded into the weights' sums. Precision INT8 with
 * sembed__wprep_asym. Internal: not a sembed_precision. */
#define SEMBED__PRECISION_INT8U 17
/* INT8U over a row's ordinary channels, a second digit for the rows that need it, and the
 * row's outlier channels exact. Per row x (K): its outlier channels are those with x_k² >
 * SEMBED__INT8A_THETA2 · Σx²/K (at most SEMBED__INT8A_MAXO, the first in k order); x̃ is x with
 * them zeroed. x̃ takes INT8U's digit u (scale s, zero point z); e = x̃ - (u - z)·s (each element
 * by fmaf), and where Σe² > SEMBED__INT8A_TAU2 · Σx̃² e is taken as one int8 digit too (q2 =
 * rne(e·127/max|e|), s2 = max|e|/127). Sums of squares are in double, in eight lanes of k mod 8
 * added pairwise at the end, so every kernel and the reference agree. Then
 * y = fmaf(Σ (u - z)·qw, s·sw, b), y += fmaf(Σ q2·qw, s2·sw, 0) for a row with a second digit,
 * and for a row with outliers o_1 < o_2 < ...: t = 0, t = fmaf(x_o, (float)qw_o, t) in that
 * order, y = fmaf(t, sw, y) (the weights' own int8 values, so the weights are those of every
 * INT8 format). Rows keep the same bits in any batch (every choice is the row's own).
 * Precision INT8 with sembed__wprep_asym and sembed__wprep_adapt. Internal: not a
 * sembed_precision. */
#define SEMBED__PRECISION_INT8A 18
#define SEMBED__INT8A_TAU2 2.25e-4 /* a relative error of 1.5% (dev/cpu/NOTES.md, twelfth session) */
#define SEMBED__INT8A_THETA2 16.0 /* outliers: over 4 times the row's rms (thirteenth session) */
#define SEMBED__INT8A_MAXO 16

/* Prepares w (N, K) and b (N, or NULL) for `precision` (SEMBED_PRECISION_FP32, _FP32_STRICT,
 * _INT8, SEMBED__PRECISION_INT8X2, _INT8U, _INT8A or _BF16; the pointers must outlive
 * the result). BF16 needs AVX512_BF16:
 * SEMBED_ERR_UNSUPPORTED without. FP32 is split (sembed__wprep_split) where the CPU has AMX
 * bf16; FP32_STRICT never is (its preparation then reports precision FP32). */
sembed_status sembed__wprep_new(const float *w, const float *b, int32_t N, int32_t K,
                                int32_t precision, sembed__wprep **out, sembed_error *err);
void sembed__wprep_free(sembed__wprep *p); /* NULL is a no-op */
/* The precision Linear `which` (0 qkv, 1 attention output, 2 FFN in, 3 FFN out) of layer
 * `layer` gets in a context of `precision`, or -1 for none (the backend's fp32 gemm_bias): FP32 and
 * FP32_STRICT are prepared (split for AMX, or packed for the AVX-512 or AVX2 kernel) where the
 * CPU has AVX2 or better; INT8 on CPUs with AMX takes INT8X2 for qkv and FFN in (whose inputs,
 * LayerNorm outputs, carry outlier channels) and FFN out (GELU's tail), and INT8 for the
 * attention output; elsewhere INT8A for qkv and FFN in (a second digit only for the rows that
 * need it, outliers exact) and the first layer's FFN out, INT8U for the attention output and
 * the other FFN outs. */
int32_t sembed__wprep_choose(int32_t precision, int32_t which, int32_t layer);
int32_t sembed__wprep_precision(const sembed__wprep *p);
/* INT8: int8 digits per activation, 1 or 2 (SEMBED__PRECISION_INT8X2); 1 otherwise. */
int32_t sembed__wprep_digits(const sembed__wprep *p);
/* INT8: one uint8 digit with a zero point per activation row (SEMBED__PRECISION_INT8U, _INT8A). */
bool sembed__wprep_asym(const sembed__wprep *p);
/* INT8: rows with a large error take a second digit (SEMBED__PRECISION_INT8A). */
bool sembed__wprep_adapt(const sembed__wprep *p);
/* FP32 prepared where the CPU has AMX (bf16 and int8) is `split`: w = wh + wl with wh = bf16(w)
 * and wl = w - wh kept as int8 per output channel; y = Σ_k xh·wh + xl·wh (xh = bf16(x), xl =
 * bf16(x - xh)) + the exact int8 sums of x's two INT8X2 digits times wl (src/cpu/quant.c,
 * split_amx). */
bool sembed__wprep_split(const sembed__wprep *p);
/* The fp32 weights a preparation came from: w (N, K), b (N) or NULL, and N, K. */
void sembed__wprep_source(const sembed__wprep *p, const float **w, const float **b, int32_t *N,
                          int32_t *K);

/* The CPU backend's gemm_prep, and the floats of scratch it needs per thread for K <= max_k. */
void sembed__cpu_gemm_prep(float *y, const float *x, const sembed__wprep *p, int64_t M,
                           sembed__act_kind act, const sembed__exec *ex);
/* The CPU backend's act on x[0, n), on the calling thread. */
void sembed__cpu_act_span(float *x, int64_t n, sembed__act_kind kind);
int64_t sembed__cpu_prep_scratch(int32_t max_k);

/* bf16(x - bf16(x)): the low part of x split in two bf16 values. */
float sembed__bf16_lo(float x);
/* bf16 of x, rounded to nearest even (NaN kept a NaN), as an fp32 value. */
float sembed__bf16_round(float x);

/* ---- the CPU's instruction sets (src/cpu/isa.c) --------------------------------------------- */

typedef struct sembed__cpu_isa {
    bool avx2;        /* AVX2 + FMA, OS-enabled */
    bool avx512;      /* F, BW, DQ, VL, OS-enabled */
    bool avx512_vnni;
    bool avx512_bf16;
    bool amx_int8;    /* tiles usable by this process */
    bool amx_bf16;
} sembed__cpu_isa;

/* Detected once; SEMBED_CPU_ISA=scalar|avx2|avx512|amx caps it (for tests and benchmarks). */
const sembed__cpu_isa *sembed__cpu_isa_get(void);
/* For tests, single-threaded, between ops: use at most level 0 scalar, 1 AVX2, 2 AVX-512,
 * 3 AVX-512 VNNI/BF16, 4 AMX (never more than the CPU has). */
void sembed__cpu_isa_cap(int32_t level);

/* ---- threads (src/cpu/pool.c) ------------------------------------------------------------ */

/* Task `task` of n_tasks, run by thread `thread` of the pool's n_threads (0 is the caller). */
typedef void (*sembed__pool_fn)(void *arg, int32_t task, int32_t n_tasks, int32_t thread);

/* A pool of n_threads - 1 workers plus the calling thread. */
sembed_status sembed__pool_new(int32_t n_threads, sembed__pool **out, sembed_error *err);
void sembed__pool_free(sembed__pool *p); /* NULL is a no-op */
int32_t sembed__pool_threads(const sembed__pool *p); /* 1 for NULL */
/* Runs fn for task 0..n_tasks-1 and returns when all are done. Threads claim tasks as they
 * come free (which thread runs a task is not fixed: use `thread` only to pick scratch). With p
 * NULL, runs them all on the caller. */
void sembed__pool_run(sembed__pool *p, sembed__pool_fn fn, void *arg, int32_t n_tasks);

/* Sets OpenBLAS's (process-wide) thread count. */
void sembed__cpu_set_blas_threads(int32_t n_threads);

/* MPNet's relative position bucket (transformers' MPNetEncoder.relative_position_bucket,
 * bidirectional, float32 log as torch computes it). */
int32_t sembed__mpnet_bucket(int32_t rel, int32_t num_buckets, int32_t max_distance);

#endif
