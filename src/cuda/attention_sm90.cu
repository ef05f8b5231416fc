/* attention_sm90.cu — attention over packed sequences on Hopper's warpgroup MMA (kernel v3,
 * dev/kernels/NOTES.md). The same work split as attention.cu's mma.sync kernel — a block per
 * (64 query rows of a sequence, head), keys and values in tiles of 64 — with one warpgroup per
 * block issuing wgmma: S = Q·Kᵀ with both operands in shared memory, O += P·V with P from
 * registers. Nsight Compute put the mma.sync kernel's time into its dependency chains (each
 * mma.sync and ldmatrix waiting on the one before); wgmma runs asynchronously, so the softmax of
 * tile t overlaps P·V of tile t-1, and K and V stream in two stages by cp.async. The softmax
 * is attention_tile.cuh's, in the same register layout. Sequences of at most 32 tokens share a
 * block among 2 or 4 heads, in a grid of their own (the SHARED instance: one key tile, one stage,
 * fewer registers); the other instance is v8's one head a block. A row's result depends only on
 * its own sequence.
 *
 * Built only with CUTLASS's CuTe (the shared-memory swizzles and wgmma descriptors) for sm_90a
 * (cuda.cmake); elsewhere sembed__cu_sm90_attention_built() is false. */
#ifndef NDEBUG
#define NDEBUG /* as gemm_sm90.cu: no device asserts in CUTLASS's headers */
#endif
#include "attention_sm90.cuh"

#include "attention.cuh"

#if defined(SEMBED_HAVE_CUTLASS)

#include "attention_tile.cuh"
#include "cute/arch/mma_sm90.hpp"
#include "cute/atom/mma_atom.hpp"
#include "cute/tensor.hpp"

namespace sembed_att90 {

using namespace cute;

constexpr int BM = SEMBED__ATT_BM; /* query rows per block: one wgmma M */
constexpr int BN = 64;             /* keys per tile */
/* K/V stages: two (v8) leave room for 5 blocks per SM by shared memory at D = 64 (41 KB each;
 * three stages, 57 KB, allowed 3) and the registers allow 4; attention 5-10% faster at D = 64
 * than with three, the same at D = 32 (dev/kernels/NOTES.md) */
constexpr int NST = 2;
static_assert(NST == 2 || NST == 3, "cp_wait_upto2 covers two or three stages");
constexpr int NT = 128;            /* one warpgroup */

template <class E> struct cute_of;
template <> struct cute_of<__half> { typedef cute::half_t t; };
template <> struct cute_of<sembed__bf16> { typedef cute::bfloat16_t t; };

template <int D, class T> struct Cfg {
    /* Q and K K-major (rows of D), V MN-major for the P·V product's B (rows of D per key):
     * the widest swizzle a row of D halves fills (64 bytes at D = 32, 128 at D = 64) */
    using AtomK = conditional_t<D == 64, GMMA::Layout_K_SW128_Atom<T>, GMMA::Layout_K_SW64_Atom<T>>;
    using AtomMN = conditional_t<D == 64, GMMA::Layout_MN_SW128_Atom<T>, GMMA::Layout_MN_SW64_Atom<T>>;
    using LQ = decltype(tile_to_shape(AtomK{}, Shape<Int<BM>, Int<D>>{}));
    using LK = decltype(tile_to_shape(AtomK{}, Shape<Int<BN>, Int<D>>{}));
    using LV = decltype(tile_to_shape(AtomMN{}, Shape<Int<D>, Int<BN>>{}));
    using MmaS = decltype(make_tiled_mma(GMMA::ss_op_selector<T, T, float, Shape<Int<BM>, Int<BN>, Int<D>>>()));
    using MmaO = decltype(make_tiled_mma(
        GMMA::rs_op_selector<T, T, float, Shape<Int<BM>, Int<D>, Int<BN>>, GMMA::Major::K, GMMA::Major::MN>()));
    static constexpr int q_bytes = BM * D * 2, t_bytes = BN * D * 2; /* multiples of 1024 */
    static constexpr int bytes = q_bytes + NST * 2 * t_bytes + 1024; /* + the base's alignment */
    static constexpr int bytes_1 = q_bytes + 2 * t_bytes + 1024;      /* one key tile: one stage */
};

/* The BM query rows of a block into sQ (K-major): with G heads a block (BM/G = 1 << rs rows
 * each), row r is position r % (BM/G) of the sequence at head r / (BM/G), read from src (the
 * block's first position and head in qkv, row stride ld); zeros from position n on; all threads
 * take part */
template <int D, bool SHARED, class E, class Tn>
static __device__ __forceinline__ void load_q(Tn &s, const E *src, int64_t ld, int n, int rs) {
    constexpr int VPR = D / 8;
    for (int i = threadIdx.x; i < BM * VPR; i += NT) {
        const int r = i / VPR, c = (i % VPR) * 8, pos = SHARED ? r & ((1 << rs) - 1) : r;
        const bool ok = pos < n;
        sembed__cp16(&s(r, c), ok ? src + (int64_t)pos * ld + (SHARED ? (r >> rs) * D : 0) + c : src, ok);
    }
}

/* generic-proxy writes (cp.async) before wgmma reads them through the async proxy */
static __device__ __forceinline__ void fence_async_smem() {
    asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
}

/* cp.async.wait_group n for n = 0 .. 2 */
static __device__ __forceinline__ void cp_wait_upto2(int n) {
    if (n >= 2) sembed__cp_wait<2>();
    else if (n == 1) sembed__cp_wait<1>();
    else sembed__cp_wait<0>();
}

/* SHARED: the tiles of sequences that share blocks among heads (sembed__att_heads_per_block
 * 2 or 4; one key tile), the grid's y the head pairs; else one head a block (v8's code) */
template <int D, class E, bool SHARED>
static __global__ void __launch_bounds__(NT)
    attention_sm90_kernel(E *out, const E *qkv, const int32_t *seq_off, const int32_t *tiles,
                          const float *rel_bias, int H, int R, float scale_log2) {
    typedef typename cute_of<E>::t T;
    typedef Cfg<D, T> C;
    constexpr int NB = BN / 8, ND = D / 8;
    extern __shared__ __align__(128) unsigned char smem_raw[];
    /* the swizzles repeat every 1024 bytes from a 1024-byte aligned base */
    unsigned char *smem = smem_raw + ((1024 - (sembed__smem_u32(smem_raw) & 1023)) & 1023);
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;

    const sembed__att_block<E> blk = sembed__att_block_of<D, BN>(qkv, seq_off, tiles, H);
    const int q0 = blk.q0, t0 = blk.t0, L = blk.L, n_kt = SHARED ? 1 : blk.n_kt;
    const int64_t ld = blk.ld;
    /* Heads a block: a sequence of at most 16 (32) tokens leaves 3/4 (1/2) of a block's query
     * rows and of its key tile empty, so 4 (2) of its heads share the block, 16 (32) rows and
     * keys each: the key tile holds each head's keys in its own slice, and a row's scores
     * outside its head's slice are masked. With 4, the grid's second half of head pairs has
     * nothing to do. G depends on the sequence's length alone (sembed__att_heads_per_block),
     * so a text's bits do not depend on its batch. */
    const int G = SHARED ? sembed__att_heads_per_block(L, 2 * (int)gridDim.y) : 1;
    const int rs = G == 4 ? 4 : G == 2 ? 5 : 6; /* BM / G == 1 << rs */
    if (SHARED && (int)blockIdx.y * G >= 2 * (int)gridDim.y) return;
    const int h0 = SHARED ? (int)blockIdx.y * G : blk.h;
    const E *base = blk.base + (int64_t)(h0 - blk.h) * D;

    Tensor sQ = make_tensor(make_smem_ptr((T *)smem), typename C::LQ{});
    auto sK = [&](int st) {
        return make_tensor(make_smem_ptr((T *)(smem + C::q_bytes + st * 2 * C::t_bytes)), typename C::LK{});
    };
    auto sV = [&](int st) {
        return make_tensor(make_smem_ptr((T *)(smem + C::q_bytes + st * 2 * C::t_bytes + C::t_bytes)),
                           typename C::LV{});
    };
    /* A thread copies the same CH 16-byte pieces of every K and V tile: their rows, their
     * offsets in qkv (from the tile's first row) and in a stage's swizzled K and V, worked out
     * once here instead of per tile (the swizzle and the row/column split were most of the
     * kernel's integer instructions) */
    constexpr int VPR = D / 8, CH = BN * VPR / NT;
    int ch_row[CH], ch_src[CH];
    uint32_t ch_k[CH], ch_v[CH];
    {
        auto k = sK(0);
        auto v = sV(0);
        const uint32_t k0 = sembed__smem_u32(&k(0, 0)), v0 = sembed__smem_u32(&v(0, 0));
#pragma unroll
        for (int j = 0; j < CH; j++) {
            const int i = threadIdx.x + j * NT, r = i / VPR, c = (i % VPR) * 8;
            /* key slot r: position pos of head r >> rs */
            const int pos = SHARED ? r & ((1 << rs) - 1) : r;
            ch_row[j] = pos, ch_src[j] = pos * (int)ld + (SHARED ? (r >> rs) * D : 0) + c;
            ch_k[j] = sembed__smem_u32(&k(r, c)) - k0, ch_v[j] = sembed__smem_u32(&v(c, r)) - v0;
        }
    }
    const uint32_t kv0 = sembed__smem_u32(smem + C::q_bytes);
    auto load_kv = [&](int kt) { /* tile kt into stage kt % NST, one cp.async group */
        const int j0 = kt * BN, n = L - j0;
        const uint32_t kb = kv0 + (uint32_t)((kt % NST) * 2 * C::t_bytes), vb = kb + C::t_bytes;
        const E *src = base + (int64_t)j0 * ld + H;
#pragma unroll
        for (int j = 0; j < CH; j++) {
            const bool ok = ch_row[j] < n;
            sembed__cp16_s(kb + ch_k[j], ok ? src + ch_src[j] : src, ok);
            sembed__cp16_s(vb + ch_v[j], ok ? src + H + ch_src[j] : src, ok);
        }
        sembed__cp_commit();
    };
    load_q<D, SHARED>(sQ, base + (int64_t)q0 * ld, ld, L - q0, rs);
    load_kv(0); /* Q joins tile 0's group */
#pragma unroll
    for (int kt = 1; kt < NST; kt++)
        if (kt < n_kt) load_kv(kt);

    /* this thread's two rows of its warp's 16: g and g + 8 (the accumulators' layout); the
     * warp's head hw, whose keys are columns jlo .. jlo + L - 1 of a tile with G > 1 */
    const int g = lane >> 2, qd = lane & 3;
    const int hl = SHARED ? (warp * 16) >> rs : 0, hw = h0 + hl, jlo = hl << rs;
    /* query position in the sequence */
    const int i0 = q0 + (SHARED ? (warp * 16) & ((1 << rs) - 1) : warp * 16) + g;
    sembed__att_rows rows;
    sembed__att_bias_rows(rows, rel_bias, hw, R, i0, L);
    rows.m0 = rows.m1 = -INFINITY, rows.l0 = rows.l1 = 0.f;

    typename C::MmaS mma_s;
    typename C::MmaO mma_o;
    auto thr_s = mma_s.get_thread_slice(threadIdx.x);
    auto thr_o = mma_o.get_thread_slice(threadIdx.x);
    Tensor tSrQ = thr_s.partition_fragment_A(sQ);
    Tensor tSrS = partition_fragment_C(mma_s, Shape<Int<BM>, Int<BN>>{}); /* ((2,2,NB),1,1) */
    Tensor tOrO = partition_fragment_C(mma_o, Shape<Int<BM>, Int<D>>{});  /* ((2,2,ND),1,1) */
    /* P as the A operand: ((2,2,2),1,BN/16), k16 block kk = S's n8 blocks 2kk and 2kk+1 */
    Tensor tOrP = make_tensor<T>(Shape<Shape<_2, _2, _2>, _1, Int<BN / 16>>{});
    clear(tOrO);

    /* S = Q · K(kt)ᵀ, issued and committed (not waited for) */
    auto issue_s = [&](int kt) {
        auto k = sK(kt % NST);
        Tensor tSrK = thr_s.partition_fragment_B(k);
        warpgroup_fence_operand(tSrS);
        warpgroup_arrive();
        mma_s.accumulate_ = GMMA::ScaleOut::Zero;
#pragma unroll
        for (int kb = 0; kb < size<2>(tSrQ); kb++) {
            cute::gemm(mma_s, tSrQ(_, _, kb), tSrK(_, _, kb), tSrS);
            mma_s.accumulate_ = GMMA::ScaleOut::One;
        }
        warpgroup_commit_batch();
    };
    /* O += P · V(kt), issued and committed */
    auto issue_o = [&](int kt) {
        auto v = sV(kt % NST);
        Tensor tOrV = thr_o.partition_fragment_B(v);
        warpgroup_fence_operand(tOrO);
        warpgroup_fence_operand(tOrP);
        warpgroup_arrive();
        mma_o.accumulate_ = GMMA::ScaleOut::One;
#pragma unroll
        for (int kb = 0; kb < size<2>(tOrP); kb++) cute::gemm(mma_o, tOrP(_, _, kb), tOrV(_, _, kb), tOrO);
        warpgroup_commit_batch();
    };
    /* the scores in tSrS as attention_tile.cuh's sc[n8 block][4], and probabilities into P */
    auto take_s = [&](float (&sc)[NB][4]) {
#pragma unroll
        for (int n = 0; n < NB; n++)
#pragma unroll
            for (int v = 0; v < 4; v++) sc[n][v] = tSrS(make_coord(make_coord(v & 1, v >> 1, n), 0, 0));
    };
    auto put_p = [&](const float (&sc)[NB][4]) {
#pragma unroll
        for (int n = 0; n < NB; n++)
#pragma unroll
            for (int v = 0; v < 4; v++)
                tOrP(make_coord(make_coord(v & 1, v >> 1, n & 1), 0, n >> 1)) = T(sc[n][v]);
    };
    auto rescale = [&](float a0, float a1) {
#pragma unroll
        for (int d = 0; d < ND; d++)
#pragma unroll
            for (int v = 0; v < 4; v++) tOrO(make_coord(make_coord(v & 1, v >> 1, d), 0, 0)) *= v < 2 ? a0 : a1;
    };

    /* tile 0 */
    cp_wait_upto2(min(NST, n_kt) - 1); /* tile 0 in; tiles 1 .. NST-1 may still be coming */
    fence_async_smem();
    __syncthreads();
    issue_s(0);
    warpgroup_wait<0>();
    warpgroup_fence_operand(tSrS);
    float sc[NB][4], a0, a1;
    take_s(sc);
    /* O is 0: no rescale. Column jlo + j is key j of the row's head (keys outside 0 .. L-1
     * masked, those of the other heads included) */
    sembed__att_softmax<NB>(sc, rows, a0, a1, -jlo, L, qd, scale_log2);
    put_p(sc);
    for (int kt = 1; kt < n_kt; kt++) {
        cp_wait_upto2(min(NST - 2, n_kt - 1 - kt)); /* tile kt in */
        fence_async_smem();
        __syncthreads();
        issue_s(kt);     /* S(kt) first, so that waiting for it leaves P·V(kt-1) running */
        issue_o(kt - 1);
        warpgroup_wait<1>();
        warpgroup_fence_operand(tSrS);
        take_s(sc); /* P(kt-1) is still being read: the new P waits in sc */
        sembed__att_softmax<NB>(sc, rows, a0, a1, kt * BN, L, qd, scale_log2);
        warpgroup_wait<0>();
        warpgroup_fence_operand(tOrO);
        rescale(a0, a1);
        put_p(sc);
        if (kt + NST - 1 < n_kt) {
            __syncthreads(); /* stage (kt+NST-1) % NST held tile kt-1, now read (0..NST-1 came first) */
            load_kv(kt + NST - 1);
        }
    }
    issue_o(n_kt - 1);
    warpgroup_wait<0>();
    warpgroup_fence_operand(tOrO);

    float inv0, inv1;
    sembed__att_finish(rows, inv0, inv1);
    const int i1 = i0 + 8;
#pragma unroll
    for (int d = 0; d < ND; d++) {
        const int c = hw * D + d * 8 + 2 * qd;
        if (i0 < L)
            *(typename sembed__pair<E>::t *)(out + (int64_t)(t0 + i0) * H + c) = sembed__from_f2<E>(
                tOrO(make_coord(make_coord(0, 0, d), 0, 0)) * inv0, tOrO(make_coord(make_coord(1, 0, d), 0, 0)) * inv0);
        if (i1 < L)
            *(typename sembed__pair<E>::t *)(out + (int64_t)(t0 + i1) * H + c) = sembed__from_f2<E>(
                tOrO(make_coord(make_coord(0, 1, d), 0, 0)) * inv1, tOrO(make_coord(make_coord(1, 1, d), 0, 0)) * inv1);
    }
}

template <int D, class E, bool SHARED>
static cudaError_t launch1(E *out, const E *qkv, const int32_t *seq_off, const int32_t *tiles,
                           const float *rel_bias, int32_t n, int32_t H, int32_t A, int32_t R,
                           cudaStream_t stream) {
    /* the shared blocks' one key tile needs one stage: more blocks fit an SM */
    typedef Cfg<D, typename cute_of<E>::t> C;
    const int bytes = SHARED ? C::bytes_1 : C::bytes;
    cudaError_t e = cudaFuncSetAttribute(attention_sm90_kernel<D, E, SHARED>,
                                         cudaFuncAttributeMaxDynamicSharedMemorySize, bytes);
    if (e != cudaSuccess) return e;
    return sembed__launch_pdl(attention_sm90_kernel<D, E, SHARED>,
                              dim3((unsigned)n, (unsigned)(SHARED ? A / 2 : A)), dim3(NT),
                              (size_t)bytes, stream, out, qkv, seq_off, tiles, rel_bias, H, R,
                              1.4426950408889634f / sqrtf((float)(H / A)));
}

/* the tiles of one head a block, then those that share blocks: a grid each */
template <int D, class E>
static cudaError_t launch(E *out, const E *qkv, const int32_t *seq_off, const int32_t *tiles,
                          const float *rel_bias, sembed__att_tiles nt, int32_t H, int32_t A,
                          int32_t R, cudaStream_t stream) {
    const int32_t n1 = nt.n - nt.n_short;
    cudaError_t e = cudaSuccess;
    if (n1 > 0) e = launch1<D, E, false>(out, qkv, seq_off, tiles, rel_bias, n1, H, A, R, stream);
    if (e == cudaSuccess && nt.n_short > 0)
        e = launch1<D, E, true>(out, qkv, seq_off, tiles + 2 * (size_t)n1, rel_bias, nt.n_short, H,
                                A, R, stream);
    return e;
}

} // namespace sembed_att90


bool sembed__cu_sm90_attention_built(void) { return true; }

template <class E>
cudaError_t sembed__cu_sm90_attention(E *out, const E *qkv, const int32_t *seq_off,
                                      const int32_t *tiles, const float *rel_bias,
                                      sembed__att_tiles nt, int32_t H, int32_t A, int32_t R,
                                      cudaStream_t stream) {
    if (nt.n <= 0) return cudaSuccess;
    if (H / A == 64) return sembed_att90::launch<64>(out, qkv, seq_off, tiles, rel_bias, nt, H, A, R, stream);
    if (H / A == 32) return sembed_att90::launch<32>(out, qkv, seq_off, tiles, rel_bias, nt, H, A, R, stream);
    return cudaErrorNotSupported;
}

#else /* no CUTLASS: the mma.sync kernel only */

bool sembed__cu_sm90_attention_built(void) { return false; }

template <class E>
cudaError_t sembed__cu_sm90_attention(E *, const E *, const int32_t *, const int32_t *,
                                      const float *, sembed__att_tiles, int32_t, int32_t, int32_t,
                                      cudaStream_t) {
    return cudaErrorNotSupported;
}

#endif

template cudaError_t sembed__cu_sm90_attention<__half>(__half *, const __half *, const int32_t *,
                                                       const int32_t *, const float *,
                                                       sembed__att_tiles, int32_t, int32_t,
                                                       int32_t, cudaStream_t);
template cudaError_t sembed__cu_sm90_attention<sembed__bf16>(sembed__bf16 *, const sembed__bf16 *,
                                                             const int32_t *, const int32_t *,
                                                             const float *, sembed__att_tiles,
                                                             int32_t, int32_t, int32_t,
                                                             cudaStream_t);
