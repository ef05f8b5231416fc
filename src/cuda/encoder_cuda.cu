/* encoder_cuda.cu — the CUDA forward pass: weights uploaded once as fp16 or, where the context
 * asks for SEMBED_PRECISION_BF16, bf16, with activations of the same type (LayerNorm parameters,
 * MPNet's relative bias and Dense modules in fp32), every buffer and GEMM planned at creation,
 * and per batch one copy in (ids, positions, offsets, attention tiles), the op launches on one
 * stream, one copy out. The same sequence of ops as src/encoder.c's forward(). Not the ops.
 *
 * Dimension letters: T tokens of a packed batch, S texts, H hidden, I intermediate, A heads,
 * V vocabulary, P position rows, R max tokens per text, F pooled features, E output floats. */
#include "act.cuh"
#include "add_ln.cuh"
#include "attention.cuh"
#include "embed_ln.cuh"
#include "gemm.cuh"
#include "pool.cuh"

extern "C" {
#include "sembed_cuda.h"
}

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define WS_BYTES ((size_t)32 << 20) /* cuBLASLt workspace */
/* Batches in flight at once: each has its own pinned ids and vectors and an event; the device
 * buffers are shared, as the stream runs the batches in order. */
#define N_BUF 2

/* A captured forward pass for one batch shape: (S, T, attention tiles) fix every launch's
 * arguments and the copies' sizes; the ids themselves go through the same pinned buffer. */
#define N_GRAPHS 16
#define GRAPH_T_MAX 4096 /* bigger batches gain nothing from a graph: kernels dominate */
typedef struct graph_slot {
    int32_t S, T;
    sembed__att_tiles nt; /* the attention's tiles and how many share blocks: the grids */
    int32_t seen;     /* times this shape came (a graph is made on the second) */
    uint64_t used;    /* clock of last use, for eviction */
    bool failed;      /* capture failed: run this shape eagerly */
    cudaGraphExec_t exec;
} graph_slot;

static const char *const op_names[SEMBED__CUDA_N_OPS] = {
    "copy_in", "embed_ln", "qkv_gemm", "attention", "o_gemm", "add_ln1",
    "ffn_in_gemm", "act", "ffn_out_gemm", "add_ln2", "pool_dense_norm", "copy_out"};
enum { OP_COPY_IN, OP_EMBED, OP_QKV, OP_ATT, OP_O, OP_LN1, OP_FI, OP_ACT, OP_FO, OP_LN2, OP_POOL,
       OP_COPY_OUT };

typedef struct layer_d {
    void *qkv_w, *qkv_b, *o_w, *o_b, *i_w, *i_b, *f_w, *f_b; /* as sembed__cuda_layer, 16-bit */
    float *ln1_g, *ln1_b, *ln2_g, *ln2_b;
} layer_d;

struct sembed__cuda {
    int32_t device;
    char name[256];
    cudaStream_t stream;
    cublasLtHandle_t lt;
    /* shapes */
    int32_t H, A, I, n_layers, R, position_offset, F, E, max_dim;
    float eps;
    sembed__act_kind act;
    sembed__cu_pool_kinds pool;
    int32_t n_dense;
    sembed__act_kind dense_act[SEMBED__CUDA_MAX_DENSE];
    int32_t dense_out[SEMBED__CUDA_MAX_DENSE];
    bool normalize;
    int32_t T_max, S_max;
    int64_t n_ints_max;
    bool bf16; /* 16-bit data are bf16, else fp16 */
    /* weights, in one device allocation */
    char *wmem;
    void *word, *pos, *type; /* 16-bit */
    float *emb_g, *emb_b, *rel_bias;
    layer_d *layers;
    float *dense_w[SEMBED__CUDA_MAX_DENSE], *dense_b[SEMBED__CUDA_MAX_DENSE];
    /* GEMM plans */
    sembed__cu_gemm_shape g_qkv, g_o, g_i, g_f, g_dense[SEMBED__CUDA_MAX_DENSE];
    /* activations */
    /* 16-bit: (T_max, H), (T_max, max(3H, I)), (T_max, H), (T_max, H) */
    void *x, *big, *att, *tmp;
    float *pa, *pb;              /* (S_max, max_dim) */
    void *ws;
    int32_t *d_ints;          /* ids | pos_ids | seq_off | tiles */
    int32_t *h_ints[N_BUF];   /* the same, pinned host, one per batch in flight */
    float *h_out[N_BUF];      /* (S_max, E) pinned, mapped, one per batch in flight */
    float *h_out_d[N_BUF];    /* h_out as the device sees it */
    cudaEvent_t done[N_BUF];  /* recorded after each batch */
    int32_t cur;              /* the buffer of the batch being enqueued */
    /* CUDA graphs of whole batches (small ones; see encode) */
    graph_slot graphs[N_GRAPHS];
    uint64_t graph_clock;
    bool graphs_off;
    bool trace_first; /* SEMBED_CUDA_VERBOSE: the first encode's time to print */
    double t_first;
    /* batches submitted and not yet finished, oldest first: buffer (head + i) % N_BUF holds
     * the i-th of n_flight, of fl_S[] texts */
    int32_t fl_head, n_flight, fl_S[N_BUF];
    /* per-op profile (sembed__cuda_profile): events after each op, summed per op kind */
    bool prof_on;
    int32_t n_ev, max_ev;
    cudaEvent_t *ev;
    int8_t *ev_op;
    double prof_ms[SEMBED__CUDA_N_OPS];
    int64_t prof_batches;
};

/* ---- upload ------------------------------------------------------------------------------ */

typedef struct uploader {
    char *base; /* NULL: a sizing pass */
    size_t used;
    uint16_t *stage; /* STAGE 16-bit values of host memory for conversion */
    bool bf16;       /* convert to bf16, else fp16 */
    sembed_status st;
    sembed_error *err;
} uploader;

#define STAGE ((int64_t)1 << 20)

/* n floats of src into the weights' allocation (sized on the first pass), converted to the
 * context's 16-bit type when f16 ("16-bit": fp16 or bf16, u->bf16), else copied as fp32 */
static void *put(uploader *u, const float *src, int64_t n, bool f16) {
    const size_t off = (u->used + 255) & ~(size_t)255;
    u->used = off + (size_t)n * (f16 ? 2 : 4);
    if (!u->base || u->st != SEMBED_OK || !src) return u->base ? u->base + off : NULL;
    sembed_error *err = u->err;
    if (!f16) {
        u->st = sembed__cu_check(cudaMemcpy(u->base + off, src, (size_t)n * 4,
                                            cudaMemcpyHostToDevice),
                                 err, "cudaMemcpy(weights)", __FILE__, __LINE__);
        return u->base + off;
    }
    for (int64_t i = 0; i < n && u->st == SEMBED_OK; i += STAGE) {
        const int64_t k = n - i < STAGE ? n - i : STAGE;
        if (u->bf16)
            for (int64_t j = 0; j < k; j++) {
                const __nv_bfloat16 v = __float2bfloat16_rn(src[i + j]);
                memcpy(&u->stage[j], &v, 2);
            }
        else
            for (int64_t j = 0; j < k; j++) {
                const __half v = __float2half_rn(src[i + j]);
                memcpy(&u->stage[j], &v, 2);
            }
        u->st = sembed__cu_check(cudaMemcpy(u->base + off + (size_t)i * 2, u->stage,
                                            (size_t)k * 2, cudaMemcpyHostToDevice),
                                 err, "cudaMemcpy(weights)", __FILE__, __LINE__);
    }
    return u->base + off;
}

static void upload_all(sembed__cuda *g, const sembed__cuda_model *m, uploader *u) {
    const int64_t H = m->H, I = m->I;
    g->word = put(u, m->word, (int64_t)m->V * H, true);
    g->pos = put(u, m->pos, (int64_t)m->P * H, true);
    g->type = m->type ? put(u, m->type, H, true) : NULL;
    g->emb_g = (float *)put(u, m->emb_g, H, false);
    g->emb_b = (float *)put(u, m->emb_b, H, false);
    for (int32_t l = 0; l < m->n_layers; l++) {
        const sembed__cuda_layer *s = &m->layers[l];
        layer_d *d = &g->layers[l];
        d->qkv_w = put(u, s->qkv_w, 3 * H * H, true);
        d->qkv_b = put(u, s->qkv_b, 3 * H, true);
        d->o_w = put(u, s->o_w, H * H, true);
        d->o_b = put(u, s->o_b, H, true);
        d->ln1_g = (float *)put(u, s->ln1_g, H, false);
        d->ln1_b = (float *)put(u, s->ln1_b, H, false);
        d->i_w = put(u, s->i_w, I * H, true);
        d->i_b = put(u, s->i_b, I, true);
        d->f_w = put(u, s->f_w, H * I, true);
        d->f_b = put(u, s->f_b, H, true);
        d->ln2_g = (float *)put(u, s->ln2_g, H, false);
        d->ln2_b = (float *)put(u, s->ln2_b, H, false);
    }
    g->rel_bias = m->rel_bias ? (float *)put(u, m->rel_bias, (int64_t)m->A * (2 * m->R - 1), false)
                              : NULL;
    for (int32_t i = 0; i < m->n_dense; i++) {
        const sembed__cuda_dense *d = &m->dense[i];
        g->dense_w[i] = (float *)put(u, d->w, (int64_t)d->out * d->in, false);
        g->dense_b[i] = d->b ? (float *)put(u, d->b, d->out, false) : NULL;
    }
}

/* ---- life cycle -------------------------------------------------------------------------- */

int32_t sembed__cuda_device_count(void) {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        (void)cudaGetLastError(); /* clear the sticky "no device" error */
        return 0;
    }
    return n;
}

void sembed__cuda_warm(int32_t device) {
    int n = 0;
    if (cudaGetDeviceCount(&n) == cudaSuccess && device < n && cudaSetDevice(device) == cudaSuccess)
        (void)cudaFree(0); /* creates the device's primary context */
    (void)cudaGetLastError(); /* this thread's error state only */
}

const char *sembed__cuda_device_name(const sembed__cuda *g) { return g ? g->name : ""; }

void sembed__cuda_free(sembed__cuda *g) {
    if (!g) return;
    cudaSetDevice(g->device);
    if (g->stream) cudaStreamSynchronize(g->stream);
    cudaFree(g->wmem);
    cudaFree(g->x);
    cudaFree(g->big);
    cudaFree(g->att);
    cudaFree(g->tmp);
    cudaFree(g->pa);
    cudaFree(g->pb);
    cudaFree(g->ws);
    cudaFree(g->d_ints);
    for (int b = 0; b < N_BUF; b++) {
        cudaFreeHost(g->h_ints[b]);
        cudaFreeHost(g->h_out[b]);
        if (g->done[b]) cudaEventDestroy(g->done[b]);
    }
    for (int i = 0; i < N_GRAPHS; i++)
        if (g->graphs[i].exec) cudaGraphExecDestroy(g->graphs[i].exec);
    for (int32_t i = 0; i < g->max_ev; i++)
        if (g->ev && g->ev[i]) cudaEventDestroy(g->ev[i]);
    sembed__free(g->ev);
    sembed__free(g->ev_op);
    if (g->lt) cublasLtDestroy(g->lt);
    if (g->stream) cudaStreamDestroy(g->stream);
    sembed__free(g->layers);
    sembed__free(g);
}

static sembed_status check_model(const sembed__cuda_model *m, sembed_error *err) {
    if (!sembed__att_supports(m->H, m->A))
        return sembed__err(err, SEMBED_ERR_UNSUPPORTED,
                           "CUDA backend: head size %d (hidden %d, %d heads) is not supported "
                           "(32 or 64)",
                           m->A > 0 ? m->H / m->A : 0, m->H, m->A);
    if (m->H > 2048 || m->I % 8 != 0)
        return sembed__err(err, SEMBED_ERR_UNSUPPORTED,
                           "CUDA backend: hidden %d / intermediate %d unsupported (hidden <= "
                           "2048, intermediate a multiple of 8)",
                           m->H, m->I);
    if (m->n_dense > SEMBED__CUDA_MAX_DENSE || m->n_pool < 1 || m->n_pool > SEMBED__MAX_POOL_KINDS)
        return sembed__err(err, SEMBED_ERR_UNSUPPORTED, "CUDA backend: %d Dense modules, %d pooling kinds",
                           m->n_dense, m->n_pool);
    return SEMBED_OK;
}

static sembed_status alloc_dev(void **p, size_t bytes, sembed_error *err) {
    SEMBED_CU(cudaMalloc(p, bytes ? bytes : 1));
    return SEMBED_OK;
}

/* SEMBED_CUDA_VERBOSE=1: the start-up's phases on stderr, ms since the last mark. */
typedef struct phase_clock {
    bool on;
    double t;
} phase_clock;
static double mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}
static void phase(phase_clock *c, const char *what) {
    if (!c->on) return;
    const double t = mono_ms();
    fprintf(stderr, "sembed cuda start-up: %-28s %8.1f ms\n", what, t - c->t);
    c->t = t;
}

static sembed_status setup(sembed__cuda *g, const sembed__cuda_model *m, sembed_error *err) {
    const char *v = getenv("SEMBED_CUDA_VERBOSE");
    phase_clock clk = {v && *v && strcmp(v, "0") != 0, mono_ms()};
    g->trace_first = clk.on;
    SEMBED_CU(cudaSetDevice(g->device));
    phase(&clk, "context (cudaSetDevice)");
    cudaDeviceProp prop;
    SEMBED_CU(cudaGetDeviceProperties(&prop, g->device));
    snprintf(g->name, sizeof g->name, "%s", prop.name);
    SEMBED_CU(cudaStreamCreateWithFlags(&g->stream, cudaStreamNonBlocking));
    SEMBED_CU(cublasLtCreate(&g->lt));
    phase(&clk, "stream, cuBLASLt handle");

    /* weights: a sizing pass, one allocation, then the copies */
    uploader u = {NULL, 0, NULL, g->bf16, SEMBED_OK, err};
    upload_all(g, m, &u);
    SEMBED_CU(cudaMalloc((void **)&g->wmem, u.used));
    u.base = g->wmem;
    u.used = 0;
    u.stage = (uint16_t *)sembed__malloc(sizeof(uint16_t) * (size_t)STAGE);
    if (!u.stage) return sembed__err(err, SEMBED_ERR_NOMEM, "CUDA backend: out of host memory");
    upload_all(g, m, &u);
    sembed__free(u.stage);
    if (u.st != SEMBED_OK) return u.st;
    phase(&clk, "weights uploaded");

    const size_t T = (size_t)g->T_max, S = (size_t)g->S_max, H = (size_t)g->H;
    const size_t wide = (size_t)(3 * g->H > g->I ? 3 * g->H : g->I);
    sembed_status s = SEMBED_OK;
    if (s == SEMBED_OK) s = alloc_dev((void **)&g->x, T * H * 2, err);
    if (s == SEMBED_OK) s = alloc_dev((void **)&g->big, T * wide * 2, err);
    if (s == SEMBED_OK) s = alloc_dev((void **)&g->att, T * H * 2, err);
    if (s == SEMBED_OK) s = alloc_dev((void **)&g->tmp, T * H * 2, err);
    if (s == SEMBED_OK) s = alloc_dev((void **)&g->pa, S * (size_t)g->max_dim * 4, err);
    if (s == SEMBED_OK) s = alloc_dev((void **)&g->pb, S * (size_t)g->max_dim * 4, err);
    if (s == SEMBED_OK) s = alloc_dev(&g->ws, WS_BYTES, err);
    if (s == SEMBED_OK)
        s = alloc_dev((void **)&g->d_ints, (size_t)g->n_ints_max * sizeof(int32_t), err);
    if (s != SEMBED_OK) return s;
    for (int b = 0; b < N_BUF; b++) {
        SEMBED_CU(cudaMallocHost((void **)&g->h_ints[b], (size_t)g->n_ints_max * sizeof(int32_t)));
        SEMBED_CU(cudaHostAlloc((void **)&g->h_out[b], S * (size_t)g->E * sizeof(float),
                                cudaHostAllocMapped));
        SEMBED_CU(cudaHostGetDevicePointer((void **)&g->h_out_d[b], g->h_out[b], 0));
        SEMBED_CU(cudaEventCreateWithFlags(&g->done[b], cudaEventDisableTiming));
    }
    phase(&clk, "activation buffers");

    const int32_t Hi = g->H, Ii = g->I;
    const sembed__cu_dtype dt = g->bf16 ? SEMBED__CU_BF16 : SEMBED__CU_F16;
    s = sembed__cu_gemm_plan(&g->g_qkv, g->lt, 3 * Hi, Hi, g->T_max, dt, true, SEMBED__ACTK_IDENTITY, WS_BYTES, err);
    phase(&clk, "GEMM plan: QKV");
    if (s == SEMBED_OK) s = sembed__cu_gemm_plan(&g->g_o, g->lt, Hi, Hi, g->T_max, dt, true, SEMBED__ACTK_IDENTITY, WS_BYTES, err);
    phase(&clk, "GEMM plan: output projection");
    /* the FFN's activation belongs to its first GEMM (fused there for small batches) */
    if (s == SEMBED_OK) s = sembed__cu_gemm_plan(&g->g_i, g->lt, Ii, Hi, g->T_max, dt, true, g->act, WS_BYTES, err);
    phase(&clk, "GEMM plan: FFN in");
    if (s == SEMBED_OK) s = sembed__cu_gemm_plan(&g->g_f, g->lt, Hi, Ii, g->T_max, dt, true, SEMBED__ACTK_IDENTITY, WS_BYTES, err);
    phase(&clk, "GEMM plan: FFN out");
    for (int32_t i = 0; i < m->n_dense && s == SEMBED_OK; i++)
        s = sembed__cu_gemm_plan(&g->g_dense[i], g->lt, m->dense[i].out, m->dense[i].in, g->S_max,
                                 SEMBED__CU_F32, m->dense[i].b != NULL, SEMBED__ACTK_IDENTITY,
                                 WS_BYTES, err);
    if (m->n_dense) phase(&clk, "GEMM plans: Dense");
    return s;
}

sembed_status sembed__cuda_new(const sembed__cuda_model *m, int32_t device, int32_t T_max,
                               int32_t S_max, sembed__cuda **out, sembed_error *err) {
    *out = NULL;
    sembed_status s = check_model(m, err);
    if (s != SEMBED_OK) return s;
    const int32_t n_dev = sembed__cuda_device_count();
    if (device < 0 || device >= n_dev)
        return sembed__err(err, SEMBED_ERR_UNSUPPORTED,
                           "CUDA device %d requested; %d device(s) visible", device, n_dev);
    if (T_max < 1 || S_max < 1)
        return sembed__err(err, SEMBED_ERR_INVALID_ARG, "CUDA backend: T_max %d, S_max %d",
                           T_max, S_max);
    sembed__cuda *g = (sembed__cuda *)sembed__calloc(1, sizeof *g);
    layer_d *layers = (layer_d *)sembed__calloc((size_t)(m->n_layers > 0 ? m->n_layers : 1),
                                                sizeof(layer_d));
    if (!g || !layers) {
        sembed__free(g), sembed__free(layers);
        return sembed__err(err, SEMBED_ERR_NOMEM, "CUDA backend: out of host memory");
    }
    g->layers = layers;
    g->device = device;
    g->H = m->H, g->A = m->A, g->I = m->I, g->n_layers = m->n_layers, g->R = m->R;
    g->position_offset = m->position_offset;
    g->eps = m->eps, g->act = m->act;
    g->pool.n = m->n_pool;
    for (int32_t i = 0; i < m->n_pool; i++) g->pool.k[i] = m->pool[i];
    g->F = m->n_pool * m->H;
    g->n_dense = m->n_dense;
    g->max_dim = g->F;
    for (int32_t i = 0; i < m->n_dense; i++) {
        g->dense_act[i] = m->dense[i].act;
        g->dense_out[i] = m->dense[i].out;
        if (m->dense[i].out > g->max_dim) g->max_dim = m->dense[i].out;
    }
    g->E = m->dim;
    g->normalize = m->normalize;
    g->T_max = T_max, g->S_max = S_max;
    g->bf16 = m->bf16;
    g->n_ints_max = 2 * (int64_t)T_max + S_max + 1 + 2 * sembed__att_max_tiles(T_max, S_max);
    s = setup(g, m, err);
    if (s != SEMBED_OK) {
        sembed__cuda_free(g);
        return s;
    }
    *out = g;
    return SEMBED_OK;
}

/* ---- the forward pass -------------------------------------------------------------------- */

/* With profiling on, an event after each op (kind k). */
static void mark(sembed__cuda *g, int k) {
    if (!g->prof_on || g->n_ev >= g->max_ev) return;
    if (cudaEventRecord(g->ev[g->n_ev], g->stream) == cudaSuccess) g->ev_op[g->n_ev++] = (int8_t)k;
}
#define MARK(k)                                                                                 \
    do {                                                                                        \
        if (s == SEMBED_OK) mark(g, k);                                                         \
    } while (0)

/* The ops on 16-bit data of type E (__half or sembed__bf16: g->bf16). */
template <class E>
static sembed_status forward_t(sembed__cuda *g, const int32_t *ids, const int32_t *pos_ids,
                               const int32_t *seq_off, const int32_t *tiles, sembed__att_tiles nt,
                               int32_t S, int32_t T, sembed_error *err) {
    cudaStream_t st = g->stream;
    const int32_t H = g->H;
    E *x = (E *)g->x, *big = (E *)g->big, *att = (E *)g->att, *tmp = (E *)g->tmp;
    sembed_status s = sembed__cu_embed_ln(x, ids, pos_ids, (const E *)g->word, (const E *)g->pos,
                                          (const E *)g->type, g->emb_g, g->emb_b, T, H, g->eps,
                                          st, err);
    MARK(OP_EMBED);
    for (int32_t l = 0; l < g->n_layers && s == SEMBED_OK; l++) {
        const layer_d *w = &g->layers[l];
        s = sembed__cu_gemm(&g->g_qkv, g->lt, g->big, g->x, w->qkv_w, w->qkv_b, T, g->ws, st, err);
        MARK(OP_QKV);
        if (s == SEMBED_OK)
            s = sembed__cu_attention(att, big, seq_off, tiles, g->rel_bias, nt, H, g->A, g->R,
                                     st, err);
        MARK(OP_ATT);
        if (s == SEMBED_OK)
            s = sembed__cu_gemm(&g->g_o, g->lt, g->tmp, g->att, w->o_w, w->o_b, T, g->ws, st, err);
        MARK(OP_O);
        if (s == SEMBED_OK)
            s = sembed__cu_add_ln(x, tmp, x, w->ln1_g, w->ln1_b, T, H, g->eps, st, err);
        MARK(OP_LN1);
        if (s == SEMBED_OK)
            s = sembed__cu_gemm(&g->g_i, g->lt, g->big, g->x, w->i_w, w->i_b, T, g->ws, st, err);
        MARK(OP_FI);
        MARK(OP_ACT); /* the activation ran inside ffn_in_gemm (gemm.cuh): this reads ~0 */
        if (s == SEMBED_OK)
            s = sembed__cu_gemm(&g->g_f, g->lt, g->tmp, g->big, w->f_w, w->f_b, T, g->ws, st, err);
        MARK(OP_FO);
        if (s == SEMBED_OK)
            s = sembed__cu_add_ln(x, tmp, x, w->ln2_g, w->ln2_b, T, H, g->eps, st, err);
        MARK(OP_LN2);
    }
    /* no Dense module: pooling and normalization in one kernel */
    const bool fused = g->n_dense == 0 && g->normalize;
    if (s == SEMBED_OK)
        s = fused ? sembed__cu_pool_normalize(g->pa, g->h_out_d[g->cur], (const E *)x, seq_off, NULL,
                                              g->pool, S, H, st, err)
                  : sembed__cu_pool(g->pa, (const E *)x, seq_off, NULL, g->pool, S, H, st, err);
    float *cur = g->pa, *nxt = g->pb;
    for (int32_t i = 0; i < g->n_dense && s == SEMBED_OK; i++) {
        s = sembed__cu_gemm(&g->g_dense[i], g->lt, nxt, cur, g->dense_w[i], g->dense_b[i], S,
                            g->ws, st, err);
        if (s == SEMBED_OK)
            s = sembed__cu_act_f32(nxt, (int64_t)S * g->dense_out[i], g->dense_act[i], st, err);
        float *t = cur;
        cur = nxt, nxt = t;
    }
    if (s == SEMBED_OK && g->normalize && !fused) s = sembed__cu_normalize(cur, S, g->E, st, err);
    MARK(OP_POOL);
    if (s != SEMBED_OK) return s;
    if (!fused) /* the fused kernel wrote the vectors into h_out itself (mapped memory) */
        SEMBED_CU(cudaMemcpyAsync(g->h_out[g->cur], cur, sizeof(float) * (size_t)S * (size_t)g->E,
                                  cudaMemcpyDeviceToHost, st));
    MARK(OP_COPY_OUT);
    return SEMBED_OK;
}

static sembed_status forward(sembed__cuda *g, const int32_t *ids, const int32_t *pos_ids,
                             const int32_t *seq_off, const int32_t *tiles, sembed__att_tiles nt,
                             int32_t S, int32_t T, sembed_error *err) {
    return g->bf16 ? forward_t<sembed__bf16>(g, ids, pos_ids, seq_off, tiles, nt, S, T, err)
                   : forward_t<__half>(g, ids, pos_ids, seq_off, tiles, nt, S, T, err);
}

/* The copy in and the forward pass, as enqueued on the stream (eagerly or into a graph). */
static sembed_status enqueue(sembed__cuda *g, size_t n_ints, sembed__att_tiles nt, int32_t S,
                             int32_t T, sembed_error *err) {
    SEMBED_CU(cudaMemcpyAsync(g->d_ints, g->h_ints[g->cur], n_ints * sizeof(int32_t),
                              cudaMemcpyHostToDevice, g->stream));
    sembed_status s = SEMBED_OK;
    MARK(OP_COPY_IN);
    const int32_t *d = g->d_ints;
    return forward(g, d, d + T, d + 2 * T, d + 2 * T + S + 1, nt, S, T, err);
}

/* The graph slot for this shape, or NULL to run eagerly. Counts the shape as seen. Graphs are
 * captured with the first buffer's pinned memory: a batch in the second (another in flight) runs
 * eagerly. */
static graph_slot *graph_for(sembed__cuda *g, int32_t S, int32_t T, sembed__att_tiles nt) {
    if (g->graphs_off || g->prof_on || T > GRAPH_T_MAX || g->cur != 0) return NULL;
    graph_slot *hit = NULL, *lru = &g->graphs[0];
    for (int i = 0; i < N_GRAPHS; i++) {
        graph_slot *q = &g->graphs[i];
        if (q->seen && q->S == S && q->T == T && q->nt.n == nt.n && q->nt.n_short == nt.n_short)
            hit = q;
        if (q->used < lru->used) lru = q;
    }
    if (!hit) { /* first time: remember the shape, run eagerly */
        if (lru->exec) cudaGraphExecDestroy(lru->exec);
        *lru = graph_slot{S, T, nt, 1, ++g->graph_clock, false, NULL};
        return NULL;
    }
    hit->seen++;
    hit->used = ++g->graph_clock;
    return hit->failed ? NULL : hit;
}

/* Captures the batch into q->exec. On failure the shape is marked to run eagerly and the stream
 * is left out of capture mode; the batch itself still runs (eagerly) after this. */
static void capture(sembed__cuda *g, graph_slot *q, size_t n_ints, sembed__att_tiles nt,
                    int32_t S, int32_t T) {
    sembed_error e;
    cudaGraph_t graph = NULL;
    q->failed = true;
    if (cudaStreamBeginCapture(g->stream, cudaStreamCaptureModeThreadLocal) != cudaSuccess) {
        (void)cudaGetLastError();
        return;
    }
    const sembed_status s = enqueue(g, n_ints, nt, S, T, &e);
    const cudaError_t ce = cudaStreamEndCapture(g->stream, &graph);
    if (s == SEMBED_OK && ce == cudaSuccess && graph &&
        cudaGraphInstantiate(&q->exec, graph, 0) == cudaSuccess)
        q->failed = false;
    else
        q->exec = NULL;
    if (graph) cudaGraphDestroy(graph);
    (void)cudaGetLastError();
}

sembed_status sembed__cuda_submit(sembed__cuda *g, const int32_t *ids, const int32_t *seq_off,
                                  int32_t S, int32_t T, sembed_error *err) {
    SEMBED_ASSERT(g && S >= 1 && T >= 1 && S <= g->S_max && T <= g->T_max);
    SEMBED_ASSERT(seq_off[0] == 0 && seq_off[S] == T);
    SEMBED_ASSERT(g->n_flight < sembed__cuda_slots(g));
    if (g->n_flight == 0) g->fl_head = 0; /* alone, a batch takes the first buffer (graphs) */
    g->cur = (g->fl_head + g->n_flight) % N_BUF;
    if (g->n_flight == 0) g->t_first = g->trace_first ? mono_ms() : 0.0;
    SEMBED_CU(cudaSetDevice(g->device));
    /* one pinned buffer: ids (T) | pos_ids (T) | seq_off (S+1) | tiles (2 nt.n) */
    int32_t *h = g->h_ints[g->cur];
    memcpy(h, ids, sizeof(int32_t) * (size_t)T);
    int32_t *hp = h + T;
    for (int32_t s = 0; s < S; s++) {
        SEMBED_ASSERT(seq_off[s + 1] > seq_off[s] && seq_off[s + 1] - seq_off[s] <= g->R);
        for (int32_t j = seq_off[s]; j < seq_off[s + 1]; j++)
            hp[j] = g->position_offset + (j - seq_off[s]);
    }
    memcpy(h + 2 * T, seq_off, sizeof(int32_t) * (size_t)(S + 1));
    int32_t *ht = h + 2 * T + S + 1;
    const sembed__att_tiles nt = sembed__att_make_tiles(ht, seq_off, S, g->A);
    const size_t n = (size_t)(2 * T + S + 1) + 2 * (size_t)nt.n;
    SEMBED_ASSERT((int64_t)n <= g->n_ints_max);
    g->n_ev = 0;
    if (g->prof_on) mark(g, -1);
    sembed_status s = SEMBED_OK;
    graph_slot *q = graph_for(g, S, T, nt);
    if (q && !q->exec) capture(g, q, n, nt, S, T);
    if (q && q->exec)
        s = sembed__cu_check(cudaGraphLaunch(q->exec, g->stream), err, "cudaGraphLaunch",
                             __FILE__, __LINE__);
    else
        s = enqueue(g, n, nt, S, T, err);
    if (s == SEMBED_OK)
        s = sembed__cu_check(cudaEventRecord(g->done[g->cur], g->stream), err, "cudaEventRecord",
                             __FILE__, __LINE__);
    if (s != SEMBED_OK) {
        /* wait even after a failed launch: the pinned buffers may still be in flight; the
         * batches before it stay in flight (their finish reports any error of the stream) */
        (void)cudaStreamSynchronize(g->stream);
        return s;
    }
    g->fl_S[g->cur] = S;
    g->n_flight++;
    return SEMBED_OK;
}

int32_t sembed__cuda_slots(const sembed__cuda *g) { return g->prof_on ? 1 : N_BUF; }

sembed_status sembed__cuda_finish(sembed__cuda *g, float *out, sembed_error *err) {
    SEMBED_ASSERT(g && g->n_flight > 0);
    const int32_t b = g->fl_head, S = g->fl_S[b];
    g->fl_head = (b + 1) % N_BUF;
    g->n_flight--;
    SEMBED_CU(cudaSetDevice(g->device));
    SEMBED_CU(cudaEventSynchronize(g->done[b]));
    memcpy(out, g->h_out[b], sizeof(float) * (size_t)S * (size_t)g->E);
    if (g->trace_first) { /* the first batch loads the kernels' modules */
        phase_clock c = {true, g->t_first};
        phase(&c, "first batch (encode)");
        g->trace_first = false;
    }
    if (g->prof_on) {
        for (int32_t i = 1; i < g->n_ev; i++) {
            float ms = 0.f;
            if (cudaEventElapsedTime(&ms, g->ev[i - 1], g->ev[i]) == cudaSuccess)
                g->prof_ms[g->ev_op[i]] += ms;
        }
        g->prof_batches++;
    }
    return SEMBED_OK;
}

sembed_status sembed__cuda_encode(sembed__cuda *g, const int32_t *ids, const int32_t *seq_off,
                                  int32_t S, int32_t T, float *out, sembed_error *err) {
    const sembed_status s = sembed__cuda_submit(g, ids, seq_off, S, T, err);
    return s == SEMBED_OK ? sembed__cuda_finish(g, out, err) : s;
}

/* ---- profile ----------------------------------------------------------------------------- */

sembed_status sembed__cuda_profile(sembed__cuda *g, bool on, sembed_error *err) {
    SEMBED_ASSERT(g->n_flight == 0);
    SEMBED_CU(cudaSetDevice(g->device));
    if (on && !g->ev) {
        const int32_t n = 4 + 9 * g->n_layers;
        g->ev = (cudaEvent_t *)sembed__calloc((size_t)n, sizeof *g->ev);
        g->ev_op = (int8_t *)sembed__calloc((size_t)n, 1);
        if (!g->ev || !g->ev_op)
            return sembed__err(err, SEMBED_ERR_NOMEM, "CUDA backend: out of host memory");
        for (int32_t i = 0; i < n; i++) {
            SEMBED_CU(cudaEventCreate(&g->ev[i]));
            g->max_ev = i + 1;
        }
    }
    g->prof_on = on;
    for (int i = 0; i < SEMBED__CUDA_N_OPS; i++) g->prof_ms[i] = 0.0;
    g->prof_batches = 0;
    return SEMBED_OK;
}

int64_t sembed__cuda_profile_read(const sembed__cuda *g, double ms[SEMBED__CUDA_N_OPS],
                                  const char *names[SEMBED__CUDA_N_OPS]) {
    for (int i = 0; i < SEMBED__CUDA_N_OPS; i++) ms[i] = g->prof_ms[i], names[i] = op_names[i];
    return g->prof_batches;
}

void sembed__cuda_set_graphs(sembed__cuda *g, bool on) { g->graphs_off = !on; }
