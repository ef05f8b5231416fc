/* gemm.cu — cuBLASLt plans with a fixed algorithm per (N, K). Row-major y (M, N) = x (M, K) ·
 * w (N, K)ᵀ is, in cuBLASLt's column-major terms, yᵀ (N×M) = op_T(w as K×N) · xᵀ (K×M).
 * Descriptors live on the stack (the Init forms), so a call allocates nothing. */
#include "gemm.cuh"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mutex>
#include <vector>

typedef struct gemm_descs {
    cublasLtMatmulDescOpaque_t op;
    cublasLtMatrixLayoutOpaque_t a, b, c;
} gemm_descs;

static sembed_status make_descs(gemm_descs *d, const sembed__cu_gemm_shape *g, int64_t M,
                                const void *bias, sembed_error *err) {
    const cudaDataType_t t = g->f32 ? CUDA_R_32F : CUDA_R_16F;
    SEMBED_CU(cublasLtMatmulDescInit(&d->op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
    SEMBED_CU(cublasLtMatmulDescSetAttribute(&d->op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta));
    SEMBED_CU(cublasLtMatmulDescSetAttribute(&d->op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb));
    if (g->bias) {
        const cublasLtEpilogue_t ep = CUBLASLT_EPILOGUE_BIAS;
        SEMBED_CU(cublasLtMatmulDescSetAttribute(&d->op, CUBLASLT_MATMUL_DESC_EPILOGUE, &ep,
                                                 sizeof ep));
        SEMBED_CU(cublasLtMatmulDescSetAttribute(&d->op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias,
                                                 sizeof bias));
    }
    SEMBED_CU(cublasLtMatrixLayoutInit(&d->a, t, (uint64_t)g->K, (uint64_t)g->N, g->K));
    SEMBED_CU(cublasLtMatrixLayoutInit(&d->b, t, (uint64_t)g->K, (uint64_t)M, g->K));
    SEMBED_CU(cublasLtMatrixLayoutInit(&d->c, t, (uint64_t)g->N, (uint64_t)M, g->N));
    return SEMBED_OK;
}

/* The bias pointer the heuristic and AlgoCheck see (nothing runs, nothing is read). It must be
 * aligned as the real ones are (256 bytes): given a host struct's address (8-byte aligned, as
 * v1 did), cuBLASLt left out every Hopper kernel (algorithm 66, 400-700 TFLOP/s here) and
 * offered only algorithms 23/24 (120-230 TFLOP/s). */
#define FAKE_BIAS ((const void *)(uintptr_t)0x10000)

/* Is `algo` usable for M rows within the workspace? */
static bool algo_fits(cublasLtHandle_t lt, const sembed__cu_gemm_shape *g, const cublasLtMatmulAlgo_t *a,
                      int64_t M) {
    gemm_descs d;
    sembed_error e;
    if (make_descs(&d, g, M, g->bias ? FAKE_BIAS : NULL, &e) != SEMBED_OK) return false;
    cublasLtMatmulHeuristicResult_t r;
    if (cublasLtMatmulAlgoCheck(lt, &d.op, &d.a, &d.b, &d.c, &d.c, a, &r) !=
        CUBLAS_STATUS_SUCCESS)
        return false;
    return r.workspaceSize <= g->ws_bytes;
}

/* Reads the split-K count and reduction scheme of an algorithm; false if unreadable. */
static bool splits_nothing(const cublasLtMatmulAlgo_t *a) {
    int32_t splitk = 1;
    uint32_t red = CUBLASLT_REDUCTION_SCHEME_NONE;
    size_t wr = 0;
    if (cublasLtMatmulAlgoConfigGetAttribute(a, CUBLASLT_ALGO_CONFIG_SPLITK_NUM, &splitk,
                                             sizeof splitk, &wr) != CUBLAS_STATUS_SUCCESS ||
        cublasLtMatmulAlgoConfigGetAttribute(a, CUBLASLT_ALGO_CONFIG_REDUCTION_SCHEME, &red,
                                             sizeof red, &wr) != CUBLAS_STATUS_SUCCESS)
        return false;
    return splitk <= 1 && red == CUBLASLT_REDUCTION_SCHEME_NONE;
}

/* fills n halves with a fixed pseudo-random pattern in [-1, 1) (timing data, never zeros) */
static __global__ void fill_kernel(__half *p, int64_t n) {
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    uint32_t h = (uint32_t)i * 2654435761u + 12345u;
    h ^= h >> 15, h *= 2246822519u, h ^= h >> 13;
    p[i] = __float2half_rn((float)(h & 0xFFFF) / 32768.0f - 1.0f);
}

/* The timing scratch: x (M_SEL, K), w (N, K), b (N), y (M_SEL, N), ws. */
typedef struct timing_bufs {
    __half *x, *w, *b, *y;
    void *ws;
    cudaStream_t st;
    cudaEvent_t e0, e1;
} timing_bufs;

#define M_SEL 8192 /* the rows the algorithm is chosen for, whatever the context's size */

/* mean ms of one call of algo at M rows (2 warm-up calls, then reps), or -1 on failure */
static float time_algo(cublasLtHandle_t lt, const sembed__cu_gemm_shape *g,
                       const cublasLtMatmulAlgo_t *a, int64_t M, const timing_bufs *t) {
    gemm_descs d;
    sembed_error e;
    if (make_descs(&d, g, M, g->bias ? (const void *)t->b : NULL, &e) != SEMBED_OK) return -1.f;
    const float one = 1.0f, zero = 0.0f;
    const int reps = M >= 4096 ? 10 : 30;
    for (int r = 0; r < 2 + reps; r++) {
        if (r == 2 && cudaEventRecord(t->e0, t->st) != cudaSuccess) return -1.f;
        if (cublasLtMatmul(lt, &d.op, &one, t->w, &d.a, t->x, &d.b, &zero, t->y, &d.c, t->y,
                           &d.c, a, t->ws, g->ws_bytes, t->st) != CUBLAS_STATUS_SUCCESS)
            return -1.f;
    }
    float ms = -1.f;
    if (cudaEventRecord(t->e1, t->st) != cudaSuccess || cudaEventSynchronize(t->e1) != cudaSuccess ||
        cudaEventElapsedTime(&ms, t->e0, t->e1) != cudaSuccess)
        return -1.f;
    return ms / (float)reps;
}

/* The process-wide choice per (device, N, K, type, bias): every context of a process runs the
 * same algorithm for a shape, so a text's vector is the same bits in every context. */
typedef struct plan_entry {
    int device;
    int32_t N, K;
    bool f32, bias;
    cublasLtMatmulAlgo_t algo;
} plan_entry;
static std::mutex plan_mu;
static std::vector<plan_entry> plan_cache;

static bool env_is(const char *name, const char *v) {
    const char *e = getenv(name);
    return e && strcmp(e, v) == 0;
}

/* Times the candidates; writes the winner's index into *best. */
static sembed_status pick_by_timing(cublasLtHandle_t lt, const sembed__cu_gemm_shape *g,
                                    const cublasLtMatmulAlgo_t *cand, int n, int *best,
                                    sembed_error *err) {
    timing_bufs t = {};
    const int64_t M = M_SEL, N = g->N, K = g->K;
    sembed_status s = SEMBED_OK;
    const bool verbose = getenv("SEMBED_CUDA_GEMM_VERBOSE") != NULL;
    std::vector<float> tm((size_t)n * 3, -1.f);
    const int64_t Ms[3] = {M_SEL, 512, 16};
    float best_t[3] = {INFINITY, INFINITY, INFINITY};
    *best = 0;
    if (cudaMalloc((void **)&t.x, (size_t)M * K * 2) != cudaSuccess ||
        cudaMalloc((void **)&t.w, (size_t)N * K * 2) != cudaSuccess ||
        cudaMalloc((void **)&t.b, (size_t)N * 2) != cudaSuccess ||
        cudaMalloc((void **)&t.y, (size_t)M * N * 2) != cudaSuccess ||
        cudaMalloc(&t.ws, g->ws_bytes ? g->ws_bytes : 1) != cudaSuccess) {
        s = sembed__err(err, SEMBED_ERR_NOMEM, "CUDA backend: no device memory to time GEMM "
                        "algorithms for N=%d, K=%d", g->N, g->K);
        goto done;
    }
    if (cudaStreamCreateWithFlags(&t.st, cudaStreamNonBlocking) != cudaSuccess ||
        cudaEventCreate(&t.e0) != cudaSuccess || cudaEventCreate(&t.e1) != cudaSuccess) {
        s = sembed__err(err, SEMBED_ERR_BACKEND, "CUDA backend: stream/event creation failed");
        goto done;
    }
    fill_kernel<<<(unsigned)((M * K + 255) / 256), 256, 0, t.st>>>(t.x, M * K);
    fill_kernel<<<(unsigned)((N * K + 255) / 256), 256, 0, t.st>>>(t.w, N * K);
    fill_kernel<<<(unsigned)((N + 255) / 256), 256, 0, t.st>>>(t.b, N);
    for (int i = 0; i < n; i++)
        for (int m = 0; m < 3; m++) {
            const float v = time_algo(lt, g, &cand[i], Ms[m], &t);
            tm[(size_t)i * 3 + m] = v;
            if (v > 0.f && v < best_t[m]) best_t[m] = v;
        }
    (void)cudaGetLastError(); /* a candidate that failed to run is just not chosen */
    {
        /* score: the large batch counts twice, a mid and a query-sized batch once each, each
         * relative to the fastest candidate at that size */
        float best_score = INFINITY;
        for (int i = 0; i < n; i++) {
            const float *v = &tm[(size_t)i * 3];
            if (v[0] <= 0.f || v[1] <= 0.f || v[2] <= 0.f) continue;
            const float sc = 2.f * v[0] / best_t[0] + v[1] / best_t[1] + v[2] / best_t[2];
            if (verbose) {
                int32_t id = 0, tile = 0, stages = 0;
                size_t wr;
                cublasLtMatmulAlgoConfigGetAttribute(&cand[i], CUBLASLT_ALGO_CONFIG_ID, &id, sizeof id, &wr);
                cublasLtMatmulAlgoConfigGetAttribute(&cand[i], CUBLASLT_ALGO_CONFIG_TILE_ID, &tile, sizeof tile, &wr);
                cublasLtMatmulAlgoConfigGetAttribute(&cand[i], CUBLASLT_ALGO_CONFIG_STAGES_ID, &stages, sizeof stages, &wr);
                fprintf(stderr, "gemm N=%d K=%d cand %2d algo %d tile %d stages %d: M=%d %.4f ms "
                        "(%.0f TFLOP/s), M=512 %.4f, M=16 %.4f, score %.3f\n", g->N, g->K, i, id,
                        tile, stages, M_SEL, v[0], 2.0 * M * N * K / (v[0] * 1e9), v[1], v[2], sc);
            }
            if (sc < best_score) best_score = sc, *best = i;
        }
        if (best_score == INFINITY)
            s = sembed__err(err, SEMBED_ERR_BACKEND, "CUDA backend: no GEMM algorithm ran for "
                            "N=%d, K=%d", g->N, g->K);
    }
done:
    if (t.st) cudaStreamSynchronize(t.st), cudaStreamDestroy(t.st);
    if (t.e0) cudaEventDestroy(t.e0);
    if (t.e1) cudaEventDestroy(t.e1);
    cudaFree(t.x), cudaFree(t.w), cudaFree(t.b), cudaFree(t.y), cudaFree(t.ws);
    return s;
}

sembed_status sembed__cu_gemm_plan(sembed__cu_gemm_shape *g, cublasLtHandle_t lt, int32_t N,
                                   int32_t K, int64_t M_max, bool f32, bool bias,
                                   size_t ws_bytes, sembed_error *err) {
    memset(g, 0, sizeof *g);
    g->N = N, g->K = K, g->M_max = M_max, g->f32 = f32, g->bias = bias, g->ws_bytes = ws_bytes;
    int device = 0;
    SEMBED_CU(cudaGetDevice(&device));
    /* SEMBED_CUDA_GEMM=heuristic: cuBLASLt's first candidate (v1's rule), no timing */
    const bool timed = !f32 && !env_is("SEMBED_CUDA_GEMM", "heuristic");
    std::lock_guard<std::mutex> lock(plan_mu);
    bool cached = false;
    for (const plan_entry &p : plan_cache)
        if (p.device == device && p.N == N && p.K == K && p.f32 == f32 && p.bias == bias)
            g->algo = p.algo, cached = true;
    if (!cached) {
        /* The heuristic is asked at a fixed M whatever M_max is, so that contexts of every
         * size see the same candidates. */
        gemm_descs d;
        sembed_status s = make_descs(&d, g, M_SEL, bias ? FAKE_BIAS : NULL, err);
        if (s != SEMBED_OK) return s;
        cublasLtMatmulPreferenceOpaque_t pref;
        SEMBED_CU(cublasLtMatmulPreferenceInit(&pref));
        SEMBED_CU(cublasLtMatmulPreferenceSetAttribute(
            &pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws_bytes, sizeof ws_bytes));
        enum { N_RES = 64 };
        cublasLtMatmulHeuristicResult_t res[N_RES];
        int n_res = 0;
        SEMBED_CU(cublasLtMatmulAlgoGetHeuristic(lt, &d.op, &d.a, &d.b, &d.c, &d.c, &pref, N_RES,
                                                 res, &n_res));
        /* candidates: no split-K, no reduction across CTAs, valid for every M up to
         * max(M_max, 65536) (a fixed list, so the candidates do not depend on M_max) */
        const int64_t probe[] = {1, 2, 7, 16, 64, 333, 4096, 65536, M_max};
        std::vector<cublasLtMatmulAlgo_t> cand;
        for (int i = 0; i < n_res; i++) {
            if (res[i].state != CUBLAS_STATUS_SUCCESS || !splits_nothing(&res[i].algo)) continue;
            bool ok = true;
            size_t p = 0;
            for (; p < sizeof probe / sizeof probe[0] && ok; p++)
                ok = algo_fits(lt, g, &res[i].algo, probe[p]);
            if (!ok && getenv("SEMBED_CUDA_GEMM_VERBOSE"))
                fprintf(stderr, "gemm N=%d K=%d: heuristic result %d left out (not valid for M=%lld)\n",
                        N, K, i, (long long)probe[p - 1]);
            if (ok) cand.push_back(res[i].algo);
            if (!timed && ok) break;
        }
        if (cand.empty())
            return sembed__err(err, SEMBED_ERR_BACKEND,
                               "cuBLASLt offers no fixed algorithm without split-K for a %s GEMM "
                               "of N=%d, K=%d, M up to %lld (%d candidates)",
                               f32 ? "fp32" : "fp16", N, K, (long long)M_max, n_res);
        int best = 0;
        if (timed && cand.size() > 1) {
            s = pick_by_timing(lt, g, cand.data(), (int)cand.size(), &best, err);
            if (s != SEMBED_OK) return s;
        }
        g->algo = cand[(size_t)best];
        plan_cache.push_back(plan_entry{device, N, K, f32, bias, g->algo});
    } else if (!algo_fits(lt, g, &g->algo, M_max)) {
        return sembed__err(err, SEMBED_ERR_BACKEND,
                           "cuBLASLt: the algorithm chosen for N=%d, K=%d does not fit M=%lld",
                           N, K, (long long)M_max);
    }
    size_t wr = 0;
    uint32_t tile = 0, stages = 0;
    cublasLtMatmulAlgoConfigGetAttribute(&g->algo, CUBLASLT_ALGO_CONFIG_ID, &g->algo_id,
                                         sizeof g->algo_id, &wr);
    cublasLtMatmulAlgoConfigGetAttribute(&g->algo, CUBLASLT_ALGO_CONFIG_TILE_ID, &tile,
                                         sizeof tile, &wr);
    cublasLtMatmulAlgoConfigGetAttribute(&g->algo, CUBLASLT_ALGO_CONFIG_STAGES_ID, &stages,
                                         sizeof stages, &wr);
    g->tile_id = (int32_t)tile, g->stages_id = (int32_t)stages;
    return SEMBED_OK;
}

sembed_status sembed__cu_gemm(const sembed__cu_gemm_shape *g, cublasLtHandle_t lt, void *y,
                              const void *x, const void *w, const void *b, int64_t M, void *ws,
                              cudaStream_t stream, sembed_error *err) {
    SEMBED_ASSERT(M <= g->M_max && (b != NULL) == g->bias);
    if (M <= 0) return SEMBED_OK;
    gemm_descs d;
    sembed_status s = make_descs(&d, g, M, b, err);
    if (s != SEMBED_OK) return s;
    const float one = 1.0f, zero = 0.0f;
    SEMBED_CU(cublasLtMatmul(lt, &d.op, &one, w, &d.a, x, &d.b, &zero, y, &d.c, y, &d.c, &g->algo,
                             ws, g->ws_bytes, stream));
    return SEMBED_OK;
}
