/* attention_sm90.cuh — attention.cuh's attention on Hopper's warpgroup MMA (wgmma, sm_90a):
 * the same tiles, inputs and outputs as the mma.sync kernel in attention.cu, which picks it on a
 * 9.0 device where it was built (CUTLASS's CuTe found, see cuda.cmake). */
#ifndef SEMBED_CUDA_ATTENTION_SM90_CUH
#define SEMBED_CUDA_ATTENTION_SM90_CUH

#include "attention.cuh"

/* Was the wgmma kernel compiled in (CuTe and sm_90a)? */
bool sembed__cu_sm90_attention_built(void);

/* As sembed__cu_attention (attention.cuh), head sizes 32 and 64, on a 9.0 device only: a grid
 * for the tiles of one head a block and one for those that share blocks among heads.
 * cudaErrorNotSupported where not built. */
template <class E> /* __half or sembed__bf16 */
cudaError_t sembed__cu_sm90_attention(E *out, const E *qkv, const int32_t *seq_off,
                                      const int32_t *tiles, const float *rel_bias,
                                      sembed__att_tiles nt, int32_t H, int32_t A, int32_t R,
                                      cudaStream_t stream);

#endif
