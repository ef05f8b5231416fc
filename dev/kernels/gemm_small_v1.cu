// gemm_small_v1.cu — the first small-M GEMM kernel (src/cuda/gemm.cu's gemm_small_kernel before
// v2): fragments loaded from global memory straight into registers, asm volatile mma. Its bits
// matched cuBLASLt's algorithm 66 on all 8 encoder shapes (H200), but it ran 6 µs at K=384 and
// 17 µs at K=1536 (M=16): each k-step waited on its loads. Kept for the record; not built.
#include <cuda_fp16.h>
#include <stdint.h>
/* ---- the small-M kernel ---------------------------------------------------------------------
 * gemm_small v1: y (M, N) = x (M, K) · w (N, K)ᵀ + b for M <= 16·MT rows, a warp per 8 output
 * columns over all rows, the whole K in order, one mma.sync.m16n8k16 (fp16 in, fp32 accumulate)
 * per 16 k, the bias added in fp32, one rounding to fp16. That is the order cuBLASLt's Hopper
 * kernels (algorithm 66, every tile) sum in; whether this kernel gives their bits is checked
 * at plan time on random data (same_rows) and by test_cuda_ops' gemm rows test, and the plan
 * uses it only where it does. A query's GEMMs read 0.3-5 MB of weights: cuBLASLt's kernels
 * take 7-14 µs there whatever the tile (launch, TMA and pipeline set-up), this one a few. */
#define SMALL_WARPS 2 /* warps per block: 16 output columns */
#define SMALL_MT_MAX 4 /* m16 tiles: M <= 64 */

static __device__ __forceinline__ uint32_t ld_u32(const __half *p) {
    return *(const uint32_t *)p;
}

template <int MT>
static __global__ void __launch_bounds__(32 * SMALL_WARPS)
    gemm_small_kernel(__half *y, const __half *x, const __half *w, const __half *b, int M, int N,
                      int K) {
    const int lane = threadIdx.x & 31;
    const int n0 = (blockIdx.x * SMALL_WARPS + (threadIdx.x >> 5)) * 8;
    if (n0 >= N) return;
    const int g = lane >> 2, t = lane & 3;
    const __half *wr = w + (int64_t)(n0 + g) * K + 2 * t;
    const __half *xr[MT][2];
    bool ok[MT][2];
#pragma unroll
    for (int mt = 0; mt < MT; mt++)
#pragma unroll
        for (int h = 0; h < 2; h++) {
            const int r = mt * 16 + h * 8 + g;
            ok[mt][h] = r < M;
            xr[mt][h] = x + (int64_t)(r < M ? r : 0) * K + 2 * t;
        }
    float acc[MT][4];
#pragma unroll
    for (int mt = 0; mt < MT; mt++) acc[mt][0] = acc[mt][1] = acc[mt][2] = acc[mt][3] = 0.f;
#pragma unroll 4
    for (int k = 0; k < K; k += 16) {
        const uint32_t b0 = ld_u32(wr + k), b1 = ld_u32(wr + k + 8);
#pragma unroll
        for (int mt = 0; mt < MT; mt++) {
            const uint32_t a0 = ok[mt][0] ? ld_u32(xr[mt][0] + k) : 0u;
            const uint32_t a1 = ok[mt][1] ? ld_u32(xr[mt][1] + k) : 0u;
            const uint32_t a2 = ok[mt][0] ? ld_u32(xr[mt][0] + k + 8) : 0u;
            const uint32_t a3 = ok[mt][1] ? ld_u32(xr[mt][1] + k + 8) : 0u;
            asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, "
                         "{%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                         : "+f"(acc[mt][0]), "+f"(acc[mt][1]), "+f"(acc[mt][2]), "+f"(acc[mt][3])
                         : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
        }
    }
    const int c = n0 + 2 * t;
    const float bias0 = b ? __half2float(b[c]) : 0.f, bias1 = b ? __half2float(b[c + 1]) : 0.f;
#pragma unroll
    for (int mt = 0; mt < MT; mt++)
#pragma unroll
        for (int h = 0; h < 2; h++)
            if (ok[mt][h]) {
                float v0 = acc[mt][2 * h], v1 = acc[mt][2 * h + 1];
                if (b) v0 += bias0, v1 += bias1; /* without a bias, -0 stays -0 */
                *(__half2 *)(y + (int64_t)(mt * 16 + h * 8 + g) * N + c) = __floats2half2_rn(v0, v1);
            }
}

