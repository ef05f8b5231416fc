/* act.cuh — elementwise activations on the GPU (backend.h's act): exact erf GELU and the rest,
 * computed in fp32 over fp16 or bf16 (encoder FFN) or fp32 (Dense modules) data. */
#ifndef SEMBED_CUDA_ACT_CUH
#define SEMBED_CUDA_ACT_CUH

#include "cuda_common.cuh"

/* Exact (erf) GELU for fp16 (and bf16) data, with erfc from Abramowitz & Stegun 7.1.26 (absolute error
 * under 1.5e-7, far below fp16's rounding) instead of erff: erff's branches and polynomial made
 * the pass ALU-bound (2.4 TB/s on an H200 for the FFN's (T, I)); this form is an approximate
 * reciprocal, an exponential and five FMAs (v3: both without denormal fix-ups). For x < 0 it is 0.5 x erfc(|x|/sqrt 2), so the tail
 * keeps its relative accuracy. Here, in one place, because two kernels compute it and must agree
 * bit for bit: act.cu's pass and the small-M GEMM's epilogue (gemm.cu). */
static __device__ __forceinline__ float sembed__gelu_f16(float x) {
    /* MUFU.RCP and MUFU.EX2 without the denormal fix-ups that __fdividef and __expf carry
     * outside -ftz (two FMULs, a compare and a select each): the reciprocal's argument is in
     * [1, 5], and an exponential small enough to be denormal gives a GELU far below fp16's
     * smallest value either way (v2 spent 12 FMULs per element, mostly on those fix-ups) */
    const float z = fabsf(x) * 0.70710678118654752f;
    float t, e;
    asm("rcp.approx.ftz.f32 %0, %1;" : "=f"(t) : "f"(fmaf(0.3275911f, z, 1.0f)));
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(e) : "f"(__fmul_rn(__fmul_rn(z, z), -1.4426950408889634f)));
    /* A&S's coefficients halved (exactly), so that the polynomial gives q = erfc/2 */
    float p = fmaf(0.5307027145f, t, -0.7265760135f);
    p = fmaf(p, t, 0.7107068705f);
    p = fmaf(p, t, -0.142248368f);
    p = fmaf(p, t, 0.127414796f);
    const float q = __fmul_rn(__fmul_rn(p, t), e);
    /* x (1 - q) for x >= 0, x q below: one product after a select. The rounding of each step
     * spelled out: no contraction that could differ between kernels. Until v8 this was
     * (x/2)(2 - erfc) and (x/2) erfc, one more product per element; every halving is exact, so
     * the fp16 and bf16 results are the same bits (checked for every finite fp16 and bf16
     * input by dev/kernels/gelu_halves_check.c). */
    return __fmul_rn(x, x >= 0.f ? __fsub_rn(1.0f, q) : q);
}

/* x = act(x) in place, fp16 or bf16 storage (T: __half or sembed__bf16), fp32 arithmetic. */
template <class E>
sembed_status sembed__cu_act16(E *x, /* (n) */
                               int64_t n, sembed__act_kind kind, cudaStream_t stream,
                               sembed_error *err);
/* x = act(x) in place, fp32. */
sembed_status sembed__cu_act_f32(float *x, /* (n) */
                                 int64_t n, sembed__act_kind kind, cudaStream_t stream,
                                 sembed_error *err);

#endif
