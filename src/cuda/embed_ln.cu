/* embed_ln.cu — embedding gather + LayerNorm, one warp per token (kernel v1). Not the
 * position-id computation. Dimension letters: T tokens, H hidden, V vocabulary, P positions. */
#include "embed_ln.cuh"

template <class E>
static __global__ void __launch_bounds__(128)
    embed_ln_kernel(E *out, const int32_t *ids, const int32_t *pos_ids, const E *word,
                    const E *pos, const E *type, const float *gamma,
                    const float *beta, int64_t T, int H, float eps) {
    sembed__grid_dep_launch(); /* launched plainly, after the copy of the ids */
    const int lane = threadIdx.x & 31;
    const int64_t t = (int64_t)blockIdx.x * 4 + (threadIdx.x >> 5);
    if (t >= T) return;
    const E *w = word + (int64_t)ids[t] * H, *p = pos + (int64_t)pos_ids[t] * H;
    float v[SEMBED__LN_NV][8];
#pragma unroll
    for (int k = 0; k < SEMBED__LN_NV; k++) {
        const int c = (k * 32 + lane) * 8;
        if (c < H) {
            float a[8], b[8], y[8];
            sembed__v8_to_f(sembed__ld_v8(w + c), a);
            sembed__v8_to_f(sembed__ld_v8(p + c), b);
            if (type) sembed__v8_to_f(sembed__ld_v8(type + c), y);
#pragma unroll
            for (int e = 0; e < 8; e++) v[k][e] = (type ? a[e] + y[e] : a[e]) + b[e];
        }
    }
    sembed__ln_row_store(out + t * H, v, gamma, beta, H, eps, lane);
}

template <class E>
sembed_status sembed__cu_embed_ln(E *out, const int32_t *ids, const int32_t *pos_ids,
                                  const E *word, const E *pos, const E *type,
                                  const float *gamma, const float *beta, int64_t T, int32_t H,
                                  float eps, cudaStream_t stream, sembed_error *err) {
    SEMBED_ASSERT(H % 8 == 0 && H <= SEMBED__LN_NV * 8 * 32);
    if (T <= 0) return SEMBED_OK;
    embed_ln_kernel<<<(unsigned)((T + 3) / 4), 128, 0, stream>>>(out, ids, pos_ids, word, pos,
                                                                  type, gamma, beta, T, H, eps);
    SEMBED_CU_LAUNCHED();
    return SEMBED_OK;
}

template sembed_status sembed__cu_embed_ln<__half>(__half *, const int32_t *, const int32_t *,
                                                   const __half *, const __half *, const __half *,
                                                   const float *, const float *, int64_t, int32_t,
                                                   float, cudaStream_t, sembed_error *);
template sembed_status sembed__cu_embed_ln<sembed__bf16>(
    sembed__bf16 *, const int32_t *, const int32_t *, const sembed__bf16 *, const sembed__bf16 *,
    const sembed__bf16 *, const float *, const float *, int64_t, int32_t, float, cudaStream_t,
    sembed_error *);
