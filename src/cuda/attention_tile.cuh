/* attention_tile.cuh — what attention.cu's mma.sync kernel and attention_sm90.cu's wgmma kernel
 * share: the asynchronous copies into shared memory and the online softmax of one key tile in
 * FlashAttention-2's register layout, which both MMA forms give their accumulators. */
#ifndef SEMBED_CUDA_ATTENTION_TILE_CUH
#define SEMBED_CUDA_ATTENTION_TILE_CUH

#include "cuda_common.cuh"

static __device__ __forceinline__ uint32_t sembed__smem_u32(const void *p) {
    return (uint32_t)__cvta_generic_to_shared(p);
}
/* 16 bytes global -> shared (a shared-window address), zero-filled when !valid (src must still
 * be a valid address) */
static __device__ __forceinline__ void sembed__cp16_s(uint32_t dst, const void *src, bool valid) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src),
                 "r"(valid ? 16 : 0));
}
static __device__ __forceinline__ void sembed__cp16(void *dst, const void *src, bool valid) {
    sembed__cp16_s(sembed__smem_u32(dst), src, valid);
}
static __device__ __forceinline__ void sembed__cp_commit() {
    asm volatile("cp.async.commit_group;\n" ::);
}
template <int N> static __device__ __forceinline__ void sembed__cp_wait() {
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}
/* 2^x on MUFU.EX2 without exp2f's denormal fix-ups (a compare, two FMULs and a select per
 * score outside -ftz): a probability below 2^-126 is 0 in its fp16 P fragment either way and
 * nothing in the fp32 row sum (v2 spent about a third of its softmax instructions on them). */
static __device__ __forceinline__ float sembed__ex2(float x) {
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
    return y;
}

/* What a block works on: query rows q0.. of the sequence of L tokens at t0, head h; its q|k|v
 * rows start at base (row stride ld = 3H), n_kt key tiles of bn. Waits for the kernel before. */
template <class E> struct sembed__att_block {
    int q0, h, t0, L, n_kt;
    int64_t ld;
    const E *base;
};
template <int D, int BN, class E>
static __device__ __forceinline__ sembed__att_block<E> sembed__att_block_of(const E *qkv, const int32_t *seq_off,
                                                                            const int32_t *tiles, int H) {
    sembed__grid_dep_sync();
    sembed__att_block<E> b;
    const int seq = tiles[2 * blockIdx.x];
    b.q0 = tiles[2 * blockIdx.x + 1], b.h = blockIdx.y;
    b.t0 = seq_off[seq], b.L = seq_off[seq + 1] - b.t0;
    b.ld = 3 * (int64_t)H;
    b.base = qkv + (int64_t)b.t0 * b.ld + b.h * D;
    b.n_kt = (b.L + BN - 1) / BN;
    return b;
}

/* A thread's two query rows, g and g + 8 of its warp's 16 (g = lane / 4): running maxima (base
 * 2, scaled), this thread's partial sums of the probabilities, and MPNet's bias rows
 * (bias_k[j] = rel_bias[h][j - i_k + R - 1]; NULL without a bias). */
struct sembed__att_rows {
    float m0, m1, l0, l1;
    const float *bias0, *bias1;
};

/* One key tile's online-softmax step. sc holds the raw scores q·k of the two rows against keys
 * j0 + 8n + 2qd + {0, 1} (sc[n][0..1] row g, sc[n][2..3] row g + 8; qd = lane % 4) and is turned
 * into their probabilities relative to the rows' new maxima: the scale and the bias folded in,
 * keys below 0 (j0 < 0: a tile shared by heads, attention_sm90.cu) and from L on 0. a0 and a1
 * receive the factors by which the rows' earlier sums (already applied to r.l0, r.l1) and
 * outputs (the caller's) must be rescaled. */
template <int NB>
static __device__ __forceinline__ void sembed__att_softmax(float (&sc)[NB][4], sembed__att_rows &r,
                                                           float &a0, float &a1, int j0, int L,
                                                           int qd, float scale_log2) {
    const float LOG2E = 1.4426950408889634f;
    const bool bias = r.bias0 != NULL;
    /* A full tile without a bias (the common case) takes the max of the raw scores (the scale
     * is positive) and folds the scale into the exponent's FMA: fewer instructions per score. */
    const bool plain = !bias && j0 >= 0 && j0 + 8 * NB <= L; /* the same for the whole warp */
    float mx0 = -INFINITY, mx1 = -INFINITY;
    if (plain) {
#pragma unroll
        for (int n = 0; n < NB; n++)
            mx0 = fmaxf(mx0, fmaxf(sc[n][0], sc[n][1])), mx1 = fmaxf(mx1, fmaxf(sc[n][2], sc[n][3]));
    } else {
#pragma unroll
        for (int n = 0; n < NB; n++)
#pragma unroll
            for (int e = 0; e < 2; e++) {
                const int j = j0 + n * 8 + 2 * qd + e;
                const bool in = (unsigned)j < (unsigned)L; /* 0 <= j < L */
                float v0 = sc[n][e] * scale_log2, v1 = sc[n][2 + e] * scale_log2;
                if (bias) {
                    const int jj = in ? j : 0;
                    v0 += r.bias0[jj] * LOG2E, v1 += r.bias1[jj] * LOG2E;
                }
                sc[n][e] = in ? v0 : -INFINITY;
                sc[n][2 + e] = in ? v1 : -INFINITY;
                mx0 = fmaxf(mx0, sc[n][e]), mx1 = fmaxf(mx1, sc[n][2 + e]);
            }
    }
    mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 1));
    mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 2));
    mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 1));
    mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 2));
    if (plain) mx0 *= scale_log2, mx1 *= scale_log2;
    const float mn0 = fmaxf(r.m0, mx0), mn1 = fmaxf(r.m1, mx1); /* finite: some key in 0 .. L-1 */
    a0 = sembed__ex2(r.m0 - mn0), a1 = sembed__ex2(r.m1 - mn1);
    r.m0 = mn0, r.m1 = mn1;
    float s0 = 0.f, s1 = 0.f;
    if (plain) {
#pragma unroll
        for (int n = 0; n < NB; n++) {
            sc[n][0] = sembed__ex2(fmaf(sc[n][0], scale_log2, -mn0));
            sc[n][1] = sembed__ex2(fmaf(sc[n][1], scale_log2, -mn0));
            sc[n][2] = sembed__ex2(fmaf(sc[n][2], scale_log2, -mn1));
            sc[n][3] = sembed__ex2(fmaf(sc[n][3], scale_log2, -mn1));
            s0 += sc[n][0] + sc[n][1], s1 += sc[n][2] + sc[n][3];
        }
    } else {
#pragma unroll
        for (int n = 0; n < NB; n++) {
            sc[n][0] = sembed__ex2(sc[n][0] - mn0), sc[n][1] = sembed__ex2(sc[n][1] - mn0);
            sc[n][2] = sembed__ex2(sc[n][2] - mn1), sc[n][3] = sembed__ex2(sc[n][3] - mn1);
            s0 += sc[n][0] + sc[n][1], s1 += sc[n][2] + sc[n][3];
        }
    }
    r.l0 = r.l0 * a0 + s0, r.l1 = r.l1 * a1 + s1; /* this thread's partial sums */
}

/* The rows' bias pointers for query positions i0 and i1 = i0 + 8 of a sequence of L tokens. */
static __device__ __forceinline__ void sembed__att_bias_rows(sembed__att_rows &r,
                                                             const float *rel_bias, int h, int R,
                                                             int i0, int L) {
    r.bias0 = r.bias1 = NULL;
    if (rel_bias) {
        const float *bh = rel_bias + (int64_t)h * (2 * R - 1) + R - 1;
        r.bias0 = bh - (i0 < L ? i0 : 0);
        r.bias1 = bh - (i0 + 8 < L ? i0 + 8 : 0);
    }
}

/* The rows' full sums over the quad, and their reciprocals (l0 and l1 hold them after). */
static __device__ __forceinline__ void sembed__att_finish(sembed__att_rows &r, float &inv0, float &inv1) {
    r.l0 += __shfl_xor_sync(0xffffffffu, r.l0, 1);
    r.l0 += __shfl_xor_sync(0xffffffffu, r.l0, 2);
    r.l1 += __shfl_xor_sync(0xffffffffu, r.l1, 1);
    r.l1 += __shfl_xor_sync(0xffffffffu, r.l1, 2);
    inv0 = 1.0f / r.l0, inv1 = 1.0f / r.l1;
}

#endif
