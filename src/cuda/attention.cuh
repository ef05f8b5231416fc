/* attention.cuh — multi-head self-attention over packed sequences on the GPU (backend.h's
 * attention): fp16 q|k|v in, fp16 out, scores and softmax in fp32 on chip, no score matrix in
 * global memory. Head sizes 32 and 64. Not the QKV projection (gemm.cuh). */
#ifndef SEMBED_CUDA_ATTENTION_CUH
#define SEMBED_CUDA_ATTENTION_CUH

#include "cuda_common.cuh"

/* Query rows one block handles. The host lists the blocks' work as tiles: tile i is rows
 * tile_q0[i] .. +SEMBED__ATT_BM-1 of sequence tile_seq[i]. */
#define SEMBED__ATT_BM 64

/* Tiles needed for S sequences (an upper bound for any packing of T tokens into S). */
static inline int64_t sembed__att_max_tiles(int64_t T, int64_t S) {
    return T / SEMBED__ATT_BM + S;
}

/* Writes the tiles of S sequences into tiles (tile_seq then tile_q0, interleaved as pairs);
 * returns the count. */
int32_t sembed__att_make_tiles(int32_t *tiles, /* (2 * max tiles) */
                               const int32_t *seq_off, int32_t S);

/* Is head size D supported? */
bool sembed__att_supports(int32_t H, int32_t A);

/* Which kernel runs: -1 (the default) the wgmma one (attention_sm90.cuh) on a 9.0 device where it
 * was built, unless SEMBED_CUDA_ATT_SM90=0; 0 the mma.sync one; 1 the wgmma one where it can run.
 * For tests and measurements; set it before work, not during. */
void sembed__att_force_kernel(int which);
/* Would the next call run the wgmma kernel (on the current device)? */
bool sembed__att_uses_sm90(void);

/* out[i, h*D:(h+1)*D] = softmax_j(q_i·k_j/sqrt(D) + rel_bias[h][j-i+R-1]) · v_j per sequence
 * and head, as backend.h. rel_bias may be NULL; with it every sequence has <= R tokens. */
template <class E> /* __half or sembed__bf16 */
sembed_status sembed__cu_attention(E *out,                  /* (T, H) */
                                   const E *qkv,            /* (T, 3H) */
                                   const int32_t *seq_off,  /* (S+1) */
                                   const int32_t *tiles,    /* (2 * n_tiles) */
                                   const float *rel_bias,   /* (A, 2R-1) or NULL */
                                   int32_t n_tiles, int32_t H, int32_t A, int32_t R,
                                   cudaStream_t stream, sembed_error *err);

#endif
