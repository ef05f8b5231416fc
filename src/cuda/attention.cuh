/* attention.cuh — multi-head self-attention over packed sequences on the GPU (backend.h's
 * attention): fp16 q|k|v in, fp16 out, scores and softmax in fp32 on chip, no score matrix in
 * global memory. Head sizes 32 and 64. Not the QKV projection (gemm.cuh). */
#ifndef SEMBED_CUDA_ATTENTION_CUH
#define SEMBED_CUDA_ATTENTION_CUH

#include "cuda_common.cuh"

/* Query rows one block handles. The host lists the blocks' work as tiles: tile i is rows
 * tile_q0[i] .. +SEMBED__ATT_BM-1 of sequence tile_seq[i]. */
#define SEMBED__ATT_BM 64

/* Heads that share one block of the wgmma kernel for a sequence of L tokens among A heads: 4
 * while L <= 16, 2 while L <= 32, where A allows; else 1 (attention_sm90.cu). On the length
 * alone, so that a text's bits do not depend on its batch. */
static inline __host__ __device__ int sembed__att_heads_per_block(int32_t L, int32_t A) {
    return L <= SEMBED__ATT_BM / 4 && A % 4 == 0 ? 4 : L <= SEMBED__ATT_BM / 2 && A % 2 == 0 ? 2 : 1;
}

/* A batch's tiles: n in all, the last n_short of them of sequences whose heads share blocks
 * (sembed__att_heads_per_block > 1; the mma.sync kernel runs all n alike). */
typedef struct sembed__att_tiles {
    int32_t n, n_short;
} sembed__att_tiles;

/* Tiles needed for S sequences (an upper bound for any packing of T tokens into S). */
static inline int64_t sembed__att_max_tiles(int64_t T, int64_t S) {
    return T / SEMBED__ATT_BM + S;
}

/* Writes the tiles of S sequences into tiles (tile_seq then tile_q0, interleaved as pairs),
 * those of sequences whose A heads share blocks last; returns the counts. */
sembed__att_tiles sembed__att_make_tiles(int32_t *tiles, /* (2 * max tiles) */
                                         const int32_t *seq_off, int32_t S, int32_t A);

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
                                   const int32_t *tiles,    /* (2 * nt.n) */
                                   const float *rel_bias,   /* (A, 2R-1) or NULL */
                                   sembed__att_tiles nt,    /* sembed__att_make_tiles(.., A) */
                                   int32_t H, int32_t A, int32_t R,
                                   cudaStream_t stream, sembed_error *err);

#endif
