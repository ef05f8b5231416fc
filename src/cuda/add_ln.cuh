/* add_ln.cuh — residual add + LayerNorm on the GPU (backend.h's add_ln; fp16 or bf16 rows,
 * fp32 statistics). The GEMM before it already added its bias (cuBLASLt epilogue). */
#ifndef SEMBED_CUDA_ADD_LN_CUH
#define SEMBED_CUDA_ADD_LN_CUH

#include "cuda_common.cuh"

/* out = LayerNorm(a + b) * gamma + beta; out may alias a or b. H % 8 == 0, H <= 2048. */
template <class E> /* __half or sembed__bf16 */
sembed_status sembed__cu_add_ln(E *out,             /* (T, H) */
                                const E *a,         /* (T, H) */
                                const E *b,         /* (T, H) */
                                const float *gamma, /* (H) */
                                const float *beta,  /* (H) */
                                int64_t T, int32_t H, float eps, cudaStream_t stream,
                                sembed_error *err);

#endif
