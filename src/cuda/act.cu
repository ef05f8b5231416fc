/* act.cu — elementwise activations (kernel v1; GELU on fp16 v2): 8 fp16 (or bf16) values per
 * thread through one 16-byte access, a scalar tail; fp32 data one value per thread. Formulas as
 * src/ref/ops.c's act1 (fp16 GELU: the same function, erfc by a rational approximation). */
#include "act.cuh"

static __device__ __forceinline__ float act1(float x, sembed__act_kind kind) {
    switch (kind) {
    case SEMBED__ACTK_IDENTITY: return x;
    case SEMBED__ACTK_GELU: return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f));
    case SEMBED__ACTK_GELU_TANH:
        return 0.5f * x * (1.0f + tanhf(0.79788456080286536f * (x + 0.044715f * x * x * x)));
    case SEMBED__ACTK_RELU: return x > 0.f ? x : 0.0f;
    case SEMBED__ACTK_TANH: return tanhf(x);
    case SEMBED__ACTK_SIGMOID: return 1.0f / (1.0f + expf(-x));
    }
    return x;
}

/* fp16 GELU: sembed__gelu_f16 (act.cuh), shared with gemm.cu's small-M epilogue. */
/* Two 16-byte vectors per thread, both loads issued before any math: one vector per thread left
 * too few bytes in flight to reach the card's bandwidth (2.5 of ~4.3 TB/s on an H200). */
template <class E>
static __device__ __forceinline__ void gelu_v8(E *x, int64_t i, int64_t n) {
    for (int64_t j = i; j < i + 8 && j < n; j++)
        x[j] = sembed__from_f<E>(sembed__gelu_f16(sembed__to_f(x[j])));
}
template <class E>
static __global__ void act16_gelu_kernel(E *x, int64_t n) {
    sembed__grid_dep_sync();
    const int64_t i0 = ((int64_t)blockIdx.x * blockDim.x * 2 + threadIdx.x) * 8;
    const int64_t i1 = i0 + (int64_t)blockDim.x * 8;
    const bool al = ((uintptr_t)x & 15) == 0;
    if (al && i1 + 8 <= n) {
        float f[8], g[8];
        const sembed__v8<E> a = sembed__ld_v8(x + i0), b = sembed__ld_v8(x + i1);
        sembed__v8_to_f(a, f);
        sembed__v8_to_f(b, g);
#pragma unroll
        for (int e = 0; e < 8; e++) f[e] = sembed__gelu_f16(f[e]), g[e] = sembed__gelu_f16(g[e]);
        sembed__st_v8(x + i0, sembed__f_to_v8<E>(f));
        sembed__st_v8(x + i1, sembed__f_to_v8<E>(g));
    } else {
        if (i0 < n) gelu_v8(x, i0, n);
        if (i1 < n) gelu_v8(x, i1, n);
    }
}

template <class E>
static __global__ void act16_kernel(E *x, int64_t n, sembed__act_kind kind) {
    sembed__grid_dep_sync();
    const int64_t i = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) * 8;
    if (i + 8 <= n && ((uintptr_t)(x + i) & 15) == 0) {
        float f[8];
        sembed__v8_to_f(sembed__ld_v8(x + i), f);
#pragma unroll
        for (int e = 0; e < 8; e++) f[e] = act1(f[e], kind);
        sembed__st_v8(x + i, sembed__f_to_v8<E>(f));
    } else {
        for (int64_t j = i; j < i + 8 && j < n; j++)
            x[j] = sembed__from_f<E>(act1(sembed__to_f(x[j]), kind));
    }
}

static __global__ void act_f32_kernel(float *x, int64_t n, sembed__act_kind kind) {
    sembed__grid_dep_sync();
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) x[i] = act1(x[i], kind);
}

template <class E>
sembed_status sembed__cu_act16(E *x, int64_t n, sembed__act_kind kind, cudaStream_t stream,
                               sembed_error *err) {
    if (n <= 0 || kind == SEMBED__ACTK_IDENTITY) return SEMBED_OK;
    const int64_t threads = (n + 7) / 8;
    if (kind == SEMBED__ACTK_GELU) {
        SEMBED_CU(sembed__launch_pdl(act16_gelu_kernel<E>, dim3((unsigned)((threads + 511) / 512)),
                                     dim3(256), 0, stream, x, n));
        return SEMBED_OK;
    }
    SEMBED_CU(sembed__launch_pdl(act16_kernel<E>, dim3((unsigned)((threads + 255) / 256)), dim3(256),
                                 0, stream, x, n, kind));
    return SEMBED_OK;
}
template sembed_status sembed__cu_act16<__half>(__half *, int64_t, sembed__act_kind, cudaStream_t,
                                                sembed_error *);
template sembed_status sembed__cu_act16<sembed__bf16>(sembed__bf16 *, int64_t, sembed__act_kind,
                                                      cudaStream_t, sembed_error *);

sembed_status sembed__cu_act_f32(float *x, int64_t n, sembed__act_kind kind, cudaStream_t stream,
                                 sembed_error *err) {
    if (n <= 0 || kind == SEMBED__ACTK_IDENTITY) return SEMBED_OK;
    SEMBED_CU(sembed__launch_pdl(act_f32_kernel, dim3((unsigned)((n + 255) / 256)), dim3(256), 0,
                                 stream, x, n, kind));
    return SEMBED_OK;
}
