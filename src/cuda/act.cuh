/* act.cuh — elementwise activations on the GPU (backend.h's act): exact erf GELU and the rest,
 * computed in fp32 over fp16 (encoder FFN) or fp32 (Dense modules) data. */
#ifndef SEMBED_CUDA_ACT_CUH
#define SEMBED_CUDA_ACT_CUH

#include "cuda_common.cuh"

/* x = act(x) in place, fp16 storage, fp32 arithmetic. */
sembed_status sembed__cu_act_f16(__half *x, /* (n) */
                                 int64_t n, sembed__act_kind kind, cudaStream_t stream,
                                 sembed_error *err);
/* x = act(x) in place, fp32. */
sembed_status sembed__cu_act_f32(float *x, /* (n) */
                                 int64_t n, sembed__act_kind kind, cudaStream_t stream,
                                 sembed_error *err);

#endif
