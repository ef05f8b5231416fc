/* act.cuh — elementwise activations on the GPU (backend.h's act): exact erf GELU and the rest,
 * computed in fp32 over fp16 (encoder FFN) or fp32 (Dense modules) data. */
#ifndef SEMBED_CUDA_ACT_CUH
#define SEMBED_CUDA_ACT_CUH

#include "cuda_common.cuh"

/* Exact (erf) GELU for fp16 data, with erfc from Abramowitz & Stegun 7.1.26 (absolute error
 * under 1.5e-7, far below fp16's rounding) instead of erff: erff's branches and polynomial made
 * the pass ALU-bound (2.4 TB/s on an H200 for the FFN's (T, I)); this form is an approximate
 * reciprocal, an exponential and five FMAs. For x < 0 it is 0.5 x erfc(|x|/sqrt 2), so the tail
 * keeps its relative accuracy. Here, in one place, because two kernels compute it and must agree
 * bit for bit: act.cu's pass and the small-M GEMM's epilogue (gemm.cu). */
static __device__ __forceinline__ float sembed__gelu_f16(float x) {
    const float z = fabsf(x) * 0.70710678118654752f;
    const float t = __fdividef(1.0f, fmaf(0.3275911f, z, 1.0f)); /* MUFU.RCP: __frcp_rn's IEEE
                                                                     rounding costs a slow path */
    float p = fmaf(1.061405429f, t, -1.453152027f);
    p = fmaf(p, t, 1.421413741f);
    p = fmaf(p, t, -0.284496736f);
    p = fmaf(p, t, 0.254829592f);
    const float erfc_z = __fmul_rn(__fmul_rn(p, t), __expf(-z * z));
    /* the rounding of each step spelled out: no contraction that could differ between kernels */
    return x >= 0.f ? __fmul_rn(x, __fsub_rn(1.0f, __fmul_rn(0.5f, erfc_z)))
                    : __fmul_rn(__fmul_rn(0.5f, x), erfc_z);
}

/* x = act(x) in place, fp16 storage, fp32 arithmetic. */
sembed_status sembed__cu_act_f16(__half *x, /* (n) */
                                 int64_t n, sembed__act_kind kind, cudaStream_t stream,
                                 sembed_error *err);
/* x = act(x) in place, fp32. */
sembed_status sembed__cu_act_f32(float *x, /* (n) */
                                 int64_t n, sembed__act_kind kind, cudaStream_t stream,
                                 sembed_error *err);

#endif
