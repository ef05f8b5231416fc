/* embed_ln.cuh — the embedding gather + LayerNorm op on the GPU (backend.h's embed_ln, fp16 or
 * bf16 tables and output, fp32 statistics). Not the position-id computation (the host packs them). */
#ifndef SEMBED_CUDA_EMBED_LN_CUH
#define SEMBED_CUDA_EMBED_LN_CUH

#include "cuda_common.cuh"

/* out = LayerNorm(word[ids] + type[0] + pos[pos_ids]) * gamma + beta, added in that order in
 * fp32. type may be NULL. H % 8 == 0, H <= 2048. */
template <class E> /* __half or sembed__bf16 */
sembed_status sembed__cu_embed_ln(E *out,                  /* (T, H) */
                                  const int32_t *ids,      /* (T) in [0, V) */
                                  const int32_t *pos_ids,  /* (T) in [0, P) */
                                  const E *word,           /* (V, H) */
                                  const E *pos,            /* (P, H) */
                                  const E *type,           /* (H): token type 0, or NULL */
                                  const float *gamma,      /* (H) */
                                  const float *beta,       /* (H) */
                                  int64_t T, int32_t H, float eps, cudaStream_t stream,
                                  sembed_error *err);

#endif
