/* sembed_cuda.h — the CUDA encoder as the C core sees it: a model description of host fp32
 * weights (filled by src/encoder.c), and a GPU context that uploads them once as fp16 and runs
 * the whole forward pass (embeddings to normalized vectors) over packed token ids. Plain C; no
 * CUDA header is included here (STYLE rule 12). Not the ops (src/cuda/<op>.cu). */
#ifndef SEMBED_CUDA_H
#define SEMBED_CUDA_H

#include "backend.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SEMBED__CUDA_MAX_DENSE 4

typedef struct sembed__cuda_layer {
    const float *qkv_w, *qkv_b; /* (3H, H), (3H): query | key | value rows */
    const float *o_w, *o_b;     /* (H, H), (H) */
    const float *ln1_g, *ln1_b; /* (H) */
    const float *i_w, *i_b;     /* (I, H), (I) */
    const float *f_w, *f_b;     /* (H, I), (H) */
    const float *ln2_g, *ln2_b; /* (H) */
} sembed__cuda_layer;

typedef struct sembed__cuda_dense {
    const float *w, *b; /* (out, in), (out) or NULL */
    int32_t in, out;
    sembed__act_kind act;
} sembed__cuda_dense;

/* Host fp32 weights and shapes; only read during sembed__cuda_new. */
typedef struct sembed__cuda_model {
    int32_t H, A, I, n_layers;
    int32_t V, P, R;         /* vocabulary, position rows, max tokens per text */
    float eps;
    sembed__act_kind act;    /* the encoder's FFN activation */
    int32_t position_offset; /* first position id */
    const float *word, *pos, *type; /* (V, H), (P, H), (>=1, H) or NULL: row 0 is used */
    const float *emb_g, *emb_b;     /* (H) */
    const sembed__cuda_layer *layers; /* (n_layers) */
    const float *rel_bias;          /* (A, 2R-1) MPNet, else NULL */
    int32_t n_pool;
    sembed__pool_kind pool[SEMBED__MAX_POOL_KINDS];
    int32_t n_dense;
    sembed__cuda_dense dense[SEMBED__CUDA_MAX_DENSE];
    bool normalize;
    int32_t dim; /* E: floats per output vector */
    bool bf16;   /* weights and activations on the device as bf16 instead of fp16 */
} sembed__cuda_model;

typedef struct sembed__cuda sembed__cuda;

/* CUDA devices visible (0 when none, or no driver). */
int32_t sembed__cuda_device_count(void);
/* Brings up the CUDA driver and device `device` (its primary context), if it exists; errors are
 * left for the context that uses it to meet (sembed_device_warm_start's thread). */
void sembed__cuda_warm(int32_t device);

/* Uploads the model to device `device` as fp16 (m->bf16: bf16) and plans every buffer and GEMM for batches of
 * up to T_max tokens and S_max texts. */
sembed_status sembed__cuda_new(const sembed__cuda_model *m, int32_t device, int32_t T_max,
                               int32_t S_max, sembed__cuda **out, sembed_error *err);
void sembed__cuda_free(sembed__cuda *g); /* NULL is a no-op */

/* Encodes the packed batch of S texts, T tokens (T <= T_max, S <= S_max, sequences of 1 .. R
 * tokens) into out: S * dim floats. Synchronous. */
sembed_status sembed__cuda_encode(sembed__cuda *g, const int32_t *ids, /* (T) */
                                  const int32_t *seq_off,              /* (S+1) */
                                  int32_t S, int32_t T, float *out,    /* (S, dim) */
                                  sembed_error *err);
/* encode in two halves, so that the CPU can work while the GPU runs: submit copies the batch
 * into a pinned buffer of g's and launches it (ids and seq_off may be reused once it returns);
 * finish waits for the oldest batch in flight and writes its S vectors to out. Up to
 * sembed__cuda_slots(g) batches may be in flight (2; 1 while profiling): submit only with fewer
 * than that in flight. A failed submit adds nothing in flight; the batches before it stay. */
sembed_status sembed__cuda_submit(sembed__cuda *g, const int32_t *ids, const int32_t *seq_off,
                                  int32_t S, int32_t T, sembed_error *err);
sembed_status sembed__cuda_finish(sembed__cuda *g, float *out, /* (S, dim) */
                                  sembed_error *err);
int32_t sembed__cuda_slots(const sembed__cuda *g);

/* The GPU context of a sembed_ctx, or NULL when it runs on the CPU (src/encoder.c). */
sembed__cuda *sembed__ctx_cuda(sembed_ctx *c);

/* Per-op GPU time: with profiling on, an event is recorded after each op of every batch
 * (graphs off meanwhile) and the times are summed per op kind; switching it on or off clears
 * the sums. profile_read gives the sums (ms) and names, and returns the batches counted. */
#define SEMBED__CUDA_N_OPS 12
sembed_status sembed__cuda_profile(sembed__cuda *g, bool on, sembed_error *err);
int64_t sembed__cuda_profile_read(const sembed__cuda *g, double ms[SEMBED__CUDA_N_OPS],
                                  const char *names[SEMBED__CUDA_N_OPS]);

/* CUDA graphs for batches of up to 4096 tokens (on by default): a batch shape (texts, tokens,
 * attention tiles) seen a second time is captured once and replayed after. Off: every batch
 * is launched op by op. Results are the same bits either way. */
void sembed__cuda_set_graphs(sembed__cuda *g, bool on);

/* The card's name (static storage of g). */
const char *sembed__cuda_device_name(const sembed__cuda *g);

#ifdef __cplusplus
}
#endif

#endif
