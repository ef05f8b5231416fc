/* gemm.cuh — y = act(x · wᵀ + b) through cuBLASLt with one algorithm fixed per shape at plan
 * time (backend.h's gemm_bias, and act for the FFN, on the GPU), and for a few rows a kernel of
 * its own with the same bits. fp16 (or bf16) data with fp32 accumulation for the encoder, plain
 * fp32 for Dense modules. Never cuBLASLt's GELU epilogue (the tanh form). */
#ifndef SEMBED_CUDA_GEMM_CUH
#define SEMBED_CUDA_GEMM_CUH

#include "cuda_common.cuh"

/* The data type of a GEMM's x, w, b and y: the encoder's fp16 or bf16 (fp32 accumulation), or
 * fp32 throughout (Dense modules). */
typedef enum sembed__cu_dtype { SEMBED__CU_F16, SEMBED__CU_BF16, SEMBED__CU_F32 } sembed__cu_dtype;

/* A planned GEMM shape: N outputs, K inputs, any M up to M_max rows. The algorithm is chosen
 * once per process and (device, N, K, type, bias) — the fastest by measurement at M = 32768 (8192
 * on a device with little free memory), 512
 * and 16 among cuBLASLt's candidates without split-K or any reduction across CTAs, checked valid
 * for M = 1 .. max(M_max, 65536) — so that a row's result never depends on M nor on the context
 * (the batch-invariance contract). The timed plan is kept on disk for later processes (gemm.cu,
 * "plans on disk"). SEMBED_CUDA_GEMM=heuristic: the first candidate, untimed.
 * SEMBED_CUDA_GEMM_SMALL=0: no small-M algorithm; SEMBED_CUDA_GEMM_OWN=0: not the own kernel;
 * SEMBED_CUDA_GEMM_SM90=0: not CUTLASS's Hopper kernels; SEMBED_CUDA_GEMM_MSEL=M: chosen at M
 * rows instead (experiments). */
typedef struct sembed__cu_gemm_shape {
    cublasLtMatmulAlgo_t algo;
    /* For M <= M_small (0: never): an algorithm faster at few rows whose rows were checked, on
     * random data at every M it takes, to be the same bits as algo's (same K order, no split;
     * the tiles differ). The check runs at plan time; a candidate that differs is not used. */
    cublasLtMatmulAlgo_t algo_small;
    int64_t M_small;
    /* For M <= M_own (0: never; <= 64): gemm.cu's own small-M kernel, under the same check of
     * bits against algo. It comes before algo_small. */
    int64_t M_own;
    /* For M >= M_sm90 (sm90 >= 0): CUTLASS configuration sm90 (gemm_sm90.cuh), its epilogue
     * applying act (no act pass), where it was faster than algo and its act pass at M_SEL rows
     * and every planned size from M_sm90 up, under the same check of bits against algo. */
    int sm90;
    int64_t M_sm90;
    int32_t N, K;
    int64_t M_max;
    bool f32;        /* fp32 x, w, b, y; else fp16 (or bf16) with fp32 accumulation */
    bool bf16;       /* bf16 x, w, b, y with fp32 accumulation */
    bool bias;       /* b given on every call (cuBLASLt's BIAS epilogue) */
    sembed__act_kind act; /* applied to the fp16 output: in the small-M kernel's epilogue, else
                             by act.cu's pass after cuBLASLt (the same function, the same bits) */
    size_t ws_bytes; /* workspace the algorithm may use */
    int32_t algo_id, tile_id, stages_id; /* for reports */
    int32_t small_algo_id, small_tile_id;
} sembed__cu_gemm_shape;

sembed_status sembed__cu_gemm_plan(sembed__cu_gemm_shape *g, cublasLtHandle_t lt, int32_t N,
                                   int32_t K, int64_t M_max, sembed__cu_dtype dt, bool bias,
                                   sembed__act_kind act, /* IDENTITY for f32 */
                                   size_t ws_bytes, sembed_error *err);

/* Whether plans are read from and kept on disk: no SEMBED_CUDA_GEMM* switch is set. */
bool sembed__cu_gemm_plan_uses_disk(void);

/* Tests: forgets the plans this process made or read, so that the next plan reads the file on
 * disk (or times again). Not for a process with live contexts. */
void sembed__cu_gemm_plan_forget(void);

/* y = act(x · wᵀ + b). y must not overlap x. ws: g->ws_bytes of device memory. */
sembed_status sembed__cu_gemm(const sembed__cu_gemm_shape *g, cublasLtHandle_t lt,
                              void *y,       /* (M, N) */
                              const void *x, /* (M, K) */
                              const void *w, /* (N, K) */
                              const void *b, /* (N), or NULL when !g->bias */
                              int64_t M, void *ws, cudaStream_t stream, sembed_error *err);

/* The small-M kernel by itself, whatever the plan chose (for tests): M <= 64, fp16 or bf16, N
 * a multiple of 8, K of 128, act IDENTITY or GELU. */
sembed_status sembed__cu_gemm_small(void *y, const void *x, const void *w, const void *b,
                                    int64_t M, int32_t N, int32_t K, sembed__act_kind act,
                                    sembed__cu_dtype dt, cudaStream_t stream, sembed_error *err);

#endif
