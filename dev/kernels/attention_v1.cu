/* attention.cu — flash-style attention over packed sequences (kernel v1, dev/kernels/NOTES.md).
 * One block of 4 warps per (query tile of 64 rows, head); each warp owns 16 query rows. Keys and
 * values stream through shared memory in tiles of 64; S = Q·Kᵀ and P·V run on tensor cores
 * (wmma, fp16 in, fp32 out); the online softmax and the output accumulator stay fp32 in shared
 * memory. A row's result depends only on its own sequence, whatever else is packed beside it.
 * Dimension letters: T tokens, S sequences, H hidden, A heads, D head size, L a sequence's
 * length, R the relative-bias reach. */
#include "attention.cuh"

#include <mma.h>

using namespace nvcuda;

#define BM SEMBED__ATT_BM /* query rows per block */
#define BN 64             /* keys per tile */
#define NW 4              /* warps per block, 16 query rows each */

template <int D> struct att_smem {
    static constexpr int LDH = D + 8;  /* halves per row of Q, K, V tiles */
    static constexpr int LDS = BN + 4; /* floats per row of a warp's scores (>= D + 4) */
    static constexpr int LDP = BN + 8; /* halves per row of a warp's probabilities */
    static constexpr int LDO = D + 4;  /* floats per row of a warp's output accumulator */
    static constexpr size_t q = 0;
    static constexpr size_t k = q + (size_t)BM * LDH * 2;
    static constexpr size_t v = k + (size_t)BN * LDH * 2;
    static constexpr size_t s = v + (size_t)BN * LDH * 2;
    static constexpr size_t p = s + (size_t)NW * 16 * LDS * 4;
    static constexpr size_t o = p + (size_t)NW * 16 * LDP * 2;
    static constexpr size_t bytes = o + (size_t)NW * 16 * LDO * 4;
};

/* rows r0.. of a (rows, D) slice of qkv (row stride 3H) into shared memory, zeros past n. */
template <int D>
static __device__ __forceinline__ void load_rows(__half *dst, const __half *src, int64_t ld,
                                                 int n, int rows) {
    constexpr int LDH = att_smem<D>::LDH, VPR = D / 8;
    for (int i = threadIdx.x; i < rows * VPR; i += NW * 32) {
        const int r = i / VPR, c = (i % VPR) * 8;
        sembed__h8 v;
        if (r < n) v = *(const sembed__h8 *)(src + (int64_t)r * ld + c);
        else v.h[0] = v.h[1] = v.h[2] = v.h[3] = __float2half2_rn(0.f);
        *(sembed__h8 *)(dst + r * LDH + c) = v;
    }
}

template <int D>
static __global__ void __launch_bounds__(NW * 32)
    attention_kernel(__half *out, const __half *qkv, const int32_t *seq_off, const int32_t *tiles,
                     const float *rel_bias, int H, int R, float scale) {
    typedef att_smem<D> SM;
    extern __shared__ __align__(128) unsigned char smem[];
    __half *Qs = (__half *)(smem + SM::q), *Ks = (__half *)(smem + SM::k);
    __half *Vs = (__half *)(smem + SM::v);
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    float *Ss = (float *)(smem + SM::s) + warp * 16 * SM::LDS;
    __half *Ps = (__half *)(smem + SM::p) + warp * 16 * SM::LDP;
    float *Os = (float *)(smem + SM::o) + warp * 16 * SM::LDO;

    const int seq = tiles[2 * blockIdx.x], q0 = tiles[2 * blockIdx.x + 1], h = blockIdx.y;
    const int t0 = seq_off[seq], L = seq_off[seq + 1] - t0;
    const int64_t ld = 3 * (int64_t)H;
    const __half *base = qkv + (int64_t)t0 * ld + h * D;

    load_rows<D>(Qs, base + (int64_t)q0 * ld, ld, L - q0, BM);
    /* each lane owns half of one of its warp's 16 rows: row r, columns c0.. of a tile */
    const int r = lane >> 1, half_ = lane & 1;
    const int i = q0 + warp * 16 + r; /* this row's query position in the sequence */
    const bool row_ok = i < L;
    const bool warp_on = q0 + warp * 16 < L;
    for (int c = half_ * (D / 2); c < (half_ + 1) * (D / 2); c++) Os[r * SM::LDO + c] = 0.f;
    float m = -INFINITY, l = 0.f;
    const float *bias_row = /* bias_row[j] = rel_bias[h][j - i + R-1], for valid rows only */
        rel_bias && row_ok ? rel_bias + (int64_t)h * (2 * R - 1) + R - 1 - i : NULL;

    for (int j0 = 0; j0 < L; j0 += BN) {
        __syncthreads(); /* the previous tile's K and V are no longer read */
        load_rows<D>(Ks, base + (int64_t)j0 * ld + H, ld, L - j0, BN);
        load_rows<D>(Vs, base + (int64_t)j0 * ld + 2 * H, ld, L - j0, BN);
        __syncthreads();
        if (!warp_on) continue;

        /* S (16 x BN) = Q rows · Kᵀ */
#pragma unroll
        for (int n = 0; n < BN / 16; n++) {
            wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
            wmma::fill_fragment(acc, 0.f);
#pragma unroll
            for (int kk = 0; kk < D / 16; kk++) {
                wmma::fragment<wmma::matrix_a, 16, 16, 16, __half, wmma::row_major> a;
                wmma::fragment<wmma::matrix_b, 16, 16, 16, __half, wmma::col_major> b;
                wmma::load_matrix_sync(a, Qs + warp * 16 * SM::LDH + kk * 16, SM::LDH);
                wmma::load_matrix_sync(b, Ks + n * 16 * SM::LDH + kk * 16, SM::LDH);
                wmma::mma_sync(acc, a, b, acc);
            }
            wmma::store_matrix_sync(Ss + n * 16, acc, SM::LDS, wmma::mem_row_major);
        }
        __syncwarp();

        /* online softmax over this tile, fp32; P in fp16 for the tensor cores */
        float sv[BN / 2];
        float mx = -INFINITY;
#pragma unroll
        for (int c = 0; c < BN / 2; c++) {
            const int cc = half_ * (BN / 2) + c, j = j0 + cc;
            float v = Ss[r * SM::LDS + cc] * scale;
            if (bias_row) v += bias_row[j < L ? j : 0];
            sv[c] = j < L ? v : -INFINITY;
            mx = fmaxf(mx, sv[c]);
        }
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
        const float m_new = fmaxf(m, mx); /* finite: key j0 < L is in every tile */
        const float alpha = expf(m - m_new);
        float sum = 0.f;
#pragma unroll
        for (int c = 0; c < BN / 2; c++) {
            const float p = expf(sv[c] - m_new);
            sum += p;
            Ps[r * SM::LDP + half_ * (BN / 2) + c] = __float2half_rn(p);
        }
        sum += __shfl_xor_sync(0xffffffffu, sum, 1);
        l = l * alpha + sum;
        m = m_new;
        __syncwarp();

        /* PV (16 x D) = P · V, into the score buffer, then O = O * alpha + PV */
#pragma unroll
        for (int dn = 0; dn < D / 16; dn++) {
            wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
            wmma::fill_fragment(acc, 0.f);
#pragma unroll
            for (int kk = 0; kk < BN / 16; kk++) {
                wmma::fragment<wmma::matrix_a, 16, 16, 16, __half, wmma::row_major> a;
                wmma::fragment<wmma::matrix_b, 16, 16, 16, __half, wmma::row_major> b;
                wmma::load_matrix_sync(a, Ps + kk * 16, SM::LDP);
                wmma::load_matrix_sync(b, Vs + kk * 16 * SM::LDH + dn * 16, SM::LDH);
                wmma::mma_sync(acc, a, b, acc);
            }
            wmma::store_matrix_sync(Ss + dn * 16, acc, SM::LDS, wmma::mem_row_major);
        }
        __syncwarp();
#pragma unroll
        for (int c = 0; c < D / 2; c++) {
            const int cc = half_ * (D / 2) + c;
            Os[r * SM::LDO + cc] = Os[r * SM::LDO + cc] * alpha + Ss[r * SM::LDS + cc];
        }
        __syncwarp();
    }
    if (!row_ok) return;
    const float inv = 1.0f / l;
    __half *o = out + (int64_t)(t0 + i) * H + h * D + half_ * (D / 2);
#pragma unroll
    for (int c = 0; c < D / 2; c += 2)
        *(__half2 *)(o + c) = __floats2half2_rn(Os[r * SM::LDO + half_ * (D / 2) + c] * inv,
                                                Os[r * SM::LDO + half_ * (D / 2) + c + 1] * inv);
}

int32_t sembed__att_make_tiles(int32_t *tiles, const int32_t *seq_off, int32_t S) {
    int32_t n = 0;
    for (int32_t s = 0; s < S; s++)
        for (int32_t q0 = 0; q0 < seq_off[s + 1] - seq_off[s]; q0 += BM) {
            tiles[2 * n] = s;
            tiles[2 * n + 1] = q0;
            n++;
        }
    return n;
}

bool sembed__att_supports(int32_t H, int32_t A) {
    return A > 0 && H % A == 0 && (H / A == 32 || H / A == 64) && H % 8 == 0;
}

template <int D>
static sembed_status launch(__half *out, const __half *qkv, const int32_t *seq_off,
                            const int32_t *tiles, const float *rel_bias, int32_t n_tiles,
                            int32_t H, int32_t A, int32_t R, cudaStream_t stream,
                            sembed_error *err) {
    const size_t bytes = att_smem<D>::bytes;
    /* Raising the limit is cheap and idempotent; doing it here keeps the launcher whole. */
    SEMBED_CU(cudaFuncSetAttribute(attention_kernel<D>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                   (int)bytes));
    attention_kernel<D><<<dim3((unsigned)n_tiles, (unsigned)A), NW * 32, bytes, stream>>>(
        out, qkv, seq_off, tiles, rel_bias, H, R, 1.0f / sqrtf((float)D));
    SEMBED_CU_LAUNCHED();
    return SEMBED_OK;
}

sembed_status sembed__cu_attention(__half *out, const __half *qkv, const int32_t *seq_off,
                                   const int32_t *tiles, const float *rel_bias, int32_t n_tiles,
                                   int32_t H, int32_t A, int32_t R, cudaStream_t stream,
                                   sembed_error *err) {
    SEMBED_ASSERT(sembed__att_supports(H, A));
    if (n_tiles <= 0) return SEMBED_OK;
    if (H / A == 64) return launch<64>(out, qkv, seq_off, tiles, rel_bias, n_tiles, H, A, R, stream, err);
    return launch<32>(out, qkv, seq_off, tiles, rel_bias, n_tiles, H, A, R, stream, err);
}
