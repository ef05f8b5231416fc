/* pool.cu — pooling (one block per sequence, a thread per feature column, tokens summed in
 * order) and L2 normalization (one block per row, a fixed reduction tree) (kernels v1; v2 adds
 * the normalization to the pooling kernel, for models with no Dense module).
 * Dimension letters: T tokens, S sequences, H hidden, F features per row. */
#include "pool.cuh"

/* norm: then the row is L2-normalized in place by the same block (the query's last kernel:
 * one launch instead of two); each thread rescales the features it wrote. */
/* The sum of each thread's v over a block of 256 threads (8 warps), in the same order every
 * time. */
static __device__ float block_sum_256(float v) {
    __shared__ float part[8];
    v = sembed__warp_sum(v);
    if ((threadIdx.x & 31) == 0) part[threadIdx.x >> 5] = v;
    __syncthreads();
    float tot = 0.f;
#pragma unroll
    for (int w = 0; w < 8; w++) tot += part[w];
    return tot;
}

template <class E>
static __global__ void __launch_bounds__(256)
    pool_kernel(float *out, float *out2, const E *x, const int32_t *seq_off,
                const int32_t *skip, sembed__cu_pool_kinds kinds, int H, bool norm) {
    sembed__grid_dep_sync();
    const int s = blockIdx.x;
    const int t0 = seq_off[s], L = seq_off[s + 1] - t0;
    int k0 = skip ? skip[s] : 0;
    k0 = k0 < L ? k0 : L;
    const int64_t F = (int64_t)kinds.n * H;
    for (int c = 0; c < kinds.n; c++) {
        float *o = out + s * F + (int64_t)c * H;
        const sembed__pool_kind kind = kinds.k[c];
        for (int i = threadIdx.x; i < H; i += blockDim.x) {
            float acc = 0.f, wsum = 0.f, mx = -1e9f;
            switch (kind) {
            case SEMBED__POOLK_CLS: o[i] = sembed__to_f(x[(int64_t)t0 * H + i]); break;
            case SEMBED__POOLK_LAST: o[i] = sembed__to_f(x[(int64_t)(t0 + L - 1) * H + i]); break;
            case SEMBED__POOLK_MAX:
                for (int j = k0; j < L; j++) mx = fmaxf(mx, sembed__to_f(x[(int64_t)(t0 + j) * H + i]));
                o[i] = mx;
                break;
            case SEMBED__POOLK_MEAN:
            case SEMBED__POOLK_MEAN_SQRT_LEN:
                for (int j = k0; j < L; j++) acc += sembed__to_f(x[(int64_t)(t0 + j) * H + i]);
                wsum = L - k0 > 0 ? (float)(L - k0) : 1e-9f;
                o[i] = kind == SEMBED__POOLK_MEAN ? acc / wsum : acc / sqrtf(wsum);
                break;
            case SEMBED__POOLK_WEIGHTED_MEAN:
                for (int j = k0; j < L; j++) {
                    acc += (float)(j + 1) * sembed__to_f(x[(int64_t)(t0 + j) * H + i]);
                    wsum += (float)(j + 1);
                }
                o[i] = acc / (wsum > 0.f ? wsum : 1e-9f);
                break;
            }
        }
    }
    if (!norm) return;
    float ss = 0.f;
    for (int c = 0; c < kinds.n; c++)
        for (int i = threadIdx.x; i < H; i += blockDim.x) {
            const float v = out[s * F + (int64_t)c * H + i];
            ss += v * v;
        }
    const float n = fmaxf(sqrtf(block_sum_256(ss)), 1e-12f);
    for (int c = 0; c < kinds.n; c++)
        for (int i = threadIdx.x; i < H; i += blockDim.x) {
            float *o = out + s * F + (int64_t)c * H + i;
            const float v = *o / n;
            *o = v;
            if (out2) out2[s * F + (int64_t)c * H + i] = v;
        }
}

static __global__ void __launch_bounds__(256) normalize_kernel(float *x, int F) {
    sembed__grid_dep_sync();
    float *v = x + (int64_t)blockIdx.x * F;
    float ss = 0.f;
    for (int i = threadIdx.x; i < F; i += blockDim.x) ss += v[i] * v[i];
    const float n = fmaxf(sqrtf(block_sum_256(ss)), 1e-12f);
    for (int i = threadIdx.x; i < F; i += blockDim.x) v[i] = v[i] / n;
}

template <class E>
sembed_status sembed__cu_pool(float *out, const E *x, const int32_t *seq_off,
                              const int32_t *skip, sembed__cu_pool_kinds kinds, int32_t S,
                              int32_t H, cudaStream_t stream, sembed_error *err) {
    SEMBED_ASSERT(kinds.n >= 1 && kinds.n <= SEMBED__MAX_POOL_KINDS);
    if (S <= 0) return SEMBED_OK;
    SEMBED_CU(sembed__launch_pdl(pool_kernel<E>, dim3((unsigned)S), dim3(256), 0, stream, out,
                                 (float *)NULL, x, seq_off, skip, kinds, H, false));
    return SEMBED_OK;
}

template <class E>
sembed_status sembed__cu_pool_normalize(float *out, float *out2, const E *x,
                                        const int32_t *seq_off, const int32_t *skip,
                                        sembed__cu_pool_kinds kinds, int32_t S, int32_t H,
                                        cudaStream_t stream, sembed_error *err) {
    SEMBED_ASSERT(kinds.n >= 1 && kinds.n <= SEMBED__MAX_POOL_KINDS);
    if (S <= 0) return SEMBED_OK;
    SEMBED_CU(sembed__launch_pdl(pool_kernel<E>, dim3((unsigned)S), dim3(256), 0, stream, out, out2,
                                 x, seq_off, skip, kinds, H, true));
    return SEMBED_OK;
}

sembed_status sembed__cu_normalize(float *x, int32_t S, int32_t F, cudaStream_t stream,
                                   sembed_error *err) {
    if (S <= 0) return SEMBED_OK;
    SEMBED_CU(sembed__launch_pdl(normalize_kernel, dim3((unsigned)S), dim3(256), 0, stream, x, F));
    return SEMBED_OK;
}

#define POOL_INST(E)                                                                            \
    template sembed_status sembed__cu_pool<E>(float *, const E *, const int32_t *,             \
                                              const int32_t *, sembed__cu_pool_kinds, int32_t,  \
                                              int32_t, cudaStream_t, sembed_error *);           \
    template sembed_status sembed__cu_pool_normalize<E>(                                        \
        float *, float *, const E *, const int32_t *, const int32_t *, sembed__cu_pool_kinds,   \
        int32_t, int32_t, cudaStream_t, sembed_error *);
POOL_INST(__half)
POOL_INST(sembed__bf16)
