/* add_ln.cu — residual add + LayerNorm, one warp per row, the row in registers (kernel v2:
 * registers sized to H by a template).
 * Dimension letters: T rows, H hidden. */
#include "add_ln.cuh"

/* a, b and out are not __restrict__: out may alias either (each warp reads its whole row into
 * registers before writing it). */
template <int NV, class E>
static __global__ void __launch_bounds__(128)
    add_ln_kernel(E *out, const E *a, const E *b, const float *gamma,
                  const float *beta, int64_t T, int H, float eps) {
    sembed__grid_dep_sync();
    const int lane = threadIdx.x & 31;
    const int64_t t = (int64_t)blockIdx.x * 4 + (threadIdx.x >> 5);
    if (t >= T) return;
    float v[NV][8];
#pragma unroll
    for (int k = 0; k < NV; k++) {
        const int c = (k * 32 + lane) * 8;
        if (c < H) {
            float x[8], y[8];
            sembed__v8_to_f(sembed__ld_v8(a + t * H + c), x);
            sembed__v8_to_f(sembed__ld_v8(b + t * H + c), y);
#pragma unroll
            for (int e = 0; e < 8; e++) v[k][e] = x[e] + y[e];
        }
    }
    sembed__ln_row_store(out + t * H, v, gamma, beta, H, eps, lane);
}

template <class E>
sembed_status sembed__cu_add_ln(E *out, const E *a, const E *b, const float *gamma,
                                const float *beta, int64_t T, int32_t H, float eps,
                                cudaStream_t stream, sembed_error *err) {
    SEMBED_ASSERT(H % 8 == 0 && H <= SEMBED__LN_NV * 8 * 32);
    if (T <= 0) return SEMBED_OK;
    /* the row's registers sized to H (v1 held 64 floats for any H: 95 registers, 31% occupancy) */
    const dim3 grid((unsigned)((T + 3) / 4)), block(128);
    cudaError_t e;
    switch ((H / 8 + 31) / 32) {
    case 1: e = sembed__launch_pdl(add_ln_kernel<1, E>, grid, block, 0, stream, out, a, b, gamma, beta, T, H, eps); break;
    case 2: e = sembed__launch_pdl(add_ln_kernel<2, E>, grid, block, 0, stream, out, a, b, gamma, beta, T, H, eps); break;
    case 3: e = sembed__launch_pdl(add_ln_kernel<3, E>, grid, block, 0, stream, out, a, b, gamma, beta, T, H, eps); break;
    case 4: e = sembed__launch_pdl(add_ln_kernel<4, E>, grid, block, 0, stream, out, a, b, gamma, beta, T, H, eps); break;
    default:
        e = sembed__launch_pdl(add_ln_kernel<SEMBED__LN_NV, E>, grid, block, 0, stream, out, a, b,
                               gamma, beta, T, H, eps);
    }
    SEMBED_CU(e);
    return SEMBED_OK;
}

template sembed_status sembed__cu_add_ln<__half>(__half *, const __half *, const __half *,
                                                 const float *, const float *, int64_t, int32_t,
                                                 float, cudaStream_t, sembed_error *);
template sembed_status sembed__cu_add_ln<sembed__bf16>(sembed__bf16 *, const sembed__bf16 *,
                                                       const sembed__bf16 *, const float *,
                                                       const float *, int64_t, int32_t, float,
                                                       cudaStream_t, sembed_error *);
