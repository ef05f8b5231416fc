/* gemm_sm90.cuh — CUTLASS's Hopper GEMMs with sembed's bias (+ GELU) epilogue, fp16 in, fp32
 * accumulate, fp16 out: y (M, N) = act(fp16(x (M, K) · w (N, K)ᵀ + b)). Candidates for
 * gemm.cu's plan, which uses one only where its rows are the bits of the cuBLASLt path and it is
 * faster. Configurations are compiled in when CUTLASS was found (cuda.cmake). */
#ifndef SEMBED_CUDA_GEMM_SM90_CUH
#define SEMBED_CUDA_GEMM_SM90_CUH

#include "cuda_common.cuh"

/* How many configurations (tile, cluster, schedule) exist; 0 without CUTLASS. */
int sembed__cu_sm90_configs(void);
/* A configuration's name for reports ("coop 128x128x64", ...). */
const char *sembed__cu_sm90_name(int cfg);

/* Runs configuration cfg on st (gelu: the FFN's exact GELU after the rounding; every
 * configuration is built with it only, so !gelu is cudaErrorNotSupported). b is required.
 * y == NULL: only checks that the shape is supported and stores the workspace it needs in
 * *ws_needed. cudaErrorNotSupported: not for this shape (or this build, or this device);
 * cudaErrorInvalidValue: the workspace is too small (*ws_needed says how much it needs). */
cudaError_t sembed__cu_sm90_gemm(int cfg, bool gelu, __half *y, const __half *x, const __half *w,
                                 const __half *b, int64_t M, int32_t N, int32_t K, void *ws,
                                 size_t ws_bytes, cudaStream_t st, size_t *ws_needed);

#endif
