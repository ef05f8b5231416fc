/* cuda_common.cuh — what every CUDA op file shares: the one check macro that turns a CUDA or
 * cuBLASLt failure into a sembed_status naming the expression and its file:line, and a few
 * device helpers (warp sums, the fp16/bf16 element types, 16-byte vectors of them). Not an op;
 * no kernels live here. */
#ifndef SEMBED_CUDA_COMMON_CUH
#define SEMBED_CUDA_COMMON_CUH

#include <cublasLt.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdint.h>
#include <string.h>

extern "C" {
#include "backend.h"
#include "common.h"
}

/* Fills err with "CUDA error at file:line: expr: reason" and returns SEMBED_ERR_BACKEND. */
sembed_status sembed__cu_fail(sembed_error *err, const char *expr, const char *where, int line,
                              const char *reason);

static inline sembed_status sembed__cu_check(cudaError_t e, sembed_error *err, const char *expr,
                                             const char *file, int line) {
    return e == cudaSuccess ? SEMBED_OK
                            : sembed__cu_fail(err, expr, file, line, cudaGetErrorString(e));
}
static inline sembed_status sembed__cu_check(cublasStatus_t e, sembed_error *err,
                                             const char *expr, const char *file, int line) {
    return e == CUBLAS_STATUS_SUCCESS
               ? SEMBED_OK
               : sembed__cu_fail(err, expr, file, line, cublasLtGetStatusString(e));
}

/* The one check macro: evaluates a CUDA runtime or cuBLASLt call and returns a sembed_status
 * from the enclosing function on failure (err must be in scope). */
#define SEMBED_CU(expr)                                                                         \
    do {                                                                                        \
        sembed_status st_ = sembed__cu_check((expr), err, #expr, __FILE__, __LINE__);           \
        if (st_ != SEMBED_OK) return st_;                                                       \
    } while (0)

/* Is CUDA device dev compute capability 9.0 (Hopper: wgmma, sm_90a's kernels)? Asked of the
 * driver once per device, then remembered; false when it cannot be asked. */
bool sembed__cu_device_is_90(int dev);

/* What every launcher ends with. */
#define SEMBED_CU_LAUNCHED() SEMBED_CU(cudaGetLastError())

/* ---- programmatic dependent launch (Hopper) ------------------------------------------------
 * sembed's own kernels after a GEMM are launched as programmatic dependents of the kernel before
 * them: the launch is processed and the blocks may be placed while that kernel drains, and each
 * such kernel waits at its first line (sembed__grid_dep_wait) until the previous grid has
 * finished and its writes are visible. The results are the same; only the gap between kernels
 * shrinks (a query is ~50 kernels of a few µs). Each also lets its own successor be placed early
 * (sembed__grid_dep_launch): the small-M GEMM then loads its weights while its input is still
 * being computed. SEMBED_CUDA_PDL=0 launches them plainly. */
bool sembed__cu_pdl_on(void);

static __device__ __forceinline__ void sembed__grid_dep_wait(void) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;\n" ::: "memory");
#endif
}
/* Lets the next kernel, if launched as a programmatic dependent, be placed now (it still waits
 * for this whole grid at its sembed__grid_dep_wait). */
static __device__ __forceinline__ void sembed__grid_dep_launch(void) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
#endif
}
/* What sembed's kernels begin with: the next kernel may be placed, this one waits for the last. */
static __device__ __forceinline__ void sembed__grid_dep_sync(void) {
    sembed__grid_dep_launch();
    sembed__grid_dep_wait();
}

/* f<<<grid, block, smem, stream>>>(args...), as a programmatic dependent when that is on. */
template <typename... KArgs, typename... Args>
static inline cudaError_t sembed__launch_pdl(void (*f)(KArgs...), dim3 grid, dim3 block,
                                             size_t smem, cudaStream_t stream, Args... args) {
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = grid, cfg.blockDim = block, cfg.dynamicSmemBytes = smem, cfg.stream = stream;
    cudaLaunchAttribute at[1];
    at[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    at[0].val.programmaticStreamSerializationAllowed = 1;
    cfg.attrs = at, cfg.numAttrs = sembed__cu_pdl_on() ? 1 : 0;
    return cudaLaunchKernelEx(&cfg, f, ((KArgs)args)...);
}

/* ---- device helpers ------------------------------------------------------------------------ */

static __device__ __forceinline__ float sembed__warp_sum(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
static __device__ __forceinline__ float sembed__warp_max(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

/* ---- the 16-bit element types -------------------------------------------------------------
 * The encoder's weights and activations are fp16 (__half, the default) or bf16 (__nv_bfloat16,
 * SEMBED_PRECISION_BF16 on CUDA); every op is a template on that type T, with fp32 arithmetic. */
typedef __nv_bfloat16 sembed__bf16;
template <class E> struct sembed__pair;
template <> struct sembed__pair<__half> { typedef __half2 t; };
template <> struct sembed__pair<__nv_bfloat16> { typedef __nv_bfloat162 t; };

static __device__ __forceinline__ float sembed__to_f(__half v) { return __half2float(v); }
static __device__ __forceinline__ float sembed__to_f(__nv_bfloat16 v) { return __bfloat162float(v); }
static __device__ __forceinline__ float2 sembed__to_f2(__half2 v) { return __half22float2(v); }
static __device__ __forceinline__ float2 sembed__to_f2(__nv_bfloat162 v) { return __bfloat1622float2(v); }
template <class E> static __device__ __forceinline__ E sembed__from_f(float v);
template <> __device__ __forceinline__ __half sembed__from_f<__half>(float v) { return __float2half_rn(v); }
template <> __device__ __forceinline__ __nv_bfloat16 sembed__from_f<__nv_bfloat16>(float v) {
    return __float2bfloat16_rn(v);
}
/* (lo, hi) rounded to a pair, lo in the low half */
template <class E> static __device__ __forceinline__ typename sembed__pair<E>::t sembed__from_f2(float lo, float hi);
template <> __device__ __forceinline__ __half2 sembed__from_f2<__half>(float lo, float hi) {
    return __floats2half2_rn(lo, hi);
}
template <> __device__ __forceinline__ __nv_bfloat162 sembed__from_f2<__nv_bfloat16>(float lo, float hi) {
    return __floats2bfloat162_rn(lo, hi);
}

/* 8 values in one 16-byte load or store. */
template <class E> struct __align__(16) sembed__v8 {
    typename sembed__pair<E>::t h[4];
};

/* 16-byte global accesses of 8 values. Dereferencing a sembed__v8 pointer compiles to four
 * 32-bit accesses (the struct is copied member by member); through uint4 it is one 128-bit one. */
template <class E> static __device__ __forceinline__ sembed__v8<E> sembed__ld_v8(const E *p) {
    const uint4 u = *(const uint4 *)p;
    sembed__v8<E> v;
    memcpy(&v.h[0], &u.x, 4), memcpy(&v.h[1], &u.y, 4), memcpy(&v.h[2], &u.z, 4),
        memcpy(&v.h[3], &u.w, 4);
    return v;
}
template <class E> static __device__ __forceinline__ void sembed__st_v8(E *p, const sembed__v8<E> &v) {
    uint4 u;
    memcpy(&u.x, &v.h[0], 4), memcpy(&u.y, &v.h[1], 4), memcpy(&u.z, &v.h[2], 4),
        memcpy(&u.w, &v.h[3], 4);
    *(uint4 *)p = u;
}

template <class E> static __device__ __forceinline__ void sembed__v8_to_f(const sembed__v8<E> &v, float f[8]) {
#pragma unroll
    for (int i = 0; i < 4; i++) {
        float2 t = sembed__to_f2(v.h[i]);
        f[2 * i] = t.x;
        f[2 * i + 1] = t.y;
    }
}
template <class E> static __device__ __forceinline__ sembed__v8<E> sembed__f_to_v8(const float f[8]) {
    sembed__v8<E> v;
#pragma unroll
    for (int i = 0; i < 4; i++) v.h[i] = sembed__from_f2<E>(f[2 * i], f[2 * i + 1]);
    return v;
}

/* LayerNorm of one row held by a warp: lane l holds the 8-wide vectors l, l+32, ... (NV at most)
 * of the row's H/8 in v (NV of them at most); statistics in fp32, two passes over the registers (mean, then the
 * centered sum of squares), written as T: out = (v - mean) * rstd * gamma + beta. */
#define SEMBED__LN_NV 8 /* H <= 8 * 8 * 32 = 2048 */
template <int NV, class E>
static __device__ __forceinline__ void sembed__ln_row_store(E *out, /* (H) */
                                                            float (&v)[NV][8],
                                                            const float *gamma, /* (H) */
                                                            const float *beta,  /* (H) */
                                                            int H, float eps, int lane) {
    const int nvec = H / 8;
    float s = 0.f;
#pragma unroll
    for (int k = 0; k < NV; k++)
        if (k * 32 + lane < nvec)
#pragma unroll
            for (int e = 0; e < 8; e++) s += v[k][e];
    const float mean = sembed__warp_sum(s) / (float)H;
    float q = 0.f;
#pragma unroll
    for (int k = 0; k < NV; k++)
        if (k * 32 + lane < nvec)
#pragma unroll
            for (int e = 0; e < 8; e++) q += (v[k][e] - mean) * (v[k][e] - mean);
    const float rstd = rsqrtf(sembed__warp_sum(q) / (float)H + eps);
#pragma unroll
    for (int k = 0; k < NV; k++) {
        const int c = (k * 32 + lane) * 8;
        if (c < H) {
            float o[8];
            const float4 g0 = *(const float4 *)(gamma + c), g1 = *(const float4 *)(gamma + c + 4);
            const float4 b0 = *(const float4 *)(beta + c), b1 = *(const float4 *)(beta + c + 4);
            const float g[8] = {g0.x, g0.y, g0.z, g0.w, g1.x, g1.y, g1.z, g1.w};
            const float b[8] = {b0.x, b0.y, b0.z, b0.w, b1.x, b1.y, b1.z, b1.w};
#pragma unroll
            for (int e = 0; e < 8; e++) o[e] = (v[k][e] - mean) * rstd * g[e] + b[e];
            sembed__st_v8(out + c, sembed__f_to_v8<E>(o));
        }
    }
}

#endif
