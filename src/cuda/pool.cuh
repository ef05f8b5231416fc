/* pool.cuh — pooling and L2 normalization on the GPU (backend.h's pool and normalize): fp16
 * or bf16 hidden states in, fp32 features out, sums in fp32 in a fixed order per sequence. */
#ifndef SEMBED_CUDA_POOL_CUH
#define SEMBED_CUDA_POOL_CUH

#include "cuda_common.cuh"

/* The pooling kinds, by value (a kernel argument). */
typedef struct sembed__cu_pool_kinds {
    int32_t n;
    sembed__pool_kind k[SEMBED__MAX_POOL_KINDS];
} sembed__cu_pool_kinds;

/* Pools each sequence's rows into n*H features (the kinds concatenated in order), as
 * backend.h's pool; skip may be NULL. */
template <class E> /* __half or sembed__bf16 */
sembed_status sembed__cu_pool(float *out,             /* (S, kinds.n * H) */
                              const E *x,             /* (T, H) */
                              const int32_t *seq_off, /* (S+1) */
                              const int32_t *skip,    /* (S) or NULL */
                              sembed__cu_pool_kinds kinds, int32_t S, int32_t H,
                              cudaStream_t stream, sembed_error *err);

/* sembed__cu_pool, then each row divided by max(||row||_2, 1e-12), in one kernel; the result
 * also into out2 when that is not NULL (host memory mapped for the device: no copy after). */
template <class E>
sembed_status sembed__cu_pool_normalize(float *out,             /* (S, kinds.n * H) */
                                        float *out2,            /* (S, kinds.n * H) or NULL */
                                        const E *x,             /* (T, H) */
                                        const int32_t *seq_off, /* (S+1) */
                                        const int32_t *skip,    /* (S) or NULL */
                                        sembed__cu_pool_kinds kinds, int32_t S, int32_t H,
                                        cudaStream_t stream, sembed_error *err);

/* x[s] /= max(||x[s]||_2, 1e-12), in place. */
sembed_status sembed__cu_normalize(float *x, /* (S, F) */
                                   int32_t S, int32_t F, cudaStream_t stream, sembed_error *err);

#endif
