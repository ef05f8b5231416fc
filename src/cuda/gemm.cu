/* gemm.cu — cuBLASLt plans with a fixed algorithm per (N, K). Row-major y (M, N) = x (M, K) ·
 * w (N, K)ᵀ is, in cuBLASLt's column-major terms, yᵀ (N×M) = op_T(w as K×N) · xᵀ (K×M).
 * Descriptors live on the stack (the Init forms), so a call allocates nothing. */
#include "gemm.cuh"

#include "act.cuh"
#include "cache_file.h"
#include "gemm_sm90.cuh"

#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <string>
#include <type_traits>
#include <vector>

typedef struct gemm_descs {
    cublasLtMatmulDescOpaque_t op;
    cublasLtMatrixLayoutOpaque_t a, b, c;
} gemm_descs;

static sembed_status make_descs(gemm_descs *d, const sembed__cu_gemm_shape *g, int64_t M,
                                const void *bias, sembed_error *err) {
    const cudaDataType_t t = g->f32 ? CUDA_R_32F : g->bf16 ? CUDA_R_16BF : CUDA_R_16F;
    SEMBED_CU(cublasLtMatmulDescInit(&d->op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
    SEMBED_CU(cublasLtMatmulDescSetAttribute(&d->op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta));
    SEMBED_CU(cublasLtMatmulDescSetAttribute(&d->op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb));
    if (g->bias) {
        const cublasLtEpilogue_t ep = CUBLASLT_EPILOGUE_BIAS;
        SEMBED_CU(cublasLtMatmulDescSetAttribute(&d->op, CUBLASLT_MATMUL_DESC_EPILOGUE, &ep,
                                                 sizeof ep));
        SEMBED_CU(cublasLtMatmulDescSetAttribute(&d->op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias,
                                                 sizeof bias));
    }
    SEMBED_CU(cublasLtMatrixLayoutInit(&d->a, t, (uint64_t)g->K, (uint64_t)g->N, g->K));
    SEMBED_CU(cublasLtMatrixLayoutInit(&d->b, t, (uint64_t)g->K, (uint64_t)M, g->K));
    SEMBED_CU(cublasLtMatrixLayoutInit(&d->c, t, (uint64_t)g->N, (uint64_t)M, g->N));
    return SEMBED_OK;
}

/* The bias pointer the heuristic and AlgoCheck see (nothing runs, nothing is read). It must be
 * aligned as the real ones are (256 bytes): given a host struct's address (8-byte aligned, as
 * v1 did), cuBLASLt left out every Hopper kernel (algorithm 66, 400-700 TFLOP/s here) and
 * offered only algorithms 23/24 (120-230 TFLOP/s). */
#define FAKE_BIAS ((const void *)(uintptr_t)0x10000)

/* Is `algo` usable for M rows within the workspace? */
static bool algo_fits(cublasLtHandle_t lt, const sembed__cu_gemm_shape *g, const cublasLtMatmulAlgo_t *a,
                      int64_t M) {
    gemm_descs d;
    sembed_error e;
    if (make_descs(&d, g, M, g->bias ? FAKE_BIAS : NULL, &e) != SEMBED_OK) return false;
    cublasLtMatmulHeuristicResult_t r;
    if (cublasLtMatmulAlgoCheck(lt, &d.op, &d.a, &d.b, &d.c, &d.c, a, &r) !=
        CUBLAS_STATUS_SUCCESS)
        return false;
    return r.workspaceSize <= g->ws_bytes;
}

/* Reads the split-K count and reduction scheme of an algorithm; false if unreadable. */
static bool splits_nothing(const cublasLtMatmulAlgo_t *a) {
    int32_t splitk = 1;
    uint32_t red = CUBLASLT_REDUCTION_SCHEME_NONE;
    size_t wr = 0;
    if (cublasLtMatmulAlgoConfigGetAttribute(a, CUBLASLT_ALGO_CONFIG_SPLITK_NUM, &splitk,
                                             sizeof splitk, &wr) != CUBLAS_STATUS_SUCCESS ||
        cublasLtMatmulAlgoConfigGetAttribute(a, CUBLASLT_ALGO_CONFIG_REDUCTION_SCHEME, &red,
                                             sizeof red, &wr) != CUBLAS_STATUS_SUCCESS)
        return false;
    return splitk <= 1 && red == CUBLASLT_REDUCTION_SCHEME_NONE;
}

/* ---- the small-M kernel ---------------------------------------------------------------------
 * gemm_small v2: y (M, N) = x (M, K) · w (N, K)ᵀ + b for M <= 16·MT rows. A block of
 * SMALL_WARPS warps owns 8 output columns per warp over all rows; the whole K runs in order, one
 * mma.sync.m16n8k16 (fp16 in, fp32 accumulate) per 16 k, the bias added in fp32, one rounding
 * to fp16. That is the order cuBLASLt's Hopper kernels (algorithm 66, every tile) sum in;
 * whether this kernel gives their bits is checked at plan time on random data (same_rows) and
 * by test_cuda_ops' gemm rows test, and the plan uses it only where it does.
 * A query's GEMMs read 0.3-5 MB of weights: cuBLASLt's kernels take 7-14 µs there whatever the
 * tile. Here the block's rows of x and w (all of K) are put in flight at once with cp.async, in
 * SMALL_G groups along K that the mma chain consumes as they land (ldmatrix, rows padded by 16
 * bytes: no bank conflicts). v1 (dev/kernels/gemm_small_v1.cu) loaded fragments from global
 * memory step by step: 6 µs at K=384, 17 µs at K=1536. */
#define SMALL_WARPS 4  /* warps per block: 32 output columns */
#define SMALL_MT_MAX 4 /* m16 tiles: M <= 64 */
#define SMALL_G 4      /* cp.async groups along K */
#define SMALL_SMEM_MAX (200 * 1024)

static __device__ __forceinline__ uint32_t smem_u32(const void *p) {
    return (uint32_t)__cvta_generic_to_shared(p);
}

/* shared bytes for MT m-tiles at K: x (16·MT rows) and w (8·SMALL_WARPS rows), K + 8 halves each */
static size_t small_smem(int mt, int32_t K) {
    return (size_t)(16 * mt + 8 * SMALL_WARPS) * (size_t)(K + 8) * 2;
}

template <int MT, bool GELU, class E>
static __global__ void __launch_bounds__(32 * SMALL_WARPS)
    gemm_small_kernel(E *y, const E *x, const E *w, const E *b, int M, int N, int K) {
    extern __shared__ __align__(16) unsigned char sm_raw[];
    E *sm = (E *)sm_raw;
    const int KP = K + 8; /* padded row */
    E *xs = sm, *ws = sm + (size_t)16 * MT * KP;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int nb = blockIdx.x * 8 * SMALL_WARPS; /* the block's first column */
    const int nw = N - nb < 8 * SMALL_WARPS ? N - nb : 8 * SMALL_WARPS; /* its columns */
    /* group q: k in [q·K/G, (q+1)·K/G) of w's nw rows, then (after the wait for the kernel
     * before, which wrote x) of x's M rows, the others zero */
    const int KG = K / SMALL_G, cpr = KG / 8; /* 16-byte chunks per row and group */
    sembed__grid_dep_launch();
#pragma unroll
    for (int q = 0; q < SMALL_G; q++) {
        for (int i = threadIdx.x; i < nw * cpr; i += 32 * SMALL_WARPS) {
            const int n = i / cpr, k = q * KG + (i - n * cpr) * 8;
            asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(
                             smem_u32(ws + (size_t)n * KP + k)),
                         "l"(w + (int64_t)(nb + n) * K + k));
        }
        asm volatile("cp.async.commit_group;\n" ::);
    }
    sembed__grid_dep_wait();
#pragma unroll
    for (int q = 0; q < SMALL_G; q++) {
        for (int i = threadIdx.x; i < 16 * MT * cpr; i += 32 * SMALL_WARPS) {
            const int r = i / cpr, k = q * KG + (i - r * cpr) * 8;
            E *d = xs + (size_t)r * KP + k;
            if (r < M)
                asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(smem_u32(d)),
                             "l"(x + (int64_t)r * K + k));
            else
                *(uint4 *)d = make_uint4(0u, 0u, 0u, 0u);
        }
        asm volatile("cp.async.commit_group;\n" ::);
    }
    const int n0 = warp * 8; /* the warp's columns within the block */
    const bool active = n0 < nw;
    float acc[MT][4];
#pragma unroll
    for (int mt = 0; mt < MT; mt++) acc[mt][0] = acc[mt][1] = acc[mt][2] = acc[mt][3] = 0.f;
    /* ldmatrix rows: A (x) row lane&15 at k + (lane>>4)·8; B (w) row n0 + (lane&7) at
     * k + (lane>>3)·8, four 8×8 matrices = two k-steps */
    const uint32_t xa = smem_u32(xs + (size_t)(lane & 15) * KP + (lane >> 4) * 8);
    const uint32_t wa = smem_u32(ws + (size_t)(n0 + (lane & 7)) * KP + (lane >> 3) * 8);
#pragma unroll
    for (int q = 0; q < SMALL_G; q++) {
        if (q == 0) asm volatile("cp.async.wait_group %0;\n" ::"n"(SMALL_G - 1));
        if (q == 1) asm volatile("cp.async.wait_group %0;\n" ::"n"(SMALL_G - 2));
        if (q == 2) asm volatile("cp.async.wait_group %0;\n" ::"n"(SMALL_G - 3));
        if (q == 3) asm volatile("cp.async.wait_group 0;\n" ::);
        __syncthreads();
        if (!active) continue;
#pragma unroll 2
        for (int k = q * KG; k < (q + 1) * KG; k += 32) {
            /* the fragments of two k-steps first, then their mmas in k order */
            uint32_t bf[4], af[2][MT][4];
            asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                         : "=r"(bf[0]), "=r"(bf[1]), "=r"(bf[2]), "=r"(bf[3])
                         : "r"(wa + (uint32_t)k * 2));
#pragma unroll
            for (int h = 0; h < 2; h++)
#pragma unroll
                for (int mt = 0; mt < MT; mt++)
                    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                                 : "=r"(af[h][mt][0]), "=r"(af[h][mt][1]), "=r"(af[h][mt][2]),
                                   "=r"(af[h][mt][3])
                                 : "r"(xa + (uint32_t)((mt * 16 * KP + k + h * 16) * 2)));
#pragma unroll
            for (int h = 0; h < 2; h++)
#pragma unroll
                for (int mt = 0; mt < MT; mt++)
                    if constexpr (std::is_same<E, __half>::value)
                        asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, "
                            "{%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                            : "+f"(acc[mt][0]), "+f"(acc[mt][1]), "+f"(acc[mt][2]), "+f"(acc[mt][3])
                            : "r"(af[h][mt][0]), "r"(af[h][mt][1]), "r"(af[h][mt][2]),
                              "r"(af[h][mt][3]), "r"(bf[2 * h]), "r"(bf[2 * h + 1]));
                    else
                        asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, "
                            "{%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                            : "+f"(acc[mt][0]), "+f"(acc[mt][1]), "+f"(acc[mt][2]), "+f"(acc[mt][3])
                            : "r"(af[h][mt][0]), "r"(af[h][mt][1]), "r"(af[h][mt][2]),
                              "r"(af[h][mt][3]), "r"(bf[2 * h]), "r"(bf[2 * h + 1]));
        }
    }
    if (!active) return;
    const int g = lane >> 2, t = lane & 3, c = nb + n0 + 2 * t;
    const float bias0 = b ? sembed__to_f(b[c]) : 0.f, bias1 = b ? sembed__to_f(b[c + 1]) : 0.f;
#pragma unroll
    for (int mt = 0; mt < MT; mt++)
#pragma unroll
        for (int h = 0; h < 2; h++) {
            const int r = mt * 16 + h * 8 + g;
            if (r < M) {
                float v0 = acc[mt][2 * h], v1 = acc[mt][2 * h + 1];
                if (b) v0 += bias0, v1 += bias1; /* without a bias, -0 stays -0 */
                typename sembed__pair<E>::t o = sembed__from_f2<E>(v0, v1);
                if (GELU) { /* as act.cu's pass does it: on the rounded value, rounded again */
                    const float2 f = sembed__to_f2(o);
                    o = sembed__from_f2<E>(sembed__gelu_f16(f.x), sembed__gelu_f16(f.y));
                }
                *(typename sembed__pair<E>::t *)(y + (int64_t)r * N + c) = o;
            }
        }
}

/* The most rows gemm_small_kernel takes for this shape (a multiple of 16, or 0): fp16, N a
 * multiple of 8, K of 32·SMALL_G, and its shared memory within SMALL_SMEM_MAX. */
static int64_t small_kernel_rows(const sembed__cu_gemm_shape *g) {
    if (g->f32 || g->N % 8 != 0 || g->K % (32 * SMALL_G) != 0 || g->K <= 0) return 0;
    if (g->act != SEMBED__ACTK_IDENTITY && g->act != SEMBED__ACTK_GELU) return 0;
    int mt = SMALL_MT_MAX;
    while (mt > 0 && small_smem(mt, g->K) > SMALL_SMEM_MAX) mt--;
    return 16 * (int64_t)mt;
}

/* Lets each instantiation use up to SMALL_SMEM_MAX of shared memory (on the current device). */
template <bool GELU, class E>
static cudaError_t small_kernel_setup1(void) {
    cudaError_t e = cudaSuccess;
    const cudaFuncAttribute a = cudaFuncAttributeMaxDynamicSharedMemorySize;
    if (e == cudaSuccess) e = cudaFuncSetAttribute(gemm_small_kernel<1, GELU, E>, a, SMALL_SMEM_MAX);
    if (e == cudaSuccess) e = cudaFuncSetAttribute(gemm_small_kernel<2, GELU, E>, a, SMALL_SMEM_MAX);
    if (e == cudaSuccess) e = cudaFuncSetAttribute(gemm_small_kernel<3, GELU, E>, a, SMALL_SMEM_MAX);
    if (e == cudaSuccess) e = cudaFuncSetAttribute(gemm_small_kernel<4, GELU, E>, a, SMALL_SMEM_MAX);
    return e;
}
static cudaError_t small_kernel_setup(void) {
    cudaError_t e = small_kernel_setup1<false, __half>();
    if (e == cudaSuccess) e = small_kernel_setup1<true, __half>();
    if (e == cudaSuccess) e = small_kernel_setup1<false, sembed__bf16>();
    if (e == cudaSuccess) e = small_kernel_setup1<true, sembed__bf16>();
    return e;
}

template <bool GELU, class E>
static cudaError_t launch_small1(E *y, const E *x, const E *w, const E *b,
                                 int64_t M, int32_t N, int32_t K, cudaStream_t st) {
    const dim3 grid((unsigned)((N + 8 * SMALL_WARPS - 1) / (8 * SMALL_WARPS))), block(32 * SMALL_WARPS);
    const int mt = (int)((M + 15) / 16);
    const size_t sh = small_smem(mt, K);
    if (mt == 1) return sembed__launch_pdl(gemm_small_kernel<1, GELU, E>, grid, block, sh, st, y, x, w, b, (int)M, N, K);
    if (mt == 2) return sembed__launch_pdl(gemm_small_kernel<2, GELU, E>, grid, block, sh, st, y, x, w, b, (int)M, N, K);
    if (mt == 3) return sembed__launch_pdl(gemm_small_kernel<3, GELU, E>, grid, block, sh, st, y, x, w, b, (int)M, N, K);
    return sembed__launch_pdl(gemm_small_kernel<4, GELU, E>, grid, block, sh, st, y, x, w, b, (int)M, N, K);
}

/* gemm_small_kernel for g's shape, type and activation (GELU fused, or none); the pointers
 * hold g's 16-bit type */
template <class E>
static cudaError_t launch_small_t(const sembed__cu_gemm_shape *g, void *y, const void *x,
                                  const void *w, const void *b, int64_t M, cudaStream_t st) {
    E *ye = (E *)y;
    const E *xe = (const E *)x, *we = (const E *)w, *be = (const E *)b;
    return g->act == SEMBED__ACTK_GELU ? launch_small1<true>(ye, xe, we, be, M, g->N, g->K, st)
                                       : launch_small1<false>(ye, xe, we, be, M, g->N, g->K, st);
}
static cudaError_t launch_small(const sembed__cu_gemm_shape *g, void *y, const void *x,
                                const void *w, const void *b, int64_t M, cudaStream_t st) {
    return g->bf16 ? launch_small_t<sembed__bf16>(g, y, x, w, b, M, st)
                   : launch_small_t<__half>(g, y, x, w, b, M, st);
}

/* the activation pass after cuBLASLt, on g's 16-bit type */
static sembed_status act_pass(const sembed__cu_gemm_shape *g, void *y, int64_t n, cudaStream_t st,
                              sembed_error *err) {
    return g->bf16 ? sembed__cu_act16((sembed__bf16 *)y, n, g->act, st, err)
                   : sembed__cu_act16((__half *)y, n, g->act, st, err);
}

/* The small-M kernel alone (for its tests: against the reference, under compute-sanitizer). */
sembed_status sembed__cu_gemm_small(void *y, const void *x, const void *w, const void *b,
                                    int64_t M, int32_t N, int32_t K, sembed__act_kind act,
                                    sembed__cu_dtype dt, cudaStream_t stream, sembed_error *err) {
    sembed__cu_gemm_shape g;
    memset(&g, 0, sizeof g);
    g.N = N, g.K = K, g.bias = b != NULL, g.act = act, g.bf16 = dt == SEMBED__CU_BF16;
    SEMBED_ASSERT(dt != SEMBED__CU_F32 && M >= 1 && M <= small_kernel_rows(&g));
    SEMBED_CU(small_kernel_setup());
    SEMBED_CU(launch_small(&g, y, x, w, b, M, stream));
    return SEMBED_OK;
}

/* fills n halves with a fixed pseudo-random pattern in [-1, 1) (timing data, never zeros) */
template <class E>
static __global__ void fill_kernel(E *p, int64_t n) {
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    uint32_t h = (uint32_t)i * 2654435761u + 12345u;
    h ^= h >> 15, h *= 2246822519u, h ^= h >> 13;
    p[i] = sembed__from_f<E>((float)(h & 0xFFFF) / 32768.0f - 1.0f);
}

/* fills n halves with values of many exponents (|v| in 2^e0 .. 2^(e0+10), random sign and mantissa):
 * the same sums taken in another order differ in their last bits far more often than sums of
 * uniform data do, so a check of bits on them finds an algorithm that sums otherwise */
template <class E>
static __global__ void fill_wide_kernel(E *p, int64_t n, uint32_t seed, int e0) {
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    uint32_t h = (uint32_t)i * 2654435761u + seed;
    h ^= h >> 16, h *= 2246822519u, h ^= h >> 13, h *= 3266489917u, h ^= h >> 16;
    const float m = 1.0f + (float)(h & 0x3FF) / 1024.0f;
    const float v = ldexpf(m, (int)((h >> 10) % 10u) + e0);
    p[i] = sembed__from_f<E>((h >> 20) & 1u ? -v : v);
}

/* The timing scratch: x (M_SEL, K), w (N, K), b (N), y (M_SEL, N), ws; 2-byte elements of the
 * shape's type (typed __half here for the pointer arithmetic alone). */
typedef struct timing_bufs {
    __half *x, *w, *b, *y;
    void *ws;
    cudaStream_t st;
    cudaEvent_t e0, e1;
} timing_bufs;

/* The rows the algorithm is chosen for, whatever the context's size: 32768, the tokens of a full
 * pass of a GPU context by default (8192 until the H100 showed tile 20 at 32768 rows 6% faster
 * on BERT-base's fixed workloads than the tiles that won at 8192: dev/kernels/NOTES.md v6);
 * 8192 on a device with less than 4 GiB free (the timing scratch of a BERT-large FFN at 32768
 * rows is ~0.5 GB). SEMBED_CUDA_GEMM_MSEL=M (512 .. 65536) for experiments. Fixed per process. */
static int64_t m_sel(void) {
    static std::atomic<int64_t> m{0};
    int64_t v = m.load(std::memory_order_relaxed);
    if (v == 0) {
        const char *e = getenv("SEMBED_CUDA_GEMM_MSEL");
        const long ev = e ? strtol(e, NULL, 10) : 0;
        size_t free_b = 0, total_b = 0;
        v = ev >= 512 && ev <= 65536 ? ev
            : cudaMemGetInfo(&free_b, &total_b) == cudaSuccess && free_b >= ((size_t)4 << 30)
                ? 32768
                : 8192;
        (void)cudaGetLastError();
        int64_t expect = 0;
        if (!m.compare_exchange_strong(expect, v)) v = expect;
    }
    return v;
}
#define M_SEL m_sel()
#define M_SMALL_CAP 256 /* the most rows a small-M algorithm may take */

/* The rows at which a candidate must be valid: the main algorithm's up to 65536 (a fixed list,
 * so that the candidates do not depend on a context's M_max, which is checked apart), a small-M
 * algorithm's up to M_SMALL_CAP. */
static const int64_t FIT_MAIN[] = {1, 2, 7, 16, 64, 333, 4096, 65536};
static const int64_t FIT_SMALL[] = {1, 2, 7, 16, 64, M_SMALL_CAP};

/* The first of ms at which algo a does not fit g (0: it fits at every one). */
template <size_t n>
static int64_t misfit(cublasLtHandle_t lt, const sembed__cu_gemm_shape *g,
                      const cublasLtMatmulAlgo_t *a, const int64_t (&ms)[n]) {
    for (int64_t m : ms)
        if (!algo_fits(lt, g, a, m)) return m;
    return 0;
}

/* One call of CUTLASS configuration cfg (gemm_sm90.cuh) for g: y = act(x · wᵀ + b). */
static cudaError_t launch_sm90(const sembed__cu_gemm_shape *g, int cfg, void *y, const void *x,
                               const void *w, const void *b, int64_t M, void *ws, cudaStream_t st) {
    return sembed__cu_sm90_gemm(cfg, g->act == SEMBED__ACTK_GELU, (__half *)y, (const __half *)x,
                                (const __half *)w, (const __half *)b, M, g->N, g->K, ws,
                                g->ws_bytes, st, NULL);
}

/* reps calls of algo (NULL: gemm_small_kernel, whose epilogue applies g->act; sm90 >= 0: that
 * CUTLASS configuration, which applies it too) at M rows on t->st; with_act: a cuBLASLt call is
 * followed by the activation pass, as sembed__cu_gemm does */
static bool enqueue_reps(cublasLtHandle_t lt, const sembed__cu_gemm_shape *g,
                         const cublasLtMatmulAlgo_t *a, int64_t M, int reps, bool with_act,
                         const timing_bufs *t, int sm90 = -1) {
    gemm_descs d;
    sembed_error e;
    if (make_descs(&d, g, M, g->bias ? (const void *)t->b : NULL, &e) != SEMBED_OK) return false;
    const float one = 1.0f, zero = 0.0f;
    for (int r = 0; r < reps; r++) {
        if (sm90 >= 0) {
            if (launch_sm90(g, sm90, t->y, t->x, t->w, t->b, M, t->ws, t->st) != cudaSuccess)
                return false;
            continue;
        }
        if (!a) {
            if (launch_small(g, t->y, t->x, t->w, g->bias ? t->b : NULL, M, t->st) != cudaSuccess)
                return false;
            continue;
        }
        if (cublasLtMatmul(lt, &d.op, &one, t->w, &d.a, t->x, &d.b, &zero, t->y, &d.c, t->y, &d.c,
                           a, t->ws, g->ws_bytes, t->st) != CUBLAS_STATUS_SUCCESS)
            return false;
        if (with_act && g->act != SEMBED__ACTK_IDENTITY &&
            act_pass(g, t->y, M * g->N, t->st, &e) != SEMBED_OK)
            return false;
    }
    return true;
}

/* mean ms of one call of algo (NULL: gemm_small_kernel) at M rows, or -1 on failure. The calls
 * are timed as a CUDA graph (as the encoder runs small batches): launched one by one from the
 * host, a call of a few µs measures the host's launch rate instead (v2's timing did: cuBLASLt's
 * 7-14 µs at M=16 were mostly cublasLtMatmul's host side, and at M=8192, 10-20 µs calls, the
 * same tile timed 28% apart in two processes). */
static float time_algo(cublasLtHandle_t lt, const sembed__cu_gemm_shape *g,
                       const cublasLtMatmulAlgo_t *a, int64_t M, const timing_bufs *t,
                       bool with_act = false, int sm90 = -1) {
    float ms = -1.f;
    const int reps = M >= 4096 ? 20 : 40;
    cudaGraph_t graph = NULL;
    cudaGraphExec_t exec = NULL;
    if (cudaStreamBeginCapture(t->st, cudaStreamCaptureModeThreadLocal) != cudaSuccess) return -1.f;
    const bool ok = enqueue_reps(lt, g, a, M, reps, with_act, t, sm90);
    if (cudaStreamEndCapture(t->st, &graph) != cudaSuccess || !ok ||
        cudaGraphInstantiate(&exec, graph, 0) != cudaSuccess)
        ms = -2.f;
    if (ms == -1.f && (cudaGraphLaunch(exec, t->st) != cudaSuccess ||
                       cudaEventRecord(t->e0, t->st) != cudaSuccess ||
                       cudaGraphLaunch(exec, t->st) != cudaSuccess ||
                       cudaEventRecord(t->e1, t->st) != cudaSuccess ||
                       cudaEventSynchronize(t->e1) != cudaSuccess ||
                       cudaEventElapsedTime(&ms, t->e0, t->e1) != cudaSuccess))
        ms = -2.f;
    if (exec) cudaGraphExecDestroy(exec);
    if (graph) cudaGraphDestroy(graph);
    (void)cudaGetLastError();
    return ms < 0.f ? -1.f : ms / (float)reps;
}

/* The process-wide choice per (device, N, K, type, bias): every context of a process runs the
 * same algorithm for a shape, so a text's vector is the same bits in every context. */
typedef struct plan_entry {
    int device;
    int32_t N, K;
    bool f32, bf16, bias;
    sembed__act_kind act;
    cublasLtMatmulAlgo_t algo, algo_small;
    int64_t M_small, M_own;
    int sm90;
    int64_t M_sm90;
} plan_entry;
static std::mutex plan_mu;
static std::vector<plan_entry> plan_cache;

void sembed__cu_gemm_plan_forget(void) {
    std::lock_guard<std::mutex> lock(plan_mu);
    plan_cache.clear();
}

static bool env_is(const char *name, const char *v) {
    const char *e = getenv(name);
    return e && strcmp(e, v) == 0;
}

static void bufs_free(timing_bufs *t) {
    if (t->st) cudaStreamSynchronize(t->st), cudaStreamDestroy(t->st);
    if (t->e0) cudaEventDestroy(t->e0);
    if (t->e1) cudaEventDestroy(t->e1);
    cudaFree(t->x), cudaFree(t->w), cudaFree(t->b), cudaFree(t->y), cudaFree(t->ws);
    *t = timing_bufs{};
}

static void fill_bufs(const sembed__cu_gemm_shape *g, const timing_bufs *t, bool wide);

/* The timing scratch for shape g, filled with uniform data. */
static sembed_status bufs_new(timing_bufs *t, const sembed__cu_gemm_shape *g, sembed_error *err) {
    *t = timing_bufs{};
    const int64_t M = M_SEL, N = g->N, K = g->K;
    if (cudaMalloc((void **)&t->x, (size_t)M * K * 2) != cudaSuccess ||
        cudaMalloc((void **)&t->w, (size_t)N * K * 2) != cudaSuccess ||
        cudaMalloc((void **)&t->b, (size_t)N * 2) != cudaSuccess ||
        cudaMalloc((void **)&t->y, (size_t)M * N * 2) != cudaSuccess ||
        cudaMalloc(&t->ws, g->ws_bytes ? g->ws_bytes : 1) != cudaSuccess) {
        bufs_free(t);
        return sembed__err(err, SEMBED_ERR_NOMEM, "CUDA backend: no device memory to time GEMM "
                           "algorithms for N=%d, K=%d", g->N, g->K);
    }
    if (cudaStreamCreateWithFlags(&t->st, cudaStreamNonBlocking) != cudaSuccess ||
        cudaEventCreate(&t->e0) != cudaSuccess || cudaEventCreate(&t->e1) != cudaSuccess) {
        bufs_free(t);
        return sembed__err(err, SEMBED_ERR_BACKEND, "CUDA backend: stream/event creation failed");
    }
    fill_bufs(g, t, false);
    return SEMBED_OK;
}

static void print_algo(const sembed__cu_gemm_shape *g, const char *what, int i,
                       const cublasLtMatmulAlgo_t *a) {
    int32_t id = 0, tile = 0, stages = 0;
    size_t wr;
    cublasLtMatmulAlgoConfigGetAttribute(a, CUBLASLT_ALGO_CONFIG_ID, &id, sizeof id, &wr);
    cublasLtMatmulAlgoConfigGetAttribute(a, CUBLASLT_ALGO_CONFIG_TILE_ID, &tile, sizeof tile, &wr);
    cublasLtMatmulAlgoConfigGetAttribute(a, CUBLASLT_ALGO_CONFIG_STAGES_ID, &stages, sizeof stages, &wr);
    fprintf(stderr, "gemm N=%d K=%d %s %2d algo %d tile %d stages %d:", g->N, g->K, what, i, id,
            tile, stages);
}

/* Times the candidates; writes the winner's index into *best. */
static sembed_status pick_by_timing(cublasLtHandle_t lt, const sembed__cu_gemm_shape *g,
                                    const cublasLtMatmulAlgo_t *cand, int n, int *best,
                                    const timing_bufs *t, sembed_error *err) {
    const int64_t M = M_SEL, N = g->N, K = g->K;
    const bool verbose = getenv("SEMBED_CUDA_GEMM_VERBOSE") != NULL;
    std::vector<float> tm((size_t)n * 3, -1.f);
    const int64_t Ms[3] = {M_SEL, 512, 16};
    float best_t[3] = {INFINITY, INFINITY, INFINITY};
    *best = 0;
    for (int i = 0; i < n; i++)
        for (int m = 0; m < 3; m++) {
            const float v = time_algo(lt, g, &cand[i], Ms[m], t);
            tm[(size_t)i * 3 + m] = v;
            if (v > 0.f && v < best_t[m]) best_t[m] = v;
        }
    (void)cudaGetLastError(); /* a candidate that failed to run is just not chosen */
    /* score: the large batch counts twice, a mid and a query-sized batch once each, each
     * relative to the fastest candidate at that size */
    float best_score = INFINITY;
    for (int i = 0; i < n; i++) {
        const float *v = &tm[(size_t)i * 3];
        if (v[0] <= 0.f || v[1] <= 0.f || v[2] <= 0.f) continue;
        const float sc = 2.f * v[0] / best_t[0] + v[1] / best_t[1] + v[2] / best_t[2];
        if (verbose) {
            print_algo(g, "cand", i, &cand[i]);
            fprintf(stderr, " M=%lld %.4f ms (%.0f TFLOP/s), M=512 %.4f, M=16 %.4f, score %.3f\n",
                    (long long)M_SEL, v[0], 2.0 * M * N * K / (v[0] * 1e9), v[1], v[2], sc);
        }
        if (sc < best_score) best_score = sc, *best = i;
    }
    if (best_score == INFINITY)
        return sembed__err(err, SEMBED_ERR_BACKEND, "CUDA backend: no GEMM algorithm ran for "
                           "N=%d, K=%d", g->N, g->K);
    return SEMBED_OK;
}

/* One call of algo (NULL: gemm_small_kernel; sm90 >= 0: that CUTLASS configuration) at M
 * rows: y = x · wᵀ + b, the activation applied by the last two only. */
static bool run_algo(cublasLtHandle_t lt, const sembed__cu_gemm_shape *g,
                     const cublasLtMatmulAlgo_t *a, __half *y, const __half *x, int64_t M,
                     const timing_bufs *t, int sm90 = -1) {
    if (sm90 >= 0) return launch_sm90(g, sm90, y, x, t->w, t->b, M, t->ws, t->st) == cudaSuccess;
    if (!a) return launch_small(g, y, x, t->w, g->bias ? t->b : NULL, M, t->st) == cudaSuccess;
    gemm_descs d;
    sembed_error e;
    if (make_descs(&d, g, M, g->bias ? (const void *)t->b : NULL, &e) != SEMBED_OK) return false;
    const float one = 1.0f, zero = 0.0f;
    return cublasLtMatmul(lt, &d.op, &one, t->w, &d.a, x, &d.b, &zero, y, &d.c, y, &d.c, a, t->ws,
                          g->ws_bytes, t->st) == CUBLAS_STATUS_SUCCESS;
}

/* Does cand (NULL: gemm_small_kernel; sm90 >= 0: that CUTLASS configuration) give the same
 * bits as algo for every row, at every M from 1 to cap (<= M_SMALL_CAP) that it could take?
 * algo computes M_SMALL_CAP rows of wide-range random data once; cand computes slices of them at
 * up to 28 sizes (1-9, around 16, 32, 64, 128, 256), each at another offset. The scratch must
 * hold data of that kind (fill_wide_kernel). */
static bool same_rows(cublasLtHandle_t lt, const sembed__cu_gemm_shape *g,
                      const cublasLtMatmulAlgo_t *algo, const cublasLtMatmulAlgo_t *cand,
                      int64_t cap, const timing_bufs *t, int sm90 = -1) {
    const int64_t N = g->N, K = g->K, C = M_SMALL_CAP;
    __half *ref = t->y, *y2 = t->y + C * N;
    std::vector<uint16_t> a((size_t)(C * N)), b((size_t)(C * N));
    sembed_error e;
    if (cudaMemsetAsync(ref, 0xFF, (size_t)(C * N) * 2, t->st) != cudaSuccess ||
        !run_algo(lt, g, algo, ref, t->x, C, t) ||
        ((!cand || sm90 >= 0) && g->act != SEMBED__ACTK_IDENTITY && /* cand's epilogue applies it */
         act_pass(g, ref, C * N, t->st, &e) != SEMBED_OK) ||
        cudaMemcpyAsync(a.data(), ref, a.size() * 2, cudaMemcpyDeviceToHost, t->st) != cudaSuccess)
        return false;
    /* row offsets keep x 256-byte aligned, as the planned calls see it */
    int64_t align = 1;
    while ((align * K * 2) % 256 != 0) align *= 2;
    static const int64_t ms[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 15, 16, 17, 24, 31, 32, 33, 47, 48,
                                 63, 64, 65, 96, 127, 128, 129, 160, 255, 256};
    for (int64_t m : ms) {
        if (m > cap) break;
        int64_t off = (m * 37) % (C - m + 1);
        off -= off % align;
        if (cudaMemsetAsync(y2, 0xFF, (size_t)(m * N) * 2, t->st) != cudaSuccess ||
            !run_algo(lt, g, cand, y2, t->x + off * K, m, t, sm90) ||
            cudaMemcpyAsync(b.data(), y2, (size_t)(m * N) * 2, cudaMemcpyDeviceToHost, t->st) !=
                cudaSuccess ||
            cudaStreamSynchronize(t->st) != cudaSuccess)
            return false;
        if (memcmp(a.data() + off * N, b.data(), (size_t)(m * N) * 2) != 0) return false;
    }
    return true;
}

/* The scratch's x (its first M_SMALL_CAP rows), w and b: wide-range data for same_rows, or (all
 * M_SEL rows) uniform data for the timings. */
template <class E>
static void fill_bufs_t(const sembed__cu_gemm_shape *g, const timing_bufs *t, bool wide) {
    const int64_t NK = (int64_t)g->N * g->K, MK = (wide ? M_SMALL_CAP : M_SEL) * (int64_t)g->K;
    const unsigned b_mk = (unsigned)((MK + 255) / 256), b_nk = (unsigned)((NK + 255) / 256),
                   b_n = (unsigned)((g->N + 255) / 256);
    E *x = (E *)t->x, *w = (E *)t->w, *b = (E *)t->b;
    if (wide) {
        fill_wide_kernel<<<b_mk, 256, 0, t->st>>>(x, MK, 101u, -6);
        fill_wide_kernel<<<b_nk, 256, 0, t->st>>>(w, NK, 202u, -9);
        fill_wide_kernel<<<b_n, 256, 0, t->st>>>(b, g->N, 303u, -6);
    } else {
        fill_kernel<<<b_mk, 256, 0, t->st>>>(x, MK);
        fill_kernel<<<b_nk, 256, 0, t->st>>>(w, NK);
        fill_kernel<<<b_n, 256, 0, t->st>>>(b, g->N);
    }
}
static void fill_bufs(const sembed__cu_gemm_shape *g, const timing_bufs *t, bool wide) {
    if (g->bf16)
        fill_bufs_t<sembed__bf16>(g, t, wide);
    else
        fill_bufs_t<__half>(g, t, wide);
}

/* Looks for an algorithm faster than g->algo at a query's 16 rows whose rows are the same bits
 * (same_rows); sets g->algo_small and g->M_small (the largest of 16, 32, ... M_SMALL_CAP up to
 * which it stays faster), or leaves M_small 0. The candidates: cuBLASLt's heuristic at M = 16
 * and 128 and the large-M list, without split-K or reduction, valid up to M_SMALL_CAP rows. */
static void pick_small(cublasLtHandle_t lt, sembed__cu_gemm_shape *g,
                       const std::vector<cublasLtMatmulAlgo_t> &big, timing_bufs *t) {
    const bool verbose = getenv("SEMBED_CUDA_GEMM_VERBOSE") != NULL;
    std::vector<cublasLtMatmulAlgo_t> cand;
    auto add = [&](const cublasLtMatmulAlgo_t &a) {
        for (const cublasLtMatmulAlgo_t &c : cand)
            if (memcmp(&c, &a, sizeof a) == 0) return;
        if (memcmp(&a, &g->algo, sizeof a) == 0 || !splits_nothing(&a) ||
            misfit(lt, g, &a, FIT_SMALL))
            return;
        cand.push_back(a);
    };
    for (int64_t Mh : {(int64_t)16, (int64_t)128}) {
        gemm_descs d;
        sembed_error e;
        if (make_descs(&d, g, Mh, g->bias ? FAKE_BIAS : NULL, &e) != SEMBED_OK) return;
        cublasLtMatmulPreferenceOpaque_t pref;
        if (cublasLtMatmulPreferenceInit(&pref) != CUBLAS_STATUS_SUCCESS ||
            cublasLtMatmulPreferenceSetAttribute(&pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                 &g->ws_bytes, sizeof g->ws_bytes) !=
                CUBLAS_STATUS_SUCCESS)
            return;
        enum { N_RES = 64 };
        cublasLtMatmulHeuristicResult_t res[N_RES];
        int n_res = 0;
        if (cublasLtMatmulAlgoGetHeuristic(lt, &d.op, &d.a, &d.b, &d.c, &d.c, &pref, N_RES, res,
                                           &n_res) != CUBLAS_STATUS_SUCCESS)
            n_res = 0;
        for (int i = 0; i < n_res; i++)
            if (res[i].state == CUBLAS_STATUS_SUCCESS) add(res[i].algo);
    }
    for (const cublasLtMatmulAlgo_t &a : big) add(a);
    const float t_main = time_algo(lt, g, &g->algo, 16, t);
    auto fill_wide = [&]() { fill_bufs(g, t, true); };
    auto fill_uniform = [&]() { fill_bufs(g, t, false); };
    [&]() { /* cuBLASLt's candidates: the fastest at 16 rows with the same bits */
        if (cand.empty()) return;
        std::vector<std::pair<float, int>> by_t;
        for (int i = 0; i < (int)cand.size(); i++) {
            const float v = time_algo(lt, g, &cand[(size_t)i], 16, t);
            if (v > 0.f && v < 0.9f * t_main) by_t.push_back({v, i});
        }
        (void)cudaGetLastError();
        std::sort(by_t.begin(), by_t.end());
        if (verbose)
            fprintf(stderr, "gemm N=%d K=%d: main algorithm at M=16 %.4f ms; %d small-M candidates, "
                    "%d faster by 10%%\n", g->N, g->K, t_main, (int)cand.size(), (int)by_t.size());
        if (by_t.empty()) return;
        fill_wide();
        int chosen = -1;
        for (size_t j = 0; j < by_t.size() && j < 12 && chosen < 0; j++) {
            const cublasLtMatmulAlgo_t *a = &cand[(size_t)by_t[j].second];
            const bool same = same_rows(lt, g, &g->algo, a, M_SMALL_CAP, t);
            (void)cudaGetLastError();
            if (verbose) {
                print_algo(g, "small", by_t[j].second, a);
                fprintf(stderr, " M=16 %.4f ms, same bits as the main algorithm: %s\n",
                        by_t[j].first, same ? "yes" : "no");
            }
            if (same) chosen = by_t[j].second;
        }
        if (chosen < 0) return;
        /* uniform data again for the timings; the largest size up to which it stays faster */
        fill_uniform();
        g->algo_small = cand[(size_t)chosen];
        g->M_small = 16;
        for (int64_t m = 32; m <= M_SMALL_CAP; m *= 2) {
            const float ts = time_algo(lt, g, &g->algo_small, m, t), tb = time_algo(lt, g, &g->algo, m, t);
            if (verbose)
                fprintf(stderr, "gemm N=%d K=%d: M=%lld small %.4f ms, main %.4f ms\n", g->N, g->K,
                        (long long)m, ts, tb);
            if (!(ts > 0.f && ts < tb)) break;
            g->M_small = m;
        }
        (void)cudaGetLastError();
    }();
    /* then our own kernel: the rows it takes are those up to which it beats what would run */
    const int64_t own_rows = small_kernel_rows(g);
    if (own_rows > 0 && !env_is("SEMBED_CUDA_GEMM_OWN", "0") && small_kernel_setup() == cudaSuccess) {
        fill_wide();
        const bool same = same_rows(lt, g, &g->algo, NULL, own_rows, t);
        (void)cudaGetLastError();
        fill_uniform();
        for (int64_t m = 16; same && m <= own_rows; m += 16) {
            const float to = time_algo(lt, g, NULL, m, t),
                        tb = time_algo(lt, g, m <= g->M_small ? &g->algo_small : &g->algo, m, t,
                                       true);
            if (verbose)
                fprintf(stderr, "gemm N=%d K=%d: M=%lld own kernel %.4f ms, cuBLASLt %.4f ms\n",
                        g->N, g->K, (long long)m, to, tb);
            if (!(to > 0.f && to < tb)) break;
            g->M_own = m;
        }
        (void)cudaGetLastError();
        if (verbose)
            fprintf(stderr, "gemm N=%d K=%d: own kernel same bits as the main algorithm: %s; "
                    "used for M <= %lld\n", g->N, g->K, same ? "yes" : "no", (long long)g->M_own);
    }
}

/* Looks for a CUTLASS configuration (gemm_sm90.cuh) faster than g->algo with its act pass at
 * M_SEL rows whose rows are the same bits (same_rows, the activation applied to algo's); sets
 * g->sm90 and g->M_sm90, the smallest of M_SEL/32 .. M_SEL from which it stays faster, or leaves
 * sm90 at -1. Hopper (9.0) only, fp16 (not bf16) with a bias and the GELU (the configurations
 * built). */
static void pick_sm90(cublasLtHandle_t lt, sembed__cu_gemm_shape *g, int device, timing_bufs *t) {
    const bool verbose = getenv("SEMBED_CUDA_GEMM_VERBOSE") != NULL;
    if (sembed__cu_sm90_configs() == 0 || env_is("SEMBED_CUDA_GEMM_SM90", "0") || g->f32 || g->bf16 ||
        !g->bias || g->act != SEMBED__ACTK_GELU || !sembed__cu_device_is_90(device))
        return;
    const float t_main = time_algo(lt, g, &g->algo, M_SEL, t, true);
    std::vector<std::pair<float, int>> by_t;
    for (int c = 0; c < sembed__cu_sm90_configs(); c++) {
        size_t need = 0;
        /* supported, within the workspace, at any M (a fixed large one asked) */
        const cudaError_t e =
            sembed__cu_sm90_gemm(c, g->act == SEMBED__ACTK_GELU, NULL, t->x, t->w, t->b,
                                 (int64_t)1 << 24, g->N, g->K, t->ws, g->ws_bytes, t->st, &need);
        const float v = e == cudaSuccess ? time_algo(lt, g, NULL, M_SEL, t, false, c) : -1.f;
        if (verbose)
            fprintf(stderr, "gemm N=%d K=%d: CUTLASS %s at M=%lld: %.4f ms (%s), cuBLASLt%s %.4f ms\n",
                    g->N, g->K, sembed__cu_sm90_name(c), (long long)M_SEL, v, cudaGetErrorString(e),
                    g->act != SEMBED__ACTK_IDENTITY ? " + act pass" : "", t_main);
        if (v > 0.f && v < 0.97f * t_main) by_t.push_back({v, c});
    }
    (void)cudaGetLastError();
    std::sort(by_t.begin(), by_t.end());
    if (by_t.empty()) return;
    fill_bufs(g, t, true);
    int chosen = -1;
    for (size_t j = 0; j < by_t.size() && chosen < 0; j++) {
        const bool same = same_rows(lt, g, &g->algo, NULL, M_SMALL_CAP, t, by_t[j].second);
        (void)cudaGetLastError();
        if (verbose)
            fprintf(stderr, "gemm N=%d K=%d: CUTLASS %s same bits as the main algorithm: %s\n",
                    g->N, g->K, sembed__cu_sm90_name(by_t[j].second), same ? "yes" : "no");
        if (same) chosen = by_t[j].second;
    }
    fill_bufs(g, t, false);
    if (chosen < 0) return;
    g->sm90 = chosen, g->M_sm90 = M_SEL;
    for (int64_t m = M_SEL / 2; m >= M_SEL / 32; m /= 2) {
        const float tc = time_algo(lt, g, NULL, m, t, false, chosen),
                    tb = time_algo(lt, g, &g->algo, m, t, true);
        if (verbose)
            fprintf(stderr, "gemm N=%d K=%d: M=%lld CUTLASS %.4f ms, cuBLASLt %.4f ms\n", g->N,
                    g->K, (long long)m, tc, tb);
        if (!(tc > 0.f && tc < tb)) break;
        g->M_sm90 = m;
    }
    (void)cudaGetLastError();
}

/* ---- plans on disk ---------------------------------------------------------------------------
 * Timing the candidates takes most of a context's start-up (~1 s for MiniLM's four shapes on an
 * H100), so the timed choice is kept in the user's cache directory (src/cache_file.h) under a key
 * naming everything it depends on: the card (name, compute capability, SMs), the driver, the CUDA
 * runtime and cuBLASLt versions, this build of sembed (the file its code was loaded from, by size
 * and modification time: the own kernel and the CUTLASS configurations are checked for their
 * bits at plan time, and a rebuilt sembed may have others), the shape and the workspace. A plan
 * read back is checked as the timing's result would be (the algorithms' fit for every M, the
 * ranges) and used only if it passes; SEMBED_CACHE_DIR=off keeps nothing on disk. Processes that
 * find the file read the same plan, so the same text gives the same bits from run to run, where
 * timing could pick another algorithm each time. Any of the SEMBED_CUDA_GEMM* switches bypasses
 * the file. */
typedef struct disk_plan {
    cublasLtMatmulAlgo_t algo, algo_small;
    int64_t M_small, M_own, M_sm90;
    int32_t sm90, format;
} disk_plan;
static_assert(sizeof(disk_plan) == 2 * sizeof(cublasLtMatmulAlgo_t) + 32, "disk_plan has padding");
#define DISK_PLAN_FORMAT 1

/* The path of the plan file, or "" when there is no cache directory. */
static std::string plan_path(void) {
    char *dir = sembed__cache_dir();
    if (!dir) return "";
    std::string p = std::string(dir) + "/gpu-plans.txt";
    sembed__free(dir);
    return p;
}

/* This build of sembed: the file holding this code, its size and modification time. */
static std::string build_id(void) {
    Dl_info info;
    struct stat st;
    if (!dladdr((const void *)&sembed__cu_gemm_plan, &info) || !info.dli_fname) return "";
    /* in the main program (sembed linked statically) glibc names it as it was run, argv[0]:
     * "sembed" from PATH is no path from here */
    const char *f = strchr(info.dli_fname, '/') ? info.dli_fname : "/proc/self/exe";
    if (stat(f, &st) != 0) return "";
    char b[64];
    snprintf(b, sizeof b, "%lld.%lld.%ld", (long long)st.st_size, (long long)st.st_mtim.tv_sec,
             (long)st.st_mtim.tv_nsec);
    return b;
}

/* The key's part that names the card, its software and this build: worked out once per device
 * (under plan_mu; "" where something could not be asked, and asked again next time). */
static std::string card_key(int device) {
    static std::vector<std::string> known;
    if (device >= 0 && (size_t)device < known.size() && !known[(size_t)device].empty())
        return known[(size_t)device];
    cudaDeviceProp prop;
    int drv = 0, rt = 0;
    const std::string build = build_id();
    if (device < 0 || build.empty() || cudaGetDeviceProperties(&prop, device) != cudaSuccess ||
        cudaDriverGetVersion(&drv) != cudaSuccess || cudaRuntimeGetVersion(&rt) != cudaSuccess)
        return "";
    char name[sizeof prop.name];
    snprintf(name, sizeof name, "%s", prop.name);
    for (char *c = name; *c; c++)
        if (*c < '!' || *c > '~') *c = '_';
    char k[SEMBED__CACHE_KEY_MAX / 2];
    const int n = snprintf(k, sizeof k, "gemm%d/%s/cc%d.%d/sm%d/drv%d/rt%d/lt%zu/sembed%d.%d.%d/%s",
                           DISK_PLAN_FORMAT, name, prop.major, prop.minor,
                           prop.multiProcessorCount, drv, rt, cublasLtGetVersion(),
                           SEMBED_VERSION_MAJOR, SEMBED_VERSION_MINOR, SEMBED_VERSION_PATCH,
                           build.c_str());
    if (n <= 0 || n >= (int)sizeof k) return "";
    if ((size_t)device >= known.size()) known.resize((size_t)device + 1);
    return known[(size_t)device] = k;
}

/* The key of shape g's plan on device (empty: no key, nothing on disk). */
static std::string disk_key(const sembed__cu_gemm_shape *g, int device) {
    const std::string card = card_key(device);
    if (card.empty()) return "";
    char k[SEMBED__CACHE_KEY_MAX];
    const int n = snprintf(k, sizeof k, "%s/N%dK%d/%s/b%d/a%d/ws%zu/m%lld", card.c_str(), g->N,
                           g->K, g->f32 ? "f32" : g->bf16 ? "bf16" : "f16", (int)g->bias,
                           (int)g->act, g->ws_bytes, (long long)M_SEL);
    return n > 0 && n < (int)sizeof k ? k : "";
}

bool sembed__cu_gemm_plan_uses_disk(void) {
    return !getenv("SEMBED_CUDA_GEMM") && !getenv("SEMBED_CUDA_GEMM_SMALL") &&
           !getenv("SEMBED_CUDA_GEMM_OWN") && !getenv("SEMBED_CUDA_GEMM_SM90") &&
           !getenv("SEMBED_CUDA_GEMM_MSEL");
}

/* Reads g's plan from the file into g (on success only): true where one was there and passes
 * the checks the timed plan passed. */
static bool disk_read(sembed__cu_gemm_shape *g, cublasLtHandle_t lt, int device,
                      const std::string &path, const std::string &key) {
    disk_plan p;
    if (path.empty() || key.empty() || !sembed__cache_get(path.c_str(), key.c_str(), &p, sizeof p) ||
        p.format != DISK_PLAN_FORMAT)
        return false;
    sembed__cu_gemm_shape c = *g;
    c.algo = p.algo, c.algo_small = p.algo_small;
    c.M_small = p.M_small, c.M_own = p.M_own, c.sm90 = p.sm90, c.M_sm90 = p.M_sm90;
    if (!splits_nothing(&c.algo) || misfit(lt, &c, &c.algo, FIT_MAIN)) return false;
    if (c.M_small != 0) {
        if (c.M_small < 16 || c.M_small > M_SMALL_CAP || !splits_nothing(&c.algo_small) ||
            misfit(lt, &c, &c.algo_small, FIT_SMALL))
            return false;
    } else {
        memset(&c.algo_small, 0, sizeof c.algo_small);
    }
    if (c.M_own < 0 || c.M_own > small_kernel_rows(&c) || c.M_own % 16 != 0 ||
        (c.M_own > 0 && small_kernel_setup() != cudaSuccess))
        return false;
    if (c.sm90 != -1 &&
        (c.sm90 < 0 || c.sm90 >= sembed__cu_sm90_configs() || c.f32 || c.bf16 || !c.bias ||
         c.act != SEMBED__ACTK_GELU || c.M_sm90 < M_SEL / 32 || c.M_sm90 > M_SEL ||
         !sembed__cu_device_is_90(device)))
        return false;
    *g = c;
    return true;
}

static void disk_write(const sembed__cu_gemm_shape *g, const std::string &path,
                       const std::string &key) {
    if (path.empty() || key.empty()) return;
    disk_plan p;
    memset(&p, 0, sizeof p);
    p.algo = g->algo, p.algo_small = g->algo_small;
    p.M_small = g->M_small, p.M_own = g->M_own, p.sm90 = g->sm90, p.M_sm90 = g->M_sm90;
    p.format = DISK_PLAN_FORMAT;
    if (!sembed__cache_put(path.c_str(), key.c_str(), &p, sizeof p) &&
        getenv("SEMBED_CUDA_GEMM_VERBOSE"))
        fprintf(stderr, "gemm N=%d K=%d: the plan could not be written to %s\n", g->N, g->K,
                path.c_str());
}

/* Chooses g's algorithms from cuBLASLt's heuristic: timed (and the small-M, own and CUTLASS
 * kernels looked for) when `timed`, else its first valid candidate. */
static sembed_status choose(sembed__cu_gemm_shape *g, cublasLtHandle_t lt, int device, bool timed,
                            sembed_error *err) {
    /* The heuristic is asked at a fixed M whatever M_max is, so that contexts of every
     * size see the same candidates. */
    gemm_descs d;
    sembed_status s = make_descs(&d, g, M_SEL, g->bias ? FAKE_BIAS : NULL, err);
    if (s != SEMBED_OK) return s;
    cublasLtMatmulPreferenceOpaque_t pref;
    SEMBED_CU(cublasLtMatmulPreferenceInit(&pref));
    SEMBED_CU(cublasLtMatmulPreferenceSetAttribute(
        &pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &g->ws_bytes, sizeof g->ws_bytes));
    enum { N_RES = 64 };
    cublasLtMatmulHeuristicResult_t res[N_RES];
    int n_res = 0;
    SEMBED_CU(cublasLtMatmulAlgoGetHeuristic(lt, &d.op, &d.a, &d.b, &d.c, &d.c, &pref, N_RES,
                                             res, &n_res));
    /* candidates: no split-K, no reduction across CTAs, valid for every M up to
     * max(M_max, 65536) */
    std::vector<cublasLtMatmulAlgo_t> cand;
    for (int i = 0; i < n_res; i++) {
        if (res[i].state != CUBLAS_STATUS_SUCCESS || !splits_nothing(&res[i].algo)) continue;
        int64_t bad = misfit(lt, g, &res[i].algo, FIT_MAIN);
        if (!bad && !algo_fits(lt, g, &res[i].algo, g->M_max)) bad = g->M_max;
        if (bad && getenv("SEMBED_CUDA_GEMM_VERBOSE"))
            fprintf(stderr, "gemm N=%d K=%d: heuristic result %d left out (not valid for M=%lld)\n",
                    g->N, g->K, i, (long long)bad);
        if (!bad) cand.push_back(res[i].algo);
        if (!timed && !bad) break;
    }
    if (cand.empty())
        return sembed__err(err, SEMBED_ERR_BACKEND,
                           "cuBLASLt offers no fixed algorithm without split-K for a %s GEMM "
                           "of N=%d, K=%d, M up to %lld (%d candidates)",
                           g->f32 ? "fp32" : g->bf16 ? "bf16" : "fp16", g->N, g->K,
                           (long long)g->M_max, n_res);
    int best = 0;
    const bool small = timed && !env_is("SEMBED_CUDA_GEMM_SMALL", "0");
    timing_bufs t = {};
    if (timed) {
        s = bufs_new(&t, g, err);
        if (s != SEMBED_OK) return s;
    }
    if (timed && cand.size() > 1)
        s = pick_by_timing(lt, g, cand.data(), (int)cand.size(), &best, &t, err);
    if (s == SEMBED_OK) {
        g->algo = cand[(size_t)best];
        if (small) pick_small(lt, g, cand, &t);
        if (timed) pick_sm90(lt, g, device, &t);
    }
    bufs_free(&t);
    return s;
}

sembed_status sembed__cu_gemm_plan(sembed__cu_gemm_shape *g, cublasLtHandle_t lt, int32_t N,
                                   int32_t K, int64_t M_max, sembed__cu_dtype dt, bool bias,
                                   sembed__act_kind act, size_t ws_bytes, sembed_error *err) {
    const bool f32 = dt == SEMBED__CU_F32, bf16 = dt == SEMBED__CU_BF16;
    SEMBED_ASSERT(!f32 || act == SEMBED__ACTK_IDENTITY);
    memset(g, 0, sizeof *g);
    g->sm90 = -1;
    g->N = N, g->K = K, g->M_max = M_max, g->f32 = f32, g->bf16 = bf16, g->bias = bias;
    g->ws_bytes = ws_bytes;
    g->act = act;
    int device = 0;
    SEMBED_CU(cudaGetDevice(&device));
    /* SEMBED_CUDA_GEMM=heuristic: cuBLASLt's first candidate (v1's rule), no timing */
    const bool timed = !f32 && !env_is("SEMBED_CUDA_GEMM", "heuristic");
    std::lock_guard<std::mutex> lock(plan_mu);
    bool cached = false;
    for (const plan_entry &p : plan_cache)
        if (p.device == device && p.N == N && p.K == K && p.f32 == f32 && p.bf16 == bf16 &&
            p.bias == bias &&
            p.act == act)
            g->algo = p.algo, g->algo_small = p.algo_small, g->M_small = p.M_small,
            g->M_own = p.M_own, g->sm90 = p.sm90, g->M_sm90 = p.M_sm90, cached = true;
    if (!cached) {
        /* the plan on disk where timing would make it and no switch is set; else, or where the
         * file has none that passes, chosen now (and kept there) */
        const bool disk = timed && sembed__cu_gemm_plan_uses_disk();
        const std::string path = disk ? plan_path() : "", key = disk ? disk_key(g, device) : "";
        if (disk && disk_read(g, lt, device, path, key)) {
            if (getenv("SEMBED_CUDA_GEMM_VERBOSE"))
                fprintf(stderr, "gemm N=%d K=%d: plan read from %s\n", N, K, path.c_str());
        } else {
            const sembed_status s = choose(g, lt, device, timed, err);
            if (s != SEMBED_OK) return s;
            if (disk) disk_write(g, path, key);
        }
        plan_cache.push_back(plan_entry{device, N, K, f32, bf16, bias, act, g->algo, g->algo_small,
                                        g->M_small, g->M_own, g->sm90, g->M_sm90});
    }
    if (!algo_fits(lt, g, &g->algo, M_max))
        return sembed__err(err, SEMBED_ERR_BACKEND,
                           "cuBLASLt: the algorithm chosen for N=%d, K=%d does not fit M=%lld",
                           N, K, (long long)M_max);
    size_t wr = 0;
    uint32_t tile = 0, stages = 0;
    cublasLtMatmulAlgoConfigGetAttribute(&g->algo, CUBLASLT_ALGO_CONFIG_ID, &g->algo_id,
                                         sizeof g->algo_id, &wr);
    cublasLtMatmulAlgoConfigGetAttribute(&g->algo, CUBLASLT_ALGO_CONFIG_TILE_ID, &tile,
                                         sizeof tile, &wr);
    cublasLtMatmulAlgoConfigGetAttribute(&g->algo, CUBLASLT_ALGO_CONFIG_STAGES_ID, &stages,
                                         sizeof stages, &wr);
    g->tile_id = (int32_t)tile, g->stages_id = (int32_t)stages;
    if (g->M_small > 0) {
        cublasLtMatmulAlgoConfigGetAttribute(&g->algo_small, CUBLASLT_ALGO_CONFIG_ID,
                                             &g->small_algo_id, sizeof g->small_algo_id, &wr);
        cublasLtMatmulAlgoConfigGetAttribute(&g->algo_small, CUBLASLT_ALGO_CONFIG_TILE_ID, &tile,
                                             sizeof tile, &wr);
        g->small_tile_id = (int32_t)tile;
    }
    return SEMBED_OK;
}

sembed_status sembed__cu_gemm(const sembed__cu_gemm_shape *g, cublasLtHandle_t lt, void *y,
                              const void *x, const void *w, const void *b, int64_t M, void *ws,
                              cudaStream_t stream, sembed_error *err) {
    SEMBED_ASSERT(M <= g->M_max && (b != NULL) == g->bias);
    if (M <= 0) return SEMBED_OK;
    gemm_descs d;
    sembed_status s = make_descs(&d, g, M, b, err);
    if (s != SEMBED_OK) return s;
    const float one = 1.0f, zero = 0.0f;
    if (M <= g->M_own) {
        SEMBED_CU(launch_small(g, y, x, w, b, M, stream));
        return SEMBED_OK;
    }
    if (g->sm90 >= 0 && M >= g->M_sm90) {
        SEMBED_CU(launch_sm90(g, g->sm90, y, x, w, b, M, ws, stream));
        return SEMBED_OK;
    }
    const cublasLtMatmulAlgo_t *a = M <= g->M_small ? &g->algo_small : &g->algo;
    SEMBED_CU(cublasLtMatmul(lt, &d.op, &one, w, &d.a, x, &d.b, &zero, y, &d.c, y, &d.c, a, ws,
                             g->ws_bytes, stream));
    if (g->act != SEMBED__ACTK_IDENTITY)
        return act_pass(g, y, M * g->N, stream, err);
    return SEMBED_OK;
}
