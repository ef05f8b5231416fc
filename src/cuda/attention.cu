/* attention.cu — flash-style attention over packed sequences (kernel v2, dev/kernels/NOTES.md;
 * v1, the wmma version with S, P and O in shared memory, is dev/kernels/attention_v1.cu).
 * One block of 4 warps per (query tile of 64 rows, head); each warp owns 16 query rows. Keys and
 * values stream through shared memory in tiles of 64, double-buffered with cp.async; S = Q·Kᵀ
 * and P·V run on mma.sync m16n8k16 (fp16 or bf16 in, fp32 accumulate) with S, P and the O accumulator
 * in registers (FlashAttention-2's layout); the online softmax is fp32 (base 2, the scale and
 * MPNet's bias folded in). A row's result depends only on its own sequence, whatever else is
 * packed beside it. Dimension letters: T tokens, S sequences, H hidden, A heads, D head size,
 * L a sequence's length, R the relative-bias reach. */
#include "attention.cuh"

#include "attention_sm90.cuh"
#include "attention_tile.cuh"

#include <atomic>
#include <stdlib.h>
#include <string.h>

#include <type_traits>

#define BM SEMBED__ATT_BM /* query rows per block */
#define BN 64             /* keys per tile */
#define NW 4              /* warps per block, 16 query rows each */

template <int D> struct att_smem {
    static constexpr int LDH = D + 8; /* halves per row: 16-byte rows land in distinct banks */
    static constexpr size_t q = 0;
    static constexpr size_t kv = (size_t)BM * LDH * 2;           /* K0 V0 K1 V1 */
    static constexpr size_t tile = (size_t)BN * LDH * 2;
    static constexpr size_t bytes = kv + 4 * tile;
};

static __device__ __forceinline__ void ldsm_x4(uint32_t (&r)[4], const void *p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(sembed__smem_u32(p)));
}
static __device__ __forceinline__ void ldsm_x4_t(uint32_t (&r)[4], const void *p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(sembed__smem_u32(p)));
}
/* c (16x8 fp32) += a (16x16 T, row) · b (16x8 T, col), T fp16 or bf16 */
template <class E>
static __device__ __forceinline__ void mma16816(float (&c)[4], const uint32_t (&a)[4], uint32_t b0,
                                                uint32_t b1) {
    if constexpr (std::is_same<E, __half>::value)
        asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, "
            "{%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
            : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
            : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
    else
        asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, "
            "{%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
            : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
            : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
template <class E> static __device__ __forceinline__ uint32_t pack2(float lo, float hi) {
    typename sembed__pair<E>::t h = sembed__from_f2<E>(lo, hi);
    uint32_t u;
    memcpy(&u, &h, 4);
    return u;
}

/* rows 0..rows-1 of a (rows, D) slice of qkv (row stride ld) into shared memory (row stride
 * LDH), zeros from row n on; all threads of the block take part */
template <int D, class E>
static __device__ __forceinline__ void load_rows_async(E *dst, const E *src, int64_t ld,
                                                       int n, int rows) {
    constexpr int LDH = att_smem<D>::LDH, VPR = D / 8;
    for (int i = threadIdx.x; i < rows * VPR; i += NW * 32) {
        const int r = i / VPR, c = (i % VPR) * 8;
        const bool ok = r < n;
        sembed__cp16(dst + r * LDH + c, ok ? src + (int64_t)r * ld + c : src, ok);
    }
}

template <int D, class E>
static __global__ void __launch_bounds__(NW * 32)
    attention_kernel(E *out, const E *qkv, const int32_t *seq_off, const int32_t *tiles,
                     const float *rel_bias, int H, int R, float scale_log2) {
    typedef att_smem<D> SM;
    constexpr int LDH = SM::LDH, ND = D / 8, NB = BN / 8;
    extern __shared__ __align__(128) unsigned char smem[];
    E *Qs = (E *)(smem + SM::q);
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;

    const sembed__att_block<E> blk = sembed__att_block_of<D, BN>(qkv, seq_off, tiles, H);
    const int q0 = blk.q0, h = blk.h, t0 = blk.t0, L = blk.L, n_kt = blk.n_kt;
    const int64_t ld = blk.ld;
    const E *base = blk.base;

    load_rows_async<D>(Qs, base + (int64_t)q0 * ld, ld, L - q0, BM);
    load_rows_async<D>((E *)(smem + SM::kv), base + H, ld, L, BN);
    load_rows_async<D>((E *)(smem + SM::kv + SM::tile), base + 2 * H, ld, L, BN);
    sembed__cp_commit();

    /* this thread's two rows of the warp's 16: g and g + 8 */
    const int g = lane >> 2, qd = lane & 3;
    const int i0 = q0 + warp * 16 + g, i1 = i0 + 8; /* query positions in the sequence */
    const bool warp_on = q0 + warp * 16 < L;
    sembed__att_rows rows;
    sembed__att_bias_rows(rows, rel_bias, h, R, i0, L);
    rows.m0 = rows.m1 = -INFINITY, rows.l0 = rows.l1 = 0.f;

    uint32_t qf[D / 16][4];
    float o[ND][4];
#pragma unroll
    for (int d = 0; d < ND; d++) o[d][0] = o[d][1] = o[d][2] = o[d][3] = 0.f;

    for (int kt = 0; kt < n_kt; kt++) {
        const int j0 = kt * BN;
        if (kt + 1 < n_kt) { /* prefetch the next K and V tile into the other buffer */
            unsigned char *nb = smem + SM::kv + (size_t)((kt + 1) & 1) * 2 * SM::tile;
            load_rows_async<D>((E *)nb, base + (int64_t)(j0 + BN) * ld + H, ld, L - j0 - BN, BN);
            load_rows_async<D>((E *)(nb + SM::tile), base + (int64_t)(j0 + BN) * ld + 2 * H,
                               ld, L - j0 - BN, BN);
            sembed__cp_commit();
            sembed__cp_wait<1>();
        } else {
            sembed__cp_wait<0>();
        }
        __syncthreads();
        const E *Ks = (const E *)(smem + SM::kv + (size_t)(kt & 1) * 2 * SM::tile);
        const E *Vs = Ks + BN * LDH;
        if (warp_on) {
            if (kt == 0) {
#pragma unroll
                for (int kk = 0; kk < D / 16; kk++)
                    ldsm_x4(qf[kk], Qs + (warp * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) * LDH +
                                        kk * 16 + (lane >> 4) * 8);
            }
            /* S (16 x BN) = Q · Kᵀ */
            float sc[NB][4];
#pragma unroll
            for (int n = 0; n < NB; n++) sc[n][0] = sc[n][1] = sc[n][2] = sc[n][3] = 0.f;
#pragma unroll
            for (int np = 0; np < NB / 2; np++)
#pragma unroll
                for (int kk = 0; kk < D / 16; kk++) {
                    uint32_t b[4];
                    const int m = lane >> 3;
                    ldsm_x4(b, Ks + (np * 16 + (m >> 1) * 8 + (lane & 7)) * LDH + kk * 16 + (m & 1) * 8);
                    mma16816<E>(sc[2 * np], qf[kk], b[0], b[1]);
                    mma16816<E>(sc[2 * np + 1], qf[kk], b[2], b[3]);
                }
            float a0, a1;
            sembed__att_softmax<NB>(sc, rows, a0, a1, j0, L, qd, scale_log2);
#pragma unroll
            for (int d = 0; d < ND; d++) o[d][0] *= a0, o[d][1] *= a0, o[d][2] *= a1, o[d][3] *= a1;
            /* O (16 x D) += P · V, P from the S registers as fp16 A fragments */
#pragma unroll
            for (int kk = 0; kk < BN / 16; kk++) {
                uint32_t pa[4];
                pa[0] = pack2<E>(sc[2 * kk][0], sc[2 * kk][1]);
                pa[1] = pack2<E>(sc[2 * kk][2], sc[2 * kk][3]);
                pa[2] = pack2<E>(sc[2 * kk + 1][0], sc[2 * kk + 1][1]);
                pa[3] = pack2<E>(sc[2 * kk + 1][2], sc[2 * kk + 1][3]);
#pragma unroll
                for (int dp = 0; dp < ND / 2; dp++) {
                    uint32_t b[4];
                    const int m = lane >> 3;
                    ldsm_x4_t(b, Vs + (kk * 16 + (m & 1) * 8 + (lane & 7)) * LDH + dp * 16 + (m >> 1) * 8);
                    mma16816<E>(o[2 * dp], pa, b[0], b[1]);
                    mma16816<E>(o[2 * dp + 1], pa, b[2], b[3]);
                }
            }
        }
        __syncthreads(); /* this buffer is refilled two tiles on */
    }
    if (!warp_on) return;
    float inv0, inv1;
    sembed__att_finish(rows, inv0, inv1);
#pragma unroll
    for (int d = 0; d < ND; d++) {
        const int c = h * D + d * 8 + 2 * qd;
        if (i0 < L)
            *(typename sembed__pair<E>::t *)(out + (int64_t)(t0 + i0) * H + c) =
                sembed__from_f2<E>(o[d][0] * inv0, o[d][1] * inv0);
        if (i1 < L)
            *(typename sembed__pair<E>::t *)(out + (int64_t)(t0 + i1) * H + c) =
                sembed__from_f2<E>(o[d][2] * inv1, o[d][3] * inv1);
    }
}

sembed__att_tiles sembed__att_make_tiles(int32_t *tiles, const int32_t *seq_off, int32_t S,
                                         int32_t A) {
    sembed__att_tiles nt = {0, 0};
    for (int pass = 0; pass < 2; pass++) /* one head a block, then the shared */
        for (int32_t s = 0; s < S; s++) {
            const int32_t L = seq_off[s + 1] - seq_off[s];
            if ((sembed__att_heads_per_block(L, A) > 1) != (pass == 1)) continue;
            for (int32_t q0 = 0; q0 < L; q0 += BM) {
                tiles[2 * nt.n] = s;
                tiles[2 * nt.n + 1] = q0;
                nt.n++, nt.n_short += pass;
            }
        }
    return nt;
}

bool sembed__att_supports(int32_t H, int32_t A) {
    return A > 0 && H % A == 0 && (H / A == 32 || H / A == 64) && H % 8 == 0;
}

template <int D, class E>
static sembed_status launch(E *out, const E *qkv, const int32_t *seq_off,
                            const int32_t *tiles, const float *rel_bias, int32_t n_tiles,
                            int32_t H, int32_t A, int32_t R, cudaStream_t stream,
                            sembed_error *err) {
    const size_t bytes = att_smem<D>::bytes;
    /* Raising the limit is cheap and idempotent; doing it here keeps the launcher whole. */
    SEMBED_CU(cudaFuncSetAttribute(attention_kernel<D, E>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                   (int)bytes));
    SEMBED_CU(sembed__launch_pdl(attention_kernel<D, E>, dim3((unsigned)n_tiles, (unsigned)A),
                                 dim3(NW * 32), bytes, stream, out, qkv, seq_off, tiles, rel_bias,
                                 H, R, 1.4426950408889634f / sqrtf((float)D)));
    return SEMBED_OK;
}

static std::atomic<int> att_force{-1};

void sembed__att_force_kernel(int which) { att_force.store(which); }

/* The wgmma kernel (attention_sm90.cu) where it was built, on a 9.0 device, unless forced off
 * or SEMBED_CUDA_ATT_SM90=0. */
static bool use_sm90(void) {
    const int f = att_force.load(std::memory_order_relaxed);
    if (f == 0 || !sembed__cu_sm90_attention_built()) return false;
    if (f < 0) {
        static const bool env_off = [] {
            const char *e = getenv("SEMBED_CUDA_ATT_SM90");
            return e && strcmp(e, "0") == 0;
        }();
        if (env_off) return false;
    }
    int dev = 0;
    return cudaGetDevice(&dev) == cudaSuccess && sembed__cu_device_is_90(dev);
}

bool sembed__att_uses_sm90(void) { return use_sm90(); }

template <class E>
sembed_status sembed__cu_attention(E *out, const E *qkv, const int32_t *seq_off,
                                   const int32_t *tiles, const float *rel_bias,
                                   sembed__att_tiles nt, int32_t H, int32_t A, int32_t R,
                                   cudaStream_t stream, sembed_error *err) {
    SEMBED_ASSERT(sembed__att_supports(H, A));
    if (nt.n <= 0) return SEMBED_OK;
    if (use_sm90()) {
        SEMBED_CU(sembed__cu_sm90_attention<E>(out, qkv, seq_off, tiles, rel_bias, nt, H, A, R, stream));
        return SEMBED_OK;
    }
    if (H / A == 64) return launch<64>(out, qkv, seq_off, tiles, rel_bias, nt.n, H, A, R, stream, err);
    return launch<32>(out, qkv, seq_off, tiles, rel_bias, nt.n, H, A, R, stream, err);
}

template sembed_status sembed__cu_attention<__half>(__half *, const __half *, const int32_t *,
                                                    const int32_t *, const float *,
                                                    sembed__att_tiles, int32_t, int32_t, int32_t,
                                                    cudaStream_t, sembed_error *);
template sembed_status sembed__cu_attention<sembed__bf16>(
    sembed__bf16 *, const sembed__bf16 *, const int32_t *, const int32_t *, const float *,
    sembed__att_tiles, int32_t, int32_t, int32_t, cudaStream_t, sembed_error *);
